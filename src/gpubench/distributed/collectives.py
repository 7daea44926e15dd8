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
run deadlocks, and pytest-benchmark calibrates rounds per process. Here every rank runs ``warmup`` then
``rounds`` collectives per (op, size), after a barrier; each round is timed on each rank between device
synchronizations; a round's time is the slowest rank's (the collective is done when every rank is done),
and the reported time is the median round.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterable, Sequence
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

    ``times_s``: each round's time on the slowest rank; ``time_s``: their median.
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
) -> CollectiveResult:
    """The result of one (op, size) from the per-round times (already the slowest rank's)."""
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
    )


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
) -> list[CollectiveResult]:
    """Time every op at every size on ``group`` (default: the whole world); returns results on every rank.

    ``control_group`` (gloo, CPU tensors) carries the barriers and the per-round maximum over ranks.
    Every rank must call this with identical arguments.
    """
    import torch
    import torch.distributed as dist

    if rounds < 1:
        msg = f"collective rounds {rounds} must be at least 1"
        raise CollectiveError(msg)
    world = dist.get_world_size(group)
    out: list[CollectiveResult] = []
    for op in ops:
        for size in sizes:
            nbytes, numel_in, numel_out = buffer_numels(op, size, world)
            call = _collective(op, world, numel_in, numel_out, device, group)
            dist.barrier(group=control_group)
            for _ in range(warmup):
                call()
            _sync(device)
            dist.barrier(group=control_group)
            times = torch.zeros(rounds, dtype=torch.float64)
            for i in range(rounds):
                start = time.perf_counter()
                call()
                _sync(device)
                times[i] = time.perf_counter() - start
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
                )
            )
    return out
