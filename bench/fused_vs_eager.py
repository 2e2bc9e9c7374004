#!/usr/bin/env python3
"""Fused vs eager graph of one checkpoint, side by side with our binary.

    export/.venv/bin/python bench/fused_vs_eager.py --bin target/release/rewardbench \
        --model bench-models/gpt2-30m-rm [--pairs 200] [--reps 3] [--threads 2] [--batch_size 8]

MODEL holds the fused, packed graph as model.onnx and the eager graph as eager/model.onnx (the
layout export/make_bench_model.py writes). Both run on the first PAIRS LLMBar pairs
(../shared/data/reward-bench-llmbar), alternating fused, eager, fused, ... for REPS rounds so
load from other jobs hits both alike; prints each run's pairs/s (the binary's own
`pairs_per_second`, scoring time), accuracy and the per-round ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from run import run_ours  # noqa: E402

ROOT = os.path.dirname(HERE)
LLMBAR = os.path.join(ROOT, "..", "shared", "data", "reward-bench-llmbar", "llmbar.jsonl")
SIDE = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "rewardbench"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--llmbar", default=LLMBAR)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--json", default=None, help="also write the results here")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rb-fve-") as tmp:
        data = os.path.join(tmp, "pairs.jsonl")
        with open(a.llmbar, encoding="utf-8") as src, open(data, "w", encoding="utf-8") as dst:
            for i, line in enumerate(l for l in src if l.strip()):
                if i >= a.pairs:
                    break
                dst.write(line)
        # two folders with one graph each, so each run takes its own graph as model.onnx
        views = {}
        for kind, rel in (("fused", "model.onnx"), ("eager", os.path.join("eager", "model.onnx"))):
            d = os.path.join(tmp, kind)
            os.makedirs(d)
            for f in SIDE:
                if os.path.exists(os.path.join(a.model, f)):
                    shutil.copy2(os.path.join(a.model, f), os.path.join(d, f))
            os.symlink(os.path.abspath(os.path.join(a.model, rel)), os.path.join(d, "model.onnx"))
            views[kind] = d
        results = {"fused": [], "eager": []}
        for rep in range(a.reps):
            for kind in ("fused", "eager"):
                r = run_ours(a.bin, views[kind], data, a.threads, a.batch_size, ("--device", "cpu"))
                pps = r["evaluator"].get("pairs_per_second")
                results[kind].append({"pairs_per_second": pps, "accuracy": r["accuracy"],
                                      "process_wall_seconds": r["process_wall_seconds"]})
                print(f"round {rep + 1} {kind}: {pps:.2f} pairs/s, accuracy {r['accuracy']:.4f}, "
                      f"process {r['process_wall_seconds']:.1f} s", flush=True)
            f, e = results["fused"][-1]["pairs_per_second"], results["eager"][-1]["pairs_per_second"]
            print(f"round {rep + 1} ratio fused/eager: {f / e:.2f}x", flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"model": a.model, "pairs": a.pairs, "threads": a.threads,
                       "batch_size": a.batch_size, "results": results}, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
