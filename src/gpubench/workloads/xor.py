"""XOR: the 2-8-4-1 network (ReLU, ReLU, sigmoid; SGD lr 0.5 momentum 0.9; MSE), many seeds at once.

Each seed's network is initialised exactly as ``nn.Sequential(Linear(2, 8), ReLU, Linear(8, 4), ReLU,
Linear(4, 1), Sigmoid)`` after ``torch.manual_seed(seed)``; the parameters of all seeds are stacked
(``[S, out, in]``) and trained as one batched computation. The loss is the sum of the per-seed MSE losses,
so each seed's gradient is exactly its own, and SGD with momentum is elementwise, so one optimizer over the
stacked parameters equals one optimizer per seed.

Training keeps the seed dimension last (``W: [out, in, 1, S]`` or ``[in, out, 1, S]`` by layer, see
:func:`_seed_last`; activations ``[features, 1, points, S]`` or ``[1, features, points, S]``) and computes
each layer as a broadcast product summed over its inputs: every op then runs over long contiguous
rows of seeds. The per-seed products as ``torch.baddbmm`` (this module until issue 12) ran through torch's
plain loop for matrices this small (on cpu). Gradients come from ``torch.autograd.grad`` and the SGD step is
torch's own multi-tensor one written out (:func:`_sgd_step`). Timed in turns in one process, one thread on 2
shared cores, 1,000 seeds x 500 epochs took 2.9x less time than with ``baddbmm`` and ``torch.optim.SGD``
(medians of 11 rounds: 3.25 s and 1.05 s at load 2.8-3.1) and ended with bit for bit the same parameters.

An epoch is one full-batch step over the four points. Accuracy is read from that epoch's forward pass
(before its update); a seed *reaches* the target at the first epoch whose accuracy is above it, and
*converges* when its accuracy after the last epoch is above it. Nothing is read back to the host
until training ends.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

LAYERS = (2, 8, 4, 1)
LR = 0.5
MOMENTUM = 0.9
EPOCHS = 500
TARGET_ACCURACY = 0.95


def reference_model() -> Any:
    """One seed's network as an ``nn.Module`` (the layout the batched version reproduces)."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1), nn.Sigmoid()
    )


def xor_data(device: Any = "cpu") -> tuple[Any, Any]:
    """The four XOR points ``[4, 2]`` and targets ``[4, 1]`` (float32)."""
    import torch

    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], device=device)
    y = torch.tensor([[0.0], [1.0], [1.0], [0.0]], device=device)
    return x, y


def init_params(seeds: list[int] | range, device: Any = "cpu") -> list[Any]:
    """Stacked parameters ``[W1, b1, W2, b2, W3, b3]`` (``W: [S, out, in]``, ``b: [S, out]``), made on the CPU.

    Each seed's slice holds exactly what :func:`reference_model` would hold after ``torch.manual_seed(seed)``:
    the same ``nn.init`` calls as ``nn.Linear.reset_parameters``, in the same order, drawn straight into the
    stacked tensors from a generator seeded like the default one (``torch.manual_seed`` costs ~170 us, as it
    seeds every backend; building 1,000 ``nn.Module``s that way took 0.6 s of the 2 s budget for 1,000 seeds).
    The global RNG is left untouched.
    """
    import math

    import torch
    from torch.nn import init

    seeds = list(seeds)
    shapes = [(LAYERS[i + 1], LAYERS[i]) for i in range(len(LAYERS) - 1)]
    stacked: list[Any] = []
    for out_features, in_features in shapes:
        stacked.append(torch.empty(len(seeds), out_features, in_features))
        stacked.append(torch.empty(len(seeds), out_features))
    with torch.no_grad():
        for row, seed in enumerate(seeds):
            generator = torch.Generator().manual_seed(seed)
            for layer, (_, in_features) in enumerate(shapes):
                init.kaiming_uniform_(stacked[2 * layer][row], a=math.sqrt(5), generator=generator)
                bound = 1 / math.sqrt(in_features)
                init.uniform_(stacked[2 * layer + 1][row], -bound, bound, generator=generator)
    return [t.to(device).requires_grad_() for t in stacked]


