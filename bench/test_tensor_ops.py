"""Tensor operations and copies: GB/s, TFLOP/s and the fractions of this session's ceilings."""

from __future__ import annotations

from typing import Any

import pytest

from gpubench.workloads import cases, tensor_ops


def test_elementwise(benchmark: Any, device: Any, elementwise_case: Any, bench_settings: Any, ceilings: Any,
                     skip_unsupported_dtype: Any) -> None:
    skip_unsupported_dtype(elementwise_case.dtype, device.name)
    figures = cases.run_op(benchmark, device.name, elementwise_case, bench_settings, ceilings)
    if not benchmark.disabled:  # a timed run without figures fails in run_op
        assert figures["gbps"] > 0 and figures["copy_fraction"] > 0


def test_matmul(benchmark: Any, device: Any, matmul_case: Any, bench_settings: Any, ceilings: Any,
                skip_unsupported_dtype: Any) -> None:
    skip_unsupported_dtype(matmul_case.dtype, device.name)
    figures = cases.run_op(benchmark, device.name, matmul_case, bench_settings, ceilings)
    if not benchmark.disabled:
        assert figures["tflops"] > 0 and figures["matmul_fraction"] > 0


def test_copy(benchmark: Any, device: Any, copy_case: Any, bench_settings: Any, ceilings: Any) -> None:
    reason = tensor_ops.copy_skip_reason(copy_case.workload.removeprefix("copy-"), device.name)
    if reason:
        pytest.skip(reason)
    figures = cases.run_op(benchmark, device.name, copy_case, bench_settings, ceilings)
    if not benchmark.disabled:
        assert figures["gbps"] > 0
