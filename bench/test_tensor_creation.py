"""Tensor creation: zeros, ones, randn at the configured sizes and dtypes."""

from __future__ import annotations

from typing import Any

from gpubench.workloads import cases


def test_creation(benchmark: Any, device: Any, creation_case: Any, bench_settings: Any, ceilings: Any,
                  skip_unsupported_dtype: Any) -> None:
    skip_unsupported_dtype(creation_case.dtype, device.name)
    figures = cases.run_op(benchmark, device.name, creation_case, bench_settings, ceilings)
    if not benchmark.disabled:  # a timed run without figures fails in run_op
        assert figures["gbps"] > 0
