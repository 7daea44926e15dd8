"""Fleet-shaped saved runs from a real saved run, and a timer for ``gpubench report`` over them.

Generate (hosts × days runs, each with every GPU of the host)::

    python scripts/fleet.py generate OUT --hosts 16 --gpus 8 --days 30 [--slow node03:5:8:3]

Each run is the template's GPU benchmarks (one device's, default ``cuda:0``) repeated for every GPU,
rewritten with that GPU's identity (``extra_info.gpu``: UUID, name, PCI bus id, index, host;
``machine_info.gpubench.environment``: host and GPU list) and written where gpubench saves runs:
``OUT/benchmarks/<host>/NNNN_<day>.json``. Every round is the template's median times
``1 + N(0, noise)`` (``--noise``, default 2%), ``--rounds`` of them in ``stats.data`` (as
``--benchmark-save-data`` keeps them) with the stats block computed from them, and the throughput fields
(``gbps``, ``tflops``, ``items_per_s``) scaled to match. ``--run-noise`` adds a whole-run shift (default
none). ``--slow HOST:GPU:PCT:LASTN`` makes GPU ``GPU`` of ``HOST`` ``PCT`` % slower in its last ``LASTN``
runs (repeatable). Seeded: the same arguments write the same files.

Time a cold report over such a folder (wall seconds and peak RSS of the ``gpubench report`` process;
the results store ``OUT/store`` is deleted first), then with ``--add-run`` a second report after one new
run was saved (the incremental case: only that file is ingested)::

    python scripts/fleet.py time-report OUT [--add-run] [-- extra gpubench report options]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "tests/data/runs/benchmarks/Linux-CPython-3.11-64bit/0001_baseline.json"
MODEL = "NVIDIA H100 80GB HBM3"
RATE_FIELDS = ("gbps", "tflops", "items_per_s")


def parse_slow(text: str) -> tuple[str, int, float, int]:
    """``HOST:GPU:PCT:LASTN`` -> (host, gpu index, percent slower, last n runs)."""
    try:
        host, gpu, pct, last = text.rsplit(":", 3)
        return host, int(gpu), float(pct), int(last)
    except ValueError as exc:
        msg = f"--slow {text!r}: expected HOST:GPU:PCT:LASTN, e.g. node03:5:8:3"
        raise argparse.ArgumentTypeError(msg) from exc


def template_benchmarks(template: dict[str, Any], device: str, limit: int | None) -> list[dict[str, Any]]:
    chosen = [b for b in template["benchmarks"] if (b.get("extra_info") or {}).get("device") == device]
    if not chosen:
        sys.exit(f"error: the template has no benchmark on {device}")
    return chosen[:limit] if limit else chosen


def identity(host_index: int, gpu: int, host: str) -> dict[str, Any]:
    return {
        "device": f"cuda:{gpu}",
        "index": gpu,
        "name": MODEL,
        "uuid": f"GPU-{host_index:08x}-{gpu:04x}-4000-8000-fleet{host_index:03d}{gpu:04d}",
        "pci_bus_id": f"00000000:{0x18 + 0x10 * gpu:02X}:00.0",
        "host": host,
    }


def rounds_stats(data: list[float]) -> dict[str, Any]:
    q1, _, q3 = statistics.quantiles(data, n=4, method="inclusive")
    mean = statistics.fmean(data)
    return {
        "min": min(data),
        "max": max(data),
        "mean": mean,
        "stddev": statistics.stdev(data),
        "rounds": len(data),
        "median": statistics.median(data),
        "iqr": q3 - q1,
        "q1": q1,
        "q3": q3,
        "ops": 1.0 / mean,
        "total": sum(data),
        "iterations": 1,
        "data": data,
    }


def one_benchmark(
    bench: dict[str, Any], gpu: dict[str, Any], factor: float, args: argparse.Namespace, rng: random.Random
) -> dict[str, Any]:
    """The template's benchmark on ``gpu``, ``factor`` times slower, with fresh noisy rounds."""
    out = copy.deepcopy(bench)
    old_device = str(bench["extra_info"]["device"])
    median = float(bench["stats"]["median"]) * factor
    data = [median * max(0.05, 1.0 + rng.gauss(0.0, args.noise)) for _ in range(args.rounds)]
    out["stats"] = rounds_stats(data)
    for key in ("name", "fullname"):
        if isinstance(out.get(key), str):
            out[key] = out[key].replace(f"[{old_device}-", f"[{gpu['device']}-")
    if isinstance(out.get("params"), dict) and "device" in out["params"]:
        out["params"]["device"] = gpu["device"]
    extra = out["extra_info"]
    extra["device"] = extra["requested_device"] = gpu["device"]
    extra["gpu"] = {**extra.get("gpu", {}), **gpu}
    scale = float(bench["stats"]["median"]) / out["stats"]["median"]
    for key in RATE_FIELDS:
        if isinstance(extra.get(key), (int, float)):
            extra[key] = extra[key] * scale
    return out


