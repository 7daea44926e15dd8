"""Check ``under_load``: clocks, temperature, PCIe link and XID events while a matmul burn keeps the GPU busy.

The check polls NVML itself (clock event reasons, temperature, PCIe link) in a small thread: a few readings
every ``interval_s``, enough to decide; the full telemetry sampler lives in :mod:`gpubench.telemetry`. The
clock event reasons are NVML's ``nvmlClocksEventReason*`` bits (the ``clocks_event_reasons.*`` fields of
``nvidia-smi --query-gpu``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpubench import nvml
from gpubench.devices import CudaProbe, DeviceSpec, dtype_support, torch_dtype_name
from gpubench.verify.context import DecidedNow, DeviceContext
from gpubench.verify.pcie import PcieLink, read_pcie_link
from gpubench.verify.probing import (
    LOST_REMEDY,
    as_int,
    error_text,
    gpu_lost,
    handle_or_error,
    sync,
    torch_device,
    torch_module,
)
from gpubench.verify.verdicts import CheckResult, CheckSpec, Findings, Verdict, readings_dict

# NVML constants (nvml.h); spelled out so that importing a check does not import pynvml.
NVML_TEMPERATURE_GPU = 0
NVML_TEMPERATURE_THRESHOLD_SHUTDOWN = 0
NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
NVML_TEMPERATURE_THRESHOLD_GPU_MAX = 3
NVML_EVENT_TYPE_XID_CRITICAL_ERROR = 0x8


class ClockEventReasons(int):
    """NVML's clock event (throttle) reason bitmask, ``nvidia-smi --query-gpu=clocks_event_reasons.active``.

    Names and bits are :data:`gpubench.nvml.CLOCK_EVENT_REASONS`, read from pynvml's ``nvmlClocksEventReason*``
    constants (``nvmlClocksThrottleReason*`` on older nvidia-ml-py): one table shared with telemetry.
    """

    GPU_IDLE = nvml.clock_event_reason_bit("gpu_idle")
    SW_POWER_CAP = nvml.clock_event_reason_bit("sw_power_cap")
    HW_SLOWDOWN = nvml.clock_event_reason_bit("hw_slowdown")
    SW_THERMAL_SLOWDOWN = nvml.clock_event_reason_bit("sw_thermal_slowdown")
    HW_THERMAL_SLOWDOWN = nvml.clock_event_reason_bit("hw_thermal_slowdown")
    HW_POWER_BRAKE_SLOWDOWN = nvml.clock_event_reason_bit("hw_power_brake_slowdown")

    NAMES: Mapping[int, str] = {bit: name for name, bit in nvml.CLOCK_EVENT_REASONS}
    #: Reasons that mean the GPU is being held back by heat or by its power delivery: FAIL under load.
    FAILING = HW_SLOWDOWN | SW_THERMAL_SLOWDOWN | HW_THERMAL_SLOWDOWN | HW_POWER_BRAKE_SLOWDOWN
    #: The software power cap: the board reached its power limit (common under a full burn): WARN.
    WARNING = SW_POWER_CAP

    def names(self) -> tuple[str, ...]:
        return nvml.decode_clock_event_reasons(int(self))

    def __repr__(self) -> str:
        return f"ClockEventReasons(0x{int(self):x}: {', '.join(self.names()) or 'none'})"


@dataclass(frozen=True)
class LoadReading:
    """Telemetry sampled from NVML during a matmul burn. Temperatures degC, seconds, TFLOP/s.

    ``reasons_seen`` is the OR of the clock event reasons over all samples; ``reason_samples`` counts
    the samples
    in which each failing/warning reason was active. ``link`` is the narrowest link seen under load.
    ``xid_events`` is None when XID events cannot be registered (unsupported, or no permission).
    """

    device: str
    seconds: float
    samples: int
    reasons_seen: int | None
    reason_samples: Mapping[str, int] = field(default_factory=dict)
    peak_temp_c: int | None = None
    slowdown_temp_c: int | None = (
        None  # nvidia-smi temperature.gpu.tlimit basis: NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
    )
    shutdown_temp_c: int | None = None
    gpu_max_temp_c: int | None = None  # NVML_TEMPERATURE_THRESHOLD_GPU_MAX: max operating temperature
    link: PcieLink = field(default_factory=PcieLink)
    replay_before: int | None = None  # nvmlDeviceGetPcieReplayCounter
    replay_after: int | None = None
    xid_events: tuple[int, ...] | None = None
    tflops: float | None = None
    nonfinite: bool = False
    error: str | None = None
    nvml_error: str | None = None
    lost: str | None = None  # NVML's error when the GPU stopped answering during the burn


# --- the burn and its poller ----------------------------------------------------------------------


def clock_event_reasons(handle: Any) -> int | None:
    """The active clock event reasons bitmask (:func:`gpubench.nvml.clock_event_reasons`), None when N/A."""
    try:
        return nvml.clock_event_reasons(handle)
    except Exception:  # NotSupported, NVML gone: the reading is N/A
        return None


class _LoadPoller:
    """Polls NVML for the under-load decision in a background thread (every ``interval_s`` seconds)."""

    def __init__(self, handle: Any, interval_s: float) -> None:
        self.handle = handle
        self.interval_s = interval_s
        self.samples = 0
        self.reasons: int | None = None
        self.reason_samples: dict[str, int] = {}
        self.peak_temp: int | None = None
        self.best_gen: int | None = None
        self.best_width: int | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpubench-under-load", daemon=True)

    def sample(self) -> None:
        reasons = clock_event_reasons(self.handle)
        raw_temp, error = nvml.call_or_error("nvmlDeviceGetTemperature", self.handle, NVML_TEMPERATURE_GPU)
        temp = as_int(raw_temp)
        if gpu_lost(error) and self.lost is None:
            self.lost = error
        gen = as_int(nvml.call("nvmlDeviceGetCurrPcieLinkGeneration", self.handle))
        width = as_int(nvml.call("nvmlDeviceGetCurrPcieLinkWidth", self.handle))
        self.samples += 1
        if reasons is not None:
            self.reasons = (self.reasons or 0) | reasons
            for name in ClockEventReasons(reasons).names():
                self.reason_samples[name] = self.reason_samples.get(name, 0) + 1
        if temp is not None:
            self.peak_temp = temp if self.peak_temp is None else max(self.peak_temp, temp)
        # the best link seen under load: an idle link trains down to save power, a broken one never trains up
        if gen is not None:
            self.best_gen = gen if self.best_gen is None else max(self.best_gen, gen)
        if width is not None:
            self.best_width = width if self.best_width is None else max(self.best_width, width)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> _LoadPoller:
        self.sample()  # at least one sample at each end, however short the burn
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.sample()


def _xid_set(handle: Any) -> Any:
    """An NVML event set registered for XID critical errors on ``handle``, or None (unsupported / no
    permission).
    """
    es, error = nvml.call_or_error("nvmlEventSetCreate")
    if error is not None:
        return None
    _, error = nvml.call_or_error("nvmlDeviceRegisterEvents", handle, NVML_EVENT_TYPE_XID_CRITICAL_ERROR, es)
    if error is not None:
        nvml.call("nvmlEventSetFree", es)
        return None
    return es


def _drain_xids(es: Any, limit: int = 64) -> tuple[int, ...]:
    xids: list[int] = []
    for _ in range(limit):
        data, error = nvml.call_or_error("nvmlEventSetWait_v2", es, 1)
        if error is not None:  # NVML_ERROR_TIMEOUT: no more events
            break
        if int(getattr(data, "eventType", 0)) & NVML_EVENT_TYPE_XID_CRITICAL_ERROR:
            xids.append(int(getattr(data, "eventData", 0)))
    nvml.call("nvmlEventSetFree", es)
    return tuple(xids)


def run_burn(
    device: str, uuid: str | None, seconds: float, dtype: str = "f32", n: int = 4096, interval_s: float = 0.1
) -> LoadReading:
    """A sustained n x n matmul loop for ``seconds`` while NVML is polled; returns what the poller saw."""
    torch = torch_module()
    dev = torch_device(device)
    handle, nvml_error = handle_or_error(uuid)
    if nvml_error is not None and nvml.init() is None:
        nvml_error = f"NVML has no device with UUID {uuid} ({nvml_error})"
    handle = nvml.whole_gpu(handle)  # clocks, temperature and link are the GPU's, also for a MIG instance
    thresholds = {
        key: as_int(nvml.call("nvmlDeviceGetTemperatureThreshold", handle, kind))
        if nvml_error is None
        else None
        for key, kind in (
            ("slowdown", NVML_TEMPERATURE_THRESHOLD_SLOWDOWN),
            ("shutdown", NVML_TEMPERATURE_THRESHOLD_SHUTDOWN),
            ("gpu_max", NVML_TEMPERATURE_THRESHOLD_GPU_MAX),
        )
    }
    link0 = read_pcie_link(handle) if nvml_error is None else PcieLink()
    replay_before = (
        as_int(nvml.call("nvmlDeviceGetPcieReplayCounter", handle)) if nvml_error is None else None
    )
    es = _xid_set(handle) if nvml_error is None else None
    tdtype = getattr(torch, torch_dtype_name(dtype))
    poller = _LoadPoller(handle, interval_s)
    error = None
    iters = 0
    elapsed = 0.0
    nonfinite = False
    try:
        a = torch.randn(n, n, device=dev).to(tdtype)
        b = torch.randn(n, n, device=dev).to(tdtype) / n**0.5
        c = torch.empty(n, n, device=dev, dtype=tdtype)
        torch.matmul(a, b, out=c)
        sync(dev)
        with poller if nvml_error is None else contextlib.nullcontext():
            start = time.perf_counter()
            while True:
                for _ in range(8):
                    torch.matmul(a, b, out=c)
                iters += 8
                sync(dev)  # bounds the queue so the loop ends close to ``seconds``
                elapsed = time.perf_counter() - start
                if elapsed >= seconds:
                    break
        nonfinite = not bool(torch.isfinite(c).all().item())
    except (RuntimeError, MemoryError) as exc:
        error = error_text(exc)
    xids = _drain_xids(es) if es is not None else None
    replay_after = as_int(nvml.call("nvmlDeviceGetPcieReplayCounter", handle)) if nvml_error is None else None
    return LoadReading(
        device=device,
        seconds=round(elapsed, 3),
        samples=poller.samples,
        reasons_seen=poller.reasons,
        reason_samples=dict(poller.reason_samples),
        peak_temp_c=poller.peak_temp,
        slowdown_temp_c=thresholds["slowdown"],
        shutdown_temp_c=thresholds["shutdown"],
        gpu_max_temp_c=thresholds["gpu_max"],
        link=PcieLink(poller.best_gen, poller.best_width, link0.max_gen, link0.max_width, link0.gpu_max_gen),
        replay_before=replay_before,
        replay_after=replay_after,
        xid_events=xids,
        tflops=round(2 * n**3 * iters / elapsed / 1e12, 3) if elapsed > 0 and iters else None,
        nonfinite=nonfinite,
        error=error,
        nvml_error=nvml_error,
        lost=poller.lost or (nvml_error if gpu_lost(nvml_error) else None),
    )


# --- decision -------------------------------------------------------------------------------------

_COOLING = (
    "check cooling (fans, airflow, dust, room temperature) and the power supply; "
    "see nvidia-smi -q -d PERFORMANCE."
)


def decide_under_load(
    r: LoadReading, temp_margin_c: float = 5.0, pcie_min_width_fraction: float = 1.0
) -> CheckResult:
    """FAIL on thermal/hardware/power-brake clock events, a temperature at its limit, a link at half width or
    less, XID events or a NaN during the burn; WARN on the software power cap, a temperature within
    ``temp_margin_c``
    of its limit, a link trained down in generation or below ``pcie_min_width_fraction`` of its width,
    and PCIe
    replays.
    """
    kw: dict[str, Any] = {
        "readings": readings_dict(r),
        "unit": "degC",
        "value": r.peak_temp_c,
        "threshold": r.gpu_max_temp_c or r.slowdown_temp_c,
    }
    if r.error and r.samples == 0:
        return CheckResult(
            "under_load", r.device, Verdict.SKIP, message=f"burn could not run: {r.error}", **kw
        )
    f = Findings()
    if r.lost:
        f.add(Verdict.FAIL, f"NVML lost the GPU during the burn: {r.lost}", LOST_REMEDY)
    if r.nonfinite:
        f.add(
            Verdict.FAIL, "the burn produced NaN/Inf from finite inputs", "the GPU computes wrongly: RMA it."
        )
    _clock_findings(f, r)
    _temperature_findings(f, r, temp_margin_c)
    _link_findings(f, r, pcie_min_width_fraction)
    _event_findings(f, r)
    link = r.link
    perf = f", {r.tflops:.1f} TFLOP/s" if r.tflops is not None else ""
    ok = (
        f"{r.seconds:.1f} s burn, {r.samples} samples: no slowdown events, peak "
        f"{r.peak_temp_c if r.peak_temp_c is not None else 'N/A'} degC, PCIe gen {link.gen or 'N/A'} "
        f"x{link.width or 'N/A'}{perf}"
    )
    if r.samples == 0 and r.nvml_error and not r.lost:
        return CheckResult(
            "under_load",
            r.device,
            Verdict.SKIP,
            message=f"burn ran but telemetry could not be read: {r.nvml_error}",
            **kw,
        )
    return f.result("under_load", r.device, ok, **kw)


def _clock_findings(f: Findings, r: LoadReading) -> None:
    """Clock event reasons seen during the burn: heat and power delivery FAIL, the power cap WARNs."""
    if r.reasons_seen is None:
        return
    reasons = ClockEventReasons(r.reasons_seen)
    bad = ClockEventReasons(reasons & ClockEventReasons.FAILING).names()
    if bad:
        counts = ", ".join(f"{n} in {r.reason_samples.get(n, '?')}/{r.samples} samples" for n in bad)
        f.add(Verdict.FAIL, f"clocks held back under load: {counts}", _COOLING)
    if reasons & ClockEventReasons.WARNING:
        n = r.reason_samples.get("sw_power_cap", "?")
        f.add(
            Verdict.WARN,
            f"software power cap active in {n}/{r.samples} samples (board at its power limit)",
            "normal at full load if brief; else check the power limit: nvidia-smi -q -d POWER.",
        )


def _temperature_findings(f: Findings, r: LoadReading, temp_margin_c: float) -> None:
    """The peak temperature against the max operating temperature (else the slowdown threshold)."""
    limit = r.gpu_max_temp_c or r.slowdown_temp_c
    if r.peak_temp_c is not None and limit is not None:
        if r.peak_temp_c >= limit:
            f.add(
                Verdict.FAIL,
                f"peak temperature {r.peak_temp_c} degC reached the limit {limit} degC",
                _COOLING,
            )
        elif r.peak_temp_c >= limit - temp_margin_c:
            f.add(
                Verdict.WARN,
                f"peak temperature {r.peak_temp_c} degC within {temp_margin_c:g} degC of the limit "
                f"{limit} degC",
                _COOLING,
            )
    elif r.peak_temp_c is None:
        f.note("temperature N/A")


def _link_findings(f: Findings, r: LoadReading, pcie_min_width_fraction: float) -> None:
    """The PCIe link under load against its maxima (width, generation), and replays during the burn."""
    link = r.link
    if link.width is not None and link.max_width:
        if link.width * 2 <= link.max_width:
            f.add(
                Verdict.FAIL,
                f"PCIe link x{link.width} under load, the link allows x{link.max_width}",
                "reseat the GPU or move it to a full-width slot; check the riser and BIOS lane settings.",
            )
        elif link.width < link.max_width * pcie_min_width_fraction:
            f.add(
                Verdict.WARN,
                f"PCIe link x{link.width} under load, below x{link.max_width}",
                "reseat the GPU; check the slot's lane wiring in the board manual.",
            )
    if link.gen is not None and link.max_gen is not None and link.gen < link.max_gen:
        f.add(
            Verdict.WARN,
            f"PCIe link gen {link.gen} under load, the link allows gen {link.max_gen}",
            "reseat the GPU; check BIOS PCIe speed settings and the riser.",
        )
    if link.gpu_max_gen and link.max_gen and link.max_gen < link.gpu_max_gen:
        f.note(f"slot limits the link to gen {link.max_gen} (GPU supports gen {link.gpu_max_gen})")
    if r.replay_before is not None and r.replay_after is not None and r.replay_after > r.replay_before:
        f.add(
            Verdict.WARN,
            f"{r.replay_after - r.replay_before} PCIe replays during the burn (link errors)",
            "reseat the GPU and its riser; check `nvidia-smi -q -d PCIE` over time.",
        )


def _event_findings(f: Findings, r: LoadReading) -> None:
    """XID events during the burn, and what could not be read or run."""
    if r.xid_events:
        f.add(
            Verdict.FAIL,
            f"XID event(s) during the burn: {', '.join(map(str, r.xid_events))}",
            "look the XID up in NVIDIA's XID catalogue; check dmesg; reset the GPU.",
        )
    elif r.xid_events is None:
        f.note("XID events N/A")
    if r.nvml_error:
        f.note(f"telemetry N/A: {r.nvml_error}")
    if r.error:
        f.add(Verdict.WARN, f"burn stopped early: {r.error}", "rerun the check.")


# --- the check ------------------------------------------------------------------------------------


def burn_dtype(spec: DeviceSpec, probe: CudaProbe) -> str:
    """The burn's dtype: the first of bf16, f16 the device runs natively, else f32."""
    support = dtype_support(spec, probe)
    for dtype in ("bf16", "f16"):
        if support.get(dtype) is None:
            return dtype
    return "f32"


def verify(ctx: DeviceContext) -> CheckResult:
    v, plan = ctx.config.verify, ctx.plan
    reading = run_burn(ctx.device, ctx.uuid, plan.burn_seconds, burn_dtype(ctx.spec, ctx.probe), plan.burn_n)
    return decide_under_load(reading, v.temp_margin_c, v.pcie_min_width_fraction)


CHECK = DecidedNow(
    CheckSpec("under_load", "clocks, temperature, PCIe link and XIDs during a burn", cpu=False), verify
)
