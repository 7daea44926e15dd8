"""Straggler GPUs: a GPU whose result is well below the median of the other GPUs of the same model.

A pure rule over :class:`RankMetric` readings, so it is tested without GPUs and reused for any figure a
distributed run collects (matmul TFLOP/s, copy GB/s, MNIST images/s). The comparison is the one
``verify``'s ``perf_floor`` check and the report's outlier table make: each GPU against the median of
its same-model *siblings* (the other GPUs, itself left out), across every host of the run.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RankMetric:
    """One figure measured by one rank. ``higher_is_better``: True for rates (TFLOP/s, GB/s, images/s)."""

    rank: int
    host: str
    device: str  # "cuda:0" (the rank's LOCAL_RANK device) or "cpu"
    index: int | None  # CUDA index on its host; None on cpu
    uuid: str  # "GPU-..." or "cpu-<host>"
    model: str  # the GPU name ("NVIDIA H100 80GB HBM3") or the CPU model
    metric: str  # "matmul_tflops", "copy_gbps", ...
    value: float
    unit: str
    higher_is_better: bool = True


@dataclass(frozen=True)
class Straggler:
    """A rank whose ``metric`` is ``deficit_pct`` % worse than ``sibling_median`` (over ``siblings`` GPUs)."""

    rank: int
    host: str
    device: str
    index: int | None
    uuid: str
    model: str
    metric: str
    value: float
    unit: str
    sibling_median: float
    siblings: int
    deficit_pct: float
    threshold_pct: float

    def describe(self) -> str:
        where = f"{self.host} {self.device}" + (f" (index {self.index})" if self.index is not None else "")
        return (
            f"rank {self.rank} on {where}, {self.model} {self.uuid}: {self.metric} {self.value:.4g} "
            f"{self.unit} is "
            f"{self.deficit_pct:.1f}% worse than the median {self.sibling_median:.4g} {self.unit} of its "
            f"{self.siblings} same-model sibling(s) (threshold {self.threshold_pct:g}%)"
        )


def deficit_pct(value: float, reference: float, higher_is_better: bool = True) -> float:
    """How much worse ``value`` is than ``reference``, in percent of the reference (negative: better)."""
    if reference <= 0:
        return 0.0
    return 100.0 * ((reference - value) if higher_is_better else (value - reference)) / reference


def find_stragglers(readings: Sequence[RankMetric], threshold_pct: float) -> list[Straggler]:
    """Every reading more than ``threshold_pct`` % worse than the median of its same-model siblings.

    Siblings: readings of the same ``model`` and ``metric`` from *other* ranks on *other* devices (another
    UUID: two ranks sharing one host's CPU are one device). A model with a single GPU has no siblings and is
    never flagged. Readings that are not positive finite numbers are ignored (a
    failed measurement is an error, reported elsewhere, not a straggler). Sorted by rank, then metric.
    """
    if threshold_pct < 0:
        msg = f"straggler threshold {threshold_pct}% is negative; give a percentage >= 0, e.g. 10"
        raise ValueError(msg)
    usable = [r for r in readings if r.value == r.value and 0 < r.value < float("inf")]
    flagged: list[Straggler] = []
    for r in usable:
        # the same UUID is the same device (two ranks on one host's CPU): not a sibling
        siblings = [
            s.value
            for s in usable
            if s.model == r.model and s.metric == r.metric and s.rank != r.rank and s.uuid != r.uuid
        ]
        if not siblings:
            continue
        median = statistics.median(siblings)
        deficit = deficit_pct(r.value, median, r.higher_is_better)
        if deficit > threshold_pct:
            flagged.append(
                Straggler(
                    r.rank,
                    r.host,
                    r.device,
                    r.index,
                    r.uuid,
                    r.model,
                    r.metric,
                    r.value,
                    r.unit,
                    median,
                    len(siblings),
                    deficit,
                    threshold_pct,
                )
            )
    return sorted(flagged, key=lambda s: (s.rank, s.metric))
