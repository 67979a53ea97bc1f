"""Monitoring: drift and quality monitors, CloudWatch alarms and a dashboard for one served model.

Per model with an endpoint (see :class:`ModelMonitoring`), one of two engines (``monitoring.engine``):

- **platform** (default; :mod:`infra.monitoring.platform_monitor`): a small SageMaker pipeline whose one
  processing step runs the platform's drift job over the last ``monitoring.platform.windowHours`` of the
  endpoint's data capture, against the served version's drift baseline (registered with the model version by
  the training pipeline), started by EventBridge Scheduler on ``monitoring.platform.schedule``. It publishes
  per-feature drift, data-quality, positive-rate and (with ground truth) model-quality metrics to
  :data:`infra.alarms.PLATFORM_METRICS_NAMESPACE`, plus ``RecordsAnalyzed`` on every run (the heartbeat), and
  writes a JSON report per run under ``s3://<monitoring>/drift-reports/`` (the catalog's ``drift_reports``
  table).
- **model-monitor** (:mod:`infra.monitoring.jobs`; accounts that still have SageMaker Model Monitor, closed to
  new customers): an ``aws.sagemaker.DataQualityJobDefinition`` comparing the captured requests (through the
  record preprocessor :func:`mlops.monitoring.build_record_preprocessor`, published KMS-encrypted at
  ``s3://<monitoring>/<model>/record-preprocessor/<content hash>/record_preprocessor.py``) with the served
  version's baselines, and a ``pulumi_aws_native.sagemaker.ModelQualityJobDefinition`` joining captured
  predictions with ground truth, each run by an ``aws.sagemaker.MonitoringSchedule``. Definition names carry a
  digest of their inputs, so a new baseline creates a new definition before the old one goes.

**Alarms** (definitions in :mod:`infra.alarms`): feature drift (one per feature), the composite "model drift"
(OR of those) and "drift not measured" (any of them without data), model quality below threshold, the
platform monitor's heartbeat ("monitor not reporting"), p99 latency and 5xx error rate per production
variant, the business KPI. Every alarm notifies the ``alerts`` topic; the composite drift and the
model-quality alarms also publish to the ``retrain`` topic (the retraining responder acts on them) when
retraining is enabled. The heartbeat and "drift not measured" never retrain: a broken monitor is no evidence
against the model. **Dashboard**: endpoint metrics, the monitor's metrics, KPI and alarm states.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws
import pulumi_aws_native as aws_native

from infra import alarms, iam
from infra.alarms import DATA_METRICS_NAMESPACE, MODEL_METRICS_NAMESPACE
from infra.foundation import Foundation
from infra.model_versions import DeployableVersion
from infra.monitoring.cadence import period_seconds
from infra.monitoring.dashboard import dashboard_body
from infra.monitoring.iam import monitoring_role_statements, split_s3_uri
from infra.monitoring.jobs import MonitorJobs, data_quality_job, model_quality_job
from infra.monitoring.platform_monitor import PlatformMonitor, PlatformMonitorArgs, platform_monitor
from infra.monitoring.settings import MonitoringSettings
from infra.naming import Kind, ModelNames
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
    - ``native_provider`` (from :func:`native_provider`), required when Model Monitor's model quality is
      monitored (engine ``model-monitor``);
    - ``code_uri``: the training pipeline's published code bundle (:attr:`infra.training.TrainingPipeline.code_uri`),
      whose ``monitor.py`` and ``mlops`` package the platform engine's job runs; required with engine ``platform``.
    """

    context: StackContext
    foundation: Foundation
    names: ModelNames
    settings: MonitoringSettings
    spec: FeatureSpec
    endpoint: ServedEndpoint
    quality_gate: QualityGate
    native_provider: pulumi.ProviderResource | None = None
    code_uri: pulumi.Input[str] | None = None


