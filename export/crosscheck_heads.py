#!/usr/bin/env python3
"""Cross-check the GRM fixture's references (export/make_head_fixtures.py, which uses the
mirror in export/heads.py) against rewardbench's own GRewardModel (rewardbench/models/grm.py),
loaded from the fixture's checkpoint, on every text alone and in RewardBench's left-padded
batches of 8. Needs a venv with `rewardbench` installed (see export/rb2_reference.py):

    /path/to/rewardbench-venv/bin/python export/crosscheck_heads.py [--root .]

ArmoRM's modeling code is remote code (not in rewardbench), so only GRM is checked here.
Exits non-zero when a score differs by more than 1e-5.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    a = ap.parse_args(argv)
    from rewardbench.models.grm import GRewardModel
    from transformers import AutoTokenizer

    d = os.path.join(a.root, "fixtures", "models", "tiny-grm-rm")
    with open(os.path.join(d, "head-reference.json")) as fh:
        ref = json.load(fh)
    tok = AutoTokenizer.from_pretrained(d)
    model = GRewardModel.from_pretrained(d, torch_dtype=torch.float32).eval()
    worst = 0.0
    with torch.no_grad():
        for side in ("chosen", "rejected"):
            texts = [r[side]["text"] for r in ref["rows"]]
            for i, t in enumerate(texts):  # alone
                enc = tok([t], padding=True, return_tensors="pt")
                assert enc["input_ids"][0].tolist() == ref["rows"][i][side]["input_ids"]
                s = float(model(**enc)[0])
                worst = max(worst, abs(s - ref["rows"][i][side]["score"]))
            tok.padding_side = "left"  # the rewardbench CLI's batches
            for b in range(0, len(texts), 8):
                enc = tok(texts[b : b + 8], padding=True, return_tensors="pt")
                for j, s in enumerate(model(**enc).tolist()):
                    worst = max(worst, abs(s - ref["rows"][b + j][side]["left8"]))
    print(f"GRM fixture vs rewardbench's GRewardModel: max |diff| {worst:.3e} over {2 * len(ref['rows'])} texts")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
