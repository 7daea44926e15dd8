"""Health-check decisions: readings (frozen dataclasses) in, a verdict out.

Every function named ``decide_*`` is pure: it takes readings that :mod:`gpubench.verify.probes` filled from NVML
and PyTorch (or that a test made by hand) and returns a :class:`CheckResult` with the verdict, the measured
value, the threshold it was held against and a remedy a person can act on. A reading the hardware cannot
give is ``None`` ("N/A"): it leads to SKIP or to PASS with a note, never to an exception.

Where the thresholds come from: the memory-health rules follow NVIDIA's DCGM health checks and the A100/H100
memory error management guide (a pending page retirement or row remap, a remap failure, an uncorrectable
error, or a recovery action other than "none" all mean the GPU needs attention); the clock-event reasons are
NVML's ``nvmlClocksEventReason*`` bits (the ``clocks_event_reasons.*`` fields of ``nvidia-smi --query-gpu``).
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

# --- verdicts and results -------------------------------------------------------------------------


class Verdict(str, enum.Enum):
    """The outcome of one check on one device. Only FAIL changes the exit code."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"

    def __str__(self) -> str:
        return self.value


_RANK = {Verdict.SKIP: 0, Verdict.PASS: 1, Verdict.WARN: 2, Verdict.FAIL: 3}


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    """The most severe verdict (FAIL > WARN > PASS > SKIP); SKIP for an empty sequence."""
    return max(verdicts, key=_RANK.__getitem__, default=Verdict.SKIP)


