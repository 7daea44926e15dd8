"""Loading: which files are read, the precedence of the layers, environment variables and provenance.

Precedence, highest first: command-line flags > environment (``GPUBENCH_<SECTION>_<KEY>`` and the Simple
project's ``SIMPLE_DL_DEVICE`` / ``SIMPLE_DL_DTYPE`` / ``SIMPLE_DL_BACKEND``) > ``./dl.config.sdn`` (or
``--config FILE`` / ``GPUBENCH_CONFIG``) > user config (``$XDG_CONFIG_HOME/gpubench/dl.config.sdn``, then the
Simple project's ``~/.simple/dl.config.sdn``) > built-in defaults. Each layer is flattened into
``section.key`` entries that remember their :class:`~gpubench.config.validate.Origin`; the merged entries
are checked by :mod:`gpubench.config.validate` and built into a :class:`~gpubench.config.schema.Config`.

An unknown section, key or variable is a warning with a "did you mean" suggestion: configs copied from the
Simple project carry keys gpubench does not use, and they must not stop a run.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gpubench.config.sdn as sdn
from gpubench.config.schema import SECTIONS, SIMPLE_ONLY_SETTINGS, Config, DLSection
from gpubench.config.sdn.lexer import IDENT_FULL_RE
from gpubench.config.validate import ConfigError, Origin, coerce

CONFIG_FILENAME = "dl.config.sdn"
MAX_CONFIG_BYTES = 1 << 20
"""Largest configuration file read (1 MiB). A dl.config.sdn is a few hundred bytes; anything this big is the
wrong file (a log, a dataset), and parsing it would take seconds and print a warning per unknown key."""
SIMPLE_ENV = {"SIMPLE_DL_DEVICE": "dl.device", "SIMPLE_DL_DTYPE": "dl.dtype", "SIMPLE_DL_BACKEND": "dl.backend"}

Raw = dict[str, tuple[Any, Origin]]  # "section.key" -> (raw value, origin)


#: gpubench's environment variables that are not configuration settings (never "unknown setting").
NOT_SETTINGS = frozenset({
    "GPUBENCH_CONFIG",  # the config file to read
    "GPUBENCH_NO_INSTALL",  # nox: run in the current environment
    "GPUBENCH_KILL_AT",  # the interrupt sweep's kill points (gpubench.killpoints)
    "GPUBENCH_RUN_ID",  # one run id shared by the processes of a run (the pytest plugin, torchrun ranks)
})


def _suggest(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


_DL_KEYS = frozenset(f.name for f in dataclasses.fields(DLSection))


def _raw_from_document(doc: sdn.Document, warnings: list[str], unused: list[str] | None = None) -> Raw:
    """Flatten a parsed file into ``section.key`` entries, warning about unknown sections and keys.

    A top-level key that is a setting of ``dl:`` (``device: cuda:1`` with no ``dl:`` above it) is an error:
    ignoring it would run on another device than the user asked for. The Simple project's settings that
    gpubench does not use (:data:`SIMPLE_ONLY_SETTINGS`) are checked and appended to ``unused``.
    """
    raw: Raw = {}
    src = doc.source

    def loc(path: tuple[str | int, ...], keys: bool = False) -> str:
        table = doc.key_locations if keys else doc.locations
        where = table.get(path) or doc.locations.get(path)
        return f"{src}:{where.line}:{where.column}" if where else src

    for section, body in doc.value.items():
        if section in _DL_KEYS:
            shown = f"{section}: {body}" if isinstance(body, (str, int, float)) else f"{section}: ..."
            msg = (
                f"{loc((section,), True)}: {section!r} is a setting of dl:, not a section, so it would be ignored. "
                f"Fix: put it under `dl:` (a line 'dl:' and below it '    {shown}')"
            )
            raise ConfigError(msg)
        if section not in SECTIONS:
            warnings.append(f"{loc((section,), True)}: unknown section {section!r}{_suggest(section, list(SECTIONS))}"
                            " (ignored)")
            continue
        if body is None:  # `training:` with every key commented out: an empty section, not an error
            continue
        if isinstance(body, list) and body:
            # A block whose first line is not `key: value` reads as an array; say what is wrong with that line.
            raise ConfigError(_not_a_setting(section, body[0], loc((section, 0))))
        if not isinstance(body, dict):
            msg = (
                f"{loc((section,))}: {section} must be a block of 'key: value' lines, found {_kind(body)}. "
                f"Fix: write '{section}:' and indent its keys under it"
            )
            raise ConfigError(msg)
        names = [f.name for f in dataclasses.fields(SECTIONS[section])]
        for key, value in body.items():
            dotted = f"{section}.{key}"
            if dotted in SIMPLE_ONLY_SETTINGS:
                coerce(dotted, value, bool, {}, Origin(loc((section, key))))
                if unused is not None:
                    unused.append(f"{loc((section, key), True)}: {dotted}")
                continue
            if key not in names and not IDENT_FULL_RE.match(key):
                # Every setting is an identifier: `1device` or `dev ice` is a typo, never a Simple-only key.
                shown = f"{key}: {value}" if isinstance(value, (str, int, float)) else key
                raise ConfigError(_not_a_setting(section, shown, loc((section, key), True)))
            if key not in names:
                warnings.append(
                    f"{loc((section, key), True)}: unknown key {section}.{key}{_suggest(key, names)} (ignored)"
                )
                continue
            items = tuple(loc((section, key, i)) for i in range(len(value))) if isinstance(value, list) else ()
            raw[f"{section}.{key}"] = (value, Origin(loc((section, key)), loc((section, key), True), items))
    return raw


_GLUED_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(\S.*)\Z")


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value!r}"
    return {list: "a list", dict: "a block", bool: "true or false", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _not_a_setting(section: str, first: Any, where: str) -> str:
    """The message for a section whose first line is not ``key: value`` (the reader took it for a list)."""
    if isinstance(first, str):
        glued = _GLUED_RE.match(first)
        if glued:
            file, _, position = where.rpartition(":")
            at = f"{file}:{int(position) + len(glued.group(1)) + 1}" if position.isdigit() else where
            return (
                f"{at}: missing blank after ':' in {first!r}. "
                f"Fix: write '{glued.group(1)}: {glued.group(2)}' (SDN needs a blank after the colon)"
            )
        return (
            f"{where}: {first!r} is not a setting of {section}:. "
            f"Fix: write each setting as 'key: value' (a name, a colon, a blank, the value), "
            f"indented under '{section}:'; see `gpubench config show` for the names"
        )
    return (
        f"{where}: {section} must be a block of 'key: value' lines, found a list. "
        f"Fix: write '{section}:' and indent its keys under it"
    )


def _raw_from_env(env: Mapping[str, str], warnings: list[str]) -> Raw:
    raw: Raw = {}
    for var, dotted in SIMPLE_ENV.items():
        if env.get(var, "").strip():
            raw[dotted] = (_env_value(env[var]), Origin(f"environment {var}"))
    known = {
        f"GPUBENCH_{s.upper()}_{f.name.upper()}": f"{s}.{f.name}"
        for s, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    }
    known["GPUBENCH_DEVICE"] = "dl.device"
    known["GPUBENCH_DEVICES"] = "bench.devices"
    for var, value in env.items():
        if not var.startswith("GPUBENCH_") or var in NOT_SETTINGS:
            continue
        if var not in known:
            warnings.append(f"environment {var}: unknown setting{_suggest(var, list(known))} (ignored)")
            continue
        if value.strip():
            raw[known[var]] = (_env_value(value), Origin(f"environment {var}"))
    return raw


def _env_value(text: str) -> Any:
    """Environment values are read as SDN scalars or inline lists: ``42``, ``true``, ``[cuda:0, cuda:1]``."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            return sdn.loads(f"v = {stripped}")["v"]
        except sdn.SdnError:
            return stripped
    return stripped


