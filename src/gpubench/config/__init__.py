"""The configuration: typed, frozen sections read from ``dl.config.sdn`` files, environment and flags.

Precedence, highest first: command-line flags > environment (``GPUBENCH_<SECTION>_<KEY>`` and the Simple
project's ``SIMPLE_DL_DEVICE`` / ``SIMPLE_DL_DTYPE`` / ``SIMPLE_DL_BACKEND``) > ``./dl.config.sdn`` (or
``--config FILE`` / ``GPUBENCH_CONFIG``) > user config (``$XDG_CONFIG_HOME/gpubench/dl.config.sdn``, then the
Simple project's ``~/.simple/dl.config.sdn``) > built-in defaults. Every effective value remembers where it
came from, which ``gpubench config show`` prints.

A wrong value is a :class:`ConfigError` naming file, line and column, the allowed values and a fix.
An unknown key is a warning with a "did you mean" suggestion: configs copied from the Simple project carry
keys gpubench does not use, and they must not stop a run.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpubench.config import sdn
from gpubench.devices import DTYPES, FALLBACK_POLICIES, DeviceError, DeviceSpec, parse_device

CONFIG_FILENAME = "dl.config.sdn"
MAX_CONFIG_BYTES = 1 << 20
"""Largest configuration file read (1 MiB). A dl.config.sdn is a few hundred bytes; anything this big is the
wrong file (a log, a dataset), and parsing it would take seconds and print a warning per unknown key."""
BACKENDS = ("torch", "native", "cuda")
LEVELS = ("quick", "long", "stress")
REPORT_FORMATS = ("md", "html", "csv", "parquet")


def _opt(doc: str, default: Any = None, **meta: Any) -> Any:
    """A field with its documentation (shown by ``config show --doc`` and in the README)."""
    if isinstance(default, (list, dict, set)):
        msg = "use tuples for sequence defaults: sections are frozen"
        raise TypeError(msg)
    return field(default=default, metadata={"doc": doc, **meta})


@dataclass(frozen=True)
class DLSection:
    """``dl:``: the Simple project's deep-learning settings; the default for every workload."""

    device: str = _opt("device for workloads: cpu, gpu, cuda, cuda:N", "cpu", device=True)
    dtype: str = _opt("floating-point type for workloads", "f32", choices=DTYPES)
    backend: str = _opt("tensor backend; gpubench measures torch only", "torch", choices=BACKENDS)
    autograd: bool = _opt("build autograd graphs in training workloads", True)
    amp: bool = _opt("automatic mixed precision (autocast) in training workloads", False)
    seed: int = _opt("random seed for workloads", 42, min=0)
    batch_size: int = _opt("batch size for training and inference workloads", 128, min=1)


@dataclass(frozen=True)
class TrainingSection:
    """``training:``: overrides ``dl:`` for training workloads (MNIST, XOR)."""

    device: str | None = _opt("device for training (default: dl.device)", None, device=True)
    dtype: str | None = _opt("dtype for training (default: dl.dtype)", None, choices=DTYPES)
    backend: str | None = _opt("backend for training (default: dl.backend)", None, choices=BACKENDS)
    autograd: bool | None = _opt("autograd for training (default: dl.autograd)", None)
    amp: bool | None = _opt("autocast for training (default: dl.amp)", None)
    seed: int | None = _opt("seed for training (default: dl.seed)", None, min=0)
    batch_size: int | None = _opt("batch size for training (default: dl.batch_size)", None, min=1)
    epochs: int = _opt("epochs of a full training run (gpubench bench mnist)", 10, min=1)
    learning_rate: float = _opt("Adam learning rate for MNIST", 1e-3, min=0.0)


@dataclass(frozen=True)
class InferenceSection:
    """``inference:``: overrides ``dl:`` for inference workloads."""

    device: str | None = _opt("device for inference (default: dl.device)", None, device=True)
    dtype: str | None = _opt("dtype for inference (default: dl.dtype)", None, choices=DTYPES)
    backend: str | None = _opt("backend for inference (default: dl.backend)", None, choices=BACKENDS)
    amp: bool | None = _opt("autocast for inference (default: dl.amp)", None)
    batch_size: int | None = _opt("batch size for inference (default: dl.batch_size)", None, min=1)


