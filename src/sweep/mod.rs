//! `rewardbench sweep PLAN.toml`: many models × benchmarks × shards as one Slurm job array
//! (or one after another here, `--engine local`), its status, resubmission of failed tasks,
//! and the merge and leaderboard of what finished.
//!
//! The evaluator knows nothing of this: each task is a plain `rewardbench ... --shard i/n
//! --output_dir {output_dir}/{model}/{benchmark}` command, a task is finished when its shard
//! manifest exists, and a killed or requeued task reruns the same command (which resumes).
//! Only [`slurm`] knows Slurm's commands.

pub mod collect;
pub mod plan;
pub mod slurm;
pub mod state;
pub mod tasks;

use std::path::{Path, PathBuf};

use plan::Plan;
use slurm::{Phase, SlurmTask};
use state::{State, Submission, STATE_VERSION};
use tasks::Task;

use crate::run::observer::Observer;

/// The array script's file name in `output_dir`.
pub const SCRIPT: &str = "sweep.sh";

/// Errors of a sweep.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", file.display())]
    PlanSyntax { file: PathBuf, message: String },
    #[error("{}: {key}: {message}", file.display())]
    Plan {
        file: PathBuf,
        key: String,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    State { path: PathBuf, message: String },
    #[error("no sweep recorded in {}: submit it first (`rewardbench sweep PLAN`)", path.display())]
    NoState { path: PathBuf },
    #[error("`{command}`: {message}")]
    Slurm { command: String, message: String },
    #[error("tasks of this sweep are still {what} (job {jobs}); wait for them (`--status`) or scancel them first")]
    Active { what: String, jobs: String },
    #[error("the evaluator binary {}: {message}", path.display())]
    Binary { path: PathBuf, message: String },
    #[error("ONNX Runtime for the tasks: {0} (or set `ort_lib` in the plan)")]
    Runtime(String),
    #[error(transparent)]
    Leaderboard(#[from] crate::leaderboard::LeaderboardError),
}

/// Where tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A Slurm job array (`sbatch`).
    Slurm,
    /// One after another in this process's machine.
    Local,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Self::Slurm => "slurm",
            Self::Local => "local",
        }
    }
}

/// A task's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStatus {
    Done,
    Running,
    Pending {
        reason: String,
    },
    /// Ended without its manifest, or lost; the text says how.
    Failed {
        why: String,
    },
    /// In no submission yet.
    NotSubmitted,
}

/// Every task's status.
#[derive(Debug, Clone)]
pub struct Report {
    pub state: State,
    pub status: Vec<TaskStatus>,
}

impl Report {
    /// Counts: done, running, pending, failed, not submitted.
    pub fn counts(&self) -> [usize; 5] {
        let mut c = [0; 5];
        for s in &self.status {
            c[match s {
                TaskStatus::Done => 0,
                TaskStatus::Running => 1,
                TaskStatus::Pending { .. } => 2,
                TaskStatus::Failed { .. } => 3,
                TaskStatus::NotSubmitted => 4,
            }] += 1;
        }
        c
    }
    /// Indices of failed tasks.
    pub fn failed(&self) -> Vec<usize> {
        self.index_where(|s| matches!(s, TaskStatus::Failed { .. }))
    }
    fn index_where(&self, f: impl Fn(&TaskStatus) -> bool) -> Vec<usize> {
        (0..self.status.len())
            .filter(|&i| f(&self.status[i]))
            .collect()
    }
    /// The job ids, oldest first.
    pub fn jobs(&self) -> Vec<String> {
        self.state
            .submissions
            .iter()
            .map(|s| s.job_id.clone())
            .collect()
    }
}

