"""Fault family 1, configuration: malformed and invalid ``dl.config.sdn`` files, written to disk for real.

Every file in ``tests/data/bad_configs/`` is run through ``gpubench verify --config FILE`` (in-process through
``gpubench.cli.main``, and a sample of them in a real subprocess). Each must give exit code 2, one message that
names ``FILE:LINE:COLUMN`` (the exact position is pinned per file below) with a fix or hint, no traceback, and
leave every file under ``results/`` untouched.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpubench.cli import main
from gpubench.config import MAX_CONFIG_BYTES

BAD = Path(__file__).parents[1] / "data" / "bad_configs"

# file -> (line, column, the start of the message after "FILE:LINE:COLUMN: ")
EXPECTED: dict[str, tuple[int, int, str]] = {
    # syntax errors the SDN reader can meet
    "tab_indent.sdn": (2, 1, 'tab character in indentation'),
    "unterminated_quote.sdn": (2, 11, 'unterminated quoted string'),
    "unknown_escape.sdn": (2, 11, 'unknown escape \\d in quoted string'),
    "final_backslash.sdn": (2, 8, 'unterminated quoted string'),
    "unterminated_array.sdn": (2, 13, "unterminated '[': no matching ']' on this line"),
    "unterminated_dict.sdn": (1, 6, "unterminated '{': no matching '}' on this line"),
    "mismatched_bracket.sdn": (2, 25, "'}' does not close the '[' at column 13"),
    "missing_comma.sdn": (1, 21, "expected ',' or '}', found 'd'"),
    "duplicate_key.sdn": (3, 3, "duplicate key 'device' (first defined on line 2, again on "),
    "duplicate_section.sdn": (3, 1, "duplicate key 'dl' (first defined on line 1, again on line"),
    "missing_blank_after_colon.sdn": (2, 10, "missing blank after ':' in 'device:cpu'."),
    "missing_blank_second_line.sdn": (3, 9, "missing blank after ':'"),
    "invalid_key.sdn": (2, 3, "'1device: cpu' is not a setting of dl:."),
    "empty_key.sdn": (3, 3, "empty key before ':'"),
    "not_a_statement.sdn": (2, 3, "'device cpu' is not a setting of dl:."),
    "top_level_not_a_statement.sdn": (3, 1, 'line is not a statement'),
    "unexpected_indent.sdn": (3, 7, 'unexpected indentation'),
    "dedent_mismatch.sdn": (3, 3, 'indentation (2 spaces) matches no open block'),
    "scalar_after_equals.sdn": (2, 12, "the value after '=' must be an inline dict {...} or array "),
    "entry_in_array_block.sdn": (4, 5, '`key: value` entry inside an array block'),
    "trailing_garbage.sdn": (2, 19, "unexpected 'c' after the closing ']'"),
    "huge_integer.sdn": (2, 9, 'integer has 4001 digits, more than the 4000 this reader ac'),
    "float_overflow.sdn": (2, 18, 'number 1e999 is too large for a 64-bit float'),
    "too_deep.sdn": (2, 109, 'nesting is deeper than 100 levels'),
    "unterminated_field_list.sdn": (2, 8, "unterminated '|' field list"),
    "unknown_column_type.sdn": (2, 20, "unknown column type 'f99'"),
    "table_row_cells.sdn": (3, 5, 'table row has 3 cells, expected 2 (i32, f64)'),
    "table_cell_range.sdn": (3, 5, 'cell 300 is out of range for u8 (0..255)'),
    "empty_array_item.sdn": (2, 18, "expected a value before ','"),
    "inline_empty_key.sdn": (1, 7, "empty key before ':'"),
    # wrong types
    "section_is_scalar.sdn": (1, 5, "dl must be a block of 'key: value' lines, found the text '"),
    "section_is_list.sdn": (1, 7, "'cpu' is not a setting of dl:."),
    "int_not_a_number.sdn": (2, 9, "dl.seed = 'abc' is not an integer."),
    "bool_not_a_bool.sdn": (2, 13, "dl.autograd = 'maybe' is not true or false."),
    "list_for_string.sdn": (2, 12, "dl.device = ['cpu'] is not a string."),
    "float_for_int.sdn": (2, 11, 'bench.rounds = 1.5 is not an integer.'),
    "bool_for_int.sdn": (2, 16, 'telemetry.interval_ms = True is not an integer.'),
    "dict_for_list.sdn": (2, 13, "bench.devices = {'a': 1} is not a string."),
    "text_for_float.sdn": (2, 21, "verify.memtest_fraction = 'lots' is not a number."),
    "nan_for_float.sdn": (2, 17, "verify.burn_seconds = 'nan' is not a finite number."),
    "table_for_string.sdn": (2, 10, "dl.device = Table([{'a': 1}], fields=('a',), types=None) i"),
    # unknown devices
    "device_tpu.sdn": (2, 11, "dl.device: unknown device 'tpu:0': expected one of cpu, gp"),
    "device_bad_index.sdn": (2, 11, "dl.device: unknown device 'cuda:x': expected one of cpu, g"),
    "device_negative.sdn": (2, 11, "dl.device: unknown device 'cuda:-1': expected one of cpu, "),
    "device_in_list.sdn": (2, 19, "bench.devices: unknown device 'cuda:abc': expected one of "),
    "device_training.sdn": (2, 11, "training.device: unknown device 'gpu1': expected one of cp"),
    "device_verify_block.sdn": (4, 5, "verify.devices: unknown device 'mps': expected one of cpu,"),
    # unknown dtypes
    "dtype_f8.sdn": (2, 10, "dl.dtype = 'f8' is not allowed; allowed values: f16, bf16,"),
    "dtype_float16.sdn": (2, 10, "dl.dtype = 'float16' is not allowed; allowed values: f16, "),
    "dtype_training.sdn": (2, 10, "training.dtype = 'int8' is not allowed; allowed values: f1"),
    "dtype_in_list.sdn": (2, 18, "bench.dtypes = 'f128' is not allowed; allowed values: f16,"),
    # out-of-range values and unknown choices
    "seed_negative.sdn": (2, 9, 'dl.seed = -1 is below the minimum 0.'),
    "batch_zero.sdn": (2, 15, 'dl.batch_size = 0 is below the minimum 1.'),
    "interval_too_short.sdn": (2, 16, 'telemetry.interval_ms = 5 is below the minimum 10.'),
    "interval_too_long.sdn": (2, 16, 'telemetry.interval_ms = 100000 is above the maximum 60000.'),
    "memtest_fraction_high.sdn": (2, 21, 'verify.memtest_fraction = 0.99 is above the maximum 0.95.'),
    "size_zero.sdn": (2, 24, 'bench.matmul_sizes = 0 is below the minimum 1.'),
    "sync_fraction_high.sdn": (2, 22, 'bench.max_sync_fraction = 0.9 is above the maximum 0.5.'),
    "level_unknown.sdn": (2, 10, "verify.level = 'extreme' is not allowed; allowed values: q"),
    "fallback_unknown.sdn": (2, 13, "bench.fallback = 'gpu' is not allowed; allowed values: nex"),
    "format_unknown.sdn": (2, 18, "report.formats = 'pdf' is not allowed; allowed values: md,"),
    "backend_unknown.sdn": (2, 12, "dl.backend = 'tensorflow' is not allowed; allowed values: "),
    # empty files, binary garbage, wrong encodings
    "empty.sdn": (1, 1, 'the configuration file is empty (a save that did not finis'),
    "blank_lines_only.sdn": (1, 1, 'the configuration file is empty (a save that did not finis'),
    "nul_in_value.sdn": (2, 14, 'file contains a NUL byte (offset 17): it is binary data or'),
    "latin1.sdn": (2, 19, 'file is not valid UTF-8 (byte 0xfc at offset 22)'),
    "utf16_bom.sdn": (1, 1, 'file is UTF-16 text (it starts with a UTF-16 byte-order ma'),
    "utf16be_no_bom.sdn": (1, 1, 'file contains a NUL byte (offset 0): it is binary data or '),
    "utf32_bom.sdn": (1, 1, 'file is UTF-32 text (it starts with a UTF-32 byte-order ma'),
    "binary_garbage.sdn": (1, 1, 'file contains a NUL byte (offset 0): it is binary data or '),
    "gzip_garbage.sdn": (1, 2, 'file is not valid UTF-8 (byte 0x8b at offset 1)'),
}


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder without dl.config.sdn, user config or GPUBENCH_* / SIMPLE_DL_* variables."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for var in list(os.environ):
        if var.startswith(("GPUBENCH_", "SIMPLE_DL_")):
            monkeypatch.delenv(var)
    return work


@pytest.fixture
def results(isolated: Path) -> Path:
    """A results folder holding one earlier verification and one benchmark run, which must stay untouched."""
    root = isolated / "results"
    (root / "verify").mkdir(parents=True)
    (root / "benchmarks" / "machine").mkdir(parents=True)
    (root / "verify" / "earlier.json").write_text('{"schema": "gpubench.verify/1", "checks": []}\n', "utf-8")
    (root / "verify" / "earlier.xml").write_text("<testsuites/>\n", "utf-8")
    (root / "benchmarks" / "machine" / "0001_run.json").write_text('{"benchmarks": []}\n', "utf-8")
    return root


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under ``root`` with its modification time and content hash (folders: hash "dir")."""
    out = {}
    for path in sorted(root.rglob("*")):
        digest = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        out[str(path.relative_to(root))] = (path.stat().st_mtime_ns, digest)
    return out


