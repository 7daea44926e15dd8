"""Terminal output shared by every verb: the rich console and text made safe for a terminal.

Imports only the standard library and rich (lazily), so any layer may use it without pulling in torch.
"""

from __future__ import annotations

import sys
from typing import Any


def console(stderr: bool = False) -> Any:
    """A rich console; wide enough in CI logs that tables do not wrap into unreadable columns."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, markup=False)


# Bidirectional overrides reorder what the terminal shows (a GPU name could hide text behind them).
_BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C))


def printable(value: Any) -> str:
    """Text for a terminal table: control characters (ESC sequences, NUL, BEL...) and bidi overrides removed,
    tabs become blanks. Device names, hostnames and config strings come from outside gpubench; printed raw,
    an ESC sequence in one of them could clear the screen or rewrite the verdict a user reads."""
    import unicodedata

    return "".join(
        " " if c == "\t" else c
        for c in str(value)
        if c in "\n\t" or (unicodedata.category(c) != "Cc" and c not in _BIDI)
    )
