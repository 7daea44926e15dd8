"""Simulated NVML: readings (memory, clocks, power, temperature, PCIe, ECC, processes, samples, GPM).

Methods are named after the C symbols and take pynvml's arguments unchanged; a reading the profile
holds as ``null`` is answered with NVML_ERROR_NOT_SUPPORTED, as the driver does.
"""

from __future__ import annotations

from typing import Any

import pynvml

from gpubench.testing.nvml_sim.profile import SERVED_FIELDS, SERVED_GPM_METRICS, Gpu, Memory
from gpubench.testing.nvml_sim.state import (
    INSUFFICIENT_SIZE,
    INVALID_ARGUMENT,
    NOT_FOUND,
    NOT_SUPPORTED,
    SUCCESS,
    VERSION_MISMATCH,
    DeviceRef,
    GpmSample,
    MachineState,
    address,
    out,
    set_pointer,
    value,
)

_NOT_AVAILABLE_ULL = 2**64 - 1  # NVML_VALUE_NOT_AVAILABLE for usedGpuMemory
_NO_ID = 0xFFFFFFFF
_CLOCKS = ("graphics", "sm", "mem", "video")  # by nvmlClockType_t
_THRESHOLDS = ("shutdown", "slowdown", "mem_max", "gpu_max")  # by nvmlTemperatureThresholds_t
SAMPLE_BUFFER = 100
"""Samples the driver keeps per type. Hand-made: ``nvidia-smi -q -d UTILIZATION`` shows about 100."""
SAMPLE_PERIOD_US = {0: 20_000, 1: 166_667, 2: 166_667, 3: 166_667, 4: 166_667, 5: 50_000, 6: 50_000}
"""Sampling interval by nvmlSamplingType_t (power, GPU/memory/encoder/decoder util, SM/memory clock).

Hand-made from the sample counts and durations ``nvidia-smi -q -d POWER,UTILIZATION,CLOCK`` prints.
"""
_FIELD_IDS = {getattr(pynvml, name): name for name in SERVED_FIELDS}
_GPM_IDS = {getattr(pynvml, name): name for name in SERVED_GPM_METRICS}


