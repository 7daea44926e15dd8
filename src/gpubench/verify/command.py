"""``gpubench verify``: run the health checks on every configured device, print one table, save the run.

A pipeline: :func:`~gpubench.verify.run.run_checks` (readings -> decisions, a ``VerifyReport``),
:func:`require_gpu` (``--require-gpu``: a device that is not a verified GPU becomes a FAIL row),
:func:`~gpubench.verify.output.write_report` (the JSON and JUnit files),
:func:`~gpubench.verify.output.print_report` (one table, a summary line, the paths), then ``--json`` (the
saved document on stdout) and ``--junitxml`` (the JUnit file where CI wants it). :func:`verify` chains
them; :func:`add_arguments` and :func:`run` are the verb the CLI delegates to.
Exit code: 0 when no check FAILs, 1 when one does, 2 for bad usage or configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from gpubench import killpoints
from gpubench.cli.interrupts import holding_interrupts
from gpubench.config import LEVELS, Config, ConfigError
from gpubench.devices import CudaProbe
from gpubench.verify.checks import CHECK_NAMES, CHECKS
from gpubench.verify.output import JUnitPathError, print_report, verdicts_json, write_junit, write_report
from gpubench.verify.plan import Plan
from gpubench.verify.run import EXIT_USAGE, Progress, VerifyReport, run_checks
from gpubench.verify.verdicts import CheckResult, Verdict

REQUIRE_GPU = "require_gpu"  # the ``check`` name of the rows --require-gpu adds

# The checks that only a GPU can run (the ones report.gpu_verified counts): one of them must have run on
# a device for --require-gpu to call it verified. inventory runs even on an unusable device.
GPU_CHECKS = tuple(c.name for c in CHECKS if not c.cpu and c.name != "inventory")


def _console(stderr: bool = False) -> Any:
    from gpubench.console import console

    return console(stderr=stderr)


def _not_verified_reason(report: VerifyReport, device: Mapping[str, Any]) -> str | None:
    """Why ``device`` does not count as a verified GPU under --require-gpu (None when it does)."""
    name = str(device.get("device", ""))
    if not name.startswith("cuda"):
        return f"{name} is not a GPU: --require-gpu verifies GPUs only"
    if device.get("execution_device"):
        return f"{name}'s kernels ran on {device['execution_device']}, not on a GPU"
    rows = [r for r in report.results if r.device == name]
    if any(r.check in GPU_CHECKS and r.verdict is not Verdict.SKIP for r in rows):
        return None
    inventory = next((r for r in rows if r.check == "inventory" and r.verdict is Verdict.FAIL), None)
    if inventory is not None:
        return f"{name} was not verified: {inventory.message}"
    ran = ", ".join(r.check for r in rows if r.verdict is not Verdict.SKIP) or "none"
    return f"no GPU check ran on {name} (ran: {ran}; a GPU check is one of {', '.join(GPU_CHECKS)})"


def require_gpu(report: VerifyReport) -> VerifyReport:
    """``--require-gpu``: the report plus one FAIL row (check ``require_gpu``) per device that is not a
    verified GPU (cpu, a GPU whose work ran on cpu, one no GPU check ran on), or one for the run when it
    verified no device at all. A cluster's CI then fails where CUDA is broken instead of passing on cpu."""
    remedy = (
        "make the GPU usable (see the inventory and software rows), or drop --require-gpu for a run "
        "that may end on cpu"
    )
    rows = [
        CheckResult(
            REQUIRE_GPU,
            str(d.get("device", "")),
            Verdict.FAIL,
            value=str(d.get("device", "")),
            threshold="a verified GPU",
            message=reason,
            remedy=remedy,
        )
        for d in report.devices
        if (reason := _not_verified_reason(report, d)) is not None
    ]
    if not report.devices:
        rows.append(
            CheckResult(
                REQUIRE_GPU,
                "-",
                Verdict.FAIL,
                threshold="a verified GPU",
                message="no device was configured to verify",
                remedy=remedy,
            )
        )
    return dataclasses.replace(report, results=report.results + tuple(rows)) if rows else report


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
    table: bool = True,
    gpu_required: bool = False,
    json_stream: TextIO | None = None,
    junitxml: Path | None = None,
) -> tuple[VerifyReport, tuple[Path, Path]]:
    """Run, save and print: the library form of ``gpubench verify``. Returns the report and the paths
    written under ``results_dir``. ``table=False`` prints only the summary and the paths (the spinner
    still runs unless ``quiet``). ``json_stream`` receives the saved JSON document (``--json``);
    ``junitxml`` is one more place for the JUnit file (raises :class:`JUnitPathError` when it cannot be
    written, after the results are saved and shown).
    """
    console = console if console is not None else _console()
    target = Path(results_dir) if results_dir is not None else Path(config.results.dir)
    try:
        report = _run_with_status(
            config, console, quiet, level=level, checks=checks, probe=probe, history_dir=history_dir, plans=plans
        )
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: save the checks that completed, then stop
        _save_interrupted(exc, target)
        raise
    if gpu_required:
        report = require_gpu(report)
    try:
        with holding_interrupts():  # the checks are done: a signal now is raised once both files are saved
            killpoints.reached("verify.save")
            paths = write_report(report, target)
        killpoints.reached("verify.saved")
    except (OSError, ValueError):  # unwritable folder, or a link leading outside it: show the verdicts anyway
        _show(report, console, (), not table or quiet, json_stream)
        raise
    extra: tuple[Path, ...] = ()
    try:
        if junitxml is not None:
            extra = (write_junit(report, junitxml),)
    finally:  # the verdicts are shown (and --json printed) even when --junitxml cannot be written
        _show(report, console, (*paths, *extra), not table or quiet, json_stream)
    return report, paths