/// A task's status from its files and what Slurm says of it (`None`: Slurm does not know it).
pub fn classify(task: &Task, sub: Option<&Submission>, slurm: Option<&SlurmTask>) -> TaskStatus {
    if task.is_done() {
        return TaskStatus::Done;
    }
    let Some(sub) = sub else {
        return TaskStatus::NotSubmitted;
    };
    let Some(s) = slurm else {
        return TaskStatus::Failed {
            why: format!(
                "job {}_{}: Slurm no longer knows it (ended more than MinJobAge ago) and it left no {}",
                sub.job_id,
                task.index,
                if task.sharded { "shard manifest" } else { "done marker" }
            ),
        };
    };
    let detail = || {
        let mut d = format!("job {}_{}: {}", sub.job_id, task.index, s.state);
        if let Some(e) = &s.exit_code {
            d.push_str(&format!(", exit {e}"));
        }
        if let Some(r) = s.restarts.filter(|r| *r > 0) {
            d.push_str(&format!(", {r} restart(s)"));
        }
        d
    };
    match slurm::phase(&s.state) {
        Phase::Running => TaskStatus::Running,
        Phase::Pending => TaskStatus::Pending {
            reason: s.reason.clone(),
        },
        Phase::Completed => TaskStatus::Failed {
            why: format!("{} but no shard manifest", detail()),
        },
        Phase::Ended => TaskStatus::Failed { why: detail() },
    }
}

/// The status of the sweep recorded for `plan`.
pub fn status(plan: &Plan) -> Result<Report, SweepError> {
    let path = plan.state_file();
    let state = State::read(&path)?.ok_or(SweepError::NoState { path })?;
    status_of(state)
}

fn status_of(state: State) -> Result<Report, SweepError> {
    let mut known = std::collections::BTreeMap::new();
    if state.engine == Engine::Slurm.name() {
        for sub in &state.submissions {
            known.insert(sub.job_id.clone(), slurm::query(&sub.job_id)?);
        }
    }
    let status = state
        .tasks
        .iter()
        .map(|t| {
            if state.engine == Engine::Local.name() {
                return if t.is_done() {
                    TaskStatus::Done
                } else {
                    TaskStatus::Failed {
                        why: format!("not finished; its log: {}", t.log.display()),
                    }
                };
            }
            let sub = state.latest_for(t.index);
            let s = sub.and_then(|s| known.get(&s.job_id)?.get(&t.index));
            classify(t, sub, s)
        })
        .collect();
    Ok(Report { state, status })
}

/// What a submission did.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub script: PathBuf,
    pub tasks: usize,
    /// Tasks submitted (or, locally, run) now: those not finished already.
    pub submitted: Vec<usize>,
    pub job_id: Option<String>,
    /// The `sbatch` command (shown by `--dry_run`).
    pub sbatch: String,
    /// Locally run tasks that failed, with their exit status.
    pub local_failures: Vec<(usize, String)>,
}

/// The binary the tasks run: the plan's `binary`, else this executable.
fn binary(plan: &Plan) -> Result<PathBuf, SweepError> {
    let path = match &plan.binary {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| SweepError::Binary {
            path: "rewardbench".into(),
            message: e.to_string(),
        })?,
    };
    std::fs::canonicalize(&path).map_err(|e| SweepError::Binary {
        path,
        message: e.to_string(),
    })
}

/// The ONNX Runtime library the tasks load: the plan's `ort_lib`, else the one this binary
/// loads (`ORT_DYLIB_PATH`, `.ort/lib`, ... as the evaluator finds it). `None` when no task
/// needs one (only `gen`).
fn ort_library(plan: &Plan) -> Result<Option<PathBuf>, SweepError> {
    if let Some(p) = &plan.ort_lib {
        return std::fs::canonicalize(p)
            .map(Some)
            .map_err(|e| SweepError::Runtime(format!("{}: {e}", p.display())));
    }
    if plan
        .benchmarks
        .iter()
        .all(|b| b.command == plan::Command::Gen)
    {
        return Ok(None);
    }
    // A GPU device anywhere prefers the GPU build (`make setup-gpu`), as the evaluator does.
    let args = || {
        plan.models
            .iter()
            .map(|m| &m.args)
            .chain(plan.benchmarks.iter().map(|b| &b.args))
    };
    let gpu = args().any(|a| {
        a.windows(2).any(|w| w[0] == "--device" && w[1] != "cpu")
            || a.iter()
                .any(|x| x.starts_with("--device=") && x != "--device=cpu")
    });
    let rt = crate::backend::runtime(None, gpu).map_err(|e| SweepError::Runtime(e.to_string()))?;
    Ok(Some(
        std::fs::canonicalize(&rt.library).unwrap_or_else(|_| rt.library.clone()),
    ))
}

