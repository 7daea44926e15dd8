"""The MNIST MLP, recipe, FLOP count, pipelines, time split, memory breakdown and verdicts (on CPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gpubench.workloads import data, mnist


@pytest.fixture(scope="module")
def small() -> data.MnistData:
    return data.synthetic_mnist(n_train=640, n_test=200, seed=3)


def test_model_and_recipe_are_the_specified_ones() -> None:
    model = mnist.build_model()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 512), (512, 256), (256, 128), (128, 10)]
    assert [m.p for m in model if isinstance(m, nn.Dropout)] == [0.2, 0.2]
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Linear"]
    group = mnist.build_optimizer(model).param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"]) == (1e-3, (0.9, 0.999), 1e-5)


def test_flop_counts_follow_the_layers() -> None:
    macs = 784 * 512 + 512 * 256 + 256 * 128 + 128 * 10
    assert 2 * macs == mnist.FORWARD_FLOPS_PER_IMAGE
    assert 4 * macs + 2 * (macs - 784 * 512) == mnist.TRAIN_FLOPS_PER_IMAGE
    assert mnist.gflops(1000, 2.0) == pytest.approx(1000 * mnist.TRAIN_FLOPS_PER_IMAGE / 2.0 / 1e9)


@pytest.mark.parametrize("pipeline", ["dataloader", "resident"])
def test_pipelines_train_on_the_limited_set(small: data.MnistData, pipeline: str) -> None:
    trainer = mnist.Trainer(small, "cpu", pipeline, limit=300, batch_size=128)
    result = trainer.epoch()
    assert (result.images, result.steps) == (300, 3)
    assert result.seconds > 0 and result.loss > 0 and 0 <= result.accuracy <= 1
    split = trainer.epoch_instrumented()
    assert set(split.phases) == {"data", "forward", "backward", "optimizer"}
    assert split.images == 300 and all(v >= 0 for v in split.phases.values())


def test_memory_breakdown_counts_tensors(small: data.MnistData) -> None:
    trainer = mnist.Trainer(small, "cpu", "resident", limit=256)
    memory = trainer.memory()
    n_params = sum(p.numel() for p in trainer.model.parameters())
    assert memory.parameters == memory.gradients == 4 * n_params
    assert 2 * 4 * n_params <= memory.optimizer_state <= 2 * 4 * n_params + 8 * 64  # exp_avg, exp_avg_sq, steps
    # saved for backward: at least the inputs of the three later Linear layers (128 x (512 + 256 + 128) floats)
    assert memory.activations >= 128 * (512 + 256 + 128) * 4
    assert memory.dataset_on_device == 256 * 784 * 4 + 256 * 8
    assert memory.peak >= memory.parameters + memory.gradients + memory.optimizer_state + memory.activations
    assert "computed" in memory.peak_method


def test_gpu_pipelines_are_skipped_on_cpu_with_the_reason(small: data.MnistData) -> None:
    assert "needs a CUDA device" in (mnist.pipeline_skip_reason("cuda-graph", "cpu") or "")
    assert mnist.pipeline_skip_reason("resident-bf16", "cpu") is None  # bf16 autocast runs on cpu too
    assert mnist.pipeline_skip_reason("resident", "cpu") is None
    with pytest.raises(ValueError, match="needs a CUDA device"):
        mnist.Trainer(small, "cpu", "cuda-graph")


def test_verdicts_use_per_dataset_targets() -> None:
    assert mnist.judge("mnist", 0.995, 0.985, 0.03)[0] == "PASS"
    verdict, failures, _ = mnist.judge("mnist", 0.97, 0.985, 0.08)
    assert verdict == "FAIL" and len(failures) == 2
    # the Fashion-MNIST reference run (92% / 88.7% / 0.246) passes its own targets, not MNIST's
    assert mnist.judge("fashion-mnist", 0.92, 0.887, 0.246)[0] == "PASS"
    assert mnist.judge("mnist", 0.92, 0.887, 0.246)[0] == "FAIL"
    assert mnist.judge("synthetic", 0.1, 0.1, 2.3)[0].startswith("SKIP")


def test_full_run_on_synthetic_data_is_not_judged(small: data.MnistData) -> None:
    rows: list[dict[str, float]] = []
    run = mnist.train_full(small, "cpu", epochs=1, report=rows.append)
    assert len(rows) == 1 and run.epochs == rows
    assert 0 <= rows[0]["train_accuracy_eval"] <= 1
    assert run.verdict.startswith("SKIP") and run.source["kind"] == "synthetic"
    assert run.optimizer == mnist.adam_implementation("cpu")
    assert 0 <= rows[0]["val_accuracy"] <= 1
    assert torch.isfinite(torch.tensor(rows[0]["train_loss"]))


def _first_batch_labels(small: data.MnistData, seed: int) -> list[int]:
    trainer = mnist.Trainer(small, "cpu", "dataloader", limit=256, batch_size=32, seed=seed)
    return [int(v) for v in next(iter(trainer._loader))[1]]


def test_dataloader_shuffle_follows_the_seed(small: data.MnistData) -> None:
    # the same seed gives the same order; another seed another (was: a fresh random seed every time)
    assert _first_batch_labels(small, 7) == _first_batch_labels(small, 7)
    assert _first_batch_labels(small, 7) != _first_batch_labels(small, 8)


def test_cuda_graph_is_captured_on_a_stream_of_the_measured_device(
    small: data.MnistData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.cuda.graph without stream= captures on a process-wide stream made on the first device that
    was current; the trainer must pass a stream of its own device. Recorded on CPU through torch.cuda's API."""
    import contextlib

    streams: list[Stream] = []

    class Stream:
        def __init__(self, device: object = None) -> None:
            self.device = device
            streams.append(self)

        def wait_stream(self, other: object) -> None:
            pass

    captured: dict[str, object] = {}

    @contextlib.contextmanager
    def graph(cuda_graph: object, pool: object = None, stream: object = None, **_: object):  # type: ignore[no-untyped-def]
        captured["stream"] = stream
        yield

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream(device))
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: object())
    monkeypatch.setattr(torch.cuda, "graph", graph)
    trainer = mnist.Trainer(small, "cpu", "resident", limit=256, batch_size=32)
    trainer._capture()
    stream = captured["stream"]
    assert isinstance(stream, Stream) and stream.device == trainer.device


