#!/usr/bin/env python3
"""`make bench`: score the same 500 real preference pairs with three systems, side by side.

    export/.venv/bin/python bench/run.py [--threads N] [--systems abcef] [--pairs 500]

(a) our binary, target/release/rewardbench (its default length-sorted batching), batch size 8;
(b) RewardBench's way in Python: transformers + PyTorch fp32 on CPU, batches of 8 rows in
    dataset order, left padding, chosen and rejected in separate calls;
(c) onnxruntime in Python on the same model.onnx, the same batches as (b);
(e) our binary again on the eager-attention export of the same checkpoint (MODEL/eager), to show
    what the fused-attention export (MODEL/model.onnx, GroupQueryAttention) adds to sorting;
(f) our binary on MODEL/model.onnx with --share_prefixes false (one text per row), to show what
    computing each prompt once for its answers adds.
All use the same number of threads (the cores available, cgroup-aware). pairs/s counts the time
from the first rendered text to the last score, model loading excluded for all three; our
binary's whole process wall-clock time is reported too. Prints the table, checks the targets,
checks that the verdicts agree, and writes bench-models/bench-results.json.

A benchmark, not a test: it exits non-zero only when a system fails or verdicts disagree beyond
float noise, never because a speed target is missed.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "export"))

import pairs as bench_pairs  # noqa: E402

SHARED = os.path.join(ROOT, "..", "shared")
LLMBAR = os.path.join(SHARED, "data", "reward-bench-llmbar", "llmbar.jsonl")
MODEL = os.path.join(ROOT, "bench-models", "llama-30m-rm")
BIN = os.path.join(ROOT, "target", "release", "rewardbench")
PAIRS = os.path.join(ROOT, "bench-models", "bench-pairs.jsonl")
RESULTS = os.path.join(ROOT, "bench-models", "bench-results.json")
# Verdicts that differ only where |chosen - rejected| is below this are float noise, not errors.
NEAR_TIE = 1e-4

TARGETS = {
    "speedup_vs_pytorch": 3.0,
    "speedup_vs_onnxruntime_python": 1.3,
    "padding_ratio_max": 0.05,
    "non_ort_share_max": 0.05,
}


def available_cores() -> int:
    """CPUs this process may use: affinity mask, capped by a cgroup v2/v1 CPU quota."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = None
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            q, p = fh.read().split()[:2]
            if q != "max":
                quota = int(q) / int(p)
    except (OSError, ValueError):
        try:
            with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as fq, open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as fp:
                q, p = int(fq.read()), int(fp.read())
                if q > 0:
                    quota = q / p
        except (OSError, ValueError):
            pass
    if quota:
        n = min(n, max(1, int(quota)))
    return max(1, n)


def run_binary(binary, model, dataset, threads, batch_size, extra=()):
    """Runs our binary into a temporary folder; returns the command, its wall-clock time, the
    summary, the run record (`{name}_run.json`: throughput, time split) and the CSV rows."""
    name = os.path.basename(os.path.normpath(model))
    with tempfile.TemporaryDirectory(prefix="rb-bench-") as out:
        cmd = [binary, "--model", model, "--dataset", dataset, "--batch_size", str(batch_size),
               "--output_dir", out, "--quiet", "--threads", str(threads), *extra]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"our binary failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
        with open(os.path.join(out, f"{name}.json")) as fh:
            summary = json.load(fh)
        run_path = os.path.join(out, f"{name}_run.json")
        run = {}
        if os.path.exists(run_path):
            with open(run_path) as fh:
                run = json.load(fh)
        with open(os.path.join(out, f"{name}_scores.csv"), newline="") as fh:
            rows = list(csv.DictReader(fh))
    return {"command": " ".join(cmd), "wall": wall, "summary": summary, "run": run, "rows": rows}


def run_ours(binary, model, dataset, threads, batch_size, extra=()):
    r = run_binary(binary, model, dataset, threads, batch_size, extra)
    ev = dict(r["summary"].get("evaluator", {}))
    ev.update(r["run"])
    return {"command": r["command"], "process_wall_seconds": r["wall"], "evaluator": ev,
            "accuracy": r["summary"].get("accuracy"),
            "scores_chosen": [float(rec["score_chosen"]) for rec in r["rows"]],
            "scores_rejected": [float(rec["score_rejected"]) for rec in r["rows"]]}


