"""The verify side on simulated machines: the real probes over the simulated NVML (gpubench.testing.nvml_sim)
and the simulated CUDA devices (gpubench.testing.cuda_sim), whose kernels run on cpu."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pynvml
import pytest

from gpubench import nvml
from gpubench.config import Config, load_config
from gpubench.devices import probe_cuda
from gpubench.telemetry import NvmlSource
from gpubench.testing.cuda_sim import simulated_cuda
from gpubench.testing.nvml_sim import SimClock, load_profile, simulated_nvml
from gpubench.verify import Plan, VerifyReport, run_checks, write_report
from gpubench.verify.checks import CHECK_NAMES
from gpubench.verify.checks.contention import ContentionReading, decide_contention, own_pids, read_contention
from gpubench.verify.checks.load import clock_event_reasons, run_burn
from gpubench.verify.verdicts import Verdict

OLD_UUID = "GPU-00000000-0000-0000-0000-000000000000"


@pytest.fixture(autouse=True)
def _no_cuda_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)


# --- clock event reasons: one reading for verify and telemetry (review item 4) --------------------


def test_old_driver_clock_event_reasons_fall_back_in_telemetry() -> None:
    """Driver 525 lacks nvmlDeviceGetCurrentClocksEventReasons (FunctionNotFound): the older call answers."""
    with simulated_nvml("old-driver", clock=SimClock.manual()) as machine:
        source = NvmlSource(OLD_UUID)
        assert source.open() is None
        try:
            reading = source.read()
        finally:
            source.close()
        assert reading["clock_event_reasons_mask"] == 0
        assert "clock_event_reasons_mask" not in source.unavailable
        assert machine.call_count("nvmlDeviceGetCurrentClocksThrottleReasons") >= 1


def test_old_driver_clock_event_reasons_fall_back_in_verify() -> None:
    with simulated_nvml("old-driver", clock=SimClock.manual()) as machine:
        assert nvml.init() is None
        handle = nvml.handle_by_uuid(OLD_UUID)
        assert clock_event_reasons(handle) == 0
        load = run_burn("cpu", OLD_UUID, seconds=0.02, dtype="f32", n=16, interval_s=0.01)
        assert load.reasons_seen == 0 and load.samples >= 2
        assert machine.call_count("nvmlDeviceGetCurrentClocksThrottleReasons") >= 3


def test_new_driver_uses_the_newer_call_only() -> None:
    with simulated_nvml("h100-sxm", clock=SimClock.manual()) as machine:
        assert nvml.init() is None
        assert nvml.clock_event_reasons(nvml.handle_by_uuid(OLD_UUID)) == 1  # gpu_idle
        assert machine.call_count("nvmlDeviceGetCurrentClocksEventReasons") == 1
        assert machine.call_count("nvmlDeviceGetCurrentClocksThrottleReasons") == 0


@pytest.mark.parametrize(
    ("error", "raised"),
    [("NotSupported", pynvml.NVMLError_NotSupported), ("GpuIsLost", pynvml.NVMLError_GpuIsLost)],
)
def test_other_errors_are_not_mistaken_for_an_old_driver(error: str, raised: type[Exception]) -> None:
    """Only a missing function falls back; NotSupported or a lost GPU reach the caller (telemetry tells them apart)."""
    with simulated_nvml("h100-sxm", clock=SimClock.manual()) as machine:
        assert nvml.init() is None
        handle = nvml.handle_by_uuid(OLD_UUID)
        machine.inject("nvmlDeviceGetCurrentClocksEventReasons", error=error)
        with pytest.raises(raised):
            nvml.clock_event_reasons(handle)
        assert machine.call_count("nvmlDeviceGetCurrentClocksThrottleReasons") == 0
        assert clock_event_reasons(handle) is None  # verify's probe: N/A


def test_telemetry_marks_the_reasons_unavailable_when_not_supported() -> None:
    with simulated_nvml("h100-sxm", clock=SimClock.manual()) as machine:
        machine.inject("nvmlDeviceGetCurrentClocksEventReasons", error="NotSupported")
        source = NvmlSource(OLD_UUID)
        assert source.open() is None
        try:
            assert source.read()["clock_event_reasons_mask"] is None
        finally:
            source.close()
        assert "Not Supported" in source.unavailable["clock_event_reasons_mask"]


# --- contention: this process inside a container (review item 6) ---------------------------------


def _contention(profile: str | dict[str, Any], visible: str | None = None) -> ContentionReading:
    with (
        simulated_nvml(profile, clock=SimClock.manual()) as machine,
        simulated_cuda(machine, visible=visible),
    ):
        probe = probe_cuda()
        return read_contention("cuda:0", probe.devices[0].uuid)


def test_container_own_process_is_not_contention() -> None:
    """old-driver runs in a container: NVML lists this process under host PID 4711, not os.getpid()."""
    reading = _contention("old-driver")
    assert reading.processes == () and not reading.self_among
    assert reading.own_entry is not None and "pid 4711" in reading.own_entry
    result = decide_contention(reading)
    assert result.verdict is Verdict.PASS, result.message
    assert result.value == 0 and "this process is pid 4711" in result.message


def _old_driver_with(*processes: dict[str, Any]) -> dict[str, Any]:
    data = load_profile("old-driver").to_dict()
    data["gpus"][0]["processes"] = list(processes)
    return data


SELF = {
    "pid": "self",
    "name": None,
    "used_memory_bytes": 2**30,
    "gpu_instance_id": None,
    "compute_instance_id": None,
}
OTHER = {**SELF, "pid": 9999, "name": "python3", "used_memory_bytes": 3 * 2**30}


def test_container_with_another_process_counts_one_other() -> None:
    reading = _contention(_old_driver_with(SELF, OTHER))
    assert reading.self_among and {p.pid for p in reading.processes or ()} == {4711, 9999}
    result = decide_contention(reading)
    assert result.verdict is Verdict.WARN and result.value == 1
    assert (
        "1 other process(es) on cuda:0" in result.message and "one of these is this process" in result.message
    )


def test_without_a_context_every_entry_is_another_process() -> None:
    reading = _contention(_old_driver_with(OTHER))  # this process holds no context on the GPU
    assert [(p.pid, p.name) for p in reading.processes or ()] == [(9999, "python3")]
    assert not reading.self_among and reading.own_entry is None
    assert decide_contention(reading).verdict is Verdict.WARN


def test_own_pid_outside_a_container() -> None:
    data = load_profile("old-driver").to_dict()
    data["self_host_pid"] = None  # NVML reports os.getpid() for this process
    reading = _contention(data)
    assert reading.processes == () and reading.own_entry == f"pid {os.getpid()}"


def test_own_pids_reads_nspid(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nPid:\t12\nNSpid:\t4711\t12\nPPid:\t1\n", encoding="ascii")
    assert own_pids(status) == {os.getpid(), 4711, 12}
    assert own_pids(tmp_path / "missing") == {os.getpid()}


def test_mig_instance_lists_its_own_processes_and_mig_is_expected() -> None:
    first = decide_contention(_contention("mig-a100"))  # 3g.20gb holds pid 31337 (python3)
    assert first.verdict is Verdict.WARN and "pid 31337 (python3, 512.0 MiB)" in first.message
    assert "MIG mode is on:" not in first.message and "a MIG instance" in first.message
    second = decide_contention(_contention("mig-a100", visible="MIG-00000002"))
    assert second.verdict is Verdict.PASS and second.value == 0, second.message


# --- every check on every simulated machine ------------------------------------------------------

#: The cuda plan sized for work that runs on cpu (the simulated GPUs' execution device).
TINY_CUDA = Plan(
    level="quick",
    memtest_fraction=0.01,
    memtest_cap_bytes=1 << 16,
    memtest_seconds=1.0,
    compute_n=32,
    compute_repeats=2,
    burn_seconds=0.02,
    burn_n=32,
    perf_n=64,
    perf_repeats=2,
    copy_bytes=1 << 16,
    transfer_bytes=1 << 16,
    transfer_repeats=2,
)

P, W, F, S = Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.SKIP

#: What each profile implies for cuda:0, check by check (the checks left out depend on cpu timings).
EXPECTED: dict[str, dict[str, Verdict]] = {
    "h100-sxm": {
        "identity": P,
        "software": P,
        "inventory": P,
        "contention": P,
        "memory_health": P,
        "under_load": P,
    },
    "h200": {
        "identity": P,
        "software": P,
        "inventory": P,
        "contention": P,
        "memory_health": P,
        "under_load": P,
    },
    # ECC supported but off (WARN), remap state N/A; kwin_wayland shares the GPU; the idle link sits at gen 1
    "consumer-rtx4090": {"identity": P, "software": P, "contention": W, "memory_health": W, "under_load": W},
    "degraded-pcie-remaps": {
        "identity": P,
        "software": P,
        "contention": P,
        "memory_health": F,
        "under_load": F,
    },
    "mig-a100": {"identity": P, "software": P, "contention": W, "memory_health": P, "under_load": P},
    "old-driver": {"identity": P, "software": W, "contention": P, "memory_health": P, "under_load": P},
    "dgx-8gpu-order": {"identity": W, "software": P, "contention": P, "memory_health": P, "under_load": P},
}


@pytest.fixture(autouse=True)
def _light_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """results.software_versions reads package metadata (slow when cold): not what is tested here."""
    monkeypatch.setattr("gpubench.results.software_versions", lambda: {"python": "test", "gpubench": "test"})


def _config(tmp_path: Path, devices: list[str]) -> Config:
    cfg = tmp_path / "dl.config.sdn"
    cfg.write_text('dl:\n  device: "cuda:0"\n  dtype: "f32"\n', encoding="utf-8")
    flags = {"results.dir": str(tmp_path / "results"), "verify.devices": devices}
    return load_config(cfg, env={}, cwd=tmp_path, user_files=False, flags=flags)


def _verify_all(tmp_path: Path, **progress: Any) -> VerifyReport:
    """Every check on every device the simulated node shows (run inside simulated_nvml/simulated_cuda)."""
    probe = probe_cuda()
    config = _config(tmp_path, [f"cuda:{i}" for i in range(probe.device_count)])
    return run_checks(config, plans={"cuda": TINY_CUDA}, probe=probe, **progress)


def _readings(report: VerifyReport, device: str, check: str) -> dict[str, Any]:
    result = report.find(device, check)
    assert result is not None, (device, check)
    return dict(result.readings)


def _probes_ran(report: VerifyReport, device: str) -> None:
    """The active checks ran their kernels (on cpu) and the passive ones read NVML."""
    assert _readings(report, device, "memtest")["bytes_tested"] > 0
    compute = _readings(report, device, "compute")["results"]
    assert any(d["rel_error"] is not None for d in compute)
    burn = _readings(report, device, "under_load")
    # the burn measured a rate (on a loaded cpu a tiny matmul may round to 0.000 TFLOP/s)
    assert burn["samples"] >= 2 and burn["tflops"] is not None and burn["peak_temp_c"] is not None
    assert _readings(report, device, "perf_floor")["measured"]["matmul_tflops"]
    copies = _readings(report, device, "interconnect")
    assert copies["h2d_gbps"] and copies["link"]["gen"] is not None
    assert _readings(report, device, "identity")["nvml_found"] is True


@pytest.mark.parametrize("profile", sorted(EXPECTED))
def test_every_check_runs_on_every_simulated_machine(profile: str, tmp_path: Path) -> None:
    with simulated_nvml(profile, clock=SimClock.manual()) as machine, simulated_cuda(machine) as cuda:
        report = _verify_all(tmp_path)
    assert [d["execution_device"] for d in report.devices] == ["cpu"] * cuda.device_count()
    for i in range(cuda.device_count()):
        device = f"cuda:{i}"
        assert [r.check for r in report.results if r.device == device] == list(CHECK_NAMES)
        _probes_ran(report, device)
        for check, verdict in EXPECTED[profile].items():
            result = report.find(device, check)
            assert result is not None and result.verdict is verdict, f"{profile} {device} {check}: {result}"
            if verdict in (W, F):
                assert result.remedy, f"{profile} {device} {check} has no remedy"
        assert report.find(device, "config").verdict is P  # type: ignore[union-attr]
        assert report.find(device, "memtest").verdict is P  # type: ignore[union-attr]
        assert report.find(device, "compute").verdict is P  # type: ignore[union-attr]


def _message(report: VerifyReport, check: str, device: str = "cuda:0") -> str:
    result = report.find(device, check)
    assert result is not None
    return result.message


def test_consumer_gpu_memory_state_is_na_not_a_failure(tmp_path: Path) -> None:
    with simulated_nvml("consumer-rtx4090") as machine, simulated_cuda(machine):
        report = _verify_all(tmp_path)
    health = _message(report, "memory_health")
    assert "ECC is disabled" in health and "N/A: volatile_uncorrected" in health and "remap_pending" in health
    assert "pid 2165 (kwin_wayland, 25.0 MiB)" in _message(report, "contention")
    assert "gen 1 under load, the link allows gen 4" in _message(report, "under_load")


def test_consumer_gpu_without_ecc_skips_memory_health(tmp_path: Path) -> None:
    data = load_profile("consumer-rtx4090").to_dict()
    data["gpus"][0]["ecc_mode"] = None  # a card with no ECC at all: every memory reading NotSupported
    data["gpus"][0]["fields"] = {}
    with simulated_nvml(data) as machine, simulated_cuda(machine):
        report = _verify_all(tmp_path)
    result = report.find("cuda:0", "memory_health")
    assert result is not None and result.verdict is S and "consumer GPUs" in result.message


def test_degraded_link_and_pending_remap_are_flagged(tmp_path: Path) -> None:
    with simulated_nvml("degraded-pcie-remaps") as machine, simulated_cuda(machine):
        report = _verify_all(tmp_path)
    health = _message(report, "memory_health")
    assert "row remapping pending" in health and "recovery action: GPU reset" in health
    load = _message(report, "under_load")
    assert "PCIe link x8 under load, the link allows x16" in load and "gen 3 under load" in load
    assert "XID event(s) during the burn: 63" in load
    assert report.exit_code == 1


def test_mig_instance_is_identified(tmp_path: Path) -> None:
    with simulated_nvml("mig-a100") as machine, simulated_cuda(machine, visible="MIG-00000002"):
        report = _verify_all(tmp_path)
    identity = _message(report, "identity")
    assert "cuda:0 = nvidia-smi GPU 0 MIG instance (GI 3, CI 0)" in identity
    assert "MIG 2g.10gb" in identity and "PCI 00000000:06:00.0" in identity
    assert report.devices[0]["uuid"] == "MIG-00000002-0000-0000-0000-000000000002"
    assert report.find("cuda:0", "contention").verdict is P  # type: ignore[union-attr]


@pytest.mark.parametrize(("build", "verdict"), [("12.8", W), ("13.0", F), ("12.0", P)])
def test_old_driver_against_the_cuda_build(build: str, verdict: Verdict, tmp_path: Path) -> None:
    with simulated_nvml("old-driver") as machine, simulated_cuda(machine) as cuda:
        cuda.cuda_build_version = build
        report = _verify_all(tmp_path)
    software = report.find("cuda:0", "software")
    assert software is not None and software.verdict is verdict, software.message
    if verdict is not P:
        assert "driver" in software.message and "12.0" in software.message and build in software.message
    assert report.find("cuda:0", "contention").verdict is P  # type: ignore[union-attr]


def test_dgx_identity_maps_cuda_n_by_uuid(tmp_path: Path) -> None:
    with simulated_nvml("dgx-8gpu-order") as machine, simulated_cuda(machine):
        order = machine.profile.cuda_order or ()
        report = _verify_all(tmp_path)
    for n, nvml_index in enumerate(order):
        reading = _readings(report, f"cuda:{n}", "identity")
        assert reading["nvml_index"] == nvml_index
        assert reading["uuid"] == machine.profile.gpus[nvml_index].uuid
        assert reading["nvml_bus_id"] == machine.profile.gpus[nvml_index].pci.bus_id  # type: ignore[union-attr]
    assert "PyTorch's cuda:0 is nvidia-smi's GPU 4 (00000000:97:00.0)" in _message(report, "identity")


def test_dgx_scheduler_order_explained_by_cuda_visible_devices(tmp_path: Path) -> None:
    with (
        simulated_nvml("dgx-8gpu-order") as machine,
        simulated_cuda(machine, visible="4,5,6,7,0,1,2,3", order="PCI_BUS_ID"),
    ):
        report = _verify_all(tmp_path)
    identity = report.find("cuda:0", "identity")
    assert identity is not None and identity.verdict is P
    assert (
        "numbering differs from nvidia-smi's because CUDA_VISIBLE_DEVICES='4,5,6,7,0,1,2,3'"
        in identity.message
    )


# --- faults --------------------------------------------------------------------------------------


def test_gpu_lost_mid_run_fails_that_device_only(tmp_path: Path) -> None:
    """NVML GPU 4 (cuda:0 here) falls off the bus three calls into its burn; cuda:1 and the results survive."""
    with simulated_nvml("dgx-8gpu-order", clock=SimClock.manual()) as machine, simulated_cuda(machine):

        def lose_during_burn(step: str) -> None:
            if step == "cuda:0: under_load":
                machine.lose_gpu(4, after=3)

        probe = probe_cuda()
        config = _config(tmp_path, ["cuda:0", "cuda:1"])
        report = run_checks(config, plans={"cuda": TINY_CUDA}, probe=probe, progress=lose_during_burn)
    json_path, xml_path = write_report(report, tmp_path / "results")
    lost = {r.check: r for r in report.results if r.device == "cuda:0"}
    assert (
        lost["under_load"].verdict is F and "NVML lost the GPU during the burn" in lost["under_load"].message
    )
    assert "GPU is lost" in lost["under_load"].message and "XID 79" in lost["under_load"].remedy
    assert lost["memory_health"].verdict is F and "GPU is lost" in lost["memory_health"].message
    assert lost["identity"].verdict is W  # read before the loss
    survivor = [r for r in report.results if r.device == "cuda:1"]
    assert len(survivor) == len(CHECK_NAMES) and not any(
        r.verdict is F for r in survivor if r.check != "perf_floor"
    )
    assert report.exit_code == 1
    saved = json.loads(json_path.read_text(encoding="utf-8"))
    assert {c["device"] for c in saved["checks"]} == {"cuda:0", "cuda:1"}
    assert any(
        c["device"] == "cuda:0" and c["check"] == "under_load" and c["verdict"] == "FAIL"
        for c in saved["checks"]
    )
    assert xml_path.is_file()


def test_gpu_lost_before_the_run(tmp_path: Path) -> None:
    with simulated_nvml("h100-sxm") as machine, simulated_cuda(machine):
        probe = probe_cuda()
        machine.lose_gpu(0)
        report = run_checks(_config(tmp_path, ["cuda:0"]), plans={"cuda": TINY_CUDA}, probe=probe)
    verdicts = {r.check: r.verdict for r in report.results}
    assert verdicts["identity"] is F and verdicts["contention"] is F and verdicts["memory_health"] is F
    assert "GPU is lost" in _message(report, "identity")


@pytest.mark.parametrize("when", ["before init", "after init"])
def test_not_supported_everywhere(when: str, tmp_path: Path) -> None:
    """Every NVML function answers NotSupported: no crash, readings N/A, SKIPs that say why."""
    with simulated_nvml("h100-sxm") as machine, simulated_cuda(machine):
        if when == "after init":
            assert nvml.init() is None
        machine.inject("*", error="NotSupported")
        report = _verify_all(tmp_path)
    verdicts = {r.check: r.verdict for r in report.results}
    assert set(verdicts) == set(CHECK_NAMES)
    assert not any(v is F for v in verdicts.values()), [(r.check, r.message) for r in report.results]
    for check in ("identity", "contention", "memory_health", "under_load", "software"):
        result = report.find("cuda:0", check)
        assert result is not None and result.verdict is S, (check, result)
        assert "Not Supported" in result.message or "NotSupported" in result.message, (check, result.message)
    assert verdicts["memtest"] is P and verdicts["compute"] is P
    assert "N/A" in _message(report, "inventory") and "link N/A" in _message(report, "interconnect")


def test_the_printed_report_says_the_gpu_is_simulated(tmp_path: Path) -> None:
    from io import StringIO

    from rich.console import Console

    from gpubench.verify import verify

    buffer = StringIO()
    with simulated_nvml("h200") as machine, simulated_cuda(machine):
        config = _config(tmp_path, ["cuda:0"])
        report, (json_path, _xml) = verify(
            config, plans={"cuda": TINY_CUDA}, console=Console(file=buffer, width=200)
        )
    assert "NOTE: cuda:0 is a simulated GPU: its kernels ran on cpu" in buffer.getvalue()
    assert json.loads(json_path.read_text(encoding="utf-8"))["devices"][0]["execution_device"] == "cpu"
    assert report.find("cuda:0", "identity").verdict is P  # type: ignore[union-attr]
