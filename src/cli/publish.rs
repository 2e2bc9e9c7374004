//! Publishing to the hub from the command line: the flags runs share (`--hub_results_repo`,
//! `--hub_dry_run`, ...), the checks made before a run, and `rewardbench publish`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{ArgAction, Args};
use rewardbench::hub::api::ApiConfig;
use rewardbench::hub::publish::{self, Options, RunFiles};
use rewardbench::hub::HubConfig;
use rewardbench::run::observer::Observer;

use super::parse_bool;

/// Where published results go (`rewardbench`, `v2`, `gen` and `publish`).
#[derive(Debug, Clone, Args)]
pub struct HubTarget {
    /// Owner of the results dataset (default: HF_TOKEN's user, from the hub's whoami).
    #[arg(long = "hf_entity", alias = "hf-entity")]
    pub hf_entity: Option<String>,
    /// Name of the results dataset [default: rewardbench-results; RewardBench 2: rewardbench-2-results].
    #[arg(long = "hf_name", alias = "hf-name")]
    pub hf_name: Option<String>,
    /// The results dataset as ORG/NAME (instead of --hf_entity / --hf_name).
    #[arg(long = "hub_results_repo", alias = "hub-results-repo")]
    pub hub_results_repo: Option<String>,
    /// Print each repo, path and size, and the model-card YAML, that publishing would send; send nothing (no token needed).
    #[arg(long = "hub_dry_run", alias = "hub-dry-run", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub hub_dry_run: bool,
}

/// `rewardbench publish`: publish the results of earlier runs.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// A results folder (every run in it: each {name}.json with its {name}_outputs.jsonl) or one run's {name}.json.
    pub path: PathBuf,
    #[command(flatten)]
    pub target: HubTarget,
    /// Also add the scores to each model's card (model-index), for runs of hub models (org/name).
    #[arg(long = "upload_model_metadata_to_hf", alias = "upload-model-metadata-to-hf", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub upload_model_metadata_to_hf: bool,
    /// Branch of the model repos whose cards are updated.
    #[arg(long)]
    pub revision: Option<String>,
}

/// A publish a run makes once its results are written.
#[derive(Debug, Clone)]
pub struct Publish {
    pub options: Options,
    pub dry_run: bool,
}

/// The command line as typed (program name shortened), for the dataset card.
fn command_line() -> String {
    let mut args = std::env::args();
    let prog = args
        .next()
        .map(|a| {
            Path::new(&a)
                .file_name()
                .map_or(a.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "rewardbench".into());
    let quote = |a: String| {
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
            format!("'{}'", a.replace('\'', r"'\''"))
        } else {
            a
        }
    };
    std::iter::once(prog)
        .chain(args.map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks what can be checked before a run (names, the token, the model repo) and returns
/// the publish to make after it; `None` when neither flag is set.
pub fn for_run(
    push: bool,
    target: &HubTarget,
    model_card: bool,
    model_repo: Option<String>,
    revision: Option<&str>,
    args: &dyn std::fmt::Debug,
    obs: &mut dyn Observer,
) -> anyhow::Result<Option<Publish>> {
    if !push && !model_card {
        let set: Vec<&str> = [
            (target.hf_entity.is_some(), "--hf_entity"),
            (target.hf_name.is_some(), "--hf_name"),
            (target.hub_results_repo.is_some(), "--hub_results_repo"),
            (target.hub_dry_run, "--hub_dry_run"),
        ]
        .into_iter()
        .filter_map(|(on, f)| on.then_some(f))
        .collect();
        if !set.is_empty() {
            obs.note(&format!(
                "{}: accepted, ignored because nothing is published without --push_results_to_hub or --upload_model_metadata_to_hf",
                set.join(", ")
            ));
        }
        return Ok(None);
    }
    if model_card && model_repo.is_none() {
        bail!("--upload_model_metadata_to_hf updates the card of a hub model: pass --model as a hub id (org/name), or publish later with `rewardbench publish`");
    }
    let options = Options {
        push_results: push,
        model_card,
        results_repo: target.hub_results_repo.clone(),
        entity: target.hf_entity.clone(),
        name: target.hf_name.clone(),
        model_repo,
        revision: revision.map(str::to_string),
        command: Some(command_line()),
        args: Some(format!("{args:#?}")),
    };
    publish::validate(&options)?;
    let p = Publish {
        options,
        dry_run: target.hub_dry_run,
    };
    check_access(&p)?;
    Ok(Some(p))
}

/// A publish that sends needs a token and the network.
fn check_access(p: &Publish) -> anyhow::Result<()> {
    if p.dry_run {
        return Ok(());
    }
    let hub = HubConfig::from_env();
    if hub.offline {
        bail!("publishing to the hub needs the network, and HF_HUB_OFFLINE is set (add --hub_dry_run to see what would be sent)");
    }
    if hub.token.is_none() {
        bail!("publishing to the hub needs HF_TOKEN, a token with write access (https://huggingface.co/settings/tokens); add --hub_dry_run to see what would be sent");
    }
    Ok(())
}

/// Publishes `runs` (or prints the plan of a dry run).
fn send(runs: &[RunFiles], p: &Publish) -> anyhow::Result<()> {
    let plan = publish::plan(runs, &p.options)?;
    if p.dry_run {
        print!("hub dry run: nothing is sent\n{plan}");
        return Ok(());
    }
    for line in publish::execute(&plan, &HubConfig::from_env(), ApiConfig::default())? {
        eprintln!("{line}");
    }
    Ok(())
}

/// After a run wrote its results: publishes them. Errors say the local files are safe.
pub fn after_run(p: &Publish, out_dir: &Path, summary: Option<&Path>) -> anyhow::Result<()> {
    let Some(summary) = summary else {
        bail!("nothing published: instruction data has no summary (its outputs are in {}); results are published for preference data", out_dir.display());
    };
    let retry = || {
        format!(
            "the results are safe in {}; publishing them failed (publish again with `rewardbench publish {}`)",
            out_dir.display(),
            summary.display()
        )
    };
    let name = summary
        .strip_prefix(out_dir)
        .ok()
        .and_then(|r| r.to_str())
        .and_then(|r| r.strip_suffix(".json"))
        .map(|r| r.replace('\\', "/"))
        .with_context(|| {
            format!(
                "{}: not a summary in {}",
                summary.display(),
                out_dir.display()
            )
        })?;
    let run = RunFiles::at(out_dir, &name).with_context(retry)?;
    send(&[run], p).with_context(retry)
}

/// `rewardbench publish PATH`: the results dataset always, the model cards when asked.
pub fn run(a: &PublishArgs) -> anyhow::Result<()> {
    let runs = RunFiles::find(&a.path)?;
    let options = Options {
        push_results: true,
        model_card: a.upload_model_metadata_to_hf,
        results_repo: a.target.hub_results_repo.clone(),
        entity: a.target.hf_entity.clone(),
        name: a.target.hf_name.clone(),
        model_repo: None,
        revision: a.revision.clone(),
        command: None,
        args: None,
    };
    publish::validate(&options)?;
    let p = Publish {
        options,
        dry_run: a.target.hub_dry_run,
    };
    check_access(&p)?;
    send(&runs, &p)
}
