//! Planning a run: `--dry_run` writes nothing and plans what a real run computes; the plan
//! counts what the score store already holds.

use std::path::Path;

use serde_json::Value;

use crate::util::{csv_scores, llama, rewardbench, root, stderr};

/// The numbers of a plan line: texts to score, texts from the store, tokens, calls, padded.
#[derive(Debug, PartialEq, Eq)]
struct Planned {
    texts: usize,
    stored: usize,
    tokens: usize,
    calls: usize,
    padded: usize,
}

fn planned(stdout: &str) -> Planned {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("plan: "))
        .unwrap_or_else(|| panic!("no plan line in {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let num = |w: &str| -> usize {
        w.trim_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap_or_else(|_| panic!("{w} in {line}"))
    };
    // the number just before `word` (the first one with `next` after it, if given)
    let before = |word: &str, next: Option<&str>| -> Option<usize> {
        (1..words.len())
            .find(|&i| words[i] == word && next.is_none_or(|n| words.get(i + 1) == Some(&n)))
            .map(|i| num(words[i - 1]))
    };
    Planned {
        texts: num(words[1]),
        stored: before("more", Some("from")).unwrap_or(0),
        tokens: before("tokens", Some("in")).expect("tokens"),
        calls: before("model", None).expect("calls"),
        padded: before("with", Some("padding,")).expect("padded"),
    }
}

fn run(model: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let data = root().join("fixtures/data/llmbar.jsonl");
    let mut args = vec![
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--output_dir",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = rewardbench(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Texts in a score store: the keys of its lines after the header.
fn stored_texts(store: &Path) -> usize {
    std::fs::read_to_string(store)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["keys"].as_array().unwrap().len()
        })
        .sum()
}

#[test]
fn dry_run_writes_nothing_and_plans_what_the_run_computes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let dry = run(&llama(), &out, &["--dry_run"]);
    assert!(!out.exists(), "--dry_run created {}", out.display());
    let text = stdout(&dry);
    assert!(
        text.contains("dry run: nothing scored, no file written"),
        "{text}"
    );
    assert!(text.contains("estimate: about "), "{text}");
    let plan = planned(&text);

    run(&llama(), &out, &[]);
    let stats: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tiny-llama-rm_run.json")).unwrap())
            .unwrap();
    let int = |k: &str| stats[k].as_u64().unwrap() as usize;
    assert_eq!(plan.calls, int("model_calls"));
    assert_eq!(plan.padded, int("computed_tokens"));
    assert_eq!(plan.tokens, int("computed_tokens") - int("pad_tokens"));
    assert_eq!(
        plan.texts,
        stored_texts(&out.join("tiny-llama-rm.store.jsonl"))
    );
    assert_eq!(plan.stored, 0);
}

#[test]
fn the_plan_counts_texts_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    run(&llama(), &out, &[]);
    let store = out.join("tiny-llama-rm.store.jsonl");
    let all = stored_texts(&store);

    // After a finished run: nothing left to compute, and the store is left as it was.
    let before = std::fs::read(&store).unwrap();
    let text = stdout(&run(&llama(), &out, &["--dry_run"]));
    assert_eq!(
        planned(&text),
        Planned {
            texts: 0,
            stored: all,
            tokens: 0,
            calls: 0,
            padded: 0
        },
        "{text}"
    );
    assert!(text.contains("nothing left to compute"), "{text}");
    assert_eq!(std::fs::read(&store).unwrap(), before);

    // A store cut after its first three calls (a run killed there): the rest is planned.
    let kept: Vec<&str> = std::str::from_utf8(&before)
        .unwrap()
        .lines()
        .take(4)
        .collect();
    std::fs::write(&store, kept.join("\n") + "\n").unwrap();
    let have = stored_texts(&store);
    assert!(have > 0 && have < all);
    let plan = planned(&stdout(&run(&llama(), &out, &["--dry_run"])));
    assert_eq!((plan.texts, plan.stored), (all - have, have));
}

#[test]
fn dpo_and_v2_dry_runs_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dpo");
    let policy = root().join("fixtures/models/tiny-llama-policy");
    let reference = root().join("fixtures/models/tiny-llama-ref");
    let text = stdout(&run(
        &policy,
        &out,
        &["--ref_model", reference.to_str().unwrap(), "--dry_run"],
    ));
    assert!(text.contains("through 2 models"), "{text}");
    assert!(planned(&text).texts > 0);
    assert!(!out.exists());

    let out = dir.path().join("v2");
    let data = root().join("fixtures/data/rb2.jsonl");
    let o = rewardbench(&[
        "v2",
        "--model",
        llama().to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--output_dir",
        out.to_str().unwrap(),
        "--dry_run",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(planned(&stdout(&o)).texts > 0);
    assert!(!out.exists());
}

#[test]
fn the_attention_cap_splits_calls_of_many_headed_models_and_keeps_their_scores() {
    // The eager fixture's graph with a config.json claiming 512 heads: the planner's
    // attention cap (1024 MiB / (512 heads x 32 bytes) = 65536 scores per call: one row past
    // 181 tokens) must split calls the token cap alone would not.
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("wide-rm");
    std::fs::create_dir(&wide).unwrap();
    for entry in std::fs::read_dir(llama()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, wide.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(wide.join("config.json")).unwrap()).unwrap();
    config["num_attention_heads"] = 512.into();
    std::fs::write(wide.join("config.json"), config.to_string()).unwrap();

    let out = dir.path().join("results");
    let base = planned(&stdout(&run(&llama(), &out, &["--dry_run"])));
    let capped = planned(&stdout(&run(&wide, &out, &["--dry_run"])));
    assert_eq!((capped.texts, capped.tokens), (base.texts, base.tokens));
    assert!(
        capped.calls > base.calls,
        "512 heads: {capped:?}, 4 heads: {base:?}"
    );
    let off = planned(&stdout(&run(
        &wide,
        &out,
        &["--dry_run", "--max_attention_mb", "0"],
    )));
    assert_eq!(off.calls, base.calls);

    // Smaller calls, the same scores (sorted batching is batch-invariant).
    run(&llama(), &out, &[]);
    run(&wide, &out, &[]);
    let a = csv_scores(&out.join("tiny-llama-rm_scores.csv"));
    let b = csv_scores(&out.join("wide-rm_scores.csv"));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x.0 - y.0).abs() < 1e-5 && (x.1 - y.1).abs() < 1e-5,
            "{x:?} vs {y:?}"
        );
    }
}
