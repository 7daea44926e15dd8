"""Run-to-run spread: is a GPU's latest run slower than its own previous runs explain?

The rounds of one run only show the noise *within* that run. Whole runs shift too: a night when every GPU
of a node is 2% slower (a warm room, another job on the host, a driver's clock policy) moves all rounds of
the run together, so a within-run test calls that shift significant, and over hundreds of GPUs a few such
shifts pass any threshold. :func:`run_to_run` therefore also tests the latest run's median against the
medians of the GPU's previous runs (up to :data:`SPREAD_RUNS`): centre their median, spread
``1.4826 × MAD`` (robust: a slowdown that began a few runs ago barely moves either), and
``t = log(latest / centre) / (spread × sqrt(1 + π / (2 n)))`` against Student's t with ``0.4 (n - 1)``
degrees of freedom (the ``π / 2n`` term: the centre, a median of ``n`` values, is uncertain too; ``0.4``:
the MAD carries about 37% of the information of a standard deviation on normal data, and by simulation
this keeps ``P(p < 0.01)`` at or below 0.01 for n = 4..20 runs with no change). :func:`gate` keeps
a comparison's flag only when this test agrees; its p-value becomes the larger of the two, which is a valid
p-value for "both tests reject" (an intersection–union test), so Benjamini–Hochberg pools it unchanged.
With fewer than :data:`MIN_SPREAD_RUNS` previous runs there is no spread to test against and the within-run
test decides alone. Like the within-run p-values (:mod:`gpubench.report.fdr`), the run-to-run ones are
held to a false-discovery rate over all the report's GPU trends (:func:`run_cutoff`).

Pure Python (the t distribution from the regularized incomplete beta function); scipy is not needed.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpubench.report.compare import Comparison

# previous runs the spread is estimated from, and the fewest that make an estimate
SPREAD_RUNS = 20
MIN_SPREAD_RUNS = 4
# 1.4826 × MAD estimates a normal sample's standard deviation
_MAD_SIGMA = 1.482602218505602
# degrees of freedom per previous run beyond the first (see the module docstring)
_DF_PER_RUN = 0.4


@dataclass(frozen=True)
class RunSpread:
    """The latest run's median against the previous ``runs`` medians: the two-sided ``p_value``, the
    robust run-to-run ``spread_pct`` (one standard deviation, percent) and the ``change_pct`` from their
    median."""

    runs: int
    spread_pct: float
    change_pct: float
    p_value: float

    def describe(self) -> str:
        p = f"p={self.p_value:.2g}" if self.p_value >= 1e-4 else "p<1e-4"
        return f"run-to-run {self.change_pct:+.1f}% against ±{self.spread_pct:.1f}% (1 sd over {self.runs} runs), {p}"


def run_to_run(previous: Sequence[float], latest: float) -> RunSpread | None:
    """The test of the module docstring on median times (seconds); None with fewer than
    :data:`MIN_SPREAD_RUNS` positive previous medians (only the last :data:`SPREAD_RUNS` are used)."""
    logs = [math.log(m) for m in previous[-SPREAD_RUNS:] if m > 0 and math.isfinite(m)]
    if len(logs) < MIN_SPREAD_RUNS or not latest > 0:
        return None
    centre = statistics.median(logs)
    spread = _MAD_SIGMA * statistics.median(abs(v - centre) for v in logs)
    change = math.log(latest) - centre
    n = len(logs)
    if spread == 0:
        p_value = 1.0 if change == 0 else 0.0
    else:
        t = change / (spread * math.sqrt(1.0 + math.pi / (2.0 * n)))
        p_value = student_t_two_sided(t, max(1.0, _DF_PER_RUN * (n - 1)))
    return RunSpread(n, spread * 100.0, math.expm1(change) * 100.0, p_value)


def gate(result: Comparison, spread: RunSpread | None, cutoff: float = 1.0, family: int = 0) -> Comparison:
    """``result`` once the run-to-run test has had its say: a "slower" or "faster" verdict stays only
    when ``spread.p_value < alpha`` and ``<= cutoff`` (the Benjamini–Hochberg cutoff over the run-to-run
    p-values of all ``family`` trends, :func:`run_cutoff`); otherwise it reads "within noise", naming the
    spread. The p-value becomes the larger of the two either way (unchanged without a spread)."""
    if spread is None or result.verdict == "too noisy":
        return result
    p_value = max(result.p_value, spread.p_value)
    method = f"{result.method}; run-to-run t on {spread.runs} previous medians"
    if result.verdict in ("slower", "faster") and not (
        spread.p_value < result.alpha and spread.p_value <= cutoff
    ):
        why = (
            f"not among {family} GPU trends at that FDR"
            if spread.p_value < result.alpha
            else "not significant"
        )
        note = f"within this GPU's run-to-run spread: {spread.describe()}, {why}"
        return dataclasses.replace(result, verdict="within noise", p_value=p_value, method=method, note=note)
    return dataclasses.replace(result, p_value=p_value, method=method)


def run_cutoff(spreads: Sequence[RunSpread | None], q: float) -> float:
    """The Benjamini–Hochberg cutoff at FDR ``q`` over the run-to-run p-values of all trends.

    One machine-wide shift moves every GPU of a host together, so its run-to-run p-values come in a
    batch; pooled over the fleet, a batch of merely unusual nights stays under the cutoff, while a GPU
    many spreads slower does not."""
    from gpubench.report.fdr import bh_cutoff

    return bh_cutoff([s.p_value for s in spreads if s is not None], q)


def student_t_two_sided(t: float, df: float) -> float:
    """``P(|T| >= |t|)`` for Student's t with ``df`` degrees of freedom."""
    if math.isnan(t):
        return 1.0
    if math.isinf(t):
        return 0.0
    return regularized_beta(df / (df + t * t), df / 2.0, 0.5)


def regularized_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` (Lentz's continued fraction)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast only below this point
        return 1.0 - regularized_beta(1.0 - x, b, a)
    return math.exp(log_front) * _beta_fraction(x, a, b) / a


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    value = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            value *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return value
