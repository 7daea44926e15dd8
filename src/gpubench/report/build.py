"""The report assembled: :func:`build_report` loads the runs, derives every table, page and plot, and
returns the :class:`~gpubench.report.model.Report` the renderers show."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gpubench.config import ReportSection
from gpubench.report.analysis import (
    BASELINE_RUNS,
    CompareCache,
    bench_label,
    missed_targets,
    outlier_table,
    ratio_table,
    recorded_device_order,
    trend_table,
)
from gpubench.report.compare import NoiseRule
from gpubench.report.fdr import FdrControl, control_fdr
from gpubench.report.fleet import (
    ALL_PAGES_LIMIT,
    RUNS_SHOWN,
    attention,
    fleet_tables,
    gpu_index,
    limit_rows,
    runs_caption,
    skipped_table,
)
from gpubench.report.load import LoadedRuns, load_runs
from gpubench.report.model import Plot, Report, Table
from gpubench.report.pages import gpu_pages, not_run
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
    rule: NoiseRule | None = None,
    cache: CompareCache | None = None,
) -> Report:
    """Load the runs under ``results_dir`` and derive every table, page and plot of the report.

    ``configured_devices`` orders the devices (the first is the ratio denominator); None: the order the
    latest run was configured with (its ``bench.devices``). ``rule``: how sure a regression or outlier
    flag must be (default: :func:`noise_rule` of ``settings``). ``cache``: comparisons already made
    (:class:`~gpubench.report.analysis.CompareCache`; the store keeps one between reports). Raises :class:`ReportError` when
    ``benchmark`` names no traced benchmark.
    """
    settings = settings or ReportSection()
    rule = rule or noise_rule(settings)
    loaded = loaded or load_runs(results_dir)
    warnings = list(loaded.warnings)
    frame = loaded.benchmarks
    if configured_devices is None:
        configured_devices = recorded_device_order(loaded)
    ratios = ratio_table(frame, configured_devices)
    cache = cache if cache is not None else CompareCache()
    trends = trend_table(
        frame, settings.regression_pct, loaded.samples, rule, cache=cache, history=loaded.history
    )
    outliers = outlier_table(frame, settings.outlier_pct, loaded.samples, rule, cache=cache)
    fdr = control_fdr(((trends, "regression"), (outliers, "outlier")), rule.fdr)
    fleet_line, by_host, by_model = fleet_tables(loaded, trends, outliers)
    devices = _device_count(loaded)
    # a small machine: a page per device; a fleet: pages for what needs a look, one index for the rest
    only = None if devices <= ALL_PAGES_LIMIT else set(attention(loaded, trends, outliers))
    pages = gpu_pages(loaded, trends, outliers, only)
    index = gpu_index(loaded, {p.uuid for p in pages}) if only is not None else Table((), ())
    chosen = benchmark or settings.benchmark or None
    timeline = choose_timeline_benchmark(frame, loaded.results_dir, chosen) if not frame.empty else None
    plots = _plots(loaded, settings, timeline, configured_devices, warnings)
    findings = {
        "regression": int(trends["regression"].sum()) if not trends.empty else 0,
        "outlier": int(outliers["outlier"].sum()) if not outliers.empty else 0,
        "missed-target": missed_targets(frame),
    }
    shown = devices if only is not None else len(pages)
    summary = (fleet_line, *_summary(loaded, settings, rule, (trends, outliers), findings, shown, fdr))
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Report(
        generated=now,
        results_dir=str(results_dir),
        loaded=loaded,
        settings=settings,
        runs=_runs_rendered(loaded),
        ratios=_ratio_rendered(ratios),
        trends=limit_rows(_trend_rendered(trends, settings.regression_pct, rule), what="trends"),
        outliers=limit_rows(_outlier_rendered(outliers, settings.outlier_pct, rule), what="comparisons"),
        pages=pages,
        plots=plots,
        timeline_benchmark=timeline,
        summary=summary,
        warnings=tuple(warnings),
        findings=findings,
        fleet_hosts=by_host,
        fleet_models=by_model,
        gpu_index=index,
        skipped=skipped_table(warnings),
    )


def _device_count(loaded: LoadedRuns) -> int:
    uuids = set(loaded.benchmarks["gpu_uuid"].astype(str))
    if not loaded.verify.empty:
        uuids |= set(loaded.verify["gpu_uuid"].astype(str))
    return len(uuids)


def noise_rule(settings: ReportSection, alpha: float | None = None, fdr: float | None = None) -> NoiseRule:
    """The comparison rule: ``alpha`` and ``fdr`` (``gpubench report --alpha``, ``--fdr``) when given, else
    ``report.alpha``, ``report.fdr``, ``report.min_rounds`` and ``report.max_spread`` where the configuration
    defines them, else the defaults of :class:`~gpubench.report.compare.NoiseRule` (alpha 0.01, FDR 0.05,
    5 rounds, IQR/median 0.25)."""
    default = NoiseRule()
    return NoiseRule(
        alpha=float(alpha if alpha is not None else getattr(settings, "alpha", default.alpha)),
        fdr=float(fdr if fdr is not None else getattr(settings, "fdr", default.fdr)),
        min_rounds=int(getattr(settings, "min_rounds", default.min_rounds)),
        max_spread=float(getattr(settings, "max_spread", default.max_spread)),
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
    loaded: LoadedRuns,
    settings: ReportSection,
    rule: NoiseRule,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    findings: dict[str, int | None],
    devices: int,
    fdr: FdrControl,
) -> tuple[str, ...]:
    """The report's opening lines: what was read, how many regressions and outliers (the first few named),
    the false-discovery rate the flags control over how many comparisons, what was skipped."""
    frame = loaded.benchmarks
    history = loaded.history
    if history is None:
        bench_runs = frame["run_id"].nunique()
        verify_runs = loaded.verify["run_id"].nunique() if not loaded.verify.empty else 0
        rows = len(frame)
    else:  # the tables hold each series' last runs: the counts are the whole history's
        kinds = loaded.runs["kind"]  # the store's table of runs: every run, one row each
        bench_runs, verify_runs = int((kinds == "benchmarks").sum()), int((kinds == "verify").sum())
        rows = history.benchmark_rows
    noisy = sum(int((t["verdict"] == "too noisy").sum()) for t in tables if not t.empty)
    missed = findings["missed-target"]
    lines = [
        f"{bench_runs} benchmark run(s), {verify_runs} verification run(s), {devices} device(s), "
        f"{rows} benchmark rows",
        *_window_line(loaded),
        f"{findings['regression']} regression(s) (significantly slower than the GPU's baseline run, "
        f"and by more than {settings.regression_pct:g}%)",
        *_named(tables[0], "regression", "REGRESSION"),
        f"{findings['outlier']} outlier(s) (significantly slower than a same-model sibling on any host, "
        f"and > {settings.outlier_pct:g}% below the siblings' median)",
        *_named(tables[1], "outlier", "OUTLIER"),
        f"{fdr.describe()}; each flag also needs p < {rule.alpha:g}",
    ]
    if noisy:
        lines.append(f"{noisy} comparison(s) too noisy to make (see their verdicts)")
    if missed is not None:
        lines.append(f"{missed} missed target(s) in the latest runs")
    lines.append(
        f"{len(loaded.warnings)} file(s) or entries skipped" if loaded.warnings else "no damaged files"
    )
    lines.extend(not_run(loaded))  # configured devices that never ran: a line each, no page
    return tuple(lines)


NAMED = 5


def _window_line(loaded: LoadedRuns) -> list[str]:
    """A line saying the tables hold each series' last runs only, when a windowed read left rows out."""
    history = loaded.history
    if history is None or (
        history.benchmark_rows <= len(loaded.benchmarks) and history.verify_rows <= len(loaded.verify)
    ):
        return []
    return [
        f"tables, trends and tidy.csv read each GPU's last {history.window} runs of each benchmark "
        f"({len(loaded.benchmarks)} of {history.benchmark_rows} rows); every run is in the results store "
        f"{history.store}"
    ]


