"""The one assertion every check file makes."""

from __future__ import annotations

from typing import Any

import pytest

from gpubench.verify.verdicts import Verdict


def assert_verdict(report: Any, device: str, check: str) -> None:
    """FAIL fails with message and remedy; SKIP skips with its reason; PASS and WARN pass.

    A check missing from the report fails, naming it: conftest.py only asks for the (device, check) pairs
    that run_checks runs, so a missing row is a bug in the runner, never a reason to skip quietly.
    """
    result = report.find(device, check)
    if result is None:
        pytest.fail(
            f"{device} {check}: missing from the verify report (gpubench.verify.run_checks gave no row for it)",
            pytrace=False,
        )
    if result.verdict is Verdict.SKIP:
        pytest.skip(result.message)
    assert result.verdict is not Verdict.FAIL, f"{device} {check}: {result.message} Fix: {result.remedy}"
