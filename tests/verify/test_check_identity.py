"""The identity check's decision over hand-made readings: both sides of every threshold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpubench.verify.checks.identity import GpuIdentity, decide_identity
from gpubench.verify.verdicts import Verdict

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


IDENT = GpuIdentity(
    device="cuda:1",
    torch_index=1,
    torch_name="NVIDIA H100 80GB HBM3",
    torch_total_memory=85_000_000_000,
    uuid="GPU-1",
    torch_pci=(0, 0x65, 0),
    nvml_found=True,
    nvml_index=1,
    nvml_name="NVIDIA H100 80GB HBM3",
    nvml_total_memory=85_520_809_984,
    nvml_pci=(0, 0x65, 0),
    nvml_bus_id="00000000:65:00.0",
    visible_models=("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"),
)


def test_identity_agrees() -> None:
    r = decide_identity(IDENT)
    assert r.verdict is P and "cuda:1 = nvidia-smi GPU 1" in r.message and "GPU-1" in r.message


def test_identity_pci_mismatch_fails() -> None:
    r = decide_identity(replace(IDENT, nvml_pci=(0, 0x17, 0)))
    assert r.verdict is F and "PCI address mismatch" in r.message


def test_identity_name_mismatch_fails() -> None:
    assert decide_identity(replace(IDENT, nvml_name="NVIDIA A100")).verdict is F


@pytest.mark.parametrize(("torch_mem", "verdict"), [(int(100e9 * 0.971), P), (int(100e9 * 0.969), W)])
def test_identity_memory_tolerance(torch_mem: int, verdict: Verdict) -> None:
    r = decide_identity(replace(IDENT, torch_total_memory=torch_mem, nvml_total_memory=int(100e9)), 0.03)
    assert r.verdict is verdict


def test_identity_order_differs() -> None:
    mixed = replace(IDENT, nvml_index=0, visible_models=("NVIDIA RTX A6000", "NVIDIA H100 80GB HBM3"))
    r = decide_identity(mixed)
    assert r.verdict is W and "nvidia-smi's GPU 0" in r.message and "CUDA_DEVICE_ORDER is unset" in r.message
    assert decide_identity(replace(mixed, cuda_visible_devices="1,0")).verdict is P


def test_identity_without_uuid_or_nvml_skips_and_lookup_failure_fails() -> None:
    assert decide_identity(replace(IDENT, uuid=None)).verdict is S
    no_nvml = replace(IDENT, nvml_found=False, nvml_error="NVML not available: no driver")
    assert decide_identity(no_nvml).verdict is S
    lost = replace(IDENT, nvml_found=False, nvml_error="NVMLError_NotFound: Not Found")
    assert decide_identity(lost).verdict is F
