"""New-data retraining in the program: the opt-in setting and its checks, the curated bucket's one notification
configuration, and each opted-in model's rule → KMS-encrypted queue → event source mapping, least privilege and
dead letters. Stacks are run under the mock engine with ``models[].training.retrainOnNewData`` switched on."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, cast

import pytest

from infra.config import ConfigError, parse_stack_config
from infra.responders import RETRAIN
from infra.responders.component import SETTINGS
from infra.responders.environment import COMMITS_PREFIX
from mlops.ingestion import COMMITS_PREFIX as INGESTION_COMMITS_PREFIX
from mlops.ingestion import STAGING_PREFIX
from tests.support.plans import prefix
from tests.support.types import (
    ALARM,
    FUNCTION,
    LAKE,
    QUEUE,
    QUEUE_POLICY,
    RESPONDERS,
    ROLE,
    ROLE_POLICY,
    RULE,
    TARGET,
)
from verify.mock_engine import OfflinePlan, PlannedResource, apply_overrides, read_stack_values, run_program

NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
REDRIVE_ALLOW = "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy"
MODEL = "customer-churn"
TABLE_PREFIX = "customer_activity/"


def models_with(stack: str, **new_data: Any) -> list[dict[str, Any]]:
    models = json.loads(read_stack_values(stack)["mlops:models"])
    for model in models:
        model.setdefault("training", {})["retrainOnNewData"] = {"enabled": True, **new_data}
    return models


def config_problems(stack: str, overrides: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_stack_config(apply_overrides(read_stack_values(stack), overrides), stack)
    return error.value.problems


@pytest.fixture(scope="module")
def commits() -> OfflinePlan:
    """dev with retraining on commit markers (the default match), a 120 s batching window."""
    return run_program("dev", overrides={"models": models_with("dev", batchingWindowSeconds=120)})


@pytest.fixture(scope="module")
def objects() -> OfflinePlan:
    """staging with retraining on every object of the table."""
    return run_program("staging", overrides={"models": models_with("staging", match="objects")})


@pytest.fixture(params=["commits", "objects"])
def opted(request: pytest.FixtureRequest) -> OfflinePlan:
    return request.getfixturevalue(request.param)


def one(plan: OfflinePlan, type_token: str) -> PlannedResource:
    (found,) = plan.of_type(type_token)
    return found


def by_arn(plan: OfflinePlan, type_token: str, arn: str) -> PlannedResource:
    (found,) = [r for r in plan.of_type(type_token) if r.state.get("arn") == arn]
    return found


def new_data_rule(plan: OfflinePlan) -> PlannedResource:
    (rule,) = [r for r in plan.of_type(RULE) if r.inputs["name"].endswith(f"-new-data-{MODEL}")]
    return rule


def new_data_queue(plan: OfflinePlan) -> PlannedResource:
    (queue,) = [q for q in plan.of_type(QUEUE) if q.inputs["name"].endswith(f"-new-data-{MODEL}")]
    return queue


def new_data_mapping(plan: OfflinePlan) -> PlannedResource:
    (mapping,) = [m for m in plan.of_type(MAPPING) if m.inputs["eventSourceArn"] == new_data_queue(plan).state["arn"]]
    return mapping


def dead_letter_queue(plan: OfflinePlan) -> PlannedResource:
    (queue,) = [q for q in plan.of_type(QUEUE) if q.inputs["name"].endswith("-new-data-dlq")]
    return queue


def retrain_function(plan: OfflinePlan) -> PlannedResource:
    (function,) = [
        f for f in plan.of_type(FUNCTION) if f.inputs["environment"]["variables"]["POWERTOOLS_SERVICE_NAME"] == RETRAIN
    ]
    return function


def retrain_policy(plan: OfflinePlan) -> dict[str, Any]:
    role = by_arn(plan, ROLE, retrain_function(plan).inputs["role"])
    (policy,) = [p for p in plan.of_type(ROLE_POLICY) if p.parent == role.urn]
    return json.loads(policy.inputs["policy"])


def queue_policy(plan: OfflinePlan, queue: PlannedResource) -> dict[str, Any]:
    (policy,) = [p for p in plan.of_type(QUEUE_POLICY) if p.inputs["queueUrl"] == queue.state["url"]]
    return json.loads(policy.inputs["policy"])


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge's matching for the operators the rule uses (exact values and ``prefix``), field by field."""
    for key, wanted in pattern.items():
        value = event.get(key)
        if isinstance(wanted, dict):
            if not isinstance(value, dict) or not matches(wanted, value):
                return False
        elif not any(
            (isinstance(w, dict) and isinstance(value, str) and value.startswith(w["prefix"])) or w == value
            for w in wanted
        ):
            return False
    return True


