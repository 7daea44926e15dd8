"""``gpubench verify``: run the health checks on every configured device, print one table, save the run.

A pipeline: :func:`run_checks` (readings -> decisions, returns a :class:`VerifyReport`), :func:`write_report`
(``results/verify/<run_id>.json`` and ``.xml`` JUnit, each written atomically), :func:`print_report` (one rich
table, a summary line, the paths). :func:`verify` chains the three; :func:`run` is the command.
Exit code: 0 when no check FAILs, 1 when one does, 2 for bad usage or configuration.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import re
import socket
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gpubench.config import LEVELS, Config, ConfigError
from gpubench.devices import CudaProbe, DeviceSpec, dtype_support, parse_device, probe_cuda, why_unusable
from gpubench.verify import health, probes
from gpubench.verify.health import CHECK_NAMES, CHECKS, CheckResult, Verdict

SCHEMA = "gpubench.verify/1"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# --- plans: how much work each level does ---------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Sizes and time bounds of the active tests for one level and device kind. Bytes, seconds."""

    level: str
    memtest_fraction: float
    memtest_cap_bytes: int | None
    memtest_seconds: float
    memtest_patterns: tuple[str, ...] = probes.MEMTEST_PATTERNS
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


# --- the report -----------------------------------------------------------------------------------


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

    @property
    def exit_code(self) -> int:
        """1 when any check FAILed, else 0."""
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
        return text

    def find(self, device: str, check: str) -> CheckResult | None:
        for result in self.results:
            if result.device == device and result.check == check:
                return result
        return None

    def as_dict(self) -> dict[str, Any]:
        """The ``gpubench.verify/1`` JSON document."""
        return {
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
            "checks": [r.as_dict() for r in self.results],
        }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


Progress = Callable[[str], None]


def _device_source(config: Config) -> str:
    for key in ("verify.devices", "bench.devices", "dl.device"):
        if key == "dl.device" or getattr(config, key.split(".")[0]).devices:
            return config.source_of(key)
    return "default"


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
            result = fn()
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
        return result


def _given(result: CheckResult) -> CheckResult:
    return result


def _burn_dtype(spec: DeviceSpec, probe: CudaProbe) -> str:
    support = dtype_support(spec, probe)
    for dtype in ("bf16", "f16"):
        if support.get(dtype) is None:
            return dtype
    return "f32"


@dataclass(frozen=True)
class _Measured:
    """What one device's pass leaves for the decisions that need every device: perf and link readings."""

    usable: bool
    perf: health.PerfReading | None = None
    perf_s: float = 0.0
    link: health.InterconnectReading | None = None
    link_s: float = 0.0


