"""Named kill points: a deterministic seam for interrupt tests (SQLite's crash tests are the model).

``GPUBENCH_KILL_AT=<point>[@<n>][:<signal>][,rank=<r>]`` (read once, at the first :func:`reached`) makes the process
send itself ``<signal>`` (``SIGINT``, the default, ``SIGTERM``, or ``SIGKILL`` for a power loss) the
``n``-th time (default: the first) the code reaches ``reached("<point>")``. The signal goes through
``os.kill``, so the real handlers run, as for a Ctrl-C or a scheduler's SIGTERM landing exactly there.
Under torchrun ``,rank=<r>`` limits it to the process whose ``RANK`` is ``r``. Unset, :func:`reached` costs
one comparison.

Imports nothing from gpubench, so that any layer may call it. :data:`POINTS` lists every point placed; the
sweep (tests/cli/test_interrupt_sweep.py) fails when one of them is not swept.
"""

from __future__ import annotations

import os
import signal

ENV = "GPUBENCH_KILL_AT"

# every point placed in the code, by verb (the sweep in tests/cli/test_interrupt_sweep.py runs them all)
POINTS = {
    # gpubench.__main__: while the command line is being imported (start-up handlers); gpubench.cli: before
    # the arguments are parsed; while PyTorch is imported (interrupts held); after the command returned
    "cli": ("cli.import", "cli.start", "cli.torch.import", "cli.exit"),
    "config": ("config.load", "config.show", "config.check"),
    "info": ("info.probe", "info.print"),
    "verify": (
        "verify.probe", "verify.plan", "verify.check.start", "verify.check.end", "verify.measure.start",
        "verify.measure.end", "verify.decision", "verify.across", "verify.save", "verify.write.json",
        "verify.write.junit", "verify.saved",
    ),
    "bench": (
        "bench.configure", "bench.collection", "bench.case.setup", "bench.case.call", "bench.case.call.end",
        "bench.case.teardown", "bench.telemetry.start", "bench.telemetry.stop", "bench.save",
        "bench.sessionfinish", "bench.summary",
    ),
    # placed by the sweep's own benchmark cases, inside the timed function (no hook of pytest-benchmark's)
    "cases": ("case.round",),
    "bench mnist": (
        "bench.mnist.data.load", "bench.mnist.epoch.start", "bench.mnist.epoch.end",
        "bench.mnist.checkpoint.save", "bench.mnist.checkpoint.saved",
    ),
    "report": ("report.load", "report.build", "report.write", "report.written"),
    "distributed": ("dist.rank.local", "dist.rank.merge"),
}

_SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "KILL": signal.SIGKILL}

_target: str | None = None  # None: not read yet; "": no point wanted
_nth = 1
_signal = signal.SIGINT
_seen = 0


def _read() -> str:
    global _target, _nth, _signal
    text, _, rank = os.environ.get(ENV, "").strip().partition(",rank=")
    name, _, sig = text.partition(":")
    name, _, count = name.partition("@")
    _nth = int(count) if count.isdigit() and int(count) > 0 else 1
    _signal = _SIGNALS.get(sig.strip().upper().removeprefix("SIG"), signal.SIGINT)
    if rank.strip() and os.environ.get("RANK", "0").strip() != rank.strip():
        name = ""  # another rank's point
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
