"""The serving layer over every stack (dev serverless, staging shadow + linear, prod A/B + canary) and variants.

Scenarios beyond the stack files run the real program with overrides: a single-variant endpoint with
linear rollout, VPC placement, network isolation, a pinned model version and a local-storage instance type;
and a brand-new stack whose package group has no approved version yet.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from infra.model_versions import OfflineVersions
from infra.serving import SERVERLESS_VARIANT, has_local_storage
from infra.serving.fleet import LiveEndpoint
from tests.support.types import ALARM, CONFIG, ENDPOINT, GROUP, MODEL, SCALABLE_TARGET, SCALING_POLICY
from verify.mock_engine import MOCK_ACCOUNT_ID, OfflinePlan, PlannedResource, read_stack_values, run_program

COMPONENT = "mlops:serving:Serving"
TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"

PINNED = f"arn:aws:sagemaker:eu-west-1:{MOCK_ACCOUNT_ID}:model-package/acme-mlops-prod-customer-churn/7"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
GROUPS = ["sg-0123456789abcdef0"]


def serving(plan: OfflinePlan, type_token: str) -> list[PlannedResource]:
    return [r for r in plan.of_type(type_token) if r.component == COMPONENT]


def part(plan: OfflinePlan, model: str, name: str) -> PlannedResource:
    return plan.named(f"{plan.config.project}-{plan.config.environment}-{model}-serving-{name}")


def config_of(plan: OfflinePlan, model: str) -> dict[str, Any]:
    return part(plan, model, "config").inputs


def role_policy(plan: OfflinePlan, model: str) -> dict[str, Any]:
    return json.loads(part(plan, model, "role-policy").inputs["policy"])


def statements(plan: OfflinePlan, model: str, action: str) -> list[dict[str, Any]]:
    return [s for s in role_policy(plan, model)["Statement"] if action in s["Action"]]


def served(plan: OfflinePlan) -> list[str]:
    return [m.name for m in plan.config.models if m.serving is not None]


def with_serving(stack: str, **serving: Any) -> dict[str, Any]:
    """Overrides replacing every model's ``serving`` section of ``stack``."""
    models = json.loads(read_stack_values(stack)["mlops:models"])
    for model in models:
        model["serving"] = serving
    return {"models": models}


@pytest.fixture(scope="module")
def single() -> OfflinePlan:
    """prod with one pinned variant on a local-storage instance type, linear rollout, VPC and isolation."""
    return run_program(
        "prod",
        overrides=with_serving(
            "prod",
            strategy="single",
            variants=[{"name": "main", "instanceType": "ml.m5d.large", "instanceCount": 2, "modelVersion": PINNED}],
            rollout={"mode": "linear", "linearStepPercent": 25, "waitIntervalSeconds": 120},
            network={"subnetIds": SUBNETS, "securityGroupIds": GROUPS, "networkIsolation": True},
        ),
    )


@dataclass
class Unapproved:
    plan: OfflinePlan
    warnings: list[str]


@pytest.fixture(scope="module")
def unapproved() -> Unapproved:
    """prod on a brand-new account: the model package group has no approved version yet (and the warnings)."""
    versions = OfflineVersions(
        region="eu-west-1", account_id=MOCK_ACCOUNT_ID, unapproved=frozenset({"acme-mlops-prod-customer-churn"})
    )
    warnings: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno == logging.WARNING:
                warnings.append(record.getMessage())

    handler = Keep()
    logging.getLogger().addHandler(handler)  # the mock engine logs pulumi.log.warn to the root logger
    try:
        plan = run_program("prod", versions=versions)
    finally:
        logging.getLogger().removeHandler(handler)
    return Unapproved(plan, warnings)


# --- one endpoint per served model ------------------------------------------------------------------


def test_one_stable_endpoint_per_served_model(plan: OfflinePlan) -> None:
    prefix = f"{plan.config.project}-{plan.config.environment}"
    assert sorted(e.inputs["name"] for e in serving(plan, ENDPOINT)) == sorted(f"{prefix}-{m}" for m in served(plan))
    assert plan.outputs["endpoints"] == {m: f"{prefix}-{m}" for m in served(plan)}


def test_endpoint_uses_the_components_endpoint_config(plan: OfflinePlan) -> None:
    for model in served(plan):
        config = part(plan, model, "config")
        assert part(plan, model, "endpoint").inputs["endpointConfigName"] == config.inputs["name"]


