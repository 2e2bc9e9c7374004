#!/usr/bin/env python3
"""Export a Hugging Face causal LM (DPO policy or reference) to ONNX and verify it.

Usage:
    export/.venv/bin/python export/export_lm.py --model HF_DIR --out DIR [--form logprobs|logits]

Both forms take `input_ids`, `attention_mask` (int64 [batch, seq], both axes dynamic).

* `--form logprobs` (default) outputs `token_logprobs` float32 [batch, seq-1]: the log-probability
  of each next token, log_softmax(logits[:, :-1])[input_ids[:, 1:]]. The language-model head runs
  inside an ONNX `Loop` over chunks of rows (`--chunk_elems` logits per chunk, 2^24 by default), so
  neither ONNX Runtime nor the caller ever holds a [batch, seq, vocab] tensor: memory does not grow
  with the vocabulary beyond the weights.
* `--form logits` outputs plain `logits` float32 [batch, seq, vocab].

Copies the tokenizer files and config.json into DIR, then checks ONNX Runtime against PyTorch on
right- and left-padded batches of lengths 3/40/300 and unpadded rows of 1000 (or the model's
positions) and 57 tokens; exits non-zero when max |diff| > --tol (1e-4). The graph is written
with one copy of the weights in memory (export/weights.py), and PyTorch's outputs are computed
before the model is freed and ONNX Runtime loads the export.
"""
from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import weights  # noqa: E402
from export_rm import TOKENIZER_FILES, _pad_batch, compare_cases, max_positions, shrink_causal_constants  # noqa: E402

TRACE_LEN = 24
DEFAULT_TOL = 1e-4
DEFAULT_CHUNK_ELEMS = 1 << 24  # logits per Loop iteration (64 MB of float32)


DTYPES = {"float32": torch.float32, "float16": torch.float16}
# Log-probabilities of a float16 graph against PyTorch in float16: both round the decoder to
# 10-bit mantissas in different orders; the graph's LM head and log-softmax run in float32.
FP16_TOL = 5e-2


def load_lm(hf_dir: str, dtype: str = "float32"):
    """fp32 (or `dtype`, each tensor cast as it is read), eager attention, no cache, dropout off
    (as RewardBench's DPO path runs it on CPU)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=DTYPES[dtype], attn_implementation="eager")
    model.config.use_cache = False
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    model.eval()
    return model


class _Logits(torch.nn.Module):
    """By keyword: GPT-2's second positional argument is past_key_values, not the mask."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                            return_dict=True).logits
        return logits if logits.dtype == torch.float32 else logits.float()


class _Hidden(torch.nn.Module):
    """The decoder without its LM head: final hidden states [batch, seq, d]."""

    def __init__(self, model):
        super().__init__()
        # get_decoder(): Gemma 3's base_model_prefix names no attribute of its causal LM
        get = getattr(model, "get_decoder", None)
        self.base = get() if callable(get) else getattr(model, model.base_model_prefix)

    def forward(self, input_ids, attention_mask):
        h = self.base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                      return_dict=True).last_hidden_state
        # a half-precision decoder hands float32 states to the float32 LM head and log-softmax
        return h if h.dtype == torch.float32 else h.float()


# What a config field does to the logits after the projection, as the models' forwards do it:
# Gemma 2/3 cap them (c * tanh(x / c)), Cohere multiplies, Granite divides. verify() checks it.
LOGIT_STEPS = {
    "final_logit_softcapping": lambda c: [("Div", c), ("Tanh", None), ("Mul", c)],
    "logit_scale": lambda c: [("Mul", c)],
    "logits_scaling": lambda c: [("Div", c)],
}


def lm_head(model, steps_ok: bool = False):
    """The output projection (weight [vocab, d], optional bias) as PyTorch tensors and the steps
    that follow it ([(op, constant)], LOGIT_STEPS; any step is refused unless `steps_ok`);
    refuses heads that do more."""
    head = model.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear):
        raise SystemExit(f"{type(model).__name__}: the LM head is {type(head).__name__}, not a Linear layer; "
                         "export with --form logits")
    steps = []
    for k in (*LOGIT_STEPS, "output_multiplier_scale"):
        v = getattr(model.config, k, None)
        if v in (None, 1, 1.0):
            continue
        if not steps_ok or k not in LOGIT_STEPS or not isinstance(v, (int, float)):
            raise SystemExit(f"{type(model).__name__}: config.{k} post-processes the logits; export with --form logits")
        steps += LOGIT_STEPS[k](float(v))
    return head.weight.detach(), None if head.bias is None else head.bias.detach(), steps


