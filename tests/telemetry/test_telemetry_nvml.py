"""The NVML telemetry source on simulated machines: an H100 under load, a consumer GPU on an older driver,
a GPU that falls off the bus, and every NVML error on a reading.

NVML is simulated below the real nvidia-ml-py bindings (``gpubench.testing.nvml_sim``): the errors are the
real ``pynvml.NVMLError_*`` raised by the real wrappers from the simulated return codes. The load values are
hand-made edits of the recorded ``h100-sxm`` and ``consumer-rtx4090`` profiles (no GPU here). The machine's
clock is manual and is also the telemetry clock, so every reading is exact.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pynvml
import pytest

from gpubench import nvml
from gpubench.telemetry import GPM_MIN_SPACING_S, Clock, NvmlSource, Sampler, SourceLost, driver_to_perf
from gpubench.testing.nvml_sim import SimClock, SimulatedMachine, load_profile, simulated_nvml
from gpubench.testing.nvml_sim.readings import SAMPLE_PERIOD_US

UUID = "GPU-00000000-1111-2222-3333-444444444444"
START_WALL = 1_700_000_000.0


def h100_load() -> dict[str, Any]:
    """The recorded H100 SXM under a matmul load: power cap reached, GPM busy (hand-made values)."""
    data = load_profile("h100-sxm").to_dict()
    gpu = data["gpus"][0]
    gpu["uuid"] = UUID
    gpu["power"]["usage_mw"] = 450_000
    gpu["energy_mj"] = 123_456_000
    gpu["memory"].update(used_bytes=20_955_627_520, reserved_bytes=565_182_464)
    gpu["clocks_mhz"].update(graphics=1980, sm=1980, mem=2619)
    gpu["temperature_c"] = 55
    gpu["pcie"].update(tx_kb_s=1200, rx_kb_s=800)
    gpu["clock_event_reasons"] = 0x4  # sw_power_cap
    gpu["utilization_pct"] = {"gpu": 98, "memory": 59}
    gpu["gpm"]["metrics"] = {
        "NVML_GPM_METRIC_SM_UTIL": 97.5,
        "NVML_GPM_METRIC_SM_OCCUPANCY": 41.25,
        "NVML_GPM_METRIC_ANY_TENSOR_UTIL": 83.0,
        "NVML_GPM_METRIC_DRAM_BW_UTIL": 62.5,
    }
    return data


def consumer_gpu() -> dict[str, Any]:
    """The recorded RTX 4090 on an older driver: no v2 memory info, no energy counter (hand-made edits)."""
    data = load_profile("consumer-rtx4090").to_dict()
    data["missing_functions"] = ["nvmlDeviceGetMemoryInfo_v2"]
    gpu = data["gpus"][0]
    gpu["uuid"] = UUID
    gpu["memory"].update(total_bytes=12_884_901_888, used_bytes=3_884_901_888 - 484_442_112)
    gpu["energy_mj"] = None
    gpu["power"]["usage_mw"] = 100_000
    gpu["temperature_c"] = 50
    gpu["utilization_pct"] = {"gpu": 35, "memory": 12}
    gpu["clock_event_reasons"] = 0x1 | 0x8  # gpu_idle, hw_slowdown
    return data


def sim_clock(machine: SimulatedMachine) -> Clock:
    return Clock(perf=machine.clock.elapsed, wall=lambda: machine.clock.wall_us() / 1e6, name="simulated")


@pytest.fixture
def machine(request: pytest.FixtureRequest) -> Iterator[SimulatedMachine]:
    """A simulated machine (``h100_load`` unless parametrized with a profile), on a manual clock."""
    profile = getattr(request, "param", None) or h100_load()
    with simulated_nvml(profile, clock=SimClock.manual(start_wall=START_WALL)) as machine:
        yield machine


def opened(machine: SimulatedMachine, uuid: str = UUID) -> NvmlSource:
    source = NvmlSource(uuid, clock=sim_clock(machine))
    assert source.open() is None
    return source


def stepped(machine: SimulatedMachine, readings: int, interval: float = 0.05) -> Sampler:
    """A sampler on the machine's clock: the first reading at start, then one every ``interval``."""
    clock = sim_clock(machine)
    source = NvmlSource(UUID, clock=clock)
    sampler = Sampler("cuda:0", UUID, interval, source=source, clock=clock, background=False).start()
    for _ in range(readings - 2):
        machine.clock.advance(interval)
        sampler.step()
    machine.clock.advance(interval)
    sampler.stop()
    return sampler


# --- a healthy Hopper GPU --------------------------------------------------------------------------


