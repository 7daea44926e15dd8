"""Check ``perf_floor``: matmul TFLOP/s and memory bandwidth against same-model siblings and this GPU's
history.

Every device is measured in its own pass; the decision waits until all are measured, because a device is
held against the others. History is the earlier runs under ``results/verify/`` (or ``verify.history_dir``).
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpubench.devices import torch_dtype_name
from gpubench.verify.context import DecidedAcrossDevices, Decision, DeviceContext
from gpubench.verify.probing import error_text, fp32_precision, time_calls, torch_device, torch_module
from gpubench.verify.verdicts import CheckResult, CheckSpec, Findings, Verdict, readings_dict


@dataclass(frozen=True)
class PerfReading:
    """A matmul and a device-memory copy measured on one device. TFLOP/s; GB/s counts bytes read plus
    written.
    """

    device: str
    uuid: str | None
    name: str
    dtype: str
    n: int  # n x n matmul
    copy_bytes: int
    matmul_tflops: float | None
    bandwidth_gbps: float | None
    level: str = "quick"
    run_id: str | None = None  # set for history entries
    error: str | None = None


def comparable(a: PerfReading, b: PerfReading) -> bool:
    """Same model, dtype, matrix size and copy size: numbers that can be held against each other."""
    return a.name == b.name and a.dtype == b.dtype and a.n == b.n and a.copy_bytes == b.copy_bytes


# --- measuring ------------------------------------------------------------------------------------


def measure_perf(
    device: str,
    uuid: str | None,
    name: str,
    dtype: str,
    n: int,
    copy_bytes: int,
    repeats: int,
    level: str = "quick",
) -> PerfReading:
    """Best-of-``repeats`` n x n matmul TFLOP/s and device-memory copy GB/s (read + written) on ``device``.

    The best call is kept: a healthy device reaches it every run, a degraded one (clocks, contention)
    does not.
    """
    torch = torch_module()
    dev = torch_device(device)
    tdtype = getattr(torch, torch_dtype_name(dtype))
    try:
        with fp32_precision("highest"):
            a = torch.randn(n, n, device=dev).to(tdtype)
            b = torch.randn(n, n, device=dev).to(tdtype)
            c = torch.empty(n, n, device=dev, dtype=tdtype)
            mm = time_calls(dev, lambda: torch.matmul(a, b, out=c), repeats)
        words = max(1, copy_bytes // 4)
        src = torch.ones(words, device=dev, dtype=torch.float32)
        dst = torch.empty_like(src)
        cp = time_calls(dev, lambda: dst.copy_(src), repeats)
    except (RuntimeError, MemoryError) as exc:
        return PerfReading(device, uuid, name, dtype, n, copy_bytes, None, None, level, error=error_text(exc))
    return PerfReading(
        device=device,
        uuid=uuid,
        name=name,
        dtype=dtype,
        n=n,
        copy_bytes=copy_bytes,
        matmul_tflops=round(2 * n**3 / min(mm) / 1e12, 6),
        bandwidth_gbps=round(2 * words * 4 / min(cp) / 1e9, 3),
        level=level,
    )


def load_history(directory: Path, uuid: str | None, limit: int = 10) -> list[PerfReading]:
    """This GPU's stored perf_floor measurements from ``directory/*.json`` (oldest first, the last ``limit``).

    Runs whose perf_floor FAILed are left out, so a slow run does not lower the floor. Unreadable files are
    skipped: history is advisory.
    """
    from gpubench.results import load_json

    if uuid is None or not directory.is_dir():
        return []
    found: list[PerfReading] = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = load_json(path)
        except ValueError:
            continue
        for entry in data.get("checks", []) or []:
            if not isinstance(entry, dict) or entry.get("check") != "perf_floor" or entry.get("uuid") != uuid:
                continue
            if entry.get("verdict") == "FAIL":
                continue
            measured = (entry.get("readings") or {}).get("measured")
            if not isinstance(measured, dict):
                continue
            try:
                reading = PerfReading(**{**measured, "run_id": data.get("run_id")})
            except TypeError:
                continue
            if reading.matmul_tflops:
                found.append(reading)
    return found[-limit:]


# --- decision -------------------------------------------------------------------------------------


def decide_perf_floor(
    r: PerfReading,
    siblings: Sequence[PerfReading] = (),
    history: Sequence[PerfReading] = (),
    floor_pct: float = 10.0,
) -> CheckResult:
    """FAIL when matmul TFLOP/s or bandwidth is more than ``floor_pct`` % below the median of same-model
    siblings in this run, or below the median of this GPU's stored history. With nothing to compare:
    PASS with a note.

    On ``cpu`` a shortfall is a WARN: nothing verifies that the host's cores were free (no contention check
    exists for them), so a busy host must not read as a broken one.
    """
    cpu = r.device == "cpu"
    shown = None if r.matmul_tflops is None else round(r.matmul_tflops * (1e3 if cpu else 1.0), 4)
    kw: dict[str, Any] = {
        "value": shown,
        "unit": "GFLOP/s" if cpu else "TFLOP/s",
        "readings": readings_dict({"measured": r, "siblings": list(siblings), "history": list(history)}),
    }
    if r.error or r.matmul_tflops is None:
        return CheckResult(
            "perf_floor",
            r.device,
            Verdict.SKIP,
            message=f"performance could not be measured: {r.error or 'no result'}",
            **kw,
        )
    f = Findings()
    keep = 1.0 - floor_pct / 100.0
    sib = [s for s in siblings if comparable(r, s) and s.uuid != r.uuid and s.matmul_tflops]
    hist = [h for h in history if comparable(r, h) and h.uuid == r.uuid and h.matmul_tflops]
    floors: list[str] = []
    for label, group in (
        ("same-model siblings in this run", sib),
        (f"this GPU's last {len(hist)} run(s)", hist),
    ):
        if not group:
            continue
        for metric, unit in (("matmul_tflops", "TFLOP/s"), ("bandwidth_gbps", "GB/s")):
            values = [getattr(g, metric) for g in group if getattr(g, metric) is not None]
            mine = getattr(r, metric)
            if not values or mine is None:
                continue
            ref = statistics.median(values)
            floors.append(f"{metric} >= {keep * ref:.4g} {unit}")
            if mine < keep * ref:
                f.add(
                    Verdict.WARN if cpu else Verdict.FAIL,
                    f"{metric.split('_')[0]} {mine:.4g} {unit} is {100 * (1 - mine / ref):.0f}% below "
                    "the median "
                    f"{ref:.4g} {unit} of {label} (floor {floor_pct:g}%)",
                    "check under_load and contention (clocks, power cap, other processes); rerun; a "
                    "GPU that stays "
                    "slow against its siblings needs service.",
                )
    if not sib and not hist:
        f.note("no same-model sibling or stored history to compare with yet (this run becomes the history)")
    bw = f", memory {r.bandwidth_gbps:.4g} GB/s" if r.bandwidth_gbps is not None else ""
    ok = f"matmul {r.dtype} n={r.n}: {r.matmul_tflops:.4g} TFLOP/s{bw}"
    return f.result("perf_floor", r.device, ok, threshold="; ".join(floors) or None, **kw)


# --- the check ------------------------------------------------------------------------------------


def measure(ctx: DeviceContext) -> PerfReading:
    """This device's figures; a failed measurement is the reading's error, decided with the siblings later."""
    device, uuid, plan, dtype = ctx.device, ctx.uuid, ctx.plan, ctx.config.dl.dtype
    name = str(ctx.identity.get("name") or device)
    try:
        return measure_perf(
            device, uuid, name, dtype, plan.perf_n, plan.copy_bytes, plan.perf_repeats, plan.level
        )
    except Exception as exc:  # recorded as the reading's error; decided with the siblings later
        return PerfReading(
            device,
            uuid,
            name,
            dtype,
            plan.perf_n,
            plan.copy_bytes,
            None,
            None,
            plan.level,
            error=f"{type(exc).__name__}: {exc}",
        )


def decide_all(measured: Mapping[str, tuple[DeviceContext, PerfReading]]) -> Iterator[tuple[str, Decision]]:
    """Each device against the others measured in this run and against its own stored history."""
    for device, (ctx, reading) in measured.items():
        v = ctx.config.verify
        history = load_history(ctx.history_dir, reading.uuid, limit=v.history_runs)
        siblings = [p for d, (_c, p) in measured.items() if d != device]
        yield device, functools.partial(decide_perf_floor, reading, siblings, history, v.perf_floor_pct)


CHECK = DecidedAcrossDevices(
    CheckSpec("perf_floor", "matmul and memory bandwidth against siblings and history", cpu=True),
    measure,
    decide_all,
)
