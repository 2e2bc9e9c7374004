//! A stand-in Hugging Face hub for tests: a std `TcpListener` on 127.0.0.1 answering the
//! endpoints the hub client reads through (src/hub/read.rs, as `huggingface_hub` reads) and
//! the write API `huggingface_hub` publishes through:
//!
//! * `GET /api/{models|datasets}/{id}/revision/{rev}`: `{"sha", "siblings": [{"rfilename"}]}`;
//! * `GET [/datasets]/{id}/resolve/{rev}/{file}`: the bytes, honouring `Range`, with `ETag`,
//!   `X-Repo-Commit` and `Content-Range` as the hub sends them;
//! * `GET /api/whoami-v2`, `POST /api/repos/create` (409 when it exists), `GET .../commits/{rev}`
//!   (newest first), `POST .../preupload/{rev}` (files of `lfs_threshold` bytes or more go
//!   through LFS), the git-lfs batch API with `PUT` upload and `verify` URLs on this server, and
//!   `POST .../commit/{rev}` (NDJSON; a stale `parentCommit` gets 412, the hub's answer).
//!
//! Committed files are stored, so later downloads and listings see them. Writes need a user
//! token ([`HubServer::add_user`]): none or an unknown one is a 401, a namespace the user does
//! not own a 403. Every request is recorded (method, path, `Authorization`, body). Failures can
//! be injected: a token every request needs, paths answered with a 500, a status for every
//! commit, and a connection dropped once around a commit.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{json, Value};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Blob {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

impl Blob {
    fn read(&self) -> Vec<u8> {
        match self {
            Blob::Path(p) => std::fs::read(p).unwrap_or_default(),
            Blob::Bytes(b) => b.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Repo {
    head: String,
    files: BTreeMap<String, Blob>,
    /// `(id, title)`, oldest first.
    commits: Vec<(String, String)>,
}

/// When to drop the connection of the next commit request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropMode {
    /// Before applying it: the commit does not happen.
    BeforeApply,
    /// After applying it: the commit happened, the client hears nothing.
    AfterApply,
}

struct State {
    /// "models/acme/x" or "datasets/org/name".
    repos: BTreeMap<String, Repo>,
    requests: Vec<Request>,
    token: Option<String>,
    fail_paths: Vec<String>,
    /// token -> (user, namespaces it may write).
    users: BTreeMap<String, (String, Vec<String>)>,
    lfs: BTreeMap<String, Vec<u8>>,
    lfs_threshold: usize,
    drop_commit: Option<DropMode>,
    commit_status: Option<u16>,
}

/// A running stand-in hub.
pub struct HubServer {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

fn fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A 40-hex commit id derived from the repo name (stable across runs).
pub fn commit_of(repo: &str) -> String {
    let a = fnv(repo.as_bytes());
    let b = fnv(format!("{repo}#").as_bytes());
    format!("{a}{b}{}", &a[..8])
}

fn sha256_hex(bytes: &[u8]) -> String {
    rewardbench::hub::api::sha256_hex(bytes)
}

fn new_repo(key: &str, files: BTreeMap<String, Blob>) -> Repo {
    let head = commit_of(key);
    Repo {
        head: head.clone(),
        files,
        commits: vec![(head, "initial commit".into())],
    }
}

impl HubServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            repos: BTreeMap::new(),
            requests: Vec::new(),
            token: None,
            fail_paths: Vec::new(),
            users: BTreeMap::new(),
            lfs: BTreeMap::new(),
            lfs_threshold: 10 * 1024 * 1024,
            drop_commit: None,
            commit_status: None,
        }));
        let s2 = Arc::clone(&state);
        let ep = endpoint.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s3 = Arc::clone(&s2);
                let ep = ep.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &s3, &ep);
                });
            }
        });
        Self { endpoint, state }
    }

    /// Serves `files` (repo path -> local file) as repo `key` ("models/acme/x",
    /// "datasets/org/name").
    pub fn add_repo(&self, key: &str, files: &[(&str, PathBuf)]) {
        let map = files
            .iter()
            .map(|(r, p)| (r.to_string(), Blob::Path(p.clone())))
            .collect();
        self.state
            .lock()
            .unwrap()
            .repos
            .insert(key.to_string(), new_repo(key, map));
    }

    /// Adds (or replaces) one file of repo `key`, outside any commit.
    pub fn put_file(&self, key: &str, path: &str, bytes: &[u8]) {
        let mut s = self.state.lock().unwrap();
        let repo = s
            .repos
            .entry(key.to_string())
            .or_insert_with(|| new_repo(key, BTreeMap::new()));
        repo.files
            .insert(path.to_string(), Blob::Bytes(bytes.to_vec()));
    }

    /// Serves every file under `dir` as repo `key`.
    pub fn add_dir(&self, key: &str, dir: &Path) {
        let mut files = Vec::new();
        collect(dir, dir, &mut files);
        let files: Vec<(String, PathBuf)> = files;
        let refs: Vec<(&str, PathBuf)> =
            files.iter().map(|(r, p)| (r.as_str(), p.clone())).collect();
        self.add_repo(key, &refs);
    }

    /// Every request must carry `Bearer {token}` (401 otherwise).
    pub fn require_token(&self, token: &str) {
        self.state.lock().unwrap().token = Some(token.to_string());
    }

    /// A user whose `token` may write to `user/*` and `orgs/*`.
    pub fn add_user(&self, token: &str, user: &str, orgs: &[&str]) {
        let mut ns = vec![user.to_string()];
        ns.extend(orgs.iter().map(|o| o.to_string()));
        self.state
            .lock()
            .unwrap()
            .users
            .insert(token.to_string(), (user.to_string(), ns));
    }

    /// Requests whose path contains `fragment` get a 500.
    pub fn fail(&self, fragment: &str) {
        self.state
            .lock()
            .unwrap()
            .fail_paths
            .push(fragment.to_string());
    }

    /// Files of at least `bytes` go through LFS (the hub's threshold is 10 MiB).
    pub fn lfs_threshold(&self, bytes: usize) {
        self.state.lock().unwrap().lfs_threshold = bytes;
    }

    /// Drops the connection of the next commit request, once.
    pub fn drop_next_commit(&self, when: DropMode) {
        self.state.lock().unwrap().drop_commit = Some(when);
    }

    /// Every commit request is answered with `status` (and applies nothing).
    pub fn commit_status(&self, status: u16) {
        self.state.lock().unwrap().commit_status = Some(status);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }

    pub fn has_repo(&self, key: &str) -> bool {
        self.state.lock().unwrap().repos.contains_key(key)
    }

    /// The files of repo `key` at its head (empty if there is no such repo).
    pub fn files(&self, key: &str) -> BTreeMap<String, Vec<u8>> {
        let s = self.state.lock().unwrap();
        s.repos.get(key).map_or_else(BTreeMap::new, |r| {
            r.files.iter().map(|(k, b)| (k.clone(), b.read())).collect()
        })
    }

    /// `(id, title)` of repo `key`'s commits, oldest first.
    pub fn commits(&self, key: &str) -> Vec<(String, String)> {
        let s = self.state.lock().unwrap();
        s.repos
            .get(key)
            .map_or_else(Vec::new, |r| r.commits.clone())
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(root, &p, out);
        } else {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, p));
        }
    }
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

