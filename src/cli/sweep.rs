//! `rewardbench sweep PLAN.toml`: its flags and output; the work is [`rewardbench::sweep`].

use std::path::PathBuf;

use anyhow::bail;
use clap::{ArgAction, Args, ValueEnum};
use rewardbench::run::observer::Stderr;
use rewardbench::sweep::{self, plan::Plan, Engine, TaskStatus};

use super::parse_bool;

/// Where the tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// One Slurm job array (sbatch), one task per model x benchmark x shard.
    Slurm,
    /// One task after another on this machine.
    Local,
}

/// Flags of `rewardbench sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The plan: models, benchmarks, shards, Slurm resources (TOML; paths relative to it).
    pub plan: PathBuf,
    /// Where tasks run.
    #[arg(long, value_enum, default_value = "slurm")]
    pub engine: EngineArg,
    /// Write the sbatch script and print the sbatch command, without submitting.
    #[arg(long = "dry_run", alias = "dry-run", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set, conflicts_with_all = ["status", "collect", "resubmit_failed"])]
    pub dry_run: bool,
    /// Report tasks done, running, pending and failed (squeue / scontrol; no accounting needed).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set, conflicts_with_all = ["collect", "resubmit_failed"])]
    pub status: bool,
    /// Merge every finished model x benchmark and write {output_dir}/leaderboard.csv.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set, conflicts_with = "resubmit_failed")]
    pub collect: bool,
    /// Submit the failed tasks again (only those), as a new array of the same script.
    #[arg(long = "resubmit_failed", alias = "resubmit-failed", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub resubmit_failed: bool,
}

pub fn run(a: &SweepArgs) -> anyhow::Result<()> {
    let mut obs = Stderr;
    let plan = Plan::load(&a.plan)?;
    if a.status {
        return print_status(&plan);
    }
    if a.collect {
        return collect(&plan, &mut obs);
    }
    if a.resubmit_failed {
        let sweep::Resubmitted {
            tasks,
            job_id: job,
            local_failures: failures,
        } = sweep::resubmit_failed(&plan, &mut obs)?;
        if tasks.is_empty() {
            eprintln!("no failed tasks");
            return Ok(());
        }
        let list = sweep::slurm::compress(&tasks);
        match job {
            Some(id) => {
                eprintln!("resubmitted {} task(s) ({list}) as job {id}", tasks.len());
                println!("{id}");
            }
            None => report_local(tasks.len(), &failures)?,
        }
        return Ok(());
    }
    let engine = match a.engine {
        EngineArg::Slurm => Engine::Slurm,
        EngineArg::Local => Engine::Local,
    };
    let s = sweep::submit(&plan, engine, a.dry_run, &mut obs)?;
    eprintln!(
        "wrote {} ({} task(s): {} model(s) x {} benchmark(s) x their shards)",
        s.script.display(),
        s.tasks,
        plan.models.len(),
        plan.benchmarks.len()
    );
    if s.submitted.is_empty() {
        eprintln!("every task has finished; nothing to submit (`--collect` merges them)");
        return Ok(());
    }
    if a.dry_run {
        eprintln!("not submitted (--dry_run); this would submit it:");
        println!("{}", s.sbatch);
        return Ok(());
    }
    match s.job_id {
        Some(id) => {
            eprintln!(
                "submitted job {id}: {} task(s) ({}); `rewardbench sweep {} --status`",
                s.submitted.len(),
                sweep::slurm::compress(&s.submitted),
                a.plan.display()
            );
            println!("{id}");
        }
        None => report_local(s.submitted.len(), &s.local_failures)?,
    }
    Ok(())
}

fn report_local(ran: usize, failures: &[(usize, String)]) -> anyhow::Result<()> {
    if failures.is_empty() {
        eprintln!("ran {ran} task(s) here; all finished");
        return Ok(());
    }
    for (i, why) in failures {
        eprintln!("task {i}: {why}");
    }
    bail!(
        "{} of {ran} task(s) failed (logs in {{output_dir}}/logs/; `--resubmit_failed` reruns them)",
        failures.len()
    )
}

fn print_status(plan: &Plan) -> anyhow::Result<()> {
    let r = sweep::status(plan)?;
    let [done, running, pending, failed, unsubmitted] = r.counts();
    let jobs = r.jobs();
    println!(
        "sweep {} ({}{})",
        plan.file.display(),
        r.state.engine,
        if jobs.is_empty() {
            String::new()
        } else {
            format!(", job {}", jobs.join(", "))
        }
    );
    println!(
        "tasks: {}, done: {done}, running: {running}, pending: {pending}, failed: {failed}, not submitted: {unsubmitted}",
        r.status.len()
    );
    for (t, s) in r.state.tasks.iter().zip(&r.status) {
        match s {
            TaskStatus::Failed { why } => println!(
                "failed   task {} {}: {why}; log {}",
                t.index,
                t.label(),
                t.log.display()
            ),
            TaskStatus::Running => println!("running  task {} {}", t.index, t.label()),
            _ => {}
        }
    }
    if failed > 0 {
        println!(
            "resubmit the failed ones: rewardbench sweep {} --resubmit_failed",
            plan.file.display()
        );
    }
    Ok(())
}

fn collect(plan: &Plan, obs: &mut Stderr) -> anyhow::Result<()> {
    let tasks = sweep::recorded_or_planned(plan)?;
    let ort_lib = sweep::state::State::read(&plan.state_file())?.and_then(|s| s.ort_lib);
    let exe = std::env::current_exe()?;
    // `rewardbench merge DIR`, as a user would run it; the folder is the leaderboard's input
    // (its shard manifests are not summaries).
    let mut merge = |dir: &std::path::Path| -> Result<Vec<PathBuf>, String> {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("merge").arg(dir).env_remove("RUST_BACKTRACE");
        if let Some(lib) = &ort_lib {
            cmd.env("ORT_DYLIB_PATH", lib);
        }
        let o = cmd.output().map_err(|e| e.to_string())?;
        if o.status.success() {
            return Ok(vec![dir.to_path_buf()]);
        }
        let err = String::from_utf8_lossy(&o.stderr);
        Err(err
            .lines()
            .rev()
            .find(|l| l.starts_with("error: "))
            .map_or_else(
                || format!("merge exited with {}", o.status),
                |l| l["error: ".len()..].to_string(),
            ))
    };
    let title = format!(
        "RewardBench sweep: {}",
        plan.file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    let c = sweep::collect::collect(&tasks, &plan.output_dir, &title, &mut merge, obs)?;
    for (dir, _) in &c.merged {
        eprintln!("merged {}", dir.display());
    }
    for (dir, missing) in &c.incomplete {
        eprintln!("incomplete {}: {}", dir.display(), missing.join(", "));
    }
    for (dir, e) in &c.failed {
        eprintln!("merge failed {}: {e}", dir.display());
    }
    eprintln!(
        "merged {} run(s) in {:.2} s",
        c.merged.len(),
        c.merge_seconds
    );
    if let Some((csv, table)) = &c.leaderboard {
        print!("{table}");
        eprintln!("wrote {}", csv.display());
    }
    match &c.report {
        Some(Ok(html)) => eprintln!("wrote {}", html.display()),
        Some(Err(e)) => eprintln!("the HTML report failed: {e}"),
        None => {}
    }
    if !c.complete() {
        bail!(
            "{} run(s) incomplete, {} failed to merge{}; the leaderboard has the {} merged",
            c.incomplete.len(),
            c.failed.len(),
            if matches!(c.report, Some(Err(_))) {
                ", the report failed"
            } else {
                ""
            },
            c.merged.len()
        );
    }
    Ok(())
}
