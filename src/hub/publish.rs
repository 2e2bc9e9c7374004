//! What a finished run publishes: its summary and per-example files laid out as RewardBench's
//! results repos, with a dataset card, and its scores as `model-index` results of the model
//! card. [`plan`] reads only local files (a dry run prints it); [`execute`] sends it.
//!
//! Layout of a results dataset (`{name}` is the run's result name, `org/model` a subfolder):
//!
//! | run's dataset | summary | per-example files |
//! |---|---|---|
//! | `allenai/reward-bench`, `allenai/reward-bench-2` | `eval-set/{name}.json` | `eval-set-scores/{name}_outputs.jsonl` (+ RB2's `eval-set-scores/{name}.json`) |
//! | `allenai/pref-test-sets` | `pref-sets/{name}.json` | `pref-sets-scores/{name}_outputs.jsonl` |
//! | any other (`x.jsonl`, `org/x`) | `custom-sets/x/{name}.json` | `custom-sets-scores/x/{name}_outputs.jsonl` |
//!
//! plus `README.md`, the dataset card (upstream's: title, link, command, args, versions).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::api::{ApiConfig, Committed, HubApi, PublishError, Upload};
use super::card::{self, Card, EvalResult};
use super::{is_repo_id, HubConfig, RepoKind, RepoRef};
use crate::data::{CORE_SET, PREF_SETS, RB2};
use crate::scoring::RB2_SUBSETS;

/// Default results dataset names (under the owner), as upstream's two results repos.
pub const RESULTS_NAME: &str = "rewardbench-results";
pub const RESULTS_NAME_V2: &str = "rewardbench-2-results";
/// Commit title of a model-card update (upstream's), before the marker.
pub const CARD_COMMIT: &str = "Update evaluation results via RewardBench";
/// The `task.type` of RewardBench's results.
pub const TASK: &str = "preference_evaluation";

/// The results of one run on disk.
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// Result name: `{name}.json` in the output folder (`org/model` for hub models).
    pub name: String,
    pub summary_path: PathBuf,
    pub summary: Value,
    /// `{name}_outputs.jsonl`.
    pub outputs: PathBuf,
    /// RewardBench 2's `eval-set-scores/{name}.json`, when there is one.
    pub per_item: Option<PathBuf>,
}

/// What kind of run a summary is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// v1 pairs (classifier or DPO): `accuracy`, `extra_results`.
    Pairs,
    /// RewardBench 2 best-of-N: one float per subset and `Score`.
    BestOfN,
    /// A generative judge (`model_type` "Generative RM ...").
    Judge { best_of_n: bool },
}

