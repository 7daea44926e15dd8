"""The command-line face of distributed runs: the ``--dist-*`` options (:func:`add_arguments`, declared in
:mod:`gpubench.distributed.options`), :func:`run` (what ``gpubench verify|bench`` calls under torchrun) and
:func:`main` (``python -m gpubench.distributed``).

Imports: :mod:`gpubench.config`, :mod:`gpubench.devices`, :mod:`gpubench.verify` (its options, for
:func:`main`) and torch inside functions, and the distributed modules below it; never :mod:`gpubench.cli`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gpubench.distributed.launch import (
    EXIT_FAILED,
    EXIT_USAGE,
    DistributedError,
    RankState,
    choose_device,
    detect_launch,
    first_line,
    install_signal_handler,
)
from gpubench.distributed.options import add_arguments, options_from_args
from gpubench.distributed.rank import run_rank

__all__ = ["VERBS", "add_arguments", "main", "run"]

VERBS = ("verify", "bench")


def run(verb: str, args: argparse.Namespace) -> int:
    """``gpubench verify|bench`` as one rank of a torchrun job; the exit code (the same on every rank)."""
    if verb not in VERBS:
        print(
            f"error: gpubench {verb} does not run distributed; use one of {', '.join(VERBS)}", file=sys.stderr
        )
        return EXIT_USAGE
    try:
        launch = detect_launch()
    except DistributedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from gpubench.config import ConfigError
    from gpubench.config.options import config_from_args

    quiet = bool(getattr(args, "quiet", False))
    try:
        config = config_from_args(
            args if launch.rank == 0 else argparse.Namespace(**{**vars(args), "quiet": True})
        )
        opts = options_from_args(args)
    except (ConfigError, ValueError) as exc:
        print(f"error: rank {launch.rank} on {launch.host}: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from gpubench.devices import probe_cuda

    probe = probe_cuda()
    device, device_problem = choose_device(launch, config, opts, probe)
    if device.startswith("cuda") and device_problem is None:
        import torch

        torch.cuda.set_device(launch.local_rank)  # before any other CUDA work and before NCCL
    state = RankState(launch, verb, opts, device, backend="nccl" if device.startswith("cuda") else "gloo")
    install_signal_handler(state)
    try:
        return run_rank(state, config, args, probe, device_problem, quiet)
    except DistributedError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except Exception as exc:  # a peer lost inside a gather or collective (gloo: connection closed, timeout)
        print(
            f"error: {state.me} stopped during {state.phase}: {type(exc).__name__}: {first_line(exc)}. "
            "Another rank probably failed or died: its own output (and torchrun's summary) names it",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gpubench.distributed bench|verify [options]`` (the CLI's verbs dispatch to :func:`run`)."""
    from gpubench.config.options import add_common_options

    parser = argparse.ArgumentParser(prog="python -m gpubench.distributed")
    parser.add_argument("verb", choices=VERBS)
    add_common_options(parser)
    add_arguments(parser)
    try:
        from gpubench import verify

        verify.add_arguments(parser)
    except ImportError:
        pass
    args = parser.parse_args(argv)
    return run(args.verb, args)