fn json_response(stream: &mut TcpStream, status: &str, v: &Value) {
    let body = serde_json::to_vec(v).unwrap();
    respond(
        stream,
        status,
        &[("Content-Type".into(), "application/json".into())],
        &body,
    );
}

fn error(stream: &mut TcpStream, status: &str, message: &str) {
    json_response(stream, status, &json!({ "error": message }));
}

fn status_line(code: u16) -> String {
    let reason = match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        422 => "Unprocessable Entity",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    format!("{code} {reason}")
}

fn decode(s: &str) -> String {
    s.replace("%2F", "/")
        .replace("%2f", "/")
        .replace("%25", "%")
}

/// `{kind}/{org}/{name}` and the rest of an `/api/{kind}/{org}/{name}/{rest}` path.
fn split_api(rest: &str) -> Option<(String, &str)> {
    let mut parts = rest.splitn(4, '/');
    let kind = parts.next()?;
    let org = parts.next()?;
    let name = parts.next()?;
    let tail = parts.next().unwrap_or("");
    matches!(kind, "models" | "datasets").then(|| (format!("{kind}/{org}/{name}"), tail))
}

fn handle(mut stream: TcpStream, state: &Arc<Mutex<State>>, endpoint: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("GET").to_string();
    let path = words.next().unwrap_or("/").to_string();
    let (mut auth, mut range, mut length) = (None, None, 0usize);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "authorization" => auth = Some(v.trim().to_string()),
                "range" => range = Some(v.trim().to_string()),
                "content-length" => length = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (token, fails) = {
        let mut s = state.lock().unwrap();
        s.requests.push(Request {
            method: method.clone(),
            path: path.clone(),
            authorization: auth.clone(),
            body: body.clone(),
        });
        (s.token.clone(), s.fail_paths.clone())
    };
    if fails.iter().any(|f| path.contains(f.as_str())) {
        respond(&mut stream, "500 Internal Server Error", &[], b"boom");
        return Ok(());
    }
    if let Some(t) = token {
        if auth.as_deref() != Some(&format!("Bearer {t}")) {
            error(&mut stream, "401 Unauthorized", "Invalid credentials");
            return Ok(());
        }
    }
    let path = path.split('?').next().unwrap_or("/").to_string();
    let user = {
        let s = state.lock().unwrap();
        auth.as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .and_then(|t| s.users.get(t).cloned())
    };
    let write = Writer {
        user: user.as_ref(),
        state,
        endpoint,
    };
    match (method.as_str(), path.as_str()) {
        ("GET", "/api/whoami-v2") => match &user {
            Some((name, ns)) => json_response(
                &mut stream,
                "200 OK",
                &json!({"type": "user", "name": name,
                        "orgs": ns[1..].iter().map(|o| json!({"name": o})).collect::<Vec<_>>()}),
            ),
            None => error(
                &mut stream,
                "401 Unauthorized",
                "Invalid credentials in Authorization header",
            ),
        },
        ("POST", "/api/repos/create") => write.create(&mut stream, &body),
        ("PUT", p) if p.starts_with("/lfs-upload/") => {
            let oid = &p["/lfs-upload/".len()..];
            if sha256_hex(&body) != oid {
                error(
                    &mut stream,
                    "400 Bad Request",
                    "content does not match its oid",
                );
            } else {
                state.lock().unwrap().lfs.insert(oid.to_string(), body);
                respond(&mut stream, "200 OK", &[], b"");
            }
        }
        ("POST", p) if p.starts_with("/lfs-verify/") => {
            if write.user.is_none() {
                error(&mut stream, "401 Unauthorized", "Invalid credentials");
            } else if state
                .lock()
                .unwrap()
                .lfs
                .contains_key(&p["/lfs-verify/".len()..])
            {
                json_response(&mut stream, "200 OK", &json!({}));
            } else {
                error(&mut stream, "404 Not Found", "object not uploaded");
            }
        }
        ("POST", p) if p.ends_with(".git/info/lfs/objects/batch") => {
            let id = p
                .trim_start_matches('/')
                .trim_end_matches(".git/info/lfs/objects/batch");
            let key = match id.strip_prefix("datasets/") {
                Some(_) => id.to_string(),
                None => format!("models/{id}"),
            };
            write.lfs_batch(&mut stream, &key, &body);
        }
        (m, p) if p.starts_with("/api/") => {
            let Some((key, tail)) = split_api(&p["/api/".len()..]) else {
                error(&mut stream, "404 Not Found", "not found");
                return Ok(());
            };
            let (op, rev) = tail.split_once('/').unwrap_or((tail, "main"));
            let rev = decode(rev);
            match (m, op) {
                ("GET", "revision") => info(&mut stream, state, &key, &rev),
                ("GET", "commits") => history(&mut stream, state, &key, &rev),
                ("POST", "preupload") => write.preupload(&mut stream, &key, &body),
                ("POST", "commit") => write.commit(&mut stream, &key, &rev, &body),
                _ => error(&mut stream, "404 Not Found", "not found"),
            }
        }
        ("GET" | "HEAD", _) => download(&mut stream, state, &path, range.as_deref())?,
        _ => error(&mut stream, "404 Not Found", "not found"),
    }
    Ok(())
}

