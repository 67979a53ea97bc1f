"""The pack's ML guardrails (``policies/rules.py``): each rule passes a compliant resource and reports a broken one.

Synthetic resources go through ``verify.policy_check`` exactly as a plan does (resource policies see inputs,
stack policies outputs, both behind pulumi_policy's unknown-checking proxies), with the pack config
(``--policy-pack-config``) passed the same way.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import PolicyConfigSchema
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policies import rules
from tests.support.plans import synthetic_resource
from verify.mock_engine import OfflinePlan, PlannedResource
from verify.policy_check import PolicyPackConfig, check_plan, check_resources, load_policy_config

KEY = "arn:aws:kms:eu-west-1:123456789012:key/platform"
DLQ = "arn:aws:sqs:eu-west-1:123456789012:responder-dlq"
REPO = Path(__file__).resolve().parents[2]


def tags(environment: str) -> dict[str, str]:
    return {"Project": "acme", "Environment": environment, "Owner": "ml", "CostCenter": "cc", "ManagedBy": "pulumi"}


def violations(policy: str, resources: list[PlannedResource], config: PolicyPackConfig | None = None) -> list[str]:
    [found] = [r for r in check_resources(resources, config=config) if r.policy == policy]
    return found.violations


def variant(name: str = "champion", count: int = 2, instance_type: str = "ml.m5.xlarge") -> dict[str, Any]:
    return {"variantName": name, "modelName": "m", "initialInstanceCount": count, "instanceType": instance_type}


def endpoint_config(
    environment: str = "prod",
    variants: list[dict[str, Any]] | None = None,
    capture: dict[str, Any] | None = None,
    name: str = "ec",
    **extra: Any,
) -> PlannedResource:
    inputs: dict[str, Any] = {
        "productionVariants": [variant()] if variants is None else variants,
        "tags": tags(environment),
        **extra,
    }
    if capture is not None:
        inputs["dataCaptureConfig"] = capture
    return synthetic_resource(rules.ENDPOINT_CONFIG, name, inputs)


CAPTURE = {
    "enableCapture": True,
    "initialSamplingPercentage": 50,
    "destinationS3Uri": "s3://acme-prod-monitoring/capture",
    "kmsKeyId": KEY,
    "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
}


def endpoint(
    environment: str = "prod", alarms: list[str] | None = None, name: str = "acme-prod-churn"
) -> PlannedResource:
    inputs: dict[str, Any] = {"name": name, "endpointConfigName": "ec", "tags": tags(environment)}
    if alarms is not None:
        inputs["deploymentConfig"] = {
            "blueGreenUpdatePolicy": {"trafficRoutingConfiguration": {"type": "CANARY", "waitIntervalInSeconds": 600}},
            "autoRollbackConfiguration": {"alarms": [{"alarmName": a} for a in alarms]},
        }
    return synthetic_resource(rules.ENDPOINT, name, inputs)


def data_quality_definition(endpoint_name: str = "acme-prod-churn", **overrides: Any) -> PlannedResource:
    inputs: dict[str, Any] = {
        "name": "dq",
        "dataQualityJobInput": {"endpointInput": {"endpointName": endpoint_name, "localPath": "/opt/ml/processing"}},
        "dataQualityJobOutputConfig": {"kmsKeyId": KEY, "monitoringOutputs": {"s3Output": {"s3Uri": "s3://m/r"}}},
        "jobResources": {
            "clusterConfig": {
                "instanceCount": 1,
                "instanceType": "ml.m5.large",
                "volumeSizeInGb": 20,
                "volumeKmsKeyId": KEY,
            }
        },
        "tags": tags("prod"),
        **overrides,
    }
    return synthetic_resource("aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition", "dq", inputs)


def model_quality_definition(endpoint_name: str = "acme-prod-churn", **overrides: Any) -> PlannedResource:
    """aws-native's shape: camelCase inputs, tags as a list of {key, value}."""
    inputs: dict[str, Any] = {
        "jobDefinitionName": "mq",
        "modelQualityJobInput": {"endpointInput": {"endpointName": endpoint_name, "localPath": "/opt/ml/processing"}},
        "modelQualityJobOutputConfig": {"kmsKeyId": KEY, "monitoringOutputs": []},
        "jobResources": {
            "clusterConfig": {
                "instanceCount": 1,
                "instanceType": "ml.m5.large",
                "volumeSizeInGb": 20,
                "volumeKmsKeyId": KEY,
            }
        },
        "tags": [{"key": k, "value": v} for k, v in tags("prod").items()],
        **overrides,
    }
    return synthetic_resource("aws-native:sagemaker:ModelQualityJobDefinition", "mq", inputs)


