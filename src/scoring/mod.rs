//! Scoring: verdicts, per-subset accuracy, RewardBench's section scores.

mod benchmark;
mod bootstrap;
pub mod rb2;
pub mod verdict;

pub use benchmark::{
    leaderboard_score, paper_score, prior_sets, sections, EXAMPLE_COUNTS, PRIOR_SETS, SECTIONS,
    SECTION_NAMES,
};
pub use bootstrap::{
    bootstrap, Bootstrap, Interval, BOOTSTRAP_LEVEL, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED,
};
pub use verdict::{per_subset, prefers, Outcome, Tally};
