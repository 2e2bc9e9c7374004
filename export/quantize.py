#!/usr/bin/env python3
"""Write a half-precision (fp16) or dynamically int8-quantized copy of an exported reward model.

    export/.venv/bin/python export/quantize.py --model DIR --out DIR --variant fp16|int8 [--force]

Copies DIR's tokenizer and config files into OUT and writes OUT/model.onnx:
  fp16  weights and compute in float16 (onnxruntime.transformers.float16, the converter that
        onnxconverter-common also ships), with keep_io_types: the int64 `input_ids` /
        `attention_mask` inputs and the float32 `logits` output are unchanged, so the evaluator
        runs the variant exactly like the fp32 model.
  int8  onnxruntime.quantization.quantize_dynamic: MatMul weights stored as QInt8 (per output
        channel), activations quantized at run time; inputs and outputs unchanged.
Then scores a few padded rows with onnxruntime on both models and prints the largest absolute
score difference. Both variants are lossy, so there is no pass/fail threshold: the difference is
reported, not judged. OUT gets a quantize.json describing what was done.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import packing  # noqa: E402

# Files the evaluator reads besides model.onnx (model.safetensors is deliberately not copied).
SIDE_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
)
VARIANTS = ("fp16", "int8")


def find_onnx(model_dir: str) -> str:
    for rel in ("model.onnx", os.path.join("onnx", "model.onnx")):
        p = os.path.join(model_dir, rel)
        if os.path.exists(p):
            return p
    raise SystemExit(f"{model_dir}: no model.onnx (or onnx/model.onnx)")


def write_fp16(src: str, dst: str) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(src)
    half = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, dst)


def write_int8(src: str, dst: str) -> str:
    """Per-channel QInt8 weights; falls back to per-tensor if per-channel fails. Returns which."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    last_err = None
    for per_channel in (True, False):
        try:
            quantize_dynamic(src, dst, per_channel=per_channel, weight_type=QuantType.QInt8)
            ort.InferenceSession(dst, providers=["CPUExecutionProvider"])  # must load
            return "per-channel" if per_channel else "per-tensor"
        except Exception as err:  # noqa: BLE001 - any failure means: try the next setting
            last_err = err
            print(f"int8 quantization with per_channel={per_channel} failed: {err}", file=sys.stderr)
    raise SystemExit(f"int8 quantization failed: {last_err}")


def probe_rows(config: dict, rows: int = 4, seed: int = 0):
    """A few right-padded rows (pad id in the pad positions, mask 0), of different lengths, and
    the pad id."""
    vocab = int(config.get("vocab_size", 1000))
    pad = config.get("pad_token_id")
    pad = int(pad) if pad is not None else 0
    bos = config.get("bos_token_id")
    rng = np.random.default_rng(seed)
    lengths = [64, 37, 12, 5][:rows]
    width = max(lengths)
    ids = np.full((len(lengths), width), pad, dtype=np.int64)
    mask = np.zeros((len(lengths), width), dtype=np.int64)
    specials = {pad, int(bos) if bos is not None else -1, int(config.get("eos_token_id") or -1)}
    for i, n in enumerate(lengths):
        row = rng.integers(3, vocab, size=n)
        row = np.where(np.isin(row, list(specials)), 3, row)
        if bos is not None:
            row[0] = int(bos)
        ids[i, :n] = row
        mask[i, :n] = 1
    return ids, mask, pad


def scores(path: str, ids: np.ndarray, mask: np.ndarray, pad_id: int) -> np.ndarray:
    """Scores of a padded batch, plain or packed export (export/packing.py)."""
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return np.asarray(packing.run_plain(sess, ids, mask, pad_id), dtype=np.float32)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="folder of the fp32 export (model.onnx, tokenizer, config)")
    ap.add_argument("--out", required=True, help="folder to write the variant into")
    ap.add_argument("--variant", required=True, choices=VARIANTS)
    ap.add_argument("--force", action="store_true", help="overwrite OUT/model.onnx if present")
    a = ap.parse_args(argv)

    src = find_onnx(a.model)
    if os.path.abspath(a.model) == os.path.abspath(a.out):
        raise SystemExit("--out must differ from --model")
    dst = os.path.join(a.out, "model.onnx")
    if os.path.exists(dst) and not a.force:
        raise SystemExit(f"{dst} exists (use --force to overwrite)")
    os.makedirs(a.out, exist_ok=True)

    copied = []
    for name in SIDE_FILES:
        p = os.path.join(a.model, name)
        if os.path.isfile(p):
            shutil.copy2(p, os.path.join(a.out, name))
            copied.append(name)

    # Write next to the destination, then rename: a half-written model.onnx never stays behind.
    fd, tmp = tempfile.mkstemp(prefix=".model-", suffix=".onnx", dir=a.out)
    os.close(fd)
    try:
        detail = "float16 weights and compute, float32 inputs/outputs (keep_io_types)"
        if a.variant == "fp16":
            write_fp16(src, tmp)
        else:
            detail = f"dynamic quantization, QInt8 weights ({write_int8(src, tmp)})"
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

    config = {}
    cfg_path = os.path.join(a.model, "config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path, encoding="utf-8") as fh:
            config = json.load(fh)
    ids, mask, pad = probe_rows(config)
    ref, got = scores(src, ids, mask, pad), scores(dst, ids, mask, pad)
    if ref.shape != got.shape:
        raise SystemExit(f"{dst}: logits shape {got.shape} differs from the fp32 model's {ref.shape}")
    diff = float(np.max(np.abs(ref - got)))

    info = {
        "variant": a.variant,
        "source": os.path.abspath(src),
        "method": detail,
        "copied": copied,
        "bytes": os.path.getsize(dst),
        "source_bytes": os.path.getsize(src),
        "probe_rows": int(ids.shape[0]),
        "probe_max_abs_score_diff": diff,
        "versions": {"onnx": onnx.__version__, "onnxruntime": ort.__version__},
        "generated_by": "export/quantize.py",
    }
    with open(os.path.join(a.out, "quantize.json"), "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")
    print(f"{a.variant}: wrote {dst} ({info['bytes'] / 1e6:.1f} MB, fp32 {info['source_bytes'] / 1e6:.1f} MB); "
          f"{detail}")
    print(f"{a.variant}: max |score diff| vs fp32 on {ids.shape[0]} padded rows: {diff:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
