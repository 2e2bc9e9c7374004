//! A finished run's files on disk, found from a results folder or a summary: their kind, the
//! paths they take in a results repo, and the model-card results their summary gives.
//!
//! Layout of a results dataset (`{name}` is the run's result name, `org/model` a subfolder):
//!
//! | run's dataset | summary | per-example files |
//! |---|---|---|
//! | `allenai/reward-bench`, `allenai/reward-bench-2` | `eval-set/{name}.json` | `eval-set-scores/{name}_outputs.jsonl` (+ RB2's `eval-set-scores/{name}.json`) |
//! | `allenai/pref-test-sets` | `pref-sets/{name}.json` | `pref-sets-scores/{name}_outputs.jsonl` |
//! | any other (`x.jsonl`, `org/x`) | `custom-sets/x/{name}.json` | `custom-sets-scores/x/{name}_outputs.jsonl` |

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::card::EvalResult;
use super::error::PublishError;
use crate::data::{CORE_SET, PREF_SETS, RB2};
use crate::scoring::RB2_SUBSETS;

/// The `task.type` of RewardBench's results.
pub const TASK: &str = "preference_evaluation";

/// The results of one run on disk.
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// Result name: `{name}.json` in the output folder (`org/model` for hub models).
    pub name: String,
    pub summary_path: PathBuf,
    pub summary: Value,
    /// `{name}_outputs.jsonl`.
    pub outputs: PathBuf,
    /// RewardBench 2's `eval-set-scores/{name}.json`, when there is one.
    pub per_item: Option<PathBuf>,
}

/// What kind of run a summary is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// v1 pairs (classifier or DPO): `accuracy`, `extra_results`.
    Pairs,
    /// RewardBench 2 best-of-N: one float per subset and `Score`.
    BestOfN,
    /// A generative judge (`model_type` "Generative RM ...").
    Judge { best_of_n: bool },
}

