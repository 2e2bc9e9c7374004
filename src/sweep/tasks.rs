//! The task table: one task per model × benchmark × shard, numbered model-major (then
//! benchmark, then shard), each with its full command line in absolute paths.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::{Command, Dataset, Plan, Source};

/// One task of the sweep (one Slurm array index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub index: usize,
    /// The model's name (its folder under `output_dir`).
    pub model: String,
    pub benchmark: String,
    pub shard: usize,
    pub shards: usize,
    /// Whether the command runs with `--shard` (and its folder needs `merge`): a sharded
    /// command with more than one shard.
    pub sharded: bool,
    /// The run folder, `{output_dir}/{model}/{benchmark}`.
    pub dir: PathBuf,
    /// The task's log, appended to by every attempt.
    pub log: PathBuf,
    /// The command line; `argv[0]` is the evaluator binary.
    pub argv: Vec<String>,
}

impl Task {
    /// Whether the task has finished: its shard manifest exists (written last, atomically, by
    /// the evaluator), or for an unsharded command the marker the task writes on success.
    pub fn is_done(&self) -> bool {
        if self.sharded {
            let suffix = format!(".shard-{}-of-{}.json", self.shard, self.shards);
            find_suffix(&self.dir.join("shards"), &suffix)
        } else {
            self.done_marker().is_file()
        }
    }

    /// The marker of a finished unsharded task (`gen`, or one shard).
    pub fn done_marker(&self) -> PathBuf {
        self.dir.join(DONE_MARKER)
    }

    /// `model/benchmark` and, when sharded, `shard i/n`.
    pub fn label(&self) -> String {
        if self.sharded {
            format!(
                "{}/{} shard {}/{}",
                self.model, self.benchmark, self.shard, self.shards
            )
        } else {
            format!("{}/{}", self.model, self.benchmark)
        }
    }
}

/// File a finished unsharded task leaves in its run folder.
pub const DONE_MARKER: &str = "sweep-task.done";

/// Whether a file whose name ends with `suffix` is under `dir` (searched recursively: hub
/// names such as `org/name` make a subfolder).
fn find_suffix(dir: &Path, suffix: &str) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            find_suffix(&p, suffix)
        } else {
            e.file_name().to_string_lossy().ends_with(suffix)
        }
    })
}

/// The tasks of `plan`, run by `binary`.
pub fn tasks(plan: &Plan, binary: &Path) -> Vec<Task> {
    let mut out = Vec::new();
    for m in &plan.models {
        for b in &plan.benchmarks {
            let dir = plan.output_dir.join(&m.name).join(&b.name);
            for shard in 0..b.shards {
                let index = out.len();
                let mut argv = vec![binary.display().to_string()];
                argv.extend(b.command.word().map(str::to_string));
                argv.push("--model".into());
                argv.push(m.model_arg());
                if let Source::Hub {
                    revision: Some(r), ..
                } = &m.source
                {
                    // Plan::parse refuses a revision for `gen`.
                    argv.push("--revision".into());
                    argv.push(r.clone());
                }
                match &b.dataset {
                    Dataset::Default => {}
                    Dataset::Local(p) => {
                        argv.push("--dataset".into());
                        argv.push(p.display().to_string());
                    }
                    Dataset::Hub(id) => {
                        argv.push("--dataset".into());
                        argv.push(id.clone());
                    }
                }
                if let Some(s) = &b.split {
                    argv.push("--split".into());
                    argv.push(s.clone());
                }
                argv.push("--output_dir".into());
                argv.push(dir.display().to_string());
                // One shard: the plain command (no `--shard`, no merge), so runs that cannot
                // shard (DPO, --save_all, reference batching) still sweep.
                let sharded = b.shards > 1;
                if sharded {
                    argv.push("--shard".into());
                    argv.push(format!("{shard}/{}", b.shards));
                }
                // ONNX Runtime's threads: the cores Slurm gives the task, unless the plan says.
                let has_threads = m
                    .args
                    .iter()
                    .chain(&b.args)
                    .any(|a| a == "--threads" || a.starts_with("--threads="));
                if b.command != Command::Gen && !has_threads {
                    argv.push("--threads".into());
                    argv.push(plan.slurm.cpus_per_task.to_string());
                }
                argv.extend(m.args.iter().cloned());
                argv.extend(b.args.iter().cloned());
                out.push(Task {
                    index,
                    model: m.name.clone(),
                    benchmark: b.name.clone(),
                    shard,
                    shards: b.shards,
                    sharded,
                    dir: dir.clone(),
                    log: plan.output_dir.join("logs").join(format!("{index}.log")),
                    argv,
                });
            }
        }
    }
    out
}

