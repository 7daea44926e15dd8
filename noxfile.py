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


CI_TEST_ORDER_SEED = 1152104369  # the order of the last clean-clone CI run (1,601 passed)


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
    # pytest-randomly shuffles every run; CI takes one fixed order, a seed whose whole run passed on a clean clone
    # (explore others with `pytest -p randomly --randomly-seed=N`)
    order = [f"--randomly-seed={CI_TEST_ORDER_SEED}"]
    session.run(python, "-m", "pytest", junit, *order, *session.posargs, env=env, external=True)
    if not session.posargs:
        # each case once, results to a temporary folder: even disabled, the benchmark run makes
        # <results>/benchmarks/, which with the user's GPUBENCH_RESULTS_DIR exported would land outside the test run
        bench_env = {**env, "GPUBENCH_RESULTS_DIR": tempfile.mkdtemp(prefix="gpubench-bench-")}
        session.run(
            python, "-m", "pytest", "bench", "--benchmark-disable", "-q", env=bench_env, external=True
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


# Mutation testing. Each group: the modules it mutates (globs under src/) and the tests that exercise them.
# A group runs apart, in build/mutants/<group>/ (mutmut copies src/ and tests/ into its mutants/ there and
# runs only these tests), so a run takes minutes and one group's broken work in progress does not stop
# another's. The SDN reader is last: the biggest group. The mutmut settings the groups share are
# [tool.mutmut] in pyproject.toml. A check's probe needs NVML and a GPU, its decision does not: the checks
# group scores the decisions and the helpers they call (the MUTANT names below), not the probes.
_CHECK_DECISIONS = (
    *(f"x_decide_{name}__*" for name in ("compute", "config", "contention", "identity", "interconnect",
                                          "inventory", "memory_health", "memtest", "perf_floor", "software",
                                          "under_load")),  # not decide_all: it walks the DeviceContexts
    "x__*_findings__*", "x__mismatches__*", "x__numbering__*", "x__unmapped__*",
    "x__major_minor__*", "x_comparable__*", "x_pci_text__*", "x__split_own__*",
    "xǁClockEventReasonsǁ*", "xǁMemtestReadingǁ*", "xǁMemoryHealthǁ*", "xǁGpuIdentityǁ*",
)
_TIMING_MATH = (  # calibration and measurement; not torch's defaults (cuda Events, synchronize, L2 size)
    "xǁSyncClockǁ*", "xǁMeasurementǁ*", "xǁDeviceTimerǁsync_overhead", "xǁDeviceTimerǁcalibrate",
    "xǁDeviceTimerǁplan", "xǁDeviceTimerǁmeasure", "xǁDeviceTimerǁclock_for", "xǁDeviceTimerǁmethod_name",
    "xǁDeviceTimerǁround_clock", "x_rotation_count", "x_cpu_llc_bytes", "x__rotating_call", "x_median_seconds",
)
_COLLECTIVE_MATH = (  # not the sweep itself, which needs torch.distributed and its process group
    "x_bus_factor", "x_algbw_gbps", "x_busbw_gbps", "x_parse_bytes", "x_format_bytes", "x_size_sweep",
    "x_buffer_numels", "x_result_from_times", "x_batch_rule_for", "x_batch_iters", "x_busbw_gate",
    "xǁBatchRuleǁ*", "xǁCollectiveResultǁ*",
)
_ANALYSIS_DECISIONS = (  # what is compared with what and what is flagged; not the pandas tables' layout
    "x_device_sort_key", "x_latest_run_id", "x_rounds_of", "xǁCompareCacheǁ*", "x__row_key",
    "x_comparison_cells", "x_trend_table", "x__trend_row", "x__kept_runs", "x__outlier_row", "xǁSiblingsǁ*",
    "x_missed_targets",
)
MUTATION_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "timing": {
        "modules": ("src/gpubench/timing.py",),
        "tests": ("tests/core/test_timing.py", "tests/core/test_timing_boundaries.py"),
        "mutants": tuple(f"gpubench.timing.{name}__mutmut_*" for name in _TIMING_MATH),
    },
    "stragglers": {
        "modules": ("src/gpubench/distributed/stragglers.py",),
        "tests": ("tests/distributed/test_stragglers.py", "tests/distributed/test_stragglers_boundaries.py"),
    },
    "collectives": {
        "modules": ("src/gpubench/distributed/collectives.py",),
        "tests": ("tests/distributed/test_collectives.py", "tests/distributed/test_collectives_boundaries.py"),
        "mutants": tuple(f"gpubench.distributed.collectives.{name}__mutmut_*" for name in _COLLECTIVE_MATH),
    },
    "checks": {
        "modules": ("src/gpubench/verify/checks/*.py",),
        "tests": ("tests/verify/test_check_*.py", "tests/verify/test_verdicts.py"),
        "mutants": (*(f"gpubench.verify.checks.*.{name}" for name in _CHECK_DECISIONS),
                    "gpubench.verify.checks.identity.x_verify__*"),  # the tolerance setting, % to a share
    },
    "validate": {
        "modules": ("src/gpubench/config/validate.py", "src/gpubench/config/schema.py"),
        "tests": ("tests/config/test_config.py", "tests/config/test_faults_config.py",
                  "tests/config/test_validate_boundaries.py"),
    },
    # the report's statistics, one group per module, each scored by its unit tests (seconds a pass). One group of
    # all four with test_report_fleet.py and test_bench_compare_gate.py took 80-110 s a pass on two cores (those
    # run pytest or a fleet report, 8-18 s a test), and mutmut runs every test that reaches a mutated function
    "report-fdr": {
        "modules": ("src/gpubench/report/fdr.py",),
        "tests": ("tests/report/test_report_fdr_boundaries.py",),
    },
    "report-spread": {
        "modules": ("src/gpubench/report/spread.py",),
        "tests": ("tests/report/test_spread_boundaries.py",),
    },
    "report-comparison": {
        "modules": ("src/gpubench/comparison.py",),
        "tests": ("tests/report/test_report_compare.py", "tests/report/test_comparison_boundaries.py"),
    },
    "report-analysis": {
        "modules": ("src/gpubench/report/analysis.py",),
        "tests": ("tests/report/test_report_analysis.py", "tests/report/test_analysis_boundaries.py"),
        "mutants": tuple(f"gpubench.report.analysis.{name}__mutmut_*" for name in _ANALYSIS_DECISIONS),
    },
    "sdn": {
        "modules": tuple(f"src/gpubench/config/sdn/{m}.py"
                         for m in ("errors", "values", "lexer", "lookalikes", "fast", "inline", "parser", "reading")),
        "tests": ("tests/config/test_sdn*.py",),
    },
}
# mutmut waits (tests' time in its stats run + timeout_constant) x timeout_multiplier (15 and 1 by default) of
# wall time before it calls a mutant hung. The SDN group's stats run times its Hypothesis properties at full
# size, 10-37 s a function, while a mutant's run needs 1-5 s (tests/config/conftest.py shrinks them there): at
# the default, each mutant that loops forever (`pos -= 1` in a scanner) held the one worker for 3-9 minutes.
MUTATION_TIMEOUTS: dict[str, dict[str, float]] = {
    "sdn": {"timeout_multiplier": 1.5, "timeout_constant": 10.0},  # 15-70 s; a surviving run takes 1-5 s
}
MUTATION_GOAL = 0.90  # of the mutants of each group, killed
MUTANTS_DIR = ROOT / "build" / "mutants"


