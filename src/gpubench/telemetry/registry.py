"""The telemetry sources gpubench knows, in one list, and the choice of a source for a device.

Adding a source is one new module (a class meeting :class:`~gpubench.telemetry.source.RegisteredSource`
and :class:`~gpubench.telemetry.source.TelemetrySource`) and one line in :data:`SOURCES`. Imports the
source modules only.
"""

from __future__ import annotations

from gpubench.telemetry.nvml_source import NvmlSource
from gpubench.telemetry.psutil_source import PsutilSource
from gpubench.telemetry.source import RegisteredSource, TelemetrySource

SOURCES: tuple[RegisteredSource, ...] = (
    NvmlSource,  # cuda:N, through NVML, by GPU UUID
    PsutilSource,  # cpu: the host, through psutil
)
"""Asked in this order which one reads a device; the first that claims it is used. Also the order of the
columns in :func:`metric_docs`."""


def source_for(device: str, uuid: str | None) -> TelemetrySource | str:
    """The source for ``cpu`` or ``cuda:N``, or one line saying why there is none."""
    for source in SOURCES:
        made = source.for_device(device, uuid)
        if made is not None:
            return made
    return f"telemetry not available for {device}: no telemetry source reads this kind of device"


def metric_docs() -> list[tuple[str, str, str, str]]:
    """``(column, unit, nvidia-smi field, doc)`` for every trace column (for reports and the README).

    The nvidia-smi field carries its own unit where it differs (``memory.used (MiB)`` for a column in bytes);
    the doc ends with the NVML call. All from the one table, :mod:`gpubench.metrics`.
    """
    seen: dict[str, tuple[str, str, str, str]] = {}
    for source in SOURCES:
        for metric in source.metrics:
            key = metric.name if metric.name not in seen else f"{metric.name} ({source.kind})"
            smi = (
                f"{metric.smi} ({metric.smi_unit})"
                if metric.smi and metric.smi_unit != metric.unit
                else metric.smi
            )
            doc = f"{metric.doc} (NVML: {metric.nvml})" if metric.nvml else metric.doc
            seen[key] = (metric.name, metric.unit, smi, doc)
    return list(seen.values())
