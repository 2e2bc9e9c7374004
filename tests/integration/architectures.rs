//! Every architecture the exporters are checked on: a tiny random checkpoint of each
//! (export/make_arch_checkpoints.py). Reward models (Llama, Mistral, Qwen2, Qwen3, Gemma,
//! Gemma 2, Phi-3), exported with `export_rm.py`'s defaults and scored by the evaluator at batch
//! 8, against PyTorch scoring each text alone as RewardBench does; DPO policies and references
//! (the same, Gemma 3 and Granite, whose logits are capped or scaled after the LM head),
//! exported with `export_lm.py`, against RewardBench's DPOInference. Needs the export venv
//! (torch): without it each test says so loudly and checks nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use rewardbench::config::RunConfig;
use rewardbench::dpo::{self, DpoMode};
use rewardbench::eval;

use crate::util::{export_python, jsonl, root, run_exporter, stderr};

/// PyTorch's batch-1 scores against ours at batch 8 (sorted batching), float32. The scores are
/// of order 1 to 5 (the heads are scaled up); measured differences reach 6.7e-6.
const PARITY_TOL: f64 = 2e-5;
/// DPO rewards: this plus dpo.rs's float32 term (1e-6 x the sums). The scaled-up LM heads make
/// the sums reach thousands, so PyTorch's float32 sums are off by up to 2^-10 (measured 9.8e-4).
const DPO_ABS_TOL: f64 = 1e-4;
const ROWS: usize = 8;

/// Runs export/make_arch_checkpoints.py into `out` with `extra`; the rows it scored, written
/// to `out/rows.jsonl`.
fn checkpoints(py: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    let o = Command::new(py)
        .arg(root().join("export/make_arch_checkpoints.py"))
        .arg(out)
        .args(["--rows", &ROWS.to_string()])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "make_arch_checkpoints.py: {}",
        stderr(&o)
    );
    let data = out.join("rows.jsonl");
    let text = std::fs::read_to_string(root().join("fixtures/data/llmbar.jsonl")).unwrap();
    let rows: Vec<&str> = text.lines().take(ROWS).collect();
    std::fs::write(&data, rows.join("\n") + "\n").unwrap();
    data
}

fn config(model: &Path, data: &Path) -> RunConfig {
    let mut cfg = RunConfig::local(model, data);
    cfg.device.threads = 1;
    cfg.batch.batch_size = 8;
    cfg
}

#[test]
fn every_checked_architecture_exports_and_scores_as_pytorch() {
    let Some(py) = export_python(
        "architectures (reward models)",
        "no architecture was exported",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = checkpoints(&py, dir.path(), &[]);
    let mut checked = Vec::new();
    for arch in [
        "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3",
    ] {
        let hf = dir.path().join(arch);
        let out = dir.path().join(format!("{arch}-onnx"));
        run_exporter("architectures", "export_rm.py", &hf, &out, &[]).unwrap();
        let refs = jsonl(&hf.join("reference.jsonl"));
        let ev = eval::evaluate(&config(&out, &data)).unwrap_or_else(|e| panic!("{arch}: {e}"));
        assert_eq!(ev.rows.len(), refs.len(), "{arch}");
        let mut worst = 0.0f64;
        for (i, (row, r)) in ev.rows.iter().zip(&refs).enumerate() {
            for (ours, key) in [
                (row.score_chosen(), "score_chosen"),
                (row.score_rejected(), "score_rejected"),
            ] {
                let d = (f64::from(ours[0]) - r[key].as_f64().unwrap()).abs();
                assert!(d <= PARITY_TOL, "{arch} row {i} {key}: off by {d}");
                worst = worst.max(d);
            }
        }
        let graph = if out.join("gpu/model.onnx").is_file() {
            "packed"
        } else {
            "eager"
        };
        checked.push(format!("{arch} ({graph}): {worst:.1e}"));
    }
    eprintln!("architectures vs PyTorch: {}", checked.join(", "));
}

#[test]
fn every_checked_causal_lm_exports_and_gives_dpo_rewards_as_pytorch() {
    let Some(py) = export_python("architectures (DPO)", "no architecture was exported") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = checkpoints(&py, dir.path(), &["--lm"]);
    let mut checked = Vec::new();
    for arch in [
        "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "granite",
    ] {
        let base = dir.path().join(format!("lm-{arch}"));
        for side in ["policy", "ref"] {
            let out = base.join(format!("{side}-onnx"));
            run_exporter("architectures", "export_lm.py", &base.join(side), &out, &[]).unwrap();
        }
        let rows = jsonl(&base.join("dpo-reference.jsonl"));
        let m = DpoMode::Reference(base.join("ref-onnx"));
        let ev = dpo::evaluate(&config(&base.join("policy-onnx"), &data), &m)
            .unwrap_or_else(|e| panic!("{arch}: {e}"));
        let worst = crate::dpo::compare_within(&ev, &rows, "ref", arch, DPO_ABS_TOL);
        checked.push(format!("{arch}: {worst:.1e}"));
    }
    eprintln!("DPO rewards vs PyTorch: {}", checked.join(", "));
}
