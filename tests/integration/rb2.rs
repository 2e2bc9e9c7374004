//! RewardBench 2 end to end: `rewardbench v2` and plain `rewardbench` on best-of-N rows, the
//! outputs, truncation, `--score_dtype`, bad rows, the v2 leaderboard, resume.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::util::{jsonl, llama, rewardbench, root, stderr};

const SUBSETS: [&str; 5] = ["Factuality", "Precise IF", "Math", "Safety", "Focus"];

/// Best-of-4 rows of the five plain subsets (row 1 of each: the chosen text repeated as a
/// rejected one, an exact tie), then a Ties prompt with its ref and tied rows.
fn rb2_rows() -> Vec<Value> {
    let mut rows = Vec::new();
    for (k, s) in SUBSETS.iter().enumerate() {
        for j in 0..3 {
            let chosen = format!("Answer {k}.{j}: the right one, café 東京 🙂");
            let mut rejected: Vec<String> = (0..3).map(|x| format!("wrong {k}.{j}.{x}")).collect();
            if j == 1 {
                rejected[0] = chosen.clone();
            }
            rows.push(json!({
                "id": format!("{j}"), "prompt": format!("Question {k}.{j}?"),
                "chosen": [chosen], "rejected": rejected,
                "num_correct": 1, "num_incorrect": 3, "total_completions": 4, "subset": s,
            }));
        }
    }
    rows.push(
        json!({"id": "ref:1", "prompt": "Name a colour.", "chosen": ["red"],
        "rejected": ["a dog", "seven"], "num_correct": 1, "num_incorrect": 2,
        "total_completions": 3, "subset": "Ties"}),
    );
    rows.push(json!({"id": "tied:1", "prompt": "Name a primary colour.",
        "chosen": ["red", "blue", "yellow"], "rejected": ["a dog", "seven"],
        "num_correct": 3, "num_incorrect": 2, "total_completions": 5, "subset": "Ties"}));
    rows
}

