"""The proof's summary: every step with its exit code (or why it was skipped) and the figures to read off.

    python scripts/proof/summarize.py --work WORK_DIR --out OUT_DIR [--started EPOCH_S] [--budget S]

Reads what the steps of ``scripts/gpu-suite.sh --proof`` left in WORK_DIR (``steps.tsv``, ``probe.json``,
``info.json``, ``results/``, ``dmon.txt``, ``nvidia-smi-gpus.csv``, ``clock-offset.txt``) and in OUT_DIR
(``timers.json``, ``nvml-profile.json``, ``proof.tar.gz``) and writes ``OUT_DIR/summary.json``:

- ``steps``: name, status (ok / failed / timeout / skipped), exit code, expected exit codes, wall seconds,
  timeout, reason, command;
- ``figures``: MNIST images/s per pipeline (eager ``resident`` vs ``cuda-graph``), elementwise GB/s as a
  share of the device-to-device copy bandwidth, the timers' differences in %, NVML telemetry vs
  ``nvidia-smi dmon`` (power and SM clock means, in %), verification wall seconds per GPU, the
  distributed run's bus bandwidths and DDP images/s, the recorded profile's check. A figure whose inputs
  are missing says why instead of a number.

Exit 0 when no step failed or timed out, 1 otherwise (2 on bad usage).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SCHEMA = "gpubench.proof/1"
ELEMENTWISE_OPS = ("add", "mul", "relu", "sigmoid", "tanh")
ITEMSIZE = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8}
ELEMENTWISE_TARGET = 0.85  # elementwise at >= 85% of the measured device-to-device copy bandwidth
ELEMENTWISE_MIN_TENSOR_BYTES = 256 << 20
TELEMETRY_TOLERANCE_PCT = 5.0


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _pct(value: float, reference: float) -> float | None:
    return 100.0 * (value - reference) / reference if reference else None


# --- steps ---------------------------------------------------------------------------------------------

STEP_FIELDS = ("name", "status", "rc", "expected_rc", "t0", "t1", "timeout_s", "reason", "command")


def read_steps(path: Path) -> list[dict[str, Any]]:
    """The rows ``proof.sh`` appended, one per step, as JSON-ready dicts."""
    steps: list[dict[str, Any]] = []
    if not path.is_file():
        return steps
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        cells = (line.split("\t") + [""] * len(STEP_FIELDS))[: len(STEP_FIELDS)]
        raw = dict(zip(STEP_FIELDS, cells, strict=True))
        wall = None
        if raw["t0"] and raw["t1"]:
            wall = round(float(raw["t1"]) - float(raw["t0"]), 2)
        steps.append({
            "name": raw["name"],
            "status": raw["status"],
            "rc": int(raw["rc"]) if raw["rc"].lstrip("-").isdigit() else None,
            "expected_rc": [int(x) for x in raw["expected_rc"].split(",") if x.strip().isdigit()],
            "wall_s": wall,
            "timeout_s": int(raw["timeout_s"]) if raw["timeout_s"].isdigit() else None,
            "reason": raw["reason"] or None,
            "command": raw["command"],
        })
    return steps


# --- benchmarks ----------------------------------------------------------------------------------------


def benchmark_rows(results: Path) -> list[dict[str, Any]]:
    """Every benchmark of the pytest-benchmark runs saved under results/benchmarks (not the distributed run)."""
    rows = []
    folder = results / "benchmarks"
    for path in sorted(folder.glob("*/*.json")) if folder.is_dir() else []:
        if path.parent.name == "distributed":
            continue
        for bench in _load_json(path).get("benchmarks", []):
            rows.append(bench | {"_file": path.relative_to(results).as_posix()})
    return rows


def mnist_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        info = row.get("extra_info", {})
        if str(info.get("workload", "")).startswith("mnist-") and info.get("images_per_s"):
            device = str(info.get("device"))
            found.setdefault(device, {"batch_size": info.get("batch_size"), "images": info.get("size"),
                                      "data_source": (info.get("data_source") or {}).get("kind"),
                                      "images_per_s": {}})
            found[device]["images_per_s"][info.get("pipeline")] = info["images_per_s"]
    if not found:
        return {"skipped": "no MNIST benchmark results"}
    for figures in found.values():
        ips = figures["images_per_s"]
        if ips.get("resident") and ips.get("cuda-graph"):
            figures["cuda_graph_vs_eager"] = ips["cuda-graph"] / ips["resident"]
        if ips.get("resident") and ips.get("dataloader"):
            figures["resident_vs_dataloader"] = ips["resident"] / ips["dataloader"]
        missing = [p for p in ("resident", "cuda-graph") if p not in ips]
        if missing:
            figures["note"] = f"not measured here: {', '.join(missing)} (eager = the resident pipeline)"
    return {"by_device": found}


def elementwise_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Elementwise GB/s at the largest f32 size against the device-to-device copy case of the same run."""
    by_device: dict[str, Any] = {}
    for row in rows:
        info = row.get("extra_info", {})
        device = str(info.get("device"))
        if info.get("workload") == "copy-d2d" and info.get("gbps"):
            entry = by_device.setdefault(device, {"ops": {}})
            if info["gbps"] > entry.get("copy_d2d_gbps", 0.0):
                entry["copy_d2d_gbps"] = info["gbps"]
                entry["copy_d2d_bytes"] = info.get("size")
        if info.get("workload") in ELEMENTWISE_OPS and info.get("dtype") == "f32" and info.get("gbps"):
            entry = by_device.setdefault(device, {"ops": {}})
            known = entry["ops"].get(info["workload"])
            if known is None or info.get("size", 0) > known["numel"]:
                entry["ops"][info["workload"]] = {
                    "numel": info.get("size", 0),
                    "tensor_bytes": info.get("size", 0) * ITEMSIZE["f32"],
                    "gbps": info["gbps"],
                    "copy_fraction_recorded": info.get("copy_fraction"),
                }
    if not by_device:
        return {"skipped": "no elementwise or copy benchmark results"}
    for entry in by_device.values():
        copy = entry.get("copy_d2d_gbps")
        for op in entry["ops"].values():
            op["vs_copy_d2d"] = op["gbps"] / copy if copy else None
        ratios = [op["vs_copy_d2d"] for op in entry["ops"].values() if op["vs_copy_d2d"] is not None]
        big = all(op["tensor_bytes"] >= ELEMENTWISE_MIN_TENSOR_BYTES for op in entry["ops"].values())
        entry["target"] = ELEMENTWISE_TARGET
        entry["min_ratio"] = min(ratios) if ratios else None
        entry["meets_target"] = bool(ratios) and min(ratios) >= ELEMENTWISE_TARGET
        entry["tensors_at_least_256MiB"] = big and bool(entry["ops"])
    return {"by_device": by_device}


