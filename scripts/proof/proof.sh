# shellcheck shell=bash
# The prepared hardware proof: `scripts/gpu-suite.sh --proof` sources this file and calls proof_main.
#
# Every GPU path of gpubench runs at least once, each step bounded by `timeout` and by small settings, and
# one folder comes back: ${OUT:-results/proof} with at most 8 files, each under 16 MiB:
#   summary.json       each step's exit code (or skip reason), wall seconds, and the key figures
#   proof.log          all output
#   proof.tar.gz       everything else: results/ (verify, benchmarks, telemetry traces, distributed),
#                      report/, nvidia-smi -q, the dmon trace, gpubench info --json, probe.json, steps.tsv
#   nvml-profile.json  the recorded NVML profile (python -m gpubench.testing.record), when NVML answers
#   timers.json        DeviceTimer vs torch.utils.benchmark.Timer vs triton.testing.do_bench
#
# Time: the steps up to the long verification share PROOF_BUDGET_S (default 340 s): a step gets at most
# what is left; under PROOF_MIN_STEP_S left, a step is not run and fails the proof, except the optional
# long verification, which is skipped with the reason when under 90 s are left. Stopping dmon, the report, packing and the summary have their own bounds
# (17 + 45 + 20 + 25 s): worst case about 450 s, 7.5 minutes. Expected on one H200: about 4-5 minutes.
# Without a GPU the GPU-only steps are skipped with a one-line reason and the rest run with tiny settings
# (under a minute). Every setting below is a default: an exported GPUBENCH_* variable wins.
#
# Exit status: 0 when every step that ran returned what it should (verify on the missing cuda:1: 1),
# skipped steps included (summary.json says which and why); 1 when a step failed or timed out; 2 on bad
# usage. Never changes clocks, power limits, persistence or MIG mode, and never resets a GPU.

PROOF_KILL_S=5          # SIGKILL this long after SIGTERM when a step overruns
PROOF_MIN_STEP_S=15     # below this, a step is skipped for lack of budget

_proof_now() { date +%s.%N; }

