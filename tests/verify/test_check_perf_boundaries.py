"""The perf_floor decision's exact rows: a GPU exactly at the floor passes, just under it fails; who counts
as a sibling and as history."""

from __future__ import annotations

from dataclasses import replace

from gpubench.verify.checks.perf import PerfReading, comparable, decide_perf_floor
from gpubench.verify.verdicts import Verdict

ME = PerfReading("cuda:0", "GPU-a", "H100", "bf16", 8192, 1 << 28, 90.0, 3000.0)
REMEDY = ("check under_load and contention (clocks, power cap, other processes); rerun; a GPU that stays slow "
          "against its siblings needs service.")


def _sib(uuid: str, tflops: float | None, gbps: float | None = 3000.0) -> PerfReading:
    return replace(ME, device="cuda:1", uuid=uuid, matmul_tflops=tflops, bandwidth_gbps=gbps)


def test_exactly_at_the_floor_passes_just_under_fails() -> None:
    siblings = [_sib("GPU-b", 100.0), _sib("GPU-c", 100.0)]
    at = decide_perf_floor(ME, siblings, floor_pct=10.0)  # 90 is exactly 10 % under 100
    assert at.verdict is Verdict.PASS
    assert at.message == "matmul bf16 n=8192: 90 TFLOP/s, memory 3000 GB/s"
    assert at.threshold == "matmul_tflops >= 90 TFLOP/s; bandwidth_gbps >= 2700 GB/s"
    assert (at.check, at.value, at.unit) == ("perf_floor", 90.0, "TFLOP/s")
    under = decide_perf_floor(replace(ME, matmul_tflops=89.9), siblings, floor_pct=10.0)
    assert under.verdict is Verdict.FAIL
    assert under.message == ("matmul 89.9 TFLOP/s is 10% below the median 100 TFLOP/s of same-model siblings "
                             "in this run (floor 10%)")
    assert under.remedy == REMEDY


def test_the_default_floor_is_ten_percent() -> None:
    siblings = [_sib("GPU-b", 100.0)]
    assert decide_perf_floor(ME, siblings).verdict is Verdict.PASS
    assert decide_perf_floor(replace(ME, matmul_tflops=89.0), siblings).verdict is Verdict.FAIL


def test_bandwidth_and_history_are_judged_too() -> None:
    history = [replace(ME, matmul_tflops=90.0, bandwidth_gbps=4000.0, run_id=f"r{i}") for i in range(3)]
    r = decide_perf_floor(ME, history=history)
    assert r.verdict is Verdict.FAIL
    assert r.message == ("bandwidth 3000 GB/s is 25% below the median 4000 GB/s of this GPU's last 3 run(s) "
                         "(floor 10%)")
    assert r.threshold == "matmul_tflops >= 81 TFLOP/s; bandwidth_gbps >= 3600 GB/s"
    both = decide_perf_floor(replace(ME, matmul_tflops=50.0), [_sib("GPU-b", 100.0)], history)
    assert both.message.count("FAIL: ") == 3 and both.remedy == REMEDY


def test_who_is_compared() -> None:
    other_model = replace(_sib("GPU-b", 1000.0), name="A100")
    myself = _sib("GPU-a", 1000.0)  # the same UUID: not a sibling
    no_result = _sib("GPU-c", None)
    r = decide_perf_floor(ME, [other_model, myself, no_result])
    assert r.verdict is Verdict.PASS and r.threshold is None
    assert r.message == ("matmul bf16 n=8192: 90 TFLOP/s, memory 3000 GB/s; no same-model sibling or stored "
                         "history to compare with yet (this run becomes the history)")
    someone_elses_history = decide_perf_floor(ME, history=[_sib("GPU-b", 1000.0)])
    assert someone_elses_history.threshold is None
    no_bandwidth = decide_perf_floor(replace(ME, bandwidth_gbps=None), [_sib("GPU-b", 100.0, None)])
    assert no_bandwidth.threshold == "matmul_tflops >= 90 TFLOP/s"
    assert no_bandwidth.message == "matmul bf16 n=8192: 90 TFLOP/s"
    sib_without_bandwidth = decide_perf_floor(ME, [_sib("GPU-b", 100.0, None)])
    assert sib_without_bandwidth.threshold == "matmul_tflops >= 90 TFLOP/s"


def test_comparable_needs_model_dtype_and_both_sizes() -> None:
    assert comparable(ME, _sib("GPU-b", 1.0))
    for change in ({"name": "A100"}, {"dtype": "f32"}, {"n": 4096}, {"copy_bytes": 1}):
        assert not comparable(ME, replace(ME, **change))  # type: ignore[arg-type]


def test_cpu_shortfalls_warn_in_gflops() -> None:
    cpu = replace(ME, device="cpu", uuid="cpu-host", matmul_tflops=0.5)
    r = decide_perf_floor(cpu, [replace(cpu, uuid="cpu-other", matmul_tflops=1.0)])
    assert r.verdict is Verdict.WARN and (r.value, r.unit) == (500.0, "GFLOP/s")


def test_what_skips() -> None:
    err = decide_perf_floor(replace(ME, error="CUDA OOM"))
    assert (err.verdict, err.message, err.value) == (Verdict.SKIP, "performance could not be measured: CUDA OOM",
                                                     90.0)
    none = decide_perf_floor(replace(ME, matmul_tflops=None))
    assert (none.verdict, none.message, none.value) == (Verdict.SKIP,
                                                        "performance could not be measured: no result", None)
    assert none.readings["measured"]["uuid"] == "GPU-a" and none.readings["siblings"] == []
