"""Curated-zone ingestion against moto: good frames land and are catalogued, bad ones leave no trace."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import awswrangler as wr
import boto3
import pandas as pd
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from infra.catalog import ColumnSpec, TableSpec
from mlops.ingestion import (
    CatalogMismatchError,
    ColumnTypeError,
    EmptyDatasetError,
    IngestionError,
    PartitionValueError,
    SchemaMismatchError,
    batch_id_of,
    validate_frame,
    write_curated_dataset,
)
from tests.support.functional_moto import empty_backends
from tools.customer_activity import customer_activity_table

REGION = "eu-west-1"
BUCKET = "acme-mlops-test-curated"
DATABASE = "acme_mlops_test_curated"

TABLE = customer_activity_table()
LOCATION = f"s3://{BUCKET}/customer_activity/"


def good_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["c-1", "c-2", "c-3", "c-1"],
            "event_time": pd.to_datetime(
                ["2024-05-01 08:00:00", "2024-05-01 09:30:00", "2024-05-02 10:15:00", "2024-05-02 23:59:59"]
            ),
            "sessions": [3, 1, 7, 2],
            "minutes_active": [12.5, 3.0, 55.25, 8.0],
            "support_tickets": [0, 1, 0, 2],
            "plan": ["basic", "pro", "pro", "basic"],
            "monthly_spend": [9.99, 29.99, 29.99, 9.99],
            "churned": [0, 0, 1, 0],
            "dt": ["2024-05-01", "2024-05-01", "2024-05-02", "2024-05-02"],
        }
    )


@pytest.fixture(scope="module")
def shared_session() -> Iterator[boto3.Session]:
    """One session for the module: it caches botocore's service models (loading them costs ~1 s).

    And one moto mock for the module: entering ``mock_aws()`` costs ~9 ms (tests/support/functional_moto.py).
    :func:`session` empties moto's backends before every test, as entering the mock did.
    """
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@functools.cache
def setup_clients(aws: boto3.Session) -> tuple[Any, Any]:
    """The S3 and Glue clients :func:`session` creates the bucket and the database with, one pair per session (a
    new client costs ~10 ms). Made before any test registers a :class:`Fault` on the session, so none carries
    one; the code under test and the tests' helpers make clients of their own, as before."""
    return aws.client("s3"), aws.client("glue")


@pytest.fixture
def session(shared_session: boto3.Session) -> boto3.Session:
    """A fresh moto account with the curated bucket and its Glue database, as the platform creates them.

    Clients are created while the mock is on (by the test and by awswrangler), so every call is intercepted.
    """
    empty_backends()  # nothing the test before wrote survives
    s3, glue = setup_clients(shared_session)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    glue.create_database(DatabaseInput={"Name": DATABASE})
    return shared_session


def ingest(df: pd.DataFrame, aws: boto3.Session, **kwargs: object):
    return write_curated_dataset(df, TABLE, bucket=BUCKET, database=DATABASE, boto3_session=aws, **kwargs)  # type: ignore[arg-type]


def object_keys(aws: boto3.Session) -> list[str]:
    """Every object of the bucket but the commit markers (tests/functional/test_ingestion_commit_marker.py)."""
    listing = aws.client("s3").list_objects_v2(Bucket=BUCKET)
    return sorted(o["Key"] for o in listing.get("Contents", []) if not o["Key"].startswith("_commits/"))


def glue_tables(aws: boto3.Session) -> list[str]:
    return [t["Name"] for t in aws.client("glue").get_tables(DatabaseName=DATABASE)["TableList"]]


def create_table_like_pulumi(aws: boto3.Session, columns: list[dict[str, str]] | None = None) -> None:
    """The table as ``infra/catalog.py`` declares it (description and parameters included)."""
    aws.client("glue").create_table(
        DatabaseName=DATABASE,
        TableInput={
            "Name": TABLE.name,
            "Description": "managed by pulumi",
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"EXTERNAL": "TRUE", "classification": "parquet", "parquet.compression": "SNAPPY"},
            "PartitionKeys": [{"Name": k.name, "Type": k.type} for k in TABLE.partition_keys],
            "StorageDescriptor": {
                "Columns": columns or [{"Name": c.name, "Type": c.type} for c in TABLE.columns],
                "Location": LOCATION,
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
            },
        },
    )


