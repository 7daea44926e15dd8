"""Flags that stay honest at scale: Benjamini–Hochberg over all of a report's comparisons, on fleets of
saved runs written by ``scripts/fleet.py`` (seeded synthetic rounds, gpubench's JSON layout)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from report_runs import FLEET

from gpubench.config import ReportSection
from gpubench.report.build import build_report, noise_rule
from gpubench.report.command import false_discovery_rate
from gpubench.report.compare import Comparison
from gpubench.report.fdr import bh_adjusted, bh_cutoff, bh_reject

QUIET = ReportSection(plots=False)




def _fleet(out: Path, *options: str) -> Path:
    FLEET.main(["generate", str(out), *options])
    return out


# --- the procedure on known p-value lists ---------------------------------------------------------------


def test_bh_rejects_the_largest_k_with_p_within_k_q_over_m() -> None:
    # sorted: 0.005 0.01 0.03 0.04 0.5 against k q / m = 0.01 0.02 0.03 0.04 0.05: k = 4 (0.04 <= 0.04)
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    assert bh_cutoff(p, 0.05) == 0.04
    assert bh_reject(p, 0.05) == [True, True, True, True, False]
    assert bh_adjusted(p) == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.5])
    # a p-value above its own line is still rejected when a larger one is within its line (step-up)
    assert bh_reject([0.03, 0.031, 0.9], 0.05) == [True, True, False]  # 0.031 <= 2 * 0.05 / 3


def test_bh_rejects_nothing_when_no_p_value_is_within_its_line() -> None:
    assert bh_cutoff([0.02, 0.03, 0.04], 0.05) == pytest.approx(0.04)  # all within: 0.04 <= 3 q / 3
    assert bh_reject([0.02, 0.5, 0.9], 0.05) == [False, False, False]  # 0.02 > 0.05 / 3
    assert bh_cutoff([], 0.05) == -1.0
    # one comparison: BH is the plain test at q
    assert bh_reject([0.049], 0.05) == [True]
    assert bh_reject([0.051], 0.05) == [False]


def test_bh_leaves_missing_p_values_out_of_m() -> None:
    p = [math.nan, 0.02, math.nan, 0.2]  # m = 2: 0.02 <= 0.05 / 2
    assert bh_reject(p, 0.05) == [False, True, False, False]
    adjusted = bh_adjusted(p)
    assert (
        math.isnan(adjusted[0]) and adjusted[1] == pytest.approx(0.04) and adjusted[3] == pytest.approx(0.2)
    )


def test_bh_matches_the_textbook_example() -> None:
    # Benjamini & Hochberg (1995), section 4: 15 p-values, q = 0.05 rejects the 4 smallest
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
         0.6528, 0.7590, 1.0]  # fmt: skip
    assert sum(bh_reject(p, 0.05)) == 4
    assert bh_cutoff(p, 0.05) == 0.0095


def test_a_comparison_outside_the_cutoff_is_withdrawn_and_says_why() -> None:
    slower = Comparison("slower", 1.08, 1.05, 1.11, 0.004, 0.01, 5.0, "Mann-Whitney U, bootstrap interval")
    assert slower.under_fdr(0.004, 0.05, 900) is slower
    withdrawn = slower.under_fdr(0.001, 0.05, 900)
    assert withdrawn.verdict == "within noise" and not withdrawn.flagged
    assert "not among 900 comparisons at FDR 0.05" in withdrawn.describe()
    quiet = Comparison("within noise", 1.0, 0.99, 1.01, 0.4, 0.01, 5.0, "m")
    assert quiet.under_fdr(-1.0, 0.05, 900) is quiet


def test_fdr_option_and_setting() -> None:
    assert false_discovery_rate("0.1") == 0.1
    for bad in ("0", "1", "x", "-0.1"):
        with pytest.raises(Exception, match="--fdr"):
            false_discovery_rate(bad)
    assert noise_rule(ReportSection()).fdr == 0.05
    assert noise_rule(ReportSection(), fdr=0.2).fdr == 0.2


# --- fleets ---------------------------------------------------------------------------------------------


def test_a_fleet_with_no_real_change_raises_no_flag_though_alpha_alone_would(tmp_path: Path) -> None:
    """504 GPUs × 2 benchmarks, two runs of the same distribution: few, spread rounds make some
    comparisons significant at alpha alone; controlling the FDR over all of them leaves none."""
    results = _fleet(
        tmp_path, "--hosts", "63", "--days", "2", "--rounds", "6", "--noise", "0.12", "--seed", "3"
    )
    report = build_report(results, QUIET)
    assert report.findings["regression"] == 0
    assert report.findings["outlier"] == 0
    fdr_line = next(line for line in report.summary if "false-discovery rate at 0.05" in line)
    assert "over 2016 comparison(s)" in fdr_line  # 1008 trends + 1008 outliers
    # tested alone at alpha = 0.01, some comparisons would have been flagged: the report says how many
    withdrawn = re.search(r"; (\d+) significant alone but not after it", fdr_line)
    assert withdrawn is not None and int(withdrawn.group(1)) > 0


def test_one_gpu_slower_in_its_latest_run_is_flagged_and_named(tmp_path: Path) -> None:
    results = _fleet(tmp_path, "--hosts", "63", "--days", "2", "--noise", "0.01", "--slow", "node41:6:8:1")
    report = build_report(results, QUIET)
    assert report.findings["regression"] == 2  # both benchmarks of that GPU, nothing else
    named = [line for line in report.summary[:6] if "REGRESSION" in line]
    assert len(named) == 2
    assert all("node41 cuda:6" in line and "GPU-00000029-0006" in line for line in named)
    assert report.trends.flagged.count(True) == 2


def test_a_gpu_slow_for_its_last_runs_is_still_compared_with_how_it_was(tmp_path: Path) -> None:
    """The baseline is the median of the previous runs, so a slowdown three runs old is still flagged; the
    run-to-run spread (a robust one: the two slow runs among the previous ones barely move it) needs a
    few weeks of runs to make 8% stand out among the fleet's trends."""
    results = _fleet(tmp_path, "--hosts", "2", "--days", "20", "--slow", "node01:2:8:3")
    report = build_report(results, QUIET)
    assert report.findings["regression"] == 2
    assert any("REGRESSION node01 cuda:2" in line for line in report.summary[:4])


