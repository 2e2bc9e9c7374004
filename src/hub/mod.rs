//! The Hugging Face hub: repo listings and file downloads through `hf-hub`, in the standard
//! cache layout (`{cache}/{models|datasets}--org--name/{blobs,refs,snapshots}`).
//!
//! Settings come from the same variables as `huggingface_hub`: `HF_ENDPOINT`, `HF_HUB_CACHE`
//! (else `HF_HOME/hub`, else `~/.cache/huggingface/hub`), `HF_TOKEN` (else the token file),
//! `HF_HUB_OFFLINE`. [`HubConfig`] can also be built explicitly, so nothing here needs the
//! process environment.
//!
//! Writing to the hub (publishing results) lives in [`api`] (the HTTP write API, with [`lfs`]),
//! [`card`] (model-card metadata), [`runs`] (a run's files) and [`publish`] (what is sent).

pub mod api;
pub mod card;
pub mod error;
pub mod lfs;
pub mod publish;
pub mod runs;

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Repo, RepoType};

/// Default hub address.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Errors talking to the hub or reading its cache.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "{what}: not found on {endpoint} (HTTP 404); check the id, the file name and --revision"
    )]
    NotFound { what: String, endpoint: String },
    #[error(
        "{what}: access denied by {endpoint} (HTTP {status}); the repo may be private or gated: set HF_TOKEN to a token that can read it"
    )]
    Denied {
        what: String,
        endpoint: String,
        status: u16,
    },
    #[error("{what}: the hub at {endpoint} answered HTTP {status}; try again later, or set HF_HUB_OFFLINE=1 to use cached files")]
    Status {
        what: String,
        endpoint: String,
        status: u16,
    },
    #[error("{what}: cannot reach the hub at {endpoint} ({message}); set HF_HUB_OFFLINE=1 to use cached files only")]
    Unreachable {
        what: String,
        endpoint: String,
        message: String,
    },
    #[error("{what}: not in the hub cache {cache} and HF_HUB_OFFLINE is set; run once online to download it")]
    NotCached { what: String, cache: PathBuf },
    #[error("{what}: {message}")]
    Other { what: String, message: String },
}

/// Whether a repo holds a model or a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    Model,
    Dataset,
}

impl RepoKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Model => "models",
            Self::Dataset => "datasets",
        }
    }
}

/// A repo at a revision (branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    pub id: String,
    pub kind: RepoKind,
    pub revision: String,
}

impl RepoRef {
    pub fn new(id: &str, kind: RepoKind, revision: Option<&str>) -> Self {
        Self {
            id: id.to_string(),
            kind,
            revision: revision.unwrap_or("main").to_string(),
        }
    }

    /// Cache folder name: `models--org--name` / `datasets--org--name`.
    pub fn folder_name(&self) -> String {
        format!("{}--{}", self.kind.prefix(), self.id.replace('/', "--"))
    }

    fn hf(&self) -> Repo {
        let t = match self.kind {
            RepoKind::Model => RepoType::Model,
            RepoKind::Dataset => RepoType::Dataset,
        };
        Repo::with_revision(self.id.clone(), t, self.revision.clone())
    }
}

impl std::fmt::Display for RepoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
        };
        write!(f, "{kind} {}", self.id)?;
        if self.revision != "main" {
            write!(f, " (revision {})", self.revision)?;
        }
        Ok(())
    }
}

/// Where the hub is and how to use it. Debug shows the token as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Hub address, no trailing slash.
    pub endpoint: String,
    /// The hub cache folder (holds `models--*`, `datasets--*`).
    pub cache_dir: PathBuf,
    pub token: Option<String>,
    /// Use cached files only; never touch the network.
    pub offline: bool,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("offline", &self.offline)
            .finish()
    }
}

/// `huggingface_hub`'s truthy spellings for boolean variables.
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

impl HubConfig {
    /// Settings from the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Settings from a variable lookup (the environment, or a map in tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let home = var("HOME").map(PathBuf::from);
        let hf_home = var("HF_HOME").map(PathBuf::from).or_else(|| {
            var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".cache")))
                .map(|c| c.join("huggingface"))
        });
        let hf_home = hf_home.unwrap_or_else(|| PathBuf::from(".cache/huggingface"));
        let cache_dir = var("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = var("HF_TOKEN").or_else(|| {
            let path = var("HF_TOKEN_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| hf_home.join("token"));
            std::fs::read_to_string(path)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        });
        Self {
            endpoint: var("HF_ENDPOINT")
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
                .trim_end_matches('/')
                .to_string(),
            cache_dir,
            token,
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v)),
        }
    }

    /// The token as a [`Secret`](crate::secret::Secret), for request headers.
    pub fn secret(&self) -> Option<crate::secret::Secret> {
        self.token.clone().map(crate::secret::Secret::new)
    }

    /// Settings for a given endpoint and cache, online, no token.
    pub fn new(endpoint: &str, cache_dir: &Path) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            cache_dir: cache_dir.to_path_buf(),
            token: None,
            offline: false,
        }
    }
}

