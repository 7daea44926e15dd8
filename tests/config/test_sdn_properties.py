"""Properties of the SDN reader and writer: round trips, and no exception but SdnError for any text."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gpubench.config.sdn import Document, SdnError, Table, dumps, loads, parse

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
keys = st.builds(
    str.__add__, st.sampled_from(_LETTERS), st.text(alphabet=_LETTERS + "0123456789", max_size=7)
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    # Strings that look like other things are where a writer goes wrong.
    | st.sampled_from(
        ["true", "null", "nil", "42", "-1.5e3", "1.0.0", "cuda:1", "a: b", "x:", "- y", "#", "", " "]
    )
)
# Values that can sit inside an inline value or a table cell: no tables.
inline_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=8,
)

_TYPED_CELLS: dict[str, st.SearchStrategy[Any]] = {
    "i8": st.integers(-(2**7), 2**7 - 1),
    "i16": st.integers(-(2**15), 2**15 - 1),
    "i32": st.integers(-(2**31), 2**31 - 1),
    "i64": st.integers(-(2**63), 2**63 - 1),
    "u8": st.integers(0, 2**8 - 1),
    "u16": st.integers(0, 2**16 - 1),
    "u32": st.integers(0, 2**32 - 1),
    "u64": st.integers(0, 2**64 - 1),
    "f32": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "f64": st.floats(allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
    "str": st.text(max_size=12),
    "string": st.text(max_size=12),
    "text": st.text(max_size=12),
}


@st.composite
def named_tables(draw: st.DrawFn) -> Table:
    fields = draw(st.lists(keys, min_size=1, max_size=4, unique=True))
    rows = draw(st.lists(st.fixed_dictionaries({f: inline_values for f in fields}), max_size=3))
    return Table(rows, fields=fields)


@st.composite
def typed_tables(draw: st.DrawFn) -> Table:
    types = draw(st.lists(st.sampled_from(sorted(_TYPED_CELLS)), min_size=1, max_size=4))
    rows = draw(st.lists(st.tuples(*(_TYPED_CELLS[t] for t in types)), max_size=3))
    return Table(rows, types=types)


tables = named_tables() | typed_tables()
# Tables can only be the value of a key in a block, so they appear in block dicts, not inline ones.
documents = st.recursive(
    st.dictionaries(keys, inline_values | tables, max_size=3),
    lambda children: st.dictionaries(keys, children | inline_values | tables, max_size=3),
    max_leaves=6,
)


def _table_headers_survive(original: Any, again: Any) -> None:
    if isinstance(original, Table):
        assert isinstance(again, Table)
        assert (again.fields, again.types) == (original.fields, original.types)
    elif isinstance(original, dict):
        for key, item in original.items():
            _table_headers_survive(item, again[key])


@settings(deadline=None, max_examples=300)
@given(documents)
def test_round_trip(value: dict[str, Any]) -> None:
    text = dumps(value)
    again = loads(text)
    assert again == value
    _table_headers_survive(value, again)
    # Writing what was read gives the same text: the writer is canonical.
    assert dumps(again) == text


SDN_ALPHABET = ':={}[]()|,#"\\ \t\n-._' + "abktxy_019" + "\r"


def _parse_or_sdn_error(text: str) -> None:
    try:
        doc = parse(text)
    except SdnError as err:
        assert err.line >= 1
        assert err.column >= 1
        assert err.message
        assert str(err).startswith(f"<string>:{err.line}:{err.column}: ")
    else:
        assert isinstance(doc, Document)
        assert isinstance(doc.value, dict)
        for location in doc.locations.values():
            assert location.line >= 1
            assert location.column >= 1


@settings(deadline=None, max_examples=300)
@given(st.text(alphabet=SDN_ALPHABET, max_size=120))
def test_punctuation_heavy_text_gives_document_or_sdn_error(text: str) -> None:
    _parse_or_sdn_error(text)


@settings(deadline=None, max_examples=300)
@given(st.text(max_size=120))
def test_any_unicode_text_gives_document_or_sdn_error(text: str) -> None:
    _parse_or_sdn_error(text)


@settings(deadline=None, max_examples=300)
@given(
    st.lists(
        st.sampled_from(
            [
                "a:",
                "  b: 1",
                "    c:",
                "  - x",
                "t |a, b|",
                "  1, 2",
                "  1, 2, 3",
                "u: table{i32, f64}",
                "  (1, 2.0)",
                "v: table{u8} = [(1), (300)]",
                'q: "x"',
                "x = [1, {a: [2]}]",
                "x = {",
                "  # c",
                "",
                "\ty: 1",
                "dup: 1",
                "dup: 2",
                "    deep:",
                "      z",
                "e =",
                ": 1",
                "k: 1e999",
                'w: "\\u12"',
                "  [1, 2]",
                "k:v",
            ]
        ),
        max_size=12,
    )
)
def test_statement_soup_gives_document_or_sdn_error(lines: list[str]) -> None:
    _parse_or_sdn_error("\n".join(lines))


@settings(deadline=None, max_examples=100)
@given(documents, st.data())
def test_damaged_documents_give_document_or_sdn_error(value: dict[str, Any], data: st.DataObject) -> None:
    text = dumps(value)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 5)))
    patch = data.draw(st.text(alphabet=SDN_ALPHABET, max_size=4))
    _parse_or_sdn_error(text[:start] + patch + text[end:])
