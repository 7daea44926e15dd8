"""``report.alpha`` and ``report.fdr`` in dl.config.sdn (issue 17, item E): strictly between 0 and 1, a bad
value named by file:line:column; the report and the ``--gpubench-compare-fail`` gate take them as defaults,
``gpubench report --alpha/--fdr`` still win."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpubench.bench.compare_gate import noise_rule as gate_rule
from gpubench.config import ConfigError, load_config
from gpubench.report.build import noise_rule


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "dl.config.sdn"
    path.write_text(text, encoding="utf-8")
    return load_config(path, cwd=tmp_path, user_files=False)


@pytest.mark.parametrize(
    ("key", "value", "column"),
    [("alpha", "1.5", 10), ("alpha", "0", 10), ("alpha", "1", 10), ("fdr", "-0.1", 8), ("fdr", "1.0", 8)],
)
def test_a_probability_outside_0_and_1_names_its_position(tmp_path: Path, key: str, value: str, column: int) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"report:\n  {key}: {value}\n")
    text = str(caught.value)
    assert text.startswith(f"{tmp_path / 'dl.config.sdn'}:2:{column}: report.{key} = ")
    assert "is outside (0, 1)" in text


def test_the_defaults_are_the_comparison_rule_s(tmp_path: Path) -> None:
    report = _load(tmp_path, "dl:\n  device: cpu\n").report  # type: ignore[attr-defined]
    assert (report.alpha, report.fdr) == (0.01, 0.05)


def test_the_report_and_the_gate_take_them_as_defaults(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "report:\n  alpha: 0.05\n  fdr: 0.1\n")
    rule = noise_rule(cfg.report)  # type: ignore[attr-defined]
    assert (rule.alpha, rule.fdr) == (0.05, 0.1)
    flags = noise_rule(cfg.report, 0.001, 0.2)  # type: ignore[attr-defined]  # --alpha, --fdr win
    assert (flags.alpha, flags.fdr) == (0.001, 0.2)
    assert gate_rule(cfg).alpha == 0.05
