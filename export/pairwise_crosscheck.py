#!/usr/bin/env python3
"""Cross-check the pairwise fixtures' reference files against RewardBench's own pipelines.

Run with the reference environment (rewardbench 0.1.4; see crosscheck_reference.py):

    /work/refvenv/bin/python export/pairwise_crosscheck.py [--root .] [--batch_size 8]

For each fixture (fixtures/models/tiny-pairrm as PairRM and as Better-PairRM, tiny-slic,
tiny-steamshp) it builds upstream's pipeline class on the tiny PyTorch checkpoint, exactly as
scripts/run_rm.py does (`pipeline_builder("text-classification", model=..., tokenizer=...)`,
called with run_rm's `reward_pipeline_kwargs` on batches of custom-dialogue rows built as
`utils.load_eval_dataset(custom_dialogue_formatting=True)` builds them), and compares with
`pairwise-reference[.better-pairrm].json`:

* PairRM / Better-PairRM: upstream's `tokenize_conv_pair` ids (unpadded) against the
  reference's `ids_ab` / `ids_ba`; upstream's model `logits` for each order against
  `score_chosen` / `score_rejected`; the pipeline's `output_logits=True` deltas against their
  difference, and its booleans against `result`.
* SlicPairPM: the ids and next-token "A"/"B" logits the pipeline passes to and reads from the
  model (recorded by a wrapper) against `ids_*` / `logits_*`; its booleans against `result`.
  `AutoTokenizer.from_pretrained("meta-llama/Meta-Llama-3-8B-Instruct")` (only its chat template
  is used, and the pipeline replaces that) returns the fixture tokenizer; `.cuda()` is a no-op.
* SteamSHP: `random.shuffle` is replaced by one that puts each row in the reference's order;
  the ids passed to `generate` and its greedy first token against `ids_<order>` /
  `greedy_<order>`; the booleans against `result`. `.to("cuda")` is a no-op.

Prints one line per check and writes pairwise-crosscheck.json beside each reference; exits 1 on
any mismatch (ids or verdicts different, or scores further apart than --tol).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys

import numpy as np
import torch

RUN_RM_KWARGS = {"batch_size": 8, "truncation": True, "padding": True, "max_length": 2048,
                 "function_to_apply": "none", "return_token_type_ids": False}


def read_rows(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh]


def custom_dialogue(row):
    """utils.load_eval_dataset's map_conversations (core set: string prompt; pref sets: list)."""
    if isinstance(row["prompt"], str):
        ch = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["chosen"]}]
        rj = [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["rejected"]}]
    else:
        ch = row["prompt"] + [{"role": "assistant", "content": row["chosen"]}]
        rj = row["prompt"] + [{"role": "assistant", "content": row["rejected"]}]
    return ch, rj


def batches(rows, size):
    for i in range(0, len(rows), size):
        yield i, rows[i:i + size]


class Report:
    def __init__(self, name):
        self.name, self.checks, self.failed = name, {}, False

    def ids(self, what, got, want):
        same = [int(x) for x in got] == [int(x) for x in want]
        self.checks.setdefault(f"{what} identical", []).append(same)
        self.failed |= not same

    def close(self, what, got, want, tol):
        d = abs(float(got) - float(want))
        k = f"{what} max abs diff"
        self.checks[k] = max(self.checks.get(k, 0.0), d)
        self.failed |= not d <= tol

    def same(self, what, got, want):
        ok = bool(got) == bool(want)
        self.checks.setdefault(f"{what} identical", []).append(ok)
        self.failed |= not ok

    def summary(self):
        out = {}
        for k, v in self.checks.items():
            out[k] = f"{sum(v)}/{len(v)}" if isinstance(v, list) else v
        return out


def unpadded(enc, i):
    m = enc["attention_mask"][i].bool()
    return enc["input_ids"][i][m].tolist()


