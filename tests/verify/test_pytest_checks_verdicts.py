"""checks/_verdicts.py: the one assertion of `pytest checks` fails loudly on a check missing from the report."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from gpubench.verify.verdicts import CheckResult, Verdict

_VERDICTS = Path(__file__).resolve().parents[2] / "checks" / "_verdicts.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpubench_checks_verdicts", _VERDICTS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Report:
    def __init__(self, *rows: CheckResult) -> None:
        self.results = rows

    def find(self, device: str, check: str) -> CheckResult | None:
        return next((r for r in self.results if r.device == device and r.check == check), None)


def test_a_check_missing_from_the_report_fails_naming_it() -> None:
    verdicts = _load()
    report = _Report(CheckResult("config", "cpu", Verdict.PASS))
    with pytest.raises(pytest.fail.Exception, match=r"cpu compute: missing from the verify report"):
        verdicts.assert_verdict(report, "cpu", "compute")


def test_skip_skips_with_its_reason_and_fail_fails_with_its_remedy() -> None:
    verdicts = _load()
    report = _Report(
        CheckResult("compute", "cpu", Verdict.SKIP, message="no GPU here"),
        CheckResult("memory_health", "cpu", Verdict.FAIL, message="2 retired pages", remedy="drain the node"),
        CheckResult("config", "cpu", Verdict.WARN, message="odd"),
        CheckResult("software", "cpu", Verdict.PASS),
    )
    with pytest.raises(pytest.skip.Exception, match="no GPU here"):
        verdicts.assert_verdict(report, "cpu", "compute")
    with pytest.raises(AssertionError, match="cpu memory_health: 2 retired pages Fix: drain the node"):
        verdicts.assert_verdict(report, "cpu", "memory_health")
    verdicts.assert_verdict(report, "cpu", "config")  # WARN passes
    verdicts.assert_verdict(report, "cpu", "software")
