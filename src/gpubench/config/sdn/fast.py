"""The reader's fast path: well-formed inline values and named-table rows that fit on one line.

:class:`Fast` reads what :class:`~.inline.Inline` reads, with one compiled pattern per construct (a
``key: word`` entry, a bare word, a quoted string, a table cell) instead of stepping through characters,
and no cursor state. It reads only text that is valid and complete on its line: at anything else (an
error of any kind, a value that continues on the next line, a quoted key, nesting near the limit) it
raises :class:`Fallback`, and the caller reads the same text again with :class:`~.inline.Inline`, which
gives the value or the exact error. So the fast path decides no result and words no error.

Locations it records before a fallback are for paths the exact reader records again, at the same places
(both read the line's first segment identically), so a fallback leaves nothing stale behind.
"""

from __future__ import annotations

import re
from typing import Any

from gpubench.config.sdn.errors import Location
from gpubench.config.sdn.values import MAX_DEPTH, Path, classify

# A bare word: from a character that can start a value to the last non-blank before a stop character
# (`,[]{}"` or a line break); `)` cannot start one (Inline reports it). A quoted string's body.
_WORD = r'[^ \t,\[\]{})"\n](?:[^,\[\]{}"\n]*[^ \t,\[\]{}"\n])?'
_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
_SCALAR = "(?:(" + _WORD + ")|" + _QUOTED + ")?"
_SEP = r"[ \t]*(?:(,)[ \t]*)?"  # blanks, then a comma and the blanks after it
# `key: value` in an inline dict (a bare key as lexer.KEY_RE has it), with a word or quoted value when
# it has one, and the comma after it; an item of an inline array the same without the key.
_ENTRY_RE = re.compile(r"([\w./][\w./-]*)[ \t]*:[ \t]*" + _SCALAR + _SEP, re.DOTALL)
_ITEM_RE = re.compile(_SCALAR + _SEP, re.DOTALL)
_SEP_RE = re.compile(_SEP)
_BARE_RE = re.compile("(" + _WORD + r")[ \t]*")
_BLANKS_RE = re.compile(r"[ \t]*")
_QUOTED_RE = re.compile(_QUOTED, re.DOTALL)
_ESCAPE_RE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)", re.DOTALL)
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r"}
# A named-table cell: blanks, then a quoted string, a bare cell (to the next comma) or nothing, then the
# comma or the end of the line. A cell that starts with `[` or `{` does not match (an inline value).
_CELL_RE = re.compile(r"([ \t]*)(?:" + _QUOTED + r'[ \t]*|([^ \t,"\[{][^,]*))?(?:(,)|\Z)', re.DOTALL)

_new_tuple = tuple.__new__
_MISSING = object()


class Fallback(Exception):
    """The text holds something the fast path leaves to :class:`~.inline.Inline` (the exact reader)."""


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) == 5:
        return chr(int(code[1:], 16))
    if code in _ESCAPES:
        return _ESCAPES[code]
    raise Fallback


def unquote(body: str) -> str:
    """The content of a quoted string whose body (between the quotes) is ``body``."""
    return _ESCAPE_RE.sub(_unescape, body) if "\\" in body else body


