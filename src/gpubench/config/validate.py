"""Checking one value against its setting: types, allowed values, ranges, devices; :class:`ConfigError`.

A raw value (from a file, the environment or a flag) and its :class:`Origin` go in; the typed value comes
out, or a :class:`ConfigError` that names the origin (``dl.config.sdn:3:11``, ``environment
GPUBENCH_DL_DEVICE``, ``command line (dl.device)``), what is allowed and the fix. The constraints come
from the field metadata that :mod:`gpubench.config.schema` declares.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpubench.devices import DeviceError, parse_device


class ConfigError(ValueError):
    """Bad configuration: the message names where (file:line:column, variable or flag) and the fix."""


@dataclass(frozen=True)
class Origin:
    """Where a raw value came from, for messages and for ``config show``."""

    label: str  # "file.sdn:3:11", "environment GPUBENCH_DL_DEVICE", "command line --device"
    key_label: str = ""  # where the key starts (unknown-key warnings)
    item_labels: tuple[str, ...] = ()  # where each item of a list value starts (a bad item is named exactly)

    def __str__(self) -> str:
        return self.label


def coerce(dotted: str, raw: Any, tp: Any, meta: Mapping[str, Any], origin: Origin) -> Any:
    """Check one raw value against its field; returns the typed value or raises ConfigError."""
    t_origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if t_origin in (typing.Union, types.UnionType):
        if raw is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(dotted, raw, inner[0], meta, origin)
    if t_origin is tuple:
        items = raw if isinstance(raw, (list, tuple)) else [raw]
        if isinstance(raw, str) and "," in raw:
            items = [p.strip() for p in raw.split(",") if p.strip()]
        labels = origin.item_labels if isinstance(raw, (list, tuple)) else ()
        return tuple(
            coerce(
                dotted, item, args[0], meta,
                dataclasses.replace(origin, label=labels[i]) if i < len(labels) else origin,
            )
            for i, item in enumerate(items)
        )
    value = _scalar(dotted, raw, tp, meta, origin)
    _check_choices_and_range(dotted, value, meta, origin)
    return value


def _scalar(dotted: str, raw: Any, tp: Any, meta: Mapping[str, Any], origin: Origin) -> Any:
    def bad(expected: str, fix: str) -> ConfigError:
        return ConfigError(f"{origin}: {dotted} = {raw!r} is not {expected}. Fix: {fix}")

    if tp is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            return raw.strip().lower() in ("true", "1", "yes", "on")
        raise bad("true or false", f"write {dotted.split('.')[-1]}: true (or false)")
    if tp is int:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise bad("an integer", f"write a whole number, e.g. {dotted.split('.')[-1]}: 42")
        try:
            return int(str(raw).replace("_", ""))
        except ValueError:
            raise bad("an integer", f"write a whole number, e.g. {dotted.split('.')[-1]}: 42") from None
    if tp is float:
        if isinstance(raw, bool):
            raise bad("a number", f"write a number, e.g. {dotted.split('.')[-1]}: 0.5")
        try:
            value = float(str(raw).replace("_", "")) if isinstance(raw, str) else float(raw)
        except (TypeError, ValueError):
            raise bad("a number", f"write a number, e.g. {dotted.split('.')[-1]}: 0.5") from None
        except OverflowError:  # an integer beyond any float (SDN reads integers of up to 4000 digits)
            raise bad("a finite number", "write a finite number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise bad("a finite number", "write a finite number")
        return value
    # strings: scalars read as numbers (a bare 1) are accepted as their text
    if isinstance(raw, (dict, list, tuple)) or raw is None:
        raise bad("a string", f'write {dotted.split(".")[-1]}: "text"')
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    if meta.get("device"):
        try:
            parse_device(text)
        except DeviceError as exc:
            msg = f"{origin}: {dotted}: {exc} Fix: write e.g. {dotted.split('.')[-1]}: \"cuda:0\" or \"cpu\""
            raise ConfigError(msg) from None
    return text


def _check_choices_and_range(dotted: str, value: Any, meta: Mapping[str, Any], origin: Origin) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        suggestion = f"{dotted.split('.')[-1]}: {close[0]}" if close else f"one of {', '.join(choices)}"
        msg = (
            f"{origin}: {dotted} = {value!r} is not allowed; allowed values: {', '.join(map(str, choices))}. "
            f"Fix: write {suggestion}"
        )
        raise ConfigError(msg)
    low, high = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if low is not None and value < low:
            msg = f"{origin}: {dotted} = {value} is below the minimum {low}. Fix: use a value >= {low}"
            raise ConfigError(msg)
        if high is not None and value > high:
            msg = f"{origin}: {dotted} = {value} is above the maximum {high}. Fix: use a value <= {high}"
            raise ConfigError(msg)
        above, below = meta.get("gt"), meta.get("lt")  # exclusive bounds: a probability strictly in (0, 1)
        if (above is not None and value <= above) or (below is not None and value >= below):
            bounds = f"({'-inf' if above is None else f'{above:g}'}, {'inf' if below is None else f'{below:g}'})"
            msg = f"{origin}: {dotted} = {value} is outside {bounds}. Fix: use a value strictly inside it"
            raise ConfigError(msg)

