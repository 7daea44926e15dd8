"""The device-aware timer: it synchronizes the measured device around every round and records how."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from gpubench import timing
from gpubench.timing import DeviceTimer, EventClock, SyncClock, TimingError


def test_default_sync_targets_the_measured_device_not_the_current_one(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    sync, label = timing.default_sync("cuda:1")
    assert sync is not None
    sync()
    assert calls == [torch.device("cuda", 1)]
    assert label == "torch.cuda.synchronize(cuda:1)"
    assert timing.default_sync("cpu") == (None, "none (cpu)")


def test_sync_clock_synchronizes_before_reading() -> None:
    log: list[str] = []
    clock = SyncClock(lambda: log.append("sync"), "fake", read=lambda: log.append("read") or 1.5)
    assert clock() == 1.5
    assert log == ["sync", "read"]
    assert "synchronize+perf_counter" in clock.__name__


def test_every_timed_round_is_bracketed_by_a_sync_of_the_measured_device(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[Any] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: log.append(("sync", device)))
    timer = DeviceTimer("cuda:1", clock="perf_counter")
    measurement = timer.measure(lambda: log.append("call"), rounds=3, warmup_rounds=1, iterations=4)
    assert measurement.plan.iterations == 4
    assert measurement.plan.method == "synchronize+perf_counter"
    assert measurement.plan.sync == "torch.cuda.synchronize(cuda:1)"
    syncs = {entry for entry in log if entry != "call"}
    assert syncs == {("sync", torch.device("cuda", 1))}
    timed = log[-3 * 6:]  # the 3 timed rounds: sync, 4 calls, sync
    assert timed == [("sync", torch.device("cuda", 1)), *["call"] * 4, ("sync", torch.device("cuda", 1))] * 3


class _FakeEvent:
    clock = 0.0

    def __init__(self) -> None:
        self.at: float | None = None
        self.stream: Any = None

    def record(self, stream: Any = None) -> None:
        _FakeEvent.clock += 0.25
        self.at, self.stream = _FakeEvent.clock, stream

    def elapsed_time(self, other: _FakeEvent) -> float:
        assert self.at is not None and other.at is not None
        return (other.at - self.at) * 1e3  # milliseconds, like torch.cuda.Event


def test_event_clock_reads_device_time_between_events_and_syncs_the_device() -> None:
    log: list[str] = []
    clock = EventClock("cuda:1", lambda: log.append("sync"), "fake sync(cuda:1)", event_factory=_FakeEvent,
                       stream_of=lambda: "stream-of-cuda:1")
    start = clock()
    stop = clock()
    assert start == 0.0
    assert stop == pytest.approx(0.25)
    assert log == ["sync", "sync"]
    assert clock() == 0.0  # a new pair starts


def test_event_clock_plan_records_the_method() -> None:
    log: list[str] = []
    timer = DeviceTimer("cuda:1", clock="cuda-events", synchronize=lambda: log.append("sync"),
                        sync_label="fake", event_factory=_FakeEvent, stream_of=lambda: None)
    measurement = timer.measure(lambda: None, rounds=2, iterations=2)
    assert measurement.plan.method == "cuda-events"
    assert measurement.plan.clock == "cuda events"
    assert all(t > 0 for t in measurement.times_s)


class _FakeTime:
    """A clock that moves only when the code under test spends time: ``spend(s)`` advances it by ``s``."""

    def __init__(self) -> None:
        self.now = 0.0

    def read(self) -> float:
        return self.now

    def spend(self, seconds: float) -> None:
        self.now += seconds


def test_cpu_plan_records_method_and_calibrates_to_the_minimum_round() -> None:
    clock = _FakeTime()
    timer = DeviceTimer("cpu", max_sync_fraction=0.01, min_round_s=1e-4, read=clock.read)
    measurement = timer.measure(lambda: clock.spend(3e-5), rounds=3)
    plan = measurement.plan
    assert plan.method == "perf_counter" and plan.sync == "none (cpu)" and plan.clock == "time.perf_counter"
    # nothing to synchronize on cpu: reading the clock costs nothing, so the round is min_round_s long
    assert plan.sync_overhead_s == 0.0 and plan.sync_fraction == 0.0
    assert plan.call_estimate_s == pytest.approx(3e-5)
    assert plan.iterations == 4  # ceil(1e-4 / 3e-5)
    assert measurement.times_s == pytest.approx((3e-5,) * 3)
    assert plan.as_dict()["rounds"] == 3


def test_calibration_keeps_an_expensive_sync_under_one_percent() -> None:
    clock = _FakeTime()
    timer = DeviceTimer("cuda:1", clock="perf_counter", synchronize=lambda: clock.spend(2e-4), sync_label="slow",
                        read=clock.read)
    plan = timer.plan(lambda: clock.spend(3e-5), rounds=1, warmup_rounds=1)
    assert plan.sync_overhead_s == pytest.approx(2e-4)  # one synchronization per empty round (at its end)
    assert plan.call_estimate_s == pytest.approx(3e-5)  # the round's time less the sync
    # the round must be 2e-4 / 1% = 20 ms long: ceil(0.02 / 3e-5) calls; one call would be 87% sync
    assert plan.iterations == 667
    assert plan.sync_fraction == pytest.approx(2e-4 / (667 * 3e-5))
    assert plan.sync_fraction <= 0.01


def test_refuses_what_a_cpu_cannot_do() -> None:
    with pytest.raises(TimingError, match="CUDA events need a CUDA device"):
        DeviceTimer("cpu", clock="cuda-events")
    with pytest.raises(TimingError, match="L2 flush"):
        DeviceTimer("cpu").plan(lambda: None, rounds=1, warmup_rounds=0, l2_flush=True)
    with pytest.raises(TimingError, match="unknown clock"):
        DeviceTimer("cpu", clock="rdtsc")


def test_rotation_covers_twice_the_cache(tmp_path: Path) -> None:
    assert timing.rotation_count(4 << 20, 40 << 20) == 20
    assert timing.rotation_count(64 << 20, 40 << 20) == 2
    assert timing.rotation_count(1 << 20, 0) == 1
    for index, size in (("index0", "48K"), ("index2", "2048K"), ("index3", "32M")):
        (tmp_path / index).mkdir()
        (tmp_path / index / "size").write_text(size + "\n")
    assert timing.cpu_llc_bytes(tmp_path) == 32 << 20


def test_rotating_inputs_cycle() -> None:
    seen: list[int] = []
    timer = DeviceTimer("cpu")
    timer.measure(seen.append, [(1,), (2,), (3,)], rounds=1, iterations=3, warmup_rounds=1)
    assert seen == [1, 2, 3, 1]  # one warmup call, then a round of three: the inputs keep cycling


def test_with_pytest_benchmark_the_fixture_reads_our_clock_and_records_the_method(
    benchmark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real pytest-benchmark fixture, with torch.cuda.synchronize recorded: as in a run on cuda:1."""
    if benchmark.disabled:
        pytest.skip("benchmarks are disabled (--benchmark-disable): the fixture times nothing")
    clock = _FakeTime()
    log: list[Any] = []

    def synchronize(device: Any = None) -> None:
        log.append(device)
        clock.spend(1e-6)

    monkeypatch.setattr(torch.cuda, "synchronize", synchronize)
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        clock.spend(1e-5)

    DeviceTimer("cuda:1", clock="perf_counter", read=clock.read).run(benchmark, work, rounds=4)
    timing_info = benchmark.extra_info["timing"]
    assert set(log) == {torch.device("cuda", 1)}
    assert timing_info["method"] == "synchronize+perf_counter"
    assert timing_info["sync"] == "torch.cuda.synchronize(cuda:1)"
    # pytest-benchmark timed the rounds with our clock: 1e-5 s per call, the sync's 1 us over 100 calls
    assert timing_info["iterations"] == 100  # ceil(1e-6 / 1% / 1e-5)
    assert timing_info["call_estimate_s"] == pytest.approx(1e-5 + 1e-6 / 100)
    assert timing_info["sync_fraction"] == pytest.approx(1e-6 / (100 * 1e-5 + 1e-6))
    saved = benchmark.stats.as_dict()  # what pytest-benchmark writes into its JSON
    assert saved["options"]["timer"].startswith("gpubench.synchronize+perf_counter")
    assert saved["stats"]["rounds"] == 4
    assert saved["stats"]["iterations"] == timing_info["iterations"]
    # each timed round reads the clock twice and each read syncs cuda:1 (warmup and calibration add more)
    assert len(log) >= 2 * 4
    assert len(calls) >= 4 * timing_info["iterations"]
