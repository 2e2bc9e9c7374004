#!/usr/bin/env python3
"""PyTorch reference scores of pairwise preference models, as RewardBench's pipelines build
their inputs (rewardbench 0.1.4, rewardbench/models/{pairrm,betterpairrm,slicpairpm,shp}.py,
called by scripts/run_rm.py with custom-dialogue rows).

Each row is scored in both orders: "ab" shows the chosen answer first (slot A / candidate 1),
"ba" the rejected one. f(order) is the model's preference for the first-shown answer:

* pairrm, better-pairrm: the model's logit for (source, candidate 1, candidate 2);
  upstream's verdict is f(ab) - f(ba) > 0.
* slic: P(first) = exp(logit_A) / (exp(logit_A) + exp(logit_B)) at the next token; upstream's
  verdict is mean(P_ab(A), P_ba(B)) > 0.5.
* steamshp: logit("A") - logit("B") at the first decoded token; upstream's verdict is the greedy
  first token decoded == "A" in ONE order, which upstream shuffles with an unseeded
  random.shuffle. Here the order is fixed per row by its content hash (the evaluator's
  `sample_hash`): "ba" when its last hex digit is odd.

The models run one sequence at a time, unpadded (as upstream's Slic and SHP pipelines do; its
PairRM pipelines drop the all-pad columns of their max_length padding).
"""
from __future__ import annotations

import numpy as np
import torch

PAIRRM_INSTRUCTION = (
    "Finish the following coversation in each i-th turn by filling in <Response i> with your response."
)
SOURCE_PREFIX, CAND1_PREFIX, CAND2_PREFIX = "<|source|>", "<|candidate1|>", "<|candidate2|>"
BETTER_PAIRRM_TEMPLATE = (
    "{% for message in messages -%}\n    {% if message['role'] == 'user' -%}\n    USER: {{ message['content']|trim -}}\n"
    "    {% if not loop.last -%}\n\n\n    {% endif %}\n    {% elif message['role'] == 'assistant' -%}\n"
    "    ASSISTANT: {{ message['content']|trim -}}\n    {% if not loop.last -%}\n\n\n    {% endif %}\n"
    "    {% elif message['role'] == 'user_context' -%}\n    USER: {{ message['content']|trim -}}\n"
    "    {% if not loop.last -%}\n\n\n    {% endif %}\n    {% elif message['role'] == 'system' -%}\n"
    "    SYSTEM MESSAGE: {{ message['content']|trim -}}\n    {% if not loop.last -%}\n\n\n    {% endif %}\n"
    "    {% endif %}\n    {% endfor -%}\n    {% if add_generation_prompt and messages[-1]['role'] != 'assistant' -%}\n"
    "    ASSISTANT: {% endif -%}"
)
SLIC_CONTEXT_TEMPLATE = (
    "\n{% for message in messages %}{% if loop.index0 % 2 == 0 %}\n\n<turn> user"
    "\n {{ message['content'] }}{% else %}\n\n<turn> assistant\n"
    " {{ message['content'] }}{% endif %}{% endfor %}\n\n\n"
)
SLIC_PROMPT = "[CONTEXT] {context} [RESPONSE A] {response_A} [RESPONSE B] {response_B} \n"
SHP_MAX_LENGTH = 2048  # run_rm.py's --max_length default, passed to SHPPipeline


# --- rows ----------------------------------------------------------------------------------------

def conversations(row):
    """run_rm.py's custom-dialogue rows (utils.load_eval_dataset, map_conversations): a string
    prompt becomes one user turn; a message list is kept as it is (roles as given)."""
    p = row["prompt"]
    prompt = [{"role": "user", "content": p}] if isinstance(p, str) else [dict(m) for m in p]
    return (prompt + [{"role": "assistant", "content": row["chosen"]}],
            prompt + [{"role": "assistant", "content": row["rejected"]}])


class Digest:
    """The evaluator's 128-bit two-lane FNV-1a (src/digest.rs)."""
    M = (1 << 64) - 1

    def __init__(self):
        self.a, self.b = 0xCBF29CE484222325, 0x6C62272E07BB0142

    def bytes(self, data: bytes):
        for x in data:
            self.a = ((self.a ^ x) * 0x100000001B3) & self.M
            b = ((self.b ^ x) * 0x100000001B3) & self.M
            self.b = ((b << 5) | (b >> 59)) & self.M
        return self

    def field(self, label: str, data: bytes):
        self.bytes(label.encode())
        self.bytes(len(data).to_bytes(8, "little"))
        return self.bytes(data)

    def hex(self):
        return f"{self.a:016x}{self.b:016x}"


