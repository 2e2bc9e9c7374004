//! The Hugging Face hub: repo listings and file downloads ([`read`]), in the standard cache
//! layout (`{cache}/{models|datasets}--org--name/{blobs,refs,snapshots}`), shared with Python
//! tools.
//!
//! Settings come from the same variables as `huggingface_hub`: `HF_ENDPOINT`, `HF_HUB_CACHE`
//! (else `HF_HOME/hub`, else `~/.cache/huggingface/hub`), `HF_TOKEN` (else the token file),
//! `HF_HUB_OFFLINE`, `HF_HUB_ETAG_TIMEOUT` and `HF_HUB_DOWNLOAD_TIMEOUT`. [`HubConfig`] can
//! also be built explicitly, so nothing here needs the process environment.
//!
//! When the hub cannot be reached (no connection, no name resolution, a timeout, a 5xx) and
//! the repo's revision is in the cache, the cached snapshot is used and a [`HubNotice`] says
//! so, as `transformers` does. The client prints nothing itself: notices go to the sink given
//! with [`Hub::with_notices`].
//!
//! Writing to the hub (publishing results) lives in [`api`] (the HTTP write API, with [`lfs`]),
//! [`card`] (model-card metadata), [`runs`] (a run's files) and [`publish`] (what is sent).

pub mod api;
pub mod card;
pub mod error;
pub mod lfs;
pub mod publish;
mod read;
pub mod runs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use read::{Client, Failure};

/// Default hub address.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Default for `HF_HUB_ETAG_TIMEOUT` and `HF_HUB_DOWNLOAD_TIMEOUT`, as `huggingface_hub`'s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors talking to the hub or reading its cache.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "{what}: not found on {endpoint} (HTTP 404); check the {} and --revision",
        if what.contains(": file ") { "file name" } else { "id" }
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
    #[error("{what}: cannot reach the hub at {endpoint} ({message}), and it is not in the hub cache {}; check the network or HF_ENDPOINT, or download it where the hub can be reached and set HF_HUB_OFFLINE=1 to use the cache", cache.display())]
    Unreachable {
        what: String,
        endpoint: String,
        message: String,
        cache: PathBuf,
    },
    #[error("{what}: not in the hub cache {cache} and HF_HUB_OFFLINE is set; run once online to download it")]
    NotCached { what: String, cache: PathBuf },
    #[error("{variable}={value}: not a number of seconds above 0 (default {default})", default = DEFAULT_TIMEOUT.as_secs())]
    Setting { variable: String, value: String },
    #[error("{what}: {message}")]
    Other { what: String, message: String },
}

impl HubError {
    /// What the error is about (`model org/name`, `dataset org/name: file README.md`, ...).
    pub fn what(&self) -> &str {
        match self {
            Self::NotFound { what, .. }
            | Self::Denied { what, .. }
            | Self::Status { what, .. }
            | Self::Unreachable { what, .. }
            | Self::NotCached { what, .. }
            | Self::Other { what, .. } => what,
            Self::Setting { variable, .. } => variable,
        }
    }

    /// The hub could not be asked: no connection, no name resolution, a timeout, a dropped
    /// connection, or a server error (5xx, 429). A cached copy is used instead when there is
    /// one, as `transformers` does.
    pub fn hub_unavailable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// `error` under `prefix` (`model org/name`), unless it already starts with it: a hub error
/// names its repo, and a message should not say it twice.
pub fn prefixed(prefix: &str, error: &HubError) -> String {
    if error.what().starts_with(prefix) {
        error.to_string()
    } else {
        format!("{prefix}: {error}")
    }
}

/// What the client tells its user while it works (see [`Hub::with_notices`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubNotice {
    /// A repo's file list is about to be asked for.
    Contacting { what: String, endpoint: String },
    /// A file is about to be downloaded into the cache (`bytes` when the hub said).
    Downloading {
        what: String,
        file: String,
        bytes: Option<u64>,
    },
    /// The hub could not be asked (`reason`); the cached snapshot `commit` is used instead.
    UsingCache {
        what: String,
        endpoint: String,
        reason: String,
        commit: String,
    },
}

impl HubNotice {
    /// A warning (the results may come from older files), not just progress.
    pub fn is_warning(&self) -> bool {
        matches!(self, Self::UsingCache { .. })
    }
}

/// `1234567` as `1.2 MB`.
fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} bytes"),
    }
}