_proof_clean() {  # one line, no tabs: a TSV field
  local text=${1//$'\t'/ }
  text=${text//$'\r'/ }
  printf '%s' "${text//$'\n'/ }"
}

# _proof_record NAME STATUS RC EXPECTED T0 T1 TIMEOUT REASON COMMAND
_proof_record() {
  local fields=() f
  for f in "$@"; do fields+=("$(_proof_clean "$f")"); done
  (IFS=$'\t'; printf '%s\n' "${fields[*]+${fields[*]}}") >>"$PROOF_STEPS"
}

_proof_say() { printf '%s\n' "$*" | tee -a "$PROOF_LOG"; }

# proof_step NAME NOMINAL_S EXPECTED_RCS [--stdout FILE] [--final] [--needs S] -- COMMAND...
# Runs COMMAND under `timeout` (the smaller of NOMINAL_S and the budget left, unless --final), output to
# proof.log (stdout to FILE with --stdout), and records it. EXPECTED_RCS: "0", or a list such as "0,1".
# --needs S: an optional step, skipped (not cut short) when less than S seconds of the budget are left; a
# required step that finds under PROOF_MIN_STEP_S left is not run and fails the proof.
# The terminal gets one line per step, and the last lines of a step that did not end as expected.
proof_step() {
  local name=$1 nominal=$2 expected=$3
  shift 3
  local stdout_file="" final=0 needs=$PROOF_MIN_STEP_S
  while [ $# -gt 0 ]; do
    case $1 in
      --stdout) stdout_file=$2; shift 2 ;;
      --final) final=1; shift ;;
      --needs) needs=$2; shift 2 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  local limit=$nominal left
  left=$(( PROOF_DEADLINE - $(date +%s) ))
  if [ "$final" = 0 ] && [ "$left" -lt "$limit" ]; then limit=$left; fi
  if [ "$final" = 0 ] && [ "$left" -lt "$needs" ]; then
    # An optional step (--needs) is skipped; a required one that cannot run any more fails the proof.
    local why="proof budget spent: ${left}s of PROOF_BUDGET_S=${PROOF_BUDGET_S}s left, the step needs ${needs}s"
    local status=failed
    [ "$needs" = "$PROOF_MIN_STEP_S" ] || status=skipped
    _proof_say "=== [$name] $status, not run: $why"
    _proof_record "$name" "$status" "" "$expected" "" "" "$nominal" "not run: $why" "$*"
    return 0
  fi
  local term_after=$(( limit - PROOF_KILL_S ))
  [ "$term_after" -ge 1 ] || term_after=1
  _proof_say ""
  _proof_say "=== [$name] $* (timeout ${limit}s)"
  local t0 t1 rc
  t0=$(_proof_now)
  # In the background and waited for, so that an interrupt of this script can stop the step: `timeout`
  # runs its command in a process group of its own, which a Ctrl-C at the terminal does not reach.
  if [ -n "$stdout_file" ]; then
    timeout -k "$PROOF_KILL_S" "$term_after" "$@" >"$stdout_file" 2>>"$PROOF_LOG" </dev/null &
  else
    timeout -k "$PROOF_KILL_S" "$term_after" "$@" >>"$PROOF_LOG" 2>&1 </dev/null &
  fi
  PROOF_STEP_PID=$! PROOF_STEP_NAME=$name PROOF_STEP_T0=$t0 PROOF_STEP_LIMIT=$limit
  wait "$PROOF_STEP_PID"
  rc=$?
  PROOF_STEP_PID=""
  t1=$(_proof_now)
  local status=failed reason=""
  case ",$expected," in
    *",$rc,"*) status=ok ;;
  esac
  if [ "$status" != ok ] && { [ "$rc" = 124 ] || [ "$rc" = 137 ]; }; then
    status=timeout
    reason="stopped by timeout after ${term_after}s (exit $rc)"
  elif [ "$status" != ok ]; then
    reason="exit $rc, expected $expected"
  fi
  _proof_record "$name" "$status" "$rc" "$expected" "$t0" "$t1" "$limit" "$reason" "$*"
  if [ "$status" != ok ]; then tail -n 15 "$PROOF_LOG" | sed 's/^/    | /'; fi
  _proof_say "=== [$name] exit $rc ($status, $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s)"
  return 0
}

_proof_kill_group() {  # SIGTERM to a `timeout` we started, then its whole process group if it lingers
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null  # timeout passes SIGTERM on to its command's process group
  for i in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    # GNU timeout leads a process group of its own (its pid): what is still alive in it is ours
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
}

# Interrupted (Ctrl-C, SIGTERM from whatever runs the proof): stop the running step and dmon, then pack and
# summarize what ran, so the folder still comes back. A second signal ends the script at once.
_proof_interrupted() {
  local code=$1
  trap "exit $code" INT TERM
  if [ -n "${PROOF_STEP_PID:-}" ]; then
    _proof_kill_group "$PROOF_STEP_PID"
    PROOF_STEP_PID=""
    _proof_record "$PROOF_STEP_NAME" failed "$code" "" "$PROOF_STEP_T0" "$(_proof_now)" "$PROOF_STEP_LIMIT" \
      "interrupted: the proof was stopped by a signal" ""
  fi
  _proof_say "gpu-suite.sh --proof: interrupted; packing what ran"
  _proof_finish >/dev/null
  exit "$code"
}

# proof_skip NAME REASON [COMMAND...]: a step that cannot run here. On a machine with a GPU, a GPU step
# that cannot run is a failure of the proof, not a skip.
proof_skip() {
  local name=$1 reason=$2
  shift 2
  local status=skipped
  if [ "$PROOF_GPU" = 1 ]; then status=failed; reason="cannot run on this GPU machine: $reason"; fi
  _proof_say ""
  _proof_say "=== [$name] $status: $reason"
  _proof_record "$name" "$status" "" "" "" "" "" "$reason" "$*"
}

