//! The one integration test binary (as ripgrep does it): every suite is a module here, so
//! `cargo test` links and starts one executable instead of one per file. Cargo.toml sets
//! `autotests = false` and names this file as the only `[[test]]` target; the suites live
//! in tests/integration/, the shared helpers in tests/util/.
//!
//! Run one suite with a filter on its module path, e.g. `cargo test --release parity::`.

mod util;

#[path = "integration/architectures.rs"]
mod architectures;
#[path = "integration/bad_input.rs"]
mod bad_input;
#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/cluster.rs"]
mod cluster;
#[path = "integration/datasets.rs"]
mod datasets;
#[path = "integration/dpo.rs"]
mod dpo;
#[path = "integration/external_data.rs"]
mod external_data;
#[path = "integration/fast_export.rs"]
mod fast_export;
#[path = "integration/first_hour.rs"]
mod first_hour;
#[path = "integration/golden.rs"]
mod golden;
#[path = "integration/half.rs"]
mod half;
#[path = "integration/heads.rs"]
mod heads;
#[path = "integration/hub.rs"]
mod hub;
#[path = "integration/judge_client.rs"]
mod judge_client;
#[path = "integration/judges.rs"]
mod judges;
#[path = "integration/optimum.rs"]
mod optimum;
#[path = "integration/pairwise.rs"]
mod pairwise;
#[path = "integration/parity.rs"]
mod parity;
#[path = "integration/plan.rs"]
mod plan;
#[path = "integration/pooling.rs"]
mod pooling;
#[path = "integration/publish.rs"]
mod publish;
#[path = "integration/rb2.rs"]
mod rb2;
#[path = "integration/registry.rs"]
mod registry;
#[path = "integration/regressions.rs"]
mod regressions;
#[path = "integration/report.rs"]
mod report;
#[path = "integration/rescore.rs"]
mod rescore;
#[path = "integration/resume.rs"]
mod resume;
#[path = "integration/shards.rs"]
mod shards;
#[path = "integration/stats.rs"]
mod stats;
#[path = "integration/sweep.rs"]
mod sweep;
#[path = "integration/templates.rs"]
mod templates;
