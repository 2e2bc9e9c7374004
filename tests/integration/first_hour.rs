//! A researcher's first hour (issue 19): a hub that hangs or is gone, pasted RewardBench
//! command lines, and the messages a first try meets (a file for a folder, a typo, a BOM, a
//! compressed or column-oriented file, a local copy of the core set or the pref sets).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::hub_server::HubServer;
use crate::util::{llama, rewardbench, root, stderr};
use rewardbench::hub::{Hub, HubConfig, HubError, RepoKind, RepoRef};
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn llmbar() -> PathBuf {
    root().join("fixtures/data/llmbar.jsonl")
}

/// The binary with `args` and `--threads 1`, not quiet (progress lines are checked), with a
/// hub environment of its own: `HF_HOME` = `home`, `HF_ENDPOINT` = `endpoint`.
fn hub_command(args: &[&str], endpoint: &str, home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rewardbench"));
    c.args(args)
        .args(["--threads", "1"])
        .env_remove("RUST_BACKTRACE")
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_HUB_ETAG_TIMEOUT")
        .env_remove("HF_HUB_DOWNLOAD_TIMEOUT");
    c
}

/// Runs `c` to the end, or kills it after `limit` (then the test fails).
fn run_within(mut c: Command, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    loop {
        if child.try_wait().expect("wait").is_some() {
            return (child.wait_with_output().expect("output"), start.elapsed());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().expect("output");
            panic!(
                "still running after {limit:?}: it hangs\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port nothing listens on.
fn closed_endpoint() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// A server that accepts connections and never answers.
fn silent_endpoint() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in l.incoming().flatten() {
            held.push(stream);
        }
    });
    endpoint
}

/// The tiny Llama reward model (Optimum layout), the core set and the pref sets.
fn server() -> HubServer {
    let srv = HubServer::start();
    let m = llama();
    let mut files: Vec<(&str, PathBuf)> = [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ]
    .iter()
    .map(|f| (*f, m.join(f)))
    .collect();
    files.push(("onnx/model.onnx", m.join("model.onnx")));
    srv.add_repo("models/acme/tiny-llama-rm", &files);
    for id in ["allenai/reward-bench", "allenai/pref-test-sets"] {
        srv.add_dir(
            &format!("datasets/{id}"),
            &root().join("fixtures/hub/datasets").join(id),
        );
    }
    srv
}

fn json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

// ---- Item 3: the hub client never hangs, and uses the cache when the hub is gone.

/// A hub that accepts the connection and then says nothing: the run fails in about
/// HF_HUB_ETAG_TIMEOUT seconds (1 here) with a message naming the variable, not a hang.
#[test]
fn a_hub_that_never_answers_fails_within_seconds() {
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut c = hub_command(
        &[
            "--model",
            "acme/tiny-llama-rm",
            "--dataset",
            s(&llmbar()),
            "--output_dir",
            s(out.path()),
        ],
        &silent_endpoint(),
        home.path(),
    );
    c.env("HF_HUB_ETAG_TIMEOUT", "1");
    let (o, took) = run_within(c, Duration::from_secs(60));
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}: {err}");
    assert!(
        err.contains("contacting the hub at http://127.0.0.1:")
            && err.contains("for model acme/tiny-llama-rm"),
        "says what it waits for: {err}"
    );
    assert!(
        err.contains("no answer within 1 s")
            && err.contains("HF_HUB_ETAG_TIMEOUT")
            && err.contains("HF_HUB_OFFLINE=1"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // --quiet drops the progress line, not the error.
    let mut c = hub_command(
        &[
            "--model",
            "acme/tiny-llama-rm",
            "--dataset",
            s(&llmbar()),
            "--output_dir",
            s(out.path()),
            "--quiet",
        ],
        &silent_endpoint(),
        home.path(),
    );
    c.env("HF_HUB_ETAG_TIMEOUT", "0.5");
    let (o, _) = run_within(c, Duration::from_secs(60));
    let err = stderr(&o);
    assert!(!o.status.success() && !err.contains("contacting"), "{err}");
    assert!(err.contains("no answer within 0.5 s"), "{err}");
    // A value that is not a number of seconds is refused.
    let mut c = hub_command(
        &["--model", "acme/x", "--output_dir", s(out.path())],
        &silent_endpoint(),
        home.path(),
    );
    c.env("HF_HUB_DOWNLOAD_TIMEOUT", "ten");
    let (o, _) = run_within(c, Duration::from_secs(60));
    assert!(
        stderr(&o).contains("HF_HUB_DOWNLOAD_TIMEOUT=ten: not a number of seconds"),
        "{}",
        stderr(&o)
    );
}

/// A hub that lists the repo and gives the file's metadata, then sends a few bytes of the
/// file and stops: the download fails after HF_HUB_DOWNLOAD_TIMEOUT, and leaves nothing in
/// the cache.
#[test]
fn a_download_that_stalls_fails_after_the_download_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", l.local_addr().unwrap());
    let commit = "c".repeat(40);
    let c2 = commit.clone();
    std::thread::spawn(move || {
        for stream in l.incoming().flatten() {
            let commit = c2.clone();
            std::thread::spawn(move || stall(stream, &commit));
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let mut cfg = HubConfig::new(&endpoint, cache.path());
    cfg.download_timeout = Duration::from_millis(700);
    let hub = Hub::new(cfg).unwrap();
    let repo = RepoRef::new("acme/slow", RepoKind::Model, None);
    let snap = hub.snapshot(&repo).unwrap();
    assert_eq!(snap.commit, commit);
    let start = Instant::now();
    let e = hub.fetch(&snap, "model.onnx").unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(20), "{e}");
    assert!(matches!(e, HubError::Unreachable { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("stalled")
            && text.contains("0.7 s")
            && text.contains("HF_HUB_DOWNLOAD_TIMEOUT")
            && text.contains("model acme/slow: file model.onnx"),
        "{text}"
    );
    let blobs = hub.repo_dir(&repo).join("blobs");
    let left: Vec<_> = std::fs::read_dir(&blobs)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no partial blob left: {left:?}");
}

/// The stalling hub: a listing, a metadata answer, then 10 of 1000 bytes.
fn stall(mut stream: TcpStream, commit: &str) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut ranged = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        ranged |= h.to_ascii_lowercase().starts_with("range: bytes=0-0");
    }
    let reply = |stream: &mut TcpStream, status: &str, headers: &str, body: &[u8], len: usize| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n{headers}\r\n"
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
        let _ = stream.flush();
    };
    if path.starts_with("/api/") {
        let body = format!(r#"{{"sha": "{commit}", "siblings": [{{"rfilename": "model.onnx"}}]}}"#);
        reply(&mut stream, "200 OK", "", body.as_bytes(), body.len());
    } else if ranged {
        let headers = format!(
            "ETag: \"abc123\"\r\nX-Repo-Commit: {commit}\r\nContent-Range: bytes 0-0/1000\r\n"
        );
        reply(&mut stream, "206 Partial Content", &headers, b"x", 1);
    } else {
        reply(&mut stream, "200 OK", "", &[b'x'; 10], 1000);
        std::thread::sleep(Duration::from_secs(30));
    }
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
}

/// A model and dataset fetched once are used from the cache when the hub cannot be reached
/// (nothing listens at HF_ENDPOINT), with a warning; the results are the same.
#[test]
fn an_unreachable_hub_falls_back_to_the_cache_with_a_warning() {
    let srv = server();
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let args = |dir: &Path| {
        vec![
            "--model".to_string(),
            "acme/tiny-llama-rm".to_string(),
            "--output_dir".to_string(),
            dir.display().to_string(),
            "--cache".to_string(),
            "false".to_string(),
        ]
    };
    let first = out.path().join("online");
    let a = args(&first);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (o, _) = run_within(
        hub_command(&a, &srv.endpoint, home.path()),
        Duration::from_secs(120),
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("downloading model acme/tiny-llama-rm: onnx/model.onnx (")
            && err.contains("contacting the hub at"),
        "{err}"
    );
    assert!(!err.contains("warning: cannot reach"), "{err}");

    let second = out.path().join("offline");
    let a = args(&second);
    let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
    a.push("--quiet");
    let (o, _) = run_within(
        hub_command(&a, &closed_endpoint(), home.path()),
        Duration::from_secs(120),
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    for what in ["model acme/tiny-llama-rm", "dataset allenai/reward-bench"] {
        assert!(
            err.contains(&format!("using {what} from the hub cache")),
            "{what}: {err}"
        );
    }
    assert!(
        err.contains("warning: cannot reach the hub at http://127.0.0.1:")
            && err.contains("HF_HUB_OFFLINE=1"),
        "{err}"
    );
    let a = json(&first.join("acme/tiny-llama-rm.json"));
    let b = json(&second.join("acme/tiny-llama-rm.json"));
    assert_eq!(a["accuracy"], b["accuracy"]);
    assert_eq!(a["dataset"]["revision"], b["dataset"]["revision"]);

    // Not cached: the error says so and suggests HF_HUB_OFFLINE.
    let (o, _) = run_within(
        hub_command(
            &[
                "--model",
                "acme/never-fetched",
                "--output_dir",
                s(out.path()),
            ],
            &closed_endpoint(),
            home.path(),
        ),
        Duration::from_secs(60),
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("cannot reach the hub")
            && err.contains("not in the hub cache")
            && err.contains("HF_HUB_OFFLINE=1"),
        "{err}"
    );
}

/// A path typed wrong that is no hub repo either: the message says both, and names the
/// repo once.
#[test]
fn a_typo_says_no_local_folder_and_no_hub_repo() {
    let srv = server();
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (o, _) = run_within(
        hub_command(
            &[
                "--model",
                "acme/tiny-lama-rm",
                "--dataset",
                s(&llmbar()),
                "--output_dir",
                s(out.path()),
            ],
            &srv.endpoint,
            home.path(),
        ),
        Duration::from_secs(60),
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("no local folder acme/tiny-lama-rm, and as a hub id: model acme/tiny-lama-rm: not found on")
            && err.contains("HTTP 404"),
        "{err}"
    );
    assert!(err.contains("check the id and --revision"), "{err}");
    assert_eq!(
        error_line(&err).matches("model acme/tiny-lama-rm").count(),
        1,
        "{err}"
    );
    let (o, _) = run_within(
        hub_command(
            &[
                "--model",
                s(&llama()),
                "--dataset",
                "data/rows.jsnl",
                "--output_dir",
                s(out.path()),
            ],
            &srv.endpoint,
            home.path(),
        ),
        Duration::from_secs(60),
    );
    let err = stderr(&o);
    assert!(
        err.contains("no local file or folder data/rows.jsnl, and as a hub id: dataset data/rows.jsnl: not found"),
        "{err}"
    );
    assert_eq!(
        error_line(&err).matches("dataset data/rows.jsnl").count(),
        1,
        "{err}"
    );
    // An error about one file of a repo names the repo once too.
    srv.fail("/resolve/");
    let (o, _) = run_within(
        hub_command(
            &[
                "--model",
                "acme/tiny-llama-rm",
                "--output_dir",
                s(out.path()),
            ],
            &srv.endpoint,
            tempfile::tempdir().unwrap().path(),
        ),
        Duration::from_secs(60),
    );
    let err = stderr(&o);
    assert!(err.contains("HTTP 500"), "{err}");
    assert_eq!(
        error_line(&err)
            .matches("model acme/tiny-llama-rm:")
            .count(),
        1,
        "{err}"
    );
}

/// `--ref_model` as a hub id is downloaded like `--model`.
#[test]
fn a_hub_reference_model_is_downloaded() {
    let srv = HubServer::start();
    let r = root().join("fixtures/models/tiny-llama-ref");
    let files: Vec<(&str, PathBuf)> = [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "model.onnx",
    ]
    .iter()
    .map(|f| (*f, r.join(f)))
    .collect();
    srv.add_repo("models/acme/tiny-llama-ref", &files);
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let policy = root().join("fixtures/models/tiny-llama-policy");
    let (o, _) = run_within(
        hub_command(
            &[
                "--model",
                s(&policy),
                "--ref_model",
                "acme/tiny-llama-ref",
                "--dataset",
                s(&llmbar()),
                "--debug",
                "--quiet",
                "--output_dir",
                s(out.path()),
            ],
            &srv.endpoint,
            home.path(),
        ),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = json(&out.path().join("tiny-llama-policy.json"));
    assert_eq!(summary["ref_model"], "acme/tiny-llama-ref");
}

// ---- Item 5: pasted RewardBench command lines run, each ignored flag with a note.

/// The `error:` line of a run's stderr.
fn error_line(err: &str) -> &str {
    err.lines().find(|l| l.starts_with("error: ")).unwrap_or("")
}

fn note_lines(err: &str) -> Vec<&str> {
    err.lines().filter(|l| l.starts_with("note: ")).collect()
}

/// Command lines as RewardBench's README and scripts give them (rewardbench, run_rm.py,
/// run_dpo.py, run_v2.py), with local fixtures for the models and data: they run, and every
/// flag that means nothing here gets a note "accepted, ignored because ...".
#[test]
fn pasted_upstream_command_lines_run_with_notes() {
    let tmp = tempfile::tempdir().unwrap();
    let m = s(&llama()).to_string();
    let data = s(&llmbar()).to_string();
    let out = |n: &str| tmp.path().join(n).display().to_string();
    let model = format!("--model={m}");
    let dataset = format!("--dataset={data}");
    let (o1, o2, o3, o4) = (out("cli"), out("run_rm"), out("run_dpo"), out("run_v2"));
    // rewardbench (rewardbench.py's Args), every flag.
    let cli: Vec<&str> = vec![
        &model,
        &dataset,
        "--batch_size=8",
        "--load_json",
        "--split",
        "train",
        "--revision",
        "main",
        "--tokenizer",
        &m,
        "--chat_template",
        "raw",
        "--not_quantized",
        "--prioritize_scoring",
        "False",
        "--hf_entity",
        "my-org",
        "--hf_name",
        "my-results",
        "--wandb_run",
        "ai2-llm/rm/abc123",
        "--max_length",
        "512",
        "--torch_dtype",
        "bfloat16",
        "--attn_implementation",
        "flash_attention_2",
        "--trust_remote_code",
        "--debug",
        "--output_dir",
        &o1,
        "--save_all",
        "--force_truncation",
    ];
    // scripts/run_rm.py
    let run_rm: Vec<&str> = vec![
        &model,
        &dataset,
        "--chat_template=tulu",
        "--batch_size=64",
        "--max_length=2048",
        "--do_not_save",
        "--disable_beaker_save",
        "--pref_sets",
        "false",
        "--debug",
        "--not_quantized",
        "--torch_dtype=float16",
        "--attn_implementation=sdpa",
        "--trust_remote_code",
        "--output_dir",
        &o2,
    ];
    let policy = root().join("fixtures/models/tiny-llama-policy");
    let reference = root().join("fixtures/models/tiny-llama-ref");
    let pm = format!("--model={}", s(&policy));
    let rm = format!("--ref_model={}", s(&reference));
    // scripts/run_dpo.py
    let run_dpo: Vec<&str> = vec![
        &pm,
        &rm,
        &dataset,
        "--ref_free_type",
        "avg",
        "--chat_template",
        "tulu",
        "--batch_size=6",
        "--do_not_save",
        "--trust_remote_code",
        "--debug",
        "--disable_beaker_save",
        "--not_quantized",
        "--torch_dtype",
        "float16",
        "--output_dir",
        &o3,
    ];
    let rb2 = format!("--dataset={}", s(&root().join("fixtures/data/rb2.jsonl")));
    // scripts/run_v2.py
    let run_v2: Vec<&str> = vec![
        "v2",
        &model,
        &rb2,
        "--tokenizer",
        &m,
        "--chat_template",
        "tulu",
        "--trust_remote_code",
        "--do_not_save",
        "--batch_size",
        "64",
        "--max_length",
        "2048",
        "--debug",
        "--disable_beaker_save",
        "--quantized",
        "--torch_dtype",
        "float16",
        "--attn_implementation",
        "eager",
        "--output_dir",
        &o4,
    ];
    for (name, args, ignored) in [
        (
            "rewardbench",
            cli,
            &[
                "--not_quantized",
                "--torch_dtype",
                "--attn_implementation",
                "--trust_remote_code",
                "--wandb_run",
                "--hf_entity",
                "--hf_name",
            ][..],
        ),
        (
            "run_rm.py",
            run_rm,
            &[
                "--do_not_save",
                "--disable_beaker_save",
                "--not_quantized",
                "--torch_dtype",
                "--attn_implementation",
                "--trust_remote_code",
            ][..],
        ),
        (
            "run_dpo.py",
            run_dpo,
            &[
                "--do_not_save",
                "--disable_beaker_save",
                "--not_quantized",
                "--torch_dtype",
                "--trust_remote_code",
                "--ref_free_type",
            ][..],
        ),
        (
            "run_v2.py",
            run_v2,
            &[
                "--do_not_save",
                "--disable_beaker_save",
                "--quantized",
                "--torch_dtype",
                "--attn_implementation",
                "--trust_remote_code",
            ][..],
        ),
    ] {
        let o = rewardbench(&args);
        let err = stderr(&o);
        assert!(o.status.success(), "{name}: {err}");
        assert!(!err.contains("unexpected argument"), "{name}: {err}");
        let notes = note_lines(&err);
        for flag in ignored {
            assert!(
                notes
                    .iter()
                    .any(|n| n.contains(flag) && n.contains("ignored")),
                "{name}: no note on {flag}: {err}"
            );
        }
    }
}

/// The notes read well: one verb per group, and the reason fits the flag.
#[test]
fn the_trust_remote_code_note_gives_its_own_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--dataset",
        s(&llmbar()),
        "--debug",
        "--output_dir",
        s(tmp.path()),
        "--trust_remote_code",
        "--not_quantized",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("note: --trust_remote_code: accepted, ignored because no Python code from the model repo is run here"),
        "{err}"
    );
    assert!(
        err.contains(
            "note: --not_quantized: accepted, ignored because an ONNX export's precision is fixed"
        ),
        "{err}"
    );
    assert!(
        !err.contains(" have no effect") && !err.contains(" has no effect"),
        "{err}"
    );
}

// ---- Item 6: clear messages where they misled.

#[test]
fn an_onnx_file_for_model_says_pass_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let onnx = llama().join("model.onnx");
    let o = rewardbench(&[
        "--model",
        s(&onnx),
        "--dataset",
        s(&llmbar()),
        "--output_dir",
        s(tmp.path()),
    ]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("model.onnx is a file") && err.contains(&format!("pass {}", s(&llama()))),
        "{err}"
    );
    assert!(!err.contains("does not exist"), "{err}");
}

#[test]
fn render_takes_the_tokenizer_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let msgs = tmp.path().join("m.json");
    std::fs::write(&msgs, r#"[{"role": "user", "content": "Hi"}]"#).unwrap();
    let render = |cfg: &Path| {
        Command::new(env!("CARGO_BIN_EXE_rewardbench"))
            .args([
                "render",
                "--messages",
                s(&msgs),
                "--tokenizer_config",
                s(cfg),
            ])
            .output()
            .unwrap()
    };
    let by_file = render(&llama().join("tokenizer_config.json"));
    let by_dir = render(&llama());
    assert!(by_dir.status.success(), "{}", stderr(&by_dir));
    assert_eq!(by_dir.stdout, by_file.stdout);
    assert!(!by_dir.stdout.is_empty());
    let e = render(tmp.path());
    assert!(
        stderr(&e).contains("has no tokenizer_config.json"),
        "{}",
        stderr(&e)
    );
}

/// `--force_truncation --max_length` beyond the model's positions: a warning says a text
/// truncated to that length can still be too long.
#[test]
fn a_max_length_beyond_the_positions_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--dataset",
        s(&llmbar()),
        "--debug",
        "--output_dir",
        s(tmp.path()),
        "--force_truncation",
        "--max_length",
        "4096",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(
            "warning: --force_truncation --max_length 4096 is more than the 2048 positions"
        ) && err.contains("pass --max_length 2048 or less"),
        "{err}"
    );
    // Within the positions: no warning.
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--dataset",
        s(&llmbar()),
        "--debug",
        "--output_dir",
        s(&tmp.path().join("b")),
        "--force_truncation",
        "--max_length",
        "2048",
    ]);
    assert!(!stderr(&o).contains("positions"), "{}", stderr(&o));
}

