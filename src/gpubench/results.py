"""Where results go and what every result carries.

Every file under ``results/`` is written to a temporary file in the same folder and renamed into
place, so an interrupted run never leaves a half-written result. Run ids hold the time, the host
and the process id, so two runs at once never write the same file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import secrets
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpubench import __version__

SCHEMA_VERSION = 1


class ResultPathError(ValueError):
    """A run name or path that would write outside the results folder."""


def new_run_id(now: _dt.datetime | None = None) -> str:
    """``20261125T103000Z-host-12345``: sortable by time, unique per host and process."""
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:40] or "host"
    return f"{stamp}-{host}-{os.getpid()}"


def safe_child(root: Path, *parts: str) -> Path:
    """``root/parts…``, refusing anything (``..``, absolute paths, links) that would leave ``root``."""
    base = root.resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        msg = f"refusing to write {'/'.join(parts)!r}: it resolves outside the results folder {base}"
        raise ResultPathError(msg)
    return target


def temporary_file(folder: Path | str, name: str) -> tuple[int, str]:
    """A new, empty file ``.<name>.<random>.tmp`` in ``folder`` (opened for writing: its descriptor and
    path), to be written and renamed into place. Its mode is 0666 less the umask, as any file a program
    makes: ``tempfile.mkstemp`` makes 0600, which left every saved run and report readable by its owner
    alone (a results folder on shared storage, read by a monitoring job or the cluster admins)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        path = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:  # another writer's name, once in 2**48: draw again
            continue


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (all or nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    return path


def fsync_file(path: Path | str) -> None:
    """Flush a written file's data to the disk (before it is renamed into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to the disk, where the system allows it: a rename
    survives a crash of the process without it, not a loss of power."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # a file system that cannot sync folders
        pass
    finally:
        os.close(fd)


def _json_default(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if repr(value) == "N/A":  # nvml.NA
        return None
    return str(value)


def to_json(data: Any) -> str:
    """JSON text for results: dataclasses as dicts, N/A as null, NaN refused (it is not JSON)."""
    return json.dumps(data, indent=2, sort_keys=False, default=_json_default, allow_nan=False) + "\n"


def atomic_write_json(path: Path, data: Any) -> Path:
    return atomic_write_text(path, to_json(data))


def software_versions() -> dict[str, Any]:
    """Versions of everything that changes a number: Python, gpubench, torch, torchvision, …

    Read from package metadata, not by importing: importing torchvision and pandas only to learn their
    versions cost seconds per run.
    """
    from importlib import metadata

    versions: dict[str, Any] = {
        "python": platform.python_version(),
        "gpubench": __version__,
        "platform": platform.platform(),
    }
    for key, dist in (("torch", "torch"), ("torchvision", "torchvision"), ("pytest_benchmark", "pytest-benchmark"),
                      ("pandas", "pandas"), ("pynvml", "nvidia-ml-py")):
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = None
    torch = sys.modules.get("torch")
    if torch is not None:  # the running build (e.g. 2.14.1+cu130) beats the metadata's name
        versions["torch"] = str(getattr(torch, "__version__", versions["torch"]))
    return versions


def environment(probe: Any | None = None) -> dict[str, Any]:
    """What a result needs to be reproduced: host, versions, CUDA build, driver, visible GPUs."""
    from gpubench.devices import probe_cuda

    probe = probe if probe is not None else probe_cuda()
    env = {
        "host": socket.gethostname(),
        "versions": software_versions(),
        "torch": probe.torch_version,
        "cuda_build": probe.cuda_build,
        "cudnn": probe.cudnn_version,
        "driver": probe.driver_version,
        "cuda_visible_devices": probe.cuda_visible_devices,
        "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER"),
        "gpus": [gpu_identity(d) for d in probe.devices],
        "nvml": probe.nvml_error or "ok",
    }
    return env


def gpu_identity(info: Any) -> dict[str, Any]:
    """The identity every GPU result row carries: never a bare index alone."""
    return {
        "index": info.index,
        "name": info.name,
        "uuid": info.uuid,
        "pci_bus_id": info.pci_bus_id,
        "total_memory_bytes": info.total_memory,
        "compute_capability": f"{info.capability[0]}.{info.capability[1]}",
    }


def device_identity(device: str, probe: Any) -> dict[str, Any]:
    """Identity of ``cpu`` or ``cuda:N`` for a result row (the CPU model for ``cpu``)."""
    from gpubench.devices import parse_device

    spec = parse_device(device)
    if spec.kind == "cpu":
        return {
            "device": "cpu",
            "name": _cpu_name(),
            "uuid": f"cpu-{socket.gethostname()}",
            "pci_bus_id": None,
            "host": socket.gethostname(),
            "logical_cpus": os.cpu_count(),
        }
    info = probe.device(spec.index or 0)
    ident: dict[str, Any] = {"device": spec.name, "host": socket.gethostname()}
    if info is not None:
        ident.update(gpu_identity(info))
    return ident


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def load_json(path: Path) -> Mapping[str, Any]:
    """Read a saved result; raises ValueError naming the file when it is not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{path}: not a readable JSON result ({exc})"
        raise ValueError(msg) from exc
    if not isinstance(data, dict):
        msg = f"{path}: expected a JSON object, found {type(data).__name__}"
        raise ValueError(msg)
    return data
