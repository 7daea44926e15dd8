"""The report's decisions at their edges, on hand-made tables: which run is the baseline, which sibling is the
reference, when a deficit is an outlier, how rows become rounds, and what the comparison cache reuses."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pandas as pd
import pytest

from gpubench.report.analysis import (
    COMPARISON_COLUMNS,
    CompareCache,
    Siblings,
    comparison_cells,
    device_sort_key,
    latest_run_id,
    missed_targets,
    outlier_table,
    rounds_of,
    trend_table,
)
from gpubench.report.compare import Comparison, NoiseRule, Rounds, compare
from gpubench.report.spread import gate, run_cutoff, run_to_run
from gpubench.report.text import trend_cell


def row(run: int, median_s: float, **fields: Any) -> dict[str, Any]:
    """One benchmark row of the tidy table, in run ``run`` (one day apart)."""
    return {
        "group": "g", "case": "c", "gpu_uuid": "GPU-0", "gpu_name": "A", "device": "cuda:0", "gpu_index": 0,
        "host": "h", "run_id": f"run-{run:02d}",
        "run_time": pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(days=run),
        "median_s": median_s, "iqr_s": median_s * 0.01, "rounds": 10, "throughput": 1.0 / median_s,
        "throughput_unit": "items/s", **fields,
    }


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


# -- ordering and the latest run ------------------------------------------------------------------------


def test_device_sort_key_puts_configured_then_cuda_by_number_then_cpu_then_the_rest() -> None:
    devices = ["tpu", "cpu", "cuda:10", "cuda:2", "h/cuda:1", "cuda:0", "mps"]
    assert sorted(devices, key=device_sort_key) == ["cuda:0", "h/cuda:1", "cuda:2", "cuda:10", "cpu", "mps", "tpu"]
    configured = ["cpu", "cuda:2"]
    assert sorted(devices, key=lambda d: device_sort_key(d, configured)) == [
        "cpu", "cuda:2", "cuda:0", "h/cuda:1", "cuda:10", "mps", "tpu"
    ]
    assert device_sort_key("h/cuda:3", ["x", "cuda:3"]) == (0, 1, 0, "h/cuda:3")
    assert device_sort_key("cuda:7") == (1, 7, 0, "cuda:7")
    assert device_sort_key("cpu") == (2, 0, 0, "cpu")
    assert device_sort_key("cuda:x") == (3, 0, 0, "cuda:x")
    assert device_sort_key("xcuda:1") == (3, 0, 0, "xcuda:1")


def test_latest_run_is_the_latest_time_and_then_the_larger_id() -> None:
    assert latest_run_id(pd.DataFrame()) is None
    rows = [row(2, 1.0), row(5, 1.0), row(3, 1.0)]
    assert latest_run_id(frame(rows)) == "run-05"
    tie = [row(2, 1.0, run_id="b"), row(2, 1.0, run_id="c"), row(2, 1.0, run_id="a")]
    assert latest_run_id(frame(tie)) == "c"
    no_time = [row(2, 1.0), row(3, 1.0, run_time=pd.NaT, run_id="zzz")]
    assert latest_run_id(frame(no_time)) == "run-02"  # a run without a time sorts first


# -- rounds, cells and the cache --------------------------------------------------------------------------


def test_rounds_of_prefers_the_saved_rounds_of_that_exact_row() -> None:
    record = {"run_id": "r", "group": "g", "case": "c", "gpu_uuid": "U", "median_s": 2.0, "iqr_s": 0.2, "rounds": 7}
    data = (1.0, 2.0, 3.0, 4.0, 5.0)
    assert rounds_of(record, {("r", "g", "c", "U"): data}) == Rounds.from_data(data)
    assert rounds_of(record, {("r", "g", "c", "V"): data}) == Rounds(2.0, 0.2, 7)
    assert rounds_of(record, {("r", "g", "c", "U"): ()}) == Rounds(2.0, 0.2, 7)
    assert rounds_of(record, None) == Rounds(2.0, 0.2, 7)
    missing = rounds_of({**record, "iqr_s": None, "rounds": None}, None)
    assert missing.median == 2.0 and math.isnan(missing.iqr) and missing.count == 0
    assert rounds_of({**record, "rounds": math.nan}, None).count == 0
    assert rounds_of({k: v for k, v in record.items() if k not in ("iqr_s", "rounds")}, None).count == 0
    assert rounds_of({**record, "rounds": 7.0}, None) == Rounds(2.0, 0.2, 7)


def test_comparison_cells_of_nothing_and_of_a_comparison() -> None:
    empty = comparison_cells(None)
    assert list(empty) == list(COMPARISON_COLUMNS)
    assert all(math.isnan(empty[c]) for c in ("ratio", "ratio_low", "ratio_high", "p_value"))
    assert [empty[c] for c in ("verdict", "comparison", "method", "result")] == [None] * 4
    c = Comparison("slower", 1.3, 1.2, 1.4, 0.001, 0.01, 5.0, "m")
    assert comparison_cells(c) == {
        "ratio": 1.3, "ratio_low": 1.2, "ratio_high": 1.4, "p_value": 0.001, "verdict": "slower",
        "comparison": c.describe(), "method": "m", "result": c,
    }


def test_compare_cache_reuses_a_comparison_only_for_the_same_inputs() -> None:
    before, after = row(1, 1.0), row(2, 1.3)
    names = ("previous run", "latest run")
    cache = CompareCache()
    first = cache.compare(before, after, 5.0, None, names, None)
    assert first == compare(rounds_of(before, None), rounds_of(after, None), 5.0, None, names)
    assert len(cache.entries) == 1 and cache.kept() == cache.entries
    (key,) = cache.entries
    assert cache.entries[key] == dataclasses.asdict(first)
    # the same inputs again: the stored entry answers (shown by tampering with it)
    cache.entries[key] = {**cache.entries[key], "verdict": "faster"}
    assert cache.compare(before, after, 5.0, NoiseRule(), names, None).verdict == "faster"  # None is the default rule
    # anything compared differently is a new entry
    cache.compare(before, after, 6.0, None, names, None)
    cache.compare(before, after, 5.0, NoiseRule(alpha=0.05), names, None)
    cache.compare(before, after, 5.0, None, ("a", "b"), None)
    cache.compare(before, {**after, "median_s": 1.31}, 5.0, None, names, None)
    cache.compare(before, {**after, "rounds": 11}, 5.0, None, names, None)
    cache.compare({**before, "gpu_uuid": "GPU-9"}, after, 5.0, None, names, None)
    assert len(cache.entries) == 7


def test_compare_cache_keeps_only_what_this_report_used_and_recompares_stale_entries() -> None:
    before, after = row(1, 1.0), row(2, 1.3)
    names = ("previous run", "latest run")
    seeded = CompareCache()
    seeded.compare(before, after, 5.0, None, names, None)
    (key,) = seeded.entries
    stale = {key: {"verdict": "slower", "old_field": 1}, "unused": {"verdict": "faster"}}
    cache = CompareCache(stale)
    assert cache.used == set()
    again = cache.compare(before, after, 5.0, None, names, None)  # a Comparison with other fields: compared anew
    assert again == compare(rounds_of(before, None), rounds_of(after, None), 5.0, None, names)
    assert cache.entries[key] == dataclasses.asdict(again)
    assert cache.kept() == {key: dataclasses.asdict(again)}  # "unused" is dropped
    assert stale[key] == {"verdict": "slower", "old_field": 1}  # the caller's mapping is not changed
    assert CompareCache().entries == {} and CompareCache(None).kept() == {}


# -- trends -------------------------------------------------------------------------------------------------


def expected_trend(medians: list[float], baseline: int, threshold: float = 5.0) -> Comparison:
    """What trend_table should find for one GPU: its own primitives composed by hand."""
    history = [row(i, m) for i, m in enumerate(medians)]
    window = history[-1 - baseline:-1]
    previous = sorted(window, key=lambda h: h["median_s"])[(len(window) - 1) // 2]
    names = ("previous run" if len(window) == 1 else f"baseline run (median of {len(window)})", "latest run")
    result = compare(rounds_of(previous, None), rounds_of(history[-1], None), threshold, None, names)
    spread = run_to_run(medians[:-1], medians[-1])
    return result if spread is None else gate(result, spread, run_cutoff([spread], 0.05), 1)


def test_a_single_run_has_no_trend() -> None:
    (only,) = trend_table(frame([row(0, 1.0)]), 5.0).to_dict("records")
    assert only["runs"] == 1 and only["previous_run"] is None and only["baseline_runs"] == 0
    assert math.isnan(only["previous_median_s"]) and math.isnan(only["change_pct"])
    assert only["regression"] is False and only["result"] is None and math.isnan(only["p_value"])
    assert (only["latest_run"], only["latest_median_s"], only["gpu_name"]) == ("run-00", 1.0, "A")


@pytest.mark.parametrize(("medians", "baseline", "previous"), [
    ([1.0, 1.3], 5, 0),  # one previous run: it is the baseline
    ([1.0, 1.2, 1.1, 1.3], 5, 2),  # three: the middle one (1.1)
    ([1.0, 1.2, 1.1, 0.9, 1.3], 5, 0),  # four: the lower middle one (0.9 1.0 | 1.1 1.2: 1.0)
    ([0.5, 1.0, 1.2, 1.1, 0.9, 1.05, 1.3], 5, 5),  # the first run is outside the window of five: 1.05
    ([1.0, 1.2, 1.1, 1.3], 1, 2),  # a window of one: the run before the latest
    ([1.0, 1.2, 1.1, 1.3], 0, 2),  # no window asked for: still one run
])
def test_the_baseline_is_the_median_run_of_the_window(medians: list[float], baseline: int, previous: int) -> None:
    table = trend_table(frame([row(i, m) for i, m in enumerate(medians)]), 5.0, baseline_runs=baseline)
    (trend,) = table.to_dict("records")
    window = min(max(1, baseline), len(medians) - 1)
    assert trend["previous_run"] == f"run-{previous:02d}"
    assert trend["previous_median_s"] == medians[previous]
    assert trend["baseline_runs"] == window
    assert trend["runs"] == len(medians)
    assert trend["change_pct"] == pytest.approx((medians[-1] / medians[previous] - 1) * 100)
    want = expected_trend(medians, max(1, baseline))
    assert trend["result"] == want
    assert trend["regression"] == want.flagged
    assert trend["verdict"] == want.verdict and trend["comparison"] == want.describe()


def gpu_history(uuid: str, medians: list[float]) -> list[dict[str, Any]]:
    return [row(i, m, gpu_uuid=uuid) for i, m in enumerate(medians)]


STEADY = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98]  # six previous runs, about 1.5% apart


def test_a_slowdown_the_gpus_own_run_to_run_spread_explains_is_not_a_regression() -> None:
    table = trend_table(frame(gpu_history("GPU-0", [*STEADY, 1.08])), 5.0)
    (trend,) = table.to_dict("records")
    plain = compare(Rounds(1.0, 0.01, 10), Rounds(1.08, 0.0108, 10), 5.0, None,
                    ("baseline run (median of 5)", "latest run"))
    assert plain.verdict == "slower"  # the rounds alone would flag it
    assert trend["verdict"] == "within noise" and trend["regression"] is False
    assert trend["result"].note.endswith(", not significant")
    assert trend["p_value"] == run_to_run(STEADY, 1.08).p_value  # type: ignore[union-attr]


@pytest.mark.parametrize(("fdr", "verdict"), [(0.05, "slower"), (0.01, "within noise")])
def test_run_to_run_p_values_are_held_to_the_fdr_over_the_gpus_that_have_a_spread(fdr: float, verdict: str) -> None:
    # GPU-A's run-to-run p is 0.0082: below alpha, and within BH's 0.05 / 2 but not 0.01 / 2. GPU-B's is 1;
    # GPU-C has two runs, no spread, and is not one of the family
    rows = [*gpu_history("GPU-A", [*STEADY, 1.2]), *gpu_history("GPU-B", [*STEADY, 1.0]),
            *gpu_history("GPU-C", [1.0, 1.5])]
    assert run_to_run(STEADY, 1.2).p_value == pytest.approx(0.00824, abs=1e-5)  # type: ignore[union-attr]
    table = trend_table(frame(rows), 5.0, rule=NoiseRule(fdr=fdr)).set_index("gpu_uuid")
    assert table.at["GPU-A", "verdict"] == verdict
    assert bool(table.at["GPU-A", "regression"]) == (verdict == "slower")
    if verdict == "within noise":
        assert table.at["GPU-A", "result"].note.endswith(", not among 2 GPU trends at that FDR")
    assert table.at["GPU-C", "verdict"] == "slower" and bool(table.at["GPU-C", "regression"])
    assert table.at["GPU-C", "method"] == "stats block (median error from IQR)"  # not gated: no spread
    assert table.at["GPU-B", "verdict"] == "within noise"


def test_trend_rows_come_one_per_benchmark_and_gpu_in_order() -> None:
    rows = [*gpu_history("GPU-1", [1.0, 1.0]), *gpu_history("GPU-0", [1.0, 1.0]),
            row(0, 2.0, case="b"), row(1, 2.0, case="b", device="cuda:1", host="other")]
    table = trend_table(frame(rows), 5.0)
    assert list(zip(table["case"], table["gpu_uuid"], strict=True)) == [("b", "GPU-0"), ("c", "GPU-0"), ("c", "GPU-1")]
    assert (table.at[0, "device"], table.at[0, "host"]) == ("cuda:1", "other")  # the latest run's
    assert list(table.columns[:15]) == [
        "group", "case", "device", "host", "gpu_uuid", "gpu_name", "runs", "history", "previous_run",
        "previous_median_s", "baseline_runs", "latest_run", "latest_median_s", "change_pct", "regression",
    ]
    empty = trend_table(frame([]), 5.0)
    assert empty.empty and list(empty.columns) == list(table.columns)


def test_a_shared_cache_is_filled_by_the_trends() -> None:
    cache = CompareCache()
    trend_table(frame(gpu_history("GPU-0", [1.0, 1.3])), 5.0, cache=cache)
    assert len(cache.kept()) == 1


# -- outliers -----------------------------------------------------------------------------------------------


def sibling(index: int, median_s: float, **fields: Any) -> dict[str, Any]:
    return row(1, median_s, gpu_uuid=f"GPU-{index}", device=f"cuda:{index}", gpu_index=index, **fields)


def test_an_outlier_is_compared_with_the_sibling_nearest_the_sibling_median() -> None:
    rows = [sibling(0, 1.0), sibling(1, 0.5), sibling(2, 1 / 0.7, host="h2"), sibling(3, 2.0)]
    table = outlier_table(frame(rows), 20.0).set_index("gpu_uuid")
    slow = table.loc["GPU-3"]
    # the others' throughputs: 1.0, 2.0, 0.7 -> their median is 1.0, GPU-0's
    assert slow["sibling_median"] == 1.0 and slow["siblings"] == 3
    assert slow["deficit_pct"] == pytest.approx(50.0)
    names = ("sibling cuda:0 (h)", "GPU's latest run")
    threshold = (100.0 / 80.0 - 1.0) * 100.0  # a 20% throughput deficit is 25% more time per call
    assert slow["result"] == compare(Rounds(1.0, 0.01, 10), Rounds(2.0, 0.02, 10), threshold, None, names)
    assert slow["result"].threshold_pct == pytest.approx(25.0)
    assert bool(slow["outlier"])
    # GPU-2 (throughput 0.7): the others 1.0, 2.0, 0.5 -> median 1.0 -> reference GPU-0
    assert table.loc["GPU-2", "deficit_pct"] == pytest.approx(30.0) and bool(table.loc["GPU-2", "outlier"])
    assert not table.loc[["GPU-0", "GPU-1"], "outlier"].any()
    # GPU-0: the others 2.0, 0.7, 0.5 -> median 0.7 -> reference GPU-2, on host h2
    assert table.loc["GPU-0", "deficit_pct"] == pytest.approx((1 - 1 / 0.7) * 100)
    assert table.loc["GPU-0", "comparison"] == table.loc["GPU-0", "result"].describe()
    assert compare(Rounds(1 / 0.7, 0.01 / 0.7, 10), Rounds(1.0, 0.01, 10), threshold, None,
                   ("sibling cuda:2 (h2)", "GPU's latest run")) == table.loc["GPU-0", "result"]


def test_a_deficit_exactly_at_the_limit_is_not_an_outlier() -> None:
    rows = [sibling(0, 1.0), sibling(1, 1.0), sibling(2, 2.0)]  # GPU-2: exactly half the throughput
    at = outlier_table(frame(rows), 50.0).set_index("gpu_uuid").loc["GPU-2"]
    assert at["deficit_pct"] == 50.0 and at["result"].significant and at["result"].ratio > 1
    assert not bool(at["outlier"])
    assert bool(outlier_table(frame(rows), 49.9).set_index("gpu_uuid").at["GPU-2", "outlier"])


def test_an_outlier_needs_a_significant_comparison_that_is_slower_in_time() -> None:
    # throughput says half, the rounds say no slower (a benchmark that reports throughput on other work)
    faster = [sibling(0, 1.0), sibling(1, 1.0), sibling(2, 0.8, throughput=0.5)]
    at = outlier_table(frame(faster), 10.0).set_index("gpu_uuid").loc["GPU-2"]
    assert at["deficit_pct"] == 50.0 and at["result"].significant and at["result"].ratio < 1
    assert not bool(at["outlier"])
    noisy = [sibling(0, 1.0), sibling(1, 1.0), sibling(2, 2.0, rounds=3)]  # too few rounds to compare
    at = outlier_table(frame(noisy), 10.0).set_index("gpu_uuid").loc["GPU-2"]
    assert at["verdict"] == "too noisy" and not bool(at["outlier"])


def test_outlier_limit_of_100_percent_or_more_is_never_reached() -> None:
    rows = [sibling(0, 1.0), sibling(1, 1.0), sibling(2, 2.0)]
    for pct in (100.0, 150.0):
        at = outlier_table(frame(rows), pct).set_index("gpu_uuid").loc["GPU-2"]
        assert at["result"].threshold_pct == math.inf and not bool(at["outlier"])
    assert outlier_table(frame(rows), 99.0).set_index("gpu_uuid").at["GPU-2", "result"].threshold_pct == (
        pytest.approx(9900.0)
    )


def test_siblings_without_throughput_give_no_deficit() -> None:
    rows = [sibling(0, 1.0, throughput=0.0), sibling(1, 1.0, throughput=0.0), sibling(2, 2.0)]
    at = outlier_table(frame(rows), 10.0).set_index("gpu_uuid").loc["GPU-2"]
    assert math.isnan(at["deficit_pct"]) and not bool(at["outlier"])


def test_outliers_take_each_gpus_latest_row_and_leave_out_cpus_lone_models_and_unnamed_gpus() -> None:
    rows = [
        row(0, 9.0, gpu_uuid="GPU-0"), sibling(0, 1.0),  # GPU-0's earlier, slower run is not its latest
        sibling(1, 1.0), sibling(2, 1.0),
        sibling(3, 5.0, gpu_name="B"),  # alone of its model
        sibling(4, 5.0, gpu_name=None), sibling(5, 5.0, gpu_name=None),  # no name: not a GPU family
        row(1, 5.0, gpu_uuid="cpu-host", device="cpu", gpu_name="A"),
    ]
    table = outlier_table(frame(rows), 10.0)
    assert sorted(table["gpu_uuid"]) == ["GPU-0", "GPU-1", "GPU-2"]
    assert set(table["siblings"]) == {2} and set(table["sibling_median"]) == {1.0}
    assert not table["outlier"].any()
    assert list(table.columns) == [
        "group", "case", "gpu_name", "host", "device", "gpu_index", "gpu_uuid", "run_id", "throughput",
        "throughput_unit", "sibling_median", "siblings", "deficit_pct", "outlier", *COMPARISON_COLUMNS,
    ]
    empty = outlier_table(frame([]), 10.0)
    assert empty.empty and list(empty.columns) == list(table.columns)


# -- targets ------------------------------------------------------------------------------------------------


def test_missed_targets_count_the_latest_row_of_each_benchmark_on_each_gpu() -> None:
    assert missed_targets(frame([])) is None
    assert missed_targets(frame([row(0, 1.0)])) is None  # no targets column
    assert missed_targets(frame([row(0, 1.0, targets=None, targets_missed=3)])) is None
    rows = [
        row(0, 1.0, targets="{...}", targets_missed=4),  # an older run of GPU-0
        row(1, 1.0, targets="{...}", targets_missed=1),
        row(1, 1.0, gpu_uuid="GPU-1", targets="{...}", targets_missed=2),
        row(1, 1.0, gpu_uuid="GPU-2", targets=None, targets_missed=None),
    ]
    assert missed_targets(frame(rows)) == 3


def test_the_reference_is_never_the_gpu_itself_and_ties_go_to_the_first_sibling() -> None:
    # a tie between equal gaps goes to the first sibling in member order
    rows = [sibling(0, 1.0), sibling(1, 2.0), sibling(2, 4.0 / 3.0, host="h2")]  # throughputs 1.0, 0.5, 0.75
    table = outlier_table(frame(rows), 90.0).set_index("gpu_uuid")
    # GPU-2 (0.75): the others 1.0 and 0.5, median 0.75 -> both 0.25 away: the first, GPU-0
    assert table.at["GPU-2", "sibling_median"] == 0.75
    assert table.at["GPU-2", "result"].note == "" and table.at["GPU-2", "ratio"] == pytest.approx(4.0 / 3.0)
    # GPU-0 (1.0): the others 0.5 and 0.75 -> median 0.625 -> GPU-1 and GPU-2 0.125 away: GPU-1 first
    assert table.at["GPU-0", "ratio"] == pytest.approx(1.0 / 2.0)


def test_a_gpu_at_its_siblings_median_is_compared_with_another_gpu() -> None:
    rows = [sibling(0, 1.0), sibling(1, 0.5), sibling(2, 1.0 / 3.0, rounds=3)]  # throughputs 1, 2, 3
    table = outlier_table(frame(rows), 10.0).set_index("gpu_uuid")
    # GPU-1 (2.0) is itself at the median of the others (1.0, 3.0): its reference is GPU-0, at a gap of 1
    assert table.at["GPU-1", "sibling_median"] == 2.0
    assert table.at["GPU-1", "ratio"] == pytest.approx(0.5)
    # GPU-1 against GPU-2 would be "too noisy" (three rounds), against itself a ratio of 1


def test_too_few_rounds_name_the_sibling_and_this_gpu() -> None:
    rows = [sibling(0, 1.0, host="h0"), sibling(1, 1.0, host="h0"), sibling(2, 2.0, rounds=3)]
    table = outlier_table(frame(rows), 10.0).set_index("gpu_uuid")
    assert table.at["GPU-2", "result"].note.startswith("3 round(s) in the GPU's latest run, fewer than 5")
    rows = [sibling(0, 1.0), sibling(1, 2.0, host="h1", rounds=3), sibling(2, 4.0)]  # GPU-1 is GPU-0's reference
    table = outlier_table(frame(rows), 10.0).set_index("gpu_uuid")
    assert table.at["GPU-0", "result"].note.startswith("3 round(s) in the sibling cuda:1 (h1), fewer than 5")


@pytest.mark.parametrize(("medians", "rounds", "side"), [
    ([1.0, 1.3], [10, 3], "latest run"),
    ([1.0, 1.3], [3, 10], "previous run"),
    ([1.0, 1.1, 1.2, 1.3], [10, 3, 10, 10], "baseline run (median of 3)"),
])
def test_too_few_rounds_name_the_baseline_and_the_latest_run(medians: list[float], rounds: list[int], side: str) -> None:
    rows = [row(i, m, rounds=r) for i, (m, r) in enumerate(zip(medians, rounds, strict=True))]
    (trend,) = trend_table(frame(rows), 5.0).to_dict("records")
    assert trend["verdict"] == "too noisy"
    assert trend["result"].note.startswith(f"3 round(s) in the {side}, fewer than 5")


def test_trends_and_outliers_compare_the_saved_rounds_under_the_rule_given() -> None:
    rows = [row(0, 1.0), row(1, 1.3), sibling(2, 1.0), sibling(3, 1.0)]
    samples = {
        ("run-00", "g", "c", "GPU-0"): tuple(1.0 + 0.001 * i for i in range(9)),
        ("run-01", "g", "c", "GPU-0"): tuple(1.3 + 0.001 * i for i in range(9)),
        ("run-01", "g", "c", "GPU-2"): tuple(1.0 + 0.001 * i for i in range(9)),
    }
    rule = NoiseRule(alpha=0.05)
    (trend,) = trend_table(frame(rows[:2]), 5.0, samples=samples, rule=rule).to_dict("records")
    assert trend["method"] == "Mann-Whitney U, bootstrap interval" and trend["result"].alpha == 0.05
    outliers = outlier_table(frame(rows[1:]), 10.0, samples=samples, rule=rule).set_index("gpu_uuid")
    assert outliers.at["GPU-0", "result"].alpha == 0.05
    assert outliers.at["GPU-0", "method"] == "Mann-Whitney U, bootstrap interval"  # against GPU-2, saved too
    assert outliers.at["GPU-3", "method"] == "stats block (median error from IQR)"  # GPU-3's rounds are not saved
    assert outliers.at["GPU-2", "result"].alpha == 0.05
    cache = CompareCache()
    before, after = rows[0], rows[1]
    got = cache.compare(before, after, 5.0, rule, ("a", "b"), samples)
    assert got == compare(Rounds.from_data(samples[("run-00", "g", "c", "GPU-0")]),
                          Rounds.from_data(samples[("run-01", "g", "c", "GPU-0")]), 5.0, rule, ("a", "b"))
    short = cache.compare(before, {**after, "rounds": 3}, 5.0, None, ("a", "b"), None)
    assert short.note.startswith("3 round(s) in the b,")


def test_a_long_history_keeps_every_run_the_spread_and_the_baseline_read() -> None:
    medians = [1.0 + 0.01 * ((7 * i) % 13) for i in range(29)] + [1.2]  # 30 runs
    history = frame([row(i, m) for i, m in enumerate(medians)])
    (trend,) = trend_table(history, 5.0).to_dict("records")
    assert trend["runs"] == 30
    assert trend["history"] == trend_cell(medians)
    assert trend["result"] == expected_trend(medians, 5)  # the spread over the 20 runs before the latest
    (wide,) = trend_table(history, 5.0, baseline_runs=25).to_dict("records")
    assert wide["baseline_runs"] == 25
    window = sorted(medians[-26:-1])
    assert wide["previous_median_s"] == window[12]


def test_a_windowed_read_counts_the_runs_its_history_holds_and_decides_as_the_whole_one() -> None:
    """gpubench report reads each series' last 21 runs from the store; LoadedRuns.history counts them all."""
    from gpubench.report.load import History

    medians = [1.0 + 0.01 * ((7 * i) % 13) for i in range(39)] + [1.2]  # 40 runs
    whole = frame([row(i, m) for i, m in enumerate(medians)])
    last = whole.iloc[-21:]
    counts = {("g", "c", "GPU-0"): 40, ("g", "other", "GPU-0"): 3}
    history = History(21, "store", 40, 0, counts, {"GPU-0": 40})
    (full,) = trend_table(whole, 5.0).to_dict("records")
    (windowed,) = trend_table(last, 5.0, history=history).to_dict("records")
    (uncounted,) = trend_table(last, 5.0).to_dict("records")
    assert windowed["runs"] == full["runs"] == 40 and uncounted["runs"] == 21
    assert windowed["history"] == full["history"] == trend_cell(medians)  # "(40 runs)"
    for column in ("previous_run", "previous_median_s", "latest_median_s", "change_pct", "verdict", "regression"):
        assert windowed[column] == full[column], column
    # a count below what the frame holds (a series the history missed) never lowers it
    few = History(21, "store", 40, 0, {("g", "c", "GPU-0"): 5}, {})
    assert trend_table(last, 5.0, history=few).iloc[0]["runs"] == 21
    assert history.series("g", "c", "GPU-0") == 40 and history.series("g", float("nan"), "GPU-0") is None


