"""Targets are verdicts: recorded in extra_info, shown met/missed, enforced only with --gpubench-targets=enforce."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from gpubench.bench.target_table import CaseTarget, format_targets_table
from gpubench.workloads import cases, targets

pytest_plugins = ["pytester"]

pytest.importorskip("torch")

CASES = """
from gpubench.workloads import targets

def test_slow(benchmark, device):
    benchmark(sum, range(10))
    targets.judge(benchmark, "resident speedup vs dataloader", 3.0, 2.81, "x", "a goal in this test")

def test_fast(benchmark, device):
    benchmark(sum, range(10))
    targets.judge(benchmark, "sampler CPU", 1.0, 0.25, "% of a core", "another goal", comparison="<=")
"""

MET_ONLY = """
from gpubench.workloads import targets

def test_fast(benchmark, device):
    benchmark(sum, range(10))
    targets.judge(benchmark, "sampler CPU", 1.0, 0.25, "% of a core", "another goal", comparison="<=")
"""

MISSING_FIGURE = """
from gpubench.workloads import targets

def test_forgot_its_figure(benchmark, device):
    benchmark(sum, range(10))
    targets.judge(benchmark, "speedup", 3.0, None, "x", "a goal")
"""

QUICK = ("-p", "no:cacheprovider", "-p", "no:randomly", "--gpubench-devices=cpu", "--benchmark-max-time=0.001",
         "--benchmark-min-rounds=1")


@pytest.fixture
def isolated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for var in ("GPUBENCH_DL_DEVICE", "GPUBENCH_BENCH_DEVICES", "SIMPLE_DL_DEVICE", "GPUBENCH_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(pytester.path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(pytester.path / "xdg"))
    return pytester


def test_a_missed_target_is_reported_and_the_run_exits_0(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_cases=CASES)
    result = isolated.runpytest_subprocess(*QUICK, "--benchmark-json=out.json")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([
        "*gpubench targets (--gpubench-targets=report)*",
        "case*device*target*wanted*measured*verdict*source*",
    ])
    result.stdout.fnmatch_lines(["test_slow?cpu?*cpu*resident speedup vs dataloader*>= 3 x*2.81 x*missed*"])
    result.stdout.fnmatch_lines(["test_fast?cpu?*cpu*sampler CPU*<= 1 % of a core*0.25 % of a core*met*"])
    result.stdout.fnmatch_lines(["gpubench targets: 1 missed, reported only (exit status unaffected;*"])
    saved = {b["name"]: b["extra_info"]["targets"] for b in json.loads((isolated.path / "out.json").read_text())
             ["benchmarks"]}
    (slow,) = saved["test_slow[cpu]"]
    assert slow == {"name": "resident speedup vs dataloader", "wanted": 3.0, "measured": 2.81, "unit": "x",
                    "met": False, "status": "missed", "comparison": ">=", "source": "a goal in this test", "note": ""}
    assert saved["test_fast[cpu]"][0]["met"] is True


def test_enforce_turns_a_missed_target_into_exit_1_naming_it(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_cases=CASES)
    result = isolated.runpytest_subprocess(*QUICK, "--gpubench-targets=enforce")
    result.assert_outcomes(passed=2)  # every case ran; the gate fails the session, not a case
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "gpubench target missed (enforced): test_slow[cpu] on cpu: resident speedup vs dataloader: "
        "wanted >= 3 x, measured 2.81 x (target from a goal in this test)",
    ])
    result.stdout.no_fnmatch_line("gpubench target missed (enforced): test_fast*")


def test_enforce_with_every_target_met_exits_0(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_cases=MET_ONLY)
    result = isolated.runpytest_subprocess(*QUICK, "--gpubench-targets=enforce")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*gpubench targets (--gpubench-targets=enforce)*", "test_fast?cpu?*met*"])
    result.stdout.no_fnmatch_line("*missed*")


def test_under_benchmark_disable_targets_are_not_measured_and_never_enforced(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_cases=MISSING_FIGURE)
    result = isolated.runpytest_subprocess(*QUICK, "--benchmark-disable", "--gpubench-targets=enforce")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["test_forgot_its_figure?cpu?*speedup*>= 3 x*-*not measured: --benchmark-disable*"])


def test_a_timed_case_without_its_figure_fails_loudly(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_cases=MISSING_FIGURE)
    result = isolated.runpytest_subprocess(*QUICK)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: target 'speedup': the case ran timed but its figure is missing*"])


def test_bad_mode_is_a_usage_error(isolated: pytest.Pytester) -> None:
    isolated.makepyfile(test_cases=MET_ONLY)
    result = isolated.runpytest_subprocess("-p", "no:cacheprovider", "--gpubench-targets=strict")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gpubench-targets: invalid choice: 'strict'*"])


# --- the pieces, without pytest in between ---------------------------------------------------------------


def test_target_verdicts_and_round_trip() -> None:
    at_least = targets.Target("speedup", 3.0, 2.81, "x", "goal")
    at_most = targets.Target("overhead", 1.0, 0.4, "%", "goal", comparison="<=")
    unmeasured = targets.Target("share", 0.7, None, "share", "goal", note="too few seeds")
    assert (at_least.status, at_most.status, unmeasured.status) == ("missed", "met", "not measured")
    assert unmeasured.met is None and "not measured (too few seeds)" in unmeasured.describe()
    for t in (at_least, at_most, unmeasured):
        assert targets.Target.from_dict(t.as_dict()) == t
    assert targets.missed([at_least, at_most, unmeasured]) == [at_least]
    with pytest.raises(ValueError, match="comparison '<' is not one of >=, <="):
        targets.Target("x", 1.0, 1.0, "", "", comparison="<")


def test_judge_records_in_extra_info_and_refuses_a_missing_timed_figure() -> None:
    timed = SimpleNamespace(disabled=False, extra_info={})
    targets.judge(timed, "speedup", 3, 4.5, "x", "goal")
    targets.judge(timed, "share", 0.7, None, "share", "goal", missing="judged at 500 epochs")
    assert [t["status"] for t in timed.extra_info["targets"]] == ["met", "not measured"]
    assert timed.extra_info["targets"][1]["note"] == "judged at 500 epochs"
    with pytest.raises(RuntimeError, match="'speedup': the case ran timed but its figure is missing"):
        targets.judge(timed, "speedup", 3, None, "x", "goal")
    untimed = SimpleNamespace(disabled=True, extra_info={})
    assert targets.judge(untimed, "speedup", 3, None, "x", "goal").note == targets.DISABLED_NOTE


def test_a_timed_run_without_timing_fails_instead_of_skipping_its_figures() -> None:
    assert cases.timed_median(SimpleNamespace(disabled=True, stats=None), "case") is None
    with pytest.raises(RuntimeError, match="matmul-f32-64: the benchmark ran but recorded no timing"):
        cases.timed_median(SimpleNamespace(disabled=False, stats=None), "matmul-f32-64")


def test_targets_table_aligns_and_explains_what_was_not_measured() -> None:
    rows = [
        CaseTarget("test_mnist_epoch[resident-cpu]", "cpu", targets.Target("speedup", 3.0, 2.81, "x", "goal")),
        CaseTarget("test_xor[cpu]", "cpu", targets.Target("share", 0.7, None, "share", "ref", note="8 seeds")),
    ]
    header, rule, first, second = format_targets_table(rows)
    assert header.split() == ["case", "device", "target", "wanted", "measured", "verdict", "source"]
    assert len(rule) == len(header)
    assert first.index("missed") == second.index("not measured: 8 seeds")
    assert ">= 3 x" in first and "2.81 x" in first
