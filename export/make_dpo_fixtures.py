#!/usr/bin/env python3
"""Regenerate the DPO fixtures (deterministic, offline):

    export/.venv/bin/python export/make_dpo_fixtures.py [--root .]

* fixtures/data/dpo_long.jsonl: rows that hit each truncation rule of RewardBench's DPO path, a
  prompt repeated inside an answer (`str.replace` removes every occurrence) and a prompt ending in
  a space (the last prompt token merges with the answer: TRL's boundary rule);
* four tiny causal LMs with the tokenizer of fixtures/models/tiny-llama-rm (vocabulary 1500):
  tiny-llama-policy / tiny-llama-ref (Llama, GQA; zephyr-like template with a BOS string, so the
  reference's forced BOS doubles it) and tiny-gpt2-policy / tiny-gpt2-ref (GPT-2; a template with
  no separator between prompt and answer, so merges are common; no BOS and no pad token, so BOS
  falls back to EOS). Each folder: HF checkpoint, tokenizer, `model.onnx` (token_logprobs form).
  Policies also get `logits/` (the plain-logits export); tiny-llama-ref gets `with-past/`, an
  Optimum-style graph with `position_ids` and `past_key_values.*` inputs and `present.*` outputs;
* `<policy>/dpo-reference/<data>.jsonl`: PyTorch rewards (dpo_reference.py) for every file in
  fixtures/data, with the reference model and in each reference-free mode, and a summary.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dpo_reference  # noqa: E402
import export_lm  # noqa: E402
import reference  # noqa: E402
from make_fixtures import LLAMA_TEMPLATE, save_tokenizer, write_jsonl  # noqa: E402

LICENSE_DIR = "/usr/share/common-licenses"
# Prompt and answer meet with no separator: "Human: <prompt>" + "<answer></s>".
GPT2_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] }}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
)
PAIRS = [
    dict(policy="tiny-llama-policy", ref="tiny-llama-ref", arch="llama", seeds=(11, 12), template=LLAMA_TEMPLATE,
         bos=True),
    dict(policy="tiny-gpt2-policy", ref="tiny-gpt2-ref", arch="gpt2", seeds=(21, 22), template=GPT2_TEMPLATE,
         bos=False),
]


def hf_tokenizer(raw, template, bos):
    from transformers import PreTrainedTokenizerFast

    kw = dict(tokenizer_object=raw, eos_token="</s>", model_max_length=2048,
              model_input_names=["input_ids", "attention_mask"], chat_template=template,
              clean_up_tokenization_spaces=False)
    if bos:
        kw.update(bos_token="<s>", pad_token="<pad>")
    return PreTrainedTokenizerFast(**kw)


def build(arch, vocab, seed):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if arch == "llama":
        cfg = LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                          initializer_range=0.15, rms_norm_eps=1e-5, bos_token_id=0, eos_token_id=1, pad_token_id=2,
                          tie_word_embeddings=False, use_cache=False, torch_dtype="float32")
        return LlamaForCausalLM(cfg).eval()
    cfg = GPT2Config(vocab_size=vocab, n_positions=2048, n_embd=32, n_layer=2, n_head=4, n_inner=64,
                     initializer_range=0.2, bos_token_id=1, eos_token_id=1, use_cache=False, torch_dtype="float32")
    return GPT2LMHeadModel(cfg).eval()


class _WithPast(torch.nn.Module):
    """An Optimum-like decoder signature: position_ids and past_key_values.* in, present.* out. The
    past is expected empty (length 0), so its sum adds nothing but keeps the inputs in the graph."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, *past):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            use_cache=False).logits
        extra = sum(p.sum() for p in past)
        return (logits + extra, *[p * 2.0 for p in past])


