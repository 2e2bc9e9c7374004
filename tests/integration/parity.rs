//! Parity with PyTorch: every fixture model (and its fused-attention export in `gqa/`, where
//! there is one), every fixture data file, against the reference scores
//! `export/make_fixtures.py` computed with transformers the way RewardBench does.
//!
//! Tolerances: scores within 1e-4 of PyTorch (fp32 ONNX Runtime vs fp32 PyTorch), verdicts
//! identical; batch sizes agree within 1e-5 (sorted batching is padding-invariant). The `gqa/`
//! exports take the packed contract, so their sorted runs also check shared-prefix rows
//! (texts of one prompt in one row) against PyTorch scoring each text alone.

use std::path::{Path, PathBuf};

use rewardbench::batch::{self, Batching, Side};
use rewardbench::config::RunConfig;
use rewardbench::eval::{self, Evaluation, RowResult};
use serde_json::Value;

use crate::util::{ints, root};

const PARITY_TOL: f64 = 1e-4;
const BATCH_TOL: f64 = 1e-5;

/// (model folder, data file, reference rows) for every committed reference file.
fn cases() -> Vec<(PathBuf, PathBuf, Vec<Value>)> {
    let mut out = Vec::new();
    let models = root().join("fixtures/models");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&models)
        .expect("fixtures/models exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("reference").is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut refs: Vec<PathBuf> = std::fs::read_dir(dir.join("reference"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        refs.sort();
        for r in refs {
            let stem = r.file_stem().unwrap().to_string_lossy().into_owned();
            if stem == "rb2" {
                continue; // RewardBench 2's reference: rb2::scores_match_rewardbench_run_v2
            }
            let data = root().join("fixtures/data").join(format!("{stem}.jsonl"));
            assert!(
                data.is_file(),
                "reference {} has no data file {}",
                r.display(),
                data.display()
            );
            let rows: Vec<Value> = std::fs::read_to_string(&r)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            // The same checkpoint exported with fused attention (export_rm.py --attention gqa)
            // must meet the same PyTorch references.
            let gqa = dir.join("gqa");
            if gqa.join("model.onnx").is_file() {
                out.push((gqa, data.clone(), rows.clone()));
            }
            out.push((dir.clone(), data, rows));
        }
    }
    assert!(
        out.len() >= 4,
        "expected reference files for at least two models and two data files, found {}",
        out.len()
    );
    let archs: std::collections::BTreeSet<_> = out.iter().map(|c| c.0.clone()).collect();
    assert!(archs.len() >= 2, "expected at least two fixture models");
    out
}

fn config(model: &Path, data: &Path, batch_size: usize, batching: Batching) -> RunConfig {
    let mut c = RunConfig::local(model, data);
    c.batch.batch_size = batch_size;
    c.batch.batching = batching;
    c.device.threads = 1;
    c
}

fn score(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("reference score is not a number: {v}"))
}

fn scalar(s: &[f32]) -> f64 {
    assert_eq!(s.len(), 1, "fixture models have one label");
    f64::from(s[0])
}

/// Largest score difference between two results of the same row.
fn row_diff(a: &RowResult, b: &RowResult) -> f64 {
    (scalar(a.score_chosen()) - scalar(b.score_chosen()))
        .abs()
        .max((scalar(a.score_rejected()) - scalar(b.score_rejected())).abs())
}

fn check_against(ev: &Evaluation, refs: &[Value], suffix: &str, what: &str) -> f64 {
    assert_eq!(ev.rows.len(), refs.len(), "{what}: row count");
    let mut worst = 0.0f64;
    for (i, (row, r)) in ev.rows.iter().zip(refs).enumerate() {
        let (c, j) = (scalar(row.score_chosen()), scalar(row.score_rejected()));
        let (rc, rj) = (
            score(&r[format!("score_chosen{suffix}")]),
            score(&r[format!("score_rejected{suffix}")]),
        );
        let d = (c - rc).abs().max((j - rj).abs());
        worst = worst.max(d);
        assert!(
            d <= PARITY_TOL,
            "{what} row {i}: ours ({c}, {j}) vs PyTorch ({rc}, {rj})"
        );
        let want = r[format!("result{suffix}")].as_i64().unwrap() == 1;
        // Where PyTorch's own margin is inside the tolerance (identical texts padded to
        // different lengths), its verdict is float noise; the scores are still checked above.
        if (rc - rj).abs() > PARITY_TOL || suffix.is_empty() {
            assert_eq!(
                row.correct, want,
                "{what} row {i}: verdict differs (ours {c} vs {j})"
            );
        }
    }
    worst
}

