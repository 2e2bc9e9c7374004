//! Where a dataset comes from: a local path or a hub id (`org/name@revision`), the split
//! wanted, and hub resolution to a local snapshot.

use std::path::{Path, PathBuf};

use crate::hub::{self, Hub, RepoKind, RepoRef};

use super::splits::{select_splits, split_files};
use super::{is_data_file, DataError, CORE_SET, PREF_SETS, PREF_SETS_ALIAS};

/// Where rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file, or a folder of data files (a hub snapshot is one).
    Local(PathBuf),
    /// A hub dataset at a revision (default `main`).
    Hub {
        repo: String,
        revision: Option<String>,
    },
}

/// The results folder a dataset's runs go to under the default output folder, as
/// RewardBench's scripts keep `eval-set/` and `pref-sets/` apart: `eval-set` (the core set),
/// `pref-sets`, `rb2` (RewardBench 2), else the dataset's own name (a hub id's last part, a
/// local file's stem or folder's name); `-debug` after it for `--debug` runs.
pub fn results_folder(dataset: &str, pref_sets: bool, debug: bool) -> String {
    let base = match dataset {
        crate::data::CORE_SET => "eval-set".to_string(),
        crate::data::PREF_SETS => "pref-sets".to_string(),
        crate::data::RB2 => "rb2".to_string(),
        _ => {
            let spec = DatasetSpec::parse(dataset, None);
            let name = match &spec.source {
                Source::Hub { repo, .. } => repo.rsplit('/').next().unwrap_or(repo).to_string(),
                Source::Local(p) => {
                    let p = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                    let stem = if p.is_dir() {
                        p.file_name()
                    } else {
                        p.file_stem()
                    };
                    stem.map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "data".into())
                }
            };
            // `rows.jsonl.gz` -> `rows`
            let name = name
                .trim_end_matches(".jsonl")
                .trim_end_matches(".json")
                .to_string();
            if pref_sets {
                format!("pref-sets-{name}")
            } else {
                name
            }
        }
    };
    if debug {
        format!("{base}-debug")
    } else {
        base
    }
}

/// A dataset and the split wanted (`None`: all splits, concatenated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    pub source: Source,
    pub split: Option<String>,
    /// Read with RewardBench's pref-set rules (`--pref_sets` with a local copy or another
    /// id); `allenai/pref-test-sets` and its hub-cache snapshots get them anyway.
    pub pref_sets: bool,
}

/// True for a name that reads as a hub dataset id (`org/name`, `org/name@revision` or
/// `hf://datasets/org/name`) rather than a local file.
pub fn looks_like_hub_id(name: &str) -> bool {
    matches!(DatasetSpec::parse(name, None).source, Source::Hub { .. })
}

impl DatasetSpec {
    /// Reads `--dataset`: an existing local path, `hf://datasets/ORG/NAME[@REV]`, or
    /// `ORG/NAME[@REV]`, with the split asked for.
    pub fn parse(name: &str, split: Option<&str>) -> Self {
        let with = |source| Self {
            source,
            split: split.map(str::to_string),
            pref_sets: false,
        };
        if Path::new(name).exists() {
            return with(Source::Local(PathBuf::from(name)));
        }
        let (id, explicit) = match name.strip_prefix("hf://datasets/") {
            Some(rest) => (rest, true),
            None => (name, false),
        };
        let (id, revision) = match id.split_once('@') {
            Some((i, r)) if !r.is_empty() => (i, Some(r.to_string())),
            _ => (id, None),
        };
        let hubby = hub::is_repo_id(id) && (explicit || (id.contains('/') && !is_data_file(id)));
        if hubby {
            with(Source::Hub {
                repo: id.to_string(),
                revision,
            })
        } else {
            with(Source::Local(PathBuf::from(name)))
        }
    }

    /// Where the rows come from, for messages: the local path, or `hf://datasets/ORG/NAME[@REV]`.
    pub fn location(&self) -> PathBuf {
        match &self.source {
            Source::Local(p) => p.clone(),
            Source::Hub { repo, revision } => PathBuf::from(match revision {
                Some(r) => format!("hf://datasets/{repo}@{r}"),
                None => format!("hf://datasets/{repo}"),
            }),
        }
    }

    /// The hub id this data comes from: the hub source, or the repo of a hub-cache snapshot.
    pub fn repo_id(&self) -> Option<String> {
        match &self.source {
            Source::Hub { repo, .. } => Some(repo.clone()),
            Source::Local(p) => match hub::repo_of_cache_path(p) {
                Some((RepoKind::Dataset, id)) => Some(id),
                _ => None,
            },
        }
    }

