"""MNIST: the 784-512-256-128-10 MLP, its input pipelines, the time split and the memory breakdown.

(One module over 600 lines on purpose: the pipelines are methods of one ``Trainer`` sharing its model,
optimizer, data and generators; the checkpoint code already lives in ``checkpoint.py``. The next piece to
move out, when it grows, is the training record: ``TrainingRun``, ``judge`` and ``train_full``.)

Model: ``Linear(784, 512), ReLU, Dropout(0.2), Linear(512, 256), ReLU, Dropout(0.2), Linear(256, 128),
ReLU, Linear(128, 10)``; Adam (lr 1e-3, betas 0.9/0.999, weight decay 1e-5); cross-entropy; batch 128.

Pipelines (same model, recipe and data):

- ``dataloader``: the textbook one. A torchvision dataset (PIL image, ``ToTensor``, ``Normalize``) behind
  ``torch.utils.data.DataLoader(shuffle=True)``; each batch is copied to the device and the running
  loss and accuracy are read with ``.item()`` every step, as the tutorials do.
- ``resident``: the whole normalized dataset is one tensor on the device, shuffled there with
  ``randperm``; batches are ``index_select``-ed; each step's loss and predicted classes stay on the device
  and are summed and read once per epoch: no host synchronization and no bookkeeping ops per step.
- ``resident-bf16``: ``resident`` under ``torch.autocast(device_type=<the device's type>, dtype=torch.bfloat16)``,
  on every device (PyTorch autocasts matmuls to bf16 on cpu too); weights and optimizer state stay f32.
- ``cuda-graph`` (CUDA only): ``resident`` with the whole training step (forward, loss, backward and a
  ``capturable=True`` Adam step) captured once in a CUDA graph and replayed; the last partial batch is
  dropped because a graph has fixed shapes.

Per epoch, training accuracy and loss are the running figures of the epoch (dropout active), as the
original example printed them; validation is measured in eval mode on the test split. A full run is
judged on the final model's accuracy over the whole training set in eval mode, the validation
accuracy, and the last epoch's mean training loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from gpubench import killpoints
from gpubench.workloads.data import MnistData

LAYERS = (784, 512, 256, 128, 10)
DROPOUT = 0.2
LR = 1e-3
BETAS = (0.9, 0.999)
WEIGHT_DECAY = 1e-5
BATCH_SIZE = 128
PIPELINES = ("dataloader", "resident", "resident-bf16", "cuda-graph")
CUDA_ONLY = {"cuda-graph"}
#: The dtype the matmuls of each pipeline compute in (autocast keeps weights and optimizer state in f32).
COMPUTE_DTYPE = {"resident-bf16": "bf16"}


@dataclass(frozen=True)
class Targets:
    """Accuracy (fractions) and loss a full training run must reach on a real dataset."""

    train_accuracy: float
    val_accuracy: float
    loss: float
    origin: str


TARGETS: dict[str, Targets] = {
    "mnist": Targets(0.99, 0.98, 0.05, "the original MNIST example's targets (10 epochs)"),
    # Measured here with this model and recipe after 10 epochs: 92% train, 88.7% validation, loss 0.246;
    # the targets leave 2 points of accuracy and 0.05 of loss for seed-to-seed variation.
    "fashion-mnist": Targets(0.90, 0.867, 0.296, "measured reference (92% / 88.7% / 0.246) less a seed margin"),
}


def _linear_macs() -> list[int]:
    return [LAYERS[i] * LAYERS[i + 1] for i in range(len(LAYERS) - 1)]


# FLOPs per image (matmuls only: biases, activations, dropout and the loss are < 1% and not counted).
FORWARD_FLOPS_PER_IMAGE = 2 * sum(_linear_macs())
# backward: weight gradients of every layer, input gradients of every layer but the first (its input
# needs no gradient).
TRAIN_FLOPS_PER_IMAGE = 2 * FORWARD_FLOPS_PER_IMAGE + 2 * sum(_linear_macs()[1:])


def build_model() -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512), nn.ReLU(), nn.Dropout(DROPOUT),
        nn.Linear(512, 256), nn.ReLU(), nn.Dropout(DROPOUT),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def adam_implementation(device: Any, capturable: bool = False) -> str:
    """The Adam implementation :func:`build_optimizer` uses on ``device``: ``fused`` where this torch has the
    fused kernel for it, else ``foreach`` (multi-tensor, every supported torch and device).

    Found by trying one fused step over a one-element parameter on the device: torch < 2.4 refuses a cpu
    parameter in the constructor (``RuntimeError``; a torch without the argument: ``TypeError``), later
    versions check the device at the first step."""
    import torch

    try:
        probe = torch.zeros(1, device=device, requires_grad=True)
        probe.grad = torch.zeros_like(probe)
        torch.optim.Adam([probe], lr=LR, fused=True, capturable=capturable).step()
    except (RuntimeError, TypeError):
        return "foreach"
    return "fused"


def optimizer_implementation(optimizer: Any) -> str:
    """Which Adam implementation ``optimizer`` runs: ``fused``, ``foreach`` or ``for-loop`` (read from its
    parameter groups, so a checkpoint's settings count once it is loaded)."""
    group = optimizer.param_groups[0]
    return "fused" if group.get("fused") else "foreach" if group.get("foreach") else "for-loop"


def build_optimizer(model: Any, capturable: bool = False) -> Any:
    """Adam with torch's fused kernel where it has one for the parameters' device (cpu: torch >= 2.4), else the
    multi-tensor (``foreach``) update; :func:`optimizer_implementation` says which. torch's default on cpu is a
    per-parameter loop (the optimizer was 18-24% of a resident step in ``scripts/profile_mnist.py``'s profile).
    Measured here, 1 thread, 8 epochs of 8,192 images taken in turns, CPU time: loop 9,458 images/s, foreach
    9,909, fused 11,051; in a later session (resident epochs in turns in one process, medians of 7, CPU time)
    foreach 8,165, fused 9,857. The same update rule, so every pipeline keeps the same recipe. ``capturable``
    (CUDA graphs): fused Adam keeps its step count on the device, as capture needs (not yet run on a GPU here)."""
    import torch

    params = list(model.parameters())
    if adam_implementation(params[0].device, capturable) == "fused":
        return torch.optim.Adam(params, lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY, capturable=capturable,
                                fused=True)
    return torch.optim.Adam(params, lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY, capturable=capturable,
                            foreach=True)


def pipeline_skip_reason(pipeline: str, device: Any) -> str | None:
    """Why ``pipeline`` does not run on ``device`` (None when it does)."""
    if pipeline not in PIPELINES:
        return f"unknown MNIST pipeline {pipeline!r}; use one of {', '.join(PIPELINES)}"
    if pipeline in CUDA_ONLY and not str(device).startswith("cuda"):
        return f"mnist {pipeline} (CUDA graph capture) needs a CUDA device; {device} is not one"
    return None


@dataclass(frozen=True)
class EpochResult:
    """One pass over the (possibly limited) training set. Seconds; ``phases`` only when instrumented."""

    images: int
    steps: int
    seconds: float
    loss: float  # mean cross-entropy over the epoch's images
    accuracy: float  # running accuracy, dropout active
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes. ``activations``: tensors autograd saves for backward in one training batch (exact, from
    ``saved_tensors_hooks``). ``peak``: ``torch.cuda.max_memory_allocated`` over one step on CUDA; on
    cpu there is no allocator peak and it is the sum of the other parts (``peak_method`` says which).
    """

    parameters: int
    gradients: int
    optimizer_state: int
    activations: int
    batch_input: int
    dataset_on_device: int
    peak: int
    peak_method: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _UInt8Images:
    """A torchvision-style dataset over uint8 image tensors: PIL image, then ``transform`` (as torchvision's MNIST)."""

    def __init__(self, images: Any, labels: Any, transform: Callable[[Any], Any]):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index].numpy())), int(self.labels[index])


