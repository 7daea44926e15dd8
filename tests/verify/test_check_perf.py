"""The perf_floor check's decision over hand-made readings: both sides of every threshold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpubench.verify.checks.perf import PerfReading, decide_perf_floor
from gpubench.verify.verdicts import Verdict

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


PERF = PerfReading("cuda:1", "GPU-B", "NVIDIA H100", "f32", 8192, 1 << 30, 45.0, 2500.0)


def test_perf_nothing_to_compare_passes_with_note() -> None:
    r = decide_perf_floor(PERF)
    assert r.verdict is P and "no same-model sibling" in r.message


@pytest.mark.parametrize(("tflops", "verdict"), [(45.0, P), (36.0, P), (35.99, F)])
def test_perf_against_siblings(tflops: float, verdict: Verdict) -> None:
    sibling = replace(PERF, device="cuda:0", uuid="GPU-A", matmul_tflops=40.0)
    r = decide_perf_floor(replace(PERF, matmul_tflops=tflops), [sibling], [], floor_pct=10.0)
    assert r.verdict is verdict


def test_perf_bandwidth_against_history_median() -> None:
    history = [
        replace(PERF, bandwidth_gbps=b, run_id=f"r{i}") for i, b in enumerate((2400.0, 2500.0, 2600.0))
    ]
    assert decide_perf_floor(replace(PERF, bandwidth_gbps=2250.0), [], history, 10.0).verdict is P
    r = decide_perf_floor(replace(PERF, bandwidth_gbps=2249.0), [], history, 10.0)
    assert r.verdict is F and "bandwidth" in r.message and "this GPU's last 3 run(s)" in r.message


def test_perf_ignores_other_models_sizes_and_gpus() -> None:
    others = [
        replace(PERF, device="cuda:0", uuid="GPU-A", name="NVIDIA A100", matmul_tflops=400.0),
        replace(PERF, device="cuda:0", uuid="GPU-A", n=4096, matmul_tflops=400.0),
    ]
    other_history = [replace(PERF, uuid="GPU-Z", matmul_tflops=400.0)]
    assert decide_perf_floor(PERF, others, other_history).verdict is P


def test_perf_on_cpu_warns_instead_of_failing() -> None:
    cpu = replace(PERF, device="cpu", uuid="cpu-host", name="cpu", matmul_tflops=0.05)
    r = decide_perf_floor(cpu, [], [replace(cpu, matmul_tflops=0.1)], 10.0)
    assert r.verdict is W and r.unit == "GFLOP/s" and r.value == 50.0


def test_perf_error_skips() -> None:
    assert decide_perf_floor(replace(PERF, matmul_tflops=None, error="OOM")).verdict is S