#[test]
fn texts_and_token_ids_match_transformers() {
    for (model, data, refs) in cases() {
        let what = format!("{} on {}", model.display(), data.display());
        let p = eval::prepare(&config(&model, &data, 8, Batching::Reference)).unwrap();
        for (i, (r, rendered)) in refs.iter().zip(&p.rendered).enumerate() {
            assert_eq!(
                rendered.prompt,
                r["prompt"].as_str().unwrap(),
                "{what} row {i}: prompt"
            );
            assert_eq!(
                rendered.chosen[0],
                r["text_chosen"].as_str().unwrap(),
                "{what} row {i}: text_chosen"
            );
            assert_eq!(
                rendered.rejected[0],
                r["text_rejected"].as_str().unwrap(),
                "{what} row {i}: text_rejected"
            );
            let (c, j) = (p.seq_of[i][0], p.seq_of[i][1]);
            assert_eq!(
                p.seqs[c].ids,
                ints(&r["input_ids_chosen"]),
                "{what} row {i}: chosen ids"
            );
            assert_eq!(
                p.seqs[c].mask,
                ints(&r["attention_mask_chosen"]),
                "{what} row {i}: chosen mask"
            );
            assert_eq!(
                p.seqs[j].ids,
                ints(&r["input_ids_rejected"]),
                "{what} row {i}: rejected ids"
            );
            assert_eq!(
                p.seqs[j].mask,
                ints(&r["attention_mask_rejected"]),
                "{what} row {i}: rejected mask"
            );
        }
    }
}

