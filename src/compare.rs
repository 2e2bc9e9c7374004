//! `rewardbench compare A B`: paired tests of two runs on the same rows, per subset, section
//! and Score, with Holm and Šidák corrections across subsets and a verdict line per result.
//!
//! Rows are matched by `(subset, id)` (the row's position within its subset when there is
//! no id) and their `sample_hash`es must agree. v1 subsets use the exact McNemar test on the
//! discordant rows; 1/k credit (RewardBench 2), a judge's 0.5 error credit, the Ties
//! composite, sections and Scores use a paired permutation test of the same statistic.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use crate::data::bon::is_ties;
use crate::results::{Kind, RunResult};
use crate::scoring::rb2::{self, TiesPrompt, TiesRow};
use crate::scoring::stats::{
    holm, paired_permutation, paired_test, sidak, Permutation, PERMUTATION_RESAMPLES,
    PERMUTATION_SEED,
};
use crate::scoring::{EXAMPLE_COUNTS, RB2_SUBSETS, SECTIONS};

/// Significance level of the verdicts.
pub const ALPHA: f64 = 0.05;

/// Why two runs cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{a} scores {ka} but {b} scores {kb}: compare runs of the same benchmark")]
    Kinds {
        a: String,
        b: String,
        ka: &'static str,
        kb: &'static str,
    },
    #[error("{file}: row `{key}` appears twice (subset and id must identify a row)")]
    Duplicate { file: String, key: String },
    #[error(
        "not the same dataset: {count} row(s) of {file} are missing from {other} (first: `{key}`)"
    )]
    Missing {
        file: String,
        other: String,
        count: usize,
        key: String,
    },
    #[error("not the same dataset: row `{key}` has sample_hash {ha} in {a} but {hb} in {b} (the row's prompt or completions differ)")]
    Hash {
        key: String,
        a: String,
        ha: String,
        b: String,
        hb: String,
    },
    #[error("{file}: Ties rows: {source}")]
    Ties {
        file: String,
        source: rb2::TiesError,
    },
}

fn kind_label(k: Kind) -> &'static str {
    match k {
        Kind::Pairs => "RewardBench v1 pairs",
        Kind::BestOfN => "RewardBench 2 best-of-N rows",
    }
}

/// One compared result: a subset, a section or the Score.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    /// Rows (Ties: rows too, tested as prompts).
    pub n: usize,
    pub a_accuracy: f64,
    pub b_accuracy: f64,
    /// Rows only A gets (more credit on), and only B; `None` for composites.
    pub a_only: Option<usize>,
    pub b_only: Option<usize>,
    pub p_value: f64,
    /// Corrected across the lines of the same family (subsets, or sections); the Score's
    /// are its own p-value.
    pub p_holm: f64,
    pub p_sidak: f64,
    pub test: &'static str,
}

impl Line {
    pub fn difference(&self) -> f64 {
        self.a_accuracy - self.b_accuracy
    }

    /// A plain-language verdict; `family` is what the correction was over.
    pub fn verdict(&self, family: &str) -> String {
        let rows = match (self.a_only, self.b_only) {
            (Some(x), Some(y)) => format!("; {x} row(s) only A gets right, {y} only B"),
            _ => String::new(),
        };
        let numbers = format!("A {:.4}, B {:.4}{rows}", self.a_accuracy, self.b_accuracy);
        let (hi, lo) = if self.a_accuracy >= self.b_accuracy {
            ("A", "B")
        } else {
            ("B", "A")
        };
        let p = fmt_p(self.p_value);
        if self.p_holm < ALPHA {
            format!(
                "{}: {hi} is better than {lo} ({numbers}; p={p}; Holm over {family}: {})",
                self.name,
                fmt_p(self.p_holm)
            )
        } else if self.p_value < ALPHA {
            format!(
                "{}: {hi} scores higher ({numbers}; p={p}) but not after correcting over {family} (Holm {}): within noise",
                self.name,
                fmt_p(self.p_holm)
            )
        } else if self.a_accuracy == self.b_accuracy {
            format!("{}: no difference ({numbers}; p={p})", self.name)
        } else {
            format!(
                "{}: no significant difference ({numbers}; p={p})",
                self.name
            )
        }
    }
}

/// A p-value for people: three decimals, or scientific notation below 0.001.
pub fn fmt_p(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.3}")
    } else {
        format!("{p:.2e}")
    }
}