@dataclass(frozen=True)
class BenchSection:
    """``bench:``: what ``pytest bench`` / ``gpubench bench`` compare."""

    devices: tuple[str, ...] = _opt("devices compared side by side (default: dl.device)", (), device=True)
    fallback: str = _opt(
        "when a device is unusable: next (next usable GPU, else cpu), cpu, or none (skip)",
        "next",
        choices=FALLBACK_POLICIES,
    )
    dtypes: tuple[str, ...] = _opt("dtypes of the tensor cases", ("f32",), choices=DTYPES)
    creation_sizes: tuple[int, ...] = _opt("element counts for zeros/ones/randn", (1 << 20, 1 << 22), min=1)
    elementwise_sizes: tuple[int, ...] = _opt(
        "element counts for add/mul/relu/sigmoid/tanh", (1 << 20, 1 << 24), min=1
    )
    matmul_sizes: tuple[int, ...] = _opt("n of the n x n matmul cases", (256, 1024), min=1)
    copy_bytes: tuple[int, ...] = _opt("bytes per host/device copy case", (1 << 24,), min=1)
    xor_seeds: int = _opt("seeds trained at once in the XOR case", 100, min=1)
    xor_first_seed: int = _opt("first XOR seed (seeds are first .. first + xor_seeds - 1)", 0, min=0)
    xor_epochs: int = _opt("epochs of XOR training", 500, min=1)
    xor_rounds: int = _opt("timed rounds of the XOR case (each trains every seed)", 2, min=1)
    mnist_epochs: int = _opt("epochs timed per MNIST benchmark round", 1, min=1)
    mnist_batch_size: int = _opt("MNIST batch size", 128, min=1)
    mnist_limit: int = _opt(
        "train images per MNIST benchmark epoch (0: all 60000); the quick default keeps `pytest bench` short",
        8192,
        min=0,
    )
    mnist_rounds: int = _opt("timed rounds (epochs) per MNIST pipeline case", 2, min=1)
    mnist_pipelines: tuple[str, ...] = _opt(
        "MNIST input pipelines compared (resident-bf16 and cuda-graph run on CUDA devices only)",
        ("dataloader", "resident", "resident-bf16", "cuda-graph"),
        choices=("dataloader", "resident", "resident-bf16", "cuda-graph"),
    )
    mnist_num_workers: int = _opt("DataLoader worker processes of the textbook MNIST pipeline", 0, min=0)
    rounds: int = _opt("timed rounds per tensor benchmark case", 7, min=1)
    warmup_rounds: int = _opt("untimed warmup rounds before calibration", 1, min=0)
    timer: str = _opt(
        "round clock: auto (CUDA events for device-only GPU work, else synchronize + perf_counter), "
        "perf_counter, cuda-events",
        "auto",
        choices=("auto", "perf_counter", "cuda-events"),
    )
    max_sync_fraction: float = _opt(
        "calibrate iterations so the clock's synchronization costs below this share of a round", 0.01,
        min=0.0, max=0.5,
    )
    min_round_s: float = _opt("shortest timed round, seconds (clock resolution)", 0.001, min=0.0)
    cache_policy: str = _opt(
        "memory-bound cases: warm (same inputs every call), rotate (cycle through input copies twice the "
        "L2/last-level cache), flush (zero a 2x L2 buffer before each call; CUDA only)",
        "rotate",
        choices=("warm", "rotate", "flush"),
    )
    case_timeout_s: float = _opt("time limit per benchmark case, seconds", 600.0, min=0.0)


