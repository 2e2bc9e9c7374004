//! DPO implicit rewards against PyTorch: every fixture data file, two policy/reference pairs of
//! different architectures (Llama with GQA, GPT-2), with the reference model and in each
//! reference-free mode. References: `fixtures/models/<policy>/dpo-reference/`, written by
//! export/make_dpo_fixtures.py with export/dpo_reference.py (RewardBench's DPOInference rules).
//!
//! Tolerance: |reward - PyTorch| <= 1e-3 + 1e-6 x (sum of |log-prob sums| behind the reward). The
//! second term is float32 rounding of sums over up to 2000 tokens (|sum| reaches ~3e4, whose
//! float32 spacing is 2e-3); the PyTorch side sums in float32, this side in float64.
//! Token ids must be identical; verdicts identical.

use std::path::{Path, PathBuf};

use rewardbench::batch::Batching;
use rewardbench::config::RunConfig;
use rewardbench::dpo::{self, DpoMode, RefFree};
use rewardbench::eval::Evaluation;
use serde_json::Value;

use crate::util::{ints as ids, root};

const ABS_TOL: f64 = 1e-3;
const REL_TOL: f64 = 1e-6;
const PAIRS: [(&str, &str); 2] = [
    ("tiny-llama-policy", "tiny-llama-ref"),
    ("tiny-gpt2-policy", "tiny-gpt2-ref"),
];
const MODES: [&str; 4] = ["ref", "sum", "avg", "norm"];

fn models() -> PathBuf {
    root().join("fixtures/models")
}

fn mode(name: &str, reference: &Path) -> DpoMode {
    match name {
        "ref" => DpoMode::Reference(reference.to_path_buf()),
        "sum" => DpoMode::RefFree(RefFree::Sum),
        "avg" => DpoMode::RefFree(RefFree::Avg),
        "norm" => DpoMode::RefFree(RefFree::Norm),
        other => panic!("unknown mode {other}"),
    }
}

/// Loads ONNX Runtime once, serialized: `backend::runtime` is not safe against two threads
/// creating the environment at the same time (the second fails).
fn init_runtime() {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    rewardbench::backend::runtime(None, false).expect("ONNX Runtime (run `make setup`)");
}

fn config(policy: &Path, data: &Path, batch_size: usize) -> RunConfig {
    init_runtime();
    let mut c = RunConfig::local(policy, data);
    c.batch.batch_size = batch_size;
    c.device.threads = 1;
    c
}

fn run(policy: &Path, data: &Path, m: &DpoMode, batch_size: usize) -> Evaluation {
    dpo::evaluate(&config(policy, data, batch_size), m)
        .unwrap_or_else(|e| panic!("{} on {}: {e}", policy.display(), data.display()))
}

