"""Collective bandwidth: the nccl-tests formulas, the size sweep, the gate, and a real gloo sweep."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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


# --- timing: a round is a batch of back-to-back calls (issue 14, review item 7) --------------------------


def test_batch_iters_grow_as_buffers_shrink_within_bounds() -> None:
    # GPUs: about 64 MiB per batch, 1 to 100 calls; CPUs: about 256 KiB, 1 to 10 calls
    gpu = coll.batch_rule_for("cuda")
    assert [coll.batch_iters(s, gpu) for s in coll.size_sweep(*coll.GPU_SWEEP)] == [
        *[100] * 5,
        64,
        16,
        4,
        1,
        1,
        1,
    ]
    assert coll.batch_iters(64 * coll.MIB - 1) == 2 and coll.batch_iters(64 * coll.MIB) == 1
    cpu = coll.batch_rule_for("cpu")
    assert [coll.batch_iters(s, cpu) for s in coll.size_sweep(*coll.CPU_SWEEP)] == [10, 10, 4, 1, 1, 1, 1]
    rule = coll.BatchRule(target_bytes=1 << 20, min_iters=5, max_iters=20)
    assert [coll.batch_iters(s, rule) for s in (1, 1 << 16, 1 << 18, 1 << 30)] == [20, 16, 5, 5]
    with pytest.raises(coll.CollectiveError, match="min_iters <= max_iters"):
        coll.BatchRule(min_iters=10, max_iters=5)
    with pytest.raises(coll.CollectiveError, match="at least 1"):
        coll.batch_iters(0)


def test_every_rank_gets_the_same_iters_for_an_op_and_size() -> None:
    # iters depends on (op, size, world size, device type) only: computed again, in another order, or
    # after the clock has moved on, it is the same, so every rank of a run issues the same calls
    cases = [
        (op, s, n, kind)
        for op in coll.OPS
        for s in coll.size_sweep(1, 1 << 30, 2)
        for n in (1, 2, 3, 8, 16)
        for kind in ("cuda", "cpu")
    ]

    def table(order: list[tuple[str, int, int, str]]) -> dict[tuple[str, int, int, str], int]:
        return {
            (op, s, n, kind): coll.batch_iters(coll.buffer_numels(op, s, n)[0], coll.batch_rule_for(kind))
            for op, s, n, kind in order
        }

    first = table(cases)
    assert len(first) == len(cases)
    assert table(list(reversed(cases))) == first
    assert all(1 <= iters <= 100 for iters in first.values())


def test_host_batch_timer_runs_the_calls_between_two_clock_reads() -> None:
    now = [10.0]
    calls: list[float] = []

    def call() -> None:
        calls.append(now[0])
        now[0] += 0.002  # each call takes 2 ms on the fake clock

    assert coll.time_batch_host(call, 5, clock=lambda: now[0]) == pytest.approx(0.010)
    assert len(calls) == 5


class _StandInCuda:
    """``torch.cuda`` as far as :func:`coll.time_batch_cuda` uses it; logs what happens, in order."""

    def __init__(self, elapsed_ms: float, log: list[tuple[Any, ...]]) -> None:
        self.elapsed_ms, self.log, self.events = elapsed_ms, log, 0

    def current_stream(self, device: Any) -> str:
        self.log.append(("current_stream", device))
        return f"stream of {device}"

    def Event(self, enable_timing: bool = False) -> Any:
        cuda, name = self, ("start", "end")[self.events]
        self.events += 1

        class Event:
            def record(self, stream: Any) -> None:
                cuda.log.append(("record", name, stream, enable_timing))

            def synchronize(self) -> None:
                cuda.log.append(("synchronize", name))

            def elapsed_time(self, other: Any) -> float:
                cuda.log.append(("elapsed_time", name))
                return cuda.elapsed_ms

        return Event()


def test_cuda_batch_timer_brackets_the_calls_with_events_on_the_devices_current_stream() -> None:
    log: list[tuple[Any, ...]] = []
    seconds = coll.time_batch_cuda(lambda: log.append(("call",)), 3, "cuda:1", cuda=_StandInCuda(45.0, log))
    assert seconds == pytest.approx(0.045)  # elapsed_time is in milliseconds
    assert log == [
        ("current_stream", "cuda:1"),
        ("record", "start", "stream of cuda:1", True),
        ("call",),
        ("call",),
        ("call",),
        ("record", "end", "stream of cuda:1", True),
        ("synchronize", "end"),  # one wait, at the end of the batch
        ("elapsed_time", "start"),
    ]


def test_cuda_devices_are_timed_by_events_and_cpu_by_the_host_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def stand_in(call: Any, iters: int, device: Any) -> float:
        seen.append((iters, device))
        return 1.0

    monkeypatch.setattr(coll, "time_batch_cuda", stand_in)
    gpu = SimpleNamespace(type="cuda", index=2)
    timer, timing = coll._batch_timing(gpu, 7)
    assert timing == "cuda events over a batch of 7 back-to-back calls"
    assert timer(lambda: None, 7) == 1.0 and seen == [(7, gpu)]
    _, timing = coll._batch_timing(SimpleNamespace(type="cpu"), 7)
    assert timing == "perf_counter over a batch of 7 calls"


@pytest.mark.distributed
def test_a_timed_round_is_a_batch_and_reports_the_batch_time_over_its_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    import torch.distributed as dist

    issued: Counter[tuple[str, int]] = Counter()
    real_collective = coll._collective

    def counting_collective(
        op: str, world: int, numel_in: int, numel_out: int, device: Any, group: Any
    ) -> Any:
        call = real_collective(op, world, numel_in, numel_out, device, group)

        def counted() -> Any:
            issued[(op, numel_in)] += 1
            return call()

        return counted

    batches: list[int] = []

    def fake_timer(call: Any, iters: int) -> float:
        for _ in range(iters):
            call()
        batches.append(iters)
        return 0.001 * iters * len(batches)  # batch k takes k ms per call

    monkeypatch.setattr(coll, "_collective", counting_collective)
    monkeypatch.setattr(coll, "time_batch_host", fake_timer)
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
            ("all_reduce", "broadcast"),
            (4096, 65536),
            rounds=3,
            warmup=2,
            device=torch.device("cpu"),
            backend="gloo",
            control_group=control,
            batch=coll.BatchRule(target_bytes=16384),
        )
    finally:
        dist.destroy_process_group()
    # 16 KiB per batch: 4 calls of 4 KiB, 1 call of 64 KiB; 2 untimed and 3 timed batches each
    assert [(r.op, r.bytes, r.iters) for r in results] == [
        ("all_reduce", 4096, 4),
        ("all_reduce", 65536, 1),
        ("broadcast", 4096, 4),
        ("broadcast", 65536, 1),
    ]
    assert issued == {
        ("all_reduce", 1024): 20,
        ("all_reduce", 16384): 5,
        ("broadcast", 1024): 20,
        ("broadcast", 16384): 5,
    }
    assert batches == [4, 4, 4, 1, 1, 1, 4, 4, 4, 1, 1, 1]
    # the batch's time divided by its calls: batch k took k ms per call
    assert [r.times_s for r in results] == [
        pytest.approx((0.001, 0.002, 0.003)),
        pytest.approx((0.004, 0.005, 0.006)),
        pytest.approx((0.007, 0.008, 0.009)),
        pytest.approx((0.010, 0.011, 0.012)),
    ]
    assert results[0].time_s == pytest.approx(0.002) and results[0].rounds == 3
    assert [r.timing for r in results] == [
        "perf_counter over a batch of 4 calls",
        "perf_counter over a batch of 1 calls",
        "perf_counter over a batch of 4 calls",
        "perf_counter over a batch of 1 calls",
    ]


def test_results_record_the_timing_and_still_load_without_it() -> None:
    r = coll.result_from_times(
        "all_reduce",
        4096,
        [1e-5],
        warmup=1,
        backend="nccl",
        world_size=2,
        device="cuda:0",
        iters=100,
        timing="cuda events over a batch of 100 back-to-back calls",
    )
    data = r.as_dict()
    assert data["iters"] == 100 and data["timing"] == "cuda events over a batch of 100 back-to-back calls"
    # the merge rebuilds results from these dicts, as it does from those saved before the fields existed
    assert coll.CollectiveResult(**{**data, "times_s": tuple(data["times_s"])}) == r
    old = {k: v for k, v in data.items() if k not in ("iters", "timing")}
    assert coll.CollectiveResult(**{**old, "times_s": tuple(old["times_s"])}).iters == 1
