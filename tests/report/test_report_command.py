"""``gpubench report`` end to end on the two-run fixture in tests/data/runs: every output, the default
folder, damaged results, no runs, an unknown timeline benchmark, and a missing Parquet engine."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from report_runs import NO_PLOTS, RUNS, damaged_copy

from gpubench.report.build import build_report
from gpubench.report.load import LoadedRuns, load_runs
from gpubench.report.outputs import default_output_dir, write_report


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


def test_report_command_still_reports_the_rest_of_damaged_results(
    tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gpubench.cli import main

    results, damaged = damaged_copy(tmp_path)
    out = tmp_path / "out"
    code = main(["report", "--results-dir", str(results), "--output", str(out), "--no-plots"])
    err = capsys.readouterr().err
    assert code == 0
    for path in damaged:
        assert str(path) in err
    markdown = (out / "report.md").read_text("utf-8")
    assert "Skipped or damaged files" in markdown
    assert "cuda:1 / cuda:0" in markdown


def test_gpubench_report_turns_two_runs_into_every_output(
    tmp_path: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gpubench.cli import main

    out = tmp_path / "out"
    assert (
        main(["report", "--results-dir", str(RUNS), "--output", str(out), "--store", str(tmp_path / "s")])
        == 0
    )
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
    assert len(csv) == len(parquet) == len(load_runs(RUNS).benchmarks)
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
    stamp = default_output_dir(results)
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
        [
            "report",
            "--results-dir",
            str(RUNS),
            "--output",
            str(tmp_path / "o"),
            "--benchmark",
            "nope",
            "--store",
            str(tmp_path / "s"),
        ],
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "'nope' matches no traced benchmark" in err
    assert "matmul-f32 / test_matmul[f32-4096]" in err


def test_missing_parquet_engine_skips_parquet_only(
    tmp_path: Path, loaded: LoadedRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = build_report(RUNS, NO_PLOTS, loaded=loaded)
    for name in ("pyarrow", "pyarrow.csv", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)  # `import pyarrow` now raises ImportError
    messages: list[str] = []
    written = write_report(built, tmp_path, ("md", "csv", "parquet"), warn=messages.append)
    assert "parquet" not in written
    assert {"md", "csv"} <= set(written)
    assert len(messages) == 1
    assert "tidy.parquet not written" in messages[0]
    # tidy.csv came from pandas' writer instead: the same rows
    monkeypatch.undo()
    assert len(pd.read_csv(written["csv"])) == len(loaded.benchmarks)