def s3_event(plan: OfflinePlan, key: str) -> dict[str, Any]:
    return {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": plan.outputs["lakeBuckets"]["curated"]}, "object": {"key": key}},
    }


# --- the setting --------------------------------------------------------------------------------


def test_the_new_data_path_exists_exactly_for_the_models_that_opt_in(plan: OfflinePlan) -> None:
    opted = sorted(m.name for m in plan.config.models if m.training.retrain_on_new_data.enabled)
    mappings = [m for m in plan.of_type(MAPPING) if m.component == RESPONDERS]
    targets = json.loads(retrain_function(plan).inputs["environment"]["variables"]["NEW_DATA_TARGETS"])
    assert sorted(targets) == opted
    assert len(mappings) == len(opted)
    # one EventBridge notification on the curated bucket when any model opts in, none otherwise
    assert [n.inputs["bucket"] for n in plan.of_type(NOTIFICATION)] == ([f"{prefix(plan)}-curated"] if opted else [])


def test_opting_in_without_a_source_table_is_refused_naming_the_keys() -> None:
    models = models_with("dev")
    del models[0]["sourceTable"]
    catalog = json.loads(read_stack_values("dev")["mlops:catalog"])
    for table in catalog["tables"]:
        table.pop("streaming", None)  # a streamed table needs a model naming it: another check, another message
    assert config_problems("dev", {"models": models, "catalog": catalog}) == [
        "mlops:models.0.training.retrainOnNewData.enabled: retrainOnNewData.enabled=true needs models[].sourceTable "
        "(a table of catalog.tables in zone curated)"
    ]


def test_opting_in_with_a_source_table_outside_the_curated_zone_is_refused() -> None:
    catalog = json.loads(read_stack_values("dev")["mlops:catalog"])
    catalog["tables"][0]["zone"] = "raw"
    (problem,) = config_problems("dev", {"models": models_with("dev"), "catalog": catalog})
    assert problem.startswith("mlops:models.0.training.retrainOnNewData.enabled: ")
    assert "sourceTable 'customer_activity' in the curated zone; it is declared in zone(s) raw" in problem


def test_a_source_table_under_ingestions_own_prefixes_is_refused() -> None:
    catalog = json.loads(read_stack_values("dev")["mlops:catalog"])
    catalog["tables"][0]["prefix"] = f"{INGESTION_COMMITS_PREFIX}customer_activity/"
    (problem,) = config_problems("dev", {"models": models_with("dev"), "catalog": catalog})
    assert "inside ingestion's _staging/ or _commits/" in problem


def test_the_batching_window_is_lambdas_at_most() -> None:
    (problem,) = config_problems("dev", {"models": models_with("dev", batchingWindowSeconds=301)})
    assert problem.startswith("mlops:models.0.training.retrainOnNewData.batchingWindowSeconds: got 301;")


def test_the_markers_prefix_is_ingestions() -> None:
    assert COMMITS_PREFIX == INGESTION_COMMITS_PREFIX


# --- the lake's notification ----------------------------------------------------------------------


def test_the_curated_bucket_sends_its_events_to_eventbridge(opted: OfflinePlan) -> None:
    notification = one(opted, NOTIFICATION)
    assert notification.inputs == {"bucket": opted.outputs["lakeBuckets"]["curated"], "eventbridge": True}
    assert notification.component == LAKE


def test_no_bucket_has_two_notification_configurations(stack_plans: dict[str, OfflinePlan], opted: OfflinePlan) -> None:
    """S3 keeps one notification configuration per bucket: a second resource would overwrite the first."""
    for plan in [*stack_plans.values(), opted]:
        counts = Counter(n.inputs["bucket"] for n in plan.of_type(NOTIFICATION))
        assert all(count == 1 for count in counts.values()), (plan.stack, counts)


# --- rule, queue, mapping -----------------------------------------------------------------------------------


def test_the_rule_matches_the_models_commit_markers_only(commits: OfflinePlan) -> None:
    pattern = json.loads(new_data_rule(commits).inputs["eventPattern"])
    assert pattern["detail"]["object"]["key"] == [{"prefix": f"_commits/{TABLE_PREFIX}"}]
    assert matches(pattern, s3_event(commits, f"_commits/{TABLE_PREFIX}load-1.json"))
    for key in (f"{TABLE_PREFIX}dt=2024-05-01/load-1-00000.snappy.parquet", f"{STAGING_PREFIX}{TABLE_PREFIX}x/y.parquet",
                "_commits/other_table/load-1.json"):  # fmt: skip
        assert not matches(pattern, s3_event(commits, key)), key


