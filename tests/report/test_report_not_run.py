"""The report shows only what ran: a device configured but never run gets one line, not a page of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from report_runs import NO_PLOTS, fx, write_run

from gpubench.report.build import build_report
from gpubench.report.html import render_html
from gpubench.report.markdown import render_markdown

NOTE = "FALLBACK: cuda:1 is not visible (no GPU); ran on cpu"
WHY = (
    "no usable NVIDIA driver or GPU: PyTorch 2.14.1 found no GPU (NVML not available: "
    "NVMLError_LibraryNotFound)"
)


def _absent_gpu_verify(root: Path, device: str = "cuda:1") -> None:
    """A verification run for a GPU the machine does not have, as `gpubench verify --devices cuda:1` saves it
    there: no UUID, the inventory FAILs it as unusable, every other check is skipped."""

    def row(check: str, verdict: str, message: str) -> dict[str, Any]:
        return {
            "device": device,
            "uuid": None,
            "check": check,
            "verdict": verdict,
            "value": None,
            "threshold": None,
            "unit": "",
            "remedy": "",
            "message": message,
            "readings": {"unusable_reason": WHY},
            "duration_s": 0.0,
        }

    document = {
        "schema": "gpubench.verify/1",
        "run_id": "verify-absent",
        "started": "2026-11-02T00:00:00+00:00",
        "finished": "2026-11-02T00:00:01+00:00",
        "environment": {"host": fx.HOST, "torch": "2.14.1"},
        "config": {},
        "level": "quick",
        "exit_code": 1,
        "devices": [{"device": device, "host": fx.HOST}],
        "checks": [
            row("inventory", "FAIL", f"{device} unusable: {WHY}."),
            row("memtest", "SKIP", f"{device} unusable: no usable NVIDIA driver or GPU (see inventory)"),
            row("compute", "SKIP", f"{device} unusable: no usable NVIDIA driver or GPU (see inventory)"),
        ],
    }
    path = root / "verify" / "verify-absent.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), "utf-8")


def _cpu_only_machine(root: Path) -> None:
    """Benchmarks configured on cpu and cuda:1 of a machine without a GPU: cuda:1 fell back to cpu."""
    entries = [
        fx.benchmark_entry("add", "cpu", 0.01),
        fx.benchmark_entry("matmul", "cpu", 0.5, requested="cuda:1", fallback_note=NOTE),
    ]
    write_run(root, "a", entries, ["cpu", "cuda:1"], "2026-11-01T00:00:00+00:00")
    _absent_gpu_verify(root)


def test_a_cpu_only_machine_has_no_gpu_page_and_one_line_per_device_not_run(tmp_path: Path) -> None:
    _cpu_only_machine(tmp_path)
    report = build_report(tmp_path, NO_PLOTS)
    assert [p.uuid for p in report.pages] == [f"cpu-{fx.HOST}"]  # the CPU's own page, no GPU page
    assert not any("cuda" in p.title for p in report.pages)
    not_run = [line for line in report.summary if line.startswith("configured, not run")]
    # one line per device, with every saved reason: the benchmark's fallback note, the inventory's verdict
    assert not_run == [f"configured, not run: cuda:1 on {fx.HOST}: {NOTE}; {WHY}."]
    assert report.summary[0].startswith("Fleet: 1 GPU(s) on 1 host(s)")  # the fleet first
    assert "1 device(s)" in report.summary[1]
    markdown, html = render_markdown(report), render_html(report)
    for text in (markdown, html):
        assert f"configured, not run: cuda:1 on {fx.HOST}" in text
        assert "cuda:1 ·" not in text  # no page titled with the device
    assert "#gpu-" + fx.HOST.lower() + "-cuda-1" not in html


def test_a_gpu_named_only_by_verification_gets_its_reason(tmp_path: Path) -> None:
    entries = [fx.benchmark_entry("add", "cpu", 0.01)]
    write_run(tmp_path, "a", entries, ["cpu"], "2026-11-01T00:00:00+00:00")
    _absent_gpu_verify(tmp_path, "cuda:3")
    report = build_report(tmp_path, NO_PLOTS)
    assert [p.uuid for p in report.pages] == [f"cpu-{fx.HOST}"]
    assert f"configured, not run: cuda:3 on {fx.HOST}: {WHY}." in report.summary


def test_devices_that_ran_keep_their_pages(tmp_path: Path) -> None:
    # cuda:0 ran; a verification of a GPU with a real UUID keeps its page even when it FAILs
    write_run(
        tmp_path, "a", [fx.benchmark_entry("add", "cuda:0", 0.001)], ["cuda:0"], "2026-11-01T00:00:00+00:00"
    )
    checks = [fx.check("cuda:1", "memtest", "FAIL", 3, 0, "errors", "3 errors")]
    document = fx.verify_document("v", "2026-11-02T00:00:00+00:00", "2026-11-02T00:01:00+00:00", checks)
    (tmp_path / "verify").mkdir()
    (tmp_path / "verify" / "v.json").write_text(json.dumps(document), "utf-8")
    report = build_report(tmp_path, NO_PLOTS)
    assert {p.uuid for p in report.pages} == {fx.GPUS["cuda:0"]["uuid"], fx.GPUS["cuda:1"]["uuid"]}
    assert not any(line.startswith("configured, not run") for line in report.summary)


def test_a_device_that_fell_back_once_but_ran_later_is_not_listed(tmp_path: Path) -> None:
    old = [
        fx.benchmark_entry("add", "cpu", 0.01, requested="cuda:0", fallback_note="FALLBACK: driver missing")
    ]
    write_run(tmp_path, "a", old, ["cuda:0"], "2026-11-01T00:00:00+00:00")
    write_run(
        tmp_path, "b", [fx.benchmark_entry("add", "cuda:0", 0.001)], ["cuda:0"], "2026-11-02T00:00:00+00:00"
    )
    report = build_report(tmp_path, NO_PLOTS)
    assert not any(line.startswith("configured, not run") for line in report.summary)
