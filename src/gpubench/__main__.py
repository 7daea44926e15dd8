"""``python -m gpubench`` and the ``gpubench`` console script: the verbs of :mod:`gpubench.cli`.

Loading the command line takes a while (rich, argparse, the config reader). A Ctrl-C or SIGTERM in that
window used to end in a traceback and exit -2 (``scripts/interrupt_trial.py``'s first trial, at 0.6 s);
until the CLI installs its own handlers, these end the process with 130 / 143 and one line instead.
Imports only the standard library before the handlers are in place.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    sys.exit(run())
