"""Settings of a model's monitoring (stack key ``models[].monitoring``) and the checks that involve its endpoint.

Two engines watch a served model (``monitoring.engine``):

- ``platform`` (default): the platform's own drift and quality job, a small SageMaker pipeline started on
  ``monitoring.platform.schedule`` (:mod:`infra.monitoring.platform_monitor`). Works on every account.
- ``model-monitor``: SageMaker Model Monitor's data- and model-quality schedules (:mod:`infra.monitoring.jobs`),
  for accounts that still have it: AWS closed Model Monitor to new customers ("Amazon SageMaker Model Monitor
  availability change").

``dataQuality`` and ``modelQuality`` hold what both engines share (on/off, alarmed features, ground truth,
probability and metric thresholds) and Model Monitor's own keys (its schedules, instances, time limits and
baseline drift distance); ``platform`` holds the platform engine's. A key of the other engine is refused, so a
stack never carries a setting that silently does nothing. ``retraining`` is read by the responders too: it says
whether the monitoring alarms start retraining at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from infra.monitoring.cadence import DAY, HOUR, CadenceError, describe, period_seconds
from infra.types import CronExpression, InstanceType, KeyPrefix, ScheduleExpression, Section

if TYPE_CHECKING:
    from infra.serving.settings import ServingSettings
    from mlops.features.spec import FeatureSpec

Engine = Literal["platform", "model-monitor"]
"""Who computes drift and quality: the platform's own job, or SageMaker Model Monitor (existing accounts)."""

DATA_QUALITY_RUNTIME_CAP = 3600
"""The pulumi-aws (terraform) data-quality job definition validates ``max_runtime_in_seconds`` to 1..3600
(``IntBetween(1, 3600)`` in the provider's schema), whatever the schedule; AWS allows up to the period."""
PLATFORM_MIN_PERIOD = 15 * 60
PLATFORM_MAX_PERIOD = DAY
"""The platform job runs every 15 minutes at most often (a processing job takes minutes to start) and at least
daily (its alarms span three periods, and CloudWatch evaluates at most seven days)."""

_MODEL_MONITOR_KEYS = {
    "dataQuality": ("schedule", "instanceType", "maxRuntimeSeconds", "driftThreshold"),
    "modelQuality": ("schedule", "instanceType", "maxRuntimeSeconds"),
}
"""Keys of ``dataQuality``/``modelQuality`` that only Model Monitor reads (camelCase, as in the stack file)."""


def _model_monitor_cadence(expression: str) -> str:
    try:
        period_seconds(expression, model_monitor=True)
    except CadenceError as error:
        raise ValueError(f"Model Monitor schedule {error}") from None
    return expression


class DataQualityMonitorSettings(Section):
    """Feature drift: on/off and alarmed features (both engines); Model Monitor's data-quality schedule."""

    enabled: bool = Field(default=True, description="Monitor feature drift (both engines).")
    drift_alarm_features: tuple[str, ...] = Field(
        default=(),
        description="Features whose drift gets an alarm (both engines); empty: every feature of the model's "
        "feature spec.",
    )
    schedule: CronExpression = Field(
        default="cron(0 * ? * * *)",
        description="engine=model-monitor: schedule of the data-quality job, cron(0 * ? * * *) hourly, "
        "cron(0 H ? * * *) daily or cron(0 H/K ? * * *) every K hours.",
    )
    instance_type: InstanceType = Field(
        default="ml.m5.large", description="engine=model-monitor: instance type of the data-quality job."
    )
    max_runtime_seconds: int = Field(
        default=3600,
        ge=60,
        le=86400,
        description="engine=model-monitor: time limit of each data-quality job; at most the schedule's period "
        "and 3600 (the provider's limit).",
    )
    drift_threshold: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="engine=model-monitor: alarm when a feature's baseline drift distance exceeds this.",
    )

    @field_validator("schedule")
    @classmethod
    def _model_monitor_schedule(cls, value: str) -> str:
        return _model_monitor_cadence(value)

    @field_validator("drift_alarm_features")
    @classmethod
    def _each_feature_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # One alarm per feature, named after it: a feature listed twice is two resources with one name, which
        # Pulumi refuses (duplicate URN) and the mocks do not notice.
        twice = sorted({f for f in value if value.count(f) > 1})
        if twice:
            raise ValueError(f"lists feature(s) {twice} more than once; give each feature once")
        return value

    @model_validator(mode="after")
    def _runtime_within_period(self) -> DataQualityMonitorSettings:
        period = period_seconds(self.schedule, model_monitor=True)
        limit = min(period, DATA_QUALITY_RUNTIME_CAP)
        if self.max_runtime_seconds > limit:
            raise ValueError(
                f"maxRuntimeSeconds={self.max_runtime_seconds} is longer than a data-quality job on schedule "
                f"'{self.schedule}' (every {describe(period)}) may run: AWS caps a monitoring job at its "
                f"schedule's period and the provider caps data-quality jobs at {DATA_QUALITY_RUNTIME_CAP} s; "
                f"allowed: 60..{limit}"
            )
        return self


