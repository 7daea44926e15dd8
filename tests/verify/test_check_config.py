"""The config check's decision over hand-made readings: both sides of every threshold."""

from __future__ import annotations

from dataclasses import replace

from gpubench.verify.checks.config import ConfigReading, decide_config
from gpubench.verify.verdicts import Verdict

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


CFG = ConfigReading("cuda:1", "./dl.config.sdn:3:11", ("./dl.config.sdn",), "f32", None, None)


def test_config_found_valid_passes() -> None:
    r = decide_config(CFG)
    assert r.verdict is P and "./dl.config.sdn" in r.message and "from ./dl.config.sdn:3:11" in r.message


def test_config_defaults_only_warns() -> None:
    r = decide_config(replace(CFG, files=()))
    assert r.verdict is W and "no dl.config.sdn found" in r.message and "--config" in r.remedy


def test_config_dtype_unusable_fails() -> None:
    r = decide_config(replace(CFG, dtype="bf16", dtype_problem="Tesla T4 has no native bfloat16"))
    assert r.verdict is F and "no native bfloat16" in r.message


def test_config_with_unusable_device_does_not_claim_dtype() -> None:
    r = decide_config(replace(CFG, device_problem="only 1 GPU"))
    assert r.verdict is P and "dtype f32 not checked: cuda:1 unusable" in r.message
    assert "dtype f32 usable" not in r.message
