"""Loading and checking profiles: every key is required, unknown keys are refused, and an error names
the file and the key path (``h100-sxm.json: gpus[0].pci.bus_id: ...``)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pynvml

from gpubench.testing.nvml_sim.profile import (
    PROFILES_DIR,
    SERVED_FIELDS,
    SERVED_GPM_METRICS,
    Clocks,
    EccErrors,
    EccMode,
    Gpm,
    Gpu,
    Memory,
    Mig,
    MigDevice,
    Pci,
    Pcie,
    Power,
    Process,
    Profile,
    ProfileError,
    RemappedRows,
    Thresholds,
    Utilization,
    error_code,
)
from gpubench.testing.nvml_sim.symbols import SIMULATED_FUNCTIONS

_BUS_ID = re.compile(r"^[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.[0-7]$")
_GPU_UUID = re.compile(r"^GPU-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_MIG_UUID = re.compile(
    r"^MIG-([0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"  # driver 470 and newer
    r"|GPU-[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}/\d+/\d+)$"  # 450-465: MIG-<GPU UUID>/gi/ci
)


class _Reader:
    """Walks one JSON object, remembering the key path for error messages; rejects unknown keys."""

    def __init__(self, data: object, path: str, origin: str) -> None:
        self.path, self.origin = path, origin
        if not isinstance(data, Mapping):
            self.fail(f"expected an object, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data
        self.seen: set[str] = set()

    def fail(self, problem: str, key: str | None = None) -> NoReturn:
        where = f"{self.path}.{key}" if key and self.path else (key or self.path or "(top level)")
        msg = f"{self.origin}: {where}: {problem}"
        raise ProfileError(msg)

    def raw(self, key: str) -> Any:
        """The value at ``key``; every key is required (a reading NVML cannot give is an explicit null)."""
        self.seen.add(key)
        if key not in self.data:
            self.fail("missing (write null for a reading the GPU does not give)", key)
        return self.data[key]

    def int_(self, key: str, *, nullable: bool = False, minimum: int = 0) -> Any:
        value = self.raw(key)
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"expected an integer{' or null' if nullable else ''}, got {value!r}", key)
        if value < minimum:
            self.fail(f"expected an integer >= {minimum}, got {value}", key)
        return value

    def bool_(self, key: str, *, nullable: bool = False) -> Any:
        value = self.raw(key)
        if value is None and nullable:
            return None
        if not isinstance(value, bool):
            self.fail(f"expected true or false{' or null' if nullable else ''}, got {value!r}", key)
        return value

    def str_(self, key: str, *, nullable: bool = False, pattern: re.Pattern[str] | None = None) -> Any:
        value = self.raw(key)
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            self.fail(f"expected a string{' or null' if nullable else ''}, got {value!r}", key)
        if pattern is not None and not pattern.match(value):
            self.fail(f"{value!r} does not look like {pattern.pattern}", key)
        return value

    def hex_(self, key: str) -> str:
        value = self.raw(key)
        try:
            number = int(value, 16) if isinstance(value, str) else value
        except ValueError:
            number = None
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 2**32:
            self.fail(f'expected a 32-bit id such as "0x233010DE", got {value!r}', key)
        return f"0x{number:08X}"

    def list_(self, key: str, *, nullable: bool = False) -> Any:
        value = self.raw(key)
        if value is None and nullable:
            return None
        if not isinstance(value, list):
            self.fail(f"expected a list, got {value!r}", key)
        return value

    def ints(self, key: str) -> tuple[int, ...]:
        values = self.list_(key)
        for i, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.fail(f"expected a non-negative integer, got {value!r}", f"{key}[{i}]")
        return tuple(values)

    def sub(self, key: str, *, nullable: bool = False) -> _Reader | None:
        value = self.raw(key)
        if value is None and nullable:
            return None
        return _Reader(value, f"{self.path}.{key}" if self.path else key, self.origin)

    def item(self, key: str, index: int, value: object) -> _Reader:
        prefix = f"{self.path}.{key}" if self.path else key
        return _Reader(value, f"{prefix}[{index}]", self.origin)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            self.fail(f"unknown key(s) {', '.join(unknown)}; check the spelling against profile.py")


def _memory(r: _Reader | None) -> Memory | None:
    if r is None:
        return None
    mem = Memory(r.int_("total_bytes"), r.int_("reserved_bytes", nullable=True), r.int_("used_bytes"))
    r.done()
    reserved = mem.reserved_bytes or 0
    if mem.used_bytes + reserved > mem.total_bytes:
        r.fail(f"used_bytes + reserved_bytes ({mem.used_bytes + reserved}) exceed total_bytes")
    return mem


def _group(r: _Reader | None, cls: type[Any], keys: Sequence[str], *, bools: Sequence[str] = ()) -> Any:
    if r is None:
        return None
    values = [r.bool_(k) if k in bools else r.int_(k, nullable=cls in _NULLABLE_GROUPS) for k in keys]
    r.done()
    return cls(*values)


_NULLABLE_GROUPS = (Clocks, Power, Thresholds, Pcie)


def _gpu(r: _Reader) -> Gpu:
    pci_r, pci = r.sub("pci", nullable=True), None
    if pci_r is not None:
        pci = Pci(pci_r.str_("bus_id", pattern=_BUS_ID), pci_r.hex_("device_id"), pci_r.hex_("subsystem_id"))
        pci_r.done()
    ecc_mode = _group(
        r.sub("ecc_mode", nullable=True), EccMode, ("current", "pending"), bools=("current", "pending")
    )
    ecc_errors = _group(
        r.sub("ecc_errors", nullable=True),
        EccErrors,
        ("volatile_corrected", "volatile_uncorrected", "aggregate_corrected", "aggregate_uncorrected"),
    )
    util_r = r.sub("utilization_pct", nullable=True)
    utilization = None
    if util_r is not None:
        utilization = Utilization(util_r.int_("gpu"), util_r.int_("memory"))
        util_r.done()
    gpu = Gpu(
        name=r.str_("name"),
        uuid=r.str_("uuid", pattern=_GPU_UUID),
        serial=r.str_("serial", nullable=True),
        pci=pci,
        memory=_memory(r.sub("memory", nullable=True)),
        ecc_mode=ecc_mode,
        ecc_errors=ecc_errors,
        remapped_rows=_group(
            r.sub("remapped_rows", nullable=True),
            RemappedRows,
            ("correctable", "uncorrectable", "pending", "failure"),
            bools=("pending", "failure"),
        ),
        retired_pages_pending=r.bool_("retired_pages_pending", nullable=True),
        clocks_mhz=_group(r.sub("clocks_mhz"), Clocks, ("graphics", "sm", "mem", "video")),
        max_clocks_mhz=_group(r.sub("max_clocks_mhz"), Clocks, ("graphics", "sm", "mem", "video")),
        clock_event_reasons=r.int_("clock_event_reasons", nullable=True),
        power=_group(r.sub("power"), Power, ("usage_mw", "enforced_limit_mw", "management_limit_mw")),
        energy_mj=r.int_("energy_mj", nullable=True),
        temperature_c=r.int_("temperature_c", nullable=True),
        temperature_thresholds_c=_group(
            r.sub("temperature_thresholds_c"), Thresholds, ("shutdown", "slowdown", "mem_max", "gpu_max")
        ),
        pcie=_group(
            r.sub("pcie"),
            Pcie,
            [f.name for f in dataclasses.fields(Pcie)],
        ),
        utilization_pct=utilization,
        persistence_mode=r.bool_("persistence_mode", nullable=True),
        compute_mode=r.int_("compute_mode", nullable=True),
        mig=_mig(r.sub("mig", nullable=True)),
        processes=tuple(_process(r.item("processes", i, p)) for i, p in enumerate(r.list_("processes"))),
        gpm=_gpm(r.sub("gpm", nullable=True)),
        fields=_fields(r),
        xid_events=r.ints("xid_events"),
        errors=_errors(r),
    )
    r.done()
    if gpu.compute_mode is not None and gpu.compute_mode not in range(pynvml.NVML_COMPUTEMODE_COUNT):
        r.fail(f"not an nvmlComputeMode_t: {gpu.compute_mode}", "compute_mode")
    return gpu


def _mig(r: _Reader | None) -> Mig | None:
    if r is None:
        return None
    devices = []
    for i, raw in enumerate(r.list_("devices")):
        d = r.item("devices", i, raw)
        devices.append(
            MigDevice(
                uuid=d.str_("uuid", pattern=_MIG_UUID),
                profile=d.str_("profile"),
                gpu_instance_id=d.int_("gpu_instance_id"),
                compute_instance_id=d.int_("compute_instance_id"),
                memory=_memory(d.sub("memory", nullable=True)),
            )
        )
        d.done()
    mig = Mig(r.bool_("current"), r.bool_("pending"), r.int_("max_devices"), tuple(devices))
    r.done()
    if len(devices) > mig.max_devices:
        r.fail(f"{len(devices)} devices but max_devices is {mig.max_devices}", "devices")
    if devices and not mig.current:
        r.fail("MIG devices exist only while MIG is enabled (current: true)", "devices")
    return mig


def _process(r: _Reader) -> Process:
    pid = r.raw("pid")
    if pid != "self":
        pid = r.int_("pid", minimum=1)
    proc = Process(
        pid=pid,
        name=r.str_("name", nullable=True),
        used_memory_bytes=r.int_("used_memory_bytes", nullable=True),
        gpu_instance_id=r.int_("gpu_instance_id", nullable=True),
        compute_instance_id=r.int_("compute_instance_id", nullable=True),
    )
    r.done()
    return proc


def _gpm(r: _Reader | None) -> Gpm | None:
    if r is None:
        return None
    supported = r.bool_("supported")
    metrics_r = r.sub("metrics")
    assert metrics_r is not None
    metrics: dict[str, float] = {}
    for name in metrics_r.data:
        if name not in SERVED_GPM_METRICS:
            metrics_r.fail(f"not a served GPM metric; use one of {', '.join(SERVED_GPM_METRICS)}", name)
        value = metrics_r.raw(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            metrics_r.fail(f"expected a number, got {value!r}", name)
        metrics[name] = float(value)
    r.done()
    if metrics and not supported:
        r.fail("metrics given for a GPU without GPM support", "metrics")
    return Gpm(supported, metrics)


def _fields(r: _Reader) -> dict[str, int]:
    fields_r = r.sub("fields")
    assert fields_r is not None
    out: dict[str, int] = {}
    for name in fields_r.data:
        if name not in SERVED_FIELDS:
            fields_r.fail(f"not a served field id; use one of {', '.join(SERVED_FIELDS)}", name)
        out[name] = fields_r.int_(name)
    return out


def _errors(r: _Reader) -> dict[str, str]:
    errors_r = r.sub("errors")
    assert errors_r is not None
    out: dict[str, str] = {}
    for fn in errors_r.data:
        if fn not in SIMULATED_FUNCTIONS:
            errors_r.fail("not a simulated NVML C function", fn)
        name = errors_r.str_(fn)
        try:
            error_code(name)
        except ValueError as exc:
            errors_r.fail(str(exc), fn)
        out[fn] = name
    return out


def profile_from_dict(data: object, origin: str = "<dict>") -> Profile:
    """Validate ``data`` (the JSON form) into a :class:`Profile`; raise :class:`ProfileError` if bad."""
    r = _Reader(data, "", origin)
    missing = r.list_("missing_functions")
    for i, fn in enumerate(missing):
        if fn not in SIMULATED_FUNCTIONS:
            r.fail(f"{fn!r} is not a simulated NVML C function", f"missing_functions[{i}]")
    init_error = r.str_("init_error", nullable=True)
    if init_error is not None:
        try:
            error_code(init_error)
        except ValueError as exc:
            r.fail(str(exc), "init_error")
    source = r.list_("source")
    if not source or not all(isinstance(s, str) and s for s in source):
        r.fail("expected a non-empty list of strings saying where the numbers come from", "source")
    gpus = tuple(_gpu(r.item("gpus", i, g)) for i, g in enumerate(r.list_("gpus")))
    cuda_order = r.ints("cuda_order") if r.raw("cuda_order") is not None else None
    if cuda_order is not None and sorted(cuda_order) != list(range(len(gpus))):
        r.fail(
            f"must be a permutation of the NVML indices 0..{len(gpus) - 1}, got {cuda_order}", "cuda_order"
        )
    profile = Profile(
        name=r.str_("name"),
        description=r.str_("description"),
        source=tuple(source),
        recorded=r.bool_("recorded"),
        recorded_at=r.str_("recorded_at", nullable=True),
        driver_version=r.str_("driver_version", nullable=True),
        cuda_driver_version=r.int_("cuda_driver_version", nullable=True),
        init_error=init_error,
        missing_functions=tuple(missing),
        self_host_pid=r.int_("self_host_pid", nullable=True, minimum=1),
        cuda_order=tuple(cuda_order) if cuda_order is not None else None,
        gpus=gpus,
        origin=origin,
    )
    r.done()
    uuids = [g.uuid for g in gpus] + [d.uuid for g in gpus for d in (g.mig.devices if g.mig else ())]
    if len(set(uuids)) != len(uuids):
        r.fail("two devices share a UUID", "gpus")
    bus_ids = [g.pci.bus_id for g in gpus if g.pci is not None]
    if len(set(bus_ids)) != len(bus_ids):
        r.fail("two GPUs share a PCI bus id", "gpus")
    return profile


def available_profiles() -> list[str]:
    """Names of the shipped profiles (file names without ``.json``)."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json"))


def load_profile(spec: str | Path | Mapping[str, Any] | Profile) -> Profile:
    """A profile from a shipped name (``"h100-sxm"``), a path to a JSON file, a dict, or a Profile."""
    if isinstance(spec, Profile):
        return spec
    if isinstance(spec, Mapping):
        return profile_from_dict(spec)
    path = Path(spec)
    if isinstance(spec, str) and path.suffix != ".json" and "/" not in spec and "\\" not in spec:
        path = PROFILES_DIR / f"{spec}.json"
        if not path.is_file():
            msg = f"no shipped NVML profile {spec!r}; choose one of {', '.join(available_profiles())} or give a path"
            raise ProfileError(msg)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{path}: cannot read the profile ({exc.strerror or exc})"
        raise ProfileError(msg) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"{path.name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        raise ProfileError(msg) from exc
    return profile_from_dict(data, origin=path.name)