class ModelQualityMonitorSettings(Section):
    """Model quality: on/off, ground truth and thresholds (both engines); Model Monitor's model-quality schedule."""

    enabled: bool = Field(default=True, description="Monitor model quality against ground truth labels (both engines).")
    ground_truth_prefix: KeyPrefix = Field(
        default="ground-truth/",
        description="Prefix in the monitoring bucket where labelled outcomes land (under <model>/), ending with '/'.",
    )
    probability_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Probability at or above which a prediction counts as positive."
    )
    metric_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Alarm when the live metric (training.metricName) falls below this; null: training.metricThreshold.",
    )
    schedule: CronExpression = Field(
        default="cron(0 0 ? * * *)",
        description="engine=model-monitor: schedule of the model-quality job (daily by default: labels lag); "
        "same forms as dataQuality.schedule.",
    )
    instance_type: InstanceType = Field(
        default="ml.m5.large", description="engine=model-monitor: instance type of the model-quality job."
    )
    max_runtime_seconds: int = Field(
        default=1800,
        ge=60,
        le=86400,
        description="engine=model-monitor: time limit of each model-quality job; at most half the schedule's "
        "period (1800 for hourly).",
    )

    @field_validator("schedule")
    @classmethod
    def _model_monitor_schedule(cls, value: str) -> str:
        return _model_monitor_cadence(value)

    @model_validator(mode="after")
    def _runtime_within_period(self) -> ModelQualityMonitorSettings:
        # AWS docs ("Schedule model quality monitoring jobs"): an execution's runtime is divided between the
        # ground-truth merge job and the monitoring job, so an hourly job may take at most 1800 s. Half the
        # period is the same rule for longer periods.
        period = period_seconds(self.schedule, model_monitor=True)
        limit = period // 2
        if self.max_runtime_seconds > limit:
            raise ValueError(
                f"maxRuntimeSeconds={self.max_runtime_seconds} is longer than a model-quality job on schedule "
                f"'{self.schedule}' (every {describe(period)}) may run: AWS splits the period between the "
                f"ground-truth merge job and the monitoring job; allowed: 60..{limit}"
            )
        return self


SegmentColumn = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")]


class DriftThreshold(Section):
    """The drift threshold of one feature (an effect size: the drift job's own default applies to the others)."""

    feature: str = Field(description="A feature of the model's feature spec.")
    threshold: float = Field(
        gt=0, le=10, description="Drift score at or above which the feature counts as drifted (0 < t <= 10)."
    )


