"""Does gpubench's DeviceTimer agree with torch.utils.benchmark (and triton.testing.do_bench on GPUs)?

For each operation and device, prints the median per-call time from each timer and the difference
from torch.utils.benchmark.Timer.blocked_autorange, and exits 1 when any differs by more than
--tolerance (5% by default).

    python scripts/compare_timers.py                 # cpu, and cuda:0 when present
    python scripts/compare_timers.py --devices cuda:1
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.utils.benchmark as tub

from gpubench.timing import DeviceTimer


def operations(device: str) -> dict[str, tuple[Callable[[], Any], dict[str, Any]]]:
    """The operations compared: an elementwise add of 2^22 floats and a 512 x 512 matmul (outputs preallocated)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(1 << 22, generator=gen).to(device)
    b = torch.randn(1 << 22, generator=gen).to(device)
    out = torch.empty_like(a)
    m = torch.randn(512, 512, generator=gen).to(device)
    n = torch.randn(512, 512, generator=gen).to(device)
    mo = torch.empty(512, 512, device=device)
    return {
        "add 2^22 f32": (lambda: torch.add(a, b, out=out), {"a": a, "b": b, "out": out}),
        "matmul 512 f32": (lambda: torch.matmul(m, n, out=mo), {"m": m, "n": n, "mo": mo}),
    }


def interleaved_medians(stmt: str, env: dict[str, Any], device: str, fn: Callable[[], Any],
                        args: argparse.Namespace) -> tuple[float, float]:
    """``(torch Timer, DeviceTimer)``: medians of ``repeats`` estimates each, taken in turns so that a
    change in machine load hits both timers alike. Each estimate is itself a median (over blocks, rounds)."""
    # torch Timer runs with one thread unless told: measure with the threads the DeviceTimer sees.
    timer = tub.Timer(stmt=stmt, globals={"torch": torch, **env}, num_threads=torch.get_num_threads())
    ref, ours = [], []
    for _ in range(args.repeats):
        ref.append(timer.blocked_autorange(min_run_time=args.min_run_time).median)
        ours.append(DeviceTimer(device).measure(fn, rounds=args.rounds, warmup_rounds=2).median_s)
    return statistics.median(ref), statistics.median(ours)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default=None, help="comma-separated devices (default: cpu and cuda:0 if present)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="largest accepted relative difference")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="torch Timer seconds per estimate")
    parser.add_argument("--repeats", type=int, default=5, help="estimates per timer (their median is compared)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--rounds", type=int, default=15, help="DeviceTimer rounds per estimate")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda:0"] if torch.cuda.is_available() else [])
    try:
        from triton.testing import do_bench
    except Exception:  # no triton, or no GPU driver for it
        do_bench = None
    stmts = {"add 2^22 f32": "torch.add(a, b, out=out)", "matmul 512 f32": "torch.matmul(m, n, out=mo)"}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; tolerance {args.tolerance:.0%}")
    print(f"{'device':<8} {'operation':<16} {'timer':<34} {'median':>12} {'vs torch Timer':>15}")
    worst = 0.0
    for device in devices:
        with torch.cuda.device(device) if device.startswith("cuda") else _null():
            for name, (fn, env) in operations(device).items():
                reference, ours = interleaved_medians(stmts[name], env, device, fn, args)
                rows = [("torch.utils.benchmark.Timer", reference)]
                rows.append((f"gpubench DeviceTimer ({DeviceTimer(device).method_name(DeviceTimer(device).clock_for())})",
                             ours))
                if do_bench is not None and device.startswith("cuda"):
                    rows.append(("triton.testing.do_bench", statistics.median(
                        do_bench(fn, return_mode="median") / 1e3 for _ in range(args.repeats))))
                for timer_name, median in rows:
                    diff = (median - reference) / reference
                    if timer_name != rows[0][0]:
                        worst = max(worst, abs(diff))
                    print(f"{device:<8} {name:<16} {timer_name:<34} {median * 1e6:>10.1f}us {diff:>+14.1%}")
    verdict = "agree" if worst <= args.tolerance else "DISAGREE"
    print(f"largest difference {worst:.1%}: timers {verdict} within {args.tolerance:.0%}")
    return 0 if worst <= args.tolerance else 1


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
