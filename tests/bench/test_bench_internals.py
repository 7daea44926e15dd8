"""The pytest-benchmark internals gpubench relies on: checked when pytest starts, each missing one turns off
only its feature, in one line naming the installed version and the supported range (issue 17, item A)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpubench.bench import internals
from gpubench.bench.saves import atomic_save, next_number

pytest_plugins = ["pytester"]


class _Plugins:
    def __init__(self, loaded: bool) -> None:
        self.loaded = loaded

    def hasplugin(self, name: str) -> bool:
        return self.loaded and name == "benchmark"


class _Config:
    def __init__(self, loaded: bool = True) -> None:
        self.pluginmanager = _Plugins(loaded)


def test_this_pytest_benchmark_has_every_internal() -> None:
    assert internals.missing_internals(_Config()) == []


def test_nothing_is_checked_without_pytest_benchmark_in_the_session() -> None:
    assert internals.missing_internals(_Config(loaded=False)) == []


def test_a_fixture_without_its_own_timer_is_named_with_version_and_range(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_benchmark.fixture import BenchmarkFixture

    original = BenchmarkFixture.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:  # a future fixture that keeps its clock elsewhere
        original(self, *args, **kwargs)

    monkeypatch.setattr(BenchmarkFixture, "__init__", init)
    (missing,) = internals.missing_internals(_Config())
    assert missing.key == internals.TIMER
    text = missing.message()
    assert "\n" not in text
    assert f"pytest-benchmark {internals.pytest_benchmark_version()} has no BenchmarkFixture._timer" in text
    assert text.endswith(f"(gpubench supports pytest-benchmark {internals.SUPPORTED})")


def test_a_storage_without_save_turns_atomic_saves_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_benchmark.storage.file import FileStorage

    monkeypatch.delattr(FileStorage, "save")
    assert [m.key for m in internals.missing_internals(_Config())] == [internals.STORAGE]


def test_the_supported_range_is_the_one_pyproject_requires() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"pytest-benchmark{internals.SUPPORTED}"' in pyproject


def test_the_next_number_is_read_from_the_folder(tmp_path: Path) -> None:
    assert next_number(tmp_path) == 1
    for name in ("0002_a.json", "0007_b.json", "notes.txt", "abcd_c.json"):
        (tmp_path / name).write_text("{}", encoding="utf-8")
    assert next_number(tmp_path) == 8


def test_an_atomic_save_numbers_after_the_saved_runs(tmp_path: Path) -> None:
    from pytest_benchmark.storage.file import FileStorage

    class Log:
        def info(self, text: str) -> None:
            pass

    storage = FileStorage(tmp_path / "store", Log(), default_machine_id="machine")
    folder = tmp_path / "store" / "machine"
    folder.mkdir(parents=True)
    (folder / "0041_old.json").write_text("{}", encoding="utf-8")
    atomic_save(storage, {"run": 1}, "new")
    assert sorted(p.name for p in folder.iterdir()) == ["0041_old.json", "0042_new.json"]
    assert json.loads((folder / "0042_new.json").read_text(encoding="utf-8")) == {"run": 1}


NO_TIMER_CONFTEST = """
from pytest_benchmark import fixture

_original = fixture.BenchmarkFixture.__init__


def _init(self, *args, **kwargs):  # as a pytest-benchmark whose fixture has no _timer would look
    _original(self, *args, **kwargs)


fixture.BenchmarkFixture.__init__ = _init
"""

CASES = """
def test_timed(benchmark, device):
    benchmark(sum, range(10))

def test_plain(device):
    assert device.name == "cpu"
"""


def test_a_missing_timer_is_said_at_start_and_skips_only_timed_cases(pytester: pytest.Pytester) -> None:
    (pytester.path / "dl.config.sdn").write_text("dl:\n  device: cpu\n", encoding="utf-8")
    pytester.makeconftest(NO_TIMER_CONFTEST)
    pytester.makepyfile(test_cases=CASES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-rs",
                                           "--benchmark-max-time=0.001")
    result.assert_outcomes(passed=1, skipped=1)
    line = (f"gpubench: pytest-benchmark {internals.pytest_benchmark_version()} has no BenchmarkFixture._timer, "
            "so gpubench's device timer is off and timed gpubench cases are skipped (gpubench supports "
            f"pytest-benchmark {internals.SUPPORTED})")
    before_tests = result.outlines[: next(i for i, t in enumerate(result.outlines) if "test_cases.py" in t)]
    assert line in before_tests
    result.stdout.fnmatch_lines(["*SKIPPED*test_cases.py*" + line.replace("[", "[[]")])
