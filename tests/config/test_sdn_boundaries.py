"""Typed-table cells at the edges of their column types: every integer type at min-1, min, max, max+1,
floats at and beyond ±max (f32's check is on the magnitude: -1e39 is refused like 1e39)."""

from __future__ import annotations

import pytest

from gpubench.config.sdn import SdnError, loads
from gpubench.config.sdn.values import INT_RANGES

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
