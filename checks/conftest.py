"""`pytest checks`: the health checks as pytest tests, one per (device, check).

All checks run once per session through gpubench.verify.run_checks (the perf floor compares devices with each
other, so they are measured together); each test then asserts its own row: FAIL fails, SKIP skips with the
reason, PASS and WARN pass (a WARN is printed in the summary). The run is saved like `gpubench verify`'s.
Options: --gpubench-config / --gpubench-devices (the gpubench plugin), --verify-level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpubench.devices import parse_device
from gpubench.verify.checks import CHECKS

_REPORT = pytest.StashKey[Any]()
_PATHS = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("gpubench").addoption(
        "--verify-level",
        choices=("quick", "long", "stress"),
        default=None,
        help="health-check level (default: verify.level from dl.config.sdn)",
    )


def _config(config: pytest.Config) -> Any:
    from gpubench.bench.plugin import gpubench_config_for

    return gpubench_config_for(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "verify_case" not in metafunc.fixturenames:
        return
    wanted = getattr(metafunc.module, "CHECKS", None)
    cases = []
    for text in _config(metafunc.config).verify_devices():
        spec = parse_device(text)
        for check in CHECKS:
            if (wanted is None or check.name in wanted) and (spec.kind == "cuda" or check.cpu):
                cases.append((spec.name, check.name))
    metafunc.parametrize("verify_case", cases, ids=[f"{d}-{c}" for d, c in cases])


@pytest.fixture(scope="session")
def verify_report(request: pytest.FixtureRequest) -> Any:
    """Every check on every configured device, run once; saved under results/verify/."""
    from gpubench import verify
    from gpubench.bench.plugin import probe_for, run_id_for

    config = request.config
    if _REPORT not in config.stash:
        cfg = _config(config)
        report = verify.run_checks(
            cfg, level=config.getoption("--verify-level"), probe=probe_for(config), run_id=run_id_for(config)
        )
        config.stash[_REPORT] = report
        config.stash[_PATHS] = verify.write_report(report, Path(cfg.results.dir))
    return config.stash[_REPORT]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _REPORT not in config.stash:
        return
    report = config.stash[_REPORT]
    terminalreporter.section("gpubench verify")
    warns = [r for r in report.results if r.verdict.value == "WARN"]
    for r in warns:
        terminalreporter.write_line(f"WARN {r.device} {r.check}: {r.message} Fix: {r.remedy}")
    terminalreporter.write_line(report.summary())
    for path in config.stash[_PATHS]:
        terminalreporter.write_line(f"wrote {path}")
