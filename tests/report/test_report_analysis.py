"""Ratios between devices (and run against run with one device), regressions per GPU UUID, and outlier
GPUs against their same-model siblings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from report_runs import fx, write_run

from gpubench.report.analysis import outlier_table, ratio_table, trend_table
from gpubench.report.load import LoadedRuns, load_runs


def test_ratio_table_puts_devices_side_by_side(loaded: LoadedRuns) -> None:
    table = ratio_table(loaded.benchmarks, ["cuda:0", "cuda:1", "cpu"])
    assert list(table.columns) == ["unit", "cuda:0", "cuda:1", "cpu", "cuda:1 / cuda:0", "cpu / cuda:0"]
    medians = fx.MEDIANS["run2"]
    matmul = table.loc["matmul-f32 / test_matmul[f32-4096]"]
    # same work per call, so the throughput ratio is the inverse ratio of median times
    assert matmul["cuda:1 / cuda:0"] == pytest.approx(
        medians["cuda:0"]["matmul"] / medians["cuda:1"]["matmul"]
    )
    assert matmul["cpu / cuda:0"] == pytest.approx(medians["cuda:0"]["matmul"] / medians["cpu"]["matmul"])
    assert math.isnan(table.loc["copy-h2d / test_copy[h2d-16777216]", "cpu / cuda:0"])
    assert table.attrs["run_id"] == fx.RUNS["run2"]["run_id"]


def test_ratio_denominator_follows_the_configured_order(loaded: LoadedRuns) -> None:
    table = ratio_table(loaded.benchmarks, ["cuda:1", "cuda:0"])
    assert list(table.columns)[-2:] == ["cuda:0 / cuda:1", "cpu / cuda:1"]
    mnist = table.loc["mnist-epoch / test_mnist_epoch[device_resident]"]
    medians = fx.MEDIANS["run2"]
    assert mnist["cuda:0 / cuda:1"] == pytest.approx(medians["cuda:1"]["mnist"] / medians["cuda:0"]["mnist"])


def test_cpu_only_data_gives_one_column_then_run_against_run(tmp_path: Path) -> None:
    first = [fx.benchmark_entry("add", "cpu", 0.010), fx.benchmark_entry("xor", "cpu", 2.0)]
    write_run(tmp_path, "a", first, ["cpu"], "2026-11-01T00:00:00+00:00")
    one = ratio_table(load_runs(tmp_path).benchmarks)
    assert list(one.columns) == ["unit", "run-a"]
    second = [fx.benchmark_entry("add", "cpu", 0.008), fx.benchmark_entry("xor", "cpu", 2.5)]
    write_run(tmp_path, "b", second, ["cpu"], "2026-11-02T00:00:00+00:00")
    two = ratio_table(load_runs(tmp_path).benchmarks)
    assert list(two.columns) == ["unit", "run-a", "run-b", "run-b / run-a"]
    assert two.loc["add-f32 / test_elementwise[add-f32-16777216]", "run-b / run-a"] == pytest.approx(
        0.010 / 0.008
    )
    assert two.loc["xor / test_xor_converge[100seeds]", "run-b / run-a"] == pytest.approx(2.0 / 2.5)


def test_regression_is_flagged_per_gpu_uuid(loaded: LoadedRuns) -> None:
    trends = trend_table(loaded.benchmarks, regression_pct=5.0)
    flagged = trends[trends["regression"]]
    assert list(zip(flagged["group"], flagged["gpu_uuid"], strict=True)) == [
        ("matmul-f32", fx.GPUS["cuda:1"]["uuid"])
    ]
    before, after = fx.MEDIANS["run1"]["cuda:1"]["matmul"], fx.MEDIANS["run2"]["cuda:1"]["matmul"]
    assert flagged["change_pct"].iloc[0] == pytest.approx((after / before - 1) * 100)
    assert flagged["previous_run"].iloc[0] == fx.RUNS["run1"]["run_id"]
    # just above the measured slowdown: nothing flagged
    looser = trend_table(loaded.benchmarks, regression_pct=(after / before - 1) * 100 + 0.1)
    assert not looser["regression"].any()


def test_regression_follows_the_uuid_when_the_index_changes(tmp_path: Path) -> None:
    gpu = dict(fx.GPUS["cuda:1"])
    write_run(
        tmp_path,
        "a",
        [fx.benchmark_entry("matmul", "cuda:1", 0.005, gpu=gpu)],
        ["cuda:1"],
        "2026-11-01T00:00:00+00:00",
    )
    # CUDA_VISIBLE_DEVICES=1: the same physical GPU is cuda:0 in the next run
    renamed = {**gpu, "device": "cuda:0", "index": 0}
    write_run(
        tmp_path,
        "b",
        [fx.benchmark_entry("matmul", "cuda:0", 0.006, gpu=renamed)],
        ["cuda:0"],
        "2026-11-02T00:00:00+00:00",
    )
    trends = trend_table(load_runs(tmp_path).benchmarks, regression_pct=5.0)
    assert len(trends) == 1
    assert bool(trends["regression"].iloc[0])
    assert trends["device"].iloc[0] == "cuda:0"


def test_outlier_gpu_is_flagged_against_same_model_siblings(loaded: LoadedRuns) -> None:
    outliers = outlier_table(loaded.benchmarks, outlier_pct=10.0)
    assert "cpu" not in set(outliers["device"])
    flagged = outliers[outliers["outlier"]]
    assert list(
        zip(flagged["group"], flagged["device"], flagged["host"], flagged["gpu_uuid"], strict=True)
    ) == [("matmul-f32", "cuda:1", fx.HOST, fx.GPUS["cuda:1"]["uuid"])]
    medians = fx.MEDIANS["run2"]
    expected = (1 - medians["cuda:0"]["matmul"] / medians["cuda:1"]["matmul"]) * 100
    assert flagged["deficit_pct"].iloc[0] == pytest.approx(expected)


def test_outliers_need_siblings_of_the_same_model(tmp_path: Path) -> None:
    def gpu(index: int, name: str) -> dict[str, Any]:
        return {
            **fx.GPUS["cuda:0"],
            "device": f"cuda:{index}",
            "index": index,
            "name": name,
            "uuid": f"GPU-{index}",
        }

    entries = [
        fx.benchmark_entry("matmul", f"cuda:{i}", t, gpu=gpu(i, "A"))
        for i, t in enumerate((0.0050, 0.0051, 0.0049, 0.0070))
    ]
    entries.append(fx.benchmark_entry("matmul", "cuda:4", 0.0200, gpu=gpu(4, "B")))  # alone of its model
    write_run(tmp_path, "a", entries, [f"cuda:{i}" for i in range(5)], "2026-11-01T00:00:00+00:00")
    outliers = outlier_table(load_runs(tmp_path).benchmarks, outlier_pct=10.0)
    assert set(outliers["gpu_name"]) == {"A"}
    assert list(outliers.loc[outliers["outlier"], "gpu_uuid"]) == ["GPU-3"]
