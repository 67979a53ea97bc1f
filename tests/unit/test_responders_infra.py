"""The responders layer over every stack: functions, dead letters, triggers, least privilege, state, archives."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pulumi
import pytest

from infra.config import ConfigError, ModelSettings, parse_stack_config
from infra.monitoring.settings import RetrainingSettings
from infra.responders import (
    DISPATCH,
    FUNCTIONS,
    LAMBDA_ENV_LIMIT_BYTES,
    METRICS_NAMESPACE,
    NOTIFY,
    REPO_ROOT,
    RETRAIN,
    ResponderConfigError,
    ResponderModel,
    check_environment_size,
    retrain_targets,
)
from infra.responders.settings import DeploymentHookSettings
from tests.support.types import (
    FUNCTION,
    INVOKE_CONFIG,
    LOG_GROUP,
    PERMISSION,
    QUEUE,
    QUEUE_POLICY,
    ROLE,
    ROLE_POLICY,
    RULE,
    SUBSCRIPTION,
    TARGET,
)
from verify.mock_engine import OfflinePlan, PlannedResource, apply_overrides, read_stack_values, run_program

COMPONENT = "mlops:responders:Responders"
TABLE = "aws:dynamodb/table:Table"
ALARM_TYPES = ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm")

CONTRACT_ENV = {
    RETRAIN: {"STATE_TABLE", "RETRAIN_TARGETS", "NEW_DATA_TARGETS"},
    NOTIFY: {"PIPELINES"},
    DISPATCH: {"DEPLOY_HOOK", "MODEL_PACKAGE_GROUPS", "GITHUB_API_URL", "STATE_TABLE"},
}
COMMON_ENV = {"ALERTS_TOPIC_ARN", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
# GitHub tokens (classic, fine-grained, app/installation), AWS access keys, PEM keys.
SECRET_VALUE = re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_|AKIA[0-9A-Z]{16}|-----BEGIN")
DATA_SERVICES = ("dynamodb", "sagemaker", "secretsmanager", "sns", "sqs", "kms", "logs")


# --- helpers ----------------------------------------------------------------------------------


def responders(plan: OfflinePlan, type_token: str) -> list[PlannedResource]:
    return [r for r in plan.of_type(type_token) if r.component == COMPONENT]


def functions(plan: OfflinePlan) -> dict[str, PlannedResource]:
    """The responder functions keyed by their folder name (POWERTOOLS_SERVICE_NAME)."""
    return {f.inputs["environment"]["variables"]["POWERTOOLS_SERVICE_NAME"]: f for f in responders(plan, FUNCTION)}


def env(plan: OfflinePlan, key: str) -> dict[str, str]:
    return functions(plan)[key].inputs["environment"]["variables"]


def by_arn(plan: OfflinePlan, type_token: str, arn: str) -> PlannedResource:
    (found,) = [r for r in plan.of_type(type_token) if r.state.get("arn") == arn]
    return found


def role_policy(plan: OfflinePlan, function: PlannedResource) -> dict[str, Any]:
    role = by_arn(plan, ROLE, function.inputs["role"])
    (policy,) = [p for p in plan.of_type(ROLE_POLICY) if p.parent == role.urn]
    return json.loads(policy.inputs["policy"])


def statements_with(policy: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if action in s["Action"]]


def key_arn(plan: OfflinePlan) -> str:
    return plan.outputs["kmsKeyArn"]


def retrain_alarms(plan: OfflinePlan) -> dict[str, PlannedResource]:
    """Every alarm of the stack whose ALARM action publishes to the retrain topic, by alarm name."""
    topic = plan.outputs["retrainTopicArn"]
    return {
        a.inputs.get("name") or a.inputs["alarmName"]: a
        for t in ALARM_TYPES
        for a in plan.of_type(t)
        if topic in (a.inputs.get("alarmActions") or [])
    }


def model(name: str = "churn", *, enabled: bool = True) -> ModelSettings:
    return ModelSettings(
        name=name,
        feature_spec="customer-churn",
        monitoring={"retraining": RetrainingSettings(enabled=enabled, cooldown_minutes=30, max_per_day=3)},  # type: ignore[arg-type]
    )


def responder_model(settings: ModelSettings, *alarms: str) -> ResponderModel:
    return ResponderModel(
        model=settings.name,
        retraining=settings.monitoring.retraining,
        pipeline_name=f"p-{settings.name}",
        pipeline_arn=f"arn:p-{settings.name}",
        model_package_group_name=f"g-{settings.name}",
        retraining_alarm_names=alarms,
    )


# --- functions --------------------------------------------------------------------------------


def test_one_function_per_responder_on_the_contract_runtime(plan: OfflinePlan) -> None:
    found = functions(plan)
    assert set(found) == set(FUNCTIONS)
    for function in found.values():
        assert function.inputs["runtime"] == "python3.13"
        assert function.inputs["architectures"] == ["arm64"]
        assert function.inputs["handler"] == "app.handler"
        assert function.inputs["kmsKeyArn"] == key_arn(plan)


def test_environment_is_exactly_the_contract(plan: OfflinePlan) -> None:
    for key in FUNCTIONS:
        variables = env(plan, key)
        assert set(variables) == COMMON_ENV | CONTRACT_ENV[key]
        assert variables["ALERTS_TOPIC_ARN"] == plan.outputs["alertsTopicArn"]
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE


def test_pipelines_and_groups_maps_name_every_model(plan: OfflinePlan) -> None:
    models = {m.name for m in plan.config.models}
    pipelines = json.loads(env(plan, NOTIFY)["PIPELINES"])
    groups = json.loads(env(plan, DISPATCH)["MODEL_PACKAGE_GROUPS"])
    assert pipelines == {name: model for model, name in plan.outputs["trainingPipelines"].items()}
    assert groups == {name: model for model, name in plan.outputs["modelPackageGroups"].items()}
    assert set(pipelines.values()) == set(groups.values()) == models


def test_environment_holds_the_token_secret_name_never_a_secret(plan: OfflinePlan) -> None:
    hook = json.loads(env(plan, DISPATCH)["DEPLOY_HOOK"])
    deployment = plan.config.deployment
    assert hook == {
        "kind": deployment.kind,
        "repository": deployment.repository,
        "workflow": deployment.workflow,
        "ref": deployment.ref,
        "tokenSecretName": deployment.token_secret_name,
        "stack": plan.stack,
    }
    for key in FUNCTIONS:
        for name, value in env(plan, key).items():
            assert not SECRET_VALUE.search(value), f"{key}: {name} looks like a credential"


def test_approval_dispatches_its_own_stack_only(plan: OfflinePlan) -> None:
    """Without a stack, deploy.yml's workflow_dispatch defaults to every stack (dev -> staging -> prod)."""
    assert json.loads(env(plan, DISPATCH)["DEPLOY_HOOK"])["stack"] == plan.stack


