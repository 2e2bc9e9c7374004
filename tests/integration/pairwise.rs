//! Pairwise preference models against PyTorch: PairRM and Better-PairRM (tiny DeBERTa-v3 with
//! upstream's `DebertaV2PairRM` head), SlicPairPM (tiny Llama), SteamSHP (tiny T5), each on
//! every row of fixtures/data/pairwise.jsonl in both orders. References:
//! `fixtures/models/<model>/pairwise-reference*.json`, written by
//! export/make_pairwise_fixtures.py (export/pairwise_reference.py builds the inputs as
//! RewardBench's pipelines do and runs the PyTorch checkpoints); every reference was compared
//! with RewardBench 0.1.4's own pipeline classes on the same checkpoints by
//! export/pairwise_crosscheck.py (`pairwise-crosscheck.json`).
//!
//! Token ids must be identical, scores within 1e-4, verdicts identical.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rewardbench::config::{PairwiseKind, RunConfig, ScorerKind};
use rewardbench::scorer::pairwise;
use serde_json::Value;

use crate::util::{ints, jsonl, rewardbench, root, run_exporter, stderr};

const TOL: f64 = 1e-4;

/// (kind, fixture model, reference file)
const CASES: [(PairwiseKind, &str, &str); 4] = [
    (
        PairwiseKind::PairRm,
        "tiny-pairrm",
        "pairwise-reference.json",
    ),
    (
        PairwiseKind::BetterPairRm,
        "tiny-pairrm",
        "pairwise-reference.better-pairrm.json",
    ),
    (
        PairwiseKind::SlicPairPm,
        "tiny-slic",
        "pairwise-reference.json",
    ),
    (
        PairwiseKind::SteamShp,
        "tiny-steamshp",
        "pairwise-reference.json",
    ),
];

fn model(name: &str) -> PathBuf {
    root().join("fixtures/models").join(name)
}

fn data() -> PathBuf {
    root().join("fixtures/data/pairwise.jsonl")
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Loads ONNX Runtime once, serialized (creating its environment is not thread-safe).
fn init_runtime() {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    rewardbench::backend::runtime(None, false).expect("ONNX Runtime (run `make setup`)");
}

fn config_at(kind: PairwiseKind, dir: &Path, batch_size: usize) -> RunConfig {
    init_runtime();
    let mut c = RunConfig::local(dir, data());
    c.model.scorer = ScorerKind::Pairwise(kind);
    c.batch.batch_size = batch_size;
    c.batch.max_batch_tokens = 4096;
    c.device.threads = 1;
    c
}

/// What a run gave per row: both orders' ids, the prompt and texts, the scores, the verdict.
struct Row {
    ab: Vec<i64>,
    ba: Vec<i64>,
    prompt: String,
    text_ab: String,
    text_ba: String,
    chosen: f32,
    rejected: f32,
    correct: bool,
}

fn score(kind: PairwiseKind, name: &str, batch_size: usize) -> Vec<Row> {
    score_at(kind, &model(name), batch_size)
}

fn score_at(kind: PairwiseKind, dir: &Path, batch_size: usize) -> Vec<Row> {
    let cfg = config_at(kind, dir, batch_size);
    let dataset = rewardbench::data::Dataset::load(&data()).unwrap();
    let prepared = pairwise::prepare(&cfg, kind, dataset).unwrap();
    let p = &prepared.prepared;
    let mut rows: Vec<Row> = p
        .seq_of
        .iter()
        .zip(&p.rendered)
        .map(|(s, r)| Row {
            ab: p.seqs[s[0]].ids.clone(),
            ba: p.seqs[s[1]].ids.clone(),
            prompt: r.prompt.clone(),
            text_ab: r.chosen[0].clone(),
            text_ba: r.rejected[0].clone(),
            chosen: f32::NAN,
            rejected: f32::NAN,
            correct: false,
        })
        .collect();
    let scored = pairwise::run(prepared, &cfg).unwrap();
    assert_eq!(scored.ev.rows.len(), rows.len());
    for (row, r) in rows.iter_mut().zip(&scored.ev.rows) {
        row.chosen = r.score_chosen()[0];
        row.rejected = r.score_rejected()[0];
        row.correct = r.correct;
    }
    rows
}

/// Each case scored once per test process (batch size 8).
fn scored(case: usize) -> &'static [Row] {
    static RUNS: [OnceLock<Vec<Row>>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let (kind, name, _) = CASES[case];
    RUNS[case].get_or_init(|| score(kind, name, 8))
}

/// The reference texts the prompt (source, context or post) is compared with.
fn prompt_key(kind: PairwiseKind) -> &'static str {
    match kind {
        PairwiseKind::PairRm | PairwiseKind::BetterPairRm => "source",
        PairwiseKind::SlicPairPm => "context",
        PairwiseKind::SteamShp => "post",
    }
}