/// A repo revision resolved to a commit, with its file list.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub repo: RepoRef,
    pub commit: String,
    /// Repo-relative file paths (`/`-separated). Offline: the files present in the cache.
    pub files: Vec<String>,
}

/// A hub client bound to one [`HubConfig`].
#[derive(Clone)]
pub struct Hub {
    cfg: HubConfig,
    api: Option<Api>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("cfg", &self.cfg).finish()
    }
}

impl Hub {
    pub fn new(cfg: HubConfig) -> Result<Self, HubError> {
        let api = if cfg.offline {
            None
        } else {
            Some(
                ApiBuilder::from_cache(hf_hub::Cache::new(cfg.cache_dir.clone()))
                    .with_endpoint(cfg.endpoint.clone())
                    .with_token(cfg.token.clone())
                    .with_progress(false)
                    .with_user_agent("rewardbench-rs", env!("CARGO_PKG_VERSION"))
                    .build()
                    .map_err(|e| HubError::Other {
                        what: "hub client".into(),
                        message: e.to_string(),
                    })?,
            )
        };
        Ok(Self { cfg, api })
    }

    /// A client configured from the environment.
    pub fn from_env() -> Result<Self, HubError> {
        Self::new(HubConfig::from_env())
    }

    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }

    /// `{cache}/{kind}s--org--name`.
    pub fn repo_dir(&self, repo: &RepoRef) -> PathBuf {
        self.cfg.cache_dir.join(repo.folder_name())
    }

    /// `{cache}/{kind}s--org--name/snapshots/{commit}`.
    pub fn snapshot_dir(&self, repo: &RepoRef, commit: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit)
    }

    /// Resolves `repo`'s revision to a commit and lists its files (one request online;
    /// offline, from the cache's `refs/` and snapshot folder).
    pub fn snapshot(&self, repo: &RepoRef) -> Result<Snapshot, HubError> {
        let Some(api) = &self.api else {
            return self.cached_snapshot(repo);
        };
        let info = api
            .repo(repo.hf())
            .info()
            .map_err(|e| self.map_err(repo.to_string(), e))?;
        if info.sha != repo.revision {
            // Record the branch -> commit link as huggingface_hub does, for later offline use.
            let cache = hf_hub::Cache::new(self.cfg.cache_dir.clone());
            cache
                .repo(repo.hf())
                .create_ref(&info.sha)
                .map_err(|e| HubError::Other {
                    what: format!("{repo}: writing refs/{} in the cache", repo.revision),
                    message: e.to_string(),
                })?;
        }
        Ok(Snapshot {
            repo: repo.clone(),
            commit: info.sha,
            files: info.siblings.into_iter().map(|s| s.rfilename).collect(),
        })
    }

    fn cached_snapshot(&self, repo: &RepoRef) -> Result<Snapshot, HubError> {
        let not_cached = || HubError::NotCached {
            what: repo.to_string(),
            cache: self.cfg.cache_dir.clone(),
        };
        let ref_file = self.repo_dir(repo).join("refs").join(&repo.revision);
        let commit = match std::fs::read_to_string(&ref_file) {
            Ok(c) => c.trim().to_string(),
            Err(_) if self.snapshot_dir(repo, &repo.revision).is_dir() => repo.revision.clone(),
            Err(_) => return Err(not_cached()),
        };
        let dir = self.snapshot_dir(repo, &commit);
        if !dir.is_dir() {
            return Err(not_cached());
        }
        let mut files = Vec::new();
        list_files(&dir, "", &mut files);
        files.sort();
        Ok(Snapshot {
            repo: repo.clone(),
            commit,
            files,
        })
    }

    /// The local path of `file` from `snap`: the cached copy when there is one (no request),
    /// else downloaded into the cache.
    pub fn fetch(&self, snap: &Snapshot, file: &str) -> Result<PathBuf, HubError> {
        let cached = self.snapshot_dir(&snap.repo, &snap.commit).join(file);
        if cached.is_file() {
            return Ok(cached);
        }
        let what = format!("{}: file {file}", snap.repo);
        let Some(api) = &self.api else {
            return Err(HubError::NotCached {
                what,
                cache: self.cfg.cache_dir.clone(),
            });
        };
        api.repo(snap.repo.hf())
            .download(file)
            .map_err(|e| self.map_err(what, e))
    }

    fn map_err(&self, what: String, e: ApiError) -> HubError {
        let endpoint = self.cfg.endpoint.clone();
        let ApiError::RequestError(inner) = &e else {
            return HubError::Other {
                what,
                message: e.to_string(),
            };
        };
        match status_of(&inner.to_string()) {
            Some(404) => HubError::NotFound { what, endpoint },
            Some(status @ (401 | 403)) => HubError::Denied {
                what,
                endpoint,
                status,
            },
            Some(status) => HubError::Status {
                what,
                endpoint,
                status,
            },
            None => HubError::Unreachable {
                what,
                endpoint,
                message: inner.to_string(),
            },
        }
    }
}

