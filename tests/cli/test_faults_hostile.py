"""Fault family 7, hostile content: names and strings with HTML and control characters, run names and paths
that try to leave ``results/``, and configuration files that try to run something.

Already covered in tests/test_report.py: device names, hostnames and config strings with HTML, table pipes,
ESC, BEL and bidi overrides are escaped in the HTML report and the Markdown tables (3 tests). Here: the
terminal tables (``gpubench verify``, ``info``, ``config show``), the JUnit XML, verification messages in the
HTML report, paths, and the configuration reader.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from gpubench import results, verify
from gpubench.cli import main
from gpubench.config import load_config
from gpubench.devices import CudaDeviceInfo, CudaProbe

pytest_plugins = ["pytester"]

HOSTILE_NAME = "<b>GPU</b>\x1b[2J\x1b]0;owned\x07\x00\u202e|x"
CONTROL = ("\x1b", "\x07", "\x00", "\u202e")
HOSTILE_PROBE = CudaProbe(
    "2.14.1+cu130",
    cuda_build="13.0",
    cuda_available=True,
    device_count=1,
    devices=(CudaDeviceInfo(0, HOSTILE_NAME, 8 << 30, (8, 6), "GPU-1234\x1b[31m", "0000:01:00.0\x07"),),
)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for var in list(os.environ):
        if var.startswith(("GPUBENCH_", "SIMPLE_DL_")):
            monkeypatch.delenv(var)
    return tmp_path


# --- terminal tables and JUnit XML -------------------------------------------------------------------


def test_verify_table_and_junit_xml_with_a_hostile_gpu_name(isolated: Path) -> None:
    config = load_config(None, flags={"verify.devices": ["cuda:3"]}, env={}, user_files=False, cwd=isolated)
    buffer = io.StringIO()
    report, (json_path, xml_path) = verify.verify(
        config, probe=HOSTILE_PROBE, results_dir=isolated / "results", checks=["inventory"],
        console=Console(file=buffer, width=400, markup=False),
    )
    shown = buffer.getvalue()
    assert not any(c in shown for c in CONTROL), repr(shown)
    assert "cuda:0 (<b>GPU</b>[2J]0;owned|x)" in shown  # the name is shown, defused, not hidden
    root = ET.parse(xml_path).getroot()  # XML 1.0 cannot hold \x00 or \x1b: it would not parse
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and "<b>GPU</b>\ufffd[2J" in failure.attrib["message"]
    data = json.loads(json_path.read_text("utf-8"))
    assert HOSTILE_NAME in data["checks"][0]["message"]  # JSON keeps the exact bytes, escaped
    assert report.exit_code == 1


def test_info_table_with_a_hostile_gpu(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import gpubench.devices
    from gpubench import nvml

    monkeypatch.setattr(gpubench.devices, "probe_cuda", lambda: HOSTILE_PROBE)
    monkeypatch.setattr(nvml, "cuda_driver_version", lambda: None)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in CONTROL), repr(out)
    assert "<b>GPU</b>[2J]0;owned|x" in out and "GPU-1234[31m" in out


def test_config_show_with_hostile_strings(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (isolated / "dl.config.sdn").write_text(
        'data:\n  dir: "\\u001b[2J<script>alert(1)</script>\\u0007"\nreport:\n  benchmark: "a\\u202eb"\n',
        encoding="utf-8",
    )
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in CONTROL), repr(out)
    assert "[2J<script>alert(1)</script>" in out
    assert main(["config", "show", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["data.dir"]["value"] == "\x1b[2J<script>alert(1)</script>\x07"  # kept exactly


def test_hostile_verification_messages_are_escaped_in_the_html_report(tmp_path: Path) -> None:
    import importlib.util
    import sys

    from gpubench import report
    from gpubench.config import ReportSection
    from gpubench.report.html import render_html

    runs = Path(__file__).parents[1] / "data" / "runs"
    spec = importlib.util.spec_from_file_location("gpubench_report_fixtures", runs / "make_runs.py")
    assert spec is not None and spec.loader is not None
    fx = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, fx)
    spec.loader.exec_module(fx)
    check = fx.check("cuda:0", "inventory", "FAIL", None, None, "", f"GPU {HOSTILE_NAME} <img src=x onerror=alert(1)>",
                     remedy="<script>alert('remedy')</script>")
    document = fx.verify_document("run-h", "2026-11-09T00:00:00+00:00", "2026-11-09T00:01:00+00:00", [check])
    document["devices"][0] = {**document["devices"][0], "name": HOSTILE_NAME, "host": '"><svg onload=alert(1)>'}
    (tmp_path / "verify").mkdir()
    (tmp_path / "verify" / "run-h.json").write_text(json.dumps(document), encoding="utf-8")
    page = render_html(report.build_report(tmp_path, ReportSection(plots=False)))
    for raw in ("<img src=x", "<script>alert('remedy')", "<svg", "<b>GPU</b>", *CONTROL):
        assert raw not in page, raw
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.count("<script>") == 1  # the report's own, nothing else


# --- paths: nothing is written outside results/ ------------------------------------------------------


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_hostile_run_id_cannot_write_outside_results(isolated: Path) -> None:
    config = load_config(None, flags={"verify.devices": ["cpu"]}, env={}, user_files=False, cwd=isolated)
    report = verify.run_checks(config, checks=["config"], probe=HOSTILE_PROBE, run_id="../../escaped")
    before = _all_files(isolated)
    with pytest.raises(results.ResultPathError, match="resolves outside the results folder"):
        verify.write_report(report, isolated / "deep" / "results")
    assert _all_files(isolated) == before


def test_hostile_hostname_cannot_shape_the_run_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "../../etc/cron.d/x\x1b")
    run_id = results.new_run_id()
    assert "/" not in run_id and ".." not in run_id and "\x1b" not in run_id
    assert run_id.split("-", 1)[1].startswith("______etc_cron_d_x_")


def test_verify_refuses_a_link_that_leads_out_of_results(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = isolated / "outside"
    outside.mkdir()
    (isolated / "results").mkdir()
    (isolated / "results" / "verify").symlink_to(outside)
    code = main(["verify", "--device", "cpu", "--check", "config", "--results-dir", "results", "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: the checks ran but their results were not saved: refusing to write 'verify/")
    assert "Traceback" not in err
    assert list(outside.iterdir()) == []


def test_run_id_from_the_environment_cannot_put_a_trace_outside_results(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("GPUBENCH_DL_DEVICE", "GPUBENCH_BENCH_DEVICES", "SIMPLE_DL_DEVICE", "GPUBENCH_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(pytester.path))
    monkeypatch.setenv("GPUBENCH_RUN_ID", "../../escaped")
    (pytester.path / "work").mkdir()
    monkeypatch.chdir(pytester.path / "work")
    (pytester.path / "work" / "dl.config.sdn").write_text("dl:\n  device: cpu\ntelemetry:\n  interval_ms: 20\n",
                                                          encoding="utf-8")
    (pytester.path / "work" / "test_b.py").write_text(
        "def test_b(benchmark, device):\n    benchmark.pedantic(sum, args=(range(10),), rounds=2)\n", "utf-8"
    )
    before = _all_files(pytester.path.parent)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-json=out.json", "test_b.py")
    result.assert_outcomes(passed=1)
    # pytester's own files for the subprocess (its captured stdout/stderr, its basetemp) are not the run's
    own = {pytester.path / "stdout", pytester.path / "stderr"}
    created = {
        p for p in _all_files(pytester.path.parent) - before
        if p not in own and not p.is_relative_to(pytester.path / "runpytest-0")
    }
    assert created == {pytester.path / "work" / "out.json"}  # no trace, anywhere
    (bench,) = json.loads((pytester.path / "work" / "out.json").read_text("utf-8"))["benchmarks"]
    tele = bench["extra_info"]["telemetry"]
    assert tele["trace"] is None and "resolves outside the results folder" in tele["trace_error"]


# --- reading the configuration never executes anything -------------------------------------------------

PAYLOADS = {
    "dir": "$(touch pwned-1)",
    "history_dir": "`touch pwned-2`",
    "benchmark": "${HOME}/x; touch pwned-3",
    "python": "__import__('os').system('touch pwned-4')",
    "yaml": "!!python/object/apply:os.system ['touch pwned-5']",
}


def test_reading_the_configuration_never_executes_anything(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the configuration reader tried to run {args!r}")

    for name in ("system", "popen", "execv", "execvp", "spawnv"):
        monkeypatch.setattr(os, name, forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    (isolated / "dl.config.sdn").write_text(
        "data:\n"
        f"  dir: \"{PAYLOADS['dir']}\"\n"
        f"  source: auto\n"
        "verify:\n"
        f"  history_dir: \"{PAYLOADS['history_dir']}\"\n"
        "report:\n"
        f"  benchmark: \"{PAYLOADS['benchmark']}\"\n"
        "extra:\n"
        f"  python: \"{PAYLOADS['python']}\"\n"
        f"  yaml: \"{PAYLOADS['yaml']}\"\n",
        encoding="utf-8",
    )
    config = load_config(None, env={"HOME": str(isolated)}, cwd=isolated)
    assert config.data.dir == PAYLOADS["dir"]  # kept as text: no shell, no ${VAR} expansion
    assert config.verify.history_dir == PAYLOADS["history_dir"]
    assert config.report.benchmark == PAYLOADS["benchmark"]
    assert main(["config", "check", "dl.config.sdn"]) == 0
    assert main(["config", "show", "--json"]) == 0
    capsys.readouterr()
    # a Python file given as the configuration is a syntax error, not a program
    (isolated / "evil.sdn").write_text("import os\nos.system('touch pwned-6')\n", encoding="utf-8")
    assert main(["config", "check", "evil.sdn"]) == 2
    assert capsys.readouterr().err.startswith("error: evil.sdn:1:1: line is not a statement")
    assert not list(isolated.rglob("pwned-*"))
