"""A failed nvmlInit says why in pynvml's words, and guesses the cause only where the error class names it."""

from __future__ import annotations

import pytest

from gpubench import nvml
from gpubench.testing.nvml_sim import load_profile, simulated_nvml


@pytest.mark.parametrize(("error", "reason"), [
    ("DriverNotLoaded", "NVMLError_DriverNotLoaded: Driver Not Loaded (no NVIDIA driver loaded on this machine?)"),
    ("NoPermission", "NVMLError_NoPermission: Insufficient Permissions (no permission to the NVIDIA device files "
                     "(/dev/nvidia*): check the user's groups or the container's device access)"),
    ("LibRmVersionMismatch", "NVMLError_LibRmVersionMismatch: RM has detected an NVML/RM version mismatch. (the NVML "
                             "library and the loaded kernel driver are different versions: reboot, or reload the "
                             "driver after an upgrade)"),
    ("Unknown", "NVMLError_Unknown: Unknown Error"),
])
def test_init_error_names_the_error_and_only_a_fitting_hint(error: str, reason: str) -> None:
    data = load_profile("h100-sxm").to_dict()
    data["init_error"] = error
    with simulated_nvml(data):  # resets gpubench's cached NVML state on entry and exit
        assert nvml.init() == f"NVML not available: {reason}"
