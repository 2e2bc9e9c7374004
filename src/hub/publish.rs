//! What a finished run publishes: its summary and per-example files laid out as RewardBench's
//! results repos, with a dataset card, and its scores as `model-index` results of the model
//! card. [`plan`] reads only local files (a dry run prints it); [`execute`] sends it.
//!
//! The layout is [`RunFiles::layout`]'s; each dataset commit adds `README.md`, the dataset card
//! (upstream's: title, link, command, args, versions).

use std::fmt::Write as _;
use std::path::Path;

use super::api::{ApiConfig, Committed, HubApi, Upload};
use super::card::{self, Card, EvalResult};
use super::error::PublishError;
use super::runs::local;
pub use super::runs::{RunFiles, RunKind, TASK};
use super::{is_repo_id, HubConfig, RepoKind, RepoRef};

/// Default results dataset names (under the owner), as upstream's two results repos.
pub const RESULTS_NAME: &str = "rewardbench-results";
pub const RESULTS_NAME_V2: &str = "rewardbench-2-results";
/// Commit title of a model-card update (upstream's), before the marker.
pub const CARD_COMMIT: &str = "Update evaluation results via RewardBench";

/// What to publish and where.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Upload the run's files as a dataset (`--push_results_to_hub`).
    pub push_results: bool,
    /// Add the scores to the model card (`--upload_model_metadata_to_hf`).
    pub model_card: bool,
    /// `--hub_results_repo ORG/NAME` (or `NAME` under the owner).
    pub results_repo: Option<String>,
    /// `--hf_entity`: owner of the results dataset (default: the token's user).
    pub entity: Option<String>,
    /// `--hf_name`: its name (default [`RESULTS_NAME`], [`RESULTS_NAME_V2`] for RB2 runs).
    pub name: Option<String>,
    /// The hub model repo of the run (default: the summary's `model` when it is `org/name`).
    pub model_repo: Option<String>,
    /// Model-card branch (`--revision`, default main).
    pub revision: Option<String>,
    /// The command line, for the dataset card.
    pub command: Option<String>,
    /// The parsed flags, for the dataset card.
    pub args: Option<String>,
}

/// Cuts URL credentials (`scheme://user:pass@`) out of text bound for the hub.
pub fn scrub(text: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@").expect("a valid pattern")
    });
    re.replace_all(text, "${1}***@").into_owned()
}

/// One results dataset commit.
#[derive(Debug, Clone)]
pub struct DatasetPlan {
    /// Owner; `None`: the token's user (looked up when publishing).
    pub owner: Option<String>,
    pub name: String,
    /// Result names of the runs in it.
    pub runs: Vec<String>,
    /// Every file, `README.md` (the dataset card) last.
    pub files: Vec<Upload>,
}

impl DatasetPlan {
    fn shown(&self) -> String {
        match &self.owner {
            Some(o) => format!("{o}/{}", self.name),
            None => format!("<token's user>/{}", self.name),
        }
    }
}

/// One model-card update.
#[derive(Debug, Clone)]
pub struct CardPlan {
    pub repo: RepoRef,
    /// `model-index[0].name` for a card that has none.
    pub model_name: String,
    pub results: Vec<EvalResult>,
}

/// Everything a publish sends.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub datasets: Vec<DatasetPlan>,
    pub cards: Vec<CardPlan>,
}

/// The dataset card (upstream's `push_results_to_hub` card).
fn dataset_card(name: &str, runs: &[&RunFiles], opts: &Options) -> String {
    let mut c = format!(
        "# {name}: RewardBench CLI Eval. Outputs\n\nSee https://github.com/allenai/reward-bench for more details\n\nBuilt with the `rewardbench` CLI tool (rewardbench-rs {}, on ONNX Runtime).\n",
        env!("CARGO_PKG_VERSION")
    );
    for r in runs {
        if let Some((label, x)) = r.headline() {
            if runs.len() == 1 {
                let _ = writeln!(c, "{label}: {x}");
            } else {
                let _ = writeln!(c, "\n{}: {label}: {x}", r.name);
            }
        }
    }
    let command = opts.command.clone().unwrap_or_else(|| {
        "(not recorded: published from existing result files with `rewardbench publish`)".into()
    });
    let _ = write!(c, "\nCommand used to run:\n```\n{command}\n```\n");
    if let Some(a) = &opts.args {
        let _ = write!(c, "\n## Configs\n```\nargs: {a}\n```\n");
    }
    let _ = write!(
        c,
        "\n## Package Versions\n```\nrewardbench-rs: {}\n",
        env!("CARGO_PKG_VERSION")
    );
    let mut ort: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            r.summary
                .get("evaluator")?
                .get("onnxruntime_version")?
                .as_str()
                .map(str::to_string)
        })
        .collect();
    ort.dedup();
    for v in ort {
        let _ = writeln!(c, "onnxruntime: {v}");
    }
    c.push_str("```\n\n## Files\n\n| run | model | dataset | path |\n|---|---|---|---|\n");
    for r in runs {
        for (path, _) in r.layout() {
            let _ = writeln!(
                c,
                "| {} | {} | {} | `{path}` |",
                r.name,
                r.model(),
                r.dataset()
            );
        }
    }
    scrub(&c)
}

