"""The incremental results store: each saved run ingested once, damaged files named once, the same tables
as reading every JSON file, rebuilt when deleted, plain hive-partitioned Parquet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from report_runs import RUNS, damaged_copy

from gpubench.report.load import load_runs
from gpubench.report.store import ResultsStore, load_store


def _copy(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    shutil.copytree(RUNS, results, ignore=shutil.ignore_patterns("*.py", "__pycache__", "store"))
    return results


def test_the_store_holds_what_reading_every_file_gives(tmp_path: Path) -> None:
    results = _copy(tmp_path)
    direct = load_runs(results)
    stored, ingested = load_store(results)
    assert ingested.runs == len(direct.runs)
    bench = direct.benchmarks.reset_index(drop=True)
    again = stored.benchmarks.reset_index(drop=True)
    assert list(again.columns) == list(bench.columns)
    for column in ("run_id", "gpu_uuid", "case", "median_s", "throughput", "power_w_mean"):
        pd.testing.assert_series_equal(again[column], bench[column], check_dtype=False)
    assert stored.samples == direct.samples
    assert len(stored.verify) == len(direct.verify) and len(stored.runs) == len(direct.runs)


def test_ingesting_again_is_a_no_op_and_a_new_run_is_read_alone(tmp_path: Path) -> None:
    results = _copy(tmp_path)
    load_store(results)
    _, again = load_store(results)
    assert (again.files, again.runs) == (0, 0)
    source = next((results / "benchmarks").rglob("0001_*.json"))
    data = json.loads(source.read_text("utf-8"))
    data["gpubench"] = {"run_id": "a-new-night"}
    data["datetime"] = "2026-12-01T02:00:00+00:00"
    (source.parent / "0009_new.json").write_text(json.dumps(data), "utf-8")
    loaded, new = load_store(results)
    assert (new.files, new.runs) == (1, 1)
    assert "a-new-night" in set(loaded.benchmarks["run_id"])
    parts = sorted(p.relative_to(results / "store") for p in (results / "store").rglob("*.parquet"))
    assert any(str(p).startswith("benchmarks/run_date=2026-12-01/") for p in parts)


def test_a_damaged_file_is_named_once_and_remembered(tmp_path: Path) -> None:
    results, damaged = damaged_copy(tmp_path)
    _, first = load_store(results)
    for path in damaged:
        assert any(str(path) in w for w in first.warnings), path
    loaded, second = load_store(results)
    assert second.warnings == () and second.files == 0
    assert len(loaded.warnings) >= len(damaged)  # the report still lists them, from the ledger
    ledger = json.loads((results / "store" / "ledger.json").read_text("utf-8"))
    assert sum(e["status"] == "damaged" for e in ledger["files"].values()) == len(damaged)


def test_a_deleted_store_is_rebuilt_and_a_deleted_run_leaves_it(tmp_path: Path) -> None:
    results = _copy(tmp_path)
    before, _ = load_store(results)
    shutil.rmtree(results / "store")
    rebuilt, ingested = load_store(results)
    assert ingested.runs == len(before.runs) and len(rebuilt.benchmarks) == len(before.benchmarks)
    gone = next((results / "benchmarks").rglob("0001_*.json"))
    run_id = str(before.runs[before.runs["source_file"] == str(gone)]["run_id"].iloc[0])
    gone.unlink()
    after, _ = load_store(results)
    assert run_id not in set(after.benchmarks["run_id"]) and len(after.benchmarks) < len(before.benchmarks)


def test_parts_are_plain_parquet_with_hive_dates(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.dataset as ds

    results = _copy(tmp_path)
    load_store(results)
    table = ds.dataset(results / "store" / "benchmarks", format="parquet", partitioning="hive").to_table()
    assert "run_date" in table.column_names and table.num_rows == len(load_runs(results).benchmarks)
    assert ResultsStore(results).schema("benchmarks").field("rounds_s").type.value_type.bit_width == 64


def test_a_part_the_ledger_does_not_list_is_not_read(tmp_path: Path) -> None:
    """A report killed after writing a part but before its ledger leaves an orphan: never counted twice."""
    results = _copy(tmp_path)
    before, _ = load_store(results)
    part = next((results / "store" / "benchmarks").rglob("*.parquet"))
    shutil.copy(part, part.with_name("orphan.parquet"))
    after, _ = load_store(results)
    assert len(after.benchmarks) == len(before.benchmarks)
