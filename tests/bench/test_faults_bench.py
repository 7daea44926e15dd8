"""Faults during benchmark runs, injected for real: a case that hangs, a size that cannot be allocated,
SIGTERM and SIGINT in the middle of a run, and two runs saving at once. Completed results must survive."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CASES = """
import time
import torch

def test_quick(benchmark, device):
    benchmark.group = "quick"
    benchmark(torch.ones, 16)

def test_hangs(device):
    open("hang-started", "w").close()
    while True:
        time.sleep(0.05)

def test_too_big(device, size=2**62):
    torch.empty(size, dtype=torch.uint8, device=device.name)
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for var in ("GPUBENCH_DL_DEVICE", "GPUBENCH_BENCH_DEVICES", "SIMPLE_DL_DEVICE", "GPUBENCH_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(pytester.path))
    (pytester.path / "dl.config.sdn").write_text(
        "dl:\n  device: cpu\nbench:\n  case_timeout_s: 1.5\n", encoding="utf-8"
    )
    pytester.makepyfile(test_cases=CASES)
    return pytester


def saved_runs(root: Path) -> list[Path]:
    return sorted((root / "store").rglob("*.json"))


def test_hang_times_out_oom_names_the_size_and_the_rest_is_saved(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--benchmark-storage=store", "--benchmark-autosave",
        "--benchmark-max-time=0.01", "--benchmark-min-rounds=1",
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*CaseTimeout: test_cases.py::test_hangs?cpu? timed out after 1.5 s (bench.case_timeout_s)*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*CaseOutOfMemory: test_cases.py::test_too_big?cpu?: out of memory with device=cpu*can't allocate*"]
    )
    (saved,) = saved_runs(project.path)
    data = json.loads(saved.read_text())
    assert [b["name"] for b in data["benchmarks"]] == ["test_quick[cpu]"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_keeps_completed_results_whole(project: pytest.Pytester, signum: int) -> None:
    (project.path / "dl.config.sdn").write_text("dl:\n  device: cpu\nbench:\n  case_timeout_s: 0\n", encoding="utf-8")
    proc = subprocess.Popen(
        # in file order (pytest-randomly, where installed, would shuffle): the quick case completes first
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "test_cases.py",
         "-k", "quick or hangs",
         "--benchmark-storage=store", "--benchmark-autosave", "--benchmark-max-time=0.01",
         "--benchmark-min-rounds=1", "-v"],
        cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # a test run started in the background by a shell (`pytest &`, CI scripts) inherits SIGINT ignored,
        # and Python then installs no KeyboardInterrupt handler: give the child the default disposition
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 90
    started = project.path / "hang-started"
    while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)  # wait until the first case is done and the hang has begun
    assert started.exists(), "the hanging case never started"
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "KeyboardInterrupt" in out  # pytest reports the interruption as such
    (saved,) = saved_runs(project.path)
    data = json.loads(saved.read_text())  # whole, valid JSON
    assert [b["name"] for b in data["benchmarks"]] == ["test_quick[cpu]"]
    assert not list((project.path / "store").rglob("*.tmp")), "a temporary file was left behind"
    # the next run works and numbers its file after the saved one
    again = project.runpytest_subprocess("-p", "no:cacheprovider", "-k", "quick", "--benchmark-storage=store",
                                         "--benchmark-autosave", "--benchmark-max-time=0.01")
    again.assert_outcomes(passed=1)
    names = [p.name[:4] for p in saved_runs(project.path)]
    assert names == ["0001", "0002"]


def test_two_saves_at_once_never_overwrite(tmp_path: Path) -> None:
    from pytest_benchmark.storage.file import FileStorage

    from gpubench.bench.saves import atomic_save

    class Log:
        def info(self, text: str) -> None:
            pass

    first = FileStorage(tmp_path / "store", Log(), default_machine_id="machine")
    second = FileStorage(tmp_path / "store", Log(), default_machine_id="machine")
    # both compute the same next number before either writes: the race pytest-benchmark has
    assert first._next_num == second._next_num == "0001"
    atomic_save(first, {"run": 1}, "same-second")
    atomic_save(second, {"run": 2}, "same-second")
    files = sorted((tmp_path / "store" / "machine").iterdir())
    assert [f.name for f in files] == ["0001_same-second.json", "0002_same-second.json"]
    assert [json.loads(f.read_text())["run"] for f in files] == [1, 2]
