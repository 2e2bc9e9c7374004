//! What `rescore` prints and writes: the per-file table, the findings, the JSON.

use std::path::Path;

use serde_json::{json, Map, Value};

use super::{Aggregate, RescoreError, Rescored, Shape};
use crate::scoring::Interval;

fn f4(v: Option<f64>) -> String {
    v.map_or("—".to_string(), |x| format!("{x:.4}"))
}

fn signed(v: Option<f64>) -> String {
    v.map_or("—".to_string(), |x| {
        // -0.0000 reads as a difference; a zero is "0".
        if x.abs() < 5e-5 {
            if x == 0.0 {
                "0".to_string()
            } else {
                format!("{x:+.1e}")
            }
        } else {
            format!("{x:+.4}")
        }
    })
}

fn ci(i: Option<&Interval>) -> String {
    i.map_or(String::new(), |i| format!("[{:.4}, {:.4}]", i.low, i.high))
}

impl Rescored {
    /// The per-file table: subset, n, file's own, recomputed, difference, CI; sections (v1);
    /// the Score; then what differs, row by row.
    pub fn table(&self) -> String {
        let mut s = format!("file: {}\n", self.path.display());
        let what = match self.shape {
            Shape::V1 => "v1 per-item file (run_rm / run_dpo): strict chosen > rejected",
            Shape::V2 => "v2 per-item file (run_v2): best-of-N with 1/k tie credit, Ties composite",
        };
        s.push_str(&format!(
            "model: {} ({}); {what}; {} rows\n",
            self.model.as_deref().unwrap_or("?"),
            self.model_type.as_deref().unwrap_or("model type not given"),
            self.rows
        ));
        let labels: Vec<String> = self
            .subsets
            .iter()
            .map(|l| l.name.clone())
            .chain(
                self.sections
                    .iter()
                    .map(|a| format!("[section] {}", a.name)),
            )
            .chain(self.scores.iter().map(|a| self.score_label(&a.name)))
            .collect();
        let width = labels
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let mut push = |label: &str, n: &str, own: String, rec: String, diff: String, c: String| {
            let line = format!(
                "{label:<width$} {n:>6} {own:>10} {rec:>10} {diff:>10}  {c}",
                width = width
            );
            s.push_str(line.trim_end());
            s.push('\n');
        };
        push(
            "subset",
            "n",
            "file".into(),
            "recomputed".into(),
            "difference".into(),
            format!("{:.0}% CI", self.level * 100.0),
        );
        for l in &self.subsets {
            push(
                &l.name,
                &l.n.to_string(),
                f4(l.own),
                f4(Some(l.recomputed)),
                signed(l.difference()),
                ci(l.interval.as_ref()),
            );
        }
        for a in &self.sections {
            push(
                &format!("[section] {}", a.name),
                "",
                f4(a.own),
                f4(a.recomputed),
                signed(a.difference()),
                ci(a.interval.as_ref()),
            );
        }
        for a in &self.scores {
            push(
                &self.score_label(&a.name),
                "",
                f4(a.own),
                f4(a.recomputed),
                signed(a.difference()),
                ci(a.interval.as_ref()),
            );
        }
        if self.scores.iter().all(|a| a.name != "Score") {
            s.push_str(match self.shape {
                Shape::V1 => "[Score] needs all four sections (Chat, Chat Hard, Safety, Reasoning)\n",
                Shape::V2 => "[Score] needs all six subsets (Factuality, Precise IF, Math, Safety, Focus, Ties)\n",
            });
        }
        for line in self.findings() {
            s.push_str(&line);
            s.push('\n');
        }
        s
    }

    fn score_label(&self, name: &str) -> String {
        match (self.shape, name) {
            (Shape::V2, "Score") => "[Score] mean of 6 subsets".into(),
            (Shape::V1, "Score") => "[Score] mean of 4 sections".into(),
            (_, "Score (paper)") => "[Score (paper)] 2,2,2,2,1".into(),
            (_, n) => format!("[{n}]"),
        }
    }

