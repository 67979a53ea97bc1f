"""Point-in-time-correct training sets from the offline store.

For every label row (entity, label time) the training set holds the feature values the online
store would have served at that time: the latest feature record of the entity whose event time is
at or before the label time, the latest write winning between records with the same event time
(a correction re-ingested later). A value whose event time is after the label time is never seen,
however early it was written; a value written late with an earlier event time is seen (the
offline store is the full history, not a log of arrival).

Deletions: when the latest record at the label time is a deletion (``is_deleted``), the entity had
no features then, so the label row is left out, as are label rows with no feature record yet.

Two implementations of the same semantics:

- :func:`point_in_time_sql` builds the Athena query over the offline store's Glue table, run by
  :func:`build_training_set` through awswrangler;
- :func:`point_in_time_join` does the same as-of join with pandas on frames (local runs, tests;
  Athena cannot run offline).

Times are compared as UTC instants: feature event times are the ISO-8601 UTC strings the feature
group stores; label times are timestamps in UTC (naive ones are taken as UTC).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mlops.features.spec import FeatureSpec

if TYPE_CHECKING:
    import boto3
    import pandas as pd

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")

WRITE_TIME = "write_time"
API_INVOCATION_TIME = "api_invocation_time"
IS_DELETED = "is_deleted"


def _quote(name: str) -> str:
    """A double-quoted SQL identifier; refuses names that could escape the quotes."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a plain identifier (letters, digits, '_' and '-')")
    return f'"{name}"'


def output_columns(
    spec: FeatureSpec, label_time_column: str | None = None, label_column: str | None = None
) -> list[str]:
    """Columns of a training set: identifier, label time, the features in spec order, the label.

    The label column is named after the spec's target (else ``label_column``); no label, no column.
    """
    columns = [spec.record_identifier, label_time_column or spec.event_time, *spec.feature_names]
    label = spec.target or label_column
    if label is not None:
        columns.append(label)
    return columns


def point_in_time_sql(
    spec: FeatureSpec,
    *,
    feature_database: str,
    feature_table: str,
    labels_database: str,
    labels_table: str,
    label_entity_column: str | None = None,
    label_time_column: str | None = None,
    label_column: str | None = None,
) -> str:
    """The Athena (Trino) query of a point-in-time-correct training set.

    ``labels_table`` holds one row per training example: the entity (``label_entity_column``,
    default the spec's record identifier), a ``timestamp`` label time (``label_time_column``,
    default the spec's event time) and the label (``label_column``, default the spec's target).
    The result has the columns of :func:`output_columns`, one row per label row that has features.
    """
    entity = label_entity_column or spec.record_identifier
    label_time = label_time_column or spec.event_time
    label = label_column or spec.target
    features = [_quote(name) for name in spec.feature_names]
    label_select = f", {_quote(label)} AS label" if label else ""
    label_carry = ", l.label" if label else ""
    label_output = f",\n    label AS {_quote(spec.target or label)}" if label else ""
    feature_list = ", ".join(features)
    feature_carry = ", ".join(f"f.{name}" for name in features)
    feature_output = ",\n    ".join(features)
    # Only identifiers are interpolated, each checked and double-quoted by _quote; never a value.
    return f"""WITH labels AS (
    SELECT
        ROW_NUMBER() OVER () AS label_row,
        {_quote(entity)} AS record_id,
        {_quote(label_time)} AS label_time{label_select}
    FROM {_quote(labels_database)}.{_quote(labels_table)}
),
feature_rows AS (
    SELECT
        {_quote(spec.record_identifier)} AS record_id,
        CAST(from_iso8601_timestamp({_quote(spec.event_time)}) AS timestamp) AS feature_time,
        {_quote(WRITE_TIME)} AS write_time,
        {_quote(API_INVOCATION_TIME)} AS api_invocation_time,
        {_quote(IS_DELETED)} AS is_deleted,
        {feature_list}
    FROM {_quote(feature_database)}.{_quote(feature_table)}
),
as_of AS (
    SELECT
        l.label_row, l.record_id, l.label_time{label_carry}, f.is_deleted, {feature_carry},
        ROW_NUMBER() OVER (
            PARTITION BY l.label_row
            ORDER BY f.feature_time DESC, f.write_time DESC, f.api_invocation_time DESC
        ) AS recency
    FROM labels l
    JOIN feature_rows f
        ON f.record_id = l.record_id
        AND f.feature_time <= l.label_time
)
SELECT
    record_id AS {_quote(spec.record_identifier)},
    label_time AS {_quote(label_time)},
    {feature_output}{label_output}
FROM as_of
WHERE recency = 1 AND NOT is_deleted
ORDER BY label_row
"""  # noqa: S608


