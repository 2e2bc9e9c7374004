//! The runs a report shows: summaries from [`leaderboard::summaries`], merged per model and
//! kind (a core-set and a pref-sets file of one model make one run), with the fields of DPO
//! and judge summaries, any length baselines, and the rows behind the charts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::HtmlError;
use crate::leaderboard::{self, Board, Entry, Summary};
use crate::results::{self, ItemResult};

/// What produced a run, with the fields the table shows for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A reward model (sequence classifier).
    Rm,
    /// A DPO policy: against `ref_model`, or reference-free (`ref_free`: sum, avg, norm;
    /// `None` when the summary does not say which).
    Dpo {
        ref_model: Option<String>,
        ref_free: Option<String>,
    },
    /// A generative judge (`rewardbench gen`, upstream's run_generative).
    Judge {
        protocol: Option<String>,
        judges: Vec<String>,
        failed_calls: u64,
        unreadable_answers: u64,
        position_consistency: Option<f64>,
    },
}

/// Accuracy of always preferring the longer / shorter answer, by tokens and characters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Baseline {
    pub longer_tokens: Option<f64>,
    pub shorter_tokens: Option<f64>,
    pub longer_chars: Option<f64>,
    pub shorter_chars: Option<f64>,
}

/// One model's results as the page shows them.
#[derive(Debug, Clone)]
pub struct Run {
    /// Unique on the page: the model, with its kind when two runs share a model.
    pub label: String,
    pub entry: Entry,
    pub kind: Kind,
    pub counts: BTreeMap<String, u64>,
    /// Judge runs: per subset, (failed calls, unreadable answers).
    pub errors: BTreeMap<String, (u64, u64)>,
    pub baselines: BTreeMap<String, Baseline>,
    /// Per subset, the summary's `length_baseline_tests` entry (the better length baseline
    /// against the model), when it has one.
    pub length_tests: BTreeMap<String, Value>,
    /// `None` when no summary of this run has its `_outputs.jsonl` beside it.
    pub rows: Option<Vec<ItemResult>>,
    /// How the rows are scored (pairs, or best of N), when there are rows.
    pub rows_kind: Option<results::Kind>,
}

