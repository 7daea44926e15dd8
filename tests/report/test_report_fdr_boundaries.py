"""Benjamini–Hochberg at its edges: a p-value exactly at its cutoff, ties, NaN, nothing to reject."""

from __future__ import annotations

import math

import pytest

from gpubench.report.fdr import FdrControl, bh_adjusted, bh_cutoff, bh_reject


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
