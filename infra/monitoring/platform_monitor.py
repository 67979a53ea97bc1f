"""engine=platform: one model's monitoring pipeline, its role and the schedule that starts it.

- ``aws.sagemaker.Pipeline`` ``<project>-<env>-<model>-monitoring``: :func:`pipelines.monitoring.monitoring_pipeline_definition`
  of the model's settings: one processing step running the platform's drift job (``monitor.py`` from the
  training pipeline's published code bundle) over the last ``windowHours`` of the endpoint's data capture,
  against the served version's drift baseline; reports to ``s3://<monitoring>/drift-reports/model=<model>/``
  and metrics to :data:`infra.alarms.PLATFORM_METRICS_NAMESPACE`.
- Its role (:func:`infra.monitoring.iam.platform_job_statements`), shared by the pipeline and its job as the
  training pipeline's is.
- ``aws.scheduler.Schedule`` ``<project>-<env>-<model>-monitoring`` on ``monitoring.platform.schedule``, a
  templated SageMaker pipeline target, with a role that may only start this pipeline.

Why EventBridge Scheduler rather than a scheduled EventBridge rule (what the training layer's retraining
schedule uses): a schedule is one resource with its target inline (no rule + target pair to keep in step),
its retry policy is set per schedule, its time zone is explicit, and it is the scheduling service AWS
recommends for new schedules. Both call StartPipelineExecution with a role; Scheduler's execution role
trusts ``scheduler.amazonaws.com``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.alarms import PLATFORM_METRICS_NAMESPACE
from infra.foundation import Foundation
from infra.monitoring.iam import platform_job_statements, schedule_statements
from infra.monitoring.reports import REPORTS_PREFIX, report_partition
from infra.monitoring.settings import MonitoringSettings
from infra.naming import Kind, ModelNames
from pipelines.images import image_uri
from pipelines.monitoring import FRAMEWORK_VERSION, MonitoringPipelineSettings, monitoring_pipeline_definition

SCHEDULE_RETRY_ATTEMPTS = 3
"""Retries of a failed StartPipelineExecution (throttling); a start that never succeeds shows as a missing
heartbeat."""
SCHEDULE_MAX_EVENT_AGE_SECONDS = 900
"""A start retried later than this is dropped: the window is anchored at the execution's start, so a very late
start would overlap the next run's window (at most the period, for periods under 15 minutes)."""


@dataclass(frozen=True, kw_only=True)
class PlatformMonitorArgs:
    """What :func:`platform_monitor` builds from (resolved by :class:`~infra.monitoring.ModelMonitoring`)."""

    parent: pulumi.Resource
    name: str
    """The component's resource name (children are ``<name>-<part>``)."""
    names: ModelNames
    foundation: Foundation
    settings: MonitoringSettings
    feature_spec: str
    endpoint_name: pulumi.Output[str]
    capture_uri: pulumi.Output[str]
    code_uri: pulumi.Input[str]
    baseline_uri: str
    tags: dict[str, str]


@dataclass(frozen=True)
class PlatformMonitor:
    """What the platform engine created for one model."""

    pipeline: aws.sagemaker.Pipeline
    role: iam.ServiceRole
    schedule: aws.scheduler.Schedule
    schedule_role: iam.ServiceRole
    pipeline_name: str
    schedule_name: str


START_PIPELINE_TARGET_ARN = "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"
"""EventBridge Scheduler's universal target for SageMaker's StartPipelineExecution (the role needs that action)."""


def monitoring_image(settings: MonitoringSettings, region: str) -> str:
    """The drift job's image: the training pipeline's scikit-learn image for the job's instance type."""
    return image_uri("sklearn", region, FRAMEWORK_VERSION, settings.platform.instance_type)


def ground_truth_prefix(names: ModelNames, settings: MonitoringSettings) -> str | None:
    """The labels' key prefix in the monitoring bucket (``<model>/<groundTruthPrefix>``); None without quality."""
    if not settings.model_quality.enabled:
        return None
    return f"{names.model}/{settings.model_quality.ground_truth_prefix}"


