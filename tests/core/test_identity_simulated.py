"""cuda:N to physical GPU through the real probe_cuda, on simulated nodes (gpubench.testing.cuda_sim on top of
the simulated NVML): CUDA's order, CUDA_VISIBLE_DEVICES in its index, UUID and MIG forms,
CUDA_DEVICE_ORDER, and the reasons a hidden or missing device is unusable."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from gpubench import devices
from gpubench.devices import parse_device, probe_cuda, why_unusable
from gpubench.testing.cuda_sim import SimulatedCuda, SimulatedNode, simulated_cuda
from gpubench.testing.fixtures import any_gpu_node, simulated_gpu_node
from gpubench.testing.nvml_sim import SimClock, SimulatedMachine, load_profile, simulated_nvml

__all__ = ["any_gpu_node", "simulated_gpu_node"]

DGX_PCI = [
    "00000000:53:00.0",
    "00000000:64:00.0",
    "00000000:75:00.0",
    "00000000:86:00.0",
    "00000000:97:00.0",
    "00000000:A8:00.0",
    "00000000:B9:00.0",
    "00000000:CA:00.0",
]


def dgx_uuid(nvml_index: int) -> str:
    return f"GPU-0000000{nvml_index}-0000-0000-0000-00000000000{nvml_index}"


@pytest.fixture(autouse=True)
def _no_cuda_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables of the machine running the tests must not leak into the simulated node."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)


@pytest.fixture
def dgx() -> Iterator[SimulatedMachine]:
    with simulated_nvml("dgx-8gpu-order", clock=SimClock.manual()) as machine:
        yield machine


def _nvml_indices(probe: devices.CudaProbe) -> list[int]:
    return [int(d.uuid[4:12]) for d in probe.devices if d.uuid]


@pytest.mark.parametrize("simulated_gpu_node", ["dgx-8gpu-order"], indirect=True)
def test_cuda0_is_nvml_gpu4_on_the_dgx(simulated_gpu_node: SimulatedNode) -> None:
    probe = probe_cuda()
    assert probe.device_count == 8 and probe.nvml_device_count == 8
    first = probe.devices[0]
    assert first.uuid == dgx_uuid(4) and first.pci_bus_id == "00000000:97:00.0"
    assert [d.uuid for d in probe.devices] == simulated_gpu_node.machine.profile.cuda_uuids()
    assert [d.pci_bus_id for d in probe.devices] == [DGX_PCI[i] for i in (4, 5, 6, 7, 0, 1, 2, 3)]
    assert first.name == "NVIDIA H100 80GB HBM3" and first.capability == (9, 0)
    assert first.total_memory == 85520809984 and first.multi_processor_count == 132
    assert probe.driver_version == "580.105.08" and probe.cuda_build == "12.8"


def test_every_device_maps_to_its_nvml_gpu_by_uuid(any_gpu_node: SimulatedNode) -> None:
    """On every shipped profile, probe_cuda's UUID and PCI address are those of the NVML GPU behind cuda:N."""
    probe = probe_cuda()
    profile = any_gpu_node.machine.profile
    assert probe.device_count == any_gpu_node.cuda.device_count() >= 1
    assert probe.nvml_device_count == len(profile.gpus)
    for info in probe.devices:
        gpu = profile.gpus[any_gpu_node.cuda.nvml_index(info.index)]
        assert info.pci_bus_id == (gpu.pci.bus_id if gpu.pci else None)
        mig_uuids = [m.uuid for m in gpu.mig.devices] if gpu.mig else []
        assert info.uuid == gpu.uuid or info.uuid in mig_uuids
        assert info.name.startswith(gpu.name)
        assert why_unusable(parse_device(f"cuda:{info.index}"), probe) is None


def test_torch_prints_uuids_bare_and_probe_cuda_gives_the_nvml_form(dgx: SimulatedMachine) -> None:
    with simulated_cuda(dgx) as cuda:
        assert cuda.get_device_properties(0).uuid == "00000004-0000-0000-0000-000000000004"
        assert probe_cuda().devices[0].uuid == dgx_uuid(4)


def test_pci_bus_id_order(dgx: SimulatedMachine) -> None:
    with simulated_cuda(dgx, order="PCI_BUS_ID"):
        assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        probe = probe_cuda()
    assert _nvml_indices(probe) == list(range(8))
    assert [d.pci_bus_id for d in probe.devices] == DGX_PCI
    assert "CUDA_DEVICE_ORDER" not in os.environ  # restored


