//! `rewardbench report RESULTS...`: its flags; the work is [`rewardbench::report::html::write`].

use std::path::PathBuf;

use clap::Args;
use rewardbench::run::observer::Observer;

/// Flags of `rewardbench report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Result folders (searched recursively) or summary JSON files.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// The HTML file to write.
    #[arg(long, default_value = "report.html")]
    pub output: PathBuf,
    /// The page's title.
    #[arg(long, default_value = "RewardBench results")]
    pub title: String,
}

/// Builds the page and writes it.
pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let mut obs = rewardbench::run::observer::Stderr;
    let r = rewardbench::report::html::write(&args.results, &args.output, &args.title)?;
    for w in &r.warnings {
        obs.warn(w);
    }
    obs.note(&format!(
        "wrote {} ({} model(s), {} KiB)",
        args.output.display(),
        r.runs,
        r.html.len().div_ceil(1024)
    ));
    Ok(())
}
