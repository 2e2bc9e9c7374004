//! `export_rm.py --attention auto`: the fused, packed graph as `model.onnx` (for CPU) and the
//! eager graph as `gpu/model.onnx` (for GPU providers), for Llama and for GPT-2
//! (export/fused_gpt2.py), and the evaluator's choice by `--device`. The committed tiny Llama's `model.onnx` and `gqa/model.onnx` are byte for byte
//! what an auto export of its checkpoint writes as `gpu/model.onnx` and `model.onnx`, so the
//! choice is checked without torch; the export itself runs only where `export/.venv` exists
//! (it says so loudly where it does not).

use std::path::{Path, PathBuf};
use std::process::Command;

use rewardbench::config::RunConfig;
use rewardbench::eval;
use serde_json::Value;

use crate::util::{export_python, llama, rewardbench, root, stderr};

const PARITY_TOL: f64 = 1e-4;
const SIDE: [&str; 4] = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A folder laid out as an auto export: `model.onnx` (packed) and `gpu/model.onnx` (eager).
fn two_graphs(dir: &Path) -> PathBuf {
    let m = dir.join("two-graphs");
    std::fs::create_dir_all(m.join("gpu")).unwrap();
    for f in SIDE {
        std::fs::copy(llama().join(f), m.join(f)).unwrap();
    }
    std::fs::copy(llama().join("gqa/model.onnx"), m.join("model.onnx")).unwrap();
    std::fs::copy(llama().join("model.onnx"), m.join("gpu/model.onnx")).unwrap();
    m
}

/// Every row's scores against PyTorch's (`{fixture}/reference/{stem}.jsonl`); the worst
/// difference.
fn check_pytorch(model: &Path, fixture: &Path, stem: &str) -> f64 {
    check_pytorch_shared(model, fixture, stem, 8).0
}

