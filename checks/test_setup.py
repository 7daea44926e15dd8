"""Configuration, software stack, inventory, identity, contention (see gpubench.verify.checks for the rules)."""

from __future__ import annotations

from typing import Any

from _verdicts import assert_verdict

CHECKS = ("config", "software", "inventory", "identity", "contention")


def test_setup(verify_case: tuple[str, str], verify_report: Any) -> None:
    assert_verdict(verify_report, *verify_case)