impl std::fmt::Display for HubNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Contacting { what, endpoint } => {
                write!(f, "contacting the hub at {endpoint} for {what}")
            }
            Self::Downloading { what, file, bytes } => {
                write!(f, "downloading {what}: {file}")?;
                match bytes {
                    Some(n) => write!(f, " ({})", human_bytes(*n)),
                    None => Ok(()),
                }
            }
            Self::UsingCache {
                what,
                endpoint,
                reason,
                commit,
            } => write!(
                f,
                "cannot reach the hub at {endpoint} ({reason}); using {what} from the hub cache (commit {}, downloaded earlier; the hub may have newer files). Set HF_HUB_OFFLINE=1 to skip the hub",
                &commit[..commit.len().min(12)]
            ),
        }
    }
}

/// Where [`HubNotice`]s go.
pub type NoticeSink = Arc<dyn Fn(&HubNotice) + Send + Sync>;

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
    /// Connect and per-read timeout of the listing and metadata requests
    /// (`HF_HUB_ETAG_TIMEOUT`).
    pub etag_timeout: Duration,
    /// Connect and per-read timeout of a file's download (`HF_HUB_DOWNLOAD_TIMEOUT`).
    pub download_timeout: Duration,
    /// A timeout variable that did not parse, and its value: [`Hub::new`] refuses it.
    bad_setting: Option<(String, String)>,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("offline", &self.offline)
            .field("etag_timeout", &self.etag_timeout)
            .field("download_timeout", &self.download_timeout)
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
        let mut bad_setting = None;
        let mut timeout = |name: &str| match var(name) {
            None => DEFAULT_TIMEOUT,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s),
                _ => {
                    bad_setting.get_or_insert((name.to_string(), v));
                    DEFAULT_TIMEOUT
                }
            },
        };
        let etag_timeout = timeout("HF_HUB_ETAG_TIMEOUT");
        let download_timeout = timeout("HF_HUB_DOWNLOAD_TIMEOUT");
        Self {
            endpoint: var("HF_ENDPOINT")
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
                .trim_end_matches('/')
                .to_string(),
            cache_dir,
            token,
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v)),
            etag_timeout,
            download_timeout,
            bad_setting,
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
            etag_timeout: DEFAULT_TIMEOUT,
            download_timeout: DEFAULT_TIMEOUT,
            bad_setting: None,
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
    client: Option<Client>,
    notices: Option<NoticeSink>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("cfg", &self.cfg).finish()
    }
}

