"""Tensor creation, tensor operations and copies: what each call moves and computes, and how to run it.

Counting conventions (per call; bytes are what the operation must read plus write at least once):

- creation (zeros, ones, randn): writes ``n`` elements; 0 FLOPs (randn's generator is not counted).
- add, mul: reads two inputs, writes one output (``3 n`` elements); ``n`` FLOPs.
- relu: reads one, writes one (``2 n``); ``n`` FLOPs (one compare-select per element).
- sigmoid: ``2 n`` elements; ``3 n`` FLOPs (exp, add, divide: a transcendental counts as one).
- tanh: ``2 n`` elements; ``n`` FLOPs (one transcendental).
- matmul ``n x n @ n x n``: ``2 n^3`` FLOPs; ``3 n^2`` elements (A, B read and C written once).
- copies host-to-device / device-to-host: ``nbytes`` cross the link once; device-to-device copies
  count read plus write (``2 nbytes``), as CUDA's bandwidthTest does.

Outputs are preallocated (``out=``) so a call measures the operation, not the allocator (on CPU a
fresh 64 MiB output costs page faults that have nothing to do with the arithmetic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gpubench.devices import torch_dtype_name

CREATION_OPS = ("zeros", "ones", "randn")
ELEMENTWISE_OPS = ("add", "mul", "relu", "sigmoid", "tanh")
COPY_KINDS = ("h2d-pinned", "h2d-pageable", "d2h-pinned", "d2h-pageable", "d2d")
ITEMSIZE = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8}

_ELEMENTWISE = {  # op: (elements moved per output element, FLOPs per element, inputs)
    "add": (3, 1, 2),
    "mul": (3, 1, 2),
    "relu": (2, 1, 1),
    "sigmoid": (2, 3, 1),
    "tanh": (2, 1, 1),
}


class WorkloadError(ValueError):
    """A workload that cannot run as asked (unknown op, a copy kind the device has no use for)."""


@dataclass(frozen=True)
class OpCase:
    """One benchmark case: what a call does, in the units results are reported in.

    ``size`` is elements (creation, elementwise), ``n`` (matmul) or bytes (copies). ``bytes`` and
    ``flops`` are per call. ``group`` names the pytest-benchmark group: it never holds the device, so
    ``cuda:0`` and ``cuda:1`` land in the same group.
    """

    workload: str
    dtype: str
    size: int
    bytes: int
    flops: int
    items: int
    memory_bound: bool
    device_only: bool = True
    note: str = ""

    @property
    def group(self) -> str:
        return f"{self.workload}-{self.dtype}-{self.size}"

    @property
    def id(self) -> str:
        return f"{self.workload}-{self.dtype}-{self.size}"

    def info(self) -> dict[str, Any]:
        """The case's part of ``extra_info``."""
        return {
            "workload": self.workload,
            "dtype": self.dtype,
            "size": self.size,
            "bytes": self.bytes,
            "flops": self.flops,
            "items": self.items,
            **({"counting": self.note} if self.note else {}),
        }


def creation_case(op: str, numel: int, dtype: str) -> OpCase:
    if op not in CREATION_OPS:
        msg = f"unknown creation op {op!r}; use one of {', '.join(CREATION_OPS)}"
        raise WorkloadError(msg)
    return OpCase(op, dtype, numel, numel * ITEMSIZE[dtype], 0, numel, memory_bound=True)


def elementwise_case(op: str, numel: int, dtype: str) -> OpCase:
    if op not in _ELEMENTWISE:
        msg = f"unknown elementwise op {op!r}; use one of {', '.join(ELEMENTWISE_OPS)}"
        raise WorkloadError(msg)
    moved, flops, _ = _ELEMENTWISE[op]
    return OpCase(op, dtype, numel, moved * numel * ITEMSIZE[dtype], flops * numel, numel, memory_bound=True)


def matmul_case(n: int, dtype: str) -> OpCase:
    return OpCase("matmul", dtype, n, 3 * n * n * ITEMSIZE[dtype], 2 * n**3, n * n, memory_bound=False)


def copy_case(kind: str, nbytes: int) -> OpCase:
    if kind not in COPY_KINDS:
        msg = f"unknown copy {kind!r}; use one of {', '.join(COPY_KINDS)}"
        raise WorkloadError(msg)
    moved = 2 * nbytes if kind == "d2d" else nbytes
    note = "bytes = read + write" if kind == "d2d" else "bytes = bytes crossing the host/device link"
    # Pageable copies are staged by the host CPU: the host clock (after a device sync) is the right clock.
    return OpCase(f"copy-{kind}", "u8", nbytes, moved, 0, nbytes, memory_bound=True,
                  device_only=not kind.endswith("pageable"), note=note)


def copy_skip_reason(kind: str, device: Any) -> str | None:
    """Why a copy kind does not apply to ``device`` (host/device copies need separate device memory)."""
    if str(device) == "cpu" and kind != "d2d":
        return f"copy-{kind} needs a CUDA device: on cpu host and device memory are the same memory"
    return None


