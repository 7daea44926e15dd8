"""Fault family 4, interruption of ``gpubench verify`` (``nox -s verify`` runs exactly this command).

SIGINT and SIGTERM reach a real ``python -m gpubench verify --device cpu`` at three moments: while it starts,
while PyTorch loads, and while the checks run. Each lands exactly there through a named kill point
(``GPUBENCH_KILL_AT``, :mod:`gpubench.killpoints`), not after a sleep, so a loaded machine cannot move it.
Afterwards every file under ``results/verify/`` is complete JSON or XML (a run stopped during its checks
saves the ones it completed, the interrupted one marked), no temporary file is left, nothing printed a
traceback, and the next runs (two at once, into the same folder) work and write distinct files. The
benchmark side (``pytest bench``) is covered by tests/bench/test_faults_bench.py; every point is swept in
tests/cli/test_interrupt_sweep.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gpubench import killpoints
from gpubench.cli import app as cli
from gpubench.cli import interrupts
from gpubench.results import atomic_write_text

INTERRUPTED = "interrupted: results written so far are kept"
# (the moment, its kill point, the checks completed before it)
MOMENTS = (
    ("starting", "cli.start", 0),
    ("importing PyTorch", "cli.torch.import", 0),
    ("running the checks", "verify.check.start@3", 2),  # the third check: two done, one interrupted
)


def _env(tmp_path: Path, kill_at: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBENCH_", "SIMPLE_DL_"))}
    env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    if kill_at:
        env[killpoints.ENV] = kill_at
    return env


def _start(tmp_path: Path, kill_at: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gpubench", "verify", "--device", "cpu", "--results-dir", "results", "-q"],
        cwd=tmp_path, env=_env(tmp_path, kill_at), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _files_of(results: Path, pid: int) -> list[Path]:
    """The files a run wrote: run ids end with the writer's process id."""
    return sorted(p for p in (results / "verify").glob(f"*-{pid}.*")) if (results / "verify").is_dir() else []


def _assert_complete(path: Path) -> None:
    """Whole JSON with its checks, or whole JUnit XML with its test cases."""
    if path.suffix == ".json":
        data = json.loads(path.read_text("utf-8"))
        assert data["schema"] == "gpubench.verify/1" and data["checks"], path
    else:
        root = ET.parse(path).getroot()
        assert root.tag == "testsuites" and len(root.find("testsuite")) > 1, path