def _verify_device(
    config: Config,
    spec: DeviceSpec,
    probe: CudaProbe,
    plan: Plan,
    wanted: Sequence[str],
    timer: _Timer,
    identity: Mapping[str, Any],
) -> _Measured:
    """Decide every per-device check for ``spec`` (in ``wanted``); measure perf and links for later."""
    device = spec.name
    uuid = identity.get("uuid")
    v = config.verify
    unusable = why_unusable(spec, probe)
    if "config" in wanted:
        dtype = config.dl.dtype
        reading = health.ConfigReading(
            device=device,
            device_source=_device_source(config),
            files=tuple(config.files),
            dtype=dtype,
            dtype_problem=dtype_support(spec, probe).get(dtype) if unusable is None else None,
            device_problem=unusable.reason if unusable else None,
            warnings=tuple(config.warnings),
        )
        timer.run("config", device, lambda: health.decide_config(reading))
    if "software" in wanted:
        timer.run("software", device, lambda: health.decide_software(probes.read_software(probe), device))
    if spec.kind == "cuda" and "inventory" in wanted:
        inventory = probes.read_inventory(spec, probe, unusable)
        timer.run("inventory", device, lambda: health.decide_inventory(inventory))
    if unusable is not None:
        for check in CHECKS:
            if check.name in ("config", "software", "inventory") or check.name not in wanted:
                continue
            if spec.kind == "cuda" or check.cpu:
                result = health.device_unusable(check.name, device, unusable.reason)
                timer.run(check.name, device, functools.partial(_given, result))
        return _Measured(usable=False)

    baseline = None
    if spec.kind == "cuda":
        if "identity" in wanted:
            timer.run(
                "identity",
                device,
                lambda: health.decide_identity(
                    probes.read_identity(spec, probe), v.identity_memory_tolerance_pct / 100.0
                ),
            )
        if "contention" in wanted:  # before this process allocates much on the GPU
            timer.run(
                "contention", device, lambda: health.decide_contention(probes.read_contention(device, uuid))
            )
        if "memory_health" in wanted:
            baseline = probes.read_memory_health(uuid)

    if "memtest" in wanted:

        def memtest() -> CheckResult:
            import torch

            nbytes = probes.memtest_bytes(torch.device(device), plan.memtest_fraction, plan.memtest_cap_bytes)
            reading = probes.run_memtest(
                device, nbytes, plan.memtest_seconds, plan.memtest_patterns, seed=config.dl.seed
            )
            return health.decide_memtest(reading)

        timer.run("memtest", device, memtest)
    if "compute" in wanted:
        dtypes = probes.compute_dtypes(spec, probe)
        timer.run(
            "compute",
            device,
            lambda: health.decide_compute(
                probes.run_compute(device, dtypes, plan.compute_n, plan.compute_repeats, seed=config.dl.seed)
            ),
        )
    if spec.kind == "cuda" and "under_load" in wanted:
        burn_dtype = _burn_dtype(spec, probe)
        timer.run(
            "under_load",
            device,
            lambda: health.decide_under_load(
                probes.run_burn(device, uuid, plan.burn_seconds, burn_dtype, plan.burn_n),
                v.temp_margin_c,
                v.pcie_min_width_fraction,
            ),
        )
    measured = _Measured(usable=True)
    if "perf_floor" in wanted:
        if timer.progress:
            timer.progress(f"{device}: perf_floor (measuring)")
        t0 = time.perf_counter()
        name = str(identity.get("name") or device)
        try:
            perf = probes.measure_perf(
                device,
                uuid,
                name,
                config.dl.dtype,
                plan.perf_n,
                plan.copy_bytes,
                plan.perf_repeats,
                plan.level,
            )
        except Exception as exc:  # recorded as the reading's error; decided with the siblings later
            perf = health.PerfReading(
                device,
                uuid,
                name,
                config.dl.dtype,
                plan.perf_n,
                plan.copy_bytes,
                None,
                None,
                plan.level,
                error=f"{type(exc).__name__}: {exc}",
            )
        measured = replace(measured, perf=perf, perf_s=time.perf_counter() - t0)
    if spec.kind == "cuda" and "interconnect" in wanted:
        t0 = time.perf_counter()
        try:
            link = probes.measure_interconnect(device, uuid, plan.transfer_bytes, plan.transfer_repeats)
        except Exception as exc:  # recorded as the reading's error
            link = health.InterconnectReading(
                device, plan.transfer_bytes, None, None, error=f"{type(exc).__name__}: {exc}"
            )
        measured = replace(measured, link=link, link_s=time.perf_counter() - t0)
    if spec.kind == "cuda" and "memory_health" in wanted:
        timer.run(
            "memory_health",
            device,
            lambda: health.decide_memory_health(
                probes.read_memory_health(uuid), device, v.remap_uncorrectable_limit, baseline
            ),
        )
    return measured


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
        health.check_spec(name)
    started = _now()
    probe = probe if probe is not None else probe_cuda()
    run_id = run_id or results_mod.new_run_id()
    if history_dir is None:
        history_dir = Path(config.verify.history_dir or Path(config.results.dir) / "verify")
    v = config.verify
    out: list[CheckResult] = []
    identities: list[Mapping[str, Any]] = []
    perf: dict[str, health.PerfReading] = {}
    links: dict[str, health.InterconnectReading] = {}
    usable_gpus: list[str] = []
    timers: dict[str, _Timer] = {}
    measure_s: dict[tuple[str, str], float] = {}  # (device, check) -> seconds measured before deciding

    for text in config.verify_devices():
        spec = parse_device(text)
        if any(i.get("device") == spec.name for i in identities):
            continue
        identity = results_mod.device_identity(spec.name, probe)
        identities.append(identity)
        timer = timers[spec.name] = _Timer(out, identity.get("uuid"), progress)
        plan = (plans or {}).get(spec.kind) or plan_for(config, level, spec.kind)
        measured = _verify_device(config, spec, probe, plan, wanted, timer, identity)
        if measured.usable and spec.kind == "cuda":
            usable_gpus.append(spec.name)
        if measured.perf is not None:
            perf[spec.name] = measured.perf
            measure_s[(spec.name, "perf_floor")] = measured.perf_s
        if measured.link is not None:
            links[spec.name] = measured.link
            measure_s[(spec.name, "interconnect")] = measured.link_s

    # decisions that need every device measured: siblings and peers
    for device, reading in perf.items():
        history = probes.load_history(history_dir, reading.uuid, limit=v.history_runs)
        siblings = [p for d, p in perf.items() if d != device]
        timers[device].run(
            "perf_floor",
            device,
            functools.partial(health.decide_perf_floor, reading, siblings, history, v.perf_floor_pct),
            measure_s[(device, "perf_floor")],
        )
    if len(usable_gpus) >= 2 and "interconnect" in wanted:
        plan = (plans or {}).get("cuda") or plan_for(config, level, "cuda")
        for src in usable_gpus:
            peers = tuple(
                probes.measure_peer(src, dst, plan.transfer_bytes, 5) for dst in usable_gpus if dst != src
            )
            if src in links:
                links[src] = replace(links[src], peers=peers)
    for device, link in links.items():
        timers[device].run(
            "interconnect",
            device,
            functools.partial(health.decide_interconnect, link, v.h2d_min_fraction),
            measure_s[(device, "interconnect")],
        )

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
    )