def _torch_dtype(dtype: str) -> Any:
    import torch

    if dtype == "u8":
        return torch.uint8
    return getattr(torch, torch_dtype_name(dtype))


@dataclass(frozen=True)
class PreparedOp:
    """A callable and the argument tuples it cycles through (one tuple: no rotation)."""

    fn: Callable[..., Any]
    inputs: tuple[tuple[Any, ...], ...]
    keep: tuple[Any, ...] = field(default=(), repr=False)  # buffers that must outlive the run


def prepare(case: OpCase, device: Any, rotate: int = 1, seed: int = 0) -> PreparedOp:
    """Allocate inputs and outputs on ``device`` and return the call to time.

    ``rotate`` input sets are made (inputs and outputs alike) so that memory-bound cases can cycle
    through more memory than the cache holds.
    """
    import torch

    dev = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    rotate = max(1, rotate)
    workload = case.workload
    if workload in CREATION_OPS:
        dtype = _torch_dtype(case.dtype)
        maker = {"zeros": torch.zeros, "ones": torch.ones, "randn": torch.randn}[workload]
        n = case.size
        return PreparedOp(lambda: maker(n, dtype=dtype, device=dev), ((),))
    if workload in _ELEMENTWISE:
        dtype = _torch_dtype(case.dtype)
        n_inputs = _ELEMENTWISE[workload][2]
        sets = []
        for _ in range(rotate):
            ins = [torch.randn(case.size, generator=gen, dtype=torch.float32).to(dev, dtype) for _ in range(n_inputs)]
            sets.append((*ins, torch.empty(case.size, dtype=dtype, device=dev)))
        ops: dict[str, Callable[..., Any]] = {
            "add": lambda a, b, out: torch.add(a, b, out=out),
            "mul": lambda a, b, out: torch.mul(a, b, out=out),
            "relu": lambda a, out: torch.clamp_min(a, 0, out=out),
            "sigmoid": lambda a, out: torch.sigmoid(a, out=out),
            "tanh": lambda a, out: torch.tanh(a, out=out),
        }
        return PreparedOp(ops[workload], tuple(sets))
    if workload == "matmul":
        dtype = _torch_dtype(case.dtype)
        n = case.size
        sets = []
        for _ in range(rotate):
            a = torch.randn(n, n, generator=gen).to(dev, dtype)
            b = torch.randn(n, n, generator=gen).to(dev, dtype)
            sets.append((a, b, torch.empty(n, n, dtype=dtype, device=dev)))
        return PreparedOp(lambda a, b, out: torch.matmul(a, b, out=out), tuple(sets))
    if workload.startswith("copy-"):
        return _prepare_copy(workload.removeprefix("copy-"), case.size, dev, rotate)
    msg = f"no preparation for workload {workload!r}"
    raise WorkloadError(msg)


def _prepare_copy(kind: str, nbytes: int, dev: Any, rotate: int) -> PreparedOp:
    import torch

    reason = copy_skip_reason(kind, dev)
    if reason:
        raise WorkloadError(reason)
    pinned = kind.endswith("pinned")
    sets = []
    for _ in range(rotate):
        if kind == "d2d":
            src = torch.ones(nbytes, dtype=torch.uint8, device=dev)
            dst = torch.empty(nbytes, dtype=torch.uint8, device=dev)
        elif kind.startswith("h2d"):
            src = torch.ones(nbytes, dtype=torch.uint8, pin_memory=pinned)
            dst = torch.empty(nbytes, dtype=torch.uint8, device=dev)
        else:
            src = torch.ones(nbytes, dtype=torch.uint8, device=dev)
            dst = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pinned)
        sets.append((dst, src))
    # non_blocking only helps (and is only safe to time with a device sync) for pinned host memory.
    non_blocking = pinned or kind == "d2d"
    return PreparedOp(lambda dst, src: dst.copy_(src, non_blocking=non_blocking), tuple(sets))


# --- ceilings: measured on the same device in the same session ------------------------------------


@dataclass(frozen=True)
class Ceiling:
    """A rate measured on one device in this session (the denominator of the ``*_fraction`` figures)."""

    name: str  # "matmul-f32-1024" / "copy-d2d-16777216" / "copy-h2d-pinned-..."
    device: str
    rate: float  # TFLOP/s for matmul ceilings, GB/s for copy ceilings
    unit: str
    best_s: float  # the fastest round's seconds per call

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "device": self.device, "rate": self.rate, "unit": self.unit,
                "best_s": self.best_s}


