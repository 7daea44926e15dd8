"""Write the saved-run fixtures in this folder (a ``results/`` tree), and helpers the report tests reuse.

The numbers are HAND-MADE TEST DATA, not measurements: host ``fixture-node``, two GPUs of one made-up
model ``NVIDIA Fixture GPU 24GB`` and the CPU. Times are chosen so that the report has something to
show: in the second run ``cuda:1`` is 25% slower on the matmul case (a regression against the first
run and an outlier against its same-model sibling ``cuda:0``).

The file formats are the real ones: pytest-benchmark's saved JSON (``machine_info``, ``commit_info``,
``benchmarks[...].stats``, ``datetime``, ``version``) with gpubench's ``extra_info`` and
``machine_info["gpubench"]``, ``results/verify/<run_id>.json`` (schema ``gpubench.verify/1``) and
telemetry CSV traces ``results/telemetry/<run_id>/<benchmark>.csv``.

Regenerate with ``python tests/data/runs/make_runs.py`` (deterministic: no randomness, no clock).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HOST = "fixture-node"
MACHINE_ID = "Linux-CPython-3.11-64bit"
GPU_MODEL = "NVIDIA Fixture GPU 24GB"

GPUS: dict[str, dict[str, Any]] = {
    "cuda:0": {
        "device": "cuda:0",
        "index": 0,
        "name": GPU_MODEL,
        "uuid": "GPU-00000000-fixt-0000-0000-000000000000",
        "pci_bus_id": "00000000:01:00.0",
        "host": HOST,
        "total_memory_bytes": 24 * 2**30,
        "compute_capability": "8.6",
    },
    "cuda:1": {
        "device": "cuda:1",
        "index": 1,
        "name": GPU_MODEL,
        "uuid": "GPU-11111111-fixt-1111-1111-111111111111",
        "pci_bus_id": "00000000:02:00.0",
        "host": HOST,
        "total_memory_bytes": 24 * 2**30,
        "compute_capability": "8.6",
    },
    "cpu": {
        "device": "cpu",
        "name": "Fixture CPU 16-Core",
        "uuid": f"cpu-{HOST}",
        "pci_bus_id": None,
        "host": HOST,
        "logical_cpus": 16,
    },
}

# made-up ceilings for the fraction-of-ceiling columns (GB/s for copies, TFLOP/s for matmul)
CEILING_GBPS = {"cuda:0": 25.0, "cuda:1": 25.0}
CEILING_TFLOPS = {"cuda:0": 30.0, "cuda:1": 30.0, "cpu": 1.0}

# case -> (group, test function, extra ids, workload, size, bytes, flops, items) per call
CASES: dict[str, dict[str, Any]] = {
    "matmul": {
        "group": "matmul-f32",
        "func": "test_matmul",
        "ids": ["f32", "4096"],
        "workload": "matmul",
        "dtype": "f32",
        "size": 4096,
        "bytes": 3 * 4096 * 4096 * 4,
        "flops": 2 * 4096**3,
        "items": None,
    },
    "add": {
        "group": "add-f32",
        "func": "test_elementwise",
        "ids": ["add", "f32", "16777216"],
        "workload": "add",
        "dtype": "f32",
        "size": 16777216,
        "bytes": 3 * 16777216 * 4,
        "flops": 16777216,
        "items": None,
    },
    "h2d": {
        "group": "copy-h2d",
        "func": "test_copy",
        "ids": ["h2d", "16777216"],
        "workload": "copy_h2d",
        "dtype": "u8",
        "size": 16777216,
        "bytes": 16777216,
        "flops": None,
        "items": None,
    },
    "mnist": {
        "group": "mnist-epoch",
        "func": "test_mnist_epoch",
        "ids": ["device_resident"],
        "workload": "mnist",
        "dtype": "f32",
        "size": 60000,
        "bytes": None,
        "flops": None,
        "items": 60000,
    },
    "xor": {
        "group": "xor",
        "func": "test_xor_converge",
        "ids": ["100seeds"],
        "workload": "xor",
        "dtype": "f32",
        "size": 100,
        "bytes": None,
        "flops": None,
        "items": None,
    },
}

# hand-made median seconds per (run, device, case); "h2d" has no cpu row
MEDIANS: dict[str, dict[str, dict[str, float]]] = {
    "run1": {
        "cuda:0": {"matmul": 0.0050, "add": 0.00090, "h2d": 0.00075, "mnist": 1.20, "xor": 0.40},
        "cuda:1": {"matmul": 0.0051, "add": 0.00091, "h2d": 0.00076, "mnist": 1.22, "xor": 0.41},
        "cpu": {"matmul": 0.90, "add": 0.012, "mnist": 9.50, "xor": 1.80},
    },
    "run2": {
        "cuda:0": {"matmul": 0.0049, "add": 0.00090, "h2d": 0.00074, "mnist": 1.19, "xor": 0.40},
        "cuda:1": {"matmul": 0.0064, "add": 0.00092, "h2d": 0.00075, "mnist": 1.23, "xor": 0.41},
        "cpu": {"matmul": 0.91, "add": 0.012, "mnist": 9.40, "xor": 1.79},
    },
}

RUNS = {
    "run1": {
        "run_id": "20261101T090000Z-fixture-node-1001",
        "datetime": "2026-11-01T09:04:10.000000+00:00",
        "file": "0001_baseline.json",
        "commit": "1111111111111111111111111111111111111111",
    },
    "run2": {
        "run_id": "20261108T090000Z-fixture-node-2002",
        "datetime": "2026-11-08T09:05:20.000000+00:00",
        "file": "0002_after-driver-update.json",
        "commit": "2222222222222222222222222222222222222222",
    },
}
VERIFY_RUN_ID = "20261108T085500Z-fixture-node-3003"


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def stats_for(median: float) -> dict[str, Any]:
    """pytest-benchmark's saved ``stats`` block around a median (spread: a fixed 2%)."""
    iqr = median * 0.02
    rounds = max(5, min(200, int(2.0 / median)))
    return {
        "min": median * 0.97,
        "max": median * 1.08,
        "mean": median * 1.005,
        "stddev": median * 0.015,
        "rounds": rounds,
        "median": median,
        "iqr": iqr,
        "q1": median - iqr / 2,
        "q3": median + iqr / 2,
        "iqr_outliers": 1,
        "stddev_outliers": 2,
        "outliers": "2;1",
        "ld15iqr": median * 0.97,
        "hd15iqr": median * 1.04,
        "ops": 1.0 / (median * 1.005),
        "total": median * 1.005 * rounds,
        "iterations": 1,
    }


