"""The interconnect decision's exact rows: bandwidth at exactly the share of the link, peers, what skips."""

from __future__ import annotations

from dataclasses import replace

from gpubench.verify.checks.interconnect import InterconnectReading, PeerReading, decide_interconnect
from gpubench.verify.pcie import PcieLink, pcie_gbps
from gpubench.verify.verdicts import Verdict

LINK = PcieLink(4, 16, 4, 16, 4)
FULL = pcie_gbps(4, 16)  # 31.504 GB/s
READ = InterconnectReading("cuda:0", 1 << 28, 25.0, 24.0, LINK)
REMEDY = ("check the link (under_load), NUMA placement (run on the GPU's CPU socket: nvidia-smi topo -m) and "
          "IOMMU settings.")


def test_a_healthy_link() -> None:
    r = decide_interconnect(READ)
    assert (r.check, r.device, r.verdict, r.unit, r.remedy) == ("interconnect", "cuda:0", Verdict.PASS, "GB/s", "")
    assert r.message == "pinned host->device 25.0 GB/s, device->host 24.0 GB/s over gen 4 x16 (31.5 GB/s)"
    assert (r.value, r.threshold) == (24.0, 15.752)
    assert r.readings["link_gbps"] == FULL and r.readings["h2d_gbps"] == 25.0


def test_exactly_the_share_of_the_link_passes_just_under_warns() -> None:
    half = FULL * 0.5
    assert decide_interconnect(replace(READ, h2d_gbps=half, d2h_gbps=half)).verdict is Verdict.PASS
    r = decide_interconnect(replace(READ, h2d_gbps=15.0, d2h_gbps=half))
    assert r.verdict is Verdict.WARN
    assert r.message == ("host->device 15.0 GB/s is 48% of the gen 4 x16 link's 31.5 GB/s (expected >= 50%)")
    assert r.remedy == REMEDY
    both = decide_interconnect(replace(READ, h2d_gbps=15.0, d2h_gbps=10.0), min_fraction=0.6)
    assert both.message == ("WARN: host->device 15.0 GB/s is 48% of the gen 4 x16 link's 31.5 GB/s "
                            "(expected >= 60%); WARN: device->host 10.0 GB/s is 32% of the gen 4 x16 link's "
                            "31.5 GB/s (expected >= 60%)")
    assert both.remedy == REMEDY and (both.value, both.threshold) == (10.0, 18.902)


def test_without_a_pcie_link_nothing_is_compared() -> None:
    r = decide_interconnect(replace(READ, link=PcieLink(), h2d_gbps=1.0, d2h_gbps=1.0))
    assert (r.verdict, r.threshold) == (Verdict.PASS, None)
    assert r.message == ("pinned host->device 1.0 GB/s, device->host 1.0 GB/s; PCIe link N/A (NVLink-C2C or no "
                         "NVML): bandwidth not compared with a link limit")


def test_peers() -> None:
    peers = (
        PeerReading("cuda:0", "cuda:1", True, 250.04),
        PeerReading("cuda:0", "cuda:2", False, 12.0),
        PeerReading("cuda:0", "cuda:3", False, None),
        PeerReading("cuda:0", "cuda:4", True, None),
        PeerReading("cuda:0", "cuda:5", True, 1.0, error="CUDA error: peer mapping"),
    )
    r = decide_interconnect(replace(READ, peers=peers))
    assert r.verdict is Verdict.WARN and r.remedy == "check nvidia-smi topo -m."
    assert r.message == (
        "peer copy cuda:0->cuda:5 failed: CUDA error: peer mapping; peer cuda:0->cuda:1 250.0 GB/s; "
        "no peer access cuda:0->cuda:2 (copies staged through host): 12.0 GB/s; "
        "no peer access cuda:0->cuda:3 (copies staged through host): 0.0 GB/s"
    )


def test_what_skips() -> None:
    for h2d, d2h in ((None, 1.0), (1.0, None)):
        r = decide_interconnect(replace(READ, h2d_gbps=h2d, d2h_gbps=d2h, error="OOM"))
        assert (r.verdict, r.message) == (Verdict.SKIP, "host/device copies could not be measured: OOM")
    r = decide_interconnect(replace(READ, h2d_gbps=3.0, d2h_gbps=None))
    assert (r.message, r.value, r.threshold) == ("host/device copies could not be measured: no result", 3.0, 15.752)
    assert decide_interconnect(replace(READ, h2d_gbps=None, d2h_gbps=None)).value is None
