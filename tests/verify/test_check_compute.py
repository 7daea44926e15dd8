"""The compute check's decision over hand-made readings: both sides of every threshold."""

from __future__ import annotations

import pytest

from gpubench.verify.checks.compute import COMPUTE_TOLERANCE, ComputeReading, DtypeCompute, decide_compute
from gpubench.verify.verdicts import Verdict

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


def _dc(**kw: object) -> DtypeCompute:
    base = {
        "dtype": "bf16",
        "n": 64,
        "repeats": 3,
        "identical": True,
        "rel_error": 1e-3,
        "tolerance": 1.5e-2,
        "nonfinite": 0,
    }
    base.update(kw)
    return DtypeCompute(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "verdict"),
    [
        ({"rel_error": 1.5e-2}, P),
        ({"rel_error": 1.51e-2}, F),
        ({"nonfinite": 1}, F),
        ({"identical": False}, F),
    ],
)
def test_compute_thresholds(kw: dict[str, object], verdict: Verdict) -> None:
    assert decide_compute(ComputeReading("cuda:0", (_dc(**kw),))).verdict is verdict


def test_compute_all_skipped_is_skip_with_reasons() -> None:
    r = decide_compute(ComputeReading("cuda:0", (_dc(skipped="needs sm80"),)))
    assert r.verdict is S and "needs sm80" in r.message


def test_compute_tolerances_are_ordered_by_precision() -> None:
    t = COMPUTE_TOLERANCE
    assert t["f64"] < t["f32"] < t["tf32"] <= t["f16"] < t["bf16"]
