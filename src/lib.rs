//! rewardbench: RewardBench's reward-model evaluation on ONNX Runtime.
//!
//! The modules follow the data: [`data`] -> [`prompt`] (rendered by [`template`]) ->
//! [`tokenize`] -> [`batch`] -> [`backend`] -> [`scorer`] -> [`scoring`] -> [`report`];
//! [`config`] holds the settings, [`run`] the machinery of a run (resume store, executor,
//! cancellation, notices) and [`pipeline`] runs it all.

pub mod backend;
pub mod batch;
pub mod compare;
pub mod config;
pub mod data;
pub mod digest;
pub mod external_data;
pub mod hub;
pub mod judge;
pub mod leaderboard;
pub mod model;
pub mod pipeline;
pub mod prompt;
pub mod pyjson;
pub mod registry;
pub mod report;
pub mod rescore;
pub mod results;
pub mod run;
pub mod scorer;
pub mod scoring;
pub mod secret;
pub mod shard;
pub mod sweep;
pub mod template;
pub mod tokenize;

// The scorers by their earlier names (tests and library users import them so).
/// The parquet reader's old path (it lives in [`data::parquet`] now).
pub use data::parquet as parquet_rows;
pub use scorer::{dpo, rm as eval};

/// Cores available to this process (respects cgroup limits and affinity).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