# --- a good frame -----------------------------------------------------------------------------


def test_good_frame_lands_as_parquet_partitions_under_the_table_location(session: boto3.Session) -> None:
    ingest(good_frame(), session)
    keys = object_keys(session)
    assert keys
    assert all(k.startswith("customer_activity/dt=") and k.endswith(".parquet") for k in keys), keys
    assert {k.split("/")[1] for k in keys} == {"dt=2024-05-01", "dt=2024-05-02"}


def test_good_frame_creates_the_glue_table_with_the_declared_schema(session: boto3.Session) -> None:
    ingest(good_frame(), session)
    table = session.client("glue").get_table(DatabaseName=DATABASE, Name=TABLE.name)["Table"]
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        (c.name, c.type) for c in TABLE.columns
    ]
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [(k.name, k.type) for k in TABLE.partition_keys]
    assert table["StorageDescriptor"]["Location"].rstrip("/") == LOCATION.rstrip("/")


def test_good_frame_registers_its_partitions(session: boto3.Session) -> None:
    ingest(good_frame(), session)
    partitions = session.client("glue").get_partitions(DatabaseName=DATABASE, TableName=TABLE.name)["Partitions"]
    assert sorted(p["Values"][0] for p in partitions) == ["2024-05-01", "2024-05-02"]


def test_good_frame_reads_back_unchanged(session: boto3.Session) -> None:
    df = good_frame()
    ingest(df, session)
    back = wr.s3.read_parquet(LOCATION, dataset=True, boto3_session=session)
    back["dt"] = back["dt"].astype(str)  # partition values come back as categories
    order = ["dt", "customer_id", "event_time"]
    expected = df.sort_values(by=order).reset_index(drop=True)
    actual = pd.DataFrame(back[list(df.columns)]).sort_values(by=order).reset_index(drop=True)
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False)


def test_report_says_what_was_written(session: boto3.Session) -> None:
    report = ingest(good_frame(), session)
    assert (report.database, report.table, report.location, report.rows) == (DATABASE, TABLE.name, LOCATION, 4)
    assert sorted(f"s3://{BUCKET}/{k}" for k in object_keys(session)) == sorted(report.files)
    assert report.partitions == (f"{LOCATION}dt=2024-05-01/", f"{LOCATION}dt=2024-05-02/")


def test_existing_table_gets_partitions_but_keeps_its_definition(session: boto3.Session) -> None:
    create_table_like_pulumi(session)
    ingest(good_frame(), session)
    glue = session.client("glue")
    table = glue.get_table(DatabaseName=DATABASE, Name=TABLE.name)["Table"]
    assert table["Description"] == "managed by pulumi"
    assert table["Parameters"]["parquet.compression"] == "SNAPPY"
    assert len(glue.get_partitions(DatabaseName=DATABASE, TableName=TABLE.name)["Partitions"]) == 2


def test_overwrite_partitions_makes_a_rerun_idempotent(session: boto3.Session) -> None:
    ingest(good_frame(), session, mode="overwrite_partitions")
    ingest(good_frame(), session, mode="overwrite_partitions")
    assert len(wr.s3.read_parquet(LOCATION, dataset=True, boto3_session=session)) == 4


def test_callers_frame_is_not_modified(session: boto3.Session) -> None:
    df = good_frame()
    ingest(df, session)
    pd.testing.assert_frame_equal(df, good_frame())


def test_kms_key_is_requested_when_given(session: boto3.Session) -> None:
    key_arn = session.client("kms").create_key()["KeyMetadata"]["Arn"]
    ingest(good_frame(), session, kms_key_arn=key_arn)
    head = session.client("s3").head_object(Bucket=BUCKET, Key=object_keys(session)[0])
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_arn


# --- bad frames: refused before anything is written -------------------------------------------


