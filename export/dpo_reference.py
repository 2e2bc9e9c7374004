"""PyTorch reference for DPO implicit rewards, following RewardBench (rewardbench/dpo.py `DPOInference`,
0.1.4, itself copied from TRL's DPOTrainer) and its CLI's DPO set-up (spec sections 1.1, 1.3, 5).

    from dpo_reference import load_tokenizer, load_lm, score_rows
    tok = load_tokenizer("fixtures/models/tiny-llama-policy")
    policy, ref = load_lm(policy_dir), load_lm(ref_dir)
    records = score_rows(policy, ref, tok, rows, batch_size=8)

Every record holds the rendered texts, the token ids and prompt lengths of the chosen and rejected
sequences, and, for the policy and the reference model, the per-sequence `sum`, `avg` and `norm`
log-probabilities over the response; the rewards are then
    with a reference model:  policy sum - reference sum   (RewardBench's CLI, `ref_free_norm="none"`)
    reference-free:          policy sum | avg | norm      (scripts/run_dpo.py --ref_free_type)
and `result = reward_chosen > reward_rejected` (strict).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

import reference

LABEL_PAD = -100
MAX_LENGTH = 2048
MAX_PROMPT_LENGTH = 128


def load_tokenizer(model_dir: str):
    """The CLI's DPO set-up: pad = eos; a tokenizer without BOS uses eos as BOS (and pad)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.pad_token = tok.eos_token
    if tok.bos_token is None:
        tok.bos_token_id = tok.eos_token_id
        tok.pad_token_id = tok.eos_token_id
    return tok


def load_lm(model_dir: str):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval().requires_grad_(False)
    return model


def build_tokenized_answer(tok, prompt: str, answer: str) -> dict:
    """TRL: enc(a + b) split so that enc(a) is a prefix; the last prompt token goes to the answer on a merge."""
    full = tok(prompt + answer, add_special_tokens=False)
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = full["input_ids"][len(p):]
    if len(full["input_ids"]) != len(np.concatenate([p, answer_ids])):
        raise ValueError("Prompt input ids and answer input ids should have the same length.")
    start = len(p)
    if p != full["input_ids"][:start]:
        start -= 1
    return dict(prompt_input_ids=full["input_ids"][:start], prompt_attention_mask=full["attention_mask"][:start],
                input_ids=full["input_ids"][start:], attention_mask=full["attention_mask"][start:],
                merged=start != len(p))


def tokenize_row(tok, prompt: str, text_chosen: str, text_rejected: str) -> dict:
    """DPOInference.tokenize_row (truncation_mode keep_end, max_prompt_length 128, max_length 2048)."""
    chosen = text_chosen.replace(prompt, "")  # every occurrence (RewardBench issue 140)
    rejected = text_rejected.replace(prompt, "")
    prompt_tokens = {f"prompt_{k}": v for k, v in tok(prompt, add_special_tokens=False).items()}
    chosen_tokens = build_tokenized_answer(tok, prompt, chosen)
    rejected_tokens = build_tokenized_answer(tok, prompt, rejected)
    for t in (prompt_tokens, chosen_tokens, rejected_tokens):
        t["prompt_input_ids"] = [tok.bos_token_id] + t["prompt_input_ids"]
        t["prompt_attention_mask"] = [1] + t["prompt_attention_mask"]
    for t in (chosen_tokens, rejected_tokens):
        t["input_ids"].append(tok.eos_token_id)
        t["attention_mask"].append(1)
    longer = max(len(chosen_tokens["input_ids"]), len(rejected_tokens["input_ids"]))
    for t in (chosen_tokens, rejected_tokens, prompt_tokens):
        if len(t["prompt_input_ids"]) + longer > MAX_LENGTH:
            for k in ("prompt_input_ids", "prompt_attention_mask"):
                t[k] = t[k][-MAX_PROMPT_LENGTH:]
    for t in (chosen_tokens, rejected_tokens):
        if len(t["prompt_input_ids"]) + longer > MAX_LENGTH:
            for k in ("input_ids", "attention_mask"):
                t[k] = t[k][: MAX_LENGTH - MAX_PROMPT_LENGTH]
    out = {}
    for side, t in (("chosen", chosen_tokens), ("rejected", rejected_tokens)):
        ids = t["prompt_input_ids"] + t["input_ids"]
        labels = ids[:]
        labels[: len(t["prompt_input_ids"])] = [LABEL_PAD] * len(t["prompt_input_ids"])
        out[f"{side}_input_ids"] = ids
        out[f"{side}_attention_mask"] = t["prompt_attention_mask"] + t["attention_mask"]
        out[f"{side}_labels"] = labels
        out[f"{side}_prompt_len"] = len(t["prompt_input_ids"])
        out[f"{side}_merged"] = t["merged"]
    return out


