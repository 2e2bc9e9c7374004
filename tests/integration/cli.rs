//! End-to-end tests of the `rewardbench` binary: outputs, and bad input failing cleanly.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{llama, rewardbench, root, stderr};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn scores_rows_and_writes_all_outputs() {
    let out = tempfile::tempdir().unwrap();
    let data = root().join("fixtures/data/llmbar.jsonl");
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--dataset",
        s(&data),
        "--load_json",
        "--batch_size",
        "8",
        "--output_dir",
        s(out.path()),
        "--save_all",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let all = std::fs::read_to_string(out.path().join("tiny-llama-rm_all.jsonl")).unwrap();
    assert_eq!(all.lines().count(), 40);
    assert!(all.starts_with("{\"chosen\": ["), "{all}");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("llmbar-natural")
            && table.contains("overall")
            && table.contains("[section] Chat Hard"),
        "{table}"
    );

    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("tiny-llama-rm.json")).unwrap(),
    )
    .unwrap();
    let keys: Vec<&str> = summary
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        &keys[..7],
        [
            "accuracy",
            "num_prompts",
            "model",
            "ref_model",
            "tokenizer",
            "chat_template",
            "extra_results"
        ]
    );
    assert_eq!(summary["num_prompts"], 40);
    assert_eq!(summary["chat_template"], "tokenizer");
    assert_eq!(summary["extra_results"].as_object().unwrap().len(), 5);
    let version = summary["evaluator"]["onnxruntime_version"]
        .as_str()
        .unwrap();
    assert!(version.starts_with("1."), "ORT version recorded: {version}");

    let outputs = std::fs::read_to_string(out.path().join("tiny-llama-rm_outputs.jsonl")).unwrap();
    let lines: Vec<Value> = outputs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 40);
    let keys: Vec<&str> = lines[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "prompt",
            "results",
            "scores_chosen",
            "scores_rejected",
            "text_chosen",
            "text_rejected",
            "chosen",
            "chosen_model",
            "rejected",
            "rejected_model",
            "subset",
            "id",
            "sample_hash"
        ]
    );
    // Dataset order is kept whatever the batching.
    let data_ids: Vec<Value> = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].clone())
        .collect();
    let out_ids: Vec<Value> = lines.iter().map(|l| l["id"].clone()).collect();
    assert_eq!(data_ids, out_ids);
    let correct = lines.iter().filter(|l| l["results"] == 1).count() as f64;
    assert_eq!(summary["accuracy"].as_f64().unwrap(), correct / 40.0);

    let csv = std::fs::read_to_string(out.path().join("tiny-llama-rm_scores.csv")).unwrap();
    assert_eq!(csv.lines().count(), 41);
    assert!(csv.starts_with("index,id,subset,score_chosen,score_rejected,result\n"));
}

#[test]
fn a_tie_counts_as_wrong() {
    let out = tempfile::tempdir().unwrap();
    let data = root().join("fixtures/data/edge_cases.jsonl");
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--dataset",
        s(&data),
        "--output_dir",
        s(out.path()),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let outputs = std::fs::read_to_string(out.path().join("tiny-llama-rm_outputs.jsonl")).unwrap();
    let ties: Vec<Value> = outputs
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["chosen"] == l["rejected"])
        .collect();
    assert!(
        !ties.is_empty(),
        "edge_cases.jsonl has a row whose chosen equals rejected"
    );
    for t in ties {
        assert_eq!(t["scores_chosen"], t["scores_rejected"]);
        assert_eq!(t["results"], 0, "a tie is wrong");
    }
    assert!(
        stderr(&o).contains("tie"),
        "a tie is reported: {}",
        stderr(&o)
    );
}