class PlatformMonitorSettings(Section):
    """engine=platform: the platform's drift and quality job, one SageMaker pipeline run per period."""

    schedule: ScheduleExpression = Field(
        default="cron(0 * ? * * *)",
        description="EventBridge Scheduler expression starting the job: rate(N minutes|hours|days), "
        "cron(M * ? * * *) hourly, cron(M H ? * * *) daily or cron(M H/K ? * * *) every K hours "
        "(every 15 minutes to daily).",
    )
    window_hours: int = Field(
        default=1,
        ge=1,
        le=168,
        description="Hours of captured requests each run analyzes, ending when the run starts; at least the "
        "schedule's period (no capture left unread).",
    )
    instance_type: InstanceType = Field(default="ml.m5.large", description="Instance type of the job.")
    max_runtime_seconds: int = Field(
        default=1800,
        ge=60,
        le=86400,
        description="Time limit of each run; at most the schedule's period (a run ends before the next starts).",
    )
    drift_thresholds: tuple[DriftThreshold, ...] = Field(
        default=(),
        description="Per-feature drift thresholds overriding the job's defaults, e.g. "
        "[{feature: sessions, threshold: 0.25}]; each feature at most once.",
    )
    segments: tuple[SegmentColumn, ...] = Field(
        default=(),
        max_length=5,
        description="Names whose values get their own positive-rate and quality metrics, at most 5: features of "
        "the feature spec (the value the model scored, e.g. [plan_tier]; any request mode) or, with "
        "serving.requestMode=rows, raw request columns the spec reads (e.g. [plan]).",
    )

    @model_validator(mode="after")
    def _cadence(self) -> PlatformMonitorSettings:
        try:
            period = period_seconds(self.schedule)
        except CadenceError as error:
            raise ValueError(f"schedule {error}") from None
        if not PLATFORM_MIN_PERIOD <= period <= PLATFORM_MAX_PERIOD:
            raise ValueError(
                f"schedule '{self.schedule}' runs every {describe(period)}; allowed: every "
                f"{describe(PLATFORM_MIN_PERIOD)} to every {describe(PLATFORM_MAX_PERIOD)}"
            )
        if self.max_runtime_seconds > period:
            raise ValueError(
                f"maxRuntimeSeconds={self.max_runtime_seconds} is longer than the schedule's period "
                f"('{self.schedule}': every {describe(period)}); a run must end before the next starts; "
                f"allowed: 60..{period}"
            )
        if self.window_hours * HOUR < period:
            raise ValueError(
                f"windowHours={self.window_hours} is shorter than the schedule's period ('{self.schedule}': "
                f"every {describe(period)}): requests captured between two windows would never be analyzed; "
                f"allowed: {-(-period // HOUR)}..168"
            )
        features = [t.feature for t in self.drift_thresholds]
        twice = sorted({f for f in features if features.count(f) > 1})
        if twice:
            raise ValueError(f"driftThresholds lists feature(s) {twice} more than once; give each feature once")
        doubled = sorted({s for s in self.segments if self.segments.count(s) > 1})
        if doubled:
            raise ValueError(f"segments lists column(s) {doubled} more than once")
        return self

    @property
    def period_seconds(self) -> int:
        """Seconds between two runs (the schedule's period)."""
        return period_seconds(self.schedule)

    def threshold_overrides(self) -> dict[str, float]:
        """``driftThresholds`` as feature → threshold, sorted by feature (what the job receives)."""
        return {t.feature: t.threshold for t in sorted(self.drift_thresholds, key=lambda t: t.feature)}


class BusinessKpiSettings(Section):
    """A business metric the application publishes to CloudWatch, alarmed like the technical ones."""

    namespace: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^:].*$")] = Field(
        description="CloudWatch namespace the application publishes the KPI to (not AWS/...)."
    )
    metric_name: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        description="Metric name of the KPI."
    )
    dimensions: dict[str, str] = Field(default_factory=dict, description="Dimensions of the KPI metric.")
    statistic: Literal["Average", "Sum", "Minimum", "Maximum", "SampleCount"] = Field(
        default="Average", description="Statistic compared with the threshold."
    )
    comparison: Literal["below", "above"] = Field(
        default="below", description="Alarm when the KPI goes below or above the threshold."
    )
    threshold: float = Field(description="Alarm threshold of the KPI.")
    period_seconds: int = Field(default=3600, ge=60, le=86400, description="Period of the statistic (multiple of 60).")
    evaluation_periods: int = Field(default=3, ge=1, le=100, description="Consecutive breaching periods to alarm.")

    @field_validator("namespace")
    @classmethod
    def _not_aws(cls, value: str) -> str:
        if value.startswith("AWS/"):
            raise ValueError(f"namespace '{value}' is reserved for AWS services; use your application's namespace")
        return value

    @field_validator("period_seconds")
    @classmethod
    def _minute(cls, value: int) -> int:
        if value % 60:
            raise ValueError(f"periodSeconds={value} must be a multiple of 60")
        return value


