"""A benchmark on simulated GPUs, run through pytest as users run it: the saved run carries each GPU's NVML
telemetry.

A conftest installs a simulated node for the whole pytest run: NVML below the real nvidia-ml-py bindings
(``gpubench.testing.nvml_sim``) and PyTorch's view of the CUDA devices on top of it
(``gpubench.testing.cuda_sim``). Everything else is real: the gpubench plugin resolves ``cuda:N`` through
``probe_cuda``, the telemetry plugin samples the GPU of that UUID on its thread, pytest-benchmark times and
saves the run. Only the benchmark's own work runs on the CPU (the simulated GPU cannot run kernels).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from gpubench.testing.nvml_sim import load_profile

pytest_plugins = ["pytester"]
pytest.importorskip("torch")  # probe_cuda asks PyTorch (here: its simulated runtime) for the devices

PROFILE = "dgx-8gpu-order"
INTERVAL_MS = 20
ROUNDS, ROUND_S = 5, 0.06  # a body of at least 0.3 s: past a GPM window and a driver sample period
# cuda:1 is NVML GPU 5 here; it answers NotSupported to every reading telemetry asks for (its identity
# still reads)
READINGS = (
    "nvmlDeviceGetSamples",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetTotalEnergyConsumption",
    "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPcieThroughput",
    "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrentClocksThrottleReasons",
    "nvmlGpmQueryDeviceSupport",
)

SIMULATED_NODE = """
import contextlib
from gpubench.testing.cuda_sim import simulated_cuda
from gpubench.testing.nvml_sim import simulated_nvml

import pytest

_node = contextlib.ExitStack()
_machines = []

def pytest_configure(config):
    machine = _node.enter_context(simulated_nvml({profile!r}))
    _node.enter_context(simulated_cuda(machine))
    for function in {readings!r}:
        machine.inject(function, gpu=5, error="NotSupported")
    _machines.append(machine)

def pytest_unconfigure(config):
    _node.close()

@pytest.fixture
def nvml_machine():
    return _machines[0]
"""

BENCHMARK = f"""
import time
import torch
from gpubench.devices import execution_device

def test_scale(benchmark, device, nvml_machine):
    x = torch.ones(1024, device=execution_device(device.name))  # cpu: a simulated GPU runs no kernels
    # cuda:0 is NVML GPU 4; the telemetry thread's readings during the body are counted, not timed
    power_reads = lambda: nvml_machine.call_count("nvmlDeviceGetPowerUsage", gpu=4)
    before = power_reads()

    def work():
        end = time.perf_counter() + {ROUND_S}
        while time.perf_counter() < end:
            (x * 2.0).sum()
            time.sleep(0.002)
        # on cuda:0, the first round lasts until the sampling thread has read the GPU at least once, however
        # late a loaded machine schedules it (the bound only stops a broken sampler from hanging the test)
        deadline = time.monotonic() + 120
        while device.name == "cuda:0" and power_reads() <= before and time.monotonic() < deadline:
            time.sleep(0.002)

    benchmark.extra_info["items_per_s"] = 1024 / {ROUND_S}
    benchmark.pedantic(work, rounds={ROUNDS}, iterations=1)
