"""The options every verb shares (--config, --device, --devices, --results-dir, --set, --quiet) and the
effective configuration they select: flags over environment over files over defaults.

Lives in ``config`` (not ``cli``) because the verbs' own modules (verify, bench, report, dist) need it and
must not import the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from gpubench.config import SECTIONS, Config, ConfigError, load_config


def add_common_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration (highest precedence)")
    group.add_argument("--config", metavar="FILE", help="dl.config.sdn to use instead of ./dl.config.sdn")
    group.add_argument("--device", metavar="DEV", help="cpu, gpu, cuda or cuda:N (sets dl.device and the devices run)")
    group.add_argument("--devices", metavar="LIST", help="comma-separated devices to compare, e.g. cuda:0,cuda:1")
    group.add_argument("--results-dir", metavar="DIR", help="where results are written (default: results)")
    group.add_argument(
        "--set",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=[],
        help="override any setting, e.g. --set verify.level=long (repeatable)",
    )
    group.add_argument("-q", "--quiet", action="store_true", help="print less")


def config_from_args(args: argparse.Namespace) -> Config:
    """The effective configuration for a command: flags over environment over files over defaults.

    Raises ConfigError (exit 2). Warnings (unknown keys, unsupported backend) go to stderr.
    """
    flags: dict[str, Any] = {}
    for item in getattr(args, "set", None) or []:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            msg = f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. --set verify.level=long"
            raise ConfigError(msg)
        flags[key.strip()] = value.strip()
    device = getattr(args, "device", None)
    devices = getattr(args, "devices", None)
    if device:
        flags["dl.device"] = device
        flags["bench.devices"] = [device]
        flags["verify.devices"] = [device]
    if devices:
        flags["bench.devices"] = devices
        flags["verify.devices"] = devices
    if getattr(args, "results_dir", None):
        flags["results.dir"] = args.results_dir
    for key in flags:
        section, _, name = key.partition(".")
        if section not in SECTIONS or name not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
            msg = f"command line: unknown setting {key!r}. Fix: see `gpubench config show` for the settings"
            raise ConfigError(msg)
    config = load_config(getattr(args, "config", None), flags=flags)
    if not getattr(args, "quiet", False):
        for warning in config.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return config
