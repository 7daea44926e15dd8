"""Fault family 2, devices: the configured GPU is hidden, missing, beyond the count, or PyTorch has no CUDA.

``CUDA_VISIBLE_DEVICES`` is injected into real ``python -m gpubench verify`` processes; the CPU-only build and
the index beyond the count are injected through the probe (what PyTorch reports), in-process. Each time the
verification FAILs with the exact reason and remedy, and benchmarks fall back as configured (next, cpu, or
none) with the note in the output and in every result's ``extra_info``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from gpubench import nvml, verify
from gpubench.config import load_config
from gpubench.devices import CudaDeviceInfo, CudaProbe, parse_device, why_unusable
from gpubench.verify.verdicts import Verdict

pytest_plugins = ["pytester"]

CPU_ONLY = CudaProbe("2.14.1+cpu", cuda_build=None)
TWO_GPUS = CudaProbe(
    "2.14.1+cu130",
    cuda_build="13.0",
    cuda_available=True,
    device_count=2,
    devices=(
        CudaDeviceInfo(0, "NVIDIA RTX A4000", 16 << 30, (8, 6), "GPU-aaaaaaaa", "00000000:01:00.0"),
        CudaDeviceInfo(1, "NVIDIA RTX A4000", 16 << 30, (8, 6), "GPU-bbbbbbbb", "00000000:02:00.0"),
    ),
)
CVD_REMEDY = (
    "unset CUDA_VISIBLE_DEVICES or add the GPU to it; remember that CUDA renumbers the visible GPUs from 0 "
    "(CUDA_VISIBLE_DEVICES=1 makes physical GPU 1 appear as cuda:0)."
)
CPU_ONLY_REASON = "this PyTorch build (2.14.1+cpu) has no CUDA support, so cuda:1 cannot exist."


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for var in list(os.environ):
        if var.startswith(("GPUBENCH_", "SIMPLE_DL_")):
            monkeypatch.delenv(var)
    return tmp_path


# --- verification ----------------------------------------------------------------------------------


def _machine_gpus() -> int | None:
    """GPUs NVML sees on this machine (it ignores CUDA_VISIBLE_DEVICES), or None without a driver."""
    return nvml.device_count() if nvml.init() is None else None


def test_cuda_visible_devices_empty_or_naming_a_missing_gpu_fails_verification(isolated: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBENCH_", "SIMPLE_DL_"))}
    cases = {"empty": ("", "cuda:1"), "missing": ("7", "cuda:0")}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "gpubench", "verify", "--device", device, "--check", "inventory",
             "--results-dir", f"results-{name}", "-q"],
            cwd=isolated, env={**env, "CUDA_VISIBLE_DEVICES": cvd}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for name, (cvd, device) in cases.items()
    }
    machine = _machine_gpus()
    expected = {
        "empty": ("cuda:1 unusable: CUDA_VISIBLE_DEVICES='' exposes 0 GPU(s) to this process, so cuda:1 does "
                  f"not exist here{f'; NVML sees {machine} GPU(s) on the machine' if machine else ''}.", CVD_REMEDY),
    }
    if machine:  # the driver sees GPUs: the variable is what hides GPU 7
        expected["missing"] = (
            "cuda:0 unusable: CUDA_VISIBLE_DEVICES='7' exposes 0 GPU(s) to this process, so cuda:0 does not "
            f"exist here; NVML sees {machine} GPU(s) on the machine.", CVD_REMEDY)
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err  # a FAIL
        assert "Traceback" not in err
        assert "0 PASS, 0 WARN, 1 FAIL, 0 SKIP — no GPU was verified" in out
        (saved,) = (isolated / f"results-{name}" / "verify").glob("*.json")
        data = json.loads(saved.read_text("utf-8"))
        assert data["environment"]["cuda_visible_devices"] == cases[name][0]
        (check,) = data["checks"]
        assert check["check"] == "inventory" and check["verdict"] == "FAIL"
        if name in expected:
            assert (check["message"], check["remedy"]) == expected[name]
        else:  # no driver on this machine: that, not the variable, is the first thing to fix
            assert check["message"].startswith("cuda:0 unusable: no usable NVIDIA driver or GPU: PyTorch ")
            assert check["remedy"].startswith("check that `nvidia-smi` lists the GPU")


def _verify_with(probe: CudaProbe, device: str, tmp_path: Path) -> verify.VerifyReport:
    config = load_config(None, flags={"verify.devices": [device], "dl.device": device}, env={}, user_files=False,
                         cwd=tmp_path)
    report, paths = verify.verify(config, probe=probe, results_dir=tmp_path / "results",
                                  console=Console(file=io.StringIO(), width=200))
    saved = json.loads(paths[0].read_text("utf-8"))
    assert saved["exit_code"] == report.exit_code == 1
    return report


def test_cpu_only_pytorch_asked_for_cuda_1(isolated: Path) -> None:
    report = _verify_with(CPU_ONLY, "cuda:1", isolated)
    inventory = report.find("cuda:1", "inventory")
    assert inventory is not None and inventory.verdict is Verdict.FAIL
    assert inventory.message == f"cuda:1 unusable: {CPU_ONLY_REASON}"
    assert inventory.remedy.startswith("install a CUDA build of PyTorch")
    software = report.find("cuda:1", "software")
    assert software is not None and software.verdict is Verdict.FAIL
    assert "this PyTorch build (2.14.1+cpu) has no CUDA support" in software.message
    skipped = [r for r in report.results if r.verdict is Verdict.SKIP]
    assert len(skipped) == 8 and all(r.message.startswith("cuda:1 unusable: this PyTorch build") for r in skipped)


def test_index_beyond_the_count(isolated: Path) -> None:
    report = _verify_with(TWO_GPUS, "cuda:5", isolated)
    inventory = report.find("cuda:5", "inventory")
    assert inventory is not None and inventory.verdict is Verdict.FAIL
    assert inventory.message == (
        "cuda:5 unusable: only 2 GPU(s) visible (cuda:0 (NVIDIA RTX A4000), cuda:1 (NVIDIA RTX A4000)); "
        "cuda:5 does not exist."
    )
    assert inventory.remedy.startswith("choose one of cuda:0..cuda:1 (see `gpubench info`)")
    assert {r.check for r in report.results if r.verdict is Verdict.SKIP} >= {"memtest", "compute", "perf_floor"}


def test_reason_when_pytorch_is_missing() -> None:
    problem = why_unusable(parse_device("cuda:1"), CudaProbe(None, torch_error="ModuleNotFoundError: torch"))
    assert problem is not None and problem.code == "torch_missing"
    assert str(problem) == (
        "PyTorch is not importable (ModuleNotFoundError: torch). Fix: install it in this environment: pip install "
        "torch (or use the environment that has it)."
    )


# --- benchmarks fall back as configured ---------------------------------------------------------------

CASES = """
def test_bench(benchmark, device):
    benchmark.group = "sum"
    benchmark(sum, range(100))
