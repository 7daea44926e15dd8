"""Timer calibration at its edges, on a clock the test moves: every number below is exact, none is timed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpubench import timing
from gpubench.timing import DeviceTimer, Measurement, SyncClock, TimingError, TimingPlan


class _Time:
    def __init__(self) -> None:
        self.now = 0.0
        self.calls = 0

    def read(self) -> float:
        return self.now

    def spend(self, seconds: float) -> None:
        self.now += seconds

    def work(self, seconds: float) -> Any:
        def call() -> None:
            self.calls += 1
            self.now += seconds

        return call


def _timer(t: _Time, sync_s: float | None = 2e-4, **kw: Any) -> DeviceTimer:
    if sync_s is None:
        return DeviceTimer("cpu", read=t.read, **kw)
    return DeviceTimer("cuda:1", clock="perf_counter", synchronize=lambda: t.spend(sync_s), sync_label="fake",
                       read=t.read, **kw)


def test_sync_overhead_is_the_median_empty_round_and_never_negative() -> None:
    t = _Time()
    assert _timer(t, 2e-4).sync_overhead("perf_counter") == pytest.approx(2e-4)
    steps = iter([5.0, 4.0] * 30)  # a clock that runs backwards (never: but the cost is never below zero)
    backwards = DeviceTimer("cpu", read=lambda: next(steps))
    assert backwards.sync_overhead("perf_counter") == 0.0
    costs = iter([0.0, 1.0, 0.0, 3.0, 0.0, 2.0])  # three empty rounds costing 1, 3 and 2 s: the median is 2
    assert DeviceTimer("cpu", read=lambda: next(costs)).sync_overhead("perf_counter", samples=3) == 2.0


def test_the_round_lasts_at_least_min_round_s_when_the_sync_is_cheap() -> None:
    t = _Time()
    # 1e-6 s of sync at 1 % wants a 1e-4 s round; min_round_s 1e-3 wins: ceil(1e-3 / 3e-5) = 34 calls
    n, per_call, overhead = _timer(t, 1e-6, min_round_s=1e-3).calibrate(t.work(3e-5), "perf_counter")
    assert (n, per_call, overhead) == (34, pytest.approx(3e-5), pytest.approx(1e-6))


def test_the_sync_budget_wins_over_min_round_s_when_the_sync_is_expensive() -> None:
    t = _Time()
    n, _, _ = _timer(t, 2e-4, min_round_s=1e-3).calibrate(t.work(3e-5), "perf_counter")
    assert n == 667  # 2e-4 / 1 % = 20 ms: ceil(0.02 / 3e-5)
    n5, _, _ = _timer(t, 2e-4, min_round_s=1e-3, max_sync_fraction=0.05).calibrate(t.work(3e-5), "perf_counter")
    assert n5 == 134  # 2e-4 / 5 % = 4 ms: ceil(0.004 / 3e-5)


def test_a_zero_sync_budget_means_only_min_round_s() -> None:
    t = _Time()
    n, _, _ = _timer(t, 2e-4, min_round_s=1e-3, max_sync_fraction=0.0).calibrate(t.work(3e-5), "perf_counter")
    assert n == 34


def test_iterations_stop_at_max_iterations_while_growing_and_at_the_end() -> None:
    t = _Time()
    n, _, _ = _timer(t, 2e-4, max_iterations=100).calibrate(t.work(3e-5), "perf_counter")
    assert n == 100
    assert t.calls <= 1 + 22 + 100  # doubling stopped at the cap: no round past it was run
    t2 = _Time()
    # a free call: per call is clamped to 1 ns, and iterations to the cap
    n2, per_call, _ = _timer(t2, 2e-4, max_iterations=50).calibrate(t2.work(0.0), "perf_counter")
    assert (n2, per_call) == (50, 1e-9)


def test_calibration_growth_reaches_a_quarter_of_the_target_then_scales() -> None:
    t = _Time()
    n, _, _ = _timer(t, 2e-4).calibrate(t.work(3e-5), "perf_counter")
    # rounds of 1, 22, 128 and 256 calls (x2, or scaled up to a quarter of the 20 ms target), then 667
    assert t.calls == 1 + 22 + 128 + 256
    assert n == 667


def test_a_round_exactly_at_a_quarter_of_the_target_ends_the_growth() -> None:
    t = _Time()
    # no sync cost, min_round_s 4e-3: a quarter is 1e-3, reached by the first round of one 1e-3 call
    n, per_call, overhead = _timer(t, None, min_round_s=4e-3).calibrate(t.work(1e-3), "perf_counter")
    assert t.calls == 1 and (n, per_call, overhead) == (4, 1e-3, 0.0)


def test_fixed_iterations_skip_calibration_and_take_the_estimate_from_the_last_warmup() -> None:
    t = _Time()
    plan = _timer(t, 2e-4).plan(t.work(3e-3), rounds=2, warmup_rounds=3, iterations=5)
    assert t.calls == 3  # the warmup rounds only
    assert plan.iterations == 5 and plan.rounds == 2 and plan.warmup_rounds == 3
    assert plan.call_estimate_s == pytest.approx(3e-3)  # the warmup round less the sync
    assert plan.sync_fraction == pytest.approx(2e-4 / (5 * 3e-3))
    zero = _Time()
    plan0 = _timer(zero, 2e-4).plan(zero.work(0.0), rounds=1, warmup_rounds=0, iterations=3)
    assert zero.calls == 1  # at least one warmup round
    assert plan0.call_estimate_s == pytest.approx(0.0, abs=1e-15)
    assert plan0.sync_fraction == 0.0  # no round time: no fraction


def test_a_separate_warmup_call_says_nothing_about_the_call() -> None:
    t = _Time()
    plan = _timer(t, 2e-4).plan(t.work(3e-3), rounds=1, warmup_rounds=1, iterations=2, warmup_call=t.work(1.0))
    assert plan.call_estimate_s == 0.0 and plan.sync_fraction == 0.0


def test_measure_reports_per_call_times_of_each_round() -> None:
    t = _Time()
    durations = iter([1e-3, 1e-3, 1e-3, 2e-3, 2e-3, 4e-3, 4e-3])  # warmup, then 3 rounds of 2 calls

    def call() -> None:
        t.spend(next(durations))

    m = _timer(t, None).measure(call, rounds=3, warmup_rounds=1, iterations=2)
    assert m.times_s == pytest.approx((1e-3, 2e-3, 4e-3))
    assert m.median_s == pytest.approx(2e-3)
    assert m.iqr_s == pytest.approx(2.25e-3)  # pytest-benchmark's quartiles: 3.5e-3 - 1.25e-3


def _plan() -> TimingPlan:
    return TimingPlan("perf_counter", "time.perf_counter", "none (cpu)", "cpu", 1, 1, 0, False, 1, 0.0, 0.0, 0.0)


def test_iqr_uses_pytest_benchmarks_quartiles() -> None:
    assert Measurement((1.0, 2.0, 3.0, 4.0), _plan()).iqr_s == pytest.approx(2.0)  # 3.5 - 1.5
    assert Measurement((1.0, 9.0, 5.0), _plan()).iqr_s == pytest.approx(6.0)  # 8 - 2
    assert Measurement((2.0,), _plan()).iqr_s == 0.0
    # issue 17's rounds: the figure pytest-benchmark's own Stats gives
    rounds = (1.0, 1.1, 1.2, 1.3, 5.0, 1.05, 1.15)
    assert Measurement(rounds, _plan()).iqr_s == pytest.approx(0.2125)


def test_rotation_count_edges() -> None:
    assert timing.rotation_count(0, 40) == 1 and timing.rotation_count(10, 0) == 1
    assert timing.rotation_count(-1, 40) == 1 and timing.rotation_count(10, -1) == 1
    assert timing.rotation_count(40, 20) == 1  # one set is already twice the cache
    assert timing.rotation_count(41, 20) == 1 and timing.rotation_count(39, 20) == 2
    assert timing.rotation_count(1, 1000) == 64 and timing.rotation_count(1, 1000, limit=10) == 10
    assert timing.rotation_count(1, 32) == 64 and timing.rotation_count(1, 33) == 64


def test_cpu_llc_reads_units_and_skips_what_it_cannot_parse(tmp_path: Path) -> None:
    sizes = {"index0": "512", "index1": "2K", "index2": "3M", "index3": "bad", "index4": "1G\n", "other": "9G"}
    for name, size in sizes.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "size").write_text(size)
    assert timing.cpu_llc_bytes(tmp_path) == 1 << 30  # "other" is not an index* folder
    (tmp_path / "index4" / "size").write_text("7m")
    assert timing.cpu_llc_bytes(tmp_path) == 7 << 20  # lower case units too
    (tmp_path / "index4" / "size").unlink()
    (tmp_path / "index4" / "size").mkdir()  # unreadable: skipped
    assert timing.cpu_llc_bytes(tmp_path) == 3 << 20
    assert timing.cpu_llc_bytes(tmp_path / "missing") == 0


def test_method_names_and_clock_choice() -> None:
    t = _Time()
    gpu = _timer(t, 2e-4)
    assert gpu.method_name("perf_counter") == "synchronize+perf_counter"
    assert gpu.method_name("cuda-events") == "cuda-events"
    assert gpu.clock_for(True) == "perf_counter"  # asked for explicitly
    auto = DeviceTimer("cuda:2", synchronize=lambda: None, read=t.read)
    assert auto.clock_for(True) == "cuda-events" and auto.clock_for(False) == "perf_counter"
    assert str(auto.device) == "cuda:2"
    assert str(DeviceTimer("cuda", synchronize=lambda: None).device) == "cuda:0"
    cpu = DeviceTimer("cpu", read=t.read)
    assert cpu.clock_for(True) == "perf_counter" and cpu.method_name("perf_counter") == "perf_counter"
    assert SyncClock(None, "x").__name__ == "gpubench.perf_counter"
    with pytest.raises(TimingError, match="at least one argument tuple"):
        cpu.measure(lambda: None, [], rounds=1)


class _Device:
    """A fake GPU: work advances the device's clock and the host's; synchronizing costs the host only."""

    def __init__(self) -> None:
        self.host = 0.0
        self.device = 0.0
        self.streams: list[Any] = []
        self.flushes = 0

    def read(self) -> float:
        return self.host

    def sync(self) -> None:
        self.host += 2e-4

    def work(self) -> None:
        self.host += 3e-5
        self.device += 3e-5

    def zero_(self) -> None:  # the L2 flush buffer: costs the host a whole second, outside the timed region
        self.flushes += 1
        self.host += 1.0

    def event(self) -> Any:
        gpu = self

        class Event:
            at = 0.0

            def record(self, stream: Any = None) -> None:
                gpu.streams.append(stream)
                self.at = gpu.device

            def elapsed_time(self, other: Any) -> float:
                return (other.at - self.at) * 1e3

        return Event()

    def timer(self, clock: str = "auto", **kw: Any) -> DeviceTimer:
        return DeviceTimer("cuda:1", clock=clock, synchronize=self.sync, sync_label="fake sync(cuda:1)",
                           event_factory=self.event, stream_of=lambda: "stream-of-cuda:1", read=self.read, **kw)


def test_auto_times_device_only_work_with_events_and_the_rest_with_the_host_clock() -> None:
    gpu = _Device()
    events = gpu.timer().plan(gpu.work, rounds=2, warmup_rounds=1)  # device_only by default
    # events see only the device: no sync cost, so min_round_s (1 ms) decides: ceil(1e-3 / 3e-5)
    assert (events.method, events.clock, events.iterations) == ("cuda-events", "cuda events", 34)
    assert events.sync_overhead_s == 0.0 and events.call_estimate_s == pytest.approx(3e-5)
    assert set(gpu.streams) == {"stream-of-cuda:1"}  # every event on the measured device's current stream
    host = gpu.timer().plan(gpu.work, rounds=2, warmup_rounds=1, device_only=False)
    assert (host.method, host.clock, host.iterations) == ("synchronize+perf_counter", "time.perf_counter", 667)
    assert host.sync_overhead_s == pytest.approx(2e-4)
    assert (host.device, host.sync, host.rotate_inputs, host.l2_flush) == ("cuda:1", "fake sync(cuda:1)", 1, False)


def test_measure_uses_the_clock_it_planned_with() -> None:
    gpu = _Device()
    m = gpu.timer().measure(gpu.work, rounds=2)
    assert m.plan.method == "cuda-events" and m.plan.iterations == 34
    assert m.times_s == pytest.approx((3e-5, 3e-5))
    host = gpu.timer().measure(gpu.work, rounds=2, device_only=False, iterations=10)
    # the host clock pays one sync per round: (10 calls + 2e-4) / 10
    assert host.plan.method == "synchronize+perf_counter"
    assert host.times_s == pytest.approx((3e-5 + 2e-5, 3e-5 + 2e-5))


def test_measure_defaults_to_seven_rounds_after_one_warmup() -> None:
    gpu = _Device()
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        gpu.work()

    m = gpu.timer("perf_counter").measure(work, iterations=2)
    assert (m.plan.rounds, m.plan.warmup_rounds, len(m.times_s)) == (7, 1, 7)
    assert len(calls) == 1 + 7 * 2


def test_an_l2_flush_runs_before_every_call_outside_the_timed_region() -> None:
    gpu = _Device()
    m = gpu.timer("perf_counter").measure(gpu.work, [(), ()], rounds=3, l2_flush_buffer=gpu, iterations=5)
    assert m.plan.l2_flush is True and m.plan.iterations == 1  # one call per round, whatever was asked
    assert m.plan.rotate_inputs == 2
    assert gpu.flushes == 3
    assert m.times_s == pytest.approx((3e-5 + 2e-4,) * 3)  # the flush's second is not in any round
    plan = gpu.timer("perf_counter").plan(gpu.work, rounds=1, warmup_rounds=1, l2_flush=True)
    assert plan.iterations == 1 and plan.call_estimate_s == pytest.approx(3e-5)


def test_zero_fixed_iterations_mean_one() -> None:
    gpu = _Device()
    assert gpu.timer("perf_counter").plan(gpu.work, rounds=1, warmup_rounds=0, iterations=0).iterations == 1


def test_a_free_call_doubles_until_the_cap_without_dividing_by_zero() -> None:
    t = _Time()
    n, per_call, overhead = _timer(t, None, max_iterations=16).calibrate(t.work(0.0), "perf_counter")
    assert (n, per_call, overhead) == (16, 1e-9, 0.0)
    assert t.calls == 1 + 2 + 4 + 8 + 16


def test_a_call_longer_than_the_round_is_one_iteration() -> None:
    t = _Time()
    n, per_call, _ = _timer(t, None, min_round_s=1e-3).calibrate(t.work(2e-3), "perf_counter")
    assert (n, per_call, t.calls) == (1, 2e-3, 1)


def test_calibration_with_events_ignores_the_host_clock() -> None:
    gpu = _Device()
    timer = gpu.timer("cuda-events")
    assert timer.sync_overhead("cuda-events") == 0.0
    assert timer.calibrate(gpu.work, "cuda-events") == (34, pytest.approx(3e-5), 0.0)


def test_two_input_sets_alternate() -> None:
    seen: list[int] = []
    DeviceTimer("cpu").measure(seen.append, [(1,), (2,)], rounds=1, iterations=4, warmup_rounds=1)
    assert seen == [1, 2, 1, 2, 1]
    with pytest.raises(TimingError, match=r"^inputs must hold at least one argument tuple \(use \(\(\),\) for"):
        DeviceTimer("cpu").measure(seen.append, [], rounds=1)


def test_median_seconds_of_a_fixture_that_timed_nothing() -> None:
    from types import SimpleNamespace

    assert timing.median_seconds(object()) is None
    assert timing.median_seconds(SimpleNamespace(stats=None)) is None
    timed = SimpleNamespace(stats=SimpleNamespace(stats=SimpleNamespace(median=2.5e-3)))
    assert timing.median_seconds(timed) == 2.5e-3


def test_clock_labels() -> None:
    gpu = _Device()
    timer = gpu.timer("perf_counter")
    host_clock = timer.round_clock("perf_counter")
    assert isinstance(host_clock, SyncClock) and host_clock.sync_label == "fake sync(cuda:1)"
    assert host_clock.__name__ == "gpubench.synchronize+perf_counter[fake sync(cuda:1)]"
    event_clock = timer.round_clock("cuda-events")
    assert event_clock.sync_label == "fake sync(cuda:1)"
    assert event_clock.__name__ == "gpubench.cuda-events[fake sync(cuda:1)]"
    assert DeviceTimer("cuda:1", synchronize=gpu.sync).sync_label == "torch.cuda.synchronize(cuda:1)"
    with pytest.raises(TimingError, match=r"unknown clock 'x'; use one of auto, perf_counter, cuda-events$"):
        DeviceTimer("cpu", clock="x")


def test_llc_units_one_at_a_time(tmp_path: Path) -> None:
    def llc(*sizes: str) -> int:
        for i, size in enumerate(sizes):
            (tmp_path / f"index{i}").mkdir(exist_ok=True)
            (tmp_path / f"index{i}" / "size").write_text(size)
        return timing.cpu_llc_bytes(tmp_path)

    assert llc("48K") == 48 << 10
    assert llc("512") == 512  # no unit: bytes
    assert llc("512", "12X") == 512  # an unknown unit is not a size
    (tmp_path / "index1" / "size").unlink()
    (tmp_path / "index1" / "size").mkdir()  # unreadable, sorted first: the ones after it still count
    (tmp_path / "index2").mkdir()
    (tmp_path / "index2" / "size").write_text("2M")
    assert timing.cpu_llc_bytes(tmp_path) == 2 << 20


def test_rotation_for_a_one_byte_cache() -> None:
    assert timing.rotation_count(1, 1) == 2


def test_fixed_iterations_with_events_take_the_device_time_of_the_warmup() -> None:
    gpu = _Device()
    plan = gpu.timer("cuda-events").plan(gpu.work, rounds=1, warmup_rounds=1, iterations=5)
    assert plan.sync_overhead_s == 0.0 and plan.call_estimate_s == pytest.approx(3e-5)  # not the host's sync


def test_a_size_with_an_unknown_unit_is_no_size(tmp_path: Path) -> None:
    (tmp_path / "index0").mkdir()
    (tmp_path / "index0" / "size").write_text("12X")
    assert timing.cpu_llc_bytes(tmp_path) == 0
