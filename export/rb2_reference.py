#!/usr/bin/env python3
"""RewardBench 2 (RB2) reference scores for the classifier fixtures, from RewardBench's own code.

    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 /work/refvenv/bin/python export/rb2_reference.py \\
        [--models tiny-gpt2-rm tiny-llama-rm tiny-mistral-rm] [--data fixtures/data/rb2.jsonl] \\
        [--crosscheck-run-v2]

Runs in the reference environment (rewardbench==0.1.4, which pins transformers 4.51.0; see
export/crosscheck_reference.py for the set-up and the one CPU patch, pipeline.py
``.to("cuda")`` -> ``.to(self.model.device)``). For each fixture model it follows
``scripts/run_v2.py`` (identical in 0.1.4 and HEAD apart from ``process_single_model``) step
by step:

* ``load_bon_dataset_v2(dataset=<jsonl>, conv=get_conv_template("tulu"), tokenizer=...)`` from
  the installed package (pandas ``read_json(lines=True)``, unroll chosen-then-rejected, render
  ``[user: prompt, assistant: completion]`` with the tokenizer's chat template, ``ift=True``);
* ``REWARD_MODEL_CONFIG["default_v2"]``: ``AutoModelForSequenceClassification.from_pretrained(
  model, device_map="cpu", torch_dtype="float32")`` and the installed ``RewardBenchPipeline``;
  pad token := EOS on tokenizer and model config when the tokenizer has none (tiny-gpt2-rm);
  ``add_eos_token`` only without a chat template (never here);
* a ``torch.utils.data.DataLoader`` (batch 64, no shuffle, run_v2's collate function) over the
  unrolled rows, ``accelerator.prepare(model)``, and per batch
  ``reward_pipe(batch["text"], batch_size=64, truncation=True, padding=True, max_length=2048,
  function_to_apply="none", return_token_type_ids=False)`` -> ``rewards.float().cpu().numpy()
  .tolist()`` (one ``[x]`` per completion; the pipeline ignores the last two kwargs);
* ``reroll_and_score_dataset`` from the installed package (positional groups of
  ``total_completions``; ``results = 1/count(max)`` if ``scores[0]`` is a maximum, else 0);
* per subset: the mean of ``results``; for Ties, HEAD's ``process_single_model``.

What 0.1.4 ships and what is ported: 0.1.4 has ``load_bon_dataset_v2``,
``reroll_and_score_dataset``, ``RewardBenchPipeline``, ``check_tokenizer_chat_template`` and
``scripts/run_v2.py``; all are used as installed. Its ``process_single_model`` is the pre-#244
version (per-prompt ``sample_stats``; excludes tied prompts with fewer than two correct answers
from cp/cph and ``diff <= 0`` from the margin term; no NaN handling), so HEAD's version
(allenai/reward-bench PR #244 + ``nan_to_num`` from #249, with ``_compute_prompt_stats``) is
ported verbatim below as ``process_single_model_head`` and checked on the spec's golden example
(0.5001798609742693). The only addition to the port is one marked line that records the five
parts for ``ties_parts``. 0.1.4's value is kept in the summary's provenance for comparison.

Outputs, per model (no input ids; small):

* ``fixtures/models/<m>/reference/rb2.jsonl``: one line per prompt row, dataset order:
  ``id, subset, num_correct, total_completions, texts`` (rendered strings, chosen first),
  ``lengths`` (tokens after truncation, BOS included, the double BOS of the llama/mistral
  template counted twice), ``truncated`` (untruncated length > 2048), ``scores`` (the
  pipeline's float per completion, chosen first, batch 64), ``results`` (the re-roll result,
  for Ties rows too: that is what run_v2's per-example file holds, its Ties overwrite matches
  ``"ties"`` and never fires), ``scores_b1`` / ``results_b1`` (the same at batch size 1).
* ``fixtures/models/<m>/reference/rb2.summary.json``: run_v2's summary keys (``model``,
  ``model_type``, ``chat_template``, one float per subset, Ties = HEAD composite), ``Score``
  (unweighted mean of the six subsets), ``ties_parts``, ``batch1`` (the same numbers at batch
  size 1, and the max abs score difference), and ``provenance``.

``--crosscheck-run-v2`` also runs the installed ``scripts/run_v2.py`` itself (``--torch_dtype
float32 --do_not_save --disable_beaker_save``) in a temporary folder and checks that its
per-example scores file has exactly the same scores, results and texts, and that its printed
non-Ties subset values match.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from accelerate import Accelerator  # noqa: E402
from datasets import Dataset  # noqa: E402
from fastchat.conversation import get_conv_template  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

import rewardbench  # noqa: E402
from rewardbench import (  # noqa: E402
    REWARD_MODEL_CONFIG,
    check_tokenizer_chat_template,
    load_bon_dataset_v2,
    reroll_and_score_dataset,
)
from rewardbench import process_single_model as process_single_model_014  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODELS = ["tiny-gpt2-rm", "tiny-llama-rm", "tiny-mistral-rm"]
SUBSETS = ["Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties"]
BATCH_SIZE = 64
MAX_LENGTH = 2048


# ---------------------------------------------------------------------------------------------
# HEAD's Ties scoring (rewardbench/utils.py after PR #244 and #249), verbatim.
# ---------------------------------------------------------------------------------------------
_LAST_TIES_PARTS: dict = {}  # added: filled by process_single_model_head for ties_parts


# Helper function for scoring ties subset
def _compute_prompt_stats(samples: List[Tuple[bool, float]]) -> Tuple[bool, float | None, float | None]:
    """
    Given a list of (is_correct, score) tuples for one prompt,
    return:
        accurate ................ True if every correct answer outscores the best wrong one
        different_correct_margin  Spread between best and worst correct answers (None if <2)
        correct_incorrect_margin  Gap between worst correct and best wrong (None if N/A)
    """
    correct_scores = [s for is_corr, s in samples if is_corr]
    incorrect_scores = [s for is_corr, s in samples if not is_corr]
    best_correct = max(correct_scores)
    worst_correct = min(correct_scores)
    best_incorrect = max(incorrect_scores)

    # Calculate the margins with correct scores, and also the margin between correct and incorrect scores
    different_correct_margin = best_correct - worst_correct if len(correct_scores) > 1 else None
    correct_incorrect_margin = worst_correct - best_incorrect
    accurate = correct_incorrect_margin > 0

    return accurate, different_correct_margin, correct_incorrect_margin


def process_single_model_head(dataset):
    """
    Process a single-model ties evaluation dataset and return
        (dataset_with_results_column, overall_score)
    Each row in the dataset contains a list of "scores", where the first "num_correct" correspond to
        correct answers, and the rest are incorrect. The "id" field is formatted as "sample_type:prompt_id",
        where sample_type is either "ref" for reference prompts with 1 correct answer or "tied" for tied samples
        with multiple correct answers.
    Overall score is essentially 60% accuracy, 40% margin. Accuracy is broken down equally
        across ref and tied accuracy, while margin is broken down into whether the margin between
        correct answers < margin between correct and incorrect answers for tied prompts only (correctness_preferred)
        and whether this margin also holds when the margin between correct and incorrect answers is the min of the
        margin for a tied prompt and its associated reference prompt (correctness_preferred_hard).
    """
    grouped_samples: Dict[Tuple[str, int], List[Tuple[bool, float]]] = defaultdict(list)

    for sample in dataset:
        # Split samples into ref and tied
        sample_type, prompt_id_str = sample["id"].split(":")
        prompt_id = int(prompt_id_str)

        # Each score position i is “correct” if i < num_correct
        for i, raw_score in enumerate(sample["scores"]):
            score = raw_score[0] if isinstance(raw_score, list) else raw_score
            grouped_samples[(sample_type, prompt_id)].append((i < sample["num_correct"], score))

    # Calculate per-prompt stats
    ref_stats = {}
    tied_stats = {}

    for (sample_type, prompt_id), samples in grouped_samples.items():
        stats = _compute_prompt_stats(samples)
        if sample_type == "ref":
            ref_stats[prompt_id] = stats
        else:  # "tied"
            tied_stats[prompt_id] = stats

    # Calculate global metrics
    # Average accuracy (element 0 of each tuple) over ref and tied samples
    ref_accuracy = np.mean([s[0] for s in ref_stats.values()]) if ref_stats else 0.0
    tied_accuracy = np.mean([s[0] for s in tied_stats.values()]) if tied_stats else 0.0

    # Margins: compute whether margin within correct answers < margin between correct and incorrect answers
    all_prompts = set(ref_stats) & set(tied_stats)

    # correct margin is element 1 in stats tuple, correct-incorrect margin is element 2
    diff_corr_margin = np.array([tied_stats[pid][1] for pid in all_prompts])
    corr_incorrect_ties = np.array([tied_stats[pid][2] for pid in all_prompts])
    corr_incorrect_ref = np.array([ref_stats[pid][2] for pid in all_prompts])

    correctness_preferred = np.mean(corr_incorrect_ties > diff_corr_margin)
    correctness_preferred_hard = np.mean(np.minimum(corr_incorrect_ref, corr_incorrect_ties) > diff_corr_margin)

    # Tie-breaking term, optional, not much effect in practice
    # Normalised gap, then tanh to keep it in (‑1, 1)
    margin_scores = np.tanh(np.minimum(corr_incorrect_ref, corr_incorrect_ties) / diff_corr_margin - 1)
    # if nan (divide by 0), set to 0
    margin_scores = np.nan_to_num(margin_scores, nan=0.0)
    correctness_margin_score = float(np.mean(margin_scores))

    # Compute the overall score
    overall_score = (
        0.30 * tied_accuracy
        + 0.30 * ref_accuracy
        + 0.20 * correctness_preferred
        + 0.20 * correctness_preferred_hard
        + 0.01 * correctness_margin_score
    )

    _LAST_TIES_PARTS.clear()  # added: record the parts (not in HEAD)
    _LAST_TIES_PARTS.update(ref_accuracy=float(ref_accuracy), tied_accuracy=float(tied_accuracy), correctness_preferred=float(correctness_preferred), correctness_preferred_hard=float(correctness_preferred_hard), margin_score=correctness_margin_score)  # noqa: E501

    # Package results — there is less of a sense of per-prompt results for the Ties subset,
    # as overall_score is computed across the subset, so set "results" to None for clarity
    if "results" in dataset.column_names:
        dataset = dataset.remove_columns(["results"])
    results_dataset = dataset.add_column("results", [None] * len(dataset))

    return results_dataset, float(overall_score)


def golden_checks() -> None:
    """Spec §10.4: re-roll [1, .5, .25, 0] and the Ties composite 0.5001798609742693."""
    rows = [[2, 1, 1, 0.5], [2, 2, 1, 0.5], [2, 2, 2, 2], [1, 2, 0, 0]]
    flat = [s for r in rows for s in r]
    ds = Dataset.from_dict({"text": [str(i) for i in range(len(flat))], "scores": [[s] for s in flat],
                            "subset": ["Math"] * len(flat), "id": [str(i // 4) for i in range(len(flat))]})
    got = reroll_and_score_dataset(ds, [4, 4, 4, 4], cols_to_combine=["text", "scores"])["results"]
    assert [float(x) for x in got] == [1.0, 0.5, 0.25, 0.0], got
    ties = Dataset.from_dict({
        "id": ["ref:1", "tied:1", "ref:2", "tied:2"],
        "scores": [[[3], [1], [0.5]], [[3], [2.8], [2.9], [1], [0]], [[0], [1]], [[2], [1], [1.5]]],
        "num_correct": [1, 3, 1, 2],
    })
    with np.errstate(divide="ignore", invalid="ignore"):
        _, score = process_single_model_head(ties)
    assert score == 0.5001798609742693, score
    assert abs(_LAST_TIES_PARTS["margin_score"] - 0.5 * (math.tanh(8) + math.tanh(-2))) < 1e-15


# ---------------------------------------------------------------------------------------------
# run_v2.py, step by step
# ---------------------------------------------------------------------------------------------
def custom_collate_fn(batch):
    from torch.utils.data.dataloader import default_collate

    # check if ['text_chosen'] is in first batch element
    # Check if the first element of the batch is a dictionary
    if isinstance(batch[0]["text"][0], dict):
        return batch  # Return the batch as-is if it's a list of dicts
    else:
        return default_collate(batch)  # Use the default collate behavior otherwise


def load_v2(model_dir: str, data: str, logger):
    config = REWARD_MODEL_CONFIG["default_v2"]
    conv = get_conv_template("tulu")  # run_v2's default --chat_template
    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    dataset, subsets, total_completions, num_correct = load_bon_dataset_v2(
        dataset=data, conv=conv, custom_dialogue_formatting=config["custom_dialogue"],
        tokenizer=tokenizer, logger=logger,
    )
    ids = dataset["id"]
    dataset = dataset.remove_columns("id")
    model_kwargs = {"device_map": "auto" if torch.cuda.is_available() else "cpu", "torch_dtype": "float32"}
    model = config["model_builder"](model_dir, **model_kwargs, trust_remote_code=False)
    reward_pipe = config["pipeline_builder"]("text-classification", model=model, tokenizer=tokenizer)
    if reward_pipe.tokenizer.pad_token_id is None:
        reward_pipe.model.config.pad_token_id = reward_pipe.tokenizer.eos_token_id
        reward_pipe.tokenizer.pad_token_id = reward_pipe.tokenizer.eos_token_id
    if reward_pipe.model.config.pad_token_id is None:
        reward_pipe.model.config.pad_token_id = reward_pipe.tokenizer.pad_token_id
    if not check_tokenizer_chat_template(tokenizer):
        reward_pipe.tokenizer.add_eos_token = True
    accelerator = Accelerator()
    reward_pipe.model = accelerator.prepare(reward_pipe.model)
    return config, tokenizer, reward_pipe, dataset, subsets, total_completions, num_correct, ids


def score_all(reward_pipe, dataset, batch_size: int) -> list:
    kwargs = {
        "batch_size": batch_size,
        "truncation": True,
        "padding": True,
        "max_length": MAX_LENGTH,
        "function_to_apply": "none",
        "return_token_type_ids": False,
    }
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, collate_fn=custom_collate_fn, shuffle=False, drop_last=False
    )
    scores = []
    for batch in loader:
        rewards = reward_pipe(batch["text"], **kwargs)
        if isinstance(rewards[0], dict):
            scores_batch = [result["score"] for result in rewards]
        else:
            scores_batch = rewards.float().cpu().numpy().tolist()
        scores.extend(scores_batch)
    return scores


def summarize(dataset, subsets, ids, scores, total_completions, num_correct):
    """run_v2's post-processing; returns (out_dataset, per-subset dict, ties parts, 0.1.4 Ties)."""
    out_dataset = dataset.add_column("subset", subsets)
    out_dataset = out_dataset.add_column("id", ids)
    out_dataset = out_dataset.add_column("scores", scores)
    out_dataset = reroll_and_score_dataset(out_dataset, total_completions, cols_to_combine=["text", "scores"])
    out_dataset = out_dataset.add_column("num_correct", num_correct)
    per_subset, parts, ties_014 = {}, None, None
    for subset in np.unique(subsets):
        subset_dataset = out_dataset.filter(lambda example: example["subset"] == subset)
        if subset.lower() == "ties":
            with np.errstate(divide="ignore", invalid="ignore"):  # HEAD divides by diff = 0 on purpose
                _, overall = process_single_model_head(subset_dataset)
            parts = dict(_LAST_TIES_PARTS)
            _, ties_014 = process_single_model_014(subset_dataset)
            per_subset[str(subset)] = overall
        else:
            n_correct = sum(subset_dataset["results"])
            per_subset[str(subset)] = n_correct / len(subset_dataset["results"])
    return out_dataset, per_subset, parts, float(ties_014)


