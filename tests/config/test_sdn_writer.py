"""SDN 1.0 writer: layout, quoting, round trips and what it refuses to write."""

from __future__ import annotations

import math
from typing import Any

import pytest

from gpubench.config import sdn
from gpubench.config.sdn import Table, dumps, loads


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


# "1a", "my-key", "a b" and "é" were rejected; the reader now takes the Simple parser's keys (bare where it
# can, quoted otherwise: parser.spl's _sdn_parse_block reads any text before ':'), so the writer writes them.
@pytest.mark.parametrize("key", ["", 3])
def test_dumps_rejects_non_identifier_keys(key: Any) -> None:
    with pytest.raises(ValueError, match="SDN keys are non-empty strings"):
        dumps({key: 1})
    with pytest.raises(ValueError, match="SDN keys are non-empty strings"):
        dumps({"ok": [{key: 1}]})


@pytest.mark.parametrize(
    ("key", "written"),
    [("1a", "1a"), ("my-key", "my-key"), ("lib.crypto", "lib.crypto"), (".text", ".text"), ("0", "0"),
     ("é", "é"), ("a b", '"a b"'), ("-x", '"-x"'), ('q"uote', '"q\\"uote"'), ("a:b", '"a:b"')],
)
def test_dumps_writes_any_key_bare_or_quoted(key: str, written: str) -> None:
    text = dumps({key: 1, "n": {key: [{key: 2}]}})
    assert text.startswith(f"{written}: 1\n")
    assert loads(text) == {key: 1, "n": {key: [{key: 2}]}}


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
