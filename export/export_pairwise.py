#!/usr/bin/env python3
"""Export a pairwise preference model to ONNX and verify it against PyTorch.

Usage:
    export/.venv/bin/python export/export_pairwise.py --kind KIND --model HF_DIR --out DIR [--tol 1e-4]

KIND is what RewardBench's pipeline does with the model (rewardbench/models/*.py):

* `pairrm` / `better-pairrm` (llm-blender/PairRM-hf, mightbe/Better-PairRM): a `DebertaV2PairRM`
  checkpoint (DeBERTa-v3 encoder + `head_layer`: Dropout, Linear(2H, H), Tanh, Dropout,
  Linear(H, n_tasks)). Output `pair_logits` float32 [batch]: for each row
  `mean_tasks(head(cat[h_src, h_cand1]) - head(cat[h_src, h_cand2]))`, the hidden states read
  at the row's first `source_prefix_id`, `cand1_prefix_id`, `cand2_prefix_id` tokens
  (config.json), i.e. the model's `logits` for one (source, candidate 1, candidate 2) input.
* `slic` (RLHFlow/pair-preference-model-LLaMA3-8B, SlicPairPMPipeline): a causal LM. Output
  `next_token_logits` float32 [batch, vocab]: the LM head at each row's last attended position
  (the logits of the token that would follow the prompt). Only that one position goes through
  the LM head.
* `steamshp` (stanfordnlp/SteamSHP-flan-t5-*, SHPPipeline): a T5ForConditionalGeneration.
  Output `first_token_logits` float32 [batch, vocab]: the decoder's logits at its first step,
  decoder_input_ids = [[decoder_start_token_id]] (what `generate(max_new_tokens=1)` takes the
  greedy token from).

All take `input_ids`, `attention_mask` (int64 [batch, seq], right padding). Writes DIR/model.onnx,
the tokenizer files, config.json and DIR/pairwise.json (the contract the evaluator reads: kind
and output), then compares ONNX Runtime with PyTorch on padded and unpadded batches and exits
non-zero when max |diff| > --tol. The graph is written with one copy of the weights in memory
(export/weights.py; graph + model.onnx_data past 512 MiB of weights, as export_rm.py's
`--external_data auto`), and PyTorch's outputs are computed before the model is freed and ONNX
Runtime loads the export.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import weights  # noqa: E402
from export_rm import TOKENIZER_FILES, _pad_batch, compare_cases  # noqa: E402

KINDS = ("pairrm", "better-pairrm", "slic", "steamshp")
OUTPUT = {
    "pairrm": "pair_logits",
    "better-pairrm": "pair_logits",
    "slic": "next_token_logits",
    "steamshp": "first_token_logits",
}
CONTRACT_FILE = "pairwise.json"
CONTRACT_VERSION = 1
DEFAULT_TOL = 1e-4
EXTRA_FILES = ("spm.model", "spiece.model", "added_tokens.json", "generation_config.json")


# --- PairRM ------------------------------------------------------------------------------------

def _deberta_pairrm_class():
    """RewardBench's `DebertaV2PairRM` (rewardbench/models/pairrm.py, from llm-blender), the same
    modules and names so that PairRM-hf checkpoints load; `forward` as upstream's (without the
    asserts and the loss)."""
    from transformers.models.deberta_v2.modeling_deberta_v2 import DebertaV2Model, DebertaV2PreTrainedModel

    class DebertaV2PairRM(DebertaV2PreTrainedModel):
        def __init__(self, config):
            super().__init__(config)
            self.n_tasks = config.n_tasks
            self.drop_out = config.drop_out
            self.pretrained_model = DebertaV2Model(config)
            self.hidden_size = config.hidden_size
            self.sep_token_id = config.sep_token_id
            self.source_prefix_id = config.source_prefix_id
            self.cand_prefix_id = config.cand_prefix_id
            self.cand1_prefix_id = config.cand1_prefix_id
            self.cand2_prefix_id = config.cand2_prefix_id
            self.head_layer = nn.Sequential(
                nn.Dropout(self.drop_out),
                nn.Linear(2 * self.hidden_size, 1 * self.hidden_size),
                nn.Tanh(),
                nn.Dropout(self.drop_out),
                nn.Linear(1 * self.hidden_size, self.n_tasks),
            )
            self.sigmoid = nn.Sigmoid()
            self.post_init()

        def forward(self, input_ids=None, attention_mask=None, **_):
            keep_column_mask = attention_mask.ne(0).any(dim=0)
            input_ids = input_ids[:, keep_column_mask]
            attention_mask = attention_mask[:, keep_column_mask]
            outputs = self.pretrained_model(input_ids=input_ids, attention_mask=attention_mask,
                                            output_hidden_states=True, return_dict=True)
            encs = outputs.hidden_states[-1]
            s = torch.where(input_ids == self.source_prefix_id)
            c1 = torch.where(input_ids == self.cand1_prefix_id)
            c2 = torch.where(input_ids == self.cand2_prefix_id)
            source_encs = encs[s[0], s[1], :]
            left = self.head_layer(torch.cat([source_encs, encs[c1[0], c1[1], :]], dim=-1))
            right = self.head_layer(torch.cat([source_encs, encs[c2[0], c2[1], :]], dim=-1))
            return (left - right).mean(dim=-1)

    return DebertaV2PairRM


def load_pairrm(hf_dir: str):
    model = _deberta_pairrm_class().from_pretrained(hf_dir, torch_dtype=torch.float32)
    return _eval(model)


class _PairRMGraph(nn.Module):
    """Upstream's forward for rows with exactly one of each prefix token: the encoder's last
    hidden states read at each row's first source / candidate-1 / candidate-2 prefix token."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        m = self.model
        encs = m.pretrained_model(input_ids=input_ids, attention_mask=attention_mask,
                                  output_hidden_states=True, return_dict=True).hidden_states[-1]
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)

        def at(token_id):
            idx = torch.argmax((input_ids == token_id).to(torch.int64), dim=1)
            return encs[rows, idx, :]

        src = at(m.source_prefix_id)
        left = m.head_layer(torch.cat([src, at(m.cand1_prefix_id)], dim=-1))
        right = m.head_layer(torch.cat([src, at(m.cand2_prefix_id)], dim=-1))
        return (left - right).mean(dim=-1)