def _toml_value(value: object) -> str:
    """A TOML value for the plain types [tool.mutmut] and [tool.pytest.ini_options] hold."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)  # numbers, and strings: a JSON string is a TOML basic string


def _group_dir(group: str, spec: dict[str, tuple[str, ...]]) -> Path:
    """build/mutants/<group>/: src and tests linked, and a pyproject.toml whose [tool.mutmut] is this group's."""
    import tomllib

    here = MUTANTS_DIR / group
    here.mkdir(parents=True, exist_ok=True)
    for name in ("src", "tests", "dl.config.sdn", "scripts"):
        link = here / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name)
    tests = sorted({str(p.relative_to(ROOT)) for pattern in spec["tests"] for p in ROOT.glob(pattern)})
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    mutmut = {
        **project["tool"].get("mutmut", {}),
        "only_mutate": list(spec["modules"]),
        "pytest_add_cli_args_test_selection": tests,
        "use_git_change_detection": False,
        **MUTATION_TIMEOUTS.get(group, {}),
    }
    lines = ["# written by noxfile.py (nox -s mutants) for one mutation group; do not edit"]
    for table, values in (("tool.pytest.ini_options", project["tool"]["pytest"]["ini_options"]),
                          ("tool.mutmut", mutmut)):
        lines += ["", f"[{table}]", *(f"{key} = {_toml_value(value)}" for key, value in values.items())]
    text = "\n".join(lines) + "\n"
    config = here / "pyproject.toml"
    if not config.is_file() or config.read_text(encoding="utf-8") != text:
        config.write_text(text, encoding="utf-8")
    return here


