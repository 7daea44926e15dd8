"""The run-to-run spread test at its edges: closed forms of Student's t, the fewest runs, a spread of zero,
and the gate's boundaries (a p-value exactly at alpha or at the FDR cutoff)."""

from __future__ import annotations

import dataclasses
import math
import statistics

import pytest

from gpubench.report.compare import Comparison
from gpubench.report.spread import (
    MIN_SPREAD_RUNS,
    SPREAD_RUNS,
    RunSpread,
    gate,
    regularized_beta,
    run_cutoff,
    run_to_run,
    student_t_two_sided,
)


def t_two_sided(t: float, df: float) -> float:
    """``P(|T| >= |t|)`` by Simpson's rule over the t density: an oracle independent of the beta function."""
    norm = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    steps, end = 20_000, abs(t)
    h = end / steps
    total = sum((1 if i in (0, steps) else 4 if i % 2 else 2) * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2)
                for i in range(steps + 1))
    return 1.0 - 2.0 * norm * total * h / 3.0


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, -1.0, 2.5, 7.0, 40.0])
def test_student_t_matches_its_closed_forms(t: float) -> None:
    u = abs(t) / math.sqrt(3.0)
    assert student_t_two_sided(t, 1.0) == pytest.approx(1.0 - 2.0 / math.pi * math.atan(abs(t)), rel=1e-12, abs=1e-15)
    assert student_t_two_sided(t, 2.0) == pytest.approx(1.0 - abs(t) / math.sqrt(t * t + 2.0), rel=1e-12, abs=1e-15)
    assert student_t_two_sided(t, 3.0) == pytest.approx(
        1.0 - 2.0 / math.pi * (u / (1.0 + u * u) + math.atan(u)), rel=1e-11, abs=1e-15
    )


@pytest.mark.parametrize(("t", "df"), [(0.5, 1.2), (1.7, 1.6), (3.0, 2.8), (2.2, 7.6), (0.1, 30.0), (4.0, 0.7)])
def test_student_t_on_fractional_degrees_of_freedom(t: float, df: float) -> None:
    assert student_t_two_sided(t, df) == pytest.approx(t_two_sided(t, df), rel=1e-8)


def test_student_t_at_nan_and_infinity() -> None:
    assert student_t_two_sided(math.nan, 3.0) == 1.0
    assert student_t_two_sided(math.inf, 3.0) == 0.0
    assert student_t_two_sided(-math.inf, 3.0) == 0.0
    assert student_t_two_sided(0.0, 5.0) == 1.0


@pytest.mark.parametrize("x", [0.05, 0.3, 0.5, 0.62, 0.9, 0.999])
def test_regularized_beta_matches_its_closed_forms(x: float) -> None:
    assert regularized_beta(x, 1.0, 1.0) == pytest.approx(x, rel=1e-12)
    assert regularized_beta(x, 3.0, 1.0) == pytest.approx(x**3, rel=1e-12)
    assert regularized_beta(x, 1.0, 4.0) == pytest.approx(1.0 - (1.0 - x) ** 4, rel=1e-12)
    assert regularized_beta(x, 2.5, 0.5) == pytest.approx(1.0 - regularized_beta(1.0 - x, 0.5, 2.5), rel=1e-12)
    # I_x(2, 2) = 3x^2 - 2x^3: x = 0.5 sits exactly on the (a + 1) / (a + b + 2) switch
    assert regularized_beta(x, 2.0, 2.0) == pytest.approx(3 * x**2 - 2 * x**3, rel=1e-12)


def test_regularized_beta_outside_the_open_interval() -> None:
    assert regularized_beta(0.0, 2.0, 3.0) == 0.0
    assert regularized_beta(-0.5, 2.0, 3.0) == 0.0
    assert regularized_beta(1.0, 2.0, 3.0) == 1.0
    assert regularized_beta(1.5, 2.0, 3.0) == 1.0


