//! `rewardbench leaderboard DIR...`: one row per model from the summary JSON files under the
//! given folders, sorted by Score, as CSV (`--output`) and a Markdown table on stdout.
//!
//! Two summary shapes are read: this tool's (`model`, `extra_results`, optional
//! `confidence_intervals`) and RewardBench's script summaries (`model`, `model_type` and one
//! accuracy per subset at the top level, as in `results/eval-set/`). Files of the same model
//! (e.g. its core-set and pref-sets runs) are merged into one row.
//!
//! RewardBench 2 summaries (run_v2's and `rewardbench v2`'s: the six subsets at the top level)
//! make a board of their own: model, Score (the six-way mean), the six subsets, intervals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::scoring::{self, Interval, RB2_SUBSETS, SECTION_NAMES};

/// Errors building a leaderboard.
#[derive(Debug, thiserror::Error)]
pub enum LeaderboardError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no summary JSON files (with `model` and per-subset accuracies) under {dirs}")]
    Empty { dirs: String },
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// Keys of a script summary that are not subset accuracies.
const META_KEYS: &[&str] = &[
    "model",
    "model_type",
    "chat_template",
    "ref_model",
    "tokenizer",
    "accuracy",
    "num_prompts",
    "Score",
];

/// Which benchmark a summary scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Board {
    /// RewardBench (v1): sections, the leaderboard and paper Scores.
    #[default]
    V1,
    /// RewardBench 2: the six-way Score.
    V2,
}

/// One model's results, merged over its summary files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub model: String,
    pub model_type: String,
    pub board: Board,
    pub subsets: BTreeMap<String, f64>,
    /// Bootstrap intervals, by subset, section name, `Score` or `Score (paper)`.
    pub intervals: BTreeMap<String, Interval>,
    pub files: Vec<PathBuf>,
    /// What sets a DPO run apart from other runs of its policy: `ref R` or `ref-free T`.
    pub variant: Option<String>,
}

impl Entry {
    pub fn sections(&self) -> Vec<(&'static str, f64)> {
        match self.board {
            Board::V1 => scoring::sections(&self.subsets),
            Board::V2 => Vec::new(),
        }
    }
    /// The leaderboard Score (v1: mean of the four sections; v2: mean of the six subsets).
    pub fn score(&self) -> Option<f64> {
        match self.board {
            Board::V1 => scoring::leaderboard_score(&self.sections()),
            Board::V2 => scoring::rb2::score(&self.subsets),
        }
    }
    pub fn prior_sets(&self) -> Option<f64> {
        scoring::prior_sets(&self.subsets)
    }
    pub fn paper_score(&self) -> Option<f64> {
        let p = self.prior_sets()?;
        scoring::paper_score(&self.sections(), Some(p))
    }
}

fn interval(v: &Value) -> Option<Interval> {
    let a = v.as_array()?;
    Some(Interval {
        low: a.first()?.as_f64()?,
        high: a.get(1)?.as_f64()?,
    })
}

/// Reads one summary: `None` when the JSON is not a model summary (other result files).
pub fn parse_summary(v: &Value) -> Option<Entry> {
    let obj = v.as_object()?;
    let model = obj.get("model")?.as_str()?.to_string();
    let model_type = obj
        .get("model_type")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            if obj.get("ref_model").is_some_and(|r| !r.is_null()) {
                "DPO".into()
            } else if obj.get("ref_free_type").is_some_and(Value::is_string) {
                "DPO Ref. Free".into() // upstream's run_dpo name for it
            } else {
                "Seq. Classifier".into()
            }
        });
    let mut subsets = BTreeMap::new();
    match obj.get("extra_results") {
        Some(Value::Object(extra)) => {
            for (k, v) in extra {
                if let Some(x) = v.as_f64() {
                    subsets.insert(k.clone(), x);
                }
            }
        }
        _ => {
            for (k, v) in obj {
                if META_KEYS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(x) = v.as_f64() {
                    subsets.insert(k.clone(), x);
                }
            }
        }
    }
    if subsets.is_empty() {
        return None;
    }
    let board = if subsets.keys().any(|k| RB2_SUBSETS.contains(&k.as_str())) {
        Board::V2
    } else {
        Board::V1
    };
    let mut intervals = BTreeMap::new();
    if let Some(ci) = obj.get("confidence_intervals").and_then(Value::as_object) {
        for group in ["subsets", "sections"] {
            if let Some(g) = ci.get(group).and_then(Value::as_object) {
                for (k, v) in g {
                    if let Some(iv) = interval(v) {
                        intervals.insert(k.clone(), iv);
                    }
                }
            }
        }
        for k in ["Score", "Score (paper)"] {
            if let Some(iv) = ci.get(k).and_then(interval) {
                intervals.insert(k.to_string(), iv);
            }
        }
    }
    let text = |k: &str| obj.get(k).and_then(Value::as_str);
    let variant = match (text("ref_model"), text("ref_free_type")) {
        (Some(r), _) => Some(format!("ref {r}")),
        (None, Some(t)) => Some(format!("ref-free {t}")),
        (None, None) => None,
    };
    Some(Entry {
        model,
        model_type,
        board,
        subsets,
        intervals,
        files: Vec::new(),
        variant,
    })
}

fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), LeaderboardError> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|source| LeaderboardError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    children.sort();
    for p in children {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    Ok(())
}

/// One summary file: its path, its JSON and what [`parse_summary`] read from it.
#[derive(Debug, Clone)]
pub struct Summary {
    pub path: PathBuf,
    pub value: Value,
    pub entry: Entry,
}

/// Every model summary under `dirs` (folders searched recursively, files taken as given), in
/// path order, not merged; also warnings for JSON files that could not be parsed and for
/// `--debug` runs found in folders (left out).
pub fn summaries(dirs: &[PathBuf]) -> Result<(Vec<Summary>, Vec<String>), LeaderboardError> {
    let mut files = Vec::new();
    for d in dirs {
        walk(d, &mut files)?;
    }
    let mut warnings = Vec::new();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| LeaderboardError::Io {
            path: f.clone(),
            source,
        })?;
        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                warnings.push(format!("{}: skipped, invalid JSON: {e}", f.display()));
                continue;
            }
        };
        // A --debug run (its first rows only) is left out of a folder; named alone, it is used.
        if value.get("debug") == Some(&Value::Bool(true)) && !dirs.contains(&f) {
            warnings.push(format!(
                "{}: skipped, a --debug run (its first rows only); name the file to include it",
                f.display()
            ));
            continue;
        }
        let Some(mut entry) = parse_summary(&value) else {
            continue; // not a model summary (run records, section files, ...)
        };
        entry.files.push(f.clone());
        out.push(Summary {
            path: f,
            value,
            entry,
        });
    }
    Ok((out, warnings))
}

