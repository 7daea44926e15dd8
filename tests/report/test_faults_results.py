"""Fault families 5 and 6: damaged results on disk, and telemetry whose source fails.

Family 5 adds to tests/report/test_report_load.py (which damages benchmark files five ways and verification files two
ways): more damaged verification files, damaged telemetry traces, and stray temporary files. Each damaged
file is skipped with one warning naming it, and the rest is still reported.
Family 6 runs real benchmarks through pytest with the gpubench plugins while the sampler's source fails at
start and mid-run: the benchmarks complete and are saved, their telemetry marked not available.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gpubench import report

pytest_plugins = ["pytester"]

RUNS = Path(__file__).parents[1] / "data" / "runs"


def _fixture_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpubench_report_fixtures", RUNS / "make_runs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


fx = _fixture_module()


def _copy_runs(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    shutil.copytree(RUNS, results, ignore=shutil.ignore_patterns("*.py", "__pycache__", "*.md"))
    return results


# --- family 5: damaged verification files ----------------------------------------------------------


def _damage_verify(results: Path) -> dict[Path, str]:
    """Damaged verification files beside the fixture's good one; returns each path and its warning."""
    verify = results / "verify"
    good_check = fx.check("cuda:0", "memtest", "PASS", 0, 0, "bad words", "patterns read back intact")
    damaged = {
        verify / "empty.json": "empty file",
        verify / "latin1.json": "cannot read it",
        verify / "checks-not-a-list.json": "verification result without a 'checks' list",
        verify / "folder.json": "cannot read it",
        verify / "bad-entry.json": "check #0: expected an object, found int",
    }
    (verify / "empty.json").write_bytes(b"")
    (verify / "latin1.json").write_bytes(
        '{"schema": "gpubench.verify/1", "host": "m\u00fcnchen"}'.encode("latin-1")
    )
    (verify / "checks-not-a-list.json").write_text(json.dumps({"schema": "gpubench.verify/1", "checks": {}}))
    (verify / "folder.json").mkdir()
    bad_entry = fx.verify_document(
        "run-bad-entry", "2026-11-09T00:00:00+00:00", "2026-11-09T00:01:00+00:00", [good_check]
    )
    bad_entry["checks"].insert(0, 7)
    (verify / "bad-entry.json").write_text(json.dumps(bad_entry), encoding="utf-8")
    return damaged


def test_damaged_verification_files_are_skipped_with_a_warning_naming_each(tmp_path: Path) -> None:
    results = _copy_runs(tmp_path)
    damaged = _damage_verify(results)
    loaded = report.load_runs(results)
    for path, why in damaged.items():
        (warning,) = [w for w in loaded.warnings if str(path) in w]
        assert warning.startswith(f"skipped {path}") and why in warning, warning
    assert len(loaded.warnings) == len(damaged)
    good = report.load_runs(RUNS)
    # the good run, plus the one good check of the file with a bad entry
    assert len(loaded.verify) == len(good.verify) + 1
    assert len(loaded.benchmarks) == len(good.benchmarks)


# --- family 5: damaged telemetry traces ---------------------------------------------------------------