@dataclass(frozen=True)
class CheckResult:
    """One row of the verdict table and of ``results/verify/<run>.json``.

    ``value`` and ``threshold`` are what was measured and what it was held against (numbers or short text,
    in ``unit``); ``readings`` holds every reading the decision saw, for the record.
    """

    check: str
    device: str
    verdict: Verdict
    value: Any = None
    threshold: Any = None
    unit: str = ""
    message: str = ""
    remedy: str = ""
    readings: Mapping[str, Any] = field(default_factory=dict)
    uuid: str | None = None
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (the ``checks`` entries of the verify schema)."""
        return {
            "device": self.device,
            "uuid": self.uuid,
            "check": self.check,
            "verdict": self.verdict.value,
            "value": self.value,
            "threshold": self.threshold,
            "unit": self.unit,
            "remedy": self.remedy,
            "message": self.message,
            "readings": dict(self.readings),
            "duration_s": round(self.duration_s, 4),
        }


@dataclass(frozen=True)
class CheckSpec:
    """A check in the registry: its name (the ``check`` field), a title and whether it applies to ``cpu``."""

    name: str
    title: str
    cpu: bool


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("config", "configuration file, device string and dtype", cpu=True),
    CheckSpec("software", "PyTorch, CUDA build, cuDNN, driver compatibility", cpu=True),
    CheckSpec("inventory", "device counts and the configured index", cpu=False),
    CheckSpec("identity", "cuda:N mapped to the physical GPU (UUID, PCI)", cpu=False),
    CheckSpec("contention", "other processes, compute/persistence/MIG mode", cpu=False),
    CheckSpec("memory_health", "ECC, retired pages, row remapping, recovery action", cpu=False),
    CheckSpec("memtest", "write/read-back memory patterns", cpu=True),
    CheckSpec("compute", "matmul repeatability and accuracy per dtype", cpu=True),
    CheckSpec("under_load", "clocks, temperature, PCIe link and XIDs during a burn", cpu=False),
    CheckSpec("perf_floor", "matmul and memory bandwidth against siblings and history", cpu=True),
    CheckSpec("interconnect", "host<->device and peer copy bandwidth", cpu=False),
)
CHECK_NAMES: tuple[str, ...] = tuple(c.name for c in CHECKS)


def check_spec(name: str) -> CheckSpec:
    for spec in CHECKS:
        if spec.name == name:
            return spec
    msg = f"unknown check {name!r}: expected one of {', '.join(CHECK_NAMES)}"
    raise ValueError(msg)


def readings_dict(reading: Any) -> dict[str, Any]:
    """A reading dataclass as a plain dict (nested dataclasses and tuples included)."""
    if hasattr(reading, "__dataclass_fields__"):
        return {f.name: readings_dict(getattr(reading, f.name)) for f in fields(reading)}
    if isinstance(reading, (list, tuple)):
        return [readings_dict(r) for r in reading]  # type: ignore[return-value]
    if isinstance(reading, Mapping):
        return {str(k): readings_dict(v) for k, v in reading.items()}
    if isinstance(reading, float) and reading != reading:  # NaN is not JSON
        return None  # type: ignore[return-value]
    return reading  # type: ignore[no-any-return]


@dataclass
class _Findings:
    """Collects the issues one decision finds; the verdict is the worst of them."""

    issues: list[tuple[Verdict, str, str]] = field(default_factory=list)  # (verdict, what, remedy)
    notes: list[str] = field(default_factory=list)

    def add(self, verdict: Verdict, what: str, remedy: str = "") -> None:
        self.issues.append((verdict, what, remedy))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def result(self, check: str, device: str, ok_text: str, **kw: Any) -> CheckResult:
        verdict = worst([v for v, _, _ in self.issues]) if self.issues else Verdict.PASS
        bad = sorted(self.issues, key=lambda i: -_RANK[i[0]])
        parts = [f"{v.value}: {w}" if len(bad) > 1 else w for v, w, _ in bad] or [ok_text]
        message = "; ".join(parts + self.notes)
        remedies = []
        for _, _, remedy in bad:
            if remedy and remedy not in remedies:
                remedies.append(remedy)
        return CheckResult(check, device, verdict, message=message, remedy=" ".join(remedies), **kw)


def skipped(check: str, device: str, reason: str, remedy: str = "") -> CheckResult:
    """A SKIP that says why (the reason names what is missing)."""
    return CheckResult(check, device, Verdict.SKIP, message=reason, remedy=remedy)


def _gib(n: int | float | None) -> str:
    """Bytes as MiB or GiB text (N/A for None)."""
    if n is None:
        return "N/A"
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


# --- 1. configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigReading:
    """The effective configuration as it concerns one device."""

    device: str  # canonical, e.g. "cuda:1"
    device_source: str  # where the device came from ("./dl.config.sdn:2:9", "command line", "default")
    files: tuple[str, ...]  # configuration files read, lowest precedence first
    dtype: str
    dtype_problem: str | None  # why dtype is unusable on the device; None when usable or unknown
    device_problem: str | None  # the device itself is unusable (decided by the inventory check)
    warnings: tuple[str, ...] = ()


def decide_config(r: ConfigReading) -> CheckResult:
    """PASS when a file was found and valid and the dtype works on the device; WARN for defaults-only runs."""
    f = _Findings()
    if not r.files:
        f.add(
            Verdict.WARN,
            "no dl.config.sdn found (looked in ./, --config/GPUBENCH_CONFIG, ~/.simple/, "
            "~/.config/gpubench/); "
            "built-in defaults used",
            "create ./dl.config.sdn (e.g. `dl:` / `  device: cuda:1`) or pass --config FILE.",
        )
    if r.dtype_problem:
        f.add(
            Verdict.FAIL, f"dtype {r.dtype} on {r.device}: {r.dtype_problem}", "set dl.dtype to f32 or f16."
        )
    for warning in r.warnings:
        f.note(f"warning: {warning}")
    where = ", ".join(r.files) if r.files else "defaults"
    dtype_text = (
        f"dtype {r.dtype} not checked: {r.device} unusable (see inventory)"
        if r.device_problem
        else f"dtype {r.dtype} usable"
    )
    return f.result(
        "config",
        r.device,
        f"valid ({where}); device {r.device} from {r.device_source}; {dtype_text}",
        value=where,
        threshold="file found, valid",
        readings=readings_dict(r),
    )


# --- 2. software stack ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SoftwareStack:
    """PyTorch and the CUDA pieces under it. ``driver_cuda`` is the newest CUDA the driver supports
    ("12.4").
    """

    torch_version: str | None
    torch_error: str | None
    cuda_build: str | None  # torch.version.cuda
    hip_build: str | None
    cudnn_version: int | None
    driver_version: str | None  # nvidia-smi --query-gpu=driver_version
    driver_cuda: str | None  # nvidia-smi's "CUDA Version" (nvmlSystemGetCudaDriverVersion)
    driver_error: str | None = None


def _major_minor(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        parts = [int(p) for p in str(text).split(".")[:2]]
    except ValueError:
        return None
    return (parts[0], parts[1] if len(parts) > 1 else 0)


def decide_software(r: SoftwareStack, device: str) -> CheckResult:
    """FAIL without PyTorch, without CUDA support for a GPU device, or with a driver too old for the build.

    CUDA minor-version compatibility lets a 12.x driver run any 12.y build, so an older minor is a WARN
    (PTX JIT of newer code can still fail); an older major is a FAIL.
    """
    f = _Findings()
    value = f"torch {r.torch_version or 'missing'}"
    if r.torch_version is None:
        f.add(
            Verdict.FAIL,
            f"PyTorch is not importable ({r.torch_error})",
            "pip install torch in this environment.",
        )
        return f.result(
            "software", device, "", value=value, threshold="torch importable", readings=readings_dict(r)
        )
    build = r.cuda_build or (f"ROCm {r.hip_build}" if r.hip_build else None)
    value += f", CUDA build {build or 'none (CPU-only)'}, cuDNN {r.cudnn_version or 'N/A'}"
    if r.driver_version:
        value += f", driver {r.driver_version} (CUDA {r.driver_cuda or 'N/A'})"
    threshold = "driver CUDA >= build CUDA"
    if device == "cpu":
        return f.result(
            "software",
            device,
            "PyTorch usable on cpu",
            value=value,
            threshold="torch importable",
            readings=readings_dict(r),
        )
    if r.cuda_build is None and r.hip_build is None:
        f.add(
            Verdict.FAIL,
            f"this PyTorch build ({r.torch_version}) has no CUDA support, so {device} cannot exist",
            "install a CUDA build of PyTorch matching your driver, or verify with --device cpu.",
        )
    elif r.cuda_build is not None:
        build_v, driver_v = _major_minor(r.cuda_build), _major_minor(r.driver_cuda)
        if r.driver_version is None or driver_v is None:
            f.add(
                Verdict.FAIL,
                f"no NVIDIA driver found for CUDA {r.cuda_build} ({r.driver_error or 'NVML not readable'})",
                "install the NVIDIA driver (`nvidia-smi` must work); in a container start it with "
                "--gpus all.",
            )
        elif build_v is not None and driver_v[0] < build_v[0]:
            f.add(
                Verdict.FAIL,
                f"driver {r.driver_version} supports CUDA {r.driver_cuda}, older than PyTorch's CUDA "
                f"{r.cuda_build}",
                f"upgrade the NVIDIA driver to one supporting CUDA {r.cuda_build}, or install a "
                "PyTorch build for "
                f"CUDA {r.driver_cuda}.",
            )
        elif build_v is not None and driver_v < build_v:
            f.add(
                Verdict.WARN,
                f"driver CUDA {r.driver_cuda} < build CUDA {r.cuda_build}: runs through minor-version "
                "compatibility; kernels needing PTX JIT may fail",
                f"upgrade the driver to one supporting CUDA {r.cuda_build}.",
            )
    return f.result(
        "software",
        device,
        "the driver supports PyTorch's CUDA build",
        value=value,
        threshold=threshold,
        readings=readings_dict(r),
    )


# --- 3. inventory ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    """How many GPUs PyTorch and NVML see, and whether the configured one is usable."""

    device: str
    torch_count: int
    nvml_count: int | None  # nvidia-smi -L | wc -l (ignores CUDA_VISIBLE_DEVICES)
    cuda_visible_devices: str | None
    unusable_code: str | None = None  # devices.Unusable.code
    unusable_reason: str | None = None
    unusable_remedy: str | None = None
    nvml_error: str | None = None


def decide_inventory(r: Inventory) -> CheckResult:
    """FAIL with the exact reason when the configured device is unusable; WARN when NVML sees GPUs CUDA
    does not.
    """
    f = _Findings()
    cvd = "unset" if r.cuda_visible_devices is None else repr(r.cuda_visible_devices)
    value = f"torch {r.torch_count}, NVML {r.nvml_count if r.nvml_count is not None else 'N/A'}, CVD {cvd}"
    if r.unusable_reason:
        f.add(Verdict.FAIL, f"{r.device} unusable: {r.unusable_reason}", r.unusable_remedy or "")
    elif r.nvml_count is not None and r.cuda_visible_devices is None and r.nvml_count > r.torch_count:
        f.add(
            Verdict.WARN,
            f"NVML sees {r.nvml_count} GPU(s) but PyTorch only {r.torch_count} with "
            "CUDA_VISIBLE_DEVICES unset: "
            "a GPU may be in a bad state or hidden",
            "compare `nvidia-smi -L` with `gpubench info`; check `dmesg` for Xid errors on the missing GPU.",
        )
    if r.nvml_count is None and not r.unusable_reason:
        f.note(f"NVML count N/A ({r.nvml_error or 'not readable'})")
    return f.result(
        "inventory",
        r.device,
        f"{r.device} present",
        value=value,
        threshold=f"{r.device} exists",
        readings=readings_dict(r),
    )


# --- 4. identity ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuIdentity:
    """``cuda:N`` as PyTorch sees it, and the NVML device with the same UUID. Memory in bytes.

    PCI addresses are (domain, bus, device) integers; nvidia-smi prints them as ``00000000:65:00.0``.
    """

    device: str
    torch_index: int
    torch_name: str
    torch_total_memory: int
    uuid: str | None  # torch.cuda.get_device_properties(i).uuid in NVML form
    torch_pci: tuple[int, int, int] | None
    nvml_found: bool  # nvmlDeviceGetHandleByUUID succeeded
    nvml_index: int | None = None  # nvidia-smi's index (PCI order)
    nvml_name: str | None = None
    nvml_total_memory: int | None = None  # nvidia-smi --query-gpu=memory.total
    nvml_pci: tuple[int, int, int] | None = None
    nvml_bus_id: str | None = None  # nvidia-smi --query-gpu=pci.bus_id
    cuda_device_order: str | None = None
    cuda_visible_devices: str | None = None
    visible_models: tuple[str, ...] = ()  # names of all GPUs PyTorch sees
    nvml_error: str | None = None


def pci_text(pci: tuple[int, int, int] | None) -> str:
    return "N/A" if pci is None else f"{pci[0]:08X}:{pci[1]:02X}:{pci[2]:02X}.0"


def decide_identity(r: GpuIdentity, memory_tolerance: float = 0.03) -> CheckResult:
    """FAIL when the UUID does not lead to an NVML device at the same PCI address with the same name.

    Total memory differs slightly by design (the driver reserves some), so it WARNs only beyond
    ``memory_tolerance`` (a share). A numbering different from nvidia-smi's WARNs unless CUDA_VISIBLE_DEVICES
    explains it.
    """
    f = _Findings()
    where = f"{r.device} = nvidia-smi GPU {r.nvml_index if r.nvml_index is not None else '?'}"
    value = f"{where}, {r.torch_name}, {r.uuid or 'no UUID'}, PCI {r.nvml_bus_id or pci_text(r.torch_pci)}"
    kw: dict[str, Any] = {
        "value": value,
        "threshold": "UUID, PCI, name, memory agree",
        "readings": readings_dict(r),
    }
    if r.uuid is None:
        return skipped(
            "identity",
            r.device,
            "PyTorch gives no UUID for this device (PyTorch older than 2.0?): cannot map it to NVML",
            "upgrade PyTorch.",
        )
    if not r.nvml_found:
        if r.nvml_error and "NVML not available" in r.nvml_error:
            return CheckResult(
                "identity",
                r.device,
                Verdict.SKIP,
                message=f"{r.nvml_error}; cannot cross-check {r.device} ({r.torch_name}, {r.uuid})",
                **kw,
            )
        f.add(
            Verdict.FAIL,
            f"NVML knows no GPU with {r.device}'s UUID {r.uuid} ({r.nvml_error or 'lookup failed'})",
            "the driver and the CUDA runtime disagree: check `nvidia-smi -L`; a MIG slice or a GPU "
            "fallen off the "
            "bus shows this; reboot or reset the GPU.",
        )
        return f.result("identity", r.device, "", **kw)
    if r.torch_pci is not None and r.nvml_pci is not None and r.torch_pci != r.nvml_pci:
        f.add(
            Verdict.FAIL,
            f"PCI address mismatch: PyTorch {pci_text(r.torch_pci)}, NVML {pci_text(r.nvml_pci)} for "
            "the same UUID",
            "report this driver inconsistency; reset the GPU (nvidia-smi -r) or reboot.",
        )
    if r.nvml_name is not None and r.nvml_name.strip().lower() != r.torch_name.strip().lower():
        f.add(
            Verdict.FAIL,
            f"name mismatch: PyTorch {r.torch_name!r}, NVML {r.nvml_name!r}",
            "check `nvidia-smi -L` against `gpubench info`.",
        )
    if r.nvml_total_memory:
        share = abs(r.nvml_total_memory - r.torch_total_memory) / r.nvml_total_memory
        if share > memory_tolerance:
            f.add(
                Verdict.WARN,
                f"total memory differs by {share:.1%} (PyTorch {_gib(r.torch_total_memory)}, NVML "
                f"{_gib(r.nvml_total_memory)}; tolerance {memory_tolerance:.0%})",
                "check for MIG or a vGPU profile (nvidia-smi -q -d MEMORY).",
            )
    if r.nvml_index is not None and r.nvml_index != r.torch_index:
        if r.cuda_visible_devices is not None:
            f.note(
                f"numbering differs from nvidia-smi's because CUDA_VISIBLE_DEVICES={r.cuda_visible_devices!r}"
            )
        else:
            mixed = len(set(r.visible_models)) > 1
            f.add(
                Verdict.WARN,
                f"PyTorch's {r.device} is nvidia-smi's GPU {r.nvml_index} "
                f"({r.nvml_bus_id or pci_text(r.nvml_pci)})"
                + (
                    f": CUDA_DEVICE_ORDER is {r.cuda_device_order or 'unset'} on a machine with "
                    "different GPU models"
                    if mixed
                    else ""
                ),
                "set CUDA_DEVICE_ORDER=PCI_BUS_ID so that cuda:N matches nvidia-smi's numbering, or "
                "choose the "
                "device by what this row shows.",
            )
    return f.result("identity", r.device, f"{value}; UUID and PCI agree", **kw)


# --- 5. memory health -----------------------------------------------------------------------------

RECOVERY_ACTIONS = {
    0: "none",
    1: "GPU reset",
    2: "node reboot",
    3: "drain peer-to-peer",
    4: "drain peer-to-peer and reset",
    5: "recover IMEX domain",
    6: "PCIe bus reset",
    7: "system reboot",
}


@dataclass(frozen=True)
class MemoryHealth:
    """NVML's memory error state (None: not supported on this GPU, e.g. consumer GPUs without ECC).

    nvidia-smi fields: ``ecc.mode.current``, ``ecc.errors.uncorrected.volatile.total``,
    ``retired_pages.pending``,
    ``remapped_rows.correctable/uncorrectable/pending/failure``.
    """

    ecc_current: bool | None = None
    ecc_pending: bool | None = None
    volatile_uncorrected: int | None = None  # since the driver loaded
    retired_pages_pending: bool | None = None  # pre-Ampere page retirement
    remapped_correctable: int | None = None  # Ampere+ row remapping
    remapped_uncorrectable: int | None = None
    remap_pending: bool | None = None
    remap_failure: bool | None = None
    recovery_action: int | None = None  # NVML_FI_DEV_GET_GPU_RECOVERY_ACTION

    def all_na(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def decide_memory_health(
    r: MemoryHealth, device: str, remap_uncorrectable_limit: int = 512, baseline: MemoryHealth | None = None
) -> CheckResult:
    """DCGM's rules: a pending retirement/remap FAILs, a remap failure FAILs, uncorrectable remaps at
    ``remap_uncorrectable_limit`` or more FAIL, any volatile uncorrected ECC error (and any increase
    during this
    run, measured against ``baseline``) FAILs, and a recovery action other than "none" FAILs.
    """
    kw: dict[str, Any] = {
        "readings": readings_dict({"now": r, "baseline": baseline}),
        "threshold": f"pending 0, failure no, uncorrectable remaps < {remap_uncorrectable_limit}, "
        "uncorrected ECC 0",
    }
    if r.all_na():
        return CheckResult(
            "memory_health",
            device,
            Verdict.SKIP,
            message="this GPU reports no ECC, retired-page or row-remap state (consumer GPUs do not): "
            "memory errors are not visible to the driver; the memtest check covers what it can",
            **kw,
        )
    f = _Findings()
    reset = "drain the GPU and reset it (nvidia-smi -r -i <index>) or reboot; if it persists, RMA the GPU."
    if r.retired_pages_pending:
        f.add(Verdict.FAIL, "page retirement pending (takes effect at the next GPU reset)", reset)
    if r.remap_pending:
        f.add(Verdict.FAIL, "row remapping pending (takes effect at the next GPU reset)", reset)
    if r.remap_failure:
        f.add(
            Verdict.FAIL,
            "row remapping failed: a memory bank ran out of spare rows",
            "take the GPU out of service and RMA it.",
        )
    if r.remapped_uncorrectable is not None and r.remapped_uncorrectable >= remap_uncorrectable_limit:
        f.add(
            Verdict.FAIL,
            f"{r.remapped_uncorrectable} rows remapped for uncorrectable errors "
            f"(limit {remap_uncorrectable_limit})",
            "take the GPU out of service and RMA it.",
        )
    if r.volatile_uncorrected is not None and r.volatile_uncorrected > 0:
        grew = ""
        if baseline is not None and baseline.volatile_uncorrected is not None:
            delta = r.volatile_uncorrected - baseline.volatile_uncorrected
            grew = f", {delta} during this run" if delta > 0 else ", none during this run"
        f.add(
            Verdict.FAIL,
            f"{r.volatile_uncorrected} uncorrected ECC error(s) since the driver loaded{grew}",
            reset,
        )
    if r.recovery_action not in (None, 0):
        action = RECOVERY_ACTIONS.get(int(r.recovery_action), f"action {r.recovery_action}")
        f.add(
            Verdict.FAIL,
            f"NVML asks for a recovery action: {action}",
            f"perform the {action} (see NVIDIA's GPU memory error management guide).",
        )
    if r.ecc_current is False:
        f.add(
            Verdict.WARN,
            "ECC is disabled: memory errors go undetected",
            "enable ECC: nvidia-smi -e 1 -i <index>, then reset the GPU.",
        )
    if r.ecc_pending is not None and r.ecc_current is not None and r.ecc_pending != r.ecc_current:
        f.add(
            Verdict.WARN,
            f"ECC mode change pending ({'on' if r.ecc_pending else 'off'} after the next reset)",
            "reset the GPU or reboot to apply the pending ECC mode.",
        )
    missing = [fl.name for fl in fields(r) if getattr(r, fl.name) is None]
    if missing:
        f.note("N/A: " + ", ".join(missing))
    value = (
        f"ECC {'on' if r.ecc_current else 'off' if r.ecc_current is False else 'N/A'}, uncorrected "
        f"{r.volatile_uncorrected if r.volatile_uncorrected is not None else 'N/A'}, remaps unc "
        f"{r.remapped_uncorrectable if r.remapped_uncorrectable is not None else 'N/A'}"
    )
    return f.result(
        "memory_health", device, "no pending retirements or remaps, no uncorrected errors", value=value, **kw
    )


# --- 6. memory test -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatternResult:
    """One pattern of the memory test: ``words`` 32-bit words written and read back, ``mismatches`` of
    them wrong.
    """

    name: str
    words: int
    mismatches: int
    first_bad_word: int | None = None
    bad_bits: int = 0  # OR of (read XOR expected) over the mismatching words: which bit lanes failed
    seconds: float = 0.0


@dataclass(frozen=True)
class MemtestReading:
    """The memory test on one device. Bytes, seconds."""

    device: str
    bytes_tested: int
    patterns: tuple[PatternResult, ...]
    patterns_planned: int
    seconds: float
    time_bound_s: float
    error: str | None = None  # allocation failed, device lost, ...

    @property
    def mismatches(self) -> int:
        return sum(p.mismatches for p in self.patterns)


def decide_memtest(r: MemtestReading) -> CheckResult:
    """FAIL on any mismatching word; SKIP when nothing could be tested; a time-bounded run notes what
    it covered.
    """
    kw: dict[str, Any] = {
        "value": r.mismatches,
        "threshold": 0,
        "unit": "bad words",
        "readings": readings_dict(r),
    }
    if r.error and not r.patterns:
        return CheckResult(
            "memtest",
            r.device,
            Verdict.SKIP,
            message=f"memory test could not run: {r.error}",
            remedy="free device memory (see the contention check) or lower verify.memtest_fraction.",
            **kw,
        )
    f = _Findings()
    for p in r.patterns:
        if p.mismatches:
            f.add(
                Verdict.FAIL,
                f"{p.name}: {p.mismatches} of {p.words} words read back wrong (first at byte "
                f"{(p.first_bad_word or 0) * 4}, bit lanes 0x{p.bad_bits:08x})",
                "run the long level (--level long); if mismatches repeat, take the GPU out of service "
                "and RMA it.",
            )
    if r.error:
        f.add(Verdict.WARN, f"stopped early: {r.error}", "rerun; check dmesg for Xid errors.")
    if len(r.patterns) < r.patterns_planned:
        f.note(
            f"time bound {r.time_bound_s:g} s reached after {len(r.patterns)} of {r.patterns_planned} "
            "patterns"
        )
    ok = f"{len(r.patterns)} patterns over {_gib(r.bytes_tested)} read back intact in {r.seconds:.1f} s"
    return f.result("memtest", r.device, ok, **kw)


# --- 7. compute correctness -----------------------------------------------------------------------

#: Normwise relative error ||C - C64|| / ||C64|| allowed per dtype for n x n random-normal matmuls, against a
#: float64 product of the same (already rounded) inputs. Unit roundoff: f32 6e-8, tf32 4.9e-4, bf16 3.9e-3,
#: f16 4.9e-4; the bounds leave room for accumulation order and reduced-precision reductions.
COMPUTE_TOLERANCE: dict[str, float] = {"f32": 1e-5, "tf32": 5e-3, "bf16": 1.5e-2, "f16": 1e-2, "f64": 1e-12}


@dataclass(frozen=True)
class DtypeCompute:
    """Repeated n x n matmuls in one dtype: bit-identical repeats, error against float64, non-finite count."""

    dtype: str
    n: int
    repeats: int
    identical: bool
    rel_error: float | None
    tolerance: float
    nonfinite: int
    skipped: str | None = None


@dataclass(frozen=True)
class ComputeReading:
    device: str
    results: tuple[DtypeCompute, ...]
    error: str | None = None


def decide_compute(r: ComputeReading) -> CheckResult:
    """FAIL on a NaN/Inf, a repeat that is not bit-identical, or an error above the dtype's tolerance."""
    f = _Findings()
    ran = [d for d in r.results if d.skipped is None]
    worst_ratio = max((d.rel_error / d.tolerance for d in ran if d.rel_error is not None), default=None)
    kw: dict[str, Any] = {
        "value": None if worst_ratio is None else round(worst_ratio, 4),
        "threshold": 1.0,
        "unit": "x tolerance",
        "readings": readings_dict(r),
    }
    if not ran:
        reason = r.error or "; ".join(f"{d.dtype}: {d.skipped}" for d in r.results) or "no dtype ran"
        return CheckResult(
            "compute", r.device, Verdict.SKIP, message=f"compute test could not run: {reason}", **kw
        )
    remedy = (
        "rerun; if it repeats, the GPU computes wrongly: check clocks/temperature (under_load) and RMA it."
    )
    for d in ran:
        if d.nonfinite:
            f.add(Verdict.FAIL, f"{d.dtype}: {d.nonfinite} NaN/Inf in products of finite inputs", remedy)
        if not d.identical:
            f.add(
                Verdict.FAIL,
                f"{d.dtype}: {d.repeats} repeats of the same product are not bit-identical",
                remedy,
            )
        if d.rel_error is not None and d.rel_error > d.tolerance:
            f.add(
                Verdict.FAIL,
                f"{d.dtype}: error {d.rel_error:.2e} vs float64 above tolerance {d.tolerance:.0e}",
                remedy,
            )
    if r.error:
        f.add(Verdict.WARN, f"stopped early: {r.error}", "rerun the check.")
    for d in r.results:
        if d.skipped:
            f.note(f"{d.dtype} skipped: {d.skipped}")
    detail = ", ".join(f"{d.dtype} {d.rel_error:.1e}" for d in ran if d.rel_error is not None)
    return f.result("compute", r.device, f"bit-identical repeats, errors vs float64: {detail}", **kw)


