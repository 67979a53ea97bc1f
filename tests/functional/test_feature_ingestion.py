"""Feature ingestion, online lookup and point-in-time training sets against stubbed AWS APIs.

moto has no backend for ``sagemaker-featurestore-runtime``: in process its calls are NOT
intercepted (they would try to reach AWS). ``put_record`` and ``get_record`` are therefore answered
by botocore's ``Stubber`` on a real client, which also checks the request parameters against the
service model. The control plane (``create_feature_group``/``describe_feature_group``) runs on moto,
with the feature definitions the Pulumi program uses (``feature_definitions(spec)``).
Athena cannot run offline either: point-in-time semantics are checked on the pandas as-of join,
which implements the same rules as the SQL the training pipeline sends to Athena.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mlops.features import get_spec
from mlops.features.spec import feature_definitions, feature_record
from mlops.featurestore import (
    InvalidRecordsError,
    RecordNotFoundError,
    get_online_vector,
    ingest_records,
    point_in_time_join,
    runtime_client,
    to_put_record_payload,
)

SPEC = get_spec("customer-churn")
GROUP = "acme-mlops-dev-customer-churn-v1"
REGION = "eu-west-1"


def raw(customer: str, day: int, sessions: int = 2) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "event_time": pd.Timestamp(f"2024-05-{day:02d}T00:00:00Z"),
        "sessions": sessions,
        "minutes_active": 12.5,
        "support_tickets": 1,
        "plan": "standard",
        "monthly_spend": 19.99,
    }


def records(count: int) -> list[dict[str, Any]]:
    return [feature_record(SPEC, raw(f"c-{i:03d}", 1 + i % 28)) for i in range(count)]


def put_params(record: dict[str, Any]) -> dict[str, Any]:
    return {"FeatureGroupName": GROUP, "Record": to_put_record_payload(SPEC, record)}


@pytest.fixture
def runtime() -> Iterator[tuple[Any, Stubber]]:
    client = runtime_client(region_name=REGION)  # the configured client ingestion is meant to be given
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


# --- control plane (moto) --------------------------------------------------------------------


@mock_aws
def test_feature_group_from_the_spec_is_accepted_by_the_control_plane() -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_feature_group(
        FeatureGroupName=GROUP,
        RecordIdentifierFeatureName=SPEC.record_identifier,
        EventTimeFeatureName=SPEC.event_time,
        FeatureDefinitions=[{"FeatureName": n, "FeatureType": t} for n, t in feature_definitions(SPEC)],
        OnlineStoreConfig={"EnableOnlineStore": True, "TtlDuration": {"Unit": "Days", "Value": 7}},
        OfflineStoreConfig={
            "S3StorageConfig": {"S3Uri": "s3://acme-mlops-dev-features/customer-churn/"},
            "DisableGlueTableCreation": False,
            "TableFormat": "Iceberg",
        },
        RoleArn="arn:aws:iam::123456789012:role/acme-mlops-dev-customer-churn-fs",
    )
    described = sagemaker.describe_feature_group(FeatureGroupName=GROUP)
    assert [d["FeatureName"] for d in described["FeatureDefinitions"]] == [
        SPEC.record_identifier,
        SPEC.event_time,
        *SPEC.feature_names,
    ]
    assert described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"].startswith(
        "s3://acme-mlops-dev-features/customer-churn/"
    )


# --- ingestion (Stubber) ---------------------------------------------------------------------


def test_every_record_is_written_with_its_typed_values(runtime: tuple[Any, Stubber]) -> None:
    client, stubber = runtime
    batch = records(3)
    for record in batch:
        stubber.add_response("put_record", {}, put_params(record))
    report = ingest_records(client, GROUP, SPEC, batch, max_workers=1)
    assert (report.total, report.succeeded, report.failed, report.retries) == (3, 3, (), 0)
    assert to_put_record_payload(SPEC, batch[0])[1] == {
        "FeatureName": "event_time",
        "ValueAsString": "2024-05-01T00:00:00Z",
    }


def test_a_throttle_that_reaches_ingestion_is_reported_with_its_code(runtime: tuple[Any, Stubber]) -> None:
    # The Stubber answers before botocore's retry handler runs: this is what ingestion sees once botocore's
    # standard mode has given up (its retries are tested in test_feature_ingestion_stream.py).
    client, stubber = runtime
    (record,) = records(1)
    stubber.add_client_error("put_record", "ThrottlingException", "Rate exceeded", 400)
    report = ingest_records(client, GROUP, SPEC, [record], max_workers=1)
    (failure,) = report.failed
    assert (failure.record_id, failure.error_code, failure.message, failure.attempts) == (
        "'c-000' (#0)",
        "ThrottlingException",
        "Rate exceeded",
        1,
    )
    assert report.succeeded == 0 and report.failed_count == 1


def test_permanent_failures_are_reported_not_retried_and_not_dropped(runtime: tuple[Any, Stubber]) -> None:
    client, stubber = runtime
    batch = records(3)
    stubber.add_response("put_record", {}, put_params(batch[0]))
    stubber.add_client_error(
        "put_record", "ValidationError", "Feature sessions is not Integral", 400, expected_params=put_params(batch[1])
    )
    stubber.add_response("put_record", {}, put_params(batch[2]))
    report = ingest_records(client, GROUP, SPEC, batch, max_workers=1)
    assert report.succeeded == 2 and report.succeeded + len(report.failed) == report.total
    (failure,) = report.failed
    assert (failure.record_id, failure.index, failure.error_code, failure.attempts) == (
        "'c-001' (#1)",
        1,
        "ValidationError",
        1,
    )
    assert failure.message == "Feature sessions is not Integral"


def test_an_unknown_feature_group_fails_every_record_visibly(runtime: tuple[Any, Stubber]) -> None:
    client, stubber = runtime
    batch = records(2)
    for _ in batch:
        stubber.add_client_error("put_record", "ResourceNotFound", f"Resource {GROUP} not found", 404)
    report = ingest_records(client, GROUP, SPEC, batch, max_workers=1)
    assert [f.error_code for f in report.failed] == ["ResourceNotFound", "ResourceNotFound"]


class ConcurrencyProbe:
    """Wraps a client and records how many put_record calls run at once."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def put_record(self, **kwargs: Any) -> Any:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.02)
            return self.client.put_record(**kwargs)
        finally:
            with self.lock:
                self.running -= 1


