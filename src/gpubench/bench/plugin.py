"""The gpubench pytest plugin (entry point ``pytest11``): devices, configuration and machine info.

Any test that takes a ``device`` argument runs once per configured device (``bench.devices``, or
``--gpubench-devices``), with ids ``cpu``, ``cuda:0``… and without the device in the benchmark group, so
``cuda:0`` and ``cuda:1`` stand side by side in one pytest-benchmark group. A device that cannot be
used is skipped with the exact reason, or replaced by the fallback device with a loud note that also
goes into every benchmark's ``extra_info``.

Targets (``extra_info["targets"]``, see :mod:`gpubench.workloads.targets`) are verdicts: after the other
summaries a "gpubench targets" table shows each as met / missed / not measured, and the run's exit status
does not depend on them unless ``--gpubench-targets=enforce`` is given.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from gpubench import killpoints
from gpubench.bench import compare_gate, internals, saves
from gpubench.bench.target_table import CaseTarget, format_targets_table
from gpubench.config import Config, ConfigError, load_config
from gpubench.devices import (
    CudaProbe,
    DeviceError,
    parse_device,
    parse_device_list,
    probe_cuda,
    resolve,
    why_unusable,
)
from gpubench.results import device_identity, environment, new_run_id
from gpubench.workloads.targets import targets_of

if TYPE_CHECKING:
    import torch

_PROBE_KEY = pytest.StashKey[CudaProbe]()
_CONFIG_KEY = pytest.StashKey[Config]()
_RUN_KEY = pytest.StashKey[str]()
_NOTES_KEY = pytest.StashKey[list[str]]()
_TARGETS_KEY = pytest.StashKey[list["CaseTarget"]]()
_MISSING_KEY = pytest.StashKey[list[internals.Missing]]()
_ACTIVE_KEY = pytest.StashKey[bool]()
# a test that uses one of these fixtures is a gpubench case; a session without one hears nothing from gpubench
GPUBENCH_FIXTURES = frozenset({"device", "gpubench_config", "gpubench_probe", "gpubench_run_id"})
TARGET_MODES = ("report", "enforce")

MARKERS = {
    "gpu": "needs at least one usable CUDA GPU (skipped otherwise, naming why)",
    "multi_gpu": "needs at least two usable CUDA GPUs (skipped otherwise, naming why)",
    "distributed": "needs torch.distributed (skipped otherwise, naming why)",
}


@dataclass(frozen=True)
class BenchDevice:
    """The device a test runs on. ``name`` is where it runs; ``requested`` what the config asked for."""

    name: str
    requested: str
    fallback_note: str = ""
    identity: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def torch_device(self) -> torch.device:
        import torch  # on use: this plugin loads in every pytest session here, most of which need no torch

        return torch.device(self.name)

    @property
    def is_cuda(self) -> bool:
        return self.name.startswith("cuda")

    def __str__(self) -> str:
        return self.name


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gpubench", "gpubench: GPU verification and benchmarks")
    group.addoption(
        "--gpubench-config",
        metavar="FILE",
        default=None,
        help="dl.config.sdn to use instead of ./dl.config.sdn",
    )
    group.addoption(
        "--gpubench-devices",
        metavar="LIST",
        default=None,
        help="devices to run on, e.g. cuda:0,cuda:1 or cpu (default: the config's bench.devices, else dl.device)",
    )
    group.addoption(
        "--gpubench-targets",
        choices=TARGET_MODES,
        default="report",
        help="report: show the cases' targets as met/missed, exit status unaffected (default); "
        "enforce: a missed target makes the run exit 1",
    )
    compare_gate.add_option(group)


class CaseTimeout(Exception):
    """A benchmark case ran past ``bench.case_timeout_s``."""


def _make_saves_atomic(config: pytest.Config) -> None:
    if any(m.key in (internals.SESSION, internals.STORAGE) for m in config.stash.get(_MISSING_KEY, [])):
        return
    saves.make_atomic(getattr(config, "_benchmarksession", None))


# The signal that interrupted the last session (2 or 15), None when none did: `gpubench bench` reads it to
# exit 130 or 143 (pytest itself returns its "interrupted" code for both).
interrupted_by: int | None = None
_TERMINATED = "terminated by signal"


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    # pytest treats KeyboardInterrupt as an interrupted session and still runs sessionfinish,
    # where pytest-benchmark saves the cases that completed.
    raise KeyboardInterrupt(f"{_TERMINATED} {signum}")


_previous_sigterm: list[Any] = []


_KEPT_KEY = pytest.StashKey[str]()


def _kept(config: pytest.Config) -> str:
    """What an interrupted session kept, in words."""
    session = getattr(config, "_benchmarksession", None)
    saving = bool(getattr(session, "save", None) or getattr(session, "autosave", None))
    count = len(getattr(session, "benchmarks", None) or [])
    # FileStorage.path, not .location: .location is relative to the working folder and raises ValueError for
    # a --results-dir outside it (an interrupted run then ended in a traceback, exit 1).
    storage = getattr(getattr(session, "storage", None), "path", "")
    if not saving or not count:
        return "no benchmark case had completed; nothing saved" if saving else "nothing to save (no --benchmark-save)"
    return f"{count} completed case(s) saved under {storage}"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Say what an interrupted session kept (one line); restore the SIGTERM handler from before the
    session (``gpubench bench`` runs pytest in its own process)."""
    if interrupted_by is not None and config.stash.get(_ACTIVE_KEY, True):
        kept = config.stash.get(_KEPT_KEY, "interrupted before the run started; nothing saved")
        print(f"gpubench: interrupted: {kept}", file=sys.stderr)
    if _previous_sigterm and threading.current_thread() is threading.main_thread():
        previous = _previous_sigterm.pop()
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def pytest_keyboard_interrupt(excinfo: Any) -> None:
    global interrupted_by
    exc = excinfo.value
    terminated = getattr(exc, "signum", None) == signal.SIGTERM or str(exc).startswith(_TERMINATED)
    interrupted_by = signal.SIGTERM if terminated else signal.SIGINT


