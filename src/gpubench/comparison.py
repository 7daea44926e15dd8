"""Noise-aware comparison of one benchmark's rounds in two runs (or on two GPUs).

At the results level (imports nothing from gpubench), so that both the report (:mod:`gpubench.report.compare`
re-exports it) and the pytest plugin's ``--gpubench-compare-fail`` gate use the same rule.

:func:`compare` answers "is ``after`` slower than ``before``, by more than the threshold, beyond what the
spread of the rounds explains?" with a :class:`Comparison`: the ratio of medians (``after / before``, times,
so above 1 is slower) with its ``1 - alpha`` interval, a two-sided p-value and one verdict.

The rule, in order:

1. **p-value and interval.** With the raw rounds of both sides (pytest-benchmark's ``stats.data``, saved
   with ``--benchmark-save-data``): Mann–Whitney U, exact when both sides have at most
   :data:`EXACT_LIMIT` rounds and no ties, else the normal approximation with tie and continuity
   correction; the interval is a seeded percentile bootstrap of the ratio of medians (deterministic).
   With only the stats block of either side: a z-test on the log ratio of medians, each median's
   standard error taken as ``1.2533 * (IQR / 1.349) / sqrt(rounds)`` (the large-sample error of a
   median, the spread estimated from the IQR), and the interval ``exp(log ratio ± z * se)``.
2. **too noisy to compare** when either side has fewer than ``min_rounds`` rounds (never flagged).
3. When either side's IQR is above ``max_spread`` of its median (a busy machine, unpinned clocks, which
   also shift whole runs): **slower** only when ``p < alpha`` and the whole interval lies above
   ``1 + max(threshold, IQR/median)`` (**faster** likewise below its inverse); otherwise **too noisy to
   compare**, saying what to change.
4. Otherwise **slower** (a regression, flagged) when ``p < alpha`` **and** the change is above
   ``threshold_pct``; **faster** likewise below ``-threshold_pct``; **within threshold** when significant
   but smaller; otherwise **within noise (±x%)**, x the farthest end of the interval from no change.

Pure Python and numpy (for the bootstrap); scipy is not needed.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_ALPHA = 0.01
# the false-discovery rate a report's flags control over all its comparisons (Benjamini-Hochberg)
DEFAULT_FDR = 0.05
MIN_ROUNDS = 5
# torch.utils.benchmark warns at IQR/median 0.1 and, above 0.25, of "significant environmental influence"
MAX_SPREAD = 0.25
EXACT_LIMIT = 50
RESAMPLES = 2000
SEED = 12
# asymptotic standard error of a normal sample's median, in standard deviations times sqrt(n)
_MEDIAN_SE = math.sqrt(math.pi / 2)
_IQR_PER_SIGMA = 1.3489795
ADVICE = (
    "run more rounds (--benchmark-min-rounds), on a quiet machine (no other jobs), "
    "with pinned clocks (nvidia-smi -lgc / cpupower frequency-set)"
)


@dataclass(frozen=True)
class NoiseRule:
    """How sure a comparison must be: significance level, least rounds, largest IQR/median, and the
    false-discovery rate ``fdr`` a whole report's flags control (see :mod:`gpubench.report.fdr`)."""

    alpha: float = DEFAULT_ALPHA
    fdr: float = DEFAULT_FDR
    min_rounds: int = MIN_ROUNDS
    max_spread: float = MAX_SPREAD
    resamples: int = RESAMPLES
    seed: int = SEED


@dataclass(frozen=True)
class Rounds:
    """One benchmark's times (seconds per call) in one run: the raw rounds, or the stats block alone."""

    median: float
    iqr: float
    count: int
    data: tuple[float, ...] = ()

    @classmethod
    def from_data(cls, data: Sequence[float]) -> Rounds:
        values = tuple(float(v) for v in data)
        if len(values) >= 2:
            q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        else:
            q1 = q3 = values[0] if values else math.nan
        median = statistics.median(values) if values else math.nan
        return cls(median, q3 - q1, len(values), values)

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> Rounds:
        """pytest-benchmark's saved ``stats`` block; its ``data`` list when present (``--benchmark-save-data``)."""
        data = stats.get("data")
        if isinstance(data, list) and data and all(_positive(v) for v in data):
            return cls.from_data(data)
        return cls(float(stats["median"]), float(stats.get("iqr") or 0.0), int(stats.get("rounds") or 1))

    @property
    def raw(self) -> bool:
        return bool(self.data)

    @property
    def spread(self) -> float:
        """IQR / median (0.1: the middle half of the rounds spans 10% of the median)."""
        return self.iqr / self.median if self.median > 0 else math.inf