#[test]
fn named_template_when_the_tokenizer_has_none() {
    let tok = tempfile::tempdir().unwrap();
    std::fs::copy(
        llama().join("tokenizer.json"),
        tok.path().join("tokenizer.json"),
    )
    .unwrap();
    let mut cfg: Value = serde_json::from_str(
        &std::fs::read_to_string(llama().join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    cfg.as_object_mut().unwrap().remove("chat_template");
    std::fs::write(tok.path().join("tokenizer_config.json"), cfg.to_string()).unwrap();
    let data = root().join("fixtures/data/llmbar.jsonl");
    let out = tempfile::tempdir().unwrap();
    let model = llama();
    let base = [
        "--model",
        s(&model),
        "--tokenizer",
        s(tok.path()),
        "--dataset",
        s(&data),
        "--debug",
        "--output_dir",
        s(out.path()),
    ];

    let o = rewardbench(&base);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no chat template"), "{}", stderr(&o));

    let o = rewardbench(&[&base[..], &["--chat_template", "tulu"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let outputs = std::fs::read_to_string(out.path().join("tiny-llama-rm_outputs.jsonl")).unwrap();
    let first: Value = serde_json::from_str(outputs.lines().next().unwrap()).unwrap();
    let prompt = first["prompt"].as_str().unwrap();
    assert!(
        prompt.starts_with("<|user|>\n") && prompt.ends_with('\n'),
        "{prompt}"
    );
    assert_eq!(outputs.lines().count(), 10, "--debug keeps 10 rows");
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("tiny-llama-rm.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["chat_template"], "tulu");
}

/// Each bad input exits non-zero, names the place, does not panic and leaves no summary.
#[test]
fn bad_input_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let good = root().join("fixtures/data/llmbar.jsonl");
    let row = r#"{"prompt": "p", "chosen": "a", "rejected": "b", "subset": "s", "id": 1}"#;
    std::fs::write(
        t.join("bad_json.jsonl"),
        format!("{row}\n{row}\n{{\"prompt\": \"p\",\n"),
    )
    .unwrap();
    std::fs::write(
        t.join("no_chosen.jsonl"),
        format!("{row}\n{{\"prompt\": \"p\", \"rejected\": \"b\"}}\n"),
    )
    .unwrap();
    std::fs::write(t.join("empty.jsonl"), "\n").unwrap();
    std::fs::write(
        t.join("bad_type.jsonl"),
        format!(
            "{row}\n{row}\n{row}\n{{\"prompt\": \"p\", \"chosen\": [1], \"rejected\": \"b\"}}\n"
        ),
    )
    .unwrap();
    let no_onnx = t.join("no_onnx");
    std::fs::create_dir(&no_onnx).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json", "config.json"] {
        std::fs::copy(llama().join(f), no_onnx.join(f)).unwrap();
    }
    let no_tok = t.join("no_tokenizer");
    std::fs::create_dir(&no_tok).unwrap();
    for f in ["model.onnx", "config.json", "tokenizer_config.json"] {
        std::fs::copy(llama().join(f), no_tok.join(f)).unwrap();
    }
    let missing = t.join("missing.jsonl");
    let cases: Vec<(PathBuf, PathBuf, Vec<&str>)> = vec![
        (llama(), missing.clone(), vec!["missing.jsonl"]),
        (
            llama(),
            t.join("bad_json.jsonl"),
            vec!["bad_json.jsonl", "line 3", "invalid JSON"],
        ),
        (
            llama(),
            t.join("no_chosen.jsonl"),
            vec!["no_chosen.jsonl", "line 2", "`chosen`"],
        ),
        (
            llama(),
            t.join("empty.jsonl"),
            vec!["empty.jsonl", "no rows"],
        ),
        (
            llama(),
            t.join("bad_type.jsonl"),
            vec!["bad_type.jsonl", "line 4", "`chosen`"],
        ),
        (no_onnx.clone(), good.clone(), vec!["no_onnx", "model.onnx"]),
        (
            no_tok.clone(),
            good.clone(),
            vec!["no_tokenizer", "tokenizer.json"],
        ),
        (
            t.join("no_such_model"),
            good.clone(),
            vec!["no_such_model", "does not exist"],
        ),
    ];
    for (model, data, needles) in cases {
        let out = t.join("out");
        let o = rewardbench(&[
            "--model",
            s(&model),
            "--dataset",
            s(&data),
            "--load_json",
            "--output_dir",
            s(&out),
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{}: {err}", data.display());
        for n in &needles {
            assert!(
                err.contains(n),
                "message for {} should name `{n}`: {err}",
                data.display()
            );
        }
        assert!(!err.contains("panicked"), "{err}");
        let name = model.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !out.join(format!("{name}.json")).exists(),
            "no summary after a failure"
        );
        assert!(
            !out.join(format!("{name}_outputs.jsonl")).exists(),
            "no outputs after a failure"
        );
    }
}

#[test]
fn unwritable_output_folder_fails_before_compute() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a_file");
    std::fs::write(&file, "x").unwrap();
    let data = root().join("fixtures/data/llmbar.jsonl");
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--dataset",
        s(&data),
        "--output_dir",
        s(&file.join("sub")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot be written"), "{}", stderr(&o));
}

#[test]
fn missing_onnx_runtime_says_how_to_get_it() {
    let out = tempfile::tempdir().unwrap();
    let data = root().join("fixtures/data/llmbar.jsonl");
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--dataset",
        s(&data),
        "--output_dir",
        s(out.path()),
        "--ort_lib",
        "/nonexistent/libonnxruntime.so",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("ONNX Runtime not found") && err.contains("make setup"),
        "{err}"
    );
    assert!(!out.path().join("tiny-llama-rm.json").exists());
}

#[test]
fn gpu_providers_never_fall_back_silently() {
    let out = tempfile::tempdir().unwrap();
    let data = root().join("fixtures/data/llmbar.jsonl");
    for device in ["cuda", "tensorrt"] {
        let o = rewardbench(&[
            "--model",
            s(&llama()),
            "--dataset",
            s(&data),
            "--debug",
            "--output_dir",
            s(out.path()),
            "--device",
            device,
        ]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "--device {device} must fail on the CPU build"
        );
        let err = stderr(&o);
        // Without `make setup-gpu` the CPU library says how to get a GPU build; with it (and
        // no CUDA libraries on this machine) the provider's own load error comes with a hint.
        assert!(
            err.contains(device) && (err.contains("make setup-gpu") || err.contains("CUDA 13")),
            "{err}"
        );
        assert!(!out.path().join("tiny-llama-rm.json").exists());
    }
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--dataset",
        s(&data),
        "--debug",
        "--output_dir",
        s(out.path()),
        "--device",
        "auto",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("running on CPU"),
        "auto says it fell back: {}",
        stderr(&o)
    );
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("tiny-llama-rm.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["evaluator"]["execution_provider"], "cpu");
}

/// RewardBench's and run_v2's logging and precision flags, pasted from their command lines:
/// accepted with a note, never a parse error. (The publishing flags publish: tests/publish.rs.)
#[test]
fn pasted_rewardbench_flags_are_accepted_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let m = crate::util::llama();
    let data = crate::util::root().join("fixtures/data/llmbar.jsonl");
    let flags = [
        "--wandb_run",
        "me/proj/run1",
        "--disable_beaker_save",
        "--do_not_save",
        "--not_quantized",
        "--torch_dtype",
        "bfloat16",
    ];
    let out = tmp.path().join("v1");
    let base = [
        "--model",
        s(&m),
        "--dataset",
        s(&data),
        "--debug",
        "--output_dir",
        s(&out),
    ];
    let o = crate::util::rewardbench(&[&base[..], &flags[..]].concat());
    let err = crate::util::stderr(&o);
    assert!(o.status.success(), "{err}");
    for f in [
        "--do_not_save",
        "--wandb_run",
        "--disable_beaker_save",
        "--torch_dtype",
    ] {
        assert!(err.contains(f), "no note on {f}: {err}");
    }
    let out2 = tmp.path().join("v2");
    let rb2 = crate::util::root().join("fixtures/data/rb2.jsonl");
    let o = crate::util::rewardbench(&[
        "v2",
        "--model",
        s(&m),
        "--dataset",
        s(&rb2),
        "--debug",
        "--output_dir",
        s(&out2),
        "--quantized",
        "--disable_beaker_save",
        "--do_not_save",
        "--torch_dtype",
        "float16",
    ]);
    let err = crate::util::stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("--quantized") && err.contains("--do_not_save"),
        "{err}"
    );
}
