"""``gpubench report``: :func:`add_arguments` adds its options, :func:`run` loads, builds, writes and
returns the exit code (0 report written, 2 nothing to report or bad usage)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from gpubench.config.options import config_from_args
from gpubench.report.build import build_report
from gpubench.report.load import load_runs
from gpubench.report.model import ReportError
from gpubench.report.outputs import default_output_dir, write_report

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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


def _explicit_devices(config: Any) -> list[str] | None:
    """The device order the user set (flag, environment or file); None: the order the runs recorded."""
    if any(key in config.sources for key in ("bench.devices", "dl.device")):
        return list(config.bench_devices())
    return None


def run(args: argparse.Namespace) -> int:
    """``gpubench report``: 0 report written, 2 nothing to report or bad usage."""
    config = config_from_args(args)
    settings = config.report
    if getattr(args, "no_plots", False):
        settings = dataclasses.replace(settings, plots=False)
    results_dir = Path(config.results.dir)
    quiet = bool(getattr(args, "quiet", False))
    loaded = load_runs(results_dir)
    for warning in loaded.warnings:
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
        report = build_report(
            results_dir,
            settings,
            _explicit_devices(config),
            benchmark=getattr(args, "benchmark", None),
            loaded=loaded,
        )
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    output = Path(args.output) if getattr(args, "output", None) else default_output_dir(results_dir)
    written = write_report(report, output, settings.formats)
    for line in report.warnings[len(loaded.warnings) :]:
        print(f"warning: {line}", file=sys.stderr)
    if not quiet:
        for line in report.summary:
            print(line)
    for kind, path in written.items():
        if not kind.startswith("plot:") or not quiet:
            print(f"{kind.split(':')[0]:<8} {path}")
    return EXIT_OK
