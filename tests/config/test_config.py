"""Configuration: every layer of the precedence order, validation messages, warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpubench.config import Config, ConfigError, effective_rows, field_docs, load_config

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An environment whose HOME and XDG folder are empty temporary folders."""
    (tmp_path / "home").mkdir()
    return {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def load(tmp_path: Path, env: dict[str, str], **kw: object) -> Config:
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    return load_config(env=env, cwd=project, **kw)  # type: ignore[arg-type]


def test_defaults_without_any_file(tmp_path: Path, home: dict[str, str]) -> None:
    cfg = load(tmp_path, home)
    assert (cfg.dl.device, cfg.dl.dtype, cfg.dl.backend, cfg.dl.autograd) == ("cpu", "f32", "torch", True)
    assert cfg.files == () and cfg.warnings == ()
    assert cfg.source_of("dl.device") == "default"
    assert cfg.bench_devices() == ("cpu",)


def test_shipped_config_keeps_the_original_content(home: dict[str, str]) -> None:
    cfg = load_config(env=home, cwd=ROOT)
    assert (cfg.dl.device, cfg.dl.dtype, cfg.dl.backend, cfg.dl.autograd) == ("cuda:1", "f32", "torch", True)
    assert cfg.warnings == ()
    assert cfg.source_of("dl.device").endswith("dl.config.sdn:3:11")


def test_precedence_each_layer_beats_the_one_below(tmp_path: Path, home: dict[str, str]) -> None:
    write(Path(home["HOME"]) / ".simple" / "dl.config.sdn",
          "dl:\n  device: cuda:0\n  dtype: f16\n  seed: 1\n  batch_size: 7\n  amp: true\n")
    write(Path(home["XDG_CONFIG_HOME"]) / "gpubench" / "dl.config.sdn",
          "dl:\n  dtype: bf16\n  seed: 2\n  batch_size: 8\n")
    write(tmp_path / "project" / "dl.config.sdn", "dl:\n  seed: 3\n  batch_size: 9\n")
    env = {**home, "SIMPLE_DL_DEVICE": "cuda:2", "GPUBENCH_DL_BATCH_SIZE": "10"}
    cfg = load(tmp_path, env, flags={"dl.device": "cuda:3"})
    assert cfg.dl.amp is True  # only ~/.simple sets it
    assert cfg.dl.dtype == "bf16"  # XDG over ~/.simple
    assert cfg.dl.seed == 3  # ./dl.config.sdn over user files
    assert cfg.dl.batch_size == 10  # environment over files
    assert cfg.dl.device == "cuda:3"  # command line over environment
    assert cfg.source_of("dl.device") == "command line (dl.device)"
    assert cfg.source_of("dl.batch_size") == "environment GPUBENCH_DL_BATCH_SIZE"
    assert cfg.source_of("dl.seed").endswith("project/dl.config.sdn:2:9")
    assert len(cfg.files) == 3 and cfg.files[0].endswith(".simple/dl.config.sdn")


def test_simple_environment_variables(tmp_path: Path, home: dict[str, str]) -> None:
    env = {**home, "SIMPLE_DL_DEVICE": "gpu", "SIMPLE_DL_DTYPE": "f64", "SIMPLE_DL_BACKEND": "torch"}
    cfg = load(tmp_path, env)
    assert (cfg.dl.device, cfg.dl.dtype, cfg.dl.backend) == ("gpu", "f64", "torch")
    assert cfg.source_of("dl.dtype") == "environment SIMPLE_DL_DTYPE"


def test_gpubench_env_beats_simple_env_for_the_same_key(tmp_path: Path, home: dict[str, str]) -> None:
    cfg = load(tmp_path, {**home, "SIMPLE_DL_DEVICE": "cuda:0", "GPUBENCH_DL_DEVICE": "cpu"})
    assert cfg.dl.device == "cpu"


def test_environment_lists_and_booleans(tmp_path: Path, home: dict[str, str]) -> None:
    env = {**home, "GPUBENCH_BENCH_DEVICES": "[cuda:0, cuda:1]", "GPUBENCH_TELEMETRY_ENABLED": "false",
           "GPUBENCH_VERIFY_DEVICES": "cuda:0,cpu"}
    cfg = load(tmp_path, env)
    assert cfg.bench.devices == ("cuda:0", "cuda:1") and cfg.bench_devices() == ("cuda:0", "cuda:1")
    assert cfg.verify_devices() == ("cuda:0", "cpu")
    assert cfg.telemetry.enabled is False


def test_explicit_config_file_replaces_the_project_file(tmp_path: Path, home: dict[str, str]) -> None:
    write(tmp_path / "project" / "dl.config.sdn", "dl:\n  dtype: f16\n")
    other = write(tmp_path / "other.sdn", "dl:\n  dtype: f64\n")
    assert load(tmp_path, home, config_file=other).dl.dtype == "f64"
    assert load(tmp_path, {**home, "GPUBENCH_CONFIG": str(other)}).dl.dtype == "f64"


def test_missing_explicit_config_file_is_an_error(tmp_path: Path, home: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"--config: configuration file '.*nope.sdn' does not exist"):
        load(tmp_path, home, config_file=tmp_path / "nope.sdn")
    with pytest.raises(ConfigError, match="environment GPUBENCH_CONFIG"):
        load(tmp_path, {**home, "GPUBENCH_CONFIG": str(tmp_path / "nope.sdn")})


def test_training_and_inference_override_dl(tmp_path: Path, home: dict[str, str]) -> None:
    write(tmp_path / "project" / "dl.config.sdn",
          "dl:\n  device: cpu\n  batch_size: 64\ntraining:\n  device: cuda:1\n  batch_size: 128\n"
          "inference:\n  dtype: f16\n")
    cfg = load(tmp_path, home)
    train, infer = cfg.training_settings(), cfg.inference_settings()
    assert (train.device, train.batch_size, train.dtype) == ("cuda:1", 128, "f32")
    assert (infer.device, infer.batch_size, infer.dtype) == ("cpu", 64, "f16")


BAD_VALUES = [
    ('dl:\n  dtype: "f8"\n', r"dl.config.sdn:2:10: dl.dtype = 'f8' is not allowed; allowed values: f16, bf16, f32, f64"),
    ("dl:\n  dtype: fp32\n", r"Fix: write dtype: f32"),
    ('dl:\n  device: "cdua:1"\n', r"dl.config.sdn:2:11: dl.device: unknown device 'cdua:1'"),
    ("dl:\n  autograd: maybe\n", r"dl.config.sdn:2:13: dl.autograd = 'maybe' is not true or false"),
    ("dl:\n  seed: 1.5\n", r"dl.seed = 1.5 is not an integer"),
    ("dl:\n  seed: -1\n", r"dl.config.sdn:2:9: dl.seed = -1 is below the minimum 0"),
    ("dl:\n  batch_size: [1, 2]\n", r"dl.batch_size = \[1, 2\] is not an integer"),
    ("telemetry:\n  interval_ms: 5\n", r"telemetry.interval_ms = 5 is below the minimum 10"),
    ("verify:\n  memtest_fraction: 1.5\n", r"above the maximum 0.95"),
    ("verify:\n  level: fast\n", r"allowed values: quick, long, stress"),
    ("bench:\n  devices = [cuda:0, tpu:1]\n", r"bench.devices: unknown device 'tpu:1'"),
    ("bench:\n  fallback: never\n", r"allowed values: next, cpu, none"),
    ("dl: cpu\n", r"dl.config.sdn:1:5: dl must be a block of 'key: value' lines"),
    ("dl:\n  device: {a: 1}\n", r"dl.device = \{'a': 1\} is not a string"),
]


@pytest.mark.parametrize(("text", "message"), BAD_VALUES)
def test_wrong_values_name_file_line_column_allowed_values_and_fix(
    tmp_path: Path, home: dict[str, str], text: str, message: str
) -> None:
    write(tmp_path / "project" / "dl.config.sdn", text)
    with pytest.raises(ConfigError, match=message) as err:
        load(tmp_path, home)
    assert "Fix:" in str(err.value)


def test_syntax_errors_become_config_errors_with_position(tmp_path: Path, home: dict[str, str]) -> None:
    write(tmp_path / "project" / "dl.config.sdn", 'dl:\n  device: "cuda:1\n')
    with pytest.raises(ConfigError, match=r"dl.config.sdn:2:\d+: .*unterminated"):
        load(tmp_path, home)


def test_bad_environment_value_names_the_variable(tmp_path: Path, home: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"environment SIMPLE_DL_DTYPE: dl\.dtype = 'float32' is not allowed"):
        load(tmp_path, {**home, "SIMPLE_DL_DTYPE": "float32"})


def test_unknown_keys_and_sections_warn_with_a_suggestion(tmp_path: Path, home: dict[str, str]) -> None:
    write(tmp_path / "project" / "dl.config.sdn",
          "dl:\n  devise: cuda:0\n  dtype: f16\nbnech:\n  devices = [cpu]\nserver:\n  port: 80\n")
    cfg = load(tmp_path, {**home, "GPUBENCH_DL_DEVIC": "cpu"})
    assert cfg.dl.dtype == "f16" and cfg.dl.device == "cpu"
    text = "\n".join(cfg.warnings)
    assert "dl.config.sdn:2:3: unknown key dl.devise; did you mean 'device'? (ignored)" in text
    assert "dl.config.sdn:4:1: unknown section 'bnech'; did you mean 'bench'? (ignored)" in text
    assert "unknown section 'server' (ignored)" in text
    assert "environment GPUBENCH_DL_DEVIC: unknown setting; did you mean 'GPUBENCH_DL_DEVICE'?" in text


@pytest.mark.parametrize("var", ["GPUBENCH_RUN_ID", "GPUBENCH_KILL_AT", "GPUBENCH_NO_INSTALL"])
def test_gpubench_variables_that_are_not_settings_do_not_warn(tmp_path: Path, home: dict[str, str], var: str) -> None:
    cfg = load(tmp_path, {**home, var: "x", "GPUBENCH_RUN_IDS": "y"})
    assert not any(var + ":" in w for w in cfg.warnings), cfg.warnings
    assert any("environment GPUBENCH_RUN_IDS: unknown setting" in w for w in cfg.warnings)  # a near miss still warns


def test_unsupported_backend_is_understood_with_a_clear_warning(tmp_path: Path, home: dict[str, str]) -> None:
    write(tmp_path / "project" / "dl.config.sdn", "dl:\n  backend: native\n")
    cfg = load(tmp_path, home)
    assert cfg.dl.backend == "native"
    assert any("gpubench measures PyTorch only; running with torch" in w for w in cfg.warnings)


def test_simple_project_file_with_extra_sections_loads(tmp_path: Path, home: dict[str, str]) -> None:
    text = (ROOT / "tests" / "data" / "simple_dl.config.sdn").read_text(encoding="utf-8")
    write(tmp_path / "project" / "dl.config.sdn", text)
    cfg = load(tmp_path, home)
    assert cfg.dl.device == "cuda:1" and cfg.training.batch_size == 128
    assert any("unknown section 'rate_limits'" in w for w in cfg.warnings)


def test_every_setting_is_documented_and_listed() -> None:
    docs = field_docs()
    assert len(docs) == len(effective_rows(Config()))
    assert all(doc for _, _, doc in docs)