# --- 8. under load --------------------------------------------------------------------------------


class ClockEventReasons(int):
    """NVML's clock event (throttle) reason bitmask, ``nvidia-smi --query-gpu=clocks_event_reasons.active``.

    Bit values from nvml.h (``nvmlClocksEventReason*``; the older names are ``nvmlClocksThrottleReason*``).
    """

    GPU_IDLE = 0x1
    APPLICATIONS_CLOCKS_SETTING = 0x2
    SW_POWER_CAP = 0x4
    HW_SLOWDOWN = 0x8
    SYNC_BOOST = 0x10
    SW_THERMAL_SLOWDOWN = 0x20
    HW_THERMAL_SLOWDOWN = 0x40
    HW_POWER_BRAKE_SLOWDOWN = 0x80
    DISPLAY_CLOCK_SETTING = 0x100

    NAMES: Mapping[int, str] = {
        0x1: "gpu_idle",
        0x2: "applications_clocks_setting",
        0x4: "sw_power_cap",
        0x8: "hw_slowdown",
        0x10: "sync_boost",
        0x20: "sw_thermal_slowdown",
        0x40: "hw_thermal_slowdown",
        0x80: "hw_power_brake_slowdown",
        0x100: "display_clock_setting",
    }
    #: Reasons that mean the GPU is being held back by heat or by its power delivery: FAIL under load.
    FAILING = HW_SLOWDOWN | SW_THERMAL_SLOWDOWN | HW_THERMAL_SLOWDOWN | HW_POWER_BRAKE_SLOWDOWN
    #: The software power cap: the board reached its power limit (common under a full burn): WARN.
    WARNING = SW_POWER_CAP

    def names(self) -> tuple[str, ...]:
        known = tuple(name for bit, name in self.NAMES.items() if self & bit)
        unknown = int(self) & ~sum(self.NAMES)
        return (*known, f"unknown_0x{unknown:x}") if unknown else known

    def __repr__(self) -> str:
        return f"ClockEventReasons(0x{int(self):x}: {', '.join(self.names()) or 'none'})"


