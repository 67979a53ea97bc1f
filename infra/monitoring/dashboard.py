"""The per-model CloudWatch dashboard: endpoint metrics per variant, the monitor's metrics (either engine), KPI
and alarm states."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pulumi

from infra.alarms import (
    DATA_METRICS_NAMESPACE,
    DRIFTED_FEATURES,
    ENDPOINT_NAMESPACE,
    ENDPOINT_PERIOD_SECONDS,
    FEATURE_DRIFT_RATIO,
    FEATURE_DRIFT_SCORE,
    GROUND_TRUTH_MATCHED,
    MALFORMED_RECORDS,
    MODEL_METRICS_NAMESPACE,
    MODEL_QUALITY,
    PLATFORM_METRICS_NAMESPACE,
    POSITIVE_RATE,
    RECORDS_ANALYZED,
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
    if monitor.engine == "platform":
        _platform_widgets(monitor, add)
    else:
        _model_monitor_widgets(monitor, add)
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


def _model_monitor_widgets(monitor: ModelMonitoring, add: Callable[..., None]) -> None:
    """engine=model-monitor: baseline drift per feature and the live training metric."""
    endpoint = monitor.endpoint.name
    if monitor.data_quality_schedule_name is not None and monitor.monitor_period_seconds is not None:
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
            period=monitor.monitor_period_seconds,
            annotations={"horizontal": [{"label": "alarm", "value": monitor.settings.data_quality.drift_threshold}]},
        )
    if monitor.model_quality_schedule_name is not None and monitor.quality_period_seconds is not None:
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
            period=monitor.quality_period_seconds,
            annotations={"horizontal": [{"label": "alarm", "value": monitor.quality_threshold()}]},
        )


def _platform_widgets(monitor: ModelMonitoring, add: Callable[..., None]) -> None:
    """engine=platform: the heartbeat, drift per feature (ratio to threshold and score), predictions, quality
    and, with segments, positive rate and quality per segment value."""
    period = monitor.monitor_period_seconds
    if monitor.platform is None or period is None:
        return
    model, endpoint = monitor.names.model, monitor.endpoint.name
    settings = monitor.settings

    def metric(name: str, options: dict[str, Any], **extra: Any) -> list[Any]:
        dims = [
            part for key, value in (("Model", model), ("Endpoint", endpoint), *extra.items()) for part in (key, value)
        ]
        return [PLATFORM_METRICS_NAMESPACE, name, *dims, options]

    add(
        "Monitor: records analyzed (heartbeat) and malformed",
        [metric(RECORDS_ANALYZED, {"stat": "Sum"}), metric(MALFORMED_RECORDS, {"stat": "Sum", "yAxis": "right"})],
        period=period,
        annotations={"horizontal": [{"label": "not reporting below", "value": 1}]},
    )
    if settings.data_quality.enabled:
        features = monitor.drift_features()
        add(
            "Feature drift (score / threshold; >= 1 drifted)",
            [metric(FEATURE_DRIFT_RATIO, {"stat": "Maximum"}, Feature=f) for f in features],
            period=period,
            annotations={"horizontal": [{"label": "drifted", "value": 1}]},
        )
        add(
            "Feature drift score and drifted features",
            [
                *(metric(FEATURE_DRIFT_SCORE, {"stat": "Maximum"}, Feature=f) for f in features),
                metric(DRIFTED_FEATURES, {"stat": "Maximum", "yAxis": "right"}),
            ],
            period=period,
        )
    add(
        "Predictions: positive rate and ground truth matched",
        [metric(POSITIVE_RATE, {"stat": "Average"}), metric(GROUND_TRUTH_MATCHED, {"stat": "Sum", "yAxis": "right"})],
        period=period,
    )
    quality = monitor.quality_gate.metric_name
    if settings.model_quality.enabled:
        add(
            f"Live {quality}",
            [metric(MODEL_QUALITY, {"stat": "Minimum"}, Metric=quality)],
            period=period,
            annotations={"horizontal": [{"label": "alarm", "value": monitor.quality_threshold()}]},
        )
    if settings.platform.segments:
        # Segment values are data (plan=basic, ...): a SEARCH finds every value the job has published.
        def search(query_id: str, name: str, stat: str, extra: str = "") -> list[Any]:
            expression = pulumi.Output.concat(
                "SEARCH('{",
                PLATFORM_METRICS_NAMESPACE,
                ",Endpoint,Model,Segment,SegmentValue",
                ",Metric" if extra else "",
                '} MetricName="',
                name,
                '" Model="',
                model,
                '" Endpoint="',
                endpoint,
                '"',
                f' Metric="{extra}"' if extra else "",
                f"', '{stat}', {period})",
            )
            return [{"expression": expression, "id": query_id, "period": period}]

        add("Positive rate per segment", [search("rate", POSITIVE_RATE, "Average")], period=period)
        if settings.model_quality.enabled:
            add(f"Live {quality} per segment", [search("quality", MODEL_QUALITY, "Minimum", quality)], period=period)
