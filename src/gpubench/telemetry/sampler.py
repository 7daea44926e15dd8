"""The sampler: one background thread per measured phase reading one telemetry source, and its summary.

A :class:`Sampler` runs beside one benchmark (or one load phase of a health check) and reads a
:class:`~gpubench.telemetry.source.TelemetrySource` every ``interval_s``, chosen by
:func:`~gpubench.telemetry.registry.source_for`: NVML for ``cuda:N`` (the GPU found by its UUID), psutil
for ``cpu``. What it cannot read is recorded as not available (``None`` in a sample, an empty cell in the
trace); the run goes on.

The clock
    Every timestamp is ``time.perf_counter()`` seconds, the clock pytest-benchmark times rounds with by
    default (``--benchmark-timer`` ``time.perf_counter``), so samples line up with benchmark rounds taken
    in the same process. NVML's driver-buffered utilization samples carry the host's real-time clock in
    microseconds; they are moved onto ``perf_counter`` with the offset ``time.time() - time.perf_counter()``
    measured when the source opens (see :func:`driver_to_perf`). Only a clock step (NTP) during the run
    could shift them, by the size of the step.

The cost
    Each reading costs the sampler thread CPU time (measured in every summary as ``sampler_cpu_pct``: the
    share of one core). ``bench/test_telemetry_overhead.py`` runs the same case with the sampler off and on
    at several intervals; :data:`DEFAULT_INTERVAL_MS` is chosen from that measurement (see its doc).

Summary keys (``Sampler.summary()``, stored in ``extra_info["telemetry"]``)
    ``available`` (bool: some reading succeeded), ``status`` (``ok``, ``partial``: the source failed
    mid-run, ``unavailable``: it did not open, or every reading was N/A), ``unavailable_reason`` (one line
    or None), ``source`` (``nvml``/``psutil``), ``device``, ``uuid``, ``clock`` (the :class:`Clock`'s name),
    ``interval_ms``, ``samples``, ``t_start``/``t_stop``/``duration_s`` (seconds on that clock),
    ``util_pct_mean``/``util_pct_max`` (GPU utilization on GPUs, CPU utilization on ``cpu``),
    ``<metric>_mean`` and ``<metric>_max`` for every gauge metric (``mem_used_bytes_max`` is the peak
    memory), ``energy_j`` with ``energy_method`` (``nvml_total_energy_counter`` or ``power_integral``),
    ``clock_event_reasons_seen`` (decoded names), ``unavailable_metrics`` ({metric: why}),
    ``sampler_cpu_s``/``sampler_cpu_pct`` (CPU time of the sampling thread while the work ran, and that as a
    share of one core; the first and last readings, taken in the caller's thread before and after the
    work, are not counted).

Imports the registry, the sources' contract, :mod:`.traces` and (for decoding clock event reasons)
:mod:`.nvml_source`; never torch.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpubench.telemetry.nvml_source import decode_clock_event_reasons
from gpubench.telemetry.registry import source_for
from gpubench.telemetry.source import (
    SYSTEM_CLOCK,
    Clock,
    Metric,
    Reading,
    Sample,
    SourceLost,
    TelemetrySource,
    error_text,
    finite,
)
from gpubench.telemetry.traces import FIXED_COLUMNS, csv_text, write_csv

DEFAULT_INTERVAL_MS = 250
"""Default sampling interval, chosen with ``bench/test_telemetry_overhead.py`` (psutil source, a 2-core
machine shared with other jobs). The sampling thread's CPU time while a case ran, as a share of one core:
2.4-4.3% at 10 ms, 0.9-1.7% at 50 ms, 0.57-1.25% at 100 ms (the pure-Python case, which contends for the
GIL, gave the high end), 0.04-0.06% at 500 ms; about 0.3-1.3 ms per reading. 100 ms was not reliably under
1%, so the default is 250 ms (see the README for the figures at 250 ms). Wall-clock on/off differences could
not be resolved below that machine's own noise, so the 1% is held to the sampler's CPU time: what it can
take from the work at most. 250 ms also suits NVML: GPM samples must be over 100 ms apart, and utilization
is read from the driver's own buffer (nvmlDeviceGetSamples), which keeps its finer samples between reads."""
DEFAULT_INTERVAL_S = DEFAULT_INTERVAL_MS / 1000.0
CLOCK = SYSTEM_CLOCK.name


class _NoSource:
    """Stands in for a source that could not be made; opening it gives the reason."""

    kind = "none"
    metrics: tuple[Metric, ...] = ()

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.unavailable: dict[str, str] = {}

    def open(self) -> str | None:
        return self.reason

    def read(self) -> Reading:
        return {}

    def close(self) -> None:
        return None


