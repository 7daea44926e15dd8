"""Saved runs loaded into the tidy table: one row per benchmark, device and run, telemetry columns,
verification verdicts, device-free case names, and damaged files or entries skipped with a warning."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from report_runs import RUNS, damaged_copy, fx, write_run

from gpubench.report.load import LoadedRuns, case_name, load_runs
from gpubench.report.traces import flatten_telemetry


def test_two_saved_runs_load_into_one_row_per_benchmark_device_and_run(loaded: LoadedRuns) -> None:
    frame = loaded.benchmarks
    expected_rows = sum(len(cases) for run in fx.MEDIANS.values() for cases in run.values())
    assert len(frame) == expected_rows
    assert not frame.duplicated(["run_id", "benchmark", "device"]).any()
    assert set(frame["run_id"]) == {r["run_id"] for r in fx.RUNS.values()}
    assert str(frame["run_time"].dt.tz) == "UTC"
    assert loaded.warnings == ()
    for column in (
        "host",
        "gpu_uuid",
        "gpu_name",
        "gpu_index",
        "gpu_pci_bus_id",
        "median_s",
        "throughput",
        "requested_device",
        "fallback_note",
        "timing_method",
        "source_file",
        "trace",
    ):
        assert column in frame.columns
    cuda1 = frame[frame["device"] == "cuda:1"]
    assert set(cuda1["gpu_uuid"]) == {fx.GPUS["cuda:1"]["uuid"]}
    assert set(cuda1["gpu_pci_bus_id"]) == {fx.GPUS["cuda:1"]["pci_bus_id"]}
    assert set(cuda1["gpu_index"]) == {1.0}
    assert set(frame.loc[frame["device"] == "cpu", "gpu_uuid"]) == {f"cpu-{fx.HOST}"}


def test_rows_carry_timing_rates_and_the_device_free_case_name(loaded: LoadedRuns) -> None:
    frame = loaded.benchmarks
    run2 = fx.RUNS["run2"]["run_id"]
    matmul = frame[
        (frame["run_id"] == run2) & (frame["device"] == "cuda:1") & (frame["group"] == "matmul-f32")
    ]
    row = matmul.iloc[0]
    median = fx.MEDIANS["run2"]["cuda:1"]["matmul"]
    assert row["median_s"] == pytest.approx(median)
    assert row["case"] == "test_matmul[f32-4096]"
    assert row["name"] == "test_matmul[cuda:1-f32-4096]"
    # a matmul records bytes and flops: it reads as TFLOP/s, with its ceiling fraction
    assert row["throughput_unit"] == "TFLOP/s"
    assert row["throughput"] == pytest.approx(fx.CASES["matmul"]["flops"] / median / 1e12)
    assert row["ceiling_fraction"] == pytest.approx(row["throughput"] / fx.CEILING_TFLOPS["cuda:1"])
    by_group = frame[frame["run_id"] == run2].groupby("group")["throughput_unit"].first()
    assert by_group["mnist-epoch"] == "items/s"
    assert by_group["add-f32"] == "GB/s"
    xor = frame[(frame["group"] == "xor") & (frame["device"] == "cpu") & (frame["run_id"] == run2)].iloc[0]
    assert xor["throughput_unit"] == "calls/s"
    assert xor["throughput"] == pytest.approx(1.0 / fx.MEDIANS["run2"]["cpu"]["xor"])


def test_telemetry_summary_columns_come_from_extra_info(loaded: LoadedRuns) -> None:
    frame = loaded.benchmarks
    traced = frame[frame["trace"].notna()]
    assert len(traced) == 6  # mnist and matmul on three devices in the second run
    assert {
        "gpu_util_pct_mean",
        "power_w_mean",
        "power_w_max",
        "energy_j",
        "sm_clock_mhz_mean",
        "cpu_util_pct_mean",
    } <= set(frame.columns)
    row = traced[(traced["device"] == "cuda:0") & (traced["group"] == "mnist-epoch")].iloc[0]
    trace = pd.read_csv(RUNS / row["trace"])
    assert row["power_w_mean"] == pytest.approx(trace["power_w"].mean(), abs=0.01)
    assert row["energy_j"] == pytest.approx(trace["energy_j"].iloc[-1] - trace["energy_j"].iloc[0], abs=0.01)
    assert math.isnan(frame[frame["trace"].isna()]["power_w_mean"].iloc[0])


def test_a_trace_without_a_summary_is_summarised_from_the_csv(tmp_path: Path) -> None:
    rows = fx.trace_rows("cuda:0", fx.GPUS["cuda:0"]["uuid"], seconds=1.0, t0=10.0, load=0.9)
    fx.write_csv(tmp_path / "telemetry" / "r" / "m.csv", fx.TRACE_COLUMNS_GPU, rows)
    entry = fx.benchmark_entry("matmul", "cuda:0", 0.005, trace="telemetry/r/m.csv")
    entry["extra_info"]["telemetry"] = {"trace": "telemetry/r/m.csv"}
    write_run(tmp_path, "a", [entry], ["cuda:0"], "2026-11-01T00:00:00+00:00")
    frame = load_runs(tmp_path).benchmarks
    power = [float(r[5]) for r in rows]
    assert frame["power_w_mean"].iloc[0] == pytest.approx(sum(power) / len(power))
    assert frame["power_w_max"].iloc[0] == pytest.approx(max(power))
    assert frame["telemetry_samples"].iloc[0] == len(rows)


def test_flatten_telemetry_reads_the_samplers_flat_keys() -> None:
    sampler = {
        "power_w_mean": 200.0,
        "power_w_max": 250.0,
        "pcie_tx_kb_per_s_mean": 5.0,
        "util_pct_mean": 90.0,
        "energy_j": 3.0,
        "status": "ok",
        "t_start": 1.0,
        "t_stop": 2.0,
        "duration_s": 1.0,
        "samples": 10,
        "available": True,
        "unavailable_metrics": {},
        "trace": "results/x.csv",
    }
    assert flatten_telemetry(sampler) == {
        "power_w_mean": 200.0,
        "power_w_max": 250.0,
        "pcie_tx_kb_per_s_mean": 5.0,
        "util_pct_mean": 90.0,
        "energy_j": 3.0,
        "telemetry_status": "ok",
        "telemetry_duration_s": 1.0,
        "telemetry_samples": 10.0,
    }


def test_flatten_telemetry_accepts_nested_and_flat_summaries() -> None:
    nested = {
        "summary": {
            "power_w": {"mean": 200.0, "max": 250},
            "energy_j": 12.5,
            "samples": 40,
            "note": "text is left out",
        },
        "trace": "x.csv",
    }
    assert flatten_telemetry(nested) == {
        "power_w_mean": 200.0,
        "power_w_max": 250.0,
        "energy_j": 12.5,
        "telemetry_samples": 40.0,
    }
    flat = {"gpu_util_pct_mean": 91.0, "trace": "x.csv", "power_w": {"mean": float("nan")}}
    assert flatten_telemetry(flat) == {"gpu_util_pct_mean": 91.0}


def test_verification_runs_load_with_their_verdicts(loaded: LoadedRuns) -> None:
    verify = loaded.verify
    assert len(verify) == 8
    warn = verify[verify["verdict"] == "WARN"]
    assert list(warn["gpu_uuid"]) == [fx.GPUS["cuda:1"]["uuid"]]
    assert list(warn["check"]) == ["temperature"]
    assert set(verify["gpu_name"]) == {fx.GPU_MODEL}


@pytest.mark.parametrize(
    ("name", "devices", "expected"),
    [
        ("test_matmul[cuda:1-f32-4096]", ("cuda:1",), "test_matmul[f32-4096]"),
        ("test_add[f32-cpu]", ("cpu",), "test_add[f32]"),
        ("test_xor[cuda:0]", ("cuda:0",), "test_xor"),
        (
            "test_copy[h2d-cuda:1]",
            ("cpu", "cuda:1"),
            "test_copy[h2d]",
        ),  # fallback: ran on cpu, id says cuda:1
        ("test_plain", ("cpu",), "test_plain"),
    ],
)
def test_case_name_drops_the_device_id(name: str, devices: tuple[str, ...], expected: str) -> None:
    assert case_name(name, devices) == expected


def test_damaged_files_are_skipped_with_a_warning_naming_each(tmp_path: Path) -> None:
    results, damaged = damaged_copy(tmp_path)
    loaded = load_runs(results)
    for path in damaged:
        assert sum(str(path) in w for w in loaded.warnings) == 1, (path, loaded.warnings)
    assert len(loaded.warnings) == len(damaged)
    assert len(loaded.benchmarks) == len(load_runs(RUNS).benchmarks)
    assert len(loaded.verify) == 8


def test_a_bad_entry_inside_a_good_file_is_skipped_alone(tmp_path: Path) -> None:
    entries: list[Any] = [fx.benchmark_entry("add", "cpu", 0.01), "not an entry", {"name": "no stats"}]
    path = write_run(tmp_path, "a", entries, ["cpu"], "2026-11-01T00:00:00+00:00")
    loaded = load_runs(tmp_path)
    assert len(loaded.benchmarks) == 1
    assert [w.split(":")[0] for w in loaded.warnings] == [
        f"skipped {path} benchmark #1",
        f"skipped {path} benchmark #2",
    ]


def test_flatten_telemetry_reads_the_older_stat_before_unit_spelling() -> None:
    """Files saved before the one spelling (statistic before the unit) still read, under the new names."""
    old = {"gpu_util_mean_pct": 91.0, "temp_max_c": 70.0, "sm_clock": {"mean": 1500.0}}
    assert flatten_telemetry(old) == {"gpu_util_pct_mean": 91.0, "temp_c_max": 70.0, "sm_clock_mean": 1500.0}
