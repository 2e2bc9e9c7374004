#!/usr/bin/env python3
"""Regenerate the Optimum fixtures (deterministic, offline, ~1 min; needs `make optimum-venv`):

    export/.venv/bin/python export/make_optimum_fixtures.py [--root .]

Each folder holds exactly the files `optimum-cli export onnx` (Hugging Face Optimum, pinned in
export/requirements-optimum.txt) writes for one of the committed tiny checkpoints, plus a
fixture.json with the command and the versions:

* fixtures/models/tiny-llama-rm-optimum: tiny-llama-rm, `--task text-classification`
  (`model.onnx`: `input_ids`, `attention_mask` -> `logits [batch, 1]`, pooling in the graph);
* fixtures/models/tiny-llama-policy-optimum: tiny-llama-policy, `--task text-generation`
  (no past: `input_ids`, `attention_mask`, `position_ids` -> `logits [batch, seq, vocab]`);
* fixtures/models/tiny-llama-ref-optimum: tiny-llama-ref, `--task text-generation-with-past`
  (plus `past_key_values.*` inputs and `present.*` outputs);
* fixtures/models/tiny-llama-ref-optimum-legacy: tiny-llama-ref, `--task
  text-generation-with-past --legacy` (no `model.onnx`: `decoder_model.onnx`,
  `decoder_with_past_model.onnx`, `decoder_model_merged.onnx` with `use_cache_branch`).

The exports are not changed after Optimum writes them. Their PyTorch references are the source
checkpoints' (tiny-llama-rm/reference/, tiny-llama-policy/dpo-reference/), which
tests/integration/optimum.rs compares the evaluator's scores with.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))

# (fixture, source checkpoint, optimum-cli arguments after --model)
FIXTURES = [
    ("tiny-llama-rm-optimum", "tiny-llama-rm", ["--task", "text-classification"]),
    ("tiny-llama-policy-optimum", "tiny-llama-policy", ["--task", "text-generation"]),
    ("tiny-llama-ref-optimum", "tiny-llama-ref", ["--task", "text-generation-with-past"]),
    ("tiny-llama-ref-optimum-legacy", "tiny-llama-ref", ["--task", "text-generation-with-past", "--legacy"]),
]
REFERENCES = {
    "tiny-llama-rm": "fixtures/models/tiny-llama-rm/reference",
    "tiny-llama-policy": "fixtures/models/tiny-llama-policy/dpo-reference",
    "tiny-llama-ref": "fixtures/models/tiny-llama-policy/dpo-reference (as the reference model)",
}


def optimum_export(src: str, out: str, args: list[str]) -> None:
    """`optimum-cli export onnx --model SRC ARGS OUT`, run as the venv's module (same thing)."""
    cmd = [sys.executable, "-m", "optimum.commands.optimum_cli", "export", "onnx", "--model", src, *args, out]
    # Optimum's --legacy merge of the two decoders walks Python sets of names: without a fixed
    # hash seed decoder_model_merged.onnx comes out in a different order on every run.
    env = dict(os.environ, PYTHONHASHSEED="0")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")


def versions() -> dict:
    out = {}
    for pkg in ("optimum", "torch", "transformers", "tokenizers", "onnx", "onnxruntime"):
        out[pkg] = metadata.version(pkg)
    out["python"] = sys.version.split()[0]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(HERE))
    a = ap.parse_args(argv)
    try:
        import optimum.exporters.onnx  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"Optimum is not installed ({e}): run `make optimum-venv`")
    models = os.path.join(a.root, "fixtures", "models")
    vers = versions()
    for name, source, args in FIXTURES:
        src = os.path.join(models, source)
        out = os.path.join(models, name)
        with tempfile.TemporaryDirectory() as tmp:
            written = os.path.join(tmp, name)
            optimum_export(src, written, args)
            files = sorted(os.listdir(written))
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(written, out)
        meta = {
            "name": name,
            "source": f"fixtures/models/{source}",
            "command": f"optimum-cli export onnx --model fixtures/models/{source} {' '.join(args)} fixtures/models/{name}",
            "files_written_by_optimum": files,
            "pytorch_reference": REFERENCES[source],
            "versions": vers,
            "generated_by": "export/make_optimum_fixtures.py",
        }
        with open(os.path.join(out, "fixture.json"), "w") as fh:
            json.dump(meta, fh, indent=2)
            fh.write("\n")
        size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
        print(f"{name}: {', '.join(files)} ({size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
