"""The one assertion every check file makes."""

from __future__ import annotations

from typing import Any

import pytest

from gpubench.verify.verdicts import Verdict


def assert_verdict(report: Any, device: str, check: str) -> None:
    """FAIL fails with message and remedy; SKIP skips with its reason; PASS and WARN pass."""
    result = report.find(device, check)
    if result is None:
        pytest.skip(f"{check} was not run on {device}")
    if result.verdict is Verdict.SKIP:
        pytest.skip(result.message)
    assert result.verdict is not Verdict.FAIL, f"{device} {check}: {result.message} Fix: {result.remedy}"
