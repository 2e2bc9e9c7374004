//! Length baselines: the accuracy per subset of "pick the longer answer" and "pick the
//! shorter" (in tokens and in characters), and whether a scorer beats the better of them.

use std::collections::BTreeMap;

use super::stats::{paired_test, PairedTest};
pub use crate::tokenize::lengths::{Length, SampleLengths};

/// One of the four baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    LongerTokens,
    ShorterTokens,
    LongerChars,
    ShorterChars,
}

impl Baseline {
    pub const ALL: [Baseline; 4] = [
        Baseline::LongerTokens,
        Baseline::ShorterTokens,
        Baseline::LongerChars,
        Baseline::ShorterChars,
    ];

    /// The summary key.
    pub fn key(self) -> &'static str {
        match self {
            Baseline::LongerTokens => "longer_tokens",
            Baseline::ShorterTokens => "shorter_tokens",
            Baseline::LongerChars => "longer_chars",
            Baseline::ShorterChars => "shorter_chars",
        }
    }

    fn measure(self, l: &Length) -> Option<usize> {
        match self {
            Baseline::LongerTokens | Baseline::ShorterTokens => l.tokens,
            Baseline::LongerChars | Baseline::ShorterChars => Some(l.chars),
        }
    }

    /// Whether this baseline gets the sample right: every chosen completion strictly longer
    /// (shorter) than every rejected one, as RewardBench's rule treats scores; a length tie
    /// is wrong. `None` when the measure is unknown or the sample has no pair.
    pub fn right(self, s: &SampleLengths) -> Option<bool> {
        if s.chosen.is_empty() || s.rejected.is_empty() {
            return None;
        }
        let side = |ls: &[Length]| {
            ls.iter()
                .map(|l| self.measure(l))
                .collect::<Option<Vec<_>>>()
        };
        let (c, r) = (side(&s.chosen)?, side(&s.rejected)?);
        let longer = matches!(self, Baseline::LongerTokens | Baseline::LongerChars);
        Some(
            c.iter()
                .all(|&x| r.iter().all(|&y| if longer { x > y } else { x < y })),
        )
    }
}

/// A subset's four baseline accuracies (`None`: not measurable, e.g. tokens of a judge).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Baselines {
    pub longer_tokens: Option<f64>,
    pub shorter_tokens: Option<f64>,
    pub longer_chars: Option<f64>,
    pub shorter_chars: Option<f64>,
}

impl Baselines {
    pub fn get(&self, b: Baseline) -> Option<f64> {
        match b {
            Baseline::LongerTokens => self.longer_tokens,
            Baseline::ShorterTokens => self.shorter_tokens,
            Baseline::LongerChars => self.longer_chars,
            Baseline::ShorterChars => self.shorter_chars,
        }
    }

    fn set(&mut self, b: Baseline, v: Option<f64>) {
        let slot = match b {
            Baseline::LongerTokens => &mut self.longer_tokens,
            Baseline::ShorterTokens => &mut self.shorter_tokens,
            Baseline::LongerChars => &mut self.longer_chars,
            Baseline::ShorterChars => &mut self.shorter_chars,
        };
        *slot = v;
    }

    /// The better baseline (first of the highest, in [`Baseline::ALL`] order).
    pub fn best(&self) -> Option<(Baseline, f64)> {
        Baseline::ALL
            .iter()
            .filter_map(|&b| self.get(b).map(|v| (b, v)))
            .fold(None, |best, (b, v)| match best {
                Some((_, bv)) if bv >= v => best,
                _ => Some((b, v)),
            })
    }
}

/// Each subset's baseline accuracies over its samples (samples without a pair are left out).
pub fn baselines<'a>(
    rows: impl IntoIterator<Item = (&'a str, &'a SampleLengths)>,
) -> BTreeMap<String, Baselines> {
    let mut by_subset: BTreeMap<String, Vec<&SampleLengths>> = BTreeMap::new();
    for (s, l) in rows {
        if !l.chosen.is_empty() && !l.rejected.is_empty() {
            by_subset.entry(s.to_string()).or_default().push(l);
        }
    }
    by_subset
        .into_iter()
        .map(|(s, ls)| {
            let mut out = Baselines::default();
            for b in Baseline::ALL {
                let right: Option<Vec<bool>> = ls.iter().map(|l| b.right(l)).collect();
                out.set(
                    b,
                    right.map(|r| r.iter().filter(|&&x| x).count() as f64 / r.len() as f64),
                );
            }
            (s, out)
        })
        .collect()
}

/// Significance level of the "beats the length baseline" flag.
pub const BASELINE_ALPHA: f64 = 0.05;

