"""The drift baseline: what the live side needs to compute drift and data quality, from the training features.

The training pipeline's preprocess step writes it (``<output>/baseline/drift-baseline.json``) over the training
split's feature columns; the drift job reads it (or computes it the same way from raw training rows). Values go
through :mod:`mlops.monitoring.drift.profile`, the code the live window uses, so baseline and live statistics
cannot be computed two ways.

Document (JSON, deterministic: same rows, same bytes)::

    {
      "format": "mlops-drift-baseline/1",
      "feature_spec": "customer-churn", "feature_spec_version": 1, "feature_names": [...],
      "rows": 1234, "rejected_rows": 0, "source": "<where the rows came from>",
      "target": {"name": "churned", "count": 1234, "positive_rate": 0.31} | null,
      "features": {
        "<numeric feature>": {
          "kind": "numeric", "type": "Integral" | "Fractional",
          "count": rows, "present": n, "missing": k, "type_errors": t,
          "bins": {"low", "high", "cut_points": [...], "psi_starts": [...]},   # statistics.NumericBins
          "counts": [...], "sums": [...],                                       # per fine bin
          "mean": float, "std": float,
          "constraints": {"type", "missing_fraction", "min", "max", "domain": null}
        },
        "<categorical feature>": {
          "kind": "categorical", "type": "String", "count", "present", "missing", "type_errors",
          "categories": [...],            # the most frequent values (at most 50)
          "counts": [...],                # per category, then "other"
          "constraints": {"type", "missing_fraction", "min": null, "max": null,
                          "domain": [...] | null}   # every value seen (null beyond 1000 distinct)
        }
      }
    }
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops.features.spec import FeatureSpec, FeatureSpecError
from mlops.monitoring.drift.errors import DriftInputError
from mlops.monitoring.drift.profile import (
    CategoricalProfile,
    FeatureValues,
    NumericProfile,
    binary_label,
    produce_features,
)
from mlops.monitoring.drift.sources import Storage
from mlops.monitoring.drift.statistics import CATEGORICAL, NUMERIC, NumericBins, NumericHistogram, numeric_bins

if TYPE_CHECKING:
    import pandas as pd

BASELINE_FORMAT = "mlops-drift-baseline/1"
BASELINE_FILE = "drift-baseline.json"
"""Name of the baseline file next to Model Monitor's statistics.json and constraints.json."""
MAX_CATEGORIES = 50
"""Categories with a bin of their own; rarer ones share the "other" bin."""
MAX_DOMAIN = 1000
"""Distinct values kept as a categorical feature's allowed domain; beyond, the domain is not checked."""
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


class BaselineError(DriftInputError):
    """A baseline cannot be computed or read (the message names the feature or the file)."""


def compute_baseline(spec: FeatureSpec, features: pd.DataFrame, *, source: str = "", rejected_rows: int = 0) -> dict:
    """The drift baseline of a frame of feature values (one column per spec feature; the target's column is
    used when present). Raises :class:`BaselineError` when the frame is empty or lacks a feature's column,
    or a feature has no usable value."""
    if len(features) == 0:
        raise BaselineError(f"no rows to compute the drift baseline of feature spec '{spec.name}' from")
    absent = [name for name in spec.feature_names if name not in features.columns]
    if absent:
        raise BaselineError(f"the baseline rows lack the feature column(s) {absent} of feature spec '{spec.name}'")
    entries = {name: _feature_entry(spec, name, features[name].tolist()) for name in spec.feature_names}
    target = None
    if spec.target is not None and spec.target in features.columns:
        labels = [label for label in map(binary_label, features[spec.target].tolist()) if label is not None]
        if labels:
            target = {"name": spec.target, "count": len(labels), "positive_rate": sum(labels) / len(labels)}
    return {
        "format": BASELINE_FORMAT,
        "feature_spec": spec.name,
        "feature_spec_version": spec.version,
        "feature_names": list(spec.feature_names),
        "rows": len(features),
        "rejected_rows": rejected_rows,
        "source": source,
        "target": target,
        "features": entries,
    }


def _feature_entry(spec: FeatureSpec, name: str, raw_values: list[Any]) -> dict[str, Any]:
    values = FeatureValues(spec, name)
    for value in raw_values:
        values.add(value)
    typed = values.take()
    if not typed:
        raise BaselineError(f"feature '{name}' has no usable value in the baseline rows ({len(raw_values)} rows)")
    common = {
        "type": spec.feature_type(name),
        "count": len(raw_values),
        "present": len(typed),
        "missing": values.missing,
        "type_errors": values.type_errors,
    }
    missing_fraction = (values.missing + values.type_errors) / len(raw_values)
    if spec.feature_type(name) == "String":
        frequencies = Counter(typed)
        ranked = sorted(frequencies, key=lambda value: (-frequencies[value], value))
        domain = sorted(frequencies) if len(frequencies) <= MAX_DOMAIN else None
        profile = CategoricalProfile(ranked[:MAX_CATEGORIES], domain)
        profile.add(typed)
        return {
            "kind": CATEGORICAL,
            **common,
            "categories": list(profile.categories),
            "counts": profile.counts.tolist(),
            "constraints": {
                "type": common["type"],
                "missing_fraction": missing_fraction,
                "min": None,
                "max": None,
                "domain": domain,
            },
        }
    array = np.asarray(typed, dtype=np.float64)
    bins = numeric_bins(array)
    numeric = NumericProfile(bins)
    numeric.add(typed)
    return {
        "kind": NUMERIC,
        **common,
        "bins": bins.as_json(),
        "counts": numeric.histogram.counts.tolist(),
        "sums": numeric.histogram.sums.tolist(),
        "mean": numeric.mean,
        "std": numeric.std,
        "constraints": {
            "type": common["type"],
            "missing_fraction": missing_fraction,
            "min": bins.low,
            "max": bins.high,
            "domain": None,
        },
    }


