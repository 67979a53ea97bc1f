"""Monitoring: Model Monitor schedules, CloudWatch alarms and a dashboard for one served model.

Per model with an endpoint (see :class:`ModelMonitoring`):

- **Data quality** (``monitoring.dataQuality``, instance endpoints with data capture): an
  ``aws.sagemaker.DataQualityJobDefinition`` comparing the captured requests with the served version's
  drift baselines (statistics and constraints registered with the model package), run hourly or daily by
  an ``aws.sagemaker.MonitoringSchedule``; reports under ``s3://<monitoring>/<model>/data-quality/`` and
  per-feature ``feature_baseline_drift_<feature>`` metrics in CloudWatch. The endpoint captures RAW
  requests while the baselines describe the feature spec's columns, so the job runs a record preprocessor
  (:func:`mlops.monitoring.build_record_preprocessor`: the spec's own ``compute_features``) published,
  KMS-encrypted, at ``s3://<monitoring>/<model>/record-preprocessor/<content hash>/record_preprocessor.py``.
- **Model quality** (``monitoring.modelQuality``): a ``pulumi_aws_native.sagemaker.ModelQualityJobDefinition``
  (not in pulumi-aws) joining captured predictions with ground-truth labels from
  ``s3://<monitoring>/<model>/<groundTruthPrefix>``, BinaryClassification, scheduled the same way;
  reports under ``s3://<monitoring>/<model>/model-quality/`` and the training metric in CloudWatch.
- **Alarms**: feature drift (one per feature), a composite "model drift" alarm (OR of those), model
  quality below threshold, p99 latency and 5xx error rate per production variant, the business KPI.
  Every alarm notifies the ``alerts`` topic; the composite drift and the model-quality alarms also
  publish to the ``retrain`` topic (the retraining responder acts on them) when retraining is enabled.
- **Dashboard**: invocations, latency, errors per variant, drift, quality, KPI and alarm states.

Both monitoring jobs run the Model Monitor analyzer image (looked up offline with the SageMaker SDK), with
network isolation, inter-container encryption, volumes and reports encrypted with the platform key, and
a role that can read only the capture prefix, the ground truth and the two baseline objects, and write
only the model's report prefixes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from infra import iam
from infra.config import ModelSettings
from infra.context import StackContext
from infra.model_versions import DeployableVersion
from infra.naming import Kind
from mlops.features import get_spec
from mlops.monitoring import build_record_preprocessor

DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
"""Where Model Monitor's data-quality jobs of real-time endpoints publish (dimensions Endpoint, MonitoringSchedule)."""
MODEL_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
"""Where Model Monitor's model-quality jobs of real-time endpoints publish (same dimensions)."""
ENDPOINT_NAMESPACE = "AWS/SageMaker"
"""Endpoint invocation metrics (dimensions EndpointName, VariantName); ModelLatency is in microseconds."""

ANALYZER_ENVIRONMENT = {"publish_cloudwatch_metrics": "Enabled"}
"""Makes the built-in analyzer publish its metrics to CloudWatch (what the alarms watch)."""
VOLUME_SIZE_GB = 30
"""Storage of each monitoring job instance (the SDK's default)."""
ENDPOINT_INPUT_PATH = "/opt/ml/processing/input/endpoint"
OUTPUT_PATH = "/opt/ml/processing/output"
PROBABILITY_ATTRIBUTE = "0"
"""The inference container answers ``text/csv`` with one positive-class probability per line: column 0."""
GROUND_TRUTH_START_OFFSET = "-P2D"
GROUND_TRUTH_END_OFFSET = "-P1D"
"""A model-quality job evaluates predictions captured two days to one day before it runs, so labels have a
day to land under the ground-truth prefix (ISO-8601 durations, see "Model monitor offsets")."""

RECORD_PREPROCESSOR_FILE = "record_preprocessor.py"
"""File name of the data-quality job's record preprocessor (under a content-addressed prefix)."""

RUNBOOK = "docs/runbook.md"
ANCHOR_DRIFT_COMPOSITE = "drift-composite"
ANCHOR_FEATURE_DRIFT = "feature-drift"
ANCHOR_MODEL_QUALITY = "model-quality"
ANCHOR_LATENCY = "latency-p99"
ANCHOR_ERRORS = "5xx-errors"
ANCHOR_KPI = "business-kpi"

MONITORING_PERIOD_SECONDS = 3600
"""Period of the drift and quality alarms: a monitoring job publishes one datapoint per run."""
ENDPOINT_PERIOD_SECONDS = 300
ENDPOINT_EVALUATION_PERIODS = 3
"""Latency and error alarms need three consecutive breaching 5-minute periods (a brief spike is the
rollout guardrails' business, a sustained one is on-call's)."""


def runbook_link(anchor: str) -> str:
    """The runbook entry of an alarm kind, as written in alarm descriptions."""
    return f"Runbook: {RUNBOOK}#{anchor}"


