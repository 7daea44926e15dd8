"""The under_load decision's exact rows: every threshold at its value, and the text a person reads."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpubench.verify.checks.load import ClockEventReasons, LoadReading, decide_under_load
from gpubench.verify.pcie import PcieLink
from gpubench.verify.probing import LOST_REMEDY
from gpubench.verify.verdicts import Verdict

COOLING = ("check cooling (fans, airflow, dust, room temperature) and the power supply; "
           "see nvidia-smi -q -d PERFORMANCE.")

LOAD = LoadReading(
    device="cuda:0", seconds=5.0, samples=50, reasons_seen=0, peak_temp_c=70, slowdown_temp_c=89,
    shutdown_temp_c=92, gpu_max_temp_c=87, link=PcieLink(5, 16, 5, 16, 5), replay_before=3, replay_after=3,
    xid_events=(), tflops=400.0,
)


def test_a_clean_burn_reads_as_one_line() -> None:
    r = decide_under_load(LOAD)
    assert r.verdict is Verdict.PASS and r.remedy == ""
    assert r.message == ("5.0 s burn, 50 samples: no slowdown events, peak 70 degC, PCIe gen 5 x16, "
                         "400.0 TFLOP/s")
    assert (r.check, r.device, r.unit, r.value, r.threshold) == ("under_load", "cuda:0", "degC", 70, 87)
    assert r.readings["link"]["width"] == 16
    bare = decide_under_load(replace(LOAD, peak_temp_c=None, link=PcieLink(), tflops=None, xid_events=None))
    assert bare.message == ("5.0 s burn, 50 samples: no slowdown events, peak N/A degC, PCIe gen N/A xN/A; "
                            "temperature N/A; XID events N/A")


def test_the_slowdown_threshold_is_the_limit_without_a_max_operating_temperature() -> None:
    r = decide_under_load(replace(LOAD, gpu_max_temp_c=None, peak_temp_c=89))
    assert r.verdict is Verdict.FAIL and r.threshold == 89
    assert r.message == "peak temperature 89 degC reached the limit 89 degC" and r.remedy == COOLING
    assert decide_under_load(replace(LOAD, gpu_max_temp_c=None, slowdown_temp_c=None, peak_temp_c=120)).verdict \
        is Verdict.PASS


@pytest.mark.parametrize(("peak", "verdict"), [(81.9, Verdict.PASS), (82, Verdict.WARN), (86.9, Verdict.WARN),
                                               (87, Verdict.FAIL)])
def test_the_temperature_margin_is_inclusive_at_both_ends(peak: float, verdict: Verdict) -> None:
    r = decide_under_load(replace(LOAD, peak_temp_c=peak), temp_margin_c=5.0)  # type: ignore[arg-type]
    assert r.verdict is verdict
    if verdict is Verdict.WARN:
        assert r.message == f"peak temperature {peak} degC within 5 degC of the limit 87 degC"


def test_the_default_margin_is_five_degrees() -> None:
    assert decide_under_load(replace(LOAD, peak_temp_c=82)).verdict is Verdict.WARN
    assert decide_under_load(replace(LOAD, peak_temp_c=81)).verdict is Verdict.PASS


def test_half_width_fails_and_less_than_full_width_warns_by_default() -> None:
    half = decide_under_load(replace(LOAD, link=PcieLink(5, 8, 5, 16, 5)))
    assert half.verdict is Verdict.FAIL
    assert half.message == "PCIe link x8 under load, the link allows x16"
    assert half.remedy == ("reseat the GPU or move it to a full-width slot; check the riser and BIOS lane "
                           "settings.")
    narrow = decide_under_load(replace(LOAD, link=PcieLink(5, 9, 5, 16, 5)))
    assert (narrow.verdict, narrow.message) == (Verdict.WARN, "PCIe link x9 under load, below x16")
    assert narrow.remedy == "reseat the GPU; check the slot's lane wiring in the board manual."
    # with a fraction: x12 of x16 is 0.75, exactly the floor: no WARN; x11 is below it
    assert decide_under_load(replace(LOAD, link=PcieLink(5, 12, 5, 16, 5)), pcie_min_width_fraction=0.75).verdict \
        is Verdict.PASS
    assert decide_under_load(replace(LOAD, link=PcieLink(5, 11, 5, 16, 5)), pcie_min_width_fraction=0.75).verdict \
        is Verdict.WARN
    assert decide_under_load(replace(LOAD, link=PcieLink(5, 16, 5, 0, 5))).verdict is Verdict.PASS  # max unknown


def test_generation_and_slot_limits() -> None:
    down = decide_under_load(replace(LOAD, link=PcieLink(4, 16, 5, 16, 5)))
    assert (down.verdict, down.message) == (Verdict.WARN, "PCIe link gen 4 under load, the link allows gen 5")
    assert down.remedy == "reseat the GPU; check BIOS PCIe speed settings and the riser."
    slot = decide_under_load(replace(LOAD, link=PcieLink(4, 16, 4, 16, 5)))
    assert slot.verdict is Verdict.PASS
    assert slot.message.endswith("PCIe gen 4 x16, 400.0 TFLOP/s; slot limits the link to gen 4 (GPU supports gen 5)")


def test_replays_warn_only_when_they_grow() -> None:
    r = decide_under_load(replace(LOAD, replay_before=3, replay_after=5))
    assert (r.verdict, r.message) == (Verdict.WARN, "2 PCIe replays during the burn (link errors)")
    assert r.remedy == "reseat the GPU and its riser; check `nvidia-smi -q -d PCIE` over time."
    assert decide_under_load(replace(LOAD, replay_before=5, replay_after=3)).verdict is Verdict.PASS
    assert decide_under_load(replace(LOAD, replay_before=None, replay_after=9)).verdict is Verdict.PASS


def test_clock_reasons_name_their_sample_counts() -> None:
    bits = ClockEventReasons.HW_SLOWDOWN | ClockEventReasons.SW_POWER_CAP
    r = decide_under_load(replace(LOAD, reasons_seen=bits, reason_samples={"hw_slowdown": 7, "sw_power_cap": 2}))
    assert r.verdict is Verdict.FAIL
    assert r.message == ("FAIL: clocks held back under load: hw_slowdown in 7/50 samples; "
                         "WARN: software power cap active in 2/50 samples (board at its power limit)")
    assert r.remedy == (COOLING + " normal at full load if brief; else check the power limit: "
                        "nvidia-smi -q -d POWER.")
    unknown = decide_under_load(replace(LOAD, reasons_seen=int(ClockEventReasons.SW_THERMAL_SLOWDOWN)))
    assert unknown.message == "clocks held back under load: sw_thermal_slowdown in ?/50 samples"
    cap = decide_under_load(replace(LOAD, reasons_seen=int(ClockEventReasons.SW_POWER_CAP)))
    assert cap.message == "software power cap active in ?/50 samples (board at its power limit)"
    assert decide_under_load(replace(LOAD, reasons_seen=None)).verdict is Verdict.PASS


def test_xid_nan_lost_and_errors() -> None:
    xid = decide_under_load(replace(LOAD, xid_events=(79, 48)))
    assert (xid.verdict, xid.message) == (Verdict.FAIL, "XID event(s) during the burn: 79, 48")
    assert xid.remedy == "look the XID up in NVIDIA's XID catalogue; check dmesg; reset the GPU."
    nan = decide_under_load(replace(LOAD, nonfinite=True))
    assert (nan.verdict, nan.message, nan.remedy) == (
        Verdict.FAIL, "the burn produced NaN/Inf from finite inputs", "the GPU computes wrongly: RMA it.")
    lost = decide_under_load(replace(LOAD, lost="GpuIsLost", samples=0, nvml_error="GpuIsLost"))
    assert lost.verdict is Verdict.FAIL
    assert lost.message == "NVML lost the GPU during the burn: GpuIsLost; telemetry N/A: GpuIsLost"
    assert lost.remedy == LOST_REMEDY
    early = decide_under_load(replace(LOAD, error="OOM"))
    assert (early.verdict, early.message, early.remedy) == (
        Verdict.WARN, "burn stopped early: OOM", "rerun the check.")


def test_what_skips() -> None:
    never = decide_under_load(replace(LOAD, error="no CUDA", samples=0))
    assert (never.verdict, never.message) == (Verdict.SKIP, "burn could not run: no CUDA")
    blind = decide_under_load(replace(LOAD, samples=0, nvml_error="NoPermission"))
    assert (blind.verdict, blind.message) == (Verdict.SKIP,
                                              "burn ran but telemetry could not be read: NoPermission")
    assert blind.value == 70 and blind.unit == "degC"


def test_reason_names_and_repr() -> None:
    assert repr(ClockEventReasons(0)) == "ClockEventReasons(0x0: none)"
    assert repr(ClockEventReasons(0x44)) == "ClockEventReasons(0x44: sw_power_cap, hw_thermal_slowdown)"
