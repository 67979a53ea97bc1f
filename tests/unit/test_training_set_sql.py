"""The Athena point-in-time query: its structure (Athena itself cannot run offline)."""

from __future__ import annotations

import re

import pytest

from mlops.features import get_spec
from mlops.featurestore.offline import output_columns, point_in_time_sql

SPEC = get_spec("customer-churn")


def sql(**overrides: str) -> str:
    args = {
        "feature_database": "acme_mlops_dev_features",
        "feature_table": "acme_mlops_dev_customer_churn_v1",
        "labels_database": "acme_mlops_dev_curated",
        "labels_table": "customer_activity",
        **overrides,
    }
    return point_in_time_sql(SPEC, **args)


def final_select(query: str) -> str:
    return query[query.rindex("SELECT") :]


def test_reads_the_offline_store_table_and_the_labels_table() -> None:
    query = sql()
    assert 'FROM "acme_mlops_dev_features"."acme_mlops_dev_customer_churn_v1"' in query
    assert 'FROM "acme_mlops_dev_curated"."customer_activity"' in query


def test_only_feature_records_at_or_before_the_label_time_join() -> None:
    query = sql()
    assert 'CAST(from_iso8601_timestamp("event_time") AS timestamp) AS feature_time' in query
    assert re.search(r"ON f\.record_id = l\.record_id\s+AND f\.feature_time <= l\.label_time", query)


def test_the_latest_event_then_the_latest_write_wins_and_deletions_hide_values() -> None:
    query = sql()
    assert re.search(
        r"PARTITION BY l\.label_row\s+ORDER BY f\.feature_time DESC, f\.write_time DESC, f\.api_invocation_time DESC",
        query,
    )
    assert "WHERE recency = 1 AND NOT is_deleted" in query


def test_selects_the_training_set_columns_in_spec_order() -> None:
    selected = re.findall(r'"([^"]+)"', final_select(sql()).split("FROM")[0])
    assert selected == output_columns(SPEC)


def test_label_columns_can_be_renamed() -> None:
    query = sql(label_time_column="label_time", label_column="will_churn", label_entity_column="cid")
    assert '"cid" AS record_id' in query and '"label_time" AS label_time' in query and '"will_churn" AS label' in query
    assert 'label AS "churned"' in final_select(query)


def test_identifiers_that_could_escape_their_quotes_are_refused() -> None:
    with pytest.raises(ValueError, match="not a plain identifier"):
        sql(labels_table='x" UNION SELECT')


def test_build_training_set_sends_the_query_to_athena_through_awswrangler(monkeypatch: pytest.MonkeyPatch) -> None:
    import awswrangler as wr
    import pandas as pd

    from mlops.featurestore import build_training_set

    calls: list[tuple[str, dict[str, object]]] = []

    def read_sql_query(sql: str, **kwargs: object) -> pd.DataFrame:
        calls.append((sql, kwargs))
        return pd.DataFrame(columns=output_columns(SPEC))

    monkeypatch.setattr(wr.athena, "read_sql_query", read_sql_query)
    frame = build_training_set(
        SPEC,
        feature_database="acme_mlops_dev_features",
        feature_table="acme_mlops_dev_customer_churn_v1",
        labels_database="acme_mlops_dev_curated",
        labels_table="customer_activity",
        workgroup="ml",
        ctas_approach=False,
    )
    ((query, options),) = calls
    assert query == sql()
    assert options == {
        "database": "acme_mlops_dev_features",
        "boto3_session": None,
        "workgroup": "ml",
        "ctas_approach": False,
    }
    assert list(frame.columns) == output_columns(SPEC)