class RetrainingSettings(Section):
    """What the retraining responder may do when a drift or quality alarm fires, and how often it may start the
    pipeline at all: the cooldown and the daily cap bound alarm-driven and data-driven starts
    (``training.retrainOnNewData``) together, through one ledger per model."""

    enabled: bool = Field(default=True, description="Start the training pipeline when a drift or quality alarm fires.")
    cooldown_minutes: int = Field(
        default=360,
        ge=0,
        le=10080,
        description="No new responder-started execution (a drift or quality alarm, or new data with "
        "training.retrainOnNewData) within this many minutes of the last.",
    )
    max_per_day: int = Field(
        default=2,
        ge=1,
        le=24,
        description="Most responder-started executions per UTC day, alarms and new data together.",
    )


class EndpointAlarmSettings(Section):
    """Thresholds of the sustained per-variant alarms; unset, they are the rollout's rollback thresholds."""

    latency_p99_ms_threshold: int | None = Field(
        default=None,
        ge=1,
        le=60000,
        description="Alarm when a variant's p99 ModelLatency stays above this (ms); null: serving.rollout.latencyP99MsThreshold.",
    )
    error_rate_percent_threshold: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="Alarm when a variant's 5xx errors stay above this percent of invocations; null: "
        "serving.rollout.errorRatePercentThreshold.",
    )


class MonitoringSettings(Section):
    """A model's monitoring: the drift and quality engine, alarms, dashboard and alarm-driven retraining."""

    engine: Engine = Field(
        default="platform",
        description="platform (the platform's own drift and quality job; any account) or model-monitor "
        "(SageMaker Model Monitor, closed to new AWS customers: only for accounts that still have it).",
    )
    platform: PlatformMonitorSettings = Field(
        default_factory=lambda: PlatformMonitorSettings(),
        description="engine=platform: schedule, window, instance, time limit, drift thresholds and segments of "
        "the drift and quality job.",
    )
    data_quality: DataQualityMonitorSettings = Field(
        default_factory=lambda: DataQualityMonitorSettings(), description="Data-quality (feature drift) monitoring."
    )
    model_quality: ModelQualityMonitorSettings = Field(
        default_factory=lambda: ModelQualityMonitorSettings(), description="Model-quality monitoring."
    )
    endpoint_alarms: EndpointAlarmSettings = Field(
        default_factory=lambda: EndpointAlarmSettings(),
        description="Sustained latency and 5xx alarms per production variant, for on-call.",
    )
    business_kpi: BusinessKpiSettings | None = Field(default=None, description="Business KPI alarm; null: none.")
    retraining: RetrainingSettings = Field(
        default_factory=lambda: RetrainingSettings(),
        description="Alarm-driven retraining, and the cooldown and daily cap every responder-started run shares.",
    )

    @model_validator(mode="after")
    def _one_engines_keys(self) -> MonitoringSettings:
        """Keys of the engine not in use are refused: they would silently do nothing."""
        if self.engine == "model-monitor":
            if "platform" in self.model_fields_set:
                raise ValueError(
                    "monitoring.platform configures engine=platform, but monitoring.engine='model-monitor'; "
                    "remove monitoring.platform or set monitoring.engine=platform"
                )
            return self
        stray = [
            f"monitoring.{section}.{key}"
            for section, model in (("dataQuality", self.data_quality), ("modelQuality", self.model_quality))
            for key in _MODEL_MONITOR_KEYS[section]
            if _field_name(key) in model.model_fields_set
        ]
        if stray:
            raise ValueError(
                f"{', '.join(stray)} configure(s) Model Monitor, but monitoring.engine='platform': remove them "
                "(the platform job runs on monitoring.platform.schedule, instanceType and maxRuntimeSeconds, "
                "with per-feature monitoring.platform.driftThresholds) or set monitoring.engine=model-monitor"
            )
        return self