def baseline_from_raw(spec: FeatureSpec, raw: pd.DataFrame, *, source: str = "") -> dict:
    """The baseline of raw training rows: each row through the spec's transform (rows it rejects are counted
    and left out, as the training pipeline does), then :func:`compute_baseline`."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    rejected = 0
    for record in raw.to_dict(orient="records"):
        try:
            produced = produce_features(spec, record)
        except FeatureSpecError:
            rejected += 1
            continue
        row = {name: produced[name] for name in spec.feature_names}
        if spec.target is not None and spec.target in record:
            row[spec.target] = record[spec.target]
        rows.append(row)
    if not rows:
        raise BaselineError(
            f"{source or 'the reference'}: none of its {len(raw)} rows gives the features of spec '{spec.name}'"
        )
    return compute_baseline(spec, pd.DataFrame(rows), source=source, rejected_rows=rejected)


def load_baseline(location: str, storage: Storage | None = None, *, option: str = "--reference") -> dict:
    """A baseline document from a file or an ``s3://`` URI; :class:`BaselineError` when it is not one."""
    content = (storage or Storage()).read_bytes(location, option)
    return parse_baseline(content, location, option)


def parse_baseline(content: bytes, location: str, option: str = "--reference") -> dict:
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        raise BaselineError(f"{option} {location}: not JSON") from None
    if not isinstance(document, dict) or document.get("format") != BASELINE_FORMAT:
        raise BaselineError(f"{option} {location}: not a drift baseline (expected format {BASELINE_FORMAT!r})")
    if not isinstance(document.get("features"), dict) or not document["features"]:
        raise BaselineError(f"{option} {location}: the baseline has no features")
    return document


def check_baseline(spec: FeatureSpec, baseline: Mapping[str, Any], location: str) -> None:
    """Refuse a baseline computed for another spec (or another version of its features)."""
    names = list(baseline.get("feature_names") or [])
    if baseline.get("feature_spec") != spec.name or names != list(spec.feature_names):
        raise BaselineError(
            f"--reference {location}: the baseline is for feature spec {baseline.get('feature_spec')!r} "
            f"{names}, not '{spec.name}' {list(spec.feature_names)}"
        )


def read_reference(spec: FeatureSpec, location: str, storage: Storage) -> dict:
    """The baseline ``--reference`` names: a baseline file (``.json``), a folder or prefix holding
    ``drift-baseline.json`` (the preprocess step's baseline output), or raw training rows (a CSV or Parquet
    file, or a folder or prefix of them), from which it is computed."""
    if location.lower().endswith(".json"):
        baseline = load_baseline(location, storage)
        check_baseline(spec, baseline, location)
        return baseline
    if location.lower().endswith(TABLE_SUFFIXES):
        files = [location]
    else:
        found = storage.list_files(location, (".json", *TABLE_SUFFIXES), "--reference")
        baselines = [f for f in found if f.rsplit("/", 1)[-1] == BASELINE_FILE]
        if baselines:
            return read_reference(spec, baselines[0], storage)
        files = [f for f in found if f.lower().endswith(TABLE_SUFFIXES)]
        if not files:
            raise BaselineError(f"--reference {location}: no {BASELINE_FILE}, .csv or .parquet rows there")
    frame = _read_tables(files, storage)
    if len(frame) == 0:
        raise BaselineError(f"--reference {location}: no rows")
    return baseline_from_raw(spec, frame, source=location)


def _read_tables(files: list[str], storage: Storage) -> pd.DataFrame:
    import pandas as pd

    frames = []
    for location in files:
        content = storage.read_bytes(location, "--reference")
        try:
            if location.lower().endswith(".csv"):
                frames.append(pd.read_csv(io.BytesIO(content)))
            else:
                frames.append(pd.read_parquet(io.BytesIO(content)))
        except pd.errors.EmptyDataError:
            continue
        except (ValueError, OSError, ImportError) as exc:
            raise BaselineError(f"--reference {location}: cannot read it as a table ({exc})") from None
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def numeric_reference(entry: Mapping[str, Any]) -> tuple[NumericBins, NumericHistogram]:
    """The bins and histogram of a numeric feature's baseline entry."""
    bins = NumericBins.from_json(entry["bins"])
    histogram = NumericHistogram(bins)
    histogram.counts = np.asarray(entry["counts"], dtype=np.int64)
    histogram.sums = np.asarray(entry["sums"], dtype=np.float64)
    if len(histogram.counts) != bins.size:
        raise BaselineError(
            f"baseline feature bins and counts disagree ({bins.size} bins, {len(histogram.counts)} counts)"
        )
    return bins, histogram


def baseline_scale(entry: Mapping[str, Any]) -> float:
    """The baseline's standard deviation of a numeric feature (0 for a constant one)."""
    std = entry.get("std")
    return float(std) if isinstance(std, int | float) and math.isfinite(std) else 0.0
