"""The command line as a pipeline: parse the arguments, check the configuration, run one verb, return its
exit code (:mod:`gpubench.cli.exit_codes`).

``info`` and ``config`` are here in the package (:mod:`.info`, :mod:`.config_cmd`); the other verbs live
in their own packages, listed in :data:`DELEGATED` and imported only when they are the verb being run, so
that ``gpubench config`` never imports torch. Named ``app`` rather than ``main`` so that the module is
not shadowed by the :func:`main` function :mod:`gpubench.cli` re-exports.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from gpubench import __version__, killpoints
from gpubench.cli.config_cmd import add_config_arguments, run_config
from gpubench.cli.exit_codes import EXIT_USAGE
from gpubench.cli.info import add_info_arguments, run_info
from gpubench.cli.interrupts import INTERRUPTED, import_torch_holding_interrupts, run_interruptible
from gpubench.config import ConfigError
from gpubench.config.options import add_common_options, config_from_args

# verbs implemented in their own modules: each has add_arguments(parser) and run(args) -> int
DELEGATED = {
    "verify": ("gpubench.verify.command", "run the health checks on the configured devices"),
    "bench": ("gpubench.bench.command", "run the benchmarks in bench/ (or a full MNIST training run)"),
    "report": ("gpubench.report.command", "turn saved runs into per-GPU reports (Markdown, HTML, CSV, Parquet)"),
}


# verbs that run one rank per GPU under torchrun (gpubench.distributed.command.run merges them on rank 0)
DISTRIBUTED_VERBS = ("verify", "bench")

# verbs that import PyTorch; they import it up front, with interrupts held
TORCH_VERBS = ("info", "verify", "bench")


class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


def build_parser(active_verb: str | None = None) -> argparse.ArgumentParser:
    """The argument parser. Only ``active_verb``'s module is imported (its options are added), so that
    ``gpubench config show`` never imports the modules that need torch."""
    parser = argparse.ArgumentParser(
        prog="gpubench",
        description="Verify and benchmark the GPUs of a PyTorch machine.",
        epilog="Exit codes: 0 ok, 1 a check failed, 2 bad usage or configuration, 130 interrupted (Ctrl-C), 143 "
        "stopped by SIGTERM.",
    )
    parser.add_argument("--version", action="version", version=f"gpubench {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    add_info_arguments(verbs.add_parser("info", help="PyTorch, CUDA, driver and one row per visible device"))
    add_config_arguments(verbs.add_parser("config", help="show the effective configuration or check a file"))

    for verb, (module_name, help_text) in DELEGATED.items():
        sub = verbs.add_parser(verb, help=help_text)
        add_common_options(sub)
        if verb != active_verb:
            continue
        module = _load_module(module_name)
        if module is not None:
            module.add_arguments(sub)
        if verb in DISTRIBUTED_VERBS:
            dist_module = _load_module("gpubench.distributed.command")
            if dist_module is not None:
                dist_module.add_arguments(sub)
    return parser


def launched_by_torchrun(env: Any = None) -> bool:
    """True inside a process started by torchrun (or another launcher that sets WORLD_SIZE and RANK)."""
    env = os.environ if env is None else env
    return "WORLD_SIZE" in env and "RANK" in env


def _load_module(name: str) -> Any:
    """The module of a delegated verb, or None when this build lacks it.

    The command line's only lazy import of its verbs: they need torch, and ``gpubench config`` must not.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def _interrupted_code(code: int) -> int:
    """``code``, or 130/143 when the verb was a pytest session that a signal interrupted: pytest catches the
    interrupt, saves what completed and returns its own "interrupted" code, the same for both signals."""
    plugin = sys.modules.get("gpubench.bench.plugin")
    signum = getattr(plugin, "interrupted_by", None)
    if not signum:
        return code
    plugin.interrupted_by = None  # type: ignore[union-attr]
    print(INTERRUPTED, file=sys.stderr)
    return 128 + int(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code. Ctrl-C exits 130 and SIGTERM 143, without a traceback,
    wherever they land (even while the parser imports the verb's module). Called without ``argv`` (the
    process's command line: ``python -m gpubench``, the ``gpubench`` script), that holds until the process
    ends, the interpreter's shutdown included."""
    code = run_interruptible(lambda: _main(argv), to_the_end=argv is None)
    killpoints.reached("cli.exit")  # the command is done; the process is about to end
    return code


def _main(argv: Sequence[str] | None) -> int:
    killpoints.reached("cli.start")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        if args.verb in TORCH_VERBS:
            if args.verb != "info":  # a bad configuration is reported at once, not after PyTorch loads (seconds)
                config_from_args(argparse.Namespace(**{**vars(args), "quiet": True}))
            import_torch_holding_interrupts()
        if args.verb == "info":
            return run_info(args)
        if args.verb == "config":
            return run_config(args)
        if args.verb in DISTRIBUTED_VERBS and launched_by_torchrun():
            dist_module = _load_module("gpubench.distributed.command")
            if dist_module is None:
                print("error: distributed runs are not available in this build", file=sys.stderr)
                return EXIT_USAGE
            return int(dist_module.run(args.verb, args))
        module = _load_module(DELEGATED[args.verb][0])
        if module is None:
            print(f"error: `gpubench {args.verb}` is not available in this build", file=sys.stderr)
            return EXIT_USAGE
        return _interrupted_code(int(module.run(args)))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