# --- writing --------------------------------------------------------------------------------------


# XML 1.0 cannot hold these at all, not even escaped: one in a GPU name would make the whole file unreadable.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml(text: Any) -> str:
    return _XML_ILLEGAL.sub("\ufffd", str(text))


def junit_xml(report: VerifyReport) -> str:
    """JUnit XML: one testcase per (device, check); FAIL -> <failure>, SKIP -> <skipped>, WARN noted in
    output.
    """
    counts = report.counts()
    total = sum(r.duration_s for r in report.results)
    suites = ET.Element("testsuites", name="gpubench verify")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="gpubench.verify",
        tests=str(len(report.results)),
        failures=str(counts["FAIL"]),
        errors="0",
        skipped=str(counts["SKIP"]),
        time=f"{total:.3f}",
        timestamp=report.started,
        hostname=socket.gethostname(),
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("run_id", report.run_id), ("level", report.level), ("summary", report.summary())):
        ET.SubElement(props, "property", name=name, value=_xml(value))
    for r in report.results:
        case = ET.SubElement(
            suite, "testcase", classname=_xml(f"verify.{r.device}"), name=r.check, time=f"{r.duration_s:.3f}"
        )
        detail = _xml(f"value: {_fmt(r.value, r.unit)}\nthreshold: {_fmt(r.threshold, '')}\n{r.message}")
        if r.remedy:
            detail += _xml(f"\nremedy: {r.remedy}")
        if r.verdict is Verdict.FAIL:
            ET.SubElement(case, "failure", message=_xml(r.message), type="FAIL").text = detail
        elif r.verdict is Verdict.SKIP:
            ET.SubElement(case, "skipped", message=_xml(r.message))
        else:
            ET.SubElement(case, "system-out").text = f"{r.verdict.value}: {detail}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_report(report: VerifyReport, results_dir: Path) -> tuple[Path, Path]:
    """Write ``<results_dir>/verify/<run_id>.json`` and ``.xml`` atomically; returns both paths."""
    from gpubench.results import atomic_write_json, atomic_write_text, safe_child

    json_path = safe_child(results_dir, "verify", f"{report.run_id}.json")
    xml_path = safe_child(results_dir, "verify", f"{report.run_id}.xml")
    atomic_write_json(json_path, report.as_dict())
    atomic_write_text(xml_path, junit_xml(report))
    return json_path, xml_path


