"""Saved runs read into tables: :func:`load_runs` and what it returns, :class:`LoadedRuns`.

Reads ``benchmarks/**/*.json`` (pytest-benchmark saves, single-host or merged from several hosts by
``gpubench.distributed``), ``verify/*.json`` and the telemetry traces they name. Damaged files (empty,
truncated, not JSON, wrong schema) and damaged entries inside a good file are skipped with a warning
naming each one; the rest is still loaded.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpubench.report.columns import (
    BENCHMARK_COLUMNS,
    RUN_COLUMNS,
    VERIFY_COLUMNS,
    as_dict,
    as_text,
    finite_number,
)
from gpubench.report.traces import TELEMETRY_TEXT, flatten_telemetry, resolve_trace, summary_from_trace

if TYPE_CHECKING:
    import pandas as pd

VERIFY_SCHEMA_PREFIX = "gpubench.verify/"
# (run_id, group, case, gpu_uuid): one benchmark on one GPU in one run
SampleKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class History:
    """What a windowed read of the results store left out (``gpubench report`` over a fleet's history):
    the benchmark and verification tables hold each series' last ``window`` runs (a benchmark on a GPU; a
    GPU's verification runs), and these count the whole history kept in ``store``."""

    window: int
    store: str
    benchmark_rows: int
    verify_rows: int
    # (group, case, gpu_uuid) -> runs, gpu_uuid -> runs (benchmark runs, else verification runs)
    series_runs: Mapping[tuple[str | None, ...], int]
    gpu_runs: Mapping[str, int]

    def series(self, group: Any, case: Any, uuid: Any) -> int | None:
        """Runs of one benchmark on one GPU over the whole history (None: not counted)."""
        key = tuple(None if v is None or v != v else str(v) for v in (group, case, uuid))
        return self.series_runs.get(key)


@dataclass(frozen=True)
class LoadedRuns:
    """Everything read from a results folder.

    ``benchmarks``: the tidy table (:data:`BENCHMARK_COLUMNS` plus telemetry summary columns such as
    ``gpu_util_pct_mean``, ``power_w_mean``, ``energy_j``). ``verify``: one row per verification check.
    ``warnings``: one line per skipped file or entry, naming it. ``runs``: one row per saved run.
    ``samples``: the raw rounds (seconds per call) of the rows whose saved run kept them
    (pytest-benchmark's ``stats.data``, written with ``--benchmark-save-data``), keyed by
    :data:`SampleKey` ``(run_id, group, case, gpu_uuid)``; a case held twice in one run has its rounds joined.
    """

    results_dir: Path
    benchmarks: pd.DataFrame
    verify: pd.DataFrame
    runs: pd.DataFrame
    warnings: tuple[str, ...] = ()
    samples: Mapping[SampleKey, tuple[float, ...]] = field(default_factory=dict)
    history: History | None = None  # None: ``benchmarks`` and ``verify`` hold every saved row

    @property
    def empty(self) -> bool:
        return bool(self.benchmarks.empty and self.verify.empty)

    @property
    def telemetry_columns(self) -> list[str]:
        fixed = set(BENCHMARK_COLUMNS)
        return [c for c in self.benchmarks.columns if c not in fixed]


def load_runs(results_dir: Path) -> LoadedRuns:
    """Read ``benchmarks/**/*.json`` (pytest-benchmark saves), ``verify/*.json`` and the traces they name.

    Every file is read each time; ``gpubench report`` reads the store instead
    (:mod:`gpubench.report.store`), which reads each file once."""
    results_dir = Path(results_dir)
    warnings: list[str] = []
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    samples: dict[SampleKey, tuple[float, ...]] = {}
    bench_dir = results_dir / "benchmarks"
    for path in sorted(bench_dir.rglob("*.json")) if bench_dir.is_dir() else []:
        read = benchmark_file_rows(path, results_dir, warnings)
        if read is not None and read[1]:
            runs.append(read[0])
            rows.extend(read[1])
            _collect_samples(read[1], samples)
    verify_rows: list[dict[str, Any]] = []
    verify_dir = results_dir / "verify"
    for path in sorted(verify_dir.glob("*.json")) if verify_dir.is_dir() else []:
        read = verify_file_rows(path, results_dir, warnings)
        if read is not None:
            runs.append(read[0])
            verify_rows.extend(read[1])
    benchmarks = tidy_frame(rows, warnings)
    return LoadedRuns(
        results_dir, benchmarks, verify_frame(verify_rows), runs_frame(runs), tuple(warnings), samples
    )


def benchmark_file_rows(
    path: Path, results_dir: Path, warnings: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """One pytest-benchmark saved run: its run record and benchmark rows; None (with a warning) when damaged."""
    return _file_rows(
        path, warnings, _benchmark_schema_problem, lambda data: _benchmark_rows(path, data, results_dir, warnings)
    )


def verify_file_rows(
    path: Path, results_dir: Path, warnings: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """One verification result: its run record and check rows; None (with a warning) when damaged."""
    del results_dir  # verification results name no trace files
    return _file_rows(path, warnings, _verify_schema_problem, lambda data: _verify_rows(path, data, warnings))


def _file_rows(
    path: Path,
    warnings: list[str],
    problem_of: Callable[[Mapping[str, Any]], str | None],
    rows_of: Callable[[Mapping[str, Any]], tuple[dict[str, Any], list[dict[str, Any]]]],
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """Read ``path``, check it with ``problem_of`` (a reason to skip it, or None), then ``rows_of`` it."""
    data = _read_json(path, warnings)
    if data is None:
        return None
    problem = problem_of(data)
    if problem:
        warnings.append(f"skipped {path}: {problem}")
        return None
    return rows_of(data)


def verify_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Verification check rows as a table with :data:`VERIFY_COLUMNS`, times parsed."""
    import pandas as pd

    verify: pd.DataFrame = pd.DataFrame(rows, columns=list(VERIFY_COLUMNS))
    for column in ("started", "finished"):
        verify[column] = pd.to_datetime(verify[column], utc=True, errors="coerce", format="ISO8601")
    verify["duration_s"] = pd.to_numeric(verify["duration_s"], errors="coerce")
    return verify


def runs_frame(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """Run records as a table with :data:`RUN_COLUMNS`, in time order."""
    import pandas as pd

    run_frame = pd.DataFrame(runs, columns=list(RUN_COLUMNS))
    run_frame["run_time"] = pd.to_datetime(run_frame["run_time"], utc=True, errors="coerce", format="ISO8601")
    ordered: pd.DataFrame = run_frame.sort_values(["run_time", "run_id"], kind="stable").reset_index(
        drop=True
    )
    return ordered


def _collect_samples(rows: list[dict[str, Any]], samples: dict[SampleKey, tuple[float, ...]]) -> None:
    """Move each row's raw rounds (``_data``) out of the row, into ``samples``."""
    for row in rows:
        data = row.pop("_data", None)
        if data:
            key = (str(row["run_id"]), str(row["group"]), str(row["case"]), str(row["gpu_uuid"]))
            samples[key] = samples.get(key, ()) + tuple(data)


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


def _benchmark_rows(
    path: Path, data: Mapping[str, Any], results_dir: Path, warnings: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    machine = as_dict(data.get("machine_info"))
    gb = as_dict(machine.get("gpubench"))
    env = as_dict(gb.get("environment"))
    try:
        machine_id = str(path.parent.relative_to(results_dir / "benchmarks"))
    except ValueError:
        machine_id = path.parent.name
    # gpubench writes the run id at the top level ("gpubench": {"run_id"}); older and distributed saves
    # keep it in machine_info
    run_id = str(
        as_dict(data.get("gpubench")).get("run_id") or gb.get("run_id") or f"{machine_id}/{path.stem}"
    )
    run_time = data.get("datetime")
    if not isinstance(run_time, str):
        stamp = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc)
        warnings.append(
            f"{path}: no 'datetime' field; using the file's modification time {stamp:%Y-%m-%d %H:%M}"
        )
        run_time = stamp.isoformat()
    run_host = str(env.get("host") or machine.get("node") or "")
    commit = as_dict(data.get("commit_info")).get("id")
    base = {
        "run_id": run_id,
        "run_time": run_time,
        "machine_id": machine_id,
        "commit": as_text(commit),
        "torch_version": as_text(env.get("torch")),
        "cuda_build": as_text(env.get("cuda_build")),
        "driver_version": as_text(env.get("driver")),
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
        "configured_devices": ",".join(_recorded_devices(as_dict(gb.get("config")))),
        "torch_version": base["torch_version"],
        "driver_version": base["driver_version"],
        "config_files": ", ".join(str(f) for f in gb.get("config_files") or [] if f is not None)
        if isinstance(gb.get("config_files"), list)
        else as_text(gb.get("config_files")),
        "source_file": str(path),
    }
    return run, rows


def _recorded_devices(config: Mapping[str, Any]) -> list[str]:
    """The device order a run was configured with: its ``bench.devices``, else its ``dl.device``."""
    devices = as_dict(config.get("bench")).get("devices")
    if isinstance(devices, list) and devices:
        return [str(d) for d in devices]
    device = as_dict(config.get("dl")).get("device")
    return [str(device)] if device else []


def case_name(name: str, devices: Iterable[str]) -> str:
    """The test name without its device id: ``test_matmul[cuda:1-f32-4096]`` -> ``test_matmul[f32-4096]``."""
    return _case_name(name, *devices)


@functools.lru_cache(maxsize=4096)  # a fleet's runs repeat a few dozen names: one regex each, not one a row
def _case_name(name: str, *devices: str) -> str:
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
    if not isinstance(stats, Mapping) or finite_number(stats.get("median")) is None:
        return "no 'stats.median' (not a pytest-benchmark result)"
    median = float(stats["median"])
    if median <= 0:
        return f"median {median} s is not a positive time"
    extra = as_dict(bench.get("extra_info"))
    gpu = as_dict(extra.get("gpu"))
    name = str(bench.get("name") or bench.get("fullname") or "?")
    device = str(
        extra.get("device") or gpu.get("device") or as_dict(bench.get("params")).get("device") or "unknown"
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
        "gpu_name": as_text(gpu.get("name")),
        "gpu_index": finite_number(gpu.get("index")),
        "gpu_pci_bus_id": as_text(gpu.get("pci_bus_id")),
        "workload": as_text(extra.get("workload")),
        "dtype": as_text(extra.get("dtype")),
        "size": as_text(extra.get("size")),
        "bytes": finite_number(extra.get("bytes")),
        "flops": finite_number(extra.get("flops")),
        "items": finite_number(extra.get("items")),
        "median_s": median,
        "mean_s": finite_number(stats.get("mean")),
        "stddev_s": finite_number(stats.get("stddev")),
        "iqr_s": finite_number(stats.get("iqr")),
        "min_s": finite_number(stats.get("min")),
        "rounds": finite_number(stats.get("rounds")),
        "items_per_s": finite_number(extra.get("items_per_s")),
        "gbps": finite_number(extra.get("gbps")),
        "tflops": finite_number(extra.get("tflops")),
        "copy_fraction": finite_number(extra.get("copy_fraction")),
        "matmul_fraction": finite_number(extra.get("matmul_fraction")),
        "data_source": as_text(extra.get("data_source")),
        "timing_method": as_text(timing.get("method") if isinstance(timing, Mapping) else timing),
        "trace": None,
    }
    row["throughput"], row["throughput_unit"] = natural_rate(row)
    row["targets"], row["targets_missed"] = _target_counts(extra.get("targets"))
    row["_data"] = _raw_rounds(stats.get("data"))
    fractions = [f for f in (row["copy_fraction"], row["matmul_fraction"]) if f is not None]
    row["ceiling_fraction"] = fractions[0] if fractions else None
    telemetry = as_dict(extra.get("telemetry"))
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
            summary = {**summary, **summary_from_trace(resolved, str(uuid), warnings)}
    row.update(summary)
    return row


def _target_counts(targets: Any) -> tuple[float | None, float | None]:
    """How many targets a case recorded and how many it missed (``met`` false); None, None without any."""
    if not isinstance(targets, list) or not targets:
        return None, None
    recorded = [t for t in targets if isinstance(t, Mapping)]
    missed = [t for t in recorded if t.get("met") is False or t.get("status") == "missed"]
    return float(len(recorded)), float(len(missed))


def _raw_rounds(data: Any) -> tuple[float, ...]:
    """The saved rounds (``--benchmark-save-data``) when every one is a positive time; else none."""
    if not isinstance(data, list) or not data:
        return ()
    # the common case, all floats, checked in bulk: a non-finite one makes the sum non-finite
    if all(type(v) is float for v in data) and math.isfinite(sum(data)) and min(data) > 0:
        return tuple(data)
    values = [finite_number(v) for v in data]
    return tuple(v for v in values if v is not None) if all(v is not None and v > 0 for v in values) else ()


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


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


_NUMERIC = (
    "bytes",
    "flops",
    "items",
    "rounds",
    "gbps",
    "tflops",
    "throughput",
    "gpu_index",
    "targets",
    "targets_missed",
)


def tidy_frame(
    rows: list[dict[str, Any]], warnings: list[str], keep_rounds: str | None = None
) -> pd.DataFrame:
    """Benchmark rows as the tidy table (:data:`BENCHMARK_COLUMNS`, then telemetry columns, sorted).

    The raw rounds (``_data``) are dropped, or kept as a list column named ``keep_rounds``."""
    import pandas as pd

    for row in rows:
        data = row.pop("_data", None)
        if keep_rounds:
            row[keep_rounds] = list(data) if data else None
    extra = sorted({k for r in rows for k in r} - set(BENCHMARK_COLUMNS) - {keep_rounds})
    if keep_rounds:
        extra.append(keep_rounds)
    frame = pd.DataFrame(rows, columns=[*BENCHMARK_COLUMNS, *extra])
    frame["run_time"] = pd.to_datetime(frame["run_time"], utc=True, errors="coerce", format="ISO8601")
    if frame["run_time"].isna().any():
        bad = sorted(set(frame.loc[frame["run_time"].isna(), "source_file"]))
        warnings.extend(f"{f}: unreadable 'datetime'; its run sorts first" for f in bad)
    numeric = [c for c in BENCHMARK_COLUMNS if c.endswith(("_s", "_fraction")) or c in _NUMERIC]
    for column in [*numeric, *(c for c in extra if c not in TELEMETRY_TEXT.values() and c != keep_rounds)]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    # a run merged from several hosts names devices host/cuda:N so that columns stay distinct
    hosts_per_run = frame.groupby("run_id")["host"].transform("nunique") if not frame.empty else frame["host"]
    multi = hosts_per_run > 1 if not frame.empty else frame["host"].astype(bool)
    frame["device_label"] = frame["device"].where(~multi, frame["host"] + "/" + frame["device"])
    # annotated: pandas-stubs types DataFrame methods as returning Any when mypy targets Python 3.10
    tidy: pd.DataFrame = frame.sort_values(
        ["run_time", "run_id", "group", "case", "device"], kind="stable", na_position="first"
    ).reset_index(drop=True)
    return tidy


def _verify_rows(
    path: Path, data: Mapping[str, Any], warnings: list[str] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    env = as_dict(data.get("environment"))
    run_id = str(data.get("run_id") or path.stem)
    host = str(env.get("host") or "")
    names = {str(d.get("uuid")): d for d in data.get("devices") or [] if isinstance(d, Mapping)}
    by_device = {str(d.get("device")): d for d in names.values()}
    rows = []
    for position, check in enumerate(data["checks"]):
        if not isinstance(check, Mapping):
            if warnings is not None:
                warnings.append(
                    f"skipped {path} check #{position}: expected an object, found {type(check).__name__}"
                )
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
                "level": as_text(data.get("level")),
                "exit_code": as_text(data.get("exit_code")),
                "device": device,
                "gpu_uuid": str(uuid),
                "gpu_name": as_text(ident.get("name")),
                "check": str(check.get("check") or "?"),
                "verdict": str(check.get("verdict") or "?").upper(),
                "value": as_text(check.get("value")),
                "threshold": as_text(check.get("threshold")),
                "unit": as_text(check.get("unit")),
                "message": as_text(check.get("message")),
                "remedy": as_text(check.get("remedy")),
                "duration_s": finite_number(check.get("duration_s")),
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
        "torch_version": as_text(env.get("torch")),
        "driver_version": as_text(env.get("driver")),
        "config_files": None,
        "source_file": str(path),
    }
    return run, rows
