"""record_profile() reads back what the simulator serves: record(simulate(p)) reproduces p."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pynvml
import pytest

from gpubench.testing.nvml_sim import (
    PROFILES_DIR,
    SimClock,
    available_profiles,
    load_profile,
    simulated_nvml,
)
from gpubench.testing.record import main, record_profile, write_profile

NOT_RECORDED = ("name", "description", "source", "recorded", "recorded_at", "cuda_order")
"""Meta data, and torch's order, which NVML does not know."""


def _comparable(profile: dict[str, Any], self_pid: int | None = None) -> dict[str, Any]:
    out = {k: v for k, v in profile.items() if k not in NOT_RECORDED}
    for gpu in out["gpus"]:
        gpu["xid_events"] = []  # events are transient: a recording cannot hold them
        for process in gpu["processes"]:
            if process["pid"] == "self" and self_pid is not None:
                process["pid"] = self_pid  # in a container NVML reports the host PID, not "self"
    if self_pid is not None:
        out["self_host_pid"] = None
    return out


@pytest.mark.parametrize("name", available_profiles())
def test_recording_a_simulated_machine_gives_its_profile_back(name: str) -> None:
    profile = load_profile(name)
    with simulated_nvml(profile, clock=SimClock.manual()) as machine:
        recorded = record_profile(name=name, sleep=machine.clock.advance)
    host_pid = profile.self_host_pid
    assert _comparable(recorded) == _comparable(profile.to_dict(), host_pid)
    assert recorded["recorded"] is True
    assert datetime.datetime.fromisoformat(recorded["recorded_at"]).tzinfo is not None
    assert (
        profile.gpus[0].name in recorded["description"]
        and str(profile.driver_version) in recorded["description"]
    )
    load_profile(recorded)  # what the recorder writes loads as a profile


def test_errors_are_recorded_not_raised() -> None:
    data = json.loads((PROFILES_DIR / "h200.json").read_text())
    data["gpus"][0]["errors"] = {"nvmlDeviceGetPowerUsage": "NoPermission"}
    with simulated_nvml(data, clock=SimClock.manual()) as machine:
        machine.inject("nvmlDeviceGetSerial", error="Unknown")
        machine.inject("nvmlDeviceGetPciInfo", error="GpuIsLost")
        recorded = record_profile(sleep=machine.clock.advance)
    gpu = recorded["gpus"][0]
    assert gpu["errors"] == {
        "nvmlDeviceGetPciInfo_v3": "GpuIsLost",  # by C symbol, so the profile replays it
        "nvmlDeviceGetPowerUsage": "NoPermission",
        "nvmlDeviceGetSerial": "Unknown",
    }
    assert gpu["power"]["usage_mw"] is None and gpu["serial"] is None and gpu["pci"] is None
    assert gpu["temperature_c"] == 28
    with simulated_nvml(recorded):
        pynvml.nvmlInit()
        with pytest.raises(pynvml.NVMLError_GpuIsLost):
            pynvml.nvmlDeviceGetPciInfo(pynvml.nvmlDeviceGetHandleByIndex(0))


def test_a_scrubbed_recording_hides_the_units() -> None:
    with simulated_nvml("mig-a100", clock=SimClock.manual()) as machine:
        recorded = record_profile(sleep=machine.clock.advance, scrub=True)
    gpu = recorded["gpus"][0]
    assert gpu["uuid"] == "GPU-00000000-0000-0000-0000-000000000000"
    assert [d["uuid"] for d in gpu["mig"]["devices"]][:2] == [
        "MIG-00000000-0000-0000-0000-000000000000",
        "MIG-00000001-0000-0000-0000-000000000001",
    ]
    load_profile(recorded)


def test_the_command_line_writes_a_loadable_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "node.json"
    with simulated_nvml("h200"):
        assert main([str(target)]) == 0
    assert "wrote" in capsys.readouterr().out
    profile = load_profile(target)
    assert profile.name == "node" and profile.recorded and profile.gpus[0].name == "NVIDIA H200"
    again = tmp_path / "again.json"
    write_profile(profile.to_dict(), again)
    assert load_profile(again) == profile


def test_the_command_line_without_nvml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads((PROFILES_DIR / "h100-sxm.json").read_text())
    data["init_error"] = "DriverNotLoaded"
    with simulated_nvml(data):
        assert main([str(tmp_path / "x.json")]) == 1
    assert "NVMLError_DriverNotLoaded" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
