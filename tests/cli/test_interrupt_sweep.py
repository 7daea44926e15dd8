"""The kill-point sweep (issue 15): every verb, interrupted at each of the 44 named points, by SIGINT or SIGTERM.

``GPUBENCH_KILL_AT=<point>[@n]:<signal>`` (:mod:`gpubench.killpoints`) makes the process signal itself
exactly there, so no test sleeps and every run lands where it is meant to. Each run is a real subprocess;
afterwards: the exit code (130 for SIGINT and 143 for SIGTERM from ``gpubench``, pytest's "interrupted", 2,
for plain ``pytest``), no traceback, the line saying what was kept, every result file present whole, and what
completed before the point is in it: benchmark cases in the saved run, verification checks in
``results/verify/<run>.json`` (the interrupted check marked ``interrupted``), MNIST epochs in the checkpoint.

44 named points (:data:`gpubench.killpoints.POINTS`): cli 4, config 3, info 2, verify 12, bench (pytest
plugin) 11, the cases' own ``case.round`` 1, bench mnist 5, report 4, distributed ranks 2 (those two are
swept in tests/cli/test_interrupt_ranks.py, two forked gloo ranks on cpu). To keep the sweep to a few
minutes, each variant runs once, the signals alternating from one point to the next (and, for the plugin's
points, the verb alternating between ``pytest`` and ``gpubench bench`` too); :func:`test_every_placed_point_is_swept`
fails when a point is placed without being swept. Points named ``case.*`` are placed by the cases below inside
the timed function (round k of a case), where pytest-benchmark itself gives no hook.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gpubench import killpoints

DATA_RUNS = Path(__file__).resolve().parents[1] / "data" / "runs"
INTERRUPTED = "interrupted: results written so far are kept"
SIGNALS = (signal.SIGINT, signal.SIGTERM)

CASES = """
from gpubench import killpoints

def test_first(benchmark, device):
    benchmark.pedantic(killpoints.reached, args=("case.round",), rounds=2, iterations=1)

def test_second(benchmark, device):
    benchmark.pedantic(killpoints.reached, args=("case.round",), rounds=2, iterations=1)

def test_third(benchmark, device):
    benchmark.pedantic(sum, args=(range(10),), rounds=2, iterations=1)