class Fast:
    """Reads one line's inline values and table cells, recording locations; :class:`Fallback` otherwise.

    One instance serves a whole document: :meth:`whole` and :meth:`named_cells` take the line to read.
    Bare words are classified once per document (``scalars`` caches what :func:`~.values.classify` gave).
    """

    __slots__ = ("col0", "key_locations", "line", "locations", "scalars", "source", "text")

    def __init__(
        self, source: str, locations: dict[Path, Location], key_locations: dict[Path, Location]
    ) -> None:
        self.source = source
        self.locations = locations
        self.key_locations = key_locations
        self.scalars: dict[str, Any] = {}
        self.text = ""
        self.line = 1
        self.col0 = 1  # column of text[0]

    def scalar(self, word: str) -> Any:
        value = self.scalars.get(word, _MISSING)
        if value is _MISSING:
            try:
                value = classify(word)
            except ValueError:
                raise Fallback from None
            self.scalars[word] = value
        return value

    def whole(self, text: str, line: int, col0: int, path: Path, depth: int) -> Any:
        """The value that is all of ``text`` (an inline dict or array, or a quoted string)."""
        self.text, self.line, self.col0 = text, line, col0
        value, end = self.value(0, path, depth)
        if end != len(text) and _BLANKS_RE.match(text, end).end() != len(text):  # type: ignore[union-attr]
            raise Fallback
        return value

    def value(self, pos: int, path: Path, depth: int) -> tuple[Any, int]:
        """The value at ``text[pos]`` (not a blank) and the position after it."""
        text = self.text
        if depth > MAX_DEPTH or pos >= len(text):
            raise Fallback
        char = text[pos]
        if char == "{":
            return self.inline_dict(pos, path, depth)
        if char == "[":
            return self.inline_array(pos, path, depth)
        if char == '"':
            match = _QUOTED_RE.match(text, pos)
            if match is None:
                raise Fallback
            return unquote(match.group(1)), match.end()
        match = _BARE_RE.match(text, pos)
        if match is None:
            raise Fallback
        return self.scalar(match.group(1)), match.end()

    def inline_dict(self, pos: int, path: Path, depth: int) -> tuple[dict[str, Any], int]:
        if depth >= MAX_DEPTH:
            raise Fallback
        text, source, line, col0 = self.text, self.source, self.line, self.col0
        locations, key_locations, scalars = self.locations, self.key_locations, self.scalars
        end = len(text)
        result: dict[str, Any] = {}
        pos = _BLANKS_RE.match(text, pos + 1).end()  # type: ignore[union-attr]
        if pos < end and text[pos] == "}":
            return result, pos + 1
        entry = _ENTRY_RE.match
        while True:
            match = entry(text, pos)
            if match is None:
                raise Fallback
            key, word, quoted, comma = match.groups()
            if key in result:
                raise Fallback
            key_path = (*path, key)
            key_locations[key_path] = _new_tuple(Location, (source, line, col0 + pos))
            if word is not None:
                locations[key_path] = _new_tuple(Location, (source, line, col0 + match.start(2)))
                value = scalars.get(word, _MISSING)
                result[key] = self.scalar(word) if value is _MISSING else value
                pos = match.end()
            elif quoted is not None:
                locations[key_path] = _new_tuple(Location, (source, line, col0 + match.start(3) - 1))
                result[key] = unquote(quoted)
                pos = match.end()
            elif comma is not None:  # `key: ,`
                raise Fallback
            else:
                pos = match.end()
                locations[key_path] = _new_tuple(Location, (source, line, col0 + pos))
                result[key], pos = self.value(pos, key_path, depth + 1)
                match = _SEP_RE.match(text, pos)  # type: ignore[assignment]  # matches ""
                comma, pos = match.group(1), match.end()  # type: ignore[union-attr]
            if pos < end and text[pos] == "}":
                return result, pos + 1
            if comma is None:
                raise Fallback

    def inline_array(self, pos: int, path: Path, depth: int) -> tuple[list[Any], int]:
        if depth >= MAX_DEPTH:
            raise Fallback
        text, source, line, col0 = self.text, self.source, self.line, self.col0
        locations, scalars = self.locations, self.scalars
        end = len(text)
        items: list[Any] = []
        pos = _BLANKS_RE.match(text, pos + 1).end()  # type: ignore[union-attr]
        while True:
            if pos >= end:
                raise Fallback
            if text[pos] == "]":
                return items, pos + 1
            item_path = (*path, len(items))
            locations[item_path] = _new_tuple(Location, (source, line, col0 + pos))
            match = _ITEM_RE.match(text, pos)
            word, quoted, comma = match.groups()  # type: ignore[union-attr]  # matches ""
            if word is not None:
                value = scalars.get(word, _MISSING)
                items.append(self.scalar(word) if value is _MISSING else value)
            elif quoted is not None:
                items.append(unquote(quoted))
            elif comma is not None:  # `[,` or `, ,`
                raise Fallback
            else:
                value, pos = self.value(pos, item_path, depth + 1)
                items.append(value)
                match = _SEP_RE.match(text, pos)
                comma = match.group(1)  # type: ignore[union-attr]
            pos = match.end()  # type: ignore[union-attr]
            if comma is None:
                if pos < end and text[pos] == "]":
                    return items, pos + 1
                raise Fallback

    def named_cells(
        self, text: str, line: int, col0: int, path: Path, fields: tuple[str, ...], depth: int
    ) -> list[tuple[Any, int]]:
        """Cells of a named-table row with their positions, as :meth:`.Inline.named_cells` reads them."""
        self.text, self.line, self.col0 = text, line, col0
        cells: list[tuple[Any, int]] = []
        pos = 0
        while True:
            match = _CELL_RE.match(text, pos)
            if match is not None:
                _, quoted, bare, comma = match.groups()
                start = match.end(1)
                if quoted is not None:
                    cells.append((unquote(quoted), start))
                elif bare is not None:
                    cells.append((self.scalar(bare.rstrip(" \t")), start))
                else:
                    cells.append((None, start))
                if comma is None:
                    return cells
                pos = match.end()
                continue
            start = _BLANKS_RE.match(text, pos).end()  # type: ignore[union-attr]
            if start >= len(text) or text[start] not in "[{":
                raise Fallback
            count = len(cells)
            cell_path = (*path, fields[count] if count < len(fields) else count)
            value, pos = self.value(start, cell_path, depth + 1)
            cells.append((value, start))
            pos = _BLANKS_RE.match(text, pos).end()  # type: ignore[union-attr]
            if pos >= len(text):
                return cells
            if text[pos] != ",":
                raise Fallback
            pos += 1
