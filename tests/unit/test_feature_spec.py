"""The feature spec as the single source of truth: training and serving compute the same vectors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from infra.config import ConfigError, parse_stack_config
from mlops.features import FeatureSpecError, get_spec
from mlops.features.spec import (
    feature_record,
    format_event_time,
    frame_to_vectors,
    record_to_vector,
    transform_frame,
)
from mlops.featurestore import get_online_vector, to_put_record_payload, validate_record

SPEC = get_spec("customer-churn")

RAW = pd.DataFrame(
    {
        "customer_id": ["c-001", "c-002", "c-003", "c-004"],
        "event_time": pd.to_datetime(
            ["2024-05-01T00:00:00Z", "2024-05-01T06:30:00Z", "2024-05-02T00:00:00.250Z", "2024-05-02T12:00:00Z"],
            format="ISO8601",
        ),
        "sessions": [3, 0, 7, 1],
        "minutes_active": [10.0, 0.0, 22.9, 0.1],
        "support_tickets": [0, 2, 1, 0],
        "plan": ["basic", "premium", "standard", "legacy"],
        "monthly_spend": [9.99, 49.0, 19.5, 0.3],
        "churned": [0, 1, 0, 1],
    }
)


class OnlineStore:
    """An in-memory stand-in for the online store: keeps put_record payloads, answers get_record."""

    def __init__(self) -> None:
        self.records: dict[str, list[dict[str, str]]] = {}

    def put(self, payload: list[dict[str, str]]) -> None:
        record_id = next(v["ValueAsString"] for v in payload if v["FeatureName"] == SPEC.record_identifier)
        self.records[record_id] = payload

    def get_record(self, **kwargs: Any) -> dict[str, Any]:
        payload = self.records.get(kwargs["RecordIdentifierValueAsString"])
        if payload is None:
            return {}
        wanted = set(kwargs.get("FeatureNames") or [v["FeatureName"] for v in payload])
        return {"Record": [v for v in payload if v["FeatureName"] in wanted]}


def typed(vector: list[Any]) -> list[tuple[type, Any]]:
    return [(type(v), v) for v in vector]


def test_training_and_serving_vectors_are_identical() -> None:
    training = frame_to_vectors(SPEC, transform_frame(SPEC, RAW))

    store = OnlineStore()
    for raw in RAW.to_dict("records"):
        store.put(to_put_record_payload(SPEC, validate_record(SPEC, feature_record(SPEC, raw))))
    serving = [get_online_vector(store, "fg", SPEC, cid) for cid in RAW["customer_id"]]

    assert [typed(v) for v in serving] == [typed(v) for v in training]


def test_vectors_follow_the_spec_order_and_types() -> None:
    (vector,) = frame_to_vectors(SPEC, transform_frame(SPEC, RAW.head(1)))
    assert vector == [3, round(10.0 / 3, 6), 0, 9.99, 0]
    assert [type(v) for v in vector] == [int, float, int, float, int]


def test_transform_frame_keeps_identifier_event_time_and_target() -> None:
    frame = transform_frame(SPEC, RAW)
    assert list(frame.columns) == ["customer_id", "event_time", *SPEC.feature_names, "churned"]
    assert frame["event_time"].tolist()[2] == "2024-05-02T00:00:00.250Z"


def test_transform_frame_names_the_raw_row_and_column() -> None:
    with pytest.raises(FeatureSpecError, match=r"raw row 0: raw record lacks column 'plan'"):
        transform_frame(SPEC, RAW.drop(columns=["plan"]))


def test_record_to_vector_names_a_missing_feature() -> None:
    with pytest.raises(FeatureSpecError, match="record lacks feature 'plan_tier'"):
        record_to_vector(SPEC, {"sessions": 1, "minutes_per_session": 1.0, "support_tickets": 0, "monthly_spend": 1.0})


def test_record_to_vector_refuses_a_non_integral_value_for_an_integral_feature() -> None:
    record = {"sessions": "1.5", "minutes_per_session": 1.0, "support_tickets": 0, "monthly_spend": 1.0, "plan_tier": 0}
    with pytest.raises(FeatureSpecError, match=r"feature 'sessions' is Integral, got '1\.5'"):
        record_to_vector(SPEC, record)


def test_event_times_are_iso8601_utc() -> None:
    assert format_event_time(datetime(2024, 5, 1, 14, 0, tzinfo=UTC)) == "2024-05-01T14:00:00Z"
    assert format_event_time(pd.Timestamp("2024-05-01T16:00:00+02:00")) == "2024-05-01T14:00:00Z"
    assert format_event_time(datetime(2024, 5, 1, 14, 0)) == "2024-05-01T14:00:00Z"  # naive: UTC
    with pytest.raises(FeatureSpecError, match="not ISO-8601 UTC"):
        format_event_time("2024-05-01 14:00")


# --- config ----------------------------------------------------------------------------------

BASE = {
    "aws:region": "eu-west-1",
    "mlops:project": "acme-mlops",
    "mlops:environment": "dev",
    "mlops:owner": "ml-platform",
    "mlops:costCenter": "ml-rnd",
}


def parse_models(models: list[dict[str, Any]]) -> Any:
    return parse_stack_config({**BASE, "mlops:models": json.dumps(models)}, "dev")


def problems_of(models: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_models(models)
    return caught.value.problems


def test_feature_store_defaults_are_offline_iceberg() -> None:
    (model,) = parse_models([{"name": "customer-churn", "featureSpec": "customer-churn"}]).models
    store = model.feature_store
    assert (store.online_store, store.offline_store, store.online_ttl_days, store.offline_table_format) == (
        False,
        True,
        None,
        "Iceberg",
    )


def test_unknown_feature_spec_is_refused_with_the_registered_names() -> None:
    assert problems_of([{"name": "churn", "featureSpec": "no-such-spec"}]) == [
        "mlops:models.0: model 'churn': featureSpec 'no-such-spec' is not a registered feature spec; "
        "registered: customer-churn"
    ]


def test_missing_feature_spec_is_refused() -> None:
    assert problems_of([{"name": "churn"}]) == ["mlops:models.0.featureSpec: required key is missing"]


def test_a_model_without_any_store_is_refused() -> None:
    models = [
        {
            "name": "churn",
            "featureSpec": "customer-churn",
            "featureStore": {"onlineStore": False, "offlineStore": False},
        }
    ]
    assert problems_of(models) == [
        "mlops:models.0: model 'churn': featureStore.onlineStore and featureStore.offlineStore are both false; "
        "enable at least one store"
    ]


def test_ttl_without_online_store_is_refused() -> None:
    models = [{"name": "churn", "featureSpec": "customer-churn", "featureStore": {"onlineTtlDays": 7}}]
    (problem,) = problems_of(models)
    assert problem.startswith(
        "mlops:models.0: model 'churn': featureStore.onlineTtlDays=7 needs featureStore.onlineStore=true"
    )


def test_ttl_out_of_range_and_unknown_table_format_are_refused() -> None:
    models = [
        {
            "name": "churn",
            "featureSpec": "customer-churn",
            "featureStore": {"onlineStore": True, "onlineTtlDays": 0, "offlineTableFormat": "Delta"},
        }
    ]
    assert problems_of(models) == [
        "mlops:models.0.featureStore.onlineTtlDays: got 0; Input should be greater than or equal to 1",
        "mlops:models.0.featureStore.offlineTableFormat: got \"Delta\"; Input should be 'Iceberg' or 'Glue'",
    ]


def test_unknown_feature_store_key_is_refused() -> None:
    models = [{"name": "churn", "featureSpec": "customer-churn", "featureStore": {"onlineTTL": 3}}]
    (problem,) = problems_of(models)
    assert problem.startswith("mlops:models.0.featureStore.onlineTTL: unknown key; allowed keys here: ")
    assert "onlineTtlDays" in problem


def test_runtime_code_does_not_import_pulumi() -> None:
    import subprocess
    import sys

    code = "import sys, mlops.featurestore, mlops.features; sys.exit('pulumi' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
