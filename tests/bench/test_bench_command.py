"""`gpubench bench` speaks pytest-benchmark: its own `--benchmark-*` options, anything after `--` to pytest
unchanged, the command echoed shell-quoted, an explicit `--benchmark-storage` honoured; the older spellings
(`--compare`, `--compare-fail`, `--disable`, `--pytest-args`) still work."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpubench import cli
from gpubench.bench import command as bench_cli
from gpubench.cli.app import build_parser
from gpubench.config import load_config

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


def _parse(*argv: str) -> argparse.Namespace:
    """``gpubench bench ARGV`` through the CLI's own parser."""
    return build_parser("bench").parse_args(["bench", *argv])


def _pytest_argv(*argv: str, cwd: Path | None = None) -> list[str]:
    config = load_config(flags={"bench.devices": ["cpu"]}, env={}, cwd=cwd or REPO, user_files=False)
    return bench_cli.pytest_args(_parse(*argv), config, BENCH)


def _fixed(argv: list[str]) -> list[str]:
    """What follows gpubench's own options (-W ignore::...)."""
    return argv[argv.index("ignore::pytest.PytestAssertRewriteWarning") + 1 :]


def test_every_pytest_benchmark_option_is_accepted() -> None:
    options = bench_cli.benchmark_options()
    names = {o.name for o in options}
    assert {
        "--benchmark-compare",
        "--benchmark-compare-fail",
        "--benchmark-disable",
        "--benchmark-storage",
    } <= names
    assert all(name.startswith("--benchmark-") for name in names)
    for option in options:  # each one parses in its own spelling (flags bare, the others with a value)
        word = option.name if option.nargs in (0, "?") else f"{option.name}=1"
        assert _parse(word).benchmark_argv[0][0] == option.name


def test_benchmark_options_reach_pytest_as_given() -> None:
    argv = _pytest_argv(
        "--benchmark-compare=0001",
        "--benchmark-min-rounds",
        "3",
        "--benchmark-disable-gc",
        "--benchmark-histogram",
        "--benchmark-columns=min,max",
    )
    cut = argv.index("-p")
    # right after the cases, before gpubench's own options: an option with optional values swallows no path
    assert argv[1:cut] == [
        "--benchmark-compare=0001",
        "--benchmark-min-rounds=3",
        "--benchmark-disable-gc",
        "--benchmark-histogram",
        "--benchmark-columns=min,max",
    ]


def test_compare_fail_expressions_are_given_together() -> None:
    """pytest keeps only the last `--benchmark-compare-fail`: every expression, old spelling too, goes in one."""
    one = _pytest_argv("--benchmark-compare-fail=median:5%")
    assert one[1] == "--benchmark-compare-fail=median:5%"
    many = _pytest_argv(
        "--benchmark-compare-fail",
        "min:5%",
        "max:10%",
        "--compare-fail",
        "mean:1%",
        "--benchmark-compare-fail=stddev:3",
    )
    assert many[1:6] == ["--benchmark-compare-fail", "min:5%", "max:10%", "mean:1%", "stddev:3"]
    assert many[6] == "-p"


def test_everything_after_double_dash_goes_to_pytest_unchanged() -> None:
    args = _parse("-k", "matmul", "--", "-x", "--lf", "-k", "not big", "mnist", "--", "--benchmark-foo")
    assert args.what == "suite" and args.keyword == "matmul"
    assert args.pytest_extra == ["-x", "--lf", "-k", "not big", "mnist", "--", "--benchmark-foo"]
    argv = _pytest_argv("-k", "matmul", "--", "-x", "--lf", "-k", "not big")
    assert _fixed(argv) == ["-k", "matmul", "-x", "--lf", "-k", "not big"]
    # the older one-string form still works, before the words after --
    argv = _pytest_argv("--pytest-args", "-x --benchmark-histogram", "--", "bench/test_xor.py")
    assert _fixed(argv) == ["-x", "--benchmark-histogram", "bench/test_xor.py"]
    mnist = _parse("mnist", "--epochs", "2", "-q")
    assert (mnist.what, mnist.epochs, mnist.quiet, mnist.pytest_extra) == ("mnist", 2, True, [])