def _named(table: pd.DataFrame, flag: str, word: str) -> list[str]:
    """The first :data:`NAMED` flagged rows of ``table``, worst first, one line each naming GPU and host."""
    if table.empty or not table[flag].any():
        return []
    column = "change_pct" if flag == "regression" else "deficit_pct"
    flagged = table[table[flag]].sort_values(column, ascending=False, kind="stable")
    lines = [
        f"  {word} {r['host']} {r['device']} ({cell(r['gpu_name'])}, {r['gpu_uuid']}): "
        f"{bench_label(r['group'], r['case'])} {format_pct(r['ratio'] * 100 - 100, signed=True)} slower"
        for _, r in flagged.head(NAMED).iterrows()
    ]
    if len(flagged) > NAMED:
        lines.append(f"  … and {len(flagged) - NAMED} more (see the tables)")
    return lines


def _runs_rendered(loaded: LoadedRuns) -> Table:
    rows = []
    for _, r in loaded.runs.tail(RUNS_SHOWN).iterrows():
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
    return Table(
        ("kind", "run", "time", "host", "devices", "torch", "driver", "config files"),
        tuple(rows),
        caption=runs_caption(loaded, len(rows)),
    )


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


_TREND_FLAGS = {"slower": "REGRESSION", "faster": "faster", "too noisy": "noisy"}


