#!/usr/bin/env python3
"""Regenerate the pairwise-model fixtures (deterministic, offline, ~1 min on 2 cores).

    export/.venv/bin/python export/make_pairwise_fixtures.py [--root .]

Needs `sentencepiece` (and `protobuf`) in the export venv, for the DeBERTa-v3 and T5 tokenizers.

1. writes fixtures/data/pairwise.jsonl (llmbar rows, multi-turn rows, edge cases, one long row
   that every budget truncates);
2. trains two tiny SentencePiece Unigram models on /usr/share/common-licenses and the rows, and
   converts them as transformers does (DebertaV2TokenizerFast with PairRM's
   <|source|>/<|candidate1|>/<|candidate2|>/<|candidate|> tokens; T5TokenizerFast without
   extra ids) to tokenizer.json; the Llama fixture's byte-level BPE gets a Llama-3-style chat
   template;
3. builds three tiny random checkpoints with upstream's structure: DebertaV2PairRM
   (fixtures/models/tiny-pairrm, also used as Better-PairRM), LlamaForCausalLM
   (tiny-slic), T5ForConditionalGeneration (tiny-steamshp), and exports each with
   export_pairwise.export_and_verify;
4. writes pairwise-reference[.better-pairrm].json in each folder (pairwise_reference.py), and
   Better-PairRM's template renderings (jinja2) for a few message lists.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import export_pairwise  # noqa: E402
import pairwise_reference as ref  # noqa: E402

LICENSE_DIR = "/usr/share/common-licenses"
PAIRRM_TOKENS = ["<|source|>", "<|candidate1|>", "<|candidate2|>", "<|candidate|>"]
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def license_texts():
    seen, out = set(), []
    for name in sorted(os.listdir(LICENSE_DIR)):
        rp = os.path.realpath(os.path.join(LICENSE_DIR, name))
        if os.path.isfile(rp) and rp not in seen:
            seen.add(rp)
            with open(rp, encoding="utf-8", errors="replace") as fh:
                out.append(fh.read())
    return out


def make_rows(root):
    rows = []
    with open(os.path.join(root, "fixtures/data/llmbar.jsonl")) as fh:
        llmbar = [json.loads(line) for line in fh]
    per = {}
    for r in llmbar:
        if per.setdefault(r["subset"], 0) < 2:
            per[r["subset"]] += 1
            rows.append({"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"],
                         "subset": r["subset"], "id": r["id"]})
    gpl = [t for t in license_texts() if "GNU GENERAL PUBLIC LICENSE" in t][0]
    paragraphs = [p.strip() for p in gpl.split("\n\n") if len(p.strip()) > 200]
    long_prompt = "Summarise these terms, please.\n\n" + "\n\n".join(paragraphs[:40])[:8000]
    long_answer = "\n\n".join(paragraphs[40:80])[:3000]
    edge = [
        {"prompt": [{"role": "user", "content": "Name a prime number."}, {"role": "assistant", "content": "7"},
                    {"role": "user", "content": "Another one, bigger than 10?"}],
         "chosen": "11 is prime.", "rejected": "12 is prime."},
        {"prompt": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi!"},
                    {"role": "user", "content": "Now in French."}, {"role": "assistant", "content": "Salut !"},
                    {"role": "user", "content": "And German?"}],
         "chosen": "Hallo!", "rejected": "Bonjour."},
        {"prompt": "Repeat after me: same.", "chosen": "same", "rejected": "same"},
        {"prompt": "  Spaces   and\ttabs , and  «ﬁne» ＦＵＬＬ-width, café, 東京, emoji 🙂 ?  ",
         "chosen": "Don't worry , it 's fine . Really !", "rejected": "  I can't ,  won't .  "},
        {"prompt": "Write nothing.", "chosen": "", "rejected": "Something."},
        {"prompt": "Braces {context} and a <s> BOS string [RESPONSE A] inside.",
         "chosen": "A literal {response_B} and <s>.", "rejected": "B"},
        {"prompt": long_prompt, "chosen": long_answer, "rejected": "I will not."},
    ]
    for k, r in enumerate(edge):
        rows.append({**r, "subset": "pairwise-edge", "id": 9000 + k})
    return rows


def write_jsonl(path, rows):
    with open(path, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def train_spm(prefix, corpus, vocab_size, specials):
    import sentencepiece as spm

    path = prefix + ".txt"
    with open(path, "w") as fh:
        for t in corpus:
            for line in t.splitlines():
                if line.strip():
                    fh.write(line[:2000] + "\n")
    spm.SentencePieceTrainer.train(
        input=path, model_prefix=prefix, vocab_size=vocab_size, model_type="unigram",
        num_threads=1, shuffle_input_sentence=False, input_sentence_size=0, seed_sentencepiece_size=200000,
        character_coverage=0.9995, minloglevel=2, **specials,
    )
    return prefix + ".model"


def corpus(rows):
    texts = license_texts()
    for r in rows:
        for c in ref.conversations(r):
            texts.extend(m["content"] for m in c)
    texts += ["RESPONSE A: yes\n RESPONSE B: no\n Which response is better? RESPONSE A"] * 200
    texts += ["RESPONSE B: no\n RESPONSE A: yes\n Which response is better? RESPONSE B"] * 200
    texts += ["USER: hello\nAssistant: <Response 1>\n<Response 1>: hi"] * 50
    return texts


def deberta_tokenizer(tmp, texts, out_dir):
    from transformers import DebertaV2Tokenizer, DebertaV2TokenizerFast

    model = train_spm(os.path.join(tmp, "deberta"), texts, 1000, dict(
        pad_id=0, pad_piece="[PAD]", bos_id=1, bos_piece="[CLS]", eos_id=2, eos_piece="[SEP]",
        unk_id=3, unk_piece="[UNK]"))
    slow = DebertaV2Tokenizer(vocab_file=model, do_lower_case=False)
    slow.add_special_tokens({"additional_special_tokens": PAIRRM_TOKENS})
    slow_dir = os.path.join(tmp, "deberta-slow")
    slow.save_pretrained(slow_dir)
    fast = DebertaV2TokenizerFast.from_pretrained(slow_dir, clean_up_tokenization_spaces=True)
    fast.model_max_length = 4096
    fast.save_pretrained(out_dir)
    return fast


def t5_tokenizer(tmp, texts, out_dir):
    from transformers import T5TokenizerFast

    model = train_spm(os.path.join(tmp, "t5"), texts, 1000, dict(
        pad_id=0, pad_piece="<pad>", eos_id=1, eos_piece="</s>", unk_id=2, unk_piece="<unk>", bos_id=-1))
    fast = T5TokenizerFast(vocab_file=model, extra_ids=0, legacy=True, model_max_length=4096)
    fast.save_pretrained(out_dir)
    return fast


def llama_tokenizer(root, out_dir):
    from transformers import PreTrainedTokenizerFast

    src = os.path.join(root, "fixtures/models/tiny-llama-policy/tokenizer.json")
    tok = PreTrainedTokenizerFast(tokenizer_file=src, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                  model_max_length=4096, chat_template=LLAMA3_TEMPLATE,
                                  clean_up_tokenization_spaces=False)
    tok.save_pretrained(out_dir)
    return tok


def clean_dir(d):
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)


def save_fixture_json(d, name, arch, seed, vocab, diff):
    with open(os.path.join(d, "fixture.json"), "w") as fh:
        json.dump({"name": name, "architecture": arch, "seed": seed, "vocab_size": vocab,
                   "onnx_vs_torch_max_abs_diff": diff, "generated_by": "export/make_pairwise_fixtures.py"},
                  fh, indent=2)
        fh.write("\n")


def write_reference(path, kind, data, recs, extra=None):
    out = {"kind": kind, "data": data, "generated_by": "export/make_pairwise_fixtures.py (pairwise_reference.py)",
           "accuracy": float(np.mean([r["result"] for r in recs])), "rows": recs}
    out.update(extra or {})
    # one row per line, so that the file stays small and diffs stay readable
    rows = out.pop("rows")
    with open(path, "w") as fh:
        head = json.dumps(out, indent=1, ensure_ascii=False)
        fh.write(head[:-2] + ',\n "rows": [\n')
        fh.write(",\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
        fh.write("\n ]\n}\n")


def build_pairrm(root, tmp, rows):
    from transformers import DebertaV2Config

    d = os.path.join(root, "fixtures/models/tiny-pairrm")
    clean_dir(d)
    tok = deberta_tokenizer(tmp, corpus(rows), d)
    ids = {t: tok.convert_tokens_to_ids(t) for t in PAIRRM_TOKENS}
    cfg = DebertaV2Config(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        hidden_act="gelu", max_position_embeddings=512, type_vocab_size=0, initializer_range=0.2,
        layer_norm_eps=1e-7, relative_attention=True, max_relative_positions=-1, position_buckets=32,
        norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"], position_biased_input=False,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    )
    cfg.n_tasks = 2
    cfg.drop_out = 0.05
    cfg.sep_token_id = tok.sep_token_id
    cfg.source_prefix_id = ids["<|source|>"]
    cfg.cand1_prefix_id = ids["<|candidate1|>"]
    cfg.cand2_prefix_id = ids["<|candidate2|>"]
    cfg.cand_prefix_id = ids["<|candidate|>"]
    torch.manual_seed(21)
    model = export_pairwise._deberta_pairrm_class()(cfg)
    model.save_pretrained(d, safe_serialization=True)
    model = export_pairwise.load_pairrm(d)
    diff = export_pairwise.export_and_verify("pairrm", d, d, model=model)
    save_fixture_json(d, "tiny-pairrm", "DebertaV2PairRM", 21, len(tok), diff)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(d)
    data = "fixtures/data/pairwise.jsonl"
    write_reference(os.path.join(d, "pairwise-reference.json"), "pairrm", data,
                    ref.score_rows("pairrm", model, tok, rows))
    cases = [
        [{"role": "user", "content": "  hi  "}],
        [{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "Q1"},
         {"role": "assistant", "content": "A1\n"}, {"role": "user", "content": "Q2"}],
        [{"role": "user", "content": "a"}, {"role": "user_context", "content": "ctx"}, {"role": "tool", "content": "x"},
         {"role": "user", "content": "b"}],
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "last"}],
    ]
    import jinja2

    tpl = jinja2.Environment().from_string(ref.BETTER_PAIRRM_TEMPLATE)
    renders = [{"messages": c, "rendered": tpl.render(messages=c, add_generation_prompt=True)} for c in cases]
    tok = AutoTokenizer.from_pretrained(d)
    write_reference(os.path.join(d, "pairwise-reference.better-pairrm.json"), "better-pairrm", data,
                    ref.score_rows("better-pairrm", model, tok, rows), {"template_cases": renders})
    # the fast tokenizer (tokenizer.json) is what transformers and the evaluator load
    os.remove(os.path.join(d, "spm.model"))


def build_slic(root, tmp, rows):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    d = os.path.join(root, "fixtures/models/tiny-slic")
    clean_dir(d)
    tok = llama_tokenizer(root, d)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=4096, rope_theta=10000.0, rms_norm_eps=1e-5,
        initializer_range=0.2, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=False, use_cache=False, torch_dtype="float32",
    )
    torch.manual_seed(31)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(d, safe_serialization=True)
    model = export_pairwise.load_causal_lm(d)
    diff = export_pairwise.export_and_verify("slic", d, d, model=model)
    save_fixture_json(d, "tiny-slic", "LlamaForCausalLM", 31, len(tok), diff)
    tok = AutoTokenizer.from_pretrained(d)
    context_tok = AutoTokenizer.from_pretrained(d)
    context_tok.chat_template = ref.SLIC_CONTEXT_TEMPLATE
    write_reference(os.path.join(d, "pairwise-reference.json"), "slic", "fixtures/data/pairwise.jsonl",
                    ref.score_rows("slic", model, tok, rows, context_tok))


@torch.no_grad()
def shp_head(model, tok, rows):
    """A random head rarely decodes "A" or "B" first, and their logits differ by a constant
    (the decoder's output has a large common direction). Make the two rows of the head large
    (so the greedy first token is one of them) and let them differ along the direction in which
    the fixture's first-step hidden states vary most, orthogonal to their mean: which of the
    two wins then depends on the input."""
    model.eval()
    hs = []
    hook = model.lm_head.register_forward_hook(lambda m, i, o: hs.append(i[0][0, 0].clone()))
    for r in rows:
        c, j = ref.conversations(r)
        for a, b in ((c, j), (j, c)):
            ids = torch.tensor([ref.shp_ids(tok, a, b)[0]])
            model(input_ids=ids, decoder_input_ids=torch.zeros((1, 1), dtype=torch.int64))
    hook.remove()
    h = torch.stack(hs).double()
    mean = h.mean(0)
    unit = mean / mean.norm()
    u = torch.linalg.svd(h - mean, full_matrices=False).Vh[0]
    delta = u - (u @ unit) * unit
    delta = delta * (3.0 / ((h - mean) @ delta).std())
    a, b = ref.single_token(tok, "A"), ref.single_token(tok, "B")
    w0 = model.lm_head.weight[a].double() * 8.0
    model.lm_head.weight[a] = (w0 + delta / 2).float()
    model.lm_head.weight[b] = (w0 - delta / 2).float()


def build_steamshp(root, tmp, rows):
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    d = os.path.join(root, "fixtures/models/tiny-steamshp")
    clean_dir(d)
    tok = t5_tokenizer(tmp, corpus(rows), d)
    cfg = T5Config(
        vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
        relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.1,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False, initializer_factor=1.0,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id,
        use_cache=False,
    )
    torch.manual_seed(41)
    model = T5ForConditionalGeneration(cfg)
    shp_head(model, tok, rows)
    model.save_pretrained(d, safe_serialization=True)
    model = export_pairwise.load_t5(d)
    diff = export_pairwise.export_and_verify("steamshp", d, d, model=model)
    save_fixture_json(d, "tiny-steamshp", "T5ForConditionalGeneration", 41, len(tok), diff)
    tok = AutoTokenizer.from_pretrained(d)
    write_reference(os.path.join(d, "pairwise-reference.json"), "steamshp", "fixtures/data/pairwise.jsonl",
                    ref.score_rows("steamshp", model, tok, rows))
    os.remove(os.path.join(d, "spiece.model"))  # tokenizer.json is what is loaded


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.dirname(HERE))
    ap.add_argument("--only", choices=("pairrm", "slic", "steamshp"))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = make_rows(a.root)
    write_jsonl(os.path.join(a.root, "fixtures/data/pairwise.jsonl"), rows)
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in (("pairrm", build_pairrm), ("slic", build_slic), ("steamshp", build_steamshp)):
            if a.only in (None, name):
                build(a.root, tmp, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
