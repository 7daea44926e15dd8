"""Running the checks: every registered check on every configured device, into one :class:`VerifyReport`.

:func:`run_checks` walks the devices of ``config.verify_devices()``; on each it runs the registry's checks
in order (:func:`_device_pass`), then decides the checks that hold devices against each other. Each check
is timed, and an exception inside one becomes a FAIL naming it: a crash must not hide a GPU.
Interrupted (Ctrl-C, SIGTERM), it records the check in progress as a SKIP row marked ``interrupted`` and
hands the report of the checks that completed to the caller on the exception (:func:`interrupted_report`),
which saves it (:mod:`gpubench.verify.command`).
Exit code: 0 when no check FAILs, 1 when one does, 2 for bad usage or configuration.
"""

from __future__ import annotations

import datetime as _dt
import functools
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gpubench import killpoints
from gpubench.config import Config
from gpubench.devices import CudaProbe, DeviceSpec, execution_device, parse_device, probe_cuda, why_unusable
from gpubench.verify.checks import CHECK_NAMES, CHECKS, REGISTRY, check_spec
from gpubench.verify.context import (
    DecidedAcrossDevices,
    DecidedAfterDevice,
    DecidedNow,
    Decision,
    DeviceContext,
    applies,
)
from gpubench.verify.plan import Plan, plan_for
from gpubench.verify.verdicts import CheckResult, Verdict, device_unusable

SCHEMA = "gpubench.verify/1"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

Progress = Callable[[str], None]


@dataclass(frozen=True)
class VerifyReport:
    """Everything one verification run found. ``results`` are ordered by device, then by check."""

    run_id: str
    level: str
    started: str  # ISO 8601, UTC
    finished: str
    results: tuple[CheckResult, ...]
    devices: tuple[Mapping[str, Any], ...]
    environment: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    interrupted: str = ""  # the signal that stopped the run ("SIGINT", "SIGTERM"); "" for a whole run

    @property
    def exit_code(self) -> int:
        """1 when any check FAILed, else 0; 130/143 for a run a signal interrupted."""
        if self.interrupted:
            return 128 + int(getattr(signal, self.interrupted, signal.SIGINT))
        return EXIT_FAILED if any(r.verdict is Verdict.FAIL for r in self.results) else EXIT_OK

    @property
    def gpu_verified(self) -> bool:
        """True when at least one GPU check actually ran (PASS/WARN/FAIL) on a cuda device."""
        gpu_only = {c.name for c in CHECKS if not c.cpu} - {"inventory"}
        return any(
            r.device.startswith("cuda") and r.verdict is not Verdict.SKIP and r.check in gpu_only
            for r in self.results
        )

    def counts(self) -> dict[str, int]:
        return {v.value: sum(1 for r in self.results if r.verdict is v) for v in Verdict}

    def summary(self) -> str:
        """``3 PASS, 1 WARN, 2 FAIL, 5 SKIP — no GPU was verified`` (the tail only when it applies)."""
        counts = self.counts()
        text = ", ".join(f"{counts[v.value]} {v.value}" for v in Verdict)
        if not self.gpu_verified:
            text += " — no GPU was verified"
        if self.interrupted:
            text += f" — interrupted by {self.interrupted}"
        return text

    def find(self, device: str, check: str) -> CheckResult | None:
        for result in self.results:
            if result.device == device and result.check == check:
                return result
        return None

    def as_dict(self) -> dict[str, Any]:
        """The ``gpubench.verify/1`` JSON document. An interrupted run has ``interrupted`` (the signal) and
        its unfinished check ``"interrupted": true``."""
        doc = {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "started": self.started,
            "finished": self.finished,
            "level": self.level,
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "gpu_verified": self.gpu_verified,
            "environment": dict(self.environment),
            "config": dict(self.config),
            "devices": [dict(d) for d in self.devices],
            "checks": [_check_dict(r) for r in self.results],
        }
        if self.interrupted:
            doc["interrupted"] = self.interrupted
        return doc


def _check_dict(result: CheckResult) -> dict[str, Any]:
    doc = result.as_dict()
    if result.readings.get(INTERRUPTED_KEY):
        doc["interrupted"] = True
    return doc


INTERRUPTED_KEY = "interrupted_by"


def _signal_name(exc: BaseException) -> str:
    """SIGTERM for gpubench's ``Terminated`` (it carries ``signum``), else SIGINT (Ctrl-C)."""
    return signal.Signals(int(getattr(exc, "signum", signal.SIGINT))).name