"""


@pytest.fixture
def node_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for var in ("GPUBENCH_DL_DEVICE", "GPUBENCH_BENCH_DEVICES", "SIMPLE_DL_DEVICE", "GPUBENCH_CONFIG",
                "GPUBENCH_RESULTS_DIR", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(pytester.path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(pytester.path / "xdg"))
    (pytester.path / "dl.config.sdn").write_text(
        f'dl:\n  device: "cuda:0"\ntelemetry:\n  interval_ms: {INTERVAL_MS}\nresults:\n  dir: "results"\n',
        encoding="utf-8",
    )
    pytester.makeconftest(SIMULATED_NODE.format(profile=PROFILE, readings=READINGS))
    pytester.makepyfile(test_bench=BENCHMARK)
    return pytester


def _saved(root: Path) -> dict[str, Any]:
    (path,) = (root / "results" / "benchmarks").rglob("*.json")
    data = json.loads(path.read_text("utf-8"))
    return {b["name"]: b for b in data["benchmarks"]}


def test_saved_run_carries_the_nvml_summary_of_the_simulated_gpu(node_run: pytest.Pytester) -> None:
    result = node_run.runpytest_subprocess(
        "-p", "no:cacheprovider", "--gpubench-devices=cuda:0,cuda:1",
        f"--benchmark-storage=file://{node_run.path / 'results' / 'benchmarks'}", "--benchmark-save=sim",
    )
    result.assert_outcomes(passed=2)
    assert "Traceback" not in result.stdout.str()
    profile = load_profile(PROFILE)
    benches = _saved(node_run.path)
    for device, nvml_index in (("cuda:0", 4), ("cuda:1", 5)):  # CUDA's order is not NVML's here
        gpu, extra = profile.gpus[nvml_index], benches[f"test_scale[{device}]"]["extra_info"]
        # the identity comes from the (simulated) PyTorch devices and NVML
        assert gpu.pci is not None
        assert (extra["device"], extra["gpu"]["uuid"]) == (device, gpu.uuid)
        assert (extra["gpu"]["name"], extra["gpu"]["pci_bus_id"]) == (gpu.name, gpu.pci.bus_id)
        assert (extra["telemetry"]["device"], extra["telemetry"]["uuid"]) == (device, gpu.uuid)

    gpu, tele = profile.gpus[4], benches["test_scale[cuda:0]"]["extra_info"]["telemetry"]
    assert (tele["available"], tele["status"], tele["source"]) == (True, "ok", "nvml")
    assert tele["interval_ms"] == INTERVAL_MS and tele["unavailable_reason"] is None
    # start()'s reading, at least one of the thread's (the body waits for it) and stop()'s
    assert tele["samples"] >= 3 and tele["duration_s"] >= ROUNDS * ROUND_S
    assert gpu.power.usage_mw is not None and gpu.memory is not None
    power_w = gpu.power.usage_mw / 1000
    assert tele["power_w_mean"] == pytest.approx(power_w) == tele["power_w_max"]  # mW -> W
    assert tele["temp_c_max"] == gpu.temperature_c
    assert tele["sm_clock_mhz_mean"] == gpu.clocks_mhz.sm
    assert tele["pcie_tx_kb_per_s_mean"] == gpu.pcie.tx_kb_s
    assert tele["mem_used_bytes_max"] == gpu.memory.used_bytes
    assert tele["util_pct_mean"] == 0.0  # idle in the recording, from the driver's sample buffer
    assert tele["sm_active_pct_mean"] == 0.0  # GPM (Hopper)
    assert tele["clock_event_reasons_seen"] == ["gpu_idle"]
    # the simulated energy counter runs on real time here, as the sampler's clock does; but the counter is read
    # some calls after the sample's time stamp, and stop() closes the source before its last stamp: a loaded
    # machine can put tens of ms of a 0.3 s window between them. A unit slip (mJ, Wh) is 1000x or more.
    assert tele["energy_method"] == "nvml_total_energy_counter"
    assert tele["energy_j"] == pytest.approx(power_w * tele["duration_s"], rel=0.5)
    assert tele["unavailable_metrics"] == {}
    assert tele["trace"].startswith("results/telemetry/")
    with (node_run.path / tele["trace"]).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == tele["samples"] and {r["uuid"] for r in rows} == {gpu.uuid}
    assert [float(r["power_w"]) for r in rows] == pytest.approx([power_w] * len(rows))

    # every reading NotSupported: not available, with the reason, no empty trace, and the run goes on
    tele = benches["test_scale[cuda:1]"]["extra_info"]["telemetry"]
    assert (tele["available"], tele["status"], tele["trace"]) == (False, "unavailable", None)
    assert tele["unavailable_reason"].startswith("telemetry not available: no reading succeeded in")
    assert "NVMLError_NotSupported" in tele["unavailable_reason"]
    traces = list((node_run.path / "results" / "telemetry").rglob("*.csv"))
    assert [t.relative_to(node_run.path).as_posix() for t in traces] == [
        benches["test_scale[cuda:0]"]["extra_info"]["telemetry"]["trace"]
    ]
    result.stdout.fnmatch_lines(
        [
            "*gpubench throughput (from extra_info)*",
            "test_scale[[]cuda:0[]]*cuda:0*17,067*-*-*0*66.7",
            "test_scale[[]cuda:1[]]*cuda:1*17,067*-*-*-*-",
            "gpubench telemetry: cuda:1: telemetry not available: no reading succeeded in *NotSupported*",
        ]
    )