fn write_rows(path: &Path, rows: &[Value]) -> PathBuf {
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn json_file(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

fn run(args: &[&str]) -> std::process::Output {
    let o = rewardbench(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    o
}

#[test]
fn v2_writes_run_v2_outputs_and_plain_rewardbench_scores_lists_the_same_way() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_rows(&tmp.path().join("rb2.jsonl"), &rb2_rows());
    let (v2, plain) = (tmp.path().join("v2"), tmp.path().join("plain"));
    let m = llama();
    let common = [
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
    ];
    let o = run(&[
        &["v2"][..],
        &common,
        &["--output_dir", v2.to_str().unwrap()],
    ]
    .concat());
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("[Score] mean of 6 subsets"), "{table}");
    run(&[&common[..], &["--output_dir", plain.to_str().unwrap()]].concat());

    let summary = json_file(&v2.join("tiny-llama-rm.json"));
    let lines = jsonl(&v2.join("tiny-llama-rm_outputs.jsonl"));
    assert_eq!(lines.len(), 17);
    // Each row: id, subset, num_correct, scores (chosen first), results, texts, sample_hash.
    let keys: Vec<&str> = lines[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "subset",
            "num_correct",
            "scores",
            "results",
            "texts",
            "sample_hash"
        ]
    );
    let mut per_subset: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for l in &lines {
        let scores: Vec<f64> = l["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(scores.len(), l["texts"].as_array().unwrap().len());
        let subset = l["subset"].as_str().unwrap();
        if subset == "Ties" {
            assert!(l["results"].is_null(), "Ties rows have no per-row result");
            continue;
        }
        // Upstream's rule, recomputed here from the written scores.
        let max = scores.iter().copied().fold(f64::MIN, f64::max);
        let k = scores.iter().filter(|&&s| s == max).count() as f64;
        let want = if scores[0] == max { 1.0 / k } else { 0.0 };
        assert_eq!(l["results"].as_f64().unwrap(), want, "{l}");
        per_subset.entry(subset.into()).or_default().push(want);
    }
    // The exact tie (chosen repeated as a rejected answer): the same text, one score.
    let tie = &lines[1]["scores"];
    assert_eq!(tie[0], tie[1]);
    assert!(lines[1]["results"].as_f64().unwrap() <= 0.5);
    for (s, v) in &per_subset {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert_eq!(summary[s].as_f64().unwrap(), mean, "{s}");
    }
    let six: f64 = [
        "Factuality",
        "Precise IF",
        "Math",
        "Safety",
        "Focus",
        "Ties",
    ]
    .iter()
    .map(|k| summary[*k].as_f64().unwrap())
    .sum::<f64>()
        / 6.0;
    assert!((summary["Score"].as_f64().unwrap() - six).abs() < 1e-15);
    for k in [
        "model",
        "model_type",
        "chat_template",
        "confidence_intervals",
        "dataset",
        "truncation",
        "score_dtype",
    ] {
        assert!(summary.get(k).is_some(), "summary lacks {k}");
    }
    assert_eq!(summary["model_type"], "Seq. Classifier");
    assert_eq!(summary["chat_template"], "tokenizer");
    assert_eq!(summary["score_dtype"], "f32");
    assert_eq!(summary["truncation"]["max_length"], 2048);
    assert_eq!(summary["truncation"]["side"], "right");
    let ci = &summary["confidence_intervals"];
    let (lo, hi) = (
        ci["Score"][0].as_f64().unwrap(),
        ci["Score"][1].as_f64().unwrap(),
    );
    assert!(lo <= six && six <= hi, "{ci}");
    // run_v2's summary keys are sorted (json.dumps(sort_keys=True)).
    let text = std::fs::read_to_string(v2.join("tiny-llama-rm.json")).unwrap();
    let top: Vec<String> = summary.as_object().unwrap().keys().cloned().collect();
    let mut sorted = top.clone();
    sorted.sort();
    assert_eq!(top, sorted);
    assert!(text.starts_with("{\n    \"Factuality\": "), "{text}");

    // Upstream's per-item column dict.
    let item = json_file(&v2.join("eval-set-scores/tiny-llama-rm.json"));
    for col in ["text", "scores", "results", "subset", "id", "num_correct"] {
        assert_eq!(item[col].as_array().unwrap().len(), 17, "{col}");
    }
    // Each completion's score as upstream writes it: `[x]`.
    assert_eq!(item["scores"][0][0], json!([lines[0]["scores"][0]]));
    assert_eq!(item["model_type"], "Seq. Classifier");
    // One CSV row per completion.
    let csv = std::fs::read_to_string(v2.join("tiny-llama-rm_scores.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 15 * 4 + 3 + 5);
    assert!(csv.starts_with("index,id,subset,completion,correct,score,tokens,truncated\n"));

    // Plain `rewardbench` on list rows: the same scoring, the same numbers (nothing is long
    // enough for v2's truncation to matter).
    let p = json_file(&plain.join("tiny-llama-rm.json"));
    for k in [
        "Factuality",
        "Precise IF",
        "Math",
        "Safety",
        "Focus",
        "Ties",
        "Score",
    ] {
        assert_eq!(p[k], summary[k], "{k}");
    }
    assert!(p["truncation"].is_null());
}

#[test]
fn v2_truncates_on_the_tokenizers_side_and_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = rb2_rows();
    let long = "the quick brown fox jumps over the lazy dog ".repeat(400);
    rows[0]["rejected"][2] = json!(long);
    rows[3]["chosen"][0] = json!(format!("{long} but at the end it says something else"));
    let data = write_rows(&tmp.path().join("long.jsonl"), &rows);
    let m = llama();
    let out = tmp.path().join("out");
    let base = [
        "v2",
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
    ];
    let o = run(&[&base[..], &["--output_dir", out.to_str().unwrap()]].concat());
    let s = json_file(&out.join("tiny-llama-rm.json"));
    assert_eq!(s["truncation"]["truncated_texts"], 2, "{s}");
    assert!(String::from_utf8_lossy(&o.stdout)
        .contains("truncated 2 text(s) at 2048 tokens (right side)"));
    let csv = std::fs::read_to_string(out.join("tiny-llama-rm_scores.csv")).unwrap();
    let cut: Vec<&str> = csv.lines().filter(|l| l.ends_with(",2048,1")).collect();
    assert_eq!(cut.len(), 2, "{csv}");
    // Plain `rewardbench` on the same rows: a too-long text is an error naming the row.
    let o = rewardbench(
        &[
            &base[1..],
            &["--output_dir", tmp.path().join("plain").to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("line 1") && stderr(&o).contains("2048 positions"),
        "{}",
        stderr(&o)
    );
    // Left side keeps the end: the two long texts score differently from the right cut.
    let left = tmp.path().join("left");
    run(&[
        &base[..],
        &[
            "--output_dir",
            left.to_str().unwrap(),
            "--truncation_side",
            "left",
        ],
    ]
    .concat());
    let l = json_file(&left.join("tiny-llama-rm.json"));
    assert_eq!(l["truncation"]["side"], "left");
    let a = jsonl(&out.join("tiny-llama-rm_outputs.jsonl"));
    let b = jsonl(&left.join("tiny-llama-rm_outputs.jsonl"));
    assert_ne!(a[3]["scores"][0], b[3]["scores"][0]);
    assert_eq!(a[3]["scores"][1], b[3]["scores"][1]);
    // A limit beyond the model's positions: the text still does not fit, a clear error.
    let o = rewardbench(
        &[
            &base[..],
            &[
                "--output_dir",
                tmp.path().join("big").to_str().unwrap(),
                "--max_length",
                "4096",
            ],
        ]
        .concat(),
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("even after truncation") && e.contains("--max_length"),
        "{e}"
    );
}

#[test]
fn score_dtype_rounds_scores_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_rows(&tmp.path().join("rb2.jsonl"), &rb2_rows());
    let m = llama();
    let base = [
        "v2",
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
    ];
    let (f32_dir, bf16_dir) = (tmp.path().join("f32"), tmp.path().join("bf16"));
    run(&[&base[..], &["--output_dir", f32_dir.to_str().unwrap()]].concat());
    run(&[
        &base[..],
        &[
            "--output_dir",
            bf16_dir.to_str().unwrap(),
            "--score_dtype",
            "bf16",
        ],
    ]
    .concat());
    assert_eq!(
        json_file(&bf16_dir.join("tiny-llama-rm.json"))["score_dtype"],
        "bf16"
    );
    let a = jsonl(&f32_dir.join("tiny-llama-rm_outputs.jsonl"));
    let b = jsonl(&bf16_dir.join("tiny-llama-rm_outputs.jsonl"));
    for (x, y) in a.iter().zip(&b) {
        for (s, r) in x["scores"]
            .as_array()
            .unwrap()
            .iter()
            .zip(y["scores"].as_array().unwrap())
        {
            let (s, r) = (s.as_f64().unwrap() as f32, r.as_f64().unwrap() as f32);
            // The bf16 value is the f32 one rounded to 8 significant bits.
            assert_eq!(r, half_bf16(s), "{s} -> {r}");
        }
    }
}

/// bf16 round-to-nearest-even, written out (independent of the implementation's crate).
fn half_bf16(x: f32) -> f32 {
    let b = x.to_bits();
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000;
    f32::from_bits(rounded)
}

/// A change to the good rows.
type Edit = Box<dyn Fn(&mut Vec<Value>)>;

#[test]
fn bad_rb2_rows_name_the_file_row_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let m = llama();
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "total",
            Box::new(|r: &mut Vec<Value>| r[2]["total_completions"] = json!(5)),
            vec!["line 3", "`total_completions`", "is 5"],
        ),
        (
            "correct",
            Box::new(|r: &mut Vec<Value>| r[4]["num_correct"] = json!(0)),
            vec!["line 5", "`num_correct`", "out of range"],
        ),
        (
            "correct2",
            Box::new(|r: &mut Vec<Value>| r[4]["num_correct"] = json!(2)),
            vec!["line 5", "`num_correct`", "chosen"],
        ),
        (
            "empty",
            Box::new(|r: &mut Vec<Value>| r[6]["chosen"] = json!([])),
            vec!["line 7", "`chosen`", "empty"],
        ),
        (
            "nonstring",
            Box::new(|r: &mut Vec<Value>| r[7]["rejected"] = json!(["ok", 3, "x"])),
            vec!["line 8", "`rejected`", "completion 1 is a number"],
        ),
        (
            "tiesid",
            Box::new(|r: &mut Vec<Value>| r[15]["id"] = json!("reference:1")),
            vec!["line 16", "`id`", "ref:N"],
        ),
        (
            "noref",
            Box::new(|r: &mut Vec<Value>| {
                r.remove(15);
            }),
            vec!["line 16", "tied:1", "no `ref:1`"],
        ),
    ];
    for (name, edit, want) in cases {
        let mut rows = rb2_rows();
        edit(&mut rows);
        let data = write_rows(&tmp.path().join(format!("{name}.jsonl")), &rows);
        let out = tmp.path().join(format!("out-{name}"));
        let o = rewardbench(&[
            "v2",
            "--model",
            m.to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
            "--output_dir",
            out.to_str().unwrap(),
        ]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {e}");
        assert!(e.contains(&format!("{name}.jsonl")), "{name}: {e}");
        for w in want {
            assert!(e.contains(w), "{name}: `{w}` not in {e}");
        }
        assert!(!e.contains("panicked"), "{e}");
        assert!(
            !out.join("tiny-llama-rm.json").exists(),
            "{name}: a summary after a failure"
        );
    }
}

#[test]
fn v2_rejects_dpo_and_pref_sets_flags() {
    let m = llama();
    for extra in [
        &["--ref_model", "x"][..],
        &["--pref_sets"][..],
        &["--ref_free_type", "sum"][..],
    ] {
        let o = rewardbench(&[&["v2", "--model", m.to_str().unwrap()][..], extra].concat());
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("v2"), "{}", stderr(&o));
    }
}

