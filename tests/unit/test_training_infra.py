"""The training layer over every stack: pipeline, model package group, published code, schedule, registry sharing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from infra.config import ConfigError, parse_stack_config
from infra.training import SCHEDULED_DATA_VERSION, code_version
from pipelines.bundle import code_bundle
from pipelines.factory import DATA_VERSION, METRIC_THRESHOLD, MODEL_APPROVAL_STATUS, REGISTER_STEP
from tests.support.types import GROUP, GROUP_POLICY, PIPELINE, RULE, TARGET
from verify.mock_engine import MOCK_ACCOUNT_ID, OfflinePlan, PlannedResource, read_stack_values, run_program

COMPONENT = "mlops:training:TrainingPipeline"
CODE_OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
READ_ONLY = re.compile(r"^sagemaker:(Describe|List|Get)[A-Za-z]+$")
# What a consumer account may do beyond reading: create a model (in its own account) from a version.
CONSUMER_ACTIONS = {"sagemaker:CreateModel"}


def resource(plan: OfflinePlan, model: str, part: str) -> PlannedResource:
    return plan.named(f"{plan.config.project}-{plan.config.environment}-{model}-training-{part}")


def training(plan: OfflinePlan, type_token: str) -> list[PlannedResource]:
    return [r for r in plan.of_type(type_token) if r.component == COMPONENT]


def definition(plan: OfflinePlan, model: str) -> dict[str, Any]:
    return json.loads(resource(plan, model, "pipeline").inputs["pipelineDefinition"])


def parameter_default(doc: dict[str, Any], name: str) -> Any:
    (found,) = [p for p in doc["Parameters"] if p["Name"] == name]
    return found["DefaultValue"]


def steps(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in items:
        yield step
        for branch in ("IfSteps", "ElseSteps"):
            yield from steps(step.get("Arguments", {}).get(branch, []))


def execution_policy(plan: OfflinePlan, model: str) -> dict[str, Any]:
    return json.loads(resource(plan, model, "role-policy").inputs["policy"])


def with_training(stack: str, **changes: Any) -> dict[str, Any]:
    """Overrides giving every model of ``stack`` these training keys."""
    models = json.loads(read_stack_values(stack)["mlops:models"])
    for model in models:
        model["training"] = {**model.get("training", {}), **changes}
    return {"models": models}


@pytest.fixture(scope="module")
def flipped_plans() -> dict[str, OfflinePlan]:
    """Dev with a schedule and a registry account; prod without either (the other side of each switch)."""
    return {
        "dev": run_program(
            "dev",
            overrides=with_training("dev", retrainSchedule="cron(0 6 * * ? *)", registryAccountIds=["246813579135"]),
        ),
        "prod": run_program("prod", overrides=with_training("prod", retrainSchedule=None, registryAccountIds=[])),
    }


# --- pipeline and registry --------------------------------------------------------------------


def test_one_pipeline_and_one_model_package_group_per_model(plan: OfflinePlan) -> None:
    expected = {f"{plan.config.project}-{plan.config.environment}-{m.name}" for m in plan.config.models}
    assert {p.inputs["pipelineName"] for p in training(plan, PIPELINE)} == expected
    assert {g.inputs["modelPackageGroupName"] for g in training(plan, GROUP)} == expected
    assert plan.outputs["trainingPipelines"] == {
        m.name: f"{plan.config.project}-{plan.config.environment}-{m.name}" for m in plan.config.models
    }
    assert set(plan.outputs["modelPackageGroups"]) == {m.name for m in plan.config.models}


def test_model_package_group_is_stateful(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        group = resource(plan, model.name, "registry")
        assert group.protect == plan.config.protect_stateful_resources
        assert group.retain_on_delete == plan.config.retain_stateful_on_delete


def test_register_step_targets_the_models_group(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        group = resource(plan, model.name, "registry").inputs["modelPackageGroupName"]
        (register,) = [s for s in steps(definition(plan, model.name)["Steps"]) if s["Name"] == REGISTER_STEP]
        assert register["Arguments"]["ModelPackageGroupName"] == group


def test_threshold_and_approval_defaults_come_from_the_config(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        doc = definition(plan, model.name)
        assert parameter_default(doc, METRIC_THRESHOLD) == model.training.metric_threshold
        assert parameter_default(doc, MODEL_APPROVAL_STATUS) == model.training.approval_status


def test_lineage_goes_to_a_per_pipeline_experiment(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        config = definition(plan, model.name)["PipelineExperimentConfig"]
        assert config == {
            "ExperimentName": {"Get": "Execution.PipelineName"},
            "TrialName": {"Get": "Execution.PipelineExecutionId"},
        }


def test_pipeline_waits_for_its_role_policy_and_code(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        pipeline = resource(plan, model.name, "pipeline")
        policy = resource(plan, model.name, "role-policy")
        code = [o for o in training(plan, CODE_OBJECT) if f"-{model.name}-training-" in o.name]
        assert policy.urn in pipeline.dependencies
        assert {o.urn for o in code} <= set(pipeline.dependencies)
        assert pipeline.inputs["roleArn"] == resource(plan, model.name, "role").state["arn"]


def test_definition_is_deterministic(stack_plans: dict[str, OfflinePlan]) -> None:
    again = run_program("staging")
    for model in again.config.models:
        first = resource(stack_plans["staging"], model.name, "pipeline").inputs["pipelineDefinition"]
        assert resource(again, model.name, "pipeline").inputs["pipelineDefinition"] == first


# --- published code ---------------------------------------------------------------------------


def test_code_objects_are_content_addressed_in_the_artifacts_bucket(plan: OfflinePlan) -> None:
    bundle = code_bundle()
    version = code_version(bundle)
    artifacts = plan.outputs["lakeBuckets"]["artifacts"]
    for model in plan.config.models:
        prefix = f"code/{model.name}/{version}/"
        objects = [o for o in training(plan, CODE_OBJECT) if o.inputs["key"].startswith(f"code/{model.name}/")]
        assert {o.inputs["bucket"] for o in objects} == {artifacts}
        assert sorted(o.inputs["key"] for o in objects) == sorted(prefix + key for key in bundle)
        assert (
            f"s3://{artifacts}/{prefix}sourcedir.tar.gz"
            in resource(plan, model.name, "pipeline").inputs["pipelineDefinition"]
        )


def test_code_version_changes_exactly_when_the_code_does() -> None:
    bundle = code_bundle()
    assert code_version(dict(bundle)) == code_version(bundle)
    changed = {**bundle, "train.py": bundle["train.py"] + b"\n# changed\n"}
    assert code_version(changed) != code_version(bundle)
    assert re.fullmatch(r"[0-9a-f]{16}", code_version(bundle))


# --- execution role ---------------------------------------------------------------------------


def test_execution_role_allows_no_wildcard_action(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        for statement in execution_policy(plan, model.name)["Statement"]:
            assert all("*" not in action for action in statement["Action"]), statement


def test_execution_role_passes_only_itself_to_sagemaker(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        role_arn = resource(plan, model.name, "role").state["arn"]
        passing = [s for s in execution_policy(plan, model.name)["Statement"] if "iam:PassRole" in s["Action"]]
        assert passing == [
            {
                "Sid": "PassOwnRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": [role_arn],
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            }
        ]


def test_execution_role_star_resources_are_the_ecr_token_and_namespaced_metrics(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        star = [s for s in execution_policy(plan, model.name)["Statement"] if "*" in s["Resource"]]
        assert sorted(s["Action"] for s in star) == [["cloudwatch:PutMetricData"], ["ecr:GetAuthorizationToken"]]
        (metrics,) = [s for s in star if s["Action"] == ["cloudwatch:PutMetricData"]]
        assert "Condition" in metrics


def test_execution_role_lets_jobs_publish_metrics_only_to_their_namespaces(plan: OfflinePlan) -> None:
    # AWS docs, "SageMaker Roles": CreateTrainingJob / CreateProcessingJob execution roles need PutMetricData.
    for model in plan.config.models:
        (metrics,) = [s for s in execution_policy(plan, model.name)["Statement"]
                      if "cloudwatch:PutMetricData" in s["Action"]]  # fmt: skip
        assert metrics["Action"] == ["cloudwatch:PutMetricData"]
        assert metrics["Resource"] == ["*"]  # PutMetricData has no resource-level permission
        assert metrics["Condition"] == {
            "StringEquals": {"cloudwatch:namespace": ["/aws/sagemaker/ProcessingJobs", "/aws/sagemaker/TrainingJobs"]}
        }


def test_execution_role_may_describe_the_log_streams_of_the_groups_it_writes(plan: OfflinePlan) -> None:
    # AWS docs, "SageMaker Roles": the jobs' execution role needs logs:DescribeLogStreams.
    for model in plan.config.models:
        policy = execution_policy(plan, model.name)["Statement"]
        (describe,) = [s for s in policy if "logs:DescribeLogStreams" in s["Action"]]
        (writes,) = [s for s in policy if "logs:PutLogEvents" in s["Action"]]
        assert describe["Action"] == ["logs:DescribeLogStreams"]
        assert describe["Resource"] == writes["Resource"]
        assert describe["Resource"] == [
            f"arn:aws:logs:{plan.config.region}:{MOCK_ACCOUNT_ID}:log-group:/aws/sagemaker/*"
        ]


def test_execution_role_writes_only_under_the_pipelines_prefix(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        pipeline = resource(plan, model.name, "pipeline").inputs["pipelineName"]
        artifacts = plan.outputs["lakeBuckets"]["artifacts"]
        writes = [s for s in execution_policy(plan, model.name)["Statement"] if "s3:PutObject" in s["Action"]]
        assert [s["Resource"] for s in writes] == [[f"arn:aws:s3:::{artifacts}/pipelines/{pipeline}/*"]]


# --- schedule ---------------------------------------------------------------------------------


def check_schedule(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        rules = [r for r in training(plan, RULE) if f"-{model.name}-training-" in r.name]
        targets = [t for t in training(plan, TARGET) if f"-{model.name}-training-" in t.name]
        if model.training.retrain_schedule is None:
            assert rules == [] and targets == []
            continue
        (rule,), (target,) = rules, targets
        pipeline = resource(plan, model.name, "pipeline")
        assert rule.inputs["scheduleExpression"] == model.training.retrain_schedule
        assert target.inputs["arn"] == pipeline.state["arn"]
        assert target.inputs["sagemakerPipelineTarget"]["pipelineParameterLists"] == [
            {"name": DATA_VERSION, "value": SCHEDULED_DATA_VERSION}
        ]
        policy = json.loads(resource(plan, model.name, "schedule-role-policy").inputs["policy"])
        assert [(s["Action"], s["Resource"]) for s in policy["Statement"]] == [
            (["sagemaker:StartPipelineExecution"], [pipeline.state["arn"]])
        ]
        trust = json.loads(resource(plan, model.name, "schedule-role").inputs["assumeRolePolicy"])
        assert trust["Statement"][0]["Principal"] == {"Service": ["events.amazonaws.com"]}


def test_schedule_exists_exactly_when_configured(plan: OfflinePlan) -> None:
    check_schedule(plan)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_schedule_follows_the_switch_both_ways(flipped_plans: dict[str, OfflinePlan], stack: str) -> None:
    check_schedule(flipped_plans[stack])
    expected = stack == "dev"
    assert bool(training(flipped_plans[stack], RULE)) is expected


# --- cross-account registry -------------------------------------------------------------------


def check_registry_policy(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        policies = [p for p in training(plan, GROUP_POLICY) if f"-{model.name}-training-" in p.name]
        if not model.training.registry_account_ids:
            assert policies == []
            continue
        (policy,) = policies
        group = resource(plan, model.name, "registry")
        assert policy.inputs["modelPackageGroupName"] == group.inputs["modelPackageGroupName"]
        document = json.loads(policy.inputs["resourcePolicy"])
        principals = {f"arn:aws:iam::{a}:root" for a in model.training.registry_account_ids}
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            assert set(statement["Principal"]["AWS"]) == principals
            actions = statement["Action"]
            assert all(READ_ONLY.match(a) or a in CONSUMER_ACTIONS for a in actions), actions
        assert group.state["arn"] in [s["Resource"] for s in document["Statement"]]
        (versions,) = [s for s in document["Statement"] if s["Sid"] == "ReadModelPackages"]
        assert "sagemaker:CreateModel" in versions["Action"]  # a consumer deploys a version by creating a model


def test_registry_policy_exists_exactly_when_accounts_are_configured(plan: OfflinePlan) -> None:
    check_registry_policy(plan)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_registry_policy_follows_the_switch_both_ways(flipped_plans: dict[str, OfflinePlan], stack: str) -> None:
    check_registry_policy(flipped_plans[stack])
    assert bool(training(flipped_plans[stack], GROUP_POLICY)) is (stack == "dev")


def statements_by_sid_of(resource: PlannedResource) -> dict[str, Any]:
    return {st["Sid"]: st for st in json.loads(resource.inputs["policy"])["Statement"]}


def test_registry_consumers_may_read_the_artifacts_and_decrypt_them_through_s3(
    flipped_plans: dict[str, OfflinePlan],
) -> None:
    """A registry policy alone is useless: the consumer also reads the model data and decrypts it."""
    plan = flipped_plans["dev"]
    (model,) = plan.config.models
    consumer = f"arn:aws:iam::{model.training.registry_account_ids[0]}:root"
    artifacts = plan.outputs["lakeBuckets"]["artifacts"]
    (policy,) = [r for r in plan.of_type("aws:s3/bucketPolicy:BucketPolicy") if r.inputs["bucket"] == artifacts]
    read = statements_by_sid_of(policy)["CrossAccountArtifactRead0"]
    pipeline = plan.outputs["trainingPipelines"][model.name]
    assert read["Principal"] == {"AWS": [consumer]}
    assert read["Resource"] == f"arn:aws:s3:::{artifacts}/pipelines/{pipeline}/*"
    assert set(read["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
    (key,) = plan.of_type("aws:kms/key:Key")
    decrypt = statements_by_sid_of(key)["RegistryConsumersDecryptViaS3"]
    assert decrypt["Principal"] == {"AWS": [consumer]}
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{plan.config.region}.amazonaws.com"}}
    assert "kms:Encrypt" not in decrypt["Action"]


def test_no_cross_account_access_without_registry_consumers(flipped_plans: dict[str, OfflinePlan]) -> None:
    plan = flipped_plans["prod"]
    policies = [*plan.of_type("aws:s3/bucketPolicy:BucketPolicy"), *plan.of_type("aws:kms/key:Key")]
    assert not [sid for p in policies for sid in statements_by_sid_of(p) if "CrossAccount" in sid or "Consumers" in sid]


# --- config -----------------------------------------------------------------------------------


def training_problems(**changes: Any) -> list[str]:
    values = read_stack_values("dev")
    overrides = with_training("dev", **changes)
    with pytest.raises(ConfigError) as excinfo:
        parse_stack_config(values | {"mlops:models": json.dumps(overrides["models"])}, "dev")
    return excinfo.value.problems


def test_threshold_above_one_is_refused_naming_the_key() -> None:
    [problem] = training_problems(metricThreshold=1.5)
    assert problem.startswith("mlops:models.0.training.metricThreshold: got 1.5;")


def test_unknown_approval_status_is_refused_naming_the_key() -> None:
    [problem] = training_problems(approvalStatus="Rejected")
    assert problem.startswith('mlops:models.0.training.approvalStatus: got "Rejected";')
    assert "PendingManualApproval" in problem and "Approved" in problem


def test_malformed_registry_account_is_refused_naming_the_key() -> None:
    [problem] = training_problems(registryAccountIds=["4444-5555-6666"])
    assert problem.startswith('mlops:models.0.training.registryAccountIds.0: got "4444-5555-6666";')


@pytest.mark.parametrize("account", ["444455556666", "111122223333", "777788889999", "123456789012"])
def test_an_example_account_from_awss_documentation_is_refused_naming_the_key(account: str) -> None:
    [problem] = training_problems(registryAccountIds=[account])
    assert problem.startswith(f'mlops:models.0.training.registryAccountIds.0: got "{account}";')
    assert "example account ID from AWS's documentation" in problem


def test_instance_type_must_be_a_sagemaker_type() -> None:
    [problem] = training_problems(trainingInstanceType="m5.large")
    assert problem.startswith('mlops:models.0.training.trainingInstanceType: got "m5.large";')


def test_schedule_must_be_cron() -> None:
    [problem] = training_problems(retrainSchedule="weekly")
    assert problem.startswith('mlops:models.0.training.retrainSchedule: got "weekly";')


def test_versions_carry_the_drift_baseline_their_monitoring_engine_reads(plan: OfflinePlan) -> None:
    for model in plan.config.models:
        (register,) = [s for s in steps(definition(plan, model.name)["Steps"]) if s["Name"] == REGISTER_STEP]
        baseline = register["Arguments"]["DriftCheckBaselines"]["ModelDataQuality"]
        uri = json.dumps(baseline["Statistics"]["S3Uri"])
        if model.monitoring.engine == "platform":
            assert "drift-baseline.json" in uri and "Constraints" not in baseline
        else:
            assert "statistics.json" in uri and "Constraints" in baseline
