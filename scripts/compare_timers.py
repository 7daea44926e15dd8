"""Does gpubench's DeviceTimer agree with torch.utils.benchmark and triton.testing.do_bench?

For each operation and device, prints the median per-call time from each timer and its difference from
the timer it is compared with like for like, and exits 1 when any differs by more than --tolerance (2% by
default; with --verdict-only it says so and exits 0):

- gpubench DeviceTimer (warm inputs) against torch.utils.benchmark.Timer.blocked_autorange (warm inputs);
- on CUDA devices, triton.testing.do_bench (``return_mode="median"``; it zeroes a 256 MB buffer before
  every call, so it times with a cold L2 cache) against DeviceTimer with its L2 flush before every call.

A timer that cannot be imported, or does not apply to the device (do_bench times CUDA kernels only), is
skipped with the reason. ``--json PATH`` writes every row, reason and the verdict.

    python scripts/compare_timers.py                 # cpu, and cuda:0 when present
    python scripts/compare_timers.py --devices cuda:1 --json timers.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from gpubench.timing import DeviceTimer, l2_flush_buffer

SCHEMA = "gpubench.timers/1"
TORCH_TIMER = "torch.utils.benchmark.Timer"
DEVICE_TIMER = "gpubench DeviceTimer"
DEVICE_TIMER_FLUSHED = "gpubench DeviceTimer, L2 flushed"
DO_BENCH = "triton.testing.do_bench"


@dataclass(frozen=True)
class Operation:
    """One timed call: ``fn`` for DeviceTimer and do_bench, ``stmt`` over ``env`` for torch's Timer."""

    name: str
    fn: Callable[[], Any]
    stmt: str
    env: dict[str, Any]


@dataclass(frozen=True)
class Row:
    """One timer's median for one operation; ``diff_pct`` is against ``reference`` (None for a reference)."""

    device: str
    operation: str
    timer: str
    method: str
    median_s: float
    reference: str | None = None
    diff_pct: float | None = None


@dataclass(frozen=True)
class Skipped:
    device: str
    operation: str | None
    timer: str
    reason: str


def _size_name(n: int) -> str:
    return f"2^{n.bit_length() - 1}" if n > 0 and n & (n - 1) == 0 else str(n)