def benchmark_entry(
    case: str,
    device: str,
    median: float,
    *,
    gpu: Mapping[str, Any] | None = None,
    requested: str | None = None,
    fallback_note: str = "",
    trace: str | None = None,
    summary: Mapping[str, Any] | None = None,
    module: str = "bench/test_workloads.py",
) -> dict[str, Any]:
    """One entry of pytest-benchmark's ``benchmarks`` list, with gpubench's ``extra_info``."""
    spec = CASES[case]
    requested = requested or device
    param = "-".join([requested, *spec["ids"]])
    name = f"{spec['func']}[{param}]"
    extra: dict[str, Any] = {
        "device": device,
        "requested_device": requested,
        "fallback_note": fallback_note,
        "gpu": dict(gpu if gpu is not None else GPUS[device]),
        "timing": {"method": "cuda_event" if device.startswith("cuda") else "perf_counter", "sync": True},
        "workload": spec["workload"],
        "dtype": spec["dtype"],
        "size": spec["size"],
        "bytes": spec["bytes"],
        "flops": spec["flops"],
        "items": spec["items"],
    }
    if spec["bytes"]:
        extra["gbps"] = spec["bytes"] / median / 1e9
        if case == "h2d" and device in CEILING_GBPS:
            extra["copy_fraction"] = extra["gbps"] / CEILING_GBPS[device]
    if spec["flops"]:
        extra["tflops"] = spec["flops"] / median / 1e12
        if case == "matmul" and device in CEILING_TFLOPS:
            extra["matmul_fraction"] = extra["tflops"] / CEILING_TFLOPS[device]
    if spec["items"]:
        extra["items_per_s"] = spec["items"] / median
    if case == "mnist":
        extra["data_source"] = "synthetic (MNIST-shaped, throughput only)"
    if summary is not None or trace is not None:
        # as gpubench.pytest_telemetry stores it: the summary, the path as written and the path under results/
        extra["telemetry"] = {
            **(summary or {}),
            "trace": f"results/{trace}" if trace else None,
            "trace_in_results": trace,
        }
    return {
        "group": spec["group"],
        "name": name,
        "fullname": f"{module}::{name}",
        "params": {"device": requested},
        "param": param,
        "extra_info": extra,
        "options": {
            "disable_gc": False,
            "timer": "perf_counter",
            "min_rounds": 5,
            "max_time": 1.0,
            "min_time": 5e-06,
            "precision": None,
            "confidence": None,
            "warmup": False,
        },
        "stats": stats_for(median),
    }


