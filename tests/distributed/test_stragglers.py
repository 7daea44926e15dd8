"""The straggler rule: a GPU more than N % below the median of its same-model siblings, across hosts."""

from __future__ import annotations

import pytest

from gpubench.distributed.stragglers import RankMetric, deficit_pct, find_stragglers


def reading(
    rank: int,
    value: float,
    *,
    model: str = "NVIDIA H100 80GB HBM3",
    host: str = "node-a",
    metric: str = "matmul_tflops",
    higher: bool = True,
    uuid: str | None = None,
) -> RankMetric:
    return RankMetric(
        rank,
        host,
        f"cuda:{rank % 4}",
        rank % 4,
        uuid or f"GPU-{rank:04d}",
        model,
        metric,
        value,
        "TFLOP/s",
        higher,
    )


def test_a_gpu_more_than_the_threshold_below_its_siblings_is_flagged_with_host_index_and_uuid() -> None:
    readings = [reading(0, 700.0), reading(1, 710.0), reading(2, 690.0), reading(3, 600.0)]
    flagged = find_stragglers(readings, 10.0)
    assert [s.rank for s in flagged] == [3]
    s = flagged[0]
    assert s.sibling_median == 700.0 and s.siblings == 3
    assert s.deficit_pct == pytest.approx(100 * 100 / 700)
    assert (s.host, s.index, s.uuid) == ("node-a", 3, "GPU-0003")
    text = s.describe()
    assert "rank 3 on node-a cuda:3 (index 3)" in text and "GPU-0003" in text and "14.3% worse" in text


def test_just_inside_the_threshold_is_not_flagged() -> None:
    readings = [reading(0, 100.0), reading(1, 100.0), reading(2, 90.5)]
    assert find_stragglers(readings, 10.0) == []
    assert [s.rank for s in find_stragglers(readings, 9.0)] == [2]


def test_only_same_model_siblings_count_across_hosts() -> None:
    readings = [
        reading(0, 700.0, host="node-a"),
        reading(1, 705.0, host="node-b"),
        reading(2, 300.0, model="NVIDIA A100-SXM4-80GB", host="node-a"),  # slower model, alone: no siblings
        reading(3, 500.0, host="node-b"),
    ]
    flagged = find_stragglers(readings, 10.0)
    assert [(s.rank, s.host) for s in flagged] == [(3, "node-b")]


def test_metrics_are_compared_separately_and_lower_is_better_is_honoured() -> None:
    readings = [
        reading(0, 100.0, metric="copy_gbps"),
        reading(1, 100.0, metric="copy_gbps"),
        reading(0, 1.0, metric="step_s", higher=False),
        reading(1, 1.5, metric="step_s", higher=False),
    ]
    flagged = find_stragglers(readings, 10.0)
    assert [(s.rank, s.metric) for s in flagged] == [(1, "step_s")]
    assert deficit_pct(1.5, 1.0, higher_is_better=False) == pytest.approx(50.0)


def test_ranks_sharing_one_device_are_not_siblings() -> None:
    # two ranks on one host's CPU are one device: their difference is noise, not a straggler
    readings = [reading(0, 100.0, uuid="cpu-node-a"), reading(1, 50.0, uuid="cpu-node-a")]
    assert find_stragglers(readings, 10.0) == []


def test_failed_measurements_and_lone_gpus_are_never_stragglers() -> None:
    readings = [reading(0, 700.0), reading(1, float("nan")), reading(2, 0.0)]
    assert find_stragglers(readings, 10.0) == []
    with pytest.raises(ValueError, match="negative"):
        find_stragglers(readings, -1.0)
