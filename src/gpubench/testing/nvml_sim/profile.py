"""Machine profiles: what a simulated NVML answers, one JSON file per machine.

A profile holds the readings NVML gives for every GPU of one machine, in NVML's own units (bytes, mW,
mJ, MHz, °C, KB/s). ``null`` for a reading means the driver answers ``NVML_ERROR_NOT_SUPPORTED`` for it,
which is also how :func:`gpubench.testing.record.record_profile` writes a reading the hardware cannot
give, so a recorded profile replays the same way. ``errors`` maps a C function to another NVML error it
always returns on that GPU; ``missing_functions`` lists C symbols the driver lacks (an older driver).

``loader.py`` reads and checks the JSON form.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pynvml

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
"""The profiles shipped with gpubench (``h100-sxm.json``, ...)."""

SERVED_FIELDS: Mapping[str, Literal["uint", "ull"]] = {"NVML_FI_DEV_GET_GPU_RECOVERY_ACTION": "uint"}
"""``nvmlDeviceGetFieldValues`` ids a profile may hold, with their value type; the recorder reads these."""

SERVED_GPM_METRICS: tuple[str, ...] = (
    "NVML_GPM_METRIC_GRAPHICS_UTIL",
    "NVML_GPM_METRIC_SM_UTIL",
    "NVML_GPM_METRIC_SM_OCCUPANCY",
    "NVML_GPM_METRIC_ANY_TENSOR_UTIL",
    "NVML_GPM_METRIC_DRAM_BW_UTIL",
)
"""GPM metrics a profile may hold (percent, 0-100); the recorder reads these."""


class ProfileError(ValueError):
    """A profile that cannot be loaded; the message names the file and the key."""


@dataclass(frozen=True)
class Pci:
    """``nvmlDeviceGetPciInfo_v3``: bus id as NVML writes it (``00000000:53:00.0``), ids as ``0x%08X``."""

    bus_id: str
    device_id: str
    subsystem_id: str

    @property
    def domain(self) -> int:
        return int(self.bus_id[:8], 16)

    @property
    def bus(self) -> int:
        return int(self.bus_id[9:11], 16)

    @property
    def device(self) -> int:
        return int(self.bus_id[12:14], 16)


@dataclass(frozen=True)
class Memory:
    """``nvmlDeviceGetMemoryInfo_v2`` in bytes; v1 reports ``used + reserved`` as used."""

    total_bytes: int
    reserved_bytes: int | None
    used_bytes: int


@dataclass(frozen=True)
class EccMode:
    current: bool
    pending: bool


@dataclass(frozen=True)
class EccErrors:
    """``nvmlDeviceGetTotalEccErrors`` by counter (volatile / aggregate) and type (corrected / not)."""

    volatile_corrected: int
    volatile_uncorrected: int
    aggregate_corrected: int
    aggregate_uncorrected: int


@dataclass(frozen=True)
class RemappedRows:
    """``nvmlDeviceGetRemappedRows``: rows remapped for correctable / uncorrectable errors, flags."""

    correctable: int
    uncorrectable: int
    pending: bool
    failure: bool


@dataclass(frozen=True)
class Clocks:
    """MHz by ``nvmlClockType_t``."""

    graphics: int | None
    sm: int | None
    mem: int | None
    video: int | None


@dataclass(frozen=True)
class Power:
    """Milliwatts: draw (``nvmlDeviceGetPowerUsage``) and the enforced / management limits."""

    usage_mw: int | None
    enforced_limit_mw: int | None
    management_limit_mw: int | None


@dataclass(frozen=True)
class Thresholds:
    """°C by ``nvmlTemperatureThresholds_t`` (shutdown, slowdown, memory max, GPU max operating)."""

    shutdown: int | None
    slowdown: int | None
    mem_max: int | None
    gpu_max: int | None


@dataclass(frozen=True)
class Pcie:
    """Link generation / width now and at most, replay counter, throughput in KB/s."""

    link_gen: int | None
    link_width: int | None
    max_link_gen: int | None
    max_link_width: int | None
    gpu_max_link_gen: int | None
    replay_counter: int | None
    tx_kb_s: int | None
    rx_kb_s: int | None


@dataclass(frozen=True)
class Utilization:
    """Percent, as ``nvmlDeviceGetUtilizationRates`` and the driver's sample buffer report it."""

    gpu: int
    memory: int


