"""Custom reward heads for `export_rm.py --head armo|grm`: PyTorch mirrors of two upstream
architectures (state-dict names as upstream's, so their checkpoints load), per-token ONNX
wrappers, and the checks against the mirrors' own forward passes.

* `armo`: ArmoRM (RLHFlow/ArmoRM-Llama3-8B-v0.1, remote code `LlamaForRewardModelWithGating`):
  a Llama backbone, `regression_layer` (hidden -> K objectives, no bias) at the token before
  the first pad id (`(argmax(ids == pad) - 1) mod L`), a gating MLP (`gating.layers`, ReLU
  between, softmax(x / temperature) * logit_scale) over the hidden state at the last
  occurrence of a token pattern (Llama-3's `<|eot_id|><|start_header_id|>assistant
  <|end_header_id|>\\n\\n`: where the last user turn ends), `reward_transform_matrix` [K, K],
  and score = sum(gating * (rewards @ matrix)). Upstream raises when the pattern is absent.
* `grm`: GRM (Ray2333/GRM-*, rewardbench's `GRewardModel`): a backbone and `v_head.summary`
  (Linear, ReLU, ..., Linear -> 1) over the last hidden state, read at GRM's index (L - 1 for
  every row when any row's first column is masked, else attention_mask.sum - 1).

The exports are per token (the evaluator pools with the registry's rule, `--pooling`):
armo: `score` [batch, seq, 1] (the gated score at every position, the gating from the row's
pattern position; NaN for every position when the row has no pattern, where upstream raises)
and `rewards` [batch, seq, K] (the objectives, before the transform matrix, as ArmoRM's
`rewards`); grm: `token_logits` [batch, seq, 1] (the value head at every position).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ArmoRM's gating token pattern (its modeling_custom.py): Llama-3's end of a user turn and the
# assistant header, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n".
LLAMA3_GATING_PATTERN = [128009, 128006, 78191, 128007, 271]


# ----------------------------------------------------------------------------- ArmoRM


class GatingNetwork(nn.Module):
    """ArmoRM's gating: Linear layers with ReLU between, softmax(x / T) * logit_scale."""

    def __init__(self, in_features, out_features, bias=True, temperature=10.0, logit_scale=1.0,
                 hidden_dim=1024, n_hidden=3):
        super().__init__()
        self.temperature = temperature
        self.logit_scale = nn.Parameter(torch.ones(1) * logit_scale)
        layers = []
        for _ in range(n_hidden):
            layers.append(nn.Linear(in_features, hidden_dim))
            in_features = hidden_dim
        layers.append(nn.Linear(in_features, out_features, bias=bias))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        x = F.softmax(x / self.temperature, dim=1)
        return x * self.logit_scale[0]


def find_token_for_gating(lst, pattern):
    """The start of the last occurrence of `pattern` in `lst` (ArmoRM's function)."""
    n = len(pattern)
    for j in range(len(lst) - n, -1, -1):
        if lst[j : j + n] == pattern:
            return j
    raise ValueError("Token pattern not found in the list.")


def gating_pattern(model):
    """The model's gating pattern: config.gating_token_pattern (the mirror), else the module
    global `token_pattern` of the model's remote code, else Llama-3's."""
    import sys

    p = getattr(model.config, "gating_token_pattern", None)
    if p:
        return [int(x) for x in p]
    mod = sys.modules.get(type(model).__module__)
    return [int(x) for x in getattr(mod, "token_pattern", LLAMA3_GATING_PATTERN)]


def _armo_classes():
    from transformers import LlamaConfig, LlamaModel, LlamaPreTrainedModel

    class LlamaForRewardModelWithGating(LlamaPreTrainedModel):
        """A mirror of ArmoRM's modeling_custom.py (same module and parameter names)."""

        config_class = LlamaConfig

        def __init__(self, config):
            super().__init__(config)
            self.num_labels = config.num_labels
            self.model = LlamaModel(config)
            cfg = config.to_dict()
            self.num_objectives = cfg.get("num_objectives", 19)
            self.regression_layer = nn.Linear(config.hidden_size, self.num_objectives, bias=False)
            self.post_init()
            eye = torch.zeros(self.num_objectives, self.num_objectives)
            eye[range(self.num_objectives), range(self.num_objectives)] = 1.0
            self.reward_transform_matrix = nn.Parameter(eye)
            self.reward_transform_matrix.requires_grad = False
            self.gating = GatingNetwork(
                config.hidden_size, self.num_objectives,
                temperature=cfg.get("gating_temperature", 10),
                hidden_dim=cfg.get("gating_hidden_dim", 1024),
                n_hidden=cfg.get("gating_n_hidden", 3),
            )

        def forward(self, input_ids, attention_mask=None):
            hidden = self.model(input_ids, attention_mask=attention_mask, use_cache=False)[0]
            b = input_ids.shape[0]
            pad = self.config.pad_token_id
            at = (torch.eq(input_ids, pad).int().argmax(-1) - 1) % input_ids.shape[-1]
            rows = torch.arange(b)
            rewards = self.regression_layer(hidden[rows, at])
            pattern = gating_pattern(self)
            gate_at = [find_token_for_gating(ids.tolist(), pattern) for ids in input_ids]
            gating = self.gating(hidden[rows, gate_at, :])
            adjusted = rewards @ self.reward_transform_matrix
            score = torch.sum(gating * adjusted, dim=1, keepdim=True)
            return {"rewards": rewards, "gating_output": gating, "score": score, "logits": score}

    return LlamaForRewardModelWithGating


