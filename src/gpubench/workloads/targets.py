"""Targets as verdicts: what a benchmark case wanted, what it measured, met or missed, and who asked for it.

A speed, overhead or accuracy goal is not an ``assert`` inside a benchmark case: a busy machine would turn
a slow run into a failed run. Each case records its targets in ``benchmark.extra_info["targets"]`` (a list
of :meth:`Target.as_dict`), the pytest plugin prints them as met / missed / not measured after the
throughput table, and only ``--gpubench-targets=enforce`` turns a missed target into exit status 1.
A wrong result (a tensor that differs, a file that does not parse) stays an assertion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MET, MISSED, NOT_MEASURED = "met", "missed", "not measured"
COMPARISONS = (">=", "<=")
DISABLED_NOTE = "--benchmark-disable: nothing timed"


@dataclass(frozen=True)
class Target:
    """One goal of one case. ``wanted`` and ``measured`` are in ``unit``; ``measured`` is None when the
    run could not measure it (``note`` says why: ``--benchmark-disable``, a missing baseline, small settings).
    ``source`` names where the goal comes from (the product brief, the original example, a measured reference).
    """

    name: str
    wanted: float
    measured: float | None
    unit: str
    source: str
    comparison: str = ">="
    note: str = ""

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            msg = f"target {self.name!r}: comparison {self.comparison!r} is not one of {', '.join(COMPARISONS)}"
            raise ValueError(msg)

    @property
    def met(self) -> bool | None:
        """True or False when measured; None when not measured."""
        if self.measured is None:
            return None
        if self.comparison == ">=":
            return self.measured >= self.wanted
        return self.measured <= self.wanted

    @property
    def status(self) -> str:
        met = self.met
        return NOT_MEASURED if met is None else MET if met else MISSED

    def describe(self) -> str:
        """One line: ``name: wanted >= 3 x, measured 2.81 x (source)``."""
        wanted = f"wanted {self.comparison} {fmt(self.wanted)} {self.unit}".rstrip()
        if self.measured is None:
            measured = f"not measured ({self.note})" if self.note else "not measured"
        else:
            measured = f"measured {fmt(self.measured)} {self.unit}".rstrip()
        return f"{self.name}: {wanted}, {measured} (target from {self.source})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "wanted": self.wanted, "measured": self.measured, "unit": self.unit,
            "met": self.met, "status": self.status, "comparison": self.comparison, "source": self.source,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Target:
        measured = data.get("measured")
        return cls(str(data["name"]), float(data["wanted"]), None if measured is None else float(measured),
                   str(data.get("unit", "")), str(data.get("source", "")), str(data.get("comparison", ">=")),
                   str(data.get("note", "")))


def fmt(value: float) -> str:
    """A figure as people read it: 3, 2.81, 0.7, 13,904."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def record(benchmark: Any, target: Target) -> Target:
    """Append ``target`` to ``benchmark.extra_info["targets"]`` and return it."""
    benchmark.extra_info.setdefault("targets", []).append(target.as_dict())
    return target


def targets_of(extra_info: Mapping[str, Any] | None) -> list[Target]:
    """The targets a case recorded (none when it recorded none)."""
    return [Target.from_dict(t) for t in (extra_info or {}).get("targets") or []]


def missed(targets: Iterable[Target]) -> list[Target]:
    return [t for t in targets if t.met is False]


def judge(benchmark: Any, name: str, wanted: float, measured: float | None, unit: str, source: str, *,
          comparison: str = ">=", missing: str = "") -> Target:
    """Record one target of a case in its ``extra_info`` and return it.

    ``measured`` None is "not measured": under ``--benchmark-disable`` always accepted; otherwise only with
    ``missing`` saying why (no baseline in this session, settings too small to judge). A figure that a timed
    run should have produced and did not is a broken case: it raises, naming the target.
    """
    note = ""
    if measured is None:
        note = missing or (DISABLED_NOTE if getattr(benchmark, "disabled", False) else "")
        if not note:
            msg = (f"target {name!r}: the case ran timed but its figure is missing. Fix: the case must record "
                   "the figure before judging it")
            raise RuntimeError(msg)
    return record(benchmark, Target(name, float(wanted), None if measured is None else float(measured), unit,
                                    source, comparison, note))
