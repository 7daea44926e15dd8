"""gpubench's per-case time limit (``bench.case_timeout_s``, a SIGALRM timer) and the pytest-timeout plugin:
when pytest-timeout limits the cases with the same alarm (its signal method), gpubench steps aside and says so
once; with its thread method, or without a timeout, gpubench arms its own (issue 17, item C)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]
pytest.importorskip("pytest_timeout")

# the case outlives gpubench's limit (0.5 s) but not pytest-timeout's (20 s)
CASES = """
import time

def test_slow(device):
    time.sleep(1.5)
"""
OWNED = "gpubench: pytest-timeout (signal method, 20 s) owns the case time limit; bench.case_timeout_s (0.5 s) is not armed"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "dl.config.sdn").write_text("dl:\n  device: cpu\nbench:\n  case_timeout_s: 0.5\n",
                                                 encoding="utf-8")
    pytester.makepyfile(test_cases=CASES)
    return pytester


def test_pytest_timeout_with_the_signal_method_owns_the_limit(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--timeout=20", "--timeout-method=signal")
    result.assert_outcomes(passed=1)  # gpubench's 0.5 s alarm was not armed
    assert [line for line in result.outlines if "owns the case time limit" in line] == [OWNED]


def test_a_timeout_marker_with_the_signal_method_owns_that_case(project: pytest.Pytester) -> None:
    project.makepyfile(test_cases="import pytest, time\n\n@pytest.mark.timeout(20, method='signal')\n"
                                  "def test_slow(device):\n    time.sleep(1.5)\n")
    project.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_thread_method_leaves_gpubench_its_own_limit(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--timeout=20", "--timeout-method=thread")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CaseTimeout: test_cases.py::test_slow?cpu? timed out after 0.5 s*"])
    assert "owns the case time limit" not in result.stdout.str()


def test_without_a_timeout_gpubench_arms_its_own(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CaseTimeout: test_cases.py::test_slow?cpu? timed out after 0.5 s*"])