def _torch_at_least(major: int, minor: int) -> bool:
    return tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (major, minor)


def test_adam_is_fused_where_torch_has_the_kernel() -> None:
    optimizer = mnist.build_optimizer(mnist.build_model())
    expected = "fused" if _torch_at_least(2, 4) else "foreach"  # fused Adam on cpu: torch >= 2.4
    assert mnist.optimizer_implementation(optimizer) == expected == mnist.adam_implementation("cpu")
    group = optimizer.param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"]) == (1e-3, (0.9, 0.999), 1e-5)


class _AdamRefusingFused(torch.optim.Adam):
    """torch.optim.Adam as an older torch answers ``fused=True`` on cpu (``how`` says at which point)."""

    how = "constructor"

    def __init__(self, params: object, **kwargs: object) -> None:
        self.refuses = bool(kwargs.get("fused"))
        if self.refuses and self.how == "constructor":  # torch 2.1-2.3
            msg = "`fused=True` requires all the params to be floating point Tensors of supported devices: ['cuda']."
            raise RuntimeError(msg)
        if self.refuses and self.how == "no argument":  # a torch without the argument
            msg = "__init__() got an unexpected keyword argument 'fused'"
            raise TypeError(msg)
        super().__init__(params, **kwargs)  # type: ignore[arg-type]

    def step(self, closure: object = None) -> None:  # type: ignore[override]
        if self.refuses:  # a device without the kernel in a later torch: refused at the first step
            msg = "`fused=True` requires all the params to be floating point Tensors of supported devices"
            raise RuntimeError(msg)
        super().step()


@pytest.mark.parametrize("how", ["constructor", "no argument", "first step"])
def test_adam_falls_back_to_foreach_when_torch_refuses_fused(
        small: data.MnistData, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setattr(_AdamRefusingFused, "how", how)
    monkeypatch.setattr(torch.optim, "Adam", _AdamRefusingFused)
    assert mnist.adam_implementation("cpu") == "foreach"
    trainer = mnist.Trainer(small, "cpu", "resident", limit=256)
    assert mnist.optimizer_implementation(trainer.optimizer) == "foreach"
    assert not trainer.optimizer.param_groups[0]["fused"]
    result = trainer.epoch()  # and it trains
    assert result.steps == 2 and result.loss > 0
    run = mnist.train_full(small, "cpu", epochs=1)
    assert run.optimizer == "foreach"


def test_optimizer_implementation_reads_the_parameter_groups() -> None:
    params = list(mnist.build_model().parameters())
    assert mnist.optimizer_implementation(torch.optim.Adam(params, foreach=False)) == "for-loop"
    assert mnist.optimizer_implementation(torch.optim.Adam(params, foreach=True)) == "foreach"


def test_resident_epoch_tallies_loss_and_accuracy_over_every_image(small: data.MnistData) -> None:
    """The epoch sums its losses and correct predictions on the device once, at the end: the same figures and the
    same training as adding them up step by step (the twin replays the epoch from the same seeds)."""
    trainer = mnist.Trainer(small, "cpu", "resident", limit=300, batch_size=128, seed=4)
    result = trainer.epoch()
    twin = mnist.Trainer(small, "cpu", "resident", limit=300, batch_size=128, seed=4)  # reseeds dropout's RNG too
    loss_sum = correct = 0.0
    sizes = []
    for x, y in twin._resident_batches():
        out, loss = twin._step(x, y)
        loss_sum += float(loss.detach()) * len(y)
        correct += float((out.argmax(1) == y).sum())
        sizes.append(len(y))
    assert sizes == [128, 128, 44]  # the last batch is partial and weighs 44 images
    assert (result.images, result.steps) == (300, 3)
    assert result.loss == pytest.approx(loss_sum / 300, rel=1e-6)
    assert result.accuracy == correct / 300
    for mine, theirs in zip(trainer.model.parameters(), twin.model.parameters(), strict=True):
        assert torch.equal(mine, theirs)
