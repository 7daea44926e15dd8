"""``gpubench`` / ``python -m gpubench``: info, config, verify, bench, report.

A pipeline of small steps: parse arguments, load the configuration, run one verb, return the exit
code (0 ok, 1 a check or gate failed, 2 bad usage or bad configuration). ``config`` never imports
torch, so it answers in a fraction of a second even on a machine without PyTorch.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from gpubench import __version__
from gpubench.config import (
    ConfigError,
    check_file,
    effective_rows,
    field_docs,
    load_config,
    read_file,
)
from gpubench.config.options import add_common_options, config_from_args
from gpubench.console import console, printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# verbs implemented in their own modules: each has add_arguments(parser) and run(args) -> int
DELEGATED = {
    "verify": ("gpubench.verify", "run the health checks on the configured devices"),
    "bench": ("gpubench.bench.command", "run the benchmarks in bench/ (or a full MNIST training run)"),
    "report": ("gpubench.report", "turn saved runs into per-GPU reports (Markdown, HTML, CSV, Parquet)"),
}


# verbs that run one rank per GPU under torchrun (gpubench.distributed.run merges them on rank 0)
DISTRIBUTED_VERBS = ("verify", "bench")


class UsageError(Exception):
    """Bad command-line usage (exit 2)."""


def build_parser(active_verb: str | None = None) -> argparse.ArgumentParser:
    """The argument parser. Only ``active_verb``'s module is imported (its options are added), so that
    ``gpubench config show`` never imports the modules that need torch."""
    parser = argparse.ArgumentParser(
        prog="gpubench",
        description="Verify and benchmark the GPUs of a PyTorch machine.",
        epilog="Exit codes: 0 ok, 1 a check failed, 2 bad usage or configuration.",
    )
    parser.add_argument("--version", action="version", version=f"gpubench {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    info = verbs.add_parser("info", help="PyTorch, CUDA, driver and one row per visible device")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")

    cfg = verbs.add_parser("config", help="show the effective configuration or check a file")
    cfg_verbs = cfg.add_subparsers(dest="config_verb", metavar="ACTION")
    cfg_verbs.required = True
    show = cfg_verbs.add_parser("show", help="each effective value and where it came from")
    add_common_options(show)
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.add_argument("--doc", action="store_true", help="add each setting's documentation")
    cfg_verbs.add_parser("reference", help="the configuration reference as a Markdown table (as in the README)")
    check = cfg_verbs.add_parser("check", help="validate a dl.config.sdn file (exit 0 valid, 2 invalid)")
    check.add_argument("file", metavar="FILE")

    for verb, (module_name, help_text) in DELEGATED.items():
        sub = verbs.add_parser(verb, help=help_text)
        add_common_options(sub)
        if verb != active_verb:
            continue
        module = _load_module(module_name)
        if module is not None:
            module.add_arguments(sub)
        if verb in DISTRIBUTED_VERBS:
            dist_module = _load_module("gpubench.distributed")
            if dist_module is not None:
                dist_module.add_arguments(sub)
    return parser


def launched_by_torchrun(env: Any = None) -> bool:
    """True inside a process started by torchrun (or another launcher that sets WORLD_SIZE and RANK)."""
    import os

    env = os.environ if env is None else env
    return "WORLD_SIZE" in env and "RANK" in env


def _load_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def cmd_info(args: argparse.Namespace) -> int:
    from gpubench import nvml
    from gpubench.devices import probe_cuda

    probe = probe_cuda()
    driver_cuda = nvml.cuda_driver_version() if probe.nvml_error is None else None
    data: dict[str, Any] = {
        "torch": probe.torch_version or f"not importable ({probe.torch_error})",
        "cuda_build": probe.cuda_build or ("none (CPU-only build)" if probe.torch_version else None),
        "cuda_available": probe.cuda_available,
        "cudnn": probe.cudnn_version,
        "driver": probe.driver_version or (probe.nvml_error and "not readable"),
        "driver_cuda": driver_cuda if nvml.available(driver_cuda) else None,
        "nvml": probe.nvml_error or "ok",
        "nvml_gpus": probe.nvml_device_count,
        "cuda_visible_devices": probe.cuda_visible_devices,
        "devices": [
            {
                "index": d.index,
                "device": f"cuda:{d.index}",
                "name": d.name,
                "memory_gib": round(d.total_memory / 2**30, 2),
                "compute_capability": f"{d.capability[0]}.{d.capability[1]}",
                "uuid": d.uuid,
                "pci_bus_id": d.pci_bus_id,
            }
            for d in probe.devices
        ],
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    from rich.table import Table

    out = console()
    out.print(f"gpubench {__version__}")
    for key in ("torch", "cuda_build", "cuda_available", "cudnn", "driver", "driver_cuda", "nvml", "nvml_gpus"):
        value = data[key]
        out.print(f"  {key:<22} {value if value is not None else 'N/A'}")
    cvd = probe.cuda_visible_devices
    out.print(f"  {'CUDA_VISIBLE_DEVICES':<22} {'(unset)' if cvd is None else repr(cvd)}")
    table = Table(title="devices visible to PyTorch", title_justify="left")
    for column in ("device", "name", "memory GiB", "CC", "UUID", "PCI bus id"):
        table.add_column(column)
    table.add_row("cpu", _cpu_name(), "-", "-", "-", "-")
    for d in data["devices"]:
        table.add_row(
            str(d["device"]), printable(d["name"]), f"{d['memory_gib']:.1f}", str(d["compute_capability"]),
            printable(d["uuid"] or "N/A"), printable(d["pci_bus_id"] or "N/A"),
        )
    out.print(table)
    if not probe.devices:
        from gpubench.devices import parse_device, why_unusable

        problem = why_unusable(parse_device("cuda:0"), probe)
        if problem is not None:
            out.print(f"No CUDA device: {problem.reason}\n  Fix: {problem.remedy}")
    return EXIT_OK


def _cpu_name() -> str:
    from gpubench.results import device_identity

    return str(device_identity("cpu", None)["name"])


def _show_value(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def cmd_config_show(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    rows = effective_rows(config)
    if args.json:
        payload = {
            "files": list(config.files),
            "settings": {k: {"value": v, "source": s} for k, v, s in rows},
            "warnings": list(config.warnings),
        }
        print(json.dumps(payload, indent=2, default=list))
        return EXIT_OK
    from rich.table import Table

    docs = {k: d for k, _, d in field_docs()}
    out = console()
    files = printable(", ".join(config.files)) if config.files else "none found (built-in defaults)"
    out.print(f"configuration files read (lowest precedence first): {files}")
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("setting")
    table.add_column("value")
    table.add_column("from")
    if args.doc:
        table.add_column("meaning")
    for key, value, source in rows:
        cells = [key, printable(_show_value(value)), printable(source)]
        if args.doc:
            cells.append(docs.get(key, ""))
        table.add_row(*cells, style=None if source == "default" else "bold")
    out.print(table)
    return EXIT_OK


def config_reference() -> str:
    """Markdown table of every setting, its default and meaning (the README embeds this verbatim)."""
    from gpubench.config import SECTIONS

    lines = ["| setting | default | meaning |", "|---|---|---|"]
    current = ""
    for key, default, doc in field_docs():
        section = key.split(".")[0]
        if section != current:
            current = section
            title = (SECTIONS[section].__doc__ or "").strip().splitlines()[0]
            lines.append(f"| **{section}:** | | {title} |")
        lines.append(f"| `{key}` | `{_show_value(default)}` | {doc} |")
    return "\n".join(lines) + "\n"


def cmd_config_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    path = Path(args.file)
    if not path.exists():
        print(f"error: {path}: no such file. Fix: give the path of a dl.config.sdn", file=sys.stderr)
        return EXIT_USAGE
    check_file(path, "config check")  # a folder or a device: ConfigError, exit 2
    document = read_file(path)  # syntax errors raise ConfigError with file:line:column
    config = load_config(path, env={}, user_files=False)
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    keys = sum(len(v) for v in document.value.values() if isinstance(v, dict))
    sections = ", ".join(document.value) or "no sections"
    print(f"{path}: valid ({keys} settings in {sections}; {len(config.warnings)} warning(s))")
    return EXIT_OK


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (temporary result files are removed)."""

    signum = 15


