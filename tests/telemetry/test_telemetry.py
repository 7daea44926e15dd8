"""The sampler against the real psutil source, its failure handling, summaries and trace files."""

from __future__ import annotations

import csv
import itertools
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from gpubench.bench.telemetry_plugin import format_throughput_table, throughput_rows
from gpubench.config import TelemetrySection, load_config
from gpubench.telemetry import (
    DEFAULT_INTERVAL_MS,
    NVML_METRICS,
    PSUTIL_METRICS,
    Metric,
    PsutilSource,
    Sampler,
    decode_clock_event_reasons,
    metric_docs,
    source_for,
    trace_name,
)
from gpubench.telemetry.source import Clock


class _StepClock:
    """A telemetry clock that moves only when the test says: ``perf`` is ``now`` seconds."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def clock(self) -> Clock:
        return Clock(perf=lambda: self.now, wall=lambda: 1.7e9 + self.now, name="test clock")


# --- psutil, for real --------------------------------------------------------------------------------


@pytest.mark.slow  # psutil's CPU utilization needs a real window of at least one kernel tick
def test_psutil_source_reads_this_host() -> None:
    import psutil

    source = PsutilSource()
    assert source.open() is None
    first = source.read()
    assert first["cpu_util_pct"] is None  # a window shorter than one kernel tick says nothing
    time.sleep(0.05)
    reading = source.read()
    source.close()
    assert set(reading) == {m.name for m in PSUTIL_METRICS}
    assert 0.0 <= reading["cpu_util_pct"] <= 100.0  # type: ignore[operator]
    total = psutil.virtual_memory().total
    assert 0 < reading["mem_used_bytes"] <= total  # type: ignore[operator]
    assert 0 < reading["process_rss_bytes"] <= total  # type: ignore[operator]
    if "cpu_freq_mhz" in source.unavailable:
        assert reading["cpu_freq_mhz"] is None
    else:
        assert reading["cpu_freq_mhz"] is None or reading["cpu_freq_mhz"] >= 0


def test_cpu_sampler_summary_and_trace_follow_its_clock(tmp_path: Path) -> None:
    """The real psutil source, sampled by explicit steps on a clock the test moves: exact times."""
    ticks = _StepClock()
    sampler = Sampler("cpu", "cpu-host", interval_s=0.02, clock=ticks.clock(), background=False).start()
    for _ in range(4):
        ticks.now += 0.02
        assert sampler.step()
    ticks.now += 0.01
    sampler.stop()  # one last sample: the window covers the work
    samples = sampler.samples
    times = [s.t for s in samples]
    assert times == pytest.approx([100.0, 100.02, 100.04, 100.06, 100.08, 100.09])

    summary = sampler.summary()
    json.dumps(summary, allow_nan=False)
    assert summary["available"] and summary["status"] == "ok" and summary["source"] == "psutil"
    assert summary["clock"] == "test clock"
    assert summary["samples"] == 6
    assert summary["interval_ms"] == 20.0
    assert (summary["t_start"], summary["t_stop"]) == (100.0, pytest.approx(100.09))
    assert summary["duration_s"] == pytest.approx(0.09)
    assert summary["util_pct_mean"] == summary["cpu_util_pct_mean"]
    assert summary["mem_used_bytes_max"] >= summary["mem_used_bytes_mean"] > 0
    assert summary["energy_j"] is None and summary["energy_method"] is None
    assert summary["sampler_cpu_s"] == 0.0  # no sampling thread: every reading was the caller's

    path = sampler.write_trace(tmp_path / "telemetry" / "run" / "cpu.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["t", "device", "uuid", *(m.name for m in PSUTIL_METRICS)]
    assert len(rows) == len(samples)
    assert [float(r["t"]) for r in rows] == pytest.approx(times, abs=1e-6)
    assert rows[0]["cpu_util_pct"] == ""  # not available in the first reading: an empty cell
    assert {r["device"] for r in rows} == {"cpu"} and {r["uuid"] for r in rows} == {"cpu-host"}
    assert list(path.parent.iterdir()) == [path]  # written atomically: no temporary file left behind


@pytest.mark.slow  # the sampling thread, paced on real time
def test_cpu_sampler_thread_timestamps_share_perf_counter_with_the_caller() -> None:
    before = time.perf_counter()
    with Sampler("cpu", "cpu-host", interval_s=0.02) as sampler:
        time.sleep(0.25)  # releases the GIL: a Python-bound body delays readings (not their clock)
    after = time.perf_counter()
    times = [s.t for s in sampler.samples]
    # how many readings the thread gets in depends on the machine's load; these hold under any load:
    assert len(times) >= 2  # the first (in start) and the last (in stop) are the caller's own
    assert before <= times[0] and times[-1] <= after
    assert all(b > a for a, b in itertools.pairwise(times))
    summary = sampler.summary()
    assert summary["clock"] == "time.perf_counter" and summary["samples"] == len(times)
    assert before <= summary["t_start"] <= summary["t_stop"] <= after
    assert summary["sampler_cpu_s"] >= 0.0 and summary["sampler_cpu_pct"] is not None


# --- sources that fail -------------------------------------------------------------------------------


class ScriptedSource:
    """A source whose behaviour a test sets: failing open, failing or NaN readings."""

    kind = "scripted"
    metrics = (Metric("power_w", "W", "test"), Metric("gpu_util_pct", "%", "test"))

    def __init__(
        self,
        open_result: str | None = None,
        open_raises: bool = False,
        fail_after: int | None = None,
        values: dict[str, float] | None = None,
    ) -> None:
        self.unavailable: dict[str, str] = {}
        self.open_result, self.open_raises, self.fail_after = open_result, open_raises, fail_after
        self.values = values or {"power_w": 100.0, "gpu_util_pct": 50.0}
        self.reads = 0
        self.closed = False

    def open(self) -> str | None:
        if self.open_raises:
            msg = "boom"
            raise OSError(msg)
        return self.open_result

    def read(self) -> dict[str, float | None]:
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            msg = "sensor went away"
            raise RuntimeError(msg)
        return dict(self.values)

    def close(self) -> None:
        self.closed = True


def test_source_that_cannot_open_gives_one_line_and_no_samples() -> None:
    sampler = Sampler(
        "cuda:0", "GPU-x", 0.01, source=ScriptedSource(open_result="telemetry not available: x\ny")
    )
    with sampler:
        pass
    assert not sampler.available
    assert sampler.reason == "telemetry not available: x"
    summary = sampler.summary()
    assert summary == {
        **summary,
        "available": False,
        "status": "unavailable",
        "samples": 0,
        "unavailable_reason": "telemetry not available: x",
    }


def test_source_raising_in_open_is_not_available_not_an_error() -> None:
    with Sampler("cpu", None, 0.01, source=ScriptedSource(open_raises=True)) as sampler:
        pass
    assert sampler.reason is not None and "OSError: boom" in sampler.reason


def test_source_failing_mid_run_leaves_a_partial_summary() -> None:
    source = ScriptedSource(fail_after=3)
    ticks = _StepClock()
    sampler = Sampler("cuda:0", "GPU-x", 0.01, source=source, clock=ticks.clock(), background=False).start()
    for _ in range(2):
        ticks.now += 0.01
        assert sampler.step()
    ticks.now += 0.01
    assert not sampler.step()  # the fourth reading fails: sampling stops...
    assert not sampler.step()  # ...for good
    sampler.stop()
    summary = sampler.summary()
    assert summary["status"] == "partial" and summary["available"] is True
    assert summary["samples"] == 3
    assert "after 3 samples" in summary["unavailable_reason"]
    assert "sensor went away" in summary["unavailable_reason"]
    assert source.closed
    assert summary["energy_method"] == "power_integral"  # power is all this source gives
    assert summary["energy_j"] == pytest.approx(100.0 * 0.02)  # 100 W over the 3 samples' 20 ms
    assert summary["duration_s"] == pytest.approx(0.03)  # to stop(): the work went on after the failure


def test_nan_readings_become_not_available() -> None:
    source = ScriptedSource(values={"power_w": math.nan, "gpu_util_pct": math.inf})
    ticks = _StepClock()
    with Sampler("cuda:0", "GPU-x", 0.01, source=source, clock=ticks.clock(), background=False) as sampler:
        ticks.now += 0.01
        assert sampler.step()
    summary = sampler.summary()
    assert summary["samples"] == 3
    assert summary["power_w_mean"] is None and summary["gpu_util_pct_max"] is None
    json.dumps(summary, allow_nan=False)


def test_sampler_is_single_use_and_checks_its_interval() -> None:
    sampler = Sampler("cpu", None, 0.01, source=ScriptedSource()).start()
    sampler.stop()
    with pytest.raises(RuntimeError, match="new Sampler"):
        sampler.start()
    with pytest.raises(ValueError, match="interval_ms"):
        Sampler("cpu", None, 0.0)


def test_gpu_without_uuid_is_not_available() -> None:
    made = source_for("cuda:1", None)
    assert isinstance(made, str) and "UUID" in made
    with Sampler("cuda:1", "cpu-host") as sampler:
        pass
    assert not sampler.available and "UUID" in (sampler.reason or "")
    assert isinstance(source_for("cpu", None), PsutilSource)


# --- helpers -----------------------------------------------------------------------------------------


def test_clock_event_reasons_decode_like_nvidia_smi_fields() -> None:
    assert decode_clock_event_reasons(0) == ()
    assert decode_clock_event_reasons(0x1 | 0x4 | 0x40) == ("gpu_idle", "sw_power_cap", "hw_thermal_slowdown")
    assert decode_clock_event_reasons(0x8 | 0x1000) == ("hw_slowdown", "unknown_0x1000")


def test_trace_names_are_safe_and_unique() -> None:
    a = trace_name("bench/test_ops.py::test_add[cuda:0-f32]")
    b = trace_name("bench/test_ops.py::test_add[cuda:1-f32]")
    assert a != b
    for name in (a, b, trace_name("x/../../etc/passwd"), trace_name("t::" + "x" * 500)):
        assert name.endswith(".csv") and "/" not in name and ":" not in name and not name.startswith(".")
        assert len(name) <= 140


def test_every_metric_documents_its_unit_and_nvidia_smi_field() -> None:
    for metric in (*NVML_METRICS, *PSUTIL_METRICS):
        assert metric.unit and metric.doc
        suffix = {
            "%": "_pct",
            "bytes": "_bytes",
            "W": "_w",
            "J": "_j",
            "MHz": "_mhz",
            "degC": "_c",
            "KB/s": "_kb_per_s",
            "bitmask": "_mask",
        }[metric.unit]
        assert metric.name.endswith(suffix), metric.name
    gauges_with_smi = [m for m in NVML_METRICS if m.smi]
    assert {m.smi for m in gauges_with_smi} >= {
        "utilization.gpu",
        "memory.used",
        "power.draw",
        "clocks.sm",
        "temperature.gpu",
        "clocks_event_reasons.active",
    }
    for metric in NVML_METRICS:  # no --query-gpu field: the doc says what to look at instead
        assert metric.smi or "nvidia-smi" in metric.doc
    assert len(metric_docs()) == len(NVML_METRICS) + len(PSUTIL_METRICS)


def test_config_default_interval_is_the_measured_one() -> None:
    assert TelemetrySection().interval_ms == DEFAULT_INTERVAL_MS
    assert str(DEFAULT_INTERVAL_MS) in (TelemetrySection.__dataclass_fields__["interval_ms"].metadata["doc"])
    cfg = load_config(flags={"telemetry.interval_ms": 50}, env={}, cwd=Path("/nonexistent"), user_files=False)
    assert cfg.telemetry.interval_ms == 50


def test_throughput_table_shows_extra_info_and_dashes() -> None:
    benches = [
        SimpleNamespace(
            group="matmul",
            name="test_mm[cuda:1]",
            extra_info={
                "device": "cuda:1",
                "tflops": 412.3,
                "items_per_s": None,
                "telemetry": {"util_pct_mean": 97.25, "power_w_mean": 655.0},
            },
        ),
        SimpleNamespace(
            group=None,
            name="test_mnist[cpu]",
            extra_info={
                "device": "cpu",
                "items_per_s": 23456.7,
                "gbps": 1.234,
                "telemetry": {"util_pct_mean": 88.0},
            },
        ),
        SimpleNamespace(group=None, name="test_plain", extra_info={}),
    ]
    lines = format_throughput_table(throughput_rows(benches))
    assert lines[0].split()[:3] == ["Name", "(group/name)", "device"]
    body = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert body["matmul/test_mm[cuda:1]"] == ["cuda:1", "-", "-", "412", "97.2", "655"]
    assert body["test_mnist[cpu]"] == ["cpu", "23,457", "1.23", "-", "88.0", "-"]
    assert body["test_plain"] == ["-", "-", "-", "-", "-", "-"]
    assert len({len(line) for line in lines[:2]}) == 1