/// A comparison of two runs.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub kind: Kind,
    pub rows: usize,
    pub subsets: Vec<Line>,
    pub sections: Vec<Line>,
    pub score: Option<Line>,
    pub notes: Vec<String>,
}

/// A unit of the permutation test: a row's credit, or a Ties prompt.
#[derive(Debug, Clone, PartialEq)]
enum Unit {
    Row { subset: usize, credit: f64 },
    Ties { subset: usize, prompt: TiesPrompt },
}

/// Per-subset scores over `units` (`names[i]` is subset `i`): mean credit, or the composite.
fn subset_scores(units: &[&Unit], count: usize) -> Vec<Option<f64>> {
    let mut sums = vec![(0.0f64, 0usize); count];
    let mut ties: Vec<Vec<&TiesPrompt>> = vec![Vec::new(); count];
    for u in units {
        match u {
            Unit::Row { subset, credit } => {
                sums[*subset].0 += credit;
                sums[*subset].1 += 1;
            }
            Unit::Ties { subset, prompt } => ties[*subset].push(prompt),
        }
    }
    (0..count)
        .map(|i| {
            if !ties[i].is_empty() {
                Some(rb2::composite(ties[i].iter().copied()).score)
            } else if sums[i].1 > 0 {
                Some(sums[i].0 / sums[i].1 as f64)
            } else {
                None
            }
        })
        .collect()
}

fn row_key(r: &crate::results::ItemResult, position: usize) -> String {
    match &r.id {
        Some(id) => format!("{}/{id}", r.subset),
        None => format!("{}/#{position}", r.subset),
    }
}

/// Matches the rows of `a` and `b`: `(subset, A's row, B's row)` in A's order.
fn matched<'r>(a: &'r RunResult, b: &'r RunResult) -> Result<Vec<(usize, usize)>, CompareError> {
    let keys = |run: &'r RunResult| -> Result<Vec<String>, CompareError> {
        let mut position: HashMap<&str, usize> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(run.rows.len());
        for r in &run.rows {
            let p = position.entry(r.subset.as_str()).or_default();
            let k = row_key(r, *p);
            *p += 1;
            if !seen.insert(k.clone()) {
                return Err(CompareError::Duplicate {
                    file: run.rows_path.display().to_string(),
                    key: k,
                });
            }
            out.push(k);
        }
        Ok(out)
    };
    let (ka, kb) = (keys(a)?, keys(b)?);
    let index_b: HashMap<&str, usize> = kb
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let index_a: HashMap<&str, usize> = ka
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let missing =
        |keys: &[String], other: &HashMap<&str, usize>, file: &RunResult, of: &RunResult| {
            let gone: Vec<&String> = keys
                .iter()
                .filter(|k| !other.contains_key(k.as_str()))
                .collect();
            match gone.first() {
                Some(k) => Err(CompareError::Missing {
                    file: file.rows_path.display().to_string(),
                    other: of.rows_path.display().to_string(),
                    count: gone.len(),
                    key: (*k).clone(),
                }),
                None => Ok(()),
            }
        };
    missing(&ka, &index_b, a, b)?;
    missing(&kb, &index_a, b, a)?;
    let mut out = Vec::with_capacity(ka.len());
    for (i, k) in ka.iter().enumerate() {
        let j = index_b[k.as_str()];
        if let (Some(ha), Some(hb)) = (&a.rows[i].sample_hash, &b.rows[j].sample_hash) {
            if ha != hb {
                return Err(CompareError::Hash {
                    key: k.clone(),
                    a: a.rows_path.display().to_string(),
                    ha: ha.clone(),
                    b: b.rows_path.display().to_string(),
                    hb: hb.clone(),
                });
            }
        }
        out.push((i, j));
    }
    Ok(out)
}

/// Per-run units in matched order: rows, then each Ties subset's prompts (paired by N).
fn units(run: &RunResult, order: &[usize], names: &[String]) -> Result<Vec<Unit>, CompareError> {
    let idx: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut out = Vec::new();
    let mut ties: BTreeMap<usize, Vec<TiesRow>> = BTreeMap::new();
    for &i in order {
        let r = &run.rows[i];
        let subset = idx[r.subset.as_str()];
        if run.kind == Kind::BestOfN && is_ties(&r.subset) {
            ties.entry(subset).or_default().push(TiesRow {
                id: r.id.clone().unwrap_or_default(),
                scores: r.scores.clone(),
                num_correct: r.num_correct,
            });
        } else {
            out.push(Unit::Row {
                subset,
                credit: r.credit.unwrap_or(0.0),
            });
        }
    }
    for (subset, rows) in ties {
        let prompts = rb2::ties_prompts(&rows).map_err(|source| CompareError::Ties {
            file: run.rows_path.display().to_string(),
            source,
        })?;
        out.extend(
            prompts
                .into_iter()
                .map(|(_, prompt)| Unit::Ties { subset, prompt }),
        );
    }
    Ok(out)
}