@dataclass(frozen=True)
class PcieLink:
    """PCIe link state: ``pcie.link.gen.current``/``.width.current`` and the maxima (``pcie.link.gen.max``,
    ``pcie.link.width.max``: the best this GPU and slot can do; ``pcie.link.gen.gpumax``: the GPU alone)."""

    gen: int | None = None
    width: int | None = None
    max_gen: int | None = None
    max_width: int | None = None
    gpu_max_gen: int | None = None


#: Usable GB/s per lane and direction after line coding (8b/10b for gen 1-2, 128b/130b for gen 3-5,
#: FLIT gen 6).
PCIE_LANE_GBPS: Mapping[int, float] = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


def pcie_gbps(gen: int | None, width: int | None) -> float | None:
    """What a PCIe link can carry per direction, GB/s (None when the link state is N/A)."""
    if gen is None or width is None or gen not in PCIE_LANE_GBPS:
        return None
    return PCIE_LANE_GBPS[gen] * width


@dataclass(frozen=True)
class LoadReading:
    """Telemetry sampled from NVML during a matmul burn. Temperatures degC, seconds, TFLOP/s.

    ``reasons_seen`` is the OR of the clock event reasons over all samples; ``reason_samples`` counts
    the samples
    in which each failing/warning reason was active. ``link`` is the narrowest link seen under load.
    ``xid_events`` is None when XID events cannot be registered (unsupported, or no permission).
    """

    device: str
    seconds: float
    samples: int
    reasons_seen: int | None
    reason_samples: Mapping[str, int] = field(default_factory=dict)
    peak_temp_c: int | None = None
    slowdown_temp_c: int | None = (
        None  # nvidia-smi temperature.gpu.tlimit basis: NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
    )
    shutdown_temp_c: int | None = None
    gpu_max_temp_c: int | None = None  # NVML_TEMPERATURE_THRESHOLD_GPU_MAX: max operating temperature
    link: PcieLink = field(default_factory=PcieLink)
    replay_before: int | None = None  # nvmlDeviceGetPcieReplayCounter
    replay_after: int | None = None
    xid_events: tuple[int, ...] | None = None
    tflops: float | None = None
    nonfinite: bool = False
    error: str | None = None
    nvml_error: str | None = None


