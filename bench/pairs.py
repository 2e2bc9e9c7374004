"""The benchmark's 500 preference pairs: the 419 LLMBar rows of ../shared, then repeats of the
first rows (new ids, same subset) until there are 500."""
from __future__ import annotations

import json
import os

N_PAIRS = 500


def build_pairs(llmbar_path: str, out_path: str, n: int = N_PAIRS) -> int:
    """Write `n` rows to `out_path` (JSON lines); returns how many of them are repeats."""
    with open(llmbar_path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    if not rows:
        raise SystemExit(f"{llmbar_path}: no rows")
    out = [dict(r) for r in rows[:n]]
    next_id = max(int(r.get("id", i)) for i, r in enumerate(rows)) + 1
    i = 0
    while len(out) < n:
        r = dict(rows[i % len(rows)])
        r["id"] = next_id
        next_id += 1
        out.append(r)
        i += 1
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in out:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, out_path)
    return max(0, n - len(rows))