def schedule(definition_name: str = "dq") -> PlannedResource:
    config = {"monitoringJobDefinitionName": definition_name, "monitoringType": "DataQuality"}
    return synthetic_resource(rules.MONITORING_SCHEDULE, f"schedule-{definition_name}", {
        "monitoringScheduleConfig": config, "tags": tags("prod")
    })  # fmt: skip


# ---------------------------------------------------------------------------------------------
# prod-endpoint-data-capture


def test_production_endpoint_config_with_capture_passes() -> None:
    assert violations("prod-endpoint-data-capture", [endpoint_config(capture=CAPTURE)]) == []


def test_production_endpoint_config_without_capture_fails() -> None:
    assert violations("prod-endpoint-data-capture", [endpoint_config()]) == [
        "production endpoint configuration 'ec' has no dataCaptureConfig; production endpoints must capture data "
        "for Model Monitor"
    ]


def test_production_capture_left_disabled_fails() -> None:
    disabled = {k: v for k, v in CAPTURE.items() if k != "enableCapture"}
    assert violations("prod-endpoint-data-capture", [endpoint_config(capture=disabled)]) == [
        "production endpoint configuration 'ec': dataCaptureConfig.enableCapture is not true; production endpoints "
        "must capture data"
    ]


def test_non_production_endpoint_config_needs_no_capture() -> None:
    assert violations("prod-endpoint-data-capture", [endpoint_config(environment="dev")]) == []


def test_production_environments_come_from_the_pack_config() -> None:
    config = {"prod-endpoint-data-capture": {"productionEnvironments": ["live"]}}
    assert violations("prod-endpoint-data-capture", [endpoint_config(environment="prod")], config) == []
    assert len(violations("prod-endpoint-data-capture", [endpoint_config(environment="live")], config)) == 1


# ---------------------------------------------------------------------------------------------
# prod-endpoint-auto-rollback


def test_production_endpoint_with_rollback_alarms_passes() -> None:
    assert violations("prod-endpoint-auto-rollback", [endpoint(alarms=["errors", "latency"])]) == []


def test_production_endpoint_without_deployment_config_fails() -> None:
    assert violations("prod-endpoint-auto-rollback", [endpoint()]) == [
        "production endpoint 'acme-prod-churn' has no deploymentConfig.autoRollbackConfiguration.alarms; "
        "a production update must roll back automatically when an alarm fires"
    ]


def test_production_endpoint_with_an_empty_alarm_list_fails() -> None:
    assert len(violations("prod-endpoint-auto-rollback", [endpoint(alarms=[])])) == 1


def test_staging_endpoint_without_rollback_alarms_passes() -> None:
    assert violations("prod-endpoint-auto-rollback", [endpoint(environment="staging")]) == []


# ---------------------------------------------------------------------------------------------
# prod-endpoint-min-instances


def test_production_variants_on_two_instances_pass() -> None:
    config = endpoint_config(variants=[variant("champion", 2), variant("challenger", 3)])
    assert violations("prod-endpoint-min-instances", [config]) == []


def test_production_variant_on_one_instance_fails() -> None:
    config = endpoint_config(variants=[variant("champion", 2), variant("challenger", 1)])
    assert violations("prod-endpoint-min-instances", [config]) == [
        "production endpoint configuration 'ec': variant 'challenger' has initialInstanceCount=1; it must be at least 2"
    ]


def test_serverless_production_variant_fails() -> None:
    serverless = {"variantName": "main", "modelName": "m", "serverlessConfig": {"memorySizeInMb": 2048}}
    assert violations("prod-endpoint-min-instances", [endpoint_config(variants=[serverless])]) == [
        "production endpoint configuration 'ec': variant 'main' is serverless; production variants run on at least "
        "2 instances"
    ]


def test_shadow_variant_may_run_on_one_instance() -> None:
    config = endpoint_config(shadowProductionVariants=[variant("candidate", 1)])
    assert violations("prod-endpoint-min-instances", [config]) == []


