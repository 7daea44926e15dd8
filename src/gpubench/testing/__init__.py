"""Test support shipped inside gpubench, so the proof script and users' own tests can use it too.

``gpubench.testing.nvml_sim`` answers NVML's C functions from machine profiles (JSON files in
``profiles/``) underneath the real ``pynvml`` bindings: the Python wrappers of nvidia-ml-py run
unchanged, only the library they call is simulated. ``gpubench.testing.record`` goes the other way and
writes a profile from whatever NVML is present. ``gpubench.testing.fixtures`` holds pytest fixtures
(import them explicitly; nothing here registers itself as a plugin).

This package may import only ``gpubench.nvml``, ``pynvml`` and the standard library (``fixtures`` also
imports pytest), so it stays usable while the rest of gpubench changes and never pulls in torch.
"""

from __future__ import annotations