@dataclass(frozen=True)
class DataSection:
    """``data:``: where datasets are found."""

    dir: str = _opt("data directory for torchvision datasets (env GPUBENCH_DATA_DIR)", "data")
    download: bool = _opt("let torchvision try to download MNIST when it is not in data.dir", True)
    idx_dirs: tuple[str, ...] = _opt(
        "folders searched for MNIST-format IDX files after data.dir (Debian's dataset-fashion-mnist)",
        ("/usr/share/datasets/fashion-mnist",),
    )
    source: str = _opt(
        "force a MNIST source: auto (torchvision, then IDX files, then synthetic), torchvision, idx, synthetic",
        "auto",
        choices=("auto", "torchvision", "idx", "synthetic"),
    )
    synthetic: bool = _opt("allow synthetic MNIST-shaped data (throughput only) when none is on disk", True)


@dataclass(frozen=True)
class TelemetrySection:
    """``telemetry:``: the sampler beside every benchmark and load phase."""

    enabled: bool = _opt("sample NVML / psutil telemetry during runs", True)
    interval_ms: int = _opt(
        "sampling interval, milliseconds. Default 250, measured by bench/test_telemetry_overhead.py: at 100 ms "
        "the sampler thread used up to 1.25% of one core on a busy 2-core machine, over the 1% budget",
        250,
        min=10,
        max=60_000,
    )


@dataclass(frozen=True)
class VerifySection:
    """``verify:``: the health checks and their thresholds."""

    devices: tuple[str, ...] = _opt(
        "devices verified (default: bench.devices, else dl.device)", (), device=True
    )
    level: str = _opt("quick (<30 s per GPU), long, or stress", "quick", choices=LEVELS)
    memtest_fraction: float = _opt("share of free GPU memory the memory test covers", 0.1, min=0.0, max=0.95)
    memtest_seconds: float = _opt("time bound of the memory test, seconds", 10.0, min=0.0)
    burn_seconds: float = _opt("length of the under-load matmul burn, seconds", 5.0, min=0.0)
    temp_margin_c: float = _opt(
        "WARN when peak temperature under load is within this many degC of the GPU's max operating "
        "temperature (else its slowdown temperature)",
        5.0,
        min=0.0,
    )
    perf_floor_pct: float = _opt(
        "FAIL when more than this % below same-model siblings or own history "
        "(WARN on cpu: host load is not checked)",
        10.0,
        min=0.0,
    )
    pcie_min_width_fraction: float = _opt(
        "WARN when the PCIe link under load runs below this share of its max width (half or less FAILs)",
        1.0,
        min=0.0,
        max=1.0,
    )
    h2d_min_fraction: float = _opt(
        "WARN when pinned host/device bandwidth is below this share of the PCIe link's", 0.5, min=0.0, max=1.0
    )
    remap_uncorrectable_limit: int = _opt("FAIL at this many uncorrectable row remaps", 512, min=1)
    identity_memory_tolerance_pct: float = _opt(
        "WARN when PyTorch's and NVML's total memory differ by more than this %", 3.0, min=0.0
    )
    history_dir: str = _opt("where perf_floor finds earlier runs (default: <results.dir>/verify)", "")
    history_runs: int = _opt(
        "earlier runs of the same GPU whose median is the perf floor reference", 10, min=1
    )


@dataclass(frozen=True)
class ReportSection:
    """``report:``: regression and outlier rules for reports."""

    regression_pct: float = _opt("flag a benchmark this % slower than the previous run", 5.0, min=0.0)
    outlier_pct: float = _opt("flag a GPU this % below the median of same-model siblings", 10.0, min=0.0)
    benchmark: str = _opt(
        "benchmark whose utilization, power and clock timelines are plotted (default: the longest traced one)", ""
    )
    formats: tuple[str, ...] = _opt(
        "outputs written: md (Markdown), html (one self-contained page), csv and parquet (the tidy table)",
        ("md", "html", "csv", "parquet"),
        choices=REPORT_FORMATS,
    )
    plots: bool = _opt("draw plots (throughput bars, telemetry timelines) with matplotlib", True)


@dataclass(frozen=True)
class ResultsSection:
    """``results:``: where runs are saved."""

    dir: str = _opt("results folder", "results")


SECTIONS: dict[str, type] = {
    "dl": DLSection,
    "training": TrainingSection,
    "inference": InferenceSection,
    "bench": BenchSection,
    "data": DataSection,
    "telemetry": TelemetrySection,
    "verify": VerifySection,
    "report": ReportSection,
    "results": ResultsSection,
}

