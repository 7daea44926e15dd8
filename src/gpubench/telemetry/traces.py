"""Trace files: a sampler's samples as CSV (one row per sample, one column per metric) and their names.

Columns are ``t`` (perf_counter seconds), ``device``, ``uuid`` and one per metric of the source, its unit
in its name; a reading that was not available is an empty cell. Files are written atomically. Imports
:mod:`gpubench.results` (atomic writes) and :mod:`.source`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Sequence
from pathlib import Path

from gpubench.results import atomic_write_text
from gpubench.telemetry.source import Sample

FIXED_COLUMNS = ("t", "device", "uuid")


def csv_text(columns: Sequence[str], device: str, uuid: str | None, rows: Sequence[Sample]) -> str:
    """The trace as CSV text (``csv.writer``, ``\\n`` line ends): one row per sample, empty cells for readings
    not available.

    ``columns`` are :data:`FIXED_COLUMNS` followed by the metric names (``Sampler.columns()``), which are
    :mod:`gpubench.metrics`' names: the header is the table's spelling.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    names = columns[len(FIXED_COLUMNS) :]
    for row in rows:
        values = (row.values.get(name) for name in names)
        writer.writerow(
            [f"{row.t:.6f}", device, uuid or "", *("" if v is None else _number(v) for v in values)]
        )
    return buffer.getvalue()


def write_csv(path: Path, text: str) -> Path:
    """Write the CSV trace atomically (temporary file and rename); returns ``path``."""
    return atomic_write_text(Path(path), text)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def trace_name(nodeid: str, max_len: int = 120) -> str:
    """A file name for a test's trace: ``test_ops.py__test_add_cpu-f32_.csv``-like, unique per node id."""
    base = nodeid.split("/")[-1]
    safe = _UNSAFE.sub("_", base).strip("._") or "benchmark"
    if len(safe) > max_len or safe != base:
        digest = hashlib.sha1(nodeid.encode("utf-8")).hexdigest()[:8]
        safe = f"{safe[:max_len]}-{digest}"
    return f"{safe}.csv"
