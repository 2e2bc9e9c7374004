//! Verdicts: a row is right when chosen scores strictly above rejected; per-subset tallies.

use std::collections::BTreeMap;

/// `correct = score_chosen > score_rejected`, strictly (a tie is wrong). Logit vectors
/// (num_labels > 1) compare lexicographically, as Python lists do in the reference.
pub fn prefers(chosen: &[f32], rejected: &[f32]) -> bool {
    for (c, r) in chosen.iter().zip(rejected) {
        if c > r {
            return true;
        }
        if c < r || c.is_nan() || r.is_nan() {
            return false;
        }
    }
    chosen.len() > rejected.len()
}

/// Count and correct answers of one subset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub n: usize,
    pub correct: usize,
}

impl Tally {
    pub fn accuracy(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.correct as f64 / self.n as f64
        }
    }
}

/// Per-subset tallies, keyed by subset name (sorted, as `np.unique` orders them).
pub fn per_subset<'a>(rows: impl IntoIterator<Item = (&'a str, bool)>) -> BTreeMap<String, Tally> {
    let mut out: BTreeMap<String, Tally> = BTreeMap::new();
    for (subset, correct) in rows {
        let t = out.entry(subset.to_string()).or_default();
        t.n += 1;
        t.correct += usize::from(correct);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_and_lexicographic() {
        assert!(prefers(&[1.0], &[0.5]));
        assert!(!prefers(&[0.5], &[0.5]), "a tie is wrong");
        assert!(!prefers(&[0.4], &[0.5]));
        assert!(prefers(&[1.0, 0.0], &[1.0, -1.0]));
        assert!(!prefers(&[1.0, -1.0], &[1.0, -1.0]));
        assert!(!prefers(&[f32::NAN], &[0.0]));
    }

    #[test]
    fn tallies() {
        let t = per_subset([("b", true), ("a", false), ("b", false), ("b", true)]);
        assert_eq!(t.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(t["b"], Tally { n: 3, correct: 2 });
        assert!((t["b"].accuracy() - 2.0 / 3.0).abs() < 1e-12);
    }
}