@dataclass
class _Run:
    """What one start()..stop() collected: its window (perf_counter seconds), thread CPU time and samples."""

    t_start: float | None = None
    t_stop: float | None = None
    cpu_s: float = 0.0
    failure: str | None = None
    rows: list[Sample] = field(default_factory=list)


class Sampler:
    """Samples one device on a background thread from :meth:`start` to :meth:`stop`.

    ``with Sampler("cuda:1", uuid) as s: work()`` then ``s.summary()`` and ``s.write_trace(path)``.
    A source that cannot open leaves the sampler not :attr:`available` with a one-line :attr:`reason`;
    a source that fails mid-run stops sampling (status ``partial``) while the measured work goes on.

    ``clock`` timestamps the samples (give the source the same one). With ``background=False`` no thread
    is started: the caller takes each sample with :meth:`step`, e.g. on a simulated machine's clock.
    """

    def __init__(
        self,
        device: str,
        uuid: str | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        source: TelemetrySource | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        background: bool = True,
    ) -> None:
        if not interval_s > 0:
            msg = f"interval_s must be > 0 seconds, got {interval_s!r}; telemetry.interval_ms sets it"
            raise ValueError(msg)
        self.device = device
        self.uuid = uuid
        self.interval_s = float(interval_s)
        self.clock = clock
        self.background = background
        made = source if source is not None else source_for(device, uuid)
        self.source: TelemetrySource = _NoSource(made) if isinstance(made, str) else made
        self.reason: str | None = None
        self._run = _Run()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened = False

    # lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Sampler:
        """Open the source, take the first sample now, then sample every ``interval_s`` until stop()."""
        if self._thread is not None or self._opened:
            msg = "this Sampler was already started; make a new Sampler per measured phase"
            raise RuntimeError(msg)
        try:
            reason = self.source.open()
        except Exception as exc:  # a source must not end the run, even when it breaks its contract
            reason = f"telemetry not available: {self.source.kind} source failed to open ({error_text(exc)})"
        if reason is not None:
            self.reason = reason.splitlines()[0] if reason else "telemetry not available"
            return self
        self._opened = True
        started = time.perf_counter()
        self._run.t_start = self.clock.perf()
        self._tick()
        if self._run.failure is None and self.background:
            self._thread = threading.Thread(
                target=self._loop, args=(started,), name=f"gpubench-telemetry-{self.device}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (one last sample now, so the window covers the work) and close the source."""
        if not self._opened or self._run.t_stop is not None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 10.0)
            if self._thread.is_alive() and self._run.failure is None:
                self._run.failure = (
                    "the sampling thread did not stop within 10 s (a reading hung); samples kept"
                )
        if self._run.failure is None:
            self._tick()
        with contextlib.suppress(Exception):
            self.source.close()
        self._run.t_stop = self.clock.perf()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def step(self) -> bool:
        """Take one sample now, as the background thread does every interval (the caller paces it).

        Only for a sampler made with ``background=False``, after :meth:`start`. Returns False when no
        sample was taken: the source is not available, was lost, or the sampler was stopped.
        """
        if self.background:
            msg = "step() drives a Sampler made with background=False; this one samples on its own thread"
            raise RuntimeError(msg)
        if not self._opened and self.reason is None:
            msg = "step() before start(): call start() first (it opens the source and takes the first sample)"
            raise RuntimeError(msg)
        if not self._opened or self._run.t_stop is not None or self._run.failure is not None:
            return False
        return self._tick()

    def _loop(self, started: float) -> None:
        # paced on real time (the thread sleeps in real time); samples are stamped on self.clock
        cpu0 = time.thread_time()
        due = started + self.interval_s
        while not self._stop.wait(max(0.0, due - time.perf_counter())):
            if not self._tick():
                break
            due += self.interval_s
            now = time.perf_counter()
            if due < now:  # a slow reading: skip the missed ticks instead of bursting
                due = now + self.interval_s
        self._run.cpu_s += time.thread_time() - cpu0

    def _tick(self) -> bool:
        t = self.clock.perf()
        try:
            values = self.source.read()
        except Exception as exc:
            why = str(exc) if isinstance(exc, SourceLost) else error_text(exc)
            self._run.failure = f"sampling stopped after {len(self._run.rows)} samples: {why}"
            return False
        self._run.rows.append(Sample(t, {k: finite(v) for k, v in values.items()}))
        return True

    # results ------------------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """True when at least one sample holds at least one reading (N/A in every cell is no telemetry)."""
        return any(v is not None for row in self._run.rows for v in row.values.values())

    @property
    def samples(self) -> tuple[Sample, ...]:
        return tuple(self._run.rows)

    @property
    def failure(self) -> str | None:
        """Why sampling stopped early (the source failed mid-run), or None."""
        return self._run.failure

    def columns(self) -> list[str]:
        """Trace columns: ``t``, ``device``, ``uuid`` and one per metric of the source (unit in the name)."""
        return [*FIXED_COLUMNS, *(m.name for m in self.source.metrics)]

    def summary(self) -> dict[str, Any]:
        """Means, maxima, energy and clock-event reasons of this run as JSON-ready values (see module doc)."""
        rows = self._run.rows
        available = self.available
        status = "unavailable" if not available else ("partial" if self._run.failure else "ok")
        out: dict[str, Any] = {
            "available": available,
            "status": status,
            "unavailable_reason": self.reason or self._run.failure or self._nothing_read_reason(),
            "source": self.source.kind,
            "device": self.device,
            "uuid": self.uuid,
            "clock": self.clock.name,
            "interval_ms": round(self.interval_s * 1000.0, 3),
            "samples": len(rows),
        }
        if not rows:
            return out
        t_start = self._run.t_start if self._run.t_start is not None else rows[0].t
        t_stop = self._run.t_stop if self._run.t_stop is not None else rows[-1].t
        duration = max(t_stop - t_start, 0.0)
        out.update({"t_start": t_start, "t_stop": t_stop, "duration_s": duration})
        series = getattr(self.source, "driver_series", {})
        for metric in self.source.metrics:
            if metric.kind != "gauge":
                continue
            values = [v for v in (r.values.get(metric.name) for r in rows) if v is not None]
            fine = [v for _, v in series.get(metric.name, ())]
            values = fine or values  # the driver's own buffered samples are finer than our readings
            out[f"{metric.name}_mean"] = sum(values) / len(values) if values else None
            out[f"{metric.name}_max"] = max(values) if values else None
        primary = "gpu_util_pct" if self.source.kind == "nvml" else "cpu_util_pct"
        out["util_pct_mean"] = out.get(f"{primary}_mean")
        out["util_pct_max"] = out.get(f"{primary}_max")
        out["energy_j"], out["energy_method"] = _energy(rows)
        seen: list[str] = []
        for row in rows:
            mask = row.values.get("clock_event_reasons_mask")
            if mask is not None:
                for name in decode_clock_event_reasons(int(mask)):
                    if name not in seen:
                        seen.append(name)
        has_reasons = any(m.name == "clock_event_reasons_mask" for m in self.source.metrics)
        out["clock_event_reasons_seen"] = seen if has_reasons else None
        out["unavailable_metrics"] = dict(self.source.unavailable)
        notes = getattr(self.source, "notes", None)
        if notes:
            out["notes"] = dict(notes)
        out["sampler_cpu_s"] = self._run.cpu_s
        out["sampler_cpu_pct"] = 100.0 * self._run.cpu_s / duration if duration > 0 else None
        return out

    def _nothing_read_reason(self) -> str | None:
        """One line when samples were taken but every reading in them was N/A, else None."""
        if not self._run.rows or self.available:
            return None
        why = "; ".join(dict.fromkeys(self.source.unavailable.values())) or "every reading failed"
        return f"telemetry not available: no reading succeeded in {len(self._run.rows)} samples ({why})"

    def trace_text(self) -> str:
        """The trace as CSV text: one row per sample, empty cells for readings not available."""
        return csv_text(self.columns(), self.device, self.uuid, self._run.rows)

    def write_trace(self, path: Path) -> Path:
        """Write the CSV trace atomically (temporary file and rename); returns ``path``."""
        return write_csv(Path(path), self.trace_text())


def _energy(rows: Sequence[Sample]) -> tuple[float | None, str | None]:
    """Energy over the run: the NVML counter difference when it was read, else the power integral."""
    counter = [v for v in (r.values.get("energy_j") for r in rows) if v is not None]
    if len(counter) >= 2 and counter[-1] >= counter[0]:  # a counter reset (driver reload) reads backwards
        return counter[-1] - counter[0], "nvml_total_energy_counter"
    power = [(r.t, p) for r in rows if (p := r.values.get("power_w")) is not None]
    if len(power) >= 2:
        joules = sum((t1 - t0) * (p0 + p1) / 2.0 for (t0, p0), (t1, p1) in itertools.pairwise(power))
        return joules, "power_integral"
    return None, None

