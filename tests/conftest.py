"""Every test runs isolated from the user's shell and leaves nothing in the checkout.

A developer's own ``GPUBENCH_*`` / ``SIMPLE_DL_*`` variables (the README suggests ``GPUBENCH_DEVICE=cpu``),
their home folder (``~/.config/gpubench``, ``~/.simple/dl.config.sdn``) and Hypothesis's example database
must not change what a test sees or where it writes. Tests that need one of these set it themselves.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpubench import killpoints

_USER_PREFIXES = ("GPUBENCH_", "SIMPLE_DL_")


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark's pytest_configure opens its storage
def pytest_configure(config: pytest.Config) -> None:
    # pytest-benchmark's default storage, ./.benchmarks, is inside the checkout.
    if getattr(config.option, "benchmark_storage", None) == "file://./.benchmarks":
        config.option.benchmark_storage = f"file://{tempfile.mkdtemp(prefix='gpubench-tests-benchmarks-')}"


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    # Hypothesis keeps its example database in ./.hypothesis by default: inside the checkout.
    base = Path(config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]
    try:
        from hypothesis import configuration, settings
        from hypothesis.database import DirectoryBasedExampleDatabase
    except ImportError:  # hypothesis is in the test extra; without it the property tests skip
        return
    configuration.set_hypothesis_home_dir(str(base / "hypothesis"))
    settings.register_profile("gpubench-tests", database=DirectoryBasedExampleDatabase(str(base / "hypothesis")))
    settings.load_profile("gpubench-tests")


@pytest.fixture(autouse=True)
def isolated_from_the_user(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No user settings, a fresh home and config folder; yields the home folder."""
    for name in list(os.environ):
        if name.startswith(_USER_PREFIXES):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    # The kill-point seam reads GPUBENCH_KILL_AT once and keeps it: a point read while a test had set it (say,
    # by a plugin hook in that test's teardown) would otherwise fire in a later test of this same process. A
    # SIGKILL point left that way once killed the whole test run (exit -9).
    killpoints.reset()
    yield home
    killpoints.reset()
