"""Collective bandwidth: all-reduce, all-gather, reduce-scatter and broadcast over a size sweep.

Conventions are those of NVIDIA's nccl-tests, so the numbers can be held against theirs:

- ``bytes`` is the size of the *whole* buffer of one collective: the buffer reduced (all-reduce), the
  gathered output (all-gather: world size x each rank's input), the input that is reduced and scattered
  (reduce-scatter: world size x each rank's output), the buffer broadcast.
- algorithm bandwidth ``algbw = bytes / time``; bus bandwidth ``busbw = algbw x factor`` where the factor
  makes the figure comparable with the hardware's link bandwidth whatever the rank count:
  all-reduce ``2(n-1)/n``, all-gather and reduce-scatter ``(n-1)/n``, broadcast ``1``.
- GB = 1e9 bytes (not GiB).

Timing (why it is not pytest-benchmark): every rank must run exactly the same number of collectives or the
run deadlocks, and pytest-benchmark calibrates rounds per process. A host clock around one call and a device
synchronization measures, at small sizes, launch and synchronization (tens of microseconds), not the link.
So, as nccl-tests does, a timed round is a *batch* of ``iters`` back-to-back calls, and one call's time is
the batch's time / ``iters``. ``iters`` comes from :func:`batch_iters`, from the buffer's bytes and a
:class:`BatchRule` only (never from a measurement), so every rank issues the same calls: on GPUs
(:data:`GPU_BATCH`) about 64 MiB a batch, up to 100 calls for small buffers and one from 64 MiB; on CPUs
(:data:`CPU_BATCH`) up to 10, as a gloo call takes hundreds of microseconds anyway and the sweep must stay
short. Per (op, size) every rank runs, after a barrier, ``warmup`` untimed rounds, then ``rounds`` timed
ones, each behind a barrier of its own. On CUDA two ``torch.cuda.Event(enable_timing=True)`` recorded on the
current stream of the rank's device bracket the batch and the end one is waited for once: the events time
the device's work, not the host's launch and wake-up (a blocking collective makes the current stream wait
for NCCL's stream, so the end event follows the last call). On CPU (gloo calls return when done)
``time.perf_counter`` brackets the same batch. A round's time is the slowest rank's (the collective is done
when every rank is done; nccl-tests averages the ranks), the reported time is the median round, and each
result records its ``iters`` and ``timing`` (how it was timed).
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

OPS: tuple[str, ...] = ("all_reduce", "all_gather", "reduce_scatter", "broadcast")
GB = 1e9
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
# default sweeps: short on CPUs (gloo over loopback is slow, and tests must stay short); to 1 GiB on GPUs
CPU_SWEEP = (4 * KIB, 16 * MIB)
GPU_SWEEP = (1 * KIB, 1 * GIB)
ITEMSIZE = 4  # float32 buffers

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "kib": KIB,
    "mib": MIB,
    "gib": GIB,
}


class CollectiveError(ValueError):
    """A sweep or gate that cannot be run as asked (the message says what to change)."""


def bus_factor(op: str, world_size: int) -> float:
    """nccl-tests' bus factor: all-reduce 2(n-1)/n, all-gather and reduce-scatter (n-1)/n, broadcast 1."""
    if world_size < 1:
        msg = f"world size {world_size} is not a number of ranks (>= 1)"
        raise CollectiveError(msg)
    n = world_size
    if op == "all_reduce":
        return 2 * (n - 1) / n
    if op in ("all_gather", "reduce_scatter"):
        return (n - 1) / n
    if op == "broadcast":
        return 1.0
    msg = f"unknown collective {op!r}; use one of {', '.join(OPS)}"
    raise CollectiveError(msg)


def algbw_gbps(nbytes: int, seconds: float) -> float:
    """Algorithm bandwidth, GB/s (1e9 bytes per second): the collective's buffer size over its time."""
    if seconds <= 0:
        msg = f"cannot derive a bandwidth from a non-positive time ({seconds} s)"
        raise CollectiveError(msg)
    return nbytes / seconds / GB


def busbw_gbps(op: str, nbytes: int, seconds: float, world_size: int) -> float:
    """Bus bandwidth, GB/s: algorithm bandwidth times :func:`bus_factor`."""
    return algbw_gbps(nbytes, seconds) * bus_factor(op, world_size)