/// (data stem, reference rows) of one policy.
fn references(policy: &str) -> Vec<(String, Vec<Value>)> {
    let dir = models().join(policy).join("dpo-reference");
    let mut out: Vec<(String, Vec<Value>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            let rows = std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            (p.file_stem().unwrap().to_string_lossy().into_owned(), rows)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 5,
        "expected a reference for every fixture data file"
    );
    out
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The magnitude of the log-prob sums behind a reward (for the float32 term of the tolerance).
fn scale(rec: &Value, m: &str, side: &str) -> f64 {
    let p = f(&rec["policy"][format!("sum_{side}")]).abs();
    match m {
        "ref" => p + f(&rec["ref"][format!("sum_{side}")]).abs(),
        "sum" => p,
        _ => 0.0,
    }
}

/// Compares an evaluation with reference rows in mode `m`; returns the largest difference.
fn compare(ev: &Evaluation, rows: &[Value], m: &str, what: &str) -> f64 {
    compare_within(ev, rows, m, what, ABS_TOL)
}

/// [`compare`] with an absolute tolerance of `abs_tol` (plus the float32 term of the sums).
pub(crate) fn compare_within(
    ev: &Evaluation,
    rows: &[Value],
    m: &str,
    what: &str,
    abs_tol: f64,
) -> f64 {
    assert_eq!(ev.rows.len(), rows.len(), "{what}: row count");
    let mut worst = 0.0f64;
    for (i, (got, rec)) in ev.rows.iter().zip(rows).enumerate() {
        let seqs = &ev.prepared.seqs;
        let (c, r) = (ev.prepared.seq_of[i][0], ev.prepared.seq_of[i][1]);
        assert_eq!(
            seqs[c].ids,
            ids(&rec["input_ids_chosen"]),
            "{what} row {i}: chosen ids"
        );
        assert_eq!(
            seqs[r].ids,
            ids(&rec["input_ids_rejected"]),
            "{what} row {i}: rejected ids"
        );
        let want = rec["rewards"][m].as_array().unwrap();
        for (k, side, v) in [
            (0, "chosen", got.score_chosen()[0]),
            (1, "rejected", got.score_rejected()[0]),
        ] {
            let d = (f64::from(v) - f(&want[k])).abs();
            let tol = abs_tol + REL_TOL * scale(rec, m, side);
            assert!(
                d <= tol,
                "{what} row {i} {side}: reward {v} vs PyTorch {} (|diff| {d:.3e} > {tol:.3e})",
                want[k]
            );
            worst = worst.max(d);
        }
        assert_eq!(
            u8::from(got.correct),
            want[2].as_u64().unwrap() as u8,
            "{what} row {i}: verdict"
        );
    }
    worst
}

#[test]
fn rewards_match_pytorch_for_both_architectures_and_all_modes() {
    let mut worst = 0.0f64;
    let mut checked = 0;
    for (policy, reference) in PAIRS {
        let pdir = models().join(policy);
        let rdir = models().join(reference);
        for (stem, rows) in references(policy) {
            let data = root().join("fixtures/data").join(format!("{stem}.jsonl"));
            // dpo_long runs in truncation_rules_are_exercised_and_match; llmbar's ~1500-token
            // rows are slow, so the reference-free modes take its first 10 (--debug)
            if stem == "dpo_long" {
                continue;
            }
            for m in MODES {
                let mut cfg = config(&pdir, &data, 8);
                cfg.data.debug = m != "ref" && stem == "llmbar";
                let ev = dpo::evaluate(&cfg, &mode(m, &rdir)).unwrap();
                let n = ev.rows.len();
                worst = worst.max(compare(&ev, &rows[..n], m, &format!("{policy}/{stem}/{m}")));
                checked += n;
            }
        }
    }
    assert!(checked > 200, "only {checked} rows checked");
    eprintln!("DPO parity: {checked} row-modes, max |reward diff| {worst:.3e}");
}

#[test]
fn logits_and_with_past_exports_give_the_same_rewards() {
    let data = root().join("fixtures/data/pref_shape.jsonl");
    for (policy, reference) in PAIRS {
        let pdir = models().join(policy);
        let rdir = models().join(reference);
        let rows = &references(policy)
            .into_iter()
            .find(|(s, _)| s == "pref_shape")
            .unwrap()
            .1;
        // plain-logits policy export, log-softmax computed on this side
        let logits = pdir.join("logits");
        for m in MODES {
            let ev = run(&logits, &data, &mode(m, &rdir), 8);
            compare(&ev, rows, m, &format!("{policy}/logits/{m}"));
        }
        let a = run(&pdir, &data, &mode("ref", &rdir), 8);
        let b = run(&logits, &data, &mode("ref", &rdir), 8);
        for (x, y) in a.rows.iter().zip(&b.rows) {
            assert!((x.score_chosen()[0] - y.score_chosen()[0]).abs() <= 1e-3);
            assert!((x.score_rejected()[0] - y.score_rejected()[0]).abs() <= 1e-3);
        }
    }
    // Optimum-style decoder with position_ids / past_key_values.* inputs and present.* outputs
    let with_past = models().join("tiny-llama-ref/with-past");
    assert!(with_past.join("model.onnx").is_file());
    let rows = &references("tiny-llama-policy")
        .into_iter()
        .find(|(s, _)| s == "pref_shape")
        .unwrap()
        .1;
    let ev = run(
        &models().join("tiny-llama-policy"),
        &data,
        &DpoMode::Reference(with_past),
        8,
    );
    compare(&ev, rows, "ref", "tiny-llama-ref/with-past");
}

#[test]
fn batch_size_and_batching_do_not_change_rewards() {
    let data = root().join("fixtures/data/conversation_shape.jsonl");
    for (policy, reference) in PAIRS {
        let pdir = models().join(policy);
        let m = mode("ref", &models().join(reference));
        let b8 = run(&pdir, &data, &m, 8);
        let b1 = run(&pdir, &data, &m, 1);
        let mut cfg = config(&pdir, &data, 8);
        cfg.batch.batching = Batching::Reference;
        let ordered = dpo::evaluate(&cfg, &m).unwrap();
        for other in [&b1, &ordered] {
            for (i, (x, y)) in b8.rows.iter().zip(&other.rows).enumerate() {
                for (a, b) in [
                    (x.score_chosen()[0], y.score_chosen()[0]),
                    (x.score_rejected()[0], y.score_rejected()[0]),
                ] {
                    assert!((a - b).abs() <= 1e-3, "{policy} row {i}: {a} vs {b}");
                }
                assert_eq!(x.correct, y.correct, "{policy} row {i}");
            }
        }
    }
}

#[test]
fn truncation_rules_are_exercised_and_match() {
    for (policy, reference) in PAIRS {
        let rows = references(policy)
            .into_iter()
            .find(|(s, _)| s == "dpo_long")
            .expect("dpo_long reference")
            .1;
        let len = |r: &Value, side: &str| r[format!("input_ids_{side}")].as_array().unwrap().len();
        let pl = |r: &Value, side: &str| r[format!("prompt_len_{side}")].as_u64().unwrap() as usize;
        let prompt_cut = rows
            .iter()
            .filter(|r| pl(r, "chosen") == dpo::MAX_PROMPT_LENGTH)
            .count();
        let answer_cut = rows
            .iter()
            .filter(|r| {
                ["chosen", "rejected"]
                    .iter()
                    .any(|s| len(r, s) - pl(r, s) == dpo::MAX_LENGTH - dpo::MAX_PROMPT_LENGTH)
            })
            .count();
        assert!(
            prompt_cut >= 3,
            "{policy}: rows with the prompt cut to 128: {prompt_cut}"
        );
        assert!(
            answer_cut >= 2,
            "{policy}: rows with an answer cut to 1920: {answer_cut}"
        );
        let data = root().join("fixtures/data/dpo_long.jsonl");
        let ev = run(
            &models().join(policy),
            &data,
            &mode("ref", &models().join(reference)),
            8,
        );
        compare(&ev, &rows, "ref", &format!("{policy}/dpo_long"));
        assert!(ev
            .prepared
            .seqs
            .iter()
            .all(|s| s.ids.len() <= dpo::MAX_LENGTH));
    }
}

#[test]
fn prompt_boundary_merge_moves_the_last_prompt_token_to_the_answer() {
    use rewardbench::prompt::Rendered;
    use rewardbench::tokenize::{EncodeOptions, Encoder, TokenizerConfig};

    let dir = models().join("tiny-gpt2-policy");
    let cfg = TokenizerConfig::load(&dir).unwrap();
    let enc = Encoder::load(&dir, &cfg, EncodeOptions::default()).unwrap();
    assert!(
        enc.bos_id.is_none(),
        "the GPT-2 fixture has no BOS (falls back to EOS)"
    );
    let eos = i64::from(enc.eos_id.unwrap());
    let r = Rendered {
        prompt: "Human: Answer with one word: is the sky blue? ".into(),
        chosen: vec!["Human: Answer with one word: is the sky blue? Yes</s>".into()],
        rejected: vec!["Human: Answer with one word: is the sky blue? No</s>".into()],
    };
    let p = dpo::tokenize_row(&enc, eos, eos, &r, Path::new("t"), "row").unwrap();
    let prompt = enc.encode_plain(&r.prompt, "prompt").unwrap();
    assert_eq!(p.merged, [true, true]);
    // BOS (= EOS here) + the prompt without its last token (the trailing space, now part of " Yes")
    assert_eq!(p.prompt_len[0], prompt.len());
    assert_eq!(p.ids[0][0], eos);
    assert_eq!(*p.ids[0].last().unwrap(), eos);
    // the reference agrees on the data row and marks it as merged
    let rows = references("tiny-gpt2-policy")
        .into_iter()
        .find(|(s, _)| s == "dpo_long")
        .unwrap()
        .1;
    let row = rows
        .iter()
        .find(|r| r["subset"] == "dpo-trailing-space")
        .unwrap();
    assert_eq!(row["boundary_merge"], serde_json::json!([true, true]));
}

#[test]
fn prompt_repeated_in_the_answer_is_removed_everywhere() {
    let rows = references("tiny-gpt2-policy")
        .into_iter()
        .find(|(s, _)| s == "dpo_long")
        .unwrap()
        .1;
    let row = rows
        .iter()
        .find(|r| r["subset"] == "dpo-prompt-in-answer")
        .unwrap();
    // the rendered prompt occurs twice in the chosen text; both copies go (RewardBench issue 140)
    use rewardbench::prompt::Rendered;
    use rewardbench::tokenize::{EncodeOptions, Encoder, TokenizerConfig};
    let prompt = row["prompt"].as_str().unwrap();
    let text = row["text_chosen"].as_str().unwrap();
    assert_eq!(text.matches(prompt).count(), 2);
    let dir = models().join("tiny-gpt2-policy");
    let tok_cfg = TokenizerConfig::load(&dir).unwrap();
    let enc = Encoder::load(&dir, &tok_cfg, EncodeOptions::default()).unwrap();
    let eos = i64::from(enc.eos_id.unwrap());
    let r = Rendered {
        prompt: prompt.into(),
        chosen: vec![text.into()],
        rejected: vec![row["text_rejected"].as_str().unwrap().into()],
    };
    let p = dpo::tokenize_row(&enc, eos, eos, &r, Path::new("t"), "row").unwrap();
    assert_eq!(p.ids[0], ids(&row["input_ids_chosen"]));
    let kept_one = enc
        .encode_plain(&text.replacen(prompt, "", 1), "t")
        .unwrap()
        .len();
    assert!(
        p.ids[0].len() - p.prompt_len[0] < kept_one,
        "only one copy was removed"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn different_tokenizers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("ref");
    copy_dir(&models().join("tiny-llama-ref"), &other);
    let tok_path = other.join("tokenizer.json");
    let mut tok: Value =
        serde_json::from_str(&std::fs::read_to_string(&tok_path).unwrap()).unwrap();
    let vocab = tok["model"]["vocab"].as_object_mut().unwrap();
    // swap the ids of two tokens: same size, different vocabulary
    let (a, b) = (vocab["the"].clone(), vocab["and"].clone());
    vocab.insert("the".into(), b);
    vocab.insert("and".into(), a);
    std::fs::write(&tok_path, tok.to_string()).unwrap();
    let data = root().join("fixtures/data/pref_shape.jsonl");
    let err = dpo::evaluate(
        &config(&models().join("tiny-llama-policy"), &data, 8),
        &DpoMode::Reference(other.clone()),
    )
    .err()
    .expect("mismatched tokenizers must fail")
    .to_string();
    assert!(err.contains("tokenizer") && err.contains("differ"), "{err}");
    assert!(
        err.contains(&other.join("tokenizer.json").display().to_string()),
        "{err}"
    );
}

#[test]
fn a_reward_model_is_not_a_causal_lm() {
    let data = root().join("fixtures/data/pref_shape.jsonl");
    let policy = models().join("tiny-llama-policy");
    let rm = models().join("tiny-llama-rm");
    let err = dpo::evaluate(&config(&policy, &data, 8), &DpoMode::Reference(rm.clone()))
        .err()
        .expect("a reward model as reference must fail")
        .to_string();
    assert!(err.contains("not a causal language model"), "{err}");
    assert!(err.contains("sequence-classifier"), "{err}");
    let err = dpo::evaluate(&config(&rm, &data, 8), &DpoMode::RefFree(RefFree::Avg))
        .err()
        .expect("a reward model as policy must fail")
        .to_string();
    assert!(err.contains("not a causal language model"), "{err}");
    let err = dpo::evaluate(
        &config(&policy, &data, 8),
        &DpoMode::Reference(policy.clone()),
    )
    .err()
    .expect("policy == reference must fail")
    .to_string();
    assert!(err.contains("policy model itself"), "{err}");
}

#[test]
fn cli_routes_ref_model_and_ref_free_type() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rewardbench"));
    let data = root().join("fixtures/data/pref_shape.jsonl");
    let policy = models().join("tiny-llama-policy");
    let reference = models().join("tiny-llama-ref");
    let rows = references("tiny-llama-policy")
        .into_iter()
        .find(|(s, _)| s == "pref_shape")
        .unwrap()
        .1;
    for (flags, m) in [
        (vec!["--ref_model", reference.to_str().unwrap()], "ref"),
        (vec!["--ref_free_type", "norm"], "norm"),
    ] {
        let out = tempfile::tempdir().unwrap();
        let st = std::process::Command::new(&bin)
            .args(["--model", policy.to_str().unwrap(), "--dataset"])
            .arg(&data)
            .args(["--load_json", "--quiet", "--output_dir"])
            .arg(out.path())
            .args(&flags)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(out.path().join("tiny-llama-policy.json")).unwrap(),
        )
        .unwrap();
        let want_ref = if m == "ref" {
            Value::String(reference.display().to_string())
        } else {
            Value::Null
        };
        assert_eq!(summary["ref_model"], want_ref);
        let want_free = if m == "ref" {
            Value::Null
        } else {
            Value::String(m.to_string())
        };
        assert_eq!(summary["ref_free_type"], want_free);
        let lines: Vec<Value> =
            std::fs::read_to_string(out.path().join("tiny-llama-policy_outputs.jsonl"))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        for (line, rec) in lines.iter().zip(&rows) {
            let want = rec["rewards"][m].as_array().unwrap();
            assert!((f(&line["scores_chosen"]) - f(&want[0])).abs() <= ABS_TOL);
            assert_eq!(line["results"], want[2]);
        }
    }
}

/// DPO on samples with several completions: each completion's reward is its reward in a
/// one-to-one row.
#[test]
fn several_completions_get_their_pair_rewards() {
    use rewardbench::data::Dataset;
    let data = root().join("fixtures/data/pref_shape.jsonl");
    let mut multi = Dataset::load(&data).unwrap();
    for s in &mut multi.rows {
        let (c, r) = (s.chosen[0].clone(), s.rejected[0].clone());
        s.chosen = vec![c, r.clone()];
        s.rejected = vec![r];
    }
    let policy = models().join("tiny-llama-policy");
    let m = mode("ref", &models().join("tiny-llama-ref"));
    let cfg = config(&policy, &data, 2);
    let one = run(&policy, &data, &m, 2);
    let ev = dpo::evaluate_dataset(&cfg, &m, multi, None).unwrap();
    for (r, o) in ev.rows.iter().zip(&one.rows) {
        assert_eq!(r.outcome.chosen[0], o.outcome.chosen[0]);
        assert_eq!(r.outcome.chosen[1], o.outcome.rejected[0]);
        assert_eq!(r.outcome.rejected[0], o.outcome.rejected[0]);
        assert!(!r.correct, "chosen[1] ties rejected[0]");
    }
}
