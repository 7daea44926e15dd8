"""The noise-aware comparison on synthetic rounds with known shifts (seeded, so every run sees the same
numbers): the Mann–Whitney U test, the bootstrap interval, the stats-block fallback and every verdict."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from gpubench.report.compare import (
    NoiseRule,
    Rounds,
    compare,
    mann_whitney_p,
    ranks,
    u_distribution,
)


def rounds(median: float, spread: float, n: int, seed: int) -> Rounds:
    """``n`` lognormal rounds around ``median``; ``spread`` is the log standard deviation."""
    rng = random.Random(seed)
    return Rounds.from_data([median * math.exp(rng.gauss(0.0, spread)) for _ in range(n)])


def test_u_distribution_counts_every_ordering() -> None:
    for n1, n2 in itertools.product(range(1, 6), repeat=2):
        counts = [0] * (n1 * n2 + 1)
        for positions in itertools.combinations(range(n1 + n2), n1):
            counts[sum(positions) - n1 * (n1 - 1) // 2] += 1
        assert u_distribution(n1, n2) == counts, (n1, n2)


def test_exact_p_and_normal_approximation_agree() -> None:
    # complete separation of 5 and 5: the smallest two-sided exact p is 2 / C(10, 5)
    assert mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
    rng = random.Random(3)
    first = [rng.random() for _ in range(40)]
    second = [rng.random() + 0.15 for _ in range(40)]
    exact = mann_whitney_p(first, second)
    approx = mann_whitney_p(first, second, exact_limit=0)
    assert exact < 0.05
    assert approx == pytest.approx(exact, rel=0.1)


def test_ties_get_average_ranks_and_the_variance_correction() -> None:
    assert ranks([3.0, 1.0, 3.0, 2.0]) == ([3.5, 1.0, 3.5, 2.0], [1, 1, 2])
    assert mann_whitney_p([1.0] * 8, [1.0] * 8) == 1.0
    # a coarse timer: many ties, a clear shift still shows
    assert mann_whitney_p([1, 1, 2, 2, 2, 3] * 3, [3, 3, 4, 4, 4, 5] * 3) < 0.001


def test_no_shift_under_heavy_noise_is_not_flagged() -> None:
    for seed in range(20):
        before, after = rounds(1.0, 0.4, 30, seed), rounds(1.0, 0.4, 30, seed + 100)
        result = compare(before, after, threshold_pct=5.0)
        assert not result.flagged, (seed, result.describe())
        assert result.verdict in ("within noise", "too noisy")


def test_no_shift_under_moderate_noise_is_within_noise_with_its_width() -> None:
    result = compare(rounds(1.0, 0.1, 30, 1), rounds(1.0, 0.1, 30, 2), threshold_pct=5.0)
    assert result.verdict == "within noise"
    assert not result.flagged
    text = result.describe()
    assert text.startswith(f"within noise (±{result.noise_pct:.1f}%)")
    assert result.low < 1.0 < result.high


def test_a_30_percent_slowdown_with_tight_rounds_is_flagged_with_ratio_and_interval() -> None:
    before, after = rounds(0.010, 0.02, 30, 5), rounds(0.013, 0.02, 30, 6)
    result = compare(before, after, threshold_pct=5.0)
    assert result.flagged
    assert result.verdict == "slower"
    assert result.ratio == pytest.approx(1.3, rel=0.03)
    assert 1.05 < result.low < result.ratio < result.high
    assert result.p_value < 0.01
    assert result.method.startswith("Mann-Whitney")
    text = result.describe()
    assert text.startswith("slower +")
    assert f"×{result.ratio:.3f} [{result.low:.3f}–{result.high:.3f}] (99%)" in text


def test_a_speedup_is_reported_not_flagged() -> None:
    result = compare(rounds(0.013, 0.02, 30, 5), rounds(0.010, 0.02, 30, 6), threshold_pct=5.0)
    assert result.verdict == "faster"
    assert not result.flagged


def test_a_significant_change_under_the_threshold_is_not_flagged() -> None:
    result = compare(rounds(1.0, 0.005, 50, 7), rounds(1.02, 0.005, 50, 8), threshold_pct=5.0)
    assert result.p_value < 0.01
    assert result.verdict == "within threshold"
    assert not result.flagged
    assert "limit 5%" in result.describe()


def test_too_few_rounds_are_too_noisy_to_compare_and_say_what_to_change() -> None:
    result = compare(rounds(1.0, 0.01, 3, 1), rounds(2.0, 0.01, 3, 2), threshold_pct=5.0)
    assert result.verdict == "too noisy"
    assert not result.flagged
    text = result.describe()
    assert text.startswith("too noisy to compare: 3 round(s)")
    for advice in ("more rounds", "quiet machine", "pinned clocks"):
        assert advice in text
    assert f"×{result.ratio:.3f} [" in text  # the ratio and its interval are still shown


def test_spread_rounds_flag_only_a_change_larger_than_their_spread() -> None:
    noisy = rounds(1.0, 0.5, 40, 11)
    assert noisy.spread > NoiseRule().max_spread
    moderate = compare(noisy, rounds(1.3, 0.5, 40, 12), threshold_pct=5.0)
    assert moderate.verdict == "too noisy"
    assert "IQR is" in moderate.note
    huge = compare(noisy, rounds(6.0, 0.5, 40, 12), threshold_pct=5.0)
    assert huge.flagged
    assert "the whole interval is beyond it" in huge.describe()


def test_the_stats_block_alone_still_gives_a_verdict_and_interval() -> None:
    tight = compare(Rounds(0.010, 0.0002, 100), Rounds(0.013, 0.00026, 100), threshold_pct=5.0)
    assert tight.flagged
    assert tight.method.startswith("stats block")
    assert tight.low < 1.3 < tight.high
    loose = compare(Rounds(0.010, 0.002, 10), Rounds(0.0107, 0.002, 10), threshold_pct=5.0)
    assert loose.verdict == "within noise"
    missing = compare(Rounds(0.010, math.nan, 100), Rounds(0.013, math.nan, 100), threshold_pct=5.0)
    assert missing.verdict == "too noisy"
    assert "no IQR" in missing.note
    # pytest-benchmark's saved stats block, with and without the rounds it keeps under --benchmark-save-data
    block = {"median": 2.0, "iqr": 0.1, "rounds": 4, "data": [1.9, 2.0, 2.0, 2.1]}
    assert Rounds.from_stats(block).data == (1.9, 2.0, 2.0, 2.1)
    assert Rounds.from_stats({**block, "data": None}) == Rounds(2.0, 0.1, 4)


def test_the_bootstrap_is_deterministic_and_alpha_is_configurable() -> None:
    before, after = rounds(1.0, 0.05, 20, 21), rounds(1.06, 0.05, 20, 22)
    first = compare(before, after, threshold_pct=2.0)
    assert first == compare(before, after, threshold_pct=2.0)
    assert 0.001 < first.p_value < 0.05, first.p_value  # chosen so that the level decides
    assert compare(before, after, 2.0, NoiseRule(alpha=0.05)).flagged
    strict = compare(before, after, 2.0, NoiseRule(alpha=0.001))
    assert not strict.flagged
    wide, narrow = (compare(before, after, 2.0, NoiseRule(alpha=a)) for a in (0.001, 0.05))
    assert wide.high - wide.low > narrow.high - narrow.low
    assert "(95%)" in narrow.describe()
