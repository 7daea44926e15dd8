"""Per-GPU reports from saved runs (``gpubench report``, ``nox -s report``).

A pipeline of small steps, each returning what the next one reads:

1. :func:`load_runs` reads every saved run under ``results/`` into one tidy pandas table (one row per
   benchmark, device and run, with GPU identity columns and telemetry summaries) plus a table of
   verification verdicts. Damaged files (empty, truncated, not JSON, wrong schema) are skipped with a
   warning naming each one; the rest is still reported.
2. :func:`ratio_table`, :func:`trend_table` and :func:`outlier_table` derive the side-by-side device
   comparison (``cuda:1 / cuda:0``), regressions against the previous run and GPUs slower than their
   same-model siblings.
3. :func:`build_report` adds per-GPU pages and plots; :func:`render_markdown` and
   :func:`gpubench.report.html.render_html` turn it into text; :func:`write_report` writes
   ``report.md``, ``report.html``, ``tidy.csv``, ``tidy.parquet`` and ``plots/*.png``.

Units: times in seconds (``*_s``), throughput in the row's natural rate (``throughput_unit``),
power in watts, energy in joules, clocks in MHz, utilization in percent.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import math
import re
import statistics
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpubench.config import ReportSection
from gpubench.results import safe_child

if TYPE_CHECKING:
    import pandas as pd

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

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
VERIFY_SCHEMA_PREFIX = "gpubench.verify/"
VERDICT_ORDER = {"FAIL": 0, "WARN": 1, "PASS": 2, "SKIP": 3}
# unit suffixes of telemetry metric names, longest first (``power_w`` + mean -> ``power_mean_w``)
UNIT_SUFFIXES = ("bytes_per_s", "kb_per_s", "pct", "mhz", "bytes", "kbps", "mbps", "w", "j", "c", "s")
STATS = ("mean", "max", "min", "p50", "p95", "p99")
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
# trace columns drawn in the timelines: (panel title, candidate columns, axis label)
TIMELINE_PANELS = (
    ("utilization", ("gpu_util_pct", "cpu_util_pct"), "%"),
    ("power", ("power_w",), "W"),
    ("SM clock", ("sm_clock_mhz",), "MHz"),
)


class ReportError(ValueError):
    """A report that cannot be made as asked (exit 2); the message says what to do."""


# --- loading -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedRuns:
    """Everything read from a results folder.

    ``benchmarks``: the tidy table (:data:`BENCHMARK_COLUMNS` plus telemetry summary columns such as
    ``gpu_util_mean_pct``, ``power_mean_w``, ``energy_j``). ``verify``: one row per verification check.
    ``warnings``: one line per skipped file or entry, naming it. ``runs``: one row per saved run.
    """

    results_dir: Path
    benchmarks: pd.DataFrame
    verify: pd.DataFrame
    runs: pd.DataFrame
    warnings: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return bool(self.benchmarks.empty and self.verify.empty)

    @property
    def telemetry_columns(self) -> list[str]:
        fixed = set(BENCHMARK_COLUMNS)
        return [c for c in self.benchmarks.columns if c not in fixed]


def load_runs(results_dir: Path) -> LoadedRuns:
    """Read ``benchmarks/**/*.json`` (pytest-benchmark saves), ``verify/*.json`` and the traces they name."""
    import pandas as pd

    results_dir = Path(results_dir)
    warnings: list[str] = []
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    bench_dir = results_dir / "benchmarks"
    for path in sorted(bench_dir.rglob("*.json")) if bench_dir.is_dir() else []:
        data = _read_json(path, warnings)
        if data is None:
            continue
        problem = _benchmark_schema_problem(data)
        if problem:
            warnings.append(f"skipped {path}: {problem}")
            continue
        run, file_rows = _benchmark_rows(path, data, results_dir, warnings)
        if file_rows:
            runs.append(run)
            rows.extend(file_rows)
    verify_rows: list[dict[str, Any]] = []
    verify_dir = results_dir / "verify"
    for path in sorted(verify_dir.glob("*.json")) if verify_dir.is_dir() else []:
        data = _read_json(path, warnings)
        if data is None:
            continue
        problem = _verify_schema_problem(data)
        if problem:
            warnings.append(f"skipped {path}: {problem}")
            continue
        run, checks = _verify_rows(path, data, warnings)
        runs.append(run)
        verify_rows.extend(checks)

    benchmarks = _tidy_frame(rows, warnings)
    verify = pd.DataFrame(verify_rows, columns=list(VERIFY_COLUMNS))
    for column in ("started", "finished"):
        verify[column] = pd.to_datetime(verify[column], utc=True, errors="coerce", format="ISO8601")
    verify["duration_s"] = pd.to_numeric(verify["duration_s"], errors="coerce")
    run_frame = pd.DataFrame(
        runs,
        columns=[
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
        ],
    )
    run_frame["run_time"] = pd.to_datetime(run_frame["run_time"], utc=True, errors="coerce", format="ISO8601")
    run_frame = run_frame.sort_values(["run_time", "run_id"], kind="stable").reset_index(drop=True)
    return LoadedRuns(results_dir, benchmarks, verify, run_frame, tuple(warnings))


def _read_json(path: Path, warnings: list[str]) -> Mapping[str, Any] | None:
    try:
        if path.stat().st_size == 0:
            warnings.append(f"skipped {path}: empty file")
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        warnings.append(f"skipped {path}: cannot read it ({exc})")
        return None
    except json.JSONDecodeError as exc:
        warnings.append(f"skipped {path}: not valid JSON, truncated or damaged ({exc})")
        return None
    if not isinstance(data, dict):
        warnings.append(f"skipped {path}: expected a JSON object, found {type(data).__name__}")
        return None
    return data


def _benchmark_schema_problem(data: Mapping[str, Any]) -> str | None:
    if (
        data.get("schema", "").startswith(VERIFY_SCHEMA_PREFIX)
        if isinstance(data.get("schema"), str)
        else False
    ):
        return "a verification result in the benchmarks folder (move it to results/verify/)"
    if not isinstance(data.get("benchmarks"), list):
        return "not a pytest-benchmark saved run (no 'benchmarks' list)"
    if not isinstance(data.get("machine_info", {}), dict):
        return "not a pytest-benchmark saved run ('machine_info' is not an object)"
    return None


def _verify_schema_problem(data: Mapping[str, Any]) -> str | None:
    schema = data.get("schema")
    if not isinstance(schema, str) or not schema.startswith(VERIFY_SCHEMA_PREFIX):
        return f"not a gpubench verification result (schema {schema!r}, expected '{VERIFY_SCHEMA_PREFIX}1')"
    if not isinstance(data.get("checks"), list):
        return "verification result without a 'checks' list"
    return None


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (text, bool, NaN, N/A written as null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _benchmark_rows(
    path: Path, data: Mapping[str, Any], results_dir: Path, warnings: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    machine = _as_dict(data.get("machine_info"))
    gb = _as_dict(machine.get("gpubench"))
    env = _as_dict(gb.get("environment"))
    try:
        machine_id = str(path.parent.relative_to(results_dir / "benchmarks"))
    except ValueError:
        machine_id = path.parent.name
    # gpubench writes the run id at the top level ("gpubench": {"run_id"}); older and distributed saves
    # keep it in machine_info
    run_id = str(_as_dict(data.get("gpubench")).get("run_id") or gb.get("run_id") or f"{machine_id}/{path.stem}")
    run_time = data.get("datetime")
    if not isinstance(run_time, str):
        stamp = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc)
        warnings.append(
            f"{path}: no 'datetime' field; using the file's modification time {stamp:%Y-%m-%d %H:%M}"
        )
        run_time = stamp.isoformat()
    run_host = str(env.get("host") or machine.get("node") or "")
    commit = _as_dict(data.get("commit_info")).get("id")
    base = {
        "run_id": run_id,
        "run_time": run_time,
        "machine_id": machine_id,
        "commit": _text(commit),
        "torch_version": _text(env.get("torch")),
        "cuda_build": _text(env.get("cuda_build")),
        "driver_version": _text(env.get("driver")),
        "source_file": str(path),
    }
    rows = []
    for position, bench in enumerate(data["benchmarks"]):
        row = _benchmark_row(bench, base, run_host, results_dir, warnings)
        if isinstance(row, str):
            warnings.append(f"skipped {path} benchmark #{position}: {row}")
        else:
            rows.append(row)
    run = {
        "kind": "benchmarks",
        "run_id": run_id,
        "run_time": run_time,
        "host": run_host,
        "devices": ", ".join(dict.fromkeys(str(r["device"]) for r in rows)),
        "configured_devices": ",".join(_recorded_devices(_as_dict(gb.get("config")))),
        "torch_version": base["torch_version"],
        "driver_version": base["driver_version"],
        "config_files": ", ".join(str(f) for f in gb.get("config_files") or [] if f is not None)
        if isinstance(gb.get("config_files"), list)
        else _text(gb.get("config_files")),
        "source_file": str(path),
    }
    return run, rows


def _recorded_devices(config: Mapping[str, Any]) -> list[str]:
    """The device order a run was configured with: its ``bench.devices``, else its ``dl.device``."""
    devices = _as_dict(config.get("bench")).get("devices")
    if isinstance(devices, list) and devices:
        return [str(d) for d in devices]
    device = _as_dict(config.get("dl")).get("device")
    return [str(device)] if device else []


def case_name(name: str, devices: Iterable[str]) -> str:
    """The test name without its device id: ``test_matmul[cuda:1-f32-4096]`` -> ``test_matmul[f32-4096]``."""
    match = re.fullmatch(r"(?s)(.*?)\[(.*)\]", name)
    if not match:
        return name
    drop = {d for d in devices if d}
    parts = [p for p in match.group(2).split("-") if p not in drop]
    return f"{match.group(1)}[{'-'.join(parts)}]" if parts else match.group(1)


def _benchmark_row(
    bench: Any, base: Mapping[str, Any], run_host: str, results_dir: Path, warnings: list[str]
) -> dict[str, Any] | str:
    if not isinstance(bench, Mapping):
        return f"expected an object, found {type(bench).__name__}"
    stats = bench.get("stats")
    if not isinstance(stats, Mapping) or _number(stats.get("median")) is None:
        return "no 'stats.median' (not a pytest-benchmark result)"
    median = float(stats["median"])
    if median <= 0:
        return f"median {median} s is not a positive time"
    extra = _as_dict(bench.get("extra_info"))
    gpu = _as_dict(extra.get("gpu"))
    name = str(bench.get("name") or bench.get("fullname") or "?")
    device = str(
        extra.get("device") or gpu.get("device") or _as_dict(bench.get("params")).get("device") or "unknown"
    )
    requested = str(extra.get("requested_device") or device)
    host = str(gpu.get("host") or run_host)
    uuid = gpu.get("uuid") or (f"cpu-{host}" if device == "cpu" else f"{host}/{device}")
    timing = extra.get("timing")
    row: dict[str, Any] = {
        **base,
        "host": host,
        "benchmark": str(bench.get("fullname") or name),
        "name": name,
        "case": case_name(name, (device, requested)),
        "group": str(bench.get("group") or ""),
        "device": device,
        "requested_device": requested,
        "fallback_note": str(extra.get("fallback_note") or ""),
        "gpu_uuid": str(uuid),
        "gpu_name": _text(gpu.get("name")),
        "gpu_index": _number(gpu.get("index")),
        "gpu_pci_bus_id": _text(gpu.get("pci_bus_id")),
        "workload": _text(extra.get("workload")),
        "dtype": _text(extra.get("dtype")),
        "size": _text(extra.get("size")),
        "bytes": _number(extra.get("bytes")),
        "flops": _number(extra.get("flops")),
        "items": _number(extra.get("items")),
        "median_s": median,
        "mean_s": _number(stats.get("mean")),
        "stddev_s": _number(stats.get("stddev")),
        "iqr_s": _number(stats.get("iqr")),
        "min_s": _number(stats.get("min")),
        "rounds": _number(stats.get("rounds")),
        "items_per_s": _number(extra.get("items_per_s")),
        "gbps": _number(extra.get("gbps")),
        "tflops": _number(extra.get("tflops")),
        "copy_fraction": _number(extra.get("copy_fraction")),
        "matmul_fraction": _number(extra.get("matmul_fraction")),
        "data_source": _text(extra.get("data_source")),
        "timing_method": _text(timing.get("method") if isinstance(timing, Mapping) else timing),
        "trace": None,
    }
    row["throughput"], row["throughput_unit"] = natural_rate(row)
    fractions = [f for f in (row["copy_fraction"], row["matmul_fraction"]) if f is not None]
    row["ceiling_fraction"] = fractions[0] if fractions else None
    telemetry = _as_dict(extra.get("telemetry"))
    # the sampler records the path under results/ (trace_in_results) and as written (trace)
    trace = telemetry.get("trace_in_results") or telemetry.get("trace")
    summary = flatten_telemetry(telemetry)
    if isinstance(trace, str) and trace:
        resolved = resolve_trace(results_dir, trace)
        row["trace"] = _relative(resolved, results_dir) if resolved else trace
        if resolved is None:
            warnings.append(
                f"{row['benchmark']} ({device}): telemetry trace {trace!r} not found under {results_dir}"
            )
        elif not any(isinstance(v, float) for v in summary.values()):
            summary = {**summary, **_summary_from_trace(resolved, str(uuid), warnings)}
    row.update(summary)
    return row


def natural_rate(row: Mapping[str, Any]) -> tuple[float, str]:
    """The row's throughput (higher is faster), in the unit that limits the case.

    A compute-bound case (a matmul ceiling fraction, or at least one flop per byte moved) reads as
    TFLOP/s; a case that moves bytes reads as GB/s (elementwise ops and copies: their element count per
    second says less than the bandwidth they reach); otherwise items/s (MNIST images), else calls/s.
    """
    flops, moved = row.get("flops"), row.get("bytes")
    compute_bound = row.get("matmul_fraction") is not None or (
        flops is not None and moved is not None and moved > 0 and flops / moved >= 1.0
    )
    if compute_bound:
        order = [("tflops", "TFLOP/s"), ("gbps", "GB/s"), ("items_per_s", "items/s")]
    else:
        order = [("gbps", "GB/s"), ("items_per_s", "items/s"), ("tflops", "TFLOP/s")]
    for column, unit in order:
        value = row.get(column)
        if value is not None and value == value and value > 0:
            return float(value), unit
    return 1.0 / float(row["median_s"]), "calls/s"


def _metric_column(name: str, stat: str | None) -> str:
    clean = re.sub(r"[^0-9a-zA-Z_]+", "_", name).strip("_").lower() or "metric"
    if stat is None:
        return clean
    stat = re.sub(r"[^0-9a-zA-Z_]+", "_", stat).strip("_").lower()
    for suffix in UNIT_SUFFIXES:
        if clean.endswith(f"_{suffix}"):
            return f"{clean[: -len(suffix) - 1]}_{stat}_{suffix}"
    return f"{clean}_{stat}"


def flatten_telemetry(telemetry: Mapping[str, Any]) -> dict[str, Any]:
    """Telemetry summary columns from ``extra_info["telemetry"]`` (the sampler's summary).

    Metric statistics are named ``<metric>_<stat>_<unit>`` whichever way they arrive: flat
    ``power_w_mean`` (the sampler's keys), nested ``{"power_w": {"mean": ..}}`` or already
    ``power_mean_w``. ``energy_j`` keeps its name; ``samples``, ``interval_ms`` and ``duration_s``
    get a ``telemetry_`` prefix; ``status``, ``source`` and ``energy_method`` are kept as text;
    other text, lists and the perf_counter start and stop times are left out.
    """
    source = telemetry.get("summary") if isinstance(telemetry.get("summary"), Mapping) else telemetry
    out: dict[str, Any] = {}
    for raw_key, value in _as_dict(source).items():
        key = str(raw_key)
        if key in TELEMETRY_SKIP:
            continue
        if key in TELEMETRY_TEXT:
            if isinstance(value, str) and value:
                out[TELEMETRY_TEXT[key]] = value
            continue
        if isinstance(value, Mapping):
            for stat, inner in value.items():
                number = _number(inner)
                if number is not None:
                    out[_metric_column(key, str(stat))] = number
            continue
        number = _number(value)
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


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


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
        warnings.append(f"trace {path}: its last row is cut off; used the {len(frame)} complete samples before it")
    if uuid and "uuid" in frame.columns and (frame["uuid"] == uuid).any():
        frame = frame[frame["uuid"] == uuid]
    frame = frame.assign(t=pd.to_numeric(frame["t"], errors="coerce")).dropna(subset=["t"])
    if frame.empty:
        warnings.append(f"skipped trace {path}: no samples")
        return None
    return frame.sort_values("t").reset_index(drop=True)


def _summary_from_trace(path: Path, uuid: str, warnings: list[str]) -> dict[str, float]:
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


def _tidy_frame(rows: list[dict[str, Any]], warnings: list[str]) -> pd.DataFrame:
    import pandas as pd

    extra = sorted({k for r in rows for k in r} - set(BENCHMARK_COLUMNS))
    frame = pd.DataFrame(rows, columns=[*BENCHMARK_COLUMNS, *extra])
    frame["run_time"] = pd.to_datetime(frame["run_time"], utc=True, errors="coerce", format="ISO8601")
    if frame["run_time"].isna().any():
        bad = sorted(set(frame.loc[frame["run_time"].isna(), "source_file"]))
        warnings.extend(f"{f}: unreadable 'datetime'; its run sorts first" for f in bad)
    numeric = [
        c
        for c in BENCHMARK_COLUMNS
        if c.endswith(("_s", "_fraction"))
        or c in ("bytes", "flops", "items", "rounds", "gbps", "tflops", "throughput", "gpu_index")
    ]
    for column in [*numeric, *(c for c in extra if c not in TELEMETRY_TEXT.values())]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    # a run merged from several hosts names devices host/cuda:N so that columns stay distinct
    hosts_per_run = frame.groupby("run_id")["host"].transform("nunique") if not frame.empty else frame["host"]
    multi = hosts_per_run > 1 if not frame.empty else frame["host"].astype(bool)
    frame["device_label"] = frame["device"].where(~multi, frame["host"] + "/" + frame["device"])
    return frame.sort_values(
        ["run_time", "run_id", "group", "case", "device"], kind="stable", na_position="first"
    ).reset_index(drop=True)


def _verify_rows(
    path: Path, data: Mapping[str, Any], warnings: list[str] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    env = _as_dict(data.get("environment"))
    run_id = str(data.get("run_id") or path.stem)
    host = str(env.get("host") or "")
    names = {str(d.get("uuid")): d for d in data.get("devices") or [] if isinstance(d, Mapping)}
    by_device = {str(d.get("device")): d for d in names.values()}
    rows = []
    for position, check in enumerate(data["checks"]):
        if not isinstance(check, Mapping):
            if warnings is not None:
                warnings.append(f"skipped {path} check #{position}: expected an object, found {type(check).__name__}")
            continue
        device = str(check.get("device") or "")
        ident = names.get(str(check.get("uuid"))) or by_device.get(device) or {}
        uuid = (
            check.get("uuid")
            or ident.get("uuid")
            or (f"cpu-{host}" if device == "cpu" else f"{host}/{device}")
        )
        rows.append(
            {
                "run_id": run_id,
                "started": data.get("started"),
                "finished": data.get("finished"),
                "host": str(ident.get("host") or host),
                "level": _text(data.get("level")),
                "exit_code": _text(data.get("exit_code")),
                "device": device,
                "gpu_uuid": str(uuid),
                "gpu_name": _text(ident.get("name")),
                "check": str(check.get("check") or "?"),
                "verdict": str(check.get("verdict") or "?").upper(),
                "value": _text(check.get("value")),
                "threshold": _text(check.get("threshold")),
                "unit": _text(check.get("unit")),
                "message": _text(check.get("message")),
                "remedy": _text(check.get("remedy")),
                "duration_s": _number(check.get("duration_s")),
                "source_file": str(path),
            }
        )
    run = {
        "kind": "verify",
        "run_id": run_id,
        "run_time": data.get("started"),
        "host": host,
        "devices": ", ".join(dict.fromkeys(str(r["device"]) for r in rows)),
        "configured_devices": "",
        "torch_version": _text(env.get("torch")),
        "driver_version": _text(env.get("driver")),
        "config_files": None,
        "source_file": str(path),
    }
    return run, rows


# --- analysis ----------------------------------------------------------------------------------------


def device_sort_key(device: str, configured: Sequence[str] = ()) -> tuple[int, int, int, str]:
    """Configured devices first (in their order), then cuda:N by N, then cpu, then anything else."""
    bare = device.rsplit("/", 1)[-1]
    if bare in configured:
        return (0, configured.index(bare), 0, device)
    match = re.fullmatch(r"cuda:(\d+)", bare)
    if match:
        return (1, int(match.group(1)), 0, device)
    return (2 if bare == "cpu" else 3, 0, 0, device)


def latest_run_id(frame: pd.DataFrame) -> str | None:
    """The run with the latest time (ties: the larger id)."""
    if frame.empty:
        return None
    last = frame.sort_values(["run_time", "run_id"], kind="stable", na_position="first").iloc[-1]
    return str(last["run_id"])


def _bench_label(group: str, case: str) -> str:
    return f"{group} / {case}" if group else case


def ratio_table(frame: pd.DataFrame, configured: Sequence[str] = ()) -> pd.DataFrame:
    """Devices side by side in the latest run: throughput per device and ``<device> / <first device>``.

    The first device (configured order, then cuda:N, then cpu) is the denominator, so a ratio above 1
    means faster than it. With one device only, the latest run is compared with the previous run of the
    same device instead (columns are run ids, ratio ``latest / previous``).
    Index: ``benchmark`` (``group / case``); columns: ``unit``, one throughput column per device, ratios.
    """
    import pandas as pd

    run_id = latest_run_id(frame)
    if run_id is None:
        return pd.DataFrame()
    latest = frame[frame["run_id"] == run_id].assign(
        bench=lambda f: [_bench_label(g, c) for g, c in zip(f["group"], f["case"], strict=True)]
    )
    devices = sorted(latest["device_label"].unique(), key=lambda d: device_sort_key(str(d), configured))
    if len(devices) == 1:
        return _run_vs_run(frame, run_id, str(devices[0]))
    wide = latest.pivot_table(index="bench", columns="device_label", values="throughput", aggfunc="mean")
    units = latest.groupby("bench")["throughput_unit"].first()
    table = pd.DataFrame({"unit": units})
    for device in devices:
        table[device] = wide[device]
    base = devices[0]
    for device in devices[1:]:
        table[f"{device} / {base}"] = table[device] / table[base]
    table.index.name = "benchmark"
    table.attrs.update(run_id=run_id, base=base, devices=list(devices), mode="devices")
    return table


def _run_vs_run(frame: pd.DataFrame, run_id: str, device: str) -> pd.DataFrame:
    import pandas as pd

    rows = frame[frame["device_label"] == device].assign(
        bench=lambda f: [_bench_label(g, c) for g, c in zip(f["group"], f["case"], strict=True)]
    )
    order = (
        rows.drop_duplicates("run_id").sort_values(["run_time", "run_id"], kind="stable")["run_id"].tolist()
    )
    previous = [r for r in order if r != run_id]
    table = pd.DataFrame({"unit": rows[rows["run_id"] == run_id].groupby("bench")["throughput_unit"].first()})
    table[run_id] = rows[rows["run_id"] == run_id].groupby("bench")["throughput"].mean()
    columns = [run_id]
    if previous:
        prev = previous[-1]
        table.insert(1, prev, rows[rows["run_id"] == prev].groupby("bench")["throughput"].mean())
        table[f"{run_id} / {prev}"] = table[run_id] / table[prev]
        columns = [prev, run_id]
    table.index.name = "benchmark"
    table.attrs.update(run_id=run_id, base=device, devices=[device], runs=columns, mode="runs")
    return table


def trend_table(frame: pd.DataFrame, regression_pct: float) -> pd.DataFrame:
    """Each benchmark on each GPU (by UUID) across runs: latest median against the previous run's.

    ``change_pct`` > 0 means slower; ``regression`` is True when it is above ``regression_pct``.
    """
    import pandas as pd

    columns = [
        "group",
        "case",
        "device",
        "host",
        "gpu_uuid",
        "gpu_name",
        "runs",
        "history",
        "previous_run",
        "previous_median_s",
        "latest_run",
        "latest_median_s",
        "change_pct",
        "regression",
    ]
    out: list[dict[str, Any]] = []
    if frame.empty:
        return pd.DataFrame(columns=columns)
    ordered = frame.sort_values(["run_time", "run_id"], kind="stable", na_position="first")
    # one median per benchmark, GPU and run (the mean if a run holds the case twice), in time order;
    # grouped in plain Python because a pandas call per group is slow with hundreds of benchmarks
    per_run = (
        ordered.groupby(["group", "case", "gpu_uuid", "run_id"], sort=False, dropna=False)
        .agg(
            median_s=("median_s", "mean"),
            device=("device", "last"),
            host=("host", "last"),
            name=("gpu_name", "last"),
        )
        .reset_index()
    )
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in per_run.to_dict("records"):
        series.setdefault((record["group"], record["case"], record["gpu_uuid"]), []).append(record)
    for (group, case, uuid), history in sorted(series.items()):
        latest = history[-1]
        row: dict[str, Any] = {
            "group": group,
            "case": case,
            "device": latest["device"],
            "host": latest["host"],
            "gpu_uuid": uuid,
            "gpu_name": latest["name"],
            "runs": len(history),
            "history": " → ".join(format_seconds(h["median_s"]) for h in history),
            "previous_run": None,
            "previous_median_s": math.nan,
            "latest_run": latest["run_id"],
            "latest_median_s": float(latest["median_s"]),
            "change_pct": math.nan,
            "regression": False,
        }
        if len(history) >= 2:
            previous = history[-2]
            change = (float(latest["median_s"]) / float(previous["median_s"]) - 1.0) * 100.0
            row.update(
                previous_run=previous["run_id"],
                previous_median_s=float(previous["median_s"]),
                change_pct=change,
                regression=bool(change > regression_pct),
            )
        out.append(row)
    return pd.DataFrame(out, columns=columns)


def outlier_table(frame: pd.DataFrame, outlier_pct: float) -> pd.DataFrame:
    """GPUs slower than the median of their same-model siblings on the same benchmark.

    For each GPU (UUID) the latest row of each benchmark is compared with the median throughput of the
    other GPUs of the same name; ``deficit_pct`` > ``outlier_pct`` sets ``outlier``. CPUs are left out,
    and so are benchmarks that only one GPU of a model ran.
    """
    import pandas as pd

    columns = [
        "group",
        "case",
        "gpu_name",
        "host",
        "device",
        "gpu_index",
        "gpu_uuid",
        "run_id",
        "throughput",
        "throughput_unit",
        "sibling_median",
        "siblings",
        "deficit_pct",
        "outlier",
    ]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    gpus = frame[frame["device"].str.startswith("cuda") & frame["gpu_name"].notna()]
    latest = gpus.sort_values(["run_time", "run_id"], kind="stable", na_position="first").drop_duplicates(
        ["group", "case", "gpu_uuid"], keep="last"
    )
    out: list[dict[str, Any]] = []
    families: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in latest[columns[:10]].to_dict("records"):
        families.setdefault((record["group"], record["case"], record["gpu_name"]), []).append(record)
    for _key, members in sorted(families.items()):
        if len(members) < 2:  # one row per UUID after drop_duplicates
            continue
        for i, member in enumerate(members):
            others = [m["throughput"] for j, m in enumerate(members) if j != i]
            sibling = statistics.median(others)
            deficit = (1.0 - float(member["throughput"]) / sibling) * 100.0 if sibling > 0 else math.nan
            out.append(
                {
                    **member,
                    "sibling_median": sibling,
                    "siblings": len(others),
                    "deficit_pct": deficit,
                    "outlier": bool(deficit > outlier_pct),
                }
            )
    return pd.DataFrame(out, columns=columns)


# --- the report model ---------------------------------------------------------------------------------


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


_METRIC_UNITS = {"pct": "%", "w": "W", "j": "J", "mhz": "MHz", "c": "°C", "s": "s"}


def format_metric(column: str, value: Any) -> str:
    """A telemetry value with the unit its column name ends in (``_bytes`` shown in GiB)."""
    if value is None or value != value:
        return "–"
    unit = column.rsplit("_", 1)[-1]
    if unit == "bytes":
        return f"{float(value) / 2**30:.2f} GiB"
    if unit in _METRIC_UNITS:
        return f"{format_number(value)} {_METRIC_UNITS[unit]}"
    return format_number(value)


def format_pct(value: Any, signed: bool = False) -> str:
    if value is None or value != value:
        return "–"
    return f"{float(value):+.1f}%" if signed else f"{float(value):.0f}%"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return str(value)


def _anchor(uuid: str) -> str:
    return "gpu-" + re.sub(r"[^0-9A-Za-z_-]+", "-", uuid).strip("-").lower()


def _ratio_rendered(ratios: pd.DataFrame) -> Table:
    if ratios.empty:
        return Table(("benchmark",), (), caption="no benchmark results")
    attrs = ratios.attrs
    value_columns = attrs.get("runs") if attrs.get("mode") == "runs" else attrs.get("devices")
    ratio_columns = [c for c in ratios.columns if c != "unit" and c not in value_columns]
    rows = []
    for bench, row in ratios.iterrows():
        cells = [str(bench), str(row["unit"])]
        cells += [format_number(row[c]) for c in value_columns]
        cells += [f"{row[c]:.3g}" if row[c] == row[c] else "–" for c in ratio_columns]
        rows.append(tuple(cells))
    if attrs.get("mode") == "runs":
        caption = (
            f"Only {attrs['base']} in the latest run {attrs['run_id']}: throughput of this run next to the "
            "previous one; a ratio above 1 means faster than before."
        )
    else:
        caption = (
            f"Throughput in the latest run {attrs['run_id']}; a ratio above 1 means faster than "
            f"{attrs['base']}."
        )
    return Table(("benchmark", "unit", *value_columns, *ratio_columns), tuple(rows), caption=caption)


def _trend_rendered(trends: pd.DataFrame, pct: float) -> Table:
    compared = trends[trends["runs"] >= 2] if not trends.empty else trends
    rows, flags = [], []
    order = (
        compared.sort_values(["regression", "change_pct"], ascending=[False, False])
        if not compared.empty
        else compared
    )
    for _, r in order.iterrows():
        rows.append(
            (
                _bench_label(r["group"], r["case"]),
                r["device"],
                "REGRESSION" if r["regression"] else "ok",
                format_pct(r["change_pct"], signed=True),
                r["history"],
                _cell(r["gpu_name"]),
                r["host"],
                r["gpu_uuid"],
            )
        )
        flags.append(bool(r["regression"]))
    flagged = sum(flags)
    caption = (
        f"{flagged} regression(s): median time more than {pct:g}% above the previous run's, per GPU UUID."
        if rows
        else "Only one run per benchmark and GPU so far: nothing to compare with."
    )
    return Table(
        ("benchmark", "device", "flag", "change", "median per run", "GPU", "host", "UUID"),
        tuple(rows),
        tuple(flags),
        caption,
    )


def _outlier_rendered(outliers: pd.DataFrame, pct: float) -> Table:
    rows, flags = [], []
    order = (
        outliers.sort_values(["outlier", "deficit_pct"], ascending=[False, False])
        if not outliers.empty
        else outliers
    )
    for _, r in order.iterrows():
        index = "–" if r["gpu_index"] != r["gpu_index"] else str(int(r["gpu_index"]))
        rows.append(
            (
                _bench_label(r["group"], r["case"]),
                r["device"],
                "OUTLIER" if r["outlier"] else "ok",
                format_pct(-r["deficit_pct"], signed=True),
                f"{format_number(r['throughput'])} {r['throughput_unit']}",
                f"{format_number(r['sibling_median'])} ({r['siblings']})",
                r["gpu_name"],
                r["host"],
                index,
                r["gpu_uuid"],
            )
        )
        flags.append(bool(r["outlier"]))
    caption = (
        f"{sum(flags)} outlier(s): throughput more than {pct:g}% below the median of same-model siblings."
        if rows
        else "No GPU model with two or more GPUs on the same benchmark: nothing to compare."
    )
    return Table(
        (
            "benchmark",
            "device",
            "flag",
            "vs siblings",
            "throughput",
            "sibling median (n)",
            "GPU",
            "host",
            "index",
            "UUID",
        ),
        tuple(rows),
        tuple(flags),
        caption,
    )


def _runs_rendered(loaded: LoadedRuns) -> Table:
    rows = []
    for _, r in loaded.runs.iterrows():
        when = r["run_time"].strftime("%Y-%m-%d %H:%M UTC") if r["run_time"] == r["run_time"] else "–"
        rows.append(
            (
                r["kind"],
                r["run_id"],
                when,
                _cell(r["host"]),
                _cell(r["devices"]),
                _cell(r["torch_version"]),
                _cell(r["driver_version"]),
                _cell(r["config_files"]),
            )
        )
    return Table(("kind", "run", "time", "host", "devices", "torch", "driver", "config files"), tuple(rows))


def _page_for(uuid: str, loaded: LoadedRuns, trends: pd.DataFrame, outliers: pd.DataFrame) -> GpuPage:
    frame = loaded.benchmarks
    mine = frame[frame["gpu_uuid"] == uuid]
    checks = loaded.verify[loaded.verify["gpu_uuid"] == uuid] if not loaded.verify.empty else loaded.verify
    if not mine.empty:
        run_id = latest_run_id(mine)
        latest = mine[mine["run_id"] == run_id]
        head = latest.iloc[-1]
    else:
        run_id, latest = None, mine
        head = checks.sort_values("started", kind="stable").iloc[-1]
    device, host, name = str(head["device"]), str(head["host"]), _cell(head["gpu_name"])
    title = f"{device} · {name} · {host}"
    seen_as = sorted({*mine["device"].astype(str), *checks["device"].astype(str)}, key=device_sort_key)
    identity = [("UUID", uuid), ("name", name), ("host", host), ("seen as", ", ".join(seen_as))]
    if not mine.empty:
        pci = mine["gpu_pci_bus_id"].dropna()
        identity.append(("PCI bus id", str(pci.iloc[-1]) if not pci.empty else "–"))
        identity.append(("benchmark runs", str(mine["run_id"].nunique())))
        identity.append(("latest benchmark run", str(run_id)))
    notes = tuple(dict.fromkeys(n for n in latest["fallback_note"] if n)) if not latest.empty else ()

    trend_index = {(r["group"], r["case"]): r for _, r in trends[trends["gpu_uuid"] == uuid].iterrows()}
    outlier_index = {(r["group"], r["case"]): r for _, r in outliers[outliers["gpu_uuid"] == uuid].iterrows()}
    bench_rows, bench_flags = [], []
    for _, r in latest.iterrows():
        trend = trend_index.get((r["group"], r["case"]))
        outlier = outlier_index.get((r["group"], r["case"]))
        flags = []
        if trend is not None and trend["regression"]:
            flags.append("REGRESSION")
        if outlier is not None and outlier["outlier"]:
            flags.append("OUTLIER")
        if r["fallback_note"]:
            flags.append("FALLBACK")
        change = format_pct(trend["change_pct"], signed=True) if trend is not None else "–"
        bench_rows.append(
            (
                _bench_label(r["group"], r["case"]),
                format_seconds(r["median_s"]),
                f"{format_number(r['throughput'])} {r['throughput_unit']}",
                format_pct(r["ceiling_fraction"] * 100)
                if r["ceiling_fraction"] == r["ceiling_fraction"]
                else "–",
                change,
                _metric(r, "gpu_util_mean_pct", "cpu_util_mean_pct", fmt="{:.0f}%"),
                _metric(r, "power_mean_w", fmt="{:.0f} W"),
                _metric(r, "energy_j", fmt="{:.1f} J"),
                " ".join(flags) or "ok",
            )
        )
        bench_flags.append(bool(flags))
    benchmarks = Table(
        (
            "benchmark",
            "median",
            "throughput",
            "of ceiling",
            "vs previous run",
            "util (mean)",
            "power (mean)",
            "energy",
            "flag",
        ),
        tuple(bench_rows),
        tuple(bench_flags),
        f"Latest run {run_id}." if run_id else "No benchmark results for this device.",
    )
    telemetry = _telemetry_summary(latest, [c for c in loaded.telemetry_columns if c in latest.columns])
    verification, verification_caption = _verification_for(checks)
    return GpuPage(
        uuid,
        title,
        _anchor(uuid),
        tuple(identity),
        notes,
        benchmarks,
        telemetry,
        verification,
        verification_caption,
    )


def _metric(row: Any, *columns: str, fmt: str) -> str:
    for column in columns:
        value = row.get(column)
        if value is not None and value == value:
            return fmt.format(float(value))
    return "–"


def _telemetry_summary(rows: pd.DataFrame, columns: Sequence[str]) -> Table:
    """Over the latest run's benchmarks on this device: mean of means, max of maxima, total energy."""
    import pandas as pd

    out = []
    for column in columns:
        # metric statistics only; util_*_pct repeats gpu_util or cpu_util under a device-neutral name
        if not (re.search(r"_(mean|max)_[a-z_]+$", column) or column == "energy_j") or column.startswith(
            "util_"
        ):
            continue
        values = pd.to_numeric(rows[column], errors="coerce").dropna()
        if values.empty:
            continue
        if "_max_" in column or column.endswith("_max"):
            out.append((column, format_metric(column, values.max()), "max over benchmarks"))
        elif column == "energy_j":
            out.append((column, format_metric(column, values.sum()), "total over benchmarks"))
        else:
            out.append((column, format_metric(column, values.mean()), "mean over benchmarks"))
    caption = "" if out else "No telemetry recorded for this device."
    return Table(("metric", "value", "how"), tuple(out), caption=caption)


def _verification_for(checks: pd.DataFrame) -> tuple[Table, str]:
    columns = ("check", "verdict", "value", "threshold", "unit", "message", "remedy")
    if checks.empty:
        return Table(columns, ()), "No verification run covers this device (run `gpubench verify`)."
    run_id = str(
        checks.sort_values(["started", "run_id"], kind="stable", na_position="first").iloc[-1]["run_id"]
    )
    latest = checks[checks["run_id"] == run_id].sort_values(
        "verdict", key=lambda v: v.map(lambda x: VERDICT_ORDER.get(x, 9)), kind="stable"
    )
    rows = tuple(tuple(_cell(r[c]) for c in columns) for _, r in latest.iterrows())
    flags = tuple(r["verdict"] in ("FAIL", "WARN") for _, r in latest.iterrows())
    started = latest["started"].iloc[0]
    when = started.strftime("%Y-%m-%d %H:%M UTC") if started == started else "unknown time"
    counts = latest["verdict"].value_counts()
    tally = ", ".join(f"{counts[v]} {v}" for v in VERDICT_ORDER if v in counts)
    return Table(columns, rows, flags), f"Latest verification run {run_id} ({when}): {tally}."


def build_report(
    results_dir: Path,
    settings: ReportSection | None = None,
    configured_devices: Sequence[str] | None = None,
    *,
    benchmark: str | None = None,
    loaded: LoadedRuns | None = None,
) -> Report:
    """Load the runs under ``results_dir`` and derive every table, page and plot of the report.

    ``configured_devices`` orders the devices (the first is the ratio denominator); None: the order the
    latest run was configured with (its ``bench.devices``). Raises :class:`ReportError` when
    ``benchmark`` names no traced benchmark.
    """
    settings = settings or ReportSection()
    loaded = loaded or load_runs(results_dir)
    warnings = list(loaded.warnings)
    frame = loaded.benchmarks
    if configured_devices is None:
        configured_devices = recorded_device_order(loaded)
    ratios = ratio_table(frame, configured_devices)
    trends = trend_table(frame, settings.regression_pct)
    outliers = outlier_table(frame, settings.outlier_pct)

    uuids: dict[str, tuple[Any, ...]] = {}
    for source in (frame, loaded.verify):
        for _, r in source.iterrows():
            index = r.get("gpu_index", math.nan)
            key = (
                str(r["host"]),
                device_sort_key(str(r["device"])),
                index if index == index else 99,
                r["gpu_uuid"],
            )
            uuids.setdefault(str(r["gpu_uuid"]), key)
    pages = tuple(_page_for(u, loaded, trends, outliers) for u in sorted(uuids, key=lambda u: uuids[u]))

    chosen = benchmark or settings.benchmark or None
    timeline = choose_timeline_benchmark(frame, loaded.results_dir, chosen) if not frame.empty else None
    plots: list[Plot] = []
    if settings.plots and not frame.empty:
        use_agg_backend()
        plots.extend(throughput_plots(frame, configured_devices))
        if timeline is not None:
            plot = timeline_plot(frame, loaded.results_dir, timeline, configured_devices, warnings)
            if plot is not None:
                plots.append(plot)

    regressions = int(trends["regression"].sum()) if not trends.empty else 0
    outlier_count = int(outliers["outlier"].sum()) if not outliers.empty else 0
    bench_runs = frame["run_id"].nunique()
    verify_runs = loaded.verify["run_id"].nunique() if not loaded.verify.empty else 0
    summary = (
        f"{bench_runs} benchmark run(s), {verify_runs} verification run(s), {len(pages)} device(s), "
        f"{len(frame)} benchmark rows",
        f"{regressions} regression(s) (> {settings.regression_pct:g}% slower than the previous run)",
        f"{outlier_count} outlier(s) (> {settings.outlier_pct:g}% below same-model siblings)",
        f"{len(loaded.warnings)} file(s) or entries skipped" if loaded.warnings else "no damaged files",
    )
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Report(
        generated=now,
        results_dir=str(results_dir),
        loaded=loaded,
        settings=settings,
        runs=_runs_rendered(loaded),
        ratios=_ratio_rendered(ratios),
        trends=_trend_rendered(trends, settings.regression_pct),
        outliers=_outlier_rendered(outliers, settings.outlier_pct),
        pages=pages,
        plots=tuple(plots),
        timeline_benchmark=timeline,
        summary=summary,
        warnings=tuple(warnings),
    )


# --- plots ---------------------------------------------------------------------------------------------


def use_agg_backend() -> None:
    """Draw off-screen: reports run on headless GPU nodes and in CI, where no display exists."""
    import matplotlib

    matplotlib.use("Agg", force=True)


def recorded_device_order(loaded: LoadedRuns) -> list[str]:
    """The ``bench.devices`` recorded by the latest benchmark run (empty when it recorded none)."""
    runs = loaded.runs[loaded.runs["kind"] == "benchmarks"]
    run_id = latest_run_id(loaded.benchmarks)
    recorded = runs[runs["run_id"] == run_id]["configured_devices"].dropna()
    return [d for d in str(recorded.iloc[-1]).split(",") if d] if not recorded.empty else []


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    # no Software metadata: it carries a URL, and the HTML must name none
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def throughput_plots(frame: pd.DataFrame, configured: Sequence[str] = (), per_figure: int = 12) -> list[Plot]:
    """Throughput per device for each benchmark of the latest run.

    Up to ``per_figure`` benchmarks: one small bar chart each, in its own unit. More: one chart of
    throughput relative to the first device (a figure per dozen benchmarks would take seconds each
    to draw and nobody reads nine of them).
    """
    import matplotlib.pyplot as plt

    run_id = latest_run_id(frame)
    latest = frame[frame["run_id"] == run_id]
    colours = device_colours(frame, configured)
    devices = [d for d in colours if d in set(latest["device_label"])]
    cases = list(latest.groupby(["group", "case"], sort=True).groups)
    if len(cases) > per_figure and len(devices) > 1:
        return [_relative_throughput_plot(latest, cases, devices, colours, str(run_id))]
    plots = []
    for start in range(0, len(cases), per_figure):
        chunk = cases[start : start + per_figure]
        ncols = min(3, len(chunk))
        nrows = math.ceil(len(chunk) / ncols)
        height = 2.7 * nrows + 0.7
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, height), squeeze=False)
        # fixed margins instead of a layout engine: constrained layout costs about a second per figure
        fig.subplots_adjust(
            left=0.09 if ncols > 1 else 0.2,
            right=0.98,
            bottom=0.45 / height,
            top=1 - 0.75 / height,
            wspace=0.38,
            hspace=0.5,
        )
        for ax, (group, case) in zip(axes.flat, chunk, strict=False):
            rows = latest[(latest["group"] == group) & (latest["case"] == case)]
            values = rows.groupby("device_label")["throughput"].mean()
            names = [d for d in devices if d in values.index]
            ax.bar([_plain(n) for n in names], [values[d] for d in names], color=[colours[d] for d in names])
            ax.set_title(_short(_plain(_bench_label(group, case)), 48), fontsize=9)
            ax.set_ylabel(str(rows["throughput_unit"].iloc[0]), fontsize=8)
            ax.tick_params(labelsize=8)
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
        for ax in list(axes.flat)[len(chunk) :]:
            ax.set_visible(False)
        number = start // per_figure + 1
        fig.suptitle(f"Throughput per device, run {_plain(str(run_id))} (higher is faster)", fontsize=11)
        several = len(cases) > per_figure
        name = f"throughput_{number}.png" if several else "throughput.png"
        title = f"Throughput per device ({number})" if several else "Throughput per device"
        plots.append(
            Plot(name, title, _png(fig), "Higher is faster; each benchmark's unit is on its y axis.")
        )
    return plots


def _relative_throughput_plot(
    latest: pd.DataFrame,
    cases: Sequence[tuple[str, str]],
    devices: Sequence[str],
    colours: Mapping[str, Any],
    run_id: str,
) -> Plot:
    import matplotlib.pyplot as plt

    base = devices[0]
    wide = latest.pivot_table(
        index=["group", "case"], columns="device_label", values="throughput", aggfunc="mean"
    )
    height = 0.16 * len(cases) * len(devices) + 1.4
    fig, ax = plt.subplots(figsize=(10, height))
    fig.subplots_adjust(left=0.42, right=0.97, top=1 - 0.8 / height, bottom=0.6 / height)
    step = 0.8 / len(devices)
    for j, device in enumerate(devices):
        ratios = [
            wide.loc[c, device] / wide.loc[c, base] if device in wide.columns else math.nan for c in cases
        ]
        positions = [i + (j - (len(devices) - 1) / 2) * step for i in range(len(cases))]
        ax.barh(positions, ratios, height=step, color=colours[device], label=_plain(device))
    ax.set_yticks(range(len(cases)), [_short(_plain(_bench_label(g, c)), 60) for g, c in cases], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"throughput relative to {_plain(base)} (higher is faster)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Throughput per device relative to {_plain(base)}, run {_plain(run_id)}", fontsize=11)
    caption = f"{len(cases)} benchmarks; absolute numbers are in the side-by-side table."
    return Plot("throughput.png", "Throughput per device", _png(fig), caption)


def device_colours(frame: pd.DataFrame, configured: Sequence[str] = ()) -> dict[str, Any]:
    """One colour per device label, the same in every plot, in device order."""
    import matplotlib

    devices = sorted(frame["device_label"].unique(), key=lambda d: device_sort_key(str(d), configured))
    cmap = matplotlib.colormaps["tab10"]
    return {str(d): cmap(i % 10) for i, d in enumerate(devices)}


def _trace_duration(results_dir: Path, trace: str) -> float:
    path = resolve_trace(results_dir, trace)
    if path is None:
        return -1.0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        header = lines[0].split(",")
        column = header.index("t")
        return float(lines[-1].split(",")[column]) - float(lines[1].split(",")[column])
    except (OSError, ValueError, IndexError):
        return -1.0


def choose_timeline_benchmark(frame: pd.DataFrame, results_dir: Path, wanted: str | None) -> str | None:
    """The ``group / case`` whose telemetry timelines are drawn: ``wanted`` (matched against case, name,
    group and full name, case-insensitively; exact first) or the one with the longest trace."""
    traced = frame[frame["trace"].notna()]
    if traced.empty:
        if wanted:
            msg = (
                f"--benchmark {wanted!r}: no benchmark in these runs has a telemetry trace. "
                "Fix: run the benchmarks with telemetry enabled (telemetry.enabled: true)"
            )
            raise ReportError(msg)
        return None
    labels = [_bench_label(g, c) for g, c in zip(traced["group"], traced["case"], strict=True)]
    traced = traced.assign(label=labels)
    if wanted:
        needle = wanted.lower()
        fields = ("label", "case", "name", "group", "benchmark")
        exact = traced[[any(str(r[f]).lower() == needle for f in fields) for _, r in traced.iterrows()]]
        partial = traced[[any(needle in str(r[f]).lower() for f in fields) for _, r in traced.iterrows()]]
        found = exact if not exact.empty else partial
        if found.empty:
            available = ", ".join(sorted(set(labels)))
            msg = f"--benchmark {wanted!r} matches no traced benchmark. Fix: use one of: {available}"
            raise ReportError(msg)
        return str(found.sort_values(["run_time", "run_id"], kind="stable").iloc[-1]["label"])
    durations = [(_trace_duration(results_dir, str(t)), str(t)) for t in traced["trace"]]
    traced = traced.assign(duration=[d for d, _ in durations])
    best = traced.sort_values(["duration", "median_s", "run_time"], kind="stable").iloc[-1]
    return str(best["label"])


def timeline_plot(
    frame: pd.DataFrame, results_dir: Path, label: str, configured: Sequence[str], warnings: list[str]
) -> Plot | None:
    """Utilization, power and SM clock over time for one benchmark, one line per device (latest run)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    labels = [_bench_label(g, c) for g, c in zip(frame["group"], frame["case"], strict=True)]
    rows = frame.assign(label=labels)
    rows = rows[(rows["label"] == label) & rows["trace"].notna()]
    if rows.empty:
        return None
    run_id = latest_run_id(rows)
    rows = rows[rows["run_id"] == run_id]
    traces = []
    for _, r in sorted(
        rows.iterrows(), key=lambda item: device_sort_key(str(item[1]["device_label"]), configured)
    ):
        path = resolve_trace(results_dir, str(r["trace"]))
        trace = read_trace(path, str(r["gpu_uuid"]), warnings) if path else None
        if trace is not None:
            traces.append((str(r["device_label"]), trace))
    if not traces:
        return None
    colours = device_colours(frame, configured)
    fig, axes = plt.subplots(len(TIMELINE_PANELS), 1, figsize=(10, 7.6), sharex=True)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.07, top=0.88, hspace=0.28)
    handles: dict[str, Any] = {}
    for ax, (title, columns, unit) in zip(axes, TIMELINE_PANELS, strict=True):
        drawn = []
        for device, trace in traces:
            column = next((c for c in columns if c in trace.columns), None)
            if column is None:
                continue
            values = pd.to_numeric(trace[column], errors="coerce")
            (line,) = ax.plot(
                trace["t"] - trace["t"].iloc[0],
                values,
                color=colours.get(device, "black"),
                linewidth=1.4,
                label=_plain(device),
            )
            handles.setdefault(device, line)
            drawn.append(column)
        shown = ", ".join(dict.fromkeys(drawn))
        ax.set_title(f"{title} ({shown})" if shown else title, fontsize=10, loc="left")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        if not drawn:
            ax.text(
                0.5,
                0.5,
                "not recorded on these devices",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="grey",
            )
    axes[-1].set_xlabel("seconds since the start of each trace")
    fig.legend(
        list(handles.values()),
        [_plain(d) for d in handles],
        loc="upper center",
        ncols=min(6, len(handles)),
        bbox_to_anchor=(0.5, 0.95),
        frameon=False,
        fontsize=9,
    )
    fig.suptitle(f"Telemetry during {_short(_plain(label), 70)} (run {_plain(str(run_id))})", fontsize=11)
    return Plot(
        f"timeline_{_safe_file(label)}.png",
        f"Telemetry timelines: {label}",
        _png(fig),
        "Utilization, power and SM clock sampled while the benchmark ran, one line per device.",
    )


def _safe_file(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", text).strip("_")[:80] or "benchmark"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str) -> str:
    """Text for matplotlib: no control characters and no ``$`` (mathtext)."""
    return strip_controls(text).replace("$", r"\$")


# --- escaping and Markdown -------------------------------------------------------------------------------

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


_MD_ESCAPES = {
    "\\": "\\\\",
    "|": "\\|",
    "<": "&lt;",
    ">": "&gt;",
    "`": "\\`",
    "*": "\\*",
    "[": "\\[",
    "]": "\\]",
    "&": "&amp;",
}


def md_escape(value: Any) -> str:
    """A value for a Markdown table cell or heading: no control characters, no HTML, no table breaks."""
    return "".join(_MD_ESCAPES.get(c, c) for c in strip_controls(str(value)))


def md_table(table: Table) -> str:
    if not table.rows:
        return f"_{md_escape(table.caption)}_\n" if table.caption else "_none_\n"
    lines = []
    if table.caption:
        lines += [md_escape(table.caption), ""]
    lines.append("| " + " | ".join(md_escape(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for i, row in enumerate(table.rows):
        cells = [md_escape(c) for c in row]
        if table.flagged and table.flagged[i]:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(report: Report, plot_dir: str = "plots") -> str:
    """The report as Markdown; plots are linked as ``plots/<name>.png`` next to it."""
    out = [
        "# gpubench report",
        "",
        f"Generated {md_escape(report.generated)} from {md_escape(report.results_dir)}.",
        "",
        *[f"- {md_escape(line)}" for line in report.summary],
        "",
    ]
    if report.warnings:
        out += ["## Skipped or damaged files", ""]
        out += [f"- {md_escape(w)}" for w in report.warnings]
        out.append("")
    out += ["## Runs", "", md_table(report.runs)]
    out += ["## Devices side by side", "", md_table(report.ratios)]
    for plot in report.plots:
        if plot.name.startswith("throughput"):
            out += [f"![{md_escape(plot.title)}]({plot_dir}/{plot.name})", ""]
    out += ["## Trends and regressions", "", md_table(report.trends)]
    out += ["## Outliers against same-model siblings", "", md_table(report.outliers)]
    out += ["## Telemetry timelines", ""]
    timelines = [p for p in report.plots if p.name.startswith("timeline")]
    if timelines:
        for plot in timelines:
            out += [
                f"Benchmark: {md_escape(report.timeline_benchmark or '')}. {md_escape(plot.caption)}",
                "",
                f"![{md_escape(plot.title)}]({plot_dir}/{plot.name})",
                "",
            ]
    else:
        out += ["_No telemetry trace to draw (or plots are off)._", ""]
    out += ["## GPU pages", ""]
    out += [f"- [{md_escape(p.title)}](#{p.anchor})" for p in report.pages]
    out.append("")
    for page in report.pages:
        out += [f'<a id="{page.anchor}"></a>', "", f"### {md_escape(page.title)}", ""]
        out += [f"- {md_escape(k)}: {md_escape(v)}" for k, v in page.identity]
        out.append("")
        out += [f"> **{md_escape(n)}**" for n in page.notes]
        if page.notes:
            out.append("")
        out += ["#### Benchmarks", "", md_table(page.benchmarks)]
        out += ["#### Telemetry summary", "", md_table(page.telemetry)]
        out += ["#### Latest verification", "", md_escape(page.verification_caption), ""]
        if page.verification.rows:
            out.append(md_table(page.verification))
    return "\n".join(out).rstrip() + "\n"


# --- outputs -------------------------------------------------------------------------------------------


def write_report(
    report: Report,
    output_dir: Path,
    formats: Sequence[str] = ("md", "html", "csv", "parquet"),
    warn: Any = None,
) -> dict[str, Path]:
    """Write the chosen outputs into ``output_dir``; returns ``{kind: path}``.

    Without a Parquet engine, ``tidy.parquet`` is skipped with a warning and everything else is written.
    """
    from gpubench.results import atomic_write_text

    output_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if "md" in formats:
        for plot in report.plots:
            target = output_dir / "plots" / plot.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(plot.png)
            written[f"plot:{plot.name}"] = target
        written["md"] = atomic_write_text(output_dir / "report.md", render_markdown(report))
    if "html" in formats:
        from gpubench.report.html import render_html

        written["html"] = atomic_write_text(output_dir / "report.html", render_html(report))
    tidy = report.loaded.benchmarks
    if "csv" in formats:
        written["csv"] = atomic_write_text(output_dir / "tidy.csv", tidy.to_csv(index=False))
        if not report.loaded.verify.empty:
            written["verify_csv"] = atomic_write_text(
                output_dir / "verify.csv", report.loaded.verify.to_csv(index=False)
            )
    if "parquet" in formats:
        try:
            tidy.to_parquet(output_dir / "tidy.parquet", index=False)
            written["parquet"] = output_dir / "tidy.parquet"
        except ImportError as exc:
            (warn or _stderr)(
                f"warning: tidy.parquet not written: no Parquet engine ({exc}). "
                "Fix: install pyarrow (pip install pyarrow)"
            )
    return written


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def default_output_dir(results_dir: Path, now: _dt.datetime | None = None) -> Path:
    """``results/report/<UTC timestamp>/`` (a suffix is added when that folder already exists)."""
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    target = safe_child(results_dir, "report", stamp)
    suffix = 1
    while target.exists():
        suffix += 1
        target = safe_child(results_dir, "report", f"{stamp}-{suffix}")
    return target


# --- command line --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``gpubench report`` (the CLI adds --config, --results-dir, --set... itself)."""
    parser.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        help="folder for report.md, report.html, tidy.csv, tidy.parquet and plots/ "
        "(default: <results>/report/<UTC timestamp>/)",
    )
    parser.add_argument(
        "--benchmark",
        metavar="NAME",
        help="benchmark whose utilization, power and clock timelines are plotted "
        "(part of its name; default: report.benchmark, else the longest traced one)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip matplotlib plots (faster)")


def _explicit_devices(config: Any) -> list[str] | None:
    """The device order the user set (flag, environment or file); None: the order the runs recorded."""
    if any(key in config.sources for key in ("bench.devices", "dl.device")):
        return list(config.bench_devices())
    return None


def run(args: argparse.Namespace) -> int:
    """``gpubench report``: 0 report written, 2 nothing to report or bad usage."""
    import dataclasses

    from gpubench.config.options import config_from_args

    config = config_from_args(args)
    settings = config.report
    if getattr(args, "no_plots", False):
        settings = dataclasses.replace(settings, plots=False)
    results_dir = Path(config.results.dir)
    quiet = bool(getattr(args, "quiet", False))
    loaded = load_runs(results_dir)
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if loaded.empty:
        where = "no readable saved runs" if loaded.warnings else "no saved runs"
        print(
            f"error: {where} under {results_dir}/ (looked in benchmarks/**/*.json and verify/*.json). "
            "Make one with `pytest bench` (benchmarks, saved under results/benchmarks/) or `gpubench verify` "
            "(health checks), or point --results-dir at a results folder.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        report = build_report(
            results_dir,
            settings,
            _explicit_devices(config),
            benchmark=getattr(args, "benchmark", None),
            loaded=loaded,
        )
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    output = Path(args.output) if getattr(args, "output", None) else default_output_dir(results_dir)
    written = write_report(report, output, settings.formats)
    for line in report.warnings[len(loaded.warnings) :]:
        print(f"warning: {line}", file=sys.stderr)
    if not quiet:
        for line in report.summary:
            print(line)
    for kind, path in written.items():
        if not kind.startswith("plot:") or not quiet:
            print(f"{kind.split(':')[0]:<8} {path}")
    return EXIT_OK
