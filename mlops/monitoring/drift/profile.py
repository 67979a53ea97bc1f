"""Feature values → streaming profiles: the code path the baseline and every live window share.

A raw record becomes feature values with the feature spec's own transform (:func:`produce_features`, the
first half of :func:`mlops.features.spec.compute_features`); an entity-mode capture brings its feature values
ready-made, from the endpoint's answer (:mod:`mlops.monitoring.drift.capture`). Each value is then typed with the
spec's :func:`~mlops.features.spec.coerce_value` one feature at a time (:class:`FeatureValues`), so a missing or
mistyped value counts against its feature (data quality) instead of discarding the record. Typed values feed
a :class:`NumericProfile` or :class:`CategoricalProfile` in chunks: counts per baseline bin, range and
moments, never the values themselves.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mlops.features.spec import FeatureSpec, FeatureSpecError, coerce_value, is_missing
from mlops.monitoring.drift.statistics import NumericBins, NumericHistogram

CHUNK = 8192
"""Values buffered per feature before they are folded into its profile."""
MAX_EXAMPLES = 5
"""Examples of mistyped or unknown values kept per feature (for the report)."""


def produce_features(spec: FeatureSpec, raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """The spec's transform of one raw record, untyped; raises :class:`FeatureSpecError` when the transform
    fails (the inference container answers 400 then) or leaves out a feature."""
    try:
        produced = spec.transform(raw)
    except KeyError as exc:
        raise FeatureSpecError(f"raw record lacks column {exc.args[0]!r} needed by spec '{spec.name}'") from None
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise FeatureSpecError(str(exc)) from None
    missing = [name for name in spec.feature_names if name not in produced]
    if missing:
        raise FeatureSpecError(f"transform of spec '{spec.name}' did not produce feature(s) {missing}")
    return produced


class FeatureValues:
    """One feature's values typed per the spec: counts missing and mistyped ones, buffers the rest."""

    def __init__(self, spec: FeatureSpec, name: str) -> None:
        self.spec = spec
        self.name = name
        self.missing = 0
        self.type_errors = 0
        self.type_examples: list[str] = []
        self.buffer: list[Any] = []

    def add(self, value: Any) -> None:
        if is_missing(value):
            self.missing += 1
            return
        try:
            typed = coerce_value(self.spec, self.name, value)
        except FeatureSpecError:
            self.type_errors += 1
            if len(self.type_examples) < MAX_EXAMPLES:
                self.type_examples.append(repr(value)[:80])
            return
        self.buffer.append(typed)

    def take(self) -> list[Any]:
        """The buffered values (the buffer starts over)."""
        values, self.buffer = self.buffer, []
        return values


class NumericProfile:
    """Histogram over the baseline's bins, plus count, range and moments of a numeric feature."""

    def __init__(self, bins: NumericBins) -> None:
        self.histogram = NumericHistogram(bins)
        self.count = 0
        self.total = 0.0
        self.total_squares = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, values: Sequence[float]) -> None:
        if not values:
            return
        array = np.asarray(values, dtype=np.float64)
        self.histogram.add(array)
        self.count += len(array)
        self.total += float(array.sum())
        self.total_squares += float(np.square(array).sum())
        self.low = min(self.low, float(array.min()))
        self.high = max(self.high, float(array.max()))

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def std(self) -> float | None:
        """Population standard deviation (``None`` without values)."""
        if not self.count:
            return None
        mean = self.total / self.count
        return math.sqrt(max(self.total_squares / self.count - mean * mean, 0.0))

    @property
    def outside_range(self) -> int:
        """Values below the baseline's minimum or above its maximum (the underflow and overflow bins)."""
        return int(self.histogram.counts[0] + self.histogram.counts[-1])


class CategoricalProfile:
    """Counts per baseline category (the "other" bucket last), and values outside the baseline's domain."""

    def __init__(self, categories: Sequence[str], domain: Iterable[str] | None) -> None:
        self.categories = tuple(categories)
        self.position = {category: i for i, category in enumerate(self.categories)}
        self.domain = frozenset(domain) if domain is not None else None
        self.counts = np.zeros(len(self.categories) + 1, dtype=np.int64)
        self.count = 0
        self.unknown = 0
        self.unknown_examples: list[str] = []

    def add(self, values: Sequence[str]) -> None:
        other = len(self.categories)
        for value, times in Counter(values).items():
            self.counts[self.position.get(value, other)] += times
            if self.domain is not None and value not in self.domain:
                self.unknown += times
                if len(self.unknown_examples) < MAX_EXAMPLES:
                    self.unknown_examples.append(value[:80])
        self.count += len(values)


_TRUE = frozenset({"1", "1.0", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "0.0", "false", "no", "n", "f"})


def binary_label(value: Any) -> int | None:
    """A binary label as 0 or 1 (``1``, ``1.0``, ``"1"``, ``true``, ``"yes"``...); ``None`` when it is not one."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if value in (0, 1) else None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return 1
        if text in _FALSE:
            return 0
    return None
