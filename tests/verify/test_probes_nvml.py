"""Probes and decisions over the hand-made machines in tests/data/nvml (see its README), through the simulated
NVML (gpubench.testing.nvml_sim, under the real pynvml) and the simulated CUDA devices of the same machine."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gpubench.devices import CudaProbe, parse_device, probe_cuda, with_devices
from gpubench.testing.cuda_sim import simulated_cuda
from gpubench.testing.nvml_sim import SimClock, SimulatedMachine, load_profile, simulated_nvml
from gpubench.verify.checks.contention import ProcessInfo, decide_contention, read_contention
from gpubench.verify.checks.identity import decide_identity, read_identity
from gpubench.verify.checks.load import ClockEventReasons, decide_under_load, run_burn
from gpubench.verify.checks.memory import decide_memory_health, read_memory_health
from gpubench.verify.verdicts import CheckResult, Verdict

DATA = Path(__file__).parents[1] / "data" / "nvml"
NAMES = sorted(p.stem for p in DATA.glob("*.json"))

#: The verdicts each hand-made machine implies, by device and check.
EXPECT: dict[str, dict[str, dict[str, str]]] = {
    "a100_pending_remap": {
        "cuda:0": {"identity": "PASS", "memory_health": "FAIL", "contention": "PASS", "under_load": "WARN"}
    },
    "h100_healthy": {
        "cuda:0": {"identity": "PASS", "memory_health": "PASS", "contention": "PASS", "under_load": "PASS"}
    },
    "mixed_order": {
        "cuda:0": {"identity": "WARN", "memory_health": "WARN", "contention": "PASS", "under_load": "WARN"},
        "cuda:1": {"identity": "WARN", "memory_health": "PASS", "contention": "PASS", "under_load": "FAIL"},
    },
    "rtx4090_consumer": {
        "cuda:0": {"identity": "PASS", "memory_health": "SKIP", "contention": "WARN", "under_load": "FAIL"}
    },
}


@pytest.fixture(autouse=True)
def _no_cuda_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)


@pytest.fixture
def machine(request: pytest.FixtureRequest) -> Iterator[SimulatedMachine]:
    """The hand-made machine named by ``indirect`` parametrization, on both the NVML and the CUDA side."""
    with simulated_nvml(DATA / f"{request.param}.json", clock=SimClock.manual()) as sim, simulated_cuda(sim):
        yield sim


def _replay_counter_moves(machine: SimulatedMachine, values: list[int]) -> None:
    """Answer nvmlDeviceGetPcieReplayCounter with ``values``, one per call, the last repeating.

    A profile holds one value per reading; a counter that moves during the burn is a sequence over calls,
    which only a test can say. The real pynvml wrapper still runs: only the C function's answer changes.
    """
    queue = list(values)
    answer = machine.nvmlDeviceGetPcieReplayCounter

    def moving(handle: Any, counter: Any) -> int:
        code = answer(handle, counter)
        if code == 0:
            ctypes.cast(counter, ctypes.POINTER(ctypes.c_uint)).contents.value = (
                queue.pop(0) if len(queue) > 1 else queue[0]
            )
        return code

    machine.nvmlDeviceGetPcieReplayCounter = moving  # type: ignore[method-assign]


def test_every_fixture_says_it_is_hand_made() -> None:
    assert sorted(EXPECT) == NAMES, "every machine here needs its expected verdicts"
    for name in NAMES:
        profile = load_profile(DATA / f"{name}.json")
        assert not profile.recorded, name
        assert "NOT recorded from hardware" in " ".join(profile.source), name
        assert EXPECT[name], name


def _decide_passive(device: str, probe: CudaProbe) -> dict[str, CheckResult]:
    spec = parse_device(device)
    info = probe.device(spec.index or 0)
    assert info is not None and info.uuid is not None
    return {
        "identity": decide_identity(read_identity(spec, probe)),
        "memory_health": decide_memory_health(read_memory_health(info.uuid), device),
        "contention": decide_contention(read_contention(device, info.uuid, own_pid=1)),
        "under_load": decide_under_load(
            run_burn("cpu", info.uuid, seconds=0.05, dtype="f32", n=32, interval_s=0.01)
        ),
    }


@pytest.mark.parametrize("machine", NAMES, indirect=True)
def test_fixture_verdicts(machine: SimulatedMachine) -> None:
    probe = probe_cuda()
    for device, expected in EXPECT[machine.profile.name].items():
        got = _decide_passive(device, probe)
        for check, verdict in expected.items():
            result = got[check]
            assert result.verdict.value == verdict, (
                f"{machine.profile.name} {device} {check}: {result.message}"
            )
            if result.verdict in (Verdict.FAIL, Verdict.WARN):
                assert result.remedy, f"{machine.profile.name} {device} {check} has no remedy"


@pytest.mark.parametrize("machine", ["mixed_order"], indirect=True)
def test_mixed_order_says_which_physical_gpu(machine: SimulatedMachine) -> None:
    probe = probe_cuda()
    ident = read_identity(parse_device("cuda:1"), probe, torch_pci=(0, 23, 0))
    assert ident.nvml_index == 0 and ident.nvml_name == "NVIDIA RTX A4000"
    result = decide_identity(ident)
    assert "nvidia-smi's GPU 0" in result.message and "00000000:17:00.0" in result.message
    assert "CUDA_DEVICE_ORDER" in result.message and "PCI_BUS_ID" in result.remedy


@pytest.mark.parametrize("machine", ["a100_pending_remap"], indirect=True)
def test_pending_remap_readings(machine: SimulatedMachine) -> None:
    r = read_memory_health("GPU-8a7f6e5d-4c3b-2a19-0817-263544536271")
    assert (r.remapped_correctable, r.remapped_uncorrectable, r.remap_pending, r.remap_failure) == (
        2,
        1,
        True,
        False,
    )
    assert r.retired_pages_pending is None and r.recovery_action is None and r.volatile_uncorrected == 1
    result = decide_memory_health(r, "cuda:0")
    assert "row remapping pending" in result.message and "N/A: retired_pages_pending" in result.message


@pytest.mark.parametrize("machine", ["rtx4090_consumer"], indirect=True)
def test_consumer_gpu_reads_na_not_errors(machine: SimulatedMachine) -> None:
    uuid = "GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    assert read_memory_health(uuid).all_na()
    contention = read_contention("cuda:0", uuid, own_pid=1)
    assert contention.processes == (ProcessInfo(2412, "python3", 3 * 2**30),)
    assert contention.mig_current is None and contention.persistence is False
    load = run_burn("cpu", uuid, seconds=0.05, n=32, interval_s=0.01)
    assert load.xid_events is None and load.link.width == 8 and load.link.max_width == 16


@pytest.mark.parametrize("machine", ["rtx4090_consumer"], indirect=True)
def test_own_process_is_not_contention(machine: SimulatedMachine) -> None:
    reading = read_contention("cuda:0", "GPU-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", own_pid=2412)
    assert reading.processes == ()


@pytest.mark.parametrize("machine", ["mixed_order"], indirect=True)
def test_burn_reads_xids_replays_and_thermal_reasons(machine: SimulatedMachine) -> None:
    _replay_counter_moves(machine, [0, 3])
    load = run_burn("cpu", "GPU-a4000000-7777-8888-9999-aaaabbbbcccc", seconds=0.05, n=32, interval_s=0.01)
    assert load.xid_events == (79,)
    assert (load.replay_before, load.replay_after) == (0, 3)
    assert load.peak_temp_c == 93 and load.gpu_max_temp_c == 93 and load.slowdown_temp_c == 98
    assert "hw_thermal_slowdown" in ClockEventReasons(load.reasons_seen or 0).names()
    assert load.samples >= 2 and load.tflops is not None and not load.nonfinite


@pytest.mark.parametrize("machine", ["h100_healthy"], indirect=True)
def test_unknown_uuid_is_an_identity_failure(machine: SimulatedMachine) -> None:
    probe = probe_cuda()
    info = probe.devices[0]
    probe = with_devices(probe, (replace(info, uuid="GPU-00000000-0000-0000-0000-000000000000"),))
    ident = read_identity(parse_device("cuda:0"), probe, torch_pci=(0, 24, 0))
    result = decide_identity(ident)
    assert result.verdict is Verdict.FAIL and "GPU-00000000" in result.message


def test_no_nvml_gives_empty_readings() -> None:
    data = load_profile(DATA / "h100_healthy.json").to_dict()
    data["init_error"] = "LibraryNotFound"  # NVML cannot load: no driver on this machine
    with simulated_nvml(data):
        assert read_memory_health("GPU-x").all_na()
        assert read_contention("cuda:0", "GPU-x").processes is None
        load = run_burn("cpu", "GPU-x", seconds=0.02, n=16, interval_s=0.01)
        result = decide_under_load(load)
        assert result.verdict is Verdict.SKIP and "NVML not available" in result.message
