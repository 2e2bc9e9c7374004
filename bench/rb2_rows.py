"""RewardBench 2-shaped rows for `bench/rb2.py`, built from the LLMBar rows of ../shared.

Each RB2 row is one LLMBar prompt with 4 completions: its chosen answer, its own rejected answer
and the rejected answers of the next two rows of the same LLMBar subset (cyclically, skipping
texts equal to one already taken). Prompts are taken round-robin over the LLMBar subsets (sorted
by name), in file order within each, so any N covers all five; each LLMBar subset maps onto one
RB2 subset name (no Ties). Deterministic: the same file and N give the same rows.

Columns, as `allenai/reward-bench-2`: id (string), prompt, chosen [1], rejected [3], num_correct 1,
num_incorrect 3, total_completions 4, subset."""
from __future__ import annotations

import json
import os

RB2_SUBSETS = ["Factuality", "Precise IF", "Math", "Safety", "Focus"]
N_REJECTED = 3


def read_llmbar(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    if not rows:
        raise SystemExit(f"{path}: no rows")
    return rows


def build_rows(llmbar_path: str, n: int) -> tuple[list[dict], dict, int]:
    """Returns (rows, subset_map, repeats): `repeats` counts prompts used a second time (only
    when n exceeds the LLMBar rows; they get new ids)."""
    src = read_llmbar(llmbar_path)
    by_subset: dict[str, list[dict]] = {}
    for r in src:
        by_subset.setdefault(r["subset"], []).append(r)
    names = sorted(by_subset)
    subset_map = {name: RB2_SUBSETS[i % len(RB2_SUBSETS)] for i, name in enumerate(names)}

    # round-robin order over the subsets, file order within each
    order: list[tuple[str, int]] = []
    longest = max(len(v) for v in by_subset.values())
    for j in range(longest):
        for name in names:
            if j < len(by_subset[name]):
                order.append((name, j))

    rows = []
    for k in range(n):
        name, j = order[k % len(order)]
        group = by_subset[name]
        base = group[j]
        taken = [base["chosen"], base["rejected"]]
        rejected = [base["rejected"]]
        step = 1
        while len(rejected) < N_REJECTED and step < len(group):
            cand = group[(j + step) % len(group)]["rejected"]
            if cand not in taken:
                rejected.append(cand)
                taken.append(cand)
            step += 1
        if len(rejected) < N_REJECTED:
            raise SystemExit(f"{llmbar_path}: subset {name} has too few distinct rejected answers")
        rows.append({
            "id": str(k),
            "prompt": base["prompt"],
            "chosen": [base["chosen"]],
            "rejected": rejected,
            "num_correct": 1,
            "num_incorrect": N_REJECTED,
            "total_completions": 1 + N_REJECTED,
            "subset": subset_map[name],
        })
    return rows, subset_map, max(0, n - len(order))


def write_jsonl(rows: list[dict], path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