def decide_under_load(
    r: LoadReading, temp_margin_c: float = 5.0, pcie_min_width_fraction: float = 1.0
) -> CheckResult:
    """FAIL on thermal/hardware/power-brake clock events, a temperature at its limit, a link at half width or
    less, XID events or a NaN during the burn; WARN on the software power cap, a temperature within
    ``temp_margin_c``
    of its limit, a link trained down in generation or below ``pcie_min_width_fraction`` of its width,
    and PCIe
    replays.
    """
    kw: dict[str, Any] = {
        "readings": readings_dict(r),
        "unit": "degC",
        "value": r.peak_temp_c,
        "threshold": r.gpu_max_temp_c or r.slowdown_temp_c,
    }
    if r.error and r.samples == 0:
        return CheckResult(
            "under_load", r.device, Verdict.SKIP, message=f"burn could not run: {r.error}", **kw
        )
    f = _Findings()
    cooling = (
        "check cooling (fans, airflow, dust, room temperature) and the power supply; "
        "see nvidia-smi -q -d PERFORMANCE."
    )
    if r.nonfinite:
        f.add(
            Verdict.FAIL, "the burn produced NaN/Inf from finite inputs", "the GPU computes wrongly: RMA it."
        )
    if r.reasons_seen is not None:
        reasons = ClockEventReasons(r.reasons_seen)
        bad = ClockEventReasons(reasons & ClockEventReasons.FAILING).names()
        if bad:
            counts = ", ".join(f"{n} in {r.reason_samples.get(n, '?')}/{r.samples} samples" for n in bad)
            f.add(Verdict.FAIL, f"clocks held back under load: {counts}", cooling)
        if reasons & ClockEventReasons.WARNING:
            n = r.reason_samples.get("sw_power_cap", "?")
            f.add(
                Verdict.WARN,
                f"software power cap active in {n}/{r.samples} samples (board at its power limit)",
                "normal at full load if brief; else check the power limit: nvidia-smi -q -d POWER.",
            )
    limit = r.gpu_max_temp_c or r.slowdown_temp_c
    if r.peak_temp_c is not None and limit is not None:
        if r.peak_temp_c >= limit:
            f.add(
                Verdict.FAIL, f"peak temperature {r.peak_temp_c} degC reached the limit {limit} degC", cooling
            )
        elif r.peak_temp_c >= limit - temp_margin_c:
            f.add(
                Verdict.WARN,
                f"peak temperature {r.peak_temp_c} degC within {temp_margin_c:g} degC of the limit "
                f"{limit} degC",
                cooling,
            )
    elif r.peak_temp_c is None:
        f.note("temperature N/A")
    link = r.link
    if link.width is not None and link.max_width:
        if link.width * 2 <= link.max_width:
            f.add(
                Verdict.FAIL,
                f"PCIe link x{link.width} under load, the link allows x{link.max_width}",
                "reseat the GPU or move it to a full-width slot; check the riser and BIOS lane settings.",
            )
        elif link.width < link.max_width * pcie_min_width_fraction:
            f.add(
                Verdict.WARN,
                f"PCIe link x{link.width} under load, below x{link.max_width}",
                "reseat the GPU; check the slot's lane wiring in the board manual.",
            )
    if link.gen is not None and link.max_gen is not None and link.gen < link.max_gen:
        f.add(
            Verdict.WARN,
            f"PCIe link gen {link.gen} under load, the link allows gen {link.max_gen}",
            "reseat the GPU; check BIOS PCIe speed settings and the riser.",
        )
    if link.gpu_max_gen and link.max_gen and link.max_gen < link.gpu_max_gen:
        f.note(f"slot limits the link to gen {link.max_gen} (GPU supports gen {link.gpu_max_gen})")
    if r.replay_before is not None and r.replay_after is not None and r.replay_after > r.replay_before:
        f.add(
            Verdict.WARN,
            f"{r.replay_after - r.replay_before} PCIe replays during the burn (link errors)",
            "reseat the GPU and its riser; check `nvidia-smi -q -d PCIE` over time.",
        )
    if r.xid_events:
        f.add(
            Verdict.FAIL,
            f"XID event(s) during the burn: {', '.join(map(str, r.xid_events))}",
            "look the XID up in NVIDIA's XID catalogue; check dmesg; reset the GPU.",
        )
    elif r.xid_events is None:
        f.note("XID events N/A")
    if r.nvml_error:
        f.note(f"telemetry N/A: {r.nvml_error}")
    if r.error:
        f.add(Verdict.WARN, f"burn stopped early: {r.error}", "rerun the check.")
    perf = f", {r.tflops:.1f} TFLOP/s" if r.tflops is not None else ""
    ok = (
        f"{r.seconds:.1f} s burn, {r.samples} samples: no slowdown events, peak "
        f"{r.peak_temp_c if r.peak_temp_c is not None else 'N/A'} degC, PCIe gen {link.gen or 'N/A'} "
        f"x{link.width or 'N/A'}{perf}"
    )
    if r.samples == 0 and r.nvml_error:
        return CheckResult(
            "under_load",
            r.device,
            Verdict.SKIP,
            message=f"burn ran but telemetry could not be read: {r.nvml_error}",
            **kw,
        )
    return f.result("under_load", r.device, ok, **kw)


