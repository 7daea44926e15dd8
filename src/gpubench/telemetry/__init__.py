"""Telemetry: a background sampler per device, its sources, summaries and trace files.

A :class:`Sampler` runs beside one benchmark (or one load phase of a health check) and reads a
:class:`TelemetrySource` every ``interval_s``: :class:`NvmlSource` for ``cuda:N`` (through NVML, the GPU
found by its UUID) and :class:`PsutilSource` for ``cpu``. What it cannot read is recorded as not available
(``None`` in a sample, an empty cell in the trace); the run goes on.

The clock
    Every timestamp is ``time.perf_counter()`` seconds, the clock pytest-benchmark times rounds with by
    default (``--benchmark-timer`` ``time.perf_counter``), so samples line up with benchmark rounds taken
    in the same process. NVML's driver-buffered utilization samples carry the host's real-time clock in
    microseconds; they are moved onto ``perf_counter`` with the offset ``time.time() - time.perf_counter()``
    measured when the source opens (see :func:`driver_to_perf`). Only a clock step (NTP) during the run
    could shift them, by the size of the step.

The cost
    Each reading costs the sampler thread CPU time (measured in every summary as ``sampler_cpu_pct``: the
    share of one core). ``bench/test_telemetry_overhead.py`` runs the same case with the sampler off and on
    at several intervals; :data:`DEFAULT_INTERVAL_MS` is chosen from that measurement (see its doc).

Summary keys (``Sampler.summary()``, stored in ``extra_info["telemetry"]``)
    ``available`` (bool), ``status`` (``ok``, ``partial``: the source failed mid-run, ``unavailable``),
    ``unavailable_reason`` (one line or None), ``source`` (``nvml``/``psutil``), ``device``, ``uuid``,
    ``clock``, ``interval_ms``, ``samples``, ``t_start``/``t_stop``/``duration_s`` (perf_counter seconds),
    ``util_pct_mean``/``util_pct_max`` (GPU utilization on GPUs, CPU utilization on ``cpu``),
    ``<metric>_mean`` and ``<metric>_max`` for every gauge metric (``mem_used_bytes_max`` is the peak
    memory), ``energy_j`` with ``energy_method`` (``nvml_total_energy_counter`` or ``power_integral``),
    ``clock_event_reasons_seen`` (decoded names), ``unavailable_metrics`` ({metric: why}),
    ``sampler_cpu_s``/``sampler_cpu_pct`` (CPU time of the sampling thread while the work ran, and that as a
    share of one core; the first and last readings, taken in the caller's thread before and after the
    work, are not counted).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from gpubench import nvml
from gpubench.results import atomic_write_text

DEFAULT_INTERVAL_MS = 250
"""Default sampling interval, chosen with ``bench/test_telemetry_overhead.py`` (psutil source, a 2-core
machine shared with other jobs). The sampling thread's CPU time while a case ran, as a share of one core:
2.4-4.3% at 10 ms, 0.9-1.7% at 50 ms, 0.57-1.25% at 100 ms (the pure-Python case, which contends for the
GIL, gave the high end), 0.04-0.06% at 500 ms; about 0.3-1.3 ms per reading. 100 ms was not reliably under
1%, so the default is 250 ms (see the README for the figures at 250 ms). Wall-clock on/off differences could
not be resolved below that machine's own noise, so the 1% is held to the sampler's CPU time: what it can
take from the work at most. 250 ms also suits NVML: GPM samples must be over 100 ms apart, and utilization
is read from the driver's own buffer (nvmlDeviceGetSamples), which keeps its finer samples between reads."""
DEFAULT_INTERVAL_S = DEFAULT_INTERVAL_MS / 1000.0
CLOCK = "time.perf_counter"
MIN_CPU_WINDOW_S = 0.01
"""psutil.cpu_percent over a shorter window than this (one kernel tick) is reported as not available."""
GPM_MIN_SPACING_S = 0.1
"""GPM metrics are computed from two GPM samples; NVML wants them more than 100 ms apart."""

MetricKind = Literal["gauge", "counter", "bitmask"]


@dataclass(frozen=True)
class Metric:
    """One column of a trace. ``name`` ends with its unit; ``smi`` is the matching nvidia-smi field."""

    name: str
    unit: str
    doc: str
    smi: str = ""
    kind: MetricKind = "gauge"


