"""Data quality against the baseline's constraints, and model quality from ground truth (scikit-learn).

Data-quality checks per feature (each a named violation when it fails):

- ``missing``: the share of missing or mistyped values grew by more than :data:`MISSING_TOLERANCE` over the
  baseline's;
- ``type``: values the spec's type refuses (a string for an ``Integral`` feature, a non-finite number...);
- ``range``: more than :data:`RANGE_TOLERANCE` of a numeric feature's values fall outside the baseline's
  ``[min, max]``;
- ``unknown_category``: more than :data:`UNKNOWN_TOLERANCE` of a categorical feature's values were never
  seen in the baseline.

Model quality joins predictions with labels (:mod:`mlops.monitoring.drift.groundtruth`) and computes AUC,
accuracy, precision, recall and F1 of the binary classifier with ``sklearn.metrics``; a metric that is not
defined for the matched rows (AUC with one class, precision without a positive prediction) is ``None``.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlops.monitoring.drift.profile import CategoricalProfile, FeatureValues, NumericProfile

MISSING_TOLERANCE = 0.01
RANGE_TOLERANCE = 0.01
UNKNOWN_TOLERANCE = 0.01
QUALITY_METRICS = ("auc", "accuracy", "precision", "recall", "f1")


def data_quality(
    baseline: Mapping[str, Any], values: FeatureValues, profile: NumericProfile | CategoricalProfile
) -> dict[str, Any]:
    """The data-quality section of one feature: live figures, the baseline's, and the failed checks."""
    constraints = baseline.get("constraints", {})
    present = profile.count
    total = present + values.missing + values.type_errors
    missing_fraction = (values.missing + values.type_errors) / total if total else None
    baseline_missing = float(constraints.get("missing_fraction") or 0.0)
    violations = []
    if missing_fraction is not None and missing_fraction - baseline_missing > MISSING_TOLERANCE:
        violations.append("missing")
    if values.type_errors:
        violations.append("type")
    section: dict[str, Any] = {
        "count": total,
        "missing": values.missing,
        "missing_fraction": missing_fraction,
        "baseline_missing_fraction": baseline_missing,
        "type_errors": values.type_errors,
        "type_error_examples": list(values.type_examples),
        "min": None,
        "max": None,
        "baseline_min": constraints.get("min"),
        "baseline_max": constraints.get("max"),
        "out_of_range_fraction": None,
        "unknown_fraction": None,
        "unknown_examples": [],
    }
    if isinstance(profile, NumericProfile):
        if present:
            section["min"], section["max"] = profile.low, profile.high
            section["out_of_range_fraction"] = profile.outside_range / present
            if section["out_of_range_fraction"] > RANGE_TOLERANCE:
                violations.append("range")
    elif present and profile.domain is not None:
        section["unknown_fraction"] = profile.unknown / present
        section["unknown_examples"] = list(profile.unknown_examples)
        if section["unknown_fraction"] > UNKNOWN_TOLERANCE:
            violations.append("unknown_category")
    section["violations"] = violations
    return section


class LabelledPredictions:
    """Predictions joined with their labels, kept compactly (9 bytes a pair, plus 8 per segment column)."""

    def __init__(self, segment_columns: Sequence[str]) -> None:
        self.scores = array("d")
        self.labels = array("b")
        self.codes = {column: array("q") for column in segment_columns}

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, score: float, label: int, codes: Mapping[str, int]) -> None:
        self.scores.append(score)
        self.labels.append(label)
        for column, code in codes.items():
            self.codes[column].append(code)

    def metrics(self, threshold: float, mask: np.ndarray | None = None) -> dict[str, float | None] | None:
        """Binary-classification metrics of every pair (or of ``mask``'s); ``None`` without pairs."""
        scores = np.frombuffer(self.scores, dtype=np.float64) if len(self.scores) else np.zeros(0)
        labels = np.frombuffer(self.labels, dtype=np.int8) if len(self.labels) else np.zeros(0, dtype=np.int8)
        if mask is not None:
            scores, labels = scores[mask], labels[mask]
        return binary_metrics(labels, scores, threshold)


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float | None] | None:
    """AUC (of the scores), accuracy, precision, recall and F1 (of ``scores >= threshold``)."""
    from sklearn import metrics

    if len(labels) == 0:
        return None
    predicted = (scores >= threshold).astype(np.int8)
    undefined: Any = np.nan  # scikit-learn's "no positive prediction/label" result; typed as a str in its stubs
    result: dict[str, float | None] = {
        "auc": float(metrics.roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else None,
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "precision": _defined(metrics.precision_score(labels, predicted, zero_division=undefined)),
        "recall": _defined(metrics.recall_score(labels, predicted, zero_division=undefined)),
        "f1": _defined(metrics.f1_score(labels, predicted, zero_division=undefined)),
    }
    return result


def _defined(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