/// A gzip-compressed JSON-lines file with a byte-order mark, and a column-oriented JSON file,
/// score exactly as the plain file.
#[test]
fn bom_gzip_and_column_files_score_as_the_plain_file() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(llmbar()).unwrap();
    let gz = tmp.path().join("rows.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(b"\xef\xbb\xbf").unwrap();
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    // {"prompt": [...], "chosen": [...], ...}
    let rows: Vec<serde_json::Map<String, Value>> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut cols = serde_json::Map::new();
    for k in rows[0].keys() {
        cols.insert(
            k.clone(),
            Value::Array(rows.iter().map(|r| r[k].clone()).collect()),
        );
    }
    let columns = tmp.path().join("columns.json");
    std::fs::write(&columns, serde_json::to_string(&cols).unwrap()).unwrap();
    let score = |data: &Path, out: &str| {
        let dir = tmp.path().join(out);
        let o = rewardbench(&[
            "--model",
            s(&llama()),
            "--dataset",
            s(data),
            "--output_dir",
            s(&dir),
        ]);
        assert!(o.status.success(), "{}: {}", data.display(), stderr(&o));
        let mut v = json(&dir.join("tiny-llama-rm.json"));
        v.as_object_mut().unwrap().remove("evaluator");
        v.as_object_mut().unwrap().remove("dataset");
        v
    };
    let plain = score(&llmbar(), "plain");
    assert_eq!(score(&gz, "gz"), plain);
    assert_eq!(score(&columns, "columns"), plain);
}

