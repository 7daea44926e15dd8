"""Collective bandwidth math at its edges: one rank, exact sizes, the gate at exactly its floor."""

from __future__ import annotations

import pytest

from gpubench.distributed.collectives import (
    CPU_BATCH,
    GPU_BATCH,
    KIB,
    MIB,
    BatchRule,
    CollectiveError,
    algbw_gbps,
    batch_iters,
    batch_rule_for,
    buffer_numels,
    bus_factor,
    busbw_gate,
    busbw_gbps,
    format_bytes,
    parse_bytes,
    result_from_times,
    size_sweep,
)


def test_bus_factors_for_one_rank_and_bad_world_sizes() -> None:
    assert bus_factor("all_reduce", 1) == 0.0 and bus_factor("all_gather", 1) == 0.0
    assert bus_factor("reduce_scatter", 4) == 0.75 and bus_factor("broadcast", 1) == 1.0
    assert bus_factor("all_reduce", 8) == 1.75
    with pytest.raises(CollectiveError, match=r"world size 0 is not a number of ranks \(>= 1\)"):
        bus_factor("all_reduce", 0)
    with pytest.raises(CollectiveError, match=r"unknown collective 'all_to_all'; use one of .*all_reduce"):
        bus_factor("all_to_all", 2)


def test_bandwidth_needs_a_positive_time() -> None:
    assert algbw_gbps(2_000_000_000, 2.0) == 1.0
    assert busbw_gbps("all_reduce", 4_000_000_000, 1.0, 4) == 6.0
    for seconds in (0.0, -1.0):
        with pytest.raises(CollectiveError, match="non-positive time"):
            algbw_gbps(1, seconds)


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [(4096, 4096), ("4096", 4096), ("4KiB", 4 * KIB), (" 16 MiB ", 16 * MIB), ("1GiB", 1 << 30),
     ("1MB", 1_000_000), ("2kb", 2000), ("1.5k", 1500), ("3G", 3_000_000_000), ("7b", 7), ("1gb", 10**9),
     ("2m", 2_000_000)],
)
def test_parse_bytes_units(text: str | int, nbytes: int) -> None:
    assert parse_bytes(text) == nbytes


@pytest.mark.parametrize("text", ["", "MiB", "4 TiB", "-4KiB", "4 Ki B", "1e3"])
def test_parse_bytes_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(CollectiveError, match="is not a size"):
        parse_bytes(text)


def test_format_bytes_uses_the_largest_whole_binary_unit() -> None:
    assert format_bytes(1 << 30) == "1 GiB" and format_bytes(3 << 30) == "3 GiB"
    assert format_bytes(MIB) == "1 MiB" and format_bytes(KIB) == "1 KiB"
    assert format_bytes(1536 * KIB) == "1536 KiB"  # 1.5 MiB is not a whole MiB
    assert format_bytes(1023) == "1023 B" and format_bytes(KIB + 1) == "1025 B" and format_bytes(0) == "0 B"


def test_size_sweep_edges() -> None:
    assert size_sweep(1, 1) == (1,)
    assert size_sweep(4, 64) == (4, 16, 64)  # the last step lands on max: included
    assert size_sweep(4, 63) == (4, 16)
    assert size_sweep(3, 24, factor=2) == (3, 6, 12, 24)
    with pytest.raises(CollectiveError, match="is empty"):
        size_sweep(0, 10)
    with pytest.raises(CollectiveError, match="is empty"):
        size_sweep(10, 9)
    with pytest.raises(CollectiveError, match="factor 1 must be at least 2"):
        size_sweep(1, 10, factor=1)


def test_buffer_sizes_round_down_to_whole_elements_per_rank_never_below_one() -> None:
    assert buffer_numels("all_gather", 100, 3) == (96, 8, 24)  # 100 // 12 = 8 per rank
    assert buffer_numels("reduce_scatter", 100, 3) == (96, 24, 8)
    assert buffer_numels("all_reduce", 100, 3) == (100, 25, 25)
    assert buffer_numels("broadcast", 2, 4) == (4, 1, 1)
    assert buffer_numels("all_gather", 1, 4) == (16, 1, 4)
    assert buffer_numels("all_reduce", 6, 1, itemsize=2) == (6, 3, 3)
    with pytest.raises(CollectiveError):
        buffer_numels("all_reduce", 64, 0)