# --- printing -------------------------------------------------------------------------------------

_STYLE = {
    Verdict.PASS: "bold green",
    Verdict.WARN: "bold yellow",
    Verdict.FAIL: "bold red",
    Verdict.SKIP: "dim",
}


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip() if unit else text


def print_report(report: VerifyReport, console: Any, paths: Sequence[Path] = (), quiet: bool = False) -> None:
    """One table (device, check, verdict, value, threshold, finding, remedy), a summary line, the paths."""
    from rich.table import Table
    from rich.text import Text

    from gpubench.console import printable

    if not quiet:
        table = Table(title=f"gpubench verify ({report.level}) {report.run_id}", show_lines=False)
        for name in ("device", "check", "verdict", "value", "threshold", "finding", "remedy"):
            table.add_column(name, overflow="fold")
        for r in report.results:
            table.add_row(
                printable(r.device),
                r.check,
                Text(r.verdict.value, style=_STYLE[r.verdict]),
                printable(_fmt(r.value, r.unit)),
                printable(_fmt(r.threshold, "")),
                printable(r.message),
                printable(r.remedy),
            )
        console.print(table)
    style = "bold red" if report.exit_code else "bold green"
    console.print(Text(report.summary(), style=style))
    for path in paths:
        console.print(f"wrote {printable(path)}")


def _console() -> Any:
    from gpubench.console import console

    return console()


def verify(
    config: Config,
    *,
    level: str | None = None,
    checks: Iterable[str] | None = None,
    probe: CudaProbe | None = None,
    results_dir: Path | None = None,
    history_dir: Path | None = None,
    plans: Mapping[str, Plan] | None = None,
    console: Any = None,
    quiet: bool = False,
) -> tuple[VerifyReport, tuple[Path, Path]]:
    """Run, save and print: the library form of ``gpubench verify``. Returns the report and the paths
    written.
    """
    console = console if console is not None else _console()
    status = None
    progress: Progress | None = None
    if not quiet and getattr(console, "is_terminal", False):
        status = console.status("verifying")
        status.start()

        def progress(text: str) -> None:
            status.update(f"verifying {text}")

    try:
        report = run_checks(
            config,
            level=level,
            checks=checks,
            probe=probe,
            history_dir=history_dir,
            plans=plans,
            progress=progress,
        )
    finally:
        if status is not None:
            status.stop()
    target = Path(results_dir) if results_dir is not None else Path(config.results.dir)
    try:
        paths = write_report(report, target)
    except (OSError, ValueError):  # unwritable folder, or a link leading outside it: show the verdicts anyway
        print_report(report, console, (), quiet=quiet)
        raise
    print_report(report, console, paths, quiet=quiet)
    return report, paths


# --- the command ----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``gpubench verify`` options (the CLI adds --config, --device, --devices, --results-dir, --set, -q)."""
    parser.add_argument("--level", choices=LEVELS, help="quick (default: verify.level), long, or stress")
    parser.add_argument(
        "--check",
        action="append",
        choices=CHECK_NAMES,
        metavar="NAME",
        dest="checks",
        help=f"run only this check (repeatable): {', '.join(CHECK_NAMES)}",
    )
    parser.add_argument(
        "--history-dir",
        metavar="DIR",
        help="earlier runs for the perf floor (default: verify.history_dir, else RESULTS/verify)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``gpubench verify``: 0 no FAIL, 1 a FAIL, 2 bad configuration."""
    from gpubench.config.options import config_from_args

    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from gpubench.results import ResultPathError

    history = Path(args.history_dir) if getattr(args, "history_dir", None) else None
    try:
        report, _paths = verify(
            config,
            level=getattr(args, "level", None),
            checks=getattr(args, "checks", None),
            history_dir=history,
            quiet=bool(getattr(args, "quiet", False)),
        )
    except (ResultPathError, OSError) as exc:
        print(
            f"error: the checks ran but their results were not saved: {exc}. Fix: point --results-dir "
            "(results.dir) at a folder you can write, with no link inside it that leads out of it",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return report.exit_code
