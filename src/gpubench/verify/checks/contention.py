"""Check ``contention``: other processes on the GPU, and its compute, persistence and MIG modes.

Which of NVML's compute processes is this one. The driver reports PIDs as the host sees them; inside a
container (its own PID namespace) ``os.getpid()`` is another number, and the same number may be another
process there. So an entry is this process when, in this order:

1. its PID is one of this process's PIDs: ``os.getpid()`` or one in the ``NSpid`` line of
   ``/proc/self/status`` (covers a nested namespace whose parent this /proc shows);
2. no entry carries one of those PIDs while this process holds a CUDA context on the device (the CUDA
   runtime says so: then one entry must be ours, so NVML's PIDs are from another namespace): the entry is
   this process when it is the only one. With several, one of them is this process and which one cannot
   be told: they are reported with one fewer counted as "other" (``self_among``).

Without a context on the device this process has no entry, and every entry is another process. Neither
the process name nor the used memory is used: inside a container host PIDs usually have no name there (and
psutil is not asked, its answer would be about a local process), and a context's memory differs by driver
and GPU. A MIG instance lists the processes in that instance.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpubench import nvml
from gpubench.devices import cuda_runtime, parse_device
from gpubench.verify.context import DecidedNow, DeviceContext
from gpubench.verify.probing import (
    LOST_REMEDY,
    as_bool,
    as_int,
    as_text,
    gpu_lost,
    handle_or_error,
    na_to_none,
)
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
    """Other processes on the device and its modes. ``processes`` excludes this process when it is known
    which entry is this process; ``self_among`` says that one of ``processes`` is this process, unknown which
    (see the module). ``own_entry`` says how this process's entry was recognised, if it was."""

    device: str
    processes: tuple[ProcessInfo, ...] | None
    compute_mode: int | None = None  # nvidia-smi compute_mode
    persistence: bool | None = None  # nvidia-smi persistence_mode
    mig_current: bool | None = None  # nvidia-smi mig.mode.current
    mig_pending: bool | None = None
    mig_instance: bool = False  # the device is a MIG instance (its GPU's MIG mode is then expected on)
    own_entry: str | None = None
    self_among: bool = False
    nvml_error: str | None = None  # why NVML could not be asked about this GPU at all


def own_pids(status: Path = Path("/proc/self/status")) -> frozenset[int]:
    """This process's PIDs: ``os.getpid()`` and the ``NSpid`` line of ``status`` (its PID in each PID
    namespace that this /proc shows, outermost first)."""
    pids = {os.getpid()}
    with contextlib.suppress(OSError, ValueError):
        for line in status.read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("NSpid:"):
                pids.update(int(p) for p in line.split()[1:])
    return frozenset(pids)


def _process_name(pid: int, local: bool) -> str | None:
    """NVML's name for ``pid``, else (``local``: NVML's PIDs are in this PID namespace) psutil's."""
    name = as_text(nvml.call("nvmlSystemGetProcessName", pid))
    if name:
        return os.path.basename(name)
    if not local:  # the same number may be another process here
        return None
    try:
        import psutil

        return str(psutil.Process(pid).name())
    except Exception:  # gone, another container's pid namespace, no permission
        return None


def _holds_context(device: str) -> bool:
    """Whether this process holds a CUDA context on ``device`` (asked through the CUDA runtime seam)."""
    spec = parse_device(device)
    if not spec.is_cuda:
        return False
    try:
        return bool(cuda_runtime().has_primary_context(spec.index or 0))
    except Exception:  # no driver, an index torch does not know: no context of ours there
        return False


@dataclass(frozen=True)
class _OwnEntry:
    """How NVML's process list splits into this process and the others (the rule in the module docstring)."""

    others: list[tuple[int, int | None]]  # (pid, used bytes)
    how: str | None = None  # how this process's entry was recognised
    self_among: bool = False  # one of ``others`` is this process, unknown which
    host_pids: bool = False  # NVML's PIDs are not this namespace's: no local name lookups


def _split_own(entries: list[tuple[int, int | None]], own: frozenset[int], holds_context: bool) -> _OwnEntry:
    others = [e for e in entries if e[0] not in own]
    if len(others) < len(entries):
        return _OwnEntry(others, f"pid {next(e[0] for e in entries if e[0] in own)}")
    if not holds_context or not others:
        return _OwnEntry(others)
    if len(others) == 1:
        how = f"pid {others[0][0]}: the only entry while this process holds a context here (a host PID)"
        return _OwnEntry([], how, host_pids=True)
    return _OwnEntry(others, self_among=True, host_pids=True)