NVML_METRICS: tuple[Metric, ...] = (
    Metric(
        "gpu_util_pct",
        "%",
        "share of time one or more kernels ran; mean of the driver's buffered samples "
        "(nvmlDeviceGetSamples) taken since the previous reading, else nvmlDeviceGetUtilizationRates",
        "utilization.gpu",
    ),
    Metric(
        "mem_util_pct",
        "%",
        "share of time device memory was read or written (same sources as gpu_util_pct)",
        "utilization.memory",
    ),
    Metric(
        "mem_used_bytes",
        "bytes",
        "device memory in use by allocations, reserved memory excluded "
        "(nvmlDeviceGetMemoryInfo v2; v1 where v2 is missing, which counts reserved memory as used)",
        "memory.used",
    ),
    Metric(
        "mem_reserved_bytes",
        "bytes",
        "memory the driver and firmware reserve (v2 memory info only)",
        "memory.reserved",
    ),
    Metric("power_w", "W", "board power draw (nvmlDeviceGetPowerUsage, milliwatts / 1000)", "power.draw"),
    Metric(
        "energy_j",
        "J",
        "total energy since the driver loaded (nvmlDeviceGetTotalEnergyConsumption, "
        "millijoules / 1000; Volta and newer); no nvidia-smi --query-gpu field exists for it",
        "",
        "counter",
    ),
    Metric("sm_clock_mhz", "MHz", "SM clock (nvmlDeviceGetClockInfo NVML_CLOCK_SM)", "clocks.sm"),
    Metric("mem_clock_mhz", "MHz", "memory clock (nvmlDeviceGetClockInfo NVML_CLOCK_MEM)", "clocks.mem"),
    Metric(
        "temp_c",
        "degC",
        "GPU core temperature (nvmlDeviceGetTemperature NVML_TEMPERATURE_GPU)",
        "temperature.gpu",
    ),
    Metric(
        "pcie_tx_kb_per_s",
        "KB/s",
        "PCIe bytes sent by the GPU over NVML's 20 ms window "
        "(nvmlDeviceGetPcieThroughput NVML_PCIE_UTIL_TX_BYTES; nvidia-smi dmon -s t column txpci)",
        "",
    ),
    Metric(
        "pcie_rx_kb_per_s",
        "KB/s",
        "PCIe bytes received by the GPU (NVML_PCIE_UTIL_RX_BYTES; nvidia-smi dmon -s t column rxpci)",
        "",
    ),
    Metric(
        "clock_event_reasons_mask",
        "bitmask",
        "why clocks are held down "
        "(nvmlDeviceGetCurrentClocksEventReasons; decoded by decode_clock_event_reasons)",
        "clocks_event_reasons.active",
        "bitmask",
    ),
    Metric(
        "sm_active_pct",
        "%",
        "GPM: share of SMs busy (NVML_GPM_METRIC_SM_UTIL; Hopper and newer; nvidia-smi dmon --gpm-metrics 2)",
        "",
    ),
    Metric(
        "sm_occupancy_pct",
        "%",
        "GPM: active warps vs the theoretical maximum (NVML_GPM_METRIC_SM_OCCUPANCY; "
        "nvidia-smi dmon --gpm-metrics 3)",
        "",
    ),
    Metric(
        "tensor_active_pct",
        "%",
        "GPM: share of time SMs ran any tensor-core instruction "
        "(NVML_GPM_METRIC_ANY_TENSOR_UTIL; nvidia-smi dmon --gpm-metrics 5)",
        "",
    ),
    Metric(
        "dram_bw_util_pct",
        "%",
        "GPM: DRAM bandwidth used vs the theoretical maximum "
        "(NVML_GPM_METRIC_DRAM_BW_UTIL; nvidia-smi dmon --gpm-metrics 10)",
        "",
    ),
)

PSUTIL_METRICS: tuple[Metric, ...] = (
    Metric("cpu_util_pct", "%", "all CPUs, since the previous reading (psutil.cpu_percent(interval=None))"),
    Metric("cpu_freq_mhz", "MHz", "current CPU frequency, mean over cores (psutil.cpu_freq)"),
    Metric("mem_used_bytes", "bytes", "host memory in use: total - available (psutil.virtual_memory)"),
    Metric(
        "process_rss_bytes", "bytes", "resident memory of this process (psutil.Process().memory_info().rss)"
    ),
)

