"""A benchmark with telemetry on every shipped simulated machine, run through pytest as users run it.

The conftest written into each run installs the machine (NVML below the real nvidia-ml-py bindings, and
PyTorch's view of its CUDA devices); the gpubench and telemetry plugins, pytest-benchmark and the trace
writer are the real ones. The benchmark's own work runs on the CPU (a simulated GPU runs no kernels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpubench.testing.cuda_sim import simulated_cuda
from gpubench.testing.nvml_sim import available_profiles, load_profile, simulated_nvml

pytest_plugins = ["pytester"]
pytest.importorskip("torch")

NODE = """
import contextlib
from gpubench.testing.cuda_sim import simulated_cuda
from gpubench.testing.nvml_sim import simulated_nvml

_node = contextlib.ExitStack()

def pytest_configure(config):
    _node.enter_context(simulated_cuda(_node.enter_context(simulated_nvml({profile!r}))))

def pytest_unconfigure(config):
    _node.close()
"""

BENCHMARK = """
import time
import torch
from gpubench.devices import execution_device

def test_scale(benchmark, device):
    x = torch.ones(1024, device=execution_device(device.name))

    def work():
        end = time.perf_counter() + 0.05
        while time.perf_counter() < end:
            (x * 2.0).sum()
            time.sleep(0.002)

    benchmark.pedantic(work, rounds=4, iterations=1)
"""


def _cuda0(profile: str) -> Any:
    """What PyTorch calls cuda:0 on this machine (a GPU, or a MIG instance), from the simulation itself."""
    from gpubench import devices

    with simulated_nvml(profile) as machine, simulated_cuda(machine):
        probe = devices.probe_cuda()
    return probe.devices[0]


@pytest.mark.parametrize("profile", available_profiles())
def test_benchmark_with_telemetry_on_every_simulated_machine(
    profile: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(pytester.path))
    (pytester.path / "dl.config.sdn").write_text(
        'dl:\n  device: "cuda:0"\ntelemetry:\n  interval_ms: 20\nresults:\n  dir: "results"\n', encoding="utf-8"
    )
    pytester.makeconftest(NODE.format(profile=profile))
    pytester.makepyfile(test_bench=BENCHMARK)
    storage = pytester.path / "results" / "benchmarks"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--gpubench-devices=cuda:0", f"--benchmark-storage=file://{storage}",
        "--benchmark-save=sim",
    )
    result.assert_outcomes(passed=1)
    assert "Traceback" not in result.stdout.str()
    (saved,) = storage.rglob("*.json")
    (bench,) = json.loads(Path(saved).read_text("utf-8"))["benchmarks"]
    extra = bench["extra_info"]
    expected = _cuda0(profile)
    assert (extra["device"], extra["gpu"]["uuid"], extra["gpu"]["pci_bus_id"]) == (
        "cuda:0", expected.uuid, expected.pci_bus_id
    )
    tele = extra["telemetry"]
    assert tele["uuid"] == expected.uuid and tele["source"] == "nvml"
    gpu = next(g for g in load_profile(profile).gpus if expected.uuid in (g.uuid, *_mig_uuids(g)))
    if tele["available"]:
        assert tele["status"] == "ok" and tele["samples"] >= 2
        if gpu.uuid == expected.uuid and gpu.power.usage_mw is not None:
            assert tele["power_w_mean"] == pytest.approx(gpu.power.usage_mw / 1000)
    else:  # what the machine cannot give is said, never an exception
        assert tele["status"] == "unavailable" and tele["unavailable_reason"]


def _mig_uuids(gpu: Any) -> tuple[str, ...]:
    return tuple(d.uuid for d in gpu.mig.devices) if gpu.mig is not None else ()
