#!/usr/bin/env bash
# The whole GPU suite in one command, installing nothing: for GPU nodes without network that already have
# torch, pytest, pytest-benchmark, pandas and nvidia-ml-py. Run from a checkout:
#   GPUBENCH_DEVICES=cuda:0,cuda:1 scripts/gpu-suite.sh     (default: the devices in dl.config.sdn)
# Writes everything under results/ (or $GPUBENCH_RESULTS_DIR); exit status: the worst of the steps.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}
export GPUBENCH_RESULTS_DIR=${GPUBENCH_RESULTS_DIR:-results}  # results.dir for every step

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

status=0
step() { echo; echo "=== $*"; "$@"; rc=$?; [ $rc -gt $status ] && status=$rc; echo "=== exit $rc"; }

step "$PY" -m gpubench info
step "$PY" -m gpubench verify
step "$PY" -m pytest bench "${plugins[@]}" -p no:cacheprovider
step "$PY" -m gpubench report
exit $status