def test_regularized_beta_needs_many_terms_for_large_parameters() -> None:
    # I_0.5(a, a) = 0.5 by symmetry; with a = 200 the fraction needs dozens of terms to converge
    assert regularized_beta(0.5, 200.0, 200.0) == pytest.approx(0.5, rel=1e-10)
    assert regularized_beta(0.45, 200.0, 200.0) == pytest.approx(1.0 - regularized_beta(0.55, 200.0, 200.0), rel=1e-10)
    assert regularized_beta(0.98, 200.0, 1.0) == pytest.approx(0.98**200, rel=1e-10)


def expected_spread(previous: list[float], latest: float) -> RunSpread:
    """The module docstring's formula, written out again."""
    logs = [math.log(m) for m in previous]
    centre = statistics.median(logs)
    spread = 1.4826 * statistics.median(abs(v - centre) for v in logs)
    change = math.log(latest) - centre
    t = change / (spread * math.sqrt(1.0 + math.pi / (2.0 * len(logs))))
    return RunSpread(len(logs), spread * 100, (latest / math.exp(centre) - 1.0) * 100,
                     t_two_sided(t, 0.4 * (len(logs) - 1)))


@pytest.mark.parametrize("previous", [
    [1.00, 1.02, 0.99, 1.01],  # the fewest runs: df = 0.4 * 3 = 1.2
    [1.00, 1.02, 0.99, 1.01, 1.03],  # odd count, df = 1.6
    [1.0, 1.01, 1.02, 0.98, 0.97, 1.0, 1.04, 0.99, 1.01, 1.0],
])
@pytest.mark.parametrize("latest", [1.0, 1.05, 1.2, 0.9])
def test_run_to_run_is_the_documented_formula(previous: list[float], latest: float) -> None:
    got = run_to_run(previous, latest)
    want = expected_spread(previous, latest)
    assert got is not None
    assert got.runs == want.runs
    assert got.spread_pct == pytest.approx(want.spread_pct, rel=1e-4)  # 1.4826 written to 5 digits here
    assert got.change_pct == pytest.approx(want.change_pct, rel=1e-9, abs=1e-12)
    assert got.p_value == pytest.approx(want.p_value, rel=1e-3, abs=1e-12)


def test_run_to_run_needs_min_spread_runs_positive_finite_medians() -> None:
    assert MIN_SPREAD_RUNS == 4 and SPREAD_RUNS == 20
    assert run_to_run([1.0, 1.1, 0.9], 1.0) is None
    assert run_to_run([1.0, 1.1, 0.9, 0.0, -1.0, math.nan, math.inf], 1.0) is None  # three usable
    usable = run_to_run([1.0, 1.1, 0.9, 1.05, 0.0, math.inf], 1.0)
    assert usable is not None and usable.runs == 4
    assert run_to_run([1.0, 1.1, 0.9, 1.05], 0.0) is None
    assert run_to_run([1.0, 1.1, 0.9, 1.05], -1.0) is None
    assert run_to_run([1.0, 1.1, 0.9, 1.05], math.nan) is None


def test_run_to_run_uses_only_the_last_spread_runs() -> None:
    recent = [1.0 + 0.01 * (i % 5) for i in range(SPREAD_RUNS)]
    got = run_to_run([50.0, 60.0, 70.0, *recent], 1.0)  # three wild old runs fall outside the window
    assert got == run_to_run(recent, 1.0)
    assert got is not None and got.runs == SPREAD_RUNS


def test_run_to_run_with_no_spread_at_all() -> None:
    same = run_to_run([2.0, 2.0, 2.0, 2.0, 2.0], 2.0)
    assert same == RunSpread(5, 0.0, 0.0, 1.0)
    slower = run_to_run([2.0, 2.0, 2.0, 2.0, 2.0], 2.2)
    assert slower is not None and slower.p_value == 0.0 and slower.spread_pct == 0.0
    assert slower.change_pct == pytest.approx(10.0)


