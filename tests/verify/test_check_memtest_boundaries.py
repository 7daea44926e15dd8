"""The memtest decision's exact rows: one bad word fails, naming where and which bit lanes."""

from __future__ import annotations

from gpubench.verify.checks.memtest import MemtestReading, PatternResult, decide_memtest
from gpubench.verify.verdicts import Verdict

GOOD = (PatternResult("address", 1024, 0), PatternResult("walking_ones", 1024, 0))
RMA = "run the long level (--level long); if mismatches repeat, take the GPU out of service and RMA it."


def test_intact_memory() -> None:
    r = decide_memtest(MemtestReading("cuda:0", 3 << 30, GOOD, 2, 1.25, 10.0))
    assert (r.check, r.verdict, r.value, r.threshold, r.unit, r.remedy) == (
        "memtest", Verdict.PASS, 0, 0, "bad words", "")
    assert r.message == "2 patterns over 3.0 GiB read back intact in 1.2 s"
    assert r.readings["patterns"][0]["name"] == "address"


def test_one_bad_word_fails_naming_its_byte_and_bit_lanes() -> None:
    bad = (PatternResult("address", 1024, 0), PatternResult("random", 1024, 1, first_bad_word=5, bad_bits=0x10))
    r = decide_memtest(MemtestReading("cuda:0", 1 << 20, bad, 2, 1.0, 10.0))
    assert (r.verdict, r.value, r.remedy) == (Verdict.FAIL, 1, RMA)
    assert r.message == "random: 1 of 1024 words read back wrong (first at byte 20, bit lanes 0x00000010)"
    two = (PatternResult("a", 8, 2), PatternResult("b", 8, 3, first_bad_word=1, bad_bits=0xFFFFFFFF))
    both = decide_memtest(MemtestReading("cuda:0", 64, two, 2, 1.0, 10.0))
    assert both.value == 5 and both.remedy == RMA
    assert both.message == ("FAIL: a: 2 of 8 words read back wrong (first at byte 0, bit lanes 0x00000000); "
                            "FAIL: b: 3 of 8 words read back wrong (first at byte 4, bit lanes 0xffffffff)")


def test_a_time_bound_notes_what_was_covered() -> None:
    r = decide_memtest(MemtestReading("cuda:0", 1 << 20, GOOD, 3, 10.0, 10.0))
    assert r.verdict is Verdict.PASS
    assert r.message == ("2 patterns over 1.0 MiB read back intact in 10.0 s; time bound 10 s reached after 2 of "
                         "3 patterns")
    assert "time bound" not in decide_memtest(MemtestReading("cuda:0", 1 << 20, GOOD, 2, 1.0, 10.0)).message


def test_errors_skip_before_any_pattern_and_warn_after() -> None:
    none = decide_memtest(MemtestReading("cuda:0", 0, (), 4, 0.0, 10.0, error="CUDA out of memory"))
    assert (none.verdict, none.message) == (Verdict.SKIP, "memory test could not run: CUDA out of memory")
    assert none.remedy == "free device memory (see the contention check) or lower verify.memtest_fraction."
    late = decide_memtest(MemtestReading("cuda:0", 1 << 20, GOOD, 4, 1.0, 10.0, error="Xid 79"))
    assert (late.verdict, late.remedy) == (Verdict.WARN, "rerun; check dmesg for Xid errors.")
    assert late.message == "stopped early: Xid 79; time bound 10 s reached after 2 of 4 patterns"
    nothing = decide_memtest(MemtestReading("cuda:0", 0, (), 0, 0.0, 10.0))
    assert nothing.verdict is Verdict.PASS and nothing.message == "0 patterns over 0.0 MiB read back intact in 0.0 s"
