"""The under_load check's decision over hand-made readings (both sides of every threshold), and NVML's
clock event reason bits."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpubench.verify.checks.load import ClockEventReasons, LoadReading, decide_under_load
from gpubench.verify.pcie import PcieLink
from gpubench.verify.verdicts import Verdict

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


def test_clock_event_reason_bits_match_nvml_h() -> None:
    # nvml.h: GpuIdle 0x1, ApplicationsClocksSetting 0x2, SwPowerCap 0x4, HwSlowdown 0x8, SyncBoost 0x10,
    # SwThermalSlowdown 0x20, HwThermalSlowdown 0x40, HwPowerBrakeSlowdown 0x80, DisplayClockSetting 0x100
    pynvml = pytest.importorskip("pynvml")
    for bit, name in ClockEventReasons.NAMES.items():
        camel = "".join(p.capitalize() for p in name.split("_")).replace("Sw", "Sw").replace("Hw", "Hw")
        const = {"GpuIdle": "GpuIdle"}.get(camel, camel)
        value = getattr(pynvml, f"nvmlClocksEventReason{const}", None) or getattr(
            pynvml, f"nvmlClocksThrottleReason{const}", None
        )
        assert value == bit, name
    r = ClockEventReasons(0x4 | 0x40 | 0x1000)
    assert r.names() == ("sw_power_cap", "hw_thermal_slowdown", "unknown_0x1000")


LOAD = LoadReading(
    device="cuda:0",
    seconds=5.0,
    samples=50,
    reasons_seen=0,
    peak_temp_c=70,
    slowdown_temp_c=89,
    shutdown_temp_c=92,
    gpu_max_temp_c=87,
    link=PcieLink(5, 16, 5, 16, 5),
    replay_before=3,
    replay_after=3,
    xid_events=(),
    tflops=400.0,
)


@pytest.mark.parametrize(
    ("bits", "verdict"),
    [(0x0, P), (0x1, P), (0x4, W), (0x8, F), (0x20, F), (0x40, F), (0x80, F), (0x10 | 0x2, P)],
)
def test_under_load_clock_reasons(bits: int, verdict: Verdict) -> None:
    assert decide_under_load(replace(LOAD, reasons_seen=bits)).verdict is verdict


@pytest.mark.parametrize(("peak", "verdict"), [(81, P), (82, W), (86, W), (87, F)])
def test_under_load_temperature(peak: int, verdict: Verdict) -> None:
    assert decide_under_load(replace(LOAD, peak_temp_c=peak), temp_margin_c=5).verdict is verdict


def test_under_load_temperature_falls_back_to_slowdown_threshold() -> None:
    r = decide_under_load(replace(LOAD, gpu_max_temp_c=None, peak_temp_c=89))
    assert r.verdict is F and "limit 89" in r.message


@pytest.mark.parametrize(
    ("link", "fraction", "verdict"),
    [
        (PcieLink(5, 16, 5, 16, 5), 1.0, P),
        (PcieLink(5, 9, 5, 16, 5), 1.0, W),
        (PcieLink(5, 8, 5, 16, 5), 1.0, F),
        (PcieLink(5, 12, 5, 16, 5), 0.75, P),
        (PcieLink(5, 11, 5, 16, 5), 0.75, W),
        (PcieLink(4, 16, 5, 16, 5), 1.0, W),
        (PcieLink(4, 16, 4, 16, 5), 1.0, P),
        (PcieLink(), 1.0, P),
    ],
)
def test_under_load_pcie_link(link: PcieLink, fraction: float, verdict: Verdict) -> None:
    assert decide_under_load(replace(LOAD, link=link), pcie_min_width_fraction=fraction).verdict is verdict


def test_under_load_replays_xids_nan() -> None:
    assert decide_under_load(replace(LOAD, replay_after=4)).verdict is W
    r = decide_under_load(replace(LOAD, xid_events=(79, 48)))
    assert r.verdict is F and "79, 48" in r.message
    na = decide_under_load(replace(LOAD, xid_events=None))
    assert na.verdict is P and "XID events N/A" in na.message
    assert decide_under_load(replace(LOAD, nonfinite=True)).verdict is F


def test_under_load_cannot_run() -> None:
    assert decide_under_load(replace(LOAD, samples=0, error="CUDA out of memory")).verdict is S