def test_h100_readings_have_nvml_units_converted(machine: SimulatedMachine) -> None:
    source = opened(machine)
    first = source.read()
    assert first["power_w"] == pytest.approx(450.0)  # 450000 mW
    assert first["energy_j"] == pytest.approx(123456.0)  # 123456000 mJ
    assert first["mem_used_bytes"] == 20955627520  # v2: reserved memory not counted as used
    assert first["mem_reserved_bytes"] == 565182464
    assert first["sm_clock_mhz"] == 1980
    assert first["mem_clock_mhz"] == 2619
    assert first["temp_c"] == 55
    assert first["pcie_tx_kb_per_s"] == 1200
    assert first["pcie_rx_kb_per_s"] == 800
    assert first["clock_event_reasons_mask"] == 4
    assert source.unavailable == {}
    source.close()
    assert machine.call_count("nvmlGpmSampleFree") == 2


def test_handle_is_looked_up_by_normalised_uuid(machine: SimulatedMachine) -> None:
    source = NvmlSource(UUID.removeprefix("GPU-"))  # as torch prints it: without the prefix
    assert source.uuid == UUID
    assert source.open() is None
    # the simulator attributes a UUID lookup to the GPU only when the UUID is exactly one it knows
    assert ("nvmlDeviceGetHandleByUUID", 0) in machine.calls
    assert not any(name.startswith("nvmlDeviceGetHandleByIndex") for name, _ in machine.calls)


