"""engine=platform under Pulumi's mocks, for every stack: the monitoring pipeline, its role, its schedule, its
alarms, the reports table, the responder's wiring and what a broken monitor does to the alarms."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from infra import alarms as alarm_defs
from infra.config import ModelSettings, parse_stack_config
from infra.model_versions import DeployableVersion, OfflineVersions
from infra.monitoring.reports import REPORT_COLUMNS
from infra.responders import RETRAIN
from mlops.features import get_spec
from tests.support.monitoring import (
    SCHEDULER_SCHEDULE,
    alarm_name,
    build_monitoring_directly,
    cli,
    monitoring_pipeline,
    of_model,
    platform_monitored,
    policy_of,
    role_named,
    step_arguments,
)
from tests.support.plans import prefix, topic_arn
from tests.support.types import (
    ALARM,
    BUCKET_OBJECT,
    COMPOSITE,
    CRAWLER,
    DASHBOARD,
    DQ,
    FUNCTION,
    GLUE_TABLE,
    MQ,
    PIPELINE,
    RESPONDERS,
    SCHEDULE,
    TRAINING,
)
from verify.aws_contract import check_contract
from verify.mock_engine import (
    MOCK_ACCOUNT_ID,
    OfflinePlan,
    PlannedResource,
    read_stack_values,
    run_program,
)

PLATFORM = alarm_defs.PLATFORM_METRICS_NAMESPACE


def served_baseline(plan: OfflinePlan, model: ModelSettings) -> str:
    """The drift baseline of the version the model's endpoint serves (the offline registry's answer)."""
    assert model.serving is not None
    version = OfflineVersions(region=plan.config.region, account_id=MOCK_ACCOUNT_ID).resolve(
        f"{prefix(plan)}-{model.name}", model.serving.variants[0].model_version
    )
    assert version is not None and version.data_statistics_uri is not None
    return version.data_statistics_uri


def schedule_of(plan: OfflinePlan, model: ModelSettings) -> PlannedResource:
    (schedule,) = of_model(plan, model, SCHEDULER_SCHEDULE)
    return schedule


def alarms_by_metric(plan: OfflinePlan, model: ModelSettings, metric: str) -> list[PlannedResource]:
    return [
        a
        for a in of_model(plan, model, ALARM)
        if a.inputs.get("namespace") == PLATFORM and a.inputs["metricName"] == metric
    ]


def composite(plan: OfflinePlan, model: ModelSettings, suffix: str) -> PlannedResource:
    (found,) = [c for c in of_model(plan, model, COMPOSITE) if alarm_name(c) == f"{prefix(plan)}-{model.name}-{suffix}"]
    return found


def code_prefix(plan: OfflinePlan, model: ModelSettings) -> str:
    """``s3://<artifacts>/code/<model>/<hash>``: where the training pipeline published this model's code."""
    keys = {o.inputs["key"].rsplit("/", 1)[0] for o in plan.of_type(BUCKET_OBJECT) if o.component == TRAINING
            and o.inputs["key"].startswith(f"code/{model.name}/") and "/mlops/" not in o.inputs["key"]}  # fmt: skip
    (key,) = keys
    return f"s3://{plan.outputs['lakeBuckets']['artifacts']}/{key}"


# --- the pipeline -----------------------------------------------------------------------------------


def test_some_stack_runs_the_platform_engine(stack_plans: dict[str, OfflinePlan]) -> None:
    """Not vacuous: staging and prod watch their endpoint with the platform engine."""
    assert [s for s, plan in stack_plans.items() if platform_monitored(plan)] == ["prod", "staging"]


