"""The ``--dist-*`` options of a distributed run: declared for argparse, validated into :class:`Options`,
and the collective size sweep they choose. Seconds, bytes, GB/s (1e9), percent.

Imports: the standard library and :mod:`gpubench.distributed.collectives` only (the sweep defaults).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from gpubench.distributed import collectives as coll

DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Options:
    """The ``--dist-*`` options of a run. Seconds, bytes, GB/s (1e9), percent."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    expect_world_size: int | None = None
    device: str = "auto"  # auto, cuda, cpu
    ops: tuple[str, ...] = coll.OPS
    min_bytes: int | None = None  # None: the CPU or GPU default
    max_bytes: int | None = None
    size_factor: int = 4
    rounds: int = 20
    warmup: int = 3
    min_busbw_gbps: float | None = None
    ddp_steps: int | None = None  # None: 20 on cpu, 200 on GPUs
    ddp_warmup: int = 3
    ddp_world_sizes: str | None = None
    straggler_pct: float | None = None  # None: verify.perf_floor_pct
    skip: frozenset[str] = frozenset()
    init_file: str | None = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--dist-*`` options for ``gpubench bench`` / ``verify`` (used only under torchrun)."""
    group = parser.add_argument_group("distributed runs (under torchrun)")
    # three steps in --help order: that order is what users read, so it is kept exactly
    _add_launch_options(group)
    _add_collective_options(group)
    _add_phase_options(group)


def _add_launch_options(group: argparse._ArgumentGroup) -> None:
    """How long a rank may be late, how many ranks to expect, which device each rank takes."""
    group.add_argument(
        "--dist-timeout",
        type=float,
        metavar="S",
        default=DEFAULT_TIMEOUT_S,
        help=f"a rank later than this at a barrier, or a collective slower, ends the run naming it "
        f"(default {DEFAULT_TIMEOUT_S:g} s)",
    )
    group.add_argument(
        "--dist-expect-world-size",
        type=int,
        metavar="N",
        help="fail at once unless the run has exactly N ranks (catches a node that did not start)",
    )
    group.add_argument(
        "--dist-device",
        choices=("auto", "cuda", "cpu"),
        default="auto",
        help="auto: cuda:LOCAL_RANK when CUDA GPUs are visible (unless the configuration says cpu), else cpu",
    )


def _add_collective_options(group: argparse._ArgumentGroup) -> None:
    """The collectives sweep: which operations, which sizes, how many rounds, the bandwidth gate."""
    group.add_argument(
        "--dist-ops",
        metavar="LIST",
        default=",".join(coll.OPS),
        help=f"collectives to measure (default {','.join(coll.OPS)})",
    )
    group.add_argument(
        "--dist-min-bytes",
        metavar="SIZE",
        help=f"smallest collective size (default {coll.format_bytes(coll.CPU_SWEEP[0])} on cpu, "
        f"{coll.format_bytes(coll.GPU_SWEEP[0])} on GPUs)",
    )
    group.add_argument(
        "--dist-max-bytes",
        metavar="SIZE",
        help=f"largest collective size (default {coll.format_bytes(coll.CPU_SWEEP[1])} on cpu, "
        f"{coll.format_bytes(coll.GPU_SWEEP[1])} on GPUs)",
    )
    group.add_argument(
        "--dist-size-factor",
        type=int,
        metavar="F",
        default=4,
        help="each size of the sweep is F times the last (default 4)",
    )
    group.add_argument(
        "--dist-rounds",
        type=int,
        metavar="N",
        default=20,
        help="timed rounds per collective and size, the same on every rank (default 20)",
    )
    group.add_argument(
        "--dist-warmup", type=int, metavar="N", default=3, help="untimed rounds first (default 3)"
    )
    group.add_argument(
        "--dist-min-busbw",
        type=float,
        metavar="GBPS",
        help="fail the run when a collective's best bus bandwidth is below this (GB/s, 1e9)",
    )


def _add_phase_options(group: argparse._ArgumentGroup) -> None:
    """DDP scaling, the straggler threshold, phases to skip, and the file rendezvous."""
    group.add_argument(
        "--dist-ddp-steps",
        type=int,
        metavar="N",
        help="timed DDP training steps per world size (default 20 on cpu, 200 on GPUs)",
    )
    group.add_argument(
        "--dist-ddp-world-sizes",
        metavar="LIST",
        help="world sizes of the DDP scaling table (default 1,2,4,...,N)",
    )
    group.add_argument(
        "--dist-straggler-pct",
        type=float,
        metavar="PCT",
        help="flag a GPU more than PCT %% below the median of its same-model siblings "
        "(default: verify.perf_floor_pct)",
    )
    group.add_argument(
        "--dist-skip",
        metavar="LIST",
        default="",
        help="phases to leave out of bench: collectives, ddp (comma-separated)",
    )
    group.add_argument(
        "--dist-init-file",
        metavar="PATH",
        help="rendezvous through a shared file instead of MASTER_ADDR:MASTER_PORT (tests, shared "
        "file systems); the file must not exist before the run",
    )


def options_from_args(args: argparse.Namespace) -> Options:
    """Validated :class:`Options`; ValueError (exit 2) with the option's name when one is wrong."""

    def g(name: str, default: Any = None) -> Any:
        return getattr(args, name, default)

    ops = tuple(
        o.strip().replace("-", "_") for o in str(g("dist_ops") or ",".join(coll.OPS)).split(",") if o.strip()
    )
    for op in ops:
        if op not in coll.OPS:
            msg = f"--dist-ops: unknown collective {op!r}; use some of {', '.join(coll.OPS)}"
            raise ValueError(msg)
    skip = frozenset(s.strip() for s in str(g("dist_skip") or "").split(",") if s.strip())
    if skip - {"collectives", "ddp"}:
        unknown = ", ".join(sorted(skip - {"collectives", "ddp"}))
        msg = f"--dist-skip: unknown phase(s) {unknown}; use collectives, ddp"
        raise ValueError(msg)
    timeout = float(g("dist_timeout", DEFAULT_TIMEOUT_S))
    if timeout <= 0:
        msg = f"--dist-timeout {timeout}: give a positive number of seconds"
        raise ValueError(msg)
    for name in ("dist_rounds", "dist_size_factor"):
        value = g(name)
        if value is not None and int(value) < 1:
            msg = f"--{name.replace('_', '-')} {value}: give a whole number >= 1"
            raise ValueError(msg)
    try:
        min_bytes = coll.parse_bytes(g("dist_min_bytes")) if g("dist_min_bytes") else None
        max_bytes = coll.parse_bytes(g("dist_max_bytes")) if g("dist_max_bytes") else None
    except coll.CollectiveError as exc:
        msg = f"--dist-min-bytes/--dist-max-bytes: {exc}"
        raise ValueError(msg) from None
    return Options(
        timeout_s=timeout,
        expect_world_size=g("dist_expect_world_size"),
        device=str(g("dist_device") or "auto"),
        ops=ops,
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        size_factor=int(g("dist_size_factor") or 4),
        rounds=int(g("dist_rounds") or 20),
        warmup=max(0, int(g("dist_warmup", 3) or 0)),
        min_busbw_gbps=g("dist_min_busbw"),
        ddp_steps=g("dist_ddp_steps"),
        ddp_warmup=3,
        ddp_world_sizes=g("dist_ddp_world_sizes"),
        straggler_pct=g("dist_straggler_pct"),
        skip=skip,
        init_file=g("dist_init_file"),
    )


def sweep_for(opts: Options, kind: str) -> tuple[int, ...]:
    """The collective sizes of this run: the options, else the CPU or GPU default range."""
    low, high = coll.CPU_SWEEP if kind == "cpu" else coll.GPU_SWEEP
    return coll.size_sweep(opts.min_bytes or low, opts.max_bytes or high, opts.size_factor)