def pairrm_test_rows(config, rng):
    """Random PairRM inputs of very different lengths: [CLS] <src> ... [SEP] [CLS] <c1> ... [SEP]
    [CLS] <c2> ... [SEP] (as tokenize_pair builds them)."""
    cls_id = getattr(config, "bos_token_id", None) or 1
    sep_id = config.sep_token_id if config.sep_token_id is not None else 2
    specials = {config.source_prefix_id, config.cand1_prefix_id, config.cand2_prefix_id, config.cand_prefix_id}
    pool = np.array([t for t in range(5, config.vocab_size) if t not in specials], dtype=np.int64)
    out = []
    for n_src, n1, n2 in ((3, 2, 4), (40, 25, 7), (300, 120, 180), (5, 600, 1)):
        row = []
        for prefix, n in ((config.source_prefix_id, n_src), (config.cand1_prefix_id, n1), (config.cand2_prefix_id, n2)):
            row += [cls_id, prefix] + list(rng.choice(pool, size=n)) + [sep_id]
        out.append(np.array(row, dtype=np.int64))
    return out


# --- causal LM (SlicPairPM) ----------------------------------------------------------------------

class _NextToken(nn.Module):
    """The LM head at each row's last attended position only: logits [batch, vocab]."""

    def __init__(self, model):
        super().__init__()
        self.base = getattr(model, model.base_model_prefix)
        self.head = model.get_output_embeddings()

    def forward(self, input_ids, attention_mask):
        hidden = self.base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                           return_dict=True).last_hidden_state
        pos = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        last = torch.argmax(pos * attention_mask, dim=1)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        return self.head(hidden[rows, last, :])


def load_causal_lm(hf_dir: str):
    import export_lm

    model = export_lm.load_lm(hf_dir)
    export_lm.lm_head(model)  # refuses heads that post-process the logits
    return model


# --- T5 (SteamSHP) ---------------------------------------------------------------------------------

