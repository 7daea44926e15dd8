"""Device-aware timing for pytest-benchmark: the clock waits for the device that is measured.

pytest-benchmark reads its clock before and after a round of calls. GPU work is asynchronous, so
without a synchronization that clock measures kernel *launches*; and ``torch.cuda.synchronize()``
without an argument waits only for the *current* device, so timing ``cuda:1`` that way is wrong too.
A :class:`DeviceTimer` fixes both:

- its round clock synchronizes the measured device (``torch.cuda.synchronize(cuda:N)``) before it
  reads the time, at the start and at the end of every round (:class:`SyncClock`); or it records CUDA
  events on the device's current stream and reads the time between them (:class:`EventClock`), which
  has no host-side jitter and is the better clock for device-only work;
- it warms the operation up, then calibrates the iterations per round so the clock's own cost (an
  empty round: one synchronization and clock read at each end) is under ``max_sync_fraction``
  (1% by default) of a round;
- it can rotate inputs through copies larger than the L2 cache, or flush L2 before every call, so
  memory-bound cases measure memory, not cache;
- it writes how it measured (:class:`TimingPlan`) into ``benchmark.extra_info["timing"]``.

All durations are seconds. ``torch`` is imported lazily so that this module is cheap to import.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CLOCKS = ("auto", "perf_counter", "cuda-events")
CACHE_POLICIES = ("warm", "rotate", "flush")

SyncFn = Callable[[], None]


class TimingError(RuntimeError):
    """A timing request that cannot be honoured (for example CUDA events on ``cpu``)."""


@dataclass(frozen=True)
class TimingPlan:
    """How one benchmark was measured; stored as ``extra_info["timing"]`` with every result.

    ``sync_overhead_s`` is the median cost of an empty round with this clock (synchronize + read at
    both ends); ``sync_fraction`` is that cost over the calibrated round time.
    """

    method: str  # "perf_counter" (cpu), "synchronize+perf_counter", "cuda-events"
    clock: str  # "time.perf_counter" or "cuda events"
    sync: str  # "torch.cuda.synchronize(cuda:1)" or "none (cpu)"
    device: str
    iterations: int
    rounds: int
    warmup_rounds: int
    l2_flush: bool
    rotate_inputs: int  # input sets cycled through (1: the same inputs every call)
    sync_overhead_s: float
    call_estimate_s: float
    sync_fraction: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Measurement:
    """Per-call times (seconds) of a standalone measurement (no pytest), with its plan."""

    times_s: tuple[float, ...]
    plan: TimingPlan

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def iqr_s(self) -> float:
        """Interquartile range by pytest-benchmark's own ``Stats`` (its quartile method), so a standalone
        measurement and a saved benchmark round never disagree about the same rounds."""
        from pytest_benchmark.stats import Stats

        stats = Stats()
        for t in self.times_s:
            stats.update(t)
        return float(stats.iqr)


class SyncClock:
    """The round clock for the host clock: synchronize the measured device, then read the time.

    On ``cpu`` there is nothing to synchronize (CPU work is done when the call returns).
    """

    def __init__(self, sync: SyncFn | None, sync_label: str, read: Callable[[], float] = time.perf_counter):
        self._sync = sync
        self._read = read
        self.sync_label = sync_label
        # pytest-benchmark stores the timer's __name__ in every saved result ("options.timer").
        self.__name__ = "gpubench.perf_counter" if sync is None else f"gpubench.synchronize+perf_counter[{sync_label}]"

    def __call__(self) -> float:
        if self._sync is not None:
            self._sync()
        return self._read()


class EventClock:
    """The round clock for CUDA events: the first call of a pair starts, the second stops.

    Start: synchronize the measured device, record a start event on its current stream, return 0.0.
    Stop: record the stop event, synchronize the device, return the seconds between the two events.
    pytest-benchmark subtracts start from stop, so a round reads as the device time between events.
    """

    def __init__(self, device: Any, sync: SyncFn, sync_label: str, event_factory: Callable[[], Any] | None = None,
                 stream_of: Callable[[], Any] | None = None):
        import torch

        self._device = device
        self._sync = sync
        self.sync_label = sync_label
        self._new_event = event_factory or (lambda: torch.cuda.Event(enable_timing=True))
        self._stream_of = stream_of or (lambda: torch.cuda.current_stream(device))
        self._start: Any = None
        self.__name__ = f"gpubench.cuda-events[{sync_label}]"

    def __call__(self) -> float:
        if self._start is None:
            self._sync()
            start = self._new_event()
            start.record(self._stream_of())
            self._start = start
            return 0.0
        stop = self._new_event()
        stop.record(self._stream_of())
        self._sync()
        start, self._start = self._start, None
        return float(start.elapsed_time(stop)) / 1e3  # elapsed_time is in milliseconds


def default_sync(device: Any) -> tuple[SyncFn | None, str]:
    """The synchronization for ``device`` and its label: the *measured* device, never the current one."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else 0
        target = torch.device("cuda", index)
        return (lambda: torch.cuda.synchronize(target)), f"torch.cuda.synchronize(cuda:{index})"
    return None, "none (cpu)"


