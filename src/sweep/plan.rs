//! The sweep plan (`PLAN.toml`): models, benchmarks, shards and the Slurm resources, read
//! into typed values. Paths are relative to the plan's folder and come out absolute; every
//! error names the plan file and the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SweepError;

/// Which evaluator command a benchmark runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// `rewardbench` (RewardBench v1 scoring).
    Rewardbench,
    /// `rewardbench v2` (RewardBench 2).
    V2,
    /// `rewardbench gen` (a generative judge); one shard unless its benchmark sets `shards`.
    Gen,
}

impl Command {
    /// The subcommand word before the flags (none for plain `rewardbench`).
    pub fn word(self) -> Option<&'static str> {
        match self {
            Self::Rewardbench => None,
            Self::V2 => Some("v2"),
            Self::Gen => Some("gen"),
        }
    }
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local folder (absolute).
    Local(PathBuf),
    /// A hub id, with an optional revision.
    Hub {
        id: String,
        revision: Option<String>,
    },
}

/// One `[[model]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub source: Source,
    /// Extra flags, passed through to every command of this model.
    pub args: Vec<String>,
    /// The evaluator's name for it (result file names): the folder's last component, or the
    /// hub id. Also the folder under `output_dir`.
    pub name: String,
}

impl Model {
    /// `--model`'s value.
    pub fn model_arg(&self) -> String {
        match &self.source {
            Source::Local(p) => p.display().to_string(),
            Source::Hub { id, .. } => id.clone(),
        }
    }
}

/// Where a benchmark's rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dataset {
    /// The command's own default (the core set, RB2, ...).
    Default,
    /// A local file or folder (absolute).
    Local(PathBuf),
    /// A hub dataset id (`org/name` or `org/name@rev`).
    Hub(String),
}

/// One `[[benchmark]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Benchmark {
    /// Folder name under each model's folder.
    pub name: String,
    pub command: Command,
    pub dataset: Dataset,
    pub split: Option<String>,
    /// Extra flags, passed through.
    pub args: Vec<String>,
    /// Shards of each model's run (`gen`: 1 unless the benchmark sets `shards`).
    pub shards: usize,
}

/// `[slurm]`: the job's resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slurm {
    pub job_name: String,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub cpus_per_task: u32,
    pub mem: Option<String>,
    pub time: Option<String>,
    pub gres: Option<String>,
    /// At most this many tasks at once (the array's `%N`).
    pub max_parallel: Option<u32>,
    /// More `sbatch` options, one per entry (`--constraint=a100`).
    pub extra: Vec<String>,
    /// Shell lines run before the command (`module load cuda`).
    pub setup: Vec<String>,
}

/// A read and checked plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The plan file (absolute).
    pub file: PathBuf,
    pub output_dir: PathBuf,
    pub models: Vec<Model>,
    pub benchmarks: Vec<Benchmark>,
    pub slurm: Slurm,
    /// The evaluator binary the tasks run (default: this one).
    pub binary: Option<PathBuf>,
    /// The ONNX Runtime library the tasks load (default: the one this binary finds).
    pub ort_lib: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    output_dir: String,
    #[serde(default = "one")]
    shards: usize,
    binary: Option<String>,
    ort_lib: Option<String>,
    #[serde(default)]
    model: Vec<RawModel>,
    #[serde(default)]
    benchmark: Vec<RawBenchmark>,
    #[serde(default)]
    slurm: RawSlurm,
}

