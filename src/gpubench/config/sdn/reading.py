"""``parse``, ``loads`` and ``load``: SDN text (or a file) read by :class:`~.parser.Parser`, quickly first.

The quick reading records no location; at any error the text is read exactly, so errors and their
positions come from one reader. A :class:`~.values.Document` from the quick reading works its locations
out with the exact reading (:class:`_ExactReading`, once) when a caller first asks for them.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gpubench.config.sdn.errors import Location, SdnError
from gpubench.config.sdn.fast import Fallback
from gpubench.config.sdn.lexer import decode
from gpubench.config.sdn.parser import Parser
from gpubench.config.sdn.values import Document, Locations, Path


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused, and restored after (to the state it was in).

    Reading allocates a few objects per value and creates no cycles, and on a large file the collector's
    passes over the growing document took a quarter of the time.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class _ExactReading:
    """The locations of a text that was read quickly: the exact reading, done once, when first asked for."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.found: tuple[dict[Path, Location], dict[Path, Location]] | None = None

    def tables(self) -> tuple[dict[Path, Location], dict[Path, Location]]:
        found = self.found
        if found is None:  # two threads may both read: they find the same tables
            with _collector_paused():
                parser = Parser(self.text, self.source)
                parser.document()
            found = self.found = parser.locations, parser.key_locations
        return found

    def locations(self) -> dict[Path, Location]:
        return self.tables()[0]

    def key_locations(self) -> dict[Path, Location]:
        return self.tables()[1]


def parse(text: str, source: str = "<string>") -> Document:
    """Parse SDN text into a :class:`Document` (values plus where each came from).

    Raises :class:`SdnError` (and nothing else) for any text that is not valid SDN.

    Reads the values quickly first, without locations: the document's ``locations`` and ``key_locations``
    are worked out by the exact reading when first used. Text that the quick reading gives up on (any
    error) is read exactly at once, so errors and their positions come from one reader.
    """
    with _collector_paused():
        try:
            value = Parser(text, source, exact=False).document()
        except (Fallback, SdnError):
            parser = Parser(text, source)
            value = parser.document()  # raises the error, worded with its line and column
            # (Should the quick reading ever give up on valid text, the exact reading's document stands.)
            return Document(value, parser.locations, parser.key_locations, source)
    reading = _ExactReading(text, source)
    return Document(value, Locations(reading.locations), Locations(reading.key_locations), source)


def loads(text: str, source: str = "<string>") -> dict[str, Any]:
    """Parse SDN text into plain Python values: ``parse(text, source).value``."""
    return parse(text, source).value


def load(path: str | os.PathLike[str]) -> Document:
    """Read and parse an SDN file (UTF-8, a leading BOM tolerated).

    Raises :class:`SdnError` for invalid SDN and for bytes that are not UTF-8 (pointing at the first
    bad byte); ``OSError`` when the file cannot be read.
    """
    source = os.fspath(path)
    with open(source, "rb") as handle:
        data = handle.read()
    return parse(decode(data, source), source)
