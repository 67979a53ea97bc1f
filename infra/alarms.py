"""Every alarm the platform defines, in one place: what it watches, its threshold shape and its runbook entry.

The layers own *when* an alarm exists and *who* hears it; this module owns *what* it is:

- the endpoint's **rollback alarms** (serving): 5xx rate over every production variant and the highest
  variant p99 latency, 1-minute periods, so SageMaker's deployment guardrails can roll an update back;
- the **sustained** per-variant latency and 5xx alarms (monitoring): 5-minute periods, for on-call;
- the **responders'** dead-letter queues holding a message and their functions failing (responders), so an
  event that retries could not handle reaches a human before SQS expires it;
- **drift** per feature, the composite **model drift** rule and its **drift not measured** twin, **model
  quality**, the monitor's own heartbeat (**monitor not reporting**) and the **business KPI** (monitoring), for
  either monitoring engine: the platform's own job (namespace :data:`PLATFORM_METRICS_NAMESPACE`) or SageMaker
  Model Monitor (``aws/sagemaker/Endpoints/...``).

No drift or quality alarm stays quiet when its monitor breaks: each says, in its builder, how it treats missing
data and why (a broken monitor shows as INSUFFICIENT_DATA or, for the heartbeat, as ALARM; never as OK, and
never as the last verdict kept forever).

Each builder returns an :class:`AlarmSpec` (summary, runbook anchor, the ``MetricAlarm`` arguments of the metric);
:func:`metric_alarm` turns one into a resource. To change an alarm, change its builder here and its entry in
``docs/runbook.md``; ``tests/unit/test_alarms.py`` and the monitoring tests check both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

RUNBOOK = "docs/runbook.md"
ANCHOR_DRIFT_COMPOSITE = "drift-composite"
ANCHOR_FEATURE_DRIFT = "feature-drift"
ANCHOR_MODEL_QUALITY = "model-quality"
ANCHOR_LATENCY = "latency-p99"
ANCHOR_ERRORS = "5xx-errors"
ANCHOR_KPI = "business-kpi"
ANCHOR_ROLLBACK_ERRORS = "rollback-5xx-rate"
ANCHOR_ROLLBACK_LATENCY = "rollback-p99-latency"
ANCHOR_MONITOR_HEARTBEAT = "monitor-not-reporting"
ANCHOR_DRIFT_UNMEASURED = "drift-not-measured"
ANCHOR_DEAD_LETTERS = "responder-dead-letters"
ANCHOR_RESPONDER_ERRORS = "responder-errors"

ENDPOINT_NAMESPACE = "AWS/SageMaker"
"""Endpoint invocation metrics (dimensions EndpointName, VariantName); ModelLatency is in microseconds."""
DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
"""Where Model Monitor's data-quality jobs of real-time endpoints publish (dimensions Endpoint, MonitoringSchedule)."""
MODEL_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
"""Where Model Monitor's model-quality jobs of real-time endpoints publish (same dimensions)."""
PLATFORM_METRICS_NAMESPACE = "MLOps/ModelMonitoring"
"""Where the platform's drift job publishes (``--metrics-namespace``). One fixed namespace for every stack: the
``Endpoint`` dimension (``<project>-<env>-<model>``) already tells stacks apart, the job's local command can
default to it, and the job's role may publish to this namespace only (the ``cloudwatch:namespace`` condition)."""

# The platform job's metrics (dimensions Model and Endpoint on all; the extra ones in brackets).
RECORDS_ANALYZED = "RecordsAnalyzed"
"""Rows analyzed in the window; published by every run, 0 included: the monitor's heartbeat."""
MALFORMED_RECORDS = "MalformedRecords"
FEATURE_DRIFT_SCORE = "FeatureDriftScore"  # [Feature]
FEATURE_DRIFT_RATIO = "FeatureDriftRatio"  # [Feature]: score / threshold, >= 1 means drifted
DRIFTED_FEATURES = "DriftedFeatures"
POSITIVE_RATE = "PositiveRate"  # [Segment, SegmentValue] for segment metrics
GROUND_TRUTH_MATCHED = "GroundTruthMatched"
MODEL_QUALITY = "ModelQuality"  # [Metric: auc|accuracy|precision|recall|f1] (+ [Segment, SegmentValue])