class ArmoPerToken(nn.Module):
    """ArmoRM's head at every position: `score` [B, L, 1] and `rewards` [B, L, K]."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.pattern = gating_pattern(model)

    def forward(self, input_ids, attention_mask):
        m = self.model
        hidden = m.model(input_ids, attention_mask=attention_mask, use_cache=False)[0]  # [B, L, H]
        rewards = m.regression_layer(hidden)  # [B, L, K]
        width = input_ids.shape[1]
        n = len(self.pattern)
        # match[b, j]: the pattern starts at column j (ids padded with -1 past the end)
        padded = F.pad(input_ids, (0, n), value=-1)
        match = torch.ones_like(input_ids, dtype=torch.bool)
        for k, tok in enumerate(self.pattern):
            match = match & (padded[:, k : k + width] == tok)
        found = match.any(dim=1)
        cols = torch.arange(width, dtype=torch.float32)
        gate_at = (cols.unsqueeze(0) * match.float()).argmax(-1)  # the last match (0 if none)
        rows = torch.arange(input_ids.shape[0])
        gating = m.gating(hidden[rows, gate_at])  # [B, K]
        adjusted = rewards @ m.reward_transform_matrix
        score = (gating.unsqueeze(1) * adjusted).sum(-1, keepdim=True)  # [B, L, 1]
        score = torch.where(found[:, None, None], score, torch.full_like(score, float("nan")))
        return score, rewards


# ----------------------------------------------------------------------------- GRM


class ValueHead(nn.Module):
    """GRM's value head (rewardbench/models/grm.py): `summary` = Linear(hidden, 1) for
    vhead_layer_type "linear", else vhead_num_layers x (Linear, ReLU), Linear(neurons, 1)."""

    def __init__(self, config):
        super().__init__()
        p = getattr(config, "summary_dropout_prob", 0.1)
        self.dropout = nn.Dropout(p) if p else nn.Identity()
        hidden = config.hidden_size
        self.layer_type = getattr(config, "vhead_layer_type", "mlp")
        neurons = getattr(config, "vhead_num_neurons", 1024)
        layers = getattr(config, "vhead_num_layers", 1)
        if self.layer_type == "linear":
            self.summary = nn.Linear(hidden, 1)
        else:
            mods, inp = [], hidden
            for _ in range(layers):
                mods.extend([nn.Linear(inp, neurons), nn.ReLU()])
                inp = neurons
            mods.append(nn.Linear(neurons, 1))
            self.summary = nn.Sequential(*mods)
        self.flatten = nn.Flatten()

    def forward(self, hidden_states):
        return self.summary(self.dropout(hidden_states))


def _grm_classes():
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

    class GRewardModel(PreTrainedModel):
        """A mirror of rewardbench's GRewardModel: a backbone (any causal LM's `.model`) and
        `v_head`, read at GRM's index."""

        config_class = AutoConfig
        _no_split_modules = []

        def __init__(self, config):
            super().__init__(config)
            self.model = AutoModelForCausalLM.from_config(config).model
            self.v_head = ValueHead(self.model.config)

        def forward(self, input_ids, attention_mask):
            out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                             output_hidden_states=True, use_cache=False)
            last = out.hidden_states[-1]
            if torch.any(attention_mask[:, 0] == 0):
                index = attention_mask.shape[-1] - 1
            else:
                index = attention_mask.sum(dim=-1) - 1
            return self.v_head(last).squeeze(-1)[torch.arange(len(last)), index]

    return GRewardModel


