"""``bench.cpu_threads`` and the XOR case's single thread: set for the case, recorded, restored after."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from gpubench.workloads import cases


@pytest.fixture
def benchmark_stub() -> SimpleNamespace:
    return SimpleNamespace(extra_info={})


def test_cpu_case_runs_with_the_configured_threads_and_restores_them(benchmark_stub: SimpleNamespace) -> None:
    before = torch.get_num_threads()
    with cases.cpu_threads(benchmark_stub, "cpu", 1):
        assert torch.get_num_threads() == 1
    assert benchmark_stub.extra_info["cpu_threads"] == 1
    assert torch.get_num_threads() == before


def test_zero_keeps_torchs_choice_and_records_it(benchmark_stub: SimpleNamespace) -> None:
    before = torch.get_num_threads()
    with cases.cpu_threads(benchmark_stub, "cpu", 0):
        assert torch.get_num_threads() == before
    assert benchmark_stub.extra_info["cpu_threads"] == before


def test_threads_are_restored_when_the_case_fails(benchmark_stub: SimpleNamespace) -> None:
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"), cases.cpu_threads(benchmark_stub, "cpu", 1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_gpu_cases_are_left_alone(benchmark_stub: SimpleNamespace) -> None:
    before = torch.get_num_threads()
    with cases.cpu_threads(benchmark_stub, "cuda:1", 1):
        assert torch.get_num_threads() == before
    assert "cpu_threads" not in benchmark_stub.extra_info
