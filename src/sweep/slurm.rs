//! Slurm: the `sbatch` array script, submission (`sbatch --parsable`), and task states read
//! from `squeue` and `scontrol` (no accounting database needed). The only module that knows
//! Slurm's commands.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::plan::Plan;
use super::tasks::Task;
use super::SweepError;

/// `s` quoted for a POSIX shell (single quotes).
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Sorted task indices as an array spec: `0-3,5,7-9`.
pub fn compress(indices: &[usize]) -> String {
    let mut v = indices.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        while i + 1 < v.len() && v[i + 1] == v[i] + 1 {
            i += 1;
        }
        parts.push(if v[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", v[i])
        });
        i += 1;
    }
    parts.join(",")
}

/// The indices of an array spec (`2-5`, `[1,3-4]`, `0-7%2`, `0-9:2`); `None` if it is not one.
pub fn expand(spec: &str) -> Option<Vec<usize>> {
    let spec = spec.trim().trim_start_matches('[').trim_end_matches(']');
    let spec = spec.split('%').next()?;
    let mut out = Vec::new();
    for part in spec.split(',') {
        let (range, step) = match part.split_once(':') {
            Some((r, s)) => (r, s.parse::<usize>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                out.extend((a..=b).step_by(step));
            }
            None => out.push(range.parse().ok()?),
        }
    }
    Some(out)
}

/// The array spec for `indices`, with the plan's `%max_parallel`.
pub fn array_spec(plan: &Plan, indices: &[usize]) -> String {
    let mut s = compress(indices);
    if let Some(p) = plan.slurm.max_parallel {
        s.push_str(&format!("%{p}"));
    }
    s
}

/// The `sbatch` script: one array task per sweep task; task `i` runs `tasks[i]`'s command
/// line, with `ORT_DYLIB_PATH` set to `ort_lib`, and exits with its status. A sharded
/// command replaces the shell (`exec`): `scancel -b` or a node's kill must stop the
/// evaluator itself, not leave it running beside its requeued copy.
pub fn script(plan: &Plan, tasks: &[Task], ort_lib: Option<&Path>) -> String {
    let s = &plan.slurm;
    let logs = plan.output_dir.join("logs");
    let mut o = String::new();
    let all: Vec<usize> = tasks.iter().map(|t| t.index).collect();
    o.push_str("#!/bin/bash\n");
    o.push_str(&format!(
        "# rewardbench sweep of {} ({} tasks). Written by `rewardbench sweep`; it is\n\
         # rewritten on every submission. Task i runs case i below; without Slurm:\n\
         # SLURM_ARRAY_TASK_ID=i bash {}\n",
        plan.file.display(),
        tasks.len(),
        plan.output_dir.join(super::SCRIPT).display()
    ));
    let mut opt = |line: String| {
        o.push_str("#SBATCH ");
        o.push_str(&line);
        o.push('\n');
    };
    opt(format!("--job-name={}", s.job_name));
    opt(format!("--array={}", array_spec(plan, &all)));
    opt("--requeue".into());
    opt("--open-mode=append".into());
    opt(format!(
        "--output={}",
        quote(&logs.join("%a.log").display().to_string())
    ));
    opt(format!(
        "--chdir={}",
        quote(&plan.output_dir.display().to_string())
    ));
    opt("--ntasks=1".into());
    opt(format!("--cpus-per-task={}", s.cpus_per_task));
    for (k, v) in [
        ("partition", &s.partition),
        ("account", &s.account),
        ("qos", &s.qos),
        ("mem", &s.mem),
        ("time", &s.time),
        ("gres", &s.gres),
    ] {
        if let Some(v) = v {
            opt(format!("--{k}={v}"));
        }
    }
    for e in &s.extra {
        opt(e.clone());
    }
    o.push_str("set -u\n");
    if let Some(lib) = ort_lib {
        o.push_str(&format!(
            "export ORT_DYLIB_PATH={}\n",
            quote(&lib.display().to_string())
        ));
    }
    for l in &s.setup {
        o.push_str(l);
        o.push('\n');
    }
    o.push_str(
        "task=\"${SLURM_ARRAY_TASK_ID:?set by sbatch --array (or by hand: SLURM_ARRAY_TASK_ID=i)}\"\n\
         echo \"== task $task: job ${SLURM_JOB_ID:-none}, restart ${SLURM_RESTART_COUNT:-0}, $(hostname), $(date -u +%Y-%m-%dT%H:%M:%SZ)\"\n\
         marker=\n\
         case \"$task\" in\n",
    );
    for t in tasks {
        let argv: Vec<String> = t.argv.iter().map(|a| quote(a)).collect();
        o.push_str(&format!(
            "  {}) # {}\n    cmd=({})",
            t.index,
            t.label(),
            argv.join(" ")
        ));
        if !t.sharded {
            o.push_str(&format!(
                "\n    marker={}",
                quote(&t.done_marker().display().to_string())
            ));
        }
        o.push_str(" ;;\n");
    }
    o.push_str(&format!(
        "  *) echo \"no task $task in this sweep (0-{})\" >&2; exit 2 ;;\n\
         esac\n\
         # The evaluator replaces this shell, so a signal to the batch step reaches it.\n\
         if [ -z \"$marker\" ]; then exec \"${{cmd[@]}}\"; fi\n\
         \"${{cmd[@]}}\"\n\
         status=$?\n\
         if [ \"$status\" -eq 0 ] && [ -n \"$marker\" ]; then : > \"$marker\"; fi\n\
         echo \"== task $task: exit $status\"\n\
         exit \"$status\"\n",
        tasks.len().saturating_sub(1)
    ));
    o
}

