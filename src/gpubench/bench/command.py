"""``gpubench bench``: the pytest-benchmark suite in ``bench/``, or a full MNIST training run.

``gpubench bench`` runs the same cases as ``pytest bench`` and ``nox -s bench`` (in this process, with
``pytest.main``), on the configured devices, saving under ``<results.dir>/benchmarks``. Nothing is
installed: on an air-gapped GPU node a checkout and its environment are enough. pytest-benchmark's own
``--benchmark-*`` options are accepted as pytest-benchmark spells them, anything after ``--`` goes to pytest
unchanged, and the command run is echoed shell-quoted, ready to paste.

``gpubench bench mnist --epochs 10`` trains the MNIST MLP on the whole training set, prints train and
validation accuracy, loss and images/s per epoch, and judges the last epoch against the dataset's
targets (exit 1 when real data misses them; synthetic data is never judged).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from gpubench.config.options import config_from_args
from gpubench.devices import parse_device, probe_cuda, resolve
from gpubench.results import atomic_write_json, device_identity, environment, new_run_id, safe_child
from gpubench.workloads import cases, checkpoint, mnist

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
    parser.set_defaults(full=False, benchmark_argv=None, pytest_extra=())
    parser.add_argument("-k", dest="keyword", default=None, metavar="EXPR", help="only cases matching EXPR")
    parser.add_argument("--bench-dir", default=None, metavar="DIR",
                        help="the benchmark cases (default: ./bench, else the checkout's bench/)")
    parser.add_argument("--epochs", type=int, default=None, help="mnist: epochs (default: training.epochs)")
    parser.add_argument("--pipeline", default="resident", help="mnist: input pipeline (default: resident)")
    parser.add_argument("--limit", type=int, default=0, help="mnist: train images per epoch (0: all)")
    parser.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                        help="mnist: save model, optimizer, RNG and data-order state every N epochs (0: never)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="mnist: the checkpoint file (default: the --resume file, else "
                             "<results.dir>/checkpoints/<run id>-mnist.ckpt)")
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="mnist: continue the run saved in this checkpoint up to --epochs in all")
    parser.add_argument("--pytest-args", default="", metavar="ARGS",
                        help="more pytest options as one string (older form of `-- ARGS...`)")
    old = parser.add_argument_group("deprecated spellings (still work; use pytest-benchmark's own options)")
    old.add_argument("--compare", nargs="?", const=True, default=None, metavar="RUN", action=_PassThrough,
                     pytest_option="--benchmark-compare", help="use --benchmark-compare[=RUN]")
    old.add_argument("--compare-fail", nargs=1, default=[], metavar="EXPR", action=_PassThrough,
                     pytest_option="--benchmark-compare-fail", help="use --benchmark-compare-fail=EXPR")
    old.add_argument("--disable", nargs=0, default=False, action=_PassThrough,
                     pytest_option="--benchmark-disable", help="use --benchmark-disable")
    _add_benchmark_options(parser.add_argument_group(
        "pytest-benchmark options, passed to pytest as given (`pytest --help` describes them); "
        "after `--`, any pytest argument"))
    _split_at_double_dash(parser)


# --- pytest-benchmark's options, as pytest-benchmark spells them ---------------------------------------


class _PassThrough(argparse.Action):
    """Records an option in ``benchmark_argv`` as ``(pytest option, values)``, in command-line order.

    The deprecated spellings (``--compare``...) also keep their old attribute, for code that reads it."""

    def __init__(self, option_strings: Sequence[str], dest: str, pytest_option: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.pytest_option = pytest_option or option_strings[0]

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if self.nargs == 0:
            values = None
        elif self.nargs == 1:
            values = values[0]
        recorded = [*(getattr(namespace, "benchmark_argv", None) or []), (self.pytest_option, values)]
        namespace.benchmark_argv = recorded
        if self.dest != "benchmark_argv":  # a deprecated spelling: its old attribute as before
            old = getattr(namespace, self.dest, None)
            new = True if values is None else values
            setattr(namespace, self.dest, [*old, new] if isinstance(old, list) else new)


@dataclasses.dataclass(frozen=True)
class BenchmarkOption:
    """One of pytest-benchmark's command-line options, as its ``pytest_addoption`` declares it."""

    name: str  # --benchmark-storage
    nargs: int | str | None  # 0 a flag, None one value, "?" an optional value, "+" one or more
    default: Any = None
    help: str = ""
    metavar: str | None = None


class _OptionTable:
    """Stands in for pytest's parser so that pytest-benchmark's ``pytest_addoption`` lists its options."""

    def __init__(self) -> None:
        self.options: list[BenchmarkOption] = []

    def getgroup(self, *args: Any, **kwargs: Any) -> _OptionTable:
        return self

    def addini(self, *args: Any, **kwargs: Any) -> None:
        pass

    def addoption(self, *names: str, **kw: Any) -> None:
        flag = kw.get("action") in ("store_true", "store_false", "store_const", "count", "append_const")
        for name in names:
            if name.startswith("--benchmark-"):
                self.options.append(BenchmarkOption(name, 0 if flag else kw.get("nargs"), kw.get("default"),
                                                    str(kw.get("help", "")), kw.get("metavar")))


