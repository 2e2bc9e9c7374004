"""Fused-attention, packed export for GPT-2 reward models (GPT2ForSequenceClassification,
model_type gpt2): `export_rm.py --attention gqa` on a GPT-2 checkpoint.

The same packed contract as the Llama export (export/packing.py, fused_attention.py): the texts
of one prompt share a row, `segment_ids` and `attention_mask` become a tree-shaped additive
`attention_bias` [batch, 1, S, S] (0 or float32 min, causal included), `position_ids` index the
learned position table (`wpe`; no rotary), and each text's score is read at its `pool_index`.
GPT-2's specifics: pre-norm blocks (ln_1, attention, ln_2, MLP with the model's own activation),
one fused Conv1D `c_attn` for Q, K and V (its weight is [hidden, 3*hidden], the layout ONNX
Runtime's fused ops take), multi-head attention (kv heads = heads), scale 1/sqrt(head_dim)
(none with `scale_attn_weights=False`, and 1/(layer+1) more with
`scale_attn_by_inverse_layer_idx`, both as the op's `scale`). `reorder_and_upcast_attn` (an
fp16 trick) and cross-attention are refused.

Each attention block but the last is one ONNX node, chosen by `OP`:
- "attention": `com.microsoft::Attention` (input, c_attn weight and bias, attention_bias): the
  QKV projection fused into the op, the form ONNX Runtime's own GPT-2 optimizer writes;
- "mha": Conv1D as MatMul+Add, then `com.microsoft::MultiHeadAttention` (q, k, v,
  attention_bias);
- "gqa": Conv1D as MatMul+Add, then `com.microsoft::GroupQueryAttention` with kv heads = heads
  (head size a multiple of 16 on CPU);
- "plain": standard ONNX ops (MatMul, Softmax) with the bias added.
The last block runs only at the pooled tokens (as in fused_attention.py's `_last_layer_at`).
Scores equal the eager export within ~1e-6 (export_rm.py's verification). "attention" is the
default: the fastest of the four or within 3 % of it on the 31M bench model (ORT 1.31.1, 2 CPU
threads), and end to end 1.35-1.67x the eager graph's pairs/s (export/README.md has the figures).
Like the Llama export it needs ONNX Runtime's CPU provider for speed; GPUs get the eager graph.
"""
from __future__ import annotations

import torch

from fused_attention import NEG, _absent, packed_mask

OPS = ("attention", "mha", "gqa", "plain")
OP = "attention"  # one of OPS; see the module docstring and export/README.md


def unsupported(model) -> str | None:
    """Why the fused GPT-2 export cannot take this model, or None when it can."""
    cfg = model.config
    if getattr(cfg, "model_type", None) != "gpt2":
        return f"fused_gpt2 takes model_type 'gpt2', not {cfg.model_type!r}"
    if not hasattr(model, "transformer") or not hasattr(model, "score"):
        return f"--attention gqa: {type(model).__name__} is not GPT2ForSequenceClassification"
    if getattr(cfg, "reorder_and_upcast_attn", False):
        return "--attention gqa: GPT-2's reorder_and_upcast_attn=True (an fp16 trick) is not supported"
    if getattr(cfg, "add_cross_attention", False):
        return "--attention gqa: GPT-2 with cross-attention (add_cross_attention=True) is not supported"
    if cfg.n_embd % cfg.n_head:
        return f"--attention gqa: n_embd {cfg.n_embd} is not a multiple of n_head {cfg.n_head}"
    return None


def _scale(attn) -> float:
    s = attn.head_dim ** -0.5 if attn.scale_attn_weights else 1.0
    if attn.scale_attn_by_inverse_layer_idx:
        s /= float(attn.layer_idx + 1)
    return s


def _attention_ref(q, k, v, bias, H, scale):
    """Multi-head attention plus the additive bias (causality included in it).
    q/k/v [B,S,H*D], bias [B,1,S,S]."""
    B, S, HD = q.shape
    D = HD // H
    q = q.view(B, S, H, D).transpose(1, 2)
    k = k.view(B, S, H, D).transpose(1, 2)
    v = v.view(B, S, H, D).transpose(1, 2)
    w = torch.softmax(q @ k.transpose(2, 3) * scale + bias, dim=-1)
    return (w @ v).transpose(1, 2).reshape(B, S, HD)


class _FusedAttention(torch.autograd.Function):
    """com.microsoft::Attention: the QKV projection and attention in one node."""

    @staticmethod
    def forward(ctx, x, weight, bias_qkv, attn_bias, H, scale):
        q, k, v = (x @ weight + bias_qkv).chunk(3, dim=-1)
        return _attention_ref(q, k, v, attn_bias, H, scale)

    @staticmethod
    def symbolic(g, x, weight, bias_qkv, attn_bias, H, scale):
        # inputs: input, weights, bias, mask_index, past, attention_bias
        out = g.op("com.microsoft::Attention", x, weight, bias_qkv, _absent(g), _absent(g), attn_bias,
                   num_heads_i=H, unidirectional_i=0, scale_f=scale, outputs=1)
        out.setType(x.type())
        return out


