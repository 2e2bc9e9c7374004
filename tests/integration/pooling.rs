//! Pooling rules and score transforms against PyTorch: two per-token exports
//! (`export_rm.py --per_token`) and an LDL-Reward-style graph with named outputs, scored under
//! every rule and transform and compared with the references `export/make_pooling_fixtures.py`
//! computed by upstream's formulas in PyTorch (`pooling-reference.json` in each model folder).
//!
//! * `tiny-llama-rm/per-token`: the tiny Llama fixture's checkpoint, one label, pad `<pad>`
//!   (id 2) apart from EOS; every text starts with a masked double BOS.
//! * `tiny-llama-bins`: ten labels, no pad token (pad = EOS), a template that ends every message
//!   with EOS: texts end in pad ids and have pad ids inside. `ldl/` is its LDL-style graph
//!   (`distribution` and `score`, no `logits`).
//!
//! Scores within 1e-4 of PyTorch; verdicts equal wherever PyTorch's margin is above that.

use std::path::{Path, PathBuf};

use rewardbench::batch::Batching;
use rewardbench::config::{HeadConfig, RunConfig};
use rewardbench::eval::{self, Evaluation};
use rewardbench::scorer::pooling::Pooling;
use rewardbench::scorer::transform::ScoreTransform;
use serde_json::Value;

use crate::util::{ints, jsonl, rewardbench, root, stderr};

const TOL: f64 = 1e-4;

fn per_token() -> PathBuf {
    root().join("fixtures/models/tiny-llama-rm/per-token")
}

fn bins() -> PathBuf {
    root().join("fixtures/models/tiny-llama-bins")
}

fn data(stem: &str) -> PathBuf {
    root().join(format!("fixtures/data/{stem}.jsonl"))
}

fn reference(model: &Path) -> Value {
    let p = model.join("pooling-reference.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn config(
    model: &Path,
    data: &Path,
    batching: Batching,
    batch_size: usize,
    head: HeadConfig,
) -> RunConfig {
    let mut c = RunConfig::local(model, data);
    c.batch.batching = batching;
    c.batch.batch_size = batch_size;
    c.device.threads = 1;
    c.head = head;
    c
}

fn rule(r: Pooling) -> HeadConfig {
    HeadConfig {
        pooling: Some(r),
        ..HeadConfig::default()
    }
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap()).collect(),
        x => vec![x.as_f64().unwrap()],
    }
}

fn close(ours: &[f32], want: &[f64], what: &str) {
    assert_eq!(ours.len(), want.len(), "{what}: labels");
    for (a, b) in ours.iter().zip(want) {
        assert!(
            (f64::from(*a) - b).abs() <= TOL,
            "{what}: ours {ours:?} vs PyTorch {want:?}"
        );
    }
}

/// Every row's chosen and rejected score against `want(side record)`, the token ids against
/// the reference's, and the verdict against `verdict(row)` where PyTorch's margin is clear.
fn check(
    ev: &Evaluation,
    refs: &Value,
    want: impl Fn(&Value) -> Vec<f64>,
    verdict: impl Fn(&[f64], &[f64]) -> bool,
    what: &str,
) {
    let rows = refs["pooling"].as_array().unwrap();
    assert_eq!(ev.rows.len(), rows.len(), "{what}: rows");
    for (i, (row, r)) in ev.rows.iter().zip(rows).enumerate() {
        let seqs = &ev.prepared.seq_of[i];
        for (k, side) in ["chosen", "rejected"].into_iter().enumerate() {
            let e = &ev.prepared.seqs[seqs[k]];
            assert_eq!(
                e.ids,
                ints(&r[side]["input_ids"]),
                "{what} row {i} {side}: ids"
            );
            assert_eq!(
                e.mask,
                ints(&r[side]["attention_mask"]),
                "{what} row {i} {side}: mask"
            );
        }
        let (c, j) = (want(&r["chosen"]), want(&r["rejected"]));
        close(row.score_chosen(), &c, &format!("{what} row {i} chosen"));
        close(
            row.score_rejected(),
            &j,
            &format!("{what} row {i} rejected"),
        );
        // lexicographic: the first label decides; an exact tie (identical texts) is wrong in
        // both, unless the two texts ran in different calls (reference batching), where
        // PyTorch's and ours are float noise
        let tie = c == j && row.score_chosen() == row.score_rejected();
        if tie || (c[0] - j[0]).abs() > TOL {
            assert_eq!(row.correct, verdict(&c, &j), "{what} row {i}: verdict");
        }
    }
}

