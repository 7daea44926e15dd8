"""Fill the health-check readings from NVML and PyTorch, and run the active tests.

Passive readings (identity, memory health, modes, processes) come from NVML through :mod:`gpubench.nvml`,
where a reading the GPU cannot give is N/A (here: ``None``). Active tests (memory patterns, matmul
correctness, the burn, bandwidths) run for real on ``cpu`` as well as on ``cuda:N``, so their logic is
tested on
machines without a GPU. GPU work is timed with CUDA events recorded on the measured device's stream, or by
synchronizing that device (``torch.cuda.synchronize(device)``), never the whole machine.

The under-load check polls NVML itself (clock event reasons, temperature, PCIe link, replay counter) in
a small
thread: a few readings every ``interval_s``, enough to decide; the full telemetry sampler lives elsewhere.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpubench import nvml
from gpubench.devices import CudaProbe, DeviceSpec, Unusable, dtype_support, torch_dtype_name
from gpubench.verify.health import (
    COMPUTE_TOLERANCE,
    ClockEventReasons,
    ComputeReading,
    ContentionReading,
    DtypeCompute,
    GpuIdentity,
    InterconnectReading,
    Inventory,
    LoadReading,
    MemoryHealth,
    MemtestReading,
    PatternResult,
    PcieLink,
    PeerReading,
    PerfReading,
    ProcessInfo,
    SoftwareStack,
)

if TYPE_CHECKING:
    import torch

# NVML constants (nvml.h); spelled out so the fake pynvml used in tests need not define them.
NVML_TEMPERATURE_GPU = 0
NVML_TEMPERATURE_THRESHOLD_SHUTDOWN = 0
NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
NVML_TEMPERATURE_THRESHOLD_GPU_MAX = 3
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_FI_DEV_GET_GPU_RECOVERY_ACTION = 230
NVML_EVENT_TYPE_XID_CRITICAL_ERROR = 0x8


def _v(value: Any) -> Any:
    """NVML's N/A as None (readings use None for "not available")."""
    return value if nvml.available(value) else None


def _int(value: Any) -> int | None:
    value = _v(value)
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    value = _int(value)
    return None if value is None else bool(value)


