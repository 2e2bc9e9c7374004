//! `rewardbench report RESULTS... --output report.html`: one self-contained static page
//! (no network: charts are inline SVG drawn by plotters, the data a JSON blob in the page,
//! a small script sorts the tables and picks the model whose plots are shown).

mod charts;
mod page;
mod runs;

use std::path::{Path, PathBuf};

use crate::leaderboard::LeaderboardError;
use crate::template::TemplateError;

pub use page::MAX_POINTS;

/// Errors building or writing the report.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error(transparent)]
    Summaries(#[from] LeaderboardError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a summary JSON file: {why}")]
    NotASummary { path: PathBuf, why: String },
    #[error(transparent)]
    Rows(#[from] crate::results::ResultsError),
    #[error("drawing the {chart} chart: {message}")]
    Chart { chart: String, message: String },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Write(#[from] super::ReportError),
}

/// A built page.
#[derive(Debug, Clone)]
pub struct Report {
    pub html: String,
    /// Models (runs) on the page.
    pub runs: usize,
    /// Files that were skipped, and why.
    pub warnings: Vec<String>,
}

/// The page for the summaries under `inputs` (folders searched recursively, or summary
/// files), each with its `_outputs.jsonl` rows (read by [`crate::results`]) when they are
/// beside it.
pub fn build(inputs: &[PathBuf], title: &str) -> Result<Report, HtmlError> {
    let (runs, warnings) = runs::collect(inputs)?;
    let html = page::render(title, &runs, &warnings)?;
    Ok(Report {
        html,
        runs: runs.len(),
        warnings,
    })
}

/// [`build`], then the page written to `output` atomically (a temporary file, renamed).
pub fn write(inputs: &[PathBuf], output: &Path, title: &str) -> Result<Report, HtmlError> {
    let report = build(inputs, title)?;
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| super::ReportError::Write {
            path: output.to_path_buf(),
            source,
        })?;
    }
    super::write_atomic(output, report.html.as_bytes())?;
    Ok(report)
}