# name as in nvidia-smi's clocks_event_reasons.<name> fields -> bit (nvmlClocksEventReason* in nvml.h)
CLOCK_EVENT_REASONS: tuple[tuple[str, int], ...] = (
    ("gpu_idle", 0x1),
    ("applications_clocks_setting", 0x2),
    ("sw_power_cap", 0x4),
    ("hw_slowdown", 0x8),
    ("sync_boost", 0x10),
    ("sw_thermal_slowdown", 0x20),
    ("hw_thermal_slowdown", 0x40),
    ("hw_power_brake_slowdown", 0x80),
    ("display_clock_setting", 0x100),
)

# GPM metric column -> pynvml constant name
GPM_METRICS: tuple[tuple[str, str], ...] = (
    ("sm_active_pct", "NVML_GPM_METRIC_SM_UTIL"),
    ("sm_occupancy_pct", "NVML_GPM_METRIC_SM_OCCUPANCY"),
    ("tensor_active_pct", "NVML_GPM_METRIC_ANY_TENSOR_UTIL"),
    ("dram_bw_util_pct", "NVML_GPM_METRIC_DRAM_BW_UTIL"),
)

Reading = dict[str, float | None]


def decode_clock_event_reasons(mask: int) -> tuple[str, ...]:
    """Names of the set bits of an NVML clock-event-reasons mask; unknown bits as ``unknown_0x...``."""
    names = [name for name, bit in CLOCK_EVENT_REASONS if mask & bit]
    rest = mask & ~sum(bit for _, bit in CLOCK_EVENT_REASONS)
    bit = 1
    while rest:
        if rest & bit:
            names.append(f"unknown_{bit:#x}")
            rest &= ~bit
        bit <<= 1
    return tuple(names)


def driver_to_perf(timestamp_us: int, offset_s: float) -> float:
    """An NVML sample timestamp (host real-time clock, microseconds) on the perf_counter clock.

    ``offset_s`` is ``time.time() - time.perf_counter()`` taken once when the source opened.
    """
    return timestamp_us / 1e6 - offset_s


class SourceLost(RuntimeError):
    """The source can give no further readings (the GPU fell off the bus, NVML was shut down...)."""


class TelemetrySource(Protocol):
    """Where readings come from. ``open`` returns None, or one line saying why telemetry is not available."""

    kind: str
    metrics: tuple[Metric, ...]
    unavailable: dict[str, str]

    def open(self) -> str | None: ...

    def read(self) -> Reading: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Sample:
    """One reading: ``t`` in perf_counter seconds (when the reading began); values by metric name."""

    t: float
    values: Mapping[str, float | None]


def _finite(value: Any) -> float | None:
    """A reading as a finite float, else None (NaN and inf cannot go into JSON results)."""
    if value is None or value is nvml.NA:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --- psutil -------------------------------------------------------------------------------------


class PsutilSource:
    """CPU utilization, frequency and memory of the host through psutil (for the ``cpu`` device)."""

    kind = "psutil"
    metrics = PSUTIL_METRICS

    def __init__(self) -> None:
        self.unavailable: dict[str, str] = {}
        self._psutil: Any = None
        self._process: Any = None
        self._last_cpu_call = 0.0

    def open(self) -> str | None:
        try:
            import psutil
        except Exception as exc:
            return f"telemetry not available: psutil cannot be imported ({exc}); pip install psutil"
        self._psutil = psutil
        try:
            self._process = psutil.Process()
            psutil.cpu_percent(interval=None)  # the first call only starts the measurement window
            self._last_cpu_call = time.perf_counter()
        except Exception as exc:
            return f"telemetry not available: psutil cannot read this host ({type(exc).__name__}: {exc})"
        return None

    def read(self) -> Reading:
        ps = self._psutil
        readers: tuple[tuple[str, Callable[[], Any]], ...] = (
            ("cpu_util_pct", self._cpu_percent),
            ("cpu_freq_mhz", lambda: ps.cpu_freq().current),
            ("mem_used_bytes", lambda: (lambda vm: vm.total - vm.available)(ps.virtual_memory())),
            ("process_rss_bytes", lambda: self._process.memory_info().rss),
        )
        out: Reading = {}
        for name, reader in readers:
            if name in self.unavailable:
                out[name] = None
                continue
            try:
                out[name] = _finite(reader())
            except Exception as exc:  # psutil.Error, OSError, cpu_freq() returning None, ...
                self.unavailable[name] = f"{type(exc).__name__}: {exc}"
                out[name] = None
        return out

    def _cpu_percent(self) -> float | None:
        now = time.perf_counter()
        window = now - self._last_cpu_call
        value = self._psutil.cpu_percent(interval=None)
        self._last_cpu_call = now
        # /proc/stat counts in 10 ms ticks: a shorter window reads 0 % or 100 %, which is noise
        return float(value) if window >= MIN_CPU_WINDOW_S else None

    def close(self) -> None:
        self._process = None


