#!/usr/bin/env python3
"""Generate the benchmark model for `make bench` (deterministic, offline, no hub).

    export/.venv/bin/python export/make_bench_model.py [--arch llama|gpt2] [--out bench-models/llama-30m-rm] [--force]

Writes a medium Llama-style reward model with random weights (fixed seed) into OUT: a Hugging Face
checkpoint (config.json, model.safetensors, tokenizer files) and two verified ONNX exports (via
export_rm.export_and_verify): OUT/model.onnx with fused attention and the packed contract
(--attention gqa, what `make bench` measures) and OUT/eager/model.onnx with plain ONNX ops (--attention eager, measured beside
it). Shape: d=512, 8 layers, 8 heads, 4 kv heads (GQA),
ffn 1376, 4096 positions, ~28M parameters; byte-level BPE tokenizer (8192 tokens) trained on
/usr/share/common-licenses plus the LLMBar text; zephyr-like chat template that starts with
{{ bos_token }} (as fixtures/models/tiny-llama-rm), so every text carries the double BOS that
RewardBench masks. The weights mean nothing; the model exists to measure speed on real lengths.

`--arch gpt2` writes the same layout for a GPT-2 reward model of about the same size
(bench-models/gpt2-30m-rm: d=512, 8 layers, 8 heads, ffn 2048, 4096 positions, ~31M
parameters; fused export from export/fused_gpt2.py), for the fused-vs-eager GPT-2 measurement
in export/README.md.

Idempotent: does nothing when OUT already holds model.onnx and bench-model.json (use --force).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import export_rm  # noqa: E402
from make_fixtures import LLAMA_TEMPLATE, save_tokenizer, train_bpe  # noqa: E402

ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(ROOT, "bench-models", "llama-30m-rm")
LICENSE_DIR = "/usr/share/common-licenses"
DEFAULT_LLMBAR = os.path.join(ROOT, "..", "shared", "data", "reward-bench-llmbar", "llmbar.jsonl")
VOCAB_SIZE = 8192
MAX_POSITIONS = 4096
SEED = 20240601
MARKER = "bench-model.json"


def corpus(llmbar_path: str):
    """License texts (each distinct file once), then the prompt/chosen/rejected text of LLMBar."""
    seen = set()
    for name in sorted(os.listdir(LICENSE_DIR)):
        rp = os.path.realpath(os.path.join(LICENSE_DIR, name))
        if os.path.isfile(rp) and rp not in seen:
            seen.add(rp)
            with open(rp, encoding="utf-8", errors="replace") as fh:
                yield fh.read()
    if llmbar_path and os.path.exists(llmbar_path):
        with open(llmbar_path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    for k in ("prompt", "chosen", "rejected"):
                        if isinstance(row.get(k), str):
                            yield row[k]


def train_tokenizer(llmbar_path: str):
    return train_bpe(VOCAB_SIZE, lambda tok, trainer: tok.train_from_iterator(corpus(llmbar_path), trainer))


def hf_tokenizer(raw):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=MAX_POSITIONS,
        model_input_names=["input_ids", "attention_mask"],
        chat_template=LLAMA_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )


def build_model(vocab: int, tok):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=512,
        intermediate_size=1376,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=MAX_POSITIONS,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        initializer_range=0.02,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
        use_cache=False,
        num_labels=1,
        torch_dtype="float32",
    )
    torch.manual_seed(SEED)
    model = LlamaForSequenceClassification(cfg)
    model.eval()
    return model


def build_gpt2(vocab: int, tok):
    """A GPT-2 reward model of about the same size (`--arch gpt2`): d=512, 8 layers, 8 heads
    (head size 64), ffn 2048, 4096 learned positions, ~31M parameters."""
    from transformers import GPT2Config, GPT2ForSequenceClassification

    cfg = GPT2Config(
        vocab_size=vocab,
        n_positions=MAX_POSITIONS,
        n_embd=512,
        n_layer=8,
        n_head=8,
        n_inner=None,  # 4 * n_embd
        initializer_range=0.02,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        use_cache=False,
        num_labels=1,
        torch_dtype="float32",
    )
    torch.manual_seed(SEED)
    model = GPT2ForSequenceClassification(cfg)
    model.eval()
    return model


ARCHS = {"llama": build_model, "gpt2": build_gpt2}


def is_complete(out: str) -> bool:
    files = ("model.onnx", "model.safetensors", os.path.join("eager", "model.onnx"), MARKER)
    if not all(os.path.exists(os.path.join(out, f)) for f in files):
        return False
    with open(os.path.join(out, MARKER)) as fh:
        return json.load(fh).get("contract") == "packed"  # folders from before the packed export


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=sorted(ARCHS), default="llama",
                    help="llama (default, what `make bench` measures) or gpt2 (the fused GPT-2 export's "
                         "measurement, default folder bench-models/gpt2-30m-rm)")
    ap.add_argument("--out", default=None, help="output folder (default: bench-models/llama-30m-rm)")
    ap.add_argument("--llmbar", default=DEFAULT_LLMBAR, help="LLMBar jsonl, tokenizer training text")
    ap.add_argument("--force", action="store_true", help="rebuild even if the folder is complete")
    a = ap.parse_args(argv)
    out = os.path.abspath(a.out or (DEFAULT_OUT if a.arch == "llama" else
                                    os.path.join(ROOT, "bench-models", "gpt2-30m-rm")))
    if is_complete(out) and not a.force:
        print(f"bench model present: {out} (use --force to rebuild)")
        return 0
    if not os.path.exists(a.llmbar):
        print(f"WARNING: {a.llmbar} not found; tokenizer trained on the license texts only", file=sys.stderr)

    # build in a temporary folder and rename, so an interrupted run leaves no complete-looking model
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    raw = train_tokenizer(a.llmbar)
    tok = hf_tokenizer(raw)
    save_tokenizer(tok, tmp)
    model = ARCHS[a.arch](raw.get_vocab_size(), tok)
    n_params = int(sum(p.numel() for p in model.parameters()))
    print(f"{type(model).__name__}: {n_params / 1e6:.1f}M parameters, vocab {raw.get_vocab_size()}")
    model.save_pretrained(tmp, safe_serialization=True)
    max_diff = export_rm.export_and_verify(tmp, tmp, attention="gqa")
    eager_diff = export_rm.export_and_verify(tmp, os.path.join(tmp, "eager"), attention="eager")
    import onnxruntime
    import transformers

    meta = {
        "name": os.path.basename(out),
        "architecture": type(model).__name__,
        "num_parameters": n_params,
        "seed": SEED,
        "vocab_size": raw.get_vocab_size(),
        "tokenizer_training_text": [LICENSE_DIR] + ([a.llmbar] if os.path.exists(a.llmbar) else []),
        "pad_token_id": int(tok.pad_token_id),
        "onnx_opset": 17,
        "attention": "gqa",
        "contract": "packed",
        "onnx_vs_torch_max_abs_diff": max_diff,
        "eager_onnx_vs_torch_max_abs_diff": eager_diff,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "generated_by": "export/make_bench_model.py",
    }
    with open(os.path.join(tmp, MARKER), "w") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
