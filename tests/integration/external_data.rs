//! Models with external data (`model.onnx` + `model.onnx_data`): scored as the single-file
//! graph they were made from; a missing data file is named before any compute.

use std::path::Path;
use std::process::Command;

use crate::util::root;

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
