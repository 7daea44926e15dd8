"""The reader's quick reading against its exact reading.

On one line: the fast path (``sdn/fast.py``) may decline any text (``Fallback``); what it does read must
give the value :class:`~gpubench.config.sdn.inline.Inline` gives for the same text. On whole documents:
:func:`~gpubench.config.sdn.parse` (quick reading first, locations on first use) must give the value, the
error and the locations that the exact reading (``Parser(text, source)``) gives.
"""

from __future__ import annotations

import copy
import gc
import pickle
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gpubench.config.sdn import Location, SdnError, dumps, parse
from gpubench.config.sdn.errors import Location as ErrorsLocation
from gpubench.config.sdn.fast import Fallback, Fast
from gpubench.config.sdn.inline import Inline
from gpubench.config.sdn.lexer import _code, logical_lines
from gpubench.config.sdn.parser import Parser
from gpubench.config.sdn.values import MAX_DEPTH, Locations, Path

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


def _exact(text: str, reader: str, depth: int = 1) -> tuple[str, Any]:
    cursor = Inline(_Doc(), text, 3, 5)
    try:
        if reader == "value":
            value: Any = cursor.value(("k",), depth)
            cursor.expect_end("the value")
        else:
            value = [cell for cell, _ in cursor.named_cells(("t", 0), ("a", "b", "c"), depth)]
    except SdnError as exc:
        return "error", str(exc)
    return "ok", value


def _fast(text: str, reader: str, depth: int = 1) -> tuple[str, Any] | None:
    fast = Fast()
    try:
        if reader == "value":
            value: Any = fast.whole(text, depth)
        else:
            value = fast.named_cells(text, depth)
    except Fallback:
        return None
    return "ok", value


def _same(text: str, reader: str, depth: int = 1) -> None:
    fast = _fast(text, reader, depth)
    if fast is None:
        return  # declined: the parser reads the text with Inline
    exact = _exact(text, reader, depth)
    assert exact[0] == "ok", (text, exact[1])
    assert repr(fast[1]) == repr(exact[1])  # repr tells 1 from 1.0 and True


@settings(max_examples=400, deadline=None)
@given(inline_lines)
@example('{name: "resnet", layers: 50, tags: [a, "b c", {x: 1}], w: 1.5e-3,}')
@example("[cuda:0, cuda:1, {name: worker, rank: 3}, ]")
@example('{a: "x\\"y\\u00e9", b: [], c: {}, d: ( e}')
@example("{a: , b: 1}")
@example("[1 2, )]")
@example("{a: b: c, d: [x: 1]}")
@example("[a: 1]")
@example("{a:1}")
@example("[1],")
@example('"a", "b"')
@example("[[, 1]]")
@example("[1, a: ]")
@example('["a" b]')
@example('{a: "x" b: 1}')
@example("{a: {, b: 1}}")
def test_fast_inline_value_matches_the_exact_reader(text: str) -> None:
    _same(text, "value")


@settings(max_examples=400, deadline=None)
@given(lines)
@example('1, "a, b", [x, y]')
@example('  , "q" , {k: v},')
@example('"a" b, 1, 2')
@example('x, {a: "}"} , [1, [2]]')
@example(",")
@example("1, 2,")
def test_fast_table_row_matches_the_exact_reader(text: str) -> None:
    _same(text, "row")


@pytest.mark.parametrize("depth", range(MAX_DEPTH - 6, MAX_DEPTH + 2))
@pytest.mark.parametrize("text", ["[1]", "{a: [1]}", "[[[]]]", "[[[[1]]]]", "{a: {b: {c: [1, {}]}}}", '"x"'])
def test_fast_path_near_the_depth_limit_matches_the_exact_reader(text: str, depth: int) -> None:
    _same(text, "value", depth)
    _same(f"1, {text}", "row", depth)


def test_fast_path_reads_the_common_shapes() -> None:
    """The point of the fast path: the well-formed lines of a real file do not fall back."""
    assert _fast('{a: 1, b: "x", c: [1, 2.5, cuda:1], d: {e: true}}', "value") is not None
    assert _fast('[a b, "c", {d: null}]', "value") is not None
    assert _fast('"quoted, with \\"escapes\\""', "value") is not None
    assert _fast('1, "two, 2", {x: 3}', "row") is not None
    assert _fast("/api/upload, -, 300", "row") is not None


@pytest.mark.parametrize(
    "text", ["{a: [1,", "{a: 1} x", "[1, 2", '{"quoted key": 1}', "{a: 1, a: 2}", "{a: 1e400}", "{a:1}"]
)
def test_fast_path_declines_what_it_does_not_read(text: str) -> None:
    assert _fast(text, "value") is None


