"""DDP scaling: the MNIST workload under DistributedDataParallel on 1, 2, 4 … N ranks of a run.

The model and recipe are the bench engineer's (:mod:`gpubench.workloads.mnist`: the 784-512-256-128-10
MLP, Adam lr 1e-3, betas 0.9/0.999, weight decay 1e-5, batch 128 per rank). Each rank keeps its share
of the normalized training images on its device (the ``resident`` pipeline), so the figure is the
training step plus DDP's gradient all-reduce, not a DataLoader.

For each world size ``k`` the first ``k`` ranks form a process group and train a fresh model for a fixed
number of steps (the same on every rank: DDP all-reduces every step, so ranks must agree); the other
ranks wait. Images/s per rank = steps x batch / seconds; scaling efficiency against one rank =
total images/s at ``k`` / (``k`` x images/s at 1). On CPUs the run is short and ranks share cores, so
the efficiency there says more about the host than about DDP; the result records the step count.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class DdpStep:
    """One rank's timed steps at one world size. Seconds."""

    world_size: int
    rank: int
    steps: int
    batch_size: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.steps * self.batch_size / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ScalingRow:
    """One world size of the scaling table. Images per second; ``efficiency`` is a fraction (1.0 = linear)."""

    world_size: int
    images_per_s_per_rank: float  # mean over the ranks of this world size
    total_images_per_s: float
    efficiency: float | None  # None when the one-rank figure is missing
    steps: int
    batch_size: int
    slowest_rank: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_world_sizes(world_size: int) -> tuple[int, ...]:
    """1, 2, 4, … up to ``world_size``, and ``world_size`` itself."""
    sizes = []
    k = 1
    while k < world_size:
        sizes.append(k)
        k *= 2
    sizes.append(world_size)
    return tuple(sizes)


def parse_world_sizes(text: str, world_size: int) -> tuple[int, ...]:
    """``"1,2,4"`` -> (1, 2, 4); every size must be between 1 and the run's world size."""
    try:
        sizes = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        msg = f"--dist-ddp-world-sizes {text!r}: expected comma-separated rank counts, e.g. 1,2,4"
        raise ValueError(msg) from None
    bad = [s for s in sizes if not 1 <= s <= world_size]
    if not sizes or bad:
        msg = f"--dist-ddp-world-sizes {text!r}: each size must be between 1 and the world size {world_size}"
        raise ValueError(msg)
    return tuple(sizes)


def scaling_table(steps: Sequence[DdpStep]) -> list[ScalingRow]:
    """Rows per world size from every rank's timed steps (pure: tested without processes)."""
    by_size: dict[int, list[DdpStep]] = {}
    for s in steps:
        by_size.setdefault(s.world_size, []).append(s)
    rows: list[ScalingRow] = []
    one = by_size.get(1)
    base = one[0].images_per_s if one else None
    for k in sorted(by_size):
        group = by_size[k]
        total = sum(s.images_per_s for s in group)
        slowest = min(group, key=lambda s: s.images_per_s)
        efficiency = total / (k * base) if base else None
        rows.append(
            ScalingRow(
                k, total / len(group), total, efficiency, group[0].steps, group[0].batch_size, slowest.rank
            )
        )
    return rows


def _shard(data: Any, rank: int, world: int, images: int, device: Any) -> tuple[Any, Any]:
    """This rank's ``images`` training images, normalized, on ``device`` (ranks take disjoint slices)."""
    n = int(data.train_images.shape[0])
    per_rank = max(1, min(images, n // max(world, 1)))
    start = (rank * per_rank) % max(n - per_rank + 1, 1)
    mean, std = data.normalization
    x = data.train_images[start : start + per_rank].to(device).float().div_(255.0)
    x = ((x - mean) / std).reshape(per_rank, -1)
    y = data.train_labels[start : start + per_rank].to(device)
    return x, y


def train_steps(
    data: Any,
    device: Any,
    group: Any,
    *,
    world_size: int,
    rank: int,
    steps: int,
    warmup_steps: int,
    batch_size: int,
    seed: int,
) -> DdpStep:
    """Train a fresh DDP model on ``group``: ``warmup_steps``, then ``steps`` timed; this rank's timing."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from gpubench.workloads import mnist

    torch.manual_seed(seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    x, y = _shard(data, rank, world_size, batch_size * (steps + warmup_steps), device)
    model = mnist.build_model().to(device)
    ids = [device.index] if device.type == "cuda" else None
    ddp = DistributedDataParallel(model, device_ids=ids, process_group=group)
    optimizer = mnist.build_optimizer(ddp)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = int(x.shape[0])
    gen = torch.Generator(device=device).manual_seed(seed + rank)

    def step() -> None:
        idx = torch.randint(0, n, (batch_size,), device=device, generator=gen)
        loss = loss_fn(ddp(x.index_select(0, idx)), y.index_select(0, idx))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # DDP all-reduces the gradients here
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup_steps):
        step()
    sync()
    if ids:
        dist.barrier(group=group, device_ids=ids)
    else:
        dist.barrier(group=group)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = time.perf_counter() - start
    return DdpStep(world_size, rank, steps, batch_size, seconds)


def run_scaling(
    data: Any,
    device: Any,
    *,
    rank: int,
    world_size: int,
    world_sizes: Sequence[int],
    steps: int,
    warmup_steps: int,
    batch_size: int,
    seed: int,
    backend: str,
    control_group: Any,
) -> list[DdpStep]:
    """Every rank calls this: for each ``k`` the first ``k`` ranks train, the others wait at a barrier.

    Returns this rank's :class:`DdpStep` for every world size it took part in.
    """
    import torch.distributed as dist

    mine: list[DdpStep] = []
    for k in world_sizes:
        group = dist.new_group(ranks=list(range(k)), backend=backend)  # collective: every rank creates it
        if rank < k:
            mine.append(
                train_steps(
                    data,
                    device,
                    group,
                    world_size=k,
                    rank=rank,
                    steps=steps,
                    warmup_steps=warmup_steps,
                    batch_size=batch_size,
                    seed=seed,
                )
            )
            dist.destroy_process_group(group)  # NCCL communicators hold device memory
        dist.barrier(group=control_group)
    return mine
