"""The benchmark suite as users meet it: `pytest bench` in a subprocess, saved runs, comparisons, the CLI."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpubench.bench import command as bench_cli
from gpubench.config import load_config

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
# The workload cases (bench/ also holds other suites' cases, tested by their own tests).
WORKLOAD_CASES = [str(BENCH / name) for name in
                  ("test_tensor_creation.py", "test_tensor_ops.py", "test_xor.py", "test_mnist.py")]

# Every case, but small: the suite's logic, not its numbers, is under test here.
SMALL = {
    "GPUBENCH_BENCH_DEVICES": "cpu",
    "GPUBENCH_BENCH_CREATION_SIZES": "[4096]",
    "GPUBENCH_BENCH_ELEMENTWISE_SIZES": "[4096]",
    "GPUBENCH_BENCH_MATMUL_SIZES": "[64]",
    "GPUBENCH_BENCH_COPY_BYTES": "[65536]",
    "GPUBENCH_BENCH_XOR_SEEDS": "8",
    "GPUBENCH_BENCH_XOR_EPOCHS": "20",
    "GPUBENCH_BENCH_MNIST_LIMIT": "256",
    "GPUBENCH_BENCH_ROUNDS": "2",
    "GPUBENCH_BENCH_MNIST_ROUNDS": "1",
    "GPUBENCH_BENCH_XOR_ROUNDS": "1",
    "GPUBENCH_DATA_DOWNLOAD": "false",
    "GPUBENCH_DATA_SOURCE": "synthetic",
}


def run_pytest(args: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` from ``tmp_path`` (bench paths absolute; rootdir is still the repository)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBENCH_")}
    env.update(SMALL, GPUBENCH_RESULTS_DIR=str(tmp_path / "results"), GPUBENCH_DATA_DIR=str(tmp_path / "data"),
               **extra)
    return subprocess.run([sys.executable, "-m", "pytest", "--rootdir", str(REPO), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_benchmark_disable_runs_every_case_once(tmp_path: Path) -> None:
    """Every workload case runs once on cpu; CUDA-only cases are skipped naming the reason."""
    proc = run_pytest([*WORKLOAD_CASES, "--benchmark-disable", "-q", "-p", "no:randomly"], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # 3 creation + 5 elementwise + 1 matmul + 1 copy + 1 XOR + 3 MNIST pipelines; 4 copies and cuda-graph need CUDA
    assert "14 passed, 5 skipped" in out, out
    assert "failed" not in out and "error" not in out.lower().replace("-w error", "")
    assert "copy-h2d-pinned needs a CUDA device" in out  # skipped with the exact reason
    assert "mnist cuda-graph (CUDA graph capture) needs a CUDA device" in out
    assert not list(tmp_path.rglob("*.json"))  # nothing timed, nothing saved


def test_runs_are_saved_under_results_and_compared(tmp_path: Path) -> None:
    args = [str(BENCH / "test_tensor_ops.py"), "-k", "matmul", "-q", "-p", "no:randomly"]
    first = run_pytest(args, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    saved = sorted((tmp_path / "results" / "benchmarks").rglob("*.json"))
    assert len(saved) == 1
    run = json.loads(saved[0].read_text())
    bench = run["benchmarks"][0]
    assert bench["group"] == "matmul-f32-64"
    info = bench["extra_info"]
    assert info["device"] == "cpu" and info["timing"]["method"] == "perf_counter"
    assert info["flops"] == 2 * 64**3 and info["matmul_fraction"] > 0 and "uuid" in info["gpu"]

    # the gate runs but cannot trip on load: a 64x64 matmul once took 240x its first run's median on this
    # 2-core machine while other jobs ran (1000% failed the test)
    second = run_pytest([*args, "--benchmark-compare", "--benchmark-compare-fail=median:1000000%"], tmp_path)
    out = second.stdout + second.stderr
    assert second.returncode == 0, out
    assert "Comparing against benchmarks from" in out
    assert "(NOW)" in out and "(0001" in out and "cpu" in out
    assert len(sorted((tmp_path / "results" / "benchmarks").rglob("*.json"))) == 2

    # pytest-benchmark's own reader accepts the saved files
    compare = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "--storage", f"file://{tmp_path / 'results' / 'benchmarks'}",
         "compare", "--group-by", "group"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert "matmul-f32-64" in compare.stdout + compare.stderr


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    parser.add_argument("--set", action="append")
    parser.add_argument("-q", "--quiet", action="store_true")
    bench_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_builds_the_pytest_command_line(tmp_path: Path) -> None:
    config = load_config(flags={"bench.devices": ["cpu"], "bench.rounds": "3"}, env={}, cwd=tmp_path, user_files=False)
    args = _args("--compare", "--compare-fail", "median:5%", "-k", "matmul", "--pytest-args", "-x --benchmark-histogram")
    argv = bench_cli.pytest_args(args, config, BENCH)
    assert argv[0] == str(BENCH)
    assert argv[argv.index("--gpubench-devices") + 1] == "cpu"
    assert argv[argv.index("-W") + 1] == "ignore::pytest.PytestAssertRewriteWarning"
    assert "--benchmark-compare" in argv and "--benchmark-compare-fail=median:5%" in argv
    assert argv[-4:] == ["-k", "matmul", "-x", "--benchmark-histogram"]
    env = bench_cli.settings_env(config, full=True)
    assert env["GPUBENCH_BENCH_ROUNDS"] == "3"  # --set wins over --full
    assert env["GPUBENCH_BENCH_MNIST_LIMIT"] == "0"
    assert env["GPUBENCH_BENCH_DEVICES"] == "[cpu]"
    assert bench_cli.settings_env(config, full=False).get("GPUBENCH_BENCH_MNIST_LIMIT") is None
    assert not _args().full and _args("--full").full
    assert bench_cli.find_bench_dir(cwd=REPO) == BENCH
    with pytest.raises(FileNotFoundError, match="--bench-dir"):
        bench_cli.find_bench_dir(str(tmp_path))
    assert [bench_cli.exit_code(c) for c in (0, 1, 2, 4, 5)] == [0, 1, 2, 2, 2]


def test_cli_mnist_training_run_on_synthetic_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for key in [k for k in os.environ if k.startswith("GPUBENCH_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    args = _args("mnist", "--epochs", "1", "--limit", "256", "--set", "dl.device=cpu", "--set",
                 "data.source=synthetic", "--set", f"results.dir={tmp_path / 'results'}")
    assert bench_cli.run(args) == 0
    out = capsys.readouterr().out
    assert "MNIST data source: synthetic" in out
    assert "verdict: SKIP" in out
    saved = list((tmp_path / "results" / "training").glob("*-mnist.json"))
    assert len(saved) == 1
    record = json.loads(saved[0].read_text())
    assert record["data_source"]["kind"] == "synthetic" and record["device"]["device"] == "cpu"