def machine_info(
    run_id: str, devices: Sequence[str], *, host: str = HOST, gpus: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    gpu_list = (
        list(gpus) if gpus is not None else [GPUS[d] for d in devices if d in GPUS and d.startswith("cuda")]
    )
    return {
        "node": host,
        "processor": "x86_64",
        "machine": "x86_64",
        "python_compiler": "GCC 12.2.0",
        "python_implementation": "CPython",
        "python_implementation_version": "3.11.2",
        "python_version": "3.11.2",
        "python_build": ["main", "Mar 13 2023 12:18:29"],
        "release": "6.1.0",
        "system": "Linux",
        "cpu": {"brand_raw": GPUS["cpu"]["name"], "count": 16},
        "gpubench": {
            "run_id": run_id,
            "environment": {
                "host": host,
                "versions": {
                    "python": "3.11.2",
                    "gpubench": "0.1.0",
                    "torch": "2.14.1",
                    "pytest_benchmark": "5.3.1",
                },
                "torch": "2.14.1",
                "cuda_build": "13.0",
                "cudnn": 91000,
                "driver": "580.00.00",
                "cuda_visible_devices": None,
                "cuda_device_order": None,
                "gpus": [{k: g.get(k) for k in ("index", "name", "uuid", "pci_bus_id")} for g in gpu_list],
                "nvml": "ok",
            },
            "config": {
                "bench": {"devices": list(devices)},
                "report": {"regression_pct": 5.0, "outlier_pct": 10.0},
            },
            "config_files": ["dl.config.sdn"],
            "config_sources": {"bench.devices": "dl.config.sdn:3:10"},
        },
    }


def benchmark_file(
    run_id: str,
    when: str,
    entries: Sequence[Mapping[str, Any]],
    *,
    devices: Sequence[str],
    commit: str = "unversioned",
    host: str = HOST,
    gpus: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A whole pytest-benchmark saved run."""
    return {
        "machine_info": machine_info(run_id, devices, host=host, gpus=gpus),
        "commit_info": {
            "id": commit,
            "time": when,
            "author_time": when,
            "dirty": False,
            "project": "gpubench",
            "branch": "main",
        },
        "benchmarks": list(entries),
        "datetime": when,
        "version": "5.3.1",
    }


TRACE_COLUMNS_GPU = (
    "t",
    "device",
    "uuid",
    "gpu_util_pct",
    "mem_used_bytes",
    "power_w",
    "energy_j",
    "sm_clock_mhz",
    "temp_c",
)
TRACE_COLUMNS_CPU = ("t", "device", "uuid", "cpu_util_pct", "mem_used_bytes")


def trace_rows(device: str, uuid: str, *, seconds: float, t0: float, load: float) -> list[list[Any]]:
    """A made-up trace: idle, a ramp to ``load`` (0..1) of full utilisation, a plateau, then idle again."""
    rows: list[list[Any]] = []
    steps = round(seconds / 0.1)
    energy = 0.0
    for i in range(steps + 1):
        t = t0 + i * 0.1
        frac = i / steps
        busy = 0.0 if frac < 0.08 or frac > 0.92 else min(1.0, (frac - 0.08) / 0.1)
        wobble = 0.5 + 0.5 * math.sin(i * 0.7)
        util = round(100 * load * busy - 3 * wobble * busy, 1)
        if device.startswith("cuda"):
            power = round(30 + 250 * load * busy + 6 * wobble, 1)
            energy += power * 0.1
            clock = round(210 + (1695 - 210) * busy - 45 * busy * wobble)
            temp = round(38 + 30 * busy * frac, 1)
            rows.append(
                [
                    f"{t:.3f}",
                    device,
                    uuid,
                    util,
                    2_000_000_000 + int(6e9 * busy),
                    power,
                    round(energy, 2),
                    clock,
                    temp,
                ]
            )
        else:
            rows.append([f"{t:.3f}", device, uuid, util, 8_000_000_000 + int(1e9 * busy)])
    return rows


def summary_from_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The summary the sampler (gpubench.telemetry.Sampler.summary) puts into extra_info["telemetry"]:
    flat ``<metric>_mean`` / ``<metric>_max`` keys, ``energy_j`` from the counter, ``samples``..."""
    gpu = "gpu_util_pct" in columns
    out: dict[str, Any] = {
        "available": True,
        "status": "ok",
        "unavailable_reason": None,
        "source": "nvml" if gpu else "psutil",
        "device": rows[0][1],
        "uuid": rows[0][2],
        "clock": "time.perf_counter",
        "interval_ms": 100.0,
        "samples": len(rows),
        "t_start": float(rows[0][0]),
        "t_stop": float(rows[-1][0]),
        "duration_s": round(float(rows[-1][0]) - float(rows[0][0]), 3),
    }
    for j, col in enumerate(columns):
        if col in ("t", "device", "uuid", "energy_j"):
            continue
        values = [float(r[j]) for r in rows]
        out[f"{col}_mean"] = round(sum(values) / len(values), 2)
        out[f"{col}_max"] = max(values)
    primary = "gpu_util_pct" if gpu else "cpu_util_pct"
    out["util_pct_mean"], out["util_pct_max"] = out[f"{primary}_mean"], out[f"{primary}_max"]
    if "energy_j" in columns:
        j = list(columns).index("energy_j")
        out["energy_j"] = round(float(rows[-1][j]) - float(rows[0][j]), 2)
        out["energy_method"] = "nvml_total_energy_counter"
    else:
        out["energy_j"], out["energy_method"] = None, None
    out.update(
        {
            "clock_event_reasons_seen": [],
            "unavailable_metrics": {},
            "sampler_cpu_s": 0.01,
            "sampler_cpu_pct": 0.2,
        }
    )
    return out


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(columns)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_runs(root: Path) -> Path:
    """Write the two-run fixture tree under ``root`` (a results folder); returns ``root``."""
    t0 = 5000.0
    for key, run in RUNS.items():
        entries = []
        devices = ["cuda:0", "cuda:1", "cpu"]
        for device in devices:
            for case, median in MEDIANS[key][device].items():
                trace = summary = None
                if key == "run2" and case in ("mnist", "matmul"):
                    spec = CASES[case]
                    safe = safe_name(f"{spec['func']}[{'-'.join([device, *spec['ids']])}]")
                    trace = f"telemetry/{run['run_id']}/{safe}.csv"
                    seconds = 6.0 if case == "mnist" else 2.0
                    load = {"cuda:0": 0.95, "cuda:1": 0.93, "cpu": 0.80}[device]
                    columns = TRACE_COLUMNS_GPU if device.startswith("cuda") else TRACE_COLUMNS_CPU
                    rows = trace_rows(device, GPUS[device]["uuid"], seconds=seconds, t0=t0, load=load)
                    t0 += seconds + 1.0
                    write_csv(root / trace, columns, rows)
                    summary = summary_from_rows(columns, rows)
                entries.append(benchmark_entry(case, device, median, trace=trace, summary=summary))
        data = benchmark_file(run["run_id"], run["datetime"], entries, devices=devices, commit=run["commit"])
        path = root / "benchmarks" / MACHINE_ID / run["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=4) + "\n", encoding="utf-8")
    write_verify(root)
    return root


def check(
    device: str,
    name: str,
    verdict: str,
    value: Any,
    threshold: Any,
    unit: str,
    message: str,
    remedy: str = "",
) -> dict[str, Any]:
    return {
        "device": device,
        "uuid": GPUS[device]["uuid"],
        "check": name,
        "verdict": verdict,
        "value": value,
        "threshold": threshold,
        "unit": unit,
        "remedy": remedy,
        "message": message,
        "readings": {},
        "duration_s": 0.5,
    }


def verify_document(
    run_id: str,
    started: str,
    finished: str,
    checks: Sequence[Mapping[str, Any]],
    devices: Sequence[str] = ("cuda:0", "cuda:1"),
) -> dict[str, Any]:
    failed = any(c["verdict"] == "FAIL" for c in checks)
    return {
        "schema": "gpubench.verify/1",
        "run_id": run_id,
        "started": started,
        "finished": finished,
        "environment": {"host": HOST, "torch": "2.14.1", "driver": "580.00.00"},
        "config": {"verify": {"level": "quick"}},
        "level": "quick",
        "exit_code": 1 if failed else 0,
        "devices": [GPUS[d] for d in devices],
        "checks": list(checks),
    }


def write_verify(root: Path) -> None:
    checks = [
        check(
            "cuda:0",
            "identity",
            "PASS",
            GPUS["cuda:0"]["uuid"],
            None,
            "",
            "cuda:0 is the GPU at 00000000:01:00.0",
        ),
        check(
            "cuda:1",
            "identity",
            "PASS",
            GPUS["cuda:1"]["uuid"],
            None,
            "",
            "cuda:1 is the GPU at 00000000:02:00.0",
        ),
        check("cuda:0", "memtest", "PASS", 0, 0, "errors", "2.4 GiB written and read back"),
        check("cuda:1", "memtest", "PASS", 0, 0, "errors", "2.4 GiB written and read back"),
        check("cuda:0", "temperature", "PASS", 71.0, 88.0, "degC", "peak 71 degC under load"),
        check(
            "cuda:1",
            "temperature",
            "WARN",
            85.0,
            88.0,
            "degC",
            "peak 85 degC is within 5 degC of slowdown",
            "check the fans and airflow around the second slot",
        ),
        check("cuda:0", "pcie_link", "PASS", 16, 16, "lanes", "Gen4 x16"),
        check("cuda:1", "pcie_link", "PASS", 16, 16, "lanes", "Gen4 x16"),
    ]
    doc = verify_document(VERIFY_RUN_ID, "2026-11-08T08:55:00+00:00", "2026-11-08T08:55:31+00:00", checks)
    path = root / "verify" / f"{VERIFY_RUN_ID}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_runs(HERE)
    print(f"fixtures written under {HERE}")