def check_pairrm(root, better, bs, tol):
    from transformers import AutoTokenizer

    if better:
        from rewardbench.models.betterpairrm import BetterPairRMPipeline as Pipe, tokenize_conv_pair
    else:
        from rewardbench.models.pairrm import PairRMPipeline as Pipe, tokenize_conv_pair
    from rewardbench.models.pairrm import DebertaV2PairRM

    d = os.path.join(root, "fixtures/models/tiny-pairrm")
    ref_path = os.path.join(d, "pairwise-reference.better-pairrm.json" if better else "pairwise-reference.json")
    ref = json.load(open(ref_path))
    rows = read_rows(os.path.join(root, ref["data"]))
    model = DebertaV2PairRM.from_pretrained(d, torch_dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(d)
    pipe = Pipe("text-classification", model=model, tokenizer=tok)
    rep = Report("better-pairrm" if better else "pairrm")
    for start, chunk in batches(rows, bs):
        ch, rj = zip(*(custom_dialogue(r) for r in chunk))
        ch, rj = list(ch), list(rj)
        with torch.no_grad():
            deltas = pipe(ch, rj, output_logits=True, **RUN_RM_KWARGS)
            bools = pipe(ch, rj, **RUN_RM_KWARGS).tolist()
            ab = tokenize_conv_pair(tok, ch, rj, **RUN_RM_KWARGS)
            ba = tokenize_conv_pair(tok, rj, ch, **RUN_RM_KWARGS)
            f_ab = model(**ab).logits.tolist()
            f_ba = model(**ba).logits.tolist()
        for k, want in enumerate(ref["rows"][start:start + len(chunk)]):
            rep.ids("ids_ab", unpadded(ab, k), want["ids_ab"])
            rep.ids("ids_ba", unpadded(ba, k), want["ids_ba"])
            rep.close("f(ab) = score_chosen", f_ab[k], want["score_chosen"], tol)
            rep.close("f(ba) = score_rejected", f_ba[k], want["score_rejected"], tol)
            rep.close("pipeline delta", deltas[k], want["score_chosen"] - want["score_rejected"], tol)
            rep.same("verdict", bools[k], want["result"])
    return rep, ref_path


class Recorder(torch.nn.Module):
    """Stands in for the model: records the ids it is called with and the logits it returns."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, input_ids, **kw):
        out = self.model(input_ids, **kw)
        self.calls.append((input_ids[0].tolist(), out.logits[0, -1].detach().float()))
        return out


def check_slic(root, bs, tol):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import rewardbench.models.slicpairpm as sp

    d = os.path.join(root, "fixtures/models/tiny-slic")
    ref_path = os.path.join(d, "pairwise-reference.json")
    ref = json.load(open(ref_path))
    rows = read_rows(os.path.join(root, ref["data"]))
    tok = AutoTokenizer.from_pretrained(d)
    stand_in = AutoTokenizer.from_pretrained(d)

    class _Auto:
        @staticmethod
        def from_pretrained(name, **_):
            assert name == "meta-llama/Meta-Llama-3-8B-Instruct", name
            return stand_in

    sp.AutoTokenizer = _Auto
    torch.Tensor.cuda = lambda self, *a, **k: self
    model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager").eval()
    rec = Recorder(model)
    pipe = sp.SlicPairPMPipeline("text-classification", model=rec, tokenizer=tok)
    rep = Report("slic")
    id_a, id_b = pipe.token_id_A, pipe.token_id_B
    for start, chunk in batches(rows, bs):
        ch, rj = zip(*(custom_dialogue(r) for r in chunk))
        rec.calls.clear()
        bools = pipe(list(ch), list(rj), **RUN_RM_KWARGS).tolist()
        for k, want in enumerate(ref["rows"][start:start + len(chunk)]):
            for j, order in enumerate(("ab", "ba")):
                ids, logits = rec.calls[2 * k + j]
                rep.ids(f"ids_{order}", ids, want[f"ids_{order}"])
                rep.close("logit A", logits[id_a], want[f"logits_{order}"][0], tol)
                rep.close("logit B", logits[id_b], want[f"logits_{order}"][1], tol)
            rep.same("verdict", bools[k], want["result"])
    return rep, ref_path


def check_steamshp(root, bs, tol):
    from transformers import AutoTokenizer, T5ForConditionalGeneration
    from transformers.tokenization_utils_base import BatchEncoding

    import rewardbench.models.shp as shp

    d = os.path.join(root, "fixtures/models/tiny-steamshp")
    ref_path = os.path.join(d, "pairwise-reference.json")
    ref = json.load(open(ref_path))
    rows = read_rows(os.path.join(root, ref["data"]))
    tok = AutoTokenizer.from_pretrained(d)
    model = T5ForConditionalGeneration.from_pretrained(d, torch_dtype=torch.float32).eval()
    to = BatchEncoding.to
    BatchEncoding.to = lambda self, device: self if device == "cuda" else to(self, device)
    queue = []

    def shuffle(lst):
        if queue.pop(0) == "ba":
            lst.reverse()

    shp.random = type("R", (), {"shuffle": staticmethod(shuffle)})
    generated = []
    gen = model.generate

    def generate(**kw):
        out = gen(**kw)
        generated.append((kw, out))
        return out

    model.generate = generate
    pipe = shp.SHPPipeline("text-classification", model=model, tokenizer=tok)
    rep = Report("steamshp")
    for start, chunk in batches(rows, bs):
        ch, rj = zip(*(custom_dialogue(r) for r in chunk))
        want_rows = ref["rows"][start:start + len(chunk)]
        queue[:] = [w["order"] for w in want_rows]
        generated.clear()
        bools = pipe(list(ch), list(rj), **RUN_RM_KWARGS).tolist()
        kw, out = generated[0]
        for k, want in enumerate(want_rows):
            order = want["order"]
            rep.ids(f"ids ({order})", unpadded(kw, k), want[f"ids_{order}"])
            rep.ids("greedy first token", [out[k, -1]], [want[f"greedy_{order}"]])
            rep.same("verdict", bools[k], want["result"])
    return rep, ref_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    random.seed(0)
    failed = False
    results = {}
    for name, run in (("pairrm", lambda: check_pairrm(a.root, False, a.batch_size, a.tol)),
                      ("better-pairrm", lambda: check_pairrm(a.root, True, a.batch_size, a.tol)),
                      ("slic", lambda: check_slic(a.root, a.batch_size, a.tol)),
                      ("steamshp", lambda: check_steamshp(a.root, a.batch_size, a.tol))):
        rep, ref_path = run()
        s = rep.summary()
        results.setdefault(os.path.dirname(ref_path), {})[name] = {
            "reference": os.path.basename(ref_path), "batch_size": a.batch_size, "ok": not rep.failed, **s}
        failed |= rep.failed
        print(f"{name:14} {'ok' if not rep.failed else 'MISMATCH'}  " + ", ".join(f"{k}: {v}" for k, v in s.items()))
    import rewardbench
    import transformers

    for d, r in results.items():
        with open(os.path.join(d, "pairwise-crosscheck.json"), "w") as fh:
            json.dump({"generated_by": "export/pairwise_crosscheck.py", "rewardbench": rewardbench.__version__,
                       "transformers": transformers.__version__, "torch": torch.__version__.split("+")[0],
                       "checks": r}, fh, indent=2, default=float)
            fh.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
