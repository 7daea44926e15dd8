"""The real NVML telemetry (NvmlSource, Sampler) on every simulated machine profile.

NVML is simulated below the real nvidia-ml-py bindings (``gpubench.testing.nvml_sim``); the machine's
clock is manual and is also the sampler's clock, so every reading, NVML sample timestamp and summary is
exact. The sampler runs without its thread here (``background=False``) and each test steps it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpubench.telemetry import NVML_METRICS, Clock, NvmlSource, Sampler, decode_clock_event_reasons
from gpubench.testing.nvml_sim import (
    SIMULATED_FUNCTIONS,
    Gpu,
    Profile,
    SimClock,
    SimulatedMachine,
    available_profiles,
    load_profile,
    simulated_nvml,
)
from gpubench.testing.nvml_sim.readings import SAMPLE_PERIOD_US

PROFILES = available_profiles()
INTERVAL = 0.25  # seconds between the sampler's readings (the default interval)
START_WALL = 1_700_000_000.0
# what a busy GPU shows where the (idle) recorded profile can show it at all
BUSY_UTIL = {"gpu": 87, "memory": 41}
BUSY_GPM = {
    "NVML_GPM_METRIC_GRAPHICS_UTIL": 93.0,
    "NVML_GPM_METRIC_SM_UTIL": 91.5,
    "NVML_GPM_METRIC_SM_OCCUPANCY": 38.25,
    "NVML_GPM_METRIC_ANY_TENSOR_UTIL": 72.0,
    "NVML_GPM_METRIC_DRAM_BW_UTIL": 55.5,
}
GPM_COLUMNS = {
    "sm_active_pct": "NVML_GPM_METRIC_SM_UTIL",
    "sm_occupancy_pct": "NVML_GPM_METRIC_SM_OCCUPANCY",
    "tensor_active_pct": "NVML_GPM_METRIC_ANY_TENSOR_UTIL",
    "dram_bw_util_pct": "NVML_GPM_METRIC_DRAM_BW_UTIL",
}


def busy(name: str, **changes: Any) -> dict[str, Any]:
    """A shipped profile with its GPUs busy (utilization, GPM metrics) and ``changes`` at the top level."""
    data = load_profile(name).to_dict()
    for gpu in data["gpus"]:
        if gpu["utilization_pct"] is not None:
            gpu["utilization_pct"] = dict(BUSY_UTIL)
        if gpu["gpm"] is not None and gpu["gpm"]["supported"]:
            gpu["gpm"]["metrics"] = dict(BUSY_GPM)
    data.update(changes)
    return data


def sim_clock(machine: SimulatedMachine) -> Clock:
    """The simulated machine's clock as the telemetry clock: perf = seconds since it started."""
    return Clock(perf=machine.clock.elapsed, wall=lambda: machine.clock.wall_us() / 1e6, name="simulated")


def cuda0(profile: Profile) -> tuple[int, Gpu]:
    """The GPU PyTorch calls cuda:0, and its NVML index (they differ on dgx-8gpu-order)."""
    uuid = profile.cuda_uuids()[0]
    index = next(i for i, g in enumerate(profile.gpus) if g.uuid == uuid)
    return index, profile.gpus[index]


def gpu_calls(machine: SimulatedMachine, gpu: int) -> int:
    return sum(1 for _, g in machine.calls if g == gpu)


@pytest.fixture(params=PROFILES)
def machine(request: pytest.FixtureRequest) -> Iterator[SimulatedMachine]:
    with simulated_nvml(busy(request.param), clock=SimClock.manual(start_wall=START_WALL)) as machine:
        yield machine


