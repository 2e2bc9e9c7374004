//! `rewardbench rescore FILE...`: recompute subset scores, sections, the Score and bootstrap
//! intervals from per-item score files as upstream publishes them
//! (`eval-set-scores/{model}.json`, `pref-sets-scores/{model}.json`: a `Dataset.to_dict()`
//! column dict plus `model`, `model_type`, `chat_template`), and say how the recomputed
//! numbers differ from the file's own `results` column.
//!
//! Two shapes are read:
//! * v1 (run_rm.py / run_dpo.py): `scores_chosen`, `scores_rejected` (a float or a list per
//!   row), `subset`, `results`, `id`, `text_chosen`, `text_rejected`. A row is right when the
//!   chosen score is strictly above the rejected one (lists compare lexicographically).
//! * v2 (run_v2.py, and this tool's own `rewardbench v2` file): `scores` (a list per row,
//!   each element `[x]` or `x`, the correct answers first), `num_correct`, `subset`, `id`,
//!   `results`, `text`. Non-Ties rows earn 1/k when `scores[0]` ties k-ways for the top; the
//!   Ties subset is the composite of `scores`, `num_correct` and `id`
//!   ([`crate::scoring::bon::card`]).
//!
//! The file's own `results` are only compared, never used: run_v2 overwrites the Ties rows'
//! results with `s == "ties"` while the data says `"Ties"`, so published Ties rows keep the
//! re-roll credit and their mean is not the Ties score (spec rewardbench2 §1.6).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::data::bon::{is_ties, TiesId};
use crate::scoring::bon::{card_with, BonRow, CardError};
use crate::scoring::rb2::{self, TiesScore, RB2_SUBSETS};
use crate::scoring::{
    bootstrap, leaderboard_score, paper_score, prior_sets, sections, Interval, BOOTSTRAP_LEVEL,
    BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, SECTIONS,
};

/// Two results closer than this are the same (they are 0, 1 or 1/k, written by Python).
const SAME: f64 = 1e-12;

/// The columns a v1 file must have (its other columns are optional).
pub const V1_COLUMNS: [&str; 3] = ["scores_chosen", "scores_rejected", "subset"];
/// The columns a v2 file must have.
pub const V2_COLUMNS: [&str; 4] = ["scores", "num_correct", "subset", "id"];

