"""The monitoring and notifications layers: alarms, topics and runbook links over every stack, and the Model Monitor
engine (``monitoring.engine: model-monitor``) over staging and prod switched to it, as an account that still has
Model Monitor would run them. The platform engine's own tests are in ``test_monitoring_platform.py``."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra import alarms as alarm_defs
from infra import monitoring
from infra.config import ModelSettings, parse_stack_config
from infra.model_versions import OfflineVersions
from infra.serving import SERVERLESS_VARIANT
from mlops.features import get_spec
from mlops.monitoring import build_record_preprocessor
from tests.support.monitoring import build_monitoring_directly, to_model_monitor
from tests.support.plans import prefix, served, topic_arn
from tests.support.types import (
    ALARM,
    BUCKET_OBJECT,
    COMPOSITE,
    DASHBOARD,
    DQ,
    MONITORING,
    MQ,
    NOTIFICATIONS,
    ROLE_POLICY,
    SCHEDULE,
    SUBSCRIPTION,
    TOPIC,
    TOPIC_POLICY,
)
from verify.aws_contract import check_contract
from verify.mock_engine import (
    MOCK_ACCOUNT_ID,
    OfflinePlan,
    PlannedResource,
    read_stack_values,
    run_program,
)
from verify.policy_check import check_plan

ROOT = Path(__file__).resolve().parents[2]
PINNED_VERSION = 7
SUBSET = ["sessions", "plan_tier"]


# --- helpers ------------------------------------------------------------------------------------


def of_model(plan: OfflinePlan, model: ModelSettings, type_token: str) -> list[PlannedResource]:
    """Resources of ``type_token`` inside the model's ModelMonitoring component."""
    head = f"{prefix(plan)}-{model.name}-monitoring-"
    return [r for r in plan.of_type(type_token) if r.component == MONITORING and r.name.startswith(head)]


def monitored(plan: OfflinePlan) -> list[ModelSettings]:
    """Models whose instance endpoint captures data and that Model Monitor watches."""
    return [
        m
        for m in served(plan)
        if m.serving is not None
        and m.serving.strategy != "serverless"
        and m.serving.data_capture.enabled
        and m.monitoring.engine == "model-monitor"
    ]


def alarms(plan: OfflinePlan) -> list[PlannedResource]:
    return [r for r in plan.resources if r.type in (ALARM, COMPOSITE) and r.component == MONITORING]


def alarm_name(alarm: PlannedResource) -> str:
    return str(alarm.inputs.get("name") or alarm.inputs.get("alarmName"))


def drift_features(model: ModelSettings) -> set[str]:
    return set(model.monitoring.data_quality.drift_alarm_features or get_spec(model.feature_spec).feature_names)


def composite_members(composite: PlannedResource) -> set[str]:
    return set(re.findall(r'ALARM\("([^"]+)"\)', composite.inputs["alarmRule"]))


def model_drift(plan: OfflinePlan, model: ModelSettings) -> PlannedResource:
    """The composite "model drift" alarm (the other composite is "drift not measured")."""
    (found,) = [c for c in of_model(plan, model, COMPOSITE) if alarm_name(c).endswith("-model-drift")]
    return found


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the runbook's headings (lowercase, punctuation dropped, spaces to '-')."""
    anchors = set()
    for line in (ROOT / alarm_defs.RUNBOOK).read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


def models_with(stack: str, change: Any) -> dict[str, Any]:
    models = json.loads(read_stack_values(stack)["mlops:models"])
    for model in models:
        change(model)
    return {"models": models}


def model_monitor_engine(model: dict[str, Any]) -> None:
    to_model_monitor(model)


def pin_subset_no_retraining(model: dict[str, Any]) -> None:
    to_model_monitor(model)
    group = f"acme-mlops-staging-{model['name']}"
    model["serving"]["variants"][0]["modelVersion"] = (
        f"arn:aws:sagemaker:eu-west-1:{MOCK_ACCOUNT_ID}:model-package/{group}/{PINNED_VERSION}"
    )
    model["monitoring"]["dataQuality"]["driftAlarmFeatures"] = SUBSET
    model["monitoring"]["retraining"] = {"enabled": False}


@pytest.fixture(scope="module")
def mm_plans() -> dict[str, OfflinePlan]:
    """Staging and prod with monitoring.engine=model-monitor (the example stacks use the platform engine)."""
    return {
        stack: run_program(stack, overrides=models_with(stack, model_monitor_engine)) for stack in ("staging", "prod")
    }


