"""Fused-attention, packed export for Llama-style reward models (`export_rm.py --attention gqa`;
model types llama, mistral, qwen2).

Three changes to the eager export, all exact:
1. the packed contract (export/packing.py): the texts of one prompt share a row, their common
   token prefix computed once, each text's remaining tokens after it; `segment_ids` and
   `attention_mask` become a tree-shaped `attention_bias` [batch, 1, S, S] (0 or float32 min),
   `position_ids` are positions within each text, and the score of each text is read at its
   `pool_index`. A plain batch is one text per row (k=1, positions 0..S-1), left or right padded;
2. each LlamaAttention block is `com.microsoft::RotaryEmbedding` on q and k (it takes per-token
   positions; GroupQueryAttention's own rotary ignores position_ids on a first prompt) and one
   `com.microsoft::GroupQueryAttention` (K/V heads shared as in the model, causal, the bias
   added; a sliding window, as transformers 4.51 masks it for mistral/qwen2, goes into the bias
   too), instead of the ~40 plain ops of the eager export;
3. the last decoder layer runs only at the pooled tokens (`_last_layer_at`): its other
   positions feed nothing but their own, discarded, outputs.
Scores equal the eager export within ~1e-6. Measured with ORT 1.31.1 on 2 CPU cores against
the eager export, batches of 8 plain rows: (2) 1.07x under 100 tokens and 1.4-1.6x from 400
tokens; (3) another 1.08-1.15x on the 8-layer bench model (it saves about 1/num_layers of the
work); (1) depends on how long prompts are against answers (`make bench` has the figure).

`seqlens_k` says every row is S tokens long; padding and the tree come in through the bias, so
the export makes no padding-side assumption.

Needs ONNX Runtime >= 1.2x with the one-output GroupQueryAttention form (1.31.1 is what
`make setup` installs); ORT 1.22 refuses to load it. On CUDA ORT runs GroupQueryAttention only in
float16/bfloat16 and TensorRT not at all: use the eager export (the default) for GPUs.
"""
from __future__ import annotations

import types

import torch

NEG = float(torch.finfo(torch.float32).min)
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2")


