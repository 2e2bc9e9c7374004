//! What a run will compute (texts, tokens, padding, calls, prefix savings) and, for
//! `--dry_run`, a time estimate extrapolated from a few measured calls.

use super::progress::human;
use crate::batch::{self, Plan};
use crate::tokenize::Encoded;

/// One planned model call's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallWork {
    /// Texts (sequences) the call scores.
    pub texts: usize,
    /// Tokens of the texts as computed (a shared prefix once).
    pub tokens: usize,
    /// Tokens of the padded call (rows x longest row): what its time follows.
    pub padded: usize,
    /// Tokens not computed because texts share a prefix in a packed row.
    pub shared: usize,
    /// What the call's time follows: [`cost`] of its rows.
    pub cost: u64,
}

/// Work of `rows` padded rows `width` tokens wide, as the batch planner weighs it
/// ([`crate::batch::pack_by_prompt`]): `token_cost` per token (projections and MLP) plus
/// attention between every pair of a row's tokens.
pub fn cost(rows: usize, width: usize, token_cost: f64) -> u64 {
    let w = width as f64;
    (rows as f64 * (token_cost * w + w * w)).round() as u64
}

impl CallWork {
    /// The work of a right- or left-padded call of `plan` (one text per row, or packed rows)
    /// on a model of `token_cost` ([`crate::model::ModelFiles::token_cost`]).
    pub fn of(seqs: &[Encoded], plan: &Plan, token_cost: f64) -> Self {
        let one = std::slice::from_ref(plan);
        let (pads, padded) = batch::padding(seqs, one);
        Self {
            texts: plan.len(),
            tokens: padded - pads,
            padded,
            shared: batch::shared_tokens(seqs, one),
            cost: cost(plan.rows.len(), plan.width(seqs), token_cost),
        }
    }
}

/// Calls measured by `--dry_run` and how long they took.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measured {
    pub calls: usize,
    pub padded: usize,
    /// The measured calls' [`CallWork::cost`].
    pub cost: u64,
    pub seconds: f64,
}

impl Measured {
    /// Seconds for `cost` units of work at the measured rate (None without a measurement).
    pub fn extrapolate(&self, cost: u64) -> Option<f64> {
        (self.cost > 0).then(|| self.seconds * cost as f64 / self.cost as f64)
    }
}

/// The work left to a run, after the resume store answered what it could.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunPlan {
    /// Texts to compute.
    pub texts: usize,
    /// Texts answered by the score store (or the call-keyed cache).
    pub stored: usize,
    pub tokens: usize,
    pub padded: usize,
    pub shared: usize,
    /// The calls' [`CallWork::cost`].
    pub cost: u64,
    /// Model calls to run (per model).
    pub calls: usize,
    /// Models each text goes through (2 for DPO with a reference model).
    pub models: usize,
    /// What is counted: `texts`, or `inputs` for pairwise models.
    pub unit: &'static str,
    /// The execution provider (`cpu`, `cuda`, ...).
    pub device: &'static str,
    /// `--dry_run`'s measurement, when one was made.
    pub measured: Option<Measured>,
}

impl RunPlan {
    /// The plan of `calls`, with `stored` texts already answered.
    pub fn of(calls: &[CallWork], stored: usize, models: usize, unit: &'static str) -> Self {
        let sum = |f: fn(&CallWork) -> usize| calls.iter().map(f).sum::<usize>();
        Self {
            texts: sum(|c| c.texts),
            stored,
            tokens: sum(|c| c.tokens),
            padded: sum(|c| c.padded),
            shared: sum(|c| c.shared),
            cost: calls.iter().map(|c| c.cost).sum(),
            calls: calls.len(),
            models: models.max(1),
            unit,
            device: "cpu",
            measured: None,
        }
    }

    /// Estimated seconds for the whole run (model loading not included).
    pub fn estimate(&self) -> Option<f64> {
        self.measured.and_then(|m| m.extrapolate(self.cost))
    }

    /// The plan as one line: `plan: 80 texts to score (...), 6512 tokens in 10 calls (...)`.
    pub fn line(&self) -> String {
        let mut s = format!("plan: {} {} to score", self.texts, self.unit);
        if self.models > 1 {
            s += &format!(" through {} models", self.models);
        }
        if self.stored > 0 {
            s += &format!(" ({} more from the store)", self.stored);
        }
        let pad =
            100.0 * (self.padded - self.tokens.min(self.padded)) as f64 / self.padded.max(1) as f64;
        s += &format!(
            ", {} tokens in {} model call{}{} ({} with padding, {pad:.1}% padding)",
            self.tokens,
            self.calls,
            if self.calls == 1 { "" } else { "s" },
            if self.models > 1 { " per model" } else { "" },
            self.padded
        );
        if self.shared > 0 {
            s += &format!("; shared prompt prefixes save {} tokens", self.shared);
        }
        s
    }