def user_config_paths(env: Mapping[str, str]) -> list[Path]:
    """The user-level files, lowest precedence first: ``~/.simple/dl.config.sdn``, then the XDG one."""
    home = Path(env.get("HOME") or Path.home())
    xdg = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return [home / ".simple" / CONFIG_FILENAME, xdg / "gpubench" / CONFIG_FILENAME]


def check_file(path: Path, where: str) -> None:
    """Raise ConfigError unless ``path`` is a regular file; ``where`` names who gave the path."""
    if path.is_dir():
        msg = f"{where}: {str(path)!r} is a folder, not a configuration file. Fix: give the path of a dl.config.sdn"
        raise ConfigError(msg)
    if path.exists() and not path.is_file():
        msg = (
            f"{where}: {str(path)!r} is not a regular file (a device, pipe or socket). "
            "Fix: give the path of a dl.config.sdn"
        )
        raise ConfigError(msg)
    if not path.exists():
        msg = f"{where}: configuration file {str(path)!r} does not exist. Fix: give the path of a dl.config.sdn"
        raise ConfigError(msg)


def read_file(path: Path) -> sdn.Document:
    """Parse one config file; an SDN syntax error becomes a ConfigError (file:line:column and fix).

    An empty file and one over :data:`MAX_CONFIG_BYTES` are errors too: the first is usually a write that
    never finished, the second the wrong file.
    """
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            with open(path, "rb") as handle:
                head = handle.read(MAX_CONFIG_BYTES).replace(b"\r\n", b"\n")
            line = head.count(b"\n") + 1
            column = len(head) - head.rfind(b"\n")
            msg = (
                f"{path}:{line}:{column}: the file is {size / 2**20:.1f} MiB and passes the "
                f"{MAX_CONFIG_BYTES // 2**20} MiB limit here; a dl.config.sdn is a few hundred bytes. "
                "Fix: point --config at the right file, or cut it down to the settings gpubench reads"
            )
            raise ConfigError(msg)
        if size == 0 or not path.read_bytes().strip():
            msg = (
                f"{path}:1:1: the configuration file is empty (a save that did not finish?). Fix: write at least "
                "one setting, e.g. 'dl:' and '    device: cuda:1' below it, or delete the file to use the "
                "built-in defaults"
            )
            raise ConfigError(msg)
        return sdn.load(path)
    except sdn.SdnError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        msg = f"{path}: cannot read the configuration ({exc.strerror or exc}). Fix: check the path and permissions"
        raise ConfigError(msg) from None