def _trend_rendered(trends: pd.DataFrame, pct: float, rule: NoiseRule) -> Table:
    compared = trends[trends["runs"] >= 2] if not trends.empty else trends
    rows, flags = [], []
    order = (
        compared.sort_values(["regression", "change_pct"], ascending=[False, False])
        if not compared.empty
        else compared
    )
    for r in order.to_dict("records"):  # iterrows builds a Series a row: 0.2 s at 1,024 trends
        rows.append(
            (
                bench_label(r["group"], r["case"]),
                r["host"],
                r["device"],
                "REGRESSION" if r["regression"] else _TREND_FLAGS.get(str(r["verdict"]), "ok"),
                format_pct(r["change_pct"], signed=True),
                r["history"],
                cell(r["comparison"]),
                cell(r["gpu_name"]),
                r["gpu_uuid"],
            )
        )
        flags.append(bool(r["regression"]))
    flagged = sum(flags)
    caption = (
        f"{flagged} regression(s): the latest run's rounds significantly slower than the baseline run's "
        f"(the median of the previous runs, up to {BASELINE_RUNS}; p < {rule.alpha:g} and within the "
        f"Benjamini–Hochberg cutoff at FDR {rule.fdr:g}) and its median more than {pct:g}% above, per GPU "
        f"UUID. Verdicts give the ratio of medians (latest / baseline) with its {(1 - rule.alpha) * 100:g}% "
        "interval."
        if rows
        else "Only one run per benchmark and GPU so far: nothing to compare with."
    )
    return Table(
        # host and device first, the trend beside the change: at fleet size the verdict text is wide
        ("benchmark", "host", "device", "flag", "change", "median per run", "verdict", "GPU", "UUID"),
        tuple(rows),
        tuple(flags),
        caption,
    )


def _outlier_rendered(outliers: pd.DataFrame, pct: float, rule: NoiseRule) -> Table:
    rows, flags = [], []
    order = (
        outliers.sort_values(["outlier", "deficit_pct"], ascending=[False, False])
        if not outliers.empty
        else outliers
    )
    for r in order.to_dict("records"):
        index = "–" if r["gpu_index"] != r["gpu_index"] else str(int(r["gpu_index"]))
        rows.append(
            (
                bench_label(r["group"], r["case"]),
                r["host"],
                r["device"],
                "OUTLIER" if r["outlier"] else "ok",
                format_pct(-r["deficit_pct"], signed=True),
                f"{format_number(r['throughput'])} {r['throughput_unit']}",
                f"{format_number(r['sibling_median'])} ({r['siblings']})",
                cell(r["comparison"]),
                r["gpu_name"],
                index,
                r["gpu_uuid"],
            )
        )
        flags.append(bool(r["outlier"]))
    caption = (
        f"{sum(flags)} outlier(s): throughput more than {pct:g}% below the median of same-model siblings, "
        f"and rounds significantly slower (p < {rule.alpha:g}, within the FDR {rule.fdr:g} cutoff) than the "
        "nearest-to-median sibling's, on any host. "
        "Verdicts give the time ratio (this GPU / that sibling) with its interval."
        if rows
        else "No GPU model with two or more GPUs on the same benchmark: nothing to compare."
    )
    return Table(
        (
            "benchmark",
            "host",
            "device",
            "flag",
            "vs siblings",
            "throughput",
            "sibling median (n)",
            "verdict",
            "GPU",
            "index",
            "UUID",
        ),
        tuple(rows),
        tuple(flags),
        caption,
    )