/// [`check_pytorch`] at `batch_size`, sorted batching; also the prompt tokens computed once
/// for their answers (shared-prefix rows of a packed export).
fn check_pytorch_shared(
    model: &Path,
    fixture: &Path,
    stem: &str,
    batch_size: usize,
) -> (f64, usize) {
    let data = root().join(format!("fixtures/data/{stem}.jsonl"));
    let refs: Vec<Value> = std::fs::read_to_string(fixture.join(format!("reference/{stem}.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut cfg = RunConfig::local(model, &data);
    cfg.device.threads = 1;
    cfg.batch.batch_size = batch_size;
    let ev = eval::evaluate(&cfg).unwrap();
    assert_eq!(ev.rows.len(), refs.len());
    let mut worst = 0.0f64;
    for (i, (row, r)) in ev.rows.iter().zip(&refs).enumerate() {
        for (ours, key) in [
            (row.score_chosen(), "score_chosen"),
            (row.score_rejected(), "score_rejected"),
        ] {
            let d = (f64::from(ours[0]) - r[key].as_f64().unwrap()).abs();
            assert!(
                d <= PARITY_TOL,
                "{} row {i} {key}: off by {d}",
                model.display()
            );
            worst = worst.max(d);
        }
    }
    (worst, ev.stats.shared_tokens)
}

/// The tiny GPT-2's fused, packed export (`gqa/`, export/fused_gpt2.py: com.microsoft
/// Attention, learned positions indexed by `position_ids`) against PyTorch on every fixture
/// file, its answers sharing their prompt's row: scores within 1e-4 of PyTorch scoring each
/// text alone.
#[test]
fn packed_gpt2_matches_pytorch_with_shared_prefixes() {
    let gpt2 = root().join("fixtures/models/tiny-gpt2-rm");
    let packed = gpt2.join("gqa");
    assert!(packed.join("model.onnx").is_file());
    for stem in ["llmbar", "edge_cases", "pref_shape", "conversation_shape"] {
        for bs in [1, 8] {
            let (worst, shared) = check_pytorch_shared(&packed, &gpt2, stem, bs);
            eprintln!("tiny-gpt2-rm/gqa on {stem} (batch {bs}): max |ours - PyTorch| {worst:.2e}, {shared} prompt tokens shared");
            assert!(shared > 0, "{stem} batch {bs}: no prefix was shared");
        }
    }
}

#[test]
fn cpu_runs_model_onnx_and_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let m = two_graphs(tmp.path());
    let out = tmp.path().join("out");
    let o = rewardbench(&[
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        root()
            .join("fixtures/data/pref_shape.jsonl")
            .to_str()
            .unwrap(),
        "--output_dir",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("note: --device cpu: using model.onnx; gpu/model.onnx is the one for --device cuda/tensorrt"),
        "{}",
        stderr(&o)
    );
    // the summary names the file in the model folder; _run.json has its absolute path
    let summary = json(&out.join("two-graphs.json"));
    assert_eq!(summary["evaluator"]["onnx_model"], "model.onnx");
    let want = std::fs::canonicalize(m.join("model.onnx")).unwrap();
    let run = json(&out.join("two-graphs_run.json"));
    assert_eq!(run["onnx_model"], want.display().to_string().as_str());
    // the packed graph ran: prompts were computed once for their answers
    assert!(run["shared_prefix_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn gpu_devices_name_the_gpu_graph() {
    // No GPU is needed: the choice is made (and said) before a session opens; where the ONNX
    // Runtime has no CUDA provider the run then stops with that error.
    let tmp = tempfile::tempdir().unwrap();
    let m = two_graphs(tmp.path());
    for device in ["cuda", "tensorrt"] {
        let o = rewardbench(&[
            "--model",
            m.to_str().unwrap(),
            "--dataset",
            root()
                .join("fixtures/data/pref_shape.jsonl")
                .to_str()
                .unwrap(),
            "--output_dir",
            tmp.path().join(device).to_str().unwrap(),
            "--device",
            device,
        ]);
        assert!(
            stderr(&o).contains(&format!(
                "note: --device {device}: using gpu/model.onnx (the GPU graph); model.onnx is the one for --device cpu"
            )),
            "{}",
            stderr(&o)
        );
    }
    let files =
        rewardbench::model::ModelFiles::locate(&m, rewardbench::backend::Device::Cuda).unwrap();
    assert_eq!(files.onnx, m.join("gpu/model.onnx"));
}

fn export(py: &Path, model: &Path, out: &Path) -> String {
    let o = Command::new(py)
        .arg(root().join("export/export_rm.py"))
        .args([
            "--model",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{text}\n{}", stderr(&o));
    text
}

#[test]
fn auto_export_writes_both_graphs_and_both_match_pytorch() {
    let Some(py) = export_python(
        "fast_export",
        "the auto export was NOT tested against PyTorch",
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("llama");
    let said = export(&py, &llama(), &out);
    assert!(
        said.contains("--attention auto: writing the fused, packed graph"),
        "{said}"
    );
    assert!(out.join("model.onnx").is_file() && out.join("gpu/model.onnx").is_file());
    // model.onnx as the CPU run picks it
    let cpu = check_pytorch(&out, &llama(), "pref_shape");
    // gpu/model.onnx, scored here on CPU from a folder where it is the only graph
    let gpu = tmp.path().join("gpu-view");
    std::fs::create_dir_all(&gpu).unwrap();
    for f in SIDE {
        std::fs::copy(out.join(f), gpu.join(f)).unwrap();
    }
    std::fs::copy(out.join("gpu/model.onnx"), gpu.join("model.onnx")).unwrap();
    let eager = check_pytorch(&gpu, &llama(), "pref_shape");
    eprintln!("auto export vs PyTorch: model.onnx {cpu:.2e}, gpu/model.onnx {eager:.2e}");

    // GPT-2: the fused, packed graph (export/fused_gpt2.py) and the eager one, as for Llama;
    // the fused one is the committed gqa/ export, byte for byte.
    let gpt2 = root().join("fixtures/models/tiny-gpt2-rm");
    let out = tmp.path().join("gpt2");
    let said = export(&py, &gpt2, &out);
    assert!(
        said.contains("--attention auto: writing the fused, packed graph"),
        "{said}"
    );
    assert!(out.join("model.onnx").is_file() && out.join("gpu/model.onnx").is_file());
    assert!(
        std::fs::read(out.join("model.onnx")).unwrap()
            == std::fs::read(gpt2.join("gqa/model.onnx")).unwrap(),
        "the auto export's model.onnx differs from fixtures/models/tiny-gpt2-rm/gqa/model.onnx \
         (make_fixtures.py --gqa_only tiny-gpt2-rm rewrites it)"
    );
    let (cpu, shared) = check_pytorch_shared(&out, &gpt2, "pref_shape", 8);
    assert!(
        shared > 0,
        "the GPT-2 auto export's model.onnx is not packed"
    );
    let gpu = tmp.path().join("gpt2-gpu-view");
    std::fs::create_dir_all(&gpu).unwrap();
    for f in SIDE {
        std::fs::copy(out.join(f), gpu.join(f)).unwrap();
    }
    std::fs::copy(out.join("gpu/model.onnx"), gpu.join("model.onnx")).unwrap();
    let eager = check_pytorch(&gpu, &gpt2, "pref_shape");
    eprintln!("GPT-2 auto export vs PyTorch: model.onnx {cpu:.2e}, gpu/model.onnx {eager:.2e}");
}