fn not_found(stream: &mut TcpStream) {
    respond(
        stream,
        "404 Not Found",
        &[("X-Error-Code".into(), "EntryNotFound".into())],
        b"{\"error\":\"not found\"}",
    )
}

fn info(stream: &mut TcpStream, state: &Arc<Mutex<State>>, key: &str, rev: &str) {
    let s = state.lock().unwrap();
    let Some(repo) = s.repos.get(key) else {
        error(stream, "404 Not Found", "Repository not found");
        return;
    };
    if rev != "main" && rev != repo.head {
        error(stream, "404 Not Found", "Revision not found");
        return;
    }
    let siblings: Vec<Value> = repo
        .files
        .keys()
        .map(|f| json!({ "rfilename": f }))
        .collect();
    json_response(
        stream,
        "200 OK",
        &json!({"id": key.split_once('/').map_or(key, |k| k.1), "sha": repo.head, "siblings": siblings}),
    );
}

fn history(stream: &mut TcpStream, state: &Arc<Mutex<State>>, key: &str, rev: &str) {
    let s = state.lock().unwrap();
    let Some(repo) = s.repos.get(key).filter(|_| rev == "main") else {
        error(stream, "404 Not Found", "Repository not found");
        return;
    };
    let list: Vec<Value> = repo
        .commits
        .iter()
        .rev()
        .map(|(id, title)| json!({"id": id, "title": title, "message": title, "authors": [], "date": "2025-01-01T00:00:00.000Z"}))
        .collect();
    json_response(stream, "200 OK", &Value::Array(list));
}

