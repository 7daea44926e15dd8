"""Check ``memtest``: write patterns over device memory, read them back, count the 32-bit words that differ.

Patterns (:data:`MEMTEST_PATTERNS`): ``address`` (each word holds its own index), ``inverse_address``,
``random`` (seeded, regenerated for the comparison), ``walking_ones``/``walking_zeros`` (32 passes each).
The test runs for real on ``cpu`` too, so its logic is tested without a GPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gpubench.verify.context import DecidedNow, DeviceContext
from gpubench.verify.plan import MEMTEST_PATTERNS
from gpubench.verify.probing import error_text, sync, torch_device, torch_module
from gpubench.verify.verdicts import CheckResult, CheckSpec, Findings, Verdict, gib, readings_dict

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PatternResult:
    """One pattern of the memory test: ``words`` 32-bit words written and read back, ``mismatches`` of
    them wrong.
    """

    name: str
    words: int
    mismatches: int
    first_bad_word: int | None = None
    bad_bits: int = 0  # OR of (read XOR expected) over the mismatching words: which bit lanes failed
    seconds: float = 0.0


@dataclass(frozen=True)
class MemtestReading:
    """The memory test on one device. Bytes, seconds."""

    device: str
    bytes_tested: int
    patterns: tuple[PatternResult, ...]
    patterns_planned: int
    seconds: float
    time_bound_s: float
    error: str | None = None  # allocation failed, device lost, ...

    @property
    def mismatches(self) -> int:
        return sum(p.mismatches for p in self.patterns)


# --- the test -------------------------------------------------------------------------------------

_CHUNK_WORDS = 1 << 24  # 64 MiB of int32 per chunk: bounds the temporaries next to the buffer


def memtest_bytes(dev: torch.device, fraction: float, cap_bytes: int | None = None) -> int:
    """How many bytes the memory test covers: ``fraction`` of free device memory (of available RAM on cpu)."""
    torch = torch_module()
    if dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
    else:
        import psutil

        free = psutil.virtual_memory().available
    nbytes = int(free * fraction)
    if cap_bytes is not None:
        nbytes = min(nbytes, cap_bytes)
    return max(0, nbytes - nbytes % 4)


def _chunks(words: int) -> Iterator[tuple[int, int]]:
    for start in range(0, words, _CHUNK_WORDS):
        yield start, min(words, start + _CHUNK_WORDS)


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


class _Compare:
    """Accumulates mismatches of one pattern over chunks and passes."""

    def __init__(self) -> None:
        self.words = 0
        self.mismatches = 0
        self.first: int | None = None
        self.bits = 0

    def add(self, got: torch.Tensor, expected: torch.Tensor | int, offset: int) -> None:
        torch = torch_module()
        bad = got != expected
        self.words += got.numel()
        if not bool(bad.any()):  # any() is several times cheaper than counting: count only when needed
            return
        count = int(bad.sum().item())
        self.mismatches += count
        index = int(torch.nonzero(bad)[0].item()) + offset
        self.first = index if self.first is None else min(self.first, index)
        exp = expected[bad] if isinstance(expected, torch.Tensor) else torch.full_like(got[bad], expected)
        diff = got[bad] ^ exp
        for bit in range(32):
            if bool(((diff >> bit) & 1).any()):
                self.bits |= 1 << bit

    def result(self, name: str, seconds: float) -> PatternResult:
        return PatternResult(name, self.words, self.mismatches, self.first, self.bits, round(seconds, 4))


AfterWrite = Callable[[str, "torch.Tensor"], None]


class _Buffer:
    """The memory under test: one int32 buffer on the device, written and read back a pattern at a time."""

    def __init__(
        self, buf: torch.Tensor, dev: torch.device, seed: int, after_write: AfterWrite | None
    ) -> None:
        self.buf = buf
        self.words = buf.numel()
        self.dev = dev
        self.seed = seed
        self.after_write = after_write

    def _address(self, start: int, stop: int, invert: bool) -> Any:
        torch = torch_module()
        values = torch.arange(start, stop, dtype=torch.int64, device=self.dev)
        if invert:
            values = ~values
        low = values & 0xFFFFFFFF  # the index modulo 2**32, then as a signed 32-bit word
        return torch.where(low >= 1 << 31, low - (1 << 32), low).to(torch.int32)

    def _random_chunks(self) -> Iterator[tuple[int, int, Any]]:
        torch = torch_module()
        gen = torch.Generator(device=self.dev)
        gen.manual_seed(self.seed)
        for start, stop in _chunks(self.words):
            yield (
                start,
                stop,
                torch.randint(
                    -(1 << 31), 1 << 31, (stop - start,), dtype=torch.int32, generator=gen, device=self.dev
                ),
            )

    def _written(self, name: str) -> None:
        if self.after_write:
            self.after_write(name, self.buf)

    def run_pattern(self, name: str) -> PatternResult:
        """Write pattern ``name`` over the whole buffer, read it back, count what differs."""
        t0 = time.perf_counter()
        cmp = _Compare()
        buf = self.buf
        if name in ("address", "inverse_address"):
            invert = name == "inverse_address"
            for start, stop in _chunks(self.words):
                buf[start:stop] = self._address(start, stop, invert)
            self._written(name)
            for start, stop in _chunks(self.words):
                cmp.add(buf[start:stop], self._address(start, stop, invert), start)
        elif name == "random":
            for start, stop, values in self._random_chunks():
                buf[start:stop] = values
            self._written(name)
            for start, stop, values in self._random_chunks():
                cmp.add(buf[start:stop], values, start)
        else:
            for bit in range(32):
                value = _signed32(1 << bit if name == "walking_ones" else ~(1 << bit))
                buf.fill_(value)
                self._written(name)
                for start, stop in _chunks(self.words):
                    cmp.add(buf[start:stop], value, start)
        sync(self.dev)
        return cmp.result(name, time.perf_counter() - t0)


def run_memtest(
    device: str,
    nbytes: int,
    seconds: float,
    patterns: Sequence[str] = MEMTEST_PATTERNS,
    seed: int = 1234,
    after_write: AfterWrite | None = None,
) -> MemtestReading:
    """Write each pattern over ``nbytes`` of device memory, read it back, count the 32-bit words that differ.

    The test stops after the pattern that crosses ``seconds`` (at least one pattern always runs).
    ``after_write(pattern, buffer)`` is called between the write and the read-back: tests use it to corrupt
    the buffer and prove mismatches are counted.
    """
    torch = torch_module()
    dev = torch_device(device)
    words = nbytes // 4
    unknown = [p for p in patterns if p not in MEMTEST_PATTERNS]
    if unknown:
        msg = f"unknown memtest pattern(s) {unknown}: expected some of {', '.join(MEMTEST_PATTERNS)}"
        raise ValueError(msg)
    if words <= 0:
        return MemtestReading(device, 0, (), len(patterns), 0.0, seconds, error="no memory to test (0 bytes)")
    try:
        buf = torch.empty(words, dtype=torch.int32, device=dev)
    except (RuntimeError, MemoryError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        return MemtestReading(
            device, 0, (), len(patterns), 0.0, seconds, error=f"allocating {nbytes} B: {error_text(exc)}"
        )
    memory = _Buffer(buf, dev, seed, after_write)
    done: list[PatternResult] = []
    error = None
    started = time.perf_counter()
    try:
        for name in patterns:
            done.append(memory.run_pattern(name))
            if time.perf_counter() - started >= seconds:
                break
    except (RuntimeError, MemoryError) as exc:  # a device error mid-test is itself a finding
        error = error_text(exc)
    return MemtestReading(
        device=device,
        bytes_tested=words * 4,
        patterns=tuple(done),
        patterns_planned=len(patterns),
        seconds=round(time.perf_counter() - started, 3),
        time_bound_s=seconds,
        error=error,
    )


# --- decision -------------------------------------------------------------------------------------


def decide_memtest(r: MemtestReading) -> CheckResult:
    """FAIL on any mismatching word; SKIP when nothing could be tested; a time-bounded run notes what
    it covered.
    """
    kw: dict[str, Any] = {
        "value": r.mismatches,
        "threshold": 0,
        "unit": "bad words",
        "readings": readings_dict(r),
    }
    if r.error and not r.patterns:
        return CheckResult(
            "memtest",
            r.device,
            Verdict.SKIP,
            message=f"memory test could not run: {r.error}",
            remedy="free device memory (see the contention check) or lower verify.memtest_fraction.",
            **kw,
        )
    f = Findings()
    for p in r.patterns:
        if p.mismatches:
            f.add(
                Verdict.FAIL,
                f"{p.name}: {p.mismatches} of {p.words} words read back wrong (first at byte "
                f"{(p.first_bad_word or 0) * 4}, bit lanes 0x{p.bad_bits:08x})",
                "run the long level (--level long); if mismatches repeat, take the GPU out of service "
                "and RMA it.",
            )
    if r.error:
        f.add(Verdict.WARN, f"stopped early: {r.error}", "rerun; check dmesg for Xid errors.")
    if len(r.patterns) < r.patterns_planned:
        f.note(
            f"time bound {r.time_bound_s:g} s reached after {len(r.patterns)} of {r.patterns_planned} "
            "patterns"
        )
    ok = f"{len(r.patterns)} patterns over {gib(r.bytes_tested)} read back intact in {r.seconds:.1f} s"
    return f.result("memtest", r.device, ok, **kw)


def verify(ctx: DeviceContext) -> CheckResult:
    plan, device = ctx.plan, ctx.device
    nbytes = memtest_bytes(torch_device(device), plan.memtest_fraction, plan.memtest_cap_bytes)
    reading = run_memtest(
        device, nbytes, plan.memtest_seconds, plan.memtest_patterns, seed=ctx.config.dl.seed
    )
    return decide_memtest(reading)


CHECK = DecidedNow(CheckSpec("memtest", "write/read-back memory patterns", cpu=True), verify)
