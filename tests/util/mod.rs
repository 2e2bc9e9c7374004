//! Helpers shared by the integration suites.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod hub_server;
pub mod judge_server;
pub mod sweep;

/// The repository root: fixtures/ is below it, and the tests run from it.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tiny Llama reward model fixture.
pub fn llama() -> PathBuf {
    root().join("fixtures/models/tiny-llama-rm")
}

/// The `rewardbench` binary with `args`, then `--threads 1 --quiet`, without
/// `RUST_BACKTRACE`; a suite adds its own environment before running it.
pub fn rewardbench_command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rewardbench"));
    c.args(args)
        .args(["--threads", "1", "--quiet"])
        .env_remove("RUST_BACKTRACE");
    c
}

/// Runs [`rewardbench_command`] to the end.
pub fn rewardbench(args: &[&str]) -> Output {
    rewardbench_command(args).output().expect("binary runs")
}

/// The run's standard error, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A JSON array of integers (token ids, attention masks).
pub fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// `(score_chosen, score_rejected)` of each row of a `_scores.csv`, found by column name.
pub fn csv_scores(path: &Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (c, r) = (col("score_chosen"), col("score_rejected"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[c].parse().unwrap(), f[r].parse().unwrap())
        })
        .collect()
}

/// The JSON values of a JSON-lines file, one per line.
pub fn jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

/// The export venv's Python, or None and a loud `SKIPPED {test}: ... {missed}` line on stderr
/// when `export/.venv` is missing (`missed`: what was therefore not checked).
pub fn export_python(test: &str, missed: &str) -> Option<PathBuf> {
    let py = root().join("export/.venv/bin/python");
    if py.is_file() {
        return Some(py);
    }
    eprintln!(
        "SKIPPED {test}: {} is missing (`make export-venv` makes it); {missed}",
        py.display()
    );
    None
}

/// Runs `export/SCRIPT --model MODEL --out OUT EXTRA...` with the export venv's Python and
/// asserts it succeeded; None (and a loud SKIPPED line naming `test`) without the venv.
pub fn run_exporter(
    test: &str,
    script: &str,
    model: &Path,
    out: &Path,
    extra: &[&str],
) -> Option<()> {
    let py = export_python(test, &format!("export/{script} was NOT run"))?;
    let o = Command::new(&py)
        .arg(root().join("export").join(script))
        .arg("--model")
        .arg(model)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "export/{script}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    Some(())
}
