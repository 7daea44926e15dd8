"""One definition of each metric (issue 17, item 2): the table in gpubench.metrics is what the sources read,
the trace header, the saved summary keys and the NVML clock-event-reason names come from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpubench import metrics, nvml
from gpubench.telemetry import NVML_METRICS, PSUTIL_METRICS, Sample, Sampler
from gpubench.telemetry.traces import FIXED_COLUMNS, csv_text

SRC = Path(__file__).resolve().parents[2] / "src" / "gpubench"


class _Fake:
    kind = "psutil"
    metrics = metrics.PSUTIL_METRICS

    def __init__(self) -> None:
        self.unavailable: dict[str, str] = {}

    def open(self) -> str | None:
        return None

    def read(self) -> dict[str, float | None]:
        return {m.name: 1.0 for m in self.metrics}

    def close(self) -> None:
        return None


def test_sources_read_the_one_table() -> None:
    assert NVML_METRICS is metrics.NVML_METRICS
    assert PSUTIL_METRICS is metrics.PSUTIL_METRICS
    for metric in metrics.all_metrics():
        unit = metric.name.rsplit("_", 1)[-1]
        assert metric.name.endswith(tuple(f"_{u}" for u in metrics.UNIT_SUFFIXES)) or unit == "mask", metric


def test_memory_names_nvidia_smis_unit() -> None:
    used = next(m for m in metrics.NVML_METRICS if m.name == "mem_used_bytes")
    assert (used.unit, used.smi, used.smi_unit) == ("bytes", "memory.used", "MiB")
    assert used.to_smi(3 * 2**20) == 3.0
    assert all(m.nvml for m in metrics.NVML_METRICS)


def test_saved_summary_keys_are_the_table_spelling() -> None:
    sampler = Sampler("cpu", None, source=_Fake(), background=False)
    sampler.start()
    sampler.step()
    sampler.stop()
    summary = sampler.summary()
    for metric in metrics.PSUTIL_METRICS:
        for stat in ("mean", "max"):
            assert metrics.summary_key(metric.name, stat) in summary
    header = sampler.trace_text().splitlines()[0].split(",")
    assert header == [*FIXED_COLUMNS, *(m.name for m in metrics.PSUTIL_METRICS)]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("power_mean_w", "power_w_mean"),
        ("gpu_util_mean_pct", "gpu_util_pct_mean"),
        ("pcie_tx_max_kb_per_s", "pcie_tx_kb_per_s_max"),
        ("temp_max_c", "temp_c_max"),
        ("power_w_mean", "power_w_mean"),
        ("energy_j", "energy_j"),
    ],
)
def test_older_spellings_read_as_the_saved_one(old: str, new: str) -> None:
    assert metrics.canonical_key(old) == new


def test_trace_csv_quotes_through_csv_writer() -> None:
    text = csv_text([*FIXED_COLUMNS, "power_w"], 'cuda:0,"x"', None, [Sample(1.5, {"power_w": None})])
    assert text.splitlines()[1] == '1.500000,"cuda:0,""x""",,'


def test_clock_event_reasons_come_from_pynvml() -> None:
    pynvml = pytest.importorskip("pynvml")
    for name, bit in nvml.CLOCK_EVENT_REASONS:
        camel = "".join(p.capitalize() for p in name.split("_"))
        value = getattr(pynvml, f"nvmlClocksEventReason{camel}", None)
        if value is None:
            value = getattr(pynvml, f"nvmlClocksThrottleReason{camel}")
        assert value == bit
    assert ("sw_power_cap", 0x4) in nvml.CLOCK_EVENT_REASONS


def test_throttle_names_are_the_fallback() -> None:
    class Old:
        nvmlClocksThrottleReasonGpuIdle = 0x1
        nvmlClocksThrottleReasonHwSlowdown = 0x8
        nvmlClocksThrottleReasonAll = 0x9
        nvmlClocksThrottleReasonNone = 0

    assert nvml.clock_event_reasons_from(Old) == (("gpu_idle", 0x1), ("hw_slowdown", 0x8))


def test_no_second_copy_in_src() -> None:
    """grep: metrics and clock-event-reason bits are defined once (gpubench/metrics.py, gpubench/nvml.py)."""
    hand_bits = re.compile(r'"gpu_idle",\s*0x1|0x1:\s*"gpu_idle"|GPU_IDLE\s*=\s*0x1')
    for path in SRC.rglob("*.py"):
        text = path.read_text("utf-8")
        if path.name != "metrics.py":
            assert not re.search(r"^\s*Metric\(\s*$|\bMetric\(\s*\"", text, re.M), path
        assert not hand_bits.search(text), path
