"""The reader's fast path: well-formed inline values and named-table rows that fit on one line.

:class:`Fast` gives the values :class:`~.inline.Inline` gives, without locations: the parser runs it
when it reads for values only (:func:`~.parser.parse`), and the exact reader works locations out
later, when a caller asks for them. It cuts a line into tokens with one ``findall`` (a C loop) instead of
stepping through characters, and reads only text that is valid and complete on its line: at anything
else (an error of any kind, a value that continues on the next line, a quoted key, a key glued to its
value, nesting near the limit) it raises :class:`Fallback`, and the caller reads the same text again
with :class:`~.inline.Inline`, which gives the value or the exact error. So the fast path decides no
result and words no error.
"""

from __future__ import annotations

import re
from typing import Any

from gpubench.config.sdn.values import MAX_DEPTH, classify

# A bare word: from a character that can start a value to the last non-blank before a stop character
# (`,[]{}"` or a line break); `)` cannot start one (Inline reports it). A quoted string, quotes included.
_WORD = r'[^ \t,\[\]{})"\n](?:[^,\[\]{}"\n]*[^ \t,\[\]{}"\n])?'
_QUOTED = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_KEY = r"[\w./][\w./-]*"  # a bare key, as lexer.KEY_RE has it
# One token of an inline value, with the blanks and the comma after it: (key, scalar, symbol, comma).
# A key is taken only with a blank after its colon, so `cuda:1` stays one word (in a dict, `{a:1}` is left
# to Inline). A symbol is a bracket, or any other character that starts no scalar (the caller falls back).
# Every non-blank character starts a token, so findall skips nothing but blanks.
_TOKEN_RE = re.compile(
    r"[ \t]*(?:(" + _KEY + r")[ \t]*:[ \t]+)?(?:(" + _WORD + "|" + _QUOTED + r")|([^ \t]))[ \t]*(,?)"
)
_QUOTED_RE = re.compile("(" + _QUOTED + r")[ \t]*")
_ESCAPE_RE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)", re.DOTALL)
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r"}
# One cell of a named-table row: (cell, comma, other). The cell is a quoted string, an inline value without
# nested brackets (a comma inside either belongs to the cell), a bare cell (to the next comma, blanks
# included) or "" (an empty cell); then the comma, the end of the row, or any other character (the caller
# falls back). Each cell ends where the next starts, so findall skips nothing.
_FLAT = r"[\[{](?:[^\[\]{}\"]|" + _QUOTED + r")*[\]}]"
_CELL_RE = re.compile(
    r"[ \t]*(" + _QUOTED + "|" + _FLAT + r'|[^ \t,"\[{][^,]*)?[ \t]*(?:(,)|\Z|(.))', re.DOTALL
)

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
    """Reads one line's inline values and named-table cells, values only; :class:`Fallback` otherwise.

    One instance serves a whole document. Scalars are read once per document: ``scalars`` maps each
    token as written (a bare word, or a quoted string with its quotes) to its value, since a large file
    repeats the same words (``true``, ``relu``, ``0.1``) on line after line.
    """

    __slots__ = ("scalars",)

    def __init__(self) -> None:
        self.scalars: dict[str, Any] = {"": None}  # "": an empty table cell

    def scalar(self, token: str) -> Any:
        """The value of a bare word or a quoted string (quotes included); not a container."""
        value = self.scalars.get(token, _MISSING)
        if value is _MISSING:
            if token[0] == '"':
                value = unquote(token[1:-1])
            else:
                try:
                    value = classify(token.rstrip(" \t"))
                except ValueError:
                    raise Fallback from None
            self.scalars[token] = value
        return value

    def whole(self, text: str, depth: int) -> Any:
        """The value that is all of ``text`` (an inline dict or array, or a quoted string) at ``depth``."""
        if text[0] != '"':
            return self.inline(text, depth)
        match = _QUOTED_RE.fullmatch(text)
        if match is None or depth > MAX_DEPTH:
            raise Fallback
        return self.scalar(match.group(1))

    def inline(self, text: str, depth: int) -> dict[str, Any] | list[Any]:
        """The inline dict or array that is all of ``text``, which starts with its opening bracket.

        A value at ``depth`` holds values at ``depth + 1``; nesting that comes near :data:`MAX_DEPTH` is
        left to Inline, which reports it.
        """
        limit = MAX_DEPTH - 2 - depth  # containers that may open inside this one
        if limit < 0:
            raise Fallback
        in_dict = text[0] == "{"
        container: Any = {} if in_dict else []
        stack: list[tuple[Any, bool]] = []  # the containers around this one
        scalars = self.scalars
        after_item = False  # a value without a comma after it: only a closer may follow
        tokens = iter(_TOKEN_RE.findall(text, 1))
        for key, scalar, symbol, comma in tokens:
            if scalar:
                if after_item:
                    raise Fallback
                value = scalars.get(scalar, _MISSING)
                if value is _MISSING:
                    value = self.scalar(scalar)
                after_item = not comma
            elif symbol == "{" or symbol == "[":
                if after_item or comma or len(stack) >= limit:  # `[,` is an error
                    raise Fallback
                value = {} if symbol == "{" else []
            elif symbol == "}" or symbol == "]":
                if key or (symbol == "}") != in_dict:
                    raise Fallback
                if not stack:  # the value is closed: nothing may follow, not even a comma
                    if comma or next(tokens, None) is not None:
                        raise Fallback
                    return container  # type: ignore[no-any-return]
                container, in_dict = stack.pop()
                after_item = not comma
                continue
            else:
                raise Fallback
            if in_dict:
                if not key or key in container:
                    raise Fallback
                container[key] = value
            elif key:  # `[a: 1]` is the word "a: 1" to Inline
                raise Fallback
            else:
                container.append(value)
            if symbol:
                stack.append((container, in_dict))
                container, in_dict = value, symbol == "{"
        raise Fallback  # not closed on this line

    def named_cells(self, text: str, depth: int) -> list[Any]:
        """The cells of a named-table row, as :meth:`.Inline.named_cells` reads them (without positions)."""
        scalars = self.scalars
        cells = []
        for cell, comma, other in _CELL_RE.findall(text):
            if other:
                raise Fallback
            value = scalars.get(cell, _MISSING)
            if value is _MISSING:
                # A container is new on every row (callers may change it): never cached.
                value = self.inline(cell, depth + 1) if cell[0] in "[{" else self.scalar(cell)
            cells.append(value)
            if not comma:
                return cells
        raise Fallback  # not reached: the last match ends the row