def is_gpubench_case(item: pytest.Item) -> bool:
    """Whether the test uses one of gpubench's fixtures (``device``, ``gpubench_config``...)."""
    return not GPUBENCH_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


def gpubench_active(config: pytest.Config) -> bool:
    """Whether this session runs gpubench cases: after collection, whether one was collected; before it,
    whether gpubench was configured (a config file, ``GPUBENCH_*`` variables or ``--gpubench-*`` flags)."""
    if _ACTIVE_KEY in config.stash:
        return config.stash[_ACTIVE_KEY]
    cfg = gpubench_config_for(config)
    return bool(cfg.files or cfg.sources)


def pytest_collection_finish(session: pytest.Session) -> None:
    killpoints.reached("bench.collection")
    session.config.stash[_ACTIVE_KEY] = any(is_gpubench_case(item) for item in session.items)


def _unsaved_cases(config: pytest.Config) -> list[str]:
    """Drop the cases interrupted before their first round from what pytest-benchmark saves.

    Its save builds one JSON for the whole session and ``Stats.min`` raises on a case without rounds, which
    would throw away every case that completed. Returns their names.
    """
    session = getattr(config, "_benchmarksession", None)
    benchmarks = getattr(session, "benchmarks", None)
    if not isinstance(benchmarks, list):
        return []
    empty = [b for b in benchmarks if not getattr(getattr(b, "stats", None), "data", None)]
    benchmarks[:] = [b for b in benchmarks if b not in empty]
    return [str(getattr(b, "fullname", getattr(b, "name", "?"))) for b in empty]


@pytest.hookimpl(wrapper=True, tryfirst=True)  # around pytest-benchmark's save
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Any:
    """Save what completed, whole: an interrupt that arrives while saving is held until the save is done."""
    global interrupted_by
    notes = session.config.stash.setdefault(_NOTES_KEY, [])
    if gpubench_active(session.config):
        _make_saves_atomic(session.config)
    dropped = _unsaved_cases(session.config)
    if dropped:
        notes.append(f"gpubench: left out of the saved run (interrupted before a round): {', '.join(dropped)}")
    # judged before pytest's own wrapper prints the terminal summary, which shows the verdicts
    compare_gate.enforce(session, gpubench_config_for(session.config))
    held: list[int] = []
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda number, frame: held.append(number))
    try:
        killpoints.reached("bench.sessionfinish")
        result = yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
    if held:
        interrupted_by = held[0]
        session.exitstatus = pytest.ExitCode.INTERRUPTED
    if interrupted_by is not None:
        session.config.stash[_KEPT_KEY] = _kept(session.config)
    _enforce_targets(session)
    return result


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    global interrupted_by
    interrupted_by = None
    config.stash[_MISSING_KEY] = internals.missing_internals(config)
    # pytest-benchmark saves what completed when the session is interrupted
    if config.pluginmanager.hasplugin("benchmark") and threading.current_thread() is threading.main_thread():
        _previous_sigterm.append(signal.signal(signal.SIGTERM, _sigterm_as_interrupt))
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    config.stash.setdefault(_NOTES_KEY, [])
    # Read the configuration now: a bad file or --gpubench-devices is a usage error (exit 4, one
    # message naming file:line:column), not an error in the middle of collection.
    gpubench_config_for(config)
    compare_gate.configure(config)
    killpoints.reached("bench.configure")