def test_models_serve_the_package_versions_of_the_training_group(plan: OfflinePlan) -> None:
    # The offline registry has approved versions 1 and 2 in every group: latest is 2, previous is 1.
    number = {"latest": 2, "previous": 1}
    for model in served(plan):
        prefix = f"{plan.config.project}-{plan.config.environment}-{model}"
        group = plan.named(f"{prefix}-training-registry").inputs["modelPackageGroupName"]
        settings = plan.config.model(model).serving
        assert settings is not None
        selectors = {v.name: v.model_version for v in settings.variants}
        if settings.shadow_variant is not None:
            selectors[settings.shadow_variant.name] = settings.shadow_variant.model_version
        if settings.serverless is not None:
            selectors[SERVERLESS_VARIANT] = settings.serverless.model_version
        packages = {
            variant: part(plan, model, f"model-{variant}").inputs["primaryContainer"]["modelPackageName"]
            for variant in selectors
        }
        arn = f"arn:aws:sagemaker:{plan.config.region}:{MOCK_ACCOUNT_ID}:model-package/{group}"
        assert packages == {variant: f"{arn}/{number[selector]}" for variant, selector in selectors.items()}


# --- strategies ----------------------------------------------------------------------------------------


def test_dev_serverless_has_one_serverless_variant_without_instances(stack_plans: dict[str, OfflinePlan]) -> None:
    dev = stack_plans["dev"]
    (variant,) = config_of(dev, "customer-churn")["productionVariants"]
    settings = dev.config.model("customer-churn").serving
    assert settings is not None and settings.serverless is not None
    assert variant["variantName"] == SERVERLESS_VARIANT
    assert variant["serverlessConfig"] == {
        "memorySizeInMb": settings.serverless.memory_size_mb,
        "maxConcurrency": settings.serverless.max_concurrency,
    }
    assert not {"initialInstanceCount", "instanceType"} & set(variant)


def test_serverless_has_no_capture_no_storage_key_no_vpc_no_isolation(stack_plans: dict[str, OfflinePlan]) -> None:
    dev = stack_plans["dev"]
    config = config_of(dev, "customer-churn")
    assert "dataCaptureConfig" not in config
    assert "kmsKeyArn" not in config
    (model,) = serving(dev, MODEL)
    assert "vpcConfig" not in model.inputs
    assert model.inputs.get("enableNetworkIsolation") is False


def test_staging_shadow_has_exactly_one_production_and_one_shadow_variant(stack_plans: dict[str, OfflinePlan]) -> None:
    staging = stack_plans["staging"]
    config = config_of(staging, "customer-churn")
    assert [v["variantName"] for v in config["productionVariants"]] == ["current"]
    assert [v["variantName"] for v in config["shadowProductionVariants"]] == ["candidate"]
    models = {m.name: m.inputs["name"] for m in serving(staging, MODEL)}
    assert (
        config["shadowProductionVariants"][0]["modelName"]
        == models["acme-mlops-staging-customer-churn-serving-model-candidate"]
    )


def test_prod_ab_weights_and_instances_propagate(stack_plans: dict[str, OfflinePlan]) -> None:
    prod = stack_plans["prod"]
    settings = prod.config.model("customer-churn").serving
    assert settings is not None
    variants = {v["variantName"]: v for v in config_of(prod, "customer-churn")["productionVariants"]}
    assert {name: v["initialVariantWeight"] for name, v in variants.items()} == {"champion": 0.9, "challenger": 0.1}
    for configured in settings.variants:
        assert variants[configured.name]["instanceType"] == configured.instance_type
        assert variants[configured.name]["initialInstanceCount"] == configured.instance_count
    assert "shadowProductionVariants" not in config_of(prod, "customer-churn")


def test_single_strategy_has_one_variant(single: OfflinePlan) -> None:
    config = config_of(single, "customer-churn")
    assert [v["variantName"] for v in config["productionVariants"]] == ["main"]
    assert len(serving(single, MODEL)) == 1


# --- encryption and capture ----------------------------------------------------------------------------


def _instance_configs(plan: OfflinePlan) -> list[PlannedResource]:
    return [c for c in serving(plan, CONFIG) if "serverlessConfig" not in c.inputs["productionVariants"][0]]


