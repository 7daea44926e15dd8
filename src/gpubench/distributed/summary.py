"""What rank 0 prints about a merged run: the ranks, the collectives table per size, DDP scaling, the
verify checks per rank, stragglers, messages, the files written and the verdict.

Imports: the standard library, rich inside functions, and :mod:`gpubench.distributed.collectives`
(byte sizes) and :mod:`gpubench.distributed.launch` (exit codes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gpubench.distributed import collectives as coll
from gpubench.distributed.launch import EXIT_OK


def print_merged(merged: Mapping[str, Any], paths: Sequence[Path], out: Any, quiet: bool = False) -> None:
    """Rank 0's output: ranks, the collectives table per size, DDP scaling, stragglers, messages, files."""
    out.print(_ranks_table(merged))
    if merged["collectives"] and not quiet:
        out.print(_collectives_table(merged))
    if merged["ddp_scaling"]:
        info = merged.get("ddp") or {}
        out.print(_ddp_table(merged))
        out.print(f"DDP data: {info.get('data_source_text', '?')}")
        if info.get("note"):
            out.print(f"note: {info['note']}")
    if merged["stragglers"]:
        out.print(f"STRAGGLERS (more than {merged['straggler_pct']:g}% below the same-model median):")
    for msg in merged["messages"]:
        out.print(msg)
    for path in paths:
        out.print(f"wrote {path}")
    verdict = "ok" if merged["exit_code"] == EXIT_OK else "FAILED"
    out.print(f"distributed {merged['verb']} {verdict} (exit {merged['exit_code']})")


def _ranks_table(merged: Mapping[str, Any]) -> Any:
    """One row per rank: host, device, GPU name and UUID, status, and its figures or its error."""
    from rich.table import Table

    ranks = Table(
        title=f"distributed {merged['verb']}: {merged['world_size']} rank(s) on "
        f"{', '.join(merged['hosts'])} ({merged['backend']})",
        title_justify="left",
    )
    for col in ("rank", "host", "device", "name", "uuid", "status", "result"):
        ranks.add_column(col)
    for r in merged["ranks"]:
        ident = r.get("identity") or {}
        ranks.add_row(
            str(r.get("rank")),
            str(r.get("host") or "?"),
            str(r.get("device") or "?"),
            str(ident.get("name") or "-"),
            str(ident.get("uuid") or "-"),
            str(r.get("status")),
            _rank_summary(r),
        )
    return ranks


def _collectives_table(merged: Mapping[str, Any]) -> Any:
    """One row per collective and size: the time of one call in the median round (a round is a batch of
    back-to-back calls, divided by their number), algorithm and bus bandwidth (GB/s)."""
    from rich.table import Table

    table = Table(
        title="collectives (GB = 1e9 bytes; time = one call, median round on the slowest rank)",
        title_justify="left",
    )
    for col, justify in (
        ("op", "left"),
        ("size", "right"),
        ("bytes", "right"),
        ("rounds", "right"),
        ("time", "right"),
        ("algbw GB/s", "right"),
        ("busbw GB/s", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in merged["collectives"]:
        table.add_row(
            c["op"],
            coll.format_bytes(c["bytes"]),
            str(c["bytes"]),
            str(c["rounds"]),
            _seconds(c["time_s"]),
            f"{c['algbw_gbps']:.4g}",
            f"{c['busbw_gbps']:.4g}",
        )
    return table


def _ddp_table(merged: Mapping[str, Any]) -> Any:
    """One row per DDP world size: images/s per rank and in total, efficiency against one rank."""
    from rich.table import Table

    info = merged.get("ddp") or {}
    table = Table(
        title=f"DDP scaling, MNIST MLP ({info.get('steps')} steps x batch {info.get('batch_size')} "
        "per rank)",
        title_justify="left",
    )
    for col in ("ranks", "images/s per rank", "total images/s", "efficiency vs 1 rank"):
        table.add_column(col, justify="right")
    for s in merged["ddp_scaling"]:
        eff = "-" if s["efficiency"] is None else f"{100 * s['efficiency']:.1f}%"
        table.add_row(
            str(s["world_size"]),
            f"{s['images_per_s_per_rank']:.1f}",
            f"{s['total_images_per_s']:.1f}",
            eff,
        )
    return table


def print_verify(merged: Mapping[str, Any], out: Any) -> None:
    """``verify`` only: every check of every rank, one row each."""
    from rich.table import Table

    table = Table(title="verification per rank", title_justify="left")
    for col in ("rank", "host", "device", "check", "verdict", "value", "message"):
        table.add_column(col)
    for r in merged["ranks"]:
        for c in (r.get("verify") or {}).get("checks", []):
            value = c.get("value")
            shown = "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
            table.add_row(
                str(r["rank"]),
                str(r.get("host")),
                str(c.get("device")),
                str(c.get("check")),
                str(c.get("verdict")),
                f"{shown} {c.get('unit') or ''}".strip(),
                str(c.get("message") or "")[:90],
            )
    out.print(table)


def _seconds(value: float) -> str:
    """A duration in the unit that reads best: s, ms or us."""
    if value >= 1:
        return f"{value:.3f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3f} ms"
    return f"{value * 1e6:.1f} us"


def _rank_summary(r: Mapping[str, Any]) -> str:
    """A rank's figures (matmul, copy, verdict counts), or its error when it did not finish."""
    if r.get("status") != "ok":
        return str(r.get("error") or "")[:100]
    bench = r.get("bench") or {}
    parts = []
    if bench.get("matmul"):
        m = bench["matmul"]
        parts.append(f"matmul {m['dtype']} n={m['n']}: {m['tflops'] * 1e3:.4g} GFLOP/s")
    if bench.get("copy"):
        parts.append(f"copy: {bench['copy']['gbps']:.4g} GB/s")
    v = r.get("verify") or {}
    if v.get("checks"):
        verdicts = [c["verdict"] for c in v["checks"]]
        parts.append(", ".join(f"{verdicts.count(k)} {k}" for k in ("PASS", "WARN", "FAIL", "SKIP")))
    return "; ".join(parts)