@functools.cache
def analyzer_image_uri(region: str) -> str:
    """The Model Monitor analyzer image of ``region`` (the SageMaker SDK's bundled table; no network)."""
    from pipelines.factory import offline_sdk

    with offline_sdk(region):
        from sagemaker.core import image_uris

        return str(image_uris.retrieve("model-monitor", region=region))


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``; raises ``ValueError`` on anything else."""
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def s3_object_arn(uri: str) -> str:
    """The ARN of the object (or key prefix) an ``s3://`` URI names."""
    bucket, key = split_s3_uri(uri)
    return f"arn:aws:s3:::{bucket}/{key}"


def record_preprocessor_key(model_name: str, script: bytes) -> str:
    """Key of a model's record preprocessor in the monitoring bucket: a new script is a new key.

    ``<model>/record-preprocessor/<16 hex digits of sha256>/record_preprocessor.py``; outside the report
    prefixes the monitoring jobs may write, so a job cannot replace the code it runs.
    """
    digest = hashlib.sha256(script).hexdigest()[:16]
    return f"{model_name}/record-preprocessor/{digest}/{RECORD_PREPROCESSOR_FILE}"


def native_provider(
    context: StackContext, name: str, opts: pulumi.ResourceOptions | None = None
) -> aws_native.Provider:
    """The stack's one pulumi-aws-native provider, pinned to the stack's region (no extra config key)."""
    return aws_native.Provider(name, region=context.config.region, opts=opts)


@dataclass(frozen=True, kw_only=True)
class ModelMonitoringArgs:
    """Inputs of :class:`ModelMonitoring`.

    ``endpoint_name`` / ``variant_names`` / ``data_capture_uri`` come from the model's ``Serving``
    component (``data_capture_uri`` is ``None`` for serverless endpoints and when capture is off: then no
    Model Monitor job is created). ``served_version_arn`` is the model package the primary production
    variant serves; its drift baselines are the data-quality baselines (``None``: the latest approved
    version). ``native_provider`` (from :func:`native_provider`) is required when model quality is monitored.
    """

    context: StackContext
    model: ModelSettings
    feature_names: tuple[str, ...]
    endpoint_name: pulumi.Input[str]
    variant_names: tuple[str, ...]
    data_capture_uri: pulumi.Input[str] | None
    served_version_arn: str | None
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    monitoring_bucket_name: pulumi.Input[str]
    monitoring_bucket_arn: pulumi.Input[str]
    alerts_topic_arn: pulumi.Input[str]
    retrain_topic_arn: pulumi.Input[str]
    native_provider: pulumi.ProviderResource | None = None