def generate(args: argparse.Namespace) -> None:
    template = json.loads(Path(args.template).read_text(encoding="utf-8"))
    benches = template_benchmarks(template, args.device, args.benchmarks)
    slow = {(h, g): (pct, last) for h, g, pct, last in args.slow}
    rng = random.Random(args.seed)
    start = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.timezone.utc)
    out_dir = Path(args.out)
    files = 0
    for h in range(args.hosts):
        host = f"node{h:02d}"
        gpus = [identity(h, g, host) for g in range(args.gpus)]
        folder = out_dir / "benchmarks" / host
        folder.mkdir(parents=True, exist_ok=True)
        for day in range(args.days):
            when = start + dt.timedelta(days=day, minutes=h)
            shift = 1.0 + rng.gauss(0.0, args.run_noise) if args.run_noise else 1.0
            run = copy.deepcopy({k: v for k, v in template.items() if k != "benchmarks"})
            run_id = f"{when:%Y%m%dT%H%M%SZ}-{host}-{day:04d}"
            run["datetime"] = when.isoformat()
            machine = run.setdefault("machine_info", {})
            machine["node"] = host
            gb = machine.setdefault("gpubench", {})
            gb["run_id"] = run_id
            env = gb.setdefault("environment", {})
            env["host"] = host
            env["gpus"] = [{k: g[k] for k in ("index", "name", "uuid", "pci_bus_id")} for g in gpus]
            gb.setdefault("config", {})["bench"] = {"devices": [g["device"] for g in gpus]}
            run["benchmarks"] = []
            for g, gpu in enumerate(gpus):
                pct, last = slow.get((host, g), (0.0, 0))
                factor = shift * (1.0 + pct / 100.0 if day >= args.days - last else 1.0)
                run["benchmarks"] += [one_benchmark(b, gpu, factor, args, rng) for b in benches]
            path = folder / f"{day + 1:04d}_day{day + 1:03d}.json"
            path.write_text(json.dumps(run), encoding="utf-8")
            os.utime(path, (when.timestamp(), when.timestamp()))  # saved when it ran, as on a real node
            files += 1
    rows = files * args.gpus * len(benches)
    print(
        f"wrote {files} runs ({rows} benchmark rows, {len(benches)} benchmark(s) per GPU) under {out_dir}/benchmarks/"
    )


def _report_once(out: Path, extra: list[str], lines: int) -> int:
    """One ``gpubench report`` process over ``out``: prints wall seconds, peak RSS and the report's size."""
    with tempfile.TemporaryDirectory() as output:
        command = [
            sys.executable, "-m", "gpubench", "report", "--results-dir", str(out), "--output", output, *extra,
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU seconds of the report and its ingest workers (waited for, so counted): a figure that a busy
        # machine changes less than the wall time
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        # RUSAGE_CHILDREN is the largest of the children waited for so far: the cold run comes first
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        size = sum(p.stat().st_size for p in Path(output).glob("report.*"))
        report_md = Path(output) / "report.md"
        md_kb = report_md.stat().st_size / 1024 if report_md.exists() else 0.0
    print(f"$ python {' '.join(command[1:])}")
    print(
        f"exit {done.returncode}; wall {wall:.1f} s; CPU {cpu:.1f} s; peak RSS {peak_kb / 1024:.0f} MB; "
        f"report.md {md_kb:.0f} KB "
        f"(report.* {size / 1024:.0f} KB)"
    )
    print("\n".join(done.stdout.splitlines()[:lines]))
    if done.returncode not in (0, 1):
        print(done.stderr[-2000:], file=sys.stderr)
    return done.returncode


def add_run(out: Path) -> Path:
    """Save one more run: the newest file of the first host, a day later, with a new run id."""
    folder = sorted((out / "benchmarks").iterdir())[0]
    newest = sorted(folder.glob("*.json"))[-1]
    run = json.loads(newest.read_text(encoding="utf-8"))
    when = dt.datetime.fromisoformat(run["datetime"]) + dt.timedelta(days=1)
    run["datetime"] = when.isoformat()
    run["machine_info"]["gpubench"]["run_id"] = f"{when:%Y%m%dT%H%M%SZ}-{folder.name}-added"
    target = folder / f"{len(list(folder.glob('*.json'))) + 1:04d}_added.json"
    target.write_text(json.dumps(run), encoding="utf-8")
    return target


def time_report(args: argparse.Namespace) -> int:
    """``gpubench report`` cold (a fresh process, no store), then, with ``--add-run``, after one new run."""
    out = Path(args.out)
    shutil.rmtree(out / "store", ignore_errors=True)
    code = _report_once(out, args.extra, args.lines)
    if args.add_run:
        print(f"added {add_run(out)}")
        code = _report_once(out, args.extra, 3)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    gen = sub.add_parser("generate", help="write fleet-shaped saved runs into OUT")
    gen.add_argument("out", metavar="OUT")
    gen.add_argument("--template", default=str(TEMPLATE), help="a pytest-benchmark saved run (gpubench's)")
    gen.add_argument("--device", default="cuda:0", help="the template device whose benchmarks are used")
    gen.add_argument("--benchmarks", type=int, default=2, help="how many of its benchmarks (default 2)")
    gen.add_argument("--hosts", type=int, default=16)
    gen.add_argument("--gpus", type=int, default=8, help="GPUs per host")
    gen.add_argument("--days", type=int, default=30, help="runs per host, one a day")
    gen.add_argument("--rounds", type=int, default=20, help="rounds per benchmark (stats.data)")
    gen.add_argument("--noise", type=float, default=0.02, help="multiplicative noise on each round (sd)")
    gen.add_argument("--run-noise", type=float, default=0.0, help="a whole-run shift (sd; default none)")
    gen.add_argument("--slow", type=parse_slow, action="append", default=[], metavar="HOST:GPU:PCT:LASTN")
    gen.add_argument("--seed", type=int, default=1)
    timer = sub.add_parser("time-report", help="time a cold `gpubench report` over OUT")
    timer.add_argument("out", metavar="OUT")
    timer.add_argument("--lines", type=int, default=12, help="summary lines printed (default 12)")
    timer.add_argument(
        "--add-run", action="store_true", help="then save one new run and time the report again"
    )
    timer.add_argument("extra", nargs="*", help="more `gpubench report` options (after --)")
    args = parser.parse_args(argv)
    if args.verb == "generate":
        generate(args)
        return 0
    return time_report(args)


if __name__ == "__main__":
    sys.exit(main())
