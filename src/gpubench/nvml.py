"""Thin NVML bindings (through ``pynvml`` from nvidia-ml-py).

Everything NVML-specific lives here so that health checks and telemetry work on plain values.
A reading the hardware or driver cannot give is :data:`NA`, never an exception: NVML raises
``NVMLError_NotSupported`` for, e.g., ECC counters on consumer GPUs, and that must not end a run.
Handles are looked up by UUID (``nvmlDeviceGetHandleByUUID``) because NVML numbers GPUs in PCI-bus order
and ignores ``CUDA_VISIBLE_DEVICES``, while PyTorch's ``cuda:N`` does neither.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, Final


class _NotAvailable:
    """The value of a reading that could not be taken. Prints as ``N/A`` like nvidia-smi."""

    _instance: _NotAvailable | None = None

    def __new__(cls) -> _NotAvailable:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "N/A"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "NA"


NA: Final = _NotAvailable()

_lock = threading.Lock()
_state: dict[str, Any] = {"initialised": False, "error": None, "pynvml": None}


def available(value: object) -> bool:
    """True when ``value`` is a real reading (not :data:`NA` and not None)."""
    return value is not NA and value is not None


def init() -> str | None:
    """Initialise NVML once per process. Returns None on success, else one line saying why not.

    The reason is kept, so repeated calls are cheap and give the same answer.
    """
    with _lock:
        if _state["initialised"]:
            return None
        if _state["error"] is not None:
            return str(_state["error"])
        try:
            import pynvml
        except Exception as exc:  # nvidia-ml-py not installed
            _state["error"] = f"NVML not available: pynvml cannot be imported ({exc}); pip install nvidia-ml-py"
            return str(_state["error"])
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound without a driver, DriverNotLoaded, ...
            _state["error"] = f"NVML not available: {_describe(exc)}{_init_hint(exc)}"
            return str(_state["error"])
        _state["initialised"] = True
        _state["pynvml"] = pynvml
        return None


def reset() -> None:
    """Forget the init state, so the next call initialises NVML again through ``pynvml``.

    For tests: ``gpubench.testing.nvml_sim`` calls it when it swaps the library under pynvml.
    """
    with _lock:
        _state.update(initialised=False, error=None, pynvml=None)


def module() -> Any:
    """The pynvml module after a successful :func:`init`; raises RuntimeError otherwise."""
    if init() is not None:
        msg = str(_state["error"])
        raise RuntimeError(msg)
    return _state["pynvml"]


# What a failed nvmlInit most likely means, by pynvml's error class; other errors get no guess.
_INIT_HINTS = {
    "NVMLError_LibraryNotFound": "no NVIDIA driver installed on this machine?",
    "NVMLError_DriverNotLoaded": "no NVIDIA driver loaded on this machine?",
    "NVMLError_NoPermission": "no permission to the NVIDIA device files (/dev/nvidia*): check the user's groups "
                              "or the container's device access",
    "NVMLError_LibRmVersionMismatch": "the NVML library and the loaded kernel driver are different versions: "
                                      "reboot, or reload the driver after an upgrade",
}


def _init_hint(exc: BaseException) -> str:
    hint = _INIT_HINTS.get(type(exc).__name__)
    return f" ({hint})" if hint else ""


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # pynvml's __str__ itself calls NVML and may fail
        text = ""
    return f"{type(exc).__name__}: {text}".rstrip(": ")


def call(name: str, *args: Any, default: Any = NA) -> Any:
    """Call ``pynvml.<name>(*args)``; any NVML failure gives ``default`` (NA). Never raises."""
    if init() is not None:
        return default
    fn: Callable[..., Any] | None = getattr(_state["pynvml"], name, None)
    if fn is None:  # an older nvidia-ml-py without this function
        return default
    try:
        return fn(*args)
    except Exception:
        return default


def call_or_error(name: str, *args: Any) -> tuple[Any, str | None]:
    """Like :func:`call` but also says why a reading failed (for recording in results)."""
    error = init()
    if error is not None:
        return NA, error
    fn = getattr(_state["pynvml"], name, None)
    if fn is None:
        return NA, f"pynvml has no {name} (nvidia-ml-py too old)"
    try:
        return fn(*args), None
    except Exception as exc:
        return NA, _describe(exc)


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def normalise_uuid(uuid: str) -> str:
    """The UUID in the form NVML knows it.

    PyTorch prints a CUDA device's UUID bare; NVML names a whole GPU ``GPU-…`` and a MIG instance ``MIG-…``
    (``nvmlDeviceGetHandleByUUID`` takes both). A bare UUID is tried as a GPU, then as a MIG instance; when
    NVML knows neither (or is absent), the GPU form is returned.
    """
    text = uuid.strip()
    if text.startswith(("GPU-", "MIG-")):
        return text
    for prefix in ("GPU-", "MIG-"):
        if available(call("nvmlDeviceGetHandleByUUID", prefix + text)):
            return prefix + text
    return f"GPU-{text}"


def driver_version() -> Any:
    """The driver version string (``nvidia-smi --query-gpu=driver_version``), or NA."""
    return _text(call("nvmlSystemGetDriverVersion"))


def cuda_driver_version() -> Any:
    """The CUDA version the driver supports, as ``"12.4"``, or NA."""
    raw = call("nvmlSystemGetCudaDriverVersion_v2")
    if not available(raw):
        raw = call("nvmlSystemGetCudaDriverVersion")
    if not available(raw):
        return NA
    return f"{int(raw) // 1000}.{(int(raw) % 1000) // 10}"


def device_count() -> Any:
    """How many GPUs the driver sees (``nvidia-smi -L | wc -l``), ignoring CUDA_VISIBLE_DEVICES; or NA."""
    return call("nvmlDeviceGetCount")


def handle_by_uuid(uuid: str) -> Any:
    """The NVML handle for a UUID (``GPU-…``), or NA."""
    return call("nvmlDeviceGetHandleByUUID", normalise_uuid(uuid))


def handle_by_index(index: int) -> Any:
    """The NVML handle for NVML's own (PCI-order) index; for inventory only, never for cuda:N."""
    return call("nvmlDeviceGetHandleByIndex", index)