@functools.lru_cache(maxsize=1)
def benchmark_options() -> tuple[BenchmarkOption, ...]:
    """pytest-benchmark's ``--benchmark-*`` options, read from its own ``pytest_addoption`` (so a new
    pytest-benchmark's options work without a gpubench release). Empty when that hook cannot be read
    that way: the options still reach pytest after ``--``."""
    table = _OptionTable()
    try:
        from pytest_benchmark import plugin

        plugin.pytest_addoption(table)  # type: ignore[no-untyped-call]
    except Exception:  # a pytest-benchmark whose hook wants more of pytest's parser than this stand-in
        return ()
    return tuple(table.options)


def _add_benchmark_options(group: Any) -> None:
    for option in benchmark_options():
        shown = repr(option.default).replace("%", "%%")
        text = option.help.replace("%(default)r", shown).replace("%(default)s", shown)
        nargs = 1 if option.nargs is None else option.nargs
        try:
            group.add_argument(option.name, nargs=nargs, action=_PassThrough, dest="benchmark_argv",
                               default=None, metavar=option.metavar or "VALUE", help=text)
        except argparse.ArgumentError:  # a name gpubench already uses: its own option wins
            continue


def benchmark_argv(recorded: Sequence[tuple[str, Any]], cwd: Path | None = None) -> list[str]:
    """The recorded pytest-benchmark options as pytest arguments, in their order.

    An option taking several values (``--benchmark-compare-fail``) is given once with all of them: pytest
    keeps only its last occurrence. An explicit ``--benchmark-storage`` equal to pytest-benchmark's
    default is made absolute, since bench/conftest.py cannot tell that spelling from no option at all."""
    table = {o.name: o for o in benchmark_options()}
    several: dict[str, list[str]] = {}
    for name, values in recorded:
        if isinstance(values, list) or getattr(table.get(name), "nargs", None) == "+":  # e.g. compare-fail
            several.setdefault(name, []).extend(map(str, values if isinstance(values, list) else [values]))
    out: list[str] = []
    for name, values in recorded:
        if name in several:  # all its values at its first place, nothing at the later ones
            if merged := several[name]:
                out += [f"{name}={merged[0]}"] if len(merged) == 1 else [name, *merged]
                several[name] = []
            continue
        if name == "--benchmark-storage" and name in table and values == table[name].default:
            values = _absolute_storage(str(values), cwd or Path.cwd())
        out.append(name if values is None or values is True else f"{name}={values}")
    return out


def _absolute_storage(uri: str, cwd: Path) -> str:
    """``file://./.benchmarks`` as ``file://<cwd>/.benchmarks``: the same folder, for the same cwd."""
    path = Path(uri[len("file://"):] if uri.startswith("file://") else uri)
    return uri if path.is_absolute() else f"file://{cwd / path}"


def deprecation_notes(args: argparse.Namespace) -> list[str]:
    """A note per deprecated spelling used (they still work)."""
    used = [(old, new) for old, new, value in (
        ("--compare", "--benchmark-compare[=RUN]", getattr(args, "compare", None)),
        ("--compare-fail", "--benchmark-compare-fail=EXPR", getattr(args, "compare_fail", None)),
        ("--disable", "--benchmark-disable", getattr(args, "disable", False)),
    ) if value]
    return [f"note: `gpubench bench {old}` is deprecated; use pytest-benchmark's own {new}" for old, new in used]


