//! Shards of a run: `--shard i/n`'s deterministic split of the samples, each finished
//! shard's manifest, and the checks `merge` makes before it writes the run's results.
//!
//! Layout under the output folder: `shards/{name}.shard-{i}-of-{n}.store.jsonl` (the shard's
//! score store) and `shards/{name}.shard-{i}-of-{n}.json` (its manifest, written last and
//! atomically: a shard is finished when its manifest exists). `{name}` carries `.v2` for
//! RewardBench 2 runs, as the resume store does.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Manifest format version.
pub const MANIFEST_VERSION: u64 = 1;

/// One shard of `count`: `index` in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a shard: write i/n with 0 <= i < n (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl Shard {
    /// `shard-{i}-of-{n}`.
    pub fn label(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

/// A sample's stable key for sharding: subset, id and content hash.
pub fn sample_key(row: &crate::data::Sample) -> String {
    format!(
        "{}\u{0}{}\u{0}{}",
        row.subset().unwrap_or(""),
        row.metadata
            .get("id")
            .map_or(String::new(), |v| v.to_string()),
        row.content_hash()
    )
}

/// A digest of every sample's key, in dataset order: shards of one run share it.
pub fn dataset_digest(keys: &[String]) -> String {
    let mut d = Digest::default();
    for k in keys {
        d.field("sample", k.as_bytes());
    }
    d.hex()
}

/// The command line without `--shard i/n` (what `merge` runs again).
pub fn without_shard(argv: &[String]) -> Vec<String> {
    let mut args = Vec::new();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if a == "--shard" {
            it.next();
        } else if !a.starts_with("--shard=") {
            args.push(a.clone());
        }
    }
    args
}

/// The shard of every sample: samples are ordered by a digest of their key (subset, id and
/// content hash), then each goes to the shard with the fewest tokens so far (ties: the
/// lowest index). Deterministic, and balanced by `weights` (each sample's tokens).
pub fn assign(keys: &[String], weights: &[usize], count: usize) -> Vec<usize> {
    let mut order: Vec<(String, usize)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (Digest::default().field("sample", k.as_bytes()).hex(), i))
        .collect();
    order.sort();
    let mut load = vec![0usize; count.max(1)];
    let mut out = vec![0; keys.len()];
    for (_, i) in order {
        let (s, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(j, l)| (**l, *j))
            .unwrap_or((0, &0));
        out[i] = s;
        load[s] += weights.get(i).copied().unwrap_or(0).max(1);
    }
    out
}

/// A finished shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub rewardbench_shard: u64,
    /// The run's name (`{model}` or `{model}.v2`).
    pub name: String,
    pub shard: usize,
    pub shards: usize,
    /// The score store's fingerprint: shards of one run share it.
    pub fingerprint: String,
    /// A digest of every sample's key in dataset order: shards of one run share it.
    pub dataset: String,
    /// Samples and texts this shard scored.
    pub samples: usize,
    pub texts: usize,
    /// The score store, relative to the manifest's folder.
    pub store: String,
    /// The command's arguments without `--shard` (what `merge` runs again) and its folder.
    pub args: Vec<String>,
    pub cwd: String,
    pub execution_provider: String,
    pub onnxruntime_version: String,
    pub onnxruntime_library: String,
    /// For judge runs: the base-URL variables the judges were routed with (never keys), so
    /// `merge` finds the answers under the same judge identities.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
}

impl Manifest {
    /// Shard `shard` of run `name`, whose score store is `store` (its file name is kept),
    /// started with `args` from the current folder; the caller fills in what it scored.
    pub fn new(name: &str, shard: Shard, store: &Path, args: Vec<String>) -> Self {
        Self {
            rewardbench_shard: MANIFEST_VERSION,
            name: name.to_string(),
            shard: shard.index,
            shards: shard.count,
            fingerprint: String::new(),
            dataset: String::new(),
            samples: 0,
            texts: 0,
            store: store
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            args,
            cwd: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            execution_provider: String::new(),
            onnxruntime_version: String::new(),
            onnxruntime_library: String::new(),
            env: Default::default(),
        }
    }

    /// Its place under the output folder `dir` and its text (pretty JSON and a newline).
    pub fn file(&self, dir: &Path) -> (PathBuf, String) {
        let shard = Shard {
            index: self.shard,
            count: self.shards,
        };
        let text = serde_json::to_string_pretty(self).unwrap_or_default() + "\n";
        (shard_file(dir, &self.name, shard, ".json"), text)
    }
}

/// `{dir}/shards/{name}.{label}` plus `ext`.
pub fn shard_file(dir: &Path, name: &str, shard: Shard, ext: &str) -> PathBuf {
    dir.join("shards")
        .join(format!("{name}.{}{ext}", shard.label()))
}

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a shard manifest: {message}", path.display())]
    Bad { path: PathBuf, message: String },
    #[error("no finished shards (shards/*.shard-I-of-N.json) under {dirs}")]
    None { dirs: String },
    #[error("{name}: shard {index} of {count} is missing (no {expected}); run it (`--shard {index}/{count}`) or copy its files, then merge again")]
    Missing {
        name: String,
        index: usize,
        count: usize,
        expected: String,
    },
    #[error("{name}: shard {index} of {count} appears twice: {} and {}", first.display(), second.display())]
    Duplicate {
        name: String,
        index: usize,
        count: usize,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{name}: {} and {} are not shards of one run: their {field} differ", first.display(), second.display())]
    Mismatch {
        name: String,
        field: &'static str,
        first: PathBuf,
        second: PathBuf,
    },
}