/// A local copy of the core set read without --split: a warning suggests `--split filtered`
/// (raw repeats filtered's rows); with it, the run works.
#[test]
fn a_local_core_set_copy_suggests_split_filtered() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = root().join("fixtures/hub/datasets/allenai/reward-bench");
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--dataset",
        s(&copy),
        "--output_dir",
        s(tmp.path()),
    ]);
    let err = stderr(&o);
    assert!(
        err.contains("looks like a local copy of the RewardBench core set")
            && err.contains("add --split filtered"),
        "{err}"
    );
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--dataset",
        s(&copy),
        "--split",
        "filtered",
        "--output_dir",
        s(&tmp.path().join("b")),
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("local copy"), "{err}");
}

/// `--pref_sets --dataset DIR` reads the local copy with the pref-set rules (each split a
/// subset, pku_better left out); without --pref_sets a note suggests it.
#[test]
fn pref_sets_read_a_local_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = root().join("fixtures/hub/datasets/allenai/pref-test-sets");
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--pref_sets",
        "--dataset",
        s(&copy),
        "--output_dir",
        s(tmp.path()),
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let summary = json(&tmp.path().join("tiny-llama-rm.json"));
    let mut subsets: Vec<&String> = summary["subset_counts"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    subsets.sort();
    assert_eq!(
        subsets,
        [
            "anthropic_helpful",
            "anthropic_hhh",
            "mtbench_gpt4",
            "shp",
            "summarize"
        ]
    );
    assert_eq!(summary["num_prompts"], 25);
    let o = rewardbench(&[
        "--model",
        s(&llama()),
        "--dataset",
        s(&copy),
        "--output_dir",
        s(&tmp.path().join("b")),
    ]);
    let err = stderr(&o);
    assert!(err.contains("add --pref_sets"), "{err}");
}

