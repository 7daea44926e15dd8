"""XOR: the batched training equals one-seed-at-a-time nn.Module training, and converges as documented."""

from __future__ import annotations

import pytest
import torch

from gpubench.workloads import xor


def test_batched_training_matches_sequential_modules() -> None:
    seeds = [0, 1, 2, 3, 5]
    batched = xor.train_batched(seeds, epochs=120)
    for i, seed in enumerate(seeds):
        first, acc, loss, _ = xor.train_reference(seed, epochs=120)
        assert batched.epochs_to_target[i] == first
        assert batched.final_accuracy[i] == acc
        assert batched.final_loss[i] == pytest.approx(loss, rel=1e-3, abs=1e-6)


def test_batched_parameters_match_after_training() -> None:
    params = xor.init_params([7, 8])
    xor.train_batched([7, 8], epochs=40, params=params)
    for i, seed in enumerate([7, 8]):
        *_, model = xor.train_reference(seed, epochs=40)
        for stacked, own in zip(params, model.parameters(), strict=True):
            torch.testing.assert_close(stacked[i].detach(), own.detach(), rtol=1e-4, atol=1e-5)


def test_convergence_on_fixed_seeds() -> None:
    """Seeds 0-29 over 500 epochs: most converge, each within the documented 6-60 epochs."""
    result = xor.train_batched(range(30), epochs=500)
    summary = result.summary(seconds=1.0)
    assert 0.6 <= summary["converged_share"] <= 1.0
    for reached, acc in zip(result.epochs_to_target, result.final_accuracy, strict=True):
        if acc > 0.95:
            assert 1 <= reached <= 60
    assert summary["median_seconds_to_target"] == pytest.approx(summary["median_epochs_to_target"] / 500)
    with pytest.raises(ValueError, match="at least one seed"):
        xor.train_batched([], epochs=1)


def test_stacked_initialisation_equals_each_seeds_module_bit_for_bit() -> None:
    seeds = [0, 3, 11, 12345]
    params = xor.init_params(seeds)
    for i, seed in enumerate(seeds):
        torch.manual_seed(seed)
        model = xor.reference_model()
        for stacked, own in zip(params, model.parameters(), strict=True):
            assert torch.equal(stacked[i].detach(), own.detach())
    assert [tuple(p.shape) for p in params] == [(4, 8, 2), (4, 8), (4, 4, 8), (4, 4), (4, 1, 4), (4, 1)]
    assert all(p.requires_grad for p in params)


def test_batched_forward_equals_each_seeds_module() -> None:
    seeds = [0, 4, 9]
    params = xor.init_params(seeds)
    x, _ = xor.xor_data()
    out = xor.forward(params, x)
    assert out.shape == (3, 4, 1)
    for i, seed in enumerate(seeds):
        torch.manual_seed(seed)
        torch.testing.assert_close(out[i], xor.reference_model()(x), rtol=1e-6, atol=1e-7)
    out.sum().backward()  # differentiable in the stacked parameters
    assert all(p.grad is not None and p.grad.shape == p.shape for p in params)


@pytest.mark.parametrize("fold", [1, 7, 1000])
def test_epochs_to_target_do_not_depend_on_how_predictions_are_folded(monkeypatch: pytest.MonkeyPatch,
                                                                      fold: int) -> None:
    expected = xor.train_batched(range(12), epochs=70)
    assert any(e > 7 for e in expected.epochs_to_target)  # some seeds reach it after the first fold
    monkeypatch.setattr(xor, "FOLD_EPOCHS", fold)
    assert xor.train_batched(range(12), epochs=70) == expected


@pytest.mark.parametrize("foreach", [True, False])
def test_the_sgd_step_is_torch_optim_sgd_bit_for_bit(foreach: bool) -> None:
    torch.manual_seed(0)
    mine = [torch.randn(3, 4), torch.randn(5)]
    theirs = [t.clone().requires_grad_() for t in mine]
    optimizer = torch.optim.SGD(theirs, lr=xor.LR, momentum=xor.MOMENTUM, foreach=foreach)
    buffers = None
    for _ in range(4):
        grads = [torch.randn_like(t) for t in mine]
        buffers = xor._sgd_step(mine, grads, buffers)
        for t, g in zip(theirs, grads, strict=True):
            t.grad = g.clone()
        optimizer.step()
        assert all(torch.equal(a, b.detach()) for a, b in zip(mine, theirs, strict=True))
