"""``gpubench report``: :func:`add_arguments` adds its options, :func:`run` loads, builds, writes and
returns the exit code (0 report written, 1 ``--fail-on`` found what it names, 2 nothing to report or bad
usage)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gpubench import killpoints
from gpubench.config.options import config_from_args
from gpubench.report.analysis import BASELINE_RUNS, TREND_RUNS, CompareCache
from gpubench.report.build import build_report, noise_rule
from gpubench.report.model import ReportError
from gpubench.report.outputs import default_output_dir, write_report
from gpubench.report.store import INGEST_BATCH, ResultsStore, ingest_workers

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
FAIL_ON = ("regression", "outlier", "missed-target")


def fail_on_list(text: str) -> tuple[str, ...]:
    """``--fail-on regression,outlier``: the findings that make the exit status 1."""
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [c for c in chosen if c not in FAIL_ON]
    if unknown or not chosen:
        msg = f"--fail-on: unknown {', '.join(map(repr, unknown)) or 'empty list'}; choose from {','.join(FAIL_ON)}"
        raise argparse.ArgumentTypeError(msg)
    return chosen


def _probability(option: str, example: str) -> Callable[[str], float]:
    """An argparse type for ``option``: a number strictly between 0 and 1."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0.0 < value < 1.0:
            msg = f"{option} {text!r}: expected a number between 0 and 1, e.g. {example}"
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse


significance = _probability("--alpha", "0.01")  # a significance level
false_discovery_rate = _probability("--fdr", "0.05")  # the false-discovery rate Benjamini-Hochberg controls


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``gpubench report`` (the CLI adds --config, --results-dir, --set... itself)."""
    parser.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        help="folder for report.md, report.html, tidy.csv, tidy.parquet and plots/ "
        "(default: <results>/report/<UTC timestamp>/)",
    )
    parser.add_argument(
        "--benchmark",
        metavar="NAME",
        help="benchmark whose utilization, power and clock timelines are plotted "
        "(part of its name; default: report.benchmark, else the longest traced one)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip matplotlib plots (faster)")
    parser.add_argument(
        "--store",
        metavar="DIR",
        help="the Parquet results store new saved runs are ingested into and the report reads "
        "(default: <results>/store/; delete it to rebuild it from the JSON files)",
    )
    parser.add_argument(
        "--fail-on",
        metavar="LIST",
        type=fail_on_list,
        default=(),
        help="exit 1 when the report finds any of these (comma list): regression, outlier, missed-target "
        "(flags follow the noise-aware rule: significant and beyond the report.regression_pct / "
        "report.outlier_pct threshold)",
    )
    parser.add_argument(
        "--alpha",
        type=significance,
        default=None,
        help="significance level a regression or outlier flag needs (default 0.01)",
    )
    parser.add_argument(
        "--fdr",
        metavar="Q",
        type=false_discovery_rate,
        default=None,
        help="false-discovery rate the report's flags control over all its comparisons (every GPU x "
        "benchmark trend and outlier test), by Benjamini-Hochberg; the summary states it (default 0.05)",
    )


def _explicit_devices(config: Any) -> list[str] | None:
    """The device order the user set (flag, environment or file); None: the order the runs recorded."""
    if any(key in config.sources for key in ("bench.devices", "dl.device")):
        return list(config.bench_devices())
    return None


def run(args: argparse.Namespace) -> int:
    """``gpubench report``: 0 report written, 1 ``--fail-on`` found something, 2 nothing to report or bad usage."""
    config = config_from_args(args)
    settings = config.report
    if getattr(args, "no_plots", False):
        settings = dataclasses.replace(settings, plots=False)
    results_dir = Path(config.results.dir)
    quiet = bool(getattr(args, "quiet", False))
    killpoints.reached("report.load")
    store = Path(args.store) if getattr(args, "store", None) else None
    results_store = ResultsStore(results_dir, store)
    # worker processes for a long ingest: the CLI's main module is guarded, so they may spawn
    ingested = results_store.ingest(None if quiet else _ingest_progress(results_store.root), ingest_workers())
    # each series' last runs (what the trends read), the rounds of the runs they compare; counts of all
    loaded = results_store.load(rounds_runs=BASELINE_RUNS + 1, window=TREND_RUNS)
    cache = CompareCache(results_store.comparisons())
    for warning in ingested.warnings:  # named once: the store's ledger remembers them for later reports
        print(f"warning: {warning}", file=sys.stderr)
    if loaded.empty:
        where = "no readable saved runs" if loaded.warnings else "no saved runs"
        print(
            f"error: {where} under {results_dir}/ (looked in benchmarks/**/*.json and verify/*.json). "
            "Make one with `pytest bench` (benchmarks, saved under results/benchmarks/) or `gpubench verify` "
            "(health checks), or point --results-dir at a results folder.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        killpoints.reached("report.build")
        report = build_report(
            results_dir,
            settings,
            _explicit_devices(config),
            benchmark=getattr(args, "benchmark", None),
            loaded=loaded,
            rule=noise_rule(settings, getattr(args, "alpha", None), getattr(args, "fdr", None)),
            cache=cache,
        )
        results_store.keep_comparisons(cache.kept())
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    output = Path(args.output) if getattr(args, "output", None) else default_output_dir(results_dir)
    killpoints.reached("report.write")
    written = write_report(report, output, settings.formats)
    killpoints.reached("report.written")
    for line in report.warnings[len(loaded.warnings) :]:
        print(f"warning: {line}", file=sys.stderr)
    if not quiet:
        for line in report.summary:
            print(line)
    for kind, path in written.items():
        if not kind.startswith("plot:") or not quiet:
            print(f"{kind.split(':')[0]:<8} {path}")
    return gate(report.findings, getattr(args, "fail_on", ()) or ())


def _ingest_progress(store: Path) -> Callable[[int, int], None]:
    """A line on stderr per batch of a long ingest (a cold store over a fleet's runs takes minutes)."""

    def report(done: int, total: int) -> None:
        if total > INGEST_BATCH:
            print(f"store: {done:,} of {total:,} new saved runs ingested into {store}", file=sys.stderr)

    return report


def gate(findings: Mapping[str, int | None], fail_on: Sequence[str]) -> int:
    """Exit 1 when a finding named in ``fail_on`` was found, else 0; says which on stderr.

    ``missed-target`` is ignored, with a note, when no saved run recorded targets.
    """
    found = []
    for kind in fail_on:
        count = findings.get(kind)
        if count is None:
            print(f"note: --fail-on {kind}: the saved runs record no targets; ignored", file=sys.stderr)
        elif count:
            found.append(f"{count} {kind}(s)")
    if found:
        print(f"--fail-on: found {', '.join(found)}; exit {EXIT_FAILED}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
