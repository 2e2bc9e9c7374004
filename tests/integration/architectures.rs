//! Every architecture the exporter is checked on (Llama, Mistral, Qwen2, Qwen3, Gemma, Gemma 2,
//! Phi-3): a tiny random checkpoint of each (export/make_arch_checkpoints.py), exported with
//! `export_rm.py`'s defaults and scored by the evaluator at batch 8, against PyTorch scoring each
//! text alone as RewardBench does. Needs the export venv (torch): without it the test says so
//! loudly and checks nothing.

use std::process::Command;

use rewardbench::config::RunConfig;
use rewardbench::eval;

use crate::util::{jsonl, root, run_exporter, stderr};

/// PyTorch's batch-1 scores against ours at batch 8 (sorted batching), float32. The scores are
/// of order 1 to 5 (the heads are scaled up); measured differences reach 6.7e-6.
const PARITY_TOL: f64 = 2e-5;
const ROWS: usize = 8;

#[test]
fn every_checked_architecture_exports_and_scores_as_pytorch() {
    let py = root().join("export/.venv/bin/python");
    if !py.is_file() {
        eprintln!(
            "SKIPPED architectures: {} is missing (`make export-venv` makes it); no architecture was exported",
            py.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(&py)
        .arg(root().join("export/make_arch_checkpoints.py"))
        .arg(dir.path())
        .args(["--rows", &ROWS.to_string()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "make_arch_checkpoints.py: {}",
        stderr(&o)
    );
    let data = dir.path().join("rows.jsonl");
    let text = std::fs::read_to_string(root().join("fixtures/data/llmbar.jsonl")).unwrap();
    let rows: Vec<&str> = text.lines().take(ROWS).collect();
    std::fs::write(&data, rows.join("\n") + "\n").unwrap();
    let mut checked = Vec::new();
    for arch in [
        "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3",
    ] {
        let hf = dir.path().join(arch);
        let out = dir.path().join(format!("{arch}-onnx"));
        run_exporter("architectures", "export_rm.py", &hf, &out, &[]).unwrap();
        let refs = jsonl(&hf.join("reference.jsonl"));
        let mut cfg = RunConfig::local(&out, &data);
        cfg.device.threads = 1;
        cfg.batch.batch_size = 8;
        let ev = eval::evaluate(&cfg).unwrap_or_else(|e| panic!("{arch}: {e}"));
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
