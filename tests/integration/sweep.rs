//! `rewardbench sweep` without Slurm: `--engine local` end to end, the array script run by
//! hand then `--collect`, and the CLI's refusals. The real-cluster test is `cluster::`.

use std::process::Command;

use crate::util::sweep::{equals_single_machine_runs, sweep, tasks, text, write_plan};

#[test]
fn a_local_sweep_collects_to_single_machine_results() {
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    let out = base.join("sweep-results");
    let plan = write_plan(&base, &["tiny-llama-rm"], true, "cpus_per_task = 1\n");

    let o = sweep(&plan, &["--status"]);
    assert!(
        !o.status.success() && text(&o).contains("no sweep recorded"),
        "{}",
        text(&o)
    );
    let o = sweep(&plan, &["--collect"]);
    assert!(!o.status.success(), "nothing ran yet: {}", text(&o));
    assert!(text(&o).contains("incomplete"), "{}", text(&o));

    let o = sweep(&plan, &["--engine", "local"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = sweep(&plan, &["--status"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("tasks: 4, done: 4, running: 0, pending: 0, failed: 0"),
        "{}",
        text(&o)
    );
    // Everything finished: a new submission has nothing to do.
    let o = sweep(&plan, &["--engine", "local"]);
    assert!(
        o.status.success() && text(&o).contains("nothing to submit"),
        "{}",
        text(&o)
    );

    let o = sweep(&plan, &["--collect"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("tiny-llama-rm"),
        "the board on stdout: {}",
        text(&o)
    );
    let all = tasks(&out);
    assert_eq!(all.len(), 4);
    let n = equals_single_machine_runs(&out, &base.join("ref"), &all);
    assert_eq!(
        n,
        7 + 2,
        "2 runs' files (RB2's with eval-set-scores), 2 leaderboards"
    );
}

#[test]
fn shards_run_by_hand_from_the_script_then_collect() {
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    let out = base.join("sweep-results");
    let plan = write_plan(&base, &["tiny-gpt2-rm"], false, "partition = \"ci\"\n");

    let o = sweep(&plan, &["--dry_run"]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let script = out.join("sweep.sh");
    assert_eq!(
        stdout.trim(),
        format!("sbatch --parsable --array=0-1 {}", script.display())
    );
    // A dry run records the table, with no job.
    let o = sweep(&plan, &["--status"]);
    assert!(
        text(&o).contains("tasks: 2, done: 0, running: 0, pending: 0, failed: 0, not submitted: 2"),
        "{}",
        text(&o)
    );

    // Shard 1 first: order does not matter. Collect before shard 0 exists names it.
    let by_hand = |i: &str| {
        Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", i)
            .output()
            .unwrap()
    };
    let o = by_hand("1");
    assert!(o.status.success(), "{}", text(&o));
    let o = sweep(&plan, &["--collect"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("task 0 (tiny-gpt2-rm/llmbar shard 0/2)"),
        "{}",
        text(&o)
    );
    let o = by_hand("0");
    assert!(o.status.success(), "{}", text(&o));
    let o = sweep(&plan, &["--collect"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = sweep(&plan, &["--status"]);
    assert!(
        text(&o).contains("tasks: 2, done: 2, running: 0, pending: 0, failed: 0, not submitted: 0"),
        "{}",
        text(&o)
    );
    let o = sweep(&plan, &["--dry_run"]);
    assert!(
        o.status.success() && text(&o).contains("nothing to submit"),
        "{}",
        text(&o)
    );
    let n = equals_single_machine_runs(&out, &base.join("ref"), &tasks(&out));
    assert_eq!(n, 3 + 1, "3 files and the v1 leaderboard");
}

#[test]
fn plan_errors_name_the_file_and_key_and_the_modes_exclude_each_other() {
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();
    let plan = write_plan(&base, &["tiny-llama-rm"], false, "partiton = \"ci\"\n");
    let o = sweep(&plan, &["--dry_run"]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains(&plan.display().to_string()) && t.contains("partiton"),
        "{t}"
    );

    let plan = write_plan(&base, &["no-such-model"], false, "");
    let t = text(&sweep(&plan, &["--dry_run"]));
    assert!(
        t.contains("model[0].path") && t.contains("no-such-model"),
        "{t}"
    );

    let plan = write_plan(&base, &["tiny-llama-rm"], false, "");
    let o = sweep(&plan, &["--status", "--collect"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "clap refuses two modes: {}",
        text(&o)
    );
}
