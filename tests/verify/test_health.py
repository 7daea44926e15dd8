"""Decision functions over hand-made readings: both sides of every threshold."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from gpubench.verify import health
from gpubench.verify.health import (
    ClockEventReasons,
    ComputeReading,
    ContentionReading,
    DtypeCompute,
    GpuIdentity,
    InterconnectReading,
    LoadReading,
    MemoryHealth,
    MemtestReading,
    PatternResult,
    PcieLink,
    PeerReading,
    PerfReading,
    ProcessInfo,
    Verdict,
)

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP


def test_worst_and_registry() -> None:
    assert health.worst([P, S, W]) is W and health.worst([P, F, W]) is F and health.worst([]) is S
    assert health.CHECK_NAMES[0] == "config" and len(set(health.CHECK_NAMES)) == len(health.CHECKS)
    with pytest.raises(ValueError, match="unknown check 'nope'"):
        health.check_spec("nope")


def test_result_is_json_ready() -> None:
    r = health.decide_memtest(MemtestReading("cpu", 4096, (PatternResult("address", 1024, 0),), 1, 0.1, 3.0))
    text = json.dumps(r.as_dict(), allow_nan=False)
    assert '"verdict": "PASS"' in text and '"check": "memtest"' in text


# --- config ---------------------------------------------------------------------------------------

CFG = health.ConfigReading("cuda:1", "./dl.config.sdn:3:11", ("./dl.config.sdn",), "f32", None, None)


def test_config_found_valid_passes() -> None:
    r = health.decide_config(CFG)
    assert r.verdict is P and "./dl.config.sdn" in r.message and "from ./dl.config.sdn:3:11" in r.message


def test_config_defaults_only_warns() -> None:
    r = health.decide_config(replace(CFG, files=()))
    assert r.verdict is W and "no dl.config.sdn found" in r.message and "--config" in r.remedy


def test_config_dtype_unusable_fails() -> None:
    r = health.decide_config(replace(CFG, dtype="bf16", dtype_problem="Tesla T4 has no native bfloat16"))
    assert r.verdict is F and "no native bfloat16" in r.message


def test_config_with_unusable_device_does_not_claim_dtype() -> None:
    r = health.decide_config(replace(CFG, device_problem="only 1 GPU"))
    assert r.verdict is P and "dtype f32 not checked: cuda:1 unusable" in r.message
    assert "dtype f32 usable" not in r.message


# --- software -------------------------------------------------------------------------------------

SW = health.SoftwareStack("2.4.0", None, "12.4", None, 90100, "550.54.15", "12.4")


@pytest.mark.parametrize(
    ("driver_cuda", "verdict"),
    [("11.8", F), ("12.2", W), ("12.4", P), ("12.6", P), ("13.0", P)],
)
def test_software_driver_against_build(driver_cuda: str, verdict: Verdict) -> None:
    assert health.decide_software(replace(SW, driver_cuda=driver_cuda), "cuda:0").verdict is verdict


def test_software_without_torch_fails_everywhere() -> None:
    stack = health.SoftwareStack(None, "ModuleNotFoundError: torch", None, None, None, None, None)
    for device in ("cpu", "cuda:0"):
        r = health.decide_software(stack, device)
        assert r.verdict is F and "ModuleNotFoundError" in r.message


def test_software_cpu_only_build() -> None:
    stack = replace(SW, cuda_build=None, driver_version=None, driver_cuda=None)
    assert health.decide_software(stack, "cpu").verdict is P
    r = health.decide_software(stack, "cuda:1")
    assert r.verdict is F and "no CUDA support" in r.message


def test_software_no_driver_names_reason() -> None:
    stack = replace(SW, driver_version=None, driver_cuda=None, driver_error="NVML not available: no library")
    r = health.decide_software(stack, "cuda:1")
    assert r.verdict is F and "NVML not available: no library" in r.message and "nvidia-smi" in r.remedy


# --- inventory ------------------------------------------------------------------------------------

INV = health.Inventory("cuda:1", 2, 2, None)


def test_inventory_present_passes() -> None:
    assert health.decide_inventory(INV).verdict is P


def test_inventory_unusable_fails_with_exact_reason() -> None:
    r = health.decide_inventory(
        replace(
            INV,
            torch_count=1,
            unusable_code="index_out_of_range",
            unusable_reason="only 1 GPU(s) visible (cuda:0 (X)); cuda:1 does not exist.",
            unusable_remedy="choose cuda:0",
        )
    )
    assert r.verdict is F and "only 1 GPU(s) visible" in r.message and r.remedy == "choose cuda:0"


@pytest.mark.parametrize(
    ("nvml", "cvd", "verdict"), [(3, None, W), (2, None, P), (3, "0,1", P), (None, None, P)]
)
def test_inventory_counts(nvml: int | None, cvd: str | None, verdict: Verdict) -> None:
    assert health.decide_inventory(replace(INV, nvml_count=nvml, cuda_visible_devices=cvd)).verdict is verdict


# --- identity -------------------------------------------------------------------------------------

IDENT = GpuIdentity(
    device="cuda:1",
    torch_index=1,
    torch_name="NVIDIA H100 80GB HBM3",
    torch_total_memory=85_000_000_000,
    uuid="GPU-1",
    torch_pci=(0, 0x65, 0),
    nvml_found=True,
    nvml_index=1,
    nvml_name="NVIDIA H100 80GB HBM3",
    nvml_total_memory=85_520_809_984,
    nvml_pci=(0, 0x65, 0),
    nvml_bus_id="00000000:65:00.0",
    visible_models=("NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"),
)


def test_identity_agrees() -> None:
    r = health.decide_identity(IDENT)
    assert r.verdict is P and "cuda:1 = nvidia-smi GPU 1" in r.message and "GPU-1" in r.message


def test_identity_pci_mismatch_fails() -> None:
    r = health.decide_identity(replace(IDENT, nvml_pci=(0, 0x17, 0)))
    assert r.verdict is F and "PCI address mismatch" in r.message


def test_identity_name_mismatch_fails() -> None:
    assert health.decide_identity(replace(IDENT, nvml_name="NVIDIA A100")).verdict is F


@pytest.mark.parametrize(("torch_mem", "verdict"), [(int(100e9 * 0.971), P), (int(100e9 * 0.969), W)])
def test_identity_memory_tolerance(torch_mem: int, verdict: Verdict) -> None:
    r = health.decide_identity(
        replace(IDENT, torch_total_memory=torch_mem, nvml_total_memory=int(100e9)), 0.03
    )
    assert r.verdict is verdict


def test_identity_order_differs() -> None:
    mixed = replace(IDENT, nvml_index=0, visible_models=("NVIDIA RTX A6000", "NVIDIA H100 80GB HBM3"))
    r = health.decide_identity(mixed)
    assert r.verdict is W and "nvidia-smi's GPU 0" in r.message and "CUDA_DEVICE_ORDER is unset" in r.message
    assert health.decide_identity(replace(mixed, cuda_visible_devices="1,0")).verdict is P


def test_identity_without_uuid_or_nvml_skips_and_lookup_failure_fails() -> None:
    assert health.decide_identity(replace(IDENT, uuid=None)).verdict is S
    no_nvml = replace(IDENT, nvml_found=False, nvml_error="NVML not available: no driver")
    assert health.decide_identity(no_nvml).verdict is S
    lost = replace(IDENT, nvml_found=False, nvml_error="NVMLError_NotFound: Not Found")
    assert health.decide_identity(lost).verdict is F


# --- memory health --------------------------------------------------------------------------------

HEALTHY = MemoryHealth(True, True, 0, False, 0, 0, False, False, 0)


def test_memory_health_healthy_and_all_na() -> None:
    assert health.decide_memory_health(HEALTHY, "cuda:0").verdict is P
    r = health.decide_memory_health(MemoryHealth(), "cuda:0")
    assert r.verdict is S and "consumer GPUs" in r.message


@pytest.mark.parametrize(
    ("change", "verdict", "text"),
    [
        ({"retired_pages_pending": True}, F, "page retirement pending"),
        ({"remap_pending": True}, F, "row remapping pending"),
        ({"remap_failure": True}, F, "row remapping failed"),
        ({"remapped_uncorrectable": 511}, P, "no pending"),
        ({"remapped_uncorrectable": 512}, F, "512 rows remapped"),
        ({"volatile_uncorrected": 1}, F, "1 uncorrected ECC error"),
        ({"recovery_action": 1}, F, "GPU reset"),
        ({"recovery_action": 2}, F, "node reboot"),
        ({"ecc_current": False, "ecc_pending": False}, W, "ECC is disabled"),
        ({"ecc_pending": False}, W, "ECC mode change pending"),
        ({"remapped_correctable": 40}, P, "no pending"),
    ],
)
def test_memory_health_thresholds(change: dict[str, object], verdict: Verdict, text: str) -> None:
    r = health.decide_memory_health(replace(HEALTHY, **change), "cuda:0", remap_uncorrectable_limit=512)
    assert r.verdict is verdict and text in r.message


def test_memory_health_counts_increase_during_run() -> None:
    r = health.decide_memory_health(
        replace(HEALTHY, volatile_uncorrected=3), "cuda:0", baseline=replace(HEALTHY, volatile_uncorrected=1)
    )
    assert r.verdict is F and "2 during this run" in r.message


# --- memtest --------------------------------------------------------------------------------------


def _memtest(
    *patterns: PatternResult, planned: int | None = None, error: str | None = None
) -> MemtestReading:
    return MemtestReading("cuda:0", 1 << 20, patterns, planned or len(patterns), 1.0, 10.0, error)


def test_memtest_zero_and_one_mismatch() -> None:
    assert health.decide_memtest(_memtest(PatternResult("random", 1000, 0))).verdict is P
    r = health.decide_memtest(_memtest(PatternResult("random", 1000, 1, 7, 0x10)))
    assert r.verdict is F and r.value == 1 and "byte 28" in r.message and "0x00000010" in r.message


def test_memtest_time_bound_and_errors() -> None:
    r = health.decide_memtest(_memtest(PatternResult("address", 1000, 0), planned=5))
    assert r.verdict is P and "1 of 5 patterns" in r.message
    assert health.decide_memtest(_memtest(error="CUDA out of memory")).verdict is S
    assert health.decide_memtest(_memtest(PatternResult("address", 10, 0), error="device lost")).verdict is W


# --- compute --------------------------------------------------------------------------------------


def _dc(**kw: object) -> DtypeCompute:
    base = {
        "dtype": "bf16",
        "n": 64,
        "repeats": 3,
        "identical": True,
        "rel_error": 1e-3,
        "tolerance": 1.5e-2,
        "nonfinite": 0,
    }
    base.update(kw)
    return DtypeCompute(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "verdict"),
    [
        ({"rel_error": 1.5e-2}, P),
        ({"rel_error": 1.51e-2}, F),
        ({"nonfinite": 1}, F),
        ({"identical": False}, F),
    ],
)
def test_compute_thresholds(kw: dict[str, object], verdict: Verdict) -> None:
    assert health.decide_compute(ComputeReading("cuda:0", (_dc(**kw),))).verdict is verdict


def test_compute_all_skipped_is_skip_with_reasons() -> None:
    r = health.decide_compute(ComputeReading("cuda:0", (_dc(skipped="needs sm80"),)))
    assert r.verdict is S and "needs sm80" in r.message


def test_compute_tolerances_are_ordered_by_precision() -> None:
    t = health.COMPUTE_TOLERANCE
    assert t["f64"] < t["f32"] < t["tf32"] <= t["f16"] < t["bf16"]


# --- clock event reasons and under load -----------------------------------------------------------


def test_clock_event_reason_bits_match_nvml_h() -> None:
    # nvml.h: GpuIdle 0x1, ApplicationsClocksSetting 0x2, SwPowerCap 0x4, HwSlowdown 0x8, SyncBoost 0x10,
    # SwThermalSlowdown 0x20, HwThermalSlowdown 0x40, HwPowerBrakeSlowdown 0x80, DisplayClockSetting 0x100
    pynvml = pytest.importorskip("pynvml")
    for bit, name in ClockEventReasons.NAMES.items():
        camel = "".join(p.capitalize() for p in name.split("_")).replace("Sw", "Sw").replace("Hw", "Hw")
        const = {"GpuIdle": "GpuIdle"}.get(camel, camel)
        value = getattr(pynvml, f"nvmlClocksEventReason{const}", None) or getattr(
            pynvml, f"nvmlClocksThrottleReason{const}", None
        )
        assert value == bit, name
    r = ClockEventReasons(0x4 | 0x40 | 0x1000)
    assert r.names() == ("sw_power_cap", "hw_thermal_slowdown", "unknown_0x1000")


LOAD = LoadReading(
    device="cuda:0",
    seconds=5.0,
    samples=50,
    reasons_seen=0,
    peak_temp_c=70,
    slowdown_temp_c=89,
    shutdown_temp_c=92,
    gpu_max_temp_c=87,
    link=PcieLink(5, 16, 5, 16, 5),
    replay_before=3,
    replay_after=3,
    xid_events=(),
    tflops=400.0,
)


@pytest.mark.parametrize(
    ("bits", "verdict"),
    [(0x0, P), (0x1, P), (0x4, W), (0x8, F), (0x20, F), (0x40, F), (0x80, F), (0x10 | 0x2, P)],
)
def test_under_load_clock_reasons(bits: int, verdict: Verdict) -> None:
    assert health.decide_under_load(replace(LOAD, reasons_seen=bits)).verdict is verdict


@pytest.mark.parametrize(("peak", "verdict"), [(81, P), (82, W), (86, W), (87, F)])
def test_under_load_temperature(peak: int, verdict: Verdict) -> None:
    assert health.decide_under_load(replace(LOAD, peak_temp_c=peak), temp_margin_c=5).verdict is verdict


def test_under_load_temperature_falls_back_to_slowdown_threshold() -> None:
    r = health.decide_under_load(replace(LOAD, gpu_max_temp_c=None, peak_temp_c=89))
    assert r.verdict is F and "limit 89" in r.message


@pytest.mark.parametrize(
    ("link", "fraction", "verdict"),
    [
        (PcieLink(5, 16, 5, 16, 5), 1.0, P),
        (PcieLink(5, 9, 5, 16, 5), 1.0, W),
        (PcieLink(5, 8, 5, 16, 5), 1.0, F),
        (PcieLink(5, 12, 5, 16, 5), 0.75, P),
        (PcieLink(5, 11, 5, 16, 5), 0.75, W),
        (PcieLink(4, 16, 5, 16, 5), 1.0, W),
        (PcieLink(4, 16, 4, 16, 5), 1.0, P),
        (PcieLink(), 1.0, P),
    ],
)
def test_under_load_pcie_link(link: PcieLink, fraction: float, verdict: Verdict) -> None:
    assert (
        health.decide_under_load(replace(LOAD, link=link), pcie_min_width_fraction=fraction).verdict
        is verdict
    )


def test_under_load_replays_xids_nan() -> None:
    assert health.decide_under_load(replace(LOAD, replay_after=4)).verdict is W
    r = health.decide_under_load(replace(LOAD, xid_events=(79, 48)))
    assert r.verdict is F and "79, 48" in r.message
    na = health.decide_under_load(replace(LOAD, xid_events=None))
    assert na.verdict is P and "XID events N/A" in na.message
    assert health.decide_under_load(replace(LOAD, nonfinite=True)).verdict is F


def test_under_load_cannot_run() -> None:
    assert health.decide_under_load(replace(LOAD, samples=0, error="CUDA out of memory")).verdict is S


# --- contention -----------------------------------------------------------------------------------

CONT = ContentionReading("cuda:1", (), compute_mode=0, persistence=True, mig_current=False, mig_pending=False)


def test_contention_alone_passes() -> None:
    assert health.decide_contention(CONT).verdict is P


def test_contention_names_who_else() -> None:
    r = health.decide_contention(replace(CONT, processes=(ProcessInfo(4242, "jupyter", 2 * 2**30),)))
    assert r.verdict is W and "pid 4242 (jupyter, 2.0 GiB)" in r.message and r.value == 1


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        ({"compute_mode": 2}, F),
        ({"compute_mode": 3}, P),
        ({"mig_current": True}, W),
        ({"persistence": False}, P),
    ],
)
def test_contention_modes(change: dict[str, object], verdict: Verdict) -> None:
    assert health.decide_contention(replace(CONT, **change)).verdict is verdict


def test_contention_exclusive_mode_with_other_process_warns() -> None:
    busy = replace(CONT, compute_mode=3, processes=(ProcessInfo(1, None, None),))
    r = health.decide_contention(busy)
    assert r.verdict is W and "exclusive_process" in r.message


# --- performance floor ----------------------------------------------------------------------------

PERF = PerfReading("cuda:1", "GPU-B", "NVIDIA H100", "f32", 8192, 1 << 30, 45.0, 2500.0)


def test_perf_nothing_to_compare_passes_with_note() -> None:
    r = health.decide_perf_floor(PERF)
    assert r.verdict is P and "no same-model sibling" in r.message


@pytest.mark.parametrize(("tflops", "verdict"), [(45.0, P), (36.0, P), (35.99, F)])
def test_perf_against_siblings(tflops: float, verdict: Verdict) -> None:
    sibling = replace(PERF, device="cuda:0", uuid="GPU-A", matmul_tflops=40.0)
    r = health.decide_perf_floor(replace(PERF, matmul_tflops=tflops), [sibling], [], floor_pct=10.0)
    assert r.verdict is verdict


def test_perf_bandwidth_against_history_median() -> None:
    history = [
        replace(PERF, bandwidth_gbps=b, run_id=f"r{i}") for i, b in enumerate((2400.0, 2500.0, 2600.0))
    ]
    assert health.decide_perf_floor(replace(PERF, bandwidth_gbps=2250.0), [], history, 10.0).verdict is P
    r = health.decide_perf_floor(replace(PERF, bandwidth_gbps=2249.0), [], history, 10.0)
    assert r.verdict is F and "bandwidth" in r.message and "this GPU's last 3 run(s)" in r.message


def test_perf_ignores_other_models_sizes_and_gpus() -> None:
    others = [
        replace(PERF, device="cuda:0", uuid="GPU-A", name="NVIDIA A100", matmul_tflops=400.0),
        replace(PERF, device="cuda:0", uuid="GPU-A", n=4096, matmul_tflops=400.0),
    ]
    other_history = [replace(PERF, uuid="GPU-Z", matmul_tflops=400.0)]
    assert health.decide_perf_floor(PERF, others, other_history).verdict is P


def test_perf_on_cpu_warns_instead_of_failing() -> None:
    cpu = replace(PERF, device="cpu", uuid="cpu-host", name="cpu", matmul_tflops=0.05)
    r = health.decide_perf_floor(cpu, [], [replace(cpu, matmul_tflops=0.1)], 10.0)
    assert r.verdict is W and r.unit == "GFLOP/s" and r.value == 50.0


def test_perf_error_skips() -> None:
    assert health.decide_perf_floor(replace(PERF, matmul_tflops=None, error="OOM")).verdict is S


# --- interconnect ---------------------------------------------------------------------------------


def test_pcie_gbps_table() -> None:
    assert health.pcie_gbps(4, 16) == pytest.approx(31.5, rel=1e-3)
    assert health.pcie_gbps(5, 16) == pytest.approx(63.0, rel=1e-3)
    assert health.pcie_gbps(None, 16) is None and health.pcie_gbps(9, 16) is None


LINK = InterconnectReading("cuda:0", 1 << 28, 25.0, 26.0, PcieLink(4, 16, 4, 16, 4))


@pytest.mark.parametrize(("h2d", "verdict"), [(25.0, P), (15.76, P), (15.7, W)])
def test_interconnect_fraction_of_link(h2d: float, verdict: Verdict) -> None:
    assert health.decide_interconnect(replace(LINK, h2d_gbps=h2d), min_fraction=0.5).verdict is verdict


def test_interconnect_na_link_and_missing_measurement() -> None:
    r = health.decide_interconnect(replace(LINK, link=PcieLink()))
    assert r.verdict is P and "PCIe link N/A" in r.message
    assert health.decide_interconnect(replace(LINK, h2d_gbps=None, error="no pinned memory")).verdict is S


def test_interconnect_peers() -> None:
    ok = replace(LINK, peers=(PeerReading("cuda:0", "cuda:1", True, 40.0),))
    assert (
        health.decide_interconnect(ok).verdict is P
        and "peer cuda:0->cuda:1 40.0 GB/s" in health.decide_interconnect(ok).message
    )
    no_p2p = replace(LINK, peers=(PeerReading("cuda:0", "cuda:1", False, 9.0),))
    assert "no peer access" in health.decide_interconnect(no_p2p).message
    broken = replace(LINK, peers=(PeerReading("cuda:0", "cuda:1", None, None, "CUDA error"),))
    assert health.decide_interconnect(broken).verdict is W


def test_unusable_device_rows_name_the_reason() -> None:
    reason = "no usable NVIDIA driver or GPU: PyTorch 2.4 (CUDA 12.4) found no GPU (NVML not available: x)."
    r = health.device_unusable("memtest", "cuda:1", reason)
    assert r.verdict is S and r.message == "cuda:1 unusable: no usable NVIDIA driver or GPU (see inventory)"
    assert r.readings["unusable_reason"] == reason
