#!/usr/bin/env python3
"""Tiny random reward models of every architecture the exporter is checked on, with PyTorch's
scores done RewardBench's way, for tests/integration/architectures.rs (export venv only).

    export/.venv/bin/python export/make_arch_checkpoints.py OUT [--rows N]

Writes OUT/{arch}/: a Hugging Face checkpoint (config.json, model.safetensors, the tokenizer of
fixtures/models/tiny-llama-rm) and OUT/{arch}/reference.jsonl: `score_chosen` and
`score_rejected` of the first N rows of fixtures/data/llmbar.jsonl, each text scored alone
(batch 1, eager attention, float32), as RewardBench's pipeline does (export/reference.py).
With `--lm`, OUT/lm-{arch}/ holds instead a causal-LM policy and reference (`policy/`, `ref/`,
two seeds) of each LM_ARCHS entry and `dpo-reference.jsonl`: export/dpo_reference.py's records of
the same rows (RewardBench's DPOInference, batch 8). Their LM heads are scaled up so that what
follows the projection (Gemma's soft cap, Granite's divisor) changes the log-probabilities.
Nothing is committed: the checkpoints take seconds to build and the test builds them afresh.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.dirname(HERE)
TOKENIZER = os.path.join(ROOT, "fixtures", "models", "tiny-llama-rm")
DATA = os.path.join(ROOT, "fixtures", "data", "llmbar.jsonl")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

# Name -> (config class, model class, settings beyond the shared ones), in transformers' names.
ARCHS = {
    "llama": ("LlamaConfig", "LlamaForSequenceClassification", {}),
    "mistral": ("MistralConfig", "MistralForSequenceClassification", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForSequenceClassification", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForSequenceClassification", {"head_dim": 16}),
    "gemma": ("GemmaConfig", "GemmaForSequenceClassification", {"head_dim": 16}),
    "gemma2": ("Gemma2Config", "Gemma2ForSequenceClassification", {"head_dim": 16}),
    "phi3": ("Phi3Config", "Phi3ForSequenceClassification", {}),
}

# Causal LMs for DPO: name -> (config class, model class, settings), as ARCHS.
LM_ARCHS = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"head_dim": 16}),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {"head_dim": 16}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {"head_dim": 16, "final_logit_softcapping": 30.0}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", {"head_dim": 16, "final_logit_softcapping": 30.0}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {}),
    "granite": ("GraniteConfig", "GraniteForCausalLM", {"logits_scaling": 4.0}),
}


def _model(spec, seed: int, labels: bool):
    import torch
    import transformers

    config_cls, model_cls, extra = spec
    with open(os.path.join(TOKENIZER, "config.json")) as fh:
        tok_cfg = json.load(fh)
    shape = dict(vocab_size=tok_cfg["vocab_size"], hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                 pad_token_id=tok_cfg["pad_token_id"], bos_token_id=tok_cfg["bos_token_id"],
                 eos_token_id=tok_cfg["eos_token_id"])
    if labels:
        shape["num_labels"] = 1
    torch.manual_seed(seed)
    return getattr(transformers, model_cls)(getattr(transformers, config_cls)(**shape, **extra)).eval()


def _save(model, out: str) -> None:
    model.save_pretrained(out, safe_serialization=True)
    for f in TOKENIZER_FILES:
        shutil.copy(os.path.join(TOKENIZER, f), os.path.join(out, f))


def build_lm(arch: str, out: str, rows: int) -> None:
    import torch

    import dpo_reference
    from reference import read_jsonl

    for name, seed in (("policy", 1), ("ref", 2)):
        model = _model(LM_ARCHS[arch], seed, labels=False)
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(20.0)
        _save(model, os.path.join(out, name))
    tok = dpo_reference.load_tokenizer(os.path.join(out, "policy"))
    policy = dpo_reference.load_lm(os.path.join(out, "policy"))
    ref = dpo_reference.load_lm(os.path.join(out, "ref"))
    with open(os.path.join(out, "dpo-reference.jsonl"), "w") as fh:
        for r in dpo_reference.score_rows(policy, ref, tok, read_jsonl(DATA)[:rows], batch_size=8):
            fh.write(json.dumps(r) + "\n")


def build(arch: str, out: str) -> None:
    import torch

    model = _model(ARCHS[arch], 0, labels=True)
    # Random scale-0.02 heads give scores too close to tell apart; spread them.
    with torch.no_grad():
        model.score.weight.mul_(50.0)
    _save(model, out)


def references(model_dir: str, rows: int) -> list[dict]:
    from reference import load_rm, read_jsonl, render_row, score_texts

    model, tok = load_rm(model_dir)
    rendered = [render_row(r, tok) for r in read_jsonl(DATA)[:rows]]
    chosen = score_texts(model, tok, [r[1] for r in rendered], 1)
    rejected = score_texts(model, tok, [r[2] for r in rendered], 1)
    return [{"score_chosen": c, "score_rejected": r} for c, r in zip(chosen, rejected)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="folder to write OUT/{arch}/ into")
    ap.add_argument("--rows", type=int, default=8, help="rows of fixtures/data/llmbar.jsonl to score (default 8)")
    ap.add_argument("--arch", action="append", choices=sorted(set(ARCHS) | set(LM_ARCHS)),
                    help="only these (default: all)")
    ap.add_argument("--lm", action="store_true", help="causal-LM policies and references for DPO (LM_ARCHS)")
    a = ap.parse_args(argv)
    if a.lm:
        for arch in a.arch or LM_ARCHS:
            d = os.path.join(a.out, f"lm-{arch}")
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            build_lm(arch, d, a.rows)
            print(f"lm-{arch}: {d}")
        return 0
    for arch in a.arch or ARCHS:
        d = os.path.join(a.out, arch)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        build(arch, d)
        with open(os.path.join(d, "reference.jsonl"), "w") as fh:
            for r in references(d, a.rows):
                fh.write(json.dumps(r) + "\n")
        print(f"{arch}: {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
