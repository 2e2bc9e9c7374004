#!/usr/bin/env python3
"""`make bench-quant`: accuracy of the fp16 and int8 variants of the bench model against fp32.

    export/.venv/bin/python bench/quant.py [--threads N] [--pairs 500]

Makes bench-models/llama-30m-rm-fp16 and -int8 from bench-models/llama-30m-rm with
export/quantize.py (skipped when present), scores the bench pairs (bench/pairs.py: the LLMBar rows
of ../shared, repeated up to 500) with our binary for each of fp32, fp16 and int8, and prints per
variant: model.onnx size, accuracy, accuracy change vs fp32 (points), verdicts that differ from
fp32, the largest |score difference| vs fp32, and pairs/s (the binary's own `_run.json`). Writes
bench-models/quant-results.json.

A measurement, not a test: the variants are lossy by design, so it exits non-zero only when a
step fails, never because accuracy moved.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import pairs as bench_pairs  # noqa: E402
from run import LLMBAR, MODEL, BIN, PAIRS, available_cores, run_binary  # noqa: E402

QUANTIZE = os.path.join(ROOT, "export", "quantize.py")
RESULTS = os.path.join(ROOT, "bench-models", "quant-results.json")
VARIANTS = ("fp16", "int8")


def make_variant(model: str, variant: str) -> str:
    out = f"{os.path.normpath(model)}-{variant}"
    dst, src = os.path.join(out, "model.onnx"), os.path.join(model, "model.onnx")
    if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
        print(f"{variant}: {out} present, not regenerated")
        return out
    cmd = [sys.executable, QUANTIZE, "--model", model, "--out", out, "--variant", variant, "--force"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"quantize failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    print(proc.stdout.strip())
    return out


def score(binary: str, model: str, dataset: str, threads: int, batch_size: int) -> dict:
    """Runs our binary; returns accuracy, per-id (chosen, rejected, result) and pairs/s."""
    r = run_binary(binary, model, dataset, threads, batch_size, ("--cache", "false"))
    rows = {rec["id"]: (float(rec["score_chosen"]), float(rec["score_rejected"]), float(rec["result"]))
            for rec in r["rows"]}
    return {"command": r["command"], "accuracy": r["summary"].get("accuracy"), "rows": rows,
            "pairs_per_second": r["run"].get("pairs_per_second"), "run": r["run"]}


def compare(base: dict, other: dict) -> dict:
    if base["rows"].keys() != other["rows"].keys():
        raise SystemExit("the variants scored different row ids")
    ids = list(base["rows"])
    diff = max(max(abs(base["rows"][i][0] - other["rows"][i][0]), abs(base["rows"][i][1] - other["rows"][i][1]))
               for i in ids)
    flipped = [i for i in ids if base["rows"][i][2] != other["rows"][i][2]]
    return {"max_abs_score_diff": diff, "verdicts_differ": len(flipped), "differing_ids": flipped[:20]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--bin", default=BIN)
    ap.add_argument("--llmbar", default=LLMBAR)
    ap.add_argument("--pairs", type=int, default=bench_pairs.N_PAIRS, help="number of pairs (default 500)")
    ap.add_argument("--threads", type=int, default=0, help="threads (default: cores available)")
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--results", default=RESULTS)
    a = ap.parse_args(argv)

    if not os.path.exists(a.llmbar):
        bar = "!" * 78
        print(f"{bar}\nBENCH-QUANT SKIPPED: {a.llmbar} not found.\n"
              f"It needs the shared LLMBar data (../shared next to this checkout).\n{bar}")
        return 0
    for p, what in ((os.path.join(a.model, "model.onnx"), "run export/make_bench_model.py"),
                    (a.bin, "run cargo build --release")):
        if not os.path.exists(p):
            raise SystemExit(f"{p} missing: {what}")

    threads = a.threads or available_cores()
    bench_pairs.build_pairs(a.llmbar, PAIRS, a.pairs)
    models = {"fp32": a.model}
    for v in VARIANTS:
        models[v] = make_variant(a.model, v)

    runs = {}
    for v, m in models.items():
        print(f"scoring {a.pairs} pairs with {v} ({m}) ...", flush=True)
        runs[v] = score(a.bin, m, PAIRS, threads, a.batch_size)

    base = runs["fp32"]
    table = []
    for v, m in models.items():
        r = runs[v]
        row = {"variant": v, "model": m, "bytes": os.path.getsize(os.path.join(m, "model.onnx")),
               "accuracy": r["accuracy"], "pairs_per_second": r["pairs_per_second"], "command": r["command"]}
        row["accuracy_change_points"] = (r["accuracy"] - base["accuracy"]) * 100
        row.update(compare(base, r))
        table.append(row)

    head = f"{'variant':8} {'size MB':>8} {'accuracy':>9} {'change':>8} {'verdicts differ':>16} {'max |diff|':>11} {'pairs/s':>8}"
    print(f"\n{len(base['rows'])} pairs, batch size {a.batch_size}, {threads} threads\n{head}\n{'-' * len(head)}")
    for row in table:
        print(f"{row['variant']:8} {row['bytes'] / 1e6:8.1f} {row['accuracy']:9.4f} "
              f"{row['accuracy_change_points']:+8.2f} {row['verdicts_differ']:>16} "
              f"{row['max_abs_score_diff']:11.3g} {row['pairs_per_second']:8.2f}")
    print("change: accuracy points vs fp32; pairs/s from the binary's _run.json (noisy on a shared machine)")

    out = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.machine(), "threads": threads},
        "pairs": len(base["rows"]),
        "batch_size": a.batch_size,
        "variants": table,
        "generated_by": "bench/quant.py",
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.results)), exist_ok=True)
    with open(a.results, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2)
        fh.write("\n")
    print(f"wrote {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
