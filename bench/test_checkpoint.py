"""MNIST checkpoints: save and load of model + optimizer + RNG + data-order state, as GB/s (no speed target).

Save: serialize, checksum, write a temporary file, fsync, rename. Load: read, check length and checksum,
``torch.load`` (``weights_only``), check every part fits, apply. The bytes are the checkpoint's payload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpubench.workloads import checkpoint, mnist


@pytest.mark.parametrize("op", ["save", "load"])
def test_checkpoint(benchmark: Any, device: Any, bench_settings: Any, mnist_data: Any, tmp_path: Path,
                    op: str) -> None:
    trainer = mnist.Trainer(mnist_data, device.name, "resident", limit=1024)
    trainer.warmup(2)  # the optimizer has its state: the checkpoint is as big as in a real run
    path = tmp_path / "mnist.ckpt"
    first = checkpoint.save(path, trainer, [])
    benchmark.group = "checkpoint-mnist"
    benchmark.extra_info.update({"workload": "checkpoint", "dtype": "f32", "size": op, "bytes": first.bytes})
    if op == "save":
        def call() -> Any:
            return checkpoint.save(path, trainer, [])
    else:
        def call() -> Any:
            return checkpoint.restore(path, trainer)
    benchmark.pedantic(call, rounds=max(3, bench_settings.rounds), warmup_rounds=1, iterations=1)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        median = float(stats.stats.median)
        benchmark.extra_info.update({"gbps": first.bytes / median / 1e9, "items_per_s": 1 / median})
    assert checkpoint.read(path)["epoch"] == 0
