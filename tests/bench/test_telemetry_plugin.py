"""The telemetry pytest plugin, driven the way users meet it: pytest in a subprocess."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest

pytest_plugins = ["pytester"]

# Stand-ins for the gpubench plugin's fixtures, so these tests pin down this plugin alone.
STANDIN_CONFTEST = """
from types import SimpleNamespace
import pytest

DEVICES = {{"cpu": "cpu-testhost", "cuda:0": "GPU-00000000-dead-beef-0000-000000000000"}}

@pytest.fixture(params={devices!r})
def device(request, benchmark):
    benchmark.extra_info["device"] = request.param
    return SimpleNamespace(name=request.param, identity={{"uuid": DEVICES[request.param]}})

@pytest.fixture(scope="session")
def gpubench_config():
    return SimpleNamespace(
        telemetry=SimpleNamespace(enabled={enabled!r}, interval_ms=20),
        results=SimpleNamespace(dir="out"),
    )

@pytest.fixture(scope="session")
def gpubench_run_id():
    return "run-1"
"""

BENCH_FILE = """
import time

def _work():
    end = time.perf_counter() + 0.03
    while time.perf_counter() < end:
        time.sleep(0.002)

def test_copy(benchmark, device):
    benchmark.extra_info.update(items_per_s=123456.0, gbps=12.5)
    benchmark.pedantic(_work, rounds=3, iterations=1)

def test_without_device(benchmark):
    benchmark.pedantic(_work, rounds=2, iterations=1)
"""


def _run(pytester: pytest.Pytester, devices: list[str], enabled: bool = True, subprocess: bool = True) -> Any:
    pytester.makeconftest(STANDIN_CONFTEST.format(devices=devices, enabled=enabled))
    pytester.makepyfile(test_bench=BENCH_FILE)
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest_inprocess
    return run("-p", "no:gpubench", "-p", "no:cacheprovider", "--benchmark-json=bench.json")


def _benchmarks(pytester: pytest.Pytester) -> dict[str, Any]:
    data = json.loads((pytester.path / "bench.json").read_text(encoding="utf-8"))
    return {b["name"]: b for b in data["benchmarks"]}


def test_summary_trace_table_and_unavailable_gpu(pytester: pytest.Pytester) -> None:
    # one run, several checks: each pytest subprocess costs seconds on a 2-core machine
    result = _run(pytester, ["cpu", "cuda:0"])
    result.assert_outcomes(passed=3)
    benches = _benchmarks(pytester)

    # the summary goes into extra_info, the trace next to the results
    tele = benches["test_copy[cpu]"]["extra_info"]["telemetry"]
    assert tele["available"] is True and tele["status"] == "ok" and tele["source"] == "psutil"
    assert tele["interval_ms"] == 20.0
    assert tele["samples"] >= 2
    assert tele["trace"].startswith("out/telemetry/run-1/") and tele["trace"].endswith(".csv")
    assert tele["trace_in_results"] == tele["trace"].removeprefix("out/")
    with (pytester.path / tele["trace"]).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == tele["samples"]
    assert {r["uuid"] for r in rows} == {"cpu-testhost"}
    # the sampler brackets the test body: the benchmark's rounds fall inside the trace
    assert float(rows[0]["t"]) == pytest.approx(tele["t_start"], abs=1e-5)
    assert tele["duration_s"] >= 3 * 0.03
    assert "telemetry" not in benches["test_without_device"]["extra_info"]

    # no NVIDIA driver here, and no GPU with this UUID anywhere: "not available", one line, no error
    gpu = benches["test_copy[cuda:0]"]["extra_info"]["telemetry"]
    assert gpu["available"] is False and gpu["status"] == "unavailable" and gpu["trace"] is None
    assert gpu["unavailable_reason"].startswith("telemetry not available")
    lines = [line for line in result.outlines if line.startswith("gpubench telemetry: cuda:0:")]
    assert len(lines) == 1 and "not available" in lines[0]
    assert not any("Traceback" in line for line in result.outlines)

    # the throughput table comes after pytest-benchmark's own table
    result.stdout.fnmatch_lines(
        [
            "*benchmark: 3 tests*",
            "Name (time in ms)*",
            "*gpubench throughput (from extra_info)*",
            "Name (group/name)*device*items/s*GB/s*TFLOP/s*util % (mean)*power W (mean)*",
            "test_copy[[]cpu[]]*cpu*123,456*12.5*-*",
            "test_copy[[]cuda:0[]]*cuda:0*123,456*12.5*-*-*-",
            "test_without_device*-*-*-*-*",
        ]
    )


def test_disabled_telemetry_is_recorded_as_disabled(pytester: pytest.Pytester) -> None:
    _run(pytester, ["cpu"], enabled=False, subprocess=False).assert_outcomes(passed=2)
    tele = _benchmarks(pytester)["test_copy[cpu]"]["extra_info"]["telemetry"]
    assert tele == {
        "available": False,
        "status": "disabled",
        "unavailable_reason": "telemetry.enabled is false",
    }
    assert not (pytester.path / "out").exists()


def test_benchmark_disable_runs_without_sampling(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(STANDIN_CONFTEST.format(devices=["cpu"], enabled=True))
    pytester.makepyfile(test_bench=BENCH_FILE)
    result = pytester.runpytest_inprocess(
        "-p", "no:gpubench", "-p", "no:cacheprovider", "--benchmark-disable"
    )
    result.assert_outcomes(passed=2)
    assert not (pytester.path / "out").exists()
    assert "gpubench throughput" not in result.stdout.str()


def test_with_the_real_gpubench_plugin(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gpubench plugin provides ``device``, ``gpubench_config`` and ``gpubench_run_id`` for real.

    In-process (the plugin imports torch, which the suite has paid for once already), and without
    --benchmark-json, whose machine_info costs seconds; the trace and the table show the result.
    """
    monkeypatch.setenv("GPUBENCH_RUN_ID", "real-run")
    (pytester.path / "dl.config.sdn").write_text(
        "dl:\n  device: cpu\ntelemetry:\n  interval_ms: 20\n", encoding="utf-8"
    )
    pytester.makepyfile(test_bench=BENCH_FILE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    traces = list((pytester.path / "results" / "telemetry" / "real-run").glob("*.csv"))
    assert len(traces) == 1 and "test_copy" in traces[0].name
    with traces[0].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 2 and {r["device"] for r in rows} == {"cpu"}
    assert rows[0]["uuid"].startswith("cpu-")  # the identity the gpubench plugin gives the cpu device
    # 20 ms from dl.config.sdn: the ~0.1 s body gives several samples, not the one or two of 100 ms
    assert len(rows) >= 4
    result.stdout.fnmatch_lines(["*gpubench throughput*", "test_copy[[]cpu[]]*cpu*123,456*12.5*"])
