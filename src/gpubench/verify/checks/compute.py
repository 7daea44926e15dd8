"""Check ``compute``: repeated matmuls per dtype must be bit-identical, finite, and close to a float64
product."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpubench.devices import CudaProbe, DeviceSpec, dtype_support, torch_dtype_name
from gpubench.verify.context import DecidedNow, DeviceContext
from gpubench.verify.probing import error_text, fp32_precision, torch_device, torch_module
from gpubench.verify.verdicts import CheckResult, CheckSpec, Findings, Verdict, readings_dict

#: Normwise relative error ||C - C64|| / ||C64|| allowed per dtype for n x n random-normal matmuls, against a
#: float64 product of the same (already rounded) inputs. Unit roundoff: f32 6e-8, tf32 4.9e-4, bf16 3.9e-3,
#: f16 4.9e-4; the bounds leave room for accumulation order and reduced-precision reductions.
COMPUTE_TOLERANCE: dict[str, float] = {"f32": 1e-5, "tf32": 5e-3, "bf16": 1.5e-2, "f16": 1e-2, "f64": 1e-12}


@dataclass(frozen=True)
class DtypeCompute:
    """Repeated n x n matmuls in one dtype: bit-identical repeats, error against float64, non-finite count."""

    dtype: str
    n: int
    repeats: int
    identical: bool
    rel_error: float | None
    tolerance: float
    nonfinite: int
    skipped: str | None = None


@dataclass(frozen=True)
class ComputeReading:
    device: str
    results: tuple[DtypeCompute, ...]
    error: str | None = None


# --- the test -------------------------------------------------------------------------------------


def compute_dtypes(spec: DeviceSpec, probe: CudaProbe | None) -> dict[str, str | None]:
    """The dtypes the compute check runs on ``spec``: None when runnable, else why not."""
    support = dtype_support(spec, probe) if probe is not None else dict.fromkeys(("f16", "bf16", "f32"))
    result: dict[str, str | None] = {"f32": None}
    if spec.kind == "cpu":
        result["tf32"] = "TF32 is a CUDA tensor-core mode; not applicable to cpu"
    else:
        info = probe.device(spec.index or 0) if probe is not None else None
        ok = info is not None and info.capability >= (8, 0)
        result["tf32"] = None if ok else "TF32 needs compute capability 8.0 (Ampere) or newer"
    result["bf16"] = support.get("bf16")
    result["f16"] = support.get("f16")
    return result


def run_compute(
    device: str, dtypes: dict[str, str | None], n: int, repeats: int, seed: int = 0
) -> ComputeReading:
    """Repeat an n x n matmul per dtype; compare repeats bit for bit and the result with a float64 product.

    ``dtypes`` maps each dtype (``f32``, ``tf32``, ``bf16``, ``f16``) to None (run it) or the reason to
    skip it.
    """
    torch = torch_module()
    dev = torch_device(device)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    try:
        a64 = torch.randn(n, n, dtype=torch.float64, generator=gen).to(dev)
        b64 = torch.randn(n, n, dtype=torch.float64, generator=gen).to(dev)
    except (RuntimeError, MemoryError) as exc:
        return ComputeReading(device, (), error=error_text(exc))
    out: list[DtypeCompute] = []
    error = None
    for name, skip in dtypes.items():
        tol = COMPUTE_TOLERANCE[name]
        if skip:
            out.append(DtypeCompute(name, n, repeats, True, None, tol, 0, skipped=skip))
            continue
        tdtype = getattr(torch, torch_dtype_name("f32" if name == "tf32" else name))
        try:
            with fp32_precision("high" if name == "tf32" else "highest"):
                a, b = a64.to(tdtype), b64.to(tdtype)
                ref = a.double() @ b.double()
                first = a @ b
                identical = all(torch.equal(a @ b, first) for _ in range(max(0, repeats - 1)))
                nonfinite = int((~torch.isfinite(first)).sum().item())
                err = float(torch.linalg.norm(first.double() - ref) / torch.linalg.norm(ref))
            out.append(DtypeCompute(name, n, repeats, identical, err if err == err else None, tol, nonfinite))
        except (RuntimeError, MemoryError) as exc:
            out.append(DtypeCompute(name, n, repeats, True, None, tol, 0, skipped=error_text(exc)))
            error = error_text(exc)
    return ComputeReading(device, tuple(out), error=error)


# --- decision -------------------------------------------------------------------------------------


def decide_compute(r: ComputeReading) -> CheckResult:
    """FAIL on a NaN/Inf, a repeat that is not bit-identical, or an error above the dtype's tolerance."""
    f = Findings()
    ran = [d for d in r.results if d.skipped is None]
    worst_ratio = max((d.rel_error / d.tolerance for d in ran if d.rel_error is not None), default=None)
    kw: dict[str, Any] = {
        "value": None if worst_ratio is None else round(worst_ratio, 4),
        "threshold": 1.0,
        "unit": "x tolerance",
        "readings": readings_dict(r),
    }
    if not ran:
        reason = r.error or "; ".join(f"{d.dtype}: {d.skipped}" for d in r.results) or "no dtype ran"
        return CheckResult(
            "compute", r.device, Verdict.SKIP, message=f"compute test could not run: {reason}", **kw
        )
    remedy = (
        "rerun; if it repeats, the GPU computes wrongly: check clocks/temperature (under_load) and RMA it."
    )
    for d in ran:
        if d.nonfinite:
            f.add(Verdict.FAIL, f"{d.dtype}: {d.nonfinite} NaN/Inf in products of finite inputs", remedy)
        if not d.identical:
            f.add(
                Verdict.FAIL,
                f"{d.dtype}: {d.repeats} repeats of the same product are not bit-identical",
                remedy,
            )
        if d.rel_error is not None and d.rel_error > d.tolerance:
            f.add(
                Verdict.FAIL,
                f"{d.dtype}: error {d.rel_error:.2e} vs float64 above tolerance {d.tolerance:.0e}",
                remedy,
            )
    if r.error:
        f.add(Verdict.WARN, f"stopped early: {r.error}", "rerun the check.")
    for d in r.results:
        if d.skipped:
            f.note(f"{d.dtype} skipped: {d.skipped}")
    detail = ", ".join(f"{d.dtype} {d.rel_error:.1e}" for d in ran if d.rel_error is not None)
    return f.result("compute", r.device, f"bit-identical repeats, errors vs float64: {detail}", **kw)


def verify(ctx: DeviceContext) -> CheckResult:
    dtypes, plan = compute_dtypes(ctx.spec, ctx.probe), ctx.plan
    reading = run_compute(ctx.device, dtypes, plan.compute_n, plan.compute_repeats, seed=ctx.config.dl.seed)
    return decide_compute(reading)


CHECK = DecidedNow(CheckSpec("compute", "matmul repeatability and accuracy per dtype", cpu=True), verify)
