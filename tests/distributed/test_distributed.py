"""Distributed runs: launch detection, the rank-0 merge, the files the report reads, real 2-rank runs on cpu.

The multi-process tests use gloo on cpu. The end-to-end test is the user's command (``torchrun --standalone``,
which picks a free port itself); the failure tests fork two ranks from this process (torch already imported,
so they start in a fraction of a second) and rendezvous through a file under the test's temporary folder,
so parallel runs never share a port or a store.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from gpubench import distributed as D
from gpubench.distributed.ddp import DdpStep, default_world_sizes, parse_world_sizes, scaling_table

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


# --- launch and options -------------------------------------------------------------------------------------


def test_launch_is_read_from_torchrun_variables() -> None:
    env = {
        "WORLD_SIZE": "8",
        "RANK": "5",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "4",
        "GROUP_RANK": "1",
        "MASTER_ADDR": "node-a",
        "MASTER_PORT": "29500",
    }
    launch = D.detect_launch(env, host="node-b")
    assert (launch.rank, launch.local_rank, launch.world_size, launch.node_rank) == (5, 1, 8, 1)
    assert D.under_launcher(env) and not D.under_launcher({})
    with pytest.raises(D.DistributedError, match="RANK is not set: start distributed runs with torchrun"):
        D.detect_launch({"WORLD_SIZE": "2"})
    with pytest.raises(D.DistributedError, match="between 0 and WORLD_SIZE-1"):
        D.detect_launch({"WORLD_SIZE": "2", "RANK": "2"})


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    D.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_options_are_validated_with_the_option_named() -> None:
    opts = D.options_from_args(_args("--dist-max-bytes", "64MiB", "--dist-ops", "all-reduce,broadcast"))
    assert opts.max_bytes == 64 << 20 and opts.ops == ("all_reduce", "broadcast")
    assert D.sweep_for(opts, "cpu")[0] == 4096 and D.sweep_for(opts, "cpu")[-1] == 64 << 20
    assert D.sweep_for(D.Options(), "cuda") == tuple(1024 * 4**i for i in range(11))  # 1 KiB .. 1 GiB
    with pytest.raises(ValueError, match="--dist-ops: unknown collective 'all_to_all'"):
        D.options_from_args(_args("--dist-ops", "all_to_all"))
    with pytest.raises(ValueError, match="--dist-skip"):
        D.options_from_args(_args("--dist-skip", "verify"))
    with pytest.raises(ValueError, match="--dist-timeout"):
        D.options_from_args(_args("--dist-timeout", "0"))


def test_world_size_mismatch_and_unusable_devices_name_rank_and_host() -> None:
    hellos = [
        {
            "rank": 0,
            "host": "node-a",
            "device": "cuda:0",
            "world_size_env": 2,
            "verb": "bench",
            "device_kind": "cuda",
        },
        {
            "rank": 1,
            "host": "node-b",
            "device": "cuda:1",
            "world_size_env": 3,
            "verb": "bench",
            "device_kind": "cuda",
            "device_problem": "cannot use cuda:1 for LOCAL_RANK 1: only 1 GPU(s) visible",
        },
    ]
    problems = D.check_hellos(hellos, 2, expected=4)
    assert (
        "the run has 2 rank(s) on 2 host(s) (node-a, node-b) but --dist-expect-world-size is 4" in problems[0]
    )
    assert any(p.startswith("rank 1 on node-b (cuda:1) was started with WORLD_SIZE=3") for p in problems)
    assert any(p.startswith("rank 1 on node-b (cuda:1): cannot use cuda:1") for p in problems)
    assert D.check_hellos(hellos[:1], 2, expected=2) == []


def test_monitored_barrier_errors_name_the_late_ranks() -> None:
    assert D.ranks_from_barrier_error("[Rank 0]: Ranks 1, 3 failed to pass monitoredBarrier in 5000 ms") == [
        1,
        3,
    ]
    assert D.ranks_from_barrier_error("[Rank 0]: Rank 2 failed to pass monitoredBarrier in 30000 ms") == [2]
    assert D.ranks_from_barrier_error("Connection closed by peer [127.0.0.1]:44777") == []


def test_ddp_scaling_efficiency_is_against_one_rank() -> None:
    steps = [DdpStep(1, 0, 10, 128, 1.0), DdpStep(2, 0, 10, 128, 1.25), DdpStep(2, 1, 10, 128, 1.6)]
    rows = scaling_table(steps)
    assert [r.world_size for r in rows] == [1, 2]
    assert rows[0].efficiency == pytest.approx(1.0)
    total = 1280 / 1.25 + 1280 / 1.6
    assert rows[1].total_images_per_s == pytest.approx(total)
    assert rows[1].images_per_s_per_rank == pytest.approx(total / 2)
    assert rows[1].efficiency == pytest.approx(total / (2 * 1280)) and rows[1].slowest_rank == 1
    assert default_world_sizes(6) == (1, 2, 4, 6) and default_world_sizes(1) == (1,)
    assert parse_world_sizes("4,1,2", 4) == (1, 2, 4)
    with pytest.raises(ValueError, match="between 1 and the world size 2"):
        parse_world_sizes("1,3", 2)


# --- the rank-0 merge and the files -------------------------------------------------------------------------


def _rank(
    rank: int, host: str, tflops: float, uuid: str, status: str = "ok", error: str | None = None
) -> dict[str, Any]:
    times = [2 * 4096**3 / tflops / 1e12] * 3
    return {
        "rank": rank,
        "local_rank": rank % 2,
        "host": host,
        "device": f"cuda:{rank % 2}",
        "status": status,
        "error": error,
        "phase_errors": {},
        "identity": {
            "device": f"cuda:{rank % 2}",
            "name": "NVIDIA H100 80GB HBM3",
            "uuid": uuid,
            "index": rank % 2,
            "pci_bus_id": f"00000000:{rank:02d}:00.0",
            "host": host,
        },
        "bench": None
        if status != "ok"
        else {
            "matmul": {
                "n": 4096,
                "dtype": "f32",
                "flops": 2 * 4096**3,
                "bytes": 3 * 4096**2 * 4,
                "times_s": times,
                "median_s": times[0],
                "tflops": tflops,
            },
            "copy": {
                "size": 1 << 28,
                "bytes": 1 << 29,
                "times_s": [0.0002] * 3,
                "median_s": 0.0002,
                "gbps": 2684.0,
            },
        },
        "ddp": [],
    }


def _merged(**kw: Any) -> dict[str, Any]:
    ranks = [
        _rank(0, "node-a", 50.0, "GPU-a0"),
        _rank(1, "node-a", 51.0, "GPU-a1"),
        _rank(2, "node-b", 40.0, "GPU-b0"),
        _rank(3, "node-b", 49.0, "GPU-b1"),
    ]
    coll = {
        "op": "all_reduce",
        "bytes": 1 << 30,
        "rounds": 5,
        "warmup": 1,
        "time_s": 0.02,
        "times_s": [0.02] * 5,
        "algbw_gbps": 53.687,
        "busbw_gbps": 80.53,
        "backend": "nccl",
        "world_size": 4,
        "dtype": "float32",
        "device": "cuda:0",
    }
    ddp = [{"world_size": 1, "rank": 0, "steps": 10, "batch_size": 128, "seconds": 0.1}] + [
        {"world_size": 4, "rank": r, "steps": 10, "batch_size": 128, "seconds": 0.125} for r in range(4)
    ]
    args: dict[str, Any] = dict(
        verb="bench",
        run_id="20261125T000000Z-node-a-1",
        started="2026-11-25T00:00:00+00:00",
        world_size=4,
        backend="nccl",
        ranks=ranks,
        straggler_pct=10.0,
        collectives=[coll],
        ddp_steps=ddp,
        ddp_info={"steps": 10, "batch_size": 128},
        environment={"host": "node-a"},
    )
    args.update(kw)
    return D.merge_run(**args)


def test_merge_keys_ranks_by_host_rank_and_uuid_and_flags_stragglers() -> None:
    merged = _merged()
    assert merged["schema"] == "gpubench.distributed/1" and merged["exit_code"] == 0
    assert [(r["rank"], r["host"], r["identity"]["uuid"]) for r in merged["ranks"]] == [
        (0, "node-a", "GPU-a0"),
        (1, "node-a", "GPU-a1"),
        (2, "node-b", "GPU-b0"),
        (3, "node-b", "GPU-b1"),
    ]
    assert merged["hosts"] == ["node-a", "node-b"]
    [s] = merged["stragglers"]
    assert (s["rank"], s["host"], s["index"], s["uuid"], s["metric"]) == (
        2,
        "node-b",
        0,
        "GPU-b0",
        "matmul_tflops",
    )
    assert any(m.startswith("straggler: rank 2 on node-b cuda:0 (index 0)") for m in merged["messages"])
    assert merged["collectives"][0]["busbw_gbps"] == 80.53
    assert [row["world_size"] for row in merged["ddp_scaling"]] == [1, 4]
    assert merged["ddp_scaling"][1]["efficiency"] == pytest.approx(0.8)


def test_merge_reports_failed_and_missing_ranks_and_the_bandwidth_gate() -> None:
    ranks = [
        _rank(0, "node-a", 50.0, "GPU-a0"),
        _rank(1, "node-b", 50.0, "GPU-b0", "error", "RuntimeError: boom"),
    ]
    merged = _merged(ranks=ranks, world_size=3, min_busbw_gbps=100.0)
    assert merged["exit_code"] == 1
    assert "rank 1 on node-b (cuda:1) failed: RuntimeError: boom" in merged["messages"]
    assert any("rank 2" in m and "sent no result" in m for m in merged["messages"])
    assert merged["collectives_gate"]["failures"][0].startswith("all_reduce: best bus bandwidth 80.5 GB/s")


def test_the_report_reads_the_merged_bench_run(tmp_path: Path) -> None:
    from gpubench.report import load_runs

    paths = D.write_merged(_merged(), tmp_path)
    assert [p.relative_to(tmp_path).parts[0] for p in paths] == ["distributed", "benchmarks"]
    loaded = load_runs(tmp_path)
    assert not [w for w in loaded.warnings if "distributed" in w], loaded.warnings
    frame = loaded.benchmarks
    matmul = frame[frame["workload"] == "matmul"]
    assert sorted(zip(matmul["host"], matmul["gpu_uuid"], strict=True)) == [
        ("node-a", "GPU-a0"),
        ("node-a", "GPU-a1"),
        ("node-b", "GPU-b0"),
        ("node-b", "GPU-b1"),
    ]
    assert set(frame["workload"]) == {"matmul", "copy-d2d", "all_reduce", "ddp-mnist"}
    ddp = frame[frame["workload"] == "ddp-mnist"].sort_values("size")
    assert list(ddp["items_per_s"]) == pytest.approx([12800.0, 4 * 10240.0])


def test_the_report_reads_the_merged_verify_run(tmp_path: Path) -> None:
    from gpubench.report import load_runs

    checks = [
        {
            "device": "cuda:0",
            "uuid": "GPU-a0",
            "check": "compute",
            "verdict": "PASS",
            "value": None,
            "threshold": None,
            "unit": "",
            "remedy": "",
            "message": "ok",
            "readings": {},
            "duration_s": 0.1,
        }
    ]
    ranks = []
    for rank, host in ((0, "node-a"), (1, "node-b")):
        r = _rank(rank, host, 50.0, f"GPU-{host}")
        r["bench"] = None
        r["verify"] = {
            "level": "quick",
            "started": "2026-11-25T00:00:00+00:00",
            "finished": "2026-11-25T00:00:09+00:00",
            "devices": [r["identity"]],
            "checks": [{**checks[0], "uuid": f"GPU-{host}"}],
        }
        ranks.append(r)
    merged = _merged(verb="verify", ranks=ranks, world_size=2, collectives=[], ddp_steps=[])
    paths = D.write_merged(merged, tmp_path)
    assert sorted(p.suffix for p in paths) == [".json", ".json", ".xml"]
    doc = json.loads((tmp_path / "verify" / f"{merged['run_id']}.json").read_text())
    assert [(c["rank"], c["host"], c["uuid"]) for c in doc["checks"]] == [
        (0, "node-a", "GPU-node-a"),
        (1, "node-b", "GPU-node-b"),
    ]
    loaded = load_runs(tmp_path)
    assert len(loaded.verify) == 2 and set(loaded.verify["verdict"]) == {"PASS"}


# --- real runs ----------------------------------------------------------------------------------------------


def _rank_process(rank: int, world: int, cwd: str, argv: list[str], env: dict[str, str], log: str) -> None:
    """A forked rank: its own output file, environment and folder, then the distributed entry point."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives with the process
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
        code = D.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.stdout.flush()
        os._exit(code)


def fork_ranks(
    tmp_path: Path, argv: list[str], env: dict[str, str] | None = None, world: int = 2
) -> list[multiprocessing.process.BaseProcess]:
    from gpubench.results import software_versions

    software_versions()  # import what rank 0's environment record imports once, here, before forking
    ctx = multiprocessing.get_context("fork")
    full = [*argv, "--dist-init-file", str(tmp_path / "rendezvous")]
    procs = []
    for rank in range(world):
        p = ctx.Process(
            target=_rank_process,
            args=(rank, world, str(tmp_path), full, env or {}, str(tmp_path / f"rank{rank}.log")),
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
