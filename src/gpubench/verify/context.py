"""What the runner hands each check, and the three shapes a check takes.

A check module reads its device through a :class:`DeviceContext` (the configuration, the device, the
PyTorch/NVML probe, the plan for its level) and is registered as one of three shapes, which say when it is
decided: at its place in the device's pass (:class:`DecidedNow`, most checks), at the end of the device's
pass against a reading taken at its place (:class:`DecidedAfterDevice`), or once every device is measured
(:class:`DecidedAcrossDevices`). :mod:`gpubench.verify.run` runs them; the checks never import the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from gpubench.config import Config
from gpubench.devices import CudaProbe, DeviceSpec, Unusable
from gpubench.verify.plan import Plan
from gpubench.verify.verdicts import CheckResult, CheckSpec


@dataclass(frozen=True)
class DeviceContext:
    """One device of a verify run as its checks see it.

    ``identity`` is :func:`gpubench.results.device_identity` (``uuid``, ``name``, ...); ``unusable`` says why
    the device cannot be used (None when it can); ``history_dir`` holds earlier runs for the perf floor.
    """

    config: Config
    spec: DeviceSpec
    probe: CudaProbe
    plan: Plan
    identity: Mapping[str, Any]
    unusable: Unusable | None
    history_dir: Path

    @property
    def device(self) -> str:
        """The canonical device name, e.g. ``cuda:1``."""
        return self.spec.name

    @property
    def uuid(self) -> str | None:
        uuid = self.identity.get("uuid")
        return None if uuid is None else str(uuid)


Decision = Callable[[], CheckResult]
R = TypeVar("R")


@dataclass(frozen=True)
class DecidedNow:
    """A check read and decided at its place in the device's pass."""

    spec: CheckSpec
    decide: Callable[[DeviceContext], CheckResult]


@dataclass(frozen=True)
class DecidedAfterDevice:
    """A check that reads a baseline at its place and decides once the device's other checks are done,
    so that what the active tests provoked shows against the baseline."""

    spec: CheckSpec
    start: Callable[[DeviceContext], Decision]


@dataclass(frozen=True)
class DecidedAcrossDevices(Generic[R]):
    """A check measured on each device at its place and decided once every device is measured, because a
    device is held against the others (same-model siblings, peer copies).

    ``decide`` gets every device's context and reading (by device name, in run order) and yields each
    device's decision, in that order.
    """

    spec: CheckSpec
    measure: Callable[[DeviceContext], R]
    decide: Callable[[Mapping[str, tuple[DeviceContext, R]]], Iterator[tuple[str, Decision]]]


Check = DecidedNow | DecidedAfterDevice | DecidedAcrossDevices[Any]


def applies(spec: CheckSpec, device: DeviceSpec) -> bool:
    """Whether a check runs on ``device`` at all: GPU-only checks do not run on cpu."""
    return device.kind == "cuda" or spec.cpu
