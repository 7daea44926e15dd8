"""What a simulated machine remembers between calls, and the ctypes plumbing its functions share.

The functions receive exactly what pynvml's wrappers pass to the C library: ``byref(c_uint())`` out
parameters, char buffers with their length, pointers to structs, opaque handles. Handles are the
addresses of small buffers this machine owns, so they are real non-NULL pointers that stay valid
while the machine exists.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

import pynvml

from gpubench.testing.nvml_sim.clock import SimClock
from gpubench.testing.nvml_sim.profile import Gpu, MigDevice, Process, Profile, error_code
from gpubench.testing.nvml_sim.symbols import symbols_for

SUCCESS: Final[int] = pynvml.NVML_SUCCESS
UNINITIALIZED: Final[int] = pynvml.NVML_ERROR_UNINITIALIZED
INVALID_ARGUMENT: Final[int] = pynvml.NVML_ERROR_INVALID_ARGUMENT
NOT_SUPPORTED: Final[int] = pynvml.NVML_ERROR_NOT_SUPPORTED
NOT_FOUND: Final[int] = pynvml.NVML_ERROR_NOT_FOUND
INSUFFICIENT_SIZE: Final[int] = pynvml.NVML_ERROR_INSUFFICIENT_SIZE
TIMEOUT: Final[int] = pynvml.NVML_ERROR_TIMEOUT
VERSION_MISMATCH: Final[int] = pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH


@dataclass(frozen=True)
class DeviceRef:
    """What a handle points at: a GPU by NVML index, or one of its MIG devices."""

    gpu: int
    mig: int | None = None


@dataclass
class Fault:
    """An injected error: ``function`` on ``gpu`` (None: any) returns ``code`` after ``after`` good calls.

    ``times`` limits how often it fires (None: from then on, like a GPU that is gone for good).
    """

    function: str
    symbols: frozenset[str]
    gpu: int | None
    code: int
    after: int = 0
    times: int | None = None
    calls: int = 0
    fired: int = 0

    def hit(self, symbol: str, gpu: int | None) -> bool:
        if symbol not in self.symbols or (self.gpu is not None and gpu != self.gpu):
            return False
        self.calls += 1
        if self.calls <= self.after or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


@dataclass
class EventSet:
    """An ``nvmlEventSet_t``: the GPUs registered for XID events and the events waiting to be read."""

    registered: dict[int, int] = field(default_factory=dict)  # gpu index -> event type mask
    pending: deque[tuple[int, int, int]] = field(default_factory=deque)  # (gpu, event type, data)


@dataclass
class GpmSample:
    """An ``nvmlGpmSample_t``: which GPU it was taken on and when (simulated seconds), once taken."""

    gpu: int | None = None
    taken_at: float | None = None


def out(arg: Any) -> Any:
    """The ctypes object behind ``byref(x)`` or ``pointer(x)`` (or ``x`` itself)."""
    if isinstance(arg, ctypes._Pointer):
        return arg.contents
    return getattr(arg, "_obj", arg)


def value(arg: Any) -> int:
    """A number passed by value, as a ctypes scalar or a plain int."""
    return int(getattr(arg, "value", arg))


def address(arg: Any) -> int | None:
    """The address a pointer argument holds (None for NULL or a non-pointer)."""
    if arg is None:
        return None
    if isinstance(arg, ctypes._Pointer):
        return ctypes.cast(arg, ctypes.c_void_p).value
    return None


def set_pointer(target: Any, addr: int) -> None:
    """Store ``addr`` in a pointer-typed ctypes object (a handle out-parameter)."""
    ctypes.c_void_p.from_buffer(target).value = addr


def write_text(buf: Any, length: Any, text: str) -> int:
    """Copy ``text`` into a char buffer of ``length`` bytes as C does, or say it does not fit."""
    data = text.encode()
    if len(data) + 1 > value(length) or len(data) + 1 > ctypes.sizeof(buf):
        return INSUFFICIENT_SIZE
    ctypes.memmove(buf, data + b"\0", len(data) + 1)
    return SUCCESS


class MachineState:
    """The mutable side of a simulated machine; the NVML functions are mixed in on top of it."""

    def __init__(self, profile: Profile, clock: SimClock | None = None) -> None:
        self.profile = profile
        self.clock = clock if clock is not None else SimClock()
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, int | None]] = []
        self.lock = threading.RLock()
        self.init_count = 0
        self._buffers: list[ctypes.Array[ctypes.c_char]] = []
        self._refs: dict[int, DeviceRef] = {}
        self._addr: dict[DeviceRef, int] = {}
        self.event_sets: dict[int, EventSet] = {}
        self.gpm_samples: dict[int, GpmSample] = {}
        for index, gpu in enumerate(profile.gpus):
            self._new_handle(DeviceRef(index))
            for mig_index in range(len(gpu.mig.devices) if gpu.mig else 0):
                self._new_handle(DeviceRef(index, mig_index))
        self.xid_queue: dict[int, list[int]] = {i: list(g.xid_events) for i, g in enumerate(profile.gpus)}
        for index, gpu in enumerate(profile.gpus):
            for function, error in gpu.errors.items():
                self.add_fault(function, index, error_code(error))

    # handles ---------------------------------------------------------------------------------

    def _allocate(self) -> int:
        buf = ctypes.create_string_buffer(16)
        self._buffers.append(buf)
        return ctypes.addressof(buf)

    def _new_handle(self, ref: DeviceRef) -> None:
        addr = self._allocate()
        self._refs[addr] = ref
        self._addr[ref] = addr

    def handle_address(self, ref: DeviceRef) -> int:
        return self._addr[ref]

    def ref(self, handle: Any) -> DeviceRef | None:
        """The device behind a handle argument, or None for NULL / a pointer this machine never gave out."""
        addr = address(handle)
        return self._refs.get(addr) if addr is not None else None

    def give_handle(self, target: Any, ref: DeviceRef) -> int:
        set_pointer(out(target), self._addr[ref])
        return SUCCESS

    def gpu(self, ref: DeviceRef) -> Gpu:
        return self.profile.gpus[ref.gpu]

    def mig_device(self, ref: DeviceRef) -> MigDevice | None:
        gpu = self.gpu(ref)
        if ref.mig is None or gpu.mig is None:
            return None
        return gpu.mig.devices[ref.mig]

    def find_uuid(self, uuid: str) -> DeviceRef | None:
        for index, gpu in enumerate(self.profile.gpus):
            if gpu.uuid == uuid:
                return DeviceRef(index)
            for mig_index, device in enumerate(gpu.mig.devices if gpu.mig else ()):
                if device.uuid == uuid:
                    return DeviceRef(index, mig_index)
        return None

    def new_opaque(self) -> int:
        """An address for an event set or GPM sample."""
        return self._allocate()

    def self_pid(self) -> int:
        """The PID NVML reports for the test process: the host PID when the profile is a container."""
        return self.profile.self_host_pid if self.profile.self_host_pid is not None else os.getpid()

    def process_pid(self, process: Process) -> int:
        return self.self_pid() if process.pid == "self" else int(process.pid)

    # faults ----------------------------------------------------------------------------------

    def add_fault(
        self, function: str, gpu: int | None, code: int, after: int = 0, times: int | None = None
    ) -> Fault:
        if gpu is not None and not 0 <= gpu < len(self.profile.gpus):
            msg = f"no GPU {gpu} in profile {self.profile.name!r} ({len(self.profile.gpus)} GPUs)"
            raise ValueError(msg)
        fault = Fault(function, symbols_for(function), gpu, code, after, times)
        with self.lock:
            self.faults.append(fault)
        return fault

    def fault_code(self, symbol: str, gpu: int | None) -> int | None:
        for fault in self.faults:
            if fault.hit(symbol, gpu):
                return fault.code
        return None

    def attribute(self, symbol: str, args: tuple[Any, ...]) -> int | None:
        """Which GPU a call is about (for faults and the call log): its handle, index or UUID."""
        if not args:
            return None
        if symbol.startswith("nvmlDeviceGetHandleByIndex"):
            return value(args[0])
        if symbol == "nvmlDeviceGetHandleByUUID":
            raw = getattr(args[0], "value", None)
            ref = self.find_uuid(raw.decode(errors="replace")) if isinstance(raw, bytes) else None
            return ref.gpu if ref else None
        ref = self.ref(args[0])
        return ref.gpu if ref else None
