"""One GPU through NVML: utilization, memory, power, energy, clocks, temperature, PCIe, clock event reasons
and, on GPUs that support it (Hopper and newer), the GPM metrics.

The source of every ``cuda:N`` device, found by its UUID. Its metrics are :data:`gpubench.metrics.NVML_METRICS`
(each names its unit, the ``nvidia-smi --query-gpu`` field it matches and the NVML call), so a number can be
checked by hand. Imports :mod:`gpubench.nvml` (the bindings, the clock event reasons), :mod:`gpubench.metrics`
and :mod:`.source`; never torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Literal

from gpubench import nvml
from gpubench.metrics import NVML_METRICS
from gpubench.telemetry.source import (
    SYSTEM_CLOCK,
    Clock,
    Reading,
    SourceLost,
    TelemetrySource,
    error_text,
    finite,
)

GPM_MIN_SPACING_S = 0.1
"""GPM metrics are computed from two GPM samples; NVML wants them more than 100 ms apart."""

CLOCK_EVENT_REASONS = nvml.CLOCK_EVENT_REASONS
"""``(name, bit)`` built from pynvml's ``nvmlClocksEventReason*`` constants (see :mod:`gpubench.nvml`)."""
decode_clock_event_reasons = nvml.decode_clock_event_reasons

# GPM metric column -> pynvml constant name
GPM_METRICS: tuple[tuple[str, str], ...] = (
    ("sm_active_pct", "NVML_GPM_METRIC_SM_UTIL"),
    ("sm_occupancy_pct", "NVML_GPM_METRIC_SM_OCCUPANCY"),
    ("tensor_active_pct", "NVML_GPM_METRIC_ANY_TENSOR_UTIL"),
    ("dram_bw_util_pct", "NVML_GPM_METRIC_DRAM_BW_UTIL"),
)


def driver_to_perf(timestamp_us: int, offset_s: float) -> float:
    """An NVML sample timestamp (host real-time clock, microseconds) on the perf_counter clock.

    ``offset_s`` is ``time.time() - time.perf_counter()`` (``clock.wall() - clock.perf()``) taken once
    when the source opened.
    """
    return timestamp_us / 1e6 - offset_s


_FATAL = (
    "UNINITIALIZED",
    "DRIVER_NOT_LOADED",
    "LIBRARY_NOT_FOUND",
    "GPU_IS_LOST",
    "RESET_REQUIRED",
    "LIB_RM_VERSION_MISMATCH",
)
_PERMANENT = ("NOT_SUPPORTED", "NO_PERMISSION", "FUNCTION_NOT_FOUND", "INVALID_ARGUMENT")
_VALUE_FIELDS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")  # by nvmlValueType_t


