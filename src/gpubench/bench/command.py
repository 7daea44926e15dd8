"""``gpubench bench``: the pytest-benchmark suite in ``bench/``, or a full MNIST training run.

``gpubench bench`` runs the same cases as ``pytest bench`` and ``nox -s bench`` (in this process, with
``pytest.main``), on the configured devices, saving under ``<results.dir>/benchmarks``. Nothing is
installed: on an air-gapped GPU node a checkout and its environment are enough.

``gpubench bench mnist --epochs 10`` trains the MNIST MLP on the whole training set, prints train and
validation accuracy, loss and images/s per epoch, and judges the last epoch against the dataset's
targets (exit 1 when real data misses them; synthetic data is never judged).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gpubench.config.options import config_from_args
from gpubench.devices import parse_device, probe_cuda, resolve
from gpubench.results import atomic_write_json, device_identity, environment, new_run_id, safe_child
from gpubench.workloads import cases, mnist

# --full: the whole MNIST training set per round and more rounds; applied unless --set gives the key.
FULL_SETTINGS = {"bench.mnist_limit": "0", "bench.mnist_rounds": "3", "bench.rounds": "15", "bench.xor_rounds": "3"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", nargs="?", choices=("suite", "mnist"), default="suite",
                        help="suite: the benchmark cases in bench/ (default); mnist: a full MNIST training run")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="full", action="store_false",
                      help="the configured (quick) settings: a few minutes on a CPU (default)")
    size.add_argument("--full", dest="full", action="store_true",
                      help="whole-epoch MNIST rounds and more rounds per case")
    parser.set_defaults(full=False)
    parser.add_argument("--compare", nargs="?", const=True, default=None, metavar="RUN",
                        help="compare with the previous saved run (or the run id/number RUN)")
    parser.add_argument("--compare-fail", action="append", default=[], metavar="EXPR",
                        help="fail on a regression, e.g. median:5%% (pytest-benchmark's --benchmark-compare-fail)")
    parser.add_argument("--disable", action="store_true",
                        help="run every case once without timing (a smoke test; nothing is saved)")
    parser.add_argument("-k", dest="keyword", default=None, metavar="EXPR", help="only cases matching EXPR")
    parser.add_argument("--bench-dir", default=None, metavar="DIR",
                        help="the benchmark cases (default: ./bench, else the checkout's bench/)")
    parser.add_argument("--epochs", type=int, default=None, help="mnist: epochs (default: training.epochs)")
    parser.add_argument("--pipeline", default="resident", help="mnist: input pipeline (default: resident)")
    parser.add_argument("--limit", type=int, default=0, help="mnist: train images per epoch (0: all)")
    parser.add_argument("--pytest-args", default="", metavar="ARGS",
                        help="more pytest options, one string, e.g. --pytest-args='-x --benchmark-histogram'")


def find_bench_dir(explicit: str | None = None, cwd: Path | None = None) -> Path:
    """``--bench-dir``, else ``./bench``, else ``bench/`` of the checkout this package runs from."""
    candidates = [Path(explicit)] if explicit else [(cwd or Path.cwd()) / "bench",
                                                    Path(__file__).resolve().parents[2] / "bench"]
    for candidate in candidates:
        if (candidate / "conftest.py").is_file():
            return candidate.resolve()
    msg = (f"no benchmark cases found (looked in {', '.join(str(c) for c in candidates)}). "
           "Fix: run from the gpubench checkout or pass --bench-dir DIR")
    raise FileNotFoundError(msg)


def settings_env(config: Any, full: bool) -> dict[str, str]:
    """Environment variables that carry command-line settings into the pytest run (read by the plugin)."""
    env: dict[str, str] = {}
    command_line = {key for key, where in config.sources.items() if where.startswith("command line")}
    overrides = dict(FULL_SETTINGS) if full else {}
    for key in command_line:
        section, _, name = key.partition(".")
        value = getattr(getattr(config, section), name)
        if isinstance(value, tuple):
            value = "[" + ", ".join(str(v) for v in value) + "]"
        elif isinstance(value, bool):
            value = "true" if value else "false"
        overrides[key] = str(value)
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        env[f"GPUBENCH_{section.upper()}_{name.upper()}"] = value
    return env


def pytest_args(args: argparse.Namespace, config: Any, bench_dir: Path) -> list[str]:
    """The pytest command line for the suite."""
    out = [str(bench_dir), "-p", "no:cacheprovider", "--gpubench-devices", ",".join(config.bench_devices()),
           # pytest runs inside this process, where gpubench is imported already: its plugin module cannot
           # be assertion-rewritten, which pytest reports as a (here harmless) warning.
           "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if getattr(args, "config", None):
        out += ["--gpubench-config", str(args.config)]
    if args.compare is True:
        out.append("--benchmark-compare")
    elif args.compare:
        out.append(f"--benchmark-compare={args.compare}")
    out += [f"--benchmark-compare-fail={expr}" for expr in args.compare_fail]
    if args.disable:
        out.append("--benchmark-disable")
    if args.keyword:
        out += ["-k", args.keyword]
    if getattr(args, "quiet", False):
        out.append("-q")
    return out + shlex.split(args.pytest_args or "")


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def exit_code(pytest_code: int) -> int:
    """pytest's exit code as gpubench's: 0 ok, 1 a case failed, 2 usage/collection/internal problems."""
    return {0: 0, 1: 1}.get(int(pytest_code), 2)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if args.what == "mnist":
        return run_mnist(args, config)
    try:
        bench_dir = find_bench_dir(args.bench_dir)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    argv = pytest_args(args, config, bench_dir)
    if not getattr(args, "quiet", False):
        print(f"gpubench bench: pytest {' '.join(argv)}", file=sys.stderr)
    with patched_environ(settings_env(config, args.full)):
        return exit_code(int(pytest.main(argv)))


def run_mnist(args: argparse.Namespace, config: Any) -> int:
    """A full MNIST training run on the training device; exit 1 when real data misses the targets."""
    settings = config.training_settings()
    epochs = args.epochs if args.epochs is not None else config.training.epochs
    if epochs < 1:
        print("error: --epochs must be at least 1", file=sys.stderr)
        return 2
    probe = probe_cuda()
    resolved = resolve(parse_device(settings.device), probe, config.bench.fallback)
    if resolved.device is None:
        print(f"error: {resolved.requested.name}: {resolved.unusable}", file=sys.stderr)
        return 1
    device = resolved.device.name
    if resolved.unusable is not None:
        print(f"FALLBACK: {resolved.note}", file=sys.stderr)
    reason = mnist.pipeline_skip_reason(args.pipeline, device)
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    data = cases.mnist_data_for(config.data)
    if args.limit:
        data = _limited(data, args.limit)
    print(f"MNIST data source: {data.source.describe()}")
    print(f"device {device}, pipeline {args.pipeline}, {epochs} epochs, batch {settings.batch_size}")
    print(f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {'val loss':>9} {'val acc':>8} {'images/s':>10}")

    def report(row: dict[str, float]) -> None:
        print(f"{row['epoch']:>5} {row['train_loss']:>10.4f} {row['train_accuracy']:>9.2%} "
              f"{row['val_loss']:>9.4f} {row['val_accuracy']:>8.2%} {row['images_per_s']:>10.0f}", flush=True)

    outcome = mnist.train_full(data, device, epochs, pipeline=args.pipeline, batch_size=settings.batch_size,
                               seed=settings.seed, report=report)
    if args.limit and outcome.targets is not None:
        outcome = dataclasses.replace(outcome, verdict=f"SKIP (--limit {args.limit}: not the whole training set)",
                                      failures=())
    if outcome.targets is not None:
        t = outcome.targets
        print(f"targets ({data.source.kind}: {t.origin}): train > {t.train_accuracy:.1%}, "
              f"validation > {t.val_accuracy:.1%}, loss < {t.loss}")
    last = outcome.epochs[-1]
    print(f"final: train accuracy {last['train_accuracy_eval']:.2%} (eval mode, whole training set; running "
          f"{last['train_accuracy']:.2%}), validation {last['val_accuracy']:.2%}, loss {last['train_loss']:.4f}")
    print(f"verdict: {outcome.verdict}")
    for failure in outcome.failures:
        print(f"  {failure}")
    run_id = new_run_id()
    record = {
        "schema": "gpubench.training/1", "run_id": run_id, "workload": "mnist", "pipeline": args.pipeline,
        "device": device_identity(device, probe), "requested_device": resolved.requested.name,
        "fallback_note": resolved.note if resolved.unusable is not None else "",
        "environment": environment(probe), "config": config.as_dict(), "data_source": outcome.source,
        "epochs": outcome.epochs, "verdict": outcome.verdict, "failures": list(outcome.failures),
    }
    path = atomic_write_json(safe_child(Path(config.results.dir), "training", f"{run_id}-mnist.json"), record)
    print(f"saved {path}")
    return 1 if outcome.verdict == "FAIL" else 0


def _limited(data: Any, limit: int) -> Any:
    source = dataclasses.replace(data.source, train=min(limit, data.source.train))
    return dataclasses.replace(data, train_images=data.train_images[:limit], train_labels=data.train_labels[:limit],
                               source=source, torchvision_train=None)