def test_driver_buffered_samples_skip_the_backlog_and_align_to_perf_counter(
    machine: SimulatedMachine,
) -> None:
    machine.clock.advance(20.0)  # the driver has buffered samples from before the run
    source = opened(machine)
    # samples buffered before open are skipped; the ones of the next 200 ms arrive later
    assert source.read()["gpu_util_pct"] is None
    assert source.driver_series["gpu_util_pct"] == []
    machine.clock.advance(0.25)
    reading = source.read()
    assert reading["gpu_util_pct"] == pytest.approx(98)
    assert reading["mem_util_pct"] == pytest.approx(59)
    series = source.driver_series["gpu_util_pct"]
    assert [v for _, v in series] == [98] * len(series) and len(series) >= 1
    period_us = SAMPLE_PERIOD_US[1]
    first_stamp = (int((START_WALL + 20.0) * 1e6) // period_us + 1) * period_us
    expected_first = driver_to_perf(first_stamp, START_WALL)  # offset: wall - perf when opened
    assert series[0][0] == pytest.approx(expected_first, abs=1e-6)
    assert 20.0 < series[0][0] <= 20.25
    assert all(b > a for (a, _), (b, _) in itertools.pairwise(series))
    # nothing new: the driver says NotFound, which is "no sample", not a failure
    assert source.read()["gpu_util_pct"] is None
    assert "gpu_util_pct" not in source.unavailable


def test_gpm_metrics_need_samples_more_than_100ms_apart(machine: SimulatedMachine) -> None:
    source = opened(machine)
    early = source.read()
    assert early["sm_active_pct"] is None  # too soon after the first GPM sample
    machine.clock.advance(GPM_MIN_SPACING_S + 0.02)
    later = source.read()
    assert later["sm_active_pct"] == 97.5
    assert later["sm_occupancy_pct"] == 41.25
    assert later["tensor_active_pct"] == 83.0
    assert later["dram_bw_util_pct"] == 62.5
    # two GPM samples over 100 ms apart; the simulator checks the request's version and answers by
    # metric id, so four right values mean four right ids in a request of the right version
    assert machine.call_count("nvmlGpmSampleGet") == 2
    assert machine.call_count("nvmlGpmMetricsGet") == 1


def test_gpm_metric_with_its_own_error_is_none() -> None:
    data = h100_load()
    data["gpus"][0]["gpm"]["metrics"] = {
        "NVML_GPM_METRIC_SM_UTIL": 50.0,
        "NVML_GPM_METRIC_ANY_TENSOR_UTIL": 1.0,
        "NVML_GPM_METRIC_DRAM_BW_UTIL": 2.0,
    }  # SM occupancy missing: NVML answers that metric alone with NOT_SUPPORTED
    with simulated_nvml(data, clock=SimClock.manual()) as machine:
        source = opened(machine)
        machine.clock.advance(GPM_MIN_SPACING_S + 0.02)
        reading = source.read()
    assert reading["sm_active_pct"] == 50.0
    assert reading["sm_occupancy_pct"] is None
    assert "sm_occupancy_pct" in source.unavailable


def test_sampler_summary_on_h100(machine: SimulatedMachine, tmp_path: Path) -> None:
    sampler = stepped(machine, readings=7)
    summary = sampler.summary()
    assert summary["available"] is True and summary["status"] == "ok"
    assert summary["source"] == "nvml"
    assert summary["energy_method"] == "nvml_total_energy_counter"
    assert summary["energy_j"] == pytest.approx(450.0 * 0.3)  # 450 W for the 0.3 s between first and last
    assert summary["power_w_max"] == pytest.approx(450.0)
    assert summary["mem_used_bytes_max"] == 20955627520
    assert summary["clock_event_reasons_seen"] == ["sw_power_cap"]
    # utilization summarised from the driver's own samples, which are finer than the readings
    assert len(sampler.source.driver_series["gpu_util_pct"]) > 0  # type: ignore[attr-defined]
    assert summary["util_pct_max"] == 98
    assert summary["util_pct_mean"] == pytest.approx(98)
    assert summary["sm_active_pct_mean"] == 97.5
    json.dumps(summary, allow_nan=False)
    text = sampler.write_trace(tmp_path / "trace.csv").read_text(encoding="utf-8")
    header = text.splitlines()[0].split(",")
    assert header[:3] == ["t", "device", "uuid"]
    assert {"gpu_util_pct", "power_w", "energy_j", "sm_active_pct"} <= set(header)


# --- a consumer GPU on an older driver ---------------------------------------------------------------


def test_consumer_gpu_falls_back_and_records_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # an nvidia-ml-py older than the clock-event-reasons name has only the throttle-reasons one
    monkeypatch.delattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons")
    with simulated_nvml(consumer_gpu(), clock=SimClock.manual()) as machine:
        machine.inject("nvmlDeviceGetSamples", error="NotSupported")  # no driver-buffered samples
        machine.inject("nvmlDeviceGetPcieThroughput", error="NoPermission")
        machine.inject("nvmlDeviceGetTemperature", error="Unknown", after=1, times=1)  # transient
        source = opened(machine)
        first, second, third = source.read(), source.read(), source.read()
        energy_calls = machine.call_count("nvmlDeviceGetTotalEnergyConsumption")
        throttle_calls = machine.call_count("nvmlDeviceGetCurrentClocksThrottleReasons")
    # no driver-buffered samples: polled utilization instead
    assert first["gpu_util_pct"] == 35 and first["mem_util_pct"] == 12
    assert second["gpu_util_pct"] == 35
    assert "nvmlDeviceGetUtilizationRates" in source.notes["utilization"]
    # no v2 memory info: v1 used (reserved memory counted as used), reserved not available
    assert first["mem_used_bytes"] == 3884901888
    assert first["mem_reserved_bytes"] is None
    assert "mem_reserved_bytes" in source.unavailable
    # NotSupported / NoPermission: not available, and not asked again
    assert first["energy_j"] is None and "NotSupported" in source.unavailable["energy_j"]
    assert "NoPermission" in source.unavailable["pcie_tx_kb_per_s"]
    assert energy_calls == 1
    # a transient error: None for that reading only
    assert [first["temp_c"], second["temp_c"], third["temp_c"]] == [50, None, 50]
    assert "temp_c" not in source.unavailable
    # old nvidia-ml-py: the throttle-reasons name of the same call
    assert [first["clock_event_reasons_mask"], second["clock_event_reasons_mask"]] == [9, 9]
    assert throttle_calls == 3
    # no GPM on this GPU
    assert first["sm_active_pct"] is None and "GPM" in source.unavailable["sm_active_pct"]


def test_consumer_gpu_energy_is_the_power_integral() -> None:
    with simulated_nvml(consumer_gpu(), clock=SimClock.manual()) as machine:
        sampler = stepped(machine, readings=4)
    summary = sampler.summary()
    assert summary["energy_method"] == "power_integral"
    rows = [(s.t, s.values["power_w"] or 0.0) for s in sampler.samples]
    expected = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in itertools.pairwise(rows))
    assert summary["energy_j"] == pytest.approx(expected)
    assert summary["energy_j"] == pytest.approx(100.0 * 0.15)  # 100 W for 0.15 s
    assert summary["clock_event_reasons_seen"] == ["gpu_idle", "hw_slowdown"]
    assert summary["unavailable_metrics"]["energy_j"].startswith("NVMLError_NotSupported")


# --- failures ---------------------------------------------------------------------------------------


def gpu_lost() -> dict[str, Any]:
    data = h100_load()
    data["gpus"][0]["power"]["usage_mw"] = 124_000
    data["gpus"][0]["energy_mj"] = 1_000_000
    return data


@pytest.mark.parametrize("machine", [gpu_lost()], indirect=True)
def test_gpu_lost_mid_run_keeps_the_samples_before(machine: SimulatedMachine) -> None:
    machine.inject("nvmlDeviceGetPowerUsage", gpu=0, error="GpuIsLost", after=2)  # the third reading
    sampler = stepped(machine, readings=5, interval=0.25)
    summary = sampler.summary()
    assert summary["available"] is True
    assert summary["status"] == "partial"
    assert summary["samples"] == 2
    assert "GpuIsLost" in summary["unavailable_reason"]
    assert summary["energy_j"] == pytest.approx(31.0)  # 124 W for the 0.25 s between the two samples


