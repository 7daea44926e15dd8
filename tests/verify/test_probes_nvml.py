"""Probes and decisions over the NVML readings in tests/data/nvml (hand-made, see its README), through a fake
pynvml installed with gpubench.nvml.reset_for_tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpubench import nvml
from gpubench.devices import CudaDeviceInfo, CudaProbe, parse_device
from gpubench.verify.checks.contention import ProcessInfo, decide_contention, read_contention
from gpubench.verify.checks.identity import decide_identity, read_identity
from gpubench.verify.checks.load import ClockEventReasons, decide_under_load, run_burn
from gpubench.verify.checks.memory import decide_memory_health, read_memory_health
from gpubench.verify.verdicts import CheckResult, Verdict

DATA = Path(__file__).parents[1] / "data" / "nvml"


def _fake_module() -> Any:
    spec = importlib.util.spec_from_file_location("gpubench_fake_pynvml", DATA / "fake_pynvml.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


FAKE = _fake_module()
NAMES = FAKE.fixtures()


def probe_from(data: dict[str, Any]) -> CudaProbe:
    """The CudaProbe PyTorch would give on the fixture's machine."""
    devices = tuple(
        CudaDeviceInfo(
            index=d["index"],
            name=d["name"],
            total_memory=d["total_memory"],
            capability=tuple(d["capability"]),
            uuid=d["uuid"],
            pci_bus_id=None,
            multi_processor_count=0,
        )
        for d in data["torch"]["devices"]
    )
    return CudaProbe(
        torch_version="2.4.0",
        cuda_build="12.4",
        cuda_available=True,
        device_count=len(devices),
        devices=devices,
        cuda_visible_devices=data["torch"]["cuda_visible_devices"],
        driver_version=data["driver_version"],
        nvml_device_count=len(data["devices"]),
        cudnn_version=90100,
    )


@pytest.fixture
def fake_nvml() -> Iterator[Any]:
    def install(name: str) -> Any:
        module = FAKE.FakePynvml(FAKE.load(name))
        nvml.reset_for_tests(module)
        return module

    yield install
    nvml.reset_for_tests()


def test_every_fixture_says_it_is_hand_made() -> None:
    assert NAMES, "no fixtures found"
    for name in NAMES:
        data = FAKE.load(name)
        assert "NOT recorded from hardware" in data["_about"], name
        assert data["expect"], name


def _decide_passive(name: str, device: str, data: dict[str, Any], probe: CudaProbe) -> dict[str, CheckResult]:
    spec = parse_device(device)
    info = next(d for d in data["torch"]["devices"] if d["index"] == spec.index)
    ident = read_identity(spec, probe, torch_pci=tuple(info["pci"]))
    return {
        "identity": decide_identity(ident),
        "memory_health": decide_memory_health(read_memory_health(info["uuid"]), device),
        "contention": decide_contention(read_contention(device, info["uuid"], own_pid=1)),
        "under_load": decide_under_load(
            run_burn("cpu", info["uuid"], seconds=0.05, dtype="f32", n=32, interval_s=0.01)
        ),
    }


@pytest.mark.parametrize("name", NAMES)
def test_fixture_verdicts(name: str, fake_nvml: Any) -> None:
    fake_nvml(name)
    data = FAKE.load(name)
    probe = probe_from(data)
    for device, expected in data["expect"].items():
        got = _decide_passive(name, device, data, probe)
        for check, verdict in expected.items():
            result = got[check]
            assert result.verdict.value == verdict, f"{name} {device} {check}: {result.message}"
            if result.verdict in (Verdict.FAIL, Verdict.WARN):
                assert result.remedy, f"{name} {device} {check} has no remedy"


def test_mixed_order_says_which_physical_gpu(fake_nvml: Any) -> None:
    fake_nvml("mixed_order")
    data = FAKE.load("mixed_order")
    probe = probe_from(data)
    ident = read_identity(parse_device("cuda:1"), probe, torch_pci=(0, 23, 0))
    assert ident.nvml_index == 0 and ident.nvml_name == "NVIDIA RTX A4000"
    result = decide_identity(ident)
    assert "nvidia-smi's GPU 0" in result.message and "00000000:17:00.0" in result.message
    assert "CUDA_DEVICE_ORDER" in result.message and "PCI_BUS_ID" in result.remedy


def test_pending_remap_readings(fake_nvml: Any) -> None:
    fake_nvml("a100_pending_remap")
    r = read_memory_health("GPU-8a7f6e5d-4c3b-2a19-0817-263544536271")
    assert (r.remapped_correctable, r.remapped_uncorrectable, r.remap_pending, r.remap_failure) == (
        2,
        1,
        True,
        False,
    )
    assert r.retired_pages_pending is None and r.recovery_action is None and r.volatile_uncorrected == 1
    result = decide_memory_health(r, "cuda:0")
    assert "row remapping pending" in result.message and "N/A: retired_pages_pending" in result.message


def test_consumer_gpu_reads_na_not_errors(fake_nvml: Any) -> None:
    fake_nvml("rtx4090_consumer")
    uuid = "GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    assert read_memory_health(uuid).all_na()
    contention = read_contention("cuda:0", uuid, own_pid=1)
    assert contention.processes == (ProcessInfo(2412, "python3", 3 * 2**30),)
    assert contention.mig_current is None and contention.persistence is False
    load = run_burn("cpu", uuid, seconds=0.05, n=32, interval_s=0.01)
    assert load.xid_events is None and load.link.width == 8 and load.link.max_width == 16


def test_own_process_is_not_contention(fake_nvml: Any) -> None:
    fake_nvml("rtx4090_consumer")
    reading = read_contention("cuda:0", "GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", own_pid=2412)
    assert reading.processes == ()


def test_burn_reads_xids_replays_and_thermal_reasons(fake_nvml: Any) -> None:
    fake_nvml("mixed_order")
    load = run_burn("cpu", "GPU-a4000000-7777-8888-9999-aaaabbbbcccc", seconds=0.05, n=32, interval_s=0.01)
    assert load.xid_events == (79,)
    assert (load.replay_before, load.replay_after) == (0, 3)
    assert load.peak_temp_c == 93 and load.gpu_max_temp_c == 93 and load.slowdown_temp_c == 98
    assert "hw_thermal_slowdown" in ClockEventReasons(load.reasons_seen or 0).names()
    assert load.samples >= 2 and load.tflops is not None and not load.nonfinite


def test_unknown_uuid_is_an_identity_failure(fake_nvml: Any) -> None:
    fake_nvml("h100_healthy")
    data = FAKE.load("h100_healthy")
    data["torch"]["devices"][0]["uuid"] = "GPU-00000000-0000-0000-0000-000000000000"
    ident = read_identity(parse_device("cuda:0"), probe_from(data), torch_pci=(0, 24, 0))
    result = decide_identity(ident)
    assert result.verdict is Verdict.FAIL and "GPU-00000000" in result.message


def test_no_nvml_gives_empty_readings() -> None:
    nvml.reset_for_tests(None, error="NVML not available: test")
    try:
        assert read_memory_health("GPU-x").all_na()
        assert read_contention("cuda:0", "GPU-x").processes is None
        load = run_burn("cpu", "GPU-x", seconds=0.02, n=16, interval_s=0.01)
        result = decide_under_load(load)
        assert result.verdict is Verdict.SKIP and "NVML not available" in result.message
    finally:
        nvml.reset_for_tests()
