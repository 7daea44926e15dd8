"""scripts/gpu-suite.sh and its hardware proof (``--proof``), run the way a GPU node runs them.

The proof runs once, for real, on this machine (no GPU here: its GPU-only steps must be skipped with the
reason and everything else must run with tiny settings). Its pieces that only a GPU node reaches
(dmon's trace against the NVML telemetry, triton's do_bench beside the DeviceTimer) are fed stand-ins:
a fake ``nvidia-smi`` printing dmon's format, a fake ``do_bench``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "scripts" / "gpu-suite.sh"
PROOF = ROOT / "scripts" / "proof" / "proof.sh"
MIB = 1024 * 1024

# Every step the proof records, in order (summary.json lists each with an exit code or a skip reason).
STEPS = (
    "probe", "nvml-profile", "nvidia-smi-q", "nvidia-smi-gpus", "nvidia-smi-dmon", "info", "verify-quick",
    "verify-missing-cuda1", "bench", "timers", "distributed", "verify-long", "report", "pack",
)
GPU_ONLY = ("nvidia-smi-q", "nvidia-smi-gpus", "nvidia-smi-dmon", "verify-long")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                                reason="needs bash and GNU timeout")


def _script_module(relative: str, name: str) -> ModuleType:
    """Import a file under scripts/ (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _clean_env(tmp: Path) -> dict[str, str]:
    """This environment without the user's gpubench settings, temporary files under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBENCH_", "PROOF_")) and k != "OUT"}
    env["PYTHON"] = sys.executable
    env["TMPDIR"] = str(tmp)
    return env


# --- the script itself ------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [SUITE, PROOF], ids=lambda p: p.name)
def test_scripts_parse(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _code_lines(script: Path) -> list[str]:
    return [line for line in script.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")]


@pytest.mark.parametrize("script", [SUITE, PROOF], ids=lambda p: p.name)
def test_every_array_expansion_is_guarded(script: Path) -> None:
    # "${a[@]}" of an empty array aborts under set -u on bash < 4.4: each expansion must be ${a[@]+...}.
    guarded = re.compile(r'\$\{(\w+)\[([@*])\]\+"?\$\{\1\[\2\]\}"?\}')
    bare = [line for line in _code_lines(script) if re.search(r"\$\{\w+\[[@*]\]\}", guarded.sub("", line))]
    assert bare == []


def test_guarded_expansion_under_set_u() -> None:
    snippet = (
        'set -uo pipefail\n'
        'plugins=()\n'
        'args=(first ${plugins[@]+"${plugins[@]}"} last)\n'
        'echo "${#args[@]}"\n'
        'plugins=(-p gpubench.bench.plugin -p "two words")\n'
        'args=(first ${plugins[@]+"${plugins[@]}"} last)\n'
        'echo "${#args[@]} ${args[4]}"\n'
    )
    result = subprocess.run(["bash", "-u", "-c", snippet], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["2", "6 two words"]


def test_usage(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    bad = subprocess.run([str(SUITE), "--bogus"], capture_output=True, text=True, env=env, check=False)
    assert bad.returncode == 2 and "usage" in bad.stderr
    helped = subprocess.run([str(SUITE), "--help"], capture_output=True, text=True, env=env, check=False)
    assert helped.returncode == 0 and "--proof" in helped.stdout


# --- the proof on this machine -----------------------------------------------------------------------------


class ProofRun:
    def __init__(self, out: Path, result: subprocess.CompletedProcess[str], wall_s: float):
        self.out, self.result, self.wall_s = out, result, wall_s
        self.summary: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        self.steps = {s["name"]: s for s in self.summary["steps"]}


@pytest.fixture(scope="module")
def proof(tmp_path_factory: pytest.TempPathFactory) -> ProofRun:
    out = tmp_path_factory.mktemp("proof-out")
    env = _clean_env(tmp_path_factory.mktemp("proof-tmp")) | {"OUT": str(out)}
    started = time.monotonic()
    result = subprocess.run([str(SUITE), "--proof"], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=600, check=False)
    if not (out / "summary.json").is_file():
        pytest.fail(f"no summary.json; exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return ProofRun(out, result, time.monotonic() - started)


def test_proof_exits_zero(proof: ProofRun) -> None:
    assert proof.result.returncode == 0, proof.result.stdout[-4000:]
    assert proof.summary["exit_code"] == 0 and proof.summary["failed_steps"] == []


def test_proof_folder_limits(proof: ProofRun) -> None:
    entries = list(proof.out.iterdir())
    assert all(p.is_file() for p in entries), entries
    assert 1 <= len(entries) <= 8, entries
    assert all(p.stat().st_size <= 16 * MIB for p in entries)
    assert {"summary.json", "proof.log", "proof.tar.gz", "timers.json"} <= {p.name for p in entries}


def test_every_step_has_an_exit_code_or_a_reason(proof: ProofRun) -> None:
    assert list(proof.steps) == list(STEPS)
    for step in proof.summary["steps"]:
        assert step["status"] in ("ok", "skipped"), step
        if step["status"] == "skipped":
            assert step["reason"] and "\n" not in step["reason"], step
        else:
            assert isinstance(step["rc"], int) and step["rc"] in step["expected_rc"], step
            assert step["wall_s"] is not None and step["wall_s"] <= step["timeout_s"], step
    assert proof.steps["verify-missing-cuda1"]["rc"] == 1  # the missing-device path


def test_gpu_steps_skipped_with_the_reason_without_a_gpu(proof: ProofRun) -> None:
    if proof.summary["gpu"]:
        pytest.skip("this machine has a GPU: the GPU steps ran")
    for name in GPU_ONLY:
        assert proof.steps[name]["status"] == "skipped", proof.steps[name]
    for name in ("info", "verify-quick", "bench", "timers", "distributed", "report", "pack"):
        assert proof.steps[name]["status"] == "ok", proof.steps[name]
    timers = json.loads((proof.out / "timers.json").read_text(encoding="utf-8"))
    assert any(s["timer"] == "triton.testing.do_bench" and s["reason"] for s in timers["skipped"])


def test_recorded_profile_loads_or_the_step_says_why(proof: ProofRun) -> None:
    profile = proof.out / "nvml-profile.json"
    step = proof.steps["nvml-profile"]
    if profile.is_file():
        from gpubench.testing.nvml_sim import load_profile

        assert load_profile(profile).gpus
        assert step["status"] == "ok"
    else:  # no NVML here: record.py would exit 1 without writing; the proof skips it and says why
        assert step["status"] == "skipped" and "NVML" in step["reason"]
        assert proof.summary["figures"]["nvml_profile"]["skipped"] == step["reason"]


def test_the_tarball_holds_the_runs(proof: ProofRun) -> None:
    with tarfile.open(proof.out / "proof.tar.gz") as tar:
        names = tar.getnames()
    for pattern in (r"^info\.json$", r"^probe\.json$", r"^results/verify/.+\.json$",
                    r"^results/benchmarks/[^/]+/\d{4}_.+\.json$", r"^results/telemetry/.+\.csv$",
                    r"^results/distributed/.+\.json$", r"^report/report\.md$"):
        assert any(re.match(pattern, n) for n in names), (pattern, names)


def test_figures_are_read_off(proof: ProofRun) -> None:
    figures = proof.summary["figures"]
    device = "cuda:0" if proof.summary["gpu"] else "cpu"
    assert figures["mnist"]["by_device"][device]["images_per_s"]["resident"] > 0
    assert figures["mnist"]["by_device"][device]["batch_size"] == 128
    assert figures["elementwise_vs_copy"]["by_device"][device]["copy_d2d_gbps"] > 0
    assert figures["timers"]["diff_pct"]
    assert "quick" in {r["level"] for r in figures["verify"]["runs"]}
    assert figures["distributed"]["ddp_images_per_s"]["1"] > 0
    assert "skipped" in figures["telemetry_vs_dmon"] or "agree" in figures["telemetry_vs_dmon"]


def test_proof_log_has_every_step(proof: ProofRun) -> None:
    log = (proof.out / "proof.log").read_text(encoding="utf-8")
    for name in STEPS[:-1]:
        assert f"=== [{name}]" in log, name


def test_an_interrupted_proof_still_packs_what_ran(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = _clean_env(tmp_path) | {"OUT": str(out)}
    process = subprocess.Popen([str(SUITE), "--proof"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env, cwd=ROOT)
    try:
        # inside the step, not between two steps: wait for the step's `gpubench verify` process, freeze it
        # so it cannot finish first, stop the proof as a runner out of time would, then let it go on (it
        # gets the proof's SIGTERM through `timeout`). Polled until seen, never a guess at how long it takes.
        step = _frozen_child(process.pid, ("gpubench", "verify", "--level"), deadline_s=120)
        process.send_signal(signal.SIGTERM)
        step.resume()  # a stopped process cannot end (but by SIGKILL, which nothing sent yet)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 143, output[-3000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    interrupted = [s for s in summary["steps"] if s["reason"] and "interrupted" in s["reason"]]
    assert len(interrupted) == 1 and interrupted[0]["status"] == "failed"
    assert summary["exit_code"] == 1 and (out / "proof.tar.gz").is_file()
    assert not list(tmp_path.glob("gpubench-proof.*"))  # the work folder is removed


def _frozen_child(pid: int, words: tuple[str, ...], deadline_s: float) -> Any:
    """A descendant of ``pid`` whose command line holds every one of ``words`` (not the ``timeout`` that
    runs it), polled for until one exists and suspended (SIGSTOP) while still running; a psutil.Process.
    Fails the test after ``deadline_s``."""
    import psutil

    parent = psutil.Process(pid)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for child in parent.children(recursive=True):
            try:
                line = " ".join(child.cmdline())
                if all(word in line for word in words) and not line.startswith("timeout "):
                    child.suspend()
                    return child
            except psutil.Error:  # ended between the listing and the read or the stop: look again
                continue
        time.sleep(0.05)
    pytest.fail(f"no process with {' '.join(words)} under the proof within {deadline_s:g} s")


# --- the GPU node's pieces, with stand-ins ------------------------------------------------------------------

FAKE_SMI = r"""#!/usr/bin/env bash
# nvidia-smi stand-in: dmon prints one sample a second in dmon's format (-o DT), until stopped
case "$1" in
  dmon)
    echo "#Date       Time        gpu    pwr  gtemp  mtemp     sm    mem    enc    dec    jpg    ofa   mclk   pclk     fb   bar1"
    echo "#YYYYMMDD   HH:MM:SS    Idx      W      C      C      %      %      %      %      %      %    MHz    MHz     MB     MB"
    while :; do
      printf ' %s   %s      0    250     40      -     99     80      0      0      0      0   2619   1980   9000      1\n' \
        "$(date +%Y%m%d)" "$(date +%H:%M:%S)"
      sleep 0.5
    done ;;