def unsupported(model) -> str | None:
    """Why the fused export cannot take this model, or None when it can."""
    mt = getattr(model.config, "model_type", None)
    if mt not in SUPPORTED_MODEL_TYPES:
        return (f"--attention gqa supports model_type {SUPPORTED_MODEL_TYPES} (and 'gpt2', "
                f"export/fused_gpt2.py), not {mt!r}")
    head_dim = model.model.layers[0].self_attn.head_dim
    if head_dim % 16:
        return (f"--attention gqa: ONNX Runtime's CPU GroupQueryAttention needs a head size that is "
                f"a multiple of 16, this model's is {head_dim}")
    rope = getattr(model.config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", "linear", "llama3"):
        return f"--attention gqa: rope_scaling {rope} is untested"
    return None


def check_supported(model) -> None:
    why = unsupported(model)
    if why:
        raise SystemExit(f"{why}; export with --attention eager")


def _rope_ref(x, pos, cos, sin, n):
    """RoPE (halves layout) at positions `pos` [B, T]: x [B, T, n*D], cos/sin [P, D/2]."""
    B, T, _ = x.shape
    D = cos.shape[-1] * 2
    c = torch.cat([cos[pos], cos[pos]], -1)[:, :, None, :]
    s = torch.cat([sin[pos], sin[pos]], -1)[:, :, None, :]
    x = x.view(B, T, n, D)
    return (x * c + _rotate_half(x) * s).reshape(B, T, n * D)


class _Rope(torch.autograd.Function):
    """com.microsoft::RotaryEmbedding: unlike GroupQueryAttention's own rotary, it takes
    per-token positions, which packed rows need."""

    @staticmethod
    def forward(ctx, x, pos, cos, sin, n):
        return _rope_ref(x, pos, cos, sin, n)

    @staticmethod
    def symbolic(g, x, pos, cos, sin, n):
        out = g.op("com.microsoft::RotaryEmbedding", x, pos, cos, sin, num_heads_i=n, interleaved_i=0)
        out.setType(x.type())
        return out


def _attention_ref(q, k, v, bias, H, KVH, D):
    """What GroupQueryAttention computes without rotary: causal attention plus the additive bias.
    q [B,S,H*D], k/v [B,S,KVH*D], bias [B,1,S,S]."""
    B, S, _ = q.shape
    q = q.view(B, S, H, D).transpose(1, 2)
    k = k.view(B, S, KVH, D).transpose(1, 2).repeat_interleave(H // KVH, dim=1)
    v = v.view(B, S, KVH, D).transpose(1, 2).repeat_interleave(H // KVH, dim=1)
    causal = torch.full((S, S), NEG, dtype=q.dtype).triu(1)[None, None]
    w = torch.softmax(q @ k.transpose(2, 3) * D ** -0.5 + (bias + causal).clamp(min=NEG), dim=-1)
    return (w @ v).transpose(1, 2).reshape(B, S, H * D)


def _absent(g):
    """Placeholder for an omitted optional input; `drop_absent` turns it into ''."""
    return g.op("com.microsoft::AbsentInput").setType(
        torch._C.TensorType.create_from_tensor(torch.zeros(1)))


class _GQA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, seqlens_k, total_len, bias, H, KVH, D):
        return _attention_ref(q, k, v, bias, H, KVH, D)

    @staticmethod
    def symbolic(g, q, k, v, seqlens_k, total_len, bias, H, KVH, D):
        # inputs: query, key, value, past_key, past_value, seqlens_k, total_sequence_length,
        # cos_cache, sin_cache, position_ids, attention_bias. q/k come rotated (_Rope). One
        # output: present_key/value would cost ~15 % and are not needed.
        out = g.op("com.microsoft::GroupQueryAttention", q, k, v, _absent(g), _absent(g),
                   seqlens_k, total_len, _absent(g), _absent(g), _absent(g), bias,
                   num_heads_i=H, kv_num_heads_i=KVH, do_rotary_i=0, outputs=1)
        out.setType(q.type())
        return out


class _Masks:
    """Per-call tensors shared by all layers: positions, rotary tables and the attention bias."""
    seqlens_k = total_len = bias = pos = cos = sin = None


def packed_mask(input_ids, attention_mask, segment_ids, lengths: bool = True):
    """The packed contract's attention (export/packing.py), for this export and fused_gpt2.py:
    `allowed` [B, S, S] bool, and with `lengths` GroupQueryAttention's `seqlens_k` [B] and
    `total_len` (int32; every row S tokens long, the bias carries padding and the tree), else
    None for both. Returns (allowed, seqlens_k, total_len)."""
    B, S = input_ids.shape[0], input_ids.shape[1]
    seqlens_k = total = None
    if lengths:
        if torch.jit.is_tracing():
            total = torch.onnx.operators.shape_as_tensor(input_ids)[1].to(torch.int32)
        else:
            total = torch.tensor(S, dtype=torch.int32)
        seqlens_k = (torch.zeros(B, dtype=torch.int32) + total - 1).to(torch.int32)
    # query i may see key j: j <= i, key not masked, key in the prefix or in i's own segment
    idx = torch.arange(S)
    causal = idx[None, :, None] >= idx[None, None, :]
    seg_k = segment_ids[:, None, :]
    allowed = causal & (attention_mask != 0)[:, None, :] & ((seg_k == 0) | (seg_k == segment_ids[:, :, None]))
    return allowed, seqlens_k, total


def _attention_forward(self, hidden_states, position_embeddings=None, attention_mask=None, **_kw):
    H = self.config.num_attention_heads
    KVH = self.config.num_key_value_heads
    D = self.head_dim
    q = _Rope.apply(self.q_proj(hidden_states), _Masks.pos, _Masks.cos, _Masks.sin, H)
    k = _Rope.apply(self.k_proj(hidden_states), _Masks.pos, _Masks.cos, _Masks.sin, KVH)
    out = _GQA.apply(q, k, self.v_proj(hidden_states), _Masks.seqlens_k, _Masks.total_len,
                     _Masks.bias, H, KVH, D)
    return self.o_proj(out), None


class GQAWrapper(torch.nn.Module):
    """The packed contract (export/packing.py): input_ids, attention_mask, position_ids,
    segment_ids, pool_index -> logits [batch, k, num_labels]; attention blocks as
    RotaryEmbedding + GroupQueryAttention, the last layer only at the pooled tokens."""

    input_names = ("input_ids", "attention_mask", "position_ids", "segment_ids", "pool_index")

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

    def forward(self, input_ids, attention_mask, position_ids, segment_ids, pool_index):
        allowed, _Masks.seqlens_k, _Masks.total_len = packed_mask(input_ids, attention_mask, segment_ids)
        window = getattr(self.model.config, "sliding_window", None)
        if window:  # transformers 4.51's mask for mistral/qwen2 (eager, sdpa): keys within `window` positions
            allowed = allowed & ((position_ids[:, :, None] - position_ids[:, None, :]) < window)
        _Masks.bias = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill(~allowed, NEG)[:, None]
        _Masks.pos = position_ids

        m = self.model.model
        h = m.embed_tokens(input_ids)
        table = torch.arange(m.config.max_position_embeddings, dtype=torch.int64)[None]
        cos, sin = m.rotary_emb(h, table)  # [1, P, D], the two halves equal: constants in the graph
        D = cos.shape[-1]
        _Masks.cos, _Masks.sin = cos[0, :, : D // 2], sin[0, :, : D // 2]
        for layer in m.layers[:-1]:
            h = layer(h, position_ids=position_ids)[0]
        h_last = _last_layer_at(m.layers[-1], h, pool_index)
        return self.model.score(m.norm(h_last))


def _rotate_half(x):
    d = x.shape[-1] // 2
    return torch.cat((-x[..., d:], x[..., :d]), dim=-1)


def _last_layer_at(layer, h, pool):
    """The last decoder layer, computed only where scores are read: each pooled token
    pool [B, K] attends to the keys its row of the attention bias allows, then the MLP runs on
    that token. Position-wise ops make this exact; it skips the last layer's Q/O projections,
    MLP and attention for every other token (1/num_layers of the work).
    h [B, S, hidden] -> [B, K, hidden]."""
    attn = layer.self_attn
    B, S, K = h.shape[0], h.shape[1], pool.shape[1]
    H, KVH, D = attn.config.num_attention_heads, attn.config.num_key_value_heads, attn.head_dim
    G = H // KVH  # query head kv*G + g uses kv head kv
    rows = torch.arange(B)[:, None]
    x = layer.input_layernorm(h)
    q = _Rope.apply(attn.q_proj(x[rows, pool]), _Masks.pos[rows, pool], _Masks.cos, _Masks.sin, H)
    q = q.view(B, K, KVH, G, D).permute(0, 2, 1, 3, 4).reshape(B, KVH, K * G, D)
    k = _Rope.apply(attn.k_proj(x), _Masks.pos, _Masks.cos, _Masks.sin, KVH)
    k = k.view(B, S, KVH, D).transpose(1, 2)  # [B, KVH, S, D]
    v = attn.v_proj(x).view(B, S, KVH, D).transpose(1, 2)
    bias = _Masks.bias[:, 0][rows, pool]  # [B, K, S]
    bias = bias[:, None, :, None, :].expand(B, 1, K, G, S).reshape(B, 1, K * G, S)
    w = torch.softmax(q @ k.transpose(2, 3) * attn.scaling + bias, dim=-1, dtype=torch.float32)
    o = (w @ v).view(B, KVH, K, G, D).permute(0, 2, 1, 3, 4).reshape(B, K, H * D)
    hp = h[rows, pool] + attn.o_proj(o)
    return hp + layer.mlp(layer.post_attention_layernorm(hp))


def drop_absent(onnx_path: str) -> None:
    import onnx

    import external_data

    m = onnx.load(onnx_path, load_external_data=False)
    absent = {n.output[0] for n in m.graph.node if n.op_type == "AbsentInput"}
    keep = [n for n in m.graph.node if n.op_type != "AbsentInput"]
    for n in keep:
        for i, x in enumerate(n.input):
            if x in absent:
                n.input[i] = ""
    del m.graph.node[:]
    m.graph.node.extend(keep)
    external_data.save(m, onnx_path)
