"""``--gpubench-compare-fail=median:N%``: a noise-aware regression gate for ``pytest --benchmark-compare``.

pytest-benchmark's own ``--benchmark-compare-fail=median:5%`` fails on any median 5% slower, however noisy
the rounds. This gate judges each case against the saved run pytest-benchmark compares with by
:func:`gpubench.comparison.compare` (Mann–Whitney U on the raw rounds, bootstrap interval of the ratio of
medians; the stats block when a side saved no rounds), prints each case's verdict with the ratio and its
interval, and makes the run exit 1 only for a case that is significantly slower by more than ``N%``.

The saved run comes through pytest-benchmark's public ``pytest_benchmark_compare_machine_info`` hook, the
current rounds from each case's ``benchmark.stats``; nothing here reads pytest-benchmark's internals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from gpubench.comparison import Comparison, NoiseRule, Rounds, compare

OPTION = "--gpubench-compare-fail"
_EXPR = re.compile(r"^\s*median\s*:\s*([0-9]+(?:\.[0-9]*)?)\s*%\s*$")
_THRESHOLD_KEY = pytest.StashKey[float]()
_COMPARED_KEY = pytest.StashKey[list[Mapping[str, Any]]]()
_CURRENT_KEY = pytest.StashKey[dict[str, tuple[float, ...]]]()
_VERDICTS_KEY = pytest.StashKey[list["CaseVerdict"]]()


def add_option(group: Any) -> None:
    group.addoption(
        OPTION,
        metavar="median:N%",
        default=None,
        help="with --benchmark-compare: exit 1 when a case is significantly slower (Mann-Whitney U on the "
        "saved rounds, bootstrap interval of the ratio of medians) by more than N%; prints each case's verdict",
    )


def parse_threshold(expr: str) -> float:
    """``median:10%`` → 10.0; anything else is a usage error saying what is understood."""
    match = _EXPR.match(expr)
    if not match:
        msg = (f"{OPTION}={expr}: expected median:N% (for example median:10%): the comparison is on the "
               "medians of the rounds, with their noise")
        raise pytest.UsageError(msg)
    return float(match.group(1))


@dataclass(frozen=True)
class CaseVerdict:
    """One case against its saved self; ``comparison`` None when the saved run has no such case."""

    name: str
    comparison: Comparison | None

    def describe(self) -> str:
        if self.comparison is None:
            return f"{self.name}: not in the compared run (nothing to compare)"
        return f"{self.name}: {self.comparison.describe()}"


def configure(config: pytest.Config) -> None:
    """Read the option; it needs ``--benchmark-compare`` (else there is no saved run to judge against)."""
    expr = config.getoption(OPTION, default=None)
    if not expr:
        return
    threshold = parse_threshold(str(expr))
    if not config.getoption("benchmark_compare", default=None):
        msg = f"{OPTION} needs --benchmark-compare[=RUN]: the saved run to compare with"
        raise pytest.UsageError(msg)
    config.stash[_THRESHOLD_KEY] = threshold


def remember(config: pytest.Config, compared_benchmark: Any) -> None:
    """Keep a saved run pytest-benchmark compares with (the hook runs before :func:`configure`)."""
    if isinstance(compared_benchmark, Mapping):
        config.stash.setdefault(_COMPARED_KEY, []).append(compared_benchmark)


def record(item: pytest.Item) -> None:
    """Keep the rounds of the case that just ran (its ``benchmark`` fixture), when the gate is on."""
    if _THRESHOLD_KEY not in item.config.stash:
        return
    stats = getattr(getattr(item, "funcargs", {}).get("benchmark"), "stats", None)
    data = getattr(getattr(stats, "stats", None), "data", None)
    name = getattr(stats, "fullname", None)
    if name and data:
        item.config.stash.setdefault(_CURRENT_KEY, {})[str(name)] = tuple(float(v) for v in data)


def noise_rule(cfg: Any) -> NoiseRule:
    """The report's significance level (``report.alpha`` of the gpubench configuration ``cfg``)."""
    alpha = getattr(getattr(cfg, "report", None), "alpha", None)
    return NoiseRule(alpha=float(alpha)) if isinstance(alpha, float) and 0 < alpha < 1 else NoiseRule()


def judge(
    current: Mapping[str, tuple[float, ...]], saved: Mapping[str, Any], threshold_pct: float, rule: NoiseRule
) -> list[CaseVerdict]:
    """Each current case against the saved run's case of the same full name."""
    before = {str(b.get("fullname")): b for b in saved.get("benchmarks") or [] if isinstance(b, Mapping)}
    verdicts = []
    for name, data in sorted(current.items()):
        old = before.get(name)
        stats = old.get("stats") if old else None
        if not isinstance(stats, Mapping):
            verdicts.append(CaseVerdict(name, None))
            continue
        result = compare(Rounds.from_stats(stats), Rounds.from_data(data), threshold_pct, rule,
                         names=("compared run", "this run"))
        verdicts.append(CaseVerdict(name, result))
    return verdicts


def enforce(session: pytest.Session, cfg: Any) -> None:
    """Judge every case (after pytest-benchmark's own save and comparison); a flagged one fails the run."""
    config = session.config
    if _THRESHOLD_KEY not in config.stash:
        return
    compared = config.stash.get(_COMPARED_KEY, [])
    if not compared:
        config.stash[_VERDICTS_KEY] = []
        return
    current: dict[str, tuple[float, ...]] = config.stash.get(_CURRENT_KEY, {})
    verdicts = judge(current, compared[-1], config.stash[_THRESHOLD_KEY],
                     noise_rule(cfg))
    config.stash[_VERDICTS_KEY] = verdicts
    if any(v.comparison is not None and v.comparison.flagged for v in verdicts) and \
            session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def print_verdicts(terminalreporter: Any, config: pytest.Config) -> None:
    if _THRESHOLD_KEY not in config.stash or _VERDICTS_KEY not in config.stash:
        return
    threshold = config.stash[_THRESHOLD_KEY]
    compared = config.stash.get(_COMPARED_KEY, [])
    when = compared[-1].get("datetime", "?") if compared else None
    terminalreporter.write_sep("-", f"gpubench compare ({OPTION}=median:{threshold:g}%, against the run of {when})"
                               if when else f"gpubench compare ({OPTION}=median:{threshold:g}%)")
    if not compared:
        terminalreporter.write_line("gpubench compare: no saved run to compare with; nothing judged", yellow=True)
        return
    verdicts = config.stash[_VERDICTS_KEY]
    for verdict in verdicts:
        flagged = verdict.comparison is not None and verdict.comparison.flagged
        terminalreporter.write_line(verdict.describe(), red=flagged, bold=flagged)
    slower = [v.name for v in verdicts if v.comparison is not None and v.comparison.flagged]
    if slower:
        terminalreporter.write_line(
            f"gpubench compare: {len(slower)} case(s) significantly slower by more than {threshold:g}%: "
            f"{', '.join(slower)} (exit status 1)", red=True, bold=True)
    else:
        terminalreporter.write_line(f"gpubench compare: no case significantly slower by more than {threshold:g}%",
                                    green=True)
