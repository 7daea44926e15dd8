"""Distributed runs: ``torchrun … -m gpubench verify|bench`` on one node or many.

Each rank takes its device from ``LOCAL_RANK`` (``torch.cuda.set_device`` before any CUDA work; ``cpu``
when the run is on CPUs), verifies or benchmarks that one device, and sends what it found to rank 0 over
a gloo process group (CPU tensors, pickled objects), whatever carries the measured collectives (NCCL on
GPUs, gloo on CPUs). Only rank 0 writes ``results/``: one merged run keyed by host, rank and GPU UUID.

The phases, each closed by a monitored barrier on the gloo group (so a rank that hangs is named, not
waited for forever):

1. join the process group (``init_process_group(timeout=…)``) and exchange a hello (host, device,
   identity, world size): mismatched world sizes or unusable devices stop the run here, naming the rank;
2. the local work on each rank (``verify``: the health checks; ``bench``: matmul and copy rates);
   a rank that raises sends its error as its result, so rank 0 reports "rank 1 on host X failed: …";
3. ``bench`` only: the collectives sweep (:mod:`gpubench.distributed.collectives`) and DDP scaling
   (:mod:`gpubench.distributed.ddp`), skipped when a rank failed in phase 2;
4. gather to rank 0, straggler detection (:mod:`gpubench.distributed.stragglers`), writing, printing; then a last
   barrier so no rank exits (and makes torchrun stop the others) before rank 0 has written.

Files (rank 0): ``results/distributed/<run_id>.json`` (schema ``gpubench.distributed/1``), and in the formats
the report already reads: for ``bench`` ``results/benchmarks/distributed/<run_id>.json`` (pytest-benchmark
layout), for ``verify`` ``results/verify/<run_id>.json`` and ``.xml`` (``gpubench.verify/1`` with ``host``
and ``rank`` on every check).

Test-only fault injection (never set these in production): ``_GPUBENCH_TEST_FAIL_RANK=R`` makes rank R raise
in phase 2; ``_GPUBENCH_TEST_HANG_RANK=R`` makes rank R sleep there for an hour. (They do not start with
``GPUBENCH_``, which the configuration reads as settings.)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import os
import re
import signal
import socket
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpubench.distributed import collectives as coll
from gpubench.distributed import ddp as ddp_mod
from gpubench.distributed.stragglers import RankMetric, Straggler, find_stragglers

SCHEMA = "gpubench.distributed/1"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
ENV_FAIL = "_GPUBENCH_TEST_FAIL_RANK"
ENV_HANG = "_GPUBENCH_TEST_HANG_RANK"
DEFAULT_TIMEOUT_S = 600.0
VERBS = ("verify", "bench")


class DistributedError(RuntimeError):
    """A run that cannot go on; the message names the rank(s) and host(s); ``late``: the ranks that hung."""

    def __init__(self, message: str, late: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.late = list(late)


# --- launch -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """What the launcher (torchrun, or Slurm with the same variables) told this process."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    node_rank: int
    master_addr: str | None
    master_port: str | None
    host: str


def under_launcher(env: Mapping[str, str] | None = None) -> bool:
    """True when a launcher started this process as one rank of a run (``WORLD_SIZE`` is set)."""
    env = os.environ if env is None else env
    return bool(env.get("WORLD_SIZE", "").strip())


