"""The shipped machine profiles load, are in canonical form, say where their numbers come from; bad
profiles are refused with the file and key named."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gpubench.testing.nvml_sim import PROFILES_DIR, ProfileError, available_profiles, load_profile

REQUIRED = {
    "h100-sxm",
    "h200",
    "dgx-8gpu-order",
    "consumer-rtx4090",
    "mig-a100",
    "degraded-pcie-remaps",
    "old-driver",
}


def _raw(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PROFILES_DIR / f"{name}.json").read_text())
    return data


def test_the_required_profiles_ship() -> None:
    assert set(available_profiles()) >= REQUIRED


@pytest.mark.parametrize("name", available_profiles())
def test_profile_loads_in_canonical_form_and_cites_its_source(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.to_dict() == _raw(name)  # the file holds exactly what the loader and recorder write
    assert profile.source and all(len(s) > 20 for s in profile.source)
    assert profile.recorded is False and profile.recorded_at is None
    assert profile.gpus


def test_a_profile_loads_from_a_path_and_a_dict(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_raw("h200")))
    assert load_profile(path) == load_profile("h200") == load_profile(_raw("h200"))
    assert load_profile(str(path)).origin == "mine.json"


def test_ids_may_be_given_as_numbers() -> None:
    data = _raw("h200")
    data["gpus"][0]["pci"]["device_id"] = 0x233510DE
    pci = load_profile(data).gpus[0].pci
    assert pci is not None and pci.device_id == "0x233510DE"


def _broken(edit: Any, name: str = "h100-sxm") -> dict[str, Any]:
    data = copy.deepcopy(_raw(name))
    edit(data)
    return data


@pytest.mark.parametrize(
    ("edit", "where", "what"),
    [
        (lambda d: d.pop("driver_version"), "driver_version", "missing"),
        (lambda d: d["gpus"][0]["memory"].pop("total_bytes"), "gpus[0].memory.total_bytes", "missing"),
        (
            lambda d: d["gpus"][0]["power"].update(usage_mw="68 W"),
            "gpus[0].power.usage_mw",
            "expected an integer",
        ),
        (lambda d: d["gpus"][0].update(temprature_c=30), "gpus[0]", "unknown key(s) temprature_c"),
        (lambda d: d["gpus"][0]["pci"].update(bus_id="53:00.0"), "gpus[0].pci.bus_id", "does not look like"),
        (lambda d: d["gpus"][0]["pci"].update(device_id="H100"), "gpus[0].pci.device_id", "32-bit id"),
        (lambda d: d["gpus"][0].update(uuid="GPU-1234"), "gpus[0].uuid", "does not look like"),
        (
            lambda d: d["gpus"][0]["errors"].update(nvmlDeviceGetPowerUsage="Broken"),
            "nvmlDeviceGetPowerUsage",
            "unknown NVML error",
        ),
        (
            lambda d: d["gpus"][0]["errors"].update(nvmlDeviceGetPower="NoPermission"),
            "errors.nvmlDeviceGetPower",
            "not a simulated",
        ),
        (
            lambda d: d["missing_functions"].append("nvmlDeviceGetThings"),
            "missing_functions[0]",
            "not a simulated",
        ),
        (
            lambda d: d["gpus"][0]["gpm"]["metrics"].update(NVML_GPM_METRIC_FOO=1.0),
            "NVML_GPM_METRIC_FOO",
            "not a served GPM",
        ),
        (lambda d: d["gpus"][0]["fields"].update(NVML_FI_DEV_FOO=1), "NVML_FI_DEV_FOO", "not a served field"),
        (lambda d: d["gpus"][0]["memory"].update(used_bytes=10**12), "gpus[0].memory", "exceed total_bytes"),
        (lambda d: d.update(cuda_order=[0, 0]), "cuda_order", "permutation"),
        (lambda d: d.update(source=[]), "source", "where the numbers come from"),
        (lambda d: d["gpus"].append(copy.deepcopy(d["gpus"][0])), "gpus", "share a UUID"),
        (lambda d: d["gpus"][0]["xid_events"].append(-1), "gpus[0].xid_events[0]", "non-negative"),
    ],
)
def test_a_bad_profile_names_the_file_and_the_key(tmp_path: Path, edit: Any, where: str, what: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_broken(edit)))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert message.startswith("bad.json: ")
    assert where in message and what in message


def test_mig_devices_need_mig_enabled() -> None:
    data = _broken(lambda d: d["gpus"][0]["mig"].update(current=False), "mig-a100")
    data["gpus"][0]["utilization_pct"] = None
    with pytest.raises(
        ProfileError, match=r"gpus\[0\]\.mig\.devices: MIG devices exist only while MIG is enabled"
    ):
        load_profile(data)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "torn.json"
    path.write_text('{\n  "name": "torn",\n  "gpus": [\n')
    with pytest.raises(ProfileError, match=r"torn\.json: not valid JSON \(line 4"):
        load_profile(path)


def test_an_unknown_profile_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match=r"no shipped NVML profile 'h300'.*h100-sxm"):
        load_profile("h300")


def test_legacy_mig_uuids_load() -> None:
    """Drivers 450-465 named MIG devices MIG-<GPU UUID>/<GPU instance>/<compute instance>."""
    data = _raw("mig-a100")
    legacy = f"MIG-{data['gpus'][0]['uuid']}/2/0"
    data["gpus"][0]["mig"]["devices"][0]["uuid"] = legacy
    mig = load_profile(data).gpus[0].mig
    assert mig is not None and mig.devices[0].uuid == legacy
