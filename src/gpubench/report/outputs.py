"""The report folder written: ``report.md`` with ``plots/*.png``, ``report.html``, ``tidy.csv`` (and
``verify.csv``), ``tidy.parquet``; and where it goes by default."""

from __future__ import annotations

import datetime as _dt
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpubench.report.html import render_html
from gpubench.report.markdown import render_markdown
from gpubench.report.model import Report
from gpubench.results import atomic_write_text, safe_child


def write_report(
    report: Report,
    output_dir: Path,
    formats: Sequence[str] = ("md", "html", "csv", "parquet"),
    warn: Any = None,
) -> dict[str, Path]:
    """Write the chosen outputs into ``output_dir``; returns ``{kind: path}``.

    Without a Parquet engine, ``tidy.parquet`` is skipped with a warning and everything else is written.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if "md" in formats:
        for plot in report.plots:
            target = output_dir / "plots" / plot.name
            target.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write_bytes(target, plot.png)
            written[f"plot:{plot.name}"] = target
        written["md"] = atomic_write_text(output_dir / "report.md", render_markdown(report))
    if "html" in formats:
        written["html"] = atomic_write_text(output_dir / "report.html", render_html(report))
    tidy = report.loaded.benchmarks
    if "csv" in formats:
        written["csv"] = atomic_write_text(output_dir / "tidy.csv", tidy.to_csv(index=False))
        if not report.loaded.verify.empty:
            written["verify_csv"] = atomic_write_text(
                output_dir / "verify.csv", report.loaded.verify.to_csv(index=False)
            )
    if "parquet" in formats:
        try:
            written["parquet"] = _atomic_to(
                output_dir / "tidy.parquet", lambda tmp: tidy.to_parquet(tmp, index=False)
            )
        except ImportError as exc:
            (warn or _stderr)(
                f"warning: tidy.parquet not written: no Parquet engine ({exc}). "
                "Fix: install pyarrow (pip install pyarrow)"
            )
    return written


def _atomic_to(path: Path, write: Any) -> Path:
    """``write(temporary path)``, then renamed to ``path``: an interrupt leaves the previous file, never half
    a new one, and no temporary file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _atomic_write_bytes(path: Path, data: bytes) -> Path:
    return _atomic_to(path, lambda tmp: Path(tmp).write_bytes(data))


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def default_output_dir(results_dir: Path, now: _dt.datetime | None = None) -> Path:
    """``results/report/<UTC timestamp>/`` (a suffix is added when that folder already exists)."""
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    target = safe_child(results_dir, "report", stamp)
    suffix = 1
    while target.exists():
        suffix += 1
        target = safe_child(results_dir, "report", f"{stamp}-{suffix}")
    return target
