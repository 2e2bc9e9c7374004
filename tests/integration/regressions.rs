//! Regression tests for the bugs a review reproduced (issue "one pipeline", §1), each through
//! the binary as a user would meet it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::root;

fn run(args: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .current_dir(root())
        .args(args)
        .args(["--quiet", "--cache", "false", "--output_dir"])
        .arg(out)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> &Output {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

/// A copy of a fixture model folder (files only, no subfolders).
fn copy_model(name: &str, to: &Path) -> PathBuf {
    let from = root().join("fixtures/models").join(name);
    let dir = to.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    dir
}

fn edit_json(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v = json(path);
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn padding_block(length: u64, direction: &str, pad_id: u64, pad_token: &str) -> Value {
    serde_json::json!({
        "strategy": {"Fixed": length},
        "direction": direction,
        "pad_to_multiple_of": null,
        "pad_id": pad_id,
        "pad_type_id": 0,
        "pad_token": pad_token,
    })
}

/// Bug 1: a `padding` block in tokenizer.json must not pad the texts (transformers resets it).
#[test]
fn a_tokenizer_padding_block_is_switched_off() {
    let tmp = tempfile::tempdir().unwrap();
    let data = "fixtures/data/llmbar.jsonl";
    for (name, length, direction, pad_token) in [
        ("tiny-gpt2-rm", 700, "Left", "<pad>"),
        ("tiny-llama-rm", 1024, "Right", "<pad>"),
    ] {
        let plain = tmp.path().join(format!("{name}-plain"));
        ok(&run(
            &[
                "--model",
                &format!("fixtures/models/{name}"),
                "--dataset",
                data,
            ],
            &plain,
        ));
        let model = copy_model(name, &tmp.path().join("padded"));
        let tok = json(&model.join("tokenizer.json"));
        let pad_id = tok["added_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["content"] == pad_token)
            .map(|t| t["id"].as_u64().unwrap())
            .unwrap();
        edit_json(&model.join("tokenizer.json"), |t| {
            t["padding"] = padding_block(length, direction, pad_id, pad_token)
        });
        let padded = tmp.path().join(format!("{name}-padded"));
        ok(&run(
            &["--model", model.to_str().unwrap(), "--dataset", data],
            &padded,
        ));
        let (a, b) = (
            json(&plain.join(format!("{name}.json"))),
            json(&padded.join(format!("{name}.json"))),
        );
        assert_eq!(a["accuracy"], b["accuracy"], "{name}");
        assert_eq!(
            a["evaluator"]["padding_ratio"], b["evaluator"]["padding_ratio"],
            "{name}"
        );
        let (ra, rb) = (
            json(&plain.join(format!("{name}_run.json"))),
            json(&padded.join(format!("{name}_run.json"))),
        );
        assert_eq!(ra["computed_tokens"], rb["computed_tokens"], "{name}");
        let (la, lb) = (
            lines(&plain.join(format!("{name}_outputs.jsonl"))),
            lines(&padded.join(format!("{name}_outputs.jsonl"))),
        );
        assert_eq!(la, lb, "{name}: per-row scores");
    }

    // The DPO encoder too.
    let policy = copy_model("tiny-llama-policy", &tmp.path().join("padded"));
    edit_json(&policy.join("tokenizer.json"), |t| {
        t["padding"] = padding_block(512, "Left", 0, "<pad>")
    });
    let args = |m: &str| {
        vec![
            "--model".to_string(),
            m.to_string(),
            "--ref_free_type".into(),
            "sum".into(),
            "--dataset".into(),
            "fixtures/data/pref_shape.jsonl".into(),
        ]
    };
    let (a, b) = (tmp.path().join("dpo-plain"), tmp.path().join("dpo-padded"));
    let refs: Vec<String> = args("fixtures/models/tiny-llama-policy");
    ok(&run(
        &refs.iter().map(String::as_str).collect::<Vec<_>>(),
        &a,
    ));
    let padded: Vec<String> = args(policy.to_str().unwrap());
    ok(&run(
        &padded.iter().map(String::as_str).collect::<Vec<_>>(),
        &b,
    ));
    assert_eq!(
        lines(&a.join("tiny-llama-policy_outputs.jsonl")),
        lines(&b.join("tiny-llama-policy_outputs.jsonl"))
    );
}

/// A folder dataset with `data/{split}-00000-of-00001.jsonl` files.
fn folder_dataset(dir: &Path, split: &str, from: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::copy(
        root().join(from),
        dir.join(format!("data/{split}-00000-of-00001.jsonl")),
    )
    .unwrap();
    dir.to_path_buf()
}

/// Bug 2: DPO reads folder (and hub) datasets with a split, as the reward-model path does.
#[test]
fn dpo_reads_a_folder_dataset_with_a_split() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = folder_dataset(
        &tmp.path().join("ds"),
        "test",
        "fixtures/data/pref_shape.jsonl",
    );
    let flags = [
        "--model",
        "fixtures/models/tiny-llama-policy",
        "--ref_model",
        "fixtures/models/tiny-llama-ref",
    ];
    let (a, b) = (tmp.path().join("file"), tmp.path().join("folder"));
    let mut file_args = flags.to_vec();
    file_args.extend(["--dataset", "fixtures/data/pref_shape.jsonl"]);
    ok(&run(&file_args, &a));
    let mut folder_args = flags.to_vec();
    folder_args.extend(["--dataset", ds.to_str().unwrap(), "--split", "test"]);
    ok(&run(&folder_args, &b));
    let scores = |p: &Path| {
        lines(&p.join("tiny-llama-policy_outputs.jsonl"))
            .into_iter()
            .map(|l| (l["scores_chosen"].clone(), l["scores_rejected"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(scores(&a), scores(&b));
    // An unknown split is named, with the ones there are.
    let mut wrong = flags.to_vec();
    wrong.extend(["--dataset", ds.to_str().unwrap(), "--split", "train"]);
    let o = run(&wrong, &tmp.path().join("wrong"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("`train` not found") && err.contains("test"),
        "{err}"
    );
}

/// Bug 3: an export with zero labels is an error, never accuracy 0 with empty scores.
#[test]
fn a_zero_label_export_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    for onnx in ["zero-labels-rm.onnx", "zero-labels-dynamic-rm.onnx"] {
        let model = copy_model("tiny-llama-rm", &tmp.path().join(onnx));
        std::fs::copy(
            root().join("fixtures/bad").join(onnx),
            model.join("model.onnx"),
        )
        .unwrap();
        let out = tmp.path().join(format!("out-{onnx}"));
        let o = run(
            &[
                "--model",
                model.to_str().unwrap(),
                "--dataset",
                "fixtures/data/llmbar.jsonl",
            ],
            &out,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{onnx}: {err}");
        assert!(err.contains("0 labels"), "{onnx}: {err}");
        assert!(
            !out.join("tiny-llama-rm.json").exists(),
            "{onnx}: no summary may be written"
        );
    }
}

/// Bug 4: data file names need not be ASCII.
#[test]
fn non_ascii_data_file_names_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = folder_dataset(&tmp.path().join("ds"), "é", "fixtures/data/llmbar.jsonl");
    // A name that is not a shard name, with a multi-byte character where the pattern looks.
    std::fs::copy(
        root().join("fixtures/data/llmbar.jsonl"),
        ds.join("data/ü-0000é-of-00001.jsonl"),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = run(
        &[
            "--model",
            "fixtures/models/tiny-llama-rm",
            "--dataset",
            ds.to_str().unwrap(),
            "--split",
            "é",
        ],
        &out,
    );
    ok(&o);
    assert_eq!(json(&out.join("tiny-llama-rm.json"))["num_prompts"], 40);
    let splits = rewardbench::data::split_files(
        &[
            "data/é-00000-of-00001.jsonl".to_string(),
            "data/ü-0000é-of-00001.jsonl".to_string(),
        ],
        None,
    );
    assert_eq!(splits[0].0, "é");
}

/// Bug 5: `--date` and `additional_special_tokens` reach the DPO path's template.
#[test]
fn dpo_templates_get_the_date_and_additional_special_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = copy_model("tiny-llama-policy", tmp.path());
    edit_json(&policy.join("tokenizer_config.json"), |c| {
        c["chat_template"] = Value::String(
            "{{ strftime_now('%Y-%m-%d') }} {{ additional_special_tokens | join(',') }}\n\
             {% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                .into(),
        );
        c["additional_special_tokens"] = serde_json::json!(["<x1>", "<x2>"]);
    });
    let out = tmp.path().join("out");
    ok(&run(
        &[
            "--model",
            policy.to_str().unwrap(),
            "--ref_free_type",
            "sum",
            "--dataset",
            "fixtures/data/pref_shape.jsonl",
            "--date",
            "2020-01-02",
        ],
        &out,
    ));
    for l in lines(&out.join("tiny-llama-policy_outputs.jsonl")) {
        let text = l["text_chosen"].as_str().unwrap();
        assert!(text.starts_with("2020-01-02 <x1>,<x2>\n"), "{text}");
    }
}

/// A `python3` on PATH that leaves a mark when it is run.
fn marking_python(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let mark = dir.join("python-ran");
    let script = bin.join("python3");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", mark.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    mark
}

/// Python is asked for a pip onnxruntime only when no other library is found.
#[test]
fn python_is_not_started_when_ort_lib_has_the_library() {
    let tmp = tempfile::tempdir().unwrap();
    let mark = marking_python(tmp.path());
    let path = format!(
        "{}:{}",
        tmp.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .current_dir(root())
        .args([
            "--model",
            "fixtures/models/tiny-llama-rm",
            "--dataset",
            "fixtures/data/pref_shape.jsonl",
            "--quiet",
            "--output_dir",
        ])
        .arg(tmp.path().join("out"))
        .env("PATH", &path)
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("VIRTUAL_ENV")
        .output()
        .unwrap();
    ok(&o);
    assert!(!mark.exists(), "python3 was started");
}

/// A missing `--model` folder is reported before the dataset is read or downloaded.
#[test]
fn a_missing_model_is_reported_before_the_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .current_dir(root())
        .args([
            "--model",
            "./no-such-model-folder",
            "--dataset",
            "also/not-there",
            "--output_dir",
        ])
        .arg(tmp.path())
        // A hub that cannot be reached: the dataset must not be tried at all.
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("HF_HOME", tmp.path().join("hf"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("no-such-model-folder"), "{err}");
    assert!(!err.contains("also/not-there"), "{err}");
}

/// Instruction data gets the same setup warnings and vocabulary checks as preference pairs.
#[test]
fn instruction_data_is_checked_like_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = ok(&run(
        &[
            "--model",
            "fixtures/models/tiny-llama-rm",
            "--dataset",
            "fixtures/data/instructions.jsonl",
            "--chat_template",
            "tulu",
        ],
        &out,
    ))
    .clone();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--chat_template tulu is ignored"), "{err}");

    let model = copy_model("tiny-llama-rm", tmp.path());
    edit_json(&model.join("config.json"), |c| c["vocab_size"] = 100.into());
    let o = run(
        &[
            "--model",
            model.to_str().unwrap(),
            "--dataset",
            "fixtures/data/instructions.jsonl",
        ],
        &tmp.path().join("out2"),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("do not belong together"),
        "{err}"
    );
}

/// `make demo` honours CARGO_TARGET_DIR, as cargo does.
#[test]
fn the_makefile_finds_the_binary_in_cargo_target_dir() {
    let o = Command::new("make")
        .current_dir(root())
        .args(["-n", "demo"])
        .env("CARGO_TARGET_DIR", "/elsewhere/target")
        .output();
    let Ok(o) = o else {
        eprintln!("SKIPPED: `make` is not installed");
        return;
    };
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("/elsewhere/target/release/rewardbench --model"),
        "{text}"
    );
}

/// DPO runs with another mode into the same folder are not refused by the first run's
/// resume cache: a finished DPO run leaves none.
#[test]
fn dpo_runs_of_other_modes_share_an_output_folder() {
    // The finished run's store does not block the next; its results are not silently
    // replaced by another mode's (refused, naming ref_free_type), unless --overwrite.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for (mode, overwrite) in [("sum", false), ("avg", false), ("avg", true)] {
        let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
            .current_dir(root())
            .args([
                "--model",
                "fixtures/models/tiny-llama-policy",
                "--ref_free_type",
                mode,
                "--dataset",
                "fixtures/data/pref_shape.jsonl",
                "--quiet",
                "--overwrite",
                if overwrite { "true" } else { "false" },
                "--output_dir",
            ])
            .arg(&out)
            .output()
            .unwrap();
        if mode == "avg" && !overwrite {
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success());
            assert!(e.contains("ref_free_type: sum there, avg now"), "{e}");
            continue;
        }
        ok(&o);
        assert!(
            !out.join("tiny-llama-policy.dpo.store.jsonl").exists(),
            "{mode}"
        );
    }
}
