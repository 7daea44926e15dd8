"""Benjamini–Hochberg at its edges: a p-value exactly at its cutoff, ties, NaN, nothing to reject."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from gpubench.report import fdr
from gpubench.report.analysis import COMPARISON_COLUMNS, comparison_cells
from gpubench.report.compare import Comparison
from gpubench.report.fdr import FdrControl, bh_adjusted, bh_cutoff, bh_reject, control_fdr


def test_a_p_value_exactly_at_k_q_over_m_is_rejected() -> None:
    # m = 5, q = 0.05: the cutoffs are 0.01, 0.02, 0.03, 0.04, 0.05; 0.04 * 5 == 4 * 0.05 exactly in theory
    p = [0.04, 0.9, 0.8, 0.7, 0.6]
    assert bh_cutoff([0.01, 0.5, 0.6, 0.7, 0.8], 0.05) == 0.01  # k = 1: 0.01 * 5 <= 1 * 0.05
    assert bh_cutoff([0.0100001, 0.5, 0.6, 0.7, 0.8], 0.05) == -1.0  # just past it
    assert bh_cutoff([0.01, 0.02, 0.03, 0.04, 0.6], 0.05) == 0.04  # k = 4, a float tie counted as within
    assert bh_reject(p, 0.05) == [False] * 5
    assert bh_cutoff([0.04, 0.04, 0.04, 0.04, 0.9], 0.05) == 0.04


def test_the_largest_k_wins_even_past_a_larger_early_p() -> None:
    # p_(2) = 0.03 > 2 q / m = 0.025, but p_(3) = 0.03 <= 3 q / m = 0.0375: both are rejected
    values = [0.001, 0.03, 0.03, 0.9]
    assert bh_cutoff(values, 0.05) == 0.03
    assert bh_reject(values, 0.05) == [True, True, True, False]


def test_nan_is_left_out_of_m_and_never_rejected() -> None:
    assert bh_cutoff([0.02, math.nan, math.nan, math.nan], 0.05) == 0.02  # m = 1, not 4
    assert bh_reject([0.02, math.nan], 0.05) == [True, False]
    assert bh_cutoff([], 0.05) == -1.0 and bh_reject([], 0.05) == []
    assert bh_cutoff([math.nan], 0.05) == -1.0


def test_nothing_rejected_means_a_cutoff_below_every_p_value() -> None:
    assert bh_cutoff([0.5, 0.6], 0.05) == -1.0
    assert bh_reject([0.0, 0.5], 0.05) == [True, False]  # p = 0 is rejected: the cutoff is 0.0, not -1


def test_adjusted_p_values_are_monotone_and_capped_at_one() -> None:
    adjusted = bh_adjusted([0.01, 0.04, 0.03, 0.5, math.nan])
    # m = 4: sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.06 -> min(0.06, 0.0533) = 0.0533, 0.0533, 0.5
    assert adjusted[:4] == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert math.isnan(adjusted[4])
    assert bh_adjusted([0.9, 0.95]) == pytest.approx([0.95, 0.95])
    assert bh_adjusted([0.6, 0.7, 0.8]) == pytest.approx([0.8, 0.8, 0.8])
    assert bh_adjusted([0.5] * 2 + [0.99]) == pytest.approx([0.75, 0.75, 0.99])
    assert bh_adjusted([1.0, 1.0]) == [1.0, 1.0]
    assert bh_adjusted([]) == []
    for q in (0.04, 0.05):  # rejected at q exactly when adjusted <= q
        values = [0.01, 0.04, 0.03, 0.5]
        assert bh_reject(values, q) == [a <= q * (1 + 1e-12) for a in bh_adjusted(values)]


def test_describe_names_the_rate_and_the_withdrawn_flags() -> None:
    assert FdrControl(0.05, 12, 0.01, 0).describe() == (
        "flags control the false-discovery rate at 0.05 (Benjamini–Hochberg) over 12 comparison(s) "
        "(trends and outliers together)"
    )
    assert FdrControl(0.1, 3, -1.0, 2).describe().endswith("; 2 significant alone but not after it")


def _comparison(p_value: float, verdict: str = "slower") -> Comparison:
    return Comparison(verdict, 1.3, 1.2, 1.4, p_value, 0.01, 5.0, "Mann-Whitney U, bootstrap interval")


def _table(results: list[Comparison | None], flag: str) -> pd.DataFrame:
    rows = [comparison_cells(r) | {flag: r is not None and r.flagged} for r in results]
    return pd.DataFrame(rows, columns=[*COMPARISON_COLUMNS, flag])


def test_control_fdr_pools_both_tables_and_withdraws_only_what_the_cutoff_leaves_out() -> None:
    # m = 4 finite p-values over both tables (None and NaN are no comparison): k q / m = 0.0125, 0.025, ...
    # 0.001 <= 0.0125 passes; 0.009 and 0.008 (sorted 2nd and 3rd: 0.008 <= 0.025, 0.009 <= 0.0375) pass too
    trends = _table([_comparison(0.001), None, _comparison(0.009), _comparison(math.nan, "too noisy")], "regression")
    outliers = _table([_comparison(0.008), _comparison(0.9, "within noise")], "outlier")
    control = control_fdr([(trends, "regression"), (outliers, "outlier"), (_table([], "outlier"), "outlier")], 0.05)
    assert control == FdrControl(0.05, 4, 0.009, 0)
    assert trends["regression"].tolist() == [True, False, True, False]
    assert trends["verdict"].tolist()[::2] == ["slower", "slower"] and trends.at[3, "verdict"] == "too noisy"
    assert outliers["verdict"].tolist() == ["slower", "within noise"] and outliers["outlier"].tolist() == [True, False]


def test_control_fdr_withdraws_a_flag_and_rewrites_every_cell_of_its_row() -> None:
    # m = 5: 0.002 * 5 = 0.01 <= 1 * 0.01 passes; 0.009 * 5 = 0.045 > 2 * 0.01 and so on: one survives at q = 0.01
    results = [_comparison(0.002), _comparison(0.009), _comparison(0.009), _comparison(0.5, "within noise"),
               _comparison(0.009, "faster")]
    trends = _table(results, "regression")
    control = control_fdr([(trends, "regression")], 0.01)
    assert control == FdrControl(0.01, 5, 0.002, 2)  # two flags withdrawn; "faster" was never a flag
    assert control.describe().endswith("; 2 significant alone but not after it")
    assert trends["regression"].tolist() == [True, False, False, False, False]
    assert trends["verdict"].tolist() == ["slower", "within noise", "within noise", "within noise", "within noise"]
    withdrawn = trends.at[1, "result"]
    assert withdrawn.note == "significant alone, not among 5 comparisons at FDR 0.01"
    assert trends.at[1, "comparison"] == withdrawn.describe()
    assert trends.at[1, "comparison"].startswith("within noise (")
    assert trends.at[1, "p_value"] == 0.009 and trends.at[1, "ratio"] == 1.3
    assert trends.at[0, "result"] is results[0]  # kept as it was, not a copy


def test_control_fdr_over_nothing_compared() -> None:
    assert control_fdr([], 0.05) == FdrControl(0.05, 0, -1.0, 0)
    nothing = _table([None, None], "outlier")
    assert control_fdr([(nothing, "outlier")], 0.05) == FdrControl(0.05, 0, -1.0, 0)
    assert nothing["outlier"].tolist() == [False, False]


def test_a_p_value_exactly_at_the_cutoff_with_its_tie_slack_is_rejected() -> None:
    at_slack = 0.05 * (1.0 + fdr._TIE)  # m = k = 1: p * m equals k * q * (1 + slack) to the last bit
    assert bh_cutoff([at_slack], 0.05) == at_slack
    assert bh_cutoff([math.nextafter(at_slack, 1.0)], 0.05) == -1.0


def test_control_fdr_goes_on_past_an_empty_table_and_a_row_with_nothing_compared() -> None:
    # m = 3 at q = 0.006: 0.002 * 3 <= 1 * 0.006 passes; 0.009 * 3 > 2 * 0.006 and > 3 * 0.006 do not
    first = _table([], "regression")
    second = _table([None, _comparison(0.009)], "regression")
    third = _table([_comparison(0.002), None, _comparison(0.009)], "outlier")
    control = control_fdr([(first, "regression"), (second, "regression"), (third, "outlier")], 0.006)
    assert control == FdrControl(0.006, 3, 0.002, 2)
    assert second["regression"].tolist() == [False, False] and second.at[1, "verdict"] == "within noise"
    assert third["outlier"].tolist() == [True, False, False] and third.at[2, "verdict"] == "within noise"
