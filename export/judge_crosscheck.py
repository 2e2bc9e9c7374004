#!/usr/bin/env python3
"""Cross-check `rewardbench gen` against RewardBench's own judge code (stdlib only).

    python3 export/judge_crosscheck.py [--bin target/release/rewardbench] \\
        [--settings v1 v1_ratings rb2 rb2_ratings] [--json report.json] [--keep DIR]

For each setting it starts a fresh stand-in judge (export/judge_standin.py, ``--port 0``), runs

    OPENAI_API_KEY=dummy OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 \\
        rewardbench gen --model gpt-4o-2024-08-06 --dataset fixtures/judge/<v1|rb2>_rows.jsonl \\
        --output_dir OUT --quiet [--score_w_ratings]

and compares ``OUT/openai/gpt-4o-2024-08-06.json`` and ``..._outputs.jsonl`` with
fixtures/judge/reference/<setting>.json (written by export/judge_reference.py from upstream's
scripts): per-row ``results`` and ``scores`` (by id), row order, per-subset values, RB2 Ties
(against both 0.1.4's and HEAD's composite) and Score, v1 section scores, and what the stand-in
saw (request counts, 500s, request parameters, and the placement-free digests of every
prompt). Prints one table and every difference; exits 1 when a per-row value, a non-Ties subset,
HEAD's Ties / Score or the set of prompts differs, 0 otherwise (known, explained differences such
as the RB2 row order or 0.1.4's Ties are reported, not failed).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from judge_reference import (  # noqa: E402  (stdlib-only at module level)
    JUDGE, RB2_ROWS, RB2_SUBSETS, REF_DIR, REPO, SETTINGS, V1_ROWS, StandIn, read_jsonl, request_summary)

TOL = 1e-12


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= TOL


def same_list(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))


def run_ours(binary: Path, setting: str, out: Path, log: Path) -> dict:
    protocol, ratings = SETTINGS[setting]
    data = V1_ROWS if protocol == "v1" else RB2_ROWS
    with StandIn(log) as srv:
        env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")}
        env.update(OPENAI_API_KEY="dummy", OPENAI_BASE_URL=srv.base_url)
        cmd = [str(binary), "gen", "--model", JUDGE, "--dataset", str(data.relative_to(REPO)),
               "--output_dir", str(out), "--quiet"] + (["--score_w_ratings"] if ratings else [])
        p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"{setting}: rewardbench gen failed (rc {p.returncode}):\n{p.stderr[-4000:]}")
    summary = json.loads((out / "openai" / f"{JUDGE}.json").read_text())
    rows = read_jsonl(out / "openai" / f"{JUDGE}_outputs.jsonl")
    return {"cmd": cmd, "summary": summary, "rows": rows, "requests": request_summary(read_jsonl(log)),
            "stdout": p.stdout, "stderr": p.stderr}


def compare(setting: str, ref: dict, ours: dict) -> dict:
    protocol, ratings = SETTINGS[setting]
    fails, notes = [], []
    ref_rows = {r["id"]: r for r in ref["rows"]}
    our_rows = {r["id"]: r for r in ours["rows"]}
    if set(ref_rows) != set(our_rows):
        fails.append(f"row ids differ: only upstream {sorted(set(ref_rows) - set(our_rows), key=str)}, "
                     f"only ours {sorted(set(our_rows) - set(ref_rows), key=str)}")
    n_res = n_sc = n_sc_cmp = 0
    for rid, r in ref_rows.items():
        o = our_rows.get(rid)
        if o is None:
            continue
        if o.get("subset") != r["subset"]:
            fails.append(f"{rid}: subset {o.get('subset')!r} vs upstream {r['subset']!r}")
        if close(o.get("results"), r["results"]):
            n_res += 1
        else:
            fails.append(f"{rid}: results {o.get('results')} vs upstream {r['results']}")
        if "scores" in r:
            n_sc_cmp += 1
            if same_list(o.get("scores"), r["scores"]):
                n_sc += 1
            else:
                fails.append(f"{rid}: scores {o.get('scores')} vs upstream {r['scores']}")
    ref_order = [r["id"] for r in ref["rows"]]
    our_order = [r["id"] for r in ours["rows"]]
    order_same = ref_order == our_order
    if not order_same:
        data_order = [r["id"] for r in read_jsonl(V1_ROWS if protocol == "v1" else RB2_ROWS)]
        why = ("ours = dataset order; upstream = non-Ties rows then Ties rows (run_generative_v2 filters the "
               "two apart and concatenates them)") if our_order == data_order else "ours is not the dataset order"
        (notes if our_order == data_order else fails).append(f"row order differs: {why}")

    s = ours["summary"]
    sub_cmp = {}
    for k, v in ref["subsets"].items():
        ov = s.get(k)
        if protocol == "rb2" and k == "Ties":
            head = ref["ties"]["head"]
            v014 = ref["ties"]["rewardbench_0.1.4"]
            sub_cmp[k] = {"ours": ov, "upstream_0.1.4": v014, "head": head,
                          "equal_head": close(ov, head), "equal_0.1.4": close(ov, v014)}
            if not close(ov, head):
                fails.append(f"Ties {ov} vs HEAD composite {head}")
            if not close(ov, v014):
                notes.append(f"Ties {ov!r} = HEAD's composite; the 0.1.4 script's process_single_model gives "
                             f"{v014!r} (margin term: HEAD averages tanh(min(cim_ref, cim_tied)/diff - 1) over all "
                             f"common prompts with inf->1 and NaN->0; 0.1.4 only over diff > 0)")
        else:
            sub_cmp[k] = {"ours": ov, "upstream": v, "equal": close(ov, v)}
            if not close(ov, v):
                fails.append(f"subset {k}: {ov} vs upstream {v}")
    extra = [k for k in s if k in RB2_SUBSETS and k not in ref["subsets"]]
    if extra:
        fails.append(f"subsets only ours: {extra}")
    score = None
    if protocol == "rb2":
        score = {"ours": s.get("Score"), "upstream_0.1.4": ref["Score"], "head": ref["Score_head"]}
        if not close(s.get("Score"), ref["Score_head"]):
            fails.append(f"Score {s.get('Score')} vs mean with HEAD Ties {ref['Score_head']}")
        if not close(s.get("Score"), ref["Score"]):
            notes.append(f"Score {s.get('Score')!r} vs {ref['Score']!r} with 0.1.4's Ties (the Ties difference / 6)")
    sections = None
    if protocol == "v1":
        ours_sec = s.get("section_scores") or {}
        sections = {"ours": ours_sec, "upstream": ref["sections"]}
        for k, v in ref["sections"].items():
            if k in ours_sec:
                if not close(ours_sec[k], v):
                    fails.append(f"section {k}: {ours_sec[k]} vs upstream {v}")
            else:
                notes.append(f"section {k!r}: upstream's calculate_scores_per_section prints {v} for a section with no "
                             f"subset in the data; ours omits it (upstream only prints sections, never saves them)")

    rq_u, rq_o = ref["requests"], ours["requests"]
    du, do = list(rq_u["digests"]), list(rq_o["digests"])
    only_u = sorted(set(du) - set(do))
    only_o = sorted(set(do) - set(du))
    prompts_same = du == do
    if not prompts_same:
        fails.append(f"prompts differ (placement-free): {len(only_u)} only upstream, {len(only_o)} only ours, "
                     f"counts {len(du)} vs {len(do)}")
    params_same = json.dumps(rq_u["params"], sort_keys=True) == json.dumps(rq_o["params"], sort_keys=True)
    if not params_same:
        notes.append("request parameters: " + params_diff(rq_u["params"], rq_o["params"]))
    if (rq_u["status_500"], rq_u["total"]) != (rq_o["status_500"], rq_o["total"]):
        notes.append(f"requests: upstream {rq_u['total']} ({rq_u['status_500']} x 500), ours {rq_o['total']} "
                     f"({rq_o['status_500']} x 500)")
    return {
        "setting": setting, "rows": len(ref_rows), "results_equal": n_res, "scores_compared": n_sc_cmp,
        "scores_equal": n_sc, "order_same": order_same, "subsets": sub_cmp, "score": score, "sections": sections,
        "requests": {"upstream": {k: rq_u[k] for k in ("total", "status_500")},
                     "ours": {k: rq_o[k] for k in ("total", "status_500")},
                     "prompts_same": prompts_same, "params_same": params_same},
        "fails": fails, "notes": notes, "cmd": ours["cmd"],
    }


def params_diff(up: list, ours: list) -> str:
    """Key-level differences between the distinct request parameter sets, matched by (roles, max_tokens)."""
    def key(p):
        return (tuple(p.get("roles") or ()), p.get("max_tokens"))

    ou = {key(p): p for p in ours}
    parts = []
    for p in up:
        o = ou.get(key(p))
        if o is None:
            parts.append(f"upstream {json.dumps(p)} has no counterpart in ours")
            continue
        diffs = []
        for k in sorted(set(p) | set(o)):
            a, b = p.get(k, "<absent>"), o.get(k, "<absent>")
            if json.dumps(a) != json.dumps(b):
                diffs.append(f"{k}: upstream {json.dumps(a)} / ours {json.dumps(b)}")
        if diffs:
            parts.append(f"[{'+'.join(p.get('roles') or [])}, max_tokens {p.get('max_tokens')}] " + "; ".join(diffs))
    for k, o in ou.items():
        if k not in {key(p) for p in up}:
            parts.append(f"ours {json.dumps(o)} has no counterpart upstream")
    return " | ".join(parts)


def fmt(x) -> str:
    return "-" if x is None else f"{x:.6f}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "rewardbench"))
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--json", help="write the comparison as JSON here")
    ap.add_argument("--keep", help="keep our outputs and the stand-in logs under this folder")
    args = ap.parse_args()
    binary = Path(args.bin).resolve()
    reports = []
    with tempfile.TemporaryDirectory(prefix="judge_xcheck_") as tmp:
        base = Path(args.keep).resolve() if args.keep else Path(tmp)
        for setting in args.settings:
            ref = json.loads((REF_DIR / f"{setting}.json").read_text())
            d = base / setting
            d.mkdir(parents=True, exist_ok=True)
            ours = run_ours(binary, setting, d / "out", d / "requests.jsonl")
            reports.append(compare(setting, ref, ours))

    print(f"{'setting':<12} {'rows':>4} {'results':>8} {'scores':>7} {'order':>6} {'subsets':>8} "
          f"{'Ties ours':>10} {'0.1.4':>9} {'HEAD':>9} {'Score ours':>10} {'0.1.4':>9} {'HEAD':>9} "
          f"{'req up/ours':>11} {'prompts':>7}")
    for r in reports:
        nties = {k: v for k, v in r["subsets"].items() if k != "Ties"}
        sub_ok = sum(v["equal"] for v in nties.values())
        t = r["subsets"].get("Ties")
        sc = r["score"]
        print(f"{r['setting']:<12} {r['rows']:>4} {r['results_equal']:>4}/{r['rows']:<3} "
              f"{(str(r['scores_equal']) + '/' + str(r['scores_compared'])) if r['scores_compared'] else '-':>7} "
              f"{'same' if r['order_same'] else 'differs':>6} {sub_ok:>4}/{len(nties):<3} "
              f"{fmt(t and t['ours']):>10} {fmt(t and t['upstream_0.1.4']):>9} {fmt(t and t['head']):>9} "
              f"{fmt(sc and sc['ours']):>10} {fmt(sc and sc['upstream_0.1.4']):>9} {fmt(sc and sc['head']):>9} "
              f"{str(r['requests']['upstream']['total']) + '/' + str(r['requests']['ours']['total']):>11} "
              f"{'same' if r['requests']['prompts_same'] else 'DIFFER':>7}")
    bad = False
    for r in reports:
        for f in r["fails"]:
            print(f"FAIL {r['setting']}: {f}")
            bad = True
        for n in r["notes"]:
            print(f"note {r['setting']}: {n}")
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2, ensure_ascii=False) + "\n")
    print("all per-row values, subsets, HEAD Ties/Score and prompts agree" if not bad else "DIFFERENCES (see FAIL lines)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