# --- 9. contention and mode -----------------------------------------------------------------------

COMPUTE_MODES = {0: "default", 1: "exclusive_thread", 2: "prohibited", 3: "exclusive_process"}


@dataclass(frozen=True)
class ProcessInfo:
    """A process with a context on the GPU (``nvidia-smi
    --query-compute-apps=pid,process_name,used_memory``).
    """

    pid: int
    name: str | None
    used_memory: int | None  # bytes; None on Windows WDDM or without permission


@dataclass(frozen=True)
class ContentionReading:
    """Other processes on the device and its modes. ``processes`` excludes this process."""

    device: str
    processes: tuple[ProcessInfo, ...] | None
    compute_mode: int | None = None  # nvidia-smi compute_mode
    persistence: bool | None = None  # nvidia-smi persistence_mode
    mig_current: bool | None = None  # nvidia-smi mig.mode.current
    mig_pending: bool | None = None


def decide_contention(r: ContentionReading) -> CheckResult:
    """WARN when other processes share the GPU or MIG is on; FAIL when the compute mode prohibits compute."""
    f = _Findings()
    procs = r.processes
    value = "N/A" if procs is None else len(procs)
    kw: dict[str, Any] = {
        "value": value,
        "threshold": 0,
        "unit": "other processes",
        "readings": readings_dict(r),
    }
    if procs:
        who = ", ".join(f"pid {p.pid} ({p.name or '?'}, {_gib(p.used_memory)})" for p in procs[:5])
        more = f" and {len(procs) - 5} more" if len(procs) > 5 else ""
        f.add(
            Verdict.WARN,
            f"{len(procs)} other process(es) on {r.device}: {who}{more}",
            "stop them or pick another GPU; measurements now share the GPU with them.",
        )
    elif procs is None:
        f.note("process list N/A")
    mode = COMPUTE_MODES.get(r.compute_mode, str(r.compute_mode)) if r.compute_mode is not None else None
    if r.compute_mode == 2:
        f.add(
            Verdict.FAIL,
            "compute mode is prohibited: no process may use this GPU",
            "nvidia-smi -c DEFAULT -i <index> (as root).",
        )
    elif r.compute_mode in (1, 3) and procs:
        f.add(
            Verdict.WARN,
            f"compute mode {mode} with another process on the GPU: this one may be refused",
            "wait for the other process or use nvidia-smi -c DEFAULT.",
        )
    if r.mig_current:
        f.add(
            Verdict.WARN,
            "MIG mode is on: whole-GPU measurements do not apply to a MIG slice",
            "disable MIG (nvidia-smi -mig 0) for whole-GPU verification, or verify the MIG instance.",
        )
    if r.mig_pending is not None and r.mig_current is not None and r.mig_pending != r.mig_current:
        f.note("MIG mode change pending a GPU reset")
    if r.persistence is False:
        f.note("persistence mode off (first CUDA call of each process is slower; nvidia-smi -pm 1)")
    ok = (
        f"no other processes; compute mode {mode or 'N/A'}, persistence "
        f"{'on' if r.persistence else 'off' if r.persistence is False else 'N/A'}, MIG "
        f"{'on' if r.mig_current else 'off' if r.mig_current is False else 'N/A'}"
    )
    return f.result("contention", r.device, ok, **kw)


