"""The report assembled: :func:`build_report` loads the runs, derives every table, page and plot, and
returns the :class:`~gpubench.report.model.Report` the renderers show."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gpubench.config import ReportSection
from gpubench.report.analysis import (
    bench_label,
    outlier_table,
    ratio_table,
    recorded_device_order,
    trend_table,
)
from gpubench.report.load import LoadedRuns, load_runs
from gpubench.report.model import Plot, Report, Table
from gpubench.report.pages import gpu_pages
from gpubench.report.plots import (
    choose_timeline_benchmark,
    throughput_plots,
    timeline_plot,
    use_agg_backend,
)
from gpubench.report.text import cell, format_number, format_pct

if TYPE_CHECKING:
    import pandas as pd


def build_report(
    results_dir: Path,
    settings: ReportSection | None = None,
    configured_devices: Sequence[str] | None = None,
    *,
    benchmark: str | None = None,
    loaded: LoadedRuns | None = None,
) -> Report:
    """Load the runs under ``results_dir`` and derive every table, page and plot of the report.

    ``configured_devices`` orders the devices (the first is the ratio denominator); None: the order the
    latest run was configured with (its ``bench.devices``). Raises :class:`ReportError` when
    ``benchmark`` names no traced benchmark.
    """
    settings = settings or ReportSection()
    loaded = loaded or load_runs(results_dir)
    warnings = list(loaded.warnings)
    frame = loaded.benchmarks
    if configured_devices is None:
        configured_devices = recorded_device_order(loaded)
    ratios = ratio_table(frame, configured_devices)
    trends = trend_table(frame, settings.regression_pct)
    outliers = outlier_table(frame, settings.outlier_pct)
    pages = gpu_pages(loaded, trends, outliers)
    chosen = benchmark or settings.benchmark or None
    timeline = choose_timeline_benchmark(frame, loaded.results_dir, chosen) if not frame.empty else None
    plots = _plots(loaded, settings, timeline, configured_devices, warnings)
    summary = _summary(loaded, settings, trends, outliers, len(pages))
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Report(
        generated=now,
        results_dir=str(results_dir),
        loaded=loaded,
        settings=settings,
        runs=_runs_rendered(loaded),
        ratios=_ratio_rendered(ratios),
        trends=_trend_rendered(trends, settings.regression_pct),
        outliers=_outlier_rendered(outliers, settings.outlier_pct),
        pages=pages,
        plots=plots,
        timeline_benchmark=timeline,
        summary=summary,
        warnings=tuple(warnings),
    )


def _plots(
    loaded: LoadedRuns,
    settings: ReportSection,
    timeline: str | None,
    configured_devices: Sequence[str],
    warnings: list[str],
) -> tuple[Plot, ...]:
    """Throughput bars, then the timelines of ``timeline``; none when plots are off or nothing ran."""
    frame = loaded.benchmarks
    plots: list[Plot] = []
    if settings.plots and not frame.empty:
        use_agg_backend()
        plots.extend(throughput_plots(frame, configured_devices))
        if timeline is not None:
            plot = timeline_plot(frame, loaded.results_dir, timeline, configured_devices, warnings)
            if plot is not None:
                plots.append(plot)
    return tuple(plots)


def _summary(
    loaded: LoadedRuns, settings: ReportSection, trends: pd.DataFrame, outliers: pd.DataFrame, devices: int
) -> tuple[str, ...]:
    """The report's opening lines: what was read, how many regressions and outliers, what was skipped."""
    frame = loaded.benchmarks
    regressions = int(trends["regression"].sum()) if not trends.empty else 0
    outlier_count = int(outliers["outlier"].sum()) if not outliers.empty else 0
    bench_runs = frame["run_id"].nunique()
    verify_runs = loaded.verify["run_id"].nunique() if not loaded.verify.empty else 0
    return (
        f"{bench_runs} benchmark run(s), {verify_runs} verification run(s), {devices} device(s), "
        f"{len(frame)} benchmark rows",
        f"{regressions} regression(s) (> {settings.regression_pct:g}% slower than the previous run)",
        f"{outlier_count} outlier(s) (> {settings.outlier_pct:g}% below same-model siblings)",
        f"{len(loaded.warnings)} file(s) or entries skipped" if loaded.warnings else "no damaged files",
    )


