//! Reports: the summary JSON, per-example JSONL and CSV (each written atomically), the
//! stdout table, and the HTML report over many runs ([`html`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::pyjson::PyJson;
use crate::scorer::rm::Evaluation;
use crate::scoring::{self, Bootstrap, Tally};

pub mod bon;
mod csv;
pub mod html;
mod json;
mod jsonl;
pub mod judge;
mod length;
mod table;
pub mod tokens;

pub use self::csv::{instruction_scores_csv, scores_csv};
pub use json::{intervals_json, leaderboard_scores, run_record, summary};
pub use jsonl::{instruction_outputs_jsonl, outputs_jsonl, outputs_jsonl_of};
pub use table::table;

/// Errors writing results.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("output folder {path} cannot be written: {source}")]
    NotWritable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds another run's results ({differences}); this run would replace them. Pass another --output_dir (without one, results go to results/{{benchmark}}/ by dataset), or --overwrite to replace them", path.display())]
    OtherRun { path: PathBuf, differences: String },
}

/// A summary field as compared by [`check_replaces`]: a dataset object's `name`, paths
/// without a trailing `/`, absent and null alike.
fn comparable(v: Option<&Value>) -> Option<String> {
    let v = match v {
        Some(Value::Object(o)) => o.get("name"),
        other => other,
    };
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        Some(Value::String(s)) => {
            let t = s.trim_end_matches('/');
            Some(
                std::fs::canonicalize(t)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| t.to_string()),
            )
        }
        Some(other) => Some(other.to_string()),
    }
}

/// Refuses, before any compute, to replace another run's results: `summary` exists and
/// records another value of one of `mine`'s fields (model, dataset, reference, debug). The
/// same command again (a re-run, a resume) passes; so does `overwrite`.
pub fn check_replaces(
    summary: &Path,
    mine: &[(&str, Value)],
    overwrite: bool,
) -> Result<(), ReportError> {
    if overwrite {
        return Ok(());
    }
    let Ok(text) = std::fs::read_to_string(summary) else {
        return Ok(());
    };
    let Ok(Value::Object(there)) = serde_json::from_str::<Value>(&text) else {
        return Ok(()); // not a summary of ours: leave it to the write
    };
    let differences: Vec<String> = mine
        .iter()
        .filter_map(|(k, v)| {
            let (a, b) = (comparable(there.get(*k)), comparable(Some(v)));
            (a != b).then(|| {
                let show = |x: Option<String>| x.unwrap_or_else(|| "none".into());
                format!("{k}: {} there, {} now", show(a), show(b))
            })
        })
        .collect();
    if differences.is_empty() {
        return Ok(());
    }
    Err(ReportError::OtherRun {
        path: summary.to_path_buf(),
        differences: differences.join("; "),
    })
}

/// The result files' name for `model` in `out` when its base name's summary there is
/// another model's (a folder of the same name elsewhere, as `runs/a/checkpoint-500` and
/// `runs/b/checkpoint-500`): its parent folders' names are prefixed, nearest first
/// (`b--checkpoint-500`), until the name is free or this model's (`recorded`: the summary's
/// `model`). `None`: the base name is this run's.
pub fn free_name(out: &Path, model: &crate::model::ModelFiles, recorded: &str) -> Option<String> {
    let base = model.base_name();
    if base.contains('/') {
        return None; // a hub id is unique
    }
    let canonical = std::fs::canonicalize(&model.dir).unwrap_or_else(|_| model.dir.clone());
    let mut parents = canonical
        .parent()
        .into_iter()
        .flat_map(|p| p.components().rev())
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        });
    let mine = comparable(Some(&Value::from(recorded)));
    let mut name = base.clone();
    loop {
        let summary = out.join(format!("{name}.json"));
        let there = std::fs::read_to_string(&summary)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v.get("model").cloned());
        match there {
            Some(m) if comparable(Some(&m)) != mine => match parents.next() {
                Some(p) => name = format!("{p}--{name}"),
                None => break,
            },
            _ => break,
        }
    }
    (name != base).then_some(name)
}

impl RunInfo {
    /// The fields [`check_replaces`] compares, as this run's summary will record them.
    pub fn identity(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("model", Value::from(self.model.clone())),
            ("dataset", Value::from(self.dataset.clone())),
            (
                "ref_model",
                self.ref_model.clone().map_or(Value::Null, Value::from),
            ),
            (
                "ref_free_type",
                self.ref_free_type.clone().map_or(Value::Null, Value::from),
            ),
            ("debug", Value::Bool(self.debug)),
        ]
    }
}

