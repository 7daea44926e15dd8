"""The tidy table's columns, and how a value read from a saved JSON file becomes a cell.

:data:`BENCHMARK_COLUMNS` are the fixed columns of :attr:`LoadedRuns.benchmarks
<gpubench.report.load.LoadedRuns.benchmarks>` (telemetry summary columns follow them),
:data:`VERIFY_COLUMNS` those of the verification table, :data:`RUN_COLUMNS` those of the table of runs.
Units: times in seconds (``*_s``), throughput in the row's natural rate (``throughput_unit``).
``targets`` / ``targets_missed``: how many targets the case recorded in ``extra_info["targets"]`` and how
many of them it missed (empty when it recorded none).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

BENCHMARK_COLUMNS = (
    "run_id",
    "run_time",
    "host",
    "machine_id",
    "commit",
    "benchmark",
    "name",
    "case",
    "group",
    "device",
    "device_label",
    "requested_device",
    "fallback_note",
    "gpu_uuid",
    "gpu_name",
    "gpu_index",
    "gpu_pci_bus_id",
    "workload",
    "dtype",
    "size",
    "bytes",
    "flops",
    "items",
    "median_s",
    "mean_s",
    "stddev_s",
    "iqr_s",
    "min_s",
    "rounds",
    "items_per_s",
    "gbps",
    "tflops",
    "throughput",
    "throughput_unit",
    "copy_fraction",
    "matmul_fraction",
    "ceiling_fraction",
    "data_source",
    "timing_method",
    "targets",
    "targets_missed",
    "torch_version",
    "cuda_build",
    "driver_version",
    "trace",
    "source_file",
)
VERIFY_COLUMNS = (
    "run_id",
    "started",
    "finished",
    "host",
    "level",
    "exit_code",
    "device",
    "gpu_uuid",
    "gpu_name",
    "check",
    "verdict",
    "value",
    "threshold",
    "unit",
    "message",
    "remedy",
    "duration_s",
    "source_file",
)
RUN_COLUMNS = (
    "kind",
    "run_id",
    "run_time",
    "host",
    "devices",
    "configured_devices",
    "torch_version",
    "driver_version",
    "config_files",
    "source_file",
)


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON object as it is (read only: not copied, a saved run has a million of them in a fleet), another
    mapping as a dict, or an empty dict for anything else (a damaged file's list, text, null)."""
    if type(value) is dict:
        return value
    return dict(value) if isinstance(value, Mapping) else {}


def finite_number(value: Any) -> float | None:
    """A finite float, or None for anything else (text, bool, NaN, N/A written as null)."""
    if type(value) is float:  # the common case first: a report reads millions of them
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def as_text(value: Any) -> str | None:
    """Text for a cell: None stays None, objects and lists become sorted JSON, anything else ``str()``."""
    if value is None:
        return None
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)
