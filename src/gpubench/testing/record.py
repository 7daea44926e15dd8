"""Record a machine profile from whatever NVML is present (the reverse of ``nvml_sim``).

Every value the simulator serves is read through the real pynvml for every GPU. A reading the driver
answers with NOT_SUPPORTED becomes ``null``; a C function the driver lacks goes to
``missing_functions``; any other NVML error goes to the GPU's ``errors`` map; nothing stops the
recording. The result is a profile dict in the shipped JSON form with ``"recorded": true``::

    python -m gpubench.testing.record my-node.json          # on the machine to capture
    with simulated_nvml("my-node.json"): ...                # anywhere, later

Recorded profiles carry the machine's real GPU UUIDs and serials unless ``scrub=True``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pynvml

from gpubench.testing.nvml_sim.loader import profile_from_dict
from gpubench.testing.nvml_sim.profile import SERVED_FIELDS, SERVED_GPM_METRICS, ProfileError

_NO_ID = 0xFFFFFFFF
_NOT_AVAILABLE_ULL = 2**64 - 1


_C_SYMBOL = {
    "nvmlDeviceGetPciInfo": "nvmlDeviceGetPciInfo_v3",
    "nvmlDeviceGetComputeRunningProcesses": "nvmlDeviceGetComputeRunningProcesses_v3",
}
"""pynvml names whose C symbol differs; errors and missing functions are recorded by C symbol."""


class _Recorder:
    """Calls pynvml functions and sorts each failure into null / missing function / error."""

    def __init__(self) -> None:
        self.missing: set[str] = set()
        self.errors: dict[str, str] = {}

    def read(self, function: str, *args: Any, symbol: str | None = None) -> Any:
        """``pynvml.<function>(*args)``, or None when NVML cannot give it (noted by kind)."""
        symbol = symbol or _C_SYMBOL.get(function, function)
        try:
            return getattr(pynvml, function)(*args)
        except pynvml.NVMLError_NotSupported:
            return None
        except pynvml.NVMLError_FunctionNotFound:
            self.missing.add(symbol)
            return None
        except pynvml.NVMLError as exc:
            named = type(exc) is not pynvml.NVMLError  # a code this pynvml has no class for: keep the number
            self.errors[symbol] = type(exc).__name__.removeprefix("NVMLError_") if named else str(exc.value)
            return None


def _text(value: Any) -> Any:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _memory(rec: _Recorder, handle: Any, v2_available: bool) -> dict[str, Any] | None:
    if v2_available:
        info = rec.read(
            "nvmlDeviceGetMemoryInfo", handle, pynvml.nvmlMemory_v2, symbol="nvmlDeviceGetMemoryInfo_v2"
        )
        if info is not None:
            return {"total_bytes": info.total, "reserved_bytes": info.reserved, "used_bytes": info.used}
    info = rec.read("nvmlDeviceGetMemoryInfo", handle)
    if info is None:
        return None
    return {"total_bytes": info.total, "reserved_bytes": None, "used_bytes": info.used}


def _clocks(rec: _Recorder, handle: Any, function: str) -> dict[str, Any]:
    kinds = {"graphics": pynvml.NVML_CLOCK_GRAPHICS, "sm": pynvml.NVML_CLOCK_SM}
    kinds |= {"mem": pynvml.NVML_CLOCK_MEM, "video": pynvml.NVML_CLOCK_VIDEO}
    return {key: rec.read(function, handle, kind) for key, kind in kinds.items()}


def _ecc(rec: _Recorder, handle: Any) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for counter, counter_id in (
        ("volatile", pynvml.NVML_VOLATILE_ECC),
        ("aggregate", pynvml.NVML_AGGREGATE_ECC),
    ):
        for kind, kind_id in (
            ("corrected", pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED),
            ("uncorrected", pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
        ):
            out[f"{counter}_{kind}"] = rec.read("nvmlDeviceGetTotalEccErrors", handle, kind_id, counter_id)
    if any(v is None for v in out.values()):
        return None
    return out


def _processes(rec: _Recorder, handle: Any) -> list[dict[str, Any]]:
    raw = rec.read(
        "nvmlDeviceGetComputeRunningProcesses", handle, symbol="nvmlDeviceGetComputeRunningProcesses_v3"
    )
    processes = []
    for p in raw or []:
        pid = int(p.pid)
        used = p.usedGpuMemory
        gi, ci = int(p.gpuInstanceId), int(p.computeInstanceId)
        processes.append(
            {
                "pid": "self" if pid == os.getpid() else pid,
                "name": _text(rec.read("nvmlSystemGetProcessName", pid)) or None,
                "used_memory_bytes": None if used is None or used == _NOT_AVAILABLE_ULL else int(used),
                "gpu_instance_id": None if gi == _NO_ID else gi,
                "compute_instance_id": None if ci == _NO_ID else ci,
            }
        )
    rec.errors.pop("nvmlSystemGetProcessName", None)  # NOT_FOUND for a PID NVML forgot: the name is null
    return processes


_MIG_READS = (
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetGpuInstanceId",
    "nvmlDeviceGetComputeInstanceId",
)


def _mig(rec: _Recorder, handle: Any) -> dict[str, Any] | None:
    mode = rec.read("nvmlDeviceGetMigMode", handle)
    if mode is None:
        return None
    max_devices = rec.read("nvmlDeviceGetMaxMigDeviceCount", handle) or 0
    devices = []
    for index in range(max_devices if mode[0] else 0):
        # a MIG device's errors are not the whole GPU's: read it with a recorder of its own
        part = _Recorder()
        mig = part.read("nvmlDeviceGetMigDeviceHandleByIndex", handle, index)
        if mig is None:  # NOT_FOUND: no compute instance at this index
            continue
        name, uuid, gpu_instance, compute_instance = (part.read(fn, mig) for fn in _MIG_READS)
        memory = _memory(part, mig, "nvmlDeviceGetMemoryInfo_v2" not in rec.missing)
        rec.missing |= part.missing
        if None in (name, uuid, gpu_instance, compute_instance):
            continue
        devices.append(
            {
                "uuid": _text(uuid),
                "profile": str(_text(name)).rsplit(" MIG ", 1)[-1],
                "gpu_instance_id": gpu_instance,
                "compute_instance_id": compute_instance,
                "memory": memory,
            }
        )
    return {
        "current": bool(mode[0]),
        "pending": bool(mode[1]),
        "max_devices": max_devices,
        "devices": devices,
    }


def _fields(rec: _Recorder, handle: Any) -> dict[str, int]:
    ids = [getattr(pynvml, name) for name in SERVED_FIELDS]
    values = rec.read("nvmlDeviceGetFieldValues", handle, ids)
    out: dict[str, int] = {}
    for name, entry in zip(SERVED_FIELDS, values or [], strict=False):
        if int(entry.nvmlReturn) == pynvml.NVML_SUCCESS:
            out[name] = int(entry.value.uiVal if SERVED_FIELDS[name] == "uint" else entry.value.ullVal)
    return out


def _gpu(rec: _Recorder, handle: Any) -> dict[str, Any]:
    def read(function: str, *args: Any) -> Any:
        return rec.read(function, handle, *args)

    pci = read("nvmlDeviceGetPciInfo")
    ecc_mode = read("nvmlDeviceGetEccMode")
    rows = read("nvmlDeviceGetRemappedRows")
    pending = read("nvmlDeviceGetRetiredPagesPendingStatus")
    util = read("nvmlDeviceGetUtilizationRates")
    persistence = read("nvmlDeviceGetPersistenceMode")
    reasons = read("nvmlDeviceGetCurrentClocksEventReasons")
    if reasons is None and "nvmlDeviceGetCurrentClocksEventReasons" in rec.missing:
        reasons = read("nvmlDeviceGetCurrentClocksThrottleReasons")
    thresholds = {
        "shutdown": pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN,
        "slowdown": pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
        "mem_max": pynvml.NVML_TEMPERATURE_THRESHOLD_MEM_MAX,
        "gpu_max": pynvml.NVML_TEMPERATURE_THRESHOLD_GPU_MAX,
    }
    return {
        "name": _text(read("nvmlDeviceGetName")),
        "uuid": _text(read("nvmlDeviceGetUUID")),
        "serial": _text(read("nvmlDeviceGetSerial")),
        "pci": {
            "bus_id": _text(pci.busId),
            "device_id": f"0x{pci.pciDeviceId:08X}",
            "subsystem_id": f"0x{pci.pciSubSystemId:08X}",
        }
        if pci is not None
        else None,
        "memory": _memory(rec, handle, v2_available=True),
        "ecc_mode": {"current": bool(ecc_mode[0]), "pending": bool(ecc_mode[1])}
        if ecc_mode is not None
        else None,
        "ecc_errors": _ecc(rec, handle),
        "remapped_rows": {
            "correctable": rows[0],
            "uncorrectable": rows[1],
            "pending": bool(rows[2]),
            "failure": bool(rows[3]),
        }
        if rows is not None
        else None,
        "retired_pages_pending": bool(pending) if pending is not None else None,
        "clocks_mhz": _clocks(rec, handle, "nvmlDeviceGetClockInfo"),
        "max_clocks_mhz": _clocks(rec, handle, "nvmlDeviceGetMaxClockInfo"),
        "clock_event_reasons": reasons,
        "power": {
            "usage_mw": read("nvmlDeviceGetPowerUsage"),
            "enforced_limit_mw": read("nvmlDeviceGetEnforcedPowerLimit"),
            "management_limit_mw": read("nvmlDeviceGetPowerManagementLimit"),
        },
        "energy_mj": read("nvmlDeviceGetTotalEnergyConsumption"),
        "temperature_c": read("nvmlDeviceGetTemperature", pynvml.NVML_TEMPERATURE_GPU),
        "temperature_thresholds_c": {
            k: read("nvmlDeviceGetTemperatureThreshold", v) for k, v in thresholds.items()
        },
        "pcie": {
            "link_gen": read("nvmlDeviceGetCurrPcieLinkGeneration"),
            "link_width": read("nvmlDeviceGetCurrPcieLinkWidth"),
            "max_link_gen": read("nvmlDeviceGetMaxPcieLinkGeneration"),
            "max_link_width": read("nvmlDeviceGetMaxPcieLinkWidth"),
            "gpu_max_link_gen": read("nvmlDeviceGetGpuMaxPcieLinkGeneration"),
            "replay_counter": read("nvmlDeviceGetPcieReplayCounter"),
            "tx_kb_s": read("nvmlDeviceGetPcieThroughput", pynvml.NVML_PCIE_UTIL_TX_BYTES),
            "rx_kb_s": read("nvmlDeviceGetPcieThroughput", pynvml.NVML_PCIE_UTIL_RX_BYTES),
        },
        "utilization_pct": {"gpu": util.gpu, "memory": util.memory} if util is not None else None,
        "persistence_mode": bool(persistence) if persistence is not None else None,
        "compute_mode": read("nvmlDeviceGetComputeMode"),
        "mig": _mig(rec, handle),
        "processes": _processes(rec, handle),
        "gpm": None,  # filled in by _record_gpm, after every GPU's instantaneous readings
        "fields": _fields(rec, handle),
        "xid_events": [],  # events are transient: nothing to record
        "errors": {},
    }


def _record_gpm(
    recs: Sequence[_Recorder],
    handles: Sequence[Any],
    gpus: list[dict[str, Any]],
    sleep: Callable[[float], None],
    interval_s: float,
) -> None:
    """GPM metrics need two samples apart in time: take the first on every GPU, wait once, then the second."""
    started: list[tuple[int, Any, Any]] = []
    for index, (rec, handle) in enumerate(zip(recs, handles, strict=True)):
        support = rec.read("nvmlGpmQueryDeviceSupport", handle)
        if support is None:
            continue
        gpus[index]["gpm"] = {"supported": bool(support.isSupportedDevice), "metrics": {}}
        if not support.isSupportedDevice:
            continue
        first, second = pynvml.nvmlGpmSampleAlloc(), pynvml.nvmlGpmSampleAlloc()
        if rec.read("nvmlGpmSampleGet", handle, first) is not None:
            started.append((index, first, second))
        else:
            pynvml.nvmlGpmSampleFree(first)
            pynvml.nvmlGpmSampleFree(second)
    if not started:
        return
    sleep(interval_s)
    for index, first, second in started:
        rec, handle = recs[index], handles[index]
        if rec.read("nvmlGpmSampleGet", handle, second) is not None:
            request = pynvml.c_nvmlGpmMetricsGet_t()
            request.version = pynvml.NVML_GPM_METRICS_GET_VERSION
            request.numMetrics = len(SERVED_GPM_METRICS)
            request.sample1, request.sample2 = first, second
            for i, name in enumerate(SERVED_GPM_METRICS):
                request.metrics[i].metricId = getattr(pynvml, name)
            if rec.read("nvmlGpmMetricsGet", request) is not None:
                gpus[index]["gpm"]["metrics"] = {
                    name: float(request.metrics[i].value)
                    for i, name in enumerate(SERVED_GPM_METRICS)
                    if int(request.metrics[i].nvmlReturn) == pynvml.NVML_SUCCESS
                }
        pynvml.nvmlGpmSampleFree(first)
        pynvml.nvmlGpmSampleFree(second)


def _scrub(profile: dict[str, Any]) -> None:
    """Replace identifiers of the physical units by placeholders, numbered per GPU."""
    for n, gpu in enumerate(profile["gpus"]):
        gpu["uuid"] = f"GPU-{n:08x}-0000-0000-0000-{n:012x}"
        if gpu["serial"] is not None:
            gpu["serial"] = f"16500000000{n:02d}"
        for m, device in enumerate((gpu["mig"] or {}).get("devices", [])):
            device["uuid"] = f"MIG-{n:04x}{m:04x}-0000-0000-0000-{m:012x}"


def record_profile(
    *,
    name: str = "recorded",
    description: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    gpm_interval_s: float = 0.2,
    scrub: bool = False,
    validate: bool = True,
) -> dict[str, Any]:
    """Read every served value for every GPU through pynvml and return it as a profile dict.

    ``sleep`` waits between the two GPM samples (pass a simulated clock's ``advance`` under
    ``nvml_sim``). Raises ``pynvml.NVMLError`` only when NVML cannot be initialised at all, and
    (with ``validate``) :class:`ProfileError` when what was read does not load as a profile.
    """
    pynvml.nvmlInit()
    try:
        system = _Recorder()
        cuda = system.read("nvmlSystemGetCudaDriverVersion_v2")
        if cuda is None:
            cuda = system.read("nvmlSystemGetCudaDriverVersion")
        count = pynvml.nvmlDeviceGetCount()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        recs = [_Recorder() for _ in handles]
        gpus = [_gpu(rec, handle) for rec, handle in zip(recs, handles, strict=True)]
        _record_gpm(recs, handles, gpus, sleep, gpm_interval_s)
        driver = _text(system.read("nvmlSystemGetDriverVersion"))
    finally:
        pynvml.nvmlShutdown()
    missing = set(system.missing).union(*(r.missing for r in recs))
    for gpu, rec in zip(gpus, recs, strict=True):
        gpu["errors"] = {fn: err for fn, err in sorted(rec.errors.items()) if fn not in missing}
    models = sorted({g["name"] for g in gpus})
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    profile: dict[str, Any] = {
        "name": name,
        "description": description or f"{count} x {', '.join(models) or 'no GPU'}, driver {driver}",
        "source": [
            f"recorded from NVML on a live machine by gpubench.testing.record_profile at {now.isoformat()}"
        ],
        "recorded": True,
        "recorded_at": now.isoformat(),
        "driver_version": driver,
        "cuda_driver_version": cuda,
        "init_error": None,
        "missing_functions": sorted(missing),
        "self_host_pid": None,
        "cuda_order": None,
        "gpus": gpus,
    }
    if scrub:
        _scrub(profile)
    if validate:
        profile_from_dict(profile, origin=f"recorded profile {name!r}")
    return profile


def write_profile(profile: dict[str, Any], path: str | Path) -> Path:
    """Write a profile dict as the shipped files are written (2-space JSON, trailing newline)."""
    target = Path(path)
    target.write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gpubench.testing.record OUT.json``: record this machine's NVML profile."""
    parser = argparse.ArgumentParser(prog="python -m gpubench.testing.record", description=main.__doc__)
    parser.add_argument("out", type=Path, help="where to write the profile JSON")
    parser.add_argument("--name", default=None, help="profile name (default: the file name)")
    parser.add_argument("--scrub", action="store_true", help="replace GPU UUIDs and serials by placeholders")
    args = parser.parse_args(argv)
    try:
        profile = record_profile(name=args.name or args.out.stem, scrub=args.scrub, validate=False)
    except pynvml.NVMLError as exc:
        print(f"cannot record: NVML did not initialise ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    write_profile(profile, args.out)
    try:
        profile_from_dict(profile, origin=args.out.name)
    except ProfileError as exc:  # keep what was read, but say the simulator cannot replay it as is
        print(f"wrote {args.out}, but it does not load as a profile: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {profile['description']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
