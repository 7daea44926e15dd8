"""pytest-benchmark settings and fixtures for the gpubench benchmark cases.

- Runs are saved under ``<results.dir>/benchmarks`` (``results/benchmarks`` from the repository root,
  whatever the working directory) and saved automatically, so ``pytest bench --benchmark-compare``
  compares with the previous run and ``--benchmark-compare-fail=median:5%`` gates regressions. An
  explicit ``--benchmark-storage`` wins.
- Cases are parametrized from the configuration's ``bench:`` section (sizes, dtypes, pipelines); the
  ``device`` parameter comes from the gpubench plugin (``--gpubench-devices`` overrides the config).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gpubench.bench.plugin import gpubench_config_for, probe_for
from gpubench.workloads import cases

DEFAULT_STORAGE = "file://./.benchmarks"  # pytest-benchmark's own default
_SOURCE_KEY = pytest.StashKey[str]()
_CEILINGS_KEY = pytest.StashKey[cases.Ceilings]()


def benchmark_storage(config: pytest.Config) -> Path:
    """``results.dir``/benchmarks; a relative results.dir is taken from the pytest rootdir (the repository)."""
    results = Path(gpubench_config_for(config).results.dir).expanduser()
    if not results.is_absolute():
        results = Path(config.rootpath) / results
    return results / "benchmarks"


def _storage_given(config: pytest.Config) -> bool:
    """--benchmark-storage was typed (on the command line, in PYTEST_ADDOPTS or addopts), even as its default."""
    words = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *config.getini("addopts")]
    return any(w == "--benchmark-storage" or w.startswith("--benchmark-storage=") for w in words)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-benchmark's notes ("Can't compare: no saved run yet", "machine_info is different": expected
    # when devices, drivers or configs are compared) are warnings; under filterwarnings=error they would
    # abort the run. Show them instead. The first line covers pytest-benchmark's own pytest_configure
    # (it runs after this one, inside the same warning filters), the ini line the later phases.
    from pytest_benchmark.logger import PytestBenchmarkWarning

    warnings.filterwarnings("default", category=PytestBenchmarkWarning)
    config.addinivalue_line("filterwarnings", "default::pytest_benchmark.logger.PytestBenchmarkWarning")
    # pytest-benchmark reads these in its own pytest_configure, which is trylast: this one runs first.
    option = config.option
    if getattr(option, "benchmark_storage", DEFAULT_STORAGE) == DEFAULT_STORAGE and not _storage_given(config):
        option.benchmark_storage = f"file://{benchmark_storage(config)}"
    disabled = getattr(option, "benchmark_disable", False) and not getattr(option, "benchmark_enable", False)
    if not disabled and not getattr(option, "benchmark_skip", False):
        from pytest_benchmark.utils import get_tag

        # What --benchmark-autosave stores: "<commit>_<time>" names the saved file.
        option.benchmark_autosave = option.benchmark_autosave or get_tag()
        # Every round is kept (stats.data), so `gpubench report` compares runs on their rounds
        # (Mann-Whitney U, bootstrap) instead of estimating the spread from the summary.
        option.benchmark_save_data = True


# Warnings-as-errors is for gpubench's own code (the library and these cases). A warning from torch, NCCL,
# triton or another library on a GPU path is a fact about the run, not a failed measurement: it is recorded
# in the case's extra_info["warnings"] (and so in the saved run) and shown once, and the case goes on.
_OWN_CODE = r"(gpubench|conftest|test_)"
_WARNINGS_KEY = pytest.StashKey[list[dict[str, Any]]]()


def _third_party_warnings(item: pytest.Item, caught: list[warnings.WarningMessage]) -> list[dict[str, Any]]:
    found = [
        {"category": w.category.__name__, "message": str(w.message), "where": f"{Path(w.filename).name}:{w.lineno}"}
        for w in caught
    ]
    benchmark = getattr(item, "funcargs", {}).get("benchmark")
    if found and benchmark is not None:
        benchmark.extra_info.setdefault("warnings", []).extend(found)
    item.config.stash.setdefault(_WARNINGS_KEY, []).extend({"case": item.nodeid, **w} for w in found)
    return found


@contextlib.contextmanager
def _recording_third_party_warnings(item: pytest.Item) -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("error", module=_OWN_CODE)
        try:
            yield
        finally:
            _third_party_warnings(item, caught)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _recording_third_party_warnings(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _recording_third_party_warnings(item):
        return (yield)


def _cases(metafunc: pytest.Metafunc) -> dict[str, list[Any]]:
    bench = gpubench_config_for(metafunc.config).bench
    return {
        "creation_case": cases.creation_cases(bench),
        "elementwise_case": cases.elementwise_cases(bench),
        "matmul_case": cases.matmul_cases(bench),
        "copy_case": cases.copy_cases(bench),
    }


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, values in _cases(metafunc).items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, values, ids=[c.id for c in values])
    if "mnist_pipeline" in metafunc.fixturenames:
        pipelines = list(gpubench_config_for(metafunc.config).bench.mnist_pipelines)
        metafunc.parametrize("mnist_pipeline", pipelines, ids=pipelines)


@pytest.fixture(scope="session")
def bench_settings(request: pytest.FixtureRequest) -> Any:
    """The ``bench:`` section of the effective configuration."""
    return gpubench_config_for(request.config).bench


@pytest.fixture(scope="session")
def ceilings(request: pytest.FixtureRequest, bench_settings: Any) -> cases.Ceilings:
    """Matmul rate and copy bandwidth per device, measured once in this session on first use."""
    found = cases.make_ceilings(bench_settings)
    request.config.stash[_CEILINGS_KEY] = found
    return found


@pytest.fixture(scope="session")
def mnist_record() -> cases.PipelineRecord:
    return cases.PipelineRecord()


@pytest.fixture(scope="session")
def mnist_data(request: pytest.FixtureRequest) -> Any:
    """MNIST (or the fallback source) for this session; the source is printed in the summary."""
    data = cases.mnist_data_for(gpubench_config_for(request.config).data)
    request.config.stash[_SOURCE_KEY] = data.source.describe()
    return data


@pytest.fixture
def skip_unsupported_dtype(request: pytest.FixtureRequest) -> Any:
    """Call with (dtype, device): skips with the reason when the device cannot compute in that dtype."""

    def check(dtype: str, device: str) -> None:
        reason = cases.dtype_skip_reason(dtype, device, probe_for(request.config))
        if reason:
            pytest.skip(f"{dtype} on {device}: {reason}")

    return check


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    """Fractions of the ceilings against the best rates this session saw on each device (the ceiling
    measurements and the matmul/copy cases themselves), not the rates known when each case ran."""
    ceilings = config.stash.get(_CEILINGS_KEY, None)
    if ceilings is None:
        return
    for bench in output_json.get("benchmarks", []):
        ceilings.refresh(bench.get("extra_info", {}))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    source = config.stash.get(_SOURCE_KEY, None)
    if source:
        terminalreporter.write_line(f"gpubench MNIST data source: {source}", bold=True)
    if config.option.benchmark_autosave:
        terminalreporter.write_line(f"gpubench benchmark storage: {config.option.benchmark_storage}")
    seen: set[tuple[str, str]] = set()
    for w in config.stash.get(_WARNINGS_KEY, []):
        if (w["category"], w["message"]) not in seen:
            seen.add((w["category"], w["message"]))
            first_line = w["message"].splitlines()[0] if w["message"] else ""
            terminalreporter.write_line(
                f"gpubench: warning from {w['where']} recorded in extra_info, not failed ({w['case']}): "
                f"{w['category']}: {first_line}"
            )