@dataclass(frozen=True)
class Comparison:
    """``after`` against ``before``: ratio of medians with its interval, p-value, verdict and why."""

    verdict: str  # "slower", "faster", "within threshold", "within noise", "too noisy"
    ratio: float
    low: float
    high: float
    p_value: float
    alpha: float
    threshold_pct: float
    method: str
    note: str = ""

    @property
    def change_pct(self) -> float:
        return (self.ratio - 1.0) * 100.0

    @property
    def flagged(self) -> bool:
        """A regression: significantly slower by more than the threshold."""
        return self.verdict == "slower"

    @property
    def significant(self) -> bool:
        return self.verdict != "too noisy" and self.p_value < self.alpha

    @property
    def noise_pct(self) -> float:
        """How far from no change the interval reaches, in percent (the ``±x%`` of "within noise")."""
        return max(self.high - 1.0, 1.0 - self.low) * 100.0

    def interval_text(self) -> str:
        level = f"{(1 - self.alpha) * 100:g}%"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"×{self.ratio:.3f} ({level} interval: n/a)"
        return f"×{self.ratio:.3f} [{self.low:.3f}–{self.high:.3f}] ({level})"

    def describe(self) -> str:
        """One line for a report cell: the verdict, the ratio with its interval, and p or the advice."""
        p = f"p={self.p_value:.2g}" if self.p_value >= 1e-4 else "p<1e-4"
        if self.verdict == "too noisy":
            return f"too noisy to compare: {self.note}; {self.interval_text()}"
        if self.verdict == "within noise":
            note = f" ({self.note})" if self.note else ""
            return f"within noise (±{self.noise_pct:.1f}%): {self.interval_text()}, {p}{note}"
        if self.verdict == "within threshold":
            return (
                f"within threshold ({self.change_pct:+.1f}%, limit {self.threshold_pct:.3g}%): "
                f"{self.interval_text()}, {p}"
            )
        note = f" ({self.note})" if self.note else ""
        return f"{self.verdict} {self.change_pct:+.1f}%: {self.interval_text()}, {p}{note}"

    def under_fdr(self, cutoff: float, fdr: float, comparisons: int) -> Comparison:
        """This comparison once the report controls its false-discovery rate: unchanged when its p-value is
        within the Benjamini–Hochberg ``cutoff`` (or it was not significant anyway), else "within noise",
        saying it was significant alone but not among ``comparisons`` at FDR ``fdr``."""
        if not self.significant or self.p_value <= cutoff:
            return self
        note = f"significant alone, not among {comparisons} comparisons at FDR {fdr:g}"
        return dataclasses.replace(self, verdict="within noise", note=note)


def compare(
    before: Rounds,
    after: Rounds,
    threshold_pct: float,
    rule: NoiseRule | None = None,
    names: tuple[str, str] = ("previous run", "latest run"),
) -> Comparison:
    """``after`` against ``before`` under ``rule`` (see the module docstring); ``names`` name them in notes."""
    rule = rule or NoiseRule()
    ratio = after.median / before.median if before.median > 0 else math.nan
    if before.raw and after.raw:
        p_value = mann_whitney_p(before.data, after.data)
        low, high = bootstrap_ratio_interval(before.data, after.data, rule)
        method = "Mann-Whitney U, bootstrap interval"
    else:
        p_value, low, high = _stats_block_test(before, after, rule.alpha)
        method = "stats block (median error from IQR)"
    verdict, note = _verdict(before, after, (ratio, low, high, p_value), threshold_pct, rule, names)
    return Comparison(verdict, ratio, low, high, p_value, rule.alpha, threshold_pct, method, note)


def _verdict(
    before: Rounds,
    after: Rounds,
    estimate: tuple[float, float, float, float],
    threshold_pct: float,
    rule: NoiseRule,
    names: tuple[str, str],
) -> tuple[str, str]:
    """The verdict and its note from the ratio, its interval and p-value (rule in the module docstring)."""
    ratio, low, high, p_value = estimate
    few = _too_few(before, after, rule, names)
    if few or not math.isfinite(ratio):
        return "too noisy", few or "no positive median time"
    spread, spread_note = _spread(before, after, names)
    significant = p_value < rule.alpha
    if spread > rule.max_spread or not math.isfinite(spread):
        # spread rounds hint at a busy machine, which shifts whole runs: flag only a change whose whole
        # interval lies beyond both the threshold and that spread
        margin = 1.0 + max(threshold_pct / 100.0, spread)
        if significant and low > margin:
            return "slower", f"{spread_note}, but the whole interval is beyond it"
        if significant and high < 1.0 / margin:
            return "faster", f"{spread_note}, but the whole interval is beyond it"
        return "too noisy", f"{spread_note} (limit {rule.max_spread:.0%}); {ADVICE}"
    change = (ratio - 1.0) * 100.0
    if not significant:
        return "within noise", ""
    if change > threshold_pct:
        return "slower", ""
    if change < -threshold_pct:
        return "faster", ""
    return "within threshold", ""


