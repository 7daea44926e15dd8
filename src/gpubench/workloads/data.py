"""MNIST sources, in order: torchvision's MNIST, an MNIST-format (IDX) set on disk, synthetic data.

1. ``torchvision.datasets.MNIST`` under the data directory (``<dir>/MNIST/raw``); when it is absent and
   downloads are allowed, torchvision tries to download it (a machine without a network fails fast
   and the next source is tried).
2. IDX files already on disk (``train-images-idx3-ubyte[.gz]`` and the other three): in the data
   directory (also ``<dir>/MNIST/raw`` and ``<dir>/FashionMNIST/raw``) and in the folders of
   ``IDX_DIRS``, where Debian's ``dataset-fashion-mnist`` package installs Fashion-MNIST
   (``/usr/share/datasets/fashion-mnist``, gzipped). A folder whose path names "fashion" holds
   Fashion-MNIST; otherwise it is taken to be MNIST.
3. Synthetic MNIST-shaped data (random images and labels): for throughput only, never for accuracy.

Whatever is used is described by a :class:`DataSource` that is printed and stored with every result,
including why the earlier sources were not used.
"""

from __future__ import annotations

import contextlib
import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IDX_DIRS: tuple[str, ...] = ("/usr/share/datasets/fashion-mnist",)
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
SOURCES = ("auto", "torchvision", "idx", "synthetic")

# Per-channel mean and standard deviation of the training images (on the 0..1 scale).
NORMALIZATION = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530), "synthetic": (0.5, 0.2887)}


class DataError(RuntimeError):
    """No usable MNIST source, or a malformed IDX file (the message says which and what to do)."""


@dataclass(frozen=True)
class DataSource:
    """Where the images came from; ``kind`` is ``mnist``, ``fashion-mnist`` or ``synthetic``."""

    kind: str
    loader: str  # "torchvision", "idx", "synthetic"
    path: str | None
    train: int
    test: int
    tried: tuple[str, ...] = ()  # why earlier sources were not used

    @property
    def real(self) -> bool:
        """Real images with real labels: accuracy means something."""
        return self.kind != "synthetic"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "loader": self.loader, "path": self.path, "train": self.train,
                "test": self.test, "tried": list(self.tried)}

    def describe(self) -> str:
        where = f" from {self.path}" if self.path else ""
        text = f"{self.kind} ({self.loader}{where}; {self.train} train / {self.test} test images)"
        if self.kind == "synthetic":
            text += " - synthetic data: throughput only, accuracy is not checked"
        return text


@dataclass(frozen=True)
class MnistData:
    """Images ``uint8 [N, 28, 28]`` and labels ``int64 [N]`` for both splits, with their source."""

    train_images: Any
    train_labels: Any
    test_images: Any
    test_labels: Any
    source: DataSource
    torchvision_train: Any = field(default=None, repr=False)  # the torchvision dataset, when it was used

    @property
    def normalization(self) -> tuple[float, float]:
        return NORMALIZATION[self.source.kind]


def read_idx(path: str | os.PathLike[str]) -> Any:
    """Read one IDX file (optionally gzipped) into a ``uint8`` tensor; checks magic number and size."""
    import torch

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        msg = f"{path}: cannot read the IDX file ({exc}). Fix: re-download or reinstall the dataset"
        raise DataError(msg) from None
    if len(raw) < 8:
        msg = f"{path}: too short for an IDX file ({len(raw)} bytes)"
        raise DataError(msg)
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        msg = (f"{path}: magic number {magic} is not an MNIST IDX file (expected {IMAGES_MAGIC} for images, "
               f"{LABELS_MAGIC} for labels)")
        raise DataError(msg)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = 1
    for d in dims:
        expected *= d
    if len(raw) - header != expected:
        msg = f"{path}: header says {dims} ({expected} bytes) but the file holds {len(raw) - header} bytes of data"
        raise DataError(msg)
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).reshape(dims)