ROLLBACK_PERIOD_SECONDS = 60
ROLLBACK_EVALUATION_PERIODS = 3
ROLLBACK_DATAPOINTS_TO_ALARM = 2
"""Rollback alarms fire on 2 breaching minutes out of 3: fast enough for the bake time, not on one spike."""

ENDPOINT_PERIOD_SECONDS = 300
ENDPOINT_EVALUATION_PERIODS = 3
"""Sustained latency and error alarms need three consecutive breaching 5-minute periods (a brief spike is the
rollout guardrails' business, a sustained one is on-call's)."""


def runbook_link(anchor: str) -> str:
    """The runbook entry of an alarm kind, as written in alarm descriptions."""
    return f"Runbook: {RUNBOOK}#{anchor}"


@dataclass(frozen=True)
class AlarmSpec:
    """What one alarm watches: a one-line summary, its runbook anchor and the metric arguments of ``MetricAlarm``."""

    summary: str
    anchor: str
    metric: dict[str, Any]

    @property
    def description(self) -> str:
        return f"{self.summary} {runbook_link(self.anchor)}"


def metric_alarm(
    resource_name: str,
    alarm_name: str,
    spec: AlarmSpec,
    *,
    tags: dict[str, str],
    parent: pulumi.Resource,
    **actions: Any,
) -> aws.cloudwatch.MetricAlarm:
    """The ``MetricAlarm`` of ``spec`` named ``alarm_name``; ``actions`` are its action arguments
    (``alarm_actions``, ``ok_actions``, ``insufficient_data_actions``, ``actions_enabled``)."""
    return aws.cloudwatch.MetricAlarm(
        resource_name,
        name=alarm_name,
        alarm_description=spec.description,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
        **actions,
        **spec.metric,
    )


# --- the endpoint: rollback (serving) ---------------------------------------------------------------


def sum_query(
    metric_id: str,
    metric_name: str,
    dimensions: Mapping[str, pulumi.Input[str]],
    period: int,
    namespace: str = ENDPOINT_NAMESPACE,
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    """A Sum of one metric (by default AWS/SageMaker's) per ``period``, as an input of a metric math alarm."""
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=metric_id,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace,
            metric_name=metric_name,
            dimensions=dimensions,
            period=period,
            stat="Sum",
        ),
        return_data=False,
    )


_ROLLBACK_COMMON: dict[str, Any] = {
    "evaluation_periods": ROLLBACK_EVALUATION_PERIODS,
    "datapoints_to_alarm": ROLLBACK_DATAPOINTS_TO_ALARM,
    "comparison_operator": "GreaterThanThreshold",
    # No traffic is not an outage: an idle endpoint stays OK (and does not block a deployment).
    "treat_missing_data": "notBreaching",
}


def rollback_error_rate(endpoint: str, variants: Sequence[str], threshold_percent: float) -> AlarmSpec:
    """All production variants' ``Invocation5XXErrors`` over all their ``Invocations``, in percent.

    A canary's errors raise the endpoint-wide rate in proportion to its share, so the threshold applies to the
    whole endpoint. Reads 2 metrics per variant (CloudWatch allows 10 per alarm: the serving settings check).
    """
    dimensions = [{"EndpointName": endpoint, "VariantName": v} for v in variants]
    indexes = range(len(dimensions))
    errors = " + ".join(f"FILL(e{i}, 0)" for i in indexes)
    invocations = " + ".join(f"FILL(n{i}, 0)" for i in indexes)
    period = ROLLBACK_PERIOD_SECONDS
    return AlarmSpec(
        summary=(
            f"{endpoint}: 5xx errors above {threshold_percent}% of invocations across "
            f"{', '.join(variants)}; rolls back an endpoint deployment."
        ),
        anchor=ANCHOR_ROLLBACK_ERRORS,
        metric={
            "metric_queries": [
                *(
                    sum_query(f"e{i}", "Invocation5XXErrors", d, period)
                    for i, d in zip(indexes, dimensions, strict=True)
                ),
                *(sum_query(f"n{i}", "Invocations", d, period) for i, d in zip(indexes, dimensions, strict=True)),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="error_rate",
                    expression=f"IF(({invocations}) > 0, 100 * ({errors}) / ({invocations}), 0)",
                    label="5xx error rate (%)",
                    return_data=True,
                ),
            ],
            "threshold": threshold_percent,
            **_ROLLBACK_COMMON,
        },
    )


