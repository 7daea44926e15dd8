"""Derived tables over the tidy benchmark table: devices side by side, trends, outliers.

:func:`ratio_table` compares the devices of the latest run (``cuda:1 / cuda:0``), :func:`trend_table`
each GPU (by UUID) against its previous run with regressions flagged, :func:`outlier_table` each GPU
against its same-model siblings. Flags come from :func:`gpubench.report.compare.compare` (significant
and beyond the threshold, never from noise). Pure functions of pandas frames; nothing is drawn or written.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gpubench.report.compare import Comparison, NoiseRule, Rounds, compare
from gpubench.report.spread import SPREAD_RUNS, RunSpread, gate, run_cutoff, run_to_run
from gpubench.report.text import SPARK_RUNS, trend_cell

if TYPE_CHECKING:
    import pandas as pd

    from gpubench.report.load import History, LoadedRuns, SampleKey

# what trend_table and outlier_table add about each comparison
# (``result``: the :class:`~gpubench.report.compare.Comparison` itself, for :func:`~gpubench.report.fdr.control_fdr`)
COMPARISON_COLUMNS = (
    "ratio",
    "ratio_low",
    "ratio_high",
    "p_value",
    "verdict",
    "comparison",
    "method",
    "result",
)
# a GPU's latest run is compared with the median run of its previous BASELINE_RUNS runs
BASELINE_RUNS = 5


def device_sort_key(device: str, configured: Sequence[str] = ()) -> tuple[int, int, int, str]:
    """Configured devices first (in their order), then cuda:N by N, then cpu, then anything else."""
    bare = device.rsplit("/", 1)[-1]
    if bare in configured:
        return (0, configured.index(bare), 0, device)
    match = re.fullmatch(r"cuda:(\d+)", bare)
    if match:
        return (1, int(match.group(1)), 0, device)
    return (2 if bare == "cpu" else 3, 0, 0, device)


def latest_run_id(frame: pd.DataFrame) -> str | None:
    """The run with the latest time (ties: the larger id)."""
    if frame.empty:
        return None
    last = frame.sort_values(["run_time", "run_id"], kind="stable", na_position="first").iloc[-1]
    return str(last["run_id"])


def recorded_device_order(loaded: LoadedRuns) -> list[str]:
    """The ``bench.devices`` recorded by the latest benchmark run (empty when it recorded none)."""
    runs = loaded.runs[loaded.runs["kind"] == "benchmarks"]
    run_id = latest_run_id(loaded.benchmarks)
    recorded = runs[runs["run_id"] == run_id]["configured_devices"].dropna()
    return [d for d in str(recorded.iloc[-1]).split(",") if d] if not recorded.empty else []


def bench_label(group: str, case: str) -> str:
    """A benchmark as tables and plots name it: ``group / case``, or the case alone without a group."""
    return f"{group} / {case}" if group else case


def ratio_table(frame: pd.DataFrame, configured: Sequence[str] = ()) -> pd.DataFrame:
    """Devices side by side in the latest run: throughput per device and ``<device> / <first device>``.

    The first device (configured order, then cuda:N, then cpu) is the denominator, so a ratio above 1
    means faster than it. With one device only, the latest run is compared with the previous run of the
    same device instead (columns are run ids, ratio ``latest / previous``).
    Index: ``benchmark`` (``group / case``); columns: ``unit``, one throughput column per device, ratios.
    """
    import pandas as pd

    run_id = latest_run_id(frame)
    if run_id is None:
        empty: pd.DataFrame = pd.DataFrame()  # annotated: pandas-stubs types DataFrame(...) as Any on 3.10
        return empty
    latest = frame[frame["run_id"] == run_id].assign(
        bench=lambda f: [bench_label(g, c) for g, c in zip(f["group"], f["case"], strict=True)]
    )
    devices = sorted(latest["device_label"].unique(), key=lambda d: device_sort_key(str(d), configured))
    if len(devices) == 1:
        return _run_vs_run(frame, run_id, str(devices[0]))
    wide = latest.pivot_table(index="bench", columns="device_label", values="throughput", aggfunc="mean")
    units = latest.groupby("bench")["throughput_unit"].first()
    table: pd.DataFrame = pd.DataFrame({"unit": units})
    for device in devices:
        table[device] = wide[device]
    base = devices[0]
    for device in devices[1:]:
        table[f"{device} / {base}"] = table[device] / table[base]
    table.index.name = "benchmark"
    table.attrs.update(run_id=run_id, base=base, devices=list(devices), mode="devices")
    return table


def _run_vs_run(frame: pd.DataFrame, run_id: str, device: str) -> pd.DataFrame:
    import pandas as pd

    rows = frame[frame["device_label"] == device].assign(
        bench=lambda f: [bench_label(g, c) for g, c in zip(f["group"], f["case"], strict=True)]
    )
    order = (
        rows.drop_duplicates("run_id").sort_values(["run_time", "run_id"], kind="stable")["run_id"].tolist()
    )
    previous = [r for r in order if r != run_id]
    table: pd.DataFrame = pd.DataFrame(
        {"unit": rows[rows["run_id"] == run_id].groupby("bench")["throughput_unit"].first()}
    )
    table[run_id] = rows[rows["run_id"] == run_id].groupby("bench")["throughput"].mean()
    columns = [run_id]
    if previous:
        prev = previous[-1]
        table.insert(1, prev, rows[rows["run_id"] == prev].groupby("bench")["throughput"].mean())
        table[f"{run_id} / {prev}"] = table[run_id] / table[prev]
        columns = [prev, run_id]
    table.index.name = "benchmark"
    table.attrs.update(run_id=run_id, base=device, devices=[device], runs=columns, mode="runs")
    return table


def rounds_of(record: Mapping[str, Any], samples: Mapping[SampleKey, tuple[float, ...]] | None) -> Rounds:
    """A row's rounds: the raw ones when its run saved them, else its stats block (median, IQR, rounds)."""
    key = (str(record["run_id"]), str(record["group"]), str(record["case"]), str(record["gpu_uuid"]))
    data = (samples or {}).get(key)
    if data:
        return Rounds.from_data(data)
    iqr, count = record.get("iqr_s"), record.get("rounds")
    return Rounds(
        float(record["median_s"]),
        float(iqr) if iqr is not None else math.nan,
        int(count) if count is not None and count == count else 0,
    )