_proof_clock_offset() {  # wall clock minus perf_counter, to place telemetry traces on dmon's clock
  timeout -k 2 10 "$PY" -c 'import time; print(repr(time.time() - time.perf_counter()))' \
    >>"$PROOF_WORK/clock-offset.txt" 2>>"$PROOF_LOG"
}

PROOF_DMON_PID=""
PROOF_DMON_T0=""

_proof_start_dmon() {
  local seconds=$(( PROOF_DEADLINE - $(date +%s) + 60 ))
  local cmd=(nvidia-smi dmon -s pucm -o DT -d 1 -c "$seconds")
  # -o DT rather than -o T: the date makes every timestamp a point in time (a run may cross midnight).
  # stdbuf: one line at a time into the file, so nothing sits in a buffer when dmon is stopped.
  if command -v stdbuf >/dev/null 2>&1; then cmd=(stdbuf -oL ${cmd[@]+"${cmd[@]}"}); fi
  _proof_clock_offset
  _proof_say ""
  _proof_say "=== [nvidia-smi-dmon] ${cmd[*]+${cmd[*]}} > dmon.txt (background, until the benchmark and burn steps end)"
  PROOF_DMON_T0=$(_proof_now)
  timeout -k "$PROOF_KILL_S" "$seconds" ${cmd[@]+"${cmd[@]}"} >"$PROOF_WORK/dmon.txt" 2>&1 </dev/null &
  PROOF_DMON_PID=$!
}

_proof_stop_dmon() {
  [ -n "$PROOF_DMON_PID" ] || return 0
  local pid=$PROOF_DMON_PID rc
  PROOF_DMON_PID=""
  _proof_kill_group "$pid"
  rc=$?
  local t1 rows
  t1=$(_proof_now)
  _proof_clock_offset
  rows=$(grep -cE '^ *[0-9]{8} +[0-9:]{8} ' "$PROOF_WORK/dmon.txt" 2>/dev/null)
  local status=ok reason="stopped after the GPU steps (exit $rc)"
  if [ "${rows:-0}" -lt 1 ]; then
    status=failed
    reason="no samples in dmon.txt (exit $rc): $(head -c 300 "$PROOF_WORK/dmon.txt" 2>/dev/null)"
  fi
  _proof_record nvidia-smi-dmon "$status" "$rc" "0,124,137,143" "$PROOF_DMON_T0" "$t1" "" "$reason" \
    "nvidia-smi dmon -s pucm -o DT -d 1"
  _proof_say "=== [nvidia-smi-dmon] $rows sample rows ($status)"
}

_proof_on_exit() {
  _proof_stop_dmon
  if [ -n "${PROOF_WORK:-}" ] && [ "${PROOF_KEEP_WORK:-0}" != 1 ]; then rm -rf "$PROOF_WORK"; fi
}

