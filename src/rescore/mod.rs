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
use std::path::PathBuf;

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

mod read;
mod render;

pub use read::{parse, parse_python_json, read};
pub use render::write_json;

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

/// Reads and rescores every file, in order.
pub fn rescore_files(paths: &[PathBuf]) -> Result<Vec<Rescored>, RescoreError> {
    paths.iter().map(|p| rescore(&read(p)?)).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{json, Value};

    use super::read::{number, python_constants};
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
