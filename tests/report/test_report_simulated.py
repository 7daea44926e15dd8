"""The report of a run on a simulated 8-GPU node: every GPU gets its page, with its identity and telemetry.

The saved run is made the way users make one, not written by hand: ``python -m pytest`` with the gpubench
plugins runs a benchmark on every ``cuda:N`` of a simulated DGX (a conftest installs NVML simulated below the
real nvidia-ml-py bindings and PyTorch's devices from ``gpubench.testing.cuda_sim``); the telemetry plugin
samples each GPU through NVML on its thread and writes the traces; pytest-benchmark saves the JSON. The
report then reads that folder. On this profile CUDA's order is not NVML's: ``cuda:0`` is NVML GPU 4.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_runs import NO_PLOTS

from gpubench.report.build import build_report
from gpubench.report.html import render_html
from gpubench.report.load import LoadedRuns, load_runs
from gpubench.report.markdown import render_markdown
from gpubench.report.model import GpuPage, Report
from gpubench.report.text import format_number
from gpubench.testing.nvml_sim import Gpu, load_profile

pytest.importorskip("torch")  # probe_cuda asks PyTorch (here: its simulated runtime) for the devices

PROFILE = load_profile("dgx-8gpu-order")
DEVICES = [f"cuda:{i}" for i in range(len(PROFILE.gpus))]
LOST_DEVICE, LOST_NVML_INDEX = "cuda:2", 6  # falls off the bus at its second power reading

SIMULATED_NODE = f"""
import contextlib
from gpubench.testing.cuda_sim import simulated_cuda
from gpubench.testing.nvml_sim import simulated_nvml

_node = contextlib.ExitStack()

def pytest_configure(config):
    machine = _node.enter_context(simulated_nvml({PROFILE.name!r}))
    _node.enter_context(simulated_cuda(machine))
    machine.inject("nvmlDeviceGetPowerUsage", gpu={LOST_NVML_INDEX}, error="GpuIsLost", after=1)

def pytest_unconfigure(config):
    _node.close()
"""

BENCHMARK = """
import time

