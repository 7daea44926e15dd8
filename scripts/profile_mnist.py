"""Where the time of one MNIST training step goes, and which practitioner's tweaks make it faster.

Profiles the device-resident pipeline (``torch.profiler``, self time per operator grouped into matmuls,
elementwise, loss, optimizer, data and the rest), then times each variant in turns (A B C A B C …, so a
change in machine load hits every variant alike) against the same-session f32 matmul rate of the MLP's
own largest layer shape and of a square ``--matmul-n`` matmul. Prints a table of images/s, GFLOP/s and the
fraction of the matmul rate per variant; ``--json PATH`` keeps every figure.

    python scripts/profile_mnist.py                      # cpu, Fashion-MNIST from Debian or synthetic data
    python scripts/profile_mnist.py --steps 200 --repeats 7 --json mnist-profile.json

Variants (each is one change from the shipped resident pipeline, whose Adam is ``fused=True`` where torch has
the kernel, else ``foreach=True``: the first line printed says which): ``shipped``, ``adam-foreach``,
``adam-loop`` (``foreach=False``, torch's default on cpu), ``compile`` (``torch.compile`` of the model), ``bf16``
(autocast). ``dataloader`` is the textbook pipeline for the speed ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gpubench.workloads import mnist
from gpubench.workloads.data import load_mnist

SCHEMA = "gpubench.mnist-profile/1"

# Operator name -> group (self CPU time). Anything not listed is "other".
GROUPS = {
    "matmul": ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear", "aten::t"),
    "elementwise": ("aten::relu", "aten::threshold_backward", "aten::native_dropout", "aten::bernoulli_",
                    "aten::native_dropout_backward", "aten::mul", "aten::div_", "aten::empty_like",
                    "aten::clamp_min", "aten::sum"),
    "loss": ("aten::cross_entropy_loss", "aten::log_softmax", "aten::_log_softmax", "aten::nll_loss",
             "aten::nll_loss_forward", "aten::nll_loss_backward", "aten::_log_softmax_backward_data",
             "aten::nll_loss_nd"),
    "optimizer": ("aten::_foreach_", "aten::_fused_adam", "aten::add_", "aten::mul_", "aten::addcmul_",
                  "aten::addcdiv_", "aten::sqrt", "aten::lerp_", "aten::div", "aten::sub", "aten::add",
                  "Optimizer.step", "aten::zero_"),
    "data": ("aten::index_select", "aten::randperm", "aten::argmax", "aten::eq", "aten::copy_", "aten::to"),
}


def group_of(name: str) -> str:
    for group, prefixes in GROUPS.items():
        if any(name == p or name.startswith(p) for p in prefixes):
            return group
    return "other"


class Variant:
    """One way to run the resident training step: a trainer and a step function."""

    def __init__(self, name: str, data: Any, device: str, build: Callable[[mnist.Trainer], None] | None = None,
                 pipeline: str = "resident"):
        self.name = name
        self.trainer = mnist.Trainer(data, device, pipeline, seed=0)
        if build is not None:
            build(self.trainer)

    def epoch(self) -> mnist.EpochResult:
        return self.trainer.epoch()


def _adam(**kwargs: Any) -> Callable[[mnist.Trainer], None]:
    def build(trainer: mnist.Trainer) -> None:
        trainer.optimizer = torch.optim.Adam(trainer.model.parameters(), lr=mnist.LR, betas=mnist.BETAS,
                                             weight_decay=mnist.WEIGHT_DECAY, **kwargs)
    return build


def _compiled(trainer: mnist.Trainer) -> None:
    trainer.model = torch.compile(trainer.model)


def profile(trainer: mnist.Trainer, steps: int) -> dict[str, float]:
    """Self CPU seconds per group over ``steps`` training steps, plus the wall time they took."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    batches = list(zip(range(steps), trainer._resident_batches(), strict=False))
    trainer.model.train()
    start = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _, (x, y) in batches:
            trainer._step(x, y)
    wall = time.perf_counter() - start
    by_group: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        by_group[group_of(event.key)] += event.self_cpu_time_total / 1e6
    by_group["wall (profiled)"] = wall
    return dict(by_group)


