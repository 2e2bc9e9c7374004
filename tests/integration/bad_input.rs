//! Every kind of bad input: exit code 1, a message that names the place, no panic, and no
//! result file that looks complete.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{llama, root};

/// A copy of the llama fixture's folder with `model.onnx` and files replaced.
fn model_dir(base: &Path, name: &str, onnx: Option<&[u8]>, edit: impl Fn(&Path)) -> PathBuf {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "config.json",
        "model.onnx",
    ] {
        std::fs::copy(llama().join(f), dir.join(f)).unwrap();
    }
    if let Some(bytes) = onnx {
        std::fs::write(dir.join("model.onnx"), bytes).unwrap();
    }
    edit(&dir);
    dir
}

fn set_json(path: &Path, key: &str, value: Value) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v[key] = value;
    std::fs::write(path, v.to_string()).unwrap();
}

const ROW: &str = r#"{"prompt": "p", "chosen": "a", "rejected": "b", "subset": "s", "id": 1}"#;

fn row(id: u32) -> String {
    ROW.replace("\"id\": 1", &format!("\"id\": {id}"))
}

#[test]
fn bad_inputs_fail_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = |name: &str, bytes: &[u8]| {
        let p = t.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let good = root().join("fixtures/data/llmbar.jsonl");
    let bad = root().join("fixtures/bad");
    let long_prompt = "lorem ipsum dolor sit amet ".repeat(1500);

    // (model, dataset, extra flags, what the message must name)
    let cases: Vec<(PathBuf, PathBuf, Vec<&str>, Vec<String>)> = vec![
        (llama(), data("json.jsonl", format!("{}\n{}\n{{\"prompt\": \n", row(1), row(2)).as_bytes()), vec![], vec!["json.jsonl".into(), "line 3".into(), "invalid JSON".into()]),
        (llama(), data("utf8.jsonl", &[row(1).as_bytes(), b"\n{\"prompt\": \"\xff\xfe\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"].concat()), vec![], vec!["utf8.jsonl".into(), "line 2".into(), "UTF-8".into()]),
        (llama(), data("missing.jsonl", format!("{}\n{{\"prompt\": \"p\", \"chosen\": \"a\"}}\n", row(1)).as_bytes()), vec![], vec!["missing.jsonl".into(), "line 2".into(), "`rejected`".into()]),
        (llama(), data("type.jsonl", format!("{}\n{}\n{{\"prompt\": 7, \"chosen\": \"a\", \"rejected\": \"b\"}}\n", row(1), row(2)).as_bytes()), vec![], vec!["type.jsonl".into(), "line 3".into(), "`prompt`".into()]),
        (llama(), data("empty.jsonl", b"\n\n"), vec![], vec!["empty.jsonl".into(), "no rows".into()]),
        (llama(), data("dup.jsonl", format!("{}\n{}\n{}\n", row(1), row(2), row(1)).as_bytes()), vec![], vec!["dup.jsonl".into(), "line 3".into(), "line 1".into(), "same id 1".into()]),
        (llama(), data("turns.jsonl", br#"{"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "chosen": "x", "rejected": "y"}"#), vec![], vec!["turns.jsonl".into(), "line 1".into(), "user turn".into()]),
        (llama(), data("long.jsonl", format!("{}\n{{\"prompt\": \"{long_prompt}\", \"chosen\": \"a\", \"rejected\": \"b\", \"id\": 9}}\n", row(1)).as_bytes()), vec![], vec!["long.jsonl".into(), "line 2".into(), "2048 positions".into(), "--force_truncation".into()]),
        (model_dir(t, "small_vocab", None, |d| set_json(&d.join("config.json"), "vocab_size", Value::from(100))), good.clone(), vec![], vec!["tokenizer".into(), "only 100".into(), "do not belong".into()]),
        (model_dir(t, "corrupt", Some(b"this is not an onnx file"), |_| {}), good.clone(), vec![], vec!["corrupt/model.onnx".into(), "cannot load ONNX model".into()]),
        (model_dir(t, "wrong_io", Some(&std::fs::read(bad.join("wrong-io.onnx")).unwrap()), |_| {}), good.clone(), vec![], vec!["wrong_io/model.onnx".into(), "logits".into(), "scores".into(), "input_ids".into()]),
        (model_dir(t, "nan", Some(&std::fs::read(bad.join("nan-rm.onnx")).unwrap()), |_| {}), good.clone(), vec![], vec!["llmbar.jsonl".into(), "line 1".into(), "non-finite".into()]),
        (model_dir(t, "raises", None, |d| set_json(&d.join("tokenizer_config.json"), "chat_template", Value::from("{{ raise_exception('System role not supported') }}"))), good.clone(), vec![], vec!["raises".into(), "System role not supported".into()]),
        (model_dir(t, "runaway", None, |d| set_json(&d.join("tokenizer_config.json"), "chat_template", Value::from("{% for i in range(100000) %}{% for j in range(100000) %}{{ messages[0].content }}{% endfor %}{% endfor %}"))), good.clone(), vec![], vec!["runaway".into(), "limit".into()]),
    ];
    for (model, dataset, extra, needles) in cases {
        let out = t.join("out");
        let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
            .args([
                "--model",
                model.to_str().unwrap(),
                "--dataset",
                dataset.to_str().unwrap(),
            ])
            .args([
                "--output_dir",
                out.to_str().unwrap(),
                "--threads",
                "1",
                "--quiet",
            ])
            .args(&extra)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let what = format!("{} on {}", model.display(), dataset.display());
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        for n in &needles {
            assert!(
                err.contains(n.as_str()),
                "{what}: the message should name `{n}`: {err}"
            );
        }
        assert!(!err.contains("panicked"), "{what}: {err}");
        let name = model.file_name().unwrap().to_string_lossy().into_owned();
        for f in [
            format!("{name}.json"),
            format!("{name}_outputs.jsonl"),
            format!("{name}_scores.csv"),
        ] {
            assert!(
                !out.join(&f).exists(),
                "{what}: {f} written after a failure"
            );
        }
    }
}

#[test]
fn truncation_makes_long_rows_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let long_prompt = "lorem ipsum dolor sit amet ".repeat(1500);
    let data = tmp.path().join("long.jsonl");
    std::fs::write(
        &data,
        format!("{{\"prompt\": \"{long_prompt}\", \"chosen\": \"a\", \"rejected\": \"b\"}}\n"),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args([
            "--model",
            llama().to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
        ])
        .args([
            "--output_dir",
            tmp.path().join("out").to_str().unwrap(),
            "--threads",
            "1",
            "--quiet",
        ])
        .args(["--force_truncation", "--max_length", "256"])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