fn matches_pytorch(case: usize) {
    let (kind, name, file) = CASES[case];
    let dir = model(name);
    let reference = read_json(&dir.join(file));
    assert_eq!(reference["kind"], kind.label());
    let want = reference["rows"].as_array().unwrap();
    let got = scored(case);
    assert_eq!(got.len(), want.len());
    let mut worst = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g.ab,
            ints(&w["ids_ab"]),
            "{} row {i}: chosen-first ids",
            kind.label()
        );
        assert_eq!(
            g.ba,
            ints(&w["ids_ba"]),
            "{} row {i}: rejected-first ids",
            kind.label()
        );
        let key = prompt_key(kind);
        assert_eq!(
            g.prompt,
            w["texts_ab"][key].as_str().unwrap(),
            "{} row {i}: {key}",
            kind.label()
        );
        if let Some(t) = w["texts_ab"]["text"].as_str() {
            assert_eq!(g.text_ab, t, "{} row {i}: chosen-first text", kind.label());
            assert_eq!(g.text_ba, w["texts_ba"]["text"].as_str().unwrap());
        }
        for (x, y) in [
            (g.chosen, &w["score_chosen"]),
            (g.rejected, &w["score_rejected"]),
        ] {
            let d = (f64::from(x) - y.as_f64().unwrap()).abs();
            worst = worst.max(d);
            assert!(
                d <= TOL,
                "{} row {i}: score {x} vs PyTorch {y} (diff {d:e})",
                kind.label()
            );
        }
        assert_eq!(
            g.correct,
            w["result"].as_i64() == Some(1),
            "{} row {i}: verdict",
            kind.label()
        );
    }
    let acc = got.iter().filter(|r| r.correct).count() as f64 / got.len() as f64;
    assert!((acc - reference["accuracy"].as_f64().unwrap()).abs() < 1e-12);
    eprintln!(
        "{}: {} rows, max |score - PyTorch| {worst:.2e}",
        kind.label(),
        got.len()
    );
    // The reference itself was cross-checked with RewardBench's own pipeline class.
    let cross = read_json(&dir.join("pairwise-crosscheck.json"));
    let check = &cross["checks"][kind.label()];
    assert_eq!(check["reference"], file, "{}", kind.label());
    assert_eq!(check["ok"], true, "{}: {check}", kind.label());
}

#[test]
fn pairrm_matches_pytorch() {
    matches_pytorch(0);
}

#[test]
fn better_pairrm_matches_pytorch() {
    matches_pytorch(1);
}

#[test]
fn slic_matches_pytorch() {
    matches_pytorch(2);
}

#[test]
fn steamshp_matches_pytorch() {
    matches_pytorch(3);
}

/// Right padding does not change an input's output: batch size 1 gives the batch-8 scores
/// (to float32 rounding of T5's logits, which reach ~140 here) and the same verdicts.
/// export_pairwise.py (through export/weights.py) on each fixture's committed checkpoint: the
/// new graph scores every row as the committed one does, to the bit. Needs the export venv.
#[test]
fn the_exporter_rewrites_each_fixture_to_the_same_scores() {
    let dir = tempfile::tempdir().unwrap();
    for (case, cli) in [(0, "pairrm"), (2, "slic"), (3, "steamshp")] {
        let (kind, name, _) = CASES[case];
        let out = dir.path().join(name);
        let extra = ["--kind", cli];
        if run_exporter("pairwise", "export_pairwise.py", &model(name), &out, &extra).is_none() {
            return;
        }
        let ours = score_at(kind, &out, 8);
        for (i, (a, b)) in ours.iter().zip(scored(case)).enumerate() {
            assert_eq!(a.ab, b.ab, "{name} row {i}: ids");
            assert_eq!(
                (a.chosen.to_bits(), a.rejected.to_bits(), a.correct),
                (b.chosen.to_bits(), b.rejected.to_bits(), b.correct),
                "{name} row {i}: re-exported vs committed graph"
            );
        }
        assert_eq!(ours.len(), scored(case).len(), "{name}");
    }
}

