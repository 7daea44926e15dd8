"""``pytest --benchmark-compare --gpubench-compare-fail=median:10%`` (issue 12): each case judged against the
saved run by the report's noise-aware comparison; only a significant slowdown beyond 10% fails the run.

The rounds are made exact with a fake clock (``--benchmark-timer=fakeclock.now``) that only the timed
function advances, by durations the test chooses, so every run sees the same numbers on any machine."""

from __future__ import annotations

import random

import pytest

from gpubench.bench.compare_gate import CaseVerdict, judge, parse_threshold
from gpubench.comparison import NoiseRule

pytest_plugins = ["pytester"]

FAKECLOCK = """
_now = [0.0]


def now():
    return _now[0]


def advance(seconds):
    _now[0] += seconds
"""

CASES = """
import json
import os

import fakeclock

ROUNDS = json.loads(os.environ["FAKE_ROUNDS"])


def _timed(benchmark, durations):
    steps = iter(durations)
    benchmark.pedantic(lambda: fakeclock.advance(next(steps)), rounds=len(durations), iterations=1,
                       warmup_rounds=0)


def test_steady(benchmark, device):
    _timed(benchmark, ROUNDS["steady"])


def test_changed(benchmark, device):
    _timed(benchmark, ROUNDS["changed"])
"""


def _rounds(median: float, seed: int, n: int = 15, spread: float = 0.02) -> list[float]:
    rng = random.Random(seed)
    return [median * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "dl.config.sdn").write_text("dl:\n  device: cpu\n", encoding="utf-8")
    pytester.makepyfile(fakeclock=FAKECLOCK, test_cases=CASES)
    return pytester


def _run(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, changed: float, seed: int,
         *options: str) -> pytest.RunResult:
    import json

    rounds = {"steady": _rounds(0.010, seed), "changed": _rounds(0.010 * changed, seed + 100)}
    monkeypatch.setenv("FAKE_ROUNDS", json.dumps(rounds))
    return project.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-timer=fakeclock.now",
                                        "--benchmark-storage=store", *options)


def _saved_baseline(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(project, monkeypatch, 1.0, 1, "--benchmark-save=base", "--benchmark-save-data").assert_outcomes(passed=2)


GATE = ("--benchmark-compare=0001", "--gpubench-compare-fail=median:10%")


def test_the_same_code_again_is_within_noise_and_passes(project: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _saved_baseline(project, monkeypatch)
    result = _run(project, monkeypatch, 1.0, 2, *GATE)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*gpubench compare (--gpubench-compare-fail=median:10%, against the run of *",
        "test_cases.py::test_changed[[]cpu[]]: within noise (±*%): ×*[[]*–*[]] (99%), p=*",
        "test_cases.py::test_steady[[]cpu[]]: within noise (±*%): ×*[[]*–*[]] (99%), p=*",
        "gpubench compare: no case significantly slower by more than 10%",
    ])


def test_a_slowed_case_fails_the_run_with_its_ratio_and_interval(project: pytest.Pytester,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _saved_baseline(project, monkeypatch)
    result = _run(project, monkeypatch, 1.3, 2, *GATE)
    assert result.ret == 1, result.stdout.str()
    result.assert_outcomes(passed=2)  # the cases themselves passed; the gate failed the run
    result.stdout.fnmatch_lines([
        "test_cases.py::test_changed[[]cpu[]]: slower +3*%: ×1.3* [[]1.2*–1.3*[]] (99%), p<1e-4",
        "test_cases.py::test_steady[[]cpu[]]: within noise*",
        "gpubench compare: 1 case(s) significantly slower by more than 10%: test_cases.py::test_changed[[]cpu[]]*",
    ])


def test_a_slowdown_within_the_threshold_passes(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _saved_baseline(project, monkeypatch)
    result = _run(project, monkeypatch, 1.05, 2, *GATE)
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["test_cases.py::test_changed[[]cpu[]]: within threshold (+*%, limit 10%)*"])


def test_the_gate_needs_a_run_to_compare_with(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(project, monkeypatch, 1.0, 1, "--gpubench-compare-fail=median:10%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gpubench-compare-fail needs --benchmark-compare*"])


@pytest.mark.parametrize("expr", ["median:10", "min:5%", "median:%", "10%"])
def test_only_median_percentages_are_understood(expr: str) -> None:
    with pytest.raises(pytest.UsageError, match="expected median:N%"):
        parse_threshold(expr)


def test_thresholds_parse() -> None:
    assert parse_threshold("median:10%") == 10.0
    assert parse_threshold(" median : 2.5 % ") == 2.5


def test_a_case_missing_from_the_saved_run_is_not_judged() -> None:
    saved = {"benchmarks": [{"fullname": "t.py::old", "stats": {"median": 1.0, "iqr": 0.01, "rounds": 9}}]}
    verdicts = judge({"t.py::new": tuple(_rounds(1.0, 3))}, saved, 10.0, NoiseRule())
    assert verdicts == [CaseVerdict("t.py::new", None)]
    assert verdicts[0].describe() == "t.py::new: not in the compared run (nothing to compare)"