fn one() -> usize {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    path: Option<String>,
    hub: Option<String>,
    revision: Option<String>,
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBenchmark {
    name: String,
    #[serde(default = "default_command")]
    command: Command,
    dataset: Option<String>,
    hub_dataset: Option<String>,
    split: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    shards: Option<usize>,
}

fn default_command() -> Command {
    Command::Rewardbench
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlurm {
    job_name: Option<String>,
    partition: Option<String>,
    account: Option<String>,
    qos: Option<String>,
    cpus_per_task: Option<u32>,
    mem: Option<String>,
    time: Option<String>,
    gres: Option<String>,
    max_parallel: Option<u32>,
    #[serde(default)]
    extra: Vec<String>,
    #[serde(default)]
    setup: Vec<String>,
}

/// Flags the sweep sets itself; a plan's `args` may not carry them.
const RESERVED: &[&str] = &[
    "--model",
    "--dataset",
    "--output_dir",
    "--output-dir",
    "--shard",
    "--revision",
    "--split",
    "--pref_sets",
    "--pref-sets",
];

impl Plan {
    /// Reads and checks the plan at `path`.
    pub fn load(path: &Path) -> Result<Self, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|source| SweepError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file = std::fs::canonicalize(path).map_err(|source| SweepError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &file)
    }

    /// Checks a plan's text; `file` (absolute) names it in errors and anchors its paths.
    pub fn parse(text: &str, file: &Path) -> Result<Self, SweepError> {
        let raw: RawPlan = toml::from_str(text).map_err(|e| SweepError::PlanSyntax {
            file: file.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let base = file.parent().unwrap_or(Path::new("/"));
        let bad = |key: String, message: String| SweepError::Plan {
            file: file.to_path_buf(),
            key,
            message,
        };
        let abs = |p: &str| absolute(base, p);

        if raw.output_dir.trim().is_empty() {
            return Err(bad("output_dir".into(), "is empty".into()));
        }
        let output_dir = abs(&raw.output_dir);
        if raw.shards == 0 {
            return Err(bad("shards".into(), "must be 1 or more".into()));
        }
        if raw.model.is_empty() {
            return Err(bad("model".into(), "no [[model]] entries".into()));
        }
        if raw.benchmark.is_empty() {
            return Err(bad("benchmark".into(), "no [[benchmark]] entries".into()));
        }

        let mut models = Vec::new();
        for (i, m) in raw.model.into_iter().enumerate() {
            let key = |k: &str| format!("model[{i}].{k}");
            let source = match (m.path, m.hub) {
                (Some(p), None) => {
                    if m.revision.is_some() {
                        return Err(bad(
                            key("revision"),
                            "only with `hub` (a local folder has no revision)".into(),
                        ));
                    }
                    let dir = abs(&p);
                    let dir = std::fs::canonicalize(&dir)
                        .map_err(|e| bad(key("path"), format!("{}: {e}", dir.display())))?;
                    if !dir.is_dir() {
                        return Err(bad(
                            key("path"),
                            format!("{} is not a folder", dir.display()),
                        ));
                    }
                    Source::Local(dir)
                }
                (None, Some(id)) => {
                    if !crate::hub::is_repo_id(&id) {
                        return Err(bad(
                            key("hub"),
                            format!("`{id}` is not a hub id (org/name)"),
                        ));
                    }
                    Source::Hub {
                        id,
                        revision: m.revision,
                    }
                }
                (Some(_), Some(_)) => {
                    return Err(bad(
                        format!("model[{i}]"),
                        "give `path` or `hub`, not both".into(),
                    ))
                }
                (None, None) => {
                    return Err(bad(format!("model[{i}]"), "needs `path` or `hub`".into()))
                }
            };
            check_args(&m.args).map_err(|msg| bad(key("args"), msg))?;
            let name = match &source {
                Source::Local(dir) => match crate::hub::repo_of_cache_path(dir) {
                    Some((crate::hub::RepoKind::Model, id)) => id,
                    _ => dir
                        .file_name()
                        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned()),
                },
                Source::Hub { id, .. } => id.clone(),
            };
            if let Some(j) = models.iter().position(|o: &Model| o.name == name) {
                return Err(bad(
                    key("path"),
                    format!(
                        "model[{j}] has the same name `{name}`; results and leaderboard rows \
                         are keyed by it (rename or link one of the folders)"
                    ),
                ));
            }
            models.push(Model {
                source,
                args: m.args,
                name,
            });
        }

        let mut benchmarks: Vec<Benchmark> = Vec::new();
        for (i, b) in raw.benchmark.into_iter().enumerate() {
            let key = |k: &str| format!("benchmark[{i}].{k}");
            if !valid_folder_name(&b.name) {
                return Err(bad(
                    key("name"),
                    format!(
                        "`{}` is not a folder name (letters, digits, `.`, `_`, `-`)",
                        b.name
                    ),
                ));
            }
            if let Some(j) = benchmarks.iter().position(|o| o.name == b.name) {
                return Err(bad(
                    key("name"),
                    format!("benchmark[{j}] is also named `{}`", b.name),
                ));
            }
            let dataset = match (b.dataset, b.hub_dataset) {
                (Some(_), Some(_)) => {
                    return Err(bad(
                        format!("benchmark[{i}]"),
                        "give `dataset` or `hub_dataset`, not both".into(),
                    ))
                }
                (Some(p), None) => {
                    let path = abs(&p);
                    let path = std::fs::canonicalize(&path)
                        .map_err(|e| bad(key("dataset"), format!("{}: {e}", path.display())))?;
                    Dataset::Local(path)
                }
                (None, Some(id)) => {
                    let repo = id.split_once('@').map_or(id.as_str(), |(r, _)| r);
                    if !crate::hub::is_repo_id(repo) {
                        return Err(bad(
                            key("hub_dataset"),
                            format!("`{id}` is not a hub id (org/name or org/name@revision)"),
                        ));
                    }
                    Dataset::Hub(id)
                }
                (None, None) => Dataset::Default,
            };
            check_args(&b.args).map_err(|msg| bad(key("args"), msg))?;
            let shards = match (b.command, b.shards) {
                (_, Some(0)) => return Err(bad(key("shards"), "must be 1 or more".into())),
                (_, Some(n)) => n,
                // A judge is API-bound: one task per model unless its benchmark says more.
                (Command::Gen, None) => 1,
                (_, None) => raw.shards,
            };
            benchmarks.push(Benchmark {
                name: b.name,
                command: b.command,
                dataset,
                split: b.split,
                args: b.args,
                shards,
            });
        }

        // `gen` has no `--revision` (its models are judges by name).
        if let Some(b) = benchmarks.iter().find(|b| b.command == Command::Gen) {
            if let Some(j) = models.iter().position(|m| {
                matches!(
                    m.source,
                    Source::Hub {
                        revision: Some(_),
                        ..
                    }
                )
            }) {
                return Err(bad(
                    format!("model[{j}].revision"),
                    format!("`gen` (benchmark `{}`) takes no revision", b.name),
                ));
            }
        }

        // `--batching reference` is refused with `--shard` by the evaluator: say so here.
        for (i, b) in benchmarks.iter().enumerate() {
            if b.shards < 2 {
                continue;
            }
            if reference_batching(&b.args) {
                return Err(bad(
                    format!("benchmark[{i}].args"),
                    "--batching reference cannot be sharded: set `shards = 1` for it".into(),
                ));
            }
            for (j, m) in models.iter().enumerate() {
                if reference_batching(&m.args) {
                    return Err(bad(
                        format!("model[{j}].args"),
                        format!(
                            "--batching reference cannot be sharded (benchmark `{}` has {} shards)",
                            b.name, b.shards
                        ),
                    ));
                }
            }
        }

        let s = raw.slurm;
        let slurm = Slurm {
            job_name: s.job_name.unwrap_or_else(|| "rewardbench-sweep".into()),
            partition: s.partition,
            account: s.account,
            qos: s.qos,
            cpus_per_task: s.cpus_per_task.unwrap_or(1),
            mem: s.mem,
            time: s.time,
            gres: s.gres,
            max_parallel: s.max_parallel,
            extra: s.extra,
            setup: s.setup,
        };
        if slurm.cpus_per_task == 0 {
            return Err(bad(
                "slurm.cpus_per_task".into(),
                "must be 1 or more".into(),
            ));
        }
        if slurm.max_parallel == Some(0) {
            return Err(bad("slurm.max_parallel".into(), "must be 1 or more".into()));
        }
        // Values go into `#SBATCH` lines: one token each, nothing a shell would read.
        for (k, v) in [
            ("job_name", Some(&slurm.job_name)),
            ("partition", slurm.partition.as_ref()),
            ("account", slurm.account.as_ref()),
            ("qos", slurm.qos.as_ref()),
            ("mem", slurm.mem.as_ref()),
            ("time", slurm.time.as_ref()),
            ("gres", slurm.gres.as_ref()),
        ] {
            if let Some(v) = v {
                if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(bad(
                        format!("slurm.{k}"),
                        format!("`{v}` must be one word without spaces"),
                    ));
                }
            }
        }
        for (i, e) in slurm.extra.iter().enumerate() {
            if !e.starts_with('-') || e.chars().any(|c| c == '\n' || c == '\r') {
                return Err(bad(
                    format!("slurm.extra[{i}]"),
                    format!("`{e}` is not one sbatch option (e.g. \"--constraint=a100\")"),
                ));
            }
        }
        for (i, l) in slurm.setup.iter().enumerate() {
            if l.contains(['\n', '\r']) {
                return Err(bad(
                    format!("slurm.setup[{i}]"),
                    "one shell line per entry".into(),
                ));
            }
        }

        Ok(Self {
            file: file.to_path_buf(),
            output_dir,
            models,
            benchmarks,
            slurm,
            binary: raw.binary.as_deref().map(abs),
            ort_lib: raw.ort_lib.as_deref().map(abs),
        })
    }

    /// `{output_dir}/sweep.json`.
    pub fn state_file(&self) -> PathBuf {
        self.output_dir.join("sweep.json")
    }
}

/// `p` against `base` (unless absolute), with `.` parts dropped and `..` applied.
fn absolute(base: &Path, p: &str) -> PathBuf {
    let joined = base.join(p);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn valid_folder_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// An error message when `args` sets a flag the sweep owns.
fn check_args(args: &[String]) -> Result<(), String> {
    for a in args {
        let flag = a.split_once('=').map_or(a.as_str(), |(f, _)| f);
        if RESERVED.contains(&flag) {
            return Err(format!(
                "`{flag}` is set by the sweep (use the plan's keys: path/hub, revision, dataset, \
                 hub_dataset, split, output_dir, shards)"
            ));
        }
    }
    Ok(())
}

fn reference_batching(args: &[String]) -> bool {
    args.iter().enumerate().any(|(i, a)| {
        a == "--batching=reference"
            || (a == "--batching" && args.get(i + 1).is_some_and(|v| v == "reference"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_in(dir: &Path, text: &str) -> Result<Plan, SweepError> {
        Plan::parse(text, &dir.join("plan.toml"))
    }

    fn fixture_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("models/rm-a")).unwrap();
        std::fs::create_dir_all(d.path().join("models/rm-b")).unwrap();
        std::fs::create_dir_all(d.path().join("data")).unwrap();
        std::fs::write(d.path().join("data/rows.jsonl"), "").unwrap();
        d
    }

    const ISSUE_PLAN: &str = r#"
output_dir = "sweep-results"
shards = 2
[[model]]
path = "models/rm-a"
args = ["--chat_template", "tulu"]
[[model]]
hub = "org/name"
[[benchmark]]
name = "harmless"
command = "rewardbench"
dataset = "data/rows.jsonl"
args = []
[[benchmark]]
name = "rb2"
command = "v2"
[[benchmark]]
name = "judge"
command = "gen"
hub_dataset = "allenai/reward-bench@main"
[slurm]
partition = "ci"
cpus_per_task = 1
time = "00:20:00"
"#;

    #[test]
    fn the_issue_plan_reads_into_absolute_paths() {
        let d = fixture_dir();
        let base = std::fs::canonicalize(d.path()).unwrap();
        let p = plan_in(&base, ISSUE_PLAN).unwrap();
        assert_eq!(p.output_dir, base.join("sweep-results"));
        assert_eq!(p.models.len(), 2);
        assert_eq!(p.models[0].source, Source::Local(base.join("models/rm-a")));
        assert_eq!(p.models[0].name, "rm-a");
        assert_eq!(p.models[0].args, ["--chat_template", "tulu"]);
        assert_eq!(
            p.models[1].source,
            Source::Hub {
                id: "org/name".into(),
                revision: None
            }
        );
        assert_eq!(p.models[1].name, "org/name");
        assert_eq!(
            p.benchmarks[0].dataset,
            Dataset::Local(base.join("data/rows.jsonl"))
        );
        assert_eq!(p.benchmarks[0].shards, 2);
        assert_eq!(p.benchmarks[1].command, Command::V2);
        assert_eq!(p.benchmarks[1].dataset, Dataset::Default);
        assert_eq!(p.benchmarks[2].shards, 1, "gen is one task per model");
        let gen3 = ISSUE_PLAN.replace("command = \"gen\"\n", "command = \"gen\"\nshards = 3\n");
        let p3 = plan_in(&base, &gen3).unwrap();
        assert_eq!(p3.benchmarks[2].shards, 3, "unless the benchmark says more");
        assert_eq!(
            p.benchmarks[2].dataset,
            Dataset::Hub("allenai/reward-bench@main".into())
        );
        assert_eq!(p.slurm.partition.as_deref(), Some("ci"));
        assert_eq!(p.slurm.time.as_deref(), Some("00:20:00"));
        assert_eq!(p.slurm.cpus_per_task, 1);
        assert_eq!(p.slurm.job_name, "rewardbench-sweep");
        assert_eq!(p.state_file(), base.join("sweep-results/sweep.json"));
    }

    fn err(dir: &Path, text: &str) -> String {
        plan_in(dir, text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let d = fixture_dir();
        let base = std::fs::canonicalize(d.path()).unwrap();
        let head = "output_dir = \"out\"\n[[benchmark]]\nname = \"b\"\n";
        let file = base.join("plan.toml").display().to_string();

        let e = err(&base, &format!("{head}[[model]]\npath = \"models/nope\"\n"));
        assert!(e.contains(&file) && e.contains("model[0].path"), "{e}");
        assert!(e.contains("models/nope"), "{e}");

        let e = err(
            &base,
            &format!("{head}[[model]]\npath = \"models/rm-a\"\nargs = [\"--output_dir\", \"x\"]\n"),
        );
        assert!(
            e.contains("model[0].args") && e.contains("--output_dir"),
            "{e}"
        );

        let e = err(&base, &format!("{head}[[model]]\npath = \"models/rm-a\"\n[[model]]\npath = \"models/../models/rm-a\"\n"));
        assert!(
            e.contains("model[1].path") && e.contains("same name `rm-a`"),
            "{e}"
        );

        let e = err(&base, &format!("{head}[[model]]\nhub = \"not a hub id\"\n"));
        assert!(e.contains("model[0].hub"), "{e}");

        let e = err(
            &base,
            &format!("{head}[[model]]\npath = \"models/rm-a\"\nhub = \"a/b\"\n"),
        );
        assert!(e.contains("model[0]") && e.contains("not both"), "{e}");

        // Unknown keys (typos) are refused by the TOML reader, with the line.
        let e = err(
            &base,
            &format!("{head}[[model]]\npath = \"models/rm-a\"\n[slurm]\npartiton = \"ci\"\n"),
        );
        assert!(e.contains(&file) && e.contains("partiton"), "{e}");
        assert!(e.contains("line 7"), "{e}");

        let e = err(
            &base,
            "output_dir = \"out\"\n[[model]]\npath = \"models/rm-a\"\n",
        );
        assert!(
            e.contains("benchmark") && e.contains("no [[benchmark]]"),
            "{e}"
        );

        let e = err(
            &base,
            &format!("{head}[[model]]\npath = \"models/rm-a\"\n[slurm]\ntime = \"1:00 && rm\"\n"),
        );
        assert!(e.contains("slurm.time"), "{e}");

        let e = err(&base, "output_dir = \"out\"\nshards = 0\n[[model]]\npath = \"models/rm-a\"\n[[benchmark]]\nname = \"b\"\n");
        assert!(e.contains("`shards`") || e.contains(": shards:"), "{e}");

        let e = err(&base, "output_dir = \"out\"\n[[model]]\npath = \"models/rm-a\"\n[[benchmark]]\nname = \"../x\"\n");
        assert!(e.contains("benchmark[0].name"), "{e}");

        let e = err(&base, "output_dir = \"out\"\nshards = 2\n[[model]]\npath = \"models/rm-a\"\nargs = [\"--batching\", \"reference\"]\n[[benchmark]]\nname = \"b\"\n");
        assert!(
            e.contains("model[0].args") && e.contains("reference"),
            "{e}"
        );

        let e = err(&base, "output_dir = \"out\"\n[[model]]\nhub = \"a/b\"\nrevision = \"r\"\n[[benchmark]]\nname = \"j\"\ncommand = \"gen\"\n");
        assert!(e.contains("model[0].revision") && e.contains("gen"), "{e}");

        let e = err(&base, "output_dir = \"out\"\n[[model]]\npath = \"models/rm-a\"\n[[benchmark]]\nname = \"b\"\ncommand = \"v3\"\n");
        assert!(e.contains("v3"), "{e}");
    }

    #[test]
    fn a_benchmark_may_set_its_own_shards_and_reference_batching_unsharded() {
        let d = fixture_dir();
        let base = std::fs::canonicalize(d.path()).unwrap();
        let p = plan_in(
            &base,
            "output_dir = \"/abs/out\"\nshards = 4\n[[model]]\npath = \"models/rm-a\"\n\
             [[benchmark]]\nname = \"a\"\n[[benchmark]]\nname = \"b\"\nshards = 1\n\
             args = [\"--batching=reference\"]\n",
        )
        .unwrap();
        assert_eq!(p.output_dir, PathBuf::from("/abs/out"));
        assert_eq!((p.benchmarks[0].shards, p.benchmarks[1].shards), (4, 1));
    }

    #[test]
    fn absolute_applies_dot_dot() {
        assert_eq!(
            absolute(Path::new("/a/b"), "../c/./d"),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(absolute(Path::new("/a/b"), "/x/y"), PathBuf::from("/x/y"));
    }
}