# --- NVML ---------------------------------------------------------------------------------------

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


def _error_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text}".rstrip(": ")


class NvmlSource:
    """One GPU through NVML, found by UUID (never by index: NVML and CUDA number GPUs differently).

    Each metric is read on its own: ``NotSupported``/``NoPermission``/``FunctionNotFound`` mark the metric
    not available for the rest of the run (and it is not asked again); other errors give None for that
    reading; ``GpuIsLost``/``Uninitialized``/driver errors raise :class:`SourceLost`.
    """

    kind = "nvml"
    metrics = NVML_METRICS

    def __init__(self, uuid: str) -> None:
        self.uuid = nvml.normalise_uuid(uuid)
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
            return f"telemetry not available: NVML has no GPU with UUID {self.uuid} ({_error_text(exc)})"
        self._offset_s = time.time() - time.perf_counter()
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
                    self._last_seen[sampling] = int(time.time() * 1e6)
                    continue
                self._use_driver_samples = False
                self.notes["utilization"] = (
                    f"nvmlDeviceGetSamples: {_error_text(exc)}; polling nvmlDeviceGetUtilizationRates instead"
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
            self._gpm_t = time.perf_counter()
        except Exception as exc:
            self._free_gpm()
            self._gpm_unavailable(f"GPM: {_error_text(exc)}")

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
                    msg = f"NVML stopped answering for {self.uuid}: {_error_text(exc)}"
                    raise SourceLost(msg) from exc
                if kind == "permanent":
                    for n in names:
                        self.unavailable.setdefault(n, _error_text(exc))
                continue
            for n, v in zip(names, values, strict=True):
                out[n] = _finite(v)
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
                    f"nvmlDeviceGetSamples: {_error_text(exc)}; polling nvmlDeviceGetUtilizationRates instead"
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
            value = _finite(getattr(sample.sampleValue, fieldname))
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
                    f"memory info v2: {_error_text(exc)}; v1 counts reserved memory as used"
                )
                self.unavailable.setdefault("mem_reserved_bytes", f"memory info v2: {_error_text(exc)}")
        info = nv.nvmlDeviceGetMemoryInfo(self._handle)
        return (info.used, None)

    def _clock_event_reasons(self) -> tuple[int]:
        nv = self._nv
        fn = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if fn is None:  # nvidia-ml-py before 12.535 only has the older name
            fn = nv.nvmlDeviceGetCurrentClocksThrottleReasons
        return (int(fn(self._handle)),)

    def _gpm_read(self) -> tuple[float | None, ...]:
        nv = self._nv
        now = time.perf_counter()
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
                values.append(_finite(metric.value))
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


# --- the sampler ----------------------------------------------------------------------------------


def source_for(device: str, uuid: str | None) -> TelemetrySource | str:
    """The source for ``cpu`` or ``cuda:N``, or one line saying why there is none."""
    if device == "cpu":
        return PsutilSource()
    if not uuid or uuid.startswith("cpu-"):
        return (
            f"telemetry not available for {device}: its GPU UUID is unknown (PyTorch did not report it), "
            "and NVML handles are only looked up by UUID"
        )
    return NvmlSource(uuid)


class _NoSource:
    kind = "none"
    metrics: tuple[Metric, ...] = ()

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.unavailable: dict[str, str] = {}

    def open(self) -> str | None:
        return self.reason

    def read(self) -> Reading:
        return {}

    def close(self) -> None:
        return None


@dataclass
class _Run:
    t_start: float | None = None
    t_stop: float | None = None
    cpu_s: float = 0.0
    failure: str | None = None
    rows: list[Sample] = field(default_factory=list)