/// Collects the entries under `dirs`, merged by model (a DPO policy's runs with different
/// references or reference-free modes apart, labelled `model [ref R]` / `model [ref-free T]`
/// when the model has several); also warnings for skipped files.
pub fn collect(dirs: &[PathBuf]) -> Result<(Vec<Entry>, Vec<String>), LeaderboardError> {
    let (found, mut warnings) = summaries(dirs)?;
    let mut by_model: Vec<Entry> = Vec::new();
    for Summary {
        path: f, entry: e, ..
    } in found
    {
        match by_model
            .iter_mut()
            .find(|x| x.model == e.model && x.board == e.board && x.variant == e.variant)
        {
            Some(x) => {
                for (k, v) in e.subsets {
                    if x.subsets.insert(k.clone(), v).is_some() {
                        warnings.push(format!(
                            "{}: subset {k} of {} also in an earlier file; the later value is used",
                            f.display(),
                            x.model
                        ));
                    }
                }
                x.intervals.extend(e.intervals);
                x.files.push(f);
            }
            None => by_model.push(e),
        }
    }
    if by_model.is_empty() {
        return Err(LeaderboardError::Empty {
            dirs: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let same_model = |a: &Entry, b: &Entry| a.model == b.model && a.board == b.board;
    let shared: Vec<bool> = by_model
        .iter()
        .map(|e| by_model.iter().filter(|o| same_model(e, o)).count() > 1)
        .collect();
    for (e, shared) in by_model.iter_mut().zip(shared) {
        if let (true, Some(v)) = (shared, &e.variant) {
            e.model = format!("{} [{v}]", e.model);
        }
    }
    sort(&mut by_model);
    Ok((by_model, warnings))
}

/// By Score, highest first; rows without a Score after, by model name.
pub fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| match (a.score(), b.score()) {
        (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.model.cmp(&b.model)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.model.cmp(&b.model),
    });
}

/// Where a model may rank given the Score's 95 % bootstrap intervals: another model is
/// certainly better when its interval lies wholly above this one's, certainly worse when
/// wholly below; every other model could rank either side. `with_top`: the interval overlaps
/// the first model's (not significantly different from #1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankRange {
    pub best: usize,
    pub worst: usize,
    pub with_top: bool,
}

impl RankRange {
    pub fn label(&self) -> String {
        if self.best == self.worst {
            self.best.to_string()
        } else {
            format!("{}–{}", self.best, self.worst)
        }
    }
}

/// Each entry's [`RankRange`] among the entries that have a Score and its interval (entries
/// sorted by Score, as [`sort`] leaves them); `None` for the others.
pub fn rank_ranges(entries: &[Entry]) -> Vec<Option<RankRange>> {
    let ranked: Vec<(usize, Interval)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.score().is_some())
        .filter_map(|(i, e)| e.intervals.get("Score").map(|iv| (i, *iv)))
        .collect();
    let top = ranked.first().map(|(_, iv)| *iv);
    let mut out = vec![None; entries.len()];
    for (i, iv) in &ranked {
        let better = ranked.iter().filter(|(_, o)| o.low > iv.high).count();
        let worse = ranked.iter().filter(|(_, o)| o.high < iv.low).count();
        out[*i] = Some(RankRange {
            best: 1 + better,
            worst: ranked.len() - worse,
            with_top: top.is_some_and(|t| iv.high >= t.low),
        });
    }
    out
}

fn num(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| x.to_string())
}

/// The CSV: model, model_type, Score, the four sections, Prior Sets, Score (paper), each with
/// its interval columns, then every subset (union over models) with its interval. Missing
/// values are empty cells.
pub fn to_csv(entries: &[Entry]) -> Result<Vec<u8>, csv::Error> {
    let mut subsets: Vec<&String> = entries.iter().flat_map(|e| e.subsets.keys()).collect();
    subsets.sort();
    subsets.dedup();
    let main_cols: Vec<&str> = ["Score"]
        .into_iter()
        .chain(SECTION_NAMES)
        .chain(["Prior Sets", "Score (paper)"])
        .collect();
    let mut header = vec!["model".to_string(), "model_type".to_string()];
    for c in main_cols
        .iter()
        .copied()
        .chain(subsets.iter().map(|s| s.as_str()))
    {
        header.push(c.to_string());
        header.push(format!("{c} 95% low"));
        header.push(format!("{c} 95% high"));
    }
    header.extend(RANK_COLUMNS.iter().map(|c| c.to_string()));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header)?;
    for (e, rank) in entries.iter().zip(rank_ranges(entries)) {
        let sections = e.sections();
        let value = |c: &str| -> Option<f64> {
            match c {
                "Score" => e.score(),
                "Prior Sets" => e.prior_sets(),
                "Score (paper)" => e.paper_score(),
                s => sections
                    .iter()
                    .find(|(n, _)| *n == s)
                    .map(|(_, v)| *v)
                    .or_else(|| e.subsets.get(s).copied()),
            }
        };
        let mut rec = vec![e.model.clone(), e.model_type.clone()];
        for c in main_cols
            .iter()
            .copied()
            .chain(subsets.iter().map(|s| s.as_str()))
        {
            rec.push(num(value(c)));
            let iv = e.intervals.get(c);
            rec.push(num(iv.map(|i| i.low)));
            rec.push(num(iv.map(|i| i.high)));
        }
        rec.extend(rank_cells(rank));
        w.write_record(&rec)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The CSV's last columns: the rank range and whether the model is within noise of #1.
const RANK_COLUMNS: [&str; 3] = ["rank 95% best", "rank 95% worst", "within noise of #1"];

fn rank_cells(r: Option<RankRange>) -> [String; 3] {
    match r {
        Some(r) => [
            r.best.to_string(),
            r.worst.to_string(),
            r.with_top.to_string(),
        ],
        None => Default::default(),
    }
}

fn rank_cell(r: Option<RankRange>) -> String {
    r.map_or(String::new(), |r| {
        format!("{}{}", r.label(), if r.with_top { " ≈#1" } else { "" })
    })
}

/// The Markdown table printed on stdout (percentages, one decimal; Score with its interval).
pub fn to_markdown(entries: &[Entry]) -> String {
    let pct = |v: Option<f64>| v.map_or(String::new(), |x| format!("{:.1}", 100.0 * x));
    let mut s = String::from(
        "| # | model | type | Score | 95% CI | rank (95%) | Chat | Chat Hard | Safety | Reasoning | Prior Sets | Score (paper) |\n",
    );
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let ranks = rank_ranges(entries);
    for (i, e) in entries.iter().enumerate() {
        let sections = e.sections();
        let sec = |n: &str| sections.iter().find(|(x, _)| *x == n).map(|(_, v)| *v);
        let ci = e.intervals.get("Score").map_or(String::new(), |iv| {
            format!("{:.1}–{:.1}", 100.0 * iv.low, 100.0 * iv.high)
        });
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            e.model.replace('|', "\\|"),
            e.model_type,
            pct(e.score()),
            ci,
            rank_cell(ranks[i]),
            pct(sec("Chat")),
            pct(sec("Chat Hard")),
            pct(sec("Safety")),
            pct(sec("Reasoning")),
            pct(e.prior_sets()),
            pct(e.paper_score()),
        ));
    }
    s
}