# --- 10. performance floor ------------------------------------------------------------------------


@dataclass(frozen=True)
class PerfReading:
    """A matmul and a device-memory copy measured on one device. TFLOP/s; GB/s counts bytes read plus
    written.
    """

    device: str
    uuid: str | None
    name: str
    dtype: str
    n: int  # n x n matmul
    copy_bytes: int
    matmul_tflops: float | None
    bandwidth_gbps: float | None
    level: str = "quick"
    run_id: str | None = None  # set for history entries
    error: str | None = None


def comparable(a: PerfReading, b: PerfReading) -> bool:
    """Same model, dtype, matrix size and copy size: numbers that can be held against each other."""
    return a.name == b.name and a.dtype == b.dtype and a.n == b.n and a.copy_bytes == b.copy_bytes


def decide_perf_floor(
    r: PerfReading,
    siblings: Sequence[PerfReading] = (),
    history: Sequence[PerfReading] = (),
    floor_pct: float = 10.0,
) -> CheckResult:
    """FAIL when matmul TFLOP/s or bandwidth is more than ``floor_pct`` % below the median of same-model
    siblings in this run, or below the median of this GPU's stored history. With nothing to compare:
    PASS with a note.

    On ``cpu`` a shortfall is a WARN: nothing verifies that the host's cores were free (no contention check
    exists for them), so a busy host must not read as a broken one.
    """
    cpu = r.device == "cpu"
    shown = None if r.matmul_tflops is None else round(r.matmul_tflops * (1e3 if cpu else 1.0), 4)
    kw: dict[str, Any] = {
        "value": shown,
        "unit": "GFLOP/s" if cpu else "TFLOP/s",
        "readings": readings_dict({"measured": r, "siblings": list(siblings), "history": list(history)}),
    }
    if r.error or r.matmul_tflops is None:
        return CheckResult(
            "perf_floor",
            r.device,
            Verdict.SKIP,
            message=f"performance could not be measured: {r.error or 'no result'}",
            **kw,
        )
    f = _Findings()
    keep = 1.0 - floor_pct / 100.0
    sib = [s for s in siblings if comparable(r, s) and s.uuid != r.uuid and s.matmul_tflops]
    hist = [h for h in history if comparable(r, h) and h.uuid == r.uuid and h.matmul_tflops]
    floors: list[str] = []
    for label, group in (
        ("same-model siblings in this run", sib),
        (f"this GPU's last {len(hist)} run(s)", hist),
    ):
        if not group:
            continue
        for metric, unit in (("matmul_tflops", "TFLOP/s"), ("bandwidth_gbps", "GB/s")):
            values = [getattr(g, metric) for g in group if getattr(g, metric) is not None]
            mine = getattr(r, metric)
            if not values or mine is None:
                continue
            ref = statistics.median(values)
            floors.append(f"{metric} >= {keep * ref:.4g} {unit}")
            if mine < keep * ref:
                f.add(
                    Verdict.WARN if cpu else Verdict.FAIL,
                    f"{metric.split('_')[0]} {mine:.4g} {unit} is {100 * (1 - mine / ref):.0f}% below "
                    "the median "
                    f"{ref:.4g} {unit} of {label} (floor {floor_pct:g}%)",
                    "check under_load and contention (clocks, power cap, other processes); rerun; a "
                    "GPU that stays "
                    "slow against its siblings needs service.",
                )
    if not sib and not hist:
        f.note("no same-model sibling or stored history to compare with yet (this run becomes the history)")
    bw = f", memory {r.bandwidth_gbps:.4g} GB/s" if r.bandwidth_gbps is not None else ""
    ok = f"matmul {r.dtype} n={r.n}: {r.matmul_tflops:.4g} TFLOP/s{bw}"
    return f.result("perf_floor", r.device, ok, threshold="; ".join(floors) or None, **kw)


