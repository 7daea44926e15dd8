"""Look-alikes people paste into an SDN file, and the error that names each one's real cause.

TOML headers and ``key = "scalar"``, YAML block scalars (``|``, ``>-``), JSON documents, a literal ``\\n``
(from ``echo 'dl:\\n  device: cuda:1'``), and lines that would read differently in the Simple project's
parser (a ``key: value`` whose key a bare key cannot hold). Each function returns ``None`` for text that
is fine, else ``(message, offset of the culprit in the text, hint)`` for the parser to raise.
"""

from __future__ import annotations

import re

Problem = tuple[str, int, str]

_TOML_HEADER_RE = re.compile(r"\[\[?[^\[\],]+\]\]?\Z")
_BLOCK_SCALAR_RE = re.compile(r"[|>][+-]?[0-9]?\Z")
_KEY_HINT = 'a bare key holds letters, digits, _ . / and - (not first); quote any other key: "my key": value'
_ECHO_HINT = (
    "the file was probably written with echo '...\\n...', which does not turn \\n into a line break; "
    "write it with printf '...\\n...' or an editor, one statement per line (quote a value that needs a "
    "backslash)"
)


def _literal_newline(text: str) -> Problem | None:
    at = text.find("\\n")
    if at < 0:
        return None
    return "literal \\n (a backslash and an n, not a line break)", at, _ECHO_HINT


def bad_value(text: str) -> Problem | None:
    """A bare value (after ``key:`` or an array item) that is a look-alike of something else."""
    if text[0] in "|>" and _BLOCK_SCALAR_RE.match(text):
        return (
            f"YAML block scalar {text!r} is not SDN",
            0,
            'write the text as one quoted string, with \\n for each line break: key: "first\\nsecond"',
        )
    if "\\" in text:
        return _literal_newline(text)
    return None


def bad_item(text: str) -> Problem | None:
    """An unquoted array-block item that the Simple parser would read as ``key: value`` (or ``key = v``)."""
    if text[0] in '{["':
        return None
    colon = text.find(": ")
    if colon < 0 and text.endswith(":"):
        colon = len(text) - 1
    equals = text.find("=")
    cut = min((i for i in (colon, equals) if i >= 0), default=-1)
    if cut < 0:
        return None
    key = text[:cut].rstrip(" \t")
    return f"invalid key {key!r}", 0, _KEY_HINT


def foreign_statement(text: str, first: bool) -> Problem | None:
    """A line that is no SDN statement because it comes from another format; ``first``: the file's first."""
    if _TOML_HEADER_RE.match(text):
        name = text.strip("[]").strip()
        return (
            f"TOML section header {text!r} is not SDN",
            0,
            f"write the section as `{name}:` and indent its keys below it, e.g. `    device: cuda:1`",
        )
    if first and text[0] in "{[":
        return (
            "a JSON document is not SDN",
            0,
            "write `dl:` and below it indented `device: cuda:1` lines: no braces, no commas between"
            " settings, no quotes needed around keys",
        )
    if "\\" in text:
        found = _literal_newline(text)
        if found is not None:
            return found
    if text[0] == "-" and (len(text) == 1 or text[1] in " \t"):
        return (
            "`- item` line where a `key: value` line is expected",
            0,
            "a list is the value of a key: write `items:` and indent the `- ...` lines below it",
        )
    colon = text.find(": ")
    if colon > 0 or (colon < 0 and text.endswith(":") and len(text) > 1):
        key = text[:colon] if colon > 0 else text[:-1]
        key = key.rstrip(" \t")
        return f"invalid key {key!r}", 0, _KEY_HINT
    return None
