"""The memtest check's decision over hand-made readings: both sides of every threshold."""

from __future__ import annotations

from gpubench.verify.checks.memtest import MemtestReading, PatternResult, decide_memtest
from gpubench.verify.verdicts import Verdict

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


def _memtest(
    *patterns: PatternResult, planned: int | None = None, error: str | None = None
) -> MemtestReading:
    return MemtestReading("cuda:0", 1 << 20, patterns, planned or len(patterns), 1.0, 10.0, error)


def test_memtest_zero_and_one_mismatch() -> None:
    assert decide_memtest(_memtest(PatternResult("random", 1000, 0))).verdict is P
    r = decide_memtest(_memtest(PatternResult("random", 1000, 1, 7, 0x10)))
    assert r.verdict is F and r.value == 1 and "byte 28" in r.message and "0x00000010" in r.message


def test_memtest_time_bound_and_errors() -> None:
    r = decide_memtest(_memtest(PatternResult("address", 1000, 0), planned=5))
    assert r.verdict is P and "1 of 5 patterns" in r.message
    assert decide_memtest(_memtest(error="CUDA out of memory")).verdict is S
    assert decide_memtest(_memtest(PatternResult("address", 10, 0), error="device lost")).verdict is W
