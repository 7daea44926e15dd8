"""The comparison rule at its edges: p exactly at alpha, a change exactly at the threshold, the fewest
rounds, a spread exactly at its limit, the exact U test's size limit, and every verdict's wording."""

from __future__ import annotations

import dataclasses
import math
import statistics

import pytest

from gpubench.comparison import (
    ADVICE,
    Comparison,
    NoiseRule,
    Rounds,
    _stats_block_test,
    _verdict,
    bootstrap_ratio_interval,
    compare,
    mann_whitney_p,
    ranks,
    u_distribution,
)

NAMES = ("previous run", "latest run")
TIGHT = Rounds(1.0, 0.01, 10)  # IQR 1% of the median, ten rounds


def comparison(verdict: str, ratio: float = 1.3, p_value: float = 0.001, note: str = "") -> Comparison:
    return Comparison(verdict, ratio, 1.2, 1.4, p_value, 0.01, 5.0, "Mann-Whitney U, bootstrap interval", note)


# -- Rounds ---------------------------------------------------------------------------------------------


def test_rounds_from_data_uses_inclusive_quartiles() -> None:
    r = Rounds.from_data([4, 1, 3, 2, 5])
    assert (r.median, r.iqr, r.count, r.data) == (3.0, 2.0, 5, (4.0, 1.0, 3.0, 2.0, 5.0))
    two = Rounds.from_data([1.0, 3.0])  # inclusive quartiles of two values: 1.5 and 2.5
    assert (two.median, two.iqr, two.count) == (2.0, 1.0, 2)
    one = Rounds.from_data([2.5])
    assert (one.median, one.iqr, one.count, one.raw) == (2.5, 0.0, 1, True)
    empty = Rounds.from_data([])
    assert math.isnan(empty.median) and math.isnan(empty.iqr) and empty.count == 0 and not empty.raw


def test_rounds_from_stats_takes_the_data_only_when_every_value_is_a_positive_time() -> None:
    stats = {"median": 2.0, "iqr": 0.5, "rounds": 7}
    assert Rounds.from_stats(stats) == Rounds(2.0, 0.5, 7)
    assert Rounds.from_stats({**stats, "data": [1.0, 2, 3.0]}) == Rounds.from_data([1.0, 2.0, 3.0])
    for bad in ([], [1.0, 0.0], [1.0, -2.0], [1.0, math.inf], [1.0, math.nan], [1.0, True], [1.0, "2"], (1.0, 2.0)):
        assert Rounds.from_stats({**stats, "data": bad}) == Rounds(2.0, 0.5, 7), bad
    assert Rounds.from_stats({"median": 2.0}) == Rounds(2.0, 0.0, 1)
    assert Rounds.from_stats({"median": "2.0", "iqr": None, "rounds": 0}) == Rounds(2.0, 0.0, 1)


def test_rounds_spread_is_iqr_over_a_positive_median() -> None:
    assert Rounds(2.0, 0.5, 5).spread == 0.25
    assert Rounds(0.0, 0.5, 5).spread == math.inf
    assert Rounds(-1.0, 0.5, 5).spread == math.inf
    assert not Rounds(2.0, 0.5, 5).raw


# -- Comparison -----------------------------------------------------------------------------------------


def test_comparison_properties() -> None:
    c = comparison("slower", ratio=1.25)
    assert c.change_pct == pytest.approx(25.0)
    assert c.flagged and c.significant
    assert c.noise_pct == pytest.approx(40.0)  # the high end, 1.4, is farther from 1 than the low, 1.2
    assert dataclasses.replace(c, low=0.5).noise_pct == pytest.approx(50.0)
    assert not comparison("faster").flagged and comparison("faster").significant
    assert not comparison("slower", p_value=0.01).significant  # p == alpha: not below it
    assert not comparison("too noisy", p_value=0.0).significant


