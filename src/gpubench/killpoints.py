"""Named kill points: a deterministic seam for interrupt tests (SQLite's crash tests are the model).

``GPUBENCH_KILL_AT=<point>[@<n>][:<signal>]`` (read once, at the first :func:`reached`) makes the process
send itself ``<signal>`` (``SIGINT``, the default, or ``SIGTERM``) the ``n``-th time (default: the first)
the code reaches ``reached("<point>")``. The signal goes through ``os.kill``, so the real handlers run, as
for a Ctrl-C or a scheduler's SIGTERM landing exactly there. Unset, :func:`reached` costs one comparison.

Imports nothing from gpubench, so that any layer may call it. :data:`POINTS` lists every point placed.
"""

from __future__ import annotations

import os
import signal

ENV = "GPUBENCH_KILL_AT"

# every point placed in the code, by verb (the sweep in tests/cli/test_interrupt_sweep.py runs them all)
POINTS = {
    "verify": (
        "verify.plan", "verify.check.start", "verify.check.end", "verify.measure.start", "verify.measure.end",
        "verify.across", "verify.save", "verify.saved",
    ),
    "bench": (
        "bench.configure", "bench.collection", "bench.case.setup", "bench.case.call", "bench.case.call.end",
        "bench.case.teardown", "bench.telemetry.start", "bench.telemetry.stop", "bench.save",
        "bench.sessionfinish", "bench.summary",
    ),
    "report": ("report.load", "report.build", "report.write", "report.written"),
}

_target: str | None = None  # None: not read yet; "": no point wanted
_nth = 1
_signal = signal.SIGINT
_seen = 0


def _read() -> str:
    global _target, _nth, _signal
    text = os.environ.get(ENV, "").strip()
    name, _, sig = text.partition(":")
    name, _, count = name.partition("@")
    _nth = int(count) if count.isdigit() and int(count) > 0 else 1
    _signal = signal.SIGTERM if sig.upper().removeprefix("SIG") == "TERM" else signal.SIGINT
    _target = name
    return name


def reached(point: str) -> None:
    """Mark ``point`` as reached; when it is the point ``GPUBENCH_KILL_AT`` names, send the signal."""
    global _seen
    target = _target if _target is not None else _read()
    if not target or target != point:
        return
    _seen += 1
    if _seen == _nth:
        os.kill(os.getpid(), _signal)


def reset() -> None:
    """Read ``GPUBENCH_KILL_AT`` again at the next :func:`reached` (for tests in one process)."""
    global _target, _seen
    _target, _seen = None, 0
