"""`gpubench info` on every simulated machine: the real command, with NVML simulated under pynvml and PyTorch's
CUDA devices simulated from the same profile (gpubench.testing.cuda_sim)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gpubench.cli import main
from gpubench.testing.cuda_sim import simulated_cuda
from gpubench.testing.nvml_sim import Profile, SimClock, available_profiles, load_profile, simulated_nvml


@pytest.fixture(autouse=True)
def _no_cuda_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)


def _expected(profile: Profile) -> list[dict[str, Any]]:
    """The devices PyTorch shows, from the profile: CUDA's order; a MIG-enabled GPU as its first instance."""
    order = profile.cuda_order if profile.cuda_order is not None else range(len(profile.gpus))
    rows = []
    for n, i in enumerate(order):
        gpu = profile.gpus[i]
        row = {"device": f"cuda:{n}", "name": gpu.name, "uuid": gpu.uuid, "nvml_index": i}
        if gpu.mig is not None and gpu.mig.current:
            mig = gpu.mig.devices[0]
            row.update(name=f"{gpu.name} MIG {mig.profile}", uuid=mig.uuid)
        row["pci_bus_id"] = gpu.pci.bus_id if gpu.pci else None
        rows.append(row)
    return rows


def _info(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["info", *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", available_profiles())
def test_info_json_names_the_simulated_gpus(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    profile = load_profile(name)
    with simulated_nvml(name, clock=SimClock.manual()) as machine, simulated_cuda(machine):
        data = json.loads(_info(capsys, "--json"))
    assert data["driver"] == profile.driver_version and data["nvml"] == "ok"
    assert data["nvml_gpus"] == len(profile.gpus) and data["cuda_available"] is True
    assert profile.cuda_driver_version is not None
    major, minor = divmod(profile.cuda_driver_version, 1000)
    assert data["driver_cuda"] == f"{major}.{minor // 10}" and data["cuda_build"] == "12.8"
    keys = ("device", "name", "uuid", "pci_bus_id", "nvml_index")
    assert [{k: d[k] for k in keys} for d in data["devices"]] == _expected(profile)


@pytest.mark.parametrize("name", available_profiles())
def test_info_table_names_the_simulated_gpus(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    profile = load_profile(name)
    with simulated_nvml(name, clock=SimClock.manual()) as machine, simulated_cuda(machine):
        text = _info(capsys)
    assert f"driver                 {profile.driver_version}" in text
    lines = text.splitlines()
    for row in _expected(profile):
        line = next(line for line in lines if f"│ {row['device']} " in line)
        assert row["name"] in line and row["uuid"] in line and row["pci_bus_id"] in line, line
        assert line.rstrip(" │").endswith(str(row["nvml_index"])), line
    assert "No CUDA device" not in text


def test_info_on_the_dgx_with_cuda_visible_devices(capsys: pytest.CaptureFixture[str]) -> None:
    with (
        simulated_nvml("dgx-8gpu-order") as machine,
        simulated_cuda(machine, visible="2,0", order="PCI_BUS_ID"),
    ):
        data = json.loads(_info(capsys, "--json"))
    assert data["cuda_visible_devices"] == "2,0" and data["cuda_device_order"] == "PCI_BUS_ID"
    assert [(d["device"], d["nvml_index"], d["pci_bus_id"]) for d in data["devices"]] == [
        ("cuda:0", 2, "00000000:75:00.0"),
        ("cuda:1", 0, "00000000:53:00.0"),
    ]


def test_info_on_a_mig_instance(capsys: pytest.CaptureFixture[str]) -> None:
    with simulated_nvml("mig-a100") as machine, simulated_cuda(machine, visible="MIG-00000003"):
        data = json.loads(_info(capsys, "--json"))
    (device,) = data["devices"]
    assert device["uuid"] == "MIG-00000003-0000-0000-0000-000000000003"
    assert device["name"] == "NVIDIA A100-SXM4-40GB MIG 1g.5gb" and device["memory_gib"] == 4.88
    assert device["pci_bus_id"] == "00000000:06:00.0" and device["nvml_index"] == 0


def test_info_says_why_cuda_visible_devices_hides_every_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    with simulated_nvml("h200") as machine, simulated_cuda(machine, visible=""):
        text = _info(capsys)
    assert "CUDA_VISIBLE_DEVICES   ''" in text
    assert "No CUDA device: CUDA_VISIBLE_DEVICES='' exposes 0 GPU(s) to this process" in text
    assert "NVML sees 1 GPU(s) on the machine" in text and "Fix: unset CUDA_VISIBLE_DEVICES" in text


def test_info_with_nvml_not_supported_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    with simulated_nvml("h100-sxm") as machine, simulated_cuda(machine):
        machine.inject("*", error="NotSupported")
        data = json.loads(_info(capsys, "--json"))
    assert data["nvml"].startswith("NVML not available") and data["driver"] == "not readable"
    (device,) = data["devices"]
    assert device["name"] == "NVIDIA H100 80GB HBM3" and device["pci_bus_id"] is None
    assert device["nvml_index"] is None
