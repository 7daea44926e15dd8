"""Installed in an environment, gpubench's pytest11 plugins say nothing and save nothing of their own in another
project's pytest session, one that runs no gpubench case (issue 17, item F); a session that runs one still
gets the header line, the throughput table and gpubench's keys in the saved JSON."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

PLAIN = """
def test_sum(benchmark):
    benchmark(sum, range(100))

def test_plain():
    assert True
"""

WITH_A_GPUBENCH_CASE = PLAIN + """

def test_on_device(benchmark, device):
    benchmark(sum, range(100))
"""


def _run(pytester: pytest.Pytester) -> tuple[pytest.RunResult, dict[str, object]]:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-json=out.json",
                                           "--benchmark-max-time=0.001", "--benchmark-min-rounds=1")
    return result, json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))


def _gpubench_lines(result: pytest.RunResult) -> list[str]:
    """Lines gpubench wrote (its header, notes, tables), not the rootdir, whose test name says gpubench."""
    lines = result.outlines + result.errlines
    plugins = [line for line in lines if line.startswith("plugins:")]
    assert plugins and "gpubench-" in plugins[0], "the gpubench plugins must be loaded for this to mean anything"
    return [line for line in lines if "gpubench " in line or "gpubench:" in line]


def test_a_plain_pytest_benchmark_project_hears_nothing_from_gpubench(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    result, saved = _run(pytester)
    result.assert_outcomes(passed=2)
    assert _gpubench_lines(result) == []
    assert "gpubench" not in saved
    assert "gpubench" not in saved["machine_info"]  # type: ignore[operator]
    (bench,) = saved["benchmarks"]  # type: ignore[misc]
    assert bench["extra_info"] == {}


def test_a_gpubench_case_brings_the_header_table_and_keys_back(pytester: pytest.Pytester) -> None:
    (pytester.path / "dl.config.sdn").write_text("dl:\n  device: cpu\n", encoding="utf-8")
    pytester.makepyfile(test_mixed=WITH_A_GPUBENCH_CASE)
    result, saved = _run(pytester)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["collected 3 items", "gpubench: devices cpu; config dl.config.sdn"])
    result.stdout.fnmatch_lines(["*gpubench throughput (from extra_info)*"])
    assert set(saved["gpubench"]) == {"run_id"}  # type: ignore[arg-type]
    assert "config" in saved["machine_info"]["gpubench"]  # type: ignore[index]