def test_concurrency_is_bounded_by_max_workers(runtime: tuple[Any, Stubber]) -> None:
    client, stubber = runtime
    batch = records(24)
    for _ in batch:
        stubber.add_response("put_record", {})  # threads call in any order: no per-call parameters
    probe = ConcurrencyProbe(client)
    report = ingest_records(probe, GROUP, SPEC, batch, max_workers=3)
    assert report.ok and report.succeeded == 24
    assert 1 < probe.peak <= 3


# --- refusing bad records --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"customer_id": None}, "record #1: field 'customer_id': record identifier is missing"),
        ({"event_time": None}, "record 'c-001' (#1): field 'event_time': event time is missing"),
        (
            {"event_time": "01/05/2024"},
            "record 'c-001' (#1): field 'event_time': event time '01/05/2024' is not ISO-8601 UTC",
        ),
        ({"sessions": 2.5}, "record 'c-001' (#1): field 'sessions': feature 'sessions' is Integral, got 2.5"),
        ({"sessions": "2"}, "record 'c-001' (#1): field 'sessions': is Integral, got the string '2'"),
        (
            {"monthly_spend": True},
            "record 'c-001' (#1): field 'monthly_spend': feature 'monthly_spend' is Fractional, got a boolean",
        ),
        ({"plan_tier": None}, "record 'c-001' (#1): field 'plan_tier': value is missing"),
        ({"churned": 1}, "record 'c-001' (#1): field 'churned': not a feature of spec 'customer-churn'"),
    ],
)
def test_bad_records_are_refused_naming_the_record_and_field(
    runtime: tuple[Any, Stubber], change: dict[str, Any], expected: str
) -> None:
    client, _ = runtime
    batch = records(2)
    batch[1] = {**batch[1], **change}
    with pytest.raises(InvalidRecordsError) as caught:
        ingest_records(client, GROUP, SPEC, batch)
    (error,) = caught.value.errors
    assert str(error).startswith(expected)
    assert "nothing written" in str(caught.value)  # the Stubber would fail on an unexpected call


def test_bad_records_can_be_reported_while_the_rest_is_written(runtime: tuple[Any, Stubber]) -> None:
    client, stubber = runtime
    batch = records(2)
    batch[0] = {key: value for key, value in batch[0].items() if key != "event_time"}
    stubber.add_response("put_record", {}, put_params(batch[1]))
    report = ingest_records(client, GROUP, SPEC, batch, max_workers=1, on_invalid="report")
    (failure,) = report.failed
    assert (failure.record_id, failure.error_code, failure.attempts) == ("'c-000' (#0)", "InvalidRecord", 0)
    assert "field 'event_time'" in failure.message and report.succeeded == 1


# --- online lookup (Stubber) -----------------------------------------------------------------


def get_params(record_id: str) -> dict[str, Any]:
    return {
        "FeatureGroupName": GROUP,
        "RecordIdentifierValueAsString": record_id,
        "FeatureNames": list(SPEC.feature_names),
        "ExpirationTimeResponse": "Enabled",  # the lookup treats a record past its ExpiresAt as absent
    }


def test_online_lookup_returns_the_vector_in_spec_order(runtime: tuple[Any, Stubber]) -> None:
    client, stubber = runtime
    (record,) = records(1)
    payload = [v for v in to_put_record_payload(SPEC, record) if v["FeatureName"] in SPEC.feature_names]
    stubber.add_response("get_record", {"Record": list(reversed(payload))}, get_params("c-000"))
    vector = get_online_vector(client, GROUP, SPEC, "c-000")
    assert vector == [record[name] for name in SPEC.feature_names]
    assert [type(v) for v in vector] == [int, float, int, float, int]


