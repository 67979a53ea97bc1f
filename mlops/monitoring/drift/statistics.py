"""Drift statistics over binned distributions: the one implementation the baseline and the live window share.

Both sides of a comparison are histograms over the same bins, fixed by the baseline:

- a **numeric** feature has *fine* bins at the baseline's percentiles (one bin per value when it has at most
  100 distinct values), plus an underflow and an overflow bin for values outside the baseline's range; its
  *PSI* bins are the baseline's deciles (groups of fine bins, so both come from one histogram);
- a **categorical** feature has one bin per baseline category (the most frequent ones) plus an "other" bin.

Histograms make the live side streamable (counts and per-bin sums, whatever the window's size) and the
comparisons cheap. The statistics come from scipy: PSI is the symmetric relative entropy of the two binned
distributions (``scipy.special.rel_entr``); the numeric distance is the Kolmogorov-Smirnov statistic of the
binned CDFs, with its null distribution from ``scipy.stats.kstwobign``; the Wasserstein distance
(``scipy.stats.wasserstein_distance`` over bin means weighted by counts), divided by the baseline's standard
deviation, is reported too. Zero-count bins are smoothed with a pseudo-count of 0.5 per bin (Jeffreys'
prior), so a bin the baseline never saw gets a proportion that shrinks with the baseline's size instead of an
arbitrary epsilon.

Thresholds are effect sizes (how different the distributions are, not how sure we are), but a small window is
noisy: a threshold is raised to the statistic's *noise floor*, the value sampling alone exceeds with probability
``significance`` (0.1 % by default) at the two samples' sizes. Large windows are judged by the effect size,
small ones are not flagged for noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

FINE_BINS = 100
"""Percentile bins of a numeric feature (KS and Wasserstein)."""
PSI_BINS = 10
"""Decile bins of a numeric feature (PSI)."""
SMOOTHING = 0.5
"""Pseudo-count added to every bin before computing proportions for PSI."""

DEFAULT_PSI_THRESHOLD = 0.2
"""PSI at or above this flags a categorical feature: the credit-scoring convention's "significant shift"."""
DEFAULT_DISTANCE_THRESHOLD = 0.1
"""KS statistic at or above this flags a numeric feature: the CDFs differ by 10 percentage points somewhere."""
DEFAULT_SIGNIFICANCE = 0.001
"""Probability that sampling noise alone reaches a feature's noise floor (per feature and run)."""

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class NumericBins:
    """Bins of a numeric feature, fixed by the baseline.

    Fine bin 0 holds values below ``low`` (the baseline's minimum), the last one values above ``high`` (its
    maximum); in between, bin 1 is ``[low, cut_points[0]]`` and bin ``i`` is ``(cut_points[i-2],
    cut_points[i-1]]``, the last regular one ending at ``high``. ``psi_starts`` are the fine bins where each PSI
    bin starts (``numpy.add.reduceat`` groups a fine histogram into PSI bins).
    """

    low: float
    high: float
    cut_points: tuple[float, ...]
    psi_starts: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of fine bins (regular ones plus underflow and overflow)."""
        return len(self.cut_points) + 3

    def index(self, values: np.ndarray) -> np.ndarray:
        """The fine bin of every value."""
        bins = np.searchsorted(np.asarray(self.cut_points, dtype=np.float64), values, side="left") + 1
        bins[values < self.low] = 0
        bins[values > self.high] = self.size - 1
        return bins

    def psi_counts(self, fine_counts: np.ndarray) -> np.ndarray:
        """A fine histogram's counts grouped into the PSI bins."""
        return np.add.reduceat(fine_counts, np.asarray(self.psi_starts))

    def as_json(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "cut_points": list(self.cut_points),
            "psi_starts": list(self.psi_starts),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> NumericBins:
        return cls(
            low=float(document["low"]),
            high=float(document["high"]),
            cut_points=tuple(float(v) for v in document["cut_points"]),
            psi_starts=tuple(int(v) for v in document["psi_starts"]),
        )


def numeric_bins(values: np.ndarray) -> NumericBins:
    """The bins of a numeric feature from its baseline values (at least one finite value).

    Cut points are observed values (``inverted_cdf`` quantiles), so a discrete feature's values never share a
    bin with their neighbours, and the PSI deciles are a subset of the fine percentiles.
    """
    values = np.asarray(values, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    distinct = np.unique(values)
    percentiles = np.quantile(values, np.arange(1, FINE_BINS) / FINE_BINS, method="inverted_cdf")
    # At most FINE_BINS distinct values: one bin per value (the largest closes the last regular bin).
    fine = distinct[:-1] if len(distinct) <= FINE_BINS else np.unique(percentiles[percentiles < high])
    step = FINE_BINS // PSI_BINS
    deciles = percentiles[step - 1 :: step]
    coarse = np.unique(deciles[deciles < high])
    positions = np.searchsorted(fine, coarse)
    assert np.array_equal(fine[positions], coarse), "PSI cut points must be fine cut points"
    starts = [0, 1, *(int(p) + 2 for p in positions), len(fine) + 2]
    return NumericBins(low=low, high=high, cut_points=tuple(float(v) for v in fine), psi_starts=tuple(starts))


class NumericHistogram:
    """Counts and value sums per fine bin; :meth:`add` takes any number of chunks (memory is the bins')."""

    def __init__(self, bins: NumericBins) -> None:
        self.bins = bins
        self.counts = np.zeros(bins.size, dtype=np.int64)
        self.sums = np.zeros(bins.size, dtype=np.float64)

    def add(self, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        index = self.bins.index(values)
        self.counts += np.bincount(index, minlength=self.bins.size)
        self.sums += np.bincount(index, weights=values, minlength=self.bins.size)


def proportions(counts: np.ndarray) -> np.ndarray:
    """Bin proportions with :data:`SMOOTHING` added to every bin (never zero, sum to one)."""
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + SMOOTHING) / (counts.sum() + SMOOTHING * len(counts))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two histograms over the same bins (smoothed; symmetric; >= 0).

    ``sum((a - e) * ln(a / e))``, i.e. the relative entropy taken both ways.
    """
    e, a = proportions(expected), proportions(actual)
    return float(np.sum(special.rel_entr(a, e) + special.rel_entr(e, a)))


def ks_distance(expected: np.ndarray, actual: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic of two histograms over the same ordered bins: the largest difference
    between their cumulative proportions (0 identical, 1 disjoint). Both must be non-empty."""
    e = np.cumsum(expected) / np.sum(expected)
    a = np.cumsum(actual) / np.sum(actual)
    return float(np.max(np.abs(e - a)))


def wasserstein(expected: NumericHistogram, actual: NumericHistogram) -> float:
    """First Wasserstein distance between two histograms, each bin standing at the mean of its values."""
    e, a = expected.counts > 0, actual.counts > 0
    return float(
        stats.wasserstein_distance(
            expected.sums[e] / expected.counts[e],
            actual.sums[a] / actual.counts[a],
            u_weights=expected.counts[e],
            v_weights=actual.counts[a],
        )
    )


def _effective_size(n: int, m: int) -> float:
    return n * m / (n + m)


def ks_noise_floor(n: int, m: int, significance: float) -> float:
    """KS statistic that two samples of sizes ``n`` and ``m`` from one distribution exceed with probability
    ``significance`` (asymptotic two-sample distribution; conservative for discrete data)."""
    return float(stats.kstwobign.isf(significance)) / math.sqrt(_effective_size(n, m))


def ks_p_value(distance: float, n: int, m: int) -> float:
    return float(stats.kstwobign.sf(distance * math.sqrt(_effective_size(n, m))))


def psi_noise_floor(bins: int, n: int, m: int, significance: float) -> float:
    """PSI that two samples of sizes ``n`` and ``m`` from one distribution over ``bins`` occupied bins exceed
    with probability ``significance``: ``PSI * n*m/(n+m)`` is asymptotically chi-square with ``bins - 1``
    degrees of freedom (it is the homogeneity chi-square statistic to second order)."""
    if bins < 2:
        return 0.0
    return float(stats.chi2.isf(significance, bins - 1)) / _effective_size(n, m)


def psi_p_value(value: float, bins: int, n: int, m: int) -> float:
    if bins < 2:
        return 1.0
    return float(stats.chi2.sf(value * _effective_size(n, m), bins - 1))


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift verdict. ``score`` is judged against ``threshold`` (the configured effect size,
    raised to the noise floor at this window's size); ``drifted`` means ``score >= threshold``."""

    feature: str
    kind: str
    method: str
    score: float
    threshold: float
    configured_threshold: float
    noise_floor: float
    p_value: float
    sample_size: int
    baseline_size: int
    psi: float
    ks: float | None = None
    wasserstein_normalised: float | None = None

    @property
    def drifted(self) -> bool:
        return self.score >= self.threshold

    @property
    def ratio(self) -> float:
        """``score / threshold``: 1 or more means drifted (what the drift alarms compare)."""
        return self.score / self.threshold

    def as_report(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "method": self.method,
            "kind": self.kind,
            "configured_threshold": self.configured_threshold,
            "noise_floor": self.noise_floor,
            "p_value": self.p_value,
            "sample_size": self.sample_size,
            "baseline_size": self.baseline_size,
            "psi": self.psi,
            "ks": self.ks,
            "wasserstein_normalised": self.wasserstein_normalised,
        }


def numeric_drift(
    feature: str,
    bins: NumericBins,
    baseline: NumericHistogram,
    live: NumericHistogram,
    *,
    scale: float,
    threshold: float,
    significance: float = DEFAULT_SIGNIFICANCE,
) -> FeatureDrift:
    """Drift of a numeric feature: the KS statistic decides; PSI (deciles) and the Wasserstein distance in
    baseline standard deviations (``scale``; ``None`` for a constant baseline) are reported."""
    n, m = int(baseline.counts.sum()), int(live.counts.sum())
    distance = ks_distance(baseline.counts, live.counts)
    floor = ks_noise_floor(n, m, significance)
    return FeatureDrift(
        feature=feature,
        kind=NUMERIC,
        method="ks",
        score=distance,
        threshold=max(threshold, floor),
        configured_threshold=threshold,
        noise_floor=floor,
        p_value=ks_p_value(distance, n, m),
        sample_size=m,
        baseline_size=n,
        psi=psi(bins.psi_counts(baseline.counts), bins.psi_counts(live.counts)),
        ks=distance,
        wasserstein_normalised=wasserstein(baseline, live) / scale if scale > 0 else None,
    )


def categorical_drift(
    feature: str,
    baseline: np.ndarray,
    live: np.ndarray,
    *,
    threshold: float,
    significance: float = DEFAULT_SIGNIFICANCE,
) -> FeatureDrift:
    """Drift of a categorical feature (counts per baseline category, "other" last): PSI decides."""
    n, m = int(np.sum(baseline)), int(np.sum(live))
    occupied = int(np.count_nonzero(np.asarray(baseline) + np.asarray(live)))
    value = psi(baseline, live)
    floor = psi_noise_floor(occupied, n, m, significance)
    return FeatureDrift(
        feature=feature,
        kind=CATEGORICAL,
        method="psi",
        score=value,
        threshold=max(threshold, floor),
        configured_threshold=threshold,
        noise_floor=floor,
        p_value=psi_p_value(value, occupied, n, m),
        sample_size=m,
        baseline_size=n,
        psi=value,
    )
