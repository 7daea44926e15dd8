"""``gpubench`` / ``python -m gpubench``: the command line, on top of the pipeline (info, config, verify,
bench, report).

Holds ``app`` (the parser, the dispatch to one verb, the exit code; the verbs implemented elsewhere are
listed in its ``DELEGATED``, and runs under torchrun are handed to ``gpubench.distributed``),
``interrupts`` (Ctrl-C and SIGTERM, held while torch imports), ``exit_codes``, and the two verbs
implemented here: ``info`` and ``config_cmd`` (``config show|check|reference``, which never imports
torch). May import any gpubench package; none imports it (what the verbs share lives in
``gpubench.console`` and ``gpubench.config.options``). Re-exports :func:`main` (the ``gpubench`` console
script, through ``gpubench.__main__:console``) and :func:`config_reference` (the README's configuration table).
"""

from __future__ import annotations

from gpubench.cli.app import main
from gpubench.cli.config_cmd import config_reference

__all__ = ["config_reference", "main"]
