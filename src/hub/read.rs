//! Reading from the hub over HTTP, as `huggingface_hub` does it: a revision's file list, a
//! file's metadata (its blob name and commit) and its bytes. Every request has connect and
//! per-read timeouts: `HF_HUB_ETAG_TIMEOUT` for the listing and the metadata requests,
//! `HF_HUB_DOWNLOAD_TIMEOUT` for a file's bytes (each read waits at most that long, so a large
//! file takes as long as it takes but a stalled one fails). A hub that stops answering is an
//! error, never a hang.
//!
//! Endpoints (`{t}` is `models` or `datasets`; a dataset's file URLs start with `datasets/`):
//!
//! * `GET /api/{t}/{id}/revision/{rev}` -> `{"sha", "siblings": [{"rfilename"}]}`
//! * `GET [datasets/]{id}/resolve/{commit}/{path}` with `Range: bytes=0-0`, no redirect
//!   followed across hosts: `X-Linked-Etag` or `ETag` (the blob name), `X-Repo-Commit`, and
//!   the size (`X-Linked-Size`, else `Content-Range`)
//! * the same URL again for the bytes, following redirects (the token only to the same host)
//!
//! The token is a [`Secret`]: sent only as `Authorization: Bearer`, cut out of any text an
//! error quotes.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::api::segment;
use super::{RepoKind, RepoRef};
use crate::secret::Secret;

/// Largest listing read (bytes).
const LISTING_LIMIT: u64 = 64 * 1024 * 1024;
/// Relative redirects followed for a metadata request (the hub's renamed repos).
const METADATA_REDIRECTS: u32 = 5;

/// Why a request failed, before it is named (see `Hub::failure`).
#[derive(Debug)]
pub(super) enum Failure {
    /// The hub answered with this status.
    Status(u16),
    /// No usable answer: no connection, no name resolution, a timeout, a dropped connection.
    Unreachable(String),
    /// An answer that could not be used, or a local file problem.
    Other(String),
}

/// A file's metadata, from its `resolve` URL (the commit is the one asked for).
#[derive(Debug, Clone)]
pub(super) struct Meta {
    /// The blob name in the cache (`X-Linked-Etag`, else `ETag`, quotes removed).
    pub etag: String,
    pub size: Option<u64>,
}

/// A blocking reader of the hub.
#[derive(Clone)]
pub(super) struct Client {
    agent: ureq::Agent,
    endpoint: String,
    token: Option<Secret>,
    etag_timeout: Duration,
    download_timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token)
            .field("etag_timeout", &self.etag_timeout)
            .field("download_timeout", &self.download_timeout)
            .finish()
    }
}

/// `path` with each `/`-separated segment percent-encoded as Python's `quote` does.
fn quote_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Seconds as people write them (`10`, `2.5`).
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

impl Client {
    pub fn new(
        endpoint: &str,
        token: Option<Secret>,
        etag_timeout: Duration,
        download_timeout: Duration,
    ) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .user_agent(format!("rewardbench-rs/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self {
            agent,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
            etag_timeout,
            download_timeout,
        }
    }

    fn redact(&self, text: &str) -> String {
        match &self.token {
            Some(t) => t.redact(text),
            None => text.to_string(),
        }
    }