/// A scorer against the better length baseline of one subset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineCheck {
    pub baseline: Baseline,
    pub baseline_accuracy: f64,
    pub accuracy: f64,
    pub test: PairedTest,
    /// Higher than the baseline with `p < 0.05` (two-sided).
    pub beats: bool,
}

/// Tests a scorer's per-row results (`credit`, 0..=1, in the rows' order) against the better
/// baseline of the same rows. `None` when no baseline is measurable or there are no rows.
pub fn check(credit: &[f64], lengths: &[&SampleLengths]) -> Option<BaselineCheck> {
    if credit.is_empty() || credit.len() != lengths.len() {
        return None;
    }
    let b = baselines(lengths.iter().map(|l| ("", *l)));
    let (baseline, baseline_accuracy) = b.get("")?.best()?;
    let base: Vec<f64> = lengths
        .iter()
        .map(|l| f64::from(u8::from(baseline.right(l).unwrap_or(false))))
        .collect();
    let accuracy = credit.iter().sum::<f64>() / credit.len() as f64;
    let test = paired_test(credit, &base);
    Some(BaselineCheck {
        baseline,
        baseline_accuracy,
        accuracy,
        test,
        beats: accuracy > baseline_accuracy && test.p_value < BASELINE_ALPHA,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(c: usize, r: usize, tc: Option<usize>, tr: Option<usize>) -> SampleLengths {
        SampleLengths {
            chosen: vec![Length {
                chars: c,
                tokens: tc,
            }],
            rejected: vec![Length {
                chars: r,
                tokens: tr,
            }],
        }
    }

    #[test]
    fn baselines_count_ties_as_wrong() {
        let rows = [
            pair(10, 5, Some(3), Some(2)), // longer wins
            pair(5, 10, Some(2), Some(2)), // shorter in chars; token tie: both token baselines wrong
            pair(7, 7, Some(1), Some(4)),  // char tie: both char baselines wrong
        ];
        let b = baselines(rows.iter().map(|r| ("s", r)));
        let s = b["s"];
        assert_eq!(s.longer_chars, Some(1.0 / 3.0));
        assert_eq!(s.shorter_chars, Some(1.0 / 3.0));
        assert_eq!(s.longer_tokens, Some(1.0 / 3.0));
        assert_eq!(s.shorter_tokens, Some(1.0 / 3.0));
        let no_tokens = [pair(3, 2, None, None)];
        let b = baselines(no_tokens.iter().map(|r| ("s", r)));
        assert_eq!(b["s"].longer_tokens, None);
        assert_eq!(b["s"].longer_chars, Some(1.0));
        assert_eq!(b["s"].best(), Some((Baseline::LongerChars, 1.0)));
    }

    #[test]
    fn best_of_n_needs_every_rejected_beaten() {
        let l = |c| Length {
            chars: c,
            tokens: None,
        };
        let s = SampleLengths {
            chosen: vec![l(9)],
            rejected: vec![l(3), l(9), l(1)],
        };
        assert_eq!(Baseline::LongerChars.right(&s), Some(false));
        let s = SampleLengths {
            chosen: vec![l(10)],
            rejected: vec![l(3), l(9), l(1)],
        };
        assert_eq!(Baseline::LongerChars.right(&s), Some(true));
        assert_eq!(Baseline::ShorterChars.right(&s), Some(false));
    }

    #[test]
    fn check_flags_a_scorer_no_better_than_length() {
        // Baseline (longer) right on all 20; the scorer on 19: not better.
        let rows: Vec<SampleLengths> = (0..20).map(|_| pair(9, 1, None, None)).collect();
        let refs: Vec<&SampleLengths> = rows.iter().collect();
        let mut credit = vec![1.0; 20];
        credit[3] = 0.0;
        let c = check(&credit, &refs).unwrap();
        assert_eq!(c.baseline, Baseline::LongerChars);
        assert!(!c.beats);
        // Baseline wrong on all (shorter chosen... longer chosen, so "shorter" is 0, "longer" 1):
        // use rows where neither wins (ties): baseline 0; the scorer right on 20 of 20.
        let ties: Vec<SampleLengths> = (0..20).map(|_| pair(5, 5, None, None)).collect();
        let refs: Vec<&SampleLengths> = ties.iter().collect();
        let c = check(&[1.0; 20], &refs).unwrap();
        assert!(c.beats);
        assert_eq!(c.test.method, "exact McNemar");
        assert!((c.test.p_value - super::super::stats::mcnemar_exact(20, 0)).abs() < 1e-15);
    }
}
