"""Saved runs for the report tests: the two-run fixture in tests/data/runs (``fx`` is its make_runs.py),
small runs written on the fly, and a copy of the fixture with damaged files added."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from gpubench.config import ReportSection

RUNS = Path(__file__).parents[1] / "data" / "runs"


def load_script(path: Path, name: str) -> ModuleType:
    """A script that is not a package module (tests/data/runs/make_runs.py, scripts/fleet.py) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fx = load_script(RUNS / "make_runs.py", "gpubench_report_fixtures")
# fleet-shaped saved runs: FLEET.main(["generate", OUT, "--hosts", …])
FLEET = load_script(RUNS.parents[2] / "scripts" / "fleet.py", "gpubench_fleet_script")
NO_PLOTS = ReportSection(plots=False)


def write_run(
    root: Path, key: str, entries: list[dict[str, Any]], devices: list[str], when: str, **kwargs: Any
) -> Path:
    run_id = f"run-{key}"
    path = root / "benchmarks" / "machine" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fx.benchmark_file(run_id, when, entries, devices=devices, **kwargs)), "utf-8")
    return path


def damaged_copy(tmp_path: Path) -> tuple[Path, list[Path]]:
    results = tmp_path / "results"
    shutil.copytree(RUNS, results, ignore=shutil.ignore_patterns("*.py", "__pycache__", "store"))
    bench = results / "benchmarks" / fx.MACHINE_ID
    good = (bench / fx.RUNS["run1"]["file"]).read_text("utf-8")
    damaged = {
        bench / "0003_truncated.json": good[: len(good) // 2],
        bench / "0004_empty.json": "",
        bench / "0005_not-json.json": "this is not JSON\n",
        bench / "0006_wrong-schema.json": json.dumps({"hello": "world"}),
        bench / "0007_a-list.json": "[1, 2, 3]",
        results / "verify" / "broken.json": json.dumps({"schema": "something/else", "checks": []}),
        results / "verify" / "cut.json": '{"schema": "gpubench.verify/1", "checks": [',
    }
    for path, text in damaged.items():
        path.write_text(text, encoding="utf-8")
    return results, list(damaged)