/// Checks the repo names in `opts`, before any file is read or request sent.
pub fn validate(opts: &Options) -> Result<(), PublishError> {
    let bad = |what: &str, v: &str| {
        Err(PublishError::Invalid(format!(
            "{what} {v}: not a hub repo name (letters, digits, `-`, `_`, `.`; ORG/NAME)"
        )))
    };
    let part = |v: &str| is_repo_id(v) && !v.contains('/');
    if let Some(r) = opts.results_repo.as_deref().filter(|r| !is_repo_id(r)) {
        return bad("--hub_results_repo", r);
    }
    if let Some(n) = opts.name.as_deref().filter(|n| !part(n)) {
        return bad("--hf_name", n);
    }
    if let Some(e) = opts.entity.as_deref().filter(|e| !part(e)) {
        return bad("--hf_entity", e);
    }
    if let Some(m) = opts.model_repo.as_deref().filter(|m| !is_repo_id(m)) {
        return bad("model", m);
    }
    Ok(())
}

/// The results dataset of `run`: `(owner, name)`; no owner means the token's user.
fn target(opts: &Options, run: &RunFiles) -> (Option<String>, String) {
    if let Some(r) = &opts.results_repo {
        return match r.split_once('/') {
            Some((o, n)) => (Some(o.to_string()), n.to_string()),
            None => (opts.entity.clone(), r.clone()),
        };
    }
    let name = opts.name.clone().unwrap_or_else(|| {
        if run.best_of_n() {
            RESULTS_NAME_V2
        } else {
            RESULTS_NAME
        }
        .to_string()
    });
    (opts.entity.clone(), name)
}

/// The model repo whose card a run's scores go to.
fn model_repo(opts: &Options, run: &RunFiles, runs: usize) -> Result<String, PublishError> {
    if let Some(m) = &opts.model_repo {
        if runs == 1 {
            return Ok(m.clone());
        }
    }
    let m = run.model();
    if m.contains('/') && is_repo_id(m) && !Path::new(m).exists() {
        return Ok(m.to_string());
    }
    Err(local(
        &run.summary_path,
        format!("model `{m}` is not a hub repo id (org/name); --upload_model_metadata_to_hf needs a run of a hub model (--model org/name)"),
    ))
}

/// Reads the runs' files and works out every repo, path and card: nothing is sent.
pub fn plan(runs: &[RunFiles], opts: &Options) -> Result<Plan, PublishError> {
    validate(opts)?;
    let mut plan = Plan::default();
    if opts.push_results {
        // (owner, name) of each results dataset, with its runs.
        type Target = (Option<String>, String);
        let mut groups: Vec<(Target, Vec<&RunFiles>)> = Vec::new();
        for r in runs {
            let t = target(opts, r);
            match groups.iter_mut().find(|(k, _)| *k == t) {
                Some((_, g)) => g.push(r),
                None => groups.push((t, vec![r])),
            }
        }
        for ((owner, name), group) in groups {
            let mut files: Vec<Upload> = Vec::new();
            for r in &group {
                for (path, local_path) in r.layout() {
                    if files.iter().any(|f| f.path == path) {
                        return Err(local(
                            &r.summary_path,
                            format!("two runs would both upload {path}; publish them to different repos (--hub_results_repo)"),
                        ));
                    }
                    let bytes = std::fs::read(&local_path)
                        .map_err(|e| local(&local_path, e.to_string()))?;
                    files.push(Upload { path, bytes });
                }
            }
            files.push(Upload {
                path: "README.md".into(),
                bytes: dataset_card(&name, &group, opts).into_bytes(),
            });
            plan.datasets.push(DatasetPlan {
                owner,
                name,
                runs: group.iter().map(|r| r.name.clone()).collect(),
                files,
            });
        }
    }
    if opts.model_card {
        for r in runs {
            let id = model_repo(opts, r, runs.len())?;
            let repo = RepoRef::new(&id, RepoKind::Model, opts.revision.as_deref());
            let results = r.eval_results()?;
            match plan.cards.iter_mut().find(|c| c.repo == repo) {
                Some(c) => c.results.extend(results),
                None => plan.cards.push(CardPlan {
                    repo,
                    model_name: id,
                    results,
                }),
            }
        }
    }
    Ok(plan)
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for d in &self.datasets {
            writeln!(
                f,
                "dataset {} (created if missing), branch main, one commit:",
                d.shown()
            )?;
            for u in &d.files {
                writeln!(f, "  {}  {} bytes", u.path, u.bytes.len())?;
            }
        }
        for c in &self.cards {
            writeln!(
                f,
                "{}: README.md front matter gets these model-index results (merged as huggingface_hub's metadata_update(overwrite=True); the rest of the card is kept):",
                c.repo
            )?;
            match card::results_yaml(&c.model_name, &c.results) {
                Ok(y) => {
                    for line in y.lines() {
                        writeln!(f, "  {line}")?;
                    }
                }
                Err(e) => writeln!(f, "  ({e})")?,
            }
        }
        Ok(())
    }
}