class NvmlSource:
    """One GPU through NVML, found by UUID (never by index: NVML and CUDA number GPUs differently).

    Each metric is read on its own: ``NotSupported``/``NoPermission``/``FunctionNotFound`` mark the metric
    not available for the rest of the run (and it is not asked again); other errors give None for that
    reading; ``GpuIsLost``/``Uninitialized``/driver errors raise :class:`SourceLost`. ``clock`` times the
    GPM spacing and moves NVML's sample timestamps onto the sampler's clock (see :func:`driver_to_perf`).
    """

    kind = "nvml"
    metrics = NVML_METRICS

    def __init__(self, uuid: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.uuid = nvml.normalise_uuid(uuid)
        self.clock = clock
        self.unavailable: dict[str, str] = {}
        self.notes: dict[str, str] = {}
        self.driver_series: dict[str, list[tuple[float, float]]] = {"gpu_util_pct": [], "mem_util_pct": []}
        self._nv: Any = None
        self._handle: Any = None
        self._offset_s = 0.0
        self._last_seen: dict[int, int] = {}
        self._use_driver_samples = True
        self._mem_version: Any = None
        self._gpm: list[Any] = []
        self._gpm_t = 0.0
        self._codes: dict[str, set[int]] = {}

    @classmethod
    def for_device(cls, device: str, uuid: str | None) -> TelemetrySource | str | None:
        """A source for every device but ``cpu`` (the host, read by psutil), found by the GPU's UUID."""
        if device == "cpu":
            return None
        if not uuid or uuid.startswith("cpu-"):
            return (
                f"telemetry not available for {device}: its GPU UUID is unknown (PyTorch did not report it), "
                "and NVML handles are only looked up by UUID"
            )
        return cls(uuid)

    # opening ----------------------------------------------------------------------------------

    def open(self) -> str | None:
        reason = nvml.init()
        if reason is not None:
            return f"telemetry not available: {reason}"
        self._nv = nv = nvml.module()
        self._codes = {
            "fatal": {getattr(nv, f"NVML_ERROR_{n}") for n in _FATAL if hasattr(nv, f"NVML_ERROR_{n}")},
            "permanent": {
                getattr(nv, f"NVML_ERROR_{n}") for n in _PERMANENT if hasattr(nv, f"NVML_ERROR_{n}")
            },
        }
        try:
            self._handle = nv.nvmlDeviceGetHandleByUUID(self.uuid)
        except Exception as exc:
            if getattr(exc, "value", None) == getattr(nv, "NVML_ERROR_NOT_FOUND", object()):
                return f"telemetry not available: NVML has no GPU with UUID {self.uuid} ({error_text(exc)})"
            return (
                f"telemetry not available: NVML could not look up the GPU with UUID {self.uuid} "
                f"({error_text(exc)})"
            )
        self._offset_s = self.clock.wall() - self.clock.perf()
        self._open_driver_samples()
        self._mem_version = getattr(nv, "nvmlMemory_v2", None)
        self._open_gpm()
        return None

    def _open_driver_samples(self) -> None:
        """Skip what the driver buffered before we started; fall back to polling where unsupported."""
        nv = self._nv
        for sampling in (nv.NVML_GPU_UTILIZATION_SAMPLES, nv.NVML_MEMORY_UTILIZATION_SAMPLES):
            try:
                _, samples = nv.nvmlDeviceGetSamples(self._handle, sampling, 0)
                self._last_seen[sampling] = max((int(s.timeStamp) for s in samples), default=0)
            except Exception as exc:
                if self._kind(exc) == "transient":  # NotFound: nothing buffered yet
                    self._last_seen[sampling] = int(self.clock.wall() * 1e6)
                    continue
                self._use_driver_samples = False
                self.notes["utilization"] = (
                    f"nvmlDeviceGetSamples: {error_text(exc)}; polling nvmlDeviceGetUtilizationRates instead"
                )
                return

    def _open_gpm(self) -> None:
        nv = self._nv
        try:
            support = nv.nvmlGpmQueryDeviceSupport(self._handle)
            if not support.isSupportedDevice:
                self._gpm_unavailable("this GPU does not support GPM (Hopper and newer do)")
                return
            first, second = nv.nvmlGpmSampleAlloc(), nv.nvmlGpmSampleAlloc()
            self._gpm = [first, second]
            nv.nvmlGpmSampleGet(self._handle, first)
            self._gpm_t = self.clock.perf()
        except Exception as exc:
            self._free_gpm()
            self._gpm_unavailable(f"GPM: {error_text(exc)}")

    def _gpm_unavailable(self, why: str) -> None:
        for name, _ in GPM_METRICS:
            self.unavailable.setdefault(name, why)

    def _free_gpm(self) -> None:
        for sample in self._gpm:
            with contextlib.suppress(Exception):
                self._nv.nvmlGpmSampleFree(sample)
        self._gpm = []

    # reading ----------------------------------------------------------------------------------

    def _kind(self, exc: BaseException) -> Literal["fatal", "permanent", "transient"]:
        if isinstance(exc, AttributeError):  # an older nvidia-ml-py without this function
            return "permanent"
        code = getattr(exc, "value", None)
        if code in self._codes.get("fatal", ()):
            return "fatal"
        if code in self._codes.get("permanent", ()):
            return "permanent"
        return "transient"

    def read(self) -> Reading:
        nv, h = self._nv, self._handle
        out: Reading = {m.name: None for m in self.metrics}
        steps: list[tuple[tuple[str, ...], Callable[[], Sequence[Any]]]] = []
        if self._use_driver_samples:
            steps.append(
                (
                    ("gpu_util_pct",),
                    lambda: (self._driver_mean(nv.NVML_GPU_UTILIZATION_SAMPLES, "gpu_util_pct"),),
                )
            )
            steps.append(
                (
                    ("mem_util_pct",),
                    lambda: (self._driver_mean(nv.NVML_MEMORY_UTILIZATION_SAMPLES, "mem_util_pct"),),
                )
            )
        else:
            steps.append((("gpu_util_pct", "mem_util_pct"), self._util_rates))
        steps += [
            (("mem_used_bytes", "mem_reserved_bytes"), self._memory),
            (("power_w",), lambda: (nv.nvmlDeviceGetPowerUsage(h) / 1000.0,)),
            (("energy_j",), lambda: (nv.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0,)),
            (("sm_clock_mhz",), lambda: (nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),)),
            (("mem_clock_mhz",), lambda: (nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM),)),
            (("temp_c",), lambda: (nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU),)),
            (("pcie_tx_kb_per_s",), lambda: (nv.nvmlDeviceGetPcieThroughput(h, nv.NVML_PCIE_UTIL_TX_BYTES),)),
            (("pcie_rx_kb_per_s",), lambda: (nv.nvmlDeviceGetPcieThroughput(h, nv.NVML_PCIE_UTIL_RX_BYTES),)),
            (("clock_event_reasons_mask",), self._clock_event_reasons),
        ]
        if self._gpm:
            steps.append((tuple(name for name, _ in GPM_METRICS), self._gpm_read))
        for names, step in steps:
            if all(n in self.unavailable for n in names):
                continue
            try:
                values = step()
            except Exception as exc:
                kind = self._kind(exc)
                if kind == "fatal":
                    msg = f"NVML stopped answering for {self.uuid}: {error_text(exc)}"
                    raise SourceLost(msg) from exc
                if kind == "permanent":
                    for n in names:
                        self.unavailable.setdefault(n, error_text(exc))
                continue
            for n, v in zip(names, values, strict=True):
                out[n] = finite(v)
        return out

    def _driver_mean(self, sampling: int, name: str) -> float | None:
        """Mean of the driver-buffered samples newer than the last one seen (None when none arrived)."""
        nv = self._nv
        try:
            value_type, samples = nv.nvmlDeviceGetSamples(
                self._handle, sampling, self._last_seen.get(sampling, 0)
            )
        except Exception as exc:
            if self._kind(exc) == "transient":  # NotFound: no new sample since the last reading
                return None
            if self._kind(exc) == "permanent":
                # the driver stopped offering samples: poll nvmlDeviceGetUtilizationRates from now on
                self._use_driver_samples = False
                self.notes["utilization"] = (
                    f"nvmlDeviceGetSamples: {error_text(exc)}; polling nvmlDeviceGetUtilizationRates instead"
                )
                return None
            raise
        fieldname = _VALUE_FIELDS[value_type] if 0 <= int(value_type) < len(_VALUE_FIELDS) else "uiVal"
        values: list[float] = []
        last = self._last_seen.get(sampling, 0)
        for sample in samples:
            stamp = int(sample.timeStamp)
            if stamp <= last and last:
                continue  # a driver that ignores lastSeenTimeStamp must not count a sample twice
            value = finite(getattr(sample.sampleValue, fieldname))
            if value is None:
                continue
            values.append(value)
            self.driver_series[name].append((driver_to_perf(stamp, self._offset_s), value))
        if samples:
            self._last_seen[sampling] = max(last, max(int(s.timeStamp) for s in samples))
        return sum(values) / len(values) if values else None

    def _util_rates(self) -> tuple[float, float]:
        rates = self._nv.nvmlDeviceGetUtilizationRates(self._handle)
        return (rates.gpu, rates.memory)

    def _memory(self) -> tuple[float | None, float | None]:
        nv = self._nv
        if self._mem_version is not None:
            try:
                info = nv.nvmlDeviceGetMemoryInfo(self._handle, self._mem_version)
                return (info.used, info.reserved)
            except Exception as exc:
                if self._kind(exc) != "permanent":
                    raise
                self._mem_version = None  # an older driver without nvmlDeviceGetMemoryInfo_v2
                self.notes["memory"] = (
                    f"memory info v2: {error_text(exc)}; v1 counts reserved memory as used"
                )
                self.unavailable.setdefault("mem_reserved_bytes", f"memory info v2: {error_text(exc)}")
        info = nv.nvmlDeviceGetMemoryInfo(self._handle)
        return (info.used, None)

    def _clock_event_reasons(self) -> tuple[int]:
        # the newer call, or the older one on drivers before 535 (see gpubench.nvml.clock_event_reasons)
        return (nvml.clock_event_reasons(self._handle),)

    def _gpm_read(self) -> tuple[float | None, ...]:
        nv = self._nv
        now = self.clock.perf()
        if now - self._gpm_t <= GPM_MIN_SPACING_S:
            return tuple(None for _ in GPM_METRICS)
        first, second = self._gpm
        nv.nvmlGpmSampleGet(self._handle, second)
        request = nv.c_nvmlGpmMetricsGet_t()
        request.version = nv.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(GPM_METRICS)
        request.sample1 = first
        request.sample2 = second
        for index, (_, constant) in enumerate(GPM_METRICS):
            request.metrics[index].metricId = getattr(nv, constant)
        nv.nvmlGpmMetricsGet(request)
        self._gpm = [second, first]  # the newer sample starts the next window
        self._gpm_t = now
        values: list[float | None] = []
        for index, (name, _) in enumerate(GPM_METRICS):
            metric = request.metrics[index]
            if int(metric.nvmlReturn) == int(nv.NVML_SUCCESS):
                values.append(finite(metric.value))
            else:
                values.append(None)
                if int(metric.nvmlReturn) in self._codes.get("permanent", ()):
                    self.unavailable.setdefault(
                        name, f"GPM metric not supported (NVML return {metric.nvmlReturn})"
                    )
        return tuple(values)

    def close(self) -> None:
        if self._nv is not None:
            self._free_gpm()
        self._handle = None