def test_every_instance_endpoint_config_captures_into_the_monitoring_bucket_with_the_platform_key(
    plan: OfflinePlan,
) -> None:
    monitoring = plan.outputs["lakeBuckets"]["monitoring"]
    for config in _instance_configs(plan):
        model = config.name.removeprefix(f"{plan.config.project}-{plan.config.environment}-").split("-serving-")[0]
        capture = config.inputs["dataCaptureConfig"]
        assert capture["enableCapture"] is True
        assert capture["destinationS3Uri"] == f"s3://{monitoring}/{model}/data-capture"
        assert capture["kmsKeyId"] == plan.outputs["kmsKeyArn"]
        assert sorted(o["captureMode"] for o in capture["captureOptions"]) == ["Input", "Output"]
        assert capture["captureContentTypeHeader"] == {
            "csvContentTypes": ["text/csv"],
            "jsonContentTypes": ["application/json"],
        }
        sampling = plan.config.model(model).serving
        assert sampling is not None
        assert capture["initialSamplingPercentage"] == sampling.data_capture.sampling_percent


def test_instance_endpoint_configs_encrypt_storage_with_the_platform_key(plan: OfflinePlan) -> None:
    for config in _instance_configs(plan):
        assert config.inputs["kmsKeyArn"] == plan.outputs["kmsKeyArn"]


def test_local_storage_instance_type_gets_no_storage_key(single: OfflinePlan) -> None:
    config = config_of(single, "customer-churn")
    assert "kmsKeyArn" not in config
    assert config["dataCaptureConfig"]["kmsKeyId"] == single.outputs["kmsKeyArn"]  # capture stays encrypted


@pytest.mark.parametrize(
    ("instance_type", "local"),
    [("ml.m5.large", False), ("ml.m5d.large", True), ("ml.g4dn.xlarge", True), ("ml.p4d.24xlarge", True),
     ("ml.c6id.xlarge", True), ("ml.g5.xlarge", True), ("ml.c7g.large", False), ("ml.t3.medium", False),
     ("ml.inf1.xlarge", False)],
)  # fmt: skip
def test_has_local_storage(instance_type: str, local: bool) -> None:
    assert has_local_storage(instance_type) is local


# --- deployment guardrails -------------------------------------------------------------------------------


def test_deployment_config_rolls_back_on_exactly_the_components_alarms(plan: OfflinePlan) -> None:
    for model in served(plan):
        alarms = {a.inputs["name"] for a in serving(plan, ALARM) if f"-{model}-serving-" in a.name}
        deployment = part(plan, model, "endpoint").inputs["deploymentConfig"]
        rollback = {a["alarmName"] for a in deployment["autoRollbackConfiguration"]["alarms"]}
        assert rollback == alarms
        prefix = f"{plan.config.project}-{plan.config.environment}-{model}-rollback"
        assert alarms == {f"{prefix}-5xx-rate", f"{prefix}-p99-latency"}


def test_rollback_alarms_read_every_production_variant_and_no_shadow(plan: OfflinePlan) -> None:
    for model in served(plan):
        settings = plan.config.model(model).serving
        assert settings is not None
        variants = {v.name for v in settings.variants} or {SERVERLESS_VARIANT}
        for alarm in (a for a in serving(plan, ALARM) if f"-{model}-serving-" in a.name):
            read = {q["metric"]["dimensions"]["VariantName"] for q in alarm.inputs["metricQueries"] if "metric" in q}
            assert read == variants, alarm.inputs["name"]


def test_endpoint_waits_for_its_alarms(plan: OfflinePlan) -> None:
    for model in served(plan):
        endpoint = part(plan, model, "endpoint")
        assert {a.urn for a in serving(plan, ALARM)} <= set(endpoint.dependencies)


def test_prod_updates_go_canary_with_bake_and_termination_wait(stack_plans: dict[str, OfflinePlan]) -> None:
    prod = stack_plans["prod"]
    policy = part(prod, "customer-churn", "endpoint").inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    assert policy["trafficRoutingConfiguration"] == {
        "type": "CANARY",
        "waitIntervalInSeconds": 900,
        "canarySize": {"type": "CAPACITY_PERCENT", "value": 10},
    }
    assert policy["terminationWaitInSeconds"] == 1800
    # Larger than the waits it must cover (2 x 900 s baking + 1800 s), as AWS requires.
    assert policy["maximumExecutionTimeoutInSeconds"] == 5400 > 2 * 900 + 1800


