#!/usr/bin/env bash
# The GPU figures in one go, within 8 minutes on one GPU; run from anywhere:
#   bash benchmarks/gpu_check.sh
# Prints: the device; training throughput against a DataLoader loop for MLP-MNIST and the CNN at
# batch 32 (target: >= 3x for MLP-MNIST), with fused-optimizer / torch.compile / CUDA-graph variants;
# the probe benchmark on the GPU when benchmarks/bench_probes.py exists and takes --device; the paper
# grid's projected GPU-hours (benchmarks/projection.py); the MLP again against a DataLoader with 4
# worker processes (a stronger baseline).
# Needs no internet and installs nothing: it uses the repository's .venv (carried to the GPU machine;
# same torch build) and the offline datasets; prepared copies in resources/datasets are read if there.
# Every step runs under `timeout`, cut to what is left of the 8-minute budget, so the script always ends
# in time and says which step ran out. Exit status: 0 when every step passed.
# To try the script's mechanics on a machine without a GPU (figures meaningless):
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_EXTRA=--quick bash benchmarks/gpu_check.sh
set -u
cd "$(dirname "$0")/.."

PY=.venv/bin/python
DEVICE=${GPU_CHECK_DEVICE:-cuda}
read -r -a EXTRA <<<"${GPU_CHECK_EXTRA:-}" # extra benchmark arguments, for the mechanics test above
BUDGET_S=470                               # 8 minutes less a margin for start-up and the last lines
DEADLINE=$((SECONDS + BUDGET_S))
DATA_DIR=resources/datasets # read only: prepared copies found there skip the prepare step
failures=0
export PYTHONUNBUFFERED=1 # what a step printed survives its timeout

# run_step NAME MAX_SECONDS COMMAND...: COMMAND under timeout (the smaller of MAX_SECONDS and what is left)
run_step() {
    local name=$1 max=$2
    shift 2
    local left=$((DEADLINE - SECONDS))
    local limit=$((max < left ? max : left))
    echo
    echo "=== ${name} (timeout ${limit}s, $(date -u +%H:%M:%S) UTC)"
    if ((limit < 20)); then
        echo "SKIPPED: ${name}: only ${left}s of the budget left"
        failures=$((failures + 1))
        return
    fi
    local started=$SECONDS rc=0
    timeout --kill-after=10 "${limit}" "$@" || rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "TIMED OUT: ${name} after ${limit}s"
    elif ((rc != 0)); then
        echo "FAILED: ${name} (exit ${rc})"
    fi
    ((rc == 0)) || failures=$((failures + 1))
    echo "--- ${name}: $((SECONDS - started))s"
}

# The device, or exit 1 when torch sees no GPU (argument: cuda, or cpu for the mechanics test).
DEVICE_REPORT='
import sys, torch
if sys.argv[1] == "cpu":
    print(f"CPU only (mechanics test): torch {torch.__version__}, {torch.get_num_threads()} threads")
    raise SystemExit
if not torch.cuda.is_available():
    sys.exit(f"no CUDA device visible to torch {torch.__version__} (CUDA build {torch.version.cuda})")
p = torch.cuda.get_device_properties(0)
print(f"{p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}; "
      f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
'

# The CNN runs on Fashion-MNIST as in the paper when an offline copy is here, else on MNIST: cnn-mnist
# has the same model, optimizer (Adam 2e-4) and batch (32), hence the same throughput. Never a download.
cnn_pair() {
    if [[ -f ${DATA_DIR}/fashion_mnist/meta.json ]] ||
        "$PY" -c "from latentgen.data.datasets import source_is_ready as ready
raise SystemExit(not ready('fashion_mnist', 'debian'))" 2>/dev/null; then
        echo cnn-fashion_mnist
    else
        echo cnn-mnist
    fi
}

# Why the probe benchmark cannot run here; nothing when it can.
probe_benchmark_missing() {
    if [[ ! -f benchmarks/bench_probes.py ]]; then
        echo "benchmarks/bench_probes.py does not exist"
    elif ! timeout 60 "$PY" benchmarks/bench_probes.py --help 2>/dev/null | grep -q -- '--device'; then
        echo "benchmarks/bench_probes.py has no --device flag"
    fi
}

echo "gpu_check: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), $(nproc) CPU cores"
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,utilization.gpu --format=csv,noheader 2>/dev/null ||
    echo "(nvidia-smi unavailable)"
run_step "device" 60 "$PY" -c "$DEVICE_REPORT" "$DEVICE"
if ((failures)); then
    echo "gpu_check: no usable GPU; nothing measured"
    exit 1
fi

CNN=$(cnn_pair)
if [[ $CNN == cnn-mnist ]]; then
    echo "note: Fashion-MNIST has no offline copy here; the CNN is measured on MNIST (cnn-mnist)"
fi

# 1. Training throughput: the DataLoader baseline (num_workers=0, its default) against ours and variants,
# one pair per step so that a slow torch.compile on one cannot cost the other's figures.
for pair in mlp-mnist "$CNN"; do
    run_step "training throughput vs DataLoader (${pair}, batch 32)" 150 \
        "$PY" benchmarks/bench_training.py --device "$DEVICE" --pairs "$pair" --data-dir "$DATA_DIR" "${EXTRA[@]}"
done

# 2. Probes on the GPU (written by another engineer; run only when it takes --device).
missing=$(probe_benchmark_missing)
if [[ -n $missing ]]; then
    echo
    echo "=== probe benchmark: SKIPPED: ${missing}"
else
    run_step "probe benchmark" 120 "$PY" benchmarks/bench_probes.py --device "$DEVICE"
fi

# 3. Per-stage costs of every pair on this GPU, and the paper grid's projected GPU-hours and wall time
# on 1, 8 and 50 GPUs (the table docs/performance.md asks for).
run_step "projection of the paper grid" 110 "$PY" benchmarks/projection.py --device "$DEVICE" --min-time 0.5

# 4. A stronger baseline, so the ratio is not against a straw man: 4 loader processes, pinned memory.
run_step "training throughput vs DataLoader with 4 workers (mlp-mnist)" 60 \
    "$PY" benchmarks/bench_training.py --device "$DEVICE" --pairs mlp-mnist --variants ours,graph \
    --loader-workers 4 --data-dir "$DATA_DIR" "${EXTRA[@]}"

echo
echo "gpu_check: ${SECONDS}s in all; ${failures} step(s) failed or timed out"
exit $((failures > 0))