class CompareCache:
    """Comparisons already made, by what was compared (the two rows' run, benchmark, GPU, median and
    rounds), the threshold, the rule and the names: :func:`~gpubench.report.compare.compare` is
    deterministic (its bootstrap is seeded), so a report after one new run only compares what changed.
    ``entries`` is JSON-ready; ``used`` the keys this report asked for (the rest can be dropped)."""

    def __init__(self, entries: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.entries: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (entries or {}).items()}
        self.used: set[str] = set()

    def compare(
        self,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        threshold: float,
        rule: NoiseRule | None,
        names: tuple[str, str],
        samples: Mapping[SampleKey, tuple[float, ...]] | None,
    ) -> Comparison:
        key = json.dumps(
            [_row_key(before), _row_key(after), threshold, dataclasses.astuple(rule or NoiseRule()), names]
        )
        self.used.add(key)
        hit = self.entries.get(key)
        if hit is not None:
            try:
                return Comparison(**hit)
            except TypeError:  # kept by a gpubench whose Comparison had other fields: compare again
                pass
        result = compare(rounds_of(before, samples), rounds_of(after, samples), threshold, rule, names)
        self.entries[key] = dataclasses.asdict(result)
        return result

    def kept(self) -> dict[str, dict[str, Any]]:
        """The entries this report used."""
        return {k: v for k, v in self.entries.items() if k in self.used}


def _row_key(record: Mapping[str, Any]) -> list[Any]:
    return [str(record[c]) for c in ("run_id", "group", "case", "gpu_uuid")] + [
        float(record["median_s"]),
        float(record.get("rounds") or 0),
    ]


def comparison_cells(result: Comparison | None) -> dict[str, Any]:
    """The :data:`COMPARISON_COLUMNS` of one comparison (NaN and None when nothing was compared)."""
    if result is None:
        return dict.fromkeys(COMPARISON_COLUMNS[:4], math.nan) | dict.fromkeys(COMPARISON_COLUMNS[4:])
    return {
        "ratio": result.ratio,
        "ratio_low": result.low,
        "ratio_high": result.high,
        "p_value": result.p_value,
        "verdict": result.verdict,
        "comparison": result.describe(),
        "method": result.method,
        "result": result,
    }