fn local(path: &Path, message: impl Into<String>) -> PublishError {
    PublishError::Local {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn read_json(path: &Path) -> Result<Value, PublishError> {
    let text = std::fs::read_to_string(path).map_err(|e| local(path, e.to_string()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| local(path, format!("not JSON: {e}")))?;
    if !v.is_object() || v.get("model").is_none() {
        return Err(local(
            path,
            "not a run summary (no `model` key); pass a results folder or its {name}.json",
        ));
    }
    Ok(v)
}

impl RunFiles {
    /// The run whose summary is `{dir}/{name}.json`.
    pub fn at(dir: &Path, name: &str) -> Result<Self, PublishError> {
        let summary_path = dir.join(format!("{name}.json"));
        let summary = read_json(&summary_path)?;
        let outputs = dir.join(format!("{name}_outputs.jsonl"));
        if !outputs.is_file() {
            return Err(local(
                &summary_path,
                format!("no {} beside the summary", outputs.display()),
            ));
        }
        let per_item = dir.join("eval-set-scores").join(format!("{name}.json"));
        let mut run = Self {
            name: name.to_string(),
            summary_path,
            summary,
            outputs,
            per_item: None,
        };
        if run.kind() == RunKind::BestOfN && per_item.is_file() {
            run.per_item = Some(per_item);
        }
        Ok(run)
    }

    /// The runs at `path`: a summary file, or every run in a results folder (sorted by name).
    pub fn find(path: &Path) -> Result<Vec<Self>, PublishError> {
        if path.is_file() {
            let dir = path.parent().unwrap_or(Path::new("."));
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|_| path.extension().is_some_and(|e| e == "json"))
                .ok_or_else(|| local(path, "not a {name}.json summary"))?;
            // `org/model.json` of a hub model: the name keeps its folder, as the run wrote it.
            let summary = read_json(path)?;
            let model = summary.get("model").and_then(Value::as_str).unwrap_or("");
            if let (Some(org), Some(up)) = (dir.file_name(), dir.parent()) {
                let org = org.to_string_lossy();
                if model.starts_with(&format!("{org}/{stem}")) {
                    return Ok(vec![Self::at(up, &format!("{org}/{stem}"))?]);
                }
            }
            return Ok(vec![Self::at(dir, &stem)?]);
        }
        if !path.is_dir() {
            return Err(local(path, "no such file or folder"));
        }
        let mut names = Vec::new();
        collect(path, path, &mut names);
        names.sort();
        let runs: Vec<Self> = names
            .iter()
            .map(|n| Self::at(path, n))
            .collect::<Result<_, _>>()?;
        if runs.is_empty() {
            return Err(local(
                path,
                "no run results here (a {name}.json summary with its {name}_outputs.jsonl)",
            ));
        }
        Ok(runs)
    }

    pub fn kind(&self) -> RunKind {
        let s = &self.summary;
        let judge = s
            .get("model_type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("Generative"));
        let best_of_n = s.get("accuracy").is_none() && s.get("Score").is_some();
        match (judge, best_of_n) {
            (true, b) => RunKind::Judge { best_of_n: b },
            (false, true) => RunKind::BestOfN,
            (false, false) => RunKind::Pairs,
        }
    }

    fn best_of_n(&self) -> bool {
        matches!(
            self.kind(),
            RunKind::BestOfN | RunKind::Judge { best_of_n: true }
        )
    }

    /// The dataset as the summary records it (`dataset`, or v2's `dataset.name`).
    pub fn dataset(&self) -> String {
        match self.summary.get("dataset") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) => o
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        }
    }

    fn model(&self) -> &str {
        self.summary
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `(summary folder, per-example folder)` in the results repo.
    fn set_dirs(&self) -> (String, String) {
        let d = self.dataset();
        let d = d.strip_prefix("hf://datasets/").unwrap_or(&d);
        let id = d.split('@').next().unwrap_or(d);
        match id {
            CORE_SET | RB2 => ("eval-set".into(), "eval-set-scores".into()),
            PREF_SETS | "allenai/preference-test-sets" => {
                ("pref-sets".into(), "pref-sets-scores".into())
            }
            _ => {
                let last = id.trim_end_matches('/').rsplit('/').next().unwrap_or(id);
                let stem = Path::new(last)
                    .file_stem()
                    .map_or_else(|| last.to_string(), |s| s.to_string_lossy().into_owned());
                let slug: String = stem
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let slug = if slug.is_empty() || slug.starts_with('.') {
                    "dataset".to_string()
                } else {
                    slug
                };
                (
                    format!("custom-sets/{slug}"),
                    format!("custom-sets-scores/{slug}"),
                )
            }
        }
    }

    /// `(path in the repo, local file)` for each file this run uploads.
    pub fn layout(&self) -> Vec<(String, PathBuf)> {
        let (sum, scores) = self.set_dirs();
        let mut out = vec![
            (
                format!("{sum}/{}.json", self.name),
                self.summary_path.clone(),
            ),
            (
                format!("{scores}/{}_outputs.jsonl", self.name),
                self.outputs.clone(),
            ),
        ];
        if let Some(p) = &self.per_item {
            out.push((format!("{scores}/{}.json", self.name), p.clone()));
        }
        out
    }

    /// The headline number: v1's `accuracy`, RB2's `Score`, a v1 judge's leaderboard Score.
    fn headline(&self) -> Option<(&'static str, f64)> {
        let s = &self.summary;
        if let Some(a) = s.get("accuracy").and_then(Value::as_f64) {
            return Some(("Accuracy", a));
        }
        s.get("Score")
            .or_else(|| s.get("leaderboard").and_then(|l| l.get("Score")))
            .and_then(Value::as_f64)
            .map(|x| ("Score", x))
    }

    /// The model card results RewardBench reports for this run: v1 as upstream's CLI (the
    /// accuracy on the dataset; on the core set also one per section and one per subset);
    /// RB2 the Score and each of the six subsets, as named metrics of one dataset entry.
    pub fn eval_results(&self) -> Result<Vec<EvalResult>, PublishError> {
        let dataset = self.dataset();
        let short = dataset.rsplit('/').next().unwrap_or(&dataset).to_string();
        let s = &self.summary;
        let f = |v: &Value| v.as_f64();
        match self.kind() {
            RunKind::Judge { .. } => Err(local(
                &self.summary_path,
                "a generative judge's results; --upload_model_metadata_to_hf updates a reward model's card (as RewardBench's CLI) and is not for judges",
            )),
            RunKind::Pairs => {
                let acc = s.get("accuracy").and_then(f).ok_or_else(|| {
                    local(&self.summary_path, "no `accuracy` in the summary")
                })?;
                let mut out = vec![EvalResult::new(TASK, &dataset, &short, "accuracy", acc)];
                if dataset == CORE_SET {
                    if let Some(Value::Object(sections)) = s.get("section_scores") {
                        for (k, v) in sections {
                            if let Some(x) = f(v) {
                                out.push(EvalResult::new(
                                    TASK,
                                    &k.replace(' ', "_"),
                                    k,
                                    "accuracy",
                                    x,
                                ));
                            }
                        }
                    }
                    if let Some(Value::Object(subsets)) = s.get("extra_results") {
                        for (k, v) in subsets {
                            if let Some(x) = f(v) {
                                out.push(EvalResult::new(TASK, k, k, "accuracy", x));
                            }
                        }
                    }
                }
                Ok(out)
            }
            RunKind::BestOfN => {
                let split = s
                    .get("dataset")
                    .and_then(|d| d.get("split"))
                    .and_then(Value::as_str);
                let entry = |name: &str, x: f64| {
                    EvalResult::new(TASK, &dataset, &short, "accuracy", x)
                        .with_metric_name(name)
                        .with_split(split)
                };
                let mut out = Vec::new();
                if let Some(x) = s.get("Score").and_then(f) {
                    out.push(entry("Score", x));
                }
                for sub in RB2_SUBSETS.iter().copied() {
                    if let Some(x) = s.get(sub).and_then(f) {
                        out.push(entry(sub, x));
                    }
                }
                if out.is_empty() {
                    return Err(local(
                        &self.summary_path,
                        "no Score or RewardBench 2 subset scores in the summary",
                    ));
                }
                Ok(out)
            }
        }
    }
}

/// Result names under `root`: every `X.json` with an `X_outputs.jsonl` beside it (not in
/// `eval-set-scores/`, not `_run.json`, not hidden).
fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let file = e.file_name().to_string_lossy().into_owned();
        if file.starts_with('.') {
            continue;
        }
        if p.is_dir() {
            if !(dir == root && file == "eval-set-scores") {
                collect(root, &p, out);
            }
            continue;
        }
        let Some(stem) = file.strip_suffix(".json") else {
            continue;
        };
        if stem.ends_with("_run") || !dir.join(format!("{stem}_outputs.jsonl")).is_file() {
            continue;
        }
        if let Ok(rel) = p.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push(rel.trim_end_matches(".json").to_string());
        }
    }
}

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

    #[test]
    fn layout_follows_the_dataset() {
        let run = |dataset: Value| RunFiles {
            name: "org/m".into(),
            summary_path: "s.json".into(),
            summary: serde_json::json!({"model": "org/m", "accuracy": 0.5, "dataset": dataset}),
            outputs: "o.jsonl".into(),
            per_item: None,
        };
        let paths = |r: RunFiles| -> Vec<String> { r.layout().into_iter().map(|p| p.0).collect() };
        assert_eq!(
            paths(run("allenai/reward-bench".into())),
            ["eval-set/org/m.json", "eval-set-scores/org/m_outputs.jsonl"]
        );
        assert_eq!(
            paths(run("allenai/pref-test-sets".into())),
            [
                "pref-sets/org/m.json",
                "pref-sets-scores/org/m_outputs.jsonl"
            ]
        );
        assert_eq!(
            paths(run("fixtures/data/llm bar.jsonl".into())),
            [
                "custom-sets/llm_bar/org/m.json",
                "custom-sets-scores/llm_bar/org/m_outputs.jsonl"
            ]
        );
        assert_eq!(
            paths(run(serde_json::json!({"name": "allenai/reward-bench-2"}))),
            ["eval-set/org/m.json", "eval-set-scores/org/m_outputs.jsonl"]
        );
    }

    #[test]
    fn core_set_results_are_upstreams_eval_results() {
        let r = RunFiles {
            name: "m".into(),
            summary_path: "s.json".into(),
            summary: serde_json::json!({
                "model": "org/m", "accuracy": 0.5, "dataset": "allenai/reward-bench",
                "extra_results": {"alpacaeval-easy": 1.0, "math-prm": 0.25},
                "section_scores": {"Chat": 1.0, "Chat Hard": 0.5},
            }),
            outputs: "o.jsonl".into(),
            per_item: None,
        };
        let rs = r.eval_results().unwrap();
        let types: Vec<&str> = rs.iter().filter_map(|e| e.dataset_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "allenai/reward-bench",
                "Chat",
                "Chat_Hard",
                "alpacaeval-easy",
                "math-prm"
            ]
        );
        assert_eq!(rs[0].dataset_name.as_str(), Some("reward-bench"));
        assert_eq!(rs[2].dataset_name.as_str(), Some("Chat Hard"));
    }
}