def _too_few(before: Rounds, after: Rounds, rule: NoiseRule, names: tuple[str, str]) -> str:
    for side, rounds in zip(names, (before, after), strict=True):
        if rounds.count < rule.min_rounds:
            return f"{rounds.count} round(s) in the {side}, fewer than {rule.min_rounds}; {ADVICE}"
    return ""


def _spread(before: Rounds, after: Rounds, names: tuple[str, str]) -> tuple[float, str]:
    """The larger IQR/median of the two sides, and a note naming it."""
    side, rounds = max(
        zip(names, (before, after), strict=True), key=lambda pair: _finite_or_inf(pair[1].spread)
    )
    if not math.isfinite(rounds.spread):
        return math.inf, f"no IQR saved for the {side}"
    return rounds.spread, f"IQR is {rounds.spread:.0%} of the median in the {side}"


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """1-based ranks with ties given their average rank, and the size of each group of ties."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    ties: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2.0 + 1.0
        ties.append(j - i + 1)
        i = j + 1
    return result, ties


def mann_whitney_p(first: Sequence[float], second: Sequence[float], exact_limit: int = EXACT_LIMIT) -> float:
    """Two-sided p-value of the Mann–Whitney U test that both samples come from one distribution.

    Exact (the U distribution counted) when there are no ties and both samples have at most
    ``exact_limit`` values; otherwise the normal approximation with tie and continuity correction.
    """
    n1, n2 = len(first), len(second)
    if n1 == 0 or n2 == 0:
        return 1.0
    rank, ties = ranks([*first, *second])
    u = sum(rank[:n1]) - n1 * (n1 + 1) / 2.0
    if max(ties) == 1 and n1 <= exact_limit and n2 <= exact_limit:
        counts = u_distribution(n1, n2)
        total = sum(counts)
        k = round(u)
        below, above = sum(counts[: k + 1]), sum(counts[k:])
        return min(1.0, 2.0 * min(below, above) / total)
    n = n1 + n2
    tie_term = sum(t**3 - t for t in ties) / (n * (n - 1))
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:
        return 1.0
    z = max(abs(u - n1 * n2 / 2.0) - 0.5, 0.0) / math.sqrt(variance)
    return math.erfc(z / math.sqrt(2.0))


def u_distribution(n1: int, n2: int) -> list[int]:
    """How many orderings of the two samples give each U = 0..n1*n2 (no ties).

    The counts are the coefficients of the Gaussian binomial ``[n1+n2 choose n1]_q``, built as the product
    of ``(1 - q^(n2+i)) / (1 - q^i)`` for i = 1..n1; each step leaves a polynomial with integer coefficients.
    """
    poly = [1] + [0] * (n1 * n2 + n1)
    degree = 0
    for i in range(1, n1 + 1):
        grow = n2 + i
        for d in range(degree + grow, grow - 1, -1):  # times (1 - q^(n2+i))
            poly[d] -= poly[d - grow]
        degree += grow
        for d in range(i, degree + 1):  # divided by (1 - q^i): a running sum with stride i
            poly[d] += poly[d - i]
        degree -= i
    return poly[: n1 * n2 + 1]


def bootstrap_ratio_interval(
    before: Sequence[float], after: Sequence[float], rule: NoiseRule
) -> tuple[float, float]:
    """Percentile bootstrap ``1 - alpha`` interval of ``median(after) / median(before)`` (seeded)."""
    import numpy as np

    rng = np.random.default_rng(rule.seed)
    first, second = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    a = np.median(first[rng.integers(0, first.size, size=(rule.resamples, first.size))], axis=1)
    b = np.median(second[rng.integers(0, second.size, size=(rule.resamples, second.size))], axis=1)
    ratios = b / a
    low, high = np.quantile(ratios, [rule.alpha / 2.0, 1.0 - rule.alpha / 2.0])
    return float(low), float(high)


def _stats_block_test(before: Rounds, after: Rounds, alpha: float) -> tuple[float, float, float]:
    """p-value and interval of the log ratio of medians from median, IQR and rounds alone."""
    if before.median <= 0 or after.median <= 0:
        return 1.0, math.nan, math.nan
    log_ratio = math.log(after.median / before.median)
    variance = sum(_log_median_variance(r) for r in (before, after))
    if not math.isfinite(variance):
        return 1.0, math.nan, math.nan
    if variance == 0:
        return (1.0 if log_ratio == 0 else 0.0), math.exp(log_ratio), math.exp(log_ratio)
    se = math.sqrt(variance)
    p_value = math.erfc(abs(log_ratio) / se / math.sqrt(2.0))
    z = statistics.NormalDist().inv_cdf(1.0 - alpha / 2.0)
    return p_value, math.exp(log_ratio - z * se), math.exp(log_ratio + z * se)


def _log_median_variance(rounds: Rounds) -> float:
    if rounds.count < 2:
        return math.inf
    se = _MEDIAN_SE * (rounds.iqr / _IQR_PER_SIGMA) / math.sqrt(rounds.count)
    return float((se / rounds.median) ** 2)