class Ceilings:
    """Matmul rate and copy bandwidth per device, measured once per session on first use."""

    def __init__(self, matmul_n: int = 1024, copy_bytes: int = 1 << 26, rounds: int = 9,
                 timer_factory: Callable[[Any], Any] | None = None):
        self.matmul_n = matmul_n
        self.copy_bytes = copy_bytes
        self.rounds = rounds
        self._timer_factory = timer_factory
        self._cache: dict[tuple[str, str], Ceiling] = {}

    def _timer(self, device: Any) -> Any:
        if self._timer_factory is not None:
            return self._timer_factory(device)
        from gpubench.timing import DeviceTimer

        return DeviceTimer(device)

    def _measure(self, case: OpCase, device: Any) -> float:
        prepared = prepare(case, device)
        measurement = self._timer(device).measure(prepared.fn, prepared.inputs, rounds=self.rounds,
                                                  device_only=case.device_only)
        # A ceiling is the best the device did: the fastest round, not the typical one.
        return float(min(measurement.times_s))

    def matmul(self, device: Any, dtype: str = "f32") -> Ceiling:
        """The dense matmul rate (TFLOP/s) at ``n = matmul_n`` in ``dtype``."""
        key = (str(device), f"matmul-{dtype}")
        if key not in self._cache:
            case = matmul_case(self.matmul_n, dtype)
            best = self._measure(case, device)
            self._cache[key] = Ceiling(case.group, str(device), case.flops / best / 1e12, "TFLOP/s", best)
        return self._cache[key]

    def copy(self, device: Any, kind: str = "d2d") -> Ceiling:
        """Copy bandwidth (GB/s): on-device copy for ``d2d``, the pinned link for host/device kinds."""
        key = (str(device), f"copy-{kind}")
        if key not in self._cache:
            case = copy_case(kind, self.copy_bytes)
            best = self._measure(case, device)
            self._cache[key] = Ceiling(case.group, str(device), case.bytes / best / 1e9, "GB/s", best)
        return self._cache[key]

    def observe(self, case: OpCase, device: Any, seconds_per_call: float) -> None:
        """Raise a ceiling when a benchmark case beat it (a ceiling is the best seen in the session)."""
        if case.workload == "matmul":
            key, rate = (str(device), f"matmul-{case.dtype}"), case.flops / seconds_per_call / 1e12
        elif case.workload == "copy-d2d" or case.workload in ("copy-h2d-pinned", "copy-d2h-pinned"):
            key, rate = (str(device), case.workload), case.bytes / seconds_per_call / 1e9
        else:
            return
        known = self._cache.get(key)
        if known is None or rate > known.rate:
            unit = "TFLOP/s" if case.workload == "matmul" else "GB/s"
            self._cache[key] = Ceiling(case.group, str(device), rate, unit, seconds_per_call)

    def current(self, device: str, name: str) -> Ceiling | None:
        """The ceiling now known for ``device`` by its cache name (``matmul-f32``, ``copy-d2d``…)."""
        return self._cache.get((device, name))

    def refresh(self, info: dict[str, Any]) -> None:
        """Recompute a result's ``*_fraction`` figures against the session's final ceilings."""
        device = info.get("device")
        for label, ceiling in dict(info.get("ceilings", {})).items():
            key = ceiling.get("key")
            best = self.current(str(device), key) if key else None
            if best is None:
                continue
            info["ceilings"][label] = best.as_dict() | {"key": key}
            if label == "copy" and info.get("gbps"):
                info["copy_fraction"] = info["gbps"] / best.rate
            if label == "matmul" and info.get("tflops"):
                info["matmul_fraction"] = info["tflops"] / best.rate

    def for_case(self, case: OpCase, device: Any) -> dict[str, Ceiling]:
        """The ceilings a case is compared with: its copy ceiling, and the matmul rate in its dtype."""
        out: dict[str, Ceiling] = {}
        if case.workload.startswith("copy-h2d"):
            out["copy"] = self.copy(device, "h2d-pinned")
        elif case.workload.startswith("copy-d2h"):
            out["copy"] = self.copy(device, "d2h-pinned")
        elif case.bytes:
            out["copy"] = self.copy(device, "d2d")
        if case.flops:
            out["matmul"] = self.matmul(device, case.dtype if case.dtype in ITEMSIZE else "f32")
        return out


def derived(case: OpCase, seconds_per_call: float, ceilings: dict[str, Ceiling]) -> dict[str, Any]:
    """GB/s, TFLOP/s, items/s and the fractions of the ceilings for one measured call time."""
    if seconds_per_call <= 0:
        msg = f"cannot derive rates from a non-positive time ({seconds_per_call} s)"
        raise WorkloadError(msg)
    gbps = case.bytes / seconds_per_call / 1e9
    tflops = case.flops / seconds_per_call / 1e12
    out: dict[str, Any] = {
        "seconds_per_call": seconds_per_call,
        "gbps": gbps,
        "tflops": tflops,
        "items_per_s": case.items / seconds_per_call,
    }
    if "copy" in ceilings and case.bytes:
        out["copy_fraction"] = gbps / ceilings["copy"].rate
    if "matmul" in ceilings and case.flops:
        out["matmul_fraction"] = tflops / ceilings["matmul"].rate
    out["ceilings"] = {name: c.as_dict() | {"key": _cache_name(c)} for name, c in ceilings.items()}
    return out


def _cache_name(ceiling: Ceiling) -> str:
    """``matmul-f32-1024`` -> ``matmul-f32``; ``copy-d2d-u8-N`` -> ``copy-d2d`` (the Ceilings cache names)."""
    parts = ceiling.name.split("-")
    return "-".join(parts[:2]) if parts[0] == "matmul" else "-".join(parts[:-2])