"""
ALL = ("test_first", "test_second", "test_third")


def _alternating(points: tuple[str, ...] | list[str], first: int = 0) -> list[tuple[str, signal.Signals]]:
    """Each point once, the signals taking turns."""
    return [(p, SIGNALS[(i + first) % 2]) for i, p in enumerate(points)]


def _ids(rows: list[tuple[object, ...]]) -> list[str]:
    return [f"{row[0]}-{row[-1].name}" for row in rows]  # type: ignore[attr-defined]


# (point, the cases that completed before it: they must be in the saved run)
BENCH_POINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bench.configure", ()),
    ("bench.collection", ()),
    ("bench.case.setup", ()),
    ("bench.case.setup@2", ("test_first",)),
    ("bench.case.call", ()),
    ("case.round", ()),  # the first round of the first case: it has no round yet
    ("case.round@3", ("test_first",)),  # the first round of the second case
    ("case.round@4", ("test_first",)),  # its second round: saved with one round, marked interrupted
    ("bench.telemetry.start", ()),
    ("bench.telemetry.stop", ()),
    ("bench.case.call.end", ()),
    ("bench.case.teardown", ("test_first",)),
    ("bench.case.teardown@3", ("test_first", "test_second")),
    ("bench.sessionfinish", ALL),
    ("bench.save", ALL),
    ("bench.summary", ALL),
)
# each point once: the signal alternates point by point, the verb every second point (so each point's
# neighbours cover the other combinations)
BENCH_RUNS = [
    (point, kept, ("gpubench", "pytest")[(i // 2) % 2], SIGNALS[i % 2]) for i, (point, kept) in enumerate(BENCH_POINTS)
]

# (point, checks completed before it, checks marked interrupted, files written). On cpu the quick level runs
# config, software, memtest (decided at the end of the device's pass), compute, perf_floor (measured in the
# pass, decided across devices) in that order. A signal during the save of a finished run is held until both
# files are written.
VERIFY_POINTS: tuple[tuple[str, int, int, bool], ...] = (
    ("verify.probe", 0, 0, False),
    ("verify.plan", 0, 0, False),
    ("verify.check.start", 0, 1, True),
    ("verify.check.start@3", 2, 1, True),
    ("verify.check.end@4", 4, 0, True),
    ("verify.measure.start", 4, 1, True),
    ("verify.measure.end", 4, 1, True),
    ("verify.decision", 4, 1, True),
    ("verify.across", 4, 1, True),
    ("verify.save", 5, 0, True),
    ("verify.write.json", 5, 0, True),
    ("verify.write.junit", 5, 0, True),
    ("verify.saved", 5, 0, True),
)
VERIFY_QUICKER = ("--set", "verify.memtest_seconds=0.3", "--set", "verify.burn_seconds=0.3")  # same checks
VERIFY_RUNS = [(*row, SIGNALS[i % 2]) for i, row in enumerate(VERIFY_POINTS)]

# (point, epochs in the checkpoint afterwards: None for no checkpoint) for 2 epochs, a checkpoint after each
MNIST_POINTS: tuple[tuple[str, int | None], ...] = (
    ("bench.mnist.data.load", None),
    ("bench.mnist.epoch.start@2", 1),
    ("bench.mnist.epoch.end", None),  # the first epoch trained, not yet saved
    ("bench.mnist.checkpoint.save@2", 1),  # the second save, written but not renamed: the first stays whole
    ("bench.mnist.checkpoint.saved", 1),
)
MNIST_RUNS = [(*row, SIGNALS[(i + 1) % 2]) for i, row in enumerate(MNIST_POINTS)]

# the verbs that write nothing: (point, argv after `gpubench`)
SMALL_POINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cli.import", ("config", "show")),  # the command line still loading: gpubench.__main__'s start-up handlers
    ("cli.start", ("config", "show")),
    ("cli.torch.import", ("info",)),  # held while PyTorch imports, raised after
    ("cli.exit", ("config", "show")),  # the command done, the process ending: still 130/143, not -2/-15
    ("config.load", ("config", "show")),
    ("config.show", ("config", "show", "--json")),
    ("config.check", ("config", "check", "dl.config.sdn")),
    ("info.probe", ("info",)),
    ("info.print", ("info", "--json")),
)
SMALL_RUNS = [(*row, SIGNALS[i % 2]) for i, row in enumerate(SMALL_POINTS)]

REPORT_RUNS = _alternating(("report.load", "report.build", "report.write", "report.written"), first=1)

# swept by tests/cli/test_interrupt_ranks.py (two forked ranks)
RANK_POINTS = ("dist.rank.local", "dist.rank.merge")


def _env(home: Path, point: str, signum: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBENCH_", "SIMPLE_DL_", "PYTEST_"))}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / "xdg"),
                killpoints.ENV: f"{point}:{signal.Signals(signum).name}",
                "PYTEST_ADDOPTS": "-p no:randomly"})  # the cases in file order: `@n` counts on it
    return env


def _run(argv: list[str], cwd: Path, point: str, signum: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(cwd, point, signum), capture_output=True, text=True,
                          timeout=240)


def _assert_clean(proc: subprocess.CompletedProcess[str], expected_rc: int, where: object) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == expected_rc, (where, proc.returncode, output[-3000:])
    assert "Traceback" not in output, (where, output[-3000:])


def _assert_interrupted(proc: subprocess.CompletedProcess[str], signum: int, where: object) -> None:
    """``gpubench`` stopped by ``signum``: 128 + signum, no traceback, the last line says so."""
    _assert_clean(proc, 128 + signum, where)
    assert proc.stderr.strip().splitlines()[-1] == INTERRUPTED, (where, proc.stderr[-3000:])


def _json_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.json")) if folder.is_dir() else []


def _assert_whole_json(folder: Path) -> list[dict[str, object]]:
    docs = [json.loads(p.read_text("utf-8")) for p in _json_files(folder)]
    assert not list(folder.rglob("*.tmp")) if folder.is_dir() else True, "a temporary file was left behind"
    return docs


def _gpubench(*args: str) -> list[str]:
    return [sys.executable, "-m", "gpubench", *args]


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


@pytest.mark.parametrize(("point", "kept", "verb", "signum"), BENCH_RUNS, ids=_ids(BENCH_RUNS))
def test_bench_interrupted_at_every_point(
    bench_project: Path, verb: str, point: str, kept: tuple[str, ...], signum: signal.Signals
) -> None:
    store = bench_project / "results" / "benchmarks"
    if verb == "pytest":
        argv = [sys.executable, "-m", "pytest", "cases", "-p", "no:cacheprovider", "-q",
                f"--benchmark-storage={store}", "--benchmark-autosave"]
    else:
        argv = _gpubench("bench", "--bench-dir", "cases", "-q", f"--benchmark-storage={store}",
                         "--benchmark-autosave")
    proc = _run(argv, bench_project, point, signum)
    where = (verb, point, signum.name)
    output = proc.stdout + proc.stderr
    if verb == "gpubench":
        _assert_interrupted(proc, signum, where)
    else:
        _assert_clean(proc, int(pytest.ExitCode.INTERRUPTED), where)
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


@pytest.mark.parametrize(("point", "completed", "marked", "written", "signum"), VERIFY_RUNS, ids=_ids(VERIFY_RUNS))
def test_verify_interrupted_at_every_point(
    tmp_path: Path, point: str, completed: int, marked: int, written: bool, signum: signal.Signals
) -> None:
    argv = _gpubench("verify", "--device", "cpu", "--results-dir", "results", "-q", *VERIFY_QUICKER)
    proc = _run(argv, tmp_path, point, signum)
    where = (point, signum.name)
    _assert_interrupted(proc, signum, where)
    folder = tmp_path / "results" / "verify"
    docs = _assert_whole_json(folder)
    assert len(docs) == int(written), (where, docs)
    if not written:
        return
    [doc] = docs
    checks = doc["checks"]
    assert isinstance(checks, list) and doc["schema"] == "gpubench.verify/1", where
    interrupted = [c for c in checks if c.get("interrupted")]
    done = [c for c in checks if not c.get("interrupted")]
    assert (len(done), len(interrupted)) == (completed, marked), (where, checks)
    assert all(c["verdict"] in ("PASS", "WARN", "FAIL", "SKIP") for c in done), where
    assert all(c["verdict"] == "SKIP" and signum.name in c["message"] for c in interrupted), (where, interrupted)
    if marked or completed < 5:  # stopped before the end: the document says so, and says by what
        assert (doc["interrupted"], doc["exit_code"]) == (signum.name, 128 + signum), where
        assert f"{completed} check(s) completed, {signum.name} stopped the run" in proc.stderr, where
    else:  # every check done: a signal during the save waited for it, and the run is whole
        assert "interrupted" not in doc and doc["exit_code"] in (0, 1), where
    [xml] = folder.glob("*.xml")  # the JUnit twin, whole: one test case per row
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None and len(suite.findall("testcase")) == len(checks), where


# --- bench mnist -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("point", "epochs", "signum"), MNIST_RUNS, ids=_ids(MNIST_RUNS))
def test_bench_mnist_interrupted_at_every_point(
    tmp_path: Path, point: str, epochs: int | None, signum: signal.Signals
) -> None:
    from gpubench.workloads import checkpoint

    argv = _gpubench("bench", "mnist", "--device", "cpu", "--epochs", "2", "--limit", "128", "--checkpoint-every",
                     "1", "--checkpoint", "ckpt/run.ckpt", "--results-dir", "results", "--set", "data.source=synthetic",
                     "-q")
    proc = _run(argv, tmp_path, point, signum)
    where = (point, signum.name)
    _assert_interrupted(proc, signum, where)
    assert not list(tmp_path.rglob("*.tmp")), (where, "a temporary file was left behind")
    assert not (tmp_path / "results" / "training").exists(), where  # the record is written at the end
    saved = tmp_path / "ckpt" / "run.ckpt"
    assert saved.exists() == (epochs is not None), where
    if epochs is not None:  # whole (magic, length, checksum) and holding the epochs completed
        assert checkpoint.read(saved)["epoch"] == epochs, where


# --- config, info, and the command line itself: nothing written, a clean stop -----------------------------


@pytest.mark.parametrize(("point", "args", "signum"), SMALL_RUNS, ids=_ids(SMALL_RUNS))
def test_read_only_verbs_interrupted_at_every_point(
    tmp_path: Path, point: str, args: tuple[str, ...], signum: signal.Signals
) -> None:
    (tmp_path / "dl.config.sdn").write_text("dl:\n  device: cpu\n", encoding="utf-8")
    proc = _run(_gpubench(*args), tmp_path, point, signum)
    _assert_interrupted(proc, signum, (point, signum.name))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dl.config.sdn"], point  # wrote nothing


# --- report ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("point", "signum"), REPORT_RUNS, ids=_ids(REPORT_RUNS))  # type: ignore[arg-type]
def test_report_interrupted_at_every_point(tmp_path: Path, point: str, signum: signal.Signals) -> None:
    results = tmp_path / "results"
    shutil.copytree(DATA_RUNS, results, ignore=shutil.ignore_patterns("*.py", "*.md"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("previous report\n", encoding="utf-8")
    argv = _gpubench("report", "--results-dir", "results", "--output", "out", "--no-plots", "-q")
    proc = _run(argv, tmp_path, point, signum)
    where = (point, signum.name)
    _assert_interrupted(proc, signum, where)
    text = (out / "report.md").read_text("utf-8")
    assert text == "previous report\n" or text.rstrip().endswith(("</details>", "|", ".")) or len(text) > 100
    assert not list(out.rglob("*.tmp")), where
    for csv in out.glob("*.csv"):  # whole files only: a header and rows
        assert csv.read_text("utf-8").endswith("\n"), (where, csv)


# --- the sweep is whole -------------------------------------------------------------------------------------


def _swept() -> set[str]:
    rows = [p for p, _ in BENCH_POINTS] + [r[0] for r in (*VERIFY_POINTS, *MNIST_POINTS, *SMALL_POINTS)]
    return {p.split("@")[0] for p in (*rows, *(p for p, _ in REPORT_RUNS), *RANK_POINTS)}


def test_every_placed_point_is_swept() -> None:
    placed = {p for points in killpoints.POINTS.values() for p in points}
    assert placed == _swept(), (placed - _swept(), _swept() - placed)
    assert len(placed) >= 40 and f"{len(placed)} named points" in (__doc__ or ""), len(placed)


def test_the_readme_says_what_the_sweep_asserts() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    placed = sum(len(points) for points in killpoints.POINTS.values())
    assert "**130** interrupted by Ctrl-C (SIGINT), **143** stopped by SIGTERM" in readme
    assert "\"interrupted\" code, 2, for both" in readme  # plain pytest
    row = next(line for line in readme.splitlines() if line.startswith("| **Ctrl-C or SIGTERM**"))
    assert f"each of {placed} named points" in row and INTERRUPTED in row
    assert all(verb in row for verb in ("`verify`", "`bench`", "`bench mnist`", "`report`", "`config`", "`info`"))


def test_every_point_runs_with_each_signal_somewhere() -> None:
    runs = [*BENCH_RUNS, *VERIFY_RUNS, *MNIST_RUNS, *SMALL_RUNS, *REPORT_RUNS]
    for group in (BENCH_RUNS, VERIFY_RUNS, MNIST_RUNS, SMALL_RUNS, REPORT_RUNS):
        assert {row[-1] for row in group} == set(SIGNALS)
    assert len(runs) == len({(row[0], row[-1]) for row in runs})  # no variant twice


def test_every_placed_point_is_in_the_code() -> None:
    """A point listed but no longer placed would be swept for nothing (or signal nowhere)."""
    src = Path(killpoints.__file__).resolve().parent
    text = "\n".join(p.read_text("utf-8") for p in src.rglob("*.py")) + CASES
    missing = [p for points in killpoints.POINTS.values() for p in points if f'"{p}"' not in text]
    assert not missing, missing


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
    monkeypatch.setenv(killpoints.ENV, "bench.save:SIGKILL,rank=1")  # another rank's point: nothing
    monkeypatch.setenv("RANK", "0")
    killpoints.reset()
    killpoints.reached("bench.save")
    monkeypatch.setenv("RANK", "1")
    killpoints.reset()
    killpoints.reached("bench.save")
    monkeypatch.delenv(killpoints.ENV)  # leave no SIGKILL point for a hook of this process to read later
    killpoints.reset()
    assert sent == [signal.SIGTERM, signal.SIGKILL]