def operations(device: str, add_numel: int = 1 << 22, matmul_n: int = 512) -> list[Operation]:
    """An elementwise add of ``add_numel`` floats and an ``matmul_n`` square matmul (outputs preallocated)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(add_numel, generator=gen).to(device)
    b = torch.randn(add_numel, generator=gen).to(device)
    out = torch.empty_like(a)
    m = torch.randn(matmul_n, matmul_n, generator=gen).to(device)
    n = torch.randn(matmul_n, matmul_n, generator=gen).to(device)
    mo = torch.empty(matmul_n, matmul_n, device=device)
    return [
        Operation(f"add {_size_name(add_numel)} f32", lambda: torch.add(a, b, out=out), "torch.add(a, b, out=out)",
                  {"a": a, "b": b, "out": out}),
        Operation(f"matmul {matmul_n} f32", lambda: torch.matmul(m, n, out=mo), "torch.matmul(m, n, out=mo)",
                  {"m": m, "n": n, "mo": mo}),
    ]


def _import_torch_timer() -> tuple[Any, str | None]:
    try:
        import torch.utils.benchmark as tub
    except Exception as exc:  # a stripped-down torch build
        return None, f"torch.utils.benchmark is not importable: {type(exc).__name__}: {exc}"
    return tub.Timer, None


def _import_do_bench() -> tuple[Any, str | None]:
    try:
        from triton.testing import do_bench
    except Exception as exc:  # no triton, or a triton without a usable driver
        return None, f"triton.testing.do_bench is not importable: {type(exc).__name__}: {exc}"
    return do_bench, None


def measure(op: Operation, device: str, args: argparse.Namespace, torch_timer: Any, do_bench: Any,
            flush: Any = None) -> tuple[dict[str, tuple[float, str]], str | None]:
    """``({timer: (median seconds, method)}, why do_bench failed or None)``: medians of ``repeats``
    estimates each, taken in turns so that a change in machine load hits every timer alike. Each estimate
    is itself a median (over blocks, rounds). ``do_bench`` runs only with ``flush``, the L2 flush buffer of
    the like-for-like DeviceTimer."""
    samples: dict[str, list[float]] = {}
    methods: dict[str, str] = {}
    timer = DeviceTimer(device)
    methods[DEVICE_TIMER] = timer.method_name(timer.clock_for())
    ref = None
    if torch_timer is not None:
        # torch's Timer runs with one thread unless told: measure with the threads the DeviceTimer sees. On
        # CUDA its clock synchronizes the device before each reading.
        ref = torch_timer(stmt=op.stmt, globals={"torch": torch, **op.env}, num_threads=torch.get_num_threads())
        methods[TORCH_TIMER] = f"blocked_autorange(min_run_time={args.min_run_time})"
    if do_bench is None:
        flush = None
    if flush is not None:
        methods[DEVICE_TIMER_FLUSHED] = f"{methods[DEVICE_TIMER]}, L2 zeroed before each call"
        methods[DO_BENCH] = f"median, warmup={args.do_bench_warmup_ms} ms, rep={args.do_bench_rep_ms} ms"
    do_bench_error = None
    for _ in range(args.repeats):
        if ref is not None:
            samples.setdefault(TORCH_TIMER, []).append(ref.blocked_autorange(min_run_time=args.min_run_time).median)
        samples.setdefault(DEVICE_TIMER, []).append(
            timer.measure(op.fn, rounds=args.rounds, warmup_rounds=2).median_s)
        if flush is not None:
            samples.setdefault(DEVICE_TIMER_FLUSHED, []).append(
                timer.measure(op.fn, rounds=args.rounds, warmup_rounds=2, l2_flush_buffer=flush).median_s)
        if flush is not None and do_bench_error is None:
            try:
                ms = do_bench(op.fn, warmup=args.do_bench_warmup_ms, rep=args.do_bench_rep_ms,
                              return_mode="median")
            except Exception as exc:  # triton builds a small C helper on first use: no compiler, no do_bench
                do_bench_error = f"triton.testing.do_bench failed: {type(exc).__name__}: {exc}"
                samples.pop(DO_BENCH, None)
            else:
                samples.setdefault(DO_BENCH, []).append(float(ms) / 1e3)
    return {name: (statistics.median(values), methods[name]) for name, values in samples.items()}, do_bench_error


#: timer -> the timer it is compared with like for like (same cache state, same statistic).
REFERENCE = {DEVICE_TIMER: TORCH_TIMER, DO_BENCH: DEVICE_TIMER_FLUSHED}


def rows_for(device: str, op: str, medians: dict[str, tuple[float, str]]) -> list[Row]:
    rows = []
    for name in (TORCH_TIMER, DEVICE_TIMER, DEVICE_TIMER_FLUSHED, DO_BENCH):
        if name not in medians:
            continue
        median, method = medians[name]
        reference = REFERENCE.get(name)
        diff = None
        if reference in medians:
            diff = 100.0 * (median - medians[reference][0]) / medians[reference][0]
        rows.append(Row(device, op, name, method, median, reference if diff is not None else None, diff))
    return rows


@contextlib.contextmanager
def _on(device: str) -> Iterator[None]:
    if device.startswith("cuda"):
        with torch.cuda.device(device):
            yield
    else:
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default=None, help="comma-separated devices (default: cpu and cuda:0 if present)")
    parser.add_argument("--tolerance", type=float, default=0.02, help="largest accepted relative difference (issue 12: 2%%)")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="torch Timer seconds per estimate")
    parser.add_argument("--repeats", type=int, default=5, help="estimates per timer (their median is compared)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--rounds", type=int, default=15, help="DeviceTimer rounds per estimate")
    parser.add_argument("--add-numel", type=int, default=1 << 22, help="floats in the elementwise add (2^22)")
    parser.add_argument("--matmul-n", type=int, default=512, help="n of the n x n matmul (512)")
    parser.add_argument("--do-bench-warmup-ms", type=float, default=25, help="do_bench warmup, ms (triton's 25)")
    parser.add_argument("--do-bench-rep-ms", type=float, default=100, help="do_bench repetition time, ms (triton's 100)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--verdict-only",
        action="store_true",
        help="print and record the verdict but exit 0 when the timers disagree (a shared CPU: the proof "
        "checks the plumbing there, and a loaded machine must not fail it)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda:0"] if torch.cuda.is_available() else [])
    torch_timer, torch_timer_reason = _import_torch_timer()
    do_bench, do_bench_reason = _import_do_bench()
    skipped: list[Skipped] = []
    if torch_timer_reason:
        skipped.append(Skipped("*", None, TORCH_TIMER, torch_timer_reason))
    if do_bench_reason:
        skipped.append(Skipped("*", None, DO_BENCH, do_bench_reason))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; tolerance {args.tolerance:.0%}")
    for s in skipped:
        print(f"skipped {s.timer}: {s.reason}")
    print(f"{'device':<8} {'operation':<16} {'timer':<34} {'median':>12} {'difference':>11}  compared with")
    rows: list[Row] = []
    for device in devices:
        flush = None
        if do_bench is not None and not device.startswith("cuda"):
            skipped.append(Skipped(device, None, DO_BENCH, f"do_bench times CUDA kernels only; {device} is not CUDA"))
        elif do_bench is not None:
            try:
                flush = l2_flush_buffer(device)
            except Exception as exc:  # L2 size unknown: no like-for-like DeviceTimer for do_bench
                skipped.append(Skipped(device, None, DO_BENCH, f"no L2 flush buffer on {device}: {exc}"))
        with _on(device):
            for op in operations(device, args.add_numel, args.matmul_n):
                medians, do_bench_error = measure(op, device, args, torch_timer, do_bench, flush)
                if do_bench_error:
                    skipped.append(Skipped(device, op.name, DO_BENCH, do_bench_error))
                    print(f"skipped {DO_BENCH} for {op.name} on {device}: {do_bench_error}")
                for row in rows_for(device, op.name, medians):
                    rows.append(row)
                    diff = f"{row.diff_pct:+10.1f}%" if row.diff_pct is not None else f"{'-':>11}"
                    print(f"{device:<8} {op.name:<16} {row.timer:<34} {row.median_s * 1e6:>10.1f}us {diff}  "
                          f"{row.reference or '(reference)'}")
    diffs = [abs(r.diff_pct) for r in rows if r.diff_pct is not None]
    worst = max(diffs, default=0.0) / 100.0
    agree = worst <= args.tolerance
    verdict = "agree" if agree else "DISAGREE"
    compared = f"{len(diffs)} comparison(s)" if diffs else "nothing to compare"
    print(f"largest difference {worst:.1%} over {compared}: timers {verdict} within {args.tolerance:.0%}")
    if args.json is not None:
        document = {
            "schema": SCHEMA,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "tolerance": args.tolerance,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "rows": [asdict(r) for r in rows],
            "skipped": [asdict(s) for s in skipped],
            "comparisons": len(diffs),
            "worst_diff_pct": 100.0 * worst,
            "agree": agree,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0 if agree or args.verdict_only else 1


if __name__ == "__main__":
    sys.exit(main())
