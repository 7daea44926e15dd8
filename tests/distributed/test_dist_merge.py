"""Distributed runs on rank 0: the merge of every rank's result, and the files the report reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpubench.distributed.files import write_merged
from gpubench.distributed.merge import merge_run

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
    return merge_run(**args)


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

    paths = write_merged(_merged(), tmp_path)
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
    paths = write_merged(merged, tmp_path)
    assert sorted(p.suffix for p in paths) == [".json", ".json", ".xml"]
    doc = json.loads((tmp_path / "verify" / f"{merged['run_id']}.json").read_text())
    assert [(c["rank"], c["host"], c["uuid"]) for c in doc["checks"]] == [
        (0, "node-a", "GPU-node-a"),
        (1, "node-b", "GPU-node-b"),
    ]
    loaded = load_runs(tmp_path)
    assert len(loaded.verify) == 2 and set(loaded.verify["verdict"]) == {"PASS"}

