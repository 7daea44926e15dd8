"""One definition of every telemetry metric: its name (unit last), unit, nvidia-smi field and NVML call.

The sampler's sources read these metrics (:mod:`gpubench.telemetry`), the trace CSV's header is their names,
the sampler's summary keys are ``<name>_<stat>`` (:func:`summary_key`: ``power_w_mean``, as saved in
``extra_info["telemetry"]``), and the report's tidy table uses the same keys as columns. Memory is in bytes
(the name says so); nvidia-smi's ``memory.*`` fields are MiB (``smi_unit``; divide by ``smi_scale``).
Spellings the report met in older files (the statistic before the unit) are read through
:func:`canonical_key`. Imports only the standard library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MetricKind = Literal["gauge", "counter", "bitmask"]


@dataclass(frozen=True)
class Metric:
    """One metric: a trace column and the ``<name>_<stat>`` summary keys.

    ``name`` ends with its unit; ``smi`` is the matching ``nvidia-smi --query-gpu`` field ("" when none),
    shown in ``smi_unit`` (``smi_scale`` of this metric's units make one of those); ``nvml`` the NVML call.
    """

    name: str
    unit: str
    doc: str
    smi: str = ""
    kind: MetricKind = "gauge"
    nvml: str = ""
    smi_unit: str = ""
    smi_scale: float = 1.0

    def to_smi(self, value: float) -> float:
        """A reading in the unit nvidia-smi prints for :attr:`smi` (bytes -> MiB for memory)."""
        return value / self.smi_scale


MIB = float(2**20)

NVML_METRICS: tuple[Metric, ...] = (
    Metric(
        "gpu_util_pct",
        "%",
        "share of time one or more kernels ran; mean of the driver's buffered samples taken since the previous "
        "reading, else nvmlDeviceGetUtilizationRates",
        "utilization.gpu",
        nvml="nvmlDeviceGetSamples(NVML_GPU_UTILIZATION_SAMPLES)",
        smi_unit="%",
    ),
    Metric(
        "mem_util_pct",
        "%",
        "share of time device memory was read or written (same sources as gpu_util_pct)",
        "utilization.memory",
        nvml="nvmlDeviceGetSamples(NVML_MEMORY_UTILIZATION_SAMPLES)",
        smi_unit="%",
    ),
    Metric(
        "mem_used_bytes",
        "bytes",
        "device memory in use by allocations, reserved memory excluded (memory info v2; v1 where v2 is "
        "missing, which counts reserved memory as used)",
        "memory.used",
        nvml="nvmlDeviceGetMemoryInfo",
        smi_unit="MiB",
        smi_scale=MIB,
    ),
    Metric(
        "mem_reserved_bytes",
        "bytes",
        "memory the driver and firmware reserve (v2 memory info only)",
        "memory.reserved",
        nvml="nvmlDeviceGetMemoryInfo",
        smi_unit="MiB",
        smi_scale=MIB,
    ),
    Metric(
        "power_w",
        "W",
        "board power draw (milliwatts / 1000)",
        "power.draw",
        nvml="nvmlDeviceGetPowerUsage",
        smi_unit="W",
    ),
    Metric(
        "energy_j",
        "J",
        "total energy since the driver loaded (millijoules / 1000; Volta and newer); no nvidia-smi "
        "--query-gpu field exists for it",
        "",
        "counter",
        nvml="nvmlDeviceGetTotalEnergyConsumption",
    ),
    Metric(
        "sm_clock_mhz",
        "MHz",
        "SM clock",
        "clocks.sm",
        nvml="nvmlDeviceGetClockInfo(NVML_CLOCK_SM)",
        smi_unit="MHz",
    ),
    Metric(
        "mem_clock_mhz",
        "MHz",
        "memory clock",
        "clocks.mem",
        nvml="nvmlDeviceGetClockInfo(NVML_CLOCK_MEM)",
        smi_unit="MHz",
    ),
    Metric(
        "temp_c",
        "degC",
        "GPU core temperature",
        "temperature.gpu",
        nvml="nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)",
        smi_unit="degC",
    ),
    Metric(
        "pcie_tx_kb_per_s",
        "KB/s",
        "PCIe bytes sent by the GPU over NVML's 20 ms window (nvidia-smi dmon -s t column txpci)",
        "",
        nvml="nvmlDeviceGetPcieThroughput(NVML_PCIE_UTIL_TX_BYTES)",
    ),
    Metric(
        "pcie_rx_kb_per_s",
        "KB/s",
        "PCIe bytes received by the GPU (nvidia-smi dmon -s t column rxpci)",
        "",
        nvml="nvmlDeviceGetPcieThroughput(NVML_PCIE_UTIL_RX_BYTES)",
    ),
    Metric(
        "clock_event_reasons_mask",
        "bitmask",
        "why clocks are held down (decoded by gpubench.nvml.decode_clock_event_reasons; the older "
        "nvmlDeviceGetCurrentClocksThrottleReasons before driver 535)",
        "clocks_event_reasons.active",
        "bitmask",
        nvml="nvmlDeviceGetCurrentClocksEventReasons",
        smi_unit="bitmask",
    ),
    Metric(
        "sm_active_pct",
        "%",
        "GPM: share of SMs busy (Hopper and newer; nvidia-smi dmon --gpm-metrics 2)",
        "",
        nvml="nvmlGpmMetricsGet(NVML_GPM_METRIC_SM_UTIL)",
    ),
    Metric(
        "sm_occupancy_pct",
        "%",
        "GPM: active warps vs the theoretical maximum (nvidia-smi dmon --gpm-metrics 3)",
        "",
        nvml="nvmlGpmMetricsGet(NVML_GPM_METRIC_SM_OCCUPANCY)",
    ),
    Metric(
        "tensor_active_pct",
        "%",
        "GPM: share of time SMs ran any tensor-core instruction (nvidia-smi dmon --gpm-metrics 5)",
        "",
        nvml="nvmlGpmMetricsGet(NVML_GPM_METRIC_ANY_TENSOR_UTIL)",
    ),
    Metric(
        "dram_bw_util_pct",
        "%",
        "GPM: DRAM bandwidth used vs the theoretical maximum (nvidia-smi dmon --gpm-metrics 10)",
        "",
        nvml="nvmlGpmMetricsGet(NVML_GPM_METRIC_DRAM_BW_UTIL)",
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

STATS = ("mean", "max", "min", "p50", "p95", "p99")
"""Statistics a summary key may carry; the sampler writes ``mean`` and ``max``."""

UNIT_SUFFIXES = ("bytes_per_s", "kb_per_s", "pct", "mhz", "bytes", "kbps", "mbps", "w", "j", "c", "s")
"""Unit endings of metric names, longest first."""

_LEGACY = re.compile(rf"^(?P<base>.+)_(?P<stat>{'|'.join(STATS)})_(?P<unit>{'|'.join(UNIT_SUFFIXES)})$")


def summary_key(name: str, stat: str) -> str:
    """The one spelling of a metric statistic: ``<metric>_<stat>`` (``power_w_mean``)."""
    return f"{name}_{stat}"


def canonical_key(key: str) -> str:
    """``key`` in the one spelling: ``temp_max_c`` (stat before the unit) -> ``temp_c_max``."""
    match = _LEGACY.match(key)
    if match is None:
        return key
    return summary_key(f"{match['base']}_{match['unit']}", match["stat"])


def all_metrics() -> tuple[Metric, ...]:
    """Every metric, one per name (the NVML definition first)."""
    seen: dict[str, Metric] = {}
    for metric in (*NVML_METRICS, *PSUTIL_METRICS):
        seen.setdefault(metric.name, metric)
    return tuple(seen.values())
