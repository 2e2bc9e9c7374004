//! INTERIM, to be replaced by `crate::results` (landing on main): each row's margin and
//! length difference, read from the `{name}_outputs.jsonl` beside a summary.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::HtmlError;

/// One row of a run, as the charts need it (the fields of `results::ItemResult` they use).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub subset: String,
    /// Stable across models of the same data: picks the same rows when subsampling.
    pub text_hash: u64,
    /// Score of the chosen answer minus the rejected one (best-of-N: best chosen minus best
    /// rejected); `None` without scores (judge verdicts).
    pub margin: Option<f64>,
    /// Characters of the chosen answer minus the rejected one (best-of-N: the two above).
    pub length_diff: Option<f64>,
}

/// `{dir}/{stem}_outputs.jsonl` of the summary `{dir}/{stem}.json`.
pub fn outputs_path(summary: &Path) -> PathBuf {
    let stem = summary
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    summary.with_file_name(format!("{stem}_outputs.jsonl"))
}

/// FNV-1a, 64 bits: a hash that does not change between builds or platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A score as written: a number, or a list whose first element is one (several labels).
fn first_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Array(a) => a.first().and_then(first_number),
        _ => None,
    }
}

fn chars(v: &Value) -> Option<f64> {
    v.as_str().map(|s| s.chars().count() as f64)
}

/// The rows of `path`, or `None` when the file does not exist (summaries from elsewhere).
pub fn read(path: &Path) -> Result<Option<Vec<Row>>, HtmlError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(HtmlError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| HtmlError::Rows {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        rows.push(row(&v));
    }
    Ok(Some(rows))
}

fn row(v: &Value) -> Row {
    let subset = v["subset"].as_str().unwrap_or("").to_string();
    let key = match &v["id"] {
        Value::Null => v["text_chosen"]
            .as_str()
            .or_else(|| v["prompt"].as_str())
            .unwrap_or("")
            .to_string(),
        id => format!("{subset}\u{0}{id}"),
    };
    let text_hash = fnv1a(key.as_bytes());
    // v1 and DPO: one chosen and one rejected score and text.
    if v.get("scores_chosen").is_some() {
        return Row {
            subset,
            text_hash,
            margin: first_number(&v["scores_chosen"])
                .zip(first_number(&v["scores_rejected"]))
                .map(|(c, r)| c - r),
            length_diff: chars(&v["text_chosen"])
                .zip(chars(&v["text_rejected"]))
                .map(|(c, r)| c - r),
        };
    }
    // Best-of-N: `scores` and `texts`, the first `num_correct` chosen.
    let scores: Option<Vec<f64>> = v["scores"]
        .as_array()
        .and_then(|a| a.iter().map(Value::as_f64).collect());
    let k = v["num_correct"].as_u64().unwrap_or(1) as usize;
    let (margin, length_diff) = match scores {
        Some(s) if k >= 1 && s.len() > k => {
            let best = |range: std::ops::Range<usize>| {
                range.max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap_or(0)
            };
            let (c, r) = (best(0..k), best(k..s.len()));
            let texts = v["texts"].as_array();
            let len = |i: usize| texts.and_then(|t| t.get(i)).and_then(chars);
            (Some(s[c] - s[r]), len(c).zip(len(r)).map(|(a, b)| a - b))
        }
        _ => (None, None),
    };
    Row {
        subset,
        text_hash,
        margin,
        length_diff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_and_best_of_n() {
        let r = row(
            &json!({"subset": "s", "id": 3, "scores_chosen": [2.5], "scores_rejected": 1.0,
            "text_chosen": "abcd", "text_rejected": "ab"}),
        );
        assert_eq!((r.margin, r.length_diff), (Some(1.5), Some(2.0)));
        let b = row(
            &json!({"subset": "Math", "num_correct": 1, "scores": [0.5, 2.0, 1.0],
            "texts": ["a", "bbb", "cc"]}),
        );
        assert_eq!((b.margin, b.length_diff), (Some(-1.5), Some(-2.0)));
        // A judge's row: no scores, no margin.
        let j = row(&json!({"subset": "s", "results": 1.0}));
        assert_eq!((j.margin, j.length_diff), (None, None));
    }

    #[test]
    fn the_hash_follows_the_id_not_the_model() {
        let a = row(&json!({"subset": "s", "id": 1, "text_chosen": "model A's template"}));
        let b = row(&json!({"subset": "s", "id": 1, "text_chosen": "model B's template"}));
        assert_eq!(a.text_hash, b.text_hash);
    }
}
