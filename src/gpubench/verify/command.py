"""``gpubench verify``: run the health checks on every configured device, print one table, save the run.

A pipeline: :func:`~gpubench.verify.run.run_checks` (readings -> decisions, a ``VerifyReport``),
:func:`~gpubench.verify.output.write_report` (the JSON and JUnit files),
:func:`~gpubench.verify.output.print_report` (one table, a summary line, the paths). :func:`verify` chains
the three; :func:`add_arguments` and :func:`run` are the verb the CLI delegates to.
Exit code: 0 when no check FAILs, 1 when one does, 2 for bad usage or configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gpubench.config import LEVELS, Config, ConfigError
from gpubench.devices import CudaProbe
from gpubench.verify.checks import CHECK_NAMES
from gpubench.verify.output import print_report, write_report
from gpubench.verify.plan import Plan
from gpubench.verify.run import EXIT_USAGE, Progress, VerifyReport, run_checks


def _console() -> Any:
    from gpubench.console import console

    return console()


def verify(
    config: Config,
    *,
    level: str | None = None,
    checks: Iterable[str] | None = None,
    probe: CudaProbe | None = None,
    results_dir: Path | None = None,
    history_dir: Path | None = None,
    plans: Mapping[str, Plan] | None = None,
    console: Any = None,
    quiet: bool = False,
) -> tuple[VerifyReport, tuple[Path, Path]]:
    """Run, save and print: the library form of ``gpubench verify``. Returns the report and the paths
    written.
    """
    console = console if console is not None else _console()
    status = None
    progress: Progress | None = None
    if not quiet and getattr(console, "is_terminal", False):
        status = console.status("verifying")
        status.start()

        def progress(text: str) -> None:
            status.update(f"verifying {text}")

    try:
        report = run_checks(
            config,
            level=level,
            checks=checks,
            probe=probe,
            history_dir=history_dir,
            plans=plans,
            progress=progress,
        )
    finally:
        if status is not None:
            status.stop()
    target = Path(results_dir) if results_dir is not None else Path(config.results.dir)
    try:
        paths = write_report(report, target)
    except (OSError, ValueError):  # unwritable folder, or a link leading outside it: show the verdicts anyway
        print_report(report, console, (), quiet=quiet)
        raise
    print_report(report, console, paths, quiet=quiet)
    return report, paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``gpubench verify`` options (the CLI adds --config, --device, --devices, --results-dir, --set, -q)."""
    parser.add_argument("--level", choices=LEVELS, help="quick (default: verify.level), long, or stress")
    parser.add_argument(
        "--check",
        action="append",
        choices=CHECK_NAMES,
        metavar="NAME",
        dest="checks",
        help=f"run only this check (repeatable): {', '.join(CHECK_NAMES)}",
    )
    parser.add_argument(
        "--history-dir",
        metavar="DIR",
        help="earlier runs for the perf floor (default: verify.history_dir, else RESULTS/verify)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``gpubench verify``: 0 no FAIL, 1 a FAIL, 2 bad configuration."""
    from gpubench.config.options import config_from_args

    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from gpubench.results import ResultPathError

    history = Path(args.history_dir) if getattr(args, "history_dir", None) else None
    try:
        report, _paths = verify(
            config,
            level=getattr(args, "level", None),
            checks=getattr(args, "checks", None),
            history_dir=history,
            quiet=bool(getattr(args, "quiet", False)),
        )
    except (ResultPathError, OSError) as exc:
        print(
            f"error: the checks ran but their results were not saved: {exc}. Fix: point --results-dir "
            "(results.dir) at a folder you can write, with no link inside it that leads out of it",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return report.exit_code