def export_with_past(model, out_dir, src_dir):
    os.makedirs(out_dir, exist_ok=True)
    c = model.config
    layers, kv, hd = c.num_hidden_layers, c.num_key_value_heads, c.hidden_size // c.num_attention_heads
    ids = torch.randint(3, c.vocab_size, (2, 24), dtype=torch.int64)
    mask = torch.ones_like(ids)
    pos = torch.arange(24).unsqueeze(0).expand(2, -1).contiguous()
    past = [torch.zeros(2, kv, 0, hd) for _ in range(2 * layers)]
    past_names = [f"past_key_values.{i}.{k}" for i in range(layers) for k in ("key", "value")]
    present_names = [n.replace("past_key_values", "present") for n in past_names]
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"}}
    for n in past_names:
        axes[n] = {0: "batch_size", 2: "past_sequence_length"}
    for n in present_names:
        axes[n] = {0: "batch_size", 2: "total_sequence_length"}
    path = os.path.join(out_dir, "model.onnx")
    with torch.no_grad():
        torch.onnx.export(_WithPast(model).eval(), (ids, mask, pos, *past), path,
                          input_names=["input_ids", "attention_mask", "position_ids", *past_names],
                          output_names=["logits", *present_names], dynamic_axes=axes, opset_version=17,
                          do_constant_folding=True, dynamo=False)
    export_lm.copy_support_files(src_dir, out_dir)
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    ids = rng.integers(0, c.vocab_size, size=(3, 50), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 30:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask,
             "position_ids": np.tile(np.arange(50, dtype=np.int64), (3, 1))}
    for n in past_names:
        feeds[n] = np.zeros((3, kv, 0, hd), dtype=np.float32)
    got = sess.run(["logits"], feeds)[0]
    with torch.no_grad():
        want = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    d = float(np.abs(got - want).max())
    print(f"  with-past export: max abs diff {d:.3e}")
    assert d < 1e-4


# ----------------------------------------------------------------------------- data

def licence_words():
    words = []
    for name in ("GPL-3", "Apache-2.0"):
        with open(os.path.join(LICENSE_DIR, name), encoding="utf-8") as fh:
            words += fh.read().split(" ")
    return words


def text_of(raw, words, start, n_tokens):
    """A slice of licence text, from word `start`, of about n_tokens tokens (never fewer)."""
    lo, hi = start + 1, len(words)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(raw.encode(" ".join(words[start:mid]), add_special_tokens=False).ids) >= n_tokens:
            hi = mid
        else:
            lo = mid + 1
    return " ".join(words[start:lo])


def dpo_long_rows(raw):
    w = licence_words()
    row = lambda i, p, c, r, note: dict(prompt=p, chosen=c, rejected=r, subset="dpo-" + note, id=i)
    repeat = "Repeat after me: the cat sat."
    return [
        row(1, "Summarise this licence:\n\n" + text_of(raw, w, 0, 2300), "It is the GNU GPL.",
            "A recipe for soup.", "long-prompt"),
        row(2, "Quote the licence.", text_of(raw, w, 3000, 2200), "I cannot.", "long-answer"),
        row(3, text_of(raw, w, 6000, 1000), text_of(raw, w, 200, 2000), "Short.", "long-both"),
        row(4, text_of(raw, w, 1500, 1900), "Yes, it is free software.", text_of(raw, w, 5000, 250),
            "prompt-cut-only"),
        row(5, repeat, f"Human: {repeat} <s><|user|>\n{repeat}</s>\n", "The cat sat.", "prompt-in-answer"),
        row(6, "Answer with one word: is the sky blue? ", "Yes", "No", "trailing-space"),
    ]


# ----------------------------------------------------------------------------- memory benchmark

