"""How much work each level does: the sizes and time bounds of the active tests (:class:`Plan`), per level
(quick, long, stress) and device kind (cpu, cuda)."""

from __future__ import annotations

from dataclasses import dataclass

from gpubench.config import LEVELS, Config

#: The memory test's patterns, in the order they run (:mod:`gpubench.verify.checks.memtest` writes each).
#: Named here, below the checks, because a plan chooses among them.
MEMTEST_PATTERNS: tuple[str, ...] = ("address", "random", "walking_ones", "walking_zeros", "inverse_address")


@dataclass(frozen=True)
class Plan:
    """Sizes and time bounds of the active tests for one level and device kind. Bytes, seconds."""

    level: str
    memtest_fraction: float
    memtest_cap_bytes: int | None
    memtest_seconds: float
    memtest_patterns: tuple[str, ...] = MEMTEST_PATTERNS
    compute_n: int = 2048
    compute_repeats: int = 5
    burn_seconds: float = 5.0
    burn_n: int = 8192
    perf_n: int = 8192
    perf_repeats: int = 10
    copy_bytes: int = 1 << 30
    transfer_bytes: int = 256 << 20
    transfer_repeats: int = 10


_SCALE = {"quick": 1.0, "long": 6.0, "stress": 24.0}


def plan_for(config: Config, level: str, kind: str) -> Plan:
    """The plan for ``level`` (quick, long, stress) on a ``cpu`` or ``cuda`` device.

    quick stays under 30 s per GPU (memtest bound + burn + a few seconds); long and stress test more memory
    for longer. On cpu the sizes are small: the point there is exercising the same logic, not the RAM.
    """
    if level not in _SCALE:
        msg = f"unknown level {level!r}: expected one of {', '.join(LEVELS)}"
        raise ValueError(msg)
    v = config.verify
    scale = _SCALE[level]
    if kind == "cpu":
        cap = {"quick": 8 << 20, "long": 256 << 20, "stress": 1 << 30}[level]
        return Plan(
            level=level,
            memtest_fraction=max(v.memtest_fraction, 0.25 if level != "quick" else 0.0) or 0.01,
            memtest_cap_bytes=cap,
            memtest_seconds=min(v.memtest_seconds, 3.0) if level == "quick" else v.memtest_seconds * scale,
            compute_n=192 if level == "quick" else 512,
            compute_repeats=3 if level == "quick" else 10,
            burn_seconds=0.0,
            perf_n=512 if level == "quick" else 1024,
            perf_repeats=5 if level == "quick" else 10,
            copy_bytes=32 << 20,
            transfer_bytes=0,
        )
    return Plan(
        level=level,
        memtest_fraction={
            "quick": v.memtest_fraction,
            "long": max(v.memtest_fraction, 0.8),
            "stress": max(v.memtest_fraction, 0.9),
        }[level],
        memtest_cap_bytes=None,
        memtest_seconds=v.memtest_seconds * scale,
        compute_n=2048 if level == "quick" else 4096,
        compute_repeats=5 if level == "quick" else 10,
        burn_seconds=v.burn_seconds * scale,
        burn_n=8192,
        perf_n=8192,
        perf_repeats=10,
        copy_bytes=1 << 30,
        transfer_bytes=256 << 20,
        transfer_repeats=10,
    )
