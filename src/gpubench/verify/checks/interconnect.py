"""Check ``interconnect``: pinned host<->device copy bandwidth against what the PCIe link carries, and
peer copies between the GPUs of this run."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gpubench import devices, nvml
from gpubench.verify.context import DecidedAcrossDevices, Decision, DeviceContext
from gpubench.verify.pcie import PcieLink, pcie_gbps, read_pcie_link
from gpubench.verify.probing import error_text, gpu_handle, sync, time_calls, torch_device, torch_module
from gpubench.verify.verdicts import CheckResult, CheckSpec, Findings, Verdict, readings_dict


@dataclass(frozen=True)
class PeerReading:
    """Peer access and copy bandwidth from ``src`` to ``dst`` (GB/s)."""

    src: str
    dst: str
    access: bool | None  # torch.cuda.can_device_access_peer
    gbps: float | None
    error: str | None = None


@dataclass(frozen=True)
class InterconnectReading:
    """Pinned host<->device copy bandwidth (GB/s, one direction at a time) and the PCIe link it ran over."""

    device: str
    copy_bytes: int
    h2d_gbps: float | None
    d2h_gbps: float | None
    link: PcieLink = field(default_factory=PcieLink)
    peers: tuple[PeerReading, ...] = ()
    error: str | None = None


# --- measuring ------------------------------------------------------------------------------------


def measure_interconnect(device: str, uuid: str | None, nbytes: int, repeats: int) -> InterconnectReading:
    """Pinned host->device and device->host copy GB/s (best of ``repeats``), and the PCIe link right after."""
    torch = torch_module()
    dev = torch_device(device)
    try:
        # pinned host memory needs CUDA; a simulated GPU's copies (tests) run on cpu, from plain memory
        host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=dev.type == "cuda")
        gpu = torch.empty(nbytes, dtype=torch.uint8, device=dev)
        h2d = time_calls(dev, lambda: gpu.copy_(host, non_blocking=True), repeats)
        d2h = time_calls(dev, lambda: host.copy_(gpu, non_blocking=True), repeats)
    except (RuntimeError, MemoryError) as exc:
        return InterconnectReading(device, nbytes, None, None, error=error_text(exc))
    link = read_pcie_link(gpu_handle(uuid)) if nvml.init() is None else PcieLink()
    return InterconnectReading(
        device=device,
        copy_bytes=nbytes,
        h2d_gbps=round(nbytes / min(h2d) / 1e9, 3),
        d2h_gbps=round(nbytes / min(d2h) / 1e9, 3),
        link=link,
    )


def measure_peer(src: str, dst: str, nbytes: int, repeats: int) -> PeerReading:
    """Peer access between two GPUs and the copy bandwidth src->dst (GB/s), timed by synchronizing both."""
    torch = torch_module()
    a_dev, b_dev = torch_device(src), torch_device(dst)
    try:
        runtime = devices.cuda_runtime()
        access = runtime.can_device_access_peer(
            devices.parse_device(src).index or 0, devices.parse_device(dst).index or 0
        )
        a = torch.empty(nbytes, dtype=torch.uint8, device=a_dev)
        b = torch.empty(nbytes, dtype=torch.uint8, device=b_dev)
        b.copy_(a)
        times = []
        for _ in range(repeats):
            sync(a_dev)
            sync(b_dev)
            t0 = time.perf_counter()
            b.copy_(a)
            sync(a_dev)
            sync(b_dev)
            times.append(time.perf_counter() - t0)
    except (RuntimeError, MemoryError) as exc:
        return PeerReading(src, dst, None, None, error=error_text(exc))
    return PeerReading(src, dst, access, round(nbytes / min(times) / 1e9, 3))


# --- decision -------------------------------------------------------------------------------------


def decide_interconnect(r: InterconnectReading, min_fraction: float = 0.5) -> CheckResult:
    """WARN when host/device bandwidth is below ``min_fraction`` of what the current PCIe link carries, or
    when a peer copy fails; peer access the platform does not offer is a note (copies then go through host
    memory).
    """
    allowed = pcie_gbps(r.link.gen, r.link.width)
    kw: dict[str, Any] = {
        "value": None if r.h2d_gbps is None else round(min(r.h2d_gbps, r.d2h_gbps or r.h2d_gbps), 3),
        "threshold": None if allowed is None else round(min_fraction * allowed, 3),
        "unit": "GB/s",
        "readings": readings_dict({**readings_dict(r), "link_gbps": allowed}),
    }
    if r.h2d_gbps is None or r.d2h_gbps is None:
        return CheckResult(
            "interconnect",
            r.device,
            Verdict.SKIP,
            message=f"host/device copies could not be measured: {r.error or 'no result'}",
            **kw,
        )
    f = Findings()
    if allowed is None:
        f.note("PCIe link N/A (NVLink-C2C or no NVML): bandwidth not compared with a link limit")
    else:
        for label, gbps in (("host->device", r.h2d_gbps), ("device->host", r.d2h_gbps)):
            if gbps < min_fraction * allowed:
                f.add(
                    Verdict.WARN,
                    f"{label} {gbps:.1f} GB/s is {gbps / allowed:.0%} of the gen {r.link.gen} "
                    f"x{r.link.width} link's "
                    f"{allowed:.1f} GB/s (expected >= {min_fraction:.0%})",
                    "check the link (under_load), NUMA placement (run on the GPU's CPU socket: "
                    "nvidia-smi topo -m) "
                    "and IOMMU settings.",
                )
    for p in r.peers:
        if p.error:
            f.add(Verdict.WARN, f"peer copy {p.src}->{p.dst} failed: {p.error}", "check nvidia-smi topo -m.")
        elif p.access is False:
            f.note(f"no peer access {p.src}->{p.dst} (copies staged through host): {p.gbps or 0:.1f} GB/s")
        elif p.gbps is not None:
            f.note(f"peer {p.src}->{p.dst} {p.gbps:.1f} GB/s")
    link = f" over gen {r.link.gen} x{r.link.width} ({allowed:.1f} GB/s)" if allowed is not None else ""
    ok = f"pinned host->device {r.h2d_gbps:.1f} GB/s, device->host {r.d2h_gbps:.1f} GB/s{link}"
    return f.result("interconnect", r.device, ok, **kw)


# --- the check ------------------------------------------------------------------------------------


def measure(ctx: DeviceContext) -> InterconnectReading:
    """This GPU's host<->device copies; a failed measurement is the reading's error."""
    plan = ctx.plan
    try:
        return measure_interconnect(ctx.device, ctx.uuid, plan.transfer_bytes, plan.transfer_repeats)
    except Exception as exc:  # recorded as the reading's error
        return InterconnectReading(
            ctx.device, plan.transfer_bytes, None, None, error=f"{type(exc).__name__}: {exc}"
        )


def decide_all(
    measured: Mapping[str, tuple[DeviceContext, InterconnectReading]],
) -> Iterator[tuple[str, Decision]]:
    """Peer copies between every pair of the GPUs measured (two or more), then each GPU's decision."""
    links = {device: reading for device, (_ctx, reading) in measured.items()}
    if len(links) >= 2:
        for src, (ctx, reading) in measured.items():
            peers = tuple(measure_peer(src, dst, ctx.plan.transfer_bytes, 5) for dst in links if dst != src)
            links[src] = replace(reading, peers=peers)
    for device, (ctx, _reading) in measured.items():
        yield (
            device,
            functools.partial(decide_interconnect, links[device], ctx.config.verify.h2d_min_fraction),
        )


CHECK = DecidedAcrossDevices(
    CheckSpec("interconnect", "host<->device and peer copy bandwidth", cpu=False), measure, decide_all
)