    /// The estimate as a line, when there is one.
    pub fn estimate_line(&self) -> Option<String> {
        let m = self.measured?;
        let total = self.estimate()?;
        Some(format!(
            "estimate: about {} on {} ({} measured call{} of {} padded tokens took {}; \
             extrapolated by tokens weighted for length, model loading not included)",
            human(total),
            self.device,
            m.calls,
            if m.calls == 1 { "" } else { "s" },
            m.padded,
            human(m.seconds)
        ))
    }
}

/// Past this many estimated seconds on CPU, the run says how to make it shorter.
pub const LONG_RUN_SECONDS: f64 = 3600.0;

/// The note for a run estimated at `seconds` on `device`, when it is long on CPU.
pub fn long_run_note(seconds: f64, device: &str) -> Option<String> {
    (device == "cpu" && seconds > LONG_RUN_SECONDS).then(|| {
        format!(
            "this run takes about {} on CPU: --device cuda runs it on a GPU (see README, CPU and GPU), \
             and --shard I/N splits it across machines (see README, Sharding a run)",
            human(seconds)
        )
    })
}

/// Up to `n` calls of `todo` spread evenly over it (first and last included), the middle
/// one first: with the longest calls first they cover the range of lengths, and a
/// measurement cut short after one call has measured a typical one.
pub fn spread(todo: &[usize], n: usize) -> Vec<usize> {
    let len = todo.len();
    let mut at: Vec<usize> = match (len, n) {
        (0, _) | (_, 0) => return Vec::new(),
        (len, n) if len <= n => (0..len).collect(),
        (len, 1) => vec![len / 2],
        (len, n) => (0..n).map(|j| j * (len - 1) / (n - 1)).collect(),
    };
    at.dedup();
    let mid = (len - 1) as f64 / 2.0;
    at.sort_by(|&a, &b| {
        (a as f64 - mid)
            .abs()
            .total_cmp(&(b as f64 - mid).abs())
            .then(a.cmp(&b))
    });
    at.into_iter().map(|i| todo[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(texts: usize, tokens: usize, padded: usize) -> CallWork {
        CallWork {
            texts,
            tokens,
            padded,
            shared: 0,
            cost: padded as u64,
        }
    }

    #[test]
    fn plan_sums_its_calls() {
        let p = RunPlan::of(&[call(4, 90, 100), call(4, 60, 100)], 2, 1, "texts");
        assert_eq!((p.texts, p.tokens, p.padded, p.calls), (8, 150, 200, 2));
        assert_eq!(
            p.line(),
            "plan: 8 texts to score (2 more from the store), 150 tokens in 2 model calls (200 with padding, 25.0% padding)"
        );
        assert_eq!(p.estimate(), None);
    }

    #[test]
    fn estimate_extrapolates_by_padded_tokens() {
        let mut p = RunPlan::of(&[call(1, 1000, 1000); 10], 0, 2, "texts");
        p.measured = Some(Measured {
            calls: 2,
            padded: 2000,
            cost: 2000,
            seconds: 1.0,
        });
        assert_eq!(p.estimate(), Some(5.0));
        assert!(p.line().contains("through 2 models"));
        assert!(p.line().contains("per model"));
    }

    #[test]
    fn cost_grows_with_length_squared() {
        // Twice as wide at the same tokens per row: attention costs twice per token.
        assert_eq!(cost(2, 100, 1000.0), 2 * (100_000 + 10_000));
        assert!(cost(1, 200, 100.0) > 2 * cost(1, 100, 100.0));
    }

    #[test]
    fn long_runs_on_cpu_get_a_note() {
        assert!(long_run_note(4000.0, "cpu").is_some());
        assert!(long_run_note(4000.0, "cuda").is_none());
        assert!(long_run_note(100.0, "cpu").is_none());
    }

    #[test]
    fn spread_covers_first_and_last() {
        let todo: Vec<usize> = (10..20).collect();
        assert_eq!(spread(&todo, 3), vec![14, 10, 19]);
        assert_eq!(spread(&todo, 5), vec![14, 16, 12, 10, 19]);
        assert_eq!(spread(&todo[..2], 5), vec![10, 11]);
        assert!(spread(&[], 5).is_empty());
    }
}
