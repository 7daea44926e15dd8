"""The straggler rule at its edges: exactly at the threshold, a zero threshold, readings that are not numbers."""

from __future__ import annotations

import math

import pytest

from gpubench.distributed.stragglers import RankMetric, deficit_pct, find_stragglers


def _reading(rank: int, value: float, *, uuid: str | None = None, metric: str = "copy_gbps",
             higher: bool = True, index: int | None = 0, model: str = "H100") -> RankMetric:
    return RankMetric(rank, "node-a", "cuda:0" if index is not None else "cpu", index,
                      uuid or f"GPU-{rank}", model, metric, value, "GB/s", higher)


def test_exactly_at_the_threshold_is_not_a_straggler_just_past_it_is() -> None:
    readings = [_reading(0, 100.0), _reading(1, 100.0), _reading(2, 90.0)]  # rank 2: exactly 10.0 % worse
    assert deficit_pct(90.0, 100.0) == 10.0
    assert find_stragglers(readings, 10.0) == []  # "more than" the threshold: > not >=
    flagged = find_stragglers(readings, 9.999)
    assert [(s.rank, s.deficit_pct, s.threshold_pct) for s in flagged] == [(2, 10.0, 9.999)]


def test_lower_is_better_at_the_threshold() -> None:
    readings = [_reading(0, 2.0, higher=False), _reading(1, 2.0, higher=False), _reading(2, 2.5, higher=False)]
    assert deficit_pct(2.5, 2.0, higher_is_better=False) == 25.0
    assert find_stragglers(readings, 25.0) == []
    assert [s.rank for s in find_stragglers(readings, 24.9)] == [2]
    # for a rate the same numbers turn round: 2.5 is the best, the two 2.0s are 11.1 % below their median 2.25
    rates = [_reading(0, 2.0), _reading(1, 2.0), _reading(2, 2.5)]
    assert [s.rank for s in find_stragglers(rates, 11.0)] == [0, 1]
    assert find_stragglers(rates, 11.2) == []


def test_a_zero_threshold_is_allowed_and_flags_any_deficit() -> None:
    readings = [_reading(0, 100.0), _reading(1, 100.0), _reading(2, 99.0)]
    assert [s.rank for s in find_stragglers(readings, 0.0)] == [2]
    assert find_stragglers([_reading(0, 100.0), _reading(1, 100.0)], 0.0) == []  # equal: 0 % is not > 0 %
    with pytest.raises(ValueError, match=r"straggler threshold -0.001% is negative"):
        find_stragglers(readings, -0.001)


def test_deficit_against_a_reference_that_is_not_positive_is_zero() -> None:
    assert deficit_pct(5.0, 0.0) == 0.0
    assert deficit_pct(5.0, -1.0) == 0.0
    assert deficit_pct(50.0, 200.0) == 75.0
    assert deficit_pct(300.0, 200.0) == -50.0  # better than the reference: negative


def test_readings_that_are_not_positive_finite_numbers_are_ignored_as_siblings_too() -> None:
    good = [_reading(0, 100.0), _reading(1, 100.0), _reading(2, 80.0)]
    bad = [_reading(3, math.inf), _reading(4, math.nan), _reading(5, 0.0), _reading(6, -100.0)]
    flagged = find_stragglers(good + bad, 10.0)
    assert [(s.rank, s.sibling_median, s.siblings) for s in flagged] == [(2, 100.0, 2)]
    assert find_stragglers([_reading(0, 1e-300), _reading(1, 1.0), _reading(2, 1.0)], 10.0)[0].rank == 0


def test_siblings_are_other_ranks_on_other_devices_and_the_median_is_theirs() -> None:
    # rank 0 twice (two metrics folded to one by mistake) is not its own sibling
    same_rank = [_reading(0, 100.0, uuid="GPU-a"), _reading(0, 50.0, uuid="GPU-b")]
    assert find_stragglers(same_rank, 10.0) == []
    # even number of siblings: the median is the mean of the middle two
    readings = [_reading(0, 100.0), _reading(1, 120.0), _reading(2, 80.0), _reading(3, 60.0)]
    flagged = {s.rank: s for s in find_stragglers(readings, 10.0)}
    assert sorted(flagged) == [2, 3]
    assert flagged[3].sibling_median == 100.0 and flagged[3].siblings == 3
    assert flagged[3].deficit_pct == pytest.approx(40.0)
    assert flagged[2].sibling_median == 100.0 and flagged[2].deficit_pct == pytest.approx(20.0)


def test_sorted_by_rank_then_metric_and_described_without_an_index_on_cpu() -> None:
    readings = [
        _reading(3, 50.0, metric="b"), _reading(1, 100.0, metric="b"), _reading(2, 100.0, metric="b"),
        _reading(3, 50.0, metric="a"), _reading(1, 100.0, metric="a"), _reading(2, 100.0, metric="a"),
        _reading(0, 10.0, metric="a", model="other"), _reading(4, 100.0, metric="a", model="other"),
    ]
    flagged = find_stragglers(readings, 10.0)
    assert [(s.rank, s.metric) for s in flagged] == [(0, "a"), (3, "a"), (3, "b")]
    cpu = find_stragglers([_reading(0, 100.0, index=None), _reading(1, 50.0, index=None)], 10.0)[0]
    assert cpu.describe() == (
        "rank 1 on node-a cpu, H100 GPU-1: copy_gbps 50 GB/s is 50.0% worse than the median 100 GB/s of its "
        "1 same-model sibling(s) (threshold 10%)"
    )