def _damage_traces(root: Path) -> tuple[dict[str, str], str]:
    """Benchmarks whose traces are damaged (and carry no summary, so the report must read the CSV)."""
    uuid = fx.GPUS["cuda:0"]["uuid"]
    rows = fx.trace_rows("cuda:0", uuid, seconds=1.0, t0=10.0, load=0.9)
    folder = root / "telemetry" / "r"
    fx.write_csv(folder / "good.csv", fx.TRACE_COLUMNS_GPU, rows)
    text = (folder / "good.csv").read_text("utf-8")
    cut = text.index("\n", len(text) // 2) + 8  # inside a data row
    contents: dict[str, str | bytes] = {
        "cut-mid-row.csv": text[:cut],
        "cut-in-header.csv": text[:5],
        "empty.csv": "",
        "garbage.csv": bytes(range(256)) * 3,
        "no-time-column.csv": text.replace("t,device", "time,device", 1),
        "header-only.csv": text.splitlines()[0] + "\n",
    }
    for name, content in contents.items():
        target = folder / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    complete_before_cut = text[:cut].count("\n") - 1  # lines after the header that end in a newline
    expected = {
        "cut-mid-row.csv": f"trace {folder / 'cut-mid-row.csv'}: its last row is cut off; used the "
        f"{complete_before_cut} complete samples before it",
        "cut-in-header.csv": f"skipped trace {folder / 'cut-in-header.csv'}: no samples",
        "empty.csv": f"skipped trace {folder / 'empty.csv'}: not a readable CSV (No columns to parse from file)",
        "garbage.csv": f"skipped trace {folder / 'garbage.csv'}: not a readable CSV (Error tokenizing data.",
        "no-time-column.csv": f"skipped trace {folder / 'no-time-column.csv'}: no 't' (time, seconds) column",
        "header-only.csv": f"skipped trace {folder / 'header-only.csv'}: no samples",
        "missing.csv": "telemetry trace 'telemetry/r/missing.csv' not found under",
    }
    entries = []
    for i, name in enumerate(["good.csv", *contents, "missing.csv"]):
        entry = fx.benchmark_entry("matmul", "cuda:0", 0.005 + i / 1000, trace=f"telemetry/r/{name}")
        entry["extra_info"]["telemetry"] = {"trace": f"telemetry/r/{name}"}
        entry["name"] = entry["name"].replace("]", f"-{i}]")
        entry["fullname"] = entry["fullname"].replace("]", f"-{i}]")
        entries.append(entry)
    path = root / "benchmarks" / "machine" / "0001_traces.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(fx.benchmark_file("run-t", "2026-11-01T00:00:00+00:00", entries, devices=["cuda:0"]))
    )
    return expected, str(len(rows))


def test_damaged_traces_are_skipped_with_a_warning_and_the_benchmarks_kept(tmp_path: Path) -> None:
    expected, good_samples = _damage_traces(tmp_path)
    loaded = report.load_runs(tmp_path)
    assert len(loaded.warnings) == len(expected)
    for name, start in expected.items():
        (warning,) = [w for w in loaded.warnings if name in w]
        assert start in warning, (warning, start)
    assert len(loaded.benchmarks) == 8  # every benchmark row survives its damaged trace
    samples = dict(zip(loaded.benchmarks["name"], loaded.benchmarks["telemetry_samples"], strict=True))
    assert samples["test_matmul[cuda:0-f32-4096-0]"] == float(good_samples)
    cut_off = expected["cut-mid-row.csv"].split("used the ")[1].split(" ")[0]
    assert samples["test_matmul[cuda:0-f32-4096-1]"] == float(cut_off)


def test_stray_temporary_files_of_an_interrupted_writer_are_ignored(tmp_path: Path) -> None:
    results = _copy_runs(tmp_path)
    bench = results / "benchmarks" / fx.MACHINE_ID
    (bench / ".saving-abc123.tmp").write_text('{"benchmarks": [', encoding="utf-8")
    (results / "verify" / ".run.json.x1y2.tmp").write_text('{"schema": "gpubench.verify/1", "ch', "utf-8")
    loaded = report.load_runs(results)
    good = report.load_runs(RUNS)
    assert loaded.warnings == ()
    assert (len(loaded.benchmarks), len(loaded.verify)) == (len(good.benchmarks), len(good.verify))