fn mkdir(p: &Path) -> Result<(), SweepError> {
    std::fs::create_dir_all(p).map_err(|source| SweepError::Io {
        path: p.to_path_buf(),
        source,
    })
}

/// Submits the plan's unfinished tasks as one job array (`Engine::Slurm`; with `dry_run`
/// only the script is written), or runs them here one after another (`Engine::Local`).
/// Refused while tasks of an earlier submission are pending or running.
pub fn submit(
    plan: &Plan,
    engine: Engine,
    dry_run: bool,
    obs: &mut dyn Observer,
) -> Result<Submitted, SweepError> {
    let bin = binary(plan)?;
    let ort_lib = ort_library(plan)?;
    let all = tasks::tasks(plan, &bin);
    let state_path = plan.state_file();
    let previous = State::read(&state_path)?;
    if let (Some(prev), false) = (&previous, dry_run) {
        if prev.engine == Engine::Slurm.name() && !prev.submissions.is_empty() {
            let r = status_of(prev.clone())?;
            let [_, running, pending, _, _] = r.counts();
            if running + pending > 0 {
                return Err(SweepError::Active {
                    what: format!("{running} running, {pending} pending"),
                    jobs: r.jobs().join(", "),
                });
            }
        }
    }
    mkdir(&plan.output_dir)?;
    mkdir(&plan.output_dir.join("logs"))?;
    let script_path = plan.output_dir.join(SCRIPT);
    let text = slurm::script(plan, &all, ort_lib.as_deref());
    state::write_atomic(&script_path, text.as_bytes())?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&script_path, std::fs::Permissions::from_mode(0o755));
    }
    let todo: Vec<usize> = all
        .iter()
        .filter(|t| !t.is_done())
        .map(|t| t.index)
        .collect();
    let array = slurm::array_spec(plan, &todo);
    let sbatch = format!(
        "sbatch --parsable --array={array} {}",
        slurm::quote(&script_path.display().to_string())
    );
    let mut out = Submitted {
        script: script_path.clone(),
        tasks: all.len(),
        submitted: todo.clone(),
        job_id: None,
        sbatch,
        local_failures: Vec::new(),
    };
    if todo.len() < all.len() {
        obs.note(&format!(
            "{} of {} tasks already finished (their shard manifests exist); submitting the other {}",
            all.len() - todo.len(),
            all.len(),
            todo.len()
        ));
    }
    // The earlier submissions count only if they ran this same task table.
    let fresh = State {
        version: STATE_VERSION,
        plan: plan.file.clone(),
        engine: engine.name().into(),
        script: script_path.clone(),
        binary: bin.clone(),
        ort_lib: ort_lib.clone(),
        tasks: all.clone(),
        submissions: Vec::new(),
    };
    if dry_run {
        // The table alone (no job), for `--status` and `--collect` of shards run by hand;
        // a submitted sweep's record is left as it is.
        if previous
            .as_ref()
            .is_none_or(|p| p.engine == Engine::Slurm.name() && p.submissions.is_empty())
        {
            retire_logs(plan, previous.as_ref(), &all, obs)?;
            fresh.write(&state_path)?;
        }
        return Ok(out);
    }
    if todo.is_empty() {
        return Ok(out);
    }
    let mut st = match previous {
        Some(p) if p.tasks == all && p.engine == engine.name() => p,
        other => {
            retire_logs(plan, other.as_ref(), &all, obs)?;
            fresh
        }
    };
    match engine {
        Engine::Slurm => {
            let id = slurm::submit(&script_path, &array)?;
            st.submissions.push(Submission {
                job_id: id.clone(),
                tasks: todo,
                array,
                submitted_at: state::now(),
            });
            st.write(&state_path)?;
            out.job_id = Some(id);
        }
        Engine::Local => {
            st.write(&state_path)?;
            out.local_failures = run_local(&st, &todo, obs)?;
        }
    }
    Ok(out)
}

