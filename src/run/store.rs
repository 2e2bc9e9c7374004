//! The resume cache: scores of finished model calls, appended and flushed as each call
//! completes, so a crashed, killed or interrupted run picks up where it stopped.
//!
//! Layout (`{output_dir}/{name}.cache.jsonl`): a header line with the fingerprint of
//! everything that changes scores (model files, the token ids of every text, batching
//! settings, device), then one line per finished call: `{"call": k, "scores": [[..], ..]}`.
//! Calls are planned deterministically from those inputs, so call `k` of a resumed run is
//! the same call, with the same rows, as in the original run.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Cache format version; bump when the line layout changes (2: outputs are f64 vectors, so
/// DPO's sums are kept exactly).
const VERSION: u64 = 2;
/// Files larger than this are fingerprinted by the hub's SHA-256 when they are a hub-cache
/// blob, else by size, head and tail instead of every byte.
const FULL_HASH_LIMIT: u64 = 512 << 20;
const EDGE_BYTES: u64 = 16 << 20;

/// Errors of the resume cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("resume cache {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "resume cache {path} belongs to a different run (the model files, data, template, tokenizer or \
         batching settings changed), so it is not reused. Pass --overwrite to discard it and start afresh, \
         or choose another --output_dir"
    )]
    Mismatch { path: PathBuf },
    #[error(
        "resume cache {path}: line {line} is damaged ({problem}); pass --overwrite to start afresh"
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

/// The run fingerprint: a [`Digest`] of labelled fields and files.
pub use crate::digest::Digest as Fingerprint;

impl Fingerprint {
    /// A file's contents; a missing file counts as absent. Past [`FULL_HASH_LIMIT`]: a link
    /// to a hub-cache blob named by its SHA-256 (how the hub names large files) counts by that
    /// hash, any other file by its size, head and tail.
    pub fn file(&mut self, label: &str, path: &Path) -> Result<&mut Self, CacheError> {
        let io = |source| CacheError::Io {
            path: path.to_path_buf(),
            source,
        };
        let Ok(mut f) = File::open(path) else {
            return Ok(self.field(label, b"<absent>"));
        };
        let size = f.metadata().map_err(io)?.len();
        self.field(label, &size.to_le_bytes());
        let mut buf = Vec::new();
        if size <= FULL_HASH_LIMIT {
            f.read_to_end(&mut buf).map_err(io)?;
            self.bytes(&buf);
        } else if let Some(sha) = hub_blob_sha256(path) {
            self.field("sha256", sha.as_bytes());
        } else {
            (&mut f)
                .take(EDGE_BYTES)
                .read_to_end(&mut buf)
                .map_err(io)?;
            f.seek(SeekFrom::End(-(EDGE_BYTES as i64))).map_err(io)?;
            f.read_to_end(&mut buf).map_err(io)?;
            self.bytes(&buf);
        }
        Ok(self)
    }
}

/// The SHA-256 a hub-cache link names: `path` links to `.../blobs/{64 hex digits}` (the hub's
/// LFS object id, which `huggingface_hub` and this tool name the blob by).
fn hub_blob_sha256(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    let parent = target.parent()?.file_name()?;
    let name = target.file_name()?.to_str()?;
    let hex = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
    (parent == "blobs" && hex).then(|| name.to_ascii_lowercase())
}

/// An open cache: finished calls read back, and the file to append new ones to.
pub struct Cache {
    path: PathBuf,
    /// None when opened read only (`--dry_run`): records are kept in memory only.
    file: Option<File>,
    /// Scores of finished calls, by call index.
    pub done: BTreeMap<usize, Vec<Vec<f64>>>,
    /// A damaged last line (a write cut off by a kill) was dropped.
    pub dropped_partial_line: bool,
}