def detect_launch(env: Mapping[str, str] | None = None, host: str | None = None) -> Launch:
    """``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``… as torchrun sets them; DistributedError when incomplete."""
    env = os.environ if env is None else env

    def number(name: str, default: int | None = None) -> int:
        raw = env.get(name, "").strip()
        if not raw:
            if default is not None:
                return default
            msg = (
                f"{name} is not set: start distributed runs with torchrun (torchrun --nproc-per-node=N -m "
                f"gpubench bench), which sets RANK, LOCAL_RANK and WORLD_SIZE"
            )
            raise DistributedError(msg)
        try:
            return int(raw)
        except ValueError:
            msg = f"{name}={raw!r} is not a whole number; it must be set by torchrun"
            raise DistributedError(msg) from None

    world = number("WORLD_SIZE")
    rank = number("RANK")
    local_rank = number("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        msg = f"RANK={rank} with WORLD_SIZE={world}: the rank must be between 0 and WORLD_SIZE-1"
        raise DistributedError(msg)
    return Launch(
        rank=rank,
        local_rank=local_rank,
        world_size=world,
        local_world_size=number("LOCAL_WORLD_SIZE", 1),
        node_rank=number("GROUP_RANK", 0),
        master_addr=env.get("MASTER_ADDR"),
        master_port=env.get("MASTER_PORT"),
        host=host or socket.gethostname(),
    )


# --- options ------------------------------------------------------------------------------------------------


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


# --- pure decisions (tested without processes) --------------------------------------------------------------


def where(hello: Mapping[str, Any]) -> str:
    """``rank 1 on host-b (cuda:1)``: how every message names a rank."""
    return f"rank {hello.get('rank')} on {hello.get('host')} ({hello.get('device')})"


def check_hellos(hellos: Sequence[Mapping[str, Any]], world_size: int, expected: int | None) -> list[str]:
    """Problems that stop the run before any work: world sizes, verbs, device kinds, unusable devices."""
    problems: list[str] = []
    if expected is not None and expected != world_size:
        hosts = sorted({str(h.get("host")) for h in hellos})
        problems.append(
            f"the run has {world_size} rank(s) on {len(hosts)} host(s) ({', '.join(hosts)}) but "
            f"--dist-expect-world-size is {expected}. Fix: start every node (torchrun --nnodes) with the "
            "same "
            "--nproc-per-node, or correct the expected size"
        )
    for h in hellos:
        if int(h.get("world_size_env", world_size)) != world_size:
            problems.append(
                f"{where(h)} was started with WORLD_SIZE={h.get('world_size_env')} but the run has "
                f"{world_size} ranks. Fix: start every node with the same torchrun --nnodes/--nproc-per-node"
            )
        if h.get("device_problem"):
            problems.append(f"{where(h)}: {h['device_problem']}")
    verbs = {str(h.get("verb")) for h in hellos}
    if len(verbs) > 1:
        listing = "; ".join(f"{where(h)} runs {h.get('verb')}" for h in hellos)
        problems.append(
            f"ranks run different commands ({listing}). Fix: run the same gpubench verb on every node"
        )
    kinds = {str(h.get("device_kind")) for h in hellos}
    if len(kinds) > 1:
        listing = "; ".join(f"{where(h)}" for h in hellos)
        problems.append(
            f"some ranks run on cpu and others on CUDA ({listing}). Fix: give every node GPUs, or "
            "--dist-device cpu"
        )
    return problems


_BARRIER_RANKS = re.compile(r"Ranks? ([\d,\s]+) failed to pass monitoredBarrier")


def ranks_from_barrier_error(text: str) -> list[int]:
    """The ranks a gloo ``monitored_barrier`` error names (``Ranks 1, 3 failed to pass monitoredBarrier``)."""
    found: set[int] = set()
    for m in _BARRIER_RANKS.finditer(text):
        found.update(int(p) for p in re.findall(r"\d+", m.group(1)))
    return sorted(found)


def rank_metrics(ranks: Sequence[Mapping[str, Any]]) -> list[RankMetric]:
    """The per-rank figures the straggler rule compares: bench matmul/copy rates, verify perf_floor."""
    out: list[RankMetric] = []
    for r in ranks:
        ident = r.get("identity") or {}
        base: dict[str, Any] = dict(
            rank=int(r["rank"]),
            host=str(r.get("host")),
            device=str(r.get("device")),
            index=ident.get("index"),
            uuid=str(ident.get("uuid") or f"{r.get('host')}/{r.get('device')}"),
            model=str(ident.get("name") or r.get("device")),
        )
        bench = r.get("bench") or {}
        for key, metric, unit in (("matmul", "tflops", "TFLOP/s"), ("copy", "gbps", "GB/s")):
            value = (bench.get(key) or {}).get(metric)
            if isinstance(value, (int, float)):
                out.append(RankMetric(**base, metric=f"{key}_{metric}", value=float(value), unit=unit))
        for check in (r.get("verify") or {}).get("checks", []):
            if check.get("check") != "perf_floor":
                continue
            measured = (check.get("readings") or {}).get("measured") or {}
            for metric, unit in (("matmul_tflops", "TFLOP/s"), ("bandwidth_gbps", "GB/s")):
                value = measured.get(metric)
                if isinstance(value, (int, float)):
                    out.append(RankMetric(**base, metric=f"verify_{metric}", value=float(value), unit=unit))
    return out


def merge_run(
    *,
    verb: str,
    run_id: str,
    started: str,
    world_size: int,
    backend: str,
    ranks: Sequence[Mapping[str, Any]],
    straggler_pct: float,
    collectives: Sequence[Mapping[str, Any]] = (),
    ddp_steps: Sequence[Mapping[str, Any]] = (),
    ddp_info: Mapping[str, Any] | None = None,
    min_busbw_gbps: float | None = None,
    messages: Sequence[str] = (),
    environment: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """The ``gpubench.distributed/1`` document rank 0 writes, with its exit code and messages.

    ``ranks``: one entry per rank (``status`` ok, error, hung or missing); ``collectives``: the
    :class:`~gpubench.distributed.collectives.CollectiveResult` dicts; ``ddp_steps``: :class:`~gpubench.distributed.ddp.DdpStep` dicts
    of every rank.
    """
    msgs = list(messages)
    by_rank = {int(r["rank"]): dict(r) for r in ranks}
    for rank in range(world_size):
        if rank not in by_rank:
            by_rank[rank] = {"rank": rank, "status": "missing", "error": "no result reached rank 0"}
    ordered = [by_rank[k] for k in sorted(by_rank)]
    failed = [r for r in ordered if r.get("status") != "ok"]
    for r in failed:
        status = {"error": "failed", "missing": "sent no result", "not started": "did not start"}.get(
            str(r.get("status")), str(r.get("status"))
        )
        text = f"{where(r)} {status}: {r.get('error') or 'no detail'}"
        if not any(where(r) in m for m in msgs):  # a message naming this rank already says what happened
            msgs.append(text)
    for r in ordered:
        for phase, error in (r.get("phase_errors") or {}).items():
            msgs.append(f"{where(r)} failed in {phase}: {error}")

    stragglers: list[Straggler] = find_stragglers(rank_metrics(ordered), straggler_pct)
    results = [coll.CollectiveResult(**{**c, "times_s": tuple(c.get("times_s", ()))}) for c in collectives]
    gate = coll.busbw_gate(results, min_busbw_gbps)
    steps = [ddp_mod.DdpStep(**s) for s in ddp_steps]
    scaling = [row.as_dict() for row in ddp_mod.scaling_table(steps)]

    verify_fail = any(
        c.get("verdict") == "FAIL" for r in ordered for c in (r.get("verify") or {}).get("checks", [])
    )
    gpu_stragglers = [s for s in stragglers if s.device.startswith("cuda")]
    exit_code = EXIT_OK
    if failed or gate or verify_fail or any(r.get("phase_errors") for r in ordered):
        exit_code = EXIT_FAILED
    if verb == "verify" and gpu_stragglers:
        exit_code = EXIT_FAILED  # as perf_floor: a GPU well below its siblings FAILs verification
    msgs.extend(f"minimum bus bandwidth not met: {g}" for g in gate)
    msgs.extend(f"straggler: {s.describe()}" for s in stragglers)
    return {
        "schema": SCHEMA,
        "verb": verb,
        "run_id": run_id,
        "started": started,
        "finished": _now(),
        "world_size": world_size,
        "hosts": sorted({str(r.get("host")) for r in ordered if r.get("host")}),
        "backend": backend,
        "timeout_s": timeout_s,
        "exit_code": exit_code,
        "messages": msgs,
        "ranks": ordered,
        "collectives": [r.as_dict() for r in results],
        "collectives_gate": {"min_busbw_gbps": min_busbw_gbps, "failures": gate},
        "ddp_scaling": scaling,
        "ddp": dict(ddp_info or {}),
        "straggler_pct": straggler_pct,
        "stragglers": [dataclasses.asdict(s) for s in stragglers],
        "environment": dict(environment or {}),
        "config": dict(config or {}),
    }


def _stats(times: Sequence[float]) -> dict[str, Any]:
    """pytest-benchmark's ``stats`` block from per-round seconds."""
    import statistics

    ts = sorted(times)
    n = len(ts)
    q1, q3 = (
        (statistics.quantiles(ts, n=4)[0], statistics.quantiles(ts, n=4)[2]) if n >= 2 else (ts[0], ts[0])
    )
    mean = statistics.fmean(ts)
    return {
        "min": ts[0],
        "max": ts[-1],
        "mean": mean,
        "stddev": statistics.stdev(ts) if n > 1 else 0.0,
        "rounds": n,
        "median": statistics.median(ts),
        "iqr": q3 - q1,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": 0,
        "stddev_outliers": 0,
        "outliers": "0;0",
        "ld15iqr": ts[0],
        "hd15iqr": ts[-1],
        "ops": 1.0 / mean if mean > 0 else 0.0,
        "total": sum(ts),
        "iterations": 1,
    }


def benchmark_document(merged: Mapping[str, Any]) -> dict[str, Any]:
    """The bench run in pytest-benchmark's saved-run layout, so the report reads it like ``pytest bench``.

    Rows: ``dist_matmul`` and ``dist_copy`` per rank (GPU identity in ``extra_info.gpu``), ``collective``
    per op and size (rank 0's device, ``gbps`` = bus bandwidth), ``ddp_mnist`` per world size.
    """
    rows: list[dict[str, Any]] = []
    run_id = merged["run_id"]

    def row(name: str, group: str, times: Sequence[float], extra: dict[str, Any]) -> None:
        rows.append(
            {
                "group": group,
                "name": name,
                "fullname": f"gpubench.distributed::{name}",
                "params": None,
                "param": None,
                "extra_info": extra,
                "options": {"timer": "time.perf_counter"},
                "stats": _stats(times),
            }
        )

    rank0: Mapping[str, Any] = next((r for r in merged["ranks"] if r.get("rank") == 0), {})
    for r in merged["ranks"]:
        ident = {**(r.get("identity") or {}), "rank": r.get("rank"), "host": r.get("host")}
        common = {
            "device": r.get("device"),
            "requested_device": r.get("device"),
            "fallback_note": "",
            "gpu": ident,
            "rank": r.get("rank"),
            "distributed_run": run_id,
        }
        bench = r.get("bench") or {}
        if bench.get("matmul"):
            m = bench["matmul"]
            row(
                f"dist_matmul[rank{r['rank']}-{r.get('device')}-{m['dtype']}-{m['n']}]",
                f"matmul-{m['dtype']}-{m['n']}",
                m["times_s"],
                {
                    **common,
                    "workload": "matmul",
                    "dtype": m["dtype"],
                    "size": m["n"],
                    "flops": m["flops"],
                    "bytes": m["bytes"],
                    "items": m["n"] ** 2,
                    "tflops": m["tflops"],
                    "timing": m.get("timing"),
                },
            )
        if bench.get("copy"):
            c = bench["copy"]
            row(
                f"dist_copy[rank{r['rank']}-{r.get('device')}-d2d-{c['size']}]",
                f"copy-d2d-u8-{c['size']}",
                c["times_s"],
                {
                    **common,
                    "workload": "copy-d2d",
                    "dtype": "u8",
                    "size": c["size"],
                    "bytes": c["bytes"],
                    "flops": 0,
                    "items": c["size"],
                    "gbps": c["gbps"],
                    "timing": c.get("timing"),
                },
            )
    ident0 = {**(rank0.get("identity") or {}), "rank": 0, "host": rank0.get("host")}
    for c in merged["collectives"]:
        row(
            f"collective[{c['op']}-{c['bytes']}-n{c['world_size']}]",
            f"collective-{c['op']}-n{c['world_size']}",
            c["times_s"],
            {
                "device": rank0.get("device"),
                "requested_device": rank0.get("device"),
                "fallback_note": "",
                "gpu": ident0,
                "workload": c["op"],
                "dtype": c["dtype"],
                "size": c["bytes"],
                "bytes": c["bytes"],
                "gbps": c["busbw_gbps"],
                "algbw_gbps": c["algbw_gbps"],
                "busbw_gbps": c["busbw_gbps"],
                "backend": c["backend"],
                "world_size": c["world_size"],
                "timing": {
                    "method": "fixed rounds behind barriers; slowest rank per round",
                    "rounds": c["rounds"],
                    "warmup": c["warmup"],
                },
                "distributed_run": run_id,
            },
        )
    for s in merged["ddp_scaling"]:
        images = s["steps"] * s["batch_size"] * s["world_size"]
        seconds = images / s["total_images_per_s"] if s["total_images_per_s"] else 0.0
        if seconds <= 0:
            continue
        row(
            f"ddp_mnist[n{s['world_size']}]",
            "ddp-mnist",
            [seconds],
            {
                "device": rank0.get("device"),
                "requested_device": rank0.get("device"),
                "fallback_note": "",
                "gpu": ident0,
                "workload": "ddp-mnist",
                "dtype": "f32",
                "size": s["world_size"],
                "items": images,
                "items_per_s": s["total_images_per_s"],
                "images_per_s_per_rank": s["images_per_s_per_rank"],
                "efficiency": s["efficiency"],
                "world_size": s["world_size"],
                "data_source": (merged.get("ddp") or {}).get("data_source"),
                "distributed_run": run_id,
            },
        )
    env = merged.get("environment") or {}
    return {
        "machine_info": {
            "node": env.get("host"),
            "gpubench": {
                "run_id": run_id,
                "environment": env,
                "config": merged.get("config") or {},
                "config_files": (merged.get("config") or {}).get("files", []),
                "distributed": {
                    "world_size": merged["world_size"],
                    "hosts": merged["hosts"],
                    "backend": merged["backend"],
                },
            },
        },
        "commit_info": {},
        "benchmarks": rows,
        "datetime": merged["finished"],
        "version": _pytest_benchmark_version(),
    }


def _pytest_benchmark_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("pytest-benchmark")
    except Exception:
        return None


def merged_verify_document(merged: Mapping[str, Any]) -> dict[str, Any]:
    """Every rank's verify run as one ``gpubench.verify/1`` document (``host`` and ``rank`` on each check)."""
    checks: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    starts, ends = [], []
    level = None
    for r in merged["ranks"]:
        v = r.get("verify") or {}
        level = level or v.get("level")
        starts += [v["started"]] if v.get("started") else []
        ends += [v["finished"]] if v.get("finished") else []
        for d in v.get("devices", []) or [r.get("identity") or {}]:
            devices.append({**d, "rank": r.get("rank"), "host": r.get("host")})
        for c in v.get("checks", []):
            checks.append({**c, "host": r.get("host"), "rank": r.get("rank")})
    counts = {k: sum(1 for c in checks if c.get("verdict") == k) for k in ("PASS", "WARN", "FAIL", "SKIP")}
    return {
        "schema": "gpubench.verify/1",
        "run_id": merged["run_id"],
        "started": min(starts) if starts else merged["started"],
        "finished": max(ends) if ends else merged["finished"],
        "level": level,
        "exit_code": merged["exit_code"],
        "summary": ", ".join(f"{n} {k}" for k, n in counts.items()),
        "gpu_verified": any(
            c.get("device", "").startswith("cuda") and c.get("verdict") != "SKIP" for c in checks
        ),
        "environment": merged.get("environment") or {},
        "config": merged.get("config") or {},
        "devices": devices,
        "checks": checks,
        "distributed": {
            "world_size": merged["world_size"],
            "hosts": merged["hosts"],
            "messages": merged["messages"],
            "stragglers": merged["stragglers"],
        },
    }


def write_merged(merged: Mapping[str, Any], results_dir: Path) -> list[Path]:
    """Write the merged run (rank 0 only); returns the paths written."""
    from gpubench.results import atomic_write_json, atomic_write_text, safe_child

    run_id = str(merged["run_id"])
    paths = [atomic_write_json(safe_child(results_dir, "distributed", f"{run_id}.json"), merged)]
    if merged["verb"] == "bench":
        doc = benchmark_document(merged)
        if doc["benchmarks"]:
            paths.append(
                atomic_write_json(safe_child(results_dir, "benchmarks", "distributed", f"{run_id}.json"), doc)
            )
    elif merged["verb"] == "verify":
        doc = merged_verify_document(merged)
        paths.append(atomic_write_json(safe_child(results_dir, "verify", f"{run_id}.json"), doc))
        try:
            paths.append(atomic_write_text(safe_child(results_dir, "verify", f"{run_id}.xml"), _junit(doc)))
        except Exception as exc:  # the JSON is the record; a JUnit problem must not lose it
            print(f"warning: JUnit XML not written: {exc}", file=sys.stderr)
    return paths


def _junit(doc: Mapping[str, Any]) -> str:
    from gpubench import verify
    from gpubench.verify.health import CheckResult, Verdict

    results = tuple(
        CheckResult(
            c["check"],
            f"rank{c.get('rank')}-{c.get('host')}-{c.get('device')}",
            Verdict(c["verdict"]),
            c.get("value"),
            c.get("threshold"),
            c.get("unit") or "",
            c.get("message") or "",
            c.get("remedy") or "",
            c.get("readings") or {},
            c.get("uuid"),
            float(c.get("duration_s") or 0.0),
        )
        for c in doc["checks"]
    )
    report = verify.VerifyReport(
        doc["run_id"], str(doc.get("level")), doc["started"], doc["finished"], results, tuple(doc["devices"])
    )
    return verify.junit_xml(report)


# --- printing -----------------------------------------------------------------------------------------------


def _console() -> Any:
    from gpubench.console import console

    return console()


def print_merged(merged: Mapping[str, Any], paths: Sequence[Path], out: Any, quiet: bool = False) -> None:
    """Rank 0's output: ranks, the collectives table per size, DDP scaling, stragglers, messages, files."""
    from rich.table import Table

    ranks = Table(
        title=f"distributed {merged['verb']}: {merged['world_size']} rank(s) on "
        f"{', '.join(merged['hosts'])} ({merged['backend']})",
        title_justify="left",
    )
    for col in ("rank", "host", "device", "name", "uuid", "status", "result"):
        ranks.add_column(col)
    for r in merged["ranks"]:
        ident = r.get("identity") or {}
        ranks.add_row(
            str(r.get("rank")),
            str(r.get("host") or "?"),
            str(r.get("device") or "?"),
            str(ident.get("name") or "-"),
            str(ident.get("uuid") or "-"),
            str(r.get("status")),
            _rank_summary(r),
        )
    out.print(ranks)
    if merged["collectives"] and not quiet:
        table = Table(
            title="collectives (GB = 1e9 bytes; time = median round on the slowest rank)",
            title_justify="left",
        )
        for col, justify in (
            ("op", "left"),
            ("size", "right"),
            ("bytes", "right"),
            ("rounds", "right"),
            ("time", "right"),
            ("algbw GB/s", "right"),
            ("busbw GB/s", "right"),
        ):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for c in merged["collectives"]:
            table.add_row(
                c["op"],
                coll.format_bytes(c["bytes"]),
                str(c["bytes"]),
                str(c["rounds"]),
                _seconds(c["time_s"]),
                f"{c['algbw_gbps']:.4g}",
                f"{c['busbw_gbps']:.4g}",
            )
        out.print(table)
    if merged["ddp_scaling"]:
        info = merged.get("ddp") or {}
        table = Table(
            title=f"DDP scaling, MNIST MLP ({info.get('steps')} steps x batch {info.get('batch_size')} "
            "per rank)",
            title_justify="left",
        )
        for col in ("ranks", "images/s per rank", "total images/s", "efficiency vs 1 rank"):
            table.add_column(col, justify="right")
        for s in merged["ddp_scaling"]:
            eff = "-" if s["efficiency"] is None else f"{100 * s['efficiency']:.1f}%"
            table.add_row(
                str(s["world_size"]),
                f"{s['images_per_s_per_rank']:.1f}",
                f"{s['total_images_per_s']:.1f}",
                eff,
            )
        out.print(table)
        out.print(f"DDP data: {info.get('data_source_text', '?')}")
        if info.get("note"):
            out.print(f"note: {info['note']}")
    if merged["stragglers"]:
        out.print(f"STRAGGLERS (more than {merged['straggler_pct']:g}% below the same-model median):")
    for msg in merged["messages"]:
        out.print(msg)
    for path in paths:
        out.print(f"wrote {path}")
    verdict = "ok" if merged["exit_code"] == EXIT_OK else "FAILED"
    out.print(f"distributed {merged['verb']} {verdict} (exit {merged['exit_code']})")


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.3f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3f} ms"
    return f"{value * 1e6:.1f} us"


def _rank_summary(r: Mapping[str, Any]) -> str:
    if r.get("status") != "ok":
        return str(r.get("error") or "")[:100]
    bench = r.get("bench") or {}
    parts = []
    if bench.get("matmul"):
        m = bench["matmul"]
        parts.append(f"matmul {m['dtype']} n={m['n']}: {m['tflops'] * 1e3:.4g} GFLOP/s")
    if bench.get("copy"):
        parts.append(f"copy: {bench['copy']['gbps']:.4g} GB/s")
    v = r.get("verify") or {}
    if v.get("checks"):
        verdicts = [c["verdict"] for c in v["checks"]]
        parts.append(", ".join(f"{verdicts.count(k)} {k}" for k in ("PASS", "WARN", "FAIL", "SKIP")))
    return "; ".join(parts)


# --- the per-rank work --------------------------------------------------------------------------------------


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _inject_faults(rank: int, env: Mapping[str, str] | None = None) -> None:
    """Test-only: raise or hang on the rank named by ``_GPUBENCH_TEST_FAIL_RANK`` / ``…_HANG_RANK``."""
    env = os.environ if env is None else env
    if env.get(ENV_FAIL, "").strip() == str(rank):
        msg = f"injected failure ({ENV_FAIL}={rank})"
        raise RuntimeError(msg)
    if env.get(ENV_HANG, "").strip() == str(rank):
        print(f"{ENV_HANG}={rank}: rank {rank} hangs now", file=sys.stderr, flush=True)
        time.sleep(3600)


def choose_device(launch: Launch, config: Any, opts: Options, probe: Any) -> tuple[str, str | None]:
    """``(device, problem)``: ``cuda:LOCAL_RANK`` or ``cpu``; ``problem`` says why the GPU is unusable."""
    from gpubench.devices import parse_device, why_unusable

    wants_cpu = opts.device == "cpu" or (
        opts.device == "auto" and config.source_of("dl.device") != "default" and config.dl.device == "cpu"
    )
    if wants_cpu or (opts.device == "auto" and not probe.device_count):
        return "cpu", None
    device = f"cuda:{launch.local_rank}"
    problem = why_unusable(parse_device(device), probe)
    if problem is not None:
        return device, (
            f"cannot use {device} for LOCAL_RANK {launch.local_rank}: {problem.reason} "
            f"Fix: {problem.remedy} (or start fewer processes per node: --nproc-per-node)"
        )
    return device, None


def local_bench(config: Any, device: str) -> dict[str, Any]:
    """This rank's own figures: dense matmul TFLOP/s and device-memory copy GB/s (the straggler inputs)."""
    from gpubench.timing import DeviceTimer
    from gpubench.workloads import tensor_ops

    b = config.bench
    dtype = b.dtypes[0] if b.dtypes else "f32"
    timer = DeviceTimer(
        device, clock=b.timer, max_sync_fraction=b.max_sync_fraction, min_round_s=b.min_round_s
    )

    def timed(case: Any, **prepare_kw: Any) -> dict[str, Any]:
        prepared = tensor_ops.prepare(case, device, **prepare_kw)
        m = timer.measure(prepared.fn, prepared.inputs, rounds=b.rounds, warmup_rounds=b.warmup_rounds,
                          device_only=case.device_only)
        return {"bytes": case.bytes, "median_s": m.median_s, "times_s": list(m.times_s),
                "timing": m.plan.as_dict()}

    matmul = tensor_ops.matmul_case(max(b.matmul_sizes), dtype)
    mm = timed(matmul, seed=config.dl.seed)
    copy = tensor_ops.copy_case("d2d", max(b.copy_bytes))
    cp = timed(copy)
    return {
        "matmul": {"n": matmul.size, "dtype": dtype, "flops": matmul.flops, **mm,
                   "tflops": matmul.flops / mm["median_s"] / 1e12},
        "copy": {"size": copy.size, **cp, "gbps": copy.bytes / cp["median_s"] / 1e9},
    }


def local_verify(
    config: Any, device: str, args: argparse.Namespace, run_id: str, probe: Any
) -> dict[str, Any]:
    """The health checks of this rank's one device (``gpubench.verify.run_checks``)."""
    from gpubench import verify

    cfg = dataclasses.replace(config, verify=dataclasses.replace(config.verify, devices=(device,)))
    history = Path(args.history_dir) if getattr(args, "history_dir", None) else None
    report = verify.run_checks(
        cfg,
        level=getattr(args, "level", None),
        checks=getattr(args, "checks", None),
        probe=probe,
        history_dir=history,
        run_id=run_id,
    )
    data = report.as_dict()
    return {k: data[k] for k in ("level", "started", "finished", "exit_code", "summary", "devices", "checks")}


@dataclass
class _Rank:
    """Mutable state of this rank's run (the phase is what a signal handler reports)."""

    launch: Launch
    verb: str
    opts: Options
    device: str
    backend: str = "gloo"
    phase: str = "starting"
    control: Any = None
    store: Any = None
    barriers: int = 0
    hellos: list[dict[str, Any]] = field(default_factory=list)
    phase_s: dict[str, float] = field(default_factory=dict)  # seconds spent in each phase, for the record
    _since: float = field(default_factory=time.perf_counter)

    def enter(self, phase: str) -> None:
        now = time.perf_counter()
        self.phase_s[self.phase] = self.phase_s.get(self.phase, 0.0) + now - self._since
        self.phase, self._since = phase, now

    @property
    def me(self) -> str:
        return f"rank {self.launch.rank} on {self.launch.host} ({self.device})"

    def host_of(self, rank: int) -> str:
        for h in self.hellos:
            if h.get("rank") == rank:
                return where(h)
        return f"rank {rank}"

    def barrier(self, after: str) -> None:
        """A monitored barrier on the gloo group; DistributedError naming late ranks and their hosts."""
        import torch.distributed as dist

        self.enter(f"barrier after {after}")
        self.barriers += 1
        mark = f"gpubench/barrier{self.barriers}/rank"
        if self.store is not None:
            self.store.set(f"{mark}{self.launch.rank}", self.launch.host)
        try:
            dist.monitored_barrier(
                group=self.control, timeout=_dt.timedelta(seconds=self.opts.timeout_s), wait_all_ranks=True
            )
        except RuntimeError as exc:
            text = str(exc)
            late = ranks_from_barrier_error(text)
            if not late and self.launch.rank == 0 and self.store is not None:
                late = [r for r in range(self.launch.world_size) if not self._arrived(f"{mark}{r}")]
            if self.launch.rank == 0 and late:
                names = "; ".join(self.host_of(r) for r in late)
                msg = (
                    f"{names} did not reach the barrier after {after} within {self.opts.timeout_s:g} s "
                    f"(hung or dead). Fix: look at that rank's output; raise --dist-timeout if it was only "
                    "slow"
                )
            elif self.launch.rank == 0:
                msg = f"the barrier after {after} failed on rank 0: {text.splitlines()[0] if text else exc!r}"
            else:
                msg = (
                    f"{self.me} lost contact with rank 0 at the barrier after {after}: "
                    f"{text.splitlines()[0] if text else exc!r}. Rank 0's output names the failing rank"
                )
            raise DistributedError(msg, late) from None

    def _arrived(self, key: str) -> bool:
        try:
            return bool(self.store.check([key]))
        except Exception:  # the store itself is gone: nobody can be shown to have arrived
            return False


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _error_text(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    at = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{at}"


def _install_signal_handler(state: _Rank) -> None:
    """torchrun stops every rank (SIGTERM) when one exits non-zero or dies: say so, naming rank and phase."""

    def handler(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        print(
            f"{state.me}: stopped by {name} during {state.phase}. A launcher stops every rank when one "
            "of them "
            "exits or dies: torchrun's error summary names the rank that failed first",
            file=sys.stderr,
            flush=True,
        )
        os._exit(128 + signum)

    with contextlib.suppress(ValueError):  # not the main thread (library use): leave the default
        signal.signal(signal.SIGTERM, handler)


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
    state = _Rank(launch, verb, opts, device, backend="nccl" if device.startswith("cuda") else "gloo")
    _install_signal_handler(state)
    try:
        return _run_rank(state, config, args, probe, device_problem, quiet)
    except DistributedError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except Exception as exc:  # a peer lost inside a gather or collective (gloo: connection closed, timeout)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(
            f"error: {state.me} stopped during {state.phase}: {type(exc).__name__}: {first}. Another rank "
            "probably failed or died: its own output (and torchrun's summary) names it",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_FAILED


def _join(state: _Rank) -> None:
    import torch.distributed as dist

    state.enter("joining the process group")
    launch, opts = state.launch, state.opts
    timeout = _dt.timedelta(seconds=opts.timeout_s)
    init = f"file://{Path(opts.init_file).resolve()}" if opts.init_file else "env://"
    try:
        # our own handle on the rendezvous store: arrival marks at each barrier live there, so rank 0 can
        # name a rank that died (a closed connection names no rank) as well as one that hung
        rendezvous = dist.rendezvous  # type: ignore[attr-defined]
        store, _, _ = next(rendezvous(init, launch.rank, launch.world_size, timeout=timeout))
        state.store = store
        dist.init_process_group(
            state.backend, store=store, rank=launch.rank, world_size=launch.world_size, timeout=timeout
        )
        state.control = dist.new_group(backend="gloo", timeout=timeout)
    except Exception as exc:
        where_ = f"{launch.master_addr}:{launch.master_port}" if not opts.init_file else opts.init_file
        msg = (
            f"{state.me} could not join the {launch.world_size}-rank process group through {where_} within "
            f"{opts.timeout_s:g} s: {_first_line(exc)}. Fix: start "
            "every node with the same torchrun --nnodes/--nproc-per-node and rendezvous endpoint"
        )
        raise DistributedError(msg) from None


def _run_rank(
    state: _Rank, config: Any, args: argparse.Namespace, probe: Any, device_problem: str | None, quiet: bool
) -> int:
    import torch
    import torch.distributed as dist

    from gpubench import results as results_mod

    launch, opts, verb = state.launch, state.opts, state.verb
    started = _now()
    _join(state)
    identity = (
        results_mod.device_identity(state.device, probe)
        if device_problem is None
        else {"device": state.device}
    )
    identity = {**identity, "host": launch.host, "rank": launch.rank}
    hello = {
        "rank": launch.rank,
        "local_rank": launch.local_rank,
        "host": launch.host,
        "pid": os.getpid(),
        "node_rank": launch.node_rank,
        "world_size_env": launch.world_size,
        "local_world_size": launch.local_world_size,
        "verb": verb,
        "device": state.device,
        "device_kind": "cuda" if state.device.startswith("cuda") else "cpu",
        "device_problem": device_problem,
        "identity": identity,
        "backend": state.backend,
        "run_id": results_mod.new_run_id() if launch.rank == 0 else None,
        "torch": torch.__version__,
    }
    state.enter("exchanging hellos")
    hellos: list[Any] = [None] * launch.world_size
    dist.all_gather_object(hellos, hello, group=state.control)
    state.hellos = [dict(h) for h in hellos]
    run_id = str(state.hellos[0]["run_id"])
    results_dir = Path(config.results.dir)
    out = _console() if launch.rank == 0 else None
    straggler_pct = (
        opts.straggler_pct if opts.straggler_pct is not None else float(config.verify.perf_floor_pct)
    )
    common: dict[str, Any] = dict(
        verb=verb,
        run_id=run_id,
        started=started,
        world_size=launch.world_size,
        backend=state.backend,
        straggler_pct=straggler_pct,
        min_busbw_gbps=opts.min_busbw_gbps,
        timeout_s=opts.timeout_s,
        config={**config.as_dict(), "files": list(config.files)},
    )

    problems = check_hellos(state.hellos, launch.world_size, opts.expect_world_size)
    if problems:
        if launch.rank == 0:
            for p in problems:
                print(f"error: {p}", file=sys.stderr)
            ranks = [
                {
                    **h,
                    "status": "not started",
                    "error": "the run stopped before any work: " + "; ".join(problems),
                }
                for h in state.hellos
            ]
            merged = merge_run(
                ranks=ranks, messages=problems, environment=results_mod.environment(probe), **common
            )
            merged["exit_code"] = EXIT_USAGE
            write_merged(merged, results_dir)
        return _finish(state, EXIT_USAGE)

    if launch.rank == 0 and out is not None and not quiet:
        hosts = sorted({h["host"] for h in state.hellos})
        out.print(
            f"gpubench distributed {verb}: run {run_id}, {launch.world_size} rank(s) on {len(hosts)} "
            "host(s), "
            f"backend {state.backend}, timeout {opts.timeout_s:g} s"
        )

    # phase 2: each rank's own device
    me: dict[str, Any] = {**hello, "status": "ok", "error": None, "phase_errors": {}}
    me.pop("run_id", None)
    data: Any = None
    state.enter(f"{verb} on {state.device}")
    try:
        _inject_faults(launch.rank)
        if verb == "verify":
            me["verify"] = local_verify(config, state.device, args, run_id, probe)
        else:
            me["bench"] = local_bench(config, state.device)
            if "ddp" not in opts.skip:
                from gpubench.workloads.data import load_mnist

                d = config.data
                # only rank 0 may download: ranks sharing a data folder must not write it at once
                data = load_mnist(
                    d.dir,
                    download=bool(d.download) and launch.rank == 0,
                    synthetic=d.synthetic,
                    idx_dirs=tuple(d.idx_dirs),
                    source=d.source,
                )
                me["data_source"] = data.source.as_dict()
    except Exception as exc:
        me["status"], me["error"] = "error", _error_text(exc)
        print(f"error: {state.me} failed in {state.phase}: {me['error']}", file=sys.stderr, flush=True)
    try:
        state.barrier(f"{verb} on every rank")
    except DistributedError as exc:
        if launch.rank == 0:
            _write_partial(state, me, str(exc), exc.late, common, probe, results_dir, out)
        raise

    state.enter("exchanging statuses")
    statuses: list[Any] = [None] * launch.world_size
    dist.all_gather_object(statuses, me["status"], group=state.control)
    all_ok = all(s == "ok" for s in statuses)
    device = torch.device(state.device)

    # phase 3: collectives and DDP scaling (bench only, every rank or none)
    collectives: list[dict[str, Any]] = []
    ddp_info: dict[str, Any] = {}
    if verb == "bench" and all_ok and "collectives" not in opts.skip and opts.ops:
        state.enter("the collectives sweep")
        try:
            sizes = sweep_for(opts, device.type)
            results = coll.run_sweep(
                opts.ops,
                sizes,
                rounds=opts.rounds,
                warmup=opts.warmup,
                device=device,
                backend=state.backend,
                control_group=state.control,
            )
            collectives = [r.as_dict() for r in results]
        except Exception as exc:
            me["phase_errors"]["collectives"] = _error_text(exc)
        state.barrier("the collectives sweep")
    if verb == "bench" and all_ok and "ddp" not in opts.skip and data is not None:
        state.enter("DDP scaling")
        steps = opts.ddp_steps or (20 if device.type == "cpu" else 200)
        batch = config.bench.mnist_batch_size
        try:
            sizes_k = (
                ddp_mod.parse_world_sizes(opts.ddp_world_sizes, launch.world_size)
                if opts.ddp_world_sizes
                else ddp_mod.default_world_sizes(launch.world_size)
            )
            mine = ddp_mod.run_scaling(
                data,
                device,
                rank=launch.rank,
                world_size=launch.world_size,
                world_sizes=sizes_k,
                steps=steps,
                warmup_steps=opts.ddp_warmup,
                batch_size=batch,
                seed=config.dl.seed,
                backend=state.backend,
                control_group=state.control,
            )
            me["ddp"] = [dataclasses.asdict(s) for s in mine]
        except Exception as exc:
            me["phase_errors"]["ddp"] = _error_text(exc)
        ddp_info = {
            "steps": steps,
            "warmup_steps": opts.ddp_warmup,
            "batch_size": batch,
            "pipeline": "resident",
            "data_source": data.source.as_dict(),
            "data_source_text": data.source.describe(),
            "note": (
                f"{steps} timed steps per world size on cpu (ranks share this host's cores): a short "
                "functional run, not a scaling study"
            )
            if device.type == "cpu"
            else "",
        }
        state.barrier("DDP scaling")

    # phase 4: gather to rank 0, merge, write
    state.enter("gathering results on rank 0")
    me["phase_s"] = {k: round(v, 4) for k, v in state.phase_s.items()}
    gathered: list[Any] | None = [None] * launch.world_size if launch.rank == 0 else None
    dist.gather_object(me, gathered, dst=0, group=state.control)
    code = EXIT_OK
    if launch.rank == 0:
        assert gathered is not None
        ddp_steps = [s for r in gathered for s in (r.get("ddp") or [])]
        merged = merge_run(
            ranks=gathered,
            collectives=collectives,
            ddp_steps=ddp_steps,
            ddp_info=ddp_info,
            environment=results_mod.environment(probe),
            **common,
        )
        state.enter("writing results")
        paths = write_merged(merged, results_dir)
        if out is not None:
            if verb == "verify" and not quiet:
                _print_verify(merged, out)
            print_merged(merged, paths, out, quiet=quiet)
        code = int(merged["exit_code"])
    return _finish(state, code)


def _finish(state: _Rank, code: int | None = None) -> int:
    """Last barrier (no rank exits before rank 0 has written), share rank 0's exit code, leave the group."""
    import torch.distributed as dist

    state.barrier("writing the results")
    box = [code]
    dist.broadcast_object_list(box, src=0, group=state.control)
    final = int(box[0] if box[0] is not None else EXIT_FAILED)
    state.enter("leaving the process group")
    dist.destroy_process_group()
    return final


def _write_partial(
    state: _Rank,
    me: Mapping[str, Any],
    message: str,
    late: Sequence[int],
    common: Mapping[str, Any],
    probe: Any,
    results_dir: Path,
    out: Any,
) -> None:
    """Rank 0 after a barrier timeout: record what it knows (its own result, who was late) before exiting."""
    from gpubench import results as results_mod

    ranks: list[dict[str, Any]] = [dict(me)]
    for h in state.hellos:
        if h["rank"] == 0:
            continue
        status = "hung" if (not late or h["rank"] in late) else "unknown"
        error = (
            f"did not reach the barrier within {state.opts.timeout_s:g} s"
            if status == "hung"
            else "reached the barrier, but the run stopped before its results were gathered"
        )
        ranks.append({**h, "status": status, "error": error})
    merged = merge_run(ranks=ranks, messages=[message], environment=results_mod.environment(probe), **common)
    try:
        paths = write_merged(merged, results_dir)
        if out is not None:
            print_merged(merged, paths, out)
    except Exception as exc:  # the message on stderr is what matters now
        print(f"warning: partial results not written: {exc}", file=sys.stderr)


def _print_verify(merged: Mapping[str, Any], out: Any) -> None:
    from rich.table import Table

    table = Table(title="verification per rank", title_justify="left")
    for col in ("rank", "host", "device", "check", "verdict", "value", "message"):
        table.add_column(col)
    for r in merged["ranks"]:
        for c in (r.get("verify") or {}).get("checks", []):
            value = c.get("value")
            shown = "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
            table.add_row(
                str(r["rank"]),
                str(r.get("host")),
                str(c.get("device")),
                str(c.get("check")),
                str(c.get("verdict")),
                f"{shown} {c.get('unit') or ''}".strip(),
                str(c.get("message") or "")[:90],
            )
    out.print(table)


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