def rollback_latency(endpoint: str, variants: Sequence[str], threshold_ms: int) -> AlarmSpec:
    """The highest of the production variants' p99 ``ModelLatency``."""
    dimensions = [{"EndpointName": endpoint, "VariantName": v} for v in variants]
    indexes = range(len(dimensions))
    return AlarmSpec(
        summary=(
            f"{endpoint}: p99 model latency of a variant above {threshold_ms} ms; rolls back an endpoint deployment."
        ),
        anchor=ANCHOR_ROLLBACK_LATENCY,
        metric={
            "metric_queries": [
                *(
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id=f"l{i}",
                        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                            namespace=ENDPOINT_NAMESPACE,
                            metric_name="ModelLatency",
                            dimensions=d,
                            period=ROLLBACK_PERIOD_SECONDS,
                            stat="p99",
                            unit="Microseconds",
                        ),
                        return_data=False,
                    )
                    for i, d in zip(indexes, dimensions, strict=True)
                ),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="p99_latency",
                    expression=f"MAX([{', '.join(f'l{i}' for i in indexes)}])",
                    label="highest variant p99 ModelLatency (microseconds)",
                    return_data=True,
                ),
            ],
            # ModelLatency is reported in microseconds.
            "threshold": threshold_ms * 1000,
            **_ROLLBACK_COMMON,
        },
    )


# --- the endpoint: sustained, per variant (monitoring) ----------------------------------------------


def sustained_latency(model: str, endpoint: pulumi.Input[str], variant: str, threshold_ms: int) -> AlarmSpec:
    """One variant's p99 ``ModelLatency`` above ``threshold_ms`` for three 5-minute periods."""
    return AlarmSpec(
        summary=(
            f"{model}: p99 ModelLatency of variant '{variant}' above {threshold_ms} ms for "
            f"{ENDPOINT_EVALUATION_PERIODS} x {ENDPOINT_PERIOD_SECONDS // 60} min."
        ),
        anchor=ANCHOR_LATENCY,
        metric={
            "namespace": ENDPOINT_NAMESPACE,
            "metric_name": "ModelLatency",
            "dimensions": {"EndpointName": endpoint, "VariantName": variant},
            "extended_statistic": "p99",
            "period": ENDPOINT_PERIOD_SECONDS,
            "evaluation_periods": ENDPOINT_EVALUATION_PERIODS,
            "datapoints_to_alarm": ENDPOINT_EVALUATION_PERIODS,
            "threshold": float(threshold_ms * 1000),  # ModelLatency is in microseconds
            "comparison_operator": "GreaterThanThreshold",
            # No requests, no latency: silence is not slowness.
            "treat_missing_data": "notBreaching",
        },
    )


def sustained_error_rate(model: str, endpoint: pulumi.Input[str], variant: str, threshold_percent: float) -> AlarmSpec:
    """One variant's 5xx errors above ``threshold_percent`` of its invocations for three 5-minute periods."""
    dimensions = {"EndpointName": endpoint, "VariantName": variant}

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

    return AlarmSpec(
        summary=(
            f"{model}: variant '{variant}' answered more than {threshold_percent}% of invocations with a 5xx error "
            f"for {ENDPOINT_EVALUATION_PERIODS} x {ENDPOINT_PERIOD_SECONDS // 60} min."
        ),
        anchor=ANCHOR_ERRORS,
        metric={
            "metric_queries": [
                metric("errors", "Invocation5XXErrors"),
                metric("invocations", "Invocations"),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="error_rate",
                    expression="100 * FILL(errors, 0) / invocations",
                    label="5xx errors (% of invocations)",
                    return_data=True,
                ),
            ],
            "evaluation_periods": ENDPOINT_EVALUATION_PERIODS,
            "datapoints_to_alarm": ENDPOINT_EVALUATION_PERIODS,
            "threshold": threshold_percent,
            "comparison_operator": "GreaterThanThreshold",
            # No invocations, no rate (division by nothing): an idle endpoint is not failing.
            "treat_missing_data": "notBreaching",
        },
    )


