"""The contention check's decision over hand-made readings: both sides of every threshold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpubench.verify.checks.contention import ContentionReading, ProcessInfo, decide_contention
from gpubench.verify.verdicts import Verdict

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


CONT = ContentionReading("cuda:1", (), compute_mode=0, persistence=True, mig_current=False, mig_pending=False)


def test_contention_alone_passes() -> None:
    assert decide_contention(CONT).verdict is P


def test_contention_names_who_else() -> None:
    r = decide_contention(replace(CONT, processes=(ProcessInfo(4242, "jupyter", 2 * 2**30),)))
    assert r.verdict is W and "pid 4242 (jupyter, 2.0 GiB)" in r.message and r.value == 1


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        ({"compute_mode": 2}, F),
        ({"compute_mode": 3}, P),
        ({"mig_current": True}, W),
        ({"persistence": False}, P),
    ],
)
def test_contention_modes(change: dict[str, object], verdict: Verdict) -> None:
    assert decide_contention(replace(CONT, **change)).verdict is verdict


def test_contention_exclusive_mode_with_other_process_warns() -> None:
    busy = replace(CONT, compute_mode=3, processes=(ProcessInfo(1, None, None),))
    r = decide_contention(busy)
    assert r.verdict is W and "exclusive_process" in r.message
