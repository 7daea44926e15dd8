"""The memory_health decision's exact rows: the remap limit at exactly its value, and every message."""

from __future__ import annotations

from dataclasses import replace

from gpubench.verify.checks.memory import MemoryHealth, decide_memory_health
from gpubench.verify.probing import LOST_REMEDY
from gpubench.verify.verdicts import Verdict

HEALTHY = MemoryHealth(True, True, 0, False, 0, 0, False, False, 0)
RESET = "drain the GPU and reset it (nvidia-smi -r -i <index>) or reboot; if it persists, RMA the GPU."
RMA = "take the GPU out of service and RMA it."


def test_a_healthy_gpu_reads_as_one_line() -> None:
    r = decide_memory_health(HEALTHY, "cuda:0")
    assert (r.check, r.device, r.verdict, r.remedy) == ("memory_health", "cuda:0", Verdict.PASS, "")
    assert r.message == "no pending retirements or remaps, no uncorrected errors"
    assert r.value == "ECC on, uncorrected 0, remaps unc 0"
    assert r.threshold == "pending 0, failure no, uncorrectable remaps < 512, uncorrected ECC 0"
    assert r.readings["now"]["ecc_current"] is True and r.readings["baseline"] is None


def test_the_remap_limit_fails_at_exactly_its_value() -> None:
    assert decide_memory_health(replace(HEALTHY, remapped_uncorrectable=9), "cuda:0", 10).verdict is Verdict.PASS
    r = decide_memory_health(replace(HEALTHY, remapped_uncorrectable=10), "cuda:0", 10)
    assert r.verdict is Verdict.FAIL
    assert (r.message, r.remedy) == ("10 rows remapped for uncorrectable errors (limit 10)", RMA)
    assert r.threshold == "pending 0, failure no, uncorrectable remaps < 10, uncorrected ECC 0"
    assert decide_memory_health(replace(HEALTHY, remapped_uncorrectable=511), "cuda:0").verdict is Verdict.PASS
    assert decide_memory_health(replace(HEALTHY, remapped_uncorrectable=512), "cuda:0").verdict is Verdict.FAIL


def test_every_failure_is_named_with_its_remedy_once() -> None:
    bad = MemoryHealth(True, True, 2, True, 0, 0, True, True, 4)
    r = decide_memory_health(bad, "cuda:3", baseline=replace(HEALTHY, volatile_uncorrected=2))
    assert r.verdict is Verdict.FAIL
    assert r.message == (
        "FAIL: page retirement pending (takes effect at the next GPU reset); "
        "FAIL: row remapping pending (takes effect at the next GPU reset); "
        "FAIL: row remapping failed: a memory bank ran out of spare rows; "
        "FAIL: 2 uncorrected ECC error(s) since the driver loaded, none during this run; "
        "FAIL: NVML asks for a recovery action: drain peer-to-peer and reset"
    )
    assert r.remedy == (RESET + " " + RMA + " perform the drain peer-to-peer and reset (see NVIDIA's GPU memory "
                        "error management guide).")


def test_uncorrected_errors_with_and_without_a_baseline() -> None:
    alone = decide_memory_health(replace(HEALTHY, volatile_uncorrected=1), "cuda:0")
    assert alone.message == "1 uncorrected ECC error(s) since the driver loaded" and alone.remedy == RESET
    grew = decide_memory_health(replace(HEALTHY, volatile_uncorrected=3), "cuda:0",
                                baseline=replace(HEALTHY, volatile_uncorrected=1))
    assert grew.message == "3 uncorrected ECC error(s) since the driver loaded, 2 during this run"
    blind = decide_memory_health(replace(HEALTHY, volatile_uncorrected=3), "cuda:0",
                                 baseline=replace(HEALTHY, volatile_uncorrected=None))
    assert blind.message == "3 uncorrected ECC error(s) since the driver loaded"


def test_recovery_actions_by_number() -> None:
    unknown = decide_memory_health(replace(HEALTHY, recovery_action=42), "cuda:0")
    assert unknown.message == "NVML asks for a recovery action: action 42"
    assert unknown.remedy == "perform the action 42 (see NVIDIA's GPU memory error management guide)."
    assert decide_memory_health(replace(HEALTHY, recovery_action=None), "cuda:0").verdict is Verdict.PASS


