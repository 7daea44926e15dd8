"""pytest fixtures for the simulated NVML. Not a plugin: import what you use into a test module or conftest::

    from gpubench.testing.fixtures import nvml_machine  # noqa: F401

    def test_reads_power(nvml_machine):                      # the default profile, h100-sxm
        ...

    @pytest.mark.parametrize("nvml_machine", ["mig-a100", "old-driver"], indirect=True)
    def test_on_odd_machines(nvml_machine): ...

The machine's clock is manual (it moves only with ``nvml_machine.clock.advance``), so time-varying
readings are exact. NVML is not initialised: call ``pynvml.nvmlInit()`` or go through gpubench.nvml.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
