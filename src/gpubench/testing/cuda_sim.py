"""PyTorch's view of CUDA devices simulated from the same machine profile as the simulated NVML.

    from gpubench.testing.nvml_sim import simulated_nvml
    from gpubench.testing.cuda_sim import simulated_cuda

    with simulated_nvml("dgx-8gpu-order") as machine, simulated_cuda(machine, visible="2,3") as cuda:
        probe = gpubench.devices.probe_cuda()  # cuda:0 is the GPU CUDA enumerates third

:func:`simulated_cuda` installs a :class:`SimulatedCuda` as gpubench's :class:`~gpubench.devices.CudaRuntime`
(the one seam through which gpubench asks PyTorch about CUDA devices). It enumerates the profile's GPUs the
way the CUDA runtime does:

- the order: ``cuda_order`` of the profile (CUDA's default, fastest first; NVML's PCI order when the profile
  has none), or PCI bus order with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``;
- ``CUDA_VISIBLE_DEVICES``: indices into that order, ``GPU-`` UUIDs (a unique prefix is enough, as for
  CUDA), ``MIG-`` UUIDs (that MIG instance, with its own memory and its bare MIG UUID); the list ends at the
  first entry that names no device (or one already listed); an empty value hides every GPU;
- MIG: a GPU with MIG enabled shows as its first MIG instance, and a process sees one MIG instance at most
  (CUDA 11 and 12 enumerate a single MIG device per process).

Kernels cannot run on a simulated GPU: :meth:`SimulatedCuda.execution_device` sends the work of the
simulated ``cuda:N`` to ``cpu`` (gpubench's active checks run there; NVML readings still come from the
profile). Only tests install this; a real run never does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from gpubench.devices import use_cuda_runtime
from gpubench.testing.nvml_sim.machine import SimulatedMachine
from gpubench.testing.nvml_sim.profile import Gpu, MigDevice

#: (name fragment, compute capability, SM count) for the models in profiles; first match wins. A model not
#: listed gets :data:`UNKNOWN_MODEL` (set ``SimulatedCuda.capability`` in a test that cares).
MODELS: tuple[tuple[str, tuple[int, int], int], ...] = (
    ("H200", (9, 0), 132),
    ("GH200", (9, 0), 132),
    ("H100 PCIe", (9, 0), 114),
    ("H100", (9, 0), 132),
    ("A100", (8, 0), 108),
    ("A30", (8, 0), 56),
    ("A10", (8, 6), 72),
    ("RTX A6000", (8, 6), 84),
    ("RTX A4000", (8, 6), 48),
    ("L40", (8, 9), 142),
    ("L4", (8, 9), 58),
    ("RTX 4090", (8, 9), 128),
    ("RTX 4080", (8, 9), 76),
    ("RTX 3090", (8, 6), 82),
    ("V100", (7, 0), 80),
    ("T4", (7, 5), 40),
    ("B200", (10, 0), 148),
)
UNKNOWN_MODEL: tuple[tuple[int, int], int] = ((8, 0), 0)

DEFAULT_CUDA_BUILD = "12.8"
"""``torch.version.cuda`` of the simulated PyTorch; set ``SimulatedCuda.cuda_build_version`` to change it."""


@dataclass(frozen=True)
class SimulatedDeviceProperties:
    """What ``torch.cuda.get_device_properties(i)`` gives for a simulated device. Memory in bytes; ``uuid``
    bare, as torch prints it; PCI ids of the (parent) GPU."""

    name: str
    total_memory: int
    major: int
    minor: int
    uuid: str
    pci_bus_id: int
    pci_device_id: int
    pci_domain_id: int
    multi_processor_count: int
    L2_cache_size: int = 0


@dataclass(frozen=True)
class SimulatedDevice:
    """One ``cuda:N``: the NVML GPU it is (``gpu``: NVML index) and, for a MIG instance, which one."""

    gpu: int
    mig: int | None = None


def _model(name: str) -> tuple[tuple[int, int], int]:
    for fragment, capability, sms in MODELS:
        if fragment in name:
            return capability, sms
    return UNKNOWN_MODEL


def _bare(uuid: str) -> str:
    for prefix in ("GPU-", "MIG-"):
        if uuid.startswith(prefix):
            return uuid[len(prefix) :]
    return uuid


class SimulatedCuda:
    """A :class:`~gpubench.devices.CudaRuntime` answering from a simulated machine's profile."""

    def __init__(
        self, machine: SimulatedMachine, *, visible: str | None = None, order: str | None = None
    ) -> None:
        self.machine = machine
        self.visible = visible
        self.order = (order or "FASTEST_FIRST").strip().upper()
        self.cuda_build_version: str | None = DEFAULT_CUDA_BUILD
        self.cudnn: int | None = 90800
        self.devices: tuple[SimulatedDevice, ...] = self._enumerate()

    # enumeration -------------------------------------------------------------------------------

    def enumeration(self) -> list[int]:
        """NVML indices in the order CUDA numbers them before ``CUDA_VISIBLE_DEVICES`` applies."""
        profile = self.machine.profile
        if profile.init_error is not None:
            return []  # no driver: CUDA sees nothing
        everything = list(range(len(profile.gpus)))
        if self.order == "PCI_BUS_ID":
            return sorted(everything, key=lambda i: (profile.gpus[i].pci is None, self._bus_id(i), i))
        return list(profile.cuda_order) if profile.cuda_order is not None else everything

    def _bus_id(self, index: int) -> str:
        pci = self.machine.profile.gpus[index].pci
        return "" if pci is None else pci.bus_id

    def _enumerate(self) -> tuple[SimulatedDevice, ...]:
        base = self.enumeration()
        chosen: list[SimulatedDevice] = []
        if self.visible is None:
            chosen = [SimulatedDevice(i) for i in base]
        else:
            for token in self.visible.split(","):
                device = self._parse(token.strip(), base)
                if device is None or device in chosen:
                    break  # CUDA ignores the rest of the list from the first entry it cannot use
                chosen.append(device)
        return self._mig_view(chosen)

    def _parse(self, token: str, base: list[int]) -> SimulatedDevice | None:
        gpus = self.machine.profile.gpus
        if token.isdigit():
            return SimulatedDevice(base[int(token)]) if int(token) < len(base) else None
        if token.startswith("MIG-"):
            found = [
                SimulatedDevice(g, m)
                for g in base
                for m, mig in enumerate(self._mig_devices(gpus[g]))
                if mig.uuid.startswith(token)
            ]
        elif token.startswith("GPU-"):
            found = [SimulatedDevice(g) for g in base if gpus[g].uuid.startswith(token)]
        else:
            return None
        return found[0] if len(found) == 1 else None  # an ambiguous prefix names no device

    @staticmethod
    def _mig_devices(gpu: Gpu) -> tuple[MigDevice, ...]:
        return gpu.mig.devices if gpu.mig is not None and gpu.mig.current else ()

    def _mig_view(self, chosen: list[SimulatedDevice]) -> tuple[SimulatedDevice, ...]:
        """A MIG-enabled GPU shows as its first instance (none without instances); one MIG instance per
        process at most."""
        gpus = self.machine.profile.gpus
        out: list[SimulatedDevice] = []
        for device in chosen:
            mig = gpus[device.gpu].mig
            if device.mig is None and mig is not None and mig.current:
                if not self._mig_devices(gpus[device.gpu]):
                    continue
                device = SimulatedDevice(device.gpu, 0)
            if device.mig is not None and any(d.mig is not None for d in out):
                continue
            out.append(device)
        return tuple(out)

    # the CudaRuntime protocol ------------------------------------------------------------------

    def is_available(self) -> bool:
        return bool(self.devices)

    def device_count(self) -> int:
        return len(self.devices)

    def device(self, index: int) -> SimulatedDevice:
        if not 0 <= index < len(self.devices):
            msg = f"Invalid device id {index}: the simulated node shows {len(self.devices)} CUDA device(s)"
            raise AssertionError(msg)  # what torch raises for a bad index
        return self.devices[index]

    def get_device_properties(self, index: int) -> SimulatedDeviceProperties:
        device = self.device(index)
        gpu = self.machine.profile.gpus[device.gpu]
        (major, minor), sms = _model(gpu.name)
        name, uuid, memory = gpu.name, gpu.uuid, gpu.memory
        if device.mig is not None:
            mig = gpu.mig.devices[device.mig] if gpu.mig is not None else None
            assert mig is not None
            slices = int(mig.profile.split("g.", 1)[0]) if "g." in mig.profile else 1
            name, uuid, memory = f"{gpu.name} MIG {mig.profile}", mig.uuid, mig.memory
            sms = slices * (sms // 7)  # seven slices per GPU (A100/H100 class)
        pci = gpu.pci
        return SimulatedDeviceProperties(
            name=name,
            total_memory=0 if memory is None else memory.total_bytes,
            major=major,
            minor=minor,
            uuid=_bare(uuid),
            pci_bus_id=0 if pci is None else pci.bus,
            pci_device_id=0 if pci is None else pci.device,
            pci_domain_id=0 if pci is None else pci.domain,
            multi_processor_count=sms,
        )

    def cuda_build(self) -> str | None:
        return self.cuda_build_version

    def hip_build(self) -> str | None:
        return None

    def cudnn_version(self) -> int | None:
        return self.cudnn

    def has_primary_context(self, index: int) -> bool | None:
        """True when the profile lists this process (pid ``self``) on the device (its instance, for MIG)."""
        device = self.device(index)
        gpu = self.machine.profile.gpus[device.gpu]
        mig = gpu.mig.devices[device.mig] if (device.mig is not None and gpu.mig is not None) else None
        for process in gpu.processes:
            if process.pid != "self":
                continue
            if mig is None or (process.gpu_instance_id, process.compute_instance_id) == (
                mig.gpu_instance_id,
                mig.compute_instance_id,
            ):
                return True
        return False

    def can_device_access_peer(self, index: int, peer: int) -> bool:
        """Profiles hold no topology: no peer access (copies go through the host, which gpubench notes)."""
        self.device(index)
        self.device(peer)
        return False

    def execution_device(self, index: int) -> str:
        """The simulated GPU cannot run kernels: its work runs on ``cpu`` (test-only; see the module)."""
        self.device(index)
        return "cpu"

    def nvml_index(self, index: int) -> int:
        """NVML's index of the GPU behind ``cuda:index`` (the parent GPU for a MIG instance)."""
        return self.device(index).gpu

    def __repr__(self) -> str:
        return f"<simulated CUDA: {self.machine.profile.name}, {len(self.devices)} device(s)>"


@dataclass(frozen=True)
class SimulatedNode:
    """A simulated machine seen from both sides: NVML (``machine``) and PyTorch's CUDA devices (``cuda``)."""

    machine: SimulatedMachine
    cuda: SimulatedCuda


@contextmanager
def _environment(name: str, value: str | None) -> Iterator[None]:
    """Set ``name`` for the block (unchanged when ``value`` is None), then restore it."""
    if value is None:
        yield
        return
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextmanager
def simulated_cuda(
    machine: SimulatedMachine, *, visible: str | None = None, order: str | None = None
) -> Iterator[SimulatedCuda]:
    """Let PyTorch's view of CUDA devices come from ``machine`` (see the module) for the ``with`` block.

    ``visible`` stands for ``CUDA_VISIBLE_DEVICES`` and ``order`` for ``CUDA_DEVICE_ORDER``; when given they
    are also set in ``os.environ`` for the block (as the process would see them), else the variables are
    read from the environment.
    """
    visible = visible if visible is not None else os.environ.get("CUDA_VISIBLE_DEVICES")
    order = order if order is not None else os.environ.get("CUDA_DEVICE_ORDER")
    cuda = SimulatedCuda(machine, visible=visible, order=order)
    with (
        _environment("CUDA_VISIBLE_DEVICES", visible),
        _environment("CUDA_DEVICE_ORDER", order),
        use_cuda_runtime(cuda),
    ):
        yield cuda