def test_whole_runs_shifted_together_raise_no_flag(tmp_path: Path) -> None:
    """480 runs (16 nodes × 30 nights) where each node's night shifts all its GPUs by N(0, 2%): the
    within-run test alone flagged 12 of the 256 trends; against each GPU's run-to-run spread none."""
    results = _fleet(tmp_path, "--hosts", "16", "--days", "30", "--run-noise", "0.02")
    report = build_report(results, QUIET)
    assert report.findings["regression"] == 0
    assert report.findings["outlier"] == 0
    trends = report.trends
    verdict = trends.columns.index("verdict")
    assert any("run-to-run spread" in row[verdict] for row in trends.rows)  # the withdrawn ones say why


def test_run_to_run_p_values_follow_student_t() -> None:
    from gpubench.report.spread import run_to_run, student_t_two_sided

    assert student_t_two_sided(2.776445, 4) == pytest.approx(0.05, abs=1e-6)  # t table, 4 df
    assert student_t_two_sided(12.7062, 1) == pytest.approx(0.05, abs=1e-5)
    assert student_t_two_sided(0.0, 3) == 1.0
    assert run_to_run([1.0, 1.01, 0.99], 2.0) is None  # too few previous runs to measure a spread
    steady = run_to_run([1.0, 1.02, 0.98, 1.01, 0.99, 1.0], 1.01)
    assert steady is not None and steady.p_value > 0.5
    slow = run_to_run([1.0, 1.02, 0.98, 1.01, 0.99, 1.0] * 3, 1.3)
    assert slow is not None and slow.p_value < 1e-4 and slow.change_pct == pytest.approx(30.0)