#[test]
fn v2_leaderboard_resume_and_batch_invariance() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_rows(&tmp.path().join("rb2.jsonl"), &rb2_rows());
    let out = tmp.path().join("out");
    let models = ["tiny-llama-rm", "tiny-gpt2-rm", "tiny-mistral-rm"];
    for name in models {
        let m = root().join("fixtures/models").join(name);
        run(&[
            "v2",
            "--model",
            m.to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
            "--output_dir",
            out.to_str().unwrap(),
            "--cache",
        ]);
    }
    // A second run of one model reuses every call from its resume cache, same numbers.
    let m = llama();
    let first = std::fs::read(out.join("tiny-llama-rm.json")).unwrap();
    run(&[
        "v2",
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--output_dir",
        out.to_str().unwrap(),
        "--cache",
    ]);
    let rec = json_file(&out.join("tiny-llama-rm_run.json"));
    assert_eq!(rec["reused_calls"], rec["model_calls"], "{rec}");
    assert_eq!(
        std::fs::read(out.join("tiny-llama-rm.json")).unwrap(),
        first
    );
    // Batch size 1 and reference batching: the same verdicts, scores within float noise.
    let b1 = tmp.path().join("b1");
    run(&[
        "v2",
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--output_dir",
        b1.to_str().unwrap(),
        "--batch_size",
        "1",
        "--batching",
        "reference",
    ]);
    let (a, b) = (
        jsonl(&out.join("tiny-llama-rm_outputs.jsonl")),
        jsonl(&b1.join("tiny-llama-rm_outputs.jsonl")),
    );
    for (x, y) in a.iter().zip(&b) {
        for (s, t) in x["scores"]
            .as_array()
            .unwrap()
            .iter()
            .zip(y["scores"].as_array().unwrap())
        {
            assert!((s.as_f64().unwrap() - t.as_f64().unwrap()).abs() < 1e-4);
        }
    }
    // The v2 board: one row per model, sorted by Score, the six subsets.
    let csv = tmp.path().join("board.csv");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args([
            "leaderboard",
            out.to_str().unwrap(),
            "--output",
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.starts_with("| # | model | type | Score | 95% CI | rank (95%) | Factuality | Precise IF | Math | Safety | Focus | Ties |"), "{md}");
    let mut r = csv::Reader::from_path(&csv).unwrap();
    let scores: Vec<f64> = r
        .records()
        .map(|rec| rec.unwrap()[2].parse().unwrap())
        .collect();
    assert_eq!(scores.len(), 3);
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
}

