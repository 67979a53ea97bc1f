"""``python -m mlops.monitoring.drift``: the drift job's command line (the contract in the package docstring).

Exit status: 0 when the window was analysed (whatever it found), 2 when an input is unusable (the message
says which, on one line), 1 when the results could not be delivered (report not written, metrics refused).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.features.spec import FeatureSpec, FeatureSpecError
from mlops.monitoring.drift.analysis import DEFAULT_MAX_SEGMENT_VALUES, AnalysisSettings, WindowAnalysis
from mlops.monitoring.drift.baseline import read_reference
from mlops.monitoring.drift.errors import DriftError, DriftInputError
from mlops.monitoring.drift.groundtruth import load_ground_truth
from mlops.monitoring.drift.metrics import MAX_DIMENSIONS, metric_data, parse_dimension, publish
from mlops.monitoring.drift.report import build_report, report_location, serialise
from mlops.monitoring.drift.sources import Storage, Window, is_s3, parse_instant
from mlops.monitoring.drift.statistics import (
    DEFAULT_DISTANCE_THRESHOLD,
    DEFAULT_PSI_THRESHOLD,
    DEFAULT_SIGNIFICANCE,
)

LOG = logging.getLogger("mlops.monitoring.drift")
PROGRAM = "python -m mlops.monitoring.drift"
MAX_WINDOW_HOURS = 24 * 31


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Drift, data quality and model quality of an endpoint's captured requests against the "
        "training baseline; writes a JSON report and, with --metrics-namespace, CloudWatch metrics.",
    )
    parser.add_argument("--model", required=True, help="feature spec name (mlops.features.registry)")
    parser.add_argument(
        "--reference",
        required=True,
        help="drift-baseline.json written by the training pipeline, or raw training rows (CSV or Parquet file, "
        "or a folder/prefix of them); a path or s3:// URI",
    )
    parser.add_argument(
        "--capture", required=True, help="folder or s3:// prefix of SageMaker data-capture .jsonl files"
    )
    parser.add_argument("--ground-truth", help="folder or s3:// prefix of Model Monitor ground-truth .jsonl files")
    parser.add_argument(
        "--out",
        required=True,
        help="report file, or s3://bucket/prefix/ (then <prefix>model=<model>/date=<YYYY-MM-DD>/<time>-<id>.json)",
    )
    parser.add_argument(
        "--window-end",
        help="ISO-8601 end of the window (exclusive), rounded down to the hour; without it, every file is read",
    )
    parser.add_argument("--window-hours", type=int, help="hours of capture before --window-end (default 1)")
    parser.add_argument("--thresholds", help="per-feature thresholds as JSON, e.g. '{\"sessions\": 0.15}'")
    parser.add_argument(
        "--default-psi-threshold",
        type=float,
        default=DEFAULT_PSI_THRESHOLD,
        help=f"PSI that flags a categorical feature (default {DEFAULT_PSI_THRESHOLD})",
    )
    parser.add_argument(
        "--default-distance-threshold",
        type=float,
        default=DEFAULT_DISTANCE_THRESHOLD,
        help=f"Kolmogorov-Smirnov distance that flags a numeric feature (default {DEFAULT_DISTANCE_THRESHOLD})",
    )
    parser.add_argument(
        "--significance",
        type=float,
        default=DEFAULT_SIGNIFICANCE,
        help="chance that sampling noise alone reaches a threshold; thresholds are raised to that level for "
        f"small windows (default {DEFAULT_SIGNIFICANCE})",
    )
    parser.add_argument(
        "--segments",
        help="features (either request mode) or raw request columns (rows mode) to report per value, "
        "comma-separated (e.g. plan_tier or plan)",
    )
    parser.add_argument(
        "--max-segment-values",
        type=int,
        default=DEFAULT_MAX_SEGMENT_VALUES,
        help=f"segment values reported per column, the rest aggregated (default {DEFAULT_MAX_SEGMENT_VALUES})",
    )
    parser.add_argument(
        "--probability-threshold", type=float, default=0.5, help="probability from which a prediction is positive"
    )
    parser.add_argument(
        "--model-name",
        help="model name in the report and its S3 partition (default: the Model --dimension, else --model)",
    )
    parser.add_argument("--metrics-namespace", help="publish CloudWatch metrics to this namespace")
    parser.add_argument(
        "--dimension", action="append", default=[], metavar="NAME=VALUE", help="dimension of every metric (repeatable)"
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    storage: Storage | None = None,
    cloudwatch: Callable[[], Any] | None = None,
    now: Callable[[], datetime] | None = None,
) -> int:
    """Run the command; returns its exit status. ``storage``, ``cloudwatch`` (a client factory) and ``now`` let
    tests and callers provide their own clients and clock."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return _run(args, storage or Storage(), cloudwatch or _cloudwatch_client, (now or _utc_now)())
    except DriftError as exc:
        print(f"{PROGRAM}: error: {exc}", file=sys.stderr)
        return exc.exit_status


