"""Telemetry: the sampler beside every benchmark and health-check load phase, and the sources it reads.

Holds ``sampler`` (:class:`Sampler`: a background thread reading one source, timestamped on
``time.perf_counter`` unless given another :class:`Clock`, and its summary), ``registry`` (the list of
sources and the choice of one per device), ``nvml_source`` (a GPU through NVML), ``psutil_source`` (the
host), ``source`` (the contract every source meets, and the clock) and ``traces`` (the CSV trace files and
their names). May import :mod:`gpubench.nvml` and :mod:`gpubench.results`; never torch, and nothing later
in the pipeline (workloads, bench, report, the CLI). The names re-exported here are its public ones.
"""

from __future__ import annotations

from gpubench.metrics import NVML_METRICS, PSUTIL_METRICS
from gpubench.telemetry.nvml_source import (
    CLOCK_EVENT_REASONS,
    GPM_METRICS,
    GPM_MIN_SPACING_S,
    NvmlSource,
    decode_clock_event_reasons,
    driver_to_perf,
)
from gpubench.telemetry.psutil_source import MIN_CPU_WINDOW_S, PsutilSource
from gpubench.telemetry.registry import SOURCES, metric_docs, source_for
from gpubench.telemetry.sampler import CLOCK, DEFAULT_INTERVAL_MS, DEFAULT_INTERVAL_S, Sampler
from gpubench.telemetry.source import (
    SYSTEM_CLOCK,
    Clock,
    Metric,
    MetricKind,
    Reading,
    RegisteredSource,
    Sample,
    SourceLost,
    TelemetrySource,
)
from gpubench.telemetry.traces import trace_name

__all__ = [
    "CLOCK",
    "CLOCK_EVENT_REASONS",
    "DEFAULT_INTERVAL_MS",
    "DEFAULT_INTERVAL_S",
    "GPM_METRICS",
    "GPM_MIN_SPACING_S",
    "MIN_CPU_WINDOW_S",
    "NVML_METRICS",
    "PSUTIL_METRICS",
    "SOURCES",
    "SYSTEM_CLOCK",
    "Clock",
    "Metric",
    "MetricKind",
    "NvmlSource",
    "PsutilSource",
    "Reading",
    "RegisteredSource",
    "Sample",
    "Sampler",
    "SourceLost",
    "TelemetrySource",
    "decode_clock_event_reasons",
    "driver_to_perf",
    "metric_docs",
    "source_for",
    "trace_name",
]
