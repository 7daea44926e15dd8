"""The inventory check's decision over hand-made readings: both sides of every threshold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpubench.verify.checks.inventory import Inventory, decide_inventory
from gpubench.verify.verdicts import Verdict

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


INV = Inventory("cuda:1", 2, 2, None)


def test_inventory_present_passes() -> None:
    assert decide_inventory(INV).verdict is P


def test_inventory_unusable_fails_with_exact_reason() -> None:
    r = decide_inventory(
        replace(
            INV,
            torch_count=1,
            unusable_code="index_out_of_range",
            unusable_reason="only 1 GPU(s) visible (cuda:0 (X)); cuda:1 does not exist.",
            unusable_remedy="choose cuda:0",
        )
    )
    assert r.verdict is F and "only 1 GPU(s) visible" in r.message and r.remedy == "choose cuda:0"


@pytest.mark.parametrize(
    ("nvml", "cvd", "verdict"), [(3, None, W), (2, None, P), (3, "0,1", P), (None, None, P)]
)
def test_inventory_counts(nvml: int | None, cvd: str | None, verdict: Verdict) -> None:
    assert decide_inventory(replace(INV, nvml_count=nvml, cuda_visible_devices=cvd)).verdict is verdict
