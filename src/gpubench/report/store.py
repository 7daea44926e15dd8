"""The incremental results store: every saved run ingested once into a Parquet dataset, read back whole or
as each series' last runs.

pytest-benchmark's JSON files (``benchmarks/**/*.json``, distributed runs merged there too) and gpubench's
verification results (``verify/*.json``) stay the source of truth; the store is a cache of what
:mod:`gpubench.report.load` makes of them (telemetry summaries included), so deleting it only costs one
cold rebuild. Layout (``<results>/store/`` by default; schema and an example query in docs/store.md)::

    store/ledger.json                                         which files were ingested (size, mtime), which
                                                              were damaged and why, the columns and their types
    store/benchmarks/run_date=2026-11-01/<key>-benchmarks.parquet   one row per benchmark per GPU
    store/verify/run_date=.../<key>-verify.parquet                  one row per verification check
    store/runs/run_date=.../<key>-<kind>.parquet                    one row per saved run
    store/recent/<table>.parquet                                    each series' last runs (report.recent)

Plain Parquet with hive partitioning by ``run_date`` (host is a column: docs/store.md says why), so Spark,
Trino or BigQuery read the folders unchanged. Reading it back into pandas: :mod:`gpubench.report.frames`.
``<key>`` is a hash of the batch's file names: a changed file's part is removed and the batch's other files
read again, and a file whose size or modification time is unchanged is not read at all. A damaged file is named once (the ingest's
warnings) and remembered in the ledger as damaged, so later reports list it without re-reading it or
warning again. Files are written to a temporary name and renamed; the ledger last.

Over 600 lines on purpose: the ledger, the parts and the kept last runs are one consistency unit (what
the ledger lists is what is read; a replaced part invalidates the kept rows; workers' parts join the
ledger in batch order), so they stay one class. What is not bookkeeping lives apart: the window arithmetic
in :mod:`gpubench.report.recent`, the conversion to pandas in :mod:`gpubench.report.frames`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpubench.report.columns import BENCHMARK_COLUMNS, RUN_COLUMNS, VERIFY_COLUMNS
from gpubench.report.frames import ROUNDS_COLUMN, sorted_by_column, stored_rounds, to_frame, utc
from gpubench.report.load import (
    History,
    LoadedRuns,
    SampleKey,
    benchmark_file_rows,
    runs_frame,
    tidy_frame,
    verify_file_rows,
    verify_frame,
)
from gpubench.report.recent import Totals, last_runs, meta_of, read_meta, totals_of
from gpubench.results import fsync_file, fsync_folder

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

STORE_VERSION = 1
LEDGER = "ledger.json"
# comparisons already made (see gpubench.report.analysis.CompareCache), kept between reports
COMPARISONS = "comparisons.json"
TABLES = ("benchmarks", "verify", "runs")
RECENT = "recent"  # each series' last runs (gpubench.report.recent), kept between reports
# saved runs read per batch of an ingest (a cold fleet store: 20,000 files, ten batches of ~32,000 rows)
INGEST_BATCH = 2000
MAX_INGEST_WORKERS = 4  # processes reading batches at once (memory: about 300 MB each)
_TIME_COLUMNS = {"run_time", "started", "finished"}


def default_store_dir(results_dir: Path) -> Path:
    return Path(results_dir) / "store"


@dataclass(frozen=True)
class Ingested:
    """What one :meth:`ResultsStore.ingest` did: files read, runs added, and the warnings it raised (each
    damaged file or entry named here once)."""

    files: int
    runs: int
    warnings: tuple[str, ...]


class ResultsStore:
    """The Parquet dataset under ``root`` for the saved runs under ``results_dir``."""

    def __init__(self, results_dir: Path, root: Path | None = None) -> None:
        self.results_dir = Path(results_dir)
        self.root = Path(root) if root is not None else default_store_dir(self.results_dir)
        self._ledger = self._read_ledger()

    # --- the ledger -------------------------------------------------------------------------------------

    def _read_ledger(self) -> dict[str, Any]:
        empty: dict[str, Any] = {"version": STORE_VERSION, "files": {}, "columns": {t: {} for t in TABLES}}
        try:
            data = json.loads((self.root / LEDGER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return empty  # no store yet, or a damaged ledger: rebuilt from the JSON files
        if not isinstance(data, dict) or data.get("version") != STORE_VERSION:
            return empty
        return data

    def _write_ledger(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # one line, in insertion order: json's C encoder (indent or sort_keys would take its Python one,
        # 1.3 s a write at 20,000 files, and an ingest writes the ledger after every batch)
        _atomic_write(self.root / LEDGER, json.dumps(self._ledger, separators=(",", ":")).encode())

    @property
    def files(self) -> Mapping[str, Mapping[str, Any]]:
        """Source file (relative to the results folder) -> its ledger entry."""
        files: dict[str, dict[str, Any]] = self._ledger["files"]
        return files

    # --- ingest -----------------------------------------------------------------------------------------

    def sources(self) -> list[Path]:
        """The saved runs the store mirrors: ``benchmarks/**/*.json`` and ``verify/*.json``."""
        return [self.results_dir / name for name in self._scan()]

    def _scan(self) -> dict[str, tuple[int, int]]:
        """Each saved run (its path relative to the results folder, as the ledger names it) -> (size,
        modification time in ns), in path order. One ``os.scandir`` walk: a fleet has 20,000 files, and
        globbing then stat-ing each as a Path took 0.5 s of every report."""
        found: dict[str, tuple[int, int]] = {}

        def walk(folder: Path, prefix: str, deep: bool) -> None:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:  # no such folder (yet), or unreadable: nothing saved there
                return
            for entry in entries:
                name = f"{prefix}/{entry.name}"
                try:
                    # a folder so named is listed too (and named as unreadable), as glob did
                    if entry.name.endswith(".json"):
                        stat = entry.stat()
                        found[name] = (stat.st_size, stat.st_mtime_ns)
                    if deep and entry.is_dir():
                        walk(Path(entry.path), name, deep)
                except OSError:  # gone since the folder was listed: not a saved run now
                    continue

        walk(self.results_dir / "benchmarks", "benchmarks", True)
        walk(self.results_dir / "verify", "verify", False)
        return dict(sorted(found.items()))

    def ingest(self, progress: Callable[[int, int], None] | None = None, workers: int = 1) -> Ingested:
        """Read the files that are new or changed since the ledger saw them; the rest is not opened.

        In batches of :data:`INGEST_BATCH` files: each batch's rows become one part per date partition and
        the ledger is written after it, so memory stays bounded by a batch and an interrupted cold ingest
        keeps the batches it finished. With ``workers`` > 1 (``gpubench report`` passes
        :func:`ingest_workers`), more than one batch is read by that many processes; their batches join the
        ledger in order. The default is this process alone: spawned workers import the caller's main
        module, which a script without an ``if __name__ == "__main__":`` guard would run again. A changed or deleted file's part is removed, and the other files that shared it
        are read again. ``progress(done, total)`` is called after each batch."""
        known: dict[str, dict[str, Any]] = self._ledger["files"]
        stamps = self._scan()
        stale = {
            n for n, e in known.items() if n not in stamps or (e.get("size"), e.get("mtime_ns")) != stamps[n]
        }
        dropped = {part for n in stale for part in known[n].get("parts") or []}
        for name, entry in list(known.items()) if stale else ():
            if name in stale or dropped & set(entry.get("parts") or []):
                self._remove_parts(entry)
                del known[name]
        # oldest first: a batch then holds a few consecutive dates, so each date gets a few parts, not one
        # per batch (a fleet's files sorted by host would spread every batch over every date)
        todo = sorted((name for name in stamps if name not in known), key=lambda n: (stamps[n][1], n))
        current = {name: self.results_dir / name for name in todo}
        warnings: list[str] = []
        runs = 0
        if stale and not todo:
            self._write_ledger()
        batches = [todo[start : start + INGEST_BATCH] for start in range(0, len(todo), INGEST_BATCH)]
        count = min(len(batches), workers, MAX_INGEST_WORKERS)
        if count > 1:
            runs = self._ingest_in_processes(batches, current, stamps, warnings, progress, count)
        else:
            done = 0
            for chunk in batches:
                runs += self._ingest_batch(chunk, current, stamps, warnings)
                self._write_ledger()
                done += len(chunk)
                if progress is not None:
                    progress(done, len(todo))
        return Ingested(len(todo) + len(stale - set(stamps)), runs, tuple(warnings))

    def _ingest_in_processes(
        self,
        batches: list[list[str]],
        paths: Mapping[str, Path],
        stamps: Mapping[str, tuple[int, int]],
        warnings: list[str],
        progress: Callable[[int, int], None] | None,
        count: int,
    ) -> int:
        """:meth:`_ingest_batch` of each batch in ``count`` worker processes (a cold fleet store: 20,000
        files, 60 s of parsing in one process). Worker ``k`` reads batches ``k``, ``k + count``, … in
        order, writes their parts and sends each batch's ledger entries down its own pipe; they join the
        ledger in batch order, written after each. Workers ignore Ctrl-C: this process kills them (their
        unfinished parts are not in the ledger, so never read) and re-raises. Not ``multiprocessing.Pool``:
        its ``terminate()`` takes the task queue's lock, which an idle worker holds while it waits, and
        joins three handler threads; one test run stalled there after an interrupt until it was killed
        (900 s). Here nothing is shared but one pipe per worker, and stopping is kill and join."""
        import multiprocessing

        total, done, runs = sum(len(b) for b in batches), 0, 0
        # spawn, not fork: a fork of a process running Arrow's thread pools can deadlock
        context = multiprocessing.get_context("spawn")
        jobs = [(chunk, {n: paths[n] for n in chunk}, {n: stamps[n] for n in chunk}) for chunk in batches]
        pipes, workers = [], []
        try:
            for k in range(count):
                receive, send = context.Pipe(duplex=False)
                worker = context.Process(
                    target=_ingest_process,
                    args=(send, self.results_dir, self.root, jobs[k::count], self._ledger["columns"]),
                    daemon=True,
                )
                worker.start()
                send.close()  # the worker's end: a worker that dies leaves this pipe at end of file
                pipes.append(receive)
                workers.append(worker)
            for index, chunk in enumerate(batches):
                entries, columns, notes, batch_runs = _received(pipes[index % count], workers[index % count])
                self._ledger["files"].update(entries)
                for table, kinds in columns.items():
                    recorded = self._ledger["columns"].setdefault(table, {})
                    for column, kind in kinds.items():
                        # a column's kind follows from its name (tidy_frame makes the numeric ones float),
                        # so every worker records the same one; the first recorded stays either way
                        recorded.setdefault(column, kind)
                warnings.extend(notes)
                runs += batch_runs
                self._write_ledger()
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        finally:  # done, failed or interrupted: no worker outlives the ingest
            for worker in workers:
                if worker.is_alive():
                    worker.kill()
                worker.join()
            for pipe in pipes:
                pipe.close()
        return runs

    def _ingest_batch(
        self,
        names: list[str],
        paths: Mapping[str, Path],
        stamps: Mapping[str, tuple[int, int]],
        warnings: list[str],
    ) -> int:
        """Read ``names`` into the ledger and one part per partition; returns the runs with rows."""
        known: dict[str, dict[str, Any]] = self._ledger["files"]
        batch: dict[str, list[tuple[str, dict[str, Any], list[dict[str, Any]]]]] = {
            "benchmarks": [],
            "verify": [],
        }
        for name in names:
            notes: list[str] = []
            kind = "verify" if name.startswith("verify") else "benchmarks"
            reader = verify_file_rows if kind == "verify" else benchmark_file_rows
            read = reader(paths[name], self.results_dir, notes)
            warnings.extend(notes)
            status = "damaged" if read is None else ("ingested" if read[1] else "empty")
            known[name] = {"size": stamps[name][0], "mtime_ns": stamps[name][1], "kind": kind, "notes": notes,
                           "status": status}  # fmt: skip
            if read is not None and read[1]:
                known[name]["run_id"] = read[0]["run_id"]
                batch[kind].append((name, *read))
        key = hashlib.sha1("\n".join(sorted(names)).encode()).hexdigest()[:16]
        for kind, files in batch.items():
            if files:
                self._write_batch(kind, files, key)
        return sum(len(f) for f in batch.values())

    def _write_batch(
        self, kind: str, files: list[tuple[str, dict[str, Any], list[dict[str, Any]]]], key: str
    ) -> None:
        """The rows of ``files`` (and their run records) as one part per partition, named ``key``."""
        by_source = {str(self.results_dir / name): name for name, _, _ in files}
        rows = [row for _, _, file_rows in files for row in file_rows]
        notes: list[str] = []
        frame = verify_frame(rows) if kind == "verify" else tidy_frame(rows, notes, keep_rounds=ROUNDS_COLUMN)
        run_frame = runs_frame([run for _, run, _ in files])
        place = {name: _partition(run)[0] for name, run, _ in files}
        for table, data in ((kind, frame), ("runs", run_frame)):
            names = data["source_file"].map(by_source)
            for date, group in data.groupby(names.map(place), sort=True):
                part = self._write_part(table, group, str(date), f"{key}-{kind}")
                for name in set(names[group.index]):
                    self._ledger["files"][name].setdefault("parts", []).append(part)

    def _write_part(self, table: str, frame: pd.DataFrame, date: str, key: str) -> str:
        target = self.root / table / f"run_date={date}" / f"{key}.parquet"
        _write_parquet(self._arrow_table(table, frame), target)
        return str(target.relative_to(self.root))

    def _arrow_table(self, table: str, frame: pd.DataFrame) -> pa.Table:
        """``frame`` with one Arrow type per column, the same in every part (recorded in the ledger)."""
        import pyarrow as pa

        types: dict[str, str] = self._ledger["columns"].setdefault(table, {})
        arrays, fields = [], []
        for column in frame.columns:
            kind = types.get(column) or _column_kind(column, frame[column])
            types[column] = kind
            arrow_type = _arrow_type(kind)
            values = frame[column]
            if kind == "text":
                values = _text_values(values)
            elif kind == "number":
                values = values.astype("float64")
            arrays.append(
                pa.array(values.tolist() if kind == "rounds" else values, type=arrow_type, from_pandas=True)
            )
            fields.append(pa.field(column, arrow_type))
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def _remove_parts(self, entry: Mapping[str, Any]) -> None:
        for part in entry.get("parts") or []:
            (self.root / part).unlink(missing_ok=True)

    # --- read -------------------------------------------------------------------------------------------

    def schema(self, table: str) -> pa.Schema:
        """The table's schema: every column any ingested part has, with its recorded type."""
        import pyarrow as pa

        types: dict[str, str] = self._ledger["columns"].get(table, {})
        return pa.schema([pa.field(c, _arrow_type(k)) for c, k in types.items()])

    def parts(self, table: str) -> list[str]:
        """The parts of ``table`` the ledger lists (relative to the store): a part written by a report killed
        before its ledger is not one of them, so never read."""
        prefix = f"{table}/"
        return sorted({p for e in self.files.values() for p in e.get("parts") or [] if p.startswith(prefix)})

    def _arrow(self, table: str, paths: list[str] | None = None) -> pa.Table | None:
        """The parts of ``table`` (or the files ``paths``, relative to the store) as one Arrow table with the
        table's schema (a column a part lacks is null); None when there is nothing to read."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        schema = self.schema(table)
        chosen = self.parts(table) if paths is None else paths
        if not chosen or not len(schema):
            return None
        # the system allocator hands freed memory back: Arrow's default pool kept 170 MB more at the peak
        # of a fleet's read (320,000 rows)
        files = [f"{self.root}/{p}" for p in chosen]
        arrow: pa.Table = ds.dataset(files, format="parquet", schema=schema).to_table(
            memory_pool=pa.system_memory_pool()
        )
        return arrow

    def read(self, table: str, rounds: list[Any] | None = None) -> pd.DataFrame:
        """One table of the store as pandas (partition columns left out), or an empty frame. With
        ``rounds`` (a list), the raw-rounds column stays Arrow: it is appended there, not converted."""
        return to_frame(self._arrow(table), self.schema(table), rounds)

    def recent(self, table: str, window: int | None) -> tuple[pa.Table | None, Totals]:
        """The rows of each series' last ``window`` runs of ``table`` (see :mod:`gpubench.report.recent`;
        every row when None: the table of runs, one small file instead of a part per batch and date) and
        the totals over its whole history: from ``recent/<table>.parquet`` and the parts ingested since it
        was written, or from every part when one it covers is gone; written back when it changed."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = self.parts(table)
        path = self.root / RECENT / f"{table}.parquet"
        try:
            kept = read_meta(pq.read_schema(path).metadata) if path.is_file() else None
        except (OSError, ValueError, pa.ArrowException):
            kept = None  # damaged: rebuilt below
        old = self._arrow_file(table, path) if kept is not None and kept[0] == window else None
        if old is not None and kept is not None and kept[1] == parts:
            return old, kept[2]
        whole: pa.Table | None
        if old is not None and kept is not None and set(kept[1]) <= set(parts):
            new = self._arrow(table, [p for p in parts if p not in set(kept[1])])
            totals = kept[2].plus(totals_of(new, table)) if new is not None else kept[2]
            whole = pa.concat_tables([old, new]) if new is not None else old
        else:  # no kept table yet, another window, or a part it covers was replaced: every part
            whole = self._arrow(table)
            totals = totals_of(whole, table) if whole is not None else Totals(0, {}, {})
        if whole is None:
            return None, totals
        window_rows = last_runs(whole, table, window)
        del whole
        # a store this user may read but not write (shared, read-only): the report goes on, and the next
        # one that may write keeps the rows
        if self.root.is_dir():
            with contextlib.suppress(OSError):
                _write_parquet(window_rows.replace_schema_metadata(meta_of(window, parts, totals)), path)
                fsync_folder(path.parent)
        return window_rows, totals

    def _arrow_file(self, table: str, path: Path) -> pa.Table | None:
        """A kept table read with the store's current schema (columns added since are null)."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        try:
            arrow: pa.Table = ds.dataset([str(path)], format="parquet", schema=self.schema(table)).to_table()
        except (OSError, ValueError, pa.ArrowException):
            return None  # damaged or unreadable: the caller rebuilds it
        return arrow

    def warnings(self) -> tuple[str, ...]:
        """Every skipped file or entry the ledger remembers, in source order."""
        return tuple(note for _, entry in sorted(self.files.items()) for note in entry.get("notes") or [])

    def load(self, rounds_runs: int | None = None, window: int | None = None) -> LoadedRuns:
        """The store as :class:`LoadedRuns` (the tables :func:`~gpubench.report.load.load_runs` makes).

        ``rounds_runs``: keep the raw rounds of the last that many runs of each benchmark on each GPU only
        (what a report compares: the latest run and its baseline window); None keeps every row's. A fleet's
        history has 320,000 rows of rounds, 180 MB as Python keys and Arrow lists, of which a report reads
        a few thousand. ``window``: the benchmark and verification tables hold each series' last that many
        runs only (:meth:`recent`; ``LoadedRuns.history`` counts the whole history; the table of runs stays
        whole); None reads every row."""
        import pandas as pd

        arrow_rounds: list[Any] = []
        history = None
        if window is None:
            bench = self.read("benchmarks", arrow_rounds)
            checks = self.read("verify")
        else:
            bench_rows, bench_totals = self.recent("benchmarks", window)
            verify_rows, verify_totals = self.recent("verify", window)
            bench = to_frame(bench_rows, self.schema("benchmarks"), arrow_rounds)
            checks = to_frame(verify_rows, self.schema("verify"), None)
            history = History(
                window=window,
                store=str(self.root),
                benchmark_rows=bench_totals.rows,
                verify_rows=verify_totals.rows,
                series_runs=bench_totals.series_runs,
                gpu_runs={**verify_totals.gpu_runs, **bench_totals.gpu_runs},
            )
        extra = sorted(c for c in bench.columns if c not in BENCHMARK_COLUMNS)
        bench = bench.reindex(columns=[*BENCHMARK_COLUMNS, *extra])
        bench = sorted_by_column(utc(bench, ("run_time",)), ["run_time", "run_id", "group", "case", "device"])
        samples: Mapping[SampleKey, tuple[float, ...]] = {}
        if arrow_rounds:
            samples = stored_rounds(bench, arrow_rounds[0], rounds_runs)
        verify = utc(checks.reindex(columns=list(VERIFY_COLUMNS)), ("started", "finished"))
        run_rows = self.recent("runs", None)[0] if window is not None else self._arrow("runs")
        runs = utc(
            to_frame(run_rows, self.schema("runs"), None).reindex(columns=list(RUN_COLUMNS)), ("run_time",)
        )
        runs = runs.sort_values(["run_time", "run_id"], kind="stable").reset_index(drop=True)
        verify["duration_s"] = pd.to_numeric(verify["duration_s"], errors="coerce")
        return LoadedRuns(
            self.results_dir, bench.reset_index(drop=True), verify, runs, self.warnings(), samples, history
        )

    def comparisons(self) -> dict[str, dict[str, Any]]:
        """The comparisons the last report made (empty when none were kept or the file is damaged)."""
        try:
            data = json.loads((self.root / COMPARISONS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def keep_comparisons(self, entries: Mapping[str, Mapping[str, Any]]) -> None:
        if self.root.is_dir():
            _atomic_write(self.root / COMPARISONS, json.dumps(entries).encode())


def ingest_workers() -> int:
    """Worker processes for a long ingest: one per CPU this process may use, at most
    :data:`MAX_INGEST_WORKERS`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_INGEST_WORKERS))


def _worker_signals() -> None:
    """An ingest worker leaves Ctrl-C to the report process, which stops it; SIGTERM ends it quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _ingest_process(
    pipe: Any,
    results_dir: Path,
    root: Path,
    jobs: list[tuple[list[str], Mapping[str, Path], Mapping[str, tuple[int, int]]]],
    columns: Mapping[str, Mapping[str, str]],
) -> None:
    """An ingest worker process: each of its batches in order, each result (or the error that stopped it)
    sent down ``pipe``."""
    import traceback

    _worker_signals()
    for names, paths, stamps in jobs:
        try:
            result = _ingest_worker(results_dir, root, names, paths, stamps, columns)
        except Exception:
            pipe.send(("error", traceback.format_exc()))
            return
        pipe.send(("ok", result))


def _received(pipe: Any, worker: Any) -> tuple[dict[str, Any], dict[str, dict[str, str]], list[str], int]:
    """The next batch's result from a worker's pipe; a RuntimeError naming what stopped the worker."""
    try:
        status, payload = pipe.recv()
    except EOFError:
        worker.join()
        msg = f"an ingest worker process ended (exit code {worker.exitcode}) before sending its batch"
        raise RuntimeError(msg) from None
    if status != "ok":
        raise RuntimeError(f"an ingest worker failed:\n{payload}")
    result: tuple[dict[str, Any], dict[str, dict[str, str]], list[str], int] = payload
    return result


def _ingest_worker(
    results_dir: Path,
    root: Path,
    names: list[str],
    paths: Mapping[str, Path],
    stamps: Mapping[str, tuple[int, int]],
    columns: Mapping[str, Mapping[str, str]],
) -> tuple[dict[str, Any], dict[str, dict[str, str]], list[str], int]:
    """One batch in a worker process: its ledger entries, column kinds, warnings and runs."""
    store = ResultsStore.__new__(ResultsStore)
    store.results_dir, store.root = results_dir, root
    store._ledger = {
        "version": STORE_VERSION,
        "files": {},
        "columns": {t: dict(c) for t, c in columns.items()},
    }
    warnings: list[str] = []
    runs = store._ingest_batch(names, paths, stamps, warnings)
    return store._ledger["files"], store._ledger["columns"], warnings, runs


def load_store(results_dir: Path, root: Path | None = None) -> tuple[LoadedRuns, Ingested]:
    """Ingest what is new under ``results_dir`` into its store, then read the whole store."""
    store = ResultsStore(results_dir, root)
    ingested = store.ingest()
    return store.load(), ingested


# --- helpers ----------------------------------------------------------------------------------------------


def _arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of a column kind the ledger records: text, number, time (UTC) or rounds."""
    import pyarrow as pa

    if kind == "number":
        return pa.float64()
    if kind == "time":
        return pa.timestamp("us", tz="UTC")
    if kind == "rounds":
        return pa.list_(pa.float64())
    return pa.string()


def _column_kind(column: str, values: pd.Series[Any]) -> str:
    import pandas as pd

    if column == ROUNDS_COLUMN:
        return "rounds"
    if column in _TIME_COLUMNS:
        return "time"
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return "number"
    return "text"


def _text_values(values: pd.Series[Any]) -> Any:
    """A text column for Arrow: missing values (None, NaN) null, anything else its ``str()``; a column of
    strings already goes through as it is (the common case, a Python call per cell saved)."""
    import pandas as pd

    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values
    return values.map(lambda v: None if v is None or v != v else str(v))


def _partition(run: Mapping[str, Any]) -> tuple[str, str]:
    """(``YYYY-MM-DD`` of the run's start in UTC, its host) for the hive partition folders."""
    text = str(run.get("run_time") or "")
    try:  # Python's ISO reader first: pandas' costs 0.6 ms a call, a third of a cold fleet ingest's parsing
        when = _dt.datetime.fromisoformat(text)
        when = (
            when.replace(tzinfo=_dt.timezone.utc)
            if when.tzinfo is None
            else when.astimezone(_dt.timezone.utc)
        )
        date = when.strftime("%Y-%m-%d")
    except ValueError:
        import pandas as pd

        stamp = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        date = "unknown" if pd.isna(stamp) else stamp.strftime("%Y-%m-%d")
    return date, str(run.get("host") or "unknown")


def _write_parquet(table: pa.Table, target: Path) -> None:
    """``table`` as Parquet at ``target``: written to a temporary file beside it, synced and renamed, so a
    reader never sees half a file; the temporary file is removed when the write fails."""
    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        pq.write_table(table, temporary)
        fsync_file(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    fsync_file(temporary)
    os.replace(temporary, path)
    fsync_folder(path.parent)
