"""Fixtures for the simulated-NVML tests: the shipped ones, imported as users would."""

from __future__ import annotations

from gpubench.testing.fixtures import any_nvml_machine, nvml_machine

__all__ = ["any_nvml_machine", "nvml_machine"]
