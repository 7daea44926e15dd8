"""What the telemetry sampler costs: the same case with the sampler off and on, at several intervals.

Each case runs in short blocks, sampler off and on interleaved (off/on, then on/off, ...) so that drift
of the machine hits both alike. Reported per interval, in ``extra_info["overhead"]``:

- ``slowdown_min_pct``: fastest "on" block vs fastest "off" block (noise only ever adds time, so the
  minima are the least noisy estimate);
- ``slowdown_median_pct``: median of the paired on/off ratios;
- ``sampler_cpu_pct``: the sampling thread's own CPU time while the case ran, as a share of one core
  (an upper bound of what it can take from the case, whatever the machine's noise);
- ``noise_pct``: the same statistics for off/off pairs, the resolution of this measurement.

The default ``telemetry.interval_ms`` (:data:`gpubench.telemetry.DEFAULT_INTERVAL_MS`) was chosen from
these figures. ``GPUBENCH_OVERHEAD_PAIRS`` (default 15) sets the pairs per interval.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest

from gpubench.telemetry import DEFAULT_INTERVAL_MS, Sampler
from gpubench.workloads import targets

INTERVALS_MS = (10, 50, 100, 250, 500)
PAIRS = int(os.environ.get("GPUBENCH_OVERHEAD_PAIRS", "15"))
BLOCK_S = 0.15
MAX_SAMPLER_CPU_PCT = 1.0
SOURCE = "PRODUCT.md: the sampler's own cost is kept under 1% of benchmark time"


def _matmul_case() -> Callable[[int], None]:
    """A 512x512 float32 matmul loop: torch's threads use every core, as in a CPU benchmark."""
    import torch

    a, b = torch.randn(512, 512), torch.randn(512, 512)
    out = torch.empty(512, 512)

    def run(n: int) -> None:
        for _ in range(n):
            torch.mm(a, b, out=out)

    return run


def _python_case() -> Callable[[int], None]:
    """A pure-Python loop: holds the GIL, the worst case for a Python sampling thread."""

    def run(n: int) -> None:
        total = 0
        for i in range(n * 10_000):
            total += i

    return run


CASES = {"matmul_512": _matmul_case, "python_loop": _python_case}


def _block(run: Callable[[int], None], n: int, interval_ms: int | None) -> tuple[float, float | None]:
    """Wall seconds of one block; the sampler (if any) starts before and stops after the timed part."""
    sampler = Sampler("cpu", None, interval_ms / 1000.0).start() if interval_ms else None
    t0 = time.perf_counter()
    run(n)
    elapsed = time.perf_counter() - t0
    if sampler is None:
        return elapsed, None
    sampler.stop()
    return elapsed, sampler.summary().get("sampler_cpu_pct")


def _compare(run: Callable[[int], None], n: int, interval_ms: int | None, pairs: int = PAIRS) -> dict[str, Any]:
    """Interleaved off/on blocks (``None``: off/off, the noise floor)."""
    off: list[float] = []
    on: list[float] = []
    cpu: list[float] = []
    for k in range(pairs):
        if interval_ms is None:
            off.append(_block(run, n, None)[0])
            on.append(_block(run, n, None)[0])
            continue
        if k % 2:
            on_s, share = _block(run, n, interval_ms)
            off_s, _ = _block(run, n, None)
        else:
            off_s, _ = _block(run, n, None)
            on_s, share = _block(run, n, interval_ms)
        off.append(off_s)
        on.append(on_s)
        if share is not None:
            cpu.append(share)
    ratios = [b / a for a, b in zip(off, on, strict=False)]
    return {
        "slowdown_min_pct": 100.0 * (min(on) / min(off) - 1.0),
        "slowdown_median_pct": 100.0 * (statistics.median(ratios) - 1.0),
        "sampler_cpu_pct": statistics.median(cpu) if cpu else None,
        "block_s_min_off": min(off),
        "pairs": pairs,
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_sampler_overhead(benchmark: Any, case: str) -> None:
    run = CASES[case]()
    run(3)  # warm up
    t0 = time.perf_counter()
    run(10)
    n = max(1, round(BLOCK_S / ((time.perf_counter() - t0) / 10)))

    # Under --benchmark-disable (the test suite's smoke run) one pair per interval checks that the
    # measurement runs end to end; the 1% figure is only judged in a real benchmark run.
    pairs = 1 if benchmark.disabled else PAIRS
    noise = _compare(run, n, None, pairs)
    results = {str(ms): _compare(run, n, ms, pairs) for ms in INTERVALS_MS}
    benchmark.extra_info.update(
        {
            "workload": f"telemetry_overhead/{case}",
            "device": "cpu",
            "block_calls": n,
            "cpu_count": os.cpu_count(),
            "noise_pct": noise,
            "overhead": results,
            "default_interval_ms": DEFAULT_INTERVAL_MS,
        }
    )
    lines = [f"{case}: block {noise['block_s_min_off'] * 1000:.0f} ms, {pairs} pairs, {os.cpu_count()} CPUs"]
    lines.append(
        f"  off/off     min {noise['slowdown_min_pct']:+6.2f}%  median {noise['slowdown_median_pct']:+6.2f}%"
    )
    for ms, r in results.items():
        lines.append(
            f"  {ms:>4} ms     min {r['slowdown_min_pct']:+6.2f}%  median {r['slowdown_median_pct']:+6.2f}%  "
            f"sampler CPU {r['sampler_cpu_pct']:.2f}% of a core"
        )
    print("\n".join(lines))

    # the timed figure pytest-benchmark keeps: the case with the sampler on at the default interval
    sampler = Sampler("cpu", None, DEFAULT_INTERVAL_MS / 1000.0).start()
    try:
        benchmark.pedantic(run, args=(n,), rounds=5, iterations=1)
    finally:
        sampler.stop()

    default = results[str(DEFAULT_INTERVAL_MS)]
    # What the sampler can take from the case at most: its own CPU time. This is what the 1% is held to (a
    # verdict, not an assertion); wall-clock slowdowns are recorded above with their noise floor, which on a
    # shared 2-core machine can exceed 1% by itself. Under --benchmark-disable one pair is too few to judge.
    assert default["sampler_cpu_pct"] is not None, "the sampler did not report its own CPU time"
    targets.judge(benchmark, f"sampler CPU at {DEFAULT_INTERVAL_MS} ms", MAX_SAMPLER_CPU_PCT,
                  None if benchmark.disabled else default["sampler_cpu_pct"], "% of a core", SOURCE,
                  comparison="<=")