def test_scale(benchmark, device):
    def work():
        end = time.perf_counter() + 0.05  # 4 rounds: past one of the driver's utilization samples
        while time.perf_counter() < end:
            time.sleep(0.002)

    benchmark.extra_info["items_per_s"] = 1000.0
    benchmark.pedantic(work, rounds=4, iterations=1)
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``results/`` of one benchmark run on every GPU of the simulated DGX (made once for this module)."""
    root = tmp_path_factory.mktemp("dgx")
    (root / "conftest.py").write_text(SIMULATED_NODE, encoding="utf-8")
    (root / "test_bench.py").write_text(BENCHMARK, encoding="utf-8")
    (root / "dl.config.sdn").write_text(
        'dl:\n  device: "cuda:0"\ntelemetry:\n  interval_ms: 20\nresults:\n  dir: "results"\n',
        encoding="utf-8",
    )
    drop = ("GPUBENCH_", "SIMPLE_", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "PYTEST_ADDOPTS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(HOME=str(root), XDG_CONFIG_HOME=str(root / "xdg"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(root),
            f"--gpubench-devices={','.join(DEVICES)}",
            "--benchmark-save=dgx",
            f"--benchmark-storage=file://{root / 'results' / 'benchmarks'}",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(DEVICES)} passed" in proc.stdout, proc.stdout
    return root / "results"


@pytest.fixture(scope="module")
def loaded(results: Path) -> LoadedRuns:
    return load_runs(results)


@pytest.fixture(scope="module")
def report(results: Path, loaded: LoadedRuns) -> Report:
    return build_report(results, NO_PLOTS, loaded=loaded)


def _gpu(device: str) -> Gpu:
    uuid = PROFILE.cuda_uuids()[int(device.split(":")[1])]
    return next(g for g in PROFILE.gpus if g.uuid == uuid)


def _page(report: Report, device: str) -> GpuPage:
    (page,) = (p for p in report.pages if p.uuid == _gpu(device).uuid)
    return page


def test_the_tidy_table_has_each_gpus_identity_and_telemetry(loaded: LoadedRuns) -> None:
    assert PROFILE.cuda_order == (4, 5, 6, 7, 0, 1, 2, 3)  # cuda:0 is NVML GPU 4
    frame = loaded.benchmarks.set_index("device")
    assert sorted(frame.index) == DEVICES and not loaded.warnings
    for device in DEVICES:
        gpu, row = _gpu(device), frame.loc[device]
        assert gpu.pci is not None and gpu.power.usage_mw is not None
        identity = (row["gpu_uuid"], row["gpu_name"], row["gpu_pci_bus_id"])
        assert identity == (gpu.uuid, gpu.name, gpu.pci.bus_id)
        assert row["telemetry_source"] == "nvml"
        assert row["power_w_mean"] == pytest.approx(gpu.power.usage_mw / 1000)
        assert row["temp_c_max"] == gpu.temperature_c
        assert row["pcie_tx_kb_per_s_mean"] == gpu.pcie.tx_kb_s
        if device == LOST_DEVICE:
            assert row["telemetry_status"] == "partial" and row["telemetry_samples"] == 1
            assert "GpuIsLost" in row["telemetry_unavailable_reason"]
        else:
            assert row["telemetry_status"] == "ok" and row["telemetry_samples"] >= 2
            assert row["energy_j"] > 0
            assert isinstance(row["trace"], str) and (loaded.results_dir / row["trace"]).is_file()


def test_every_gpu_has_a_page_with_its_uuid_name_and_pci_bus_id(report: Report) -> None:
    assert len(report.pages) == len(DEVICES)
    assert [p.title.split(" · ")[:2] for p in report.pages] == [[d, _gpu(d).name] for d in DEVICES]
    for device in DEVICES:
        gpu, identity = _gpu(device), dict(_page(report, device).identity)
        assert gpu.pci is not None
        assert identity["UUID"] == gpu.uuid
        assert identity["name"] == gpu.name
        assert identity["PCI bus id"] == gpu.pci.bus_id
        assert identity["seen as"] == device


def test_every_page_shows_its_gpus_telemetry_in_units(report: Report) -> None:
    for device in DEVICES:
        gpu, page = _gpu(device), _page(report, device)
        assert gpu.power.usage_mw is not None and gpu.memory is not None
        shown = {metric: value for metric, value, _ in page.telemetry.rows}
        assert shown["power_w_mean"] == f"{gpu.power.usage_mw / 1000:.3g} W"  # 68.6 W
        assert shown["temp_c_max"] == f"{gpu.temperature_c} °C"
        assert shown["sm_clock_mhz_mean"] == f"{gpu.clocks_mhz.sm} MHz"
        assert shown["pcie_tx_kb_per_s_mean"] == f"{format_number(gpu.pcie.tx_kb_s)} KB/s"  # KB/s, not s
        assert shown["pcie_rx_kb_per_s_max"] == f"{format_number(gpu.pcie.rx_kb_s)} KB/s"
        assert shown["mem_reserved_bytes_max"] == f"{(gpu.memory.reserved_bytes or 0) / 2**30:.2f} GiB"
        if device != LOST_DEVICE:  # lost before the driver's first utilization sample
            assert shown["gpu_util_pct_mean"] == "0 %"  # idle in the recording


def test_a_gpu_lost_mid_run_says_so_on_its_page(report: Report) -> None:
    lost = _page(report, LOST_DEVICE)
    assert lost.telemetry.caption.startswith(
        "Telemetry partial in 1 of 1 benchmarks: sampling stopped after 1 samples"
    )
    assert "GpuIsLost" in lost.telemetry.caption
    assert lost.telemetry.rows  # the sample taken before the loss is still summarised
    assert _page(report, "cuda:0").telemetry.caption == ""


def test_markdown_and_html_show_every_gpu(report: Report) -> None:
    markdown, html = render_markdown(report), render_html(report)
    for device in DEVICES:
        gpu = _gpu(device)
        assert gpu.pci is not None
        for text in (markdown, html):
            assert gpu.uuid in text and gpu.pci.bus_id in text
    assert "Telemetry partial in 1 of 1 benchmarks" in markdown and "GpuIsLost" in html
