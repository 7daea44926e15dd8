"""Each series' last runs, kept beside the store: what a report reads of a fleet's history.

A report compares each benchmark on each GPU with its own last runs (a trend reads the last 21), each GPU's
latest run with its siblings, and each GPU's latest verification. Reading a fleet's whole history back
into pandas for that (20,000 runs, 320,000 rows) took 2 s of every report, and it grows with every night.
So the store keeps ``recent/<table>.parquet``: the rows of each series' last ``window`` runs (a series is
one benchmark on one GPU for ``benchmarks``, one GPU for ``verify``), and in its Parquet metadata the parts
of the store it covers and the totals over the whole history (runs of each series, runs of each GPU, rows).

A report reads it and only the parts ingested since, merges and trims: keeping a series' last ``window``
runs of (kept rows + new rows) is keeping them of the whole history, because a new run can only push old
ones out. When a part it covers is gone (a saved run changed or was deleted, so its batch was read again)
it is rebuilt from every part. It is a cache: deleting it costs one full read. Pure functions of Arrow
tables here; :class:`~gpubench.report.store.ResultsStore` reads and writes the files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

# the runs that make a series, and the column that orders them, per table
SERIES: dict[str, tuple[str, ...]] = {"benchmarks": ("group", "case", "gpu_uuid"), "verify": ("gpu_uuid",)}
TIME_COLUMN = {"benchmarks": "run_time", "verify": "started"}
META_KEY = b"gpubench.recent"
FORMAT = 1

Key = tuple[str | None, ...]


@dataclass(frozen=True)
class Totals:
    """Counts over a table's whole history: rows, runs of each series, runs of each GPU (by UUID)."""

    rows: int
    series_runs: Mapping[Key, int]
    gpu_runs: Mapping[str, int]

    def plus(self, other: Totals) -> Totals:
        """These totals and those of rows added since (new runs: a run id is in one saved file only)."""
        series = dict(self.series_runs)
        for key, count in other.series_runs.items():
            series[key] = series.get(key, 0) + count
        gpus = dict(self.gpu_runs)
        for uuid, count in other.gpu_runs.items():
            gpus[uuid] = gpus.get(uuid, 0) + count
        return Totals(self.rows + other.rows, series, gpus)


def _text(value: Any) -> str | None:
    """A key cell as text; a missing value (None, NaN) as None, the same wherever it is read from."""
    return None if value is None or value != value else str(value)


def series_key(values: Sequence[Any]) -> Key:
    """A series' key as :class:`Totals` holds it, from a row's cells (missing cells become None)."""
    return tuple(_text(v) for v in values)


def _runs(table: pa.Table, kind: str) -> tuple[Any, Any]:
    """One row per (series, run), in time order (the run's earliest time, ties by run id: the order
    :func:`gpubench.report.analysis.trend_table` reads runs in), as a pandas frame of the series columns,
    ``run_id``, ``_series`` (a number per series) and ``_run`` (a number per (series, run)); and each row's
    ``_run`` number. Missing key cells group together (``dropna=False``)."""
    series, time = list(SERIES[kind]), TIME_COLUMN[kind]
    keys = table.select([*series, "run_id", time]).to_pandas()
    run_of_row = keys.groupby([*series, "run_id"], sort=False, dropna=False).ngroup()
    keys["_series"] = keys.groupby(series, sort=False, dropna=False).ngroup()
    keys["_run"] = run_of_row
    first = keys.groupby("_run", sort=False)[time].transform("min")
    keys[time] = first
    per_run = keys.drop_duplicates("_run")
    return per_run.sort_values([time, "run_id"], kind="stable", na_position="first"), run_of_row


def totals_of(table: pa.Table, kind: str) -> Totals:
    """The rows, runs per series and runs per GPU of ``table`` (the rows alone for a table not in
    :data:`SERIES`: the table of runs)."""
    if table.num_rows == 0 or kind not in SERIES:
        return Totals(table.num_rows, {}, {})
    per_run, _ = _runs(table, kind)
    series = list(SERIES[kind])
    counts = per_run.groupby("_series", sort=False).agg(
        runs=("_run", "size"), **{c: (c, "first") for c in series}
    )
    series_runs = {series_key(k): int(n) for *k, n in counts[[*series, "runs"]].itertuples(index=False)}
    gpus = (
        per_run.drop_duplicates(["gpu_uuid", "run_id"]).groupby("gpu_uuid", sort=False, dropna=False).size()
    )
    gpu_runs = {str(_text(uuid)): int(n) for uuid, n in gpus.items()}
    return Totals(table.num_rows, series_runs, gpu_runs)


def last_runs(table: pa.Table, kind: str, window: int | None) -> pa.Table:
    """The rows of ``table`` whose run is among its series' last ``window`` runs, in their order (every
    row when ``window`` is None or the table is not in :data:`SERIES`)."""
    import pyarrow as pa

    if table.num_rows == 0 or window is None or kind not in SERIES:
        return table
    per_run, run_of_row = _runs(table, kind)
    rank = per_run.groupby("_series", sort=False).cumcount(ascending=False)
    kept = per_run.loc[rank < max(1, window), "_run"]
    if len(kept) == len(per_run):
        return table
    return table.filter(pa.array(run_of_row.isin(kept).to_numpy()))


def meta_of(window: int | None, parts: Sequence[str], totals: Totals) -> dict[bytes, bytes]:
    """The Parquet metadata of a kept table: its window, the parts it covers, the whole history's totals."""
    data = {
        "format": FORMAT,
        "window": window,
        "parts": sorted(parts),
        "rows": totals.rows,
        "series_runs": [[*key, count] for key, count in totals.series_runs.items()],
        "gpu_runs": dict(totals.gpu_runs),
    }
    return {META_KEY: json.dumps(data, separators=(",", ":")).encode()}


def read_meta(metadata: Mapping[bytes, bytes] | None) -> tuple[int | None, list[str], Totals] | None:
    """(window, parts, totals) from a kept table's Parquet metadata; None when absent or not ours."""
    try:
        data = json.loads((metadata or {})[META_KEY])
        if data.get("format") != FORMAT:
            return None
        series = {tuple(item[:-1]): int(item[-1]) for item in data["series_runs"]}
        totals = Totals(int(data["rows"]), series, {str(k): int(v) for k, v in data["gpu_runs"].items()})
        window = None if data["window"] is None else int(data["window"])
        return window, [str(p) for p in data["parts"]], totals
    except (KeyError, TypeError, ValueError, IndexError):
        return None
