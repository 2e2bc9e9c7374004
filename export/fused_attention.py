"""Fused-attention export for Llama reward models (`export_rm.py --attention gqa`).

Two exact rewrites of the forward pass, for CPU speed:
1. each LlamaAttention block is one ONNX Runtime contrib op, `com.microsoft::GroupQueryAttention`
   (RoPE inside the op, K/V heads shared as in the model, causal), instead of the ~40 plain ops of
   the eager export (repeat_kv Expand, Q·Kᵀ, mask Add, Softmax, ...);
2. the last decoder layer runs only at the token the score is read from (`_last_layer_at`): its
   other positions feed nothing but their own, discarded, outputs.
Same inputs, outputs and math: scores equal the eager export within ~1e-6. Measured with ORT
1.31.1 on 2 CPU cores against the eager export, batches of 8: (1) 1.07x under 100 tokens and
1.4-1.6x from 400 tokens; (2) another 1.08-1.15x on the 8-layer bench model (it saves about
1/num_layers of the work). `make bench` has the end-to-end figure.

How padding is carried: `seqlens_k` says every row is S tokens long and the padding (left or
right) and a masked leading BOS come in as `attention_bias` [batch, 1, S, S] (0 or float32 min).
So the export makes no right-padding assumption. Rotary positions are 0..S-1 for every row, as
transformers 4.51 assigns them when no position_ids are given (RewardBench passes none).

Needs ONNX Runtime >= 1.2x with the one-output GroupQueryAttention form (1.31.1 is what
`make setup` installs); ORT 1.22 refuses to load it. On CUDA ORT runs GroupQueryAttention only in
float16/bfloat16 and TensorRT not at all: use the eager export (the default) for GPUs.
"""
from __future__ import annotations

import types

import torch

NEG = float(torch.finfo(torch.float32).min)
SUPPORTED_MODEL_TYPES = ("llama",)


