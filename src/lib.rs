//! rewardbench: RewardBench's reward-model evaluation on ONNX Runtime.
//!
//! The modules follow the data: [`data`] -> [`prompt`] (rendered by [`template`]) ->
//! [`tokenize`] -> [`batch`] -> [`backend`] -> [`scoring`] -> [`report`]; [`eval`] runs the
//! pipeline.

pub mod backend;
pub mod batch;
pub mod cache;
pub mod cli;
pub mod data;
pub mod dpo;
pub mod eval;
pub mod hub;
pub mod leaderboard;
pub mod model;
pub mod progress;
pub mod prompt;
pub mod pyjson;
pub mod render;
pub mod report;
pub mod scoring;
pub mod template;
pub mod tokenize;

/// The parquet reader's old path (it lives in [`data::parquet`] now).
pub use data::parquet as parquet_rows;

/// Cores available to this process (respects cgroup limits and affinity).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
