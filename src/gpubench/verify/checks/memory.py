"""Check ``memory_health``: ECC, retired pages, row remapping and the recovery action NVML asks for.

The rules follow NVIDIA's DCGM health checks and the A100/H100 memory error management guide: a pending
page retirement or row remap, a remap failure, an uncorrectable error, or a recovery action other than
"none" all mean the GPU needs attention. The state is read before the device's active tests and again after
them, so errors the tests provoke are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from gpubench import nvml
from gpubench.verify.context import DecidedAfterDevice, Decision, DeviceContext
from gpubench.verify.probing import LOST_REMEDY, as_bool, as_int, gpu_lost, handle_or_error, na_to_none
from gpubench.verify.verdicts import CheckResult, CheckSpec, Findings, Verdict, readings_dict

# NVML constants (nvml.h); spelled out so that importing a check does not import pynvml.
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_FI_DEV_GET_GPU_RECOVERY_ACTION = 230

RECOVERY_ACTIONS = {
    0: "none",
    1: "GPU reset",
    2: "node reboot",
    3: "drain peer-to-peer",
    4: "drain peer-to-peer and reset",
    5: "recover IMEX domain",
    6: "PCIe bus reset",
    7: "system reboot",
}


@dataclass(frozen=True)
class MemoryHealth:
    """NVML's memory error state (None: not supported on this GPU, e.g. consumer GPUs without ECC).

    nvidia-smi fields: ``ecc.mode.current``, ``ecc.errors.uncorrected.volatile.total``,
    ``retired_pages.pending``,
    ``remapped_rows.correctable/uncorrectable/pending/failure``.
    """

    ecc_current: bool | None = None
    ecc_pending: bool | None = None
    volatile_uncorrected: int | None = None  # since the driver loaded
    retired_pages_pending: bool | None = None  # pre-Ampere page retirement
    remapped_correctable: int | None = None  # Ampere+ row remapping
    remapped_uncorrectable: int | None = None
    remap_pending: bool | None = None
    remap_failure: bool | None = None
    recovery_action: int | None = None  # NVML_FI_DEV_GET_GPU_RECOVERY_ACTION
    nvml_error: str | None = None  # why NVML could not be asked about this GPU at all

    def all_na(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self) if f.name != "nvml_error")


# --- reading --------------------------------------------------------------------------------------


def _recovery_action(handle: Any) -> int | None:
    values = na_to_none(nvml.call("nvmlDeviceGetFieldValues", handle, [NVML_FI_DEV_GET_GPU_RECOVERY_ACTION]))
    if values is None:
        return None
    try:
        entry = values[0]
        if int(entry.nvmlReturn) != 0:
            return None
        return int(entry.value.uiVal)
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def read_memory_health(uuid: str | None) -> MemoryHealth:
    """ECC mode and errors, page retirement and row remapping, and the recovery action. N/A fields are
    None.
    """
    handle, error = handle_or_error(uuid)
    if not nvml.available(handle):
        return MemoryHealth(nvml_error=error)
    handle = nvml.whole_gpu(handle)  # memory errors are the GPU's, also for a MIG instance
    ecc = na_to_none(nvml.call("nvmlDeviceGetEccMode", handle))
    remap = na_to_none(nvml.call("nvmlDeviceGetRemappedRows", handle))
    corr = unc = pending = failure = None
    if remap is not None and len(remap) == 4:
        corr, unc, pending, failure = (int(remap[0]), int(remap[1]), bool(remap[2]), bool(remap[3]))
    return MemoryHealth(
        ecc_current=as_bool(ecc[0]) if ecc is not None else None,
        ecc_pending=as_bool(ecc[1]) if ecc is not None else None,
        volatile_uncorrected=as_int(
            nvml.call(
                "nvmlDeviceGetTotalEccErrors", handle, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC
            )
        ),
        retired_pages_pending=as_bool(nvml.call("nvmlDeviceGetRetiredPagesPendingStatus", handle)),
        remapped_correctable=corr,
        remapped_uncorrectable=unc,
        remap_pending=pending,
        remap_failure=failure,
        recovery_action=_recovery_action(handle),
    )


# --- decision -------------------------------------------------------------------------------------


def decide_memory_health(
    r: MemoryHealth, device: str, remap_uncorrectable_limit: int = 512, baseline: MemoryHealth | None = None
) -> CheckResult:
    """DCGM's rules: a pending retirement/remap FAILs, a remap failure FAILs, uncorrectable remaps at
    ``remap_uncorrectable_limit`` or more FAIL, any volatile uncorrected ECC error (and any increase
    during this
    run, measured against ``baseline``) FAILs, and a recovery action other than "none" FAILs.
    """
    kw: dict[str, Any] = {
        "readings": readings_dict({"now": r, "baseline": baseline}),
        "threshold": f"pending 0, failure no, uncorrectable remaps < {remap_uncorrectable_limit}, "
        "uncorrected ECC 0",
    }
    if r.all_na() and gpu_lost(r.nvml_error):
        return CheckResult(
            "memory_health",
            device,
            Verdict.FAIL,
            message=f"NVML lost the GPU: {r.nvml_error}",
            remedy=LOST_REMEDY,
            **kw,
        )
    if r.all_na() and r.nvml_error:
        return CheckResult(
            "memory_health",
            device,
            Verdict.SKIP,
            message=f"NVML cannot read this GPU's memory error state: {r.nvml_error}",
            **kw,
        )
    if r.all_na():
        return CheckResult(
            "memory_health",
            device,
            Verdict.SKIP,
            message="this GPU reports no ECC, retired-page or row-remap state (consumer GPUs do not): "
            "memory errors are not visible to the driver; the memtest check covers what it can",
            **kw,
        )
    f = Findings()
    _error_findings(f, r, remap_uncorrectable_limit, baseline)
    _ecc_mode_findings(f, r)
    missing = [fl.name for fl in fields(r) if getattr(r, fl.name) is None and fl.name != "nvml_error"]
    if missing:
        f.note("N/A: " + ", ".join(missing))
    value = (
        f"ECC {'on' if r.ecc_current else 'off' if r.ecc_current is False else 'N/A'}, uncorrected "
        f"{r.volatile_uncorrected if r.volatile_uncorrected is not None else 'N/A'}, remaps unc "
        f"{r.remapped_uncorrectable if r.remapped_uncorrectable is not None else 'N/A'}"
    )
    return f.result(
        "memory_health", device, "no pending retirements or remaps, no uncorrected errors", value=value, **kw
    )


def _error_findings(f: Findings, r: MemoryHealth, remap_limit: int, baseline: MemoryHealth | None) -> None:
    """Pending retirements and remaps, remap failures, uncorrectable errors, the recovery action: FAILs."""
    reset = "drain the GPU and reset it (nvidia-smi -r -i <index>) or reboot; if it persists, RMA the GPU."
    if r.retired_pages_pending:
        f.add(Verdict.FAIL, "page retirement pending (takes effect at the next GPU reset)", reset)
    if r.remap_pending:
        f.add(Verdict.FAIL, "row remapping pending (takes effect at the next GPU reset)", reset)
    if r.remap_failure:
        f.add(
            Verdict.FAIL,
            "row remapping failed: a memory bank ran out of spare rows",
            "take the GPU out of service and RMA it.",
        )
    if r.remapped_uncorrectable is not None and r.remapped_uncorrectable >= remap_limit:
        f.add(
            Verdict.FAIL,
            f"{r.remapped_uncorrectable} rows remapped for uncorrectable errors (limit {remap_limit})",
            "take the GPU out of service and RMA it.",
        )
    if r.volatile_uncorrected is not None and r.volatile_uncorrected > 0:
        grew = ""
        if baseline is not None and baseline.volatile_uncorrected is not None:
            delta = r.volatile_uncorrected - baseline.volatile_uncorrected
            grew = f", {delta} during this run" if delta > 0 else ", none during this run"
        f.add(
            Verdict.FAIL,
            f"{r.volatile_uncorrected} uncorrected ECC error(s) since the driver loaded{grew}",
            reset,
        )
    if r.recovery_action not in (None, 0):
        action = RECOVERY_ACTIONS.get(int(r.recovery_action), f"action {r.recovery_action}")
        f.add(
            Verdict.FAIL,
            f"NVML asks for a recovery action: {action}",
            f"perform the {action} (see NVIDIA's GPU memory error management guide).",
        )


def _ecc_mode_findings(f: Findings, r: MemoryHealth) -> None:
    """ECC off, or an ECC mode change waiting for a reset: WARNs."""
    if r.ecc_current is False:
        f.add(
            Verdict.WARN,
            "ECC is disabled: memory errors go undetected",
            "enable ECC: nvidia-smi -e 1 -i <index>, then reset the GPU.",
        )
    if r.ecc_pending is not None and r.ecc_current is not None and r.ecc_pending != r.ecc_current:
        f.add(
            Verdict.WARN,
            f"ECC mode change pending ({'on' if r.ecc_pending else 'off'} after the next reset)",
            "reset the GPU or reboot to apply the pending ECC mode.",
        )


def start(ctx: DeviceContext) -> Decision:
    """Read the baseline now; the decision reads again once the device's active tests are done."""
    baseline = read_memory_health(ctx.uuid)
    limit = ctx.config.verify.remap_uncorrectable_limit

    def decide() -> CheckResult:
        return decide_memory_health(read_memory_health(ctx.uuid), ctx.device, limit, baseline)

    return decide


CHECK = DecidedAfterDevice(
    CheckSpec("memory_health", "ECC, retired pages, row remapping, recovery action", cpu=False), start
)
