//! Hugging Face Optimum's exports, run as Optimum wrote them, against PyTorch.
//!
//! The committed fixtures `fixtures/models/tiny-llama-{rm,policy,ref}-optimum` and
//! `tiny-llama-ref-optimum-legacy` are exactly what `optimum-cli export onnx` (optimum 1.25.3,
//! export/requirements-optimum.txt) writes for the committed tiny checkpoints
//! (export/make_optimum_fixtures.py; each folder's fixture.json has the command): a
//! text-classification reward model, a text-generation decoder without past, one with past
//! (`past_key_values.*` in, `present.*` out) and the `--legacy` three-file decoder export
//! (`decoder_model.onnx`, `decoder_with_past_model.onnx`, `decoder_model_merged.onnx` with
//! `use_cache_branch`). They are scored against the source checkpoints' PyTorch references
//! (`tiny-llama-rm/reference/`, `tiny-llama-policy/dpo-reference/`) without Python.
//!
//! Where export/.venv has Optimum (`make optimum-venv`), the last test runs optimum-cli on the
//! checkpoints into a temporary folder and scores that too; without the venv it says SKIPPED
//! loudly (with CI set and the venv present, a missing Optimum fails).
//!
//! Tolerances: reward-model scores within 1e-4 of PyTorch; DPO rewards within 1e-4 plus the
//! float32 rounding of PyTorch's log-prob sums (1e-6 x their magnitude, as in `dpo.rs`: a
//! 1500-token answer's sum is ~1e4, whose float32 spacing is ~1e-3); verdicts identical.

use std::path::{Path, PathBuf};
use std::process::Command;

use rewardbench::backend::Device;
use rewardbench::config::RunConfig;
use rewardbench::dpo::{self, DpoMode, RefFree};
use rewardbench::eval::{self, Evaluation};
use rewardbench::model::ModelFiles;
use serde_json::Value;

use crate::util::{export_python, jsonl, rewardbench, root, stderr};

const RM_TOL: f64 = 1e-4;
/// DPO rewards: 1e-4 plus dpo.rs's float32 term (1e-6 x the log-prob sums).
const DPO_ABS_TOL: f64 = 1e-4;
/// The reward model's reference files (rb2 is RewardBench 2's, scored by rb2.rs).
const RM_STEMS: [&str; 4] = ["conversation_shape", "edge_cases", "llmbar", "pref_shape"];
/// Files the tokenizer and config come in, beside the graph.
const SIDE: [&str; 4] = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

fn models() -> PathBuf {
    root().join("fixtures/models")
}

