"""Check ``contention``: other processes on the GPU, and its compute, persistence and MIG modes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from gpubench import nvml
from gpubench.verify.context import DecidedNow, DeviceContext
from gpubench.verify.probing import as_bool, as_int, as_text, device_handle, na_to_none
from gpubench.verify.verdicts import CheckResult, CheckSpec, Findings, Verdict, gib, readings_dict

COMPUTE_MODES = {0: "default", 1: "exclusive_thread", 2: "prohibited", 3: "exclusive_process"}


@dataclass(frozen=True)
class ProcessInfo:
    """A process with a context on the GPU (``nvidia-smi
    --query-compute-apps=pid,process_name,used_memory``).
    """

    pid: int
    name: str | None
    used_memory: int | None  # bytes; None on Windows WDDM or without permission


@dataclass(frozen=True)
class ContentionReading:
    """Other processes on the device and its modes. ``processes`` excludes this process."""

    device: str
    processes: tuple[ProcessInfo, ...] | None
    compute_mode: int | None = None  # nvidia-smi compute_mode
    persistence: bool | None = None  # nvidia-smi persistence_mode
    mig_current: bool | None = None  # nvidia-smi mig.mode.current
    mig_pending: bool | None = None


def _process_name(pid: int) -> str | None:
    name = as_text(nvml.call("nvmlSystemGetProcessName", pid))
    if name:
        return os.path.basename(name)
    try:
        import psutil

        return str(psutil.Process(pid).name())
    except Exception:  # gone, another container's pid namespace, no permission
        return None


def read_contention(device: str, uuid: str | None, own_pid: int | None = None) -> ContentionReading:
    """Other compute processes on the GPU (this one excluded) and its compute, persistence and MIG modes."""
    own_pid = os.getpid() if own_pid is None else own_pid
    handle = device_handle(uuid)
    if not nvml.available(handle):
        return ContentionReading(device=device, processes=None)
    raw = na_to_none(nvml.call("nvmlDeviceGetComputeRunningProcesses", handle))
    procs: tuple[ProcessInfo, ...] | None = None
    if raw is not None:
        procs = tuple(
            ProcessInfo(pid=int(p.pid), name=_process_name(int(p.pid)), used_memory=as_int(p.usedGpuMemory))
            for p in raw
            if int(p.pid) != own_pid
        )
    mig = na_to_none(nvml.call("nvmlDeviceGetMigMode", handle))
    return ContentionReading(
        device=device,
        processes=procs,
        compute_mode=as_int(nvml.call("nvmlDeviceGetComputeMode", handle)),
        persistence=as_bool(nvml.call("nvmlDeviceGetPersistenceMode", handle)),
        mig_current=as_bool(mig[0]) if mig is not None else None,
        mig_pending=as_bool(mig[1]) if mig is not None else None,
    )


def decide_contention(r: ContentionReading) -> CheckResult:
    """WARN when other processes share the GPU or MIG is on; FAIL when the compute mode prohibits compute."""
    f = Findings()
    procs = r.processes
    value = "N/A" if procs is None else len(procs)
    kw: dict[str, Any] = {
        "value": value,
        "threshold": 0,
        "unit": "other processes",
        "readings": readings_dict(r),
    }
    if procs:
        who = ", ".join(f"pid {p.pid} ({p.name or '?'}, {gib(p.used_memory)})" for p in procs[:5])
        more = f" and {len(procs) - 5} more" if len(procs) > 5 else ""
        f.add(
            Verdict.WARN,
            f"{len(procs)} other process(es) on {r.device}: {who}{more}",
            "stop them or pick another GPU; measurements now share the GPU with them.",
        )
    elif procs is None:
        f.note("process list N/A")
    mode = COMPUTE_MODES.get(r.compute_mode, str(r.compute_mode)) if r.compute_mode is not None else None
    if r.compute_mode == 2:
        f.add(
            Verdict.FAIL,
            "compute mode is prohibited: no process may use this GPU",
            "nvidia-smi -c DEFAULT -i <index> (as root).",
        )
    elif r.compute_mode in (1, 3) and procs:
        f.add(
            Verdict.WARN,
            f"compute mode {mode} with another process on the GPU: this one may be refused",
            "wait for the other process or use nvidia-smi -c DEFAULT.",
        )
    if r.mig_current:
        f.add(
            Verdict.WARN,
            "MIG mode is on: whole-GPU measurements do not apply to a MIG slice",
            "disable MIG (nvidia-smi -mig 0) for whole-GPU verification, or verify the MIG instance.",
        )
    if r.mig_pending is not None and r.mig_current is not None and r.mig_pending != r.mig_current:
        f.note("MIG mode change pending a GPU reset")
    if r.persistence is False:
        f.note("persistence mode off (first CUDA call of each process is slower; nvidia-smi -pm 1)")
    ok = (
        f"no other processes; compute mode {mode or 'N/A'}, persistence "
        f"{'on' if r.persistence else 'off' if r.persistence is False else 'N/A'}, MIG "
        f"{'on' if r.mig_current else 'off' if r.mig_current is False else 'N/A'}"
    )
    return f.result("contention", r.device, ok, **kw)


def verify(ctx: DeviceContext) -> CheckResult:
    return decide_contention(read_contention(ctx.device, ctx.uuid))


CHECK = DecidedNow(
    CheckSpec("contention", "other processes, compute/persistence/MIG mode", cpu=False), verify
)