def point_in_time_join(
    spec: FeatureSpec,
    labels: pd.DataFrame,
    features: pd.DataFrame,
    *,
    label_entity_column: str | None = None,
    label_time_column: str | None = None,
    label_column: str | None = None,
) -> pd.DataFrame:
    """The same as-of join as :func:`point_in_time_sql`, with ``pd.merge_asof`` (by entity, backward).

    ``features`` is offline-store shaped: identifier, event time (ISO-8601 strings or timestamps),
    ``write_time``, ``is_deleted`` (optional, default false), optional ``api_invocation_time`` and
    the features. ``labels`` has the entity, the label time and the label. The result has the
    columns of :func:`output_columns`, label rows in their input order, typed per spec.
    """
    import pandas as pd

    entity = label_entity_column or spec.record_identifier
    label_time = label_time_column or spec.event_time
    label = label_column or spec.target
    rid, names = spec.record_identifier, list(spec.feature_names)

    left = pd.DataFrame(
        {
            "_row": range(len(labels)),
            "_id": labels[entity].astype(str).to_numpy(),
            "_at": pd.to_datetime(labels[label_time], utc=True).to_numpy(),
        }
    )
    # One resolution on both sides: pandas parses ISO strings to microseconds, Parquet gives
    # nanoseconds, and merge_asof refuses keys of different resolutions.
    left["_at"] = pd.to_datetime(left["_at"], utc=True).dt.as_unit("ns")
    if label:
        left["_label"] = labels[label].to_numpy()

    right = pd.DataFrame(
        {
            "_id": features[rid].astype(str).to_numpy(),
            "_feature_time": pd.to_datetime(features[spec.event_time], utc=True, format="ISO8601").to_numpy(),
            "_write": pd.to_datetime(features[WRITE_TIME], utc=True).to_numpy(),
            "_invoked": pd.to_datetime(
                features[API_INVOCATION_TIME] if API_INVOCATION_TIME in features else features[WRITE_TIME], utc=True
            ).to_numpy(),
            "_deleted": features.get(IS_DELETED, False),
        }
    )
    for column in ("_feature_time", "_write", "_invoked"):
        right[column] = pd.to_datetime(right[column], utc=True).dt.as_unit("ns")
    right["_deleted"] = right["_deleted"].fillna(False).astype(bool)
    for name in names:
        right[name] = features[name].to_numpy()
    # merge_asof takes, among right rows with equal times, the last in order: sort so the latest
    # write (then the latest API call) comes last.
    right = right.sort_values(["_feature_time", "_write", "_invoked"], kind="mergesort").drop(columns=["_invoked"])
    right = right.rename(columns={"_feature_time": "_match_time"})
    right["_at"] = right["_match_time"]

    joined = pd.merge_asof(
        left.sort_values("_at", kind="mergesort"),
        right.drop(columns=["_write"]),
        on="_at",
        by="_id",
        direction="backward",
        allow_exact_matches=True,
    )
    known = joined["_match_time"].notna() & ~joined["_deleted"].fillna(True).astype(bool)
    joined = joined.loc[known].sort_values(by="_row", kind="mergesort")

    result = pd.DataFrame({rid: joined["_id"].to_numpy(), label_time: joined["_at"].to_numpy()})
    result[label_time] = pd.to_datetime(result[label_time], utc=True)
    for name in names:
        result[name] = joined[name].to_numpy()
        kind = spec.feature_type(name)
        if kind == "Integral":
            result[name] = result[name].astype("int64")
        elif kind == "Fractional":
            result[name] = result[name].astype("float64")
    if label:
        result[spec.target or label] = joined["_label"].to_numpy()
    return result.reset_index(drop=True)


def build_training_set(
    spec: FeatureSpec,
    *,
    feature_database: str,
    feature_table: str,
    labels_database: str,
    labels_table: str,
    label_entity_column: str | None = None,
    label_time_column: str | None = None,
    label_column: str | None = None,
    workgroup: str | None = None,
    s3_output: str | None = None,
    boto3_session: boto3.Session | None = None,
    **read_options: Any,
) -> pd.DataFrame:
    """Run :func:`point_in_time_sql` on Athena and return the training set (columns of :func:`output_columns`).

    ``feature_table`` is the offline store's Glue table (``DataCatalogConfig.TableName`` of the
    feature group). Extra ``read_options`` go to ``awswrangler.athena.read_sql_query``.
    """
    import awswrangler as wr

    sql = point_in_time_sql(
        spec,
        feature_database=feature_database,
        feature_table=feature_table,
        labels_database=labels_database,
        labels_table=labels_table,
        label_entity_column=label_entity_column,
        label_time_column=label_time_column,
        label_column=label_column,
    )
    options: dict[str, Any] = {"database": feature_database, "boto3_session": boto3_session, **read_options}
    if workgroup is not None:
        options["workgroup"] = workgroup
    if s3_output is not None:
        options["s3_output"] = s3_output
    return wr.athena.read_sql_query(sql, **options)
