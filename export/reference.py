"""PyTorch reference scoring that follows the `rewardbench` CLI (rewardbench 0.1.4) for preference data.

Spec sections 2.3 (dataset shapes), 2.5 (rendering), 4.1 (pipeline, double-BOS rule, pooling),
4.2 (score extraction, strict comparison), 4.5 (batching), 6.1 (chat template precedence).

    from reference import load_rm, score_dataset
    model, tok = load_rm("fixtures/models/tiny-llama-rm")
    records, summary = score_dataset(model, tok, rows, batch_size=8)
"""
from __future__ import annotations

import json
from collections import OrderedDict

import torch


def load_rm(model_dir: str):
    """Load like the CLI: fp32, eval, dropout off, pad = eos when missing, config.pad_token_id synced."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
        tok.pad_token_id = tok.eos_token_id
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, torch_dtype=torch.float32, attn_implementation="eager"
    )
    model.config.pad_token_id = tok.pad_token_id
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    model.eval()
    return model, tok


def read_jsonl(path: str):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def normalize_row(row: dict) -> dict:
    """Spec 2.3: conversation shape (message-list chosen) -> prompt = chosen[:-1], answers = last contents."""
    row = dict(row)
    if isinstance(row.get("chosen"), list):
        chosen, rejected = row["chosen"], row["rejected"]
        row["prompt"] = chosen[:-1]
        row["chosen"] = chosen[-1]["content"]
        row["rejected"] = rejected[-1]["content"]
    return row


def render_row(row: dict, tok):
    """Spec 2.5 / 6.1 with a tokenizer chat template. Returns (prompt_str, text_chosen, text_rejected)."""
    assert tok.chat_template is not None, "fixture path requires a tokenizer chat template"
    row = normalize_row(row)
    prompt = row["prompt"]
    render = lambda msgs: tok.apply_chat_template(msgs, tokenize=False)  # add_generation_prompt=False
    if isinstance(prompt, list) and len(prompt) > 0:
        msgs = [
            {"role": "user" if i % 2 == 0 else "assistant", "content": m["content"]}
            for i, m in enumerate(prompt)
        ]
        assert msgs[-1]["role"] == "user", "prompt must have an odd number of messages"
    else:
        assert isinstance(prompt, str), f"unsupported prompt type {type(prompt)}"
        msgs = [{"role": "user", "content": prompt}]
    prompt_str = render(msgs)
    text_chosen = render(msgs + [{"role": "assistant", "content": row["chosen"]}])
    text_rejected = render(msgs + [{"role": "assistant", "content": row["rejected"]}])
    return prompt_str, text_chosen, text_rejected


def tokenize_pipeline(tok, texts, padding_side="left"):
    """RewardBenchPipeline.tokenize + double-BOS fix (spec 4.1). CLI: truncation=False, padding=True."""
    tok.padding_side = padding_side
    enc = tok(texts, truncation=False, padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"].clone()
    bos = tok.bos_token_id
    if tok.bos_token is not None and bos is not None:
        L = ids.shape[1]
        start = torch.argmax(mask, dim=1)
        nxt = torch.clamp(start + 1, max=L - 1)
        rows = torch.arange(ids.shape[0])
        double = (ids[rows, start] == bos) & (ids[rows, nxt] == bos)
        mask[rows[double], start[double]] = 0
    return ids, mask


@torch.no_grad()
def forward_scores(model, ids, mask):
    logits = model(input_ids=ids, attention_mask=mask).logits
    out = logits.float().cpu().numpy().tolist()
    return [x[0] if len(x) == 1 else x for x in out]


def score_texts(model, tok, texts, batch_size=1, padding_side="left"):
    scores = []
    for b in range(0, len(texts), batch_size):
        ids, mask = tokenize_pipeline(tok, texts[b : b + batch_size], padding_side)
        scores.extend(forward_scores(model, ids, mask))
    return scores


def score_dataset(model, tok, rows, batch_size=8):
    """Batch-1 (unpadded) reference plus the CLI's `--batch_size N` left-padded run."""
    records = []
    rendered = [render_row(r, tok) for r in rows]
    tc = [r[1] for r in rendered]
    tr = [r[2] for r in rendered]
    sc1 = score_texts(model, tok, tc, 1)
    sr1 = score_texts(model, tok, tr, 1)
    scb, srb = [], []
    for b in range(0, len(rows), batch_size):  # chosen and rejected in separate padded calls
        scb.extend(score_texts(model, tok, tc[b : b + batch_size], batch_size, "left"))
        srb.extend(score_texts(model, tok, tr[b : b + batch_size], batch_size, "left"))
    for i, (row, (p, c, r)) in enumerate(zip(rows, rendered)):
        ic, mc = tokenize_pipeline(tok, [c])
        ir, mr = tokenize_pipeline(tok, [r])
        records.append(
            OrderedDict(
                index=i,
                id=row.get("id"),
                subset=row.get("subset"),
                prompt=p,
                text_chosen=c,
                text_rejected=r,
                input_ids_chosen=ic[0].tolist(),
                attention_mask_chosen=mc[0].tolist(),
                input_ids_rejected=ir[0].tolist(),
                attention_mask_rejected=mr[0].tolist(),
                score_chosen=sc1[i],
                score_rejected=sr1[i],
                result=int(sc1[i] > sr1[i]),
                score_chosen_left8=scb[i],
                score_rejected_left8=srb[i],
                result_left8=int(scb[i] > srb[i]),
            )
        )
    per = OrderedDict()
    for rec in records:
        per.setdefault(rec["subset"], []).append(rec["result"])
    summary = OrderedDict(
        accuracy=sum(r["result"] for r in records) / len(records),
        num_prompts=len(records),
        per_subset={k: sum(v) / len(v) for k, v in per.items()},
        accuracy_left8=sum(r["result_left8"] for r in records) / len(records),
        settings=(
            "rewardbench CLI semantics (0.1.4): chat template rendering, add_special_tokens=True, "
            "truncation=False, double-BOS mask, fp32 eager PyTorch logits, strict chosen>rejected; "
            f"score_*: batch size 1 (no padding); *_left8: batch size {batch_size}, left padding, "
            "dataset order, chosen and rejected padded in separate calls"
        ),
    )
    return records, summary
