"""Distributed runs for real: two ranks on cpu (gloo), failing, hanging, killed, mis-sized, and the user's
torchrun command.

The multi-process tests use gloo on cpu. The end-to-end test is the user's command (``torchrun --standalone``,
which picks a free port itself); the failure tests fork two ranks from this process (torch already imported,
so they start in a fraction of a second) and rendezvous through a file under the test's temporary folder,
so parallel runs never share a port or a store.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from gpubench.distributed.command import main

HOST = socket.gethostname()
TINY = [
    "--device",
    "cpu",
    "-q",
    "--set",
    "data.source=synthetic",
    "--set",
    "bench.matmul_sizes=64",
    "--set",
    "bench.copy_bytes=65536",
    "--set",
    "bench.rounds=3",
    "--set",
    "bench.warmup_rounds=1",
    "--dist-min-bytes",
    "4KiB",
    "--dist-max-bytes",
    "16KiB",
    "--dist-rounds",
    "3",
    "--dist-warmup",
    "1",
    "--dist-ddp-steps",
    "2",
]


# --- real runs ----------------------------------------------------------------------------------------------


def _rank_process(
    rank: int, world: int, cwd: str, argv: list[str], env: dict[str, str], log: str, split: bool = False
) -> None:
    """A forked rank: its own output file (``split``: stderr apart, in ``<log>.err``), environment and folder,
    then the distributed entry point."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(os.open(log + ".err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if split else fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives with the process
    sys.stderr = open(2, "w", buffering=1, closefd=False) if split else sys.stdout  # noqa: SIM115
    os.chdir(cwd)
    for key in [k for k in os.environ if k.startswith(("GPUBENCH_", "SIMPLE_DL_", "_GPUBENCH_"))]:
        del os.environ[key]
    os.environ.update(
        {
            "HOME": cwd,
            "XDG_CONFIG_HOME": os.path.join(cwd, "xdg"),
            "COLUMNS": "200",
            **env,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "1",
        }
    )
    import torch

    torch.set_num_threads(1)
    code = 99
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def fork_ranks(
    tmp_path: Path, argv: list[str], env: dict[str, str] | None = None, world: int = 2, split: bool = False
) -> list[multiprocessing.process.BaseProcess]:
    from gpubench.results import software_versions

    software_versions()  # import what rank 0's environment record imports once, here, before forking
    ctx = multiprocessing.get_context("fork")
    full = [*argv, "--dist-init-file", str(tmp_path / "rendezvous")]
    procs = []
    for rank in range(world):
        p = ctx.Process(
            target=_rank_process,
            args=(rank, world, str(tmp_path), full, env or {}, str(tmp_path / f"rank{rank}.log"), split),
            daemon=True,
        )
        with warnings.catch_warnings():  # Python 3.12+ warns about fork in a threaded process; these children
            warnings.simplefilter(
                "ignore", DeprecationWarning
            )  # only run gpubench, which is fork-safe on cpu
            p.start()
        procs.append(p)
    return procs


def _log(tmp_path: Path, rank: int) -> str:
    path = tmp_path / f"rank{rank}.log"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def _stop(procs: list[multiprocessing.process.BaseProcess]) -> None:
    for p in procs:
        if p.is_alive():
            p.kill()
        p.join(5)


@pytest.mark.distributed
def test_a_rank_that_raises_is_named_by_rank_0_and_the_run_fails(tmp_path: Path) -> None:
    procs = fork_ranks(tmp_path, ["bench", *TINY], {"_GPUBENCH_TEST_FAIL_RANK": "1"})
    try:
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [1, 1], _log(tmp_path, 0) + _log(tmp_path, 1)
    finally:
        _stop(procs)
    out = _log(tmp_path, 0)
    assert (
        f"rank 1 on {HOST} (cpu) failed: RuntimeError: injected failure (_GPUBENCH_TEST_FAIL_RANK=1)" in out
    )
    assert "distributed bench FAILED (exit 1)" in out
    [run] = list((tmp_path / "results" / "distributed").glob("*.json"))
    data = json.loads(run.read_text())
    assert [(r["rank"], r["status"]) for r in data["ranks"]] == [(0, "ok"), (1, "error")]
    assert data["collectives"] == [] and data["ddp_scaling"] == []  # skipped once a rank failed