@pytest.fixture(params=["staging", "prod"])
def mm_plan(request: pytest.FixtureRequest, mm_plans: dict[str, OfflinePlan]) -> OfflinePlan:
    return mm_plans[request.param]


@pytest.fixture(scope="module")
def variant_plans() -> dict[str, OfflinePlan]:
    """Staging (Model Monitor) pinned to version 7 with two drift features and retraining off; prod before any
    approval."""
    return {
        "staging": run_program("staging", overrides=models_with("staging", pin_subset_no_retraining)),
        "prod-unapproved": run_program(
            "prod",
            versions=OfflineVersions(
                region="eu-west-1",
                account_id=MOCK_ACCOUNT_ID,
                unapproved=frozenset({"acme-mlops-prod-customer-churn"}),
            ),
        ),
    }


# --- Model Monitor jobs -----------------------------------------------------------------------------


def test_every_captured_instance_endpoint_has_both_monitors_on_its_endpoint(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    for model in monitored(plan):
        endpoint = f"{prefix(plan)}-{model.name}"
        (dq,) = of_model(plan, model, DQ)
        (mq,) = of_model(plan, model, MQ)
        assert dq.inputs["dataQualityJobInput"]["endpointInput"]["endpointName"] == endpoint
        assert mq.inputs["modelQualityJobInput"]["endpointInput"]["endpointName"] == endpoint


def test_schedules_run_each_monitor_on_its_configured_cron(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    for model in monitored(plan):
        schedules = {
            s.inputs["monitoringScheduleConfig"]["monitoringType"]: s.inputs["monitoringScheduleConfig"]
            for s in of_model(plan, model, SCHEDULE)
        }
        (dq,) = of_model(plan, model, DQ)
        (mq,) = of_model(plan, model, MQ)
        assert schedules["DataQuality"]["monitoringJobDefinitionName"] == dq.inputs["name"]
        assert schedules["ModelQuality"]["monitoringJobDefinitionName"] == mq.inputs["jobDefinitionName"]
        assert (
            schedules["DataQuality"]["scheduleConfig"]["scheduleExpression"] == model.monitoring.data_quality.schedule
        )
        assert (
            schedules["ModelQuality"]["scheduleConfig"]["scheduleExpression"] == model.monitoring.model_quality.schedule
        )


def test_serverless_endpoints_get_endpoint_alarms_but_no_monitors(plan: OfflinePlan) -> None:
    serverless = [m for m in served(plan) if m.serving is not None and m.serving.strategy == "serverless"]
    for model in serverless:
        assert of_model(plan, model, DQ) == [] and of_model(plan, model, MQ) == []
        assert of_model(plan, model, SCHEDULE) == []
        names = {alarm_name(a) for a in of_model(plan, model, ALARM)}
        assert f"{prefix(plan)}-{model.name}-{SERVERLESS_VARIANT}-latency-sustained" in names
        assert f"{prefix(plan)}-{model.name}-{SERVERLESS_VARIANT}-errors-sustained" in names


def test_reports_and_volumes_are_encrypted_with_the_platform_key(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    key = plan.outputs["kmsKeyArn"]
    for model in monitored(plan):
        (dq,) = of_model(plan, model, DQ)
        (mq,) = of_model(plan, model, MQ)
        assert dq.inputs["dataQualityJobOutputConfig"]["kmsKeyId"] == key
        assert mq.inputs["modelQualityJobOutputConfig"]["kmsKeyId"] == key
        assert dq.inputs["jobResources"]["clusterConfig"]["volumeKmsKeyId"] == key
        assert mq.inputs["jobResources"]["clusterConfig"]["volumeKmsKeyId"] == key


def test_reports_land_under_the_model_in_the_monitoring_bucket(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    bucket = plan.outputs["lakeBuckets"]["monitoring"]
    for model in monitored(plan):
        (dq,) = of_model(plan, model, DQ)
        (mq,) = of_model(plan, model, MQ)
        dq_out = dq.inputs["dataQualityJobOutputConfig"]["monitoringOutputs"]["s3Output"]["s3Uri"]
        (mq_out,) = [o["s3Output"]["s3Uri"] for o in mq.inputs["modelQualityJobOutputConfig"]["monitoringOutputs"]]
        assert dq_out == f"s3://{bucket}/{model.name}/data-quality/"
        assert mq_out == f"s3://{bucket}/{model.name}/model-quality/"


def test_monitoring_jobs_are_network_isolated_and_publish_metrics(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    for model in monitored(plan):
        (dq,) = of_model(plan, model, DQ)
        (mq,) = of_model(plan, model, MQ)
        for network in (dq.inputs["networkConfig"], mq.inputs["networkConfig"]):
            assert network == {"enableNetworkIsolation": True, "enableInterContainerTrafficEncryption": True}
        assert dq.inputs["dataQualityAppSpecification"]["environment"]["publish_cloudwatch_metrics"] == "Enabled"
        assert mq.inputs["modelQualityAppSpecification"]["environment"]["publish_cloudwatch_metrics"] == "Enabled"


def test_model_quality_reads_labels_and_the_container_probability(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    bucket = plan.outputs["lakeBuckets"]["monitoring"]
    for model in monitored(plan):
        (mq,) = of_model(plan, model, MQ)
        settings = model.monitoring.model_quality
        job_input = mq.inputs["modelQualityJobInput"]
        assert mq.inputs["modelQualityAppSpecification"]["problemType"] == "BinaryClassification"
        assert job_input["groundTruthS3Input"]["s3Uri"] == f"s3://{bucket}/{model.name}/{settings.ground_truth_prefix}"
        assert job_input["endpointInput"]["probabilityAttribute"] == "0"
        assert job_input["endpointInput"]["probabilityThresholdAttribute"] == settings.probability_threshold


def test_baselines_are_the_served_versions(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    versions = OfflineVersions(region=plan.config.region, account_id=MOCK_ACCOUNT_ID)
    for model in monitored(plan):
        assert model.serving is not None
        served_version = versions.resolve(f"{prefix(plan)}-{model.name}", model.serving.variants[0].model_version)
        assert served_version is not None
        (dq,) = of_model(plan, model, DQ)
        baseline = dq.inputs["dataQualityBaselineConfig"]
        assert baseline["statisticsResource"]["s3Uri"] == served_version.data_statistics_uri
        assert baseline["constraintsResource"]["s3Uri"] == served_version.data_constraints_uri


def test_baselines_follow_a_pinned_version(variant_plans: dict[str, OfflinePlan]) -> None:
    plan = variant_plans["staging"]
    (model,) = monitored(plan)
    (dq,) = of_model(plan, model, DQ)
    statistics = dq.inputs["dataQualityBaselineConfig"]["statisticsResource"]["s3Uri"]
    assert statistics.endswith(f"/acme-mlops-staging-{model.name}/{PINNED_VERSION}/statistics.json")


def test_a_model_without_an_approved_version_gets_no_monitoring(variant_plans: dict[str, OfflinePlan]) -> None:
    plan = variant_plans["prod-unapproved"]
    assert [r for r in plan.resources if r.component == MONITORING] == []


def test_the_monitoring_role_writes_only_the_models_report_prefixes(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    bucket_arn = f"arn:aws:s3:::{plan.outputs['lakeBuckets']['monitoring']}"
    for model in monitored(plan):
        (policy,) = [p for p in of_model(plan, model, ROLE_POLICY)]
        writes = [
            resource
            for statement in json.loads(policy.inputs["policy"])["Statement"]
            if "s3:PutObject" in statement["Action"]
            for resource in statement["Resource"]
        ]
        assert sorted(writes) == [
            f"{bucket_arn}/{model.name}/data-quality/*",
            f"{bucket_arn}/{model.name}/model-quality/*",
        ]


def monitoring_policy(plan: OfflinePlan, model: ModelSettings) -> list[dict[str, Any]]:
    (policy,) = of_model(plan, model, ROLE_POLICY)
    return json.loads(policy.inputs["policy"])["Statement"]


def test_the_monitoring_jobs_publish_processing_job_metrics_only_to_their_namespace(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    # AWS docs, "SageMaker Roles" (CreateProcessingJob API: Execution Role Permissions): PutMetricData.
    for model in monitored(plan):
        statements = {s["Sid"]: s for s in monitoring_policy(plan, model)}
        metrics = statements["ProcessingJobMetrics"]
        assert (metrics["Action"], metrics["Resource"]) == (["cloudwatch:PutMetricData"], ["*"])
        assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": ["/aws/sagemaker/ProcessingJobs"]}}
        unconditioned = [s["Sid"] for s in statements.values()
                         if "cloudwatch:PutMetricData" in s["Action"] and "Condition" not in s]  # fmt: skip
        assert unconditioned == []


def test_the_monitoring_role_may_describe_the_log_streams_of_the_groups_it_writes(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    # AWS docs, "SageMaker Roles" (CreateProcessingJob API: Execution Role Permissions): DescribeLogStreams.
    for model in monitored(plan):
        policy = monitoring_policy(plan, model)
        (describe,) = [s for s in policy if "logs:DescribeLogStreams" in s["Action"]]
        (writes,) = [s for s in policy if "logs:PutLogEvents" in s["Action"]]
        assert describe["Action"] == ["logs:DescribeLogStreams"]
        assert (
            describe["Resource"]
            == writes["Resource"]
            == [f"arn:aws:logs:{plan.config.region}:{MOCK_ACCOUNT_ID}:log-group:/aws/sagemaker/ProcessingJobs*"]
        )


# --- alarms ---------------------------------------------------------------------------------------


def test_every_drift_feature_has_an_alarm(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    for model in monitored(plan):
        drift = [
            a for a in of_model(plan, model, ALARM) if a.inputs.get("namespace") == alarm_defs.DATA_METRICS_NAMESPACE
        ]
        assert {a.inputs["metricName"] for a in drift} == {f"feature_baseline_drift_{f}" for f in drift_features(model)}


def test_drift_alarms_watch_the_endpoint_and_the_schedule(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    for model in monitored(plan):
        for alarm in of_model(plan, model, ALARM):
            if alarm.inputs.get("namespace") == alarm_defs.DATA_METRICS_NAMESPACE:
                assert alarm.inputs["dimensions"] == {
                    "Endpoint": f"{prefix(plan)}-{model.name}",
                    "MonitoringSchedule": f"{prefix(plan)}-{model.name}-dq",
                }
                assert alarm.inputs["threshold"] == model.monitoring.data_quality.drift_threshold


def test_the_drift_composite_covers_exactly_the_feature_alarms(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    for model in monitored(plan):
        composite = model_drift(plan, model)
        drift = {
            alarm_name(a)
            for a in of_model(plan, model, ALARM)
            if a.inputs.get("namespace") == alarm_defs.DATA_METRICS_NAMESPACE
        }
        assert composite_members(composite) == drift


def test_a_configured_feature_subset_gets_alarms_and_composite(variant_plans: dict[str, OfflinePlan]) -> None:
    plan = variant_plans["staging"]
    (model,) = monitored(plan)
    assert composite_members(model_drift(plan, model)) == {f"{prefix(plan)}-{model.name}-drift-{f}" for f in SUBSET}


def test_drift_composite_and_quality_alarms_publish_to_the_retrain_topic(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    retrain = topic_arn(plan, "retrain")
    for model in monitored(plan):
        composite = model_drift(plan, model)
        (quality,) = [
            a for a in of_model(plan, model, ALARM) if a.inputs.get("namespace") == alarm_defs.MODEL_METRICS_NAMESPACE
        ]
        assert retrain in composite.inputs["alarmActions"]
        assert retrain in quality.inputs["alarmActions"]


def test_no_other_alarm_publishes_to_the_retrain_topic(plan: OfflinePlan) -> None:
    """Only the model-drift composite and the quality alarm retrain (either engine): never the heartbeat, the
    "drift not measured" composite, a single feature, or an endpoint alarm."""
    retrain = topic_arn(plan, "retrain")
    quality = {f"{prefix(plan)}-{m.name}-quality-{m.training.metric_name}" for m in plan.config.models}
    for alarm in alarms(plan):
        starts_retraining = alarm_name(alarm).endswith("-model-drift") or alarm_name(alarm) in quality
        if not starts_retraining:
            assert retrain not in alarm.inputs.get("alarmActions", []), alarm_name(alarm)


def test_retraining_off_keeps_alarms_away_from_the_retrain_topic(variant_plans: dict[str, OfflinePlan]) -> None:
    plan = variant_plans["staging"]
    retrain = topic_arn(plan, "retrain")
    assert alarms(plan)
    assert all(retrain not in a.inputs.get("alarmActions", []) for a in alarms(plan))


def test_every_alarm_notifies_the_alerts_topic(plan: OfflinePlan) -> None:
    alerts = topic_arn(plan, "alerts")
    assert alarms(plan)
    for alarm in alarms(plan):
        assert alerts in alarm.inputs["alarmActions"], alarm_name(alarm)
        assert alarm.inputs["okActions"] == [alerts], alarm_name(alarm)


def missing_data_choice(alarm: PlannedResource) -> str:
    """What each kind of alarm must do with missing data, from its metric."""
    metric = alarm.inputs.get("metricName") or ""
    if metric == alarm_defs.RECORDS_ANALYZED:
        return "breaching"  # the heartbeat: a silent monitor is the alarm
    drift_or_quality = (alarm_defs.FEATURE_DRIFT_RATIO, alarm_defs.MODEL_QUALITY)
    if metric in drift_or_quality or alarm.inputs.get("namespace") in (
        alarm_defs.DATA_METRICS_NAMESPACE,
        alarm_defs.MODEL_METRICS_NAMESPACE,
    ):
        return "missing"  # INSUFFICIENT_DATA when the monitor breaks: never OK, never a stale verdict
    if alarm.inputs.get("metricQueries") or metric == "ModelLatency":
        return "notBreaching"  # no requests is no outage
    if alarm.inputs.get("namespace") in ("AWS/SQS", "AWS/Lambda"):
        return "notBreaching"  # responders, stream consumers: an idle queue stops publishing, no invocation no error
    if alarm.inputs.get("namespace") == "AWS/Firehose":
        return "notBreaching"  # an idle delivery stream publishes no freshness and converts nothing
    return "missing"  # the business KPI: one that stops arriving is news


def test_every_alarm_treats_missing_data_as_its_kind_needs(plan: OfflinePlan) -> None:
    for alarm in plan.of_type(ALARM):
        assert alarm.inputs.get("treatMissingData") == missing_data_choice(alarm), alarm_name(alarm)


def test_no_drift_or_quality_alarm_ignores_a_broken_monitor(mm_plan: OfflinePlan) -> None:
    """Model Monitor's alarms too: the old "ignore" kept a failing monitor's last verdict forever."""
    watched = [
        a
        for a in mm_plan.of_type(ALARM)
        if missing_data_choice(a) == "missing" and a.inputs.get("namespace") != "Acme/Retention"
    ]
    assert watched and all(a.inputs["treatMissingData"] == "missing" for a in watched)


def test_every_alarm_description_links_an_existing_runbook_entry(plan: OfflinePlan) -> None:
    """Every alarm the platform creates (monitoring's and serving's rollback alarms) links its runbook entry."""
    anchors = runbook_anchors()
    for alarm in (r for r in plan.resources if r.type in (ALARM, COMPOSITE)):
        links = re.findall(r"docs/runbook\.md#([\w-]+)", alarm.inputs["alarmDescription"])
        assert links and set(links) <= anchors, (alarm_name(alarm), links)


def test_the_runbook_has_an_entry_for_every_alarm_kind() -> None:
    kinds = {
        alarm_defs.ANCHOR_DRIFT_COMPOSITE,
        alarm_defs.ANCHOR_FEATURE_DRIFT,
        alarm_defs.ANCHOR_MODEL_QUALITY,
        alarm_defs.ANCHOR_LATENCY,
        alarm_defs.ANCHOR_ERRORS,
        alarm_defs.ANCHOR_KPI,
        alarm_defs.ANCHOR_ROLLBACK_ERRORS,
        alarm_defs.ANCHOR_ROLLBACK_LATENCY,
        alarm_defs.ANCHOR_MONITOR_HEARTBEAT,
        alarm_defs.ANCHOR_DRIFT_UNMEASURED,
    }
    assert kinds <= runbook_anchors()


def test_quality_alarm_uses_the_training_metric_and_threshold(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    for model in monitored(plan):
        (quality,) = [
            a for a in of_model(plan, model, ALARM) if a.inputs.get("namespace") == alarm_defs.MODEL_METRICS_NAMESPACE
        ]
        expected = model.monitoring.model_quality.metric_threshold
        assert quality.inputs["metricName"] == model.training.metric_name
        assert quality.inputs["threshold"] == (expected if expected is not None else model.training.metric_threshold)
        assert quality.inputs["comparisonOperator"] == "LessThanThreshold"


def test_latency_and_error_alarms_watch_every_production_variant(plan: OfflinePlan) -> None:
    for model in served(plan):
        assert model.serving is not None
        variants = [v.name for v in model.serving.variants] or [SERVERLESS_VARIANT]
        latency = {
            a.inputs["dimensions"]["VariantName"]: a
            for a in of_model(plan, model, ALARM)
            if a.inputs.get("metricName") == "ModelLatency"
        }
        errors = [a for a in of_model(plan, model, ALARM) if a.inputs.get("metricQueries")]
        assert sorted(latency) == sorted(variants)
        assert len(errors) == len(variants)
        for alarm in latency.values():
            assert alarm.inputs["threshold"] == model.serving.rollout.latency_p99_ms_threshold * 1000  # microseconds
            assert alarm.inputs["extendedStatistic"] == "p99"


def own_endpoint_alarm_thresholds(model: dict[str, Any]) -> None:
    model["monitoring"]["endpointAlarms"] = {"latencyP99MsThreshold": 900, "errorRatePercentThreshold": 2.5}


def test_sustained_alarms_take_their_own_thresholds_and_rollback_alarms_keep_the_rollouts() -> None:
    plan = run_program("prod", overrides=models_with("prod", own_endpoint_alarm_thresholds))
    for model in served(plan):
        assert model.serving is not None
        sustained = of_model(plan, model, ALARM)
        latency = [a for a in sustained if a.inputs.get("metricName") == "ModelLatency"]
        errors = [a for a in sustained if a.inputs.get("metricQueries")]
        assert latency and {a.inputs["threshold"] for a in latency} == {900_000}
        assert errors and {a.inputs["threshold"] for a in errors} == {2.5}
        rollback = [
            r for r in plan.of_type(ALARM) if "-rollback-" in alarm_name(r) and f"-{model.name}-" in alarm_name(r)
        ]
        assert sorted(r.inputs["threshold"] for r in rollback) == sorted(
            [model.serving.rollout.error_rate_percent_threshold, model.serving.rollout.latency_p99_ms_threshold * 1000]
        )


def test_kpi_alarm_follows_config(plan: OfflinePlan) -> None:
    for model in served(plan):
        kpi = model.monitoring.business_kpi
        found = [
            a for a in of_model(plan, model, ALARM) if alarm_name(a).startswith(f"{prefix(plan)}-{model.name}-kpi-")
        ]
        if kpi is None:
            assert found == []
            continue
        (alarm,) = found
        assert {k: alarm.inputs[k] for k in ("namespace", "metricName", "statistic", "threshold")} == {
            "namespace": kpi.namespace,
            "metricName": kpi.metric_name,
            "statistic": kpi.statistic,
            "threshold": kpi.threshold,
        }
        assert alarm.inputs["dimensions"] == kpi.dimensions
        assert (alarm.inputs["period"], alarm.inputs["evaluationPeriods"]) == (
            kpi.period_seconds,
            kpi.evaluation_periods,
        )
        expected = "LessThanThreshold" if kpi.comparison == "below" else "GreaterThanThreshold"
        assert alarm.inputs["comparisonOperator"] == expected


def test_the_kpi_test_is_not_vacuous(stack_plans: dict[str, OfflinePlan]) -> None:
    plan = stack_plans["prod"]
    (model,) = served(plan)
    assert model.monitoring.business_kpi is not None
    assert [a for a in of_model(plan, model, ALARM) if alarm_name(a).startswith(f"{prefix(plan)}-{model.name}-kpi-")]


def test_each_model_has_a_dashboard_showing_its_alarms(plan: OfflinePlan) -> None:
    for model in served(plan):
        (dashboard,) = of_model(plan, model, DASHBOARD)
        body = json.loads(dashboard.inputs["dashboardBody"])
        (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
        assert len(alarm_widget["properties"]["alarms"]) == len(
            [a for a in alarms(plan) if a.name.startswith(f"{prefix(plan)}-{model.name}-monitoring-")]
        )


# --- notifications ----------------------------------------------------------------------------


def test_both_topics_are_encrypted_with_the_platform_key(plan: OfflinePlan) -> None:
    topics = {t.inputs["name"]: t for t in plan.of_type(TOPIC) if t.component == NOTIFICATIONS}
    assert sorted(topics) == [f"{prefix(plan)}-alerts", f"{prefix(plan)}-retrain"]
    assert all(t.inputs["kmsMasterKeyId"] == plan.outputs["kmsKeyArn"] for t in topics.values())


def test_only_cloudwatch_alarms_and_the_account_may_publish(plan: OfflinePlan) -> None:
    policies = [p for p in plan.of_type(TOPIC_POLICY) if p.component == NOTIFICATIONS]
    assert len(policies) == 2
    for policy in policies:
        allows = [s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Effect"] == "Allow"]
        assert sorted(json.dumps(s["Principal"], sort_keys=True) for s in allows) == [
            json.dumps({"AWS": f"arn:aws:iam::{MOCK_ACCOUNT_ID}:root"}),
            json.dumps({"Service": "cloudwatch.amazonaws.com"}),
        ]
        (cloudwatch,) = [s for s in allows if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
        assert cloudwatch["Condition"]["StringEquals"] == {"aws:SourceAccount": MOCK_ACCOUNT_ID}


def test_email_subscriptions_follow_config(plan: OfflinePlan) -> None:
    subscriptions = [s for s in plan.of_type(SUBSCRIPTION) if s.component == NOTIFICATIONS]
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == sorted(plan.config.alerts.email_addresses)
    assert all(
        s.inputs["protocol"] == "email" and s.inputs["topic"] == topic_arn(plan, "alerts") for s in subscriptions
    )


def test_the_key_policy_lets_cloudwatch_use_the_key_for_this_account(plan: OfflinePlan) -> None:
    (key,) = [k for k in plan.of_type("aws:kms/key:Key")]
    statements = json.loads(key.inputs["policy"])["Statement"]
    (cloudwatch,) = [s for s in statements if "cloudwatch.amazonaws.com" in json.dumps(s.get("Principal"))]
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= set(cloudwatch["Action"])
    assert cloudwatch["Condition"]["StringEquals"]["aws:SourceAccount"] == MOCK_ACCOUNT_ID


# --- direct construction ----------------------------------------------------------------------------


def test_model_quality_without_the_native_provider_is_refused() -> None:
    values = {
        **read_stack_values("staging"),
        **{f"mlops:{k}": json.dumps(v) for k, v in models_with("staging", model_monitor_engine).items()},
    }
    config = parse_stack_config(values, "staging")
    with pytest.raises(ValueError) as error:
        build_monitoring_directly(config)
    assert str(error.value) == (
        "model 'customer-churn': monitoring.modelQuality.enabled=true needs the aws-native provider "
        "(ModelMonitoringArgs.native_provider)"
    )


def test_s3_uris_are_split_and_refused_exactly() -> None:
    assert monitoring.split_s3_uri("s3://bucket/a/b.json") == ("bucket", "a/b.json")
    with pytest.raises(ValueError) as error:
        monitoring.split_s3_uri("https://bucket/a")
    assert str(error.value) == "not an S3 URI: 'https://bucket/a'"


# --- record preprocessor --------------------------------------------------------------------------


def preprocessor_object(plan: OfflinePlan, model: ModelSettings) -> PlannedResource:
    (obj,) = of_model(plan, model, BUCKET_OBJECT)
    return obj


def test_the_model_monitor_tests_are_not_vacuous(mm_plans: dict[str, OfflinePlan]) -> None:
    for plan in mm_plans.values():
        (model,) = monitored(plan)
        assert of_model(plan, model, DQ) and of_model(plan, model, MQ) and of_model(plan, model, BUCKET_OBJECT)


def test_data_quality_runs_the_uploaded_record_preprocessor(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    for model in monitored(plan):
        obj = preprocessor_object(plan, model)
        (dq,) = of_model(plan, model, DQ)
        uri = dq.inputs["dataQualityAppSpecification"]["recordPreprocessorSourceUri"]
        assert uri == f"s3://{obj.inputs['bucket']}/{obj.inputs['key']}"
        assert obj.urn in dq.dependencies


def test_the_record_preprocessor_is_the_models_generated_script(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    bucket = plan.outputs["lakeBuckets"]["monitoring"]
    for model in monitored(plan):
        obj = preprocessor_object(plan, model)
        script = build_record_preprocessor(get_spec(model.feature_spec))
        assert base64.b64decode(obj.inputs["contentBase64"]) == script
        assert obj.inputs["bucket"] == bucket
        assert obj.inputs["key"] == monitoring.record_preprocessor_key(model.name, script)


def test_the_record_preprocessor_is_kms_encrypted_with_the_platform_key(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    for model in monitored(plan):
        obj = preprocessor_object(plan, model)
        assert obj.inputs["serverSideEncryption"] == "aws:kms"
        assert obj.inputs["kmsKeyId"] == plan.outputs["kmsKeyArn"]


def test_the_monitoring_role_reads_exactly_the_record_preprocessor(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    bucket_arn = f"arn:aws:s3:::{plan.outputs['lakeBuckets']['monitoring']}"
    for model in monitored(plan):
        obj = preprocessor_object(plan, model)
        (policy,) = of_model(plan, model, ROLE_POLICY)
        statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
        read = statements["RecordPreprocessorRead"]
        assert (read["Effect"], read["Action"], read["Resource"]) == (
            "Allow",
            ["s3:GetObject"],
            [f"{bucket_arn}/{obj.inputs['key']}"],
        )
        assert "kms:Decrypt" in statements["PlatformKeyUse"]["Action"]
        assert plan.outputs["kmsKeyArn"] in statements["PlatformKeyUse"]["Resource"]


def test_the_record_preprocessor_key_changes_exactly_with_the_script() -> None:
    first = monitoring.record_preprocessor_key("churn", b"one")
    assert first == monitoring.record_preprocessor_key("churn", b"one")
    assert first != monitoring.record_preprocessor_key("churn", b"two")
    assert re.fullmatch(r"churn/record-preprocessor/[0-9a-f]{16}/record_preprocessor\.py", first)


@pytest.mark.parametrize("engine", ["platform", "model-monitor"])
def test_the_aws_native_provider_exists_exactly_when_model_quality_is_monitored(
    engine: str, stack_plans: dict[str, OfflinePlan], mm_plans: dict[str, OfflinePlan]
) -> None:
    for plan in (stack_plans if engine == "platform" else mm_plans).values():
        providers = [r for r in plan.resources if r.type == "pulumi:providers:aws-native"]
        quality = plan.of_type("aws-native:sagemaker:ModelQualityJobDefinition")
        assert len(providers) == (1 if quality else 0)
        assert bool(quality) == (engine == "model-monitor")


# --- Model Monitor job definitions: named by a digest of their inputs, replaced create-first ------------


def test_job_definitions_are_named_by_a_digest_and_schedules_keep_their_names(mm_plan: OfflinePlan) -> None:
    plan = mm_plan
    for model in monitored(plan):
        (dq,) = of_model(plan, model, DQ)
        (mq,) = of_model(plan, model, MQ)
        head = f"{prefix(plan)}-{model.name}"
        assert re.fullmatch(rf"{head}-dq-[0-9a-f]{{8}}", dq.inputs["name"])
        assert re.fullmatch(rf"{head}-mq-[0-9a-f]{{8}}", mq.inputs["jobDefinitionName"])
        assert sorted(s.inputs["name"] for s in of_model(plan, model, SCHEDULE)) == [f"{head}-dq", f"{head}-mq"]


def test_a_new_baseline_is_a_new_definition_under_the_same_schedule(
    mm_plans: dict[str, OfflinePlan], variant_plans: dict[str, OfflinePlan]
) -> None:
    """Version 7's baselines (the pinned variant) give the data-quality definition a new name; the schedule,
    which the alarms name, stays."""
    before, after = mm_plans["staging"], variant_plans["staging"]
    (model,) = monitored(before)
    ((dq_before,), (dq_after,)) = of_model(before, model, DQ), of_model(after, model, DQ)
    assert dq_before.inputs["name"] != dq_after.inputs["name"]
    schedules = [
        {
            s.inputs["name"]
            for s in of_model(p, model, SCHEDULE)
            if s.inputs["monitoringScheduleConfig"]["monitoringType"] == "DataQuality"
        }
        for p in (before, after)
    ]
    assert schedules[0] == schedules[1] == {f"{prefix(before)}-{model.name}-dq"}


def test_the_same_inputs_give_the_same_definition_names(mm_plans: dict[str, OfflinePlan]) -> None:
    again = run_program("staging", overrides=models_with("staging", model_monitor_engine))
    (model,) = monitored(again)
    for token, key in ((DQ, "name"), (MQ, "jobDefinitionName")):
        ((first,), (second,)) = of_model(mm_plans["staging"], model, token), of_model(again, model, token)
        assert first.inputs[key] == second.inputs[key]


def test_definitions_are_created_before_the_old_ones_are_deleted(mm_plan: OfflinePlan) -> None:
    for model in monitored(mm_plan):
        for definition in of_model(mm_plan, model, DQ) + of_model(mm_plan, model, MQ):
            assert definition.delete_before_replace is False, definition.name


def test_model_monitor_alarms_span_their_schedules_period(mm_plan: OfflinePlan) -> None:
    """Hourly data quality: hourly drift alarms over two runs; daily model quality: daily periods, two of them."""
    for model in monitored(mm_plan):
        for alarm in of_model(mm_plan, model, ALARM):
            if alarm.inputs.get("namespace") == alarm_defs.DATA_METRICS_NAMESPACE:
                assert (alarm.inputs["period"], alarm.inputs["evaluationPeriods"]) == (3600, 2)
            if alarm.inputs.get("namespace") == alarm_defs.MODEL_METRICS_NAMESPACE:
                assert (alarm.inputs["period"], alarm.inputs["evaluationPeriods"]) == (86400, 2)
                assert alarm.inputs["insufficientDataActions"] == [topic_arn(mm_plan, "alerts")]


def test_the_model_monitor_engine_passes_the_policy_pack_and_the_aws_contract(mm_plan: OfflinePlan) -> None:
    """Either engine satisfies the guardrails (prod-endpoint-monitoring-schedule included) and AWS's API models."""
    assert [r.policy for r in check_plan(mm_plan) if not r.passed] == []
    assert [str(v) for v in check_contract(mm_plan)] == []
