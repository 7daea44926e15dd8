"""MNIST sources: IDX files the tests write, loaded through the real loaders, and the fallback order."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from gpubench.workloads import data
from gpubench.workloads.data import DataError


def write_idx(path: Path, tensor: torch.Tensor, compress: bool = False) -> Path:
    magic = data.IMAGES_MAGIC if tensor.dim() == 3 else data.LABELS_MAGIC
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in tensor.shape)
    payload = header + tensor.to(torch.uint8).numpy().tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_set(folder: Path, n_train: int = 12, n_test: int = 5, compress: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    tensors = {
        "train_images": torch.randint(0, 256, (n_train, 28, 28), generator=gen, dtype=torch.uint8),
        "train_labels": torch.randint(0, 10, (n_train,), generator=gen, dtype=torch.uint8),
        "test_images": torch.randint(0, 256, (n_test, 28, 28), generator=gen, dtype=torch.uint8),
        "test_labels": torch.randint(0, 10, (n_test,), generator=gen, dtype=torch.uint8),
    }
    for key, name in data.IDX_NAMES.items():
        write_idx(folder / name, tensors[key], compress)
    return tensors


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_load_through_the_reader(tmp_path: Path, compress: bool) -> None:
    tensors = write_set(tmp_path / "digits", compress=compress)
    loaded = data.load_mnist(tmp_path / "digits", download=False, idx_dirs=(), source="idx")
    assert loaded.source.kind == "mnist" and loaded.source.loader == "idx"
    assert (loaded.source.train, loaded.source.test) == (12, 5)
    assert torch.equal(loaded.train_images, tensors["train_images"])
    assert torch.equal(loaded.test_labels, tensors["test_labels"].long())
    assert loaded.train_labels.dtype == torch.int64


def test_torchvision_mnist_comes_first(tmp_path: Path) -> None:
    tensors = write_set(tmp_path / "MNIST" / "raw")
    write_set(tmp_path / "fashion-mnist", seed=1)
    loaded = data.load_mnist(tmp_path, download=False, idx_dirs=(str(tmp_path / "fashion-mnist"),))
    assert loaded.source.loader == "torchvision" and loaded.source.kind == "mnist"
    assert loaded.torchvision_train is not None
    assert torch.equal(loaded.train_images, tensors["train_images"])


def test_then_an_idx_set_on_disk_then_synthetic(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    fashion = tmp_path / "datasets" / "fashion-mnist"
    write_set(fashion, compress=True)
    loaded = data.load_mnist(empty, download=False, idx_dirs=(str(fashion),))
    assert (loaded.source.kind, loaded.source.loader, loaded.source.path) == ("fashion-mnist", "idx", str(fashion))
    assert any("torchvision MNIST" in why for why in loaded.source.tried)
    assert loaded.normalization == data.NORMALIZATION["fashion-mnist"]

    synthetic = data.load_mnist(empty, download=False, idx_dirs=(str(tmp_path / "nowhere"),))
    assert synthetic.source.kind == "synthetic" and not synthetic.source.real
    assert synthetic.train_images.shape == (60_000, 28, 28) and synthetic.test_labels.shape == (10_000,)
    assert len(synthetic.source.tried) == 2
    assert "throughput only" in synthetic.source.describe()

    with pytest.raises(DataError, match="Fix: put MNIST under the data directory"):
        data.load_mnist(empty, download=False, synthetic=False, idx_dirs=())


def test_malformed_idx_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad-idx"
    bad.write_bytes((1234).to_bytes(4, "big") + b"\0" * 8)
    with pytest.raises(DataError, match="magic number 1234"):
        data.read_idx(bad)
    short = write_idx(tmp_path / "short", torch.zeros(3, 28, 28, dtype=torch.uint8))
    short.write_bytes(short.read_bytes()[:-10])
    with pytest.raises(DataError, match="header says"):
        data.read_idx(short)
    with pytest.raises(DataError, match="unknown MNIST source"):
        data.load_mnist(tmp_path, source="kaggle")
