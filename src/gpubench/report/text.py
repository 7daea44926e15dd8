"""Values as report text: numbers with their units, a dash for a missing value, control characters removed.

Shared by the analysis (the trend table's history column), the report pages, the plots and both
renderers. Imports nothing from the rest of the report.
"""

from __future__ import annotations

import unicodedata
from typing import Any

_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


def strip_controls(text: str) -> str:
    """Drop control characters (C0, DEL, C1) and bidirectional overrides; tabs and newlines become spaces."""
    out = []
    for char in text:
        if char in "\t\n\r":
            out.append(" ")
        elif unicodedata.category(char) == "Cc" or char in _BIDI:
            continue
        else:
            out.append(char)
    return "".join(out)


def format_seconds(value: float | None) -> str:
    if value is None or value != value:
        return "–"
    if value >= 1.0:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    if value >= 1e-6:
        return f"{value * 1e6:.3g} µs"
    return f"{value * 1e9:.3g} ns"


def format_number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    number = float(value)
    if abs(number) >= 10**digits:
        return f"{number:,.0f}"
    return f"{number:.{digits}g}"


# column name ending -> unit shown; rates first, so that ``_kb_per_s`` is not read as seconds
_METRIC_UNITS = (
    ("_kb_per_s", "KB/s"),
    ("_bytes_per_s", "B/s"),
    ("_pct", "%"),
    ("_w", "W"),
    ("_j", "J"),
    ("_mhz", "MHz"),
    ("_c", "°C"),
    ("_s", "s"),
)


# statistics a summary column ends with (``power_w_mean``): the unit comes just before them
_STATS = ("_mean", "_max", "_min", "_p50", "_p95", "_p99")


def format_metric(column: str, value: Any) -> str:
    """A telemetry value with the unit its metric name ends in (``power_w_mean`` in W; bytes in GiB)."""
    if value is None or value != value:
        return "–"
    for stat in _STATS:
        column = column.removesuffix(stat)
    if column.endswith("_bytes"):
        return f"{float(value) / 2**30:.2f} GiB"
    for suffix, unit in _METRIC_UNITS:
        if column.endswith(suffix):
            return f"{format_number(value)} {unit}"
    return format_number(value)


def format_pct(value: Any, signed: bool = False) -> str:
    if value is None or value != value:
        return "–"
    return f"{float(value):+.1f}%" if signed else f"{float(value):.0f}%"


def cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return str(value)


# a trend cell: a sparkline of the last SPARK_RUNS medians, then the last LAST_VALUES of them
SPARK_RUNS = 20
LAST_VALUES = 3
_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """Values as a line of block characters, lowest ▁ to highest █ (one character each)."""
    finite = [v for v in values if v == v]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = high - low
    return "".join(
        " " if v != v else _BARS[0 if span == 0 else min(7, int((v - low) / span * 7.999))] for v in values
    )


def trend_cell(medians: list[float], runs: int | None = None) -> str:
    """A GPU's medians across runs as one cell: the sparkline of the last :data:`SPARK_RUNS` (time per
    call, so up is slower), then the last :data:`LAST_VALUES` values and the number of runs (``runs``
    when ``medians`` holds only the most recent ones, else their count)."""
    recent = medians[-SPARK_RUNS:]
    total = len(medians) if runs is None else runs
    last = " → ".join(format_seconds(v) for v in recent[-LAST_VALUES:])
    if total <= LAST_VALUES:
        return last
    return f"{sparkline(recent)} … {last} ({total} runs)"