class Sampler:
    """Samples one device on a background thread from :meth:`start` to :meth:`stop`.

    ``with Sampler("cuda:1", uuid) as s: work()`` then ``s.summary()`` and ``s.write_trace(path)``.
    A source that cannot open leaves the sampler not :attr:`available` with a one-line :attr:`reason`;
    a source that fails mid-run stops sampling (status ``partial``) while the measured work goes on.
    """

    def __init__(
        self,
        device: str,
        uuid: str | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        source: TelemetrySource | None = None,
    ) -> None:
        if not interval_s > 0:
            msg = f"interval_s must be > 0 seconds, got {interval_s!r}; telemetry.interval_ms sets it"
            raise ValueError(msg)
        self.device = device
        self.uuid = uuid
        self.interval_s = float(interval_s)
        made = source if source is not None else source_for(device, uuid)
        self.source: TelemetrySource = _NoSource(made) if isinstance(made, str) else made
        self.reason: str | None = None
        self._run = _Run()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened = False

    # lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Sampler:
        """Open the source, take the first sample now, then sample every ``interval_s`` until stop()."""
        if self._thread is not None or self._opened:
            msg = "this Sampler was already started; make a new Sampler per measured phase"
            raise RuntimeError(msg)
        try:
            reason = self.source.open()
        except Exception as exc:  # a source must not end the run, even when it breaks its contract
            reason = f"telemetry not available: {self.source.kind} source failed to open ({_error_text(exc)})"
        if reason is not None:
            self.reason = reason.splitlines()[0] if reason else "telemetry not available"
            return self
        self._opened = True
        self._run.t_start = time.perf_counter()
        self._tick()
        if self._run.failure is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"gpubench-telemetry-{self.device}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (one last sample now, so the window covers the work) and close the source."""
        if not self._opened or self._run.t_stop is not None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 10.0)
            if self._thread.is_alive() and self._run.failure is None:
                self._run.failure = (
                    "the sampling thread did not stop within 10 s (a reading hung); samples kept"
                )
        if self._run.failure is None:
            self._tick()
        with contextlib.suppress(Exception):
            self.source.close()
        self._run.t_stop = time.perf_counter()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        cpu0 = time.thread_time()
        assert self._run.t_start is not None
        due = self._run.t_start + self.interval_s
        while not self._stop.wait(max(0.0, due - time.perf_counter())):
            if not self._tick():
                break
            due += self.interval_s
            now = time.perf_counter()
            if due < now:  # a slow reading: skip the missed ticks instead of bursting
                due = now + self.interval_s
        self._run.cpu_s += time.thread_time() - cpu0

    def _tick(self) -> bool:
        t = time.perf_counter()
        try:
            values = self.source.read()
        except Exception as exc:
            why = str(exc) if isinstance(exc, SourceLost) else _error_text(exc)
            self._run.failure = f"sampling stopped after {len(self._run.rows)} samples: {why}"
            return False
        self._run.rows.append(Sample(t, {k: _finite(v) for k, v in values.items()}))
        return True

    # results ------------------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """True when at least one sample was taken."""
        return bool(self._run.rows)

    @property
    def samples(self) -> tuple[Sample, ...]:
        return tuple(self._run.rows)

    @property
    def failure(self) -> str | None:
        """Why sampling stopped early (the source failed mid-run), or None."""
        return self._run.failure

    def columns(self) -> list[str]:
        """Trace columns: ``t``, ``device``, ``uuid`` and one per metric of the source (unit in the name)."""
        return ["t", "device", "uuid", *(m.name for m in self.source.metrics)]

    def summary(self) -> dict[str, Any]:
        """Means, maxima, energy and clock-event reasons of this run as JSON-ready values (see module doc)."""
        rows = self._run.rows
        status = "unavailable" if not rows else ("partial" if self._run.failure else "ok")
        out: dict[str, Any] = {
            "available": bool(rows),
            "status": status,
            "unavailable_reason": self.reason or self._run.failure,
            "source": self.source.kind,
            "device": self.device,
            "uuid": self.uuid,
            "clock": CLOCK,
            "interval_ms": round(self.interval_s * 1000.0, 3),
            "samples": len(rows),
        }
        if not rows:
            return out
        t_start = self._run.t_start if self._run.t_start is not None else rows[0].t
        t_stop = self._run.t_stop if self._run.t_stop is not None else rows[-1].t
        duration = max(t_stop - t_start, 0.0)
        out.update({"t_start": t_start, "t_stop": t_stop, "duration_s": duration})
        series = getattr(self.source, "driver_series", {})
        for metric in self.source.metrics:
            if metric.kind != "gauge":
                continue
            values = [v for v in (r.values.get(metric.name) for r in rows) if v is not None]
            fine = [v for _, v in series.get(metric.name, ())]
            values = fine or values  # the driver's own buffered samples are finer than our readings
            out[f"{metric.name}_mean"] = sum(values) / len(values) if values else None
            out[f"{metric.name}_max"] = max(values) if values else None
        primary = "gpu_util_pct" if self.source.kind == "nvml" else "cpu_util_pct"
        out["util_pct_mean"] = out.get(f"{primary}_mean")
        out["util_pct_max"] = out.get(f"{primary}_max")
        out["energy_j"], out["energy_method"] = _energy(rows)
        seen: list[str] = []
        for row in rows:
            mask = row.values.get("clock_event_reasons_mask")
            if mask is not None:
                for name in decode_clock_event_reasons(int(mask)):
                    if name not in seen:
                        seen.append(name)
        has_reasons = any(m.name == "clock_event_reasons_mask" for m in self.source.metrics)
        out["clock_event_reasons_seen"] = seen if has_reasons else None
        out["unavailable_metrics"] = dict(self.source.unavailable)
        notes = getattr(self.source, "notes", None)
        if notes:
            out["notes"] = dict(notes)
        out["sampler_cpu_s"] = self._run.cpu_s
        out["sampler_cpu_pct"] = 100.0 * self._run.cpu_s / duration if duration > 0 else None
        return out

    def trace_text(self) -> str:
        """The trace as CSV text: one row per sample, empty cells for readings not available."""
        cols = self.columns()
        lines = [",".join(cols)]
        names = cols[3:]
        uuid = _csv_cell(self.uuid or "")
        device = _csv_cell(self.device)
        for row in self._run.rows:
            cells = [f"{row.t:.6f}", device, uuid]
            for name in names:
                value = row.values.get(name)
                cells.append("" if value is None else _number(value))
            lines.append(",".join(cells))
        return "\n".join(lines) + "\n"

    def write_trace(self, path: Path) -> Path:
        """Write the CSV trace atomically (temporary file and rename); returns ``path``."""
        return atomic_write_text(Path(path), self.trace_text())


