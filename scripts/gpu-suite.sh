#!/usr/bin/env bash
# The whole GPU suite in one command, installing nothing: for GPU nodes without network that already have
# torch, pytest, pytest-benchmark, pandas and nvidia-ml-py. Run from a checkout:
#   GPUBENCH_DEVICES=cuda:0,cuda:1 scripts/gpu-suite.sh     (default: the devices in dl.config.sdn)
# Writes everything under results/ (or $GPUBENCH_RESULTS_DIR); exit status: the worst of the steps.
#
#   OUT=/some/dir scripts/gpu-suite.sh --proof              (default OUT: results/proof)
# The prepared hardware proof: every GPU path once, each step bounded by a timeout, in under 8 minutes on
# one GPU; one folder of at most 8 files comes back. See scripts/proof/proof.sh for the steps and their
# bounds. Without a GPU the GPU-only steps are skipped with the reason and the rest run with tiny settings.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-$(command -v python || command -v python3 || echo python)}  # PYTHON=... to choose

proof=0
case "${1:-}" in
  "") ;;
  --proof) proof=1 ;;
  -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: scripts/gpu-suite.sh [--proof]  (unknown argument '$1')" >&2; exit 2 ;;
esac
if [ $# -gt 1 ]; then echo "usage: scripts/gpu-suite.sh [--proof]  (one argument at most)" >&2; exit 2; fi

# Without an installed gpubench, pytest does not know its plugins: name them.
plugins=()
if ! "$PY" - <<'PYCODE'
import sys
from importlib.metadata import entry_points
sys.exit(0 if any(ep.name == "gpubench" for ep in entry_points(group="pytest11")) else 1)
PYCODE
then
  plugins=(-p gpubench.bench.plugin -p gpubench.bench.telemetry_plugin)
fi

if [ "$proof" = 1 ]; then
  # shellcheck source=proof/proof.sh
  . scripts/proof/proof.sh
  proof_main
  exit $?
fi

export GPUBENCH_RESULTS_DIR=${GPUBENCH_RESULTS_DIR:-results}  # results.dir for every step

status=0
step() { echo; echo "=== $*"; "$@"; rc=$?; [ $rc -gt $status ] && status=$rc; echo "=== exit $rc"; }

step "$PY" -m gpubench info
step "$PY" -m gpubench verify
# ${a[@]+"${a[@]}"}: an empty array expands to nothing; a bare "${a[@]}" aborts under set -u on bash < 4.4.
step "$PY" -m pytest bench ${plugins[@]+"${plugins[@]}"} -p no:cacheprovider
step "$PY" -m gpubench report
exit $status
