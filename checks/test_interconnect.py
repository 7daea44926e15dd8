"""Host<->device bandwidth against the PCIe link, and peer copies between GPUs."""

from __future__ import annotations

from typing import Any

from _verdicts import assert_verdict

CHECKS = ("interconnect",)


def test_interconnect(verify_case: tuple[str, str], verify_report: Any) -> None:
    assert_verdict(verify_report, *verify_case)