/// Blob download names made by this process (a suffix, so concurrent runs never share one).
static DOWNLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Hub {
    pub fn new(cfg: HubConfig) -> Result<Self, HubError> {
        if let Some((variable, value)) = &cfg.bad_setting {
            return Err(HubError::Setting {
                variable: variable.clone(),
                value: value.clone(),
            });
        }
        let client = (!cfg.offline).then(|| {
            Client::new(
                &cfg.endpoint,
                cfg.secret(),
                cfg.etag_timeout,
                cfg.download_timeout,
            )
        });
        Ok(Self {
            cfg,
            client,
            notices: None,
        })
    }

    /// A client configured from the environment.
    pub fn from_env() -> Result<Self, HubError> {
        Self::new(HubConfig::from_env())
    }

    /// Sends this client's [`HubNotice`]s to `sink` (without one they are dropped).
    pub fn with_notices(mut self, sink: NoticeSink) -> Self {
        self.notices = Some(sink);
        self
    }

    fn notify(&self, n: HubNotice) {
        if let Some(sink) = &self.notices {
            sink(&n);
        }
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
    /// offline, from the cache's `refs/` and snapshot folder). Online, when the hub cannot be
    /// asked ([`HubError::hub_unavailable`]) and the revision is cached, the cached snapshot is
    /// used and a [`HubNotice::UsingCache`] says so.
    pub fn snapshot(&self, repo: &RepoRef) -> Result<Snapshot, HubError> {
        let Some(client) = &self.client else {
            return self.cached_snapshot(repo);
        };
        self.notify(HubNotice::Contacting {
            what: repo.to_string(),
            endpoint: self.cfg.endpoint.clone(),
        });
        let (sha, files) = match client.list(repo) {
            Ok(listed) => listed,
            Err(f) => {
                let err = self.failure(repo.to_string(), f);
                if err.hub_unavailable() {
                    if let Ok(snap) = self.cached_snapshot(repo) {
                        self.notify(HubNotice::UsingCache {
                            what: repo.to_string(),
                            endpoint: self.cfg.endpoint.clone(),
                            reason: match &err {
                                HubError::Unreachable { message, .. } => message.clone(),
                                HubError::Status { status, .. } => format!("HTTP {status}"),
                                other => other.to_string(),
                            },
                            commit: snap.commit.clone(),
                        });
                        return Ok(snap);
                    }
                }
                return Err(err);
            }
        };
        if sha != repo.revision {
            // Record the branch -> commit link as huggingface_hub does, for later offline use.
            self.write_ref(repo, &sha).map_err(|e| HubError::Other {
                what: format!("{repo}: writing refs/{} in the cache", repo.revision),
                message: e.to_string(),
            })?;
        }
        Ok(Snapshot {
            repo: repo.clone(),
            commit: sha,
            files,
        })
    }

    fn write_ref(&self, repo: &RepoRef, commit: &str) -> std::io::Result<()> {
        let path = self.repo_dir(repo).join("refs").join(&repo.revision);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::read_to_string(&path).is_ok_and(|c| c.trim() == commit) {
            return Ok(());
        }
        std::fs::write(path, commit)
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
    /// else downloaded into the cache (`blobs/{etag}`, linked from the snapshot folder).
    pub fn fetch(&self, snap: &Snapshot, file: &str) -> Result<PathBuf, HubError> {
        let pointer = self.snapshot_dir(&snap.repo, &snap.commit).join(file);
        if pointer.is_file() {
            return Ok(pointer);
        }
        let what = format!("{}: file {file}", snap.repo);
        let Some(client) = &self.client else {
            return Err(HubError::NotCached {
                what,
                cache: self.cfg.cache_dir.clone(),
            });
        };
        let meta = client
            .metadata(&snap.repo, &snap.commit, file)
            .map_err(|f| self.failure(what.clone(), f))?;
        let local = |e: std::io::Error, path: &Path| HubError::Other {
            what: what.clone(),
            message: format!("{}: {e}", path.display()),
        };
        let blobs = self.repo_dir(&snap.repo).join("blobs");
        let blob = blobs.join(&meta.etag);
        if !blob.is_file() {
            std::fs::create_dir_all(&blobs).map_err(|e| local(e, &blobs))?;
            self.notify(HubNotice::Downloading {
                what: snap.repo.to_string(),
                file: file.to_string(),
                bytes: meta.size,
            });
            let n = DOWNLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let tmp = blobs.join(format!(
                "{}.{}-{n}.incomplete",
                meta.etag,
                std::process::id()
            ));
            let url = client.file_url(&snap.repo, &snap.commit, file);
            let got = client.download(&url, &tmp).map_err(|f| {
                let _ = std::fs::remove_file(&tmp);
                self.failure(what.clone(), f)
            })?;
            if let Some(size) = meta.size.filter(|&s| s != got) {
                let _ = std::fs::remove_file(&tmp);
                return Err(self.failure(
                    what,
                    Failure::Unreachable(format!(
                        "the download was cut short: {got} of {size} bytes"
                    )),
                ));
            }
            std::fs::rename(&tmp, &blob).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                local(e, &blob)
            })?;
        }
        if let Some(parent) = pointer.parent() {
            std::fs::create_dir_all(parent).map_err(|e| local(e, parent))?;
        }
        link_blob(&blob, &pointer, file, &meta.etag).map_err(|e| local(e, &pointer))?;
        if snap.commit != snap.repo.revision {
            let _ = self.write_ref(&snap.repo, &snap.commit);
        }
        Ok(pointer)
    }

    /// A failed request, named.
    fn failure(&self, what: String, f: Failure) -> HubError {
        let endpoint = self.cfg.endpoint.clone();
        match f {
            Failure::Status(404) => HubError::NotFound { what, endpoint },
            Failure::Status(status @ (401 | 403)) => HubError::Denied {
                what,
                endpoint,
                status,
            },
            Failure::Status(status) => HubError::Status {
                what,
                endpoint,
                status,
            },
            Failure::Unreachable(message) => HubError::Unreachable {
                what,
                endpoint,
                message,
                cache: self.cfg.cache_dir.clone(),
            },
            Failure::Other(message) => HubError::Other { what, message },
        }
    }
}

/// `pointer` (in `snapshots/{commit}/`, at repo path `file`) as a relative link to `blob`, as
/// `huggingface_hub` makes it; a copy where links cannot be made.
fn link_blob(blob: &Path, pointer: &Path, file: &str, etag: &str) -> std::io::Result<()> {
    if std::fs::symlink_metadata(pointer).is_ok() {
        std::fs::remove_file(pointer)?;
    }
    #[cfg(unix)]
    {
        let _ = blob;
        let target = format!("{}blobs/{etag}", "../".repeat(file.split('/').count() + 1));
        std::os::unix::fs::symlink(target, pointer)
    }
    #[cfg(not(unix))]
    {
        let _ = (file, etag);
        std::fs::copy(blob, pointer).map(|_| ())
    }
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
