"""SDN 1.0 reader errors: every error of the format summary, with its line, column and hint."""

from __future__ import annotations

import pytest

from gpubench.config import sdn
from gpubench.config.sdn import SdnError, loads, parse
from gpubench.config.sdn.inline import Inline
from gpubench.config.sdn.parser import Parser


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
        ('a: "abc\\" x', (1, 4)),
        ('a = ["x\\"]', (1, 6)),
        ('a:\n  x: 1\n  y: "open # not a comment', (3, 6)),
        ('a: "x" "y', (1, 8)),  # three quotes: one string is open
        ('a: "x\\"\u00a0', (1, 4)),  # the quote is not the last character: only spaces and tabs may follow
        ('a: "x\\"X', (1, 4)),
        ('a: "x\\a', (1, 4)),
    ],
)
def test_unterminated_quoted_string(text: str, position: tuple[int, int]) -> None:
    err = error_of(text)
    assert err.message == "unterminated quoted string"
    assert where(err) == position
    assert err.hint == 'close it with " on the same line; write \\" for a quote inside the string'


FINAL_BACKSLASH = ("unterminated quoted string (the final backslash escapes the closing quote)\n"
                   "  hint: write \\\\ for a backslash at the end of a string")


@pytest.mark.parametrize(("text", "column"), [
    ('dir: "C:\\data\\"\n', 6),  # a Windows path: the user meant the string to end at the last quote
    ('a: "abc\\"  \n', 4),
    ('a: "x\\\\\\"\n', 4),  # \\ then \"
    ('a: "x" "y\\"\n', 8),
])
def test_a_string_whose_closing_quote_is_escaped_says_so(text: str, column: int) -> None:
    assert str(error_of(text)) == f"<string>:1:{column}: {FINAL_BACKSLASH}"


@pytest.mark.parametrize(("text", "error"), [
    ('"abc', 'unterminated quoted string\n  hint: close it with " on the same line; write \\" for a quote inside '
     "the string"),
    ('"abc\\', 'unterminated quoted string\n  hint: close it with " on the same line; write \\" for a quote '
     "inside the string"),
    ('"abc\\"', FINAL_BACKSLASH),
])
def test_inline_words_an_open_string_as_the_lexer_does(text: str, error: str) -> None:
    # the lexer refuses these lines first; Inline, given such a text directly, says the same
    with pytest.raises(SdnError) as raised:
        Inline(Parser("", "f.sdn"), "  " + text, 4, 3).value(("k",), 1)
    assert str(raised.value) == f"f.sdn:4:5: {error}"


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
    assert str(err) == "<string>:102:102: nesting is deeper than 100 levels\n  hint: flatten the structure"
    # Just under the limit still reads.
    ok = "a = " + "[" * 90 + "]" * 90
    assert loads(ok)["a"] is not None


def test_errors_carry_the_source() -> None:
    with pytest.raises(SdnError) as info:
        parse("a = 5", source="conf.sdn")
    assert str(info.value).startswith("conf.sdn:1:5: ")



# --- each error in full: message, line:column and hint (what a user reads) -------------------------------

_CELLS_HINT = "separate cells with commas; quote a cell that holds quotes or commas"
_KEY_HINT = 'a bare key holds letters, digits, _ . / and - (not first); quote any other key: "my key": value'
_TYPES_HINT = "use one of i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, bool, str, string, text"
_FIELDS_HINT = "field names are identifiers separated by commas: key |id, name|"
_AFTER_TYPES_HINT = "write `= [(...), (...)]` after the types, or put the rows on indented lines below"