def test_cuda_device_order_is_read_from_the_environment(
    dgx: SimulatedMachine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    with simulated_cuda(dgx):
        assert _nvml_indices(probe_cuda()) == list(range(8))


@pytest.mark.parametrize(
    ("visible", "order", "expected"),
    [
        ("1", None, [5]),  # an index into CUDA's order (fastest first: cuda_order)
        ("0,2", None, [4, 6]),
        ("4,5,6,7,0,1,2,3", "PCI_BUS_ID", [4, 5, 6, 7, 0, 1, 2, 3]),  # the profile's scheduler story
        ("3, 1", "PCI_BUS_ID", [3, 1]),
        ("0,x,1", "PCI_BUS_ID", [0]),  # CUDA stops at the first entry it cannot use
        ("0,0,1", "PCI_BUS_ID", [0]),  # ... a repeated one included
        ("2,9,3", "PCI_BUS_ID", [2]),  # ... and one out of range
        (dgx_uuid(6), None, [6]),
        ("GPU-00000006", None, [6]),  # a unique prefix is enough
        (f"GPU-00000002,{dgx_uuid(7)}", None, [2, 7]),
        ("GPU-0000000", None, []),  # an ambiguous prefix names no device
        ("", None, []),
    ],
)
def test_cuda_visible_devices(
    dgx: SimulatedMachine, visible: str, order: str | None, expected: list[int]
) -> None:
    with simulated_cuda(dgx, visible=visible, order=order):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == visible
        probe = probe_cuda()
    assert _nvml_indices(probe) == expected
    assert probe.cuda_visible_devices == visible and probe.device_count == len(expected)
    assert [d.pci_bus_id for d in probe.devices] == [DGX_PCI[i] for i in expected]
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_cuda_visible_devices_is_read_from_the_environment(
    dgx: SimulatedMachine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    with simulated_cuda(dgx) as cuda:
        assert cuda.nvml_index(0) == 6 and _nvml_indices(probe_cuda()) == [6]


def test_a_mig_enabled_gpu_shows_as_its_first_instance() -> None:
    with simulated_nvml("mig-a100") as machine, simulated_cuda(machine):
        probe = probe_cuda()
    assert probe.device_count == 1
    mig = probe.devices[0]
    assert mig.uuid == "MIG-00000001-0000-0000-0000-000000000001"
    assert mig.name == "NVIDIA A100-SXM4-40GB MIG 3g.20gb" and mig.total_memory == 21206401024
    assert mig.pci_bus_id == "00000000:06:00.0"  # the parent GPU's address


@pytest.mark.parametrize("prefix", ["MIG-00000002-0000-0000-0000-000000000002", "MIG-00000002"])
def test_mig_form_exposes_that_instance(prefix: str) -> None:
    with simulated_nvml("mig-a100") as machine, simulated_cuda(machine, visible=prefix) as cuda:
        assert cuda.get_device_properties(0).uuid == "00000002-0000-0000-0000-000000000002"
        probe = probe_cuda()
    assert [d.uuid for d in probe.devices] == ["MIG-00000002-0000-0000-0000-000000000002"]
    assert probe.devices[0].total_memory == 10536091648
    assert probe.devices[0].name.endswith("MIG 2g.10gb")


def test_one_mig_instance_per_process() -> None:
    both = "MIG-00000003-0000-0000-0000-000000000003,MIG-00000004-0000-0000-0000-000000000004"
    with simulated_nvml("mig-a100") as machine, simulated_cuda(machine, visible=both):
        probe = probe_cuda()
    assert [d.uuid for d in probe.devices] == ["MIG-00000003-0000-0000-0000-000000000003"]


def test_the_runtime_and_variables_are_restored(dgx: SimulatedMachine) -> None:
    before = devices.cuda_runtime()
    with simulated_cuda(dgx, visible="1"):
        assert isinstance(devices.cuda_runtime(), SimulatedCuda)
        assert devices.execution_device("cuda:0") == "cpu" and devices.execution_device("cpu") == "cpu"
    assert type(devices.cuda_runtime()) is type(before) is devices.TorchCuda
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_the_real_runtime_runs_work_on_the_device_itself() -> None:
    assert devices.TorchCuda().execution_device(1) == "cuda:1"
    assert devices.execution_device("cuda:1") == "cuda:1"


# --- why a device is unusable ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("visible", "name", "shown"),
    [("", "cuda:0", 0), ("0,1", "cuda:5", 2), ("9", "cuda:0", 0), ("GPU-ffff", "cuda:0", 0)],
)
def test_hidden_by_cuda_visible_devices(dgx: SimulatedMachine, visible: str, name: str, shown: int) -> None:
    with simulated_cuda(dgx, visible=visible):
        probe = probe_cuda()
    problem = why_unusable(parse_device(name), probe)
    assert problem is not None and problem.code == "hidden_by_cvd", problem
    assert f"CUDA_VISIBLE_DEVICES={visible!r} exposes {shown} GPU(s)" in problem.reason
    assert "NVML sees 8 GPU(s) on the machine" in problem.reason
    assert "unset CUDA_VISIBLE_DEVICES or add the GPU" in problem.remedy


def test_visible_device_is_usable(dgx: SimulatedMachine) -> None:
    with simulated_cuda(dgx, visible="0,1"):
        assert why_unusable(parse_device("cuda:1"), probe_cuda()) is None


@pytest.mark.parametrize("simulated_gpu_node", ["h100-sxm"], indirect=True)
def test_index_past_the_last_gpu(simulated_gpu_node: SimulatedNode) -> None:
    probe = probe_cuda()
    assert why_unusable(parse_device("cuda:0"), probe) is None
    problem = why_unusable(parse_device("cuda:1"), probe)
    assert problem is not None and problem.code == "index_out_of_range"
    assert "only 1 GPU(s) visible (cuda:0 (NVIDIA H100 80GB HBM3)); cuda:1 does not exist" in problem.reason


def test_no_driver() -> None:
    data = load_profile("h100-sxm").to_dict()
    data["init_error"] = "DriverNotLoaded"
    with simulated_nvml(data) as machine, simulated_cuda(machine):
        probe = probe_cuda()
    assert (
        probe.device_count == 0 and probe.nvml_error is not None and "Driver Not Loaded" in probe.nvml_error
    )
    problem = why_unusable(parse_device("cuda:0"), probe)
    assert problem is not None and problem.code == "no_driver"
    assert "Driver Not Loaded" in problem.reason and "nvidia-smi" in problem.remedy


def test_cpu_only_pytorch_build(dgx: SimulatedMachine) -> None:
    with simulated_cuda(dgx) as cuda:
        cuda.cuda_build_version = None
        probe = probe_cuda()
    problem = why_unusable(parse_device("cuda:0"), probe)
    assert problem is not None and problem.code == "cpu_only_build"