def test_linear_rollout_shifts_in_capacity_percent_steps(single: OfflinePlan) -> None:
    policy = part(single, "customer-churn", "endpoint").inputs["deploymentConfig"]["blueGreenUpdatePolicy"]
    assert policy["trafficRoutingConfiguration"] == {
        "type": "LINEAR",
        "waitIntervalInSeconds": 120,
        "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 25},
    }


def test_dev_all_at_once_has_no_step_size(stack_plans: dict[str, OfflinePlan]) -> None:
    routing = part(stack_plans["dev"], "customer-churn", "endpoint").inputs["deploymentConfig"][
        "blueGreenUpdatePolicy"
    ]["trafficRoutingConfiguration"]
    assert routing["type"] == "ALL_AT_ONCE"
    assert not {"canarySize", "linearStepSize"} & set(routing)


def test_error_rate_alarm_is_the_endpoint_wide_rate_over_its_variants(stack_plans: dict[str, OfflinePlan]) -> None:
    prod = stack_plans["prod"]
    rollout = prod.config.model("customer-churn").serving.rollout  # type: ignore[union-attr]
    alarm = part(prod, "customer-churn", "alarm-5xx-rate").inputs
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    for i, variant in enumerate(("champion", "challenger")):
        dimensions = {"EndpointName": "acme-mlops-prod-customer-churn", "VariantName": variant}
        assert queries[f"e{i}"]["metric"]["metricName"] == "Invocation5XXErrors"
        assert queries[f"n{i}"]["metric"]["metricName"] == "Invocations"
        for metric in (f"e{i}", f"n{i}"):
            assert queries[metric]["metric"]["namespace"] == "AWS/SageMaker"
            assert queries[metric]["metric"]["dimensions"] == dimensions
            assert queries[metric]["metric"]["stat"] == "Sum"
    returned = [q for q in alarm["metricQueries"] if q.get("returnData")]
    assert [q["expression"] for q in returned] == [
        "IF((FILL(n0, 0) + FILL(n1, 0)) > 0, 100 * (FILL(e0, 0) + FILL(e1, 0)) / (FILL(n0, 0) + FILL(n1, 0)), 0)"
    ]
    assert alarm["threshold"] == rollout.error_rate_percent_threshold
    assert alarm["comparisonOperator"] == "GreaterThanThreshold"


def test_latency_alarm_takes_the_worst_variant_in_microseconds(stack_plans: dict[str, OfflinePlan]) -> None:
    prod = stack_plans["prod"]
    alarm = part(prod, "customer-churn", "alarm-p99-latency").inputs
    metrics = [q["metric"] for q in alarm["metricQueries"] if "metric" in q]
    assert {(m["namespace"], m["metricName"], m["stat"]) for m in metrics} == {("AWS/SageMaker", "ModelLatency", "p99")}
    assert [m["dimensions"]["VariantName"] for m in metrics] == ["champion", "challenger"]
    returned = [q for q in alarm["metricQueries"] if q.get("returnData")]
    assert [q["expression"] for q in returned] == ["MAX([l0, l1])"]
    assert alarm["threshold"] == 300 * 1000


def test_alarm_names_do_not_depend_on_versions_or_variants(stack_plans: dict[str, OfflinePlan], single) -> None:
    """The rollback alarm list is force-new on the endpoint: versions and variants must not change it."""
    prod_names = {a.inputs["name"] for a in serving(stack_plans["prod"], ALARM)}
    single_names = {a.inputs["name"] for a in serving(single, ALARM)}
    assert (
        single_names
        == prod_names
        == {
            "acme-mlops-prod-customer-churn-rollback-5xx-rate",
            "acme-mlops-prod-customer-churn-rollback-p99-latency",
        }
    )


# --- updates: new version → new model and config, same endpoint and scaling target ------------------------