def test_autoscaling_minimum_of_one_in_production_fails() -> None:
    target = synthetic_resource(
        rules.SCALABLE_TARGET,
        "champion-scaling",
        {
            "serviceNamespace": "sagemaker",
            "resourceId": "endpoint/acme-prod-churn/variant/champion",
            "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "minCapacity": 1,
            "maxCapacity": 4,
            "tags": tags("prod"),
        },
    )
    assert violations("prod-endpoint-min-instances", [target]) == [
        "autoscaling target 'champion-scaling' of a production variant has minCapacity=1; it must be at least 2 "
        "(scaling in must not leave a single instance)"
    ]


def test_minimum_instance_count_comes_from_the_pack_config() -> None:
    config = {"prod-endpoint-min-instances": {"minInstances": 3}}
    assert len(violations("prod-endpoint-min-instances", [endpoint_config()], config)) == 1


def test_dev_variant_on_one_instance_passes() -> None:
    assert violations("prod-endpoint-min-instances", [endpoint_config("dev", [variant(count=1)])]) == []


# ---------------------------------------------------------------------------------------------
# prod-endpoint-monitoring-schedule (stack policy: endpoint <- job definition <- schedule)


def test_endpoint_monitored_by_a_scheduled_definition_passes() -> None:
    stack = [endpoint(alarms=["e"]), data_quality_definition(), schedule("dq")]
    assert violations("prod-endpoint-monitoring-schedule", stack) == []


def test_endpoint_monitored_by_an_aws_native_definition_passes() -> None:
    stack = [endpoint(alarms=["e"]), model_quality_definition(), schedule("mq")]
    assert violations("prod-endpoint-monitoring-schedule", stack) == []


UNMONITORED = (
    "production endpoint 'acme-prod-churn' (acme-prod-churn) is monitored by no schedule: it is neither the input "
    "of a scheduled Model Monitor job definition nor the endpoint of a scheduled monitoring pipeline; production "
    "endpoints must be monitored"
)
PIPELINE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/acme-prod-churn-monitoring"


def monitoring_pipeline(endpoint_name: str = "acme-prod-churn") -> PlannedResource:
    """The platform engine's pipeline: its step's command line names the endpoint it watches."""
    arguments = ["--model", "churn", "--dimension", "Model=churn", "--dimension", f"Endpoint={endpoint_name}"]
    step = {
        "Name": "MonitorDrift",
        "Type": "Processing",
        "Arguments": {"AppSpecification": {"ContainerArguments": arguments}},
    }
    definition = json.dumps({"Version": "2020-12-01", "Steps": [step]})
    inputs = {"pipelineName": "acme-prod-churn-monitoring", "pipelineDefinition": definition, "tags": tags("prod")}
    return synthetic_resource(rules.SAGEMAKER_PIPELINE, "monitoring-pipeline", inputs, arn=PIPELINE_ARN)


def scheduler_schedule(target_arn: str = PIPELINE_ARN) -> PlannedResource:
    inputs = {
        "scheduleExpression": "cron(0 * ? * * *)",
        "target": {"arn": target_arn, "roleArn": "arn:aws:iam::1:role/r"},
    }
    return synthetic_resource(rules.SCHEDULER_SCHEDULE, "monitoring-schedule", inputs)


def test_definition_without_a_schedule_does_not_count() -> None:
    stack = [endpoint(alarms=["e"]), data_quality_definition()]
    assert violations("prod-endpoint-monitoring-schedule", stack) == [UNMONITORED]


def test_endpoint_watched_by_a_scheduled_monitoring_pipeline_passes() -> None:
    stack = [endpoint(alarms=["e"]), monitoring_pipeline(), scheduler_schedule()]
    assert violations("prod-endpoint-monitoring-schedule", stack) == []


def test_a_monitoring_pipeline_started_by_an_eventbridge_rule_counts_too() -> None:
    target = synthetic_resource(rules.EVENT_TARGET, "monitoring-target", {"rule": "r", "arn": PIPELINE_ARN})
    assert (
        violations("prod-endpoint-monitoring-schedule", [endpoint(alarms=["e"]), monitoring_pipeline(), target]) == []
    )


def test_a_monitoring_pipeline_nothing_starts_does_not_count() -> None:
    stack = [
        endpoint(alarms=["e"]),
        monitoring_pipeline(),
        scheduler_schedule("arn:aws:sagemaker:eu-west-1:1:pipeline/other"),
    ]
    assert violations("prod-endpoint-monitoring-schedule", stack) == [UNMONITORED]


