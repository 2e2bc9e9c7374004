//! A stand-in Hugging Face hub for tests: a std `TcpListener` on 127.0.0.1 answering the
//! endpoints `hf-hub` uses, from fixture files:
//!
//! * `GET /api/{models|datasets}/{id}/revision/{rev}`: `{"sha", "siblings": [{"rfilename"}]}`;
//! * `GET [/datasets]/{id}/resolve/{rev}/{file}`: the bytes, honouring `Range`, with `ETag`,
//!   `X-Repo-Commit` and `Content-Range` as the hub sends them.
//!
//! Every request is recorded (path and `Authorization` header). Failures can be injected: a
//! required token (401 without it) and paths answered with a 500.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    /// "models/acme/x" or "datasets/org/name" -> (commit, files: rfilename -> local path).
    repos: BTreeMap<String, (String, BTreeMap<String, PathBuf>)>,
    requests: Vec<Request>,
    token: Option<String>,
    fail_paths: Vec<String>,
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

impl HubServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let s2 = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s3 = Arc::clone(&s2);
                std::thread::spawn(move || {
                    let _ = handle(stream, &s3);
                });
            }
        });
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// Serves `files` (repo path -> local file) as repo `key` ("models/acme/x",
    /// "datasets/org/name").
    pub fn add_repo(&self, key: &str, files: &[(&str, PathBuf)]) {
        let map = files
            .iter()
            .map(|(r, p)| (r.to_string(), p.clone()))
            .collect();
        self.state
            .lock()
            .unwrap()
            .repos
            .insert(key.to_string(), (commit_of(key), map));
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

    pub fn require_token(&self, token: &str) {
        self.state.lock().unwrap().token = Some(token.to_string());
    }

    /// Requests whose path contains `fragment` get a 500.
    pub fn fail(&self, fragment: &str) {
        self.state
            .lock()
            .unwrap()
            .fail_paths
            .push(fragment.to_string());
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
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

fn handle(mut stream: TcpStream, state: &Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (mut auth, mut range) = (None, None);
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "authorization" => auth = Some(v.trim().to_string()),
                "range" => range = Some(v.trim().to_string()),
                "content-length" => {
                    let n: usize = v.trim().parse().unwrap_or(0);
                    let mut sink = vec![0; n];
                    reader.read_exact(&mut sink)?;
                }
                _ => {}
            }
        }
    }
    let st = {
        let mut s = state.lock().unwrap();
        s.requests.push(Request {
            path: path.clone(),
            authorization: auth.clone(),
        });
        (s.token.clone(), s.fail_paths.clone(), s.repos.clone())
    };
    let (token, fails, repos) = st;
    if fails.iter().any(|f| path.contains(f.as_str())) {
        respond(&mut stream, "500 Internal Server Error", &[], b"boom");
        return Ok(());
    }
    if let Some(t) = token {
        if auth.as_deref() != Some(&format!("Bearer {t}")) {
            respond(
                &mut stream,
                "401 Unauthorized",
                &[],
                b"{\"error\":\"Invalid credentials\"}",
            );
            return Ok(());
        }
    }
    let not_found = |stream: &mut TcpStream| {
        respond(
            stream,
            "404 Not Found",
            &[("X-Error-Code".into(), "EntryNotFound".into())],
            b"{\"error\":\"not found\"}",
        )
    };
    // Repo info.
    if let Some(rest) = path.strip_prefix("/api/") {
        let Some((key, rev)) = rest.split_once("/revision/") else {
            not_found(&mut stream);
            return Ok(());
        };
        let Some((commit, files)) = repos.get(key) else {
            not_found(&mut stream);
            return Ok(());
        };
        if rev != "main" && rev != commit {
            not_found(&mut stream);
            return Ok(());
        }
        let siblings: Vec<String> = files
            .keys()
            .map(|f| format!("{{\"rfilename\":\"{f}\"}}"))
            .collect();
        let body = format!(
            "{{\"id\":\"{key}\",\"sha\":\"{commit}\",\"siblings\":[{}]}}",
            siblings.join(",")
        );
        respond(
            &mut stream,
            "200 OK",
            &[("Content-Type".into(), "application/json".into())],
            body.as_bytes(),
        );
        return Ok(());
    }
    // File download.
    let p = path.trim_start_matches('/');
    let Some((id, tail)) = p.split_once("/resolve/") else {
        not_found(&mut stream);
        return Ok(());
    };
    let key = if id.starts_with("datasets/") {
        id.to_string()
    } else {
        format!("models/{id}")
    };
    let Some((rev, file)) = tail.split_once('/') else {
        not_found(&mut stream);
        return Ok(());
    };
    let Some((commit, files)) = repos.get(&key) else {
        not_found(&mut stream);
        return Ok(());
    };
    let Some(local) = files.get(file).filter(|_| rev == "main" || rev == commit) else {
        not_found(&mut stream);
        return Ok(());
    };
    let bytes = std::fs::read(local)?;
    let n = bytes.len();
    let mut headers = vec![
        ("ETag".to_string(), format!("\"{}\"", fnv(&bytes))),
        ("X-Repo-Commit".to_string(), commit.clone()),
    ];
    let (start, end) = match range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
        Some(r) => {
            let (a, b) = r.split_once('-').unwrap_or((r, ""));
            let a: usize = a.parse().unwrap_or(0);
            let b: usize = if b.is_empty() {
                n.saturating_sub(1)
            } else {
                b.parse().unwrap_or(n - 1)
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
        respond(
            &mut stream,
            "206 Partial Content",
            &headers,
            &bytes[start..end],
        );
    } else {
        respond(&mut stream, "200 OK", &headers, &bytes);
    }
    Ok(())
}
