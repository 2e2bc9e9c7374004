//! `--collect`: merge every run folder (model × benchmark) whose shards have all finished,
//! say which are incomplete, then write the leaderboard and the HTML report across every
//! merged run.

use std::path::{Path, PathBuf};

use super::tasks::{runs, Task};
use super::SweepError;
use crate::run::observer::Observer;

/// What `--collect` did.
#[derive(Debug, Default)]
pub struct Collected {
    /// Merged run folders and the files each merge wrote.
    pub merged: Vec<(PathBuf, Vec<PathBuf>)>,
    /// Run folders with unfinished tasks, and those tasks' labels.
    pub incomplete: Vec<(PathBuf, Vec<String>)>,
    /// Run folders whose merge failed, with the error.
    pub failed: Vec<(PathBuf, String)>,
    /// The leaderboard CSV (`{output_dir}/leaderboard.csv`) and its Markdown table.
    pub leaderboard: Option<(PathBuf, String)>,
    /// The HTML report (`{output_dir}/report.html`), or why it could not be written.
    pub report: Option<Result<PathBuf, String>>,
    /// Seconds spent merging.
    pub merge_seconds: f64,
}

impl Collected {
    /// Whether every run was merged and reported.
    pub fn complete(&self) -> bool {
        self.incomplete.is_empty() && self.failed.is_empty() && !matches!(self.report, Some(Err(_)))
    }
}

