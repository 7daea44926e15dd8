"""What every telemetry source gives the sampler: metrics (trace columns), readings, and the two protocols.

A source class is registered in :mod:`gpubench.telemetry.registry` (:class:`RegisteredSource`: it says
which devices it reads); an opened source is a :class:`TelemetrySource` the sampler reads every interval.
Also the :class:`Clock` they share. Imports only the standard library, :mod:`gpubench.nvml` (for its not-available
marker) and :mod:`gpubench.metrics` (the one table of metrics: :class:`Metric`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gpubench import nvml
from gpubench.metrics import Metric, MetricKind

__all__ = ["Metric", "MetricKind"]  # re-exported: defined once in gpubench.metrics

Reading = dict[str, float | None]


@dataclass(frozen=True)
class Clock:
    """The two clocks telemetry reads, in seconds.

    ``perf`` times samples and spaces GPM samples (``time.perf_counter``, the clock pytest-benchmark times
    rounds with); ``wall`` is the host's real-time clock (``time.time``), which NVML stamps its buffered
    samples with (in microseconds). ``name`` goes into each summary's ``clock``. Tests pass a simulated
    machine's clock here, so that samples, NVML's timestamps and GPM spacing all follow it.
    """

    perf: Callable[[], float] = time.perf_counter
    wall: Callable[[], float] = time.time
    name: str = "time.perf_counter"


SYSTEM_CLOCK = Clock()
"""``time.perf_counter`` and ``time.time``: what every sampler and source uses unless told otherwise."""


class SourceLost(RuntimeError):
    """The source can give no further readings (the GPU fell off the bus, NVML was shut down...)."""


class TelemetrySource(Protocol):
    """Where readings come from. ``open`` returns None, or one line saying why telemetry is not available."""

    kind: str
    metrics: tuple[Metric, ...]
    unavailable: dict[str, str]

    def open(self) -> str | None: ...

    def read(self) -> Reading: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Sample:
    """One reading: ``t`` in perf_counter seconds (when the reading began); values by metric name."""

    t: float
    values: Mapping[str, float | None]


class RegisteredSource(Protocol):
    """A source class as the registry lists it, before any device is chosen."""

    kind: str
    metrics: tuple[Metric, ...]

    def for_device(self, device: str, uuid: str | None) -> TelemetrySource | str | None:
        """A source for ``device``, one line saying why it cannot read it, or None: not its kind of device."""
        ...


def finite(value: Any) -> float | None:
    """A reading as a finite float, else None (NaN and inf cannot go into JSON results)."""
    if value is None or value is nvml.NA:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def error_text(exc: BaseException) -> str:
    """``ExceptionType: message``, even for an exception whose str() raises."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text}".rstrip(": ")