def check_supported(model) -> None:
    mt = getattr(model.config, "model_type", None)
    if mt not in SUPPORTED_MODEL_TYPES:
        raise SystemExit(f"--attention gqa supports model_type {SUPPORTED_MODEL_TYPES}, not {mt!r}; "
                         "export with --attention eager")
    head_dim = model.model.layers[0].self_attn.head_dim
    if head_dim % 16:
        raise SystemExit(f"--attention gqa: ONNX Runtime's CPU GroupQueryAttention needs a head size that is "
                         f"a multiple of 16, this model's is {head_dim}; export with --attention eager")
    rope = getattr(model.config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", "linear", "llama3"):
        raise SystemExit(f"--attention gqa: rope_scaling {rope} is untested; export with --attention eager")


def _reference(q, k, v, bias, cos, sin, H, KVH, D):
    """What GroupQueryAttention computes: RoPE (halves layout) on q/k, then causal attention with
    the additive bias. q [B,S,H*D], k/v [B,S,KVH*D], cos/sin [S,D/2], bias [B,1,S,S]."""
    B, S, _ = q.shape
    c = torch.cat([cos, cos], -1)[None, :, None, :]
    s = torch.cat([sin, sin], -1)[None, :, None, :]

    def rope(x, n):
        x = x.view(B, S, n, D)
        return x * c + _rotate_half(x) * s

    q = rope(q, H).transpose(1, 2)
    k = rope(k, KVH).transpose(1, 2).repeat_interleave(H // KVH, dim=1)
    v = v.view(B, S, KVH, D).transpose(1, 2).repeat_interleave(H // KVH, dim=1)
    causal = torch.full((S, S), NEG, dtype=q.dtype).triu(1)[None, None]
    w = torch.softmax(q @ k.transpose(2, 3) * D ** -0.5 + bias + causal, dim=-1)
    return (w @ v).transpose(1, 2).reshape(B, S, H * D)


def _absent(g):
    """Placeholder for an omitted optional input; `drop_absent` turns it into ''."""
    return g.op("com.microsoft::AbsentInput").setType(
        torch._C.TensorType.create_from_tensor(torch.zeros(1)))


class _GQA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, seqlens_k, total_len, cos, sin, bias, H, KVH, D):
        return _reference(q, k, v, bias, cos, sin, H, KVH, D)

    @staticmethod
    def symbolic(g, q, k, v, seqlens_k, total_len, cos, sin, bias, H, KVH, D):
        # inputs: query, key, value, past_key, past_value, seqlens_k, total_sequence_length,
        # cos_cache, sin_cache, position_ids, attention_bias. One output: present_key/value
        # would cost ~15 % and are not needed.
        out = g.op("com.microsoft::GroupQueryAttention", q, k, v, _absent(g), _absent(g),
                   seqlens_k, total_len, cos, sin, _absent(g), bias,
                   num_heads_i=H, kv_num_heads_i=KVH, do_rotary_i=1, outputs=1)
        out.setType(q.type())
        return out


class _Masks:
    """Per-call tensors derived from the attention mask, shared by all layers."""
    seqlens_k = total_len = bias = None


def _attention_forward(self, hidden_states, position_embeddings, attention_mask=None, **_kw):
    H = self.config.num_attention_heads
    KVH = self.config.num_key_value_heads
    D = self.head_dim
    cos, sin = position_embeddings  # [1, S, D], the two halves equal
    q, k, v = self.q_proj(hidden_states), self.k_proj(hidden_states), self.v_proj(hidden_states)
    out = _GQA.apply(q, k, v, _Masks.seqlens_k, _Masks.total_len,
                     cos[0, :, : D // 2], sin[0, :, : D // 2], _Masks.bias, H, KVH, D)
    return self.o_proj(out), None


class GQAWrapper(torch.nn.Module):
    """input_ids, attention_mask -> logits: attention blocks as GroupQueryAttention, and the last
    layer only at the pooled token (see `_last_layer_at`)."""

    def __init__(self, model):
        super().__init__()
        check_supported(model)
        self.model = model
        for layer in model.model.layers:
            layer.self_attn.forward = types.MethodType(_attention_forward, layer.self_attn)

    def restore(self) -> None:
        """Puts the model's own attention back (the eager reference for verification)."""
        for layer in self.model.model.layers:
            del layer.self_attn.forward

    def forward(self, input_ids, attention_mask):
        B, S = input_ids.shape[0], input_ids.shape[1]
        if torch.jit.is_tracing():
            total = torch.onnx.operators.shape_as_tensor(input_ids)[1].to(torch.int32)
        else:
            total = torch.tensor(S, dtype=torch.int32)
        _Masks.total_len = total
        _Masks.seqlens_k = (torch.zeros(B, dtype=torch.int32) + total - 1).to(torch.int32)
        pad = torch.zeros(attention_mask.shape, dtype=torch.float32).masked_fill(attention_mask == 0, NEG)
        _Masks.bias = pad[:, None, None, :] + torch.zeros(1, 1, S, 1)  # [B, 1, S, S]

        m = self.model.model
        h = m.embed_tokens(input_ids)
        position_ids = torch.arange(S, dtype=torch.int64).unsqueeze(0)
        cos, sin = m.rotary_emb(h, position_ids)
        for layer in m.layers[:-1]:
            h = layer(h, position_ids=position_ids, position_embeddings=(cos, sin))[0]
        # LlamaForSequenceClassification's pooling: the rightmost token that is not the pad id.
        non_pad = (input_ids != self.model.config.pad_token_id).to(torch.int32)
        last = (torch.arange(S, dtype=torch.int32) * non_pad).argmax(-1)
        h_last = _last_layer_at(m.layers[-1], h, last, cos[0], sin[0], attention_mask)
        return self.model.score(m.norm(h_last))


def _rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def _last_layer_at(layer, h, last, cos, sin, attention_mask):
    """The last decoder layer, computed only where the score is read: the pooled token `last`
    [B] attends to all keys as in eager attention (padding and keys after it masked), then the
    MLP runs on that one token. Position-wise ops make this exact; it skips the last layer's
    Q/O projections, MLP and attention for every other token (1/num_layers of the work).
    h [B, S, hidden], cos/sin [S, D] -> [B, hidden]."""
    attn = layer.self_attn
    B, S = h.shape[0], h.shape[1]
    H, KVH, D = attn.config.num_attention_heads, attn.config.num_key_value_heads, attn.head_dim
    rows = torch.arange(B)
    x = layer.input_layernorm(h)
    q = attn.q_proj(x[rows, last]).view(B, KVH, H // KVH, D)  # query head i uses kv head i // (H/KVH)
    k = attn.k_proj(x).view(B, S, KVH, D).transpose(1, 2)  # [B, KVH, S, D]
    v = attn.v_proj(x).view(B, S, KVH, D).transpose(1, 2)
    k = k * cos + _rotate_half(k) * sin
    cq, sq = cos[last][:, None, None, :], sin[last][:, None, None, :]
    q = q * cq + _rotate_half(q) * sq
    keys = torch.arange(S)[None, :]
    allowed = (attention_mask != 0) & (keys <= last[:, None])
    bias = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill(~allowed, NEG)[:, None, None, :]
    w = torch.softmax(q @ k.transpose(2, 3) * attn.scaling + bias, dim=-1, dtype=torch.float32)
    out = attn.o_proj((w @ v).reshape(B, H * D))
    hp = h[rows, last] + out
    return hp + layer.mlp(layer.post_attention_layernorm(hp))


def drop_absent(onnx_path: str) -> None:
    import onnx

    m = onnx.load(onnx_path)
    absent = {n.output[0] for n in m.graph.node if n.op_type == "AbsentInput"}
    keep = [n for n in m.graph.node if n.op_type != "AbsentInput"]
    for n in keep:
        for i, x in enumerate(n.input):
            if x in absent:
                n.input[i] = ""
    del m.graph.node[:]
    m.graph.node.extend(keep)
    onnx.save(m, onnx_path)