def bench(out_root, vocabs, binary, pairs=16):
    """Llama-style policy/reference (d=256, 4 layers, GQA) at each vocabulary size, exported in both
    forms; 16 pairs of ~1024-token sequences; runs the binary (batch 8 pairs = 16 x 1024 tokens per
    call) under /usr/bin/time and prints peak RSS and pairs/s. The tokenizer is the fixtures' (1500
    tokens): the extra vocabulary rows exist only in the LM head, which is what costs memory."""
    import subprocess
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    root = os.path.dirname(HERE)
    raw = Tokenizer.from_file(os.path.join(root, "fixtures", "models", "tiny-llama-rm", "tokenizer.json"))
    tok = hf_tokenizer(raw, LLAMA_TEMPLATE, True)
    os.makedirs(out_root, exist_ok=True)
    w = licence_words()
    rows = [dict(prompt=text_of(raw, w, 400 * i, 500), chosen=text_of(raw, w, 9000 + 300 * i, 490),
                 rejected=text_of(raw, w, 5000 + 200 * i, 480), subset="bench", id=i) for i in range(pairs)]
    data = os.path.join(out_root, "pairs.jsonl")
    write_jsonl(data, rows)
    results = []
    for vocab in vocabs:
        dirs = {}
        for role, seed in (("policy", 31), ("ref", 32)):
            hf = os.path.join(out_root, f"{role}-{vocab}-hf")
            if not os.path.exists(os.path.join(hf, "model.safetensors")):
                torch.manual_seed(seed)
                cfg = LlamaConfig(vocab_size=vocab, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                                  initializer_range=0.02, bos_token_id=0, eos_token_id=1, pad_token_id=2,
                                  tie_word_embeddings=False, use_cache=False, torch_dtype="float32")
                LlamaForCausalLM(cfg).eval().save_pretrained(hf, safe_serialization=True)
                save_tokenizer(tok, hf)
            for form in ("logprobs", "logits"):
                out = os.path.join(out_root, f"{role}-{vocab}-{form}")
                if not os.path.exists(os.path.join(out, "model.onnx")):
                    export_lm.export_and_verify(hf, out, form)
                dirs[(role, form)] = out
        for form in ("logprobs", "logits"):
            res_dir = os.path.join(out_root, f"results-{vocab}-{form}")
            cmd = ["/usr/bin/time", "-f", "%M %e", binary, "--model", dirs[("policy", form)], "--ref_model",
                   dirs[("ref", form)], "--dataset", data, "--batch_size", "8", "--max_batch_tokens", "0",
                   "--output_dir", res_dir, "--quiet"]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr}")
            rss_kb, wall = p.stderr.strip().splitlines()[-1].split()
            results.append((vocab, form, int(rss_kb) / 1024, pairs / float(wall), float(wall)))
    print(f"\nDPO memory benchmark: {pairs} pairs, batch 8 pairs (16 sequences) x ~1024 tokens, policy + reference")
    print(f"{'vocab':>7} {'form':<9} {'peak RSS MiB':>13} {'pairs/s':>8} {'wall s':>7}  (pairs/s = pairs / wall time, "
          "model loading included)")
    for vocab, form, rss, pps, wall in results:
        print(f"{vocab:>7} {form:<9} {rss:>13.0f} {pps:>8.2f} {wall:>7.1f}")


# ----------------------------------------------------------------------------- main

