#!/usr/bin/env python3
"""Export a Hugging Face sequence-classification reward model to ONNX and verify it.

Usage:
    export/.venv/bin/python export/export_rm.py --model HF_DIR --out DIR [--opset 17] [--attention auto|eager|gqa]
        [--per_token] [--head armo|grm] [--model_id ORG/NAME]

`--attention auto` (the default) writes two graphs where the fused export takes the model
(Llama, Mistral, Qwen2: export/fused_attention.py; GPT-2: export/fused_gpt2.py): DIR/model.onnx
with fused attention and the packed contract (the fast one on CPU) and DIR/gpu/model.onnx, the
eager graph (for CUDA and TensorRT); `rewardbench --device` picks between them. Other models
(Gemma, ...), `--per_token` and `--head` get the eager graph alone, with a note. `--attention eager|gqa` writes that one graph.

A plain (eager) DIR/model.onnx has inputs `input_ids`, `attention_mask` (int64 [batch, seq], both axes
dynamic) and output `logits` (float32 [batch, num_labels]); copies the tokenizer files and
config.json into DIR; then checks ONNX Runtime against PyTorch on left-padded, right-padded and
unpadded batches of very different lengths, and exits non-zero if max |diff| > tolerance. Each
graph is written with one copy of the weights in memory (export/weights.py), and PyTorch's
outputs are computed before the model is freed and ONNX Runtime loads the graphs.

The pooling that transformers does inside the model (rightmost token whose id != pad_token_id)
is traced into the graph, so `config.pad_token_id` is set first, the way RewardBench does it:
the tokenizer's pad id, or its eos id when it has no pad token.

`--head armo|grm` exports a custom head (export/heads.py): ArmoRM's gated multi-objective head
(outputs `score` [batch, seq, 1] and `rewards` [batch, seq, K]) or GRM's value head
(`token_logits` [batch, seq, 1]), both at every position, checked against the model's own
forward pass at upstream's position; the registry's entries for ArmoRM and GRM name the rule.

`--model_id ORG/NAME` records the checkpoint's hub id as config.json's `_name_or_path`, which
the evaluator matches against its model registry (models.toml) to pick the model's settings.

`--per_token` exports the head applied at every position instead: output `token_logits`
(float32 [batch, seq, num_labels]), no pooling in the graph. The evaluator then picks the
position with a rule (`rewardbench --pooling RULE`: last_non_pad, first_pad_minus_one,
last_attended, mask_sum_minus_one, grm), and `--save_token_rewards` writes every position.
The check compares every position (padding included) with PyTorch's head output.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

import external_data
import weights

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
)
TRACE_LEN = 24
DEFAULT_TOL = 1e-4


def resolve_pad_id(tokenizer) -> int:
    """RewardBench: pad token = tokenizer's pad, else eos."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if tokenizer.eos_token_id is None:
        raise SystemExit("tokenizer has neither a pad nor an eos token; cannot define pooling")
    return int(tokenizer.eos_token_id)


DTYPES = {"float32": torch.float32, "float16": torch.float16}
# A float16 graph against PyTorch in float16: both round every op to 10-bit mantissas, in
# different orders (measured ~3e-3 on the tiny Llama fixture's scores, which are ~1).
FP16_TOL = 2e-2


def load_model(hf_dir: str, dtype: str = "float32"):
    """The checkpoint as RewardBench loads it; `dtype` float16 loads the weights in half
    precision directly (each tensor cast as it is read: no float32 copy of the model)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        hf_dir, torch_dtype=DTYPES[dtype], attn_implementation="eager"
    )
    model.config.use_cache = False
    pad_id = resolve_pad_id(tokenizer)
    model.config.pad_token_id = pad_id
    for m in model.modules():  # RewardBench's disable_dropout_in_model
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    model.eval()
    return model, tokenizer, pad_id


def max_positions(config) -> int:
    for k in ("max_position_embeddings", "n_positions"):
        v = getattr(config, k, None)
        if v:
            return int(v)
    return 2048


class _KwargsWrapper(torch.nn.Module):
    """Call the model by keyword: GPT-2's second positional argument is past_key_values, not the mask."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                            return_dict=True).logits
        # a half-precision graph still returns float32 scores (the evaluator's contract)
        return logits if logits.dtype == torch.float32 else logits.float()


