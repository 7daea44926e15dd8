"""SDN 1.0 reader errors: every error of the format summary, with its line, column and hint."""

from __future__ import annotations

import pytest

from gpubench.config import sdn
from gpubench.config.sdn import SdnError, loads, parse


def error_of(text: str) -> SdnError:
    with pytest.raises(SdnError) as info:
        parse(text)
    return info.value


def where(err: SdnError) -> tuple[int, int]:
    return err.line, err.column


# --- typed table cells that do not fit -------------------------------------------------------------------


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
        # `my-key: 1` and `"quoted": 1` are keys now: the Simple parser takes any text before the first top-level
        # ':' as the key (ormastes/simple src/lib/common/sdn/parser.spl, _sdn_parse_block: `key = t.slice(0, ci)`).
        ("my key: 1", "invalid key 'my key'", (1, 1)),
        ("my@key = [1]", "invalid key 'my@key'", (1, 1)),
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


def test_yaml_dict_item_in_array_block_is_a_dict() -> None:
    # Was an error; parser.spl's _sdn_parse_seq reads `- key: value` items (with continuation lines) as dicts.
    assert loads("a:\n  - x\n  - name: b\n") == {"a": ["x", {"name": "b"}]}


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
        # `{1: b}` is a dict now: parser.spl's _sdn_parse_inline_dict takes any text before ':' as the key.
        ("a = {-1: b}", "expected a key, found '-'", 6),
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

