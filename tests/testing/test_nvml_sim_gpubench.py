"""gpubench's own NVML layer (gpubench.nvml) works unchanged on simulated machines."""

from __future__ import annotations

import ctypes
import json

import pynvml
import pytest

from gpubench import nvml
from gpubench.testing.nvml_sim import PROFILES_DIR, SimulatedMachine, simulated_nvml


def test_inventory_through_gpubench(nvml_machine: SimulatedMachine) -> None:
    gpu = nvml_machine.profile.gpus[0]
    assert nvml.init() is None
    assert nvml.driver_version() == "580.105.08"
    assert nvml.cuda_driver_version() == "13.0"
    assert nvml.device_count() == 1
    bare_uuid = gpu.uuid.removeprefix("GPU-")  # as torch prints it
    assert nvml.pci_bus_id(bare_uuid) == "00000000:53:00.0"
    handle = nvml.handle_by_uuid(bare_uuid)
    assert nvml.text("nvmlDeviceGetName", handle) == "NVIDIA H100 80GB HBM3"
    assert nvml.call("nvmlDeviceGetPowerUsage", handle) == 68570


def test_a_reading_the_gpu_cannot_give_is_na(nvml_machine: SimulatedMachine) -> None:
    nvml_machine.inject("nvmlDeviceGetPowerUsage", error="NotSupported")
    handle = nvml.handle_by_index(0)
    assert nvml.call("nvmlDeviceGetPowerUsage", handle) is nvml.NA
    value, error = nvml.call_or_error("nvmlDeviceGetPowerUsage", handle)
    assert value is nvml.NA and error == "NVMLError_NotSupported: Not Supported"


@pytest.mark.parametrize("nvml_machine", ["consumer-rtx4090"], indirect=True)
def test_consumer_readings_are_na(nvml_machine: SimulatedMachine) -> None:
    handle = nvml.handle_by_index(0)
    assert nvml.call("nvmlDeviceGetSerial", handle) is nvml.NA
    assert nvml.call("nvmlDeviceGetRemappedRows", handle) is nvml.NA
    assert nvml.call("nvmlDeviceGetMigMode", handle) is nvml.NA
    assert nvml.call("nvmlDeviceGetEccMode", handle) == [0, 0]


@pytest.mark.parametrize("nvml_machine", ["old-driver"], indirect=True)
def test_old_driver_through_gpubench(nvml_machine: SimulatedMachine) -> None:
    assert nvml.cuda_driver_version() == "12.0"
    handle = nvml.handle_by_index(0)
    value, error = nvml.call_or_error("nvmlDeviceGetCurrentClocksEventReasons", handle)
    assert value is nvml.NA and error is not None and "FunctionNotFound" in error
    assert nvml.call("nvmlDeviceGetCurrentClocksThrottleReasons", handle) == 0


@pytest.mark.parametrize("nvml_machine", ["dgx-8gpu-order"], indirect=True)
def test_cuda_order_is_looked_up_by_uuid(nvml_machine: SimulatedMachine) -> None:
    """cuda:0 is NVML GPU 4 here; gpubench finds it by UUID, never by index."""
    cuda_uuids = nvml_machine.profile.cuda_uuids()
    assert [nvml.call("nvmlDeviceGetIndex", nvml.handle_by_uuid(u)) for u in cuda_uuids] == [
        4,
        5,
        6,
        7,
        0,
        1,
        2,
        3,
    ]
    assert nvml.pci_bus_id(cuda_uuids[0]) == "00000000:97:00.0"


@pytest.mark.parametrize("nvml_machine", ["mig-a100"], indirect=True)
def test_a_mig_uuid_through_gpubench(nvml_machine: SimulatedMachine) -> None:
    mig = nvml_machine.profile.gpus[0].mig
    assert mig is not None
    handle = nvml.handle_by_uuid(mig.devices[0].uuid)
    assert nvml.text("nvmlDeviceGetName", handle) == "NVIDIA A100-SXM4-40GB MIG 3g.20gb"


def test_no_driver_through_gpubench() -> None:
    data = json.loads((PROFILES_DIR / "h100-sxm.json").read_text())
    data["init_error"] = "DriverNotLoaded"
    with simulated_nvml(data):
        reason = nvml.init()
        assert reason is not None and "NVMLError_DriverNotLoaded" in reason
        assert nvml.device_count() is nvml.NA
    with simulated_nvml("h100-sxm"):
        assert nvml.init() is None  # the cached failure was reset on the way in


def test_gpubench_forgets_the_simulated_machine_on_exit() -> None:
    with simulated_nvml("h100-sxm"):
        assert nvml.init() is None
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        reason = nvml.init()
        assert reason is not None and "LibraryNotFound" in reason
    else:  # a machine with a driver: gpubench now talks to the real NVML
        assert nvml.init() is None
    nvml.reset()
    if pynvml.nvmlLib is not None:
        pynvml.nvmlShutdown()


@pytest.mark.parametrize("nvml_machine", ["mig-a100"], indirect=True)
def test_a_bare_mig_uuid_as_torch_prints_it_is_found(nvml_machine: SimulatedMachine) -> None:
    """torch prints a MIG instance's UUID without a prefix; NVML knows it only as MIG-…, not GPU-…."""
    mig = nvml_machine.profile.gpus[0].mig
    assert mig is not None
    bare = mig.devices[1].uuid.removeprefix("MIG-")
    assert nvml.normalise_uuid(bare) == mig.devices[1].uuid
    handle = nvml.handle_by_uuid(bare)
    assert nvml.text("nvmlDeviceGetName", handle) == "NVIDIA A100-SXM4-40GB MIG 2g.10gb"
    whole_gpu = nvml_machine.profile.gpus[0].uuid
    assert nvml.normalise_uuid(whole_gpu.removeprefix("GPU-")) == whole_gpu
