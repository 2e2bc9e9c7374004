#!/usr/bin/env python3
"""Regenerate everything under fixtures/ (deterministic, offline).

    export/.venv/bin/python export/make_fixtures.py [--root .]

1. trains a byte-level BPE tokenizer on /usr/share/common-licenses,
2. builds three tiny random reward models (Llama with GQA, GPT-2, Mistral with a 256-token
   sliding window) and saves HF checkpoints,
3. exports each to model.onnx with export_rm.export_and_verify (all three also to gqa/ with
   fused attention, --attention gqa; `--gqa_only [NAME ...]` rewrites only those from the
   committed checkpoints),
4. writes the data files in fixtures/data/,
5. writes PyTorch reference scores (reference.py) to fixtures/models/<name>/reference/.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import export_rm  # noqa: E402
import reference  # noqa: E402

LICENSE_DIR = "/usr/share/common-licenses"
LLMBAR_SRC = "/work/shared/data/reward-bench-llmbar"
VOCAB_SIZE = 1500
SPECIALS = ["<s>", "</s>", "<pad>"]
MODEL_MAX_LEN = 2048  # llmbar rows reach ~1520 tokens with this 1500-token vocabulary
MAX_TOKENS = 2048  # every rendered text must fit both fixtures' 2048 positions
EDGE_MAX = 1000  # the long edge row stays below 1024 positions

LLAMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
# tulu-like, no BOS; whitespace control so trim/lstrip behaviour matters a little
GPT2_TEMPLATE = (
    "{% for message in messages %}\n"
    "    {%- if loop.first and message['role'] == 'system' -%}\n"
    "        {{ '<|system|>\n' + message['content'] + '\n' }}\n"
    "    {%- else -%}\n"
    "        {{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}\n"
    "    {%- endif -%}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def train_bpe(vocab_size, feed):
    """A byte-level BPE with <s>, </s>, <pad> and a post-processor that adds <s>; `feed(tok,
    trainer)` trains it (also used by make_bench_model.py)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    feed(tok, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return tok


def train_tokenizer():
    files = []
    seen = set()
    for name in sorted(os.listdir(LICENSE_DIR)):
        p = os.path.join(LICENSE_DIR, name)
        rp = os.path.realpath(p)
        if os.path.isfile(rp) and rp not in seen:
            seen.add(rp)
            files.append(rp)
    return train_bpe(VOCAB_SIZE, lambda tok, trainer: tok.train(files, trainer))


def hf_tokenizer(raw, chat_template, with_pad):
    from transformers import PreTrainedTokenizerFast

    kw = dict(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=MODEL_MAX_LEN,
        model_input_names=["input_ids", "attention_mask"],
        chat_template=chat_template,
        clean_up_tokenization_spaces=False,
    )
    if with_pad:
        kw["pad_token"] = "<pad>"
    return PreTrainedTokenizerFast(**kw)


def save_tokenizer(tok, out_dir):
    tok.save_pretrained(out_dir)
    # make sure both transformers 4.x and 5.x load it as the generic fast tokenizer
    p = os.path.join(out_dir, "tokenizer_config.json")
    with open(p) as fh:
        cfg = json.load(fh)
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg["model_input_names"] = ["input_ids", "attention_mask"]
    with open(p, "w") as fh:
        json.dump(cfg, fh, indent=2, ensure_ascii=False)
        fh.write("\n")


# shared by the tiny Llama and Mistral fixtures
TINY_DECODER = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
    initializer_range=0.15,
    bos_token_id=0,
    eos_token_id=1,
    pad_token_id=2,
    tie_word_embeddings=False,
    use_cache=False,
    num_labels=1,
    torch_dtype="float32",
)


def build_llama(vocab, seed):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    cfg = LlamaConfig(vocab_size=vocab, **TINY_DECODER)
    torch.manual_seed(seed)
    return LlamaForSequenceClassification(cfg)


