"""``gpubench info``: PyTorch, CUDA, driver and NVML versions and one row per device PyTorch can see.

Imports :mod:`gpubench.devices`, :mod:`gpubench.nvml` and :mod:`gpubench.results` (all torch-free at import;
the command line has imported torch before :func:`run_info` probes the devices) and the console.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from rich.table import Table

from gpubench import __version__, devices, killpoints, nvml, results
from gpubench.cli.exit_codes import EXIT_OK
from gpubench.console import console, printable


def add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run_info(args: argparse.Namespace) -> int:
    """Print what :func:`describe` found, as JSON (``--json``) or as a table."""
    killpoints.reached("info.probe")
    probe = devices.probe_cuda()
    data = describe(probe)
    killpoints.reached("info.print")
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    _print_table(data, probe)
    return EXIT_OK


def describe(probe: devices.CudaProbe) -> dict[str, Any]:
    """Versions, NVML status and the visible devices (memory in GiB) as JSON-ready values."""
    driver_cuda = nvml.cuda_driver_version() if probe.nvml_error is None else None
    return {
        "torch": probe.torch_version or f"not importable ({probe.torch_error})",
        "cuda_build": probe.cuda_build or ("none (CPU-only build)" if probe.torch_version else None),
        "cuda_available": probe.cuda_available,
        "cudnn": probe.cudnn_version,
        "driver": probe.driver_version or (probe.nvml_error and "not readable"),
        "driver_cuda": driver_cuda if nvml.available(driver_cuda) else None,
        "nvml": probe.nvml_error or "ok",
        "nvml_gpus": probe.nvml_device_count,
        "cuda_visible_devices": probe.cuda_visible_devices,
        "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER"),
        "devices": [
            {
                "index": d.index,
                "device": f"cuda:{d.index}",
                "name": d.name,
                "memory_gib": round(d.total_memory / 2**30, 2),
                "compute_capability": f"{d.capability[0]}.{d.capability[1]}",
                "uuid": d.uuid,
                "pci_bus_id": d.pci_bus_id,
                "nvml_index": _nvml_index(d.uuid) if probe.nvml_error is None else None,
            }
            for d in probe.devices
        ],
    }


def _nvml_index(uuid: str | None) -> int | None:
    """nvidia-smi's index of the GPU with this UUID (the parent GPU of a MIG instance): it differs from
    cuda:N when CUDA orders the GPUs otherwise or CUDA_VISIBLE_DEVICES renumbers them."""
    if uuid is None:
        return None
    index = nvml.call("nvmlDeviceGetIndex", nvml.whole_gpu(nvml.handle_by_uuid(uuid)))
    return int(index) if nvml.available(index) else None


def _print_table(data: dict[str, Any], probe: devices.CudaProbe) -> None:
    out = console()
    out.print(f"gpubench {__version__}")
    for key in ("torch", "cuda_build", "cuda_available", "cudnn", "driver", "driver_cuda", "nvml", "nvml_gpus"):
        value = data[key]
        out.print(f"  {key:<22} {value if value is not None else 'N/A'}")
    cvd = probe.cuda_visible_devices
    out.print(f"  {'CUDA_VISIBLE_DEVICES':<22} {'(unset)' if cvd is None else repr(cvd)}")
    order = data["cuda_device_order"]
    out.print(f"  {'CUDA_DEVICE_ORDER':<22} {'(unset: fastest first)' if order is None else printable(order)}")
    table = Table(title="devices visible to PyTorch", title_justify="left")
    for column in ("device", "name", "memory GiB", "CC", "UUID", "PCI bus id", "nvidia-smi #"):
        table.add_column(column)
    table.add_row("cpu", _cpu_name(), "-", "-", "-", "-", "-")
    for d in data["devices"]:
        index = d["nvml_index"]
        table.add_row(
            str(d["device"]), printable(d["name"]), f"{d['memory_gib']:.1f}", str(d["compute_capability"]),
            printable(d["uuid"] or "N/A"), printable(d["pci_bus_id"] or "N/A"),
            "N/A" if index is None else str(index),
        )
    out.print(table)
    if not probe.devices:
        problem = devices.why_unusable(devices.parse_device("cuda:0"), probe)
        if problem is not None:
            out.print(f"No CUDA device: {problem.reason}\n  Fix: {problem.remedy}")


def _cpu_name() -> str:
    return str(results.device_identity("cpu", None)["name"])
