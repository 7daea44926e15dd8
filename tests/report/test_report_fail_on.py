"""Real saved runs with every round kept (tests/report/noise_runs, recorded by its record.py on a shared,
loaded machine): the same code twice raises no flag, code made slower on purpose is flagged with its ratio
and interval; and ``gpubench report --fail-on`` turns what the report finds into the exit status."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from report_runs import RUNS, fx, write_run

from gpubench.config import ReportSection
from gpubench.report.analysis import trend_table
from gpubench.report.build import noise_rule
from gpubench.report.columns import BENCHMARK_COLUMNS
from gpubench.report.load import load_runs

NOISE_RUNS = Path(__file__).parent / "noise_runs"
SAME_CODE, SLOWED = NOISE_RUNS / "same-code", NOISE_RUNS / "slowed"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No dl.config.sdn, user config or GPUBENCH_* variable from the machine running the tests."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for var in list(os.environ):
        if var.startswith(("GPUBENCH_", "SIMPLE_DL_")):
            monkeypatch.delenv(var)
    return work


def report(results: Path, out: Path, *extra: str) -> int:
    from gpubench.cli import main

    # the results store goes beside the output, never into the tracked fixture folders
    store = ["--store", str(out.parent / f"{out.name}-store")]
    return main(["report", "--results-dir", str(results), "--output", str(out), "--no-plots", *store, *extra])


def test_saved_rounds_are_loaded_beside_the_tidy_table() -> None:
    loaded = load_runs(SAME_CODE)
    assert not loaded.warnings
    assert len(loaded.samples) == 4  # 2 cases x 2 runs, every round kept
    assert all(len(data) >= 25 for data in loaded.samples.values())  # --benchmark-min-rounds=25
    stats_rounds = loaded.benchmarks.set_index(["run_id", "group", "case", "gpu_uuid"])["rounds"]
    assert {k: float(len(v)) for k, v in loaded.samples.items()} == stats_rounds.to_dict()
    assert list(loaded.benchmarks.columns[: len(BENCHMARK_COLUMNS)]) == list(BENCHMARK_COLUMNS)
    assert "_data" not in loaded.benchmarks.columns


def test_two_runs_of_the_same_code_under_load_raise_no_flag() -> None:
    loaded = load_runs(SAME_CODE)
    trends = trend_table(loaded.benchmarks, 5.0, loaded.samples)
    assert len(trends) == 2
    assert not trends["regression"].any(), trends["comparison"].tolist()
    assert set(trends["verdict"]) <= {"within noise", "within threshold", "too noisy", "faster"}
    assert all(m.startswith("Mann-Whitney") for m in trends["method"])


def test_a_deliberately_slowed_case_is_flagged_with_ratio_and_interval() -> None:
    loaded = load_runs(SLOWED)
    trends = trend_table(loaded.benchmarks, 5.0, loaded.samples).set_index("case")
    sort = trends.loc["test_sort"]
    assert bool(sort["regression"])
    assert sort["ratio_low"] > 1.05
    assert sort["ratio_low"] < sort["ratio"] < sort["ratio_high"]
    assert sort["comparison"].startswith("slower +")
    assert f"×{sort['ratio']:.3f} [{sort['ratio_low']:.3f}–{sort['ratio_high']:.3f}]" in sort["comparison"]
    assert not bool(trends.loc["test_sum", "regression"])  # unchanged code


def test_fail_on_exits_1_on_the_regression_and_0_on_same_code_runs(
    tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report(SAME_CODE, tmp_path / "same", "--fail-on", "regression,outlier") == 0
    same = (tmp_path / "same" / "report.md").read_text("utf-8")
    assert "REGRESSION" not in same
    assert "within noise (±" in same or "too noisy to compare" in same
    assert report(SLOWED, tmp_path / "slowed", "--fail-on", "regression,outlier") == 1
    assert "--fail-on: found 1 regression(s); exit 1" in capsys.readouterr().err
    # without --fail-on the report is written and the exit status stays 0
    assert report(SLOWED, tmp_path / "plain") == 0
    assert "REGRESSION" in (tmp_path / "plain" / "report.md").read_text("utf-8")


def test_fail_on_outlier_gates_on_same_model_siblings(tmp_path: Path, isolated: Path) -> None:
    # the two-run fixture: cuda:1 is 25% slower than its sibling cuda:0 on matmul in the latest run
    assert report(RUNS, tmp_path / "a", "--fail-on", "outlier") == 1
    assert report(SAME_CODE, tmp_path / "b", "--fail-on", "outlier") == 0


def test_fail_on_missed_target_is_ignored_with_a_note_when_no_run_records_targets(
    tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report(SAME_CODE, tmp_path / "out", "--fail-on", "missed-target") == 0
    assert "record no targets; ignored" in capsys.readouterr().err


def test_fail_on_missed_target_reads_the_targets_the_cases_recorded(tmp_path: Path, isolated: Path) -> None:
    def entry(met: bool) -> dict[str, Any]:
        item: dict[str, Any] = fx.benchmark_entry("mnist", "cpu", 9.0)
        target = {
            "name": "resident / dataloader",
            "wanted": 3.0,
            "measured": 3.5 if met else 2.8,
            "unit": "x",
        }
        item["extra_info"]["targets"] = [{**target, "met": met, "status": "met" if met else "missed"}]
        return item

    results = tmp_path / "results"
    write_run(results, "a", [entry(met=False)], ["cpu"], "2026-11-01T00:00:00+00:00")
    assert report(results, tmp_path / "one", "--fail-on", "missed-target") == 1
    write_run(results, "b", [entry(met=True)], ["cpu"], "2026-11-02T00:00:00+00:00")
    assert report(results, tmp_path / "two", "--fail-on", "missed-target") == 0  # only the latest run counts
    tidy = load_runs(results).benchmarks
    assert list(tidy["targets_missed"]) == [1.0, 0.0]


def test_fail_on_refuses_an_unknown_finding(
    tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report(SAME_CODE, tmp_path / "out", "--fail-on", "regression,slowness") == 2
    assert "'slowness'" in capsys.readouterr().err


def test_the_noise_rule_comes_from_the_flag_then_the_settings() -> None:
    assert noise_rule(ReportSection()).alpha == 0.01
    assert noise_rule(ReportSection(), alpha=0.05).alpha == 0.05
