//! `{output_dir}/sweep.json`: what was submitted (the task table, the script, the job ids),
//! so `--status`, `--collect` and `--resubmit_failed` work from the plan alone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tasks::Task;
use super::SweepError;

/// Format version of sweep.json.
pub const STATE_VERSION: u32 = 1;

/// One `sbatch` submission (the first, then each resubmission).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submission {
    pub job_id: String,
    /// The task indices it ran (its `--array`).
    pub tasks: Vec<usize>,
    pub array: String,
    /// Seconds since the Unix epoch.
    pub submitted_at: u64,
}

/// The recorded sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub plan: PathBuf,
    /// `slurm` or `local`.
    pub engine: String,
    pub script: PathBuf,
    pub binary: PathBuf,
    pub ort_lib: Option<PathBuf>,
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub submissions: Vec<Submission>,
}

impl State {
    /// Reads `path`; `Ok(None)` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<Self>, SweepError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SweepError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let s: Self = serde_json::from_str(&text).map_err(|e| SweepError::State {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if s.version != STATE_VERSION {
            return Err(SweepError::State {
                path: path.to_path_buf(),
                message: format!("version {} (this binary reads {STATE_VERSION})", s.version),
            });
        }
        if s.tasks.iter().enumerate().any(|(i, t)| t.index != i) {
            return Err(SweepError::State {
                path: path.to_path_buf(),
                message: "task indices are not 0, 1, 2, ...".into(),
            });
        }
        Ok(Some(s))
    }

    /// Writes `path` atomically (a temporary file, then a rename).
    pub fn write(&self, path: &Path) -> Result<(), SweepError> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| SweepError::State {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        text.push('\n');
        write_atomic(path, text.as_bytes())
    }

    /// The latest submission that ran task `i`.
    pub fn latest_for(&self, i: usize) -> Option<&Submission> {
        self.submissions.iter().rev().find(|s| s.tasks.contains(&i))
    }
}

/// Writes `bytes` to a temporary name beside `path`, then renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SweepError> {
    let err = |source| SweepError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_the_latest_submission_of_a_task() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sweep.json");
        assert_eq!(State::read(&path).unwrap(), None);
        let task = |i: usize| Task {
            index: i,
            model: "m".into(),
            benchmark: "b".into(),
            shard: i,
            shards: 2,
            sharded: true,
            dir: "/o/m/b".into(),
            log: format!("/o/logs/{i}.log").into(),
            argv: vec!["/bin/rb".into()],
        };
        let s = State {
            version: STATE_VERSION,
            plan: "/p.toml".into(),
            engine: "slurm".into(),
            script: "/o/sweep.sh".into(),
            binary: "/bin/rb".into(),
            ort_lib: None,
            tasks: vec![task(0), task(1)],
            submissions: vec![
                Submission {
                    job_id: "7".into(),
                    tasks: vec![0, 1],
                    array: "0-1".into(),
                    submitted_at: 1,
                },
                Submission {
                    job_id: "9".into(),
                    tasks: vec![1],
                    array: "1".into(),
                    submitted_at: 2,
                },
            ],
        };
        s.write(&path).unwrap();
        let back = State::read(&path).unwrap().unwrap();
        assert_eq!(back, s);
        assert_eq!(back.latest_for(0).unwrap().job_id, "7");
        assert_eq!(back.latest_for(1).unwrap().job_id, "9");
        assert_eq!(back.latest_for(2), None);

        std::fs::write(&path, "{\"version\": 1}").unwrap();
        let e = State::read(&path).unwrap_err().to_string();
        assert!(e.contains("sweep.json"), "{e}");
    }
}
