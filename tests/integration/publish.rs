//! Publishing to the hub (`--push_results_to_hub`, `--upload_model_metadata_to_hf`,
//! `rewardbench publish`) against the stand-in hub (tests/util/hub_server.rs): the files and
//! card YAML that arrive, repo creation, 401/403/409/412 errors, a dropped connection, dry
//! runs, and the token kept out of every output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use yaml_rust2::{Yaml, YamlLoader};

use crate::util::hub_server::{commit_of, DropMode, HubServer};
use crate::util::judge_server::{JudgeServer, Reply};
use crate::util::root;

const TOKEN: &str = "hf_publishSECRET_5c1d7e";
const CARD: &str =
    "---\nlicense: mit\ntags:\n- reward-model\n---\n# Tiny RM\n\nHand-written text.\n";

/// The tiny Llama reward model as hub model `acme/tiny-rm` (with a card), the core set and
/// RewardBench 2; user `me` (member of `myorg` and `acme`) holds [`TOKEN`].
fn server() -> HubServer {
    let srv = HubServer::start();
    srv.add_user(TOKEN, "me", &["myorg", "acme"]);
    for id in ["allenai/reward-bench", "allenai/reward-bench-2"] {
        srv.add_dir(
            &format!("datasets/{id}"),
            &root().join("fixtures/hub/datasets").join(id),
        );
    }
    let m = root().join("fixtures/models/tiny-llama-rm");
    let mut files: Vec<(&str, PathBuf)> = [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ]
    .iter()
    .map(|f| (*f, m.join(f)))
    .collect();
    files.push(("model.onnx", m.join("model.onnx")));
    srv.add_repo("models/acme/tiny-rm", &files);
    srv.put_file("models/acme/tiny-rm", "README.md", CARD.as_bytes());
    srv
}