/// Compares two runs of the same dataset.
pub fn compare(a: &RunResult, b: &RunResult) -> Result<Comparison, CompareError> {
    if a.kind != b.kind {
        return Err(CompareError::Kinds {
            a: a.label(),
            b: b.label(),
            ka: kind_label(a.kind),
            kb: kind_label(b.kind),
        });
    }
    let pairs = matched(a, b)?;
    let mut names: Vec<String> = a.rows.iter().map(|r| r.subset.clone()).collect();
    names.sort();
    names.dedup();
    if a.kind == Kind::BestOfN {
        let order = crate::report::rb2_order(names.iter());
        names = order.into_iter().cloned().collect();
    }
    let order_a: Vec<usize> = pairs.iter().map(|p| p.0).collect();
    let order_b: Vec<usize> = pairs.iter().map(|p| p.1).collect();
    let ua = units(a, &order_a, &names)?;
    let ub = units(b, &order_b, &names)?;
    let count = names.len();
    let permute =
        |filter: &dyn Fn(&Unit) -> bool, stat: &dyn Fn(&[Option<f64>]) -> f64| -> Permutation {
            let (xa, xb): (Vec<Unit>, Vec<Unit>) = ua
                .iter()
                .zip(&ub)
                .filter(|(x, _)| filter(x))
                .map(|(x, y)| (x.clone(), y.clone()))
                .unzip();
            paired_permutation(
                &xa,
                &xb,
                |us| stat(&subset_scores(us, count)),
                |x, y| x == y,
                PERMUTATION_RESAMPLES,
                PERMUTATION_SEED,
            )
        };
    let subset_of = |u: &Unit| match u {
        Unit::Row { subset, .. } | Unit::Ties { subset, .. } => *subset,
    };

    // Subsets.
    let mut subsets = Vec::with_capacity(count);
    for (i, name) in names.iter().enumerate() {
        let rows = pairs
            .iter()
            .filter(|(x, _)| a.rows[*x].subset == *name)
            .count();
        let composite = ua
            .iter()
            .any(|u| matches!(u, Unit::Ties { subset, .. } if *subset == i));
        if composite {
            let t = permute(&|u| subset_of(u) == i, &|s| s[i].unwrap_or(0.0));
            let sa = subset_scores(
                &ua.iter().filter(|u| subset_of(u) == i).collect::<Vec<_>>(),
                count,
            )[i];
            let sb = subset_scores(
                &ub.iter().filter(|u| subset_of(u) == i).collect::<Vec<_>>(),
                count,
            )[i];
            subsets.push(Line {
                name: name.clone(),
                n: rows,
                a_accuracy: sa.unwrap_or(0.0),
                b_accuracy: sb.unwrap_or(0.0),
                a_only: None,
                b_only: None,
                p_value: t.p_value,
                p_holm: t.p_value,
                p_sidak: t.p_value,
                test: "paired permutation (Ties composite, prompts swapped)",
            });
            continue;
        }
        let credit = |us: &[Unit]| -> Vec<f64> {
            us.iter()
                .filter_map(|u| match u {
                    Unit::Row { subset, credit } if *subset == i => Some(*credit),
                    _ => None,
                })
                .collect()
        };
        let (ca, cb) = (credit(&ua), credit(&ub));
        let t = paired_test(&ca, &cb);
        subsets.push(Line {
            name: name.clone(),
            n: rows,
            a_accuracy: ca.iter().sum::<f64>() / ca.len().max(1) as f64,
            b_accuracy: cb.iter().sum::<f64>() / cb.len().max(1) as f64,
            a_only: Some(t.a_only),
            b_only: Some(t.b_only),
            p_value: t.p_value,
            p_holm: t.p_value,
            p_sidak: t.p_value,
            test: t.method,
        });
    }
    correct(&mut subsets);

    let weight = |name: &str| {
        EXAMPLE_COUNTS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| *c) as f64
    };
    let mut sections = Vec::new();
    let mut score = None;
    let mean_of = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    match a.kind {
        Kind::Pairs => {
            // A section: the EXAMPLE_COUNTS-weighted mean of its subsets present.
            let section_members: Vec<(&str, Vec<usize>)> = SECTIONS
                .iter()
                .map(|(s, members)| {
                    (
                        *s,
                        (0..count)
                            .filter(|&i| members.contains(&names[i].as_str()))
                            .collect::<Vec<_>>(),
                    )
                })
                .filter(|(_, m)| m.iter().any(|&i| weight(&names[i]) > 0.0))
                .collect();
            let section_score = |scores: &[Option<f64>], members: &[usize]| -> f64 {
                let (num, den) = members
                    .iter()
                    .fold((0.0, 0.0), |(n, d), &i| match scores[i] {
                        Some(v) => (n + v * weight(&names[i]), d + weight(&names[i])),
                        None => (n, d),
                    });
                if den > 0.0 {
                    num / den
                } else {
                    0.0
                }
            };
            for (section, members) in &section_members {
                let t = permute(&|u| members.contains(&subset_of(u)), &|s| {
                    section_score(s, members)
                });
                let all_a: Vec<&Unit> = ua.iter().collect();
                let all_b: Vec<&Unit> = ub.iter().collect();
                sections.push(Line {
                    name: section.to_string(),
                    n: pairs
                        .iter()
                        .filter(|(x, _)| members.iter().any(|&i| names[i] == a.rows[*x].subset))
                        .count(),
                    a_accuracy: section_score(&subset_scores(&all_a, count), members),
                    b_accuracy: section_score(&subset_scores(&all_b, count), members),
                    a_only: None,
                    b_only: None,
                    p_value: t.p_value,
                    p_holm: t.p_value,
                    p_sidak: t.p_value,
                    test: "paired permutation (rows swapped)",
                });
            }
            correct(&mut sections);
            if section_members.len() == 4 {
                let all: Vec<usize> = section_members
                    .iter()
                    .flat_map(|(_, m)| m.clone())
                    .collect();
                let stat = |s: &[Option<f64>]| {
                    mean_of(
                        &section_members
                            .iter()
                            .map(|(_, m)| section_score(s, m))
                            .collect::<Vec<_>>(),
                    )
                };
                let t = permute(&|u| all.contains(&subset_of(u)), &stat);
                score = Some(score_line(&sections, t, pairs.len()));
            }
        }
        Kind::BestOfN => {
            let six: Option<Vec<usize>> = RB2_SUBSETS
                .iter()
                .map(|s| names.iter().position(|n| n == s))
                .collect();
            if let Some(six) = six {
                let stat = |s: &[Option<f64>]| {
                    mean_of(&six.iter().map(|&i| s[i].unwrap_or(0.0)).collect::<Vec<_>>())
                };
                let t = permute(&|u| six.contains(&subset_of(u)), &stat);
                let lines: Vec<Line> = six.iter().map(|&i| subsets[i].clone()).collect();
                score = Some(score_line(&lines, t, pairs.len()));
            }
        }
    }
    let mut notes: Vec<String> = a.notes.iter().chain(&b.notes).cloned().collect();
    notes.dedup();
    Ok(Comparison {
        a: a.label(),
        b: b.label(),
        kind: a.kind,
        rows: pairs.len(),
        subsets,
        sections,
        score,
        notes,
    })
}