class GrmPerToken(nn.Module):
    """GRM's value head at every position: `token_logits` [B, L, 1]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        out = self.model.model(input_ids=input_ids, attention_mask=attention_mask,
                               output_hidden_states=True, use_cache=False)
        return self.model.v_head(out.hidden_states[-1])


# ----------------------------------------------------------------------------- loading, export, checks

HEADS = ("armo", "grm")
OUTPUTS = {"armo": ["score", "rewards"], "grm": ["token_logits"]}


def load(head, hf_dir):
    """The checkpoint in `hf_dir` as `head`'s model (fp32, eval, dropout off): a folder with
    remote code (`auto_map`, upstream's own ArmoRM) through it, else the mirror."""
    import json
    import os

    with open(os.path.join(hf_dir, "config.json")) as fh:
        cfg = json.load(fh)
    if head == "armo":
        if "auto_map" in cfg:
            from transformers import AutoModelForSequenceClassification

            model = AutoModelForSequenceClassification.from_pretrained(
                hf_dir, torch_dtype=torch.float32, trust_remote_code=True, attn_implementation="eager")
        else:
            model = _armo_classes().from_pretrained(hf_dir, torch_dtype=torch.float32,
                                                    attn_implementation="eager")
    elif head == "grm":
        model = _grm_classes().from_pretrained(hf_dir, torch_dtype=torch.float32, attn_implementation="eager")
    else:
        raise SystemExit(f"--head {head}: not one of {', '.join(HEADS)}")
    for mod in model.modules():
        if isinstance(mod, nn.Dropout):
            mod.p = 0.0
    model.eval()
    return model


def wrapper(head, model):
    return ArmoPerToken(model) if head == "armo" else GrmPerToken(model)


def build_armo(vocab, seed, pattern, pad_id, objectives=5):
    """A tiny random ArmoRM-style model (for fixtures)."""
    from transformers import LlamaConfig

    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=2048, rope_theta=10000.0,
        rms_norm_eps=1e-5, initializer_range=0.3, bos_token_id=0, eos_token_id=1, pad_token_id=pad_id,
        tie_word_embeddings=False, use_cache=False, num_labels=1, torch_dtype="float32",
        num_objectives=objectives, gating_temperature=10.0, gating_hidden_dim=16, gating_n_hidden=3,
        gating_token_pattern=list(pattern), architectures=["LlamaForRewardModelWithGating"],
    )
    torch.manual_seed(seed)
    model = _armo_classes()(cfg)
    with torch.no_grad():
        # ArmoRM's transform matrix and logit scale are learned; random ones test the graph
        model.reward_transform_matrix.copy_(torch.eye(objectives) + 0.3 * torch.randn(objectives, objectives))
        model.gating.logit_scale.fill_(1.7)
        for layer in model.gating.layers:
            layer.weight.mul_(8.0)  # a gating that is not near uniform after the temperature
    return model.eval()


def build_grm(vocab, seed, pad_id):
    """A tiny random GRM-style model (for fixtures)."""
    from transformers import LlamaConfig

    cfg = LlamaConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=2048, rope_theta=10000.0,
        rms_norm_eps=1e-5, initializer_range=0.3, bos_token_id=0, eos_token_id=1, pad_token_id=pad_id,
        tie_word_embeddings=False, use_cache=False, torch_dtype="float32",
        vhead_layer_type="mlp", vhead_num_neurons=24, vhead_num_layers=1,
        architectures=["GRewardModel"],
    )
    torch.manual_seed(seed)
    return _grm_classes()(cfg).eval()


def upstream_index(head, ids, mask, pad):
    """The position upstream reads each row at (the rule the registry names)."""
    if head == "armo":
        return (torch.eq(ids, pad).int().argmax(-1) - 1) % ids.shape[-1]
    if bool(torch.any(mask[:, 0] == 0)):
        return torch.full((ids.shape[0],), ids.shape[-1] - 1)
    return mask.sum(-1) - 1


@torch.no_grad()
def upstream_scores(head, model, ids, mask):
    """The mirror's own forward pass (upstream's pooling inside): one score per row."""
    ids, mask = torch.as_tensor(ids), torch.as_tensor(mask)
    if head == "armo":
        return model(ids, attention_mask=mask)["score"][:, 0].float().numpy()
    return model(ids, mask).float().numpy()


@torch.no_grad()
def torch_outputs(head, model, ids, mask):
    out = wrapper(head, model).eval()(torch.as_tensor(ids), torch.as_tensor(mask))
    out = out if isinstance(out, tuple) else (out,)
    return [o.float().numpy() for o in out]


