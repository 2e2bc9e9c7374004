//! Reports of a judge run: the summary (upstream's keys, one float per subset, then the
//! errors, the protocol and intervals), one JSONL line per row with the raw judgements, and
//! the stdout table with each subset's failed and unreadable calls beside its score.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::length::LengthRow;
use super::{intervals_json, leaderboard_scores, rb2_order, write_atomic, ReportError};
use crate::data::Dataset;
use crate::pyjson::PyJson;
use crate::scorer::judge::run::RowVerdict;
use crate::scoring::bon::{card_of, CardError, Judged};
use crate::scoring::{self, Interval};
use crate::tokenize::lengths::{chars_only, SampleLengths};

/// What the summary records of the run.
#[derive(Debug, Clone)]
pub struct JudgeInfo {
    /// Upstream's name: `openai/gpt-4o`, `PoLL/a_b_c`, or the model as given.
    pub name: String,
    pub judges: Vec<String>,
    pub dataset: String,
    /// `pairwise`, `ratings`, `4-way`, with ` (both orders)` where it applies.
    pub protocol: String,
    pub seed: u64,
}

/// A run's numbers, computed once.
pub struct JudgeCard {
    pub rb2: bool,
    pub subsets: BTreeMap<String, f64>,
    pub counts: BTreeMap<String, usize>,
    /// Per subset: (failed calls, unreadable answers).
    pub errors: BTreeMap<String, (usize, usize)>,
    pub score: Option<f64>,
    pub intervals: BTreeMap<String, Interval>,
    pub intervals_json: Value,
    pub sections: Vec<(&'static str, f64)>,
    pub consistency: Option<f64>,
    /// `length_baselines` and `length_baseline_tests` (characters only).
    pub lengths: Map<String, Value>,
}

/// Scores the verdicts: RB2 rows (lists of completions) as RewardBench 2 (Ties by the
/// composite of the ratings), v1 rows as RewardBench (mean credit per subset, sections).
pub fn card(dataset: &Dataset, verdicts: &[RowVerdict]) -> Result<JudgeCard, CardError> {
    let rb2 = dataset.is_best_of_n();
    let mut errors: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (row, v) in dataset.rows.iter().zip(verdicts) {
        let e = errors
            .entry(row.subset().unwrap_or("").to_string())
            .or_default();
        e.0 += v.failed;
        e.1 += v.unparsed;
    }
    let row_lengths: Vec<SampleLengths> = dataset.rows.iter().map(chars_only).collect();
    let lengths = super::length::entries(dataset.rows.iter().zip(verdicts).zip(&row_lengths).map(
        |((row, v), lengths)| LengthRow {
            subset: row.subset(),
            lengths,
            credit: v.result,
        },
    ));
    let both: Vec<bool> = verdicts.iter().filter_map(|v| v.consistent).collect();
    let consistency =
        (!both.is_empty()).then(|| both.iter().filter(|c| **c).count() as f64 / both.len() as f64);
    if rb2 {
        let judged: Vec<Judged> = dataset
            .rows
            .iter()
            .zip(verdicts)
            .map(|(row, v)| match (&v.ties, row.subset()) {
                (Some(t), Some(s)) => Judged::Ties {
                    subset: s.to_string(),
                    row: t.clone(),
                },
                _ => Judged::Result {
                    subset: row.subset().map(str::to_string),
                    value: v.result.unwrap_or(0.0),
                },
            })
            .collect();
        let c = card_of(
            &judged,
            scoring::BOOTSTRAP_RESAMPLES,
            scoring::BOOTSTRAP_SEED,
            scoring::BOOTSTRAP_LEVEL,
        )?;
        let mut intervals = c.intervals.subsets.clone();
        if let Some(iv) = c.intervals.score {
            intervals.insert("Score".into(), iv);
        }
        let ij = super::bon::intervals_json(&c.intervals);
        return Ok(JudgeCard {
            rb2,
            subsets: c.subsets,
            counts: c.counts,
            errors,
            score: c.score,
            intervals,
            intervals_json: ij,
            sections: Vec::new(),
            consistency,
            lengths,
        });
    }
    let mut credit: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (row, v) in dataset.rows.iter().zip(verdicts) {
        credit
            .entry(row.subset().unwrap_or("").to_string())
            .or_default()
            .push(v.result.unwrap_or(0.0));
    }
    let subsets: BTreeMap<String, f64> = credit
        .iter()
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.clone(), v.iter().sum::<f64>() / v.len() as f64))
        .collect();
    let counts = credit
        .iter()
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.clone(), v.len()))
        .collect();
    let b = scoring::bootstrap_credit(
        &credit,
        scoring::BOOTSTRAP_RESAMPLES,
        scoring::BOOTSTRAP_SEED,
        scoring::BOOTSTRAP_LEVEL,
    );
    let sections = scoring::sections(&subsets);
    let mut intervals = b.subsets.clone();
    intervals.extend(b.sections.iter().map(|(k, v)| (k.to_string(), *v)));
    if let Some(iv) = b.score {
        intervals.insert("Score".into(), iv);
    }
    Ok(JudgeCard {
        rb2,
        score: scoring::leaderboard_score(&sections),
        subsets,
        counts,
        errors,
        intervals,
        intervals_json: intervals_json(&b),
        sections,
        consistency,
        lengths,
    })
}

