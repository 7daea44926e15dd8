"""The health checks behind ``gpubench verify`` and ``pytest checks``: each check in its own module under
:mod:`~gpubench.verify.checks` (reading, probe, decision), the verdict types they share (``verdicts``), the
plan per level (``plan``), what a check is handed (``context``), the runner (``run``), the table, JSON and
JUnit output (``output``) and the verb (``command``). It may import gpubench.config, devices, nvml, timing,
results, console and workloads; never the CLI. Below, the names other packages use.
"""

from __future__ import annotations

from gpubench.verify.command import add_arguments, verify
from gpubench.verify.output import junit_xml, write_report
from gpubench.verify.plan import Plan, plan_for
from gpubench.verify.run import VerifyReport, run_checks

__all__ = [
    "Plan",
    "VerifyReport",
    "add_arguments",
    "junit_xml",
    "plan_for",
    "run_checks",
    "verify",
    "write_report",
]
