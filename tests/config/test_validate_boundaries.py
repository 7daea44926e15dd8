"""Checking one value against its setting at the edges: each range bound exactly, and one step past it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from gpubench.config import load_config, schema
from gpubench.config.validate import ConfigError, Origin, coerce

HERE = Origin("test.sdn:1:1")


def _load(**flags: Any) -> Any:
    return load_config(flags=flags, env={}, cwd=Path("/nonexistent"), user_files=False)


@pytest.mark.parametrize(
    ("dotted", "low", "high", "step"),
    [
        ("telemetry.interval_ms", 10, 60_000, 1),
        ("verify.memtest_fraction", 0.0, 0.95, 0.001),
        ("bench.max_sync_fraction", 0.0, 0.5, 0.001),
    ],
)
def test_range_bounds_are_inclusive_and_one_step_past_is_refused(dotted: str, low: float, high: float,
                                                                   step: float) -> None:
    section, key = dotted.split(".")
    assert getattr(getattr(_load(**{dotted: low}), section), key) == low
    assert getattr(getattr(_load(**{dotted: high}), section), key) == high
    with pytest.raises(ConfigError, match=rf"{dotted} = .* is below the minimum {low}\. Fix: use a value >= {low}"):
        _load(**{dotted: low - step})
    with pytest.raises(ConfigError, match=rf"{dotted} = .* is above the maximum {high}\. Fix: use a value <= {high}"):
        _load(**{dotted: high + step})


def test_a_minimum_only_setting_has_no_maximum() -> None:
    assert _load(**{"dl.seed": 0}).dl.seed == 0
    assert _load(**{"dl.seed": 2**63}).dl.seed == 2**63
    with pytest.raises(ConfigError, match=r"dl.seed = -1 is below the minimum 0"):
        _load(**{"dl.seed": -1})
    assert _load(**{"dl.batch_size": 1}).dl.batch_size == 1
    with pytest.raises(ConfigError, match=r"dl\.batch_size = 0 is below the minimum 1"):
        _load(**{"dl.batch_size": 0})


def test_every_item_of_a_list_is_range_checked() -> None:
    assert coerce("bench.matmul_sizes", [1, 2], tuple[int, ...], {"min": 1}, HERE) == (1, 2)
    assert coerce("bench.matmul_sizes", "1, 2,", tuple[int, ...], {"min": 1}, HERE) == (1, 2)
    assert coerce("bench.matmul_sizes", 5, tuple[int, ...], {"min": 1}, HERE) == (5,)
    items = Origin("f.sdn:1:1", item_labels=("f.sdn:1:5", "f.sdn:1:8"))
    with pytest.raises(ConfigError, match=r"^f.sdn:1:8: bench.matmul_sizes = 0 is below the minimum 1"):
        coerce("bench.matmul_sizes", [1, 0], tuple[int, ...], {"min": 1}, items)
    third = Origin("f.sdn:2:1", item_labels=("f.sdn:2:5",))
    with pytest.raises(ConfigError, match=r"^f.sdn:2:1: x = 0 is below"):  # no label of its own: the value's
        coerce("x", [3, 4, 0], tuple[int, ...], {"min": 1}, third)


def test_numbers_that_are_not_finite_or_not_numbers_are_refused() -> None:
    for raw in (math.nan, math.inf, -math.inf, "nan", "inf", "-inf"):
        with pytest.raises(ConfigError, match="is not a finite number"):
            coerce("x", raw, float, {}, HERE)
    with pytest.raises(ConfigError, match=r"x = True is not a number"):
        coerce("x", True, float, {}, HERE)
    with pytest.raises(ConfigError, match=r"x = 'fast' is not a number\. Fix: write a number, e\.g\. x: 0\.5"):
        coerce("x", "fast", float, {}, HERE)
    with pytest.raises(ConfigError, match="is not a number"):
        coerce("x", None, float, {}, HERE)
    assert coerce("x", "1_000.5", float, {}, HERE) == 1000.5
    assert coerce("x", 3, float, {}, HERE) == 3.0


def test_integers_and_booleans() -> None:
    assert coerce("a.n", "1_000", int, {}, HERE) == 1000
    assert coerce("a.n", -7, int, {}, HERE) == -7
    for raw in (True, 1.5, "1.5", "ten", None, [1]):
        with pytest.raises(ConfigError, match=r"a.n = .* is not an integer\. Fix: write a whole number, e\.g\. n: 42"):
            coerce("a.n", raw, int, {}, HERE)
    for raw, value in (("TRUE", True), (" yes ", True), ("on", True), ("1", True), ("off", False), ("0", False),
                       ("no", False), ("false", False), (False, False)):
        assert coerce("a.b", raw, bool, {}, HERE) is value
    for raw in (1, "maybe", None, "2"):
        with pytest.raises(ConfigError, match=r"is not true or false\. Fix: write b: true \(or false\)"):
            coerce("a.b", raw, bool, {}, HERE)


def test_strings_choices_and_optional_values() -> None:
    assert coerce("a.s", 1, str, {}, HERE) == "1"
    assert coerce("a.s", True, str, {}, HERE) == "true"
    for raw in ({"a": 1}, [1], None):
        with pytest.raises(ConfigError, match=r'is not a string\. Fix: write s: "text"'):
            coerce("a.s", raw, str, {}, HERE)
    assert coerce("a.s", None, str | None, {}, HERE) is None
    assert coerce("a.s", 5, int | None, {"min": 5}, HERE) == 5
    with pytest.raises(ConfigError, match=r"a.dtype = 'f33' is not allowed; allowed values: f16, f32\. Fix: write dtype: f32"):
        coerce("a.dtype", "f33", str, {"choices": ("f16", "f32")}, HERE)
    with pytest.raises(ConfigError, match=r"Fix: write one of f16, f32$"):
        coerce("a.dtype", "zzz", str, {"choices": ("f16", "f32")}, HERE)
    assert coerce("a.dtype", "f16", str, {"choices": ("f16", "f32")}, HERE) == "f16"


def test_devices_are_parsed() -> None:
    assert coerce("dl.device", "cuda:1", str, {"device": True}, HERE) == "cuda:1"
    with pytest.raises(ConfigError, match=r'^test.sdn:1:1: dl.device: .* Fix: write e\.g\. device: "cuda:0" or "cpu"'):
        coerce("dl.device", "tpu:0", str, {"device": True}, HERE)
    assert coerce("dl.device", "tpu:0", str, {}, HERE) == "tpu:0"  # only a device setting is parsed


def test_only_numbers_are_range_checked_and_the_suggestion_names_the_last_key_part() -> None:
    assert coerce("a.s", "abc", str, {"min": 1, "max": 2}, HERE) == "abc"
    assert coerce("a.b", True, bool, {"min": 5}, HERE) is True
    with pytest.raises(ConfigError, match=r"Fix: write dtype: f32$"):
        coerce("verify.x.dtype", "f3", str, {"choices": ("f16", "f32")}, HERE)


def test_effective_rows_field_docs_and_the_recorded_values() -> None:
    from gpubench.config.schema import SECTIONS, device_spec, effective_rows, field_docs

    config = _load(**{"dl.seed": 7})
    rows = {key: (value, source) for key, value, source in effective_rows(config)}
    assert rows["dl.seed"] == (7, "command line (dl.seed)")
    assert rows["dl.batch_size"] == (128, "default")
    assert len(rows) == sum(len(getattr(config, name).__dataclass_fields__) for name in SECTIONS)
    docs = {key: (default, doc) for key, default, doc in field_docs()}
    assert docs["dl.seed"] == (42, "random seed for workloads")
    assert docs.keys() == rows.keys()
    recorded = config.as_dict()
    assert list(recorded) == list(SECTIONS) and recorded["dl"]["seed"] == 7
    assert device_spec("cuda:3").name == "cuda:3"


def test_exclusive_bounds_refuse_the_bound_itself() -> None:
    unit = {"gt": 0, "lt": 1}
    assert coerce("report.alpha", 0.5, float, unit, HERE) == 0.5
    assert coerce("report.alpha", 1e-12, float, unit, HERE) == 1e-12
    for value in (0.0, 1.0, -0.5, 2.0):
        with pytest.raises(ConfigError, match=rf"^test\.sdn:1:1: report\.alpha = {value} is outside \(0, 1\)\. "
                                              r"Fix: use a value strictly inside it$"):
            coerce("report.alpha", value, float, unit, HERE)
    with pytest.raises(ConfigError, match=r"is outside \(0, inf\)"):
        coerce("a.x", 0.0, float, {"gt": 0}, HERE)
    with pytest.raises(ConfigError, match=r"is outside \(-inf, 2\.5\)"):
        coerce("a.x", 2.5, float, {"lt": 2.5}, HERE)
    assert coerce("a.x", 1e9, float, {"gt": 0}, HERE) == 1e9 and coerce("a.x", -1e9, float, {"lt": 0}, HERE) == -1e9


def test_the_fix_names_the_last_part_of_a_nested_key() -> None:
    cases = [(bool, "x", "b: true"), (int, "x", "e.g. b: 42"), (float, "x", "e.g. b: 0.5"), (str, None, 'b: "text"')]
    for tp, raw, fix in cases:
        with pytest.raises(ConfigError, match=rf"Fix: write .*{fix}"):
            coerce("s.a.b", raw if raw is not None else [1], tp, {}, HERE)
    with pytest.raises(ConfigError, match=r'Fix: write e\.g\. b: "cuda:0" or "cpu"$'):
        coerce("s.a.b", "tpu", str, {"device": True}, HERE)
    with pytest.raises(ConfigError, match=r"is not an integer\. Fix: write a whole number, e\.g\. b: 42$"):
        coerce("s.a.b", "1.5", int, {}, HERE)


def test_a_single_string_item_keeps_the_values_origin() -> None:
    labelled = Origin("f.sdn:4:1", item_labels=("f.sdn:4:9",))
    with pytest.raises(ConfigError, match=r"^f\.sdn:4:1: x = 0 is below"):  # a scalar: no item label applies
        coerce("x", "0", tuple[int, ...], {"min": 1}, labelled)


def test_exact_fixes_and_text_kept_as_written() -> None:
    assert coerce("a.s", "MixedCase", str, {}, HERE) == "MixedCase"  # only booleans are lower-cased
    with pytest.raises(ConfigError, match=r"^test\.sdn:1:1: s\.a\.b = True is not a number\. Fix: write a number, "
                                          r"e\.g\. b: 0\.5$"):
        coerce("s.a.b", True, float, {}, HERE)
    with pytest.raises(ConfigError, match=r"is not a finite number\. Fix: write a finite number$"):
        coerce("x", "inf", float, {}, HERE)


# _opt runs while the section classes are defined, at import, before mutmut switches a mutant on; so it is
# also called here, at test time, where a broken _opt shows.
def test_opt_builds_a_field_with_its_default_doc_and_constraints() -> None:
    made = schema._opt("seconds between samples", 3, min=1, device=True)
    assert made.default == 3
    assert dict(made.metadata) == {"doc": "seconds between samples", "min": 1, "device": True}
    assert schema._opt("nothing set").default is None
    assert dict(schema._opt("nothing set").metadata) == {"doc": "nothing set"}
    assert schema._opt("a tuple", ("f32",)).default == ("f32",)


@pytest.mark.parametrize("mutable", [[1], {"a": 1}, {1}])
def test_opt_refuses_a_mutable_default_saying_to_use_a_tuple(mutable: object) -> None:
    with pytest.raises(TypeError, match=r"^use tuples for sequence defaults: sections are frozen$"):
        schema._opt("a list", mutable)


def test_field_docs_reads_an_undocumented_field_as_an_empty_doc(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True)
    class Bare:
        plain: int = 4
        documented: int = schema._opt("the doc", 5)

    monkeypatch.setattr(schema, "SECTIONS", {"bare": Bare})
    assert schema.field_docs() == [("bare.plain", 4, ""), ("bare.documented", 5, "the doc")]


def test_the_fix_names_the_last_part_of_a_three_part_key() -> None:
    with pytest.raises(ConfigError, match=r"is not an integer\. Fix: write a whole number, e\.g\. n: 42$"):
        coerce("a.b.n", 1.5, int, {}, HERE)  # not an int or a string
    with pytest.raises(ConfigError, match=r"is not an integer\. Fix: write a whole number, e\.g\. n: 42$"):
        coerce("a.b.n", "ten", int, {}, HERE)  # a string that is no integer
    with pytest.raises(ConfigError, match=r"is not a number\. Fix: write a number, e\.g\. f: 0\.5$"):
        coerce("a.b.f", True, float, {}, HERE)
    with pytest.raises(ConfigError, match=r"is not a number\. Fix: write a number, e\.g\. f: 0\.5$"):
        coerce("a.b.f", "fast", float, {}, HERE)
    finite = r"^test\.sdn:1:1: a\.b\.f = 'inf' is not a finite number\. Fix: write a finite number$"
    with pytest.raises(ConfigError, match=finite):
        coerce("a.b.f", "inf", float, {}, HERE)


def test_digit_separators_are_dropped_wherever_they_are() -> None:
    # Python's int() and float() take single underscores between digits; the reader drops every one
    assert coerce("a.n", "1__000", int, {}, HERE) == 1000
    assert coerce("a.n", "_7", int, {}, HERE) == 7
    assert coerce("a.f", "1__000.5_", float, {}, HERE) == 1000.5


def test_strings_keep_their_case_and_booleans_read_as_lower_case() -> None:
    assert coerce("a.s", "MiXed Case", str, {}, HERE) == "MiXed Case"
    assert coerce("a.s", False, str, {}, HERE) == "false"


def test_an_integer_beyond_any_float_is_refused_where_it_was_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"x = 1000+ is not a finite number\. Fix: write a finite number"):
        coerce("x", 10**400, float, {}, HERE)  # float(10**400) raises OverflowError, not ValueError
    config = tmp_path / "dl.config.sdn"
    config.write_text("report:\n  regression_pct: 1" + "0" * 400 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(flags={}, env={}, cwd=tmp_path, user_files=False)
    assert f"{config}:2:19: report.regression_pct" in str(raised.value)
    assert "is not a finite number" in str(raised.value)