/// The summary: upstream's `model`, `model_type`, `chat_template` and one float per subset
/// (keys sorted, as its `save_to_hub` writes them), then ours.
pub fn summary(card: &JudgeCard, info: &JudgeInfo, rows: usize) -> Value {
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    m.insert("model".into(), json!(info.name));
    let kind = if info.judges.len() > 1 {
        "Generative RM PoLL"
    } else {
        "Generative RM"
    };
    m.insert("model_type".into(), json!(kind));
    m.insert("chat_template".into(), Value::Null);
    for (k, v) in &card.subsets {
        m.insert(k.clone(), json!(v));
    }
    if card.rb2 {
        m.insert("Score".into(), json!(card.score));
    } else {
        if !card.sections.is_empty() {
            m.insert(
                "section_scores".into(),
                Value::Object(
                    card.sections
                        .iter()
                        .map(|(k, v)| (k.to_string(), json!(v)))
                        .collect(),
                ),
            );
        }
        if let Some(l) = leaderboard_scores(&card.subsets) {
            m.insert("leaderboard".into(), l);
        }
    }
    m.insert("confidence_intervals".into(), card.intervals_json.clone());
    m.insert("subset_counts".into(), json!(card.counts));
    m.extend(card.lengths.clone());
    m.insert(
        "errors".into(),
        Value::Object(
            card.errors
                .iter()
                .map(|(k, (f, u))| {
                    (
                        k.clone(),
                        json!({"failed_calls": f, "unreadable_answers": u}),
                    )
                })
                .collect(),
        ),
    );
    m.insert(
        "protocol".into(),
        json!({
            "mode": info.protocol,
            "judges": info.judges,
            "seed": info.seed,
            "prompts": "rewardbench 0.1.4 (generative.py, generative_v2.py)",
            "position_consistency": card.consistency,
            "error_credit": if card.rb2 { 0.25 } else { 0.5 },
        }),
    );
    m.insert("dataset".into(), json!(info.dataset));
    m.insert("num_prompts".into(), json!(rows));
    Value::Object(m.into_iter().collect())
}

