"""Reports from saved runs: loading into the tidy table, ratios, regression and outlier flags, damaged
files, hostile content, and ``gpubench report`` end to end on the two-run fixture in tests/data/runs."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from gpubench import report
from gpubench.config import ReportSection
from gpubench.report.html import render_html

RUNS = Path(__file__).parents[1] / "data" / "runs"


def _fixture_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpubench_report_fixtures", RUNS / "make_runs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


fx = _fixture_module()
NO_PLOTS = ReportSection(plots=False)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No dl.config.sdn, user config or GPUBENCH_* variable from the machine running the tests."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for var in list(__import__("os").environ):
        if var.startswith(("GPUBENCH_", "SIMPLE_DL_")):
            monkeypatch.delenv(var)
    return work


@pytest.fixture(scope="module")
def loaded() -> report.LoadedRuns:
    return report.load_runs(RUNS)


def _write_run(
    root: Path, key: str, entries: list[dict[str, Any]], devices: list[str], when: str, **kwargs: Any
) -> Path:
    run_id = f"run-{key}"
    path = root / "benchmarks" / "machine" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fx.benchmark_file(run_id, when, entries, devices=devices, **kwargs)), "utf-8")
    return path


# --- loading -------------------------------------------------------------------------------------------


def test_two_saved_runs_load_into_one_row_per_benchmark_device_and_run(loaded: report.LoadedRuns) -> None:
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


def test_rows_carry_timing_rates_and_the_device_free_case_name(loaded: report.LoadedRuns) -> None:
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


def test_telemetry_summary_columns_come_from_extra_info(loaded: report.LoadedRuns) -> None:
    frame = loaded.benchmarks
    traced = frame[frame["trace"].notna()]
    assert len(traced) == 6  # mnist and matmul on three devices in the second run
    assert {
        "gpu_util_mean_pct",
        "power_mean_w",
        "power_max_w",
        "energy_j",
        "sm_clock_mean_mhz",
        "cpu_util_mean_pct",
    } <= set(frame.columns)
    row = traced[(traced["device"] == "cuda:0") & (traced["group"] == "mnist-epoch")].iloc[0]
    trace = pd.read_csv(RUNS / row["trace"])
    assert row["power_mean_w"] == pytest.approx(trace["power_w"].mean(), abs=0.01)
    assert row["energy_j"] == pytest.approx(trace["energy_j"].iloc[-1] - trace["energy_j"].iloc[0], abs=0.01)
    assert math.isnan(frame[frame["trace"].isna()]["power_mean_w"].iloc[0])


def test_a_trace_without_a_summary_is_summarised_from_the_csv(tmp_path: Path) -> None:
    rows = fx.trace_rows("cuda:0", fx.GPUS["cuda:0"]["uuid"], seconds=1.0, t0=10.0, load=0.9)
    fx.write_csv(tmp_path / "telemetry" / "r" / "m.csv", fx.TRACE_COLUMNS_GPU, rows)
    entry = fx.benchmark_entry("matmul", "cuda:0", 0.005, trace="telemetry/r/m.csv")
    entry["extra_info"]["telemetry"] = {"trace": "telemetry/r/m.csv"}
    _write_run(tmp_path, "a", [entry], ["cuda:0"], "2026-11-01T00:00:00+00:00")
    frame = report.load_runs(tmp_path).benchmarks
    power = [float(r[5]) for r in rows]
    assert frame["power_mean_w"].iloc[0] == pytest.approx(sum(power) / len(power))
    assert frame["power_max_w"].iloc[0] == pytest.approx(max(power))
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
    assert report.flatten_telemetry(sampler) == {
        "power_mean_w": 200.0,
        "power_max_w": 250.0,
        "pcie_tx_mean_kb_per_s": 5.0,
        "util_mean_pct": 90.0,
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
    assert report.flatten_telemetry(nested) == {
        "power_mean_w": 200.0,
        "power_max_w": 250.0,
        "energy_j": 12.5,
        "telemetry_samples": 40.0,
    }
    flat = {"gpu_util_mean_pct": 91.0, "trace": "x.csv", "power_w": {"mean": float("nan")}}
    assert report.flatten_telemetry(flat) == {"gpu_util_mean_pct": 91.0}


def test_verification_runs_load_with_their_verdicts(loaded: report.LoadedRuns) -> None:
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
    assert report.case_name(name, devices) == expected


# --- ratios, regressions, outliers -------------------------------------------------------------------


def test_ratio_table_puts_devices_side_by_side(loaded: report.LoadedRuns) -> None:
    table = report.ratio_table(loaded.benchmarks, ["cuda:0", "cuda:1", "cpu"])
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


def test_ratio_denominator_follows_the_configured_order(loaded: report.LoadedRuns) -> None:
    table = report.ratio_table(loaded.benchmarks, ["cuda:1", "cuda:0"])
    assert list(table.columns)[-2:] == ["cuda:0 / cuda:1", "cpu / cuda:1"]
    mnist = table.loc["mnist-epoch / test_mnist_epoch[device_resident]"]
    medians = fx.MEDIANS["run2"]
    assert mnist["cuda:0 / cuda:1"] == pytest.approx(medians["cuda:1"]["mnist"] / medians["cuda:0"]["mnist"])


def test_cpu_only_data_gives_one_column_then_run_against_run(tmp_path: Path) -> None:
    first = [fx.benchmark_entry("add", "cpu", 0.010), fx.benchmark_entry("xor", "cpu", 2.0)]
    _write_run(tmp_path, "a", first, ["cpu"], "2026-11-01T00:00:00+00:00")
    one = report.ratio_table(report.load_runs(tmp_path).benchmarks)
    assert list(one.columns) == ["unit", "run-a"]
    second = [fx.benchmark_entry("add", "cpu", 0.008), fx.benchmark_entry("xor", "cpu", 2.5)]
    _write_run(tmp_path, "b", second, ["cpu"], "2026-11-02T00:00:00+00:00")
    two = report.ratio_table(report.load_runs(tmp_path).benchmarks)
    assert list(two.columns) == ["unit", "run-a", "run-b", "run-b / run-a"]
    assert two.loc["add-f32 / test_elementwise[add-f32-16777216]", "run-b / run-a"] == pytest.approx(
        0.010 / 0.008
    )
    assert two.loc["xor / test_xor_converge[100seeds]", "run-b / run-a"] == pytest.approx(2.0 / 2.5)


def test_regression_is_flagged_per_gpu_uuid(loaded: report.LoadedRuns) -> None:
    trends = report.trend_table(loaded.benchmarks, regression_pct=5.0)
    flagged = trends[trends["regression"]]
    assert list(zip(flagged["group"], flagged["gpu_uuid"], strict=True)) == [
        ("matmul-f32", fx.GPUS["cuda:1"]["uuid"])
    ]
    before, after = fx.MEDIANS["run1"]["cuda:1"]["matmul"], fx.MEDIANS["run2"]["cuda:1"]["matmul"]
    assert flagged["change_pct"].iloc[0] == pytest.approx((after / before - 1) * 100)
    assert flagged["previous_run"].iloc[0] == fx.RUNS["run1"]["run_id"]
    # just above the measured slowdown: nothing flagged
    looser = report.trend_table(loaded.benchmarks, regression_pct=(after / before - 1) * 100 + 0.1)
    assert not looser["regression"].any()


def test_regression_follows_the_uuid_when_the_index_changes(tmp_path: Path) -> None:
    gpu = dict(fx.GPUS["cuda:1"])
    _write_run(
        tmp_path,
        "a",
        [fx.benchmark_entry("matmul", "cuda:1", 0.005, gpu=gpu)],
        ["cuda:1"],
        "2026-11-01T00:00:00+00:00",
    )
    # CUDA_VISIBLE_DEVICES=1: the same physical GPU is cuda:0 in the next run
    renamed = {**gpu, "device": "cuda:0", "index": 0}
    _write_run(
        tmp_path,
        "b",
        [fx.benchmark_entry("matmul", "cuda:0", 0.006, gpu=renamed)],
        ["cuda:0"],
        "2026-11-02T00:00:00+00:00",
    )
    trends = report.trend_table(report.load_runs(tmp_path).benchmarks, regression_pct=5.0)
    assert len(trends) == 1
    assert bool(trends["regression"].iloc[0])
    assert trends["device"].iloc[0] == "cuda:0"


def test_outlier_gpu_is_flagged_against_same_model_siblings(loaded: report.LoadedRuns) -> None:
    outliers = report.outlier_table(loaded.benchmarks, outlier_pct=10.0)
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
    _write_run(tmp_path, "a", entries, [f"cuda:{i}" for i in range(5)], "2026-11-01T00:00:00+00:00")
    outliers = report.outlier_table(report.load_runs(tmp_path).benchmarks, outlier_pct=10.0)
    assert set(outliers["gpu_name"]) == {"A"}
    assert list(outliers.loc[outliers["outlier"], "gpu_uuid"]) == ["GPU-3"]


# --- damaged files and hostile content --------------------------------------------------------------


def _damaged_copy(tmp_path: Path) -> tuple[Path, list[Path]]:
    results = tmp_path / "results"
    shutil.copytree(RUNS, results, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    bench = results / "benchmarks" / fx.MACHINE_ID
    good = (bench / fx.RUNS["run1"]["file"]).read_text("utf-8")
    damaged = {
        bench / "0003_truncated.json": good[: len(good) // 2],
        bench / "0004_empty.json": "",
        bench / "0005_not-json.json": "this is not JSON\n",
        bench / "0006_wrong-schema.json": json.dumps({"hello": "world"}),
        bench / "0007_a-list.json": "[1, 2, 3]",
        results / "verify" / "broken.json": json.dumps({"schema": "something/else", "checks": []}),
        results / "verify" / "cut.json": '{"schema": "gpubench.verify/1", "checks": [',
    }
    for path, text in damaged.items():
        path.write_text(text, encoding="utf-8")
    return results, list(damaged)


def test_damaged_files_are_skipped_with_a_warning_naming_each(tmp_path: Path) -> None:
    results, damaged = _damaged_copy(tmp_path)
    loaded = report.load_runs(results)
    for path in damaged:
        assert sum(str(path) in w for w in loaded.warnings) == 1, (path, loaded.warnings)
    assert len(loaded.warnings) == len(damaged)
    assert len(loaded.benchmarks) == len(report.load_runs(RUNS).benchmarks)
    assert len(loaded.verify) == 8


def test_a_bad_entry_inside_a_good_file_is_skipped_alone(tmp_path: Path) -> None:
    entries: list[Any] = [fx.benchmark_entry("add", "cpu", 0.01), "not an entry", {"name": "no stats"}]
    path = _write_run(tmp_path, "a", entries, ["cpu"], "2026-11-01T00:00:00+00:00")
    loaded = report.load_runs(tmp_path)
    assert len(loaded.benchmarks) == 1
    assert [w.split(":")[0] for w in loaded.warnings] == [
        f"skipped {path} benchmark #1",
        f"skipped {path} benchmark #2",
    ]


def test_report_command_still_reports_the_rest_of_damaged_results(
    tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gpubench.cli import main

    results, damaged = _damaged_copy(tmp_path)
    out = tmp_path / "out"
    code = main(["report", "--results-dir", str(results), "--output", str(out), "--no-plots"])
    err = capsys.readouterr().err
    assert code == 0
    for path in damaged:
        assert str(path) in err
    markdown = (out / "report.md").read_text("utf-8")
    assert "Skipped or damaged files" in markdown
    assert "cuda:1 / cuda:0" in markdown


HOSTILE_NAME = "<script>alert('gpu')</script> | evil\x1b[31m\x07 \u202eGPU"
HOSTILE_HOST = 'node"><img src=x onerror=alert(1)>'
HOSTILE_CONFIG = "</td><b>dl.config.sdn</b>|x"


def _hostile_report(tmp_path: Path) -> report.Report:
    gpu = {**fx.GPUS["cuda:0"], "name": HOSTILE_NAME, "host": HOSTILE_HOST}
    entries = [
        fx.benchmark_entry("matmul", "cuda:0", 0.005, gpu=gpu),
        fx.benchmark_entry("add", "cpu", 0.01, gpu={**fx.GPUS["cpu"], "host": HOSTILE_HOST}),
    ]
    entries[0]["group"] = "matmul<i>|"
    path = _write_run(
        tmp_path, "a", entries, ["cuda:0", "cpu"], "2026-11-01T00:00:00+00:00", host=HOSTILE_HOST, gpus=[gpu]
    )
    data = json.loads(path.read_text("utf-8"))
    data["machine_info"]["gpubench"]["config_files"] = [HOSTILE_CONFIG]
    path.write_text(json.dumps(data), "utf-8")
    return report.build_report(tmp_path, NO_PLOTS)


def test_hostile_names_are_escaped_in_html(tmp_path: Path) -> None:
    page = render_html(_hostile_report(tmp_path))
    for raw in ("<script>alert", "<img src=x", "</td><b>", "<i>", "\x1b", "\x07", "\u202e"):
        assert raw not in page
    assert "&lt;script&gt;alert(&#x27;gpu&#x27;)&lt;/script&gt;" in page
    assert "node&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<script>") == 1  # the report's own image check, nothing else


def test_hostile_names_are_escaped_in_markdown_tables(tmp_path: Path) -> None:
    text = report.render_markdown(_hostile_report(tmp_path))
    for raw in ("<script>", "<img", "</td>", "<i>", "\x1b", "\x07", "\u202e"):
        assert raw not in text
    assert "&lt;script&gt;" in text
    # every row of a table has as many unescaped cell separators as its header: no cell broke out
    tables: list[list[int]] = [[]]
    for line in text.splitlines():
        if line.startswith("|"):
            tables[-1].append(line.replace("\\|", "").count("|"))
        elif tables[-1]:
            tables.append([])
    counted = [t for t in tables if t]
    assert len(counted) >= 4
    for table in counted:
        assert len(set(table)) == 1, table


def test_markdown_escape_and_control_stripping() -> None:
    assert report.strip_controls("a\x00b\x1b[0m\tc\u202ed\x85") == "ab[0m cd"
    assert report.md_escape("a|b<c>*[x](y)`") == "a\\|b&lt;c&gt;\\*\\[x\\](y)\\`"


# --- outputs and the command ----------------------------------------------------------------------------


def test_gpubench_report_turns_two_runs_into_every_output(
    tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gpubench.cli import main

    out = tmp_path / "out"
    assert main(["report", "--results-dir", str(RUNS), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("report.md", "report.html", "tidy.csv", "tidy.parquet"):
        assert (out / name).is_file(), name
        assert str(out / name) in printed
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert plots == ["throughput.png", "timeline_mnist-epoch_test_mnist_epoch_device_resident.png"]
    for png in (out / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (out / "report.md").read_text("utf-8")
    assert "| benchmark | unit | cuda:0 | cuda:1 | cpu | cuda:1 / cuda:0 | cpu / cuda:0 |" in markdown
    assert "](plots/throughput.png)" in markdown
    assert "### cuda:1 · NVIDIA Fixture GPU 24GB · fixture-node" in markdown
    assert "REGRESSION OUTLIER" in markdown
    page = (out / "report.html").read_text("utf-8")
    assert page.count('src="data:image/png;base64,') == 2
    for external in ("http://", "https://", 'src="//', "url("):
        assert external not in page
    csv = pd.read_csv(out / "tidy.csv")
    parquet = pd.read_parquet(out / "tidy.parquet")
    assert len(csv) == len(parquet) == len(report.load_runs(RUNS).benchmarks)
    assert list(parquet.columns) == list(csv.columns)
    assert str(parquet["run_time"].dt.tz) == "UTC"


def test_default_output_goes_under_results_report(tmp_path: Path, isolated: Path) -> None:
    from gpubench.cli import main

    results = tmp_path / "results"
    shutil.copytree(RUNS, results, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    assert main(["report", "--results-dir", str(results), "--no-plots", "--set", "report.formats=md"]) == 0
    written = list((results / "report").glob("*/report.md"))
    assert len(written) == 1
    assert not list((results / "report").glob("*/tidy.csv"))
    # a second report in the same second gets its own folder
    stamp = report.default_output_dir(results)
    assert stamp.parent == (results / "report").resolve()


def test_no_runs_exits_2_and_says_how_to_make_one(
    tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gpubench.cli import main

    assert main(["report", "--results-dir", str(tmp_path / "nothing-here")]) == 2
    err = capsys.readouterr().err
    assert "pytest bench" in err
    assert "gpubench verify" in err


def test_unknown_timeline_benchmark_exits_2_listing_the_choices(
    tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gpubench.cli import main

    code = main(
        ["report", "--results-dir", str(RUNS), "--output", str(tmp_path / "o"), "--benchmark", "nope"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "'nope' matches no traced benchmark" in err
    assert "matmul-f32 / test_matmul[f32-4096]" in err


def test_timeline_benchmark_is_chosen_by_name_or_the_longest_trace(loaded: report.LoadedRuns) -> None:
    frame = loaded.benchmarks
    assert (
        report.choose_timeline_benchmark(frame, RUNS, None)
        == "mnist-epoch / test_mnist_epoch[device_resident]"
    )
    assert report.choose_timeline_benchmark(frame, RUNS, "matmul") == "matmul-f32 / test_matmul[f32-4096]"


def test_missing_parquet_engine_skips_parquet_only(
    tmp_path: Path, loaded: report.LoadedRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_engine(self: pd.DataFrame, *args: Any, **kwargs: Any) -> None:
        raise ImportError("Unable to find a usable engine; tried using: 'pyarrow', 'fastparquet'.")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", no_engine)
    messages: list[str] = []
    built = report.build_report(RUNS, NO_PLOTS, loaded=loaded)
    written = report.write_report(built, tmp_path, ("md", "csv", "parquet"), warn=messages.append)
    assert "parquet" not in written
    assert {"md", "csv"} <= set(written)
    assert len(messages) == 1
    assert "tidy.parquet not written" in messages[0]


def test_gpu_pages_are_keyed_by_uuid_and_show_latest_verdicts(loaded: report.LoadedRuns) -> None:
    built = report.build_report(RUNS, NO_PLOTS, loaded=loaded)
    pages = {p.uuid: p for p in built.pages}
    assert list(pages) == [fx.GPUS[d]["uuid"] for d in ("cuda:0", "cuda:1", "cpu")]
    cuda1 = pages[fx.GPUS["cuda:1"]["uuid"]]
    assert cuda1.title == f"cuda:1 · {fx.GPU_MODEL} · {fx.HOST}"
    assert ("PCI bus id", fx.GPUS["cuda:1"]["pci_bus_id"]) in cuda1.identity
    assert cuda1.verification.rows[0][:2] == ("temperature", "WARN")
    assert "1 WARN, 3 PASS" in cuda1.verification_caption
    flagged = [row for row, flag in zip(cuda1.benchmarks.rows, cuda1.benchmarks.flagged, strict=True) if flag]
    assert [row[0] for row in flagged] == ["matmul-f32 / test_matmul[f32-4096]"]
    assert "No verification run" in pages[f"cpu-{fx.HOST}"].verification_caption


def test_fallback_rows_say_so_on_the_device_page(tmp_path: Path) -> None:
    note = "FALLBACK: cuda:1 is not visible (only 1 GPU); ran on cpu"
    entry = fx.benchmark_entry("add", "cpu", 0.01, requested="cuda:1", fallback_note=note)
    _write_run(
        tmp_path,
        "a",
        [entry, fx.benchmark_entry("add", "cuda:0", 0.001)],
        ["cuda:0", "cuda:1"],
        "2026-11-01T00:00:00+00:00",
    )
    built = report.build_report(tmp_path, dataclasses.replace(NO_PLOTS))
    cpu = next(p for p in built.pages if p.uuid == f"cpu-{fx.HOST}")
    assert cpu.notes == (note,)
    assert cpu.benchmarks.rows[0][-1] == "FALLBACK"
    frame = report.load_runs(tmp_path).benchmarks
    assert set(frame["case"]) == {"test_elementwise[add-f32-16777216]"}