/// Logs are by task index: when a new task table replaces a recorded one, its logs move to
/// `logs-before-{unix time}/` so a log never mixes two tasks.
fn retire_logs(
    plan: &Plan,
    previous: Option<&State>,
    tasks: &[Task],
    obs: &mut dyn Observer,
) -> Result<(), SweepError> {
    let Some(p) = previous.filter(|p| p.tasks != tasks) else {
        return Ok(());
    };
    let logs = plan.output_dir.join("logs");
    let empty = std::fs::read_dir(&logs).map_or(true, |mut rd| rd.next().is_none());
    if empty {
        return Ok(());
    }
    let to = plan
        .output_dir
        .join(format!("logs-before-{}", state::now()));
    std::fs::rename(&logs, &to).map_err(|source| SweepError::Io {
        path: logs.clone(),
        source,
    })?;
    mkdir(&logs)?;
    obs.note(&format!(
        "the task table changed since {} ({} tasks then, {} now): the old logs are in {}",
        plan.state_file().display(),
        p.tasks.len(),
        tasks.len(),
        to.display()
    ));
    Ok(())
}

/// What `--resubmit_failed` did.
#[derive(Debug, Clone, Default)]
pub struct Resubmitted {
    /// The failed tasks, submitted (or, locally, run) again.
    pub tasks: Vec<usize>,
    pub job_id: Option<String>,
    /// Locally rerun tasks that failed again, with their exit status.
    pub local_failures: Vec<(usize, String)>,
}

/// Resubmits the failed tasks of the recorded sweep (same script, `--array` of just those),
/// or reruns them here for a local sweep.
pub fn resubmit_failed(plan: &Plan, obs: &mut dyn Observer) -> Result<Resubmitted, SweepError> {
    let r = status(plan)?;
    let failed = r.failed();
    let mut st = r.state;
    if failed.is_empty() {
        return Ok(Resubmitted::default());
    }
    let bin = binary(plan)?;
    if tasks::tasks(plan, &bin) != st.tasks {
        obs.warn(&format!(
            "the plan changed since {} was written; resubmitting the tasks it records (submit the plan again for the new ones)",
            plan.state_file().display()
        ));
    }
    if st.engine == Engine::Local.name() {
        let local_failures = run_local(&st, &failed, obs)?;
        return Ok(Resubmitted {
            tasks: failed,
            job_id: None,
            local_failures,
        });
    }
    let array = slurm::array_spec(plan, &failed);
    let id = slurm::submit(&st.script, &array)?;
    st.submissions.push(Submission {
        job_id: id.clone(),
        tasks: failed.clone(),
        array,
        submitted_at: state::now(),
    });
    st.write(&plan.state_file())?;
    Ok(Resubmitted {
        tasks: failed,
        job_id: Some(id),
        local_failures: Vec::new(),
    })
}

