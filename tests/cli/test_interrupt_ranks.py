"""The distributed kill points (issue 15): a rank of a two-rank ``gpubench bench`` run, interrupted.

Two ranks on cpu (gloo), forked from this process as tests/distributed/test_dist_runs.py does (torch is
imported once, here), each running the command line's ``main`` as ``gpubench bench`` under torchrun would (it
sees ``RANK`` and ``WORLD_SIZE``), rendezvousing through a file. ``GPUBENCH_KILL_AT=<point>:<signal>,rank=<r>``
signals one rank at its point:

- ``dist.rank.local`` (rank 1, SIGINT: a Ctrl-C that reached one rank only): that rank stops with 130 and the
  usual line; rank 0 waits at the next barrier for ``--dist-timeout``, then names rank 1 and saves the run it
  has, marking rank 1, and exits 1.
- ``dist.rank.merge`` (rank 0, SIGTERM: what torchrun sends every rank when one fails): rank 0 stops as it
  is about to write, saying where; nothing half-written stays; rank 1, whose peer is gone, stops naming it.

No rank prints a traceback. Under torchrun itself the launcher's own summary of a failed rank includes a
Python traceback of torchrun's (ChildFailedError): that is torchrun's output, not gpubench's, so these runs
go without it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import warnings
from pathlib import Path

import pytest

from gpubench import killpoints

INTERRUPTED = "interrupted: results written so far are kept"
TINY = [
    "bench", "--device", "cpu", "-q", "--set", "data.source=synthetic", "--set", "bench.matmul_sizes=64",
    "--set", "bench.copy_bytes=65536", "--set", "bench.rounds=3", "--set", "bench.warmup_rounds=1",
    "--dist-min-bytes", "4KiB", "--dist-max-bytes", "16KiB", "--dist-rounds", "3", "--dist-warmup", "1",
    "--dist-ddp-steps", "2", "--dist-timeout", "6",
]


def _rank(rank: int, cwd: str, argv: list[str], kill_at: str, log: str) -> None:
    """A forked rank: its own output file, environment and folder, then ``gpubench`` as torchrun starts it."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives with the process
    os.chdir(cwd)
    for key in [k for k in os.environ if k.startswith(("GPUBENCH_", "SIMPLE_DL_", "_GPUBENCH_"))]:
        del os.environ[key]
    os.environ.update({
        "HOME": cwd, "XDG_CONFIG_HOME": os.path.join(cwd, "xdg"), "COLUMNS": "200", killpoints.ENV: kill_at,
        "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1",
    })
    killpoints.reset()  # read this rank's GPUBENCH_KILL_AT, not what the parent had read
    import torch

    torch.set_num_threads(1)
    from gpubench.cli import main

    code = 99
    try:
        code = main(argv)
    finally:
        sys.stdout.flush()
        os._exit(code)


def _two_ranks(tmp_path: Path, kill_at: str) -> tuple[list[int | None], list[str]]:
    """Both ranks' exit codes and outputs."""
    from gpubench.results import software_versions

    software_versions()  # import what rank 0's environment record imports once, here, before forking
    ctx = multiprocessing.get_context("fork")
    argv = [*TINY, "--dist-init-file", str(tmp_path / "rendezvous")]
    procs = []
    for rank in range(2):
        p = ctx.Process(target=_rank, args=(rank, str(tmp_path), argv, kill_at, str(tmp_path / f"rank{rank}.log")),
                        daemon=True)
        with warnings.catch_warnings():  # Python 3.12+ warns about fork in a threaded process; the children
            warnings.simplefilter("ignore", DeprecationWarning)  # only run gpubench, which is fork-safe on cpu
            p.start()
        procs.append(p)
    try:
        for p in procs:
            p.join(120)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
    logs = [(tmp_path / f"rank{r}.log").read_text("utf-8", "replace") for r in range(2)]
    return [p.exitcode for p in procs], logs


@pytest.fixture(autouse=True)
def _torch_imported() -> None:
    pytest.importorskip("torch")


def test_sigint_on_one_rank_stops_it_and_rank_0_names_it(tmp_path: Path) -> None:
    codes, logs = _two_ranks(tmp_path, "dist.rank.local:SIGINT,rank=1")
    assert codes == [1, 130], (codes, logs)
    assert not any("Traceback" in log for log in logs), logs
    assert logs[1].strip().splitlines()[-1] == INTERRUPTED, logs[1]
    assert "rank 1" in logs[0], logs[0]
    [run] = (tmp_path / "results" / "distributed").glob("*.json")  # rank 0 saved what it had, whole
    ranks = json.loads(run.read_text("utf-8"))["ranks"]
    assert (ranks[0]["status"], ranks[1]["status"] != "ok") == ("ok", True), ranks
    assert not list(tmp_path.rglob("*.tmp"))


def test_sigterm_on_rank_0_as_it_writes_leaves_nothing_half_written(tmp_path: Path) -> None:
    codes, logs = _two_ranks(tmp_path, "dist.rank.merge:SIGTERM,rank=0")
    assert codes[0] == 128 + signal.SIGTERM and codes[1] not in (0, None), (codes, logs)
    assert not any("Traceback" in log for log in logs), logs
    assert "stopped by SIGTERM during writing results" in logs[0], logs[0]
    assert "rank 0" in logs[1] or "stopped during" in logs[1], logs[1]
    folder = tmp_path / "results" / "distributed"
    assert not list(folder.glob("*")) if folder.is_dir() else True  # nothing written, nothing half-written
    assert not list(tmp_path.rglob("*.tmp"))