#[test]
fn packed_export_computes_each_prompt_once_for_its_completions() {
    let tmp = tempfile::tempdir().unwrap();
    let data = write_rows(&tmp.path().join("rb2.jsonl"), &rb2_rows());
    let (plain, packed) = (tmp.path().join("plain"), tmp.path().join("packed"));
    let m = llama();
    let gqa = m.join("gqa");
    for (model, out) in [(&m, &plain), (&gqa, &packed)] {
        run(&[
            "v2",
            "--model",
            model.to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
            "--output_dir",
            out.to_str().unwrap(),
        ]);
    }
    let rec = json_file(&packed.join("gqa_run.json"));
    assert!(rec["shared_prefix_tokens"].as_u64().unwrap() > 0, "{rec}");
    let (a, b) = (
        jsonl(&plain.join("tiny-llama-rm_outputs.jsonl")),
        jsonl(&packed.join("gqa_outputs.jsonl")),
    );
    for (x, y) in a.iter().zip(&b) {
        for (s, t) in x["scores"]
            .as_array()
            .unwrap()
            .iter()
            .zip(y["scores"].as_array().unwrap())
        {
            assert!(
                (s.as_f64().unwrap() - t.as_f64().unwrap()).abs() < 1e-4,
                "{x} vs {y}"
            );
        }
        assert_eq!(x["results"], y["results"]);
    }
}