def read_contention(
    device: str, uuid: str | None, own_pid: int | None = None, holds_context: bool | None = None
) -> ContentionReading:
    """Other compute processes on the GPU (this one excluded) and its compute, persistence and MIG modes.

    ``own_pid`` replaces :func:`own_pids` and ``holds_context`` the CUDA runtime's answer (for tests).
    """
    own = frozenset({own_pid}) if own_pid is not None else own_pids()
    handle, error = handle_or_error(uuid)
    if not nvml.available(handle):
        return ContentionReading(device=device, processes=None, nvml_error=error)
    whole = nvml.whole_gpu(handle)  # modes are the GPU's; processes the instance's for a MIG device
    raw = na_to_none(nvml.call("nvmlDeviceGetComputeRunningProcesses", handle))
    procs: tuple[ProcessInfo, ...] | None = None
    split = _OwnEntry([])
    if raw is not None:
        context = _holds_context(device) if holds_context is None else holds_context
        split = _split_own([(int(p.pid), as_int(p.usedGpuMemory)) for p in raw], own, context)
        procs = tuple(
            ProcessInfo(pid, _process_name(pid, not split.host_pids), used) for pid, used in split.others
        )
    mig = na_to_none(nvml.call("nvmlDeviceGetMigMode", whole))
    return ContentionReading(
        device=device,
        processes=procs,
        compute_mode=as_int(nvml.call("nvmlDeviceGetComputeMode", whole)),
        persistence=as_bool(nvml.call("nvmlDeviceGetPersistenceMode", whole)),
        mig_current=as_bool(mig[0]) if mig is not None else None,
        mig_pending=as_bool(mig[1]) if mig is not None else None,
        mig_instance=whole is not handle,
        own_entry=split.how,
        self_among=split.self_among,
    )


def decide_contention(r: ContentionReading) -> CheckResult:
    """WARN when other processes share the GPU or MIG is on; FAIL when the compute mode prohibits compute."""
    f = Findings()
    procs = r.processes
    if r.nvml_error is not None and procs is None:
        lost = gpu_lost(r.nvml_error)
        return CheckResult(
            "contention",
            r.device,
            Verdict.FAIL if lost else Verdict.SKIP,
            value="N/A",
            message=f"{'NVML lost the GPU' if lost else 'NVML cannot list its processes or modes'}: {r.nvml_error}",
            remedy=LOST_REMEDY if lost else "",
            readings=readings_dict(r),
        )
    others = 0 if procs is None else len(procs) - (1 if r.self_among else 0)
    value = "N/A" if procs is None else others
    kw: dict[str, Any] = {
        "value": value,
        "threshold": 0,
        "unit": "other processes",
        "readings": readings_dict(r),
    }
    if procs and others:
        who = ", ".join(f"pid {p.pid} ({p.name or '?'}, {gib(p.used_memory)})" for p in procs[:5])
        more = f" and {len(procs) - 5} more" if len(procs) > 5 else ""
        among = (
            " (one of these is this process: NVML reports host PIDs and this process runs in a container)"
            if r.self_among
            else ""
        )
        f.add(
            Verdict.WARN,
            f"{others} other process(es) on {r.device}: {who}{more}{among}",
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
    elif r.compute_mode in (1, 3) and others:
        f.add(
            Verdict.WARN,
            f"compute mode {mode} with another process on the GPU: this one may be refused",
            "wait for the other process or use nvidia-smi -c DEFAULT.",
        )
    if r.mig_current and r.mig_instance:
        f.note("a MIG instance (the GPU's MIG mode is on)")
    elif r.mig_current:
        f.add(
            Verdict.WARN,
            "MIG mode is on: whole-GPU measurements do not apply to a MIG slice",
            "disable MIG (nvidia-smi -mig 0) for whole-GPU verification, or verify the MIG instance.",
        )
    if r.mig_pending is not None and r.mig_current is not None and r.mig_pending != r.mig_current:
        f.note("MIG mode change pending a GPU reset")
    if r.own_entry and "host PID" in r.own_entry:
        f.note(f"this process is {r.own_entry}")
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