# The settings of every step. GPU: sizes that show each GPU path (elementwise tensors of 256 MiB, copies of
# 256 MiB, MNIST batch 128 through all four pipelines); cpu: the smallest that still run every step.
_proof_settings() {
  export GPUBENCH_DATA_DOWNLOAD=${GPUBENCH_DATA_DOWNLOAD:-false}  # no network on the node: no download wait
  export GPUBENCH_BENCH_CASE_TIMEOUT_S=${GPUBENCH_BENCH_CASE_TIMEOUT_S:-60}
  export GPUBENCH_BENCH_WARMUP_ROUNDS=${GPUBENCH_BENCH_WARMUP_ROUNDS:-1}
  if [ "$PROOF_GPU" = 1 ]; then
    PROOF_DEVICE=cuda:0
    export GPUBENCH_BENCH_DTYPES=${GPUBENCH_BENCH_DTYPES:-f32,bf16}
    export GPUBENCH_BENCH_CREATION_SIZES=${GPUBENCH_BENCH_CREATION_SIZES:-16777216}
    export GPUBENCH_BENCH_ELEMENTWISE_SIZES=${GPUBENCH_BENCH_ELEMENTWISE_SIZES:-67108864}  # 256 MiB of f32
    export GPUBENCH_BENCH_MATMUL_SIZES=${GPUBENCH_BENCH_MATMUL_SIZES:-1024,4096}
    export GPUBENCH_BENCH_COPY_BYTES=${GPUBENCH_BENCH_COPY_BYTES:-268435456}  # 256 MiB
    export GPUBENCH_BENCH_ROUNDS=${GPUBENCH_BENCH_ROUNDS:-5}
    export GPUBENCH_BENCH_MNIST_PIPELINES=${GPUBENCH_BENCH_MNIST_PIPELINES:-dataloader,resident,resident-bf16,cuda-graph}
    export GPUBENCH_BENCH_MNIST_BATCH_SIZE=${GPUBENCH_BENCH_MNIST_BATCH_SIZE:-128}
    export GPUBENCH_BENCH_MNIST_LIMIT=${GPUBENCH_BENCH_MNIST_LIMIT:-8192}
    export GPUBENCH_BENCH_MNIST_ROUNDS=${GPUBENCH_BENCH_MNIST_ROUNDS:-2}
    PROOF_TIMERS_ARGS=(--devices cuda:0 --add-numel 67108864 --matmul-n 4096 --repeats 3 --min-run-time 0.2)
    PROOF_DIST_ARGS=(--dist-device cuda --dist-max-bytes 64MiB --dist-rounds 5 --dist-warmup 2
                     --dist-ddp-steps 50 --dist-timeout 60)
  else
    PROOF_DEVICE=cpu
    export GPUBENCH_BENCH_DTYPES=${GPUBENCH_BENCH_DTYPES:-f32}
    export GPUBENCH_BENCH_CREATION_SIZES=${GPUBENCH_BENCH_CREATION_SIZES:-65536}
    export GPUBENCH_BENCH_ELEMENTWISE_SIZES=${GPUBENCH_BENCH_ELEMENTWISE_SIZES:-262144}
    export GPUBENCH_BENCH_MATMUL_SIZES=${GPUBENCH_BENCH_MATMUL_SIZES:-128}
    export GPUBENCH_BENCH_COPY_BYTES=${GPUBENCH_BENCH_COPY_BYTES:-1048576}
    export GPUBENCH_BENCH_ROUNDS=${GPUBENCH_BENCH_ROUNDS:-2}
    export GPUBENCH_BENCH_XOR_SEEDS=${GPUBENCH_BENCH_XOR_SEEDS:-8}
    export GPUBENCH_BENCH_XOR_EPOCHS=${GPUBENCH_BENCH_XOR_EPOCHS:-50}
    export GPUBENCH_BENCH_XOR_ROUNDS=${GPUBENCH_BENCH_XOR_ROUNDS:-1}
    # resident first: bench/test_mnist.py judges its resident >= 4x dataloader target (a verdict, not an
    # assertion) only when dataloader ran before it, a figure for full-size rounds, not these 1024 images.
    export GPUBENCH_BENCH_MNIST_PIPELINES=${GPUBENCH_BENCH_MNIST_PIPELINES:-resident,dataloader}
    export GPUBENCH_BENCH_MNIST_LIMIT=${GPUBENCH_BENCH_MNIST_LIMIT:-1024}
    export GPUBENCH_BENCH_MNIST_ROUNDS=${GPUBENCH_BENCH_MNIST_ROUNDS:-1}
    # Shared CPUs are noisier than 5%: on cpu this step proves the plumbing, not the agreement (the
    # verdict is recorded in timers.json; a CI run with a busy neighbour measured a 119% difference).
    PROOF_TIMERS_ARGS=(--devices cpu --repeats 2 --min-run-time 0.05 --rounds 5 --tolerance 1.0 --verdict-only)
    PROOF_DIST_ARGS=(--device cpu --dist-device cpu --dist-max-bytes 64KiB --dist-rounds 2 --dist-warmup 1
                     --dist-ddp-steps 5 --dist-timeout 60)
  fi
}

