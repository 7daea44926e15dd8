"""MNIST training checkpoints: save a trainer's whole state, refuse a damaged file, resume bit for bit.

A checkpoint holds everything the next epoch depends on: the model's and the optimizer's state, the
random number generators (torch's CPU generator, which dropout draws from on cpu; the device's default
generator on CUDA; Python's ``random``; numpy is not used by training), the data-order state (the
generator that shuffles each epoch: the DataLoader's sampler or the resident pipeline's ``randperm``),
the epochs trained and their figures. Resumed in a fresh process on the same device type, the losses
of the epochs after it equal an uninterrupted run's bit for bit on cpu.

File layout (format :data:`FORMAT`, version :data:`VERSION`)::

    GPUBENCH-CHECKPOINT\\n
    {"format": ..., "version": 1, "bytes": N, "sha256": "..."}\\n
    N bytes: torch.save of the state dict

It is written to a temporary file in the same folder, flushed to disk and renamed over the old one, so
an interrupted save leaves the previous checkpoint whole. Loading checks the magic line, the format
and version, the length (a truncated file), the SHA-256 and then that every part fits the trainer it is
restored into, all before anything is applied: a damaged or foreign checkpoint is refused by name
(:class:`CheckpointError`) and the trainer is left as it was. ``torch.load`` runs with
``weights_only=True``: a checkpoint cannot run code.

The ``cuda-graph`` pipeline is not checkpointed: its graph capture takes training steps of its own,
so a resumed run would not continue the same sequence.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpubench import killpoints

MAGIC = b"GPUBENCH-CHECKPOINT\n"
FORMAT = "gpubench.mnist-checkpoint"
VERSION = 1
UNSUPPORTED = {"cuda-graph": "its CUDA graph capture takes training steps of its own, so a resumed run "
                             "would not continue the same sequence; use the resident pipeline"}
_PARTS = {"epoch", "rows", "run", "model", "optimizer", "rng"}
_RNG_PARTS = {"torch_cpu", "device_type", "device", "order", "python"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and says why."""

    def __init__(self, path: str | os.PathLike[str], why: str):
        super().__init__(f"checkpoint {path} refused: {why}; nothing was loaded")
        self.path, self.why = str(path), why


@dataclass(frozen=True)
class Transfer:
    """One save or load: the file, its payload bytes and the seconds it took."""

    path: Path
    bytes: int
    seconds: float

    @property
    def gb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e9 if self.seconds > 0 else 0.0


def unsupported_reason(pipeline: str) -> str | None:
    """Why ``pipeline`` cannot be checkpointed (None when it can)."""
    why = UNSUPPORTED.get(pipeline)
    return f"mnist {pipeline} cannot be checkpointed: {why}" if why else None


def run_settings(trainer: Any) -> dict[str, Any]:
    """What a resumed run must share with the saved one for its epochs to continue the same sequence."""
    return {"pipeline": trainer.pipeline, "batch_size": int(trainer.batch_size), "seed": int(trainer.seed),
            "n_train": int(trainer.n_train), "device_type": trainer.device.type}


def trainer_state(trainer: Any, rows: list[dict[str, float]]) -> dict[str, Any]:
    """The whole state of ``trainer`` after ``len(rows)`` epochs (tensors as the trainer holds them)."""
    import torch

    device_rng = torch.cuda.get_rng_state(trainer.device) if trainer.device.type == "cuda" else None
    return {
        "epoch": len(rows),
        "rows": [dict(row) for row in rows],
        "run": run_settings(trainer),
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "rng": {"torch_cpu": torch.get_rng_state(), "device_type": trainer.device.type, "device": device_rng,
                "order": trainer.order_generator.get_state(), "python": random.getstate()},
    }


