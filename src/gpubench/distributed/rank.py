"""What one rank runs under torchrun: ``verify`` or ``bench`` on its own ``LOCAL_RANK`` device, then
(``bench``) its share of the collectives sweep and DDP scaling, then its result sent to rank 0.

Each rank sends what it found to rank 0 over a gloo process group (CPU tensors, pickled objects), whatever
carries the measured collectives (NCCL on GPUs, gloo on CPUs). Only rank 0 writes ``results/``. The
phases, each closed by a monitored barrier on the gloo group (so a rank that hangs is named, not waited
for forever):

1. join the process group (``init_process_group(timeout=…)``) and exchange a hello (host, device,
   identity, world size): mismatched world sizes or unusable devices stop the run here, naming the rank;
2. the local work on each rank (``verify``: the health checks; ``bench``: matmul and copy rates);
   a rank that raises sends its error as its result, so rank 0 reports "rank 1 on host X failed: …";
3. ``bench`` only: the collectives sweep (:mod:`gpubench.distributed.collectives`) and DDP scaling
   (:mod:`gpubench.distributed.ddp`), skipped when a rank failed in phase 2;
4. gather to rank 0, merge (:mod:`gpubench.distributed.merge`, stragglers included), write
   (:mod:`gpubench.distributed.files`), print (:mod:`gpubench.distributed.summary`); then a last barrier
   so no rank exits (and makes torchrun stop the others) before rank 0 has written.

Test-only fault injection (never set these in production): ``_GPUBENCH_TEST_FAIL_RANK=R`` makes rank R raise
in phase 2; ``_GPUBENCH_TEST_HANG_RANK=R`` makes rank R sleep there for an hour. (They do not start with
``GPUBENCH_``, which the configuration reads as settings.)

Imports: torch, :mod:`gpubench.results`, :mod:`gpubench.timing`, :mod:`gpubench.workloads`,
:mod:`gpubench.verify` and :mod:`gpubench.console` inside functions, and the distributed modules below it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpubench import killpoints
from gpubench.distributed import collectives as coll
from gpubench.distributed import ddp as ddp_mod
from gpubench.distributed.files import write_merged
from gpubench.distributed.launch import (
    EXIT_OK,
    EXIT_USAGE,
    DistributedError,
    RankState,
    check_hellos,
    error_text,
    finish,
    join,
)
from gpubench.distributed.merge import gather_to_rank0, merge_run, utc_now
from gpubench.distributed.options import sweep_for
from gpubench.distributed.summary import print_merged, print_verify

ENV_FAIL = "_GPUBENCH_TEST_FAIL_RANK"
ENV_HANG = "_GPUBENCH_TEST_HANG_RANK"


@dataclass(frozen=True)
class RankRun:
    """What every step of one rank's run reads: its state, the configuration, the arguments, the probe."""

    state: RankState
    config: Any
    args: argparse.Namespace
    probe: Any
    quiet: bool

    @property
    def results_dir(self) -> Path:
        return Path(self.config.results.dir)


def run_rank(
    state: RankState,
    config: Any,
    args: argparse.Namespace,
    probe: Any,
    device_problem: str | None,
    quiet: bool,
) -> int:
    """This rank's whole run, phase by phase; the exit code (rank 0's, shared with every rank)."""
    import torch

    run = RankRun(state, config, args, probe, quiet)
    launch, opts, verb = state.launch, state.opts, state.verb
    started = utc_now()
    join(state)
    hello = _hello(run, device_problem)
    _exchange_hellos(state, hello)
    run_id = str(state.hellos[0]["run_id"])
    out = _console() if launch.rank == 0 else None
    common = _run_facts(run, run_id, started)

    problems = check_hellos(state.hellos, launch.world_size, opts.expect_world_size)
    if problems:
        if launch.rank == 0:
            _write_not_started(run, problems, common)
        return finish(state, EXIT_USAGE)
    if launch.rank == 0 and out is not None and not quiet:
        hosts = sorted({h["host"] for h in state.hellos})
        out.print(
            f"gpubench distributed {verb}: run {run_id}, {launch.world_size} rank(s) on {len(hosts)} "
            "host(s), "
            f"backend {state.backend}, timeout {opts.timeout_s:g} s"
        )

    # phase 2: each rank's own device
    killpoints.reached("dist.rank.local")
    me, data = _local_work(run, hello, run_id)
    try:
        state.barrier(f"{verb} on every rank")
    except DistributedError as exc:
        if launch.rank == 0:
            _write_partial(run, me, str(exc), exc.late, common, out)
        raise
    all_ok = _all_ok(state, str(me["status"]))
    device = torch.device(state.device)

    # phase 3: collectives and DDP scaling (bench only, every rank or none)
    collectives: list[dict[str, Any]] = []
    ddp_info: dict[str, Any] = {}
    if verb == "bench" and all_ok and "collectives" not in opts.skip and opts.ops:
        collectives = _collectives_phase(state, me, device)
    if verb == "bench" and all_ok and "ddp" not in opts.skip and data is not None:
        ddp_info = _ddp_phase(run, me, data, device)

    # phase 4: gather to rank 0, merge, write
    return finish(state, _gather_and_write(run, me, collectives, ddp_info, common, out))