@pytest.mark.distributed
@pytest.mark.slow  # the subject is a real-time timeout: two processes, a 4 s barrier
def test_a_rank_that_hangs_is_named_within_the_timeout(tmp_path: Path) -> None:
    timeout = 4.0
    start = time.monotonic()
    procs = fork_ranks(
        tmp_path, ["bench", *TINY, "--dist-timeout", str(timeout)], {"_GPUBENCH_TEST_HANG_RANK": "1"}
    )
    try:
        procs[0].join(timeout + 30)
        elapsed = time.monotonic() - start
        assert procs[0].exitcode == 1, _log(tmp_path, 0)
        assert procs[1].is_alive()  # still hanging: torchrun would now stop it; here the test does
    finally:
        _stop(procs)
    out = _log(tmp_path, 0)
    assert (
        f"rank 1 on {HOST} (cpu) did not reach the barrier after bench on every rank within {timeout:g} s"
        in out
    ), out
    assert elapsed < timeout + 25
    [run] = list((tmp_path / "results" / "distributed").glob("*.json"))
    assert [r["status"] for r in json.loads(run.read_text())["ranks"]] == ["ok", "hung"]


@pytest.mark.distributed
@pytest.mark.slow  # two real processes; waits for the hanging rank's log line, then kills it
def test_a_rank_killed_outright_is_named(tmp_path: Path) -> None:
    procs = fork_ranks(tmp_path, ["bench", *TINY, "--dist-timeout", "4"], {"_GPUBENCH_TEST_HANG_RANK": "1"})
    try:
        deadline = time.monotonic() + 60
        while "hangs now" not in _log(tmp_path, 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # rank 0 is now at (or near) the barrier after its own bench
        procs[1].kill()  # SIGKILL: no chance to say anything
        procs[0].join(40)
        assert procs[0].exitcode == 1, _log(tmp_path, 0)
    finally:
        _stop(procs)
    assert f"rank 1 on {HOST} (cpu) did not reach the barrier" in _log(tmp_path, 0)


@pytest.mark.distributed
def test_an_unexpected_world_size_stops_the_run_at_once(tmp_path: Path) -> None:
    procs = fork_ranks(tmp_path, ["bench", *TINY, "--dist-expect-world-size", "4"])
    try:
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [2, 2], _log(tmp_path, 0)
    finally:
        _stop(procs)
    assert f"the run has 2 rank(s) on 1 host(s) ({HOST}) but --dist-expect-world-size is 4" in _log(
        tmp_path, 0
    )


def _cli_dispatches() -> bool:
    """True once ``gpubench bench`` hands runs under torchrun to gpubench.distributed (the lead wires it)."""
    import gpubench.cli

    return "distributed" in Path(gpubench.cli.__file__).read_text(encoding="utf-8")


@pytest.mark.distributed
def test_torchrun_two_ranks_bench_writes_one_merged_run(tmp_path: Path) -> None:
    """The issue's acceptance run: torchrun --standalone --nproc-per-node=2 -m gpubench bench, gloo on cpu."""
    module = "gpubench" if _cli_dispatches() else "gpubench.distributed"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBENCH_", "SIMPLE_DL_", "_GPUBENCH_"))}
    env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "COLUMNS": "200"})
    argv = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        module,
        "bench",
        *[a for a in TINY if a != "-q"],
        "--dist-timeout",
        "60",
    ]
    r = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "collectives (GB = 1e9 bytes" in r.stdout and "DDP scaling" in r.stdout
    [run] = list((tmp_path / "results" / "distributed").glob("*.json"))
    data = json.loads(run.read_text())
    assert data["world_size"] == 2 and data["exit_code"] == 0
    assert [(r["rank"], r["host"], r["status"], r["identity"]["uuid"]) for r in data["ranks"]] == [
        (0, HOST, "ok", f"cpu-{HOST}"),
        (1, HOST, "ok", f"cpu-{HOST}"),
    ]
    assert {(c["op"], c["bytes"]) for c in data["collectives"]} == {
        (op, size)
        for op in ("all_reduce", "all_gather", "reduce_scatter", "broadcast")
        for size in (4096, 16384)
    }
    assert all(
        c["rounds"] == 3 and c["backend"] == "gloo" and c["world_size"] == 2 for c in data["collectives"]
    )
    assert [row["world_size"] for row in data["ddp_scaling"]] == [1, 2]
    assert data["ddp"]["data_source"]["kind"] == "synthetic"
    assert list((tmp_path / "results" / "benchmarks" / "distributed").glob("*.json"))