def test_missed_targets_take_a_run_without_a_time_as_the_oldest() -> None:
    rows = [row(1, 1.0, targets="{...}", targets_missed=1), row(2, 1.0, run_time=pd.NaT, targets="{...}",
                                                                 targets_missed=5)]
    assert missed_targets(frame(rows)) == 1


def test_device_sort_key_reads_the_device_after_the_last_slash() -> None:
    assert device_sort_key("a/b/cuda:3") == (1, 3, 0, "a/b/cuda:3")


def test_a_significant_difference_at_equal_medians_is_no_outlier() -> None:
    # the member's rounds are significantly later than its reference's, but their medians are equal (1.0):
    # not slower in time, whatever its throughput says
    reference = (*(0.9 + 0.0025 * i for i in range(20)), 1.0, *(1.0001 + 0.000005 * i for i in range(20)))
    member = (*(0.9998 + 0.000005 * i for i in range(20)), 1.0, *(1.05 + 0.0025 * i for i in range(20)))
    rows = [sibling(0, 1.0), sibling(1, 1.0, throughput=1.0), sibling(2, 1.0, throughput=0.5)]
    samples = {("run-01", "g", "c", "GPU-0"): reference, ("run-01", "g", "c", "GPU-2"): member}
    at = outlier_table(frame(rows), 10.0, samples=samples).set_index("gpu_uuid").loc["GPU-2"]
    assert at["result"].ratio == 1.0 and at["result"].significant and at["deficit_pct"] == 50.0
    assert not bool(at["outlier"])


def test_the_reference_is_one_of_the_siblings_at_the_nearest_throughput_not_a_slower_one() -> None:
    rows = [sibling(0, 10.0), sibling(1, 1.0), sibling(2, 1.0), sibling(3, 1.0)]  # throughputs 0.1, 1, 1, 1
    table = outlier_table(frame(rows), 10.0).set_index("gpu_uuid")
    # GPU-3: the others' median is 1.0; GPU-1 and GPU-2 are at it, GPU-0 (first, but at 0.1) is not
    assert table.at["GPU-3", "ratio"] == 1.0
    assert table.at["GPU-0", "ratio"] == 10.0


def test_a_family_of_one_has_no_nearest_sibling() -> None:
    alone = Siblings([sibling(0, 1.0)])
    with pytest.raises(ValueError, match=r"^a family of one has no siblings$"):
        alone.nearest(0, 1.0)
