"""The simulator's clock: time-varying readings (energy, the driver's sample buffer) follow it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SimClock:
    """Seconds since the simulated machine started, from ``source`` plus whatever :meth:`advance` added.

    The default source is ``time.monotonic``, so readings move with real time; :meth:`manual` gives a
    clock that moves only when a test calls :meth:`advance`. Wall time (NVML's sample timestamps, in
    microseconds since the epoch) starts at ``start_wall`` (default: ``time.time()`` when created).
    """

    def __init__(self, source: Callable[[], float] = time.monotonic, start_wall: float | None = None) -> None:
        self._source = source
        self._t0 = source()
        self._offset = 0.0
        self._wall0 = time.time() if start_wall is None else start_wall
        self._lock = threading.Lock()

    @classmethod
    def manual(cls, start_wall: float = 1_700_000_000.0) -> SimClock:
        """A clock frozen until :meth:`advance`; wall time starts at ``start_wall`` (epoch seconds)."""
        return cls(source=lambda: 0.0, start_wall=start_wall)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (also usable as a ``sleep`` replacement)."""
        if seconds < 0:
            msg = f"a clock only moves forward; got {seconds} s"
            raise ValueError(msg)
        with self._lock:
            self._offset += seconds

    def elapsed(self) -> float:
        """Seconds since the machine started."""
        with self._lock:
            return self._source() - self._t0 + self._offset

    def wall_us(self) -> int:
        """Microseconds since the epoch, as NVML timestamps its samples."""
        return round((self._wall0 + self.elapsed()) * 1e6)