def test_reserving_concurrency_is_off_by_default() -> None:
    assert DeploymentHookSettings().reserve_concurrency is False


def test_no_function_reserves_concurrency_unless_the_stack_opts_in(plan: OfflinePlan) -> None:
    """Accounts with a concurrency quota of 10 refuse any reservation: the default plan must not ask for one."""
    if plan.config.deployment.reserve_concurrency:
        pytest.skip(f"stack {plan.stack} opts in to reserved concurrency")
    for key, function in functions(plan).items():
        assert "reservedConcurrentExecutions" not in function.inputs, key


def test_opting_in_reserves_one_for_retrain_and_dispatch(stack_plans: dict[str, OfflinePlan]) -> None:
    deployment = stack_plans["prod"].config.deployment.model_dump(by_alias=True, exclude_none=True)
    found = functions(run_program("prod", overrides={"deployment": {**deployment, "reserveConcurrency": True}}))
    assert found[RETRAIN].inputs["reservedConcurrentExecutions"] == 1
    assert found[DISPATCH].inputs["reservedConcurrentExecutions"] == 1
    assert "reservedConcurrentExecutions" not in found[NOTIFY].inputs


def test_reserving_concurrency_is_refused_while_new_data_invokes_the_retrain_function() -> None:
    deployment = json.loads(read_stack_values("staging")["mlops:deployment"])
    values = apply_overrides(read_stack_values("staging"), {"deployment": {**deployment, "reserveConcurrency": True}})
    with pytest.raises(ConfigError) as error:
        parse_stack_config(values, "staging")
    [problem] = error.value.problems
    assert problem.startswith("mlops:deployment.reserveConcurrency: got true; reserveConcurrency=true reserves one")
    assert "customer-churn" in problem and "up to 2 at once" in problem


