"""What the checks' probes share: NVML values as readings, the device handle, and running work on a device.

Passive readings come from NVML through :mod:`gpubench.nvml`, where a reading the GPU cannot give is N/A;
here it becomes ``None``, the readings' "not available". Board-level readings (ECC, clocks, PCIe, modes) are
taken on :func:`gpu_handle`, the whole GPU even for a MIG instance. Active tests run for real on ``cpu`` as
well as on ``cuda:N``, so their logic is tested on machines without a GPU; they place their tensors on
:func:`torch_device`, which is ``cuda:N`` itself except under a simulated CUDA runtime in tests
(:func:`gpubench.devices.execution_device`). GPU work is timed with CUDA events recorded
on the measured device's stream, or by synchronizing that device (``torch.cuda.synchronize(device)``), never
the whole machine. ``torch`` is imported on first use, so that importing a check stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from gpubench import devices, nvml

if TYPE_CHECKING:
    import torch


def na_to_none(value: Any) -> Any:
    """NVML's N/A as None (readings use None for "not available")."""
    return value if nvml.available(value) else None


def as_int(value: Any) -> int | None:
    value = na_to_none(value)
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def as_bool(value: Any) -> bool | None:
    value = as_int(value)
    return None if value is None else bool(value)


def as_text(value: Any) -> str | None:
    value = na_to_none(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return None if value is None else str(value)


def device_handle(uuid: str | None) -> Any:
    """The NVML handle of the GPU with this UUID (never looked up by index), or NA."""
    return nvml.handle_by_uuid(uuid) if uuid else nvml.NA


def gpu_handle(uuid: str | None) -> Any:
    """The NVML handle of the physical GPU behind this UUID (a MIG instance's parent GPU), or NA."""
    return nvml.whole_gpu(device_handle(uuid))


def handle_or_error(uuid: str | None) -> tuple[Any, str | None]:
    """The NVML handle for this UUID, or NA and why not (NVML missing, ``NVMLError_GpuIsLost: ...``)."""
    error = nvml.init()
    if error is not None:
        return nvml.NA, error
    if not uuid:
        return nvml.NA, "PyTorch gives no UUID for this device"
    return nvml.call_or_error("nvmlDeviceGetHandleByUUID", nvml.normalise_uuid(uuid))


def gpu_lost(error: str | None) -> bool:
    """Whether an NVML error says the GPU fell off the bus (``NVML_ERROR_GPU_IS_LOST``, XID 79 territory)."""
    return error is not None and ("GpuIsLost" in error or "GPU is lost" in error)


LOST_REMEDY = (
    "the GPU stopped answering (look for XID 79 in dmesg): drain it, reset it (nvidia-smi -r) or reboot; if it "
    "repeats, check power and seating and RMA it."
)


def torch_device(device: str) -> torch.device:
    """The torch device an active test of ``device`` (``cpu``, ``cuda:N``) puts its tensors on."""
    dev: torch.device = torch_module().device(devices.execution_device(device))
    return dev


def torch_module() -> Any:
    import torch

    return torch


def sync(dev: torch.device) -> None:
    """Wait for ``dev`` only (not the current device); nothing to wait for on cpu."""
    if dev.type == "cuda":
        torch_module().cuda.synchronize(dev)


def time_calls(dev: torch.device, fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn`` on ``dev``, one figure per round, timed by the benchmarks' own
    :class:`gpubench.timing.DeviceTimer`: it synchronizes ``dev`` itself (not the current device), uses CUDA
    events for device work, and repeats calls within a round until the synchronization costs under 1%.
    """
    from gpubench.timing import DeviceTimer

    return list(DeviceTimer(dev).measure(fn, rounds=repeats, warmup_rounds=warmup).times_s)


def error_text(exc: BaseException) -> str:
    """``RuntimeError: CUDA out of memory...``: the exception's type and first line, for a reading's error."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


@contextmanager
def fp32_precision(mode: str) -> Iterator[None]:
    """``highest`` (true float32) or ``high`` (TF32 allowed) for float32 matmuls; restored afterwards."""
    torch = torch_module()
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(mode)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)