    /// A GET with the token and `timeout` for name resolution, connecting, sending and each
    /// read; `redirects` followed at most.
    fn get(
        &self,
        url: &str,
        timeout: Duration,
        redirects: u32,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let mut b = self.agent.get(url);
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {}", t.expose()));
        }
        b.config()
            .timeout_resolve(Some(timeout))
            .timeout_connect(Some(timeout))
            .timeout_send_request(Some(timeout))
            .timeout_per_read(Some(timeout))
            .max_redirects(redirects)
            .build()
    }

    /// A transport error in words; `variable` names the timeout that applied.
    fn transport(&self, e: &ureq::Error, timeout: Duration, variable: &str) -> Failure {
        use ureq::Error as E;
        let text = match e {
            E::Timeout(ureq::Timeout::Resolve) => format!(
                "no answer from the name server within {} ({variable})",
                seconds(timeout)
            ),
            E::Timeout(ureq::Timeout::Connect) => {
                format!("no connection within {} ({variable})", seconds(timeout))
            }
            E::Timeout(_) => format!(
                "connected, but no answer within {} ({variable}; raise it to wait longer)",
                seconds(timeout)
            ),
            E::HostNotFound => "host not found (DNS)".to_string(),
            E::Io(io) => self.redact(&io.to_string()),
            E::Tls(_)
            | E::Rustls(_)
            | E::BadUri(_)
            | E::InvalidProxyUrl
            | E::RequireHttpsOnly(_) => return Failure::Other(self.redact(&e.to_string())),
            other => self.redact(&other.to_string()),
        };
        Failure::Unreachable(text)
    }

    /// `{endpoint}/[datasets/]{id}/resolve/{rev}/{path}`.
    pub fn file_url(&self, repo: &RepoRef, rev: &str, path: &str) -> String {
        let base = match repo.kind {
            RepoKind::Model => format!("{}/{}", self.endpoint, repo.id),
            RepoKind::Dataset => format!("{}/datasets/{}", self.endpoint, repo.id),
        };
        format!("{base}/resolve/{}/{}", segment(rev), quote_path(path))
    }

    /// The commit `repo`'s revision points at, and the repo's files there.
    pub fn list(&self, repo: &RepoRef) -> Result<(String, Vec<String>), Failure> {
        let url = format!(
            "{}/api/{}/{}/revision/{}",
            self.endpoint,
            repo.kind.prefix(),
            repo.id,
            segment(&repo.revision)
        );
        let t = self.etag_timeout;
        let mut resp = self
            .get(&url, t, 10)
            .call()
            .map_err(|e| self.transport(&e, t, "HF_HUB_ETAG_TIMEOUT"))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(Failure::Status(status));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(LISTING_LIMIT)
            .read_to_vec()
            .map_err(|e| self.transport(&e, t, "HF_HUB_ETAG_TIMEOUT"))?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| Failure::Other(format!("the file list is not JSON ({e})")))?;
        let sha = v
            .get("sha")
            .and_then(Value::as_str)
            .ok_or_else(|| Failure::Other("the file list has no `sha`".into()))?
            .to_string();
        let files = v
            .get("siblings")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|f| f.get("rfilename").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok((sha, files))
    }

    /// A file's blob name, commit and size: the first byte asked for, redirects to other
    /// hosts not followed (their headers are the CDN's, not the hub's).
    pub fn metadata(&self, repo: &RepoRef, commit: &str, path: &str) -> Result<Meta, Failure> {
        let t = self.etag_timeout;
        let mut url = self.file_url(repo, commit, path);
        for _ in 0..=METADATA_REDIRECTS {
            let resp = self
                .get(&url, t, 0)
                .header("range", "bytes=0-0")
                .call()
                .map_err(|e| self.transport(&e, t, "HF_HUB_ETAG_TIMEOUT"))?;
            let status = resp.status().as_u16();
            let header = |k: &str| {
                resp.headers()
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            if (300..400).contains(&status) {
                let relative = header("location").filter(|l| l.starts_with('/'));
                if let (Some(loc), None) = (&relative, header("x-repo-commit")) {
                    url = format!("{}{loc}", self.endpoint);
                    continue;
                }
            } else if !(200..300).contains(&status) {
                return Err(Failure::Status(status));
            }
            let etag = header("x-linked-etag")
                .or_else(|| header("etag"))
                .map(|e| e.trim_start_matches("W/").replace('"', ""))
                .filter(|e| !e.is_empty() && !e.contains(['/', '\\']) && e != "." && e != "..")
                .ok_or_else(|| Failure::Other(format!("no ETag for {path}")))?;
            let size = header("x-linked-size")
                .and_then(|s| s.parse().ok())
                .or_else(|| {
                    header("content-range")
                        .and_then(|r| r.rsplit('/').next().and_then(|n| n.parse().ok()))
                });
            return Ok(Meta { etag, size });
        }
        Err(Failure::Other(format!(
            "more than {METADATA_REDIRECTS} redirects for {path}"
        )))
    }

    /// Writes the bytes of `url` to `dest` (created or truncated); the number written.
    pub fn download(&self, url: &str, dest: &Path) -> Result<u64, Failure> {
        let t = self.download_timeout;
        let var = "HF_HUB_DOWNLOAD_TIMEOUT";
        let resp = self
            .get(url, t, 10)
            .call()
            .map_err(|e| self.transport(&e, t, var))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(Failure::Status(status));
        }
        let local = |e: std::io::Error| Failure::Other(format!("{}: {e}", dest.display()));
        let mut file = std::fs::File::create(dest).map_err(local)?;
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut written = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let inner = e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>());
                    return Err(match inner {
                        Some(ureq::Error::Timeout(_)) => Failure::Unreachable(format!(
                            "the download stalled: no data for {} after {written} bytes ({var}; raise it to wait longer)",
                            seconds(t)
                        )),
                        Some(u) => self.transport(u, t, var),
                        None => Failure::Unreachable(format!(
                            "the download broke off after {written} bytes: {}",
                            self.redact(&e.to_string())
                        )),
                    });
                }
            };
            file.write_all(&buf[..n]).map_err(local)?;
            written += n as u64;
        }
        file.sync_all().map_err(local)?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_words() {
        let c = Client::new(
            "http://h/",
            None,
            Duration::from_secs(10),
            Duration::from_millis(2500),
        );
        let r = RepoRef::new("org/data", RepoKind::Dataset, None);
        assert_eq!(
            c.file_url(&r, "refs/pr/1", "data/a b+c.parquet"),
            "http://h/datasets/org/data/resolve/refs%2Fpr%2F1/data/a%20b%2Bc.parquet"
        );
        let m = RepoRef::new("gpt2", RepoKind::Model, None);
        assert_eq!(
            c.file_url(&m, "main", "onnx/model.onnx"),
            "http://h/gpt2/resolve/main/onnx/model.onnx"
        );
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5 s");
        let secret = Client::new(
            "http://h",
            Some(Secret::new("hf_abc")),
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert!(!format!("{secret:?}").contains("hf_abc"));
    }
}
