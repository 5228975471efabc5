#!/usr/bin/env bash
# The GPU checks of the pretrain work in one go (for a lent GPU machine): MFU of the ~1B LLaMA
# (eager with the plain-loop baseline, then each speed option: gpu_mfu.py --sweep), and the tiny example end to end on
# the GPU (bf16 autocast, MFU metric, analysis under autocast). Logs go to ${OUT:-/tmp/gb-gpu}.
set -uo pipefail
OUT=${OUT:-/tmp/gb-gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/api:$PWD/operator:$PWD/workloads${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
(cd bench/pretrain && timeout 300 $PY gpu_mfu.py --steps 10 --warmup 3 2>&1 | tee "$OUT/mfu_eager.txt") ||
  (cd bench/pretrain && timeout 200 $PY gpu_mfu.py --steps 10 --warmup 3 --micro-batch 4 2>&1 | tee "$OUT/mfu_eager_mb4.txt")
# Every speed option in turn (eager + plain loop, compile, fused chunked loss, bf16 params): one table.
(cd bench/pretrain && timeout 540 $PY gpu_mfu.py --steps 10 --warmup 3 --sweep 2>&1 | tee "$OUT/mfu_sweep.txt")
timeout 120 $PY -m glassbox_workloads pretrainrun --spec examples/pretrain-tiny.yaml --store /tmp/gb-gpu-store \
  --run-id gpu00001 2>&1 | tee "$OUT/tiny_gpu.txt"
$PY -c "
import json,glob
for f in sorted(glob.glob('/tmp/gb-gpu-store/**/metrics/*.jsonl', recursive=True))[-1:]:
    rows=[json.loads(l) for l in open(f)]; print(f, rows[-1])
" 2>&1 | tee -a "$OUT/tiny_gpu.txt"