def _mutant_status(exit_code: int | None) -> str:
    """mutmut's exit code of one mutant's test run, as killed / survived / no tests / timeout / other."""
    if exit_code in (1, 3):
        return "killed"
    if exit_code in (36, 24, -24, 152, 255):  # SIGXCPU or mutmut's own timeout: the mutant hung the tests
        return "timeout"
    return {0: "survived", 5: "no tests", 33: "no tests", None: "not checked"}.get(exit_code, "other")


def mutation_scores(group: str, spec: dict[str, tuple[str, ...]]) -> tuple[list[str], float | None, list[str]]:
    """Killed/total per module of one group from mutmut's results (``mutants/**/*.py.meta``).

    Returns the table lines, the group's score (None: no mutants) and the mutants not killed. A timeout
    counts as killed (the mutant made the tests hang); "no tests" counts against the score.
    """
    import fnmatch
    import json

    patterns = spec.get("mutants", ("*",))
    root = MUTANTS_DIR / group / "mutants" / "src"
    lines: list[str] = []
    survivors: list[str] = []
    killed_all = total_all = 0
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        mine = {k: v for k, v in codes.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
        if not mine:
            continue
        module = meta.relative_to(root).as_posix().removesuffix(".py.meta").replace("/", ".")
        counts: dict[str, int] = {}
        for key, code in sorted(mine.items()):
            status = _mutant_status(code)
            counts[status] = counts.get(status, 0) + 1
            if status not in ("killed", "timeout"):
                survivors.append(f"{status:<11} {key}")
        killed = counts.get("killed", 0) + counts.get("timeout", 0)
        killed_all, total_all = killed_all + killed, total_all + len(mine)
        rest = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "killed")
        lines.append(f"{group:<17} {module:<42} {killed:>5}/{len(mine):<5} {killed / len(mine):6.1%}  {rest}")
    score = killed_all / total_all if total_all else None
    if score is not None:
        lines.append(f"{group:<17} {'(group)':<42} {killed_all:>5}/{total_all:<5} {score:6.1%}")
    return lines, score, survivors