/// Upstream's verdict: Python's list comparison (lexicographic).
fn lexicographic(c: &[f64], r: &[f64]) -> bool {
    c.partial_cmp(r) == Some(std::cmp::Ordering::Greater)
}

fn run_ok(args: &[&str]) -> std::process::Output {
    let o = rewardbench(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    o
}

fn run_err(args: &[&str]) -> String {
    let o = rewardbench(args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{args:?} should fail: {}",
        stderr(&o)
    );
    let e = stderr(&o);
    assert!(!e.contains("panicked"), "{e}");
    e
}

fn json_file(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The per-token export with no rule pools as the pooled export does: it meets the tiny
/// Llama fixture's own PyTorch references (parity's), scores and verdicts.
#[test]
fn a_per_token_export_without_a_rule_meets_the_pooled_references() {
    for stem in ["llmbar", "edge_cases"] {
        let refs: Vec<Value> = jsonl(&root().join(format!(
            "fixtures/models/tiny-llama-rm/reference/{stem}.jsonl"
        )));
        let ev = eval::evaluate(&config(
            &per_token(),
            &data(stem),
            Batching::Sorted,
            8,
            HeadConfig::default(),
        ))
        .unwrap();
        assert_eq!(ev.rows.len(), refs.len());
        for (i, (row, r)) in ev.rows.iter().zip(&refs).enumerate() {
            close(
                row.score_chosen(),
                &floats(&r["score_chosen"]),
                &format!("{stem} row {i}"),
            );
            close(
                row.score_rejected(),
                &floats(&r["score_rejected"]),
                &format!("{stem} row {i}"),
            );
            let (c, j) = (
                r["score_chosen"].as_f64().unwrap(),
                r["score_rejected"].as_f64().unwrap(),
            );
            if (c - j).abs() > TOL {
                assert_eq!(
                    row.correct,
                    r["result"].as_i64() == Some(1),
                    "{stem} row {i}"
                );
            }
        }
        // reference batching (left padding) pools the same way as the graph would
        let ev = eval::evaluate(&config(
            &per_token(),
            &data(stem),
            Batching::Reference,
            8,
            HeadConfig::default(),
        ))
        .unwrap();
        for (i, (row, r)) in ev.rows.iter().zip(&refs).enumerate() {
            close(
                row.score_chosen(),
                &floats(&r["score_chosen_left8"]),
                &format!("{stem} left8 row {i}"),
            );
            close(
                row.score_rejected(),
                &floats(&r["score_rejected_left8"]),
                &format!("{stem} left8 row {i}"),
            );
        }
    }
}

/// Each rule, each text alone (sorted batching at batch sizes 1 and 8: right padding never
/// changes a score), on both per-token exports.
#[test]
fn every_rule_matches_pytorch_on_each_text_alone() {
    for model in [per_token(), bins()] {
        let refs = reference(&model);
        for r in Pooling::ALL {
            for bs in [1, 8] {
                let ev = eval::evaluate(&config(
                    &model,
                    &data("pooling"),
                    Batching::Sorted,
                    bs,
                    rule(r),
                ))
                .unwrap();
                let what = format!("{} {} batch {bs}", model.display(), r.label());
                check(
                    &ev,
                    &refs,
                    |t| floats(&t["alone"][r.label()]["score"]),
                    lexicographic,
                    &what,
                );
            }
        }
    }
}

/// Each rule applied by upstream's formula to RewardBench's own batches (8 rows in dataset
/// order, chosen and rejected apart, left padding): batch effects included, e.g.
/// `first_pad_minus_one` reads the last token of a padded row, `mask_sum_minus_one` reads
/// into the padding.
#[test]
fn every_rule_matches_pytorch_in_rewardbenchs_left_padded_batches() {
    for model in [per_token(), bins()] {
        let refs = reference(&model);
        for r in Pooling::ALL {
            let ev = eval::evaluate(&config(
                &model,
                &data("pooling"),
                Batching::Reference,
                8,
                rule(r),
            ))
            .unwrap();
            let what = format!("{} {} reference batching", model.display(), r.label());
            check(
                &ev,
                &refs,
                |t| floats(&t["left8"][r.label()]["score"]),
                lexicographic,
                &what,
            );
        }
    }
}

/// The fixtures do exercise the differences: a pad id inside a text, trailing pad ids, the
/// masked double BOS, left padding; GRM's rule does not depend on the padding side in
/// RewardBench's batches, and upstream's right-padded GRM batches read padding (which the
/// evaluator, scoring each text alone, does not reproduce).
#[test]
fn the_rules_differ_where_the_fixtures_say() {
    let pos = |t: &Value, scope: &str, r: &str| t[scope][r]["position"].as_u64();
    let texts = |refs: &Value| -> Vec<Value> {
        refs["pooling"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| [r["chosen"].clone(), r["rejected"].clone()])
            .collect()
    };
    let p = texts(&reference(&per_token()));
    let b = texts(&reference(&bins()));
    let some = |ts: &[Value], f: &dyn Fn(&Value) -> bool| ts.iter().any(f);
    let all = |ts: &[Value], f: &dyn Fn(&Value) -> bool| ts.iter().all(f);
    // a pad id inside the text (<pad>): the token before it
    assert!(some(&p, &|t| pos(t, "alone", "first_pad_minus_one")
        < pos(t, "alone", "last_non_pad")));
    // the masked double BOS: one attended token fewer than the text's length
    assert!(all(&p, &|t| pos(t, "alone", "mask_sum_minus_one").unwrap()
        + 1
        == pos(t, "alone", "last_attended").unwrap()));
    // pad = EOS at the end: last_non_pad stops before it, last_attended and grm do not
    assert!(all(&b, &|t| pos(t, "alone", "last_non_pad")
        < pos(t, "alone", "last_attended")));
    assert!(all(&b, &|t| pos(t, "alone", "grm")
        == pos(t, "alone", "last_attended")));
    // left padding: first_pad_minus_one reads a padded row's last token, mask_sum_minus_one padding
    assert!(some(&p, &|t| pos(t, "left8", "first_pad_minus_one")
        != pos(t, "alone", "first_pad_minus_one")));
    assert!(some(&p, &|t| t["left8"]["mask_sum_minus_one"]["position"]
        .is_null()));
    // GRM: the same position alone and in left-padded batches; right-padded batches of texts
    // with a masked first column read padding for every shorter row
    for ts in [&p, &b] {
        assert!(all(ts, &|t| pos(t, "left8", "grm") == pos(t, "alone", "grm")));
        assert!(some(ts, &|t| t["right8"]["grm"]["position"].is_null()));
    }
}

/// GRM's rule gives each text's last token whether the batch is right-padded (sorted
/// batching) or left-padded (reference batching); the Skywork-VL rule it guards against does not.
#[test]
fn grm_reads_the_same_token_with_left_and_right_padding() {
    for model in [per_token(), bins()] {
        let score = |r: Pooling, b: Batching| {
            let ev = eval::evaluate(&config(&model, &data("pooling"), b, 8, rule(r))).unwrap();
            ev.rows
                .iter()
                .map(|x| x.score_chosen().to_vec())
                .collect::<Vec<_>>()
        };
        let (right, left) = (
            score(Pooling::Grm, Batching::Sorted),
            score(Pooling::Grm, Batching::Reference),
        );
        for (a, b) in right.iter().zip(&left) {
            close(
                a,
                &b.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
                "grm right vs left",
            );
        }
        let (right, left) = (
            score(Pooling::MaskSumMinusOne, Batching::Sorted),
            score(Pooling::MaskSumMinusOne, Batching::Reference),
        );
        assert!(
            right.iter().zip(&left).any(|(a, b)| a != b),
            "mask_sum_minus_one moves with the padding side"
        );
    }
}

/// Beaver's cost models: `--score_transform negate` gives minus the score, so the verdicts flip.
#[test]
fn negate_turns_costs_into_rewards() {
    let refs = reference(&per_token());
    for r in [Pooling::LastNonPad, Pooling::LastAttended] {
        let head = HeadConfig {
            pooling: Some(r),
            transform: ScoreTransform::Negate,
            ..HeadConfig::default()
        };
        let ev = eval::evaluate(&config(
            &per_token(),
            &data("pooling"),
            Batching::Sorted,
            8,
            head,
        ))
        .unwrap();
        let neg = |t: &Value| {
            floats(&t["alone"][r.label()]["score"])
                .iter()
                .map(|x| -x)
                .collect()
        };
        check(
            &ev,
            &refs,
            neg,
            lexicographic,
            &format!("negate {}", r.label()),
        );
    }
}

/// Ten labels: compared as Python lists (upstream's v1), or one column with `--score_column`.
#[test]
fn several_labels_compare_as_lists_or_by_a_chosen_column() {
    let refs = reference(&bins());
    let ev = eval::evaluate(&config(
        &bins(),
        &data("pooling"),
        Batching::Sorted,
        8,
        HeadConfig::default(),
    ))
    .unwrap();
    assert_eq!(ev.rows[0].score_chosen().len(), 10);
    check(
        &ev,
        &refs,
        |t| floats(&t["alone"]["last_non_pad"]["score"]),
        lexicographic,
        "ten labels",
    );
    for k in [0usize, 3, 9] {
        let head = HeadConfig {
            column: Some(k),
            ..HeadConfig::default()
        };
        let ev = eval::evaluate(&config(
            &bins(),
            &data("pooling"),
            Batching::Sorted,
            8,
            head,
        ))
        .unwrap();
        let col = |t: &Value| vec![floats(&t["alone"]["last_non_pad"]["score"])[k]];
        check(&ev, &refs, col, lexicographic, &format!("column {k}"));
    }
}

/// LDL-Reward's expectation over bins, and named graph outputs: the LDL-style graph's `score`
/// equals the expectation of its `distribution` (bins linspace(0, 1, 10)), both PyTorch's.
#[test]
fn expectation_over_bins_and_named_outputs() {
    let ldl = bins().join("ldl");
    let refs = reference(&bins());
    let run = |output: &str, transform: ScoreTransform| {
        let head = HeadConfig {
            output: Some(output.to_string()),
            transform,
            ..HeadConfig::default()
        };
        eval::evaluate(&config(&ldl, &data("pooling"), Batching::Sorted, 8, head)).unwrap()
    };
    let score = |t: &Value| floats(&t["ldl"]["score"]);
    check(
        &run("score", ScoreTransform::None),
        &refs,
        score,
        lexicographic,
        "ldl score",
    );
    check(
        &run("distribution", ScoreTransform::Expectation),
        &refs,
        score,
        lexicographic,
        "ldl expectation",
    );
    let dist = |t: &Value| floats(&t["ldl"]["distribution"]);
    check(
        &run("distribution", ScoreTransform::None),
        &refs,
        dist,
        lexicographic,
        "ldl distribution",
    );
    // a per-token output named explicitly is pooled like the default one
    let head = HeadConfig {
        output: Some("token_logits".into()),
        pooling: Some(Pooling::Grm),
        ..HeadConfig::default()
    };
    let ev = eval::evaluate(&config(
        &bins(),
        &data("pooling"),
        Batching::Sorted,
        8,
        head,
    ))
    .unwrap();
    check(
        &ev,
        &refs,
        |t| floats(&t["alone"]["grm"]["score"]),
        lexicographic,
        "named token_logits",
    );
    // the expectation transform on the per-token export's raw labels: sum(x_i * i / 9)
    let head = HeadConfig {
        transform: ScoreTransform::Expectation,
        ..HeadConfig::default()
    };
    let ev = eval::evaluate(&config(
        &bins(),
        &data("pooling"),
        Batching::Sorted,
        8,
        head,
    ))
    .unwrap();
    let e = |t: &Value| {
        let x = floats(&t["alone"]["last_non_pad"]["score"]);
        vec![x.iter().enumerate().map(|(i, v)| v * i as f64 / 9.0).sum()]
    };
    check(&ev, &refs, e, lexicographic, "expectation of raw labels");
}

#[test]
fn heads_that_do_not_fit_are_refused_before_any_compute() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let pooled = root().join("fixtures/models/tiny-llama-rm");
    let ldl = bins().join("ldl");
    let d = data("pooling");
    let args = |m: &Path, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--model",
            m.to_str().unwrap(),
            "--dataset",
            d.to_str().unwrap(),
            "--output_dir",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let err = |m: &Path, extra: &[&str]| {
        let a = args(m, extra);
        run_err(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // a pooled graph pools inside: no other rule, no token rewards
    let e = err(&pooled, &["--pooling", "grm"]);
    assert!(
        e.contains("pools inside the graph") && e.contains("--per_token"),
        "{e}"
    );
    assert!(err(&pooled, &["--save_token_rewards"]).contains("--save_token_rewards"));
    let e = err(&pooled.join("gqa"), &["--pooling", "first_pad_minus_one"]);
    assert!(e.contains("last non-pad token"), "{e}");
    // the LDL graph has no `logits`: its outputs are listed, --score_output is suggested
    let e = err(&ldl, &[]);
    assert!(
        e.contains("`logits` is missing")
            && e.contains("--score_output")
            && e.contains("distribution"),
        "{e}"
    );
    assert!(err(&ldl, &["--score_output", "nope"]).contains("`nope` (--score_output) is missing"));
    assert!(err(&ldl, &["--score_output", "score", "--pooling", "grm"])
        .contains("pools inside the graph"));
    // columns and bins
    assert!(err(&bins(), &["--score_column", "10"]).contains("columns 0 to 9"));
    assert!(
        err(&per_token(), &["--score_transform", "expectation"]).contains("at least two labels")
    );
    assert!(err(
        &bins(),
        &["--score_column", "1", "--score_transform", "expectation"]
    )
    .contains("pass one of the two"));
    // flags that have nothing to act on
    let policy = root().join("fixtures/models/tiny-llama-policy");
    let e = err(&policy, &["--ref_free_type", "sum", "--pooling", "grm"]);
    assert!(e.contains("reward-model exports"), "{e}");
    let e = err(&per_token(), &["--shard", "0/2", "--save_token_rewards"]);
    assert!(e.contains("--save_token_rewards"), "{e}");
    // nothing was written
    assert!(!out.join("tiny-llama-rm.json").exists() && !out.join("tiny-llama-bins.json").exists());
    assert!(!out.join("per-token.json").exists() && !out.join("tiny-llama-policy.json").exists());
}

/// RewardBench 2 with ten labels: upstream crashes (its issue #240); here the run stops before
/// any compute and asks for a column or the expectation; with one, the scores are PyTorch's.
#[test]
fn rewardbench_2_needs_one_number_per_completion() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let d = data("pooling_rb2");
    let refs = reference(&bins());
    let m = bins();
    let base = [
        "v2",
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        d.to_str().unwrap(),
        "--output_dir",
        out.to_str().unwrap(),
    ];
    let e = run_err(&base);
    assert!(
        e.contains("#240") && e.contains("--score_column") && e.contains("expectation"),
        "{e}"
    );
    assert!(!out.join("tiny-llama-bins.json").exists());
    let want_results = |scores: &[f64]| -> f64 {
        let max = scores.iter().cloned().fold(f64::MIN, f64::max);
        if scores[0] < max {
            0.0
        } else {
            1.0 / scores.iter().filter(|&&s| s == max).count() as f64
        }
    };
    let k = 4usize;
    run_ok(&[&base[..], &["--score_column", "4"]].concat());
    let lines = jsonl(&out.join("tiny-llama-bins_outputs.jsonl"));
    let rows = refs["rb2"].as_array().unwrap();
    assert_eq!(lines.len(), rows.len());
    for (line, r) in lines.iter().zip(rows) {
        let want: Vec<f64> = r["completions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| floats(&c["alone"]["last_non_pad"]["score"])[k])
            .collect();
        let got = floats(&line["scores"]);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= TOL, "row {}: {got:?} vs {want:?}", r["id"]);
        }
        assert_eq!(
            line["results"].as_f64().unwrap(),
            want_results(&want),
            "row {}",
            r["id"]
        );
    }
    let summary = json_file(&out.join("tiny-llama-bins.json"));
    assert_eq!(summary["reward_head"]["score_column"], 4, "{summary}");
    // the LDL-style graph's expectation over its distribution
    let ldl = bins().join("ldl");
    let o2 = tmp.path().join("ldl");
    run_ok(&[
        "v2",
        "--model",
        ldl.to_str().unwrap(),
        "--dataset",
        d.to_str().unwrap(),
        "--output_dir",
        o2.to_str().unwrap(),
        "--score_output",
        "distribution",
        "--score_transform",
        "expectation",
    ]);
    for (line, r) in jsonl(&o2.join("ldl_outputs.jsonl")).iter().zip(rows) {
        let want: Vec<f64> = r["completions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| floats(&c["ldl"]["score"])[0])
            .collect();
        for (a, b) in floats(&line["scores"]).iter().zip(&want) {
            assert!((a - b).abs() <= TOL, "ldl row {}", r["id"]);
        }
    }
}

/// `--save_token_rewards`: every position of every text, PyTorch's head output, the position
/// the rule read and the score there.
#[test]
fn token_rewards_hold_every_position() {
    let tmp = tempfile::tempdir().unwrap();
    for (model, extra, scope, rule, column) in [
        (per_token(), vec![], "alone", "first_pad_minus_one", None),
        (
            bins(),
            vec!["--score_column", "2"],
            "alone",
            "last_attended",
            Some(2),
        ),
        (
            per_token(),
            vec!["--batching", "reference"],
            "left8",
            "mask_sum_minus_one",
            None,
        ),
    ] {
        let refs = reference(&model);
        let out = tmp.path().join(format!("{rule}-{scope}"));
        let d = data("pooling");
        let mut args = vec![
            "--model",
            model.to_str().unwrap(),
            "--dataset",
            d.to_str().unwrap(),
            "--output_dir",
            out.to_str().unwrap(),
            "--pooling",
            rule,
            "--save_token_rewards",
        ];
        args.extend(extra);
        let o = run_ok(&args);
        let name = model.file_name().unwrap().to_string_lossy().into_owned();
        let path = out.join(format!("{name}_token_rewards.jsonl"));
        let lines = jsonl(&path);
        let rows = refs["pooling"].as_array().unwrap();
        assert_eq!(lines.len(), 2 * rows.len(), "{rule}");
        let mut nulls = 0;
        for (line, (i, side)) in lines.iter().zip(
            rows.iter()
                .enumerate()
                .flat_map(|(i, _)| [(i, "chosen"), (i, "rejected")]),
        ) {
            let r = &rows[i][side];
            assert_eq!(line["index"], i);
            assert_eq!(line["side"], side);
            assert_eq!(line["completion"], 0);
            assert_eq!(line["id"], rows[i]["id"]);
            assert_eq!(line["subset"], rows[i]["subset"]);
            assert_eq!(ints(&line["input_ids"]), ints(&r["input_ids"]));
            let tokens = r["token_logits"].as_array().unwrap();
            let rewards = line["rewards"].as_array().unwrap();
            assert_eq!(rewards.len(), tokens.len());
            let mask = ints(&r["attention_mask"]);
            for ((got, want), m) in rewards.iter().zip(tokens).zip(mask) {
                // a masked position (the double BOS) attends to nothing: no value
                if m == 0 {
                    assert!(got.is_null(), "{rule} row {i} {side}: {got}");
                    continue;
                }
                let want = floats(want);
                let want = match column {
                    Some(k) => vec![want[k]],
                    None => want,
                };
                let got = floats(got);
                assert!(
                    got.iter().zip(&want).all(|(a, b)| (a - b).abs() <= TOL),
                    "{rule} row {i} {side}"
                );
            }
            assert_eq!(
                line["pooled_at"].as_u64(),
                r[scope][rule]["position"].as_u64(),
                "{rule} row {i} {side}"
            );
            match line["pooled_at"].as_u64() {
                Some(p) => assert_eq!(floats(&line["score"]), floats(&rewards[p as usize])),
                None => nulls += 1,
            }
        }
        assert_eq!(
            nulls > 0,
            scope == "left8",
            "{rule}: reads into the padding only in left-padded batches"
        );
        assert!(stderr(&o).is_empty() || !stderr(&o).contains("panicked"));
    }
}

/// The summary records the rule; the score store's fingerprint keeps rules apart, and not
/// transforms (applied after it); a default head records nothing.
#[test]
fn the_rule_is_in_the_summary_and_the_store_fingerprint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let m = per_token();
    let d = data("pooling");
    let base = [
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        d.to_str().unwrap(),
        "--output_dir",
        out.to_str().unwrap(),
    ];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [base, extra].concat()
    }
    let summary = || json_file(&out.join("per-token.json"));
    let reused = || {
        json_file(&out.join("per-token_run.json"))["reused_calls"]
            .as_u64()
            .unwrap()
    };
    run_ok(&with(&base, &[]));
    assert!(summary().get("reward_head").is_none());
    // the same scores: the store is reused, the summary says what was asked
    run_ok(&with(
        &base,
        &["--pooling", "last_non_pad", "--score_transform", "negate"],
    ));
    assert!(reused() > 0);
    assert_eq!(summary()["reward_head"]["pooling"], "last_non_pad");
    assert_eq!(summary()["reward_head"]["score_transform"], "negate");
    // another rule: another fingerprint
    let e = run_err(&with(&base, &["--pooling", "grm"]));
    assert!(
        e.contains("different run") && e.contains("--overwrite"),
        "{e}"
    );
    run_ok(&with(&base, &["--pooling", "grm", "--overwrite"]));
    assert_eq!(summary()["reward_head"]["pooling"], "grm");
    assert_eq!(reused(), 0);
    run_ok(&with(
        &base,
        &["--pooling", "grm", "--score_transform", "negate"],
    ));
    assert!(reused() > 0);
}
