"""Each series' last runs kept beside the store (report/recent.py): a windowed read gives what the whole
history cut to each series' last runs gives, whether the kept table was just built, merged with runs
ingested since, rebuilt after a saved run changed, or found damaged; the counts stay the whole history's."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from report_runs import FLEET

from gpubench.cli.app import main
from gpubench.config import ReportSection
from gpubench.report.build import build_report
from gpubench.report.load import LoadedRuns
from gpubench.report.recent import Totals, last_runs, meta_of, read_meta, totals_of
from gpubench.report.store import RECENT, ResultsStore

WINDOW = 3
KEY = ["run_id", "group", "case", "gpu_uuid"]


def _fleet(out: Path, days: int = 8) -> Path:
    FLEET.main(["generate", str(out), "--hosts", "2", "--gpus", "2", "--days", str(days), "--rounds", "6"])
    return out


def _cut(whole: pd.DataFrame, window: int) -> pd.DataFrame:
    """The rows of each (group, case, GPU)'s last ``window`` runs, from the whole history."""
    runs = whole.drop_duplicates(["group", "case", "gpu_uuid", "run_id"])
    runs = runs.sort_values(["run_time", "run_id"], kind="stable")
    last = runs.groupby(["group", "case", "gpu_uuid"]).tail(window)
    wanted = set(map(tuple, last[KEY].to_numpy().tolist()))
    return whole[[tuple(k) in wanted for k in whole[KEY].to_numpy().tolist()]]


def _same_rows(windowed: LoadedRuns, whole: LoadedRuns, window: int = WINDOW) -> None:
    columns = [*KEY, "run_time", "median_s", "throughput", "host"]
    expected = _cut(whole.benchmarks, window).sort_values(KEY)[columns].reset_index(drop=True)
    got = windowed.benchmarks.sort_values(KEY)[columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert len(windowed.runs) == len(whole.runs)  # the table of runs stays whole


def _history_counts(whole: LoadedRuns) -> tuple[dict[tuple[str, ...], int], dict[str, int]]:
    frame = whole.benchmarks
    series = frame.groupby(["group", "case", "gpu_uuid"])["run_id"].nunique()
    gpus = frame.groupby("gpu_uuid")["run_id"].nunique()
    return {tuple(map(str, k)): int(n) for k, n in series.items()}, {str(k): int(n) for k, n in gpus.items()}


def test_a_windowed_read_is_the_whole_history_cut_to_each_series_last_runs(tmp_path: Path) -> None:
    results = _fleet(tmp_path / "fleet")
    store = ResultsStore(results)
    store.ingest()
    whole = store.load()
    windowed = store.load(rounds_runs=2, window=WINDOW)
    _same_rows(windowed, whole)
    assert windowed.history is not None and whole.history is None
    series, gpus = _history_counts(whole)
    assert dict(windowed.history.series_runs) == series and set(series.values()) == {8}
    assert dict(windowed.history.gpu_runs) == gpus
    assert windowed.history.benchmark_rows == len(whole.benchmarks) > len(windowed.benchmarks)
    # the rounds of each series' last 2 runs, as the whole read keeps them
    assert windowed.samples and all(windowed.samples[k] == whole.samples[k] for k in windowed.samples)
    assert len(windowed.samples) == 2 * len(series)
    assert (results / "store" / RECENT / "benchmarks.parquet").is_file()


def test_runs_ingested_later_merge_into_the_kept_rows_as_a_rebuild_would(tmp_path: Path) -> None:
    full = _fleet(tmp_path / "full")
    later = tmp_path / "later"
    shutil.copytree(full, later)
    held = sorted((later / "benchmarks").rglob("000[6-8]_*.json"))
    assert len(held) == 6
    moved = {}
    for path in held:  # the last three nights are not saved yet
        moved[path] = (path.read_bytes(), path.stat().st_mtime_ns)
        path.unlink()
    first = ResultsStore(later)
    first.ingest()
    first.load(window=WINDOW)  # keeps the rows of nights 3-5
    for path, (data, mtime) in moved.items():
        path.write_bytes(data)
        os.utime(path, ns=(mtime, mtime))
    store = ResultsStore(later)
    assert store.ingest().runs == 6
    merged = store.load(rounds_runs=2, window=WINDOW)
    rebuilt_store = ResultsStore(full)
    rebuilt_store.ingest()
    rebuilt = rebuilt_store.load(rounds_runs=2, window=WINDOW)
    whole = rebuilt_store.load()
    _same_rows(merged, whole)
    _same_rows(rebuilt, whole)
    assert merged.history is not None and rebuilt.history is not None
    assert dict(merged.history.series_runs) == dict(rebuilt.history.series_runs)
    assert dict(merged.history.gpu_runs) == dict(rebuilt.history.gpu_runs)
    assert merged.history.benchmark_rows == rebuilt.history.benchmark_rows == len(whole.benchmarks)
    assert dict(merged.samples) == dict(rebuilt.samples)
    assert len(merged.runs) == len(whole.runs) == 16


def test_a_changed_saved_run_rebuilds_the_kept_rows(tmp_path: Path) -> None:
    results = _fleet(tmp_path / "fleet")
    store = ResultsStore(results)
    store.ingest()
    before = store.load(window=WINDOW)
    newest = sorted((results / "benchmarks" / "node00").glob("*.json"))[-1]
    newest.unlink()  # its batch's part goes; the kept rows covered it
    store = ResultsStore(results)
    store.ingest()
    after = store.load(window=WINDOW)
    _same_rows(after, store.load())
    assert after.history is not None and before.history is not None
    assert after.history.benchmark_rows == before.history.benchmark_rows - 4  # 2 GPUs x 2 benchmarks
    assert set(after.history.gpu_runs.values()) == {7, 8}


def test_a_damaged_kept_table_is_rebuilt_from_the_parts(tmp_path: Path) -> None:
    results = _fleet(tmp_path / "fleet")
    store = ResultsStore(results)
    store.ingest()
    store.load(window=WINDOW)
    kept = results / "store" / RECENT / "benchmarks.parquet"
    kept.write_bytes(b"PAR1 not a parquet file")
    again = ResultsStore(results).load(window=WINDOW)
    _same_rows(again, ResultsStore(results).load())
    assert read_meta(pq.read_schema(kept).metadata) is not None  # written again, whole


def test_another_window_is_not_read_from_a_kept_table_of_a_smaller_one(tmp_path: Path) -> None:
    results = _fleet(tmp_path / "fleet")
    store = ResultsStore(results)
    store.ingest()
    store.load(window=2)
    wider = store.load(window=WINDOW)
    _same_rows(wider, store.load())


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows)


