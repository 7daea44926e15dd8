"""The benchmark cases of ``bench/``: which cases the configuration asks for, and how each is run.

The pytest files in ``bench/`` are thin: they take a device, a case and pytest-benchmark's
``benchmark`` fixture and call one function here. Every case fills ``benchmark.extra_info`` with what
it did (workload, dtype, size, bytes, FLOPs, items per call), how it was timed (``timing``) and the
derived rates (GB/s, TFLOP/s, items/s, fractions of the ceilings measured on the same device in this
session). Groups never name the device, so devices stand side by side in one group.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gpubench.timing import DeviceTimer, l2_cache_bytes, l2_flush_buffer, median_seconds, rotation_count
from gpubench.workloads import tensor_ops
from gpubench.workloads.tensor_ops import Ceilings, OpCase


def creation_cases(bench: Any) -> list[OpCase]:
    return [tensor_ops.creation_case(op, n, dt) for op in tensor_ops.CREATION_OPS
            for dt in bench.dtypes for n in bench.creation_sizes]


def elementwise_cases(bench: Any) -> list[OpCase]:
    return [tensor_ops.elementwise_case(op, n, dt) for op in tensor_ops.ELEMENTWISE_OPS
            for dt in bench.dtypes for n in bench.elementwise_sizes]


def matmul_cases(bench: Any) -> list[OpCase]:
    return [tensor_ops.matmul_case(n, dt) for dt in bench.dtypes for n in bench.matmul_sizes]


def copy_cases(bench: Any) -> list[OpCase]:
    return [tensor_ops.copy_case(kind, n) for kind in tensor_ops.COPY_KINDS for n in bench.copy_bytes]


def make_timer(device: Any, bench: Any) -> DeviceTimer:
    return DeviceTimer(device, clock=bench.timer, max_sync_fraction=bench.max_sync_fraction,
                       min_round_s=bench.min_round_s)


def make_ceilings(bench: Any) -> Ceilings:
    """Session ceilings: matmul at the largest configured n, copies at the largest configured size."""
    return Ceilings(matmul_n=max(bench.matmul_sizes), copy_bytes=max(bench.copy_bytes),
                    timer_factory=lambda dev: make_timer(dev, bench))


def dtype_skip_reason(dtype: str, device: str, probe: Any) -> str | None:
    from gpubench.devices import dtype_support, parse_device

    if dtype == "u8":
        return None
    return dtype_support(parse_device(device), probe).get(dtype)


def timed_median(benchmark: Any, what: str) -> float | None:
    """The case's median seconds; None only under ``--benchmark-disable``. A timed run without timing
    is a broken case, not a slow one: it fails here instead of silently skipping its figures and targets."""
    median = median_seconds(benchmark)
    if median is None and not getattr(benchmark, "disabled", False):
        msg = (f"{what}: the benchmark ran but recorded no timing, so its figures and targets are missing. "
               "Fix: the case must time its work through gpubench.timing.DeviceTimer.run")
        raise RuntimeError(msg)
    return median


@contextlib.contextmanager
def cpu_threads(benchmark: Any, device: str, threads: int) -> Iterator[None]:
    """Run a case on the cpu with ``threads`` torch intra-op threads (0: torch's choice), restored after, and
    record the count in ``extra_info["cpu_threads"]``. Other devices: nothing changes, nothing is recorded."""
    import torch

    if not device.startswith("cpu"):
        yield
        return
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    benchmark.extra_info["cpu_threads"] = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cache_plan(case: OpCase, device: str, bench: Any) -> tuple[int, Any]:
    """``(input sets to rotate through, L2 flush buffer or None)`` for the case on ``device``."""
    if not case.memory_bound or bench.cache_policy == "warm" or case.workload in tensor_ops.CREATION_OPS:
        return 1, None
    if bench.cache_policy == "flush" and device.startswith("cuda"):
        return 1, l2_flush_buffer(device)
    return rotation_count(case.bytes, l2_cache_bytes(device)), None


def run_op(benchmark: Any, device: str, case: OpCase, bench: Any, ceilings: Ceilings) -> dict[str, Any]:
    """Time one tensor case on ``device`` and fill ``benchmark.extra_info``; returns the derived figures."""
    benchmark.group = case.group
    benchmark.extra_info.update(case.info())
    with cpu_threads(benchmark, device, bench.cpu_threads):
        rotate, flush = _cache_plan(case, device, bench)
        prepared = tensor_ops.prepare(case, device, rotate=rotate)
        timer = make_timer(device, bench)
        timer.run(benchmark, prepared.fn, prepared.inputs, rounds=bench.rounds, warmup_rounds=bench.warmup_rounds,
                  device_only=case.device_only, l2_flush_buffer=flush)
        median = timed_median(benchmark, case.id)
        if median is None:  # --benchmark-disable: ran once, nothing timed
            return {}
        ceilings.observe(case, device, median)
        figures = tensor_ops.derived(case, median, ceilings.for_case(case, device))
    benchmark.extra_info.update(figures)
    return figures


# --- XOR ---------------------------------------------------------------------------------------------


def run_xor(benchmark: Any, device: str, bench: Any) -> dict[str, Any]:
    """Train ``bench.xor_seeds`` seeds at once for ``bench.xor_epochs`` epochs; time and convergence."""
    from gpubench.workloads import xor

    seeds = range(bench.xor_first_seed, bench.xor_first_seed + bench.xor_seeds)
    benchmark.group = f"xor-{bench.xor_seeds}seeds-{bench.xor_epochs}epochs"
    benchmark.extra_info.update({"workload": "xor", "dtype": "f32", "size": bench.xor_seeds,
                                 "items": bench.xor_seeds, "bytes": 0, "flops": 0})
    results: list[Any] = []

    def train() -> None:
        results.append(xor.train_batched(seeds, bench.xor_epochs, device))

    # One thread on the cpu: the seeds' tensors are small (up to 128K elements, a few microseconds of work
    # each), so a second thread mostly adds a barrier per op; on a loaded 2-core machine 100 epochs took
    # 8.5 s with 2 threads, 1.3 s with 1 (measured before the seed-last layout).
    with cpu_threads(benchmark, device, 1):
        make_timer(device, bench).run(
            benchmark, train, rounds=bench.xor_rounds, warmup_rounds=bench.warmup_rounds, device_only=False,
            iterations=1, warmup_call=lambda: xor.train_batched(seeds, 5, device),
        )
    summary: dict[str, Any] = results[-1].summary(timed_median(benchmark, "xor"))
    benchmark.extra_info.update(summary)
    return summary


# --- MNIST ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def mnist_data(data_dir: str, download: bool, synthetic: bool, idx_dirs: tuple[str, ...], source: str) -> Any:
    """The MNIST data of this session (loaded once)."""
    from gpubench.workloads.data import load_mnist

    return load_mnist(data_dir, download=download, synthetic=synthetic, idx_dirs=idx_dirs, source=source)


def mnist_data_for(data_section: Any) -> Any:
    return mnist_data(str(data_section.dir), bool(data_section.download), bool(data_section.synthetic),
                      tuple(data_section.idx_dirs), str(data_section.source))


@dataclass
class PipelineRecord:
    """Images/s and validation accuracy of each MNIST pipeline per device in this session (for the
    resident/dataloader speed ratio and the bf16/f32 accuracy effect)."""

    images_per_s: dict[tuple[str, str], float] = field(default_factory=dict)
    val_accuracy: dict[tuple[str, str], float] = field(default_factory=dict)


# The pipeline whose accuracy a mixed-precision pipeline is compared with: same model, seed, data and steps.
F32_REFERENCE = {"resident-bf16": "resident"}


def run_mnist(
    benchmark: Any,
    device: str,
    pipeline: str,
    bench: Any,
    data: Any,
    ceilings: Ceilings,
    record: PipelineRecord,
) -> dict[str, Any]:
    """Time ``bench.mnist_rounds`` training epochs of one pipeline, then its accuracy, time split and memory.

    Returns the figures put in ``extra_info``; under ``--benchmark-disable`` only the accuracy ones (the
    model was trained once, untimed). ``not_measured`` maps a comparison figure that is absent to why.
    """
    from gpubench.workloads import mnist

    trainer = mnist.Trainer(data, device, pipeline, batch_size=bench.mnist_batch_size, limit=bench.mnist_limit,
                            num_workers=bench.mnist_num_workers)
    benchmark.group = f"mnist-epoch-{trainer.n_train}"
    benchmark.extra_info.update({
        "workload": f"mnist-{pipeline}", "pipeline": pipeline, "dtype": trainer.compute_dtype,
        "size": trainer.n_train, "batch_size": bench.mnist_batch_size,
        "flops": trainer.n_train * mnist.TRAIN_FLOPS_PER_IMAGE, "bytes": 0,
        "data_source": data.source.as_dict(),
        # which Adam trained (fused where this torch has the kernel for the device, else foreach)
        "optimizer": f"adam-{mnist.optimizer_implementation(trainer.optimizer)}",
    })
    epochs: list[Any] = []

    def one_epoch() -> None:
        for _ in range(bench.mnist_epochs):
            epochs.append(trainer.epoch())

    with cpu_threads(benchmark, device, bench.cpu_threads):
        # An epoch has host work in it (the DataLoader, Python): the host clock after a device sync.
        make_timer(device, bench).run(benchmark, one_epoch, rounds=bench.mnist_rounds,
                                      warmup_rounds=bench.warmup_rounds, device_only=False, iterations=1,
                                      warmup_call=lambda: trainer.warmup(5))
        figures = _mnist_accuracy(trainer, device, pipeline, data, record, epochs)
        median = timed_median(benchmark, f"mnist-{pipeline}")
        if median is not None:
            speed = _mnist_speed(trainer, device, pipeline, epochs[-bench.mnist_epochs:], median, ceilings, record)
            figures["not_measured"].update(speed.pop("not_measured", {}))
            figures.update(speed)
    benchmark.extra_info.update(figures)
    return figures


def _mnist_accuracy(trainer: Any, device: str, pipeline: str, data: Any, record: PipelineRecord,
                    epochs: list[Any]) -> dict[str, Any]:
    """Validation accuracy after the timed rounds and, for bf16, its difference from the f32 run (points)."""
    val_accuracy, val_loss = trainer.evaluate("test")
    record.val_accuracy[(device, pipeline)] = val_accuracy
    figures: dict[str, Any] = {"val_accuracy": val_accuracy, "val_loss": val_loss, "not_measured": {}}
    if epochs:
        figures["train_loss_last_round"] = epochs[-1].loss
    reference = F32_REFERENCE.get(pipeline)
    if reference is None:
        return figures
    baseline = record.val_accuracy.get((device, reference))
    if not data.source.real:
        figures["not_measured"]["accuracy_vs_f32_pts"] = f"{data.source.kind} data: accuracy means nothing"
    elif baseline is None:
        figures["not_measured"]["accuracy_vs_f32_pts"] = f"no {reference} run on {device} earlier in this session"
    else:
        figures["accuracy_vs_f32_pts"] = 100.0 * (val_accuracy - baseline)
        figures["f32_reference"] = {"pipeline": reference, "val_accuracy": baseline}
    return figures


def _mnist_speed(trainer: Any, device: str, pipeline: str, epochs: list[Any], median: float, ceilings: Ceilings,
                 record: PipelineRecord) -> dict[str, Any]:
    """Images/s, GFLOP/s and its matmul fraction, the time split, memory and the speedup over the DataLoader."""
    from gpubench.workloads import mnist

    images = sum(e.images for e in epochs)
    images_per_s = images / median
    gflops = mnist.gflops(images, median)
    ceiling = ceilings.matmul(device, "f32")
    figures: dict[str, Any] = {
        "items": images, "images_per_s": images_per_s, "items_per_s": images_per_s,
        "flops": images * mnist.TRAIN_FLOPS_PER_IMAGE, "gflops": gflops, "tflops": gflops / 1e3,
        "matmul_fraction": gflops / 1e3 / ceiling.rate,
        "ceilings": {"matmul": ceiling.as_dict() | {"key": "matmul-f32"}},
    }
    if pipeline != "cuda-graph":
        split = trainer.epoch_instrumented()
        total = sum(split.phases.values())
        figures["time_split_s"] = split.phases
        figures["time_split_fraction"] = {k: v / total for k, v in split.phases.items()} if total else {}
        figures["time_split_note"] = "one extra epoch with a device sync at every phase boundary"
    figures["memory_bytes"] = trainer.memory().as_dict()
    record.images_per_s[(device, pipeline)] = images_per_s
    baseline = record.images_per_s.get((device, "dataloader"))
    if pipeline != "dataloader" and baseline:
        figures["speedup_vs_dataloader"] = images_per_s / baseline
    elif pipeline != "dataloader":
        figures["not_measured"] = {"speedup_vs_dataloader": f"no dataloader run on {device} earlier in this session"}
    return figures