def test_report_command_reports_the_rest_and_lists_every_damaged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gpubench.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    results = _copy_runs(tmp_path)
    damaged = _damage_verify(results)
    expected, _ = _damage_traces(results)
    out = tmp_path / "out"
    assert main(["report", "--results-dir", str(results), "--output", str(out), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == len(damaged) + len(expected)
    for path in damaged:
        assert sum(str(path) in w for w in warnings) == 1
    for name in expected:
        assert sum(name in w for w in warnings) == 1
    markdown = (out / "report.md").read_text("utf-8")
    assert "Skipped or damaged files" in markdown
    # grouped by reason, a few examples each: every damaged file here is named once in the section
    section = markdown.split("## Skipped or damaged files", 1)[1].split("\n## ", 1)[0]
    for name in [*(p.name for p in damaged), *expected]:
        assert sum(name in line for line in section.splitlines()) == 1, name
    tidy = (out / "tidy.csv").read_text("utf-8").splitlines()
    assert len(tidy) - 1 == len(report.load_runs(RUNS).benchmarks) + 8  # every benchmark row is reported


# --- family 6: the telemetry source fails -----------------------------------------------------------

# The source fails at its third reading: the first is the sampler's own in start(), the second its thread's
# first; the body waits for that second reading (an event, not a time), so the third, the failing one, is
# the thread's next or stop()'s last however slowly the thread is scheduled on a loaded machine.
FAILING_SOURCE = """
import threading
import pytest
from gpubench import telemetry

READ_TWICE = threading.Event()

@pytest.fixture
def read_twice():
    return READ_TWICE

@pytest.fixture(autouse=True)
def broken_source(request, monkeypatch):
    if "start" in request.node.name:
        def fail_open(self):
            raise OSError("/proc is not mounted")
        monkeypatch.setattr(telemetry.PsutilSource, "open", fail_open)
    elif "mid_run" in request.node.name:
        real_read = telemetry.PsutilSource.read
        def fail_after_two(self):
            self.reads = getattr(self, "reads", 0) + 1
            if self.reads > 2:
                raise RuntimeError("sensor went away")
            if self.reads == 2:
                READ_TWICE.set()
            return real_read(self)
        monkeypatch.setattr(telemetry.PsutilSource, "read", fail_after_two)
"""

BENCHMARKS = """
def test_source_fails_at_start(benchmark, device):
    benchmark.pedantic(sum, args=(range(100),), rounds=3, iterations=1)

def test_source_fails_mid_run(benchmark, device, read_twice):
    # a generous bound only so that a broken sampler fails the test instead of hanging it
    benchmark.pedantic(read_twice.wait, args=(120,), rounds=3, iterations=1)
"""


def test_benchmarks_complete_when_the_telemetry_source_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("GPUBENCH_DL_DEVICE", "GPUBENCH_BENCH_DEVICES", "SIMPLE_DL_DEVICE", "GPUBENCH_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(pytester.path))
    monkeypatch.setenv("GPUBENCH_RUN_ID", "broken-telemetry")
    (pytester.path / "dl.config.sdn").write_text(
        "dl:\n  device: cpu\ntelemetry:\n  interval_ms: 20\n", "utf-8"
    )
    pytester.makeconftest(FAILING_SOURCE)
    pytester.makepyfile(test_bench=BENCHMARKS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-json=bench.json")
    result.assert_outcomes(passed=2)
    assert "Traceback" not in result.stdout.str()
    data = json.loads((pytester.path / "bench.json").read_text("utf-8"))
    benches: dict[str, Any] = {b["name"]: b for b in data["benchmarks"]}
    assert all(b["stats"]["rounds"] == 3 for b in benches.values())  # both measured in full

    at_start = benches["test_source_fails_at_start[cpu]"]["extra_info"]["telemetry"]
    assert (at_start["available"], at_start["status"], at_start["samples"], at_start["trace"]) == (
        False,
        "unavailable",
        0,
        None,
    )
    reason = "telemetry not available: psutil source failed to open (OSError: /proc is not mounted)"
    assert at_start["unavailable_reason"] == reason
    result.stdout.fnmatch_lines([f"gpubench telemetry: cpu: {reason}"])

    mid_run = benches["test_source_fails_mid_run[cpu]"]["extra_info"]["telemetry"]
    assert (mid_run["available"], mid_run["status"], mid_run["samples"]) == (True, "partial", 2)
    assert mid_run["unavailable_reason"] == "sampling stopped after 2 samples: RuntimeError: sensor went away"
    trace = pytester.path / mid_run["trace"]  # the samples taken before the failure are kept
    assert trace.is_file() and len(trace.read_text("utf-8").splitlines()) == 1 + 2