def _flags(config: pytest.Config) -> dict[str, Any]:
    devices = config.getoption("--gpubench-devices", default=None)
    if not devices:
        return {}
    try:
        names = [spec.name for spec in parse_device_list(devices)]
    except DeviceError as exc:
        msg = f"--gpubench-devices: {exc}"
        raise pytest.UsageError(msg) from None
    return {"bench.devices": names}


def gpubench_config_for(config: pytest.Config) -> Config:
    """The effective gpubench configuration for this pytest run (read once)."""
    if _CONFIG_KEY not in config.stash:
        try:
            loaded = load_config(config.getoption("--gpubench-config", default=None), flags=_flags(config))
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[_CONFIG_KEY] = loaded
        config.stash.setdefault(_NOTES_KEY, []).extend(loaded.warnings)
    return config.stash[_CONFIG_KEY]


def probe_for(config: pytest.Config) -> CudaProbe:
    """What PyTorch and NVML see (probed once per pytest run)."""
    if _PROBE_KEY not in config.stash:
        config.stash[_PROBE_KEY] = probe_cuda()
    return config.stash[_PROBE_KEY]


def run_id_for(config: pytest.Config) -> str:
    if _RUN_KEY not in config.stash:
        config.stash[_RUN_KEY] = os.environ.get("GPUBENCH_RUN_ID") or new_run_id()
    return config.stash[_RUN_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" not in metafunc.fixturenames:
        return
    names = [parse_device(d).name for d in gpubench_config_for(metafunc.config).bench_devices()]
    metafunc.parametrize("device", names, ids=names, indirect=True)


def resolve_bench_device(requested: str, cfg: Config, probe: CudaProbe) -> BenchDevice | str:
    """A :class:`BenchDevice` for ``requested``, or the skip reason when it cannot run.

    The fallback device is used only when it is not already among the compared devices: comparing
    ``cuda:0`` with ``cuda:0`` under another name would be a lie.
    """
    spec = parse_device(requested)
    resolved = resolve(spec, probe, cfg.bench.fallback)
    if resolved.unusable is None:
        return BenchDevice(spec.name, spec.name, "", device_identity(spec.name, probe))
    compared = {parse_device(d).name for d in cfg.bench_devices()}
    if resolved.device is None:
        return f"{spec.name} skipped: {resolved.unusable} (bench.fallback is 'none')"
    if resolved.device.name in compared:
        return f"{spec.name} skipped: {resolved.unusable} ({resolved.device.name} is already compared)"
    target = resolved.device.name
    return BenchDevice(target, spec.name, resolved.note, device_identity(target, probe))


@pytest.fixture
def device(request: pytest.FixtureRequest) -> BenchDevice:
    """The device under test (parametrized by the plugin over the configured devices)."""
    requested = getattr(request, "param", None)
    cfg = gpubench_config_for(request.config)
    if requested is None:
        requested = cfg.bench_devices()[0]
    outcome = resolve_bench_device(str(requested), cfg, probe_for(request.config))
    if isinstance(outcome, str):
        pytest.skip(outcome)
    if outcome.fallback_note:
        notes = request.config.stash.setdefault(_NOTES_KEY, [])
        if outcome.fallback_note not in notes:
            notes.append(outcome.fallback_note)
    if "benchmark" in request.fixturenames:
        bench = request.getfixturevalue("benchmark")
        timer = [m for m in request.config.stash.get(_MISSING_KEY, []) if m.key == internals.TIMER]
        if timer and not getattr(bench, "disabled", False):
            pytest.skip(timer[0].message())
        bench.extra_info.update(
            {
                "device": outcome.name,
                "requested_device": outcome.requested,
                "fallback_note": outcome.fallback_note,
                "gpu": outcome.identity,
            }
        )
    return outcome


@pytest.fixture(scope="session")
def gpubench_config(request: pytest.FixtureRequest) -> Config:
    """The effective configuration (flags > environment > ./dl.config.sdn > user config > defaults)."""
    return gpubench_config_for(request.config)


@pytest.fixture(scope="session")
def gpubench_probe(request: pytest.FixtureRequest) -> CudaProbe:
    """What PyTorch and NVML can see in this process."""
    return probe_for(request.config)


@pytest.fixture(scope="session")
def gpubench_run_id(request: pytest.FixtureRequest) -> str:
    """One id per pytest run: names telemetry traces and result files of this run."""
    return run_id_for(request.config)


def usable_gpus(probe: CudaProbe) -> int:
    return probe.device_count if probe.cuda_available else 0


def marker_skip_reason(marker: str, probe: CudaProbe) -> str | None:
    """Why a test with this marker cannot run here, or None when it can."""
    if marker == "gpu" and usable_gpus(probe) < 1:
        problem = why_unusable(parse_device("cuda:0"), probe)
        return f"needs a CUDA GPU: {problem.reason if problem else 'none visible'}"
    if marker == "multi_gpu" and usable_gpus(probe) < 2:
        problem = why_unusable(parse_device("cuda:1"), probe)
        return f"needs two CUDA GPUs: {problem.reason if problem else f'{usable_gpus(probe)} visible'}"
    if marker == "distributed":
        try:
            import torch.distributed as dist  # on use, as in torch_device: most sessions need no torch
        except Exception as exc:
            return f"needs torch.distributed: cannot import it ({exc})"
        if not dist.is_available():
            return "needs torch.distributed: this PyTorch build was compiled without it"
    return None


class CaseOutOfMemory(Exception):
    """A benchmark case could not allocate what its size needs (device or host memory)."""


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Per device case: stop it past ``bench.case_timeout_s``; name the size when it runs out of memory.

    A SIGALRM timer interrupts Python code; a hang inside one C call (a stuck CUDA kernel) is only
    interrupted when that call returns, which this mechanism cannot force. Either failure ends only
    this case: the others still run and pytest-benchmark still saves them.
    """
    if "device" not in getattr(item, "fixturenames", ()):
        return (yield)
    killpoints.reached("bench.case.call")
    limit = gpubench_config_for(item.config).bench.case_timeout_s
    timed = (limit > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
             and timeout_owner(item.config, item) is None)

    def expire(signum: int, frame: Any) -> None:
        msg = (
            f"{item.nodeid} timed out after {limit:g} s (bench.case_timeout_s). Fix: raise the limit with "
            "--set bench.case_timeout_s=SECONDS, or use smaller sizes"
        )
        raise CaseTimeout(msg)

    previous = signal.signal(signal.SIGALRM, expire) if timed else None
    if timed:
        signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        result = yield
        killpoints.reached("bench.case.call.end")
        return result
    except KeyboardInterrupt:  # saved with the rounds it has (if any), marked as cut short
        extra = getattr(getattr(item, "funcargs", {}).get("benchmark"), "extra_info", None)
        if isinstance(extra, dict):
            extra["interrupted"] = True
        raise
    except Exception as exc:
        if not _is_out_of_memory(exc):
            raise
        params = getattr(getattr(item, "callspec", None), "params", {})
        shown = ", ".join(f"{k}={v}" for k, v in params.items()) or item.name
        msg = (
            f"{item.nodeid}: out of memory with {shown} ({type(exc).__name__}: {str(exc).splitlines()[0]}). "
            "Fix: use smaller sizes for this device (bench section of dl.config.sdn)"
        )
        raise CaseOutOfMemory(msg) from exc
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def timeout_owner(config: pytest.Config, item: pytest.Item | None = None) -> str | None:
    """``"pytest-timeout (signal method, N s)"`` when the pytest-timeout plugin limits the cases with
    SIGALRM (the alarm gpubench's own limit would use), for the session or for ``item`` by its ``timeout``
    marker; None when it does not, and gpubench arms its own."""
    if not config.pluginmanager.hasplugin("timeout"):
        return None
    try:
        from pytest_timeout import get_env_settings  # public in pytest-timeout 1.x and 2.x

        settings = get_env_settings(config)
    except Exception:  # a pytest-timeout without it: assume it may use the alarm
        return "pytest-timeout"
    method = getattr(settings, "method", None)
    timeout = getattr(settings, "timeout", None)
    marker = item.get_closest_marker("timeout") if item is not None else None
    if marker is not None:
        method = marker.kwargs.get("method", method)
        timeout = marker.kwargs.get("timeout", marker.args[0] if marker.args else timeout)
    if method != "signal" or not timeout or float(timeout) <= 0:
        return None
    return f"pytest-timeout (signal method, {float(timeout):g} s)"


def pytest_runtest_setup(item: pytest.Item) -> None:
    killpoints.reached("bench.case.setup")
    for marker in ("gpu", "multi_gpu", "distributed"):
        if item.get_closest_marker(marker) is not None:
            reason = marker_skip_reason(marker, probe_for(item.config))
            if reason:
                pytest.skip(reason)


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    """Add GPU inventory, versions and the effective configuration to pytest-benchmark's machine_info
    (in a session that runs gpubench cases only: another project's runs are saved as it wrote them)."""
    if not gpubench_active(config):
        return
    cfg = gpubench_config_for(config)
    # No run id here: pytest-benchmark warns on every compare whose machine_info differs, and a
    # per-run value would make that warning fire always. The run id goes to the top level instead.
    machine_info["gpubench"] = {
        "environment": environment(probe_for(config)),
        "config": cfg.as_dict(),
        "config_files": list(cfg.files),
        "config_sources": dict(cfg.sources),
    }


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    """The run id at the top level of the saved JSON (names this run's telemetry traces)."""
    if gpubench_active(config):
        output_json["gpubench"] = {"run_id": run_id_for(config)}


def pytest_benchmark_compare_machine_info(
    config: pytest.Config, benchmarksession: Any, machine_info: dict[str, Any], compared_benchmark: Any
) -> None:
    """Keep the saved run pytest-benchmark compares with, for ``--gpubench-compare-fail``."""
    compare_gate.remember(config, compared_benchmark)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """gpubench's header, after collection and only when a gpubench case was collected: the devices and
    config, any pytest-benchmark internal that is missing, and who owns the case time limit."""
    if not any(is_gpubench_case(item) for item in items):
        return []
    lines = [m.message() for m in config.stash.get(_MISSING_KEY, [])]
    if config.option.verbose < 0 or getattr(config.option, "no_header", False):
        return lines
    cfg = gpubench_config_for(config)
    files = ", ".join(cfg.files) or "none (built-in defaults)"
    owner = timeout_owner(config)
    if owner and cfg.bench.case_timeout_s > 0:
        lines.append(f"gpubench: {owner} owns the case time limit; bench.case_timeout_s "
                     f"({cfg.bench.case_timeout_s:g} s) is not armed")
    return [f"gpubench: devices {', '.join(cfg.bench_devices())}; config {files}", *lines]


def _print_notes(terminalreporter: Any, config: pytest.Config) -> None:
    notes = config.stash.get(_NOTES_KEY, [])
    if notes and gpubench_active(config):
        terminalreporter.section("gpubench notes", sep="=", yellow=True, bold=True)
        for note in notes:
            terminalreporter.write_line(note, yellow=True, bold=note.startswith("FALLBACK"))


# --- targets: verdicts, enforced only on request -------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Collect the targets the case recorded (timed or under ``--benchmark-disable``)."""
    killpoints.reached("bench.case.teardown")
    compare_gate.record(item)
    bench = getattr(item, "funcargs", {}).get("benchmark")
    extra = getattr(bench, "extra_info", None)
    if not isinstance(extra, dict) or not extra.get("targets"):
        return
    device = str(extra.get("device") or "-")
    found = item.config.stash.setdefault(_TARGETS_KEY, [])
    found.extend(CaseTarget(item.name, device, t) for t in targets_of(extra))


def missed_targets(config: pytest.Config) -> list[CaseTarget]:
    collected = config.stash.get(_TARGETS_KEY, [])
    return [c for c in collected if c.target.met is False]


def _enforce_targets(session: pytest.Session) -> None:
    if session.config.getoption("--gpubench-targets", default="report") != "enforce":
        return
    if missed_targets(session.config) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(wrapper=True)  # after every other summary: pytest-benchmark's and the throughput table
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> Any:
    try:
        killpoints.reached("bench.summary")
        return (yield)
    finally:  # also when pytest-benchmark's --benchmark-compare-fail raises its PerformanceRegression
        compare_gate.print_verdicts(terminalreporter, config)
        _print_targets(terminalreporter, config)
        _print_notes(terminalreporter, config)


def _print_targets(terminalreporter: Any, config: pytest.Config) -> None:
    collected = config.stash.get(_TARGETS_KEY, [])
    if not collected:
        return
    mode = config.getoption("--gpubench-targets", default="report")
    terminalreporter.write_sep("-", f"gpubench targets (--gpubench-targets={mode})")
    for text in format_targets_table(collected):
        terminalreporter.write_line(text)
    lost = missed_targets(config)
    if mode == "enforce":
        for row in lost:
            terminalreporter.write_line(f"gpubench target missed (enforced): {row.describe()}", red=True, bold=True)
    elif lost:
        terminalreporter.write_line(
            f"gpubench targets: {len(lost)} missed, reported only (exit status unaffected; "
            "--gpubench-targets=enforce makes a missed target fail the run)", yellow=True)
