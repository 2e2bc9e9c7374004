"""fixtures/models/tiny-llama-rm-extdata: tiny-llama-rm's graph rewritten as model.onnx +
model.onnx_data (export/external_data.py, the layout `--external_data always` writes), with
its tokenizer and config, so tests without the export venv run an external-data model.
Needs only the `onnx` package."""

import os
import shutil
import sys

import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import external_data  # noqa: E402

SRC = os.path.join(HERE, "..", "fixtures", "models", "tiny-llama-rm")
OUT = os.path.join(HERE, "..", "fixtures", "models", "tiny-llama-rm-extdata")
FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    m = onnx.load(os.path.join(SRC, "model.onnx"))
    external_data.save(m, os.path.join(OUT, "model.onnx"), external=True)
    onnx.checker.check_model(os.path.join(OUT, "model.onnx"))
    for f in FILES:
        shutil.copy2(os.path.join(SRC, f), os.path.join(OUT, f))
    print(f"wrote {OUT}: model.onnx + {external_data.LOCATION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