/// Runs `indices` of `st.tasks` here, one after another, each appending to its log; the
/// failed ones and how they ended.
fn run_local(
    st: &State,
    indices: &[usize],
    obs: &mut dyn Observer,
) -> Result<Vec<(usize, String)>, SweepError> {
    use std::io::Write;
    let mut failures = Vec::new();
    for &i in indices {
        let t = &st.tasks[i];
        obs.note(&format!("task {i}: {}", t.label()));
        let log_err = |source| SweepError::Io {
            path: t.log.clone(),
            source,
        };
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&t.log)
            .map_err(log_err)?;
        writeln!(log, "== task {i}: local, {}", state::now()).map_err(log_err)?;
        let mut cmd = std::process::Command::new(&t.argv[0]);
        cmd.args(&t.argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(log_err)?)
            .stderr(log.try_clone().map_err(log_err)?);
        if let Some(lib) = &st.ort_lib {
            cmd.env("ORT_DYLIB_PATH", lib);
        }
        let status = cmd.status().map_err(|e| SweepError::Binary {
            path: PathBuf::from(&t.argv[0]),
            message: e.to_string(),
        })?;
        writeln!(log, "== task {i}: {status}").map_err(log_err)?;
        if status.success() {
            if !t.sharded {
                std::fs::write(t.done_marker(), b"").map_err(|source| SweepError::Io {
                    path: t.done_marker(),
                    source,
                })?;
            }
        } else {
            failures.push((i, status.to_string()));
            if crate::run::cancel::requested() || status.code() == Some(130) {
                break;
            }
        }
    }
    Ok(failures)
}

