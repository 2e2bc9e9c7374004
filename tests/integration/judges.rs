//! `rewardbench gen` end to end against the stand-in judge server: a content-based judge
//! (never position-based), faults injected; v1 pairwise, ratings, both orders, RB2 4-way
//! and Ties ratings, ensembles, resume, seeds, key hygiene.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::util::jsonl;
use crate::util::judge_server::{JudgeServer, Reply, Request};

const KEY: &str = "sk-test-SECRET-9f8e7d";

/// The answer blocks of a pairwise / 4-way prompt, in order.
fn answers(user: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = user;
    while let Some(i) = rest.find("'s Answer]\n") {
        let after = &rest[i + "'s Answer]\n".len()..];
        let end = after.find("\n[The End of Assistant").unwrap_or(after.len());
        out.push(after[..end].to_string());
        rest = &after[end..];
        if let Some(j) = rest.find("'s Answer]") {
            rest = &rest[j + 1..];
        }
    }
    out
}

/// Judges by content: the answer containing GOOD wins; `UNSURE` in the prompt gets an
/// answer with no verdict; `FAIL400` a final 400; `FLAKY` a 429 (then a 500) first.
fn judge(r: &Request) -> Reply {
    let u = &r.user;
    if u.contains("FAIL400") {
        return Reply::status(400);
    }
    if u.contains("FLAKY") && r.attempt == 1 {
        return Reply::rate_limited("0");
    }
    if u.contains("FLAKY") && r.attempt == 2 {
        return Reply::status(500);
    }
    if u.contains("UNSURE") {
        return Reply::text("Both answers have merit; I cannot decide.");
    }
    if u.contains("[Response]") {
        // A rating: GOOD 9, else 3 (the last line, as the prompt asks).
        let resp = u.split("[Response]").nth(1).unwrap_or("");
        return Reply::text(if resp.contains("GOOD") {
            "Fine.\n9"
        } else {
            "Weak.\n3"
        });
    }
    let a = answers(u);
    match a.iter().position(|x| x.contains("GOOD")) {
        Some(i) => Reply::text(format!("Explanation... [[{}]]", (b'A' + i as u8) as char)),
        None => Reply::text("no marker"),
    }
}

