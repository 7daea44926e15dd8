"""The PCIe link: its state as NVML reports it, and what a link of that generation and width carries.

Both the under-load check (is the link trained down?) and the interconnect check (do copies reach what
the link carries?) read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpubench import nvml
from gpubench.verify.probing import as_int


@dataclass(frozen=True)
class PcieLink:
    """PCIe link state: ``pcie.link.gen.current``/``.width.current`` and the maxima (``pcie.link.gen.max``,
    ``pcie.link.width.max``: the best this GPU and slot can do; ``pcie.link.gen.gpumax``: the GPU alone)."""

    gen: int | None = None
    width: int | None = None
    max_gen: int | None = None
    max_width: int | None = None
    gpu_max_gen: int | None = None


#: Usable GB/s per lane and direction after line coding (8b/10b for gen 1-2, 128b/130b for gen 3-5,
#: FLIT gen 6).
PCIE_LANE_GBPS: Mapping[int, float] = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


def pcie_gbps(gen: int | None, width: int | None) -> float | None:
    """What a PCIe link can carry per direction, GB/s (None when the link state is N/A)."""
    if gen is None or width is None or gen not in PCIE_LANE_GBPS:
        return None
    return PCIE_LANE_GBPS[gen] * width


def read_pcie_link(handle: Any) -> PcieLink:
    """The PCIe link now and its maxima (N/A fields None)."""
    if not nvml.available(handle):
        return PcieLink()
    return PcieLink(
        gen=as_int(nvml.call("nvmlDeviceGetCurrPcieLinkGeneration", handle)),
        width=as_int(nvml.call("nvmlDeviceGetCurrPcieLinkWidth", handle)),
        max_gen=as_int(nvml.call("nvmlDeviceGetMaxPcieLinkGeneration", handle)),
        max_width=as_int(nvml.call("nvmlDeviceGetMaxPcieLinkWidth", handle)),
        gpu_max_gen=as_int(nvml.call("nvmlDeviceGetGpuMaxPcieLinkGeneration", handle)),
    )