esac
"""


def test_dmon_starts_and_stops_in_the_background(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(FAKE_SMI, encoding="utf-8")
    (bin_dir / "nvidia-smi").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = _clean_env(tmp_path) | {"PATH": f"{bin_dir}:{os.environ['PATH']}", "PY": sys.executable,
                                   "PROOF_WORK": str(work)}
    snippet = (
        'set -uo pipefail\n'
        '. scripts/proof/proof.sh\n'
        'PROOF_LOG=$PROOF_WORK/log PROOF_STEPS=$PROOF_WORK/steps.tsv PROOF_BUDGET_S=30 PROOF_GPU=1\n'
        'PROOF_DEADLINE=$(( $(date +%s) + 30 ))\n'
        '_proof_start_dmon\n'
        'sleep 2\n'
        '_proof_stop_dmon\n'
    )
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", snippet], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20  # stopped, not left to run its -c count
    row = (work / "steps.tsv").read_text(encoding="utf-8").split("\t")
    assert row[:2] == ["nvidia-smi-dmon", "ok"], row
    summarize = _script_module("scripts/proof/summarize.py", "proof_summarize")
    names, rows = summarize.read_dmon(work / "dmon.txt")
    assert names[:4] == ["date", "time", "gpu", "pwr"] and len(rows) >= 2
    assert len((work / "clock-offset.txt").read_text(encoding="utf-8").split()) == 2


def test_telemetry_is_compared_with_dmon_over_the_same_windows(tmp_path: Path) -> None:
    summarize = _script_module("scripts/proof/summarize.py", "proof_summarize")
    now = time.time()
    offset = now - 1000.0  # perf_counter 1000.0 is wall clock `now`
    (tmp_path / "clock-offset.txt").write_text(f"{offset!r}\n{offset!r}\n", encoding="utf-8")
    (tmp_path / "nvidia-smi-gpus.csv").write_text("index, uuid\n0, GPU-aaaa\n1, GPU-bbbb\n", encoding="utf-8")
    stamp = time.strftime  # dmon's local-time stamps, one a second for 20 s around the window
    lines = ["#Date Time gpu pwr gtemp mtemp sm mem enc dec jpg ofa mclk pclk fb bar1",
             "#YYYYMMDD HH:MM:SS Idx W C C % % % % % % MHz MHz MB MB"]
    for k in range(-5, 15):
        t = time.localtime(now + k)
        busy = 0 <= k <= 8
        lines.append(f" {stamp('%Y%m%d', t)} {stamp('%H:%M:%S', t)} 0 {400 if busy else 90} 40 - 99 80 0 0 0 0 "
                     f"2619 {1980 if busy else 345} 9000 1")
        lines.append(f" {stamp('%Y%m%d', t)} {stamp('%H:%M:%S', t)} 1 77 40 - 0 0 0 0 0 0 2619 345 0 1")
    (tmp_path / "dmon.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    trace = tmp_path / "results" / "telemetry" / "run" / "case.csv"
    trace.parent.mkdir(parents=True)
    samples = ["t,device,uuid,power_w,sm_clock_mhz"]
    samples += [f"{1000.0 + 0.25 * i + 1.0:.6f},cuda:0,GPU-aaaa,{408.0 if i % 2 else 400.0},1980" for i in range(24)]
    trace.write_text("\n".join(samples) + "\n", encoding="utf-8")
    rows = [{"extra_info": {"telemetry": {"source": "nvml", "uuid": "GPU-aaaa",
                                          "trace_in_results": "telemetry/run/case.csv"}}}]
    figure = summarize.telemetry_vs_dmon(tmp_path, rows)
    assert figure["windows"] == 1, figure
    assert figure["power_w"]["dmon_mean"] == pytest.approx(400.0)  # GPU 1 and the idle seconds left out
    assert figure["power_w"]["diff_pct"] == pytest.approx(1.0)
    assert figure["sm_clock_mhz"]["diff_pct"] == pytest.approx(0.0)
    assert figure["agree"] is True


class _FakeDeviceTimer:
    """DeviceTimer's face without a GPU: 1 ms per call warm, 0.505 ms with the L2 flush (CUDA only)."""

    def __init__(self, device: str) -> None:
        self.device = device

    def clock_for(self) -> str:
        return "cuda-events"

    def method_name(self, clock: str) -> str:
        return clock

    def measure(self, fn: Any, *, rounds: int, warmup_rounds: int, l2_flush_buffer: Any = None) -> Any:
        fn()
        return SimpleNamespace(median_s=1e-3 if l2_flush_buffer is None else 5.05e-4)


