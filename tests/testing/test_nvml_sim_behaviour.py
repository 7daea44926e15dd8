"""The C-level protocols behave as NVML's do: handles, MIG, the process-list size query, the sample
buffer on a controlled clock, field values, XID events, GPM, init/shutdown."""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Iterator

import pynvml
import pytest

from gpubench.testing.nvml_sim import SimClock, SimulatedMachine, simulated_nvml
from gpubench.testing.nvml_sim.readings import SAMPLE_BUFFER, SAMPLE_PERIOD_US

MiB = 1024 * 1024
START = 1_700_000_000.0


@pytest.fixture
def machine(request: pytest.FixtureRequest) -> Iterator[SimulatedMachine]:
    name = getattr(request, "param", "h100-sxm")
    with simulated_nvml(name, clock=SimClock.manual(start_wall=START)) as machine:
        pynvml.nvmlInit()
        yield machine
        pynvml.nvmlShutdown()


def test_calls_before_init_are_uninitialized() -> None:
    with simulated_nvml("h100-sxm"):
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetCount()
        pynvml.nvmlInit()
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        assert pynvml.nvmlDeviceGetCount() == 1  # still initialised once
        pynvml.nvmlShutdown()
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlShutdown()


def test_bad_lookups(machine: SimulatedMachine) -> None:
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetHandleByIndex(1)
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetHandleByUUID("GPU-12345678-1234-1234-1234-123456789abc")
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlDeviceGetName(pynvml.c_nvmlDevice_t())  # a NULL handle
    assert str(pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)) == "GPU is lost"
    assert pynvml.nvmlErrorString(pynvml.NVML_ERROR_TIMEOUT) == "Timeout"


def test_memory_v2_checks_the_struct_version(machine: SimulatedMachine) -> None:
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(pynvml.NVMLError_ArgumentVersionMismatch):
        pynvml.nvmlDeviceGetMemoryInfo(handle, version=0x01000028)


@pytest.mark.parametrize("machine", ["mig-a100"], indirect=True)
def test_mig_devices(machine: SimulatedMachine) -> None:
    gpu = machine.profile.gpus[0]
    assert gpu.mig is not None
    parent = pynvml.nvmlDeviceGetHandleByIndex(0)
    assert pynvml.nvmlDeviceGetMigMode(parent) == [1, 1]
    assert pynvml.nvmlDeviceGetMaxMigDeviceCount(parent) == 7
    assert pynvml.nvmlDeviceIsMigDeviceHandle(parent).value == 0
    with pytest.raises(pynvml.NVMLError_NotSupported):  # no whole-GPU utilization under MIG
        pynvml.nvmlDeviceGetUtilizationRates(parent)
    for index, device in enumerate(gpu.mig.devices):
        handle = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, index)
        assert pynvml.nvmlDeviceIsMigDeviceHandle(handle).value == 1
        assert pynvml.nvmlDeviceGetUUID(handle) == device.uuid and device.uuid.startswith("MIG-")
        assert pynvml.nvmlDeviceGetName(handle) == f"NVIDIA A100-SXM4-40GB MIG {device.profile}"
        assert pynvml.nvmlDeviceGetGpuInstanceId(handle) == device.gpu_instance_id
        assert pynvml.nvmlDeviceGetComputeInstanceId(handle) == device.compute_instance_id
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
        assert device.memory is not None and memory.total == device.memory.total_bytes
        by_uuid = pynvml.nvmlDeviceGetHandleByUUID(device.uuid)
        assert pynvml.nvmlDeviceGetUUID(by_uuid) == device.uuid
        back = pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(by_uuid)
        assert pynvml.nvmlDeviceGetUUID(back) == gpu.uuid
        with pytest.raises(pynvml.NVMLError_NotSupported):
            pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)
        expected = [p.pid for p in gpu.processes if p.gpu_instance_id == device.gpu_instance_id]
        assert [p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)] == expected
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, len(gpu.mig.devices))
    (process,) = pynvml.nvmlDeviceGetComputeRunningProcesses(parent)
    assert (process.pid, process.usedGpuMemory, process.gpuInstanceId, process.computeInstanceId) == (
        31337,
        512 * MiB,
        2,
        0,
    )


