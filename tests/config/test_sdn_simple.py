"""The Simple project's own spellings (ormastes/simple, doc/spec/sdn.md and src/lib/common/sdn/parser.spl),
written here from the spec and the parser: keys, `- key: value` lists, multi-line inline values, look-alikes."""

from __future__ import annotations

import pytest

from gpubench.config.sdn import SdnError, dumps, loads, parse


def error_of(text: str) -> SdnError:
    with pytest.raises(SdnError) as info:
        parse(text, "f.sdn")
    return info.value


# --- no silent misparse ----------------------------------------------------------------------------------


def test_a_block_whose_first_key_has_a_dot_is_a_dict() -> None:
    # Was read as the list ['results.sdn: x'].
    assert loads("outputs:\n  results.sdn: x\n  log.txt: y\n") == {"outputs": {"results.sdn": "x", "log.txt": "y"}}


def test_key_value_lines_never_become_list_items() -> None:
    err = error_of("a:\n  first\n  my key: 1\n")
    assert (err.message, err.line, err.column) == ("invalid key 'my key'", 3, 3)
    assert error_of("a:\n  first\n  x=1\n").message == "`key: value` entry inside an array block"


# --- keys ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["run-config", "lib.crypto", ".text", "0", "42", "a/b", "x_1", "v1.2-rc", "é"])
def test_keys_the_simple_parser_reads(key: str) -> None:
    assert loads(f"{key}: 1\nblock:\n  {key}: 2\ninline = {{{key}: 3}}\n") == {
        key: 1,
        "block": {key: 2},
        "inline": {key: 3},
    }


def test_quoted_keys_hold_anything() -> None:
    assert loads('"my key": 1\n"a:b" = [1]\n"q\\"t" |x|\n  1\n') == {"my key": 1, "a:b": [1], 'q"t': [{"x": 1}]}
    assert loads('d = {"a b": 1, "": 2}') == {"d": {"a b": 1, "": 2}}


def test_key_locations_of_new_shapes() -> None:
    doc = parse("run-config:\n  lib.crypto: on\n", "f.sdn")
    assert doc.key_locations[("run-config", "lib.crypto")].column == 3
    assert doc.locations[("run-config", "lib.crypto")].column == 15


# --- `- key: value` lists ---------------------------------------------------------------------------------


def test_dash_items_of_dicts_with_continuation_lines() -> None:
    text = (
        "steps:\n"
        "  - name: build\n"
        "    run: make\n"
        "    env:\n"
        "      CC: clang\n"
        "\n"
        "    # a comment between keys\n"
        "  - name: test\n"
        "    args = [-q, -x]\n"
        "  - plain\n"
        "  -\n"
    )
    assert loads(text) == {
        "steps": [
            {"name": "build", "run": "make", "env": {"CC": "clang"}},
            {"name": "test", "args": ["-q", "-x"]},
            "plain",
            None,
        ]
    }
    doc = parse(text, "f.sdn")
    assert (doc.locations[("steps", 1)].line, doc.locations[("steps", 1)].column) == (8, 5)
    assert doc.key_locations[("steps", 0, "run")].line == 3


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("a:\n  - name: x\n     run: y\n", (3, 6)),  # continuation not aligned with the first key
        ("a:\n  - name: x\n   run: y\n", (3, 4)),
        ("a:\n  - x\n    y\n", (3, 5)),  # a plain item has no continuation lines
    ],
)
def test_misaligned_continuation_lines_are_errors(text: str, position: tuple[int, int]) -> None:
    err = error_of(text)
    assert (err.line, err.column) == position


def test_duplicate_keys_inside_one_dash_item_but_not_across_items() -> None:
    assert loads("a:\n  - k: 1\n  - k: 2\n") == {"a": [{"k": 1}, {"k": 2}]}
    assert error_of("a:\n  - k: 1\n    k: 2\n").message.startswith("duplicate key 'k'")


def test_top_level_dash_item_names_the_construct() -> None:
    err = error_of("- a\n- b\n")
    assert err.message == "`- item` line where a `key: value` line is expected"


# --- inline values over several lines ---------------------------------------------------------------------


def test_multi_line_arrays_with_and_without_commas() -> None:
    text = "features = [\n    auth,\n    logging\n    metrics,   # trailing comment\n]\nnext: 1\n"
    assert loads(text) == {"features": ["auth", "logging", "metrics"], "next": 1}


def test_multi_line_dicts_nested() -> None:
    text = 'server: {\n  host: localhost\n  ports: [80,\n          443]\n  tls: {on: true,\n        cert: "a, b"}\n}\n'
    assert loads(text) == {"server": {"host": "localhost", "ports": [80, 443], "tls": {"on": True, "cert": "a, b"}}}


def test_multi_line_values_in_array_blocks_and_locations() -> None:
    doc = parse("users:\n  {name: a,\n   role: b}\n  {name: c, role: d}\n", "f.sdn")
    assert doc.value == {"users": [{"name": "a", "role": "b"}, {"name": "c", "role": "d"}]}
    role = doc.locations[("users", 0, "role")]
    assert (role.line, role.column) == (3, 10)


def test_unterminated_multi_line_value_points_at_its_opener() -> None:
    err = error_of("a = [1,\n  2\nb: 3\n")
    assert (err.message, err.line, err.column) == ("unterminated '[': no matching ']' up to line 2", 1, 5)
    err = error_of("a = {x: 1,\n  y: [2\n")
    assert (err.line, err.column) == (2, 6)


def test_errors_inside_a_multi_line_value_name_their_line() -> None:
    err = error_of("a = [\n  1,\n  2}\n]\n")
    assert (err.message, err.line, err.column) == ("'}' does not close the '[' at column 5", 3, 4)


# --- look-alikes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("[dl]\ndevice = 1\n", "TOML section header '[dl]' is not SDN", (1, 1)),
        ("a: 1\n[[runs]]\n", "TOML section header '[[runs]]' is not SDN", (2, 1)),
        ("note: |\n  text\n", "YAML block scalar '|' is not SDN", (1, 7)),
        ("note: >-\n  text\n", "YAML block scalar '>-' is not SDN", (1, 7)),
        ('note: """text"""\n', 'triple-quoted string (""") is not SDN', (1, 7)),
        ('{"dl": {"device": "cuda:1"}}\n', "a JSON document is not SDN", (1, 1)),
        ("dl:\\n  device: cuda:1\n", "literal \\n (a backslash and an n, not a line break)", (1, 4)),
        ("dl:\n  device: cuda:1\\n  dtype: f16\n", "literal \\n (a backslash and an n, not a line break)", (2, 17)),
    ],
)
def test_look_alikes_name_their_real_cause(text: str, message: str, position: tuple[int, int]) -> None:
    err = error_of(text)
    assert err.message == message
    assert (err.line, err.column) == position
    assert err.hint


def test_toml_scalar_assignment_hint() -> None:
    assert "is TOML" in (error_of('device = "cuda:1"').hint or "")


def test_quoted_backslash_n_is_still_an_escape() -> None:
    assert loads('a: "x\\ny"') == {"a": "x\ny"}


# --- the writer ------------------------------------------------------------------------------------------


def test_writer_round_trips_simple_keys_and_dash_strings() -> None:
    value = {"run-config": {"lib.crypto": ["-", "- x", "a: b"]}, "a b": 1, "0": {".text": None}}
    assert loads(dumps(value)) == value