def test_a_new_version_replaces_models_and_config_but_not_the_endpoint(stack_plans: dict[str, OfflinePlan]) -> None:
    before = stack_plans["prod"]
    models = json.loads(read_stack_values("prod")["mlops:models"])
    models[0]["serving"]["variants"][1]["modelVersion"] = PINNED
    after = run_program("prod", overrides={"models": models})
    names = {r.name: r.inputs["name"] for r in serving(before, MODEL)}
    renamed = {r.name: r.inputs["name"] for r in serving(after, MODEL)}
    challenger = "acme-mlops-prod-customer-churn-serving-model-challenger"
    champion = "acme-mlops-prod-customer-churn-serving-model-champion"
    assert renamed[challenger] != names[challenger]
    assert renamed[champion] == names[champion]
    assert config_of(after, "customer-churn")["name"] != config_of(before, "customer-churn")["name"]
    assert (
        part(after, "customer-churn", "endpoint").inputs["name"]
        == part(before, "customer-churn", "endpoint").inputs["name"]
    )
    assert {t.inputs["resourceId"] for t in serving(after, TARGET)} == {
        t.inputs["resourceId"] for t in serving(before, TARGET)
    }


def test_endpoint_config_name_is_deterministic(stack_plans: dict[str, OfflinePlan]) -> None:
    again = run_program("staging")
    assert config_of(again, "customer-churn")["name"] == config_of(stack_plans["staging"], "customer-churn")["name"]


def test_pinned_version_is_served(single: OfflinePlan) -> None:
    (model,) = serving(single, MODEL)
    assert model.inputs["primaryContainer"] == {"modelPackageName": PINNED}


# --- autoscaling ---------------------------------------------------------------------------------------


def test_one_scalable_target_per_autoscaled_variant_and_none_otherwise(plan: OfflinePlan) -> None:
    expected = set()
    for model in plan.config.models:
        if model.serving is None:
            continue
        for variant in model.serving.variants:
            if variant.autoscaling is not None:
                endpoint = f"{plan.config.project}-{plan.config.environment}-{model.name}"
                expected.add(f"endpoint/{endpoint}/variant/{variant.name}")
    targets = serving(plan, TARGET)
    assert {t.inputs["resourceId"] for t in targets} == expected
    assert len(targets) == len(expected)
    assert len(serving(plan, POLICY)) == len(expected)


