"""NVML simulated underneath the real nvidia-ml-py bindings, from machine profiles.

    from gpubench.testing.nvml_sim import simulated_nvml, SimClock

    with simulated_nvml("h100-sxm", clock=SimClock.manual()) as machine:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        machine.inject("nvmlDeviceGetPowerUsage", gpu=0, error="GpuIsLost", after=3)
        machine.clock.advance(1.5)

Only the C library is replaced (``pynvml.nvmlLib``); pynvml's Python functions run unchanged, so what
a test sees is what the same wrappers would give on a machine with those GPUs.
"""

from __future__ import annotations

from gpubench.testing.nvml_sim.clock import SimClock
from gpubench.testing.nvml_sim.loader import available_profiles, load_profile, profile_from_dict
from gpubench.testing.nvml_sim.machine import SimulatedLibrary, SimulatedMachine, simulated_nvml
from gpubench.testing.nvml_sim.profile import (
    PROFILES_DIR,
    SERVED_FIELDS,
    SERVED_GPM_METRICS,
    Gpu,
    Profile,
    ProfileError,
    error_code,
)
from gpubench.testing.nvml_sim.state import Fault
from gpubench.testing.nvml_sim.symbols import SIMULATED_FUNCTIONS

__all__ = [
    "PROFILES_DIR",
    "SERVED_FIELDS",
    "SERVED_GPM_METRICS",
    "SIMULATED_FUNCTIONS",
    "Fault",
    "Gpu",
    "Profile",
    "ProfileError",
    "SimClock",
    "SimulatedLibrary",
    "SimulatedMachine",
    "available_profiles",
    "error_code",
    "load_profile",
    "profile_from_dict",
    "simulated_nvml",
]