/// Merges the finished runs of `tasks` with `merge` (one run folder in; out, the files it
/// wrote or the folder, for the leaderboard to read), then builds the leaderboard of the merged runs into `{output_dir}/leaderboard.csv`
/// (and `leaderboard_v2.csv` for RewardBench 2 runs beside v1 ones, as `leaderboard` does)
/// and the HTML report into `{output_dir}/report.html` (as `rewardbench report`, titled
/// `title`).
pub fn collect<E: std::fmt::Display>(
    tasks: &[Task],
    output_dir: &Path,
    title: &str,
    merge: &mut dyn FnMut(&Path) -> Result<Vec<PathBuf>, E>,
    obs: &mut dyn Observer,
) -> Result<Collected, SweepError> {
    let mut out = Collected::default();
    // Summary files of merged runs, and folders of unsharded runs, for the leaderboard.
    let mut board_inputs: Vec<PathBuf> = Vec::new();
    let started = std::time::Instant::now();
    for (dir, run) in runs(tasks) {
        let missing: Vec<String> = run
            .iter()
            .filter(|t| !t.is_done())
            .map(|t| format!("task {} ({})", t.index, t.label()))
            .collect();
        if !missing.is_empty() {
            out.incomplete.push((dir.to_path_buf(), missing));
            continue;
        }
        if !run.iter().any(|t| t.sharded) {
            // An unsharded run (`gen`, one shard) wrote its results itself.
            board_inputs.push(dir.to_path_buf());
            out.merged.push((dir.to_path_buf(), Vec::new()));
            continue;
        }
        match merge(dir) {
            Ok(files) => {
                board_inputs.extend(
                    files
                        .iter()
                        .filter(|f| f.is_dir() || f.extension().is_some_and(|e| e == "json"))
                        .cloned(),
                );
                out.merged.push((dir.to_path_buf(), files));
            }
            Err(e) => out.failed.push((dir.to_path_buf(), e.to_string())),
        }
    }
    out.merge_seconds = started.elapsed().as_secs_f64();
    if !board_inputs.is_empty() {
        let csv = output_dir.join("leaderboard.csv");
        let table = crate::leaderboard::build(&board_inputs, Some(&csv), obs)?;
        out.leaderboard = Some((csv, table));
        let html = output_dir.join("report.html");
        out.report = Some(
            match crate::report::html::write(&board_inputs, &html, title) {
                Ok(r) => {
                    for w in r.warnings {
                        obs.warn(&w);
                    }
                    Ok(html)
                }
                Err(e) => Err(e.to_string()),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::observer::Collect;
    use crate::sweep::plan::Plan;
    use crate::sweep::tasks::tasks;

    /// A merge stand-in: writes a v1 summary named after the run folder.
    fn fake_merge(dir: &Path) -> Result<Vec<PathBuf>, String> {
        let model = dir.parent().unwrap().file_name().unwrap().to_string_lossy();
        let bench = dir.file_name().unwrap().to_string_lossy();
        if bench == "broken" {
            return Err("shard 0 of 1 appears twice".into());
        }
        let f = dir.join(format!("{model}.json"));
        let acc = if model == "rm-a" { 0.75 } else { 0.5 };
        std::fs::write(
            &f,
            format!("{{\"model\": \"{model}\", \"extra_results\": {{\"llmbar-{bench}\": {acc}}}}}"),
        )
        .unwrap();
        Ok(vec![f, dir.join(format!("{model}_outputs.jsonl"))])
    }

    fn finish(t: &Task) {
        let d = t.dir.join("shards");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(format!(
                "{}.shard-{}-of-{}.json",
                t.model, t.shard, t.shards
            )),
            "{}",
        )
        .unwrap();
    }

    #[test]
    fn merges_finished_runs_names_the_rest_and_builds_the_board() {
        let d = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(d.path()).unwrap();
        for m in ["rm-a", "rm-b"] {
            std::fs::create_dir_all(base.join(m)).unwrap();
        }
        let text = "output_dir = \"out\"\nshards = 2\n[[model]]\npath = \"rm-a\"\n\
                    [[model]]\npath = \"rm-b\"\n[[benchmark]]\nname = \"natural\"\n\
                    [[benchmark]]\nname = \"broken\"\n[[benchmark]]\nname = \"one\"\nshards = 1\n";
        let plan = Plan::parse(text, &base.join("plan.toml")).unwrap();
        let ts = tasks(&plan, Path::new("/bin/rb"));
        assert_eq!(ts.len(), 10);
        // rm-a: everything finished; rm-b: natural's shard 1 and `one` are not.
        for t in &ts {
            if t.model == "rm-b"
                && (t.benchmark == "one" || t.shard == 1 && t.benchmark == "natural")
            {
                continue;
            }
            if t.sharded {
                finish(t);
            } else {
                // The unsharded run wrote its own summary, then the task its marker.
                std::fs::create_dir_all(&t.dir).unwrap();
                std::fs::write(
                    t.dir.join("rm-a.json"),
                    "{\"model\": \"rm-a\", \"extra_results\": {\"llmbar-one\": 0.25}}",
                )
                .unwrap();
                std::fs::write(t.done_marker(), "").unwrap();
            }
        }
        let mut obs = Collect::default();
        let c = collect(&ts, &plan.output_dir, "sweep", &mut fake_merge, &mut obs).unwrap();
        assert!(!c.complete());
        let merged: Vec<&Path> = c.merged.iter().map(|(d, _)| d.as_path()).collect();
        assert_eq!(
            merged,
            [base.join("out/rm-a/natural"), base.join("out/rm-a/one")]
        );
        assert_eq!(c.incomplete.len(), 2);
        assert_eq!(c.incomplete[0].0, base.join("out/rm-b/natural"));
        assert_eq!(c.incomplete[0].1, ["task 6 (rm-b/natural shard 1/2)"]);
        assert_eq!(c.incomplete[1].1, ["task 9 (rm-b/one)"]);
        assert_eq!(
            c.failed.len(),
            2,
            "both `broken` merges fail: {:?}",
            c.failed
        );
        assert!(c.failed[0].1.contains("appears twice"));
        let (csv, table) = c.leaderboard.unwrap();
        assert_eq!(csv, base.join("out/leaderboard.csv"));
        let text = std::fs::read_to_string(&csv).unwrap();
        assert!(text.lines().count() == 2 && text.contains("rm-a"), "{text}");
        // One row for rm-a, from the merged run and the unsharded one.
        assert!(
            text.contains("llmbar-natural") && text.contains("llmbar-one"),
            "{text}"
        );
        assert!(table.contains("rm-a") && !table.contains("rm-b"), "{table}");
        let html = c.report.unwrap().unwrap();
        assert_eq!(html, base.join("out/report.html"));
        let page = std::fs::read_to_string(html).unwrap();
        assert!(
            page.contains("rm-a") && page.contains("<title>sweep"),
            "{page}"
        );
    }

    #[test]
    fn nothing_finished_means_no_board() {
        let d = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir_all(base.join("rm-a")).unwrap();
        let text =
            "output_dir = \"out\"\n[[model]]\npath = \"rm-a\"\n[[benchmark]]\nname = \"b\"\n";
        let plan = Plan::parse(text, &base.join("plan.toml")).unwrap();
        let ts = tasks(&plan, Path::new("/bin/rb"));
        let mut called = false;
        let mut merge = |_: &Path| -> Result<Vec<PathBuf>, String> {
            called = true;
            Ok(Vec::new())
        };
        let c = collect(
            &ts,
            &plan.output_dir,
            "t",
            &mut merge,
            &mut Collect::default(),
        )
        .unwrap();
        assert!(!called && c.leaderboard.is_none() && c.incomplete.len() == 1);
        assert!(c.report.is_none());
    }
}
