"""Every shipped profile, read through the real pynvml wrappers, gives exactly the profile's values;
a null reading surfaces as NVMLError_NotSupported."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pynvml
import pytest

from gpubench.testing.nvml_sim import SimClock, SimulatedMachine, available_profiles, simulated_nvml
from gpubench.testing.nvml_sim.profile import Gpu


def _expect(read: Callable[..., Any], *args: Any, expected: Any) -> None:
    if expected is None:
        with pytest.raises(pynvml.NVMLError_NotSupported):
            read(*args)
    else:
        assert read(*args) == expected


@pytest.fixture(params=available_profiles())
def machine(request: pytest.FixtureRequest) -> Iterator[SimulatedMachine]:
    with simulated_nvml(request.param, clock=SimClock.manual()) as machine:
        pynvml.nvmlInit()
        yield machine
        pynvml.nvmlShutdown()


def test_system_readings(machine: SimulatedMachine) -> None:
    profile = machine.profile
    assert pynvml.nvmlSystemGetDriverVersion() == profile.driver_version
    assert pynvml.nvmlSystemGetCudaDriverVersion() == profile.cuda_driver_version
    assert pynvml.nvmlSystemGetCudaDriverVersion_v2() == profile.cuda_driver_version
    assert pynvml.nvmlDeviceGetCount() == len(profile.gpus)


def _each_gpu(machine: SimulatedMachine) -> list[tuple[int, Any, Gpu]]:
    return [(i, pynvml.nvmlDeviceGetHandleByIndex(i), gpu) for i, gpu in enumerate(machine.profile.gpus)]


def test_identity(machine: SimulatedMachine) -> None:
    for index, handle, gpu in _each_gpu(machine):
        assert pynvml.nvmlDeviceGetIndex(handle) == index
        assert pynvml.nvmlDeviceGetName(handle) == gpu.name
        assert pynvml.nvmlDeviceGetUUID(handle) == gpu.uuid
        _expect(pynvml.nvmlDeviceGetSerial, handle, expected=gpu.serial)
        assert gpu.pci is not None  # every shipped profile knows its PCI ids
        pci = pynvml.nvmlDeviceGetPciInfo(handle)
        assert pci.busId == gpu.pci.bus_id and pci.busIdLegacy == gpu.pci.bus_id[4:]
        assert (pci.domain, pci.bus, pci.device) == (gpu.pci.domain, gpu.pci.bus, gpu.pci.device)
        assert f"0x{pci.pciDeviceId:08X}" == gpu.pci.device_id
        assert f"0x{pci.pciSubSystemId:08X}" == gpu.pci.subsystem_id
        by_uuid = pynvml.nvmlDeviceGetHandleByUUID(gpu.uuid)
        by_bus = pynvml.nvmlDeviceGetHandleByPciBusId(gpu.pci.bus_id)
        assert pynvml.nvmlDeviceGetIndex(by_uuid) == pynvml.nvmlDeviceGetIndex(by_bus) == index


def test_memory(machine: SimulatedMachine) -> None:
    for _, handle, gpu in _each_gpu(machine):
        mem = gpu.memory
        assert mem is not None
        reserved = mem.reserved_bytes or 0
        v1 = pynvml.nvmlDeviceGetMemoryInfo(handle)
        assert (v1.total, v1.used, v1.free) == (
            mem.total_bytes,
            mem.used_bytes + reserved,
            mem.total_bytes - mem.used_bytes - reserved,
        )
        v2 = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
        assert (v2.total, v2.reserved, v2.used) == (mem.total_bytes, mem.reserved_bytes, mem.used_bytes)
        assert v2.free == mem.total_bytes - mem.used_bytes - reserved


def test_memory_health(machine: SimulatedMachine) -> None:
    for _, handle, gpu in _each_gpu(machine):
        ecc = gpu.ecc_mode
        _expect(
            pynvml.nvmlDeviceGetEccMode,
            handle,
            expected=None if ecc is None else [int(ecc.current), int(ecc.pending)],
        )
        for kind, kind_name in (
            (pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, "corrected"),
            (pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, "uncorrected"),
        ):
            for counter, counter_name in (
                (pynvml.NVML_VOLATILE_ECC, "volatile"),
                (pynvml.NVML_AGGREGATE_ECC, "aggregate"),
            ):
                want = getattr(gpu.ecc_errors, f"{counter_name}_{kind_name}") if gpu.ecc_errors else None
                _expect(pynvml.nvmlDeviceGetTotalEccErrors, handle, kind, counter, expected=want)
        rows = gpu.remapped_rows
        want_rows = (
            None
            if rows is None
            else (rows.correctable, rows.uncorrectable, int(rows.pending), int(rows.failure))
        )
        _expect(pynvml.nvmlDeviceGetRemappedRows, handle, expected=want_rows)
        pending = gpu.retired_pages_pending
        _expect(
            pynvml.nvmlDeviceGetRetiredPagesPendingStatus,
            handle,
            expected=None if pending is None else int(pending),
        )


def test_clocks_power_temperature(machine: SimulatedMachine) -> None:
    clock_types = {
        "graphics": pynvml.NVML_CLOCK_GRAPHICS,
        "sm": pynvml.NVML_CLOCK_SM,
        "mem": pynvml.NVML_CLOCK_MEM,
        "video": pynvml.NVML_CLOCK_VIDEO,
    }
    thresholds = {
        "shutdown": pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN,
        "slowdown": pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
        "mem_max": pynvml.NVML_TEMPERATURE_THRESHOLD_MEM_MAX,
        "gpu_max": pynvml.NVML_TEMPERATURE_THRESHOLD_GPU_MAX,
    }
    for _, handle, gpu in _each_gpu(machine):
        for key, kind in clock_types.items():
            _expect(pynvml.nvmlDeviceGetClockInfo, handle, kind, expected=getattr(gpu.clocks_mhz, key))
            _expect(pynvml.nvmlDeviceGetMaxClockInfo, handle, kind, expected=getattr(gpu.max_clocks_mhz, key))
        _expect(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons, handle, expected=gpu.clock_event_reasons)
        if "nvmlDeviceGetCurrentClocksEventReasons" not in machine.profile.missing_functions:
            _expect(pynvml.nvmlDeviceGetCurrentClocksEventReasons, handle, expected=gpu.clock_event_reasons)
        _expect(pynvml.nvmlDeviceGetPowerUsage, handle, expected=gpu.power.usage_mw)
        _expect(pynvml.nvmlDeviceGetEnforcedPowerLimit, handle, expected=gpu.power.enforced_limit_mw)
        _expect(pynvml.nvmlDeviceGetPowerManagementLimit, handle, expected=gpu.power.management_limit_mw)
        _expect(pynvml.nvmlDeviceGetTotalEnergyConsumption, handle, expected=gpu.energy_mj)
        _expect(
            pynvml.nvmlDeviceGetTemperature, handle, pynvml.NVML_TEMPERATURE_GPU, expected=gpu.temperature_c
        )
        for key, kind in thresholds.items():
            want = getattr(gpu.temperature_thresholds_c, key)
            _expect(pynvml.nvmlDeviceGetTemperatureThreshold, handle, kind, expected=want)


def test_pcie_utilization_and_modes(machine: SimulatedMachine) -> None:
    for _, handle, gpu in _each_gpu(machine):
        link = gpu.pcie
        _expect(pynvml.nvmlDeviceGetCurrPcieLinkGeneration, handle, expected=link.link_gen)
        _expect(pynvml.nvmlDeviceGetCurrPcieLinkWidth, handle, expected=link.link_width)
        _expect(pynvml.nvmlDeviceGetMaxPcieLinkGeneration, handle, expected=link.max_link_gen)
        _expect(pynvml.nvmlDeviceGetMaxPcieLinkWidth, handle, expected=link.max_link_width)
        _expect(pynvml.nvmlDeviceGetGpuMaxPcieLinkGeneration, handle, expected=link.gpu_max_link_gen)
        _expect(pynvml.nvmlDeviceGetPcieReplayCounter, handle, expected=link.replay_counter)
        _expect(
            pynvml.nvmlDeviceGetPcieThroughput, handle, pynvml.NVML_PCIE_UTIL_TX_BYTES, expected=link.tx_kb_s
        )
        _expect(
            pynvml.nvmlDeviceGetPcieThroughput, handle, pynvml.NVML_PCIE_UTIL_RX_BYTES, expected=link.rx_kb_s
        )
        util = gpu.utilization_pct
        if util is None:
            with pytest.raises(pynvml.NVMLError_NotSupported):
                pynvml.nvmlDeviceGetUtilizationRates(handle)
        else:
            rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
            assert (rates.gpu, rates.memory) == (util.gpu, util.memory)
        mode = gpu.persistence_mode
        _expect(pynvml.nvmlDeviceGetPersistenceMode, handle, expected=None if mode is None else int(mode))
        _expect(pynvml.nvmlDeviceGetComputeMode, handle, expected=gpu.compute_mode)
        mig = gpu.mig
        _expect(
            pynvml.nvmlDeviceGetMigMode,
            handle,
            expected=None if mig is None else [int(mig.current), int(mig.pending)],
        )
        _expect(
            pynvml.nvmlDeviceGetMaxMigDeviceCount, handle, expected=None if mig is None else mig.max_devices
        )


def test_processes(machine: SimulatedMachine) -> None:
    for _, handle, gpu in _each_gpu(machine):
        got = [
            (p.pid, p.usedGpuMemory, p.gpuInstanceId, p.computeInstanceId)
            for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
        ]
        want = [
            (
                machine.process_pid(p),
                p.used_memory_bytes,
                0xFFFFFFFF if p.gpu_instance_id is None else p.gpu_instance_id,
                0xFFFFFFFF if p.compute_instance_id is None else p.compute_instance_id,
            )
            for p in gpu.processes
        ]
        assert got == want
        for process in gpu.processes:
            if process.name is None:  # e.g. a PID from another namespace
                with pytest.raises(pynvml.NVMLError_NotFound):
                    pynvml.nvmlSystemGetProcessName(machine.process_pid(process))
            else:
                assert pynvml.nvmlSystemGetProcessName(machine.process_pid(process)) == process.name


def test_fields_and_gpm_support(machine: SimulatedMachine) -> None:
    for _, handle, gpu in _each_gpu(machine):
        (entry,) = pynvml.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION])
        want = gpu.fields.get("NVML_FI_DEV_GET_GPU_RECOVERY_ACTION")
        if want is None:
            assert entry.nvmlReturn == pynvml.NVML_ERROR_NOT_SUPPORTED
        else:
            assert (entry.nvmlReturn, entry.valueType, entry.value.uiVal) == (
                0,
                pynvml.NVML_VALUE_TYPE_UNSIGNED_INT,
                want,
            )
        if gpu.gpm is None:
            with pytest.raises(pynvml.NVMLError_NotSupported):
                pynvml.nvmlGpmQueryDeviceSupport(handle)
        else:
            assert pynvml.nvmlGpmQueryDeviceSupport(handle).isSupportedDevice == int(gpu.gpm.supported)