/// Why a per-item file cannot be rescored. Each names the file; a row's problem its index.
#[derive(Debug, thiserror::Error)]
pub enum RescoreError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not valid JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: not a per-item score file: expected a JSON object of columns (Dataset.to_dict()), found {found}", path.display())]
    NotColumns { path: PathBuf, found: &'static str },
    #[error("{}: not a per-item score file: {}", path.display(), neither_shape(.columns))]
    UnknownShape { path: PathBuf, columns: Vec<String> },
    #[error("{}: {shape} per-item file without the `{column}` column (a {shape} file has {})", path.display(), required(*.shape))]
    MissingColumn {
        path: PathBuf,
        shape: Shape,
        column: &'static str,
    },
    #[error("{}: column `{column}` is not a list (found {found})", path.display())]
    NotAList {
        path: PathBuf,
        column: String,
        found: &'static str,
    },
    #[error("{}: ragged columns: `{column}` has {len} rows but `{reference}` has {expected}", path.display())]
    Ragged {
        path: PathBuf,
        column: String,
        len: usize,
        reference: &'static str,
        expected: usize,
    },
    #[error("{}: no rows", path.display())]
    Empty { path: PathBuf },
    #[error("{}: row {row}, column `{column}`: {problem}", path.display())]
    Cell {
        path: PathBuf,
        row: usize,
        column: &'static str,
        problem: String,
    },
    #[error("{}: row {row} (subset {subset}): Ties id {} is not `ref:N` or `tied:N` (N an integer)", path.display(), id.as_deref().map_or("missing".to_string(), |s| format!("`{s}`")))]
    BadTiesId {
        path: PathBuf,
        row: usize,
        subset: String,
        id: Option<String>,
    },
    #[error("{}: cannot score the RewardBench 2 rows", path.display())]
    Card {
        path: PathBuf,
        #[source]
        source: CardError,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn neither_shape(columns: &[String]) -> String {
    let shown: Vec<&str> = columns.iter().take(12).map(String::as_str).collect();
    format!(
        "neither a v1 file ({}) nor a v2 file ({}); its columns: {}{}",
        V1_COLUMNS.join(", "),
        V2_COLUMNS.join(", "),
        if shown.is_empty() {
            "none".to_string()
        } else {
            shown.join(", ")
        },
        if columns.len() > shown.len() {
            ", ..."
        } else {
            ""
        }
    )
}

fn required(shape: Shape) -> String {
    match shape {
        Shape::V1 => V1_COLUMNS.join(", "),
        Shape::V2 => V2_COLUMNS.join(", "),
    }
}

/// Which script's per-item file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// run_rm.py / run_dpo.py: one chosen and one rejected score per row.
    V1,
    /// run_v2.py: a list of scores per row, the correct ones first.
    V2,
}

impl Shape {
    pub fn label(self) -> &'static str {
        match self {
            Shape::V1 => "v1",
            Shape::V2 => "v2",
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One v1 row: the chosen and rejected scores (one value, or a model's logit vector).
#[derive(Debug, Clone, PartialEq)]
pub struct V1Row {
    pub subset: String,
    pub id: Option<String>,
    pub chosen: Vec<f64>,
    pub rejected: Vec<f64>,
    /// The file's `results` cell (`None`: null, or no such column).
    pub result: Option<f64>,
}

/// One v2 row: one score per completion, the `num_correct` correct ones first.
#[derive(Debug, Clone, PartialEq)]
pub struct V2Row {
    pub subset: String,
    pub id: Option<String>,
    pub scores: Vec<f64>,
    pub num_correct: usize,
    /// The file's `results` cell (`None`: null, or no such column).
    pub result: Option<f64>,
}

/// A file's rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    V1(Vec<V1Row>),
    V2(Vec<V2Row>),
}

impl Rows {
    pub fn shape(&self) -> Shape {
        match self {
            Rows::V1(_) => Shape::V1,
            Rows::V2(_) => Shape::V2,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Rows::V1(r) => r.len(),
            Rows::V2(r) => r.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parsed per-item file.
#[derive(Debug, Clone, PartialEq)]
pub struct PerItemFile {
    pub path: PathBuf,
    pub model: Option<String>,
    pub model_type: Option<String>,
    pub chat_template: Option<String>,
    pub rows: Rows,
    /// Whether the file has a `results` column.
    pub has_results: bool,
    /// Problems that do not stop the rescoring (duplicate keys).
    pub warnings: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Reading

/// Strings standing for Python's `NaN`, `Infinity`, `-Infinity` (json.dumps writes them bare;
/// JSON has no such numbers). A NUL cannot occur unescaped in JSON text, so no real string
/// reads as one of these in a numeric column by accident.
const NAN: &str = "\u{0}NaN";
const INF: &str = "\u{0}Infinity";
const NEG_INF: &str = "\u{0}-Infinity";

/// Python's JSON: bare `NaN`, `Infinity` and `-Infinity` outside strings become the string
/// sentinels above; everything else is kept. `None` when there is none (the common case).
fn python_constants(text: &str) -> Option<String> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    let mut changed = false;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else {
            let token = [("NaN", NAN), ("Infinity", INF), ("-Infinity", NEG_INF)]
                .into_iter()
                .find(|(t, _)| rest.starts_with(t));
            if let Some((t, sentinel)) = token {
                out.push_str(&serde_json::to_string(sentinel).unwrap_or_default());
                rest = &rest[t.len()..];
                changed = true;
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    changed.then_some(out)
}

/// Parses JSON as Python's `json.load` does (bare NaN / Infinity accepted).
pub fn parse_python_json(text: &str) -> Result<Value, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(e) => match python_constants(text) {
            Some(t) => serde_json::from_str(&t),
            None => Err(e),
        },
    }
}

/// Reads and parses one per-item file.
pub fn read(path: &Path) -> Result<PerItemFile, RescoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| RescoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let v = parse_python_json(&text).map_err(|source| RescoreError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &v)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A number, or one of the NaN / ±Infinity sentinels.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s == NAN => Some(f64::NAN),
        Value::String(s) if s == INF => Some(f64::INFINITY),
        Value::String(s) if s == NEG_INF => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// The columns of a file, checked: every list has the reference column's length.
struct Columns<'a> {
    path: &'a Path,
    obj: &'a Map<String, Value>,
    n: usize,
}

impl<'a> Columns<'a> {
    fn new(
        path: &'a Path,
        obj: &'a Map<String, Value>,
        shape: Shape,
    ) -> Result<Self, RescoreError> {
        let names: &[&'static str] = match shape {
            Shape::V1 => &V1_COLUMNS,
            Shape::V2 => &V2_COLUMNS,
        };
        let mut n = None;
        for &name in names {
            let Some(v) = obj.get(name) else {
                return Err(RescoreError::MissingColumn {
                    path: path.to_path_buf(),
                    shape,
                    column: name,
                });
            };
            let Value::Array(a) = v else {
                return Err(RescoreError::NotAList {
                    path: path.to_path_buf(),
                    column: name.to_string(),
                    found: kind(v),
                });
            };
            n.get_or_insert(a.len());
        }
        let reference = names[0];
        let n = n.unwrap_or(0);
        // Required columns first (their problems are the likelier), then the file's others.
        let order = names
            .iter()
            .map(|s| (*s, &obj[*s]))
            .chain(obj.iter().map(|(k, v)| (k.as_str(), v)));
        for (name, v) in order {
            if let Value::Array(a) = v {
                if a.len() != n {
                    return Err(RescoreError::Ragged {
                        path: path.to_path_buf(),
                        column: name.to_string(),
                        len: a.len(),
                        reference,
                        expected: n,
                    });
                }
            }
        }
        if let Some(v) = obj.get("results").filter(|v| !v.is_array()) {
            return Err(RescoreError::NotAList {
                path: path.to_path_buf(),
                column: "results".into(),
                found: kind(v),
            });
        }
        Ok(Self { path, obj, n })
    }

    fn cell(&self, column: &str, row: usize) -> Option<&'a Value> {
        self.obj.get(column)?.as_array()?.get(row)
    }

    fn err(&self, row: usize, column: &'static str, problem: String) -> RescoreError {
        RescoreError::Cell {
            path: self.path.to_path_buf(),
            row,
            column,
            problem,
        }
    }

    fn subset(&self, row: usize) -> Result<String, RescoreError> {
        match self.cell("subset", row) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(
                row,
                "subset",
                format!("expected a string, found {}", kind(v)),
            )),
            None => Err(self.err(row, "subset", "missing".into())),
        }
    }

    fn id(&self, row: usize) -> Result<Option<String>, RescoreError> {
        match self.cell("id", row) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(v) => Err(self.err(
                row,
                "id",
                format!("expected a string or an integer, found {}", kind(v)),
            )),
        }
    }

    /// The `results` cell: a number or a boolean; null (or no column) is `None`.
    fn result(&self, row: usize) -> Result<Option<f64>, RescoreError> {
        match self.cell("results", row) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(f64::from(u8::from(*b)))),
            Some(v) => number(v).map(Some).ok_or_else(|| {
                self.err(
                    row,
                    "results",
                    format!("expected a number or null, found {}", kind(v)),
                )
            }),
        }
    }

    /// A v1 score cell: a float, or a list of floats (a model's labels).
    fn v1_score(&self, row: usize, column: &'static str) -> Result<Vec<f64>, RescoreError> {
        let v = self
            .cell(column, row)
            .ok_or_else(|| self.err(row, column, "missing".into()))?;
        if let Some(x) = number(v) {
            return Ok(vec![x]);
        }
        let Value::Array(a) = v else {
            return Err(self.err(
                row,
                column,
                format!("expected a number or a list of numbers, found {}", kind(v)),
            ));
        };
        if a.is_empty() {
            return Err(self.err(row, column, "an empty list of scores".into()));
        }
        a.iter()
            .map(|x| {
                number(x).ok_or_else(|| {
                    self.err(
                        row,
                        column,
                        format!("expected a list of numbers, found {} in it", kind(x)),
                    )
                })
            })
            .collect()
    }

    /// A v2 `scores` cell: one element per completion, each `x` or `[x]`.
    fn v2_scores(&self, row: usize) -> Result<Vec<f64>, RescoreError> {
        let column = "scores";
        let v = self
            .cell(column, row)
            .ok_or_else(|| self.err(row, column, "missing".into()))?;
        let Value::Array(a) = v else {
            return Err(self.err(
                row,
                column,
                format!(
                    "expected a list (one score per completion), found {}",
                    kind(v)
                ),
            ));
        };
        if a.is_empty() {
            return Err(self.err(row, column, "no scores".into()));
        }
        a.iter()
            .enumerate()
            .map(|(k, x)| {
                if let Some(s) = number(x) {
                    return Ok(s);
                }
                match x {
                    Value::Array(inner) if inner.len() == 1 => number(&inner[0]).ok_or_else(|| {
                        self.err(
                            row,
                            column,
                            format!("completion {k}: expected [x], found [{}]", kind(&inner[0])),
                        )
                    }),
                    Value::Array(inner) => Err(self.err(
                        row,
                        column,
                        format!(
                            "completion {k} has {} values; RewardBench 2 compares one score per completion (upstream #240)",
                            inner.len()
                        ),
                    )),
                    other => Err(self.err(
                        row,
                        column,
                        format!("completion {k}: expected x or [x], found {}", kind(other)),
                    )),
                }
            })
            .collect()
    }

    fn num_correct(&self, row: usize) -> Result<usize, RescoreError> {
        let column = "num_correct";
        let v = self
            .cell(column, row)
            .ok_or_else(|| self.err(row, column, "missing".into()))?;
        v.as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15)
                    .map(|f| f as u64)
            })
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                self.err(
                    row,
                    column,
                    format!("expected a non-negative integer, found {v}"),
                )
            })
    }
}

