"""The report built and rendered: GPU pages keyed by UUID, fallback notes, the timeline benchmark, and
hostile names escaped in Markdown and HTML."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from report_runs import NO_PLOTS, RUNS, fx, write_run

from gpubench.report.build import build_report
from gpubench.report.html import render_html
from gpubench.report.load import LoadedRuns, load_runs
from gpubench.report.markdown import md_escape, render_markdown
from gpubench.report.model import Report
from gpubench.report.plots import choose_timeline_benchmark
from gpubench.report.text import strip_controls

HOSTILE_NAME = "<script>alert('gpu')</script> | evil\x1b[31m\x07 \u202eGPU"


HOSTILE_HOST = 'node"><img src=x onerror=alert(1)>'


HOSTILE_CONFIG = "</td><b>dl.config.sdn</b>|x"


def _hostile_report(tmp_path: Path) -> Report:
    gpu = {**fx.GPUS["cuda:0"], "name": HOSTILE_NAME, "host": HOSTILE_HOST}
    entries = [
        fx.benchmark_entry("matmul", "cuda:0", 0.005, gpu=gpu),
        fx.benchmark_entry("add", "cpu", 0.01, gpu={**fx.GPUS["cpu"], "host": HOSTILE_HOST}),
    ]
    entries[0]["group"] = "matmul<i>|"
    path = write_run(
        tmp_path, "a", entries, ["cuda:0", "cpu"], "2026-11-01T00:00:00+00:00", host=HOSTILE_HOST, gpus=[gpu]
    )
    data = json.loads(path.read_text("utf-8"))
    data["machine_info"]["gpubench"]["config_files"] = [HOSTILE_CONFIG]
    path.write_text(json.dumps(data), "utf-8")
    return build_report(tmp_path, NO_PLOTS)


def test_hostile_names_are_escaped_in_html(tmp_path: Path) -> None:
    page = render_html(_hostile_report(tmp_path))
    for raw in ("<script>alert", "<img src=x", "</td><b>", "<i>", "\x1b", "\x07", "\u202e"):
        assert raw not in page
    assert "&lt;script&gt;alert(&#x27;gpu&#x27;)&lt;/script&gt;" in page
    assert "node&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<script>") == 1  # the report's own image check, nothing else


def test_hostile_names_are_escaped_in_markdown_tables(tmp_path: Path) -> None:
    text = render_markdown(_hostile_report(tmp_path))
    for raw in ("<script>", "<img", "</td>", "<i>", "\x1b", "\x07", "\u202e"):
        assert raw not in text
    assert "&lt;script&gt;" in text
    # every row of a table has as many unescaped cell separators as its header: no cell broke out
    tables: list[list[int]] = [[]]
    for line in text.splitlines():
        if line.startswith("|"):
            tables[-1].append(line.replace("\\|", "").count("|"))
        elif tables[-1]:
            tables.append([])
    counted = [t for t in tables if t]
    assert len(counted) >= 4
    for table in counted:
        assert len(set(table)) == 1, table


def test_markdown_escape_and_control_stripping() -> None:
    assert strip_controls("a\x00b\x1b[0m\tc\u202ed\x85") == "ab[0m cd"
    assert md_escape("a|b<c>*[x](y)`") == "a\\|b&lt;c&gt;\\*\\[x\\](y)\\`"


def test_timeline_benchmark_is_chosen_by_name_or_the_longest_trace(loaded: LoadedRuns) -> None:
    frame = loaded.benchmarks
    assert choose_timeline_benchmark(frame, RUNS, None) == "mnist-epoch / test_mnist_epoch[device_resident]"
    assert choose_timeline_benchmark(frame, RUNS, "matmul") == "matmul-f32 / test_matmul[f32-4096]"


def test_gpu_pages_are_keyed_by_uuid_and_show_latest_verdicts(loaded: LoadedRuns) -> None:
    built = build_report(RUNS, NO_PLOTS, loaded=loaded)
    pages = {p.uuid: p for p in built.pages}
    assert list(pages) == [fx.GPUS[d]["uuid"] for d in ("cuda:0", "cuda:1", "cpu")]
    cuda1 = pages[fx.GPUS["cuda:1"]["uuid"]]
    assert cuda1.title == f"cuda:1 · {fx.GPU_MODEL} · {fx.HOST}"
    assert ("PCI bus id", fx.GPUS["cuda:1"]["pci_bus_id"]) in cuda1.identity
    assert cuda1.verification.rows[0][:2] == ("temperature", "WARN")
    assert "1 WARN, 3 PASS" in cuda1.verification_caption
    flagged = [row for row, flag in zip(cuda1.benchmarks.rows, cuda1.benchmarks.flagged, strict=True) if flag]
    assert [row[0] for row in flagged] == ["matmul-f32 / test_matmul[f32-4096]"]
    assert "No verification run" in pages[f"cpu-{fx.HOST}"].verification_caption


def test_fallback_rows_say_so_on_the_device_page(tmp_path: Path) -> None:
    note = "FALLBACK: cuda:1 is not visible (only 1 GPU); ran on cpu"
    entry = fx.benchmark_entry("add", "cpu", 0.01, requested="cuda:1", fallback_note=note)
    write_run(
        tmp_path,
        "a",
        [entry, fx.benchmark_entry("add", "cuda:0", 0.001)],
        ["cuda:0", "cuda:1"],
        "2026-11-01T00:00:00+00:00",
    )
    built = build_report(tmp_path, dataclasses.replace(NO_PLOTS))
    cpu = next(p for p in built.pages if p.uuid == f"cpu-{fx.HOST}")
    assert cpu.notes == (note,)
    assert cpu.benchmarks.rows[0][-1] == "FALLBACK"
    frame = load_runs(tmp_path).benchmarks
    assert set(frame["case"]) == {"test_elementwise[add-f32-16777216]"}