class ModelMonitoring(pulumi.ComponentResource):
    """The drift and quality monitor (either engine), alarms and a dashboard for one model's endpoint.

    Outputs (attributes): ``alarm_names`` (every alarm), ``retraining_alarm_names`` and
    ``retraining_alarm_arns`` (the alarms that publish to the retrain topic: composite drift and model
    quality; empty when ``monitoring.retraining.enabled`` is false), ``drift_alarm_names`` (per feature),
    ``heartbeat_alarm_name`` (engine platform), ``dashboard_name``, ``monitor_period_seconds`` (of the drift
    monitor: its alarms' period), ``role_arn`` (``None`` without monitors). Engine platform:
    ``monitoring_pipeline_name`` and ``monitoring_schedule_name``. Engine model-monitor:
    ``data_quality_schedule_name`` / ``model_quality_schedule_name`` (``None`` when that monitor is off) and
    ``record_preprocessor_uri`` (``None`` without a data-quality monitor).

    Raises ``ValueError`` when Model Monitor's model quality is monitored without ``native_provider``, or the
    platform engine without ``code_uri``; ``infra.naming.NamingError`` at preview when a derived name breaks
    AWS's limits.
    """

    names: ModelNames
    endpoint: ServedEndpoint
    settings: MonitoringSettings
    quality_gate: QualityGate
    alarms: dict[str, aws.cloudwatch.MetricAlarm | aws.cloudwatch.CompositeAlarm]
    alarm_names: list[str]
    drift_alarm_names: list[str]
    retraining_alarm_names: list[str]
    retraining_alarm_arns: list[pulumi.Output[str]]
    heartbeat_alarm_name: str | None
    dashboard: aws.cloudwatch.Dashboard
    dashboard_name: str
    engine: str
    monitor_period_seconds: int | None
    quality_period_seconds: int | None
    platform: PlatformMonitor | None
    monitoring_pipeline_name: str | None
    monitoring_schedule_name: str | None
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
        self._name, self._args, self.names = name, args, args.names
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

        self.heartbeat_alarm_name = None
        self.engine = monitoring.engine
        self.monitor_period_seconds = None
        self.quality_period_seconds = None
        self.platform = None
        self.monitoring_pipeline_name = None
        self.monitoring_schedule_name = None

        if monitoring.engine == "platform":
            self._platform_engine()
        else:
            self._model_monitor_engine()

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
                "heartbeat_alarm_name": self.heartbeat_alarm_name,
                "monitoring_pipeline_name": self.monitoring_pipeline_name,
                "monitoring_schedule_name": self.monitoring_schedule_name,
                "data_quality_schedule_name": self.data_quality_schedule_name,
                "model_quality_schedule_name": self.model_quality_schedule_name,
                "role_arn": self.role_arn,
                "record_preprocessor_uri": self.record_preprocessor_uri,
            }
        )

    # --- engines ------------------------------------------------------------------------------------

    def _captured(self) -> tuple[bool, bool]:
        """(watch drift, watch quality): asked for, and the endpoint captures what the monitor reads."""
        captured = self._args.endpoint.data_capture_uri is not None
        monitoring = self._args.settings
        return captured and monitoring.data_quality.enabled, captured and monitoring.model_quality.enabled

    def _platform_engine(self) -> None:
        """The monitoring pipeline and its schedule, the heartbeat, drift and quality alarms."""
        args, model = self._args, self._args.names.model
        watch_drift, watch_quality = self._captured()
        if not (watch_drift or watch_quality):
            return
        self.baseline = args.context.versions.resolve(args.names.package_group, args.endpoint.served_version_arn)
        if self.baseline is None or not self.baseline.data_statistics_uri:
            pulumi.log.warn(
                f"model '{model}': the served version has no drift baseline (DriftCheckBaselines.ModelDataQuality."
                "Statistics); no drift monitor or monitoring alarms",
                resource=self,
            )
            return
        if args.code_uri is None:
            raise ValueError(
                f"model '{model}': monitoring.engine=platform needs the training pipeline's code bundle "
                "(ModelMonitoringArgs.code_uri)"
            )
        capture = args.endpoint.data_capture_uri
        assert capture is not None
        self.platform = platform_monitor(
            PlatformMonitorArgs(
                parent=self,
                name=self._name,
                names=args.names,
                foundation=args.foundation,
                settings=args.settings,
                feature_spec=args.spec.name,
                endpoint_name=args.endpoint.name,
                capture_uri=capture,
                code_uri=args.code_uri,
                baseline_uri=self.baseline.data_statistics_uri,
                tags=self._tags,
            )
        )
        self.role_arn = self.platform.role.arn
        self.monitoring_pipeline_name = self.platform.pipeline_name
        self.monitoring_schedule_name = self.platform.schedule_name
        period = args.settings.platform.period_seconds
        self.monitor_period_seconds = self.quality_period_seconds = period
        self._heartbeat_alarm(period)
        endpoint = args.endpoint.name
        if watch_drift:
            self._drift_alarms(lambda feature: alarms.platform_feature_drift(model, feature, endpoint, period))
        if watch_quality:
            metric = args.quality_gate.metric_name
            self._quality_alarm(
                alarms.platform_model_quality(model, metric, self.quality_threshold(), endpoint, period)
            )

    def _model_monitor_engine(self) -> None:
        """Model Monitor's data- and model-quality jobs and schedules, drift and quality alarms."""
        args, model = self._args, self._args.names.model
        ctx, monitoring = args.context, args.settings
        watch_data, watch_quality = self._captured()
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
        if not (watch_data or watch_quality):
            return
        role = self._role(watch_data, watch_quality)
        self.role_arn = role.arn
        jobs = MonitorJobs(
            parent=self,
            name=self._name,
            names=args.names,
            foundation=args.foundation,
            endpoint_name=args.endpoint.name,
            role=role,
            image=analyzer_image_uri(ctx.config.region),
            tags=self._tags,
        )
        endpoint = args.endpoint.name
        if watch_data:
            dq_schedule = self.data_quality_schedule_name = self._data_quality(jobs)
            dq_period = period_seconds(monitoring.data_quality.schedule, model_monitor=True)
            self.monitor_period_seconds = dq_period
            threshold = monitoring.data_quality.drift_threshold
            self._drift_alarms(
                lambda feature: alarms.feature_drift(model, feature, threshold, endpoint, dq_schedule, dq_period)
            )
        if watch_quality:
            assert args.native_provider is not None
            mq_schedule = self.model_quality_schedule_name = model_quality_job(
                jobs, monitoring.model_quality, args.native_provider
            )
            mq_period = period_seconds(monitoring.model_quality.schedule, model_monitor=True)
            self.quality_period_seconds = mq_period
            metric = args.quality_gate.metric_name
            self._quality_alarm(
                alarms.model_quality(model, metric, self.quality_threshold(), endpoint, mq_schedule, mq_period)
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

    def _drift_alarms(self, feature_alarm: Callable[[str], alarms.AlarmSpec]) -> None:
        """One alarm per feature (``feature_alarm`` says what it watches), the composite "model drift" alarm
        (retrains) and the composite "drift not measured" alarm (alerts only)."""
        args, names = self._args, self._args.names
        feature_alarms = []
        for feature in self.drift_features():
            alarm_name = names.drift_alarm(feature)
            feature_alarms.append(self._alarm(f"drift-{feature}", alarm_name, feature_alarm(feature)))
            self.drift_alarm_names.append(alarm_name)
        if not feature_alarms:
            return
        # Built from the feature alarms' names (outputs), so they are created after them.
        members = pulumi.Output.all(*[a.name for a in feature_alarms])
        composite_name = names.model_drift_alarm
        composite = aws.cloudwatch.CompositeAlarm(
            f"{self._name}-model-drift",
            alarm_name=composite_name,
            alarm_rule=members.apply(alarms.model_drift_rule),
            alarm_description=alarms.model_drift_description(names.model, args.settings.retraining.enabled),
            alarm_actions=self._actions(retrain=True),
            ok_actions=[args.foundation.alerts_topic_arn],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._remember("model-drift", composite_name, composite, retrain=True)
        unmeasured_name = names.naming.name(f"{names.model}-drift-unmeasured", Kind.ALARM)
        unmeasured = aws.cloudwatch.CompositeAlarm(
            f"{self._name}-drift-unmeasured",
            alarm_name=unmeasured_name,
            alarm_rule=members.apply(alarms.drift_unmeasured_rule),
            alarm_description=alarms.drift_unmeasured_description(names.model),
            # On-call only: a monitor that measures nothing is no evidence against the model.
            alarm_actions=self._actions(retrain=False),
            ok_actions=[args.foundation.alerts_topic_arn],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._remember("drift-unmeasured", unmeasured_name, unmeasured, retrain=False)

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

    def _quality_alarm(self, spec: alarms.AlarmSpec) -> None:
        """The live training metric below its threshold: retrains; a day without any quality datapoint turns
        it INSUFFICIENT_DATA, which alerts on-call (labels or monitor stopped)."""
        args, names = self._args, self._args.names
        self._alarm(
            "model-quality",
            names.quality_alarm(args.quality_gate.metric_name),
            spec,
            retrain=True,
            insufficient_data_actions=[args.foundation.alerts_topic_arn],
        )

    def _heartbeat_alarm(self, period: int) -> None:
        """engine=platform: "monitor not reporting" (no analyzed record for a few periods). Alerts on-call, never
        retrains: the responder is configured only with the drift and quality alarms."""
        args, names = self._args, self._args.names
        self.heartbeat_alarm_name = names.naming.name(f"{names.model}-monitor-not-reporting", Kind.ALARM)
        spec = alarms.monitor_heartbeat(names.model, args.endpoint.name, period)
        self._alarm("monitor-heartbeat", self.heartbeat_alarm_name, spec)

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