def test_outliers_compare_siblings_across_hosts(tmp_path: Path) -> None:
    """One GPU per host: every sibling is on another host."""
    results = _fleet(tmp_path, "--hosts", "12", "--gpus", "1", "--days", "1", "--noise", "0.01",
                     "--slow", "node05:0:20:1")  # fmt: skip
    report = build_report(results, QUIET)
    assert report.findings["outlier"] == 2
    assert any("OUTLIER node05 cuda:0" in line for line in report.summary)


def test_fleet_files_carry_each_gpus_identity(tmp_path: Path) -> None:
    import json

    results = _fleet(tmp_path, "--hosts", "2", "--gpus", "2", "--days", "1")
    run = json.loads(next((results / "benchmarks" / "node01").glob("*.json")).read_text())
    gpus = {b["extra_info"]["gpu"]["uuid"]: b["extra_info"]["gpu"] for b in run["benchmarks"]}
    assert len(gpus) == 2
    assert {g["host"] for g in gpus.values()} == {"node01"}
    assert {g["pci_bus_id"] for g in gpus.values()} == {"00000000:18:00.0", "00000000:28:00.0"}
    assert run["machine_info"]["gpubench"]["environment"]["host"] == "node01"
    assert all(len(b["stats"]["data"]) == 20 for b in run["benchmarks"])
    assert {b["name"] for b in run["benchmarks"]} >= {"test_matmul[cuda:1-f32-4096]"}


# --- a report that stays readable at fleet size ---------------------------------------------------------


def test_a_fleet_report_leads_with_the_fleet_and_pages_only_what_needs_a_look(tmp_path: Path) -> None:
    from gpubench.report.markdown import render_markdown

    results = _fleet(tmp_path, "--hosts", "3", "--days", "2", "--noise", "0.01", "--slow", "node02:6:20:1")
    report = build_report(results, QUIET)
    assert report.summary[0].startswith("Fleet: 24 GPU(s) on 3 host(s), 1 model(s): 0 verified")
    assert "1 regressed" in report.summary[0]
    assert [p.title for p in report.pages] == ["cuda:6 · NVIDIA H100 80GB HBM3 · node02"]
    assert len(report.gpu_index.rows) == 23 and {r[-1] for r in report.gpu_index.rows} == {"ok"}
    assert report.fleet_hosts.rows[0][0] == "node02" and report.fleet_hosts.flagged[0]
    assert report.runs.caption.startswith("All 6 runs: 6 benchmark run(s)")
    markdown = render_markdown(report)
    assert "## Fleet" in markdown and "### Every other device" in markdown


def test_trend_cells_are_a_sparkline_and_the_last_values() -> None:
    from gpubench.report.text import sparkline, trend_cell

    assert sparkline([1.0, 2.0, 3.0]) == "▁▄█"
    assert sparkline([2.0, 2.0]) == "▁▁"
    cell = trend_cell([0.001] * 30 + [0.002])
    assert cell == "▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁█ … 1 ms → 1 ms → 2 ms (31 runs)"
    assert trend_cell([0.001, 0.002]) == "1 ms → 2 ms"


def test_skipped_entries_are_grouped_by_reason() -> None:
    from gpubench.report.fleet import skipped_table

    warnings = [
        f"x/run{i}.json (cuda:0): telemetry trace 'telemetry/r{i}.csv' not found under /r" for i in range(7)
    ]
    warnings.append("skipped /r/benchmarks/h/0004_empty.json: empty file")
    table = skipped_table(warnings)
    assert [row[1] for row in table.rows] == ["7", "1"]
    assert table.rows[0][2].count("run") == 3 and table.rows[0][2].endswith("· …")  # three examples
    assert table.rows[1][0] == "empty file"