class _MHA(torch.autograd.Function):
    """com.microsoft::MultiHeadAttention on separate q, k, v."""

    @staticmethod
    def forward(ctx, q, k, v, attn_bias, H, scale):
        return _attention_ref(q, k, v, attn_bias, H, scale)

    @staticmethod
    def symbolic(g, q, k, v, attn_bias, H, scale):
        # inputs: query, key, value, bias, key_padding_mask, attention_bias
        out = g.op("com.microsoft::MultiHeadAttention", q, k, v, _absent(g), _absent(g), attn_bias,
                   num_heads_i=H, scale_f=scale, outputs=1)
        out.setType(q.type())
        return out


class _GQA(torch.autograd.Function):
    """com.microsoft::GroupQueryAttention with kv heads = heads (causal itself, bias added)."""

    @staticmethod
    def forward(ctx, q, k, v, seqlens_k, total_len, attn_bias, H, scale):
        return _attention_ref(q, k, v, attn_bias, H, scale)

    @staticmethod
    def symbolic(g, q, k, v, seqlens_k, total_len, attn_bias, H, scale):
        out = g.op("com.microsoft::GroupQueryAttention", q, k, v, _absent(g), _absent(g),
                   seqlens_k, total_len, _absent(g), _absent(g), _absent(g), attn_bias,
                   num_heads_i=H, kv_num_heads_i=H, do_rotary_i=0, scale_f=scale, outputs=1)
        out.setType(q.type())
        return out


class _Lens:
    """GroupQueryAttention's per-call lengths (every row is S tokens long)."""
    seqlens_k = total_len = None


def _attention(attn, x, bias, op):
    """One GPT2Attention on ln_1's output x [B,S,hidden] with the additive bias."""
    H, scale = attn.num_heads, _scale(attn)
    if op == "attention":
        out = _FusedAttention.apply(x, attn.c_attn.weight, attn.c_attn.bias, bias, H, scale)
    else:
        q, k, v = attn.c_attn(x).split(attn.split_size, dim=2)
        if op == "mha":
            out = _MHA.apply(q, k, v, bias, H, scale)
        elif op == "gqa":
            out = _GQA.apply(q, k, v, _Lens.seqlens_k, _Lens.total_len, bias, H, scale)
        else:
            out = _attention_ref(q, k, v, bias, H, scale)
    return attn.c_proj(out)


def _block(block, h, bias, op):
    h = h + _attention(block.attn, block.ln_1(h), bias, op)
    return h + block.mlp(block.ln_2(h))


def _last_block_at(block, h, bias, pool):
    """The last block, computed only where scores are read: each pooled token pool [B, K]
    attends to the keys its row of the bias allows, then the MLP runs on that token; K and V
    for every token, Q, the output projection and the MLP only at the pooled ones.
    h [B, S, hidden] -> [B, K, hidden]."""
    attn = block.attn
    B, S, K = h.shape[0], h.shape[1], pool.shape[1]
    H, d = attn.num_heads, attn.embed_dim
    D = d // H
    rows = torch.arange(B)[:, None]
    x = block.ln_1(h)
    w, b = attn.c_attn.weight, attn.c_attn.bias  # Conv1D: x @ w + b, w [d, 3d]
    q = (x[rows, pool] @ w[:, :d] + b[:d]).view(B, K, H, D).transpose(1, 2)
    kv = x @ w[:, d:] + b[d:]
    k = kv[..., :d].reshape(B, S, H, D).transpose(1, 2)
    v = kv[..., d:].reshape(B, S, H, D).transpose(1, 2)
    pb = bias[:, 0][rows, pool][:, None]  # [B, 1, K, S]
    a = torch.softmax(q @ k.transpose(2, 3) * _scale(attn) + pb, dim=-1)
    o = (a @ v).transpose(1, 2).reshape(B, K, d)
    hp = h[rows, pool] + attn.c_proj(o)
    return hp + block.mlp(block.ln_2(hp))


class GPT2PackedWrapper(torch.nn.Module):
    """The packed contract (export/packing.py) for GPT2ForSequenceClassification: input_ids,
    attention_mask, position_ids, segment_ids, pool_index -> logits [batch, k, num_labels]."""

    input_names = ("input_ids", "attention_mask", "position_ids", "segment_ids", "pool_index")

    def __init__(self, model, op: str = None):
        super().__init__()
        why = unsupported(model)
        if why:
            raise SystemExit(f"{why}; export with --attention eager")
        self.model = model
        self.op = op or OP
        if self.op not in OPS:
            raise ValueError(f"fused_gpt2 op {self.op!r}")

    def restore(self) -> None:
        """Nothing to put back: the model's modules are called, never patched."""

    def forward(self, input_ids, attention_mask, position_ids, segment_ids, pool_index):
        allowed, _Lens.seqlens_k, _Lens.total_len = packed_mask(input_ids, attention_mask, segment_ids,
                                                                lengths=self.op == "gqa")
        bias = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill(~allowed, NEG)[:, None]

        t = self.model.transformer
        h = t.wte(input_ids) + t.wpe(position_ids)
        for block in t.h[:-1]:
            h = _block(block, h, bias, self.op)
        h_last = _last_block_at(t.h[-1], h, bias, pool_index)
        return self.model.score(t.ln_f(h_last))
