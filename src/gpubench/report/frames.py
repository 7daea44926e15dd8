"""The results store's Arrow tables as the pandas frames a report reads, and the raw rounds kept as Arrow.

:func:`to_frame` converts a table column by column (a fleet's 320,000 rows never held twice),
:func:`sorted_by_column` sorts a frame a column at a time, :func:`stored_rounds` keeps the raw rounds of the
rows a report compares as a lazy :class:`StoredRounds` mapping, :func:`utc` makes time columns UTC.
:class:`~gpubench.report.store.ResultsStore` reads the files; this module only converts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from gpubench.report.load import SampleKey

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# the raw rounds of a row (seconds per call), as pytest-benchmark's stats.data keeps them
ROUNDS_COLUMN = "rounds_s"


class StoredRounds(Mapping[SampleKey, tuple[float, ...]]):
    """The raw rounds of the store's rows, by :data:`~gpubench.report.load.SampleKey`, converted from
    Arrow only when asked for (a report compares a few thousand of several hundred thousand rows); a key
    held by two rows (a case run twice in one run) has their rounds joined, as
    :func:`~gpubench.report.load.load_runs` does. ``keys``: each row's key joined by :data:`_KEY_SEP`."""

    def __init__(self, keys: list[str], column: Any) -> None:
        import numpy as np
        import pyarrow.compute as pc

        lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(lengths > 0).tolist()
        names = [keys[row] for row in rows]
        first = dict(zip(names, rows, strict=True))
        self._rows: dict[str, list[int]] = {}
        if len(first) == len(names):
            self._rows = {name: [row] for name, row in first.items()}
        else:  # some key held by two rows: group them in row order
            for name, row in zip(names, rows, strict=True):
                self._rows.setdefault(name, []).append(row)
        self._column = column

    def __getitem__(self, key: SampleKey) -> tuple[float, ...]:
        rows = self._rows[_KEY_SEP.join(str(part) for part in key)]  # KeyError: no rounds saved for it
        return tuple(float(v) for row in rows for v in self._column[row].values.to_pylist())

    def __iter__(self) -> Iterator[SampleKey]:
        return (tuple(name.split(_KEY_SEP)) for name in self._rows)  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self._rows)


_KEY_SEP = "\x1f"  # joins a sample key's parts: a character no run id, group, case or UUID holds


def to_frame(arrow: pa.Table | None, schema: pa.Schema, rounds: list[Any] | None) -> pd.DataFrame:
    """An Arrow table of the store as pandas, or an empty frame with the schema's columns. With ``rounds``
    (a list), the raw-rounds column stays Arrow: it is appended there, not converted."""
    import pandas as pd
    import pyarrow as pa

    if arrow is None:
        empty: pd.DataFrame = pd.DataFrame(columns=schema.names)
        return empty
    if rounds is not None and ROUNDS_COLUMN in arrow.column_names:
        # turning 300,000 lists into Python objects is most of a read: the report needs few of them
        rounds.append(arrow.column(ROUNDS_COLUMN))
        arrow = arrow.drop_columns([ROUNDS_COLUMN])
    # column by column, each freed once converted: the table and the frame are never both whole
    pool = pa.system_memory_pool()
    frame: pd.DataFrame = arrow.to_pandas(self_destruct=True, split_blocks=True, memory_pool=pool)
    return frame


def sorted_by_column(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``frame.sort_values(keys, kind="stable", na_position="first")``, one column at a time: sorting a
    fleet's 250 MB table whole held two copies at once. The index keeps each row's old position."""
    import pandas as pd

    order = frame[keys].sort_values(keys, kind="stable", na_position="first").index.to_numpy()
    for column in frame.columns:
        frame[column] = frame[column].array.take(order)
    frame.index = pd.Index(order)
    return frame


def stored_rounds(bench: pd.DataFrame, column: Any, runs: int | None) -> StoredRounds:
    """The rounds of ``bench``'s rows (in time order, indexed by their row in ``column``), of each
    benchmark's last ``runs`` runs on each GPU (every row when None)."""
    import numpy as np
    import pyarrow as pa

    chosen = bench[["run_id", "group", "case", "gpu_uuid"]]
    if runs is not None:
        series = ["group", "case", "gpu_uuid"]
        last = chosen.drop_duplicates(keep="last")  # one row per run of each series, in time order
        last = last[last.groupby(series, sort=False, dropna=False).cumcount(ascending=False) < max(1, runs)]
        wanted = _row_keys(last)
        chosen = chosen[_row_keys(chosen).isin(wanted)]
    positions = np.asarray(chosen.index, dtype=np.int64)
    # a missing value reads "nan", as str() of the pandas cell that rounds_of builds its key from
    parts = [chosen[c].astype(object).where(chosen[c].notna(), "nan").astype(str) for c in chosen.columns]
    keys = [_KEY_SEP.join(key) for key in zip(*parts, strict=True)]
    return StoredRounds(keys, column.take(pa.array(positions)).combine_chunks())


def _row_keys(frame: pd.DataFrame) -> pd.MultiIndex:
    import pandas as pd

    index: pd.MultiIndex = pd.MultiIndex.from_frame(frame)
    return index


def utc(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """``columns`` of ``frame`` as UTC times (anything unreadable: NaT)."""
    import pandas as pd

    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True, errors="coerce")
    return frame
