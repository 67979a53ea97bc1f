"""The per-model CloudWatch dashboard: endpoint metrics per variant, drift, quality, KPI and alarm states."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pulumi

from infra.alarms import (
    DATA_METRICS_NAMESPACE,
    ENDPOINT_NAMESPACE,
    ENDPOINT_PERIOD_SECONDS,
    MODEL_METRICS_NAMESPACE,
    MONITORING_PERIOD_SECONDS,
)

if TYPE_CHECKING:
    from infra.monitoring.component import ModelMonitoring


def dashboard_body(monitor: ModelMonitoring, region: str) -> pulumi.Output[str]:
    """The dashboard JSON: endpoint metrics per variant, drift, quality, KPI, then the alarm states."""
    endpoint = monitor.endpoint.name
    variants = monitor.endpoint.variant_names
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

    latency_ms = monitor.latency_threshold_ms()
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
    if monitor.data_quality_schedule_name is not None:
        add(
            "Feature baseline drift",
            [
                [
                    DATA_METRICS_NAMESPACE,
                    f"feature_baseline_drift_{f}",
                    "Endpoint",
                    endpoint,
                    "MonitoringSchedule",
                    monitor.data_quality_schedule_name,
                    {"stat": "Maximum"},
                ]
                for f in monitor.drift_features()
            ],
            period=MONITORING_PERIOD_SECONDS,
            annotations={"horizontal": [{"label": "alarm", "value": monitor.settings.data_quality.drift_threshold}]},
        )
    if monitor.model_quality_schedule_name is not None:
        metric = monitor.quality_gate.metric_name
        add(
            f"Live {metric}",
            [
                [
                    MODEL_METRICS_NAMESPACE,
                    metric,
                    "Endpoint",
                    endpoint,
                    "MonitoringSchedule",
                    monitor.model_quality_schedule_name,
                    {"stat": "Minimum"},
                ]
            ],
            period=MONITORING_PERIOD_SECONDS,
            annotations={"horizontal": [{"label": "alarm", "value": monitor.quality_threshold()}]},
        )
    kpi = monitor.settings.business_kpi
    if kpi is not None:
        dims = [part for key, value in sorted(kpi.dimensions.items()) for part in (key, value)]
        add(
            f"Business KPI: {kpi.metric_name}",
            [[kpi.namespace, kpi.metric_name, *dims, {"stat": kpi.statistic}]],
            period=kpi.period_seconds,
            annotations={"horizontal": [{"label": "alarm", "value": kpi.threshold}]},
        )
    if not monitor.alarms:
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
                "alarms": [alarm.arn for alarm in monitor.alarms.values()],
                "sortBy": "stateUpdatedTimestamp",
            },
        }
    )
    return pulumi.Output.json_dumps({"widgets": widgets})
