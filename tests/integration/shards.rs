//! `--shard i/n` and `merge`: shards run in any order, killed and resumed, merge into the
//! files of a single run byte for byte; a missing, duplicated or foreign shard is refused.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::{root, stderr};

fn eval(v2: bool, model: &str, data: &str, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rewardbench"));
    if v2 {
        c.arg("v2");
    }
    c.arg("--model")
        .arg(root().join("fixtures/models").join(model))
        .arg("--dataset")
        .arg(root().join(data))
        .args(["--threads", "1", "--quiet", "--output_dir"])
        .arg(out)
        .args(extra)
        .env_remove("RUST_BACKTRACE");
    if !extra.contains(&"--batch_size") {
        c.args(["--batch_size", "4"]);
    }
    c
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

fn merge(dirs: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .arg("merge")
        .args(dirs)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

/// Every result file of `single` (not the run record or stores) equals `merged`'s.
fn same_results(single: &Path, merged: &Path, files: &[&str]) {
    for f in files {
        let a = std::fs::read(single.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let b = std::fs::read(merged.join(f)).unwrap_or_else(|e| panic!("merged {f}: {e}"));
        assert!(
            a == b,
            "{f} differs between the single run and the merged shards"
        );
    }
}

#[test]
fn v1_shards_killed_resumed_and_merged_equal_a_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (single, sharded) = (tmp.path().join("single"), tmp.path().join("sharded"));
    let data = "fixtures/data/llmbar.jsonl";
    ok(eval(false, "tiny-llama-rm", data, &single, &[])
        .output()
        .unwrap());
    // Shard 2 first; shard 0 killed once its store has a call, then run again; shard 1 last.
    ok(
        eval(false, "tiny-llama-rm", data, &sharded, &["--shard", "2/3"])
            .output()
            .unwrap(),
    );
    let store = sharded.join("shards/tiny-llama-rm.shard-0-of-3.store.jsonl");
    let mut child = eval(
        false,
        "tiny-llama-rm",
        data,
        &sharded,
        &["--shard", "0/3", "--batch_size", "1"],
    )
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&store).map_or(0, |c| c.lines().count()) < 3
        && child.try_wait().unwrap().is_none()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    let manifest = sharded.join("shards/tiny-llama-rm.shard-0-of-3.json");
    if !manifest.exists() {
        // Killed before the end: merging now must name the unfinished shard.
        let o = merge(&[&sharded]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("shard 0 of 3 is missing"),
            "{}",
            stderr(&o)
        );
    }
    let o = ok(
        eval(false, "tiny-llama-rm", data, &sharded, &["--shard", "0/3"])
            .output()
            .unwrap(),
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("shard-0-of-3 done"));
    ok(
        eval(false, "tiny-llama-rm", data, &sharded, &["--shard", "1/3"])
            .output()
            .unwrap(),
    );
    ok(merge(&[&sharded]));
    same_results(
        &single,
        &sharded,
        &[
            "tiny-llama-rm.json",
            "tiny-llama-rm_outputs.jsonl",
            "tiny-llama-rm_scores.csv",
        ],
    );
    // Every row in exactly one shard.
    let rows: u64 = (0..3)
        .map(|i| {
            let m: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(
                    sharded.join(format!("shards/tiny-llama-rm.shard-{i}-of-3.json")),
                )
                .unwrap(),
            )
            .unwrap();
            m["samples"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(rows, 40);
}

#[test]
fn v2_shards_from_two_folders_merge_into_the_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (single, a, b) = (
        tmp.path().join("single"),
        tmp.path().join("a"),
        tmp.path().join("b"),
    );
    let data = "fixtures/data/rb2.jsonl";
    ok(eval(true, "tiny-gpt2-rm", data, &single, &[])
        .output()
        .unwrap());
    // Shards run on "two machines" (two folders); merged into a third.
    ok(eval(true, "tiny-gpt2-rm", data, &a, &["--shard", "0/2"])
        .output()
        .unwrap());
    ok(eval(true, "tiny-gpt2-rm", data, &b, &["--shard", "1/2"])
        .output()
        .unwrap());
    let out = tmp.path().join("merged");
    ok(Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args(["merge"])
        .args([&a, &b])
        .arg("--output_dir")
        .arg(&out)
        .output()
        .unwrap());
    same_results(
        &single,
        &out,
        &[
            "tiny-gpt2-rm.json",
            "tiny-gpt2-rm_outputs.jsonl",
            "tiny-gpt2-rm_scores.csv",
            "eval-set-scores/tiny-gpt2-rm.json",
        ],
    );
}

#[test]
fn merge_refuses_missing_duplicated_and_foreign_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let data = "fixtures/data/llmbar.jsonl";
    let a = tmp.path().join("a");
    ok(eval(
        false,
        "tiny-llama-rm",
        data,
        &a,
        &["--shard", "0/2", "--debug"],
    )
    .output()
    .unwrap());
    let o = merge(&[&a]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("shard 1 of 2 is missing") && e.contains("--shard 1/2"),
        "{e}"
    );
    // The same shard in two folders: a duplicate, both files named.
    let b = tmp.path().join("b");
    ok(eval(
        false,
        "tiny-llama-rm",
        data,
        &b,
        &["--shard", "0/2", "--debug"],
    )
    .output()
    .unwrap());
    let o = merge(&[&a, &b]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("shard 0 of 2 appears twice") && e.contains("/a/") && e.contains("/b/"),
        "{e}"
    );
    // Another split of the same run, and another dataset: not one run.
    let c = tmp.path().join("c");
    ok(eval(
        false,
        "tiny-llama-rm",
        data,
        &c,
        &["--shard", "1/3", "--debug"],
    )
    .output()
    .unwrap());
    let o = merge(&[&a, &c]);
    assert!(
        stderr(&o).contains("not shards of one run: their shard counts differ"),
        "{}",
        stderr(&o)
    );
    let d = tmp.path().join("d");
    ok(eval(false, "tiny-llama-rm", data, &d, &["--shard", "1/2"])
        .output()
        .unwrap());
    let o = merge(&[&a, &d]);
    assert!(
        stderr(&o).contains("their datasets differ"),
        "{}",
        stderr(&o)
    );
    // Unshardable runs say why.
    let o = eval(
        false,
        "tiny-llama-rm",
        data,
        &a,
        &["--shard", "0/2", "--batching", "reference"],
    )
    .output()
    .unwrap();
    assert!(
        stderr(&o).contains("--shard needs --batching sorted"),
        "{}",
        stderr(&o)
    );
    let o = eval(false, "tiny-llama-rm", data, &a, &["--shard", "2/2"])
        .output()
        .unwrap();
    assert!(stderr(&o).contains("is not a shard"), "{}", stderr(&o));
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn dpo_shards_merge_into_the_single_run_and_list_their_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let (single, sharded) = (tmp.path().join("single"), tmp.path().join("sharded"));
    let data = "fixtures/data/llmbar.jsonl";
    let reference = root().join("fixtures/models/tiny-llama-ref");
    let reference = reference.to_str().unwrap();
    let flags = ["--ref_model", reference, "--save_all"];
    ok(eval(false, "tiny-llama-policy", data, &single, &flags)
        .output()
        .unwrap());
    // A finished DPO run removes its store (a run with another reference may follow).
    assert!(!single.join("tiny-llama-policy.dpo.store.jsonl").exists());
    for i in [1, 0, 1] {
        let spec = format!("{i}/2");
        let o = ok(eval(
            false,
            "tiny-llama-policy",
            data,
            &sharded,
            &[&flags[..], &["--shard", &spec]].concat(),
        )
        .output()
        .unwrap());
        assert!(String::from_utf8_lossy(&o.stdout).contains("done"));
    }
    ok(merge(&[&sharded]));
    same_results(
        &single,
        &sharded,
        &[
            "tiny-llama-policy.json",
            "tiny-llama-policy_outputs.jsonl",
            "tiny-llama-policy_scores.csv",
            "tiny-llama-policy_all.jsonl",
        ],
    );
    // Each shard's partial outputs are the single run's lines of its rows, every row once.
    let mut parts: Vec<String> = (0..2)
        .flat_map(|i| {
            lines(&sharded.join(format!(
                "shards/tiny-llama-policy.dpo.shard-{i}-of-2_outputs.jsonl"
            )))
        })
        .collect();
    let mut whole = lines(&single.join("tiny-llama-policy_outputs.jsonl"));
    assert_eq!(whole.len(), 40);
    parts.sort();
    whole.sort();
    assert_eq!(parts, whole);
}