proof_main() {
  local out=${OUT:-results/proof}
  PROOF_BUDGET_S=${PROOF_BUDGET_S:-340}
  case $PROOF_BUDGET_S in
    ''|*[!0-9]*) echo "gpu-suite.sh --proof: PROOF_BUDGET_S must be whole seconds, not '$PROOF_BUDGET_S'" >&2; return 2 ;;
  esac
  mkdir -p "$out" || { echo "gpu-suite.sh --proof: cannot create $out" >&2; return 2; }
  out=$(cd "$out" && pwd)
  PROOF_OUT=$out
  PROOF_WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpubench-proof.XXXXXX") || return 2
  PROOF_LOG=$out/proof.log
  PROOF_STEPS=$PROOF_WORK/steps.tsv
  PROOF_DEADLINE=$(( $(date +%s) + PROOF_BUDGET_S ))
  trap _proof_on_exit EXIT
  PROOF_STEP_PID="" PROOF_STEP_NAME="" PROOF_STEP_T0="" PROOF_STEP_LIMIT=""
  trap '_proof_interrupted 130' INT
  trap '_proof_interrupted 143' TERM
  rm -f "$out/summary.json" "$out/proof.log" "$out/proof.tar.gz" "$out/nvml-profile.json" "$out/timers.json"
  : >"$PROOF_LOG"
  : >"$PROOF_STEPS"
  PROOF_STARTED=$(_proof_now)
  local results=$PROOF_WORK/results
  mkdir -p "$results"
  export GPUBENCH_RESULTS_DIR=$results
  _proof_say "gpubench proof: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname); out=$out; budget ${PROOF_BUDGET_S}s"
  _proof_say "python: $PY; pytest plugins named: ${plugins[*]+${plugins[*]}}"

  # What is here decides what runs. Without a probe nothing can be decided: stop.
  proof_step probe 60 0 -- "$PY" scripts/proof/probe.py "$PROOF_WORK"
  if [ ! -f "$PROOF_WORK/probe.env" ]; then
    _proof_say "gpu-suite.sh --proof: the probe failed (see proof.log); is PyTorch importable by $PY?"
    PROOF_GPU=0
  else
    # shellcheck source=/dev/null
    . "$PROOF_WORK/probe.env"
  fi
  : "${PROOF_GPU:=0}" "${PROOF_NVML:=0}" "${PROOF_SMI:=0}" "${PROOF_NCCL:=0}"
  : "${PROOF_GPU_REASON:=}" "${PROOF_NVML_REASON:=}" "${PROOF_SMI_REASON:=}"
  _proof_settings
  local no_gpu="no CUDA GPU: ${PROOF_GPU_REASON:-PyTorch sees none}"

  # 1. the recorded device profile: every NVML reading, raw, with units
  if [ "$PROOF_NVML" = 1 ]; then
    proof_step nvml-profile 45 0 -- "$PY" -m gpubench.testing.record "$out/nvml-profile.json"
  else
    proof_skip nvml-profile "$PROOF_NVML_REASON (python -m gpubench.testing.record exits 1 and writes no profile)" \
      "$PY" -m gpubench.testing.record nvml-profile.json
  fi

  # 2. nvidia-smi: the full query, the GPU list (to match dmon's index to a UUID), then dmon in the background
  if [ "$PROOF_SMI" = 1 ]; then
    proof_step nvidia-smi-q 30 0 --stdout "$PROOF_WORK/nvidia-smi-q.txt" -- nvidia-smi -q
    proof_step nvidia-smi-gpus 20 0 --stdout "$PROOF_WORK/nvidia-smi-gpus.csv" -- \
      nvidia-smi --query-gpu=index,uuid,pci.bus_id,name,power.draw,clocks.sm --format=csv
    _proof_start_dmon
  else
    proof_skip nvidia-smi-q "$PROOF_SMI_REASON" nvidia-smi -q
    proof_skip nvidia-smi-gpus "$PROOF_SMI_REASON" nvidia-smi --query-gpu=index,uuid --format=csv
    proof_skip nvidia-smi-dmon "$PROOF_SMI_REASON" nvidia-smi dmon -s pucm -o DT -d 1
  fi

  # 3. info, and verification: quick on the device, the missing cuda:1 (exit 1 expected)
  proof_step info 60 0 --stdout "$PROOF_WORK/info.json" -- "$PY" -m gpubench info --json
  proof_step verify-quick 90 0 -- "$PY" -m gpubench verify --device "$PROOF_DEVICE" --level quick \
    --results-dir "$results"
  proof_step verify-missing-cuda1 60 1 -- "$PY" -m gpubench verify --device cuda:1 --level quick \
    --results-dir "$results"

  # 4. the benchmarks on the device, with telemetry (saved run and traces under results/)
  proof_step bench 180 0 -- "$PY" -m pytest bench ${plugins[@]+"${plugins[@]}"} -p no:cacheprovider \
    --gpubench-devices="$PROOF_DEVICE" --ignore=bench/test_telemetry_overhead.py \
    --ignore=bench/test_sdn_speed.py -q -rs

  # 5. timer agreement
  proof_step timers 75 0 -- "$PY" scripts/compare_timers.py ${PROOF_TIMERS_ARGS[@]+"${PROOF_TIMERS_ARGS[@]}"} \
    --json "$out/timers.json"

  # 6. distributed: one rank, NCCL collectives and DDP on the GPU (gloo on cpu)
  if [ "$PROOF_GPU" = 1 ] && [ "$PROOF_NCCL" != 1 ]; then
    proof_skip distributed "this PyTorch has no NCCL" "$PY" -m torch.distributed.run -m gpubench bench
  else
    # python -m torch.distributed.run is torchrun, without needing torchrun on PATH
    proof_step distributed 90 0 -- "$PY" -m torch.distributed.run --standalone --nproc-per-node=1 \
      -m gpubench bench ${PROOF_DIST_ARGS[@]+"${PROOF_DIST_ARGS[@]}"} --results-dir "$results"
  fi

  # 7. the long verification (memtest over most of the GPU's memory, a longer burn) if the budget allows
  if [ "$PROOF_GPU" = 1 ]; then
    proof_step verify-long 120 0 --needs 90 -- "$PY" -m gpubench verify --device cuda:0 --level long \
      --set verify.memtest_seconds=3 --set verify.burn_seconds=2 --results-dir "$results"
  else
    proof_skip verify-long "$no_gpu; the long level exists for the memtest over GPU memory" \
      "$PY" -m gpubench verify --device cuda:0 --level long
  fi
  _proof_stop_dmon

  # 8. the report over all of it, then the pack and the summary (bounded on their own, outside the budget)
  proof_step report 45 0 --final -- "$PY" -m gpubench report --results-dir "$results" \
    --output "$PROOF_WORK/report"
  _proof_finish
}

# Pack, then summarize (bounded on their own, outside the budget); returns the proof's exit status.
_proof_finish() {
  _proof_stop_dmon
  proof_step pack 20 0 --final -- "$PY" scripts/proof/pack.py "$PROOF_WORK" "$PROOF_OUT/proof.tar.gz"
  local summarize_rc status=1
  timeout -k "$PROOF_KILL_S" 20 "$PY" scripts/proof/summarize.py --work "$PROOF_WORK" --out "$PROOF_OUT" \
    --started "$PROOF_STARTED" --budget "$PROOF_BUDGET_S" 2>&1 | tee -a "$PROOF_LOG"
  summarize_rc=${PIPESTATUS[0]}
  if [ "$summarize_rc" = 0 ] || [ "$summarize_rc" = 1 ]; then
    status=$summarize_rc
  else
    _proof_say "gpu-suite.sh --proof: the summary could not be written (exit $summarize_rc)"
  fi
  _proof_say "gpu-suite.sh --proof: exit $status; folder $PROOF_OUT: $(cd "$PROOF_OUT" && ls | tr '\n' ' ')"
  return "$status"
}
