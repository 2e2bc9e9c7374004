#!/usr/bin/env python3
"""`make bench-large`: a ~600M-parameter Llama-style reward model, end to end at real size.

    export/.venv/bin/python bench/large.py --bin target/release/rewardbench [--out bench-models/llama-600m-rm]

1. Generates a random Llama reward model (fixed seed; d=1536, 22 layers, 16 heads, 8 kv heads,
   ffn 4096, vocab 32000: ~620M parameters, 2.5 GB of fp32 weights) as a Hugging Face checkpoint
   (git-ignored, under bench-models/), once.
2. Exports it with the project's exporter exactly as a user would (`export/export_rm.py`, its
   defaults: `--attention auto`, `--external_data auto`, so both graphs exceed protobuf's 2 GB
   limit and are written as graph + model.onnx_data), under /usr/bin/time: wall time, peak RSS.
3. Scores 20 real LLMBar pairs (fixtures/data/llmbar.jsonl, the first 20 rows) with PyTorch the
   way RewardBench's CLI does (export/reference.py: fp32, eager attention, batch 1) and with the
   evaluator (default flags), each in its own process under /usr/bin/time.
4. Reports export time and peak RSS, evaluation peak RSS against the weights' size, time to the
   first score (the wall time of a one-pair run: load, fingerprint, first call), pairs/s, the
   `--dry_run` wall time (fingerprinting the multi-GB files and planning, no model load), and
   the largest |score difference| (must be <= 1e-4, else exit 1). Writes OUT/bench-large.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT = os.path.join(ROOT, "export")
sys.path.insert(0, EXPORT)

DEFAULT_OUT = os.path.join(ROOT, "bench-models", "llama-600m-rm")
DATA = os.path.join(ROOT, "fixtures", "data", "llmbar.jsonl")
PAIRS = 20
SEED = 20261202
VOCAB = 32000
TOL = 1e-4


def timed(cmd, **kw):
    """Runs `cmd` under GNU time; returns (wall seconds, peak RSS bytes, completed process)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name, *cmd],
                              capture_output=True, text=True, **kw)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
        rss_kb = int(tf.read().strip().splitlines()[-1])
    return wall, rss_kb * 1024, proc


def build_checkpoint(hf: str) -> int:
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from make_bench_model import corpus, hf_tokenizer
    from make_fixtures import save_tokenizer, train_bpe

    tmp = hf + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    llmbar = os.path.join(ROOT, "..", "shared", "data", "reward-bench-llmbar", "llmbar.jsonl")
    raw = train_bpe(VOCAB, lambda tok, trainer: tok.train_from_iterator(corpus(llmbar), trainer))
    tok = hf_tokenizer(raw)
    save_tokenizer(tok, tmp)
    cfg = LlamaConfig(
        vocab_size=raw.get_vocab_size(), hidden_size=1536, intermediate_size=4096,
        num_hidden_layers=22, num_attention_heads=16, num_key_value_heads=8,
        max_position_embeddings=4096, rope_theta=10000.0, rms_norm_eps=1e-5,
        initializer_range=0.02, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=False, use_cache=False, num_labels=1,
        torch_dtype="float32",
    )
    torch.manual_seed(SEED)
    model = LlamaForSequenceClassification(cfg).eval()
    n = int(sum(p.numel() for p in model.parameters()))
    model.save_pretrained(tmp, safe_serialization=True)
    os.rename(tmp, hf)
    return n


def torch_scores(hf: str, data: str, out: str) -> None:
    """Child process: PyTorch scores of the pairs, RewardBench's way (batch 1, unpadded)."""
    from reference import load_rm, read_jsonl, render_row, score_texts

    t0 = time.perf_counter()
    model, tok = load_rm(hf)
    loaded = time.perf_counter() - t0
    rows = read_jsonl(data)
    rendered = [render_row(r, tok) for r in rows]
    t1 = time.perf_counter()
    chosen = score_texts(model, tok, [r[1] for r in rendered], 1)
    rejected = score_texts(model, tok, [r[2] for r in rendered], 1)
    scoring = time.perf_counter() - t1
    with open(out, "w") as fh:
        json.dump({"chosen": chosen, "rejected": rejected, "load_seconds": loaded,
                   "score_seconds": scoring}, fh)


