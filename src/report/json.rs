//! The summary JSON (RewardBench's keys, then ours), the run record, and their leaderboard and
//! confidence-interval objects.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{accuracy, bootstrap, tallies, ties, RunInfo};
use crate::scorer::rm::Evaluation;
use crate::scoring::{self, Bootstrap, Interval};

/// The summary JSON: RewardBench's keys first, then ours.
pub fn summary(ev: &Evaluation, info: &RunInfo) -> Value {
    let t = tallies(ev);
    let acc: BTreeMap<String, f64> = t.iter().map(|(k, v)| (k.clone(), v.accuracy())).collect();
    let mut m = Map::new();
    m.insert("accuracy".into(), json!(accuracy(ev)));
    m.insert("num_prompts".into(), json!(ev.rows.len()));
    m.insert("model".into(), json!(info.model));
    // run_rm's key: from a registry entry or rewardbench.json; a pairwise model without one
    // gets run_rm.py's "Custom Classifier"; absent for the default.
    let model_type = info.model_type.clone().or_else(|| {
        ev.stats
            .pairwise
            .is_some()
            .then(|| "Custom Classifier".to_string())
    });
    if let Some(t) = &model_type {
        m.insert("model_type".into(), json!(t));
    }
    m.insert("ref_model".into(), json!(info.ref_model));
    m.insert("tokenizer".into(), json!(info.tokenizer));
    m.insert("chat_template".into(), json!(ev.prepared.template_label));
    m.insert(
        "extra_results".into(),
        if acc.is_empty() {
            Value::Null
        } else {
            json!(acc)
        },
    );
    let sections = scoring::sections(&acc);
    if !sections.is_empty() {
        let s: Map<String, Value> = sections
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        m.insert("section_scores".into(), Value::Object(s));
    }
    if let Some(scores) = leaderboard_scores(&acc) {
        m.insert("leaderboard".into(), scores);
    }
    m.insert(
        "confidence_intervals".into(),
        intervals_json(&bootstrap(ev)),
    );
    m.insert(
        "subset_counts".into(),
        json!(t
            .iter()
            .map(|(k, v)| (k.clone(), v.n))
            .collect::<BTreeMap<_, _>>()),
    );
    m.insert("ties".into(), json!(ties(ev)));
    m.extend(super::length::of_pairs(ev));
    // Reference-free DPO only: what the score of an answer is (the summary says no more).
    if let Some(t) = &info.ref_free_type {
        m.insert("ref_free_type".into(), json!(t));
    }
    // A pairwise model: its kind, what scores_chosen / scores_rejected are, the verdict.
    if let Some(p) = &ev.stats.pairwise {
        m.insert("pairwise".into(), p.clone());
    }
    // A reward head read with --pooling / --score_* (absent for the defaults).
    if let Some(h) = &ev.stats.reward_head {
        m.insert("reward_head".into(), h.clone());
    }
    // Where the model's settings came from (a registry entry, rewardbench.json).
    if let Some(c) = &info.model_config {
        m.insert("model_config".into(), c.clone());
    }
    m.insert("dataset".into(), json!(info.dataset));
    if info.debug {
        m.insert("debug".into(), json!(true));
    }
    let st = &ev.stats;
    m.insert(
        "evaluator".into(),
        json!({
            "name": "rewardbench-rs",
            "version": env!("CARGO_PKG_VERSION"),
            "onnxruntime_version": ev.onnxruntime_version,
            "onnxruntime_library": ev.onnxruntime_library.display().to_string(),
            "execution_provider": ev.device,
            "onnx_model": ev.prepared.model.onnx.display().to_string(),
            "batching": ev.batching.label(),
            "batch_size": info.batch_size,
            "model_calls": st.model_calls,
            "padding_ratio": if st.computed_tokens > 0 { st.pad_tokens as f64 / st.computed_tokens as f64 } else { 0.0 },
        }),
    );
    Value::Object(m)
}

/// Throughput and timings of this run (`{name}_run.json`). Kept out of the summary so the
/// summary is reproducible byte for byte, whether or not the run was resumed.
pub fn run_record(ev: &Evaluation) -> Value {
    let st = &ev.stats;
    json!({
        "pairs_per_second": if st.total_seconds > 0.0 { ev.rows.len() as f64 / st.total_seconds } else { 0.0 },
        "rows": ev.rows.len(),
        "model_calls": st.model_calls,
        "reused_calls": st.reused_calls,
        "padding_ratio": if st.computed_tokens > 0 { st.pad_tokens as f64 / st.computed_tokens as f64 } else { 0.0 },
        "pad_tokens": st.pad_tokens,
        "computed_tokens": st.computed_tokens,
        "shared_prefix_tokens": st.shared_tokens,
        "execution_provider": ev.device,
        "onnx_model": ev.prepared.model.onnx.display().to_string(),
        "timings": {
            "prepare_seconds": st.prepare_seconds,
            "wait_seconds": st.wait_seconds,
            "ort_seconds": st.ort_seconds,
            "total_seconds": st.total_seconds,
        },
    })
}

/// The summary's `leaderboard` object: `Score` (mean of the four sections, when all four
/// are present), `Prior Sets` (when any prior set is present) and `Score (paper)` (weights
/// 2,2,2,2,1 with Prior Sets, when both exist). `None` when there is nothing to show.
pub fn leaderboard_scores(acc: &BTreeMap<String, f64>) -> Option<Value> {
    let sections = scoring::sections(acc);
    let prior = scoring::prior_sets(acc);
    let mut m = Map::new();
    if let Some(s) = scoring::leaderboard_score(&sections) {
        m.insert("Score".into(), json!(s));
    }
    if let Some(p) = prior {
        m.insert("Prior Sets".into(), json!(p));
        if let Some(s) = scoring::paper_score(&sections, Some(p)) {
            m.insert("Score (paper)".into(), json!(s));
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

fn pair(iv: &Interval) -> Value {
    json!([iv.low, iv.high])
}

/// The summary's `confidence_intervals` object.
pub fn intervals_json(b: &Bootstrap) -> Value {
    let mut m = Map::new();
    m.insert(
        "method".into(),
        json!("percentile bootstrap: prompts resampled with replacement within each subset"),
    );
    m.insert("level".into(), json!(b.level));
    m.insert("resamples".into(), json!(b.resamples));
    m.insert("seed".into(), json!(b.seed));
    m.insert("accuracy".into(), pair(&b.accuracy));
    m.insert(
        "subsets".into(),
        Value::Object(
            b.subsets
                .iter()
                .map(|(k, v)| (k.clone(), pair(v)))
                .collect(),
        ),
    );
    if !b.sections.is_empty() {
        m.insert(
            "sections".into(),
            Value::Object(
                b.sections
                    .iter()
                    .map(|(k, v)| (k.to_string(), pair(v)))
                    .collect(),
            ),
        );
    }
    if let Some(iv) = &b.score {
        m.insert("Score".into(), pair(iv));
    }
    if let Some(iv) = &b.paper_score {
        m.insert("Score (paper)".into(), pair(iv));
    }
    Value::Object(m)
}
