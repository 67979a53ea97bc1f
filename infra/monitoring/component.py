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
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from infra import alarms, iam
from infra.alarms import DATA_METRICS_NAMESPACE, MODEL_METRICS_NAMESPACE
from infra.foundation import Foundation
from infra.model_versions import DeployableVersion
from infra.monitoring.dashboard import dashboard_body
from infra.monitoring.iam import monitoring_role_statements, split_s3_uri
from infra.monitoring.jobs import MonitorJobs, data_quality_job, model_quality_job
from infra.monitoring.settings import MonitoringSettings
from infra.naming import ModelNames
from infra.serving import ServedEndpoint
from infra.training import QualityGate
from mlops.features.spec import FeatureSpec
from mlops.monitoring import build_record_preprocessor
from pipelines.images import image_uri

if TYPE_CHECKING:
    from infra.context import StackContext

__all__ = ["DATA_METRICS_NAMESPACE", "MODEL_METRICS_NAMESPACE", "split_s3_uri"]

RECORD_PREPROCESSOR_FILE = "record_preprocessor.py"
"""File name of the data-quality job's record preprocessor (under a content-addressed prefix)."""


def analyzer_image_uri(region: str) -> str:
    """The Model Monitor analyzer image of ``region`` (the SageMaker SDK's bundled table; no network)."""
    return image_uri("model-monitor", region)


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
    """Inputs of :class:`ModelMonitoring`: the model's names, monitoring settings and feature spec, plus

    - ``endpoint``: the endpoint it watches (:attr:`infra.serving.Serving.served`); without data capture no
      Model Monitor job is created; its served version's drift baselines are the data-quality baselines;
    - ``quality_gate``: the training metric and threshold (:attr:`infra.training.TrainingPipeline.quality_gate`),
      which the model-quality alarm watches live unless ``modelQuality.metricThreshold`` overrides it;
    - ``native_provider`` (from :func:`native_provider`), required when model quality is monitored.
    """

    context: StackContext
    foundation: Foundation
    names: ModelNames
    settings: MonitoringSettings
    spec: FeatureSpec
    endpoint: ServedEndpoint
    quality_gate: QualityGate
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

    endpoint: ServedEndpoint
    settings: MonitoringSettings
    quality_gate: QualityGate
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
    _preprocessor_script: bytes
    _preprocessor_key: str

    def __init__(self, name: str, args: ModelMonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:ModelMonitoring", name, None, opts)
        ctx, model, monitoring = args.context, args.names.model, args.settings
        self._name, self._args = name, args
        self.endpoint, self.settings, self.quality_gate = args.endpoint, monitoring, args.quality_gate
        self._tags = ctx.naming.tags(Model=model)
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

        captured = args.endpoint.data_capture_uri is not None
        watch_data = captured and monitoring.data_quality.enabled
        watch_quality = captured and monitoring.model_quality.enabled
        if watch_data:
            self.baseline = ctx.versions.resolve(args.names.package_group, args.endpoint.served_version_arn)
            if self.baseline is None or not (self.baseline.data_statistics_uri and self.baseline.data_constraints_uri):
                pulumi.log.warn(
                    f"model '{model}': the served version has no drift baselines "
                    "(DriftCheckBaselines.ModelDataQuality); no data-quality monitor or drift alarms",
                    resource=self,
                )
                watch_data = False
        if watch_data:
            # Generated at preview from the repository's feature code: same code, same bytes, same key.
            self._preprocessor_script = build_record_preprocessor(args.spec)
            self._preprocessor_key = record_preprocessor_key(model, self._preprocessor_script)
        if watch_quality and args.native_provider is None:
            raise ValueError(
                f"model '{model}': monitoring.modelQuality.enabled=true needs the aws-native provider "
                "(ModelMonitoringArgs.native_provider)"
            )

        if watch_data or watch_quality:
            role = self._role(watch_data, watch_quality)
            self.role_arn = role.arn
            jobs = MonitorJobs(
                parent=self,
                name=name,
                names=args.names,
                foundation=args.foundation,
                endpoint_name=args.endpoint.name,
                role=role,
                image=analyzer_image_uri(ctx.config.region),
                tags=self._tags,
            )
            if watch_data:
                self.data_quality_schedule_name = self._data_quality(jobs)
            if watch_quality:
                assert args.native_provider is not None
                self.model_quality_schedule_name = model_quality_job(
                    jobs, args.settings.model_quality, args.native_provider
                )

        if self.data_quality_schedule_name is not None:
            self._drift_alarms(self.data_quality_schedule_name)
        if self.model_quality_schedule_name is not None:
            self._quality_alarm(self.model_quality_schedule_name)
        for variant in args.endpoint.variant_names:
            self._latency_alarm(variant)
            self._error_alarm(variant)
        if monitoring.business_kpi is not None:
            self._kpi_alarm()

        self.dashboard_name = args.names.dashboard
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=self.dashboard_name,
            dashboard_body=dashboard_body(self, ctx.config.region),
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

    # --- Model Monitor jobs (their definitions: infra.monitoring.jobs) -------------------------------

    def _data_quality(self, jobs: MonitorJobs) -> str:
        """The record preprocessor, the data-quality job definition and its schedule; returns the schedule name."""
        args = self._args
        baseline = self.baseline
        assert baseline is not None
        monitoring = args.foundation.buckets["monitoring"]
        self.record_preprocessor = aws.s3.BucketObjectv2(
            f"{self._name}-record-preprocessor",
            bucket=monitoring.name,
            key=self._preprocessor_key,
            content_base64=base64.b64encode(self._preprocessor_script).decode("ascii"),
            content_type="text/x-python",
            server_side_encryption="aws:kms",
            kms_key_id=args.foundation.key_arn,
            tags=self._tags,
            # A new script is a new key; the old object stays for jobs already running with it.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        self.record_preprocessor_uri = pulumi.Output.concat("s3://", monitoring.name, "/", self._preprocessor_key)
        return data_quality_job(
            jobs, args.settings.data_quality, baseline, self.record_preprocessor, self.record_preprocessor_uri
        )

    def _role(self, watch_data: bool, watch_quality: bool) -> iam.ServiceRole:
        """The monitoring jobs' role: read the capture, baselines and labels; write the reports; publish metrics."""
        args = self._args
        ctx, model = args.context, args.names.model
        statements = monitoring_role_statements(
            args.foundation,
            model=model,
            capture_uri=args.endpoint.data_capture_uri,
            baseline=self.baseline if watch_data else None,
            preprocessor_key=self._preprocessor_key if watch_data else None,
            ground_truth_prefix=args.settings.model_quality.ground_truth_prefix if watch_quality else None,
            image_uri=analyzer_image_uri(ctx.config.region),
        )
        role = iam.service_role(
            f"{self._name}-role",
            naming=ctx.naming,
            thing=f"{model}-monitor",
            services=["sagemaker.amazonaws.com"],
            statements=statements,
            tags=self._tags,
            parent=self,
            source_account=args.foundation.account_id,
            description=f"{ctx.naming.prefix} Model Monitor jobs of {model}: read capture, write reports",
        )
        return role

    # --- Alarms (their definitions: infra.alarms) ---------------------------------------------------

    def _actions(self, retrain: bool) -> list[pulumi.Input[str]]:
        actions: list[pulumi.Input[str]] = [self._args.foundation.alerts_topic_arn]
        if retrain and self._args.settings.retraining.enabled:
            actions.append(self._args.foundation.retrain_topic_arn)
        return actions

    def _alarm(
        self, part: str, alarm_name: str, spec: alarms.AlarmSpec, *, retrain: bool = False, **extra: object
    ) -> aws.cloudwatch.MetricAlarm:
        """One alarm: alerts on ALARM and OK; the retrain topic too if ``retrain`` (and retraining is on)."""
        alarm = alarms.metric_alarm(
            f"{self._name}-{part}",
            alarm_name,
            spec,
            tags=self._tags,
            parent=self,
            alarm_actions=self._actions(retrain),
            ok_actions=[self._args.foundation.alerts_topic_arn],
            **extra,
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
        if retrain and self._args.settings.retraining.enabled:
            self.retraining_alarm_names.append(alarm_name)
            self.retraining_alarm_arns.append(alarm.arn)

    def drift_features(self) -> tuple[str, ...]:
        """The features with a drift alarm: ``driftAlarmFeatures``, or every feature of the spec."""
        return self._args.settings.data_quality.drift_alarm_features or tuple(self._args.spec.feature_names)

    def _drift_alarms(self, schedule_name: str) -> None:
        """One alarm per feature on its baseline drift distance, and the composite "model drift" alarm."""
        args, names = self._args, self._args.names
        threshold = args.settings.data_quality.drift_threshold
        feature_alarms = []
        for feature in self.drift_features():
            alarm_name = names.drift_alarm(feature)
            spec = alarms.feature_drift(names.model, feature, threshold, args.endpoint.name, schedule_name)
            feature_alarms.append(self._alarm(f"drift-{feature}", alarm_name, spec))
            self.drift_alarm_names.append(alarm_name)
        if not feature_alarms:
            return
        composite_name = names.model_drift_alarm
        # Built from the feature alarms' names (outputs), so it is created after them.
        rule = pulumi.Output.all(*[a.name for a in feature_alarms]).apply(alarms.model_drift_rule)
        composite = aws.cloudwatch.CompositeAlarm(
            f"{self._name}-model-drift",
            alarm_name=composite_name,
            alarm_rule=rule,
            alarm_description=alarms.model_drift_description(names.model, args.settings.retraining.enabled),
            alarm_actions=self._actions(retrain=True),
            ok_actions=[args.foundation.alerts_topic_arn],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._remember("model-drift", composite_name, composite, retrain=True)

    def quality_threshold(self) -> float:
        """The live metric's alarm threshold: ``modelQuality.metricThreshold``, else the training gate's."""
        own = self._args.settings.model_quality.metric_threshold
        return own if own is not None else self._args.quality_gate.threshold

    def latency_threshold_ms(self) -> int:
        """The sustained latency alarms' threshold: ``endpointAlarms``, else the rollout's rollback threshold."""
        own = self._args.settings.endpoint_alarms.latency_p99_ms_threshold
        return own if own is not None else self._args.endpoint.latency_p99_ms_threshold

    def error_rate_threshold(self) -> float:
        """The sustained 5xx alarms' threshold: ``endpointAlarms``, else the rollout's rollback threshold."""
        own = self._args.settings.endpoint_alarms.error_rate_percent_threshold
        return own if own is not None else self._args.endpoint.error_rate_percent_threshold

    def _quality_alarm(self, schedule_name: str) -> None:
        args, names = self._args, self._args.names
        metric = args.quality_gate.metric_name
        spec = alarms.model_quality(names.model, metric, self.quality_threshold(), args.endpoint.name, schedule_name)
        self._alarm("model-quality", names.quality_alarm(metric), spec, retrain=True)

    def _latency_alarm(self, variant: str) -> None:
        args, names = self._args, self._args.names
        spec = alarms.sustained_latency(names.model, args.endpoint.name, variant, self.latency_threshold_ms())
        self._alarm(f"{variant}-latency", names.latency_alarm(variant), spec)

    def _error_alarm(self, variant: str) -> None:
        args, names = self._args, self._args.names
        spec = alarms.sustained_error_rate(names.model, args.endpoint.name, variant, self.error_rate_threshold())
        self._alarm(f"{variant}-errors", names.errors_alarm(variant), spec)

    def _kpi_alarm(self) -> None:
        args, names = self._args, self._args.names
        kpi = args.settings.business_kpi
        assert kpi is not None
        spec = alarms.business_kpi(
            names.model,
            namespace=kpi.namespace,
            metric_name=kpi.metric_name,
            dimensions=dict(kpi.dimensions),
            statistic=kpi.statistic,
            comparison=kpi.comparison,
            threshold=kpi.threshold,
            period_seconds=kpi.period_seconds,
            evaluation_periods=kpi.evaluation_periods,
        )
        # A KPI that stops arriving alerts too (INSUFFICIENT_DATA).
        self._alarm(
            "business-kpi",
            names.kpi_alarm(kpi.metric_name),
            spec,
            insufficient_data_actions=[args.foundation.alerts_topic_arn],
        )
