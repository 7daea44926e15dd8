"""Memory health (ECC, retired pages, row remapping, recovery action) and the memory pattern test."""

from __future__ import annotations

from typing import Any

from _verdicts import assert_verdict

CHECKS = ("memory_health", "memtest")


def test_memory(verify_case: tuple[str, str], verify_report: Any) -> None:
    assert_verdict(verify_report, *verify_case)
