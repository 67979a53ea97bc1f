"""Every alarm the platform defines, in one place: what it watches, its threshold shape and its runbook entry.

The layers own *when* an alarm exists and *who* hears it; this module owns *what* it is:

- the endpoint's **rollback alarms** (serving): 5xx rate over every production variant and the highest
  variant p99 latency, 1-minute periods, so SageMaker's deployment guardrails can roll an update back;
- the **sustained** per-variant latency and 5xx alarms (monitoring): 5-minute periods, for on-call;
- **drift** per feature and the composite **model drift** rule, **model quality** and the **business KPI**
  (monitoring).

Each builder returns an :class:`AlarmSpec` (summary, runbook anchor, the ``MetricAlarm`` arguments of the metric);
:func:`metric_alarm` turns one into a resource. To change an alarm, change its builder here and its entry in
``docs/runbook.md``; ``tests/unit/test_alarms.py`` and the monitoring tests check both.
"""

from __future__ import annotations

from collections.abc import Sequence
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

ENDPOINT_NAMESPACE = "AWS/SageMaker"
"""Endpoint invocation metrics (dimensions EndpointName, VariantName); ModelLatency is in microseconds."""
DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
"""Where Model Monitor's data-quality jobs of real-time endpoints publish (dimensions Endpoint, MonitoringSchedule)."""
MODEL_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
"""Where Model Monitor's model-quality jobs of real-time endpoints publish (same dimensions)."""

ROLLBACK_PERIOD_SECONDS = 60
ROLLBACK_EVALUATION_PERIODS = 3
ROLLBACK_DATAPOINTS_TO_ALARM = 2
"""Rollback alarms fire on 2 breaching minutes out of 3: fast enough for the bake time, not on one spike."""

MONITORING_PERIOD_SECONDS = 3600
"""Period of the drift and quality alarms: a monitoring job publishes one datapoint per run."""
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


def _sum_query(
    metric_id: str, metric_name: str, dimensions: dict[str, str], period: int
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    """A Sum of one AWS/SageMaker metric per ``period``, as an input of a metric math alarm."""
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=metric_id,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=ENDPOINT_NAMESPACE,
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
                    _sum_query(f"e{i}", "Invocation5XXErrors", d, period)
                    for i, d in zip(indexes, dimensions, strict=True)
                ),
                *(_sum_query(f"n{i}", "Invocations", d, period) for i, d in zip(indexes, dimensions, strict=True)),
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


# --- the model: drift, quality, business KPI (monitoring) -------------------------------------------


def feature_drift(model: str, feature: str, threshold: float, endpoint: pulumi.Input[str], schedule: str) -> AlarmSpec:
    """One feature's baseline drift distance (published by the data-quality job) above ``threshold``."""
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
            "statistic": "Maximum",
            "period": MONITORING_PERIOD_SECONDS,
            "evaluation_periods": 1,
            "threshold": threshold,
            "comparison_operator": "GreaterThanThreshold",
            # One datapoint per monitoring job: between jobs the alarm keeps the last job's verdict.
            "treat_missing_data": "ignore",
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


def model_quality(model: str, metric: str, threshold: float, endpoint: pulumi.Input[str], schedule: str) -> AlarmSpec:
    """The live training metric (captured predictions joined with ground truth) below ``threshold``."""
    return AlarmSpec(
        summary=f"{model}: live {metric} (captured predictions joined with ground truth) fell below {threshold}.",
        anchor=ANCHOR_MODEL_QUALITY,
        metric={
            "namespace": MODEL_METRICS_NAMESPACE,
            "metric_name": metric,
            "dimensions": {"Endpoint": endpoint, "MonitoringSchedule": schedule},
            "statistic": "Minimum",
            "period": MONITORING_PERIOD_SECONDS,
            "evaluation_periods": 1,
            "threshold": threshold,
            "comparison_operator": "LessThanThreshold",
            # One datapoint per daily job: between jobs the alarm keeps the last job's verdict.
            "treat_missing_data": "ignore",
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
