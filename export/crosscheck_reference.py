#!/usr/bin/env python3
"""Cross-check the committed fixture reference scores against the real RewardBench 0.1.4 CLI.

For every fixture model (fixtures/models/*/ with a reference/ folder) and every fixture data
file (fixtures/data/*.jsonl) this script:

1. converts the data file into the only local-JSON shape the 0.1.4 CLI accepts, the
   "conversation" form: ``chosen`` / ``rejected`` are full message lists whose last message is
   the answer (the CLI sets ``prompt = chosen[:-1]``, ``chosen = chosen[-1].content``,
   ``rejected = rejected[-1].content``). ``subset`` and ``id`` are kept; other columns are
   dropped. Core-set rows (string ``prompt``) become ``[user: prompt, assistant: answer]``;
   pref rows (``prompt`` = message list) become ``prompt + [assistant: answer]``;
   conversation rows are passed through. Roles are rewritten by index parity (even = user,
   odd = assistant, last = assistant), which is what RewardBench's
   ``prepare_dialogue_from_tokenizer`` does anyway (it ignores the stored ``role``);
2. runs the real CLI from the reference virtual environment::

       rewardbench --model <model> --dataset <converted.jsonl> --load_json --batch_size B \\
           --not_quantized --torch_dtype float32 --output_dir <tmp>/

   for B = 1 and B = 8, with HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1. The model is passed as a
   *relative* path (a symlink inside the temporary folder), because the CLI writes
   ``os.path.join(output_dir, f"{model}_outputs.jsonl")`` and an absolute model path would put
   the outputs next to the fixture;
3. reads ``<model>_outputs.jsonl`` and compares row by row with
   ``reference/<data-stem>.jsonl``: ``scores_chosen``/``scores_rejected`` against
   ``score_chosen``/``score_rejected`` (B = 1) or ``score_chosen_left8``/``score_rejected_left8``
   (B = 8), ``results`` against ``result`` / ``result_left8``, the rendered
   ``text_chosen``/``text_rejected``/``prompt`` strings for identity, and the CLI's summary
   ``accuracy`` with ``reference/<data-stem>.summary.json`` (``accuracy`` / ``accuracy_left8``).

It prints one table line per (model, file, B) and exits non-zero if any verdict or rendered
text differs, or if any score differs by more than ``--tol``.

Setting up the reference environment (outside the repository; CPU-only, offline except PyPI)::

    python3 -m venv /work/refvenv
    /work/refvenv/bin/pip install "rewardbench==0.1.4" "setuptools<70"
    # -> transformers 4.51.0 (pinned by rewardbench), torch from PyPI, datasets, trl, ...
    # setuptools<70 because rewardbench imports pkg_resources.

Patches needed in the installed copy (site-packages/rewardbench, 0.1.4) to run on CPU:

* ``rewardbench/models/pipeline.py`` line 44, ``RewardBenchPipeline.__call__``:
  ``).to("cuda")``  ->  ``).to(self.model.device)``
  (the tokenized batch is moved to CUDA unconditionally; this is the one patch the classifier
  path, which this script exercises, actually needs).
* ``rewardbench/rewardbench.py`` line 363, DPO branch (``--ref_model``):
  ``"load_in_8bit": True,``  ->  ``"load_in_8bit": torch.cuda.is_available(),``
  (DPO models are always loaded in bitsandbytes int8, which is GPU-only; not exercised here).
* No patch is needed for quantization of classifiers: ``--not_quantized --torch_dtype float32``
  loads the model in fp32 with ``device_map="auto"`` (CPU here).

Usage::

    python export/crosscheck_reference.py [--refvenv-python /work/refvenv/bin/python]
        [--batch-sizes 1 8] [--models tiny-llama-rm ...] [--data llmbar ...] [--keep]

The reference interpreter may also be given as ``$REWARDBENCH_REF_PYTHON``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FIXTURES = REPO / "fixtures"
DEFAULT_PY = os.environ.get("REWARDBENCH_REF_PYTHON", "/work/refvenv/bin/python")

# Run the console-script entry point through the given interpreter (no PATH lookup needed).
CLI_BOOTSTRAP = "import sys; sys.argv[0] = 'rewardbench'; from rewardbench.rewardbench import main; main()"


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _parity(messages: list[dict]) -> list[dict]:
    """Prompt messages get roles by index parity (even = user, odd = assistant)."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": m["content"]} for i, m in enumerate(messages)]