def matmul_rate(m: int, k: int, n: int, repeats: int = 20) -> float:
    """Median f32 GFLOP/s of an (m x k) @ (k x n) matmul on cpu."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    out = torch.empty(m, n)
    for _ in range(3):
        torch.matmul(a, b, out=out)
    inner = max(1, int(2e8 / (2 * m * k * n)))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            torch.matmul(a, b, out=out)
        times.append((time.perf_counter() - t) / inner)
    return 2 * m * k * n / statistics.median(times) / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=8192, help="training images per epoch (8192)")
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per variant, taken in turns (5)")
    parser.add_argument("--steps", type=int, default=60, help="training steps profiled (60)")
    parser.add_argument("--matmul-n", type=int, default=1024, help="n of the square matmul rate (1024)")
    parser.add_argument("--variants", default="shipped,adam-foreach,adam-loop,compile,bf16,dataloader")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_mnist("data", download=False, synthetic=False,
                      idx_dirs=("/usr/share/datasets/fashion-mnist",), source="auto")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, data {data.source.kind} "
          f"({data.source.as_dict().get('path', '')}), {args.limit} images per epoch, batch {mnist.BATCH_SIZE}, "
          f"shipped Adam: {mnist.adam_implementation('cpu')}")
    builders: dict[str, tuple[Callable[[mnist.Trainer], None] | None, str]] = {
        "shipped": (None, "resident"),
        "adam-foreach": (_adam(foreach=True), "resident"),
        "adam-loop": (_adam(foreach=False), "resident"),
        "compile": (_compiled, "resident"),
        "bf16": (None, "resident-bf16"),
        "dataloader": (None, "dataloader"),
    }
    variants = []
    for name in args.variants.split(","):
        build, pipeline = builders[name]
        variants.append(Variant(name, _limited(data, args.limit), "cpu", build, pipeline))

    breakdown = profile(variants[0].trainer, args.steps)
    total_self = sum(v for k, v in breakdown.items() if k != "wall (profiled)")
    print(f"\nprofile of {args.steps} resident steps (self CPU time per group; 'python' is wall minus all ops):")
    python_overhead = max(0.0, breakdown["wall (profiled)"] - total_self)
    for group in (*GROUPS, "other"):
        share = breakdown.get(group, 0.0)
        print(f"  {group:<12} {share * 1e3:8.1f} ms  {share / breakdown['wall (profiled)']:6.1%}")
    print(f"  {'python':<12} {python_overhead * 1e3:8.1f} ms  {python_overhead / breakdown['wall (profiled)']:6.1%}")
    print(f"  {'wall':<12} {breakdown['wall (profiled)'] * 1e3:8.1f} ms")

    for v in variants:  # warm-up: allocations, compile
        v.trainer.warmup(5)
        v.epoch()
    seconds: dict[str, list[float]] = defaultdict(list)
    rate_square: list[float] = []
    rate_layer: list[float] = []
    for _ in range(args.repeats):
        rate_square.append(matmul_rate(args.matmul_n, args.matmul_n, args.matmul_n, repeats=5))
        rate_layer.append(matmul_rate(mnist.BATCH_SIZE, 784, 512, repeats=5))
        for v in variants:
            seconds[v.name].append(v.epoch().seconds)
    square, layer = statistics.median(rate_square), statistics.median(rate_layer)
    print(f"\nf32 matmul rate this session: {square:.1f} GFLOP/s ({args.matmul_n}^3), "
          f"{layer:.1f} GFLOP/s ({mnist.BATCH_SIZE}x784 @ 784x512, the first layer)")
    print(f"{'variant':<14} {'images/s':>10} {'GFLOP/s':>9} {'of square':>10} {'of layer':>9} {'vs dataloader':>14}")
    rows = {}
    loader = statistics.median(seconds["dataloader"]) if "dataloader" in seconds else None
    for v in variants:
        med = statistics.median(seconds[v.name])
        images = v.trainer.n_train
        gflops = mnist.gflops(images, med)
        ratio = loader / med if loader else None
        rows[v.name] = {"seconds": seconds[v.name], "median_s": med, "images_per_s": images / med,
                        "gflops": gflops, "of_square": gflops / square, "of_layer": gflops / layer,
                        "vs_dataloader": ratio}
        shown = f"{ratio:.2f}x" if ratio else "-"
        print(f"{v.name:<14} {images / med:>10,.0f} {gflops:>9.1f} {gflops / square:>10.1%} "
              f"{gflops / layer:>9.1%} {shown:>14}")
    if args.json:
        args.json.write_text(json.dumps({"schema": SCHEMA, "torch": torch.__version__,
                                         "threads": torch.get_num_threads(), "settings": vars(args) | {"json": str(args.json)},
                                         "profile_s": breakdown, "python_overhead_s": python_overhead,
                                         "matmul_gflops": {"square": square, "layer": layer},
                                         "variants": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


def _limited(data: Any, limit: int) -> Any:
    return data if not limit else _Limited(data, limit)


class _Limited:
    """``data`` with its training split cut to ``limit`` images (the Trainer's own limit, applied once)."""

    def __init__(self, data: Any, limit: int):
        self._data = data
        self.train_images = data.train_images[:limit]
        self.train_labels = data.train_labels[:limit]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)


if __name__ == "__main__":
    sys.exit(main())