@dataclass(frozen=True)
class MigDevice:
    """One MIG device (a compute instance); ``profile`` is its name, e.g. ``3g.40gb``."""

    uuid: str
    profile: str
    gpu_instance_id: int
    compute_instance_id: int
    memory: Memory | None


@dataclass(frozen=True)
class Mig:
    current: bool
    pending: bool
    max_devices: int
    devices: tuple[MigDevice, ...]


@dataclass(frozen=True)
class Process:
    """A compute process. ``pid`` ``"self"`` is the test process (or ``self_host_pid`` in a container)."""

    pid: int | Literal["self"]
    name: str | None
    used_memory_bytes: int | None
    gpu_instance_id: int | None
    compute_instance_id: int | None


@dataclass(frozen=True)
class Gpm:
    """``nvmlGpmQueryDeviceSupport`` and the metric values (percent) served between two samples."""

    supported: bool
    metrics: dict[str, float]


@dataclass(frozen=True)
class Gpu:
    """One GPU, in NVML (PCI) order. A ``None`` reading is answered with NOT_SUPPORTED."""

    name: str
    uuid: str
    serial: str | None
    pci: Pci | None
    memory: Memory | None
    ecc_mode: EccMode | None
    ecc_errors: EccErrors | None
    remapped_rows: RemappedRows | None
    retired_pages_pending: bool | None
    clocks_mhz: Clocks
    max_clocks_mhz: Clocks
    clock_event_reasons: int | None
    power: Power
    energy_mj: int | None
    temperature_c: int | None
    temperature_thresholds_c: Thresholds
    pcie: Pcie
    utilization_pct: Utilization | None
    persistence_mode: bool | None
    compute_mode: int | None
    mig: Mig | None
    processes: tuple[Process, ...]
    gpm: Gpm | None
    fields: dict[str, int]
    xid_events: tuple[int, ...]
    errors: dict[str, str]


@dataclass(frozen=True)
class Profile:
    """One machine. ``cuda_order`` lists NVML indices in the order CUDA/torch numbers the GPUs."""

    name: str
    description: str
    source: tuple[str, ...]
    recorded: bool
    recorded_at: str | None
    driver_version: str | None
    cuda_driver_version: int | None
    init_error: str | None
    missing_functions: tuple[str, ...]
    self_host_pid: int | None
    cuda_order: tuple[int, ...] | None
    gpus: tuple[Gpu, ...]
    origin: str = field(default="<dict>", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (what the shipped files hold and the recorder writes)."""
        data = dataclasses.asdict(self)
        del data["origin"]
        result: dict[str, Any] = json.loads(json.dumps(data))
        return result

    def cuda_uuids(self) -> list[str]:
        """GPU UUIDs in CUDA's order (``cuda_order``, else NVML's), for tests that fake torch's list."""
        order = self.cuda_order if self.cuda_order is not None else tuple(range(len(self.gpus)))
        return [self.gpus[i].uuid for i in order]


def _nvml_error_names() -> dict[str, str]:
    return {_squash(n[len("NVML_ERROR_") :]): n for n in dir(pynvml) if n.startswith("NVML_ERROR_")}


def _squash(text: str) -> str:
    return text.replace("_", "").lower()


def error_code(error: str | int) -> int:
    """An NVML return code from ``3``, ``"3"``, ``"NOT_SUPPORTED"``, ``"NotSupported"``, ``"NVMLError_NotSupported"``."""
    if isinstance(error, int) and not isinstance(error, bool):
        return error
    if str(error).isdigit():  # how a recording writes a code pynvml has no name for
        return int(error)
    key = _squash(str(error).removeprefix("NVML_ERROR_").removeprefix("NVMLError_"))
    names = _nvml_error_names()
    if key not in names:
        msg = f"unknown NVML error {error!r}; use a name such as NotSupported, NoPermission, GpuIsLost, Unknown, Timeout"
        raise ValueError(msg)
    code: int = getattr(pynvml, names[key])
    return code