def load_config(
    config_file: str | os.PathLike[str] | None = None,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user_files: bool = True,
) -> Config:
    """Build the effective configuration from every layer.

    ``flags`` maps ``section.key`` to values given on the command line (the key of each is used in
    messages as ``command line``). ``config_file`` replaces ``./dl.config.sdn`` when given.
    """
    env = dict(os.environ if env is None else env)
    cwd = cwd or Path.cwd()
    warnings: list[str] = []
    unused: list[str] = []
    files: list[str] = []
    layers: list[Raw] = []

    if user_files:
        for path in user_config_paths(env):
            if path.is_file():
                layers.append(_raw_from_document(read_file(path), warnings, unused))
                files.append(str(path))
    explicit = config_file or env.get("GPUBENCH_CONFIG") or None
    project = Path(explicit) if explicit else cwd / CONFIG_FILENAME
    if not explicit and cwd.resolve() == Path.cwd().resolve():
        project = Path(CONFIG_FILENAME)  # messages say "dl.config.sdn:3:11", as the user sees the file
    if explicit:
        check_file(project, "--config" if config_file else "environment GPUBENCH_CONFIG")
    if project.is_file():
        layers.append(_raw_from_document(read_file(project), warnings, unused))
        files.append(str(project))
    layers.append(_raw_from_env(env, warnings))
    layers.append({k: (v, Origin(f"command line ({k})")) for k, v in (flags or {}).items() if v is not None})

    merged: Raw = {}
    for layer in layers:
        merged.update(layer)
    return dataclasses.replace(_build(merged, tuple(files), tuple(warnings)), unused=tuple(unused))


def used_settings(doc: sdn.Document) -> tuple[int, list[str], list[str]]:
    """What of a file gpubench uses: the number of its settings, the sections holding them, and the
    top-level keys it ignores (sections it does not know)."""
    count = 0
    sections: list[str] = []
    for section, body in doc.value.items():
        if section in SECTIONS:
            sections.append(section)
            if isinstance(body, dict):
                names = {f.name for f in dataclasses.fields(SECTIONS[section])}
                count += sum(1 for key in body if key in names)
    return count, sections, [s for s in doc.value if s not in SECTIONS]


def _build(merged: Raw, files: tuple[str, ...], warnings: tuple[str, ...]) -> Config:
    sections: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            dotted = f"{name}.{f.name}"
            if dotted in merged:
                raw, origin = merged[dotted]
                values[f.name] = coerce(dotted, raw, hints[f.name], f.metadata, origin)
                sources[dotted] = origin.label
        sections[name] = cls(**values)
    extra = list(warnings)
    for dotted in ("dl.backend", "training.backend", "inference.backend"):
        value = getattr(sections[dotted.split(".")[0]], "backend", None)
        if value not in (None, "torch"):
            extra.append(
                f"{sources.get(dotted, dotted)}: backend {value!r} is understood (the Simple project's own engine) "
                "but gpubench measures PyTorch only; running with torch. Fix: write backend: torch"
            )
    return Config(**sections, sources=sources, files=files, warnings=tuple(extra))