/// The RewardBench 2 board as CSV: model, model_type, Score, the six subsets (then any
/// others), each with its interval columns.
pub fn to_csv_v2(entries: &[Entry]) -> Result<Vec<u8>, csv::Error> {
    let mut others: Vec<&String> = entries
        .iter()
        .flat_map(|e| e.subsets.keys())
        .filter(|k| !RB2_SUBSETS.contains(&k.as_str()))
        .collect();
    others.sort();
    others.dedup();
    let cols: Vec<&str> = ["Score"]
        .into_iter()
        .chain(RB2_SUBSETS)
        .chain(others.iter().map(|s| s.as_str()))
        .collect();
    let mut header = vec!["model".to_string(), "model_type".to_string()];
    for c in &cols {
        header.push(c.to_string());
        header.push(format!("{c} 95% low"));
        header.push(format!("{c} 95% high"));
    }
    header.extend(RANK_COLUMNS.iter().map(|c| c.to_string()));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header)?;
    for (e, rank) in entries.iter().zip(rank_ranges(entries)) {
        let mut rec = vec![e.model.clone(), e.model_type.clone()];
        for c in &cols {
            let v = if *c == "Score" {
                e.score()
            } else {
                e.subsets.get(*c).copied()
            };
            rec.push(num(v));
            let iv = e.intervals.get(*c);
            rec.push(num(iv.map(|i| i.low)));
            rec.push(num(iv.map(|i| i.high)));
        }
        rec.extend(rank_cells(rank));
        w.write_record(&rec)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The RewardBench 2 board as Markdown (percentages, one decimal).
pub fn to_markdown_v2(entries: &[Entry]) -> String {
    let pct = |v: Option<f64>| v.map_or(String::new(), |x| format!("{:.1}", 100.0 * x));
    let mut s = format!(
        "| # | model | type | Score | 95% CI | rank (95%) | {} |\n|---|---|---|---|---|---|{}\n",
        RB2_SUBSETS.join(" | "),
        "---|".repeat(RB2_SUBSETS.len())
    );
    let ranks = rank_ranges(entries);
    for (i, e) in entries.iter().enumerate() {
        let ci = e.intervals.get("Score").map_or(String::new(), |iv| {
            format!("{:.1}–{:.1}", 100.0 * iv.low, 100.0 * iv.high)
        });
        let subsets: Vec<String> = RB2_SUBSETS
            .iter()
            .map(|k| pct(e.subsets.get(*k).copied()))
            .collect();
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            e.model.replace('|', "\\|"),
            e.model_type,
            pct(e.score()),
            ci,
            rank_cell(ranks[i]),
            subsets.join(" | ")
        ));
    }
    s
}

