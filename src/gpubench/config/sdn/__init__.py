"""Reader and writer for SDN 1.0 (Simple Data Notation), the format of ``dl.config.sdn``.

SDN comes from the Simple language project: YAML-like indentation, inline ``{}``/``[]`` values and
tables. This module is pure standard library so that the configuration layer can read a file before
anything heavy (torch, NVML) is imported.

Design: the text is first cut into logical lines (comments and blank lines dropped, indentation
measured); a line-oriented block parser then walks them by indentation, and a small
recursive-descent parser (:class:`_Inline`) reads everything that lives on one line (inline dicts and
arrays, quoted strings, table rows).

Decisions where the SDN summary is silent (also pinned down by ``tests/test_sdn.py``):

* ``key:`` with nothing after it and no indented block below reads as ``None`` (as in YAML).
* A dict entry needs blank or end of line after ``:`` (``key: value``); a line ``cuda:1`` in a block is
  therefore an array item, and ``key:value`` at dict level is an error whose hint says to add a space.
* ``#`` starts a comment anywhere outside a quoted string, even without a blank before it.
* Escapes: ``\\"`` ``\\\\`` ``\\n`` ``\\t`` (SDN 1.0) plus ``\\r`` ``\\/`` and ``\\uXXXX``, which the writer
  needs for control characters; any other escape is an error (``"C:\\temp"`` is almost always a
  mistake that would silently become a tab).
* Integers may have leading zeros (``007`` is 7) and a leading ``+``; a float literal that overflows to
  infinity, or an integer of more than 4000 digits, is an error rather than a silent ``inf``.
* Keys and table field names are ASCII identifiers.
* Array blocks accept YAML-style ``- item`` lines (the Simple project's own docs show them).
* Inline ``{...}``/``[...]`` values must close on the line where they open (no multi-line values).
* Named-table cells: an empty cell is ``None``, ``-`` is the string ``"-"``, a bare cell runs to the
  next comma and may hold blanks. Typed-table cells: an empty ``str`` cell is ``""``, an empty cell of
  any other type is an error; ``f32`` cells are range-checked but kept as Python floats (no rounding).
* A top level that starts indented is accepted; its indentation becomes the top block's.
* Tabs in the indentation of a statement are an error; comment lines are never checked.
* Nesting (blocks plus inline values) is limited to :data:`MAX_DEPTH` levels.
* The writer raises ``ValueError`` for nan/inf, non-identifier keys and values it cannot express, and
  ``TypeError`` for objects that are not dict/list/tuple/Table/str/int/float/bool/None.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "MAX_DEPTH",
    "Document",
    "Location",
    "SdnError",
    "Table",
    "dumps",
    "load",
    "loads",
    "parse",
]

MAX_DEPTH = 100
"""Deepest nesting of blocks and inline values the reader accepts (and the writer produces)."""

Path = tuple[str | int, ...]


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


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a source: 1-based line and column (characters)."""

    source: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"


class Table(list[Any]):
    """A table read from SDN: a list of rows plus the header.

    A named table (``key |a, b|``) has ``fields`` set and rows that are dicts keyed by field; a typed
    table (``key: table{i32, f64}``) has ``types`` set (as written, e.g. ``"i32"``) and rows that are
    tuples. Compared with another Table, the header counts too; compared with a plain list, only the rows.
    """

    fields: tuple[str, ...] | None
    types: tuple[str, ...] | None

    def __init__(
        self,
        rows: Iterable[Any] = (),
        *,
        fields: Iterable[str] | None = None,
        types: Iterable[str] | None = None,
    ) -> None:
        super().__init__(rows)
        self.fields = tuple(fields) if fields is not None else None
        self.types = tuple(types) if types is not None else None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Table):
            return list.__eq__(self, other) and self.fields == other.fields and self.types == other.types
        return list.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # mutable, like list

    def __repr__(self) -> str:
        return f"Table({list.__repr__(self)}, fields={self.fields!r}, types={self.types!r})"


@dataclass(frozen=True)
class Document:
    """A parsed SDN document.

    ``value`` holds plain Python values. ``locations`` maps a key path (``("dl", "device")``,
    ``("features", 0)``, ``("rate_limits", 1, "endpoint")``) to where its value starts (for a value
    that is an indented block: where its key starts); ``()`` is the document itself.
    ``key_locations`` maps the path of every dict key to where the key itself starts.
    """

    value: dict[str, Any]
    locations: dict[Path, Location] = field(default_factory=dict)
    key_locations: dict[Path, Location] = field(default_factory=dict)
    source: str = "<string>"


