"""bench/conftest.py's warning policy: a library's warning on a GPU path is recorded with the case, not a
failure; a warning from gpubench's own code or the cases still fails (filterwarnings = error)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
BENCH = Path(__file__).resolve().parents[2] / "bench"

CASES = '''
import warnings

def library_code():  # a warning attributed to torch, as torch.cuda.graphs would raise it
    warnings.warn_explicit("capture on the legacy stream", UserWarning, "graphs.py", 42, module="torch.cuda.graphs")

def test_library_warning_is_recorded(benchmark):
    benchmark.pedantic(library_code, rounds=2, iterations=1)

def test_own_warning_fails(benchmark):
    def ours():
        warnings.warn("gpubench's own deprecated call", DeprecationWarning)
    benchmark.pedantic(ours, rounds=1, iterations=1)
'''


def test_third_party_warning_is_recorded_and_own_warning_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(pytester.path))  # no user config: built-in defaults
    for name in ("GPUBENCH_DEVICE", "GPUBENCH_DEVICES", "GPUBENCH_RESULTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    shutil.copy(BENCH / "conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(test_cases=CASES)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-json=out.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*warning from graphs.py:42 recorded in extra_info, not failed*capture on the legacy stream*"])
    saved = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    (case,) = [b for b in saved["benchmarks"] if b["name"] == "test_library_warning_is_recorded"]
    assert case["extra_info"]["warnings"][0] == {
        "category": "UserWarning", "message": "capture on the legacy stream", "where": "graphs.py:42"
    }
