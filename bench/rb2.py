#!/usr/bin/env python3
"""`make bench`, RewardBench 2 part: prompts with 4 completions each, scored side by side by

(a) our binary: `rewardbench v2 --model MODEL --dataset ROWS.jsonl --batch_size 8 --output_dir OUT
    --quiet` (plus --threads when the subcommand takes it), timed as a whole process: the
    wall clock includes loading the model and writing the outputs;
(b) RewardBench's own RB2 Python path, run by the reference venv's interpreter
    (rewardbench==0.1.4; bench/rb2_torch.py): the same checkpoint's HF safetensors in float32 on
    CPU, load_bon_dataset_v2, RewardBenchPipeline with run_v2's kwargs (truncation, padding,
    max_length 2048, function_to_apply "none"), reroll_and_score_dataset, at each of
    --batch-sizes (64 is run_v2's default; the first one listed is the headline). Its time runs
    from reading and rendering the rows to the last re-rolled score; model loading is timed apart.

Rows: bench/rb2_rows.py builds RB2-shaped rows (id, prompt, chosen [1], rejected [3],
num_correct, num_incorrect, total_completions 4, subset) from ../shared/data/reward-bench-llmbar:
each LLMBar prompt with its chosen answer, its rejected answer and the rejected answers of the
next two rows of the same LLMBar subset; LLMBar's five subsets map onto Factuality, Precise IF,
Math, Safety and Focus (no Ties). Skips loudly (exit 0) when ../shared is absent, and runs (a)
alone, loudly, when the reference venv is missing (--wait-ref to poll for it).

Both use the same thread count (the cores available, cgroup-aware, unless --threads). Prints a
table of prompts/s and completions/s, the ratios ours/theirs (ours with loading included against
theirs without it, and both end to end), agreement (per-completion max |score diff|, prompts
whose `results` differ, per-subset score diff), and writes bench-models/bench-rb2-results.json.

A benchmark, not a test: exits non-zero only when a system fails or they disagree grossly
(a `results` difference where the top two scores are further apart than float noise, or a
score difference above --max-score-diff), never because of speed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import rb2_rows  # noqa: E402

LLMBAR = os.path.join(ROOT, "..", "shared", "data", "reward-bench-llmbar", "llmbar.jsonl")
MODEL = os.path.join(ROOT, "bench-models", "llama-30m-rm")
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "rewardbench")
REF_PYTHON = os.environ.get("REWARDBENCH_REF_PYTHON", "/work/refvenv/bin/python")
RESULTS = os.path.join(ROOT, "bench-models", "bench-rb2-results.json")
# A `results` difference on a prompt whose best two scores are closer than this is float noise.
NEAR_TIE = 1e-4
BAR = "!" * 78


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


def v2_help(binary: str) -> str | None:
    """The `v2 --help` text, or None when the binary has no `v2` subcommand."""
    if not os.path.exists(binary):
        return None
    try:
        p = subprocess.run([binary, "v2", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = p.stdout + p.stderr
    return text if p.returncode == 0 and "--dataset" in text else None


def ref_ready(py: str) -> bool:
    if not os.path.exists(py):
        return False
    p = subprocess.run([py, "-c", "import rewardbench, rewardbench.utils, torch, transformers; "
                        "from rewardbench import load_bon_dataset_v2, reroll_and_score_dataset"],
                       capture_output=True, text=True)
    return p.returncode == 0


def run_ours(binary, model, dataset, threads, batch_size, with_threads):
    name = os.path.basename(os.path.normpath(model))
    out = tempfile.mkdtemp(prefix="rb2-bench-ours-")
    try:
        cmd = [binary, "v2", "--model", model, "--dataset", dataset, "--batch_size", str(batch_size),
               "--output_dir", out, "--quiet"]
        if with_threads:
            cmd += ["--threads", str(threads)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"(a) our binary failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
        with open(os.path.join(out, f"{name}.json")) as fh:
            summary = json.load(fh)
        rows = []
        with open(os.path.join(out, f"{name}_outputs.jsonl")) as fh:
            for line in fh:
                if line.strip():
                    r = json.loads(line)
                    rows.append({"id": str(r["id"]), "subset": r["subset"], "num_correct": r.get("num_correct"),
                                 "scores": [float(x[0]) if isinstance(x, list) else float(x) for x in r["scores"]],
                                 "results": float(r["results"])})
        run = {}
        run_path = os.path.join(out, f"{name}_run.json")
        if os.path.exists(run_path):
            with open(run_path) as fh:
                run = json.load(fh)
        files = sorted(os.listdir(out))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    ev = dict(summary.get("evaluator", {})) if isinstance(summary.get("evaluator"), dict) else {}
    ev.update(run)
    return {"command": " ".join(cmd), "process_wall_seconds": wall, "summary": summary, "evaluator": ev,
            "output_files": files, "rows": rows}


def run_ref(py, model, dataset, threads, batch_sizes):
    out = tempfile.mktemp(prefix="rb2-bench-ref-", suffix=".json")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    cmd = [py, os.path.join(HERE, "rb2_torch.py"), "--model", model, "--dataset", dataset,
           "--threads", str(threads), "--out", out, "--batch-sizes", *map(str, batch_sizes)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, text=True, stdout=sys.stdout, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"(b) RewardBench's RB2 path failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-4000:]}")
    with open(out) as fh:
        res = json.load(fh)
    os.unlink(out)
    res["process_wall_seconds"] = wall
    res["command"] = " ".join(cmd)
    return res


def compare(ours_rows, ref_rows):
    if len(ours_rows) != len(ref_rows):
        return {"error": f"row counts differ: ours {len(ours_rows)}, reference {len(ref_rows)}", "serious": 1}
    ref_by_id = {r["id"]: r for r in ref_rows}
    max_diff, n_completions, differ, serious, mismatched = 0.0, 0, [], 0, []
    for o in ours_rows:
        r = ref_by_id.get(o["id"])
        if r is None or r["subset"] != o["subset"] or len(r["scores"]) != len(o["scores"]):
            mismatched.append(o["id"])
            continue
        for x, y in zip(o["scores"], r["scores"]):
            max_diff = max(max_diff, abs(x - y))
            n_completions += 1
        if abs(o["results"] - r["results"]) > 1e-9:
            gaps = []
            for s in (o["scores"], r["scores"]):
                top = sorted(s, reverse=True)
                gaps.append(top[0] - top[1])
            differ.append(o["id"])
            if min(gaps) > NEAR_TIE:
                serious += 1
    return {"max_abs_score_diff": max_diff, "completions_compared": n_completions,
            "results_differ": len(differ), "results_differ_ids": differ[:20],
            "serious": serious + len(mismatched), "mismatched_ids": mismatched[:20]}


def subset_scores(rows):
    acc = {}
    for r in rows:
        acc.setdefault(r["subset"], []).append(r["results"])
    return {k: sum(v) / len(v) for k, v in sorted(acc.items())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=200, help="number of RB2 prompts, 4 completions each (default 200)")
    ap.add_argument("--threads", type=int, default=0, help="threads for both systems (default: cores available)")
    ap.add_argument("--batch-size", type=int, default=8, help="our binary's --batch_size (default 8)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 8],
                    help="batch sizes for (b), RewardBench's RB2 path; the first is the headline "
                         "(default: 64 8; 64 is run_v2's default)")
    ap.add_argument("--systems", default="ab", help="subset of a/b to run (default ab)")
    ap.add_argument("--model", default=MODEL, help="model folder: HF checkpoint + model.onnx (default bench-models/llama-30m-rm)")
    ap.add_argument("--bin", default=BIN, help="our binary (default $CARGO_TARGET_DIR or target, /release/rewardbench)")
    ap.add_argument("--ref-python", default=REF_PYTHON,
                    help="python of the venv holding rewardbench==0.1.4 (env REWARDBENCH_REF_PYTHON; "
                         "default /work/refvenv/bin/python; see export/crosscheck_reference.py to build it)")
    ap.add_argument("--wait-ref", type=float, default=0, metavar="SECONDS",
                    help="poll this long for the reference venv to appear (default 0: run (a) alone if absent)")
    ap.add_argument("--llmbar", default=LLMBAR, help="LLMBar rows (default ../shared/data/reward-bench-llmbar/llmbar.jsonl)")
    ap.add_argument("--rows-out", default=None, help="also keep the generated RB2 rows here (default: a temp folder)")
    ap.add_argument("--max-score-diff", type=float, default=1e-2,
                    help="a per-completion score difference above this is gross disagreement (default 1e-2)")
    ap.add_argument("--results", default=RESULTS, help="results JSON (default bench-models/bench-rb2-results.json)")
    a = ap.parse_args(argv)

    if not os.path.exists(a.llmbar):
        print(f"{BAR}\nRB2 BENCH SKIPPED: {a.llmbar} not found.\n"
              f"The benchmark needs the shared LLMBar data (../shared next to this checkout).\n{BAR}")
        return 0
    if not os.path.exists(os.path.join(a.model, "config.json")):
        raise SystemExit(f"{a.model} missing: run export/make_bench_model.py")
    threads = a.threads or available_cores()

    systems = set(a.systems)
    help_text = None
    if "a" in systems:
        help_text = v2_help(a.bin)
        if help_text is None:
            raise SystemExit(f"{a.bin}: no `v2` subcommand (or no binary): run cargo build --release")
    if "b" in systems and not ref_ready(a.ref_python):
        deadline = time.monotonic() + a.wait_ref
        if a.wait_ref > 0:
            print(f"waiting up to {a.wait_ref:.0f} s for {a.ref_python} with rewardbench ...", flush=True)
        while not ref_ready(a.ref_python) and time.monotonic() < deadline:
            time.sleep(min(60, max(1, deadline - time.monotonic())))
        if not ref_ready(a.ref_python):
            print(f"{BAR}\nRB2 REFERENCE SKIPPED: {a.ref_python} cannot import rewardbench (0.1.4).\n"
                  "Build it as export/crosscheck_reference.py says, or pass --ref-python / "
                  f"$REWARDBENCH_REF_PYTHON.\nRunning (a) alone: no ratio, no agreement.\n{BAR}")
            systems.discard("b")

    tmp = tempfile.mkdtemp(prefix="rb2-bench-rows-")
    try:
        rows_path = a.rows_out or os.path.join(tmp, "rb2-rows.jsonl")
        rows, subset_map, repeats = rb2_rows.build_rows(a.llmbar, a.prompts)
        rb2_rows.write_jsonl(rows, rows_path)
        n = len(rows)
        n_comp = sum(r["total_completions"] for r in rows)
        print(f"bench rb2: {n} prompts x 4 completions = {n_comp} texts from {a.llmbar}"
              + (f" ({repeats} prompts repeated with new ids)" if repeats else ""))
        print(f"subsets: {', '.join(f'{k} -> {v}' for k, v in subset_map.items())}")
        print(f"model: {a.model}; {threads} threads for both systems")

        res = {}
        if "a" in systems:
            with_threads = "--threads" in help_text
            print(f"(a) our binary, rewardbench v2, batch size {a.batch_size} ...", flush=True)
            res["a"] = run_ours(a.bin, a.model, rows_path, threads, a.batch_size, with_threads)
            if not with_threads:
                print("  note: `v2 --help` shows no --threads; our binary chose its own thread count")
        if "b" in systems:
            print(f"(b) RewardBench 0.1.4's RB2 path (PyTorch fp32 CPU), batch sizes {a.batch_sizes} ...", flush=True)
            res["b"] = run_ref(a.ref_python, os.path.abspath(a.model), rows_path, threads, a.batch_sizes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # --- throughput table
    table = []
    if "a" in res:
        o = res["a"]
        wall = o["process_wall_seconds"]
        tm = o["evaluator"].get("timings", {}) if isinstance(o["evaluator"].get("timings"), dict) else {}
        score_s = tm.get("total_seconds") or o["evaluator"].get("inference_seconds")
        o["scoring_seconds"] = score_s
        table.append({"system": f"(a) ours, v2, batch {a.batch_size} (whole process)", "key": "a",
                      "seconds": wall, "load": None, "prompts_per_second": n / wall,
                      "completions_per_second": n_comp / wall, "padding": o["evaluator"].get("padding_ratio")})
        if score_s:
            table.append({"system": "(a) ours, _run.json timings.total_seconds", "key": "a_scoring",
                          "seconds": score_s, "load": wall - score_s, "prompts_per_second": n / score_s,
                          "completions_per_second": n_comp / score_s, "padding": None})
    if "b" in res:
        for bs in a.batch_sizes:
            r = res["b"]["runs"][str(bs)]
            table.append({"system": f"(b) RewardBench RB2 path, batch {bs}", "key": f"b{bs}",
                          "seconds": r["total_seconds"], "load": res["b"]["load_seconds"],
                          "prompts_per_second": n / r["total_seconds"],
                          "completions_per_second": n_comp / r["total_seconds"], "padding": r["padding_ratio"]})
    print()
    print(f"{'system':46s} {'prompts/s':>10s} {'compl./s':>10s} {'seconds':>9s} {'load s':>8s} {'padding':>8s}")
    for t in table:
        load = "incl." if t["key"] == "a" else f"{t['load']:.2f}"
        pad = "n/a" if t["padding"] is None else f"{100 * t['padding']:.1f}%"
        print(f"{t['system']:46s} {t['prompts_per_second']:10.2f} {t['completions_per_second']:10.2f} "
              f"{t['seconds']:9.2f} {load:>8s} {pad:>8s}")
    if "a" in res:
        print("(a)'s seconds are its whole process wall clock: loading the ONNX model, tokenizer, reading, "
              "scoring and writing outputs; (b)'s exclude loading (column `load s`) and interpreter start-up.")

    ratios = {}
    if "a" in res and "b" in res:
        o = res["a"]
        for bs in a.batch_sizes:
            r = res["b"]["runs"][str(bs)]
            ratios[f"vs_b{bs}"] = r["total_seconds"] / o["process_wall_seconds"]
            ratios[f"vs_b{bs}_end_to_end"] = (r["total_seconds"] + res["b"]["load_seconds"]) / o["process_wall_seconds"]
            if o.get("scoring_seconds"):
                ratios[f"vs_b{bs}_scoring_only"] = r["total_seconds"] / o["scoring_seconds"]
        print()
        for bs in a.batch_sizes:
            line = (f"ratio ours/theirs (prompts/s) vs (b) batch {bs}: {ratios[f'vs_b{bs}']:.2f}x "
                    f"(ours incl. loading vs theirs excl.); end to end (both incl. loading): "
                    f"{ratios[f'vs_b{bs}_end_to_end']:.2f}x")
            if f"vs_b{bs}_scoring_only" in ratios:
                line += f"; scoring only: {ratios[f'vs_b{bs}_scoring_only']:.2f}x"
            print(line)
        print(f"(b) process wall clock incl. python/torch start-up and all its batch sizes: "
              f"{res['b']['process_wall_seconds']:.2f} s")

    # --- agreement
    agreement = {}
    ok = True
    if "a" in res:
        summ = res["a"]["summary"]
        mine = subset_scores(res["a"]["rows"])
        # the summary's per-subset floats must be those of its own per-prompt results
        for s, v in mine.items():
            if s in summ and abs(float(summ[s]) - v) > 1e-9:
                print(f"(a) summary {s} = {summ[s]} but its outputs give {v}")
                ok = False
        if summ.get("Score") is not None:
            exp = sum(mine.values()) / len(mine)
            if abs(float(summ["Score"]) - exp) > 1e-9:
                print(f"(a) summary Score = {summ['Score']} but the mean of its subsets is {exp}")
                ok = False
    if "a" in res and "b" in res:
        print()
        for bs in a.batch_sizes:
            r = res["b"]["runs"][str(bs)]
            c = compare(res["a"]["rows"], r["rows"])
            if "error" in c:
                print(f"(a) vs (b) batch {bs}: {c['error']}")
                ok = False
                agreement[f"b{bs}"] = c
                continue
            theirs = r["subset_scores"]
            ours_sub = {k: float(v) for k, v in res["a"]["summary"].items()
                        if k in theirs and isinstance(v, (int, float))}
            c["subset_score_max_diff"] = max((abs(ours_sub[k] - theirs[k]) for k in ours_sub), default=None)
            c["subset_scores_ours"] = ours_sub
            c["subset_scores_theirs"] = theirs
            agreement[f"b{bs}"] = c
            extra = f" (ids {c['results_differ_ids']}; {c['serious']} beyond near-tie {NEAR_TIE:g})" if c["results_differ"] else ""
            ssd = c["subset_score_max_diff"]
            print(f"(a) vs (b) batch {bs}: max |score diff| {c['max_abs_score_diff']:.2e} over "
                  f"{c['completions_compared']} completions; results differ on {c['results_differ']} of {n} prompts"
                  f"{extra}; max subset-score diff {'n/a' if ssd is None else f'{ssd:.4f}'}")
            if c["serious"] or c["max_abs_score_diff"] > a.max_score_diff:
                ok = False
        if len(a.batch_sizes) > 1:
            b0, b1 = a.batch_sizes[0], a.batch_sizes[1]
            c = compare(res["b"]["runs"][str(b0)]["rows"], res["b"]["runs"][str(b1)]["rows"])
            agreement[f"b{b0}_vs_b{b1}"] = c
            print(f"(b) batch {b0} vs batch {b1}: max |score diff| {c.get('max_abs_score_diff', float('nan')):.2e}; "
                  f"results differ on {c.get('results_differ')} prompts")
        theirs = res["b"]["runs"][str(a.batch_sizes[0])]["subset_scores"]
        ours_mean = sum(subset_scores(res["a"]["rows"]).values()) / max(1, len(theirs))
        score = res["a"]["summary"].get("Score")
        print(f"mean of the subset scores: ours {ours_mean:.4f}, theirs (batch {a.batch_sizes[0]}) "
              f"{sum(theirs.values()) / len(theirs):.4f}; our summary's Score: "
              + ("null (it needs all six subsets; these rows have no Ties)" if score is None else f"{float(score):.4f}"))

    out = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus_available": available_cores(), "threads_used": threads,
                    "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "model": os.path.relpath(os.path.abspath(a.model), ROOT),
        "prompts": n, "completions": n_comp, "repeats": repeats, "subset_map": subset_map,
        "our_batch_size": a.batch_size, "reference_batch_sizes": a.batch_sizes,
        "timing_note": "(a): whole-process wall clock, model loading and output writing included; "
                       "(b): from load_bon_dataset_v2 (read + render) to the last re-rolled score, "
                       "model loading (load_seconds) and interpreter start-up excluded",
        "table": table, "ratios": ratios, "agreement": agreement, "ok": ok,
        "systems": {
            **({"a": {k: v for k, v in res["a"].items() if k != "rows"}} if "a" in res else {}),
            **({"b": {**{k: v for k, v in res["b"].items() if k != "runs"},
                      "runs": {bs: {k: v for k, v in r.items() if k != "rows"} for bs, r in res["b"]["runs"].items()}}}
               if "b" in res else {}),
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.results)), exist_ok=True)
    with open(a.results, "w") as fh:
        json.dump(out, fh, indent=2)
        fh.write("\n")
    print(f"\nwrote {a.results}")
    if not ok:
        print("RB2 BENCH: the systems disagree beyond float noise (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
