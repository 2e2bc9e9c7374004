//! Generative judges (LLM-as-judge), as RewardBench's `rewardbench-gen` and
//! `run_generative_v2.py`: the prompts verbatim, the parse rules, the protocols and credits.
//! The HTTP transport lives in [`crate::judge`].

pub mod parse;
pub mod prompts;
pub mod protocol;
pub mod run;
pub mod store;
