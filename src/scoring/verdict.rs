//! Verdicts: scoring rules are functions of a sample's outcome (today RewardBench's strict
//! pairwise rule); per-subset tallies.

use std::collections::BTreeMap;

/// A sample's scores: one vector (the model's labels) per completion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub chosen: Vec<Vec<f32>>,
    pub rejected: Vec<Vec<f32>>,
}

impl Outcome {
    /// True when some chosen completion scores exactly as some rejected one.
    pub fn has_tie(&self) -> bool {
        self.chosen
            .iter()
            .any(|c| self.rejected.iter().any(|r| c == r))
    }
}

/// RewardBench's rule: right when every chosen completion is strictly preferred to every
/// rejected one ([`prefers`]); a v1 pair has one of each. No pair at all is not right.
pub fn pairwise(o: &Outcome) -> bool {
    !o.chosen.is_empty()
        && !o.rejected.is_empty()
        && o.chosen
            .iter()
            .all(|c| o.rejected.iter().all(|r| prefers(c, r)))
}

/// `correct = score_chosen > score_rejected`, strictly (a tie is wrong). Logit vectors
/// (num_labels > 1) compare lexicographically, as Python lists do in the reference; an
/// unordered pair (a NaN) is never preferred. For the model's f32 scores and for f64 scores
/// read from files alike.
pub fn prefers<T: PartialOrd>(chosen: &[T], rejected: &[T]) -> bool {
    for (c, r) in chosen.iter().zip(rejected) {
        match c.partial_cmp(r) {
            Some(std::cmp::Ordering::Greater) => return true,
            Some(std::cmp::Ordering::Equal) => {}
            Some(std::cmp::Ordering::Less) | None => return false,
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
    fn pairwise_rule_over_completions() {
        let o = |c: &[f32], r: &[f32]| Outcome {
            chosen: c.iter().map(|x| vec![*x]).collect(),
            rejected: r.iter().map(|x| vec![*x]).collect(),
        };
        assert!(pairwise(&o(&[1.0], &[0.5])));
        assert!(!pairwise(&o(&[0.5], &[0.5])) && o(&[0.5], &[0.5]).has_tie());
        assert!(pairwise(&o(&[2.0], &[1.0, 0.0, 1.5])));
        assert!(!pairwise(&o(&[2.0, 0.1], &[1.0])));
        assert!(
            !pairwise(&o(&[1.0], &[])),
            "no rejected completion: no verdict"
        );
        assert!(!o(&[1.0], &[0.0, 2.0]).has_tie());
    }

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