/// Opens an append-only record file (a cache or a score store): its folder made (a hub
/// model's `org/name` puts it in a subfolder), a matching file's records read by `read`
/// (unless there is none or `overwrite`), and the file opened for appending after them, with
/// `header` when new. With `read_only` nothing is created or changed and no file is returned.
/// Also returns whether a damaged last line (a write cut off by a kill) was dropped.
fn open_records(
    path: &Path,
    header: &Value,
    overwrite: bool,
    read_only: bool,
    read: impl FnOnce() -> Result<(u64, bool), CacheError>,
) -> Result<(Option<File>, bool), CacheError> {
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !read_only)
    {
        std::fs::create_dir_all(parent).map_err(|source| CacheError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let (keep, dropped) = if path.exists() && !overwrite {
        read()?
    } else {
        (0, false)
    };
    let file = match read_only {
        true => None,
        false => Some(open_append(path, keep, header)?),
    };
    Ok((file, dropped))
}

impl Cache {
    /// Opens `path` for `fingerprint`: reuses a matching cache, starts a new one when there
    /// is none (or `overwrite`), refuses a cache of another run.
    pub fn open(path: &Path, fingerprint: &str, overwrite: bool) -> Result<Self, CacheError> {
        Self::open_mode(path, fingerprint, overwrite, false)
    }

    /// [`Cache::open`], or with `read_only` the finished calls alone: no file or folder is
    /// created or changed.
    pub fn open_mode(
        path: &Path,
        fingerprint: &str,
        overwrite: bool,
        read_only: bool,
    ) -> Result<Self, CacheError> {
        let mut done = BTreeMap::new();
        let header = json!({"rewardbench_cache": VERSION, "fingerprint": fingerprint});
        let (file, dropped) = open_records(path, &header, overwrite, read_only, || {
            read_records(
                path,
                |h| {
                    h["rewardbench_cache"] == json!(VERSION)
                        && h["fingerprint"] == json!(fingerprint)
                },
                parse_line,
                |(call, scores)| {
                    done.insert(call, scores);
                },
            )
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            done,
            dropped_partial_line: dropped,
        })
    }

    /// Appends the scores of finished call `call`, one write, flushed.
    pub fn record(&mut self, call: usize, scores: &[Vec<f64>]) -> Result<(), CacheError> {
        match &mut self.file {
            Some(f) => append_line(f, &self.path, &json!({"call": call, "scores": scores})),
            None => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Score store format version.
const STORE_VERSION: u64 = 1;

/// A content-keyed score store: each finished call's per-text scores under the text's key
/// (a digest of its token ids and mask), in a file whose header fingerprints everything
/// else that changes a score (model, tokenizer, template, truncation, device, ONNX Runtime,
/// export). Unlike [`Cache`] it does not depend on the batch size, the plan or the texts
/// present, so a resumed run may use another `--batch_size`, and the stores of a run's
/// shards can be unioned. Layout: a header line `{"rewardbench_store": 1, "fingerprint":
/// F}`, then `{"keys": [k, ...], "scores": [[..], ...]}` per finished call.
pub struct ScoreStore {
    path: PathBuf,
    /// None when opened read only (`--dry_run`): records are kept in memory only.
    file: Option<File>,
    /// Scores of the texts already in the store, by key.
    pub known: std::collections::HashMap<String, Vec<f64>>,
    /// A half-written last line (a kill mid-write) was dropped.
    pub dropped_partial_line: bool,
}

/// Opens a records file for appending: its first `keep` bytes (the good lines read back) are
/// kept and a damaged tail cut; with nothing to keep it starts afresh with `header`.
fn open_append(path: &Path, keep: u64, header: &Value) -> Result<File, CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    if keep > 0 {
        let f = OpenOptions::new().write(true).open(path).map_err(io)?;
        f.set_len(keep).map_err(io)?;
        return OpenOptions::new().append(true).open(path).map_err(io);
    }
    let mut f = File::create(path).map_err(io)?;
    writeln!(f, "{header}").map_err(io)?;
    f.flush().map_err(io)?;
    Ok(f)
}

/// Appends one JSON line, one write, flushed.
fn append_line(file: &mut File, path: &Path, line: &Value) -> Result<(), CacheError> {
    let mut bytes = serde_json::to_vec(line).unwrap_or_default();
    bytes.push(b'\n');
    file.write_all(&bytes)
        .and_then(|()| file.flush())
        .map_err(|source| CacheError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Reads a JSON-lines file of records after a header line: `header_ok` must accept the
/// header (else [`CacheError::Mismatch`]), each line goes through `parse` to `sink`; a damaged
/// last line (a kill mid-write) is dropped, a damaged earlier one is an error. Returns the
/// bytes of the good lines and whether a last line was dropped.
fn read_records<T>(
    path: &Path,
    header_ok: impl Fn(&Value) -> bool,
    parse: impl Fn(&[u8]) -> Option<T>,
    mut sink: impl FnMut(T),
) -> Result<(u64, bool), CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io)?);
    let mut lines = reader.split(b'\n').enumerate().peekable();
    let mut keep = 0u64;
    match lines.next() {
        Some((_, Ok(first))) => {
            let header: Option<Value> = serde_json::from_slice(&first).ok();
            if !header.as_ref().is_some_and(&header_ok) {
                return Err(CacheError::Mismatch {
                    path: path.to_path_buf(),
                });
            }
            keep += first.len() as u64 + 1;
        }
        Some((_, Err(e))) => return Err(io(e)),
        None => return Ok((0, false)),
    }
    let mut dropped = false;
    while let Some((i, line)) = lines.next() {
        let line = line.map_err(io)?;
        let is_last = lines.peek().is_none();
        match parse(&line) {
            Some(r) => {
                sink(r);
                keep += line.len() as u64 + 1;
            }
            None if is_last => dropped = !line.is_empty(),
            None => {
                return Err(CacheError::Corrupt {
                    path: path.to_path_buf(),
                    line: i + 1,
                    problem: "not a record of this file".into(),
                })
            }
        }
    }
    Ok((keep, dropped))
}

/// A score store's records into `known`.
fn read_store(
    path: &Path,
    fingerprint: &str,
    known: &mut std::collections::HashMap<String, Vec<f64>>,
) -> Result<(u64, bool), CacheError> {
    read_records(
        path,
        |h| {
            h["rewardbench_store"] == json!(STORE_VERSION) && h["fingerprint"] == json!(fingerprint)
        },
        parse_store_line,
        |pairs| known.extend(pairs),
    )
}

fn parse_store_line(line: &[u8]) -> Option<Vec<(String, Vec<f64>)>> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let keys = v.get("keys")?.as_array()?;
    let scores = v.get("scores")?.as_array()?;
    if keys.len() != scores.len() {
        return None;
    }
    keys.iter()
        .zip(scores)
        .map(|(k, s)| {
            let s: Option<Vec<f64>> = s.as_array()?.iter().map(Value::as_f64).collect();
            Some((k.as_str()?.to_string(), s?))
        })
        .collect()
}

impl ScoreStore {
    /// Opens (or creates) the store at `path` for `fingerprint`; `overwrite` discards it.
    pub fn open(path: &Path, fingerprint: &str, overwrite: bool) -> Result<Self, CacheError> {
        Self::open_mode(path, fingerprint, overwrite, false)
    }

    /// [`ScoreStore::open`], or with `read_only` the stored scores alone: no file or folder
    /// is created or changed.
    pub fn open_mode(
        path: &Path,
        fingerprint: &str,
        overwrite: bool,
        read_only: bool,
    ) -> Result<Self, CacheError> {
        let mut known = std::collections::HashMap::new();
        let header = json!({"rewardbench_store": STORE_VERSION, "fingerprint": fingerprint});
        let (file, dropped) = open_records(path, &header, overwrite, read_only, || {
            read_store(path, fingerprint, &mut known)
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            known,
            dropped_partial_line: dropped,
        })
    }

    /// The union of finished stores (read only): every store must have `fingerprint`.
    pub fn union(
        paths: &[PathBuf],
        fingerprint: &str,
    ) -> Result<std::collections::HashMap<String, Vec<f64>>, CacheError> {
        let mut known = std::collections::HashMap::new();
        for p in paths {
            read_store(p, fingerprint, &mut known)?;
        }
        Ok(known)
    }

    /// Appends one finished call's texts and scores, one write, flushed.
    pub fn record(&mut self, keys: &[String], scores: &[Vec<f64>]) -> Result<(), CacheError> {
        if let Some(f) = &mut self.file {
            append_line(f, &self.path, &json!({"keys": keys, "scores": scores}))?;
        }
        for (k, s) in keys.iter().zip(scores) {
            self.known.insert(k.clone(), s.clone());
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn parse_line(line: &[u8]) -> Option<(usize, Vec<Vec<f64>>)> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let call = usize::try_from(v.get("call")?.as_u64()?).ok()?;
    let scores = v
        .get("scores")?
        .as_array()?
        .iter()
        .map(|row| row.as_array()?.iter().map(Value::as_f64).collect())
        .collect::<Option<Vec<Vec<f64>>>>()?;
    Some((call, scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_truncated_line_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let mut c = Cache::open(&path, "fp1", false).unwrap();
        c.record(0, &[vec![0.1, -2.5], vec![3.0e-7]]).unwrap();
        c.record(2, &[vec![1.0]]).unwrap();
        drop(c);
        // A kill in the middle of a write leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"call\": 3, \"scor").unwrap();
        drop(f);
        let mut c = Cache::open(&path, "fp1", false).unwrap();
        assert!(c.dropped_partial_line);
        assert_eq!(c.done.keys().copied().collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(
            c.done[&0],
            vec![vec![0.1f64, -2.5], vec![3.0e-7]],
            "scores round-trip exactly"
        );
        c.record(3, &[vec![4.0]]).unwrap();
        drop(c);
        let c = Cache::open(&path, "fp1", false).unwrap();
        assert!(!c.dropped_partial_line);
        assert_eq!(c.done.len(), 3);
        drop(c);
        assert!(matches!(
            Cache::open(&path, "fp2", false),
            Err(CacheError::Mismatch { .. })
        ));
        let c = Cache::open(&path, "fp2", true).unwrap();
        assert!(c.done.is_empty());
    }

    #[test]
    fn score_store_is_keyed_by_text_and_unions() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.store.jsonl");
        let mut s = ScoreStore::open(&a, "fp", false).unwrap();
        s.record(&["k1".into(), "k2".into()], &[vec![0.5], vec![-1.25, 2.0]])
            .unwrap();
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&a).unwrap();
        f.write_all(b"{\"keys\": [\"k3\"], \"sco").unwrap();
        drop(f);
        let mut s = ScoreStore::open(&a, "fp", false).unwrap();
        assert!(s.dropped_partial_line);
        assert_eq!(s.known.len(), 2);
        assert_eq!(s.known["k2"], vec![-1.25, 2.0]);
        s.record(&["k3".into()], &[vec![3.0]]).unwrap();
        drop(s);
        let b = dir.path().join("b.store.jsonl");
        let mut t = ScoreStore::open(&b, "fp", false).unwrap();
        t.record(&["k9".into()], &[vec![9.0]]).unwrap();
        drop(t);
        let u = ScoreStore::union(&[a.clone(), b], "fp").unwrap();
        assert_eq!(u.len(), 4);
        assert!(matches!(
            ScoreStore::union(std::slice::from_ref(&a), "other"),
            Err(CacheError::Mismatch { .. })
        ));
        assert!(matches!(
            ScoreStore::open(&a, "other", false),
            Err(CacheError::Mismatch { .. })
        ));
    }

    #[test]
    fn the_cache_folder_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("org/name.cache.jsonl");
        Cache::open(&path, "fp", false).unwrap();
        assert!(path.is_file());
    }

    #[test]
    fn large_hub_blobs_count_by_their_sha256_and_other_large_files_by_their_edges() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        let snap = dir.path().join("snapshots/c");
        std::fs::create_dir_all(&snap).unwrap();
        let sha = |c: char| c.to_string().repeat(64);
        let blob = |name: &str, byte: u8| {
            let f = File::create(blobs.join(name)).unwrap();
            f.set_len(FULL_HASH_LIMIT + 1).unwrap(); // sparse
            (&f).write_all(&[byte]).unwrap();
        };
        let link = |name: &str, to: &str| {
            let p = snap.join(name);
            std::os::unix::fs::symlink(format!("../../blobs/{to}"), &p).unwrap();
            p
        };
        let fp = |p: &Path| Fingerprint::default().file("f", p).unwrap().hex();
        blob(&sha('a'), 1);
        blob(&sha('b'), 1);
        blob(&sha('c'), 2);
        blob("not-a-sha", 1);
        let (a, b, c) = (
            link("a", &sha('a')),
            link("b", &sha('b')),
            link("c", &sha('c')),
        );
        // The same bytes under two hashes differ; the hash alone decides.
        let before = fp(&a);
        assert_ne!(before, fp(&b));
        blob(&sha('a'), 2);
        assert_eq!(fp(&a), before, "the blob's bytes are not read");
        // A link to a blob not named by a SHA-256 counts by its contents, as the file does.
        let other = link("o", "not-a-sha");
        assert_eq!(fp(&other), fp(&blobs.join("not-a-sha")));
        assert_ne!(fp(&other), fp(&c));
        // Small files always count by every byte.
        let small = dir.path().join("small");
        std::fs::write(&small, b"x").unwrap();
        let small_link = snap.join("s");
        std::os::unix::fs::symlink(&small, &small_link).unwrap();
        assert_eq!(fp(&small), fp(&small_link));
    }

    #[test]
    fn fingerprint_separates_fields() {
        let a = Fingerprint::default()
            .field("x", b"ab")
            .field("y", b"c")
            .hex();
        let b = Fingerprint::default()
            .field("x", b"a")
            .field("y", b"bc")
            .hex();
        assert_ne!(a, b);
        assert_eq!(
            a,
            Fingerprint::default()
                .field("x", b"ab")
                .field("y", b"c")
                .hex()
        );
    }
}
