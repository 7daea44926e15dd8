"""SDN 1.0 reader and writer: every construct of the format summary, every error, locations and files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from gpubench.config import sdn
from gpubench.config.sdn import Document, Location, SdnError, Table, dumps, load, loads, parse

DATA = Path(__file__).parents[1] / "data" / "sdn"


def error_of(text: str) -> SdnError:
    with pytest.raises(SdnError) as info:
        parse(text)
    return info.value


def where(err: SdnError) -> tuple[int, int]:
    return err.line, err.column


# --- the statement table --------------------------------------------------------------------------------


def test_scalar_statement() -> None:
    assert loads("name: Alice\n") == {"name": "Alice"}


def test_key_and_dict_block() -> None:
    assert loads("server:\n    host: localhost\n    port: 8080\n") == {
        "server": {"host": "localhost", "port": 8080}
    }


def test_key_and_array_block() -> None:
    assert loads("tags:\n  alpha\n  2\n  true\n") == {"tags": ["alpha", 2, True]}


def test_inline_dict_after_equals() -> None:
    assert loads("key = {a: 1, b: [x, y]}") == {"key": {"a": 1, "b": ["x", "y"]}}


def test_inline_array_after_equals() -> None:
    assert loads("key = [1, 2, 3]") == {"key": [1, 2, 3]}


def test_typed_table_short_form() -> None:
    value = loads("key: table{i32, f64} = [(1, 2.0), (3, 4.0)]")["key"]
    assert value == [(1, 2.0), (3, 4.0)]
    assert isinstance(value, Table)
    assert value.types == ("i32", "f64")
    assert value.fields is None
    assert isinstance(value[0][1], float)


def test_typed_table_long_form() -> None:
    value = loads("key: table{i32, f64}\n    1, 2.0\n    3, 4\n")["key"]
    assert value == Table([(1, 2.0), (3, 4.0)], types=("i32", "f64"))
    assert isinstance(value[1][1], float)


def test_typed_table_long_form_rows_may_have_parentheses() -> None:
    assert loads('key: table{i8, str}\n  (1, a)\n  (2, "b, c")\n')["key"] == [(1, "a"), (2, "b, c")]


def test_named_table_one_row() -> None:
    value = loads("key |a, b| 1, 2")["key"]
    assert value == [{"a": 1, "b": 2}]
    assert isinstance(value, Table)
    assert value.fields == ("a", "b")
    assert value.types is None


def test_named_table_long_form() -> None:
    value = loads("key |a, b|\n    1, 2\n    3, x\n")["key"]
    assert value == Table([{"a": 1, "b": 2}, {"a": 3, "b": "x"}], fields=("a", "b"))


def test_tables_without_rows_are_empty() -> None:
    doc = loads("named |a, b|\ntyped: table{i32}\nafter: 1\n")
    assert doc == {"named": Table(fields=("a", "b")), "typed": Table(types=("i32",)), "after": 1}


def test_block_kind_is_decided_by_first_line() -> None:
    assert loads("a:\n  x = [1]\n  y |p| 1\n") == {"a": {"x": [1], "y": [{"p": 1}]}}
    assert loads("a:\n  {name: a, role: b}\n  {name: c, role: d}\n") == {
        "a": [{"name": "a", "role": "b"}, {"name": "c", "role": "d"}]
    }


def test_nested_blocks() -> None:
    text = "a:\n  b:\n    c:\n      d: 1\n    e: 2\n  f: 3\ng: 4\n"
    assert loads(text) == {"a": {"b": {"c": {"d": 1}, "e": 2}, "f": 3}, "g": 4}


def test_array_of_arrays_and_dicts_block() -> None:
    assert loads("m:\n  [1, 2]\n  []\n  {}\n") == {"m": [[1, 2], [], {}]}


def test_key_with_nothing_after_it_is_none() -> None:
    assert loads("a:\nb: 1\n") == {"a": None, "b": 1}
    assert loads("a:   # nothing here\n") == {"a": None}


def test_inline_nesting_arbitrary() -> None:
    assert loads("x = {a: {b: {c: [[1, [2, {d: e}]]]}}}") == {
        "x": {"a": {"b": {"c": [[1, [2, {"d": "e"}]]]}}}
    }


def test_inline_whitespace_and_trailing_commas() -> None:
    assert loads("x = [ 1 ,2,  3, ]\ny = {a:1,b : 2,}\nz = [ ]\nw = { }") == {
        "x": [1, 2, 3],
        "y": {"a": 1, "b": 2},
        "z": [],
        "w": {},
    }


def test_inline_bare_values_may_hold_blanks_and_colons() -> None:
    assert loads("x = [Alice Chen, cuda:1, http://h:80/p]") == {
        "x": ["Alice Chen", "cuda:1", "http://h:80/p"]
    }


def test_keys_allow_blanks_around_separators() -> None:
    assert loads("a : 1\nb= [2]\nc|p|3") == {"a": 1, "b": [2], "c": [{"p": 3}]}


# --- scalars ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Alice", "Alice"),
        ("localhost", "localhost"),
        ("/api/users", "/api/users"),
        ("cuda:1", "cuda:1"),
        ("_private", "_private"),
        (".hidden", ".hidden"),
        ('"Hello, World!"', "Hello, World!"),
        ("42", 42),
        ("-17", -17),
        ("+5", 5),
        ("1_000_000", 1_000_000),
        ("007", 7),
        ("3.14", 3.14),
        ("-0.5", -0.5),
        ("1.5e-10", 1.5e-10),
        ("2E3", 2000.0),
        (".5", 0.5),
        ("1_000.000_5", 1000.0005),
        ("true", True),
        ("false", False),
        ("null", None),
        ("nil", None),
        ("2.1.0", "2.1.0"),
        ("0.0.0.0", "0.0.0.0"),
        ("db1.example.com", "db1.example.com"),
        ("1__0", "1__0"),
        ("True", "True"),
        ("NULL", "NULL"),
        ("1e", "1e"),
        ("-", "-"),
        ("12abc", "12abc"),
    ],
)
def test_scalars(text: str, expected: Any) -> None:
    value = loads(f"v: {text}")["v"]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r'"a\"b"', 'a"b'),
        (r'"a\\b"', "a\\b"),
        (r'"a\nb"', "a\nb"),
        (r'"a\tb"', "a\tb"),
        (r'"a\rb"', "a\rb"),
        (r'"a\/b"', "a/b"),
        (r'"\u00e9\u0000"', "é\x00"),
        ('"# not a comment"', "# not a comment"),
        ('"  padded  "', "  padded  "),
        ('""', ""),
        ('"42"', "42"),
        ('"true"', "true"),
        ('"ünïcödé ✓"', "ünïcödé ✓"),
    ],
)
def test_quoted_strings(text: str, expected: str) -> None:
    assert loads(f"v: {text}")["v"] == expected


# --- what real files do -------------------------------------------------------------------------------


def test_inline_values_after_a_colon() -> None:
    assert loads("exclude_tags: []\npoint: {x: 1, y: 2}\nlist: [a, b]") == {
        "exclude_tags": [],
        "point": {"x": 1, "y": 2},
        "list": ["a", "b"],
    }


def test_unquoted_value_with_spaces() -> None:
    assert loads("html_title: Simple Test Coverage") == {"html_title": "Simple Test Coverage"}
    assert loads("html_title:   Simple Test Coverage   # the title\n") == {
        "html_title": "Simple Test Coverage"
    }
    assert loads("note: ratio: 3 to 4") == {"note": "ratio: 3 to 4"}


def test_values_that_begin_with_digits_are_strings_unless_numbers() -> None:
    assert loads(
        "version: 1.0.0-beta.8\nstage2_hash: 718fe35b4d36a0c1\njson_output: test-results/results.json\n"
        "bind: 0.0.0.0\nexact: 718\n"
    ) == {
        "version": "1.0.0-beta.8",
        "stage2_hash": "718fe35b4d36a0c1",
        "json_output": "test-results/results.json",
        "bind": "0.0.0.0",
        "exact": 718,
    }


def test_comment_lines_indented_inside_blocks_and_blank_lines() -> None:
    text = (
        "a:\n    x: 1\n\n        # deeper comment\n  # shallower comment\n    y: 2\n"
        "\n\nb:\n\n    - 1\n    # c\n    - 2\n"
    )
    assert loads(text) == {"a": {"x": 1, "y": 2}, "b": [1, 2]}


def test_named_table_rows_with_dash_cells_and_quoted_commas() -> None:
    text = (
        "employees |id, name, title, salary|\n"
        '    1001, Alice Chen, "Senior Engineer, Platform", 150000\n'
        "    1002, Bob Smith, -, 180000\n"
    )
    assert loads(text)["employees"] == [
        {"id": 1001, "name": "Alice Chen", "title": "Senior Engineer, Platform", "salary": 150000},
        {"id": 1002, "name": "Bob Smith", "title": "-", "salary": 180000},
    ]


def test_named_table_bare_cells_hold_punctuation_and_empty_cells_are_none() -> None:
    text = (
        "strings |id, value|\n"
        "    19, BUG-RT-002: Dict.get() return type > workaround: in operator\n"
        "tests |a, b, c, d|\n"
        "    0, , true, \n"
    )
    doc = loads(text)
    assert doc["strings"][0]["value"] == "BUG-RT-002: Dict.get() return type > workaround: in operator"
    assert doc["tests"] == [{"a": 0, "b": None, "c": True, "d": None}]


def test_named_table_cells_may_be_inline_values() -> None:
    assert loads("t |a, b|\n  [1, 2], {x: y}\n")["t"] == [{"a": [1, 2], "b": {"x": "y"}}]


def test_trailing_comment_without_blank_and_in_all_forms() -> None:
    text = 'a: 1#c\nb = [1, "#", 2] # c\nc |x| 1 # c\nd: table{i32} = [(1)] # c\ne: "x" # c'
    assert loads(text) == {
        "a": 1,
        "b": [1, "#", 2],
        "c": [{"x": 1}],
        "d": [(1,)],
        "e": "x",
    }


def test_yaml_style_dash_items_in_array_blocks() -> None:
    assert loads('languages:\n  - "Simple"\n  - Rust\n  - [1]\n') == {"languages": ["Simple", "Rust", [1]]}


def test_array_items_that_contain_colons_are_values() -> None:
    assert loads("devices:\n  cuda:0\n  cuda:1\n") == {"devices": ["cuda:0", "cuda:1"]}


def test_crlf_and_cr_line_endings_and_bom() -> None:
    assert loads("\ufeffa: 1\r\nb:\r\n  c: 2\rd: 3") == {"a": 1, "b": {"c": 2}, "d": 3}


def test_indented_top_level_is_accepted() -> None:
    assert loads("  a: 1\n  b:\n    c: 2\n") == {"a": 1, "b": {"c": 2}}


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "   \n  # c\n\t\n", "\ufeff"])
def test_empty_documents_give_an_empty_dict(text: str) -> None:
    doc = parse(text)
    assert doc.value == {}
    assert doc.locations == {(): Location("<string>", 1, 1)}


def test_tab_inside_a_line_is_a_blank() -> None:
    assert loads("a:\tb\nc =\t[1,\t2]") == {"a": "b", "c": [1, 2]}


def test_tab_indented_comment_lines_are_ignored() -> None:
    assert loads("a:\n  b: 1\n\t# comment\n  c: 2\n") == {"a": {"b": 1, "c": 2}}


# --- typed table cell types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cell", "expected"),
    [
        ("i8", "-128", -128),
        ("i8", "127", 127),
        ("i16", "-32768", -32768),
        ("i32", "2_147_483_647", 2_147_483_647),
        ("i64", "-9223372036854775808", -(2**63)),
        ("u8", "255", 255),
        ("u16", "65535", 65535),
        ("u32", "4294967295", 2**32 - 1),
        ("u64", "18446744073709551615", 2**64 - 1),
        ("f32", "1.5", 1.5),
        ("f32", "3", 3.0),
        ("f64", "-1e300", -1e300),
        ("bool", "true", True),
        ("bool", "false", False),
        ("str", "hello world", "hello world"),
        ("string", "123", "123"),
        ("text", '"a, \\"b\\""', 'a, "b"'),
        ("str", "", ""),
    ],
)
def test_typed_cells_convert(kind: str, cell: str, expected: Any) -> None:
    value = loads(f"t: table{{{kind}, i8}}\n  {cell}, 0\n")["t"][0][0]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("kind", "cell", "message"),
    [
        ("i32", "abc", "cell 'abc' is not an integer (i32 column)"),
        ("i32", "1.5", "cell '1.5' is not an integer (i32 column)"),
        ("i32", '"5"', 'cell "5" is not an integer (i32 column)'),
        ("u8", "300", "cell 300 is out of range for u8 (0..255)"),
        ("u8", "-1", "cell -1 is out of range for u8 (0..255)"),
        ("i8", "128", "cell 128 is out of range for i8 (-128..127)"),
        ("f32", "1e39", "cell 1e39 is out of range for f32"),
        ("f64", "1e999", "cell 1e999 is out of range for f64"),
        ("f64", "fast", "cell 'fast' is not a number (f64 column)"),
        ("bool", "yes", "cell 'yes' is not a bool"),
        ("bool", "1", "cell '1' is not a bool"),
        ("i64", "", "empty cell in a i64 column"),
    ],
)
def test_typed_cells_that_do_not_fit(kind: str, cell: str, message: str) -> None:
    err = error_of(f"t: table{{i8, {kind}}}\n    1, {cell}\n")
    assert err.message == message
    # An empty cell sits right after its comma (trailing blanks are not part of the line).
    assert where(err) == ((2, 8) if cell else (2, 7))
    assert err.hint


def test_typed_cell_error_in_short_form_points_at_the_cell() -> None:
    err = error_of("t: table{i32, f64} = [(1, 2.0), (abc, 4.0)]")
    assert err.message == "cell 'abc' is not an integer (i32 column)"
    assert where(err) == (1, 34)


def test_unknown_type_name() -> None:
    err = error_of("t: table{i32, i33}\n")
    assert err.message == "unknown column type 'i33'"
    assert where(err) == (1, 15)
    assert "f64" in (err.hint or "")


def test_empty_type_list() -> None:
    err = error_of("t: table{}")
    assert err.message == "empty column type"
    assert where(err) == (1, 10)


# --- errors --------------------------------------------------------------------------------------------


def test_error_str_format() -> None:
    err = SdnError("bad thing", "conf.sdn", 3, 7, "do this")
    assert str(err) == "conf.sdn:3:7: bad thing\n  hint: do this"
    assert str(SdnError("bad", "x", 1, 2)) == "x:1:2: bad"
    assert isinstance(err, ValueError)


def test_error_pickles() -> None:
    import pickle

    err = SdnError("bad thing", "conf.sdn", 3, 7, "do this")
    again = pickle.loads(pickle.dumps(err))
    assert (again.message, again.source, again.line, again.column, again.hint) == (
        "bad thing",
        "conf.sdn",
        3,
        7,
        "do this",
    )


def test_indentation_matching_no_open_block() -> None:
    err = error_of("a:\n    b:\n        c: 1\n      d: 2\n")
    assert err.message == "indentation (6 spaces) matches no open block"
    assert where(err) == (4, 7)
    assert "column 1, 5, 9" in (err.hint or "") or "column 1, 5" in (err.hint or "")


def test_dedent_below_an_indented_top_level() -> None:
    err = error_of("  a: 1\nb: 2\n")
    assert err.message == "indentation (0 spaces) matches no open block"
    assert where(err) == (2, 1)


def test_unexpected_indentation_after_a_scalar() -> None:
    err = error_of("a: 1\n  b: 2\n")
    assert err.message == "unexpected indentation"
    assert where(err) == (2, 3)
    assert "indented block" in (err.hint or "")


def test_unexpected_indentation_inside_array_and_table() -> None:
    assert where(error_of("a:\n  x\n    y\n")) == (3, 5)
    assert where(error_of("t |a|\n  1\n    2\n")) == (3, 5)


def test_tab_indentation_is_rejected() -> None:
    err = error_of("a:\n\tb: 1\n")
    assert err.message == "tab character in indentation"
    assert where(err) == (2, 1)
    assert "spaces" in (err.hint or "")


def test_tabs_mixed_with_spaces() -> None:
    err = error_of("a:\n    b: 1\n  \t  c: 2\n")
    assert err.message == "tab character in indentation"
    assert where(err) == (3, 3)


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("just some words\n", "line is not a statement", (1, 1)),
        ("a: 1\n[1, 2]\n", "line is not a statement", (2, 1)),
        ("my-key: 1", "invalid key 'my-key'", (1, 1)),
        ('"quoted": 1', "invalid key '\"quoted\"'", (1, 1)),
        ("a:1", "missing blank after ':'", (1, 3)),
    ],
)
def test_lines_that_are_no_statement(text: str, message: str, position: tuple[int, int]) -> None:
    err = error_of(text)
    assert err.message == message
    assert where(err) == position
    assert err.hint


def test_missing_blank_hint_shows_the_fix() -> None:
    assert error_of("device:cuda:1").hint == "write `device: cuda:1`"


def test_entry_inside_an_array_block() -> None:
    err = error_of("a:\n  x\n  b: 1\n")
    assert err.message == "`key: value` entry inside an array block"
    assert where(err) == (3, 3)


def test_yaml_dict_item_in_array_block_is_an_error() -> None:
    err = error_of("a:\n  - x\n  - name: b\n")
    assert err.message == "`key: value` entry inside an array block"
    assert where(err) == (3, 5)


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ('a: "abc', (1, 4)),
        ('a = [1, "x]', (1, 9)),
        ('a: "abc\\"', (1, 4)),
        ('a:\n  x: 1\n  y: "open # not a comment', (3, 6)),
    ],
)
def test_unterminated_quoted_string(text: str, position: tuple[int, int]) -> None:
    err = error_of(text)
    assert err.message == "unterminated quoted string"
    assert where(err) == position
    assert "close it" in (err.hint or "")


@pytest.mark.parametrize(
    ("text", "opener", "position"),
    [
        ("a = {x: 1", "{", (1, 5)),
        ("a = {x: 1,", "{", (1, 5)),
        ("a = [1, 2", "[", (1, 5)),
        ("a = [[1, 2]", "[", (1, 5)),
        ("a = [1, [2", "[", (1, 9)),
        ("a: {x: [1, 2]", "{", (1, 4)),
        ("a: table{i32} = [(1", "(", (1, 18)),
        ("a: table{i32} = [(1)", "[", (1, 17)),
        ("a: table{i32}\n  (1\n", "(", (2, 3)),
        ("a: table{i32, f64", "{", (1, 9)),
    ],
)
def test_unterminated_brackets(text: str, opener: str, position: tuple[int, int]) -> None:
    err = error_of(text)
    assert err.message.startswith(f"unterminated {opener!r}")
    assert where(err) == position
    assert err.hint


def test_unterminated_named_table_header() -> None:
    err = error_of("t |a, b\n")
    assert err.message == "unterminated '|' field list"
    assert where(err) == (1, 3)


def test_mismatched_closer() -> None:
    err = error_of("a = [1, 2}")
    assert err.message == "'}' does not close the '[' at column 5"
    assert where(err) == (1, 10)


def test_duplicate_key_names_both_lines() -> None:
    err = error_of("a: 1\nb: 2\na: 3\n")
    assert err.message == "duplicate key 'a' (first defined on line 1, again on line 3)"
    assert where(err) == (3, 1)
    assert err.hint


def test_duplicate_key_in_nested_block_and_inline_dict() -> None:
    assert where(error_of("s:\n  x: 1\n  x: 2\n")) == (3, 3)
    err = error_of("d = {k: 1, k: 2}")
    assert err.message == "duplicate key 'k' (first at line 1, column 6)"
    assert where(err) == (1, 12)


def test_same_key_in_different_dicts_is_fine() -> None:
    assert loads("a:\n  x: 1\nb:\n  x: 2\n") == {"a": {"x": 1}, "b": {"x": 2}}


def test_table_row_of_wrong_width() -> None:
    err = error_of("t |a, b|\n    1, 2\n    1, 2, 3\n")
    assert err.message == "table row has 3 cells, expected 2 (a, b)"
    assert where(err) == (3, 5)
    err = error_of("t |a, b| 1")
    assert err.message == "table row has 1 cells, expected 2 (a, b)"
    assert where(err) == (1, 10)


def test_typed_table_row_of_wrong_width() -> None:
    err = error_of("t: table{i32, f64} = [(1, 2.0), (3)]")
    assert err.message == "table row has 1 cells, expected 2 (i32, f64)"
    assert where(err) == (1, 33)
    assert where(error_of("t: table{i32, f64}\n  1, 2, 3\n")) == (2, 3)


@pytest.mark.parametrize(
    ("text", "column"), [("a = 5", 5), ('a = "x"', 5), ("a = table{i32}", 5), ("a =", 4)]
)
def test_value_after_equals_must_be_inline(text: str, column: int) -> None:
    err = error_of(text)
    assert err.message == "the value after '=' must be an inline dict {...} or array [...]"
    assert where(err) == (1, column)
    assert err.hint


def test_value_after_equals_hint_suggests_colon() -> None:
    assert error_of("port = 80").hint == "for a single value write `port: 80`"


@pytest.mark.parametrize(
    ("text", "char", "column"),
    [
        ("a = [1, 2] x", "x", 12),
        ("a: {b: 1} ]", "]", 11),
        ('a: "x" y', "y", 8),
        ("a: table{i32} = [(1)] z", "z", 23),
        ("a: table{i32}\n  (1) z\n", "z", 7),
    ],
)
def test_stray_character_after_closed_value(text: str, char: str, column: int) -> None:
    err = error_of(text)
    assert err.message.startswith(f"unexpected {char!r} after")
    assert err.column == column
    assert "comment" in (err.hint or "")


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        (": 1", "empty key before ':'", (1, 1)),
        ("= [1]", "empty key before '='", (1, 1)),
        ("a:\n  : 1\n", "empty key before ':'", (2, 3)),
        ("a:\n  x\n  = [1]\n", "empty key before '='", (2 + 1, 3)),
        ("a:\n  - |b| 1\n", "empty key before '|'", (2, 5)),
        ("a = {: 1}", "empty key before ':'", (1, 6)),
        ("t |a, , b|", "empty field name", (1, 7)),
        ("t |a, 1b|", "invalid field name '1b'", (1, 7)),
        ("t |a, a|", "duplicate field name 'a'", (1, 7)),
    ],
)
def test_empty_or_bad_keys(text: str, message: str, position: tuple[int, int]) -> None:
    err = error_of(text)
    assert err.message == message
    assert where(err) == position
    assert err.hint


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("a = [1, , 2]", "expected a value before ','", 9),
        ("a = [,]", "expected a value before ','", 6),
        ("a = {b: }", "expected a value before '}'", 9),
        ("a = {b 1}", "expected ':' after key 'b', found '1'", 8),
        ("a = {1: b}", "expected a key, found '1'", 6),
        ('a = [x"y"]', "expected ',' or ']', found '\"'", 7),
        ('a: "\\q"', "unknown escape \\q in quoted string", 5),
        ("a: table{i32} = 5", "expected '[' with the table rows after '='", 17),
        ("a: table{i32} = [1]", "expected '(' to start a table row, found '1'", 18),
        ("a: table{i32} x", "unexpected 'x' after the table type list", 15),
    ],
)
def test_other_inline_errors(text: str, message: str, column: int) -> None:
    err = error_of(text)
    assert err.message == message
    assert where(err) == (1, column)
    assert err.hint


def test_number_too_large() -> None:
    err = error_of("a:\n  b: 1e999\n")
    assert err.message == "number 1e999 is too large for a 64-bit float"
    assert where(err) == (2, 6)
    err = error_of("a: " + "9" * 5000)
    assert err.message.startswith("integer has 5000 digits")
    assert error_of("a = [" + "1" * 5000 + "]").column == 6
    assert error_of("t |a|\n  " + "1" * 5000).column == 3


def test_nesting_depth_is_bounded() -> None:
    deep_inline = "a = " + "[" * 150 + "]" * 150
    err = error_of(deep_inline)
    assert err.message == f"nesting is deeper than {sdn.MAX_DEPTH} levels"
    deep_blocks = "".join(" " * i + f"k{i}:\n" for i in range(150)) + " " * 150 + "x: 1\n"
    err = error_of(deep_blocks)
    assert err.message == f"nesting is deeper than {sdn.MAX_DEPTH} levels"
    assert err.line == sdn.MAX_DEPTH + 2
    # Just under the limit still reads.
    ok = "a = " + "[" * 90 + "]" * 90
    assert loads(ok)["a"] is not None


def test_errors_carry_the_source() -> None:
    with pytest.raises(SdnError) as info:
        parse("a = 5", source="conf.sdn")
    assert str(info.value).startswith("conf.sdn:1:5: ")


# --- locations -------------------------------------------------------------------------------------------


def test_locations_for_nested_keys() -> None:
    text = (
        "dl:\n"  # 1
        '  device: "cuda:1"   # c\n'  # 2
        "  inner:\n"  # 3
        "    deep: 5\n"  # 4
        "features = [auth, {x: 1}]\n"  # 5
        "list:\n"  # 6
        "  a\n"  # 7
        "  - b\n"  # 8
        "t |endpoint, n|\n"  # 9
        "    /api, 5\n"  # 10
        "typed: table{i32} = [(7)]\n"  # 11
    )
    doc = parse(text, "f.sdn")
    loc = doc.locations
    assert loc[()] == Location("f.sdn", 1, 1)
    assert loc[("dl",)] == Location("f.sdn", 1, 1)
    assert loc[("dl", "device")] == Location("f.sdn", 2, 11)
    assert loc[("dl", "inner")] == Location("f.sdn", 3, 3)
    assert loc[("dl", "inner", "deep")] == Location("f.sdn", 4, 11)
    assert loc[("features",)] == Location("f.sdn", 5, 12)
    assert loc[("features", 0)] == Location("f.sdn", 5, 13)
    assert loc[("features", 1)] == Location("f.sdn", 5, 19)
    assert loc[("features", 1, "x")] == Location("f.sdn", 5, 23)
    assert loc[("list", 0)] == Location("f.sdn", 7, 3)
    assert loc[("list", 1)] == Location("f.sdn", 8, 5)
    assert loc[("t",)] == Location("f.sdn", 9, 3)
    assert loc[("t", 0)] == Location("f.sdn", 10, 5)
    assert loc[("t", 0, "n")] == Location("f.sdn", 10, 11)
    assert loc[("typed",)] == Location("f.sdn", 11, 8)
    assert loc[("typed", 0, 0)] == Location("f.sdn", 11, 23)
    keys = doc.key_locations
    assert keys[("dl",)] == Location("f.sdn", 1, 1)
    assert keys[("dl", "device")] == Location("f.sdn", 2, 3)
    assert keys[("dl", "inner", "deep")] == Location("f.sdn", 4, 5)
    assert keys[("features", 1, "x")] == Location("f.sdn", 5, 20)
    assert ("features", 0) not in keys
    assert str(keys[("dl", "device")]) == "f.sdn:2:3"


def test_every_value_has_a_location() -> None:
    doc = load(DATA / "simple_project.sdn")

    def walk(value: Any, path: tuple[str | int, ...]) -> None:
        assert path in doc.locations, path
        if isinstance(value, dict):
            for key, item in value.items():
                assert (*path, key) in doc.key_locations or isinstance(path[-1], int)
                walk(item, (*path, key))
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, (*path, index))

    walk(doc.value, ())


def test_long_form_table_rows_get_their_own_locations() -> None:
    doc = parse("t |a|\n  1\n  2\n  3\n")
    assert [doc.locations[("t", i)].line for i in range(3)] == [2, 3, 4]
    doc = parse("t: table{i32}\n  1\n  2\n")
    assert [doc.locations[("t", i, 0)].line for i in range(2)] == [2, 3]


# --- the spec's example, and files --------------------------------------------------------------------

SPEC_EXAMPLE = """\
# Deep learning configuration
dl:
  device: "cuda:1"          # 2nd GPU (0-indexed)
  dtype: "f32"              # f16, f32, f64, bf16
  backend: "torch"          # native, torch, cuda
  autograd: true
  amp: false
  seed: 42