def test_online_lookup_of_a_missing_record_fails(runtime: tuple[Any, Stubber]) -> None:
    client, stubber = runtime
    stubber.add_response("get_record", {}, get_params("c-404"))
    with pytest.raises(RecordNotFoundError, match=f"feature group '{GROUP}' has no online record 'c-404'"):
        get_online_vector(client, GROUP, SPEC, "c-404")


# --- point-in-time training sets -------------------------------------------------------------


def offline_row(customer: str, event_time: str, written: str, sessions: int, deleted: bool = False) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "event_time": event_time,
        "write_time": pd.Timestamp(written, tz="UTC"),
        "api_invocation_time": pd.Timestamp(written, tz="UTC"),
        "is_deleted": deleted,
        "sessions": sessions,
        "minutes_per_session": 1.5,
        "support_tickets": 0,
        "monthly_spend": 9.99,
        "plan_tier": 1,
    }


def sessions_at(features: pd.DataFrame, customer: str, label_time: str) -> list[int]:
    labels = pd.DataFrame({"customer_id": [customer], "event_time": [pd.Timestamp(label_time)], "churned": [1]})
    return point_in_time_join(SPEC, labels, features)["sessions"].tolist()


def test_a_late_arriving_value_with_an_earlier_event_time_is_seen() -> None:
    features = pd.DataFrame(
        [
            offline_row("c-1", "2024-05-01T00:00:00Z", "2024-05-01T00:05:00", 1),
            offline_row("c-1", "2024-05-03T00:00:00Z", "2024-05-09T00:00:00", 3),  # arrived six days late
        ]
    )
    assert sessions_at(features, "c-1", "2024-05-04T00:00:00") == [3]


def test_a_value_with_an_event_time_after_the_label_time_is_not_seen() -> None:
    features = pd.DataFrame(
        [
            offline_row("c-1", "2024-05-01T00:00:00Z", "2024-05-01T00:05:00", 1),
            offline_row("c-1", "2024-05-05T00:00:00Z", "2024-04-30T00:00:00", 5),  # written early, happens later
        ]
    )
    assert sessions_at(features, "c-1", "2024-05-04T00:00:00") == [1]
    assert sessions_at(features, "c-1", "2024-05-05T00:00:00") == [5]  # at the event time itself it is known


def test_the_latest_write_wins_between_records_with_the_same_event_time() -> None:
    features = pd.DataFrame(
        [
            offline_row("c-1", "2024-05-02T00:00:00Z", "2024-05-08T00:00:00", 22),  # the correction
            offline_row("c-1", "2024-05-02T00:00:00Z", "2024-05-02T00:05:00", 2),
        ]
    )
    assert sessions_at(features, "c-1", "2024-05-03T00:00:00") == [22]


def test_deleted_and_not_yet_known_entities_give_no_row() -> None:
    features = pd.DataFrame(
        [
            offline_row("c-1", "2024-05-01T00:00:00Z", "2024-05-01T00:05:00", 1),
            offline_row("c-1", "2024-05-02T00:00:00Z", "2024-05-02T00:05:00", 1, deleted=True),
        ]
    )
    assert sessions_at(features, "c-1", "2024-05-01T12:00:00") == [1]
    assert sessions_at(features, "c-1", "2024-05-03T00:00:00") == []  # deleted at label time
    assert sessions_at(features, "c-2", "2024-05-03T00:00:00") == []  # no features yet


def test_training_set_rows_keep_label_order_and_labels() -> None:
    features = pd.DataFrame(
        [
            offline_row("c-1", "2024-05-01T00:00:00Z", "2024-05-01T00:05:00", 1),
            offline_row("c-2", "2024-05-01T00:00:00Z", "2024-05-01T00:05:00", 7),
            offline_row("c-1", "2024-05-03T00:00:00Z", "2024-05-03T00:05:00", 3),
        ]
    )
    labels = pd.DataFrame(
        {
            "customer_id": ["c-1", "c-2", "c-1"],
            "event_time": pd.to_datetime(["2024-05-04", "2024-05-02", "2024-05-02"]),
            "churned": [1, 0, 0],
        }
    )
    result = point_in_time_join(SPEC, labels, features)
    assert list(result.columns) == ["customer_id", "event_time", *SPEC.feature_names, "churned"]
    assert result[["customer_id", "sessions", "churned"]].values.tolist() == [
        ["c-1", 3, 1],
        ["c-2", 7, 0],
        ["c-1", 1, 0],
    ]


def test_label_and_feature_times_of_different_resolutions_join() -> None:
    """Labels read from Parquet (nanoseconds) join feature event times parsed from ISO strings (microseconds)."""
    features = pd.DataFrame([offline_row("c-1", "2024-05-01T00:00:00Z", "2024-05-01T00:05:00", 2)])
    labels = pd.DataFrame(
        {
            "customer_id": ["c-1"],
            "event_time": pd.to_datetime(["2024-05-02T00:00:00Z"], utc=True).as_unit("ns"),
            "churned": [0],
        }
    )
    assert point_in_time_join(SPEC, labels, features)["sessions"].tolist() == [2]
