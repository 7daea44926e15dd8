"""Check ``config``: the configuration file, where the device came from, and whether the dtype works on it."""

from __future__ import annotations

from dataclasses import dataclass

from gpubench.config import Config
from gpubench.devices import dtype_support
from gpubench.verify.context import DecidedNow, DeviceContext
from gpubench.verify.verdicts import CheckResult, CheckSpec, Findings, Verdict, readings_dict


@dataclass(frozen=True)
class ConfigReading:
    """The effective configuration as it concerns one device."""

    device: str  # canonical, e.g. "cuda:1"
    device_source: str  # where the device came from ("./dl.config.sdn:2:9", "command line", "default")
    files: tuple[str, ...]  # configuration files read, lowest precedence first
    dtype: str
    dtype_problem: str | None  # why dtype is unusable on the device; None when usable or unknown
    device_problem: str | None  # the device itself is unusable (decided by the inventory check)
    warnings: tuple[str, ...] = ()


def _device_source(config: Config) -> str:
    for key in ("verify.devices", "bench.devices", "dl.device"):
        if key == "dl.device" or getattr(config, key.split(".")[0]).devices:
            return config.source_of(key)
    return "default"


def read_config(ctx: DeviceContext) -> ConfigReading:
    """The files read, the device's source and the dtype's problem on it (not asked of an unusable device)."""
    config, unusable = ctx.config, ctx.unusable
    dtype = config.dl.dtype
    return ConfigReading(
        device=ctx.device,
        device_source=_device_source(config),
        files=tuple(config.files),
        dtype=dtype,
        dtype_problem=dtype_support(ctx.spec, ctx.probe).get(dtype) if unusable is None else None,
        device_problem=unusable.reason if unusable else None,
        warnings=tuple(config.warnings),
    )


def decide_config(r: ConfigReading) -> CheckResult:
    """PASS when a file was found and valid and the dtype works on the device; WARN for defaults-only runs."""
    f = Findings()
    if not r.files:
        f.add(
            Verdict.WARN,
            "no dl.config.sdn found (looked in ./, --config/GPUBENCH_CONFIG, ~/.simple/, "
            "~/.config/gpubench/); "
            "built-in defaults used",
            "create ./dl.config.sdn (e.g. `dl:` / `  device: cuda:1`) or pass --config FILE.",
        )
    if r.dtype_problem:
        f.add(
            Verdict.FAIL, f"dtype {r.dtype} on {r.device}: {r.dtype_problem}", "set dl.dtype to f32 or f16."
        )
    for warning in r.warnings:
        f.note(f"warning: {warning}")
    where = ", ".join(r.files) if r.files else "defaults"
    dtype_text = (
        f"dtype {r.dtype} not checked: {r.device} unusable (see inventory)"
        if r.device_problem
        else f"dtype {r.dtype} usable"
    )
    return f.result(
        "config",
        r.device,
        f"valid ({where}); device {r.device} from {r.device_source}; {dtype_text}",
        value=where,
        threshold="file found, valid",
        readings=readings_dict(r),
    )


def verify(ctx: DeviceContext) -> CheckResult:
    return decide_config(read_config(ctx))


CHECK = DecidedNow(
    CheckSpec("config", "configuration file, device string and dtype", cpu=True, needs_usable_device=False),
    verify,
)
