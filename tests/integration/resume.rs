//! Resumable runs: a run killed with SIGKILL at random moments, then re-run, must end with
//! files byte-identical to a run that was never interrupted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::root;

fn command(out: &Path, extra: &[&str]) -> Command {
    command_for("fixtures/models/tiny-llama-rm", out, extra)
}

fn command_for(model: &str, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rewardbench"));
    c.args(["--model"])
        .arg(root().join(model))
        .arg("--dataset")
        .arg(root().join("fixtures/data/llmbar.jsonl"))
        .args([
            "--batch_size",
            "1",
            "--threads",
            "1",
            "--quiet",
            "--output_dir",
        ])
        .arg(out)
        .args(extra)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

const FILES: &[&str] = &[
    "tiny-llama-rm.json",
    "tiny-llama-rm_outputs.jsonl",
    "tiny-llama-rm_scores.csv",
];

#[test]
fn killed_runs_resume_to_identical_results() {
    let tmp = tempfile::tempdir().unwrap();
    let (clean, resumed) = (tmp.path().join("clean"), tmp.path().join("resumed"));
    let t0 = Instant::now();
    let o = command(&clean, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = t0.elapsed();

    let total_calls: usize = 80; // 40 rows, 80 distinct texts, batch size 1
    let cache_path = resumed.join("tiny-llama-rm.store.jsonl");
    let cached =
        || std::fs::read_to_string(&cache_path).map_or(0, |c| c.lines().count().saturating_sub(1));

    // 20 kills (SIGKILL) at pseudo-random points (fixed seed): some during start-up, the
    // rest once a random number of further calls has finished, plus a random few ms so
    // that kills also land inside a call or a cache write.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut killed_mid_run = 0;
    for _ in 0..20 {
        let before = cached();
        let left = total_calls.saturating_sub(before);
        let mut child = command(&resumed, &[]).spawn().unwrap();
        let deadline = Instant::now() + full * 3;
        if left <= 1 || next() % 5 == 0 {
            std::thread::sleep(Duration::from_millis(next() % 300));
        } else {
            let target = before + 1 + (next() as usize) % (left / 3).max(1);
            while cached() < target
                && child.try_wait().unwrap().is_none()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(next() % 20));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed_mid_run += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        killed_mid_run >= 10,
        "only {killed_mid_run} of 20 runs were killed before finishing"
    );
    let cache = std::fs::read_to_string(resumed.join("tiny-llama-rm.store.jsonl")).unwrap();
    assert!(
        cache.lines().count() > 1,
        "killed runs left finished calls in the cache"
    );

    let o = command(&resumed, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in FILES {
        let a = std::fs::read(clean.join(f)).unwrap();
        let b = std::fs::read(resumed.join(f)).unwrap();
        assert!(a == b, "{f} differs between the clean and the resumed run");
    }
    let run: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(resumed.join("tiny-llama-rm_run.json")).unwrap(),
    )
    .unwrap();
    assert!(
        run["reused_calls"].as_u64().unwrap() > 0,
        "the last run reused cached calls: {run}"
    );
}

#[test]
fn a_store_of_another_run_is_not_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // A copy of the model whose config then changes: its scores may differ, so its store
    // must be refused, not mixed in.
    let model = tmp.path().join("tiny-llama-rm");
    std::fs::create_dir(&model).unwrap();
    for e in std::fs::read_dir(root().join("fixtures/models/tiny-llama-rm")).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), model.join(e.file_name())).unwrap();
        }
    }
    let run = |extra: &[&str]| {
        command_for(model.to_str().unwrap(), &out, extra)
            .output()
            .unwrap()
    };
    let o = run(&["--debug"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = model.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n")).unwrap();
    let o = run(&["--debug"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("different run") && err.contains("--overwrite"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    let o = run(&["--debug", "--overwrite"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Reference batching keeps its own call-keyed cache beside the store.
    let o = run(&["--debug", "--batching", "reference"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("tiny-llama-rm.cache.jsonl").is_file());
}

#[test]
fn the_store_survives_another_batch_size() {
    // Scores are kept by text, so a re-run with another --batch_size computes nothing and
    // writes the same results (sorted batching scores do not depend on the batch).
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let run = |out: &Path, batch: &str| {
        Command::new(env!("CARGO_BIN_EXE_rewardbench"))
            .arg("--model")
            .arg(root().join("fixtures/models/tiny-llama-rm"))
            .arg("--dataset")
            .arg(root().join("fixtures/data/llmbar.jsonl"))
            .args(["--batch_size", batch, "--quiet", "--output_dir"])
            .arg(out)
            .output()
            .unwrap()
    };
    let o = run(&a, "8");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&b, "3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::copy(
        a.join("tiny-llama-rm.store.jsonl"),
        b.join("tiny-llama-rm.store.jsonl"),
    )
    .unwrap();
    let o = run(&b, "3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("tiny-llama-rm_run.json")).unwrap())
            .unwrap();
    assert_eq!(run["reused_calls"], run["model_calls"], "{run}");
    for f in ["tiny-llama-rm_outputs.jsonl", "tiny-llama-rm_scores.csv"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
}

/// Sends SIGINT (Ctrl-C) to a run: it must exit with 130 and say how to resume, without a panic.
fn ctrl_c(child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted") && err.contains("resume"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn ctrl_c_stops_cleanly_and_the_run_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cache_path = out.join("tiny-llama-rm.store.jsonl");
    let child = command(&out, &[]).spawn().unwrap();
    // Interrupt once the first calls are cached.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&cache_path).map_or(0, |c| c.lines().count()) < 3
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    ctrl_c(child);
    assert!(
        !out.join("tiny-llama-rm.json").exists(),
        "no summary after an interrupt"
    );
    let o = command(&out, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tiny-llama-rm_run.json")).unwrap())
            .unwrap();
    assert!(run["reused_calls"].as_u64().unwrap() >= 2, "{run}");
}

/// A packed export (shared-prefix rows, one cache line per call of several texts) killed
/// once it has finished some calls resumes to the files of an uninterrupted run.
#[test]
fn killed_packed_run_resumes_to_identical_results() {
    let model = "fixtures/models/tiny-llama-rm/gqa";
    let tmp = tempfile::tempdir().unwrap();
    let (clean, resumed) = (tmp.path().join("clean"), tmp.path().join("resumed"));
    let o = command_for(model, &clean, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cache_path = resumed.join("gqa.cache.jsonl");
    let cached =
        || std::fs::read_to_string(&cache_path).map_or(0, |c| c.lines().count().saturating_sub(1));
    let mut child = command_for(model, &resumed, &[]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cached() < 3 && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = child.try_wait().unwrap().is_none();
    if killed {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    assert!(killed, "the run finished before it could be killed");
    let o = command_for(model, &resumed, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["gqa.json", "gqa_outputs.jsonl", "gqa_scores.csv"] {
        let a = std::fs::read(clean.join(f)).unwrap();
        let b = std::fs::read(resumed.join(f)).unwrap();
        assert!(a == b, "{f} differs between the clean and the resumed run");
    }
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(resumed.join("gqa_run.json")).unwrap())
            .unwrap();
    assert!(run["reused_calls"].as_u64().unwrap() >= 3, "{run}");
    assert!(run["shared_prefix_tokens"].as_u64().unwrap() > 0, "{run}");
}

/// DPO runs share the resume store and Ctrl-C: a killed run resumes to the files of an
/// uninterrupted one, and an interrupt exits with 130 and keeps the finished calls.
#[test]
fn dpo_runs_resume_and_stop_on_ctrl_c() {
    let model = "fixtures/models/tiny-llama-policy";
    let reference = root().join("fixtures/models/tiny-llama-ref");
    let extra = ["--ref_model", reference.to_str().unwrap()];
    let tmp = tempfile::tempdir().unwrap();
    let (clean, resumed) = (tmp.path().join("clean"), tmp.path().join("resumed"));
    let o = command_for(model, &clean, &extra).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cache_path = resumed.join("tiny-llama-policy.dpo.store.jsonl");
    let cached =
        || std::fs::read_to_string(&cache_path).map_or(0, |c| c.lines().count().saturating_sub(1));

    // Ctrl-C once some calls are cached.
    let child = command_for(model, &resumed, &extra).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cached() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    ctrl_c(child);
    assert!(!resumed.join("tiny-llama-policy.json").exists());
    let kept = cached();
    assert!(kept >= 3, "the interrupted run kept {kept} calls");

    // SIGKILL a little later, then finish.
    let mut child = command_for(model, &resumed, &extra).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cached() < kept + 2 && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    child.wait().unwrap();
    let o = command_for(model, &resumed, &extra).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "tiny-llama-policy.json",
        "tiny-llama-policy_outputs.jsonl",
        "tiny-llama-policy_scores.csv",
    ] {
        let a = std::fs::read(clean.join(f)).unwrap();
        let b = std::fs::read(resumed.join(f)).unwrap();
        assert!(a == b, "{f} differs between the clean and the resumed run");
    }
    let run: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(resumed.join("tiny-llama-policy_run.json")).unwrap(),
    )
    .unwrap();
    assert!(run["reused_calls"].as_u64().unwrap() >= 3, "{run}");
}

/// `rewardbench v2`: killed mid-run, then re-run, gives the files of an uninterrupted run
/// (its store is `{name}.v2.store.jsonl`).
#[test]
fn killed_v2_run_resumes_to_identical_results() {
    let tmp = tempfile::tempdir().unwrap();
    let (clean, resumed) = (tmp.path().join("clean"), tmp.path().join("resumed"));
    let v2 = |out: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rewardbench"));
        c.arg("v2")
            .arg("--model")
            .arg(root().join("fixtures/models/tiny-llama-rm"))
            .arg("--dataset")
            .arg(root().join("fixtures/data/rb2.jsonl"))
            .args([
                "--batch_size",
                "1",
                "--threads",
                "1",
                "--quiet",
                "--output_dir",
            ])
            .arg(out)
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let o = v2(&clean).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cache_path = resumed.join("tiny-llama-rm.v2.store.jsonl");
    let cached =
        || std::fs::read_to_string(&cache_path).map_or(0, |c| c.lines().count().saturating_sub(1));
    let mut child = v2(&resumed).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cached() < 20 && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = child.try_wait().unwrap().is_none();
    if killed {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    assert!(killed, "the run finished before it could be killed");
    let o = v2(&resumed).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "tiny-llama-rm.json",
        "tiny-llama-rm_outputs.jsonl",
        "tiny-llama-rm_scores.csv",
        "eval-set-scores/tiny-llama-rm.json",
    ] {
        let a = std::fs::read(clean.join(f)).unwrap();
        let b = std::fs::read(resumed.join(f)).unwrap();
        assert!(a == b, "{f} differs between the clean and the resumed run");
    }
    let run: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(resumed.join("tiny-llama-rm_run.json")).unwrap(),
    )
    .unwrap();
    assert!(run["reused_calls"].as_u64().unwrap() >= 20, "{run}");
}
