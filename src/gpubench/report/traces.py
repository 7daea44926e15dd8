"""Telemetry as columns of the tidy table: the sampler's summary flattened, and trace CSVs read back.

A benchmark's ``extra_info["telemetry"]`` holds the sampler's summary; :func:`flatten_telemetry` turns
it into ``<metric>_<stat>`` columns (``power_w_mean``, :func:`gpubench.metrics.summary_key`, the spelling the
saved JSON and the terminal table use). When a run kept only the trace file,
:func:`summary_from_trace` derives the same columns from it. Units: ``t`` in seconds, power in watts,
energy in joules, clocks in MHz, utilization in percent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpubench.metrics import STATS, canonical_key, summary_key
from gpubench.report.columns import BENCHMARK_COLUMNS, as_dict, finite_number

if TYPE_CHECKING:
    import pandas as pd

# columns are metrics.summary_key(metric, stat) (``power_w`` + mean -> ``power_w_mean``); keys of older files
# with the statistic before the unit are read through metrics.canonical_key.
# sampler summary keys kept as text columns, and keys that are not a property of the run
TELEMETRY_TEXT = {
    "status": "telemetry_status",
    "source": "telemetry_source",
    "energy_method": "telemetry_energy_method",
    "unavailable_reason": "telemetry_unavailable_reason",
}
TELEMETRY_RENAME = {
    "samples": "telemetry_samples",
    "interval_ms": "telemetry_interval_ms",
    "duration_s": "telemetry_duration_s",
}
TELEMETRY_SKIP = {
    "trace",
    "trace_in_results",
    "trace_error",
    "summary",
    "t_start",
    "t_stop",
    "device",
    "uuid",
    "clock",
    "available",
}


def _metric_column(name: str, stat: str | None) -> str:
    """``<metric>_<stat>`` (``power_w_mean``), or the cleaned name alone without a statistic."""
    clean = canonical_key(re.sub(r"[^0-9a-zA-Z_]+", "_", name).strip("_").lower() or "metric")
    if stat is None:
        return clean
    return summary_key(clean, re.sub(r"[^0-9a-zA-Z_]+", "_", stat).strip("_").lower())


def flatten_telemetry(telemetry: Mapping[str, Any]) -> dict[str, Any]:
    """Telemetry summary columns from ``extra_info["telemetry"]`` (the sampler's summary).

    Metric statistics are named ``<metric>_<stat>`` (``power_w_mean``, the sampler's own keys) whichever
    way they arrive: flat, nested ``{"power_w": {"mean": ..}}`` or in the older stat-before-unit spelling
    (read through :func:`gpubench.metrics.canonical_key`). ``energy_j`` keeps its name; ``samples``, ``interval_ms`` and ``duration_s``
    get a ``telemetry_`` prefix; ``status``, ``source`` and ``energy_method`` are kept as text;
    other text, lists and the perf_counter start and stop times are left out.
    """
    source = telemetry.get("summary") if isinstance(telemetry.get("summary"), Mapping) else telemetry
    out: dict[str, Any] = {}
    for raw_key, value in as_dict(source).items():
        key = canonical_key(str(raw_key))
        if key in TELEMETRY_SKIP:
            continue
        if key in TELEMETRY_TEXT:
            if isinstance(value, str) and value:
                out[TELEMETRY_TEXT[key]] = value
            continue
        if isinstance(value, Mapping):
            for stat, inner in value.items():
                number = finite_number(inner)
                if number is not None:
                    out[_metric_column(key, str(stat))] = number
            continue
        number = finite_number(value)
        if number is None:
            continue
        base, _, stat = key.rpartition("_")
        if stat in STATS and base:
            out[_metric_column(base, stat)] = number
        else:
            column = _metric_column(key, None)
            out[TELEMETRY_RENAME.get(column, column)] = number
    return {k: v for k, v in out.items() if k not in BENCHMARK_COLUMNS}


def resolve_trace(results_dir: Path, trace: str) -> Path | None:
    """The trace file a result names: relative to the results folder (or to the folder above it)."""
    recorded = Path(trace)
    candidates = (
        [recorded] if recorded.is_absolute() else [results_dir / recorded, results_dir.parent / recorded]
    )
    if not recorded.is_absolute() and recorded.parts and recorded.parts[0] == results_dir.name:
        candidates.append(results_dir.joinpath(*recorded.parts[1:]))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def read_trace(path: Path, uuid: str | None, warnings: list[str]) -> pd.DataFrame | None:
    """A telemetry trace (``t`` in seconds, metric columns); only the rows of ``uuid`` when it has them."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
        with open(path, "rb") as handle:  # a trace whose writer was stopped mid-row ends without a newline
            cut_off = handle.seek(0, 2) > 0 and (handle.seek(-1, 2) >= 0 and handle.read(1) not in b"\r\n")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())  # one line: pandas' parser errors span several
        warnings.append(f"skipped trace {path}: not a readable CSV ({reason})")
        return None
    if "t" not in frame.columns:
        warnings.append(f"skipped trace {path}: no 't' (time, seconds) column")
        return None
    if cut_off and len(frame):
        frame = frame.iloc[:-1]
        warnings.append(
            f"trace {path}: its last row is cut off; used the {len(frame)} complete samples before it"
        )
    if uuid and "uuid" in frame.columns and (frame["uuid"] == uuid).any():
        frame = frame[frame["uuid"] == uuid]
    frame = frame.assign(t=pd.to_numeric(frame["t"], errors="coerce")).dropna(subset=["t"])
    if frame.empty:
        warnings.append(f"skipped trace {path}: no samples")
        return None
    # annotated: pandas-stubs types DataFrame methods as returning Any when mypy targets Python 3.10
    ordered: pd.DataFrame = frame.sort_values("t").reset_index(drop=True)
    return ordered


def summary_from_trace(path: Path, uuid: str, warnings: list[str]) -> dict[str, float]:
    import pandas as pd

    frame = read_trace(path, uuid, warnings)
    if frame is None:
        return {}
    out: dict[str, float] = {}
    for column in frame.columns:
        if column in ("t", "device", "uuid"):
            continue
        values = pd.to_numeric(frame[column], errors="coerce").dropna()
        if values.empty:
            continue
        if column == "energy_j":  # a cumulative counter: energy used is last minus first
            out["energy_j"] = float(values.iloc[-1] - values.iloc[0])
            continue
        out[_metric_column(column, "mean")] = float(values.mean())
        out[_metric_column(column, "max")] = float(values.max())
    out["telemetry_samples"] = float(len(frame))
    return out