def test_the_rule_matches_every_object_of_the_table_but_never_a_staged_one(objects: OfflinePlan) -> None:
    pattern = json.loads(new_data_rule(objects).inputs["eventPattern"])
    assert (pattern["source"], pattern["detail-type"]) == (["aws.s3"], ["Object Created"])
    assert pattern["detail"]["bucket"]["name"] == [objects.outputs["lakeBuckets"]["curated"]]
    assert matches(pattern, s3_event(objects, f"{TABLE_PREFIX}dt=2024-05-01/part-0.parquet"))
    assert not matches(pattern, s3_event(objects, f"{STAGING_PREFIX}{TABLE_PREFIX}b/a/dt=2024-05-01/x.parquet"))
    assert not matches(pattern, {**s3_event(objects, f"{TABLE_PREFIX}x.parquet"), "detail-type": "Object Deleted"})


def test_the_rule_delivers_to_the_models_queue_with_retries_and_dead_letters(opted: OfflinePlan) -> None:
    rule = new_data_rule(opted)
    (target,) = [t for t in opted.of_type(TARGET) if t.inputs["rule"] == rule.inputs["name"]]
    assert target.inputs["arn"] == new_data_queue(opted).state["arn"]
    assert target.inputs["deadLetterConfig"] == {"arn": dead_letter_queue(opted).state["arn"]}
    assert target.inputs["retryPolicy"]["maximumRetryAttempts"] >= 1


def test_queues_are_encrypted_with_the_platform_key_and_dead_letter(opted: OfflinePlan) -> None:
    queue, dlq = new_data_queue(opted), dead_letter_queue(opted)
    for q in (queue, dlq):
        assert q.inputs["kmsMasterKeyId"] == opted.outputs["kmsKeyArn"]
    assert json.loads(queue.inputs["redrivePolicy"]) == {"deadLetterTargetArn": dlq.state["arn"], "maxReceiveCount": 5}
    assert dlq.inputs["messageRetentionSeconds"] == 14 * 24 * 3600


