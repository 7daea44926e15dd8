"""The exit codes every verb returns: 0 ok, 1 a check or gate failed, 2 bad usage or bad configuration.

An interrupted command exits 130 (Ctrl-C) or 143 (SIGTERM): see :mod:`gpubench.cli.interrupts`. Imports
nothing, so each command module can use it.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