def test_run_spread_describe() -> None:
    assert RunSpread(6, 1.25, 3.04, 0.0123).describe() == (
        "run-to-run +3.0% against ±1.2% (1 sd over 6 runs), p=0.012"
    )
    assert RunSpread(6, 1.0, -2.0, 1e-4).describe().endswith(", p=0.0001")
    assert RunSpread(6, 1.0, -2.0, 0.99e-4).describe() == "run-to-run -2.0% against ±1.0% (1 sd over 6 runs), p<1e-4"


SLOWER = Comparison("slower", 1.3, 1.2, 1.4, 0.001, 0.01, 5.0, "Mann-Whitney U")


def spread(p_value: float) -> RunSpread:
    return RunSpread(6, 1.0, 30.0, p_value)


def test_gate_keeps_a_flag_the_spread_agrees_with_and_takes_the_larger_p() -> None:
    kept = gate(SLOWER, spread(0.005), cutoff=0.005, family=3)
    assert kept == dataclasses.replace(
        SLOWER, p_value=0.005, method="Mann-Whitney U; run-to-run t on 6 previous medians"
    )
    smaller = gate(SLOWER, spread(0.0001), cutoff=0.01, family=3)
    assert smaller.verdict == "slower" and smaller.p_value == 0.001 and smaller.note == ""


def test_gate_at_alpha_is_not_significant() -> None:
    gated = gate(SLOWER, spread(0.01), cutoff=1.0, family=3)  # p == alpha: not below it
    assert gated.verdict == "within noise"
    assert gated.p_value == 0.01
    assert gated.method == "Mann-Whitney U; run-to-run t on 6 previous medians"
    assert gated.note == f"within this GPU's run-to-run spread: {spread(0.01).describe()}, not significant"
    assert (gated.ratio, gated.low, gated.high, gated.alpha) == (1.3, 1.2, 1.4, 0.01)


def test_gate_past_the_fdr_cutoff_names_the_family() -> None:
    gated = gate(SLOWER, spread(0.005), cutoff=0.004, family=7)
    assert gated.verdict == "within noise"
    assert gated.note.endswith(", not among 7 GPU trends at that FDR")
    assert gated.p_value == 0.005
    faster = gate(dataclasses.replace(SLOWER, verdict="faster"), spread(0.005), cutoff=0.004, family=7)
    assert faster.verdict == "within noise"
    default = gate(SLOWER, spread(0.005))  # cutoff 1.0 by default: only alpha decides
    assert default.verdict == "slower"
    alone = gate(SLOWER, spread(0.005), cutoff=0.004)  # no family given: a family of none
    assert alone.note.endswith(", not among 0 GPU trends at that FDR")


def test_gate_leaves_other_verdicts_and_missing_spreads_alone() -> None:
    assert gate(SLOWER, None, 0.0, 3) is SLOWER
    noisy = dataclasses.replace(SLOWER, verdict="too noisy", p_value=0.5)
    assert gate(noisy, spread(0.9), 0.0, 3) is noisy
    within = dataclasses.replace(SLOWER, verdict="within threshold")
    gated = gate(within, spread(0.5), 0.0, 3)  # not a flag: it keeps its verdict, the p-value still grows
    assert gated.verdict == "within threshold" and gated.p_value == 0.5 and gated.note == ""
    assert gated.method.endswith("; run-to-run t on 6 previous medians")


def test_run_cutoff_pools_the_spreads_that_exist() -> None:
    spreads = [spread(0.001), None, spread(0.03), spread(0.5), None]
    # m = 3 (the Nones are no test): 0.001 <= 0.05 / 3; 0.03 <= 2 * 0.05 / 3
    assert run_cutoff(spreads, 0.05) == 0.03
    assert run_cutoff(spreads, 0.02) == 0.001
    assert run_cutoff([None, None], 0.05) == -1.0