PER_TOKEN_OUTPUT = "token_logits"


def head_module(model):
    """The sequence-classification head that transformers applies to every position before it
    pools (`score` in Llama, Mistral, Qwen2, Gemma, GPT-2, GPT-NeoX, ...)."""
    head = getattr(model, "score", None)
    if not isinstance(head, torch.nn.Module):
        raise SystemExit(
            f"--per_token: {type(model).__name__} has no `score` head applied at every position "
            "(models that pool before their head, e.g. BERT or DeBERTa, cannot be exported per token)")
    return head


class _PerTokenWrapper(torch.nn.Module):
    """The model's own forward pass, returning what its head computed at every position (a
    forward hook on the head), so nothing of the model's computation is re-implemented; the
    pooling after the head is dead code and leaves the graph."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.head = head_module(model)

    def forward(self, input_ids, attention_mask):
        seen = []
        handle = self.head.register_forward_hook(lambda _m, _i, out: seen.append(out))
        try:
            self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, return_dict=True)
        finally:
            handle.remove()
        if len(seen) != 1 or seen[0].dim() != 3:
            shapes = [tuple(t.shape) for t in seen]
            raise SystemExit(f"--per_token: the head ran {len(seen)} time(s) with outputs {shapes}; "
                             "expected once, on [batch, seq, hidden]")
        return seen[0]


def torch_token_logits(model, ids, mask):
    """PyTorch's head output at every position, [batch, seq, num_labels]."""
    with torch.no_grad():
        return _PerTokenWrapper(model)(torch.as_tensor(ids), torch.as_tensor(mask)).float().numpy()


def export_onnx(model, onnx_path: str, opset: int = 17, attention: str = "eager",
                per_token: bool = False, external: str = "auto", verbose: bool = True) -> bool:
    """Writes the graph (export/weights.py: the structure traced without weights, the graph
    passes, then the weights one tensor at a time, external data under `external`'s rule).
    Returns True when the data is external."""
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (2, TRACE_LEN), generator=g, dtype=torch.int64)
    ids[ids == model.config.pad_token_id] = 3
    mask = torch.ones_like(ids)
    gqa = attention == "gqa"
    output = PER_TOKEN_OUTPUT if per_token else "logits"
    if per_token:
        if gqa:
            raise SystemExit("--per_token needs --attention eager (the fused export computes the last "
                             "layer only at the pooled tokens)")
        wrapper = _PerTokenWrapper(model)
        args, names = (ids, mask), ["input_ids", "attention_mask"]
        axes = {
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            output: {0: "batch", 1: "sequence"},
        }
    elif gqa:
        import packing

        wrapper = packed_wrapper(model)
        # two rows: two texts sharing a prefix, and one text alone (k padded)
        pad = model.config.pad_token_id
        feed = packing.pack([[(ids[0], mask[0]), (np.concatenate([ids[0, :10], ids[1, :7]]), mask[0, :17])],
                             [(ids[1], mask[1])]], pad)
        args = tuple(torch.from_numpy(feed[n]) for n in packing.PACKED_INPUTS)
        names = list(packing.PACKED_INPUTS)
        axes = {n: {0: "batch", 1: "sequence"} for n in names[:4]}
        axes.update(pool_index={0: "batch", 1: "texts"}, logits={0: "batch", 1: "texts"})
    else:
        wrapper = _KwargsWrapper(model)
        args, names = (ids, mask), ["input_ids", "attention_mask"]
        axes = {
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch"},
        }
    try:
        weights.trace(wrapper, args, onnx_path, input_names=names, output_names=[output], dynamic_axes=axes,
                      opset_version=opset, custom_opsets={"com.microsoft": 1} if gqa else None)
    finally:
        if gqa:
            wrapper.restore()  # the eager model stays the reference for verify()
    if gqa:
        import fused_attention

        fused_attention.drop_absent(onnx_path)
    n = shrink_causal_constants(onnx_path)
    if verbose and n:
        print(f"replaced {n} constant causal mask(s) by Trilu nodes")
    return weights.attach(onnx_path, weights.tensors_of(wrapper), external, names, verbose)


