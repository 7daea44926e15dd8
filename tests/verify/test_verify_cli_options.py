"""`gpubench verify --json`, `--junitxml PATH` and `--require-gpu`: stdout that scripts can parse, the JUnit
file where CI looks for it, and a run that verified no GPU failing when a GPU is required."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from gpubench import cli
from gpubench.devices import CudaProbe
from gpubench.verify.command import REQUIRE_GPU, require_gpu
from gpubench.verify.run import VerifyReport
from gpubench.verify.verdicts import CheckResult, Verdict

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = REPO / "dl.config.sdn"  # dl.device "cuda:1"

NO_GPU = CudaProbe(
    torch_version="2.4.0",
    cuda_build="12.4",
    cuda_available=False,
    device_count=0,
    nvml_error="NVML not available: NVMLError_LibraryNotFound",
    cudnn_version=90100,
)


@pytest.fixture(autouse=True)
def _light_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """software_versions imports torchvision, pandas... (seconds when cold): not what is tested here."""
    import platform

    monkeypatch.setattr(
        "gpubench.results.software_versions",
        lambda: {"python": platform.python_version(), "gpubench": "test"},
    )


def _verify(tmp_path: Path, *argv: str, config: Path | None = None) -> int:
    if config is None:
        config = tmp_path / "dl.config.sdn"
        config.write_text('dl:\n  device: "cpu"\n', encoding="utf-8")
    return int(
        cli.main(["verify", "--config", str(config), "--results-dir", str(tmp_path / "results"), *argv])
    )


def _saved(tmp_path: Path) -> dict[str, Any]:
    (path,) = (tmp_path / "results" / "verify").glob("*.json")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# --- --json ---------------------------------------------------------------------------------------


def test_json_on_stdout_parses_in_a_pipe(tmp_path: Path) -> None:
    """The issue's own line: `gpubench verify --json | python -c 'import json,sys; json.load(sys.stdin)'`."""
    (tmp_path / "dl.config.sdn").write_text('dl:\n  device: "cpu"\n', encoding="utf-8")
    gpubench = [sys.executable, "-m", "gpubench"]
    reader = "import json,sys; d = json.load(sys.stdin); print(d['run_id'], d['exit_code'])"
    line = (
        f"set -o pipefail; {shlex.join(gpubench)} verify --json --device cpu --check config "
        f"--results-dir {shlex.quote(str(tmp_path / 'results'))} | {shlex.quote(sys.executable)} -c {shlex.quote(reader)}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBENCH_")}
    proc = subprocess.run(
        ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id, exit_code = proc.stdout.split()
    saved = _saved(tmp_path)
    assert (run_id, int(exit_code)) == (saved["run_id"], 0)
    # what a person reads went to stderr: the summary and the files written
    assert "1 PASS, 0 WARN, 0 FAIL, 0 SKIP" in proc.stderr and f"{run_id}.json" in proc.stderr


def test_json_is_the_saved_document_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _verify(tmp_path, "--json", "--check", "config") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == _saved(tmp_path)  # the whole of stdout is the document
    assert "┃" not in captured.err  # the table is the JSON; stderr keeps the summary and the paths
    assert "no GPU was verified" in captured.err and "wrote " in captured.err


def test_without_json_the_table_stays_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _verify(tmp_path, "--check", "config") == 0
    out = capsys.readouterr().out
    assert "┃ device" in out and "1 PASS, 0 WARN, 0 FAIL, 0 SKIP — no GPU was verified" in out


# --- --junitxml -------------------------------------------------------------------------------------


def test_junitxml_writes_the_junit_file_there_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "ci" / "reports" / "verify.xml"  # folders created, as pytest's --junitxml does
    assert _verify(tmp_path, "--check", "config", "--junitxml", str(target)) == 0
    suite = ET.parse(target).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "1" and suite.get("failures") == "0"
    (saved_xml,) = (tmp_path / "results" / "verify").glob("*.xml")
    assert target.read_text(encoding="utf-8") == saved_xml.read_text(encoding="utf-8")
    assert f"wrote {target}" in capsys.readouterr().out
    assert not list(target.parent.glob(".*.tmp"))  # the atomic write left no temporary file


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_junitxml_bad_path_exits_2_and_still_saves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a folder", encoding="utf-8")
    bad = tmp_path if where == "a folder" else blocker / "verify.xml"
    assert _verify(tmp_path, "--check", "config", "--junitxml", str(bad)) == 2
    err = capsys.readouterr().err
    assert f"error: --junitxml {bad}: cannot write the JUnit XML there" in err
    assert _saved(tmp_path)["exit_code"] == 0  # the run itself was saved under results/


# --- --require-gpu ----------------------------------------------------------------------------------


def test_require_gpu_fails_the_shipped_config_without_a_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped dl.config.sdn (cuda:1) where CUDA does not work: exit 1, and the output says why."""
    monkeypatch.setattr("gpubench.verify.run.probe_cuda", lambda: NO_GPU)
    checks = ("--check", "config", "--check", "inventory")
    assert _verify(tmp_path, *checks, "-q", "--require-gpu", config=SHIPPED_CONFIG) == 1
    out = capsys.readouterr().out
    assert "FAIL require_gpu cuda:1: cuda:1 was not verified: cuda:1 unusable: no usable NVIDIA driver" in out
    row = next(c for c in _saved(tmp_path)["checks"] if c["check"] == REQUIRE_GPU)
    assert row["device"] == "cuda:1" and row["verdict"] == "FAIL" and row["remedy"]


def test_require_gpu_fails_a_cpu_run_that_passes_without_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _verify(tmp_path, "--check", "config") == 0  # unchanged without the option
    # no row added (the saved rows, not the table: a wrapped tmp_path can start a table line "│ require_gpu")
    assert [c["check"] for c in _saved(tmp_path)["checks"]] == ["config"]
    assert REQUIRE_GPU not in capsys.readouterr().err
    assert _verify(tmp_path, "--check", "config", "--require-gpu", "--json") == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["exit_code"] == 1 and data["gpu_verified"] is False
    assert [c["check"] for c in data["checks"]] == ["config", REQUIRE_GPU]
    assert "FAIL require_gpu cpu: cpu is not a GPU" in captured.err


def _report(devices: list[dict[str, Any]], rows: list[tuple[str, str, Verdict]]) -> VerifyReport:
    return VerifyReport(
        run_id="r",
        level="quick",
        started="s",
        finished="f",
        results=tuple(CheckResult(check, device, verdict) for device, check, verdict in rows),
        devices=tuple(devices),
    )


def _reasons(report: VerifyReport) -> dict[str, str]:
    return {r.device: r.message for r in require_gpu(report).results if r.check == REQUIRE_GPU}


def test_require_gpu_decision() -> None:
    verified = _report(
        [{"device": "cuda:0"}], [("cuda:0", "inventory", Verdict.PASS), ("cuda:0", "identity", Verdict.PASS)]
    )
    assert require_gpu(verified) is verified  # a GPU whose GPU checks ran: nothing added
    assert require_gpu(verified).exit_code == 0

    mixed = _report(
        [
            {"device": "cuda:0"},
            {"device": "cuda:1", "execution_device": "cpu"},
            {"device": "cuda:2"},
            {"device": "cpu"},
        ],
        [
            ("cuda:0", "under_load", Verdict.FAIL),  # a GPU check that ran and failed still verified the GPU
            ("cuda:1", "identity", Verdict.PASS),
            ("cuda:2", "config", Verdict.PASS),
            ("cuda:2", "compute", Verdict.PASS),
            ("cuda:2", "identity", Verdict.SKIP),
            ("cpu", "compute", Verdict.PASS),
        ],
    )
    reasons = _reasons(mixed)
    assert set(reasons) == {"cuda:1", "cuda:2", "cpu"}
    assert reasons["cuda:1"] == "cuda:1's kernels ran on cpu, not on a GPU"
    assert reasons["cuda:2"].startswith(
        "no GPU check ran on cuda:2 (ran: config, compute; a GPU check is one of identity"
    )
    assert reasons["cpu"] == "cpu is not a GPU: --require-gpu verifies GPUs only"
    assert require_gpu(mixed).exit_code == 1

    assert _reasons(_report([], [])) == {"-": "no device was configured to verify"}