/// One array task as Slurm reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlurmTask {
    /// `JobState` (`PENDING`, `RUNNING`, `COMPLETED`, `FAILED`, ...).
    pub state: String,
    pub reason: String,
    /// `ExitCode` (`code:signal`), from scontrol.
    pub exit_code: Option<String>,
    /// `Restarts` (requeues), from scontrol.
    pub restarts: Option<u32>,
}

/// Where a Slurm state leaves a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    /// Ended with success (`COMPLETED`).
    Completed,
    /// Ended otherwise (failed, cancelled, timed out, out of memory, node failure, ...).
    Ended,
}

/// The phase of a `JobState` (squeue's `%T` or scontrol's long names).
pub fn phase(state: &str) -> Phase {
    match state {
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD"
        | "SPECIAL_EXIT" | "CONFIGURING" => Phase::Pending,
        "RUNNING" | "COMPLETING" | "SUSPENDED" | "STOPPED" | "STAGE_OUT" | "SIGNALING"
        | "RESIZING" => Phase::Running,
        "COMPLETED" => Phase::Completed,
        _ => Phase::Ended,
    }
}

/// Parses `squeue -h -r -t all -o '%F|%K|%T|%r'` lines into task index -> state.
pub fn parse_squeue(text: &str) -> BTreeMap<usize, SlurmTask> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.trim().splitn(4, '|').collect();
        let [_, task, state, reason] = f[..] else {
            continue;
        };
        let Some(indices) = expand(task) else {
            continue;
        };
        for i in indices {
            out.insert(
                i,
                SlurmTask {
                    state: state.to_string(),
                    reason: reason.to_string(),
                    ..Default::default()
                },
            );
        }
    }
    out
}

/// Parses `scontrol -o show job ID` (one `Key=Value ...` line per array record; a pending
/// range is one record) into task index -> state, exit code and restarts.
pub fn parse_scontrol(text: &str) -> BTreeMap<usize, SlurmTask> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let kv: BTreeMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        let (Some(task), Some(state)) = (kv.get("ArrayTaskId"), kv.get("JobState")) else {
            continue;
        };
        let Some(indices) = expand(task) else {
            continue;
        };
        for i in indices {
            out.insert(
                i,
                SlurmTask {
                    state: state.to_string(),
                    reason: kv.get("Reason").unwrap_or(&"").to_string(),
                    exit_code: kv.get("ExitCode").map(|s| s.to_string()),
                    restarts: kv.get("Restarts").and_then(|s| s.parse().ok()),
                },
            );
        }
    }
    out
}

