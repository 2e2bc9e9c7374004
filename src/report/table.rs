//! The stdout table: per-subset accuracy, sections, Scores and overall, with bootstrap intervals.

use std::collections::BTreeMap;

use super::{accuracy, bootstrap, tallies, RunInfo};
use crate::scorer::rm::Evaluation;
use crate::scoring::{self, Interval};

/// The stdout table: per-subset accuracy, sections, the leaderboard Scores, overall; each
/// with its 95 % bootstrap interval.
pub fn table(ev: &Evaluation, info: &RunInfo) -> String {
    let t = tallies(ev);
    let acc: BTreeMap<String, f64> = t.iter().map(|(k, v)| (k.clone(), v.accuracy())).collect();
    let b = bootstrap(ev);
    let width = t.keys().map(String::len).max().unwrap_or(0).max(30);
    let ci = |iv: Option<&Interval>| {
        iv.map_or(String::new(), |iv| {
            format!("[{:.4}, {:.4}]", iv.low, iv.high)
        })
    };
    let mut s = String::new();
    s.push_str(&format!(
        "model: {}\ndataset: {}\n",
        info.model, info.dataset
    ));
    s.push_str(&format!(
        "{:<width$} {:>6} {:>9}  {:.0}% CI\n",
        "subset",
        "n",
        "accuracy",
        b.level * 100.0
    ));
    let mut line = |label: String, n: String, v: f64, iv: Option<&Interval>| {
        s.push_str(format!("{label:<width$} {n:>6} {v:>9.4}  {}", ci(iv)).trim_end());
        s.push('\n');
    };
    for (name, tally) in &t {
        line(
            name.clone(),
            tally.n.to_string(),
            tally.accuracy(),
            b.subsets.get(name),
        );
    }
    let sections = scoring::sections(&acc);
    for (section, score) in &sections {
        let iv = b
            .sections
            .iter()
            .find(|(n, _)| n == section)
            .map(|(_, iv)| iv);
        line(format!("[section] {section}"), String::new(), *score, iv);
    }
    if let Some(p) = scoring::prior_sets(&acc) {
        line("[Prior Sets]".into(), String::new(), p, None);
    }
    if let Some(score) = scoring::leaderboard_score(&sections) {
        line(
            "[Score] mean of 4 sections".into(),
            String::new(),
            score,
            b.score.as_ref(),
        );
        if let Some(paper) =
            scoring::prior_sets(&acc).and_then(|p| scoring::paper_score(&sections, Some(p)))
        {
            line(
                "[Score] paper (2,2,2,2,1 w/ Prior)".into(),
                String::new(),
                paper,
                b.paper_score.as_ref(),
            );
        }
    }
    line(
        "overall".into(),
        ev.rows.len().to_string(),
        accuracy(ev),
        Some(&b.accuracy),
    );
    s.push_str(&super::length::block(&super::length::of_pairs(ev)));
    s
}