def test_every_watched_model_has_one_monitoring_pipeline_and_no_model_monitor(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        pipeline = monitoring_pipeline(plan, model)
        assert pipeline.inputs["pipelineName"] == f"{prefix(plan)}-{model.name}-monitoring"
        assert of_model(plan, model, DQ) == of_model(plan, model, MQ) == of_model(plan, model, SCHEDULE) == []
    if not any(m.monitoring.engine == "model-monitor" for m in plan.config.models):
        assert [r for r in plan.resources if r.type == "pulumi:providers:aws-native"] == []


def test_the_job_watches_the_served_versions_baseline_on_the_endpoints_capture(plan: OfflinePlan) -> None:
    monitoring_bucket = plan.outputs["lakeBuckets"]["monitoring"]
    for model in platform_monitored(plan):
        args = cli(monitoring_pipeline(plan, model))
        assert args["--model"] == [model.feature_spec]
        assert args["--reference"] == [served_baseline(plan, model)]
        assert args["--capture"] == [f"s3://{monitoring_bucket}/{model.name}/data-capture/"]
        assert args["--out"] == [f"s3://{monitoring_bucket}/drift-reports/"]
        assert args["--dimension"] == [f"Model={model.name}", f"Endpoint={plan.outputs['endpoints'][model.name]}"]
        assert args["--metrics-namespace"] == [PLATFORM]
        assert args["--window-end"] == [{"Get": "Execution.StartDateTime"}]


def test_the_job_takes_the_models_monitoring_settings(plan: OfflinePlan) -> None:
    monitoring_bucket = plan.outputs["lakeBuckets"]["monitoring"]
    for model in platform_monitored(plan):
        settings, pipeline = model.monitoring, monitoring_pipeline(plan, model)
        args, step = cli(pipeline), step_arguments(pipeline)
        assert args["--window-hours"] == [str(settings.platform.window_hours)]
        assert json.loads(args["--thresholds"][0]) == {
            t.feature: t.threshold for t in settings.platform.drift_thresholds
        }
        assert args.get("--segments", [""]) == [",".join(settings.platform.segments)]
        assert args["--probability-threshold"] == [repr(settings.model_quality.probability_threshold)]
        labels = f"s3://{monitoring_bucket}/{model.name}/{settings.model_quality.ground_truth_prefix}"
        assert args.get("--ground-truth") == ([labels] if settings.model_quality.enabled else None)
        cluster = step["ProcessingResources"]["ClusterConfig"]
        assert (cluster["InstanceType"], cluster["VolumeKmsKeyId"]) == (
            settings.platform.instance_type,
            plan.outputs["kmsKeyArn"],
        )
        assert step["StoppingCondition"] == {"MaxRuntimeInSeconds": settings.platform.max_runtime_seconds}


def test_the_job_runs_the_training_pipelines_published_code(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        code = code_prefix(plan, model)
        inputs = {
            i["InputName"]: i["S3Input"]["S3Uri"]
            for i in step_arguments(monitoring_pipeline(plan, model))["ProcessingInputs"]
        }
        assert inputs == {"code": f"{code}/monitor.py", "code-lib": f"{code}/mlops/"}


def test_the_pipeline_and_its_job_run_as_the_monitoring_role(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        pipeline = monitoring_pipeline(plan, model)
        role = role_named(plan, pipeline.inputs["roleArn"])
        assert step_arguments(pipeline)["RoleArn"] == pipeline.inputs["roleArn"]
        assert role.inputs["name"] == f"{prefix(plan)}-{model.name}-monitoring-job"
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust == [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["sagemaker.amazonaws.com"]},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID}},
            }
        ]


# --- the role: exactly what the job needs ---------------------------------------------------------


def job_policy(plan: OfflinePlan, model: ModelSettings) -> dict[str, dict[str, Any]]:
    return policy_of(plan, role_named(plan, monitoring_pipeline(plan, model).inputs["roleArn"]))


def test_the_role_reads_only_the_capture_baseline_labels_and_code(plan: OfflinePlan) -> None:
    monitoring_arn = f"arn:aws:s3:::{plan.outputs['lakeBuckets']['monitoring']}"
    for model in platform_monitored(plan):
        policy = job_policy(plan, model)
        reads = {sid: s["Resource"] for sid, s in policy.items() if "s3:GetObject" in s["Action"]}
        code = code_prefix(plan, model).replace("s3://", "arn:aws:s3:::")
        expected = {
            "CaptureRead": [f"{monitoring_arn}/{model.name}/data-capture/*"],
            "BaselineRead": [served_baseline(plan, model).replace("s3://", "arn:aws:s3:::")],
            "CodeRead": [f"{code}/*"],
        }
        if model.monitoring.model_quality.enabled:
            expected["GroundTruthRead"] = [
                f"{monitoring_arn}/{model.name}/{model.monitoring.model_quality.ground_truth_prefix}*"
            ]
        assert reads == expected
        lists = {
            sid: s["Condition"]["StringLike"]["s3:prefix"][0]
            for sid, s in policy.items()
            if s["Action"] == ["s3:ListBucket"]
        }
        assert lists == {
            "CaptureList": f"{model.name}/data-capture/",
            "CodeList": code.split(":::", 1)[1].split("/", 1)[1] + "/",
            **({"GroundTruthList": f"{model.name}/{model.monitoring.model_quality.ground_truth_prefix}"}
               if model.monitoring.model_quality.enabled else {}),
        }  # fmt: skip


