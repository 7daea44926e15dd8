"""The verify runner: the library function on cpu and on a machine without the configured GPU, the files
it writes, and the `gpubench verify` command's exit codes."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from gpubench import verify
from gpubench.config import load_config
from gpubench.devices import CudaProbe
from gpubench.verify.verdicts import Verdict

TINY_CPU = verify.Plan(
    level="quick",
    memtest_fraction=0.01,
    memtest_cap_bytes=1 << 16,
    memtest_seconds=1.0,
    compute_n=32,
    compute_repeats=2,
    burn_seconds=0.0,
    perf_n=64,
    perf_repeats=2,
    copy_bytes=1 << 20,
    transfer_bytes=0,
)

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


def _config(tmp_path: Path, device: str, extra: str = "") -> Any:
    cfg = tmp_path / "dl.config.sdn"
    cfg.write_text(f'dl:\n  device: "{device}"\n  dtype: "f32"\n{extra}', encoding="utf-8")
    return load_config(
        cfg, env={}, cwd=tmp_path, user_files=False, flags={"results.dir": str(tmp_path / "results")}
    )


def _console() -> Any:
    from rich.console import Console

    return Console(file=io.StringIO(), width=200, highlight=False, markup=False)


def test_cpu_runs_the_applicable_checks(tmp_path: Path) -> None:
    config = _config(tmp_path, "cpu")
    console = _console()
    cpu_only = CudaProbe(
        torch_version=pytest.importorskip("torch").__version__
    )  # no CUDA initialisation: fast
    report, (json_path, xml_path) = verify.verify(
        config, plans={"cpu": TINY_CPU}, probe=cpu_only, console=console
    )
    assert [r.check for r in report.results] == ["config", "software", "memtest", "compute", "perf_floor"]
    assert all(r.verdict is Verdict.PASS for r in report.results), [
        (r.check, r.message) for r in report.results
    ]
    assert report.exit_code == 0 and not report.gpu_verified
    assert report.summary() == "5 PASS, 0 WARN, 0 FAIL, 0 SKIP — no GPU was verified"
    out = console.file.getvalue()
    assert "memtest" in out and "no GPU was verified" in out and str(json_path) in out

    data = json.loads(json_path.read_text())
    assert data["schema"] == "gpubench.verify/1" and data["exit_code"] == 0 and data["level"] == "quick"
    assert data["devices"][0]["uuid"].startswith("cpu-")
    check = data["checks"][2]
    assert set(check) >= {
        "device",
        "uuid",
        "check",
        "verdict",
        "value",
        "threshold",
        "unit",
        "remedy",
        "message",
        "readings",
        "duration_s",
    }
    assert data["environment"]["versions"]["python"] and data["config"]["dl"]["device"] == "cpu"
    suite = ET.parse(xml_path).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "5" and suite.get("failures") == "0"


def test_missing_gpu_fails_with_exact_reason(tmp_path: Path) -> None:
    config = _config(tmp_path, "cuda:1")
    report = verify.run_checks(config, probe=NO_GPU, plans={"cpu": TINY_CPU})
    assert report.exit_code == 1 and not report.gpu_verified
    inventory = report.find("cuda:1", "inventory")
    assert inventory is not None and inventory.verdict is Verdict.FAIL
    assert "no usable NVIDIA driver or GPU" in inventory.message and "nvidia-smi" in inventory.remedy
    skipped = [r for r in report.results if r.verdict is Verdict.SKIP]
    assert {r.check for r in skipped} >= {"identity", "memtest", "compute", "under_load", "perf_floor"}
    assert all("cuda:1 unusable: no usable NVIDIA driver or GPU" in r.message for r in skipped)
    assert report.summary().endswith("— no GPU was verified") and "FAIL" in report.summary()
    xml = verify.junit_xml(report)
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None and int(suite.get("failures", "0")) >= 1 and int(suite.get("skipped", "0")) >= 5


def test_index_out_of_range_names_visible_gpus(tmp_path: Path) -> None:
    from gpubench.devices import CudaDeviceInfo

    one = CudaProbe(
        torch_version="2.4.0",
        cuda_build="12.4",
        cuda_available=True,
        device_count=1,
        devices=(CudaDeviceInfo(0, "NVIDIA RTX A4000", 16 << 30, (8, 6), "GPU-a", None),),
        driver_version="550.54.15",
        nvml_device_count=1,
    )
    report = verify.run_checks(_config(tmp_path, "cuda:1"), probe=one, checks=["inventory", "memtest"])
    inventory = report.find("cuda:1", "inventory")
    assert inventory is not None and inventory.verdict is Verdict.FAIL
    assert "only 1 GPU(s) visible (cuda:0 (NVIDIA RTX A4000)); cuda:1 does not exist." in inventory.message
    assert report.exit_code == 1


def test_cpu_perf_history_is_read(tmp_path: Path) -> None:
    config = _config(tmp_path, "cpu")
    first = verify.run_checks(config, plans={"cpu": TINY_CPU}, checks=["perf_floor"])
    verify.write_report(first, Path(config.results.dir))
    second = verify.run_checks(config, plans={"cpu": TINY_CPU}, checks=["perf_floor"])
    result = second.find("cpu", "perf_floor")
    assert result is not None and len(result.readings["history"]) == 1
    assert result.readings["history"][0]["run_id"] == first.run_id


def test_plans_scale_with_level(tmp_path: Path) -> None:
    config = _config(tmp_path, "cpu")
    quick, long = verify.plan_for(config, "quick", "cuda"), verify.plan_for(config, "long", "cuda")
    assert quick.memtest_fraction == config.verify.memtest_fraction and long.memtest_fraction >= 0.8
    assert long.burn_seconds > quick.burn_seconds and quick.memtest_seconds + quick.burn_seconds < 30
    assert verify.plan_for(config, "quick", "cpu").memtest_cap_bytes == 8 << 20
    with pytest.raises(ValueError, match="unknown level"):
        verify.plan_for(config, "forever", "cpu")


def test_a_crashing_probe_is_a_fail_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        msg = "simulated device error"
        raise RuntimeError(msg)

    monkeypatch.setattr("gpubench.verify.checks.compute.run_compute", boom)
    report = verify.run_checks(_config(tmp_path, "cpu"), plans={"cpu": TINY_CPU}, checks=["compute"])
    (result,) = report.results
    assert result.verdict is Verdict.FAIL and "simulated device error" in result.message


# --- the command ----------------------------------------------------------------------------------

cli = pytest.importorskip("gpubench.cli")


def _main(tmp_path: Path, *argv: str) -> int:
    cfg = tmp_path / "dl.config.sdn"
    if not cfg.exists():
        cfg.write_text('dl:\n  device: "cuda:1"\n', encoding="utf-8")
    return int(cli.main(["verify", "--config", str(cfg), "--results-dir", str(tmp_path / "results"), *argv]))


def test_command_cuda1_without_gpu_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("gpubench.verify.run.probe_cuda", lambda: NO_GPU)
    assert _main(tmp_path, "--check", "config", "--check", "inventory", "--check", "memtest") == 1
    out = capsys.readouterr().out
    assert "│ FAIL" in out and "1 PASS, 0 WARN, 1 FAIL, 1 SKIP — no GPU was verified" in out
    (saved,) = (tmp_path / "results" / "verify").glob("*.json")
    data = json.loads(saved.read_text())
    inventory = next(c for c in data["checks"] if c["check"] == "inventory")
    assert data["exit_code"] == 1 and inventory["verdict"] == "FAIL"
    assert inventory["message"].startswith("cuda:1 unusable: no usable NVIDIA driver or GPU")


def test_command_cpu_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _main(
        tmp_path,
        "--device",
        "cpu",
        "--check",
        "config",
        "--check",
        "compute",
        "--set",
        "verify.memtest_seconds=0.5",
    )
    assert code == 0, capsys.readouterr().out
    assert "2 PASS, 0 WARN, 0 FAIL, 0 SKIP — no GPU was verified" in capsys.readouterr().out


def test_command_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(tmp_path, "--set", "verify.level=forever") == 2
    assert "verify.level" in capsys.readouterr().err


def test_command_bad_check_name_exits_2(tmp_path: Path) -> None:
    assert _main(tmp_path, "--check", "nope") == 2
