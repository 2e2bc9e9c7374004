//! The summary's `length_baselines` and `length_baseline_tests` objects, for every path.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::scorer::rm::Evaluation;
use crate::scoring::bon::Card;
use crate::scoring::length::{self, Baseline, SampleLengths};

/// One row for the length fields: its subset, completion lengths, and the scorer's credit
/// (0/1, or 1/k; `None` where the subset's score is not a mean of rows, e.g. Ties).
pub struct LengthRow<'a> {
    pub subset: Option<&'a str>,
    pub lengths: &'a SampleLengths,
    pub credit: Option<f64>,
}

/// `(length_baselines, length_baseline_tests)`; `None` when no row has a subset and a pair.
pub fn length_fields<'a>(rows: impl IntoIterator<Item = LengthRow<'a>>) -> Option<(Value, Value)> {
    let mut by_subset: BTreeMap<&str, Vec<LengthRow>> = BTreeMap::new();
    for r in rows {
        if let Some(s) = r.subset {
            if !r.lengths.chosen.is_empty() && !r.lengths.rejected.is_empty() {
                by_subset.entry(s).or_default().push(r);
            }
        }
    }
    if by_subset.is_empty() {
        return None;
    }
    let mut baselines = Map::new();
    let mut tests = Map::new();
    for (subset, rows) in &by_subset {
        let b = length::baselines(rows.iter().map(|r| ("", r.lengths)));
        let Some(b) = b.get("") else { continue };
        baselines.insert(
            subset.to_string(),
            Value::Object(
                Baseline::ALL
                    .iter()
                    .map(|&k| (k.key().to_string(), json!(b.get(k))))
                    .collect(),
            ),
        );
        let credit: Option<Vec<f64>> = rows.iter().map(|r| r.credit).collect();
        let lengths: Vec<&SampleLengths> = rows.iter().map(|r| r.lengths).collect();
        if let Some(c) = credit.and_then(|c| length::check(&c, &lengths)) {
            tests.insert(
                subset.to_string(),
                json!({
                    "baseline": c.baseline.key(),
                    "baseline_accuracy": c.baseline_accuracy,
                    "accuracy": c.accuracy,
                    "p_value": c.test.p_value,
                    "test": c.test.method,
                    "beats_baseline": c.beats,
                }),
            );
        }
    }
    Some((Value::Object(baselines), Value::Object(tests)))
}

/// Both objects as summary entries (none for data without pairs).
pub fn entries<'a>(rows: impl IntoIterator<Item = LengthRow<'a>>) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some((b, t)) = length_fields(rows) {
        m.insert("length_baselines".into(), b);
        m.insert("length_baseline_tests".into(), t);
    }
    m
}

/// A v1 run's entries: each row right or wrong.
pub fn of_pairs(ev: &Evaluation) -> Map<String, Value> {
    let p = &ev.prepared;
    entries(
        p.dataset
            .rows
            .iter()
            .zip(&ev.rows)
            .zip(&p.lengths)
            .map(|((row, r), lengths)| LengthRow {
                subset: row.subset(),
                lengths,
                credit: Some(f64::from(u8::from(r.correct))),
            }),
    )
}

/// A best-of-N run's entries: each row's 1/k credit (Ties rows untested).
pub fn of_best_of_n(ev: &Evaluation, card: &Card) -> Map<String, Value> {
    let p = &ev.prepared;
    entries(
        p.dataset
            .rows
            .iter()
            .zip(&card.results)
            .zip(&p.lengths)
            .map(|((row, r), lengths)| LengthRow {
                subset: row.subset(),
                lengths,
                credit: *r,
            }),
    )
}

/// The stdout block under a table: per subset, the scorer's accuracy beside the four
/// baselines, and whether it beats the better one. Empty without length entries.
pub fn block(entries: &Map<String, Value>) -> String {
    let (Some(Value::Object(b)), Some(Value::Object(t))) = (
        entries.get("length_baselines"),
        entries.get("length_baseline_tests"),
    ) else {
        return String::new();
    };
    let width = b.keys().map(String::len).max().unwrap_or(0).max(24);
    let mut s = format!(
        "length baselines (accuracy of picking the longer / shorter answer; a length tie is wrong):\n{:<width$} {:>8} {:>8} {:>8} {:>8} {:>8}  beats the better baseline?\n",
        "subset", "accuracy", "long tok", "shrt tok", "long chr", "shrt chr"
    );
    let num = |v: Option<&Value>| {
        v.and_then(Value::as_f64)
            .map_or("-".to_string(), |x| format!("{x:.4}"))
    };
    for (subset, bl) in b {
        let test = t.get(subset);
        let verdict = match test {
            Some(x) => {
                let beats = x.get("beats_baseline").and_then(Value::as_bool) == Some(true);
                format!(
                    "{} ({} p={:.3})",
                    if beats { "yes" } else { "NO" },
                    x.get("baseline").and_then(Value::as_str).unwrap_or(""),
                    x.get("p_value").and_then(Value::as_f64).unwrap_or(f64::NAN)
                )
            }
            None => "not tested (composite score)".to_string(),
        };
        s.push_str(&format!(
            "{subset:<width$} {:>8} {:>8} {:>8} {:>8} {:>8}  {verdict}\n",
            num(test.and_then(|x| x.get("accuracy"))),
            num(bl.get("longer_tokens")),
            num(bl.get("shorter_tokens")),
            num(bl.get("longer_chars")),
            num(bl.get("shorter_chars")),
        ));
    }
    s
}