# --- phase 1: hellos ----------------------------------------------------------------------------------------


def _hello(run: RankRun, device_problem: str | None) -> dict[str, Any]:
    """What this rank tells the others before any work: who and where it is, its device and verb."""
    import torch

    from gpubench import results as results_mod

    state, launch = run.state, run.state.launch
    identity = (
        results_mod.device_identity(state.device, run.probe)
        if device_problem is None
        else {"device": state.device}
    )
    identity = {**identity, "host": launch.host, "rank": launch.rank}
    return {
        "rank": launch.rank,
        "local_rank": launch.local_rank,
        "host": launch.host,
        "pid": os.getpid(),
        "node_rank": launch.node_rank,
        "world_size_env": launch.world_size,
        "local_world_size": launch.local_world_size,
        "verb": state.verb,
        "device": state.device,
        "device_kind": "cuda" if state.device.startswith("cuda") else "cpu",
        "device_problem": device_problem,
        "identity": identity,
        "backend": state.backend,
        "run_id": results_mod.new_run_id() if launch.rank == 0 else None,
        "torch": torch.__version__,
    }


def _exchange_hellos(state: RankState, hello: Mapping[str, Any]) -> None:
    """Every rank's hello, on every rank, into ``state.hellos`` (rank 0's carries the run id)."""
    import torch.distributed as dist

    state.enter("exchanging hellos")
    hellos: list[Any] = [None] * state.launch.world_size
    dist.all_gather_object(hellos, hello, group=state.control)
    state.hellos = [dict(h) for h in hellos]


def _run_facts(run: RankRun, run_id: str, started: str) -> dict[str, Any]:
    """The arguments of :func:`~gpubench.distributed.merge.merge_run` that every outcome shares."""
    state, config, opts = run.state, run.config, run.state.opts
    straggler_pct = (
        opts.straggler_pct if opts.straggler_pct is not None else float(config.verify.perf_floor_pct)
    )
    return dict(
        verb=state.verb,
        run_id=run_id,
        started=started,
        world_size=state.launch.world_size,
        backend=state.backend,
        straggler_pct=straggler_pct,
        min_busbw_gbps=opts.min_busbw_gbps,
        timeout_s=opts.timeout_s,
        config={**config.as_dict(), "files": list(config.files)},
    )


def _write_not_started(run: RankRun, problems: Sequence[str], common: Mapping[str, Any]) -> None:
    """Rank 0 when the hellos disagree: print the problems and record a run in which no rank started."""
    from gpubench import results as results_mod

    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    ranks = [
        {
            **h,
            "status": "not started",
            "error": "the run stopped before any work: " + "; ".join(problems),
        }
        for h in run.state.hellos
    ]
    environment = results_mod.environment(run.probe)
    merged = merge_run(ranks=ranks, messages=problems, environment=environment, **common)
    merged["exit_code"] = EXIT_USAGE
    write_merged(merged, run.results_dir)


# --- phase 2: this rank's own device ------------------------------------------------------------------------


def _local_work(run: RankRun, hello: Mapping[str, Any], run_id: str) -> tuple[dict[str, Any], Any]:
    """``verify`` or ``bench`` on this rank's device: ``(its result, the DDP data or None)``; an error is
    recorded in the result (``status`` error), not raised, so that rank 0 can name it."""
    state, config, launch = run.state, run.config, run.state.launch
    me: dict[str, Any] = {**hello, "status": "ok", "error": None, "phase_errors": {}}
    me.pop("run_id", None)
    data: Any = None
    state.enter(f"{state.verb} on {state.device}")
    try:
        _inject_faults(launch.rank)
        if state.verb == "verify":
            me["verify"] = local_verify(config, state.device, run.args, run_id, run.probe)
        else:
            me["bench"] = local_bench(config, state.device)
            if "ddp" not in state.opts.skip:
                data = _load_ddp_data(config, launch.rank)
                me["data_source"] = data.source.as_dict()
    except Exception as exc:
        me["status"], me["error"] = "error", error_text(exc)
        print(f"error: {state.me} failed in {state.phase}: {me['error']}", file=sys.stderr, flush=True)
    return me, data