def _seed_last(params: list[Any]) -> list[Any]:
    """Views of the stacked parameters in the seed-last layout, layer by layer alternating which of the first two
    dimensions holds the inputs, so one layer's output is the next one's input without a transpose: even layers
    ``W: [out, in, 1, S]``, ``b: [out, 1, 1, S]`` (summed over dim 1), odd layers ``W: [in, out, 1, S]``,
    ``b: [1, out, 1, S]`` (summed over dim 0)."""
    views = []
    for layer in range(len(params) // 2):
        w, b = params[2 * layer], params[2 * layer + 1]
        if layer % 2 == 0:
            views += [w.permute(1, 2, 0).unsqueeze(2), b.t().unsqueeze(1).unsqueeze(1)]
        else:
            views += [w.permute(2, 1, 0).unsqueeze(2), b.t().unsqueeze(0).unsqueeze(2)]
    return views


def _forward_seed_last(layers: list[Any], points: Any) -> Any:
    """Outputs ``[1, 1, P, S]`` of every seed's network (``layers`` as :func:`_seed_last` lays them out) on
    ``points`` ``[1, in, P, 1]``."""
    import torch

    h = points
    last = len(layers) // 2 - 1
    for layer in range(last + 1):
        w, b = layers[2 * layer], layers[2 * layer + 1]
        z = (w * h).sum(1 - layer % 2, keepdim=True) + b  # sum over the inputs: dim 1 on even layers, 0 on odd
        h = torch.sigmoid(z) if layer == last else torch.relu(z)
    return h


def _points(x: Any) -> Any:
    """The points ``[P, in]`` as the first layer's input ``[1, in, P, 1]``."""
    return x.t().unsqueeze(0).unsqueeze(3)


def forward(params: list[Any], x: Any) -> Any:
    """Outputs ``[S, P, 1]`` of every seed's network on the points ``x`` (``[P, 2]``), differentiable in ``params``."""
    out = _forward_seed_last(_seed_last(params), _points(x))  # [1, 1, P, S]
    return out[0, 0].t().unsqueeze(2)


@dataclass(frozen=True)
class XorResult:
    """Outcome of training ``seeds`` networks for ``epochs`` epochs.

    ``epochs_to_target``: per seed, the first epoch (1-based) with accuracy above the target, or 0
    when never reached. ``final_accuracy``: per seed, after the last epoch. ``final_loss``: per seed MSE.
    """

    seeds: tuple[int, ...]
    epochs: int
    target: float
    epochs_to_target: tuple[int, ...]
    final_accuracy: tuple[float, ...]
    final_loss: tuple[float, ...]

    @property
    def converged(self) -> int:
        return sum(1 for acc in self.final_accuracy if acc > self.target)

    @property
    def converged_share(self) -> float:
        return self.converged / len(self.seeds)

    @property
    def median_epochs_to_target(self) -> float | None:
        reached = [e for e in self.epochs_to_target if e > 0]
        return statistics.median(reached) if reached else None

    def summary(self, seconds: float | None = None) -> dict[str, Any]:
        """The figures a benchmark records (``seconds``: wall time of the whole batched training)."""
        reached = [e for e in self.epochs_to_target if e > 0]
        out: dict[str, Any] = {
            "seeds": len(self.seeds),
            "first_seed": self.seeds[0],
            "epochs": self.epochs,
            "target_accuracy": self.target,
            "converged": self.converged,
            "converged_share": self.converged_share,
            "median_epochs_to_target": self.median_epochs_to_target,
            "min_epochs_to_target": min(reached) if reached else None,
            "max_epochs_to_target": max(reached) if reached else None,
        }
        if seconds is not None:
            per_epoch = seconds / self.epochs
            med = self.median_epochs_to_target
            out["seconds_per_epoch"] = per_epoch
            # All seeds train together: time to target is the epochs to target at the batched epoch time.
            out["median_seconds_to_target"] = med * per_epoch if med is not None else None
        return out


def _sgd_step(params: list[Any], grads: list[Any], buffers: list[Any] | None) -> list[Any]:
    """One step of ``torch.optim.SGD(params, lr=LR, momentum=MOMENTUM, foreach=True)`` (no dampening, weight decay
    or Nesterov), op for op: the first step takes a copy of the gradient as the momentum buffer, later ones
    ``buffer = MOMENTUM * buffer + grad``; then ``param -= LR * buffer``. Returns the buffers. The same three
    multi-tensor ops without ``torch.optim``'s per-step bookkeeping, ``zero_grad`` and gradient accumulation: at
    1,000 seeds on one cpu thread that bookkeeping was 16% of an epoch's CPU time (medians of 11 rounds in turns)."""
    import torch

    with torch.no_grad():
        if buffers is None:
            buffers = [torch.clone(g).detach() for g in grads]
        else:
            torch._foreach_mul_(buffers, MOMENTUM)
            torch._foreach_add_(buffers, grads, alpha=1)
        torch._foreach_add_(params, buffers, alpha=-LR)
    return buffers


#: Epochs of predictions kept before they are folded into the first-epoch-to-target counts (bounds memory at
#: ``FOLD_EPOCHS x points`` booleans per seed).
FOLD_EPOCHS = 32


def train_batched(
    seeds: list[int] | range,
    epochs: int = EPOCHS,
    device: Any = "cpu",
    target: float = TARGET_ACCURACY,
    params: list[Any] | None = None,
) -> XorResult:
    """Train one network per seed, all at once; see the module docstring for the definitions. ``params`` (as
    :func:`init_params` makes them) are updated in place when given."""
    import torch
    from torch.nn import functional

    seeds = list(seeds)
    if not seeds:
        msg = "give at least one seed"
        raise ValueError(msg)
    dev = torch.device(device)
    x, y = xor_data(dev)
    params = params if params is not None else init_params(seeds, dev)
    # The trained tensors: contiguous seed-last copies (leaves of their own); copied back into params at the end.
    layers = [v.detach().clone(memory_format=torch.contiguous_format).requires_grad_() for v in _seed_last(params)]
    points = _points(x)
    n_points = x.shape[0]
    targets = y.t().unsqueeze(0).unsqueeze(3).expand(1, 1, n_points, len(seeds))  # [1, 1, P, S]
    positive = targets > 0.5
    buffers: list[Any] | None = None  # SGD's momentum buffers
    first = torch.zeros(len(seeds), dtype=torch.int64, device=dev)
    predictions: list[Any] = []
    folded = 0

    def fold() -> None:
        """The first epoch above the target among the kept epochs' predictions, for seeds without one yet."""
        nonlocal first, folded
        accuracy = (torch.stack(predictions) == positive).to(torch.float32).mean(dim=(1, 2, 3))  # [epochs, S]
        reached = accuracy > target
        at = reached.to(torch.uint8).argmax(0)  # the first maximum: the first epoch that reached it
        first = torch.where((first == 0) & reached.any(0), at + (folded + 1), first)
        folded += len(predictions)
        predictions.clear()

    for _ in range(epochs):
        out = _forward_seed_last(layers, points)
        predictions.append(out > 0.5)
        # The sum over seeds of each seed's MSE (the mean over its points).
        loss = functional.mse_loss(out, targets, reduction="sum") / n_points
        buffers = _sgd_step(layers, list(torch.autograd.grad(loss, layers)), buffers)
        if len(predictions) == FOLD_EPOCHS:
            fold()
    if predictions:
        fold()
    with torch.no_grad():
        out = _forward_seed_last(layers, points)
        final_loss = ((out - targets) ** 2).mean(dim=(0, 1, 2))
        final_acc = ((out > 0.5) == positive).to(torch.float32).mean(dim=(0, 1, 2))
        for view, trained in zip(_seed_last(params), layers, strict=True):
            view.copy_(trained)  # the views share params' storage
    return XorResult(
        seeds=tuple(seeds),
        epochs=epochs,
        target=target,
        epochs_to_target=tuple(int(v) for v in first.cpu().tolist()),
        final_accuracy=tuple(float(v) for v in final_acc.cpu().tolist()),
        final_loss=tuple(float(v) for v in final_loss.cpu().tolist()),
    )


def train_reference(seed: int, epochs: int = EPOCHS, target: float = TARGET_ACCURACY) -> tuple[int, float, float, Any]:
    """One seed trained the textbook way (``nn.Module``, ``nn.MSELoss``, ``optim.SGD``), on the CPU.

    Returns ``(epochs_to_target, final_accuracy, final_loss, model)``: the yardstick for the batched version.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = reference_model()
    x, y = xor_data()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.MSELoss()
    first = 0
    for epoch in range(1, epochs + 1):
        out = model(x)
        loss = loss_fn(out, y)
        acc = float(((out > 0.5).float() == y).float().mean())
        if first == 0 and acc > target:
            first = epoch
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = model(x)
        return first, float(((out > 0.5).float() == y).float().mean()), float(loss_fn(out, y)), model