impl Run {
    /// The run's own fields, one short line each (DPO reference, judge protocol and errors).
    pub fn details(&self) -> Vec<String> {
        match &self.kind {
            Kind::Rm => Vec::new(),
            Kind::Dpo {
                ref_model: Some(r), ..
            } => vec![format!("reference model: {r}")],
            Kind::Dpo {
                ref_model: None,
                ref_free,
            } => vec![format!(
                "reference-free: {}",
                ref_free.as_deref().unwrap_or("type not recorded")
            )],
            Kind::Judge {
                protocol,
                judges,
                failed_calls,
                unreadable_answers,
                position_consistency,
            } => {
                let mut d = Vec::new();
                if let Some(p) = protocol {
                    d.push(format!("protocol: {p}"));
                }
                if !judges.is_empty() {
                    d.push(format!("judges: {}", judges.join(", ")));
                }
                d.push(format!("failed calls: {failed_calls}"));
                d.push(format!("unreadable answers: {unreadable_answers}"));
                if let Some(c) = position_consistency {
                    d.push(format!("position consistency: {:.1}%", 100.0 * c));
                }
                d
            }
        }
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn kind(v: &Value, e: &Entry) -> Kind {
    if v.get("protocol").is_some_and(Value::is_object) || e.model_type.starts_with("Generative RM")
    {
        let p = &v["protocol"];
        let (mut failed, mut unreadable) = (0, 0);
        if let Some(errs) = v["errors"].as_object() {
            for x in errs.values() {
                failed += x["failed_calls"].as_u64().unwrap_or(0);
                unreadable += x["unreadable_answers"].as_u64().unwrap_or(0);
            }
        }
        return Kind::Judge {
            protocol: text(&p["mode"]),
            judges: p["judges"]
                .as_array()
                .map(|a| a.iter().filter_map(text).collect())
                .unwrap_or_default(),
            failed_calls: failed,
            unreadable_answers: unreadable,
            position_consistency: p["position_consistency"].as_f64(),
        };
    }
    let ref_model = text(&v["ref_model"]);
    let ref_free = text(&v["ref_free_type"]);
    if ref_model.is_some() || ref_free.is_some() || e.model_type.starts_with("DPO") {
        return Kind::Dpo {
            ref_model,
            ref_free,
        };
    }
    Kind::Rm
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v["subset_counts"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, n)| Some((k.clone(), n.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn errors(v: &Value) -> BTreeMap<String, (u64, u64)> {
    v["errors"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        (
                            x["failed_calls"].as_u64().unwrap_or(0),
                            x["unreadable_answers"].as_u64().unwrap_or(0),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `length_baselines` of a summary (absent in older ones: empty).
fn baselines(v: &Value) -> BTreeMap<String, Baseline> {
    let Some(m) = v["length_baselines"].as_object() else {
        return BTreeMap::new();
    };
    m.iter()
        .map(|(k, b)| {
            (
                k.clone(),
                Baseline {
                    longer_tokens: b["longer_tokens"].as_f64(),
                    shorter_tokens: b["shorter_tokens"].as_f64(),
                    longer_chars: b["longer_chars"].as_f64(),
                    shorter_chars: b["shorter_chars"].as_f64(),
                },
            )
        })
        .collect()
}

/// `length_baseline_tests` of a summary: each subset's test against the better baseline.
fn length_tests(v: &Value) -> BTreeMap<String, Value> {
    v["length_baseline_tests"]
        .as_object()
        .map(|m| m.iter().map(|(k, t)| (k.clone(), t.clone())).collect())
        .unwrap_or_default()
}

/// The rows of the summary at `path`, read by [`results`] from the `{name}_outputs.jsonl`
/// beside it; `None` when there is none (summaries from elsewhere have no rows).
fn rows_of(path: &Path, summary: &Value) -> Result<Option<results::RunResult>, HtmlError> {
    let stem = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    let outputs = path.with_file_name(format!("{stem}_outputs.jsonl"));
    if !outputs.is_file() {
        return Ok(None);
    }
    let run = results::read_outputs(&outputs, &stem, Some((path.to_path_buf(), summary.clone())))?;
    Ok(Some(run))
}

/// A file named on the command line must be a summary: an error naming it otherwise.
fn check_file(path: &Path) -> Result<(), HtmlError> {
    let text = std::fs::read_to_string(path).map_err(|source| HtmlError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| HtmlError::NotASummary {
        path: path.to_path_buf(),
        why: format!("invalid JSON: {e}"),
    })?;
    match leaderboard::parse_summary(&v) {
        Some(_) => Ok(()),
        None => Err(HtmlError::NotASummary {
            path: path.to_path_buf(),
            why: "no `model` and per-subset accuracies".into(),
        }),
    }
}

/// Every run under `inputs` (folders searched recursively, or summary files), sorted as the
/// leaderboard sorts (by Score within each board); also warnings for skipped files.
pub fn collect(inputs: &[PathBuf]) -> Result<(Vec<Run>, Vec<String>), HtmlError> {
    for p in inputs.iter().filter(|p| p.is_file()) {
        check_file(p)?;
    }
    let (found, mut warnings) = leaderboard::summaries(inputs)?;
    let mut runs: Vec<(Run, Vec<PathBuf>)> = Vec::new();
    for Summary { path, value, entry } in found {
        let k = kind(&value, &entry);
        let same = |r: &Run| {
            r.entry.model == entry.model
                && r.entry.board == entry.board
                && r.entry.model_type == entry.model_type
                && r.kind_key() == key(&k)
        };
        let new_rows = rows_of(&path, &value)?;
        match runs.iter_mut().find(|(r, _)| same(r)) {
            Some((r, files)) => {
                for (s, v) in &entry.subsets {
                    if r.entry.subsets.insert(s.clone(), *v).is_some() {
                        warnings.push(format!(
                            "{}: subset {s} of {} also in an earlier file; the later value is used",
                            path.display(),
                            r.entry.model
                        ));
                    }
                }
                r.entry.intervals.extend(entry.intervals);
                r.counts.extend(counts(&value));
                r.errors.extend(errors(&value));
                r.baselines.extend(baselines(&value));
                r.length_tests.extend(length_tests(&value));
                if let (
                    Kind::Judge {
                        failed_calls,
                        unreadable_answers,
                        ..
                    },
                    Kind::Judge {
                        failed_calls: f,
                        unreadable_answers: u,
                        ..
                    },
                ) = (&mut r.kind, &k)
                {
                    *failed_calls += f;
                    *unreadable_answers += u;
                }
                if let Some(n) = new_rows {
                    r.rows_kind.get_or_insert(n.kind);
                    r.rows.get_or_insert_with(Vec::new).extend(n.rows);
                }
                files.push(path);
            }
            None => runs.push((
                Run {
                    label: entry.model.clone(),
                    counts: counts(&value),
                    errors: errors(&value),
                    baselines: baselines(&value),
                    length_tests: length_tests(&value),
                    rows_kind: new_rows.as_ref().map(|n| n.kind),
                    rows: new_rows.map(|n| n.rows),
                    kind: k,
                    entry,
                },
                vec![path],
            )),
        }
    }
    if runs.is_empty() {
        return Err(leaderboard::LeaderboardError::Empty {
            dirs: inputs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into());
    }
    let mut runs: Vec<Run> = runs
        .into_iter()
        .map(|(mut r, files)| {
            r.entry.files = files;
            r
        })
        .collect();
    label(&mut runs);
    sort(&mut runs);
    Ok((runs, warnings))
}

/// What tells two runs of one model apart (a DPO run with and without its reference).
fn key(k: &Kind) -> (u8, Option<String>, Option<String>) {
    match k {
        Kind::Rm => (0, None, None),
        Kind::Dpo {
            ref_model,
            ref_free,
        } => (1, ref_model.clone(), ref_free.clone()),
        Kind::Judge { protocol, .. } => (2, protocol.clone(), None),
    }
}

impl Run {
    fn kind_key(&self) -> (u8, Option<String>, Option<String>) {
        key(&self.kind)
    }
}

/// Labels unique on the page: a model with several runs on one board gets what tells them
/// apart in brackets (the DPO reference, the judge protocol, else the results folder).
fn label(runs: &mut [Run]) {
    let mut seen: BTreeMap<(String, u8), usize> = BTreeMap::new();
    let at = |r: &Run| (r.entry.model.clone(), u8::from(r.entry.board == Board::V2));
    for r in runs.iter() {
        *seen.entry(at(r)).or_default() += 1;
    }
    for r in runs.iter_mut() {
        if seen[&at(r)] < 2 {
            continue;
        }
        let folder = || {
            r.entry
                .files
                .first()
                .and_then(|f| f.parent())
                .and_then(|p| p.file_name())
                .map_or_else(|| "run".to_string(), |n| n.to_string_lossy().into_owned())
        };
        let extra = match &r.kind {
            Kind::Dpo {
                ref_model: Some(m), ..
            } => format!("ref {m}"),
            Kind::Dpo {
                ref_free: Some(t), ..
            } => format!("ref-free {t}"),
            Kind::Judge {
                protocol: Some(p), ..
            } => p.clone(),
            _ => folder(),
        };
        r.label = format!("{} [{extra}]", r.entry.model);
    }
    // Still equal (two runs of one kind in like-named folders): numbered.
    let mut count: BTreeMap<(String, u8), usize> = BTreeMap::new();
    for r in runs.iter_mut() {
        let board = u8::from(r.entry.board == Board::V2);
        let n = count.entry((r.label.clone(), board)).or_default();
        *n += 1;
        if *n > 1 {
            r.label = format!("{} #{n}", r.label);
        }
    }
}

/// V1 board first, then V2; within each as [`leaderboard::sort`] (Score, then model).
fn sort(runs: &mut [Run]) {
    runs.sort_by(|a, b| {
        let board = |r: &Run| u8::from(r.entry.board == Board::V2);
        board(a).cmp(&board(b)).then_with(|| {
            match (a.entry.score(), b.entry.score()) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
            .then_with(|| a.label.cmp(&b.label))
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(v: &Value) -> Entry {
        leaderboard::parse_summary(v).unwrap()
    }

    #[test]
    fn kinds_from_summaries() {
        let dpo = json!({"model": "p", "ref_model": "r", "extra_results": {"a": 0.5}});
        assert_eq!(
            kind(&dpo, &entry(&dpo)),
            Kind::Dpo {
                ref_model: Some("r".into()),
                ref_free: None
            }
        );
        let free = json!({"model": "p", "ref_model": null, "ref_free_type": "avg",
            "extra_results": {"a": 0.5}});
        let e = entry(&free);
        assert_eq!(e.model_type, "DPO Ref. Free");
        assert_eq!(
            kind(&free, &e),
            Kind::Dpo {
                ref_model: None,
                ref_free: Some("avg".into())
            }
        );
        let judge = json!({"model": "openai/x", "model_type": "Generative RM", "a": 0.5,
            "errors": {"a": {"failed_calls": 2, "unreadable_answers": 1}, "b": {"failed_calls": 1, "unreadable_answers": 0}},
            "protocol": {"mode": "pairwise", "judges": ["x"], "position_consistency": null}});
        let k = kind(&judge, &entry(&judge));
        assert_eq!(
            k,
            Kind::Judge {
                protocol: Some("pairwise".into()),
                judges: vec!["x".into()],
                failed_calls: 3,
                unreadable_answers: 1,
                position_consistency: None
            }
        );
        let rm = json!({"model": "m", "ref_model": null, "extra_results": {"a": 0.5}});
        assert_eq!(kind(&rm, &entry(&rm)), Kind::Rm);
    }

    #[test]
    fn baselines_are_read_when_present() {
        let v = json!({"length_baselines": {"a": {"longer_tokens": null, "shorter_tokens": 0.25,
            "longer_chars": 0.75, "shorter_chars": 0.25}}});
        let b = &baselines(&v)["a"];
        assert_eq!(b.longer_tokens, None);
        assert_eq!(b.longer_chars, Some(0.75));
        assert!(baselines(&json!({})).is_empty());
    }
}