/// The HTTP status of a failed request, if the server answered. `ureq` (not a direct
/// dependency) shows it as `http status: N`.
fn status_of(message: &str) -> Option<u16> {
    message.strip_prefix("http status: ")?.trim().parse().ok()
}

fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        if path.is_dir() {
            list_files(&path, &rel, out);
        } else if path.is_file() {
            out.push(rel);
        }
    }
}

/// True for a string shaped like a hub repo id (`name` or `org/name`).
pub fn is_repo_id(s: &str) -> bool {
    let ok_part = |p: &str| {
        !p.is_empty()
            && !p.starts_with(['.', '-'])
            && !p.contains("--")
            && !p.contains("..")
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let parts: Vec<&str> = s.split('/').collect();
    matches!(parts.len(), 1 | 2) && parts.iter().all(|p| ok_part(p)) && s.len() <= 96
}

/// For a path inside the hub cache (`.../{kind}s--org--name/snapshots/{commit}[/...]`), the
/// repo kind and id.
pub fn repo_of_cache_path(path: &Path) -> Option<(RepoKind, String)> {
    let comps: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let i = comps.iter().rposition(|c| c == "snapshots")?;
    let folder = comps.get(i.checked_sub(1)?)?;
    let (kind, rest) = if let Some(r) = folder.strip_prefix("models--") {
        (RepoKind::Model, r)
    } else if let Some(r) = folder.strip_prefix("datasets--") {
        (RepoKind::Dataset, r)
    } else {
        return None;
    };
    Some((kind, rest.replacen("--", "/", 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> HubConfig {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubConfig::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn variables() {
        let c = cfg(&[("HOME", "/h")]);
        assert_eq!(c.cache_dir, PathBuf::from("/h/.cache/huggingface/hub"));
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert!(!c.offline && c.token.is_none());
        let c = cfg(&[
            ("HOME", "/h"),
            ("HF_HOME", "/hf"),
            ("HF_ENDPOINT", "http://x:1/"),
            ("HF_TOKEN", "t"),
            ("HF_HUB_OFFLINE", "yes"),
        ]);
        assert_eq!(c.cache_dir, PathBuf::from("/hf/hub"));
        assert_eq!(c.endpoint, "http://x:1");
        assert_eq!(c.token.as_deref(), Some("t"));
        assert!(c.offline);
        let c = cfg(&[
            ("HF_HOME", "/hf"),
            ("HF_HUB_CACHE", "/c"),
            ("HF_HUB_OFFLINE", "0"),
        ]);
        assert_eq!(c.cache_dir, PathBuf::from("/c"));
        assert!(!c.offline);
    }

    #[test]
    fn repo_ids_and_cache_paths() {
        assert!(is_repo_id("allenai/reward-bench") && is_repo_id("gpt2"));
        assert!(!is_repo_id("a/b/c") && !is_repo_id("./x") && !is_repo_id("a--b/c"));
        assert_eq!(
            repo_of_cache_path(Path::new("/c/models--org--m.x/snapshots/abc")),
            Some((RepoKind::Model, "org/m.x".to_string()))
        );
        assert_eq!(
            repo_of_cache_path(Path::new("/c/other/snapshots/abc")),
            None
        );
        let r = RepoRef::new("a/b", RepoKind::Dataset, None);
        assert_eq!(r.folder_name(), "datasets--a--b");
    }
}