def test_the_process_list_size_protocol(machine: SimulatedMachine) -> None:
    """The C function wants the count first (INSUFFICIENT_SIZE), then a big enough array."""
    fn = pynvml._nvmlGetFunctionPointer("nvmlDeviceGetComputeRunningProcesses_v3")
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    count = ctypes.c_uint(0)
    assert fn(handle, ctypes.byref(count), None) == pynvml.NVML_SUCCESS and count.value == 0  # idle H100
    with simulated_nvml("consumer-rtx4090"):
        pynvml.nvmlInit()
        fn = pynvml._nvmlGetFunctionPointer("nvmlDeviceGetComputeRunningProcesses_v3")
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        count = ctypes.c_uint(0)
        assert (
            fn(handle, ctypes.byref(count), None) == pynvml.NVML_ERROR_INSUFFICIENT_SIZE and count.value == 1
        )
        array = (pynvml.c_nvmlProcessInfo_v3_t * 1)()
        assert fn(handle, ctypes.byref(count), array) == pynvml.NVML_SUCCESS
        assert (array[0].pid, array[0].usedGpuMemory) == (2165, 25 * MiB)
        assert pynvml.nvmlSystemGetProcessName(2165) == "/usr/bin/kwin_wayland"
        pynvml.nvmlShutdown()


@pytest.mark.parametrize("machine", ["old-driver"], indirect=True)
def test_a_container_sees_host_pids(machine: SimulatedMachine) -> None:
    (process,) = pynvml.nvmlDeviceGetComputeRunningProcesses(pynvml.nvmlDeviceGetHandleByIndex(0))
    assert process.pid == 4711 != os.getpid()
    with pytest.raises(pynvml.NVMLError_NotFound):
        pynvml.nvmlSystemGetProcessName(process.pid)


def test_samples_follow_the_clock(machine: SimulatedMachine) -> None:
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    period = SAMPLE_PERIOD_US[pynvml.NVML_GPU_UTILIZATION_SAMPLES]
    value_type, samples = pynvml.nvmlDeviceGetSamples(handle, pynvml.NVML_GPU_UTILIZATION_SAMPLES, 0)
    assert value_type == pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
    stamps = [s.timeStamp for s in samples]
    assert len(stamps) == SAMPLE_BUFFER and stamps == sorted(stamps)
    assert all(s % period == 0 for s in stamps) and START * 1e6 - period < stamps[-1] <= START * 1e6
    assert {s.sampleValue.uiVal for s in samples} == {machine.profile.gpus[0].utilization_pct.gpu}  # type: ignore[union-attr]
    with pytest.raises(pynvml.NVMLError_NotFound):  # nothing newer yet
        pynvml.nvmlDeviceGetSamples(handle, pynvml.NVML_GPU_UTILIZATION_SAMPLES, stamps[-1])
    machine.clock.advance(1.0)
    _, newer = pynvml.nvmlDeviceGetSamples(handle, pynvml.NVML_GPU_UTILIZATION_SAMPLES, stamps[-1])
    assert len(newer) == int((START + 1.0) * 1e6) // period - stamps[-1] // period == 6
    _, power = pynvml.nvmlDeviceGetSamples(handle, pynvml.NVML_TOTAL_POWER_SAMPLES, 0)
    assert {s.sampleValue.uiVal for s in power} == {machine.profile.gpus[0].power.usage_mw}


@pytest.mark.parametrize("machine", ["mig-a100"], indirect=True)
def test_no_utilization_samples_under_mig(machine: SimulatedMachine) -> None:
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlDeviceGetSamples(
            pynvml.nvmlDeviceGetHandleByIndex(0), pynvml.NVML_GPU_UTILIZATION_SAMPLES, 0
        )


def test_energy_counts_the_power_drawn(machine: SimulatedMachine) -> None:
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    gpu = machine.profile.gpus[0]
    before = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    machine.clock.advance(2.5)
    assert pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) - before == int(gpu.power.usage_mw * 2.5)  # type: ignore[operator]