# --- gpubench verify's output options under torchrun: rank 0 honours them for the merged run -----------------

VERIFY = ["verify", "--device", "cpu", "-q", "--check", "config", "--check", "software"]


def _verify_run(tmp_path: Path, *options: str) -> tuple[list[int | None], str, str, dict[str, object]]:
    procs = fork_ranks(tmp_path, [*VERIFY, *options], split=True)
    try:
        for p in procs:
            p.join(120)
    finally:
        _stop(procs)
    stdout, stderr = _log(tmp_path, 0), (tmp_path / "rank0.log.err").read_text(encoding="utf-8")
    [saved] = list((tmp_path / "results" / "verify").glob("*.json"))
    return [p.exitcode for p in procs], stdout, stderr, json.loads(saved.read_text(encoding="utf-8"))


@pytest.mark.distributed
def test_verify_json_junitxml_and_require_gpu_hold_under_torchrun(tmp_path: Path) -> None:
    codes, stdout, stderr, saved = _verify_run(tmp_path, "--json", "--junitxml", "ci/verify.xml", "--require-gpu")
    assert codes[0] == 1, stdout + stderr  # no GPU: --require-gpu fails the run on rank 0
    [saved_file] = list((tmp_path / "results" / "verify").glob("*.json"))
    assert stdout == saved_file.read_text(encoding="utf-8")  # --json: the saved document and nothing else
    assert _log(tmp_path, 1) == ""  # no other rank writes to stdout either
    rows = [(c["rank"], c["host"], c["device"], c["verdict"]) for c in saved["checks"] if c["check"] == "require_gpu"]
    assert rows == [(0, HOST, "cpu", "FAIL"), (1, HOST, "cpu", "FAIL")]
    assert saved["exit_code"] == 1 and "2 FAIL" in str(saved["summary"])
    [merged] = list((tmp_path / "results" / "distributed").glob("*.json"))
    assert json.loads(merged.read_text(encoding="utf-8"))["exit_code"] == 1  # the run's record says so too
    assert f"FAIL require_gpu rank 1 on {HOST}: cpu is not a GPU" in stderr
    xml = (tmp_path / "ci" / "verify.xml").read_text(encoding="utf-8")
    assert f'classname="verify.rank1-{HOST}-cpu" name="require_gpu"' in xml and xml.count("<failure") == 2
    # the results/ copy of the JUnit XML has the require_gpu rows too
    assert (tmp_path / "results" / "verify" / saved_file.with_suffix(".xml").name).read_text(encoding="utf-8") == xml


@pytest.mark.distributed
def test_verify_under_torchrun_without_the_options_passes_on_cpu(tmp_path: Path) -> None:
    codes, stdout, stderr, saved = _verify_run(tmp_path)
    assert codes == [0, 0], stdout + stderr
    assert not [c for c in saved["checks"] if c["check"] == "require_gpu"]
    assert not (tmp_path / "ci").exists()


@pytest.mark.distributed
def test_an_unwritable_junitxml_path_is_a_usage_error_after_the_run_is_saved(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    codes, stdout, stderr, saved = _verify_run(tmp_path, "--junitxml", "taken")
    assert codes[0] == 2, stdout + stderr
    assert "--junitxml taken: cannot write the JUnit XML there: it is a folder" in stderr
    assert saved["exit_code"] == 0
