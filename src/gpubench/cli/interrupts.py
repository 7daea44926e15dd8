"""Ctrl-C and SIGTERM for every command: exit 130 or 143 without a traceback, wherever they land.

SIGTERM is raised as :class:`Terminated` (a ``KeyboardInterrupt``) so that the same clean-up runs
(temporary result files are removed). While PyTorch is imported both are held and raised once the import is
done (see :func:`import_torch_holding_interrupts`). Imports only the standard library; this is the one
place the command line imports torch.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

INTERRUPTED = "interrupted: results written so far are kept"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (temporary result files are removed)."""

    signum = 15


# While not None, Ctrl-C and SIGTERM are recorded here instead of raised. Raised inside PyTorch's import, the
# KeyboardInterrupt either crosses pybind11's C++ (std::terminate: the process aborts) or is swallowed by it
# (the run goes on as if nothing happened); both were seen here. So torch is imported first, with interrupts
# held until the import is done.
_held_interrupts: list[int] | None = None


def _on_interrupt(signum: int, frame: Any) -> None:
    if signum == signal.SIGTERM:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    if _held_interrupts is not None:
        _held_interrupts.append(signum)
        return
    _raise_interrupt(signum)


def _raise_interrupt(signum: int) -> None:
    if signum == signal.SIGTERM:
        raise Terminated(f"terminated by signal {signum}")
    raise KeyboardInterrupt


def import_torch_holding_interrupts() -> None:
    """Import torch (if installed) with Ctrl-C and SIGTERM held; one that came meanwhile is raised after."""
    global _held_interrupts
    _held_interrupts = []
    try:
        # the command line's one torch import: here, not at the top, so `gpubench config` never loads it
        import torch  # noqa: F401
    except Exception:  # not installed or broken: devices.probe_cuda reports why
        pass
    finally:
        held, _held_interrupts = _held_interrupts, None
    if held:
        _raise_interrupt(held[0])


def run_interruptible(command: Callable[[], int]) -> int:
    """``command()``'s exit code, or 130 for Ctrl-C and 143 for SIGTERM (one line on stderr, no traceback).

    The handlers are installed only in the main thread (Python allows no other), and the previous ones come
    back afterwards.
    """
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _on_interrupt)
    try:
        return command()
    except KeyboardInterrupt as exc:
        print(INTERRUPTED, file=sys.stderr)
        return 128 + Terminated.signum if isinstance(exc, Terminated) else 130
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