def _split_at_double_dash(parser: argparse.ArgumentParser) -> None:
    """Everything after the first ``--`` becomes ``pytest_extra``, untouched by gpubench's parser.

    argparse cannot do this alone: a ``--`` makes the words after it positional, so ``-- -x`` would be
    read as the ``what`` argument. The CLI's parser hands this subparser its words through the public
    ``parse_known_args``, which is wrapped here."""
    parse_known_args = parser.parse_known_args

    def split(args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        words = list(sys.argv[1:] if args is None else args)
        extra: list[str] = []
        if "--" in words:
            cut = words.index("--")
            words, extra = words[:cut], words[cut + 1:]
        parsed, rest = parse_known_args(words, namespace)
        parsed.pytest_extra = extra
        return parsed, rest

    parser.parse_known_args = split  # type: ignore[method-assign,assignment]


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
    """The pytest command line for the suite: the cases, gpubench's plugin options, the pytest-benchmark
    options given (right after the cases, so an option taking several values never swallows a later
    path), ``-k``, ``-q``, ``--pytest-args`` and the words after ``--``."""
    out = [str(bench_dir), *benchmark_argv(getattr(args, "benchmark_argv", None) or []),
           "-p", "no:cacheprovider", "--gpubench-devices", ",".join(config.bench_devices()),
           # the suite's own order: the resident MNIST case reads the speed-up over the DataLoader case
           # run before it (pytest-randomly, when installed, would shuffle them; -p on an absent plugin
           # is a no-op)
           "-p", "no:randomly",
           # pytest runs inside this process, where gpubench is imported already: its plugin module cannot
           # be assertion-rewritten, which pytest reports as a (here harmless) warning.
           "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if getattr(args, "config", None):
        out += ["--gpubench-config", str(args.config)]
    if args.keyword:
        out += ["-k", args.keyword]
    if getattr(args, "quiet", False):
        out.append("-q")
    return out + shlex.split(args.pytest_args or "") + list(getattr(args, "pytest_extra", None) or [])


def echo_command(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The command this run amounts to, shell-quoted: the settings it passes as environment variables,
    then ``pytest`` and its arguments (paste it into a shell to run the same cases)."""
    return shlex.join([*(f"{key}={value}" for key, value in sorted(env.items())), "pytest", *argv])


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
    for note in deprecation_notes(args):
        print(note, file=sys.stderr)
    argv = pytest_args(args, config, bench_dir)
    env = settings_env(config, args.full)
    if not getattr(args, "quiet", False):
        print(f"gpubench bench: {echo_command(argv, env)}", file=sys.stderr)
    with patched_environ(env):
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
    run_id = new_run_id()
    hooks = _checkpoint_hooks(args, config, run_id, epochs)
    if isinstance(hooks, str):
        print(f"error: {hooks}", file=sys.stderr)
        return 2
    print(f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {'val loss':>9} {'val acc':>8} {'images/s':>10}")

    def report(row: dict[str, float]) -> None:
        print(f"{row['epoch']:>5} {row['train_loss']:>10.4f} {row['train_accuracy']:>9.2%} "
              f"{row['val_loss']:>9.4f} {row['val_accuracy']:>8.2%} {row['images_per_s']:>10.0f}", flush=True)

    try:
        outcome = mnist.train_full(data, device, epochs, pipeline=args.pipeline, batch_size=settings.batch_size,
                                   seed=settings.seed, report=report, resume=hooks[0], after_epoch=hooks[1])
    except checkpoint.CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
    record = {
        "schema": "gpubench.training/1", "run_id": run_id, "workload": "mnist", "pipeline": args.pipeline,
        "device": device_identity(device, probe), "requested_device": resolved.requested.name,
        "fallback_note": resolved.note if resolved.unusable is not None else "",
        "environment": environment(probe), "config": config.as_dict(), "data_source": outcome.source,
        "epochs": outcome.epochs, "verdict": outcome.verdict, "failures": list(outcome.failures),
        "resumed_from": str(args.resume or ""),
    }
    path = atomic_write_json(safe_child(Path(config.results.dir), "training", f"{run_id}-mnist.json"), record)
    print(f"saved {path}")
    return 1 if outcome.verdict == "FAIL" else 0


Hooks = tuple[Callable[[Any], list[dict[str, float]]] | None, Callable[[Any, list[dict[str, float]]], None] | None]


def _checkpoint_hooks(args: argparse.Namespace, config: Any, run_id: str, epochs: int) -> Hooks | str:
    """``train_full``'s ``resume`` and ``after_epoch`` hooks for the checkpoint options, or why they are wrong."""
    every = getattr(args, "checkpoint_every", 0) or 0
    resume = getattr(args, "resume", None)
    if every < 0:
        return "--checkpoint-every must be 0 (never) or a number of epochs"
    if (every or resume) and (reason := checkpoint.unsupported_reason(args.pipeline)):
        return reason
    after = None
    if every:
        path = Path(args.checkpoint or resume or safe_child(Path(config.results.dir), "checkpoints",
                                                             f"{run_id}-mnist.ckpt"))

        def saved(transfer: checkpoint.Transfer, epoch: int) -> None:
            print(f"checkpoint after epoch {epoch}: {transfer.path} ({transfer.bytes / 1e6:.1f} MB, "
                  f"{transfer.gb_per_s:.2f} GB/s)", flush=True)

        after = checkpoint.every(path, every, saved)
    if not resume:
        return None, after

    def restore(trainer: Any) -> list[dict[str, float]]:
        rows, transfer = checkpoint.timed_restore(resume, trainer)
        print(f"resumed from {resume} after epoch {len(rows)} ({transfer.gb_per_s:.2f} GB/s); "
              f"training to epoch {epochs}", flush=True)
        if len(rows) >= epochs:
            print(f"note: the checkpoint has {len(rows)} epochs already, --epochs is {epochs}: nothing to train",
                  file=sys.stderr)
        return rows

    return restore, after


def _limited(data: Any, limit: int) -> Any:
    source = dataclasses.replace(data.source, train=min(limit, data.source.train))
    return dataclasses.replace(data, train_images=data.train_images[:limit], train_labels=data.train_labels[:limit],
                               source=source, torchvision_train=None)