SIMPLE_ENV = {"SIMPLE_DL_DEVICE": "dl.device", "SIMPLE_DL_DTYPE": "dl.dtype", "SIMPLE_DL_BACKEND": "dl.backend"}


class ConfigError(ValueError):
    """Bad configuration: the message names where (file:line:column, variable or flag) and the fix."""


@dataclass(frozen=True)
class Config:
    """The effective configuration. ``sources`` maps ``section.key`` to where its value came from."""

    dl: DLSection = field(default_factory=DLSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    inference: InferenceSection = field(default_factory=InferenceSection)
    bench: BenchSection = field(default_factory=BenchSection)
    data: DataSection = field(default_factory=DataSection)
    telemetry: TelemetrySection = field(default_factory=TelemetrySection)
    verify: VerifySection = field(default_factory=VerifySection)
    report: ReportSection = field(default_factory=ReportSection)
    results: ResultsSection = field(default_factory=ResultsSection)
    sources: Mapping[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def bench_devices(self) -> tuple[str, ...]:
        """Devices the benchmarks compare: ``bench.devices``, else ``dl.device``."""
        return self.bench.devices or (self.dl.device,)

    def verify_devices(self) -> tuple[str, ...]:
        """Devices the health checks verify: ``verify.devices``, else the benchmark devices."""
        return self.verify.devices or self.bench_devices()

    def training_settings(self) -> DLSection:
        """``dl:`` with ``training:`` overrides applied."""
        return _merge_dl(self.dl, self.training)

    def inference_settings(self) -> DLSection:
        """``dl:`` with ``inference:`` overrides applied."""
        return _merge_dl(self.dl, self.inference)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """The effective values, section by section (recorded with every result)."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    def source_of(self, dotted: str) -> str:
        return self.sources.get(dotted, "default")


def _merge_dl(base: DLSection, override: Any) -> DLSection:
    changes = {
        f.name: getattr(override, f.name)
        for f in dataclasses.fields(DLSection)
        if getattr(override, f.name, None) is not None
    }
    return dataclasses.replace(base, **changes)


# --- value checking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Origin:
    """Where a raw value came from, for messages and for ``config show``."""

    label: str  # "file.sdn:3:11", "environment GPUBENCH_DL_DEVICE", "command line --device"
    key_label: str = ""  # where the key starts (unknown-key warnings)
    item_labels: tuple[str, ...] = ()  # where each item of a list value starts (a bad item is named exactly)

    def __str__(self) -> str:
        return self.label


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe_type(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _describe_type(inner[0]) if len(inner) == 1 else " or ".join(map(_describe_type, inner))
    if origin is tuple:
        return f"a list of {_describe_type(args[0])}s"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _coerce(dotted: str, raw: Any, tp: Any, meta: Mapping[str, Any], origin: _Origin) -> Any:
    """Check one raw value against its field; returns the typed value or raises ConfigError."""
    t_origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if t_origin in (typing.Union, types.UnionType):
        if raw is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(dotted, raw, inner[0], meta, origin)
    if t_origin is tuple:
        items = raw if isinstance(raw, (list, tuple)) else [raw]
        if isinstance(raw, str) and "," in raw:
            items = [p.strip() for p in raw.split(",") if p.strip()]
        labels = origin.item_labels if isinstance(raw, (list, tuple)) else ()
        return tuple(
            _coerce(
                dotted, item, args[0], meta,
                dataclasses.replace(origin, label=labels[i]) if i < len(labels) else origin,
            )
            for i, item in enumerate(items)
        )
    value = _scalar(dotted, raw, tp, meta, origin)
    _check_choices_and_range(dotted, value, meta, origin)
    return value


def _scalar(dotted: str, raw: Any, tp: Any, meta: Mapping[str, Any], origin: _Origin) -> Any:
    def bad(expected: str, fix: str) -> ConfigError:
        return ConfigError(f"{origin}: {dotted} = {raw!r} is not {expected}. Fix: {fix}")

    if tp is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            return raw.strip().lower() in ("true", "1", "yes", "on")
        raise bad("true or false", f"write {dotted.split('.')[-1]}: true (or false)")
    if tp is int:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise bad("an integer", f"write a whole number, e.g. {dotted.split('.')[-1]}: 42")
        try:
            return int(str(raw).replace("_", ""))
        except ValueError:
            raise bad("an integer", f"write a whole number, e.g. {dotted.split('.')[-1]}: 42") from None
    if tp is float:
        if isinstance(raw, bool):
            raise bad("a number", f"write a number, e.g. {dotted.split('.')[-1]}: 0.5")
        try:
            value = float(str(raw).replace("_", "")) if isinstance(raw, str) else float(raw)
        except (TypeError, ValueError):
            raise bad("a number", f"write a number, e.g. {dotted.split('.')[-1]}: 0.5") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise bad("a finite number", "write a finite number")
        return value
    # strings: scalars read as numbers (a bare 1) are accepted as their text
    if isinstance(raw, (dict, list, tuple)) or raw is None:
        raise bad("a string", f'write {dotted.split(".")[-1]}: "text"')
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    if meta.get("device"):
        try:
            parse_device(text)
        except DeviceError as exc:
            msg = f"{origin}: {dotted}: {exc} Fix: write e.g. {dotted.split('.')[-1]}: \"cuda:0\" or \"cpu\""
            raise ConfigError(msg) from None
    return text


def _check_choices_and_range(dotted: str, value: Any, meta: Mapping[str, Any], origin: _Origin) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        suggestion = f"{dotted.split('.')[-1]}: {close[0]}" if close else f"one of {', '.join(choices)}"
        msg = (
            f"{origin}: {dotted} = {value!r} is not allowed; allowed values: {', '.join(map(str, choices))}. "
            f"Fix: write {suggestion}"
        )
        raise ConfigError(msg)
    low, high = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if low is not None and value < low:
            msg = f"{origin}: {dotted} = {value} is below the minimum {low}. Fix: use a value >= {low}"
            raise ConfigError(msg)
        if high is not None and value > high:
            msg = f"{origin}: {dotted} = {value} is above the maximum {high}. Fix: use a value <= {high}"
            raise ConfigError(msg)


# --- layering ----------------------------------------------------------------------------------------

Raw = dict[str, tuple[Any, _Origin]]  # "section.key" -> (raw value, origin)


def _suggest(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _raw_from_document(doc: sdn.Document, warnings: list[str]) -> Raw:
    """Flatten a parsed file into ``section.key`` entries, warning about unknown sections and keys."""
    raw: Raw = {}
    src = doc.source

    def loc(path: tuple[str | int, ...], keys: bool = False) -> str:
        table = doc.key_locations if keys else doc.locations
        where = table.get(path) or doc.locations.get(path)
        return f"{src}:{where.line}:{where.column}" if where else src

    for section, body in doc.value.items():
        if section not in SECTIONS:
            warnings.append(f"{loc((section,), True)}: unknown section {section!r}{_suggest(section, list(SECTIONS))}"
                            " (ignored)")
            continue
        if body is None:  # `training:` with every key commented out: an empty section, not an error
            continue
        if isinstance(body, list) and body:
            # A block whose first line is not `key: value` reads as an array; say what is wrong with that line.
            raise ConfigError(_not_a_setting(section, body[0], loc((section, 0))))
        if not isinstance(body, dict):
            msg = (
                f"{loc((section,))}: {section} must be a block of 'key: value' lines, found {_kind(body)}. "
                f"Fix: write '{section}:' and indent its keys under it"
            )
            raise ConfigError(msg)
        names = [f.name for f in dataclasses.fields(SECTIONS[section])]
        for key, value in body.items():
            if key not in names:
                warnings.append(
                    f"{loc((section, key), True)}: unknown key {section}.{key}{_suggest(key, names)} (ignored)"
                )
                continue
            items = tuple(loc((section, key, i)) for i in range(len(value))) if isinstance(value, list) else ()
            raw[f"{section}.{key}"] = (value, _Origin(loc((section, key)), loc((section, key), True), items))
    return raw


_GLUED_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(\S.*)\Z")


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value!r}"
    return {list: "a list", dict: "a block", bool: "true or false", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _not_a_setting(section: str, first: Any, where: str) -> str:
    """The message for a section whose first line is not ``key: value`` (the reader took it for a list)."""
    if isinstance(first, str):
        glued = _GLUED_RE.match(first)
        if glued:
            file, _, position = where.rpartition(":")
            at = f"{file}:{int(position) + len(glued.group(1)) + 1}" if position.isdigit() else where
            return (
                f"{at}: missing blank after ':' in {first!r}. "
                f"Fix: write '{glued.group(1)}: {glued.group(2)}' (SDN needs a blank after the colon)"
            )
        return (
            f"{where}: {first!r} is not a setting of {section}:. "
            f"Fix: write each setting as 'key: value' (a name, a colon, a blank, the value), "
            f"indented under '{section}:'; see `gpubench config show` for the names"
        )
    return (
        f"{where}: {section} must be a block of 'key: value' lines, found a list. "
        f"Fix: write '{section}:' and indent its keys under it"
    )


def _raw_from_env(env: Mapping[str, str], warnings: list[str]) -> Raw:
    raw: Raw = {}
    for var, dotted in SIMPLE_ENV.items():
        if env.get(var, "").strip():
            raw[dotted] = (_env_value(env[var]), _Origin(f"environment {var}"))
    known = {
        f"GPUBENCH_{s.upper()}_{f.name.upper()}": f"{s}.{f.name}"
        for s, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    }
    known["GPUBENCH_DEVICE"] = "dl.device"
    known["GPUBENCH_DEVICES"] = "bench.devices"
    for var, value in env.items():
        if not var.startswith("GPUBENCH_") or var in ("GPUBENCH_CONFIG", "GPUBENCH_NO_INSTALL"):
            continue
        if var not in known:
            warnings.append(f"environment {var}: unknown setting{_suggest(var, list(known))} (ignored)")
            continue
        if value.strip():
            raw[known[var]] = (_env_value(value), _Origin(f"environment {var}"))
    return raw


def _env_value(text: str) -> Any:
    """Environment values are read as SDN scalars or inline lists: ``42``, ``true``, ``[cuda:0, cuda:1]``."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            return sdn.loads(f"v = {stripped}")["v"]
        except sdn.SdnError:
            return stripped
    return stripped


def user_config_paths(env: Mapping[str, str]) -> list[Path]:
    """The user-level files, lowest precedence first: ``~/.simple/dl.config.sdn``, then the XDG one."""
    home = Path(env.get("HOME") or Path.home())
    xdg = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return [home / ".simple" / CONFIG_FILENAME, xdg / "gpubench" / CONFIG_FILENAME]


def check_file(path: Path, where: str) -> None:
    """Raise ConfigError unless ``path`` is a regular file; ``where`` names who gave the path."""
    if path.is_dir():
        msg = f"{where}: {str(path)!r} is a folder, not a configuration file. Fix: give the path of a dl.config.sdn"
        raise ConfigError(msg)
    if path.exists() and not path.is_file():
        msg = (
            f"{where}: {str(path)!r} is not a regular file (a device, pipe or socket). "
            "Fix: give the path of a dl.config.sdn"
        )
        raise ConfigError(msg)
    if not path.exists():
        msg = f"{where}: configuration file {str(path)!r} does not exist. Fix: give the path of a dl.config.sdn"
        raise ConfigError(msg)


def read_file(path: Path) -> sdn.Document:
    """Parse one config file; an SDN syntax error becomes a ConfigError (file:line:column and fix).

    An empty file and one over :data:`MAX_CONFIG_BYTES` are errors too: the first is usually a write that
    never finished, the second the wrong file.
    """
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            with open(path, "rb") as handle:
                head = handle.read(MAX_CONFIG_BYTES).replace(b"\r\n", b"\n")
            line = head.count(b"\n") + 1
            column = len(head) - head.rfind(b"\n")
            msg = (
                f"{path}:{line}:{column}: the file is {size / 2**20:.1f} MiB and passes the "
                f"{MAX_CONFIG_BYTES // 2**20} MiB limit here; a dl.config.sdn is a few hundred bytes. "
                "Fix: point --config at the right file, or cut it down to the settings gpubench reads"
            )
            raise ConfigError(msg)
        if size == 0 or not path.read_bytes().strip():
            msg = (
                f"{path}:1:1: the configuration file is empty (a save that did not finish?). Fix: write at least "
                "one setting, e.g. 'dl:' and '    device: cuda:1' below it, or delete the file to use the "
                "built-in defaults"
            )
            raise ConfigError(msg)
        return sdn.load(path)
    except sdn.SdnError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        msg = f"{path}: cannot read the configuration ({exc.strerror or exc}). Fix: check the path and permissions"
        raise ConfigError(msg) from None


def load_config(
    config_file: str | os.PathLike[str] | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user_files: bool = True,
) -> Config:
    """Build the effective configuration from every layer.

    ``flags`` maps ``section.key`` to values given on the command line (the key of each is used in
    messages as ``command line``). ``config_file`` replaces ``./dl.config.sdn`` when given.
    """
    env = dict(os.environ if env is None else env)
    cwd = cwd or Path.cwd()
    warnings: list[str] = []
    files: list[str] = []
    layers: list[Raw] = []

    if user_files:
        for path in user_config_paths(env):
            if path.is_file():
                layers.append(_raw_from_document(read_file(path), warnings))
                files.append(str(path))
    explicit = config_file or env.get("GPUBENCH_CONFIG") or None
    project = Path(explicit) if explicit else cwd / CONFIG_FILENAME
    if not explicit and cwd.resolve() == Path.cwd().resolve():
        project = Path(CONFIG_FILENAME)  # messages say "dl.config.sdn:3:11", as the user sees the file
    if explicit:
        check_file(project, "--config" if config_file else "environment GPUBENCH_CONFIG")
    if project.is_file():
        layers.append(_raw_from_document(read_file(project), warnings))
        files.append(str(project))
    layers.append(_raw_from_env(env, warnings))
    layers.append({k: (v, _Origin(f"command line ({k})")) for k, v in (flags or {}).items() if v is not None})

    merged: Raw = {}
    for layer in layers:
        merged.update(layer)
    return _build(merged, tuple(files), tuple(warnings))


def _build(merged: Raw, files: tuple[str, ...], warnings: tuple[str, ...]) -> Config:
    sections: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, cls in SECTIONS.items():
        hints = _field_types(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            dotted = f"{name}.{f.name}"
            if dotted in merged:
                raw, origin = merged[dotted]
                values[f.name] = _coerce(dotted, raw, hints[f.name], f.metadata, origin)
                sources[dotted] = origin.label
        sections[name] = cls(**values)
    extra = list(warnings)
    for dotted in ("dl.backend", "training.backend", "inference.backend"):
        value = getattr(sections[dotted.split(".")[0]], "backend", None)
        if value not in (None, "torch"):
            extra.append(
                f"{sources.get(dotted, dotted)}: backend {value!r} is understood (the Simple project's own engine) "
                "but gpubench measures PyTorch only; running with torch. Fix: write backend: torch"
            )
    return Config(**sections, sources=sources, files=files, warnings=tuple(extra))


def effective_rows(config: Config) -> list[tuple[str, Any, str]]:
    """``(section.key, value, source)`` for every setting, for ``gpubench config show``."""
    rows = []
    for name in SECTIONS:
        section = getattr(config, name)
        for f in dataclasses.fields(section):
            dotted = f"{name}.{f.name}"
            rows.append((dotted, getattr(section, f.name), config.source_of(dotted)))
    return rows


def field_docs() -> list[tuple[str, Any, str]]:
    """``(section.key, default, doc)`` for every setting: the configuration reference."""
    return [
        (f"{name}.{f.name}", f.default, str(f.metadata.get("doc", "")))
        for name, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    ]


def device_spec(text: str) -> DeviceSpec:
    """Parse a device from a validated config (cannot fail for values that passed validation)."""
    return parse_device(text)
