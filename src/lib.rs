//! rewardbench: RewardBench's reward-model evaluation on ONNX Runtime.
//!
//! The modules follow the data: [`data`] -> [`template`] -> [`tokenize`] -> [`batch`] ->
//! [`backend`] -> [`scoring`] -> [`report`]; [`eval`] runs the pipeline.

pub mod backend;
pub mod batch;
pub mod config;
pub mod data;
pub mod hub;
pub mod leaderboard;
pub mod model;
pub mod parquet_rows;
pub mod pipeline;
pub mod pyjson;
pub mod report;
pub mod run;
pub mod scorer;
pub mod scoring;
pub mod template;
pub mod tokenize;

// The scorers by their earlier names (tests and library users import them so).
pub use scorer::{dpo, rm as eval};

/// Cores available to this process (respects cgroup limits and affinity).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
