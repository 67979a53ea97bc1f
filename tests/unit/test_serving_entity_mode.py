"""Entity request mode in the serving layer: the model container's environment, GetRecord least privilege, config.

The stack files are untouched: each scenario runs the real program with overrides (dev: serverless; staging:
shadow with a linear rollout, network isolation off, and the platform engine's drift and quality job segmenting
by a feature).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from containers.inference.inference_server.settings import ENVIRONMENT, Settings
from infra.config import ConfigError
from infra.serving.environment import (
    MAX_ENVIRONMENT_BYTES,
    MAX_ENVIRONMENT_ENTRIES,
    MAX_ENVIRONMENT_STRING,
    environment_problems,
)
from tests.support.monitoring import cli, monitoring_pipeline, to_model_monitor
from tests.support.types import FEATURE_GROUP, MODEL
from verify.aws_contract import check_contract
from verify.mock_engine import MOCK_ACCOUNT_ID, OfflinePlan, PlannedResource, read_stack_values, run_program

COMPONENT = "mlops:serving:Serving"
LOOKUP = {"timeoutMs": 250, "maxAttempts": 2, "cacheTtlSeconds": 30, "cacheMaxEntries": 5000}


def models_of(stack: str) -> list[dict[str, Any]]:
    return json.loads(read_stack_values(stack)["mlops:models"])


def entity(stack: str, **changes: Any) -> dict[str, Any]:
    """Overrides turning every served model of ``stack`` to entity mode, with ``changes`` merged per section."""
    models = models_of(stack)
    for model in models:
        if model.get("serving") is None:
            continue
        model["serving"] = {**model["serving"], "requestMode": "entity", "onlineLookup": LOOKUP}
        for section, values in changes.items():
            model[section] = {**(model.get(section) or {}), **values} if isinstance(values, dict) else values
    return {"models": models}


def staging_overrides() -> dict[str, Any]:
    """staging in entity mode: network isolation off; its monitors stay on, segmenting by the feature plan_tier (the
    captured requests hold entity ids, so a raw column such as plan has no value there)."""
    overrides = entity("staging")
    for model in overrides["models"]:
        model["serving"]["network"] = {**model["serving"].get("network", {}), "networkIsolation": False}
        platform = model["monitoring"].get("platform", {})
        model["monitoring"] = {**model["monitoring"], "platform": {**platform, "segments": ["plan_tier"]}}
    return overrides


def rows(stack: str) -> dict[str, Any]:
    """Overrides keeping every served model of ``stack`` in rows mode (whatever the stack file says)."""
    models = models_of(stack)
    for model in models:
        if model.get("serving") is not None:
            serving = {k: v for k, v in model["serving"].items() if k != "onlineLookup"}
            model["serving"] = {**serving, "requestMode": "rows"}
    return {"models": models}


@pytest.fixture(scope="module")
def dev() -> OfflinePlan:
    return run_program("dev", overrides=entity("dev"))


@pytest.fixture(scope="module")
def staging() -> OfflinePlan:
    return run_program("staging", overrides=staging_overrides())


@pytest.fixture(scope="module", params=["dev", "staging"])
def entity_plan(request: pytest.FixtureRequest, dev: OfflinePlan, staging: OfflinePlan) -> OfflinePlan:
    return {"dev": dev, "staging": staging}[request.param]


def serving_models(plan: OfflinePlan) -> list[PlannedResource]:
    return [r for r in plan.of_type(MODEL) if r.component == COMPONENT]


def role_statements(plan: OfflinePlan, model: str) -> list[dict[str, Any]]:
    name = f"{plan.config.project}-{plan.config.environment}-{model}-serving-role-policy"
    return json.loads(plan.named(name).inputs["policy"])["Statement"]


def feature_group(plan: OfflinePlan) -> PlannedResource:
    (group,) = plan.of_type(FEATURE_GROUP)
    return group


def actions(statement: dict[str, Any]) -> list[str]:
    found = statement["Action"]
    return [found] if isinstance(found, str) else found


def resources(statement: dict[str, Any]) -> list[str]:
    found = statement["Resource"]
    return [found] if isinstance(found, str) else found


# --- the container's environment ------------------------------------------------------------------------------


def test_every_model_container_of_the_endpoint_gets_the_entity_mode_environment(entity_plan: OfflinePlan) -> None:
    group = feature_group(entity_plan).inputs["featureGroupName"]
    containers = [m.inputs["primaryContainer"] for m in serving_models(entity_plan)]
    assert len(containers) == (1 if entity_plan.config.environment == "dev" else 2)  # staging: current + shadow
    for container in containers:
        assert container["environment"] == {
            "INFERENCE_REQUEST_MODE": "entity",
            "INFERENCE_FEATURE_GROUP": group,
            "INFERENCE_ONLINE_REGION": entity_plan.config.region,
            "INFERENCE_ONLINE_TIMEOUT_MS": "250",
            "INFERENCE_ONLINE_MAX_ATTEMPTS": "2",
            "INFERENCE_ONLINE_CACHE_TTL_SECONDS": "30",
            "INFERENCE_ONLINE_CACHE_MAX_ENTRIES": "5000",
        }
        assert container["modelPackageName"].startswith(f"arn:aws:sagemaker:{entity_plan.config.region}:")


def test_the_container_reads_the_environment_the_stack_sets(dev: OfflinePlan) -> None:
    (model,) = serving_models(dev)
    environment = model.inputs["primaryContainer"]["environment"]
    assert set(environment) <= set(ENVIRONMENT.values())  # names the server knows (no silent typo)
    settings = Settings.from_env(environment)
    assert (settings.request_mode, settings.feature_group) == ("entity", feature_group(dev).inputs["featureGroupName"])
    assert (settings.online_timeout_ms, settings.online_max_attempts) == (250, 2)
    assert (settings.online_cache_ttl_seconds, settings.online_cache_max_entries) == (30, 5000)
    assert settings.online_region == dev.config.region


@pytest.fixture(scope="module")
def dev_rows() -> OfflinePlan:
    return run_program("dev", overrides=rows("dev"))


def test_rows_mode_sets_no_environment_and_no_feature_store_access(
    stack_plans: dict[str, OfflinePlan], dev_rows: OfflinePlan
) -> None:
    for plan in [*stack_plans.values(), dev_rows]:
        by_name = {m.name: m for m in plan.config.models if m.serving is not None}
        if any(m.serving is not None and m.serving.request_mode == "entity" for m in by_name.values()):
            continue  # a stack file already in entity mode: dev_rows covers its rows-mode plan
        for model in serving_models(plan):
            assert "environment" not in model.inputs["primaryContainer"]
        for name in by_name:
            assert not [s for s in role_statements(plan, name) if "sagemaker:GetRecord" in actions(s)]


def test_switching_the_request_mode_names_a_new_model(dev_rows: OfflinePlan, dev: OfflinePlan) -> None:
    # A SageMaker model's arguments (its environment too) cannot change in place: the new name makes the change
    # a create-first replacement and a new endpoint config, i.e. a guarded endpoint update.
    (rows_model,) = serving_models(dev_rows)
    (entity_model,) = serving_models(dev)
    assert rows_model.inputs["name"] != entity_model.inputs["name"]
    assert len(entity_model.inputs["name"]) <= 63


def test_entity_mode_plans_satisfy_the_aws_api_contract(entity_plan: OfflinePlan) -> None:
    # CreateModel's Environment map (entries, key pattern, sizes) and every IAM action, as AWS's models say.
    violations = [v for v in check_contract(entity_plan) if "Model" in str(v) or "Policy" in str(v)]
    assert violations == []


# --- least privilege --------------------------------------------------------------------------------------------


def test_the_role_may_get_records_of_the_models_feature_group_only(entity_plan: OfflinePlan) -> None:
    group = feature_group(entity_plan).inputs["featureGroupName"]
    arn = f"arn:aws:sagemaker:{entity_plan.config.region}:{MOCK_ACCOUNT_ID}:feature-group/{group}"
    statements = role_statements(entity_plan, "customer-churn")
    reading = [s for s in statements if any(a.startswith("sagemaker:") for a in actions(s))]
    assert len(reading) == 1
    (statement,) = reading
    assert statement["Effect"] == "Allow"
    assert actions(statement) == ["sagemaker:GetRecord"]  # no Put/Delete/BatchGetRecord
    assert resources(statement) == [arn]
    assert "Condition" not in statement


def test_the_role_may_decrypt_with_the_online_stores_key(entity_plan: OfflinePlan) -> None:
    # Every caller of GetRecord needs kms:Decrypt on the online store's key (OnlineStoreSecurityConfig).
    key = feature_group(entity_plan).inputs["onlineStoreConfig"]["securityConfig"]["kmsKeyId"]
    decrypting = [
        s for s in role_statements(entity_plan, "customer-churn")
        if "kms:Decrypt" in actions(s) and key in resources(s)
    ]  # fmt: skip
    assert decrypting


# --- configuration errors ---------------------------------------------------------------------------------------


def problems(stack: str, overrides: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        run_program(stack, overrides=overrides)
    return caught.value.problems


def test_entity_mode_without_an_online_store_is_refused_naming_both_keys() -> None:
    found = problems("dev", entity("dev", featureStore={"onlineStore": False, "onlineTtlDays": None}))
    assert any(
        "serving.requestMode=entity" in p and "featureStore.onlineStore=false" in p and "customer-churn" in p
        for p in found
    ), found


def test_entity_mode_with_an_isolated_container_is_refused() -> None:
    overrides = staging_overrides()
    for model in overrides["models"]:
        model["serving"]["network"]["networkIsolation"] = True
    found = problems("staging", overrides)
    assert any("serving.network.networkIsolation=false" in p for p in found), found


def test_entity_mode_keeps_the_platform_engines_drift_and_quality_job(staging: OfflinePlan) -> None:
    # The job reads the features from the captured answers: it runs, with its ground truth and feature segments.
    (model,) = [m for m in staging.config.models if m.serving is not None]
    assert model.monitoring.engine == "platform"
    assert model.monitoring.data_quality.enabled and model.monitoring.model_quality.enabled
    flags = cli(monitoring_pipeline(staging, model))
    assert flags["--segments"] == ["plan_tier"]
    assert "--ground-truth" in flags


def test_entity_mode_with_model_monitor_is_refused_naming_the_engine() -> None:
    overrides = staging_overrides()
    for model in overrides["models"]:
        serving = dict(model["serving"])
        to_model_monitor(model)
        model["serving"] = serving  # to_model_monitor also leaves entity mode: keep the entity endpoint
    found = problems("staging", overrides)
    assert any(
        "monitoring.engine=model-monitor" in p
        and "monitoring.dataQuality.enabled=true and monitoring.modelQuality.enabled=true" in p
        and "record preprocessor" in p
        and "monitoring.engine=platform" in p
        for p in found
    ), found


def test_entity_mode_with_model_monitor_and_no_capture_reading_monitor_is_accepted() -> None:
    overrides = staging_overrides()
    for model in overrides["models"]:
        serving = dict(model["serving"])
        to_model_monitor(model)
        model["serving"] = serving
        model["monitoring"]["dataQuality"]["enabled"] = False
        model["monitoring"]["modelQuality"]["enabled"] = False
    run_program("staging", overrides=overrides)


def test_entity_mode_refuses_a_raw_column_segment() -> None:
    overrides = staging_overrides()
    for model in overrides["models"]:
        model["monitoring"]["platform"]["segments"] = ["plan"]
    found = problems("staging", overrides)
    assert any("monitoring.platform.segments lists ['plan']" in p and "serving.requestMode=entity" in p for p in found)


@pytest.mark.parametrize(
    ("lookup", "key"),
    [
        ({"timeoutMs": 5}, "timeoutMs"),
        ({"timeoutMs": 60000}, "timeoutMs"),
        ({"timeoutMs": "300"}, "timeoutMs"),
        ({"maxAttempts": 4}, "maxAttempts"),
        ({"cacheTtlSeconds": -1}, "cacheTtlSeconds"),
        ({"cacheMaxEntries": 0}, "cacheMaxEntries"),
        ({"timeout": 300}, "timeout"),
    ],
)
def test_bad_lookup_settings_are_refused_naming_the_key(lookup: dict[str, Any], key: str) -> None:
    overrides = entity("dev")
    overrides["models"][0]["serving"]["onlineLookup"] = lookup
    found = problems("dev", overrides)
    assert any(key in p and "onlineLookup" in p for p in found), found


def test_lookup_settings_without_entity_mode_are_refused() -> None:
    models = rows("dev")["models"]
    models[0]["serving"] = {**models[0]["serving"], "onlineLookup": {"timeoutMs": 200}}
    found = problems("dev", {"models": models})
    assert any("serving.onlineLookup is set but serving.requestMode=rows" in p for p in found), found


def test_an_unknown_request_mode_is_refused() -> None:
    models = models_of("dev")
    models[0]["serving"] = {**models[0]["serving"], "requestMode": "entities"}
    found = problems("dev", {"models": models})
    assert any("requestMode" in p for p in found), found


# --- CreateModel's environment limits -----------------------------------------------------------------------


def test_environment_limits_are_createmodels() -> None:
    assert environment_problems({"INFERENCE_REQUEST_MODE": "entity"}) == []
    too_many = {f"V{i}": "x" for i in range(MAX_ENVIRONMENT_ENTRIES + 1)}
    assert any("at most 100" in p for p in environment_problems(too_many))
    assert environment_problems({"V": "x" * MAX_ENVIRONMENT_STRING}) == []
    assert any("1024" in p for p in environment_problems({"V": "x" * (MAX_ENVIRONMENT_STRING + 1)}))
    assert any("must match" in p for p in environment_problems({"1BAD": "x"}))
    big = {f"V{i}": "x" * 1000 for i in range(40)}  # 40 KB in all, each entry within limits
    assert any(str(MAX_ENVIRONMENT_BYTES) in p for p in environment_problems(big))
