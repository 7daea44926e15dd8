"""What can be configured: the typed, frozen section dataclasses, their defaults and documentation.

Each section of ``dl.config.sdn`` is one frozen dataclass (``dl:`` is :class:`DLSection`, ``bench:`` is
:class:`BenchSection`, ...); each field carries its default, its one-line documentation and its
constraints (``choices``, ``min``, ``max``, ``device``) in the field's metadata, which the loader checks
and :func:`field_docs` turns into the configuration reference (``gpubench config reference``, the README).
:class:`Config` holds one of each plus where every value came from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpubench.devices import DTYPES, FALLBACK_POLICIES, DeviceSpec, parse_device

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
    xor_seeds: int = _opt("seeds trained at once in the XOR case", 1000, min=1)
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
        "MNIST input pipelines compared (cuda-graph runs on CUDA devices only)",
        ("dataloader", "resident", "resident-bf16", "cuda-graph"),
        choices=("dataloader", "resident", "resident-bf16", "cuda-graph"),
    )
    mnist_num_workers: int = _opt("DataLoader worker processes of the textbook MNIST pipeline", 0, min=0)
    cpu_threads: int = _opt(
        "torch intra-op threads for cases on the cpu (0: torch's default, one per core; 1 on a busy machine, "
        "where each small op otherwise waits for a descheduled sibling thread)", 0, min=0
    )
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
    alpha: float = _opt(
        "significance level a regression or outlier flag needs (gpubench report --alpha overrides it)",
        0.01, gt=0.0, lt=1.0,
    )
    fdr: float = _opt(
        "false-discovery rate the report's flags control over all its comparisons, by Benjamini-Hochberg "
        "(gpubench report --fdr overrides it)",
        0.05, gt=0.0, lt=1.0,
    )
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


SIMPLE_ONLY_SETTINGS: dict[str, str] = {
    "training.gradient_checkpointing": "recompute activations in backward to save memory (the Simple trainer's)",
    "inference.autograd": "build autograd graphs in inference (gpubench's inference workloads never do)",
}
"""Settings the Simple project documents for ``dl.config.sdn`` (doc/guide/gpu_configuration.md) that have no
effect in gpubench: accepted (true or false) and reported as not used, never as unknown keys."""

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
    unused: tuple[str, ...] = ()  # "file:line:col: section.key" of SIMPLE_ONLY_SETTINGS found in the files

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