    /// What differs between the file's own numbers and the recomputed ones, in words.
    pub fn findings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.has_results {
            out.push("the file has no `results` column: nothing to compare with".into());
            return out;
        }
        let ties_name = self.ties.as_ref().map(|t| t.subset.as_str());
        let checked: usize = self
            .subsets
            .iter()
            .filter(|l| Some(l.name.as_str()) != ties_name)
            .map(|l| l.n - l.null_results)
            .sum();
        let scope = match self.shape {
            Shape::V1 => "",
            Shape::V2 => "non-Ties ",
        };
        if self.disagreements.is_empty() {
            out.push(format!(
                "per-row: all {checked} {scope}`results` agree with the scores"
            ));
        } else {
            let by: Vec<String> = self
                .subsets
                .iter()
                .filter(|l| l.disagreements > 0)
                .map(|l| format!("{} {}", l.name, l.disagreements))
                .collect();
            let d = &self.disagreements[0];
            out.push(format!(
                "per-row: {} of {checked} {scope}`results` disagree with the scores ({}); first: row {} ({}, id {}): file {}, recomputed {}",
                self.disagreements.len(),
                by.join(", "),
                d.row,
                d.subset,
                d.id.as_deref().unwrap_or("none"),
                d.file,
                d.recomputed
            ));
        }
        let nulls: usize = self
            .subsets
            .iter()
            .filter(|l| Some(l.name.as_str()) != ties_name)
            .map(|l| l.null_results)
            .sum();
        if nulls > 0 {
            out.push(format!(
                "per-row: {nulls} {scope}`results` are null (left out of the file's means)"
            ));
        }
        if let Some(t) = &self.ties {
            let c = t.composite.score;
            let mut line = format!(
                "{}: the file's per-row results are not used; the score is the composite of `scores`, `num_correct` and `id` over {} rows",
                t.subset, t.rows
            );
            match t.naive_mean {
                None => line.push_str(" (the file's Ties results are null, as they should be)"),
                Some(naive) => {
                    line.push_str(&format!(
                        "; averaging the file's {} Ties results gives {naive:.4}, which differs from the composite {c:.4} by {}",
                        t.with_results,
                        signed(Some(c - naive)),
                    ));
                    if t.reroll_credit == t.with_results {
                        line.push_str(&format!(
                            " (all {} hold the re-roll credit 1/k of scores[0]: run_v2's lower-case `ties` bug)",
                            t.reroll_credit
                        ));
                    } else if t.reroll_credit > 0 {
                        line.push_str(&format!(
                            " ({} of them hold the re-roll credit 1/k of scores[0])",
                            t.reroll_credit
                        ));
                    }
                }
            }
            out.push(line);
        }
        if self.tied_pairs > 0 {
            out.push(format!(
                "{} pair(s) score exactly equal: wrong under RewardBench's strict `>`",
                self.tied_pairs
            ));
        }
        out
    }

    /// The recomputed numbers as JSON.
    pub fn to_json(&self) -> Value {
        let pair = |i: &Interval| json!([i.low, i.high]);
        let aggregate = |a: &Aggregate| {
            json!({
                "file": a.own,
                "recomputed": a.recomputed,
                "difference": a.difference(),
                "ci": a.interval.as_ref().map(pair),
            })
        };
        let mut subsets = Map::new();
        for l in &self.subsets {
            subsets.insert(
                l.name.clone(),
                json!({
                    "n": l.n,
                    "file": l.own,
                    "recomputed": l.recomputed,
                    "difference": l.difference(),
                    "ci": l.interval.as_ref().map(pair),
                    "disagreements": l.disagreements,
                    "null_results": l.null_results,
                }),
            );
        }
        let mut m = Map::new();
        m.insert("file".into(), json!(self.path.display().to_string()));
        m.insert("model".into(), json!(self.model));
        m.insert("model_type".into(), json!(self.model_type));
        m.insert("format".into(), json!(self.shape.label()));
        m.insert("rows".into(), json!(self.rows));
        m.insert("subsets".into(), Value::Object(subsets));
        if self.shape == Shape::V1 {
            m.insert(
                "sections".into(),
                Value::Object(
                    self.sections
                        .iter()
                        .map(|a| (a.name.clone(), aggregate(a)))
                        .collect(),
                ),
            );
            m.insert("tied_pairs".into(), json!(self.tied_pairs));
        }
        m.insert(
            "scores".into(),
            Value::Object(
                self.scores
                    .iter()
                    .map(|a| (a.name.clone(), aggregate(a)))
                    .collect(),
            ),
        );
        if let Some(t) = &self.ties {
            let c = &t.composite;
            m.insert(
                "ties_composite".into(),
                json!({
                    "subset": t.subset,
                    "score": c.score,
                    "ref_accuracy": c.ref_accuracy,
                    "tied_accuracy": c.tied_accuracy,
                    "correctness_preferred": c.correctness_preferred,
                    "correctness_preferred_hard": c.correctness_preferred_hard,
                    "margin_score": c.margin_score,
                    "rows": t.rows,
                    "file_results": t.with_results,
                    "file_results_mean": t.naive_mean,
                    "file_results_reroll_credit": t.reroll_credit,
                }),
            );
        }
        m.insert(
            "disagreements".into(),
            Value::Array(
                self.disagreements
                    .iter()
                    .map(|d| {
                        json!({
                            "row": d.row,
                            "subset": d.subset,
                            "id": d.id,
                            "file": d.file,
                            "recomputed": d.recomputed,
                        })
                    })
                    .collect(),
            ),
        );
        m.insert("findings".into(), json!(self.findings()));
        m.insert("warnings".into(), json!(self.warnings));
        m.insert(
            "confidence_intervals".into(),
            json!({
                "method": match self.shape {
                    Shape::V1 => "percentile bootstrap: rows resampled with replacement within each subset",
                    Shape::V2 => "percentile bootstrap: prompts resampled with replacement within each subset; Ties by prompt id (ref and tied together)",
                },
                "level": self.level,
                "resamples": self.resamples,
                "seed": self.seed,
            }),
        );
        Value::Object(m)
    }
}

/// Writes the rescored files as a JSON array (one object per file) to `out`.
pub fn write_json(out: &Path, rescored: &[Rescored]) -> Result<(), RescoreError> {
    let v = Value::Array(rescored.iter().map(Rescored::to_json).collect());
    let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
    text.push('\n');
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| RescoreError::Write {
            path: out.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(out, text).map_err(|source| RescoreError::Write {
        path: out.to_path_buf(),
        source,
    })
}