def test_fast_path_gives_each_row_its_own_containers() -> None:
    """Scalars are cached per document; an inline value in a cell must not be shared between rows."""
    fast = Fast()
    first, second = fast.named_cells("1, {a: 2}, [3]", 1), fast.named_cells("1, {a: 2}, [3]", 1)
    assert first == second == [1, {"a": 2}, [3]]
    assert first[1] is not second[1] and first[2] is not second[2]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(['"', '""', '"""', "#", "\\", '\\"', "a", " "]), max_size=12).map("".join))
def test_lines_with_quotes_are_cut_as_the_full_scan_cuts_them(body: str) -> None:
    """The lexer skips its scan of a line whose quotes are all closed; it must cut every line the same."""
    text = 'k: "' + body
    try:
        got: Any = logical_lines(text, "s")[0].content
    except SdnError as exc:
        got = str(exc)
    try:
        expected: Any = _code(text, "s", 1, 0).rstrip(" \t")
    except SdnError as exc:
        expected = str(exc)
    assert got == expected


# --- whole documents: parse() against the exact reading ------------------------------------------------

_STATEMENTS = [
    "a:", "  b: 1", "    c:", "  - x", "  - k: v", "    j: w", "t |a, b|", "  1, 2", "  1, 2, 3",
    '  "x, y", {p: [1]}', "  , -", "u: table{i32, f64}", "  (1, 2.0)", "v: table{u8} = [(1), (300)]",
    'q: "x"', "x = [1, {a: [2]}]", "x = {", "  y: [1,", "  2]}", "  # c", "", "\ty: 1", "dup: 1", "dup: 2",
    "d = {k: 1, k: 2}", "e =", ": 1", "k: 1e999", 'w: "\\u12"', "  [1, 2]", "k:v",
    'm: {n: cuda:1, o: [a b, "c"]}', "r |x| {y: 1}", "s = []",
]  # fmt: skip


def _quick_and_exact(text: str) -> None:
    try:
        quick = parse(text, "d.sdn")
    except SdnError as exc:
        quick_result: tuple[Any, ...] = ("error", str(exc))
    else:
        assert isinstance(quick.locations, Locations)  # worked out below, on first use
        quick_result = ("ok", repr(quick.value), dict(quick.locations), dict(quick.key_locations))
    try:
        parser = Parser(text, "d.sdn")
        value = parser.document()
    except SdnError as exc:
        exact_result: tuple[Any, ...] = ("error", str(exc))
    else:
        exact_result = ("ok", repr(value), parser.locations, parser.key_locations)
    assert quick_result == exact_result


@settings(deadline=None, max_examples=300)
@given(st.lists(st.sampled_from(_STATEMENTS), max_size=12))
def test_parse_gives_what_the_exact_reading_gives(statements: list[str]) -> None:
    _quick_and_exact("\n".join(statements))


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["k", "t", "x"]), inline_lines), max_size=5))
def test_parse_gives_what_the_exact_reading_gives_on_inline_values(entries: list[tuple[str, str]]) -> None:
    _quick_and_exact("".join(f"{key}{i}: {text}\n" for i, (key, text) in enumerate(entries)))


def test_parse_on_a_written_document_matches_the_exact_reading() -> None:
    value = {
        "run": {"model": {"name": "r", "tags": ["a", "b c", {"x": 1}]}, "devices": ["cuda:0", {"rank": 3}]},
        "hosts": [{"name": "n", "labels": {"zone": "eu, 1"}}, None, "-"],
    }
    _quick_and_exact(dumps(value))
    _quick_and_exact('rows |a, b|\n    1, {x: [1, 2]}\n    "q", [y]\n')


def test_locations_are_a_read_only_mapping_that_compares_pickles_and_copies_as_a_dict() -> None:
    doc = parse("a: {b: 1}\n")
    expected = {
        (): Location("<string>", 1, 1),
        ("a",): Location("<string>", 1, 4),
        ("a", "b"): Location("<string>", 1, 8),
    }
    assert doc.locations == expected and expected == doc.locations
    assert doc.locations != {} and doc.locations == Locations(lambda: dict(expected))
    assert repr(doc.locations) == repr(expected)
    assert ("a", "b") in doc.locations and ("c",) not in doc.locations
    assert doc.locations.get(("c",)) is None and len(doc.locations) == 3
    assert pickle.loads(pickle.dumps(doc.locations)) == expected
    assert copy.deepcopy(doc) == doc
    with pytest.raises(TypeError):
        doc.locations[("a",)] = Location("<string>", 9, 9)  # type: ignore[index]
    with pytest.raises(TypeError):
        hash(doc.locations)


def test_parse_restores_the_garbage_collector() -> None:
    assert gc.isenabled()
    parse("a: {b: 1}\n")
    assert gc.isenabled()
    with pytest.raises(SdnError):
        parse("a: {b: \n")
    assert gc.isenabled()
    assert parse("a: {b: 1}\n").locations[("a", "b")].column == 8  # the exact reading, on first use
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