def max_diff(x, y):
    return max(max(abs(a - b) for a, b in zip(x["scores_chosen"], y["scores_chosen"])),
               max(abs(a - b) for a, b in zip(x["scores_rejected"], y["scores_rejected"])))


def verdicts(x):
    return [c > r for c, r in zip(x["scores_chosen"], x["scores_rejected"])]


def compare(name_x, x, name_y, y):
    vx, vy = verdicts(x), verdicts(y)
    diff_rows = [i for i, (a, b) in enumerate(zip(vx, vy)) if a != b]
    margins = [min(abs(x["scores_chosen"][i] - x["scores_rejected"][i]),
                   abs(y["scores_chosen"][i] - y["scores_rejected"][i])) for i in diff_rows]
    return {"pair": f"{name_x} vs {name_y}", "max_abs_score_diff": max_diff(x, y),
            "verdicts_differ": len(diff_rows), "rows": diff_rows[:20],
            "serious": sum(m > NEAR_TIE for m in margins)}


def fmt_ratio(v):
    return "n/a" if v is None else f"{v:.2f}x"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--bin", default=BIN)
    ap.add_argument("--llmbar", default=LLMBAR)
    ap.add_argument("--pairs", type=int, default=bench_pairs.N_PAIRS, help="number of pairs (default 500)")
    ap.add_argument("--threads", type=int, default=0, help="threads for all systems (default: cores available)")
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--systems", default="abcef", help="subset of a/b/c/e/f to run (default abcef)")
    ap.add_argument("--results", default=RESULTS)
    a = ap.parse_args(argv)

    if not os.path.exists(a.llmbar):
        bar = "!" * 78
        print(f"{bar}\nBENCH SKIPPED: {a.llmbar} not found.\n"
              f"The benchmark needs the shared LLMBar data (../shared next to this checkout).\n{bar}")
        return 0
    for p, what in ((os.path.join(a.model, "model.onnx"), "run export/make_bench_model.py"),
                    (a.bin, "run cargo build --release")):
        if "a" in a.systems or "model.onnx" in p:
            if not os.path.exists(p):
                raise SystemExit(f"{p} missing: {what}")

    threads = a.threads or available_cores()
    repeats = bench_pairs.build_pairs(a.llmbar, PAIRS, a.pairs)
    import reference  # export/reference.py

    rows = reference.read_jsonl(PAIRS)
    n = len(rows)
    print(f"bench: {n} pairs ({n - repeats} LLMBar rows + {repeats} repeats) from {a.llmbar}")
    print(f"model: {a.model}; batch size {a.batch_size}; {threads} threads for every system")

    res = {}
    if "a" in a.systems:
        print("(a) our binary ...", flush=True)
        res["a"] = run_ours(a.bin, a.model, PAIRS, threads, a.batch_size)
    if "e" in a.systems and os.path.exists(os.path.join(a.model, "eager", "model.onnx")):
        print("(e) our binary on the eager-attention export ...", flush=True)
        res["e"] = run_ours(a.bin, os.path.join(a.model, "eager"), PAIRS, threads, a.batch_size)
    if "f" in a.systems:
        print("(f) our binary without prefix sharing ...", flush=True)
        res["f"] = run_ours(a.bin, a.model, PAIRS, threads, a.batch_size, ("--share_prefixes", "false"))
    if "b" in a.systems:
        print("(b) transformers + PyTorch (RewardBench's way) ...", flush=True)
        from python_systems import score_torch
        res["b"] = score_torch(a.model, rows, threads, a.batch_size, reference)
    if "c" in a.systems:
        print("(c) onnxruntime in Python ...", flush=True)
        from python_systems import score_onnxruntime
        res["c"] = score_onnxruntime(a.model, os.path.join(a.model, "model.onnx"), rows, threads,
                                     a.batch_size, reference)

    # --- throughput
    pps = {}
    ours = res.get("a")
    for k in ("a", "e", "f"):
        if k in res:
            ev = res[k]["evaluator"]
            tm = ev.get("timings", {})
            score_s = tm.get("total_seconds") or ev.get("inference_seconds") or res[k]["process_wall_seconds"]
            res[k]["scoring_seconds"] = score_s
            pps[k] = n / score_s
            res[k]["pairs_per_second_wall"] = n / res[k]["process_wall_seconds"]
    for k in ("b", "c"):
        if k in res:
            pps[k] = n / res[k]["total_seconds"]
            res[k]["pairs_per_second"] = pps[k]
            res[k]["pairs_per_second_with_load"] = n / (res[k]["total_seconds"] + res[k]["load_seconds"])

    labels = {"a": "(a) rewardbench (ours)", "b": "(b) PyTorch, RewardBench's way", "c": "(c) onnxruntime Python",
              "e": "(e) ours, eager-attention export", "f": "(f) ours, no prefix sharing"}
    print()
    print(f"{'system':34s} {'pairs/s':>9s} {'seconds':>9s} {'load s':>8s} {'padding':>8s}")
    for k in "abcef":
        if k not in res:
            continue
        r = res[k]
        if k in ("a", "e", "f"):
            pad = r["evaluator"].get("padding_ratio")
            secs, load = r["scoring_seconds"], r["process_wall_seconds"] - r["scoring_seconds"]
        else:
            pad, secs, load = r["padding_ratio"], r["total_seconds"], r["load_seconds"]
        pad_s = "n/a" if pad is None else f"{100 * pad:.1f}%"
        print(f"{labels[k]:34s} {pps[k]:9.2f} {secs:9.2f} {load:8.2f} {pad_s:>8s}")

    ratios = {}
    if "a" in pps:
        for k, key in (("b", "speedup_vs_pytorch"), ("c", "speedup_vs_onnxruntime_python")):
            if k in pps:
                ratios[key] = pps["a"] / pps[k]
                # end to end: our whole process vs the baseline's load + scoring
                ratios[key + "_end_to_end"] = ours["pairs_per_second_wall"] / res[k]["pairs_per_second_with_load"]
    if "e" in pps and "b" in pps:
        ratios["eager_export_speedup_vs_pytorch"] = pps["e"] / pps["b"]
    if "e" in pps and "a" in pps:
        ratios["fused_vs_eager_export"] = pps["a"] / pps["e"]
    if "f" in pps and "a" in pps:
        ratios["prefix_sharing_gain"] = pps["a"] / pps["f"]
    if "e" in pps and "f" in pps:
        ratios["fused_vs_eager_export_one_text_per_row"] = pps["f"] / pps["e"]
    if ratios:
        print()
        print(f"ours vs (b): {fmt_ratio(ratios.get('speedup_vs_pytorch'))} "
              f"(end to end incl. loading: {fmt_ratio(ratios.get('speedup_vs_pytorch_end_to_end'))})")
        print(f"ours vs (c): {fmt_ratio(ratios.get('speedup_vs_onnxruntime_python'))} "
              f"(end to end incl. loading: {fmt_ratio(ratios.get('speedup_vs_onnxruntime_python_end_to_end'))})")
        if "fused_vs_eager_export" in ratios:
            print(f"ours on the eager export vs (b): {fmt_ratio(ratios.get('eager_export_speedup_vs_pytorch'))}; "
                  f"fused vs eager export: {fmt_ratio(ratios.get('fused_vs_eager_export'))}")
        if "prefix_sharing_gain" in ratios:
            shared = res["a"]["evaluator"].get("shared_prefix_tokens")
            print(f"prefix sharing: {fmt_ratio(ratios['prefix_sharing_gain'])} ((a) vs (f); {shared} tokens not computed); "
                  f"fused vs eager export, one text per row ((f) vs (e)): "
                  f"{fmt_ratio(ratios.get('fused_vs_eager_export_one_text_per_row'))}")

    # --- our time split
    split = {}
    if ours:
        ev = ours["evaluator"]
        tm = ev.get("timings", {})
        wall = ours["process_wall_seconds"]
        print()
        print(f"our process wall-clock: {wall:.2f} s ({ours['pairs_per_second_wall']:.2f} pairs/s); "
              f"binary's own pairs_per_second: {ev.get('pairs_per_second')}")
        if tm:
            total = tm.get("total_seconds")
            for key in ("prepare_seconds", "wait_seconds", "ort_seconds", "total_seconds"):
                if key in tm:
                    share = f" ({100 * tm[key] / total:.1f}% of scoring)" if total else ""
                    print(f"  {key:16s} {tm[key]:8.3f} s{share}")
            if total and "ort_seconds" in tm:
                split["non_ort_share"] = (total - tm["ort_seconds"]) / total
                split["non_ort_share_of_process_wall"] = (wall - tm["ort_seconds"]) / wall
                print(f"  non-ORT time: {100 * split['non_ort_share']:.1f}% of scoring time, "
                      f"{100 * split['non_ort_share_of_process_wall']:.1f}% of process wall-clock "
                      "(which includes loading the session and writing outputs)")
        else:
            print("  (this build reports no `timings`; inference_seconds = "
                  f"{ev.get('inference_seconds')})")
        texts = {(json.dumps(r.get("prompt")), t) for r in rows for t in (r["chosen"], r["rejected"])}
        split["distinct_texts"] = len(texts)
        print(f"  note: ours scores each distinct text once: {len(texts)} distinct of {2 * n} texts"
              + (" (the repeated rows are free for it)" if len(texts) < 2 * n else ""))
        if len(texts) < 2 * n and ratios:
            # if every text were distinct (unseen rows), ORT time would grow about in proportion
            scale = len(texts) / (2 * n)
            for key in ("speedup_vs_pytorch", "speedup_vs_onnxruntime_python"):
                if key in ratios:
                    ratios[key + "_without_repeat_saving_est"] = ratios[key] * scale
            print("  estimated ratios with no repeated texts: vs (b) "
                  f"{fmt_ratio(ratios.get('speedup_vs_pytorch_without_repeat_saving_est'))}, vs (c) "
                  f"{fmt_ratio(ratios.get('speedup_vs_onnxruntime_python_without_repeat_saving_est'))}")

    # --- agreement
    comps = []
    keys = [k for k in "abcef" if k in res]
    for i, x in enumerate(keys):
        for y in keys[i + 1:]:
            comps.append(compare(labels[x].split()[0], res[x], labels[y].split()[0], res[y]))
    if comps:
        print()
        for c in comps:
            extra = f" (rows {c['rows']}, {c['serious']} beyond near-tie {NEAR_TIE:g})" if c["verdicts_differ"] else ""
            print(f"{c['pair']}: max |score diff| {c['max_abs_score_diff']:.2e}; "
                  f"verdicts differ on {c['verdicts_differ']} of {n}{extra}")
        margins = [abs(c_ - r_) for c_, r_ in zip(res[keys[0]]["scores_chosen"], res[keys[0]]["scores_rejected"])]
        print(f"smallest |chosen - rejected| margin ({labels[keys[0]]}): {min(margins):.2e}")

    # --- targets
    checks = {}
    if "speedup_vs_pytorch" in ratios:
        checks["speedup_vs_pytorch >= 3"] = ratios["speedup_vs_pytorch"] >= TARGETS["speedup_vs_pytorch"]
    if "speedup_vs_onnxruntime_python" in ratios:
        checks["speedup_vs_onnxruntime_python >= 1.3"] = (
            ratios["speedup_vs_onnxruntime_python"] >= TARGETS["speedup_vs_onnxruntime_python"])
    if ours and ours["evaluator"].get("padding_ratio") is not None:
        checks["padding <= 5%"] = ours["evaluator"]["padding_ratio"] <= TARGETS["padding_ratio_max"]
    if "non_ort_share" in split:
        checks["non-ORT time <= 5% (of scoring time)"] = split["non_ort_share"] <= TARGETS["non_ort_share_max"]
    if comps:
        checks["verdicts agree"] = all(c["serious"] == 0 for c in comps)
    print()
    for k, ok in checks.items():
        print(f"target {k:40s} {'MET' if ok else 'NOT MET'}")

    out = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus_available": available_cores(), "threads_used": threads},
        "model": os.path.relpath(a.model, ROOT),
        "pairs": n, "repeats": repeats, "batch_size": a.batch_size,
        "pairs_per_second": pps, "ratios": ratios, "our_time_split": split, "targets": checks,
        "agreement": comps,
        "systems": {k: {kk: vv for kk, vv in v.items() if not kk.startswith("scores_")} for k, v in res.items()},
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.results)), exist_ok=True)
    with open(a.results, "w") as fh:
        json.dump(out, fh, indent=2)
        fh.write("\n")
    print(f"\nwrote {a.results}")
    return 0 if checks.get("verdicts agree", True) else 1


if __name__ == "__main__":
    sys.exit(main())
