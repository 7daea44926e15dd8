"""The command line as users meet it: a real subprocess, its output and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def gpubench(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBENCH_", "SIMPLE_DL_"))}
    full_env.update({"HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd / "xdg"), "COLUMNS": "200"})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gpubench", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "dl.config.sdn").write_text(
        'dl:\n  device: "cuda:1"   # 2nd GPU\n  dtype: "f32"\n  backend: "torch"\n  autograd: true\n',
        encoding="utf-8",
    )
    return tmp_path


def test_config_show_prints_each_value_and_where_it_came_from(project: Path) -> None:
    r = gpubench("config", "show", cwd=project, env={"SIMPLE_DL_DTYPE": "bf16"})
    assert r.returncode == 0, r.stderr
    lines = {line.split("│")[0].strip(): line for line in r.stdout.splitlines() if "│" in line}
    assert "cuda:1" in lines["dl.device"] and "│ dl.config.sdn:2:11" in lines["dl.device"]
    assert "bf16" in lines["dl.dtype"] and "environment SIMPLE_DL_DTYPE" in lines["dl.dtype"]
    assert "default" in lines["dl.seed"]
    assert "[f32]" in lines["bench.dtypes"]  # lists print as lists (not eaten as markup)


def test_config_show_json_and_flags(project: Path) -> None:
    r = gpubench("config", "show", "--json", "--device", "cpu", "--set", "verify.level=long", cwd=project)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["settings"]["dl.device"] == {"value": "cpu", "source": "command line (dl.device)"}
    assert data["settings"]["bench.devices"]["value"] == ["cpu"]
    assert data["settings"]["verify.level"]["value"] == "long"
    assert data["files"] == ["dl.config.sdn"]


def test_config_commands_do_not_import_torch(project: Path) -> None:
    code = (
        "import sys; from gpubench.cli import main; "
        "rc = main(['config', 'show', '--json']) + main(['config', 'check', 'dl.config.sdn']); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_config_check_valid_file(project: Path) -> None:
    r = gpubench("config", "check", "dl.config.sdn", cwd=project)
    assert r.returncode == 0
    assert r.stdout.strip() == "dl.config.sdn: valid (4 settings in dl; 0 warning(s))"


def test_config_check_reports_position_allowed_values_and_fix(project: Path) -> None:
    bad = project / "bad.sdn"
    bad.write_text('dl:\n  device: "cuda:1"\n  dtype: "float16"\n', encoding="utf-8")
    r = gpubench("config", "check", "bad.sdn", cwd=project)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "error: bad.sdn:3:10: dl.dtype = 'float16' is not allowed; allowed values: f16, bf16, f32, f64. "
        "Fix: write dtype: f16"
    )
    assert "Traceback" not in r.stderr


def test_config_check_syntax_error_and_missing_file(project: Path) -> None:
    (project / "broken.sdn").write_text("dl:\n  device: [cuda:1\n", encoding="utf-8")
    r = gpubench("config", "check", "broken.sdn", cwd=project)
    assert r.returncode == 2 and r.stderr.startswith("error: broken.sdn:2:")
    assert "Traceback" not in r.stderr
    r = gpubench("config", "check", "absent.sdn", cwd=project)
    assert r.returncode == 2 and "absent.sdn: no such file" in r.stderr


def test_config_check_warns_about_unknown_keys(project: Path) -> None:
    (project / "typo.sdn").write_text("dl:\n  devcie: cpu\n", encoding="utf-8")
    r = gpubench("config", "check", "typo.sdn", cwd=project)
    assert r.returncode == 0
    assert "warning: typo.sdn:2:3: unknown key dl.devcie; did you mean 'device'? (ignored)" in r.stderr
    assert "1 warning(s)" in r.stdout


def test_bad_usage_exits_2(project: Path) -> None:
    assert gpubench("frobnicate", cwd=project).returncode == 2
    r = gpubench("config", "show", "--set", "nonsense", cwd=project)
    assert r.returncode == 2 and "expected SECTION.KEY=VALUE" in r.stderr
    r = gpubench("config", "show", "--set", "dl.colour=red", cwd=project)
    assert r.returncode == 2 and "unknown setting 'dl.colour'" in r.stderr
    r = gpubench("config", "show", "--device", "cuda:x", cwd=project)
    assert r.returncode == 2 and "command line (dl.device): dl.device: unknown device 'cuda:x'" in r.stderr


def test_version(project: Path) -> None:
    r = gpubench("--version", cwd=project)
    assert r.returncode == 0 and r.stdout.startswith("gpubench ")


def test_info_json_describes_this_machine(project: Path) -> None:
    torch = pytest.importorskip("torch")
    r = gpubench("info", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["torch"] == str(torch.__version__)
    assert data["cuda_build"] == (torch.version.cuda or "none (CPU-only build)")
    assert len(data["devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    for row in data["devices"]:
        assert set(row) >= {"index", "name", "memory_gib", "compute_capability", "uuid", "pci_bus_id"}


def test_info_table_says_why_there_is_no_gpu(project: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the no-GPU message does not apply")
    r = gpubench("info", cwd=project)
    assert r.returncode == 0
    assert "No CUDA device:" in r.stdout and "Fix:" in r.stdout


def test_config_check_top_level_dl_key_is_an_error_with_the_fix(project: Path) -> None:
    (project / "flat.sdn").write_text('device: "cuda:1"\n', encoding="utf-8")
    for verb in (["check", "flat.sdn"], ["show", "--config", "flat.sdn"]):
        r = gpubench("config", *verb, cwd=project)
        assert r.returncode == 2, r.stdout
        assert r.stderr.startswith("error: flat.sdn:1:1: 'device' is a setting of dl:, not a section")
        assert "put it under `dl:`" in r.stderr and "    device: cuda:1" in r.stderr


def test_config_check_counts_used_settings_and_names_ignored_sections(project: Path) -> None:
    (project / "mixed.sdn").write_text(
        "dl:\n  device: cpu\n  seed: 3\nproject:\n  name: x\n  run-config: y\nlinters = [a, b]\n"
        "training:\n  gradient_checkpointing: true\ninference:\n  autograd: false\n",
        encoding="utf-8",
    )
    r = gpubench("config", "check", "mixed.sdn", cwd=project)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        "mixed.sdn: valid (2 settings in dl, training, inference; ignored: project, linters; "
        "not used by gpubench: training.gradient_checkpointing, inference.autograd; 2 warning(s))"
    )
    assert "note: mixed.sdn:9:3: training.gradient_checkpointing is a Simple project setting" in r.stderr
    assert "unknown key" not in r.stderr


def test_config_check_simple_only_keys_are_still_validated(project: Path) -> None:
    (project / "gc.sdn").write_text("training:\n  gradient_checkpointing: maybe\n", encoding="utf-8")
    r = gpubench("config", "check", "gc.sdn", cwd=project)
    assert r.returncode == 2
    assert r.stderr.startswith("error: gc.sdn:2:27: training.gradient_checkpointing = 'maybe' is not true or false")


def test_config_check_echo_written_file_names_the_literal_backslash_n(project: Path) -> None:
    (project / "echo.sdn").write_text('dl:\\n  device: "cuda:1"\n', encoding="utf-8")
    r = gpubench("config", "check", "echo.sdn", cwd=project)
    assert r.returncode == 2
    assert r.stderr.startswith("error: echo.sdn:1:4: literal \\n (a backslash and an n, not a line break)")
    assert "echo" in r.stderr


def test_config_check_reads_simple_style_lists_of_dicts(project: Path) -> None:
    (project / "list.sdn").write_text(
        "dl:\n  device: cpu\nsteps:\n  - name: a\n    run: b\n  - name: c\n", encoding="utf-8"
    )
    r = gpubench("config", "check", "list.sdn", cwd=project)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "list.sdn: valid (1 settings in dl; ignored: steps; 1 warning(s))"
