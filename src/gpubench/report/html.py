"""The report as one self-contained HTML page: inline CSS, plots embedded as base64 PNG, no external URL.

Every value from a saved run (device names, hostnames, config strings, messages) goes through
:func:`esc`: control characters removed, then ``html.escape``. The only script is a fixed inline one
that marks ``<body data-images-decoded="all">`` once every embedded plot has decoded, which the
browser test reads back.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from gpubench.report.model import GpuPage, Plot, Report, Table
from gpubench.report.text import strip_controls

CSS = """
:root { --fg: #1d2433; --muted: #5b6475; --line: #d9dee7; --bg: #ffffff; --head: #f3f5f9;
        --flag: #fff1e6; --flag-fg: #9a3412; --ok: #166534; --warn: #a16207; --fail: #b91c1c; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--fg); background: var(--bg); }
header.top { background: #1f2a44; color: #fff; padding: 18px 28px; }
header.top h1 { margin: 0 0 4px; font-size: 22px; }
header.top p { margin: 0; color: #c9d1e3; }
main { padding: 8px 28px 40px; max-width: 1400px; }
h2 { margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); font-size: 18px; }
h3 { margin: 18px 0 6px; font-size: 15px; }
ul.summary { margin: 12px 0; padding-left: 20px; }
nav.toc { background: var(--head); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px;
          margin: 14px 0; }
nav.toc a { color: #1d4ed8; text-decoration: none; margin-right: 18px; white-space: nowrap; }
.warnings { background: #fef9c3; border: 1px solid #eab308; border-radius: 6px; padding: 8px 14px; }
.warnings li { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
td { white-space: nowrap; }
td.id { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 11.5px; }
td.text { white-space: normal; min-width: 16em; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.flagged td { background: var(--flag); color: var(--flag-fg); font-weight: 600; }
p.caption { color: var(--muted); margin: 4px 0; }
.verdict-PASS { color: var(--ok); font-weight: 600; }
.verdict-WARN { color: var(--warn); font-weight: 600; }
.verdict-FAIL { color: var(--fail); font-weight: 700; }
.verdict-SKIP { color: var(--muted); }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 12px; }
section.gpu { border: 1px solid var(--line); border-radius: 8px; padding: 4px 18px 12px; margin: 18px 0; }
section.gpu h2 { border-bottom: none; }
dl.identity { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 6px 0 10px; }
dl.identity dt { color: var(--muted); }
dl.identity dd { margin: 0; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.note { background: #fee2e2; border-left: 4px solid var(--fail); padding: 6px 10px; font-weight: 600; }
@media print { section.gpu { break-before: page; } }
"""

# marks <body> once every embedded image has decoded (naturalWidth > 0); read by the browser test
SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.every(function (img) { return img.complete && img.naturalWidth > 0; });
  document.body.setAttribute("data-image-count", String(images.length));
  document.body.setAttribute("data-images-decoded", ok ? "all" : "missing");
});
"""


def esc(value: Any) -> str:
    """Text from a saved run, safe inside HTML elements and attribute values."""
    return html.escape(strip_controls(str(value)), quote=True)


def _numeric(text: str) -> bool:
    head = text.replace(",", "").replace("+", "").replace("-", "").replace("%", "").split(" ")[0]
    try:
        float(head)
    except ValueError:
        return False
    return True


def table_html(table: Table, css_class: str = "") -> str:
    parts = []
    if table.caption:
        parts.append(f'<p class="caption">{esc(table.caption)}</p>')
    if not table.rows:
        return "".join(parts) or '<p class="caption">none</p>'
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = []
    verdict_col = table.columns.index("verdict") if "verdict" in table.columns else -1
    for i, row in enumerate(table.rows):
        flagged = bool(table.flagged) and table.flagged[i]
        cells = []
        for j, cell in enumerate(row):
            classes = []
            if table.columns[j] in ("message", "remedy", "config files"):
                classes.append("text")
            elif table.columns[j] in ("UUID", "run"):
                classes.append("id")
            elif _numeric(cell):
                classes.append("num")
            if j == verdict_col:
                classes.append(f"verdict-{esc(cell)}")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{esc(cell)}</td>")
        row_attr = ' class="flagged"' if flagged else ""
        body.append(f"<tr{row_attr}>{''.join(cells)}</tr>")
    cls = f' class="{esc(css_class)}"' if css_class else ""
    parts.append(
        f'<div class="table-wrap"><table{cls}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
    return "".join(parts)


def figure_html(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure><img alt="{esc(plot.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(plot.title)}. {esc(plot.caption)}</figcaption></figure>"
    )


def page_html(page: GpuPage) -> str:
    identity = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in page.identity)
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in page.notes)
    return (
        f'<section class="gpu" id="{esc(page.anchor)}" data-uuid="{esc(page.uuid)}">'
        f'<h2>{esc(page.title)}</h2><dl class="identity">{identity}</dl>{notes}'
        f"<h3>Benchmarks</h3>{table_html(page.benchmarks, 'gpu-benchmarks')}"
        f"<h3>Telemetry summary</h3>{table_html(page.telemetry, 'gpu-telemetry')}"
        f'<h3>Latest verification</h3><p class="caption">{esc(page.verification_caption)}</p>'
        f"{table_html(page.verification, 'gpu-verification') if page.verification.rows else ''}"
        "</section>"
    )


def render_html(report: Report) -> str:
    """The whole report as one HTML document (no external resources)."""
    summary = "".join(f"<li>{esc(line)}</li>" for line in report.summary)
    toc = "".join(f'<a href="#{esc(p.anchor)}">{esc(p.title)}</a>' for p in report.pages)
    warnings = ""
    if report.warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in report.warnings)
        listed = table_html(report.skipped, "skipped") if report.skipped.rows else f"<ul>{items}</ul>"
        warnings = f'<h2 id="skipped">Skipped or damaged files</h2><div class="warnings">{listed}</div>'
    fleet = ""
    if report.fleet_hosts.rows:
        fleet = (
            f'<h2 id="fleet">Fleet</h2>{table_html(report.fleet_hosts, "fleet-hosts")}'
            f"{table_html(report.fleet_models, 'fleet-models')}"
        )
    index = (
        f'<h2 id="gpu-index">Every other device</h2>{table_html(report.gpu_index, "gpu-index")}'
        if report.gpu_index.rows
        else ""
    )
    throughput = "".join(figure_html(p) for p in report.plots if p.name.startswith("throughput"))
    timelines = "".join(figure_html(p) for p in report.plots if p.name.startswith("timeline"))
    timeline_text = (
        f'<p class="caption">Benchmark: {esc(report.timeline_benchmark)}</p>{timelines}'
        if timelines
        else '<p class="caption">No telemetry trace to draw (or plots are off).</p>'
    )
    body = (
        f'<header class="top"><h1>gpubench report</h1><p>Generated {esc(report.generated)} from '
        f"{esc(report.results_dir)}</p></header><main>"
        f'<ul class="summary">{summary}</ul>'
        f'<nav class="toc"><strong>GPU pages:</strong> {toc}</nav>'
        f"{fleet}{warnings}"
        f'<h2 id="runs">Runs</h2>{table_html(report.runs, "runs")}'
        f'<h2 id="side-by-side">Devices side by side</h2>{table_html(report.ratios, "ratios")}{throughput}'
        f'<h2 id="trends">Trends and regressions</h2>{table_html(report.trends, "trends")}'
        '<h2 id="outliers">Outliers against same-model siblings</h2>'
        f"{table_html(report.outliers, 'outliers')}"
        f'<h2 id="timelines">Telemetry timelines</h2>{timeline_text}'
        f"{''.join(page_html(p) for p in report.pages)}{index}"
        "</main>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>gpubench report {esc(report.generated)}</title><style>{CSS}</style>"
        f"<script>{SCRIPT}</script></head><body>{body}</body></html>\n"
    )
