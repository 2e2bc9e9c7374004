#!/usr/bin/env python3
"""Fixtures for the evaluator's pooling rules and score transforms (tests/integration/pooling.rs).

    export/.venv/bin/python export/make_pooling_fixtures.py [--root .]

Deterministic and offline (~1 min); run after export/make_fixtures.py, whose tiny Llama
checkpoint and tokenizer it reuses. It writes:

1. fixtures/models/tiny-llama-rm/per-token/: the tiny Llama fixture's checkpoint exported with
   `export_rm.py --per_token` (output `token_logits` [batch, seq, 1]). Pad `<pad>` (id 2) is not
   EOS; every text starts with a masked double BOS.
2. fixtures/models/tiny-llama-bins/: a smaller random Llama whose head has 10 labels, with no pad
   token (pad = EOS, as RewardBench falls back) and a template that ends every message with
   EOS, so a text ends in pad ids and has pad ids inside; exported with --per_token.
   fixtures/models/tiny-llama-bins/ldl/: an LDL-Reward-style pooled graph of the same
   checkpoint: the 10 labels at the last non-pad token as bins, `distribution` = their softmax
   [batch, 10] and `score` = the expectation over linspace(0, 1, 10) [batch, 1] (LDL-Reward's
   `total_reward_distribution` and `score`); no `logits` output.
3. fixtures/data/pooling.jsonl (v1 pairs: pad ids inside texts and prompts, answers ending in
   EOS or `<pad>`, an empty answer, a tie, lengths that differ within a batch of 8) and
   fixtures/data/pooling_rb2.jsonl (best-of-4 rows, with an exact duplicate completion).
4. pooling-reference.json in both model folders: per text its token ids and mask (RewardBench's
   tokenization, double-BOS mask), the head at every position, and per pooling rule the position
   and score, computed by the upstream formula on (a) the text alone, (b) RewardBench's own
   batches (dataset order, 8 rows, chosen and rejected apart, left padding) and, for grm, (c)
   right-padded batches of 8 (run_v2's padding side), where GRM's rule reads padding.
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

import export_rm  # noqa: E402
import make_fixtures  # noqa: E402
import reference  # noqa: E402

# The upstream formulas, each on a padded batch (ids, mask: [B, L] int64 tensors), as written
# in transformers and RewardBench's model files.
RULES = {
    # transformers >= 4.49 (GenericForSequenceClassification): rightmost token whose id != pad
    "last_non_pad": lambda ids, mask, pad: (torch.arange(ids.shape[-1]) * (ids != pad).int()).argmax(-1),
    # transformers < 4.49, Starling, INF-ORM, OLMo-2 adapters: first pad id - 1, modulo L
    "first_pad_minus_one": lambda ids, mask, pad: (torch.eq(ids, pad).int().argmax(-1) - 1) % ids.shape[-1],
    # UltraRM: attention_mask.cumsum(1).argmax(1); Beaver: mask.nonzero()[-1] (the same index)
    "last_attended": lambda ids, mask, pad: mask.cumsum(1).argmax(1),
    # Skywork-VL: attention_mask.sum(-1) - 1
    "mask_sum_minus_one": lambda ids, mask, pad: mask.sum(-1) - 1,
    # GRM: L - 1 for every row when any row's first column is masked, else mask.sum - 1
    "grm": lambda ids, mask, pad: (torch.full((ids.shape[0],), ids.shape[-1] - 1)
                                   if bool(torch.any(mask[:, 0] == 0)) else mask.sum(-1) - 1),
}

BINS = 10
BINS_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
BINS_SEED = 97


def pooling_rows():
    long_answer = " ".join(["Rivers carry water from high ground to the sea, shaping valleys as they go."] * 4)
    row = lambda i, subset, prompt, chosen, rejected: dict(
        prompt=prompt, chosen=chosen, rejected=rejected, subset=subset, id=i)
    return [
        row(0, "pool-plain", "What is 2+2?", "4", "Five, I think."),
        row(1, "pool-plain", "Name a colour.", "Blue, like the sky on a clear day.", "Seven."),
        row(2, "pool-pad", "Repeat the marker.", "Here <pad> it is.", "No marker here."),
        row(3, "pool-pad", "Is <pad> a token?", "Yes, a padding token.", "No."),  # pad id in the prompt
        row(4, "pool-eos", "End your answer twice.", "Done.</s>", "Done."),
        row(5, "pool-eos", "Use a separator.", "first</s>second", "first second"),
        row(6, "pool-pad", "Pad the end.", "end<pad>", "end<pad><pad>"),
        row(7, "pool-plain", "Say nothing.", "", "Something."),
        row(8, "pool-plain", "Tie?", "Same.", "Same."),
        row(9, "pool-plain", "Write a longer answer about rivers.", long_answer, "Rivers are wet."),
        row(10, "pool-eos", "Two lines, please.", "one</s>\ntwo</s>", "one\ntwo"),
        row(11, "pool-pad", "Short or long?", "Short.", "Long <pad> answer with <pad> markers <pad> inside it."),
    ]


def rb2_rows():
    row = lambda i, subset, prompt, chosen, rejected: dict(
        id=str(i), prompt=prompt, chosen=[chosen], rejected=rejected, num_correct=1,
        num_incorrect=len(rejected), total_completions=1 + len(rejected), subset=subset)
    return [
        row(0, "Factuality", "What is the capital of France?", "Paris.", ["Lyon.", "Berlin.", "Paris, Texas."]),
        row(1, "Focus", "Describe a cat in one sentence.", "A small furry animal that purrs.",
            ["Dogs are loyal.", "The stock market fell.", "Cats</s> purr."]),
        row(2, "Math", "What is 12 * 12?", "144", ["124", "144.", "1212"]),
        row(3, "Precise IF", "Answer with exactly one word: colour of grass?", "Green",
            ["Green.", "It is green.", "Green"]),  # the last is the chosen text again: an exact tie
        row(4, "Safety", "How do I pick a lock?", "I can't help with breaking into property.",
            ["Use a tension wrench <pad> and a pick.", "Sure!", "Call a locksmith."]),
        row(5, "Math", "Is 7 prime?", "Yes, 7 is prime.", ["No.", "Yes.", "7 is even."]),
    ]


def head_at_every_position(model, ids, mask):
    return export_rm.torch_token_logits(model, ids, mask)  # [B, L, labels] numpy


def tokenize_alone(tok, text):
    ids, mask = reference.tokenize_pipeline(tok, [text])
    return ids, mask


def apply_rules(tokens, ids, mask, pad, offsets, lengths):
    """Per rule: for each row, (position in the text or None when it is padding, score)."""
    out = {}
    for name, rule in RULES.items():
        at = rule(ids, mask, pad).tolist()
        res = []
        for r, p in enumerate(at):
            p = int(p)
            in_text = p - offsets[r]
            res.append({
                "position": in_text if 0 <= in_text < lengths[r] else None,
                "score": [float(x) for x in tokens[r, p]],
            })
        out[name] = res
    return out


def text_records(model, tok, texts, pad):
    """Each text alone: ids, mask, the head at every position, every rule."""
    recs = []
    for t in texts:
        ids, mask = tokenize_alone(tok, t)
        tokens = head_at_every_position(model, ids, mask)
        rules = apply_rules(tokens, ids, mask, pad, [0], [ids.shape[1]])
        recs.append({
            "text": t,
            "input_ids": ids[0].tolist(),
            "attention_mask": mask[0].tolist(),
            "token_logits": [[float(x) for x in row] for row in tokens[0]],
            "alone": {k: v[0] for k, v in rules.items()},
        })
    return recs


def batched(model, tok, texts, pad, side, batch_size=8):
    """RewardBench's batches of the given texts (in order): padded on `side`, every rule."""
    out = []
    for b in range(0, len(texts), batch_size):
        chunk = texts[b : b + batch_size]
        ids, mask = reference.tokenize_pipeline(tok, chunk, side)
        lengths = [len(tok(t)["input_ids"]) for t in chunk]
        L = ids.shape[1]
        offsets = [L - n if side == "left" else 0 for n in lengths]
        tokens = head_at_every_position(model, ids, mask)
        rules = apply_rules(tokens, ids, mask, pad, offsets, lengths)
        for r in range(len(chunk)):
            out.append({k: v[r] for k, v in rules.items()})
    return out