def find_idx_set(folder: str | os.PathLike[str]) -> dict[str, Path] | None:
    """The four IDX files (plain or ``.gz``) in ``folder``, or None when any is missing."""
    folder = Path(folder)
    found: dict[str, Path] = {}
    for key, name in IDX_NAMES.items():
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def load_idx_set(folder: str | os.PathLike[str], kind: str | None = None, tried: tuple[str, ...] = ()) -> MnistData:
    """Load an IDX set from ``folder``; ``kind`` defaults to ``fashion-mnist`` when the path says so."""
    files = find_idx_set(folder)
    if files is None:
        msg = f"{folder}: no complete IDX set ({', '.join(IDX_NAMES.values())}, optionally .gz)"
        raise DataError(msg)
    tensors = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = tensors[f"{split}_images"], tensors[f"{split}_labels"]
        if images.dim() != 3 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
            msg = f"{folder}: {split} images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match"
            raise DataError(msg)
    kind = kind or ("fashion-mnist" if "fashion" in str(folder).lower() else "mnist")
    source = DataSource(kind, "idx", str(folder), int(tensors["train_images"].shape[0]),
                        int(tensors["test_images"].shape[0]), tried)
    return MnistData(tensors["train_images"], tensors["train_labels"].long(), tensors["test_images"],
                     tensors["test_labels"].long(), source)


def load_torchvision(data_dir: str | os.PathLike[str], download: bool, tried: tuple[str, ...] = ()) -> MnistData:
    """MNIST through ``torchvision.datasets.MNIST`` (``<data_dir>/MNIST/raw``)."""
    import socket

    from torchvision import datasets

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(15.0)  # an offline machine must not hang on the download
    created = [p for p in (Path(data_dir), Path(data_dir) / "MNIST", Path(data_dir) / "MNIST" / "raw") if not p.exists()]
    try:
        train = datasets.MNIST(str(data_dir), train=True, download=download)
        test = datasets.MNIST(str(data_dir), train=False, download=download)
    except Exception as exc:  # torchvision raises RuntimeError (missing) or URLError/OSError (download)
        # A failed download leaves the empty folders torchvision made: remove those (only those).
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        detail = " ".join(line.strip() for line in str(exc).splitlines()[:3] if line.strip()) or type(exc).__name__
        msg = f"torchvision MNIST under {data_dir}: {detail}"
        raise DataError(msg) from None
    finally:
        socket.setdefaulttimeout(previous)
    source = DataSource("mnist", "torchvision", str(Path(data_dir) / "MNIST"), len(train), len(test), tried)
    return MnistData(train.data, train.targets.long(), test.data, test.targets.long(), source, train)


def synthetic_mnist(n_train: int = 60_000, n_test: int = 10_000, seed: int = 0, tried: tuple[str, ...] = ()) -> MnistData:
    """Random MNIST-shaped images and labels: right shapes and sizes, meaningless content."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    make = lambda n: torch.randint(0, 256, (n, 28, 28), generator=gen, dtype=torch.uint8)  # noqa: E731
    labels = lambda n: torch.randint(0, 10, (n,), generator=gen)  # noqa: E731
    source = DataSource("synthetic", "synthetic", None, n_train, n_test, tried)
    return MnistData(make(n_train), labels(n_train), make(n_test), labels(n_test), source)


def load_mnist(
    data_dir: str | os.PathLike[str] = "data",
    *,
    download: bool = True,
    synthetic: bool = True,
    idx_dirs: tuple[str, ...] = IDX_DIRS,
    source: str = "auto",
) -> MnistData:
    """The first source that works, in the order of the module docstring (``source`` forces one)."""
    if source not in SOURCES:
        msg = f"unknown MNIST source {source!r}; use one of {', '.join(SOURCES)}"
        raise DataError(msg)
    tried: list[str] = []
    data_dir = Path(data_dir)
    if source in ("auto", "torchvision"):
        try:
            return load_torchvision(data_dir, download, tuple(tried))
        except DataError as exc:
            tried.append(str(exc))
        except ImportError as exc:
            tried.append(f"torchvision is not importable ({exc})")
    if source in ("auto", "idx"):
        folders = [data_dir, data_dir / "MNIST" / "raw", data_dir / "FashionMNIST" / "raw", *map(Path, idx_dirs)]
        for folder in folders:
            if find_idx_set(folder) is None:
                continue
            try:
                return load_idx_set(folder, tried=tuple(tried))
            except DataError as exc:
                tried.append(str(exc))
        tried.append(f"no IDX set in {', '.join(str(f) for f in folders)}")
    if source in ("auto", "synthetic") and (synthetic or source == "synthetic"):
        return synthetic_mnist(tried=tuple(tried))
    msg = (
        "no MNIST data: " + "; ".join(tried) + ". Fix: put MNIST under the data directory (data.dir or "
        "GPUBENCH_DATA_DIR), install Debian's dataset-fashion-mnist, or allow synthetic data (data.synthetic: true)"
    )
    raise DataError(msg)
