"""Where a document went wrong: :class:`SdnError` and the :class:`Location` (line, column) it points at."""

from __future__ import annotations

from typing import Any, NamedTuple


class SdnError(ValueError):
    """A document that is not valid SDN, with where it went wrong and what to do about it.

    ``line`` and ``column`` are 1-based; ``column`` counts characters, not bytes.
    """

    def __init__(
        self, message: str, source: str = "<string>", line: int = 1, column: int = 1, hint: str | None = None
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.source}:{self.line}:{self.column}: {self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle through their args; ours has keyword state, so rebuild it explicitly.
        return (SdnError, (self.message, self.source, self.line, self.column, self.hint))


class Location(NamedTuple):
    """A place in a source: 1-based line and column (characters).

    A named tuple rather than a frozen dataclass: a large file records one per value and key, and a tuple
    is built several times faster (``tuple.__new__(Location, (source, line, column))`` in the reader).
    """

    source: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"
