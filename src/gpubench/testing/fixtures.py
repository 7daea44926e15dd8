"""pytest fixtures for the simulated NVML (and the simulated CUDA devices on top of it). Not a plugin: import what you use into a test module or conftest::

    from gpubench.testing.fixtures import nvml_machine  # noqa: F401

    def test_reads_power(nvml_machine):                      # the default profile, h100-sxm
        ...

    @pytest.mark.parametrize("nvml_machine", ["mig-a100", "old-driver"], indirect=True)
    def test_on_odd_machines(nvml_machine): ...

The machine's clock is manual (it moves only with ``nvml_machine.clock.advance``), so time-varying
readings are exact. NVML is not initialised: call ``pynvml.nvmlInit()`` or go through gpubench.nvml.
``simulated_gpu_node`` adds PyTorch's side (``gpubench.testing.cuda_sim``): ``probe_cuda()`` then sees the
profile's GPUs as ``cuda:N``::

    @pytest.mark.parametrize("simulated_gpu_node", ["dgx-8gpu-order"], indirect=True)
    def test_mapping(simulated_gpu_node):
        probe = gpubench.devices.probe_cuda()
        assert probe.devices[0].uuid == simulated_gpu_node.machine.profile.cuda_uuids()[0]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gpubench.testing.cuda_sim import SimulatedNode, simulated_cuda
from gpubench.testing.nvml_sim import SimClock, SimulatedMachine, available_profiles, simulated_nvml

DEFAULT_PROFILE = "h100-sxm"


@pytest.fixture
def nvml_machine(request: pytest.FixtureRequest) -> Iterator[SimulatedMachine]:
    """A simulated machine installed under pynvml; ``indirect`` parametrization picks the profile."""
    profile = getattr(request, "param", DEFAULT_PROFILE)
    with simulated_nvml(profile, clock=SimClock.manual()) as machine:
        yield machine


@pytest.fixture(params=available_profiles())
def any_nvml_machine(request: pytest.FixtureRequest) -> Iterator[SimulatedMachine]:
    """The test runs once on every shipped profile."""
    with simulated_nvml(request.param, clock=SimClock.manual()) as machine:
        yield machine


@pytest.fixture
def simulated_gpu_node(request: pytest.FixtureRequest) -> Iterator[SimulatedNode]:
    """A simulated machine under pynvml and the same machine as PyTorch's CUDA devices (kernels run on cpu).

    ``indirect`` parametrization picks the profile by name (default h100-sxm); ``CUDA_VISIBLE_DEVICES`` and
    ``CUDA_DEVICE_ORDER`` are taken from the environment (set them with ``monkeypatch.setenv`` first).
    """
    profile = getattr(request, "param", DEFAULT_PROFILE)
    with simulated_nvml(profile, clock=SimClock.manual()) as machine, simulated_cuda(machine) as cuda:
        yield SimulatedNode(machine, cuda)


@pytest.fixture(params=available_profiles())
def any_gpu_node(request: pytest.FixtureRequest) -> Iterator[SimulatedNode]:
    """:func:`simulated_gpu_node` on every shipped profile."""
    with simulated_nvml(request.param, clock=SimClock.manual()) as machine, simulated_cuda(machine) as cuda:
        yield SimulatedNode(machine, cuda)
