//! The hub's write API over HTTP, as `huggingface_hub` speaks it: whoami, repo creation, a
//! branch's head and history, file downloads, preupload + LFS, and idempotent commits.
//!
//! Endpoints (`{t}` is `models` or `datasets`; a dataset's git paths start with `datasets/`):
//!
//! * `GET /api/whoami-v2` -> `{"name": ...}`
//! * `POST /api/repos/create` `{"type", "name", "organization"}`; 409 means it exists
//! * `GET /api/{t}/{repo}/revision/{rev}` -> `{"sha": head}`
//! * `GET /api/{t}/{repo}/commits/{rev}` -> `[{"id", "title", ...}]`, newest first
//! * `GET [datasets/]{repo}/resolve/{rev}/{path}` -> the file
//! * `POST /api/{t}/{repo}/preupload/{rev}` `{"files": [{"path", "sample", "size"}]}` ->
//!   `{"files": [{"path", "uploadMode": "regular"|"lfs"}]}`
//! * `POST [datasets/]{repo}.git/info/lfs/objects/batch` (git-lfs batch API), then a `PUT` of
//!   the bytes to the `upload` href (no token: it is a presigned URL) and a `POST` to `verify`
//! * `POST /api/{t}/{repo}/commit/{rev}`, `Content-Type: application/x-ndjson`: a
//!   `{"key": "header", "value": {"summary", "description", "parentCommit"}}` line, then one
//!   `{"key": "file", "value": {"content", "path", "encoding": "base64"}}` or
//!   `{"key": "lfsFile", "value": {"path", "algo": "sha256", "oid"}}` line per file.
//!
//! The token is a [`Secret`]: sent only as `Authorization: Bearer`, cut out of any server text
//! an error quotes.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

pub use super::error::PublishError;
use super::{RepoKind, RepoRef};
use crate::secret::Secret;

/// Largest response body read (bytes).
const BODY_LIMIT: u64 = 64 * 1024 * 1024;
/// Longest server text an error quotes (characters).
const EXCERPT_CHARS: usize = 300;
/// Requests per call for the idempotent ones (GET, repo creation, LFS), and commit attempts.
const ATTEMPTS: u32 = 4;

/// One file of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Path in the repo, `/`-separated.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// What [`HubApi::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// A new commit, by id.
    Made(String),
    /// The branch head already is a commit of exactly these files (nothing was sent).
    AlreadyThere(String),
    /// The builder had nothing to change (nothing was sent).
    Unchanged,
}

/// Makes a commit's files on top of a head (`None`: nothing to change).
pub type Build<'a> = dyn FnMut(&str) -> Result<Option<Vec<Upload>>, PublishError> + 'a;

/// A commit in a branch's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEntry {
    pub id: String,
    pub title: String,
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest of a set of files (paths and contents, in path order), hex.
pub fn files_digest(files: &[Upload]) -> String {
    let mut sorted: Vec<&Upload> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for f in sorted {
        ctx.update(f.path.as_bytes());
        ctx.update(&[0]);
        ctx.update(&(f.bytes.len() as u64).to_le_bytes());
        ctx.update(&f.bytes);
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The tag a commit title carries for a set of files: `[rewardbench <16 hex>]`.
pub fn commit_marker(files: &[Upload]) -> String {
    format!("[rewardbench {}]", &files_digest(files)[..16])
}

/// A revision as one URL path segment (`refs/pr/1` -> `refs%2Fpr%2F1`).
pub(super) fn segment(rev: &str) -> String {
    rev.replace('%', "%25").replace('/', "%2F")
}

/// `text` on one line, at most [`EXCERPT_CHARS`] characters.
pub(super) fn short(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(EXCERPT_CHARS) {
        Some((i, _)) => format!("{}...", &flat[..i]),
        None => flat,
    }
}

/// The hub's error message in a body (`{"error": "..."}`), else the start of the body.
fn server_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    let msg = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .map(|e| match e {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| text.into_owned());
    short(&msg)
}

/// Client settings; [`Default`] suits the hub, tests shorten the waits.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub connect_timeout: Duration,
    /// One whole request, uploads included.
    pub call_timeout: Duration,
    /// Sleep before retry n: `backoff * 2^(n-1)`.
    pub backoff: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            call_timeout: Duration::from_secs(600),
            backoff: Duration::from_secs(1),
        }
    }
}