@pytest.mark.slow  # the sampling thread, paced on real time
def test_gpu_lost_mid_run_stops_sampling_but_not_the_work() -> None:
    with simulated_nvml(gpu_lost(), clock=SimClock.manual()) as machine:
        clock = sim_clock(machine)
        sampler = Sampler("cuda:0", UUID, 0.02, source=NvmlSource(UUID, clock=clock), clock=clock)
        machine.inject("nvmlDeviceGetPowerUsage", gpu=0, error="GpuIsLost", after=2)
        sampler.start()
        thread = sampler._thread
        assert thread is not None
        # waits for the thread's own end (an event), not for a time: the loop ends only when a reading fails
        thread.join(timeout=60.0)
        # the thread stopped by itself, while this thread (the measured work) went on and now stops it
        assert not thread.is_alive() and sampler.failure is not None
        sampler.stop()
    summary = sampler.summary()
    assert (summary["available"], summary["status"], summary["samples"]) == (True, "partial", 2)
    assert "GpuIsLost" in summary["unavailable_reason"]


def test_nvml_uninitialized_mid_run_is_a_lost_source(machine: SimulatedMachine) -> None:
    source = opened(machine)
    machine.inject("nvmlDeviceGetPowerUsage", error="Uninitialized")
    with pytest.raises(SourceLost, match="Uninitialized"):
        source.read()


def test_unknown_uuid_is_not_available_with_one_line() -> None:
    with simulated_nvml("h100-sxm", clock=SimClock.manual()):  # a GPU with another UUID
        sampler = Sampler("cuda:3", UUID).start()
        sampler.stop()
    assert not sampler.available
    assert sampler.reason is not None and "\n" not in sampler.reason
    assert UUID in sampler.reason and "NotFound" in sampler.reason
    assert sampler.summary()["status"] == "unavailable"


def test_a_failed_lookup_is_not_called_a_missing_gpu(machine: SimulatedMachine) -> None:
    machine.inject("nvmlDeviceGetHandleByUUID", error="Unknown", times=1)
    reason = NvmlSource(UUID).open()
    assert reason == (
        f"telemetry not available: NVML could not look up the GPU with UUID {UUID} "
        "(NVMLError_Unknown: Unknown Error)"
    )


def test_nvml_missing_is_not_available_not_an_error() -> None:
    nvml.reset()
    try:
        with Sampler("cuda:0", UUID, interval_s=0.01) as sampler:
            pass
        summary = sampler.summary()
        if summary["available"]:  # pragma: no cover - a machine with a driver and a GPU of this UUID
            pytest.skip("NVML is present here and knows this UUID")
        assert summary["status"] == "unavailable"
        assert summary["unavailable_reason"].startswith("telemetry not available")
        assert "\n" not in summary["unavailable_reason"]
    finally:
        nvml.reset()


def test_nvml_init_failure_recorded_by_the_nvml_layer() -> None:
    data = h100_load()
    data["init_error"] = "DriverNotLoaded"
    with simulated_nvml(data):
        reason = NvmlSource(UUID).open()
    assert reason == (
        "telemetry not available: NVML not available: NVMLError_DriverNotLoaded: Driver Not Loaded "
        "(no NVIDIA driver loaded on this machine?)"
    )


FATAL = {
    "Uninitialized",
    "DriverNotLoaded",
    "LibraryNotFound",
    "GpuIsLost",
    "ResetRequired",
    "LibRmVersionMismatch",
}
PERMANENT = {"NotSupported", "NoPermission", "FunctionNotFound", "InvalidArgument"}
ALL_ERRORS = sorted(n.removeprefix("NVMLError_") for n in dir(pynvml) if n.startswith("NVMLError_"))


def test_every_nvml_error_class_is_covered() -> None:
    assert set(ALL_ERRORS) >= FATAL | PERMANENT
    assert len(ALL_ERRORS) >= 20


@pytest.mark.parametrize("error", ALL_ERRORS)
def test_each_nvml_error_on_a_reading(error: str, machine: SimulatedMachine) -> None:
    source = opened(machine)
    machine.inject("nvmlDeviceGetPowerUsage", error=error, times=1)  # then 450 W again
    if error in FATAL:
        with pytest.raises(SourceLost, match=error):
            source.read()
        return
    first = source.read()
    second = source.read()
    assert first["power_w"] is None
    assert first["temp_c"] == 55  # the other readings are independent
    if error in PERMANENT:
        assert error in source.unavailable["power_w"]
        assert second["power_w"] is None
        assert machine.call_count("nvmlDeviceGetPowerUsage") == 1  # not asked again
    else:
        assert "power_w" not in source.unavailable
        assert second["power_w"] == pytest.approx(450.0)