@nox.session(venv_backend="none")
def mutants(session: nox.Session) -> None:
    """Mutation testing (mutmut, one worker) of the pure modules, killed/total per module; args: group names."""
    python, env = _environment(session, extras="test,mutants")
    unknown = [g for g in session.posargs if g not in MUTATION_GROUPS]
    if unknown:
        session.error(f"unknown group(s) {', '.join(unknown)}: choose from {', '.join(MUTATION_GROUPS)}")
    report: list[str] = []
    low: list[str] = []
    for group in session.posargs or MUTATION_GROUPS:
        spec = MUTATION_GROUPS[group]
        session.log(f"mutants: {group}")
        session.chdir(_group_dir(group, spec))
        # mutmut exits 0 with survivors too: the score below decides
        session.run(python, "-m", "mutmut", "run", "--max-children", "1", *spec.get("mutants", ()),
                    env=env, external=True)
        lines, score, survivors = mutation_scores(group, spec)
        report += [*lines, *(f"{group:<17}   not killed: {s}" for s in survivors)]
        if score is None or score < MUTATION_GOAL:
            low.append(group)
    session.chdir(ROOT)
    for line in report:
        print(line)
    print("(mutmut show NAME, run in build/mutants/<group>/, prints a mutant's change)")
    if low:
        session.error(f"under {MUTATION_GOAL:.0%} of mutants killed: {', '.join(low)}")


# The oldest pytest-benchmark pyproject.toml admits, and the newest pytest it runs on (pytest-benchmark before
# 5.3.1 reads Node._nodeid, which pytest 9 removed). Installed without dependencies into a folder that is put
# first on PYTHONPATH, so it shadows the shared env's pytest-benchmark and pytest: no second torch install.
BENCHMARK_OLDEST = ("pytest-benchmark==4.0.0", "pytest==8.3.5")
BENCHMARK_COMPAT_TESTS = (
    "tests/bench/test_plugin.py", "tests/bench/test_telemetry_plugin.py", "tests/bench/test_bench_internals.py",
    "tests/bench/test_bench_quiet.py", "tests/bench/test_bench_timeout.py", "tests/bench/test_bench_compare_gate.py",
    "tests/bench/test_bench_storage.py", "tests/bench/test_faults_bench.py", "tests/bench/test_targets.py",
)


@nox.session(venv_backend="none")
def benchmark_compat(session: nox.Session) -> None:
    """The gpubench pytest plugins' tests on the oldest pytest-benchmark the range admits, then the newest (the env's)."""
    python, env = _environment(session)
    oldest = ROOT / ".nox" / "pytest-benchmark-oldest"
    stamp = oldest / ".installed"
    if not stamp.is_file() or stamp.read_text(encoding="utf-8").split() != list(BENCHMARK_OLDEST):
        session.run(python, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", str(oldest),
                    *BENCHMARK_OLDEST, external=True)
        stamp.write_text("\n".join(BENCHMARK_OLDEST) + "\n", encoding="utf-8")
    wanted = {spec.split("==")[0].replace("-", "_"): spec.split("==")[1] for spec in BENCHMARK_OLDEST}
    show = "import pytest, pytest_benchmark; print(pytest_benchmark.__version__, pytest.__version__)"
    for label, extra in (("oldest", str(oldest)), ("newest", "")):
        path = os.pathsep.join(p for p in (extra, env.get("PYTHONPATH", ""), os.environ.get("PYTHONPATH", "")) if p)
        run_env = {**env, "PYTHONPATH": path} if path else env
        versions = session.run(python, "-c", show, env=run_env, external=True, silent=True)
        session.log(f"{label}: pytest-benchmark, pytest = {str(versions).split()}")
        if label == "oldest" and str(versions).split() != [wanted["pytest_benchmark"], wanted["pytest"]]:
            session.error(f"{oldest} does not shadow the installed pytest-benchmark and pytest: {versions}")
        # pytest-benchmark 4.0 never closes its --benchmark-json file: the ResourceWarning, raised when the file
        # is collected, reaches the next in-process test as an unraisable exception (an error here)
        unclosed = ["-W", "ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning"] if extra else []
        session.run(python, "-m", "pytest", "-p", "no:randomly", "-q", *unclosed, *BENCHMARK_COMPAT_TESTS,
                    *session.posargs, env=run_env, external=True)
