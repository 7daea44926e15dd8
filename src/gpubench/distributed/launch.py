"""A rank's place in a torchrun job: the launcher's variables, the device its ``LOCAL_RANK`` names, the
process group (rendezvous, the gloo control group, monitored barriers with a timeout), and how every
message names a rank (``rank 1 on host-b (cuda:1)``) when one fails, hangs or dies.

Imports: the standard library, :mod:`gpubench.devices` (the device check), torch inside functions, and
:mod:`gpubench.distributed.options`.
"""

from __future__ import annotations

import contextlib
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

from gpubench.distributed.options import Options

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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


# --- naming ranks and checking they agree (pure, tested without processes) ---------------------------------


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


# --- the process group --------------------------------------------------------------------------------------


@dataclass
class RankState:
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


def first_line(exc: BaseException) -> str:
    """The first line of an error's message; its type's name when the message is empty."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def error_text(exc: BaseException) -> str:
    """``Type: message (at file.py:line)``: how a rank's failure is recorded and sent to rank 0."""
    tb = traceback.extract_tb(exc.__traceback__)
    at = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{at}"


def install_signal_handler(state: RankState) -> None:
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


def join(state: RankState) -> None:
    """Join the process group (torchrun's endpoint or ``--dist-init-file``); open the gloo control group."""
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
            f"{opts.timeout_s:g} s: {first_line(exc)}. Fix: start "
            "every node with the same torchrun --nnodes/--nproc-per-node and rendezvous endpoint"
        )
        raise DistributedError(msg) from None


def finish(state: RankState, code: int | None = None) -> int:
    """Last barrier (no rank exits before rank 0 has written), share rank 0's exit code, leave the group."""
    import torch.distributed as dist

    state.barrier("writing the results")
    box = [code]
    dist.broadcast_object_list(box, src=0, group=state.control)
    final = int(box[0] if box[0] is not None else EXIT_FAILED)
    state.enter("leaving the process group")
    dist.destroy_process_group()
    return final
