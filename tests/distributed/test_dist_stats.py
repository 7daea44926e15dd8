"""The distributed rows' ``stats`` block comes from pytest-benchmark's own ``Stats`` (issue 17, item 1)."""

from __future__ import annotations

import pytest
from pytest_benchmark.stats import Stats

from gpubench.distributed import files

ROUNDS = [1.0, 1.1, 1.2, 1.3, 5.0, 1.05, 1.15]


def _reference(rounds: list[float]) -> dict[str, object]:
    s = Stats()
    for r in rounds:
        s.update(r)
    out: dict[str, object] = s.as_dict()
    return out


def test_stats_block_is_pytest_benchmarks() -> None:
    block = files._stats(ROUNDS)
    assert block["q1"] == pytest.approx(1.0625)
    assert block["iqr"] == pytest.approx(0.2125)
    assert block["outliers"] == "1;1"
    assert block["iqr_outliers"] == 1
    assert block["stddev_outliers"] == 1
    assert block["ld15iqr"] == 1.0
    assert block["rounds"] == 7
    assert block["iterations"] == 1
    assert block["data"] == ROUNDS
    # every field exactly as pytest-benchmark computes it (hd15iqr is 1.3 from pytest-benchmark 5.x on)
    ref = _reference(ROUNDS)
    assert {k: block[k] for k in ref} == ref


def test_benchmark_document_rows_use_the_same_stats() -> None:
    merged = {
        "run_id": "r1",
        "verb": "bench",
        "world_size": 1,
        "hosts": ["h"],
        "backend": "gloo",
        "finished": "2024-01-01T00:00:00",
        "ranks": [
            {
                "rank": 0,
                "host": "h",
                "device": "cpu",
                "bench": {
                    "copy": {"size": 8, "bytes": 8, "gbps": 1.0, "times_s": ROUNDS},
                },
            }
        ],
        "collectives": [],
        "ddp_scaling": [],
    }
    (row,) = files.benchmark_document(merged)["benchmarks"]
    ref = _reference(ROUNDS)
    assert {k: row["stats"][k] for k in ref} == ref


@pytest.mark.parametrize("rounds", [[2.0], [1.0, 3.0], [0.5, 0.25, 0.75, 1.0]])
def test_few_rounds_match(rounds: list[float]) -> None:
    block = files._stats(rounds)
    ref = _reference(rounds)
    assert {k: block[k] for k in ref} == ref