fn write_csv(out: &Path, bytes: Vec<u8>) -> Result<(), LeaderboardError> {
    let err = |e: std::io::Error| LeaderboardError::Write {
        path: out.to_path_buf(),
        message: e.to_string(),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(out, bytes).map_err(err)
}

/// The leaderboards of the summaries under `dirs` as Markdown (and as CSV in `output`): a
/// RewardBench board and a RewardBench 2 board, each when it has a model. With both, the v2
/// CSV goes beside `output` as `{stem}_v2.csv`. Files that could not be used are reported
/// to `obs`.
pub fn build(
    dirs: &[PathBuf],
    output: Option<&Path>,
    obs: &mut dyn crate::run::observer::Observer,
) -> Result<String, LeaderboardError> {
    let (all, warnings) = collect(dirs)?;
    for w in warnings {
        obs.warn(&w);
    }
    let (v2, entries): (Vec<Entry>, Vec<Entry>) =
        all.into_iter().partition(|e| e.board == Board::V2);
    let csv_err = |out: &Path| {
        let out = out.to_path_buf();
        move |e: csv::Error| LeaderboardError::Write {
            path: out,
            message: e.to_string(),
        }
    };
    let mut md = String::new();
    if !entries.is_empty() {
        if !v2.is_empty() {
            md.push_str("RewardBench\n\n");
        }
        md.push_str(&to_markdown(&entries));
    }
    if !v2.is_empty() {
        if !entries.is_empty() {
            md.push_str("\nRewardBench 2\n\n");
        }
        md.push_str(&to_markdown_v2(&v2));
        if let Some(out) = output {
            let path = if entries.is_empty() {
                out.to_path_buf()
            } else {
                let stem = out
                    .file_stem()
                    .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
                out.with_file_name(format!("{stem}_v2.csv"))
            };
            write_csv(&path, to_csv_v2(&v2).map_err(csv_err(&path))?)?;
            if !entries.is_empty() {
                obs.note(&format!("the RewardBench 2 board is in {}", path.display()));
            }
        }
    }
    if entries.is_empty() {
        return Ok(md);
    }
    if let Some(out) = output {
        let out = out.to_path_buf();
        let bytes = to_csv(&entries).map_err(|e| LeaderboardError::Write {
            path: out.clone(),
            message: e.to_string(),
        })?;
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| LeaderboardError::Write {
                path: out.clone(),
                message: e.to_string(),
            })?;
        }
        std::fs::write(&out, bytes).map_err(|e| LeaderboardError::Write {
            path: out.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(model: &str, score: f64, low: f64, high: f64) -> Entry {
        let subsets: BTreeMap<String, f64> =
            RB2_SUBSETS.iter().map(|s| (s.to_string(), score)).collect();
        let intervals = [("Score".to_string(), Interval { low, high })].into();
        Entry {
            model: model.into(),
            model_type: "Seq. Classifier".into(),
            board: Board::V2,
            subsets,
            intervals,
            files: Vec::new(),
            variant: None,
        }
    }

    #[test]
    fn rank_ranges_from_interval_overlap() {
        let mut e = vec![
            entry("a", 0.80, 0.75, 0.85),
            entry("b", 0.78, 0.72, 0.84), // overlaps a
            entry("c", 0.60, 0.55, 0.65), // below both
            entry("d", 0.58, 0.50, 0.74), // overlaps b and c, not a
        ];
        sort(&mut e);
        let r = rank_ranges(&e);
        let got: Vec<(usize, usize, bool)> = r
            .iter()
            .map(|r| r.map(|r| (r.best, r.worst, r.with_top)).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![(1, 2, true), (1, 3, true), (3, 4, false), (2, 4, false)]
        );
        assert_eq!(r[1].unwrap().label(), "1–3");
        // Without an interval a model is not ranked.
        e[2].intervals.clear();
        assert_eq!(rank_ranges(&e)[2], None);
        assert_eq!(rank_ranges(&e)[3].unwrap().best, 2);
    }
}