def test_describe_every_verdict() -> None:
    assert comparison("slower", ratio=1.3).describe() == "slower +30.0%: ×1.300 [1.200–1.400] (99%), p=0.001"
    assert comparison("faster", ratio=0.8, note="why").describe() == (
        "faster -20.0%: ×0.800 [1.200–1.400] (99%), p=0.001 (why)"
    )
    assert comparison("within threshold", ratio=1.02, p_value=0.5).describe() == (
        "within threshold (+2.0%, limit 5%): ×1.020 [1.200–1.400] (99%), p=0.5"
    )
    assert comparison("within noise", ratio=1.0, p_value=0.00009).describe() == (
        "within noise (±40.0%): ×1.000 [1.200–1.400] (99%), p<1e-4"
    )
    assert comparison("within noise", ratio=1.0, p_value=0.0001, note="n").describe() == (
        "within noise (±40.0%): ×1.000 [1.200–1.400] (99%), p=0.0001 (n)"
    )
    noisy = dataclasses.replace(comparison("too noisy", note="3 rounds"), low=math.nan)
    assert noisy.describe() == "too noisy to compare: 3 rounds; ×1.300 (99% interval: n/a)"
    assert dataclasses.replace(noisy, low=1.0, high=math.inf).interval_text() == "×1.300 (99% interval: n/a)"
    assert dataclasses.replace(noisy, alpha=0.05, low=1.0, high=2.0).interval_text() == "×1.300 [1.000–2.000] (95%)"


def test_under_fdr_withdraws_only_a_significant_comparison_past_the_cutoff() -> None:
    c = comparison("slower", p_value=0.004)
    assert c.under_fdr(0.004, 0.05, 9) is c  # exactly at the cutoff: kept
    withdrawn = c.under_fdr(0.0039, 0.05, 9)
    assert withdrawn == dataclasses.replace(
        c, verdict="within noise", note="significant alone, not among 9 comparisons at FDR 0.05"
    )
    not_significant = comparison("within noise", p_value=0.3)
    assert not_significant.under_fdr(-1.0, 0.05, 9) is not_significant
    noisy = comparison("too noisy", p_value=0.0)
    assert noisy.under_fdr(-1.0, 0.05, 9) is noisy


# -- the verdict ----------------------------------------------------------------------------------------


def verdict(ratio: float, low: float, high: float, p: float, before: Rounds = TIGHT, after: Rounds = TIGHT,
            threshold: float = 5.0, rule: NoiseRule | None = None) -> tuple[str, str]:
    return _verdict(before, after, (ratio, low, high, p), threshold, rule or NoiseRule(), NAMES)


def test_verdict_at_alpha_and_at_the_threshold() -> None:
    assert verdict(1.3, 1.2, 1.4, 0.0099) == ("slower", "")
    assert verdict(1.3, 1.2, 1.4, 0.01) == ("within noise", "")  # p == alpha
    # +50% == threshold (exact in binary): not above it
    assert verdict(1.5, 1.4, 1.6, 0.001, threshold=50.0) == ("within threshold", "")
    assert verdict(1.5001, 1.4, 1.6, 0.001, threshold=50.0) == ("slower", "")
    assert verdict(0.5, 0.4, 0.6, 0.001, threshold=50.0) == ("within threshold", "")  # -50%
    assert verdict(0.4999, 0.4, 0.6, 0.001, threshold=50.0) == ("faster", "")
    assert verdict(1.0, 0.99, 1.01, 0.001, rule=NoiseRule(alpha=0.0005)) == ("within noise", "")


def test_verdict_with_too_few_rounds_names_the_side() -> None:
    four = Rounds(1.0, 0.01, 4)
    assert verdict(1.3, 1.2, 1.4, 0.001, before=Rounds(1.0, 0.01, 5)) == ("slower", "")  # five: enough
    assert verdict(1.3, 1.2, 1.4, 0.001, before=four) == (
        "too noisy", f"4 round(s) in the previous run, fewer than 5; {ADVICE}"
    )
    assert verdict(1.3, 1.2, 1.4, 0.001, after=four)[1].startswith("4 round(s) in the latest run, fewer than 5")
    assert verdict(1.3, 1.2, 1.4, 0.001, after=four, rule=NoiseRule(min_rounds=4)) == ("slower", "")
    assert verdict(math.nan, 1.2, 1.4, 0.001) == ("too noisy", "no positive median time")
    assert verdict(math.inf, 1.2, 1.4, 0.001) == ("too noisy", "no positive median time")


