"""The feature spec as the single source of truth: training and serving compute the same vectors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from infra.config import ConfigError, parse_stack_config
from mlops.features import FeatureSpecError, customer_churn, get_spec, registered_specs
from mlops.features.registry import SPECS, index_specs
from mlops.features.spec import (
    feature_record,
    format_event_time,
    frame_to_vectors,
    record_to_vector,
    transform_frame,
)
from mlops.featurestore import get_online_vector, to_put_record_payload, validate_record

ROOT = Path(__file__).resolve().parents[2]
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


# --- registry ---------------------------------------------------------------------------------


def fresh_import(statement: str, *, report: str) -> str:
    """What ``report`` (a Python expression) evaluates to after ``statement`` runs in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", f"{statement}; import sys; print({report})"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def other_module_transform(record: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def test_the_registry_is_the_explicit_list_of_bundled_spec_modules() -> None:
    assert registered_specs() == dict(SPECS) == {"customer-churn": customer_churn.SPEC}


def test_the_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        SPECS["other"] = SPEC  # type: ignore[index]


@pytest.mark.parametrize("module", ["mlops.features.spec", "mlops.features"])
def test_importing_the_spec_library_imports_no_spec_module(module: str) -> None:
    loaded = fresh_import(
        f"import {module}",
        report="sorted(m for m in ('mlops.features.customer_churn', 'mlops.features.registry') if m in sys.modules)",
    )
    assert loaded == "[]"


def test_the_spec_library_holds_no_registry() -> None:
    from mlops.features import spec

    assert [name for name in ("register", "get_spec", "registered_specs") if hasattr(spec, name)] == []


def test_a_spec_module_imports_alone_in_a_fresh_process() -> None:
    loaded = fresh_import(
        "import mlops.features.customer_churn as m",
        report="(m.SPEC.name, 'mlops.features.registry' in sys.modules)",
    )
    assert loaded == "('customer-churn', False)"


def test_a_duplicate_spec_name_is_refused_naming_both() -> None:
    twin = dataclasses.replace(SPEC, version=2, transform=other_module_transform)
    with pytest.raises(FeatureSpecError) as refused:
        index_specs((SPEC, twin))
    assert str(refused.value) == (
        "feature spec name 'customer-churn' is used twice: by mlops.features.customer_churn (version 1) "
        f"and by {other_module_transform.__module__} (version 2)"
    )


def test_an_unknown_spec_is_refused_with_the_registered_names() -> None:
    with pytest.raises(FeatureSpecError) as refused:
        get_spec("no-such-spec")
    assert str(refused.value) == "unknown feature spec 'no-such-spec'; registered: customer-churn"


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
    code = "import sys, mlops.featurestore, mlops.features; sys.exit('pulumi' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