def test_function_waits_for_its_role_policy_and_log_group(plan: OfflinePlan) -> None:
    for function in functions(plan).values():
        role = by_arn(plan, ROLE, function.inputs["role"])
        (policy,) = [p for p in plan.of_type(ROLE_POLICY) if p.parent == role.urn]
        (logs,) = [
            g for g in responders(plan, LOG_GROUP) if g.inputs["name"] == function.inputs["loggingConfig"]["logGroup"]
        ]
        assert {policy.urn, logs.urn} <= set(function.dependencies)


# --- dead letters -----------------------------------------------------------------------------


def test_every_function_dead_letters_to_its_own_kms_encrypted_queue(plan: OfflinePlan) -> None:
    queues = set()
    for key, function in functions(plan).items():
        queue_arn = function.inputs["deadLetterConfig"]["targetArn"]
        queue = by_arn(plan, QUEUE, queue_arn)
        assert queue.inputs["kmsMasterKeyId"] == key_arn(plan), key
        assert queue.inputs["messageRetentionSeconds"] == 14 * 24 * 3600
        (config,) = [c for c in responders(plan, INVOKE_CONFIG) if c.inputs["functionName"] == function.inputs["name"]]
        assert config.inputs["destinationConfig"]["onFailure"]["destination"] == queue_arn
        assert config.inputs["maximumRetryAttempts"] == 2
        queues.add(queue_arn)
    assert len(queues) == len(FUNCTIONS)


def test_every_function_may_send_to_its_queue_with_the_key(plan: OfflinePlan) -> None:
    for key, function in functions(plan).items():
        policy = role_policy(plan, function)
        assert [s["Resource"] for s in statements_with(policy, "sqs:SendMessage")] == [
            [function.inputs["deadLetterConfig"]["targetArn"]]
        ], key
        assert [s["Resource"] for s in statements_with(policy, "kms:GenerateDataKey")] == [[key_arn(plan)]], key


