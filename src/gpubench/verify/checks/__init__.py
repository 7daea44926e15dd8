"""The health checks, one module each, and the registry that orders them.

Each module holds one check whole: its reading dataclass(es), the probe that fills them from NVML and
PyTorch, its pure ``decide_*`` function, and ``CHECK``, which names it (:class:`~gpubench.verify.verdicts.
CheckSpec`) and says when it is decided (:mod:`gpubench.verify.context`). :data:`REGISTRY` below lists them
in the order they run and appear in the verdict table; adding a check is one new module and one line here.
Check modules may import gpubench.config, devices, nvml, timing, results and the verify modules below the
runner (verdicts, context, plan, probing, pcie); never the runner, the output or the command.
"""

from __future__ import annotations

from gpubench.verify.checks import (
    compute,
    config,
    contention,
    identity,
    interconnect,
    inventory,
    load,
    memory,
    memtest,
    perf,
    software,
)
from gpubench.verify.context import Check
from gpubench.verify.verdicts import CheckSpec

REGISTRY: tuple[Check, ...] = (
    config.CHECK,
    software.CHECK,
    inventory.CHECK,
    identity.CHECK,
    contention.CHECK,  # before memory_health and the active tests: before this process allocates much
    memory.CHECK,
    memtest.CHECK,
    compute.CHECK,
    load.CHECK,
    perf.CHECK,
    interconnect.CHECK,
)

CHECKS: tuple[CheckSpec, ...] = tuple(check.spec for check in REGISTRY)
CHECK_NAMES: tuple[str, ...] = tuple(c.name for c in CHECKS)


def check_spec(name: str) -> CheckSpec:
    for spec in CHECKS:
        if spec.name == name:
            return spec
    msg = f"unknown check {name!r}: expected one of {', '.join(CHECK_NAMES)}"
    raise ValueError(msg)
