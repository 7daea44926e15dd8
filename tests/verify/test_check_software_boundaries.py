"""The software decision's exact rows: the driver's CUDA version at exactly the build's, one minor and one
major below, and versions that do not parse."""

from __future__ import annotations

from dataclasses import replace

from gpubench.verify.checks.software import SoftwareStack, _major_minor, decide_software
from gpubench.verify.verdicts import Verdict

SW = SoftwareStack("2.4.0", None, "12.4", None, 90100, "550.54.15", "12.4")


def test_major_minor() -> None:
    assert _major_minor("12.4") == (12, 4) and _major_minor("12.4.1") == (12, 4)
    assert _major_minor("12") == (12, 0) and _major_minor(12) == (12, 0)  # type: ignore[arg-type]
    assert _major_minor("") is None and _major_minor(None) is None and _major_minor("12.x") is None


def test_the_driver_exactly_at_the_build_passes() -> None:
    r = decide_software(SW, "cuda:0")
    assert (r.check, r.device, r.verdict, r.remedy) == ("software", "cuda:0", Verdict.PASS, "")
    assert r.message == "the driver supports PyTorch's CUDA build"
    assert r.value == "torch 2.4.0, CUDA build 12.4, cuDNN 90100, driver 550.54.15 (CUDA 12.4)"
    assert r.threshold == "driver CUDA >= build CUDA"
    assert r.readings["driver_cuda"] == "12.4"


def test_one_minor_below_warns_one_major_below_fails() -> None:
    minor = decide_software(replace(SW, driver_cuda="12.3"), "cuda:0")
    assert minor.verdict is Verdict.WARN
    assert minor.message == ("driver CUDA 12.3 < build CUDA 12.4: runs through minor-version compatibility; "
                             "kernels needing PTX JIT may fail")
    assert minor.remedy == "upgrade the driver to one supporting CUDA 12.4."
    major = decide_software(replace(SW, driver_cuda="11.9"), "cuda:0")
    assert major.verdict is Verdict.FAIL
    assert major.message == "driver 550.54.15 supports CUDA 11.9, older than PyTorch's CUDA 12.4"
    assert major.remedy == ("upgrade the NVIDIA driver to one supporting CUDA 12.4, or install a PyTorch build for "
                            "CUDA 11.9.")
    assert decide_software(replace(SW, driver_cuda="13.0", cuda_build="12.9"), "cuda:0").verdict is Verdict.PASS
    assert decide_software(replace(SW, cuda_build="12.x"), "cuda:0").verdict is Verdict.PASS  # build unparsed


def test_no_driver_fails_naming_why() -> None:
    r = decide_software(replace(SW, driver_version=None, driver_cuda=None, driver_error="NVML: no library"),
                        "cuda:0")
    assert r.verdict is Verdict.FAIL
    assert r.message == "no NVIDIA driver found for CUDA 12.4 (NVML: no library)"
    assert r.remedy == ("install the NVIDIA driver (`nvidia-smi` must work); in a container start it with "
                        "--gpus all.")
    assert r.value == "torch 2.4.0, CUDA build 12.4, cuDNN 90100"
    unread = decide_software(replace(SW, driver_cuda="garbage"), "cuda:0")
    assert unread.message == "no NVIDIA driver found for CUDA 12.4 (NVML not readable)"


def test_a_driver_whose_cuda_version_is_unknown_skips_when_gpus_are_seen() -> None:
    r = decide_software(replace(SW, driver_cuda=None, cuda_devices=2), "cuda:0")
    assert r.verdict is Verdict.SKIP
    assert r.message == ("the driver's CUDA version is N/A (NVML gives no driver version): PyTorch sees 2 GPU(s), "
                         "so a driver is loaded, but whether it supports CUDA 12.4 cannot be checked")
    assert r.remedy == "check `nvidia-smi` (its CUDA Version must be at least PyTorch's CUDA build)."
    assert r.value == "torch 2.4.0, CUDA build 12.4, cuDNN 90100, driver 550.54.15 (CUDA N/A)"
    assert r.threshold == "driver CUDA >= build CUDA"
    assert "(NoPermission)" in decide_software(replace(SW, driver_cuda=None, cuda_devices=1,
                                                       driver_error="NoPermission"), "cuda:0").message
    assert decide_software(replace(SW, driver_cuda=None, cuda_devices=0), "cuda:0").verdict is Verdict.FAIL


def test_cpu_and_builds_without_cuda() -> None:
    cpu = decide_software(replace(SW, cuda_build=None, driver_version=None, cudnn_version=None), "cpu")
    assert (cpu.verdict, cpu.message, cpu.threshold) == (Verdict.PASS, "PyTorch usable on cpu", "torch importable")
    assert cpu.value == "torch 2.4.0, CUDA build none (CPU-only), cuDNN N/A"
    rocm = decide_software(replace(SW, cuda_build=None, hip_build="6.1", driver_version=None), "cuda:0")
    assert rocm.verdict is Verdict.PASS and rocm.value.startswith("torch 2.4.0, CUDA build ROCm 6.1, ")
    none = decide_software(replace(SW, cuda_build=None), "cuda:1")
    assert none.verdict is Verdict.FAIL
    assert none.message == "this PyTorch build (2.4.0) has no CUDA support, so cuda:1 cannot exist"
    assert none.remedy == "install a CUDA build of PyTorch matching your driver, or verify with --device cpu."


def test_no_torch() -> None:
    r = decide_software(SoftwareStack(None, "ModuleNotFoundError: torch", None, None, None, None, None), "cpu")
    assert (r.verdict, r.message, r.remedy) == (
        Verdict.FAIL, "PyTorch is not importable (ModuleNotFoundError: torch)", "pip install torch in this environment.")
    assert (r.value, r.threshold) == ("torch missing", "torch importable")


def test_rows_name_their_check_and_keep_the_readings() -> None:
    for stack, device in ((SoftwareStack(None, "x", None, None, None, None, None), "cpu"),
                          (replace(SW, driver_cuda=None, cuda_devices=1), "cuda:0"),
                          (replace(SW, cuda_build=None), "cuda:0"), (SW, "cpu")):
        r = decide_software(stack, device)
        assert (r.check, r.device) == ("software", device)
        assert r.readings["torch_version"] == stack.torch_version
    assert _major_minor("12.4.beta") == (12, 4)  # only major and minor are read