def test_verdict_under_spread_rounds_needs_the_whole_interval_beyond_it() -> None:
    spread = Rounds(1.0, 0.3, 10)  # IQR 30% of the median, in the latest run
    note = "IQR is 30% of the median in the latest run"
    # the margin is 1 + max(5%, 30%) = 1.3
    assert verdict(1.5, 1.3, 1.7, 0.001, after=spread) == ("too noisy", f"{note} (limit 25%); {ADVICE}")
    assert verdict(1.5, 1.3001, 1.7, 0.001, after=spread) == ("slower", f"{note}, but the whole interval is beyond it")
    assert verdict(1.5, 1.3001, 1.7, 0.01, after=spread)[0] == "too noisy"  # not significant
    assert verdict(0.7, 0.6, 1 / 1.3, 0.001, after=spread)[0] == "too noisy"
    assert verdict(0.7, 0.6, 0.7692, 0.001, after=spread) == ("faster", f"{note}, but the whole interval is beyond it")
    assert verdict(0.7, 0.6, 0.7692, 0.01, after=spread)[0] == "too noisy"
    # a threshold above the spread sets the margin: 1 + 40% = 1.4
    assert verdict(1.5, 1.35, 1.7, 0.001, after=spread, threshold=40.0)[0] == "too noisy"
    assert verdict(1.5, 1.41, 1.7, 0.001, after=spread, threshold=40.0)[0] == "slower"
    assert verdict(0.6, 0.5, 0.72, 0.001, after=spread, threshold=40.0)[0] == "too noisy"
    assert verdict(0.6, 0.5, 0.71, 0.001, after=spread, threshold=40.0)[0] == "faster"


def test_verdict_at_the_spread_limit_and_without_an_iqr() -> None:
    at_limit = Rounds(1.0, 0.25, 10)  # exactly max_spread: the ordinary rule applies
    assert verdict(1.3, 1.2, 1.4, 0.001, before=at_limit) == ("slower", "")
    assert verdict(1.3, 1.2, 1.4, 0.001, before=Rounds(1.0, 0.2501, 10))[0] == "too noisy"
    assert verdict(1.3, 1.2, 1.4, 0.001, before=Rounds(1.0, 0.3, 10), rule=NoiseRule(max_spread=0.3)) == ("slower", "")
    no_iqr = Rounds(1.0, math.nan, 10)
    assert verdict(1.3, 1.2, 1.4, 0.001, before=no_iqr) == (
        "too noisy", f"no IQR saved for the previous run (limit 25%); {ADVICE}"
    )
    # nothing is beyond an infinite spread
    assert verdict(9.0, 8.0, 10.0, 0.0, after=Rounds(0.0, 0.1, 10))[0] == "too noisy"
    # the larger spread of the two sides names its side
    assert verdict(1.0, 0.5, 2.0, 0.5, before=Rounds(1.0, 0.4, 10), after=Rounds(1.0, 0.3, 10))[1].startswith(
        "IQR is 40% of the median in the previous run"
    )
    assert verdict(1.0, 0.5, 2.0, 0.5, before=Rounds(1.0, 0.3, 10), after=Rounds(1.0, 0.4, 10))[1].startswith(
        "IQR is 40% of the median in the latest run"
    )


