"""The bench cases' targets as rows (:class:`CaseTarget`) and the text table the plugin prints after the
other summaries (:func:`format_targets_table`). Imports :mod:`gpubench.workloads.targets` only."""

from __future__ import annotations

from dataclasses import dataclass

from gpubench.workloads.targets import Target, fmt


@dataclass(frozen=True)
class CaseTarget:
    """One target recorded by one case (``case``: the test name with its parameters)."""

    case: str
    device: str
    target: Target

    def describe(self) -> str:
        return f"{self.case} on {self.device}: {self.target.describe()}"


TARGET_HEADERS = ("case", "device", "target", "wanted", "measured", "verdict", "source")


def format_targets_table(rows: list[CaseTarget]) -> list[str]:
    """Text lines of the targets table, one row per recorded target."""
    cells = []
    for row in rows:
        t = row.target
        measured = "-" if t.measured is None else f"{fmt(t.measured)} {t.unit}"
        verdict = t.status if t.measured is not None or not t.note else f"{t.status}: {t.note}"
        cells.append((row.case, row.device, t.name, f"{t.comparison} {fmt(t.wanted)} {t.unit}", measured,
                      verdict, t.source))
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(TARGET_HEADERS)]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return [line(TARGET_HEADERS), "-" * len(line(TARGET_HEADERS)), *(line(c) for c in cells)]