class ReadingFunctions(MachineState):
    def _device(self, handle: Any) -> tuple[Gpu | None, int]:
        """The GPU behind a whole-GPU handle; MIG handles get NOT_SUPPORTED (see system._whole_gpu)."""
        ref = self.ref(handle)
        if ref is None:
            return None, INVALID_ARGUMENT
        if ref.mig is not None:
            return None, NOT_SUPPORTED
        return self.gpu(ref), SUCCESS

    def _uint(self, handle: Any, target: Any, reading: Any) -> int:
        """Answer one scalar reading: NOT_SUPPORTED when the profile holds null for it."""
        gpu, code = self._device(handle)
        if gpu is None:
            return code
        result = reading(gpu)
        if result is None:
            return NOT_SUPPORTED
        out(target).value = int(result)
        return SUCCESS

    # memory ------------------------------------------------------------------------------------

    def _memory(self, handle: Any) -> tuple[Memory | None, int]:
        ref = self.ref(handle)
        if ref is None:
            return None, INVALID_ARGUMENT
        mig = self.mig_device(ref)
        memory = self.gpu(ref).memory if mig is None else mig.memory
        return memory, (SUCCESS if memory is not None else NOT_SUPPORTED)

    def nvmlDeviceGetMemoryInfo(self, handle: Any, info: Any) -> int:
        mem, code = self._memory(handle)
        if mem is None:
            return code
        target, reserved = out(info), mem.reserved_bytes or 0
        target.total = mem.total_bytes
        target.used = mem.used_bytes + reserved  # v1 counts the driver's reservation as used
        target.free = mem.total_bytes - mem.used_bytes - reserved
        return SUCCESS

    def nvmlDeviceGetMemoryInfo_v2(self, handle: Any, info: Any) -> int:
        mem, code = self._memory(handle)
        if mem is None:
            return code
        target = out(info)
        if target.version != pynvml.nvmlMemory_v2:
            return VERSION_MISMATCH
        if mem.reserved_bytes is None:
            return NOT_SUPPORTED
        target.total, target.reserved, target.used = mem.total_bytes, mem.reserved_bytes, mem.used_bytes
        target.free = mem.total_bytes - mem.used_bytes - mem.reserved_bytes
        return SUCCESS

    def nvmlDeviceGetUtilizationRates(self, handle: Any, util: Any) -> int:
        gpu, code = self._device(handle)
        if gpu is None:
            return code
        if gpu.utilization_pct is None:
            return NOT_SUPPORTED
        target = out(util)
        target.gpu, target.memory = gpu.utilization_pct.gpu, gpu.utilization_pct.memory
        return SUCCESS

    # clocks, temperature, power ----------------------------------------------------------------

    def _clock(self, handle: Any, kind: Any, target: Any, maximum: bool) -> int:
        k = value(kind)
        if not 0 <= k < len(_CLOCKS):
            return INVALID_ARGUMENT
        return self._uint(
            handle, target, lambda g: getattr(g.max_clocks_mhz if maximum else g.clocks_mhz, _CLOCKS[k])
        )

    def nvmlDeviceGetClockInfo(self, handle: Any, kind: Any, clock: Any) -> int:
        return self._clock(handle, kind, clock, maximum=False)

    def nvmlDeviceGetMaxClockInfo(self, handle: Any, kind: Any, clock: Any) -> int:
        return self._clock(handle, kind, clock, maximum=True)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any, reasons: Any) -> int:
        return self._uint(handle, reasons, lambda g: g.clock_event_reasons)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: Any, reasons: Any) -> int:
        return self._uint(handle, reasons, lambda g: g.clock_event_reasons)

    def nvmlDeviceGetTemperature(self, handle: Any, sensor: Any, temp: Any) -> int:
        if value(sensor) != pynvml.NVML_TEMPERATURE_GPU:
            return INVALID_ARGUMENT
        return self._uint(handle, temp, lambda g: g.temperature_c)

    def nvmlDeviceGetTemperatureThreshold(self, handle: Any, threshold: Any, temp: Any) -> int:
        k = value(threshold)
        if not 0 <= k < pynvml.NVML_TEMPERATURE_THRESHOLD_COUNT:
            return INVALID_ARGUMENT
        if k >= len(_THRESHOLDS):  # acoustic / GPS thresholds: not simulated
            return self._uint(handle, temp, lambda g: None)
        return self._uint(handle, temp, lambda g: getattr(g.temperature_thresholds_c, _THRESHOLDS[k]))

    def nvmlDeviceGetPowerUsage(self, handle: Any, power: Any) -> int:
        return self._uint(handle, power, lambda g: g.power.usage_mw)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any, limit: Any) -> int:
        return self._uint(handle, limit, lambda g: g.power.enforced_limit_mw)

    def nvmlDeviceGetPowerManagementLimit(self, handle: Any, limit: Any) -> int:
        return self._uint(handle, limit, lambda g: g.power.management_limit_mw)

    def energy_mj(self, gpu: Gpu) -> int | None:
        """The energy counter (mJ): the profile's value plus the power draw integrated over the clock."""
        if gpu.energy_mj is None:
            return None
        return gpu.energy_mj + int((gpu.power.usage_mw or 0) * self.clock.elapsed())

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any, energy: Any) -> int:
        return self._uint(handle, energy, self.energy_mj)

    # PCIe --------------------------------------------------------------------------------------

    def nvmlDeviceGetPcieThroughput(self, handle: Any, counter: Any, throughput: Any) -> int:
        k = value(counter)
        if k not in (pynvml.NVML_PCIE_UTIL_TX_BYTES, pynvml.NVML_PCIE_UTIL_RX_BYTES):
            return INVALID_ARGUMENT
        return self._uint(handle, throughput, lambda g: g.pcie.tx_kb_s if k == 0 else g.pcie.rx_kb_s)

    def nvmlDeviceGetPcieReplayCounter(self, handle: Any, counter: Any) -> int:
        return self._uint(handle, counter, lambda g: g.pcie.replay_counter)

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: Any, width: Any) -> int:
        return self._uint(handle, width, lambda g: g.pcie.link_width)

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: Any, gen: Any) -> int:
        return self._uint(handle, gen, lambda g: g.pcie.link_gen)

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: Any, width: Any) -> int:
        return self._uint(handle, width, lambda g: g.pcie.max_link_width)

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: Any, gen: Any) -> int:
        return self._uint(handle, gen, lambda g: g.pcie.max_link_gen)

    def nvmlDeviceGetGpuMaxPcieLinkGeneration(self, handle: Any, gen: Any) -> int:
        return self._uint(handle, gen, lambda g: g.pcie.gpu_max_link_gen)

    # memory health and modes -------------------------------------------------------------------

    def nvmlDeviceGetEccMode(self, handle: Any, current: Any, pending: Any) -> int:
        gpu, code = self._device(handle)
        if gpu is None:
            return code
        if gpu.ecc_mode is None:
            return NOT_SUPPORTED
        out(current).value, out(pending).value = int(gpu.ecc_mode.current), int(gpu.ecc_mode.pending)
        return SUCCESS

    def nvmlDeviceGetTotalEccErrors(self, handle: Any, error_type: Any, counter_type: Any, count: Any) -> int:
        kind, counter = value(error_type), value(counter_type)
        if kind not in (0, 1) or counter not in (0, 1):
            return INVALID_ARGUMENT
        key = f"{('volatile', 'aggregate')[counter]}_{('corrected', 'uncorrected')[kind]}"
        # shipped profiles hold null counters while ECC is off (assumed: NVML needs ECC enabled for them)
        return self._uint(handle, count, lambda g: getattr(g.ecc_errors, key) if g.ecc_errors else None)

    def nvmlDeviceGetRemappedRows(self, handle: Any, corr: Any, unc: Any, pending: Any, failure: Any) -> int:
        gpu, code = self._device(handle)
        if gpu is None:
            return code
        rows = gpu.remapped_rows
        if rows is None:
            return NOT_SUPPORTED
        out(corr).value, out(unc).value = rows.correctable, rows.uncorrectable
        out(pending).value, out(failure).value = int(rows.pending), int(rows.failure)
        return SUCCESS

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: Any, pending: Any) -> int:
        return self._uint(handle, pending, lambda g: g.retired_pages_pending)

    def nvmlDeviceGetPersistenceMode(self, handle: Any, mode: Any) -> int:
        return self._uint(handle, mode, lambda g: g.persistence_mode)

    def nvmlDeviceGetComputeMode(self, handle: Any, mode: Any) -> int:
        return self._uint(handle, mode, lambda g: g.compute_mode)

    # processes ---------------------------------------------------------------------------------

    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle: Any, count: Any, infos: Any) -> int:
        ref = self.ref(handle)
        if ref is None:
            return INVALID_ARGUMENT
        processes = self.gpu(ref).processes
        mig = self.mig_device(ref)
        if mig is not None:
            processes = tuple(
                p
                for p in processes
                if p.gpu_instance_id == mig.gpu_instance_id
                and p.compute_instance_id == mig.compute_instance_id
            )
        counter = out(count)
        room = counter.value
        counter.value = len(processes)
        if infos is None or room < len(processes):
            # the size query: nothing to copy when there is nothing running
            return SUCCESS if not processes else INSUFFICIENT_SIZE
        for i, process in enumerate(processes):
            entry = infos[i]
            entry.pid = self.process_pid(process)
            used = process.used_memory_bytes
            entry.usedGpuMemory = _NOT_AVAILABLE_ULL if used is None else used
            gi, ci = process.gpu_instance_id, process.compute_instance_id
            entry.gpuInstanceId = _NO_ID if gi is None else gi
            entry.computeInstanceId = _NO_ID if ci is None else ci
        return SUCCESS

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle: Any, count: Any, infos: Any) -> int:
        return self.nvmlDeviceGetComputeRunningProcesses_v3(handle, count, infos)

    # the driver's sample buffer ----------------------------------------------------------------

    def _sample_source(self, gpu: Gpu, kind: int) -> int | None:
        util = gpu.utilization_pct
        sources: dict[int, int | None] = {
            0: gpu.power.usage_mw,
            1: util.gpu if util else None,
            2: util.memory if util else None,
            3: 0 if util else None,
            4: 0 if util else None,
            5: gpu.clocks_mhz.sm,
            6: gpu.clocks_mhz.mem,
        }
        return sources.get(kind)

    def buffered_stamps(self, kind: int, last_seen_us: int) -> list[int]:
        """Timestamps (µs since the epoch) of the buffered samples newer than ``last_seen_us``."""
        period = SAMPLE_PERIOD_US[kind]
        newest = self.clock.wall_us() // period
        stamps = [k * period for k in range(newest - SAMPLE_BUFFER + 1, newest + 1)]
        return [s for s in stamps if s > last_seen_us]

    def nvmlDeviceGetSamples(
        self, handle: Any, sampling: Any, last_seen: Any, value_type: Any, count: Any, samples: Any
    ) -> int:
        gpu, code = self._device(handle)
        if gpu is None:
            return code
        kind = value(sampling)
        if kind > pynvml.NVML_OFA_UTILIZATION_SAMPLES:
            return INVALID_ARGUMENT
        reading = self._sample_source(gpu, kind)
        if reading is None:
            return NOT_SUPPORTED
        stamps = self.buffered_stamps(kind, value(last_seen))
        if not stamps:
            return NOT_FOUND  # nothing newer than last_seen
        out(value_type).value = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
        counter = out(count)
        if samples is None:
            counter.value = len(stamps)
            return SUCCESS
        taken = stamps[: min(counter.value, len(samples))]
        for i, stamp in enumerate(taken):
            samples[i].timeStamp = stamp
            samples[i].sampleValue.uiVal = reading
        counter.value = len(taken)
        return SUCCESS

    # field values ------------------------------------------------------------------------------

    def nvmlDeviceGetFieldValues(self, handle: Any, count: Any, values: Any) -> int:
        gpu, code = self._device(handle)
        if gpu is None:
            return code
        array = out(values)
        now = self.clock.wall_us()
        for i in range(value(count)):
            entry = array[i]
            name = _FIELD_IDS.get(int(entry.fieldId))
            entry.timestamp, entry.latencyUsec = now, 0
            if name is None or name not in gpu.fields:
                entry.nvmlReturn = NOT_SUPPORTED
                continue
            entry.nvmlReturn = SUCCESS
            if SERVED_FIELDS[name] == "uint":
                entry.valueType, entry.value.uiVal = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT, gpu.fields[name]
            else:
                entry.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
                entry.value.ullVal = gpu.fields[name]
        return SUCCESS

    # GPU performance monitoring ----------------------------------------------------------------

    def nvmlGpmQueryDeviceSupport(self, handle: Any, support: Any) -> int:
        gpu, code = self._device(handle)
        if gpu is None:
            return code
        target = out(support)
        if target.version != pynvml.NVML_GPM_SUPPORT_VERSION:
            return VERSION_MISMATCH
        if gpu.gpm is None:
            return NOT_SUPPORTED
        target.isSupportedDevice = int(gpu.gpm.supported)
        return SUCCESS

    def nvmlGpmSampleAlloc(self, sample: Any) -> int:
        addr = self.new_opaque()
        self.gpm_samples[addr] = GpmSample()
        set_pointer(out(sample), addr)
        return SUCCESS

    def nvmlGpmSampleFree(self, sample: Any) -> int:
        if self.gpm_samples.pop(address(sample) or 0, None) is None:
            return INVALID_ARGUMENT
        return SUCCESS

    def nvmlGpmSampleGet(self, handle: Any, sample: Any) -> int:
        gpu, code = self._device(handle)
        record = self.gpm_samples.get(address(sample) or 0)
        if gpu is None or record is None:
            return code if gpu is None else INVALID_ARGUMENT
        if gpu.gpm is None or not gpu.gpm.supported:
            return NOT_SUPPORTED
        ref = self.ref(handle)
        assert ref is not None
        record.gpu, record.taken_at = ref.gpu, self.clock.elapsed()
        return SUCCESS

    def nvmlGpmMetricsGet(self, request: Any) -> int:
        target = out(request)
        if target.version != pynvml.NVML_GPM_METRICS_GET_VERSION:
            return VERSION_MISMATCH
        first = self.gpm_samples.get(address(target.sample1) or 0)
        second = self.gpm_samples.get(address(target.sample2) or 0)
        if first is None or second is None or first.gpu is None or first.gpu != second.gpu:
            return INVALID_ARGUMENT  # both samples must be taken, on the same GPU
        if not 0 <= target.numMetrics <= pynvml.NVML_GPM_METRIC_MAX:
            return INVALID_ARGUMENT
        gpm = self.gpu(DeviceRef(first.gpu)).gpm
        metrics = gpm.metrics if gpm is not None else {}
        for i in range(target.numMetrics):
            metric = target.metrics[i]
            name = _GPM_IDS.get(int(metric.metricId))
            if name is None or name not in metrics:
                metric.nvmlReturn = NOT_SUPPORTED
                continue
            metric.nvmlReturn, metric.value = SUCCESS, metrics[name]
            metric.metricInfo.shortName = name.removeprefix("NVML_GPM_METRIC_").encode()
            metric.metricInfo.unit = b"%"
        return SUCCESS