def expected_reading(machine: SimulatedMachine, gpu: Gpu) -> dict[str, float | None]:
    """What one reading must give on this GPU, from the profile, converted to the documented units.

    Call it after the readings: the energy counter follows the clock, and the call log shows whether the
    clock-event reasons came through the older throttle-reasons call.
    """
    profile, util, mem = machine.profile, gpu.utilization_pct, gpu.memory
    assert mem is not None
    v2 = mem.reserved_bytes is not None and "nvmlDeviceGetMemoryInfo_v2" not in profile.missing_functions
    power, energy = gpu.power.usage_mw, machine.energy_mj(gpu)
    gpm = gpu.gpm.metrics if gpu.gpm is not None and gpu.gpm.supported else {}
    # a driver without the newer clock-event call gives the same bits through the older throttle call
    reasons_readable = (
        "nvmlDeviceGetCurrentClocksEventReasons" not in profile.missing_functions
        or machine.call_count("nvmlDeviceGetCurrentClocksThrottleReasons") > 0
    )
    return {
        "gpu_util_pct": util.gpu if util else None,
        "mem_util_pct": util.memory if util else None,
        # bytes; v2 leaves the driver's reservation out of "used", v1 counts it in
        "mem_used_bytes": mem.used_bytes if v2 else mem.used_bytes + (mem.reserved_bytes or 0),
        "mem_reserved_bytes": mem.reserved_bytes if v2 else None,
        "power_w": power / 1000 if power is not None else None,  # NVML: milliwatts
        "energy_j": energy / 1000 if energy is not None else None,  # NVML: millijoules
        "sm_clock_mhz": gpu.clocks_mhz.sm,
        "mem_clock_mhz": gpu.clocks_mhz.mem,
        "temp_c": gpu.temperature_c,
        "pcie_tx_kb_per_s": gpu.pcie.tx_kb_s,  # KB/s as NVML gives it (nvidia-smi dmon txpci)
        "pcie_rx_kb_per_s": gpu.pcie.rx_kb_s,
        "clock_event_reasons_mask": gpu.clock_event_reasons if reasons_readable else None,
        **{column: gpm.get(metric) for column, metric in GPM_COLUMNS.items()},
    }


def started(machine: SimulatedMachine, device: str = "cuda:0") -> Sampler:
    """A sampler of ``device`` on the machine's clock, stepped by the test; its first sample is taken."""
    clock = sim_clock(machine)
    uuid = machine.profile.cuda_uuids()[int(device.split(":")[1])]
    source = NvmlSource(uuid, clock=clock)
    return Sampler(device, uuid, INTERVAL, source=source, clock=clock, background=False).start()


# --- readings and units ------------------------------------------------------------------------------


def test_metric_units_are_the_documented_ones() -> None:
    units = {m.name: m.unit for m in NVML_METRICS}
    assert units["power_w"] == "W" and units["energy_j"] == "J"
    assert units["mem_used_bytes"] == units["mem_reserved_bytes"] == "bytes"
    assert units["sm_clock_mhz"] == units["mem_clock_mhz"] == "MHz"
    assert units["pcie_tx_kb_per_s"] == units["pcie_rx_kb_per_s"] == "KB/s"
    assert units["gpu_util_pct"] == units["mem_util_pct"] == units["sm_active_pct"] == "%"
    assert units["temp_c"] == "degC"


def test_a_reading_carries_the_profile_values_in_documented_units(machine: SimulatedMachine) -> None:
    index, gpu = cuda0(machine.profile)
    source = NvmlSource(gpu.uuid.removeprefix("GPU-"), clock=sim_clock(machine))  # bare, as torch prints it
    assert source.open() is None
    assert source.uuid == gpu.uuid
    machine.clock.advance(INTERVAL)
    reading = source.read()
    assert reading == pytest.approx(expected_reading(machine, gpu))
    # found by UUID, never by index: NVML numbers GPUs in PCI order, CUDA does not
    assert ("nvmlDeviceGetHandleByUUID", index) in machine.calls
    assert not any(name.startswith("nvmlDeviceGetHandleByIndex") for name, _ in machine.calls)
    source.close()