@pytest.mark.parametrize(("text", "error"), [
    # typed-table cells that do not fit their column
    ("t: table{bool}\n  yes\n", "2:3: cell 'yes' is not a bool\n  hint: write true or false"),
    ("t: table{u8}\n  300\n", "2:3: cell 300 is out of range for u8 (0..255)\n"
     "  hint: use a wider column type or a smaller value"),
    ("t: table{f64}\n  fast\n", "2:3: cell 'fast' is not a number (f64 column)\n"
     "  hint: write a number such as 1.5 or 2e-3"),
    ("t: table{f32}\n  1e39\n", "2:3: cell 1e39 is out of range for f32\n  hint: use f64 or a smaller value"),
    ("t: table{i32}\n  1.5\n", "2:3: cell '1.5' is not an integer (i32 column)\n"
     "  hint: write a whole number in -2147483648..2147483647"),
    ("t: table{i64}\n  \n  , 1\n", "3:3: table row has 2 cells, expected 1 (i64)\n"
     "  hint: add or remove cells; quote a str cell that contains a comma"),
    # typed-table rows
    ("t: table{i32, i32}\n  1\n", "2:3: table row has 1 cells, expected 2 (i32, i32)\n"
     "  hint: add or remove cells; quote a str cell that contains a comma"),
    ('t: table{str, i32}\n  "a" b, 1\n', f"2:7: unexpected 'b' after a cell\n  hint: {_CELLS_HINT}"),
    ('t: table{str, i32}\n  ("a" b, 1)\n', f"2:8: unexpected 'b' after a cell\n  hint: {_CELLS_HINT}"),
    ("t: table{i32}\n  (1) x\n", "2:7: unexpected 'x' after the closing ')' of the row\n"
     "  hint: remove it, quote the whole value, or start a comment with #"),
    ("t: table{i32}\n  (1, 2\n", "2:3: unterminated '(': no matching ')' on this line\n  hint: close it with ')' on "
     "the same line; inline values cannot span lines (use an indented block for long lists)"),
    # the type list
    ("t: table{i32\n", "1:9: unterminated '{' in table type list\n  hint: close the type list: table{i32, f64}"),
    ("t: table{i33}\n", f"1:10: unknown column type 'i33'\n  hint: {_TYPES_HINT}"),
    ("t: table{Xi32}\n", f"1:10: unknown column type 'Xi32'\n  hint: {_TYPES_HINT}"),
    # a blank that is not a space or a tab is part of the name
    ("t: table{i32\u00a0}\n", f"1:10: unknown column type 'i32\\xa0'\n  hint: {_TYPES_HINT}"),
    ("t: table{i32} X\n", f"1:15: unexpected 'X' after the table type list\n  hint: {_AFTER_TYPES_HINT}"),
    ("t: table{i32}\u00a0\n", f"1:14: unexpected '\\xa0' after the table type list\n  hint: {_AFTER_TYPES_HINT}"),
    # named tables: the field list and the rows
    ("t |a, b\n", "1:3: unterminated '|' field list\n  hint: close the field list with '|': key |a, b|"),
    ("t |a, 1b|\n", f"1:7: invalid field name '1b'\n  hint: {_FIELDS_HINT}"),
    ("t |a\u00a0|\n", f"1:4: invalid field name 'a\\xa0'\n  hint: {_FIELDS_HINT}"),
    ("t |a, a|\n", "1:7: duplicate field name 'a'\n  hint: give each column its own name"),
    ("t |a, b|\n  1\n", "2:3: table row has 1 cells, expected 2 (a, b)\n"
     "  hint: add or remove cells; quote a cell that contains a comma"),
    ('t |a, b|\n  "a" b, 1\n', f"2:7: unexpected 'b' after a cell\n  hint: {_CELLS_HINT}"),
    ("t |a, b|\n  [1] 2, 3\n", f"2:7: unexpected '2' after a cell\n  hint: {_CELLS_HINT}"),
    ("t |a|\n  1e999\n", "2:3: number 1e999 is too large for a 64-bit float\n  hint: quote it to keep it as text"),
    ("t |a, b|\n  1, 1e999\n", "2:6: number 1e999 is too large for a 64-bit float\n"
     "  hint: quote it to keep it as text"),
    # statements and array items whose key a bare key cannot hold
    ("a,b = [1]\n", f"1:1: invalid key 'a,b'\n  hint: {_KEY_HINT}"),
    ("=: x\n", f"1:1: invalid key '='\n  hint: {_KEY_HINT}"),  # not an empty key: the key is '='
    ("=:\n", f"1:1: invalid key '='\n  hint: {_KEY_HINT}"),
    ("a: 1\na b\u00a0: 1\n", f"2:1: invalid key 'a b\\xa0'\n  hint: {_KEY_HINT}"),
    ("k:\n  - X y: 1\n", f"2:5: invalid key 'X y'\n  hint: {_KEY_HINT}"),
    ("k:\n  - a b: c: d\n", f"2:5: invalid key 'a b'\n  hint: {_KEY_HINT}"),  # the first ': ' ends the key
    ("k:\n  - a b:\n", f"2:5: invalid key 'a b'\n  hint: {_KEY_HINT}"),
    ("k:\n  - x y = 1 = 2\n", f"2:5: invalid key 'x y'\n  hint: {_KEY_HINT}"),  # the first '=' ends it
    ("k:\n  - x y : 1\n", f"2:5: invalid key 'x y'\n  hint: {_KEY_HINT}"),
    ("k:\n  - a bX: 1\n", f"2:5: invalid key 'a bX'\n  hint: {_KEY_HINT}"),
    ("k:\n  - a b\u00a0: 1\n", f"2:5: invalid key 'a b\\xa0'\n  hint: {_KEY_HINT}"),
    ("k:\n  x\n  a b: 1\n", f"3:3: invalid key 'a b'\n  hint: {_KEY_HINT}"),
    # indentation: the line above ended a value that spans lines, at this line's indentation
    ("a = [1,\n  2]\n  b: 3\n", "3:3: unexpected indentation\n  hint: only a `key:` with nothing after it (or a "
     "table header) opens an indented block; align this line with the one above"),
    # a table's rows close their block: the open blocks are those around the table
    ("a:\n    t |x|\n      1\n  b: 2\n", "4:3: indentation (2 spaces) matches no open block\n"
     "  hint: align this line with an enclosing block (open blocks start at column 1)"),
    ("a:\n    t: table{i32}\n      1\n   b: 2\n", "4:4: indentation (3 spaces) matches no open block\n"
     "  hint: align this line with an enclosing block (open blocks start at column 1)"),
    # an error at the very start of a continuation line is on that line
    ("x = {a: 1,\n  : 2}\n", "2:3: empty key before ':'\n  hint: write a name before the colon: {name: value}"),
    ("x = [1,\n   ,2]\n", "2:4: expected a value before ','\n  hint: write a value, or remove the extra comma"),
    # a line at the key's indentation ends a value that spans lines, unless it starts with the closer
    ("a = [1,\nX]\n", "1:5: unterminated '[': no matching ']' on this line\n  hint: close it with ']'; a value "
     "that spans lines continues on lines indented deeper than its key (the line with the ']' may start at the "
     "key's column)"),
    # inline dicts
    ("x = {a: 1, !: 2}\n", "1:12: expected a key, found '!'\n  hint: inline dict entries are `name: value`; keys "
     "are identifiers (letters, digits, _)"),
    ("a = {x 1}\n", "1:8: expected ':' after key 'x', found '1'\n  hint: inline dict entries are `name: value`; keys "
     "are identifiers (letters, digits, _)"),
    ("a = {x\n", "1:5: unterminated '{': no matching '}' on this line\n  hint: close it with '}'; a value that spans "
     "lines continues on lines indented deeper than its key (the line with the '}' may start at the key's column)"),
    ("a = {x: 1, x: 2}\n", "1:12: duplicate key 'x' (first at line 1, column 6)\n"
     "  hint: remove one of the two entries or rename one"),
    # look-alikes of other formats
    ("a: |\n", "1:4: YAML block scalar '|' is not SDN\n  hint: write the text as one quoted string, with \\n for "
     'each line break: key: "first\\nsecond"'),
    # array blocks
    ("k:\n  x\n  a: 1\n", "3:3: `key: value` entry inside an array block\n  hint: a block is an array when its "
     "first line is a value; make every line `key: value`, or write this item as an inline dict {key: value}"),
    ("k:\n  x\n  = y\n", "3:3: empty key before '='\n  hint: write a key name (an identifier) first"),
    # statements
    ("a =\n", "1:4: the value after '=' must be an inline dict {...} or array [...]\n"
     "  hint: write {...} or [...] after '='"),
    ("a = X\n", "1:5: the value after '=' must be an inline dict {...} or array [...]\n"
     "  hint: for a single value write `a: X`"),
    ('a = "x"\n', "1:5: the value after '=' must be an inline dict {...} or array [...]\n"
     '  hint: for a single value write `a: "x"` (`key = "text"` is TOML; SDN writes `key: value`)'),
    ("a: 1\na: 2\n", "2:1: duplicate key 'a' (first defined on line 1, again on line 2)\n"
     "  hint: remove one of the two entries or rename one"),
    ('x:\n  "a\\q": 1\n', "2:5: unknown escape \\q in quoted string\n  hint: inside quotes write \\\\ for a "
     'backslash; the escapes are \\" \\\\ \\n \\t \\r \\/ \\uXXXX'),
    ("a = [1] x\n", "1:9: unexpected 'x' after the closing ']'\n"
     "  hint: remove it, quote the whole value, or start a comment with #"),
    ("a = {b: 1} x\n", "1:12: unexpected 'x' after the closing '}'\n"
     "  hint: remove it, quote the whole value, or start a comment with #"),
    ('a: "x" y\n', "1:8: unexpected 'y' after the closing quote\n"
     "  hint: remove it, quote the whole value, or start a comment with #"),
    ("a: 1e999\n", "1:4: number 1e999 is too large for a 64-bit float\n"
     "  hint: write a smaller number, or quote it to keep it as text"),
    # what the lexer sees first
    ("\u00a0a: 1\n", f"1:1: invalid key '\\xa0a'\n  hint: {_KEY_HINT}"),  # indentation is spaces, not any blank
    ("a:\n\tb:\t1\n", "2:1: tab character in indentation\n"
     "  hint: indent with spaces only; SDN does not allow tabs in indentation"),
    # inline values
    ("a = [1e999]\n", "1:6: number 1e999 is too large for a 64-bit float\n"
     "  hint: write a smaller number, or quote it to keep it as text"),
    ('a = ["x" X]\n', "1:10: expected ',' or ']', found 'X'\n"
     "  hint: separate values with commas; quote values that contain blanks or punctuation"),
    ("a = [[1] 2]\n", "1:10: expected ',' or ']', found '2'\n"
     "  hint: separate values with commas; quote values that contain blanks or punctuation"),
    ("a = [[1}]\n", "1:8: '}' does not close the '[' at column 6\n  hint: close it with ']'"),
    ("a = {x:\n", "1:8: expected a value\n  hint: write a value, or remove the separator before it"),
    # the open '[' is on the first line, after the value crossed to the next
    ("a = [[1,\n    2\n", "1:6: unterminated '[': no matching ']' up to line 2\n  hint: close it with ']'; a "
     "value that spans lines continues on lines indented deeper than its key (the line with the ']' may start at "
     "the key's column)"),
])
def test_errors_in_full(text: str, error: str) -> None:
    assert str(error_of(text)) == f"<string>:{error}"


def test_triple_quotes_name_the_source() -> None:
    with pytest.raises(SdnError) as raised:
        parse('a: """x"""\n', source="f.sdn")
    assert str(raised.value) == ('f.sdn:1:4: triple-quoted string (""") is not SDN\n  hint: write one quoted string on '
                                 'one line, with \\n for each line break: "first\\nsecond"')


@pytest.mark.parametrize(("digits", "message"), [
    (4000, "cell {cell} is out of range for u64 (0..18446744073709551615)"),  # the longest integer read
    (4001, "cell '{cell}' is not an integer (u64 column)"),
])
def test_typed_integer_cells_read_up_to_4000_digits(digits: int, message: str) -> None:
    cell = "1" * digits
    err = error_of(f"t: table{{u64}}\n  {cell}\n")
    assert err.message == message.format(cell=cell)
    assert where(err) == (2, 3)
