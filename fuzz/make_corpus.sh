#!/usr/bin/env bash
# Seeds the fuzz corpora from the committed fixtures (corpora are git-ignored).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/dataset corpus/template corpus/splits
printf 'data/train-00000-of-00001.parquet\ndata/é-00000-of-00002.jsonl\nvalid/x.csv\n' > corpus/splits/names
printf -- '---\nconfigs:\n- config_name: default\n  data_files:\n  - split: a\n    path: d/a-*\n---\n\0d/a-0.parquet\nd/ü.json\n' > corpus/splits/readme
for f in ../fixtures/data/*.jsonl; do
  head -c 4000 "$f" > "corpus/dataset/$(basename "$f")"
done
python3 - <<'PY'
import json, glob, os
n = 0
for path in glob.glob("../fixtures/models/*/tokenizer_config.json"):
    t = json.load(open(path)).get("chat_template")
    if isinstance(t, str):
        open(f"corpus/template/fixture{n}", "wb").write(t.encode() + b"\0hello\x01hi there")
        n += 1
for path in ["../fixtures/templates/hfjs_e2e_cases.json", "../../shared/data/chat-templates/hfjs_e2e_cases.json"]:
    if os.path.exists(path):
        cases = json.load(open(path))
        items = cases if isinstance(cases, list) else list(cases.values())
        for c in items[:40]:
            t = c.get("chat_template") or c.get("template") if isinstance(c, dict) else None
            if isinstance(t, str):
                open(f"corpus/template/case{n}", "wb").write(t.encode() + b"\0hi\x01yo")
                n += 1
        break
print(f"{n} template seeds")
PY