def packed_wrapper(model, gpt2_op: str | None = None):
    """The fused, packed export's wrapper: GPT-2's (fused_gpt2.py) or Llama/Mistral/Qwen2's
    (fused_attention.py)."""
    if getattr(model.config, "model_type", None) == "gpt2":
        import fused_gpt2

        return fused_gpt2.GPT2PackedWrapper(model, gpt2_op)
    import fused_attention

    return fused_attention.GQAWrapper(model)


def shrink_causal_constants(onnx_path: str, min_elems: int = 65536) -> int:
    """Replace big constant lower-triangular bool masks (GPT-2's `attn.bias` buffer, n_positions^2
    bytes) by ConstantOfShape -> Trilu -> Cast nodes, which compute the same tensor at load time.
    Returns the number of constants replaced."""
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    import external_data

    m = onnx.load(onnx_path, load_external_data=False)
    base_dir = os.path.dirname(os.path.abspath(onnx_path))
    new_nodes, replaced = [], 0
    for node in m.graph.node:
        t = node.attribute[0].t if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value" else None
        if (t is not None and t.data_type == TensorProto.BOOL and len(t.dims) >= 2
                and t.dims[-1] == t.dims[-2] and int(np.prod(t.dims)) >= min_elems):
            arr = numpy_helper.to_array(t, base_dir)
            n = arr.shape[-1]
            if np.array_equal(arr, np.broadcast_to(np.tril(np.ones((n, n), dtype=bool)), arr.shape)):
                out = node.output[0]
                shp, ones, tri = out + "_shape", out + "_ones", out + "_tril"
                new_nodes += [
                    helper.make_node("Constant", [], [shp], value=numpy_helper.from_array(
                        np.array(arr.shape, dtype=np.int64), name=shp)),
                    helper.make_node("ConstantOfShape", [shp], [ones], value=numpy_helper.from_array(
                        np.array([1.0], dtype=np.float32))),
                    helper.make_node("Trilu", [ones], [tri], upper=0),
                    helper.make_node("Cast", [tri], [out], to=TensorProto.BOOL),
                ]
                replaced += 1
                continue
        new_nodes.append(node)
    if replaced:
        del m.graph.node[:]
        m.graph.node.extend(new_nodes)
        external_data.save(m, onnx_path)
        onnx.checker.check_model(onnx_path)
    return replaced


def _pad_batch(seqs, pad_id, side):
    L = max(len(s) for s in seqs)
    ids = np.full((len(seqs), L), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), L), dtype=np.int64)
    for i, s in enumerate(seqs):
        if side == "left":
            ids[i, L - len(s):] = s
            mask[i, L - len(s):] = 1
        else:
            ids[i, : len(s)] = s
            mask[i, : len(s)] = 1
    return ids, mask