def _trace(module, model, onnx_path, output, out_axes, opset):
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (2, TRACE_LEN), generator=g, dtype=torch.int64)
    mask = torch.ones_like(ids)
    weights.trace(module, (ids, mask), onnx_path, input_names=["input_ids", "attention_mask"],
                  output_names=[output], opset_version=opset,
                  dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                "attention_mask": {0: "batch", 1: "sequence"}, output: out_axes})


def add_logprob_head(onnx_path: str, w_name: str, b_name, vocab: int, d: int, chunk_elems: int,
                     steps=()) -> int:
    """Replace the graph output `hidden_states` by `token_logprobs` [batch, seq-1], computed by a
    Loop over chunks of `rows` flattened positions: Gemm with the LM head (the float32 weights
    named `w_name`, [vocab, d], and `b_name` [vocab] or None, graph inputs until
    weights.attach writes them) -> `steps` (lm_head's) -> LogSoftmax -> GatherElements at the
    next token. Returns the rows per chunk."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    import external_data

    m = onnx.load(onnx_path, load_external_data=False)
    g = m.graph
    rows = max(1, chunk_elems // vocab)
    present = {i.name for i in g.input}
    for name, shape in ((w_name, [vocab, d]), (b_name, [vocab])):
        if name is not None and name not in present:
            g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    gemm_in = ["lp_hc", w_name] + ([b_name] if b_name is not None else [])

    def const(name, values, dtype=np.int64):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(values, dtype=dtype), name))

    hidden = g.output[0].name
    nodes = [
        const("lp_c0", [0]), const("lp_c1", [1]), const("lp_cm1", [-1]), const("lp_cmax", [np.iinfo(np.int64).max]),
        const("lp_rows", [rows]), const("lp_rows_s", rows), const("lp_flat_h", [-1, d]), const("lp_flat", [-1]),
        const("lp_true", True, np.bool_),
        # position t predicts token t+1
        helper.make_node("Slice", [hidden, "lp_c0", "lp_cm1", "lp_c1"], ["lp_h"]),
        helper.make_node("Slice", ["input_ids", "lp_c1", "lp_cmax", "lp_c1"], ["lp_t"]),
        helper.make_node("Shape", ["lp_t"], ["lp_out_shape"]),
        helper.make_node("Reshape", ["lp_h", "lp_flat_h"], ["lp_hf"]),
        helper.make_node("Reshape", ["lp_t", "lp_flat"], ["lp_tf"]),
        helper.make_node("Shape", ["lp_tf"], ["lp_n"]),
        # pad the rows to a multiple of the chunk size
        helper.make_node("Mod", ["lp_n", "lp_rows"], ["lp_r"]),
        helper.make_node("Sub", ["lp_rows", "lp_r"], ["lp_p0"]),
        helper.make_node("Mod", ["lp_p0", "lp_rows"], ["lp_p"]),
        helper.make_node("Concat", ["lp_c0", "lp_c0", "lp_p", "lp_c0"], ["lp_pads_h"], axis=0),
        helper.make_node("Concat", ["lp_c0", "lp_p"], ["lp_pads_t"], axis=0),
        helper.make_node("Pad", ["lp_hf", "lp_pads_h"], ["lp_hp"]),
        helper.make_node("Pad", ["lp_tf", "lp_pads_t"], ["lp_tp"]),
        helper.make_node("Add", ["lp_n", "lp_p"], ["lp_total"]),
        helper.make_node("Div", ["lp_total", "lp_rows"], ["lp_chunks1"]),
        helper.make_node("Squeeze", ["lp_chunks1", "lp_c0"], ["lp_chunks"]),
    ]
    body_nodes = [
        helper.make_node("Mul", ["lp_i", "lp_rows_s"], ["lp_start_s"]),
        helper.make_node("Unsqueeze", ["lp_start_s", "lp_c0"], ["lp_start"]),
        helper.make_node("Add", ["lp_start", "lp_rows"], ["lp_end"]),
        helper.make_node("Slice", ["lp_hp", "lp_start", "lp_end", "lp_c0"], ["lp_hc"]),
        helper.make_node("Slice", ["lp_tp", "lp_start", "lp_end", "lp_c0"], ["lp_tc"]),
        helper.make_node("Gemm", gemm_in, ["lp_logits0"], transB=1),
    ]
    x = "lp_logits0"
    for i, (op, c) in enumerate(steps):
        y = f"lp_logits{i + 1}"
        if c is None:
            body_nodes.append(helper.make_node(op, [x], [y]))
        else:
            nodes.append(const(f"lp_k{i}", c, np.float32))
            body_nodes.append(helper.make_node(op, [x, f"lp_k{i}"], [y]))
        x = y
    body_nodes += [
        helper.make_node("LogSoftmax", [x], ["lp_ls"], axis=-1),
        helper.make_node("Unsqueeze", ["lp_tc", "lp_c1"], ["lp_tc2"]),
        helper.make_node("GatherElements", ["lp_ls", "lp_tc2"], ["lp_g"], axis=1),
        helper.make_node("Squeeze", ["lp_g", "lp_c1"], ["lp_chunk"]),
        helper.make_node("Identity", ["lp_cond_in"], ["lp_cond_out"]),
    ]
    body = helper.make_graph(
        body_nodes, "lm_head_chunk",
        [helper.make_tensor_value_info("lp_i", TensorProto.INT64, []),
         helper.make_tensor_value_info("lp_cond_in", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("lp_cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("lp_chunk", TensorProto.FLOAT, [rows])],
    )
    nodes += [
        helper.make_node("Loop", ["lp_chunks", "lp_true"], ["lp_all"], body=body),
        helper.make_node("Reshape", ["lp_all", "lp_flat"], ["lp_all_f"]),
        helper.make_node("Slice", ["lp_all_f", "lp_c0", "lp_n", "lp_c0"], ["lp_valid"]),
        helper.make_node("Reshape", ["lp_valid", "lp_out_shape"], ["token_logprobs"]),
    ]
    g.node.extend(nodes)
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("token_logprobs", TensorProto.FLOAT, ["batch", "sequence_minus_1"]))
    helper.set_model_props(m, {"rewardbench.form": "logprobs", "rewardbench.rows_per_chunk": str(rows)})
    external_data.save(m, onnx_path)
    onnx.checker.check_model(onnx_path)
    return rows


def export_onnx(model, onnx_path: str, form: str, opset: int = 17, chunk_elems: int = DEFAULT_CHUNK_ELEMS,
                external: str = "auto", verbose: bool = True) -> bool:
    """Writes the graph (export/weights.py: structure, graph passes, then the weights one tensor
    at a time). Returns True when the data is external."""
    if form == "logits":
        module = _Logits(model)
        _trace(module, model, onnx_path, "logits", {0: "batch", 1: "sequence"}, opset)
        tensors = weights.tensors_of(module)
    else:
        module = _Hidden(model)
        _trace(module, model, onnx_path, "hidden_states", {0: "batch", 1: "sequence"}, opset)
        tensors = weights.tensors_of(module)
        weight, bias, steps = lm_head(model, steps_ok=True)
        # the head runs in float32; a float32 head tied to the embedding table is written once
        w_name = weights.tied_name(module, weight) if weight.dtype == torch.float32 else None
        if w_name is None:
            w_name = "lm_head.weight"
            tensors[w_name] = weight.float()
        b_name = None
        if bias is not None:
            b_name = "lm_head.bias"
            tensors[b_name] = bias.float()
        vocab, d = weight.shape
        rows = add_logprob_head(onnx_path, w_name, b_name, vocab, d, chunk_elems, steps)
        if verbose:
            print(f"  LM head: Loop over chunks of {rows} positions ({rows * vocab} logits per chunk)"
                  + "".join(f", then {op}" + ("" if c is None else f" {c:g}") for op, c in steps))
    n = shrink_causal_constants(onnx_path)
    if verbose and n:
        print(f"  replaced {n} constant causal mask(s) by Trilu nodes")
    return weights.attach(onnx_path, tensors, external, verbose=verbose)


@torch.no_grad()
def torch_token_logprobs(model, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    logits = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.float()
    lp = logits[:, :-1].log_softmax(-1)
    return torch.gather(lp, 2, torch.from_numpy(ids[:, 1:]).unsqueeze(2)).squeeze(2).numpy()


def references(model, form: str) -> dict:
    """PyTorch's outputs on the check's inputs (right- and left-padded batches of lengths
    3/40/300, unpadded rows of 1000 tokens, or the model's positions, and of 57), computed once
    so the model can be freed before ONNX Runtime loads the export."""
    vocab = model.config.vocab_size
    long_len = min(1000, max_positions(model.config))
    rng = np.random.default_rng(1234)
    eos = model.config.eos_token_id if isinstance(model.config.eos_token_id, int) else 0
    # the long row goes alone: padded beside others its attention buffers would outweigh the weights
    seqs = [rng.integers(0, vocab, size=n, dtype=np.int64) for n in (3, 40, 300)]
    cases = []
    for side in ("right", "left"):
        ids, mask = _pad_batch(seqs, eos, side)
        cases.append((f"{side}-padded lengths 3/40/300", ids, mask))
    for n in (long_len, 57):
        one = rng.integers(0, vocab, size=(1, n), dtype=np.int64)
        cases.append((f"unpadded single row length {n}", one, np.ones_like(one)))

    def ref(ids, mask):
        if form == "logits":
            with torch.no_grad():
                return model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.float().numpy()
        return torch_token_logprobs(model, ids, mask)

    return {"cases": cases, "outputs": {name: ref(ids, mask) for name, ids, mask in cases}}


def verify(refs: dict, onnx_path: str, form: str, tol: float = DEFAULT_TOL, verbose: bool = True,
           real_only: bool = False) -> float:
    """ONNX Runtime against `references(...)`; `real_only` compares only the positions of real
    tokens (a float16 model's fully masked padding rows are rounding noise on both sides; the
    evaluator never reads them)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])

    def run(ids, mask, name):
        ref = refs["outputs"][name]
        if form == "logits":
            got = sess.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
            keep = mask[:, :, None]
        else:
            got = sess.run(["token_logprobs"], {"input_ids": ids, "attention_mask": mask})[0]
            keep = mask[:, :-1] * mask[:, 1:]  # position t predicts token t+1
        if real_only:
            ref, got = ref * keep, got * keep.astype(got.dtype)
        return ref.astype(np.float32), got

    return compare_cases(refs["cases"], run, onnx_path, tol, verbose, f" ({form})")