class LdlStyle(torch.nn.Module):
    """LDL-Reward-27B's head shape on a 10-label model: the labels at the last non-pad token
    as bins, `distribution` = softmax, `score` = sum(distribution * linspace(0, 1, 10))."""

    def __init__(self, model, pad):
        super().__init__()
        self.model = model
        self.pad = pad

    def forward(self, input_ids, attention_mask):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        dist = torch.softmax(logits.float(), dim=-1)
        score = (dist * torch.linspace(0, 1, dist.shape[-1])).sum(-1, keepdim=True)
        return dist, score


def export_ldl(model, pad, out_dir, src_dir):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.onnx")
    wrapper = LdlStyle(model, pad).eval()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (2, 24), generator=g, dtype=torch.int64)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        torch.onnx.export(
            wrapper, (ids, mask), path,
            input_names=["input_ids", "attention_mask"], output_names=["distribution", "score"],
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                          "distribution": {0: "batch"}, "score": {0: "batch"}},
            opset_version=17, do_constant_folding=True, dynamo=False,
        )
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(path)
    export_rm.copy_support_files(src_dir, out_dir, pad)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    worst = 0.0
    for side in ("left", "right"):
        seqs = [rng.integers(3, model.config.vocab_size, size=n) for n in (3, 40, 300)]
        ids, mask = export_rm._pad_batch(seqs, pad, side)
        got = sess.run(["distribution", "score"], {"input_ids": ids, "attention_mask": mask})
        with torch.no_grad():
            want = wrapper(torch.from_numpy(ids), torch.from_numpy(mask))
        for g_, w in zip(got, want):
            worst = max(worst, float(np.max(np.abs(g_ - w.numpy()))))
    print(f"  ldl/: max abs diff ONNX Runtime vs PyTorch {worst:.3e}")
    assert worst < 1e-5
    return wrapper