def test_a_scheduled_monitoring_pipeline_of_another_endpoint_does_not_count() -> None:
    stack = [endpoint(alarms=["e"]), monitoring_pipeline("acme-prod-other"), scheduler_schedule()]
    assert violations("prod-endpoint-monitoring-schedule", stack) == [UNMONITORED]


def test_schedule_of_another_endpoint_does_not_count() -> None:
    stack = [endpoint(alarms=["e"]), data_quality_definition("acme-prod-other"), schedule("dq")]
    assert len(violations("prod-endpoint-monitoring-schedule", stack)) == 1


def test_unmonitored_dev_endpoint_passes() -> None:
    assert violations("prod-endpoint-monitoring-schedule", [endpoint("dev")]) == []


# ---------------------------------------------------------------------------------------------
# instance-types-allowed


def test_small_instance_types_pass_in_dev() -> None:
    config = endpoint_config("dev", [variant(instance_type="ml.t3.medium"), variant("b", 1, "ml.m5.large")])
    assert violations("instance-types-allowed", [config]) == []


def test_large_endpoint_instance_fails_in_dev() -> None:
    config = endpoint_config("dev", [variant(instance_type="ml.p4d.24xlarge")])
    assert violations("instance-types-allowed", [config]) == [
        f"{rules.ENDPOINT_CONFIG} 'ec' variant 'champion': instance type 'ml.p4d.24xlarge' is not allowed in "
        f"environment 'dev' (allowed: {', '.join(rules.SMALL_INSTANCE_TYPES)})"
    ]


def test_large_instances_pass_in_an_unlisted_environment() -> None:
    assert (
        violations("instance-types-allowed", [endpoint_config("prod", [variant(instance_type="ml.g5.12xlarge")])]) == []
    )


def test_large_monitoring_job_fails_in_dev() -> None:
    big = {"clusterConfig": {"instanceCount": 1, "instanceType": "ml.m5.24xlarge", "volumeSizeInGb": 20}}
    definition = data_quality_definition(jobResources=big, tags=tags("dev"))
    assert violations("instance-types-allowed", [definition]) == [
        "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition 'dq' monitoring job: instance type "
        f"'ml.m5.24xlarge' is not allowed in environment 'dev' (allowed: {', '.join(rules.SMALL_INSTANCE_TYPES)})"
    ]


def pipeline(environment: str, processing_type: str) -> PlannedResource:
    definition = {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": processing_type}],
        "Steps": [
            {
                "Name": "Preprocess",
                "Type": "Processing",
                "Arguments": {
                    "ProcessingResources": {
                        "ClusterConfig": {
                            "InstanceCount": 1,
                            "InstanceType": {"Get": "Parameters.ProcessingInstanceType"},
                        }
                    }
                },
            },
            {"Name": "Train", "Type": "Training", "Arguments": {"ResourceConfig": {"InstanceType": "ml.m5.large"}}},
        ],
    }
    inputs = {"pipelineName": "p", "pipelineDefinition": json.dumps(definition), "tags": tags(environment)}
    return synthetic_resource(rules.SAGEMAKER_PIPELINE, "p", inputs)


def test_pipeline_step_types_pass_in_dev() -> None:
    assert violations("instance-types-allowed", [pipeline("dev", "ml.t3.medium")]) == []


def test_pipeline_parameter_default_is_checked() -> None:
    assert violations("instance-types-allowed", [pipeline("dev", "ml.c5.18xlarge")]) == [
        f"{rules.SAGEMAKER_PIPELINE} 'p' step 'Preprocess': instance type 'ml.c5.18xlarge' is not allowed in "
        f"environment 'dev' (allowed: {', '.join(rules.SMALL_INSTANCE_TYPES)})"
    ]


def test_allowed_instance_types_come_from_the_pack_config() -> None:
    config = {"instance-types-allowed": {"allowedInstanceTypes": {"prod": ["ml.m5.*"]}}}
    assert violations("instance-types-allowed", [pipeline("dev", "ml.c5.18xlarge")], config) == []
    assert violations(
        "instance-types-allowed", [endpoint_config("prod", [variant(instance_type="ml.c5.xlarge")])], config
    ) == [
        f"{rules.ENDPOINT_CONFIG} 'ec' variant 'champion': instance type 'ml.c5.xlarge' is not allowed in "
        "environment 'prod' (allowed: ml.m5.*)"
    ]