# --- timers --------------------------------------------------------------------------------------------


def timer_figures(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"skipped": f"{path.name} was not written (see the timers step)"}
    data = _load_json(path)
    diffs = {
        f"{r['device']} {r['operation']}: {r['timer']} vs {r['reference']}": r["diff_pct"]
        for r in data.get("rows", []) if r.get("diff_pct") is not None
    }
    return {
        "diff_pct": diffs,
        "worst_diff_pct": data.get("worst_diff_pct"),
        "tolerance_pct": 100.0 * float(data.get("tolerance", 0.0)),
        "agree": data.get("agree"),
        "skipped": [f"{s['timer']} on {s['device']}: {s['reason']}" for s in data.get("skipped", [])],
    }


# --- telemetry vs dmon -----------------------------------------------------------------------------------


def read_dmon(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """``(column names, rows)`` of ``nvidia-smi dmon -o DT`` output; each row has ``_t`` (epoch seconds)."""
    names: list[str] = []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("#"):
            tokens = line.lstrip("#").split()
            if tokens and tokens[0].lower() == "date":  # the names line (the next one holds units)
                names = [t.lower() for t in tokens]
            continue
        cells = line.split()
        if not names or len(cells) != len(names):
            continue
        row: dict[str, Any] = {}
        for name, cell in zip(names, cells, strict=True):
            row[name] = cell
        try:
            stamp = dt.datetime.strptime(f"{row['date']} {row['time']}", "%Y%m%d %H:%M:%S")
        except (KeyError, ValueError):
            continue
        row["_t"] = stamp.timestamp() + 0.5  # the sample was taken within that second: its middle
        rows.append(row)
    return names, rows


def _number(cell: Any) -> float | None:
    try:
        value = float(cell)
    except (TypeError, ValueError):
        return None  # "-" or "N/A": not read
    return value


def _smi_index_by_uuid(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    out = {}
    with path.open(encoding="utf-8", errors="replace") as handle:
        for row in csv.reader(handle):
            if len(row) >= 2 and row[0].strip().isdigit():
                out[row[1].strip()] = row[0].strip()
    return out


def _clock_offset(path: Path) -> tuple[float | None, float | None]:
    """Mean of ``time.time() - time.perf_counter()`` readings and their spread (seconds)."""
    values = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            number = _number(line.strip())
            if number is not None:
                values.append(number)
    if not values:
        return None, None
    return statistics.fmean(values), max(values) - min(values)


def telemetry_vs_dmon(work: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means of NVML power and SM clock in the benchmark traces against dmon's ``pwr`` and ``pclk`` over the
    same windows (the traces' own first..last sample, moved onto the wall clock)."""
    dmon_path = work / "dmon.txt"
    if not dmon_path.is_file():
        return {"skipped": "no nvidia-smi dmon trace (no nvidia-smi here)"}
    offset, spread = _clock_offset(work / "clock-offset.txt")
    if offset is None:
        return {"skipped": "no clock offset recorded: traces cannot be placed on dmon's clock"}
    names, dmon = read_dmon(dmon_path)
    if not dmon:
        return {"skipped": "dmon.txt holds no samples"}
    index_by_uuid = _smi_index_by_uuid(work / "nvidia-smi-gpus.csv")
    results = work / "results"
    nvml: dict[str, list[float]] = {"power_w": [], "sm_clock_mhz": []}
    smi: dict[str, list[float]] = {"power_w": [], "sm_clock_mhz": []}
    windows, window_s = 0, 0.0
    for row in rows:
        telemetry = row.get("extra_info", {}).get("telemetry") or {}
        if telemetry.get("source") != "nvml" or not telemetry.get("trace_in_results"):
            continue
        trace = results / telemetry["trace_in_results"]
        if not trace.is_file():
            continue
        with trace.open(encoding="utf-8") as handle:
            samples = list(csv.DictReader(handle))
        times = [t for t in (_number(s.get("t")) for s in samples) if t is not None]
        if len(times) < 2:
            continue
        w0, w1 = min(times) + offset, max(times) + offset
        gpu = index_by_uuid.get(str(telemetry.get("uuid")))
        inside = [d for d in dmon if w0 <= d["_t"] <= w1 and (gpu is None or d.get("gpu") == gpu)]
        if len(inside) < 2:
            continue  # shorter than two dmon samples: nothing to compare
        windows += 1
        window_s += w1 - w0
        for metric, column in (("power_w", "pwr"), ("sm_clock_mhz", "pclk")):
            nvml[metric] += [v for v in (_number(s.get(metric)) for s in samples) if v is not None]
            smi[metric] += [v for v in (_number(d.get(column)) for d in inside) if v is not None]
    if not windows:
        return {"skipped": "no NVML telemetry trace spans two dmon samples", "dmon_columns": names}
    out: dict[str, Any] = {
        "windows": windows,
        "window_s": round(window_s, 1),
        "clock_offset_spread_s": spread,
        "tolerance_pct": TELEMETRY_TOLERANCE_PCT,
        "note": "NVML: gpubench's sampler (nvmlDeviceGetPowerUsage / 1000, NVML_CLOCK_SM); "
                "dmon: pwr (W) and pclk (MHz, the graphics clock, equal to the SM clock on current GPUs)",
    }
    agree = True
    for metric in nvml:
        if not nvml[metric] or not smi[metric]:
            out[metric] = {"skipped": "not read by NVML or by dmon (N/A)"}
            continue
        a, b = statistics.fmean(nvml[metric]), statistics.fmean(smi[metric])
        diff = _pct(a, b)
        out[metric] = {"nvml_mean": a, "dmon_mean": b, "diff_pct": diff,
                       "nvml_samples": len(nvml[metric]), "dmon_samples": len(smi[metric])}
        agree = agree and diff is not None and abs(diff) <= TELEMETRY_TOLERANCE_PCT
    out["agree"] = agree
    return out


# --- verification, distributed, info, profile -----------------------------------------------------------


def verify_figures(results: Path) -> dict[str, Any]:
    runs = []
    folder = results / "verify"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = _load_json(path)
        per_device: dict[str, Any] = {}
        for check in data.get("checks", []):
            entry = per_device.setdefault(check["device"], {"checks_s": 0.0, "verdicts": {}})
            entry["checks_s"] = round(entry["checks_s"] + float(check.get("duration_s") or 0.0), 3)
            entry["verdicts"][check["verdict"]] = entry["verdicts"].get(check["verdict"], 0) + 1
        runs.append({"file": path.name, "level": data.get("level"), "exit_code": data.get("exit_code"),
                     "summary": data.get("summary"), "gpu_verified": data.get("gpu_verified"),
                     "devices": per_device})
    if not runs:
        return {"skipped": "no verification results"}
    wall = {f"{dev} ({run['level']})": entry["checks_s"] for run in runs for dev, entry in run["devices"].items()}
    return {"runs": runs, "checks_wall_s_per_device": wall}


def distributed_figures(results: Path) -> dict[str, Any]:
    folder = results / "distributed"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        return {"skipped": "no distributed run"}
    data = _load_json(files[-1])
    best: dict[str, float] = {}
    for row in data.get("collectives", []):
        best[row["op"]] = max(best.get(row["op"], 0.0), float(row.get("busbw_gbps") or 0.0))
    algbw: dict[str, float] = {}
    for row in data.get("collectives", []):
        algbw[row["op"]] = max(algbw.get(row["op"], 0.0), float(row.get("algbw_gbps") or 0.0))
    return {
        "file": files[-1].name,
        "backend": data.get("backend"),
        "world_size": data.get("world_size"),
        "exit_code": data.get("exit_code"),
        "devices": sorted({str(r.get("device")) for r in data.get("ranks", [])}),
        "best_busbw_gbps": best,
        "best_algbw_gbps": algbw,
        "ddp_images_per_s": {str(r["world_size"]): r.get("total_images_per_s") for r in data.get("ddp_scaling", [])},
        "messages": data.get("messages", []),
    }


def profile_figures(out: Path, steps: list[dict[str, Any]]) -> dict[str, Any]:
    path = out / "nvml-profile.json"
    if not path.is_file():
        step = next((s for s in steps if s["name"] == "nvml-profile"), None)
        return {"skipped": (step or {}).get("reason") or "no profile was recorded"}
    data = _load_json(path)
    figures: dict[str, Any] = {
        "file": path.name,
        "gpus": [g.get("name") for g in data.get("gpus", [])],
        "driver_version": data.get("driver_version"),
        "missing_functions": data.get("missing_functions", []),
        "errors": {g.get("uuid", str(i)): g.get("errors") for i, g in enumerate(data.get("gpus", []))},
    }
    try:
        from gpubench.testing.nvml_sim import load_profile

        load_profile(path)
        figures["loads"] = True
    except Exception as exc:  # the check this figure exists for: say why it does not load
        figures["loads"] = False
        figures["load_error"] = f"{type(exc).__name__}: {exc}"
    return figures


def _guarded(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except Exception as exc:  # one damaged input must not lose the rest of the summary
        return {"error": f"{name}: {type(exc).__name__}: {exc}"}


def _files(out: Path) -> list[dict[str, Any]]:
    return [{"name": p.name, "bytes": p.stat().st_size} for p in sorted(out.iterdir()) if p.is_file()]


def summarize(work: Path, out: Path, started: float | None, budget: int | None) -> dict[str, Any]:
    steps = read_steps(work / "steps.tsv")
    results = work / "results"
    probe = _load_json(work / "probe.json") if (work / "probe.json").is_file() else {}
    rows: list[dict[str, Any]] = []
    bench_error = None
    try:
        rows = benchmark_rows(results)
    except Exception as exc:
        bench_error = f"{type(exc).__name__}: {exc}"
    failed = [s["name"] for s in steps if s["status"] in ("failed", "timeout")]
    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(time.time() - started, 1) if started else None,
        "budget_s": budget,
        "gpu": bool(probe.get("gpu")),
        "exit_code": 1 if failed else 0,
        "failed_steps": failed,
        "skipped_steps": {s["name"]: s["reason"] for s in steps if s["status"] == "skipped"},
        "environment": probe,
        "info": _guarded("info", lambda: _load_json(work / "info.json")) if (work / "info.json").is_file()
        else {"skipped": "gpubench info --json wrote nothing"},
        "settings": {k: v for k, v in sorted(os.environ.items()) if k.startswith("GPUBENCH_")},
        "steps": steps,
        "figures": {
            "mnist": _guarded("mnist", lambda: mnist_figures(rows)),
            "elementwise_vs_copy": _guarded("elementwise", lambda: elementwise_figures(rows)),
            "timers": _guarded("timers", lambda: timer_figures(out / "timers.json")),
            "telemetry_vs_dmon": _guarded("telemetry", lambda: telemetry_vs_dmon(work, rows)),
            "verify": _guarded("verify", lambda: verify_figures(results)),
            "distributed": _guarded("distributed", lambda: distributed_figures(results)),
            "nvml_profile": _guarded("profile", lambda: profile_figures(out, steps)),
        },
    }
    if bench_error:
        summary["figures"]["benchmarks_error"] = bench_error
    summary["files"] = _files(out)
    return summary


def _digest(summary: dict[str, Any]) -> Iterable[str]:
    yield f"proof summary: {'GPU' if summary['gpu'] else 'no GPU'}; {len(summary['steps'])} steps"
    for step in summary["steps"]:
        wall = f"{step['wall_s']:.1f}s" if step["wall_s"] is not None else "-"
        rc = step["rc"] if step["rc"] is not None else "-"
        why = f"  {step['reason']}" if step["reason"] and step["status"] != "ok" else ""
        yield f"  {step['name']:<22} {step['status']:<8} rc={rc!s:<4} {wall:>8}{why}"
    for name, figure in summary["figures"].items():
        text = json.dumps(figure, default=str)
        yield f"  {name}: {text[:300]}{'...' if len(text) > 300 else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--started", type=float, default=None, help="epoch seconds the proof started")
    parser.add_argument("--budget", type=int, default=None, help="PROOF_BUDGET_S, for the record")
    args = parser.parse_args(argv)
    summary = summarize(args.work, args.out, args.started, args.budget)
    target = args.out / "summary.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(target)
    for line in _digest(summary):
        print(line)
    print(f"wrote {target}")
    return int(summary["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