/// The Score line: the mean of the given lines' scores, its own (uncorrected) test.
fn score_line(parts: &[Line], t: Permutation, rows: usize) -> Line {
    let n = parts.len().max(1) as f64;
    Line {
        name: "Score".into(),
        n: rows,
        a_accuracy: parts.iter().map(|l| l.a_accuracy).sum::<f64>() / n,
        b_accuracy: parts.iter().map(|l| l.b_accuracy).sum::<f64>() / n,
        a_only: None,
        b_only: None,
        p_value: t.p_value,
        p_holm: t.p_value,
        p_sidak: t.p_value,
        test: "paired permutation (rows swapped)",
    }
}

/// Holm and Šidák over a family of lines.
fn correct(lines: &mut [Line]) {
    let p: Vec<f64> = lines.iter().map(|l| l.p_value).collect();
    for ((l, h), s) in lines.iter_mut().zip(holm(&p)).zip(sidak(&p)) {
        l.p_holm = h;
        l.p_sidak = s;
    }
}

impl Comparison {
    fn family(&self, lines: &[Line], what: &str) -> String {
        format!("{} {what}", lines.len())
    }

    /// Verdict lines: every subset, section and the Score.
    pub fn verdicts(&self) -> Vec<String> {
        let subsets = self.family(&self.subsets, "subsets");
        let sections = self.family(&self.sections, "sections");
        let mut out: Vec<String> = self.subsets.iter().map(|l| l.verdict(&subsets)).collect();
        out.extend(self.sections.iter().map(|l| l.verdict(&sections)));
        if let Some(s) = &self.score {
            out.push(s.verdict("nothing (one test)"));
        }
        out
    }

