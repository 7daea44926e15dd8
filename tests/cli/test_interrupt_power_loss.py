"""Power loss (SIGKILL) at the save points leaves nothing that a later run chokes on (issue 15).

SIGKILL cannot be caught: whatever a run had written when it came is what stays. Each run below is killed
that way at a named kill point (``GPUBENCH_KILL_AT=<point>:SIGKILL``, :mod:`gpubench.killpoints`) inside
its save: a verification between its JSON and its JUnit file, a benchmark run as it saves, an MNIST run
with its second checkpoint written but not yet renamed into place, a report as it writes. Every result is
written to a temporary file and renamed, so what stays is whole files and, at worst, a temporary file beside
them. Then ``gpubench report`` and ``pytest --benchmark-compare`` read the same folder: exit 0, no traceback,
and a damaged file that some other writer left (a truncated JSON, planted here) is named and skipped. The
MNIST run resumes from the checkpoint that survived.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from gpubench import killpoints

CASES = """
def test_sum(benchmark, device):
    benchmark.pedantic(sum, args=(range(10),), rounds=2, iterations=1)
"""


def _run(cwd: Path, *argv: str, kill_at: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPUBENCH_", "SIMPLE_DL_", "PYTEST_"))}
    env.update({"HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd / "xdg")})
    if kill_at:
        env[killpoints.ENV] = f"{kill_at}:SIGKILL"
    return subprocess.run([sys.executable, "-m", *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def _killed(proc: subprocess.CompletedProcess[str], where: str) -> None:
    assert proc.returncode == -signal.SIGKILL, (where, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])


def _clean(proc: subprocess.CompletedProcess[str], where: str) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, (where, proc.returncode, output[-3000:])
    assert "Traceback" not in output, (where, output[-3000:])
    return output


def test_sigkill_at_every_save_then_report_and_compare_read_the_folder(tmp_path: Path) -> None:
    (tmp_path / "dl.config.sdn").write_text("dl:\n  device: cpu\nresults:\n  dir: results\n", encoding="utf-8")
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "test_power_cases.py").write_text(CASES, encoding="utf-8")
    (tmp_path / "cases" / "conftest.py").write_text("", encoding="utf-8")
    results = tmp_path / "results"
    store = f"--benchmark-storage={results / 'benchmarks'}"
    bench = ("pytest", "cases", "-p", "no:cacheprovider", "-q", store)

    # a verification killed between its two files: the JSON is whole, the JUnit file never came
    verify = ("gpubench", "verify", "--device", "cpu", "-q", "--set", "verify.memtest_seconds=0.3")
    _killed(_run(tmp_path, *verify, kill_at="verify.write.junit"), "verify")
    [verify_json] = (results / "verify").glob("*.json")
    assert json.loads(verify_json.read_text("utf-8"))["checks"]
    assert not list((results / "verify").glob("*.xml"))
    # one killed while checking: nothing at all
    _killed(_run(tmp_path, *verify, kill_at="verify.check.end@2"), "checks")
    assert len(list((results / "verify").iterdir())) == 1

    # benchmarks: one whole run saved, then one killed as it saves
    _clean(_run(tmp_path, *bench, "--benchmark-autosave"), "first benchmark run")
    _killed(_run(tmp_path, *bench, "--benchmark-autosave", kill_at="bench.save"), "bench save")
    _killed(_run(tmp_path, "gpubench", "bench", "--bench-dir", "cases", "-q", store, "--benchmark-autosave",
                 kill_at="bench.save"), "gpubench bench save")
    saved = list((results / "benchmarks").rglob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text("utf-8"))["benchmarks"], saved

    # MNIST: killed with its second checkpoint written to a temporary file; the first one stays whole
    ckpt = results / "checkpoints" / "run.ckpt"
    mnist = ("gpubench", "bench", "mnist", "--device", "cpu", "--limit", "128", "--checkpoint-every", "1",
             "--checkpoint", str(ckpt), "--set", "data.source=synthetic", "-q")
    _killed(_run(tmp_path, *mnist, "--epochs", "2", kill_at="bench.mnist.checkpoint.save@2"), "checkpoint")
    leftovers = [p.name for p in ckpt.parent.iterdir() if p != ckpt]
    assert len(leftovers) <= 1 and all(n.endswith(".tmp") for n in leftovers), leftovers  # SIGKILL: no clean-up

    # a report killed as it writes, over a previous report
    out = tmp_path / "out"
    _killed(_run(tmp_path, "gpubench", "report", "--output", str(out), "--no-plots", "-q", kill_at="report.write"),
            "report")

    # a damaged file from another writer (not gpubench's: its writes are atomic)
    truncated = results / "verify" / "20260101T000000Z-elsewhere-1.json"
    truncated.write_text(verify_json.read_text("utf-8")[:200], encoding="utf-8")

    # what comes next reads all of it
    output = _clean(_run(tmp_path, "gpubench", "report", "--output", str(out), "--no-plots"), "report after")
    skipped = [line for line in output.splitlines() if line.startswith("warning: skipped ")]
    assert len(skipped) == 1 and truncated.name in skipped[0], output[-3000:]  # named, and skipped
    assert (out / "report.md").is_file()
    _clean(_run(tmp_path, *bench, "--benchmark-compare"), "benchmark compare after")
    resumed = _clean(_run(tmp_path, *mnist, "--epochs", "2", "--resume", str(ckpt)), "resume after")
    assert "resumed from" in resumed and "after epoch 1" in resumed, resumed[-3000:]
