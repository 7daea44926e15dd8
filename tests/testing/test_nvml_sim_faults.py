"""Injected faults surface as the matching pynvml.NVMLError subclass; a missing symbol is
FunctionNotFound; a missing library fails nvmlInit; uninstalling gives pynvml back untouched."""

from __future__ import annotations

import copy
import ctypes
import json
from typing import Any

import pynvml
import pytest

from gpubench.testing.nvml_sim import PROFILES_DIR, SimClock, simulated_nvml


@pytest.mark.parametrize(
    ("error", "exception"),
    [
        ("NotSupported", pynvml.NVMLError_NotSupported),
        ("NO_PERMISSION", pynvml.NVMLError_NoPermission),
        ("NVML_ERROR_GPU_IS_LOST", pynvml.NVMLError_GpuIsLost),
        ("NVMLError_Unknown", pynvml.NVMLError_Unknown),
        (pynvml.NVML_ERROR_TIMEOUT, pynvml.NVMLError_Timeout),
    ],
)
def test_an_injected_error_raises_its_subclass(error: str | int, exception: type[Exception]) -> None:
    with simulated_nvml("h100-sxm") as machine:
        machine.inject("nvmlDeviceGetPowerUsage", error=error)
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        with pytest.raises(exception):
            pynvml.nvmlDeviceGetPowerUsage(handle)
        assert pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU) == 29  # others unaffected


def test_a_gpu_lost_after_n_calls_stays_lost() -> None:
    with simulated_nvml("h100-sxm") as machine:
        machine.inject("nvmlDeviceGetPowerUsage", gpu=0, error="GpuIsLost", after=3)
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        assert [pynvml.nvmlDeviceGetPowerUsage(handle) for _ in range(3)] == [68570] * 3
        for _ in range(2):
            with pytest.raises(pynvml.NVMLError_GpuIsLost):
                pynvml.nvmlDeviceGetPowerUsage(handle)


def test_a_transient_fault_clears() -> None:
    with simulated_nvml("h100-sxm") as machine:
        fault = machine.inject("nvmlDeviceGetTemperature", error="Timeout", times=1)
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        with pytest.raises(pynvml.NVMLError_Timeout):
            pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
        assert pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU) == 29
        assert (fault.calls, fault.fired) == (2, 1)


def test_losing_one_gpu_of_eight() -> None:
    with simulated_nvml("dgx-8gpu-order") as machine:
        machine.lose_gpu(5, after=2)
        pynvml.nvmlInit()
        lost, fine = pynvml.nvmlDeviceGetHandleByIndex(5), pynvml.nvmlDeviceGetHandleByIndex(4)
        pynvml.nvmlDeviceGetName(lost)
        with pytest.raises(pynvml.NVMLError_GpuIsLost):
            pynvml.nvmlDeviceGetMemoryInfo(lost)
        with pytest.raises(pynvml.NVMLError_GpuIsLost):
            pynvml.nvmlDeviceGetHandleByIndex(5)
        assert pynvml.nvmlDeviceGetName(fine) == "NVIDIA H100 80GB HBM3"
        assert pynvml.nvmlDeviceGetCount() == 8
        assert machine.call_count("nvmlDeviceGetMemoryInfo", gpu=5) == 1


def test_a_profile_error_map_always_applies() -> None:
    data = json.loads((PROFILES_DIR / "h200.json").read_text())
    data["gpus"][0]["errors"] = {"nvmlDeviceGetRemappedRows": "NoPermission"}
    with simulated_nvml(data):
        pynvml.nvmlInit()
        with pytest.raises(pynvml.NVMLError_NoPermission):
            pynvml.nvmlDeviceGetRemappedRows(pynvml.nvmlDeviceGetHandleByIndex(0))


def test_the_old_driver_lacks_the_new_clock_reasons_symbol() -> None:
    with simulated_nvml("old-driver"):
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        with pytest.raises(pynvml.NVMLError_FunctionNotFound):
            pynvml.nvmlDeviceGetCurrentClocksEventReasons(handle)
        assert pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle) == 0
        with pytest.raises(pynvml.NVMLError_FunctionNotFound):  # a symbol no simulated driver exports
            pynvml.nvmlDeviceGetBAR1MemoryInfo(handle)


@pytest.mark.parametrize(
    ("init_error", "exception"),
    [
        ("LibraryNotFound", pynvml.NVMLError_LibraryNotFound),
        ("DriverNotLoaded", pynvml.NVMLError_DriverNotLoaded),
    ],
)
def test_nvml_that_does_not_initialise(init_error: str, exception: type[Exception]) -> None:
    data = json.loads((PROFILES_DIR / "h100-sxm.json").read_text())
    data["init_error"] = init_error
    with simulated_nvml(data), pytest.raises(exception):
        pynvml.nvmlInit()
    with simulated_nvml("h100-sxm") as machine:
        machine.inject("nvmlInit", error=init_error)
        with pytest.raises(exception):
            pynvml.nvmlInit()


def test_injecting_nonsense_is_refused() -> None:
    with simulated_nvml("h100-sxm") as machine:
        with pytest.raises(ValueError, match="not a simulated NVML function"):
            machine.inject("nvmlDeviceGetPowerUsag")
        with pytest.raises(ValueError, match="unknown NVML error"):
            machine.inject("nvmlDeviceGetPowerUsage", error="OnFire")
        with pytest.raises(ValueError, match="no GPU 1"):
            machine.inject("nvmlDeviceGetPowerUsage", gpu=1)


def _real_nvml_present() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


def test_uninstalling_gives_pynvml_back() -> None:
    before: tuple[Any, dict[str, Any], int] = (
        pynvml.nvmlLib,
        copy.copy(pynvml._nvmlGetFunctionPointer_cache),
        pynvml._nvmlLib_refcount,
    )
    with simulated_nvml("h200", clock=SimClock.manual()) as machine:
        assert pynvml.nvmlLib is machine.library
        pynvml.nvmlInit()
        assert pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0)) == "NVIDIA H200"
    assert pynvml.nvmlLib is before[0]
    assert pynvml._nvmlGetFunctionPointer_cache == before[1]
    assert pynvml._nvmlLib_refcount == before[2]
    if before[0] is None and not _real_nvml_present():  # this GPU-less machine: as before, no library
        with pytest.raises(pynvml.NVMLError_LibraryNotFound):
            pynvml.nvmlInit()
