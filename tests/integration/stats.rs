//! Statistics on result files: length baselines against a direct count on the rows,
//! `rewardbench compare` against direct counts and the summaries, mismatched datasets
//! refused, and the leaderboard's rank ranges.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{rewardbench, root, stderr};
use rewardbench::scoring::stats::{holm, mcnemar_exact, sidak};

fn run_v1(model: &str, data: &Path, out: &Path) {
    let o = rewardbench(&[
        "--model",
        root().join("fixtures/models").join(model).to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--load_json",
        "--output_dir",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn run_v2(model: &str, out: &Path) {
    let o = rewardbench(&[
        "v2",
        "--model",
        root().join("fixtures/models").join(model).to_str().unwrap(),
        "--dataset",
        root().join("fixtures/data/rb2.jsonl").to_str().unwrap(),
        "--output_dir",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A subcommand (compare, leaderboard): no run flags added.
fn tool(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn llmbar() -> PathBuf {
    root().join("fixtures/data/llmbar.jsonl")
}

/// Tokens of a completion in the model's tokenizer, without special tokens.
fn tokens(model: &str, text: &str) -> usize {
    let t = tokenizers::Tokenizer::from_file(
        root()
            .join("fixtures/models")
            .join(model)
            .join("tokenizer.json"),
    )
    .unwrap();
    t.encode(text, false).unwrap().get_ids().len()
}

#[test]
fn length_baselines_equal_a_direct_count_on_the_rows() {
    let tmp = tempfile::tempdir().unwrap();
    run_v1("tiny-llama-rm", &llmbar(), tmp.path());
    let summary = json(&tmp.path().join("tiny-llama-rm.json"));
    let rows: Vec<Value> = std::fs::read_to_string(llmbar())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut count: std::collections::BTreeMap<String, [usize; 5]> = Default::default();
    for r in &rows {
        let (c, j) = (
            r["chosen"].as_str().unwrap(),
            r["rejected"].as_str().unwrap(),
        );
        let (cc, jc) = (c.chars().count(), j.chars().count());
        let (ct, jt) = (tokens("tiny-llama-rm", c), tokens("tiny-llama-rm", j));
        let e = count
            .entry(r["subset"].as_str().unwrap().into())
            .or_default();
        e[0] += usize::from(ct > jt);
        e[1] += usize::from(ct < jt);
        e[2] += usize::from(cc > jc);
        e[3] += usize::from(cc < jc);
        e[4] += 1;
    }
    let b = &summary["length_baselines"];
    assert_eq!(b.as_object().unwrap().len(), count.len());
    for (subset, [lt, st, lc, sc, n]) in &count {
        let got = &b[subset];
        for (key, k) in [
            ("longer_tokens", lt),
            ("shorter_tokens", st),
            ("longer_chars", lc),
            ("shorter_chars", sc),
        ] {
            assert_eq!(
                got[key].as_f64().unwrap(),
                *k as f64 / *n as f64,
                "{subset} {key}"
            );
        }
        // The flag's test: the model's rows against the better baseline's, exact McNemar.
        let t = &summary["length_baseline_tests"][subset];
        let best = [lt, st, lc, sc].into_iter().max().unwrap();
        assert_eq!(
            t["baseline_accuracy"].as_f64().unwrap(),
            *best as f64 / *n as f64
        );
        assert_eq!(
            t["accuracy"].as_f64().unwrap(),
            summary["extra_results"][subset].as_f64().unwrap()
        );
        let beats = t["beats_baseline"].as_bool().unwrap();
        assert_eq!(
            beats,
            t["accuracy"].as_f64() > t["baseline_accuracy"].as_f64()
                && t["p_value"].as_f64().unwrap() < 0.05
        );
    }

    // RewardBench 2: the chosen answer against all three rejected ones.
    run_v2("tiny-llama-rm", &tmp.path().join("v2"));
    let summary = json(&tmp.path().join("v2/tiny-llama-rm.json"));
    let mut count: std::collections::BTreeMap<String, [usize; 3]> = Default::default();
    for l in std::fs::read_to_string(root().join("fixtures/data/rb2.jsonl"))
        .unwrap()
        .lines()
    {
        let r: Value = serde_json::from_str(l).unwrap();
        let len = |v: &Value| v.as_str().unwrap().chars().count();
        let chosen: Vec<usize> = r["chosen"].as_array().unwrap().iter().map(len).collect();
        let rejected: Vec<usize> = r["rejected"].as_array().unwrap().iter().map(len).collect();
        let e = count
            .entry(r["subset"].as_str().unwrap().into())
            .or_default();
        e[0] += usize::from(chosen.iter().all(|c| rejected.iter().all(|j| c > j)));
        e[1] += usize::from(chosen.iter().all(|c| rejected.iter().all(|j| c < j)));
        e[2] += 1;
    }
    for (subset, [l, s, n]) in &count {
        let got = &summary["length_baselines"][subset];
        assert_eq!(
            got["longer_chars"].as_f64().unwrap(),
            *l as f64 / *n as f64,
            "{subset}"
        );
        assert_eq!(
            got["shorter_chars"].as_f64().unwrap(),
            *s as f64 / *n as f64,
            "{subset}"
        );
    }
    // Ties is a composite: its baselines are shown, its flag is not computed.
    assert!(summary["length_baseline_tests"].get("Ties").is_none());
    assert!(summary["length_baseline_tests"].get("Focus").is_some());
}

/// Rows only A / only B gets right, by subset, counted on the two outputs files.
fn discordant(a: &Path, b: &Path) -> std::collections::BTreeMap<String, (u64, u64, usize)> {
    let mut out: std::collections::BTreeMap<String, (u64, u64, usize)> = Default::default();
    let (la, lb) = (lines(a), lines(b));
    assert_eq!(la.len(), lb.len());
    for (x, y) in la.iter().zip(&lb) {
        assert_eq!(x["id"], y["id"]);
        let e = out.entry(x["subset"].as_str().unwrap().into()).or_default();
        let (rx, ry) = (
            x["results"].as_i64().unwrap(),
            y["results"].as_i64().unwrap(),
        );
        e.0 += u64::from(rx > ry);
        e.1 += u64::from(rx < ry);
        e.2 += 1;
    }
    out
}

#[test]
fn compare_v1_counts_the_discordant_rows_and_corrects_across_subsets() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run_v1("tiny-llama-rm", &llmbar(), &a);
    run_v1("tiny-gpt2-rm", &llmbar(), &b);
    let out = tmp.path().join("cmp.json");
    let o = tool(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("verdicts (alpha 0.05"), "{text}");
    let c = json(&out);
    let want = discordant(
        &a.join("tiny-llama-rm_outputs.jsonl"),
        &b.join("tiny-gpt2-rm_outputs.jsonl"),
    );
    let (sa, sb) = (
        json(&a.join("tiny-llama-rm.json")),
        json(&b.join("tiny-gpt2-rm.json")),
    );
    let subsets = c["subsets"].as_object().unwrap();
    assert_eq!(subsets.len(), want.len());
    let mut p = Vec::new();
    for (name, (x, y, n)) in &want {
        let s = &subsets[name];
        assert_eq!(s["n"].as_u64().unwrap() as usize, *n);
        assert_eq!(s["a_only"].as_u64().unwrap(), *x, "{name}");
        assert_eq!(s["b_only"].as_u64().unwrap(), *y, "{name}");
        assert_eq!(s["a_accuracy"], sa["extra_results"][name]);
        assert_eq!(s["b_accuracy"], sb["extra_results"][name]);
        assert_eq!(s["test"], "exact McNemar");
        let pv = s["p_value"].as_f64().unwrap();
        assert!((pv - mcnemar_exact(*x, *y)).abs() < 1e-12, "{name}");
        assert!(s["verdict"].as_str().unwrap().starts_with(name.as_str()));
        p.push(pv);
    }
    for ((name, _), (h, sd)) in want.iter().zip(holm(&p).into_iter().zip(sidak(&p))) {
        assert!((subsets[name]["p_holm"].as_f64().unwrap() - h).abs() < 1e-12);
        assert!((subsets[name]["p_sidak"].as_f64().unwrap() - sd).abs() < 1e-12);
    }
    // The section: the same number as each summary's section score.
    let sec = &c["sections"]["Chat Hard"];
    assert!(
        (sec["a_accuracy"].as_f64().unwrap() - sa["section_scores"]["Chat Hard"].as_f64().unwrap())
            .abs()
            < 1e-12
    );
    assert!(
        (sec["b_accuracy"].as_f64().unwrap() - sb["section_scores"]["Chat Hard"].as_f64().unwrap())
            .abs()
            < 1e-12
    );
    let ps = sec["p_value"].as_f64().unwrap();
    assert!(ps > 0.0 && ps <= 1.0);

    // A run against itself: no difference anywhere, p = 1.
    let o = tool(&[
        "compare",
        a.to_str().unwrap(),
        a.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = json(&out);
    for (_, s) in c["subsets"].as_object().unwrap() {
        assert_eq!(
            (s["a_only"].as_u64(), s["p_value"].as_f64()),
            (Some(0), Some(1.0))
        );
    }
}

#[test]
fn compare_v2_agrees_with_the_summaries_ties_composite_included() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run_v2("tiny-llama-rm", &a);
    run_v2("tiny-gpt2-rm", &b);
    let out = tmp.path().join("cmp.json");
    let o = tool(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = json(&out);
    let (sa, sb) = (
        json(&a.join("tiny-llama-rm.json")),
        json(&b.join("tiny-gpt2-rm.json")),
    );
    for name in [
        "Factuality",
        "Precise IF",
        "Math",
        "Safety",
        "Focus",
        "Ties",
    ] {
        let s = &c["subsets"][name];
        assert!(
            (s["a_accuracy"].as_f64().unwrap() - sa[name].as_f64().unwrap()).abs() < 1e-12,
            "{name}"
        );
        assert!(
            (s["b_accuracy"].as_f64().unwrap() - sb[name].as_f64().unwrap()).abs() < 1e-12,
            "{name}"
        );
        let p = s["p_value"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{name}: {p}");
    }
    assert!(
        c["subsets"]["Ties"]["a_only"].is_null(),
        "a composite has no row-level counts"
    );
    let score = &c["score"];
    assert!((score["a_accuracy"].as_f64().unwrap() - sa["Score"].as_f64().unwrap()).abs() < 1e-12);
    assert!((score["b_accuracy"].as_f64().unwrap() - sb["Score"].as_f64().unwrap()).abs() < 1e-12);

    // The leaderboard ranks both with their interval-implied ranges.
    let board = tmp.path().join("board.csv");
    let o = tool(&[
        "leaderboard",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--output",
        board.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("| rank (95%) |"), "{md}");
    let mut r = csv::Reader::from_path(&board).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(&rows[0][col("rank 95% best")], "1");
    assert_eq!(&rows[0][col("within noise of #1")], "true");
    let worst: usize = rows[1][col("rank 95% worst")].parse().unwrap();
    assert_eq!(worst, 2);
}

#[test]
fn compare_refuses_runs_of_different_datasets() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    run_v1("tiny-llama-rm", &llmbar(), &a);
    // One row's chosen answer edited: its sample_hash differs.
    let text = std::fs::read_to_string(llmbar()).unwrap();
    let mut rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let edited = rows[3]["id"].clone();
    rows[3]["chosen"] = Value::String("an edited answer".into());
    let write = |name: &str, rows: &[Value]| {
        let p = tmp.path().join(name);
        let body: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        std::fs::write(&p, body.join("\n") + "\n").unwrap();
        p
    };
    let b = tmp.path().join("b");
    run_v1("tiny-llama-rm", &write("edited.jsonl", &rows), &b);
    let o = tool(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("not the same dataset") && e.contains("sample_hash"),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "/{}",
            edited.as_str().map_or(edited.to_string(), str::to_string)
        )),
        "{e}"
    );

    // A row missing: named with the count and both files.
    rows.remove(0);
    let c = tmp.path().join("c");
    run_v1("tiny-llama-rm", &write("short.jsonl", &rows[..]), &c);
    let o = tool(&["compare", a.to_str().unwrap(), c.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("1 row(s) of") && e.contains("tiny-llama-rm_outputs.jsonl"),
        "{e}"
    );

    // v1 against RewardBench 2.
    let d = tmp.path().join("d");
    run_v2("tiny-llama-rm", &d);
    let o = tool(&["compare", a.to_str().unwrap(), d.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("compare runs of the same benchmark"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn compare_reads_judge_outputs_with_half_credit() {
    // Two judge runs' outputs (the shape `rewardbench gen` writes): 0.5 is a failed call's
    // credit, so the test is the paired permutation test, not McNemar.
    let tmp = tempfile::tempdir().unwrap();
    let write = |dir: &str, results: &[f64]| {
        let d = tmp.path().join(dir);
        std::fs::create_dir_all(&d).unwrap();
        let body: Vec<String> = results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                serde_json::json!({"id": i, "subset": "s", "results": r, "positions": [0],
                    "judgements": [], "failed_calls": 0, "unreadable_answers": 0,
                    "sample_hash": format!("h{i}")})
                .to_string()
            })
            .collect();
        std::fs::write(d.join("judge_outputs.jsonl"), body.join("\n") + "\n").unwrap();
        d
    };
    let a = write("a", &[1.0; 30]);
    let mut r = vec![0.0; 30];
    r[0] = 0.5;
    let b = write("b", &r);
    let out = tmp.path().join("cmp.json");
    let o = tool(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = json(&out);
    let s = &c["subsets"]["s"];
    assert_eq!(s["test"], "paired permutation");
    assert_eq!(s["a_only"], 30);
    // Every row favours A: only the all-A and all-B sign patterns reach |d|, 2 / 2^30 exactly
    // in theory; from 10,000 random swaps the estimate is (1 + 0) / 10,001.
    assert!((s["p_value"].as_f64().unwrap() - 1.0 / 10_001.0).abs() < 1e-12);
    assert!(
        s["verdict"]
            .as_str()
            .unwrap()
            .contains("A is better than B"),
        "{}",
        s["verdict"]
    );
}
