"""Verdicts and results: what every check returns, and the helpers the checks share to build one.

A check's decision is a :class:`CheckResult`: the verdict, the measured value, the threshold it was held
against and a remedy a person can act on. A reading the hardware cannot give is ``None`` ("N/A"): it leads
to SKIP or to PASS with a note, never to an exception. :class:`Findings` collects what one decision found
and turns it into the result; :func:`skipped` and :func:`device_unusable` are the two kinds of SKIP.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any


class Verdict(str, enum.Enum):
    """The outcome of one check on one device. Only FAIL changes the exit code."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"

    def __str__(self) -> str:
        return self.value


_RANK = {Verdict.SKIP: 0, Verdict.PASS: 1, Verdict.WARN: 2, Verdict.FAIL: 3}


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    """The most severe verdict (FAIL > WARN > PASS > SKIP); SKIP for an empty sequence."""
    return max(verdicts, key=_RANK.__getitem__, default=Verdict.SKIP)


@dataclass(frozen=True)
class CheckResult:
    """One row of the verdict table and of ``results/verify/<run>.json``.

    ``value`` and ``threshold`` are what was measured and what it was held against (numbers or short text,
    in ``unit``); ``readings`` holds every reading the decision saw, for the record.
    """

    check: str
    device: str
    verdict: Verdict
    value: Any = None
    threshold: Any = None
    unit: str = ""
    message: str = ""
    remedy: str = ""
    readings: Mapping[str, Any] = field(default_factory=dict)
    uuid: str | None = None
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (the ``checks`` entries of the verify schema)."""
        return {
            "device": self.device,
            "uuid": self.uuid,
            "check": self.check,
            "verdict": self.verdict.value,
            "value": self.value,
            "threshold": self.threshold,
            "unit": self.unit,
            "remedy": self.remedy,
            "message": self.message,
            "readings": dict(self.readings),
            "duration_s": round(self.duration_s, 4),
        }


@dataclass(frozen=True)
class CheckSpec:
    """A check in the registry: its name (the ``check`` field), a title and whether it applies to ``cpu``.

    ``needs_usable_device`` is False for the checks that still run on a device the inventory finds
    unusable (they are the ones that say why); every other check SKIPs there.
    """

    name: str
    title: str
    cpu: bool
    needs_usable_device: bool = True


def readings_dict(reading: Any) -> dict[str, Any]:
    """A reading dataclass as a plain dict (nested dataclasses and tuples included)."""
    if hasattr(reading, "__dataclass_fields__"):
        return {f.name: readings_dict(getattr(reading, f.name)) for f in fields(reading)}
    if isinstance(reading, (list, tuple)):
        return [readings_dict(r) for r in reading]  # type: ignore[return-value]
    if isinstance(reading, Mapping):
        return {str(k): readings_dict(v) for k, v in reading.items()}
    if isinstance(reading, float) and reading != reading:  # NaN is not JSON
        return None  # type: ignore[return-value]
    return reading  # type: ignore[no-any-return]


@dataclass
class Findings:
    """Collects the issues one decision finds; the verdict is the worst of them."""

    issues: list[tuple[Verdict, str, str]] = field(default_factory=list)  # (verdict, what, remedy)
    notes: list[str] = field(default_factory=list)

    def add(self, verdict: Verdict, what: str, remedy: str = "") -> None:
        self.issues.append((verdict, what, remedy))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def result(self, check: str, device: str, ok_text: str, **kw: Any) -> CheckResult:
        verdict = worst([v for v, _, _ in self.issues]) if self.issues else Verdict.PASS
        bad = sorted(self.issues, key=lambda i: -_RANK[i[0]])
        parts = [f"{v.value}: {w}" if len(bad) > 1 else w for v, w, _ in bad] or [ok_text]
        message = "; ".join(parts + self.notes)
        remedies = []
        for _, _, remedy in bad:
            if remedy and remedy not in remedies:
                remedies.append(remedy)
        return CheckResult(check, device, verdict, message=message, remedy=" ".join(remedies), **kw)


def skipped(check: str, device: str, reason: str, remedy: str = "") -> CheckResult:
    """A SKIP that says why (the reason names what is missing)."""
    return CheckResult(check, device, Verdict.SKIP, message=reason, remedy=remedy)


def short_reason(reason: str, limit: int = 70) -> str:
    """The head of a long reason ("no usable NVIDIA driver or GPU: PyTorch ... found no GPU (...)" -> its
    first clause), for the rows that repeat it."""
    for sep in (": ", " ("):
        head = reason.split(sep, 1)[0]
        if len(head) <= limit and head != reason:
            return head
    return reason if len(reason) <= limit else reason[: limit - 3].rstrip() + "..."


def device_unusable(check: str, device: str, reason: str) -> CheckResult:
    """A check that cannot run because the device is unusable: SKIP naming the reason (inventory FAILs)."""
    return CheckResult(
        check,
        device,
        Verdict.SKIP,
        message=f"{device} unusable: {short_reason(reason)} (see inventory)",
        readings={"unusable_reason": reason},
    )


def gib(n: int | float | None) -> str:
    """Bytes as MiB or GiB text (N/A for None)."""
    if n is None:
        return "N/A"
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