#[test]
fn scores_match_pytorch_at_every_batch_size() {
    for (model, data, refs) in cases() {
        let mut base: Option<Vec<(f64, f64)>> = None;
        for bs in [1, 3, 8] {
            let what = format!(
                "{} on {} (sorted, batch {bs})",
                model.display(),
                data.display()
            );
            let ev = eval::evaluate(&config(&model, &data, bs, Batching::Sorted)).unwrap();
            let worst = check_against(&ev, &refs, "", &what);
            eprintln!("{what}: max |ours - PyTorch| = {worst:.2e}");
            // A packed export computes each prompt once for its answers: the rows above
            // went through shared-prefix rows, not one text per row.
            if model.ends_with("gqa") {
                assert!(
                    ev.stats.shared_tokens > 0,
                    "{what}: the packed export shared no prefix"
                );
            }
            let scores: Vec<(f64, f64)> = ev
                .rows
                .iter()
                .map(|r| (scalar(r.score_chosen()), scalar(r.score_rejected())))
                .collect();
            match &base {
                None => base = Some(scores),
                Some(b) => {
                    for (i, (x, y)) in b.iter().zip(&scores).enumerate() {
                        let d = (x.0 - y.0).abs().max((x.1 - y.1).abs());
                        assert!(d <= BATCH_TOL, "{what} row {i}: batch 1 {x:?} vs {y:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn reference_batching_reproduces_rewardbench_batch_8() {
    for (model, data, refs) in cases() {
        if refs.iter().any(|r| r.get("score_chosen_left8").is_none()) {
            panic!(
                "{}: reference rows lack the batch-8 left-padded scores",
                model.display()
            );
        }
        let what = format!(
            "{} on {} (reference batching, batch 8)",
            model.display(),
            data.display()
        );
        let ev = eval::evaluate(&config(&model, &data, 8, Batching::Reference)).unwrap();
        let worst = check_against(&ev, &refs, "_left8", &what);
        eprintln!("{what}: max |ours - PyTorch| = {worst:.2e}");
    }
}

/// Sorting by length and the token budget change which rows share a call, never the scores:
/// compare with dataset-order calls (RewardBench's grouping, right-padded) at batch 8.
#[test]
fn sorting_and_token_budget_do_not_change_scores() {
    for (model, data, _) in cases() {
        let what = format!("{} on {}", model.display(), data.display());
        let cfg = config(&model, &data, 8, Batching::Reference);
        let prepared = eval::prepare(&cfg).unwrap();
        let plans: Vec<batch::Plan> = batch::plan_reference(&prepared.seq_of, 8)
            .into_iter()
            .map(|mut p| {
                p.side = Side::Right;
                p
            })
            .collect();
        let dataset_order = eval::run_planned(prepared, &cfg, plans).unwrap();
        for (max_tokens, share) in [
            (0, true),
            (600, true),
            (RunConfig::default().batch.max_batch_tokens, true),
            (RunConfig::default().batch.max_batch_tokens, false),
        ] {
            let mut c = config(&model, &data, 8, Batching::Sorted);
            c.batch.max_batch_tokens = max_tokens;
            c.batch.share_prefixes = share;
            let sorted = eval::evaluate(&c).unwrap();
            if !share {
                assert_eq!(
                    sorted.stats.shared_tokens, 0,
                    "{what}: --share_prefixes false"
                );
            }
            for (i, (a, b)) in dataset_order.rows.iter().zip(&sorted.rows).enumerate() {
                let d = row_diff(a, b);
                assert!(
                    d <= BATCH_TOL,
                    "{what} row {i} (max_batch_tokens {max_tokens}, share_prefixes {share}): differs by {d}"
                );
            }
        }
    }
}

/// A prompt's texts share a row only while the row fits the model's positions (a gqa
/// export's rotary table is `max_position_embeddings` long): texts that each fit but whose
/// shared row would not stay apart, and still match one-text rows.
#[test]
fn packed_rows_fit_the_models_positions() {
    let model = root().join("fixtures/models/tiny-llama-rm/gqa");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("long.jsonl");
    let row = |id: u32, prompt: String, chosen: String, rejected: String| {
        serde_json::json!({"prompt": prompt, "chosen": chosen, "rejected": rejected,
                           "subset": "long", "id": id})
        .to_string()
    };
    let rows = [
        row(
            0,
            "a b ".repeat(700),
            "the cat ".repeat(160),
            "alpha ".repeat(120),
        ),
        row(
            1,
            "a b ".repeat(150),
            "the cat ".repeat(15),
            "alpha ".repeat(12),
        ),
    ];
    std::fs::write(&data, rows.join("\n") + "\n").unwrap();
    let cfg = config(&model, &data, 8, Batching::Sorted);
    let prepared = eval::prepare(&cfg).unwrap();
    let max = prepared.model.max_positions().unwrap();
    let (c, r) = (prepared.seq_of[0][0], prepared.seq_of[0][1]);
    let shared = batch::row_len(&prepared.seqs, &[c, r]);
    assert!(
        prepared.seqs[c].ids.len() <= max && prepared.seqs[r].ids.len() <= max && shared > max,
        "row 0 must fit alone ({} and {} tokens) but not shared ({shared} > {max})",
        prepared.seqs[c].ids.len(),
        prepared.seqs[r].ids.len()
    );
    let packed = eval::run(prepared, &cfg).unwrap();
    assert!(
        packed.stats.shared_tokens > 0,
        "row 1 should share its prompt"
    );
    let mut c = cfg.clone();
    c.batch.share_prefixes = false;
    let plain = eval::evaluate(&c).unwrap();
    for (i, (a, b)) in packed.rows.iter().zip(&plain.rows).enumerate() {
        let d = row_diff(a, b);
        assert!(
            d <= BATCH_TOL,
            "row {i}: shared vs one-text rows differ by {d}"
        );
    }
}

/// Samples with several completions: each completion gets the score it gets in a one-to-one
/// row, and the verdict is the pairwise rule over them (reward model and DPO).
#[test]
fn several_completions_score_as_their_pairs() {
    use rewardbench::data::Dataset;
    use rewardbench::scoring::verdict;
    let data = root().join("fixtures/data/llmbar.jsonl");
    // 2 chosen and 3 rejected per sample, from each row's texts: the chosen and a variant;
    // the rejected, a variant, and the chosen text again.
    let mut multi = Dataset::load(&data).unwrap();
    multi.rows.truncate(4);
    for s in &mut multi.rows {
        let (c, r) = (s.chosen[0].clone(), s.rejected[0].clone());
        s.chosen = vec![c.clone(), format!("{c} Thanks.")];
        s.rejected = vec![r.clone(), format!("{r}!"), c.clone()];
    }
    // The same texts as one-to-one rows.
    let mut flat = Dataset::load(&data).unwrap();
    flat.rows.clear();
    for (i, s) in multi.rows.iter().enumerate() {
        for (k, (c, r)) in [
            (&s.chosen[0], &s.rejected[0]),
            (&s.chosen[1], &s.rejected[1]),
            (&s.chosen[0], &s.rejected[2]),
        ]
        .into_iter()
        .enumerate()
        {
            let mut p = s.clone();
            p.metadata.insert("id".into(), format!("{i}-{k}").into());
            p.chosen = vec![c.clone()];
            p.rejected = vec![r.clone()];
            flat.rows.push(p);
        }
    }
    let model = root().join("fixtures/models/tiny-llama-rm");
    let cfg = config(&model, &data, 4, Batching::Sorted);
    let m = eval::run(eval::prepare_dataset(&cfg, multi).unwrap(), &cfg).unwrap();
    let f = eval::run(eval::prepare_dataset(&cfg, flat).unwrap(), &cfg).unwrap();
    for (i, r) in m.rows.iter().enumerate() {
        assert_eq!((r.outcome.chosen.len(), r.outcome.rejected.len()), (2, 3));
        let one = |k: usize| &f.rows[3 * i + k].outcome;
        assert_eq!(r.outcome.chosen[0], one(0).chosen[0]);
        assert_eq!(r.outcome.rejected[0], one(0).rejected[0]);
        assert_eq!(r.outcome.chosen[1], one(1).chosen[0]);
        assert_eq!(r.outcome.rejected[1], one(1).rejected[0]);
        assert_eq!(r.outcome.rejected[2], one(2).rejected[0]);
        // rejected[2] is chosen[0]'s text: a tie, so never right.
        assert!(r.outcome.has_tie() && !r.correct);
        assert_eq!(r.correct, verdict::pairwise(&r.outcome));
        assert_eq!(m.prepared.rendered[i].chosen.len(), 2);
    }
    // The outputs write lists for several completions.
    let line = rewardbench::report::outputs_jsonl(&m);
    let first: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(first["scores_chosen"].as_array().unwrap().len(), 2);
    assert_eq!(first["text_rejected"].as_array().unwrap().len(), 3);
}
