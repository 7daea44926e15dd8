"""The host through psutil: CPU utilization and frequency, host memory and this process's memory.

The source of the ``cpu`` device. Its metrics are :data:`gpubench.metrics.PSUTIL_METRICS`. Imports the standard library, :mod:`gpubench.metrics`
and :mod:`.source`; psutil itself is
imported when the source opens, so that a host without it gets "not available" instead of an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gpubench.metrics import PSUTIL_METRICS
from gpubench.telemetry.source import Reading, TelemetrySource, finite

MIN_CPU_WINDOW_S = 0.01
"""psutil.cpu_percent over a shorter window than this (one kernel tick) is reported as not available."""


class PsutilSource:
    """CPU utilization, frequency and memory of the host through psutil (for the ``cpu`` device)."""

    kind = "psutil"
    metrics = PSUTIL_METRICS

    def __init__(self) -> None:
        self.unavailable: dict[str, str] = {}
        self._psutil: Any = None
        self._process: Any = None
        self._last_cpu_call = 0.0

    @classmethod
    def for_device(cls, device: str, uuid: str | None) -> TelemetrySource | str | None:
        """A source for ``cpu`` (the host); None for any other device."""
        return cls() if device == "cpu" else None

    def open(self) -> str | None:
        try:
            import psutil  # here, not at the top: a host without psutil gets "not available", not an error
        except Exception as exc:
            return f"telemetry not available: psutil cannot be imported ({exc}); pip install psutil"
        self._psutil = psutil
        try:
            self._process = psutil.Process()
            psutil.cpu_percent(interval=None)  # the first call only starts the measurement window
            self._last_cpu_call = time.perf_counter()
        except Exception as exc:
            return f"telemetry not available: psutil cannot read this host ({type(exc).__name__}: {exc})"
        return None

    def read(self) -> Reading:
        ps = self._psutil
        readers: tuple[tuple[str, Callable[[], Any]], ...] = (
            ("cpu_util_pct", self._cpu_percent),
            ("cpu_freq_mhz", lambda: ps.cpu_freq().current),
            ("mem_used_bytes", lambda: (lambda vm: vm.total - vm.available)(ps.virtual_memory())),
            ("process_rss_bytes", lambda: self._process.memory_info().rss),
        )
        out: Reading = {}
        for name, reader in readers:
            if name in self.unavailable:
                out[name] = None
                continue
            try:
                out[name] = finite(reader())
            except Exception as exc:  # psutil.Error, OSError, cpu_freq() returning None, ...
                self.unavailable[name] = f"{type(exc).__name__}: {exc}"
                out[name] = None
        return out

    def _cpu_percent(self) -> float | None:
        now = time.perf_counter()
        window = now - self._last_cpu_call
        value = self._psutil.cpu_percent(interval=None)
        self._last_cpu_call = now
        # /proc/stat counts in 10 ms ticks: a shorter window reads 0 % or 100 %, which is noise
        return float(value) if window >= MIN_CPU_WINDOW_S else None

    def close(self) -> None:
        self._process = None
