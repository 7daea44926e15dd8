"""Distributed runs, without processes: launch detection, the ``--dist-*`` options, the checks on the
hellos, and the ranks a barrier error names."""

from __future__ import annotations

import argparse

import pytest

from gpubench.distributed.launch import (
    DistributedError,
    check_hellos,
    detect_launch,
    ranks_from_barrier_error,
    under_launcher,
)
from gpubench.distributed.options import Options, add_arguments, options_from_args, sweep_for

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
    launch = detect_launch(env, host="node-b")
    assert (launch.rank, launch.local_rank, launch.world_size, launch.node_rank) == (5, 1, 8, 1)
    assert under_launcher(env) and not under_launcher({})
    with pytest.raises(DistributedError, match="RANK is not set: start distributed runs with torchrun"):
        detect_launch({"WORLD_SIZE": "2"})
    with pytest.raises(DistributedError, match="between 0 and WORLD_SIZE-1"):
        detect_launch({"WORLD_SIZE": "2", "RANK": "2"})


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_options_are_validated_with_the_option_named() -> None:
    opts = options_from_args(_args("--dist-max-bytes", "64MiB", "--dist-ops", "all-reduce,broadcast"))
    assert opts.max_bytes == 64 << 20 and opts.ops == ("all_reduce", "broadcast")
    assert sweep_for(opts, "cpu")[0] == 4096 and sweep_for(opts, "cpu")[-1] == 64 << 20
    assert sweep_for(Options(), "cuda") == tuple(1024 * 4**i for i in range(11))  # 1 KiB .. 1 GiB
    with pytest.raises(ValueError, match="--dist-ops: unknown collective 'all_to_all'"):
        options_from_args(_args("--dist-ops", "all_to_all"))
    with pytest.raises(ValueError, match="--dist-skip"):
        options_from_args(_args("--dist-skip", "verify"))
    with pytest.raises(ValueError, match="--dist-timeout"):
        options_from_args(_args("--dist-timeout", "0"))


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
    problems = check_hellos(hellos, 2, expected=4)
    assert (
        "the run has 2 rank(s) on 2 host(s) (node-a, node-b) but --dist-expect-world-size is 4" in problems[0]
    )
    assert any(p.startswith("rank 1 on node-b (cuda:1) was started with WORLD_SIZE=3") for p in problems)
    assert any(p.startswith("rank 1 on node-b (cuda:1): cannot use cuda:1") for p in problems)
    assert check_hellos(hellos[:1], 2, expected=2) == []


def test_monitored_barrier_errors_name_the_late_ranks() -> None:
    assert ranks_from_barrier_error("[Rank 0]: Ranks 1, 3 failed to pass monitoredBarrier in 5000 ms") == [
        1,
        3,
    ]
    assert ranks_from_barrier_error("[Rank 0]: Rank 2 failed to pass monitoredBarrier in 30000 ms") == [2]
    assert ranks_from_barrier_error("Connection closed by peer [127.0.0.1]:44777") == []

