//! `rewardbench rescore FILE...`: its flags; the work is [`rewardbench::rescore`].

use std::path::PathBuf;

use clap::Args;
use rewardbench::run::observer::{Observer, Stderr};

/// Flags of `rewardbench rescore`.
#[derive(Debug, Args)]
pub struct RescoreArgs {
    /// Per-item score files as upstream publishes them (`eval-set-scores/{model}.json`,
    /// `pref-sets-scores/{model}.json`; v1 or v2), or this tool's own v2 per-item file.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also write the recomputed numbers here, as a JSON list (one object per file).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Rescores every file (all are read before anything is printed) and prints a table each.
pub fn run(args: &RescoreArgs) -> anyhow::Result<()> {
    let rescored = rewardbench::rescore::rescore_files(&args.files)?;
    let mut obs = Stderr;
    for (i, r) in rescored.iter().enumerate() {
        for w in &r.warnings {
            obs.warn(w);
        }
        if i > 0 {
            println!();
        }
        print!("{}", r.table());
    }
    if let Some(out) = &args.json {
        rewardbench::rescore::write_json(out, &rescored)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