def verify_in_process(
    config: Path | str, results: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = main(["verify", "--config", str(config), "--results-dir", str(results)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_positioned_message(err: str, where: str, line: int, column: int, start: str) -> None:
    """Exactly one error, at ``where:line:column``, starting with ``start``, with a fix; no traceback."""
    assert "Traceback" not in err
    assert err.count("error:") == 1, err
    assert err.startswith(f"error: {where}:{line}:{column}: {start}"), err
    assert "Fix: " in err or "\n  hint: " in err, err
    assert len(err.strip().splitlines()) <= 2, err  # the message, and the hint line when there is one


def test_every_bad_file_has_an_expected_outcome() -> None:
    on_disk = sorted(p.name for p in BAD.iterdir())
    assert on_disk == sorted(EXPECTED)
    assert len(on_disk) >= 40


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_config_exits_2_with_file_line_column_and_fix(
    name: str, results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(results)
    code, out, err = verify_in_process(BAD / name, results, capsys)
    assert code == 2
    assert out == ""
    line, column, start = EXPECTED[name]
    assert_one_positioned_message(err, str(BAD / name), line, column, start)
    assert snapshot(results) == before


def test_huge_file_is_refused_at_the_line_where_it_passes_the_limit(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = results.parent / "huge.sdn"
    row = "  key_00000: value_0000000000\n"  # 30 bytes a line: the 1 MiB limit falls at line 34954, column 10
    huge.write_text("extra:\n" + row * ((2 * MAX_CONFIG_BYTES) // len(row)), encoding="utf-8")
    full, rest = divmod(MAX_CONFIG_BYTES - len("extra:\n"), len(row))
    assert (full + 2, rest + 1) == (34954, 10)
    before = snapshot(results)
    code, out, err = verify_in_process(huge, results, capsys)
    assert code == 2 and out == ""
    assert_one_positioned_message(err, str(huge), full + 2, rest + 1, "the file is 2.0 MiB and passes the 1 MiB")
    assert snapshot(results) == before


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("folder", "{path!r} is a folder, not a configuration file. Fix: give the path of a dl.config.sdn"),
        ("fifo", "{path!r} is not a regular file (a device, pipe or socket). Fix: give the path of a dl.config.sdn"),
        ("missing", "configuration file {path!r} does not exist. Fix: give the path of a dl.config.sdn"),
    ],
)
def test_config_path_that_is_not_a_file(
    kind: str, message: str, results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = results.parent / f"{kind}.sdn"
    if kind == "folder":
        target.mkdir()
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("this platform has no named pipes")
        os.mkfifo(target)  # reading it would block forever: it must be refused before any read
    before = snapshot(results)
    code, out, err = verify_in_process(target, results, capsys)
    assert code == 2 and out == ""
    assert err.strip() == "error: --config: " + message.format(path=str(target))
    assert snapshot(results) == before


def test_bad_file_found_through_the_environment_and_the_working_folder(
    results: Path, isolated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated / "dl.config.sdn").write_bytes((BAD / "missing_blank_after_colon.sdn").read_bytes())
    before = snapshot(results)
    assert main(["verify", "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert_one_positioned_message(err, "dl.config.sdn", 2, 10, "missing blank after ':' in 'device:cpu'")

    monkeypatch.setenv("GPUBENCH_CONFIG", str(BAD / "utf16_bom.sdn"))
    assert main(["verify", "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert_one_positioned_message(err, str(BAD / "utf16_bom.sdn"), 1, 1, "file is UTF-16 text")
    assert snapshot(results) == before


def test_a_section_with_every_key_commented_out_is_not_an_error(isolated: Path) -> None:
    from gpubench.config import load_config

    path = isolated / "ok.sdn"
    path.write_text("dl:\n  device: cpu\ntraining:\n  # device: cuda:1\n", encoding="utf-8")
    config = load_config(path, env={}, user_files=False)
    assert config.dl.device == "cpu" and config.training.device is None and config.warnings == ()


# a sample through a real process: exit status, stderr and the absence of a traceback as a user sees them
SUBPROCESS_SAMPLE = [
    "tab_indent.sdn",
    "unterminated_array.sdn",
    "missing_blank_after_colon.sdn",
    "device_tpu.sdn",
    "dtype_float16.sdn",
    "interval_too_short.sdn",
    "empty.sdn",
    "binary_garbage.sdn",
    "utf16_bom.sdn",
    "latin1.sdn",
]


def test_bad_configs_in_a_real_process(results: Path, isolated: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBENCH_", "SIMPLE_DL_"))}
    before = snapshot(results)
    for name in SUBPROCESS_SAMPLE:
        proc = subprocess.run(
            [sys.executable, "-m", "gpubench", "verify", "--config", str(BAD / name), "--results-dir", "results"],
            cwd=isolated, env=env, capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 2, (name, proc.stderr)
        assert proc.stdout == ""
        line, column, start = EXPECTED[name]
        assert_one_positioned_message(proc.stderr, str(BAD / name), line, column, start)
    # `gpubench config check` is the same reader: the same message, the same exit code
    proc = subprocess.run(
        [sys.executable, "-m", "gpubench", "config", "check", str(BAD / "gzip_garbage.sdn")],
        cwd=isolated, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert_one_positioned_message(proc.stderr, str(BAD / "gzip_garbage.sdn"), 1, 2, "file is not valid UTF-8")
    assert snapshot(results) == before