fn download(
    stream: &mut TcpStream,
    state: &Arc<Mutex<State>>,
    path: &str,
    range: Option<&str>,
) -> std::io::Result<()> {
    let p = path.trim_start_matches('/');
    let Some((id, tail)) = p.split_once("/resolve/") else {
        not_found(stream);
        return Ok(());
    };
    let key = if id.starts_with("datasets/") {
        id.to_string()
    } else {
        format!("models/{id}")
    };
    let Some((rev, file)) = tail.split_once('/') else {
        not_found(stream);
        return Ok(());
    };
    let rev = decode(rev);
    let (commit, blob) = {
        let s = state.lock().unwrap();
        let Some(repo) = s.repos.get(&key) else {
            not_found(stream);
            return Ok(());
        };
        let Some(blob) = repo
            .files
            .get(file)
            .filter(|_| rev == "main" || rev == repo.head)
        else {
            not_found(stream);
            return Ok(());
        };
        (repo.head.clone(), blob.clone())
    };
    let bytes = blob.read();
    let n = bytes.len();
    let mut headers = vec![
        ("ETag".to_string(), format!("\"{}\"", fnv(&bytes))),
        ("X-Repo-Commit".to_string(), commit),
    ];
    let (start, end) = match range.and_then(|r| r.strip_prefix("bytes=")) {
        Some(r) => {
            let (a, b) = r.split_once('-').unwrap_or((r, ""));
            let a: usize = a.parse().unwrap_or(0);
            let b: usize = if b.is_empty() {
                n.saturating_sub(1)
            } else {
                b.parse().unwrap_or(n.saturating_sub(1))
            };
            (a.min(n), (b + 1).min(n))
        }
        None => (0, n),
    };
    if range.is_some() {
        headers.push((
            "Content-Range".into(),
            format!("bytes {start}-{}/{n}", end.saturating_sub(1)),
        ));
        respond(stream, "206 Partial Content", &headers, &bytes[start..end]);
    } else {
        respond(stream, "200 OK", &headers, &bytes);
    }
    Ok(())
}

/// The write endpoints, for one request's user.
struct Writer<'a> {
    user: Option<&'a (String, Vec<String>)>,
    state: &'a Arc<Mutex<State>>,
    endpoint: &'a str,
}

