"""The pytest-benchmark internals gpubench relies on, checked once when pytest starts.

pytest-benchmark offers hooks for what it saves (machine info, the JSON) and what it compares, but none for
three things gpubench does, so those use its internals:

- ``config._benchmarksession`` (its ``benchmarks`` list and ``storage``): saving all-or-nothing, leaving a
  case interrupted before its first round out of the save (else the whole save fails), saying what an
  interrupted run kept, and the throughput table;
- ``BenchmarkFixture._timer`` (set in ``__init__``, read by ``_make_runner``): the clock of one fixture,
  which :class:`gpubench.timing.DeviceTimer` replaces by one that synchronizes the measured device.

:func:`missing_internals` tells, before any case runs, which of them this pytest-benchmark lacks; the plugin
turns off only the feature concerned and says so in one line (:meth:`Missing.message`), naming the installed
version and :data:`SUPPORTED` (the range in pyproject.toml, tested at both ends by ``nox -s benchmark_compat``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# keep equal to the pytest-benchmark requirement in pyproject.toml
SUPPORTED = ">=4.0,<6"
SESSION = "session"  # the feature keys of Missing
TIMER = "timer"
STORAGE = "storage"


@dataclass(frozen=True)
class Missing:
    """One internal this pytest-benchmark lacks, and the gpubench feature that is off because of it."""

    key: str
    internal: str
    feature: str
    version: str

    def message(self) -> str:
        return (
            f"gpubench: pytest-benchmark {self.version} has no {self.internal}, so {self.feature} "
            f"(gpubench supports pytest-benchmark {SUPPORTED})"
        )


def pytest_benchmark_version() -> str:
    try:
        from importlib.metadata import version

        import pytest_benchmark

        return str(getattr(pytest_benchmark, "__version__", "") or version("pytest-benchmark"))
    except Exception:
        return "(version unknown)"


def _reads(function: Any, name: str) -> bool:
    """Whether ``function``'s own code names the attribute ``name`` (stored or loaded)."""
    code = getattr(function, "__code__", None)
    return code is not None and name in code.co_names


def fixture_has_timer(fixture_class: Any) -> bool:
    """``BenchmarkFixture`` sets ``self._timer`` in ``__init__`` and its runner reads it."""
    return _reads(getattr(fixture_class, "__init__", None), "_timer") and _reads(
        getattr(fixture_class, "_make_runner", None), "_timer"
    )


def _class(module: str, name: str) -> Any:
    try:
        return getattr(__import__(module, fromlist=[name]), name, None)
    except ImportError:
        return None


def missing_internals(config: Any) -> list[Missing]:
    """The internals gpubench uses that this pytest-benchmark lacks, read from its code (so the answer is
    known in ``pytest_configure``, whichever plugin configures first). Empty: all present, or pytest-benchmark
    is not loaded in this session (``-p no:benchmark``), where there is nothing to do."""
    plugins = getattr(config, "pluginmanager", None)
    if plugins is None or not plugins.hasplugin("benchmark"):
        return []
    version = pytest_benchmark_version()
    missing: list[Missing] = []
    if not fixture_has_timer(_class("pytest_benchmark.fixture", "BenchmarkFixture")):
        missing.append(Missing(TIMER, "BenchmarkFixture._timer",
                               "gpubench's device timer is off and timed gpubench cases are skipped", version))
    configure = _class("pytest_benchmark.plugin", "pytest_configure")
    session = _class("pytest_benchmark.session", "BenchmarkSession")
    init = getattr(session, "__init__", None)
    if not (_reads(configure, "_benchmarksession") and _reads(init, "benchmarks") and _reads(init, "storage")):
        missing.append(Missing(SESSION, "config._benchmarksession (its benchmarks and storage)",
                               "saves are not made atomic, keep no interrupted case out, and the throughput "
                               "table is off", version))
        return missing
    storage = _class("pytest_benchmark.storage.file", "FileStorage")
    if not all(callable(getattr(storage, name, None)) for name in ("get", "save")):
        missing.append(Missing(STORAGE, "FileStorage.get/save", "saves are not made atomic", version))
    return missing
