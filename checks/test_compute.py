"""Compute correctness, behaviour under load, and the performance floor."""

from __future__ import annotations

from typing import Any

from _verdicts import assert_verdict

CHECKS = ("compute", "under_load", "perf_floor")


def test_compute(verify_case: tuple[str, str], verify_report: Any) -> None:
    assert_verdict(verify_report, *verify_case)
