//! The page's content: tables, charts and the embedded data, gathered from the runs and
//! rendered with the page template (`page.html`).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::charts::{self, Bar, Grid};
use super::runs::{Kind, Run};
use super::HtmlError;
use crate::leaderboard::{self, Board, Entry, RankRange};
use crate::results::{self, ItemResult};
use crate::scoring::{PRIOR_SETS, RB2_SUBSETS, SECTIONS, SECTION_NAMES};

/// The page template: markup, style and the small script (sorting, model selection,
/// heatmap tooltips).
const TEMPLATE: &str = include_str!("page.html");

/// At most this many points in one length-bias plot: the rows of smallest `sample_key`,
/// so the same prompts are shown for every model.
pub const MAX_POINTS: usize = 50;

#[derive(Serialize)]
struct Column {
    key: String,
    /// Part of the leaderboard's Score or a section (a bar chart each); else table only.
    bars: bool,
}

#[derive(Serialize)]
struct Cell {
    key: String,
    /// The number, exactly (shortest round-trip form); `None` when absent.
    value: Option<String>,
    /// As shown: percent, one decimal.
    text: String,
    /// The 95 % interval, in percent, when known.
    ci: Option<String>,
}

#[derive(Serialize)]
struct RankCell {
    best: usize,
    label: String,
    with_top: bool,
}

#[derive(Serialize)]
struct TableRow {
    rank: usize,
    index: usize,
    label: String,
    type_label: String,
    details: Vec<String>,
    prompts: Option<u64>,
    /// Where the model may rank given the Score intervals (`leaderboard::rank_ranges`).
    rank_range: Option<RankCell>,
    cells: Vec<Cell>,
    files: Vec<String>,
}

#[derive(Serialize)]
struct Figure {
    title: String,
    svg: String,
    caption: String,
}

#[derive(Serialize)]
struct BoardView {
    id: &'static str,
    name: &'static str,
    columns: Vec<Column>,
    /// Some model has a rank range (a Score and its interval).
    ranks: bool,
    rows: Vec<TableRow>,
    bars: Vec<Figure>,
    heatmap: String,
    subsets: usize,
}

#[derive(Serialize)]
struct ModelView {
    index: usize,
    label: String,
    board: &'static str,
    histogram: Option<Figure>,
    length: Vec<Figure>,
    note: Option<String>,
}

#[derive(Serialize)]
struct Context<'a> {
    title: &'a str,
    boards: Vec<BoardView>,
    models: Vec<ModelView>,
    data: String,
    warnings: &'a [String],
    runs: usize,
    files: usize,
    max_points: usize,
}

fn board_name(b: Board) -> &'static str {
    match b {
        Board::V1 => "RewardBench",
        Board::V2 => "RewardBench 2",
    }
}

fn board_id(b: Board) -> &'static str {
    match b {
        Board::V1 => "v1",
        Board::V2 => "v2",
    }
}

/// A column's value of a run: Score, a section, Prior Sets, Score (paper), or a subset.
fn value(r: &Run, key: &str) -> Option<f64> {
    let e = &r.entry;
    match key {
        "Score" => e.score(),
        "Prior Sets" => e.prior_sets(),
        "Score (paper)" => e.paper_score(),
        k if e.board == Board::V1 && SECTION_NAMES.contains(&k) => {
            e.sections().iter().find(|(s, _)| *s == k).map(|(_, v)| *v)
        }
        k => e.subsets.get(k).copied(),
    }
}