/// A new card for a model repo without a README: upstream's card data (`language: en`).
fn template(model: &str) -> Card {
    let mut data = yaml_rust2::yaml::Hash::new();
    data.insert(
        yaml_rust2::Yaml::String("language".into()),
        yaml_rust2::Yaml::String("en".into()),
    );
    Card {
        data,
        text: format!("\n# Model Card for {model}\n\nEvaluation results from [RewardBench](https://github.com/allenai/reward-bench), computed with rewardbench-rs.\n"),
    }
}

/// Sends `plan`: each results dataset (created if missing) in one commit, then each model
/// card. Returns one line per repo saying what happened.
pub fn execute(
    plan: &Plan,
    hub: &HubConfig,
    config: ApiConfig,
) -> Result<Vec<String>, PublishError> {
    let api = HubApi::new(&hub.endpoint, hub.secret(), config);
    let mut lines = Vec::new();
    let mut user: Option<String> = None;
    let say = |c: &Committed, repo: &RepoRef, url: &str| match c {
        Committed::Made(id) => format!("published {repo}: commit {id} ({url})"),
        Committed::AlreadyThere(id) => {
            format!("{repo}: already holds these files (commit {id}); nothing sent")
        }
        Committed::Unchanged => format!("{repo}: already has these results; nothing sent"),
    };
    for d in &plan.datasets {
        let owner = match (&d.owner, &user) {
            (Some(o), _) => o.clone(),
            (None, Some(u)) => u.clone(),
            (None, None) => {
                let u = api.whoami()?;
                user = Some(u.clone());
                u
            }
        };
        let repo = RepoRef::new(&format!("{owner}/{}", d.name), RepoKind::Dataset, None);
        if api.create_repo(&repo)? {
            lines.push(format!("created {repo}"));
        }
        let summary = format!("Upload RewardBench results: {}", d.runs.join(", "));
        let done = api.commit(
            &repo,
            &summary,
            &format!("rewardbench-rs {}", env!("CARGO_PKG_VERSION")),
            &mut |_| Ok(Some(d.files.clone())),
        )?;
        let url = format!("{}/datasets/{}", api.endpoint(), repo.id);
        lines.push(say(&done, &repo, &url));
    }
    for c in &plan.cards {
        let repo = &c.repo;
        let card_err = |source| PublishError::Card {
            repo: repo.to_string(),
            source,
        };
        let done = api.commit(
            repo,
            CARD_COMMIT,
            &format!("rewardbench-rs {}", env!("CARGO_PKG_VERSION")),
            &mut |head| {
                let old = api.download(repo, head, "README.md")?;
                let mut card = match &old {
                    Some(bytes) => {
                        Card::parse(&String::from_utf8_lossy(bytes)).map_err(card_err)?
                    }
                    None => template(&c.model_name),
                };
                card.merge_results(&c.model_name, &c.results)
                    .map_err(card_err)?;
                let text = card.render().map_err(card_err)?.into_bytes();
                if old.as_deref() == Some(text.as_slice()) {
                    return Ok(None);
                }
                Ok(Some(vec![Upload {
                    path: "README.md".into(),
                    bytes: text,
                }]))
            },
        )?;
        let url = format!("{}/{}", api.endpoint(), repo.id);
        lines.push(say(&done, repo, &url));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_scrubbed() {
        assert_eq!(
            scrub("--base_url http://me:sk-1@host:8000/v1 x"),
            "--base_url http://***@host:8000/v1 x"
        );
        assert_eq!(
            scrub("https://huggingface.co/x"),
            "https://huggingface.co/x"
        );
    }
}