/// The binary with `args`, the stand-in hub as HF_ENDPOINT, a fresh HF_HOME, and `token`.
fn command(args: &[&str], srv: &HubServer, home: &Path, token: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rewardbench"));
    c.args(args)
        .env("HF_ENDPOINT", &srv.endpoint)
        .env("HF_HOME", home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN")
        .env_remove("RUST_BACKTRACE");
    if let Some(t) = token {
        c.env("HF_TOKEN", t);
    }
    c
}

fn run(args: &[&str], srv: &HubServer, home: &Path, token: Option<&str>) -> Output {
    command(args, srv, home, token)
        .output()
        .expect("binary runs")
}

/// An evaluation: `args`, then `--threads 1 --quiet`.
fn eval(args: &[&str], srv: &HubServer, home: &Path, token: Option<&str>) -> Output {
    let mut all = args.to_vec();
    all.extend(["--threads", "1", "--quiet"]);
    run(&all, srv, home, token)
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir`, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The token appears in no output, no uploaded file and no request body, and is sent only
/// as the Authorization header (never to the LFS upload URL).
fn assert_token_kept(srv: &HubServer, outputs: &[&Output], repos: &[&str]) {
    for o in outputs {
        let (out, err) = text(o);
        assert!(
            !out.contains(TOKEN) && !err.contains(TOKEN),
            "token in output: {out}{err}"
        );
    }
    for r in repos {
        for (path, bytes) in srv.files(r) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(TOKEN),
                "token in {r}/{path}"
            );
        }
    }
    for req in srv.requests() {
        assert!(
            !String::from_utf8_lossy(&req.body).contains(TOKEN),
            "token in the body of {} {}",
            req.method,
            req.path
        );
        if req.path.starts_with("/lfs-upload/") {
            assert_eq!(req.authorization, None, "no token to the upload URL");
        }
    }
}

/// A card's front matter, parsed with yaml-rust2, and the text after it.
fn front_matter(card: &[u8]) -> (Yaml, String) {
    let t = String::from_utf8(card.to_vec()).unwrap();
    let rest = t.strip_prefix("---\n").expect("a card starting with ---");
    let end = rest.find("\n---\n").expect("a closing ---");
    let docs = YamlLoader::load_from_str(&rest[..end]).unwrap();
    (docs[0].clone(), rest[end + 5..].to_string())
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn f(y: &Yaml) -> f64 {
    y.as_f64().unwrap_or_else(|| panic!("not a float: {y:?}"))
}

/// A core-set run of hub model acme/tiny-rm publishes its files to me/rewardbench-results
/// (created, one commit, large files through LFS) and its scores to the model card: the
/// card keeps its other metadata and text, and model-index holds upstream's results.
#[test]
fn a_run_publishes_its_results_dataset_and_the_model_card() {
    let srv = server();
    srv.lfs_threshold(4096);
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = eval(
        &[
            "--model",
            "acme/tiny-rm",
            "--debug",
            "--output_dir",
            s(out.path()),
            "--push_results_to_hub",
            "--upload_model_metadata_to_hf",
        ],
        &srv,
        home.path(),
        Some(TOKEN),
    );
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let repo = "datasets/me/rewardbench-results";
    assert!(
        stderr.contains("created dataset me/rewardbench-results"),
        "{stderr}"
    );
    let create = srv
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/repos/create")
        .expect("a create request");
    assert_eq!(
        json_of(&create.body),
        json!({"type": "dataset", "name": "rewardbench-results", "organization": "me"})
    );
    // The files, byte for byte, in upstream's layout.
    let files = srv.files(repo);
    let local = tree(out.path());
    assert_eq!(
        files["eval-set/acme/tiny-rm.json"],
        local["acme/tiny-rm.json"]
    );
    assert_eq!(
        files["eval-set-scores/acme/tiny-rm_outputs.jsonl"],
        local["acme/tiny-rm_outputs.jsonl"]
    );
    let readme = String::from_utf8(files["README.md"].clone()).unwrap();
    assert!(
        readme.starts_with("# rewardbench-results: RewardBench CLI Eval. Outputs"),
        "{readme}"
    );
    let summary = json_of(&local["acme/tiny-rm.json"]);
    assert!(readme.contains(&format!("Accuracy: {}", summary["accuracy"])));
    assert!(readme.contains("--push_results_to_hub") && readme.contains("## Package Versions"));
    // One commit on top of the initial one, its parent the head it read.
    let commits = srv.commits(repo);
    assert_eq!(commits.len(), 2, "{commits:?}");
    assert!(commits[1]
        .1
        .starts_with("Upload RewardBench results: acme/tiny-rm [rewardbench "));
    let commit = srv
        .requests()
        .into_iter()
        .find(|r| {
            r.method == "POST" && r.path == "/api/datasets/me/rewardbench-results/commit/main"
        })
        .expect("a commit request");
    let lines: Vec<Value> = commit
        .body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(json_of)
        .collect();
    assert_eq!(lines[0]["key"], "header");
    assert_eq!(
        lines[0]["value"]["parentCommit"],
        commit_of("datasets/me/rewardbench-results")
    );
    assert!(lines.iter().any(|l| l["key"] == "lfsFile"
        && l["value"]["path"] == "eval-set-scores/acme/tiny-rm_outputs.jsonl"));
    assert!(lines
        .iter()
        .any(|l| l["key"] == "file" && l["value"]["encoding"] == "base64"));
    // The model card: metadata and text kept, model-index added.
    let card = srv.files("models/acme/tiny-rm");
    let (yaml, rest) = front_matter(&card["README.md"]);
    assert_eq!(rest, "# Tiny RM\n\nHand-written text.\n");
    assert_eq!(yaml["license"].as_str(), Some("mit"));
    assert_eq!(yaml["tags"][0].as_str(), Some("reward-model"));
    let mi = &yaml["model-index"][0];
    assert_eq!(mi["name"].as_str(), Some("acme/tiny-rm"));
    let results = mi["results"].as_vec().unwrap();
    let first = &results[0];
    assert_eq!(
        first["task"]["type"].as_str(),
        Some("preference_evaluation")
    );
    assert_eq!(
        first["dataset"]["type"].as_str(),
        Some("allenai/reward-bench")
    );
    assert_eq!(first["dataset"]["name"].as_str(), Some("reward-bench"));
    assert_eq!(first["metrics"][0]["type"].as_str(), Some("accuracy"));
    assert_eq!(
        f(&first["metrics"][0]["value"]),
        summary["accuracy"].as_f64().unwrap()
    );
    let by_type = |t: &str| {
        results
            .iter()
            .find(|r| r["dataset"]["type"].as_str() == Some(t))
            .map(|r| f(&r["metrics"][0]["value"]))
    };
    let subsets = summary["extra_results"].as_object().unwrap();
    assert!(!subsets.is_empty());
    for (k, v) in subsets {
        assert_eq!(by_type(k), v.as_f64(), "subset {k}");
    }
    for (k, v) in summary["section_scores"].as_object().unwrap() {
        assert_eq!(by_type(&k.replace(' ', "_")), v.as_f64(), "section {k}");
    }
    assert_eq!(
        results.len(),
        1 + subsets.len() + summary["section_scores"].as_object().unwrap().len()
    );
    let model_commits = srv.commits("models/acme/tiny-rm");
    assert_eq!(model_commits.len(), 2);
    assert!(model_commits[1]
        .1
        .starts_with("Update evaluation results via RewardBench"));
    assert!(
        stdout.contains("overall"),
        "the table still prints: {stdout}"
    );
    assert_token_kept(&srv, &[&o], &[repo, "models/acme/tiny-rm"]);
}

/// `rewardbench v2` publishes RewardBench 2's layout (with run_v2's per-item file) to
/// rewardbench-2-results, and the card gets the Score and the six subsets.
#[test]
fn an_rb2_run_publishes_the_v2_layout_and_its_score() {
    let srv = server();
    srv.put_file("models/acme/tiny-rm", "README.md", b"no front matter\n");
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = eval(
        &[
            "v2",
            "--model",
            "acme/tiny-rm",
            "--output_dir",
            s(out.path()),
            "--push_results_to_hub",
            "--hf_entity",
            "myorg",
            "--upload_model_metadata_to_hf",
        ],
        &srv,
        home.path(),
        Some(TOKEN),
    );
    let (_, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let files = srv.files("datasets/myorg/rewardbench-2-results");
    let local = tree(out.path());
    for (remote, mine) in [
        ("eval-set/acme/tiny-rm.json", "acme/tiny-rm.json"),
        (
            "eval-set-scores/acme/tiny-rm.json",
            "eval-set-scores/acme/tiny-rm.json",
        ),
        (
            "eval-set-scores/acme/tiny-rm_outputs.jsonl",
            "acme/tiny-rm_outputs.jsonl",
        ),
    ] {
        assert_eq!(files[remote], local[mine], "{remote}");
    }
    let summary = json_of(&local["acme/tiny-rm.json"]);
    let (yaml, rest) = front_matter(&srv.files("models/acme/tiny-rm")["README.md"]);
    assert_eq!(rest, "no front matter\n");
    let results = yaml["model-index"][0]["results"].as_vec().unwrap();
    assert_eq!(results.len(), 1, "one dataset entry");
    assert_eq!(
        results[0]["dataset"]["type"].as_str(),
        Some("allenai/reward-bench-2")
    );
    assert_eq!(results[0]["dataset"]["split"].as_str(), Some("test"));
    let metrics = results[0]["metrics"].as_vec().unwrap();
    let names: Vec<&str> = metrics.iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "Score",
            "Factuality",
            "Precise IF",
            "Math",
            "Safety",
            "Focus",
            "Ties"
        ]
    );
    for m in metrics {
        let key = m["name"].as_str().unwrap();
        assert_eq!(f(&m["value"]), summary[key].as_f64().unwrap(), "{key}");
    }
    assert_token_kept(&srv, &[&o], &["datasets/myorg/rewardbench-2-results"]);
}

/// A results folder from a run that did not publish.
fn results(srv: &HubServer, home: &Path) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let o = eval(
        &[
            "--model",
            "acme/tiny-rm",
            "--debug",
            "--output_dir",
            s(out.path()),
        ],
        srv,
        home,
        None,
    );
    assert!(o.status.success(), "{}", text(&o).1);
    out
}

/// 401 (no valid token), 403 (a namespace the token cannot write), 409 and 412 (conflicts):
/// a clear error naming the repo and the status, exit 1, and the local files untouched.
#[test]
fn hub_errors_name_the_repo_and_leave_the_results_alone() {
    let srv = server();
    let home = tempfile::tempdir().unwrap();
    let out = results(&srv, home.path());
    let before = tree(out.path());
    let publish = |extra: &[&str], token: Option<&str>| {
        let mut args = vec!["publish", s(out.path())];
        args.extend(extra);
        run(&args, &srv, home.path(), token)
    };
    // No token at all: refused before anything is sent.
    srv.clear_requests();
    let o = publish(&[], None);
    let err = text(&o).1;
    assert!(!o.status.success() && err.contains("HF_TOKEN"), "{err}");
    assert!(srv.requests().is_empty());
    // An unknown token: 401.
    let o = publish(
        &["--hub_results_repo", "me/results"],
        Some("hf_not_a_token"),
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("dataset me/results") && err.contains("HTTP 401") && err.contains("HF_TOKEN"),
        "{err}"
    );
    assert!(!err.contains("hf_not_a_token"), "{err}");
    // Someone else's namespace: 403.
    let o = publish(&["--hub_results_repo", "otherorg/results"], Some(TOKEN));
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("dataset otherorg/results") && err.contains("HTTP 403"),
        "{err}"
    );
    assert!(!srv.has_repo("datasets/otherorg/results"));
    // Conflicts: 409 and the hub's 412 for a stale parent commit.
    for status in [409u16, 412] {
        let srv = server();
        srv.commit_status(status);
        let o = run(
            &["publish", s(out.path()), "--hf_entity", "me"],
            &srv,
            home.path(),
            Some(TOKEN),
        );
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("dataset me/rewardbench-results")
                && err.contains(&format!("HTTP {status}"))
                && err.contains("publish again"),
            "{err}"
        );
        assert_eq!(srv.commits("datasets/me/rewardbench-results").len(), 1);
        assert_token_kept(&srv, &[&o], &[]);
    }
    // A run whose upload fails keeps its results and says so.
    let out2 = tempfile::tempdir().unwrap();
    let o = eval(
        &[
            "--model",
            "acme/tiny-rm",
            "--debug",
            "--output_dir",
            s(out2.path()),
            "--push_results_to_hub",
            "--hub_results_repo",
            "otherorg/x",
        ],
        &srv,
        home.path(),
        Some(TOKEN),
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("results are safe in")
            && err.contains("HTTP 403")
            && err.contains("otherorg/x"),
        "{err}"
    );
    let after_run = tree(out2.path());
    assert_eq!(
        after_run["acme/tiny-rm.json"], before["acme/tiny-rm.json"],
        "the summary is written as without publishing"
    );
    assert_eq!(
        tree(out.path()),
        before,
        "publish never touches the local files"
    );
    assert_token_kept(&srv, &[&o], &[]);
}

/// The connection drops right after the hub applied the commit: the retry finds the commit
/// and makes no second one. Dropped before applying: it is sent again, once.
#[test]
fn a_dropped_connection_is_retried_without_a_second_commit() {
    let srv = server();
    let home = tempfile::tempdir().unwrap();
    let out = results(&srv, home.path());
    let commit_posts = |srv: &HubServer, repo: &str| {
        srv.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == format!("/api/datasets/{repo}/commit/main"))
            .count()
    };
    srv.drop_next_commit(DropMode::AfterApply);
    let o = run(
        &["publish", s(out.path()), "--hub_results_repo", "me/after"],
        &srv,
        home.path(),
        Some(TOKEN),
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let commits = srv.commits("datasets/me/after");
    assert_eq!(commits.len(), 2, "exactly one commit: {commits:?}");
    assert_eq!(commit_posts(&srv, "me/after"), 1, "not sent again");
    assert!(text(&o).1.contains(&format!("commit {}", commits[1].0)));

    srv.drop_next_commit(DropMode::BeforeApply);
    let o = run(
        &["publish", s(out.path()), "--hub_results_repo", "me/before"],
        &srv,
        home.path(),
        Some(TOKEN),
    );
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(srv.commits("datasets/me/before").len(), 2);
    assert_eq!(commit_posts(&srv, "me/before"), 2, "sent again once");
    let data = |repo: &str| -> Vec<(String, Vec<u8>)> {
        srv.files(repo)
            .into_iter()
            .filter(|(p, _)| p != "README.md")
            .collect()
    };
    assert!(
        data("datasets/me/before") == data("datasets/me/after"),
        "the same files either way"
    );
    assert_token_kept(&srv, &[&o], &["datasets/me/before"]);
}

/// `--hub_dry_run` needs no token and sends nothing: it prints each repo, path and size,
/// and the card YAML.
#[test]
fn a_dry_run_sends_nothing() {
    let srv = server();
    let home = tempfile::tempdir().unwrap();
    let out = results(&srv, home.path());
    srv.clear_requests();
    let o = run(
        &[
            "publish",
            s(out.path()),
            "--upload_model_metadata_to_hf",
            "--hub_dry_run",
        ],
        &srv,
        home.path(),
        None,
    );
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(srv.requests().is_empty(), "{:?}", srv.requests());
    let size = std::fs::metadata(out.path().join("acme/tiny-rm.json"))
        .unwrap()
        .len();
    assert!(
        stdout.contains("dataset <token's user>/rewardbench-results")
            && stdout.contains(&format!("eval-set/acme/tiny-rm.json  {size} bytes"))
            && stdout.contains("eval-set-scores/acme/tiny-rm_outputs.jsonl")
            && stdout.contains("README.md"),
        "{stdout}"
    );
    let yaml_start = stdout.find("  model-index:").expect("the card YAML");
    let yaml: String = stdout[yaml_start..]
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let y = &YamlLoader::load_from_str(&yaml).unwrap()[0];
    assert_eq!(
        y["model-index"][0]["results"][0]["dataset"]["type"].as_str(),
        Some("allenai/reward-bench")
    );
    // A run with --hub_dry_run: the same plan after the run, still nothing sent.
    let local = tempfile::tempdir().unwrap();
    let data = root().join("fixtures/data/llmbar.jsonl");
    let model = root().join("fixtures/models/tiny-llama-rm");
    srv.clear_requests();
    let o = eval(
        &[
            "--model",
            s(&model),
            "--dataset",
            s(&data),
            "--debug",
            "--output_dir",
            s(local.path()),
            "--push_results_to_hub",
            "--hub_results_repo",
            "myorg/evals",
            "--hub_dry_run",
        ],
        &srv,
        home.path(),
        None,
    );
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(srv.requests().is_empty());
    assert!(
        stdout.contains("dataset myorg/evals")
            && stdout.contains("custom-sets/llmbar/tiny-llama-rm.json")
            && stdout.contains("custom-sets-scores/llmbar/tiny-llama-rm_outputs.jsonl"),
        "{stdout}"
    );
}

/// `publish` on a folder of two runs makes one commit; publishing it again adds none. A
/// model card for a run of a local model folder is refused before anything is sent.
#[test]
fn publish_sends_a_folder_once() {
    let srv = server();
    let home = tempfile::tempdir().unwrap();
    let out = results(&srv, home.path());
    let model = root().join("fixtures/models/tiny-llama-rm");
    let o = eval(
        &[
            "--model",
            s(&model),
            "--debug",
            "--output_dir",
            s(out.path()),
        ],
        &srv,
        home.path(),
        None,
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let o = run(&["publish", s(out.path())], &srv, home.path(), Some(TOKEN));
    assert!(o.status.success(), "{}", text(&o).1);
    let repo = "datasets/me/rewardbench-results";
    assert_eq!(srv.commits(repo).len(), 2);
    let files = srv.files(repo);
    for p in [
        "eval-set/acme/tiny-rm.json",
        "eval-set/tiny-llama-rm.json",
        "eval-set-scores/acme/tiny-rm_outputs.jsonl",
        "eval-set-scores/tiny-llama-rm_outputs.jsonl",
        "README.md",
    ] {
        assert!(files.contains_key(p), "{p}: {:?}", files.keys());
    }
    let o = run(&["publish", s(out.path())], &srv, home.path(), Some(TOKEN));
    let err = text(&o).1;
    assert!(
        o.status.success() && err.contains("already holds these files"),
        "{err}"
    );
    assert_eq!(srv.commits(repo).len(), 2, "no second commit");
    // One summary file: only that run.
    let o = run(
        &[
            "publish",
            s(&out.path().join("acme/tiny-rm.json")),
            "--hf_name",
            "one",
        ],
        &srv,
        home.path(),
        Some(TOKEN),
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let one = srv.files("datasets/me/one");
    assert!(one.contains_key("eval-set/acme/tiny-rm.json"));
    assert!(!one.contains_key("eval-set/tiny-llama-rm.json"));
    srv.clear_requests();
    let o = run(
        &["publish", s(out.path()), "--upload_model_metadata_to_hf"],
        &srv,
        home.path(),
        Some(TOKEN),
    );
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("tiny-llama-rm.json") && err.contains("not a hub repo id"),
        "{err}"
    );
    assert!(srv.requests().is_empty());
    assert_token_kept(&srv, &[&o], &[repo]);
}

/// `rewardbench gen --push_results_to_hub`: the judge's summary and outputs arrive.
#[test]
fn a_judge_run_publishes_its_results() {
    let srv = server();
    let judge = JudgeServer::start(|_| Reply::text("Explanation... [[A]]"));
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let data = out.path().join("pairs.jsonl");
    let rows = [
        json!({"prompt": "Q1", "chosen": "a", "rejected": "b", "subset": "alpacaeval-easy", "id": 1}),
        json!({"prompt": "Q2", "chosen": "c", "rejected": "d", "subset": "alpacaeval-easy", "id": 2}),
    ];
    std::fs::write(
        &data,
        rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let results = out.path().join("results");
    let o = command(
        &[
            "gen",
            "--model",
            "gpt-4o-2024-08-06",
            "--dataset",
            s(&data),
            "--output_dir",
            s(&results),
            "--quiet",
            "--push_results_to_hub",
        ],
        &srv,
        home.path(),
        Some(TOKEN),
    )
    .env("OPENAI_API_KEY", "sk-judge")
    .env("OPENAI_BASE_URL", judge.openai_base())
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let files = srv.files("datasets/me/rewardbench-results");
    let local = tree(&results);
    assert_eq!(
        files["custom-sets/pairs/openai/gpt-4o-2024-08-06.json"],
        local["openai/gpt-4o-2024-08-06.json"]
    );
    assert_eq!(
        files["custom-sets-scores/pairs/openai/gpt-4o-2024-08-06_outputs.jsonl"],
        local["openai/gpt-4o-2024-08-06_outputs.jsonl"]
    );
    assert_token_kept(&srv, &[&o], &["datasets/me/rewardbench-results"]);
}