def test_compare_names_its_method_and_keeps_its_inputs() -> None:
    before = Rounds.from_data([1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01])
    after = Rounds.from_data([1.3, 1.31, 1.29, 1.32, 1.28, 1.3, 1.31])
    c = compare(before, after, 5.0, names=("a", "b"))
    assert c.method == "Mann-Whitney U, bootstrap interval"
    assert (c.verdict, c.alpha, c.threshold_pct, c.note) == ("slower", 0.01, 5.0, "")
    assert c.ratio == pytest.approx(1.3)
    assert c.p_value == mann_whitney_p(before.data, after.data)
    assert (c.low, c.high) == bootstrap_ratio_interval(before.data, after.data, NoiseRule())
    stats = compare(Rounds(1.0, 0.01, 10), after, 5.0)
    assert stats.method == "stats block (median error from IQR)"
    assert stats.p_value == _stats_block_test(Rounds(1.0, 0.01, 10), after, 0.01)[0]
    short = compare(Rounds(1.0, 0.01, 3), after, 5.0, names=("a", "b"))
    assert short.note.startswith("3 round(s) in the a, fewer than 5")
    zero = compare(Rounds(0.0, 0.01, 10), Rounds(1.0, 0.01, 10), 5.0)
    assert math.isnan(zero.ratio) and zero.verdict == "too noisy"
    assert compare(before, after, 5.0, NoiseRule(alpha=0.05)).alpha == 0.05


# -- the tests ------------------------------------------------------------------------------------------


def test_ranks_average_ties() -> None:
    assert ranks([3.0, 1.0, 2.0]) == ([3.0, 1.0, 2.0], [1, 1, 1])
    assert ranks([2.0, 1.0, 2.0, 2.0, 0.5]) == ([4.0, 2.0, 4.0, 4.0, 1.0], [1, 1, 3])
    assert ranks([1.0, 1.0]) == ([1.5, 1.5], [2])
    assert ranks([]) == ([], [])


def test_u_distribution_small_cases() -> None:
    assert u_distribution(1, 1) == [1, 1]
    assert u_distribution(2, 2) == [1, 1, 2, 1, 1]
    assert u_distribution(3, 3) == [1, 1, 2, 3, 3, 3, 3, 2, 1, 1]
    assert u_distribution(1, 3) == [1, 1, 1, 1]
    assert u_distribution(3, 1) == [1, 1, 1, 1]
    assert u_distribution(0, 4) == [1]
    assert sum(u_distribution(4, 6)) == math.comb(10, 4)


def normal_p(first: list[float], second: list[float]) -> float:
    """The normal approximation, written out again: tie-corrected variance, continuity correction 0.5."""
    n1, n2 = len(first), len(second)
    n = n1 + n2
    rank, ties = ranks([*first, *second])
    u = sum(rank[:n1]) - n1 * (n1 + 1) / 2
    variance = n1 * n2 / 12 * ((n + 1) - sum(t**3 - t for t in ties) / (n * (n - 1)))
    return math.erfc(max(abs(u - n1 * n2 / 2) - 0.5, 0.0) / math.sqrt(variance) / math.sqrt(2))


def test_mann_whitney_exact_counts_the_orderings() -> None:
    assert mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)  # 2 * 1/20
    assert mann_whitney_p([4, 5, 6], [1, 2, 3]) == pytest.approx(0.1)
    assert mann_whitney_p([1, 2, 4], [3, 5, 6]) == pytest.approx(0.2)  # U = 1: 2 * 2/20
    assert mann_whitney_p([1, 4, 5], [2, 3, 6]) == 1.0  # U = 5 of 9: capped at one
    assert mann_whitney_p([1.0], [2.0]) == 1.0


def test_mann_whitney_exact_limit_and_ties_switch_to_the_normal_approximation() -> None:
    first, second = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]
    assert mann_whitney_p(first, second, exact_limit=3) == pytest.approx(0.1)  # at the limit: exact
    assert mann_whitney_p(first, second, exact_limit=2) == pytest.approx(normal_p(first, second), rel=1e-12)
    assert mann_whitney_p(second, first, exact_limit=2) == pytest.approx(normal_p(first, second), rel=1e-12)
    assert mann_whitney_p([1.0, 2.0], [3.0, 4.0, 5.0], exact_limit=3) == pytest.approx(0.2)  # 2 * 1/10
    assert mann_whitney_p([1.0, 2.0], [3.0, 4.0, 5.0], exact_limit=2) == pytest.approx(  # n2 = 3 > 2
        normal_p([1.0, 2.0], [3.0, 4.0, 5.0]), rel=1e-12
    )
    assert mann_whitney_p([1.0, 2.0, 3.0], [4.0, 5.0], exact_limit=2) == pytest.approx(
        normal_p([1.0, 2.0, 3.0], [4.0, 5.0]), rel=1e-12
    )
    tied_first, tied_second = [1.0, 2.0, 2.0, 3.0], [2.0, 4.0, 5.0, 6.0]
    assert mann_whitney_p(tied_first, tied_second) == pytest.approx(normal_p(tied_first, tied_second), rel=1e-12)
    many = [float(i) for i in range(51)]
    shifted = [v + 20.5 for v in many]
    assert mann_whitney_p(many, shifted) == pytest.approx(normal_p(many, shifted), rel=1e-12)  # 51 > 50