def _load_ddp_data(config: Any, rank: int) -> Any:
    """The MNIST data of the DDP phase, loaded before the barrier so a data problem is this rank's error."""
    from gpubench.workloads.data import load_mnist

    d = config.data
    # only rank 0 may download: ranks sharing a data folder must not write it at once
    return load_mnist(
        d.dir,
        download=bool(d.download) and rank == 0,
        synthetic=d.synthetic,
        idx_dirs=tuple(d.idx_dirs),
        source=d.source,
    )


def _inject_faults(rank: int, env: Mapping[str, str] | None = None) -> None:
    """Test-only: raise or hang on the rank named by ``_GPUBENCH_TEST_FAIL_RANK`` / ``…_HANG_RANK``."""
    env = os.environ if env is None else env
    if env.get(ENV_FAIL, "").strip() == str(rank):
        msg = f"injected failure ({ENV_FAIL}={rank})"
        raise RuntimeError(msg)
    if env.get(ENV_HANG, "").strip() == str(rank):
        print(f"{ENV_HANG}={rank}: rank {rank} hangs now", file=sys.stderr, flush=True)
        time.sleep(3600)


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


def _write_partial(
    run: RankRun,
    me: Mapping[str, Any],
    message: str,
    late: Sequence[int],
    common: Mapping[str, Any],
    out: Any,
) -> None:
    """Rank 0 after a barrier timeout: record what it knows (its own result, who was late) before exiting."""
    from gpubench import results as results_mod

    state = run.state
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
    environment = results_mod.environment(run.probe)
    merged = merge_run(ranks=ranks, messages=[message], environment=environment, **common)
    try:
        paths = write_merged(merged, run.results_dir)
        if out is not None:
            print_merged(merged, paths, out)
    except Exception as exc:  # the message on stderr is what matters now
        print(f"warning: partial results not written: {exc}", file=sys.stderr)


def _all_ok(state: RankState, status: str) -> bool:
    """True when every rank finished phase 2 with ``ok``: phase 3 then runs on every rank, else on none."""
    import torch.distributed as dist

    state.enter("exchanging statuses")
    statuses: list[Any] = [None] * state.launch.world_size
    dist.all_gather_object(statuses, status, group=state.control)
    return all(s == "ok" for s in statuses)


# --- phase 3: collectives and DDP scaling (bench) -----------------------------------------------------------


def _collectives_phase(state: RankState, me: dict[str, Any], device: Any) -> list[dict[str, Any]]:
    """This rank's part of the collectives sweep; an error is recorded in ``me["phase_errors"]``."""
    opts = state.opts
    collectives: list[dict[str, Any]] = []
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
        me["phase_errors"]["collectives"] = error_text(exc)
    state.barrier("the collectives sweep")
    return collectives


def _ddp_phase(run: RankRun, me: dict[str, Any], data: Any, device: Any) -> dict[str, Any]:
    """This rank's DDP scaling runs into ``me["ddp"]``; returns what the run records about them."""
    state, config, launch, opts = run.state, run.config, run.state.launch, run.state.opts
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
        me["phase_errors"]["ddp"] = error_text(exc)
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
    return ddp_info


# --- phase 4: rank 0 merges, writes, prints -----------------------------------------------------------------


def _gather_and_write(
    run: RankRun,
    me: dict[str, Any],
    collectives: Sequence[Mapping[str, Any]],
    ddp_info: Mapping[str, Any],
    common: Mapping[str, Any],
    out: Any,
) -> int:
    """Send this rank's result to rank 0, which merges, writes and prints the run; rank 0's exit code."""
    from gpubench import results as results_mod

    state = run.state
    state.enter("gathering results on rank 0")
    me["phase_s"] = {k: round(v, 4) for k, v in state.phase_s.items()}
    gathered = gather_to_rank0(state, me)
    if gathered is None:  # not rank 0
        return EXIT_OK
    ddp_steps = [s for r in gathered for s in (r.get("ddp") or [])]
    merged = merge_run(
        ranks=gathered,
        collectives=collectives,
        ddp_steps=ddp_steps,
        ddp_info=ddp_info,
        environment=results_mod.environment(run.probe),
        **common,
    )
    state.enter("writing results")
    killpoints.reached("dist.rank.merge")
    paths = write_merged(merged, run.results_dir)
    if out is not None:
        if state.verb == "verify" and not run.quiet:
            print_verify(merged, out)
        print_merged(merged, paths, out, quiet=run.quiet)
    return int(merged["exit_code"])


def _console() -> Any:
    """Rank 0's console (the CLI's, shared by every command)."""
    from gpubench.console import console

    return console()
