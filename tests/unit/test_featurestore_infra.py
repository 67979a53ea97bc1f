"""The feature store layer over every stack: one feature group per model, built from its feature spec."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops.features import get_spec
from mlops.features.spec import feature_definitions
from tests.support.plans import platform_key_arn
from tests.support.types import FEATURE_GROUP
from verify.mock_engine import OfflinePlan, PlannedResource, run_program

COMPONENT = "mlops:features:FeatureStore"


def feature_groups(plan: OfflinePlan) -> list[PlannedResource]:
    return plan.of_type(FEATURE_GROUP)


def group_of(plan: OfflinePlan, model: str) -> PlannedResource:
    return plan.named(f"{plan.config.project}-{plan.config.environment}-{model}-features-group")


def features_bucket(plan: OfflinePlan) -> str:
    return plan.outputs["lakeBuckets"]["features"]


def feature_store_policies(plan: OfflinePlan) -> list[dict[str, Any]]:
    return [
        json.loads(r.inputs["policy"])
        for r in plan.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.component == COMPONENT
    ]


def test_one_feature_group_per_configured_model(plan: OfflinePlan) -> None:
    expected = {
        f"{plan.config.project}-{plan.config.environment}-{m.name}-v{get_spec(m.feature_spec).version}"
        for m in plan.config.models
    }
    assert {g.inputs["featureGroupName"] for g in feature_groups(plan)} == expected
    assert plan.config.models, "every bundled stack declares at least the example model"


def test_feature_definitions_come_from_the_spec(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        spec = get_spec(model.feature_spec)
        group = group_of(plan, model.name)
        assert [(d["featureName"], d["featureType"]) for d in group.inputs["featureDefinitions"]] == list(
            feature_definitions(spec)
        )
        assert group.inputs["recordIdentifierFeatureName"] == spec.record_identifier
        assert group.inputs["eventTimeFeatureName"] == spec.event_time


def test_every_enabled_store_is_encrypted_with_the_platform_key(plan: OfflinePlan) -> None:
    key = platform_key_arn(plan)
    for model in plan.config.models:
        group = group_of(plan, model.name)
        if model.feature_store.online_store:
            assert group.inputs["onlineStoreConfig"]["securityConfig"]["kmsKeyId"] == key
        if model.feature_store.offline_store:
            assert group.inputs["offlineStoreConfig"]["s3StorageConfig"]["kmsKeyId"] == key


def test_online_ttl_follows_the_config(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        online = group_of(plan, model.name).inputs.get("onlineStoreConfig")
        if not model.feature_store.online_store:
            continue
        ttl = online.get("ttlDuration")
        if model.feature_store.online_ttl_days is None:
            assert ttl is None
        else:
            assert ttl == {"unit": "Days", "value": model.feature_store.online_ttl_days}


def test_offline_store_lies_in_the_lake_features_bucket_under_the_model_prefix(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        if not model.feature_store.offline_store:
            continue
        uri = group_of(plan, model.name).inputs["offlineStoreConfig"]["s3StorageConfig"]["s3Uri"]
        assert uri == f"s3://{features_bucket(plan)}/{model.name}/"


def test_offline_store_is_registered_in_the_catalog_features_database(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        if not model.feature_store.offline_store:
            continue
        offline = group_of(plan, model.name).inputs["offlineStoreConfig"]
        assert offline["disableGlueTableCreation"] is False
        assert offline["tableFormat"] == model.feature_store.offline_table_format
        assert offline["dataCatalogConfig"]["database"] == plan.outputs["glueDatabases"]["features"]
        assert offline["dataCatalogConfig"]["catalog"] == "AwsDataCatalog"


def test_feature_groups_are_protected_as_the_stack_says(plan: OfflinePlan) -> None:
    for group in feature_groups(plan):
        assert group.protect is plan.config.protect_stateful_resources
        assert group.retain_on_delete is plan.config.retain_stateful_on_delete


def test_feature_store_role_is_trusted_by_sagemaker_only(plan: OfflinePlan) -> None:
    roles = [r for r in plan.of_type("aws:iam/role:Role") if r.component == COMPONENT]
    assert roles
    for role in roles:
        trust = json.loads(role.inputs["assumeRolePolicy"])
        assert [s["Principal"] for s in trust["Statement"]] == [{"Service": ["sagemaker.amazonaws.com"]}]


def test_feature_store_policies_name_every_action(plan: OfflinePlan) -> None:
    for policy in feature_store_policies(plan):
        for statement in policy["Statement"]:
            for action in statement["Action"]:
                assert "*" not in action, f"{statement['Sid']}: wildcard action {action}"
            assert "*" not in statement["Resource"], f"{statement['Sid']}: wildcard resource"


def test_feature_store_role_writes_only_under_its_model_prefix(plan: OfflinePlan) -> None:
    bucket = features_bucket(plan)
    (policy,) = feature_store_policies(plan)  # one model in every bundled stack
    (model,) = plan.config.models
    s3_resources = [
        resource
        for statement in policy["Statement"]
        if any(a.startswith("s3:") for a in statement["Action"])
        for resource in statement["Resource"]
    ]
    assert s3_resources
    for resource in s3_resources:
        assert resource in (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{model.name}/*")
    listing = next(s for s in policy["Statement"] if s["Action"] == ["s3:ListBucket"])
    assert listing["Condition"]["StringLike"]["s3:prefix"] == [f"{model.name}/", f"{model.name}/*"]


def test_feature_store_role_writes_glue_only_in_the_features_database(plan: OfflinePlan) -> None:
    database = plan.outputs["glueDatabases"]["features"]
    (policy,) = feature_store_policies(plan)
    glue = [s for s in policy["Statement"] if any(a.startswith("glue:") for a in s["Action"])]
    assert glue
    for statement in glue:
        for resource in statement["Resource"]:
            assert resource.endswith(":catalog") or f"/{database}" in resource


# --- switches, through config overrides ------------------------------------------------------


def _churn(**store: Any) -> list[dict[str, Any]]:
    return [{"name": "customer-churn", "featureSpec": "customer-churn", "featureStore": store}]


@pytest.fixture(scope="module")
def online_only() -> OfflinePlan:
    return run_program("dev", overrides={"models": _churn(onlineStore=True, offlineStore=False)})


@pytest.fixture(scope="module")
def offline_only() -> OfflinePlan:
    return run_program(
        "dev", overrides={"models": _churn(onlineStore=False, offlineStore=True, offlineTableFormat="Glue")}
    )


def test_online_only_group_has_no_offline_store(online_only: OfflinePlan) -> None:
    group = group_of(online_only, "customer-churn")
    assert group.inputs["onlineStoreConfig"]["enableOnlineStore"] is True
    assert "offlineStoreConfig" not in group.inputs


def test_online_only_role_gets_the_key_and_no_storage(online_only: OfflinePlan) -> None:
    (policy,) = feature_store_policies(online_only)
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert actions and all(a.startswith("kms:") for a in actions)


def test_offline_only_group_has_no_online_store(offline_only: OfflinePlan) -> None:
    group = group_of(offline_only, "customer-churn")
    assert "onlineStoreConfig" not in group.inputs
    assert group.inputs["offlineStoreConfig"]["tableFormat"] == "Glue"
    assert group.inputs["roleArn"].endswith(":role/acme-mlops-dev-customer-churn-fs")


def test_no_models_no_feature_groups() -> None:
    plan = run_program("dev", overrides={"models": []})
    assert feature_groups(plan) == []
    assert plan.outputs["featureGroups"] == {}
