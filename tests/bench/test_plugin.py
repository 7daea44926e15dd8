"""The pytest plugin, driven through pytest in a subprocess as users meet it."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

torch = pytest.importorskip("torch")
NO_GPU = not torch.cuda.is_available()

CASES = """
import pytest

def test_runs_on(device):
    assert device.name in ("cpu", "cuda:0", "cuda:1")
    assert device.identity["device"] == device.name

def test_bench(benchmark, device):
    benchmark.group = "sum"
    benchmark(sum, range(100))

@pytest.mark.gpu
def test_needs_gpu():
    pass

@pytest.mark.multi_gpu
def test_needs_two():
    pass
"""


@pytest.fixture
def isolated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for var in ("GPUBENCH_DL_DEVICE", "GPUBENCH_BENCH_DEVICES", "SIMPLE_DL_DEVICE", "GPUBENCH_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(pytester.path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(pytester.path / "xdg"))
    pytester.makepyfile(test_cases=CASES)
    return pytester


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU behaviour; this machine has a GPU")
def test_cuda1_config_falls_back_to_cpu_with_a_loud_note(isolated: pytest.Pytester) -> None:
    (isolated.path / "dl.config.sdn").write_text('dl:\n  device: "cuda:1"\n', encoding="utf-8")
    result = isolated.runpytest_subprocess("-rs", "-p", "no:cacheprovider", "--benchmark-json=out.json",
        "--benchmark-max-time=0.001", "--benchmark-min-rounds=1")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*gpubench: devices cuda:1; config *dl.config.sdn*",
            "*gpubench notes*",
            "FALLBACK: cuda:1 requested but unusable (no usable NVIDIA driver or GPU*ran on cpu instead",
        ]
    )
    # one call each: the skip summary lists them in the order the cases ran (pytest-randomly may shuffle it)
    result.stdout.fnmatch_lines(["*SKIPPED*needs a CUDA GPU: no usable NVIDIA driver or GPU*"])
    result.stdout.fnmatch_lines(["*SKIPPED*needs two CUDA GPUs*"])
    data = json.loads((isolated.path / "out.json").read_text())
    (bench,) = data["benchmarks"]
    assert bench["param"] == "cuda:1" and bench["group"] == "sum"
    assert bench["extra_info"]["device"] == "cpu"
    assert bench["extra_info"]["requested_device"] == "cuda:1"
    assert bench["extra_info"]["fallback_note"].startswith("FALLBACK: cuda:1")
    assert bench["extra_info"]["gpu"]["uuid"].startswith("cpu-")
    info = data["machine_info"]["gpubench"]
    assert info["config"]["dl"]["device"] == "cuda:1"
    assert info["environment"]["torch"] == str(torch.__version__)
    assert info["config_files"][0].endswith("dl.config.sdn")


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU behaviour; this machine has a GPU")
def test_missing_device_beside_its_fallback_is_skipped_with_the_reason(isolated: pytest.Pytester) -> None:
    result = isolated.runpytest_subprocess("-rs", "-p", "no:cacheprovider", "--gpubench-devices=cpu,cuda:1",
                                           "-k", "runs_on", "-v")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*test_runs_on?cpu? PASSED*",
            "*SKIPPED*cuda:1 skipped: no usable NVIDIA driver or GPU*(cpu is already compared)*",
        ]
    )


def test_devices_option_parametrizes_and_bad_values_are_usage_errors(isolated: pytest.Pytester) -> None:
    result = isolated.runpytest_subprocess("-p", "no:cacheprovider", "--gpubench-devices=cpu", "-k", "runs_on", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_runs_on?cpu? PASSED*"])
    bad = isolated.runpytest_subprocess("-p", "no:cacheprovider", "--gpubench-devices=tpu:0")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--gpubench-devices: unknown device 'tpu:0'*"])


def test_invalid_config_is_a_usage_error_naming_the_position(isolated: pytest.Pytester) -> None:
    (isolated.path / "dl.config.sdn").write_text('dl:\n  device: "cuda:1"\n  dtype: f99\n', encoding="utf-8")
    result = isolated.runpytest_subprocess("-p", "no:cacheprovider", "-k", "runs_on")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dl.config.sdn:3:10: dl.dtype = 'f99' is not allowed*"])


def test_plugin_is_registered_through_the_entry_point() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("gpubench") == "gpubench.bench.plugin"
