"""Per-GPU reports from saved runs (``gpubench report``, ``nox -s report``). Each module imports only
those listed before it: ``columns`` (the tidy table's columns) and ``traces`` (telemetry summaries and
trace CSVs) → ``load`` (every saved run into one tidy pandas table; damaged files skipped with a
warning) → ``recent`` (each series' last runs and the whole history's counts, kept beside the store) → ``frames``
(the store's Arrow tables as pandas, raw rounds kept lazily) → ``store``
(the incremental Parquet results store: each saved run ingested once) → ``text``
(values as text) → ``compare``, ``spread`` and ``fdr`` (the noise-aware, run-to-run and false-discovery
rules) → ``analysis`` (ratios, trends, regression and outlier flags) → ``model`` (the report's
dataclasses) → ``fleet`` (fleet summary, GPU index, grouped skips) → ``pages`` (one page per GPU that
needs one) and ``plots`` (matplotlib) →
``build`` (:func:`build_report`) → ``markdown`` and ``html`` (renderers) → ``outputs`` (the report
folder: Markdown, HTML, CSV, Parquet, PNG) → ``command`` (the ``gpubench report`` verb). Outside the
package they may import :mod:`gpubench.config`, :mod:`gpubench.results`, :mod:`gpubench.console`, pandas
and matplotlib (those two inside the functions that need them), never the CLI. Units: times in seconds
(``*_s``), throughput in the row's natural rate (``throughput_unit``), power in watts, energy in joules,
clocks in MHz, utilization in percent.
"""

from __future__ import annotations

# the entry points other packages and their tests use
from gpubench.report.build import build_report
from gpubench.report.load import LoadedRuns, load_runs
from gpubench.report.model import Report

__all__ = ["LoadedRuns", "Report", "build_report", "load_runs"]
