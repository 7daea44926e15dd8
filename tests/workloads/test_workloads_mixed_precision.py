"""The resident-bf16 MNIST pipeline on cpu: bf16 autocast trains, records its dtype, and its accuracy effect."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch

from gpubench.workloads import cases, data, mnist


def learnable(kind: str = "synthetic", n_train: int = 512, n_test: int = 256) -> data.MnistData:
    """MNIST-shaped images whose label is the row band that is lit: an MLP learns it in a few epochs."""
    gen = torch.Generator().manual_seed(7)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, 10, (n,), generator=gen)
        images = torch.randint(0, 60, (n, 28, 28), generator=gen, dtype=torch.uint8)
        for i, label in enumerate(labels.tolist()):
            images[i, 2 * label + 4: 2 * label + 6, :] = 255
        return images, labels

    (xs, ys), (xt, yt) = make(n_train), make(n_test)
    return data.MnistData(xs, ys, xt, yt, data.DataSource(kind, "test", None, n_train, n_test))


def test_bf16_pipeline_runs_autocast_on_cpu_and_trains() -> None:
    trainer = mnist.Trainer(learnable(), "cpu", "resident-bf16", batch_size=64)
    assert trainer.compute_dtype == "bf16"
    x, y = next(trainer._resident_batches())
    out, _ = trainer._step(x, y)
    assert out.dtype == torch.bfloat16  # the matmuls ran in bf16 ...
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # ... the weights stay f32
    losses = [trainer.epoch().loss for _ in range(4)]
    assert all(map(torch.isfinite, map(torch.tensor, losses)))
    assert losses[-1] < 0.5 * losses[0], losses
    accuracy, _ = trainer.evaluate("test")
    assert accuracy > 0.9


def test_f32_pipelines_compute_in_f32() -> None:
    assert mnist.Trainer(learnable(), "cpu", "resident").compute_dtype == "f32"
    assert mnist.Trainer(learnable(), "cpu", "dataloader").compute_dtype == "f32"


class UntimedBenchmark:
    """pytest-benchmark's fixture under --benchmark-disable, as far as the cases use it."""

    disabled = True
    stats = None

    def __init__(self) -> None:
        self.extra_info: dict[str, Any] = {}
        self.group = ""

    def pedantic(self, fn: Any, args: tuple[Any, ...] = (), rounds: int = 1, iterations: int = 1) -> Any:
        return fn(*args)


BENCH = SimpleNamespace(mnist_batch_size=64, mnist_limit=512, mnist_num_workers=0, mnist_epochs=2, mnist_rounds=1,
                        warmup_rounds=0, timer="auto", max_sync_fraction=0.01, min_round_s=0.0, cpu_threads=0)


@pytest.mark.parametrize("kind", ["mnist", "synthetic"])
def test_bf16_case_records_dtype_and_its_accuracy_next_to_f32(kind: str) -> None:
    source, record = learnable(kind), cases.PipelineRecord()
    f32, bf16 = UntimedBenchmark(), UntimedBenchmark()
    f32_figures = cases.run_mnist(f32, "cpu", "resident", BENCH, source, None, record)  # type: ignore[arg-type]
    figures = cases.run_mnist(bf16, "cpu", "resident-bf16", BENCH, source, None, record)  # type: ignore[arg-type]
    assert (f32.extra_info["dtype"], bf16.extra_info["dtype"]) == ("f32", "bf16")
    # the Adam that trained, read from the trainer's optimizer (fused on a torch with cpu's fused kernel)
    import torch

    fused = tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 4)
    assert f32.extra_info["optimizer"] == ("adam-fused" if fused else "adam-foreach")
    assert 0.0 <= figures["val_accuracy"] <= 1.0 and "images_per_s" not in figures  # untimed: no speed
    if kind == "mnist":
        expected = 100.0 * (figures["val_accuracy"] - f32_figures["val_accuracy"])
        assert bf16.extra_info["accuracy_vs_f32_pts"] == pytest.approx(expected)
        assert bf16.extra_info["f32_reference"]["pipeline"] == "resident"
    else:  # accuracy on meaningless labels is not compared
        assert "accuracy_vs_f32_pts" not in figures
        assert "synthetic data" in figures["not_measured"]["accuracy_vs_f32_pts"]


def test_bf16_without_an_f32_run_says_so() -> None:
    figures = cases.run_mnist(UntimedBenchmark(), "cpu", "resident-bf16", BENCH, learnable("mnist"), None,  # type: ignore[arg-type]
                              cases.PipelineRecord())
    assert figures["not_measured"]["accuracy_vs_f32_pts"] == "no resident run on cpu earlier in this session"
