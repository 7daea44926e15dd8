"""The active tests run for real on cpu: memory patterns (with injected corruption), matmul correctness,
performance, and the perf history loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpubench.devices import DeviceSpec
from gpubench.verify.checks.compute import compute_dtypes, decide_compute, run_compute
from gpubench.verify.checks.memtest import _signed32, decide_memtest, memtest_bytes, run_memtest
from gpubench.verify.checks.perf import load_history, measure_perf
from gpubench.verify.plan import MEMTEST_PATTERNS
from gpubench.verify.probing import time_calls
from gpubench.verify.verdicts import Verdict

torch = pytest.importorskip("torch")


def test_memtest_intact_memory_passes() -> None:
    r = run_memtest("cpu", 1 << 18, seconds=30.0)
    assert [p.name for p in r.patterns] == list(MEMTEST_PATTERNS)
    assert r.mismatches == 0 and r.bytes_tested == 1 << 18
    assert r.patterns[2].words == 32 * (1 << 16)  # walking ones: 32 passes over every word
    assert decide_memtest(r).verdict is Verdict.PASS


@pytest.mark.parametrize("pattern", MEMTEST_PATTERNS)
def test_memtest_counts_injected_corruption(pattern: str) -> None:
    def corrupt(name: str, buf: Any) -> None:
        if name == pattern:
            buf[100] ^= 0x4  # one bit in one word
            buf[5000] ^= 0x100000

    r = run_memtest("cpu", 1 << 16, seconds=30.0, patterns=(pattern,), after_write=corrupt)
    (result,) = r.patterns
    passes = 32 if pattern.startswith("walking") else 1
    assert result.mismatches == 2 * passes
    assert result.first_bad_word == 100 and result.bad_bits == 0x100004
    decided = decide_memtest(r)
    assert decided.verdict is Verdict.FAIL and f"{pattern}: {2 * passes} of" in decided.message


def test_memtest_address_pattern_wraps_beyond_2_to_31() -> None:
    # words past index 2**31 must still hold a well-defined value: check the mapping, not 8 GiB of memory
    assert _signed32(1 << 31) == -(1 << 31) and _signed32((1 << 32) + 5) == 5


def test_memtest_time_bound_stops_early_but_runs_one_pattern() -> None:
    r = run_memtest("cpu", 1 << 16, seconds=0.0)
    assert len(r.patterns) == 1 and r.patterns_planned == len(MEMTEST_PATTERNS)
    assert "time bound" in decide_memtest(r).message


def test_memtest_nothing_to_test_and_bad_pattern() -> None:
    assert decide_memtest(run_memtest("cpu", 0, 1.0)).verdict is Verdict.SKIP
    with pytest.raises(ValueError, match="unknown memtest pattern"):
        run_memtest("cpu", 1024, 1.0, patterns=("zebra",))


def test_memtest_bytes_respects_cap() -> None:
    assert memtest_bytes(torch.device("cpu"), 0.5, cap_bytes=1 << 20) == 1 << 20


def test_compute_on_cpu_is_exact_enough() -> None:
    dtypes = compute_dtypes(DeviceSpec("cpu"), None)
    assert dtypes["tf32"] is not None and dtypes["f32"] is None
    r = run_compute("cpu", dtypes, n=64, repeats=2)
    ran = {d.dtype: d for d in r.results if d.skipped is None}
    assert set(ran) == {"f32", "bf16", "f16"}
    assert all(d.identical and d.nonfinite == 0 for d in ran.values())
    assert ran["f32"].rel_error is not None and ran["f32"].rel_error < 1e-6
    assert decide_compute(r).verdict is Verdict.PASS


def test_perf_on_cpu_measures_something() -> None:
    r = measure_perf("cpu", "cpu-test", "cpu", "f32", n=64, copy_bytes=1 << 20, repeats=2)
    assert (
        r.error is None
        and r.matmul_tflops
        and r.matmul_tflops > 0
        and r.bandwidth_gbps
        and r.bandwidth_gbps > 0
    )


def test_time_calls_cpu() -> None:
    times = time_calls(torch.device("cpu"), lambda: None, repeats=3)
    assert len(times) == 3 and all(t >= 0 for t in times)


def _run_file(path: Path, run_id: str, checks: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"schema": "gpubench.verify/1", "run_id": run_id, "checks": checks}))


def _perf_entry(uuid: str, tflops: float, verdict: str = "PASS") -> dict[str, Any]:
    measured = {
        "device": "cpu",
        "uuid": uuid,
        "name": "cpu",
        "dtype": "f32",
        "n": 512,
        "copy_bytes": 1 << 20,
        "matmul_tflops": tflops,
        "bandwidth_gbps": 5.0,
        "level": "quick",
        "run_id": None,
        "error": None,
    }
    return {"check": "perf_floor", "uuid": uuid, "verdict": verdict, "readings": {"measured": measured}}


def test_load_history_filters(tmp_path: Path) -> None:
    _run_file(tmp_path / "20260101T000000Z-a-1.json", "r1", [_perf_entry("cpu-a", 0.10)])
    _run_file(tmp_path / "20260102T000000Z-a-1.json", "r2", [_perf_entry("cpu-a", 0.01, verdict="FAIL")])
    _run_file(
        tmp_path / "20260103T000000Z-a-1.json", "r3", [_perf_entry("cpu-b", 0.50), _perf_entry("cpu-a", 0.12)]
    )
    (tmp_path / "20260104T000000Z-a-1.json").write_text("{not json")
    history = load_history(tmp_path, "cpu-a")
    assert [(h.run_id, h.matmul_tflops) for h in history] == [("r1", 0.10), ("r3", 0.12)]
    assert load_history(tmp_path, "cpu-a", limit=1)[0].run_id == "r3"
    assert load_history(tmp_path / "missing", "cpu-a") == []