/// Run settings recorded in the summary.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `--model` as given.
    pub model: String,
    /// `--tokenizer` as given, else the model.
    pub tokenizer: String,
    pub dataset: String,
    pub batch_size: usize,
    /// `--ref_model` as given (DPO), else none.
    pub ref_model: Option<String>,
    /// Reference-free DPO (`--ref_free_type` without `--ref_model`): `sum`, `avg` or `norm`.
    pub ref_free_type: Option<String>,
    /// The command's arguments (a shard's manifest keeps them for `merge`).
    pub argv: Vec<String>,
    /// `--debug`: the first rows only (the summary says so).
    pub debug: bool,
    /// The model's `model_type` from its registry entry or `rewardbench.json` (none: the
    /// default, `Seq. Classifier`, which a v1 summary does not write).
    pub model_type: Option<String>,
    /// Where the model's settings came from (`registry::Profile::summary`), when a registry
    /// entry or `rewardbench.json` applied.
    pub model_config: Option<serde_json::Value>,
}

/// Checks, before any compute, that `dir` can be created and written.
pub fn check_writable(dir: &Path) -> Result<(), ReportError> {
    let err = |source| ReportError::NotWritable {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let probe = dir.join(format!(".rewardbench-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(err)?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Writes a file atomically (creating its folder): a temporary name, then a rename.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| ReportError::NotWritable {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    write_atomic(path, bytes)
}

/// Writes `bytes` to a temporary name beside `path`, then renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)
}

fn score_value(s: &[f32]) -> Value {
    match s {
        [x] => json!(f64::from(*x)),
        xs => Value::Array(xs.iter().map(|x| json!(f64::from(*x))).collect()),
    }
}

/// Subset names in RewardBench 2's order (the six of the Score first), then any others.
pub(crate) fn rb2_order<'a>(names: impl Iterator<Item = &'a String> + Clone) -> Vec<&'a String> {
    let mut out: Vec<&String> = crate::scoring::RB2_SUBSETS
        .iter()
        .filter_map(|n| names.clone().find(|k| k.as_str() == *n))
        .collect();
    out.extend(names.filter(|k| !crate::scoring::RB2_SUBSETS.contains(&k.as_str())));
    out
}

/// Per-subset tallies (rows without a `subset` column count under no subset).
pub fn tallies(ev: &Evaluation) -> BTreeMap<String, Tally> {
    scoring::per_subset(
        ev.prepared
            .dataset
            .rows
            .iter()
            .zip(&ev.rows)
            .filter_map(|(row, r)| row.subset().map(|s| (s, r.correct))),
    )
}

/// Overall accuracy: correct / rows.
pub fn accuracy(ev: &Evaluation) -> f64 {
    let correct = ev.rows.iter().filter(|r| r.correct).count();
    correct as f64 / ev.rows.len().max(1) as f64
}

/// Rows where a chosen and a rejected completion score the same (counted wrong).
pub fn ties(ev: &Evaluation) -> usize {
    ev.rows.iter().filter(|r| r.outcome.has_tie()).count()
}

/// A sample's completions' scores: one completion's score as [`score_value`] writes it (v1's
/// format), several as a list of those.
pub(crate) fn completions_value(list: &[Vec<f32>]) -> Value {
    match list {
        [one] => score_value(one),
        many => Value::Array(many.iter().map(|s| score_value(s)).collect()),
    }
}

/// A sample's rendered texts: one as a string, several as a list.
pub(crate) fn texts_value(list: &[String]) -> Value {
    match list {
        [one] => json!(one),
        many => json!(many),
    }
}

/// Each row's verdict, grouped by subset (rows without one under `""`).
pub fn verdicts(ev: &Evaluation) -> BTreeMap<String, Vec<bool>> {
    let mut out: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for (row, r) in ev.prepared.dataset.rows.iter().zip(&ev.rows) {
        out.entry(row.subset().unwrap_or("").to_string())
            .or_default()
            .push(r.correct);
    }
    out
}

/// 95 % percentile-bootstrap intervals of this run (1000 resamples, fixed seed).
pub fn bootstrap(ev: &Evaluation) -> Bootstrap {
    scoring::bootstrap(
        &verdicts(ev),
        scoring::BOOTSTRAP_RESAMPLES,
        scoring::BOOTSTRAP_SEED,
        scoring::BOOTSTRAP_LEVEL,
    )
}

/// Paths of the written files.
#[derive(Debug, Clone)]
pub struct Written {
    pub summary: PathBuf,
    pub outputs: PathBuf,
    pub csv: PathBuf,
    pub run: PathBuf,
}