def test_mann_whitney_without_information() -> None:
    assert mann_whitney_p([], [1.0, 2.0]) == 1.0
    assert mann_whitney_p([1.0, 2.0], []) == 1.0
    assert mann_whitney_p([1.0, 1.0], [1.0, 1.0]) == 1.0  # all tied: no variance
    assert mann_whitney_p([1.0, 2.0], [1.0, 2.0]) == 1.0  # |U - mean| <= 0.5


def test_bootstrap_interval_is_seeded_and_alpha_sets_its_width() -> None:
    before = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98]
    after = [v * 1.2 for v in before]
    rule = NoiseRule()
    low, high = bootstrap_ratio_interval(before, after, rule)
    assert (low, high) == bootstrap_ratio_interval(before, after, rule)
    assert low <= 1.2 <= high and high < 1.6 and low > 0.9
    wide = bootstrap_ratio_interval(before, after, dataclasses.replace(rule, alpha=0.5))
    assert low < wide[0] <= wide[1] < high
    other = bootstrap_ratio_interval(before, after, dataclasses.replace(rule, seed=13))
    assert other != (low, high)
    few = bootstrap_ratio_interval(before, after, dataclasses.replace(rule, resamples=20))
    assert few != (low, high)
    assert bootstrap_ratio_interval([1.0], [2.0], rule) == (2.0, 2.0)


def stats_block(before: Rounds, after: Rounds, alpha: float) -> tuple[float, float, float]:
    """The stats-block test written out again: each median's error 1.2533 * (IQR / 1.349) / sqrt(n)."""
    se = math.sqrt(sum((1.2533 * (r.iqr / 1.349) / math.sqrt(r.count) / r.median) ** 2 for r in (before, after)))
    log_ratio = math.log(after.median / before.median)
    z = statistics.NormalDist().inv_cdf(1 - alpha / 2)
    return math.erfc(abs(log_ratio) / se / math.sqrt(2)), math.exp(log_ratio - z * se), math.exp(log_ratio + z * se)


@pytest.mark.parametrize(("before", "after", "alpha"), [
    (Rounds(1.0, 0.1, 10), Rounds(1.1, 0.12, 12), 0.01),
    (Rounds(2.0, 0.3, 5), Rounds(1.8, 0.2, 2), 0.05),
])
def test_stats_block_test_is_the_documented_formula(before: Rounds, after: Rounds, alpha: float) -> None:
    assert _stats_block_test(before, after, alpha) == pytest.approx(stats_block(before, after, alpha), rel=2e-4)


def test_stats_block_test_at_its_edges() -> None:
    def nan_interval(result: tuple[float, float, float]) -> bool:
        return result[0] == 1.0 and math.isnan(result[1]) and math.isnan(result[2])

    assert nan_interval(_stats_block_test(Rounds(0.0, 0.1, 10), Rounds(1.0, 0.1, 10), 0.01))
    assert nan_interval(_stats_block_test(Rounds(1.0, 0.1, 10), Rounds(-1.0, 0.1, 10), 0.01))
    assert nan_interval(_stats_block_test(Rounds(1.0, 0.1, 1), Rounds(1.2, 0.1, 10), 0.01))  # one round: no error
    assert nan_interval(_stats_block_test(Rounds(1.0, 0.1, 10), Rounds(1.2, math.nan, 10), 0.01))
    two = _stats_block_test(Rounds(1.0, 0.1, 2), Rounds(1.2, 0.1, 2), 0.01)
    assert two == pytest.approx(stats_block(Rounds(1.0, 0.1, 2), Rounds(1.2, 0.1, 2), 0.01), rel=2e-4)
    assert _stats_block_test(Rounds(1.0, 0.0, 10), Rounds(1.25, 0.0, 10), 0.01) == (0.0, 1.25, 1.25)
    assert _stats_block_test(Rounds(1.0, 0.0, 10), Rounds(1.0, 0.0, 10), 0.01) == (1.0, 1.0, 1.0)


