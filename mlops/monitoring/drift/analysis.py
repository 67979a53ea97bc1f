"""The streaming analysis of one window of captured requests against a baseline.

:class:`WindowAnalysis` takes capture lines one at a time (:meth:`~WindowAnalysis.add_line`) and keeps only
bounded state: per feature a buffer of at most :data:`~mlops.monitoring.drift.profile.CHUNK` values and a
histogram over the baseline's bins; prediction counters; per segment column at most
:data:`MAX_TRACKED_SEGMENT_VALUES` values' counters; a few malformed examples. The one part that grows with
the window is the join with ground truth (9 bytes per labelled prediction, see
:class:`~mlops.monitoring.drift.quality.LabelledPredictions`), and only when ground truth is given.
:meth:`~WindowAnalysis.result` computes drift, data quality, prediction and model-quality figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops.features.spec import FeatureSpec, FeatureSpecError
from mlops.monitoring.drift.baseline import baseline_scale, numeric_reference
from mlops.monitoring.drift.capture import (
    BAD_RECORD,
    BAD_RESPONSE,
    REASONS,
    UNREADABLE_OBJECT,
    MalformedCaptureError,
    parse_capture_line,
)
from mlops.monitoring.drift.groundtruth import GroundTruth
from mlops.monitoring.drift.profile import CHUNK, CategoricalProfile, FeatureValues, NumericProfile, produce_features
from mlops.monitoring.drift.quality import LabelledPredictions, data_quality
from mlops.monitoring.drift.sources import UnreadableObjectError
from mlops.monitoring.drift.statistics import (
    CATEGORICAL,
    DEFAULT_DISTANCE_THRESHOLD,
    DEFAULT_PSI_THRESHOLD,
    DEFAULT_SIGNIFICANCE,
    FeatureDrift,
    categorical_drift,
    numeric_drift,
)

MAX_MALFORMED_EXAMPLES = 10
MAX_TRACKED_SEGMENT_VALUES = 1000
"""Distinct values counted per segment column; later new values are counted as :data:`OTHER`."""
DEFAULT_MAX_SEGMENT_VALUES = 10
"""Segment values reported (and published) per column: the most frequent; the rest are aggregated as OTHER."""
OTHER = "__other__"
MISSING_VALUE = "(missing)"


@dataclass(frozen=True)
class AnalysisSettings:
    """How a window is judged: thresholds (per feature, or by the feature's kind), significance, segments."""

    thresholds: Mapping[str, float] = field(default_factory=dict)
    psi_threshold: float = DEFAULT_PSI_THRESHOLD
    distance_threshold: float = DEFAULT_DISTANCE_THRESHOLD
    significance: float = DEFAULT_SIGNIFICANCE
    probability_threshold: float = 0.5
    segments: tuple[str, ...] = ()
    max_segment_values: int = DEFAULT_MAX_SEGMENT_VALUES

    def threshold_of(self, feature: str, kind: str) -> float:
        if feature in self.thresholds:
            return float(self.thresholds[feature])
        return self.psi_threshold if kind == CATEGORICAL else self.distance_threshold


class _Feature:
    """One feature's live side: typed values → profile over the baseline's bins."""

    def __init__(self, spec: FeatureSpec, name: str, entry: Mapping[str, Any]) -> None:
        self.name = name
        self.entry = entry
        self.values = FeatureValues(spec, name)
        self.profile: NumericProfile | CategoricalProfile
        if entry["kind"] == CATEGORICAL:
            domain = entry.get("constraints", {}).get("domain")
            self.profile = CategoricalProfile(entry["categories"], domain)
        else:
            self.bins, self.reference = numeric_reference(entry)
            self.profile = NumericProfile(self.bins)

    def add(self, value: Any) -> None:
        self.values.add(value)
        if len(self.values.buffer) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        self.profile.add(self.values.take())

    def drift(self, settings: AnalysisSettings) -> FeatureDrift | None:
        if self.profile.count == 0:
            return None
        threshold = settings.threshold_of(self.name, self.entry["kind"])
        if isinstance(self.profile, CategoricalProfile):
            return categorical_drift(
                self.name,
                np.asarray(self.entry["counts"], dtype=np.int64),
                self.profile.counts,
                threshold=threshold,
                significance=settings.significance,
            )
        return numeric_drift(
            self.name,
            self.bins,
            self.reference,
            self.profile.histogram,
            scale=baseline_scale(self.entry),
            threshold=threshold,
            significance=settings.significance,
        )


class _Segment:
    """Per value of one segment column: records, predictions and positive predictions.

    A column names a feature (its value as the model scored it, in either request mode) or, for rows-mode
    requests, a raw column of the request; a name that is both is the feature. Entity-mode requests carry no raw
    columns: a raw column's value is missing there (the stack refuses such segments for entity-mode endpoints).
    """

    def __init__(self, column: str) -> None:
        self.column = column
        self.codes: dict[str, int] = {}
        self.values: list[str] = []
        self.records: list[int] = []
        self.predictions: list[int] = []
        self.positives: list[int] = []
        self.other: int | None = None

    def code(self, raw: Mapping[str, Any] | None, features: Mapping[str, Any]) -> int:
        """The code of this record's value; ``raw`` is the raw record (rows mode) or ``None`` (entity mode)."""
        column = self.column
        value = features[column] if column in features else raw.get(column) if raw is not None else None
        text = MISSING_VALUE if value is None or value == "" else str(value)
        code = self.codes.get(text)
        if code is None:
            if len(self.values) < MAX_TRACKED_SEGMENT_VALUES:
                code = self._new(text)
            else:
                code = self.other if self.other is not None else self._new(OTHER)
                self.other = code
        return code

    def _new(self, text: str) -> int:
        self.codes[text] = len(self.values)
        self.values.append(text)
        self.records.append(0)
        self.predictions.append(0)
        self.positives.append(0)
        return len(self.values) - 1


class WindowAnalysis:
    """Drift, data quality, predictions and model quality of a window of capture lines (see the module doc)."""

    def __init__(
        self,
        spec: FeatureSpec,
        baseline: Mapping[str, Any],
        settings: AnalysisSettings,
        ground_truth: GroundTruth | None = None,
    ) -> None:
        self.spec = spec
        self.baseline = baseline
        self.settings = settings
        self.ground_truth = ground_truth
        self.features = [_Feature(spec, name, baseline["features"][name]) for name in spec.feature_names]
        self.segments = [_Segment(column) for column in settings.segments]
        self.labelled = LabelledPredictions(settings.segments)
        self.objects = 0
        self.lines = 0
        self.requests = 0
        self.records = 0
        self.malformed_by_reason: dict[str, int] = dict.fromkeys(REASONS, 0)
        self.malformed_examples: list[dict[str, str]] = []
        self.predicted = 0
        self.positive = 0
        self.probability_total = 0.0
        self.label_mismatches = 0
        self.first_inference: str | None = None
        self.last_inference: str | None = None

    # --- input -------------------------------------------------------------------------------------------

    def add_object(self, location: str, lines: Iterable[bytes]) -> None:
        """Every line of one capture object; an object that cannot be read counts as one malformed item."""
        self.objects += 1
        number = 0
        try:
            for number, line in enumerate(lines, start=1):
                self.add_line(line, f"{location}:{number}")
        except UnreadableObjectError as exc:
            self._malformed(
                UNREADABLE_OBJECT, f"{location}:{number + 1}" if number else location, f"cannot read it ({exc})"
            )

    def add_line(self, line: bytes | str, where: str = "") -> None:
        """One capture line (blank lines are ignored)."""
        if not line.strip():
            return
        self.lines += 1
        try:
            request = parse_capture_line(line, self.spec)
            # Entity mode: the values the model scored, from the response; rows mode: the spec's transform.
            produced: list[Mapping[str, Any]] = (
                list(request.features)
                if request.features is not None
                else [self._produce(position, raw) for position, raw in enumerate(request.records)]
            )
        except MalformedCaptureError as exc:
            self._malformed(exc.reason, where, str(exc))
            return
        self.requests += 1
        self.records += len(produced)
        for feature in self.features:
            for values in produced:
                feature.add(values[feature.name])
        raws: list[Mapping[str, Any] | None] = (
            list(request.records) if request.mode == "rows" else [None] * len(produced)
        )
        codes = [
            [segment.code(raw, values) for segment in self.segments] for raw, values in zip(raws, produced, strict=True)
        ]
        for row in codes:
            for segment, code in zip(self.segments, row, strict=True):
                segment.records[code] += 1
        if request.inference_time:
            if self.first_inference is None or request.inference_time < self.first_inference:
                self.first_inference = request.inference_time
            if self.last_inference is None or request.inference_time > self.last_inference:
                self.last_inference = request.inference_time
        if request.response_problem is not None:
            self._malformed(BAD_RESPONSE, where, request.response_problem)
        if request.predictions is None:
            return
        threshold = self.settings.probability_threshold
        for probability, row in zip(request.predictions, codes, strict=True):
            positive = probability >= threshold
            self.predicted += 1
            self.positive += positive
            self.probability_total += probability
            for segment, code in zip(self.segments, row, strict=True):
                segment.predictions[code] += 1
                segment.positives[code] += positive
        self._join(request.join_key, request.predictions, codes)

    def _produce(self, position: int, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            return produce_features(self.spec, raw)
        except FeatureSpecError as exc:
            raise MalformedCaptureError(BAD_RECORD, f"record {position}: {exc}") from None
        except Exception as exc:
            # A transform failing in an unforeseen way on odd input (the endpoint answered 500) must not end the
            # run: the request is counted with the error's type, and a spec bug shows as malformed traffic.
            raise MalformedCaptureError(BAD_RECORD, f"record {position}: {type(exc).__name__}: {exc}") from None

    def _join(self, key: str | None, predictions: list[float], codes: list[list[int]]) -> None:
        if self.ground_truth is None or key is None:
            return
        labels = self.ground_truth.labels.get(key)
        if labels is None:
            return
        if len(labels) != len(predictions):
            self.label_mismatches += 1
            return
        columns = self.settings.segments
        for probability, label, row in zip(predictions, labels, codes, strict=True):
            self.labelled.add(probability, label, dict(zip(columns, row, strict=True)))

    def _malformed(self, reason: str, where: str, message: str) -> None:
        self.malformed_by_reason[reason] += 1
        if len(self.malformed_examples) < MAX_MALFORMED_EXAMPLES:
            self.malformed_examples.append({"location": where, "reason": reason, "message": message[:300]})

    # --- output ------------------------------------------------------------------------------------------

    @property
    def malformed(self) -> int:
        return sum(self.malformed_by_reason.values())

    def result(self) -> dict[str, Any]:
        """The analysis sections of the report (see :mod:`mlops.monitoring.drift`)."""
        for feature in self.features:
            feature.flush()
        features: dict[str, Any] = {}
        drifted: list[str] = []
        quality: dict[str, Any] = {}
        for feature in self.features:
            quality[feature.name] = data_quality(feature.entry, feature.values, feature.profile)
            drift = feature.drift(self.settings)
            if drift is not None:
                features[feature.name] = drift.as_report()
                if drift.drifted:
                    drifted.append(feature.name)
        target = self.baseline.get("target") or {}
        return {
            "records": self.records,
            "malformed": self.malformed,
            "malformed_by_reason": dict(self.malformed_by_reason),
            "malformed_responses": self.malformed_by_reason[BAD_RESPONSE],
            "malformed_examples": list(self.malformed_examples),
            "requests": self.requests,
            "lines": self.lines,
            "objects": self.objects,
            "first_inference_time": self.first_inference,
            "last_inference_time": self.last_inference,
            "features": features,
            "drifted": drifted,
            "data_quality": quality,
            "data_quality_violations": [f"{name}:{check}" for name, q in quality.items() for check in q["violations"]],
            "predictions": {
                "count": self.predicted,
                "positive": self.positive,
                "positive_rate": self.positive / self.predicted if self.predicted else None,
                "mean_probability": self.probability_total / self.predicted if self.predicted else None,
                "probability_threshold": self.settings.probability_threshold,
                "baseline_positive_rate": target.get("positive_rate"),
            },
            "ground_truth": self._ground_truth_section(),
            "segments": self._segments_section(),
        }

    def _ground_truth_section(self) -> dict[str, Any] | None:
        if self.ground_truth is None:
            return None
        return {
            **self.ground_truth.as_report(),
            "matched": len(self.labelled),
            "label_count_mismatches": self.label_mismatches,
            "metrics": self.labelled.metrics(self.settings.probability_threshold),
        }

    def _segments_section(self) -> dict[str, Any]:
        """Per column: the most frequent values (and the rest aggregated as OTHER), each with its figures."""
        sections: dict[str, Any] = {}
        threshold = self.settings.probability_threshold
        for segment in self.segments:
            order = sorted(range(len(segment.values)), key=lambda c: (-segment.records[c], segment.values[c]))
            shown = [c for c in order if segment.values[c] != OTHER][: self.settings.max_segment_values]
            rest = [c for c in order if c not in shown]
            joined = self.labelled.codes[segment.column]
            codes = np.frombuffer(joined, dtype=np.int64) if len(joined) else np.zeros(0, dtype=np.int64)
            groups = [(segment.values[c], [c]) for c in shown] + ([(OTHER, rest)] if rest else [])
            section: dict[str, Any] = {}
            for value, members in groups:
                predictions = sum(segment.predictions[c] for c in members)
                positives = sum(segment.positives[c] for c in members)
                mask = np.isin(codes, members)
                section[value] = {
                    "records": sum(segment.records[c] for c in members),
                    "predictions": predictions,
                    "positive_rate": positives / predictions if predictions else None,
                    "matched": int(mask.sum()),
                    "metrics": self.labelled.metrics(threshold, mask) if self.ground_truth is not None else None,
                }
            sections[segment.column] = {
                "values": section,
                "distinct_values": len(segment.values),
                "truncated": bool(rest),
            }
        return sections
