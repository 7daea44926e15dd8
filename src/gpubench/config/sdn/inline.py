"""The reader of what lives on one line: inline dicts and arrays, quoted strings, table-row cells.

A small recursive-descent reader (:class:`Inline`) over one logical line's text. It records where each
value and key starts in the document being read (a :class:`Marks`, which the block parser owns) and
reports errors at the exact column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from gpubench.config.sdn.errors import Location, SdnError
from gpubench.config.sdn.lexer import KEY_RE, Line, unterminated_string
from gpubench.config.sdn.values import MAX_DEPTH, Path, classify

_BLANKS_RE = re.compile(r"[ \t]*")
_GAP_RE = re.compile(r"[ \t\n]*")
# What a bare scalar and a typed-table cell run over: everything up to their stop characters.
_BARE_RE = re.compile(r'[^,\[\]{}"\n]*')
_CELL_TO_COMMA_RE = re.compile(r"[^,]*")
_CELL_TO_COMMA_OR_PAREN_RE = re.compile(r"[^,)]*")
# Builds a Location without the named tuple's Python-level __new__ (one per value and key: it adds up).
_new_tuple = tuple.__new__
_QUOTED_CHUNK_RE = re.compile(r'[^"\\]*')
_HEX4_RE = re.compile(r"[0-9A-Fa-f]{4}")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r"}
_ESCAPE_HINT = r"inside quotes write \\ for a backslash; the escapes are \" \\ \n \t \r \/ \uXXXX"


class Marks(Protocol):
    """The document being read: its name, where each value and key starts, and how to report an error."""

    source: str
    locations: dict[Path, Location]
    key_locations: dict[Path, Location]

    def error(self, message: str, line: int, column: int, hint: str | None = None) -> SdnError: ...


class Cell(NamedTuple):
    """A typed-table cell before conversion."""

    text: str  # the bare text, or the content of a quoted string
    pos: int  # index in the line's text
    quoted: bool


class Inline:
    """Recursive-descent reader for what lives on one line: inline dicts/arrays, quoted strings, cells."""

    __slots__ = ("col0", "doc", "feed", "line", "open_paren", "pos", "segments", "text")

    def __init__(
        self, doc: Marks, text: str, line: int, col0: int, feed: Callable[[], Line | None] | None = None
    ) -> None:
        self.doc = doc
        self.text = text
        self.line = line
        self.col0 = col0  # column of text[0]
        self.pos = 0
        self.open_paren = 0  # position of the '(' of the table row being read, for its error
        # An inline dict or array may continue on the lines below (as in the Simple parser): ``feed`` hands
        # over the next line, and ``segments`` maps each joined line's start in ``text`` to (line, column).
        self.feed = feed
        self.segments: list[tuple[int, int, int]] | None = None

    def where(self, pos: int) -> tuple[int, int]:
        """(line, column) of ``text[pos]``."""
        if self.segments is None:
            return self.line, self.col0 + pos
        for start, line, col0 in reversed(self.segments):
            if start <= pos:
                return line, col0 + pos - start
        return self.line, self.col0 + pos  # pragma: no cover - the first segment starts at 0

    def error(self, message: str, pos: int | None = None, hint: str | None = None) -> SdnError:
        line, column = self.where(self.pos if pos is None else pos)
        return self.doc.error(message, line, column, hint)

    def here(self, pos: int | None = None) -> Location:
        if pos is None:
            pos = self.pos
        if self.segments is None:
            return _new_tuple(Location, (self.doc.source, self.line, self.col0 + pos))
        return _new_tuple(Location, (self.doc.source, *self.where(pos)))

    def ws(self) -> None:
        self.pos = _BLANKS_RE.match(self.text, self.pos).end()  # type: ignore[union-attr]  # matches ""

    def gap(self) -> bool:
        """Skip blanks inside a container, pulling in the next line at the end of this one.

        True when a line break was crossed (a line break separates items, as a comma does).
        """
        self.ws()
        if self.pos < len(self.text) or self.feed is None:
            return False
        crossed = False
        while self.pos >= len(self.text):
            line = self.feed()
            if line is None:
                return crossed
            if self.segments is None:
                self.segments = [(0, self.line, self.col0)]
            self.text += "\n"
            self.segments.append((len(self.text), line.number, line.indent + 1))
            self.text += line.content
            self.pos = _GAP_RE.match(self.text, self.pos).end()  # type: ignore[union-attr]  # matches ""
            crossed = True
        return crossed

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def unterminated(self, opener: str, pos: int) -> SdnError:
        closer = {"{": "}", "[": "]", "(": ")"}[opener]
        if self.feed is not None:
            where = f"up to line {self.where(len(self.text))[0]}" if self.segments else "on this line"
            return self.error(
                f"unterminated {opener!r}: no matching {closer!r} {where}",
                pos,
                f"close it with {closer!r}; a value that spans lines continues on lines indented deeper"
                f" than its key (the line with the {closer!r} may start at the key's column)",
            )
        return self.error(
            f"unterminated {opener!r}: no matching {closer!r} on this line",
            pos,
            f"close it with {closer!r} on the same line; inline values cannot span lines"
            " (use an indented block for long lists)",
        )

    def value(self, path: Path, depth: int) -> Any:
        """Read one inline value starting at ``pos`` (after blanks)."""
        if depth > MAX_DEPTH:
            raise self.error(f"nesting is deeper than {MAX_DEPTH} levels", hint="flatten the structure")
        self.ws()
        if self.at_end():
            raise self.error("expected a value", hint="write a value, or remove the separator before it")
        char = self.text[self.pos]
        if char == "{":
            return self.inline_dict(path, depth)
        if char == "[":
            return self.inline_array(path, depth)
        if char == '"':
            return self.quoted()
        if char in ",]})":
            raise self.error(
                f"expected a value before {char!r}", hint="write a value, or remove the extra comma"
            )
        return self.bare_scalar()

    def bare_scalar(self) -> Any:
        """A bare word, up to the next ``,[]{}"`` or line break."""
        start = self.pos
        text = self.text
        pos = self.pos = _BARE_RE.match(text, start).end()  # type: ignore[union-attr]  # matches ""
        word = text[start:pos].rstrip(" \t")
        try:
            return classify(word)
        except ValueError as exc:
            raise self.error(
                str(exc), start, "write a smaller number, or quote it to keep it as text"
            ) from None

    def quoted(self) -> str:
        """Read a quoted string at ``pos`` (which holds the opening quote)."""
        start = self.pos
        text = self.text
        pos = start + 1
        parts: list[str] = []
        while True:
            match = _QUOTED_CHUNK_RE.match(text, pos)
            assert match is not None  # the pattern matches the empty string
            parts.append(match.group())
            pos = match.end()
            if pos >= len(text):
                raise self.open_string(start)
            if text[pos] == '"':
                self.pos = pos + 1
                return "".join(parts)
            # A backslash: the character after it says which escape.
            if pos + 1 >= len(text):
                raise self.open_string(start)
            code = text[pos + 1]
            if code in _ESCAPES:
                parts.append(_ESCAPES[code])
                pos += 2
            elif code == "u" and _HEX4_RE.match(text, pos + 2):
                parts.append(chr(int(text[pos + 2 : pos + 6], 16)))
                pos += 6
            else:
                raise self.error(f"unknown escape \\{code} in quoted string", pos, _ESCAPE_HINT)

    def open_string(self, start: int) -> SdnError:
        """The error for the quoted string at ``start`` that the text ends in (as the lexer words it)."""
        message, hint = unterminated_string(self.text[start:])
        return self.error(message, start, hint)

    def close_or_comma(self, opener: str, open_pos: int) -> bool:
        """After an element: True if the container closed, False if a comma (or a line break) follows."""
        closer = "}" if opener == "{" else "]"
        crossed = self.gap()
        if self.at_end():
            raise self.unterminated(opener, open_pos)
        char = self.text[self.pos]
        self.pos += 1
        if char == ",":
            return False
        if char == closer:
            return True
        if crossed:  # items on separate lines need no comma (the Simple parser splits on line breaks too)
            self.pos -= 1
            return False
        if char in "}])":
            raise self.error(
                f"{char!r} does not close the {opener!r} at column {self.col0 + open_pos}",
                self.pos - 1,
                f"close it with {closer!r}",
            )
        raise self.error(
            f"expected ',' or {closer!r}, found {char!r}",
            self.pos - 1,
            "separate values with commas; quote values that contain blanks or punctuation",
        )

    def inline_dict(self, path: Path, depth: int) -> dict[str, Any]:
        open_pos = self.pos
        self.pos += 1
        result: dict[str, Any] = {}
        doc = self.doc
        while True:
            self.gap()
            if self.at_end():
                raise self.unterminated("{", open_pos)
            char = self.text[self.pos]
            if char == "}":
                self.pos += 1
                return result
            match = KEY_RE.match(self.text, self.pos)
            if match is None:
                if char == ":":
                    raise self.error(
                        "empty key before ':'", hint="write a name before the colon: {name: value}"
                    )
                raise self.error(
                    f"expected a key, found {char!r}",
                    hint="inline dict entries are `name: value`; keys are identifiers (letters, digits, _)",
                )
            key_pos = self.pos
            key = match.group()
            if key[0] == '"':
                key = self.quoted()
            self.pos = match.end()
            self.ws()
            if self.at_end():
                raise self.unterminated("{", open_pos)
            if self.text[self.pos] != ":":
                raise self.error(
                    f"expected ':' after key {key!r}, found {self.text[self.pos]!r}",
                    hint="inline dict entries are `name: value`; keys are identifiers (letters, digits, _)",
                )
            self.pos += 1
            self.ws()
            key_path = (*path, key)
            if key in result:
                first = doc.key_locations[key_path]
                raise self.error(
                    f"duplicate key {key!r} (first at line {first.line}, column {first.column})",
                    key_pos,
                    "remove one of the two entries or rename one",
                )
            doc.key_locations[key_path] = self.here(key_pos)
            doc.locations[key_path] = self.here()
            result[key] = self.value(key_path, depth + 1)
            if self.close_or_comma("{", open_pos):
                return result

    def inline_array(self, path: Path, depth: int) -> list[Any]:
        open_pos = self.pos
        self.pos += 1
        items: list[Any] = []
        while True:
            self.gap()
            if self.at_end():
                raise self.unterminated("[", open_pos)
            if self.text[self.pos] == "]":
                self.pos += 1
                return items
            item_path = (*path, len(items))
            self.doc.locations[item_path] = self.here()
            items.append(self.value(item_path, depth + 1))
            if self.close_or_comma("[", open_pos):
                return items

    def expect_end(self, what: str) -> None:
        self.ws()
        if not self.at_end():
            raise self.error(
                f"unexpected {self.text[self.pos]!r} after {what}",
                hint="remove it, quote the whole value, or start a comment with #",
            )

    def named_cells(self, path: Path, fields: tuple[str, ...], depth: int) -> list[tuple[Any, int]]:
        """Cells of a named-table row, each with its position: quoted, inline, empty (None) or bare."""
        cells: list[tuple[Any, int]] = []
        text = self.text
        while True:
            self.ws()
            start = self.pos
            cell_path = (*path, fields[len(cells)] if len(cells) < len(fields) else len(cells))
            if self.at_end() or text[start] == ",":
                value: Any = None
            elif text[start] == '"':
                value = self.quoted()
            elif text[start] in "[{":
                value = self.value(cell_path, depth + 1)
            else:
                comma = text.find(",", start)
                self.pos = len(text) if comma < 0 else comma
                try:
                    value = classify(text[start : self.pos].rstrip(" \t"))
                except ValueError as exc:
                    raise self.error(str(exc), start, "quote it to keep it as text") from None
            cells.append((value, start))
            self.ws()
            if self.at_end():
                return cells
            if text[self.pos] != ",":
                raise self.error(
                    f"unexpected {text[self.pos]!r} after a cell",
                    hint="separate cells with commas; quote a cell that holds quotes or commas",
                )
            self.pos += 1

    def typed_cells(self, closer: str | None) -> list[Cell]:
        """Raw cells of a typed-table row, up to the end of the line or ``closer``; converted later."""
        cells: list[Cell] = []
        text = self.text
        cell_end = _CELL_TO_COMMA_RE if closer is None else _CELL_TO_COMMA_OR_PAREN_RE
        while True:
            self.ws()
            start = self.pos
            if not self.at_end() and text[start] == '"':
                cells.append(Cell(self.quoted(), start, quoted=True))
            else:
                pos = self.pos = cell_end.match(text, start).end()  # type: ignore[union-attr]  # matches ""
                cells.append(Cell(text[start:pos].rstrip(" \t"), start, quoted=False))
            self.ws()
            if self.at_end():
                if closer is not None:
                    raise self.unterminated("(", self.open_paren)
                return cells
            char = text[self.pos]
            self.pos += 1
            if char == ",":
                continue
            if char == closer:
                return cells
            raise self.error(
                f"unexpected {char!r} after a cell",
                self.pos - 1,
                "separate cells with commas; quote a cell that holds quotes or commas",
            )

    def typed_row(self) -> list[Cell]:
        """A typed-table row: ``(a, b)`` with parentheses, or ``a, b`` without."""
        self.ws()
        if not self.at_end() and self.text[self.pos] == "(":
            self.open_paren = self.pos
            self.pos += 1
            cells = self.typed_cells(")")
            self.expect_end("the closing ')' of the row")
            return cells
        return self.typed_cells(None)
