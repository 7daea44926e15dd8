"""What keeps a fleet's report fast (issue 16), checked for sameness with the plain way: the Arrow CSV
writer against pandas' ``to_csv``, the sibling index against a list of all the others, the trend table's
last runs against the whole history, the store's batched ingest against one batch, the date of a run
against pandas' reading of it, the bulk check of saved rounds against one value at a time."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from report_runs import RUNS

from gpubench.report import store as store_module
from gpubench.report.analysis import Siblings, trend_table
from gpubench.report.load import _raw_rounds
from gpubench.report.outputs import write_csv
from gpubench.report.store import ResultsStore, _partition, load_store


def test_the_csv_reads_back_as_pandas_own_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "text": ["plain", "a,comma", None, 'a "quote"'],
            "whole": pd.to_datetime(
                ["2026-11-01T02:00:00Z", None, "2026-11-01T03:00:00Z", "2026-11-01T04:00:00Z"],
                utc=True,
                format="ISO8601",
            ),
            "fraction": pd.to_datetime(
                ["2026-11-01T02:00:00.5Z", None, "2026-11-01T03:00:00Z", "2026-11-01T04:00:00.25Z"],
                utc=True,
                format="ISO8601",
            ),
            "number": [1.5, math.nan, 1e-05, 0.1],
            "flag": [True, False, True, False],
        }
    )
    path = write_csv(frame, tmp_path / "tidy.csv")
    reference = tmp_path / "pandas.csv"
    reference.write_text(frame.to_csv(index=False), "utf-8")
    ours, theirs = pd.read_csv(path), pd.read_csv(reference)
    for column in ("whole", "fraction"):  # pandas prints milliseconds here, six digits there: the same times
        ours[column], theirs[column] = pd.to_datetime(ours[column]), pd.to_datetime(theirs[column])
    pd.testing.assert_frame_equal(ours, theirs)
    lines = path.read_text("utf-8").splitlines()
    assert lines[1] == '"plain","2026-11-01 02:00:00+00:00","2026-11-01 02:00:00.500000+00:00",1.5,"True"'
    assert lines[2] == '"a,comma",,,,"False"'


def test_a_column_of_mixed_objects_goes_through_pandas(tmp_path: Path) -> None:
    frame = pd.DataFrame({"mixed": ["text", 3, 2.5], "n": [1.0, 2.0, 3.0]})
    path = write_csv(frame, tmp_path / "mixed.csv")
    assert path.read_text("utf-8") == frame.to_csv(index=False)


throughputs = st.lists(st.sampled_from([1.0, 2.0, 2.0, 3.0, 5.0, 8.0, 8.0, 13.0]), min_size=2, max_size=12)


@given(throughputs)
def test_siblings_give_what_a_list_of_all_the_others_gives(values: list[float]) -> None:
    members = [{"throughput": v, "n": i} for i, v in enumerate(values)]
    siblings = Siblings(members)
    for i, member in enumerate(members):
        others = [m for j, m in enumerate(members) if j != i]
        median = statistics.median(float(m["throughput"]) for m in others)
        assert siblings.others_median(i) == median
        expected = min(others, key=lambda m: abs(float(m["throughput"]) - median))
        assert siblings.nearest(i, median) is expected, (values, i)
        probe = float(member["throughput"]) + 0.5  # a value between members, not a median
        assert siblings.nearest(i, probe) is min(others, key=lambda m: abs(float(m["throughput"]) - probe))


def _history(runs: int) -> pd.DataFrame:
    start = pd.Timestamp("2026-11-01T02:00:00Z")
    medians = [0.010 * (1.0 + 0.01 * ((7 * k) % 5)) for k in range(runs)]
    return pd.DataFrame(
        {
            "run_id": [f"run{k:03d}" for k in range(runs)],
            "run_time": [start + pd.Timedelta(days=k) for k in range(runs)],
            "group": "matmul",
            "case": "test_matmul[f32]",
            "gpu_uuid": "GPU-1",
            "gpu_name": "NVIDIA H100",
            "device": "cuda:0",
            "host": "node00",
            "median_s": medians,
            "iqr_s": 0.0001,
            "rounds": 10.0,
        }
    )


def test_a_long_trend_counts_every_run_and_reads_only_the_last_ones() -> None:
    frame = _history(40)
    row = trend_table(frame, regression_pct=5.0).iloc[0]
    assert row["runs"] == 40
    assert row["history"].endswith("(40 runs)")
    window = sorted(frame["median_s"].iloc[-6:-1])  # the baseline: median of the previous 5 runs
    assert row["previous_median_s"] == window[2]
    assert row["latest_run"] == "run039" and row["baseline_runs"] == 5
    # the same row from the last 21 runs alone, but for the count
    short = trend_table(frame.iloc[-21:], regression_pct=5.0).iloc[0]
    for column in ("previous_run", "previous_median_s", "latest_median_s", "change_pct", "verdict"):
        assert row[column] == short[column], column


def _results(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    shutil.copytree(RUNS, results, ignore=shutil.ignore_patterns("*.py", "__pycache__", "store"))
    return results


def _assert_same_rows(stored: Any, one: Any) -> None:
    """The same benchmark rows (in key order) and saved rounds as the store ingested in one batch."""
    columns = ["run_id", "gpu_uuid", "case", "median_s", "throughput"]
    key = ["run_id", "group", "case", "gpu_uuid"]
    left = one.benchmarks.sort_values(key)[columns].reset_index(drop=True)
    right = stored.benchmarks.sort_values(key)[columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right, check_dtype=False)
    assert dict(stored.samples) == dict(one.samples)


def test_a_batched_ingest_stores_what_one_batch_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, _ = load_store(_results(tmp_path / "one"))
    monkeypatch.setattr(store_module, "INGEST_BATCH", 2)
    results = _results(tmp_path / "batched")
    seen: list[tuple[int, int]] = []
    store = ResultsStore(results)
    ingested = store.ingest(lambda done, total: seen.append((done, total)), workers=1)
    total = len(store.sources())
    assert total > 2 and ingested.files == total
    assert seen == [(min(done, total), total) for done in range(2, total + 2, 2)]
    batched = store.load()
    _assert_same_rows(batched, one)


def test_an_interrupted_ingest_keeps_the_batches_it_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "INGEST_BATCH", 2)
    results = _results(tmp_path)
    readers = {n: getattr(store_module, n) for n in ("benchmark_file_rows", "verify_file_rows")}
    calls: list[Path] = []

    def interrupted_at_the_third(name: str) -> Any:
        def read(path: Path, *args: Any) -> Any:
            calls.append(path)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return readers[name](path, *args)

        return read

    for name in readers:
        monkeypatch.setattr(store_module, name, interrupted_at_the_third(name))
    with pytest.raises(KeyboardInterrupt):
        ResultsStore(results).ingest(workers=1)
    kept = ResultsStore(results)
    assert set(kept.files) == {str(p.relative_to(results)) for p in calls[:2]}
    for name, reader in readers.items():
        monkeypatch.setattr(store_module, name, reader)
    again = kept.ingest(workers=1)
    assert again.files == len(kept.sources()) - 2  # the two stored files are not read again


def test_batches_read_by_worker_processes_store_what_one_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, _ = load_store(_results(tmp_path / "one"))
    monkeypatch.setattr(store_module, "INGEST_BATCH", 1)
    results = _results(tmp_path / "workers")
    seen: list[tuple[int, int]] = []
    store = ResultsStore(results)
    total = len(store.sources())
    ingested = store.ingest(lambda done, total: seen.append((done, total)), workers=2)
    assert (ingested.files, ingested.runs) == (total, len(one.runs))
    assert seen == [(done, total) for done in range(1, total + 1)]
    again = ResultsStore(results)  # the ledger on disk lists every file, each with its parts
    assert set(again.files) == {str(p.relative_to(results)) for p in again.sources()}
    assert again.ingest(workers=2).files == 0
    loaded = again.load()
    _assert_same_rows(loaded, one)
    assert len(loaded.verify) == len(one.verify)


@pytest.mark.parametrize(
    ("when", "date"),
    [
        ("2026-11-01T02:00:00+00:00", "2026-11-01"),
        ("2026-11-01T23:30:00-02:00", "2026-11-02"),  # UTC's date, not the local one
        ("2026-11-01T02:00:00Z", "2026-11-01"),
        ("2026-11-01T02:00:00", "2026-11-01"),  # no offset: read as UTC
        ("2026-11-01", "2026-11-01"),
        ("not a time", "unknown"),
        ("", "unknown"),
    ],
)
def test_a_run_s_partition_date_is_its_utc_date(when: str, date: str) -> None:
    assert _partition({"run_time": when, "host": "node03"}) == (date, "node03")


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        ([0.5, 0.25], (0.5, 0.25)),
        ([1, 2.0], (1.0, 2.0)),  # an int goes the careful way and is kept
        ([0.5, math.nan], ()),
        ([0.5, math.inf], ()),
        ([0.5, -0.1], ()),
        ([0.5, 0.0], ()),
        ([0.5, True], ()),
        ([0.5, "0.1"], ()),
        ([1e308, 1e308], (1e308, 1e308)),  # their sum overflows: checked one by one, and kept
        ([], ()),
        (None, ()),
    ],
)
def test_saved_rounds_are_kept_only_when_every_one_is_a_positive_time(
    data: Any, kept: tuple[float, ...]
) -> None:
    assert _raw_rounds(data) == kept


def test_the_report_keeps_the_rounds_of_each_trend_s_last_runs_only(tmp_path: Path) -> None:
    results = tmp_path / "results"  # two runs that saved their rounds, and a third made from the second
    shutil.copytree(Path(__file__).parent / "noise_runs" / "same-code", results)
    folder = results / "benchmarks" / "recording-host"
    third = json.loads((folder / "0002_run2-same-code.json").read_text("utf-8"))
    third["datetime"] = "2030-01-01T00:00:00+00:00"
    third["gpubench"] = {"run_id": "the-third-run"}
    (folder / "0003_third.json").write_text(json.dumps(third), "utf-8")
    every, _ = load_store(results)
    latest = ResultsStore(results).load(rounds_runs=1)
    bench = every.benchmarks
    last_run = bench.groupby(["group", "case", "gpu_uuid"])["run_id"].last()
    expected = {key for key in every.samples if last_run.get((key[1], key[2], key[3])) == key[0]}
    assert expected and len(expected) < len(every.samples)  # the fixture has older runs with rounds too
    assert set(latest.samples) == expected
    assert all(latest.samples[key] == every.samples[key] for key in expected)
    pd.testing.assert_frame_equal(latest.benchmarks, every.benchmarks)


def test_an_interrupt_stops_the_worker_processes_and_keeps_their_finished_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "INGEST_BATCH", 1)
    results = _results(tmp_path)
    seen: list[int] = []

    def interrupted_after_the_first(done: int, total: int) -> None:
        seen.append(done)
        raise KeyboardInterrupt  # as the report's Ctrl-C handler raises it

    with pytest.raises(KeyboardInterrupt):
        ResultsStore(results).ingest(interrupted_after_the_first, workers=2)
    assert seen == [1]
    kept = ResultsStore(results)
    assert len(kept.files) == 1  # the first batch, in the ledger written before the interrupt
    again = kept.ingest(workers=1)
    assert again.files == len(kept.sources()) - 1


def test_an_interrupt_at_the_last_batch_ends_though_a_worker_waits_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last batch: the other worker has finished its share and waits. multiprocessing.Pool's
    terminate() took the task queue's lock, which such a worker holds, and could hang here."""
    monkeypatch.setattr(store_module, "INGEST_BATCH", 1)
    results = _results(tmp_path)
    total = len(ResultsStore(results).sources())
    assert total >= 3

    def interrupted_before_the_last(done: int, total_: int) -> None:
        if done == total_ - 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ResultsStore(results).ingest(interrupted_before_the_last, workers=2)
    kept = ResultsStore(results)
    assert len(kept.files) == total - 1
    assert kept.ingest(workers=1).files == 1


