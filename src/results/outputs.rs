//! Per-row results from an outputs JSONL (every path's shape) or an upstream per-item file.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ItemResult, Kind, ResultsError, RunResult};
use crate::data::bon::is_ties;
use crate::rescore::{self, Rows};
use crate::scoring::{prefers, rb2};

/// A score cell: a number, a list (the first label), or a list of lists (the first
/// completion's first label).
fn first_score(v: &Value) -> Option<f64> {
    match v {
        Value::Array(xs) => xs.first().and_then(first_score),
        v => v.as_f64(),
    }
}

/// Each completion's score from a `scores` cell (`[x, ...]` or `[[x], ...]`).
fn score_list(v: &Value) -> Option<Vec<f64>> {
    v.as_array()?.iter().map(first_score).collect()
}

fn chars(v: &Value) -> Option<f64> {
    v.as_str().map(|s| s.chars().count() as f64)
}

/// Lowest correct minus highest incorrect.
fn margin(scores: &[f64], num_correct: usize) -> Option<f64> {
    let (c, r) = scores.split_at(num_correct.min(scores.len()));
    let lo = c.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (!c.is_empty() && !r.is_empty()).then_some(lo - hi)
}

fn length_diff(texts: &[f64], num_correct: usize) -> Option<f64> {
    let (c, r) = texts.split_at(num_correct.min(texts.len()));
    (!c.is_empty() && !r.is_empty()).then(|| c[0] - r.iter().sum::<f64>() / r.len() as f64)
}

fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Reads `{stem}_outputs.jsonl` with its summary, if any.
pub fn read_outputs(
    path: &Path,
    stem: &str,
    summary: Option<(PathBuf, Value)>,
) -> Result<RunResult, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let summary_is_v2 = summary
        .as_ref()
        .is_some_and(|(_, s)| s.get("Score").is_some() && s.get("extra_results").is_none());
    let mut rows = Vec::new();
    let mut best_of_n = summary_is_v2;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |problem: String| ResultsError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            problem,
        };
        let v = rescore::parse_python_json(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        let Some(m) = v.as_object() else {
            return Err(bad("not a JSON object".into()));
        };
        let subset = match m.get("subset") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => return Err(bad(format!("`subset` is not a string: {other}"))),
        };
        let credit = match m.get("results") {
            Some(Value::Null) | None => None,
            Some(x) => Some(
                x.as_f64()
                    .ok_or_else(|| bad(format!("`results` is not a number: {x}")))?,
            ),
        };
        let mut item = ItemResult {
            subset,
            id: id_text(m.get("id")),
            sample_hash: m
                .get("sample_hash")
                .and_then(Value::as_str)
                .map(str::to_string),
            credit,
            margin: None,
            length_diff: None,
            scores: Vec::new(),
            num_correct: 0,
        };
        if let (Some(c), Some(r)) = (m.get("scores_chosen"), m.get("scores_rejected")) {
            if m.contains_key("text") && !m.contains_key("text_chosen") {
                return Err(bad(
                    "instruction outputs (one score per conversation) have no pairs to compare"
                        .into(),
                ));
            }
            item.margin = first_score(c).zip(first_score(r)).map(|(c, r)| c - r);
            item.length_diff = chars(m.get("text_chosen").unwrap_or(&Value::Null))
                .zip(chars(m.get("text_rejected").unwrap_or(&Value::Null)))
                .map(|(c, r)| c - r);
        } else if let Some(nc) = m.get("num_correct").and_then(Value::as_u64) {
            best_of_n = true;
            item.num_correct = nc as usize;
            if let Some(s) = m.get("scores") {
                item.scores =
                    score_list(s).ok_or_else(|| bad(format!("`scores` is not a list: {s}")))?;
                item.margin = margin(&item.scores, item.num_correct);
            }
            if let Some(t) = m.get("texts").and_then(Value::as_array) {
                let lens: Option<Vec<f64>> = t.iter().map(chars).collect();
                item.length_diff = lens.and_then(|l| length_diff(&l, item.num_correct));
            }
        } else if m.contains_key("judgements") {
            // A judge's row: its credit (and RB2 ratings) only.
            if let Some(s) = m.get("scores") {
                item.scores = score_list(s).unwrap_or_default();
            }
        } else if item.credit.is_none() && !is_ties(&item.subset) {
            return Err(bad(
                "neither a pair (scores_chosen, scores_rejected), a best-of-N row (num_correct, scores) nor a judge's row (judgements)".into(),
            ));
        }
        rows.push(item);
    }
    if rows.is_empty() {
        return Err(ResultsError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut notes = Vec::new();
    if rows.iter().any(|r| r.sample_hash.is_none()) {
        notes.push(format!(
            "{}: no `sample_hash` on some rows; those are matched by subset and id only",
            path.display()
        ));
    }
    let (summary_path, summary) = match summary {
        Some((p, s)) => (Some(p), s),
        None => (None, Value::Null),
    };
    let model = summary
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(stem)
        .to_string();
    Ok(RunResult {
        name: stem.to_string(),
        model,
        summary_path,
        summary,
        rows_path: path.to_path_buf(),
        kind: if best_of_n {
            Kind::BestOfN
        } else {
            Kind::Pairs
        },
        rows,
        notes,
    })
}

/// An upstream per-item file (`Dataset.to_dict()` columns), read by `rescore`'s parser.
pub fn from_per_item(path: &Path, value: &Value) -> Result<RunResult, ResultsError> {
    let file = rescore::parse(path, value)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_string();
    let (kind, rows) = match &file.rows {
        Rows::V1(rows) => (
            Kind::Pairs,
            rows.iter()
                .map(|r| ItemResult {
                    subset: r.subset.clone(),
                    id: r.id.clone(),
                    sample_hash: None,
                    credit: Some(f64::from(u8::from(prefers(&r.chosen, &r.rejected)))),
                    margin: r.chosen.first().zip(r.rejected.first()).map(|(c, r)| c - r),
                    length_diff: None,
                    scores: Vec::new(),
                    num_correct: 0,
                })
                .collect(),
        ),
        Rows::V2(rows) => (
            Kind::BestOfN,
            rows.iter()
                .map(|r| ItemResult {
                    subset: r.subset.clone(),
                    id: r.id.clone(),
                    sample_hash: None,
                    credit: if is_ties(&r.subset) {
                        None
                    } else {
                        Some(rb2::best_of_n(&r.scores).unwrap_or(0.0))
                    },
                    margin: margin(&r.scores, r.num_correct),
                    length_diff: None,
                    scores: r.scores.clone(),
                    num_correct: r.num_correct,
                })
                .collect(),
        ),
    };
    Ok(RunResult {
        name: stem.clone(),
        model: file.model.clone().unwrap_or(stem),
        summary_path: None,
        summary: Value::Null,
        rows_path: path.to_path_buf(),
        kind,
        rows,
        notes: vec![format!(
            "{}: an upstream per-item file: no `sample_hash`, rows matched by subset and id only; credit recomputed from the scores",
            path.display()
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_and_lengths() {
        assert_eq!(margin(&[3.0, 1.0, 2.5], 1), Some(0.5));
        assert_eq!(margin(&[3.0, 2.0, 2.5], 2), Some(-0.5));
        assert_eq!(margin(&[3.0], 1), None);
        assert_eq!(length_diff(&[10.0, 4.0, 6.0], 1), Some(5.0));
        assert_eq!(first_score(&serde_json::json!([[1.5], [2.0]])), Some(1.5));
        assert_eq!(
            score_list(&serde_json::json!([[1.5], 2.0])),
            Some(vec![1.5, 2.0])
        );
    }
}