def build_gpt2(vocab, seed):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    cfg = GPT2Config(
        vocab_size=vocab,
        n_positions=2048,  # llmbar rows exceed 1024 tokens with the tiny vocabulary
        n_embd=48,
        n_layer=2,
        n_head=4,
        n_inner=96,
        initializer_range=0.2,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,  # no pad token: RewardBench falls back to eos
        use_cache=False,
        num_labels=1,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    return GPT2ForSequenceClassification(cfg)


def build_mistral(vocab, seed):
    """Mistral with a sliding window shorter than the long fixture rows, so the window matters."""
    from transformers import MistralConfig, MistralForSequenceClassification

    cfg = MistralConfig(vocab_size=vocab, head_dim=16, sliding_window=256, **TINY_DECODER)
    torch.manual_seed(seed)
    return MistralForSequenceClassification(cfg)


# gqa: also exported with --attention gqa into <name>/gqa (tests/integration/parity.rs runs both exports)
MODELS = [
    dict(name="tiny-llama-rm", build=build_llama, template=LLAMA_TEMPLATE, pad=True, seed=1234, gqa=True),
    dict(name="tiny-gpt2-rm", build=build_gpt2, template=GPT2_TEMPLATE, pad=False, seed=4321, gqa=True),
    dict(name="tiny-mistral-rm", build=build_mistral, template=LLAMA_TEMPLATE, pad=True, seed=2468, gqa=True),
]


# ----------------------------------------------------------------------------- data

def write_jsonl(path, rows, compact=False):
    sep = (",", ":") if compact else (", ", ": ")
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False, separators=sep) + "\n")


def llmbar_rows():
    rows = reference.read_jsonl(os.path.join(LLMBAR_SRC, "llmbar.jsonl"))
    seen, out = Counter(), []
    for r in rows:
        if seen[r["subset"]] < 8:
            seen[r["subset"]] += 1
            out.append(r)
    return out


def edge_rows(long_text):
    def row(i, prompt, chosen, rejected, note):
        return dict(prompt=prompt, chosen=chosen, chosen_model="synthetic", rejected=rejected,
                    rejected_model="synthetic", subset="edge", id=i)  # note: documentation only

    return [
        row(1, "Translate 'good morning' into Japanese and Arabic.",
            "おはようございます (Japanese) — صباح الخير (Arabic) 🌅",
            "Good morning in Japanese is 'konbanwa' 🌙", "CJK, RTL, emoji"),
        row(2, "Write the word 'café' with a combining accent.",
            "cafe\u0301 (e + U+0301 COMBINING ACUTE ACCENT) and n\u0303, A\u030a",
            "cafe", "combining accents"),
        row(3, "Say nothing at all.", "", "I refuse to stay silent!", "empty chosen"),
        row(4, "Give me a one-word answer: what colour is the sky?", "Blue.", "", "empty rejected"),
        row(5, "Reply with whitespace only.", "   \n\t  \n", "Here is some text instead.", "whitespace-only chosen"),
        row(6, "What do the strings <s> and </s> mean in a tokenizer?",
            "<s> marks the beginning of a sequence and </s> marks its end; <pad> fills batches.",
            "They are HTML tags: </s> closes a <s> strike-through.</s>", "literal special-token strings"),
        row(7, "Summarise the following licence text.\n\n" + long_text,
            "It is a permissive licence.", "It is a proprietary licence that forbids copying.",
            "very long row (700-1000 tokens rendered)"),
        row(8, "Is this a tie?", "Identical answer. 同じ答え。", "Identical answer. 同じ答え。", "tie: chosen == rejected"),
        row(9, "Mixed scripts: Ελληνικά, русский, עברית, हिन्दी.",
            "Greek, Russian, Hebrew (RTL) and Hindi 👍🏽 — family emoji 👨\u200d👩\u200d👧",
            "Only English is supported.", "mixed scripts, ZWJ emoji sequence"),
    ]


def pref_rows():
    M = lambda role, content: {"role": role, "content": content}
    return [
        dict(prompt=[M("user", "What is 2+2?")], chosen="4", rejected="5", subset="pref-single", id=0),
        dict(prompt=[M("user", "Name a prime number."), M("assistant", "7"), M("user", "Another one, bigger than 10?")],
             chosen="11 is prime.", rejected="12 is prime.", subset="pref-multi", id=1),
        # leading system message: RewardBench ignores roles and relabels by index parity
        # (system->user, user->assistant, ...), so an odd-length list ending in "assistant" is valid
        dict(prompt=[M("system", "You are a terse assistant."), M("user", "Capital of France?"),
                     M("assistant", "Paris."), M("user", "And of Italy?"), M("assistant", "Rome. Anything else?")],
             chosen="Berlin is the capital of Germany.", rejected="Munich.", subset="pref-system", id=2),
        dict(prompt=[M("system", "Always answer in French."), M("user", "Hello!"), M("assistant", "Bonjour !")],
             chosen="De rien !", rejected="You're welcome!", subset="pref-system", id=3),
        dict(prompt=[M("user", "Explain recursion briefly."), M("assistant", "A function calling itself."),
                     M("user", "Give an example in Python.")],
             chosen="def f(n):\n    return 1 if n == 0 else n * f(n - 1)",
             rejected="for i in range(10): print(i)", subset="pref-multi", id=4),
        dict(prompt=[M("user", "Répondez en une phrase : pourquoi le ciel est-il bleu ?")],
             chosen="À cause de la diffusion de Rayleigh.", rejected="Parce que la mer le reflète.",
             subset="pref-single", id=5),
    ]