"""


def _project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, config: str) -> pytest.Pytester:
    for var in list(os.environ):
        if var.startswith(("GPUBENCH_", "SIMPLE_DL_")):
            monkeypatch.delenv(var)
    # the inner run is a user's run: under pytest-xdist (-n) the worker's PYTEST_XDIST_WORKER would make
    # pytest-benchmark disable itself there, and --benchmark-json would write nothing
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setenv("HOME", str(pytester.path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(pytester.path / "xdg"))
    (pytester.path / "dl.config.sdn").write_text(config, encoding="utf-8")
    pytester.makepyfile(test_cases=CASES)
    return pytester


def test_hidden_gpu_falls_back_to_cpu_with_the_note_in_every_result(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(pytester, monkeypatch, 'dl:\n  device: "cuda:1"\n')
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a real process: CUDA reads it when it initialises
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-json=out.json",
                                          "--benchmark-max-time=0.001", "--benchmark-min-rounds=1")
    result.assert_outcomes(passed=1)
    note = (
        "FALLBACK: cuda:1 requested but unusable (CUDA_VISIBLE_DEVICES='' exposes 0 GPU(s) to this process, "
        "so cuda:1 does not exist here"
    )
    result.stdout.fnmatch_lines(["*gpubench notes*", note.replace("[", "[[]") + "*ran on cpu instead"])
    (bench,) = json.loads((project.path / "out.json").read_text("utf-8"))["benchmarks"]
    assert bench["param"] == "cuda:1"
    extra = bench["extra_info"]
    assert (extra["device"], extra["requested_device"]) == ("cpu", "cuda:1")
    assert extra["fallback_note"].startswith(note) and extra["fallback_note"].endswith("ran on cpu instead")
    assert extra["gpu"]["uuid"].startswith("cpu-")


@pytest.mark.parametrize(
    ("policy", "outcome", "line"),
    [
        ("cpu", {"passed": 1}, f"FALLBACK: cuda:1 requested but unusable ({CPU_ONLY_REASON}); ran on cpu instead"),
        ("none", {"skipped": 1}, f"*SKIPPED*cuda:1 skipped: {CPU_ONLY_REASON} Fix: install a CUDA build*"
                                 "(bench.fallback is 'none')"),
    ],
)
def test_cpu_only_build_follows_the_fallback_policy(
    policy: str, outcome: dict[str, int], line: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gpubench.bench.plugin

    project = _project(pytester, monkeypatch, f'dl:\n  device: "cuda:1"\nbench:\n  fallback: {policy}\n')
    monkeypatch.setattr(gpubench.bench.plugin, "probe_cuda", lambda: CPU_ONLY)  # what a CPU-only PyTorch reports
    # When nothing may run, pytest-benchmark warns that its fixture went unused by the skipped case; this
    # process turns warnings into errors, a user's run only shows it.
    options = (
        ["--benchmark-json=out.json"]
        if policy == "cpu"
        else ["-W", "ignore::pytest_benchmark.logger.PytestBenchmarkWarning"]
    )
    result = project.runpytest_inprocess("-rs", "-p", "no:cacheprovider", *options,
                                         "--benchmark-max-time=0.001", "--benchmark-min-rounds=1")
    result.assert_outcomes(**outcome)
    result.stdout.fnmatch_lines([line.replace("[", "[[]")])
    if policy == "cpu":
        (bench,) = json.loads((project.path / "out.json").read_text("utf-8"))["benchmarks"]
        assert bench["extra_info"]["device"] == "cpu" and bench["extra_info"]["fallback_note"] == line
    else:
        assert "gpubench notes" not in result.stdout.str()  # nothing ran elsewhere, so nothing fell back
