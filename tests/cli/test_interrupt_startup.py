"""Interrupted while the command line is still loading (before gpubench.cli installs its handlers), and an
interrupted ``pytest bench`` whose results folder lies outside the working folder: 130/143, one line, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from gpubench import __main__ as entry
from gpubench.bench import plugin
from gpubench.cli import interrupts


def test_the_start_up_line_is_the_line_of_every_interrupted_command() -> None:
    assert entry.STARTING == interrupts.INTERRUPTED


@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_while_the_cli_loads_exits_with_its_code_and_one_line(tmp_path: Path, sig: str, code: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBENCH_")}
    env["GPUBENCH_KILL_AT"] = f"cli.import:{sig}"
    proc = subprocess.run([sys.executable, "-m", "gpubench", "config", "show"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.strip().splitlines() == [interrupts.INTERRUPTED]
    assert proc.stdout == ""


def test_the_console_script_goes_through_the_start_up_handlers() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["gpubench"] == "gpubench.__main__:console"


class _StorageOutsideTheWorkingFolder:
    path = Path("/elsewhere/results/benchmarks")

    @property
    def location(self) -> str:  # what pytest-benchmark's FileStorage does for a path outside the cwd
        raise ValueError("'/elsewhere/results/benchmarks' is not in the subpath of '/work'")


def test_an_interrupted_run_names_a_results_folder_outside_the_working_folder() -> None:
    session = SimpleNamespace(save="run", autosave=False, benchmarks=[object(), object()],
                              storage=_StorageOutsideTheWorkingFolder())
    config = SimpleNamespace(_benchmarksession=session)
    assert plugin._kept(config) == "2 completed case(s) saved under /elsewhere/results/benchmarks"  # type: ignore[arg-type]


def test_run_installs_the_start_up_handlers_then_runs_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: dict[int, object] = {}
    monkeypatch.setattr(signal, "signal", lambda signum, handler: installed.__setitem__(signum, handler))
    monkeypatch.setattr("gpubench.cli.main", lambda: 0)
    assert entry.run() == 0
    assert installed[signal.SIGINT] is entry._interrupted_while_starting
    assert installed[signal.SIGTERM] is entry._interrupted_while_starting
