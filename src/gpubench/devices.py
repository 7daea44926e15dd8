"""Device strings, what PyTorch can see, and why a configured device cannot be used.

The decision functions here are pure: they take a :class:`CudaProbe` (what PyTorch and NVML report)
and return values, so every failure reason is testable on a machine without a GPU. Only
:func:`probe_cuda` touches torch and NVML, and it asks PyTorch about CUDA devices through one seam,
:func:`cuda_runtime` (``torch.cuda`` and ``torch.version`` behind :class:`CudaRuntime`), which
``gpubench.testing.cuda_sim`` replaces with a simulated node for tests.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

DeviceKind = Literal["cpu", "cuda"]
FallbackPolicy = Literal["next", "cpu", "none"]
FALLBACK_POLICIES: tuple[str, ...] = ("next", "cpu", "none")
DTYPES: tuple[str, ...] = ("f16", "bf16", "f32", "f64")
DEVICE_FORMS = "cpu, gpu (= cuda:0), cuda (= cuda:0), cuda:N"

_DEVICE_RE = re.compile(r"^(?:(cpu)|(gpu)|(cuda)(?::(\d+))?)$")


class DeviceError(ValueError):
    """A device string that is not one of the accepted forms."""


@dataclass(frozen=True, order=True)
class DeviceSpec:
    """A parsed device string. ``text`` keeps what the user wrote (``gpu``), ``name`` what torch takes."""

    kind: DeviceKind
    index: int | None = None
    text: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        """The canonical torch device string: ``cpu`` or ``cuda:N``."""
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index or 0}"

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    def __str__(self) -> str:
        return self.name


def parse_device(text: str) -> DeviceSpec:
    """Parse ``cpu``, ``gpu``, ``cuda`` or ``cuda:N`` (case and surrounding blanks ignored).

    ``gpu`` and ``cuda`` mean ``cuda:0``, as in the Simple project where these config files come from.
    """
    cleaned = str(text).strip().lower()
    m = _DEVICE_RE.match(cleaned)
    if m is None:
        hint = ""
        if cleaned.startswith(("mps", "xpu", "rocm", "hip", "tpu")):
            hint = " gpubench drives NVIDIA GPUs through CUDA (ROCm builds of PyTorch also answer to cuda:N)."
        msg = f"unknown device {text!r}: expected one of {DEVICE_FORMS}.{hint}"
        raise DeviceError(msg)
    if m.group(1):
        return DeviceSpec("cpu", None, text)
    if m.group(2) or m.group(4) is None:
        return DeviceSpec("cuda", 0, text)
    return DeviceSpec("cuda", int(m.group(4)), text)


def parse_device_list(text: str | list[str] | tuple[str, ...]) -> tuple[DeviceSpec, ...]:
    """Parse ``"cuda:0,cuda:1"`` or a list of device strings; duplicates are dropped, order kept."""
    items = text.split(",") if isinstance(text, str) else list(text)
    specs: list[DeviceSpec] = []
    for item in items:
        if not str(item).strip():
            continue
        spec = parse_device(item)
        if spec not in specs:
            specs.append(spec)
    if not specs:
        msg = f"no device named in {text!r}: expected a comma-separated list of {DEVICE_FORMS}"
        raise DeviceError(msg)
    return tuple(specs)


@dataclass(frozen=True)
class CudaDeviceInfo:
    """One device as PyTorch sees it. Memory in bytes."""

    index: int
    name: str
    total_memory: int
    capability: tuple[int, int]
    uuid: str | None  # NVML form, "GPU-..." (or "MIG-..."), None when torch cannot tell
    pci_bus_id: str | None  # "00000000:65:00.0", from NVML by UUID; None without NVML
    multi_processor_count: int = 0


@dataclass(frozen=True)
class CudaProbe:
    """What this process can see: PyTorch, its CUDA build, the driver (through NVML), the GPUs."""

    torch_version: str | None
    torch_error: str | None = None  # why ``import torch`` failed
    cuda_build: str | None = None  # torch.version.cuda; None for a CPU-only build
    hip_build: str | None = None
    cuda_available: bool = False
    device_count: int = 0
    devices: tuple[CudaDeviceInfo, ...] = ()
    cuda_visible_devices: str | None = None  # the variable as set, None when unset
    driver_version: str | None = None
    nvml_device_count: int | None = None  # NVML ignores CUDA_VISIBLE_DEVICES: the machine's count
    nvml_error: str | None = None
    cudnn_version: int | None = None
    cuda_error: str | None = None  # the error torch gave when initialising CUDA, if any

    def device(self, index: int) -> CudaDeviceInfo | None:
        for info in self.devices:
            if info.index == index:
                return info
        return None


@dataclass(frozen=True)
class Unusable:
    """Why a device cannot be used, and what to do about it."""

    code: Literal["torch_missing", "cpu_only_build", "no_driver", "hidden_by_cvd", "index_out_of_range"]
    reason: str
    remedy: str

    def __str__(self) -> str:
        return f"{self.reason} Fix: {self.remedy}"


def why_unusable(spec: DeviceSpec, probe: CudaProbe) -> Unusable | None:
    """The exact reason ``spec`` cannot be used in this process, or None when it can."""
    if probe.torch_version is None:
        return Unusable(
            "torch_missing",
            f"PyTorch is not importable ({probe.torch_error or 'import torch failed'}).",
            "install it in this environment: pip install torch (or use the environment that has it).",
        )
    if spec.kind == "cpu":
        return None
    index = spec.index or 0
    if probe.cuda_build is None and probe.hip_build is None:
        return Unusable(
            "cpu_only_build",
            f"this PyTorch build ({probe.torch_version}) has no CUDA support, so {spec.name} cannot exist.",
            "install a CUDA build of PyTorch (pick the CUDA version matching your driver in the PyTorch "
            "install selector), or run with --device cpu.",
        )
    cvd = probe.cuda_visible_devices
    if cvd is not None and probe.device_count <= index:
        visible = [v for v in cvd.split(",") if v.strip()]
        machine = (
            f"; NVML sees {probe.nvml_device_count} GPU(s) on the machine" if probe.nvml_device_count else ""
        )
        # With the driver answering (NVML counted GPUs) or the variable empty or fully used, it is the
        # variable that makes cuda:N absent, not a missing driver.
        if not visible or probe.nvml_device_count is not None or probe.device_count == len(visible):
            return Unusable(
                "hidden_by_cvd",
                f"CUDA_VISIBLE_DEVICES={cvd!r} exposes {probe.device_count} GPU(s) to this process, "
                f"so {spec.name} does not exist here{machine}.",
                "unset CUDA_VISIBLE_DEVICES or add the GPU to it; remember that CUDA renumbers the visible "
                "GPUs from 0 (CUDA_VISIBLE_DEVICES=1 makes physical GPU 1 appear as cuda:0).",
            )
    if not probe.cuda_available or probe.device_count == 0:
        detail = probe.nvml_error or probe.cuda_error or "torch.cuda.is_available() is False"
        return Unusable(
            "no_driver",
            f"no usable NVIDIA driver or GPU: PyTorch {probe.torch_version} (CUDA {probe.cuda_build}) "
            f"found no GPU ({detail}).",
            "check that `nvidia-smi` lists the GPU; install or repair the NVIDIA driver (it must support "
            f"CUDA {probe.cuda_build}); in a container, start it with the GPUs exposed (--gpus all).",
        )
    if index >= probe.device_count:
        names = ", ".join(f"cuda:{d.index} ({d.name})" for d in probe.devices) or "none"
        return Unusable(
            "index_out_of_range",
            f"only {probe.device_count} GPU(s) visible ({names}); {spec.name} does not exist.",
            f"choose one of cuda:0..cuda:{probe.device_count - 1} (see `gpubench info`), or set the "
            "device in dl.config.sdn / --device.",
        )
    return None


@dataclass(frozen=True)
class ResolvedDevice:
    """The device a workload runs on. ``fallback`` is True when it is not the one requested."""

    requested: DeviceSpec
    device: DeviceSpec | None  # None when the policy is "none" and the requested device is unusable
    unusable: Unusable | None = None

    @property
    def fallback(self) -> bool:
        return self.device is not None and self.device != self.requested

    @property
    def note(self) -> str:
        """One line for output and for every result row; empty when the requested device is used."""
        if self.unusable is None:
            return ""
        if self.device is None:
            return f"{self.requested.name} unusable: {self.unusable.reason}"
        return (
            f"FALLBACK: {self.requested.name} requested but unusable ({self.unusable.reason}); "
            f"ran on {self.device.name} instead"
        )


def resolve(spec: DeviceSpec, probe: CudaProbe, policy: str = "next") -> ResolvedDevice:
    """Apply the fallback policy: ``next`` (the next usable GPU, else cpu), ``cpu``, or ``none``."""
    if policy not in FALLBACK_POLICIES:
        msg = f"unknown fallback policy {policy!r}: expected one of {', '.join(FALLBACK_POLICIES)}"
        raise ValueError(msg)
    problem = why_unusable(spec, probe)
    if problem is None:
        return ResolvedDevice(spec, spec)
    if policy == "none" or problem.code == "torch_missing":
        return ResolvedDevice(spec, None, problem)
    if policy == "next":
        start = (spec.index or 0) + 1 if spec.is_cuda else 0
        order = [*range(start, probe.device_count), *range(0, min(start, probe.device_count))]
        for index in order:
            candidate = DeviceSpec("cuda", index, f"cuda:{index}")
            if why_unusable(candidate, probe) is None:
                return ResolvedDevice(spec, candidate, problem)
    return ResolvedDevice(spec, DeviceSpec("cpu", None, "cpu"), problem)


def dtype_support(spec: DeviceSpec, probe: CudaProbe) -> dict[str, str | None]:
    """For each gpubench dtype, None when usable on ``spec``, else the reason it is not."""
    support: dict[str, str | None] = dict.fromkeys(DTYPES)
    if spec.kind == "cpu":
        return support
    info = probe.device(spec.index or 0)
    if info is None:
        return {d: f"{spec.name} is not available" for d in DTYPES}
    major, minor = info.capability
    if probe.hip_build is None and major < 8:
        support["bf16"] = (
            f"{info.name} (compute capability {major}.{minor}) has no native bfloat16; "
            "it needs compute capability 8.0 (Ampere) or newer. Use f16 or f32."
        )
    if probe.hip_build is None and (major, minor) < (5, 3):
        support["f16"] = f"{info.name} (compute capability {major}.{minor}) has no fast float16 arithmetic."
    return support


def torch_dtype_name(dtype: str) -> str:
    """Map a gpubench dtype (``f32``) to the attribute of ``torch`` (``float32``)."""
    names = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64"}
    if dtype not in names:
        msg = f"unknown dtype {dtype!r}: expected one of {', '.join(DTYPES)}"
        raise ValueError(msg)
    return names[dtype]


class CudaRuntime(Protocol):
    """What gpubench asks PyTorch about CUDA devices: :func:`probe_cuda`, the identity check and the active
    checks go through this, never through ``torch.cuda`` directly, so tests can put a simulated node here.

    ``get_device_properties(i)`` gives an object with ``name``, ``total_memory`` (bytes), ``major``,
    ``minor``, ``uuid`` (as torch prints it: bare, without ``GPU-``/``MIG-``), ``pci_bus_id``,
    ``pci_device_id``, ``pci_domain_id`` and ``multi_processor_count``, like torch's ``_CudaDeviceProperties``.
    """

    def is_available(self) -> bool: ...

    def device_count(self) -> int: ...

    def get_device_properties(self, index: int) -> Any: ...

    def cuda_build(self) -> str | None:
        """``torch.version.cuda``: None for a CPU-only (or ROCm) build."""

    def hip_build(self) -> str | None:
        """``torch.version.hip``: None unless a ROCm build."""

    def cudnn_version(self) -> int | None:
        """``torch.backends.cudnn.version()``, or None without cuDNN."""

    def has_primary_context(self, index: int) -> bool | None:
        """Whether this process holds a CUDA context on ``cuda:index`` (None: cannot tell)."""

    def can_device_access_peer(self, index: int, peer: int) -> bool: ...

    def execution_device(self, index: int) -> str:
        """The torch device kernels for ``cuda:index`` run on: ``cuda:index`` itself, except under a
        simulated runtime in tests, which runs them on ``cpu`` while NVML answers from a profile."""


class TorchCuda:
    """The real :class:`CudaRuntime`: ``torch.cuda`` and ``torch.version`` (imported on first use)."""

    def _torch(self) -> Any:
        import torch

        return torch

    def is_available(self) -> bool:
        return bool(self._torch().cuda.is_available())

    def device_count(self) -> int:
        return int(self._torch().cuda.device_count())

    def get_device_properties(self, index: int) -> Any:
        return self._torch().cuda.get_device_properties(index)

    def cuda_build(self) -> str | None:
        version = self._torch().version.cuda
        return None if version is None else str(version)

    def hip_build(self) -> str | None:
        version = getattr(self._torch().version, "hip", None)
        return None if version is None else str(version)

    def cudnn_version(self) -> int | None:
        cudnn = self._torch().backends.cudnn
        try:
            version = cudnn.version() if cudnn.is_available() else None
        except Exception:  # cuDNN missing from the build: leave it unknown
            return None
        return None if version is None else int(version)

    def has_primary_context(self, index: int) -> bool | None:
        # a private but long-standing torch function: asks the driver without creating a context
        ask = getattr(self._torch()._C, "_cuda_hasPrimaryContext", None)
        try:
            return None if ask is None else bool(ask(index))
        except Exception:  # no driver, bad index
            return None

    def can_device_access_peer(self, index: int, peer: int) -> bool:
        return bool(self._torch().cuda.can_device_access_peer(index, peer))

    def execution_device(self, index: int) -> str:
        return f"cuda:{index}"


_runtime_lock = threading.Lock()
_runtime: list[CudaRuntime] = []  # the replacement installed by use_cuda_runtime, innermost last


def cuda_runtime() -> CudaRuntime:
    """The :class:`CudaRuntime` in use: ``torch.cuda`` unless a test installed another."""
    with _runtime_lock:
        return _runtime[-1] if _runtime else TorchCuda()


@contextmanager
def use_cuda_runtime(runtime: CudaRuntime) -> Iterator[CudaRuntime]:
    """Answer every question about CUDA devices from ``runtime`` inside the ``with`` block. For tests only
    (``gpubench.testing.cuda_sim.simulated_cuda`` installs a simulated node this way); nothing in gpubench
    calls it.
    """
    with _runtime_lock:
        _runtime.append(runtime)
    try:
        yield runtime
    finally:
        with _runtime_lock:
            _runtime.remove(runtime)


def execution_device(device: str) -> str:
    """The torch device the work for ``device`` (``cpu``, ``cuda:N``) runs on: ``device`` itself, except
    under a simulated CUDA runtime installed by a test (see :meth:`CudaRuntime.execution_device`)."""
    spec = parse_device(device)
    if spec.kind == "cpu":
        return "cpu"
    return cuda_runtime().execution_device(spec.index or 0)


def _cuda_device(runtime: CudaRuntime, index: int, nvml_ok: bool) -> CudaDeviceInfo:
    from gpubench import nvml

    props = runtime.get_device_properties(index)
    raw_uuid = getattr(props, "uuid", None)
    uuid = nvml.normalise_uuid(str(raw_uuid)) if raw_uuid is not None else None
    return CudaDeviceInfo(
        index=index,
        name=str(props.name),
        total_memory=int(props.total_memory),
        capability=(int(props.major), int(props.minor)),
        uuid=uuid,
        pci_bus_id=nvml.pci_bus_id(uuid) if (uuid and nvml_ok) else None,
        multi_processor_count=int(getattr(props, "multi_processor_count", 0)),
    )


def probe_cuda() -> CudaProbe:
    """Ask PyTorch (through :func:`cuda_runtime`) and NVML, when it can be read, what this process can use.
    Never raises."""
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        import torch
    except Exception as exc:  # ImportError, or a broken install raising OSError at import
        return CudaProbe(None, torch_error=f"{type(exc).__name__}: {exc}", cuda_visible_devices=cvd)

    from gpubench import nvml

    runtime = cuda_runtime()
    nvml_error = nvml.init()
    driver = nvml.driver_version() if nvml_error is None else None
    nvml_count = nvml.device_count() if nvml_error is None else None
    cuda_error = None
    try:
        available = bool(runtime.is_available())
        count = int(runtime.device_count()) if available else 0
    except Exception as exc:  # a half-installed driver can raise here
        available, count, cuda_error = False, 0, f"{type(exc).__name__}: {exc}"
    devices = []
    for index in range(count):
        try:
            devices.append(_cuda_device(runtime, index, nvml_error is None))
        except Exception as exc:
            cuda_error = f"get_device_properties({index}) failed: {exc}"
    return CudaProbe(
        torch_version=str(torch.__version__),
        cuda_build=runtime.cuda_build(),
        hip_build=runtime.hip_build(),
        cuda_available=available,
        device_count=count,
        devices=tuple(devices),
        cuda_visible_devices=cvd,
        driver_version=driver if isinstance(driver, str) else None,
        nvml_device_count=nvml_count if isinstance(nvml_count, int) else None,
        nvml_error=nvml_error,
        cudnn_version=runtime.cudnn_version(),
        cuda_error=cuda_error,
    )


def with_devices(probe: CudaProbe, devices: tuple[CudaDeviceInfo, ...]) -> CudaProbe:
    """A copy of ``probe`` with these devices visible (for tests and for what-if output)."""
    return replace(probe, devices=devices, device_count=len(devices), cuda_available=bool(devices))