def test_every_atomic_write_is_synced_before_its_rename_and_its_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from gpubench import results

    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    target = results.atomic_write_text(tmp_path / "kept.json", "{}")
    assert synced[-1] == str(tmp_path) and synced[-2].startswith(str(tmp_path / ".kept.json."))
    synced.clear()
    store = ResultsStore(_results(tmp_path / "store"))
    store.ingest(workers=1)
    ledger = store.root / "ledger.json"
    assert str(ledger.parent) in synced and str(ledger.with_name(".ledger.json.tmp")) in synced
    assert any(path.endswith(".parquet.tmp") for path in synced)
    assert target.read_text("utf-8") == "{}"


def test_a_library_call_ingests_in_its_own_process_unless_it_asks_for_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "INGEST_BATCH", 1)
    results = _results(tmp_path)
    reader, calls = store_module.benchmark_file_rows, []

    def counted(path: Path, *args: Any) -> Any:
        calls.append(path)  # seen only when the batch is read in this process
        return reader(path, *args)

    monkeypatch.setattr(store_module, "benchmark_file_rows", counted)
    ResultsStore(results).ingest()  # several batches, no workers asked for
    assert len(calls) == len(list((results / "benchmarks").rglob("*.json")))
    assert 1 <= store_module.ingest_workers() <= store_module.MAX_INGEST_WORKERS