def _energy(rows: Sequence[Sample]) -> tuple[float | None, str | None]:
    """Energy over the run: the NVML counter difference when it was read, else the power integral."""
    counter = [v for v in (r.values.get("energy_j") for r in rows) if v is not None]
    if len(counter) >= 2 and counter[-1] >= counter[0]:  # a counter reset (driver reload) reads backwards
        return counter[-1] - counter[0], "nvml_total_energy_counter"
    power = [(r.t, p) for r in rows if (p := r.values.get("power_w")) is not None]
    if len(power) >= 2:
        joules = sum((t1 - t0) * (p0 + p1) / 2.0 for (t0, p0), (t1, p1) in itertools.pairwise(power))
        return joules, "power_integral"
    return None, None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def _csv_cell(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def trace_name(nodeid: str, max_len: int = 120) -> str:
    """A file name for a test's trace: ``test_ops.py__test_add_cpu-f32_.csv``-like, unique per node id."""
    base = nodeid.split("/")[-1]
    safe = _UNSAFE.sub("_", base).strip("._") or "benchmark"
    if len(safe) > max_len or safe != base:
        digest = hashlib.sha1(nodeid.encode("utf-8")).hexdigest()[:8]
        safe = f"{safe[:max_len]}-{digest}"
    return f"{safe}.csv"


def metric_docs() -> list[tuple[str, str, str, str]]:
    """``(column, unit, nvidia-smi field, doc)`` for every trace column (for reports and the README)."""
    seen: dict[str, tuple[str, str, str, str]] = {}
    for metric in (*NVML_METRICS, *PSUTIL_METRICS):
        key = metric.name if metric.name not in seen else f"{metric.name} (cpu)"
        seen[key] = (metric.name, metric.unit, metric.smi, metric.doc)
    return list(seen.values())