/// Every classifier fixture (and its packed export) on fixtures/data/rb2.jsonl against
/// RewardBench's own RB2 pipeline (export/rb2_reference.py: rewardbench 0.1.4's
/// load_bon_dataset_v2 + RewardBenchPipeline at batch 64 + reroll_and_score_dataset, HEAD's
/// Ties composite) on the PyTorch checkpoints: per-completion scores within 1e-4, per-row
/// results identical, subset scores and the Score within 1e-6, texts and truncation equal.
#[test]
fn scores_match_rewardbench_run_v2() {
    let data = root().join("fixtures/data/rb2.jsonl");
    let mut checked = 0;
    for name in ["tiny-gpt2-rm", "tiny-llama-rm", "tiny-mistral-rm"] {
        let dir = root().join("fixtures/models").join(name);
        let refs = jsonl(&dir.join("reference/rb2.jsonl"));
        let want = json_file(&dir.join("reference/rb2.summary.json"));
        let mut models = vec![dir.clone()];
        if dir.join("gqa/model.onnx").is_file() {
            models.push(dir.join("gqa"));
        }
        for model in models {
            let tmp = tempfile::tempdir().unwrap();
            run(&[
                "v2",
                "--model",
                model.to_str().unwrap(),
                "--dataset",
                data.to_str().unwrap(),
                "--output_dir",
                tmp.path().to_str().unwrap(),
                "--batch_size",
                "16",
            ]);
            let stem = model.file_name().unwrap().to_string_lossy().into_owned();
            let what = format!("{name} ({stem})");
            let got = jsonl(&tmp.path().join(format!("{stem}_outputs.jsonl")));
            assert_eq!(got.len(), refs.len(), "{what}");
            let mut worst = 0f64;
            for (i, (g, r)) in got.iter().zip(&refs).enumerate() {
                assert_eq!(g["id"], r["id"], "{what} row {i}");
                assert_eq!(g["texts"], r["texts"], "{what} row {i}: rendered texts");
                let (gs, rs) = (
                    g["scores"].as_array().unwrap(),
                    r["scores"].as_array().unwrap(),
                );
                assert_eq!(gs.len(), rs.len(), "{what} row {i}");
                for (a, b) in gs.iter().zip(rs) {
                    let d = (a.as_f64().unwrap() - b.as_f64().unwrap()).abs();
                    worst = worst.max(d);
                    assert!(d < 1e-4, "{what} row {i}: score {a} vs RewardBench {b}");
                }
                if r["subset"] == "Ties" {
                    assert!(g["results"].is_null());
                } else {
                    assert_eq!(
                        g["results"], r["results"],
                        "{what} row {i} ({}): result",
                        r["subset"]
                    );
                }
            }
            let s = json_file(&tmp.path().join(format!("{stem}.json")));
            for k in [
                "Factuality",
                "Precise IF",
                "Math",
                "Safety",
                "Focus",
                "Ties",
                "Score",
            ] {
                let (a, b) = (s[k].as_f64().unwrap(), want[k].as_f64().unwrap());
                assert!((a - b).abs() < 1e-6, "{what} {k}: {a} vs RewardBench {b}");
            }
            let truncated: usize = refs
                .iter()
                .map(|r| {
                    r["truncated"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|t| t.as_bool() == Some(true))
                        .count()
                })
                .sum();
            assert!(truncated >= 2, "the reference rows exercise truncation");
            // Every truncated completion is marked in the CSV.
            let csv =
                std::fs::read_to_string(tmp.path().join(format!("{stem}_scores.csv"))).unwrap();
            let cut = csv.lines().filter(|l| l.ends_with(",1")).count();
            assert_eq!(cut, truncated, "{what}: truncated completions");
            eprintln!("{what}: max |score - RewardBench| = {worst:.2e}");
            checked += 1;
        }
    }
    assert!(checked >= 3);
}
