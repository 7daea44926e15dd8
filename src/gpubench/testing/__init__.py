"""Test support shipped inside gpubench, so the proof script and users' own tests can use it too.

``gpubench.testing.nvml_sim`` answers NVML's C functions from machine profiles (JSON files in
``profiles/``) underneath the real ``pynvml`` bindings: the Python wrappers of nvidia-ml-py run
unchanged, only the library they call is simulated. ``gpubench.testing.record`` goes the other way and
writes a profile from whatever NVML is present. ``gpubench.testing.cuda_sim`` shows the same machine to
gpubench as PyTorch's ``cuda:N`` devices (``CUDA_VISIBLE_DEVICES``, ``CUDA_DEVICE_ORDER`` and MIG honoured;
kernels of a simulated device run on ``cpu``), through the one seam ``gpubench.devices.use_cuda_runtime``.
``gpubench.testing.fixtures`` holds pytest fixtures (import them explicitly; nothing here registers itself
as a plugin).

This package may import only ``gpubench.nvml``, ``gpubench.devices``, ``pynvml`` and the standard library
(``fixtures`` also imports pytest), so it stays usable while the rest of gpubench changes and never pulls in
torch.
"""

from __future__ import annotations