    /// The hub commit these rows come from: a hub-cache snapshot's folder name (a resolved
    /// hub spec is one), else the revision asked for; `None` for other local data.
    pub fn commit(&self) -> Option<String> {
        match &self.source {
            Source::Hub { revision, .. } => revision.clone(),
            Source::Local(p) => {
                hub::repo_of_cache_path(p)?;
                let comps: Vec<String> = p
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let i = comps.iter().rposition(|c| c == "snapshots")?;
                comps.get(i + 1).cloned()
            }
        }
    }

    /// The split to read: the one asked for, else `filtered` for the core set, else all.
    pub fn effective_split(&self) -> Option<String> {
        self.split.clone().or_else(|| {
            (self.repo_id().as_deref() == Some(CORE_SET)).then(|| "filtered".to_string())
        })
    }

    pub(super) fn is_pref_sets(&self) -> bool {
        self.pref_sets || matches!(self.repo_id().as_deref(), Some(PREF_SETS | PREF_SETS_ALIAS))
    }
}

/// Hub ids nobody types by mistake (the defaults): their errors need no "no local file".
const KNOWN_SETS: &[&str] = &[CORE_SET, PREF_SETS, PREF_SETS_ALIAS, super::RB2];

/// Downloads (or finds in the cache) the files a hub dataset spec needs and returns the
/// equivalent local spec: the snapshot folder and the split. Local specs come back as given.
pub fn resolve(spec: &DatasetSpec, hub: &Hub) -> Result<DatasetSpec, DataError> {
    let Source::Hub { repo, revision } = &spec.source else {
        return Ok(spec.clone());
    };
    let hub_err = |source| DataError::Hub {
        name: repo.clone(),
        source: Box::new(source),
    };
    let r = RepoRef::new(repo, RepoKind::Dataset, revision.as_deref());
    let snap = hub.snapshot(&r).map_err(|source| match source {
        // The repo itself is not there (or cannot be looked for): the path may be a typo.
        hub::HubError::NotFound { .. }
        | hub::HubError::Denied { .. }
        | hub::HubError::Unreachable { .. }
        | hub::HubError::NotCached { .. }
            if !KNOWN_SETS.contains(&repo.as_str()) =>
        {
            DataError::NoFileNorRepo {
                name: match revision {
                    Some(rev) => format!("{repo}@{rev}"),
                    None => repo.clone(),
                },
                source: Box::new(source),
            }
        }
        other => hub_err(other),
    })?;
    let readme = match snap.files.iter().any(|f| f == "README.md") {
        true => {
            let p = hub.fetch(&snap, "README.md").map_err(hub_err)?;
            std::fs::read_to_string(p).ok()
        }
        false => None,
    };
    let shown = PathBuf::from(format!("hf://datasets/{repo}"));
    let split = spec.effective_split();
    let splits = split_files(&snap.files, readme.as_deref());
    let wanted = select_splits(&shown, splits, split.as_deref())?;
    let mut dir = hub.snapshot_dir(&r, &snap.commit);
    for (_, files) in &wanted {
        for f in files {
            let local = hub.fetch(&snap, f).map_err(hub_err)?;
            // The snapshot folder the files landed in (the commit the download resolved to).
            if let Some(d) = local.ancestors().nth(f.split('/').count()) {
                dir = d.to_path_buf();
            }
        }
    }
    Ok(DatasetSpec {
        source: Source::Local(dir),
        split,
        pref_sets: spec.pref_sets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_read_back() {
        let s = DatasetSpec::parse("allenai/reward-bench", None);
        assert_eq!(s.effective_split().as_deref(), Some("filtered"));
        let s = DatasetSpec::parse("org/data@v1.0", Some("test"));
        assert_eq!(
            s.source,
            Source::Hub {
                repo: "org/data".into(),
                revision: Some("v1.0".into())
            }
        );
        assert_eq!(s.location(), PathBuf::from("hf://datasets/org/data@v1.0"));
        assert_eq!(s.split.as_deref(), Some("test"));
        assert!(!looks_like_hub_id("missing/rows.jsonl") && looks_like_hub_id("hf://datasets/x"));
    }
}

#[cfg(test)]
mod results_folder_tests {
    use super::results_folder;

    #[test]
    fn benchmarks_get_folders_of_their_own() {
        assert_eq!(
            results_folder(crate::data::CORE_SET, false, false),
            "eval-set"
        );
        assert_eq!(
            results_folder(crate::data::PREF_SETS, true, false),
            "pref-sets"
        );
        assert_eq!(results_folder(crate::data::RB2, false, true), "rb2-debug");
        assert_eq!(results_folder("org/my-prefs@v2", false, false), "my-prefs");
        assert_eq!(results_folder("data/rows.jsonl", false, false), "rows");
        assert_eq!(results_folder("data/rows.jsonl.gz", false, false), "rows");
        assert_eq!(
            results_folder("copy/pref-test-sets", true, false),
            "pref-sets-pref-test-sets"
        );
    }
}
