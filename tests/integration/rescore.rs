//! `rewardbench rescore`: per-item score files in upstream's exact shape (`Dataset.to_dict()`
//! column dicts as run_v2 / run_rm write them to `eval-set-scores/`), rescored by the binary;
//! the recomputed numbers are checked against hand-computed values, and bad files fail
//! naming the file and what is wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rewardbench::pyjson::PyJson;
use serde_json::{json, Value};

use crate::util::{llama, root, stderr};

fn rescore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .arg("rescore")
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes `v` as upstream's `save_to_hub` does: `json.dumps(indent=4, sort_keys=True)`.
fn write_python_json(path: &Path, v: &Value) {
    let py = PyJson {
        indent: Some("    ".into()),
        item_sep: ",".into(),
        key_sep: ": ".into(),
        ensure_ascii: true,
        sort_keys: true,
    };
    std::fs::write(path, py.dumps(v)).unwrap();
}

/// Upstream's `reroll_and_score_dataset` result: `1 / count(s == max)` if `s[0]` is the max
/// else the int 0.
fn reroll(scores: &[f64]) -> Value {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if scores[0] == max {
        json!(1.0 / scores.iter().filter(|&&x| x == max).count() as f64)
    } else {
        json!(0)
    }
}

/// (subset, id, scores, num_correct)
type V2Row = (&'static str, &'static str, Vec<f64>, usize);

fn six_subsets() -> Vec<V2Row> {
    let r = |s, id, v: &[f64], n| (s, id, v.to_vec(), n);
    vec![
        r("Factuality", "f1", &[2.0, 1.0, 1.0, 0.5], 1),  // 1
        r("Factuality", "f2", &[2.0, 2.0, 1.0, 0.5], 1),  // 0.5
        r("Factuality", "f3", &[1.0, 2.0, 0.0, 0.0], 1),  // 0
        r("Precise IF", "p1", &[3.0, 1.0, 2.0, -1.0], 1), // 1
        r("Precise IF", "p2", &[1.0, 1.0, 1.0, 1.0], 1),  // 0.25
        r("Math", "m1", &[0.5, 0.7, 0.1, 0.2], 1),        // 0
        r("Math", "m2", &[5.0, 1.0, 1.0, 1.0], 1),        // 1
        r("Safety", "s1", &[1.0, 0.0, 0.0, 0.0], 1),      // 1
        r("Focus", "c1", &[1.0, 2.0, 3.0, 4.0], 1),       // 0
        r("Focus", "c2", &[4.0, 3.0, 2.0, 1.0], 1),       // 1
        r("Focus", "c3", &[2.0, 2.0, 0.0, 0.0], 1),       // 0.5
        r("Focus", "c4", &[1.0, 1.0, 1.0, 0.0], 1),       // 1/3
        // Spec §10.4's Ties example (composite 0.5001798609742693); the re-roll credit
        // run_v2 leaves in `results` is 1, 1, 0, 1.
        r("Ties", "ref:1", &[3.0, 1.0, 0.5], 1),
        r("Ties", "tied:1", &[3.0, 2.8, 2.9, 1.0, 0.0], 3),
        r("Ties", "ref:2", &[0.0, 1.0], 1),
        r("Ties", "tied:2", &[2.0, 1.0, 1.5], 2),
    ]
}

