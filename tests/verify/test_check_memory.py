"""The memory_health check's decision over hand-made readings: both sides of every threshold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpubench.verify.checks.memory import MemoryHealth, decide_memory_health
from gpubench.verify.verdicts import Verdict

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


HEALTHY = MemoryHealth(True, True, 0, False, 0, 0, False, False, 0)


def test_memory_health_healthy_and_all_na() -> None:
    assert decide_memory_health(HEALTHY, "cuda:0").verdict is P
    r = decide_memory_health(MemoryHealth(), "cuda:0")
    assert r.verdict is S and "consumer GPUs" in r.message


@pytest.mark.parametrize(
    ("change", "verdict", "text"),
    [
        ({"retired_pages_pending": True}, F, "page retirement pending"),
        ({"remap_pending": True}, F, "row remapping pending"),
        ({"remap_failure": True}, F, "row remapping failed"),
        ({"remapped_uncorrectable": 511}, P, "no pending"),
        ({"remapped_uncorrectable": 512}, F, "512 rows remapped"),
        ({"volatile_uncorrected": 1}, F, "1 uncorrected ECC error"),
        ({"recovery_action": 1}, F, "GPU reset"),
        ({"recovery_action": 2}, F, "node reboot"),
        ({"ecc_current": False, "ecc_pending": False}, W, "ECC is disabled"),
        ({"ecc_pending": False}, W, "ECC mode change pending"),
        ({"remapped_correctable": 40}, P, "no pending"),
    ],
)
def test_memory_health_thresholds(change: dict[str, object], verdict: Verdict, text: str) -> None:
    r = decide_memory_health(replace(HEALTHY, **change), "cuda:0", remap_uncorrectable_limit=512)
    assert r.verdict is verdict and text in r.message


def test_memory_health_counts_increase_during_run() -> None:
    r = decide_memory_health(
        replace(HEALTHY, volatile_uncorrected=3), "cuda:0", baseline=replace(HEALTHY, volatile_uncorrected=1)
    )
    assert r.verdict is F and "2 during this run" in r.message
