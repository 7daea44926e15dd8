"""Rank 0's side of a run: every rank's result gathered over the gloo group and merged into one
``gpubench.distributed/1`` run, keyed by host, rank and GPU UUID, with its stragglers, collectives gate,
DDP scaling table, messages and exit code.

Imports: the standard library, torch inside :func:`gather_to_rank0`, and the distributed modules below it
(:mod:`~gpubench.distributed.collectives`, :mod:`~gpubench.distributed.ddp`,
:mod:`~gpubench.distributed.stragglers`, :mod:`~gpubench.distributed.launch`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

from gpubench.distributed import collectives as coll
from gpubench.distributed import ddp as ddp_mod
from gpubench.distributed.launch import EXIT_FAILED, EXIT_OK, RankState, where
from gpubench.distributed.options import DEFAULT_TIMEOUT_S
from gpubench.distributed.stragglers import RankMetric, Straggler, find_stragglers

SCHEMA = "gpubench.distributed/1"


def utc_now() -> str:
    """The current time as the run records it: ISO 8601, UTC, whole seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def gather_to_rank0(state: RankState, me: Mapping[str, Any]) -> list[Any] | None:
    """Every rank's result, in rank order, on rank 0 (None on the others), over the gloo control group."""
    import torch.distributed as dist

    gathered: list[Any] | None = [None] * state.launch.world_size if state.launch.rank == 0 else None
    dist.gather_object(me, gathered, dst=0, group=state.control)
    return gathered


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
    :class:`~gpubench.distributed.collectives.CollectiveResult` dicts; ``ddp_steps``:
    :class:`~gpubench.distributed.ddp.DdpStep` dicts of every rank.
    """
    ordered = ordered_ranks(ranks, world_size)
    msgs = rank_messages(ordered, messages)
    stragglers: list[Straggler] = find_stragglers(rank_metrics(ordered), straggler_pct)
    results = [coll.CollectiveResult(**{**c, "times_s": tuple(c.get("times_s", ()))}) for c in collectives]
    gate = coll.busbw_gate(results, min_busbw_gbps)
    steps = [ddp_mod.DdpStep(**s) for s in ddp_steps]
    scaling = [row.as_dict() for row in ddp_mod.scaling_table(steps)]
    exit_code = run_exit_code(verb, ordered, gate, stragglers)
    msgs.extend(f"minimum bus bandwidth not met: {g}" for g in gate)
    msgs.extend(f"straggler: {s.describe()}" for s in stragglers)
    return {
        "schema": SCHEMA,
        "verb": verb,
        "run_id": run_id,
        "started": started,
        "finished": utc_now(),
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


def ordered_ranks(ranks: Sequence[Mapping[str, Any]], world_size: int) -> list[dict[str, Any]]:
    """One entry per rank 0..world_size-1, in rank order; a rank that sent nothing is ``missing``."""
    by_rank = {int(r["rank"]): dict(r) for r in ranks}
    for rank in range(world_size):
        if rank not in by_rank:
            by_rank[rank] = {"rank": rank, "status": "missing", "error": "no result reached rank 0"}
    return [by_rank[k] for k in sorted(by_rank)]


def rank_messages(ordered: Sequence[Mapping[str, Any]], messages: Sequence[str]) -> list[str]:
    """``messages``, then one line per rank that did not finish and per phase that failed on a rank."""
    msgs = list(messages)
    for r in ordered:
        if r.get("status") == "ok":
            continue
        status = {"error": "failed", "missing": "sent no result", "not started": "did not start"}.get(
            str(r.get("status")), str(r.get("status"))
        )
        text = f"{where(r)} {status}: {r.get('error') or 'no detail'}"
        if not any(where(r) in m for m in msgs):  # a message naming this rank already says what happened
            msgs.append(text)
    for r in ordered:
        for phase, error in (r.get("phase_errors") or {}).items():
            msgs.append(f"{where(r)} failed in {phase}: {error}")
    return msgs


def run_exit_code(
    verb: str, ordered: Sequence[Mapping[str, Any]], gate: Sequence[str], stragglers: Sequence[Straggler]
) -> int:
    """1 when a rank or one of its phases failed, a check FAILed or the bandwidth gate tripped; else 0."""
    failed = any(r.get("status") != "ok" for r in ordered)
    verify_fail = any(
        c.get("verdict") == "FAIL" for r in ordered for c in (r.get("verify") or {}).get("checks", [])
    )
    if failed or gate or verify_fail or any(r.get("phase_errors") for r in ordered):
        return EXIT_FAILED
    if verb == "verify" and any(s.device.startswith("cuda") for s in stragglers):
        return EXIT_FAILED  # as perf_floor: a GPU well below its siblings FAILs verification
    return EXIT_OK
