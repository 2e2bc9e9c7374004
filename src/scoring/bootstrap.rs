//! Percentile-bootstrap intervals of every subset, section and Score, with a fixed portable
//! generator (SplitMix64).

use std::collections::BTreeMap;

use super::benchmark::{leaderboard_score, paper_score, prior_sets, sections};

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Percentile-bootstrap intervals of every subset, section and score.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
    pub subsets: BTreeMap<String, Interval>,
    pub sections: Vec<(&'static str, Interval)>,
    /// The leaderboard Score, when all four sections are present.
    pub score: Option<Interval>,
    /// The paper's Score, when all four sections and some prior set are present.
    pub paper_score: Option<Interval>,
    /// Overall accuracy (all rows pooled).
    pub accuracy: Interval,
}

/// Default bootstrap settings: 1000 resamples, fixed seed, 95 %.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;
pub const BOOTSTRAP_SEED: u64 = 20_240_229;
pub const BOOTSTRAP_LEVEL: f64 = 0.95;

/// SplitMix64: a small, fixed, portable generator (the intervals must not depend on a crate).
pub(super) struct SplitMix64(pub(super) u64);

impl SplitMix64 {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-50 for these sizes).
    pub(super) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// numpy's default (linear) percentile of sorted values, `q` in 0..=1.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

pub(super) fn interval(mut v: Vec<f64>, level: f64) -> Interval {
    v.sort_by(f64::total_cmp);
    let a = (1.0 - level) / 2.0;
    Interval {
        low: percentile(&v, a),
        high: percentile(&v, 1.0 - a),
    }
}

/// Bootstraps `results` (per subset, each prompt's verdict): every resample redraws each
/// subset's prompts with replacement (its size kept), then recomputes the subset
/// accuracies, the sections, the Scores and overall accuracy; the interval is the central
/// `level` percentile range. Deterministic for a given `seed`. Rows outside any subset
/// belong in the `""` entry, which only counts towards overall accuracy.
pub fn bootstrap(
    results: &BTreeMap<String, Vec<bool>>,
    resamples: usize,
    seed: u64,
    level: f64,
) -> Bootstrap {
    let credit: BTreeMap<String, Vec<f64>> = results
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.iter().map(|&c| f64::from(u8::from(c))).collect(),
            )
        })
        .collect();
    bootstrap_credit(&credit, resamples, seed, level)
}

/// [`bootstrap`] of per-prompt credit in 0..=1 (a judge's 0.5 for an unusable answer, say)
/// rather than right/wrong; for 0/1 credit the two give the same intervals.
pub fn bootstrap_credit(
    results: &BTreeMap<String, Vec<f64>>,
    resamples: usize,
    seed: u64,
    level: f64,
) -> Bootstrap {
    let mut rng = SplitMix64(seed);
    let named: Vec<&String> = results.keys().filter(|k| !k.is_empty()).collect();
    let mut per_subset: BTreeMap<String, Vec<f64>> = named
        .iter()
        .map(|k| ((*k).clone(), Vec::with_capacity(resamples)))
        .collect();
    let mut per_section: Vec<(&'static str, Vec<f64>)> = Vec::new();
    let (mut score, mut paper, mut overall) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..resamples {
        let mut acc: BTreeMap<String, f64> = BTreeMap::new();
        let (mut correct, mut total) = (0.0f64, 0usize);
        for (name, verdicts) in results {
            let n = verdicts.len();
            let hits: f64 = (0..n).map(|_| verdicts[rng.below(n)]).sum();
            correct += hits;
            total += n;
            if !name.is_empty() && n > 0 {
                acc.insert(name.clone(), hits / n as f64);
            }
        }
        for (k, v) in &acc {
            if let Some(list) = per_subset.get_mut(k) {
                list.push(*v);
            }
        }
        let secs = sections(&acc);
        for (name, v) in &secs {
            match per_section.iter_mut().find(|(s, _)| s == name) {
                Some((_, list)) => list.push(*v),
                None => per_section.push((name, vec![*v])),
            }
        }
        if let Some(s) = leaderboard_score(&secs) {
            score.push(s);
        }
        if let Some(p) = prior_sets(&acc).and_then(|pr| paper_score(&secs, Some(pr))) {
            paper.push(p);
        }
        overall.push(correct / total.max(1) as f64);
    }
    Bootstrap {
        level,
        resamples,
        seed,
        subsets: per_subset
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, interval(v, level)))
            .collect(),
        sections: per_section
            .into_iter()
            .map(|(k, v)| (k, interval(v, level)))
            .collect(),
        score: (!score.is_empty()).then(|| interval(score, level)),
        paper_score: (!paper.is_empty()).then(|| interval(paper, level)),
        accuracy: interval(overall, level),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(spec: &[(&str, usize, usize)]) -> BTreeMap<String, Vec<bool>> {
        spec.iter()
            .map(|(k, n, c)| (k.to_string(), (0..*n).map(|i| i < *c).collect()))
            .collect()
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_estimate() {
        let r = verdicts(&[
            ("alpacaeval-easy", 100, 80),
            ("mt-bench-hard", 37, 20),
            ("refusals-dangerous", 100, 90),
            ("math-prm", 447, 300),
            ("hep-go", 164, 100),
            ("shp", 50, 30),
        ]);
        let a = bootstrap(&r, 300, 7, 0.95);
        assert_eq!(a, bootstrap(&r, 300, 7, 0.95));
        assert_ne!(a, bootstrap(&r, 300, 8, 0.95));
        let acc: BTreeMap<String, f64> = r
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter().filter(|x| **x).count() as f64 / v.len() as f64,
                )
            })
            .collect();
        for (k, iv) in &a.subsets {
            assert!(
                iv.low <= acc[k] && acc[k] <= iv.high && iv.low < iv.high,
                "{k}: {iv:?}"
            );
        }
        let secs = sections(&acc);
        assert_eq!(a.sections.len(), 4);
        for ((name, iv), (n2, v)) in a.sections.iter().zip(&secs) {
            assert_eq!(name, n2);
            assert!(iv.low <= *v && *v <= iv.high, "{name}");
        }
        let s = leaderboard_score(&secs).unwrap();
        let iv = a.score.unwrap();
        assert!(iv.low <= s && s <= iv.high);
        let p = paper_score(&secs, prior_sets(&acc)).unwrap();
        let iv = a.paper_score.unwrap();
        assert!(iv.low <= p && p <= iv.high);
        // A subset that is always right has a degenerate interval.
        let one = bootstrap(&verdicts(&[("x", 10, 10)]), 50, 1, 0.95);
        assert_eq!(
            one.subsets["x"],
            Interval {
                low: 1.0,
                high: 1.0
            }
        );
        assert!(one.score.is_none() && one.sections.is_empty());
    }

    #[test]
    fn numpy_percentile() {
        let v: Vec<f64> = (0..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.025), 0.25);
        assert_eq!(percentile(&v, 0.975), 9.75);
    }
}