def test_what_a_gpu_cannot_give_is_recorded_not_raised(machine: SimulatedMachine) -> None:
    _, gpu = cuda0(machine.profile)
    source = NvmlSource(gpu.uuid, clock=sim_clock(machine))
    assert source.open() is None
    machine.clock.advance(INTERVAL)
    source.read()
    expected_missing = {n for n, v in expected_reading(machine, gpu).items() if v is None}
    assert set(source.unavailable) == expected_missing
    if gpu.utilization_pct is None:  # MIG: no whole-GPU utilization, in the buffer or polled
        assert "polling nvmlDeviceGetUtilizationRates" in source.notes["utilization"]
        assert "NotSupported" in source.unavailable["gpu_util_pct"]
    if gpu.gpm is None or not gpu.gpm.supported:
        assert source.unavailable["sm_active_pct"] == "this GPU does not support GPM (Hopper and newer do)"
    if "clock_event_reasons_mask" in source.unavailable:  # old driver, read without the older call
        assert "FunctionNotFound" in source.unavailable["clock_event_reasons_mask"]


# --- the driver's sample buffer ----------------------------------------------------------------------


def test_driver_samples_line_up_with_the_sampler_clock(machine: SimulatedMachine) -> None:
    _, gpu = cuda0(machine.profile)
    machine.clock.advance(30.0)  # the driver's buffer is full by now: all of it is from before the run
    period = SAMPLE_PERIOD_US[1] / 1e6
    source = NvmlSource(gpu.uuid, clock=sim_clock(machine))
    assert source.open() is None
    opened_at = machine.clock.elapsed()
    assert source.read()["gpu_util_pct"] is None  # the backlog is skipped: no sample since open
    assert source.driver_series["gpu_util_pct"] == []
    machine.clock.advance(1.0)
    reading = source.read()
    if gpu.utilization_pct is None:  # MIG: no whole-GPU samples; polled instead, and N/A there too
        assert reading["gpu_util_pct"] is None and source.driver_series["gpu_util_pct"] == []
        assert "nvmlDeviceGetSamples: NVMLError_NotSupported" in source.notes["utilization"]
        return
    # the samples the driver took in the last second, each at its own time on the sampler's clock
    first = int((START_WALL + opened_at) / period) + 1
    last = int((START_WALL + opened_at + 1.0) / period)
    expected_t = [k * SAMPLE_PERIOD_US[1] / 1e6 - START_WALL for k in range(first, last + 1)]
    series = source.driver_series["gpu_util_pct"]
    assert [t for t, _ in series] == pytest.approx(expected_t, abs=1e-6)
    assert all(opened_at < t <= opened_at + 1.0 for t, _ in series)
    assert [v for _, v in series] == [BUSY_UTIL["gpu"]] * len(expected_t)
    assert reading["gpu_util_pct"] == BUSY_UTIL["gpu"]
    assert reading["mem_util_pct"] == BUSY_UTIL["memory"]
    assert source.read()["gpu_util_pct"] is None  # nothing new: NotFound is "no sample", not a failure
    assert "gpu_util_pct" not in source.unavailable


# --- GPM ---------------------------------------------------------------------------------------------


def test_gpm_metrics_where_supported_and_not_supported_said_where_not(machine: SimulatedMachine) -> None:
    _, gpu = cuda0(machine.profile)
    source = NvmlSource(gpu.uuid, clock=sim_clock(machine))
    assert source.open() is None
    machine.clock.advance(0.05)
    assert all(source.read()[c] is None for c in GPM_COLUMNS)  # under 100 ms after the first GPM sample
    machine.clock.advance(INTERVAL)
    reading = source.read()
    if gpu.gpm is not None and gpu.gpm.supported:
        assert {c: reading[c] for c in GPM_COLUMNS} == {c: BUSY_GPM[m] for c, m in GPM_COLUMNS.items()}
        assert machine.call_count("nvmlGpmSampleGet") == 2  # one at open, one per window
        assert not any(c in source.unavailable for c in GPM_COLUMNS)
    else:
        assert all(reading[c] is None for c in GPM_COLUMNS)
        assert {source.unavailable[c] for c in GPM_COLUMNS} == {
            "this GPU does not support GPM (Hopper and newer do)"
        }
        assert machine.call_count("nvmlGpmSampleGet") == 0
    source.close()
    assert machine.gpm_samples == {}  # every GPM sample allocated was freed