def test_deprecated_spellings_still_work_with_a_note() -> None:
    old = _parse("--compare", "--compare-fail", "median:5%", "--disable")
    new = _parse("--benchmark-compare", "--benchmark-compare-fail=median:5%", "--benchmark-disable")
    assert bench_cli.benchmark_argv(old.benchmark_argv) == bench_cli.benchmark_argv(new.benchmark_argv)
    assert (old.compare, old.compare_fail, old.disable) == (
        True,
        ["median:5%"],
        True,
    )  # the old attributes too
    notes = bench_cli.deprecation_notes(old)
    assert len(notes) == 3 and "--benchmark-compare-fail=EXPR" in notes[1]
    assert bench_cli.deprecation_notes(new) == []
    assert _parse("--compare", "0002").benchmark_argv == [("--benchmark-compare", "0002")]


def test_explicit_storage_is_honoured(tmp_path: Path) -> None:
    """bench/conftest.py replaces pytest-benchmark's default storage by results/benchmarks: typed
    explicitly, the default spelling is made absolute so that it is not taken for no option."""
    explicit = bench_cli.benchmark_argv([("--benchmark-storage", "file://./.benchmarks")], cwd=tmp_path)
    assert explicit == [f"--benchmark-storage=file://{tmp_path / '.benchmarks'}"]
    for other in ("file:///srv/benchmarks", "./elsewhere", "elasticsearch+https://host/index"):
        assert bench_cli.benchmark_argv([("--benchmark-storage", other)]) == [f"--benchmark-storage={other}"]


def test_the_echoed_command_is_shell_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key in [k for k in os.environ if k.startswith("GPUBENCH_")]:
        monkeypatch.delenv(key)
    ran: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        ran.append(list(argv))
        return 0

    monkeypatch.setattr(bench_cli.pytest, "main", fake_main)
    config = tmp_path / "dl.config.sdn"
    config.write_text('dl:\n  device: "cpu"\n', encoding="utf-8")
    argv = ["bench", "--config", str(config), "--bench-dir", str(BENCH), "--set", "bench.rounds=2"]
    code = cli.main([*argv, "--compare", "-k", "creation and zeros", "--", "-x", "-p", "no:randomly"])
    assert code == 0
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("gpubench bench: ")]
    echoed = line.removeprefix("gpubench bench: ")
    assert "-k 'creation and zeros'" in echoed
    words = shlex.split(echoed)  # a shell reads back exactly the command that ran
    assert words[: words.index("pytest")] == ["GPUBENCH_BENCH_ROUNDS=2"]
    assert words[words.index("pytest") + 1 :] == ran[0]
    assert ran[0][1] == "--benchmark-compare" and ran[0][-3:] == ["-x", "-p", "no:randomly"]
    assert "note: `gpubench bench --compare` is deprecated" in err


def _gpubench_bench(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("GPUBENCH_")}
    env.update(
        GPUBENCH_BENCH_CREATION_SIZES="[4096]", GPUBENCH_BENCH_DTYPES="[f32]", GPUBENCH_BENCH_ROUNDS="2"
    )
    return subprocess.run(
        [sys.executable, "-m", "gpubench", "bench", "--device", "cpu", "--results-dir", str(tmp_path / "results"),
         "--bench-dir", str(BENCH), "-k", "creation and zeros", *argv],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_end_to_end_with_pytest_benchmark_options(tmp_path: Path) -> None:
    proc = _gpubench_bench(tmp_path, "--benchmark-disable", "--", "-p", "no:randomly", "-rN")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 passed" in out and "-k 'creation and zeros'" in out
    assert not list(tmp_path.rglob("*.json"))  # --benchmark-disable: nothing timed, nothing saved


def test_end_to_end_explicit_default_storage_is_used(tmp_path: Path) -> None:
    proc = _gpubench_bench(tmp_path, "--benchmark-storage=file://./.benchmarks", "--", "-p", "no:randomly")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(list((tmp_path / ".benchmarks").rglob("*.json"))) == 1
    assert not (tmp_path / "results" / "benchmarks").exists()


def test_the_suite_keeps_its_own_order_when_pytest_randomly_is_installed() -> None:
    argv = _pytest_argv()
    assert argv[argv.index("no:randomly") - 1] == "-p"
