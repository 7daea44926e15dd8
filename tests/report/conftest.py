"""Fixtures shared by the report tests; the saved runs they read are in report_runs.py."""

from __future__ import annotations

import pytest
from report_runs import RUNS

from gpubench.report.load import LoadedRuns, load_runs


@pytest.fixture(scope="module")
def loaded() -> LoadedRuns:
    return load_runs(RUNS)