# While not None, Ctrl-C and SIGTERM are recorded here instead of raised. Raised inside PyTorch's import, the
# KeyboardInterrupt either crosses pybind11's C++ (std::terminate: the process aborts) or is swallowed by it
# (the run goes on as if nothing happened); both were seen here. So torch is imported first, with interrupts
# held until the import is done.
_held_interrupts: list[int] | None = None

# verbs that import PyTorch; they import it up front, with interrupts held
TORCH_VERBS = ("info", "verify", "bench")


def _on_interrupt(signum: int, frame: Any) -> None:
    import signal

    if signum == signal.SIGTERM:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    if _held_interrupts is not None:
        _held_interrupts.append(signum)
        return
    _raise_interrupt(signum)


def _raise_interrupt(signum: int) -> None:
    import signal

    if signum == signal.SIGTERM:
        raise Terminated(f"terminated by signal {signum}")
    raise KeyboardInterrupt


def import_torch_holding_interrupts() -> None:
    """Import torch (if installed) with Ctrl-C and SIGTERM held; one that came meanwhile is raised after."""
    global _held_interrupts
    _held_interrupts = []
    try:
        import torch  # noqa: F401
    except Exception:  # not installed or broken: devices.probe_cuda reports why
        pass
    finally:
        held, _held_interrupts = _held_interrupts, None
    if held:
        _raise_interrupt(held[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code. Ctrl-C exits 130 and SIGTERM 143, without a traceback,
    wherever they land (even while the parser imports the verb's module)."""
    import signal
    import threading

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _on_interrupt)
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:
        print("interrupted: results written so far are kept", file=sys.stderr)
        return 128 + Terminated.signum if isinstance(exc, Terminated) else 130
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        if args.verb in TORCH_VERBS:
            if args.verb != "info":  # a bad configuration is reported at once, not after PyTorch loads (seconds)
                config_from_args(argparse.Namespace(**{**vars(args), "quiet": True}))
            import_torch_holding_interrupts()
        if args.verb == "info":
            return cmd_info(args)
        if args.verb == "config":
            if args.config_verb == "reference":
                print(config_reference(), end="")
                return EXIT_OK
            return cmd_config_show(args) if args.config_verb == "show" else cmd_config_check(args)
        if args.verb in DISTRIBUTED_VERBS and launched_by_torchrun():
            dist_module = _load_module("gpubench.distributed")
            if dist_module is None:
                print("error: distributed runs are not available in this build", file=sys.stderr)
                return EXIT_USAGE
            return int(dist_module.run(args.verb, args))
        module = _load_module(DELEGATED[args.verb][0])
        if module is None:
            print(f"error: `gpubench {args.verb}` is not available in this build", file=sys.stderr)
            return EXIT_USAGE
        return int(module.run(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