# --- lexical pieces ------------------------------------------------------------------------------------

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_IDENT_RE = re.compile(_IDENT)
_IDENT_FULL_RE = re.compile(_IDENT + r"\Z")
# A statement at dict level: `key: ...` (colon followed by blank or end), `key = ...`, `key |...`.
_ENTRY_RE = re.compile(r"(" + _IDENT + r")[ \t]*(?::(?=[ \t]|\Z)|(=)|(\|))")
# A statement whose key is missing: `: 1`, `= [1]`, `|a| 1`.
_EMPTY_KEY_RE = re.compile(r"(?::(?=[ \t]|\Z)|=|\|)")
_TABLE_RE = re.compile(r"table[ \t]*\{")
_DIGITS = r"[0-9]+(?:_[0-9]+)*"
_INT_RE = re.compile(r"[+-]?" + _DIGITS + r"\Z")
_FLOAT_RE = re.compile(
    r"[+-]?(?:" + _DIGITS + r"(?:\.(?:" + _DIGITS + r")?)?|\." + _DIGITS + r")(?:[eE][+-]?[0-9]+)?\Z"
)
# Everything up to the first `#` outside a quoted string; stops early at a `"` that is never closed.
_CODE_RE = re.compile(r'(?:[^"#]|"(?:[^"\\]|\\.)*")*')
_BLANKS_RE = re.compile(r"[ \t]*")
_QUOTED_CHUNK_RE = re.compile(r'[^"\\]*')
_HEX4_RE = re.compile(r"[0-9A-Fa-f]{4}")
_KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None, "nil": None}
_MISSING = object()
_MAX_INT_DIGITS = 4000  # below CPython's int/str conversion limit (4300), which raises ValueError