def test_queues_refuse_plain_http_and_admit_only_their_trigger(plan: OfflinePlan) -> None:
    rules = {r.inputs["name"]: r.state["arn"] for r in responders(plan, RULE)}
    prefix = f"{plan.config.project}-{plan.config.environment}"
    expected = {
        RETRAIN: ("sns.amazonaws.com", plan.outputs["retrainTopicArn"]),
        NOTIFY: ("events.amazonaws.com", rules[f"{prefix}-pipeline-status"]),
        DISPATCH: ("events.amazonaws.com", rules[f"{prefix}-model-approved"]),
    }
    for key, function in functions(plan).items():
        queue = by_arn(plan, QUEUE, function.inputs["deadLetterConfig"]["targetArn"])
        (policy,) = [p for p in responders(plan, QUEUE_POLICY) if p.inputs["queueUrl"] == queue.state["url"]]
        document = json.loads(policy.inputs["policy"])
        deny, allow = document["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        service, source = expected[key]
        assert allow["Principal"] == {"Service": service}
        assert allow["Action"] == "sqs:SendMessage"
        assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": source}}


# --- triggers ---------------------------------------------------------------------------------


def test_every_retrain_alarm_reaches_the_retrain_function(plan: OfflinePlan) -> None:
    retrain = functions(plan)[RETRAIN]
    topic = plan.outputs["retrainTopicArn"]
    (subscription,) = [s for s in responders(plan, SUBSCRIPTION) if s.inputs["topic"] == topic]
    assert subscription.inputs["protocol"] == "lambda"
    assert subscription.inputs["endpoint"] == retrain.state["arn"]
    assert json.loads(subscription.inputs["redrivePolicy"]) == {
        "deadLetterTargetArn": retrain.inputs["deadLetterConfig"]["targetArn"]
    }
    (permission,) = [p for p in responders(plan, PERMISSION) if p.inputs["principal"] == "sns.amazonaws.com"]
    assert permission.inputs["function"] == retrain.inputs["name"]
    assert permission.inputs["sourceArn"] == topic
    targets = json.loads(env(plan, RETRAIN)["RETRAIN_TARGETS"])
    assert set(targets) == set(retrain_alarms(plan))


def test_retrain_targets_point_at_the_models_pipeline_and_limits(plan: OfflinePlan) -> None:
    for alarm, target in json.loads(env(plan, RETRAIN)["RETRAIN_TARGETS"]).items():
        settings = plan.config.model(target["model"])
        assert target == {
            "model": settings.name,
            "pipelineName": plan.outputs["trainingPipelines"][settings.name],
            "cooldownMinutes": settings.monitoring.retraining.cooldown_minutes,
            "maxPerDay": settings.monitoring.retraining.max_per_day,
        }, alarm


def test_every_event_target_has_a_dead_letter_queue_retries_and_a_permission(plan: OfflinePlan) -> None:
    """Targets that invoke a function (the new-data rules target queues: tests/unit/test_responders_new_data_infra.py)."""
    rules = {r.inputs["name"]: r for r in responders(plan, RULE)}
    function_arns = {f.state["arn"] for f in responders(plan, FUNCTION)}
    targets = [t for t in responders(plan, TARGET) if t.inputs["arn"] in function_arns]
    assert len(targets) == (2 if plan.config.models else 0)
    for target in targets:
        rule = rules[target.inputs["rule"]]
        function = by_arn(plan, FUNCTION, target.inputs["arn"])
        assert target.inputs["deadLetterConfig"]["arn"] == function.inputs["deadLetterConfig"]["targetArn"]
        assert target.inputs["retryPolicy"]["maximumRetryAttempts"] > 0
        assert target.inputs["retryPolicy"]["maximumEventAgeInSeconds"] > 0
        permissions = [
            p
            for p in responders(plan, PERMISSION)
            if p.inputs["principal"] == "events.amazonaws.com" and p.inputs["sourceArn"] == rule.state["arn"]
        ]
        assert [p.inputs["function"] for p in permissions] == [function.inputs["name"]]
        assert {p.urn for p in permissions} <= set(target.dependencies)


def test_rules_match_only_this_stacks_pipelines_and_approved_versions(plan: OfflinePlan) -> None:
    prefix = f"{plan.config.project}-{plan.config.environment}"
    rules = {r.inputs["name"]: json.loads(r.inputs["eventPattern"]) for r in responders(plan, RULE)}
    # The training pipelines only: a monitoring pipeline runs every hour, and its failures are the monitor
    # heartbeat alarm's business, not a notification per run.
    pipeline_arns = sorted(
        r.state["arn"]
        for r in plan.of_type("aws:sagemaker/pipeline:Pipeline")
        if r.inputs["pipelineName"].startswith(prefix) and r.component == "mlops:training:TrainingPipeline"
    )
    assert rules[f"{prefix}-pipeline-status"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
        "detail": {"pipelineArn": pipeline_arns, "currentPipelineExecutionStatus": ["Failed", "Stopped", "Succeeded"]},
    }
    assert rules[f"{prefix}-model-approved"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": sorted(plan.outputs["modelPackageGroups"].values()),
            "ModelApprovalStatus": ["Approved"],
            "ModelPackageStatus": ["Completed"],
        },
    }


# --- least privilege --------------------------------------------------------------------------


def test_no_data_action_is_allowed_on_every_resource(plan: OfflinePlan) -> None:
    for key, function in functions(plan).items():
        for statement in role_policy(plan, function)["Statement"]:
            assert all("*" not in action for action in statement["Action"]), (key, statement)
            if any(action.split(":")[0] in DATA_SERVICES for action in statement["Action"]):
                assert "*" not in statement["Resource"], (key, statement)


def test_retrain_starts_exactly_the_retrained_models_pipelines(plan: OfflinePlan) -> None:
    retrained = {t["model"] for t in json.loads(env(plan, RETRAIN)["RETRAIN_TARGETS"]).values()}
    retrained |= set(json.loads(env(plan, RETRAIN)["NEW_DATA_TARGETS"]))  # models retrained on new data
    pipelines = {r.inputs["pipelineName"]: r.state["arn"] for r in plan.of_type("aws:sagemaker/pipeline:Pipeline")}
    expected = sorted(pipelines[plan.outputs["trainingPipelines"][m]] for m in retrained)
    starts = statements_with(role_policy(plan, functions(plan)[RETRAIN]), "sagemaker:StartPipelineExecution")
    assert [sorted(s["Resource"]) for s in starts] == ([expected] if expected else [])