fn scalar(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Which shape a column dict is: `scores` (or `num_correct`) says v2, `scores_chosen`,
/// `scores_rejected` or `text_chosen` v1.
fn detect(obj: &Map<String, Value>) -> Option<Shape> {
    let has = |k: &str| obj.contains_key(k);
    if has("scores") {
        Some(Shape::V2)
    } else if has("scores_chosen") || has("scores_rejected") || has("text_chosen") {
        Some(Shape::V1)
    } else if has("num_correct") {
        Some(Shape::V2)
    } else {
        None
    }
}

/// Reads a column dict (`v`, read from `path`) into rows. Pure: `path` only names the file.
pub fn parse(path: &Path, v: &Value) -> Result<PerItemFile, RescoreError> {
    let Value::Object(obj) = v else {
        return Err(RescoreError::NotColumns {
            path: path.to_path_buf(),
            found: kind(v),
        });
    };
    let shape = detect(obj).ok_or_else(|| RescoreError::UnknownShape {
        path: path.to_path_buf(),
        columns: obj.keys().cloned().collect(),
    })?;
    let cols = Columns::new(path, obj, shape)?;
    if cols.n == 0 {
        return Err(RescoreError::Empty {
            path: path.to_path_buf(),
        });
    }
    let rows = match shape {
        Shape::V1 => Rows::V1(
            (0..cols.n)
                .map(|i| {
                    Ok(V1Row {
                        subset: cols.subset(i)?,
                        id: cols.id(i)?,
                        chosen: cols.v1_score(i, "scores_chosen")?,
                        rejected: cols.v1_score(i, "scores_rejected")?,
                        result: cols.result(i)?,
                    })
                })
                .collect::<Result<_, RescoreError>>()?,
        ),
        Shape::V2 => Rows::V2(
            (0..cols.n)
                .map(|i| {
                    let row = V2Row {
                        subset: cols.subset(i)?,
                        id: cols.id(i)?,
                        scores: cols.v2_scores(i)?,
                        num_correct: cols.num_correct(i)?,
                        result: cols.result(i)?,
                    };
                    if is_ties(&row.subset) && row.id.as_deref().and_then(TiesId::parse).is_none() {
                        return Err(RescoreError::BadTiesId {
                            path: path.to_path_buf(),
                            row: i,
                            subset: row.subset,
                            id: row.id,
                        });
                    }
                    Ok(row)
                })
                .collect::<Result<_, RescoreError>>()?,
        ),
    };
    let keys: Vec<(&str, Option<&str>)> = match &rows {
        Rows::V1(r) => r
            .iter()
            .map(|r| (r.subset.as_str(), r.id.as_deref()))
            .collect(),
        Rows::V2(r) => r
            .iter()
            .map(|r| (r.subset.as_str(), r.id.as_deref()))
            .collect(),
    };
    let warnings = duplicate_keys(path, &keys).into_iter().collect();
    Ok(PerItemFile {
        path: path.to_path_buf(),
        model: scalar(obj, "model"),
        model_type: scalar(obj, "model_type"),
        chat_template: scalar(obj, "chat_template"),
        has_results: obj.contains_key("results"),
        rows,
        warnings,
    })
}

/// A warning when some `(subset, id)` key occurs more than once (upstream issue #273).
fn duplicate_keys(path: &Path, keys: &[(&str, Option<&str>)]) -> Option<String> {
    let mut first: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut repeats = 0usize;
    let mut example = None;
    for (i, (subset, id)) in keys.iter().enumerate() {
        let Some(id) = id else { continue };
        match first.get(&(*subset, *id)) {
            Some(&j) => {
                repeats += 1;
                example.get_or_insert((*subset, *id, j, i));
            }
            None => {
                first.insert((*subset, *id), i);
            }
        }
    }
    let (subset, id, j, i) = example?;
    Some(format!(
        "{}: {repeats} row(s) repeat a (subset, id) key seen before (first: subset `{subset}`, id `{id}` at rows {j} and {i}); each row is scored as it stands, but join such a file with others by (subset, position), not by id (upstream issue #273)",
        path.display()
    ))
}

// ---------------------------------------------------------------------------------------
// Recomputing

/// One subset: the file's own mean of `results`, the recomputed score, and its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct SubsetLine {
    pub name: String,
    /// Rows (v2: prompts) in the subset.
    pub n: usize,
    /// The mean of the file's non-null `results` (for Ties as upstream's column gives it).
    pub own: Option<f64>,
    /// Rows whose `results` cell is null (or missing).
    pub null_results: usize,
    pub recomputed: f64,
    pub interval: Option<Interval>,
    /// Rows whose `results` differ from the recomputed result (never counted for Ties).
    pub disagreements: usize,
}

