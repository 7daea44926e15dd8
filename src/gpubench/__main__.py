"""``python -m gpubench`` and the ``gpubench`` console script: the verbs of :mod:`gpubench.cli`.

Loading the command line takes a while (rich, argparse, the config reader). A Ctrl-C or SIGTERM in that
window used to end in a traceback and exit -2 (``scripts/interrupt_trial.py``'s first trial, at 0.6 s);
until the CLI installs its own handlers, these end the process with 130 / 143 and one line instead.
Imports only the standard library before the handlers are in place.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Any

# the same last line as every other interrupted command (gpubench.cli.interrupts.INTERRUPTED; a test keeps
# the two equal): here nothing was written yet, so there is nothing to lose
STARTING = "interrupted: results written so far are kept"


def _interrupted_while_starting(signum: int, frame: Any) -> None:
    try:
        print(STARTING, file=sys.stderr, flush=True)
    finally:
        os._exit(128 + signum)


def run() -> int:
    """Install the start-up handlers, then load and run the command line (which replaces them)."""
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGINT, _interrupted_while_starting)
        signal.signal(signal.SIGTERM, _interrupted_while_starting)
    from gpubench import killpoints

    killpoints.reached("cli.import")
    from gpubench.cli import main

    return main()


def console() -> None:
    """The console script and ``python -m gpubench``: run, then end the process at once.

    Every result is written (atomically) before the command returns. Python's own teardown (PyTorch's takes
    seconds) would put the default signal handlers back first, so a Ctrl-C in that window killed the process
    with -2 after a complete run (``scripts/interrupt_trial.py``: 2 of 20 trials); ending with ``os._exit``
    after flushing leaves no such window (a signal before it still gets gpubench.cli's 130/143 line)."""
    code = run()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`gpubench info | head -1`)
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    console()