# ---------------------------------------------------------------------------------------------
# lambda-dead-letter-queue


def function(**inputs: Any) -> PlannedResource:
    base = {"name": "acme-dev-retrain-on-alarm", "handler": "app.handler", "runtime": "python3.13", "tags": tags("dev")}
    return synthetic_resource(rules.LAMBDA_FUNCTION, "retrain", {**base, **inputs})


def test_function_with_a_dead_letter_queue_passes() -> None:
    assert violations("lambda-dead-letter-queue", [function(deadLetterConfig={"targetArn": DLQ})]) == []


def test_function_with_a_queue_known_only_at_update_passes() -> None:
    unknown = function(deadLetterConfig={"targetArn": UNKNOWN_STRING_VALUE})
    assert violations("lambda-dead-letter-queue", [unknown]) == []


def test_function_without_a_dead_letter_queue_fails() -> None:
    assert violations("lambda-dead-letter-queue", [function()]) == [
        "Lambda function 'retrain' has no deadLetterConfig.targetArn; events that fail every retry must land in a "
        "dead-letter queue, not vanish"
    ]


# ---------------------------------------------------------------------------------------------
# sagemaker-kms-encryption


def feature_group(online_kms: bool = True, offline_kms: bool = True) -> PlannedResource:
    online: dict[str, Any] = {"enableOnlineStore": True}
    if online_kms:
        online["securityConfig"] = {"kmsKeyId": KEY}
    storage: dict[str, Any] = {"s3Uri": "s3://acme-dev-features/churn"}
    if offline_kms:
        storage["kmsKeyId"] = KEY
    inputs = {
        "featureGroupName": "fg",
        "onlineStoreConfig": online,
        "offlineStoreConfig": {"s3StorageConfig": storage},
        "tags": tags("dev"),
    }
    return synthetic_resource("aws:sagemaker/featureGroup:FeatureGroup", "fg", inputs)


def test_encrypted_feature_group_passes() -> None:
    assert violations("sagemaker-kms-encryption", [feature_group()]) == []


def test_feature_group_without_store_keys_fails() -> None:
    assert violations("sagemaker-kms-encryption", [feature_group(online_kms=False, offline_kms=False)]) == [
        "aws:sagemaker/featureGroup:FeatureGroup 'fg' is not encrypted with a customer-managed KMS key: set "
        "onlineStoreConfig.securityConfig.kmsKeyId, offlineStoreConfig.s3StorageConfig.kmsKeyId"
    ]


def test_encrypted_monitoring_definitions_pass() -> None:
    assert violations("sagemaker-kms-encryption", [data_quality_definition(), model_quality_definition()]) == []


def test_model_quality_output_without_a_key_fails() -> None:
    unencrypted = model_quality_definition(modelQualityJobOutputConfig={"monitoringOutputs": []})
    assert violations("sagemaker-kms-encryption", [unencrypted]) == [
        "aws-native:sagemaker:ModelQualityJobDefinition 'mq' is not encrypted with a customer-managed KMS key: set "
        "modelQualityJobOutputConfig.kmsKeyId"
    ]


def test_data_quality_volume_without_a_key_fails() -> None:
    cluster = {"clusterConfig": {"instanceCount": 1, "instanceType": "ml.m5.large", "volumeSizeInGb": 20}}
    assert violations("sagemaker-kms-encryption", [data_quality_definition(jobResources=cluster)]) == [
        "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition 'dq' is not encrypted with a customer-managed "
        "KMS key: set jobResources.clusterConfig.volumeKmsKeyId"
    ]


def test_data_capture_without_a_key_fails() -> None:
    unencrypted = {k: v for k, v in CAPTURE.items() if k != "kmsKeyId"}
    assert violations("sagemaker-kms-encryption", [endpoint_config(capture=unencrypted)]) == [
        f"{rules.ENDPOINT_CONFIG} 'ec' is not encrypted with a customer-managed KMS key: set dataCaptureConfig.kmsKeyId"
    ]


# ---------------------------------------------------------------------------------------------
# The pack config: schema, defaults file, enforcement overrides


def test_aws_native_list_tags_mark_production() -> None:
    # the list form of aws-native tags is read like the map form
    definition = model_quality_definition()
    big = {"clusterConfig": {"instanceCount": 1, "instanceType": "ml.m5.24xlarge", "volumeSizeInGb": 20}}
    config = {"instance-types-allowed": {"allowedInstanceTypes": {"prod": ["ml.m5.large"]}}}
    assert violations("instance-types-allowed", [definition], config) == []
    broken = model_quality_definition(jobResources=big)
    assert len(violations("instance-types-allowed", [broken], config)) == 1