def test_last_runs_keeps_whole_runs_groups_missing_keys_and_orders_ties_by_run_id() -> None:
    stamp = pd.Timestamp("2026-11-01T02:00:00Z").to_pydatetime()
    rows = [
        # a case run twice in run a: both rows are one run
        {"group": "g", "case": "c", "gpu_uuid": "U", "run_id": "a", "run_time": stamp},
        {"group": "g", "case": "c", "gpu_uuid": "U", "run_id": "a", "run_time": stamp},
        # two runs at the same time: the larger id is the later
        {"group": "g", "case": "c", "gpu_uuid": "U", "run_id": "c", "run_time": stamp},
        {"group": "g", "case": "c", "gpu_uuid": "U", "run_id": "b", "run_time": stamp},
        # no group (a case outside any group) and no UUID: still one series
        {"group": None, "case": "c", "gpu_uuid": None, "run_id": "x", "run_time": stamp},
        {"group": None, "case": "c", "gpu_uuid": None, "run_id": "y", "run_time": stamp},
    ]
    kept = last_runs(_table(rows), "benchmarks", 2).to_pylist()
    assert [r["run_id"] for r in kept] == ["c", "b", "x", "y"]
    kept = last_runs(_table(rows), "benchmarks", 1).to_pylist()
    assert [r["run_id"] for r in kept] == ["c", "y"]
    assert last_runs(_table(rows), "benchmarks", None).num_rows == 6
    totals = totals_of(_table(rows), "benchmarks")
    assert totals.rows == 6
    assert dict(totals.series_runs) == {("g", "c", "U"): 3, (None, "c", None): 2}
    assert dict(totals.gpu_runs) == {"U": 3, "None": 2}


def test_totals_add_up_and_survive_the_parquet_metadata() -> None:
    one = Totals(4, {("g", "c", "U"): 2}, {"U": 2})
    two = Totals(2, {("g", "c", "U"): 1, ("g", "d", "V"): 1}, {"U": 1, "V": 1})
    both = one.plus(two)
    assert both == Totals(6, {("g", "c", "U"): 3, ("g", "d", "V"): 1}, {"U": 3, "V": 1})
    window, parts, back = read_meta(meta_of(21, ["b", "a"], both)) or (None, None, None)
    assert (window, parts, back) == (21, ["a", "b"], both)
    assert read_meta(None) is None and read_meta({b"gpubench.recent": b"{not json"}) is None
    assert read_meta(meta_of(None, [], Totals(3, {}, {})))[0] is None  # type: ignore[index]


def test_the_report_counts_every_run_though_it_reads_the_last_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """gpubench report reads each series' last 21 runs: trends and the summary still count all 23."""
    results = tmp_path / "fleet"
    FLEET.main(["generate", str(results), "--hosts", "1", "--gpus", "1", "--days", "23", "--rounds", "6"])
    out = tmp_path / "report"
    assert main(["report", "--results-dir", str(results), "--output", str(out), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert "23 benchmark run(s), 0 verification run(s), 1 device(s), 46 benchmark rows" in printed
    assert (
        f"last 21 runs of each benchmark (42 of 46 rows); every run is in the results store {results / 'store'}"
        in printed
    )
    markdown = (out / "report.md").read_text("utf-8")
    assert markdown.count("(23 runs)") == 2  # one trend per benchmark
    assert len(pd.read_csv(out / "tidy.csv")) == 42
    # a second report reads the kept rows: the same figures
    assert (
        main(["report", "--results-dir", str(results), "--output", str(tmp_path / "again"), "--no-plots"])
        == 0
    )
    assert "23 benchmark run(s)" in capsys.readouterr().out


def test_a_report_over_a_small_history_says_nothing_about_a_window(tmp_path: Path) -> None:
    results = _fleet(tmp_path / "fleet", days=3)
    store = ResultsStore(results)
    store.ingest()
    loaded = store.load(window=21)
    report = build_report(results, ReportSection(plots=False), loaded=loaded)
    assert not any("last 21 runs" in line for line in report.summary)
    assert report.summary[1].startswith("6 benchmark run(s)")


def test_a_store_that_cannot_be_written_is_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared, read-only store: the kept rows cannot be written, the report's tables are the same."""
    results = _fleet(tmp_path / "fleet")
    store = ResultsStore(results)
    store.ingest()

    def refused(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pq, "write_table", refused)
    loaded = store.load(window=WINDOW)
    _same_rows(loaded, store.load())
    assert not (results / "store" / RECENT / "benchmarks.parquet").exists()
    assert not list((results / "store" / RECENT).glob(".*.tmp"))
