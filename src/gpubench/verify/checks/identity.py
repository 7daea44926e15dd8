"""Check ``identity``: ``cuda:N`` mapped to the physical GPU, PyTorch's view against NVML's (UUID, PCI,
name, memory, numbering).

A MIG instance (``CUDA_VISIBLE_DEVICES=MIG-...``) is mapped to its parent GPU: NVML's index and PCI address
are the parent's, name and memory the instance's, and the row names the GPU and compute instance ids.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from gpubench import nvml
from gpubench.devices import CudaProbe, DeviceSpec, cuda_runtime
from gpubench.verify.context import DecidedNow, DeviceContext
from gpubench.verify.probing import LOST_REMEDY, as_int, as_text, gpu_lost, na_to_none
from gpubench.verify.verdicts import CheckResult, CheckSpec, Findings, Verdict, gib, readings_dict, skipped


@dataclass(frozen=True)
class GpuIdentity:
    """``cuda:N`` as PyTorch sees it, and the NVML device with the same UUID. Memory in bytes.

    PCI addresses are (domain, bus, device) integers; nvidia-smi prints them as ``00000000:65:00.0``.
    """

    device: str
    torch_index: int
    torch_name: str
    torch_total_memory: int
    uuid: str | None  # torch.cuda.get_device_properties(i).uuid in NVML form
    torch_pci: tuple[int, int, int] | None
    nvml_found: bool  # nvmlDeviceGetHandleByUUID succeeded
    nvml_index: int | None = None  # nvidia-smi's index (PCI order)
    nvml_name: str | None = None
    nvml_total_memory: int | None = None  # nvidia-smi --query-gpu=memory.total
    nvml_pci: tuple[int, int, int] | None = None
    nvml_bus_id: str | None = None  # nvidia-smi --query-gpu=pci.bus_id
    cuda_device_order: str | None = None
    cuda_visible_devices: str | None = None
    visible_models: tuple[str, ...] = ()  # names of all GPUs PyTorch sees
    nvml_error: str | None = None
    mig_gpu_instance: int | None = None  # a MIG instance: nvidia-smi's GI ID (None for a whole GPU)
    mig_compute_instance: int | None = None  # ... and its CI ID

    @property
    def is_mig(self) -> bool:
        return self.mig_gpu_instance is not None


def pci_text(pci: tuple[int, int, int] | None) -> str:
    return "N/A" if pci is None else f"{pci[0]:08X}:{pci[1]:02X}:{pci[2]:02X}.0"


# --- reading --------------------------------------------------------------------------------------


def _torch_pci(index: int) -> tuple[int, int, int] | None:
    try:
        props = cuda_runtime().get_device_properties(index)
        fields = ("pci_domain_id", "pci_bus_id", "pci_device_id")
        domain, bus, dev = (int(getattr(props, name)) for name in fields)
        return (domain, bus, dev)
    except Exception:  # older torch without the fields, or no CUDA
        return None


def read_identity(
    spec: DeviceSpec, probe: CudaProbe, torch_pci: tuple[int, int, int] | None = None
) -> GpuIdentity:
    """PyTorch's view of ``cuda:N`` and NVML's device with the same UUID (looked up by UUID, never by
    index).
    """
    index = spec.index or 0
    info = probe.device(index)
    if info is None:
        msg = f"{spec.name} is not in the probe; decide inventory first"
        raise ValueError(msg)
    pci = torch_pci if torch_pci is not None else _torch_pci(index)
    common: dict[str, Any] = {
        "device": spec.name,
        "torch_index": index,
        "torch_name": info.name,
        "torch_total_memory": info.total_memory,
        "uuid": info.uuid,
        "torch_pci": pci,
        "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER"),
        "cuda_visible_devices": probe.cuda_visible_devices,
        "visible_models": tuple(d.name for d in probe.devices),
    }
    error = nvml.init()
    if error is not None or info.uuid is None:
        return GpuIdentity(nvml_found=False, nvml_error=error, **common)
    handle, lookup_error = nvml.call_or_error("nvmlDeviceGetHandleByUUID", nvml.normalise_uuid(info.uuid))
    if not nvml.available(handle):
        return GpuIdentity(nvml_found=False, nvml_error=lookup_error, **common)
    whole = nvml.whole_gpu(handle)  # the parent GPU when the UUID is a MIG instance's
    mig = whole is not handle
    mem = na_to_none(nvml.call("nvmlDeviceGetMemoryInfo", handle))
    pci_info = na_to_none(nvml.call("nvmlDeviceGetPciInfo_v3", whole)) or na_to_none(
        nvml.call("nvmlDeviceGetPciInfo", whole)
    )
    nvml_pci = None
    bus_id = None
    if pci_info is not None:
        try:
            nvml_pci = (int(pci_info.domain), int(pci_info.bus), int(pci_info.device))
        except (AttributeError, TypeError, ValueError):
            nvml_pci = None
        bus_id = as_text(getattr(pci_info, "busId", None))
    return GpuIdentity(
        nvml_found=True,
        nvml_index=as_int(nvml.call("nvmlDeviceGetIndex", whole)),
        nvml_name=as_text(nvml.call("nvmlDeviceGetName", handle)),
        nvml_total_memory=as_int(getattr(mem, "total", None)) if mem is not None else None,
        nvml_pci=nvml_pci,
        nvml_bus_id=bus_id,
        mig_gpu_instance=as_int(nvml.call("nvmlDeviceGetGpuInstanceId", handle)) if mig else None,
        mig_compute_instance=as_int(nvml.call("nvmlDeviceGetComputeInstanceId", handle)) if mig else None,
        **common,
    )


# --- decision -------------------------------------------------------------------------------------


def decide_identity(r: GpuIdentity, memory_tolerance: float = 0.03) -> CheckResult:
    """FAIL when the UUID does not lead to an NVML device at the same PCI address with the same name.

    Total memory differs slightly by design (the driver reserves some), so it WARNs only beyond
    ``memory_tolerance`` (a share). A numbering different from nvidia-smi's WARNs unless CUDA_VISIBLE_DEVICES
    explains it.
    """
    where = f"{r.device} = nvidia-smi GPU {r.nvml_index if r.nvml_index is not None else '?'}"
    if r.is_mig:
        ci = r.mig_compute_instance if r.mig_compute_instance is not None else "?"
        where += f" MIG instance (GI {r.mig_gpu_instance}, CI {ci})"
    value = f"{where}, {r.torch_name}, {r.uuid or 'no UUID'}, PCI {r.nvml_bus_id or pci_text(r.torch_pci)}"
    kw: dict[str, Any] = {
        "value": value,
        "threshold": "UUID, PCI, name, memory agree",
        "readings": readings_dict(r),
    }
    unmapped = _unmapped(r, kw)
    if unmapped is not None:
        return unmapped
    f = Findings()
    _mismatches(f, r, memory_tolerance)
    _numbering(f, r)
    return f.result("identity", r.device, f"{value}; UUID and PCI agree", **kw)


def _unmapped(r: GpuIdentity, kw: dict[str, Any]) -> CheckResult | None:
    """The result when the device cannot be mapped to NVML at all (no UUID, no NVML, unknown UUID)."""
    if r.uuid is None:
        return skipped(
            "identity",
            r.device,
            "PyTorch gives no UUID for this device (PyTorch older than 2.0?): cannot map it to NVML",
            "upgrade PyTorch.",
        )
    if r.nvml_found:
        return None
    if gpu_lost(r.nvml_error):
        return CheckResult(
            "identity",
            r.device,
            Verdict.FAIL,
            message=f"NVML lost {r.device}'s GPU ({r.uuid}): {r.nvml_error}",
            remedy=LOST_REMEDY,
            **kw,
        )
    # only "not found" means the two disagree; NVML missing, NotSupported or NoPermission mean it cannot tell
    if r.nvml_error and "NotFound" not in r.nvml_error:
        return CheckResult(
            "identity",
            r.device,
            Verdict.SKIP,
            message=f"{r.nvml_error}; cannot cross-check {r.device} ({r.torch_name}, {r.uuid})",
            **kw,
        )
    f = Findings()
    f.add(
        Verdict.FAIL,
        f"NVML knows no GPU with {r.device}'s UUID {r.uuid} ({r.nvml_error or 'lookup failed'})",
        "the driver and the CUDA runtime disagree: check `nvidia-smi -L`; a MIG slice or a GPU "
        "fallen off the "
        "bus shows this; reboot or reset the GPU.",
    )
    return f.result("identity", r.device, "", **kw)


def _mismatches(f: Findings, r: GpuIdentity, memory_tolerance: float) -> None:
    """PCI address, name and total memory of the same UUID, as PyTorch and NVML give them."""
    if r.torch_pci is not None and r.nvml_pci is not None and r.torch_pci != r.nvml_pci:
        f.add(
            Verdict.FAIL,
            f"PCI address mismatch: PyTorch {pci_text(r.torch_pci)}, NVML {pci_text(r.nvml_pci)} for "
            "the same UUID",
            "report this driver inconsistency; reset the GPU (nvidia-smi -r) or reboot.",
        )
    if r.nvml_name is not None and r.nvml_name.strip().lower() != r.torch_name.strip().lower():
        f.add(
            Verdict.FAIL,
            f"name mismatch: PyTorch {r.torch_name!r}, NVML {r.nvml_name!r}",
            "check `nvidia-smi -L` against `gpubench info`.",
        )
    if r.nvml_total_memory:
        share = abs(r.nvml_total_memory - r.torch_total_memory) / r.nvml_total_memory
        if share > memory_tolerance:
            f.add(
                Verdict.WARN,
                f"total memory differs by {share:.1%} (PyTorch {gib(r.torch_total_memory)}, NVML "
                f"{gib(r.nvml_total_memory)}; tolerance {memory_tolerance:.0%})",
                "check for MIG or a vGPU profile (nvidia-smi -q -d MEMORY).",
            )


def _numbering(f: Findings, r: GpuIdentity) -> None:
    """PyTorch's cuda:N against nvidia-smi's index: a note when CUDA_VISIBLE_DEVICES explains it, else a
    WARN."""
    if r.nvml_index is None or r.nvml_index == r.torch_index:
        return
    if r.is_mig:  # CUDA numbers the MIG instances it shows, not the GPUs
        f.note("a MIG instance: cuda:N numbers the visible instances, not nvidia-smi's GPUs")
        return
    if r.cuda_visible_devices is not None:
        f.note(f"numbering differs from nvidia-smi's because CUDA_VISIBLE_DEVICES={r.cuda_visible_devices!r}")
        return
    mixed = len(set(r.visible_models)) > 1
    f.add(
        Verdict.WARN,
        f"PyTorch's {r.device} is nvidia-smi's GPU {r.nvml_index} "
        f"({r.nvml_bus_id or pci_text(r.nvml_pci)})"
        + (
            f": CUDA_DEVICE_ORDER is {r.cuda_device_order or 'unset'} on a machine with different GPU models"
            if mixed
            else ""
        ),
        "set CUDA_DEVICE_ORDER=PCI_BUS_ID so that cuda:N matches nvidia-smi's numbering, or "
        "choose the "
        "device by what this row shows.",
    )


def verify(ctx: DeviceContext) -> CheckResult:
    tolerance = ctx.config.verify.identity_memory_tolerance_pct / 100.0
    return decide_identity(read_identity(ctx.spec, ctx.probe), tolerance)


CHECK = DecidedNow(CheckSpec("identity", "cuda:N mapped to the physical GPU (UUID, PCI)", cpu=False), verify)
