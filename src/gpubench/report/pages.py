"""One page per GPU, keyed by UUID: identity, the latest run's benchmarks with their flags, a telemetry
summary and the latest verification verdicts."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gpubench.report.analysis import bench_label, device_sort_key, latest_run_id
from gpubench.report.model import GpuPage, Table
from gpubench.report.text import cell, format_metric, format_number, format_pct, format_seconds

if TYPE_CHECKING:
    import pandas as pd

    from gpubench.report.load import LoadedRuns

# verification checks are listed worst first
VERDICT_ORDER = {"FAIL": 0, "WARN": 1, "PASS": 2, "SKIP": 3}
BENCHMARK_TABLE_COLUMNS = (
    "benchmark",
    "median",
    "throughput",
    "of ceiling",
    "vs previous run",
    "util (mean)",
    "power (mean)",
    "energy",
    "flag",
)


def _anchor(uuid: str) -> str:
    return "gpu-" + re.sub(r"[^0-9A-Za-z_-]+", "-", uuid).strip("-").lower()


def gpu_pages(
    loaded: LoadedRuns, trends: pd.DataFrame, outliers: pd.DataFrame, only: set[str] | None = None
) -> tuple[GpuPage, ...]:
    """One page per UUID seen in a benchmark or verification run (only those in ``only`` when given),
    ordered by host, device and index.

    A device that was configured but never ran (see :func:`not_run`) gets no page: only its line."""
    uuids: dict[str, tuple[Any, ...]] = {}
    unrun = set(_never_ran(loaded))
    for source in (loaded.benchmarks, loaded.verify):
        if only is not None:
            source = source[source["gpu_uuid"].astype(str).isin(only)]
        for _, r in source.drop_duplicates("gpu_uuid").iterrows():
            if str(r["gpu_uuid"]) in unrun:
                continue
            index = r.get("gpu_index", math.nan)
            key = (
                str(r["host"]),
                device_sort_key(str(r["device"])),
                index if index == index else 99,
                r["gpu_uuid"],
            )
            uuids.setdefault(str(r["gpu_uuid"]), key)
    return tuple(_page_for(u, loaded, trends, outliers) for u in sorted(uuids, key=lambda u: uuids[u]))


NOT_RUN = "configured, not run"


def not_run(loaded: LoadedRuns) -> tuple[str, ...]:
    """One line per device that was configured but never ran, ``configured, not run: <why>``.

    Two kinds: a device whose benchmarks fell back to another device in a host's latest benchmark run (the
    saved ``fallback_note``, keyed by the ``requested_device`` of ``extra_info``), and a device that only
    verification runs name, with no identity of its own (no UUID: the GPU was never seen) and nothing but
    "unusable" verdicts (the inventory's reason)."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for key, why in _fallbacks(loaded).items():
        reasons.setdefault(key, []).append(why)
    for host, device, why in _never_ran(loaded).values():
        reasons.setdefault((host, device), []).append(why)
    return tuple(
        f"{NOT_RUN}: {device} on {host}: {'; '.join(dict.fromkeys(whys))}"
        for (host, device), whys in reasons.items()
    )


def _fallbacks(loaded: LoadedRuns) -> dict[tuple[str, str], str]:
    """(host, requested device) -> its fallback note, for devices each host's latest benchmark run only
    reached through a fallback."""
    frame = loaded.benchmarks
    out: dict[tuple[str, str], str] = {}
    if frame.empty:
        return out
    # only hosts with a fallback somewhere need their latest run looked at (a fleet has few or none)
    moved_any = (frame["requested_device"] != frame["device"]) & (frame["fallback_note"] != "")
    frame = frame[frame["host"].isin(set(frame.loc[moved_any, "host"]))]
    for host, mine in frame.groupby("host", sort=True):
        latest = mine[mine["run_id"] == latest_run_id(mine)]
        ran = set(latest["device"].astype(str))
        moved = latest[(latest["requested_device"] != latest["device"]) & (latest["fallback_note"] != "")]
        for _, r in moved.iterrows():
            if str(r["requested_device"]) not in ran:
                out.setdefault((str(host), str(r["requested_device"])), str(r["fallback_note"]))
    return out


def _never_ran(loaded: LoadedRuns) -> dict[str, tuple[str, str, str]]:
    """uuid -> (host, device, reason) of the devices only verification names, never seen and never run."""
    checks = loaded.verify
    if checks.empty:
        return {}
    benchmarked = set(loaded.benchmarks["gpu_uuid"].astype(str)) if not loaded.benchmarks.empty else set()
    out: dict[str, tuple[str, str, str]] = {}
    for uuid, mine in checks.groupby("gpu_uuid", sort=True):
        device = str(mine["device"].iloc[-1])
        host = str(mine["host"].iloc[-1])
        if str(uuid) in benchmarked or not str(uuid).endswith(f"/{device}"):  # a real UUID: the GPU was seen
            continue
        prefix = f"{device} unusable: "
        messages = [str(m) if m == m and m is not None else "" for m in mine["message"]]
        unusable = [m.startswith(prefix) for m in messages]
        if not all(u or v == "SKIP" for u, v in zip(unusable, mine["verdict"], strict=True)):
            continue
        reasons = sorted((m[len(prefix) :] for m, u in zip(messages, unusable, strict=True) if u), key=len)
        why = reasons[-1] if reasons else next((m for m in messages if m), "every check was skipped")
        out[str(uuid)] = (host, device, why.removesuffix(" (see inventory)"))
    return out


def _page_for(uuid: str, loaded: LoadedRuns, trends: pd.DataFrame, outliers: pd.DataFrame) -> GpuPage:
    """The page of the GPU (or CPU) with this UUID: its latest benchmark run, else its latest verification."""
    frame = loaded.benchmarks
    mine = frame[frame["gpu_uuid"] == uuid]
    checks = loaded.verify[loaded.verify["gpu_uuid"] == uuid] if not loaded.verify.empty else loaded.verify
    if not mine.empty:
        run_id = latest_run_id(mine)
        latest = mine[mine["run_id"] == run_id]
        head = latest.iloc[-1]
    else:
        run_id, latest = None, mine
        head = checks.sort_values("started", kind="stable").iloc[-1]
    device, host, name = str(head["device"]), str(head["host"]), cell(head["gpu_name"])
    notes = tuple(dict.fromkeys(n for n in latest["fallback_note"] if n)) if not latest.empty else ()
    telemetry = _telemetry_summary(latest, [c for c in loaded.telemetry_columns if c in latest.columns])
    verification, verification_caption = _verification_for(checks)
    benchmarks = _benchmark_table(
        latest, run_id, trends[trends["gpu_uuid"] == uuid], outliers[outliers["gpu_uuid"] == uuid]
    )
    return GpuPage(
        uuid,
        f"{device} · {name} · {host}",
        _anchor(uuid),
        _identity(uuid, name, host, mine, checks, run_id),
        notes,
        benchmarks,
        telemetry,
        verification,
        verification_caption,
    )


def _identity(
    uuid: str, name: str, host: str, mine: pd.DataFrame, checks: pd.DataFrame, run_id: str | None
) -> tuple[tuple[str, str], ...]:
    """The page's identity list: UUID, name, host, every device id it was seen as, PCI bus id, runs."""
    seen_as = sorted({*mine["device"].astype(str), *checks["device"].astype(str)}, key=device_sort_key)
    identity = [("UUID", uuid), ("name", name), ("host", host), ("seen as", ", ".join(seen_as))]
    if not mine.empty:
        pci = mine["gpu_pci_bus_id"].dropna()
        identity.append(("PCI bus id", str(pci.iloc[-1]) if not pci.empty else "–"))
        identity.append(("benchmark runs", str(mine["run_id"].nunique())))
        identity.append(("latest benchmark run", str(run_id)))
    return tuple(identity)


def _benchmark_table(
    latest: pd.DataFrame, run_id: str | None, trends: pd.DataFrame, outliers: pd.DataFrame
) -> Table:
    """The latest run's benchmarks on one device, flagged REGRESSION, OUTLIER or FALLBACK.

    ``trends`` and ``outliers`` hold only this device's rows.
    """
    trend_index = {(r["group"], r["case"]): r for _, r in trends.iterrows()}
    outlier_index = {(r["group"], r["case"]): r for _, r in outliers.iterrows()}
    bench_rows, bench_flags = [], []
    for _, r in latest.iterrows():
        trend = trend_index.get((r["group"], r["case"]))
        outlier = outlier_index.get((r["group"], r["case"]))
        flags = []
        if trend is not None and trend["regression"]:
            flags.append("REGRESSION")
        if outlier is not None and outlier["outlier"]:
            flags.append("OUTLIER")
        if r["fallback_note"]:
            flags.append("FALLBACK")
        change = format_pct(trend["change_pct"], signed=True) if trend is not None else "–"
        bench_rows.append(
            (
                bench_label(r["group"], r["case"]),
                format_seconds(r["median_s"]),
                f"{format_number(r['throughput'])} {r['throughput_unit']}",
                format_pct(r["ceiling_fraction"] * 100)
                if r["ceiling_fraction"] == r["ceiling_fraction"]
                else "–",
                change,
                _metric(r, "gpu_util_pct_mean", "cpu_util_pct_mean", fmt="{:.0f}%"),
                _metric(r, "power_w_mean", fmt="{:.0f} W"),
                _metric(r, "energy_j", fmt="{:.1f} J"),
                " ".join(flags) or "ok",
            )
        )
        bench_flags.append(bool(flags))
    return Table(
        BENCHMARK_TABLE_COLUMNS,
        tuple(bench_rows),
        tuple(bench_flags),
        f"Latest run {run_id}." if run_id else "No benchmark results for this device.",
    )


def _metric(row: Any, *columns: str, fmt: str) -> str:
    for column in columns:
        value = row.get(column)
        if value is not None and value == value:
            return fmt.format(float(value))
    return "–"


def _telemetry_summary(rows: pd.DataFrame, columns: Sequence[str]) -> Table:
    """Over the latest run's benchmarks on this device: mean of means, max of maxima, total energy."""
    import pandas as pd

    out = []
    for column in columns:
        # metric statistics only; util_*_pct repeats gpu_util or cpu_util under a device-neutral name
        if not (column.endswith(("_mean", "_max")) or column == "energy_j") or column.startswith("util_"):
            continue
        values = pd.to_numeric(rows[column], errors="coerce").dropna()
        if values.empty:
            continue
        if column.endswith("_max"):
            out.append((column, format_metric(column, values.max()), "max over benchmarks"))
        elif column == "energy_j":
            out.append((column, format_metric(column, values.sum()), "total over benchmarks"))
        else:
            out.append((column, format_metric(column, values.mean()), "mean over benchmarks"))
    caption = _telemetry_status(rows) or ("" if out else "No telemetry recorded for this device.")
    return Table(("metric", "value", "how"), tuple(out), caption=caption)


# the sampler's statuses other than ok, as the page words them
_STATUS_WORDS = (
    ("partial", "Telemetry partial"),
    ("unavailable", "Telemetry not available"),
    ("disabled", "Telemetry disabled"),
)


def _telemetry_status(rows: pd.DataFrame) -> str:
    """Why telemetry is missing or cut short in these benchmarks, with the sampler's reasons; "" when not."""
    if "telemetry_status" not in rows.columns:
        return ""
    reasons = rows["telemetry_unavailable_reason"] if "telemetry_unavailable_reason" in rows.columns else None
    sentences = []
    for status, words in _STATUS_WORDS:
        mine = rows["telemetry_status"] == status
        if not mine.any():
            continue
        why = "; ".join(dict.fromkeys(str(r) for r in reasons[mine].dropna())) if reasons is not None else ""
        count = f"{words} in {int(mine.sum())} of {len(rows)} benchmarks"
        sentences.append(f"{count}: {why}" if why else f"{count}.")
    return " ".join(sentences)


def _verification_for(checks: pd.DataFrame) -> tuple[Table, str]:
    columns = ("check", "verdict", "value", "threshold", "unit", "message", "remedy")
    if checks.empty:
        return Table(columns, ()), "No verification run covers this device (run `gpubench verify`)."
    run_id = str(
        checks.sort_values(["started", "run_id"], kind="stable", na_position="first").iloc[-1]["run_id"]
    )
    latest = checks[checks["run_id"] == run_id].sort_values(
        "verdict", key=lambda v: v.map(lambda x: VERDICT_ORDER.get(x, 9)), kind="stable"
    )
    rows = tuple(tuple(cell(r[c]) for c in columns) for _, r in latest.iterrows())
    flags = tuple(r["verdict"] in ("FAIL", "WARN") for _, r in latest.iterrows())
    started = latest["started"].iloc[0]
    when = started.strftime("%Y-%m-%d %H:%M UTC") if started == started else "unknown time"
    counts = latest["verdict"].value_counts()
    tally = ", ".join(f"{counts[v]} {v}" for v in VERDICT_ORDER if v in counts)
    return Table(columns, rows, flags), f"Latest verification run {run_id} ({when}): {tally}."