def test_only_retrain_and_dispatch_touch_the_state_table(plan: OfflinePlan) -> None:
    """Retrain keeps its cooldown ledger there, dispatch its one-dispatch-per-approval ledger; notify keeps none."""
    (table,) = responders(plan, TABLE)
    for key, function in functions(plan).items():
        items = statements_with(role_policy(plan, function), "dynamodb:PutItem")
        assert [s["Resource"] for s in items] == ([[table.state["arn"]]] if key in (RETRAIN, DISPATCH) else []), key
        if key == DISPATCH:
            assert env(plan, DISPATCH)["STATE_TABLE"] == table.state["name"]


def test_every_dead_letter_queue_and_every_failing_function_alerts_humans(plan: OfflinePlan) -> None:
    alarms = {a.inputs["name"]: a for a in responders(plan, "aws:cloudwatch/metricAlarm:MetricAlarm")}
    alerts = plan.outputs["alertsTopicArn"]
    # Dead-letter queues: each function's, and the new-data queues' shared one when a model retrains on new data.
    queues = {q.inputs["name"] for q in responders(plan, "aws:sqs/queue:Queue") if q.inputs["name"].endswith("-dlq")}
    new_data = any(m.training.retrain_on_new_data.enabled for m in plan.config.models)
    names = {f.inputs["name"] for f in responders(plan, FUNCTION)}
    watched_queues = {
        a.inputs["dimensions"]["QueueName"] for a in alarms.values() if a.inputs["namespace"] == "AWS/SQS"
    }
    watched_functions = {
        a.inputs["dimensions"]["FunctionName"] for a in alarms.values() if a.inputs["namespace"] == "AWS/Lambda"
    }
    assert watched_queues == queues and len(queues) == len(FUNCTIONS) + new_data
    assert watched_functions == names
    for alarm in alarms.values():
        assert alarm.inputs["alarmActions"] == [alerts] and alarm.inputs["okActions"] == [alerts]
        assert alarm.inputs["threshold"] == 1.0
        assert alarm.inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert "docs/runbook.md#responder-" in alarm.inputs["alarmDescription"]
        # A retrain alarm must never start retraining: it is about the responder, not the model.
        assert plan.outputs["retrainTopicArn"] not in alarm.inputs["alarmActions"]


def test_dispatch_calls_no_sagemaker_api(plan: OfflinePlan) -> None:
    """The approval event carries everything the handler uses; it never describes the model package."""
    for statement in role_policy(plan, functions(plan)[DISPATCH])["Statement"]:
        assert not [a for a in statement["Action"] if a.startswith("sagemaker:")], statement


def test_dispatch_reads_only_the_named_token_secret(plan: OfflinePlan) -> None:
    reads = statements_with(role_policy(plan, functions(plan)[DISPATCH]), "secretsmanager:GetSecretValue")
    deployment = plan.config.deployment
    if deployment.kind == "none":
        assert reads == []
        return
    region, account = plan.config.region, plan.outputs["kmsKeyArn"].split(":")[4]
    assert [s["Resource"] for s in reads] == [
        [f"arn:aws:secretsmanager:{region}:{account}:secret:{deployment.token_secret_name}-??????"]
    ]


def test_logs_go_to_an_encrypted_group_with_the_stack_retention(plan: OfflinePlan) -> None:
    for key, function in functions(plan).items():
        name = function.inputs["loggingConfig"]["logGroup"]
        assert name == f"/aws/lambda/{function.inputs['name']}"
        (group,) = [g for g in responders(plan, LOG_GROUP) if g.inputs["name"] == name]
        assert group.inputs["kmsKeyId"] == key_arn(plan)
        assert group.inputs["retentionInDays"] == plan.config.log_retention_days
        writes = statements_with(role_policy(plan, function), "logs:PutLogEvents")
        assert [s["Resource"] for s in writes] == [[f"{group.state['arn']}:*"]], key


# --- state ------------------------------------------------------------------------------------


def test_state_table_is_kms_encrypted_with_point_in_time_recovery(plan: OfflinePlan) -> None:
    (table,) = responders(plan, TABLE)
    assert table.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key_arn(plan)}
    assert table.inputs["pointInTimeRecovery"]["enabled"] is True
    assert table.inputs["hashKey"] == "pk"
    assert table.inputs["attributes"] == [{"name": "pk", "type": "S"}]
    assert table.inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
    assert env(plan, RETRAIN)["STATE_TABLE"] == table.inputs["name"] == plan.outputs["responderStateTable"]