def build_bins(vocab):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=2048, rope_theta=10000.0,
        rms_norm_eps=1e-5, initializer_range=0.3, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        tie_word_embeddings=False, use_cache=False, num_labels=BINS, torch_dtype="float32",
    )
    torch.manual_seed(BINS_SEED)
    return LlamaForSequenceClassification(cfg)


def references(model, tok, pad, rows, rb2, ldl=None):
    rendered = [reference.render_row(r, tok) for r in rows]
    chosen = [c for _, c, _ in rendered]
    rejected = [r for _, _, r in rendered]
    recs_c = text_records(model, tok, chosen, pad)
    recs_r = text_records(model, tok, rejected, pad)
    for side, key in (("left", "left8"), ("right", "right8")):
        for recs, texts in ((recs_c, chosen), (recs_r, rejected)):
            for rec, b in zip(recs, batched(model, tok, texts, pad, side)):
                rec[key] = b if key == "left8" else {"grm": b["grm"]}
    pooling = []
    for i, (row, c, r) in enumerate(zip(rows, recs_c, recs_r)):
        entry = {"index": i, "id": row["id"], "subset": row["subset"], "chosen": c, "rejected": r}
        # upstream's verdict: Python's list comparison (lexicographic for several labels)
        entry["result"] = {k: int(c["alone"][k]["score"] > r["alone"][k]["score"]) for k in RULES}
        pooling.append(entry)
    out = {"pooling": pooling, "rb2": []}
    for row in rb2:
        texts = [reference.render_row({"prompt": row["prompt"], "chosen": t, "rejected": t}, tok)[1]
                 for t in row["chosen"] + row["rejected"]]
        comps = text_records(model, tok, texts, pad)
        for c in comps:
            del c["token_logits"]  # keep the file small; the v1 rows check every position
            c["alone"] = {"last_non_pad": c["alone"]["last_non_pad"]}
        out["rb2"].append({"id": row["id"], "subset": row["subset"], "completions": comps})
    if ldl is not None:
        for entry in pooling:
            for side in ("chosen", "rejected"):
                add_ldl(ldl, entry[side])
        for row in out["rb2"]:
            for c in row["completions"]:
                add_ldl(ldl, c)
    return out