impl SubsetLine {
    /// Recomputed minus the file's own.
    pub fn difference(&self) -> Option<f64> {
        self.own.map(|o| self.recomputed - o)
    }
}

/// A section or a Score: from the file's own subset means, and recomputed.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub name: String,
    pub own: Option<f64>,
    pub recomputed: Option<f64>,
    pub interval: Option<Interval>,
}

impl Aggregate {
    pub fn difference(&self) -> Option<f64> {
        Some(self.recomputed? - self.own?)
    }
}

/// A row whose `results` cell disagrees with what its scores give.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagreement {
    pub row: usize,
    pub subset: String,
    pub id: Option<String>,
    pub file: f64,
    pub recomputed: f64,
}

/// The Ties subset: its composite, and what the file's per-row results say.
#[derive(Debug, Clone, PartialEq)]
pub struct TiesNote {
    pub subset: String,
    pub composite: TiesScore,
    pub rows: usize,
    /// Ties rows with a non-null `results` cell.
    pub with_results: usize,
    /// Of those, rows holding exactly the re-roll credit (1/k when `scores[0]` is the top):
    /// the mark of run_v2's lower-case `ties` bug.
    pub reroll_credit: usize,
    /// The mean of the non-null Ties `results` (what averaging the column gives).
    pub naive_mean: Option<f64>,
}