# --- 11. interconnect -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PeerReading:
    """Peer access and copy bandwidth from ``src`` to ``dst`` (GB/s)."""

    src: str
    dst: str
    access: bool | None  # torch.cuda.can_device_access_peer
    gbps: float | None
    error: str | None = None


@dataclass(frozen=True)
class InterconnectReading:
    """Pinned host<->device copy bandwidth (GB/s, one direction at a time) and the PCIe link it ran over."""

    device: str
    copy_bytes: int
    h2d_gbps: float | None
    d2h_gbps: float | None
    link: PcieLink = field(default_factory=PcieLink)
    peers: tuple[PeerReading, ...] = ()
    error: str | None = None


def decide_interconnect(r: InterconnectReading, min_fraction: float = 0.5) -> CheckResult:
    """WARN when host/device bandwidth is below ``min_fraction`` of what the current PCIe link carries, or
    when a peer copy fails; peer access the platform does not offer is a note (copies then go through host
    memory).
    """
    allowed = pcie_gbps(r.link.gen, r.link.width)
    kw: dict[str, Any] = {
        "value": None if r.h2d_gbps is None else round(min(r.h2d_gbps, r.d2h_gbps or r.h2d_gbps), 3),
        "threshold": None if allowed is None else round(min_fraction * allowed, 3),
        "unit": "GB/s",
        "readings": readings_dict({**readings_dict(r), "link_gbps": allowed}),
    }
    if r.h2d_gbps is None or r.d2h_gbps is None:
        return CheckResult(
            "interconnect",
            r.device,
            Verdict.SKIP,
            message=f"host/device copies could not be measured: {r.error or 'no result'}",
            **kw,
        )
    f = _Findings()
    if allowed is None:
        f.note("PCIe link N/A (NVLink-C2C or no NVML): bandwidth not compared with a link limit")
    else:
        for label, gbps in (("host->device", r.h2d_gbps), ("device->host", r.d2h_gbps)):
            if gbps < min_fraction * allowed:
                f.add(
                    Verdict.WARN,
                    f"{label} {gbps:.1f} GB/s is {gbps / allowed:.0%} of the gen {r.link.gen} "
                    f"x{r.link.width} link's "
                    f"{allowed:.1f} GB/s (expected >= {min_fraction:.0%})",
                    "check the link (under_load), NUMA placement (run on the GPU's CPU socket: "
                    "nvidia-smi topo -m) "
                    "and IOMMU settings.",
                )
    for p in r.peers:
        if p.error:
            f.add(Verdict.WARN, f"peer copy {p.src}->{p.dst} failed: {p.error}", "check nvidia-smi topo -m.")
        elif p.access is False:
            f.note(f"no peer access {p.src}->{p.dst} (copies staged through host): {p.gbps or 0:.1f} GB/s")
        elif p.gbps is not None:
            f.note(f"peer {p.src}->{p.dst} {p.gbps:.1f} GB/s")
    link = f" over gen {r.link.gen} x{r.link.width} ({allowed:.1f} GB/s)" if allowed is not None else ""
    ok = f"pinned host->device {r.h2d_gbps:.1f} GB/s, device->host {r.d2h_gbps:.1f} GB/s{link}"
    return f.result("interconnect", r.device, ok, **kw)


def short_reason(reason: str, limit: int = 70) -> str:
    """The head of a long reason ("no usable NVIDIA driver or GPU: PyTorch ... found no GPU (...)" -> its
    first clause), for the rows that repeat it."""
    for sep in (": ", " ("):
        head = reason.split(sep, 1)[0]
        if len(head) <= limit and head != reason:
            return head
    return reason if len(reason) <= limit else reason[: limit - 3].rstrip() + "..."


def device_unusable(check: str, device: str, reason: str) -> CheckResult:
    """A check that cannot run because the device is unusable: SKIP naming the reason (inventory FAILs)."""
    return CheckResult(
        check,
        device,
        Verdict.SKIP,
        message=f"{device} unusable: {short_reason(reason)} (see inventory)",
        readings={"unusable_reason": reason},
    )
