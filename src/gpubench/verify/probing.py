"""What the checks' probes share: NVML values as readings, the device handle, and running work on a device.

Passive readings come from NVML through :mod:`gpubench.nvml`, where a reading the GPU cannot give is N/A;
here it becomes ``None``, the readings' "not available". Active tests run for real on ``cpu`` as well as on
``cuda:N``, so their logic is tested on machines without a GPU. GPU work is timed with CUDA events recorded
on the measured device's stream, or by synchronizing that device (``torch.cuda.synchronize(device)``), never
the whole machine. ``torch`` is imported on first use, so that importing a check stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from gpubench import nvml

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