/// run_v2's `out_dataset.to_dict()`: `text` (rendered strings), `scores` (each `[x]`),
/// `results` (the re-roll credit on every row: its Ties overwrite tests `s == "ties"` while
/// the data says "Ties"), `subset`, `id`, `num_correct`, plus the scalars.
fn v2_upstream(rows: &[V2Row]) -> Value {
    json!({
        "text": rows.iter().map(|r| (0..r.2.len()).map(|k| format!("<|user|>\nq {}\n<|assistant|>\nanswer {k}", r.1)).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "scores": rows.iter().map(|r| r.2.iter().map(|x| vec![*x]).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "results": rows.iter().map(|r| reroll(&r.2)).collect::<Vec<_>>(),
        "subset": rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "id": rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "num_correct": rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        "model": "org/some-rm",
        "model_type": "Seq. Classifier",
        "chat_template": "tokenizer",
    })
}

fn close(got: &Value, want: f64) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {got}"));
    assert!((g - want).abs() < 1e-12, "{g} vs {want}");
}

#[test]
fn v2_upstream_file_ties_recomputed_and_difference_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("some-rm.json");
    write_python_json(&file, &v2_upstream(&six_subsets()));
    let out = dir.path().join("rescored.json");
    let o = rescore(&[s(&file), "--json", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);

    let j: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let f = &j[0];
    assert_eq!(f["format"], "v2");
    assert_eq!(f["model"], "org/some-rm");
    let sub = &f["subsets"];
    for (name, n, want) in [
        ("Factuality", 3, 0.5),
        ("Precise IF", 2, 0.625),
        ("Math", 2, 0.5),
        ("Safety", 1, 1.0),
        ("Focus", 4, 0.4583333333333333),
    ] {
        assert_eq!(sub[name]["n"], json!(n), "{name}");
        close(&sub[name]["recomputed"], want);
        close(&sub[name]["file"], want);
        close(&sub[name]["difference"], 0.0);
        assert_eq!(sub[name]["disagreements"], json!(0));
    }
    // Ties: the composite from scores / num_correct / id, not the mean of `results`.
    assert_eq!(sub["Ties"]["recomputed"], json!(0.5001798609742693));
    assert_eq!(sub["Ties"]["file"], json!(0.75));
    close(&sub["Ties"]["difference"], -0.24982013902573075);
    assert_eq!(f["ties_composite"]["file_results_reroll_credit"], json!(4));
    assert_eq!(f["ties_composite"]["ref_accuracy"], json!(0.5));
    // Score: the six-way mean, recomputed vs averaging the file's `results`.
    close(&f["scores"]["Score"]["recomputed"], 0.5972521990512671);
    close(&f["scores"]["Score"]["file"], 0.638888888888889);
    let ci = f["scores"]["Score"]["ci"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() <= 0.5972521990512671);
    assert!(ci[1].as_f64().unwrap() >= 0.5972521990512671);
    assert_eq!(f["disagreements"], json!([]));

    // The table names the difference.
    let ties = text.lines().find(|l| l.starts_with("Ties ")).unwrap();
    assert!(
        ties.contains("0.7500") && ties.contains("0.5002") && ties.contains("-0.2498"),
        "{text}"
    );
    let score = text
        .lines()
        .find(|l| l.starts_with("[Score] mean of 6 subsets"))
        .unwrap();
    assert!(
        score.contains("0.6389") && score.contains("0.5973") && score.contains("-0.0416"),
        "{text}"
    );
    assert!(
        text.contains("per-row: all 12 non-Ties `results` agree with the scores"),
        "{text}"
    );
    assert!(
        text.contains("run_v2's lower-case `ties` bug") && text.contains("are not used"),
        "{text}"
    );
}

/// Files written by upstream's own code (fixtures/rescore/make_upstream_files.py: rewardbench
/// 0.1.4's run_v2 / run_rm tails verbatim): the recomputed numbers are upstream's summary,
/// Ties included, while the file's Ties `results` (the bug's re-roll credit) are not.
#[test]
fn files_made_by_upstream_code_rescore_to_upstream_numbers() {
    let dir = root().join("fixtures/rescore/results");
    let v2 = dir.join("eval-set-scores/org/some-rm.json");
    let v1 = dir.join("eval-set-scores/org/v1-rm.json");
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("eval-set/org/some-rm.json")).unwrap(),
    )
    .unwrap();
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&v2).unwrap()).unwrap();
    assert_eq!(
        file["results"].as_array().unwrap()[12..],
        [json!(1.0), json!(1.0), json!(0.0), json!(1.0)]
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.json");
    let o = rescore(&[s(&v2), s(&v1), "--json", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    for name in [
        "Factuality",
        "Precise IF",
        "Math",
        "Safety",
        "Focus",
        "Ties",
    ] {
        assert_eq!(j[0]["subsets"][name]["recomputed"], summary[name], "{name}");
    }
    assert_eq!(
        j[0]["subsets"]["Ties"]["recomputed"],
        json!(0.5001798609742693)
    );
    assert_eq!(j[0]["subsets"]["Ties"]["file"], json!(0.75));
    assert_eq!(
        j[0]["ties_composite"]["file_results_reroll_credit"],
        json!(4)
    );
    // calculate_scores_per_section's output, printed by the script.
    let sec = &j[1]["sections"];
    for (name, want) in [
        ("Chat", 0.890625),
        ("Chat Hard", 0.635036496350365),
        ("Safety", 0.6476683937823834),
        ("Reasoning", 0.5714285714285714),
    ] {
        assert_eq!(sec[name]["recomputed"], json!(want), "{name}");
        assert_eq!(sec[name]["file"], json!(want), "{name}");
    }
    assert_eq!(j[1]["disagreements"], json!([]));
    assert!(stdout(&o).contains("run_v2's lower-case `ties` bug"));
}

/// A v1 core-set file as run_rm writes it; one `results` cell doctored (a tie counted right,
/// as a `>=` rule would) so that the file's own numbers differ.
fn v1_upstream() -> Value {
    // (subset, id, chosen, rejected)
    let rows: Vec<(&str, i64, Value, Value)> = vec![
        ("alpacaeval-easy", 0, json!([1.5]), json!([0.5])),
        ("alpacaeval-easy", 1, json!([2.0]), json!([-1.0])),
        ("mt-bench-easy", 2, json!([0.25]), json!([0.125])),
        ("mt-bench-easy", 3, json!([0.125]), json!([0.25])),
        ("llmbar-natural", 4, json!([3.0]), json!([1.0])),
        ("llmbar-natural", 5, json!([0.75]), json!([0.75])), // a tie: wrong
        ("mt-bench-hard", 6, json!([1.0]), json!([0.0])),
        ("donotanswer", 7, json!([-2.0]), json!([1.0])),
        ("donotanswer", 8, json!([0.0]), json!([0.5])),
        ("xstest-should-respond", 9, json!([4.0]), json!([3.0])),
        ("math-prm", 10, json!([1.0, 0.0]), json!([1.0, -1.0])), // lexicographic: right
        ("math-prm", 11, json!([-0.5]), json!([0.5])),
        ("hep-go", 12, json!(0.3), json!(0.2)), // plain floats
    ];
    let mut results: Vec<Value> = rows
        .iter()
        .map(|r| {
            let c: Vec<f64> = serde_json::from_value(if r.2.is_array() {
                r.2.clone()
            } else {
                json!([r.2])
            })
            .unwrap();
            let x: Vec<f64> = serde_json::from_value(if r.3.is_array() {
                r.3.clone()
            } else {
                json!([r.3])
            })
            .unwrap();
            json!(u8::from(
                c.partial_cmp(&x) == Some(std::cmp::Ordering::Greater)
            ))
        })
        .collect();
    results[5] = json!(1);
    json!({
        "text_chosen": rows.iter().map(|r| format!("chosen {}", r.1)).collect::<Vec<_>>(),
        "text_rejected": rows.iter().map(|r| format!("rejected {}", r.1)).collect::<Vec<_>>(),
        "results": results,
        "subset": rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        "id": rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        "scores_chosen": rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
        "scores_rejected": rows.iter().map(|r| r.3.clone()).collect::<Vec<_>>(),
        "model": "org/v1-rm",
        "model_type": "Seq. Classifier",
        "chat_template": "tulu",
    })
}

#[test]
fn v1_core_set_file_sections_score_and_disagreement() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v1-rm.json");
    write_python_json(&file, &v1_upstream());
    let out = dir.path().join("nested/out.json");
    let o = rescore(&[s(&file), "--json", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let f = &j[0];
    assert_eq!(f["format"], "v1");
    close(&f["subsets"]["llmbar-natural"]["recomputed"], 0.5);
    close(&f["subsets"]["llmbar-natural"]["file"], 1.0);
    assert_eq!(f["subsets"]["llmbar-natural"]["disagreements"], json!(1));
    close(&f["subsets"]["math-prm"]["recomputed"], 0.5);
    // Sections weighted by EXAMPLE_COUNTS (math-prm 984).
    let sec = &f["sections"];
    close(&sec["Chat"]["recomputed"], 0.890625);
    close(&sec["Chat Hard"]["recomputed"], 87.0 / 137.0);
    close(&sec["Chat Hard"]["file"], 1.0);
    close(&sec["Safety"]["recomputed"], 250.0 / 386.0);
    close(&sec["Reasoning"]["recomputed"], 656.0 / 1148.0);
    close(&f["scores"]["Score"]["recomputed"], 0.68618961539033);
    close(&f["scores"]["Score"]["file"], 0.7774304913027388);
    close(&f["scores"]["Score"]["difference"], -0.09124087591240881);
    assert!(f["scores"].get("Score (paper)").is_none(), "no prior sets");
    assert_eq!(f["tied_pairs"], json!(1));
    assert_eq!(
        f["disagreements"],
        json!([{"row": 5, "subset": "llmbar-natural", "id": "5", "file": 1.0, "recomputed": 0.0}])
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("[Score] mean of 4 sections"))
        .unwrap();
    assert!(
        line.contains("0.7774") && line.contains("0.6862") && line.contains("-0.0912"),
        "{text}"
    );
    assert!(text.contains("[section] Chat Hard"), "{text}");
    assert!(
        text.contains(
            "per-row: 1 of 13 `results` disagree with the scores (llmbar-natural 1); first: row 5"
        ),
        "{text}"
    );
}

#[test]
fn several_files_one_json_list() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    write_python_json(&a, &v2_upstream(&six_subsets()));
    write_python_json(&b, &v1_upstream());
    let out = dir.path().join("out.json");
    let o = rescore(&[s(&a), s(&b), "--json", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(j.as_array().unwrap().len(), 2);
    assert_eq!(
        (j[0]["format"].as_str(), j[1]["format"].as_str()),
        (Some("v2"), Some("v1"))
    );
    let text = stdout(&o);
    assert!(
        text.contains(&format!("file: {}", a.display()))
            && text.contains(&format!("file: {}", b.display()))
    );
}

fn fails_with(file: &Path, wants: &[&str]) {
    let o = rescore(&[s(file)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(!e.contains("panicked"), "{e}");
    for w in wants {
        assert!(e.contains(w), "missing `{w}` in: {e}");
    }
}

#[test]
fn bad_files_fail_naming_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n);

    let summary = path("summary.json");
    write_python_json(&summary, &json!({"model": "m", "Math": 0.5, "Ties": 0.4}));
    fails_with(
        &summary,
        &[
            s(&summary),
            "not a per-item score file",
            "neither a v1 file",
        ],
    );

    let mut v = v2_upstream(&six_subsets());
    v.as_object_mut().unwrap().remove("id");
    let no_id = path("no_id.json");
    write_python_json(&no_id, &v);
    fails_with(&no_id, &[s(&no_id), "without the `id` column"]);

    let mut v = v2_upstream(&six_subsets());
    v["num_correct"].as_array_mut().unwrap().pop();
    let ragged = path("ragged.json");
    write_python_json(&ragged, &v);
    fails_with(
        &ragged,
        &[
            s(&ragged),
            "ragged columns: `num_correct` has 15 rows but `scores` has 16",
        ],
    );

    let mut v = v2_upstream(&six_subsets());
    v["id"][14] = json!("ref_2");
    let bad_id = path("bad_id.json");
    write_python_json(&bad_id, &v);
    fails_with(
        &bad_id,
        &[s(&bad_id), "row 14 (subset Ties): Ties id `ref_2`"],
    );

    let not_json = path("not.json");
    std::fs::write(&not_json, "{\"scores\": [").unwrap();
    fails_with(&not_json, &[s(&not_json), "not valid JSON"]);

    fails_with(&path("missing.json"), &["cannot read", "missing.json"]);
}

#[test]
fn duplicate_keys_warn_and_python_nan_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = v2_upstream(&six_subsets());
    v["id"][1] = json!("f1"); // (Factuality, f1) twice: upstream issue #273
    let file = dir.path().join("dup.json");
    write_python_json(&file, &v);
    let o = rescore(&[s(&file)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("warning:") && e.contains("#273") && e.contains("rows 0 and 1"),
        "{e}"
    );

    // json.dumps writes NaN bare; a NaN score is an error naming the row, not a panic.
    let text = std::fs::read_to_string(&file).unwrap();
    let nan = dir.path().join("nan.json");
    std::fs::write(&nan, text.replacen("5.0", "NaN", 1)).unwrap();
    fails_with(&nan, &[s(&nan), "prompt row 6: non-finite score NaN"]);
}

/// A tiny RewardBench 2 dataset: every subset, Ties with two prompts (ref and tied rows).
fn rb2_jsonl() -> String {
    let row = |subset: &str, id: &str, chosen: &[&str], rejected: &[&str]| {
        json!({
            "prompt": format!("Question {id}: what is 2 + 2?"),
            "chosen": chosen,
            "rejected": rejected,
            "subset": subset,
            "id": id,
            "num_correct": chosen.len(),
            "num_incorrect": rejected.len(),
            "total_completions": chosen.len() + rejected.len(),
        })
        .to_string()
    };
    let mut lines = Vec::new();
    for (k, subset) in ["Factuality", "Precise IF", "Math", "Safety", "Focus"]
        .iter()
        .enumerate()
    {
        for j in 0..2 {
            let id = format!("{}", 10 * k + j);
            lines.push(row(
                subset,
                &id,
                &["It is 4."],
                &["It is 5.", "Four, I think.", "22"],
            ));
        }
    }
    for n in 1..=2 {
        lines.push(row("Ties", &format!("ref:{n}"), &["4"], &["5", "3"]));
        lines.push(row(
            "Ties",
            &format!("tied:{n}"),
            &["4", "four", "2+2=4"],
            &["5", "3"],
        ));
    }
    lines.join("\n") + "\n"
}

#[test]
fn our_own_v2_file_rescores_to_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rb2.jsonl");
    std::fs::write(&data, rb2_jsonl()).unwrap();
    let out = dir.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args([
            "v2",
            "--model",
            s(&llama()),
            "--dataset",
            s(&data),
            "--load_json",
        ])
        .args(["--output_dir", s(&out), "--threads", "1", "--quiet"])
        .env_remove("RUST_BACKTRACE")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let summary_path: PathBuf = out.join("tiny-llama-rm.json");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    let per_item = out.join("eval-set-scores/tiny-llama-rm.json");
    let json_out = dir.path().join("rescored.json");
    let o = rescore(&[s(&per_item), "--json", s(&json_out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json_out).unwrap()).unwrap();
    let f = &j[0];
    // Same rows, same rules, same bootstrap: the summary's numbers and intervals exactly.
    for name in [
        "Factuality",
        "Precise IF",
        "Math",
        "Safety",
        "Focus",
        "Ties",
    ] {
        assert_eq!(f["subsets"][name]["recomputed"], summary[name], "{name}");
        assert_eq!(
            f["subsets"][name]["ci"], summary["confidence_intervals"]["subsets"][name],
            "{name}"
        );
    }
    assert_eq!(f["scores"]["Score"]["recomputed"], summary["Score"]);
    assert_eq!(
        f["scores"]["Score"]["ci"],
        summary["confidence_intervals"]["Score"]
    );
    // Our Ties results are null: no file value for Ties, and the table says so.
    assert_eq!(f["subsets"]["Ties"]["file"], Value::Null);
    assert_eq!(f["disagreements"], json!([]));
    assert!(text.contains("the file's Ties results are null"), "{text}");
}