fn pct(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

/// The table's numeric columns of a board: those some run has a value for.
fn columns(board: Board, runs: &[&Run]) -> Vec<Column> {
    let all: Vec<(&str, bool)> = match board {
        Board::V1 => std::iter::once(("Score", true))
            .chain(SECTION_NAMES.iter().map(|s| (*s, true)))
            .chain([("Prior Sets", false), ("Score (paper)", false)])
            .collect(),
        Board::V2 => std::iter::once(("Score", true))
            .chain(RB2_SUBSETS.iter().map(|s| (*s, true)))
            .collect(),
    };
    all.into_iter()
        .filter(|(k, _)| runs.iter().any(|r| value(r, k).is_some()))
        .map(|(k, bars)| Column {
            key: k.to_string(),
            bars,
        })
        .collect()
}

/// Subsets of a board in reading order: v1 by section (RewardBench's order), then the prior
/// sets, then the rest by name; v2 in RewardBench 2's order.
fn subset_order(board: Board, runs: &[&Run]) -> Vec<String> {
    let mut present: Vec<String> = runs
        .iter()
        .flat_map(|r| r.entry.subsets.keys().cloned())
        .collect();
    present.sort();
    present.dedup();
    let known: Vec<&str> = match board {
        Board::V1 => SECTIONS
            .iter()
            .flat_map(|(_, s)| s.iter().copied())
            .chain(PRIOR_SETS.iter().copied())
            .collect(),
        Board::V2 => RB2_SUBSETS.to_vec(),
    };
    let mut out: Vec<String> = known
        .iter()
        .filter(|k| present.iter().any(|p| p == *k))
        .map(|k| k.to_string())
        .collect();
    out.extend(present.into_iter().filter(|p| !known.contains(&p.as_str())));
    out
}

fn interval(r: &Run, key: &str) -> Option<(f64, f64)> {
    r.entry.intervals.get(key).map(|iv| (iv.low, iv.high))
}

fn table_row(
    rank: usize,
    index: usize,
    r: &Run,
    cols: &[Column],
    range: Option<RankRange>,
) -> TableRow {
    let cells = cols
        .iter()
        .map(|c| {
            let v = value(r, &c.key);
            Cell {
                key: c.key.clone(),
                value: v.map(|x| x.to_string()),
                text: v.map_or_else(|| "–".to_string(), pct),
                ci: interval(r, &c.key).map(|(lo, hi)| format!("{}–{}", pct(lo), pct(hi))),
            }
        })
        .collect();
    let prompts = (!r.counts.is_empty()).then(|| r.counts.values().sum());
    TableRow {
        rank,
        index,
        label: r.label.clone(),
        type_label: r.entry.model_type.clone(),
        details: r.details(),
        prompts,
        rank_range: range.map(|g| RankCell {
            best: g.best,
            label: g.label(),
            with_top: g.with_top,
        }),
        cells,
        files: r
            .entry
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
    }
}

/// One board's table, bars and heatmap, and its part of the embedded data.
fn board(
    board: Board,
    runs: &[(usize, &Run)],
) -> Result<(BoardView, serde_json::Value), HtmlError> {
    let only: Vec<&Run> = runs.iter().map(|(_, r)| *r).collect();
    let cols = columns(board, &only);
    // The runs come sorted by Score, as `rank_ranges` needs.
    let entries: Vec<Entry> = only.iter().map(|r| r.entry.clone()).collect();
    let ranges = leaderboard::rank_ranges(&entries);
    let rows: Vec<TableRow> = runs
        .iter()
        .zip(&ranges)
        .enumerate()
        .map(|(rank, ((i, r), g))| table_row(rank + 1, *i, r, &cols, *g))
        .collect();
    let mut bars = Vec::new();
    for c in cols.iter().filter(|c| c.bars) {
        let items: Vec<Bar> = only
            .iter()
            .filter_map(|r| {
                Some(Bar {
                    label: r.label.clone(),
                    value: value(r, &c.key)?,
                    ci: interval(r, &c.key),
                })
            })
            .collect();
        let missing = only.len() - items.len();
        bars.push(Figure {
            title: c.key.clone(),
            svg: charts::bars(&c.key, &items)?,
            caption: if missing > 0 {
                format!("{missing} model(s) without a value left out")
            } else {
                String::new()
            },
        });
    }
    let subsets = subset_order(board, &only);
    let labels: Vec<String> = only.iter().map(|r| r.label.clone()).collect();
    let values: Vec<Vec<Option<f64>>> = only
        .iter()
        .map(|r| {
            subsets
                .iter()
                .map(|s| r.entry.subsets.get(s).copied())
                .collect()
        })
        .collect();
    let (heatmap, grid) = charts::heatmap(&labels, &subsets, &values)?;
    let data = board_data(board, &only, &subsets, grid);
    Ok((
        BoardView {
            id: board_id(board),
            name: board_name(board),
            columns: cols,
            ranks: ranges.iter().any(Option::is_some),
            rows,
            bars,
            heatmap,
            subsets: subsets.len(),
        },
        data,
    ))
}

/// What the heatmap's tooltips say, cell by cell.
fn board_data(board: Board, runs: &[&Run], subsets: &[String], grid: Grid) -> serde_json::Value {
    let cells: Vec<Vec<serde_json::Value>> = runs
        .iter()
        .map(|r| {
            subsets
                .iter()
                .map(|s| {
                    let Some(v) = r.entry.subsets.get(s) else {
                        return serde_json::Value::Null;
                    };
                    json!({
                        "v": v,
                        "ci": interval(r, s),
                        "n": r.counts.get(s),
                        "errors": r.errors.get(s),
                        "baseline": r.baselines.get(s),
                        "test": r.length_tests.get(s),
                    })
                })
                .collect()
        })
        .collect();
    json!({
        "id": board_id(board),
        "grid": grid,
        "models": runs.iter().map(|r| &r.label).collect::<Vec<_>>(),
        "subsets": subsets,
        "cells": cells,
    })
}

/// Pearson's r, when defined (3 points or more, neither coordinate constant).
fn pearson(p: &[(f64, f64)]) -> Option<f64> {
    if p.len() < 3 {
        return None;
    }
    let n = p.len() as f64;
    let (mx, my) = (
        p.iter().map(|q| q.0).sum::<f64>() / n,
        p.iter().map(|q| q.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in p {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Share of rows with a length difference and a non-zero margin where the model preferred
/// the longer answer.
fn prefers_longer(p: &[(f64, f64)]) -> Option<f64> {
    let decided: Vec<&(f64, f64)> = p.iter().filter(|q| q.0 != 0.0 && q.1 != 0.0).collect();
    (!decided.is_empty()).then(|| {
        decided
            .iter()
            .filter(|q| (q.0 > 0.0) == (q.1 > 0.0))
            .count() as f64
            / decided.len() as f64
    })
}

/// FNV-1a, 64 bits: a hash that does not change between builds or platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What orders a row for subsampling: the hash of its `sample_hash` (the row's content, the
/// same for every model of the same data), else of its subset and id, else its position.
fn sample_key(x: &ItemResult, position: usize) -> u64 {
    match (&x.sample_hash, &x.id) {
        (Some(h), _) => fnv1a(h.as_bytes()),
        (None, Some(id)) => fnv1a(format!("{}\u{0}{id}", x.subset).as_bytes()),
        (None, None) => fnv1a(&(position as u64).to_le_bytes()),
    }
}

/// The `k` points of smallest key: the same rows for every model of the same data.
fn subsample(mut p: Vec<(u64, f64, f64)>, k: usize) -> Vec<(f64, f64)> {
    p.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    p.truncate(k);
    p.into_iter().map(|(_, x, y)| (x, y)).collect()
}

/// A run's histogram and length-bias plots (or why it has none).
fn model(index: usize, r: &Run, order: &[String]) -> Result<ModelView, HtmlError> {
    let mut view = ModelView {
        index,
        label: r.label.clone(),
        board: board_name(r.entry.board),
        histogram: None,
        length: Vec::new(),
        note: None,
    };
    let Some(rows) = &r.rows else {
        view.note = Some("no per-row outputs (_outputs.jsonl) beside the summary".into());
        return Ok(view);
    };
    let margins: Vec<f64> = rows.iter().filter_map(|x| x.margin).collect();
    if margins.is_empty() {
        view.note = Some(match r.kind {
            Kind::Judge { .. } => "a judge gives verdicts, not scores: no margins to plot".into(),
            _ => "the per-row outputs hold no scores".into(),
        });
        return Ok(view);
    }
    let above = margins.iter().filter(|m| **m > 0.0).count();
    let zero = margins.iter().filter(|m| **m == 0.0).count();
    let axis = match r.rows_kind {
        Some(results::Kind::BestOfN) => "lowest correct − highest incorrect score",
        _ => "score(chosen) − score(rejected)",
    };
    view.histogram = Some(Figure {
        title: format!("margins of {}", r.label),
        svg: charts::histogram(&charts::short(&r.label, 60), axis, &margins)?,
        caption: format!(
            "{} rows; margin > 0 (right) in {} ({:.1}%), = 0 (a tie) in {zero}",
            margins.len(),
            above,
            100.0 * above as f64 / margins.len() as f64
        ),
    });
    let mut by_subset: BTreeMap<&str, Vec<(u64, f64, f64)>> = BTreeMap::new();
    for (i, x) in rows.iter().enumerate() {
        if let (Some(m), Some(d)) = (x.margin, x.length_diff) {
            by_subset
                .entry(x.subset.as_str())
                .or_default()
                .push((sample_key(x, i), d, m));
        }
    }
    let mut names: Vec<&str> = order
        .iter()
        .map(String::as_str)
        .filter(|s| by_subset.contains_key(s))
        .collect();
    names.extend(by_subset.keys().filter(|k| !order.iter().any(|o| o == *k)));
    for s in names {
        let pts = &by_subset[s];
        let all: Vec<(f64, f64)> = pts.iter().map(|p| (p.1, p.2)).collect();
        let shown = subsample(pts.clone(), MAX_POINTS);
        let mut caption = format!("n = {}", all.len());
        if shown.len() < all.len() {
            caption.push_str(&format!(" ({} shown)", shown.len()));
        }
        if let Some(l) = prefers_longer(&all) {
            caption.push_str(&format!(" · prefers longer {:.0}%", 100.0 * l));
        }
        if let Some(c) = pearson(&all) {
            caption.push_str(&format!(" · r = {c:.2}"));
        }
        let title = if s.is_empty() { "(no subset)" } else { s };
        view.length.push(Figure {
            title: title.to_string(),
            svg: charts::length_bias(title, &shown)?,
            caption,
        });
    }
    Ok(view)
}

/// `<`, `>` and `&` as JSON escapes: the data cannot close its `<script>` element.
fn script_json(v: &serde_json::Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The whole page.
pub fn render(title: &str, runs: &[Run], warnings: &[String]) -> Result<String, HtmlError> {
    let mut boards = Vec::new();
    let mut data = Vec::new();
    let mut orders: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for b in [Board::V1, Board::V2] {
        let these: Vec<(usize, &Run)> = runs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.entry.board == b)
            .collect();
        if these.is_empty() {
            continue;
        }
        let only: Vec<&Run> = these.iter().map(|(_, r)| *r).collect();
        orders.insert(board_id(b), subset_order(b, &only));
        let (view, d) = board(b, &these)?;
        boards.push(view);
        data.push(d);
    }
    let models = runs
        .iter()
        .enumerate()
        .map(|(i, r)| model(i, r, &orders[board_id(r.entry.board)]))
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = Context {
        title,
        boards,
        models,
        data: script_json(&json!({ "boards": data })),
        warnings,
        runs: runs.len(),
        files: runs.iter().map(|r| r.entry.files.len()).sum(),
        max_points: MAX_POINTS,
    };
    Ok(crate::template::page("page.html", TEMPLATE, &ctx)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script() {
        let s = script_json(&json!({"m": "</script><script>alert(1)</script> & more"}));
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["m"], "</script><script>alert(1)</script> & more");
    }

    #[test]
    fn length_statistics() {
        let p = [
            (1.0, 1.0),
            (2.0, 2.0),
            (-1.0, -1.5),
            (3.0, -1.0),
            (0.0, 5.0),
        ];
        assert_eq!(prefers_longer(&p), Some(0.75));
        assert!(pearson(&p).is_some());
        assert_eq!(pearson(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]), None);
    }

    #[test]
    fn subsample_keeps_the_smallest_hashes() {
        let p = vec![(5, 0.5, 0.5), (1, 0.1, 0.1), (3, 0.3, 0.3)];
        assert_eq!(subsample(p, 2), [(0.1, 0.1), (0.3, 0.3)]);
    }
}
