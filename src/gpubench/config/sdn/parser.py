"""The block parser: walks logical lines by indentation into dicts, arrays and tables.

A line-oriented parser (:class:`Parser`) reads the statements of each indented block; whatever lives on
one line (inline dicts and arrays, quoted strings, table rows) goes to :class:`~.inline.Inline`. It reads
a text in one of two ways. The exact reading records where each value and key starts and words every
error. The quick reading, which :func:`~.reading.parse` tries first, records no location and hands
well-formed inline values and table rows to :class:`~.fast.Fast`; at any error it gives up and
:func:`~.reading.parse` reads the text exactly, so every error comes from the exact reading.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gpubench.config.sdn.errors import Location, SdnError
from gpubench.config.sdn.fast import Fallback, Fast
from gpubench.config.sdn.inline import Cell, Inline
from gpubench.config.sdn.lexer import (
    DASH_RE,
    EMPTY_KEY_RE,
    ENTRY_RE,
    GLUED_KEY_RE,
    IDENT_FULL_RE,
    TABLE_RE,
    Line,
    logical_lines,
)
from gpubench.config.sdn.lookalikes import bad_item, bad_value, foreign_statement
from gpubench.config.sdn.values import (
    MAX_DEPTH,
    TYPE_NAMES,
    Path,
    Table,
    classify,
    is_column_type,
    typed_cell,
)

# Builds a Location without the named tuple's Python-level __new__ (one per value and key: it adds up).
_new_tuple = tuple.__new__
# A statement whose key holds characters a bare key cannot: `my@key: x`, `a,b = [1]`.
_NAMED_KEY_RE = re.compile(r"([^\s:=|]+)[ \t]*[:=|]")


class Parser:
    """Walks logical lines by indentation; hands single-line values to :class:`~.inline.Inline`.

    ``exact=False`` is the quick reading: no locations (``locations`` and ``key_locations`` hold only
    what Inline happened to record), the fast path first, and :class:`~.fast.Fallback` raised where the
    wording of an error needs a location that was not recorded.
    """

    def __init__(self, text: str, source: str, exact: bool = True) -> None:
        self.source = source
        self.exact = exact
        self.locations: dict[Path, Location] = {(): Location(source, 1, 1)}
        self.key_locations: dict[Path, Location] = {}
        self.lines = logical_lines(text, source)
        self.pos = 0
        self.open_indents: list[int] = []
        self.fast = None if exact else Fast()

    def error(self, message: str, line: int, column: int, hint: str | None = None) -> SdnError:
        return SdnError(message, self.source, line, column, hint)

    def cursor(self, text: str, line: int, col0: int) -> Inline:
        return Inline(self, text, line, col0)

    def continuation(self, base_indent: int) -> Callable[[], Line | None]:
        """Hands the lines below to a multi-line inline value: those indented deeper than ``base_indent``,
        or starting with the closing bracket."""

        def feed() -> Line | None:
            lines = self.lines
            if self.pos >= len(lines):
                return None
            line = lines[self.pos]
            if line.indent <= base_indent and line.content[0] not in "]}":
                return None
            self.pos += 1
            return line

        return feed

    def key_text(self, raw: str, number: int, col: int) -> str:
        """The key of an entry: as written, or the content of a quoted key."""
        if raw[0] != '"':
            return raw
        return self.cursor(raw, number, col).quoted()

    # -- structure --

    def document(self) -> dict[str, Any]:
        if not self.lines:
            return {}
        base = self.lines[0].indent
        value = self.dict_block(base, (), 0)
        if self.pos < len(self.lines):
            raise self.bad_indent(self.lines[self.pos])
        return value

    def bad_indent(self, line: Line) -> SdnError:
        """The error for a line indented deeper than the block it is in."""
        previous = self.lines[self.pos - 1] if self.pos else None
        if previous is not None and line.indent < previous.indent:
            if self.open_indents:
                columns = ", ".join(str(i + 1) for i in self.open_indents)
                hint = f"align this line with an enclosing block (open blocks start at column {columns})"
            else:  # left of a top level that starts indented: no block is open any more
                top = self.lines[0].indent + 1
                hint = (f"the top level starts at column {top} (its first line is indented): indent this line "
                        f"to column {top}, or start the first line at column 1")
            return self.error(
                f"indentation ({line.indent} spaces) matches no open block", line.number, line.indent + 1, hint
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
        first = self.lines[self.pos].content
        if not DASH_RE.match(first) and ENTRY_RE.match(first):
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
        dashes = DASH_RE.match(lines[self.pos].content) is not None
        while self.pos < len(lines):
            line = lines[self.pos]
            if line.indent < indent:
                break
            if line.indent > indent:
                raise self.bad_indent(line)
            content, col = line.content, line.indent + 1
            item_path = (*path, len(items))
            # A lone `-` is a null item in a block of `- ` items (as in the Simple parser), else the text "-".
            if DASH_RE.match(content) and (dashes or len(content) > 1):
                # YAML-style list item (the Simple parser's block sequence); `- key: value` starts a dict
                # whose other keys follow on lines aligned with the first key.
                rest = content[1:].lstrip(" \t")
                col += len(content) - len(rest)
                if not rest:
                    self.pos += 1
                    if self.exact:
                        self.locations[item_path] = _new_tuple(Location, (self.source, line.number, col))
                    items.append(None)
                    continue
                content = rest
                if ENTRY_RE.match(content) and not DASH_RE.match(content):
                    if self.exact:
                        self.locations[item_path] = _new_tuple(Location, (self.source, line.number, col))
                    lines[self.pos] = Line(line.number, col - 1, content)
                    items.append(self.dict_block(col - 1, item_path, depth + 1))
                    continue
            self.pos += 1
            if EMPTY_KEY_RE.match(content):
                raise self.error(
                    f"empty key before {content[0]!r}",
                    line.number,
                    col,
                    "write a key name (an identifier) first",
                )
            if ENTRY_RE.match(content) and not DASH_RE.match(content):
                raise self.error(
                    "`key: value` entry inside an array block",
                    line.number,
                    col,
                    "a block is an array when its first line is a value; make every line `key: value`,"
                    " or write this item as an inline dict {key: value}",
                )
            problem = bad_item(content)
            if problem is not None:
                raise self.error(problem[0], line.number, col + problem[1], problem[2])
            if self.exact:
                self.locations[item_path] = _new_tuple(Location, (self.source, line.number, col))
            items.append(self.line_value(content, line.number, col, item_path, depth + 1, indent))
        self.open_indents.pop()
        return items

    def line_value(
        self, text: str, number: int, col: int, path: Path, depth: int, base_indent: int | None = None
    ) -> Any:
        """The value that fills the rest of a line: inline dict/array, quoted string, or bare text.

        With ``base_indent``, an inline dict or array may continue on the lines below.
        """
        if text[0] in '{["':
            if self.fast is not None:
                try:
                    return self.fast.whole(text, depth)
                except Fallback:
                    pass  # read it again exactly: a value over several lines, or an error to report
            feed = None if base_indent is None or text[0] == '"' else self.continuation(base_indent)
            cursor = Inline(self, text, number, col, feed)
            value = cursor.value(path, depth)
            closer = {"{": "closing '}'", "[": "closing ']'", '"': "closing quote"}[text[0]]
            cursor.expect_end(f"the {closer}")
            return value
        problem = bad_value(text)
        if problem is not None:
            raise self.error(problem[0], number, col + problem[1], problem[2])
        try:
            return classify(text)
        except ValueError as exc:
            raise self.error(
                str(exc), number, col, "write a smaller number, or quote it to keep it as text"
            ) from None

    # -- statements --

    def bad_statement(self, line: Line) -> SdnError:
        content, col = line.content, line.indent + 1
        foreign = foreign_statement(content, first=self.pos == 0)
        if foreign is not None:
            return self.error(foreign[0], line.number, col + foreign[1], foreign[2])
        if content[0] in ":=|":
            return self.error(
                f"empty key before {content[0]!r}", line.number, col, "write a key name (an identifier) first"
            )
        glued = GLUED_KEY_RE.match(content)
        if glued:
            return self.error(
                "missing blank after ':'",
                line.number,
                col + glued.end(),
                f"write `{glued.group()} {content[glued.end() :]}`",
            )
        named = _NAMED_KEY_RE.match(content)
        if named:
            return self.error(
                f"invalid key {named.group(1)!r}",
                line.number,
                col,
                "a bare key holds letters, digits, _ . / and - (not first); quote any other key:"
                ' "my key": value',
            )
        return self.error(
            "line is not a statement",
            line.number,
            col,
            "expected `key: value`, `key:` and an indented block, `key = [...]` / `key = {...}`,"
            " `key: table{...}` or `key |a, b|`",
        )

    def entry(self, line: Line, target: dict[str, Any], path: Path, depth: int) -> None:
        """One statement of a dict block; consumes its line and any indented block below it."""
        match = ENTRY_RE.match(line.content)
        if match is None:
            raise self.bad_statement(line)
        self.pos += 1
        number, indent, content = line
        key = self.key_text(match.group(1), number, indent + 1)
        key_path = (*path, key)
        if key in target:
            if not self.exact:
                raise Fallback  # the message names the first key's line, which only the exact reading has
            first = self.key_locations[key_path]
            raise self.error(
                f"duplicate key {key!r} (first defined on line {first.line}, again on line {number})",
                number,
                indent + 1,
                "remove one of the two entries or rename one",
            )
        exact = self.exact
        if exact:
            key_location = _new_tuple(Location, (self.source, number, indent + 1))
            self.key_locations[key_path] = key_location
        rest = content[match.end() :].lstrip(" \t")
        col = indent + 1 + len(content) - len(rest)

        if match.group(3):  # key |a, b|
            if exact:  # the table's value starts at its opening '|'
                self.locations[key_path] = _new_tuple(Location, (self.source, number, indent + match.end()))
            target[key] = self.named_table(content, match.end(), line, key_path, depth)
            return
        if match.group(2):  # key = ...
            if not rest or rest[0] not in "{[":
                raise self.error(
                    "the value after '=' must be an inline dict {...} or array [...]",
                    number,
                    col,
                    f"for a single value write `{key}: {rest}`"
                    + (" (`key = \"text\"` is TOML; SDN writes `key: value`)" if rest[0] == '"' else "")
                    if rest
                    else "write {...} or [...] after '='",
                )
            if exact:
                self.locations[key_path] = _new_tuple(Location, (self.source, number, col))
            target[key] = self.line_value(rest, number, col, key_path, depth + 1, indent)
            return
        if not rest:  # key:  (+ indented block, or nothing)
            if exact:
                self.locations[key_path] = key_location
            lines = self.lines
            if self.pos < len(lines) and lines[self.pos].indent > indent:
                target[key] = self.block(lines[self.pos].indent, key_path, depth + 1)
            else:
                target[key] = None
            return
        if exact:
            self.locations[key_path] = _new_tuple(Location, (self.source, number, col))
        if rest[0] == "t" and TABLE_RE.match(rest):
            target[key] = self.typed_table(rest, line, col, key_path, depth)
            return
        target[key] = self.line_value(rest, number, col, key_path, depth + 1, indent)

    # -- tables --

    def table_rows(self, header: Line, rows: Table, parse_row: Callable[[Line], Any]) -> None:
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

    def named_table(self, content: str, fields_start: int, line: Line, path: Path, depth: int) -> Table:
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
            if not IDENT_FULL_RE.match(name):
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

        fast = self.fast

        def row(text: str, row_number: int, col: int) -> dict[str, Any]:
            if fast is not None:
                try:
                    quick = fast.named_cells(text, depth + 2)
                except Fallback:
                    pass  # read it again exactly
                else:
                    if len(quick) == len(header):
                        return dict(zip(header, quick, strict=True))
            index = len(table)
            row_path = (*path, index)
            self.locations[row_path] = _new_tuple(Location, (self.source, row_number, col))
            cells = self.cursor(text, row_number, col).named_cells(row_path, header, depth + 2)
            if len(cells) != len(header):
                raise self.error(
                    f"table row has {len(cells)} cells, expected {len(header)} ({', '.join(header)})",
                    row_number,
                    col,
                    "add or remove cells; quote a cell that contains a comma",
                )
            locations, source, values = self.locations, self.source, {}
            for name, (value, start) in zip(header, cells, strict=True):
                cell_path = (*row_path, name)
                locations[cell_path] = _new_tuple(Location, (source, row_number, col + start))
                values[name] = value
            return values

        table = Table(fields=header)
        rest = content[close + 1 :].lstrip(" \t")
        if rest:
            table.append(row(rest, number, indent + 1 + len(content) - len(rest)))
            return table
        self.table_rows(line, table, lambda ln: row(ln.content, ln.number, ln.indent + 1))
        return table


    def typed_table(self, text: str, line: Line, col: int, path: Path, depth: int) -> Table:
        """``key: table{i32, f64}``, its rows after ``= [...]`` on this line or on indented lines below."""
        header, close = self.column_types(text, line.number, col)
        table = Table(types=header)
        if depth + 2 > MAX_DEPTH:
            raise self.error(
                f"nesting is deeper than {MAX_DEPTH} levels", line.number, col, "flatten the structure"
            )
        after = text[close + 1 :].lstrip(" \t")
        if not after:

            def long_row(ln: Line) -> tuple[Any, ...]:
                cursor = self.cursor(ln.content, ln.number, ln.indent + 1)
                cells = cursor.typed_row()
                return self.typed_row_values(table, cells, path, ln.number, ln.indent + 1, ln.indent + 1)

            self.table_rows(line, table, long_row)
            return table
        if after[0] != "=":
            raise self.error(
                f"unexpected {after[0]!r} after the table type list",
                line.number,
                col + len(text) - len(after),
                "write `= [(...), (...)]` after the types, or put the rows on indented lines below",
            )
        self.inline_typed_rows(table, text, len(text) - len(after) + 1, line.number, col, path)
        return table

    def column_types(self, text: str, number: int, col: int) -> tuple[tuple[str, ...], int]:
        """The types between ``table{`` and ``}`` (checked), and the position of the ``}``."""
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
            if not is_column_type(name):
                raise self.error(
                    f"unknown column type {name!r}" if name else "empty column type",
                    number,
                    type_col,
                    f"use one of {', '.join(TYPE_NAMES)}",
                )
            types.append(name)
            pos += len(raw) + 1
        return tuple(types), close

    def inline_typed_rows(self, table: Table, text: str, start: int, number: int, col: int, path: Path) -> None:
        """Append the rows of the short form, ``= [(1, 2.0), (3, 4.0)]`` from ``text[start:]``, to ``table``."""
        cursor = self.cursor(text, number, col)
        cursor.pos = start
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
            table.append(self.typed_row_values(table, cells, path, number, col + row_pos, col))
            if cursor.close_or_comma("[", open_pos):
                break
        cursor.expect_end("the closing ']'")

    def typed_row_values(
        self, table: Table, cells: list[Cell], path: Path, row_number: int, row_col: int, cursor_col0: int
    ) -> tuple[Any, ...]:
        """The next row of a typed ``table``: its cells checked against the column types and converted."""
        header = table.types or ()
        if len(cells) != len(header):
            raise self.error(
                f"table row has {len(cells)} cells, expected {len(header)} ({', '.join(header)})",
                row_number,
                row_col,
                "add or remove cells; quote a str cell that contains a comma",
            )
        row_path = (*path, len(table))
        exact = self.exact
        if exact:
            self.locations[row_path] = _new_tuple(Location, (self.source, row_number, row_col))
        values = []
        for j, (kind, cell) in enumerate(zip(header, cells, strict=True)):
            where = _new_tuple(Location, (self.source, row_number, cursor_col0 + cell.pos))
            if exact:
                cell_path = (*row_path, j)
                self.locations[cell_path] = where
            values.append(typed_cell(kind, cell.text, cell.quoted, where))
        return tuple(values)