pub(super) fn local(path: &Path, message: impl Into<String>) -> PublishError {
    PublishError::Local {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn read_json(path: &Path) -> Result<Value, PublishError> {
    let text = std::fs::read_to_string(path).map_err(|e| local(path, e.to_string()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| local(path, format!("not JSON: {e}")))?;
    if !v.is_object() || v.get("model").is_none() {
        return Err(local(
            path,
            "not a run summary (no `model` key); pass a results folder or its {name}.json",
        ));
    }
    Ok(v)
}

impl RunFiles {
    /// The run whose summary is `{dir}/{name}.json`.
    pub fn at(dir: &Path, name: &str) -> Result<Self, PublishError> {
        let summary_path = dir.join(format!("{name}.json"));
        let summary = read_json(&summary_path)?;
        let outputs = dir.join(format!("{name}_outputs.jsonl"));
        if !outputs.is_file() {
            return Err(local(
                &summary_path,
                format!("no {} beside the summary", outputs.display()),
            ));
        }
        let per_item = dir.join("eval-set-scores").join(format!("{name}.json"));
        let mut run = Self {
            name: name.to_string(),
            summary_path,
            summary,
            outputs,
            per_item: None,
        };
        if run.kind() == RunKind::BestOfN && per_item.is_file() {
            run.per_item = Some(per_item);
        }
        Ok(run)
    }

    /// The runs at `path`: a summary file, or every run in a results folder (sorted by name).
    pub fn find(path: &Path) -> Result<Vec<Self>, PublishError> {
        if path.is_file() {
            let dir = path.parent().unwrap_or(Path::new("."));
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|_| path.extension().is_some_and(|e| e == "json"))
                .ok_or_else(|| local(path, "not a {name}.json summary"))?;
            // `org/model.json` of a hub model: the name keeps its folder, as the run wrote it.
            let summary = read_json(path)?;
            let model = summary.get("model").and_then(Value::as_str).unwrap_or("");
            if let (Some(org), Some(up)) = (dir.file_name(), dir.parent()) {
                let org = org.to_string_lossy();
                if model.starts_with(&format!("{org}/{stem}")) {
                    return Ok(vec![Self::at(up, &format!("{org}/{stem}"))?]);
                }
            }
            return Ok(vec![Self::at(dir, &stem)?]);
        }
        if !path.is_dir() {
            return Err(local(path, "no such file or folder"));
        }
        let mut names = Vec::new();
        collect(path, path, &mut names);
        names.sort();
        let runs: Vec<Self> = names
            .iter()
            .map(|n| Self::at(path, n))
            .collect::<Result<_, _>>()?;
        if runs.is_empty() {
            return Err(local(
                path,
                "no run results here (a {name}.json summary with its {name}_outputs.jsonl)",
            ));
        }
        Ok(runs)
    }

    pub fn kind(&self) -> RunKind {
        let s = &self.summary;
        let judge = s
            .get("model_type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("Generative"));
        let best_of_n = s.get("accuracy").is_none() && s.get("Score").is_some();
        match (judge, best_of_n) {
            (true, b) => RunKind::Judge { best_of_n: b },
            (false, true) => RunKind::BestOfN,
            (false, false) => RunKind::Pairs,
        }
    }

    pub(super) fn best_of_n(&self) -> bool {
        matches!(
            self.kind(),
            RunKind::BestOfN | RunKind::Judge { best_of_n: true }
        )
    }

    /// The dataset as the summary records it (`dataset`, or v2's `dataset.name`).
    pub fn dataset(&self) -> String {
        match self.summary.get("dataset") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) => o
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        }
    }

    pub(super) fn model(&self) -> &str {
        self.summary
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `(summary folder, per-example folder)` in the results repo.
    fn set_dirs(&self) -> (String, String) {
        let d = self.dataset();
        let d = d.strip_prefix("hf://datasets/").unwrap_or(&d);
        let id = d.split('@').next().unwrap_or(d);
        match id {
            CORE_SET | RB2 => ("eval-set".into(), "eval-set-scores".into()),
            PREF_SETS | "allenai/preference-test-sets" => {
                ("pref-sets".into(), "pref-sets-scores".into())
            }
            _ => {
                let last = id.trim_end_matches('/').rsplit('/').next().unwrap_or(id);
                let stem = Path::new(last)
                    .file_stem()
                    .map_or_else(|| last.to_string(), |s| s.to_string_lossy().into_owned());
                let slug: String = stem
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let slug = if slug.is_empty() || slug.starts_with('.') {
                    "dataset".to_string()
                } else {
                    slug
                };
                (
                    format!("custom-sets/{slug}"),
                    format!("custom-sets-scores/{slug}"),
                )
            }
        }
    }

    /// `(path in the repo, local file)` for each file this run uploads.
    pub fn layout(&self) -> Vec<(String, PathBuf)> {
        let (sum, scores) = self.set_dirs();
        let mut out = vec![
            (
                format!("{sum}/{}.json", self.name),
                self.summary_path.clone(),
            ),
            (
                format!("{scores}/{}_outputs.jsonl", self.name),
                self.outputs.clone(),
            ),
        ];
        if let Some(p) = &self.per_item {
            out.push((format!("{scores}/{}.json", self.name), p.clone()));
        }
        out
    }

    /// The headline number: v1's `accuracy`, RB2's `Score`, a v1 judge's leaderboard Score.
    pub(super) fn headline(&self) -> Option<(&'static str, f64)> {
        let s = &self.summary;
        if let Some(a) = s.get("accuracy").and_then(Value::as_f64) {
            return Some(("Accuracy", a));
        }
        s.get("Score")
            .or_else(|| s.get("leaderboard").and_then(|l| l.get("Score")))
            .and_then(Value::as_f64)
            .map(|x| ("Score", x))
    }

    /// The model card results RewardBench reports for this run: v1 as upstream's CLI (the
    /// accuracy on the dataset; on the core set also one per section and one per subset);
    /// RB2 the Score and each of the six subsets, as named metrics of one dataset entry.
    pub fn eval_results(&self) -> Result<Vec<EvalResult>, PublishError> {
        let dataset = self.dataset();
        let short = dataset.rsplit('/').next().unwrap_or(&dataset).to_string();
        let s = &self.summary;
        let f = |v: &Value| v.as_f64();
        match self.kind() {
            RunKind::Judge { .. } => Err(local(
                &self.summary_path,
                "a generative judge's results; --upload_model_metadata_to_hf updates a reward model's card (as RewardBench's CLI) and is not for judges",
            )),
            RunKind::Pairs => {
                let acc = s.get("accuracy").and_then(f).ok_or_else(|| {
                    local(&self.summary_path, "no `accuracy` in the summary")
                })?;
                let mut out = vec![EvalResult::new(TASK, &dataset, &short, "accuracy", acc)];
                if dataset == CORE_SET {
                    if let Some(Value::Object(sections)) = s.get("section_scores") {
                        for (k, v) in sections {
                            if let Some(x) = f(v) {
                                out.push(EvalResult::new(
                                    TASK,
                                    &k.replace(' ', "_"),
                                    k,
                                    "accuracy",
                                    x,
                                ));
                            }
                        }
                    }
                    if let Some(Value::Object(subsets)) = s.get("extra_results") {
                        for (k, v) in subsets {
                            if let Some(x) = f(v) {
                                out.push(EvalResult::new(TASK, k, k, "accuracy", x));
                            }
                        }
                    }
                }
                Ok(out)
            }
            RunKind::BestOfN => {
                let split = s
                    .get("dataset")
                    .and_then(|d| d.get("split"))
                    .and_then(Value::as_str);
                let entry = |name: &str, x: f64| {
                    EvalResult::new(TASK, &dataset, &short, "accuracy", x)
                        .with_metric_name(name)
                        .with_split(split)
                };
                let mut out = Vec::new();
                if let Some(x) = s.get("Score").and_then(f) {
                    out.push(entry("Score", x));
                }
                for sub in RB2_SUBSETS.iter().copied() {
                    if let Some(x) = s.get(sub).and_then(f) {
                        out.push(entry(sub, x));
                    }
                }
                if out.is_empty() {
                    return Err(local(
                        &self.summary_path,
                        "no Score or RewardBench 2 subset scores in the summary",
                    ));
                }
                Ok(out)
            }
        }
    }
}

/// Result names under `root`: every `X.json` with an `X_outputs.jsonl` beside it (not in
/// `eval-set-scores/`, not `_run.json`, not hidden).
fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let file = e.file_name().to_string_lossy().into_owned();
        if file.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            if !(dir == root && file == "eval-set-scores") {
                collect(root, &p, out);
            }
            continue;
        }
        let Some(stem) = file.strip_suffix(".json") else {
            continue;
        };
        if stem.ends_with("_run") || !dir.join(format!("{stem}_outputs.jsonl")).is_file() {
            continue;
        }
        if let Ok(rel) = p.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push(rel.trim_end_matches(".json").to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_the_dataset() {
        let run = |dataset: Value| RunFiles {
            name: "org/m".into(),
            summary_path: "s.json".into(),
            summary: serde_json::json!({"model": "org/m", "accuracy": 0.5, "dataset": dataset}),
            outputs: "o.jsonl".into(),
            per_item: None,
        };
        let paths = |r: RunFiles| -> Vec<String> { r.layout().into_iter().map(|p| p.0).collect() };
        assert_eq!(
            paths(run("allenai/reward-bench".into())),
            ["eval-set/org/m.json", "eval-set-scores/org/m_outputs.jsonl"]
        );
        assert_eq!(
            paths(run("allenai/pref-test-sets".into())),
            [
                "pref-sets/org/m.json",
                "pref-sets-scores/org/m_outputs.jsonl"
            ]
        );
        assert_eq!(
            paths(run("fixtures/data/llm bar.jsonl".into())),
            [
                "custom-sets/llm_bar/org/m.json",
                "custom-sets-scores/llm_bar/org/m_outputs.jsonl"
            ]
        );
        assert_eq!(
            paths(run(serde_json::json!({"name": "allenai/reward-bench-2"}))),
            ["eval-set/org/m.json", "eval-set-scores/org/m_outputs.jsonl"]
        );
    }

    #[test]
    fn core_set_results_are_upstreams_eval_results() {
        let r = RunFiles {
            name: "m".into(),
            summary_path: "s.json".into(),
            summary: serde_json::json!({
                "model": "org/m", "accuracy": 0.5, "dataset": "allenai/reward-bench",
                "extra_results": {"alpacaeval-easy": 1.0, "math-prm": 0.25},
                "section_scores": {"Chat": 1.0, "Chat Hard": 0.5},
            }),
            outputs: "o.jsonl".into(),
            per_item: None,
        };
        let rs = r.eval_results().unwrap();
        let types: Vec<&str> = rs.iter().filter_map(|e| e.dataset_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "allenai/reward-bench",
                "Chat",
                "Chat_Hard",
                "alpacaeval-easy",
                "math-prm"
            ]
        );
        assert_eq!(rs[0].dataset_name.as_str(), Some("reward-bench"));
        assert_eq!(rs[2].dataset_name.as_str(), Some("Chat Hard"));
    }
}
