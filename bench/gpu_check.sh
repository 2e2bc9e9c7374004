#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU: scores a fixture on CPU, CUDA and TensorRT and
# compares the scores (within 1e-3) and verdicts. Needs `make setup-gpu` (onnxruntime-gpu in
# .ort/gpu/lib) and the CUDA 13, cuDNN 9 and TensorRT 10 libraries on LD_LIBRARY_PATH.
# Not yet run: no GPU machine was available to the sessions that wrote it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/rewardbench}
MODEL=${MODEL:-fixtures/models/tiny-llama-rm}
DATA=${DATA:-fixtures/data/llmbar.jsonl}
OUT=${OUT:-$(mktemp -d)}
for d in cpu cuda tensorrt; do
  echo "== $d"
  "$BIN" --model "$MODEL" --dataset "$DATA" --device "$d" --output_dir "$OUT/$d" --quiet --cache false \
    --trt_cache "$OUT/trt-cache"
done
python3 - "$OUT" "$(basename "$MODEL")" <<'PY'
import csv, sys
out, name = sys.argv[1], sys.argv[2]
def load(d):
    with open(f"{out}/{d}/{name}_scores.csv") as f:
        return [(float(r["score_chosen"]), float(r["score_rejected"]), r["result"]) for r in csv.DictReader(f)]
cpu = load("cpu")
ok = True
for d in ("cuda", "tensorrt"):
    g = load(d)
    diff = max(max(abs(a[0] - b[0]), abs(a[1] - b[1])) for a, b in zip(cpu, g))
    flips = sum(a[2] != b[2] for a, b in zip(cpu, g))
    print(f"{d}: max |score - cpu| = {diff:.2e}, verdicts differing from cpu: {flips}")
    ok &= diff <= 1e-3 and flips == 0
sys.exit(0 if ok else 1)
PY
