"""The command-line face of distributed runs: the ``--dist-*`` options (:func:`add_arguments`, declared in
:mod:`gpubench.distributed.options`), :func:`run` (what ``gpubench verify|bench`` calls under torchrun) and
:func:`main` (``python -m gpubench.distributed``).

``gpubench verify``'s own output options hold under torchrun too, on rank 0, for the merged run
(:func:`verify_outputs`, with :mod:`gpubench.verify`'s functions): ``--require-gpu`` adds a FAIL row for each
rank whose device is not a verified GPU (saved, and rank 0 exits 1), ``--json`` prints the merged
``results/verify/<run>.json`` on stdout and nothing else (every rank's other output goes to stderr), and
``--junitxml PATH`` writes the merged JUnit XML there as well.

Imports: :mod:`gpubench.config`, :mod:`gpubench.devices`, :mod:`gpubench.verify` (its options, for
:func:`main`) and torch inside functions, and the distributed modules below it; never :mod:`gpubench.cli`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gpubench.distributed.launch import (
    EXIT_FAILED,
    EXIT_USAGE,
    DistributedError,
    RankState,
    choose_device,
    detect_launch,
    first_line,
    install_signal_handler,
)
from gpubench.distributed.options import add_arguments, options_from_args
from gpubench.distributed.rank import run_rank

__all__ = ["VERBS", "add_arguments", "main", "run"]

VERBS = ("verify", "bench")


def run(verb: str, args: argparse.Namespace) -> int:
    """``gpubench verify|bench`` as one rank of a torchrun job; the exit code (the same on every rank)."""
    if verb not in VERBS:
        print(
            f"error: gpubench {verb} does not run distributed; use one of {', '.join(VERBS)}", file=sys.stderr
        )
        return EXIT_USAGE
    try:
        launch = detect_launch()
    except DistributedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from gpubench.config import ConfigError
    from gpubench.config.options import config_from_args

    quiet = bool(getattr(args, "quiet", False))
    try:
        config = config_from_args(
            args if launch.rank == 0 else argparse.Namespace(**{**vars(args), "quiet": True})
        )
        opts = options_from_args(args)
    except (ConfigError, ValueError) as exc:
        print(f"error: rank {launch.rank} on {launch.host}: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from gpubench.devices import probe_cuda

    probe = probe_cuda()
    device, device_problem = choose_device(launch, config, opts, probe)
    if device.startswith("cuda") and device_problem is None:
        import torch

        torch.cuda.set_device(launch.local_rank)  # before any other CUDA work and before NCCL
    state = RankState(launch, verb, opts, device, backend="nccl" if device.startswith("cuda") else "gloo")
    install_signal_handler(state)
    as_json = verb == "verify" and bool(getattr(args, "json", False))
    stdout = sys.stdout
    try:
        # --json: stdout holds the document alone; whatever any rank prints goes to stderr
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            code = run_rank(state, config, args, probe, device_problem, quiet)
            if verb != "verify" or launch.rank != 0 or not state.hellos:
                return code
            run_id = str(state.hellos[0].get("run_id"))
            return verify_outputs(Path(config.results.dir), run_id, args, code, stdout if as_json else None)
    except DistributedError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except Exception as exc:  # a peer lost inside a gather or collective (gloo: connection closed, timeout)
        print(
            f"error: {state.me} stopped during {state.phase}: {type(exc).__name__}: {first_line(exc)}. "
            "Another rank probably failed or died: its own output (and torchrun's summary) names it",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_FAILED


def require_gpu_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``--require-gpu`` on the merged run: :func:`gpubench.verify.command.require_gpu` on each rank's part
    (a cpu device, or a GPU no GPU check ran on, is a FAIL row), as check rows with ``host`` and ``rank``."""
    from gpubench.distributed.files import rank_report
    from gpubench.verify.command import REQUIRE_GPU, require_gpu

    ranks = sorted({d.get("rank") for d in doc.get("devices", [])}, key=lambda r: (r is None, r))
    hosts = {d.get("rank"): d.get("host") for d in doc.get("devices", [])}
    rows: list[dict[str, Any]] = []
    for rank in ranks or [None]:
        report = require_gpu(rank_report(doc, rank))
        rows += [{**r.as_dict(), "host": hosts.get(rank), "rank": rank}
                 for r in report.results if r.check == REQUIRE_GPU]
    return rows


def verify_outputs(results_dir: Path, run_id: str, args: argparse.Namespace, code: int,
                   json_stream: Any) -> int:
    """Rank 0, after a distributed verify wrote ``<results_dir>/verify/<run_id>.json``: ``--require-gpu``,
    ``--junitxml`` and ``--json`` for the merged run; the exit code (``code``, or 1 for a require-gpu FAIL,
    2 when the JUnit file cannot be written)."""
    import json

    from gpubench.distributed.files import _junit, rank_report
    from gpubench.results import atomic_write_json, atomic_write_text, safe_child
    from gpubench.verify.output import JUnitPathError, write_junit

    path = safe_child(results_dir, "verify", f"{run_id}.json")
    if not path.is_file():  # the run stopped before its checks (a usage problem, said already)
        return code
    doc = json.loads(path.read_text(encoding="utf-8"))
    if getattr(args, "require_gpu", False) and (rows := require_gpu_rows(doc)):
        doc["checks"] = [*doc.get("checks", []), *rows]
        counts = {k: sum(1 for c in doc["checks"] if c.get("verdict") == k) for k in ("PASS", "WARN", "FAIL", "SKIP")}
        doc["summary"] = ", ".join(f"{n} {k}" for k, n in counts.items())
        code = doc["exit_code"] = max(int(doc.get("exit_code") or 0), 1)
        atomic_write_json(path, doc)
        atomic_write_text(path.with_suffix(".xml"), _junit(doc))
        merged = safe_child(results_dir, "distributed", f"{run_id}.json")
        if merged.is_file():  # the merged run's record says the exit code rank 0 gives, as the verify one does
            run = json.loads(merged.read_text(encoding="utf-8"))
            run["exit_code"] = max(int(run.get("exit_code") or 0), code)
            atomic_write_json(merged, run)
        for row in rows:
            print(f"FAIL require_gpu rank {row['rank']} on {row['host']}: {row['message']}", file=sys.stderr)
    if getattr(args, "junitxml", None):
        try:
            write_junit(rank_report(doc, None, label=True), Path(args.junitxml))
        except JUnitPathError as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = max(code, EXIT_USAGE)
    if json_stream is not None:
        json_stream.write(path.read_text(encoding="utf-8"))
        json_stream.flush()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gpubench.distributed bench|verify [options]`` (the CLI's verbs dispatch to :func:`run`)."""
    from gpubench.config.options import add_common_options

    parser = argparse.ArgumentParser(prog="python -m gpubench.distributed")
    parser.add_argument("verb", choices=VERBS)
    add_common_options(parser)
    add_arguments(parser)
    try:
        from gpubench import verify

        verify.add_arguments(parser)
    except ImportError:
        pass
    args = parser.parse_args(argv)
    return run(args.verb, args)
