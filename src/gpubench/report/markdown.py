"""The report as Markdown: every value escaped for a table cell or heading; plots linked as
``plots/<name>.png`` next to the file."""

from __future__ import annotations

from typing import Any

from gpubench.report.model import Report, Table
from gpubench.report.text import strip_controls

_MD_ESCAPES = {
    "\\": "\\\\",
    "|": "\\|",
    "<": "&lt;",
    ">": "&gt;",
    "`": "\\`",
    "*": "\\*",
    "[": "\\[",
    "]": "\\]",
    "&": "&amp;",
}


def md_escape(value: Any) -> str:
    """A value for a Markdown table cell or heading: no control characters, no HTML, no table breaks."""
    return "".join(_MD_ESCAPES.get(c, c) for c in strip_controls(str(value)))


def md_table(table: Table) -> str:
    if not table.rows:
        return f"_{md_escape(table.caption)}_\n" if table.caption else "_none_\n"
    lines = []
    if table.caption:
        lines += [md_escape(table.caption), ""]
    lines.append("| " + " | ".join(md_escape(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for i, row in enumerate(table.rows):
        cells = [md_escape(c) for c in row]
        if table.flagged and table.flagged[i]:
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(report: Report, plot_dir: str = "plots") -> str:
    """The report as Markdown; plots are linked as ``plots/<name>.png`` next to it."""
    out = [
        "# gpubench report",
        "",
        f"Generated {md_escape(report.generated)} from {md_escape(report.results_dir)}.",
        "",
        *[f"- {md_escape(line)}" for line in report.summary],
        "",
    ]
    if report.fleet_hosts.rows:
        out += ["## Fleet", "", md_table(report.fleet_hosts), md_table(report.fleet_models)]
    if report.warnings:
        out += ["## Skipped or damaged files", ""]
        if report.skipped.rows:
            out.append(md_table(report.skipped))
        else:
            out += [f"- {md_escape(w)}" for w in report.warnings]
            out.append("")
    out += ["## Runs", "", md_table(report.runs)]
    out += ["## Devices side by side", "", md_table(report.ratios)]
    for plot in report.plots:
        if plot.name.startswith("throughput"):
            out += [f"![{md_escape(plot.title)}]({plot_dir}/{plot.name})", ""]
    out += ["## Trends and regressions", "", md_table(report.trends)]
    out += ["## Outliers against same-model siblings", "", md_table(report.outliers)]
    out += ["## Telemetry timelines", ""]
    timelines = [p for p in report.plots if p.name.startswith("timeline")]
    if timelines:
        for plot in timelines:
            out += [
                f"Benchmark: {md_escape(report.timeline_benchmark or '')}. {md_escape(plot.caption)}",
                "",
                f"![{md_escape(plot.title)}]({plot_dir}/{plot.name})",
                "",
            ]
    else:
        out += ["_No telemetry trace to draw (or plots are off)._", ""]
    out += ["## GPU pages", ""]
    out += [f"- [{md_escape(p.title)}](#{p.anchor})" for p in report.pages]
    out.append("")
    if report.gpu_index.rows:
        out += ["### Every other device", "", md_table(report.gpu_index)]
    for page in report.pages:
        out += [f'<a id="{page.anchor}"></a>', "", f"### {md_escape(page.title)}", ""]
        out += [f"- {md_escape(k)}: {md_escape(v)}" for k, v in page.identity]
        out.append("")
        out += [f"> **{md_escape(n)}**" for n in page.notes]
        if page.notes:
            out.append("")
        out += ["#### Benchmarks", "", md_table(page.benchmarks)]
        out += ["#### Telemetry summary", "", md_table(page.telemetry)]
        out += ["#### Latest verification", "", md_escape(page.verification_caption), ""]
        if page.verification.rows:
            out.append(md_table(page.verification))
    return "\n".join(out).rstrip() + "\n"