#[test]
fn scores_do_not_depend_on_the_batch() {
    let (kind, name, _) = CASES[3];
    let one = score(kind, name, 1);
    for (i, (a, b)) in one.iter().zip(scored(3)).enumerate() {
        for (x, y) in [(a.chosen, b.chosen), (a.rejected, b.rejected)] {
            assert!((x - y).abs() <= 1e-4, "row {i}: {x} vs {y}");
        }
        assert_eq!(a.correct, b.correct, "row {i}");
    }
}

/// Better-PairRM's source template renders as a default `jinja2.Environment()` renders it
/// (no trim / lstrip blocks; its indentation included).
#[test]
fn better_pairrm_template_renders_as_jinja2() {
    use rewardbench::data::Message;
    use rewardbench::template::{JinjaOptions, JinjaTemplate};

    let reference = read_json(&model("tiny-pairrm").join("pairwise-reference.better-pairrm.json"));
    let t = JinjaTemplate::with_options(
        pairwise::inputs::BETTER_PAIRRM_TEMPLATE,
        Default::default(),
        "test",
        "BETTER_PAIRRM_TEMPLATE",
        JinjaOptions {
            trim_blocks: false,
            date: None,
        },
    )
    .unwrap();
    let cases = reference["template_cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for c in cases {
        let messages: Vec<Message> = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        assert_eq!(
            t.render(&messages, true).unwrap(),
            c["rendered"].as_str().unwrap()
        );
    }
}

