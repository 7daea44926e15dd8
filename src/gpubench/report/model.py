"""The report model: what the Markdown and HTML renderers show, as frozen dataclasses of plain text.

:class:`Table` cells are unescaped strings (each renderer escapes them), :class:`Plot` holds PNG bytes,
:class:`GpuPage` one device's page, :class:`Report` everything. :class:`ReportError` is a report that
cannot be made as asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gpubench.config import ReportSection
    from gpubench.report.load import LoadedRuns


class ReportError(ValueError):
    """A report that cannot be made as asked (exit 2); the message says what to do."""


@dataclass(frozen=True)
class Table:
    """A rendered-to-text table: cells are plain (unescaped) strings; renderers escape them."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    flagged: tuple[bool, ...] = ()  # one per row: drawn highlighted
    caption: str = ""


@dataclass(frozen=True)
class Plot:
    """One PNG figure: ``name`` is its file name under ``plots/``."""

    name: str
    title: str
    png: bytes = field(repr=False)
    caption: str = ""


@dataclass(frozen=True)
class GpuPage:
    """One device's page, keyed by UUID and titled with index, name and host."""

    uuid: str
    title: str
    anchor: str
    identity: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    benchmarks: Table
    telemetry: Table
    verification: Table
    verification_caption: str


@dataclass(frozen=True)
class Report:
    """Everything the Markdown and HTML renderers show."""

    generated: str
    results_dir: str
    loaded: LoadedRuns
    settings: ReportSection
    runs: Table
    ratios: Table
    trends: Table
    outliers: Table
    pages: tuple[GpuPage, ...]
    plots: tuple[Plot, ...]
    timeline_benchmark: str | None
    summary: tuple[str, ...]
    warnings: tuple[str, ...]
    # what ``gpubench report --fail-on`` gates on: "regression", "outlier", "missed-target" -> how many were
    # found; "missed-target" is None when no saved run recorded targets
    findings: Mapping[str, int | None] = field(default_factory=dict)
    # the fleet at a glance (by host, by model), the devices without a page, skipped entries by reason
    fleet_hosts: Table = Table((), ())
    fleet_models: Table = Table((), ())
    gpu_index: Table = Table((), ())
    skipped: Table = Table((), ())
