//! Models with external data (`model.onnx` + `model.onnx_data`): scored as the single-file
//! graph they were made from; a missing data file is named before any compute.

use std::path::Path;
use std::process::Command;

use crate::util::{csv_scores, root, run_exporter};

fn run(model: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .arg("--model")
        .arg(model)
        .arg("--dataset")
        .arg(root().join("fixtures/data/llmbar.jsonl"))
        .args([
            "--batch_size",
            "2",
            "--threads",
            "1",
            "--quiet",
            "--output_dir",
        ])
        .arg(out)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

#[test]
fn an_external_data_model_scores_as_its_single_file_graph() {
    let out = tempfile::tempdir().unwrap();
    let one = run(
        &root().join("fixtures/models/tiny-llama-rm"),
        &out.path().join("a"),
    );
    let ext = run(
        &root().join("fixtures/models/tiny-llama-rm-extdata"),
        &out.path().join("b"),
    );
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    assert!(
        ext.status.success(),
        "{}",
        String::from_utf8_lossy(&ext.stderr)
    );
    let a = std::fs::read_to_string(out.path().join("a/tiny-llama-rm_scores.csv")).unwrap();
    let b = std::fs::read_to_string(out.path().join("b/tiny-llama-rm-extdata_scores.csv")).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_missing_data_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("fixtures/models/tiny-llama-rm-extdata");
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        if f.file_name().unwrap() != "model.onnx_data" {
            std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    let o = run(dir.path(), &dir.path().join("out"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("references external data") && err.contains("model.onnx_data"),
        "{err}"
    );
}

/// An exporter of export/ with `--external_data always`; None (loudly) without the venv.
fn export_with_venv(script: &str, model: &Path, out: &Path, extra: &[&str]) -> Option<()> {
    let mut args = vec!["--external_data", "always"];
    args.extend_from_slice(extra);
    run_exporter(
        &format!("external_data::{script}"),
        script,
        model,
        out,
        &args,
    )
}

/// Chosen then rejected score of each row of a `_scores.csv`.
fn scores(csv: &Path) -> Vec<f64> {
    csv_scores(csv)
        .into_iter()
        .flat_map(|(c, r)| [c, r])
        .collect()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol + 1e-6 * x.abs(), "{x} vs {y}");
    }
}

#[test]
fn the_exporters_write_external_data_that_scores_as_the_single_file_export() {
    // export_rm.py and export_lm.py with --external_data always: graph + model.onnx_data,
    // checked against PyTorch by the exporter, then scored here as the committed graphs.
    let dir = tempfile::tempdir().unwrap();
    let rm = dir.path().join("rm");
    let fixture = root().join("fixtures/models/tiny-llama-rm");
    if export_with_venv("export_rm.py", &fixture, &rm, &["--attention", "eager"]).is_none() {
        return;
    }
    assert!(rm.join("model.onnx_data").is_file());
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    assert!(run(&fixture, &a).status.success());
    let o = run(&rm, &b);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_close(
        &scores(&a.join("tiny-llama-rm_scores.csv")),
        &scores(&b.join("rm_scores.csv")),
        1e-5,
    );

    let lm = dir.path().join("policy");
    let policy = root().join("fixtures/models/tiny-llama-policy");
    export_with_venv("export_lm.py", &policy, &lm, &[]).unwrap();
    assert!(lm.join("model.onnx_data").is_file());
    let dpo = |model: &Path, out: &Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
            .arg("--model")
            .arg(model)
            .args(["--ref_free_type", "sum", "--dataset"])
            .arg(root().join("fixtures/data/pref_shape.jsonl"))
            .args(["--quiet", "--output_dir"])
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (c, d) = (dir.path().join("c"), dir.path().join("d"));
    dpo(&policy, &c);
    dpo(&lm, &d);
    assert_close(
        &scores(&c.join("tiny-llama-policy_scores.csv")),
        &scores(&d.join("policy_scores.csv")),
        1e-4,
    );
}
