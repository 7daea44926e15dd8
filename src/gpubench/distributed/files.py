"""The files rank 0 writes for a merged run: ``results/distributed/<run_id>.json`` (schema
``gpubench.distributed/1``), and the same run in the formats the report already reads: for ``bench``
``results/benchmarks/distributed/<run_id>.json`` (pytest-benchmark's saved-run layout, fullnames
``gpubench.distributed::<name>``), for ``verify`` ``results/verify/<run_id>.json`` and ``.xml``
(``gpubench.verify/1`` with ``host`` and ``rank`` on every check).

Imports: the standard library; :mod:`gpubench.results` (atomic writes), :mod:`gpubench.verify` (the JUnit
XML) and ``pytest_benchmark.stats`` (the statistics of every row) inside functions.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def write_merged(merged: Mapping[str, Any], results_dir: Path) -> list[Path]:
    """Write the merged run (rank 0 only); returns the paths written."""
    from gpubench.results import atomic_write_json, atomic_write_text, safe_child

    run_id = str(merged["run_id"])
    paths = [atomic_write_json(safe_child(results_dir, "distributed", f"{run_id}.json"), merged)]
    if merged["verb"] == "bench":
        doc = benchmark_document(merged)
        if doc["benchmarks"]:
            paths.append(
                atomic_write_json(safe_child(results_dir, "benchmarks", "distributed", f"{run_id}.json"), doc)
            )
    elif merged["verb"] == "verify":
        doc = merged_verify_document(merged)
        paths.append(atomic_write_json(safe_child(results_dir, "verify", f"{run_id}.json"), doc))
        try:
            paths.append(atomic_write_text(safe_child(results_dir, "verify", f"{run_id}.xml"), _junit(doc)))
        except Exception as exc:  # the JSON is the record; a JUnit problem must not lose it
            print(f"warning: JUnit XML not written: {exc}", file=sys.stderr)
    return paths


# --- bench: pytest-benchmark's layout -----------------------------------------------------------------------


def benchmark_document(merged: Mapping[str, Any]) -> dict[str, Any]:
    """The bench run in pytest-benchmark's saved-run layout, so the report reads it like ``pytest bench``.

    Rows: ``dist_matmul`` and ``dist_copy`` per rank (GPU identity in ``extra_info.gpu``), ``collective``
    per op and size (rank 0's device, ``gbps`` = bus bandwidth), ``ddp_mnist`` per world size.
    """
    rank0: Mapping[str, Any] = next((r for r in merged["ranks"] if r.get("rank") == 0), {})
    rows = [*_rank_rows(merged), *_collective_rows(merged, rank0), *_ddp_rows(merged, rank0)]
    env = merged.get("environment") or {}
    return {
        "machine_info": {
            "node": env.get("host"),
            "gpubench": {
                "run_id": merged["run_id"],
                "environment": env,
                "config": merged.get("config") or {},
                "config_files": (merged.get("config") or {}).get("files", []),
                "distributed": {
                    "world_size": merged["world_size"],
                    "hosts": merged["hosts"],
                    "backend": merged["backend"],
                },
            },
        },
        "commit_info": {},
        "benchmarks": rows,
        "datetime": merged["finished"],
        "version": _pytest_benchmark_version(),
    }


def _row(name: str, group: str, times: Sequence[float], extra: dict[str, Any]) -> dict[str, Any]:
    """One pytest-benchmark row; ``times``: the per-round seconds."""
    return {
        "group": group,
        "name": name,
        "fullname": f"gpubench.distributed::{name}",
        "params": None,
        "param": None,
        "extra_info": extra,
        "options": {"timer": "time.perf_counter"},
        "stats": _stats(times),
    }


def _rank_rows(merged: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``dist_matmul`` and ``dist_copy`` of every rank, keyed by its GPU identity, rank and host."""
    rows: list[dict[str, Any]] = []
    for r in merged["ranks"]:
        ident = {**(r.get("identity") or {}), "rank": r.get("rank"), "host": r.get("host")}
        common = {
            "device": r.get("device"),
            "requested_device": r.get("device"),
            "fallback_note": "",
            "gpu": ident,
            "rank": r.get("rank"),
            "distributed_run": merged["run_id"],
        }
        bench = r.get("bench") or {}
        if bench.get("matmul"):
            m = bench["matmul"]
            rows.append(
                _row(
                    f"dist_matmul[rank{r['rank']}-{r.get('device')}-{m['dtype']}-{m['n']}]",
                    f"matmul-{m['dtype']}-{m['n']}",
                    m["times_s"],
                    {
                        **common,
                        "workload": "matmul",
                        "dtype": m["dtype"],
                        "size": m["n"],
                        "flops": m["flops"],
                        "bytes": m["bytes"],
                        "items": m["n"] ** 2,
                        "tflops": m["tflops"],
                        "timing": m.get("timing"),
                    },
                )
            )
        if bench.get("copy"):
            c = bench["copy"]
            rows.append(
                _row(
                    f"dist_copy[rank{r['rank']}-{r.get('device')}-d2d-{c['size']}]",
                    f"copy-d2d-u8-{c['size']}",
                    c["times_s"],
                    {
                        **common,
                        "workload": "copy-d2d",
                        "dtype": "u8",
                        "size": c["size"],
                        "bytes": c["bytes"],
                        "flops": 0,
                        "items": c["size"],
                        "gbps": c["gbps"],
                        "timing": c.get("timing"),
                    },
                )
            )
    return rows


def _rank0_gpu(rank0: Mapping[str, Any]) -> dict[str, Any]:
    """Rank 0's GPU identity: the device the whole-run rows (collectives, DDP) are filed under."""
    return {**(rank0.get("identity") or {}), "rank": 0, "host": rank0.get("host")}


def _collective_rows(merged: Mapping[str, Any], rank0: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per collective and size; ``gbps`` is the bus bandwidth."""
    ident0 = _rank0_gpu(rank0)
    return [
        _row(
            f"collective[{c['op']}-{c['bytes']}-n{c['world_size']}]",
            f"collective-{c['op']}-n{c['world_size']}",
            c["times_s"],
            {
                "device": rank0.get("device"),
                "requested_device": rank0.get("device"),
                "fallback_note": "",
                "gpu": ident0,
                "workload": c["op"],
                "dtype": c["dtype"],
                "size": c["bytes"],
                "bytes": c["bytes"],
                "gbps": c["busbw_gbps"],
                "algbw_gbps": c["algbw_gbps"],
                "busbw_gbps": c["busbw_gbps"],
                "backend": c["backend"],
                "world_size": c["world_size"],
                "timing": {
                    "method": (
                        f"fixed rounds behind barriers, each {c.get('timing') or 'one call'}; "
                        "slowest rank per round; time per call = batch time / iters"
                    ),
                    "iters": c.get("iters", 1),
                    "rounds": c["rounds"],
                    "warmup": c["warmup"],
                },
                "distributed_run": merged["run_id"],
            },
        )
        for c in merged["collectives"]
    ]


def _ddp_rows(merged: Mapping[str, Any], rank0: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One ``ddp_mnist`` row per world size of the scaling table (one round: the whole timed run)."""
    ident0 = _rank0_gpu(rank0)
    rows: list[dict[str, Any]] = []
    for s in merged["ddp_scaling"]:
        images = s["steps"] * s["batch_size"] * s["world_size"]
        seconds = images / s["total_images_per_s"] if s["total_images_per_s"] else 0.0
        if seconds <= 0:
            continue
        rows.append(
            _row(
                f"ddp_mnist[n{s['world_size']}]",
                "ddp-mnist",
                [seconds],
                {
                    "device": rank0.get("device"),
                    "requested_device": rank0.get("device"),
                    "fallback_note": "",
                    "gpu": ident0,
                    "workload": "ddp-mnist",
                    "dtype": "f32",
                    "size": s["world_size"],
                    "items": images,
                    "items_per_s": s["total_images_per_s"],
                    "images_per_s_per_rank": s["images_per_s_per_rank"],
                    "efficiency": s["efficiency"],
                    "world_size": s["world_size"],
                    "data_source": (merged.get("ddp") or {}).get("data_source"),
                    "distributed_run": merged["run_id"],
                },
            )
        )
    return rows


def _stats(times: Sequence[float]) -> dict[str, Any]:
    """pytest-benchmark's ``stats`` block from per-round seconds, computed by pytest-benchmark's own ``Stats``.

    The same engine ``pytest bench`` rows come from (quartiles, Tukey fences, outlier counts), so the report
    compares distributed rows and single-node rows computed one way. The layout is what pytest-benchmark's
    ``Metadata.as_dict(include_data=True)`` saves: the fields, ``data`` (the rounds, as
    ``--benchmark-save-data`` writes them) and ``iterations`` (1: each round is one timed call).
    """
    from pytest_benchmark.stats import Stats

    stats = Stats()
    for t in times:
        stats.update(float(t))
    block: dict[str, Any] = stats.as_dict()
    block["data"] = list(stats.data)
    block["iterations"] = 1
    return block


def _pytest_benchmark_version() -> str | None:
    """The installed pytest-benchmark version, as its own saved runs record it; None when absent."""
    try:
        from importlib.metadata import version

        return version("pytest-benchmark")
    except Exception:
        return None


# --- verify: gpubench.verify/1 and JUnit XML ----------------------------------------------------------------


def merged_verify_document(merged: Mapping[str, Any]) -> dict[str, Any]:
    """Every rank's verify run as one ``gpubench.verify/1`` document (``host`` and ``rank`` on each check)."""
    checks: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    starts, ends = [], []
    level = None
    for r in merged["ranks"]:
        v = r.get("verify") or {}
        level = level or v.get("level")
        starts += [v["started"]] if v.get("started") else []
        ends += [v["finished"]] if v.get("finished") else []
        for d in v.get("devices", []) or [r.get("identity") or {}]:
            devices.append({**d, "rank": r.get("rank"), "host": r.get("host")})
        for c in v.get("checks", []):
            checks.append({**c, "host": r.get("host"), "rank": r.get("rank")})
    counts = {k: sum(1 for c in checks if c.get("verdict") == k) for k in ("PASS", "WARN", "FAIL", "SKIP")}
    return {
        "schema": "gpubench.verify/1",
        "run_id": merged["run_id"],
        "started": min(starts) if starts else merged["started"],
        "finished": max(ends) if ends else merged["finished"],
        "level": level,
        "exit_code": merged["exit_code"],
        "summary": ", ".join(f"{n} {k}" for k, n in counts.items()),
        "gpu_verified": any(
            c.get("device", "").startswith("cuda") and c.get("verdict") != "SKIP" for c in checks
        ),
        "environment": merged.get("environment") or {},
        "config": merged.get("config") or {},
        "devices": devices,
        "checks": checks,
        "distributed": {
            "world_size": merged["world_size"],
            "hosts": merged["hosts"],
            "messages": merged["messages"],
            "stragglers": merged["stragglers"],
        },
    }


def _junit(doc: Mapping[str, Any]) -> str:
    """The merged verify document as JUnit XML; each test case is named ``rank<R>-<host>-<device>``."""
    from gpubench import verify

    return verify.junit_xml(rank_report(doc, None, label=True))


def rank_report(doc: Mapping[str, Any], rank: Any, label: bool = False) -> Any:
    """The merged ``gpubench.verify/1`` document's rows of one rank (every rank: ``rank`` None) as a
    :class:`gpubench.verify.run.VerifyReport`; ``label``: devices named ``rank<R>-<host>-<device>``."""
    from gpubench.verify.run import VerifyReport
    from gpubench.verify.verdicts import CheckResult, Verdict

    def mine(row: Mapping[str, Any]) -> bool:
        return rank is None or row.get("rank") == rank

    def name(row: Mapping[str, Any]) -> str:
        return f"rank{row.get('rank')}-{row.get('host')}-{row.get('device')}" if label else str(row.get("device"))

    results = tuple(
        CheckResult(c["check"], name(c), Verdict(c["verdict"]), c.get("value"), c.get("threshold"),
                    c.get("unit") or "", c.get("message") or "", c.get("remedy") or "", c.get("readings") or {},
                    c.get("uuid"), float(c.get("duration_s") or 0.0))
        for c in doc.get("checks", []) if mine(c)
    )
    devices = tuple(d for d in doc.get("devices", []) if mine(d))
    return VerifyReport(str(doc.get("run_id")), str(doc.get("level")), str(doc.get("started")),
                        str(doc.get("finished")), results, devices)