def test_a_missing_iqr_on_either_side_is_the_spread_that_counts() -> None:
    no_iqr = Rounds(1.0, math.nan, 10)
    assert verdict(1.3, 1.2, 1.4, 0.001, after=no_iqr) == (
        "too noisy", f"no IQR saved for the latest run (limit 25%); {ADVICE}"
    )
    assert verdict(1.3, 1.2, 1.4, 0.001, before=Rounds(1.0, 0.3, 10), after=no_iqr)[1].startswith(
        "no IQR saved for the latest run"
    )


def test_the_spread_margin_is_the_threshold_in_percent() -> None:
    spread = Rounds(1.0, 0.3, 10)
    # threshold 40% over a 30% spread: the margin is 1.40; an interval from 1.398 is not wholly beyond it
    assert verdict(1.5, 1.398, 1.7, 0.001, after=spread, threshold=40.0)[0] == "too noisy"
    assert verdict(1.5, 1.4001, 1.7, 0.001, after=spread, threshold=40.0)[0] == "slower"


def test_stats_block_test_with_a_zero_latest_median() -> None:
    p_value, low, high = _stats_block_test(Rounds(1.0, 0.1, 10), Rounds(0.0, 0.1, 10), 0.01)
    assert p_value == 1.0 and math.isnan(low) and math.isnan(high)


def test_mann_whitney_with_one_value_on_a_side() -> None:
    assert mann_whitney_p([0.5], [1.0, 2.0, 3.0]) == pytest.approx(0.5)  # U = 0 of 4 orderings: 2 * 1/4
    assert mann_whitney_p([1.0, 2.0, 3.0], [0.5]) == pytest.approx(0.5)
    assert mann_whitney_p([2.0], [1.0, 3.0]) == 1.0  # the middle: 2 * 2/3 capped at one
    # the normal approximation with a variance under one: 1 * 2 / 12 * 4
    assert mann_whitney_p([0.5], [1.0, 2.0], exact_limit=0) == pytest.approx(normal_p([0.5], [1.0, 2.0]), rel=1e-12)
    assert normal_p([0.5], [1.0, 2.0]) < 0.6


def percentile_bootstrap(before: list[float], after: list[float], rule: NoiseRule) -> tuple[float, float]:
    """The seeded percentile bootstrap as documented: resample each side, ratio of medians, the alpha/2 and
    1 - alpha/2 quantiles."""
    import numpy as np

    rng = np.random.default_rng(rule.seed)
    first, second = np.asarray(before), np.asarray(after)
    a = np.median(first[rng.integers(0, first.size, size=(rule.resamples, first.size))], axis=1)
    b = np.median(second[rng.integers(0, second.size, size=(rule.resamples, second.size))], axis=1)
    low, high = np.quantile(b / a, [rule.alpha / 2, 1 - rule.alpha / 2])
    return float(low), float(high)


@pytest.mark.parametrize("alpha", [0.01, 0.2])
def test_bootstrap_interval_takes_the_alpha_over_two_quantiles(alpha: float) -> None:
    before = [1.0 + 0.013 * ((7 * i) % 31) for i in range(31)]
    after = [1.1 + 0.017 * ((11 * i) % 29) for i in range(29)]
    rule = NoiseRule(alpha=alpha)
    assert bootstrap_ratio_interval(before, after, rule) == percentile_bootstrap(before, after, rule)