/// The run folders (model × benchmark), in task order, each with its tasks.
pub fn runs(tasks: &[Task]) -> Vec<(&Path, Vec<&Task>)> {
    let mut out: Vec<(&Path, Vec<&Task>)> = Vec::new();
    for t in tasks {
        match out.iter_mut().find(|(d, _)| *d == t.dir.as_path()) {
            Some((_, v)) => v.push(t),
            None => out.push((t.dir.as_path(), vec![t])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> (tempfile::TempDir, Plan) {
        let d = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(d.path()).unwrap();
        for m in ["models/rm-a", "models/rm-b"] {
            std::fs::create_dir_all(base.join(m)).unwrap();
        }
        std::fs::write(base.join("rows.jsonl"), "").unwrap();
        let text = r#"
output_dir = "out"
shards = 2
[[model]]
path = "models/rm-a"
args = ["--chat_template", "tulu"]
[[model]]
hub = "org/rm-c"
revision = "v1"
[[benchmark]]
name = "harmless"
dataset = "rows.jsonl"
[[benchmark]]
name = "rb2"
command = "v2"
shards = 3
args = ["--batch_size", "4"]
[slurm]
cpus_per_task = 2
"#;
        let p = Plan::parse(text, &base.join("plan.toml")).unwrap();
        (d, p)
    }

    #[test]
    fn one_task_per_model_benchmark_shard_with_absolute_command_lines() {
        let (_d, p) = plan();
        let base = p.file.parent().unwrap().to_path_buf();
        let ts = tasks(&p, Path::new("/opt/rb/rewardbench"));
        // Per model: harmless 2 + rb2 3.
        assert_eq!(ts.len(), 10);
        assert!(ts.iter().enumerate().all(|(i, t)| t.index == i));
        let t = &ts[1];
        assert_eq!(
            (t.model.as_str(), t.benchmark.as_str()),
            ("rm-a", "harmless")
        );
        assert_eq!((t.shard, t.shards, t.sharded), (1, 2, true));
        let out = base.join("out/rm-a/harmless");
        assert_eq!(t.dir, out);
        assert_eq!(t.log, base.join("out/logs/1.log"));
        let expect: Vec<String> = [
            "/opt/rb/rewardbench",
            "--model",
            base.join("models/rm-a").to_str().unwrap(),
            "--dataset",
            base.join("rows.jsonl").to_str().unwrap(),
            "--output_dir",
            out.to_str().unwrap(),
            "--shard",
            "1/2",
            "--threads",
            "2",
            "--chat_template",
            "tulu",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(t.argv, expect);

        let t = &ts[4];
        assert_eq!((t.benchmark.as_str(), t.shard, t.shards), ("rb2", 2, 3));
        assert_eq!(&t.argv[1..3], ["v2", "--model"]);
        assert!(t.argv.ends_with(&["--batch_size".into(), "4".into()]));
        assert!(
            !t.argv.contains(&"--dataset".to_string()),
            "v2's default set"
        );

        let t = &ts[5];
        assert_eq!(t.model, "org/rm-c");
        assert_eq!(t.dir, base.join("out/org/rm-c/harmless"));
        assert_eq!(&t.argv[1..5], ["--model", "org/rm-c", "--revision", "v1"]);

        let rs = runs(&ts);
        assert_eq!(rs.len(), 4);
        assert_eq!(rs[1].1.len(), 3);
    }

    fn gen_task(base: &Path) -> Task {
        let text = "output_dir = \"out\"\nshards = 2\n[[model]]\npath = \"models/rm-a\"\n\
                    [[benchmark]]\nname = \"judge\"\ncommand = \"gen\"\n";
        let p = Plan::parse(text, &base.join("plan.toml")).unwrap();
        let ts = tasks(&p, Path::new("/bin/rb"));
        assert_eq!(ts.len(), 1, "gen is one task per model");
        ts.into_iter().next().unwrap()
    }

    #[test]
    fn one_shard_runs_the_plain_command() {
        let (_d, p) = plan();
        let base = p.file.parent().unwrap();
        let text = "output_dir = \"out\"\n[[model]]\npath = \"models/rm-a\"\n\
                    [[benchmark]]\nname = \"dpo\"\nargs = [\"--ref_model\", \"r\"]\n";
        let p = Plan::parse(text, &base.join("plan.toml")).unwrap();
        let ts = tasks(&p, Path::new("/bin/rb"));
        assert_eq!(ts.len(), 1);
        assert!(!ts[0].sharded && !ts[0].argv.iter().any(|a| a == "--shard"));
        assert!(ts[0].argv.iter().any(|a| a == "--threads"));
        assert_eq!(ts[0].label(), "rm-a/dpo");
    }

    #[test]
    fn gen_runs_unsharded_without_threads() {
        let (_d, p) = plan();
        let base = p.file.parent().unwrap();
        let t = gen_task(base);
        assert_eq!((t.benchmark.as_str(), t.sharded), ("judge", false));
        assert_eq!(&t.argv[..3], ["/bin/rb", "gen", "--model"]);
        assert!(!t.argv.iter().any(|a| a == "--shard" || a == "--threads"));
        assert_eq!(
            t.done_marker(),
            base.join("out/rm-a/judge").join(DONE_MARKER)
        );
        assert!(!t.is_done());
        std::fs::create_dir_all(&t.dir).unwrap();
        std::fs::write(t.done_marker(), "").unwrap();
        assert!(t.is_done());
    }

    #[test]
    fn done_means_the_manifest_or_the_marker_exists() {
        let (_d, p) = plan();
        let ts = tasks(&p, Path::new("/bin/rb"));
        let (t0, t1) = (&ts[0], &ts[1]);
        assert!(!t0.is_done() && !t1.is_done());
        let shards = t0.dir.join("shards");
        std::fs::create_dir_all(&shards).unwrap();
        // A store alone is not a finished shard; nor is another shard count's manifest.
        std::fs::write(shards.join("rm-a.shard-0-of-2.store.jsonl"), "").unwrap();
        std::fs::write(shards.join("rm-a.shard-0-of-3.json"), "{}").unwrap();
        assert!(!t0.is_done());
        std::fs::write(shards.join("rm-a.shard-0-of-2.json"), "{}").unwrap();
        assert!(t0.is_done() && !t1.is_done());
        // Hub names make a subfolder; v2 names carry `.v2`.
        std::fs::create_dir_all(shards.join("org")).unwrap();
        std::fs::write(shards.join("org/x.v2.shard-1-of-2.json"), "{}").unwrap();
        assert!(t1.is_done());
    }
}