def test_verify_interrupted_at_several_points_then_two_runs_at_once(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for moment, point, completed in MOMENTS:
        # one run per signal, started together: the same point of the same kind of run
        runs = {signum: _start(tmp_path, f"{point}:{signum.name}") for signum in (signal.SIGINT, signal.SIGTERM)}
        for signum, proc in runs.items():
            _, err = proc.communicate(timeout=180)
            where = (moment, signum.name, proc.returncode, err)
            assert "Traceback" not in err, where
            # stopped, saying so, with 128 + the signal
            assert proc.returncode == 128 + signum, where
            assert err.strip().splitlines()[-1] == INTERRUPTED, where
            files = _files_of(results, proc.pid)
            if not completed:  # before the first check: nothing to keep, nothing written
                assert files == [], where
                continue
            # the checks completed are saved, the one in progress marked interrupted; the JUnit twin too
            assert [p.suffix for p in files] == [".json", ".xml"], where
            for path in files:
                _assert_complete(path)
            data = json.loads(files[0].read_text("utf-8"))
            assert (data["interrupted"], data["exit_code"]) == (signum.name, 128 + signum), where
            assert [bool(c.get("interrupted")) for c in data["checks"]] == [False] * completed + [True], where
    assert not list(results.rglob("*.tmp")), "a temporary file was left behind"

    before = set((results / "verify").glob("*")) if (results / "verify").is_dir() else set()
    first, second = _start(tmp_path), _start(tmp_path)  # uninterrupted
    for proc in (first, second):
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    new = sorted(set((results / "verify").glob("*")) - before)
    mine = _files_of(results, first.pid) + _files_of(results, second.pid)
    assert sorted(new) == sorted(mine) and len(new) == 4  # a .json and a .xml each: nothing overwritten
    assert len({p.stem for p in new}) == 2
    for path in (results / "verify").glob("*"):
        _assert_complete(path)
    assert not list(results.rglob("*.tmp"))


# --- the mechanisms behind it, in-process -------------------------------------------------------------


def test_interrupt_while_the_parser_imports_the_verb_exits_130_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted_import(name: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_load_module", interrupted_import)
    assert cli.main(["verify", "--device", "cpu"]) == 130
    assert capsys.readouterr().err == INTERRUPTED + "\n"


def test_sigterm_becomes_exit_143_and_the_previous_handler_comes_back(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = []

    def run_verb(name: str) -> object:
        seen.append(signal.getsignal(signal.SIGTERM))
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (main) thread at the next bytecode
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt the command")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "_load_module", run_verb)
    assert cli.main(["verify", "--device", "cpu"]) == 143
    assert capsys.readouterr().err == INTERRUPTED + "\n"
    assert seen == [interrupts._on_interrupt]
    assert signal.getsignal(signal.SIGTERM) == before


def test_an_error_while_the_interrupt_unwinds_still_exits_130_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """pytest 9's report of a KeyboardInterrupt raised inside a module being imported fails with TypeError (a
    frame without a line number); the stop is still the signal's."""

    def failing_cleanup(name: str) -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode: KeyboardInterrupt here
            raise AssertionError("SIGINT did not interrupt the command")
        except KeyboardInterrupt:
            raise TypeError("unsupported operand type(s) for -: 'NoneType' and 'int'") from None

    monkeypatch.setattr(cli, "_load_module", failing_cleanup)
    assert cli.main(["verify", "--device", "cpu"]) == 130
    err = capsys.readouterr().err
    assert err.endswith(INTERRUPTED + "\n") and "Traceback" not in err
    assert "note: while stopping: TypeError" in err


def test_an_error_without_a_signal_is_not_taken_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(name: str) -> None:
        raise TypeError("a bug")

    monkeypatch.setattr(cli, "_load_module", failing)
    with pytest.raises(TypeError, match="a bug"):
        cli.main(["verify", "--device", "cpu"])


def test_interrupted_write_leaves_the_old_file_whole_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "verify" / "run.json"
    atomic_write_text(target, '{"complete": true}\n')

    def interrupted_fsync(fd: int) -> None:
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM, which gpubench turns into the same) mid-write

    monkeypatch.setattr(os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, '{"complete": false, "padding": "' + "x" * 100_000 + '"}\n')
    assert json.loads(target.read_text("utf-8")) == {"complete": True}
    assert sorted(p.name for p in target.parent.iterdir()) == ["run.json"]


def test_interrupts_are_held_while_pytorch_imports_and_raised_after(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A KeyboardInterrupt raised inside PyTorch's import aborts the process (pybind11 calls std::terminate)
    or is swallowed by it; seen here with SIGINT at 0.9-1.3 s. gpubench imports torch first, holding both
    signals, and raises the one that came once the import is done."""
    import builtins

    real_import = builtins.__import__
    events = []

    def torch_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "torch" and not events:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here: it must not raise inside the import
            events.append("import finished")
        return real_import(name, *args, **kwargs)

    import gpubench.verify.command

    monkeypatch.setattr(gpubench.verify.command, "run", lambda args: events.append("verify ran") or 0)
    monkeypatch.setattr(builtins, "__import__", torch_import)
    assert cli.main(["verify", "--device", "cpu"]) == 130
    assert events == ["import finished"]  # the import completed, and the verb never started
    assert capsys.readouterr().err == INTERRUPTED + "\n"
    assert interrupts._held_interrupts is None