def conversation_rows():
    M = lambda role, content: {"role": role, "content": content}
    rows = []
    convs = [
        ([M("user", "What is the boiling point of water at sea level?")],
         "100 °C (212 °F).", "50 °C.", "conv-single"),
        ([M("user", "Hi"), M("assistant", "Hello! How can I help?"), M("user", "Tell me a joke.")],
         "Why did the scarecrow win an award? He was outstanding in his field.", "No.", "conv-multi"),
        ([M("system", "You are a pirate."), M("user", "Where is the treasure?"), M("assistant", "Arr, buried!")],
         "Under the old palm, matey.", "I don't know what treasure is.", "conv-system"),
        ([M("user", "List three colours.")], "Red, green, blue.", "Red, green, blue, and also Tuesday.", "conv-single"),
        ([M("user", "Translate 'cat' to German."), M("assistant", "Katze."), M("user", "And to Spanish?")],
         "Gato.", "Chat.", "conv-multi"),
        ([M("user", "Echo this: </s><s><pad>")], "</s><s><pad>", "echo", "conv-single"),
    ]
    for i, (prompt, c, r, subset) in enumerate(convs):
        rows.append(dict(chosen=prompt + [M("assistant", c)], rejected=prompt + [M("assistant", r)],
                         subset=subset, id=i))
    return rows


def make_long_text(toks, target_lo=760, target_hi=900):
    """Licence text whose rendered edge row lands at 700-1000 tokens for every fixture tokenizer."""
    src = open(os.path.join(LICENSE_DIR, "Apache-2.0"), encoding="utf-8").read()
    words = src.split(" ")
    lo, hi = 1, len(words)
    while lo < hi:  # largest prefix whose max token count over tokenizers <= target_hi
        mid = (lo + hi + 1) // 2
        txt = " ".join(words[:mid])
        n = max(len(t(txt)["input_ids"]) for t in toks)
        if n <= target_hi:
            lo = mid
        else:
            hi = mid - 1
    txt = " ".join(words[:lo])
    assert min(len(t(txt)["input_ids"]) for t in toks) >= target_lo
    return txt


# ----------------------------------------------------------------------------- main

def versions():
    import onnx
    import onnxruntime
    import tokenizers
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0]}