def _run(args: argparse.Namespace, storage: Storage, cloudwatch: Callable[[], Any], started: datetime) -> int:
    spec = _spec(args.model)
    settings = _settings(args, spec)
    window = _window(args)
    dimensions = _dimensions(args.dimension)
    if not is_s3(args.out) and Path(args.out).is_dir():
        raise DriftInputError(f"--out {args.out} is a folder: give the report's file name")
    model = args.model_name or dict(dimensions).get("Model") or args.model

    baseline = read_reference(spec, args.reference, storage)
    truth = None
    if args.ground_truth:
        truth = load_ground_truth(args.ground_truth, storage, window.start if window else None)
    listing = storage.listing(args.capture, window, "--capture")
    LOG.info("analysing %d capture object(s) under %s", len(listing.locations), args.capture)

    analysis = WindowAnalysis(spec, baseline, settings, truth)
    for location in listing.locations:
        analysis.add_object(location, storage.lines(location))
    run_id = uuid.uuid4().hex
    report = build_report(
        run_id=run_id,
        generated_at=started,
        model=model,
        baseline=baseline,
        reference=args.reference,
        capture=args.capture,
        window=window,
        skipped_objects=listing.skipped,
        settings=settings,
        dimensions=dimensions,
        analysis=analysis.result(),
    )
    destination = report_location(args.out, model, window.end if window and window.end else started, run_id)
    storage.write_text(destination, serialise(report, one_line=is_s3(destination)), "--out")
    if args.metrics_namespace:
        data = metric_data(report, dimensions, started)
        requests = publish(cloudwatch(), args.metrics_namespace, data)
        LOG.info("published %d metric data in %d request(s) to %s", len(data), requests, args.metrics_namespace)
    LOG.info(
        "%d record(s) analysed, %d malformed; drifted: %s; report: %s",
        report["records"],
        report["malformed"],
        ", ".join(report["drifted"]) or "none",
        destination,
    )
    return 0


def _spec(name: str) -> FeatureSpec:
    from mlops.features.registry import get_spec

    try:
        return get_spec(name)
    except FeatureSpecError as exc:
        raise DriftInputError(f"--model: {exc}") from None


def _settings(args: argparse.Namespace, spec: FeatureSpec) -> AnalysisSettings:
    thresholds = _thresholds(args.thresholds, spec)
    for option, value in (
        ("--default-psi-threshold", args.default_psi_threshold),
        ("--default-distance-threshold", args.default_distance_threshold),
    ):
        _positive(option, value)
    if not 0.0 < args.significance < 0.5:
        raise DriftInputError(f"--significance {args.significance} must be between 0 and 0.5 (e.g. 0.001)")
    if not 0.0 < args.probability_threshold < 1.0:
        raise DriftInputError(f"--probability-threshold {args.probability_threshold} must be between 0 and 1")
    if args.max_segment_values < 1:
        raise DriftInputError(f"--max-segment-values {args.max_segment_values} must be at least 1")
    segments = tuple(s.strip() for s in (args.segments or "").split(",") if s.strip())
    if len(set(segments)) != len(segments):
        raise DriftInputError(f"--segments {args.segments!r} names a column twice")
    return AnalysisSettings(
        thresholds=thresholds,
        psi_threshold=args.default_psi_threshold,
        distance_threshold=args.default_distance_threshold,
        significance=args.significance,
        probability_threshold=args.probability_threshold,
        segments=segments,
        max_segment_values=args.max_segment_values,
    )


def _positive(option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise DriftInputError(f"{option} {value!r} must be a positive number")
    return float(value)


def _thresholds(text: str | None, spec: FeatureSpec) -> dict[str, float]:
    if not text:
        return {}
    try:
        document = json.loads(text)
    except ValueError:
        raise DriftInputError(f"--thresholds {text!r} is not JSON (e.g. '{{\"sessions\": 0.15}}')") from None
    if not isinstance(document, dict):
        raise DriftInputError(f"--thresholds {text!r} must be a JSON object of feature -> threshold")
    unknown = sorted(set(document) - set(spec.feature_names))
    if unknown:
        raise DriftInputError(
            f"--thresholds names {unknown}, not features of spec '{spec.name}' ({', '.join(spec.feature_names)})"
        )
    return {name: _positive(f"--thresholds[{name!r}]", value) for name, value in document.items()}


def _window(args: argparse.Namespace) -> Window | None:
    if args.window_end is None:
        if args.window_hours is not None:
            raise DriftInputError("--window-hours needs --window-end")
        return None
    hours = 1 if args.window_hours is None else args.window_hours
    if not 1 <= hours <= MAX_WINDOW_HOURS:
        raise DriftInputError(f"--window-hours {hours} must be between 1 and {MAX_WINDOW_HOURS}")
    # Capture folders are hourly and the current hour's is still being written: a run started at 13:00:07
    # analyses the whole hours before 13:00.
    end = parse_instant(args.window_end, "--window-end").replace(minute=0, second=0, microsecond=0)
    return Window.ending(end, hours)


def _dimensions(values: Sequence[str]) -> list[tuple[str, str]]:
    try:
        dimensions = [parse_dimension(value) for value in values]
    except ValueError as exc:
        raise DriftInputError(str(exc)) from None
    names = [name for name, _ in dimensions]
    if len(set(names)) != len(names):
        raise DriftInputError(f"--dimension names {sorted(names)} repeat a name")
    reserved = sorted(set(names) & {"Feature", "Metric", "Segment", "SegmentValue"})
    if reserved:
        raise DriftInputError(f"--dimension {reserved} is a dimension the job sets itself")
    if len(dimensions) > MAX_DIMENSIONS - 3:
        raise DriftInputError(f"at most {MAX_DIMENSIONS - 3} --dimension options (CloudWatch allows {MAX_DIMENSIONS})")
    return dimensions


def _cloudwatch_client() -> Any:
    import boto3

    return boto3.client("cloudwatch")


def _utc_now() -> datetime:
    return datetime.now(UTC)
