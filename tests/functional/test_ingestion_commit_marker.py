"""A committed batch announces itself with one marker object, outside the table (what new-data retraining matches)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from mlops.ingestion import COMMITS_PREFIX, SchemaMismatchError, commit_marker_key, write_curated_dataset
from tests.functional.test_ingestion import (  # the ingestion tests' fixtures and helpers
    BUCKET,
    TABLE,
    Fault,
    daily_batch,
    good_frame,
    ingest,
    session,
    shared_session,
)

__all__ = ["session", "shared_session"]


def markers(aws: boto3.Session) -> list[str]:
    listing = aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=COMMITS_PREFIX)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_a_committed_batch_writes_exactly_one_marker_named_by_its_batch_id(session: boto3.Session) -> None:
    report = ingest(good_frame(), session, batch_id="load-2024-05-02")
    assert markers(session) == ["_commits/customer_activity/load-2024-05-02.json"]
    assert report.commit_marker == f"s3://{BUCKET}/{commit_marker_key(TABLE, 'load-2024-05-02')}"


def test_the_marker_lists_what_the_batch_committed(session: boto3.Session) -> None:
    report = ingest(good_frame(), session)
    body = session.client("s3").get_object(Bucket=BUCKET, Key=markers(session)[0])["Body"].read()
    manifest = json.loads(body)
    assert (manifest["batchId"], manifest["rows"], manifest["table"]) == (report.batch_id, 4, "customer_activity")
    assert manifest["files"] == list(report.files)


def test_the_marker_is_outside_the_tables_location(session: boto3.Session) -> None:
    ingest(good_frame(), session)
    assert not any(k.startswith(TABLE.location_prefix) for k in markers(session))


def test_a_rerun_of_the_same_batch_rewrites_the_same_marker(session: boto3.Session) -> None:
    ingest(good_frame(), session)
    ingest(good_frame(), session)
    assert len(markers(session)) == 1


def test_a_refused_frame_writes_no_marker(session: boto3.Session) -> None:
    with pytest.raises(SchemaMismatchError):
        ingest(good_frame().drop(columns=["plan"]), session)
    assert markers(session) == []


def test_a_batch_that_failed_before_its_commit_has_no_marker(session: boto3.Session) -> None:
    with Fault(session, "s3.CopyObject", fail_on=1), pytest.raises(EndpointConnectionError):
        ingest(daily_batch(), session)
    assert markers(session) == []


def test_a_table_under_the_commits_prefix_is_refused(session: boto3.Session) -> None:
    table = TABLE.model_copy(update={"prefix": "_commits/x/"})
    with pytest.raises(ValueError, match="_commits/"):
        write_curated_dataset(good_frame(), table, bucket=BUCKET, database="d", boto3_session=session)