class ModelMonitoring(pulumi.ComponentResource):
    """Model Monitor schedules, alarms and a dashboard for one model's endpoint.

    Outputs (attributes): ``alarm_names`` (every alarm), ``retraining_alarm_names`` and
    ``retraining_alarm_arns`` (the alarms that publish to the retrain topic: composite drift and model
    quality; empty when ``monitoring.retraining.enabled`` is false), ``drift_alarm_names`` (per feature),
    ``dashboard_name``, ``data_quality_schedule_name`` / ``model_quality_schedule_name`` (``None`` when
    that monitor is off), ``role_arn`` (``None`` without monitors), ``record_preprocessor_uri`` (the
    data-quality job's record preprocessor; ``None`` without a data-quality monitor).

    Raises ``ValueError`` when model quality is monitored without ``native_provider``, and
    ``infra.naming.NamingError`` at preview when a derived name breaks AWS's limits.
    """

    alarms: dict[str, aws.cloudwatch.MetricAlarm | aws.cloudwatch.CompositeAlarm]
    alarm_names: list[str]
    drift_alarm_names: list[str]
    retraining_alarm_names: list[str]
    retraining_alarm_arns: list[pulumi.Output[str]]
    dashboard: aws.cloudwatch.Dashboard
    dashboard_name: str
    data_quality_schedule_name: str | None
    model_quality_schedule_name: str | None
    baseline: DeployableVersion | None
    role_arn: pulumi.Output[str] | None
    record_preprocessor: aws.s3.BucketObjectv2 | None
    record_preprocessor_uri: pulumi.Output[str] | None
    _role_policy: aws.iam.RolePolicy
    _preprocessor_script: bytes
    _preprocessor_key: str

    def __init__(self, name: str, args: ModelMonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:ModelMonitoring", name, None, opts)
        ctx, model = args.context, args.model
        monitoring = model.monitoring
        self._name, self._args = name, args
        self._tags = ctx.naming.tags(Model=model.name)
        self.alarms = {}
        self.alarm_names = []
        self.drift_alarm_names = []
        self.retraining_alarm_names = []
        self.retraining_alarm_arns = []
        self.data_quality_schedule_name = None
        self.model_quality_schedule_name = None
        self.baseline = None
        self.role_arn = None
        self.record_preprocessor = None
        self.record_preprocessor_uri = None

        captured = args.data_capture_uri is not None
        watch_data = captured and monitoring.data_quality.enabled
        watch_quality = captured and monitoring.model_quality.enabled
        if watch_data:
            group = ctx.naming.name(model.name, Kind.SAGEMAKER)
            self.baseline = ctx.versions.resolve(group, args.served_version_arn)
            if self.baseline is None or not (self.baseline.data_statistics_uri and self.baseline.data_constraints_uri):
                pulumi.log.warn(
                    f"model '{model.name}': the served version has no drift baselines "
                    "(DriftCheckBaselines.ModelDataQuality); no data-quality monitor or drift alarms",
                    resource=self,
                )
                watch_data = False
        if watch_data:
            # Generated at preview from the repository's feature code: same code, same bytes, same key.
            self._preprocessor_script = build_record_preprocessor(get_spec(model.feature_spec))
            self._preprocessor_key = record_preprocessor_key(model.name, self._preprocessor_script)
        if watch_quality and args.native_provider is None:
            raise ValueError(
                f"model '{model.name}': monitoring.modelQuality.enabled=true needs the aws-native provider "
                "(ModelMonitoringArgs.native_provider)"
            )

        if watch_data or watch_quality:
            self.role_arn = self._role(watch_data, watch_quality).arn
            image = analyzer_image_uri(ctx.config.region)
            if watch_data:
                self.data_quality_schedule_name = self._data_quality(image)
            if watch_quality:
                self.model_quality_schedule_name = self._model_quality(image)

        if self.data_quality_schedule_name is not None:
            self._drift_alarms(self.data_quality_schedule_name)
        if self.model_quality_schedule_name is not None:
            self._quality_alarm(self.model_quality_schedule_name)
        for variant in args.variant_names:
            self._latency_alarm(variant)
            self._error_alarm(variant)
        if monitoring.business_kpi is not None:
            self._kpi_alarm()

        self.dashboard_name = ctx.naming.name(model.name, Kind.DASHBOARD)
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=self.dashboard_name,
            dashboard_body=self._dashboard_body(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "alarm_names": self.alarm_names,
                "retraining_alarm_names": self.retraining_alarm_names,
                "retraining_alarm_arns": self.retraining_alarm_arns,
                "dashboard_name": self.dashboard_name,
                "data_quality_schedule_name": self.data_quality_schedule_name,
                "model_quality_schedule_name": self.model_quality_schedule_name,
                "role_arn": self.role_arn,
                "record_preprocessor_uri": self.record_preprocessor_uri,
            }
        )

    # --- Model Monitor jobs ---------------------------------------------------------------------

    def _report_uri(self, kind: str) -> pulumi.Output[str]:
        return pulumi.Output.concat("s3://", self._args.monitoring_bucket_name, "/", self._args.model.name, f"/{kind}/")

    def _data_quality(self, image: str) -> str:
        """The data-quality job definition and its schedule; returns the schedule name."""
        args, settings = self._args, self._args.model.monitoring.data_quality
        baseline = self.baseline
        assert baseline is not None and baseline.data_statistics_uri and baseline.data_constraints_uri
        job_name = args.context.naming.name(f"{args.model.name}-dq", Kind.SAGEMAKER)
        self.record_preprocessor = aws.s3.BucketObjectv2(
            f"{self._name}-record-preprocessor",
            bucket=args.monitoring_bucket_name,
            key=self._preprocessor_key,
            content_base64=base64.b64encode(self._preprocessor_script).decode("ascii"),
            content_type="text/x-python",
            server_side_encryption="aws:kms",
            kms_key_id=args.kms_key_arn,
            tags=self._tags,
            # A new script is a new key; the old object stays for jobs already running with it.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        self.record_preprocessor_uri = pulumi.Output.concat(
            "s3://", args.monitoring_bucket_name, "/", self._preprocessor_key
        )
        definition = aws.sagemaker.DataQualityJobDefinition(
            f"{self._name}-data-quality",
            name=job_name,
            role_arn=self._role_arn(),
            data_quality_app_specification=aws.sagemaker.DataQualityJobDefinitionDataQualityAppSpecificationArgs(
                image_uri=image,
                environment=ANALYZER_ENVIRONMENT,
                # Raw captured requests -> the spec's feature columns, which the baselines describe.
                record_preprocessor_source_uri=self.record_preprocessor_uri,
            ),
            data_quality_baseline_config=aws.sagemaker.DataQualityJobDefinitionDataQualityBaselineConfigArgs(
                statistics_resource=aws.sagemaker.DataQualityJobDefinitionDataQualityBaselineConfigStatisticsResourceArgs(
                    s3_uri=baseline.data_statistics_uri
                ),
                constraints_resource=aws.sagemaker.DataQualityJobDefinitionDataQualityBaselineConfigConstraintsResourceArgs(
                    s3_uri=baseline.data_constraints_uri
                ),
            ),
            data_quality_job_input=aws.sagemaker.DataQualityJobDefinitionDataQualityJobInputArgs(
                endpoint_input=aws.sagemaker.DataQualityJobDefinitionDataQualityJobInputEndpointInputArgs(
                    endpoint_name=args.endpoint_name,
                    local_path=ENDPOINT_INPUT_PATH,
                    s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                )
            ),
            data_quality_job_output_config=aws.sagemaker.DataQualityJobDefinitionDataQualityJobOutputConfigArgs(
                kms_key_id=args.kms_key_arn,
                monitoring_outputs=aws.sagemaker.DataQualityJobDefinitionDataQualityJobOutputConfigMonitoringOutputsArgs(
                    s3_output=aws.sagemaker.DataQualityJobDefinitionDataQualityJobOutputConfigMonitoringOutputsS3OutputArgs(
                        s3_uri=self._report_uri("data-quality"), local_path=OUTPUT_PATH, s3_upload_mode="EndOfJob"
                    )
                ),
            ),
            job_resources=aws.sagemaker.DataQualityJobDefinitionJobResourcesArgs(
                cluster_config=aws.sagemaker.DataQualityJobDefinitionJobResourcesClusterConfigArgs(
                    instance_count=1,
                    instance_type=settings.instance_type,
                    volume_size_in_gb=VOLUME_SIZE_GB,
                    volume_kms_key_id=args.kms_key_arn,
                )
            ),
            network_config=aws.sagemaker.DataQualityJobDefinitionNetworkConfigArgs(
                enable_network_isolation=True, enable_inter_container_traffic_encryption=True
            ),
            stopping_condition=aws.sagemaker.DataQualityJobDefinitionStoppingConditionArgs(
                max_runtime_in_seconds=settings.max_runtime_seconds
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._role_policy, self.record_preprocessor]),
        )
        return self._schedule("data-quality", job_name, "DataQuality", definition.name, settings.schedule)

    def _model_quality(self, image: str) -> str:
        """The model-quality job definition (aws-native) and its schedule; returns the schedule name."""
        args, settings = self._args, self._args.model.monitoring.model_quality
        job_name = args.context.naming.name(f"{args.model.name}-mq", Kind.SAGEMAKER)
        mq = aws_native.sagemaker
        ground_truth = pulumi.Output.concat(
            "s3://", args.monitoring_bucket_name, "/", args.model.name, "/", settings.ground_truth_prefix
        )
        definition = mq.ModelQualityJobDefinition(
            f"{self._name}-model-quality",
            job_definition_name=job_name,
            endpoint_name=args.endpoint_name,
            role_arn=self._role_arn(),
            model_quality_app_specification=mq.ModelQualityJobDefinitionModelQualityAppSpecificationArgs(
                image_uri=image,
                problem_type=mq.ModelQualityJobDefinitionProblemType.BINARY_CLASSIFICATION,
                environment=ANALYZER_ENVIRONMENT,
            ),
            model_quality_job_input=mq.ModelQualityJobDefinitionModelQualityJobInputArgs(
                endpoint_input=mq.ModelQualityJobDefinitionEndpointInputArgs(
                    endpoint_name=args.endpoint_name,
                    local_path=ENDPOINT_INPUT_PATH,
                    probability_attribute=PROBABILITY_ATTRIBUTE,
                    probability_threshold_attribute=settings.probability_threshold,
                    start_time_offset=GROUND_TRUTH_START_OFFSET,
                    end_time_offset=GROUND_TRUTH_END_OFFSET,
                    s3_input_mode=mq.ModelQualityJobDefinitionEndpointInputS3InputMode.FILE,
                    s3_data_distribution_type=mq.ModelQualityJobDefinitionEndpointInputS3DataDistributionType.FULLY_REPLICATED,
                ),
                ground_truth_s3_input=mq.ModelQualityJobDefinitionMonitoringGroundTruthS3InputArgs(s3_uri=ground_truth),
            ),
            model_quality_job_output_config=mq.ModelQualityJobDefinitionMonitoringOutputConfigArgs(
                kms_key_id=args.kms_key_arn,
                monitoring_outputs=[
                    mq.ModelQualityJobDefinitionMonitoringOutputArgs(
                        s3_output=mq.ModelQualityJobDefinitionS3OutputArgs(
                            local_path=OUTPUT_PATH,
                            s3_uri=self._report_uri("model-quality"),
                            s3_upload_mode=mq.ModelQualityJobDefinitionS3OutputS3UploadMode.END_OF_JOB,
                        )
                    )
                ],
            ),
            job_resources=mq.ModelQualityJobDefinitionMonitoringResourcesArgs(
                cluster_config=mq.ModelQualityJobDefinitionClusterConfigArgs(
                    instance_count=1,
                    instance_type=settings.instance_type,
                    volume_size_in_gb=VOLUME_SIZE_GB,
                    volume_kms_key_id=args.kms_key_arn,
                )
            ),
            network_config=mq.ModelQualityJobDefinitionNetworkConfigArgs(
                enable_network_isolation=True, enable_inter_container_traffic_encryption=True
            ),
            stopping_condition=mq.ModelQualityJobDefinitionStoppingConditionArgs(
                max_runtime_in_seconds=settings.max_runtime_seconds
            ),
            tags=[aws_native.CreateOnlyTagArgs(key=k, value=v) for k, v in sorted(self._tags.items())],
            opts=pulumi.ResourceOptions(parent=self, provider=args.native_provider, depends_on=[self._role_policy]),
        )
        return self._schedule(
            "model-quality",
            job_name,
            "ModelQuality",
            # Optional in the aws-native schema, always set here (we name the definition).
            definition.job_definition_name.apply(lambda n: n or job_name),
            settings.schedule,
        )

    def _schedule(
        self, part: str, schedule_name: str, monitoring_type: str, definition_name: pulumi.Input[str], cron: str
    ) -> str:
        """A monitoring schedule running ``definition_name``. It shares the definition's name (the runbook
        describes both with the same name)."""
        aws.sagemaker.MonitoringSchedule(
            f"{self._name}-{part}-schedule",
            name=schedule_name,
            monitoring_schedule_config=aws.sagemaker.MonitoringScheduleMonitoringScheduleConfigArgs(
                monitoring_type=monitoring_type,
                monitoring_job_definition_name=definition_name,
                schedule_config=aws.sagemaker.MonitoringScheduleMonitoringScheduleConfigScheduleConfigArgs(
                    schedule_expression=cron
                ),
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return schedule_name

    def _role_arn(self) -> pulumi.Output[str]:
        assert self.role_arn is not None
        return self.role_arn

    def _role(self, watch_data: bool, watch_quality: bool) -> iam.ServiceRole:
        """The monitoring jobs' role: read the capture, baselines and labels; write the reports; publish metrics."""
        args = self._args
        ctx, model = args.context, args.model
        region = ctx.config.region
        bucket = [args.monitoring_bucket_arn]
        capture_uri = pulumi.Output.from_input(args.data_capture_uri or "")
        capture_objects = capture_uri.apply(lambda uri: s3_object_arn(uri.rstrip("/") + "/") + "*")
        capture_bucket = capture_uri.apply(lambda uri: f"arn:aws:s3:::{split_s3_uri(uri)[0]}")
        capture_prefix = capture_uri.apply(lambda uri: split_s3_uri(uri.rstrip("/") + "/")[1])
        image_registry, _, image_repository = analyzer_image_uri(region).partition("/")
        image_account = image_registry.split(".")[0]
        statements: list[iam.Statement] = [
            iam.statement("CaptureRead", ["s3:GetObject"], [capture_objects]),
            iam.statement(
                "CaptureList",
                ["s3:ListBucket"],
                [capture_bucket],
                conditions={"StringLike": {"s3:prefix": [capture_prefix, pulumi.Output.concat(capture_prefix, "*")]}},
            ),
        ]
        reports: list[str] = []
        if watch_data:
            baseline = self.baseline
            assert baseline is not None and baseline.data_statistics_uri and baseline.data_constraints_uri
            statements.append(
                iam.statement(
                    "BaselinesRead",
                    ["s3:GetObject"],
                    [s3_object_arn(baseline.data_statistics_uri), s3_object_arn(baseline.data_constraints_uri)],
                )
            )
            statements.append(
                iam.statement(
                    "RecordPreprocessorRead",
                    ["s3:GetObject"],
                    [pulumi.Output.concat(args.monitoring_bucket_arn, "/", self._preprocessor_key)],
                )
            )
            reports.append(f"{model.name}/data-quality/")
        if watch_quality:
            labels = f"{model.name}/{model.monitoring.model_quality.ground_truth_prefix}"
            statements += [
                iam.s3_read_objects("GroundTruthRead", bucket, labels),
                iam.s3_list_prefix("GroundTruthList", bucket, labels),
            ]
            reports.append(f"{model.name}/model-quality/")
        for prefix in reports:
            kind = "DataQuality" if prefix.endswith("/data-quality/") else "ModelQuality"
            statements += [
                iam.s3_write(f"{kind}ReportsWrite", bucket, prefix),
                # The model-quality job reads back the merged predictions and labels it wrote.
                iam.s3_read_objects(f"{kind}ReportsRead", bucket, prefix),
                iam.s3_list_prefix(f"{kind}ReportsList", bucket, prefix),
            ]
        statements += [
            iam.kms_use("PlatformKeyUse", [args.kms_key_arn]),
            # Job volumes encrypted with the platform key: SageMaker creates grants for the instances.
            iam.kms_grant_for_aws_services("PlatformKeyGrants", [args.kms_key_arn]),
            # PutMetricData has no resource-level permission; the namespace condition scopes it instead.
            iam.statement(
                "PublishMonitorMetrics",
                ["cloudwatch:PutMetricData"],
                ["*"],
                conditions={"StringLike": {"cloudwatch:namespace": [DATA_METRICS_NAMESPACE, MODEL_METRICS_NAMESPACE]}},
            ),
            iam.logs_write(
                "JobLogs",
                [
                    pulumi.Output.concat(
                        "arn:aws:logs:", region, ":", args.account_id, ":log-group:/aws/sagemaker/ProcessingJobs*"
                    )
                ],
            ),
            iam.statement(
                "ImagePull",
                ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                [f"arn:aws:ecr:{region}:{image_account}:repository/{image_repository}"],
            ),
            # GetAuthorizationToken is account-wide (a registry login): IAM has no resource-level permission for it.
            iam.statement("ImageAuth", ["ecr:GetAuthorizationToken"], ["*"]),
        ]
        role = iam.service_role(
            f"{self._name}-role",
            naming=ctx.naming,
            thing=f"{model.name}-monitor",
            services=["sagemaker.amazonaws.com"],
            statements=statements,
            tags=self._tags,
            parent=self,
            source_account=args.account_id,
            description=f"{ctx.naming.prefix} Model Monitor jobs of {model.name}: read capture, write reports",
        )
        self._role_policy = role.policy
        return role

    # --- Alarms ----------------------------------------------------------------------------------

    def _actions(self, retrain: bool) -> list[pulumi.Input[str]]:
        actions: list[pulumi.Input[str]] = [self._args.alerts_topic_arn]
        if retrain and self._args.model.monitoring.retraining.enabled:
            actions.append(self._args.retrain_topic_arn)
        return actions

    def _metric_alarm(
        self, part: str, thing: str, *, anchor: str, summary: str, retrain: bool = False, **kwargs: Any
    ) -> aws.cloudwatch.MetricAlarm:
        """One alarm named ``<prefix>-<thing>``: alerts on ALARM and OK; the retrain topic too if ``retrain``."""
        ctx = self._args.context
        alarm_name = ctx.naming.name(thing, Kind.ALARM)
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{part}",
            name=alarm_name,
            alarm_description=f"{summary} {runbook_link(anchor)}",
            alarm_actions=self._actions(retrain),
            ok_actions=[self._args.alerts_topic_arn],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
            **kwargs,
        )
        self._remember(part, alarm_name, alarm, retrain)
        return alarm

    def _remember(
        self,
        part: str,
        alarm_name: str,
        alarm: aws.cloudwatch.MetricAlarm | aws.cloudwatch.CompositeAlarm,
        retrain: bool,
    ) -> None:
        self.alarms[part] = alarm
        self.alarm_names.append(alarm_name)
        if retrain and self._args.model.monitoring.retraining.enabled:
            self.retraining_alarm_names.append(alarm_name)
            self.retraining_alarm_arns.append(alarm.arn)

    def drift_features(self) -> tuple[str, ...]:
        """The features with a drift alarm: ``driftAlarmFeatures``, or every feature of the spec."""
        return self._args.model.monitoring.data_quality.drift_alarm_features or self._args.feature_names

    def _drift_alarms(self, schedule_name: str) -> None:
        """One alarm per feature on its baseline drift distance, and the composite "model drift" alarm."""
        args, settings = self._args, self._args.model.monitoring.data_quality
        model = args.model.name
        feature_alarms = []
        for feature in self.drift_features():
            thing = f"{model}-drift-{feature}"
            alarm = self._metric_alarm(
                f"drift-{feature}",
                thing,
                anchor=ANCHOR_FEATURE_DRIFT,
                summary=(
                    f"{model}: feature '{feature}' of the captured requests drifted from the training baseline "
                    f"(Model Monitor baseline drift distance > {settings.drift_threshold})."
                ),
                namespace=DATA_METRICS_NAMESPACE,
                metric_name=f"feature_baseline_drift_{feature}",
                dimensions={"Endpoint": args.endpoint_name, "MonitoringSchedule": schedule_name},
                statistic="Maximum",
                period=MONITORING_PERIOD_SECONDS,
                evaluation_periods=1,
                threshold=settings.drift_threshold,
                comparison_operator="GreaterThanThreshold",
                # One datapoint per monitoring job: between jobs the alarm keeps the last job's verdict.
                treat_missing_data="ignore",
            )
            feature_alarms.append(alarm)
            self.drift_alarm_names.append(args.context.naming.name(thing, Kind.ALARM))
        if not feature_alarms:
            return
        thing = f"{model}-model-drift"
        composite_name = args.context.naming.name(thing, Kind.ALARM)
        # Built from the feature alarms' names (outputs), so it is created after them.
        rule = pulumi.Output.all(*[a.name for a in feature_alarms]).apply(
            lambda names: " OR ".join(f'ALARM("{n}")' for n in names)
        )
        composite = aws.cloudwatch.CompositeAlarm(
            f"{self._name}-model-drift",
            alarm_name=composite_name,
            alarm_rule=rule,
            alarm_description=(
                f"{model}: at least one monitored feature drifted from the training baseline; "
                f"{'starts retraining' if args.model.monitoring.retraining.enabled else 'retraining is off'}. "
                f"{runbook_link(ANCHOR_DRIFT_COMPOSITE)}"
            ),
            alarm_actions=self._actions(retrain=True),
            ok_actions=[args.alerts_topic_arn],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._remember("model-drift", composite_name, composite, retrain=True)

    def _quality_threshold(self) -> float:
        quality = self._args.model.monitoring.model_quality
        return (
            quality.metric_threshold
            if quality.metric_threshold is not None
            else self._args.model.training.metric_threshold
        )

    def _quality_alarm(self, schedule_name: str) -> None:
        args = self._args
        model, metric = args.model.name, args.model.training.metric_name
        threshold = self._quality_threshold()
        self._metric_alarm(
            "model-quality",
            f"{model}-quality-{metric}",
            anchor=ANCHOR_MODEL_QUALITY,
            retrain=True,
            summary=(f"{model}: live {metric} (captured predictions joined with ground truth) fell below {threshold}."),
            namespace=MODEL_METRICS_NAMESPACE,
            metric_name=metric,
            dimensions={"Endpoint": args.endpoint_name, "MonitoringSchedule": schedule_name},
            statistic="Minimum",
            period=MONITORING_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=threshold,
            comparison_operator="LessThanThreshold",
            # One datapoint per daily job: between jobs the alarm keeps the last job's verdict.
            treat_missing_data="ignore",
        )

    def _latency_alarm(self, variant: str) -> None:
        args = self._args
        model = args.model.name
        serving = args.model.serving
        threshold_ms = serving.rollout.latency_p99_ms_threshold if serving is not None else 500
        self._metric_alarm(
            f"{variant}-latency",
            f"{model}-{variant}-latency-sustained",
            anchor=ANCHOR_LATENCY,
            summary=(
                f"{model}: p99 ModelLatency of variant '{variant}' above {threshold_ms} ms for "
                f"{ENDPOINT_EVALUATION_PERIODS} x {ENDPOINT_PERIOD_SECONDS // 60} min."
            ),
            namespace=ENDPOINT_NAMESPACE,
            metric_name="ModelLatency",
            dimensions={"EndpointName": args.endpoint_name, "VariantName": variant},
            extended_statistic="p99",
            period=ENDPOINT_PERIOD_SECONDS,
            evaluation_periods=ENDPOINT_EVALUATION_PERIODS,
            datapoints_to_alarm=ENDPOINT_EVALUATION_PERIODS,
            threshold=float(threshold_ms * 1000),  # ModelLatency is in microseconds
            comparison_operator="GreaterThanThreshold",
            # No requests, no latency: silence is not slowness.
            treat_missing_data="notBreaching",
        )

    def _error_alarm(self, variant: str) -> None:
        args = self._args
        model = args.model.name
        serving = args.model.serving
        threshold = serving.rollout.error_rate_percent_threshold if serving is not None else 1.0
        dimensions = {"EndpointName": args.endpoint_name, "VariantName": variant}

        def metric(query_id: str, metric_name: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id,
                return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=ENDPOINT_NAMESPACE,
                    metric_name=metric_name,
                    dimensions=dimensions,
                    period=ENDPOINT_PERIOD_SECONDS,
                    stat="Sum",
                ),
            )

        self._metric_alarm(
            f"{variant}-errors",
            f"{model}-{variant}-errors-sustained",
            anchor=ANCHOR_ERRORS,
            summary=(
                f"{model}: variant '{variant}' answered more than {threshold}% of invocations with a 5xx error "
                f"for {ENDPOINT_EVALUATION_PERIODS} x {ENDPOINT_PERIOD_SECONDS // 60} min."
            ),
            metric_queries=[
                metric("errors", "Invocation5XXErrors"),
                metric("invocations", "Invocations"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="error_rate",
                    expression="100 * FILL(errors, 0) / invocations",
                    label="5xx errors (% of invocations)",
                    return_data=True,
                ),
            ],
            evaluation_periods=ENDPOINT_EVALUATION_PERIODS,
            datapoints_to_alarm=ENDPOINT_EVALUATION_PERIODS,
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            # No invocations, no rate (division by nothing): an idle endpoint is not failing.
            treat_missing_data="notBreaching",
        )

    def _kpi_alarm(self) -> None:
        args = self._args
        kpi = args.model.monitoring.business_kpi
        assert kpi is not None
        model = args.model.name
        above = kpi.comparison == "above"
        self._metric_alarm(
            "business-kpi",
            f"{model}-kpi-{kpi.metric_name}",
            anchor=ANCHOR_KPI,
            summary=(
                f"{model}: business KPI {kpi.namespace}/{kpi.metric_name} ({kpi.statistic}) "
                f"{'above' if above else 'below'} {kpi.threshold} for {kpi.evaluation_periods} x "
                f"{kpi.period_seconds} s, or no longer published."
            ),
            namespace=kpi.namespace,
            metric_name=kpi.metric_name,
            dimensions=dict(kpi.dimensions) or None,
            statistic=kpi.statistic,
            period=kpi.period_seconds,
            evaluation_periods=kpi.evaluation_periods,
            threshold=kpi.threshold,
            comparison_operator="GreaterThanThreshold" if above else "LessThanThreshold",
            # A KPI that stops arriving is news too: missing data leads to INSUFFICIENT_DATA, which alerts.
            treat_missing_data="missing",
            insufficient_data_actions=[args.alerts_topic_arn],
        )

    # --- Dashboard -------------------------------------------------------------------------------

    def _dashboard_body(self) -> pulumi.Output[str]:
        """The dashboard JSON: endpoint metrics per variant, drift, quality, KPI, then the alarm states."""
        args = self._args
        region = args.context.config.region
        endpoint = args.endpoint_name
        variants = args.variant_names
        widgets: list[dict[str, Any]] = []

        def per_variant(metric: str, options: dict[str, Any]) -> list[list[Any]]:
            return [[ENDPOINT_NAMESPACE, metric, "EndpointName", endpoint, "VariantName", v, options] for v in variants]

        def add(title: str, metrics: Sequence[Sequence[Any]], **properties: Any) -> None:
            widgets.append(
                {
                    "type": "metric",
                    "x": 12 * (len(widgets) % 2),
                    "y": 6 * (len(widgets) // 2),
                    "width": 12,
                    "height": 6,
                    "properties": {
                        "title": title,
                        "region": region,
                        "view": "timeSeries",
                        "metrics": metrics,
                        **properties,
                    },
                }
            )

        serving = args.model.serving
        latency_ms = serving.rollout.latency_p99_ms_threshold if serving is not None else 500
        add("Invocations per variant", per_variant("Invocations", {"stat": "Sum"}), period=ENDPOINT_PERIOD_SECONDS)
        add(
            "p99 ModelLatency per variant (µs)",
            per_variant("ModelLatency", {"stat": "p99"}),
            period=ENDPOINT_PERIOD_SECONDS,
            annotations={"horizontal": [{"label": "alarm", "value": latency_ms * 1000}]},
        )
        add(
            "5xx and 4xx errors per variant",
            per_variant("Invocation5XXErrors", {"stat": "Sum"}) + per_variant("Invocation4XXErrors", {"stat": "Sum"}),
            period=ENDPOINT_PERIOD_SECONDS,
        )
        if self.data_quality_schedule_name is not None:
            add(
                "Feature baseline drift",
                [
                    [
                        DATA_METRICS_NAMESPACE,
                        f"feature_baseline_drift_{f}",
                        "Endpoint",
                        endpoint,
                        "MonitoringSchedule",
                        self.data_quality_schedule_name,
                        {"stat": "Maximum"},
                    ]
                    for f in self.drift_features()
                ],
                period=MONITORING_PERIOD_SECONDS,
                annotations={
                    "horizontal": [{"label": "alarm", "value": args.model.monitoring.data_quality.drift_threshold}]
                },
            )
        if self.model_quality_schedule_name is not None:
            metric = args.model.training.metric_name
            add(
                f"Live {metric}",
                [
                    [
                        MODEL_METRICS_NAMESPACE,
                        metric,
                        "Endpoint",
                        endpoint,
                        "MonitoringSchedule",
                        self.model_quality_schedule_name,
                        {"stat": "Minimum"},
                    ]
                ],
                period=MONITORING_PERIOD_SECONDS,
                annotations={"horizontal": [{"label": "alarm", "value": self._quality_threshold()}]},
            )
        kpi = args.model.monitoring.business_kpi
        if kpi is not None:
            dims = [part for key, value in sorted(kpi.dimensions.items()) for part in (key, value)]
            add(
                f"Business KPI: {kpi.metric_name}",
                [[kpi.namespace, kpi.metric_name, *dims, {"stat": kpi.statistic}]],
                period=kpi.period_seconds,
                annotations={"horizontal": [{"label": "alarm", "value": kpi.threshold}]},
            )
        if not self.alarms:
            return pulumi.Output.json_dumps({"widgets": widgets})
        widgets.append(
            {
                "type": "alarm",
                "x": 0,
                "y": 6 * ((len(widgets) + 1) // 2),
                "width": 24,
                "height": 4,
                "properties": {
                    "title": "Alarms",
                    "alarms": [alarm.arn for alarm in self.alarms.values()],
                    "sortBy": "stateUpdatedTimestamp",
                },
            }
        )
        return pulumi.Output.json_dumps({"widgets": widgets})
