"""Flags that stay honest at scale: the Benjamini–Hochberg procedure over all of a report's comparisons.

A report compares every benchmark on every GPU with its own baseline (trends) and with a same-model sibling
(outliers). Tested one at a time at ``alpha``, 512 GPUs × a few benchmarks give a handful of flags from
noise alone every night. :func:`control_fdr` pools the p-values of **all** those comparisons (the ones that
were made: a GPU with one run has no baseline; "too noisy" ones count too) and keeps a flag only when its p-value is within the
Benjamini–Hochberg cutoff at false-discovery rate ``q`` (``gpubench report --fdr``, default 0.05): among
the flags raised, the expected share of false ones is at most ``q`` (the p-values independent or positively
dependent). A flag still needs ``p < alpha`` and a change beyond the threshold, so a small report flags no
more than before. A comparison significant alone but not after the procedure reads "within noise", saying so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# relative slack when comparing p * m with k * q, so that exact ties (0.04 * 5 vs 4 * 0.05) count as within
_TIE = 1e-12


def bh_cutoff(p_values: Sequence[float], q: float) -> float:
    """The largest p-value Benjamini–Hochberg rejects at FDR ``q``: ``p_(k)`` for the largest ``k`` with
    ``p_(k) <= k q / m`` (``m`` the finite p-values); ``-1.0`` when it rejects none. NaN p-values (no
    comparison made) are left out of ``m``."""
    finite = sorted(p for p in p_values if not math.isnan(p))
    m = len(finite)
    cutoff = -1.0
    for k, p in enumerate(finite, start=1):
        if p * m <= k * q * (1.0 + _TIE):
            cutoff = p
    return cutoff


def bh_reject(p_values: Sequence[float], q: float) -> list[bool]:
    """Which hypotheses Benjamini–Hochberg rejects at FDR ``q`` (NaN: never), in the order given."""
    cutoff = bh_cutoff(p_values, q)
    return [not math.isnan(p) and p <= cutoff for p in p_values]


def bh_adjusted(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (``q``-values): ``min(1, min_{j>=i} m p_(j) / j)``; a
    hypothesis is rejected at FDR ``q`` exactly when its adjusted p-value is at most ``q``. NaN stays NaN."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(order)
    adjusted = [math.nan] * len(p_values)
    running = 1.0
    for rank in range(m, 0, -1):
        p, index = order[rank - 1]
        running = min(running, p * m / rank)
        adjusted[index] = running
    return adjusted


@dataclass(frozen=True)
class FdrControl:
    """What :func:`control_fdr` did: the rate, how many comparisons it pooled, its p-value cutoff, and how
    many flags it withdrew (significant at ``alpha`` alone, not after the procedure)."""

    q: float
    comparisons: int
    cutoff: float
    withdrawn: int

    def describe(self) -> str:
        return (
            f"flags control the false-discovery rate at {self.q:g} (Benjamini–Hochberg) over "
            f"{self.comparisons} comparison(s) (trends and outliers together)"
            + (f"; {self.withdrawn} significant alone but not after it" if self.withdrawn else "")
        )


def control_fdr(tables: Sequence[tuple[pd.DataFrame, str]], q: float) -> FdrControl:
    """Apply Benjamini–Hochberg at ``q`` over every comparison in ``tables``, in place.

    Each ``(table, flag_column)`` is a :func:`~gpubench.report.analysis.trend_table` (``"regression"``) or
    :func:`~gpubench.report.analysis.outlier_table` (``"outlier"``) with its ``result`` column of
    :class:`~gpubench.report.compare.Comparison`. Comparisons outside the cutoff get their verdict, text and
    flag withdrawn (see :meth:`~gpubench.report.compare.Comparison.under_fdr`).
    """
    from gpubench.report.analysis import comparison_cells

    p_values = [
        float(result.p_value)
        for table, _ in tables
        if not table.empty
        for result in table["result"]
        if result is not None and not math.isnan(result.p_value)
    ]
    cutoff = bh_cutoff(p_values, q)
    withdrawn = 0
    for table, flag in tables:
        if table.empty:
            continue
        for index, result in table["result"].items():
            if result is None:
                continue
            after = result.under_fdr(cutoff, q, len(p_values))
            if after is result:
                continue
            withdrawn += bool(table.at[index, flag])
            cells: dict[str, Any] = comparison_cells(after)
            for column, value in cells.items():
                table.at[index, column] = value
            table.at[index, flag] = False
    return FdrControl(q, len(p_values), cutoff, withdrawn)