/// Item 1: two datasets and a debug run without --output_dir keep three results apart; a
/// run that would replace another run's results stops before any compute and says why.
#[test]
fn runs_keep_their_identity_in_the_default_results_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let model = root().join("fixtures/models/tiny-llama-rm");
    let edge = root().join("fixtures/data/edge_cases.jsonl");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rewardbench"))
            .current_dir(tmp.path())
            .arg("--model")
            .arg(&model)
            .args(["--threads", "1", "--quiet"])
            .args(extra)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    };
    for extra in [
        &["--dataset", s(&llmbar())][..],
        &["--dataset", s(&edge)],
        &["--dataset", s(&llmbar()), "--debug"],
    ] {
        let o = run(extra);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
    }
    let results = tmp.path().join("results");
    let summary = |dir: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(results.join(dir).join("tiny-llama-rm.json")).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(summary("llmbar")["num_prompts"], 40);
    assert_eq!(summary("llmbar")["dataset"], s(&llmbar()));
    assert_eq!(summary("edge_cases")["dataset"], s(&edge));
    assert_eq!(summary("llmbar-debug")["debug"], true);
    assert!(summary("llmbar").get("debug").is_none());
    // The leaderboard of the folder leaves the debug run out, and says so.
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .arg("leaderboard")
        .arg(&results)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("a --debug run"), "{}", stderr(&o));
    // Another dataset into a folder holding llmbar's results: refused before any compute,
    // naming the difference; --overwrite replaces them.
    let dir = results.join("llmbar");
    let before = std::fs::read(dir.join("tiny-llama-rm.json")).unwrap();
    let o = run(&["--dataset", s(&edge), "--output_dir", s(&dir)]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("holds another run's results") && e.contains("edge_cases.jsonl now"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(dir.join("tiny-llama-rm.json")).unwrap(),
        before
    );
    // The same run again (the model given as DIR/) passes.
    let slash = format!("{}/", model.display());
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args([
            "--model",
            &slash,
            "--dataset",
            s(&llmbar()),
            "--quiet",
            "--output_dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "--dataset",
        s(&edge),
        "--output_dir",
        s(&dir),
        "--overwrite",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Two checkpoints with the same folder name (`runs/a/ckpt`, `runs/b/ckpt`) into one output
/// folder keep two sets of files (`ckpt.*` and `b--ckpt.*`) and two leaderboard rows; each
/// resumes into its own; `DIR`, `DIR/` and `./DIR` are one model.
#[test]
fn same_named_checkpoints_keep_their_own_files() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = root().join("fixtures/models/tiny-llama-rm");
    for run in ["a", "b"] {
        let dir = tmp.path().join("runs").join(run).join("ckpt");
        std::fs::create_dir_all(&dir).unwrap();
        for e in std::fs::read_dir(&fixture).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let data = root().join("fixtures/data/edge_cases.jsonl");
    let run = |model: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
            .current_dir(tmp.path())
            .args([
                "--model",
                model,
                "--dataset",
                s(&data),
                "--output_dir",
                "out",
            ])
            .args(["--threads", "1", "--quiet"])
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        assert!(o.status.success(), "{model}: {}", stderr(&o));
        stderr(&o)
    };
    let out = tmp.path().join("out");
    let summary = |name: &str| json(&out.join(format!("{name}.json")));
    assert!(!run("runs/a/ckpt").contains("already holds"));
    let e = run("./runs/b/ckpt/");
    assert!(
        e.contains("another model named ckpt") && e.contains("b--ckpt"),
        "{e}"
    );
    assert_eq!(summary("ckpt")["model"], "runs/a/ckpt");
    assert_eq!(summary("b--ckpt")["model"], "runs/b/ckpt");
    for f in [
        "b--ckpt_outputs.jsonl",
        "b--ckpt_scores.csv",
        "b--ckpt_run.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // Again, each as another spelling of its folder: answered from its own store, same names.
    let before = std::fs::read(out.join("b--ckpt_outputs.jsonl")).unwrap();
    let first = json(&out.join("b--ckpt_run.json"));
    assert!(run("runs/b/ckpt").contains("named b--ckpt"));
    // all from the store: _run.json keeps the throughput of the run that computed the scores
    let again = json(&out.join("b--ckpt_run.json"));
    assert_eq!(again["reused_calls"], again["model_calls"]);
    assert_eq!(again["pairs_per_second"], first["pairs_per_second"]);
    assert_eq!(again["timings"], first["timings"]);
    assert_eq!(again["throughput_from_earlier_run"], true);
    assert!(!run("runs/a/ckpt/").contains("already holds"));
    assert_eq!(
        std::fs::read(out.join("b--ckpt_outputs.jsonl")).unwrap(),
        before
    );
    assert!(!out.join("b--b--ckpt.json").exists() && !out.join("a--ckpt.json").exists());
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .arg("leaderboard")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("runs/a/ckpt") && table.contains("runs/b/ckpt"),
        "{table}"
    );
}

/// DPO summaries say `model_type` as run_dpo does (`DPO`, `DPO Ref. Free`); a leaderboard
/// keeps a policy's DPO and reference-free runs apart, labelled by what sets them apart.
#[test]
fn dpo_modes_keep_apart_on_the_leaderboard() {
    let tmp = tempfile::tempdir().unwrap();
    let policy = root().join("fixtures/models/tiny-llama-policy");
    let reference = root().join("fixtures/models/tiny-llama-ref");
    let data = root().join("fixtures/data/edge_cases.jsonl");
    let run = |out: &str, extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
            .args(["--model", s(&policy), "--dataset", s(&data), "--output_dir"])
            .arg(tmp.path().join(out))
            .args(["--threads", "1", "--quiet"])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    run("dpo", &["--ref_model", s(&reference)]);
    run("free", &["--ref_free_type", "avg"]);
    let summary = |out: &str| json(&tmp.path().join(out).join("tiny-llama-policy.json"));
    assert_eq!(summary("dpo")["model_type"], "DPO");
    assert_eq!(summary("free")["model_type"], "DPO Ref. Free");
    assert_eq!(summary("free")["ref_free_type"], "avg");
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .arg("leaderboard")
        .arg(tmp.path().join("dpo"))
        .arg(tmp.path().join("free"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("tiny-llama-policy"))
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        table.contains(&format!("[ref {}]", reference.display()))
            && table.contains("[ref-free avg]"),
        "{table}"
    );
}