def save(path: str | os.PathLike[str], trainer: Any, rows: list[dict[str, float]]) -> Transfer:
    """Write ``trainer``'s state after ``rows`` to ``path`` atomically (temporary file, fsync, rename)."""
    import torch

    reason = unsupported_reason(trainer.pipeline)
    if reason:
        raise ValueError(reason)
    start = time.perf_counter()
    buffer = io.BytesIO()
    torch.save(trainer_state(trainer, rows), buffer)
    payload = buffer.getvalue()
    header = {"format": FORMAT, "version": VERSION, "bytes": len(payload),
              "sha256": hashlib.sha256(payload).hexdigest()}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(MAGIC + json.dumps(header).encode() + b"\n")
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        killpoints.reached("bench.mnist.checkpoint.save")  # written, not yet in place
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    killpoints.reached("bench.mnist.checkpoint.saved")
    return Transfer(target, len(payload), time.perf_counter() - start)


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The state saved in ``path``, after checking its magic line, format, version, length and checksum."""
    import torch

    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if not blob.startswith(MAGIC):
        raise CheckpointError(path, "not a gpubench checkpoint (no GPUBENCH-CHECKPOINT line at its start)")
    head, newline, payload = blob[len(MAGIC):].partition(b"\n")
    try:
        header = json.loads(head) if newline else None
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise CheckpointError(path, "its header is damaged or cut off")
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise CheckpointError(path, f"format {header.get('format')!r} version {header.get('version')!r}; "
                                    f"this gpubench reads {FORMAT!r} version {VERSION}")
    if len(payload) != header.get("bytes"):
        raise CheckpointError(path, f"truncated or padded: {len(payload)} bytes of data, the header says "
                                    f"{header.get('bytes')}")
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise CheckpointError(path, "bad checksum: its data is not what was saved (SHA-256 differs)")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # checksum matched, yet torch cannot read it: written by an incompatible torch
        raise CheckpointError(path, f"torch.load cannot read its data ({exc})") from exc
    if not isinstance(state, dict) or set(state) != _PARTS:
        raise CheckpointError(path, f"its parts are not {sorted(_PARTS)}")
    return state


def check_fits(path: str | os.PathLike[str], trainer: Any, state: dict[str, Any]) -> None:
    """Refuse ``state`` unless every part of it fits ``trainer`` (before anything is applied)."""
    import torch

    saved, here = state["run"], run_settings(trainer)
    differ = [f"{key} {saved.get(key)!r} (this run: {value!r})" for key, value in here.items()
              if saved.get(key) != value]
    if differ:
        raise CheckpointError(path, "saved by a different run: " + ", ".join(differ))
    model = trainer.model.state_dict()
    shapes = {key: tuple(value.shape) for key, value in state["model"].items() if torch.is_tensor(value)}
    if shapes != {key: tuple(value.shape) for key, value in model.items()}:
        raise CheckpointError(path, "its model's parameters are not this model's (names or shapes differ)")
    groups = state["optimizer"].get("param_groups", [])
    if [len(g.get("params", [])) for g in groups] != [len(g["params"]) for g in trainer.optimizer.param_groups]:
        raise CheckpointError(path, "its optimizer state is for other parameters")
    rng = state["rng"]
    if not isinstance(rng, dict) or set(rng) != _RNG_PARTS:
        raise CheckpointError(path, f"its random number generator states are not {sorted(_RNG_PARTS)}")
    if not isinstance(state["epoch"], int) or len(state["rows"]) != state["epoch"]:
        raise CheckpointError(path, "its epoch count and its epoch figures disagree")


def restore(path: str | os.PathLike[str], trainer: Any) -> list[dict[str, float]]:
    """Load ``path`` into ``trainer``; the rows of the epochs it had trained. All checks come first."""
    import torch

    state = read(path)
    check_fits(path, trainer, state)
    rng = state["rng"]
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(rng["torch_cpu"])
    if rng["device"] is not None:
        torch.cuda.set_rng_state(rng["device"], trainer.device)
    trainer.order_generator.set_state(rng["order"])
    random.setstate(rng["python"])
    return [dict(row) for row in state["rows"]]


def timed_restore(path: str | os.PathLike[str], trainer: Any) -> tuple[list[dict[str, float]], Transfer]:
    """:func:`restore`, timed: the rows and the load's bytes (the checkpoint's payload) and seconds."""
    start = time.perf_counter()
    rows = restore(path, trainer)
    seconds = time.perf_counter() - start
    return rows, Transfer(Path(path), payload_bytes(path), seconds)


def payload_bytes(path: str | os.PathLike[str]) -> int:
    """The payload size a checkpoint's header gives (0 when the header cannot be read)."""
    with open(path, "rb") as handle:
        handle.readline()
        try:
            return int(json.loads(handle.readline()).get("bytes", 0))
        except (ValueError, AttributeError):
            return 0


def every(path: str | os.PathLike[str], epochs: int,
          saved: Callable[[Transfer, int], None] | None = None) -> Callable[[Any, list[dict[str, float]]], None]:
    """An ``after_epoch`` hook for :func:`gpubench.workloads.mnist.train_full`: save to ``path`` after every
    ``epochs``-th epoch; ``saved`` hears of each save and its epoch."""
    if epochs < 1:
        raise ValueError("--checkpoint-every must be at least 1 epoch")

    def hook(trainer: Any, rows: list[dict[str, float]]) -> None:
        if len(rows) % epochs == 0:
            transfer = save(path, trainer, rows)
            if saved is not None:
                saved(transfer, len(rows))

    return hook


def resume_from(path: str | os.PathLike[str]) -> Callable[[Any], list[dict[str, float]]]:
    """A ``resume`` hook for :func:`gpubench.workloads.mnist.train_full`: restore ``path``."""
    return lambda trainer: restore(path, trainer)
