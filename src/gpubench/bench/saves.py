"""Saving a benchmark run all-or-nothing: pytest-benchmark's ``FileStorage.save`` replaced by
:func:`atomic_save` (a temporary file, fsynced, hard-linked to the first free ``NNNN_`` name), so an
interrupt never leaves half a file and two runs finishing at once never share a number. Imports
:mod:`gpubench.killpoints`, :mod:`gpubench.results` and pytest-benchmark only."""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

from pytest_benchmark.utils import safe_dumps

from gpubench import killpoints
from gpubench.results import fsync_folder, temporary_file


def make_atomic(session: Any) -> None:
    """Make the benchmark session's storage save through :func:`atomic_save` (a FileStorage only)."""
    storage = getattr(session, "storage", None)
    if storage is not None and type(storage).__name__ == "FileStorage" and hasattr(storage, "get"):
        storage.save = types.MethodType(atomic_save, storage)


def atomic_save(storage: Any, output_json: Any, save: str) -> None:
    """pytest-benchmark's FileStorage.save, made all-or-nothing and safe for two runs at once.

    The original opens the final name and writes into it (an interrupt leaves half a file), and two runs
    finishing together compute the same number. Here the JSON goes to a temporary file, which is then
    hard-linked to the first free ``NNNN_`` name (a link fails if the name exists, so no overwrite).
    """
    folder = storage.get("x").parent
    data = safe_dumps(output_json, ensure_ascii=True, indent=4).encode()  # type: ignore[no-untyped-call]
    killpoints.reached("bench.save")
    fd, tmp = temporary_file(folder, "saving")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        number = next_number(folder)
        while True:
            target = storage.get(f"{number:04d}_{save}.json")
            try:
                os.link(tmp, target)
                break
            except FileExistsError:
                number += 1
    finally:
        os.unlink(tmp)
    fsync_folder(folder)  # the new name, on the disk
    storage.logger.info(f"Saved benchmark data in: {target}")


def next_number(folder: Path) -> int:
    """One more than the highest ``NNNN_`` prefix of a saved run in ``folder`` (1 when there is none): what
    pytest-benchmark's FileStorage numbers the next save, read from the folder instead of its internals."""
    numbers = [int(p.name[:4]) for p in folder.glob("[0-9][0-9][0-9][0-9]_*") if p.name[:4].isdigit()]
    return max(numbers, default=0) + 1