training:
  device: "cuda:1"
  batch_size: 128

features = [auth, logging, metrics]

rate_limits |endpoint, requests, window|
    /api/login, 5, 60
    /api/search, 100, 60
"""


def test_spec_example_verbatim() -> None:
    doc = parse(SPEC_EXAMPLE)
    assert doc.value == {
        "dl": {
            "device": "cuda:1",
            "dtype": "f32",
            "backend": "torch",
            "autograd": True,
            "amp": False,
            "seed": 42,
        },
        "training": {"device": "cuda:1", "batch_size": 128},
        "features": ["auth", "logging", "metrics"],
        "rate_limits": [
            {"endpoint": "/api/login", "requests": 5, "window": 60},
            {"endpoint": "/api/search", "requests": 100, "window": 60},
        ],
    }
    assert doc.value["rate_limits"].fields == ("endpoint", "requests", "window")
    assert doc.locations[("dl", "seed")] == Location("<string>", 8, 9)
    assert loads(dumps(doc.value)) == doc.value


def test_load_dl_config_file() -> None:
    doc = load(DATA / "dl.config.sdn")
    assert isinstance(doc, Document)
    assert doc.source == str(DATA / "dl.config.sdn")
    assert doc.value["dl"] == {
        "device": "cuda:1",
        "dtype": "f32",
        "backend": "torch",
        "autograd": True,
        "amp": False,
        "seed": 42,
        "loss_scale": 65536,
    }
    training = doc.value["training"]
    assert training["learning_rate"] == 3e-4
    assert training["checkpoint_dir"] == "checkpoints/run-2024.06"
    assert training["exclude_tags"] == []
    assert training["point"] == {"x": 1, "y": 2}
    assert doc.value["bench"] == {
        "devices": ["cuda:0", "cuda:1"],
        "sizes": [1024, 4096, 16384],
        "html_title": "Simple GPU Benchmark Report",
    }
    assert doc.locations[("dl", "device")] == Location(str(DATA / "dl.config.sdn"), 5, 13)


def test_load_simple_project_file() -> None:
    value = load(str(DATA / "simple_project.sdn")).value
    assert value["project"]["version"] == "1.0.0-beta.8"
    assert value["project"]["html_title"] == "Simple Test Coverage"
    assert value["project"]["bind"] == "0.0.0.0"
    assert value["server"] == {
        "host": "db1.example.com",
        "port": 8080,
        "ratio": -0.5,
        "tiny": 1.5e-10,
        "nothing": None,
    }
    assert [row["title"] for row in value["employees"]] == [
        "Senior Engineer",
        "Staff Engineer, Platform",
        "-",
    ]
    assert value["employees"][2]["name"] == "Carol Jones"
    assert value["samples"] == [(1, 0.5, "first"), (2, 1.25, "second, with comma")]
    assert value["weights"] == Table([(1, True), (255, False)], types=("u8", "bool"))
    assert loads(dumps(value)) == value


def test_load_rejects_invalid_utf8_with_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.sdn"
    path.write_bytes("a: 1\nname: Jos\u00e9 \xff\n".encode("utf-8").replace(b"\xc3\xbf", b"\xff"))
    with pytest.raises(SdnError) as info:
        load(path)
    err = info.value
    assert (err.line, err.column) == (2, 12)
    assert "not valid UTF-8" in err.message
    assert "0xff" in err.message
    assert err.source == str(path)
    assert err.hint == "save the file as UTF-8"


def test_load_invalid_utf8_truncated_sequence_on_first_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.sdn"
    path.write_bytes(b"\xef\xbb\xbfab: \xe2\x82")
    with pytest.raises(SdnError) as info:
        load(path)
    assert (info.value.line, info.value.column) == (1, 5)


def test_load_tolerates_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.sdn"
    path.write_bytes(b"\xef\xbb\xbfa: 1\r\nb: caf\xc3\xa9\r\n")
    doc = load(path)
    assert doc.value == {"a": 1, "b": "café"}
    assert doc.locations[("b",)] == Location(str(path), 2, 4)


def test_load_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.sdn")


# --- Table and Document --------------------------------------------------------------------------------


def test_table_equality_and_repr() -> None:
    named = Table([{"a": 1}], fields=("a",))
    assert named == [{"a": 1}]
    assert named == Table([{"a": 1}], fields=["a"])
    assert named != Table([{"a": 1}], fields=("b",))
    assert named != Table([{"a": 1}], types=("i32",))
    assert repr(named) == "Table([{'a': 1}], fields=('a',), types=None)"
    assert isinstance(named, list)
    with pytest.raises(TypeError):
        hash(named)


def test_table_copies_keep_the_header() -> None:
    import copy
    import pickle

    table = Table([(1,)], types=("i32",))
    for clone in (copy.copy(table), copy.deepcopy(table), pickle.loads(pickle.dumps(table))):
        assert clone == table
        assert clone.types == ("i32",)


def test_document_is_frozen() -> None:
    doc = parse("a: 1")
    with pytest.raises(AttributeError):
        doc.value = {}  # type: ignore[misc]


# --- writer -----------------------------------------------------------------------------------------------


def test_dumps_layout() -> None:
    value = {
        "dl": {"device": "cuda:1", "seed": 42, "ratio": 0.5, "amp": False, "nothing": None},
        "features": ["auth", "two words", 3],
        "empty_list": [],
        "empty_dict": {},
        "nested": [{"a": 1}, [1, [2]]],
        "limits": Table([{"endpoint": "/api/login", "n": 5}], fields=("endpoint", "n")),
        "points": Table([(1, 2.5)], types=("i32", "f64")),
    }
    assert dumps(value) == (
        "dl:\n"
        "    device: cuda:1\n"
        "    seed: 42\n"
        "    ratio: 0.5\n"
        "    amp: false\n"
        "    nothing: null\n"
        "features:\n"
        "    auth\n"
        '    "two words"\n'
        "    3\n"
        "empty_list = []\n"
        "empty_dict = {}\n"
        "nested:\n"
        "    {a: 1}\n"
        "    [1, [2]]\n"
        "limits |endpoint, n|\n"
        "    /api/login, 5\n"
        "points: table{i32, f64}\n"
        "    1, 2.5\n"
    )
    assert loads(dumps(value)) == value
    assert dumps({}) == ""


@pytest.mark.parametrize(
    "text",
    [
        "42",
        "-1",
        "1.5",
        "1e5",
        ".5",
        "true",
        "false",
        "null",
        "nil",
        "",
        " lead",
        "trail ",
        "a # b",
        'say "hi"',
        "back\\slash",
        "line\nbreak",
        "cr\rhere",
        "tab\there",
        "\x00\x1f\x7f",
        "key: value",
        "ends:",
        "x = [1]",
        "t |a|",
        "table{i32}",
        "[not a list]",
        "{not a dict}",
        "(tuple)",
        "- dash",
        "-",
        "a, b",
        "ünï cödé",
        "\u2028\x85\x0c",
        "1" * 5000,
    ],
)
def test_strings_that_need_care_round_trip(text: str) -> None:
    value = {"s": text, "l": [text], "d": {"k": [text]}, "t": Table([{"c": text}], fields=("c",))}
    value["ty"] = Table([(text,)], types=("str",))
    assert loads(dumps(value)) == value


def test_dumps_quotes_only_when_needed() -> None:
    assert dumps({"a": "cuda:1"}) == "a: cuda:1\n"
    assert dumps({"a": "1.0.0-beta.8"}) == "a: 1.0.0-beta.8\n"
    assert dumps({"a": "42"}) == 'a: "42"\n'
    assert dumps({"a": "é\n"}) == 'a: "é\\n"\n'
    assert dumps({"a": "\x01"}) == 'a: "\\u0001"\n'


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_dumps_rejects_non_finite_floats(number: float) -> None:
    with pytest.raises(ValueError, match="no nan or infinity"):
        dumps({"x": number})
    with pytest.raises(ValueError, match="no nan or infinity"):
        dumps({"x": [[number]]})


@pytest.mark.parametrize("key", ["1a", "my-key", "", "a b", "é", 3])
def test_dumps_rejects_non_identifier_keys(key: Any) -> None:
    with pytest.raises(ValueError, match="SDN keys are identifiers"):
        dumps({key: 1})
    with pytest.raises(ValueError, match="SDN keys are identifiers"):
        dumps({"ok": [{key: 1}]})


def test_dumps_rejects_what_sdn_cannot_express() -> None:
    with pytest.raises(TypeError, match="cannot write a set"):
        dumps({"x": {1, 2}})
    with pytest.raises(TypeError, match="top level"):
        dumps([1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only be the value of a key"):
        dumps({"x": [Table([{"a": 1}], fields=("a",))]})
    with pytest.raises(ValueError, match="both fields and types"):
        dumps({"x": Table(fields=("a",), types=("i32",))})
    with pytest.raises(ValueError, match="exactly the keys"):
        dumps({"x": Table([{"b": 1}], fields=("a",))})
    with pytest.raises(ValueError, match="in a u8 column"):
        dumps({"x": Table([(300,)], types=("u8",))})
    with pytest.raises(ValueError, match="tuples of 2 values"):
        dumps({"x": Table([(1,)], types=("i32", "i32"))})
    with pytest.raises(ValueError, match="unknown column type"):
        dumps({"x": Table([], types=("i33",))})
    with pytest.raises(ValueError, match="deeper than"):
        deep: Any = 1
        for _ in range(sdn.MAX_DEPTH + 5):
            deep = [deep]
        dumps({"x": deep})


def test_dumps_tuples_as_arrays_and_plain_tables_as_lists() -> None:
    assert loads(dumps({"x": (1, 2), "y": Table([1, 2])})) == {"x": [1, 2], "y": [1, 2]}


def test_dumps_typed_table_float_columns_accept_ints() -> None:
    table = Table([(1, 2)], types=("i32", "f32"))
    again = loads(dumps({"t": table}))["t"]
    assert again == table
    assert isinstance(again[0][1], float)
