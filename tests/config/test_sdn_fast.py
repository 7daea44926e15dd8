"""The reader's fast path (``sdn/fast.py``) against the exact reader (``sdn/inline.py``) on one line.

The fast path may decline any text (``Fallback``); what it does read must give the value, the locations
and the key locations that :class:`~gpubench.config.sdn.inline.Inline` gives for the same text.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gpubench.config.sdn import Location, SdnError, parse
from gpubench.config.sdn.errors import Location as ErrorsLocation
from gpubench.config.sdn.fast import Fallback, Fast
from gpubench.config.sdn.inline import Inline
from gpubench.config.sdn.values import Path

_ATOMS = [
    "{", "}", "[", "]", "(", ")", ",", ", ", ":", ": ", " ", "\t", '"', '\\"', "\\\\", "\\n", "\\u00e9", "\\u12",
    "\\q", "a", "key", "b.c", "x-y", "/p", "1", "-2", "+3", "1.5", "1e-3", "1e400", "1_000", ".5", "true", "null",
    "cuda:1", "é", '"q"', '""', "9" * 4001,
]  # fmt: skip
lines = st.lists(st.sampled_from(_ATOMS), min_size=1, max_size=30).map("".join)
inline_lines = st.builds(str.__add__, st.sampled_from(["{", "[", '"', "{a: ", "[1, "]), lines)


class _Doc:
    """What Inline records into (the parser's part of the Marks protocol)."""

    def __init__(self) -> None:
        self.source = "t.sdn"
        self.locations: dict[Path, Location] = {}
        self.key_locations: dict[Path, Location] = {}

    def error(self, message: str, line: int, column: int, hint: str | None = None) -> SdnError:
        return SdnError(message, self.source, line, column, hint)


def _exact(text: str, reader: str) -> tuple[str, Any, dict[Path, Location], dict[Path, Location]]:
    doc = _Doc()
    cursor = Inline(doc, text, 3, 5)
    try:
        if reader == "value":
            value: Any = cursor.value(("k",), 1)
            cursor.expect_end("the value")
        else:
            value = cursor.named_cells(("t", 0), ("a", "b", "c"), 3)
    except SdnError as exc:
        return "error", str(exc), doc.locations, doc.key_locations
    return "ok", value, doc.locations, doc.key_locations


def _fast(text: str, reader: str) -> tuple[str, Any, dict[Path, Location], dict[Path, Location]] | None:
    locations: dict[Path, Location] = {}
    key_locations: dict[Path, Location] = {}
    fast = Fast("t.sdn", locations, key_locations)
    try:
        if reader == "value":
            value: Any = fast.whole(text, 3, 5, ("k",), 1)
        else:
            value = fast.named_cells(text, 3, 5, ("t", 0), ("a", "b", "c"), 3)
    except Fallback:
        return None
    return "ok", value, locations, key_locations


def _same(text: str, reader: str) -> None:
    fast = _fast(text, reader)
    if fast is None:
        return  # declined: the parser reads the text with Inline
    exact = _exact(text, reader)
    assert exact[0] == "ok", (text, exact[1])
    assert repr(fast[1]) == repr(exact[1])  # repr tells 1 from 1.0 and True
    assert fast[2:] == exact[2:]


@settings(max_examples=400, deadline=None)
@given(inline_lines)
@example('{name: "resnet", layers: 50, tags: [a, "b c", {x: 1}], w: 1.5e-3,}')
@example("[cuda:0, cuda:1, {name: worker, rank: 3}, ]")
@example('{a: "x\\"y\\u00e9", b: [], c: {}, d: ( e}')
@example("{a: , b: 1}")
@example("[1 2, )]")
def test_fast_inline_value_matches_the_exact_reader(text: str) -> None:
    _same(text, "value")


@settings(max_examples=400, deadline=None)
@given(lines)
@example('1, "a, b", [x, y]')
@example('  , "q" , {k: v},')
@example('"a" b, 1, 2')
def test_fast_table_row_matches_the_exact_reader(text: str) -> None:
    _same(text, "row")


def test_fast_path_reads_the_common_shapes() -> None:
    """The point of the fast path: the well-formed lines of a real file do not fall back."""
    assert _fast('{a: 1, b: "x", c: [1, 2.5, cuda:1], d: {e: true}}', "value") is not None
    assert _fast('[a b, "c", {d: null}]', "value") is not None
    assert _fast('1, "two, 2", {x: 3}', "row") is not None


@pytest.mark.parametrize(
    "text", ["{a: [1,", "{a: 1} x", "[1, 2", '{"quoted key": 1}', "{a: 1, a: 2}", "{a: 1e400}"]
)
def test_fast_path_declines_what_it_does_not_read(text: str) -> None:
    assert _fast(text, "value") is None


def test_parse_restores_the_garbage_collector() -> None:
    assert gc.isenabled()
    parse("a: {b: 1}\n")
    assert gc.isenabled()
    with pytest.raises(SdnError):
        parse("a: {b: \n")
    assert gc.isenabled()
    gc.disable()
    try:
        parse("a: 1\n")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_location_is_an_immutable_value() -> None:
    where = Location("f.sdn", 2, 3)
    assert ErrorsLocation is Location
    assert str(where) == "f.sdn:2:3"
    assert repr(where) == "Location(source='f.sdn', line=2, column=3)"
    assert (where.source, where.line, where.column) == ("f.sdn", 2, 3)
    assert where == Location("f.sdn", 2, 3) and hash(where) == hash(Location("f.sdn", 2, 3))
    with pytest.raises(AttributeError):
        where.line = 4  # type: ignore[misc]
