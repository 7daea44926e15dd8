"""Plots drawn with matplotlib (off-screen, Agg) as PNG bytes: throughput per device and telemetry
timelines (utilization, power, SM clock) of one benchmark."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpubench.report.analysis import bench_label, device_sort_key, latest_run_id
from gpubench.report.model import Plot, ReportError
from gpubench.report.text import strip_controls
from gpubench.report.traces import read_trace, resolve_trace

if TYPE_CHECKING:
    import pandas as pd

# trace columns drawn in the timelines: (panel title, candidate columns, axis label)
TIMELINE_PANELS = (
    ("utilization", ("gpu_util_pct", "cpu_util_pct"), "%"),
    ("power", ("power_w",), "W"),
    ("SM clock", ("sm_clock_mhz",), "MHz"),
)


def use_agg_backend() -> None:
    """Draw off-screen: reports run on headless GPU nodes and in CI, where no display exists."""
    import matplotlib

    matplotlib.use("Agg", force=True)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    # no Software metadata: it carries a URL, and the HTML must name none
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def throughput_plots(frame: pd.DataFrame, configured: Sequence[str] = (), per_figure: int = 12) -> list[Plot]:
    """Throughput per device for each benchmark of the latest run.

    Up to ``per_figure`` benchmarks: one small bar chart each, in its own unit. More: one chart of
    throughput relative to the first device (a figure per dozen benchmarks would take seconds each
    to draw and nobody reads nine of them).
    """
    import matplotlib.pyplot as plt

    run_id = latest_run_id(frame)
    latest = frame[frame["run_id"] == run_id]
    colours = device_colours(frame, configured)
    devices = [d for d in colours if d in set(latest["device_label"])]
    cases = list(latest.groupby(["group", "case"], sort=True).groups)
    if len(cases) > per_figure and len(devices) > 1:
        return [_relative_throughput_plot(latest, cases, devices, colours, str(run_id))]
    plots = []
    for start in range(0, len(cases), per_figure):
        chunk = cases[start : start + per_figure]
        ncols = min(3, len(chunk))
        nrows = math.ceil(len(chunk) / ncols)
        height = 2.7 * nrows + 0.7
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, height), squeeze=False)
        # fixed margins instead of a layout engine: constrained layout costs about a second per figure
        fig.subplots_adjust(
            left=0.09 if ncols > 1 else 0.2,
            right=0.98,
            bottom=0.45 / height,
            top=1 - 0.75 / height,
            wspace=0.38,
            hspace=0.5,
        )
        for ax, (group, case) in zip(axes.flat, chunk, strict=False):
            rows = latest[(latest["group"] == group) & (latest["case"] == case)]
            values = rows.groupby("device_label")["throughput"].mean()
            names = [d for d in devices if d in values.index]
            ax.bar([_plain(n) for n in names], [values[d] for d in names], color=[colours[d] for d in names])
            ax.set_title(_short(_plain(bench_label(group, case)), 48), fontsize=9)
            ax.set_ylabel(str(rows["throughput_unit"].iloc[0]), fontsize=8)
            ax.tick_params(labelsize=8)
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
        for ax in list(axes.flat)[len(chunk) :]:
            ax.set_visible(False)
        number = start // per_figure + 1
        fig.suptitle(f"Throughput per device, run {_plain(str(run_id))} (higher is faster)", fontsize=11)
        several = len(cases) > per_figure
        name = f"throughput_{number}.png" if several else "throughput.png"
        title = f"Throughput per device ({number})" if several else "Throughput per device"
        plots.append(
            Plot(name, title, _png(fig), "Higher is faster; each benchmark's unit is on its y axis.")
        )
    return plots


def _relative_throughput_plot(
    latest: pd.DataFrame,
    cases: Sequence[tuple[str, str]],
    devices: Sequence[str],
    colours: Mapping[str, Any],
    run_id: str,
) -> Plot:
    import matplotlib.pyplot as plt

    base = devices[0]
    wide = latest.pivot_table(
        index=["group", "case"], columns="device_label", values="throughput", aggfunc="mean"
    )
    height = 0.16 * len(cases) * len(devices) + 1.4
    fig, ax = plt.subplots(figsize=(10, height))
    fig.subplots_adjust(left=0.42, right=0.97, top=1 - 0.8 / height, bottom=0.6 / height)
    step = 0.8 / len(devices)
    for j, device in enumerate(devices):
        ratios = [
            wide.loc[c, device] / wide.loc[c, base] if device in wide.columns else math.nan for c in cases
        ]
        positions = [i + (j - (len(devices) - 1) / 2) * step for i in range(len(cases))]
        ax.barh(positions, ratios, height=step, color=colours[device], label=_plain(device))
    ax.set_yticks(range(len(cases)), [_short(_plain(bench_label(g, c)), 60) for g, c in cases], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"throughput relative to {_plain(base)} (higher is faster)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Throughput per device relative to {_plain(base)}, run {_plain(run_id)}", fontsize=11)
    caption = f"{len(cases)} benchmarks; absolute numbers are in the side-by-side table."
    return Plot("throughput.png", "Throughput per device", _png(fig), caption)


def device_colours(frame: pd.DataFrame, configured: Sequence[str] = ()) -> dict[str, Any]:
    """One colour per device label, the same in every plot, in device order."""
    import matplotlib

    devices = sorted(frame["device_label"].unique(), key=lambda d: device_sort_key(str(d), configured))
    cmap = matplotlib.colormaps["tab10"]
    return {str(d): cmap(i % 10) for i, d in enumerate(devices)}


def _trace_duration(results_dir: Path, trace: str) -> float:
    path = resolve_trace(results_dir, trace)
    if path is None:
        return -1.0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        header = lines[0].split(",")
        column = header.index("t")
        return float(lines[-1].split(",")[column]) - float(lines[1].split(",")[column])
    except (OSError, ValueError, IndexError):
        return -1.0


def choose_timeline_benchmark(frame: pd.DataFrame, results_dir: Path, wanted: str | None) -> str | None:
    """The ``group / case`` whose telemetry timelines are drawn: ``wanted`` (matched against case, name,
    group and full name, case-insensitively; exact first) or the one with the longest trace."""
    traced = frame[frame["trace"].notna()]
    if traced.empty:
        if wanted:
            msg = (
                f"--benchmark {wanted!r}: no benchmark in these runs has a telemetry trace. "
                "Fix: run the benchmarks with telemetry enabled (telemetry.enabled: true)"
            )
            raise ReportError(msg)
        return None
    labels = [bench_label(g, c) for g, c in zip(traced["group"], traced["case"], strict=True)]
    traced = traced.assign(label=labels)
    if wanted:
        needle = wanted.lower()
        fields = ("label", "case", "name", "group", "benchmark")
        exact = traced[[any(str(r[f]).lower() == needle for f in fields) for _, r in traced.iterrows()]]
        partial = traced[[any(needle in str(r[f]).lower() for f in fields) for _, r in traced.iterrows()]]
        found = exact if not exact.empty else partial
        if found.empty:
            available = ", ".join(sorted(set(labels)))
            msg = f"--benchmark {wanted!r} matches no traced benchmark. Fix: use one of: {available}"
            raise ReportError(msg)
        return str(found.sort_values(["run_time", "run_id"], kind="stable").iloc[-1]["label"])
    durations = [(_trace_duration(results_dir, str(t)), str(t)) for t in traced["trace"]]
    traced = traced.assign(duration=[d for d, _ in durations])
    best = traced.sort_values(["duration", "median_s", "run_time"], kind="stable").iloc[-1]
    return str(best["label"])


def timeline_plot(
    frame: pd.DataFrame, results_dir: Path, label: str, configured: Sequence[str], warnings: list[str]
) -> Plot | None:
    """Utilization, power and SM clock over time for one benchmark, one line per device (latest run)."""
    import matplotlib.pyplot as plt

    run_id, traces = _timeline_traces(frame, results_dir, label, configured, warnings)
    if not traces:
        return None
    colours = device_colours(frame, configured)
    fig, axes = plt.subplots(len(TIMELINE_PANELS), 1, figsize=(10, 7.6), sharex=True)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.07, top=0.88, hspace=0.28)
    handles: dict[str, Any] = {}
    for ax, panel in zip(axes, TIMELINE_PANELS, strict=True):
        _timeline_panel(ax, panel, traces, colours, handles)
    axes[-1].set_xlabel("seconds since the start of each trace")
    fig.legend(
        list(handles.values()),
        [_plain(d) for d in handles],
        loc="upper center",
        ncols=min(6, len(handles)),
        bbox_to_anchor=(0.5, 0.95),
        frameon=False,
        fontsize=9,
    )
    fig.suptitle(f"Telemetry during {_short(_plain(label), 70)} (run {_plain(str(run_id))})", fontsize=11)
    return Plot(
        f"timeline_{_safe_file(label)}.png",
        f"Telemetry timelines: {label}",
        _png(fig),
        "Utilization, power and SM clock sampled while the benchmark ran, one line per device.",
    )


def _timeline_traces(
    frame: pd.DataFrame, results_dir: Path, label: str, configured: Sequence[str], warnings: list[str]
) -> tuple[str | None, list[tuple[str, pd.DataFrame]]]:
    """The latest run holding benchmark ``label`` with a trace, and its readable traces in device order."""
    labels = [bench_label(g, c) for g, c in zip(frame["group"], frame["case"], strict=True)]
    rows = frame.assign(label=labels)
    rows = rows[(rows["label"] == label) & rows["trace"].notna()]
    if rows.empty:
        return None, []
    run_id = latest_run_id(rows)
    rows = rows[rows["run_id"] == run_id]
    traces = []
    for _, r in sorted(
        rows.iterrows(), key=lambda item: device_sort_key(str(item[1]["device_label"]), configured)
    ):
        path = resolve_trace(results_dir, str(r["trace"]))
        trace = read_trace(path, str(r["gpu_uuid"]), warnings) if path else None
        if trace is not None:
            traces.append((str(r["device_label"]), trace))
    return run_id, traces


def _timeline_panel(
    ax: Any,
    panel: tuple[str, tuple[str, ...], str],
    traces: Sequence[tuple[str, pd.DataFrame]],
    colours: Mapping[str, Any],
    handles: dict[str, Any],
) -> None:
    """One panel of the timelines: the first of its columns each trace has, one line per device.

    ``handles`` collects the first line drawn per device, for the figure's legend.
    """
    import pandas as pd

    title, columns, unit = panel
    drawn = []
    for device, trace in traces:
        column = next((c for c in columns if c in trace.columns), None)
        if column is None:
            continue
        values = pd.to_numeric(trace[column], errors="coerce")
        (line,) = ax.plot(
            trace["t"] - trace["t"].iloc[0],
            values,
            color=colours.get(device, "black"),
            linewidth=1.4,
            label=_plain(device),
        )
        handles.setdefault(device, line)
        drawn.append(column)
    shown = ", ".join(dict.fromkeys(drawn))
    ax.set_title(f"{title} ({shown})" if shown else title, fontsize=10, loc="left")
    ax.set_ylabel(unit)
    ax.grid(alpha=0.3)
    if not drawn:
        ax.text(
            0.5,
            0.5,
            "not recorded on these devices",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="grey",
        )


def _safe_file(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", text).strip("_")[:80] or "benchmark"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str) -> str:
    """Text for matplotlib: no control characters and no ``$`` (mathtext)."""
    return strip_controls(text).replace("$", r"\$")