def trend_table(
    frame: pd.DataFrame,
    regression_pct: float,
    samples: Mapping[SampleKey, tuple[float, ...]] | None = None,
    rule: NoiseRule | None = None,
    baseline_runs: int = BASELINE_RUNS,
    cache: CompareCache | None = None,
    history: History | None = None,
) -> pd.DataFrame:
    """Each benchmark on each GPU (by UUID) across runs: the latest run's rounds against its baseline's.

    The baseline is the median run (by median time) of the previous ``baseline_runs`` runs: the previous
    run when there is only one, and a GPU slow for its last few runs is still compared with how it was
    before (columns ``previous_run``, ``previous_median_s``; ``baseline_runs``: how many it was chosen
    from). ``change_pct`` > 0 means slower (ratio of medians); ``regression`` is True only when the
    comparison (:func:`~gpubench.report.compare.compare` under ``rule``, on the raw rounds in ``samples``
    where saved, else the stats block) finds the latest run significantly slower by more than
    ``regression_pct`` **and** the GPU's run-to-run spread does not explain it
    (:func:`~gpubench.report.spread.run_to_run`, from its previous runs; before
    :func:`~gpubench.report.fdr.control_fdr` withdraws what noise explains). ``history``: ``frame`` holds
    each series' last runs only (a windowed read of the store), and ``history`` counts every run.
    """
    import pandas as pd

    columns = [
        "group",
        "case",
        "device",
        "host",
        "gpu_uuid",
        "gpu_name",
        "runs",
        "history",
        "previous_run",
        "previous_median_s",
        "baseline_runs",
        "latest_run",
        "latest_median_s",
        "change_pct",
        "regression",
        *COMPARISON_COLUMNS,
    ]
    if frame.empty:
        empty: pd.DataFrame = pd.DataFrame(columns=columns)
        return empty
    counted = history.series if history is not None else None
    out = [
        _trend_row(key, runs, records, regression_pct, samples, rule, baseline_runs, cache or CompareCache())
        for key, (runs, records) in sorted(_run_history(frame, _kept_runs(baseline_runs), counted).items())
    ]
    # whole runs shift together (machine-wide noise): a flag must also beat the GPU's own run-to-run
    # spread, held to the report's FDR over every GPU trend
    spreads: list[RunSpread | None] = [row.pop("_spread") for row in out]
    cutoff = run_cutoff(spreads, (rule or NoiseRule()).fdr)
    family = sum(s is not None for s in spreads)
    for row, spread in zip(out, spreads, strict=True):
        if row["result"] is not None and spread is not None:
            result = gate(row["result"], spread, cutoff, family)
            row.update(comparison_cells(result), regression=result.flagged)
    table: pd.DataFrame = pd.DataFrame(out, columns=columns)
    return table


def _run_history(
    frame: pd.DataFrame, keep: int, counted: Callable[[Any, Any, Any], int | None] | None = None
) -> dict[tuple[str, str, str], tuple[int, list[dict[str, Any]]]]:
    """Per benchmark and GPU: how many runs hold it, and the records of the last ``keep`` of them (one per
    run, medians averaged if a run holds the case twice), in time order. Only the recent runs become
    Python records: a fleet's history has hundreds of thousands of rows, a trend needs the last few.
    ``counted(group, case, uuid)``: the runs of a series when ``frame`` holds only its last ones."""
    keys = ["group", "case", "gpu_uuid"]
    ordered = frame.sort_values(["run_time", "run_id"], kind="stable", na_position="first")
    per_run = (
        ordered.groupby([*keys, "run_id"], sort=False, dropna=False)
        .agg(
            median_s=("median_s", "mean"),
            iqr_s=("iqr_s", "mean"),
            rounds=("rounds", "sum"),
            device=("device", "last"),
            host=("host", "last"),
            name=("gpu_name", "last"),
        )
        .reset_index()
    )
    grouped = per_run.groupby(keys, sort=False, dropna=False)
    per_run["_runs"] = grouped["run_id"].transform("size")
    recent = per_run[grouped.cumcount(ascending=False) < max(1, keep)]
    # Arrow-backed text converted whole: to_dict reads it cell by cell otherwise (1 s at 20,000 trends)
    recent = recent.astype({c: object for c in recent.columns if recent[c].dtype == "str"})
    series: dict[tuple[str, str, str], tuple[int, list[dict[str, Any]]]] = {}
    for record in recent.to_dict("records"):
        runs = int(record.pop("_runs"))
        key = (record["group"], record["case"], record["gpu_uuid"])
        if key not in series:
            if counted is not None:  # the frame holds the series' last runs: the whole history's count
                runs = max(runs, counted(*key) or 0)
            series[key] = (runs, [])
        series[key][1].append(record)
    return series


