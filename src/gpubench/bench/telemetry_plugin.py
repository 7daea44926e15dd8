"""pytest plugin (entry point ``pytest11``: ``gpubench_telemetry``): telemetry around every benchmark.

For each test that uses both ``benchmark`` and ``device`` (the gpubench plugin's fixture), a
:class:`gpubench.telemetry.Sampler` runs exactly around the test body (``pytest_runtest_call``), so fixture
set-up such as loading data is not in the trace. Afterwards the summary goes into
``benchmark.extra_info["telemetry"]`` with ``trace``: the CSV written under
``<results.dir>/telemetry/<run_id>/<test>.csv`` (relative when ``results.dir`` is, as by default).

After pytest-benchmark's own table, in a session where such a test ran, the terminal summary prints a short
throughput table with the ``extra_info`` columns pytest-benchmark cannot show (items/s, GB/s, TFLOP/s,
utilization, power), and one line per device whose telemetry was not available (for example: no NVIDIA
driver), which is not an error. Another project's session, with no such test, hears nothing from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gpubench import killpoints
from gpubench.results import ResultPathError, new_run_id, safe_child
from gpubench.telemetry import DEFAULT_INTERVAL_MS, Sampler, trace_name

_PLAN_KEY = pytest.StashKey["_Plan"]()
_UNAVAILABLE_KEY = pytest.StashKey[dict[str, str]]()
_RUN_ID_KEY = pytest.StashKey[str]()
_SEEN_KEY = pytest.StashKey[bool]()  # a test used ``benchmark`` and ``device``: a gpubench session


@dataclass
class _Plan:
    """What one benchmark's telemetry needs, resolved from fixtures before the test body runs."""

    sampler: Sampler | None
    extra_info: dict[str, Any]
    results_dir: Path
    run_id: str
    nodeid: str
    disabled_reason: str | None = None
    finished: bool = False

    def start(self) -> None:
        if self.sampler is not None:
            self.sampler.start()
            killpoints.reached("bench.telemetry.start")

    def finish(self, config: pytest.Config) -> None:
        if self.finished:
            return
        killpoints.reached("bench.telemetry.stop")
        self.finished = True
        if self.sampler is None:
            self.extra_info["telemetry"] = {
                "available": False,
                "status": "disabled",
                "unavailable_reason": self.disabled_reason,
            }
            return
        self.sampler.stop()
        summary = self.sampler.summary()
        summary["trace"] = None
        if self.sampler.available:
            relative = Path("telemetry", self.run_id, trace_name(self.nodeid))
            try:
                target = safe_child(self.results_dir, *relative.parts)
                self.sampler.write_trace(target)
                summary["trace"] = (self.results_dir / relative).as_posix()
                summary["trace_in_results"] = relative.as_posix()
            except (OSError, ResultPathError) as exc:
                summary["trace_error"] = f"trace not written: {exc}"
        else:
            lines = config.stash.setdefault(_UNAVAILABLE_KEY, {})
            lines.setdefault(self.sampler.device, str(summary.get("unavailable_reason")))
        self.extra_info["telemetry"] = summary


def _fixture(request: pytest.FixtureRequest, name: str) -> Any:
    """A fixture value, or None when no plugin provides it (the gpubench plugin may be disabled)."""
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        return None


def _plan(request: pytest.FixtureRequest) -> _Plan | None:
    bench = request.getfixturevalue("benchmark")
    if getattr(bench, "disabled", False):
        return None  # --benchmark-disable: the body runs once as a plain test; nothing is saved
    device = request.getfixturevalue("device")
    cfg = _fixture(request, "gpubench_config")
    run_id = _fixture(request, "gpubench_run_id")
    if not run_id:
        run_id = request.config.stash.setdefault(_RUN_ID_KEY, new_run_id())
    telemetry = getattr(cfg, "telemetry", None)
    enabled = bool(getattr(telemetry, "enabled", True))
    interval_ms = getattr(telemetry, "interval_ms", DEFAULT_INTERVAL_MS)
    results_dir = Path(getattr(getattr(cfg, "results", None), "dir", "results"))
    name = str(getattr(device, "name", device))
    identity = getattr(device, "identity", None) or {}
    uuid = identity.get("uuid") if isinstance(identity, Mapping) else None
    sampler = Sampler(name, uuid, interval_ms / 1000.0) if enabled else None
    return _Plan(
        sampler=sampler,
        extra_info=bench.extra_info,
        results_dir=results_dir,
        run_id=str(run_id),
        nodeid=request.node.nodeid,
        disabled_reason=None if enabled else "telemetry.enabled is false",
    )