def l2_cache_bytes(device: Any) -> int:
    """L2 cache size of a CUDA device (``L2_cache_size``), or the CPU's last-level cache; 0 if unknown."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return int(getattr(torch.cuda.get_device_properties(dev), "L2_cache_size", 0) or 0)
    return cpu_llc_bytes()


def cpu_llc_bytes(sysfs: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int:
    """The largest cache of CPU 0 from sysfs (``index*/size``, e.g. ``32768K``); 0 when unreadable."""
    best = 0
    for size_file in sorted(sysfs.glob("index*/size")):
        try:
            text = size_file.read_text(encoding="ascii").strip().upper()
        except OSError:
            continue
        factor = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            best = max(best, int(digits) * factor)
    return best


def rotation_count(bytes_per_set: int, cache_bytes: int, limit: int = 64) -> int:
    """Input sets to cycle through so the sets together are at least twice the cache (1: no rotation)."""
    if bytes_per_set <= 0 or cache_bytes <= 0:
        return 1
    return max(1, min(limit, math.ceil(2 * cache_bytes / bytes_per_set)))


class DeviceTimer:
    """Times an operation on one device, standalone (:meth:`measure`) or through pytest-benchmark (:meth:`run`).

    ``clock``: ``auto`` (CUDA events on GPUs for device-only work, the host clock otherwise),
    ``perf_counter`` or ``cuda-events``. ``synchronize`` and ``event_factory`` replace the CUDA calls
    (tests use them to check that the measured device is the one synchronized).
    """

    def __init__(
        self,
        device: Any,
        *,
        clock: str = "auto",
        max_sync_fraction: float = 0.01,
        min_round_s: float = 1e-3,
        max_iterations: int = 1_000_000,
        synchronize: SyncFn | None = None,
        sync_label: str | None = None,
        event_factory: Callable[[], Any] | None = None,
        stream_of: Callable[[], Any] | None = None,
        read: Callable[[], float] = time.perf_counter,
    ):
        import torch

        if clock not in CLOCKS:
            msg = f"unknown clock {clock!r}; use one of {', '.join(CLOCKS)}"
            raise TimingError(msg)
        self.device = torch.device(device)
        self.is_cuda = self.device.type == "cuda"
        if self.is_cuda and self.device.index is None:
            self.device = torch.device("cuda", 0)
        if clock == "cuda-events" and not self.is_cuda:
            msg = f"CUDA events need a CUDA device, not {self.device}; use clock='perf_counter' (or 'auto')"
            raise TimingError(msg)
        sync, label = default_sync(self.device)
        if synchronize is not None:
            sync, label = synchronize, sync_label or label
        self._sync = sync
        self.sync_label = label
        self.requested_clock = clock
        self.max_sync_fraction = max_sync_fraction
        self.min_round_s = min_round_s
        self.max_iterations = max_iterations
        self._event_factory = event_factory
        self._stream_of = stream_of
        self._read = read

    # --- clocks ------------------------------------------------------------------------------------

    def synchronize(self) -> None:
        """Wait for all work queued on the measured device (nothing to do on ``cpu``)."""
        if self._sync is not None:
            self._sync()

    def clock_for(self, device_only: bool = True) -> str:
        """The clock ``auto`` picks: CUDA events for device-only GPU work, the host clock otherwise."""
        if self.requested_clock != "auto":
            return self.requested_clock
        return "cuda-events" if self.is_cuda and device_only else "perf_counter"

    def round_clock(self, clock: str) -> SyncClock | EventClock:
        if clock == "cuda-events":
            assert self._sync is not None
            return EventClock(self.device, self._sync, self.sync_label, self._event_factory, self._stream_of)
        return SyncClock(self._sync, self.sync_label, self._read)

    def method_name(self, clock: str) -> str:
        if clock == "cuda-events":
            return "cuda-events"
        return "synchronize+perf_counter" if self._sync is not None else "perf_counter"

    def sync_overhead(self, clock: str, samples: int = 21) -> float:
        """Median seconds of an empty round with this clock: what a round pays for being measured."""
        timer = self.round_clock(clock)
        costs = []
        for _ in range(samples):
            start = timer()
            costs.append(timer() - start)
        return max(statistics.median(costs), 0.0)

    # --- calibration -------------------------------------------------------------------------------

    def calibrate(self, call: Callable[[], Any], clock: str) -> tuple[int, float, float]:
        """``(iterations, seconds per call, sync overhead)`` so the overhead is < ``max_sync_fraction`` of a round.

        The round also lasts at least ``min_round_s`` (clock resolution). Iterations double from 1
        until a round is long enough, then are scaled to the target.
        """
        overhead = self.sync_overhead(clock)
        target = max(self.min_round_s, overhead / self.max_sync_fraction if self.max_sync_fraction > 0 else 0.0)
        timer = self.round_clock(clock)
        n = 1
        while True:
            start = timer()
            for _ in range(n):
                call()
            elapsed = timer() - start
            per_call = max((elapsed - overhead) / n, 1e-9)
            if elapsed >= target / 4 or n >= self.max_iterations:
                break
            n = min(self.max_iterations, n * 2 if elapsed <= 0 else max(n * 2, math.ceil(n * target / 4 / elapsed)))
        iterations = max(1, min(self.max_iterations, math.ceil(target / per_call)))
        return iterations, per_call, overhead

    # --- running -------------------------------------------------------------------------------------

    def plan(
        self,
        call: Callable[[], Any],
        *,
        rounds: int,
        warmup_rounds: int,
        device_only: bool = True,
        l2_flush: bool = False,
        rotate_inputs: int = 1,
        iterations: int | None = None,
        warmup_call: Callable[[], Any] | None = None,
    ) -> TimingPlan:
        """Warm up and decide the clock and iterations per round.

        ``warmup_call`` (default: ``call``) is what warms up: a long case (a training epoch) can warm up
        on a few steps instead of a whole round; its duration then says nothing about ``call`` and the
        estimate is filled in from the measured rounds.
        """
        clock = self.clock_for(device_only)
        if l2_flush and not self.is_cuda:
            msg = f"an L2 flush before each call needs a CUDA device, not {self.device}; use cache policy 'rotate'"
            raise TimingError(msg)
        timer = self.round_clock(clock)
        warm_s = 0.0
        for _ in range(max(1, warmup_rounds)):
            start = timer()
            (warmup_call or call)()
            warm_s = timer() - start
        if warmup_call is not None:
            warm_s = 0.0  # says nothing about `call`: the estimate comes from the measured rounds
        if iterations is not None or l2_flush:
            # Fixed iterations (long calls such as a training epoch): no calibration runs; the last
            # warmup call is the estimate. With an L2 flush there is one call per round: the flush runs
            # before it, outside the timed region.
            overhead = self.sync_overhead(clock)
            per_call = max(warm_s - overhead, 0.0)
            n = 1 if l2_flush else int(iterations or 1)
        else:
            n, per_call, overhead = self.calibrate(call, clock)
        round_s = per_call * n
        fraction = overhead / round_s if round_s > 1e-9 else 0.0
        return TimingPlan(
            method=self.method_name(clock),
            clock="cuda events" if clock == "cuda-events" else "time.perf_counter",
            sync=self.sync_label,
            device=str(self.device),
            iterations=n,
            rounds=rounds,
            warmup_rounds=warmup_rounds,
            l2_flush=l2_flush,
            rotate_inputs=rotate_inputs,
            sync_overhead_s=overhead,
            call_estimate_s=per_call,
            sync_fraction=fraction,
        )

    def run(
        self,
        benchmark: Any,
        fn: Callable[..., Any],
        inputs: Sequence[tuple[Any, ...]] = ((),),
        *,
        rounds: int = 5,
        warmup_rounds: int = 1,
        device_only: bool = True,
        l2_flush_buffer: Any = None,
        iterations: int | None = None,
        warmup_call: Callable[[], Any] | None = None,
    ) -> Any:
        """Time ``fn(*inputs[i])`` with pytest-benchmark's ``benchmark`` fixture; returns the last result.

        ``inputs`` holds one or more argument tuples; with several, calls cycle through them (input
        rotation). ``l2_flush_buffer`` (a CUDA tensor of about twice the L2 size) is zeroed before every
        call, outside the timed region. The plan goes into ``benchmark.extra_info["timing"]``.
        """
        call = _rotating_call(fn, inputs)
        if getattr(benchmark, "disabled", False):
            # --benchmark-disable: pytest-benchmark runs the target once and times nothing.
            benchmark.extra_info["timing"] = {"method": "disabled (--benchmark-disable)", "device": str(self.device)}
            result = benchmark.pedantic(fn, args=inputs[0], rounds=1, iterations=1)
            self.synchronize()
            return result
        flush = l2_flush_buffer is not None
        plan = self.plan(call, rounds=rounds, warmup_rounds=warmup_rounds, device_only=device_only,
                         l2_flush=flush, rotate_inputs=len(inputs), iterations=iterations, warmup_call=warmup_call)
        benchmark.extra_info["timing"] = timing = plan.as_dict()
        if not hasattr(benchmark, "_timer"):
            msg = ("this pytest-benchmark has no per-fixture timer (BenchmarkFixture._timer); "
                   "gpubench needs pytest-benchmark 4 or 5")
            raise TimingError(msg)
        # The fixture reads this clock at both ends of every round (its runner binds it per round).
        benchmark._timer = self.round_clock(self.clock_for(device_only))
        if flush:
            def setup() -> None:
                l2_flush_buffer.zero_()

            result = benchmark.pedantic(call, setup=setup, rounds=rounds, warmup_rounds=0, iterations=1)
        else:
            result = benchmark.pedantic(call, rounds=rounds, warmup_rounds=0, iterations=plan.iterations)
        median = median_seconds(benchmark)
        if median:
            # What the rounds really cost: the fraction the clock's own overhead took of the median round.
            timing["median_round_s"] = median * plan.iterations
            timing["call_estimate_s"] = median
            timing["sync_fraction"] = plan.sync_overhead_s / (median * plan.iterations)
        return result

    def measure(
        self,
        fn: Callable[..., Any],
        inputs: Sequence[tuple[Any, ...]] = ((),),
        *,
        rounds: int = 7,
        warmup_rounds: int = 1,
        device_only: bool = True,
        l2_flush_buffer: Any = None,
        iterations: int | None = None,
    ) -> Measurement:
        """The same measurement without pytest: per-call seconds of each round (ceilings, scripts, CLI)."""
        call = _rotating_call(fn, inputs)
        flush = l2_flush_buffer is not None
        plan = self.plan(call, rounds=rounds, warmup_rounds=warmup_rounds, device_only=device_only,
                         l2_flush=flush, rotate_inputs=len(inputs), iterations=iterations)
        timer = self.round_clock(self.clock_for(device_only))
        n = 1 if flush else plan.iterations
        times = []
        for _ in range(rounds):
            if flush:
                l2_flush_buffer.zero_()
            start = timer()
            for _ in range(n):
                call()
            times.append((timer() - start) / n)
        return Measurement(tuple(times), plan)


def median_seconds(benchmark: Any) -> float | None:
    """Median seconds per call from a used pytest-benchmark fixture (None when nothing was timed)."""
    stats = getattr(benchmark, "stats", None)
    if not stats:
        return None
    return float(stats.stats.median)


def _rotating_call(fn: Callable[..., Any], inputs: Sequence[tuple[Any, ...]]) -> Callable[[], Any]:
    if not inputs:
        msg = "inputs must hold at least one argument tuple (use ((),) for a call without arguments)"
        raise TimingError(msg)
    if len(inputs) == 1:
        args = inputs[0]
        return lambda: fn(*args)
    cycle = itertools.cycle(inputs)
    return lambda: fn(*next(cycle))


def l2_flush_buffer(device: Any) -> Any:
    """A byte tensor of twice the device's L2 size on ``device``; zeroing it evicts the L2 cache."""
    import torch

    size = l2_cache_bytes(device)
    if size <= 0:
        msg = f"cannot size an L2 flush buffer: the L2 size of {device} is unknown; use cache policy 'rotate'"
        raise TimingError(msg)
    return torch.empty(2 * size, dtype=torch.uint8, device=device)
