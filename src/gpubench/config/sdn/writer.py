"""The writer: ``dumps`` turns dicts, lists, tables and scalars into SDN text that reads back equal.

Checks on the way out mirror the reader's: keys are written bare when the reader takes them back as is
and quoted otherwise, table fields must be identifiers, typed-table cells must fit their
column type, nesting stays within :data:`~.values.MAX_DEPTH`, and strings are quoted unless they read
back unchanged as bare words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from gpubench.config.sdn.lexer import IDENT_FULL_RE, KEY_FULL_RE
from gpubench.config.sdn.values import (
    FLOAT_TYPES,
    INT_RANGES,
    MAX_DEPTH,
    STR_TYPES,
    TYPE_NAMES,
    Table,
    classify,
    is_column_type,
)

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
        if _BARE_SAFE_RE.match(value) and not value.endswith(":") and value != "-":
            try:
                if isinstance(classify(value), str):
                    return value
            except ValueError:  # an over-long integer literal: quoting keeps it a string
                pass
        return _quote(value)
    msg = (
        f"cannot write a {type(value).__name__} as SDN (use dict, list, Table, str, int, float, bool or None)"
    )
    raise TypeError(msg)


def _check_key(key: object) -> str:
    """A key as written: bare when the reader takes it back as is (``run-config``, ``lib.crypto``, ``0``),
    else quoted (``"my key"``)."""
    if not isinstance(key, str) or not key:
        msg = f"cannot write key {key!r}: SDN keys are non-empty strings"
        raise ValueError(msg)
    return key if KEY_FULL_RE.match(key) else _quote(key)


def _check_field(key: object) -> str:
    if not isinstance(key, str) or not IDENT_FULL_RE.match(key):
        msg = (
            f"cannot write field {key!r}: SDN table fields are identifiers (ASCII letter or _, then letters,"
            " digits, _)"
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
    if kind in STR_TYPES:
        ok = isinstance(value, str)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    else:
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and abs(value) <= FLOAT_TYPES[kind]
        )
    if not ok:
        msg = f"cannot write {value!r} in a {kind} column"
        raise ValueError(msg)


def _write_table(key: str, table: Table, pad: str, out: list[str], depth: int) -> None:
    if table.fields is not None and table.types is not None:
        msg = f"table {key!r} has both fields and types; SDN tables are either named or typed"
        raise ValueError(msg)
    if table.fields is not None:
        fields = [_check_field(f) for f in table.fields]
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
        if not is_column_type(kind):
            msg = f"table {key!r} has unknown column type {kind!r}; use one of {', '.join(TYPE_NAMES)}"
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