    /// The stdout table and the verdicts.
    pub fn table(&self) -> String {
        let width = self
            .subsets
            .iter()
            .chain(&self.sections)
            .map(|l| l.name.len() + 10)
            .max()
            .unwrap_or(0)
            .max(24);
        let mut s = format!(
            "A: {}\nB: {}\n{} matched rows ({})\n{:<width$} {:>5} {:>7} {:>7} {:>8} {:>6} {:>6} {:>9} {:>9} {:>9}  test\n",
            self.a,
            self.b,
            self.rows,
            kind_label(self.kind),
            "",
            "n",
            "A",
            "B",
            "A - B",
            "A only",
            "B only",
            "p",
            "p_holm",
            "p_sidak"
        );
        let opt = |x: Option<usize>| x.map_or("-".to_string(), |v| v.to_string());
        let mut line = |label: String, l: &Line| {
            s.push_str(&format!(
                "{label:<width$} {:>5} {:>7.4} {:>7.4} {:>+8.4} {:>6} {:>6} {:>9} {:>9} {:>9}  {}\n",
                l.n,
                l.a_accuracy,
                l.b_accuracy,
                l.difference(),
                opt(l.a_only),
                opt(l.b_only),
                fmt_p(l.p_value),
                fmt_p(l.p_holm),
                fmt_p(l.p_sidak),
                l.test
            ));
        };
        for l in &self.subsets {
            line(l.name.clone(), l);
        }
        for l in &self.sections {
            line(format!("[section] {}", l.name), l);
        }
        if let Some(l) = &self.score {
            line("[Score]".into(), l);
        }
        s.push_str(&format!(
            "verdicts (alpha {ALPHA}; subsets corrected over {} subsets, sections over {} sections):\n",
            self.subsets.len(),
            self.sections.len()
        ));
        for v in self.verdicts() {
            s.push_str(&format!("  {v}\n"));
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        s
    }

    /// `--output` JSON.
    pub fn to_json(&self) -> Value {
        let lines = |ls: &[Line], family: &str| -> Value {
            Value::Object(
                ls.iter()
                    .map(|l| {
                        (
                            l.name.clone(),
                            json!({
                                "n": l.n,
                                "a_accuracy": l.a_accuracy,
                                "b_accuracy": l.b_accuracy,
                                "difference": l.difference(),
                                "a_only": l.a_only,
                                "b_only": l.b_only,
                                "p_value": l.p_value,
                                "p_holm": l.p_holm,
                                "p_sidak": l.p_sidak,
                                "test": l.test,
                                "verdict": l.verdict(family),
                            }),
                        )
                    })
                    .collect::<Map<String, Value>>(),
            )
        };
        json!({
            "a": self.a,
            "b": self.b,
            "kind": kind_label(self.kind),
            "rows": self.rows,
            "alpha": ALPHA,
            "permutation": {"resamples": PERMUTATION_RESAMPLES, "seed": PERMUTATION_SEED, "exact_when_differing_units_at_most": crate::scoring::stats::EXACT_UNITS},
            "subsets": lines(&self.subsets, &self.family(&self.subsets, "subsets")),
            "sections": lines(&self.sections, &self.family(&self.sections, "sections")),
            "score": self.score.as_ref().map(|l| lines(std::slice::from_ref(l), "nothing (one test)")["Score"].clone()),
            "notes": self.notes,
        })
    }
}

/// Writes the `--output` JSON (atomically, indented).
pub fn write_json(
    path: &std::path::Path,
    c: &Comparison,
) -> Result<(), crate::report::ReportError> {
    let text = serde_json::to_string_pretty(&c.to_json()).unwrap_or_default();
    crate::report::write_atomic(path, format!("{text}\n").as_bytes())
}