def _save_interrupted(exc: KeyboardInterrupt, target: Path) -> None:
    """Write the checks completed before ``exc`` (and the one it stopped, marked ``interrupted``) as
    ``<target>/verify/<run>.json`` and ``.xml``, saying so on stderr. Nothing when no check ran; a folder
    that cannot be written is named, and the interrupt goes on either way."""
    from gpubench.verify.run import INTERRUPTED_KEY, interrupted_report

    report = interrupted_report(exc)
    if report is None:
        return
    try:
        with holding_interrupts():  # a second Ctrl-C waits for the two files
            paths = write_report(report, target)
    except (OSError, ValueError) as error:
        print(f"error: the interrupted run's results were not saved: {error}", file=sys.stderr)
        return
    done = sum(1 for r in report.results if not r.readings.get(INTERRUPTED_KEY))
    for path in paths:
        print(f"wrote {path} ({done} check(s) completed, {report.interrupted} stopped the run)", file=sys.stderr)


def _run_with_status(config: Config, console: Any, quiet: bool, **kw: Any) -> VerifyReport:
    """run_checks under a spinner naming the check in progress (on a terminal, unless quiet)."""
    status = None
    progress: Progress | None = None
    if not quiet and getattr(console, "is_terminal", False):
        status = console.status("verifying")
        status.start()

        def progress(text: str) -> None:
            status.update(f"verifying {text}")

    try:
        return run_checks(config, progress=progress, **kw)
    finally:
        if status is not None:
            status.stop()


def _show(
    report: VerifyReport, console: Any, paths: tuple[Path, ...], quiet: bool, json_stream: TextIO | None
) -> None:
    print_report(report, console, paths, quiet=quiet)
    if json_stream is not None:
        json_stream.write(verdicts_json(report))
        json_stream.flush()


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
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the run's JSON document (results/verify/<run>.json) on stdout and nothing else; "
        "the summary and the paths go to stderr",
    )
    parser.add_argument(
        "--junitxml",
        metavar="PATH",
        help="also write the JUnit XML to PATH (folders created; results/verify/<run>.xml is written too)",
    )
    parser.add_argument(
        "--require-gpu",
        action="store_true",
        help="FAIL (exit 1) unless every device is a GPU that was verified: a cpu device, a GPU that cannot "
        "be used, or a run that verified no GPU fails",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``gpubench verify``: 0 no FAIL, 1 a FAIL, 2 bad configuration or an unwritable output path."""
    from gpubench.config.options import config_from_args

    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from gpubench.results import ResultPathError

    as_json = bool(getattr(args, "json", False))
    history = Path(args.history_dir) if getattr(args, "history_dir", None) else None
    junitxml = Path(args.junitxml).expanduser() if getattr(args, "junitxml", None) else None
    stdout = sys.stdout
    # --json: stdout holds the document alone; anything else a library prints there goes to stderr.
    redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    try:
        with redirect:
            report, _paths = verify(
                config,
                level=getattr(args, "level", None),
                checks=getattr(args, "checks", None),
                history_dir=history,
                console=_console(stderr=as_json),
                quiet=bool(getattr(args, "quiet", False)),
                table=not as_json,
                gpu_required=bool(getattr(args, "require_gpu", False)),
                json_stream=stdout if as_json else None,
                junitxml=junitxml,
            )
    except (ResultPathError, OSError) as exc:
        print(
            f"error: the checks ran but their results were not saved: {exc}. Fix: point --results-dir "
            "(results.dir) at a folder you can write, with no link inside it that leads out of it",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except JUnitPathError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return report.exit_code
