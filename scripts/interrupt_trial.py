"""Interrupt ``gpubench bench`` by hand at timed moments and count what it kept (issue 15's done-means).

"Interrupting ``gpubench bench`` by hand at 20 timed moments gives 130 every time and keeps every completed
case." This script does that by the clock, as a person at a terminal would: it starts
``python -m gpubench bench --device cpu`` (quick settings, a few fast cases) into a fresh ``--results-dir``,
waits a chosen time, and sends the signal to the run's process group, as a terminal's Ctrl-C does (SIGINT;
every fourth trial SIGTERM, as a scheduler would, which must give 143). The moments are spread evenly over
the first 85% of the length of an uninterrupted run, measured first. One line per trial (signal, moment,
exit code, the cases that had completed and how many of them the saved run kept, a traceback or not), then
a summary.

A case counts as completed when pytest printed its PASSED line (``-v``) before the run stopped; it counts as
kept when the saved run under ``<results-dir>/benchmarks/`` has it with its statistics. The trial passes
when the exit code is 128 + the signal, nothing printed a traceback and every completed case was kept.

This prints figures; it is not a test (the deterministic ones are tests/cli/test_interrupt_sweep.py).
Usage: ``python scripts/interrupt_trial.py [--trials 20] [-k EXPR] [--keep DIR] [--cwd results|checkout]``. Exit 0 when every trial
passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_K = "test_xor or test_elementwise or test_creation"
PASSED = re.compile(r"^\S*?(test_\w+)(\[[^\]]*\])?\s+PASSED", re.MULTILINE)


def command(results: Path, k: str) -> list[str]:
    return [sys.executable, "-m", "gpubench", "bench", "--device", "cpu", "--quick", "--results-dir", str(results),
            "--bench-dir", str(ROOT / "bench"), "-k", k, "--pytest-args=-v -p no:cacheprovider"]


def environment() -> dict[str, str]:
    env = {key: v for key, v in os.environ.items() if not key.startswith(("GPUBENCH_", "PYTEST_"))}
    env["COLUMNS"] = "200"
    return env


def saved_cases(results: Path) -> dict[str, int]:
    """Every case in the saved runs: its full name and its number of rounds."""
    cases: dict[str, int] = {}
    for path in sorted((results / "benchmarks").rglob("*.json")) if (results / "benchmarks").is_dir() else []:
        doc = json.loads(path.read_text("utf-8"))  # a half-written file would raise here: that is a finding
        for bench in doc.get("benchmarks", []):
            cases[str(bench["name"])] = int(bench["stats"]["rounds"])
    return cases


@dataclass
class Trial:
    """One run: its exit code, how long it ran, whether the signal was sent, what completed and was kept."""

    code: int
    seconds: float
    sent: bool
    completed: set[str]
    kept: set[str]
    saved: dict[str, int]
    traceback: bool
    damaged: str
    results: Path


def run_once(workdir: Path, k: str, after_s: float | None, signum: int, cwd: Path) -> Trial:
    """One run into a fresh results folder under ``workdir``, started in ``cwd``; signalled ``after_s`` seconds
    after its start (None: never)."""
    results = Path(tempfile.mkdtemp(prefix="results-", dir=workdir))
    out_path, err_path = results.with_suffix(".out"), results.with_suffix(".err")
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.monotonic()
        proc = subprocess.Popen(command(results, k), cwd=cwd, env=environment(), stdout=out, stderr=err,
                                start_new_session=True)
        sent = False
        if after_s is not None:
            try:
                proc.wait(timeout=after_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signum)  # the whole foreground group, as a terminal's Ctrl-C
                sent = True
        code = proc.wait(timeout=600)
        seconds = time.monotonic() - started
    text = out_path.read_text("utf-8", "replace") + err_path.read_text("utf-8", "replace")
    completed = {m.group(1) + (m.group(2) or "") for m in PASSED.finditer(text)}
    try:
        saved, damaged = saved_cases(results), ""
    except (ValueError, KeyError) as exc:
        saved, damaged = {}, f"{type(exc).__name__}: {exc}"
    kept = {name for name in completed if saved.get(name, 0) >= 1}
    return Trial(code, seconds, sent, completed, kept, saved, "Traceback" in text, damaged, results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("-k", default=DEFAULT_K, help=f"the cases to run (default: {DEFAULT_K})")
    parser.add_argument("--keep", metavar="DIR", help="keep every run's folder and output under DIR")
    parser.add_argument("--cwd", choices=("results", "checkout"), default="results",
                        help="where the runs start: results (default), in the folder that holds the results "
                        "folders, as when a user runs it in a project; checkout, in this checkout, the results "
                        "folders being elsewhere")
    args = parser.parse_args(argv)
    workdir = (Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="interrupt-trial-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    cwd = workdir if args.cwd == "results" else ROOT
    try:
        whole = run_once(workdir, args.k, None, signal.SIGINT, cwd)
        print(f"uninterrupted run: exit {whole.code}, {whole.seconds:.1f} s, {len(whole.saved)} cases saved "
              f"({', '.join(sorted(whole.saved))})", flush=True)
        if whole.code != 0:
            print(f"the uninterrupted run failed; see {whole.results}", file=sys.stderr)
            return 1
        rows: list[tuple[signal.Signals, bool, Trial]] = []
        for i in range(args.trials):
            signum = signal.SIGTERM if i % 4 == 3 else signal.SIGINT
            # spread from the start to near the end of a run (a shared machine's next runs may be faster)
            at = round(0.85 * whole.seconds * (i + 0.5) / args.trials, 2)
            r = run_once(workdir, args.k, at, signum, cwd)
            want = 128 + signum if r.sent else 0  # 0: it finished before the moment came
            ok = r.code == want and not r.traceback and r.kept == r.completed and not r.damaged
            rows.append((signum, ok, r))
            print(f"trial {i + 1:2d}  {signum.name:7s} at {at:6.2f} s  exit {r.code:3d} (want {want:3d})  "
                  f"completed {len(r.completed):2d}, kept {len(r.kept):2d}/{len(r.completed):<2d}  "
                  f"saved {len(r.saved):2d}  traceback {'yes' if r.traceback else 'no '}  {'ok' if ok else 'FAILED'}"
                  + ("" if r.sent else "  (finished before the signal)")
                  + (f"  damaged: {r.damaged}" if r.damaged else ""), flush=True)
        sent = [r for _, _, r in rows if r.sent]
        codes = {name: sorted({r.code for s, _, r in rows if r.sent and s.name == name}) for name in ("SIGINT", "SIGTERM")}
        failed = [i + 1 for i, (_, ok, _) in enumerate(rows) if not ok]
        print(f"summary: {len(rows)} trials, {len(sent)} interrupted; SIGINT exit codes {codes['SIGINT']}, "
              f"SIGTERM exit codes {codes['SIGTERM']}; completed cases kept {sum(len(r.kept) for r in sent)}/"
              f"{sum(len(r.completed) for r in sent)}; tracebacks {sum(1 for _, _, r in rows if r.traceback)}; "
              f"{'all passed' if not failed else 'FAILED: trials ' + ', '.join(map(str, failed))}")
        return 0 if not failed else 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