/// Writes `{dir}/{name}_outputs.jsonl`, `{dir}/{name}_scores.csv`, then `{dir}/{name}.json`.
pub fn write(
    ev: &Evaluation,
    info: &RunInfo,
    dir: &Path,
    name: &str,
) -> Result<Written, ReportError> {
    // A hub model's name (`org/name`) makes a subfolder, as in RewardBench.
    let sub = dir.join(name);
    let parent = sub.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(|source| ReportError::NotWritable {
        path: parent.to_path_buf(),
        source,
    })?;
    let paths = Written {
        summary: dir.join(format!("{name}.json")),
        outputs: dir.join(format!("{name}_outputs.jsonl")),
        csv: dir.join(format!("{name}_scores.csv")),
        run: dir.join(format!("{name}_run.json")),
    };
    write_atomic(&paths.outputs, outputs_jsonl(ev).as_bytes())?;
    let csv = scores_csv(ev).map_err(|e| ReportError::Write {
        path: paths.csv.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    write_atomic(&paths.csv, &csv)?;
    let mut summary = serde_json::to_string_pretty(&summary(ev, info)).unwrap_or_default();
    summary.push('\n');
    write_atomic(&paths.summary, summary.as_bytes())?;
    write_run_record(&paths.run, &run_record(ev), ev)?;
    Ok(paths)
}

/// Throughput fields of `_run.json` that a fully resumed run takes from the earlier record.
const THROUGHPUT_KEYS: &[&str] = &[
    "pairs_per_second",
    "prompts_per_second",
    "texts_per_second",
    "timings",
];

/// Writes `{name}_run.json`. When the run computed nothing (every score came from the store)
/// and an earlier record exists, its throughput and timings are kept (they describe the run
/// that computed the scores) and `throughput_from_earlier_run` says so.
pub fn write_run_record(path: &Path, record: &Value, ev: &Evaluation) -> Result<(), ReportError> {
    let st = &ev.stats;
    let mut record = record.clone();
    let resumed = st.model_calls > 0 && st.reused_calls >= st.model_calls;
    let earlier = resumed
        .then(|| std::fs::read_to_string(path).ok())
        .flatten()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    if let (Some(Value::Object(old)), Some(new)) = (earlier, record.as_object_mut()) {
        for k in THROUGHPUT_KEYS {
            if let Some(v) = old.get(*k) {
                new.insert((*k).to_string(), v.clone());
            }
        }
        new.insert("throughput_from_earlier_run".into(), Value::Bool(true));
    }
    let mut run = serde_json::to_string_pretty(&record).unwrap_or_default();
    run.push('\n');
    write_atomic(path, run.as_bytes())
}

/// What `--save_all` writes per row.
#[derive(Debug, Clone, Copy)]
pub enum AllScores {
    /// `{"chosen": [...], "rejected": [...]}`
    Pairs,
    /// `{"score": [...]}` (instruction data)
    Single,
}

/// `--save_all`: `{dir}/{name}_all.jsonl`, one line of scores per row.
pub fn write_all_scores(
    ev: &Evaluation,
    dir: &Path,
    name: &str,
    kind: AllScores,
) -> Result<PathBuf, ReportError> {
    let py = PyJson::python_default();
    let list = |s: &[f32]| json!(s.iter().map(|x| f64::from(*x)).collect::<Vec<_>>());
    let lists = |c: &[Vec<f32>]| match c {
        [one] => list(one),
        many => Value::Array(many.iter().map(|s| list(s)).collect()),
    };
    let lines: String = ev
        .rows
        .iter()
        .map(|r| {
            let v = match kind {
                AllScores::Pairs => {
                    json!({"chosen": lists(&r.outcome.chosen), "rejected": lists(&r.outcome.rejected)})
                }
                AllScores::Single => json!({"score": list(r.score_chosen())}),
            };
            format!("{}\n", py.dumps(&v))
        })
        .collect();
    let path = dir.join(format!("{name}_all.jsonl"));
    write_atomic(&path, lines.as_bytes())?;
    Ok(path)
}

/// Writes `{dir}/{name}_outputs.jsonl` and `{dir}/{name}_scores.csv` for instruction data
/// (no summary JSON: there is no accuracy, as in RewardBench). Returns the two paths.
pub fn write_instructions(
    ev: &Evaluation,
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, PathBuf), ReportError> {
    let sub = dir.join(name);
    let parent = sub.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(|source| ReportError::NotWritable {
        path: parent.to_path_buf(),
        source,
    })?;
    let outputs = dir.join(format!("{name}_outputs.jsonl"));
    let csv_path = dir.join(format!("{name}_scores.csv"));
    write_atomic(&outputs, instruction_outputs_jsonl(ev).as_bytes())?;
    let csv = instruction_scores_csv(ev).map_err(|e| ReportError::Write {
        path: csv_path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    write_atomic(&csv_path, &csv)?;
    Ok((outputs, csv_path))
}