def _pad(seqs, value, length):
    return torch.tensor([s + [value] * (length - len(s)) for s in seqs], dtype=torch.int64)


def concatenated_inputs(batch: list, pad_id: int):
    """DPODataCollatorWithPadding (right padding) + concatenated_inputs: [chosen; rejected], one length."""
    length = max(len(r[f"{s}_input_ids"]) for r in batch for s in ("chosen", "rejected"))
    ids = _pad([r["chosen_input_ids"] for r in batch] + [r["rejected_input_ids"] for r in batch], pad_id, length)
    mask = _pad([r["chosen_attention_mask"] for r in batch] + [r["rejected_attention_mask"] for r in batch], 0, length)
    labels = _pad([r["chosen_labels"] for r in batch] + [r["rejected_labels"] for r in batch], LABEL_PAD, length)
    return ids, mask, labels


def get_batch_logps(logits, labels):
    """All three reductions of DPOInference.get_batch_logps: (sum, avg, norm)."""
    labels = labels[:, 1:].clone()
    logits = logits[:, :-1, :]
    loss_mask = labels != LABEL_PAD
    labels[labels == LABEL_PAD] = 0
    per_token = torch.gather(logits.log_softmax(-1), dim=2, index=labels.unsqueeze(2)).squeeze(2)
    s = (per_token * loss_mask).sum(-1)
    avg = (per_token * loss_mask).sum(-1) / loss_mask.sum(-1)
    norm = -torch.norm(per_token * loss_mask, p=2, dim=-1)
    return s, avg, norm


@torch.no_grad()
def concatenated_forward(model, ids, mask, labels):
    logits = model(ids, attention_mask=mask).logits.to(torch.float32)
    return get_batch_logps(logits, labels)


def score_rows(policy, ref, tok, rows, batch_size=8):
    """Rows in dataset order, `batch_size` pairs per forward pass (2 x batch_size sequences)."""
    rendered = [reference.render_row(r, tok) for r in rows]
    tokenized = [tokenize_row(tok, *r) for r in rendered]
    logps = {"policy": [], "ref": []}
    for b in range(0, len(rows), batch_size):
        batch = tokenized[b: b + batch_size]
        ids, mask, labels = concatenated_inputs(batch, tok.pad_token_id)
        n = len(batch)
        for name, model in (("policy", policy), ("ref", ref)):
            s, avg, norm = concatenated_forward(model, ids, mask, labels)
            for i in range(n):
                logps[name].append({f"{k}_{side}": float(v[i + off])
                                    for k, v in (("sum", s), ("avg", avg), ("norm", norm))
                                    for side, off in (("chosen", 0), ("rejected", n))})
    records = []
    for i, (row, (p, c, r), t) in enumerate(zip(rows, rendered, tokenized)):
        pol, rf = logps["policy"][i], logps["ref"][i]
        # rewards as RewardBench computes them: float32 tensors
        f32 = np.float32
        rec = OrderedDict(index=i, id=row.get("id"), subset=row.get("subset"), prompt=p, text_chosen=c,
                          text_rejected=r, input_ids_chosen=t["chosen_input_ids"],
                          input_ids_rejected=t["rejected_input_ids"], prompt_len_chosen=t["chosen_prompt_len"],
                          prompt_len_rejected=t["rejected_prompt_len"],
                          boundary_merge=[t["chosen_merged"], t["rejected_merged"]])
        rec["policy"] = pol
        rec["ref"] = rf
        rewards = OrderedDict()
        rc, rr = f32(pol["sum_chosen"]) - f32(rf["sum_chosen"]), f32(pol["sum_rejected"]) - f32(rf["sum_rejected"])
        rewards["ref"] = [float(rc), float(rr), int(rc > rr)]
        for mode in ("sum", "avg", "norm"):
            rc, rr = f32(pol[f"{mode}_chosen"]), f32(pol[f"{mode}_rejected"])
            rewards[mode] = [float(rc), float(rr), int(rc > rr)]
        rec["rewards"] = rewards
        records.append(rec)
    return records