def test_scalable_target_bounds_and_tracking_policy(stack_plans: dict[str, OfflinePlan]) -> None:
    prod = stack_plans["prod"]
    target = part(prod, "customer-churn", "scaling-champion")
    assert target.inputs["serviceNamespace"] == "sagemaker"
    assert target.inputs["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 8)
    assert part(prod, "customer-churn", "endpoint").urn in target.dependencies
    policy = part(prod, "customer-churn", "scaling-champion-policy").inputs
    assert policy["policyType"] == "TargetTrackingScaling"
    assert policy["resourceId"] == target.inputs["resourceId"]
    tracking = policy["targetTrackingScalingPolicyConfiguration"]
    assert tracking["targetValue"] == 300
    assert tracking["predefinedMetricSpecification"] == {
        "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert (tracking["scaleInCooldown"], tracking["scaleOutCooldown"]) == (300, 60)


# --- network ---------------------------------------------------------------------------------------


def test_vpc_and_isolation_reach_the_model(single: OfflinePlan) -> None:
    (model,) = serving(single, MODEL)
    assert model.inputs["vpcConfig"] == {"subnets": SUBNETS, "securityGroupIds": GROUPS}
    assert model.inputs["enableNetworkIsolation"] is True


def test_eni_permissions_only_with_a_vpc(stack_plans: dict[str, OfflinePlan], single: OfflinePlan) -> None:
    assert not statements(stack_plans["prod"], "customer-churn", "ec2:CreateNetworkInterface")
    (create,) = statements(single, "customer-churn", "ec2:CreateNetworkInterface")
    subnets = [f"arn:aws:ec2:eu-west-1:{MOCK_ACCOUNT_ID}:subnet/{s}" for s in SUBNETS]
    assert set(subnets) <= set(create["Resource"])
    (delete,) = statements(single, "customer-churn", "ec2:DeleteNetworkInterface")
    assert delete["Condition"] == {"ArnEquals": {"ec2:Subnet": subnets}}


# --- no approved version yet -------------------------------------------------------------------------------


def test_no_endpoint_while_the_group_has_no_approved_version(unapproved: Unapproved) -> None:
    plan = unapproved.plan
    assert not [r for r in plan.custom() if r.component == COMPONENT]
    assert plan.outputs["endpoints"] == {}
    # the rest of the platform is still built (the pipeline produces the first version)
    assert [g.inputs["modelPackageGroupName"] for g in plan.of_type(GROUP)] == ["acme-mlops-prod-customer-churn"]


def test_missing_version_warning_says_what_to_do(unapproved: Unapproved) -> None:
    (warning,) = [w for w in unapproved.warnings if "no endpoint yet" in w]
    assert "model 'customer-churn'" in warning
    assert "'acme-mlops-prod-customer-churn' has no Approved version for variant(s) champion, challenger" in warning
    assert "Approve a version" in warning and "serving.variants[].modelVersion" in warning


# --- execution role ------------------------------------------------------------------------------------


def test_role_policy_has_no_wildcard_actions(plan: OfflinePlan) -> None:
    for model in served(plan):
        for statement in role_policy(plan, model)["Statement"]:
            assert all("*" not in action for action in statement["Action"]), statement


def test_role_star_resources_are_only_those_without_resource_permissions(plan: OfflinePlan, single) -> None:
    for current in (plan, single):
        for model in served(current):
            star = [s for s in role_policy(current, model)["Statement"] if "*" in s["Resource"]]
            actions = {a for s in star for a in s["Action"]}
            allowed = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
            allowed |= {"ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
                        "ec2:DescribeSubnets", "ec2:DescribeVpcs"}  # fmt: skip
            assert actions <= allowed


def test_role_may_describe_the_log_streams_of_its_endpoints_log_group(plan: OfflinePlan) -> None:
    # AWS docs, "SageMaker Roles" (CreateModel API: Execution Role Permissions): logs:DescribeLogStreams.
    for model in served(plan):
        (describe,) = statements(plan, model, "logs:DescribeLogStreams")
        (writes,) = statements(plan, model, "logs:PutLogEvents")
        endpoint = f"{plan.config.project}-{plan.config.environment}-{model}"
        assert describe["Action"] == ["logs:DescribeLogStreams"]
        assert (
            describe["Resource"]
            == writes["Resource"]
            == [f"arn:aws:logs:{plan.config.region}:{MOCK_ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/{endpoint}:*"]
        )


def test_role_publishes_metrics_only_to_sagemakers_namespaces(plan: OfflinePlan) -> None:
    for model in served(plan):
        (metrics,) = statements(plan, model, "cloudwatch:PutMetricData")
        assert (metrics["Action"], metrics["Resource"]) == (["cloudwatch:PutMetricData"], ["*"])
        assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*"]}}


def test_role_reads_model_data_only_under_the_pipelines_prefix(plan: OfflinePlan) -> None:
    artifacts = plan.outputs["lakeBuckets"]["artifacts"]
    for model in served(plan):
        reads = statements(plan, model, "s3:GetObject")
        pipeline = f"{plan.config.project}-{plan.config.environment}-{model}"
        assert [s["Resource"] for s in reads] == [[f"arn:aws:s3:::{artifacts}/pipelines/{pipeline}/*"]]


def test_role_writes_captures_only_when_capturing(plan: OfflinePlan) -> None:
    monitoring = plan.outputs["lakeBuckets"]["monitoring"]
    for model in served(plan):
        settings = plan.config.model(model).serving
        assert settings is not None
        writes = statements(plan, model, "s3:PutObject")
        if settings.data_capture.enabled:
            assert [s["Resource"] for s in writes] == [[f"arn:aws:s3:::{monitoring}/{model}/data-capture/*"]]
        else:
            assert writes == []


def test_role_may_describe_exactly_its_rollback_alarms(plan: OfflinePlan) -> None:
    for model in served(plan):
        (describe,) = statements(plan, model, "cloudwatch:DescribeAlarms")
        alarms = sorted(a.inputs["name"] for a in serving(plan, ALARM) if f"-{model}-serving-" in a.name)
        prefix = f"arn:aws:cloudwatch:{plan.config.region}:{MOCK_ACCOUNT_ID}:alarm:"
        assert sorted(describe["Resource"]) == [prefix + a for a in alarms]


def test_models_run_with_the_serving_role_and_wait_for_its_policy(plan: OfflinePlan) -> None:
    for model in served(plan):
        role = part(plan, model, "role")
        policy = part(plan, model, "role-policy")
        for sm_model in serving(plan, MODEL):
            assert sm_model.inputs["executionRoleArn"] == role.state["arn"]
            assert policy.urn in sm_model.dependencies


def test_every_metric_math_alarm_stays_within_cloudwatch_limits(plan: OfflinePlan) -> None:
    """PutMetricAlarm takes at most 10 metric queries and 10 expressions, one of them returned."""
    for alarm in plan.of_type(ALARM):
        queries = alarm.inputs.get("metricQueries") or []
        if queries:
            assert sum("metric" in q for q in queries) <= 10, alarm.inputs["name"]
            assert sum("expression" in q for q in queries) <= 10, alarm.inputs["name"]
            assert sum(bool(q.get("returnData")) for q in queries) == 1, alarm.inputs["name"]


# --- replacement order -------------------------------------------------------------------------


def test_models_and_endpoint_configs_are_replaced_create_first(plan: OfflinePlan) -> None:
    """A rollout must never delete the model or endpoint config the live endpoint still runs: Pulumi's bridge
    replaces explicitly named resources delete-first unless ``delete_before_replace=False`` is set."""
    found = [*plan.of_type(MODEL), *plan.of_type(CONFIG)]
    assert found
    for resource in found:
        assert resource.delete_before_replace is False, resource.name
        # Retained until tools/check_rollout.py --prune has verified the rollout (a silent rollback runs the old one).
        assert resource.retain_on_delete is True, resource.name


def test_scalable_targets_are_replaced_with_their_endpoint(plan: OfflinePlan) -> None:
    """Replacing an endpoint deregisters its scalable targets in AWS: each target is replaced with it."""
    endpoints = plan.of_type(ENDPOINT)
    assert plan.of_type(SCALABLE_TARGET) or plan.stack != "prod"  # prod autoscales: the check runs somewhere
    for target in plan.of_type(SCALABLE_TARGET):
        endpoint = next(e for e in endpoints if e.inputs["name"] in target.inputs["resourceId"])
        assert target.replace_with == (endpoint.urn,), target.name
        # Unnamed: a create-first replacement would register the same id, then deregister it with the old one.
        assert target.delete_before_replace is True, target.name
        (policy,) = [p for p in plan.of_type(SCALING_POLICY) if p.parent == target.urn]
        assert policy.replace_with == (target.urn,), policy.name  # deregistering deletes its policies


# --- rollouts keep an autoscaled fleet's size --------------------------------------------------


@dataclass(frozen=True)
class FixedFleet:
    """Answers every endpoint with the same live state, and knows the configs in ``configs``."""

    endpoint: LiveEndpoint
    configs: dict[str, dict[str, int]] = field(default_factory=dict)

    def live(self, endpoint_name: str) -> LiveEndpoint | None:
        return self.endpoint

    def config_counts(self, config_name: str) -> dict[str, int] | None:
        return self.configs.get(config_name)


def deployed_counts(plan: OfflinePlan) -> dict[str, float]:
    (config,) = plan.of_type(CONFIG)
    return {v["variantName"]: v["initialInstanceCount"] for v in config.inputs["productionVariants"]}


def test_a_rollout_starts_autoscaled_variants_at_their_current_size() -> None:
    configured = run_program("prod")
    (config,) = configured.of_type(CONFIG)
    grown = LiveEndpoint(config_name="some-older-config", desired_counts={"champion": 6, "challenger": 3})
    plan = run_program("prod", fleet=FixedFleet(grown))
    assert deployed_counts(configured) == {"champion": 2, "challenger": 2}
    assert deployed_counts(plan) == {"champion": 6, "challenger": 3}
    # The name is a digest of the configured values: autoscaling alone never makes a new config.
    (rolled,) = plan.of_type(CONFIG)
    assert rolled.inputs["name"] == config.inputs["name"]


def test_an_existing_config_keeps_its_own_counts_so_nothing_changes() -> None:
    """The live config unchanged, or a rolled-back one Pulumi recorded: the same name must keep the same counts."""
    name = run_program("prod").of_type(CONFIG)[0].inputs["name"]
    live = LiveEndpoint(config_name="the-one-sagemaker-rolled-back-to", desired_counts={"champion": 6})
    fleet = FixedFleet(live, configs={name: {"champion": 4, "challenger": 2}})
    assert deployed_counts(run_program("prod", fleet=fleet)) == {"champion": 4, "challenger": 2}
