//! `rewardbench sweep` on a real Slurm cluster (`make test-cluster`; CI starts one with
//! .ci/slurm-up.sh): two fixture models × two datasets (v1 LLMBar, RewardBench 2) × two
//! shards as one job array. One running task is killed (`scancel -b -s KILL`) and requeued
//! (`scontrol requeue`), another killed and resubmitted (`--resubmit_failed`); after the
//! array ends, `--collect`'s merged files and leaderboards must equal single-machine runs
//! byte for byte. Without a cluster the test says SKIPPED loudly; with `CI` set it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::sweep::{equals_single_machine_runs, sweep, tasks, text, write_plan};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {}: {e}", args.join(" ")))
}

/// Why no cluster can be used here, if none can.
fn no_cluster() -> Option<String> {
    let o = match Command::new("sinfo").args(["-h", "-o", "%t"]).output() {
        Ok(o) => o,
        Err(e) => return Some(format!("sinfo not found ({e}); install slurm-wlm and munge and run `bash .ci/slurm-up.sh up` as root")),
    };
    let states = String::from_utf8_lossy(&o.stdout);
    if !o.status.success()
        || !states
            .lines()
            .any(|s| matches!(s.trim(), "idle" | "mix" | "alloc"))
    {
        return Some(format!(
            "the Slurm cluster is down (sinfo: {}); start it with `bash .ci/slurm-up.sh up`",
            text(&o).trim()
        ));
    }
    None
}

/// `scancel`s the sweep's jobs if the test stops early.
struct Jobs(Vec<String>);

impl Drop for Jobs {
    fn drop(&mut self) {
        for j in &self.0 {
            let _ = Command::new("scancel").arg(j).output();
        }
    }
}

