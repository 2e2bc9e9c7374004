"""The two Python baselines of the benchmark, both in dataset order with batches of 8 rows,
left padding, chosen and rejected texts in separate calls, rendered and tokenized as RewardBench
does (export/reference.py: apply_chat_template, tokenizer(padding=True), double-BOS mask).

(b) RewardBench's way: transformers AutoModelForSequenceClassification, PyTorch fp32 on CPU.
(c) onnxruntime in Python on the same model.onnx the binary runs.

Each returns per-row chosen/rejected scores and timings; model loading is timed apart."""
from __future__ import annotations

import time

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "export"))
import packing  # noqa: E402


def _render_all(rows, tok, reference):
    rendered = [reference.render_row(r, tok) for r in rows]
    return [c for _, c, _ in rendered], [r for _, _, r in rendered]


def _run(rows, tok, reference, batch_size, forward):
    """Shared loop; `forward(ids, mask) -> list of scores` (ids/mask torch int64 tensors)."""
    t0 = time.perf_counter()
    chosen, rejected = _render_all(rows, tok, reference)
    t_render = time.perf_counter() - t0
    t_tok = t_fwd = 0.0
    real = computed = 0
    sc, sr = [], []
    for b in range(0, len(rows), batch_size):
        for texts, out in ((chosen[b:b + batch_size], sc), (rejected[b:b + batch_size], sr)):
            t1 = time.perf_counter()
            ids, mask = reference.tokenize_pipeline(tok, texts, "left")
            t2 = time.perf_counter()
            out.extend(forward(ids, mask))
            t3 = time.perf_counter()
            t_tok += t2 - t1
            t_fwd += t3 - t2
            computed += ids.numel()
            real += int((ids != tok.pad_token_id).sum()) if tok.pad_token_id is not None else ids.numel()
    total = time.perf_counter() - t0
    return {
        "scores_chosen": sc,
        "scores_rejected": sr,
        "render_seconds": t_render,
        "tokenize_seconds": t_tok,
        "forward_seconds": t_fwd,
        "total_seconds": total,
        "computed_tokens": computed,
        "padding_ratio": 1.0 - real / computed if computed else 0.0,
    }


def _first_logit(x):
    return x[0] if isinstance(x, list) and len(x) == 1 else x


def score_torch(model_dir, rows, threads, batch_size, reference):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    # as the rewardbench CLI: fp32 here, no attn_implementation given (transformers' default)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.config.pad_token_id = tok.pad_token_id
    for m in model.modules():  # RewardBenchPipeline: disable_dropout_in_model, eval()
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    model.eval()
    load = time.perf_counter() - t0

    def forward(ids, mask):
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
        return [_first_logit(x) for x in logits.float().numpy().tolist()]

    res = _run(rows, tok, reference, batch_size, forward)
    res.update(load_seconds=load, threads=torch.get_num_threads(), torch_version=torch.__version__,
               attn_implementation=getattr(model.config, "_attn_implementation", None))
    return res


def score_onnxruntime(model_dir, onnx_path, rows, threads, batch_size, reference):
    import onnxruntime as ort
    from transformers import AutoTokenizer

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    load = time.perf_counter() - t0

    def forward(ids, mask):
        # a packed export (--attention gqa) is fed one text per row, as transformers would
        out = packing.run_plain(sess, ids.numpy(), mask.numpy(), tok.pad_token_id)
        return [_first_logit(x) for x in out.astype(np.float32).tolist()]

    res = _run(rows, tok, reference, batch_size, forward)
    res.update(load_seconds=load, threads=threads, onnxruntime_version=ort.__version__)
    return res