def to_conversation(row: dict) -> dict:
    """Convert one fixture row (core-set, pref or conversation shape) to conversation form."""
    if isinstance(row.get("chosen"), list):  # conversation shape
        prompt = row["chosen"][:-1]
        chosen = row["chosen"][-1]["content"]
        rejected = row["rejected"][-1]["content"]
    elif isinstance(row.get("prompt"), list):  # pref shape
        prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    else:  # core-set shape
        prompt = [{"role": "user", "content": row["prompt"]}]
        chosen, rejected = row["chosen"], row["rejected"]
    prompt = _parity(prompt)
    out = {
        "chosen": prompt + [{"role": "assistant", "content": chosen}],
        "rejected": prompt + [{"role": "assistant", "content": rejected}],
    }
    for k in ("subset", "id"):
        if k in row:
            out[k] = row[k]
    return out


def run_cli(py: str, workdir: Path, model_rel: str, data: Path, batch_size: int, out_dir: Path, extra: list[str]):
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        py, "-c", CLI_BOOTSTRAP,
        "--model", model_rel,
        "--dataset", str(data),
        "--load_json",
        "--batch_size", str(batch_size),
        "--not_quantized",
        "--torch_dtype", "float32",
        "--output_dir", str(out_dir) + "/",
    ] + extra
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        WANDB_MODE="disabled",
        HF_DATASETS_CACHE=str(workdir / "hf_datasets_cache"),
        TOKENIZERS_PARALLELISM="false",
    )
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    dt = time.time() - t0
    log = out_dir / "cli.log"
    log.write_text(" ".join(cmd) + "\n\n--- stdout ---\n" + proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    return proc, dt, log


def last_error(text: str) -> str:
    lines = [l for l in text.strip().splitlines() if l.strip()]
    for l in reversed(lines):
        if "Error" in l or "Exception" in l:
            return l.strip()
    return lines[-1].strip() if lines else "(no output)"


def compare(ref_rows: list[dict], out_rows: list[dict], batch_size: int) -> dict:
    sc, sr, res = ("score_chosen", "score_rejected", "result") if batch_size == 1 else (
        "score_chosen_left8", "score_rejected_left8", "result_left8")
    if batch_size not in (1, 8):
        raise ValueError("reference files only hold batch-1 and batch-8 (left padding) scores")
    rep = {"n": len(ref_rows), "n_out": len(out_rows), "max_diff": 0.0, "worst_row": None,
           "verdict_mismatch": [], "text_mismatch": [], "prompt_mismatch": [], "id_mismatch": []}
    if len(ref_rows) != len(out_rows):
        return rep
    for i, (r, o) in enumerate(zip(ref_rows, out_rows)):
        if "id" in r and "id" in o and r["id"] != o["id"]:
            rep["id_mismatch"].append(i)
        for a, b in ((r[sc], o["scores_chosen"]), (r[sr], o["scores_rejected"])):
            b = b[0] if isinstance(b, list) else b
            d = abs(float(a) - float(b))
            if d > rep["max_diff"]:
                rep["max_diff"], rep["worst_row"] = d, i
        if int(r[res]) != int(o["results"]):
            rep["verdict_mismatch"].append(i)
        if r["text_chosen"] != o["text_chosen"] or r["text_rejected"] != o["text_rejected"]:
            rep["text_mismatch"].append(i)
        if "prompt" in r and r["prompt"] != o["prompt"]:
            rep["prompt_mismatch"].append(i)
    return rep


def first_diff(a: str, b: str) -> str:
    n = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    return f"at char {n}: reference package {a[max(0, n - 30):n + 40]!r} vs fixture {b[max(0, n - 30):n + 40]!r}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--refvenv-python", default=DEFAULT_PY,
                    help="python of the venv holding rewardbench==0.1.4 (env REWARDBENCH_REF_PYTHON)")
    ap.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    ap.add_argument("--models", nargs="*", default=None, help="model folder names (default: all)")
    ap.add_argument("--data", nargs="*", default=None, help="data file stems (default: all)")
    ap.add_argument("--batch-sizes", nargs="*", type=int, default=[1, 8])
    ap.add_argument("--tol", type=float, default=1e-4, help="max abs score diff counted as agreement")
    ap.add_argument("--cli-args", default="", help="extra CLI flags, e.g. '--attn_implementation eager'")
    ap.add_argument("--workdir", type=Path, default=None, help="keep converted data and CLI outputs here")
    ap.add_argument("--keep", action="store_true", help="do not delete the temporary folder")
    args = ap.parse_args()

    fx = args.fixtures.resolve()
    models = args.models or sorted(p.name for p in (fx / "models").iterdir() if (p / "reference").is_dir())
    stems = args.data or sorted(p.stem for p in (fx / "data").glob("*.jsonl") if p.stem != "rb2")  # rb2: RB2 rows, see rb2_reference.py
    work = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="rb_crosscheck_"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "data").mkdir(exist_ok=True)
    (work / "models").mkdir(exist_ok=True)
    print(f"reference python: {args.refvenv_python}\nworkdir: {work}", flush=True)
    ver = subprocess.run([args.refvenv_python, "-c",
                          "import importlib.metadata as m; print(*[f'{p}=={m.version(p)}' for p in "
                          "('rewardbench','transformers','torch','datasets','tokenizers')])"],
                         capture_output=True, text=True)
    print("reference env:", ver.stdout.strip() or ver.stderr.strip(), flush=True)

    converted = {}
    for stem in stems:
        rows = read_jsonl(fx / "data" / f"{stem}.jsonl")
        dst = work / "data" / f"{stem}.jsonl"
        with open(dst, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(to_conversation(row), ensure_ascii=False) + "\n")
        converted[stem] = dst

    extra = args.cli_args.split() if args.cli_args else []
    bad = False
    table = []
    details = []
    for m in models:
        link = work / "models" / m
        if not link.exists():
            link.symlink_to(fx / "models" / m, target_is_directory=True)
        model_rel = f"models/{m}"
        for stem in stems:
            ref_path = fx / "models" / m / "reference" / f"{stem}.jsonl"
            if not ref_path.exists():
                table.append((m, stem, "-", "no reference file", "", "", "", ""))
                continue
            ref_rows = read_jsonl(ref_path)
            for bs in args.batch_sizes:
                out_dir = work / "out" / f"{m}__{stem}__b{bs}"
                proc, dt, log = run_cli(args.refvenv_python, work, model_rel, converted[stem], bs, out_dir, extra)
                out_file = out_dir / f"{model_rel}_outputs.jsonl"
                if proc.returncode != 0 or not out_file.exists():
                    bad = True
                    err = last_error(proc.stderr + "\n" + proc.stdout)
                    table.append((m, stem, bs, f"CLI FAILED (rc={proc.returncode}): {err}", "", "", "", f"{dt:.0f}s"))
                    details.append(f"{m}/{stem}/b{bs}: see {log}")
                    continue
                out_rows = read_jsonl(out_file)
                rep = compare(ref_rows, out_rows, bs)
                if rep["n"] != rep["n_out"]:
                    bad = True
                    table.append((m, stem, bs, f"ROW COUNT {rep['n_out']} != {rep['n']}", "", "", "", f"{dt:.0f}s"))
                    continue
                texts_ok = not rep["text_mismatch"] and not rep["prompt_mismatch"]
                acc_cli = json.loads((out_dir / f"{model_rel}.json").read_text())["accuracy"]
                summ = fx / "models" / m / "reference" / f"{stem}.summary.json"
                acc_ref = json.loads(summ.read_text()).get("accuracy" if bs == 1 else "accuracy_left8") \
                    if summ.exists() else None
                if acc_ref is not None and abs(acc_cli - acc_ref) > 1e-12:
                    bad = True
                if rep["max_diff"] > args.tol or rep["verdict_mismatch"] or not texts_ok or rep["id_mismatch"]:
                    bad = True
                table.append((m, stem, bs, f"{rep['max_diff']:.3g} (row {rep['worst_row']})",
                              f"{len(rep['verdict_mismatch'])}/{rep['n']}",
                              "identical" if texts_ok else
                              f"DIFFER rows text={rep['text_mismatch']} prompt={rep['prompt_mismatch']}",
                              f"{acc_cli:.4f}/{acc_ref:.4f}" if acc_ref is not None else f"{acc_cli:.4f}/-",
                              f"{dt:.0f}s"))
                if rep["verdict_mismatch"]:
                    details.append(f"{m}/{stem}/b{bs}: verdict mismatch rows {rep['verdict_mismatch']}")
                if rep["id_mismatch"]:
                    details.append(f"{m}/{stem}/b{bs}: id mismatch rows {rep['id_mismatch']}")
                for i in rep["text_mismatch"][:5]:
                    for k in ("text_chosen", "text_rejected"):
                        if ref_rows[i][k] != out_rows[i][k]:
                            details.append(f"{m}/{stem}/b{bs} row {i} {k} "
                                           + first_diff(out_rows[i][k], ref_rows[i][k]))
                for i in rep["prompt_mismatch"][:5]:
                    details.append(f"{m}/{stem}/b{bs} row {i} prompt "
                                   + first_diff(out_rows[i]["prompt"], ref_rows[i]["prompt"]))
                print(" | ".join(str(c) for c in table[-1]), flush=True)

    hdr = ("model", "data", "B", "max |score diff| (worst row)", "verdict mismatches", "rendered texts", "accuracy cli/ref", "time")
    widths = [max(len(str(r[i])) for r in table + [hdr]) for i in range(len(hdr))]
    print()
    for r in [hdr] + table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    if details:
        print("\nDetails:")
        for d in details:
            print("  " + d)
    if not (args.keep or args.workdir):
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\noutputs kept in {work}")
    print("\nRESULT:", "MISMATCH" if bad else f"all agree (tol {args.tol:g})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