/// `scontrol -o show job JOB_TASK`'s `Key=Value` fields.
fn job_fields(job_task: &str) -> Vec<(String, String)> {
    let o = run("scontrol", &["-o", "show", "job", job_task]);
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field(job_task: &str, key: &str) -> String {
    job_fields(job_task)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `limit`.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Array tasks of `job` that are RUNNING now.
fn running(job: &str) -> Vec<usize> {
    let o = run(
        "squeue",
        &["-h", "-r", "-t", "RUNNING", "-j", job, "-o", "%K"],
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Whether task `t` has scored something (its shard store has a line after the header) and
/// not finished (no manifest).
fn in_progress(t: &Value) -> bool {
    let dir = PathBuf::from(t["dir"].as_str().unwrap()).join("shards");
    let label = format!(".shard-{}-of-{}.", t["shard"], t["shards"]);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return false;
    };
    let (mut scored, mut manifest) = (false, false);
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.contains(&label) {
            continue;
        }
        if name.ends_with(".store.jsonl") {
            let lines =
                std::fs::read(e.path()).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
            scored |= lines >= 2;
        } else if name.ends_with(".json") {
            manifest = true;
        }
    }
    scored && !manifest
}

/// Kills one running task of `job` other than `not`, preferably once it has scored
/// something; once Slurm reports it FAILED (killed by signal 9), returns its index and
/// whether it was killed mid-run (its store partly written).
fn kill_one_running(job: &str, out: &Path, not: Option<usize>) -> (usize, bool) {
    let all = tasks(out);
    let i = wait_for(Duration::from_secs(120), "a running task", || {
        running(job).into_iter().find(|i| Some(*i) != not)
    });
    // Up to 10 s for it to get going, so the requeued run resumes a partial store.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10)
        && !in_progress(&all[i])
        && running(job).contains(&i)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let partial = in_progress(&all[i]);
    let id = format!("{job}_{i}");
    let o = run("scancel", &["-b", "-s", "KILL", &id]);
    assert!(o.status.success(), "scancel -b -s KILL {id}: {}", text(&o));
    let state = wait_for(Duration::from_secs(60), "the killed task to end", || {
        let s = field(&id, "JobState");
        (!matches!(s.as_str(), "RUNNING" | "COMPLETING" | "")).then_some(s)
    });
    if state == "COMPLETED" {
        // It finished before the signal landed: try another.
        eprintln!("task {i} completed before it was killed; killing another");
        return kill_one_running(job, out, Some(i));
    }
    assert_eq!(
        state,
        "FAILED",
        "{}",
        text(&run("scontrol", &["-o", "show", "job", &id]))
    );
    assert_eq!(field(&id, "ExitCode"), "0:9");
    if partial {
        // The evaluator itself died (the script execs it): no manifest, even a while later.
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            in_progress(&all[i]),
            "task {i} finished after its kill: it outlived the batch shell"
        );
        eprintln!("task {i} killed mid-run (its store partly written)");
    }
    (i, partial)
}

fn status_line(plan: &Path) -> (String, String) {
    let o = sweep(plan, &["--status"]);
    assert!(o.status.success(), "--status: {}", text(&o));
    let all = text(&o);
    let line = all
        .lines()
        .find(|l| l.starts_with("tasks: "))
        .unwrap_or_else(|| panic!("no `tasks:` line in\n{all}"))
        .to_string();
    (line, all)
}

fn log_tails(out: &Path) -> String {
    let mut s = String::new();
    let mut logs: Vec<PathBuf> = std::fs::read_dir(out.join("logs"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    logs.sort();
    for l in logs {
        let t = std::fs::read_to_string(&l).unwrap_or_default();
        let tail: Vec<&str> = t.lines().rev().take(8).collect();
        s.push_str(&format!("--- {}\n", l.display()));
        for line in tail.into_iter().rev() {
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

#[test]
fn sweep_on_slurm_survives_a_killed_task_and_equals_single_machine_runs() {
    if let Some(why) = no_cluster() {
        if std::env::var_os("CI").is_some() {
            panic!("CI must run the Slurm test, but {why}");
        }
        eprintln!("\n\n*** SKIPPED: cluster::sweep_on_slurm...: {why} ***\n\n");
        return;
    }
    let t_start = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    let out = base.join("sweep-results");
    let plan = write_plan(
        &base,
        &["tiny-llama-rm", "tiny-gpt2-rm"],
        true,
        "partition = \"ci\"\ncpus_per_task = 1\ntime = \"00:10:00\"\njob_name = \"rewardbench-cluster-test\"\n",
    );

    let o = sweep(&plan, &[]);
    assert!(o.status.success(), "submit: {}", text(&o));
    let job = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        job.chars().all(|c| c.is_ascii_digit()) && !job.is_empty(),
        "job id: {}",
        text(&o)
    );
    let mut jobs = Jobs(vec![job.clone()]);
    let script = std::fs::read_to_string(out.join("sweep.sh")).unwrap();
    for line in [
        "#SBATCH --array=0-7",
        "#SBATCH --requeue",
        "#SBATCH --open-mode=append",
    ] {
        assert!(script.lines().any(|l| l == line), "{line} in\n{script}");
    }
    let all = tasks(&out);
    assert_eq!(all.len(), 8);

    // A second submission while the array runs is refused.
    let o = sweep(&plan, &[]);
    assert!(
        !o.status.success() && text(&o).contains("still"),
        "{}",
        text(&o)
    );

    // Task A: killed, then requeued by hand. Task B: killed, then --resubmit_failed.
    let (a, a_partial) = kill_one_running(&job, &out, None);
    let (b, b_partial) = kill_one_running(&job, &out, Some(a));
    // The first task found is an LLMBar shard scored one text per call: caught mid-run.
    assert!(a_partial, "task {a} was not caught mid-run");
    let (line, all_status) = status_line(&plan);
    assert!(
        all_status.contains(&format!("failed   task {a} "))
            && all_status.contains(&format!("failed   task {b} ")),
        "{all_status}"
    );
    assert!(line.contains("failed: 2"), "{all_status}");

    let a_id = format!("{job}_{a}");
    let o = run("scontrol", &["requeue", &a_id]);
    assert!(o.status.success(), "scontrol requeue {a_id}: {}", text(&o));
    // A requeued task waits 120 s (BeginTime) unless released.
    wait_for(
        Duration::from_secs(30),
        "the requeued task's release",
        || {
            let o = run(
                "scontrol",
                &["update", &format!("jobid={a_id}"), "StartTime=now"],
            );
            o.status.success().then_some(())
        },
    );

    let o = sweep(&plan, &["--resubmit_failed"]);
    assert!(o.status.success(), "--resubmit_failed: {}", text(&o));
    let job2 = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(!job2.is_empty() && job2 != job, "{}", text(&o));
    jobs.0.push(job2.clone());
    assert!(
        text(&o).contains(&format!("resubmitted 1 task(s) ({b}) as job {job2}")),
        "only B is failed now (A is requeued): {}",
        text(&o)
    );

    let (line, all_status) = {
        let t0 = Instant::now();
        loop {
            let (line, all_status) = status_line(&plan);
            if line.contains("done: 8") || line.contains("failed: 1") || line.contains("failed: 2")
            {
                break (line, all_status);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "the sweep did not finish in 300 s:\n{all_status}\n{}",
                log_tails(&out)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    assert!(
        line.contains("done: 8"),
        "{all_status}\n{}",
        log_tails(&out)
    );
    let sweep_seconds = t_start.elapsed().as_secs_f64();

    // Both killed tasks ran twice into one log (--open-mode=append); A as a restart.
    assert_eq!(field(&a_id, "Restarts"), "1");
    for (i, partial) in [(a, a_partial), (b, b_partial)] {
        let log = std::fs::read_to_string(out.join(format!("logs/{i}.log"))).unwrap();
        let starts = log
            .lines()
            .filter(|l| l.starts_with(&format!("== task {i}: job")))
            .count();
        assert_eq!(starts, 2, "task {i}'s log:\n{log}");
        // Killed mid-run: the second run resumed the first one's store.
        assert!(
            !partial || log.contains("resuming"),
            "task {i}'s log:\n{log}"
        );
    }
    let log_a = std::fs::read_to_string(out.join(format!("logs/{a}.log"))).unwrap();
    assert!(log_a.contains("restart 1"), "{log_a}");

    let t0 = Instant::now();
    let o = sweep(&plan, &["--collect"]);
    let collect_seconds = t0.elapsed().as_secs_f64();
    assert!(o.status.success(), "--collect: {}", text(&o));

    let compared = equals_single_machine_runs(&out, &base.join("ref"), &all);
    assert_eq!(
        compared,
        14 + 2,
        "4 runs' files (RB2's with eval-set-scores), 2 leaderboards"
    );
    eprintln!(
        "cluster sweep: 8 tasks (killed: {a} then requeued, {b} then resubmitted; mid-run: {a_partial}, {b_partial}) done in {sweep_seconds:.1} s; --collect {collect_seconds:.2} s"
    );
}
