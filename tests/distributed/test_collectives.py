"""Collective bandwidth: the nccl-tests formulas, the size sweep, the gate, and a real gloo sweep."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gpubench.distributed import collectives as coll


@pytest.mark.parametrize(
    ("op", "n", "factor"),
    [
        ("all_reduce", 2, 1.0),
        ("all_reduce", 4, 1.5),
        ("all_reduce", 8, 1.75),
        ("all_reduce", 1, 0.0),
        ("all_gather", 2, 0.5),
        ("all_gather", 8, 0.875),
        ("reduce_scatter", 4, 0.75),
        ("broadcast", 2, 1.0),
        ("broadcast", 16, 1.0),
    ],
)
def test_bus_factors_are_the_nccl_tests_factors(op: str, n: int, factor: float) -> None:
    assert coll.bus_factor(op, n) == pytest.approx(factor)


def test_bandwidths_use_gb_of_1e9_bytes() -> None:
    # 1 GiB all-reduced over 8 ranks in 10 ms: algbw = 2**30 / 0.01 / 1e9, busbw = algbw * 2 * 7 / 8
    algbw = coll.algbw_gbps(2**30, 0.01)
    assert algbw == pytest.approx(107.3741824)
    assert coll.busbw_gbps("all_reduce", 2**30, 0.01, 8) == pytest.approx(algbw * 1.75)
    assert coll.busbw_gbps("broadcast", 2**30, 0.01, 8) == pytest.approx(algbw)
    with pytest.raises(coll.CollectiveError, match="non-positive"):
        coll.algbw_gbps(1, 0.0)
    with pytest.raises(coll.CollectiveError, match="unknown collective"):
        coll.bus_factor("all_to_all", 2)


def test_sizes_parse_and_sweep() -> None:
    assert coll.parse_bytes("4KiB") == 4096
    assert coll.parse_bytes("16 MiB") == 16 << 20
    assert coll.parse_bytes("1GiB") == 1 << 30
    assert coll.parse_bytes("1MB") == 1_000_000
    assert coll.parse_bytes("512") == 512
    with pytest.raises(coll.CollectiveError, match="16MiB"):
        coll.parse_bytes("lots")
    assert coll.size_sweep(4096, 16 << 20) == (4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20)
    assert coll.size_sweep(1024, 1 << 30, 4)[-1] == 1 << 30
    assert coll.size_sweep(1000, 5000, 2) == (1000, 2000, 4000)
    with pytest.raises(coll.CollectiveError, match="empty"):
        coll.size_sweep(10, 5)
    assert coll.format_bytes(16 << 20) == "16 MiB" and coll.format_bytes(1000) == "1000 B"


def test_buffers_split_evenly_over_ranks() -> None:
    # all-gather: bytes is the gathered output; each of 3 ranks sends a third, rounded down to whole floats
    assert coll.buffer_numels("all_gather", 4096, 3) == (341 * 3 * 4, 341, 1023)
    assert coll.buffer_numels("reduce_scatter", 4096, 4) == (4096, 1024, 256)
    assert coll.buffer_numels("all_reduce", 4096, 3) == (4096, 1024, 1024)
    assert coll.buffer_numels("broadcast", 2, 2) == (4, 1, 1)  # never below one element


def test_result_from_round_times_reports_the_median() -> None:
    r = coll.result_from_times(
        "all_reduce", 1 << 20, [0.004, 0.001, 0.002], warmup=1, backend="gloo", world_size=2, device="cpu"
    )
    assert r.time_s == 0.002 and r.rounds == 3
    assert r.algbw_gbps == pytest.approx((1 << 20) / 0.002 / 1e9)
    assert r.busbw_gbps == pytest.approx(r.algbw_gbps)  # 2(n-1)/n = 1 at n = 2
    assert r.as_dict()["times_s"] == [0.004, 0.001, 0.002]


def test_minimum_bus_bandwidth_gate_judges_each_ops_best_size() -> None:
    results = [
        coll.result_from_times(
            "all_reduce", 4096, [1e-3], warmup=0, backend="nccl", world_size=2, device="cuda:0"
        ),
        coll.result_from_times(
            "all_reduce", 1 << 30, [0.01], warmup=0, backend="nccl", world_size=2, device="cuda:0"
        ),
        coll.result_from_times(
            "broadcast", 1 << 30, [0.1], warmup=0, backend="nccl", world_size=2, device="cuda:0"
        ),
    ]
    assert coll.busbw_gate(results, None) == []
    failures = coll.busbw_gate(results, 50.0)  # all-reduce peaks at 107 GB/s, broadcast at 10.7
    assert len(failures) == 1 and failures[0].startswith("broadcast: best bus bandwidth 10.7 GB/s (at 1 GiB)")


@pytest.mark.distributed
def test_a_real_gloo_sweep_runs_fixed_rounds(tmp_path: Path) -> None:
    import torch
    import torch.distributed as dist

    dist.init_process_group(
        "gloo",
        init_method=f"file://{tmp_path / 'store'}",
        rank=0,
        world_size=1,
        timeout=dt.timedelta(seconds=30),
    )
    try:
        control = dist.new_group(backend="gloo")
        results = coll.run_sweep(
            coll.OPS,
            (4096, 65536),
            rounds=3,
            warmup=1,
            device=torch.device("cpu"),
            backend="gloo",
            control_group=control,
        )
    finally:
        dist.destroy_process_group()
    assert [(r.op, r.bytes) for r in results] == [(op, size) for op in coll.OPS for size in (4096, 65536)]
    assert all(r.rounds == 3 and len(r.times_s) == 3 and r.time_s > 0 for r in results)
    assert all(r.algbw_gbps == pytest.approx(r.bytes / r.time_s / 1e9) for r in results)