fn data(stem: &str) -> PathBuf {
    root().join("fixtures/data").join(format!("{stem}.jsonl"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Loads ONNX Runtime once, serialized (two threads creating the environment at once fail).
fn init_runtime() {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    rewardbench::backend::runtime(None, false).expect("ONNX Runtime (run `make setup`)");
}

fn config(model: &Path, data: &Path) -> RunConfig {
    init_runtime();
    let mut c = RunConfig::local(model, data);
    c.batch.batch_size = 8;
    c.device.threads = 1;
    c
}

/// Scores `model` on `stem` and compares every row with tiny-llama-rm's PyTorch reference;
/// returns the evaluation and the largest difference.
fn check_rm(model: &Path, stem: &str) -> (Evaluation, f64) {
    let refs = jsonl(&models().join(format!("tiny-llama-rm/reference/{stem}.jsonl")));
    let ev = eval::evaluate(&config(model, &data(stem)))
        .unwrap_or_else(|e| panic!("{} on {stem}: {e}", model.display()));
    assert_eq!(ev.rows.len(), refs.len(), "{stem}: row count");
    let mut worst = 0.0f64;
    for (i, (row, r)) in ev.rows.iter().zip(&refs).enumerate() {
        for (ours, key) in [
            (row.score_chosen(), "score_chosen"),
            (row.score_rejected(), "score_rejected"),
        ] {
            let d = (f64::from(ours[0]) - f(&r[key])).abs();
            assert!(
                d <= RM_TOL,
                "{} {stem} row {i} {key}: {} vs PyTorch {} (|diff| {d:.3e})",
                model.display(),
                ours[0],
                r[key]
            );
            worst = worst.max(d);
        }
        assert_eq!(
            u8::from(row.correct),
            r["result"].as_u64().unwrap() as u8,
            "{} {stem} row {i}: verdict",
            model.display()
        );
    }
    (ev, worst)
}

/// The DPO reference stems of tiny-llama-policy.
fn dpo_stems() -> Vec<String> {
    let dir = models().join("tiny-llama-policy/dpo-reference");
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    out.sort();
    assert!(out.len() >= 5, "expected a DPO reference per data file");
    out
}

/// Runs policy `policy` in `mode` (`ref` with reference `reference`, else reference-free) on
/// `stem` and compares with tiny-llama-policy's PyTorch rewards; the largest difference.
fn check_dpo(policy: &Path, reference: &Path, mode: &str, stem: &str) -> f64 {
    let rows = jsonl(&models().join(format!("tiny-llama-policy/dpo-reference/{stem}.jsonl")));
    let m = match mode {
        "ref" => DpoMode::Reference(reference.to_path_buf()),
        "sum" => DpoMode::RefFree(RefFree::Sum),
        "avg" => DpoMode::RefFree(RefFree::Avg),
        "norm" => DpoMode::RefFree(RefFree::Norm),
        other => panic!("unknown mode {other}"),
    };
    let what = format!(
        "{} / {} {mode} on {stem}",
        policy.display(),
        reference.display()
    );
    let ev =
        dpo::evaluate(&config(policy, &data(stem)), &m).unwrap_or_else(|e| panic!("{what}: {e}"));
    crate::dpo::compare_within(&ev, &rows, mode, &what, DPO_ABS_TOL)
}

/// A copy of `src`'s tokenizer and config with `graphs` (name in src, name in the copy).
fn copy_with(src: &Path, dst: &Path, graphs: &[(&str, &str)]) {
    for f in SIDE {
        std::fs::create_dir_all(dst).unwrap();
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    for (from, to) in graphs {
        let to = dst.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(from), to).unwrap();
    }
}

#[test]
fn the_committed_optimum_text_classification_export_matches_pytorch() {
    let m = models().join("tiny-llama-rm-optimum");
    let mut worst = 0.0f64;
    for stem in RM_STEMS {
        worst = worst.max(check_rm(&m, stem).1);
    }
    // The same graph in a hub repo's layout (onnx/model.onnx, tokenizer at the root).
    let tmp = tempfile::tempdir().unwrap();
    let hub = tmp.path().join("hub-layout");
    copy_with(&m, &hub, &[("model.onnx", "onnx/model.onnx")]);
    let files = ModelFiles::locate(&hub, Device::Cpu).unwrap();
    assert_eq!(files.onnx, hub.join("onnx/model.onnx"));
    let (a, _) = check_rm(&m, "pref_shape");
    let (b, d) = check_rm(&hub, "pref_shape");
    worst = worst.max(d);
    for (x, y) in a.rows.iter().zip(&b.rows) {
        assert_eq!(x.score_chosen(), y.score_chosen());
        assert_eq!(x.score_rejected(), y.score_rejected());
    }
    eprintln!("Optimum text-classification export vs PyTorch: max |score diff| {worst:.3e}");
}

#[test]
fn the_cli_scores_the_optimum_folder_as_written() {
    let tmp = tempfile::tempdir().unwrap();
    let m = models().join("tiny-llama-rm-optimum");
    let o = rewardbench(&[
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        data("llmbar").to_str().unwrap(),
        "--load_json",
        "--output_dir",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("tiny-llama-rm-optimum.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["evaluator"]["onnx_model"], "model.onnx");
    // every row's scores, as written, against PyTorch's
    let refs = jsonl(&models().join("tiny-llama-rm/reference/llmbar.jsonl"));
    let csv = std::fs::read_to_string(tmp.path().join("tiny-llama-rm-optimum_scores.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("index,id,subset,score_chosen,score_rejected,result")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), refs.len());
    for (i, (row, r)) in rows.iter().zip(&refs).enumerate() {
        for (col, key) in [(3, "score_chosen"), (4, "score_rejected")] {
            let ours: f64 = row[col].parse().unwrap();
            let d = (ours - f(&r[key])).abs();
            assert!(d <= RM_TOL, "row {i} {key}: {ours} vs PyTorch {}", r[key]);
        }
        assert_eq!(row[5], r["result"].to_string(), "row {i}: verdict");
    }
    assert_eq!(summary["accuracy"], 0.5);
}

#[test]
fn a_text_generation_export_run_as_a_reward_model_says_what_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    for m in ["tiny-llama-policy-optimum", "tiny-llama-ref-optimum"] {
        let o = rewardbench(&[
            "--model",
            models().join(m).to_str().unwrap(),
            "--dataset",
            data("pref_shape").to_str().unwrap(),
            "--output_dir",
            tmp.path().join(m).to_str().unwrap(),
        ]);
        let e = stderr(&o);
        assert!(!o.status.success());
        assert!(
            e.contains("are a causal language model's")
                && e.contains("--ref_model")
                && e.contains("--task text-classification"),
            "{m}: {e}"
        );
    }
}

#[test]
fn the_committed_optimum_decoder_exports_match_pytorch_dpo() {
    // policy: text-generation (no past: position_ids in, logits out);
    // reference: text-generation-with-past (empty past_key_values.* fed, present.* not computed)
    let policy = models().join("tiny-llama-policy-optimum");
    let reference = models().join("tiny-llama-ref-optimum");
    let mut worst = 0.0f64;
    let mut checked = 0;
    for stem in dpo_stems() {
        worst = worst.max(check_dpo(&policy, &reference, "ref", &stem));
        checked += 1;
    }
    // the reference-free modes: the policy alone
    for mode in ["sum", "avg", "norm"] {
        for stem in ["pref_shape", "conversation_shape"] {
            worst = worst.max(check_dpo(&policy, &reference, mode, stem));
        }
    }
    eprintln!(
        "Optimum text-generation exports (with and without past) vs PyTorch DPO: {checked} data files, max |reward diff| {worst:.3e}"
    );
}

#[test]
fn optimum_legacy_decoders_match_pytorch_dpo() {
    let policy = models().join("tiny-llama-policy-optimum");
    let legacy = models().join("tiny-llama-ref-optimum-legacy");
    // as written: three graphs, no model.onnx; the decoder without past is taken
    let files = ModelFiles::locate(&legacy, Device::Cpu).unwrap();
    assert_eq!(files.onnx, legacy.join("decoder_model.onnx"));
    let mut worst = 0.0f64;
    for stem in ["pref_shape", "conversation_shape", "edge_cases"] {
        worst = worst.max(check_dpo(&policy, &legacy, "ref", stem));
    }
    // the merged decoder alone, in a hub repo's layout: use_cache_branch false, empty past
    let tmp = tempfile::tempdir().unwrap();
    let merged = tmp.path().join("merged");
    copy_with(
        &legacy,
        &merged,
        &[(
            "decoder_model_merged.onnx",
            "onnx/decoder_model_merged.onnx",
        )],
    );
    let files = ModelFiles::locate(&merged, Device::Cpu).unwrap();
    assert_eq!(files.onnx, merged.join("onnx/decoder_model_merged.onnx"));
    for stem in ["pref_shape", "conversation_shape"] {
        worst = worst.max(check_dpo(&policy, &merged, "ref", stem));
    }
    // a generation step alone is no graph to score: the message names what was looked for
    let step = tmp.path().join("step");
    copy_with(
        &legacy,
        &step,
        &[(
            "decoder_with_past_model.onnx",
            "decoder_with_past_model.onnx",
        )],
    );
    let e = ModelFiles::locate(&step, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(e.contains("decoder_model_merged.onnx"), "{e}");
    eprintln!("Optimum --legacy decoders vs PyTorch DPO: max |reward diff| {worst:.3e}");
}

/// The export venv's Python when it has Optimum; None (and a loud line) when the venv is
/// missing, or, outside CI, when it lacks Optimum.
fn optimum_python() -> Option<PathBuf> {
    let py = export_python(
        "optimum::optimum_cli_exports_match_pytorch",
        "Optimum was NOT run (the committed Optimum fixtures were still checked)",
    )?;
    let has = Command::new(&py)
        .args(["-c", "import optimum.exporters.onnx"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has {
        return Some(py);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set and {} exists but cannot import optimum.exporters.onnx: run `make optimum-venv`",
        py.display()
    );
    eprintln!(
        "SKIPPED optimum::optimum_cli_exports_match_pytorch: {} has no Optimum (`make optimum-venv` installs it); \
         Optimum was NOT run (the committed Optimum fixtures were still checked)",
        py.display()
    );
    None
}

fn optimum_cli(py: &Path, model: &str, task: &[&str], out: &Path) {
    let o = Command::new(py)
        .args([
            "-m",
            "optimum.commands.optimum_cli",
            "export",
            "onnx",
            "--model",
        ])
        .arg(models().join(model))
        .args(task)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "optimum-cli export onnx --model {model} {task:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

#[test]
fn optimum_cli_exports_match_pytorch() {
    let Some(py) = optimum_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (rm, policy, reference) = (
        tmp.path().join("rm"),
        tmp.path().join("policy"),
        tmp.path().join("ref"),
    );
    optimum_cli(
        &py,
        "tiny-llama-rm",
        &["--task", "text-classification"],
        &rm,
    );
    optimum_cli(
        &py,
        "tiny-llama-policy",
        &["--task", "text-generation"],
        &policy,
    );
    optimum_cli(
        &py,
        "tiny-llama-ref",
        &["--task", "text-generation-with-past"],
        &reference,
    );
    // hidden states are not a score: the message says which export to make
    let features = tmp.path().join("features");
    optimum_cli(
        &py,
        "tiny-llama-rm",
        &["--task", "feature-extraction"],
        &features,
    );
    let o = rewardbench(&[
        "--model",
        features.to_str().unwrap(),
        "--dataset",
        data("pref_shape").to_str().unwrap(),
        "--output_dir",
        tmp.path().join("out").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("`last_hidden_state` is hidden states, not a score"),
        "{}",
        stderr(&o)
    );
    let mut rm_worst = 0.0f64;
    for stem in ["pref_shape", "llmbar"] {
        rm_worst = rm_worst.max(check_rm(&rm, stem).1);
    }
    let mut dpo_worst = 0.0f64;
    for stem in ["pref_shape", "conversation_shape"] {
        dpo_worst = dpo_worst.max(check_dpo(&policy, &reference, "ref", stem));
    }
    // Same pins, same graphs: the committed fixtures are what this Optimum writes today.
    for (fresh, committed) in [
        (&rm, "tiny-llama-rm-optimum"),
        (&policy, "tiny-llama-policy-optimum"),
        (&reference, "tiny-llama-ref-optimum"),
    ] {
        let same = std::fs::read(fresh.join("model.onnx")).unwrap()
            == std::fs::read(models().join(committed).join("model.onnx")).unwrap();
        if !same {
            eprintln!(
                "note: optimum-cli's model.onnx differs from fixtures/models/{committed}/model.onnx \
                 (other versions or machine?); both were checked against PyTorch"
            );
        }
    }
    eprintln!(
        "optimum-cli exports vs PyTorch: reward model {rm_worst:.3e}, DPO (with and without past) {dpo_worst:.3e}"
    );
}
