"""Verdicts, the check registry, and the rows a check leaves when it cannot run."""

from __future__ import annotations

import json

import pytest

from gpubench.verify.checks import CHECK_NAMES, CHECKS, check_spec
from gpubench.verify.checks.memtest import MemtestReading, PatternResult, decide_memtest
from gpubench.verify.verdicts import Verdict, device_unusable, worst

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


def test_worst_and_registry() -> None:
    assert worst([P, S, W]) is W and worst([P, F, W]) is F and worst([]) is S
    assert CHECK_NAMES[0] == "config" and len(set(CHECK_NAMES)) == len(CHECKS)
    with pytest.raises(ValueError, match="unknown check 'nope'"):
        check_spec("nope")


def test_result_is_json_ready() -> None:
    r = decide_memtest(MemtestReading("cpu", 4096, (PatternResult("address", 1024, 0),), 1, 0.1, 3.0))
    text = json.dumps(r.as_dict(), allow_nan=False)
    assert '"verdict": "PASS"' in text and '"check": "memtest"' in text


def test_unusable_device_rows_name_the_reason() -> None:
    reason = "no usable NVIDIA driver or GPU: PyTorch 2.4 (CUDA 12.4) found no GPU (NVML not available: x)."
    r = device_unusable("memtest", "cuda:1", reason)
    assert r.verdict is S and r.message == "cuda:1 unusable: no usable NVIDIA driver or GPU (see inventory)"
    assert r.readings["unusable_reason"] == reason
