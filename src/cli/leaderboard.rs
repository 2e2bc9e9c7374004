//! `rewardbench leaderboard DIR...`: its flags; the work is [`rewardbench::leaderboard::build`].

use std::path::PathBuf;

use clap::Args;

/// Flags of `rewardbench leaderboard`.
#[derive(Debug, Args)]
pub struct LeaderboardArgs {
    /// Folders (searched recursively) or files holding summary JSON files.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Write the leaderboard as CSV here.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Builds the leaderboard and prints it as Markdown.
pub fn run(args: &LeaderboardArgs) -> anyhow::Result<()> {
    let mut obs = rewardbench::run::observer::Stderr;
    let table = rewardbench::leaderboard::build(&args.dirs, args.output.as_deref(), &mut obs)?;
    print!("{table}");
    Ok(())
}
