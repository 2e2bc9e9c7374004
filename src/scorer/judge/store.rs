//! The judges' answer store: every answer (or final failure) appended as it arrives, keyed
//! by the judge's identity (model, endpoint, sampling settings) and the exact request, so a
//! re-run pays only for what is missing.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::protocol::Ask;
use crate::run::store::Fingerprint;

/// A judge call's outcome: its answer, or why it failed for good (never a secret).
pub type Answer = Result<String, String>;

/// Errors of the answer store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("judge answer store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The key of a request to a judge.
pub fn key(identity: &str, ask: &Ask) -> String {
    let mut fp = Fingerprint::default();
    fp.field("judge", identity.as_bytes());
    fp.field(
        "system",
        ask.system.as_deref().unwrap_or("\u{0}none").as_bytes(),
    );
    fp.field("user", ask.user.as_bytes());
    fp.hex()
}

/// An open store: answers read back, and the file new ones are appended to.
pub struct AnswerStore {
    path: PathBuf,
    known: HashMap<String, Answer>,
    file: Mutex<File>,
}

impl AnswerStore {
    /// Opens (or creates) `path`; a half-written last line (a killed run) is dropped.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let (records, good_len) = match std::fs::read(path) {
            Ok(bytes) => read_lines(&bytes),
            Err(_) => (Vec::new(), 0),
        };
        let known: HashMap<String, Answer> = records.into_iter().collect();
        let file = OpenOptions::new()
            .create(true)
            .append(false)
            .write(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        file.set_len(good_len as u64).map_err(io)?;
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            known,
            file: Mutex::new(file),
        })
    }

    /// The keys of the answers a store at `path` holds, read without creating or changing
    /// anything (`--dry_run`); none when there is no file.
    pub fn answered_keys(path: &Path) -> Result<std::collections::HashSet<String>, StoreError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(read_lines(&bytes).0.into_iter().map(|(k, _)| k).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(source) => Err(StoreError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Adds the answers of the store at `other` that this one lacks (a shard's, for a
    /// merge), in `other`'s order; returns how many were added.
    pub fn absorb(&mut self, other: &Path) -> Result<usize, StoreError> {
        let bytes = std::fs::read(other).map_err(|source| StoreError::Io {
            path: other.to_path_buf(),
            source,
        })?;
        let mut added = 0;
        for (k, a) in read_lines(&bytes).0 {
            if !self.known.contains_key(&k) {
                self.record(&k, &a)?;
                self.known.insert(k, a);
                added += 1;
            }
        }
        Ok(added)
    }

    pub fn get(&self, key: &str) -> Option<&Answer> {
        self.known.get(key)
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one outcome (one line, flushed).
    pub fn record(&self, key: &str, answer: &Answer) -> Result<(), StoreError> {
        let v = match answer {
            Ok(a) => json!({"key": key, "answer": a}),
            Err(e) => json!({"key": key, "answer": null, "error": e}),
        };
        let mut line = v.to_string();
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(line.as_bytes())
            .and_then(|()| f.flush())
            .map_err(|source| StoreError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// The records of a store file in order, and the length of its good lines (a half-written
/// last line, or anything after a damaged one, is left out).
fn read_lines(bytes: &[u8]) -> (Vec<(String, Answer)>, usize) {
    let mut out = Vec::new();
    let mut good_len = 0usize;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            break;
        }
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            break;
        };
        let (Some(k), answer) = (v["key"].as_str(), &v["answer"]) else {
            break;
        };
        let outcome = match answer.as_str() {
            Some(a) => Ok(a.to_string()),
            None => Err(v["error"].as_str().unwrap_or("failed").to_string()),
        };
        out.push((k.to_string(), outcome));
        good_len += line.len();
    }
    (out, good_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_and_a_cut_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let ask = Ask {
            system: None,
            user: "u".into(),
        };
        let (k1, k2) = (key("j", &ask), key("j2", &ask));
        assert_ne!(k1, k2);
        {
            let s = AnswerStore::open(&path).unwrap();
            s.record(&k1, &Ok("[[A]]".into())).unwrap();
            s.record(&k2, &Err("HTTP 400".into())).unwrap();
        }
        // A killed run's half line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"key\": \"x\", \"ans").unwrap();
        drop(f);
        let s = AnswerStore::open(&path).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(&k1), Some(&Ok("[[A]]".to_string())));
        assert_eq!(s.get(&k2), Some(&Err("HTTP 400".to_string())));
        s.record(&key("j3", &ask), &Ok("B".into())).unwrap();
        drop(s);
        assert_eq!(AnswerStore::open(&path).unwrap().len(), 3);
    }
}