@pytest.fixture(autouse=True)
def _gpubench_telemetry(request: pytest.FixtureRequest) -> Iterator[None]:
    """Prepares a sampler for tests that use ``benchmark`` and ``device``; the call hook runs it."""
    if "benchmark" not in request.fixturenames or "device" not in request.fixturenames:
        yield
        return
    request.config.stash[_SEEN_KEY] = True
    plan = _plan(request)
    if plan is None:
        yield
        return
    request.node.stash[_PLAN_KEY] = plan
    yield
    plan.finish(request.config)  # in case the call phase never ran (a failing fixture after ours)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    plan = item.stash.get(_PLAN_KEY, None)
    if plan is None:
        return (yield)
    plan.start()
    try:
        return (yield)
    finally:
        plan.finish(item.config)


# --- the throughput table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ThroughputRow:
    """One benchmark's throughput figures; None where the benchmark did not record them."""

    name: str
    device: str
    items_per_s: float | None
    gbps: float | None
    tflops: float | None
    util_pct: float | None
    power_w: float | None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def throughput_rows(benchmarks: Iterable[Any]) -> list[ThroughputRow]:
    """Rows from pytest-benchmark's benchmarks (anything with ``group``, ``name``, ``extra_info``)."""
    rows = []
    for bench in benchmarks:
        extra = getattr(bench, "extra_info", None) or {}
        tele = extra.get("telemetry") or {}
        group = getattr(bench, "group", None)
        name = str(getattr(bench, "name", "?"))
        rows.append(
            ThroughputRow(
                name=f"{group}/{name}" if group else name,
                device=str(extra.get("device") or tele.get("device") or "-"),
                items_per_s=_num(extra.get("items_per_s")),
                gbps=_num(extra.get("gbps")),
                tflops=_num(extra.get("tflops")),
                util_pct=_num(tele.get("util_pct_mean")),
                power_w=_num(tele.get("power_w_mean")),
            )
        )
    return sorted(rows, key=lambda r: r.name)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


HEADERS = ("Name (group/name)", "device", "items/s", "GB/s", "TFLOP/s", "util % (mean)", "power W (mean)")


def format_throughput_table(rows: Iterable[ThroughputRow]) -> list[str]:
    """Text lines of the throughput table, columns aligned; ``-`` where a value is absent."""
    cells = [
        (
            r.name,
            r.device,
            _fmt(r.items_per_s),
            _fmt(r.gbps),
            _fmt(r.tflops),
            _fmt(r.util_pct),
            _fmt(r.power_w),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(HEADERS)]

    def line(values: tuple[str, ...]) -> str:
        left = [values[0].ljust(widths[0]), values[1].ljust(widths[1])]
        right = [v.rjust(w) for v, w in zip(values[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    return [line(HEADERS), "-" * len(line(HEADERS)), *(line(c) for c in cells)]


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own table, printed in its terminal summary
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not config.stash.get(_SEEN_KEY, False):
        return  # no gpubench benchmark ran (another project's session): nothing to add
    session = getattr(config, "_benchmarksession", None)
    benchmarks = [b for b in getattr(session, "benchmarks", None) or [] if b]
    if benchmarks:
        terminalreporter.write_sep("-", "gpubench throughput (from extra_info)")
        for text in format_throughput_table(throughput_rows(benchmarks)):
            terminalreporter.write_line(text)
    for device, reason in sorted(config.stash.get(_UNAVAILABLE_KEY, {}).items()):
        terminalreporter.write_line(f"gpubench telemetry: {device}: {reason}", yellow=True)
