"""The compute decision's exact rows: an error exactly at the dtype's tolerance passes, above it fails."""

from __future__ import annotations

from dataclasses import replace

from gpubench.verify.checks.compute import ComputeReading, DtypeCompute, decide_compute
from gpubench.verify.verdicts import Verdict

F32 = DtypeCompute("f32", 256, 3, True, 1e-6, 1e-5, 0)
F16 = DtypeCompute("f16", 256, 3, True, 1e-3, 1e-2, 0)
REMEDY = "rerun; if it repeats, the GPU computes wrongly: check clocks/temperature (under_load) and RMA it."


def test_clean_results() -> None:
    r = decide_compute(ComputeReading("cuda:0", (F32, F16)))
    assert (r.check, r.device, r.verdict, r.remedy) == ("compute", "cuda:0", Verdict.PASS, "")
    assert r.message == "bit-identical repeats, errors vs float64: f32 1.0e-06, f16 1.0e-03"
    assert (r.value, r.threshold, r.unit) == (0.1, 1.0, "x tolerance")
    assert r.readings["results"][0]["dtype"] == "f32"


def test_an_error_exactly_at_the_tolerance_passes_above_it_fails() -> None:
    at = decide_compute(ComputeReading("cpu", (replace(F32, rel_error=1e-5),)))
    assert (at.verdict, at.value) == (Verdict.PASS, 1.0)
    above = decide_compute(ComputeReading("cpu", (replace(F32, rel_error=1.5e-5),)))
    assert (above.verdict, above.value) == (Verdict.FAIL, 1.5)
    assert above.message == "f32: error 1.50e-05 vs float64 above tolerance 1e-05"
    assert above.remedy == REMEDY


def test_nan_and_repeats_that_differ_fail_each_named() -> None:
    bad = replace(F16, nonfinite=4, identical=False, rel_error=None)
    r = decide_compute(ComputeReading("cuda:0", (F32, bad)))
    assert r.verdict is Verdict.FAIL and r.remedy == REMEDY
    assert r.message == ("FAIL: f16: 4 NaN/Inf in products of finite inputs; "
                         "FAIL: f16: 3 repeats of the same product are not bit-identical")
    assert r.value == 0.1  # the worst ratio among those with an error


def test_skipped_dtypes_are_noted_and_an_early_stop_warns() -> None:
    skipped = DtypeCompute("bf16", 256, 3, True, None, 1e-2, 0, skipped="needs sm80")
    r = decide_compute(ComputeReading("cuda:0", (F32, skipped), error="timeout"))
    assert (r.verdict, r.remedy) == (Verdict.WARN, "rerun the check.")
    assert r.message == "stopped early: timeout; bf16 skipped: needs sm80"
    only = decide_compute(ComputeReading("cuda:0", (F32, skipped)))
    assert only.message == "bit-identical repeats, errors vs float64: f32 1.0e-06; bf16 skipped: needs sm80"


def test_nothing_ran_skips_naming_why() -> None:
    skipped = DtypeCompute("bf16", 256, 3, True, None, 1e-2, 0, skipped="needs sm80")
    r = decide_compute(ComputeReading("cuda:0", (skipped, replace(skipped, dtype="f8", skipped="no f8"))))
    assert (r.verdict, r.value) == (Verdict.SKIP, None)
    assert r.message == "compute test could not run: bf16: needs sm80; f8: no f8"
    err = decide_compute(ComputeReading("cuda:0", (skipped,), error="CUDA unavailable"))
    assert err.message == "compute test could not run: CUDA unavailable"
    empty = decide_compute(ComputeReading("cuda:0", ()))
    assert empty.message == "compute test could not run: no dtype ran"


def test_every_row_names_its_check_device_and_remedy() -> None:
    skipped = DtypeCompute("bf16", 256, 3, True, None, 1e-2, 0, skipped="needs sm80")
    r = decide_compute(ComputeReading("cuda:2", (skipped,)))
    assert (r.check, r.device, r.threshold, r.unit) == ("compute", "cuda:2", 1.0, "x tolerance")
    nan = decide_compute(ComputeReading("cuda:2", (replace(F32, nonfinite=1),)))
    assert (nan.check, nan.device, nan.remedy) == ("compute", "cuda:2", REMEDY)
    assert decide_compute(ComputeReading("cpu", (replace(F32, rel_error=1.23456e-6),))).value == 0.1235