def main(argv=None):
    from tokenizers import Tokenizer

    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(HERE))
    ap.add_argument("--bench", metavar="DIR", help="build and run the memory benchmark in DIR instead")
    ap.add_argument("--vocab", type=int, nargs="+", default=[32000], help="vocabulary sizes for --bench")
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(HERE), "target", "release", "rewardbench"))
    a = ap.parse_args(argv)
    if a.bench:
        bench(a.bench, a.vocab, a.binary)
        return 0
    torch.use_deterministic_algorithms(True)
    fx = os.path.join(a.root, "fixtures")
    raw = Tokenizer.from_file(os.path.join(fx, "models", "tiny-llama-rm", "tokenizer.json"))
    vocab = raw.get_vocab_size()
    write_jsonl(os.path.join(fx, "data", "dpo_long.jsonl"), dpo_long_rows(raw))
    stems = sorted(f[:-6] for f in os.listdir(os.path.join(fx, "data")) if f.endswith(".jsonl"))
    datasets = {s: reference.read_jsonl(os.path.join(fx, "data", s + ".jsonl")) for s in stems}

    for pair in PAIRS:
        tok = hf_tokenizer(raw, pair["template"], pair["bos"])
        dirs = {}
        for role, seed in zip(("policy", "ref"), pair["seeds"]):
            name = pair[role]
            out = os.path.join(fx, "models", name)
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            model = build(pair["arch"], vocab, seed)
            model.save_pretrained(out, safe_serialization=True)
            save_tokenizer(tok, out)
            model = export_lm.load_lm(out)  # eager attention, as exported and as the reference runs it
            print(f"== {name}: {type(model).__name__}, {sum(p.numel() for p in model.parameters())} params")
            diffs = {"logprobs": export_lm.export_and_verify(out, out, "logprobs", model=model)}
            if role == "policy":
                diffs["logits"] = export_lm.export_and_verify(out, os.path.join(out, "logits"), "logits", model=model)
            if name == "tiny-llama-ref":
                export_with_past(model, os.path.join(out, "with-past"), out)
            with open(os.path.join(out, "fixture.json"), "w") as fh:
                json.dump({"name": name, "architecture": type(model).__name__, "seed": seed, "vocab_size": vocab,
                           "onnx_vs_torch_max_abs_diff": diffs, "generated_by": "export/make_dpo_fixtures.py"},
                          fh, indent=2)
                fh.write("\n")
            dirs[role] = out

        rtok = dpo_reference.load_tokenizer(dirs["policy"])
        policy, ref = dpo_reference.load_lm(dirs["policy"]), dpo_reference.load_lm(dirs["ref"])
        ref_dir = os.path.join(dirs["policy"], "dpo-reference")
        os.makedirs(ref_dir)
        margins = {m: float("inf") for m in ("ref", "sum", "avg", "norm")}
        merges = truncated = prompt_cut = 0
        for stem, rows in datasets.items():
            recs = dpo_reference.score_rows(policy, ref, rtok, rows, batch_size=8)
            for r in recs:
                merges += any(r["boundary_merge"])
                truncated += any(len(r[f"input_ids_{k}"]) - r[f"prompt_len_{k}"] == 1920 for k in ("chosen", "rejected"))
                prompt_cut += r["prompt_len_chosen"] == 128 and stem == "dpo_long"
                if r["text_chosen"] != r["text_rejected"]:
                    for m, (c, j, _) in r["rewards"].items():
                        margins[m] = min(margins[m], abs(c - j))
            write_jsonl(os.path.join(ref_dir, stem + ".jsonl"), recs, compact=True)
            acc = {m: sum(r["rewards"][m][2] for r in recs) / len(recs) for m in margins}
            print(f"  {stem}: accuracy {acc}, max tokens "
                  f"{max(max(len(r['input_ids_chosen']), len(r['input_ids_rejected'])) for r in recs)}")
        print(f"  rows with a boundary merge: {merges}; answers cut to 1920: {truncated}; prompts cut to 128: "
              f"{prompt_cut}; min margins {margins}")
        assert truncated >= 2 and prompt_cut >= 3, "expected rows that hit each truncation rule"
        if pair["arch"] == "gpt2":
            assert merges >= 1, "expected rows with a prompt-boundary merge"
        with open(os.path.join(ref_dir, "summary.json"), "w") as fh:
            json.dump({"policy": pair["policy"], "ref": pair["ref"], "batch_size": 8, "boundary_merge_rows": merges,
                       "rows_with_answer_cut": truncated, "rows_with_prompt_cut": prompt_cut, "min_nontie_margin": margins,
                       "settings": "rewardbench/dpo.py DPOInference rules (0.1.4): pad = eos, bos falls back to eos; "
                                   "fp32 eager PyTorch; rewards.ref = policy sum - reference sum; rewards.sum/avg/norm "
                                   "= reference-free policy log-probs; each [chosen, rejected, result]"},
                      fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