def _runs_rendered(loaded: LoadedRuns) -> Table:
    rows = []
    for _, r in loaded.runs.iterrows():
        when = r["run_time"].strftime("%Y-%m-%d %H:%M UTC") if r["run_time"] == r["run_time"] else "–"
        rows.append(
            (
                r["kind"],
                r["run_id"],
                when,
                cell(r["host"]),
                cell(r["devices"]),
                cell(r["torch_version"]),
                cell(r["driver_version"]),
                cell(r["config_files"]),
            )
        )
    return Table(("kind", "run", "time", "host", "devices", "torch", "driver", "config files"), tuple(rows))


def _ratio_rendered(ratios: pd.DataFrame) -> Table:
    if ratios.empty:
        return Table(("benchmark",), (), caption="no benchmark results")
    attrs = ratios.attrs
    # ratio_table and its run-against-run fallback always set these attrs
    value_columns: list[str] = attrs["runs"] if attrs.get("mode") == "runs" else attrs["devices"]
    ratio_columns = [c for c in ratios.columns if c != "unit" and c not in value_columns]
    rows = []
    for bench, row in ratios.iterrows():
        cells = [str(bench), str(row["unit"])]
        cells += [format_number(row[c]) for c in value_columns]
        cells += [f"{row[c]:.3g}" if row[c] == row[c] else "–" for c in ratio_columns]
        rows.append(tuple(cells))
    if attrs.get("mode") == "runs":
        caption = (
            f"Only {attrs['base']} in the latest run {attrs['run_id']}: throughput of this run next to the "
            "previous one; a ratio above 1 means faster than before."
        )
    else:
        caption = (
            f"Throughput in the latest run {attrs['run_id']}; a ratio above 1 means faster than "
            f"{attrs['base']}."
        )
    return Table(("benchmark", "unit", *value_columns, *ratio_columns), tuple(rows), caption=caption)


def _trend_rendered(trends: pd.DataFrame, pct: float) -> Table:
    compared = trends[trends["runs"] >= 2] if not trends.empty else trends
    rows, flags = [], []
    order = (
        compared.sort_values(["regression", "change_pct"], ascending=[False, False])
        if not compared.empty
        else compared
    )
    for _, r in order.iterrows():
        rows.append(
            (
                bench_label(r["group"], r["case"]),
                r["device"],
                "REGRESSION" if r["regression"] else "ok",
                format_pct(r["change_pct"], signed=True),
                r["history"],
                cell(r["gpu_name"]),
                r["host"],
                r["gpu_uuid"],
            )
        )
        flags.append(bool(r["regression"]))
    flagged = sum(flags)
    caption = (
        f"{flagged} regression(s): median time more than {pct:g}% above the previous run's, per GPU UUID."
        if rows
        else "Only one run per benchmark and GPU so far: nothing to compare with."
    )
    return Table(
        ("benchmark", "device", "flag", "change", "median per run", "GPU", "host", "UUID"),
        tuple(rows),
        tuple(flags),
        caption,
    )


def _outlier_rendered(outliers: pd.DataFrame, pct: float) -> Table:
    rows, flags = [], []
    order = (
        outliers.sort_values(["outlier", "deficit_pct"], ascending=[False, False])
        if not outliers.empty
        else outliers
    )
    for _, r in order.iterrows():
        index = "–" if r["gpu_index"] != r["gpu_index"] else str(int(r["gpu_index"]))
        rows.append(
            (
                bench_label(r["group"], r["case"]),
                r["device"],
                "OUTLIER" if r["outlier"] else "ok",
                format_pct(-r["deficit_pct"], signed=True),
                f"{format_number(r['throughput'])} {r['throughput_unit']}",
                f"{format_number(r['sibling_median'])} ({r['siblings']})",
                r["gpu_name"],
                r["host"],
                index,
                r["gpu_uuid"],
            )
        )
        flags.append(bool(r["outlier"]))
    caption = (
        f"{sum(flags)} outlier(s): throughput more than {pct:g}% below the median of same-model siblings."
        if rows
        else "No GPU model with two or more GPUs on the same benchmark: nothing to compare."
    )
    return Table(
        (
            "benchmark",
            "device",
            "flag",
            "vs siblings",
            "throughput",
            "sibling median (n)",
            "GPU",
            "host",
            "index",
            "UUID",
        ),
        tuple(rows),
        tuple(flags),
        caption,
    )