def copy_support_files(hf_dir: str, out_dir: str) -> None:
    import shutil

    if os.path.realpath(hf_dir) == os.path.realpath(out_dir):
        return
    for f in TOKENIZER_FILES + ("config.json", "generation_config.json"):
        src = os.path.join(hf_dir, f)
        if os.path.exists(src):
            shutil.copy2(src, os.path.join(out_dir, f))


def export_and_verify(hf_dir: str, out_dir: str, form: str = "logprobs", opset: int = 17, tol: float = DEFAULT_TOL,
                      chunk_elems: int = DEFAULT_CHUNK_ELEMS, verbose: bool = True, model=None,
                      external: str = "auto", dtype: str = "float32") -> float:
    if dtype == "bfloat16":
        raise SystemExit(
            "--dtype bfloat16 is not written: ONNX Runtime's CPU provider has no bfloat16 kernels for "
            "most of the graph's ops, so the export could not be verified here; export --dtype float16 "
            "(for --device cuda) or float32")
    if dtype == "float16" and tol == DEFAULT_TOL:
        tol = FP16_TOL
    os.makedirs(out_dir, exist_ok=True)
    model = model if model is not None else load_lm(hf_dir, dtype)
    onnx_path = os.path.join(out_dir, "model.onnx")
    if verbose:
        print(f"exporting {hf_dir} ({type(model).__name__}, form {form}) -> {onnx_path}")
    export_onnx(model, onnx_path, form, opset, chunk_elems, external, verbose)
    copy_support_files(hf_dir, out_dir)
    refs = references(model, form)
    # PyTorch's weights go before ONNX Runtime loads its own copy (unless the caller holds them)
    del model
    weights.release_memory()
    return verify(refs, onnx_path, form, tol, verbose, real_only=dtype == "float16")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="local Hugging Face causal-LM checkpoint directory")
    ap.add_argument("--out", required=True, help="output directory (model.onnx + tokenizer/config files)")
    ap.add_argument("--form", choices=("logprobs", "logits"), default="logprobs")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--tol", type=float, default=DEFAULT_TOL)
    ap.add_argument("--chunk_elems", type=int, default=DEFAULT_CHUNK_ELEMS,
                    help="logits computed per Loop iteration in the logprobs form (rows = this / vocab)")
    ap.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                    help="float32 (default); float16: the decoder's weights and compute in half precision, loaded "
                         "from the checkpoint directly, the LM head and log-softmax in float32, checked against "
                         "PyTorch in float16 (tolerance 5e-2 per log-probability unless --tol); for --device cuda; "
                         "bfloat16: refused with the reason")
    ap.add_argument("--external_data", "--external-data", choices=("auto", "always", "never"), default="auto",
                    help="auto (default): graph + model.onnx_data when the weights pass 512 MiB (ONNX Runtime "
                         "loads that with less memory than one file), else one file; always: graph + "
                         "model.onnx_data; never: one file (an error past protobuf's 2 GB limit)")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    export_and_verify(a.model, a.out, a.form, a.opset, a.tol, a.chunk_elems, external=a.external_data, dtype=a.dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