def _field_name(key: str) -> str:
    """camelCase stack key → snake_case field name (``maxRuntimeSeconds`` → ``max_runtime_seconds``)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


class _ColumnProbe(Mapping[str, Any]):
    """A raw record that answers every column with ``"1"`` and remembers which columns were read.

    Feature specs declare their features, not the raw columns their transform reads; running the (pure)
    transform on this probe tells them apart without a sample of real data.
    """

    VALUE = "1"

    def __init__(self) -> None:
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.read.append(key)
        return self.VALUE

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def raw_columns(spec: FeatureSpec) -> tuple[str, ...] | None:
    """The raw columns ``spec``'s transform reads, in first-read order; ``None`` if it fails on a probe record."""
    probe = _ColumnProbe()
    try:
        spec.transform(probe)
    except Exception:  # any failure means: cannot tell (the caller says so)
        return None
    return tuple(dict.fromkeys(probe.read))


def monitoring_problems(
    model: str,
    spec_name: str,
    monitoring: MonitoringSettings,
    serving: ServingSettings | None,
    feature_names: list[str],
) -> list[str]:
    """Invalid monitoring settings of ``model`` given its feature spec and endpoint, each naming the model and
    the key."""
    where = f"model '{model}'"
    problems: list[str] = []
    unknown = sorted(set(monitoring.data_quality.drift_alarm_features) - set(feature_names))
    if unknown:
        problems.append(
            f"{where}: monitoring.dataQuality.driftAlarmFeatures lists {unknown}, not features of "
            f"featureSpec '{spec_name}'; allowed: {feature_names}"
        )
    if monitoring.engine == "platform":
        entity_mode = serving is not None and serving.request_mode == "entity"
        problems += _platform_problems(where, spec_name, monitoring.platform, feature_names, entity_mode=entity_mode)
    if serving is None:
        return problems
    reader = "the platform's drift job" if monitoring.engine == "platform" else "Model Monitor"
    monitors = (("dataQuality", monitoring.data_quality), ("modelQuality", monitoring.model_quality))
    for key, monitor in monitors:
        if not monitor.enabled:
            continue
        if serving.strategy == "serverless":
            problems.append(
                f"{where}: monitoring.{key}.enabled=true needs captured data, which serverless endpoints "
                f"cannot produce; set monitoring.{key}.enabled=false"
            )
        elif not serving.data_capture.enabled:
            problems.append(
                f"{where}: monitoring.{key}.enabled=true needs serving.dataCapture.enabled=true "
                f"({reader} reads the captured requests)"
            )
    return problems


def _platform_problems(
    where: str, spec_name: str, platform: PlatformMonitorSettings, feature_names: list[str], *, entity_mode: bool
) -> list[str]:
    problems: list[str] = []
    unknown = sorted({t.feature for t in platform.drift_thresholds} - set(feature_names))
    if unknown:
        problems.append(
            f"{where}: monitoring.platform.driftThresholds names {unknown}, not features of featureSpec "
            f"'{spec_name}'; allowed: {feature_names}"
        )
    problems += _segment_problems(where, spec_name, platform.segments, feature_names, entity_mode=entity_mode)
    return problems


def _segment_problems(
    where: str, spec_name: str, segments: tuple[str, ...], feature_names: list[str], *, entity_mode: bool
) -> list[str]:
    """Segments name features (the drift job reads the scored value, in either request mode) or, in rows mode, raw
    columns the spec's transform reads. An entity-mode endpoint's captured requests hold entity ids, not raw
    columns: the features (from the response) are all there is to segment by."""
    from mlops.features import get_spec

    others = [s for s in segments if s not in feature_names]
    if not others:
        return []
    if entity_mode:
        return [
            f"{where}: monitoring.platform.segments lists {others}, not features of featureSpec '{spec_name}': with "
            "serving.requestMode=entity the captured requests hold entity ids, not raw columns, so segments name "
            f"features (read from the endpoint's answers); allowed: {feature_names}"
        ]
    columns = raw_columns(get_spec(spec_name))
    if columns is None:
        return [
            f"{where}: monitoring.platform.segments lists {others}, not features of featureSpec '{spec_name}', and "
            "they cannot be checked as raw columns: its transform fails on a probe record, so its raw columns are "
            f"unknown; allowed: the features {feature_names}"
        ]
    outside = [s for s in others if s not in columns]
    if outside:
        return [
            f"{where}: monitoring.platform.segments lists {outside}, neither features nor raw columns of featureSpec "
            f"'{spec_name}'; allowed: features {feature_names} or raw columns {list(columns)}"
        ]
    return []