def add_ldl(ldl, rec):
    ids = torch.tensor([rec["input_ids"]])
    mask = torch.tensor([rec["attention_mask"]])
    with torch.no_grad():
        dist, score = ldl(ids, mask)
    rec["ldl"] = {"distribution": [float(x) for x in dist[0]], "score": [float(score[0, 0])]}


def write_json(path, obj):
    with open(path, "w") as fh:
        json.dump(obj, fh, separators=(",", ":"))
        fh.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(HERE), help="project root (default: parent of export/)")
    a = ap.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    fx = os.path.join(a.root, "fixtures")
    rows, rb2 = pooling_rows(), rb2_rows()
    make_fixtures.write_jsonl(os.path.join(fx, "data", "pooling.jsonl"), rows)
    make_fixtures.write_jsonl(os.path.join(fx, "data", "pooling_rb2.jsonl"), rb2)
    settings = {
        "generated_by": "export/make_pooling_fixtures.py",
        "rules": {
            "last_non_pad": "(arange(L) * (ids != pad)).argmax(-1)",
            "first_pad_minus_one": "(eq(ids, pad).int().argmax(-1) - 1) % L",
            "last_attended": "mask.cumsum(1).argmax(1)",
            "mask_sum_minus_one": "mask.sum(-1) - 1",
            "grm": "L - 1 if any(mask[:, 0] == 0) else mask.sum(-1) - 1",
        },
        "alone": "each text as a batch of one (no padding)",
        "left8": "RewardBench's batches: dataset order, 8 rows, chosen and rejected texts in separate calls, "
                 "left padding; position is in the text, null when the rule read a padding column",
        "right8": "the same batches padded on the right (run_v2's side); grm only",
        "versions": make_fixtures.versions(),
    }

    # 1. the tiny Llama fixture, per token
    llama = os.path.join(fx, "models", "tiny-llama-rm")
    out = os.path.join(llama, "per-token")
    if os.path.isdir(out):
        shutil.rmtree(out)
    print("== tiny-llama-rm/per-token")
    diff = export_rm.export_and_verify(llama, out, opset=17, per_token=True)
    model, tok = reference.load_rm(llama)
    pad = int(model.config.pad_token_id)
    refs = references(model, tok, pad, rows, rb2)
    write_json(os.path.join(out, "pooling-reference.json"),
               {**settings, "model": "fixtures/models/tiny-llama-rm", "pad_token_id": pad, "num_labels": 1,
                "onnx_vs_torch_max_abs_diff": diff, **refs})

    # 2. ten labels, pad = eos
    bins = os.path.join(fx, "models", "tiny-llama-bins")
    if os.path.isdir(bins):
        shutil.rmtree(bins)
    os.makedirs(bins)
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(os.path.join(llama, "tokenizer.json"))
    btok = make_fixtures.hf_tokenizer(raw, BINS_TEMPLATE, with_pad=False)
    make_fixtures.save_tokenizer(btok, bins)
    bmodel = build_bins(raw.get_vocab_size())
    bmodel.eval()
    bmodel.save_pretrained(bins, safe_serialization=True)
    print(f"== tiny-llama-bins: {sum(p.numel() for p in bmodel.parameters())} params, {BINS} labels")
    diff = export_rm.export_and_verify(bins, bins, opset=17, per_token=True)
    bmodel, btok = reference.load_rm(bins)
    pad = int(bmodel.config.pad_token_id)
    ldl = export_ldl(bmodel, pad, os.path.join(bins, "ldl"), bins)
    refs = references(bmodel, btok, pad, rows, rb2, ldl)
    write_json(os.path.join(bins, "pooling-reference.json"),
               {**settings, "model": "fixtures/models/tiny-llama-bins", "pad_token_id": pad, "num_labels": BINS,
                "ldl": "ldl/: softmax of the 10 labels at the last non-pad token, score = sum(p * linspace(0, 1, 10))",
                "onnx_vs_torch_max_abs_diff": diff, **refs})
    for r in refs["pooling"]:
        print(f"  row {r['index']}: positions chosen {[r['chosen']['alone'][k]['position'] for k in RULES]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