def platform_monitor(args: PlatformMonitorArgs) -> PlatformMonitor:
    """The monitoring pipeline, its role and its schedule (see the module docstring)."""
    names, foundation, settings = args.names, args.foundation, args.settings
    naming, model, region = names.naming, names.model, foundation.region
    pipeline_name = naming.name(f"{model}-monitoring", Kind.SAGEMAKER)
    schedule_name = naming.name(f"{model}-monitoring", Kind.EVENT_RULE)  # Scheduler: 1-64 of [0-9a-zA-Z-_.]
    role_name = naming.name(f"{model}-monitoring-job", Kind.IAM_ROLE)
    monitoring = foundation.buckets["monitoring"]
    labels = ground_truth_prefix(names, settings)
    image = monitoring_image(settings, region)

    role = iam.service_role(
        f"{args.name}-job-role",
        naming=naming,
        thing=f"{model}-monitoring-job",
        services=["sagemaker.amazonaws.com"],
        statements=platform_job_statements(
            foundation,
            role_arn=pulumi.Output.concat("arn:aws:iam::", foundation.account_id, ":role/", role_name),
            capture_uri=args.capture_uri,
            code_uri=args.code_uri,
            baseline_uri=args.baseline_uri,
            reports_prefix=report_partition(model),
            ground_truth_prefix=labels,
            image_uri=image,
        ),
        tags=args.tags,
        parent=args.parent,
        source_account=foundation.account_id,
        description=f"{naming.prefix} monitoring pipeline of {model}: read capture and baseline, write reports",
    )

    platform = settings.platform
    definition = pulumi.Output.all(
        role.arn, foundation.key_arn, args.code_uri, args.capture_uri, monitoring.name, args.endpoint_name
    ).apply(
        lambda v: monitoring_pipeline_definition(
            MonitoringPipelineSettings(
                model_name=model,
                pipeline_name=pipeline_name,
                feature_spec=args.feature_spec,
                endpoint_name=v[5],
                region=region,
                role_arn=v[0],
                kms_key_arn=v[1],
                code_uri=v[2],
                baseline_uri=args.baseline_uri,
                capture_uri=v[3],
                reports_uri=f"s3://{v[4]}/{REPORTS_PREFIX}",
                ground_truth_uri=None if labels is None else f"s3://{v[4]}/{labels}",
                window_hours=platform.window_hours,
                instance_type=platform.instance_type,
                max_runtime_seconds=platform.max_runtime_seconds,
                drift_thresholds=platform.threshold_overrides(),
                segments=platform.segments,
                probability_threshold=settings.model_quality.probability_threshold,
                metrics_namespace=PLATFORM_METRICS_NAMESPACE,
            )
        )
    )
    pipeline = aws.sagemaker.Pipeline(
        f"{args.name}-pipeline",
        pipeline_name=pipeline_name,
        pipeline_display_name=pipeline_name,
        pipeline_description=f"Drift and quality of {model}'s captured requests, every run of its schedule",
        pipeline_definition=definition,
        role_arn=role.arn,
        tags=args.tags,
        # The first execution needs the role's permissions.
        opts=pulumi.ResourceOptions(parent=args.parent, depends_on=[role.policy]),
    )

    schedule_role = iam.service_role(
        f"{args.name}-schedule-role",
        naming=naming,
        thing=f"{model}-monitoring-schedule",
        services=["scheduler.amazonaws.com"],
        statements=schedule_statements(pipeline.arn),
        tags=args.tags,
        parent=args.parent,
        source_account=foundation.account_id,
        description=f"{naming.prefix} schedule of {model}'s monitoring pipeline: starts it, nothing else",
    )
    schedule = aws.scheduler.Schedule(
        f"{args.name}-schedule",
        name=schedule_name,
        description=f"Starts {pipeline_name} ({platform.schedule})",
        schedule_expression=platform.schedule,
        schedule_expression_timezone="UTC",
        # Runs start on time: the analysis window ends when the execution starts.
        flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
        state="ENABLED",
        target=aws.scheduler.ScheduleTargetArgs(
            # The universal target (SageMaker's StartPipelineExecution), not the templated one: a templated
            # SageMaker target must carry SageMakerPipelineParameters (CreateSchedule refuses it otherwise), the
            # provider drops an empty list (terraform-provider-aws#33526), and this pipeline takes no parameters.
            arn=START_PIPELINE_TARGET_ARN,
            role_arn=schedule_role.arn,
            # No ClientRequestToken: Scheduler's <aws.scheduler.execution-id> changes with every attempt and has 16
            # characters, while StartPipelineExecution wants 32-128 (botocore's model). A retried start may run the
            # window twice: two identical reports and metrics, no harm.
            input=pulumi.Output.json_dumps({"PipelineName": pipeline.pipeline_name}),
            retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                maximum_retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                maximum_event_age_in_seconds=min(SCHEDULE_MAX_EVENT_AGE_SECONDS, platform.period_seconds),
            ),
        ),
        # Schedules take no tags (Scheduler tags schedule groups only). No customer key either: the schedule
        # holds no data, only the pipeline's ARN.
        opts=pulumi.ResourceOptions(parent=args.parent, depends_on=[schedule_role.policy]),
    )
    return PlatformMonitor(
        pipeline=pipeline,
        role=role,
        schedule=schedule,
        schedule_role=schedule_role,
        pipeline_name=pipeline_name,
        schedule_name=schedule_name,
    )