def test_state_table_protection_follows_the_stack(plan: OfflinePlan) -> None:
    (table,) = responders(plan, TABLE)
    assert table.inputs["deletionProtectionEnabled"] is plan.config.protect_stateful_resources
    assert table.protect is plan.config.protect_stateful_resources


# --- archives ---------------------------------------------------------------------------------


def test_archives_are_deterministic_across_program_runs(stack_plans: dict[str, OfflinePlan]) -> None:
    again = run_program("dev")
    first = functions(stack_plans["dev"])
    for key, function in functions(again).items():
        assert function.inputs["sourceCodeHash"] == first[key].inputs["sourceCodeHash"], key
        assert isinstance(function.inputs["code"], pulumi.FileArchive)
        assert function.inputs["code"].path == first[key].inputs["code"].path


def test_each_function_ships_its_own_built_archive_under_its_hash(plan: OfflinePlan) -> None:
    hashes = set()
    for key, function in functions(plan).items():
        path = function.inputs["code"].path
        assert path.startswith(f"build/lambdas/{key}-") and path.endswith(".zip"), path
        digest = base64.b64encode(hashlib.sha256((REPO_ROOT / path).read_bytes()).digest()).decode()
        assert function.inputs["sourceCodeHash"] == digest, key
        hashes.add(digest)
    assert len(hashes) == len(FUNCTIONS)


# --- pure helpers -----------------------------------------------------------------------------


def test_retrain_targets_leave_out_models_with_retraining_disabled() -> None:
    targets = retrain_targets([responder_model(model("on"), "a1"), responder_model(model("off", enabled=False), "a2")])
    assert targets == {"a1": {"model": "on", "pipelineName": "p-on", "cooldownMinutes": 30, "maxPerDay": 3}}


def test_an_alarm_may_retrain_one_model_only() -> None:
    with pytest.raises(ResponderConfigError) as excinfo:
        retrain_targets([responder_model(model("one"), "shared"), responder_model(model("two"), "shared")])
    assert str(excinfo.value) == "alarm 'shared' retrains both 'one' and 'two'; an alarm may retrain one model only"


def test_environment_over_lambdas_limit_is_refused() -> None:
    variables = {"RETRAIN_TARGETS": "x" * (LAMBDA_ENV_LIMIT_BYTES - len("RETRAIN_TARGETS"))}
    assert check_environment_size(RETRAIN, variables) == variables
    with pytest.raises(ResponderConfigError) as excinfo:
        check_environment_size(RETRAIN, {**variables, "A": "b"})
    assert str(excinfo.value).startswith(f"{RETRAIN}: environment variables take 4098 bytes; Lambda allows 4096")


def test_key_policy_lets_the_services_that_write_encrypted_responder_data_use_the_key(plan: OfflinePlan) -> None:
    """SNS redrives undeliverable messages into, and EventBridge writes failed targets into, KMS-encrypted DLQs;
    CloudWatch publishes alarms to the KMS-encrypted topics. Each needs the key, for this account only, except
    EventBridge: AWS documents its statement for encrypted queues without a condition, and no condition key is
    documented to reach KMS on those deliveries (one that does not match would drop the dead letters)."""
    (key,) = plan.of_type("aws:kms/key:Key")
    policy = json.loads(key.inputs["policy"])
    services: set[str] = set()
    for statement in policy["Statement"]:
        principal = statement.get("Principal", {})
        is_service = statement["Effect"] == "Allow" and isinstance(principal, dict) and "Service" in principal
        if is_service and {"kms:Decrypt", "kms:GenerateDataKey"} <= set(statement["Action"]):
            if statement.get("Sid") == "EventBridgeDeadLetters":
                assert principal == {"Service": "events.amazonaws.com"}
                assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
            else:
                assert statement.get("Condition"), f"service statement {statement.get('Sid')} is not scoped"
            found = principal["Service"]
            services.update([found] if isinstance(found, str) else found)
    assert {"sns.amazonaws.com", "events.amazonaws.com", "cloudwatch.amazonaws.com"} <= services
