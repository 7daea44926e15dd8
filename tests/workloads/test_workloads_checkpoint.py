"""MNIST checkpoints: a resumed run in a fresh process continues bit for bit; a damaged file is refused whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from gpubench.workloads import checkpoint, data, mnist

COMMON = ("--limit", "512", "--set", "dl.device=cpu", "--set", "data.source=synthetic",
          "--set", "data.download=false", "--set", "dl.batch_size=128")


def _gpubench(tmp_path: Path, results: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """``gpubench bench mnist`` in a fresh process (one torch thread: the same sums in every process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBENCH_")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "gpubench", "bench", "mnist", *COMMON,
           "--set", f"results.dir={tmp_path / results}", *argv]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)


def _epochs(tmp_path: Path, results: str) -> list[dict[str, Any]]:
    (saved,) = (tmp_path / results / "training").glob("*-mnist.json")
    return list(json.loads(saved.read_text())["epochs"])


def test_a_resumed_run_in_a_fresh_process_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.ckpt"
    # a 3-epoch run interrupted after its second epoch: its last checkpoint is after epoch 2
    first = _gpubench(tmp_path, "first", "--epochs", "2", "--checkpoint-every", "1", "--checkpoint", str(ckpt))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "checkpoint after epoch 2" in first.stdout and "GB/s" in first.stdout
    resumed = _gpubench(tmp_path, "resumed", "--epochs", "3", "--resume", str(ckpt), "--checkpoint-every", "1")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resumed from {ckpt} after epoch 2" in resumed.stdout
    whole = _gpubench(tmp_path, "whole", "--epochs", "3")
    assert whole.returncode == 0, whole.stdout + whole.stderr

    keys = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")
    expected = [{k: row[k] for k in keys} for row in _epochs(tmp_path, "whole")]
    got = [{k: row[k] for k in keys} for row in _epochs(tmp_path, "resumed")]
    assert got == expected  # exact float equality: bit for bit
    assert [row["train_loss"] for row in _epochs(tmp_path, "first")] == [r["train_loss"] for r in expected[:2]]
    assert checkpoint.read(ckpt)["epoch"] == 3  # the resumed run went on saving to the same file


@pytest.fixture(scope="module")
def small() -> data.MnistData:
    return data.synthetic_mnist(n_train=256, n_test=64, seed=1)


@pytest.fixture
def saved(tmp_path: Path, small: data.MnistData) -> Path:
    trainer = mnist.Trainer(small, "cpu", "resident", limit=256)
    trainer.epoch()
    path = tmp_path / "good.ckpt"
    transfer = checkpoint.save(path, trainer, [{"train_loss": 1.0}])
    assert transfer.bytes > 0 and transfer.gb_per_s > 0
    return path


def _params(trainer: mnist.Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.model.parameters()]


def _damage(path: Path, how: str) -> Path:
    blob = path.read_bytes()
    magic, header, payload = blob[:len(checkpoint.MAGIC)], *blob[len(checkpoint.MAGIC):].split(b"\n", 1)
    if how == "truncated":
        blob = blob[:-1000]
    elif how == "wrong version":
        fields = json.loads(header)
        fields["version"] = checkpoint.VERSION + 1
        blob = magic + json.dumps(fields).encode() + b"\n" + payload
    elif how == "bad checksum":
        middle = len(blob) - len(payload) // 2
        blob = blob[:middle] + bytes([blob[middle] ^ 0xFF]) + blob[middle + 1:]
    elif how == "not a checkpoint":
        blob = payload
    elif how == "header cut off":
        blob = blob[:len(checkpoint.MAGIC) + 10]
    damaged = path.with_name(f"{how.replace(' ', '-')}.ckpt")
    damaged.write_bytes(blob)
    return damaged


@pytest.mark.parametrize(("how", "why"), [
    ("truncated", "truncated or padded"),
    ("wrong version", "version 2; this gpubench reads"),
    ("bad checksum", "bad checksum"),
    ("not a checkpoint", "not a gpubench checkpoint"),
    ("header cut off", "header is damaged or cut off"),
])
def test_a_damaged_checkpoint_is_refused_by_name_and_nothing_is_loaded(
        saved: Path, small: data.MnistData, how: str, why: str) -> None:
    damaged = _damage(saved, how)
    trainer = mnist.Trainer(small, "cpu", "resident", limit=256, seed=5)
    before, rng = _params(trainer), torch.get_rng_state()
    with pytest.raises(checkpoint.CheckpointError, match=why) as caught:
        checkpoint.restore(damaged, trainer)
    assert str(damaged) in str(caught.value) and "nothing was loaded" in str(caught.value)
    assert all(torch.equal(a, b) for a, b in zip(before, _params(trainer), strict=True))
    assert torch.equal(rng, torch.get_rng_state())


def test_a_checkpoint_of_another_run_is_refused_before_anything_is_applied(
        saved: Path, small: data.MnistData) -> None:
    trainer = mnist.Trainer(small, "cpu", "dataloader", limit=256, batch_size=64)
    before = _params(trainer)
    with pytest.raises(checkpoint.CheckpointError, match=r"different run: pipeline 'resident'.*batch_size 128"):
        checkpoint.restore(saved, trainer)
    assert all(torch.equal(a, b) for a, b in zip(before, _params(trainer), strict=True))


def test_a_good_checkpoint_restores_every_part(saved: Path, small: data.MnistData) -> None:
    state = checkpoint.read(saved)
    trainer = mnist.Trainer(small, "cpu", "resident", limit=256)
    torch.manual_seed(123)  # moved on: restore must put it back
    assert checkpoint.restore(saved, trainer) == [{"train_loss": 1.0}]
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, state["model"][key])
    assert torch.equal(trainer.order_generator.get_state(), state["rng"]["order"])
    assert torch.equal(torch.get_rng_state(), state["rng"]["torch_cpu"])
    assert trainer.optimizer.state_dict()["state"][0]["step"] == state["optimizer"]["state"][0]["step"]


def test_a_failed_save_leaves_the_previous_checkpoint_whole(
        saved: Path, small: data.MnistData, monkeypatch: pytest.MonkeyPatch) -> None:
    before = saved.read_bytes()
    trainer = mnist.Trainer(small, "cpu", "resident", limit=256)

    def fail(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(saved, trainer, [])
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == ["good.ckpt"]  # no temporary file left


def test_cuda_graph_is_not_checkpointed() -> None:
    assert "cannot be checkpointed" in (checkpoint.unsupported_reason("cuda-graph") or "")
    assert checkpoint.unsupported_reason("resident") is None
    with pytest.raises(ValueError, match="at least 1"):
        checkpoint.every("x.ckpt", 0)


def test_the_cli_refuses_a_damaged_checkpoint_with_exit_2(tmp_path: Path, saved: Path) -> None:
    damaged = _damage(saved, "bad checksum")
    r = _gpubench(tmp_path, "r", "--epochs", "2", "--resume", str(damaged))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"checkpoint {damaged} refused: bad checksum" in r.stderr
    assert not (tmp_path / "r" / "training").exists()  # no training record for a run that did not run