def interrupted_row(check: str, device: str, exc: BaseException, seconds: float = 0.0) -> CheckResult:
    """The row of a check a signal stopped before it was decided: a SKIP marked ``interrupted``."""
    name = _signal_name(exc)
    return CheckResult(
        check, device, Verdict.SKIP, message=f"interrupted by {name} before it was decided",
        remedy="run gpubench verify again", readings={INTERRUPTED_KEY: name}, duration_s=seconds,
    )


def interrupted_report(exc: BaseException) -> VerifyReport | None:
    """The report of the checks completed before ``exc`` (a ``KeyboardInterrupt`` that left
    :func:`run_checks`), or None when it came from elsewhere or before any check ran."""
    report = getattr(exc, "verify_report", None)
    return report if isinstance(report, VerifyReport) and report.results else None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class _Timer:
    """Times one check and turns an unexpected exception into a FAIL naming it (a crash must not hide a
    GPU).
    """

    def __init__(self, results: list[CheckResult], uuid: str | None, progress: Progress | None) -> None:
        self.results = results
        self.uuid = uuid
        self.progress = progress

    def run(
        self, check: str, device: str, fn: Callable[[], CheckResult], extra_s: float = 0.0
    ) -> CheckResult:
        """Decide one check; ``extra_s`` adds the time of a measurement taken earlier for this decision."""
        if self.progress:
            self.progress(f"{device}: {check}")
        t0 = time.perf_counter()
        try:
            killpoints.reached("verify.check.start")
            result = fn()
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: this check is recorded as interrupted
            self.interrupted(check, device, exc, t0, extra_s)
            raise
        except Exception as exc:  # a bug or a device error inside a probe: recorded, never fatal to the run
            result = CheckResult(
                check,
                device,
                Verdict.FAIL,
                message=f"the check itself failed: {type(exc).__name__}: {exc}",
                remedy="rerun; if it repeats, report it with the results JSON.",
            )
        result = replace(result, uuid=self.uuid, duration_s=time.perf_counter() - t0 + extra_s)
        self.results.append(result)
        killpoints.reached("verify.check.end")
        return result

    def interrupted(self, check: str, device: str, exc: BaseException, t0: float, extra_s: float = 0.0) -> None:
        """Record ``check`` on ``device`` as interrupted by ``exc`` (started at ``t0``), unless it has a row."""
        if any(r.check == check and r.device == device for r in self.results):
            return
        row = interrupted_row(check, device, exc, time.perf_counter() - t0 + extra_s)
        self.results.append(replace(row, uuid=self.uuid))


def _given(result: CheckResult) -> CheckResult:
    return result


@dataclass(frozen=True)
class _Measured:
    """A reading an across-devices check took in a device's pass, and how long taking it took (seconds)."""

    ctx: DeviceContext
    reading: Any
    seconds: float


def _device_pass(ctx: DeviceContext, wanted: Iterable[str], timer: _Timer) -> dict[str, _Measured]:
    """Run every wanted check that applies to the device, in registry order; decide what can be decided
    now or at the end of the pass, and return what the across-devices checks measured (by check name).
    """
    device = ctx.device
    finish: list[tuple[str, Decision]] = []
    measured: dict[str, _Measured] = {}
    try:
        _checks_of_pass(ctx, wanted, timer, finish, measured)
        killpoints.reached("verify.decision")  # the checks decided at the end of the device's pass
        for name, decide in finish:
            timer.run(name, device, decide)
    except KeyboardInterrupt as exc:  # measured or started but not decided: interrupted too
        now = time.perf_counter()
        for name in [n for n, _ in finish] + list(measured):
            timer.interrupted(name, device, exc, now)
        raise
    return measured


def _checks_of_pass(
    ctx: DeviceContext,
    wanted: Iterable[str],
    timer: _Timer,
    finish: list[tuple[str, Decision]],
    measured: dict[str, _Measured],
) -> None:
    """The device pass in registry order: decide what can be decided now; collect the decisions left for
    the end of the pass (``finish``) and the readings of the across-devices checks (``measured``)."""
    device = ctx.device
    for check in REGISTRY:
        name = check.spec.name
        if name not in wanted or not applies(check.spec, ctx.spec):
            continue
        if ctx.unusable is not None and check.spec.needs_usable_device:
            result = device_unusable(name, device, ctx.unusable.reason)
            timer.run(name, device, functools.partial(_given, result))
        elif isinstance(check, DecidedNow):
            timer.run(name, device, functools.partial(check.decide, ctx))
        elif isinstance(check, DecidedAfterDevice):
            t0 = time.perf_counter()
            try:
                finish.append((name, check.start(ctx)))
            except KeyboardInterrupt as exc:
                timer.interrupted(name, device, exc, t0)
                raise
        else:
            if timer.progress:
                timer.progress(f"{device}: {name} (measuring)")
            t0 = time.perf_counter()
            try:
                killpoints.reached("verify.measure.start")
                reading = check.measure(ctx)
            except KeyboardInterrupt as exc:
                timer.interrupted(name, device, exc, t0)
                raise
            measured[name] = _Measured(ctx, reading, time.perf_counter() - t0)
            killpoints.reached("verify.measure.end")