def whole_gpu(handle: Any) -> Any:
    """The handle of the physical GPU: ``handle`` itself, or the parent GPU of a MIG device handle.

    Board-level readings (PCI, ECC, clocks, temperature, PCIe link, MIG mode) are read on the whole GPU;
    NVML answers NOT_SUPPORTED for most of them on a MIG device handle. NA when ``handle`` is NA.
    """
    if not available(handle):
        return NA
    is_mig = call("nvmlDeviceIsMigDeviceHandle", handle, default=False)
    if bool(getattr(is_mig, "value", is_mig)):  # pynvml returns a c_uint
        return call("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", handle)
    return handle


def pci_bus_id(uuid: str) -> str | None:
    """``00000000:65:00.0`` for the GPU with this UUID (the parent GPU of a MIG instance), or None when NVML
    cannot tell."""
    handle = whole_gpu(handle_by_uuid(uuid))
    if not available(handle):
        return None
    info = call("nvmlDeviceGetPciInfo", handle)
    if not available(info):
        return None
    return str(_text(getattr(info, "busId", None) or getattr(info, "busIdLegacy", ""))) or None


def clock_event_reasons(handle: Any) -> int:
    """The active clock event reasons bitmask (``nvidia-smi --query-gpu=clocks_event_reasons.active``).

    ``nvmlDeviceGetCurrentClocksEventReasons`` arrived with driver 535; older drivers only export
    ``nvmlDeviceGetCurrentClocksThrottleReasons`` (same bits). The newer call is tried first and the older
    one when the driver lacks the symbol (``FunctionNotFound``) or nvidia-ml-py lacks the wrapper. Every
    other NVML error is raised as pynvml raised it, so callers can tell NotSupported from a lost GPU.
    Raises RuntimeError when NVML is not initialised.
    """
    nv = module()
    newer = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if newer is not None:
        try:
            return int(newer(handle))
        except Exception as exc:
            if getattr(exc, "value", None) != getattr(nv, "NVML_ERROR_FUNCTION_NOT_FOUND", 13):
                raise
    return int(nv.nvmlDeviceGetCurrentClocksThrottleReasons(handle))


def text(name: str, *args: Any) -> Any:
    """Call an NVML function that returns a string (bytes on old bindings) and give str or NA."""
    return _text(call(name, *args))


# --- clock event reasons: names and bits from pynvml's own constants ----------------------------------------

_REASON_PREFIXES = ("nvmlClocksEventReason", "nvmlClocksThrottleReason")  # newer names first (driver 535)
_REASON_NOT_A_BIT = ("None", "All", "UserDefinedClocks")  # no reason, the union, an alias of 0x2


def clock_event_reasons_from(bindings: Any) -> tuple[tuple[str, int], ...]:
    """``(name, bit)`` of every single-bit clock event reason the bindings export, lowest bit first.

    Names are nvidia-smi's ``clocks_event_reasons.<name>`` fields: the constant's suffix in snake case
    (``nvmlClocksEventReasonSwPowerCap`` -> ``sw_power_cap``). The ``nvmlClocksEventReason*`` constants are
    used; an nvidia-ml-py older than them gives the ``nvmlClocksThrottleReason*`` ones (same bits).
    """
    for prefix in _REASON_PREFIXES:
        found: dict[int, str] = {}
        for attr in sorted(dir(bindings)):
            suffix = attr[len(prefix) :]
            if not attr.startswith(prefix) or not suffix or suffix in _REASON_NOT_A_BIT:
                continue
            bit = getattr(bindings, attr)
            if isinstance(bit, int) and bit > 0 and not bit & (bit - 1):
                found.setdefault(bit, re.sub(r"(?<!^)(?=[A-Z])", "_", suffix).lower())
        if found:
            return tuple((name, bit) for bit, name in sorted(found.items()))
    return ()


def _pynvml_reasons() -> tuple[tuple[str, int], ...]:
    try:
        import pynvml  # constants only: importing does not load the NVML library
    except Exception:  # nvidia-ml-py missing: every bit decodes as unknown_0x...
        return ()
    return clock_event_reasons_from(pynvml)


CLOCK_EVENT_REASONS: Final[tuple[tuple[str, int], ...]] = _pynvml_reasons()
"""``(name, bit)`` of NVML's clock event reasons (``nvidia-smi --query-gpu=clocks_event_reasons.*``)."""


def clock_event_reason_bit(name: str) -> int:
    """The bit of one clock event reason by its nvidia-smi name; 0 when the bindings do not export it."""
    return next((bit for known, bit in CLOCK_EVENT_REASONS if known == name), 0)


def decode_clock_event_reasons(mask: int) -> tuple[str, ...]:
    """Names of the set bits of a clock-event-reasons mask, lowest bit first; unknown bits as ``unknown_0x...``."""
    names = [name for name, bit in CLOCK_EVENT_REASONS if mask & bit]
    rest = int(mask) & ~sum(bit for _, bit in CLOCK_EVENT_REASONS)
    bit = 1
    while rest > 0:
        if rest & bit:
            names.append(f"unknown_{bit:#x}")
            rest &= ~bit
        bit <<= 1
    return tuple(names)