def ours(binary: str, model: str, data: str, extra=()):
    with tempfile.TemporaryDirectory(prefix="rb-large-") as out:
        cmd = [binary, "--model", model, "--dataset", data, "--load_json", "--output_dir", out,
               "--quiet", *extra]
        wall, rss, proc = timed(cmd)
        if "--dry_run" in extra:
            return {"wall_seconds": wall, "peak_rss_bytes": rss, "stdout": proc.stdout}
        name = os.path.basename(os.path.normpath(model))
        with open(os.path.join(out, f"{name}_run.json")) as fh:
            run = json.load(fh)
        import csv
        with open(os.path.join(out, f"{name}_scores.csv"), newline="") as fh:
            rows = list(csv.DictReader(fh))
    return {"wall_seconds": wall, "peak_rss_bytes": rss, "run": run,
            "chosen": [float(r["score_chosen"]) for r in rows],
            "rejected": [float(r["score_rejected"]) for r in rows]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the rewardbench binary")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--torch-child", nargs=3, metavar=("HF", "DATA", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.torch_child:
        torch_scores(*a.torch_child)
        return 0
    out = os.path.abspath(a.out)
    hf, onnx = os.path.join(out, "hf"), os.path.join(out, "onnx")
    os.makedirs(out, exist_ok=True)
    report = {"model": out}
    if not os.path.exists(os.path.join(hf, "model.safetensors")):
        t0 = time.perf_counter()
        report["num_parameters"] = build_checkpoint(hf)
        print(f"checkpoint: {report['num_parameters'] / 1e6:.0f}M parameters in "
              f"{time.perf_counter() - t0:.0f} s: {hf}")
    weights = os.path.getsize(os.path.join(hf, "model.safetensors"))
    report["weights_bytes"] = weights

    marker = os.path.join(onnx, "export.json")
    if not os.path.exists(marker):
        shutil.rmtree(onnx, ignore_errors=True)
        py = os.path.join(EXPORT, ".venv", "bin", "python")
        wall, rss, proc = timed([py if os.path.exists(py) else sys.executable,
                                 os.path.join(EXPORT, "export_rm.py"), "--model", hf, "--out", onnx])
        diff = [float(x) for x in re.findall(r"max abs diff ONNX Runtime vs PyTorch[^:]*: ([0-9.eE+-]+)", proc.stdout)]
        with open(marker, "w") as fh:
            json.dump({"export_seconds": wall, "export_peak_rss_bytes": rss,
                       "export_log_tail": proc.stdout[-2000:]}, fh, indent=2)
        print(f"export: {wall:.0f} s, peak RSS {rss / 1e9:.2f} GB ({rss / weights:.2f}x the weights)"
              + (f", exporter's check max |diff| {max(diff):.2e}" if diff else ""))
    with open(marker) as fh:
        report.update({k: v for k, v in json.load(fh).items() if k != "export_log_tail"})
    report["files"] = {os.path.relpath(os.path.join(d, f), onnx): os.path.getsize(os.path.join(d, f))
                       for d, _, fs in os.walk(onnx) for f in fs if "onnx" in f}

    with open(DATA) as fh:
        rows = [line for line in fh if line.strip()][:PAIRS]
    work = tempfile.mkdtemp(prefix="rb-large-data-")
    pairs = os.path.join(work, "pairs.jsonl")
    one = os.path.join(work, "one.jsonl")
    with open(pairs, "w") as fh:
        fh.writelines(rows)
    with open(one, "w") as fh:
        fh.write(rows[0])

    ref_out = os.path.join(work, "torch.json")
    wall, rss, _ = timed([sys.executable, os.path.abspath(__file__), "--bin", a.bin,
                          "--torch-child", hf, pairs, ref_out])
    with open(ref_out) as fh:
        ref = json.load(fh)
    report["torch"] = {"wall_seconds": wall, "peak_rss_bytes": rss, "load_seconds": ref["load_seconds"],
                       "score_seconds": ref["score_seconds"],
                       "pairs_per_second": PAIRS / ref["score_seconds"]}

    dry = ours(a.bin, onnx, pairs, ["--dry_run"])
    first = ours(a.bin, onnx, one)
    full = ours(a.bin, onnx, pairs)
    diff = max(max(abs(x - y) for x, y in zip(full["chosen"], ref["chosen"])),
               max(abs(x - y) for x, y in zip(full["rejected"], ref["rejected"])))
    report["ours"] = {
        "dry_run_seconds": dry["wall_seconds"],
        "time_to_first_score_seconds": first["wall_seconds"],
        "wall_seconds": full["wall_seconds"],
        "peak_rss_bytes": full["peak_rss_bytes"],
        "peak_rss_over_weights": full["peak_rss_bytes"] / weights,
        "pairs_per_second": full["run"].get("pairs_per_second"),
        "timings": full["run"].get("timings"),
        "onnx_model": full["run"].get("onnx_model"),
    }
    report["max_abs_score_diff_vs_torch"] = diff
    report["pairs"] = PAIRS
    report["cores"] = len(os.sched_getaffinity(0))
    shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(out, "bench-large.json"), "w") as fh:
        json.dump(report, fh, indent=2)
        fh.write("\n")

    o, t = report["ours"], report["torch"]
    gb = 1e9
    print(f"weights: {weights / gb:.2f} GB; ONNX files: "
          + ", ".join(f"{k} {v / gb:.2f} GB" for k, v in sorted(report["files"].items())))
    print(f"export: {report['export_seconds']:.0f} s, peak RSS {report['export_peak_rss_bytes'] / gb:.2f} GB")
    print(f"rewardbench: {PAIRS} pairs in {o['wall_seconds']:.0f} s ({o['pairs_per_second']:.3f} pairs/s), "
          f"peak RSS {o['peak_rss_bytes'] / gb:.2f} GB = {o['peak_rss_over_weights']:.2f}x the weights; "
          f"first score after {o['time_to_first_score_seconds']:.1f} s; --dry_run {o['dry_run_seconds']:.1f} s")
    print(f"PyTorch (RewardBench's way, batch 1): {t['pairs_per_second']:.3f} pairs/s, peak RSS "
          f"{t['peak_rss_bytes'] / gb:.2f} GB")
    print(f"max |score diff| vs PyTorch: {diff:.2e} (tolerance {TOL:g})")
    print(f"wrote {os.path.join(out, 'bench-large.json')}")
    return 0 if diff <= TOL else 1


if __name__ == "__main__":
    sys.exit(main())
