"""bench/conftest.py's storage rules: autosaved runs keep every round, and an explicit --benchmark-storage
is used as given, even when it names pytest-benchmark's own default."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
BENCH = Path(__file__).resolve().parents[2] / "bench"

CASE = """
def test_tiny(benchmark):
    benchmark.pedantic(sum, args=(range(100),), rounds=7, iterations=1)
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("HOME", str(pytester.path))  # no user config: built-in defaults
    shutil.copy(BENCH / "conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(test_case=CASE)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    return pytester


def test_autosaved_runs_keep_every_round(suite: pytest.Pytester) -> None:
    suite.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    (saved,) = (suite.path / "results" / "benchmarks").rglob("*.json")
    (case,) = json.loads(saved.read_text("utf-8"))["benchmarks"]
    assert len(case["stats"]["data"]) == 7  # the rounds gpubench report compares


def test_an_explicit_default_storage_is_used_as_given(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-storage=file://./.benchmarks")
    result.assert_outcomes(passed=1)
    assert list((suite.path / ".benchmarks").rglob("*.json"))
    assert not (suite.path / "results" / "benchmarks").exists()