/// One run's shards, in shard order.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub count: usize,
    pub shards: Vec<(PathBuf, Manifest)>,
}

impl Group {
    /// The score stores of every shard.
    pub fn stores(&self) -> Vec<PathBuf> {
        self.shards
            .iter()
            .map(|(p, m)| p.parent().unwrap_or(Path::new(".")).join(&m.store))
            .collect()
    }
}

fn manifests(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ShardError> {
    let rd = std::fs::read_dir(dir).map_err(|source| ShardError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() && !name.starts_with('.') {
            manifests(&p, out)?;
        } else if name.ends_with(".json") && name.contains(".shard-") {
            out.push(p);
        }
    }
    Ok(())
}

/// Every run's shards under `dirs` (each searched recursively), checked: the shards of a
/// run share its split, fingerprint and dataset, and cover `0..n` exactly once.
pub fn collect(dirs: &[PathBuf]) -> Result<Vec<Group>, ShardError> {
    let mut files = Vec::new();
    for d in dirs {
        manifests(d, &mut files)?;
    }
    let mut groups: Vec<Group> = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| ShardError::Io {
            path: f.clone(),
            source,
        })?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| ShardError::Bad {
            path: f.clone(),
            message: e.to_string(),
        })?;
        if m.rewardbench_shard != MANIFEST_VERSION {
            return Err(ShardError::Bad {
                path: f.clone(),
                message: format!(
                    "version {} (this build reads {MANIFEST_VERSION})",
                    m.rewardbench_shard
                ),
            });
        }
        match groups.iter_mut().find(|g| g.name == m.name) {
            Some(g) => {
                let (first, fm) = &g.shards[0];
                let field = if fm.shards != m.shards {
                    Some("shard counts")
                } else if fm.fingerprint != m.fingerprint {
                    Some("score fingerprints (model, tokenizer, template or settings)")
                } else if fm.dataset != m.dataset {
                    Some("datasets")
                } else {
                    None
                };
                if let Some(field) = field {
                    return Err(ShardError::Mismatch {
                        name: m.name.clone(),
                        field,
                        first: first.clone(),
                        second: f,
                    });
                }
                if let Some((p, _)) = g.shards.iter().find(|(_, x)| x.shard == m.shard) {
                    return Err(ShardError::Duplicate {
                        name: m.name.clone(),
                        index: m.shard,
                        count: m.shards,
                        first: p.clone(),
                        second: f,
                    });
                }
                g.shards.push((f, m));
            }
            None => groups.push(Group {
                name: m.name.clone(),
                count: m.shards,
                shards: vec![(f, m)],
            }),
        }
    }
    if groups.is_empty() {
        return Err(ShardError::None {
            dirs: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    for g in &mut groups {
        g.shards.sort_by_key(|(_, m)| m.shard);
        for index in 0..g.count {
            if !g.shards.iter().any(|(_, m)| m.shard == index) {
                let dir = g.shards[0].0.parent().unwrap_or(Path::new("."));
                return Err(ShardError::Missing {
                    name: g.name.clone(),
                    index,
                    count: g.count,
                    expected: dir
                        .join(format!(
                            "{}.{}.json",
                            g.name.rsplit('/').next().unwrap_or(&g.name),
                            Shard {
                                index,
                                count: g.count
                            }
                            .label()
                        ))
                        .display()
                        .to_string(),
                });
            }
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        assert!("4/4".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        assert_eq!(Shard { index: 0, count: 2 }.label(), "shard-0-of-2");
    }

    #[test]
    fn assignment_is_deterministic_complete_and_balanced() {
        let keys: Vec<String> = (0..200).map(|i| format!("s\u{0}{i}\u{0}h{i}")).collect();
        let weights: Vec<usize> = (0..200).map(|i| 10 + (i * 37) % 90).collect();
        let a = assign(&keys, &weights, 3);
        assert_eq!(a, assign(&keys, &weights, 3));
        let mut load = [0usize; 3];
        for (s, w) in a.iter().zip(&weights) {
            load[*s] += w;
        }
        let (lo, hi) = (load.iter().min().unwrap(), load.iter().max().unwrap());
        assert!(hi - lo <= 100, "{load:?}");
        // A sample's shard depends on the set, not on the order the file lists it in.
        let mut rev = keys.clone();
        rev.reverse();
        let mut wrev = weights.clone();
        wrev.reverse();
        let b = assign(&rev, &wrev, 3);
        for i in 0..200 {
            assert_eq!(a[i], b[199 - i]);
        }
    }
}