class _FirstStep(nn.Module):
    """Encoder + the decoder's first step (decoder_input_ids = [[decoder_start_token_id]])."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.start = int(model.config.decoder_start_token_id)

    def forward(self, input_ids, attention_mask):
        dec = torch.full((input_ids.shape[0], 1), self.start, dtype=torch.int64, device=input_ids.device)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=dec,
                         use_cache=False, return_dict=True)
        return out.logits[:, 0, :]


def load_t5(hf_dir: str):
    from transformers import T5ForConditionalGeneration

    model = T5ForConditionalGeneration.from_pretrained(hf_dir, torch_dtype=torch.float32)
    model.config.use_cache = False
    return _eval(model)


# --- shared ----------------------------------------------------------------------------------------

def _eval(model):
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return model.eval()


def load(kind: str, hf_dir: str):
    if kind in ("pairrm", "better-pairrm"):
        return load_pairrm(hf_dir)
    if kind == "slic":
        return load_causal_lm(hf_dir)
    return load_t5(hf_dir)


def graph_module(kind: str, model) -> nn.Module:
    if kind in ("pairrm", "better-pairrm"):
        return _PairRMGraph(model)
    if kind == "slic":
        return _NextToken(model)
    return _FirstStep(model)


def trace_inputs(kind, model):
    if kind in ("pairrm", "better-pairrm"):
        rows = pairrm_test_rows(model.config, np.random.default_rng(0))[:2]
        return _pad_batch(rows, 0, "right")
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (2, 24), generator=g, dtype=torch.int64).numpy()
    mask = np.ones_like(ids)
    mask[1, 20:] = 0
    return ids, mask


def export_onnx(kind: str, model, onnx_path: str, opset: int = 17, verbose: bool = True) -> bool:
    """Writes the graph (export/weights.py: the structure traced without weights, the kind as a
    model property, then the weights one tensor at a time). Returns True when the data is
    external."""
    ids, mask = trace_inputs(kind, model)
    output = OUTPUT[kind]
    axes = {0: "batch"} if output == "pair_logits" else {0: "batch", 1: "vocab"}
    module = graph_module(kind, model)
    # DeBERTa's relative positions come from torch.jit.script functions, whose outputs reach the
    # exporter untyped; its symbolic `&` needs them typed by ONNX shape inference, at its memory
    # cost (a 0.74 GB PairRM-style model: 2.44 GB peak with it, 3.66 GB with the folded export)
    weights.trace(module, (torch.from_numpy(ids), torch.from_numpy(mask)), onnx_path,
                  shape_inference=kind in ("pairrm", "better-pairrm"),
                  input_names=["input_ids", "attention_mask"], output_names=[output],
                  dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                "attention_mask": {0: "batch", 1: "sequence"}, output: axes},
                  opset_version=opset)
    mark_kind(onnx_path, kind)
    return weights.attach(onnx_path, weights.tensors_of(module), verbose=verbose)


def mark_kind(onnx_path: str, kind: str) -> None:
    """The `rewardbench.pairwise` property, on the graph's structure (no weights in it yet)."""
    import onnx

    m = onnx.load(onnx_path, load_external_data=False)
    onnx.helper.set_model_props(m, {"rewardbench.pairwise": kind})
    onnx.checker.check_model(m)
    onnx.save(m, onnx_path)


