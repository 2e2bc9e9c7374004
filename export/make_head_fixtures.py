#!/usr/bin/env python3
"""Fixtures for custom reward heads (tests/integration/heads.rs): tiny random ArmoRM- and
GRM-style models exported with `export_rm.py --head`, and their PyTorch references.

    export/.venv/bin/python export/make_head_fixtures.py [--root .]

Deterministic and offline (~20 s); run after export/make_fixtures.py, whose tiny Llama
tokenizer (vocab 1500, pad `<pad>` = 2, a template that ends every message with `</s>` and
starts with BOS, so every text starts with a double BOS) both reuse. It writes:

1. fixtures/models/tiny-armo-rm/: a mirror of ArmoRM (export/heads.py; Llama backbone,
   regression_layer to 5 objectives, gating MLP with softmax over the hidden state at the last
   `</s>\\n<|assistant|>\\n` pattern (this tokenizer's end of a user turn and assistant header,
   where ArmoRM uses Llama-3's), a random reward transform matrix), saved as a checkpoint and
   exported `--head armo --model_id RLHFlow/ArmoRM-Llama3-8B-v0.1`: outputs `score` and
   `rewards` at every position; the registry entry reads them at first pad - 1.
2. fixtures/models/tiny-grm-rm/: a mirror of GRM (backbone + v_head MLP), exported
   `--head grm --model_id Ray2333/GRM-llama3-8B-sftreg`: `token_logits` at every position; the
   registry entry reads them with GRM's rule.
3. fixtures/data/heads.jsonl: the pooling rows (pad and EOS ids inside texts) and multi-turn
   rows (the gating reads the last user turn's end).
4. head-reference.json in each model folder: per text the token ids and mask as upstream's
   ArmoRMPipeline / GRMPipeline make them (special tokens, no double-BOS fix), upstream's
   position, the model's own forward pass on the text alone (`score`) and in RewardBench's
   left-padded batches of 8 (`left8`: dataset order, chosen and rejected in separate calls),
   the head at every position (`token_scores`), for armo the objectives at the position.
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
import heads  # noqa: E402
import make_fixtures  # noqa: E402
import make_pooling_fixtures  # noqa: E402
import reference  # noqa: E402

ARMO_SEED = 211
GRM_SEED = 223
ARMO_ID = "RLHFlow/ArmoRM-Llama3-8B-v0.1"
GRM_ID = "Ray2333/GRM-llama3-8B-sftreg"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def head_rows():
    rows = make_pooling_fixtures.pooling_rows()
    turn = lambda *msgs: [{"role": "user" if i % 2 == 0 else "assistant", "content": m} for i, m in enumerate(msgs)]
    rows += [
        dict(prompt=turn("Hi there.", "Hello! How can I help?", "Name a prime number."),
             chosen="Seven.", rejected="Eight.", subset="heads-multiturn", id=12),
        dict(prompt=turn("Pick a colour.", "Red.", "Why red?", "It is bright.", "And blue?"),
             chosen="Blue is calm.", rejected="</s> no.", subset="heads-multiturn", id=13),
    ]
    return rows


def tokenize(tok, texts, side="left"):
    """ArmoRMPipeline / GRMPipeline: special tokens, padding, no double-BOS fix."""
    tok.padding_side = side
    enc = tok(texts, truncation=False, padding=True, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def records(head, model, tok, texts, pad):
    out = []
    for t in texts:
        ids, mask = tokenize(tok, [t])
        at = int(heads.upstream_index(head, ids, mask, pad)[0])
        score = float(heads.upstream_scores(head, model, ids, mask)[0])
        outs = heads.torch_outputs(head, model, ids.numpy(), mask.numpy())
        rec = {
            "text": t,
            "input_ids": ids[0].tolist(),
            "attention_mask": mask[0].tolist(),
            "position": at,
            "score": score,
            "token_scores": [float(x) for x in outs[0][0, :, 0]],
        }
        if head == "armo":
            rec["rewards"] = [float(x) for x in outs[1][0, at]]
            assert abs(rec["token_scores"][at] - score) < 1e-5
        out.append(rec)
    return out


def left8(head, model, tok, texts):
    scores = []
    for b in range(0, len(texts), 8):
        ids, mask = tokenize(tok, texts[b : b + 8], "left")
        scores.extend(float(x) for x in heads.upstream_scores(head, model, ids, mask))
    return scores


def references(head, model, tok, pad, rows):
    rendered = [reference.render_row(r, tok) for r in rows]
    chosen = [c for _, c, _ in rendered]
    rejected = [r for _, _, r in rendered]
    rc = records(head, model, tok, chosen, pad)
    rr = records(head, model, tok, rejected, pad)
    for recs, texts in ((rc, chosen), (rr, rejected)):
        for rec, s in zip(recs, left8(head, model, tok, texts)):
            rec["left8"] = s
    out = []
    for i, (row, c, r) in enumerate(zip(rows, rc, rr)):
        out.append({"index": i, "id": row["id"], "subset": row["subset"], "chosen": c, "rejected": r,
                    "result": int(c["score"] > r["score"]), "result_left8": int(c["left8"] > r["left8"])})
    return out


def make(head, out, src, tok, build, model_id, rows, settings):
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    for f in TOKENIZER_FILES:
        shutil.copy2(os.path.join(src, f), os.path.join(out, f))
    model = build()
    model.save_pretrained(out, safe_serialization=True)
    n = sum(p.numel() for p in model.parameters())
    print(f"== {os.path.basename(out)}: {type(model).__name__}, {n} params")
    diff = export_rm.export_and_verify(out, out, opset=17, head=head, model_id=model_id)
    model = heads.load(head, out)
    pad = int(model.config.pad_token_id)
    refs = references(head, model, tok, pad, rows)
    doc = {**settings, "model_id": model_id, "head": head, "pad_token_id": pad,
           "onnx_vs_torch_max_abs_diff": diff, "rows": refs}
    if head == "armo":
        doc["gating_token_pattern"] = heads.gating_pattern(model)
        doc["rule"] = "(argmax(ids == pad) - 1) mod L; gating at the last gating_token_pattern"
    else:
        doc["rule"] = "L - 1 if any(mask[:, 0] == 0) else mask.sum(-1) - 1"
    with open(os.path.join(out, "head-reference.json"), "w") as fh:
        json.dump(doc, fh, separators=(",", ":"))
        fh.write("\n")
    for r in refs:
        print(f"  row {r['index']}: chosen {r['chosen']['score']:+.4f} rejected {r['rejected']['score']:+.4f}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(HERE), help="project root (default: parent of export/)")
    a = ap.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    fx = os.path.join(a.root, "fixtures")
    rows = head_rows()
    make_fixtures.write_jsonl(os.path.join(fx, "data", "heads.jsonl"), rows)
    src = os.path.join(fx, "models", "tiny-llama-rm")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src)
    with open(os.path.join(src, "config.json")) as fh:
        vocab = json.load(fh)["vocab_size"]
    pad = tok.pad_token_id
    pattern = tok.encode("</s>\n<|assistant|>\n", add_special_tokens=False)
    for r in rows:  # every text holds the pattern, after the last user turn
        for text in reference.render_row(r, tok)[1:]:
            ids = tok(text)["input_ids"]
            heads.find_token_for_gating(ids, pattern)
    settings = {
        "generated_by": "export/make_head_fixtures.py",
        "data": "fixtures/data/heads.jsonl",
        "tokenizer_from": "fixtures/models/tiny-llama-rm",
        "tokenization": "the tokenizer's chat template, special tokens, no double-BOS fix (ArmoRMPipeline, GRMPipeline)",
        "score": "the model's own forward pass on the text alone (batch of one)",
        "left8": "RewardBench's batches: dataset order, 8 rows, chosen and rejected apart, left padding",
        "versions": make_fixtures.versions(),
    }
    make("armo", os.path.join(fx, "models", "tiny-armo-rm"), src, tok,
         lambda: heads.build_armo(vocab, ARMO_SEED, pattern, pad), ARMO_ID, rows, settings)
    make("grm", os.path.join(fx, "models", "tiny-grm-rm"), src, tok,
         lambda: heads.build_grm(vocab, GRM_SEED, pad), GRM_ID, rows, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
