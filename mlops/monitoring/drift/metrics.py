"""CloudWatch metrics of a report (the contract the monitoring alarms are built on) and their publication.

Every datum carries the run's base dimensions (``--dimension Model=... --dimension Endpoint=...``), plus:

============================  =======  =====================================  ==================================
metric                        unit     extra dimensions                       published
============================  =======  =====================================  ==================================
``RecordsAnalyzed``           Count    -                                      every run, 0 included (heartbeat)
``MalformedRecords``          Count    -                                      every run
``DriftedFeatures``           Count    -                                      every run
``DataQualityViolations``     Count    -                                      every run
``FeatureDriftScore``         None     ``Feature``                            each feature with live values
``FeatureDriftRatio``         None     ``Feature``                            same; score / threshold, >= 1 drifted
``PositiveRate``              None     -                                      when predictions were captured
``GroundTruthMatched``        Count    -                                      when ``--ground-truth`` is given
``ModelQuality``              None     ``Metric`` (auc, accuracy, precision,  when labels matched and the metric
                                       recall, f1)                            is defined
``PositiveRate``              None     ``Segment``, ``SegmentValue``          per reported segment value
``ModelQuality``              None     ``Segment``, ``SegmentValue``,         per reported segment value
                                       ``Metric``
============================  =======  =====================================  ==================================

Segment values are those the report lists: at most ``--max-segment-values`` per column (the most frequent in
the window), the rest aggregated as ``__other__``. ``PutMetricData`` takes at most 1,000 data and 1 MB per
request and 30 dimensions per datum; :func:`publish` batches within those limits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from mlops.monitoring.drift.errors import DriftOutputError
from mlops.monitoring.drift.quality import QUALITY_METRICS

MAX_DATA_PER_REQUEST = 1000
MAX_REQUEST_BYTES = 900_000
"""Under PutMetricData's 1 MB request limit, with room for the query encoding's overhead."""
MAX_DIMENSIONS = 30
MAX_DIMENSION_VALUE = 255
"""Dimension values are cut to this length (CloudWatch's former limit; the current one is 1,024)."""


def metric_data(report: Mapping[str, Any], dimensions: Sequence[tuple[str, str]], timestamp: datetime) -> list[dict]:
    """Every datum the report gives (see the table above)."""
    base = [(name, value) for name, value in dimensions]
    data: list[dict] = []

    def add(name: str, value: float, unit: str, *extra: tuple[str, str]) -> None:
        data.append(
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": _dimension_value(v)} for k, v in (*base, *extra)],
                "Timestamp": timestamp,
                "Value": float(value),
                "Unit": unit,
            }
        )

    add("RecordsAnalyzed", report["records"], "Count")
    add("MalformedRecords", report["malformed"], "Count")
    add("DriftedFeatures", len(report["drifted"]), "Count")
    add("DataQualityViolations", len(report["data_quality_violations"]), "Count")
    for feature, drift in report["features"].items():
        add("FeatureDriftScore", drift["score"], "None", ("Feature", feature))
        add("FeatureDriftRatio", drift["score"] / drift["threshold"], "None", ("Feature", feature))
    if report["predictions"]["positive_rate"] is not None:
        add("PositiveRate", report["predictions"]["positive_rate"], "None")
    truth = report.get("ground_truth")
    if truth is not None:
        add("GroundTruthMatched", truth["matched"], "Count")
        for metric, value in _defined(truth["metrics"]):
            add("ModelQuality", value, "None", ("Metric", metric))
    for column, segment in report["segments"].items():
        for value, figures in segment["values"].items():
            where = (("Segment", column), ("SegmentValue", value))
            if figures["positive_rate"] is not None:
                add("PositiveRate", figures["positive_rate"], "None", *where)
            for metric, number in _defined(figures["metrics"]):
                add("ModelQuality", number, "None", *where, ("Metric", metric))
    return data


def _defined(metrics: Mapping[str, float | None] | None) -> list[tuple[str, float]]:
    if not metrics:
        return []
    return [(name, value) for name in QUALITY_METRICS if (value := metrics.get(name)) is not None]


def _dimension_value(value: str) -> str:
    return (value or "(empty)")[:MAX_DIMENSION_VALUE]


def batches(data: Sequence[dict]) -> list[list[dict]]:
    """``data`` in request-sized batches (at most 1,000 data and about 900 kB each)."""
    result: list[list[dict]] = []
    current: list[dict] = []
    size = 0
    for datum in data:
        # The JSON length bounds the query encoding's payload well enough: both spell every name and value once.
        weight = len(json.dumps(datum, default=str)) * 2
        if current and (len(current) == MAX_DATA_PER_REQUEST or size + weight > MAX_REQUEST_BYTES):
            result.append(current)
            current, size = [], 0
        current.append(datum)
        size += weight
    if current:
        result.append(current)
    return result


def publish(client: Any, namespace: str, data: Sequence[dict]) -> int:
    """Put ``data`` into ``namespace`` with the given CloudWatch client; returns the number of requests.

    Raises :class:`DriftOutputError` naming CloudWatch's error code when a request is refused.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    requests = 0
    for batch in batches(data):
        try:
            client.put_metric_data(Namespace=namespace, MetricData=batch)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise DriftOutputError(
                f"CloudWatch refused the metrics for namespace {namespace!r}: {error.get('Code')}: {error.get('Message')}"
            ) from None
        except BotoCoreError as exc:
            raise DriftOutputError(f"cannot publish metrics to CloudWatch: {exc}") from None
        requests += 1
    return requests


def parse_dimension(text: str) -> tuple[str, str]:
    """``Name=Value`` (``--dimension``) → ``("Name", "Value")``; ``ValueError`` when it is not one."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"--dimension {text!r} is not Name=Value")
    return name.strip(), value.strip()