def test_the_role_adds_reports_to_the_models_partition_only_and_deletes_nothing(plan: OfflinePlan) -> None:
    monitoring_arn = f"arn:aws:s3:::{plan.outputs['lakeBuckets']['monitoring']}"
    for model in platform_monitored(plan):
        policy = job_policy(plan, model)
        writes = [
            s
            for s in policy.values()
            if any(
                a.startswith("s3:") and a not in ("s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket")
                for a in s["Action"]
            )
        ]
        assert [(w["Action"], w["Resource"]) for w in writes] == [
            (["s3:AbortMultipartUpload", "s3:PutObject"], [f"{monitoring_arn}/drift-reports/model={model.name}/*"])
        ]  # fmt: skip


def test_the_role_publishes_only_to_the_platform_and_processing_job_namespaces(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        publish = [s for s in job_policy(plan, model).values() if "cloudwatch:PutMetricData" in s["Action"]]
        # PutMetricData has no resource-level permission: the cloudwatch:namespace condition scopes it.
        assert sorted((s["Resource"], s["Condition"]["StringEquals"]["cloudwatch:namespace"]) for s in publish) == [
            (["*"], ["/aws/sagemaker/ProcessingJobs"]),
            (["*"], [PLATFORM]),
        ]
        assert all(s["Action"] == ["cloudwatch:PutMetricData"] for s in publish)


def test_the_role_starts_only_pipeline_jobs_and_passes_only_itself(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        policy = job_policy(plan, model)
        role_arn = monitoring_pipeline(plan, model).inputs["roleArn"]
        assert policy["PassOwnRole"]["Resource"] == [role_arn]
        assert policy["PassOwnRole"]["Condition"] == {
            "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
        }
        sagemaker = {a for s in policy.values() for a in s["Action"] if a.startswith("sagemaker:")}
        assert sagemaker == {
            "sagemaker:AddTags",
            "sagemaker:CreateProcessingJob",
            "sagemaker:DescribeProcessingJob",
            "sagemaker:StopProcessingJob",
        }
        assert policy["ProcessingJobs"]["Resource"] == [
            f"arn:aws:sagemaker:{plan.config.region}:{MOCK_ACCOUNT_ID}:processing-job/pipelines-*"
        ]


def test_the_role_uses_the_platform_key(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        policy = job_policy(plan, model)
        assert (
            policy["PlatformKeyUse"]["Resource"]
            == policy["PlatformKeyGrants"]["Resource"]
            == [plan.outputs["kmsKeyArn"]]
        )
        assert policy["PlatformKeyGrants"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_the_roles_wildcards_are_only_where_iam_offers_no_resource(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        star = sorted(sid for sid, s in job_policy(plan, model).items() if "*" in s["Resource"])
        assert star == ["ImageAuth", "ProcessingJobMetrics", "PublishMonitorMetrics"]


# --- the schedule --------------------------------------------------------------------------------


def test_the_schedule_starts_the_pipeline_at_the_configured_cadence(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        schedule, pipeline = schedule_of(plan, model), monitoring_pipeline(plan, model)
        assert schedule.inputs["name"] == f"{prefix(plan)}-{model.name}-monitoring"
        assert schedule.inputs["scheduleExpression"] == model.monitoring.platform.schedule
        assert schedule.inputs["state"] == "ENABLED"
        assert schedule.inputs["flexibleTimeWindow"] == {"mode": "OFF"}
        # The universal target: a templated SageMaker target without pipeline parameters is refused by CreateSchedule.
        assert schedule.inputs["target"]["arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"
        request = json.loads(schedule.inputs["target"]["input"])
        assert request == {
            "PipelineName": pipeline.inputs["pipelineName"],
        }


def test_the_schedules_role_may_only_start_this_pipeline(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        schedule = schedule_of(plan, model)
        role = role_named(plan, schedule.inputs["target"]["roleArn"])
        assert policy_of(plan, role) == {
            "StartMonitoringPipeline": {
                "Sid": "StartMonitoringPipeline",
                "Effect": "Allow",
                "Action": ["sagemaker:StartPipelineExecution"],
                "Resource": [monitoring_pipeline(plan, model).state["arn"]],
            }
        }
        (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Service": ["scheduler.amazonaws.com"]}
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": MOCK_ACCOUNT_ID}}


def test_a_start_is_retried_but_never_later_than_the_next_run(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        retry = schedule_of(plan, model).inputs["target"]["retryPolicy"]
        assert 0 < retry["maximumRetryAttempts"] <= 185
        assert 60 <= retry["maximumEventAgeInSeconds"] <= model.monitoring.platform.period_seconds


# --- alarms ---------------------------------------------------------------------------------------


def test_the_heartbeat_alarm_breaches_when_the_monitor_stops_publishing(plan: OfflinePlan) -> None:
    alerts = topic_arn(plan, "alerts")
    for model in platform_monitored(plan):
        (heartbeat,) = alarms_by_metric(plan, model, alarm_defs.RECORDS_ANALYZED)
        assert alarm_name(heartbeat) == f"{prefix(plan)}-{model.name}-monitor-not-reporting"
        assert heartbeat.inputs["treatMissingData"] == "breaching"
        assert (
            heartbeat.inputs["statistic"],
            heartbeat.inputs["comparisonOperator"],
            heartbeat.inputs["threshold"],
        ) == ("Sum", "LessThanThreshold", 1.0)
        assert (
            heartbeat.inputs["evaluationPeriods"]
            == heartbeat.inputs["datapointsToAlarm"]
            == alarm_defs.MONITOR_HEARTBEAT_PERIODS
            > 1
        )
        assert heartbeat.inputs["period"] == model.monitoring.platform.period_seconds
        assert heartbeat.inputs["dimensions"] == {
            "Model": model.name,
            "Endpoint": plan.outputs["endpoints"][model.name],
        }
        assert heartbeat.inputs["alarmActions"] == [alerts]


def test_each_drift_feature_alarms_when_its_ratio_reaches_one(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        drift = alarms_by_metric(plan, model, alarm_defs.FEATURE_DRIFT_RATIO)
        features = model.monitoring.data_quality.drift_alarm_features or get_spec(model.feature_spec).feature_names
        assert sorted(a.inputs["dimensions"]["Feature"] for a in drift) == sorted(features)
        for alarm in drift:
            assert (alarm.inputs["comparisonOperator"], alarm.inputs["threshold"]) == (
                "GreaterThanOrEqualToThreshold",
                1.0,
            )
            # A broken monitor turns the alarm INSUFFICIENT_DATA: never OK, never the last verdict kept.
            assert alarm.inputs["treatMissingData"] == "missing"
            assert alarm.inputs["period"] == model.monitoring.platform.period_seconds
            assert alarm.inputs["evaluationPeriods"] > alarm.inputs["datapointsToAlarm"] == 1


def test_the_drift_composites_cover_exactly_the_feature_alarms(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        features = {alarm_name(a) for a in alarms_by_metric(plan, model, alarm_defs.FEATURE_DRIFT_RATIO)}
        drift = composite(plan, model, "model-drift")
        unmeasured = composite(plan, model, "drift-unmeasured")
        assert set(re.findall(r'ALARM\("([^"]+)"\)', drift.inputs["alarmRule"])) == features
        assert set(re.findall(r'INSUFFICIENT_DATA\("([^"]+)"\)', unmeasured.inputs["alarmRule"])) == features
        assert "ALARM(" not in unmeasured.inputs["alarmRule"].replace("INSUFFICIENT_DATA(", "")


def test_the_quality_alarm_watches_the_training_metric_and_says_when_labels_stop(plan: OfflinePlan) -> None:
    alerts = topic_arn(plan, "alerts")
    for model in platform_monitored(plan):
        (quality,) = alarms_by_metric(plan, model, alarm_defs.MODEL_QUALITY)
        threshold = model.monitoring.model_quality.metric_threshold
        assert quality.inputs["dimensions"]["Metric"] == model.training.metric_name
        assert quality.inputs["threshold"] == (threshold if threshold is not None else model.training.metric_threshold)
        assert quality.inputs["comparisonOperator"] == "LessThanThreshold"
        assert quality.inputs["treatMissingData"] == "missing"
        assert quality.inputs["insufficientDataActions"] == [alerts]
        period = quality.inputs["period"]
        assert period * quality.inputs["evaluationPeriods"] >= 86400  # a day of runs: labels arrive late


def test_drift_and_quality_retrain_and_the_monitors_own_alarms_do_not(plan: OfflinePlan) -> None:
    retrain = topic_arn(plan, "retrain")
    for model in platform_monitored(plan):
        starts = {
            alarm_name(a)
            for a in of_model(plan, model, ALARM) + of_model(plan, model, COMPOSITE)
            if retrain in a.inputs.get("alarmActions", [])
        }
        expected = {
            f"{prefix(plan)}-{model.name}-model-drift",
            f"{prefix(plan)}-{model.name}-quality-{model.training.metric_name}",
        }
        assert starts == (expected if model.monitoring.retraining.enabled else set())


def test_the_retrain_responder_knows_drift_and_quality_but_not_the_heartbeat(plan: OfflinePlan) -> None:
    (retrain,) = [
        f
        for f in plan.of_type(FUNCTION)
        if f.component == RESPONDERS and f.inputs["environment"]["variables"]["POWERTOOLS_SERVICE_NAME"] == RETRAIN
    ]
    targets = json.loads(retrain.inputs["environment"]["variables"]["RETRAIN_TARGETS"])
    for model in platform_monitored(plan):
        head = f"{prefix(plan)}-{model.name}"
        assert f"{head}-monitor-not-reporting" not in targets and f"{head}-drift-unmeasured" not in targets
        if model.monitoring.retraining.enabled:
            assert {f"{head}-model-drift", f"{head}-quality-{model.training.metric_name}"} <= set(targets)


# --- reports table and dashboard ------------------------------------------------------------------


def test_the_reports_are_a_glue_table_with_partition_projection(plan: OfflinePlan) -> None:
    tables = [t for t in plan.of_type(GLUE_TABLE) if t.inputs["name"] == "drift_reports"]
    models = sorted(m.name for m in platform_monitored(plan))
    if not models:
        assert tables == []
        return
    (table,) = tables
    bucket = plan.outputs["lakeBuckets"]["monitoring"]
    assert table.inputs["databaseName"] == plan.outputs["glueDatabases"]["monitoring"]
    params = table.inputs["parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.model.values"] == ",".join(models)
    assert (params["projection.date.type"], params["projection.date.format"]) == ("date", "yyyy-MM-dd")
    assert params["storage.location.template"] == f"s3://{bucket}/drift-reports/model=${{model}}/date=${{date}}/"
    descriptor = table.inputs["storageDescriptor"]
    assert descriptor["location"] == f"s3://{bucket}/drift-reports/"
    assert descriptor["serDeInfo"]["serializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert [c["name"] for c in descriptor["columns"]] == [c for c, _, _ in REPORT_COLUMNS]
    assert [k["name"] for k in table.inputs["partitionKeys"]] == ["model", "date"]
    types = {c["name"]: c["type"] for c in descriptor["columns"]}
    assert types["records"] == types["malformed"] == "int"
    assert types["drifted"] == "array<string>"
    assert types["features"] == "map<string,struct<score:double,threshold:double,drifted:boolean,method:string>>"


def test_the_monitoring_zone_crawler_leaves_the_reports_to_their_table(plan: OfflinePlan) -> None:
    reporting = bool(platform_monitored(plan))
    for crawler in plan.of_type(CRAWLER):
        (target,) = crawler.inputs["s3Targets"]
        excluded = "drift-reports/**" in (target.get("exclusions") or [])
        assert excluded == (reporting and target["path"] == f"s3://{plan.outputs['lakeBuckets']['monitoring']}/")


def test_the_dashboard_shows_the_monitors_metrics(plan: OfflinePlan) -> None:
    for model in platform_monitored(plan):
        (dashboard,) = of_model(plan, model, DASHBOARD)
        body = json.loads(dashboard.inputs["dashboardBody"])
        shown = {
            m[1]
            for w in body["widgets"]
            if w["type"] == "metric"
            for m in w["properties"]["metrics"]
            if isinstance(m[0], str) and m[0] == PLATFORM
        }
        assert {alarm_defs.RECORDS_ANALYZED, alarm_defs.MALFORMED_RECORDS, alarm_defs.FEATURE_DRIFT_RATIO,
                alarm_defs.FEATURE_DRIFT_SCORE, alarm_defs.DRIFTED_FEATURES, alarm_defs.POSITIVE_RATE,
                alarm_defs.GROUND_TRUTH_MATCHED, alarm_defs.MODEL_QUALITY} <= shown  # fmt: skip
        searches = [
            m[0]["expression"]
            for w in body["widgets"]
            for m in w["properties"].get("metrics", [])
            if isinstance(m[0], dict)
        ]
        assert len(searches) == (2 if model.monitoring.platform.segments else 0)
        assert all("Segment,SegmentValue" in s and f'Model="{model.name}"' in s for s in searches)


# --- what the AWS contract check sees -------------------------------------------------------------


def test_the_contract_check_reads_the_schedule(stack_plans: dict[str, OfflinePlan]) -> None:
    """The new type is mapped, not skipped: a retry age AWS refuses (below 60 s) is reported."""
    plan = stack_plans["prod"]
    (schedule,) = plan.of_type(SCHEDULER_SCHEDULE)
    target = {**schedule.inputs["target"], "retryPolicy": {"maximumRetryAttempts": 3, "maximumEventAgeInSeconds": 30}}
    broken = dataclasses.replace(schedule, inputs={**schedule.inputs, "target": target})
    violations = check_contract(dataclasses.replace(plan, resources=(broken,)))
    assert [v.field for v in violations] == ["Scheduler CreateSchedule.Target.RetryPolicy.MaximumEventAgeInSeconds"]


# --- direct construction --------------------------------------------------------------------------


def test_the_platform_engine_without_the_code_bundle_is_refused() -> None:
    config = parse_stack_config(read_stack_values("staging"), "staging")
    with pytest.raises(ValueError) as error:
        build_monitoring_directly(config)
    assert str(error.value) == (
        "model 'customer-churn': monitoring.engine=platform needs the training pipeline's code bundle "
        "(ModelMonitoringArgs.code_uri)"
    )


@dataclasses.dataclass(frozen=True)
class WithoutBaselines:
    """The offline registry, but no version carries drift baselines (trained before the pipeline made them)."""

    inner: OfflineVersions

    def resolve(self, group: str, selector: str | None) -> DeployableVersion | None:
        found = self.inner.resolve(group, selector)
        return (
            None if found is None else dataclasses.replace(found, data_statistics_uri=None, data_constraints_uri=None)
        )


def test_a_version_without_a_baseline_gets_no_monitor_but_keeps_its_endpoint_alarms() -> None:
    plan = run_program(
        "staging", versions=WithoutBaselines(OfflineVersions(region="eu-west-1", account_id=MOCK_ACCOUNT_ID))
    )
    (model,) = [m for m in plan.config.models if m.serving is not None]
    assert (
        of_model(plan, model, PIPELINE)
        == of_model(plan, model, SCHEDULER_SCHEDULE)
        == of_model(plan, model, COMPOSITE)
        == []
    )
    names = {alarm_name(a) for a in of_model(plan, model, ALARM)}
    assert not any(n.endswith(("-monitor-not-reporting", "-quality-auc")) or "-drift-" in n for n in names)
    assert f"{prefix(plan)}-{model.name}-current-latency-sustained" in names
