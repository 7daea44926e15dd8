"""SDN 1.0 reader: every construct of the format summary, scalars, typed cells, locations and files.

Its errors are tested in test_sdn_errors.py, the writer in test_sdn_writer.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpubench.config.sdn import Document, Location, SdnError, Table, dumps, load, loads, parse

DATA = Path(__file__).parents[1] / "data" / "sdn"


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

