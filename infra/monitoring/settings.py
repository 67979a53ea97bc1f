"""Settings of a model's monitoring (stack key ``models[].monitoring``) and the checks that involve its endpoint.

``retraining`` is read by the responders too: it says whether the monitoring alarms start retraining at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from infra.types import CronExpression, InstanceType, KeyPrefix, Section

if TYPE_CHECKING:
    from infra.serving.settings import ServingSettings


class DataQualityMonitorSettings(Section):
    """Model Monitor data-quality schedule: drift of captured features against the training baseline."""

    enabled: bool = Field(default=True, description="Run the data-quality (feature drift) schedule.")
    schedule: CronExpression = Field(
        default="cron(0 * ? * * *)", description="Schedule of the monitoring job (hourly or daily cron expression)."
    )
    instance_type: InstanceType = Field(default="ml.m5.large", description="Instance type of the monitoring job.")
    max_runtime_seconds: int = Field(default=3600, ge=60, le=86400, description="Time limit of each monitoring job.")
    drift_alarm_features: tuple[str, ...] = Field(
        default=(),
        description="Features whose drift metric gets an alarm; empty: every feature of the model's feature spec.",
    )
    drift_threshold: float = Field(
        default=0.1, gt=0, le=1, description="Alarm when a feature's baseline drift distance exceeds this."
    )


class ModelQualityMonitorSettings(Section):
    """Model Monitor model-quality schedule: predictions joined with ground truth labels."""

    enabled: bool = Field(default=True, description="Run the model-quality schedule (needs ground truth labels).")
    schedule: CronExpression = Field(
        default="cron(0 0 ? * * *)", description="Schedule of the monitoring job (daily by default: labels lag)."
    )
    instance_type: InstanceType = Field(default="ml.m5.large", description="Instance type of the monitoring job.")
    max_runtime_seconds: int = Field(default=3600, ge=60, le=86400, description="Time limit of each monitoring job.")
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
    """What the retraining responder may do when a drift or quality alarm fires."""

    enabled: bool = Field(default=True, description="Start the training pipeline when a drift or quality alarm fires.")
    cooldown_minutes: int = Field(
        default=360, ge=0, le=10080, description="No new alarm-driven execution within this many minutes of the last."
    )
    max_per_day: int = Field(default=2, ge=1, le=24, description="Most alarm-driven executions per UTC day.")


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
    """A model's monitoring: Model Monitor schedules, alarms, dashboard and alarm-driven retraining."""

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
        default_factory=lambda: RetrainingSettings(), description="Alarm-driven retraining limits."
    )


def monitoring_problems(
    model: str,
    spec_name: str,
    monitoring: MonitoringSettings,
    serving: ServingSettings | None,
    feature_names: list[str],
) -> list[str]:
    """Invalid monitoring settings of ``model`` given its endpoint, each naming the model and the key."""
    where = f"model '{model}'"
    problems: list[str] = []
    unknown = sorted(set(monitoring.data_quality.drift_alarm_features) - set(feature_names))
    if unknown:
        problems.append(
            f"{where}: monitoring.dataQuality.driftAlarmFeatures lists {unknown}, not features of "
            f"featureSpec '{spec_name}'; allowed: {feature_names}"
        )
    if serving is None:
        return problems
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
                "(Model Monitor reads the captured requests)"
            )
    return problems
