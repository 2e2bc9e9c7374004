//! Scoring: verdicts, per-subset accuracy, RewardBench's section scores.

mod benchmark;
pub mod bon;
mod bootstrap;
mod dtype;
pub mod length;
pub mod rb2;
pub mod stats;
pub mod verdict;

pub use benchmark::{
    leaderboard_score, paper_score, prior_sets, sections, EXAMPLE_COUNTS, PRIOR_SETS, SECTIONS,
    SECTION_NAMES,
};
pub use bootstrap::{
    bootstrap, bootstrap_credit, Bootstrap, Interval, BOOTSTRAP_LEVEL, BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
};
pub use dtype::ScoreDtype;
pub use rb2::RB2_SUBSETS;
pub use verdict::{per_subset, prefers, Outcome, Tally};