/// The CLI finds the kind in the export's pairwise.json, writes the usual reports with the
/// pairwise scores, and a second run is answered from its score store.
#[test]
fn cli_reports_and_resumes() {
    let dir = model("tiny-steamshp");
    let reference = read_json(&dir.join("pairwise-reference.json"));
    let out = tempfile::tempdir().unwrap();
    let rows = data();
    let args = [
        "--model",
        dir.to_str().unwrap(),
        "--dataset",
        rows.to_str().unwrap(),
        "--output_dir",
        out.path().to_str().unwrap(),
        "--max_batch_tokens",
        "4096",
    ];
    let o = rewardbench(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = read_json(&out.path().join("tiny-steamshp.json"));
    assert_eq!(summary["model_type"], "Custom Classifier");
    assert_eq!(summary["pairwise"]["kind"], "steamshp");
    assert_eq!(summary["chat_template"], "steamshp");
    assert_eq!(summary["accuracy"], reference["accuracy"]);
    let outputs = jsonl(&out.path().join("tiny-steamshp_outputs.jsonl"));
    let want = reference["rows"].as_array().unwrap();
    assert_eq!(outputs.len(), want.len());
    for (i, (g, w)) in outputs.iter().zip(want).enumerate() {
        assert_eq!(g["results"], w["result"], "row {i}");
        assert_eq!(
            g["sample_hash"], w["sample_hash"],
            "row {i}: the order comes from it"
        );
        for (k, r) in [
            ("scores_chosen", "score_chosen"),
            ("scores_rejected", "score_rejected"),
        ] {
            let d = (g[k].as_f64().unwrap() - w[r].as_f64().unwrap()).abs();
            assert!(d <= TOL, "row {i} {k}: {d:e}");
        }
        assert_eq!(g["prompt"], w["texts_ab"]["post"], "row {i}");
    }
    let csv = std::fs::read_to_string(out.path().join("tiny-steamshp_scores.csv")).unwrap();
    assert_eq!(csv.lines().count(), want.len() + 1);
    let store = out.path().join("tiny-steamshp.steamshp.store.jsonl");
    assert!(store.is_file());
    let first = std::fs::read(out.path().join("tiny-steamshp_outputs.jsonl")).unwrap();
    let o = rewardbench(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = read_json(&out.path().join("tiny-steamshp_run.json"));
    assert_eq!(run["reused_calls"], run["model_calls"], "{run}");
    assert_eq!(
        first,
        std::fs::read(out.path().join("tiny-steamshp_outputs.jsonl")).unwrap()
    );
}

fn fails(args: &[&str], wanted: &[&str]) {
    let o = rewardbench(args);
    let err = stderr(&o);
    assert!(!o.status.success(), "{args:?} succeeded");
    for w in wanted {
        assert!(err.contains(w), "{args:?}: `{w}` not in: {err}");
    }
}

/// What pairwise models cannot do is refused before any compute, with the reason.
#[test]
fn refusals_name_the_reason() {
    let m = model("tiny-steamshp");
    let m = m.to_str().unwrap();
    let d = data();
    let d = d.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let base = ["--model", m, "--dataset", d, "--output_dir", o];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    fails(
        &with(&["--shard", "0/2"]),
        &["--shard is not supported for pairwise models"],
    );
    fails(
        &with(&["--ref_free_type", "sum"]),
        &["pairwise model (steamshp)", "--ref_free_type"],
    );
    fails(
        &with(&["--pooling", "last_attended"]),
        &["--pooling", "fixed by its kind"],
    );
    let mut v2 = vec!["v2"];
    v2.extend(with(&[]));
    fails(
        &v2,
        &[
            "rewardbench v2 does not score pairwise models",
            "NotImplementedError",
        ],
    );
    let rb2 = root().join("fixtures/data/rb2.jsonl");
    fails(
        &[
            "--model",
            m,
            "--dataset",
            rb2.to_str().unwrap(),
            "--output_dir",
            o,
        ],
        &["best-of-N rows are not scored by pairwise models"],
    );
    let inst = root().join("fixtures/data/instructions.jsonl");
    fails(
        &[
            "--model",
            m,
            "--dataset",
            inst.to_str().unwrap(),
            "--output_dir",
            o,
        ],
        &["instruction data", "compares two"],
    );
    // A classifier export named as pairwise: the contract says what is missing (a few
    // short rows: the long one does not fit this model's positions).
    let llama = model("tiny-llama-rm");
    let short = out.path().join("short.jsonl");
    let text = std::fs::read_to_string(data()).unwrap();
    std::fs::write(&short, text.lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
    fails(
        &[
            "--model",
            llama.to_str().unwrap(),
            "--pairwise",
            "slic",
            "--dataset",
            short.to_str().unwrap(),
            "--output_dir",
            o,
        ],
        &["is not a slic export", "next_token_logits"],
    );
    // The wrong kind for an export: what the kind needs is named.
    fails(
        &with(&["--pairwise", "pairrm"]),
        &["config.json: no `source_prefix_id`"],
    );
    let slic = model("tiny-slic");
    fails(
        &[
            "--model",
            slic.to_str().unwrap(),
            "--pairwise",
            "steamshp",
            "--dataset",
            short.to_str().unwrap(),
            "--output_dir",
            o,
        ],
        &[
            "is not a steamshp export",
            "first_token_logits",
            "next_token_logits",
        ],
    );
}

/// PairRM's pipeline asserts alternating user / assistant turns: a system turn is an error
/// that names the row.
#[test]
fn pairrm_needs_alternating_turns() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("rows.jsonl");
    std::fs::write(
        &rows,
        r#"{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}], "chosen": "Hi.", "rejected": "No."}
"#,
    )
    .unwrap();
    let m = model("tiny-pairrm");
    let args = [
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        rows.to_str().unwrap(),
        "--output_dir",
        dir.path().to_str().unwrap(),
    ];
    fails(&args, &["rows.jsonl: line 1", "turn 0 has role `system`"]);
    // Better-PairRM's template takes a system turn.
    let mut better = args.to_vec();
    better.extend(["--pairwise", "better-pairrm", "--cache", "false"]);
    let o = rewardbench(&better);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A damaged or unknown pairwise.json is an error naming the file.
#[test]
fn contract_file_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pairwise.json");
    assert!(pairwise::detect(dir.path()).unwrap().is_none());
    std::fs::write(&f, r#"{"rewardbench_pairwise": 1, "kind": "nope"}"#).unwrap();
    let e = pairwise::detect(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("pairwise.json") && e.contains("unknown kind `nope`"),
        "{e}"
    );
    std::fs::write(&f, r#"{"rewardbench_pairwise": 2, "kind": "pairrm"}"#).unwrap();
    let e = pairwise::detect(dir.path()).unwrap_err().to_string();
    assert!(e.contains("contract version 2"), "{e}");
    std::fs::write(
        &f,
        r#"{"rewardbench_pairwise": 1, "kind": "slic", "output": "logits"}"#,
    )
    .unwrap();
    let e = pairwise::detect(dir.path()).unwrap_err().to_string();
    assert!(e.contains("next_token_logits"), "{e}");
    for (k, m) in [
        ("pairrm", "tiny-pairrm"),
        ("slic", "tiny-slic"),
        ("steamshp", "tiny-steamshp"),
    ] {
        let got = pairwise::detect(&model(m))
            .unwrap()
            .map(PairwiseKind::label);
        assert_eq!(got, Some(k));
    }
}