def export(head, model, onnx_path, opset=17, external="auto", verbose=True):
    """The head's graph (export/weights.py: structure, the causal-mask pass, then the weights
    one tensor at a time, external data under `external`'s rule). Returns True when the data is
    external."""
    import export_rm
    import weights

    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (2, 24), generator=g, dtype=torch.int64)
    ids[ids == model.config.pad_token_id] = 3
    if head == "armo":  # the trace sees a match (and the graph keeps the no-match branch)
        p = torch.tensor(gating_pattern(model))
        ids = torch.cat([ids, ids], dim=1)  # room for the pattern
        ids[0, 1 : 1 + len(p)] = p
        ids[1, -len(p) - 1 : -1] = p
    mask = torch.ones_like(ids)
    names = OUTPUTS[head]
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    axes.update({n: {0: "batch", 1: "sequence"} for n in names})
    module = wrapper(head, model)
    weights.trace(module, (ids, mask), onnx_path, input_names=["input_ids", "attention_mask"],
                  output_names=names, dynamic_axes=axes, opset_version=opset,
                  shape_inference=head == "armo")  # its ConcatFromSequence is typed by it
    n = export_rm.shrink_causal_constants(onnx_path)
    if verbose and n:
        print(f"replaced {n} constant causal mask(s) by Trilu nodes")
    return weights.attach(onnx_path, weights.tensors_of(module), external, verbose=verbose)


def verify(head, model, onnx_path, pad_id, tol=1e-4, verbose=True):
    """Every output at every position against the PyTorch wrapper, and the wrapper at
    upstream's position against the mirror's own forward (its pooling inside), on left- and
    right-padded batches of very different lengths and a masked leading BOS; for armo also a
    row without the gating pattern (NaN: upstream raises)."""
    import onnxruntime as ort

    import export_rm

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    vocab = model.config.vocab_size
    rng = np.random.default_rng(4321)
    pattern = gating_pattern(model) if head == "armo" else []

    def rand_seq(n):
        s = rng.integers(3, vocab, size=n, dtype=np.int64)
        s[s == pad_id] = 3
        if pattern and n > len(pattern) + 2:  # the pattern twice: the last one gates
            at = [int(rng.integers(0, (n - len(pattern)) // 2)), n - len(pattern) - 1]
            for a in at:
                s[a : a + len(pattern)] = pattern
        return s

    seqs = [rand_seq(n) for n in (30, 60, 300, 700)]
    cases = []
    for side in ("left", "right"):
        ids, mask = export_rm._pad_batch(seqs, pad_id, side)
        cases.append((f"{side}-padded lengths 30/60/300/700", ids, mask))
    bos = model.config.bos_token_id
    d = [np.concatenate([[bos, bos], rand_seq(n)]) for n in (30, 70)]
    ids, mask = export_rm._pad_batch(d, pad_id, "left")
    for i, s in enumerate(d):
        mask[i, ids.shape[1] - len(s)] = 0
    cases.append(("left-padded with masked leading BOS", ids, mask))
    one = rand_seq(57)[None, :]
    cases.append(("unpadded single row length 57", one, np.ones_like(one)))
    worst = 0.0
    for name, ids, mask in cases:
        got = sess.run(OUTPUTS[head], {"input_ids": ids, "attention_mask": mask})
        want = torch_outputs(head, model, ids, mask)
        for n, g_, w in zip(OUTPUTS[head], got, want):
            if g_.shape != w.shape or g_.dtype != np.float32:
                raise SystemExit(f"VERIFICATION FAILED: {name}: output {n} {g_.shape} {g_.dtype} vs {w.shape}")
            diff = float(np.max(np.abs(g_ - w)))
            worst = max(worst, diff)
            if verbose:
                print(f"  verify {name}: {n} max abs diff {diff:.3e} (every position)")
        at = upstream_index(head, torch.as_tensor(ids), torch.as_tensor(mask), pad_id).numpy()
        pooled = want[0][np.arange(len(ids)), at, 0]
        ref = upstream_scores(head, model, ids, mask)
        diff = float(np.max(np.abs(pooled - ref)))
        if not diff <= 1e-5:
            raise SystemExit(f"VERIFICATION FAILED: {name}: the per-token head at upstream's position differs "
                             f"from the model's own forward by {diff:.3e}")
        if verbose:
            print(f"  verify {name}: at upstream's position vs the model's forward {diff:.3e}")
    if head == "armo":
        none = rng.integers(3, vocab, size=(1, 20), dtype=np.int64)
        none[none == pad_id] = 3
        score = sess.run(["score"], {"input_ids": none, "attention_mask": np.ones_like(none)})[0]
        if not np.all(np.isnan(score)):
            raise SystemExit("VERIFICATION FAILED: a row without the gating pattern must score NaN")
        if verbose:
            print("  verify a row without the gating pattern: NaN at every position (upstream raises)")
    if verbose:
        print(f"max abs diff ONNX Runtime vs PyTorch: {worst:.3e} (tolerance {tol:g})")
    if not np.isfinite(worst) or worst > tol:
        raise SystemExit(f"VERIFICATION FAILED: max abs diff {worst:.3e} > {tol:g} for {onnx_path}")
    return worst
