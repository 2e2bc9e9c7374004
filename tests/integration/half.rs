//! Half-precision exports (`export_rm.py --dtype float16`): scored against PyTorch in float16,
//! and a CPU without float16 arithmetic says so.

use serde_json::Value;

use crate::util::{csv_scores, llama, rewardbench, root, run_exporter, stderr};

#[test]
fn a_float16_export_matches_pytorch_in_float16_and_cpu_runs_say_it_is_slow() {
    let model = root().join("fixtures/models/tiny-llama-rm-fp16");
    let data = root().join("fixtures/data/llmbar.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let args = |m: &std::path::Path| {
        vec![
            "--model".to_string(),
            m.display().to_string(),
            "--dataset".into(),
            data.display().to_string(),
            "--batch_size".into(),
            "4".into(),
            "--output_dir".into(),
            out.display().to_string(),
        ]
    };
    let run = |m: &std::path::Path| {
        let a = args(m);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = rewardbench(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    let said = run(&model);
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(model.join("reference/llmbar.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(reference["torch_dtype"], "float16");
    let floats = |k: &str| -> Vec<f64> {
        reference[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (chosen, rejected) = (floats("chosen"), floats("rejected"));
    let got = csv_scores(&out.join("tiny-llama-rm-fp16_scores.csv"));
    assert_eq!(got.len(), chosen.len());
    // float16 on both sides, rounded in different orders (the exporter's check: 2e-2)
    let worst = got
        .iter()
        .zip(chosen.iter().zip(&rejected))
        .map(|((c, r), (tc, tr))| (c - tc).abs().max((r - tr).abs()))
        .fold(0.0, f64::max);
    assert!(worst <= 2e-2, "float16 ONNX vs float16 PyTorch: {worst}");
    if rewardbench::model::cpu_has_half_arithmetic() {
        eprintln!("this CPU has AVX-512 FP16: no slow-half-precision note is expected");
    } else {
        assert!(
            said.contains("holds float16 weights: this CPU has no float16 arithmetic"),
            "{said}"
        );
    }
    // the float32 graph gets no such note
    assert!(!run(&llama()).contains("float16 weights"));
}

#[test]
fn export_lm_writes_a_float16_policy_whose_rewards_follow_the_float32_ones() {
    // Venv-gated: export_lm.py --dtype float16 (checked against PyTorch in float16 by the
    // exporter), then DPO rewards against the committed float32 export's.
    let dir = tempfile::tempdir().unwrap();
    let policy = root().join("fixtures/models/tiny-llama-policy");
    let half = dir.path().join("policy-fp16");
    let test = "half::export_lm_writes_a_float16_policy_whose_rewards_follow_the_float32_ones";
    if run_exporter(
        test,
        "export_lm.py",
        &policy,
        &half,
        &["--dtype", "float16"],
    )
    .is_none()
    {
        return;
    }
    let data = root().join("fixtures/data/pref_shape.jsonl");
    let run = |m: &std::path::Path, out: &str| {
        let out = dir.path().join(out);
        let o = rewardbench(&[
            "--model",
            m.to_str().unwrap(),
            "--ref_free_type",
            "sum",
            "--dataset",
            data.to_str().unwrap(),
            "--output_dir",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let name = m.file_name().unwrap().to_str().unwrap();
        csv_scores(&out.join(format!("{name}_scores.csv")))
    };
    let (a, b) = (run(&policy, "a"), run(&half, "b"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        // summed log-probabilities (about -100 here) in float16: measured within 6.1e-3
        assert!(
            (x.0 - y.0).abs() < 5e-2 && (x.1 - y.1).abs() < 5e-2,
            "{x:?} vs {y:?}"
        );
        assert_eq!(x.0 > x.1, y.0 > y.1, "verdict changed: {x:?} vs {y:?}");
    }
}