/// Everything recomputed from one file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rescored {
    pub path: PathBuf,
    pub model: Option<String>,
    pub model_type: Option<String>,
    pub shape: Shape,
    pub rows: usize,
    pub has_results: bool,
    /// v2: the six in the paper's order, then others; v1: the core-set subsets in section
    /// order, then others by name.
    pub subsets: Vec<SubsetLine>,
    /// v1: the four sections present.
    pub sections: Vec<Aggregate>,
    /// v2: `Score` (the six-way mean). v1: `Score` (the leaderboard's mean of the four
    /// sections), `Prior Sets` and `Score (paper)` when they exist.
    pub scores: Vec<Aggregate>,
    pub disagreements: Vec<Disagreement>,
    pub ties: Option<TiesNote>,
    /// v1: pairs whose chosen and rejected scores are exactly equal (wrong under strict `>`).
    pub tied_pairs: usize,
    pub warnings: Vec<String>,
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The file's own per-subset means of `results` (non-null cells), with the null counts.
fn own_means<'a>(
    rows: impl Iterator<Item = (&'a str, Option<f64>)>,
) -> BTreeMap<String, (Vec<f64>, usize)> {
    let mut m: BTreeMap<String, (Vec<f64>, usize)> = BTreeMap::new();
    for (subset, r) in rows {
        let e = m.entry(subset.to_string()).or_default();
        match r {
            Some(x) => e.0.push(x),
            None => e.1 += 1,
        }
    }
    m
}

/// Subset names in display order: `first` (those present), then the rest by name.
fn ordered<'a>(names: impl Iterator<Item = &'a String>, first: &[&str]) -> Vec<String> {
    let all: Vec<&String> = names.collect();
    let mut out: Vec<String> = first
        .iter()
        .filter(|f| all.iter().any(|n| n == *f))
        .map(|f| f.to_string())
        .collect();
    let mut rest: Vec<String> = all
        .into_iter()
        .filter(|n| !first.contains(&n.as_str()))
        .cloned()
        .collect();
    rest.sort();
    out.extend(rest);
    out
}

/// Recomputes `file` (95 % intervals, 1000 resamples, the fixed seed).
pub fn rescore(file: &PerItemFile) -> Result<Rescored, RescoreError> {
    rescore_with(file, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, BOOTSTRAP_LEVEL)
}

/// [`rescore`] with given bootstrap settings.
pub fn rescore_with(
    file: &PerItemFile,
    resamples: usize,
    seed: u64,
    level: f64,
) -> Result<Rescored, RescoreError> {
    let mut out = Rescored {
        path: file.path.clone(),
        model: file.model.clone(),
        model_type: file.model_type.clone(),
        shape: file.rows.shape(),
        rows: file.rows.len(),
        has_results: file.has_results,
        subsets: Vec::new(),
        sections: Vec::new(),
        scores: Vec::new(),
        disagreements: Vec::new(),
        ties: None,
        tied_pairs: 0,
        warnings: file.warnings.clone(),
        level,
        resamples,
        seed,
    };
    match &file.rows {
        Rows::V1(rows) => v1(&mut out, rows, resamples, seed, level),
        Rows::V2(rows) => v2(&mut out, rows, resamples, seed, level)?,
    }
    Ok(out)
}

fn v1(out: &mut Rescored, rows: &[V1Row], resamples: usize, seed: u64, level: f64) {
    let mut verdicts: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    let mut nan = 0usize;
    for (i, r) in rows.iter().enumerate() {
        let right = crate::scoring::prefers(&r.chosen, &r.rejected);
        out.tied_pairs += usize::from(r.chosen == r.rejected);
        nan += usize::from(r.chosen.iter().chain(&r.rejected).any(|x| x.is_nan()));
        verdicts.entry(r.subset.clone()).or_default().push(right);
        let recomputed = f64::from(u8::from(right));
        if let Some(file) = r
            .result
            .filter(|f| (f - recomputed).abs() > SAME || f.is_nan())
        {
            out.disagreements.push(Disagreement {
                row: i,
                subset: r.subset.clone(),
                id: r.id.clone(),
                file,
                recomputed,
            });
        }
    }
    if nan > 0 {
        out.warnings.push(format!(
            "{}: {nan} row(s) have a NaN score; they count wrong, as in upstream's `>`",
            out.path.display()
        ));
    }
    let own = own_means(rows.iter().map(|r| (r.subset.as_str(), r.result)));
    let acc: BTreeMap<String, f64> = verdicts
        .iter()
        .map(|(k, v)| {
            let hits = v.iter().filter(|x| **x).count();
            (k.clone(), hits as f64 / v.len() as f64)
        })
        .collect();
    let boot = bootstrap(&verdicts, resamples, seed, level);
    let core: Vec<&str> = SECTIONS
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    for name in ordered(acc.keys(), &core) {
        let (vals, nulls) = own.get(&name).cloned().unwrap_or_default();
        out.subsets.push(SubsetLine {
            n: verdicts[&name].len(),
            own: mean(&vals),
            null_results: nulls,
            recomputed: acc[&name],
            interval: boot.subsets.get(&name).copied(),
            disagreements: out
                .disagreements
                .iter()
                .filter(|d| d.subset == name)
                .count(),
            name,
        });
    }
    // The file's own aggregates only when every subset has its own mean.
    let own_acc: Option<BTreeMap<String, f64>> = out
        .subsets
        .iter()
        .map(|s| s.own.map(|o| (s.name.clone(), o)))
        .collect();
    let own_secs = own_acc.as_ref().map(sections);
    let secs = sections(&acc);
    let own_of = |name: &str| {
        own_secs
            .as_ref()
            .and_then(|s| s.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
    };
    for (name, v) in &secs {
        out.sections.push(Aggregate {
            name: name.to_string(),
            own: own_of(name),
            recomputed: Some(*v),
            interval: boot
                .sections
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, i)| *i),
        });
    }
    if let Some(score) = leaderboard_score(&secs) {
        out.scores.push(Aggregate {
            name: "Score".into(),
            own: own_secs.as_deref().and_then(leaderboard_score),
            recomputed: Some(score),
            interval: boot.score,
        });
    }
    if let Some(prior) = prior_sets(&acc) {
        let own_prior = own_acc.as_ref().and_then(prior_sets);
        out.scores.push(Aggregate {
            name: "Prior Sets".into(),
            own: own_prior,
            recomputed: Some(prior),
            interval: None,
        });
        if let Some(p) = paper_score(&secs, Some(prior)) {
            out.scores.push(Aggregate {
                name: "Score (paper)".into(),
                own: own_secs
                    .as_deref()
                    .zip(own_prior)
                    .and_then(|(s, pr)| paper_score(s, Some(pr))),
                recomputed: Some(p),
                interval: boot.paper_score,
            });
        }
    }
}

