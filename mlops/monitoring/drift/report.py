"""The run's report: the analysis sections plus what was analysed, serialised for people and for Athena."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from mlops.monitoring.drift.analysis import AnalysisSettings
from mlops.monitoring.drift.quality import QUALITY_METRICS
from mlops.monitoring.drift.sources import Window, is_s3

REPORT_FORMAT = "mlops-drift-report/1"


def build_report(
    *,
    run_id: str,
    generated_at: datetime,
    model: str,
    baseline: Mapping[str, Any],
    reference: str,
    capture: str,
    window: Window | None,
    skipped_objects: int,
    settings: AnalysisSettings,
    dimensions: Sequence[tuple[str, str]],
    analysis: Mapping[str, Any],
) -> dict[str, Any]:
    """The report document (see :mod:`mlops.monitoring.drift` for its fields)."""
    return {
        "format": REPORT_FORMAT,
        "run_id": run_id,
        "generated_at": _instant(generated_at),
        "model": model,
        "feature_spec": baseline["feature_spec"],
        "feature_spec_version": baseline.get("feature_spec_version"),
        "baseline": {
            "reference": reference,
            "source": baseline.get("source") or reference,
            "rows": baseline.get("rows"),
        },
        "endpoint": dict(dimensions).get("Endpoint"),
        "window_start": _instant(window.start) if window else None,
        "window_end": _instant(window.end) if window and window.end else None,
        "window_hours": round((window.end - window.start).total_seconds() / 3600) if window and window.end else None,
        "capture": {
            "source": capture,
            "objects": analysis["objects"],
            "skipped_objects": skipped_objects,
            "lines": analysis["lines"],
            "requests": analysis["requests"],
        },
        "settings": {
            "thresholds": dict(sorted(settings.thresholds.items())),
            "default_psi_threshold": settings.psi_threshold,
            "default_distance_threshold": settings.distance_threshold,
            "significance": settings.significance,
            "probability_threshold": settings.probability_threshold,
            "segments": list(settings.segments),
            "max_segment_values": settings.max_segment_values,
        },
        "dimensions": dict(dimensions),
        **{key: value for key, value in analysis.items() if key not in ("objects", "lines", "requests")},
        "model_quality": _model_quality(analysis.get("ground_truth")),
    }


def _model_quality(truth: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The flat summary Athena's table reads: matched count and metrics (null without ``--ground-truth``)."""
    if truth is None:
        return None
    metrics = truth.get("metrics") or {}
    return {"matched": truth["matched"], **{name: metrics.get(name) for name in QUALITY_METRICS}}


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def report_location(out: str, model: str, window_end: datetime, run_id: str) -> str:
    """Where the report goes: ``--out`` itself for a file (or an ``s3://.../<name>.json`` object), else, for an
    ``s3://bucket/prefix/``, ``<prefix>model=<model>/date=<YYYY-MM-DD>/<YYYYMMDDTHHMMSSZ>-<run id[:8]>.json``
    (Hive-style partitions a Glue table can project; the date and time are the window's end)."""
    if not is_s3(out) or out.lower().endswith(".json"):
        return out
    prefix = out if out.endswith("/") else out + "/"
    return f"{prefix}model={model}/date={window_end:%Y-%m-%d}/{window_end:%Y%m%dT%H%M%SZ}-{run_id[:8]}.json"


def serialise(report: Mapping[str, Any], *, one_line: bool) -> str:
    """JSON text of the report: one line for S3 (Glue's JSON SerDe reads one document per line), indented for
    a local file. NaN or infinity are refused: the report never carries them."""
    if one_line:
        return json.dumps(report, allow_nan=False, separators=(",", ":")) + "\n"
    return json.dumps(report, allow_nan=False, indent=2) + "\n"
