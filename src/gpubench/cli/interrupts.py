"""Ctrl-C and SIGTERM for every command: exit 130 or 143 without a traceback, wherever they land.

SIGTERM is raised as :class:`Terminated` (a ``KeyboardInterrupt``) so that the same clean-up runs
(temporary result files are removed). While PyTorch is imported both are held and raised once the import is
done (see :func:`import_torch_holding_interrupts`). Imports only the standard library (and
:mod:`gpubench.killpoints`, which does too); this is the one place the command line imports torch.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from gpubench import killpoints

INTERRUPTED = "interrupted: results written so far are kept"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (temporary result files are removed)."""

    signum = 15


# While not None, Ctrl-C and SIGTERM are recorded here instead of raised. Raised inside PyTorch's import, the
# KeyboardInterrupt either crosses pybind11's C++ (std::terminate: the process aborts) or is swallowed by it
# (the run goes on as if nothing happened); both were seen here. So torch is imported first, with interrupts
# held until the import is done.
_held_interrupts: list[int] | None = None

# The first signal that reached the command (see run_interruptible's last resort)
_received: int | None = None


def _on_interrupt(signum: int, frame: Any) -> None:
    global _received
    _received = _received or signum
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


@contextlib.contextmanager
def holding_interrupts() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM inside the block (where :func:`run_interruptible`'s handlers are installed);
    the first that came is raised when the block ends. For what must not be cut in the middle: PyTorch's
    import, the save of a finished verify run. Nested, the outer block holds."""
    global _held_interrupts
    if _held_interrupts is not None:  # already held by an outer block
        yield
        return
    _held_interrupts = []
    try:
        yield
    finally:
        held, _held_interrupts = _held_interrupts, None
    if held:
        _raise_interrupt(held[0])


def import_torch_holding_interrupts() -> None:
    """Import torch (if installed) with Ctrl-C and SIGTERM held; one that came meanwhile is raised after."""
    with holding_interrupts():
        killpoints.reached("cli.torch.import")  # held like one that lands inside the import
        # the command line's one torch import: here, not at the top, so `gpubench config` never loads it;
        # not installed or broken: devices.probe_cuda reports why
        with contextlib.suppress(Exception):
            import torch  # noqa: F401


def run_interruptible(command: Callable[[], int], *, to_the_end: bool = False) -> int:
    """``command()``'s exit code, or 130 for Ctrl-C and 143 for SIGTERM (one line on stderr, no traceback).

    The handlers are installed only in the main thread (Python allows no other), and the previous ones come
    back afterwards; with ``to_the_end`` (the process's own command line) :func:`_after_the_command` stays
    instead, for the rest of the process's life.
    """
    global _received
    _received = None
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _on_interrupt)
    try:
        return command()
    except KeyboardInterrupt as exc:
        print(INTERRUPTED, file=sys.stderr)
        return 128 + Terminated.signum if isinstance(exc, Terminated) else 130
    except Exception as exc:
        # A library failing while the interrupt unwinds it: pytest's report of a KeyboardInterrupt raised
        # inside a module being imported (torch._dynamo, lazily, mid-case) cannot render a frame without a
        # line number and raises TypeError (scripts/interrupt_trial.py found it). The stop is still the
        # signal's: say so in one line, no traceback.
        stopped_by = _received or _interrupt_behind(exc)
        if stopped_by is None:
            raise
        print(f"note: while stopping: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(INTERRUPTED, file=sys.stderr)
        return 128 + stopped_by
    finally:
        for number, handler in previous.items():
            if to_the_end:
                signal.signal(number, _after_the_command)
            else:
                signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def _interrupt_behind(exc: BaseException) -> int | None:
    """The signal of a KeyboardInterrupt that ``exc`` was raised while handling (its context chain), if any."""
    seen: BaseException | None = exc
    for _ in range(20):  # a context chain can be long; a cycle must not hang the exit
        if seen is None:
            return None
        if isinstance(seen, KeyboardInterrupt):
            return Terminated.signum if isinstance(seen, Terminated) else int(signal.SIGINT)
        seen = seen.__context__
    return None


def _after_the_command(signum: int, frame: Any) -> None:
    """A signal after the command returned, while the interpreter shuts down (PyTorch's teardown takes
    seconds): everything is written, so end at once with 128 + signum and the usual line, rather than die by
    the signal (the default handlers, back by then, gave -2 or -15: scripts/interrupt_trial.py found it)."""
    with contextlib.suppress(Exception):
        print(INTERRUPTED, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(128 + signum)
