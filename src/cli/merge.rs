//! `rewardbench merge DIR...`: a sharded run's results from its finished shards, written as
//! the single run writes them. The shards are checked by [`rewardbench::shard::collect`]
//! (one split, one score fingerprint, one dataset); the first shard's command (kept in its
//! manifest) is resolved again and scored from the union of the shards' stores, so nothing
//! is computed.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, Parser};

use rewardbench::pipeline::{self, Merged};
use rewardbench::run::observer::Stderr;
use rewardbench::run::store::ScoreStore;
use rewardbench::scorer::rm::RuntimeInfo;

use super::{Args, Command};

/// Flags of `rewardbench merge`.
#[derive(Debug, ClapArgs)]
pub struct MergeArgs {
    /// Run folders (each run's --output_dir) or folders of shard files, searched recursively;
    /// shards of one run may be spread over several.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Write the results here instead of each run's own --output_dir.
    #[arg(long = "output_dir", alias = "output-dir")]
    pub output_dir: Option<PathBuf>,
}

fn device(name: &str) -> &'static str {
    ["cpu", "cuda", "tensorrt", "auto"]
        .into_iter()
        .find(|d| *d == name)
        .unwrap_or("cpu")
}

/// Merges every run found; prints each run's table.
pub fn run(args: &MergeArgs) -> anyhow::Result<()> {
    let groups = rewardbench::shard::collect(&args.dirs)?;
    let out = match &args.output_dir {
        Some(o) => Some(std::path::absolute(o).with_context(|| format!("{}", o.display()))?),
        None => None,
    };
    let start = std::env::current_dir()?;
    for g in &groups {
        let (first, m) = &g.shards[0];
        let stores: Vec<PathBuf> = g
            .stores()
            .into_iter()
            .map(|p| std::path::absolute(&p).unwrap_or(p))
            .collect();
        // The command's relative paths are relative to the folder it ran in.
        std::env::set_current_dir(&m.cwd)
            .with_context(|| format!("{}: the shards ran in {}, which is gone", g.name, m.cwd))?;
        let parsed =
            Args::try_parse_from(std::iter::once("rewardbench".to_string()).chain(m.args.clone()))
                .with_context(|| format!("{}: the command in {}", g.name, first.display()))?;
        let mut obs = Stderr;
        let mut resolved = match parsed.command {
            Some(Command::V2(v)) => super::resolve::resolve_v2(&v, &mut obs)?,
            None => super::resolve::resolve(&parsed.eval, &mut obs)?,
            Some(Command::Gen(mut a)) => {
                a.shard = None;
                if let Some(o) = &out {
                    a.output_dir = Some(o.clone());
                }
                let merging = super::gen::Merging {
                    stores: &stores,
                    dataset: &m.dataset,
                    env: &m.env,
                };
                let written = super::gen::run_with(&a, Some(merging))?;
                std::env::set_current_dir(&start)?;
                report(g, &written);
                continue;
            }
            Some(_) => bail!(
                "{}: {} does not hold an evaluation command",
                g.name,
                first.display()
            ),
        };
        let known = ScoreStore::union(&stores, &m.fingerprint)?;
        let cfg = &mut resolved.config;
        cfg.output.shard = None;
        cfg.output.cache = false;
        if let Some(o) = &out {
            cfg.output.dir = o.clone();
        }
        let merged = Merged {
            known: &known,
            runtime: RuntimeInfo {
                version: m.onnxruntime_version.clone(),
                library: PathBuf::from(&m.onnxruntime_library),
                device: device(&m.execution_provider),
            },
            dataset: &m.dataset,
        };
        let done = pipeline::merge(cfg, &resolved.info, merged, &mut obs)?;
        std::env::set_current_dir(&start)?;
        print!("{}", done.table);
        report(g, &done.written);
    }
    Ok(())
}

/// The "merged ... wrote ..." line of one run.
fn report(g: &rewardbench::shard::Group, written: &[PathBuf]) {
    let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    eprintln!(
        "merged {} shards of {}; wrote {}",
        g.count,
        g.name,
        files.join(", ")
    );
}