def test_consumer_card_says_gpm_is_not_supported() -> None:
    with simulated_nvml("consumer-rtx4090", clock=SimClock.manual()) as machine:
        sampler = started(machine)
        machine.clock.advance(INTERVAL)
        sampler.step()
        sampler.stop()
    summary = sampler.summary()
    assert summary["sm_active_pct_mean"] is None and summary["tensor_active_pct_max"] is None
    assert summary["unavailable_metrics"]["tensor_active_pct"] == (
        "this GPU does not support GPM (Hopper and newer do)"
    )


# --- summaries ---------------------------------------------------------------------------------------


def test_summary_is_what_the_profile_implies(machine: SimulatedMachine, tmp_path: Path) -> None:
    _, gpu = cuda0(machine.profile)
    sampler = started(machine)
    for _ in range(8):
        machine.clock.advance(INTERVAL)
        assert sampler.step()
    machine.clock.advance(INTERVAL)
    sampler.stop()
    summary = sampler.summary()
    json.dumps(summary, allow_nan=False)
    assert (summary["available"], summary["status"], summary["unavailable_reason"]) == (True, "ok", None)
    assert (summary["source"], summary["uuid"], summary["clock"]) == ("nvml", gpu.uuid, "simulated")
    assert (summary["samples"], summary["interval_ms"]) == (10, 250.0)
    assert (summary["t_start"], summary["t_stop"], summary["duration_s"]) == pytest.approx((0.0, 2.25, 2.25))
    expected = expected_reading(machine, gpu)
    for metric in NVML_METRICS:
        if metric.kind == "gauge":  # constant readings: mean and max are the profile's value
            assert summary[f"{metric.name}_mean"] == pytest.approx(expected[metric.name]), metric.name
            assert summary[f"{metric.name}_max"] == pytest.approx(expected[metric.name]), metric.name
    assert summary["util_pct_mean"] == summary["gpu_util_pct_mean"]
    power_w = gpu.power.usage_mw / 1000 if gpu.power.usage_mw is not None else None
    if gpu.energy_mj is not None:  # the counter's difference: the power draw over the run
        assert summary["energy_method"] == "nvml_total_energy_counter"
        assert summary["energy_j"] == pytest.approx(power_w * 2.25, abs=1e-3)
    else:
        assert summary["energy_method"] == "power_integral"
    mask = expected["clock_event_reasons_mask"]
    assert summary["clock_event_reasons_seen"] == (
        list(decode_clock_event_reasons(int(mask))) if mask is not None else []
    )
    assert set(summary["unavailable_metrics"]) == {n for n, v in expected.items() if v is None}

    with sampler.write_trace(tmp_path / "trace.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["t"]) for r in rows] == pytest.approx([i * INTERVAL for i in range(10)])
    assert {r["uuid"] for r in rows} == {gpu.uuid}
    assert float(rows[-1]["power_w"]) == pytest.approx(power_w)


def test_every_gpu_of_a_machine_is_sampled_by_its_uuid() -> None:
    with simulated_nvml(busy("dgx-8gpu-order"), clock=SimClock.manual()) as machine:
        profile = machine.profile
        samplers = [started(machine, f"cuda:{i}") for i in range(len(profile.gpus))]
        machine.clock.advance(INTERVAL)
        for sampler in samplers:
            sampler.stop()
    power = {s.uuid: s.summary()["power_w_mean"] for s in samplers}
    assert power == pytest.approx({g.uuid: (g.power.usage_mw or 0) / 1000 for g in profile.gpus})
    assert len(set(power.values())) > 1  # the eight GPUs really are told apart


# --- faults ------------------------------------------------------------------------------------------


def test_gpu_lost_mid_run_leaves_a_partial_summary_and_its_trace(
    machine: SimulatedMachine, tmp_path: Path
) -> None:
    index, gpu = cuda0(machine.profile)
    sampler = started(machine)
    machine.clock.advance(INTERVAL)
    before = gpu_calls(machine, index)
    assert sampler.step()
    per_reading = gpu_calls(machine, index) - before
    machine.lose_gpu(index, after=2 * per_reading + 3)  # lost during the third reading from now
    for _ in range(2):
        machine.clock.advance(INTERVAL)
        assert sampler.step()
    machine.clock.advance(INTERVAL)
    assert not sampler.step()
    assert not sampler.step()  # lost stays lost: no further reading is tried
    sampler.stop()
    summary = sampler.summary()
    assert (summary["available"], summary["status"], summary["samples"]) == (True, "partial", 4)
    reason = summary["unavailable_reason"]
    assert reason.startswith("sampling stopped after 4 samples: NVML stopped answering for " + gpu.uuid)
    assert "GpuIsLost" in reason
    if gpu.energy_mj is not None and gpu.power.usage_mw is not None:
        assert summary["energy_j"] == pytest.approx(gpu.power.usage_mw / 1000 * 3 * INTERVAL, abs=1e-3)
    text = sampler.write_trace(tmp_path / "lost.csv").read_text(encoding="utf-8")
    assert len(text.splitlines()) == 1 + 4  # the samples taken before the loss are kept


def test_not_supported_everywhere_is_unavailable_with_the_reason(machine: SimulatedMachine) -> None:
    machine.inject("*", error="NotSupported")  # nvmlInit included
    sampler = started(machine)
    assert sampler.step() is False
    sampler.stop()
    summary = sampler.summary()
    assert (summary["available"], summary["status"], summary["samples"]) == (False, "unavailable", 0)
    assert summary["unavailable_reason"] == (
        "telemetry not available: NVML not available: NVMLError_NotSupported: Not Supported"
    )


@pytest.mark.parametrize("name", PROFILES)
def test_no_reading_supported_is_unavailable_not_an_empty_trace(name: str) -> None:
    """NVML initialises and finds the GPU, then answers NotSupported to every reading."""
    data = busy(name)
    for gpu in data["gpus"]:
        gpu["errors"] = {f: "NotSupported" for f in SIMULATED_FUNCTIONS if f != "nvmlDeviceGetHandleByUUID"}
    with simulated_nvml(data, clock=SimClock.manual()) as machine:
        sampler = started(machine)
        for _ in range(3):
            machine.clock.advance(INTERVAL)
            assert sampler.step()  # each reading is N/A, none raises
        sampler.stop()
    summary = sampler.summary()
    json.dumps(summary, allow_nan=False)
    assert not sampler.available
    assert (summary["available"], summary["status"], summary["samples"]) == (False, "unavailable", 5)
    reason = summary["unavailable_reason"]
    assert reason.startswith("telemetry not available: no reading succeeded in 5 samples")
    assert "NVMLError_NotSupported: Not Supported" in reason and "\n" not in reason
    assert set(summary["unavailable_metrics"]) == {m.name for m in NVML_METRICS}
    assert summary["power_w_mean"] is None and summary["energy_j"] is None


@pytest.mark.parametrize("name", PROFILES)
def test_nvml_init_failing_is_unavailable_with_the_reason(name: str) -> None:
    with simulated_nvml(busy(name, init_error="DriverNotLoaded"), clock=SimClock.manual()) as machine:
        sampler = started(machine)
        sampler.stop()
    summary = sampler.summary()
    assert (summary["available"], summary["status"], summary["samples"]) == (False, "unavailable", 0)
    assert summary["unavailable_reason"] == (
        "telemetry not available: NVML not available: NVMLError_DriverNotLoaded: Driver Not Loaded "
        "(no NVIDIA driver loaded on this machine?)"
    )


def test_step_is_for_a_sampler_without_its_thread() -> None:
    with simulated_nvml("h100-sxm", clock=SimClock.manual()) as machine:
        uuid = machine.profile.gpus[0].uuid
        clock = sim_clock(machine)
        manual = Sampler("cuda:0", uuid, source=NvmlSource(uuid, clock=clock), clock=clock, background=False)
        with pytest.raises(RuntimeError, match="start"):
            manual.step()  # not started yet
        threaded = Sampler("cuda:0", uuid, source=NvmlSource(uuid, clock=clock), clock=clock)
        with pytest.raises(RuntimeError, match="background=False"):
            threaded.step()