def test_the_queue_admits_only_its_rule_and_only_over_tls(opted: OfflinePlan) -> None:
    deny, allow = queue_policy(opted, new_data_queue(opted))["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert (allow["Principal"], allow["Action"]) == ({"Service": "events.amazonaws.com"}, "sqs:SendMessage")
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": new_data_rule(opted).state["arn"]}}


def test_the_dead_letter_queue_admits_only_the_rules_and_the_queues(opted: OfflinePlan) -> None:
    dlq = dead_letter_queue(opted)
    _, allow = queue_policy(opted, dlq)["Statement"]
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": [new_data_rule(opted).state["arn"]]}}
    (redrive,) = [r for r in opted.of_type(REDRIVE_ALLOW) if r.inputs["queueUrl"] == dlq.state["url"]]
    assert json.loads(redrive.inputs["redriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [new_data_queue(opted).state["arn"]],
    }


def test_the_mapping_gathers_a_burst_and_reports_partial_failures(commits: OfflinePlan) -> None:
    mapping = new_data_mapping(commits)
    assert mapping.inputs["eventSourceArn"] == new_data_queue(commits).state["arn"]
    assert mapping.inputs["functionName"] == retrain_function(commits).state["arn"]
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["maximumBatchingWindowInSeconds"] == 120
    assert 1 <= mapping.inputs["batchSize"] <= 10000  # SQS standard queues, with a batching window
    assert mapping.inputs["scalingConfig"]["maximumConcurrency"] >= 2  # the API's minimum


def test_the_queue_outlasts_a_batch_in_flight(opted: OfflinePlan) -> None:
    """Lambda: visibility timeout at least six times the function timeout (plus the batching window)."""
    window = new_data_mapping(opted).inputs["maximumBatchingWindowInSeconds"]
    timeout = retrain_function(opted).inputs["timeout"]
    assert timeout == SETTINGS[RETRAIN].timeout_seconds
    assert new_data_queue(opted).inputs["visibilityTimeoutSeconds"] >= 6 * timeout + window


def test_the_mapping_waits_for_the_role_policy(opted: OfflinePlan) -> None:
    role = by_arn(opted, ROLE, retrain_function(opted).inputs["role"])
    (policy,) = [p for p in opted.of_type(ROLE_POLICY) if p.parent == role.urn]
    assert policy.urn in new_data_mapping(opted).dependencies


# --- least privilege and alarms ---------------------------------------------------------------------------


def test_the_function_reads_exactly_the_new_data_queues(opted: OfflinePlan) -> None:
    statements = [s for s in retrain_policy(opted)["Statement"] if any(a.startswith("sqs:") for a in s["Action"])]
    reads = [s for s in statements if "sqs:ReceiveMessage" in s["Action"]]
    (read,) = reads
    assert sorted(read["Action"]) == ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    assert read["Resource"] == [new_data_queue(opted).state["arn"]]
    assert not any("*" in a for s in statements for a in s["Action"])


def test_the_function_may_start_the_models_pipeline(opted: OfflinePlan) -> None:
    (start,) = [s for s in retrain_policy(opted)["Statement"] if "sagemaker:StartPipelineExecution" in s["Action"]]
    pipeline = opted.outputs["trainingPipelines"][MODEL]
    assert any(r.endswith(f":pipeline/{pipeline}") for r in start["Resource"])


def test_the_environment_names_the_table_pipeline_and_shared_limits(opted: OfflinePlan) -> None:
    targets = json.loads(retrain_function(opted).inputs["environment"]["variables"]["NEW_DATA_TARGETS"])
    limits = opted.config.model(MODEL).monitoring.retraining
    assert targets == {
        MODEL: {
            "pipelineName": opted.outputs["trainingPipelines"][MODEL],
            "bucket": opted.outputs["lakeBuckets"]["curated"],
            "tablePrefix": TABLE_PREFIX,
            "match": opted.config.model(MODEL).training.retrain_on_new_data.match,
            "cooldownMinutes": limits.cooldown_minutes,
            "maxPerDay": limits.max_per_day,
        }
    }


def test_the_dead_letter_queue_alerts_humans(opted: OfflinePlan) -> None:
    dlq = dead_letter_queue(opted)
    (alarm,) = [a for a in opted.of_type(ALARM) if a.inputs.get("dimensions") == {"QueueName": dlq.inputs["name"]}]
    alerts = opted.outputs["alertsTopicArn"]
    assert (alarm.inputs["alarmActions"], alarm.inputs["okActions"]) == ([alerts], [alerts])
    assert alarm.inputs["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert opted.outputs["retrainTopicArn"] not in alarm.inputs["alarmActions"]


def test_a_source_table_prefix_s3_would_encode_is_refused() -> None:
    catalog = json.loads(read_stack_values("dev")["mlops:catalog"])
    catalog["tables"][0]["prefix"] = "activity/source=web/"
    (problem,) = config_problems("dev", {"models": models_with("dev"), "catalog": catalog})
    assert "needs a prefix of letters, digits and '_-./' only" in problem


def test_the_mapping_is_within_lambdas_api_model(opted: OfflinePlan) -> None:
    """CreateEventSourceMapping's limits, from botocore's model of the Lambda API (what AWS validates)."""
    import botocore.session

    operation = botocore.session.get_session().get_service_model("lambda").operation_model("CreateEventSourceMapping")
    shapes = cast(Any, operation.input_shape).members  # botocore's shapes are untyped
    mapping = new_data_mapping(opted).inputs
    for name, value in (("BatchSize", mapping["batchSize"]),
                        ("MaximumBatchingWindowInSeconds", mapping["maximumBatchingWindowInSeconds"])):  # fmt: skip
        assert shapes[name].metadata["min"] <= value <= shapes[name].metadata["max"], name
    concurrency = shapes["ScalingConfig"].members["MaximumConcurrency"].metadata
    assert concurrency["min"] <= mapping["scalingConfig"]["maximumConcurrency"] <= concurrency["max"]
    assert set(mapping["functionResponseTypes"]) <= set(shapes["FunctionResponseTypes"].member.enum)


def test_the_policy_pack_passes_a_stack_that_retrains_on_new_data(opted: OfflinePlan) -> None:
    from verify.policy_check import check_plan

    assert {r.policy: r.violations for r in check_plan(opted) if not r.passed} == {}


def test_the_allow_list_exists_before_a_queue_names_the_dead_letter_queue(opted: OfflinePlan) -> None:
    """The allow list is built from the queues' names, so adding a model's queue later updates it first."""
    dlq = dead_letter_queue(opted)
    (redrive,) = [r for r in opted.of_type(REDRIVE_ALLOW) if r.inputs["queueUrl"] == dlq.state["url"]]
    assert redrive.urn in new_data_queue(opted).dependencies


def test_more_source_queues_than_sqs_lists_allow_every_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """SetQueueAttributes takes at most 10 sourceQueueArns; past that only allowAll is accepted."""
    from infra.responders import component

    monkeypatch.setattr(component, "REDRIVE_ALLOW_MAX_SOURCE_QUEUES", 1)
    [first] = models_with("dev")
    plan = run_program("dev", overrides={"models": [first, {**first, "name": "fraud-risk"}]})
    (redrive,) = plan.of_type(REDRIVE_ALLOW)
    assert json.loads(redrive.inputs["redriveAllowPolicy"]) == {"redrivePermission": "allowAll"}
