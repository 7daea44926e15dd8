"""Typed-table cells at the edges of their column types: every integer type at min-1, min, max, max+1,
floats at and beyond ±max (f32's check is on the magnitude: -1e39 is refused like 1e39).

Further down: where one value ends and the next starts (cells, items, type and field lists, blanks that are not
spaces or tabs), and nesting at exactly the depth limit and one past it, each read by both readings (the quick
one of ``loads`` and the exact one behind locations and errors).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpubench.config.sdn import Location, SdnError, loads, parse
from gpubench.config.sdn.inline import Cell, Inline
from gpubench.config.sdn.parser import Parser
from gpubench.config.sdn.values import INT_RANGES, MAX_DEPTH, Path

F32_MAX = 3.4028234663852886e38

INT_EDGES = [
    ("i8", -128, 127),
    ("i16", -32768, 32767),
    ("i32", -2147483648, 2147483647),
    ("i64", -9223372036854775808, 9223372036854775807),
    ("u8", 0, 255),
    ("u16", 0, 65535),
    ("u32", 0, 4294967295),
    ("u64", 0, 18446744073709551615),
]


def _short(kind: str, cell: str) -> object:
    return loads(f"t: table{{{kind}}} = [({cell})]\n")["t"][0][0]


def _long(kind: str, cell: str) -> object:
    return loads(f"t: table{{{kind}, str}}\n  {cell}, x\n")["t"][0][0]


def test_the_edges_are_the_two_complement_and_unsigned_ranges() -> None:
    assert {k: v for k, v in INT_RANGES.items()} == {k: (low, high) for k, low, high in INT_EDGES}


@pytest.mark.parametrize("read", [_short, _long], ids=["short", "long"])
@pytest.mark.parametrize(("kind", "low", "high"), INT_EDGES, ids=[e[0] for e in INT_EDGES])
def test_integer_columns_hold_their_range_and_refuse_one_past_it(read, kind: str, low: int, high: int) -> None:  # type: ignore[no-untyped-def]
    assert read(kind, str(low)) == low
    assert read(kind, str(high)) == high
    for outside in (low - 1, high + 1):
        with pytest.raises(SdnError, match=rf"cell {outside} is out of range for {kind} \({low}\.\.{high}\)"):
            read(kind, str(outside))


@pytest.mark.parametrize("read", [_short, _long], ids=["short", "long"])
def test_f32_refuses_beyond_its_largest_finite_value_on_both_sides(read) -> None:  # type: ignore[no-untyped-def]
    assert read("f32", repr(F32_MAX)) == F32_MAX
    assert read("f32", repr(-F32_MAX)) == -F32_MAX
    for outside in (1.01 * F32_MAX, -1.01 * F32_MAX, 1e39, -1e39):
        with pytest.raises(SdnError, match="out of range for f32"):
            read("f32", repr(outside))


@pytest.mark.parametrize("read", [_short, _long], ids=["short", "long"])
def test_f64_holds_any_finite_value_and_refuses_overflow(read) -> None:  # type: ignore[no-untyped-def]
    assert read("f64", "1e308") == 1e308
    assert read("f64", "-1e308") == -1e308
    assert read("f64", "1e39") == 1e39
    for outside in ("1e309", "-1e309"):
        with pytest.raises(SdnError, match="out of range for f64"):
            read("f64", outside)


def test_integer_cells_take_underscores_and_a_sign_but_not_a_fraction() -> None:
    assert _short("u16", "65_535") == 65535
    assert _short("i8", "+127") == 127
    assert _short("u8", "-0") == 0
    with pytest.raises(SdnError, match=r"cell 65_536 is out of range for u16"):
        _short("u16", "65_536")
    with pytest.raises(SdnError, match=r"not an integer \(i32 column\)"):
        _short("i32", "1.0")
    with pytest.raises(SdnError, match=r"not an integer \(u8 column\)"):
        _short("u8", '"7"')  # quoted: a string, not a number


# -- bytes to text: the first byte that is not UTF-8 text, found exactly -------------------------------------


def _decode_error(data: bytes) -> SdnError:
    from gpubench.config.sdn.lexer import decode

    with pytest.raises(SdnError) as caught:
        decode(data, "f.sdn")
    return caught.value


def test_decode_drops_a_utf8_byte_order_mark_only_at_the_start() -> None:
    from gpubench.config.sdn.lexer import decode

    assert decode(b"\xef\xbb\xbfa: 1\n", "f.sdn") == "a: 1\n"
    assert decode(b"a: \xef\xbb\xbf\n", "f.sdn") == "a: \ufeff\n"
    assert decode(b"", "f.sdn") == ""


@pytest.mark.parametrize(("data", "encoding"), [
    (b"\xff\xfe\x00\x00a\x00\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff\x00\x00\x00a", "UTF-32"),
    (b"\xff\xfea\x00", "UTF-16"),
    (b"\xfe\xff\x00a", "UTF-16"),
])
def test_decode_names_a_foreign_byte_order_mark(data: bytes, encoding: str) -> None:
    error = _decode_error(data)
    assert error.message == f"file is {encoding} text (it starts with a {encoding} byte-order mark), not UTF-8"
    assert (error.source, error.line, error.column) == ("f.sdn", 1, 1)
    assert error.hint == f"save the file as UTF-8 (e.g. iconv -f {encoding} -t UTF-8 FILE)"


def test_decode_points_at_the_first_byte_that_is_not_utf8() -> None:
    error = _decode_error(b'a: 1\r\nb: "\xc3\xa9"\rc: x\xff')
    assert error.message == "file is not valid UTF-8 (byte 0xff at offset 18)"
    assert (error.line, error.column) == (3, 5)  # \r\n and a lone \r each end a line; é is one character
    assert error.hint == "save the file as UTF-8"
    crlf = _decode_error(b"a\r\nb\xff")  # \r\n is one line break: b is in column 1
    assert (crlf.message, crlf.line, crlf.column) == ("file is not valid UTF-8 (byte 0xff at offset 4)", 2, 2)
    first = _decode_error(b"\x80abc")
    assert (first.message, first.line, first.column) == ("file is not valid UTF-8 (byte 0x80 at offset 0)", 1, 1)


def test_decode_refuses_a_nul_byte_where_it_is() -> None:
    nul = "file contains a NUL byte (offset {}): it is binary data or UTF-16/UTF-32 text, not UTF-8 text"
    hint = "save the file as UTF-8 text; check that this is the right file"
    error = _decode_error(b"a: 1\nbb\x00c\n")
    assert (error.message, error.source, error.line, error.column, error.hint) == (
        nul.format(7), "f.sdn", 2, 3, hint
    )
    before = _decode_error(b"a\n\x00\xff")  # the NUL comes before the bad byte: it is named
    assert (before.message, before.source, before.line, before.column) == (nul.format(2), "f.sdn", 2, 1)
    at_start = _decode_error(b"\x00\xff")
    assert (at_start.message, at_start.line, at_start.column) == (nul.format(0), 1, 1)
    two = _decode_error(b"a\x00b\x00")  # the first NUL
    assert (two.message, two.line, two.column) == (nul.format(1), 1, 2)
    after = _decode_error(b"a\xff\x00")  # the bad byte first
    assert after.message == "file is not valid UTF-8 (byte 0xff at offset 1)"
    first = _decode_error(b"\x00")
    assert (first.message, first.line, first.column) == (nul.format(0), 1, 1)


# -- the short form of a typed table, and statements that are not one, with the exact message ---------------


@pytest.mark.parametrize(("text", "rows"), [
    ("t: table{i32} = []\n", []),
    ("t: table{i32} = [ ]\n", []),
    ("t: table{i32} = [(1), ]\n", [(1,)]),  # a trailing comma
    ("t: table{i32} = [(1),(2)]\n", [(1,), (2,)]),
    ("t: table{i32} = [(1)]  # c\n", [(1,)]),
])
def test_short_typed_table_rows(text: str, rows: list[tuple[int, ...]]) -> None:
    assert list(loads(text)["t"]) == rows


ECHO_HINT = ("the file was probably written with echo '...\\n...', which does not turn \\n into a line break; "
             "write it with printf '...\\n...' or an editor, one statement per line (quote a value that needs a "
             "backslash)")


NOT_A_STATEMENT = ("<string>:1:1: line is not a statement\n  hint: expected `key: value`, `key:` and an indented "
                   "block, `key = [...]` / `key = {...}`, `key: table{...}` or `key |a, b|`")
INVALID_KEY = ("<string>:1:1: invalid key '{}'\n  hint: a bare key holds letters, digits, _ . / and - (not first); "
               'quote any other key: "my key": value')


@pytest.mark.parametrize(("text", "error"), [
    ("t: table{i32} = [(1)\n", "<string>:1:17: unterminated '[': no matching ']' on this line\n  hint: close it with"
     " ']' on the same line; inline values cannot span lines (use an indented block for long lists)"),
    ("t: table{i32} = [\n", "<string>:1:17: unterminated '[': no matching ']' on this line\n  hint: close it with"
     " ']' on the same line; inline values cannot span lines (use an indented block for long lists)"),
    ("t: table{i32} = (1)\n", "<string>:1:17: expected '[' with the table rows after '='\n"
     "  hint: write rows as key: table{i32} = [(1), (2)]"),
    ("t: table{i32} = [x]\n", "<string>:1:18: expected '(' to start a table row, found 'x'\n"
     "  hint: write each row as (a, b)"),
    ("t: table{i32} = [(1)] x\n", "<string>:1:23: unexpected 'x' after the closing ']'\n"
     "  hint: remove it, quote the whole value, or start a comment with #"),
    ("t: table{i32} = [(1)]]\n", "<string>:1:22: unexpected ']' after the closing ']'\n"
     "  hint: remove it, quote the whole value, or start a comment with #"),
    ("a: 1\n    b: 2\n", "<string>:2:5: unexpected indentation\n  hint: only a `key:` with nothing after it (or a "
     "table header) opens an indented block; align this line with the one above"),
    ("a:\n  b: 1\n c: 2\n", "<string>:3:2: indentation (1 spaces) matches no open block\n"
     "  hint: align this line with an enclosing block (open blocks start at column 1)"),
    (": 1\n", "<string>:1:1: empty key before ':'\n  hint: write a key name (an identifier) first"),
    ("=x\n", "<string>:1:1: empty key before '='\n  hint: write a key name (an identifier) first"),
    ("|x\n", "<string>:1:1: empty key before '|'\n  hint: write a key name (an identifier) first"),
    ("a b: 1\n", "<string>:1:1: invalid key 'a b'\n  hint: a bare key holds letters, digits, _ . / and - (not "
     'first); quote any other key: "my key": value'),
    ("a: 1\n(x)\n", "<string>:2:1: line is not a statement\n  hint: expected `key: value`, `key:` and an indented "
     "block, `key = [...]` / `key = {...}`, `key: table{...}` or `key |a, b|`"),
    ("a:1\n", "<string>:1:3: missing blank after ':'\n  hint: write `a: 1`"),
    ("[dl]\n", "<string>:1:1: TOML section header '[dl]' is not SDN\n  hint: write the section as `dl:` and indent "
     "its keys below it, e.g. `    device: cuda:1`"),
    ("[[dl]]\n", "<string>:1:1: TOML section header '[[dl]]' is not SDN\n  hint: write the section as `dl:` and "
     "indent its keys below it, e.g. `    device: cuda:1`"),
    ("[ a b ]\n", "<string>:1:1: TOML section header '[ a b ]' is not SDN\n  hint: write the section as `a b:` and "
     "indent its keys below it, e.g. `    device: cuda:1`"),
    ('{"a": 1}\n', "<string>:1:1: a JSON document is not SDN\n  hint: write `dl:` and below it indented `device: "
     "cuda:1` lines: no braces, no commas between settings, no quotes needed around keys"),
    ("[1, 2]\n", "<string>:1:1: a JSON document is not SDN\n  hint: write `dl:` and below it indented `device: "
     "cuda:1` lines: no braces, no commas between settings, no quotes needed around keys"),
    ("a: 1\n[x, y]\n", "<string>:2:1: line is not a statement\n  hint: expected `key: value`, `key:` and an "
     "indented block, `key = [...]` / `key = {...}`, `key: table{...}` or `key |a, b|`"),  # JSON only first
    ("- x\n", "<string>:1:1: `- item` line where a `key: value` line is expected\n  hint: a list is the value of a "
     "key: write `items:` and indent the `- ...` lines below it"),
    ("-\n", "<string>:1:1: `- item` line where a `key: value` line is expected\n  hint: a list is the value of a "
     "key: write `items:` and indent the `- ...` lines below it"),
    ("-\tx\n", "<string>:1:1: `- item` line where a `key: value` line is expected\n  hint: a list is the value of "
     "a key: write `items:` and indent the `- ...` lines below it"),
    ("-x\n", "<string>:1:1: line is not a statement\n  hint: expected `key: value`, `key:` and an indented block, "
     "`key = [...]` / `key = {...}`, `key: table{...}` or `key |a, b|`"),
    ("a b:\n", "<string>:1:1: invalid key 'a b'\n  hint: a bare key holds letters, digits, _ . / and - (not "
     'first); quote any other key: "my key": value'),
    ("a b \t: 1\n", "<string>:1:1: invalid key 'a b'\n  hint: a bare key holds letters, digits, _ . / and - (not "
     'first); quote any other key: "my key": value'),
    (":\n", "<string>:1:1: empty key before ':'\n  hint: write a key name (an identifier) first"),
    ("a\\b c\n", "<string>:1:1: line is not a statement\n  hint: expected `key: value`, `key:` and an indented "
     "block, `key = [...]` / `key = {...}`, `key: table{...}` or `key |a, b|`"),
    ("a: 1\nx\\ny z\n", f"<string>:2:2: literal \\n (a backslash and an n, not a line break)\n  hint: {ECHO_HINT}"),
    ("a = {x: 1\n", "<string>:1:5: unterminated '{': no matching '}' on this line\n  hint: close it with '}'; a "
     "value that spans lines continues on lines indented deeper than its key (the line with the '}' may start at "
     "the key's column)"),
    ("a: [1,\n    2\n", "<string>:1:4: unterminated '[': no matching ']' up to line 2\n  hint: close it with ']'; "
     "a value that spans lines continues on lines indented deeper than its key (the line with the ']' may start "
     "at the key's column)"),
    ("a: {x: 1,\n    y: 2\n", "<string>:1:4: unterminated '{': no matching '}' up to line 2\n  hint: close it with "
     "'}'; a value that spans lines continues on lines indented deeper than its key (the line with the '}' may "
     "start at the key's column)"),
    ("X y\n", NOT_A_STATEMENT),
    ("-X\n", NOT_A_STATEMENT),
    ("[Xa]\n", "<string>:1:1: TOML section header '[Xa]' is not SDN\n  hint: write the section as `Xa:` and indent "
     "its keys below it, e.g. `    device: cuda:1`"),
    ("a b: c: d\n", INVALID_KEY.format("a b")),  # the first ': ' ends the key
    ("%: 1\n", INVALID_KEY.format("%")),
    ("%:\n", INVALID_KEY.format("%")),
    ("a bX: 1\n", INVALID_KEY.format("a bX")),
    (": x:\n", "<string>:1:1: empty key before ':'\n  hint: write a key name (an identifier) first"),
    ("t: table{i32} = []x\n", "<string>:1:19: unexpected 'x' after the closing ']'\n"
     "  hint: remove it, quote the whole value, or start a comment with #"),
    ("a: \\nb\n", f"<string>:1:4: literal \\n (a backslash and an n, not a line break)\n  hint: {ECHO_HINT}"),
    ("a: x\\ny\\nz\n", f"<string>:1:5: literal \\n (a backslash and an n, not a line break)\n  hint: {ECHO_HINT}"),
])
def test_statement_errors_name_the_place_and_the_fix(text: str, error: str) -> None:
    with pytest.raises(SdnError) as caught:
        loads(text)
    assert str(caught.value) == error


def test_an_sdn_error_without_a_place_points_at_the_start_of_a_string() -> None:
    error = SdnError("bad")
    assert (error.source, error.line, error.column, error.hint) == ("<string>", 1, 1, None)
    assert str(error) == error.args[0] == "<string>:1:1: bad"
    hinted = SdnError("bad", "f.sdn", 3, 7, "fix it")
    assert str(hinted) == hinted.args[0] == "f.sdn:3:7: bad\n  hint: fix it"


def test_a_line_left_of_an_indented_top_level_names_the_top_level_s_column() -> None:
    with pytest.raises(SdnError) as raised:
        loads("# settings\n  a: 1\nb: 2\n")
    error = raised.value
    assert (error.line, error.column) == (3, 1)
    assert "indentation (0 spaces) matches no open block" in str(error)
    assert "the top level starts at column 3 (its first line is indented)" in str(error)
    assert "column )" not in str(error)  # the list of open blocks is empty here


# -- values the exact reading gives too: cells and headers at their edges -----------------------------------


def _both_readings(text: str) -> object:
    """The value of ``text``: the quick reading's (``loads``), checked against the exact reading's."""
    value = loads(text)
    assert Parser(text, "<string>").document() == value
    return value


@pytest.mark.parametrize(("text", "row"), [
    # a named-table cell runs to the comma: brackets inside a word are part of it
    ("t |a, b|\n  X[1], 2\n", {"a": "X[1]", "b": 2}),
    ("t |a|\n  aX\n", {"a": "aX"}),
    ("t |a, b|\n  x\u00a0, y\n", {"a": "x\u00a0", "b": "y"}),  # only spaces and tabs are blanks
    ("t |a, b| x|y, 2\n", {"a": "x|y", "b": 2}),  # the first '|' after the name ends the field list
    ("t |a| X1\n", {"a": "X1"}),
    ("t |a|\u00a0x\n", {"a": "\u00a0x"}),
])
def test_named_table_cells(text: str, row: dict[str, object]) -> None:
    assert list(_both_readings(text)["t"]) == [row]  # type: ignore[index]


@pytest.mark.parametrize(("text", "row"), [
    ("t: table{str, str}\n  a , b\n", ("a", "b")),
    ("t: table{str, str}\n  x\u00a0, y\n", ("x\u00a0", "y")),
    ("t: table{str}\n  aX\n", ("aX",)),
    ("t: table{str}\n  a)b\n", ("a)b",)),  # without parentheses a row runs to the end of the line
    ("t: table{f64}\n  1_000.5\n", (1000.5,)),
    ('t: table{str, str} = [("{", "}")]\n', ("{", "}")),  # the type list ends at the first '}'
    ("t: table{i32}= [(1)]\n", (1,)),
    ("t: table{i32} =[(1)]\n", (1,)),
])
def test_typed_table_cells(text: str, row: tuple[object, ...]) -> None:
    assert list(_both_readings(text)["t"]) == [row]  # type: ignore[index]


def test_a_typed_row_skips_leading_blanks_and_marks_quoted_cells() -> None:
    cursor = Inline(_Marks(), '  (1, "a")', 1, 1)
    assert cursor.typed_row() == [Cell("1", 3, False), Cell("a", 6, True)]


class _Marks:
    source = "<string>"

    def __init__(self) -> None:
        self.locations: dict[Path, Location] = {}
        self.key_locations: dict[Path, Location] = {}

    def error(self, message: str, line: int, column: int, hint: str | None = None) -> SdnError:
        return SdnError(message, self.source, line, column, hint)


def test_values_inside_named_table_cells_are_located_under_the_field_name() -> None:
    doc = parse("t |a, b|\n  [1, 2], {c: 3}\n")
    assert doc.locations[("t", 0, "a", 1)] == Location("<string>", 2, 7)
    assert doc.locations[("t", 0, "b", "c")] == Location("<string>", 2, 15)
    assert doc.key_locations[("t", 0, "b", "c")] == Location("<string>", 2, 12)


def _nested(levels: int, last: str) -> str:
    """``last`` as the value of a key ``levels`` blocks deep (``levels`` lines of ``kN:``, one more blank each)."""
    return "".join(" " * i + f"k{i}:\n" for i in range(levels)) + " " * levels + last


@pytest.mark.parametrize("table", ["t |a|\n{pad}  1\n", "t |a| 1\n", "t: table{{i32}}\n{pad}  1\n",
                                   "t: table{{i32}} = [(1)]\n"])
def test_a_table_may_sit_98_blocks_deep(table: str) -> None:
    # a table's rows are two levels below it, and a cell one more: 98 + 2 is MAX_DEPTH
    assert MAX_DEPTH == 100
    value = _both_readings(_nested(98, table.format(pad=" " * 98)))
    for i in range(98):
        value = value[f"k{i}"]  # type: ignore[index]
    assert value["t"][0] in ({"a": 1}, (1,))  # type: ignore[index]
    with pytest.raises(SdnError) as deeper:
        loads(_nested(99, table.format(pad=" " * 99)))
    column = 100 if "|" in table else 103  # a named table's key, a typed table's `table{`
    assert str(deeper.value) == f"<string>:100:{column}: nesting is deeper than 100 levels\n  hint: flatten the structure"


def test_a_container_cell_counts_one_level_below_its_row() -> None:
    # top level: a cell's outermost bracket is at depth 3, so 98 brackets fit
    assert _both_readings("t |a|\n  " + "[" * 98 + "]" * 98 + "\n")
    with pytest.raises(SdnError) as deeper:
        loads("t |a|\n  " + "[" * 99 + "]" * 99 + "\n")
    assert (deeper.value.message, deeper.value.line, deeper.value.column) == ("nesting is deeper than 100 levels", 2, 101)
    # 97 blocks deep, a cell may hold scalars only; the quick reading must not take `[1]` either
    assert _both_readings(_nested(97, "t |a|\n" + " " * 97 + "  1\n"))
    with pytest.raises(SdnError) as deep_cell:
        loads(_nested(97, "t |a|\n" + " " * 97 + "  [1]\n"))
    assert (deep_cell.value.line, deep_cell.value.column) == (99, 101)  # at the 1, which would be at depth 101


@pytest.mark.parametrize(("text", "items"), [
    ("k:\n  x\n  -\n", ["x", "-"]),  # a lone `-` is a null item only in a block of `- ` items
    ("k:\n  - a\n  -\n  - b\n", ["a", None, "b"]),
    ("k:\n  - \u00a0x\n", ["\u00a0x"]),
    ("k:\n  - Xy\n", ["Xy"]),
])
def test_array_block_items(text: str, items: list[object]) -> None:
    assert _both_readings(text) == {"k": items}


def test_array_block_items_are_located_after_their_dash() -> None:
    doc = parse("k:\n  -\n  - a: 1\n    b: 2\n")
    assert doc.locations[("k", 0)] == Location("<string>", 2, 4)
    assert doc.locations[("k", 1)] == Location("<string>", 3, 5)
    assert doc.key_locations[("k", 1, "a")] == Location("<string>", 3, 5)
    assert doc.key_locations[("k", 1, "b")] == Location("<string>", 4, 5)
    assert doc.locations[("k", 1, "b")] == Location("<string>", 4, 8)


@pytest.mark.parametrize(("make", "deepest", "error"), [
    (lambda n: "a: " + "[" * n + "]" * n + "\n", 100, "1:104"),  # the value of a top-level key is at depth 1
    (lambda n: "a = " + "[" * n + "]" * n + "\n", 100, "1:105"),
    (lambda n: "a = " + "{k: " * n + "1" + "}" * n + "\n", 99, "1:405"),
    (lambda n: "k:\n  - " + "[" * n + "]" * n + "\n", 99, "2:104"),
    (lambda n: "k:\n  x\n  " + "[" * n + "]" * n + "\n", 99, "3:102"),
    (lambda n: "k:\n  - a: " + "[" * n + "]" * n + "\n", 98, "2:106"),  # the item's dict is one level more
])
def test_inline_values_nest_up_to_the_limit(make: Callable[[int], str], deepest: int, error: str) -> None:
    assert _both_readings(make(deepest))
    with pytest.raises(SdnError) as deeper:
        loads(make(deepest + 1))
    assert str(deeper.value) == f"<string>:{error}: nesting is deeper than 100 levels\n  hint: flatten the structure"


@pytest.mark.parametrize(("text", "value"), [
    ("a: \u00a0x\n", "\u00a0x"),
    ("a: Xy\n", "Xy"),
    ("a: X,y\n", "X,y"),  # a bare value runs to the end of its line, punctuation and all
    ("a: x\u00a0\n", "x\u00a0"),  # only spaces and tabs end a line's content
    ("a: 1 # x # y\n", 1),  # the first # outside quotes starts the comment
    ('a: "\\u1234"\n', "\u1234"),
    ("a: " + "1" * 4000 + "\n", int("1" * 4000)),  # the longest integer read
    ("a: " + "1" * 3999 + "_1\n", int("1" * 4000)),  # underscores do not count as digits
])
def test_statement_values(text: str, value: object) -> None:
    assert _both_readings(text) == {"a": value}


@pytest.mark.parametrize(("text", "items"), [
    ("a = [x\u00a0]\n", ["x\u00a0"]),
    ("a = [x , y]\n", ["x", "y"]),
    ("a = [aX]\n", ["aX"]),
    ("a = [X]\n", ["X"]),
])
def test_inline_array_items(text: str, items: list[object]) -> None:
    assert _both_readings(text) == {"a": items}


def test_a_bare_named_table_cell_may_end_in_a_bracket() -> None:
    assert list(_both_readings("t |a|\n  Xa]\n")["t"]) == [{"a": "Xa]"}]  # type: ignore[index]