pub(super) enum Body<'a> {
    None,
    Json(&'a Value),
    Bytes(&'a [u8], &'a str),
}

/// A blocking client for the hub's write API.
pub struct HubApi {
    agent: ureq::Agent,
    endpoint: String,
    token: Option<Secret>,
    config: ApiConfig,
}

impl std::fmt::Debug for HubApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubApi")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl HubApi {
    pub fn new(endpoint: &str, token: Option<Secret>, config: ApiConfig) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.call_timeout))
            .user_agent(format!("rewardbench-rs/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self {
            agent,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
            config,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub(super) fn redact(&self, text: &str) -> String {
        match &self.token {
            Some(t) => t.redact(text),
            None => text.to_string(),
        }
    }

    fn need_token(&self, what: &str) -> Result<(), PublishError> {
        match &self.token {
            Some(_) => Ok(()),
            None => Err(PublishError::NoToken { what: what.into() }),
        }
    }

    /// One request; `(status, body)`, or the transport failure. POSTs never follow redirects.
    fn once(
        &self,
        method: &str,
        url: &str,
        body: &Body,
        auth: bool,
        headers: &[(String, String)],
    ) -> Result<(u16, Vec<u8>), ureq::Error> {
        let bearer = match (&self.token, auth) {
            (Some(t), true) => Some(format!("Bearer {}", t.expose())),
            _ => None,
        };
        let mut response = match method {
            "GET" => {
                let mut b = self.agent.get(url);
                if let Some(v) = &bearer {
                    b = b.header("authorization", v);
                }
                for (k, v) in headers {
                    b = b.header(k, v);
                }
                b.call()?
            }
            _ => {
                let mut b = if method == "PUT" {
                    self.agent.put(url)
                } else {
                    self.agent.post(url)
                };
                if let Some(v) = &bearer {
                    b = b.header("authorization", v);
                }
                for (k, v) in headers {
                    b = b.header(k, v);
                }
                let b = b.config().max_redirects(0).build();
                match body {
                    Body::None => b.send_empty()?,
                    Body::Json(v) => b
                        .content_type("application/json")
                        .send(serde_json::to_vec(v).unwrap_or_default())?,
                    Body::Bytes(bytes, ct) => b.content_type(*ct).send(*bytes)?,
                }
            }
        };
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()?;
        Ok((status, bytes))
    }

    /// A request retried on no answer, 429 and 5xx (`retry`), else sent once; the body of a
    /// 2xx, or the error for the status.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn request(
        &self,
        what: &str,
        repo: Option<&RepoRef>,
        method: &str,
        url: &str,
        body: Body,
        auth: bool,
        headers: &[(String, String)],
        retry: bool,
    ) -> Result<(u16, Vec<u8>), PublishError> {
        let attempts = if retry { ATTEMPTS } else { 1 };
        let mut last = None;
        for attempt in 1..=attempts {
            if attempt > 1 {
                std::thread::sleep(self.config.backoff * 2u32.pow(attempt - 2));
            }
            let err = match self.once(method, url, &body, auth, headers) {
                Ok((status, bytes)) if (200..300).contains(&status) => return Ok((status, bytes)),
                Ok((status, bytes)) => self.status_error(what, repo, status, &bytes),
                Err(e) => PublishError::Unreachable {
                    what: what.into(),
                    endpoint: self.endpoint.clone(),
                    message: self.redact(&e.to_string()),
                },
            };
            if !err.outcome_unknown() {
                return Err(err);
            }
            last = Some(err);
        }
        Err(last.unwrap_or_else(|| PublishError::Invalid(format!("{what}: no attempt made"))))
    }

    fn status_error(
        &self,
        what: &str,
        repo: Option<&RepoRef>,
        status: u16,
        body: &[u8],
    ) -> PublishError {
        let msg = self.redact(&server_message(body));
        let detail = if msg.is_empty() {
            String::new()
        } else {
            format!(" ({msg})")
        };
        let repo_name = repo.map_or_else(|| "the repo".to_string(), |r| r.to_string());
        match status {
            401 => PublishError::Unauthorized {
                what: what.into(),
                endpoint: self.endpoint.clone(),
                detail,
            },
            403 => PublishError::Forbidden {
                what: what.into(),
                repo: repo_name,
                detail,
            },
            404 => PublishError::NotFound {
                what: what.into(),
                detail,
            },
            409 | 412 => PublishError::Conflict {
                what: what.into(),
                repo: repo_name,
                status,
                detail,
            },
            _ => PublishError::Status {
                what: what.into(),
                status,
                detail,
            },
        }
    }

    pub(super) fn json(&self, what: &str, bytes: &[u8]) -> Result<Value, PublishError> {
        serde_json::from_slice(bytes).map_err(|e| PublishError::BadAnswer {
            what: what.into(),
            message: format!("not JSON ({e})"),
        })
    }

    pub(super) fn api_url(&self, repo: &RepoRef, tail: &str) -> String {
        format!(
            "{}/api/{}/{}/{tail}",
            self.endpoint,
            repo.kind.prefix(),
            repo.id
        )
    }

    /// `{endpoint}/[datasets/]{id}`: the repo's git-side base URL.
    pub(super) fn git_url(&self, repo: &RepoRef) -> String {
        match repo.kind {
            RepoKind::Model => format!("{}/{}", self.endpoint, repo.id),
            RepoKind::Dataset => format!("{}/datasets/{}", self.endpoint, repo.id),
        }
    }

    /// The token's user name (`GET /api/whoami-v2`).
    pub fn whoami(&self) -> Result<String, PublishError> {
        let what = "finding the token's user (GET /api/whoami-v2; pass --hf_entity to skip it)";
        self.need_token(what)?;
        let url = format!("{}/api/whoami-v2", self.endpoint);
        let (_, body) = self.request(what, None, "GET", &url, Body::None, true, &[], true)?;
        let v = self.json(what, &body)?;
        v.get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .ok_or_else(|| PublishError::BadAnswer {
                what: what.into(),
                message: "no `name`".into(),
            })
    }

    /// Creates `repo` (`POST /api/repos/create`); `false` when it exists already.
    pub fn create_repo(&self, repo: &RepoRef) -> Result<bool, PublishError> {
        let what = format!("{repo}: creating the repo");
        self.need_token(&what)?;
        let (org, name) = match repo.id.split_once('/') {
            Some((o, n)) => (Some(o), n),
            None => (None, repo.id.as_str()),
        };
        let kind = match repo.kind {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
        };
        let body = json!({"type": kind, "name": name, "organization": org});
        let url = format!("{}/api/repos/create", self.endpoint);
        match self.request(
            &what,
            Some(repo),
            "POST",
            &url,
            Body::Json(&body),
            true,
            &[],
            true,
        ) {
            Ok(_) => Ok(true),
            Err(PublishError::Conflict { status: 409, .. }) => Ok(false),
            // As huggingface_hub's create_repo(exist_ok=True): a token that may not create
            // repos can still write to one that exists.
            Err(e @ PublishError::Forbidden { .. }) => match self.head(repo) {
                Ok(_) => Ok(false),
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// The commit `repo`'s revision points at.
    pub fn head(&self, repo: &RepoRef) -> Result<String, PublishError> {
        let what = format!("{repo}: reading the head of {}", repo.revision);
        let url = self.api_url(repo, &format!("revision/{}", segment(&repo.revision)));
        let (_, body) =
            self.request(&what, Some(repo), "GET", &url, Body::None, true, &[], true)?;
        let v = self.json(&what, &body)?;
        v.get("sha")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| PublishError::BadAnswer {
                what,
                message: "no `sha`".into(),
            })
    }

    /// The newest commits of `repo`'s revision (the first page), newest first.
    pub fn commits(&self, repo: &RepoRef) -> Result<Vec<CommitEntry>, PublishError> {
        let what = format!("{repo}: reading the history of {}", repo.revision);
        let url = self.api_url(repo, &format!("commits/{}", segment(&repo.revision)));
        let (_, body) =
            self.request(&what, Some(repo), "GET", &url, Body::None, true, &[], true)?;
        let v = self.json(&what, &body)?;
        let Some(list) = v.as_array() else {
            return Err(PublishError::BadAnswer {
                what,
                message: "not a list of commits".into(),
            });
        };
        Ok(list
            .iter()
            .filter_map(|c| {
                Some(CommitEntry {
                    id: c.get("id")?.as_str()?.to_string(),
                    title: c
                        .get("title")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                })
            })
            .collect())
    }

    /// `path` at `rev` of `repo`, or `None` when the repo has no such file (404).
    pub fn download(
        &self,
        repo: &RepoRef,
        rev: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, PublishError> {
        let what = format!("{repo}: downloading {path}");
        let url = format!("{}/resolve/{}/{path}", self.git_url(repo), segment(rev));
        match self.request(&what, Some(repo), "GET", &url, Body::None, true, &[], true) {
            Ok((_, body)) => Ok(Some(body)),
            Err(PublishError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One commit request on top of `parent`; the new commit's id. Sent once.
    fn post_commit(
        &self,
        repo: &RepoRef,
        parent: &str,
        summary: &str,
        description: &str,
        files: &[Upload],
        lfs: &[String],
    ) -> Result<String, PublishError> {
        let what = format!("{repo}: commit to {}", repo.revision);
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut lines = vec![json!({"key": "header", "value": {
            "summary": summary, "description": description, "parentCommit": parent,
        }})];
        for f in files {
            lines.push(if lfs.contains(&f.path) {
                json!({"key": "lfsFile", "value": {
                    "path": f.path, "algo": "sha256", "oid": sha256_hex(&f.bytes),
                }})
            } else {
                json!({"key": "file", "value": {
                    "content": b64.encode(&f.bytes), "path": f.path, "encoding": "base64",
                }})
            });
        }
        let mut ndjson = Vec::new();
        for l in &lines {
            ndjson.extend(serde_json::to_vec(l).unwrap_or_default());
            ndjson.push(b'\n');
        }
        let url = self.api_url(repo, &format!("commit/{}", segment(&repo.revision)));
        let (_, answer) = self.request(
            &what,
            Some(repo),
            "POST",
            &url,
            Body::Bytes(&ndjson, "application/x-ndjson"),
            true,
            &[],
            false,
        )?;
        let v = self.json(&what, &answer)?;
        v.get("commitOid")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| PublishError::BadAnswer {
                what,
                message: "no `commitOid`".into(),
            })
    }

    /// The commit between `parent` (excluded) and the head whose title carries one of
    /// `markers`, if any.
    fn landed(
        &self,
        repo: &RepoRef,
        parent: &str,
        markers: &[String],
    ) -> Result<Option<String>, PublishError> {
        for c in self.commits(repo)? {
            if c.id == parent {
                break;
            }
            if markers.iter().any(|m| c.title.contains(m.as_str())) {
                return Ok(Some(c.id));
            }
        }
        Ok(None)
    }

    /// Commits the files `build` makes on top of the branch head, exactly once.
    ///
    /// The rule: every commit is sent with `parentCommit` = the head just read, and its title
    /// ends with [`commit_marker`] (a digest of its paths and contents).
    /// * If the head already is a commit with the same marker, nothing is sent
    ///   ([`Committed::AlreadyThere`]): publishing the same files again adds no commit.
    /// * If a commit request gets no answer (dropped connection, timeout), a 5xx or 429, or a
    ///   409 / 412 (the hub's answers to a stale `parentCommit`), the head is read again. If it
    ///   moved and a commit after the old head carries one of our markers, ours landed: done.
    ///   Otherwise a conflict is an error; after the other failures the commit is sent again,
    ///   rebuilt on the new head (`build` is called with it, so a merged card stays current).
    ///
    /// So a retry never duplicates a commit, and a commit never overwrites one it did not see.
    pub fn commit(
        &self,
        repo: &RepoRef,
        summary: &str,
        description: &str,
        build: &mut Build,
    ) -> Result<Committed, PublishError> {
        self.need_token(&format!("{repo}: commit"))?;
        let mut head = self.head(repo)?;
        let mut markers: Vec<String> = Vec::new();
        for attempt in 1..=ATTEMPTS {
            let Some(files) = build(&head)? else {
                return Ok(Committed::Unchanged);
            };
            let marker = commit_marker(&files);
            if attempt == 1 {
                if let Some(top) = self.commits(repo)?.first() {
                    if top.id == head && top.title.contains(&marker) {
                        return Ok(Committed::AlreadyThere(top.id.clone()));
                    }
                }
            }
            if !markers.contains(&marker) {
                markers.push(marker.clone());
            }
            let lfs = self.lfs_paths(repo, &files)?;
            if !lfs.is_empty() {
                let big: Vec<&Upload> = files.iter().filter(|f| lfs.contains(&f.path)).collect();
                self.upload_lfs(repo, &big)?;
            }
            let title = format!("{summary} {marker}");
            let err = match self.post_commit(repo, &head, &title, description, &files, &lfs) {
                Ok(id) => return Ok(Committed::Made(id)),
                Err(e) if e.outcome_unknown() || matches!(e, PublishError::Conflict { .. }) => e,
                Err(e) => return Err(e),
            };
            let now = self.head(repo)?;
            if now != head {
                if let Some(id) = self.landed(repo, &head, &markers)? {
                    return Ok(Committed::Made(id));
                }
            }
            if matches!(err, PublishError::Conflict { .. }) || attempt == ATTEMPTS {
                return Err(err);
            }
            if now == head {
                std::thread::sleep(self.config.backoff * 2u32.pow(attempt - 1));
            }
            head = now;
        }
        Err(PublishError::Invalid(format!(
            "{repo}: commit: no attempt made"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_markers() {
        let f = |p: &str, b: &str| Upload {
            path: p.into(),
            bytes: b.as_bytes().to_vec(),
        };
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let a = [f("a", "1"), f("b", "2")];
        let b = [f("b", "2"), f("a", "1")];
        assert_eq!(files_digest(&a), files_digest(&b), "order does not matter");
        assert_ne!(files_digest(&a), files_digest(&[f("a", "1"), f("b", "3")]));
        assert_ne!(files_digest(&[f("ab", "")]), files_digest(&[f("a", "b")]));
        assert!(commit_marker(&a).starts_with("[rewardbench ") && commit_marker(&a).len() == 30);
        assert_eq!(segment("refs/pr/1"), "refs%2Fpr%2F1");
    }

    #[test]
    fn server_messages_are_short_and_the_token_is_cut_out() {
        assert_eq!(
            server_message(br#"{"error":"Invalid  credentials"}"#),
            "Invalid credentials"
        );
        assert_eq!(server_message(b"plain text"), "plain text");
        let api = HubApi::new(
            "http://127.0.0.1:9",
            Some(Secret::new("hf_tok")),
            ApiConfig::default(),
        );
        let e = api.status_error("x", None, 401, br#"{"error":"bad token hf_tok"}"#);
        assert!(
            !e.to_string().contains("hf_tok") && e.to_string().contains("***"),
            "{e}"
        );
        assert!(!format!("{api:?}").contains("hf_tok"));
    }
}
