"""Saved runs and reports are made with the mode any file gets (0666 less the umask), not tempfile's 0600:
a results folder on shared storage is read by other accounts (a monitoring job, the cluster admins)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpubench.results import atomic_write_text, temporary_file


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_saved_result_has_the_mode_the_umask_gives(tmp_path: Path, umask: int) -> None:
    path = atomic_write_text(tmp_path / "verify" / "run.json", "{}")
    assert _mode(path) == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]  # no temporary file left


def test_a_temporary_file_is_new_each_time_and_named_for_its_target(tmp_path: Path, umask: int) -> None:
    first_fd, first = temporary_file(tmp_path, "report.md")
    second_fd, second = temporary_file(tmp_path, "report.md")
    os.close(first_fd)
    os.close(second_fd)
    assert first != second
    for name in (first, second):
        assert Path(name).parent == tmp_path and Path(name).name.startswith(".report.md.")
        assert name.endswith(".tmp") and _mode(Path(name)) == 0o666 & ~umask


def test_a_benchmark_save_and_a_report_have_the_mode_the_umask_gives(tmp_path: Path, umask: int) -> None:
    from pytest_benchmark.storage.file import FileStorage

    from gpubench.bench.saves import atomic_save
    from gpubench.report.outputs import _atomic_write_bytes

    class Log:
        def info(self, text: str) -> None:
            pass

    atomic_save(FileStorage(tmp_path / "store", Log(), default_machine_id="machine"), {"run": 1}, "night")
    saved = tmp_path / "store" / "machine" / "0001_night.json"
    assert _mode(saved) == 0o666 & ~umask
    report = _atomic_write_bytes(tmp_path / "report.md", b"# report\n")
    assert _mode(report) == 0o666 & ~umask
    assert not list(tmp_path.rglob("*.tmp"))