def _text(value: Any) -> str | None:
    value = _v(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return None if value is None else str(value)


# --- passive readings -----------------------------------------------------------------------------


def read_software(probe: CudaProbe) -> SoftwareStack:
    """PyTorch, CUDA build, cuDNN (from the probe) and the driver's CUDA version (from NVML)."""
    error = nvml.init() if probe.torch_version is not None else None
    driver_cuda = nvml.cuda_driver_version() if error is None else nvml.NA
    return SoftwareStack(
        torch_version=probe.torch_version,
        torch_error=probe.torch_error,
        cuda_build=probe.cuda_build,
        hip_build=probe.hip_build,
        cudnn_version=probe.cudnn_version,
        driver_version=probe.driver_version,
        driver_cuda=_text(driver_cuda),
        driver_error=probe.nvml_error or error,
    )


def read_inventory(spec: DeviceSpec, probe: CudaProbe, unusable: Unusable | None) -> Inventory:
    """Counts from PyTorch and NVML, CUDA_VISIBLE_DEVICES, and why ``spec`` is unusable (if it is)."""
    return Inventory(
        device=spec.name,
        torch_count=probe.device_count,
        nvml_count=probe.nvml_device_count,
        cuda_visible_devices=probe.cuda_visible_devices,
        unusable_code=unusable.code if unusable else None,
        unusable_reason=unusable.reason if unusable else None,
        unusable_remedy=unusable.remedy if unusable else None,
        nvml_error=probe.nvml_error,
    )


def _torch_pci(index: int) -> tuple[int, int, int] | None:
    try:
        import torch

        props = torch.cuda.get_device_properties(index)
        fields = ("pci_domain_id", "pci_bus_id", "pci_device_id")
        domain, bus, dev = (int(getattr(props, name)) for name in fields)
        return (domain, bus, dev)
    except Exception:  # older torch without the fields, or no CUDA
        return None


def read_identity(
    spec: DeviceSpec, probe: CudaProbe, torch_pci: tuple[int, int, int] | None = None
) -> GpuIdentity:
    """PyTorch's view of ``cuda:N`` and NVML's device with the same UUID (looked up by UUID, never by
    index).
    """
    index = spec.index or 0
    info = probe.device(index)
    if info is None:
        msg = f"{spec.name} is not in the probe; decide inventory first"
        raise ValueError(msg)
    pci = torch_pci if torch_pci is not None else _torch_pci(index)
    common: dict[str, Any] = {
        "device": spec.name,
        "torch_index": index,
        "torch_name": info.name,
        "torch_total_memory": info.total_memory,
        "uuid": info.uuid,
        "torch_pci": pci,
        "cuda_device_order": os.environ.get("CUDA_DEVICE_ORDER"),
        "cuda_visible_devices": probe.cuda_visible_devices,
        "visible_models": tuple(d.name for d in probe.devices),
    }
    error = nvml.init()
    if error is not None or info.uuid is None:
        return GpuIdentity(nvml_found=False, nvml_error=error, **common)
    handle, lookup_error = nvml.call_or_error("nvmlDeviceGetHandleByUUID", nvml.normalise_uuid(info.uuid))
    if not nvml.available(handle):
        return GpuIdentity(nvml_found=False, nvml_error=lookup_error, **common)
    mem = _v(nvml.call("nvmlDeviceGetMemoryInfo", handle))
    pci_info = _v(nvml.call("nvmlDeviceGetPciInfo_v3", handle)) or _v(
        nvml.call("nvmlDeviceGetPciInfo", handle)
    )
    nvml_pci = None
    bus_id = None
    if pci_info is not None:
        try:
            nvml_pci = (int(pci_info.domain), int(pci_info.bus), int(pci_info.device))
        except (AttributeError, TypeError, ValueError):
            nvml_pci = None
        bus_id = _text(getattr(pci_info, "busId", None))
    return GpuIdentity(
        nvml_found=True,
        nvml_index=_int(nvml.call("nvmlDeviceGetIndex", handle)),
        nvml_name=_text(nvml.call("nvmlDeviceGetName", handle)),
        nvml_total_memory=_int(getattr(mem, "total", None)) if mem is not None else None,
        nvml_pci=nvml_pci,
        nvml_bus_id=bus_id,
        **common,
    )


def _handle(uuid: str | None) -> Any:
    return nvml.handle_by_uuid(uuid) if uuid else nvml.NA


def _recovery_action(handle: Any) -> int | None:
    values = _v(nvml.call("nvmlDeviceGetFieldValues", handle, [NVML_FI_DEV_GET_GPU_RECOVERY_ACTION]))
    if values is None:
        return None
    try:
        entry = values[0]
        if int(entry.nvmlReturn) != 0:
            return None
        return int(entry.value.uiVal)
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def read_memory_health(uuid: str | None) -> MemoryHealth:
    """ECC mode and errors, page retirement and row remapping, and the recovery action. N/A fields are
    None.
    """
    handle = _handle(uuid)
    if not nvml.available(handle):
        return MemoryHealth()
    ecc = _v(nvml.call("nvmlDeviceGetEccMode", handle))
    remap = _v(nvml.call("nvmlDeviceGetRemappedRows", handle))
    corr = unc = pending = failure = None
    if remap is not None and len(remap) == 4:
        corr, unc, pending, failure = (int(remap[0]), int(remap[1]), bool(remap[2]), bool(remap[3]))
    return MemoryHealth(
        ecc_current=_bool(ecc[0]) if ecc is not None else None,
        ecc_pending=_bool(ecc[1]) if ecc is not None else None,
        volatile_uncorrected=_int(
            nvml.call(
                "nvmlDeviceGetTotalEccErrors", handle, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC
            )
        ),
        retired_pages_pending=_bool(nvml.call("nvmlDeviceGetRetiredPagesPendingStatus", handle)),
        remapped_correctable=corr,
        remapped_uncorrectable=unc,
        remap_pending=pending,
        remap_failure=failure,
        recovery_action=_recovery_action(handle),
    )


def _process_name(pid: int) -> str | None:
    name = _text(nvml.call("nvmlSystemGetProcessName", pid))
    if name:
        return os.path.basename(name)
    try:
        import psutil

        return str(psutil.Process(pid).name())
    except Exception:  # gone, another container's pid namespace, no permission
        return None


def read_contention(device: str, uuid: str | None, own_pid: int | None = None) -> ContentionReading:
    """Other compute processes on the GPU (this one excluded) and its compute, persistence and MIG modes."""
    own_pid = os.getpid() if own_pid is None else own_pid
    handle = _handle(uuid)
    if not nvml.available(handle):
        return ContentionReading(device=device, processes=None)
    raw = _v(nvml.call("nvmlDeviceGetComputeRunningProcesses", handle))
    procs: tuple[ProcessInfo, ...] | None = None
    if raw is not None:
        procs = tuple(
            ProcessInfo(pid=int(p.pid), name=_process_name(int(p.pid)), used_memory=_int(p.usedGpuMemory))
            for p in raw
            if int(p.pid) != own_pid
        )
    mig = _v(nvml.call("nvmlDeviceGetMigMode", handle))
    return ContentionReading(
        device=device,
        processes=procs,
        compute_mode=_int(nvml.call("nvmlDeviceGetComputeMode", handle)),
        persistence=_bool(nvml.call("nvmlDeviceGetPersistenceMode", handle)),
        mig_current=_bool(mig[0]) if mig is not None else None,
        mig_pending=_bool(mig[1]) if mig is not None else None,
    )


def read_pcie_link(handle: Any) -> PcieLink:
    """The PCIe link now and its maxima (N/A fields None)."""
    if not nvml.available(handle):
        return PcieLink()
    return PcieLink(
        gen=_int(nvml.call("nvmlDeviceGetCurrPcieLinkGeneration", handle)),
        width=_int(nvml.call("nvmlDeviceGetCurrPcieLinkWidth", handle)),
        max_gen=_int(nvml.call("nvmlDeviceGetMaxPcieLinkGeneration", handle)),
        max_width=_int(nvml.call("nvmlDeviceGetMaxPcieLinkWidth", handle)),
        gpu_max_gen=_int(nvml.call("nvmlDeviceGetGpuMaxPcieLinkGeneration", handle)),
    )


def clock_event_reasons(handle: Any) -> int | None:
    """The active clock event reasons bitmask (the older NVML name is "throttle reasons")."""
    value = nvml.call("nvmlDeviceGetCurrentClocksEventReasons", handle)
    if not nvml.available(value):
        value = nvml.call("nvmlDeviceGetCurrentClocksThrottleReasons", handle)
    return _int(value)


# --- helpers for active tests ---------------------------------------------------------------------


def _torch() -> Any:
    import torch

    return torch


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        _torch().cuda.synchronize(dev)


def time_calls(dev: torch.device, fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn`` on ``dev``, one figure per round, timed by the benchmarks' own
    :class:`gpubench.timing.DeviceTimer`: it synchronizes ``dev`` itself (not the current device), uses CUDA
    events for device work, and repeats calls within a round until the synchronization costs under 1%.
    """
    from gpubench.timing import DeviceTimer

    return list(DeviceTimer(dev).measure(fn, rounds=repeats, warmup_rounds=warmup).times_s)


def _oom_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


# --- memory test ----------------------------------------------------------------------------------

MEMTEST_PATTERNS: tuple[str, ...] = ("address", "random", "walking_ones", "walking_zeros", "inverse_address")

_CHUNK_WORDS = 1 << 24  # 64 MiB of int32 per chunk: bounds the temporaries next to the buffer


def memtest_bytes(dev: torch.device, fraction: float, cap_bytes: int | None = None) -> int:
    """How many bytes the memory test covers: ``fraction`` of free device memory (of available RAM on cpu)."""
    torch = _torch()
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
    else:
        import psutil

        free = psutil.virtual_memory().available
    nbytes = int(free * fraction)
    if cap_bytes is not None:
        nbytes = min(nbytes, cap_bytes)
    return max(0, nbytes - nbytes % 4)


def _chunks(words: int) -> Iterator[tuple[int, int]]:
    for start in range(0, words, _CHUNK_WORDS):
        yield start, min(words, start + _CHUNK_WORDS)


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


class _Compare:
    """Accumulates mismatches of one pattern over chunks and passes."""

    def __init__(self) -> None:
        self.words = 0
        self.mismatches = 0
        self.first: int | None = None
        self.bits = 0

    def add(self, got: torch.Tensor, expected: torch.Tensor | int, offset: int) -> None:
        torch = _torch()
        bad = got != expected
        self.words += got.numel()
        if not bool(bad.any()):  # any() is several times cheaper than counting: count only when needed
            return
        count = int(bad.sum().item())
        self.mismatches += count
        index = int(torch.nonzero(bad)[0].item()) + offset
        self.first = index if self.first is None else min(self.first, index)
        exp = expected[bad] if isinstance(expected, torch.Tensor) else torch.full_like(got[bad], expected)
        diff = got[bad] ^ exp
        for bit in range(32):
            if bool(((diff >> bit) & 1).any()):
                self.bits |= 1 << bit

    def result(self, name: str, seconds: float) -> PatternResult:
        return PatternResult(name, self.words, self.mismatches, self.first, self.bits, round(seconds, 4))


AfterWrite = Callable[[str, "torch.Tensor"], None]


def run_memtest(
    device: str,
    nbytes: int,
    seconds: float,
    patterns: Sequence[str] = MEMTEST_PATTERNS,
    seed: int = 1234,
    after_write: AfterWrite | None = None,
) -> MemtestReading:
    """Write each pattern over ``nbytes`` of device memory, read it back, count the 32-bit words that differ.

    Patterns: ``address`` (each word holds its own index), ``inverse_address``, ``random`` (seeded,
    regenerated
    for the comparison), ``walking_ones``/``walking_zeros`` (32 passes each). The test stops after the pattern
    that crosses ``seconds`` (at least one pattern always runs). ``after_write(pattern, buffer)`` is
    called between
    the write and the read-back: tests use it to corrupt the buffer and prove mismatches are counted.
    """
    torch = _torch()
    dev = torch.device(device)
    words = nbytes // 4
    unknown = [p for p in patterns if p not in MEMTEST_PATTERNS]
    if unknown:
        msg = f"unknown memtest pattern(s) {unknown}: expected some of {', '.join(MEMTEST_PATTERNS)}"
        raise ValueError(msg)
    if words <= 0:
        return MemtestReading(device, 0, (), len(patterns), 0.0, seconds, error="no memory to test (0 bytes)")
    try:
        buf = torch.empty(words, dtype=torch.int32, device=dev)
    except (RuntimeError, MemoryError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        return MemtestReading(
            device, 0, (), len(patterns), 0.0, seconds, error=f"allocating {nbytes} B: {_oom_text(exc)}"
        )

    def address(start: int, stop: int, invert: bool) -> Any:
        values = torch.arange(start, stop, dtype=torch.int64, device=dev)
        if invert:
            values = ~values
        low = values & 0xFFFFFFFF  # the index modulo 2**32, then as a signed 32-bit word
        return torch.where(low >= 1 << 31, low - (1 << 32), low).to(torch.int32)

    def random_chunks() -> Iterator[tuple[int, int, Any]]:
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed)
        for start, stop in _chunks(words):
            yield (
                start,
                stop,
                torch.randint(
                    -(1 << 31), 1 << 31, (stop - start,), dtype=torch.int32, generator=gen, device=dev
                ),
            )

    def run_pattern(name: str) -> PatternResult:
        t0 = time.perf_counter()
        cmp = _Compare()
        if name in ("address", "inverse_address"):
            invert = name == "inverse_address"
            for start, stop in _chunks(words):
                buf[start:stop] = address(start, stop, invert)
            if after_write:
                after_write(name, buf)
            for start, stop in _chunks(words):
                cmp.add(buf[start:stop], address(start, stop, invert), start)
        elif name == "random":
            for start, stop, values in random_chunks():
                buf[start:stop] = values
            if after_write:
                after_write(name, buf)
            for start, _stop, values in random_chunks():
                cmp.add(buf[start:_stop], values, start)
        else:
            for bit in range(32):
                value = _signed32(1 << bit if name == "walking_ones" else ~(1 << bit))
                buf.fill_(value)
                if after_write:
                    after_write(name, buf)
                for start, stop in _chunks(words):
                    cmp.add(buf[start:stop], value, start)
        _sync(dev)
        return cmp.result(name, time.perf_counter() - t0)

    done: list[PatternResult] = []
    error = None
    started = time.perf_counter()
    try:
        for name in patterns:
            done.append(run_pattern(name))
            if time.perf_counter() - started >= seconds:
                break
    except (RuntimeError, MemoryError) as exc:  # a device error mid-test is itself a finding
        error = _oom_text(exc)
    return MemtestReading(
        device=device,
        bytes_tested=words * 4,
        patterns=tuple(done),
        patterns_planned=len(patterns),
        seconds=round(time.perf_counter() - started, 3),
        time_bound_s=seconds,
        error=error,
    )


# --- compute correctness --------------------------------------------------------------------------


@contextmanager
def _fp32_precision(mode: str) -> Iterator[None]:
    """``highest`` (true float32) or ``high`` (TF32 allowed) for float32 matmuls; restored afterwards."""
    torch = _torch()
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(mode)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def compute_dtypes(spec: DeviceSpec, probe: CudaProbe | None) -> dict[str, str | None]:
    """The dtypes the compute check runs on ``spec``: None when runnable, else why not."""
    support = dtype_support(spec, probe) if probe is not None else dict.fromkeys(("f16", "bf16", "f32"))
    result: dict[str, str | None] = {"f32": None}
    if spec.kind == "cpu":
        result["tf32"] = "TF32 is a CUDA tensor-core mode; not applicable to cpu"
    else:
        info = probe.device(spec.index or 0) if probe is not None else None
        ok = info is not None and info.capability >= (8, 0)
        result["tf32"] = None if ok else "TF32 needs compute capability 8.0 (Ampere) or newer"
    result["bf16"] = support.get("bf16")
    result["f16"] = support.get("f16")
    return result


def run_compute(
    device: str, dtypes: dict[str, str | None], n: int, repeats: int, seed: int = 0
) -> ComputeReading:
    """Repeat an n x n matmul per dtype; compare repeats bit for bit and the result with a float64 product.

    ``dtypes`` maps each dtype (``f32``, ``tf32``, ``bf16``, ``f16``) to None (run it) or the reason to
    skip it.
    """
    torch = _torch()
    dev = torch.device(device)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    try:
        a64 = torch.randn(n, n, dtype=torch.float64, generator=gen).to(dev)
        b64 = torch.randn(n, n, dtype=torch.float64, generator=gen).to(dev)
    except (RuntimeError, MemoryError) as exc:
        return ComputeReading(device, (), error=_oom_text(exc))
    out: list[DtypeCompute] = []
    error = None
    for name, skip in dtypes.items():
        tol = COMPUTE_TOLERANCE[name]
        if skip:
            out.append(DtypeCompute(name, n, repeats, True, None, tol, 0, skipped=skip))
            continue
        tdtype = getattr(torch, torch_dtype_name("f32" if name == "tf32" else name))
        try:
            with _fp32_precision("high" if name == "tf32" else "highest"):
                a, b = a64.to(tdtype), b64.to(tdtype)
                ref = a.double() @ b.double()
                first = a @ b
                identical = all(torch.equal(a @ b, first) for _ in range(max(0, repeats - 1)))
                nonfinite = int((~torch.isfinite(first)).sum().item())
                err = float(torch.linalg.norm(first.double() - ref) / torch.linalg.norm(ref))
            out.append(DtypeCompute(name, n, repeats, identical, err if err == err else None, tol, nonfinite))
        except (RuntimeError, MemoryError) as exc:
            out.append(DtypeCompute(name, n, repeats, True, None, tol, 0, skipped=_oom_text(exc)))
            error = _oom_text(exc)
    return ComputeReading(device, tuple(out), error=error)


# --- under load -----------------------------------------------------------------------------------


class _LoadPoller:
    """Polls NVML for the under-load decision in a background thread (every ``interval_s`` seconds)."""

    def __init__(self, handle: Any, interval_s: float) -> None:
        self.handle = handle
        self.interval_s = interval_s
        self.samples = 0
        self.reasons: int | None = None
        self.reason_samples: dict[str, int] = {}
        self.peak_temp: int | None = None
        self.best_gen: int | None = None
        self.best_width: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpubench-under-load", daemon=True)

    def sample(self) -> None:
        reasons = clock_event_reasons(self.handle)
        temp = _int(nvml.call("nvmlDeviceGetTemperature", self.handle, NVML_TEMPERATURE_GPU))
        gen = _int(nvml.call("nvmlDeviceGetCurrPcieLinkGeneration", self.handle))
        width = _int(nvml.call("nvmlDeviceGetCurrPcieLinkWidth", self.handle))
        self.samples += 1
        if reasons is not None:
            self.reasons = (self.reasons or 0) | reasons
            for name in ClockEventReasons(reasons).names():
                self.reason_samples[name] = self.reason_samples.get(name, 0) + 1
        if temp is not None:
            self.peak_temp = temp if self.peak_temp is None else max(self.peak_temp, temp)
        # the best link seen under load: an idle link trains down to save power, a broken one never trains up
        if gen is not None:
            self.best_gen = gen if self.best_gen is None else max(self.best_gen, gen)
        if width is not None:
            self.best_width = width if self.best_width is None else max(self.best_width, width)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> _LoadPoller:
        self.sample()  # at least one sample at each end, however short the burn
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.sample()


def _xid_set(handle: Any) -> Any:
    """An NVML event set registered for XID critical errors on ``handle``, or None (unsupported / no
    permission).
    """
    es, error = nvml.call_or_error("nvmlEventSetCreate")
    if error is not None:
        return None
    _, error = nvml.call_or_error("nvmlDeviceRegisterEvents", handle, NVML_EVENT_TYPE_XID_CRITICAL_ERROR, es)
    if error is not None:
        nvml.call("nvmlEventSetFree", es)
        return None
    return es


def _drain_xids(es: Any, limit: int = 64) -> tuple[int, ...]:
    xids: list[int] = []
    for _ in range(limit):
        data, error = nvml.call_or_error("nvmlEventSetWait_v2", es, 1)
        if error is not None:  # NVML_ERROR_TIMEOUT: no more events
            break
        if int(getattr(data, "eventType", 0)) & NVML_EVENT_TYPE_XID_CRITICAL_ERROR:
            xids.append(int(getattr(data, "eventData", 0)))
    nvml.call("nvmlEventSetFree", es)
    return tuple(xids)


def run_burn(
    device: str, uuid: str | None, seconds: float, dtype: str = "f32", n: int = 4096, interval_s: float = 0.1
) -> LoadReading:
    """A sustained n x n matmul loop for ``seconds`` while NVML is polled; returns what the poller saw."""
    torch = _torch()
    dev = torch.device(device)
    nvml_error = nvml.init()
    handle = _handle(uuid) if nvml_error is None else nvml.NA
    if nvml_error is None and not nvml.available(handle):
        nvml_error = f"NVML has no device with UUID {uuid}"
    thresholds = {
        key: _int(nvml.call("nvmlDeviceGetTemperatureThreshold", handle, kind))
        if nvml_error is None
        else None
        for key, kind in (
            ("slowdown", NVML_TEMPERATURE_THRESHOLD_SLOWDOWN),
            ("shutdown", NVML_TEMPERATURE_THRESHOLD_SHUTDOWN),
            ("gpu_max", NVML_TEMPERATURE_THRESHOLD_GPU_MAX),
        )
    }
    link0 = read_pcie_link(handle) if nvml_error is None else PcieLink()
    replay_before = _int(nvml.call("nvmlDeviceGetPcieReplayCounter", handle)) if nvml_error is None else None
    es = _xid_set(handle) if nvml_error is None else None
    tdtype = getattr(torch, torch_dtype_name(dtype))
    poller = _LoadPoller(handle, interval_s)
    error = None
    iters = 0
    elapsed = 0.0
    nonfinite = False
    try:
        a = torch.randn(n, n, device=dev).to(tdtype)
        b = torch.randn(n, n, device=dev).to(tdtype) / n**0.5
        c = torch.empty(n, n, device=dev, dtype=tdtype)
        torch.matmul(a, b, out=c)
        _sync(dev)
        ctx = poller if nvml_error is None else _null()
        with ctx:
            start = time.perf_counter()
            while True:
                for _ in range(8):
                    torch.matmul(a, b, out=c)
                iters += 8
                _sync(dev)  # bounds the queue so the loop ends close to ``seconds``
                elapsed = time.perf_counter() - start
                if elapsed >= seconds:
                    break
        nonfinite = not bool(torch.isfinite(c).all().item())
    except (RuntimeError, MemoryError) as exc:
        error = _oom_text(exc)
    xids = _drain_xids(es) if es is not None else None
    replay_after = _int(nvml.call("nvmlDeviceGetPcieReplayCounter", handle)) if nvml_error is None else None
    return LoadReading(
        device=device,
        seconds=round(elapsed, 3),
        samples=poller.samples,
        reasons_seen=poller.reasons,
        reason_samples=dict(poller.reason_samples),
        peak_temp_c=poller.peak_temp,
        slowdown_temp_c=thresholds["slowdown"],
        shutdown_temp_c=thresholds["shutdown"],
        gpu_max_temp_c=thresholds["gpu_max"],
        link=PcieLink(poller.best_gen, poller.best_width, link0.max_gen, link0.max_width, link0.gpu_max_gen),
        replay_before=replay_before,
        replay_after=replay_after,
        xid_events=xids,
        tflops=round(2 * n**3 * iters / elapsed / 1e12, 3) if elapsed > 0 and iters else None,
        nonfinite=nonfinite,
        error=error,
        nvml_error=nvml_error,
    )


@contextmanager
def _null() -> Iterator[None]:
    yield


# --- performance and bandwidth --------------------------------------------------------------------


def measure_perf(
    device: str,
    uuid: str | None,
    name: str,
    dtype: str,
    n: int,
    copy_bytes: int,
    repeats: int,
    level: str = "quick",
) -> PerfReading:
    """Best-of-``repeats`` n x n matmul TFLOP/s and device-memory copy GB/s (read + written) on ``device``.

    The best call is kept: a healthy device reaches it every run, a degraded one (clocks, contention)
    does not.
    """
    torch = _torch()
    dev = torch.device(device)
    tdtype = getattr(torch, torch_dtype_name(dtype))
    try:
        with _fp32_precision("highest"):
            a = torch.randn(n, n, device=dev).to(tdtype)
            b = torch.randn(n, n, device=dev).to(tdtype)
            c = torch.empty(n, n, device=dev, dtype=tdtype)
            mm = time_calls(dev, lambda: torch.matmul(a, b, out=c), repeats)
        words = max(1, copy_bytes // 4)
        src = torch.ones(words, device=dev, dtype=torch.float32)
        dst = torch.empty_like(src)
        cp = time_calls(dev, lambda: dst.copy_(src), repeats)
    except (RuntimeError, MemoryError) as exc:
        return PerfReading(device, uuid, name, dtype, n, copy_bytes, None, None, level, error=_oom_text(exc))
    return PerfReading(
        device=device,
        uuid=uuid,
        name=name,
        dtype=dtype,
        n=n,
        copy_bytes=copy_bytes,
        matmul_tflops=round(2 * n**3 / min(mm) / 1e12, 6),
        bandwidth_gbps=round(2 * words * 4 / min(cp) / 1e9, 3),
        level=level,
    )


def measure_interconnect(device: str, uuid: str | None, nbytes: int, repeats: int) -> InterconnectReading:
    """Pinned host->device and device->host copy GB/s (best of ``repeats``), and the PCIe link right after."""
    torch = _torch()
    dev = torch.device(device)
    try:
        host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
        gpu = torch.empty(nbytes, dtype=torch.uint8, device=dev)
        h2d = time_calls(dev, lambda: gpu.copy_(host, non_blocking=True), repeats)
        d2h = time_calls(dev, lambda: host.copy_(gpu, non_blocking=True), repeats)
    except (RuntimeError, MemoryError) as exc:
        return InterconnectReading(device, nbytes, None, None, error=_oom_text(exc))
    link = read_pcie_link(_handle(uuid)) if nvml.init() is None else PcieLink()
    return InterconnectReading(
        device=device,
        copy_bytes=nbytes,
        h2d_gbps=round(nbytes / min(h2d) / 1e9, 3),
        d2h_gbps=round(nbytes / min(d2h) / 1e9, 3),
        link=link,
    )


def measure_peer(src: str, dst: str, nbytes: int, repeats: int) -> PeerReading:
    """Peer access between two GPUs and the copy bandwidth src->dst (GB/s), timed by synchronizing both."""
    torch = _torch()
    a_dev, b_dev = torch.device(src), torch.device(dst)
    try:
        access = bool(torch.cuda.can_device_access_peer(a_dev.index or 0, b_dev.index or 0))
        a = torch.empty(nbytes, dtype=torch.uint8, device=a_dev)
        b = torch.empty(nbytes, dtype=torch.uint8, device=b_dev)
        b.copy_(a)
        times = []
        for _ in range(repeats):
            torch.cuda.synchronize(a_dev)
            torch.cuda.synchronize(b_dev)
            t0 = time.perf_counter()
            b.copy_(a)
            torch.cuda.synchronize(a_dev)
            torch.cuda.synchronize(b_dev)
            times.append(time.perf_counter() - t0)
    except (RuntimeError, MemoryError) as exc:
        return PeerReading(src, dst, None, None, error=_oom_text(exc))
    return PeerReading(src, dst, access, round(nbytes / min(times) / 1e9, 3))


# --- history --------------------------------------------------------------------------------------


def load_history(directory: Path, uuid: str | None, limit: int = 10) -> list[PerfReading]:
    """This GPU's stored perf_floor measurements from ``directory/*.json`` (oldest first, the last ``limit``).

    Runs whose perf_floor FAILed are left out, so a slow run does not lower the floor. Unreadable files are
    skipped: history is advisory.
    """
    from gpubench.results import load_json

    if uuid is None or not directory.is_dir():
        return []
    found: list[PerfReading] = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = load_json(path)
        except ValueError:
            continue
        for entry in data.get("checks", []) or []:
            if not isinstance(entry, dict) or entry.get("check") != "perf_floor" or entry.get("uuid") != uuid:
                continue
            if entry.get("verdict") == "FAIL":
                continue
            measured = (entry.get("readings") or {}).get("measured")
            if not isinstance(measured, dict):
                continue
            try:
                reading = PerfReading(**{**measured, "run_id": data.get("run_id")})
            except TypeError:
                continue
            if reading.matmul_tflops:
                found.append(reading)
    return found[-limit:]