def sample_hash(row) -> str:
    """The row's content hash (`sample_hash` in the outputs; src/data/mod.rs content_hash)."""
    d = Digest()
    p = row["prompt"]
    if isinstance(p, str):
        d.field("prompt", b"text").field("content", p.encode())
    else:
        d.field("prompt", b"messages")
        for m in p:
            d.field("role", m["role"].encode())
            d.field("content", m["content"].encode())
    d.field("chosen", row["chosen"].encode())
    d.field("rejected", row["rejected"].encode())
    return d.hex()


def steamshp_order(row) -> str:
    return "ba" if int(sample_hash(row)[-1], 16) % 2 else "ab"


# --- inputs ----------------------------------------------------------------------------------------

def pairrm_ids(tok, conv_a, conv_b):
    """pairrm.tokenize_conv_pair + tokenize_pair for one pair (unpadded)."""
    for c in (conv_a, conv_b):
        assert all(c[i]["role"] == "user" for i in range(0, len(c), 2)), "Each even turn must be USER"
        assert all(c[i]["role"] == "assistant" for i in range(1, len(c), 2)), "Each odd turn must be ASSISTANT"
    source = PAIRRM_INSTRUCTION + "\n".join(
        "USER: " + conv_a[i]["content"] + f"\nAssistant: <Response {i // 2 + 1}>" for i in range(0, len(conv_a), 2))
    cand = ["\n".join(f"<Response {i // 2 + 1}>: " + c[i]["content"] for i in range(1, len(c), 2))
            for c in (conv_a, conv_b)]
    source_max_length, candidate_max_length = 1224, 412
    max_length = source_max_length + 2 * candidate_max_length
    source_ids = tok.encode(SOURCE_PREFIX + source, max_length=source_max_length, truncation=True)
    cmax = (max_length - len(source_ids)) // 2
    c1 = tok.encode(CAND1_PREFIX + cand[0], max_length=cmax, truncation=True)
    c2 = tok.encode(CAND2_PREFIX + cand[1], max_length=cmax, truncation=True)
    return source_ids + c1 + c2, {"source": source, "candidate1": cand[0], "candidate2": cand[1]}


def better_pairrm_source(conv):
    import jinja2

    return jinja2.Environment().from_string(BETTER_PAIRRM_TEMPLATE).render(messages=conv[:-1],
                                                                          add_generation_prompt=True)


def better_pairrm_ids(tok, conv_a, conv_b):
    """betterpairrm.tokenize_conv_pair + tokenize_pair for one pair (unpadded)."""

    def truncate_texts(text, max_length, side):
        tok.truncation_side = side
        tokens = tok.encode(text, add_special_tokens=False, max_length=max_length)
        return tok.decode(tokens, skip_special_tokens=True)

    source = truncate_texts(better_pairrm_source(conv_a), 2030, "left")
    c1_text = truncate_texts(conv_a[-1]["content"], 670, "right")
    c2_text = truncate_texts(conv_b[-1]["content"], 670, "right")
    source_max_length, candidate_max_length = 2030, 670
    source_tokens = tok.encode(SOURCE_PREFIX)
    max_length = source_max_length + 2 * candidate_max_length
    tok.truncation_side = "left"
    source_ids = source_tokens + tok.encode(source, max_length=source_max_length - len(source_tokens), truncation=True)
    tok.truncation_side = "right"
    cmax = (max_length - len(source_ids)) // 2
    c1 = tok.encode(CAND1_PREFIX + c1_text, max_length=cmax, truncation=True)
    c2 = tok.encode(CAND2_PREFIX + c2_text, max_length=cmax, truncation=True)
    return source_ids + c1 + c2, {"source": source, "candidate1": c1_text, "candidate2": c2_text}


def slic_text(tok, context_tok, conv_a, conv_b):
    """slicpairpm.SlicPairPMPipeline's model text for one order (A = conv_a's answer)."""
    context = context_tok.apply_chat_template(conv_a[:-1], tokenize=False)
    prompt = SLIC_PROMPT.format(context=context, response_A=conv_a[-1]["content"], response_B=conv_b[-1]["content"])
    text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False)
    return text.replace(tok.bos_token, ""), context


