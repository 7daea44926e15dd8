"""A report that stays readable at 500 GPUs: the fleet summary (by host and by model), which GPUs need a
page, one index table for the rest, trends as sparklines with their last values, the latest runs with
totals, and skipped entries grouped by reason.

Pure functions of the loaded tables and the trend and outlier tables; nothing is drawn or written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from gpubench.report.model import Table
from gpubench.report.text import cell

if TYPE_CHECKING:
    import pandas as pd

    from gpubench.report.load import LoadedRuns

# up to this many devices every device gets a page; above it only those that need attention do
ALL_PAGES_LIMIT = 16
# the runs table shows the latest RUNS_SHOWN runs; trend and outlier tables at most ROWS_SHOWN unflagged rows
RUNS_SHOWN = 20
ROWS_SHOWN = 20
# above this many hosts (or models), those with nothing flagged are summed into one row
QUIET_ROWS = 12
# a reason of skipped entries lists its first EXAMPLES
EXAMPLES = 3


def _gpu_rows(loaded: LoadedRuns) -> pd.DataFrame:
    """One row per GPU (not CPU) seen in a benchmark or verification: uuid, host, device, model."""
    import pandas as pd

    parts = []
    for source in (loaded.benchmarks, loaded.verify):
        if not source.empty:
            parts.append(source[["gpu_uuid", "host", "device", "gpu_name"]])
    if not parts:
        empty: pd.DataFrame = pd.DataFrame(columns=["gpu_uuid", "host", "device", "gpu_name"])
        return empty
    every = pd.concat(parts, ignore_index=True)
    gpus = every[every["device"].astype(str).str.startswith("cuda")]
    last: pd.DataFrame = gpus.drop_duplicates("gpu_uuid", keep="last").reset_index(drop=True)
    return last


def failing_gpus(loaded: LoadedRuns) -> tuple[set[str], set[str]]:
    """UUIDs whose latest verification run has a FAIL, and those with a WARN (and no FAIL)."""
    checks = loaded.verify
    if checks.empty:
        return set(), set()
    ordered = checks.sort_values(["started", "run_id"], kind="stable", na_position="first")
    latest_run = ordered.groupby("gpu_uuid")["run_id"].last()
    latest = ordered[ordered["run_id"] == ordered["gpu_uuid"].map(latest_run)]
    fail = set(latest.loc[latest["verdict"] == "FAIL", "gpu_uuid"].astype(str))
    warn = set(latest.loc[latest["verdict"] == "WARN", "gpu_uuid"].astype(str)) - fail
    return fail, warn


def _flagged(table: pd.DataFrame, flag: str) -> set[str]:
    return set(table.loc[table[flag].astype(bool), "gpu_uuid"].astype(str)) if not table.empty else set()


def attention(loaded: LoadedRuns, trends: pd.DataFrame, outliers: pd.DataFrame) -> dict[str, list[str]]:
    """UUID -> why it needs a look: REGRESSION, OUTLIER, verification FAIL or WARN, FALLBACK."""
    why: dict[str, list[str]] = {}
    fail, warn = failing_gpus(loaded)
    for uuids, word in (
        (_flagged(trends, "regression"), "REGRESSION"),
        (_flagged(outliers, "outlier"), "OUTLIER"),
        (fail, "verification FAIL"),
        (warn, "verification WARN"),
    ):
        for uuid in uuids:
            why.setdefault(uuid, []).append(word)
    frame = loaded.benchmarks
    if not frame.empty:
        for uuid in set(frame.loc[frame["fallback_note"].astype(str) != "", "gpu_uuid"].astype(str)):
            why.setdefault(uuid, []).append("FALLBACK")
    return why


def fleet_tables(
    loaded: LoadedRuns, trends: pd.DataFrame, outliers: pd.DataFrame
) -> tuple[str, Table, Table]:
    """The fleet's one-line count and its tables by host and by model: GPUs seen, verified, failing
    verification, regressed, outliers (hosts and models with something to look at first)."""
    gpus = _gpu_rows(loaded)
    verified = set(loaded.verify["gpu_uuid"].astype(str)) if not loaded.verify.empty else set()
    fail, _ = failing_gpus(loaded)
    regressed, odd = _flagged(trends, "regression"), _flagged(outliers, "outlier")
    columns = ("GPUs", "verified", "failing", "regressed", "outliers")

    def counts(uuids: Iterable[str]) -> tuple[int, ...]:
        mine = set(uuids)
        return (len(mine), len(mine & verified), len(mine & fail), len(mine & regressed), len(mine & odd))

    total = counts(gpus["gpu_uuid"].astype(str))
    hosts = gpus["host"].nunique()
    models = gpus["gpu_name"].fillna("unknown model").astype(str)
    line = (
        f"Fleet: {total[0]} GPU(s) on {hosts} host(s), {models.nunique()} model(s): {total[1]} verified, "
        f"{total[2]} failing verification, {total[3]} regressed, {total[4]} outlier(s)"
    )
    tables = []
    for label, keys in (("host", gpus["host"].astype(str)), ("model", models)):
        rows = []
        for key in sorted(set(keys)):
            row = counts(gpus.loc[keys == key, "gpu_uuid"].astype(str))
            rows.append((key, *(str(v) for v in row)))
        rows.sort(key=lambda r: (-sum(int(v) for v in r[3:]), r[0]))  # something to look at first
        caption = (
            f"By {label}: {len(rows)} {label}(s); failing = a FAIL in the GPU's latest verification run."
        )
        quiet = [r for r in rows if not any(int(v) for v in r[3:])]
        if len(rows) > QUIET_ROWS and len(quiet) > 1:  # a fleet: the quiet ones summed in one line
            rows = [r for r in rows if any(int(v) for v in r[3:])]
            totals = [str(sum(int(r[i]) for r in quiet)) for i in range(1, 6)]
            rows.append((f"{len(quiet)} other {label}(s), nothing flagged", *totals))
        flags = tuple(any(int(v) for v in r[3:]) for r in rows)
        tables.append(Table((label, *columns), tuple(rows), flags, caption))
    return line, tables[0], tables[1]


def gpu_index(loaded: LoadedRuns, shown: set[str]) -> Table:
    """One row per device without a page of its own: host, device, model, UUID, runs, latest run."""
    frame = loaded.benchmarks
    rows = []
    if not frame.empty:
        rest = frame[~frame["gpu_uuid"].astype(str).isin(shown)]
        per = rest.groupby("gpu_uuid", sort=False).agg(
            host=("host", "last"),
            device=("device", "last"),
            name=("gpu_name", "last"),
            runs=("run_id", "nunique"),
            latest=("run_id", "last"),
        )
        counted = loaded.history.gpu_runs if loaded.history is not None else {}
        ordered = per.sort_values(["host", "device"], kind="stable").reset_index()
        for r in ordered.to_dict("records"):
            uuid = str(r["gpu_uuid"])
            runs = max(int(r["runs"]), counted.get(uuid, 0))  # a windowed read: the whole history's
            rows.append((str(r["host"]), str(r["device"]), cell(r["name"]), uuid, str(runs), "ok"))
    caption = (
        f"{len(rows)} device(s) with nothing to look at (no regression, outlier, failed verification or "
        "fallback): no page of their own."
    )
    return Table(("host", "device", "GPU", "UUID", "runs", "status"), tuple(rows), caption=caption)


def limit_rows(table: Table, shown: int = ROWS_SHOWN, what: str = "rows") -> Table:
    """Every flagged row and the first ``shown`` others (the table is ordered worst first); the caption
    says how many were left out."""
    if len(table.rows) <= shown + sum(table.flagged):
        return table
    keep = [i for i, f in enumerate(table.flagged) if f]
    keep += [i for i, f in enumerate(table.flagged) if not f][:shown]
    keep.sort()
    left = len(table.rows) - len(keep)
    caption = f"{table.caption} Showing the {len(keep)} flagged or largest of {len(table.rows)} {what}; {left} more within noise are in tidy.csv."
    return Table(
        table.columns, tuple(table.rows[i] for i in keep), tuple(table.flagged[i] for i in keep), caption
    )


_PATH = re.compile(r"(?:/[^\s:]+)+")
_NUMBER = re.compile(r"\d+")


def skipped_table(warnings: Sequence[str]) -> Table:
    """Skipped files and entries grouped by reason (paths and numbers taken out), with how many and the
    first :data:`EXAMPLES` of each."""
    groups: dict[str, list[str]] = {}
    for warning in warnings:
        reason = _NUMBER.sub(
            "N", _PATH.sub("…", warning.split(": ", 1)[-1] if warning.startswith("skipped ") else warning)
        )
        groups.setdefault(reason[:160], []).append(warning)
    rows = tuple(
        (reason, str(len(items)), " · ".join(items[:EXAMPLES]) + (" · …" if len(items) > EXAMPLES else ""))
        for reason, items in sorted(groups.items(), key=lambda kv: -len(kv[1]))
    )
    caption = f"{len(warnings)} skipped file(s) or entries in {len(rows)} kind(s)."
    return Table(("reason", "count", "examples"), rows, caption=caption)


def runs_caption(loaded: LoadedRuns, shown: int) -> str:
    runs = loaded.runs
    bench = int((runs["kind"] == "benchmarks").sum()) if not runs.empty else 0
    verify = int((runs["kind"] == "verify").sum()) if not runs.empty else 0
    hosts = runs["host"].nunique() if not runs.empty else 0
    head = f"The latest {shown} of {len(runs)} runs" if shown < len(runs) else f"All {len(runs)} runs"
    return f"{head}: {bench} benchmark run(s) and {verify} verification run(s) on {hosts} host(s)."
