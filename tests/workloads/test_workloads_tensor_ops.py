"""What each tensor case moves and computes, that the prepared calls compute it, and the derived rates."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from gpubench.timing import Measurement, TimingPlan
from gpubench.workloads import tensor_ops
from gpubench.workloads.tensor_ops import Ceilings, WorkloadError


def test_byte_and_flop_counts() -> None:
    add = tensor_ops.elementwise_case("add", 1000, "f32")
    assert (add.bytes, add.flops, add.items) == (3 * 1000 * 4, 1000, 1000)
    relu = tensor_ops.elementwise_case("relu", 1000, "bf16")
    assert (relu.bytes, relu.flops) == (2 * 1000 * 2, 1000)
    assert tensor_ops.elementwise_case("sigmoid", 10, "f64").flops == 30
    mm = tensor_ops.matmul_case(64, "f32")
    assert (mm.flops, mm.bytes, mm.memory_bound) == (2 * 64**3, 3 * 64 * 64 * 4, False)
    zeros = tensor_ops.creation_case("zeros", 256, "f16")
    assert (zeros.bytes, zeros.flops) == (512, 0)
    assert tensor_ops.copy_case("d2d", 1 << 20).bytes == 2 << 20
    assert tensor_ops.copy_case("h2d-pinned", 1 << 20).bytes == 1 << 20
    assert tensor_ops.copy_case("h2d-pageable", 1).device_only is False


def test_groups_never_name_the_device() -> None:
    case = tensor_ops.matmul_case(1024, "f32")
    assert case.group == "matmul-f32-1024"
    assert "cpu" not in case.group and "cuda" not in case.group


@pytest.mark.parametrize("op", tensor_ops.ELEMENTWISE_OPS)
def test_prepared_elementwise_ops_compute_the_op(op: str) -> None:
    case = tensor_ops.elementwise_case(op, 4096, "f32")
    prepared = tensor_ops.prepare(case, "cpu", rotate=2)
    assert len(prepared.inputs) == 2
    args = prepared.inputs[1]
    prepared.fn(*args)
    *ins, out = args
    expected = {"add": lambda: ins[0] + ins[1], "mul": lambda: ins[0] * ins[1], "relu": lambda: torch.relu(ins[0]),
                "sigmoid": lambda: torch.sigmoid(ins[0]), "tanh": lambda: torch.tanh(ins[0])}[op]()
    torch.testing.assert_close(out, expected)


def test_prepared_matmul_creation_and_copy() -> None:
    mm = tensor_ops.prepare(tensor_ops.matmul_case(32, "f64"), "cpu")
    a, b, out = mm.inputs[0]
    mm.fn(a, b, out)
    torch.testing.assert_close(out, a @ b)
    randn = tensor_ops.prepare(tensor_ops.creation_case("randn", 100, "f32"), "cpu")
    assert randn.fn().shape == (100,)
    d2d = tensor_ops.prepare(tensor_ops.copy_case("d2d", 1000), "cpu")
    dst, src = d2d.inputs[0]
    d2d.fn(dst, src)
    assert torch.equal(dst, src)


def test_host_device_copies_are_refused_on_cpu_with_the_reason() -> None:
    assert "needs a CUDA device" in (tensor_ops.copy_skip_reason("h2d-pinned", "cpu") or "")
    assert tensor_ops.copy_skip_reason("d2d", "cpu") is None
    with pytest.raises(WorkloadError, match="needs a CUDA device"):
        tensor_ops.prepare(tensor_ops.copy_case("d2h-pageable", 100), "cpu")


class _FixedTimer:
    """Reports a fixed per-call time (a recorded reading) instead of measuring."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def measure(self, fn: Any, inputs: Any = ((),), **_: Any) -> Measurement:
        fn(*inputs[0])
        plan = TimingPlan("perf_counter", "time.perf_counter", "none (cpu)", "cpu", 1, 1, 0, False, 1, 0.0,
                          self.seconds, 0.0)
        return Measurement((self.seconds,), plan)


def test_derived_rates_and_ceiling_fractions() -> None:
    ceilings = Ceilings(matmul_n=64, copy_bytes=1 << 20, timer_factory=lambda dev: _FixedTimer(1e-3))
    matmul = ceilings.matmul("cpu")
    assert matmul.rate == pytest.approx(2 * 64**3 / 1e-3 / 1e12)
    assert ceilings.matmul("cpu") is matmul  # measured once per session
    copy = ceilings.copy("cpu")
    assert copy.rate == pytest.approx(2 * (1 << 20) / 1e-3 / 1e9)
    case = tensor_ops.elementwise_case("add", 1 << 20, "f32")
    figures = tensor_ops.derived(case, 2e-3, ceilings.for_case(case, "cpu"))
    assert figures["gbps"] == pytest.approx(12 * (1 << 20) / 2e-3 / 1e9)
    assert figures["copy_fraction"] == pytest.approx(figures["gbps"] / copy.rate)
    assert figures["matmul_fraction"] == pytest.approx(figures["tflops"] / matmul.rate)
    with pytest.raises(WorkloadError):
        tensor_ops.derived(case, 0.0, {})


def test_ceilings_are_the_best_rate_of_the_session_and_fractions_follow() -> None:
    ceilings = Ceilings(matmul_n=64, copy_bytes=1 << 20, timer_factory=lambda dev: _FixedTimer(1e-3))
    case = tensor_ops.matmul_case(64, "f32")
    info = {"device": "cpu", **tensor_ops.derived(case, 1e-3, ceilings.for_case(case, "cpu"))}
    assert info["matmul_fraction"] == pytest.approx(1.0)
    ceilings.observe(case, "cpu", 0.5e-3)  # a benchmark case ran twice as fast as the ceiling measurement
    ceilings.observe(tensor_ops.elementwise_case("add", 10, "f32"), "cpu", 1.0)  # not a ceiling: ignored
    assert ceilings.matmul("cpu").rate == pytest.approx(2 * 64**3 / 0.5e-3 / 1e12)
    ceilings.refresh(info)
    assert info["matmul_fraction"] == pytest.approx(0.5)
    assert info["ceilings"]["matmul"]["key"] == "matmul-f32"
