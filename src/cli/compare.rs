//! `rewardbench compare A B`: its flags; the work is [`rewardbench::compare::compare`].

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// Flags of `rewardbench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run A: a result folder holding one run, its `{name}.json` summary, its
    /// `{name}_outputs.jsonl`, or an upstream per-item file (eval-set-scores/{model}.json).
    pub a: PathBuf,
    /// Run B, of the same dataset.
    pub b: PathBuf,
    /// Also write the comparison as JSON here.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Reads both runs, compares them, prints the table and verdicts.
pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    use rewardbench::{compare, results};
    let a = results::read_one(&args.a).context("reading run A")?;
    let b = results::read_one(&args.b).context("reading run B")?;
    let c = compare::compare(&a, &b)?;
    print!("{}", c.table());
    if let Some(out) = &args.output {
        compare::write_json(out, &c)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