def test_timers_compare_do_bench_with_the_flushed_device_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    timers = _script_module("scripts/compare_timers.py", "proof_compare_timers")
    monkeypatch.setattr(timers, "DeviceTimer", _FakeDeviceTimer)
    args = argparse.Namespace(repeats=1, rounds=2, min_run_time=0.01, do_bench_warmup_ms=1, do_bench_rep_ms=1)
    op = timers.operations("cpu", add_numel=1 << 12, matmul_n=16)[0]
    calls: list[dict[str, Any]] = []

    def fake_do_bench(fn: Any, **kwargs: Any) -> float:
        calls.append(kwargs)
        fn()
        return 0.5  # ms

    medians, error = timers.measure(op, "cuda:0", args, None, fake_do_bench, object())
    assert error is None and calls[0]["return_mode"] == "median"
    rows = {r.timer: r for r in timers.rows_for("cuda:0", op.name, medians)}
    assert rows[timers.DO_BENCH].median_s == pytest.approx(5e-4)
    assert rows[timers.DO_BENCH].reference == timers.DEVICE_TIMER_FLUSHED
    assert rows[timers.DO_BENCH].diff_pct == pytest.approx(100 * (0.5 - 0.505) / 0.505)
    assert rows[timers.DEVICE_TIMER].reference is None  # no torch Timer given: nothing to compare it with

    def broken_do_bench(fn: Any, **kwargs: Any) -> float:
        msg = "no C compiler for triton's driver helper"
        raise RuntimeError(msg)

    medians, error = timers.measure(op, "cuda:0", args, None, broken_do_bench, object())
    assert error is not None and "no C compiler" in error and timers.DO_BENCH not in medians


