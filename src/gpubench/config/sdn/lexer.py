"""From bytes to logical lines: decoding (UTF-8, byte-order marks, NUL), comments, indentation.

:func:`decode` turns a file's bytes into text or an :class:`SdnError` pointing at the first bad byte;
:func:`logical_lines` drops blank and comment lines, cuts trailing comments outside quoted strings and
measures indentation, rejecting tabs in it. The patterns that recognise a statement's start
(``key:``, ``key =``, ``key |``) live here too, beside the identifiers they are built from.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from gpubench.config.sdn.errors import SdnError

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
IDENT_RE = re.compile(_IDENT)
IDENT_FULL_RE = re.compile(_IDENT + r"\Z")
# Keys as the Simple project writes them (`run-config`, `lib.crypto`, `.text`, `0`, `/api/login`): word
# characters, `.` and `/`, then also `-`. Anything else is written as a quoted key, `"my key": 1`.
_KEY = r"[\w./][\w./-]*"
_QUOTED_KEY = r'"(?:[^"\\]|\\.)*"'
KEY_RE = re.compile(_KEY + "|" + _QUOTED_KEY)
KEY_FULL_RE = re.compile(_KEY + r"\Z")
# A statement at dict level: `key: ...` (colon followed by blank or end), `key = ...`, `key |...`.
ENTRY_RE = re.compile(r"(" + _KEY + "|" + _QUOTED_KEY + r")[ \t]*(?::(?=[ \t]|\Z)|(=)|(\|))")
# A dash list item, `- value` or a lone `-` (the Simple parser's block sequence).
DASH_RE = re.compile(r"-(?:[ \t]|\Z)")
# A statement whose key is missing: `: 1`, `= [1]`, `|a| 1`.
EMPTY_KEY_RE = re.compile(r"(?::(?=[ \t]|\Z)|=|\|)")
# A key glued to its value without the blank: `device:cpu`.
GLUED_KEY_RE = re.compile(_IDENT + r":")
TABLE_RE = re.compile(r"table[ \t]*\{")
# Everything up to the first `#` outside a quoted string; stops early at a `"` that is never closed.
# (Written unrolled, one way to match each text, so that it runs in a few steps per quoted string and
# never backtracks far; the same language as `(?:[^"#]|"(?:[^"\\]|\\.)*")*`.)
_CODE_RE = re.compile(r'[^"#]*(?:"[^"\\]*(?:\\.[^"\\]*)*"[^"#]*)*')
_new_tuple = tuple.__new__


class Line(NamedTuple):
    number: int  # 1-based
    indent: int  # leading spaces
    content: str  # from the first non-blank character, comment and trailing blanks removed


def logical_lines(text: str, source: str) -> list[Line]:
    """The statements of ``text``, one per line, without blank lines, comment lines and trailing comments."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines: list[Line] = []
    append = lines.append
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        body = raw.lstrip(" \t")
        if not body or body[0] == "#" or body.isspace():
            continue
        indent = len(raw) - len(body)
        if "\t" in raw and "\t" in raw[:indent]:
            raise SdnError(
                "tab character in indentation",
                source,
                number,
                raw.index("\t") + 1,
                "indent with spaces only; SDN does not allow tabs in indentation",
            )
        if '"' in body:
            # Without `#` and backslashes, an even number of quotes closes every string: no scan needed.
            if "#" in body or "\\" in body or body.count('"') % 2 or '"""' in body:
                content = _code(body, source, number, indent)
            else:
                content = body
        elif "#" in body:
            content = body[: body.index("#")]
        else:
            content = body
        append(_new_tuple(Line, (number, indent, content.rstrip(" \t"))))
    return lines


def _code(body: str, source: str, number: int, indent: int) -> str:
    """A statement that holds a quote, up to its comment; SdnError for a quoted string left open."""
    if '"""' in body:
        raise SdnError(
            'triple-quoted string (""") is not SDN',
            source,
            number,
            indent + body.index('"""') + 1,
            'write one quoted string on one line, with \\n for each line break: "first\\nsecond"',
        )
    end = _CODE_RE.match(body).end()  # type: ignore[union-attr]  # the pattern matches the empty string
    if end < len(body) and body[end] == '"':
        message, hint = unterminated_string(body[end:])
        raise SdnError(message, source, number, indent + end + 1, hint)
    return body[:end]


def unterminated_string(opened: str) -> tuple[str, str]:
    """The message and hint for a quoted string that is never closed; ``opened`` runs from its quote to the end.

    A string whose last character is a quote after an odd number of backslashes (``"C:\\dir\\"``) was meant to
    end there: its final backslash escapes the closing quote.
    """
    text = opened.rstrip(" \t")
    inner = text[:-1]
    if text.endswith('"') and (len(inner) - len(inner.rstrip("\\"))) % 2 == 1:
        return (
            "unterminated quoted string (the final backslash escapes the closing quote)",
            r"write \\ for a backslash at the end of a string",
        )
    return "unterminated quoted string", 'close it with " on the same line; write \\" for a quote inside the string'


_FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def decode(data: bytes, source: str) -> str:
    """A file's bytes as text: UTF-8, a leading BOM tolerated; SdnError at the first byte that is not."""
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
    return text


def _nul_error(source: str, offset: int, line: int, column: int) -> SdnError:
    return SdnError(
        f"file contains a NUL byte (offset {offset}): it is binary data or UTF-16/UTF-32 text, not UTF-8 text",
        source,
        line,
        column,
        "save the file as UTF-8 text; check that this is the right file",
    )
