"""fixtures/models/tiny-llama-rm-fp16: tiny-llama-rm's checkpoint exported in half precision
(`export_rm.py --dtype float16`: weights loaded as float16, the eager graph, float32 scores out)
and PyTorch's float16 scores of the 40 LLMBar rows (reference/llmbar.json: RewardBench's
rendering and double-BOS mask, batch 1, the checkpoint loaded with torch_dtype=float16), so
tests without the export venv check a half-precision graph against PyTorch in the same
precision.

    export/.venv/bin/python export/make_fp16_fixture.py
"""

import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_rm  # noqa: E402
import reference  # noqa: E402

ROOT = os.path.dirname(HERE)
SRC = os.path.join(ROOT, "fixtures", "models", "tiny-llama-rm")
OUT = os.path.join(ROOT, "fixtures", "models", "tiny-llama-rm-fp16")
DATA = os.path.join(ROOT, "fixtures", "data", "llmbar.jsonl")


def main() -> int:
    torch.manual_seed(0)
    worst = export_rm.export_and_verify(SRC, OUT, dtype="float16", verbose=True)
    model, tok, _pad = export_rm.load_model(SRC, "float16")
    rows = reference.read_jsonl(DATA)
    rendered = [reference.render_row(r, tok) for r in rows]
    chosen = reference.score_texts(model, tok, [r[1] for r in rendered], 1)
    rejected = reference.score_texts(model, tok, [r[2] for r in rendered], 1)
    os.makedirs(os.path.join(OUT, "reference"), exist_ok=True)
    with open(os.path.join(OUT, "reference", "llmbar.json"), "w") as fh:
        json.dump({"torch_dtype": "float16", "batch_size": 1, "exporter_max_abs_diff": worst,
                   "torch": torch.__version__, "chosen": chosen, "rejected": rejected}, fh, indent=1)
        fh.write("\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
