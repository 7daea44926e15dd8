"""What this machine offers the proof: GPUs seen by PyTorch, NVML, nvidia-smi, triton, NCCL.

    python scripts/proof/probe.py WORK_DIR

Writes ``WORK_DIR/probe.json`` (everything found, with the reason for everything missing) and
``WORK_DIR/probe.env`` (shell assignments, each value quoted with ``shlex.quote``, that
``scripts/proof/proof.sh`` sources to decide which steps run). Never fails for a missing piece: a
missing piece is a value. Exit 2 only on bad usage.
"""

from __future__ import annotations

import json
import platform
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def probe_torch() -> dict[str, Any]:
    try:
        import torch
    except Exception as exc:
        return {"available": False, "reason": f"PyTorch is not importable: {_reason(exc)}", "gpus": []}
    out: dict[str, Any] = {"available": True, "version": torch.__version__, "cuda_build": torch.version.cuda}
    try:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception as exc:  # a broken driver answers here
        count, out["cuda_reason"] = 0, _reason(exc)
    out["gpus"] = [torch.cuda.get_device_name(i) for i in range(count)]
    if not count and "cuda_reason" not in out:
        out["cuda_reason"] = (
            "PyTorch has no CUDA build" if torch.version.cuda is None else "PyTorch sees no CUDA device"
        )
    dist = torch.distributed.is_available()
    out["distributed"] = dist
    out["nccl"] = bool(dist and torch.distributed.is_nccl_available())
    return out


def probe_nvml() -> dict[str, Any]:
    try:
        import pynvml
    except Exception as exc:
        return {"available": False, "reason": f"nvidia-ml-py (pynvml) is not importable: {_reason(exc)}"}
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        return {"available": False, "reason": f"NVML did not initialise: {_reason(exc)}"}
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        count = pynvml.nvmlDeviceGetCount()
    except Exception as exc:
        return {"available": False, "reason": f"NVML initialised but cannot be read: {_reason(exc)}"}
    finally:
        pynvml.nvmlShutdown()
    driver = driver.decode() if isinstance(driver, bytes) else driver
    return {"available": True, "driver": driver, "gpus": count}


def probe_triton() -> dict[str, Any]:
    try:
        import triton
        from triton.testing import do_bench  # noqa: F401  (what compare_timers.py needs)
    except Exception as exc:
        return {"available": False, "reason": f"triton.testing.do_bench is not importable: {_reason(exc)}"}
    return {"available": True, "version": getattr(triton, "__version__", "unknown")}


def probe() -> dict[str, Any]:
    torch_info = probe_torch()
    smi = shutil.which("nvidia-smi")
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "host": platform.node(),
        "torch": torch_info,
        "nvml": probe_nvml(),
        "nvidia_smi": {"available": smi is not None, "path": smi}
        | ({} if smi else {"reason": "nvidia-smi is not on PATH"}),
        "triton": probe_triton(),
        "gpu": bool(torch_info.get("gpus")),
    }


def shell_env(found: dict[str, Any]) -> str:
    """The assignments proof.sh sources: 1/0 flags and one-line reasons."""
    torch_info, nvml, smi = found["torch"], found["nvml"], found["nvidia_smi"]
    values = {
        "PROOF_GPU": "1" if found["gpu"] else "0",
        "PROOF_GPU_COUNT": str(len(torch_info.get("gpus", []))),
        "PROOF_GPU_REASON": torch_info.get("cuda_reason") or torch_info.get("reason") or "",
        "PROOF_NVML": "1" if nvml["available"] else "0",
        "PROOF_NVML_REASON": nvml.get("reason", ""),
        "PROOF_SMI": "1" if smi["available"] else "0",
        "PROOF_SMI_REASON": smi.get("reason", ""),
        "PROOF_NCCL": "1" if torch_info.get("nccl") else "0",
    }
    return "".join(f"{k}={shlex.quote(' '.join(v.split()))}\n" for k, v in values.items())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python scripts/proof/probe.py WORK_DIR", file=sys.stderr)
        return 2
    work = Path(args[0])
    found = probe()
    (work / "probe.json").write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    (work / "probe.env").write_text(shell_env(found), encoding="utf-8")
    gpus = ", ".join(found["torch"].get("gpus", [])) or "none"
    print(f"python {found['python']}; torch {found['torch'].get('version', '-')}; GPUs: {gpus}; "
          f"NVML: {'yes' if found['nvml']['available'] else found['nvml']['reason']}; "
          f"nvidia-smi: {found['nvidia_smi']['path'] or 'not found'}; "
          f"triton: {found['triton'].get('version') or found['triton']['reason']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