/// One line per row in dataset order: `id`, `subset`, `num_correct` (RB2 rows), `results`, `scores` (ratings),
/// `positions`, `judgements`, `failed_calls`, `unreadable_answers`, `consistent`, `sample_hash`.
pub fn outputs_jsonl(dataset: &Dataset, verdicts: &[RowVerdict]) -> String {
    let py = PyJson::python_default();
    let mut out = String::new();
    for (row, v) in dataset.rows.iter().zip(verdicts) {
        let mut m = Map::new();
        m.insert(
            "id".into(),
            row.metadata.get("id").cloned().unwrap_or(Value::Null),
        );
        m.insert("subset".into(), json!(row.subset()));
        if row.is_best_of_n() {
            m.insert("num_correct".into(), json!(row.num_correct()));
        }
        m.insert("results".into(), json!(v.result));
        if let Some(s) = &v.scores {
            m.insert("scores".into(), json!(s));
        }
        m.insert("positions".into(), json!(v.positions));
        m.insert("judgements".into(), Value::Array(v.judgements.clone()));
        m.insert("failed_calls".into(), json!(v.failed));
        m.insert("unreadable_answers".into(), json!(v.unparsed));
        if let Some(c) = v.consistent {
            m.insert("consistent".into(), json!(c));
        }
        m.insert("sample_hash".into(), json!(row.content_hash()));
        out.push_str(&py.dumps(&Value::Object(m)));
        out.push('\n');
    }
    out
}

/// The stdout table: subset, n, score, failed / unreadable calls, interval.
pub fn table(card: &JudgeCard, info: &JudgeInfo) -> String {
    let width = card
        .subsets
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(24);
    let ci = |i: Option<&Interval>| {
        i.map_or(String::new(), |i| format!("[{:.4}, {:.4}]", i.low, i.high))
    };
    let mut s = format!(
        "judge: {}\ndataset: {} ({}, seed {})\n{:<width$} {:>6} {:>9} {:>7} {:>7}  95% CI\n",
        info.name,
        info.dataset,
        info.protocol,
        info.seed,
        "subset",
        "n",
        "score",
        "failed",
        "unread"
    );
    for name in rb2_order(card.subsets.keys()) {
        let (f, u) = card.errors.get(name).copied().unwrap_or_default();
        let n = card.counts.get(name).copied().unwrap_or(0);
        s.push_str(
            format!(
                "{name:<width$} {n:>6} {:>9.4} {f:>7} {u:>7}  {}",
                card.subsets[name],
                ci(card.intervals.get(name))
            )
            .trim_end(),
        );
        s.push('\n');
    }
    for (sec, v) in &card.sections {
        s.push_str(
            format!(
                "{:<width$} {:>6} {v:>9.4} {:>7} {:>7}  {}",
                format!("[section] {sec}"),
                "",
                "",
                "",
                ci(card.intervals.get(*sec))
            )
            .trim_end(),
        );
        s.push('\n');
    }
    if let Some(score) = card.score {
        let label = if card.rb2 {
            "[Score] mean of 6 subsets"
        } else {
            "[Score] mean of 4 sections"
        };
        s.push_str(
            format!(
                "{label:<width$} {:>6} {score:>9.4} {:>7} {:>7}  {}",
                "",
                "",
                "",
                ci(card.intervals.get("Score"))
            )
            .trim_end(),
        );
        s.push('\n');
    }
    if let Some(c) = card.consistency {
        s.push_str(&format!("position consistency (both orders): {c:.4}\n"));
    }
    s.push_str(&super::length::block(&card.lengths));
    s
}

/// Writes `{dir}/{name}_outputs.jsonl`, then `{dir}/{name}.json`; returns the paths.
pub fn write(
    dataset: &Dataset,
    verdicts: &[RowVerdict],
    card: &JudgeCard,
    info: &JudgeInfo,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    let summary_path = dir.join(format!("{}.json", info.name));
    let outputs = dir.join(format!("{}_outputs.jsonl", info.name));
    if let Some(parent) = summary_path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| ReportError::NotWritable {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    write_atomic(&outputs, outputs_jsonl(dataset, verdicts).as_bytes())?;
    let py = PyJson::save_to_hub();
    let mut text = py.dumps(&summary(card, info, verdicts.len()));
    text.push('\n');
    write_atomic(&summary_path, text.as_bytes())?;
    Ok(vec![summary_path, outputs])
}