fn v2(
    out: &mut Rescored,
    rows: &[V2Row],
    resamples: usize,
    seed: u64,
    level: f64,
) -> Result<(), RescoreError> {
    let bon: Vec<BonRow> = rows
        .iter()
        .map(|r| BonRow {
            subset: Some(r.subset.clone()),
            id: r.id.clone(),
            scores: r.scores.clone(),
            num_correct: r.num_correct,
        })
        .collect();
    let card = card_with(&bon, resamples, seed, level).map_err(|source| RescoreError::Card {
        path: out.path.clone(),
        source,
    })?;
    let mut ties_rows: Vec<&V2Row> = Vec::new();
    for (i, (r, recomputed)) in rows.iter().zip(&card.results).enumerate() {
        match recomputed {
            None => ties_rows.push(r),
            Some(x) => {
                if let Some(file) = r.result.filter(|f| (f - x).abs() > SAME || f.is_nan()) {
                    out.disagreements.push(Disagreement {
                        row: i,
                        subset: r.subset.clone(),
                        id: r.id.clone(),
                        file,
                        recomputed: *x,
                    });
                }
            }
        }
    }
    let own = own_means(rows.iter().map(|r| (r.subset.as_str(), r.result)));
    for name in ordered(card.subsets.keys(), &RB2_SUBSETS) {
        let (vals, nulls) = own.get(&name).cloned().unwrap_or_default();
        out.subsets.push(SubsetLine {
            n: card.counts.get(&name).copied().unwrap_or(0),
            own: mean(&vals),
            null_results: nulls,
            recomputed: card.subsets[&name],
            interval: card.intervals.subsets.get(&name).copied(),
            disagreements: out
                .disagreements
                .iter()
                .filter(|d| d.subset == name)
                .count(),
            name,
        });
    }
    if let (Some(composite), Some(first)) = (card.ties, ties_rows.first()) {
        let results: Vec<f64> = ties_rows.iter().filter_map(|r| r.result).collect();
        let reroll_credit = ties_rows
            .iter()
            .filter(|r| {
                r.result
                    .zip(rb2::best_of_n(&r.scores))
                    .is_some_and(|(f, b)| (f - b).abs() <= SAME)
            })
            .count();
        out.ties = Some(TiesNote {
            subset: first.subset.clone(),
            composite,
            rows: ties_rows.len(),
            with_results: results.len(),
            reroll_credit,
            naive_mean: mean(&results),
        });
    }
    // The file's own Score: the six-way mean of its own subset means (Ties naive).
    let own_subsets: Option<BTreeMap<String, f64>> = out
        .subsets
        .iter()
        .map(|s| s.own.map(|o| (s.name.clone(), o)))
        .collect();
    if card.score.is_some() || own_subsets.as_ref().and_then(rb2::score).is_some() {
        out.scores.push(Aggregate {
            name: "Score".into(),
            own: own_subsets.as_ref().and_then(rb2::score),
            recomputed: card.score,
            interval: card.intervals.score,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reporting

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

/// Reads and rescores every file, in order.
pub fn rescore_files(paths: &[PathBuf]) -> Result<Vec<Rescored>, RescoreError> {
    paths.iter().map(|p| rescore(&read(p)?)).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("x.json")
    }

    /// A run_v2 column dict: `scores` as `[x]`, `results` as run_v2 leaves them (the re-roll
    /// credit on every row, Ties included: its `s == "ties"` never matches "Ties").
    fn v2_upstream(rows: &[(&str, &str, &[f64], usize)]) -> Value {
        json!({
            "text": rows.iter().map(|r| vec!["t"; r.2.len()]).collect::<Vec<_>>(),
            "scores": rows.iter().map(|r| r.2.iter().map(|x| vec![*x]).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "results": rows.iter().map(|r| rb2::best_of_n(r.2)).collect::<Vec<_>>(),
            "subset": rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "id": rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "num_correct": rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "model": "m",
            "model_type": "Seq. Classifier",
            "chat_template": "tokenizer",
        })
    }

    const TIES: [(&str, &str, &[f64], usize); 4] = [
        ("Ties", "ref:1", &[3.0, 1.0, 0.5], 1),
        ("Ties", "tied:1", &[3.0, 2.8, 2.9, 1.0, 0.0], 3),
        ("Ties", "ref:2", &[0.0, 1.0], 1),
        ("Ties", "tied:2", &[2.0, 1.0, 1.5], 2),
    ];

    #[test]
    fn python_constants_outside_strings_only() {
        let v =
            parse_python_json(r#"{"a": [NaN, -Infinity, Infinity, 1.5], "t": "NaN \" Infinity"}"#)
                .unwrap();
        let a: Vec<f64> = v["a"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| number(x).unwrap())
            .collect();
        assert!(a[0].is_nan());
        assert_eq!(a[1..], [f64::NEG_INFINITY, f64::INFINITY, 1.5]);
        assert_eq!(v["t"], "NaN \" Infinity");
        assert!(parse_python_json("{\"a\": [Nan]}").is_err());
        assert!(python_constants("{\"a\": \"NaN\"}").is_none());
    }

    #[test]
    fn floats_parse_correctly_rounded() {
        // serde_json without `float_roundtrip` reads these 1 ulp off.
        for t in [
            "3.7326919421668947",
            "3.9327541516540805",
            "0.10000000149011612",
        ] {
            let v = parse_python_json(&format!("[{t}]")).unwrap();
            assert_eq!(
                number(&v[0]).unwrap().to_bits(),
                t.parse::<f64>().unwrap().to_bits(),
                "{t}"
            );
        }
    }

    #[test]
    fn v2_ties_from_scores_not_from_the_buggy_results() {
        let f = parse(p(), &v2_upstream(&TIES)).unwrap();
        assert_eq!(f.rows.shape(), Shape::V2);
        let r = rescore_with(&f, 100, 1, 0.95).unwrap();
        let t = &r.subsets[0];
        assert_eq!((t.name.as_str(), t.n), ("Ties", 4));
        assert_eq!(t.recomputed, 0.5001798609742693);
        // The re-roll credit: 1, 1, 0, 1.
        assert_eq!(t.own, Some(0.75));
        assert_eq!(t.disagreements, 0, "Ties rows are not compared row by row");
        let note = r.ties.as_ref().unwrap();
        assert_eq!(
            (note.rows, note.with_results, note.reroll_credit),
            (4, 4, 4)
        );
        let text = r.table();
        assert!(text.contains("run_v2's lower-case `ties` bug"), "{text}");
        assert!(text.contains("-0.2498"), "{text}");
        assert!(text.contains("[Score] needs all six subsets"), "{text}");
    }

    #[test]
    fn v2_our_own_file_with_null_ties_results() {
        let mut v = v2_upstream(&TIES);
        v["results"] = json!([null, null, null, null]);
        v["id"] = json!(["ref:1", "tied:1", "ref:2", "tied:2"]);
        let r = rescore(&parse(p(), &v).unwrap()).unwrap();
        assert_eq!(r.subsets[0].own, None);
        assert_eq!(r.subsets[0].recomputed, 0.5001798609742693);
        assert!(r.table().contains("Ties results are null"), "{}", r.table());
        // Flat floats instead of [x] read the same.
        v["scores"] = json!(TIES.iter().map(|t| t.2.to_vec()).collect::<Vec<_>>());
        let flat = rescore(&parse(p(), &v).unwrap()).unwrap();
        assert_eq!(flat.subsets, r.subsets);
    }

    #[test]
    fn v2_disagreeing_rows_are_named() {
        let rows: [(&str, &str, &[f64], usize); 3] = [
            ("Math", "1", &[2.0, 2.0, 1.0, 0.5], 1),
            ("Math", "2", &[1.0, 2.0, 0.0, 0.0], 1),
            ("Focus", "3", &[2.0, 1.0, 1.0, 1.0], 1),
        ];
        let mut v = v2_upstream(&rows);
        // A file whose tie rule was strict (v1's): the 2-way tie scored 0, not 1/2.
        v["results"] = json!([0, 0.0, 1.0]);
        let r = rescore(&parse(p(), &v).unwrap()).unwrap();
        assert_eq!(r.disagreements.len(), 1);
        let d = &r.disagreements[0];
        assert_eq!((d.row, d.file, d.recomputed), (0, 0.0, 0.5));
        let math = r.subsets.iter().find(|l| l.name == "Math").unwrap();
        assert_eq!(
            (math.own, math.recomputed, math.disagreements),
            (Some(0.0), 0.25, 1)
        );
        assert_eq!(math.difference(), Some(0.25));
        assert!(
            r.findings()[0].contains("1 of 3 non-Ties `results` disagree"),
            "{:?}",
            r.findings()
        );
    }

    fn v1_file() -> Value {
        json!({
            "text_chosen": ["a", "b", "c", "d"],
            "text_rejected": ["e", "f", "g", "h"],
            "results": [1, 0, 1, 1],
            "subset": ["hep-go", "hep-go", "shp", "shp"],
            "id": [1, 2, 3, 3],
            "scores_chosen": [[1.0, 0.0], 0.5, [2.0], 0.1],
            "scores_rejected": [[1.0, -1.0], 0.5, [1.0], 0.2],
            "model": "m",
            "model_type": "Seq. Classifier",
            "chat_template": "tulu",
        })
    }

    #[test]
    fn v1_strict_lexicographic_and_disagreements() {
        let f = parse(p(), &v1_file()).unwrap();
        assert_eq!(f.rows.shape(), Shape::V1);
        assert_eq!(f.warnings.len(), 1, "id 3 repeats in shp");
        assert!(f.warnings[0].contains("#273"), "{:?}", f.warnings);
        let r = rescore_with(&f, 50, 1, 0.95).unwrap();
        let hep = &r.subsets[0];
        assert_eq!(
            (hep.name.as_str(), hep.own, hep.recomputed),
            ("hep-go", Some(0.5), 0.5)
        );
        let shp = &r.subsets[1];
        assert_eq!(
            (shp.own, shp.recomputed, shp.disagreements),
            (Some(1.0), 0.5, 1)
        );
        assert_eq!(r.disagreements[0].row, 3);
        assert_eq!(r.tied_pairs, 1);
        assert_eq!(r.sections.len(), 1);
        assert_eq!(r.sections[0].name, "Reasoning");
        let names: Vec<&str> = r.scores.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["Prior Sets"], "no Score without the four sections");
        assert_eq!(
            (r.scores[0].own, r.scores[0].recomputed),
            (Some(1.0), Some(0.5))
        );
        use crate::scoring::prefers;
        assert!(prefers(&[1.0, 0.0], &[1.0, -1.0]) && !prefers(&[0.5], &[0.5]));
        assert!(!prefers(&[f64::NAN], &[0.0]));
    }

    fn err(v: Value) -> String {
        parse(p(), &v).unwrap_err().to_string()
    }

    #[test]
    fn bad_files_are_named() {
        assert!(err(json!([1, 2])).contains("x.json: not a per-item score file"));
        let e = err(json!({"model": "m", "accuracy": 0.5}));
        assert!(
            e.contains("neither a v1 file") && e.contains("model, accuracy"),
            "{e}"
        );
        let mut v = v1_file();
        v.as_object_mut().unwrap().remove("subset");
        let e = err(v);
        assert!(
            e.contains("x.json: v1 per-item file without the `subset` column"),
            "{e}"
        );
        let mut v = v2_upstream(&TIES);
        v.as_object_mut().unwrap().remove("num_correct");
        assert!(err(v).contains("without the `num_correct` column"));
        let mut v = v2_upstream(&TIES);
        v["text"] = json!([["a"], ["b"]]);
        let e = err(v);
        assert!(
            e.contains("ragged columns: `text` has 2 rows but `scores` has 4"),
            "{e}"
        );
        let mut v = v2_upstream(&TIES);
        v["id"] = json!(["ref:1", "tied:1", "ref-2", "tied:2"]);
        let e = err(v);
        assert!(
            e.contains("x.json: row 2 (subset Ties): Ties id `ref-2`"),
            "{e}"
        );
        let mut v = v2_upstream(&TIES);
        v["id"] = json!(["ref:1", null, "ref:2", "tied:2"]);
        assert!(err(v).contains("row 1 (subset Ties): Ties id missing"));
        let mut v = v2_upstream(&TIES);
        v["scores"][1] = json!([[1.0, 2.0], [0.0, 1.0]]);
        let e = err(v);
        assert!(
            e.contains("row 1, column `scores`: completion 0 has 2 values"),
            "{e}"
        );
        let mut v = v2_upstream(&TIES);
        v["num_correct"][3] = json!(-1);
        assert!(err(v).contains("row 3, column `num_correct`"));
        let mut v = v2_upstream(&TIES);
        v["results"] = json!("no");
        assert!(err(v).contains("column `results` is not a list"));
        let e = err(json!({"scores": [], "num_correct": [], "subset": [], "id": []}));
        assert!(e.contains("x.json: no rows"), "{e}");
        // A Ties group that upstream cannot score: the card's error, with the file.
        let mut v = v2_upstream(&TIES);
        v["num_correct"][0] = json!(3);
        let e = rescore(&parse(p(), &v).unwrap()).unwrap_err();
        assert!(matches!(e, RescoreError::Card { .. }));
        let full = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(full.contains("x.json") && full.contains("ref:1"), "{full}");
    }

    #[test]
    fn json_holds_every_number() {
        let r = rescore_with(&parse(p(), &v2_upstream(&TIES)).unwrap(), 20, 1, 0.95).unwrap();
        let j = r.to_json();
        assert_eq!(j["format"], "v2");
        assert_eq!(
            j["subsets"]["Ties"]["recomputed"],
            json!(0.5001798609742693)
        );
        assert_eq!(j["subsets"]["Ties"]["file"], json!(0.75));
        assert_eq!(j["ties_composite"]["file_results_reroll_credit"], json!(4));
        assert_eq!(j["confidence_intervals"]["resamples"], json!(20));
    }
}