_INT_RANGES = {
    "i8": (-(2**7), 2**7 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
}
_FLOAT_TYPES = {"f32": 3.4028234663852886e38, "f64": math.inf}
_STR_TYPES = frozenset({"str", "string", "text"})
_TYPE_NAMES = (*_INT_RANGES, *_FLOAT_TYPES, "bool", *sorted(_STR_TYPES))

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r"}
_ESCAPE_HINT = r"inside quotes write \\ for a backslash; the escapes are \" \\ \n \t \r \/ \uXXXX"


def _classify(text: str) -> Any:
    """Read a bare word: bool, null, int or float when it is exactly one, otherwise the string itself.

    Raises ValueError (message only) for numbers Python cannot hold faithfully.
    """
    keyword = _KEYWORDS.get(text, _MISSING)
    if keyword is not _MISSING:
        return keyword
    if text[0] in "0123456789+-.":
        if _INT_RE.match(text):
            digits = text.replace("_", "")
            if len(digits) > _MAX_INT_DIGITS:
                msg = f"integer has {len(digits)} digits, more than the {_MAX_INT_DIGITS} this reader accepts"
                raise ValueError(msg)
            return int(digits)
        if _FLOAT_RE.match(text):
            number = float(text.replace("_", ""))
            if math.isinf(number):
                msg = f"number {text} is too large for a 64-bit float"
                raise ValueError(msg)
            return number
    return text


class _Cell(NamedTuple):
    """A typed-table cell before conversion."""

    text: str  # the bare text, or the content of a quoted string
    pos: int  # index in the line's text
    quoted: bool


class _Line(NamedTuple):
    number: int  # 1-based
    indent: int  # leading spaces
    content: str  # from the first non-blank character, comment and trailing blanks removed


# --- inline values (one line) ----------------------------------------------------------------------------


class _Inline:
    """Recursive-descent reader for what lives on one line: inline dicts/arrays, quoted strings, cells."""

    __slots__ = ("col0", "doc", "line", "open_paren", "pos", "text")

    def __init__(self, doc: _Parser, text: str, line: int, col0: int) -> None:
        self.doc = doc
        self.text = text
        self.line = line
        self.col0 = col0  # column of text[0]
        self.pos = 0
        self.open_paren = 0  # position of the '(' of the table row being read, for its error

    def error(self, message: str, pos: int | None = None, hint: str | None = None) -> SdnError:
        column = self.col0 + (self.pos if pos is None else pos)
        return self.doc.error(message, self.line, column, hint)

    def here(self, pos: int | None = None) -> Location:
        return Location(self.doc.source, self.line, self.col0 + (self.pos if pos is None else pos))

    def ws(self) -> None:
        self.pos = _BLANKS_RE.match(self.text, self.pos).end()  # type: ignore[union-attr]  # matches ""

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def unterminated(self, opener: str, pos: int) -> SdnError:
        closer = {"{": "}", "[": "]", "(": ")"}[opener]
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
        return self.bare_scalar(',[]{}"')

    def bare_scalar(self, stops: str) -> Any:
        start = self.pos
        text = self.text
        pos = start
        while pos < len(text) and text[pos] not in stops:
            pos += 1
        self.pos = pos
        word = text[start:pos].rstrip(" \t")
        try:
            return _classify(word)
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
                raise self.error(
                    "unterminated quoted string",
                    start,
                    'close it with " on the same line; write \\" for a quote inside the string',
                )
            if text[pos] == '"':
                self.pos = pos + 1
                return "".join(parts)
            # A backslash: the character after it says which escape.
            if pos + 1 >= len(text):
                raise self.error(
                    "unterminated quoted string (the final backslash escapes the closing quote)",
                    start,
                    r"write \\ for a backslash at the end of a string",
                )
            code = text[pos + 1]
            if code in _ESCAPES:
                parts.append(_ESCAPES[code])
                pos += 2
            elif code == "u" and _HEX4_RE.match(text, pos + 2):
                parts.append(chr(int(text[pos + 2 : pos + 6], 16)))
                pos += 6
            else:
                raise self.error(f"unknown escape \\{code} in quoted string", pos, _ESCAPE_HINT)

    def close_or_comma(self, opener: str, open_pos: int) -> bool:
        """After an element: True if the container closed, False if a comma follows."""
        closer = "}" if opener == "{" else "]"
        self.ws()
        if self.at_end():
            raise self.unterminated(opener, open_pos)
        char = self.text[self.pos]
        self.pos += 1
        if char == ",":
            return False
        if char == closer:
            return True
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
            self.ws()
            if self.at_end():
                raise self.unterminated("{", open_pos)
            char = self.text[self.pos]
            if char == "}":
                self.pos += 1
                return result
            match = _IDENT_RE.match(self.text, self.pos)
            if match is None:
                if char == ":":
                    raise self.error(
                        "empty key before ':'", hint="write a name before the colon: {name: value}"
                    )
                raise self.error(
                    f"expected a key, found {char!r}",
                    hint="inline dict entries are `name: value`; keys are identifiers (letters, digits, _)",
                )
            key = match.group()
            key_pos = self.pos
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
            self.ws()
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
                    value = _classify(text[start : self.pos].rstrip(" \t"))
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

    def typed_cells(self, closer: str | None) -> list[_Cell]:
        """Raw cells of a typed-table row, up to the end of the line or ``closer``; converted later."""
        cells: list[_Cell] = []
        text = self.text
        stops = "," if closer is None else ",)"
        while True:
            self.ws()
            start = self.pos
            if not self.at_end() and text[start] == '"':
                cells.append(_Cell(self.quoted(), start, quoted=True))
            else:
                pos = start
                while pos < len(text) and text[pos] not in stops:
                    pos += 1
                self.pos = pos
                cells.append(_Cell(text[start:pos].rstrip(" \t"), start, quoted=False))
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

    def typed_row(self) -> list[_Cell]:
        """A typed-table row: ``(a, b)`` with parentheses, or ``a, b`` without."""
        self.ws()
        if not self.at_end() and self.text[self.pos] == "(":
            self.open_paren = self.pos
            self.pos += 1
            cells = self.typed_cells(")")
            self.expect_end("the closing ')' of the row")
            return cells
        return self.typed_cells(None)


# --- blocks (many lines) -------------------------------------------------------------------------------


class _Parser:
    """Walks logical lines by indentation; hands single-line values to :class:`_Inline`."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.locations: dict[Path, Location] = {(): Location(source, 1, 1)}
        self.key_locations: dict[Path, Location] = {}
        self.lines = self._logical_lines(text)
        self.pos = 0
        self.open_indents: list[int] = []

    def error(self, message: str, line: int, column: int, hint: str | None = None) -> SdnError:
        return SdnError(message, self.source, line, column, hint)

    def cursor(self, text: str, line: int, col0: int) -> _Inline:
        return _Inline(self, text, line, col0)

    def _logical_lines(self, text: str) -> list[_Line]:
        if text.startswith("\ufeff"):
            text = text[1:]
        lines: list[_Line] = []
        for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
            body = raw.lstrip(" \t")
            if not body or body[0] == "#" or body.isspace():
                continue
            indent = len(raw) - len(body)
            if "\t" in raw[:indent]:
                raise self.error(
                    "tab character in indentation",
                    number,
                    raw.index("\t") + 1,
                    "indent with spaces only; SDN does not allow tabs in indentation",
                )
            if '"' in body:
                match = _CODE_RE.match(body)
                assert match is not None  # the pattern matches the empty string
                end = match.end()
                if end < len(body) and body[end] == '"':
                    raise self.error(
                        "unterminated quoted string",
                        number,
                        indent + end + 1,
                        'close it with " on the same line; write \\" for a quote inside the string',
                    )
                content = body[:end]
            else:
                hash_at = body.find("#")
                content = body if hash_at < 0 else body[:hash_at]
            lines.append(_Line(number, indent, content.rstrip(" \t")))
        return lines

    # -- structure --

    def document(self) -> dict[str, Any]:
        if not self.lines:
            return {}
        base = self.lines[0].indent
        value = self.dict_block(base, (), 0)
        if self.pos < len(self.lines):
            raise self.bad_indent(self.lines[self.pos])
        return value

    def bad_indent(self, line: _Line) -> SdnError:
        """The error for a line indented deeper than the block it is in."""
        previous = self.lines[self.pos - 1] if self.pos else None
        if previous is not None and line.indent < previous.indent:
            columns = ", ".join(str(i + 1) for i in self.open_indents)
            return self.error(
                f"indentation ({line.indent} spaces) matches no open block",
                line.number,
                line.indent + 1,
                f"align this line with an enclosing block (open blocks start at column {columns})",
            )
        return self.error(
            "unexpected indentation",
            line.number,
            line.indent + 1,
            "only a `key:` with nothing after it (or a table header) opens an indented block;"
            " align this line with the one above",
        )

    def block(self, indent: int, path: Path, depth: int) -> dict[str, Any] | list[Any]:
        """An indented block: a dict if its first line is an entry, otherwise an array."""
        if depth > MAX_DEPTH:
            line = self.lines[self.pos]
            raise self.error(
                f"nesting is deeper than {MAX_DEPTH} levels",
                line.number,
                line.indent + 1,
                "flatten the structure",
            )
        if _ENTRY_RE.match(self.lines[self.pos].content):
            return self.dict_block(indent, path, depth)
        return self.array_block(indent, path, depth)

    def dict_block(self, indent: int, path: Path, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        self.open_indents.append(indent)
        lines = self.lines
        while self.pos < len(lines):
            line = lines[self.pos]
            if line.indent < indent:
                break
            if line.indent > indent:
                raise self.bad_indent(line)
            self.entry(line, result, path, depth)
        self.open_indents.pop()
        return result

    def array_block(self, indent: int, path: Path, depth: int) -> list[Any]:
        items: list[Any] = []
        self.open_indents.append(indent)
        lines = self.lines
        while self.pos < len(lines):
            line = lines[self.pos]
            if line.indent < indent:
                break
            if line.indent > indent:
                raise self.bad_indent(line)
            self.pos += 1
            content, col = line.content, line.indent + 1
            if content.startswith("- "):
                # YAML-style list item, as shown in the Simple project's docs.
                rest = content[2:].lstrip(" \t")
                col += len(content) - len(rest)
                content = rest
            if _EMPTY_KEY_RE.match(content):
                raise self.error(
                    f"empty key before {content[0]!r}",
                    line.number,
                    col,
                    "write a key name (an identifier) first",
                )
            if _ENTRY_RE.match(content):
                raise self.error(
                    "`key: value` entry inside an array block",
                    line.number,
                    col,
                    "a block is an array when its first line is a value; make every line `key: value`,"
                    " or write this item as an inline dict {key: value}",
                )
            item_path = (*path, len(items))
            self.locations[item_path] = Location(self.source, line.number, col)
            items.append(self.line_value(content, line.number, col, item_path, depth + 1))
        self.open_indents.pop()
        return items

    def line_value(self, text: str, number: int, col: int, path: Path, depth: int) -> Any:
        """The value that fills the rest of a line: inline dict/array, quoted string, or bare text."""
        if text[0] in '{["':
            cursor = self.cursor(text, number, col)
            value = cursor.value(path, depth)
            closer = {"{": "closing '}'", "[": "closing ']'", '"': "closing quote"}[text[0]]
            cursor.expect_end(f"the {closer}")
            return value
        try:
            return _classify(text)
        except ValueError as exc:
            raise self.error(
                str(exc), number, col, "write a smaller number, or quote it to keep it as text"
            ) from None

    # -- statements --

    def bad_statement(self, line: _Line) -> SdnError:
        content, col = line.content, line.indent + 1
        if content[0] in ":=|":
            return self.error(
                f"empty key before {content[0]!r}", line.number, col, "write a key name (an identifier) first"
            )
        glued = re.match(_IDENT + r":", content)
        if glued:
            return self.error(
                "missing blank after ':'",
                line.number,
                col + glued.end(),
                f"write `{glued.group()} {content[glued.end() :]}`",
            )
        named = re.match(r"([^\s:=|]+)[ \t]*[:=|]", content)
        if named:
            return self.error(
                f"invalid key {named.group(1)!r}",
                line.number,
                col,
                "keys are identifiers: a letter or _ followed by letters, digits or _",
            )
        return self.error(
            "line is not a statement",
            line.number,
            col,
            "expected `key: value`, `key:` and an indented block, `key = [...]` / `key = {...}`,"
            " `key: table{...}` or `key |a, b|`",
        )

    def entry(self, line: _Line, target: dict[str, Any], path: Path, depth: int) -> None:
        """One statement of a dict block; consumes its line and any indented block below it."""
        match = _ENTRY_RE.match(line.content)
        if match is None:
            raise self.bad_statement(line)
        self.pos += 1
        key = match.group(1)
        key_path = (*path, key)
        number, indent, content = line
        if key in target:
            first = self.key_locations[key_path]
            raise self.error(
                f"duplicate key {key!r} (first defined on line {first.line}, again on line {number})",
                number,
                indent + 1,
                "remove one of the two entries or rename one",
            )
        key_location = Location(self.source, number, indent + 1)
        self.key_locations[key_path] = key_location
        rest = content[match.end() :].lstrip(" \t")
        col = indent + 1 + len(content) - len(rest)

        if match.group(3):  # key |a, b|
            # The table's value starts at its opening '|'.
            self.locations[key_path] = Location(self.source, number, indent + match.end())
            target[key] = self.named_table(content, match.end(), line, key_path, depth)
            return
        if match.group(2):  # key = ...
            if not rest or rest[0] not in "{[":
                raise self.error(
                    "the value after '=' must be an inline dict {...} or array [...]",
                    number,
                    col,
                    f"for a single value write `{key}: {rest}`" if rest else "write {...} or [...] after '='",
                )
            self.locations[key_path] = Location(self.source, number, col)
            target[key] = self.line_value(rest, number, col, key_path, depth + 1)
            return
        if not rest:  # key:  (+ indented block, or nothing)
            self.locations[key_path] = key_location
            lines = self.lines
            if self.pos < len(lines) and lines[self.pos].indent > indent:
                target[key] = self.block(lines[self.pos].indent, key_path, depth + 1)
            else:
                target[key] = None
            return
        self.locations[key_path] = Location(self.source, number, col)
        if _TABLE_RE.match(rest):
            target[key] = self.typed_table(rest, line, col, key_path, depth)
            return
        target[key] = self.line_value(rest, number, col, key_path, depth + 1)

    # -- tables --

    def table_rows(self, header: _Line, rows: Table, parse_row: Callable[[_Line], Any]) -> None:
        """Append the indented rows under a table header (long form) to ``rows``."""
        lines = self.lines
        if self.pos >= len(lines) or lines[self.pos].indent <= header.indent:
            return
        row_indent = lines[self.pos].indent
        self.open_indents.append(row_indent)
        while self.pos < len(lines):
            line = lines[self.pos]
            if line.indent < row_indent:
                break
            if line.indent > row_indent:
                raise self.bad_indent(line)
            self.pos += 1
            rows.append(parse_row(line))
        self.open_indents.pop()

    def named_table(self, content: str, fields_start: int, line: _Line, path: Path, depth: int) -> Table:
        number, indent, _ = line
        close = content.find("|", fields_start)
        if close < 0:
            raise self.error(
                "unterminated '|' field list",
                number,
                indent + fields_start,
                "close the field list with '|': key |a, b|",
            )
        fields: list[str] = []
        pos = fields_start
        for raw in content[fields_start:close].split(","):
            name = raw.strip(" \t")
            col = indent + 1 + pos + (len(raw) - len(raw.lstrip(" \t")))
            if not _IDENT_FULL_RE.match(name):
                raise self.error(
                    f"invalid field name {name!r}" if name else "empty field name",
                    number,
                    col,
                    "field names are identifiers separated by commas: key |id, name|",
                )
            if name in fields:
                raise self.error(
                    f"duplicate field name {name!r}", number, col, "give each column its own name"
                )
            fields.append(name)
            pos += len(raw) + 1
        header = tuple(fields)
        if depth + 2 > MAX_DEPTH:
            raise self.error(
                f"nesting is deeper than {MAX_DEPTH} levels", number, indent + 1, "flatten the structure"
            )

        def row(text: str, row_number: int, col: int) -> dict[str, Any]:
            index = len(table)
            row_path = (*path, index)
            self.locations[row_path] = Location(self.source, row_number, col)
            cursor = self.cursor(text, row_number, col)
            cells = cursor.named_cells(row_path, header, depth + 2)
            if len(cells) != len(header):
                raise self.error(
                    f"table row has {len(cells)} cells, expected {len(header)} ({', '.join(header)})",
                    row_number,
                    col,
                    "add or remove cells; quote a cell that contains a comma",
                )
            for name, (_, start) in zip(header, cells, strict=True):
                cell_path = (*row_path, name)
                self.locations[cell_path] = Location(self.source, row_number, col + start)
            return {name: value for name, (value, _) in zip(header, cells, strict=True)}

        table = Table(fields=header)
        rest = content[close + 1 :].lstrip(" \t")
        if rest:
            table.append(row(rest, number, indent + 1 + len(content) - len(rest)))
            return table
        self.table_rows(line, table, lambda ln: row(ln.content, ln.number, ln.indent + 1))
        return table

    def typed_table(self, text: str, line: _Line, col: int, path: Path, depth: int) -> Table:
        number = line.number
        brace = text.index("{")
        close = text.find("}", brace)
        if close < 0:
            raise self.error(
                "unterminated '{' in table type list",
                number,
                col + brace,
                "close the type list: table{i32, f64}",
            )
        types: list[str] = []
        pos = brace + 1
        for raw in text[brace + 1 : close].split(","):
            name = raw.strip(" \t")
            type_col = col + pos + (len(raw) - len(raw.lstrip(" \t")))
            if (
                name not in _INT_RANGES
                and name not in _FLOAT_TYPES
                and name != "bool"
                and name not in _STR_TYPES
            ):
                raise self.error(
                    f"unknown column type {name!r}" if name else "empty column type",
                    number,
                    type_col,
                    f"use one of {', '.join(_TYPE_NAMES)}",
                )
            types.append(name)
            pos += len(raw) + 1
        header = tuple(types)
        table = Table(types=header)
        if depth + 2 > MAX_DEPTH:
            raise self.error(
                f"nesting is deeper than {MAX_DEPTH} levels", number, col, "flatten the structure"
            )

        def convert(cells: list[_Cell], row_number: int, row_col: int, cursor_col0: int) -> tuple[Any, ...]:
            if len(cells) != len(header):
                raise self.error(
                    f"table row has {len(cells)} cells, expected {len(header)} ({', '.join(header)})",
                    row_number,
                    row_col,
                    "add or remove cells; quote a str cell that contains a comma",
                )
            index = len(table)
            row_path = (*path, index)
            self.locations[row_path] = Location(self.source, row_number, row_col)
            values = []
            for j, (kind, cell) in enumerate(zip(header, cells, strict=True)):
                cell_col = cursor_col0 + cell.pos
                cell_path = (*row_path, j)
                self.locations[cell_path] = Location(self.source, row_number, cell_col)
                values.append(self.convert_cell(kind, cell.text, cell.quoted, row_number, cell_col))
            return tuple(values)

        after = text[close + 1 :].lstrip(" \t")
        if not after:

            def long_row(ln: _Line) -> tuple[Any, ...]:
                cursor = self.cursor(ln.content, ln.number, ln.indent + 1)
                cells = cursor.typed_row()
                return convert(cells, ln.number, ln.indent + 1, ln.indent + 1)

            self.table_rows(line, table, long_row)
            return table
        after_col = col + len(text) - len(after)
        if after[0] != "=":
            raise self.error(
                f"unexpected {after[0]!r} after the table type list",
                number,
                after_col,
                "write `= [(...), (...)]` after the types, or put the rows on indented lines below",
            )
        cursor = self.cursor(text, number, col)
        cursor.pos = len(text) - len(after) + 1
        cursor.ws()
        if cursor.at_end() or text[cursor.pos] != "[":
            raise cursor.error(
                "expected '[' with the table rows after '='",
                hint="write rows as key: table{i32} = [(1), (2)]",
            )
        open_pos = cursor.pos
        cursor.pos += 1
        while True:
            cursor.ws()
            if cursor.at_end():
                raise cursor.unterminated("[", open_pos)
            char = text[cursor.pos]
            if char == "]":
                cursor.pos += 1
                break
            if char != "(":
                raise cursor.error(
                    f"expected '(' to start a table row, found {char!r}", hint="write each row as (a, b)"
                )
            row_pos = cursor.pos
            cursor.open_paren = row_pos
            cursor.pos += 1
            cells = cursor.typed_cells(")")
            table.append(convert(cells, number, col + row_pos, col))
            if cursor.close_or_comma("[", open_pos):
                break
        cursor.expect_end("the closing ']'")
        return table

    def convert_cell(self, kind: str, cell: str, quoted: bool, number: int, col: int) -> Any:
        """Convert one typed-table cell to its column type."""
        if kind in _STR_TYPES:
            return cell
        shown = f'"{cell}"' if quoted else repr(cell)
        if not cell and not quoted:
            raise self.error(f"empty cell in a {kind} column", number, col, f"write a {kind} value")
        if kind == "bool":
            if not quoted and cell in ("true", "false"):
                return cell == "true"
            raise self.error(f"cell {shown} is not a bool", number, col, "write true or false")
        if kind in _INT_RANGES:
            low, high = _INT_RANGES[kind]
            if quoted or not _INT_RE.match(cell) or len(cell) > _MAX_INT_DIGITS:
                raise self.error(
                    f"cell {shown} is not an integer ({kind} column)",
                    number,
                    col,
                    f"write a whole number in {low}..{high}",
                )
            value = int(cell.replace("_", ""))
            if not low <= value <= high:
                raise self.error(
                    f"cell {cell} is out of range for {kind} ({low}..{high})",
                    number,
                    col,
                    "use a wider column type or a smaller value",
                )
            return value
        limit = _FLOAT_TYPES[kind]
        if quoted or not (_INT_RE.match(cell) or _FLOAT_RE.match(cell)):
            raise self.error(
                f"cell {shown} is not a number ({kind} column)",
                number,
                col,
                "write a number such as 1.5 or 2e-3",
            )
        number_value = float(cell.replace("_", ""))
        if math.isinf(number_value) or abs(number_value) > limit:
            raise self.error(
                f"cell {cell} is out of range for {kind}", number, col, "use f64 or a smaller value"
            )
        return number_value


# --- public reader -------------------------------------------------------------------------------------


def parse(text: str, source: str = "<string>") -> Document:
    """Parse SDN text into a :class:`Document` (values plus where each came from).

    Raises :class:`SdnError` (and nothing else) for any text that is not valid SDN.
    """
    parser = _Parser(text, source)
    value = parser.document()
    return Document(value, parser.locations, parser.key_locations, source)


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
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for bom, encoding in _FOREIGN_BOMS:
        if data.startswith(bom):
            msg = f"file is {encoding} text (it starts with a {encoding} byte-order mark), not UTF-8"
            hint = f"save the file as UTF-8 (e.g. iconv -f {encoding} -t UTF-8 FILE)"
            raise SdnError(msg, source, 1, 1, hint)

    def position(offset: int) -> tuple[int, int]:
        # Everything before ``offset`` decodes; count lines and characters in it.
        before = data[:offset].decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
        lines = before.split("\n")
        return len(lines), len(lines[-1]) + 1

    nul = data.find(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if 0 <= nul < exc.start:
            raise _nul_error(source, nul, *position(nul)) from None
        msg = f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        hint = "save the file as UTF-8"
        raise SdnError(msg, source, *position(exc.start), hint) from None
    if nul >= 0:  # no text format holds NUL: binary data, or UTF-16 without its byte-order mark
        raise _nul_error(source, nul, *position(nul))
    return parse(text, source)


_FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def _nul_error(source: str, offset: int, line: int, column: int) -> SdnError:
    return SdnError(
        f"file contains a NUL byte (offset {offset}): it is binary data or UTF-16/UTF-32 text, not UTF-8 text",
        source,
        line,
        column,
        "save the file as UTF-8 text; check that this is the right file",
    )


# --- writer -------------------------------------------------------------------------------------------

# Strings written without quotes: the SDN bare-word alphabet (letters may be non-ASCII).
_BARE_SAFE_RE = re.compile(r"[\w./:-]+\Z")
_INDENT = "    "
_ESCAPE_OUT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_NEEDS_ESCAPE_RE = re.compile(r'["\\\x00-\x1f\x7f]')


def _quote(text: str) -> str:
    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return _ESCAPE_OUT.get(char) or f"\\u{ord(char):04x}"

    return '"' + _NEEDS_ESCAPE_RE.sub(escape, text) + '"'


def _format_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"cannot write {value!r}: SDN has no nan or infinity; store a string or leave the key out"
            raise ValueError(msg)
        return repr(value)
    if isinstance(value, str):
        # Bare only when reading it back gives the same string and it cannot look like a `key:` line.
        if _BARE_SAFE_RE.match(value) and not value.endswith(":"):
            try:
                if isinstance(_classify(value), str):
                    return value
            except ValueError:  # an over-long integer literal: quoting keeps it a string
                pass
        return _quote(value)
    msg = (
        f"cannot write a {type(value).__name__} as SDN (use dict, list, Table, str, int, float, bool or None)"
    )
    raise TypeError(msg)


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not _IDENT_FULL_RE.match(key):
        msg = (
            f"cannot write key {key!r}: SDN keys are identifiers (ASCII letter or _, then letters, digits, _)"
        )
        raise ValueError(msg)
    return key


def _format_inline(value: Any, depth: int) -> str:
    if depth > MAX_DEPTH:
        msg = f"value is nested deeper than {MAX_DEPTH} levels, which SDN readers reject"
        raise ValueError(msg)
    if isinstance(value, Table) and (value.fields is not None or value.types is not None):
        msg = "a Table with fields or types can only be the value of a key, not inside an inline value"
        raise ValueError(msg)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_check_key(k)}: {_format_inline(v, depth + 1)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format_inline(v, depth + 1) for v in value) + "]"
    return _format_scalar(value)


def _check_typed_cell(kind: str, value: Any) -> None:
    ok: bool
    if kind in _STR_TYPES:
        ok = isinstance(value, str)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    else:
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and abs(value) <= _FLOAT_TYPES[kind]
        )
    if not ok:
        msg = f"cannot write {value!r} in a {kind} column"
        raise ValueError(msg)


def _write_table(key: str, table: Table, pad: str, out: list[str], depth: int) -> None:
    if table.fields is not None and table.types is not None:
        msg = f"table {key!r} has both fields and types; SDN tables are either named or typed"
        raise ValueError(msg)
    if table.fields is not None:
        fields = [_check_key(f) for f in table.fields]
        if not fields or len(set(fields)) != len(fields):
            msg = f"table {key!r} needs at least one field and no duplicate fields"
            raise ValueError(msg)
        out.append(f"{pad}{key} |{', '.join(fields)}|")
        for row in table:
            if not isinstance(row, Mapping) or len(row) != len(fields) or set(row) != set(fields):
                msg = f"rows of named table {key!r} must be dicts with exactly the keys {fields}"
                raise ValueError(msg)
            cells = ", ".join(_format_inline(row[f], depth + 2) for f in fields)
            out.append(f"{pad}{_INDENT}{cells}")
        return
    types = table.types or ()
    for kind in types:
        if kind not in _INT_RANGES and kind not in _FLOAT_TYPES and kind != "bool" and kind not in _STR_TYPES:
            msg = f"table {key!r} has unknown column type {kind!r}; use one of {', '.join(_TYPE_NAMES)}"
            raise ValueError(msg)
    if not types:
        msg = f"table {key!r} needs at least one column type"
        raise ValueError(msg)
    out.append(f"{pad}{key}: table{{{', '.join(types)}}}")
    for row in table:
        if not isinstance(row, (tuple, list)) or len(row) != len(types):
            msg = f"rows of typed table {key!r} must be tuples of {len(types)} values"
            raise ValueError(msg)
        for kind, cell in zip(types, row, strict=True):
            _check_typed_cell(kind, cell)
        out.append(f"{pad}{_INDENT}" + ", ".join(_format_scalar(cell) for cell in row))


def _write_dict(value: Mapping[str, Any], pad: str, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        msg = f"value is nested deeper than {MAX_DEPTH} levels, which SDN readers reject"
        raise ValueError(msg)
    for raw_key, item in value.items():
        key = _check_key(raw_key)
        if isinstance(item, Table) and (item.fields is not None or item.types is not None):
            _write_table(key, item, pad, out, depth + 1)
        elif isinstance(item, Mapping):
            if item:
                out.append(f"{pad}{key}:")
                _write_dict(item, pad + _INDENT, out, depth + 1)
            else:
                out.append(f"{pad}{key} = {{}}")
        elif isinstance(item, (list, tuple)):
            if item:
                out.append(f"{pad}{key}:")
                if depth + 1 > MAX_DEPTH:
                    msg = f"value is nested deeper than {MAX_DEPTH} levels, which SDN readers reject"
                    raise ValueError(msg)
                out.extend(f"{pad}{_INDENT}{_format_inline(element, depth + 2)}" for element in item)
            else:
                out.append(f"{pad}{key} = []")
        else:
            out.append(f"{pad}{key}: {_format_scalar(item)}")


def dumps(value: Mapping[str, Any]) -> str:
    """Write ``value`` as SDN text that :func:`loads` reads back to an equal value.

    Nested dicts and non-empty lists become indented blocks (4 spaces), empty ones ``key = {}`` /
    ``key = []``; named tables are written ``key |a, b|`` and typed tables ``key: table{...}``, both
    with indented rows. Strings are quoted unless they read back unchanged as bare words; tuples are
    written as arrays (and read back as lists).

    Raises ``ValueError`` for nan/inf, keys that are not identifiers, tables whose rows do not match
    their header, and nesting deeper than :data:`MAX_DEPTH`; ``TypeError`` for unsupported objects.
    """
    if not isinstance(value, Mapping):
        msg = f"the top level of an SDN document is a dict, not a {type(value).__name__}"
        raise TypeError(msg)
    out: list[str] = []
    _write_dict(value, "", out, 0)
    return "\n".join(out) + "\n" if out else ""