def parse_bytes(text: str | int) -> int:
    """``4096``, ``4KiB``, ``16MiB``, ``1GiB`` (binary) or ``1MB`` (decimal) -> bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        msg = (
            f"{text!r} is not a size: write bytes or a number with KiB, MiB, GiB (or KB, MB, GB), e.g. 16MiB"
        )
        raise CollectiveError(msg)
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def format_bytes(nbytes: int) -> str:
    """``4 KiB``, ``16 MiB``, ``1 GiB``, or bytes when not a whole binary unit."""
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if nbytes >= size and nbytes % size == 0:
            return f"{nbytes // size} {unit}"
    return f"{nbytes} B"


def size_sweep(min_bytes: int, max_bytes: int, factor: int = 4) -> tuple[int, ...]:
    """``min_bytes, min_bytes*factor, ...`` up to ``max_bytes`` (included when the steps land on it)."""
    if min_bytes < 1 or max_bytes < min_bytes:
        msg = f"size sweep {min_bytes}..{max_bytes} bytes is empty; give 1 <= min <= max (e.g. 4KiB..16MiB)"
        raise CollectiveError(msg)
    if factor < 2:
        msg = f"size sweep factor {factor} must be at least 2 (each size a multiple of the last)"
        raise CollectiveError(msg)
    sizes = []
    size = min_bytes
    while size <= max_bytes:
        sizes.append(size)
        size *= factor
    return tuple(sizes)


def buffer_numels(op: str, nbytes: int, world_size: int, itemsize: int = ITEMSIZE) -> tuple[int, int, int]:
    """``(bytes, input elements, output elements)`` of one collective of about ``nbytes``.

    The size is rounded down to a whole number of elements per rank (all-gather and reduce-scatter split
    the buffer into ``world_size`` equal parts), and never below one element per rank.
    """
    bus_factor(op, world_size)  # validates op and world size
    per_rank = max(1, nbytes // (itemsize * world_size))
    total = per_rank * world_size
    if op == "all_gather":
        return total * itemsize, per_rank, total
    if op == "reduce_scatter":
        return total * itemsize, total, per_rank
    numel = max(1, nbytes // itemsize)
    return numel * itemsize, numel, numel


@dataclass(frozen=True)
class CollectiveResult:
    """One (op, size) of the sweep. Seconds; GB/s with GB = 1e9 bytes.

    ``times_s``: each round's time of one call (the batch's time / ``iters``) on the slowest rank;
    ``time_s``: their median. ``iters``: calls per timed round; ``timing``: how a round was timed
    (empty in results made before it was recorded).
    """

    op: str
    bytes: int
    rounds: int
    warmup: int
    time_s: float
    times_s: tuple[float, ...]
    algbw_gbps: float
    busbw_gbps: float
    backend: str
    world_size: int
    dtype: str = "float32"
    device: str = "cpu"
    iters: int = 1
    timing: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["times_s"] = list(self.times_s)
        return data


def result_from_times(
    op: str,
    nbytes: int,
    times: Sequence[float],
    *,
    warmup: int,
    backend: str,
    world_size: int,
    device: str,
    dtype: str = "float32",
    iters: int = 1,
    timing: str = "",
) -> CollectiveResult:
    """The result of one (op, size) from the per-round times of one call (already the slowest rank's)."""
    if not times:
        msg = f"{op} {nbytes} bytes: no timed rounds"
        raise CollectiveError(msg)
    median = statistics.median(times)
    return CollectiveResult(
        op,
        nbytes,
        len(times),
        warmup,
        median,
        tuple(times),
        algbw_gbps(nbytes, median),
        busbw_gbps(op, nbytes, median, world_size),
        backend,
        world_size,
        dtype,
        device,
        iters,
        timing,
    )


@dataclass(frozen=True)
class BatchRule:
    """How many back-to-back calls a timed round holds: about ``target_bytes`` moved, within the bounds."""

    target_bytes: int = 64 * MIB
    min_iters: int = 1
    max_iters: int = 100

    def __post_init__(self) -> None:
        if self.target_bytes < 1 or self.min_iters < 1 or self.max_iters < self.min_iters:
            msg = (
                f"batch rule target {self.target_bytes} bytes, iters {self.min_iters}..{self.max_iters}: "
                "give target >= 1 and 1 <= min_iters <= max_iters"
            )
            raise CollectiveError(msg)


# GPUs: 64 MiB a batch keeps it long next to a launch (hundreds of microseconds on NVLink) while 1 GiB stays
# one call. CPUs: a gloo call is slow enough for a host clock; up to 10 calls keep the sweep to seconds.
GPU_BATCH = BatchRule(target_bytes=64 * MIB, max_iters=100)
CPU_BATCH = BatchRule(target_bytes=256 * KIB, max_iters=10)


def batch_rule_for(device_type: str) -> BatchRule:
    """The default rule for a device type (``cuda``: :data:`GPU_BATCH`, otherwise :data:`CPU_BATCH`).

    The same on every rank: the ranks of one run share a backend, so a device type.
    """
    return GPU_BATCH if device_type == "cuda" else CPU_BATCH


def batch_iters(nbytes: int, rule: BatchRule = GPU_BATCH) -> int:
    """Calls per timed round for a buffer of ``nbytes``: ``ceil(target / nbytes)`` within the rule's bounds.

    A function of its arguments only: every rank gets the same count, so every rank runs the same calls.
    """
    if nbytes < 1:
        msg = f"cannot size a batch for a buffer of {nbytes} bytes (give at least 1)"
        raise CollectiveError(msg)
    return max(rule.min_iters, min(rule.max_iters, math.ceil(rule.target_bytes / nbytes)))


def busbw_gate(results: Iterable[CollectiveResult], min_busbw_gbps: float | None) -> list[str]:
    """Failures of the optional bus bandwidth floor: each op's best bus bandwidth must reach it.

    The best figure of the sweep is judged, as small sizes measure latency, not bandwidth.
    """
    if min_busbw_gbps is None:
        return []
    best: dict[str, CollectiveResult] = {}
    for r in results:
        if r.op not in best or r.busbw_gbps > best[r.op].busbw_gbps:
            best[r.op] = r
    return [
        f"{op}: best bus bandwidth {r.busbw_gbps:.3g} GB/s (at {format_bytes(r.bytes)}) is below the minimum "
        f"{min_busbw_gbps:g} GB/s"
        for op, r in best.items()
        if r.busbw_gbps < min_busbw_gbps
    ]


# --- running (every rank calls these with the same arguments) -----------------------------------------------


def _sync(device: Any) -> None:
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.synchronize(device)


# a batch timer: (one call, iters) -> seconds the whole batch took
BatchTimer = Callable[[Callable[[], Any], int], float]


def time_batch_host(
    call: Callable[[], Any], iters: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds ``iters`` back-to-back calls take by ``clock``, for calls that return when done (gloo)."""
    start = clock()
    for _ in range(iters):
        call()
    return clock() - start


def time_batch_cuda(call: Callable[[], Any], iters: int, device: Any, cuda: Any = None) -> float:
    """Seconds ``iters`` back-to-back calls take on ``device``'s current stream, by CUDA events.

    The events are recorded on ``torch.cuda.current_stream(device)`` around the batch and the end event is
    waited for once. ``cuda`` stands in for ``torch.cuda`` (tests).
    """
    if cuda is None:
        import torch

        cuda = torch.cuda
    stream = cuda.current_stream(device)
    start = cuda.Event(enable_timing=True)
    end = cuda.Event(enable_timing=True)
    start.record(stream)
    for _ in range(iters):
        call()
    end.record(stream)
    end.synchronize()
    return float(start.elapsed_time(end)) / 1000.0  # milliseconds -> seconds


def _batch_timing(device: Any, iters: int) -> tuple[BatchTimer, str]:
    """The batch timer for ``device`` and how a result says it was timed."""
    if getattr(device, "type", "cpu") == "cuda":
        return (
            lambda call, n: time_batch_cuda(call, n, device),
            f"cuda events over a batch of {iters} back-to-back calls",
        )
    # looked up when called, like time_batch_cuda above, so a test can stand in for either
    return (lambda call, n: time_batch_host(call, n)), f"perf_counter over a batch of {iters} calls"


def _collective(op: str, world_size: int, numel_in: int, numel_out: int, device: Any, group: Any) -> Any:
    """A zero-argument callable running one ``op`` on preallocated buffers."""
    import torch
    import torch.distributed as dist

    inp = torch.ones(numel_in, dtype=torch.float32, device=device)
    out = torch.empty(numel_out, dtype=torch.float32, device=device)
    # torch 2.14 renamed the tensor forms (the old names warn); older releases only have the old names
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
    calls = {
        "all_reduce": lambda: dist.all_reduce(inp, group=group),
        "all_gather": lambda: gather(out, inp, group=group),
        "reduce_scatter": lambda: scatter(out, inp, group=group),
        "broadcast": lambda: dist.broadcast(inp, src=0, group=group),
    }
    return calls[op]


def run_sweep(
    ops: Sequence[str],
    sizes: Sequence[int],
    *,
    rounds: int,
    warmup: int,
    device: Any,
    backend: str,
    control_group: Any,
    group: Any = None,
    batch: BatchRule | None = None,
) -> list[CollectiveResult]:
    """Time every op at every size on ``group`` (default: the whole world); returns results on every rank.

    Each of ``warmup`` untimed and ``rounds`` timed rounds is a batch of :func:`batch_iters` calls
    (``batch``: the rule, default :func:`batch_rule_for` the device's type); a round's time is the batch's
    / its calls.
    ``control_group`` (gloo, CPU tensors) carries the barriers and the per-round maximum over ranks.
    Every rank must call this with identical arguments.
    """
    import torch
    import torch.distributed as dist

    if rounds < 1:
        msg = f"collective rounds {rounds} must be at least 1"
        raise CollectiveError(msg)
    world = dist.get_world_size(group)
    rule = batch or batch_rule_for(getattr(device, "type", "cpu"))
    out: list[CollectiveResult] = []
    for op in ops:
        for size in sizes:
            nbytes, numel_in, numel_out = buffer_numels(op, size, world)
            iters = batch_iters(nbytes, rule)
            timer, timing = _batch_timing(device, iters)
            call = _collective(op, world, numel_in, numel_out, device, group)
            dist.barrier(group=control_group)
            for _ in range(warmup * iters):
                call()
            _sync(device)
            times = torch.zeros(rounds, dtype=torch.float64)
            for i in range(rounds):
                dist.barrier(group=control_group)  # every rank starts the batch together, as nccl-tests
                times[i] = timer(call, iters) / iters
            dist.all_reduce(times, op=dist.ReduceOp.MAX, group=control_group)
            out.append(
                result_from_times(
                    op,
                    nbytes,
                    times.tolist(),
                    warmup=warmup,
                    backend=backend,
                    world_size=world,
                    device=str(device),
                    iters=iters,
                    timing=timing,
                )
            )
    return out