def export_gqa(out):
    """<name>/gqa: the committed checkpoint in `out` with fused attention (--attention gqa;
    fused_attention.py for Llama/Mistral, fused_gpt2.py for GPT-2)."""
    return export_rm.export_and_verify(out, os.path.join(out, "gqa"), opset=17, attention="gqa")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.dirname(HERE), help="project root (default: parent of export/)")
    ap.add_argument("--gqa_only", nargs="*", metavar="NAME", default=None,
                    help="only rewrite <name>/gqa of the named fixture models (all with gqa=True when "
                         "none is named) from their committed checkpoints; nothing else changes")
    a = ap.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    fx = os.path.join(a.root, "fixtures")
    if a.gqa_only is not None:
        for spec in MODELS:
            if spec["gqa"] and (not a.gqa_only or spec["name"] in a.gqa_only):
                print(f"== {spec['name']}/gqa")
                export_gqa(os.path.join(fx, "models", spec["name"]))
        return 0
    data_dir = os.path.join(fx, "data")
    os.makedirs(data_dir, exist_ok=True)

    raw = train_tokenizer()
    print(f"tokenizer: vocab {raw.get_vocab_size()}")
    toks = {m["name"]: hf_tokenizer(raw, m["template"], m["pad"]) for m in MODELS}

    # ---- data
    llm = llmbar_rows()
    write_jsonl(os.path.join(data_dir, "llmbar.jsonl"), llm)
    shutil.copyfile(os.path.join(LLMBAR_SRC, "LICENSE"), os.path.join(data_dir, "LICENSE-llmbar"))
    long_text = make_long_text(list(toks.values()))
    datasets = {
        "llmbar": llm,
        "edge_cases": edge_rows(long_text),
        "pref_shape": pref_rows(),
        "conversation_shape": conversation_rows(),
    }
    for stem in ("edge_cases", "pref_shape", "conversation_shape"):
        write_jsonl(os.path.join(data_dir, stem + ".jsonl"), datasets[stem])
    with open(os.path.join(data_dir, "README.md"), "w") as fh:
        fh.write(
            "# Test data\n\n"
            "- `llmbar.jsonl`: 40 real rows (first 8 of each of the 5 subsets, file order, unchanged) from the LLMBar part of the RewardBench core set (allenai/reward-bench, `filtered`); MIT licence in `LICENSE-llmbar`.\n"
            "- `edge_cases.jsonl`: synthetic core-set rows (unicode, empty/whitespace answers, literal `<s>`/`</s>`, a ~700-1000-token row, a tie).\n"
            "- `pref_shape.jsonl` (prompt = message list) and `conversation_shape.jsonl` (chosen/rejected = full message lists): synthetic rows for the other RewardBench dataset shapes.\n"
            "- `pooling.jsonl` and `pooling_rb2.jsonl`: synthetic rows for pooling rules (pad and EOS tokens inside texts and at their ends), written by `export/make_pooling_fixtures.py`.\n"
            "- All other synthetic files are generated by `export/make_fixtures.py`.\n"
        )

    vers = versions()
    for spec in MODELS:
        name = spec["name"]
        out = os.path.join(fx, "models", name)
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.makedirs(out)
        tok = toks[name]
        model = spec["build"](raw.get_vocab_size(), spec["seed"])
        model.eval()
        model.save_pretrained(out, safe_serialization=True)
        save_tokenizer(tok, out)
        print(f"== {name}: {type(model).__name__}, {sum(p.numel() for p in model.parameters())} params")
        max_diff = export_rm.export_and_verify(out, out, opset=17)
        if spec["gqa"]:  # the same checkpoint with fused attention (tests/integration/parity.rs)
            export_gqa(out)

        rm, rtok = reference.load_rm(out)
        ref_dir = os.path.join(out, "reference")
        os.makedirs(ref_dir)
        min_margin, max_b8 = float("inf"), 0.0
        for stem, rows in datasets.items():
            recs, summary = reference.score_dataset(rm, rtok, rows, batch_size=8)
            for r in recs:
                n = max(len(r["input_ids_chosen"]), len(r["input_ids_rejected"]))
                assert n <= MAX_TOKENS, f"{name}/{stem} row {r['index']} has {n} tokens"
                if stem == "edge_cases":
                    assert n <= EDGE_MAX, f"{name}/edge row {r['index']} has {n} tokens"
                if r["text_chosen"] != r["text_rejected"]:
                    min_margin = min(min_margin, abs(r["score_chosen"] - r["score_rejected"]))
                for k in ("chosen", "rejected"):
                    max_b8 = max(max_b8, abs(r[f"score_{k}"] - r[f"score_{k}_left8"]))
            write_jsonl(os.path.join(ref_dir, stem + ".jsonl"), recs, compact=True)
            with open(os.path.join(ref_dir, stem + ".summary.json"), "w") as fh:
                json.dump(summary, fh, indent=2, ensure_ascii=False)
                fh.write("\n")
            print(f"  {stem}: accuracy {summary['accuracy']:.4f} (left8 {summary['accuracy_left8']:.4f}), "
                  f"max tokens {max(max(len(r['input_ids_chosen']), len(r['input_ids_rejected'])) for r in recs)}")
        print(f"  min |score_chosen - score_rejected| over non-tie rows: {min_margin:.4e}")
        print(f"  max |batch1 - left8|: {max_b8:.4e}")
        meta = {
            "name": name,
            "architecture": type(model).__name__,
            "model_type": model.config.model_type,
            "num_parameters": int(sum(p.numel() for p in model.parameters())),
            "seed": spec["seed"],
            "vocab_size": raw.get_vocab_size(),
            "pad_token_id": int(rm.config.pad_token_id),
            "pad_token": rtok.pad_token,
            "bos_token_id": int(rtok.bos_token_id),
            "eos_token_id": int(rtok.eos_token_id),
            "onnx_opset": 17,
            "onnx_vs_torch_max_abs_diff": max_diff,
            "min_nontie_margin": min_margin,
            "max_batch1_vs_left8_abs_diff": max_b8,
            "versions": vers,
            "generated_by": "export/make_fixtures.py",
        }
        with open(os.path.join(out, "fixture.json"), "w") as fh:
            json.dump(meta, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