def _across_devices(measured: Mapping[str, Mapping[str, _Measured]], timers: Mapping[str, _Timer]) -> None:
    """Decide the checks that hold each device against the others, once every device is measured."""
    for check in REGISTRY:
        name = check.spec.name
        if not isinstance(check, DecidedAcrossDevices) or name not in measured:
            continue
        by_device = measured[name]
        readings = {device: (m.ctx, m.reading) for device, m in by_device.items()}
        for device, decide in check.decide(readings):
            timers[device].run(name, device, decide, by_device[device].seconds)


def _device_specs(config: Config) -> list[DeviceSpec]:
    """The configured devices, each once, in configuration order."""
    specs: list[DeviceSpec] = []
    for text in config.verify_devices():
        spec = parse_device(text)
        if all(s.name != spec.name for s in specs):
            specs.append(spec)
    return specs


def _with_execution_device(identity: dict[str, Any], spec: DeviceSpec) -> dict[str, Any]:
    """The identity, plus ``execution_device`` when the device's work runs elsewhere: only under a simulated
    CUDA runtime in tests (see :func:`gpubench.devices.execution_device`); the report's device entry and the
    printed summary then say so."""
    try:
        runs_on = execution_device(spec.name)
    except Exception:  # an index the simulated runtime does not show: the checks SKIP it as unusable
        return identity
    return identity if runs_on == spec.name else {**identity, "execution_device": runs_on}


def run_checks(
    config: Config,
    *,
    level: str | None = None,
    checks: Iterable[str] | None = None,
    probe: CudaProbe | None = None,
    history_dir: Path | None = None,
    plans: Mapping[str, Plan] | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Run the selected checks (default: all) on every device of ``config.verify_devices()``.

    ``plans`` overrides the plan per device kind (``"cpu"``, ``"cuda"``), for tests. ``history_dir`` is where
    earlier runs are read for the perf floor (default: ``verify.history_dir``, else ``<results.dir>/verify``).
    Never raises for a device problem: those become FAIL or SKIP rows.
    """
    from gpubench import results as results_mod

    level = level or config.verify.level
    wanted = tuple(checks) if checks is not None else CHECK_NAMES
    for name in wanted:
        check_spec(name)
    started = _now()
    killpoints.reached("verify.probe")
    probe = probe if probe is not None else probe_cuda()
    run_id = run_id or results_mod.new_run_id()
    if history_dir is None:
        history_dir = Path(config.verify.history_dir or Path(config.results.dir) / "verify")
    out: list[CheckResult] = []
    identities: list[Mapping[str, Any]] = []
    timers: dict[str, _Timer] = {}
    measured: dict[str, dict[str, _Measured]] = {}  # check -> device -> what its pass measured

    def report(interrupted: str = "") -> VerifyReport:
        order = {d.get("device"): i for i, d in enumerate(identities)}
        out.sort(key=lambda r: (order.get(r.device, 99), CHECK_NAMES.index(r.check)))
        return VerifyReport(
            run_id=run_id,
            level=level,
            started=started,
            finished=_now(),
            results=tuple(out),
            devices=tuple(identities),
            environment=results_mod.environment(probe),
            config={**config.as_dict(), "files": list(config.files), "sources": dict(config.sources)},
            interrupted=interrupted,
        )

    try:
        for spec in _device_specs(config):
            identity = _with_execution_device(results_mod.device_identity(spec.name, probe), spec)
            identities.append(identity)
            timer = timers[spec.name] = _Timer(out, identity.get("uuid"), progress)
            plan = (plans or {}).get(spec.kind) or plan_for(config, level, spec.kind)
            killpoints.reached("verify.plan")
            unusable = why_unusable(spec, probe)
            ctx = DeviceContext(config, spec, probe, plan, identity, unusable, history_dir)
            for name, m in _device_pass(ctx, wanted, timer).items():
                measured.setdefault(name, {})[spec.name] = m
        killpoints.reached("verify.across")
        _across_devices(measured, timers)
    except KeyboardInterrupt as exc:  # the checks completed so far go with it, for the caller to save
        now = time.perf_counter()
        for name, by_device in measured.items():  # measured on every device, not yet decided
            for device in by_device:
                timers[device].interrupted(name, device, exc, now)
        exc.verify_report = report(_signal_name(exc))  # type: ignore[attr-defined]
        raise
    return report()