/// Runs a Slurm command; `Ok(None)` when Slurm no longer knows the job (it ended more than
/// MinJobAge ago).
fn run(program: &str, args: &[&str]) -> Result<Option<String>, SweepError> {
    let cmd = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| SweepError::Slurm {
            command: cmd.clone(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("{program} not found: is this a Slurm login node? (--engine local runs the tasks here)")
            } else {
                e.to_string()
            },
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("Invalid job id") {
            return Ok(None);
        }
        return Err(SweepError::Slurm {
            command: cmd,
            message: format!("{}: {}", out.status, stderr.trim()),
        });
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The tasks of array job `job` that Slurm still knows: squeue's states, with scontrol's
/// exit codes and restart counts.
pub fn query(job: &str) -> Result<BTreeMap<usize, SlurmTask>, SweepError> {
    let squeue = run(
        "squeue",
        &["-h", "-r", "-t", "all", "-j", job, "-o", "%F|%K|%T|%r"],
    )?;
    let scontrol = run("scontrol", &["-o", "show", "job", job])?;
    let mut out = scontrol.as_deref().map(parse_scontrol).unwrap_or_default();
    for (i, q) in squeue.as_deref().map(parse_squeue).unwrap_or_default() {
        let e = out.entry(i).or_default();
        e.state = q.state;
        e.reason = q.reason;
    }
    Ok(out)
}

/// `sbatch --parsable --array=SPEC SCRIPT`: the new job's id.
pub fn submit(script: &Path, array: &str) -> Result<String, SweepError> {
    let arg = format!("--array={array}");
    let path = script.display().to_string();
    let out = run("sbatch", &["--parsable", &arg, &path])?.unwrap_or_default();
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let id = out.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(SweepError::Slurm {
            command: format!("sbatch --parsable {arg} {path}"),
            message: format!("unexpected output `{}`", out.trim()),
        });
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_specs_round_trip() {
        assert_eq!(compress(&[5, 0, 1, 2, 3, 7, 8, 9, 3]), "0-3,5,7-9");
        assert_eq!(compress(&[4]), "4");
        assert_eq!(compress(&[]), "");
        assert_eq!(expand("0-3,5,7-9").unwrap(), [0, 1, 2, 3, 5, 7, 8, 9]);
        assert_eq!(expand("[2-4%2]").unwrap(), [2, 3, 4]);
        assert_eq!(expand("0-6:3").unwrap(), [0, 3, 6]);
        assert_eq!(expand("N/A"), None);
        assert_eq!(expand("4-2"), None);
    }

    #[test]
    fn quoting_keeps_words_and_escapes_the_rest() {
        assert_eq!(quote("/a/b-c_1.0"), "/a/b-c_1.0");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote(""), "''");
    }

    // As squeue 22.05 prints them (`-h -r -t all -o '%F|%K|%T|%r'`; without `-r` a
    // pending range is one line).
    const SQUEUE: &str = "\
12|3|PENDING|BeginTime
12|4|PENDING|Priority
12|0|RUNNING|None
12|1|FAILED|NonZeroExitCode
12|2|COMPLETED|None
12|[5-6%2]|PENDING|JobArrayTaskLimit
";

    // As `scontrol -o show job 12` prints them (trimmed): a pending range is one record.
    const SCONTROL: &str = "\
JobId=15 ArrayJobId=12 ArrayTaskId=3 JobName=rewardbench-sweep UserId=root(0) JobState=PENDING Reason=BeginTime Dependency=(null) Requeue=1 Restarts=1 BatchFlag=1 ExitCode=0:9 StdOut=/o/logs/3.log
JobId=12 ArrayJobId=12 ArrayTaskId=4-6 ArrayTaskThrottle=2 JobName=rewardbench-sweep JobState=PENDING Reason=Priority Restarts=0 ExitCode=0:0
JobId=13 ArrayJobId=12 ArrayTaskId=0 JobName=rewardbench-sweep JobState=RUNNING Reason=None Restarts=0 ExitCode=0:0
JobId=14 ArrayJobId=12 ArrayTaskId=1 JobName=rewardbench-sweep JobState=FAILED Reason=NonZeroExitCode Restarts=0 ExitCode=1:0
JobId=16 ArrayJobId=12 ArrayTaskId=2 JobName=rewardbench-sweep JobState=COMPLETED Reason=None Restarts=0 ExitCode=0:0
";

    #[test]
    fn squeue_and_scontrol_lines_give_each_task_its_state() {
        let q = parse_squeue(SQUEUE);
        assert_eq!(q.len(), 7);
        assert_eq!(q[&1].state, "FAILED");
        assert_eq!(q[&3].reason, "BeginTime");
        assert_eq!(q[&6].reason, "JobArrayTaskLimit");
        let c = parse_scontrol(SCONTROL);
        assert_eq!(c.len(), 7);
        assert_eq!(c[&3].restarts, Some(1));
        assert_eq!(c[&3].exit_code.as_deref(), Some("0:9"));
        assert_eq!(c[&5].state, "PENDING");
        assert_eq!(c[&1].exit_code.as_deref(), Some("1:0"));
        assert_eq!(phase(&q[&0].state), Phase::Running);
        assert_eq!(phase(&q[&1].state), Phase::Ended);
        assert_eq!(phase(&q[&2].state), Phase::Completed);
        assert_eq!(phase(&q[&3].state), Phase::Pending);
        for s in [
            "CANCELLED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
            "NODE_FAIL",
            "PREEMPTED",
        ] {
            assert_eq!(phase(s), Phase::Ended, "{s}");
        }
        assert!(parse_squeue("garbage\n\n").is_empty());
    }

    #[test]
    fn the_script_runs_each_task_by_its_array_index() {
        let d = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir_all(base.join("models/rm a")).unwrap();
        let text = "output_dir = \"out\"\nshards = 2\n[[model]]\npath = \"models/rm a\"\n\
                    [[benchmark]]\nname = \"core\"\n[[benchmark]]\nname = \"j\"\ncommand = \"gen\"\n\
                    [slurm]\npartition = \"ci\"\ncpus_per_task = 2\ntime = \"00:20:00\"\n\
                    mem = \"4G\"\nmax_parallel = 3\nextra = [\"--constraint=a100\"]\n\
                    setup = [\"module load cuda\"]\n";
        let plan = Plan::parse(text, &base.join("plan.toml")).unwrap();
        let tasks = super::super::tasks::tasks(&plan, Path::new("/opt/rb/rewardbench"));
        let s = script(
            &plan,
            &tasks,
            Some(Path::new("/opt/ort/libonnxruntime.so.1.31.1")),
        );
        let out = base.join("out");
        for line in [
            "#!/bin/bash",
            "#SBATCH --array=0-2%3",
            "#SBATCH --requeue",
            "#SBATCH --open-mode=append",
            &format!("#SBATCH --output={}/logs/%a.log", out.display()),
            "#SBATCH --partition=ci",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --time=00:20:00",
            "#SBATCH --mem=4G",
            "#SBATCH --constraint=a100",
            "export ORT_DYLIB_PATH=/opt/ort/libonnxruntime.so.1.31.1",
            "module load cuda",
            "exit \"$status\"",
        ] {
            assert!(s.lines().any(|l| l == line), "no line `{line}` in\n{s}");
        }
        // #SBATCH lines must come before the first command, or sbatch ignores them.
        let lines: Vec<&str> = s.lines().collect();
        let last_opt = lines
            .iter()
            .rposition(|l| l.starts_with("#SBATCH"))
            .unwrap();
        let first_cmd = lines.iter().position(|l| *l == "set -u").unwrap();
        assert!(last_opt < first_cmd);
        let model = base.join("models/rm a").display().to_string();
        assert!(s.contains(&format!(
            "  1) # rm a/core shard 1/2\n    cmd=(/opt/rb/rewardbench --model '{model}' --output_dir '{}' --shard 1/2 --threads 2) ;;",
            out.join("rm a/core").display()
        )), "{s}");
        assert!(
            s.contains("  2) # rm a/j\n    cmd=(/opt/rb/rewardbench gen --model"),
            "{s}"
        );
        assert!(s.contains(&format!(
            "marker='{}' ;;",
            out.join("rm a/j")
                .join(super::super::tasks::DONE_MARKER)
                .display()
        )));
        assert_eq!(array_spec(&plan, &[1, 2]), "1-2%3");
    }

    /// The script in a shell: the case picks the command, its status is the task's.
    #[test]
    fn the_script_exits_with_the_commands_status() {
        let d = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir_all(base.join("m")).unwrap();
        let text = "output_dir = \"out\"\nshards = 2\n[[model]]\npath = \"m\"\n\
                    [[benchmark]]\nname = \"b\"\n[[benchmark]]\nname = \"j\"\ncommand = \"gen\"\n";
        let plan = Plan::parse(text, &base.join("plan.toml")).unwrap();
        // A stand-in binary: exits 3 for shard 1, else 0; prints its arguments.
        let bin = base.join("fake.sh");
        std::fs::write(
            &bin,
            "#!/bin/sh\necho \"args: $*\"\ncase \"$*\" in *'--shard 1/2'*) exit 3;; esac\nexit 0\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tasks = super::super::tasks::tasks(&plan, &bin);
        let path = base.join("sweep.sh");
        std::fs::write(&path, script(&plan, &tasks, None)).unwrap();
        let run = |i: &str| {
            Command::new("bash")
                .arg(&path)
                .env("SLURM_ARRAY_TASK_ID", i)
                .output()
                .unwrap()
        };
        let o = run("0");
        assert_eq!(o.status.code(), Some(0));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("--shard 0/2") && text.contains("== task 0: job"),
            "{text}"
        );
        assert_eq!(run("1").status.code(), Some(3));
        assert_eq!(run("9").status.code(), Some(2));
        // The unsharded task runs as a child: its marker on success, then the exit line.
        std::fs::create_dir_all(&tasks[2].dir).unwrap();
        assert!(!tasks[2].is_done());
        let o = run("2");
        assert_eq!(o.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&o.stdout).contains("== task 2: exit 0"));
        assert!(tasks[2].is_done());
    }
}