def test_an_unserved_field_is_not_supported_per_entry(machine: SimulatedMachine) -> None:
    values = pynvml.nvmlDeviceGetFieldValues(
        pynvml.nvmlDeviceGetHandleByIndex(0),
        [pynvml.NVML_FI_DEV_ECC_CURRENT, pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION],
    )
    assert [v.nvmlReturn for v in values] == [pynvml.NVML_ERROR_NOT_SUPPORTED, pynvml.NVML_SUCCESS]
    assert values[1].timestamp == int(START * 1e6)


@pytest.mark.parametrize("machine", ["degraded-pcie-remaps"], indirect=True)
def test_xid_events(machine: SimulatedMachine) -> None:
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    events = pynvml.nvmlEventSetCreate()
    assert pynvml.nvmlDeviceGetSupportedEventTypes(handle) & pynvml.nvmlEventTypeXidCriticalError
    pynvml.nvmlDeviceRegisterEvents(handle, pynvml.nvmlEventTypeXidCriticalError, events)
    data = pynvml.nvmlEventSetWait_v2(events, 100)
    assert (data.eventType, data.eventData) == (pynvml.nvmlEventTypeXidCriticalError, 63)  # the profile's XID
    assert pynvml.nvmlDeviceGetUUID(data.device) == machine.profile.gpus[0].uuid
    with pytest.raises(pynvml.NVMLError_Timeout):
        pynvml.nvmlEventSetWait_v2(events, 100)
    assert machine.deliver_xid(0, 79) == 1
    assert pynvml.nvmlEventSetWait_v2(events, 100).eventData == 79
    pynvml.nvmlEventSetFree(events)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlEventSetFree(events)


def test_gpm_metrics(machine: SimulatedMachine) -> None:
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    assert pynvml.nvmlGpmQueryDeviceSupport(handle).isSupportedDevice == 1
    first, second = pynvml.nvmlGpmSampleAlloc(), pynvml.nvmlGpmSampleAlloc()
    pynvml.nvmlGpmSampleGet(handle, first)
    machine.clock.advance(0.2)
    pynvml.nvmlGpmSampleGet(handle, second)
    request = pynvml.c_nvmlGpmMetricsGet_t()
    request.version = pynvml.NVML_GPM_METRICS_GET_VERSION
    request.numMetrics = 2
    request.sample1, request.sample2 = first, second
    request.metrics[0].metricId = pynvml.NVML_GPM_METRIC_SM_UTIL
    request.metrics[1].metricId = pynvml.NVML_GPM_METRIC_FP64_UTIL  # not served
    pynvml.nvmlGpmMetricsGet(request)
    assert (request.metrics[0].nvmlReturn, request.metrics[0].value) == (pynvml.NVML_SUCCESS, 0.0)
    assert request.metrics[1].nvmlReturn == pynvml.NVML_ERROR_NOT_SUPPORTED
    pynvml.nvmlGpmSampleFree(first)
    pynvml.nvmlGpmSampleFree(second)
    request.sample1 = request.sample2 = pynvml.nvmlGpmSampleAlloc()  # allocated, never taken
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlGpmMetricsGet(request)


@pytest.mark.parametrize("machine", ["consumer-rtx4090"], indirect=True)
def test_no_gpm_on_a_geforce(machine: SimulatedMachine) -> None:
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    assert pynvml.nvmlGpmQueryDeviceSupport(handle).isSupportedDevice == 0
    with pytest.raises(pynvml.NVMLError_NotSupported):
        pynvml.nvmlGpmSampleGet(handle, pynvml.nvmlGpmSampleAlloc())


@pytest.mark.slow  # reads the real clocks: the simulated one must follow them
def test_the_default_clock_follows_real_time() -> None:
    clock = SimClock()
    wall = time.time()
    assert 0.0 <= clock.elapsed() < 1.0 and abs(clock.wall_us() / 1e6 - wall) < 1.0
    clock.advance(10.0)
    assert clock.elapsed() >= 10.0
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1.0)
