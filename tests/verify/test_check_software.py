"""The software check's decision over hand-made readings: both sides of every threshold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpubench.verify.checks.software import SoftwareStack, decide_software
from gpubench.verify.verdicts import Verdict

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


SW = SoftwareStack("2.4.0", None, "12.4", None, 90100, "550.54.15", "12.4")


@pytest.mark.parametrize(
    ("driver_cuda", "verdict"),
    [("11.8", F), ("12.2", W), ("12.4", P), ("12.6", P), ("13.0", P)],
)
def test_software_driver_against_build(driver_cuda: str, verdict: Verdict) -> None:
    assert decide_software(replace(SW, driver_cuda=driver_cuda), "cuda:0").verdict is verdict


def test_software_without_torch_fails_everywhere() -> None:
    stack = SoftwareStack(None, "ModuleNotFoundError: torch", None, None, None, None, None)
    for device in ("cpu", "cuda:0"):
        r = decide_software(stack, device)
        assert r.verdict is F and "ModuleNotFoundError" in r.message


def test_software_cpu_only_build() -> None:
    stack = replace(SW, cuda_build=None, driver_version=None, driver_cuda=None)
    assert decide_software(stack, "cpu").verdict is P
    r = decide_software(stack, "cuda:1")
    assert r.verdict is F and "no CUDA support" in r.message


def test_software_no_driver_names_reason() -> None:
    stack = replace(SW, driver_version=None, driver_cuda=None, driver_error="NVML not available: no library")
    r = decide_software(stack, "cuda:1")
    assert r.verdict is F and "NVML not available: no library" in r.message and "nvidia-smi" in r.remedy
