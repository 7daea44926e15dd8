"""Check ``inventory``: how many GPUs PyTorch and NVML see, and whether the configured one is usable."""

from __future__ import annotations

from dataclasses import dataclass

from gpubench.devices import CudaProbe, DeviceSpec, Unusable
from gpubench.verify.context import DecidedNow, DeviceContext
from gpubench.verify.verdicts import CheckResult, CheckSpec, Findings, Verdict, readings_dict


@dataclass(frozen=True)
class Inventory:
    """How many GPUs PyTorch and NVML see, and whether the configured one is usable."""

    device: str
    torch_count: int
    nvml_count: int | None  # nvidia-smi -L | wc -l (ignores CUDA_VISIBLE_DEVICES)
    cuda_visible_devices: str | None
    unusable_code: str | None = None  # devices.Unusable.code
    unusable_reason: str | None = None
    unusable_remedy: str | None = None
    nvml_error: str | None = None


def read_inventory(spec: DeviceSpec, probe: CudaProbe, unusable: Unusable | None) -> Inventory:
    """Counts from PyTorch and NVML, CUDA_VISIBLE_DEVICES, and why ``spec`` is unusable (if it is)."""
    return Inventory(
        device=spec.name,
        torch_count=probe.device_count,
        nvml_count=probe.nvml_device_count,
        cuda_visible_devices=probe.cuda_visible_devices,
        unusable_code=unusable.code if unusable else None,
        unusable_reason=unusable.reason if unusable else None,
        unusable_remedy=unusable.remedy if unusable else None,
        nvml_error=probe.nvml_error,
    )


def decide_inventory(r: Inventory) -> CheckResult:
    """FAIL with the exact reason when the configured device is unusable; WARN when NVML sees GPUs CUDA
    does not.
    """
    f = Findings()
    cvd = "unset" if r.cuda_visible_devices is None else repr(r.cuda_visible_devices)
    value = f"torch {r.torch_count}, NVML {r.nvml_count if r.nvml_count is not None else 'N/A'}, CVD {cvd}"
    if r.unusable_reason:
        f.add(Verdict.FAIL, f"{r.device} unusable: {r.unusable_reason}", r.unusable_remedy or "")
    elif r.nvml_count is not None and r.cuda_visible_devices is None and r.nvml_count > r.torch_count:
        f.add(
            Verdict.WARN,
            f"NVML sees {r.nvml_count} GPU(s) but PyTorch only {r.torch_count} with "
            "CUDA_VISIBLE_DEVICES unset: "
            "a GPU may be in a bad state or hidden",
            "compare `nvidia-smi -L` with `gpubench info`; check `dmesg` for Xid errors on the missing GPU.",
        )
    if r.nvml_count is None and not r.unusable_reason:
        f.note(f"NVML count N/A ({r.nvml_error or 'not readable'})")
    return f.result(
        "inventory",
        r.device,
        f"{r.device} present",
        value=value,
        threshold=f"{r.device} exists",
        readings=readings_dict(r),
    )


def verify(ctx: DeviceContext) -> CheckResult:
    return decide_inventory(read_inventory(ctx.spec, ctx.probe, ctx.unusable))


CHECK = DecidedNow(
    CheckSpec("inventory", "device counts and the configured index", cpu=False, needs_usable_device=False),
    verify,
)