# --- the model: drift, quality, heartbeat, business KPI (monitoring) --------------------------------
#
# A monitor publishes one datapoint per run and metric, so these alarms' period is the monitor's period (the
# schedule's), and they look at more than one period: one late or failed run must not flip them.

MONITOR_HEARTBEAT_PERIODS = 3
"""Periods without a single analyzed record before "monitor not reporting" fires: one late run is not news,
three missed runs are."""
DRIFT_EVALUATION_PERIODS = 2
"""A drift alarm reads the last two runs and fires on one drifted run (``datapoints_to_alarm=1``): one late run
neither hides drift nor turns the alarm to INSUFFICIENT_DATA."""
QUALITY_WINDOW_SECONDS = 86400
"""A quality alarm reads a day of runs (at least two): labels arrive late and in batches, so most runs of an
hourly monitor have nothing to join; a day with no quality datapoint at all means the labels or the monitor
stopped."""


def quality_evaluation_periods(period: int) -> int:
    """Periods a quality alarm reads: a day's worth, at least two (one missed daily run is not news)."""
    return max(2, -(-QUALITY_WINDOW_SECONDS // period))


def _drift_metric(period: int) -> dict[str, Any]:
    return {
        "statistic": "Maximum",
        "period": period,
        "evaluation_periods": DRIFT_EVALUATION_PERIODS,
        "datapoints_to_alarm": 1,
        # A broken monitor publishes nothing: missing data turns the alarm INSUFFICIENT_DATA (which the
        # "drift not measured" composite reports), not OK ("notBreaching") and not the last verdict kept
        # forever ("ignore"). Not "breaching": that would read a broken monitor as drift and, through the
        # model-drift composite, retrain on no evidence.
        "treat_missing_data": "missing",
    }


def _quality_metric(period: int) -> dict[str, Any]:
    return {
        "statistic": "Minimum",
        "period": period,
        "evaluation_periods": quality_evaluation_periods(period),
        "datapoints_to_alarm": 1,
        # Runs without ground truth publish no quality datapoint; a day without any turns the alarm
        # INSUFFICIENT_DATA, which notifies on-call (insufficient_data_actions). Not "breaching": missing labels
        # are not bad predictions and must not start retraining.
        "treat_missing_data": "missing",
    }


def feature_drift(
    model: str, feature: str, threshold: float, endpoint: pulumi.Input[str], schedule: str, period: int
) -> AlarmSpec:
    """engine=model-monitor: one feature's baseline drift distance (data-quality job) above ``threshold``."""
    return AlarmSpec(
        summary=(
            f"{model}: feature '{feature}' of the captured requests drifted from the training baseline "
            f"(Model Monitor baseline drift distance > {threshold})."
        ),
        anchor=ANCHOR_FEATURE_DRIFT,
        metric={
            "namespace": DATA_METRICS_NAMESPACE,
            "metric_name": f"feature_baseline_drift_{feature}",
            "dimensions": {"Endpoint": endpoint, "MonitoringSchedule": schedule},
            "threshold": threshold,
            "comparison_operator": "GreaterThanThreshold",
            **_drift_metric(period),
        },
    )


def platform_dimensions(model: str, endpoint: pulumi.Input[str], **extra: pulumi.Input[str]) -> dict[str, Any]:
    """The dimensions of one of the platform job's metrics: ``Model``, ``Endpoint`` and ``extra``."""
    return {"Model": model, "Endpoint": endpoint, **extra}


def platform_feature_drift(model: str, feature: str, endpoint: pulumi.Input[str], period: int) -> AlarmSpec:
    """engine=platform: one feature's drift score reached its threshold (``FeatureDriftRatio`` >= 1).

    The ratio is score / threshold, so the alarm does not repeat the per-feature thresholds the job applies
    (its defaults, or ``monitoring.platform.driftThresholds``).
    """
    return AlarmSpec(
        summary=(
            f"{model}: feature '{feature}' of the captured requests drifted from the training baseline "
            "(drift score at or above its threshold)."
        ),
        anchor=ANCHOR_FEATURE_DRIFT,
        metric={
            "namespace": PLATFORM_METRICS_NAMESPACE,
            "metric_name": FEATURE_DRIFT_RATIO,
            "dimensions": platform_dimensions(model, endpoint, Feature=feature),
            "threshold": 1.0,
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            **_drift_metric(period),
        },
    )


def model_drift_description(model: str, retraining: bool) -> str:
    """The composite "model drift" alarm: any feature drift alarm in ALARM."""
    return (
        f"{model}: at least one monitored feature drifted from the training baseline; "
        f"{'starts retraining' if retraining else 'retraining is off'}. "
        f"{runbook_link(ANCHOR_DRIFT_COMPOSITE)}"
    )


def model_drift_rule(feature_alarm_names: Sequence[str]) -> str:
    """The composite alarm rule over the feature alarms (an OR of their ALARM states)."""
    return " OR ".join(f'ALARM("{n}")' for n in feature_alarm_names)


def drift_unmeasured_description(model: str) -> str:
    """The composite "drift not measured" alarm: a feature drift alarm has no data (its monitor broke)."""
    return (
        f"{model}: a feature drift alarm has had no data for {DRIFT_EVALUATION_PERIODS} monitor periods: drift is "
        f"not being measured (monitor failing, baseline unreadable or no traffic). "
        f"{runbook_link(ANCHOR_DRIFT_UNMEASURED)}"
    )


def drift_unmeasured_rule(feature_alarm_names: Sequence[str]) -> str:
    """An OR of the feature alarms' INSUFFICIENT_DATA states.

    A composite alarm itself is never INSUFFICIENT_DATA after creation (CloudWatch API reference,
    PutCompositeAlarm), so "model drift" alone would read OK while every feature alarm has no data.
    """
    return " OR ".join(f'INSUFFICIENT_DATA("{n}")' for n in feature_alarm_names)


def model_quality(
    model: str, metric: str, threshold: float, endpoint: pulumi.Input[str], schedule: str, period: int
) -> AlarmSpec:
    """engine=model-monitor: the live training metric (captured predictions joined with ground truth) below
    ``threshold``."""
    return AlarmSpec(
        summary=f"{model}: live {metric} (captured predictions joined with ground truth) fell below {threshold}.",
        anchor=ANCHOR_MODEL_QUALITY,
        metric={
            "namespace": MODEL_METRICS_NAMESPACE,
            "metric_name": metric,
            "dimensions": {"Endpoint": endpoint, "MonitoringSchedule": schedule},
            "threshold": threshold,
            "comparison_operator": "LessThanThreshold",
            **_quality_metric(period),
        },
    )


def platform_model_quality(
    model: str, metric: str, threshold: float, endpoint: pulumi.Input[str], period: int
) -> AlarmSpec:
    """engine=platform: the live training metric (``ModelQuality``, dimension ``Metric``) below ``threshold``."""
    return AlarmSpec(
        summary=f"{model}: live {metric} (captured predictions joined with ground truth) fell below {threshold}.",
        anchor=ANCHOR_MODEL_QUALITY,
        metric={
            "namespace": PLATFORM_METRICS_NAMESPACE,
            "metric_name": MODEL_QUALITY,
            "dimensions": platform_dimensions(model, endpoint, Metric=metric),
            "threshold": threshold,
            "comparison_operator": "LessThanThreshold",
            **_quality_metric(period),
        },
    )


def monitor_heartbeat(model: str, endpoint: pulumi.Input[str], period: int) -> AlarmSpec:
    """engine=platform: no record analyzed for :data:`MONITOR_HEARTBEAT_PERIODS` periods in a row.

    Every run publishes ``RecordsAnalyzed``, 0 included, so the metric is the monitor's heartbeat: missing
    means the job did not run or died before publishing; below 1 means it ran on an empty window (the
    endpoint's capture stopped, or no traffic at all).
    """
    return AlarmSpec(
        summary=(
            f"{model}: the drift monitor analyzed no captured record for {MONITOR_HEARTBEAT_PERIODS} periods "
            "(it is not running, failing, or finds no capture); drift and quality are not being measured."
        ),
        anchor=ANCHOR_MONITOR_HEARTBEAT,
        metric={
            "namespace": PLATFORM_METRICS_NAMESPACE,
            "metric_name": RECORDS_ANALYZED,
            "dimensions": platform_dimensions(model, endpoint),
            "statistic": "Sum",
            "period": period,
            "evaluation_periods": MONITOR_HEARTBEAT_PERIODS,
            "datapoints_to_alarm": MONITOR_HEARTBEAT_PERIODS,
            "threshold": 1.0,
            "comparison_operator": "LessThanThreshold",
            # The point of this alarm: a monitor that stops publishing is breaching, not unknown. (Right after
            # the first deployment it fires until the first run has published.)
            "treat_missing_data": "breaching",
        },
    )


def business_kpi(
    model: str,
    *,
    namespace: str,
    metric_name: str,
    dimensions: dict[str, str],
    statistic: str,
    comparison: str,
    threshold: float,
    period_seconds: int,
    evaluation_periods: int,
) -> AlarmSpec:
    """A KPI the application publishes, beyond ``threshold``; a KPI that stops arriving alarms too."""
    above = comparison == "above"
    return AlarmSpec(
        summary=(
            f"{model}: business KPI {namespace}/{metric_name} ({statistic}) "
            f"{'above' if above else 'below'} {threshold} for {evaluation_periods} x "
            f"{period_seconds} s, or no longer published."
        ),
        anchor=ANCHOR_KPI,
        metric={
            "namespace": namespace,
            "metric_name": metric_name,
            "dimensions": dict(dimensions) or None,
            "statistic": statistic,
            "period": period_seconds,
            "evaluation_periods": evaluation_periods,
            "threshold": threshold,
            "comparison_operator": "GreaterThanThreshold" if above else "LessThanThreshold",
            # A KPI that stops arriving is news too: missing data leads to INSUFFICIENT_DATA, which alerts.
            "treat_missing_data": "missing",
        },
    )


# --- the responders ----------------------------------------------------------------------------------

RESPONDER_PERIOD_SECONDS = 300
"""SQS publishes queue metrics every 5 minutes (1-minute periods would read gaps as missing data)."""


def queue_holds_a_message(queue_name: pulumi.Input[str], period: int) -> dict[str, Any]:
    """The ``metric`` of an alarm on a queue that should stay empty (dead letters, failed records): one message."""
    return {
        "namespace": "AWS/SQS",
        "metric_name": "ApproximateNumberOfMessagesVisible",
        "dimensions": {"QueueName": queue_name},
        "statistic": "Maximum",
        "period": period,
        "evaluation_periods": 1,
        "threshold": 1.0,
        "comparison_operator": "GreaterThanOrEqualToThreshold",
        # SQS stops publishing for a queue that stays empty and idle: no data is an empty queue.
        "treat_missing_data": "notBreaching",
    }


def lambda_invocations_failed(function_name: pulumi.Input[str], period: int) -> dict[str, Any]:
    """The ``metric`` of an alarm on a function's failed invocations: one in ``period``."""
    return {
        "namespace": "AWS/Lambda",
        "metric_name": "Errors",
        "dimensions": {"FunctionName": function_name},
        "statistic": "Sum",
        "period": period,
        "evaluation_periods": 1,
        "threshold": 1.0,
        "comparison_operator": "GreaterThanOrEqualToThreshold",
        # No invocation, no error.
        "treat_missing_data": "notBreaching",
    }


def dead_letters(function: str, queue_name: pulumi.Input[str]) -> AlarmSpec:
    """A responder's dead-letter queue holds at least one message: an event its retries could not handle."""
    return AlarmSpec(
        summary=(
            f"responder {function}: its dead-letter queue holds an event the function failed on after every retry "
            "(the event is lost when the queue's retention ends)."
        ),
        anchor=ANCHOR_DEAD_LETTERS,
        metric=queue_holds_a_message(queue_name, RESPONDER_PERIOD_SECONDS),
    )


def responder_errors(function: str, function_name: pulumi.Input[str]) -> AlarmSpec:
    """A responder's invocations failed (each failure is retried; repeated ones end in the dead-letter queue)."""
    return AlarmSpec(
        summary=(
            f"responder {function}: invocations failed in the last {RESPONDER_PERIOD_SECONDS // 60} minutes "
            "(Lambda retries them; what still fails is dead-lettered)."
        ),
        anchor=ANCHOR_RESPONDER_ERRORS,
        metric=lambda_invocations_failed(function_name, RESPONDER_PERIOD_SECONDS),
    )
