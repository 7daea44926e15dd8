"""Check ``software``: PyTorch, its CUDA build, cuDNN, and whether the driver supports that build."""

from __future__ import annotations

from dataclasses import dataclass

from gpubench import nvml
from gpubench.devices import CudaProbe
from gpubench.verify.context import DecidedNow, DeviceContext
from gpubench.verify.probing import as_text
from gpubench.verify.verdicts import CheckResult, CheckSpec, Findings, Verdict, readings_dict


@dataclass(frozen=True)
class SoftwareStack:
    """PyTorch and the CUDA pieces under it. ``driver_cuda`` is the newest CUDA the driver supports
    ("12.4").
    """

    torch_version: str | None
    torch_error: str | None
    cuda_build: str | None  # torch.version.cuda
    hip_build: str | None
    cudnn_version: int | None
    driver_version: str | None  # nvidia-smi --query-gpu=driver_version
    driver_cuda: str | None  # nvidia-smi's "CUDA Version" (nvmlSystemGetCudaDriverVersion)
    driver_error: str | None = None
    cuda_devices: int = 0  # GPUs PyTorch sees: with any, a driver is loaded even when NVML cannot say which


def read_software(probe: CudaProbe) -> SoftwareStack:
    """PyTorch, CUDA build, cuDNN (from the probe) and the driver's CUDA version (from NVML)."""
    error = nvml.init() if probe.torch_version is not None else None
    driver_cuda = nvml.cuda_driver_version() if error is None else nvml.NA
    if error is None and not nvml.available(driver_cuda):  # say why: NotSupported, NoPermission, ...
        error = nvml.call_or_error("nvmlSystemGetCudaDriverVersion")[1]
    return SoftwareStack(
        torch_version=probe.torch_version,
        torch_error=probe.torch_error,
        cuda_build=probe.cuda_build,
        hip_build=probe.hip_build,
        cudnn_version=probe.cudnn_version,
        driver_version=probe.driver_version,
        driver_cuda=as_text(driver_cuda),
        driver_error=probe.nvml_error or error,
        cuda_devices=probe.device_count,
    )


def _major_minor(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        parts = [int(p) for p in str(text).split(".")[:2]]
    except ValueError:
        return None
    return (parts[0], parts[1] if len(parts) > 1 else 0)


def _driver_findings(f: Findings, r: SoftwareStack) -> None:
    """The driver's CUDA version against PyTorch's CUDA build: missing or an older major FAILs, an older
    minor WARNs."""
    build_v, driver_v = _major_minor(r.cuda_build), _major_minor(r.driver_cuda)
    if r.driver_version is None or driver_v is None:
        f.add(
            Verdict.FAIL,
            f"no NVIDIA driver found for CUDA {r.cuda_build} ({r.driver_error or 'NVML not readable'})",
            "install the NVIDIA driver (`nvidia-smi` must work); in a container start it with --gpus all.",
        )
    elif build_v is not None and driver_v[0] < build_v[0]:
        f.add(
            Verdict.FAIL,
            f"driver {r.driver_version} supports CUDA {r.driver_cuda}, older than PyTorch's CUDA {r.cuda_build}",
            f"upgrade the NVIDIA driver to one supporting CUDA {r.cuda_build}, or install a PyTorch build for "
            f"CUDA {r.driver_cuda}.",
        )
    elif build_v is not None and driver_v < build_v:
        f.add(
            Verdict.WARN,
            f"driver CUDA {r.driver_cuda} < build CUDA {r.cuda_build}: runs through minor-version "
            "compatibility; kernels needing PTX JIT may fail",
            f"upgrade the driver to one supporting CUDA {r.cuda_build}.",
        )


def decide_software(r: SoftwareStack, device: str) -> CheckResult:
    """FAIL without PyTorch, without CUDA support for a GPU device, or with a driver too old for the build.

    CUDA minor-version compatibility lets a 12.x driver run any 12.y build, so an older minor is a WARN
    (PTX JIT of newer code can still fail); an older major is a FAIL.
    """
    f = Findings()
    value = f"torch {r.torch_version or 'missing'}"
    if r.torch_version is None:
        f.add(
            Verdict.FAIL,
            f"PyTorch is not importable ({r.torch_error})",
            "pip install torch in this environment.",
        )
        return f.result(
            "software", device, "", value=value, threshold="torch importable", readings=readings_dict(r)
        )
    build = r.cuda_build or (f"ROCm {r.hip_build}" if r.hip_build else None)
    value += f", CUDA build {build or 'none (CPU-only)'}, cuDNN {r.cudnn_version or 'N/A'}"
    if r.driver_version:
        value += f", driver {r.driver_version} (CUDA {r.driver_cuda or 'N/A'})"
    threshold = "driver CUDA >= build CUDA"
    if device == "cpu":
        return f.result(
            "software",
            device,
            "PyTorch usable on cpu",
            value=value,
            threshold="torch importable",
            readings=readings_dict(r),
        )
    if r.cuda_build is None and r.hip_build is None:
        f.add(
            Verdict.FAIL,
            f"this PyTorch build ({r.torch_version}) has no CUDA support, so {device} cannot exist",
            "install a CUDA build of PyTorch matching your driver, or verify with --device cpu.",
        )
    elif r.cuda_build is not None and not r.driver_cuda and r.cuda_devices:
        return CheckResult(
            "software",
            device,
            Verdict.SKIP,
            value=value,
            threshold=threshold,
            message=f"the driver's CUDA version is N/A ({r.driver_error or 'NVML gives no driver version'}): "
            f"PyTorch sees {r.cuda_devices} GPU(s), so a driver is loaded, but whether it supports CUDA "
            f"{r.cuda_build} cannot be checked",
            remedy="check `nvidia-smi` (its CUDA Version must be at least PyTorch's CUDA build).",
            readings=readings_dict(r),
        )
    elif r.cuda_build is not None:
        _driver_findings(f, r)
    return f.result(
        "software",
        device,
        "the driver supports PyTorch's CUDA build",
        value=value,
        threshold=threshold,
        readings=readings_dict(r),
    )


def verify(ctx: DeviceContext) -> CheckResult:
    return decide_software(read_software(ctx.probe), ctx.device)


CHECK = DecidedNow(
    CheckSpec(
        "software", "PyTorch, CUDA build, cuDNN, driver compatibility", cpu=True, needs_usable_device=False
    ),
    verify,
)