def flat(scores_row) -> list:
    out = []
    for s in scores_row:
        s = list(s) if not isinstance(s, (float, int)) else [s]
        assert len(s) == 1, s
        out.append(float(s[0]))
    return out


def run_model(name: str, data: str, logger, crosscheck: bool) -> dict:
    model_dir = str(REPO / "fixtures" / "models" / name)
    config, tok, pipe, dataset, subsets, total_completions, num_correct, ids = load_v2(model_dir, data, logger)
    scores64 = score_all(pipe, dataset, BATCH_SIZE)
    scores1 = score_all(pipe, dataset, 1)
    out64, sub64, parts64, ties014 = summarize(dataset, subsets, ids, scores64, total_completions, num_correct)
    out1, sub1, parts1, ties014_b1 = summarize(dataset, subsets, ids, scores1, total_completions, num_correct)

    texts = list(dataset["text"])
    full_len = [len(x) for x in tok(texts, truncation=False)["input_ids"]]
    trunc_len = [len(x) for x in tok(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]

    rows, pos = [], 0
    max_diff, changed = 0.0, []
    for r64, r1, k in zip(out64, out1, total_completions):
        s64, s1 = flat(r64["scores"]), flat(r1["scores"])
        assert r64["text"] == texts[pos:pos + k] and r64["id"] == r1["id"]
        max_diff = max(max_diff, max(abs(a - b) for a, b in zip(s64, s1)))
        if float(r64["results"]) != float(r1["results"]):
            changed.append((r64["subset"], r64["id"], float(r64["results"]), float(r1["results"])))
        rows.append({
            "id": r64["id"],
            "subset": r64["subset"],
            "num_correct": int(r64["num_correct"]),
            "total_completions": int(k),
            "texts": r64["text"],
            "lengths": trunc_len[pos:pos + k],
            "truncated": [n > MAX_LENGTH for n in full_len[pos:pos + k]],
            "scores": s64,
            "results": float(r64["results"]),
            "scores_b1": s1,
            "results_b1": float(r1["results"]),
        })
        pos += k
    assert pos == len(texts)

    def score6(d):
        return sum(d[s] for s in SUBSETS) / len(SUBSETS)

    summary = {
        "model": name,
        "model_type": config["model_type"],
        "chat_template": "tokenizer" if check_tokenizer_chat_template(tok) else "tulu",
        **{k: float(v) for k, v in sub64.items()},
        "Score": score6(sub64),
        "ties_parts": parts64,
        "batch1": {
            **{k: float(v) for k, v in sub1.items()},
            "Score": score6(sub1),
            "ties_parts": parts1,
            "max_abs_score_diff_vs_batch64": max_diff,
            "rows_with_different_results": [list(c) for c in changed],
        },
        "provenance": {
            "script": "export/rb2_reference.py (follows rewardbench scripts/run_v2.py)",
            "dataset": "fixtures/data/rb2.jsonl",
            "rewardbench": rewardbench.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "tokenizers": pkg_version("tokenizers"),
            "datasets": pkg_version("datasets"),
            "pandas": pkg_version("pandas"),
            "numpy": np.__version__,
            "python": platform.python_version(),
            "device": "cpu",
            "torch_num_threads": torch.get_num_threads(),
            "attn_implementation": getattr(pipe.model.config, "_attn_implementation", None),
            "batch_size": BATCH_SIZE,
            "max_length": MAX_LENGTH,
            "truncation_side": tok.truncation_side,
            "padding_side": tok.padding_side,
            "pad_token_id": pipe.tokenizer.pad_token_id,
            "dtype": "float32",
            "ties_formula": "HEAD process_single_model (PR #244 + nan_to_num #249)",
            "ties_rewardbench_0.1.4": ties014,
            "ties_rewardbench_0.1.4_batch1": ties014_b1,
            "patch": "rewardbench/models/pipeline.py: .to(\"cuda\") -> .to(self.model.device)",
        },
    }
    if crosscheck:
        summary["provenance"]["crosscheck_run_v2"] = crosscheck_run_v2(name, data, rows, sub64, ties014)
    return {"rows": rows, "summary": summary}


EXPECTED_EDGE = {"edge:tie-2way": 0.5, "edge:tie-3way": 1 / 3, "edge:tie-4way": 0.25, "edge:truncation-tie": 0.5}


def check_edges(name: str, rows: list, labels: list) -> None:
    """The data file's promises (fixtures/data/README.md), at batch 64 and at batch 1."""
    for r, label in zip(rows, labels):
        for key in ("results", "results_b1"):
            if label in EXPECTED_EDGE:
                assert r[key] == EXPECTED_EDGE[label], (name, label, key, r[key])
        if label == "edge:truncation-tie":
            assert r["truncated"][:2] == [True, True] and r["scores"][0] == r["scores"][1], (name, r["scores"])
        if label in ("edge:long-chosen", "edge:long-rejected"):
            assert any(r["truncated"]) and max(r["lengths"]) == MAX_LENGTH, (name, label)
        if r["id"] in ("ref:5", "tied:5"):
            assert len(set(r["scores"])) == 1, (name, r["id"], r["scores"])
    assert sum(any(r["truncated"]) for r in rows) >= 3, name


def pkg_version(name: str) -> str:
    import importlib.metadata as md

    return md.version(name)


def crosscheck_run_v2(name: str, data: str, rows: list, per_subset: dict, ties014: float) -> str:
    """Run the installed scripts/run_v2.py and compare its per-example file with ours."""
    work = Path(tempfile.mkdtemp(prefix="rb2_runv2_"))
    try:
        (work / "models").mkdir()
        (work / "models" / name).symlink_to(REPO / "fixtures" / "models" / name, target_is_directory=True)
        cmd = [sys.executable, "-c", "import sys; sys.argv[0]='run_v2'; from scripts.run_v2 import main; main()",
               "--model", f"models/{name}", "--dataset", str(Path(data).resolve()), "--torch_dtype", "float32",
               "--batch_size", str(BATCH_SIZE), "--do_not_save", "--disable_beaker_save"]
        proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"run_v2.py failed for {name}:\n{proc.stderr[-3000:]}")
        with open(work / "results" / "eval-set-scores" / "models" / f"{name}.json") as f:
            got = json.load(f)
        n = len(rows)
        assert len(got["scores"]) == n, (len(got["scores"]), n)
        for i in range(n):
            g_scores = [float(s[0]) for s in got["scores"][i]]
            assert g_scores == rows[i]["scores"], (name, i, g_scores, rows[i]["scores"])
            assert got["text"][i] == rows[i]["texts"], (name, i)
            assert float(got["results"][i]) == rows[i]["results"], (name, i)
            assert got["id"][i] == rows[i]["id"] and got["subset"][i] == rows[i]["subset"]
        printed = dict(re.findall(r"^(.+?): \S+/\S+ \(([0-9.e-]+)\)$", proc.stdout, flags=re.M))
        for s, v in per_subset.items():
            if s != "Ties":
                assert float(printed[s]) == v, (s, printed.get(s), v)
        m = re.search(r"^Ties: Overall score (\S+)$", proc.stdout, flags=re.M)
        assert m and float(m.group(1)) == ties014, (m and m.group(1), ties014)
        return "scripts/run_v2.py: identical scores, texts, results, non-Ties subset values, 0.1.4 Ties"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description="RB2 reference scores via RewardBench's run_v2 path")
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--data", default=str(REPO / "fixtures" / "data" / "rb2.jsonl"))
    ap.add_argument("--crosscheck-run-v2", action="store_true", help="also run the installed scripts/run_v2.py")
    args = ap.parse_args()

    logging.basicConfig(level=logging.WARNING)
    logger = logging.getLogger("rb2_reference")
    transformers.utils.logging.set_verbosity_error()
    golden_checks()
    torch.manual_seed(0)

    with open(args.data, encoding="utf-8") as f:
        labels = [json.loads(line)["additional_metadata"].get("label") for line in f if line.strip()]

    for name in args.models:
        out = run_model(name, args.data, logger, args.crosscheck_run_v2)
        check_edges(name, out["rows"], labels)
        ref = REPO / "fixtures" / "models" / name / "reference"
        ref.mkdir(exist_ok=True)
        with open(ref / "rb2.jsonl", "w", encoding="utf-8", newline="\n") as f:
            for r in out["rows"]:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        with open(ref / "rb2.summary.json", "w", encoding="utf-8", newline="\n") as f:
            f.write(json.dumps(out["summary"], indent=4, sort_keys=True, ensure_ascii=False) + "\n")

        s = out["summary"]
        print(f"== {name}")
        print("   " + "  ".join(f"{k}={s[k]:.6f}" for k in SUBSETS + ["Score"]))
        print(f"   ties_parts={s['ties_parts']}  ties(0.1.4)={s['provenance']['ties_rewardbench_0.1.4']:.6f}")
        b1 = s["batch1"]
        print(f"   batch1 vs 64: max |score diff|={b1['max_abs_score_diff_vs_batch64']:.3g}, "
              f"rows with different results={b1['rows_with_different_results']}, Score_b1={b1['Score']:.6f}")
        for r, label in zip(out["rows"], labels):
            if label and label.startswith("edge:") or any(r["truncated"]):
                print(f"   {r['subset']:<10} {r['id']:>3} {label or '':<20} result={r['results']:.4f} "
                      f"b1={r['results_b1']:.4f} lengths={r['lengths']} truncated={r['truncated']}")
        if "crosscheck_run_v2" in s["provenance"]:
            print("   " + s["provenance"]["crosscheck_run_v2"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
