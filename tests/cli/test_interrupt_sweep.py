"""The kill-point sweep (issue 15): every verb, interrupted at every named point, with SIGINT and SIGTERM.

``GPUBENCH_KILL_AT=<point>[@n]:<signal>`` (:mod:`gpubench.killpoints`) makes the process signal itself
exactly there, so no test sleeps and every run lands where it is meant to. Each run is a real subprocess;
afterwards: the exit code (130/143 for ``gpubench``, pytest's "interrupted" for plain ``pytest``), no
traceback, one line saying what was kept, every result file present is whole JSON, and the benchmark cases
that completed before the point are in the saved run. Points named ``case.*`` are placed by the cases below
inside the timed function (round k of a case), the ones pytest-benchmark itself gives no hook for.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gpubench import killpoints

DATA_RUNS = Path(__file__).resolve().parents[1] / "data" / "runs"
INTERRUPTED = "interrupted: results written so far are kept"
SIGNALS = (signal.SIGINT, signal.SIGTERM)

CASES = '''
from gpubench import killpoints

def test_first(benchmark, device):
    benchmark.pedantic(killpoints.reached, args=("case.round",), rounds=2, iterations=1)

def test_second(benchmark, device):
    benchmark.pedantic(killpoints.reached, args=("case.round",), rounds=2, iterations=1)

def test_third(benchmark, device):
    benchmark.pedantic(sum, args=(range(10),), rounds=2, iterations=1)
'''
ALL = ("test_first", "test_second", "test_third")

# (point, the cases that completed before it: they must be in the saved run)
BENCH_POINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bench.configure", ()),
    ("bench.collection", ()),
    ("bench.case.setup", ()),
    ("bench.case.setup@2", ("test_first",)),
    ("bench.case.call", ()),
    ("bench.case.call@2", ("test_first",)),
    ("case.round", ()),  # the first round of the first case: it has no round yet
    ("case.round@3", ("test_first",)),  # the first round of the second case
    ("case.round@4", ("test_first",)),  # its second round: saved with one round, marked interrupted
    ("bench.telemetry.start", ()),
    ("bench.telemetry.stop", ()),
    ("bench.telemetry.stop@2", ("test_first",)),
    ("bench.case.call.end", ()),
    ("bench.case.call.end@2", ("test_first",)),
    ("bench.case.teardown", ("test_first",)),
    ("bench.case.teardown@3", ("test_first", "test_second")),
    ("bench.sessionfinish", ALL),
    ("bench.save", ALL),
    ("bench.summary", ALL),
)
VERIFY_POINTS = (
    "verify.plan", "verify.check.start", "verify.check.start@3", "verify.check.end", "verify.check.end@5",
    "verify.across", "verify.save", "verify.saved",
)
REPORT_POINTS = ("report.load", "report.build", "report.write", "report.written")


def _env(home: Path, point: str, signum: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBENCH_", "SIMPLE_DL_", "PYTEST_"))}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / "xdg"),
                killpoints.ENV: f"{point}:{signal.Signals(signum).name}"})
    return env


def _run(argv: list[str], cwd: Path, point: str, signum: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(cwd, point, signum), capture_output=True, text=True,
                          timeout=240)


def _assert_clean(proc: subprocess.CompletedProcess[str], expected_rc: int, where: object) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == expected_rc, (where, proc.returncode, output[-3000:])
    assert "Traceback" not in output, (where, output[-3000:])


def _json_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.json")) if folder.is_dir() else []


def _assert_whole_json(folder: Path) -> list[dict[str, object]]:
    docs = [json.loads(p.read_text("utf-8")) for p in _json_files(folder)]
    assert not list(folder.rglob("*.tmp")) if folder.is_dir() else True, "a temporary file was left behind"
    return docs


# --- bench: `pytest bench` and `gpubench bench` -------------------------------------------------------


@pytest.fixture
def bench_project(tmp_path: Path) -> Path:
    (tmp_path / "dl.config.sdn").write_text("dl:\n  device: cpu\nresults:\n  dir: results\n", encoding="utf-8")
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "test_cases.py").write_text(CASES, encoding="utf-8")
    (cases / "conftest.py").write_text("", encoding="utf-8")  # `gpubench bench --bench-dir` wants one
    return tmp_path


def _saved_cases(root: Path) -> tuple[list[dict[str, object]], set[str]]:
    benches: list[dict[str, object]] = []
    for doc in _assert_whole_json(root / "results" / "benchmarks"):
        if "benchmarks" in doc:
            benches.extend(doc["benchmarks"])  # type: ignore[arg-type]
    names = {str(b["name"]).split("[")[0] for b in benches}
    return benches, names


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize(("point", "kept"), BENCH_POINTS, ids=[p for p, _ in BENCH_POINTS])
@pytest.mark.parametrize("verb", ["pytest", "gpubench"])
def test_bench_interrupted_at_every_point(
    bench_project: Path, verb: str, point: str, kept: tuple[str, ...], signum: int
) -> None:
    store = bench_project / "results" / "benchmarks"
    if verb == "pytest":
        argv = [sys.executable, "-m", "pytest", "cases", "-p", "no:cacheprovider", "-q",
                f"--benchmark-storage={store}", "--benchmark-autosave"]
        expected = int(pytest.ExitCode.INTERRUPTED)
    else:
        argv = [sys.executable, "-m", "gpubench", "bench", "--bench-dir", "cases", "-q",
                f"--benchmark-storage={store}", "--benchmark-autosave"]
        expected = 128 + signum
    proc = _run(argv, bench_project, point, signum)
    where = (verb, point, signal.Signals(signum).name)
    _assert_clean(proc, expected, where)
    output = proc.stdout + proc.stderr
    if verb == "gpubench":
        assert proc.stderr.strip().splitlines()[-1] == INTERRUPTED, where
    else:
        assert "gpubench: interrupted: " in output, where
    benches, names = _saved_cases(bench_project)
    assert set(kept) <= names, (where, names, output[-3000:])
    for bench in benches:  # whole stats for every saved case; a cut-short case says so
        stats = bench["stats"]
        assert isinstance(stats, dict) and stats["rounds"] >= 1, (where, bench)
        if stats["rounds"] < 2:
            extra = bench["extra_info"]
            assert isinstance(extra, dict) and extra.get("interrupted") is True, (where, bench)


# --- verify ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("point", VERIFY_POINTS)
def test_verify_interrupted_at_every_point(tmp_path: Path, point: str, signum: int) -> None:
    argv = [sys.executable, "-m", "gpubench", "verify", "--device", "cpu", "--results-dir", "results", "-q"]
    proc = _run(argv, tmp_path, point, signum)
    where = (point, signal.Signals(signum).name)
    _assert_clean(proc, 128 + signum, where)
    assert proc.stderr.strip().splitlines()[-1] == INTERRUPTED, where
    docs = _assert_whole_json(tmp_path / "results" / "verify")
    # written at the end, all or nothing: files only when the point is after the save
    assert (len(docs) == 1) == (point == "verify.saved"), (where, docs)
    for doc in docs:
        assert doc["schema"] == "gpubench.verify/1" and doc["checks"], where


# --- report ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("point", REPORT_POINTS)
def test_report_interrupted_at_every_point(tmp_path: Path, point: str, signum: int) -> None:
    results = tmp_path / "results"
    shutil.copytree(DATA_RUNS, results, ignore=shutil.ignore_patterns("*.py", "*.md"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("previous report\n", encoding="utf-8")
    argv = [sys.executable, "-m", "gpubench", "report", "--results-dir", "results", "--output", "out",
            "--no-plots", "-q"]
    proc = _run(argv, tmp_path, point, signum)
    where = (point, signal.Signals(signum).name)
    _assert_clean(proc, 128 + signum, where)
    assert proc.stderr.strip().splitlines()[-1] == INTERRUPTED, where
    text = (out / "report.md").read_text("utf-8")
    assert text == "previous report\n" or text.rstrip().endswith(("</details>", "|", ".")) or len(text) > 100
    assert not list(out.rglob("*.tmp")), where
    for csv in out.glob("*.csv"):  # whole files only: a header and rows
        assert csv.read_text("utf-8").endswith("\n"), (where, csv)


def test_every_placed_point_is_swept() -> None:
    swept = {p.split("@")[0] for p, _ in BENCH_POINTS} | {p.split("@")[0] for p in (*VERIFY_POINTS, *REPORT_POINTS)}
    placed = {p for points in killpoints.POINTS.values() for p in points}
    assert placed - swept <= {"verify.measure.start", "verify.measure.end"}, placed - swept


def test_the_seam_costs_nothing_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(killpoints.ENV, raising=False)
    killpoints.reset()
    sent: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append(sig))
    for _ in range(3):
        killpoints.reached("bench.save")
    monkeypatch.setenv(killpoints.ENV, "bench.save@2:SIGTERM")
    killpoints.reset()
    for _ in range(3):
        killpoints.reached("bench.save")
    killpoints.reset()
    assert sent == [signal.SIGTERM]
