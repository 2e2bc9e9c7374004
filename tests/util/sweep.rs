//! Shared by the sweep suites: a fixture plan, and the check that a sweep's merged files equal
//! single-machine runs of the same commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::root;

/// `rewardbench sweep PLAN ARGS...`.
pub fn sweep(plan: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .arg("sweep")
        .arg(plan)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("binary runs")
}

/// stdout then stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes `{base}/plan.toml`: `models` (fixture names) × LLMBar (v1) and, with `rb2`,
/// RewardBench 2, in 2 shards, output in `{base}/sweep-results`; `slurm` is the plan's
/// `[slurm]` table body.
pub fn write_plan(base: &Path, models: &[&str], rb2: bool, slurm: &str) -> PathBuf {
    let r = root();
    let mut s = String::from("output_dir = \"sweep-results\"\nshards = 2\n");
    for m in models {
        s.push_str(&format!(
            "[[model]]\npath = \"{}\"\n",
            r.join("fixtures/models").join(m).display()
        ));
    }
    s.push_str(&format!(
        "[[benchmark]]\nname = \"llmbar\"\ndataset = \"{}\"\nargs = [\"--batch_size\", \"1\"]\n",
        r.join("fixtures/data/llmbar.jsonl").display()
    ));
    if rb2 {
        s.push_str(&format!(
            "[[benchmark]]\nname = \"rb2\"\ncommand = \"v2\"\ndataset = \"{}\"\n",
            r.join("fixtures/data/rb2.jsonl").display()
        ));
    }
    s.push_str("[slurm]\n");
    s.push_str(slurm);
    let plan = base.join("plan.toml");
    std::fs::write(&plan, s).unwrap();
    plan
}

/// The tasks recorded in `{out}/sweep.json`.
pub fn tasks(out: &Path) -> Vec<Value> {
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    state["tasks"].as_array().unwrap().clone()
}

/// Runs each run folder's command (shard 0's, without `--shard`) into `refs`, as one machine
/// would; then requires the merged files under `out` (summary, outputs, scores CSV, RB2's
/// eval-set-scores file) and the leaderboards (`rewardbench leaderboard refs`) to be
/// byte-identical, and the HTML report to be there. Returns the number of files compared.
pub fn equals_single_machine_runs(out: &Path, refs: &Path, tasks: &[Value]) -> usize {
    let mut compared = 0;
    for t in tasks {
        if t["shard"].as_u64() != Some(0) {
            continue;
        }
        let dir = PathBuf::from(t["dir"].as_str().unwrap());
        let ref_dir = refs.join(dir.strip_prefix(out).unwrap());
        let argv: Vec<String> = t["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let mut args = Vec::new();
        let mut it = argv[1..].iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--shard" => {
                    it.next();
                }
                "--output_dir" => {
                    it.next();
                    args.push(a.clone());
                    args.push(ref_dir.display().to_string());
                }
                _ => args.push(a.clone()),
            }
        }
        let o = Command::new(&argv[0])
            .args(&args)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        let name = t["model"].as_str().unwrap();
        let mut files = vec![
            format!("{name}.json"),
            format!("{name}_outputs.jsonl"),
            format!("{name}_scores.csv"),
        ];
        if argv.get(1).is_some_and(|a| a == "v2") {
            files.push(format!("eval-set-scores/{name}.json"));
        }
        for f in files {
            let got = std::fs::read(dir.join(&f))
                .unwrap_or_else(|e| panic!("{}: {e}", dir.join(&f).display()));
            let want = std::fs::read(ref_dir.join(&f)).unwrap();
            assert!(
                got == want,
                "{} differs from the single-machine run's",
                dir.join(&f).display()
            );
            compared += 1;
        }
    }
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .arg("leaderboard")
        .arg(refs)
        .arg("--output")
        .arg(refs.join("leaderboard.csv"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    for f in ["leaderboard.csv", "leaderboard_v2.csv"] {
        let want = match std::fs::read(refs.join(f)) {
            Ok(w) => w,
            Err(_) => {
                assert!(
                    !out.join(f).exists(),
                    "{f} without a single-machine counterpart"
                );
                continue;
            }
        };
        let got = std::fs::read(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(
            got == want,
            "{f} differs:\n{}\nvs\n{}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
        compared += 1;
    }
    // The HTML report (`rewardbench report` of the merged runs) names every model.
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    for t in tasks {
        let name = t["model"].as_str().unwrap();
        assert!(page.contains(name), "{name} is not in report.html");
    }
    compared
}
