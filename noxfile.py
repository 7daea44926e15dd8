"""nox sessions for gpubench: verify, bench, report, tests, lint.

All sessions share ONE environment, ``.nox/gpubench``, so PyTorch (several GB) is installed once, not
once per session; it is (re)installed only when pyproject.toml changes. On a GPU node without network,
where torch and friends are already installed, run the same sessions in the current environment with
``GPUBENCH_NO_INSTALL=1 nox -s verify`` (nothing is installed; gpubench runs from ``src/``), or skip
nox entirely: ``python -m gpubench verify``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import nox

nox.options.sessions = ["verify"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
SHARED = ROOT / ".nox" / "gpubench"
STAMP = SHARED / ".gpubench-installed"


def _bin(name: str) -> str:
    folder = "Scripts" if os.name == "nt" else "bin"
    return str(SHARED / folder / name)


def _environment(session: nox.Session, extras: str = "test") -> tuple[str, dict[str, str]]:
    """The Python to run with, and the environment variables; installs into the shared env once."""
    if os.environ.get("GPUBENCH_NO_INSTALL", "").strip() in ("1", "true", "yes"):
        session.log("GPUBENCH_NO_INSTALL set: using this interpreter, installing nothing")
        path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
        return sys.executable, {"PYTHONPATH": path}
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    installed = STAMP.read_text(encoding="utf-8").split() if STAMP.is_file() else []
    if wanted not in installed:
        if not SHARED.exists():
            session.run(sys.executable, "-m", "venv", str(SHARED), external=True)
        session.run(_bin("python"), "-m", "pip", "install", "-q", "--upgrade", "pip", external=True)
        session.run(_bin("python"), "-m", "pip", "install", "-e", f".[{extras}]", external=True)
        STAMP.write_text("\n".join([*installed, wanted]) + "\n", encoding="utf-8")
    else:
        session.log(f"reusing {SHARED} (pyproject.toml unchanged)")
    return _bin("python"), {}


@nox.session(venv_backend="none")
def verify(session: nox.Session) -> None:
    """Run the health checks on the configured devices; exit 1 when a check FAILs."""
    python, env = _environment(session)
    session.run(python, "-m", "gpubench", "verify", *session.posargs, env=env, external=True)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Run the pytest-benchmark cases in bench/ on the configured devices and save the run."""
    python, env = _environment(session)
    session.run(python, "-m", "pytest", "bench", *session.posargs, env=env, external=True)


@nox.session(venv_backend="none")
def report(session: nox.Session) -> None:
    """Turn the saved runs under results/ into per-GPU reports (Markdown, HTML, CSV, Parquet)."""
    python, env = _environment(session)
    session.run(python, "-m", "gpubench", "report", *session.posargs, env=env, external=True)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Run gpubench's own test suite, then every benchmark case once (--benchmark-disable), then checks/ on cpu."""
    python, env = _environment(session)
    junit = "--junitxml=results/tests/junit.xml"  # .ci/run reads it: "no tests ran" must fail CI
    session.run(python, "-m", "pytest", junit, *session.posargs, env=env, external=True)
    if not session.posargs:
        session.run(
            python, "-m", "pytest", "bench", "--benchmark-disable", "-q", env=env, external=True
        )
        # the thin check files over the library, on the device every machine has (GPU checks skip, saying why)
        # (their verification results go to a temporary folder: the test run leaves nothing in the checkout)
        checks_env = {**env, "GPUBENCH_RESULTS_DIR": tempfile.mkdtemp(prefix="gpubench-checks-")}
        session.run(python, "-m", "pytest", "checks", "--gpubench-devices=cpu", "-q", env=checks_env, external=True)


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff (style and bugs) and mypy --strict over src/gpubench."""
    python, env = _environment(session, extras="test,lint")
    session.run(python, "-m", "ruff", "check", "src", "tests", "bench", "checks", "noxfile.py", env=env, external=True)
    session.run(python, "-m", "mypy", *session.posargs, env=env, external=True)
