"""The interconnect check's decision over hand-made readings (both sides of every threshold), and what a
PCIe link carries."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gpubench.verify.checks.interconnect import InterconnectReading, PeerReading, decide_interconnect
from gpubench.verify.pcie import PcieLink, pcie_gbps
from gpubench.verify.verdicts import Verdict

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


def test_pcie_gbps_table() -> None:
    assert pcie_gbps(4, 16) == pytest.approx(31.5, rel=1e-3)
    assert pcie_gbps(5, 16) == pytest.approx(63.0, rel=1e-3)
    assert pcie_gbps(None, 16) is None and pcie_gbps(9, 16) is None


LINK = InterconnectReading("cuda:0", 1 << 28, 25.0, 26.0, PcieLink(4, 16, 4, 16, 4))


@pytest.mark.parametrize(("h2d", "verdict"), [(25.0, P), (15.76, P), (15.7, W)])
def test_interconnect_fraction_of_link(h2d: float, verdict: Verdict) -> None:
    assert decide_interconnect(replace(LINK, h2d_gbps=h2d), min_fraction=0.5).verdict is verdict


def test_interconnect_na_link_and_missing_measurement() -> None:
    r = decide_interconnect(replace(LINK, link=PcieLink()))
    assert r.verdict is P and "PCIe link N/A" in r.message
    assert decide_interconnect(replace(LINK, h2d_gbps=None, error="no pinned memory")).verdict is S


def test_interconnect_peers() -> None:
    ok = replace(LINK, peers=(PeerReading("cuda:0", "cuda:1", True, 40.0),))
    assert (
        decide_interconnect(ok).verdict is P
        and "peer cuda:0->cuda:1 40.0 GB/s" in decide_interconnect(ok).message
    )
    no_p2p = replace(LINK, peers=(PeerReading("cuda:0", "cuda:1", False, 9.0),))
    assert "no peer access" in decide_interconnect(no_p2p).message
    broken = replace(LINK, peers=(PeerReading("cuda:0", "cuda:1", None, None, "CUDA error"),))
    assert decide_interconnect(broken).verdict is W