def slic_ids(tok, context_tok, conv_a, conv_b):
    text, context = slic_text(tok, context_tok, conv_a, conv_b)
    return tok.encode(text, add_special_tokens=False), {"context": context, "text": text}


def shp_text(conv_a, conv_b):
    post = " ".join(m["content"] for m in conv_a[:-1])
    return (f"POST: {post}\n\n RESPONSE A: {conv_a[-1]['content']}\n\n RESPONSE B: {conv_b[-1]['content']}"
            f"\n\n Which response is better? RESPONSE"), post


def shp_ids(tok, conv_a, conv_b):
    text, post = shp_text(conv_a, conv_b)
    return tok(text, truncation=True, max_length=SHP_MAX_LENGTH)["input_ids"], {"post": post, "text": text}


def single_token(tok, s):
    ids = tok.encode(s, add_special_tokens=False)
    assert len(ids) == 1, f"{s!r} is {ids}, not one token"
    return ids[0]


# --- scoring ---------------------------------------------------------------------------------------

@torch.no_grad()
def model_output(kind, model, ids):
    t = torch.tensor([ids], dtype=torch.int64)
    mask = torch.ones_like(t)
    if kind in ("pairrm", "better-pairrm"):
        return model(input_ids=t, attention_mask=mask).float().numpy()[0]
    if kind == "slic":
        return model(input_ids=t).logits[0, -1].float().numpy()  # upstream passes input_ids only
    dec = torch.full((1, 1), model.config.decoder_start_token_id, dtype=torch.int64)
    return model(input_ids=t, attention_mask=mask, decoder_input_ids=dec).logits[0, 0].float().numpy()


def score_rows(kind, model, tok, rows, context_tok=None):
    """One record per row: the ids of both orders, f(ab), f(ba), the verdict and what it came from."""
    out = []
    if kind in ("slic", "steamshp"):
        id_a, id_b = single_token(tok, "A"), single_token(tok, "B")
    for i, row in enumerate(rows):
        chosen, rejected = conversations(row)
        rec = {"index": i, "id": row.get("id"), "subset": row.get("subset"), "sample_hash": sample_hash(row)}
        orders = {"ab": (chosen, rejected), "ba": (rejected, chosen)}
        outs = {}
        for name, (a, b) in orders.items():
            if kind == "pairrm":
                ids, texts = pairrm_ids(tok, a, b)
            elif kind == "better-pairrm":
                ids, texts = better_pairrm_ids(tok, a, b)
            elif kind == "slic":
                ids, texts = slic_ids(tok, context_tok, a, b)
            else:
                ids, texts = shp_ids(tok, a, b)
            rec[f"ids_{name}"] = [int(x) for x in ids]
            rec[f"texts_{name}"] = texts
            outs[name] = model_output(kind, model, ids)
        if kind in ("pairrm", "better-pairrm"):
            f = {k: float(v) for k, v in outs.items()}
            rec["result"] = int(bool(np.float32(f["ab"]) - np.float32(f["ba"]) > 0))
        elif kind == "slic":
            probs = []
            f = {}
            for pos, name in enumerate(("ab", "ba")):
                la, lb = float(outs[name][id_a]), float(outs[name][id_b])
                z = np.exp(la) + np.exp(lb)
                f[name] = float(np.exp(la) / z)
                probs.append(np.exp([la, lb][pos]) / z)
                rec[f"logits_{name}"] = [la, lb]
            rec["p_chosen"] = float(np.mean(probs))
            rec["result"] = int(rec["p_chosen"] > 0.5)
        else:
            f = {}
            for name in ("ab", "ba"):
                logits = outs[name]
                f[name] = float(np.float32(logits[id_a]) - np.float32(logits[id_b]))
                g = int(np.argmax(logits))
                rec[f"greedy_{name}"] = g
                rec[f"decoded_{name}"] = tok.decode([g], skip_special_tokens=True)
            order = steamshp_order(row)
            rec["order"] = order
            says_a = rec[f"decoded_{order}"] == "A"
            rec["result"] = int(says_a if order == "ab" else not says_a)
        rec["score_chosen"], rec["score_rejected"] = f["ab"], f["ba"]
        out.append(rec)
    return out