def test_ecc_off_and_pending_changes_warn() -> None:
    off = decide_memory_health(replace(HEALTHY, ecc_current=False, ecc_pending=False), "cuda:0")
    assert (off.verdict, off.message) == (Verdict.WARN, "ECC is disabled: memory errors go undetected")
    assert off.remedy == "enable ECC: nvidia-smi -e 1 -i <index>, then reset the GPU."
    assert off.value == "ECC off, uncorrected 0, remaps unc 0"
    on_next = decide_memory_health(replace(HEALTHY, ecc_current=False, ecc_pending=True), "cuda:0")
    assert on_next.message == ("WARN: ECC is disabled: memory errors go undetected; "
                               "WARN: ECC mode change pending (on after the next reset)")
    off_next = decide_memory_health(replace(HEALTHY, ecc_pending=False), "cuda:0")
    assert off_next.message == "ECC mode change pending (off after the next reset)"
    assert off_next.remedy == "reset the GPU or reboot to apply the pending ECC mode."
    assert decide_memory_health(replace(HEALTHY, ecc_pending=None), "cuda:0").verdict is Verdict.PASS


def test_what_cannot_be_read_is_noted_or_skipped() -> None:
    partial = decide_memory_health(MemoryHealth(ecc_current=True, volatile_uncorrected=0), "cuda:0")
    assert partial.verdict is Verdict.PASS
    assert partial.message == (
        "no pending retirements or remaps, no uncorrected errors; N/A: ecc_pending, retired_pages_pending, "
        "remapped_correctable, remapped_uncorrectable, remap_pending, remap_failure, recovery_action"
    )
    assert partial.value == "ECC on, uncorrected 0, remaps unc N/A"
    na = decide_memory_health(MemoryHealth(ecc_current=None), "cuda:0")
    assert na.verdict is Verdict.SKIP and na.message.startswith(
        "this GPU reports no ECC, retired-page or row-remap state (consumer GPUs do not): ")
    assert decide_memory_health(MemoryHealth(nvml_error=None), "cuda:0").value is None
    denied = decide_memory_health(MemoryHealth(nvml_error="NoPermission"), "cuda:0")
    assert (denied.verdict, denied.message) == (
        Verdict.SKIP, "NVML cannot read this GPU's memory error state: NoPermission")
    lost = decide_memory_health(MemoryHealth(nvml_error="GPU is lost (GpuIsLost)"), "cuda:0")
    assert (lost.verdict, lost.remedy) == (Verdict.FAIL, LOST_REMEDY)
    assert lost.message == "NVML lost the GPU: GPU is lost (GpuIsLost)"
    assert MemoryHealth().all_na() and MemoryHealth(nvml_error="x").all_na()
    assert not MemoryHealth(remap_failure=False).all_na()


def test_one_new_error_during_the_run_is_counted() -> None:
    r = decide_memory_health(replace(HEALTHY, volatile_uncorrected=3), "cuda:0",
                             baseline=replace(HEALTHY, volatile_uncorrected=2))
    assert r.message == "3 uncorrected ECC error(s) since the driver loaded, 1 during this run"


def test_each_pending_state_alone_has_the_reset_remedy() -> None:
    for change in ({"retired_pages_pending": True}, {"remap_pending": True}):
        r = decide_memory_health(replace(HEALTHY, **change), "cuda:5")  # type: ignore[arg-type]
        assert (r.check, r.device, r.remedy) == ("memory_health", "cuda:5", RESET)


def test_values_not_read_show_as_na() -> None:
    r = decide_memory_health(MemoryHealth(ecc_pending=True, remap_failure=False), "cuda:0")
    assert r.value == "ECC N/A, uncorrected N/A, remaps unc N/A"
    for health in (MemoryHealth(), MemoryHealth(nvml_error="NoPermission"), MemoryHealth(nvml_error="GpuIsLost")):
        row = decide_memory_health(health, "cuda:7")
        assert (row.check, row.device) == ("memory_health", "cuda:7")
        assert row.threshold == "pending 0, failure no, uncorrectable remaps < 512, uncorrected ECC 0"