def test_timers_that_disagree_exit_1_unless_only_the_verdict_is_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    timers = _script_module("scripts/compare_timers.py", "proof_compare_timers_verdict")

    def twice_as_slow(op: Any, device: str, *args: Any) -> tuple[dict[str, tuple[float, str]], None]:
        return {timers.DEVICE_TIMER: (2e-3, "perf_counter"), timers.TORCH_TIMER: (1e-3, "blocked_autorange")}, None

    monkeypatch.setattr(timers, "measure", twice_as_slow)
    common = ["--devices", "cpu", "--tolerance", "0.5", "--add-numel", "64", "--matmul-n", "4"]
    assert timers.main([*common, "--json", str(tmp_path / "gate.json")]) == 1
    assert timers.main([*common, "--json", str(tmp_path / "told.json"), "--verdict-only"]) == 0
    told = json.loads((tmp_path / "told.json").read_text(encoding="utf-8"))
    assert told["agree"] is False and told["worst_diff_pct"] == pytest.approx(100.0)
    assert capsys.readouterr().out.count("timers DISAGREE within 50%") == 2


def test_pack_leaves_out_pictures_before_data(tmp_path: Path) -> None:
    pack = _script_module("scripts/proof/pack.py", "proof_pack")
    work = tmp_path / "work"
    (work / "report" / "plots").mkdir(parents=True)
    (work / "report" / "plots" / "big.png").write_bytes(os.urandom(300_000))
    (work / "results.json").write_text("{}", encoding="utf-8")
    target = tmp_path / "proof.tar.gz"
    assert pack.main([str(work), str(target), "--limit-mib", "0.1"]) == 0
    with tarfile.open(target) as tar:
        names = tar.getnames()
        left_out = tar.extractfile("left-out.txt")
        assert left_out is not None and b"big.png" in left_out.read()
    assert "results.json" in names and "report/plots/big.png" not in names