def _kept_runs(baseline_runs: int) -> int:
    """How many of a trend's latest runs its row reads: the baseline window, the run-to-run spread's and
    the sparkline's, each with the latest run."""
    return max(max(1, baseline_runs), SPREAD_RUNS, SPARK_RUNS) + 1


# every run a report reads of a series (``gpubench report`` reads the store's last this many of each)
TREND_RUNS = _kept_runs(BASELINE_RUNS)


def _trend_row(
    key: tuple[str, str, str],
    runs: int,
    history: list[dict[str, Any]],
    regression_pct: float,
    samples: Mapping[SampleKey, tuple[float, ...]] | None,
    rule: NoiseRule | None,
    baseline_runs: int,
    cache: CompareCache,
) -> dict[str, Any]:
    group, case, uuid = key
    latest = history[-1]
    row: dict[str, Any] = {
        "group": group,
        "case": case,
        "device": latest["device"],
        "host": latest["host"],
        "gpu_uuid": uuid,
        "gpu_name": latest["name"],
        "runs": runs,
        "history": trend_cell([float(h["median_s"]) for h in history], runs),
        "previous_run": None,
        "previous_median_s": math.nan,
        "baseline_runs": 0,
        "latest_run": latest["run_id"],
        "latest_median_s": float(latest["median_s"]),
        "change_pct": math.nan,
        "regression": False,
        "_spread": None,
    }
    result = None
    if len(history) >= 2:
        window = history[-1 - max(1, baseline_runs) : -1]
        # the median run of the window (the lower middle one of an even count)
        previous = sorted(window, key=lambda h: float(h["median_s"]))[(len(window) - 1) // 2]
        names = (
            "previous run" if len(window) == 1 else f"baseline run (median of {len(window)})",
            "latest run",
        )
        result = cache.compare(previous, latest, regression_pct, rule, names, samples)
        # this GPU's run-to-run spread, where it has enough previous runs to measure one (see trend_table)
        spread = run_to_run([float(h["median_s"]) for h in history[:-1]], float(latest["median_s"]))
        row.update(
            previous_run=previous["run_id"],
            baseline_runs=len(window),
            previous_median_s=float(previous["median_s"]),
            change_pct=(float(latest["median_s"]) / float(previous["median_s"]) - 1.0) * 100.0,
            regression=result.flagged,
            _spread=spread,
        )
    return row | comparison_cells(result)


def outlier_table(
    frame: pd.DataFrame,
    outlier_pct: float,
    samples: Mapping[SampleKey, tuple[float, ...]] | None = None,
    rule: NoiseRule | None = None,
    cache: CompareCache | None = None,
) -> pd.DataFrame:
    """GPUs slower than the median of their same-model siblings on the same benchmark.

    For each GPU (UUID) the latest row of each benchmark is compared with the median throughput of the
    other GPUs of the same name (``deficit_pct``). ``outlier`` is set when ``deficit_pct`` >
    ``outlier_pct`` **and** the GPU's rounds are significantly slower than those of its reference sibling
    (the one whose throughput is nearest the sibling median), by :func:`~gpubench.report.compare.compare`
    under ``rule``; a comparison too noisy to make flags nothing. CPUs are left out, and so are
    benchmarks that only one GPU of a model ran.
    """
    import pandas as pd

    columns = [
        "group",
        "case",
        "gpu_name",
        "host",
        "device",
        "gpu_index",
        "gpu_uuid",
        "run_id",
        "throughput",
        "throughput_unit",
        "sibling_median",
        "siblings",
        "deficit_pct",
        "outlier",
        *COMPARISON_COLUMNS,
    ]
    if frame.empty:
        empty: pd.DataFrame = pd.DataFrame(columns=columns)
        return empty
    gpus = frame[frame["device"].str.startswith("cuda") & frame["gpu_name"].notna()]
    latest = gpus.sort_values(["run_time", "run_id"], kind="stable", na_position="first").drop_duplicates(
        ["group", "case", "gpu_uuid"], keep="last"
    )
    out: list[dict[str, Any]] = []
    families: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    chosen = latest[[*columns[:10], "median_s", "iqr_s", "rounds"]]
    chosen = chosen.astype({c: object for c in chosen.columns if chosen[c].dtype == "str"})
    for record in chosen.to_dict("records"):
        families.setdefault((record["group"], record["case"], record["gpu_name"]), []).append(record)
    for _key, members in sorted(families.items()):
        if len(members) < 2:  # one row per UUID after drop_duplicates
            continue
        siblings = Siblings(members)
        for i, member in enumerate(members):
            out.append(_outlier_row(member, siblings, i, outlier_pct, samples, rule, cache or CompareCache()))
    table: pd.DataFrame = pd.DataFrame(out, columns=columns)
    return table


class Siblings:
    """The GPUs of one model on one benchmark, by throughput: for each member, the median throughput of
    the others and the other nearest it, in O(log n) (a fleet has 512 siblings: every member compared
    with a list of all the others was a quarter of a million steps per benchmark)."""

    def __init__(self, members: list[dict[str, Any]]) -> None:
        self.members = members
        self.order = sorted(range(len(members)), key=lambda i: float(members[i]["throughput"]))
        self.values = [float(members[i]["throughput"]) for i in self.order]
        self.rank = {member: rank for rank, member in enumerate(self.order)}

    def others_median(self, index: int) -> float:
        """``statistics.median`` of every member's throughput but ``index``'s."""
        skip, count = self.rank[index], len(self.values) - 1

        def at(k: int) -> float:  # the k-th smallest of the others
            return self.values[k + 1] if k >= skip else self.values[k]

        middle = count // 2
        return at(middle) if count % 2 else (at(middle - 1) + at(middle)) / 2.0

    def nearest(self, index: int, value: float) -> dict[str, Any]:
        """The other member whose throughput is nearest ``value`` (the first in member order on a tie, as
        ``min`` over the others in member order picks)."""
        position = bisect.bisect_left(self.values, value)
        # the nearest value is next to where ``value`` would go; two more ranks in case one is ``index``
        window = range(max(0, position - 2), min(len(self.values), position + 2))
        gaps = [(abs(self.values[r] - value), r) for r in window if self.order[r] != index]
        if not gaps:
            raise ValueError("a family of one has no siblings")
        gap = min(g for g, _ in gaps)
        # every member at the nearest value(s), below and above, however many share it
        tied = [
            m
            for v in {self.values[r] for g, r in gaps if g == gap}
            for m in self._with_value(v)
            if m != index
        ]
        return self.members[min(tied)]

    def _with_value(self, value: float) -> list[int]:
        low, high = bisect.bisect_left(self.values, value), bisect.bisect_right(self.values, value)
        return [self.order[r] for r in range(low, high)]


def _outlier_row(
    member: dict[str, Any],
    siblings: Siblings,
    index: int,
    outlier_pct: float,
    samples: Mapping[SampleKey, tuple[float, ...]] | None,
    rule: NoiseRule | None,
    cache: CompareCache,
) -> dict[str, Any]:
    sibling = siblings.others_median(index)
    deficit = (1.0 - float(member["throughput"]) / sibling) * 100.0 if sibling > 0 else math.nan
    reference = siblings.nearest(index, sibling)
    # the same work per call on the same model: throughput deficit d is a time ratio of 1 / (1 - d)
    threshold = (100.0 / (100.0 - outlier_pct) - 1.0) * 100.0 if outlier_pct < 100 else math.inf
    names = (f"sibling {reference['device']} ({reference['host']})", "GPU's latest run")  # notes read "3 round(s) in the GPU's latest run"
    result = cache.compare(reference, member, threshold, rule, names, samples)
    fields = {k: v for k, v in member.items() if k not in ("median_s", "iqr_s", "rounds")}
    return {
        **fields,
        "sibling_median": sibling,
        "siblings": len(siblings.members) - 1,
        "deficit_pct": deficit,
        "outlier": bool(deficit > outlier_pct and result.significant and result.ratio > 1.0),
        **comparison_cells(result),
    }


def missed_targets(frame: pd.DataFrame) -> int | None:
    """Targets missed in the latest row of each benchmark on each GPU; None when no row recorded targets."""
    if frame.empty or "targets" not in frame.columns or not frame["targets"].notna().any():
        return None
    latest = frame.sort_values(["run_time", "run_id"], kind="stable", na_position="first").drop_duplicates(
        ["group", "case", "gpu_uuid"], keep="last"
    )
    return int(latest["targets_missed"].fillna(0).sum())