def _empty(df: pd.DataFrame) -> pd.DataFrame:
    return df.iloc[0:0]


def _missing_column(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["plan"])


def _extra_column(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(notes="hello")


def _wrong_type(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(sessions=["3", "1", "seven", "2"])


def _null_partition(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(dt=["2024-05-01", None, "2024-05-02", "2024-05-02"])


BAD_FRAMES: list[tuple[Callable[[pd.DataFrame], pd.DataFrame], type[IngestionError], str]] = [
    (_empty, EmptyDatasetError, "customer_activity"),
    (_missing_column, SchemaMismatchError, "plan"),
    (_extra_column, SchemaMismatchError, "notes"),
    (_wrong_type, ColumnTypeError, "sessions"),
    (_null_partition, PartitionValueError, "dt"),
]
BAD_IDS = ["empty", "missing-column", "extra-column", "wrong-type", "null-partition"]


@pytest.mark.parametrize(("spoil", "error", "named"), BAD_FRAMES, ids=BAD_IDS)
def test_bad_frame_raises_its_specific_error_naming_the_problem(
    session: boto3.Session, spoil: Callable[[pd.DataFrame], pd.DataFrame], error: type[IngestionError], named: str
) -> None:
    with pytest.raises(error, match=named):
        ingest(spoil(good_frame()), session)


@pytest.mark.parametrize(("spoil", "error", "named"), BAD_FRAMES, ids=BAD_IDS)
def test_bad_frame_writes_no_objects(
    session: boto3.Session, spoil: Callable[[pd.DataFrame], pd.DataFrame], error: type[IngestionError], named: str
) -> None:
    with pytest.raises(IngestionError):
        ingest(spoil(good_frame()), session)
    assert object_keys(session) == []


@pytest.mark.parametrize(("spoil", "error", "named"), BAD_FRAMES, ids=BAD_IDS)
def test_bad_frame_creates_no_glue_table(
    session: boto3.Session, spoil: Callable[[pd.DataFrame], pd.DataFrame], error: type[IngestionError], named: str
) -> None:
    with pytest.raises(IngestionError):
        ingest(spoil(good_frame()), session)
    assert glue_tables(session) == []


def test_schema_mismatch_lists_missing_and_extra_columns(session: boto3.Session) -> None:
    with pytest.raises(SchemaMismatchError) as caught:
        ingest(good_frame().drop(columns=["plan", "churned"]).assign(notes="x"), session)
    assert caught.value.missing == ("plan", "churned")
    assert caught.value.extra == ("notes",)


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("sessions", [1.5, 2.0, 3.0, 4.0]),  # fractional in an int column
        ("churned", [True, False, True, False]),  # booleans are not ints
        ("plan", [1, 2, 3, 4]),  # numbers in a string column
        ("event_time", ["2024-05-01", "2024-05-01", "2024-05-02", "2024-05-02"]),  # strings are not parsed
        ("minutes_active", ["1.0", "2.0", "3.0", "4.0"]),  # strings in a double column
        ("sessions", [1, 2, 3, 2**40]),  # out of the int range
    ],
    ids=["fraction-in-int", "bool-in-int", "int-in-string", "string-in-timestamp", "string-in-double", "int-overflow"],
)
def test_values_not_convertible_to_the_declared_type_are_refused(
    session: boto3.Session, column: str, values: list[object]
) -> None:
    with pytest.raises(ColumnTypeError) as caught:
        ingest(good_frame().assign(**{column: values}), session)
    assert caught.value.columns == (column,)
    assert object_keys(session) == []


def test_partition_value_with_a_slash_is_refused(session: boto3.Session) -> None:
    with pytest.raises(PartitionValueError, match="dt"):
        ingest(good_frame().assign(dt=["2024/05/01"] * 4), session)
    assert object_keys(session) == []


def test_existing_table_with_another_schema_is_refused(session: boto3.Session) -> None:
    create_table_like_pulumi(session, columns=[{"Name": "customer_id", "Type": "string"}])
    with pytest.raises(CatalogMismatchError, match="columns"):
        ingest(good_frame(), session)
    assert object_keys(session) == []


def test_unknown_mode_is_refused(session: boto3.Session) -> None:
    with pytest.raises(ValueError, match="overwrite"):
        ingest(good_frame(), session, mode="overwrite")
    assert object_keys(session) == []


def test_ingestion_module_does_not_import_pulumi() -> None:
    code = "import sys, mlops.ingestion; print(sorted(m for m in sys.modules if m.split('.')[0].startswith('pulumi')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- retries: a failed write is re-run without duplicates ---------------------------------------
#
# Faults are injected at the botocore layer (a `before-call` handler on the session raises a connection
# error on the Nth call of one operation), so the test does not depend on how the writer is built: any
# S3 upload, copy or Glue call the ingestion makes can be the one that fails.


class Fault:
    """Raise a connection error on the ``fail_on``-th call of ``service.Operation`` made through ``aws``."""

    def __init__(self, aws: boto3.Session, event: str, fail_on: int) -> None:
        self.aws = aws
        self.event = f"before-call.{event}"
        self.fail_on = fail_on
        self.calls = 0

    def __call__(self, **_: object) -> None:
        self.calls += 1
        if self.calls == self.fail_on:
            raise EndpointConnectionError(endpoint_url=f"https://{self.event}.invalid")

    def __enter__(self) -> Fault:
        self.aws.events.register(self.event, self, unique_id=f"fault-{id(self)}")
        return self

    def __exit__(self, *_: object) -> None:
        self.aws.events.unregister(self.event, unique_id=f"fault-{id(self)}")


def daily_batch(rows: int = 72, days: int = 3) -> pd.DataFrame:
    """``rows`` rows spread over ``days`` daily partitions (one Parquet file per partition)."""
    day = [f"2024-05-{1 + i % days:02d}" for i in range(rows)]
    return pd.DataFrame(
        {
            "customer_id": [f"c-{i:03d}" for i in range(rows)],
            "event_time": pd.to_datetime([f"{d} 08:00:00" for d in day]) + pd.to_timedelta(range(rows), unit="s"),
            "sessions": [i % 9 for i in range(rows)],
            "minutes_active": [float(i) / 4 for i in range(rows)],
            "support_tickets": [i % 3 for i in range(rows)],
            "plan": ["basic" if i % 2 else "pro" for i in range(rows)],
            "monthly_spend": [9.99 + i for i in range(rows)],
            "churned": [i % 2 for i in range(rows)],
            "dt": day,
        }
    )


def read_back(aws: boto3.Session) -> pd.DataFrame:
    """Every row under the table's location, as a reader listing the prefix (Athena, Spark) sees it."""
    keys = [k for k in object_keys(aws) if k.startswith(TABLE.location_prefix)]
    if not keys:
        return pd.DataFrame()
    back = wr.s3.read_parquet(LOCATION, dataset=True, boto3_session=aws)
    back["dt"] = back["dt"].astype(str)
    return back


def same_rows(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The same multiset of rows, whatever the order (files are read back in key order)."""
    order = ["customer_id", "event_time"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(actual[list(expected.columns)]).sort_values(by=order).reset_index(drop=True),
        expected.sort_values(by=order).reset_index(drop=True),
        check_dtype=False,
    )


def glue_partitions(aws: boto3.Session) -> list[str]:
    if TABLE.name not in glue_tables(aws):
        return []
    found = aws.client("glue").get_partitions(DatabaseName=DATABASE, TableName=TABLE.name)["Partitions"]
    return sorted(p["Values"][0] for p in found)


def test_a_fault_mid_upload_leaves_nothing_readers_can_see(session: boto3.Session) -> None:
    # The connection drops on the second Parquet upload: one partition file is already stored.
    with Fault(session, "s3.PutObject", fail_on=2), pytest.raises(EndpointConnectionError):
        ingest(daily_batch(), session)
    assert [k for k in object_keys(session) if k.startswith(TABLE.location_prefix)] == []
    assert glue_tables(session) == []


def test_the_default_rerun_after_a_fault_mid_upload_holds_each_row_once(session: boto3.Session) -> None:
    batch = daily_batch()
    with Fault(session, "s3.PutObject", fail_on=2), pytest.raises(EndpointConnectionError):
        ingest(batch, session)
    report = ingest(batch, session)  # the documented retry: the same call again, default mode
    back = read_back(session)
    assert (len(back), report.rows) == (72, 72)
    same_rows(back, batch)
    assert glue_partitions(session) == ["2024-05-01", "2024-05-02", "2024-05-03"]


def test_a_fault_while_committing_is_healed_by_the_rerun(session: boto3.Session) -> None:
    # Staged files are copied into the table one by one (S3 has no atomic rename); the second copy fails,
    # so one partition of the batch is already in place when the call raises.
    batch = daily_batch()
    with Fault(session, "s3.CopyObject", fail_on=2), pytest.raises(EndpointConnectionError):
        ingest(batch, session)
    assert 0 < len(read_back(session)) < 72  # a partial commit is visible until the re-run...
    ingest(batch, session)
    same_rows(read_back(session), batch)  # ...which converges to the batch, once
    assert glue_partitions(session) == ["2024-05-01", "2024-05-02", "2024-05-03"]


def test_a_fault_while_cataloguing_is_healed_by_the_rerun(session: boto3.Session) -> None:
    batch = daily_batch()
    with Fault(session, "glue.BatchCreatePartition", fail_on=1), pytest.raises(EndpointConnectionError):
        ingest(batch, session)
    ingest(batch, session)
    same_rows(read_back(session), batch)
    assert glue_partitions(session) == ["2024-05-01", "2024-05-02", "2024-05-03"]


def test_repeated_faults_then_success_still_hold_each_row_once(session: boto3.Session) -> None:
    batch = daily_batch()
    for event, nth in [("s3.PutObject", 3), ("s3.CopyObject", 1), ("s3.CopyObject", 3), ("s3.DeleteObjects", 1)]:
        with Fault(session, event, fail_on=nth) as fault, pytest.raises(EndpointConnectionError):
            ingest(batch, session)
        assert fault.calls >= nth, f"{event} #{nth} never happened"
    ingest(batch, session)
    same_rows(read_back(session), batch)


def test_no_staged_object_is_left_after_a_successful_rerun(session: boto3.Session) -> None:
    with Fault(session, "s3.CopyObject", fail_on=2), pytest.raises(EndpointConnectionError):
        ingest(daily_batch(), session)
    ingest(daily_batch(), session)
    assert all(k.startswith(TABLE.location_prefix) for k in object_keys(session)), object_keys(session)


def test_rerunning_a_successful_batch_in_the_default_mode_adds_nothing(session: boto3.Session) -> None:
    first = ingest(good_frame(), session)
    second = ingest(good_frame(), session)
    assert len(read_back(session)) == 4
    assert first.batch_id == second.batch_id and first.files == second.files


def test_the_same_rows_in_another_order_are_the_same_batch(session: boto3.Session) -> None:
    ingest(good_frame(), session)
    ingest(good_frame().iloc[::-1], session)
    assert len(read_back(session)) == 4


def test_batches_with_distinct_ids_append(session: boto3.Session) -> None:
    ingest(good_frame(), session, batch_id="landing-0001")
    ingest(good_frame(), session, batch_id="landing-0002")
    assert len(read_back(session)) == 8


def test_a_rerun_under_the_same_batch_id_replaces_that_batch_only(session: boto3.Session) -> None:
    ingest(daily_batch(rows=6), session, batch_id="other")
    ingest(good_frame(), session, batch_id="landing-0001")
    corrected = good_frame().assign(sessions=[30, 10, 70, 20])
    ingest(corrected, session, batch_id="landing-0001")  # the same source, re-processed after a fix
    back = read_back(session)
    assert len(back) == 6 + 4
    assert sorted(back[back["customer_id"].isin(["c-1", "c-2", "c-3"])]["sessions"]) == [10, 20, 30, 70]


def test_overwrite_partitions_replaces_every_batch_in_the_batchs_partitions_only(session: boto3.Session) -> None:
    ingest(daily_batch(rows=6, days=3), session, batch_id="old")  # two rows in each of 05-01, 05-02, 05-03
    ingest(good_frame(), session, mode="overwrite_partitions")  # rows in 05-01 and 05-02 only
    back = read_back(session)
    assert sorted(back["dt"].unique()) == ["2024-05-01", "2024-05-02", "2024-05-03"]
    assert len(back[back["dt"] == "2024-05-03"]) == 2  # untouched
    same_rows(pd.DataFrame(back[back["dt"] != "2024-05-03"]), good_frame())


@pytest.mark.parametrize("batch_id", ["", "a/b", "../up", "x" * 129, "_hidden", "sp ace"])
def test_unusable_batch_ids_are_refused_before_any_write(session: boto3.Session, batch_id: str) -> None:
    with pytest.raises(ValueError, match="batch_id"):
        ingest(good_frame(), session, batch_id=batch_id)
    assert object_keys(session) == []


# --- the batch id of a frame ---------------------------------------------------------------------

WIDE = TableSpec(
    name="wide",
    zone="curated",
    columns=(
        ColumnSpec(name="id", type="string"),
        ColumnSpec(name="tags", type="array<string>"),
        ColumnSpec(name="amount", type="decimal(10,2)"),
        ColumnSpec(name="day", type="date"),
        ColumnSpec(name="blob", type="binary"),
        ColumnSpec(name="flag", type="boolean"),
        ColumnSpec(name="n", type="bigint"),
    ),
)


def wide_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "b", None],
            "tags": [["x", "y"], [], None],
            "amount": [decimal.Decimal("1.10"), decimal.Decimal("2.00"), None],
            "day": [dt.date(2024, 5, 1), dt.date(2024, 5, 2), None],
            "blob": [b"\x00\x01", b"", None],
            "flag": [True, False, None],
            "n": [1, 2**40, None],
        }
    )


def wide_id(df: pd.DataFrame) -> str:
    return batch_id_of(validate_frame(df, WIDE), WIDE)


def test_a_frames_batch_id_ignores_row_order_and_covers_every_value() -> None:
    base = wide_id(wide_frame())
    assert wide_id(wide_frame().iloc[[2, 0, 1]]) == base  # the same rows, read back in another order
    changed = wide_frame()
    changed.at[0, "tags"] = ["x", "z"]  # one element of one array
    assert wide_id(changed) != base
    assert wide_id(wide_frame().assign(amount=[decimal.Decimal("1.11"), decimal.Decimal("2.00"), None])) != base
    assert wide_id(pd.concat([wide_frame(), wide_frame().iloc[[0]]], ignore_index=True)) != base  # a repeated row


def test_the_same_rows_for_another_table_are_another_batch() -> None:
    other = TableSpec(name="wide_copy", zone="curated", columns=WIDE.columns)
    assert batch_id_of(validate_frame(wide_frame(), other), other) != wide_id(wide_frame())


def test_a_batch_of_every_column_kind_rewrites_the_same_objects_on_a_rerun(session: boto3.Session) -> None:
    first = write_curated_dataset(wide_frame(), WIDE, bucket=BUCKET, database=DATABASE, boto3_session=session)
    again = write_curated_dataset(wide_frame(), WIDE, bucket=BUCKET, database=DATABASE, boto3_session=session)
    assert first.files == again.files and len(first.files) == 1
    assert len(wr.s3.read_parquet(f"s3://{BUCKET}/wide/", dataset=True, boto3_session=session)) == 3


def test_a_rerun_never_touches_a_batch_whose_id_extends_its_own(session: boto3.Session) -> None:
    ingest(daily_batch(rows=6), session, batch_id="landing-0001")
    ingest(good_frame(), session, batch_id="landing")  # "landing-" is a prefix of the other batch's names
    ingest(good_frame(), session, batch_id="landing")
    assert len(read_back(session)) == 6 + 4