@torch.no_grad()
def torch_outputs(kind: str, model, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """PyTorch's outputs for a padded batch: upstream's own forward for PairRM (which drops the
    all-pad columns itself), the unwrapped model's logits read at the same place otherwise."""
    t_ids, t_mask = torch.from_numpy(ids), torch.from_numpy(mask)
    if kind in ("pairrm", "better-pairrm"):
        return model(input_ids=t_ids, attention_mask=t_mask).float().numpy()
    if kind == "slic":
        logits = model(input_ids=t_ids, attention_mask=t_mask, use_cache=False).logits
        last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
        return logits[torch.arange(len(ids)), torch.from_numpy(last)].float().numpy()
    dec = torch.full((len(ids), 1), model.config.decoder_start_token_id, dtype=torch.int64)
    return model(input_ids=t_ids, attention_mask=t_mask, decoder_input_ids=dec).logits[:, 0].float().numpy()


def check_cases(kind: str, config):
    """The verification's inputs: a right-padded batch of very different lengths and its first
    two rows unpadded. Returns [(name, ids, mask)]."""
    rng = np.random.default_rng(1234)
    if kind in ("pairrm", "better-pairrm"):
        seqs = pairrm_test_rows(config, rng)
    else:
        seqs = [rng.integers(3, config.vocab_size, size=n, dtype=np.int64) for n in (3, 40, 300, 1000)]
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    cases = []
    ids, mask = _pad_batch(seqs, pad, "right")
    cases.append((f"right-padded lengths {'/'.join(str(len(s)) for s in seqs)}", ids, mask))
    for s in seqs[:2]:
        one = s[None, :]
        cases.append((f"unpadded single row length {len(s)}", one, np.ones_like(one)))
    return cases


def references(kind: str, model) -> dict:
    """PyTorch's outputs on `check_cases`, row by row and unpadded (as upstream calls these
    models), computed once so the model can be freed before ONNX Runtime loads the export."""
    cases = check_cases(kind, model.config)

    def rows(ids, mask):
        return np.concatenate([
            torch_outputs(kind, model, ids[i:i + 1, : int(mask[i].sum())], mask[i:i + 1, : int(mask[i].sum())])
            for i in range(len(ids))
        ])

    return {"cases": cases, "outputs": {name: rows(ids, mask) for name, ids, mask in cases}}


def verify(kind: str, refs: dict, onnx_path: str, tol: float = DEFAULT_TOL, verbose: bool = True) -> float:
    """One padded ONNX Runtime call per case against `references(...)`."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    output = OUTPUT[kind]

    def run(ids, mask, name):
        return refs["outputs"][name], sess.run([output], {"input_ids": ids, "attention_mask": mask})[0]

    return compare_cases(refs["cases"], run, onnx_path, tol, verbose, f" ({kind})")


def copy_support_files(hf_dir: str, out_dir: str) -> None:
    """Tokenizer files and config.json. A checkpoint with only a SentencePiece model (PairRM-hf's
    spm.model, a T5 spiece.model) gets the tokenizer.json transformers converts it to (what
    AutoTokenizer loads by default, and what the evaluator reads); that needs `sentencepiece`
    and `protobuf`."""
    if os.path.realpath(hf_dir) != os.path.realpath(out_dir):
        for f in TOKENIZER_FILES + ("config.json",) + EXTRA_FILES:
            src = os.path.join(hf_dir, f)
            if os.path.exists(src):
                shutil.copy2(src, os.path.join(out_dir, f))
    if not os.path.exists(os.path.join(out_dir, "tokenizer.json")):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(hf_dir, use_fast=True)
        if not tok.is_fast:
            raise SystemExit(f"{hf_dir}: transformers has no fast tokenizer for {type(tok).__name__}; "
                             "the evaluator needs tokenizer.json")
        tok.save_pretrained(out_dir)
        print(f"  wrote {os.path.join(out_dir, 'tokenizer.json')} (converted by transformers)")


def write_contract(kind: str, out_dir: str, diff: float) -> None:
    contract = {
        "rewardbench_pairwise": CONTRACT_VERSION,
        "kind": kind,
        "output": OUTPUT[kind],
        "onnx_vs_torch_max_abs_diff": diff,
    }
    with open(os.path.join(out_dir, CONTRACT_FILE), "w") as fh:
        json.dump(contract, fh, indent=2)
        fh.write("\n")


def export_and_verify(kind: str, hf_dir: str, out_dir: str, opset: int = 17, tol: float = DEFAULT_TOL,
                      verbose: bool = True, model=None) -> float:
    if kind not in KINDS:
        raise SystemExit(f"--kind {kind}: one of {', '.join(KINDS)}")
    os.makedirs(out_dir, exist_ok=True)
    model = model if model is not None else load(kind, hf_dir)
    onnx_path = os.path.join(out_dir, "model.onnx")
    if verbose:
        print(f"exporting {hf_dir} ({type(model).__name__}, {kind}) -> {onnx_path}")
    export_onnx(kind, model, onnx_path, opset, verbose)
    copy_support_files(hf_dir, out_dir)
    refs = references(kind, model)
    # PyTorch's weights go before ONNX Runtime loads its own copy (unless the caller holds them)
    del model
    weights.release_memory()
    diff = verify(kind, refs, onnx_path, tol, verbose)
    write_contract(kind, out_dir, diff)
    return diff


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True, choices=KINDS)
    ap.add_argument("--model", required=True, help="local Hugging Face checkpoint directory")
    ap.add_argument("--out", required=True, help="output directory (model.onnx, pairwise.json, tokenizer/config files)")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--tol", type=float, default=DEFAULT_TOL)
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    export_and_verify(a.kind, a.model, a.out, a.opset, a.tol)
    return 0


if __name__ == "__main__":
    sys.exit(main())
