#!/usr/bin/env python3
"""System (b) of `bench/rb2.py`: RewardBench's own RB2 path (scripts/run_v2.py of rewardbench
0.1.4, default_v2 config), run inside the reference venv (rewardbench==0.1.4, transformers 4.51):

    REF_PYTHON bench/rb2_torch.py --model DIR --dataset ROWS.jsonl --threads N --batch-sizes 64 8 --out OUT.json

What it does, as run_v2.main does it (minus accelerate logging, hub upload and the Ties branch):
AutoTokenizer; AutoModelForSequenceClassification.from_pretrained(device_map="cpu",
torch_dtype="float32"); RewardBenchPipeline; pad token = EOS when unset (tokenizer and config),
add_eos_token when the tokenizer has no chat template; load_bon_dataset_v2 (pandas JSONL read,
unroll chosen-first, apply_chat_template); a torch DataLoader over the unrolled rows in dataset
order (shuffle False); reward_pipe(batch["text"], batch_size, truncation=True, padding=True,
max_length=2048, function_to_apply="none", return_token_type_ids=False); scores
`rewards.float().cpu().numpy().tolist()`; reroll_and_score_dataset; per-subset
sum(results)/len.

Timing per batch size: `load_seconds` = tokenizer + model + pipeline (once); `total_seconds` =
from load_bon_dataset_v2 (reading and rendering) to the last re-rolled score, split into
`dataset_seconds` (read, unroll, render), `inference_seconds` (the pipeline calls) and
`reroll_seconds`. The installed RewardBenchPipeline moves inputs to "cuda" unless the venv was
patched; when CUDA is absent and the copy is unpatched, BatchEncoding.to("cuda") is redirected to
the model's device at run time (recorded as `cuda_redirect`)."""
from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64])
    ap.add_argument("--max_length", type=int, default=2048)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)

    t_import = time.perf_counter()
    import numpy as np
    import torch
    import transformers
    from torch.utils.data.dataloader import default_collate
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import rewardbench
    from rewardbench import REWARD_MODEL_CONFIG, check_tokenizer_chat_template, load_bon_dataset_v2, reroll_and_score_dataset
    from rewardbench.models import pipeline as rb_pipeline

    import_seconds = time.perf_counter() - t_import
    torch.set_num_threads(a.threads)
    logging.basicConfig(level=logging.WARNING)
    logger = logging.getLogger("rb2_torch")
    transformers.utils.logging.set_verbosity_error()

    config = REWARD_MODEL_CONFIG["default_v2"]
    cuda_redirect = False
    src = inspect.getsource(rb_pipeline.RewardBenchPipeline.__call__)
    if '.to("cuda")' in src and not torch.cuda.is_available():
        from transformers.tokenization_utils_base import BatchEncoding

        orig_to = BatchEncoding.to

        def to(self, device, *args, **kwargs):
            if device == "cuda":
                device = "cpu"
            return orig_to(self, device, *args, **kwargs)

        BatchEncoding.to = to
        cuda_redirect = True

    # --- load (run_v2: tokenizer, then model, then pipeline, then pad-token fixes)
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(a.model)
    model = config["model_builder"](a.model, device_map="cpu", torch_dtype="float32", trust_remote_code=False)
    reward_pipe = config["pipeline_builder"]("text-classification", model=model, tokenizer=tokenizer)
    if reward_pipe.tokenizer.pad_token_id is None:
        reward_pipe.model.config.pad_token_id = reward_pipe.tokenizer.eos_token_id
        reward_pipe.tokenizer.pad_token_id = reward_pipe.tokenizer.eos_token_id
    if reward_pipe.model.config.pad_token_id is None:
        reward_pipe.model.config.pad_token_id = reward_pipe.tokenizer.pad_token_id
    if not check_tokenizer_chat_template(tokenizer):
        reward_pipe.tokenizer.add_eos_token = True
    load_seconds = time.perf_counter() - t0

    runs = {}
    for bs in a.batch_sizes:
        kwargs = {"batch_size": bs, "truncation": True, "padding": True, "max_length": a.max_length,
                  "function_to_apply": "none", "return_token_type_ids": False}
        t1 = time.perf_counter()
        dataset, subsets, total_completions, num_correct = load_bon_dataset_v2(
            dataset=a.dataset, conv=None, custom_dialogue_formatting=config["custom_dialogue"],
            tokenizer=tokenizer, logger=logger)
        ids = dataset["id"]
        dataset = dataset.remove_columns("id")
        t2 = time.perf_counter()

        def collate(batch):
            if isinstance(batch[0]["text"][0], dict):
                return batch
            return default_collate(batch)

        loader = torch.utils.data.DataLoader(dataset, batch_size=bs, collate_fn=collate, shuffle=False, drop_last=False)
        scores = []
        computed = real = 0
        for batch in loader:
            rewards = reward_pipe(batch["text"], **kwargs)
            if isinstance(rewards[0], dict):
                scores.extend(r["score"] for r in rewards)
            else:
                scores.extend(rewards.float().cpu().numpy().tolist())
        t3 = time.perf_counter()
        out = dataset.add_column("subset", subsets)
        out = out.add_column("id", ids)
        out = out.add_column("scores", scores)
        out = reroll_and_score_dataset(out, total_completions, cols_to_combine=["text", "scores"])
        out = out.add_column("num_correct", num_correct)
        t4 = time.perf_counter()

        # padding share of the computed tokens, measured apart (not timed): the same batches
        texts = dataset["text"]
        for b in range(0, len(texts), bs):
            enc = tokenizer(texts[b:b + bs], truncation=True, max_length=a.max_length, padding=True)
            m = np.asarray(enc["attention_mask"])
            computed += m.size
            real += int(m.sum())

        per_subset = {}
        for s in sorted(set(out["subset"])):
            res = [r for r, ss in zip(out["results"], out["subset"]) if ss == s]
            per_subset[s] = sum(res) / len(res)
        rows = []
        for i in range(len(out)):
            sc = out["scores"][i]
            rows.append({"id": str(out["id"][i]), "subset": out["subset"][i], "num_correct": int(out["num_correct"][i]),
                         "scores": [float(x[0]) if isinstance(x, (list, tuple)) else float(x) for x in sc],
                         "results": float(out["results"][i])})
        runs[str(bs)] = {
            "batch_size": bs, "prompts": len(out), "completions": len(scores),
            "total_seconds": t4 - t1, "dataset_seconds": t2 - t1, "inference_seconds": t3 - t2,
            "reroll_seconds": t4 - t3, "padding_ratio": 1.0 - real / computed if computed else 0.0,
            "subset_scores": per_subset, "rows": rows,
        }
        print(f"  (b) batch {bs}: {len(out)} prompts, {len(scores)} completions in {t4 - t1:.2f} s", flush=True)

    with open(a.out, "w") as fh:
        json.dump({
            "load_seconds": load_seconds, "import_seconds": import_seconds, "threads": torch.get_num_threads(),
            "torch_version": torch.__version__, "transformers_version": transformers.__version__,
            "rewardbench_version": getattr(rewardbench, "__version__", None),
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "dtype": str(next(model.parameters()).dtype), "cuda_redirect": cuda_redirect,
            "python": sys.version.split()[0], "runs": runs,
        }, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
