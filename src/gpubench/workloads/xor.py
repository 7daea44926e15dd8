"""XOR: the 2-8-4-1 network (ReLU, ReLU, sigmoid; SGD lr 0.5 momentum 0.9; MSE), many seeds at once.

Each seed's network is initialised exactly as ``nn.Sequential(Linear(2, 8), ReLU, Linear(8, 4), ReLU,
Linear(4, 1), Sigmoid)`` after ``torch.manual_seed(seed)``; the parameters of all seeds are stacked
(``[S, out, in]``) and trained as one batched computation (``torch.baddbmm``). The loss is the sum of
the per-seed MSE losses, so each seed's gradient is exactly its own, and SGD with momentum is
elementwise, so one optimizer over the stacked parameters equals one optimizer per seed.

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


def forward(params: list[Any], x: Any) -> Any:
    """Outputs ``[S, 4, 1]`` of every seed's network on the points ``x`` (``[4, 2]``)."""
    import torch

    w1, b1, w2, b2, w3, b3 = params
    s = w1.shape[0]
    h = x.unsqueeze(0).expand(s, -1, -1)
    h = torch.relu(torch.baddbmm(b1.unsqueeze(1), h, w1.transpose(1, 2)))
    h = torch.relu(torch.baddbmm(b2.unsqueeze(1), h, w2.transpose(1, 2)))
    return torch.sigmoid(torch.baddbmm(b3.unsqueeze(1), h, w3.transpose(1, 2)))


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


def train_batched(
    seeds: list[int] | range,
    epochs: int = EPOCHS,
    device: Any = "cpu",
    target: float = TARGET_ACCURACY,
    params: list[Any] | None = None,
) -> XorResult:
    """Train one network per seed, all at once; see the module docstring for the definitions."""
    import torch

    seeds = list(seeds)
    if not seeds:
        msg = "give at least one seed"
        raise ValueError(msg)
    dev = torch.device(device)
    x, y = xor_data(dev)
    params = params if params is not None else init_params(seeds, dev)
    opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM)
    first = torch.zeros(len(seeds), dtype=torch.int64, device=dev)
    targets = y.unsqueeze(0)
    for epoch in range(1, epochs + 1):
        out = forward(params, x)
        loss_per_seed = ((out - targets) ** 2).mean(dim=(1, 2))
        acc = ((out > 0.5).to(y.dtype) == targets).to(torch.float32).mean(dim=(1, 2))
        first = torch.where((first == 0) & (acc > target), torch.full_like(first, epoch), first)
        opt.zero_grad(set_to_none=True)
        loss_per_seed.sum().backward()
        opt.step()
    with torch.no_grad():
        out = forward(params, x)
        final_loss = ((out - targets) ** 2).mean(dim=(1, 2))
        final_acc = ((out > 0.5).to(y.dtype) == targets).to(torch.float32).mean(dim=(1, 2))
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
