"""A simulated machine, and installing it as the library under the real ``pynvml``.

pynvml loads ``libnvidia-ml.so.1`` into its module global ``nvmlLib`` and looks every C function up
with ``getattr(nvmlLib, name)`` (cached in ``_nvmlGetFunctionPointer_cache``). Installing puts a
:class:`SimulatedLibrary` there instead, so every pynvml wrapper runs unchanged and only the C side is
answered from the profile. Uninstalling puts back exactly what was there before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pynvml

from gpubench import nvml as gpubench_nvml
from gpubench.testing.nvml_sim.clock import SimClock
from gpubench.testing.nvml_sim.loader import load_profile
from gpubench.testing.nvml_sim.profile import Profile, error_code
from gpubench.testing.nvml_sim.readings import ReadingFunctions
from gpubench.testing.nvml_sim.state import UNINITIALIZED, Fault
from gpubench.testing.nvml_sim.symbols import NO_INIT_NEEDED, SIMULATED_FUNCTIONS
from gpubench.testing.nvml_sim.system import SystemFunctions


class _Symbol:
    """One exported C function. Like a ctypes function pointer it accepts ``restype``/``argtypes``."""

    def __init__(self, name: str, machine: SimulatedMachine) -> None:
        self.__name__ = name
        self.restype: Any = None
        self.argtypes: Any = None
        self._machine = machine

    def __call__(self, *args: Any) -> Any:
        return self._machine.call(self.__name__, args)

    def __repr__(self) -> str:
        return f"<simulated NVML function {self.__name__}>"


class SimulatedLibrary:
    """What ``pynvml.nvmlLib`` holds while a machine is installed: attributes named like C symbols.

    A symbol the profile's driver lacks raises AttributeError, as ``CDLL`` does; pynvml turns that
    into ``NVMLError_FunctionNotFound``.
    """

    def __init__(self, machine: SimulatedMachine) -> None:
        self._machine = machine
        self._symbols: dict[str, _Symbol] = {}

    def __getattr__(self, name: str) -> _Symbol:
        if (
            name.startswith("_")
            or name not in SIMULATED_FUNCTIONS
            or name in self._machine.profile.missing_functions
        ):
            msg = f"simulated libnvidia-ml.so.1: undefined symbol: {name}"
            raise AttributeError(msg)
        if name not in self._symbols:
            self._symbols[name] = _Symbol(name, self._machine)
        return self._symbols[name]

    def __repr__(self) -> str:
        return f"<simulated libnvidia-ml.so.1: {self._machine.profile.name}>"


class SimulatedMachine(SystemFunctions, ReadingFunctions):
    """One simulated machine: its profile, clock, injected faults and the log of C calls made.

    Use :func:`simulated_nvml` to install it; tests then talk to it through pynvml (or gpubench) and to
    this object only to steer it: :meth:`inject`, :meth:`lose_gpu`, :meth:`deliver_xid`, ``clock``.
    """

    def __init__(self, profile: Profile, clock: SimClock | None = None) -> None:
        super().__init__(profile, clock)
        self.library = SimulatedLibrary(self)
        self._saved: tuple[Any, dict[str, Any], int] | None = None

    # steering ----------------------------------------------------------------------------------

    def inject(
        self,
        function: str,
        *,
        gpu: int | None = None,
        error: str | int = "NotSupported",
        after: int = 0,
        times: int | None = None,
    ) -> Fault:
        """Make ``function`` fail with ``error`` on ``gpu`` (None: every GPU and system calls).

        ``function`` is a C symbol, a pynvml name (``nvmlDeviceGetCount`` also covers ``_v2``), or
        ``"*"`` for every function. The first ``after`` matching calls still succeed (a GPU lost
        mid-run); ``times`` limits how often it fails (None: always, from then on). ``error`` is a
        name such as ``"NotSupported"``, ``"NO_PERMISSION"``, ``"GpuIsLost"``, or a return code.
        """
        return self.add_fault(function, gpu, error_code(error), after, times)

    def lose_gpu(self, gpu: int, *, after: int = 0) -> Fault:
        """Every call about ``gpu`` returns NVML_ERROR_GPU_IS_LOST after ``after`` more calls."""
        return self.inject("*", gpu=gpu, error="GpuIsLost", after=after)

    def call_count(self, function: str, gpu: int | None = None) -> int:
        """How often a C symbol was called (on ``gpu``, when given)."""
        return sum(1 for name, g in self.calls if name == function and (gpu is None or g == gpu))

    # dispatch ----------------------------------------------------------------------------------

    def call(self, symbol: str, args: tuple[Any, ...]) -> Any:
        """Answer one C call: log it, check init and faults, then run the function."""
        with self.lock:
            gpu = self.attribute(symbol, args)
            self.calls.append((symbol, gpu))
            if symbol == "nvmlErrorString":
                return self.nvmlErrorString(*args)
            if symbol not in NO_INIT_NEEDED and self.init_count == 0:
                return UNINITIALIZED
            code = self.fault_code(symbol, gpu)
            if code is not None:
                return code
            result: int = getattr(self, symbol)(*args)
            return result

    # installing --------------------------------------------------------------------------------

    def install(self) -> None:
        """Put this machine under pynvml (remembering what was there) and reset gpubench's NVML state."""
        if self._saved is not None:
            msg = "this simulated machine is already installed"
            raise RuntimeError(msg)
        with pynvml.libLoadLock:
            self._saved = (
                pynvml.nvmlLib,
                dict(pynvml._nvmlGetFunctionPointer_cache),
                pynvml._nvmlLib_refcount,
            )
            pynvml.nvmlLib = self.library
            pynvml._nvmlGetFunctionPointer_cache.clear()
            pynvml._nvmlLib_refcount = 0
        gpubench_nvml.reset()

    def uninstall(self) -> None:
        """Give pynvml back its previous library, function cache and refcount."""
        if self._saved is None:
            return
        lib, cache, refcount = self._saved
        with pynvml.libLoadLock:
            pynvml.nvmlLib = lib
            pynvml._nvmlGetFunctionPointer_cache.clear()
            pynvml._nvmlGetFunctionPointer_cache.update(cache)
            pynvml._nvmlLib_refcount = refcount
        self._saved = None
        gpubench_nvml.reset()


@contextmanager
def simulated_nvml(
    profile: str | Path | Mapping[str, Any] | Profile = "h100-sxm", *, clock: SimClock | None = None
) -> Iterator[SimulatedMachine]:
    """Install a simulated machine under pynvml for the ``with`` block.

    ``profile`` is a shipped profile name, a path to a profile JSON file, a dict in that form, or a
    :class:`Profile`. gpubench's cached NVML state is reset on entry and exit.
    """
    machine = SimulatedMachine(load_profile(profile), clock=clock)
    machine.install()
    try:
        yield machine
    finally:
        machine.uninstall()
