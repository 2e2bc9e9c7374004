//! Result files read back: each run's summary and per-row results, for `compare`, the HTML
//! report and publishing. Reads this tool's `{name}_outputs.jsonl` (+ `{name}.json`) of
//! every path (v1, DPO, RewardBench 2, judges) and upstream's per-item column files.

mod outputs;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use outputs::read_outputs;

/// Why result files cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {problem}", path.display())]
    Bad { path: PathBuf, problem: String },
    #[error("{} line {line}: {problem}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("{}: no rows", path.display())]
    Empty { path: PathBuf },
    #[error("no result files (`{{name}}_outputs.jsonl` beside `{{name}}.json`) under {paths}")]
    NoRuns { paths: String },
    #[error(transparent)]
    PerItem(#[from] crate::rescore::RescoreError),
}

/// How a run's rows are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RewardBench v1 (and DPO, v1 judges): chosen against rejected, 0/1 (or a judge's 0.5).
    Pairs,
    /// RewardBench 2: best of N with 1/k credit, the Ties composite.
    BestOfN,
}

/// One row's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResult {
    pub subset: String,
    pub id: Option<String>,
    /// The sample's content hash (`sample_hash`), when the file records it.
    pub sample_hash: Option<String>,
    /// The row's credit (0/1, 1/k, a judge's error credit); `None` for Ties rows, whose
    /// subset score is the composite of `scores`.
    pub credit: Option<f64>,
    /// Lowest correct score minus highest incorrect score (> 0: right), when scores exist.
    pub margin: Option<f64>,
    /// Characters of the (first) correct completion minus the mean of the incorrect ones,
    /// when the file has the texts.
    pub length_diff: Option<f64>,
    /// Best-of-N rows: each completion's score, the `num_correct` correct ones first.
    pub scores: Vec<f64>,
    pub num_correct: usize,
}

/// One run read back.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The result name (the summary's file stem).
    pub name: String,
    /// The summary's `model`, else the file's, else the name.
    pub model: String,
    pub summary_path: Option<PathBuf>,
    /// The summary JSON (`Null` when the run has none, e.g. an upstream per-item file).
    pub summary: Value,
    pub rows_path: PathBuf,
    pub kind: Kind,
    pub rows: Vec<ItemResult>,
    /// Notes for the user (e.g. no content hashes to check).
    pub notes: Vec<String>,
}

impl RunResult {
    /// A label for messages: the model and the file.
    pub fn label(&self) -> String {
        format!("{} ({})", self.model, self.rows_path.display())
    }
}

const OUTPUTS_SUFFIX: &str = "_outputs.jsonl";

/// Every run under `paths`: folders are searched recursively for `{name}_outputs.jsonl`
/// files; a file may be an outputs file, a summary `{name}.json` (its outputs beside it), or
/// an upstream per-item column file (`eval-set-scores/{model}.json`). Sorted by path.
pub fn find_runs(paths: &[PathBuf]) -> Result<Vec<RunResult>, ResultsError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            collect_outputs(p, &mut files)?;
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files.dedup();
    let runs: Vec<RunResult> = files
        .iter()
        .map(|f| read_run(f))
        .collect::<Result<_, _>>()?;
    if runs.is_empty() {
        return Err(ResultsError::NoRuns {
            paths: paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(runs)
}

/// One run from a folder holding exactly one, or a file (see [`find_runs`]).
pub fn read_one(path: &Path) -> Result<RunResult, ResultsError> {
    if !path.is_dir() {
        return read_run(path);
    }
    let mut files = Vec::new();
    collect_outputs(path, &mut files)?;
    match files.len() {
        0 => Err(ResultsError::NoRuns {
            paths: path.display().to_string(),
        }),
        1 => read_run(&files[0]),
        _ => Err(ResultsError::Bad {
            path: path.to_path_buf(),
            problem: format!(
                "holds {} runs ({}); name one file (its `{{name}}_outputs.jsonl` or `{{name}}.json`)",
                files.len(),
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

fn collect_outputs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ResultsError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ResultsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            collect_outputs(&p, out)?;
        } else if name.ends_with(OUTPUTS_SUFFIX) {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads a file as a run: outputs JSONL, a summary beside its outputs, or a per-item file.
pub fn read_run(path: &Path) -> Result<RunResult, ResultsError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(stem) = name.strip_suffix(OUTPUTS_SUFFIX) {
        let summary_path = path.with_file_name(format!("{stem}.json"));
        let summary = if summary_path.is_file() {
            Some(read_json(&summary_path)?)
        } else {
            None
        };
        return read_outputs(path, stem, summary.map(|s| (summary_path, s)));
    }
    let value = read_json(path)?;
    let is_columns = value
        .as_object()
        .is_some_and(|m| m.values().any(Value::is_array) && !m.contains_key("num_prompts"))
        && value.get("confidence_intervals").is_none();
    if is_columns {
        return outputs::from_per_item(path, &value);
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let outputs = path.with_file_name(format!("{stem}{OUTPUTS_SUFFIX}"));
    if !outputs.is_file() {
        return Err(ResultsError::Bad {
            path: path.to_path_buf(),
            problem: format!(
                "a summary without its per-row file {} (compare and the report need each row's result)",
                outputs.display()
            ),
        });
    }
    read_outputs(&outputs, stem, Some((path.to_path_buf(), value)))
}

fn read_json(path: &Path) -> Result<Value, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    crate::rescore::parse_python_json(&text).map_err(|e| ResultsError::Bad {
        path: path.to_path_buf(),
        problem: format!("not valid JSON: {e}"),
    })
}