def check_inputs(config, pad_id: int):
    """The verification's inputs, the same at every call: padded batches of very different
    lengths (left, right, a masked leading BOS), unpadded rows (one of 1000 tokens or the
    model's positions) and packed groups (texts sharing
    a prefix, export/packing.py). Returns (cases [(name, ids, mask)], groups [[(ids, mask)]])."""
    vocab = config.vocab_size
    long_len = min(1000, max_positions(config))
    assert long_len > TRACE_LEN
    rng = np.random.default_rng(1234)

    def rand_seq(n):
        s = rng.integers(0, vocab, size=n, dtype=np.int64)
        s[s == pad_id] = (pad_id + 1) % vocab
        return s

    # the long row goes alone: in a padded batch its attention buffers (rows x heads x length^2)
    # would outweigh a real-size model's weights in the check's memory
    seqs = [rand_seq(n) for n in (3, 40, 300)]
    bos = getattr(config, "bos_token_id", None)
    cases = []
    for side in ("left", "right"):
        ids, mask = _pad_batch(seqs, pad_id, side)
        cases.append((f"{side}-padded lengths 3/40/300", ids, mask))
    long = rand_seq(long_len)[None, :]
    cases.append((f"unpadded single row length {long_len}", long, np.ones_like(long)))
    # double-BOS style masking: a masked (non-pad) token at the first attended position
    if bos is not None and bos != pad_id:
        dseqs = [np.concatenate([[bos, bos], rand_seq(n)]) for n in (5, 70)]
        ids, mask = _pad_batch(dseqs, pad_id, "left")
        for i, s in enumerate(dseqs):
            mask[i, ids.shape[1] - len(s)] = 0
        cases.append(("left-padded with masked leading BOS", ids, mask))
    one = rand_seq(57)[None, :]
    cases.append(("unpadded single row length 57", one, np.ones_like(one)))

    def text(*parts):
        ids = np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])
        return ids, np.ones_like(ids)

    p1, p2 = rand_seq(30), rand_seq(min(200, long_len // 2))
    groups = [
        [text(p1, rand_seq(5)), text(p1, rand_seq(60))],                     # two answers
        [text(p2, rand_seq(1)), text(p2, rand_seq(40)), text(p2, rand_seq(3))],  # three, k=3
        [text(p1[:12]), text(p1)],                                           # one text is a prefix of the other
        [text(rand_seq(long_len - 10))],                                     # a text alone
        [text(p1, [pad_id, pad_id]), text(p1, rand_seq(4), [pad_id])],       # trailing pad ids: pooled before them
    ]
    if bos is not None and bos != pad_id:  # masked leading BOS in the shared prefix
        a, b = text([bos, bos], p1, rand_seq(7)), text([bos, bos], p1, rand_seq(2))
        a[1][0] = b[1][0] = 0
        groups.append([a, b])
    return cases, groups


def references(model, pad_id: int, per_token: bool = False, packed: bool = False) -> dict:
    """PyTorch's outputs on check_inputs, computed once so the model can be freed before ONNX
    Runtime loads the export (one copy of the weights at a time). `per_token`: the head at every
    position, and the model's pooled logits must equal it at the last token whose id is not the
    pad id (transformers >= 4.49's rule, the evaluator's default for a per-token export).
    `packed`: each packed text's score alone."""
    import packing

    cases, groups = check_inputs(model.config, pad_id)

    def scores(ids, mask):
        with torch.no_grad():
            return model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.float().numpy()

    refs = {"pad_id": pad_id, "cases": cases, "scores": [scores(ids, mask) for _, ids, mask in cases]}
    if per_token:
        refs["tokens"] = []
        for (name, ids, mask), pooled_ref in zip(cases, refs["scores"]):
            tokens = torch_token_logits(model, ids, mask)
            at = [packing.last_non_pad(row, pad_id) or 0 for row in ids]
            d = float(np.max(np.abs(tokens[np.arange(len(ids)), at] - pooled_ref)))
            if not d <= 1e-6:
                raise SystemExit(f"VERIFICATION FAILED: {name}: the head output at the last non-pad token "
                                 f"differs from the model's pooled logits by {d:.3e}; the `score` hook does "
                                 "not see what the model pools")
            refs["tokens"].append(tokens)
    if packed:
        refs["groups"] = groups
        refs["packed"] = [[scores(ids[None], mask[None])[0] for ids, mask in texts] for texts in groups]
    return refs


def verify(refs: dict, onnx_path: str, tol: float = DEFAULT_TOL, verbose: bool = True,
           per_token: bool = False) -> float:
    """ONNX Runtime on `onnx_path` against `references(...)`: the plain contract on every case
    (`per_token`: every position, padding included), and packed rows when the graph takes them.
    Exits non-zero past `tol`; returns the worst max |diff|."""
    import onnxruntime as ort

    import packing

    if verbose:
        print(f"checking {onnx_path} against PyTorch")
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    cases, pad_id = refs["cases"], refs["pad_id"]
    if per_token:
        tokens = dict(zip((c[0] for c in cases), refs["tokens"]))

        def run_tokens(ids, mask, name):
            got = sess.run([PER_TOKEN_OUTPUT], {"input_ids": ids, "attention_mask": mask})[0]
            return tokens[name], got

        return compare_cases(cases, run_tokens, onnx_path, tol, verbose, " (every position)")
    scores = dict(zip((c[0] for c in cases), refs["scores"]))
    worst = compare_cases(cases, lambda ids, mask, name: (scores[name], packing.run_plain(sess, ids, mask, pad_id)),
                          onnx_path, tol, verbose)
    if packing.is_packed(sess):
        if "packed" not in refs:
            raise SystemExit(f"{onnx_path}: a packed graph, but no packed references were computed")
        worst = max(worst, verify_packed(sess, refs, onnx_path, tol, verbose))
    return worst


def verify_packed(sess, refs, onnx_path, tol, verbose) -> float:
    """Packed rows (texts sharing a prefix, export/packing.py) against PyTorch on each text alone."""
    import packing

    groups = refs["groups"]
    feed = packing.pack(groups, refs["pad_id"])

    def run(_ids, _mask, _name):
        got = sess.run(["logits"], feed)[0]
        ref = np.zeros_like(got)
        for r, texts in enumerate(groups):
            ref[r, :len(texts)] = refs["packed"][r]
            ref[r, len(texts):] = got[r, len(texts):]  # k padding: not a score
        return ref, got

    return compare_cases([("packed rows sharing prefixes (k=1..3)", None, None)], run, onnx_path, tol, verbose)


def compare_cases(cases, run, onnx_path: str, tol: float, verbose: bool, what: str = "") -> float:
    """For each (name, ids, mask) case, `run(ids, mask, name)` gives (PyTorch, ONNX Runtime) outputs;
    prints each max |diff| and exits non-zero if any output differs in shape/dtype or by > tol."""
    worst = 0.0
    for name, ids, mask in cases:
        ref, got = run(ids, mask, name)
        if got.shape != ref.shape or got.dtype != np.float32:
            raise SystemExit(f"ONNX output shape/dtype mismatch on {name}: {got.shape} {got.dtype} vs {ref.shape}")
        d = float(np.max(np.abs(got - ref)))
        worst = max(worst, d)
        if verbose:
            print(f"  verify {name}: max abs diff {d:.3e}")
    if verbose:
        print(f"max abs diff ONNX Runtime vs PyTorch{what}: {worst:.3e} (tolerance {tol:g})")
    if not np.isfinite(worst) or worst > tol:
        raise SystemExit(f"VERIFICATION FAILED: max abs diff {worst:.3e} > {tol:g} for {onnx_path}")
    return worst


def copy_support_files(hf_dir: str, out_dir: str, pad_id: int) -> None:
    if os.path.realpath(hf_dir) == os.path.realpath(out_dir):
        return
    for f in TOKENIZER_FILES + ("config.json",):
        src = os.path.join(hf_dir, f)
        if os.path.exists(src):
            shutil.copy2(src, os.path.join(out_dir, f))
    # keep config.json consistent with the pad id baked into the graph
    cfg_path = os.path.join(out_dir, "config.json")
    with open(cfg_path) as fh:
        cfg = json.load(fh)
    if cfg.get("pad_token_id") != pad_id:
        cfg["pad_token_id"] = pad_id
        with open(cfg_path, "w") as fh:
            json.dump(cfg, fh, indent=2, sort_keys=True)
            fh.write("\n")


def record_model_id(out_dir: str, model_id: str) -> None:
    """config.json's `_name_or_path`: the hub id the evaluator's registry matches."""
    cfg_path = os.path.join(out_dir, "config.json")
    with open(cfg_path) as fh:
        cfg = json.load(fh)
    if cfg.get("_name_or_path") != model_id:
        cfg["_name_or_path"] = model_id
        with open(cfg_path, "w") as fh:
            json.dump(cfg, fh, indent=2, sort_keys=True)
            fh.write("\n")


def export_head(hf_dir: str, out_dir: str, head: str, opset: int = 17, tol: float = DEFAULT_TOL,
                verbose: bool = True, external: str = "auto") -> float:
    """A custom head (export/heads.py), per token, checked against the model's own forward."""
    from transformers import AutoTokenizer

    import heads

    os.makedirs(out_dir, exist_ok=True)
    pad_id = resolve_pad_id(AutoTokenizer.from_pretrained(hf_dir))
    model = heads.load(head, hf_dir)
    model.config.pad_token_id = pad_id
    onnx_path = os.path.join(out_dir, "model.onnx")
    if verbose:
        print(f"exporting {hf_dir} ({type(model).__name__}, --head {head}, pad_token_id={pad_id}) -> {onnx_path}")
    heads.export(head, model, onnx_path, opset, external, verbose)
    copy_support_files(hf_dir, out_dir, pad_id)
    return heads.verify(head, model, onnx_path, pad_id, tol, verbose)


GPU_GRAPH = os.path.join("gpu", "model.onnx")


def remove_gpu_graph(out_dir: str, verbose: bool = True) -> None:
    """A one-graph export leaves no gpu/model.onnx of an earlier `--attention auto` export
    beside it: the evaluator would run that one on a GPU."""
    gpu_dir = os.path.join(out_dir, "gpu")
    stale = [f for f in ("model.onnx", "model.onnx_data", "model.onnx.data")
             if os.path.exists(os.path.join(gpu_dir, f))]
    for f in stale:
        os.remove(os.path.join(gpu_dir, f))
    if stale and verbose:
        print(f"removed {', '.join(os.path.join('gpu', f) for f in stale)} left by an earlier export")
    if os.path.isdir(gpu_dir) and not os.listdir(gpu_dir):
        os.rmdir(gpu_dir)


def auto_attention(model, per_token: bool) -> tuple[str, str | None]:
    """`--attention auto`: "gqa" when the fused, packed export takes the model, else "eager"
    and the reason."""
    if per_token:
        return "eager", "--per_token needs eager attention"
    if getattr(model.config, "model_type", None) == "gpt2":
        # fused_gpt2.py: 1.5-1.6x the eager graph's pairs/s on CPU (export/README.md)
        import fused_gpt2

        why = fused_gpt2.unsupported(model)
    else:
        import fused_attention

        why = fused_attention.unsupported(model)
    return ("eager", why) if why else ("gqa", None)


def export_and_verify(hf_dir: str, out_dir: str, opset: int = 17, tol: float = DEFAULT_TOL,
                      verbose: bool = True, attention: str = "eager", per_token: bool = False,
                      head: str | None = None, model_id: str | None = None,
                      external: str = "auto", dtype: str = "float32") -> float:
    """Exports and verifies. attention: "eager" or "gqa" (one graph, DIR/model.onnx) or "auto"
    (the fused, packed graph as DIR/model.onnx and the eager one as DIR/gpu/model.onnx where the
    fused export takes the model, else the eager graph alone). dtype "float16": the eager graph
    alone, in half precision, verified against PyTorch in half precision. Returns the worst
    max |diff|."""
    if dtype == "bfloat16":
        raise SystemExit(
            "--dtype bfloat16 is not written: ONNX Runtime's CPU provider has no bfloat16 kernels for "
            "most of the graph's ops, so the export could not be verified here, and its CUDA provider "
            "covers bfloat16 only in part; export --dtype float16 (for --device cuda) or float32")
    if dtype == "float16":
        if head is not None or per_token or attention == "gqa":
            raise SystemExit("--dtype float16 writes the plain eager graph only: it takes neither --head, "
                             "--per_token nor --attention gqa (the fused CPU graph is float32)")
        if attention == "auto" and verbose:
            print("--attention auto with --dtype float16: writing the eager graph only (half precision is "
                  "for GPUs; on CPU the float32 fused graph is faster)")
        attention = "eager"
        if tol == DEFAULT_TOL:
            tol = FP16_TOL
    if head is not None:
        if attention == "auto":
            if verbose:
                print("--attention auto: --head exports eager attention; writing the eager graph only")
            attention = "eager"
        if attention != "eager" or per_token:
            raise SystemExit("--head exports the head at every position with eager attention; "
                             "it takes neither --attention gqa nor --per_token")
        worst = export_head(hf_dir, out_dir, head, opset, tol, verbose, external)
        remove_gpu_graph(out_dir, verbose)
        if model_id:
            record_model_id(out_dir, model_id)
        return worst
    os.makedirs(out_dir, exist_ok=True)
    model, _tok, pad_id = load_model(hf_dir, dtype)
    graphs = [("model.onnx", attention)]
    if attention == "auto":
        chosen, why = auto_attention(model, per_token)
        if chosen == "gqa":
            graphs = [("model.onnx", "gqa"), (GPU_GRAPH, "eager")]
            if verbose:
                print("--attention auto: writing the fused, packed graph (model.onnx, for CPU) and the "
                      f"eager graph ({GPU_GRAPH}, for GPU providers)")
        else:
            graphs = [("model.onnx", "eager")]
            if verbose:
                print(f"--attention auto: writing the eager graph only ({why})")
    worst = 0.0
    copy_support_files(hf_dir, out_dir, pad_id)
    if model_id:
        record_model_id(out_dir, model_id)
    if len(graphs) == 1:
        remove_gpu_graph(out_dir, verbose)
    for rel, kind in graphs:
        onnx_path = os.path.join(out_dir, rel)
        os.makedirs(os.path.dirname(onnx_path), exist_ok=True)
        if verbose:
            print(f"exporting {hf_dir} ({type(model).__name__}, pad_token_id={pad_id}, "
                  f"attention={kind}{', per token' if per_token else ''}) -> {onnx_path}")
        export_onnx(model, onnx_path, opset, kind, per_token, external, verbose)
    refs = references(model, pad_id, per_token, packed=any(kind == "gqa" for _, kind in graphs))
    # PyTorch's weights go before ONNX Runtime loads its own copy, and each session before the next
    del model
    weights.release_memory()
    for rel, _kind in graphs:
        worst = max(worst, verify(refs, os.path.join(out_dir, rel), tol, verbose, per_token))
        weights.release_memory()
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="local Hugging Face checkpoint directory")
    ap.add_argument("--out", required=True, help="output directory (model.onnx + tokenizer/config files)")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--tol", type=float, default=DEFAULT_TOL)
    ap.add_argument("--attention", choices=("auto", "eager", "gqa"), default="auto",
                    help="auto (default): where gqa takes the model (Llama/Mistral/Qwen2, see "
                         "fused_attention.py; GPT-2, see fused_gpt2.py), the gqa graph as model.onnx and the eager graph as "
                         "gpu/model.onnx (the evaluator picks by --device), else the eager graph alone; "
                         "eager: plain ONNX ops, runs on every ONNX Runtime and GPU provider; "
                         "gqa: Llama/Mistral/Qwen2 attention as ONNX Runtime's GroupQueryAttention (GPT-2's as "
                         "com.microsoft Attention) and the packed contract (a prompt computed once for its answers), faster on CPU "
                         "(see fused_attention.py, packing.py)")
    ap.add_argument("--per_token", "--per-token", action="store_true",
                    help="output the head at every position (`token_logits` [batch, seq, num_labels]) "
                         "instead of the pooled `logits`; the evaluator's --pooling picks the position")
    ap.add_argument("--head", choices=("armo", "grm"), default=None,
                    help="a custom head (export/heads.py): armo (ArmoRM's gated objectives: outputs `score` "
                         "and `rewards` per token) or grm (GRM's value head: `token_logits` per token)")
    ap.add_argument("--model_id", "--model-id", default=None,
                    help="the checkpoint's hub id, recorded as config.json's _name_or_path (the evaluator's "
                         "model registry matches it)")
    ap.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                    help="float32 (default); float16: weights and compute in half precision, loaded from the "
                         "checkpoint directly, the eager graph only, float32 scores out, checked against "
                         "PyTorch in float16 (tolerance 2e-2 unless --tol); for --device cuda (slower than "
                         "float32 on CPUs without AVX-512 FP16); bfloat16: refused with the reason")
    ap.add_argument("--external_data", "--external-data", choices=external_data.MODES, default="auto",
                    help="auto (default): graph + model.onnx_data when the weights pass 512 MiB (ONNX Runtime "
                         "loads that with less memory than one file), else one file; always: graph + "
                         "model.onnx_data; never: one file (an error past protobuf's 2 GB limit)")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    export_and_verify(a.model, a.out, a.opset, a.tol, attention=a.attention, per_token=a.per_token,
                      head=a.head, model_id=a.model_id, external=a.external_data, dtype=a.dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
