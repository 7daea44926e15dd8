"""Record the real saved runs in this folder: the same code twice under load, and once made slower on purpose.

These are MEASUREMENTS, not hand-made numbers: pytest-benchmark itself times two small pure-Python cases
(``sort`` and ``sum``) with ``--benchmark-save-data`` (so ``stats.data`` holds every round), one run after
another on a development machine shared with other jobs (2 cores, load average 4 to 5 when recorded).
The saved JSON is pytest-benchmark's, with the ``extra_info`` gpubench's plugin adds (device ``cpu`` and
its identity) and the host name replaced by ``recording-host``. Written as two ``results/`` folders:

- ``same-code/``: run 1, then run 2 of the same code;
- ``slowed/``: run 1 again, then run 3 where ``sort`` sorts the data three times (``sum`` is unchanged).

Re-record with ``.venv/bin/python tests/report/noise_runs/record.py`` (it takes about ten seconds); the
report tests only read the files, so they never depend on this machine's timing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HOST = "recording-host"
CASES = """
import os
import random

RNG = random.Random(7)
DATA = [RNG.random() for _ in range(100000)]
SLOW = os.environ.get("NOISE_RUNS_SLOW") == "1"
CPU = {"device": "cpu", "name": "recording CPU", "uuid": "cpu-recording-host", "host": "recording-host"}


def sort_work():
    out = sorted(DATA)
    if SLOW:  # the deliberate slowdown: the data sorted two more times
        for _ in range(2):
            out = sorted(DATA)
    return out


def test_sort(benchmark):
    benchmark.group = "noise-sort"
    benchmark.extra_info.update(device="cpu", requested_device="cpu", gpu=CPU, workload="sort")
    benchmark(sort_work)


def test_sum(benchmark):
    benchmark.group = "noise-sum"
    benchmark.extra_info.update(device="cpu", requested_device="cpu", gpu=CPU, workload="sum")
    benchmark(lambda: [sum(DATA) for _ in range(20)])
"""


def record(work: Path, name: str, *, slow: bool) -> dict[str, Any]:
    """One pytest-benchmark run of the cases; returns its saved JSON."""
    storage = work / "storage"
    env = {"NOISE_RUNS_SLOW": "1" if slow else "0", "PATH": "/usr/bin:/bin"}
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:gpubench",
        "-p", "no:gpubench_telemetry", str(work / "test_noise_cases.py"),
        f"--benchmark-storage=file://{storage}", f"--benchmark-save={name}",
        "--benchmark-save-data", "--benchmark-min-rounds=25", "--benchmark-max-time=0.5", "--benchmark-warmup=on",
    ]  # fmt: skip
    subprocess.run(
        command,
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
    )
    saved = next(storage.rglob(f"*_{name}.json"))
    data: dict[str, Any] = json.loads(saved.read_text("utf-8"))
    return data


def scrubbed(data: dict[str, Any], run_id: str) -> dict[str, Any]:
    machine = data["machine_info"]
    keep = ("python_implementation", "python_version", "system", "machine", "release")
    data["machine_info"] = {k: machine.get(k) for k in keep} | {
        "node": HOST,
        "cpu": {"brand_raw": "recording CPU", "count": (machine.get("cpu") or {}).get("count")},
        "gpubench": {
            "run_id": run_id,
            "environment": {"host": HOST},
            "config": {"bench": {"devices": ["cpu"]}},
        },
    }
    data["commit_info"] = {"id": "recorded", "dirty": False, "project": "gpubench-noise-runs"}
    for bench in data["benchmarks"]:
        bench["fullname"] = bench["fullname"].split("::", 1)[-1]
    return data


def write(folder: Path, number: int, name: str, data: dict[str, Any]) -> None:
    target = folder / "benchmarks" / "recording-host" / f"{number:04d}_{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=1) + "\n", "utf-8")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "test_noise_cases.py").write_text(CASES, "utf-8")
        first = scrubbed(record(work, "run1", slow=False), "noise-run1")
        second = scrubbed(record(work, "run2", slow=False), "noise-run2-same-code")
        third = scrubbed(record(work, "run3", slow=True), "noise-run3-slowed")
    for folder in ("same-code", "slowed"):
        shutil.rmtree(HERE / folder, ignore_errors=True)
    write(HERE / "same-code", 1, "run1", first)
    write(HERE / "same-code", 2, "run2-same-code", second)
    write(HERE / "slowed", 1, "run1", first)
    write(HERE / "slowed", 3, "run3-slowed", third)


if __name__ == "__main__":
    main()