impl Writer<'_> {
    /// 401 without a user, 403 when `key`'s namespace is not theirs; true when allowed.
    fn allowed(&self, stream: &mut TcpStream, key: &str) -> bool {
        let Some((_, ns)) = self.user else {
            error(
                stream,
                "401 Unauthorized",
                "Invalid credentials in Authorization header",
            );
            return false;
        };
        let owner = key.split('/').nth(1).unwrap_or("");
        if !ns.iter().any(|n| n == owner) {
            let id = key.split_once('/').map_or(key, |k| k.1);
            error(
                stream,
                "403 Forbidden",
                &format!("You don't have the rights to write to {id}"),
            );
            return false;
        }
        true
    }

    fn create(&self, stream: &mut TcpStream, body: &[u8]) {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let kind = match v["type"].as_str() {
            Some("dataset") => "datasets",
            Some("model") | None => "models",
            Some(_) => {
                error(stream, "400 Bad Request", "bad type");
                return;
            }
        };
        let (Some(org), Some(name)) = (v["organization"].as_str(), v["name"].as_str()) else {
            error(
                stream,
                "400 Bad Request",
                "name and organization are required",
            );
            return;
        };
        let key = format!("{kind}/{org}/{name}");
        if !self.allowed(stream, &key) {
            return;
        }
        let mut s = self.state.lock().unwrap();
        if s.repos.contains_key(&key) {
            drop(s);
            error(stream, "409 Conflict", "You already created this repo");
            return;
        }
        let mut files = BTreeMap::new();
        files.insert(
            ".gitattributes".to_string(),
            Blob::Bytes(b"*.parquet filter=lfs diff=lfs merge=lfs -text\n".to_vec()),
        );
        s.repos.insert(key.clone(), new_repo(&key, files));
        drop(s);
        json_response(
            stream,
            "200 OK",
            &json!({"url": format!("{}/{}", self.endpoint, key)}),
        );
    }

    fn preupload(&self, stream: &mut TcpStream, key: &str, body: &[u8]) {
        if !self.allowed(stream, key) {
            return;
        }
        let threshold = self.state.lock().unwrap().lfs_threshold;
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let files: Vec<Value> = v["files"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|f| {
                        let big = f["size"].as_u64().unwrap_or(0) as usize >= threshold;
                        json!({"path": f["path"], "uploadMode": if big { "lfs" } else { "regular" }, "shouldIgnore": false})
                    })
                    .collect()
            })
            .unwrap_or_default();
        json_response(stream, "200 OK", &json!({ "files": files }));
    }

    fn lfs_batch(&self, stream: &mut TcpStream, key: &str, body: &[u8]) {
        if !self.allowed(stream, key) {
            return;
        }
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let stored = self.state.lock().unwrap().lfs.clone();
        let objects: Vec<Value> = v["objects"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|o| {
                        let oid = o["oid"].as_str().unwrap_or("");
                        if stored.contains_key(oid) {
                            json!({"oid": oid, "size": o["size"]})
                        } else {
                            json!({"oid": oid, "size": o["size"], "actions": {
                                "upload": {"href": format!("{}/lfs-upload/{oid}", self.endpoint)},
                                "verify": {"href": format!("{}/lfs-verify/{oid}", self.endpoint)},
                            }})
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        json_response(
            stream,
            "200 OK",
            &json!({"transfer": "basic", "objects": objects}),
        );
    }

    fn commit(&self, stream: &mut TcpStream, key: &str, rev: &str, body: &[u8]) {
        if !self.allowed(stream, key) {
            return;
        }
        let (forced, dropping) = {
            let mut s = self.state.lock().unwrap();
            (s.commit_status, s.drop_commit.take())
        };
        if let Some(code) = forced {
            error(stream, &status_line(code), "commit refused (injected)");
            return;
        }
        if dropping == Some(DropMode::BeforeApply) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut header = Value::Null;
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let stored = self.state.lock().unwrap().lfs.clone();
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(v) = serde_json::from_slice::<Value>(line) else {
                error(stream, "400 Bad Request", "a line is not JSON");
                return;
            };
            let value = &v["value"];
            match v["key"].as_str() {
                Some("header") => header = value.clone(),
                Some("file") => {
                    let Ok(bytes) = b64.decode(value["content"].as_str().unwrap_or("")) else {
                        error(stream, "400 Bad Request", "content is not base64");
                        return;
                    };
                    files.push((value["path"].as_str().unwrap_or("").to_string(), bytes));
                }
                Some("lfsFile") => {
                    let oid = value["oid"].as_str().unwrap_or("");
                    let Some(bytes) = stored.get(oid) else {
                        error(stream, "422 Unprocessable Entity", "LFS object not found");
                        return;
                    };
                    files.push((
                        value["path"].as_str().unwrap_or("").to_string(),
                        bytes.clone(),
                    ));
                }
                _ => {
                    error(stream, "400 Bad Request", "unknown line key");
                    return;
                }
            }
        }
        let Some(summary) = header["summary"].as_str() else {
            error(stream, "400 Bad Request", "no header line with a summary");
            return;
        };
        let mut s = self.state.lock().unwrap();
        let Some(repo) = s.repos.get_mut(key).filter(|_| rev == "main") else {
            drop(s);
            error(stream, "404 Not Found", "Repository not found");
            return;
        };
        if let Some(parent) = header["parentCommit"].as_str() {
            if parent != repo.head {
                drop(s);
                error(
                    stream,
                    "412 Precondition Failed",
                    "A commit has happened since. Please refresh and try again.",
                );
                return;
            }
        }
        let n = repo.commits.len();
        let id = commit_of(&format!("{key}@{n}:{summary}"));
        for (p, b) in files {
            repo.files.insert(p, Blob::Bytes(b));
        }
        repo.commits.push((id.clone(), summary.to_string()));
        repo.head = id.clone();
        drop(s);
        if dropping == Some(DropMode::AfterApply) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        let id_path = key.split_once('/').map_or(key, |k| k.1);
        json_response(
            stream,
            "200 OK",
            &json!({"success": true, "commitOid": id,
                    "commitUrl": format!("{}/{id_path}/commit/{id}", self.endpoint)}),
        );
    }
}