def test_result_from_times_median_and_bandwidths() -> None:
    r = result_from_times("all_reduce", 1_000_000_000, [4.0, 1.0, 2.0, 3.0], warmup=2, backend="gloo",
                          world_size=2, device="cpu", iters=3, timing="host")
    assert (r.time_s, r.rounds, r.warmup, r.times_s) == (2.5, 4, 2, (4.0, 1.0, 2.0, 3.0))
    assert r.algbw_gbps == pytest.approx(0.4) and r.busbw_gbps == pytest.approx(0.4)
    assert (r.backend, r.world_size, r.device, r.iters, r.timing, r.dtype) == ("gloo", 2, "cpu", 3, "host", "float32")
    assert r.as_dict()["times_s"] == [4.0, 1.0, 2.0, 3.0]
    with pytest.raises(CollectiveError, match="all_reduce 8 bytes: no timed rounds"):
        result_from_times("all_reduce", 8, [], warmup=0, backend="gloo", world_size=2, device="cpu")


def test_batch_rules_and_their_bounds() -> None:
    assert batch_rule_for("cuda") is GPU_BATCH and batch_rule_for("cpu") is CPU_BATCH
    assert batch_iters(64 * MIB) == 1 and batch_iters(64 * MIB + 1) == 1
    assert batch_iters(32 * MIB) == 2 and batch_iters(32 * MIB - 1) == 3  # ceil
    assert batch_iters(1) == 100  # at most max_iters
    rule = BatchRule(target_bytes=100, min_iters=3, max_iters=5)
    assert batch_iters(100, rule) == 3 and batch_iters(30, rule) == 4 and batch_iters(1, rule) == 5
    assert batch_iters(1, BatchRule(1, 1, 1)) == 1
    with pytest.raises(CollectiveError, match="give at least 1"):
        batch_iters(0)
    for bad in ((0, 1, 1), (1, 0, 1), (1, 3, 2)):
        with pytest.raises(CollectiveError, match=r"give target >= 1 and 1 <= min_iters <= max_iters"):
            BatchRule(*bad)


def _result(op: str, nbytes: int, busbw: float) -> object:
    # busbw for broadcast equals algbw: nbytes / time / 1e9
    return result_from_times(op, nbytes, [nbytes / busbw / 1e9], warmup=0, backend="nccl", world_size=2,
                             device="cuda:0")


def test_the_gate_judges_each_ops_best_size_and_passes_exactly_at_the_floor() -> None:
    results = [_result("broadcast", 1 << 20, 5.0), _result("broadcast", 1 << 30, 10.0),
               _result("broadcast", 1 << 25, 7.0)]
    assert busbw_gate(results, None) == []
    assert busbw_gate(results, 10.0) == []  # the best reaches the floor exactly: not below it
    assert busbw_gate(results, 10.5) == [
        "broadcast: best bus bandwidth 10 GB/s (at 1 GiB) is below the minimum 10.5 GB/s"
    ]
    tie = [_result("broadcast", 1 << 20, 10.0), _result("broadcast", 1 << 30, 10.0)]
    assert busbw_gate(tie, 11.0) == ["broadcast: best bus bandwidth 10 GB/s (at 1 MiB) is below the minimum 11 GB/s"]


def test_messages_and_defaults_exactly() -> None:
    from gpubench.distributed.collectives import OPS

    with pytest.raises(CollectiveError, match=rf"^unknown collective 'x'; use one of {', '.join(OPS)}$"):
        bus_factor("x", 2)
    with pytest.raises(CollectiveError, match=r"^batch rule target 0 bytes, iters 1\.\.1: give target >= 1 and "
                                              r"1 <= min_iters <= max_iters$"):
        BatchRule(0, 1, 1)
    r = result_from_times("broadcast", 8, [1.0], warmup=0, backend="gloo", world_size=2, device="cpu")
    assert (r.iters, r.timing, r.dtype) == (1, "", "float32")
