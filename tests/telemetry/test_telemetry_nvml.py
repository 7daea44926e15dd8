"""The NVML telemetry source against a fake pynvml that replays hand-made readings and real NVML errors.

The readings in tests/data/nvml_telemetry/ are hand-made from documented NVML semantics (no GPU here);
the errors are the real ``pynvml.NVMLError_*`` classes, and structures the real pynvml ctypes types.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pynvml
import pytest

from gpubench import nvml
from gpubench.telemetry import GPM_MIN_SPACING_S, NvmlSource, Sampler, SourceLost, driver_to_perf

DATA = Path(__file__).parents[1] / "data" / "nvml_telemetry"
UUID = "GPU-00000000-1111-2222-3333-444444444444"
_FROM_REAL = ("NVML_", "NVMLError", "nvmlClocks", "c_nvml", "nvmlMemory_v2")


def _raise_or(step: Any) -> Any:
    if isinstance(step, dict) and "error" in step:
        raise getattr(pynvml, f"NVMLError_{step['error']}")()
    return step


class FakeNvml:
    """A pynvml stand-in: constants, errors and ctypes structures are the real ones; calls replay steps."""

    def __init__(self, calls: dict[str, Any]) -> None:
        self.calls = calls
        self.count: Counter[str] = Counter()
        self.t0_us = int(time.time() * 1e6)
        self.gpm_sample_times: list[float] = []
        self.metric_requests: list[tuple[int, int, list[int]]] = []
        self.freed = 0
        self.log: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith(_FROM_REAL):
            return getattr(pynvml, name)
        special = {
            "nvmlDeviceGetSamples",
            "nvmlDeviceGetMemoryInfo",
            "nvmlGpmSampleGet",
            "nvmlGpmMetricsGet",
            "nvmlGpmSampleAlloc",
            "nvmlGpmSampleFree",
        }
        if name in self.calls and name not in special:
            return lambda *args: self._step(name, *args)
        msg = f"module 'pynvml' has no attribute {name!r}"
        raise AttributeError(msg)

    def _step(self, name: str, *args: Any, key: str | None = None) -> Any:
        self.log.append((name, args))
        steps = self.calls[name]
        label = name
        if isinstance(steps, dict):  # keyed by the call's second argument
            key = str(args[1]) if key is None else key
            steps, label = steps[key], f"{name}[{key}]"
        index = self.count[label]
        self.count[label] += 1
        step = _raise_or(steps[min(index, len(steps) - 1)])
        if name == "nvmlDeviceGetUtilizationRates":
            util = pynvml.c_nvmlUtilization_t()
            util.gpu, util.memory = step["gpu"], step["memory"]
            return util
        if name == "nvmlGpmQueryDeviceSupport":
            support = pynvml.c_nvmlGpmSupport_t()
            support.version, support.isSupportedDevice = step["version"], step["isSupportedDevice"]
            return support
        return step

    # the calls whose behaviour is more than a lookup --------------------------------------------

    def nvmlDeviceGetSamples(self, handle: Any, sampling: int, last_seen: int) -> tuple[int, list[Any]]:
        self.count["nvmlDeviceGetSamples"] += 1
        entry = self.calls.get("nvmlDeviceGetSamples")
        if entry is None:
            raise AttributeError("nvmlDeviceGetSamples")
        if isinstance(entry, list):
            _raise_or(entry[0])
        now_us = int(time.time() * 1e6)
        out = []
        for rel_ms, value in entry[str(sampling)]:
            stamp = self.t0_us + int(rel_ms * 1000)
            if last_seen < stamp <= now_us:
                sample = pynvml.c_nvmlSample_t()
                sample.timeStamp = stamp
                sample.sampleValue.uiVal = value
                out.append(sample)
        if not out:
            raise pynvml.NVMLError_NotFound()
        return pynvml.NVML_VALUE_TYPE_UNSIGNED_INT, out

    def nvmlDeviceGetMemoryInfo(self, handle: Any, version: Any = None) -> Any:
        if version:
            if "nvmlDeviceGetMemoryInfo_v2" not in self.calls:
                raise pynvml.NVMLError_FunctionNotFound()
            step = self._step("nvmlDeviceGetMemoryInfo_v2")
            info = pynvml.c_nvmlMemory_v2_t()
            info.version, info.reserved = version, step["reserved"]
        else:
            step = self._step("nvmlDeviceGetMemoryInfo")
            info = pynvml.c_nvmlMemory_t()
        info.total, info.free, info.used = step["total"], step["free"], step["used"]
        return info

    def nvmlGpmSampleAlloc(self) -> Any:
        self._step("nvmlGpmSampleAlloc")
        return pynvml.c_nvmlGpmSample_t()  # a real (null) pointer, so the request structure accepts it

    def nvmlGpmSampleFree(self, sample: Any) -> None:
        self.freed += 1

    def nvmlGpmSampleGet(self, handle: Any, sample: Any) -> Any:
        self._step("nvmlGpmSampleGet")
        self.gpm_sample_times.append(time.perf_counter())
        return sample

    def nvmlGpmMetricsGet(self, request: Any) -> Any:
        step = self._step("nvmlGpmMetricsGet")
        ids = [request.metrics[i].metricId for i in range(request.numMetrics)]
        self.metric_requests.append((request.version, request.numMetrics, ids))
        for i, metric_id in enumerate(ids):
            value = step.get(str(metric_id))
            if isinstance(value, dict):
                request.metrics[i].nvmlReturn = value["return"]
            else:
                request.metrics[i].nvmlReturn = pynvml.NVML_SUCCESS
                request.metrics[i].value = value
        return request


def scenario(name: str) -> dict[str, Any]:
    data = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    assert "hand-made" in data["_about"].lower()
    return data["calls"]


@pytest.fixture
def install() -> Iterator[Any]:
    """Installs a FakeNvml built from a scenario (or calls); the real state comes back afterwards."""

    def _install(calls: dict[str, Any] | str) -> FakeNvml:
        fake = FakeNvml(scenario(calls) if isinstance(calls, str) else calls)
        nvml.reset_for_tests(fake)
        return fake

    yield _install
    nvml.reset_for_tests()


def opened(fake_calls: str | dict[str, Any], install: Any) -> tuple[NvmlSource, FakeNvml]:
    fake = install(fake_calls)
    source = NvmlSource(UUID)
    assert source.open() is None
    return source, fake


# --- a healthy Hopper GPU --------------------------------------------------------------------------


def test_h100_readings_have_nvml_units_converted(install: Any) -> None:
    source, fake = opened("h100_load", install)
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
    assert first["clock_event_reasons_mask"] == 0
    assert source.unavailable == {}
    source.close()
    assert fake.freed == 2


def test_handle_is_looked_up_by_normalised_uuid(install: Any) -> None:
    fake = install("h100_load")
    source = NvmlSource(UUID.removeprefix("GPU-"))  # as torch prints it: without the prefix
    assert source.open() is None
    assert ("nvmlDeviceGetHandleByUUID", (UUID,)) in fake.log
    assert not any(name == "nvmlDeviceGetHandleByIndex" for name, _ in fake.log)


def test_driver_buffered_samples_skip_the_backlog_and_align_to_perf_counter(install: Any) -> None:
    source, fake = opened("h100_load", install)
    # samples buffered before open (negative times) are skipped; the ones from 60-200 ms arrive later
    assert source.read()["gpu_util_pct"] is None
    assert source.driver_series["gpu_util_pct"] == []
    time.sleep(0.25)
    reading = source.read()
    assert reading["gpu_util_pct"] == pytest.approx((96 + 98 + 99 + 100 + 97) / 5)
    assert reading["mem_util_pct"] == pytest.approx((55 + 60 + 61 + 62 + 59) / 5)
    series = source.driver_series["gpu_util_pct"]
    assert [v for _, v in series] == [96, 98, 99, 100, 97]
    offset = time.time() - time.perf_counter()
    expected_first = driver_to_perf(fake.t0_us + 60_000, offset)
    assert series[0][0] == pytest.approx(expected_first, abs=0.01)
    assert all(b > a for (a, _), (b, _) in itertools.pairwise(series))
    # nothing new: the driver says NotFound, which is "no sample", not a failure
    assert source.read()["gpu_util_pct"] is None
    assert "gpu_util_pct" not in source.unavailable


def test_gpm_metrics_need_samples_more_than_100ms_apart(install: Any) -> None:
    source, fake = opened("h100_load", install)
    early = source.read()
    assert early["sm_active_pct"] is None  # too soon after the first GPM sample
    time.sleep(GPM_MIN_SPACING_S + 0.02)
    later = source.read()
    assert later["sm_active_pct"] == 97.5
    assert later["sm_occupancy_pct"] == 41.25
    assert later["tensor_active_pct"] == 83.0
    assert later["dram_bw_util_pct"] == 62.5
    assert len(fake.gpm_sample_times) == 2
    assert fake.gpm_sample_times[1] - fake.gpm_sample_times[0] > GPM_MIN_SPACING_S
    version, count, ids = fake.metric_requests[0]
    assert version == pynvml.NVML_GPM_METRICS_GET_VERSION
    assert count == 4
    assert ids == [
        pynvml.NVML_GPM_METRIC_SM_UTIL,
        pynvml.NVML_GPM_METRIC_SM_OCCUPANCY,
        pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL,
        pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL,
    ]


def test_gpm_metric_with_its_own_error_is_none(install: Any) -> None:
    calls = scenario("h100_load")
    calls["nvmlGpmMetricsGet"] = [
        {"2": 50.0, "3": {"return": pynvml.NVML_ERROR_NOT_SUPPORTED}, "5": 1.0, "10": 2.0}
    ]
    source, _ = opened(calls, install)
    time.sleep(GPM_MIN_SPACING_S + 0.02)
    reading = source.read()
    assert reading["sm_active_pct"] == 50.0
    assert reading["sm_occupancy_pct"] is None
    assert "sm_occupancy_pct" in source.unavailable


def test_sampler_summary_on_h100(install: Any, tmp_path: Path) -> None:
    install("h100_load")
    with Sampler("cuda:0", UUID, interval_s=0.03) as sampler:
        time.sleep(0.3)
    summary = sampler.summary()
    assert summary["available"] is True and summary["status"] == "ok"
    assert summary["source"] == "nvml"
    assert summary["energy_method"] == "nvml_total_energy_counter"
    assert summary["energy_j"] == pytest.approx(123666.0 - 123456.0)
    assert summary["power_w_max"] == pytest.approx(700.0)
    assert summary["mem_used_bytes_max"] == 24955627520
    assert summary["clock_event_reasons_seen"] == ["sw_power_cap"]
    # utilization summarised from the driver's own samples, which are finer than the readings
    assert summary["util_pct_max"] == 100
    assert summary["util_pct_mean"] == pytest.approx((96 + 98 + 99 + 100 + 97) / 5)
    assert summary["sm_active_pct_mean"] == 97.5
    json.dumps(summary, allow_nan=False)
    text = sampler.write_trace(tmp_path / "trace.csv").read_text(encoding="utf-8")
    header = text.splitlines()[0].split(",")
    assert header[:3] == ["t", "device", "uuid"]
    assert {"gpu_util_pct", "power_w", "energy_j", "sm_active_pct"} <= set(header)


# --- a consumer GPU on an older driver ---------------------------------------------------------------


def test_consumer_gpu_falls_back_and_records_what_is_missing(install: Any) -> None:
    source, fake = opened("consumer_gpu", install)
    first, second, third = source.read(), source.read(), source.read()
    # no driver-buffered samples: polled utilization instead
    assert first["gpu_util_pct"] == 35 and first["mem_util_pct"] == 12
    assert second["gpu_util_pct"] == 90
    assert "nvmlDeviceGetUtilizationRates" in source.notes["utilization"]
    # no v2 memory info: v1 used, reserved not available
    assert first["mem_used_bytes"] == 3884901888
    assert first["mem_reserved_bytes"] is None
    assert "mem_reserved_bytes" in source.unavailable
    # NotSupported / NoPermission: not available, and not asked again
    assert first["energy_j"] is None and "NotSupported" in source.unavailable["energy_j"]
    assert "NoPermission" in source.unavailable["pcie_tx_kb_per_s"]
    assert fake.count["nvmlDeviceGetTotalEnergyConsumption"] == 1
    # a transient error: None for that reading only
    assert [first["temp_c"], second["temp_c"], third["temp_c"]] == [50, None, 52]
    assert "temp_c" not in source.unavailable
    # old nvidia-ml-py: the throttle-reasons name of the same call
    assert [first["clock_event_reasons_mask"], second["clock_event_reasons_mask"]] == [1, 8]
    # no GPM on this GPU
    assert first["sm_active_pct"] is None and "GPM" in source.unavailable["sm_active_pct"]


def test_consumer_gpu_energy_is_the_power_integral(install: Any) -> None:
    install("consumer_gpu")
    with Sampler("cuda:1", UUID, interval_s=0.05) as sampler:
        time.sleep(0.12)
    summary = sampler.summary()
    assert summary["energy_method"] == "power_integral"
    rows = [(s.t, s.values["power_w"]) for s in sampler.samples]
    expected = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in itertools.pairwise(rows))
    assert summary["energy_j"] == pytest.approx(expected)
    assert summary["clock_event_reasons_seen"] == ["gpu_idle", "hw_slowdown"]
    assert summary["unavailable_metrics"]["energy_j"].startswith("NVMLError_NotSupported")


# --- failures ---------------------------------------------------------------------------------------


def test_gpu_lost_mid_run_stops_sampling_but_not_the_work(install: Any) -> None:
    install("gpu_lost")
    sampler = Sampler("cuda:0", UUID, interval_s=0.02).start()
    total = 0
    deadline = time.perf_counter() + 0.15
    while time.perf_counter() < deadline:  # the measured work, in this thread
        total += sum(range(1000))
    assert sampler.failure is not None  # the sampling thread already stopped by itself...
    assert total > 0  # ...and the work went on
    sampler.stop()
    summary = sampler.summary()
    assert summary["available"] is True
    assert summary["status"] == "partial"
    assert summary["samples"] == 2
    assert "GpuIsLost" in summary["unavailable_reason"]
    assert summary["energy_j"] == pytest.approx(31.0)


def test_nvml_uninitialized_mid_run_is_a_lost_source(install: Any) -> None:
    calls = scenario("gpu_lost")
    calls["nvmlDeviceGetPowerUsage"] = [{"error": "Uninitialized"}]
    source, _ = opened(calls, install)
    with pytest.raises(SourceLost, match="Uninitialized"):
        source.read()


def test_unknown_uuid_is_not_available_with_one_line(install: Any) -> None:
    calls = scenario("h100_load")
    calls["nvmlDeviceGetHandleByUUID"] = [{"error": "NotFound"}]
    install(calls)
    sampler = Sampler("cuda:3", UUID).start()
    sampler.stop()
    assert not sampler.available
    assert sampler.reason is not None and "\n" not in sampler.reason
    assert UUID in sampler.reason and "NotFound" in sampler.reason
    assert sampler.summary()["status"] == "unavailable"


def test_nvml_missing_is_not_available_not_an_error() -> None:
    nvml.reset_for_tests()
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
        nvml.reset_for_tests()


def test_nvml_init_failure_recorded_by_the_nvml_layer() -> None:
    nvml.reset_for_tests(None, error="NVML not available: NVMLError_DriverNotLoaded: Driver Not Loaded")
    try:
        reason = NvmlSource(UUID).open()
        assert (
            reason
            == "telemetry not available: NVML not available: NVMLError_DriverNotLoaded: Driver Not Loaded"
        )
    finally:
        nvml.reset_for_tests()


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
def test_each_nvml_error_on_a_reading(error: str, install: Any) -> None:
    calls = scenario("h100_load")
    calls["nvmlDeviceGetPowerUsage"] = [{"error": error}, 250000]
    source, fake = opened(calls, install)
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
        assert fake.count["nvmlDeviceGetPowerUsage"] == 1  # not asked again
    else:
        assert "power_w" not in source.unavailable
        assert second["power_w"] == pytest.approx(250.0)
