"""The identity check's memory tolerance at exactly its value, its default (3 %, not 30 %) and its setting."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gpubench.config import load_config
from gpubench.verify.checks import identity
from gpubench.verify.checks.identity import GpuIdentity, decide_identity, pci_text
from gpubench.verify.verdicts import Verdict

IDENT = GpuIdentity(
    device="cuda:1",
    torch_index=1,
    torch_name="NVIDIA H100 80GB HBM3",
    torch_total_memory=97_000_000_000,
    uuid="GPU-1",
    torch_pci=(0, 0x65, 0),
    nvml_found=True,
    nvml_index=1,
    nvml_name="NVIDIA H100 80GB HBM3",
    nvml_total_memory=100_000_000_000,  # PyTorch sees exactly 3 % less
    nvml_pci=(0, 0x65, 0),
    nvml_bus_id="00000000:65:00.0",
    visible_models=("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"),
)


def test_a_difference_of_exactly_the_tolerance_passes_one_byte_more_warns() -> None:
    assert decide_identity(IDENT, 0.03).verdict is Verdict.PASS
    over = decide_identity(replace(IDENT, torch_total_memory=96_999_999_999), 0.03)
    assert over.verdict is Verdict.WARN
    assert "total memory differs by 3.0% (PyTorch " in over.message and "tolerance 3%)" in over.message
    assert "nvidia-smi -q -d MEMORY" in over.remedy
    more = decide_identity(replace(IDENT, torch_total_memory=103_000_000_001), 0.03)  # the other way
    assert more.verdict is Verdict.WARN


def test_the_default_tolerance_is_three_percent_not_thirty() -> None:
    four = replace(IDENT, torch_total_memory=96_000_000_000)
    assert decide_identity(four).verdict is Verdict.WARN
    assert decide_identity(replace(IDENT, torch_total_memory=97_000_000_000)).verdict is Verdict.PASS


def test_no_nvml_total_memory_means_no_memory_comparison() -> None:
    assert decide_identity(replace(IDENT, nvml_total_memory=0, torch_total_memory=1)).verdict is Verdict.PASS
    assert decide_identity(replace(IDENT, nvml_total_memory=None)).verdict is Verdict.PASS  # type: ignore[arg-type]


@pytest.mark.parametrize(("pct", "torch_memory", "verdict"),
                         [(3.0, 97_000_000_000, Verdict.PASS), (3.0, 96_000_000_000, Verdict.WARN),
                          (5.0, 96_000_000_000, Verdict.PASS)])
def test_the_setting_is_a_percentage(monkeypatch: pytest.MonkeyPatch, pct: float, torch_memory: int,
                                     verdict: Verdict) -> None:
    """verify.identity_memory_tolerance_pct is in percent: 3 means 0.03 (not 0.3)."""
    reading = replace(IDENT, torch_total_memory=torch_memory)
    monkeypatch.setattr(identity, "read_identity", lambda spec, probe: reading)
    config = load_config(flags={"verify.identity_memory_tolerance_pct": pct}, env={}, cwd=Path("/nonexistent"),
                         user_files=False)
    ctx: Any = SimpleNamespace(config=config, spec=None, probe=None)
    assert identity.verify(ctx).verdict is verdict


def test_pci_text() -> None:
    assert pci_text((0, 0x65, 0)) == "00000000:65:00.0"  # nvidia-smi's bus id form
    assert pci_text((1, 0xAB, 3)) == "00000001:AB:03.0"
    assert pci_text(None) == "N/A"


def test_the_row_reads_exactly() -> None:
    r = decide_identity(IDENT)
    assert (r.check, r.device, r.remedy) == ("identity", "cuda:1", "")
    assert r.value == "cuda:1 = nvidia-smi GPU 1, NVIDIA H100 80GB HBM3, GPU-1, PCI 00000000:65:00.0"
    assert r.message == r.value + "; UUID and PCI agree"
    assert r.threshold == "UUID, PCI, name, memory agree"
    assert r.readings["uuid"] == "GPU-1"
    unknown = decide_identity(replace(IDENT, nvml_index=None, nvml_bus_id=None, uuid="GPU-1"))
    assert unknown.value == "cuda:1 = nvidia-smi GPU ?, NVIDIA H100 80GB HBM3, GPU-1, PCI 00000000:65:00.0"


def test_mig_instances_are_named_and_their_numbering_is_a_note() -> None:
    mig = replace(IDENT, uuid="MIG-1", nvml_index=0, mig_gpu_instance=2, mig_compute_instance=None)
    assert mig.is_mig
    r = decide_identity(mig)
    assert r.verdict is Verdict.PASS
    assert r.value.startswith("cuda:1 = nvidia-smi GPU 0 MIG instance (GI 2, CI ?), ")
    assert r.message.endswith("; a MIG instance: cuda:N numbers the visible instances, not nvidia-smi's GPUs")
    assert "(GI 2, CI 0)" in decide_identity(replace(mig, mig_compute_instance=0)).value
    assert not replace(IDENT, mig_gpu_instance=None).is_mig


def test_numbering_warnings_and_notes_exactly() -> None:
    same_models = decide_identity(replace(IDENT, nvml_index=0))
    assert same_models.verdict is Verdict.WARN
    assert same_models.message == "PyTorch's cuda:1 is nvidia-smi's GPU 0 (00000000:65:00.0)"
    assert same_models.remedy == ("set CUDA_DEVICE_ORDER=PCI_BUS_ID so that cuda:N matches nvidia-smi's numbering, "
                                  "or choose the device by what this row shows.")
    mixed = decide_identity(replace(IDENT, nvml_index=0, nvml_bus_id=None, cuda_device_order="FASTEST_FIRST",
                                    visible_models=("A", "B")))
    assert mixed.message == ("PyTorch's cuda:1 is nvidia-smi's GPU 0 (00000000:65:00.0): CUDA_DEVICE_ORDER is "
                             "FASTEST_FIRST on a machine with different GPU models")
    cvd = decide_identity(replace(IDENT, nvml_index=0, cuda_visible_devices="1,0"))
    assert cvd.message.endswith("; numbering differs from nvidia-smi's because CUDA_VISIBLE_DEVICES='1,0'")


def test_pci_and_name_mismatches_exactly() -> None:
    r = decide_identity(replace(IDENT, nvml_pci=(0, 0x17, 0), nvml_name="NVIDIA A100"))
    assert r.verdict is Verdict.FAIL
    assert r.message == (
        "FAIL: PCI address mismatch: PyTorch 00000000:65:00.0, NVML 00000000:17:00.0 for the same UUID; "
        "FAIL: name mismatch: PyTorch 'NVIDIA H100 80GB HBM3', NVML 'NVIDIA A100'"
    )
    assert r.remedy == ("report this driver inconsistency; reset the GPU (nvidia-smi -r) or reboot. "
                        "check `nvidia-smi -L` against `gpubench info`.")
    assert decide_identity(replace(IDENT, nvml_name=" nvidia h100 80gb hbm3 ")).verdict is Verdict.PASS
    assert decide_identity(replace(IDENT, torch_pci=None, nvml_pci=(0, 1, 0))).verdict is Verdict.PASS
    assert decide_identity(replace(IDENT, nvml_name=None)).verdict is Verdict.PASS


def test_unmapped_devices_exactly() -> None:
    from gpubench.verify.probing import LOST_REMEDY

    no_uuid = decide_identity(replace(IDENT, uuid=None))
    assert (no_uuid.verdict, no_uuid.remedy) == (Verdict.SKIP, "upgrade PyTorch.")
    assert no_uuid.message == ("PyTorch gives no UUID for this device (PyTorch older than 2.0?): cannot map it to "
                               "NVML")
    lost = decide_identity(replace(IDENT, nvml_found=False, nvml_error="GpuIsLost"))
    assert (lost.verdict, lost.message, lost.remedy) == (
        Verdict.FAIL, "NVML lost cuda:1's GPU (GPU-1): GpuIsLost", LOST_REMEDY)
    assert lost.value.startswith("cuda:1 = nvidia-smi GPU 1")
    cannot = decide_identity(replace(IDENT, nvml_found=False, nvml_error="NoPermission"))
    assert (cannot.verdict, cannot.message) == (
        Verdict.SKIP, "NoPermission; cannot cross-check cuda:1 (NVIDIA H100 80GB HBM3, GPU-1)")
    not_found = decide_identity(replace(IDENT, nvml_found=False, nvml_error="NVMLError_NotFound"))
    assert not_found.verdict is Verdict.FAIL
    assert not_found.message == "NVML knows no GPU with cuda:1's UUID GPU-1 (NVMLError_NotFound)"
    assert not_found.remedy == ("the driver and the CUDA runtime disagree: check `nvidia-smi -L`; a MIG slice or a "
                                "GPU fallen off the bus shows this; reboot or reset the GPU.")
    silent = decide_identity(replace(IDENT, nvml_found=False, nvml_error=None))
    assert silent.message == "NVML knows no GPU with cuda:1's UUID GPU-1 (lookup failed)"


def test_rows_that_cannot_map_still_name_check_and_device(monkeypatch: pytest.MonkeyPatch) -> None:
    for reading in (replace(IDENT, nvml_found=False, nvml_error="GpuIsLost"),
                    replace(IDENT, nvml_found=False, nvml_error="NoPermission"),
                    replace(IDENT, nvml_found=False, nvml_error="NotFound")):
        r = decide_identity(reading)
        assert (r.check, r.device, r.threshold) == ("identity", "cuda:1", "UUID, PCI, name, memory agree")
        assert r.readings["nvml_found"] is False
    skipped = decide_identity(replace(IDENT, uuid=None))
    assert (skipped.check, skipped.device) == ("identity", "cuda:1")
    warn = decide_identity(replace(IDENT, torch_total_memory=1))
    assert warn.remedy == "check for MIG or a vGPU profile (nvidia-smi -q -d MEMORY)."
    seen: list[object] = []
    monkeypatch.setattr(identity, "read_identity", lambda spec, probe: seen.append((spec, probe)) or IDENT)
    config = load_config(env={}, cwd=Path("/nonexistent"), user_files=False)
    identity.verify(SimpleNamespace(config=config, spec="the spec", probe="the probe"))  # type: ignore[arg-type]
    assert seen == [("the spec", "the probe")]