fn gen(srv: &JudgeServer, out: &Path, data: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args(["gen", "--model", "gpt-4o-2024-08-06", "--dataset"])
        .arg(data)
        .arg("--output_dir")
        .arg(out)
        .args(["--quiet", "--num_threads", "4"])
        .args(extra)
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", srv.openai_base())
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn json_file(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write_rows(p: &Path, rows: &[Value]) {
    std::fs::write(p, rows.iter().map(|r| format!("{r}\n")).collect::<String>()).unwrap();
}

fn v1_rows() -> Vec<Value> {
    let row = |id: u32, subset: &str, prompt: &str, c: &str, r: &str| json!({"prompt": prompt, "chosen": c, "rejected": r, "subset": subset, "id": id});
    vec![
        row(1, "alpacaeval-easy", "Q1", "GOOD one", "bad one"),
        row(2, "alpacaeval-easy", "Q2", "GOOD two", "bad two"),
        row(3, "alpacaeval-easy", "Q3 FLAKY", "GOOD three", "bad three"),
        row(4, "mt-bench-hard", "Q4", "bad four", "GOOD four"),
        row(5, "mt-bench-hard", "Q5 UNSURE", "x", "y"),
        row(6, "mt-bench-hard", "Q6 FAIL400", "x", "y"),
    ]
}

#[test]
fn v1_pairwise_credits_errors_and_keeps_the_key_secret() {
    let srv = JudgeServer::start(judge);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("v1.jsonl");
    write_rows(&data, &v1_rows());
    let out = tmp.path().join("out");
    let o = gen(&srv, &out, &data, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let lines = jsonl(&out.join("openai/gpt-4o-2024-08-06_outputs.jsonl"));
    let results: Vec<f64> = lines
        .iter()
        .map(|l| l["results"].as_f64().unwrap())
        .collect();
    // Content decides, wherever the answers were placed; no verdict and a final 400 get 0.5.
    assert_eq!(results, [1.0, 1.0, 1.0, 0.0, 0.5, 0.5]);
    assert_eq!(lines[5]["failed_calls"], 1);
    assert_eq!(lines[4]["unreadable_answers"], 1);
    // The flaky prompt was retried after a 429 and a 500, then answered.
    assert_eq!(srv.requests_for("Q3 FLAKY").len(), 3);
    // A final 400 is asked once.
    assert_eq!(srv.requests_for("Q6 FAIL400").len(), 1);
    let s = json_file(&out.join("openai/gpt-4o-2024-08-06.json"));
    assert_eq!(s["model"], "openai/gpt-4o-2024-08-06");
    assert_eq!(s["model_type"], "Generative RM");
    assert_eq!(s["alpacaeval-easy"], 1.0);
    assert_eq!(s["mt-bench-hard"], 1.0 / 3.0);
    assert_eq!(s["errors"]["mt-bench-hard"]["failed_calls"], 1);
    assert_eq!(s["errors"]["mt-bench-hard"]["unreadable_answers"], 1);
    assert_eq!(s["protocol"]["mode"], "pairwise");
    assert_eq!(s["protocol"]["seed"], 0);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("failed") && table.contains("unread"),
        "{table}"
    );
    // The key: only in the Authorization header, nowhere in the files or the output.
    for r in srv.requests() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert!(!r.body.contains(KEY));
    }
    for f in walk(&out) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!text.contains(KEY), "{} holds the key", f.display());
    }
    assert!(!err.contains(KEY) && !table.contains(KEY));

    // Placement is seeded: the same command asks the same prompts.
    let again = tmp.path().join("again");
    let before = srv.requests().len();
    let o = gen(&srv, &again, &data, &[]);
    assert!(o.status.success());
    let first: Vec<String> = srv.requests()[..before]
        .iter()
        .map(|r| r.user.clone())
        .collect();
    let second: Vec<String> = srv.requests()[before..]
        .iter()
        .map(|r| r.user.clone())
        .collect();
    let (mut a, mut b) = (first.clone(), second.clone());
    a.sort();
    a.dedup();
    b.sort();
    b.dedup();
    assert_eq!(a, b, "the same seed places the answers the same way");
    assert_eq!(
        std::fs::read(out.join("openai/gpt-4o-2024-08-06.json")).unwrap(),
        std::fs::read(again.join("openai/gpt-4o-2024-08-06.json")).unwrap()
    );
    // A re-run into the same folder pays for nothing: every answer is in the store.
    let before = srv.requests().len();
    let o = gen(&srv, &out, &data, &[]);
    assert!(o.status.success());
    assert_eq!(srv.requests().len(), before, "answers come from the store");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn v1_ratings_and_both_orders() {
    let srv = JudgeServer::start(judge);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("v1.jsonl");
    write_rows(&data, &v1_rows()[..4]);
    let out = tmp.path().join("ratings");
    let o = gen(&srv, &out, &data, &["--score_w_ratings"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = jsonl(&out.join("openai/gpt-4o-2024-08-06_outputs.jsonl"));
    let r: Vec<f64> = lines
        .iter()
        .map(|l| l["results"].as_f64().unwrap())
        .collect();
    assert_eq!(r, [1.0, 1.0, 1.0, 0.0]);
    assert_eq!(lines[0]["scores"], json!([9.0, 3.0]));
    let both = tmp.path().join("both");
    let o = gen(&srv, &both, &data, &["--both_orders"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = jsonl(&both.join("openai/gpt-4o-2024-08-06_outputs.jsonl"));
    for l in &lines {
        assert_eq!(l["positions"].as_array().unwrap().len(), 2);
        assert_eq!(
            l["consistent"], true,
            "a content-based judge is position-consistent"
        );
    }
    let s = json_file(&both.join("openai/gpt-4o-2024-08-06.json"));
    assert_eq!(s["protocol"]["position_consistency"], 1.0);
}

fn rb2_rows() -> Vec<Value> {
    let mut rows = Vec::new();
    for (k, s) in ["Factuality", "Precise IF", "Math", "Safety", "Focus"]
        .iter()
        .enumerate()
    {
        rows.push(json!({"id": format!("{k}a"), "prompt": format!("P{k}"), "chosen": [format!("GOOD {k}")],
            "rejected": ["r1", "r2", "r3"], "num_correct": 1, "total_completions": 4, "subset": s}));
        rows.push(json!({"id": format!("{k}b"), "prompt": format!("P{k} again"), "chosen": [format!("c {k}")],
            "rejected": ["r1", format!("GOOD r {k}"), "r3"], "num_correct": 1, "total_completions": 4, "subset": s}));
    }
    rows.push(
        json!({"id": "ref:1", "prompt": "T", "chosen": ["GOOD t"], "rejected": ["bad", "worse"],
        "num_correct": 1, "total_completions": 3, "subset": "Ties"}),
    );
    rows.push(
        json!({"id": "tied:1", "prompt": "T2", "chosen": ["GOOD a", "GOOD b"], "rejected": ["bad"],
        "num_correct": 2, "total_completions": 3, "subset": "Ties"}),
    );
    rows
}

#[test]
fn rb2_four_way_and_ties_ratings() {
    let srv = JudgeServer::start(judge);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("rb2.jsonl");
    write_rows(&data, &rb2_rows());
    let out = tmp.path().join("out");
    let o = gen(&srv, &out, &data, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = jsonl(&out.join("openai/gpt-4o-2024-08-06_outputs.jsonl"));
    let r: Vec<Value> = lines.iter().map(|l| l["results"].clone()).collect();
    let mut want = Vec::new();
    for _ in 0..5 {
        want.extend([json!(1.0), json!(0.0)]);
    }
    want.extend([Value::Null, Value::Null]);
    assert_eq!(r, want);
    // Ties rows: ratings in completion order, chosen first.
    assert_eq!(lines[10]["scores"], json!([9.0, 3.0, 3.0]));
    assert_eq!(lines[11]["scores"], json!([9.0, 9.0, 3.0]));
    let s = json_file(&out.join("openai/gpt-4o-2024-08-06.json"));
    for k in ["Factuality", "Precise IF", "Math", "Safety", "Focus"] {
        assert_eq!(s[k], 0.5, "{k}");
    }
    // Ties: ref and tied accurate (margins 6 > 0), cp/cph: margin 6 > spread 0; ms = tanh(inf) = 1.
    let ties = 0.30 + 0.30 + 0.20 + 0.20 + 0.01;
    assert!((s["Ties"].as_f64().unwrap() - ties).abs() < 1e-12, "{s}");
    assert!((s["Score"].as_f64().unwrap() - (2.5 + ties) / 6.0).abs() < 1e-12);
    // Ensembles: three judges, majority; the model name is upstream's PoLL/ name.
    let ens = tmp.path().join("ens");
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args([
            "gen",
            "--model",
            "gpt-4o-2024-08-06",
            "gpt-4o-mini-2024-07-18",
            "gpt-4o-2024-05-13",
            "--dataset",
        ])
        .arg(&data)
        .arg("--output_dir")
        .arg(&ens)
        .args(["--quiet"])
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", srv.openai_base())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = json_file(
        &ens.join("PoLL/gpt-4o-2024-08-06_gpt-4o-mini-2024-07-18_gpt-4o-2024-05-13.json"),
    );
    assert_eq!(s["model_type"], "Generative RM PoLL");
    assert_eq!(s["Math"], 0.5);
}

#[test]
fn missing_key_and_unknown_model_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("v1.jsonl");
    write_rows(&data, &v1_rows()[..1]);
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args(["gen", "--model", "gpt-4o", "--dataset"])
        .arg(&data)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("OPENAI_API_KEY"));
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args(["gen", "--model", "my-local-judge", "--dataset"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--base_url"));
}

#[test]
fn rewardbench_gen_is_the_same_binary_under_upstreams_name() {
    let srv = JudgeServer::start(judge);
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("rewardbench-gen");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rewardbench"), &link).unwrap();
    let data = tmp.path().join("v1.jsonl");
    write_rows(&data, &v1_rows()[..2]);
    let out = tmp.path().join("out");
    let o = Command::new(&link)
        .args(["--model", "gpt-4o-2024-08-06", "--dataset"])
        .arg(&data)
        .arg("--output_dir")
        .arg(&out)
        .args(["--quiet", "--num_gpus", "2", "--do_not_save"])
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", srv.openai_base())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("--num_gpus") && err.contains("no effect"),
        "{err}"
    );
    assert_eq!(
        json_file(&out.join("openai/gpt-4o-2024-08-06.json"))["alpacaeval-easy"],
        1.0
    );
}

#[test]
fn anthropic_judges_speak_the_messages_api() {
    let srv = JudgeServer::start(judge);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("v1.jsonl");
    write_rows(&data, &v1_rows()[..4]);
    let out = tmp.path().join("out");
    let model = "claude-3-5-sonnet-20240620";
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args(["gen", "--model", model, "--dataset"])
        .arg(&data)
        .arg("--output_dir")
        .arg(&out)
        .arg("--quiet")
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", &srv.url)
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = json_file(&out.join(format!("anthropic/{model}.json")));
    assert_eq!(s["alpacaeval-easy"], 1.0);
    assert_eq!(s["mt-bench-hard"], 0.0);
    for r in srv.requests() {
        assert!(r.path.ends_with("/v1/messages"), "{}", r.path);
        assert_eq!(r.header("x-api-key"), Some(KEY));
        // Upstream's Anthropic settings: the MT-Bench system prompt apart, max_tokens 1024.
        assert!(r
            .system
            .as_deref()
            .unwrap_or("")
            .starts_with("Please act as an impartial judge"));
        assert_eq!(r.json["max_tokens"], 1024);
    }
}

/// A judge run killed halfway resumes from its answer store: no finished call is asked
/// again, and the files equal those of a run that was never stopped.
#[test]
fn killed_judge_run_resumes_to_identical_files() {
    use std::time::{Duration, Instant};
    let srv = JudgeServer::start(|r: &Request| Reply::slow(Duration::from_millis(150), judge(r)));
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("v1.jsonl");
    let rows: Vec<Value> = (0..12)
        .map(|i| json!({"prompt": format!("Q{i}"), "chosen": format!("GOOD {i}"), "rejected": format!("bad {i}"), "subset": "alpacaeval-easy", "id": i}))
        .collect();
    write_rows(&data, &rows);
    let (clean, resumed) = (tmp.path().join("clean"), tmp.path().join("resumed"));
    let run = |out: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rewardbench"));
        c.args(["gen", "--model", "gpt-4o-2024-08-06", "--dataset"])
            .arg(&data)
            .arg("--output_dir")
            .arg(out)
            .args(["--quiet", "--num_threads", "1"])
            .env("OPENAI_API_KEY", KEY)
            .env("OPENAI_BASE_URL", srv.openai_base())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    assert!(run(&clean).status().unwrap().success());
    let store = resumed.join("openai/gpt-4o-2024-08-06.judge-cache.jsonl");
    let stored = || std::fs::read_to_string(&store).map_or(0, |s| s.lines().count());
    let mut child = run(&resumed).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = stored();
    assert!((4..12).contains(&kept), "killed after {kept} answers");
    let before = srv.requests().len();
    assert!(run(&resumed).status().unwrap().success());
    assert!(
        srv.requests().len() - before <= 12 - kept + 1,
        "finished calls are not asked again"
    );
    for f in [
        "openai/gpt-4o-2024-08-06.json",
        "openai/gpt-4o-2024-08-06_outputs.jsonl",
    ] {
        assert_eq!(
            std::fs::read(clean.join(f)).unwrap(),
            std::fs::read(resumed.join(f)).unwrap(),
            "{f}"
        );
    }
}

/// RewardBench's own judge code (rewardbench 0.1.4's run_generative.py / run_generative_v2.py,
/// export/judge_reference.py) asked the same content-based judge
/// (export/judge_standin.py, the logic of `judge` above) on fixtures/judge/*_rows.jsonl:
/// every row's result and ratings, every subset, and (RB2) Ties by HEAD's composite and the
/// Score must be what it computed.
#[test]
fn results_equal_rewardbenchs_own_judge_code() {
    let srv = JudgeServer::start(judge);
    let tmp = tempfile::tempdir().unwrap();
    let root = crate::util::root();
    for (setting, data, extra) in [
        ("v1", "v1_rows.jsonl", &[][..]),
        ("v1_ratings", "v1_rows.jsonl", &["--score_w_ratings"][..]),
        ("rb2", "rb2_rows.jsonl", &[][..]),
        ("rb2_ratings", "rb2_rows.jsonl", &["--score_w_ratings"][..]),
    ] {
        let want = json_file(&root.join(format!("fixtures/judge/reference/{setting}.json")));
        let out = tmp.path().join(setting);
        let o = gen(&srv, &out, &root.join("fixtures/judge").join(data), extra);
        assert!(
            o.status.success(),
            "{setting}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let got = jsonl(&out.join("openai/gpt-4o-2024-08-06_outputs.jsonl"));
        let rows = want["rows"].as_array().unwrap();
        assert_eq!(got.len(), rows.len(), "{setting}");
        // Upstream writes RB2's Ties rows last: match rows by id.
        for w in rows {
            let g = got
                .iter()
                .find(|g| g["id"] == w["id"])
                .unwrap_or_else(|| panic!("{setting}: no row {}", w["id"]));
            if w["subset"] == "Ties" {
                assert!(g["results"].is_null(), "{setting} {}", w["id"]);
            } else {
                assert_eq!(
                    g["results"].as_f64(),
                    w["results"].as_f64(),
                    "{setting} {}",
                    w["id"]
                );
            }
            if let Some(scores) = w.get("scores").and_then(Value::as_array) {
                let g: Vec<f64> = g["scores"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect();
                let w: Vec<f64> = scores.iter().map(|x| x.as_f64().unwrap()).collect();
                assert_eq!(g, w, "{setting}: ratings");
            }
        }
        let s = json_file(&out.join("openai/gpt-4o-2024-08-06.json"));
        let subsets = want.get("subsets_head").unwrap_or(&want["subsets"]);
        for (k, v) in subsets.as_object().unwrap() {
            let (a, b) = (s[k].as_f64().unwrap(), v.as_f64().unwrap());
            assert!(
                (a - b).abs() < 1e-12,
                "{setting} {k}: {a} vs RewardBench {b}"
            );
        }
        if let Some(score) = want["Score_head"].as_f64() {
            assert!(
                (s["Score"].as_f64().unwrap() - score).abs() < 1e-12,
                "{setting}: Score"
            );
        }
    }
}

/// Calls whose retries ran out are asked again by the next run; a final 4xx is kept. A judge
/// named by a local path writes inside --output_dir.
#[test]
fn exhausted_calls_are_asked_again_and_paths_stay_in_the_output_folder() {
    let srv = JudgeServer::start(judge);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("v1.jsonl");
    let rows = v1_rows();
    write_rows(&data, &[rows[2].clone(), rows[5].clone()]); // FLAKY, FAIL400
    let out = tmp.path().join("out");
    let run = || {
        let o = gen(&srv, &out, &data, &["--max_attempts", "1"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        jsonl(&out.join("openai/gpt-4o-2024-08-06_outputs.jsonl"))
    };
    // 1st run: a 429 with one attempt allowed; 2nd: a 500; 3rd: answered. The 400: asked once.
    for want in [0.5, 0.5, 1.0] {
        let lines = run();
        assert_eq!(lines[0]["results"].as_f64(), Some(want), "{}", lines[0]);
        assert_eq!(lines[1]["failed_calls"], 1);
    }
    assert_eq!(srv.requests_for("Q3 FLAKY").len(), 3);
    assert_eq!(
        srv.requests_for("Q6 FAIL400").len(),
        1,
        "a final 4xx is not asked again"
    );

    let local = tmp.path().join("local");
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args(["gen", "--model", "/srv/models/my-judge", "--base_url"])
        .arg(srv.openai_base())
        .arg("--dataset")
        .arg(&data)
        .arg("--output_dir")
        .arg(&local)
        .arg("--quiet")
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(local.join("my-judge.json").is_file());
    assert!(local.join("my-judge.judge-cache.jsonl").is_file());
    // The server was asked for the model as named.
    assert!(srv
        .requests()
        .iter()
        .any(|r| r.model == "/srv/models/my-judge"));
}

#[test]
fn judge_shards_merge_into_the_single_run_without_asking_again() {
    let srv = JudgeServer::start(judge);
    let tmp = tempfile::tempdir().unwrap();
    for (name, rows, extra) in [
        ("v1", v1_rows(), &["--both_orders"][..]),
        ("rb2", rb2_rows(), &[][..]),
    ] {
        let data = tmp.path().join(format!("{name}.jsonl"));
        write_rows(&data, &rows);
        let single = tmp.path().join(format!("{name}-single"));
        let sharded = tmp.path().join(format!("{name}-sharded"));
        let o = gen(&srv, &single, &data, extra);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for i in [1, 0] {
            let spec = format!("{i}/2");
            let o = gen(
                &srv,
                &sharded,
                &data,
                &[extra, &["--shard", &spec]].concat(),
            );
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert!(String::from_utf8_lossy(&o.stdout).contains("done"));
        }
        let shard_dir = sharded.join("shards/openai");
        assert!(!sharded.join("openai/gpt-4o-2024-08-06.json").exists());
        let asked = srv.requests().len();
        let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
            .arg("merge")
            .arg(&sharded)
            .env_remove("OPENAI_API_KEY")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(srv.requests().len(), asked, "merge must not call the judge");
        for f in ["gpt-4o-2024-08-06.json", "gpt-4o-2024-08-06_outputs.jsonl"] {
            let a = std::fs::read(single.join("openai").join(f)).unwrap();
            let b = std::fs::read(sharded.join("openai").join(f)).unwrap();
            assert!(
                a == b,
                "{name}: {f} differs between the single run and the merge"
            );
        }
        // Each shard lists its rows, every row once.
        let parts: usize = (0..2)
            .map(|i| {
                jsonl(&shard_dir.join(format!("gpt-4o-2024-08-06.shard-{i}-of-2_outputs.jsonl")))
                    .len()
            })
            .sum();
        assert_eq!(parts, rows.len(), "{name}");
        // A shard's store lost: the merge names what is missing instead of asking.
        std::fs::remove_file(shard_dir.join("gpt-4o-2024-08-06.shard-0-of-2.judge-cache.jsonl"))
            .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
            .arg("merge")
            .arg(&sharded)
            .arg("--output_dir")
            .arg(tmp.path().join(format!("{name}-again")))
            .output()
            .unwrap();
        assert!(!o.status.success());
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("judge-cache.jsonl"), "{e}");
    }
}

/// `--dry_run` plans without asking: rows, distinct calls (both orders double them), what the
/// answer store already holds and the size of the prompts still to send; no request is made
/// and no file or folder is written or changed.
#[test]
fn dry_run_plans_the_calls_and_asks_nothing() {
    let srv = JudgeServer::start(judge);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("v1.jsonl");
    write_rows(&data, &v1_rows());
    let out = tmp.path().join("out");
    let store = out.join("openai/gpt-4o-2024-08-06.judge-cache.jsonl");
    let said = |o: &Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let plan = said(&gen(&srv, &out, &data, &["--dry_run", "--max_rps", "2"]));
    let head = format!(
        "plan: 6 rows, 6 judge calls; 0 already answered in {}, 6 to ask",
        store.display()
    );
    assert!(plan.contains(&head), "{plan}");
    assert!(
        plan.contains("estimate: at least 3 s at --max_rps 2 (6 calls, 4 at a time)"),
        "{plan}"
    );
    assert!(
        plan.contains("dry run: nothing asked, no file written"),
        "{plan}"
    );
    assert!(srv.requests().is_empty(), "a dry run asked the server");
    assert!(!out.exists(), "a dry run made the output folder");
    let both = said(&gen(&srv, &out, &data, &["--dry_run", "--both_orders"]));
    assert!(
        both.contains("plan: 6 rows, 12 judge calls; 0 already answered"),
        "{both}"
    );

    // The planned prompt size is what the run then sends (each distinct prompt once).
    let chars: usize = plan
        .lines()
        .find_map(|l| l.strip_prefix("prompts to send: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no prompt size in {plan}"));
    assert!(gen(&srv, &out, &data, &[]).status.success());
    let mut sent: Vec<(Option<String>, String)> = srv
        .requests()
        .into_iter()
        .map(|r| (r.system, r.user))
        .collect();
    sent.sort();
    sent.dedup();
    let sent_chars: usize = sent
        .iter()
        .map(|(s, u)| u.chars().count() + s.as_ref().map_or(0, |s| s.chars().count()))
        .sum();
    assert_eq!(chars, sent_chars, "planned vs sent prompt characters");

    // After the run: everything answered, nothing to send; the store is left as it was.
    let asked = srv.requests().len();
    let bytes = std::fs::read(&store).unwrap();
    let after = said(&gen(&srv, &out, &data, &["--dry_run"]));
    assert!(after.contains("6 already answered in"), "{after}");
    assert!(
        after.contains(", 0 to ask") && !after.contains("prompts to send"),
        "{after}"
    );
    // --overwrite plans every call again, and a dry run still leaves the store alone.
    let over = said(&gen(&srv, &out, &data, &["--dry_run", "--overwrite"]));
    assert!(
        over.contains("0 already answered in") && over.contains("6 to ask"),
        "{over}"
    );
    assert_eq!(srv.requests().len(), asked, "a dry run asked the server");
    assert_eq!(
        std::fs::read(&store).unwrap(),
        bytes,
        "a dry run changed the store"
    );
}
