"""``gpubench config show|check|reference``: the effective configuration, a file's validity, the reference.

Never imports torch (a test holds it to that): imports only :mod:`gpubench.config`, the console and rich,
so these commands answer in a fraction of a second, even on a machine without PyTorch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.table import Table

from gpubench import killpoints
from gpubench.cli.exit_codes import EXIT_OK, EXIT_USAGE
from gpubench.config import (
    SECTIONS,
    check_file,
    effective_rows,
    field_docs,
    load_config,
    read_file,
)
from gpubench.config.load import used_settings
from gpubench.config.options import add_common_options, config_from_args
from gpubench.console import console, printable


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``show``, ``reference`` and ``check`` actions and their options."""
    cfg_verbs = parser.add_subparsers(dest="config_verb", metavar="ACTION")
    cfg_verbs.required = True
    show = cfg_verbs.add_parser("show", help="each effective value and where it came from")
    add_common_options(show)
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.add_argument("--doc", action="store_true", help="add each setting's documentation")
    cfg_verbs.add_parser("reference", help="the configuration reference as a Markdown table (as in the README)")
    check = cfg_verbs.add_parser("check", help="validate a dl.config.sdn file (exit 0 valid, 2 invalid)")
    check.add_argument("file", metavar="FILE")


def run_config(args: argparse.Namespace) -> int:
    if args.config_verb == "reference":
        print(config_reference(), end="")
        return EXIT_OK
    return show(args) if args.config_verb == "show" else check(args)


def _show_value(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def show(args: argparse.Namespace) -> int:
    """Each effective setting, its value and where it came from, as a table or as JSON (``--json``)."""
    killpoints.reached("config.load")
    config = config_from_args(args)
    rows = effective_rows(config)
    killpoints.reached("config.show")
    if args.json:
        payload = {
            "files": list(config.files),
            "settings": {k: {"value": v, "source": s} for k, v, s in rows},
            "warnings": list(config.warnings),
        }
        print(json.dumps(payload, indent=2, default=list))
        return EXIT_OK
    docs = {k: d for k, _, d in field_docs()}
    out = console()
    files = printable(", ".join(config.files)) if config.files else "none found (built-in defaults)"
    out.print(f"configuration files read (lowest precedence first): {files}")
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("setting")
    table.add_column("value")
    table.add_column("from")
    if args.doc:
        table.add_column("meaning")
    for key, value, source in rows:
        cells = [key, printable(_show_value(value)), printable(source)]
        if args.doc:
            cells.append(docs.get(key, ""))
        table.add_row(*cells, style=None if source == "default" else "bold")
    out.print(table)
    return EXIT_OK


def config_reference() -> str:
    """Markdown table of every setting, its default and meaning (the README embeds this verbatim)."""
    lines = ["| setting | default | meaning |", "|---|---|---|"]
    current = ""
    for key, default, doc in field_docs():
        section = key.split(".")[0]
        if section != current:
            current = section
            title = (SECTIONS[section].__doc__ or "").strip().splitlines()[0]
            lines.append(f"| **{section}:** | | {title} |")
        lines.append(f"| `{key}` | `{_show_value(default)}` | {doc} |")
    return "\n".join(lines) + "\n"


def check(args: argparse.Namespace) -> int:
    """Validate one file: exit 0 with a one-line summary (warnings on stderr), 2 when it is invalid."""
    path = Path(args.file)
    if not path.exists():
        print(f"error: {path}: no such file. Fix: give the path of a dl.config.sdn", file=sys.stderr)
        return EXIT_USAGE
    check_file(path, "config check")  # a folder or a device: ConfigError, exit 2
    document = read_file(path)  # syntax errors raise ConfigError with file:line:column
    config = load_config(path, env={}, user_files=False)
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for unused in config.unused:
        print(f"note: {unused} is a Simple project setting, not used by gpubench", file=sys.stderr)
    # Count only what gpubench uses; name what it ignores, so a valid file cannot hide a dropped intent.
    keys, used, ignored = used_settings(document)
    sections = ", ".join(used) or "no gpubench section"
    extra = f"; ignored: {', '.join(ignored)}" if ignored else ""
    if config.unused:
        names = ", ".join(u.rsplit(": ", 1)[-1] for u in config.unused)
        extra += f"; not used by gpubench: {names}"
    killpoints.reached("config.check")
    print(f"{path}: valid ({keys} settings in {sections}{extra}; {len(config.warnings)} warning(s))")
    return EXIT_OK