def test_enforcement_level_can_be_lowered_by_config() -> None:
    config = {"lambda-dead-letter-queue": {"enforcementLevel": "advisory"}}
    [found] = [r for r in check_resources([function()], config=config) if r.policy == "lambda-dead-letter-queue"]
    assert (found.enforcement, found.passed) == ("advisory", False)


def schema_defaults() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for policy in rules.POLICIES:
        schema = policy.config_schema
        if isinstance(schema, PolicyConfigSchema):
            found[policy.name] = {key: prop["default"] for key, prop in schema.properties.items()}
    return found


def test_every_config_property_has_a_default() -> None:
    for policy in rules.POLICIES:
        if policy.config_schema is not None:
            assert all("default" in prop for prop in policy.config_schema.properties.values()), policy.name


def test_defaults_file_spells_out_the_schema_defaults() -> None:
    defaults = load_policy_config(REPO / "policies" / "config.defaults.json")
    assert {name: {k: v for k, v in c.items() if k != "enforcementLevel"} for name, c in defaults.items()} == (
        schema_defaults()
    )


def test_defaults_file_changes_nothing(plan: OfflinePlan) -> None:
    defaults = load_policy_config(REPO / "policies" / "config.defaults.json")
    assert check_plan(plan, config=defaults) == check_plan(plan)


def test_config_naming_an_unknown_policy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"prod-endpoint-capture": {"productionEnvironments": ["prod"]}}))
    with pytest.raises(ValueError, match=r"unknown policy 'prod-endpoint-capture'"):
        load_policy_config(path)


# ---------------------------------------------------------------------------------------------
# The rules see the real program's resources (not vacuously passing): break the prod plan, one rule fails


@pytest.fixture
def prod_plan(stack_plans: dict[str, OfflinePlan]) -> OfflinePlan:
    return stack_plans["prod"]


def failing(plan: OfflinePlan, resources: list[PlannedResource]) -> dict[str, list[str]]:
    mutated = dataclasses.replace(plan, resources=tuple(resources))
    return {r.policy: r.violations for r in check_plan(mutated) if not r.passed}


def test_prod_endpoint_without_its_schedules_is_reported(prod_plan: OfflinePlan) -> None:
    """Prod runs the platform engine: without the monitoring pipeline's schedule, the endpoint is unmonitored."""
    schedules = {rules.MONITORING_SCHEDULE, rules.NATIVE_MONITORING_SCHEDULE, rules.SCHEDULER_SCHEDULE}
    assert prod_plan.of_type(rules.SCHEDULER_SCHEDULE)
    kept = [r for r in prod_plan.resources if r.type not in schedules]
    [prod_endpoint] = prod_plan.of_type(rules.ENDPOINT)
    assert failing(prod_plan, kept) == {
        "prod-endpoint-monitoring-schedule": [
            f"production endpoint '{prod_endpoint.name}' ({prod_endpoint.state['name']}) is monitored by no "
            "schedule: it is neither the input of a scheduled Model Monitor job definition nor the endpoint of a "
            "scheduled monitoring pipeline; production endpoints must be monitored"
        ]
    }


def test_prod_lambda_without_its_dead_letter_queue_is_reported(prod_plan: OfflinePlan) -> None:
    target = prod_plan.of_type(rules.LAMBDA_FUNCTION)[0]
    inputs = {k: v for k, v in target.inputs.items() if k != "deadLetterConfig"}
    changed = dataclasses.replace(target, inputs=inputs)
    resources = [changed if r is target else r for r in prod_plan.resources]
    assert list(failing(prod_plan, resources)) == ["lambda-dead-letter-queue"]


def test_prod_endpoint_without_rollback_alarms_is_reported(prod_plan: OfflinePlan) -> None:
    [target] = prod_plan.of_type(rules.ENDPOINT)
    inputs = {k: v for k, v in target.inputs.items() if k != "deploymentConfig"}
    changed = dataclasses.replace(target, inputs=inputs)
    resources = [changed if r is target else r for r in prod_plan.resources]
    assert list(failing(prod_plan, resources)) == ["prod-endpoint-auto-rollback"]