/// The task table `--collect` uses: the recorded one, else the plan's (shards run by hand).
pub fn recorded_or_planned(plan: &Plan) -> Result<Vec<Task>, SweepError> {
    match State::read(&plan.state_file())? {
        Some(s) => Ok(s.tasks),
        None => {
            let bin = binary(plan).unwrap_or_else(|_| PathBuf::from("rewardbench"));
            Ok(tasks::tasks(plan, &bin))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(dir: &Path) -> Task {
        Task {
            index: 3,
            model: "m".into(),
            benchmark: "b".into(),
            shard: 1,
            shards: 2,
            sharded: true,
            dir: dir.to_path_buf(),
            log: dir.join("3.log"),
            argv: vec!["/bin/rb".into()],
        }
    }

    fn sub() -> Submission {
        Submission {
            job_id: "12".into(),
            tasks: vec![3],
            array: "3".into(),
            submitted_at: 0,
        }
    }

    fn slurm(state: &str, exit: &str) -> SlurmTask {
        SlurmTask {
            state: state.into(),
            reason: "BeginTime".into(),
            exit_code: Some(exit.into()),
            restarts: Some(1),
        }
    }

    /// A plan whose binary is a shell stand-in: it writes the shard's manifest (a finished
    /// shard) unless its shard is listed in `$FAIL_SHARDS`'s file.
    fn fake_sweep(base: &Path, models: &[&str]) -> Plan {
        use std::os::unix::fs::PermissionsExt;
        let bin = base.join("fake-rb.sh");
        std::fs::write(
            &bin,
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do case \"$1\" in --output_dir) out=$2;; --shard) s=$2;; esac; shift; done\n\
             if grep -qx \"$s\" \"$(dirname \"$0\")/fail\" 2>/dev/null; then echo failing >&2; exit 1; fi\n\
             i=${s%/*}; n=${s#*/}; mkdir -p \"$out/shards\"; echo '{}' > \"$out/shards/m.shard-$i-of-$n.json\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(base.join("libort.so"), "").unwrap();
        let mut text = String::from(
            "output_dir = \"out\"\nshards = 2\nbinary = \"fake-rb.sh\"\nort_lib = \"libort.so\"\n\
             [[benchmark]]\nname = \"b\"\n",
        );
        for m in models {
            std::fs::create_dir_all(base.join(m)).unwrap();
            text.push_str(&format!("[[model]]\npath = \"{m}\"\n"));
        }
        Plan::parse(&text, &base.join("plan.toml")).unwrap()
    }

    #[test]
    fn a_local_sweep_runs_what_is_unfinished_and_reruns_failures() {
        let d = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(d.path()).unwrap();
        let mut obs = crate::run::observer::Collect::default();
        let plan = fake_sweep(&base, &["m1"]);
        std::fs::write(base.join("fail"), "1/2\n").unwrap();
        let s = submit(&plan, Engine::Local, false, &mut obs).unwrap();
        assert_eq!(s.submitted, [0, 1]);
        assert_eq!(s.local_failures.len(), 1);
        assert_eq!(s.local_failures[0].0, 1);
        let r = status(&plan).unwrap();
        assert_eq!(r.counts(), [1, 0, 0, 1, 0]);
        let log = std::fs::read_to_string(&r.state.tasks[1].log).unwrap();
        assert!(
            log.contains("failing") && log.contains("== task 1: local"),
            "{log}"
        );

        std::fs::remove_file(base.join("fail")).unwrap();
        let again = resubmit_failed(&plan, &mut obs).unwrap();
        assert_eq!((again.tasks, again.local_failures.len()), (vec![1], 0));
        assert_eq!(status(&plan).unwrap().counts(), [2, 0, 0, 0, 0]);
        assert!(resubmit_failed(&plan, &mut obs).unwrap().tasks.is_empty());
        let s = submit(&plan, Engine::Local, false, &mut obs).unwrap();
        assert!(s.submitted.is_empty(), "all finished");

        // A second model changes the table: only its tasks run, the old logs move aside.
        let plan = fake_sweep(&base, &["m1", "m2"]);
        let s = submit(&plan, Engine::Local, false, &mut obs).unwrap();
        assert_eq!((s.tasks, s.submitted), (4, vec![2, 3]));
        let moved: Vec<_> = std::fs::read_dir(base.join("out"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("logs-before-"))
            .collect();
        assert_eq!(moved.len(), 1);
        assert!(moved[0].path().join("1.log").is_file());
        assert!(!base.join("out/logs/1.log").exists());
        assert!(
            obs.notes.iter().any(|n| n.contains("old logs")),
            "{:?}",
            obs.notes
        );
        let st = State::read(&plan.state_file()).unwrap().unwrap();
        assert_eq!(st.tasks.len(), 4);
        assert_eq!(st.ort_lib, Some(base.join("libort.so")));
    }

    #[test]
    fn status_combines_the_manifest_with_slurms_state() {
        let d = tempfile::tempdir().unwrap();
        let t = task(d.path());
        let s = sub();
        assert_eq!(classify(&t, None, None), TaskStatus::NotSubmitted);
        assert_eq!(
            classify(&t, Some(&s), Some(&slurm("RUNNING", "0:0"))),
            TaskStatus::Running
        );
        assert_eq!(
            classify(&t, Some(&s), Some(&slurm("PENDING", "0:9"))),
            TaskStatus::Pending {
                reason: "BeginTime".into()
            }
        );
        let TaskStatus::Failed { why } = classify(&t, Some(&s), Some(&slurm("FAILED", "0:9")))
        else {
            panic!("FAILED is a failure");
        };
        assert_eq!(why, "job 12_3: FAILED, exit 0:9, 1 restart(s)");
        let TaskStatus::Failed { why } = classify(&t, Some(&s), Some(&slurm("COMPLETED", "0:0")))
        else {
            panic!("COMPLETED without a manifest is a failure");
        };
        assert!(why.contains("no shard manifest"), "{why}");
        let TaskStatus::Failed { why } = classify(&t, Some(&s), None) else {
            panic!("a task Slurm forgot, without a manifest, is a failure");
        };
        assert!(why.contains("MinJobAge"), "{why}");
        // The manifest wins over whatever Slurm says.
        std::fs::create_dir_all(d.path().join("shards")).unwrap();
        std::fs::write(d.path().join("shards/m.shard-1-of-2.json"), "{}").unwrap();
        assert_eq!(
            classify(&t, Some(&s), Some(&slurm("FAILED", "0:9"))),
            TaskStatus::Done
        );
        assert_eq!(classify(&t, None, None), TaskStatus::Done);
    }
}