class Trainer:
    """One model, optimizer and pipeline on one device.

    ``limit``: train images per epoch (0: all). ``timer``: a :class:`gpubench.timing.DeviceTimer` for
    the device (its ``synchronize`` marks phase boundaries in the instrumented epoch).
    """

    def __init__(
        self,
        data: MnistData,
        device: Any,
        pipeline: str = "resident",
        *,
        batch_size: int = BATCH_SIZE,
        limit: int = 0,
        seed: int = 0,
        num_workers: int = 0,
    ):
        import torch

        reason = pipeline_skip_reason(pipeline, device)
        if reason:
            raise ValueError(reason)
        self.data = data
        self.device = torch.device(device)
        self.is_cuda = self.device.type == "cuda"
        self.pipeline = pipeline
        self.batch_size = batch_size
        self.num_workers = num_workers
        n = int(data.train_images.shape[0])
        self.n_train = min(n, limit) if limit else n
        torch.manual_seed(seed)
        self.seed = seed
        self.model = build_model().to(self.device)
        self.optimizer = build_optimizer(self.model, capturable=pipeline == "cuda-graph")
        self.loss_fn = torch.nn.CrossEntropyLoss()
        mean, std = data.normalization
        self.mean, self.std = mean, std
        self._loader: Any = None
        self._x: Any = None
        self._y: Any = None
        self._graph: Any = None
        if pipeline == "dataloader":
            self._loader = self._make_loader()
        else:
            images = data.train_images[: self.n_train]
            self._x = ((images.to(self.device).float().div_(255.0) - mean) / std).reshape(self.n_train, -1)
            self._y = data.train_labels[: self.n_train].to(self.device)
            self._dev_gen = torch.Generator(device=self.device).manual_seed(seed)

    # --- pipelines -----------------------------------------------------------------------------------

    def _make_loader(self) -> Any:
        import torch
        from torch.utils.data import DataLoader, Subset
        from torchvision import transforms

        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((self.mean,), (self.std,))])
        base = self.data.torchvision_train
        if base is not None:
            base.transform = transform
            dataset: Any = Subset(base, range(self.n_train)) if self.n_train < len(base) else base
        else:
            dataset = _UInt8Images(self.data.train_images[: self.n_train], self.data.train_labels[: self.n_train],
                                   transform)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers,
                          pin_memory=self.is_cuda, generator=torch.Generator().manual_seed(self.seed))

    def _resident_order(self, drop_last: bool = False) -> tuple[Any, int]:
        """This epoch's order of the resident images (``randperm`` on the device) and how many of them it trains."""
        import torch

        perm = torch.randperm(self.n_train, device=self.device, generator=self._dev_gen)
        return perm, self.n_train - (self.n_train % self.batch_size if drop_last else 0)

    def _resident_batches(self, drop_last: bool = False) -> Iterator[tuple[Any, Any]]:
        perm, stop = self._resident_order(drop_last)
        for start in range(0, stop, self.batch_size):
            idx = perm[start: start + self.batch_size]
            yield self._x.index_select(0, idx), self._y.index_select(0, idx)

    def _tally(self, perm: Any, images: int, losses: list[Any], predictions: list[Any]) -> tuple[float, float]:
        """``(loss sum, correct)`` of an epoch from its per-step mean losses and predicted classes, in one pass on
        the device at the end instead of several small ops (and their Python dispatch) every step."""
        import torch

        sizes = torch.full((len(losses),), float(self.batch_size), device=self.device)
        sizes[-1] = images - self.batch_size * (len(losses) - 1)  # the last batch may be partial
        loss_sum = torch.dot(torch.stack(losses).float(), sizes)
        correct = (torch.cat(predictions) == self._y.index_select(0, perm[:images])).sum()
        return float(loss_sum), float(correct)

    def _autocast(self) -> Any:
        import contextlib

        import torch

        if self.compute_dtype == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def order_generator(self) -> Any:
        """The generator that orders each epoch's batches (the DataLoader's sampler, or ``randperm``'s)."""
        return self._loader.generator if self._loader is not None else self._dev_gen

    @property
    def compute_dtype(self) -> str:
        """``bf16`` under autocast, else ``f32``."""
        return COMPUTE_DTYPE.get(self.pipeline, "f32")

    # --- training ------------------------------------------------------------------------------------

    def epoch(self) -> EpochResult:
        """One epoch, timed with the host clock after a device sync at both ends (no per-step sync
        except the textbook pipeline's own ``.item()`` calls)."""
        self.model.train()
        self._sync()
        start = time.perf_counter()
        # The measured device is the current one while it trains: graph replays and autocast use it.
        with self._on_device():
            if self.pipeline == "dataloader":
                images, steps, loss_sum, correct = self._epoch_dataloader()
            elif self.pipeline == "cuda-graph":
                images, steps, loss_sum, correct = self._epoch_graph()
            else:
                images, steps, loss_sum, correct = self._epoch_resident()
        self._sync()
        seconds = time.perf_counter() - start
        return EpochResult(images, steps, seconds, loss_sum / max(images, 1), correct / max(images, 1))

    def _step(self, x: Any, y: Any) -> tuple[Any, Any]:
        with self._autocast():
            out = self.model(x)
            loss = self.loss_fn(out, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return out, loss

    def _epoch_dataloader(self) -> tuple[int, int, float, float]:
        images = steps = 0
        loss_sum = correct = 0.0
        for x, y in self._loader:
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            out, loss = self._step(x, y)
            loss_sum += loss.item() * len(y)  # the textbook running loss: a host sync per step
            correct += (out.argmax(1) == y).sum().item()
            images += len(y)
            steps += 1
        return images, steps, loss_sum, correct

    def _epoch_resident(self) -> tuple[int, int, float, float]:
        perm, stop = self._resident_order()
        b = self.batch_size
        losses: list[Any] = []
        predictions: list[Any] = []
        for start in range(0, stop, b):
            idx = perm[start: start + b]
            out, loss = self._step(self._x.index_select(0, idx), self._y.index_select(0, idx))
            losses.append(loss.detach())
            predictions.append(out.argmax(1))  # argmax records no autograd graph
        loss_sum, correct = self._tally(perm, stop, losses, predictions) if losses else (0.0, 0.0)
        return stop, len(losses), loss_sum, correct

    def warmup(self, steps: int = 5) -> None:
        """A few training steps through the pipeline (first-call costs: allocations, kernels, graph capture)."""
        self.model.train()
        if self.pipeline == "cuda-graph":
            with self._on_device():
                if self._graph is None:
                    self._capture()
                for _ in range(steps):
                    self._graph.replay()
        else:
            batches = iter(self._loader) if self.pipeline == "dataloader" else self._resident_batches()
            for _, (x, y) in zip(range(steps), batches, strict=False):  # stop after `steps` batches
                self._step(x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))
        self._sync()

    # --- CUDA graph ----------------------------------------------------------------------------------

    def _capture(self) -> None:
        """Capture forward, loss, backward and the Adam step (``capturable=True``) in one CUDA graph.

        Follows PyTorch's whole-network capture recipe: warm up on a side stream, zero the gradients
        with ``set_to_none=True`` so backward allocates them from the graph's pool, then capture.
        """
        import torch

        b = self.batch_size
        self._static_x = torch.empty(b, 784, device=self.device)
        self._static_y = torch.zeros(b, dtype=torch.int64, device=self.device)
        self._static_x.copy_(self._x[:b])
        self._static_y.copy_(self._y[:b])
        # One stream of the measured device for warm-up AND capture: torch.cuda.graph's default capture
        # stream is created once per process on whichever device was current first (torch/cuda/graphs.py),
        # so without stream= a second device's step would be captured on the first device's stream.
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.optimizer.zero_grad(set_to_none=True)
                loss = self.loss_fn(self.model(self._static_x), self._static_y)
                loss.backward()
                self.optimizer.step()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self._graph, stream=side):
            self._static_out = self.model(self._static_x)
            self._static_loss = self.loss_fn(self._static_out, self._static_y)
            self._static_loss.backward()
            self.optimizer.step()

    def _epoch_graph(self) -> tuple[int, int, float, float]:
        if self._graph is None:
            self._capture()
        perm, stop = self._resident_order(drop_last=True)
        b = self.batch_size
        losses: list[Any] = []
        predictions: list[Any] = []
        for start in range(0, stop, b):
            idx = perm[start: start + b]
            self._static_x.copy_(self._x.index_select(0, idx))
            self._static_y.copy_(self._y.index_select(0, idx))
            self._graph.replay()
            losses.append(self._static_loss.detach().clone())  # the next replay overwrites the static loss
            predictions.append(self._static_out.argmax(1))
        loss_sum, correct = self._tally(perm, stop, losses, predictions) if losses else (0.0, 0.0)
        return stop, len(losses), loss_sum, correct

    # --- instrumented epoch: where the time goes -------------------------------------------------------

    def _on_device(self) -> Any:
        import contextlib

        import torch

        return torch.cuda.device(self.device) if self.is_cuda else contextlib.nullcontext()

    def _sync(self) -> None:
        import torch

        if self.is_cuda:
            torch.cuda.synchronize(self.device)

    def epoch_instrumented(self) -> EpochResult:
        """One epoch with a device sync at every phase boundary: seconds in data, forward, backward,
        optimizer (the syncs slow it down; use :meth:`epoch` for throughput)."""
        import torch

        if self.pipeline == "cuda-graph":
            msg = "a CUDA graph replays the whole step at once: it has no phases to split; use 'resident'"
            raise ValueError(msg)
        self.model.train()
        phases = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}
        images = steps = 0
        loss_sum = correct = 0.0
        batches: Iterator[tuple[Any, Any]] = (
            iter(self._loader) if self.pipeline == "dataloader" else self._resident_batches()
        )
        self._sync()
        start = time.perf_counter()
        mark = start
        while True:
            try:
                x, y = next(batches)
            except StopIteration:
                break
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            mark = self._phase(phases, "data", mark)
            with self._autocast():
                out = self.model(x)
                loss = self.loss_fn(out, y)
            mark = self._phase(phases, "forward", mark)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            mark = self._phase(phases, "backward", mark)
            self.optimizer.step()
            mark = self._phase(phases, "optimizer", mark)
            with torch.no_grad():
                loss_sum += float(loss) * len(y)
                correct += float((out.argmax(1) == y).sum())
            images += len(y)
            steps += 1
            mark = time.perf_counter()  # the bookkeeping reads above belong to no phase
        seconds = sum(phases.values())
        return EpochResult(images, steps, seconds, loss_sum / max(images, 1), correct / max(images, 1), phases)

    def _phase(self, phases: dict[str, float], name: str, mark: float) -> float:
        self._sync()
        now = time.perf_counter()
        phases[name] += now - mark
        return now

    # --- evaluation and memory -----------------------------------------------------------------------

    def evaluate(self, split: str = "test", batch_size: int = 1000) -> tuple[float, float]:
        """``(accuracy, mean loss)`` in eval mode on ``test`` or ``train`` (the whole split), under the
        pipeline's autocast (a bf16 pipeline is judged as it computes)."""
        import torch

        images = self.data.test_images if split == "test" else self.data.train_images
        labels = self.data.test_labels if split == "test" else self.data.train_labels
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        with torch.no_grad():
            for start in range(0, int(images.shape[0]), batch_size):
                x = images[start: start + batch_size].to(self.device).float().div_(255.0)
                x = ((x - self.mean) / self.std).reshape(x.shape[0], -1)
                y = labels[start: start + batch_size].to(self.device)
                with self._autocast():  # evaluated as the pipeline computes
                    out = self.model(x)
                loss_sum += torch.nn.functional.cross_entropy(out.float(), y, reduction="sum")
                correct += (out.argmax(1) == y).sum()
        self.model.train()
        n = int(images.shape[0])
        return float(correct) / n, float(loss_sum) / n

    def memory(self) -> MemoryBreakdown:
        """Bytes of parameters, gradients, optimizer state, saved activations (one batch) and the peak."""
        import torch

        def nbytes(t: Any) -> int:
            return int(t.numel() * t.element_size())

        params = list(self.model.parameters())
        x = torch.randn(self.batch_size, 784, device=self.device)
        y = torch.zeros(self.batch_size, dtype=torch.int64, device=self.device)
        param_ptrs = {p.untyped_storage().data_ptr() for p in params}
        seen: set[int] = set()
        saved = 0

        def pack(t: Any) -> Any:
            nonlocal saved
            ptr = t.untyped_storage().data_ptr()
            if ptr not in param_ptrs and ptr not in seen and t.data_ptr() != x.data_ptr():
                seen.add(ptr)
                saved += t.untyped_storage().nbytes()
            return t

        if self.is_cuda:
            self._sync()
            torch.cuda.reset_peak_memory_stats(self.device)
        self.model.train()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), self._autocast():
            loss = self.loss_fn(self.model(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.pipeline != "cuda-graph":  # a graph-captured optimizer must only step inside its graph
            self.optimizer.step()
        grads = sum(nbytes(p.grad) for p in params if p.grad is not None)
        state = sum(nbytes(v) for s in self.optimizer.state.values() for v in s.values() if torch.is_tensor(v))
        param_bytes = sum(nbytes(p) for p in params)
        dataset = nbytes(self._x) + nbytes(self._y) if self._x is not None else 0
        batch = nbytes(x) + nbytes(y)
        if self.is_cuda:
            self._sync()
            peak, method = int(torch.cuda.max_memory_allocated(self.device)), "torch.cuda.max_memory_allocated"
        else:
            peak = param_bytes + grads + state + saved + batch + dataset
            method = "computed: parameters + gradients + optimizer state + activations + batch + dataset (cpu)"
        return MemoryBreakdown(param_bytes, grads, state, saved, batch, dataset, peak, method)


def gflops(images: int, seconds: float) -> float:
    """Achieved training GFLOP/s (matmul FLOPs, see ``TRAIN_FLOPS_PER_IMAGE``)."""
    return images * TRAIN_FLOPS_PER_IMAGE / seconds / 1e9 if seconds > 0 else math.nan


@dataclass(frozen=True)
class TrainingRun:
    """A full training run: per-epoch figures and the verdict against the dataset's targets."""

    epochs: list[dict[str, float]]
    source: dict[str, Any]
    targets: Targets | None
    verdict: str  # "PASS", "FAIL", or "SKIP (synthetic data: ...)"
    failures: tuple[str, ...] = ()
    optimizer: str = ""  # the Adam implementation that trained: fused, foreach or for-loop


def judge(kind: str, train_acc: float, val_acc: float, loss: float) -> tuple[str, tuple[str, ...], Targets | None]:
    """``(verdict, failures, targets)``: accuracy is judged only on real data with known targets."""
    targets = TARGETS.get(kind)
    if targets is None:
        return f"SKIP (no accuracy targets for {kind} data: throughput only)", (), None
    failures = []
    if not train_acc > targets.train_accuracy:
        failures.append(f"train accuracy {train_acc:.2%} is not above {targets.train_accuracy:.2%}")
    if not val_acc > targets.val_accuracy:
        failures.append(f"validation accuracy {val_acc:.2%} is not above {targets.val_accuracy:.2%}")
    if not loss < targets.loss:
        failures.append(f"final loss {loss:.4f} is not below {targets.loss}")
    return ("FAIL" if failures else "PASS"), tuple(failures), targets


def train_full(
    data: MnistData,
    device: Any,
    epochs: int = 10,
    *,
    pipeline: str = "resident",
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
    report: Callable[[dict[str, float]], None] | None = None,
    resume: Callable[[Trainer], list[dict[str, float]]] | None = None,
    after_epoch: Callable[[Trainer, list[dict[str, float]]], None] | None = None,
) -> TrainingRun:
    """Train for ``epochs`` epochs on the whole training set; validate after each epoch.

    ``resume`` restores a trainer's state and returns the rows of the epochs already trained (see
    :mod:`gpubench.workloads.checkpoint`); ``after_epoch`` sees the trainer and the rows after each epoch."""
    killpoints.reached("bench.mnist.data.load")  # the trainer puts the data on the device
    trainer = Trainer(data, device, pipeline, batch_size=batch_size, seed=seed)
    rows = resume(trainer) if resume is not None else []
    for epoch in range(len(rows) + 1, epochs + 1):
        killpoints.reached("bench.mnist.epoch.start")
        result = trainer.epoch()
        val_acc, val_loss = trainer.evaluate("test")
        row = {
            "epoch": epoch,
            "train_loss": result.loss,
            "train_accuracy": result.accuracy,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "seconds": result.seconds,
            "images_per_s": result.images_per_s,
        }
        rows.append(row)
        killpoints.reached("bench.mnist.epoch.end")
        if report is not None:
            report(row)
        if after_epoch is not None:
            after_epoch(trainer, rows)
    last = rows[-1]
    # Judged: the trained model's accuracy on the whole training set (eval mode, no dropout), the
    # validation accuracy, and the last epoch's mean training loss.
    last["train_accuracy_eval"], last["train_loss_eval"] = trainer.evaluate("train")
    verdict, failures, targets = judge(data.source.kind, last["train_accuracy_eval"], last["val_accuracy"],
                                       last["train_loss"])
    return TrainingRun(rows, data.source.as_dict(), targets, verdict, failures,
                       optimizer_implementation(trainer.optimizer))
