//! Datasets through the stand-in hub and from local files: the core set, the pref sets,
//! split inference, instruction data, format parity; end-to-end runs; the leaderboard.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::hub_server::HubServer;
use crate::util::{rewardbench_command, root, stderr};
use rewardbench::data::{self, Dataset, DatasetSpec, Loaded, Prompt, Source};
use rewardbench::hub::{Hub, HubConfig};
use serde_json::Value;

fn server() -> HubServer {
    let srv = HubServer::start();
    for id in [
        "allenai/reward-bench",
        "allenai/reward-bench-2",
        "allenai/pref-test-sets",
        "acme/prefs-noreadme",
        "acme/instructions",
    ] {
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
    files.push(("onnx/model.onnx", m.join("model.onnx")));
    srv.add_repo("models/acme/tiny-llama-rm", &files);
    srv
}

fn load(srv: &HubServer, cache: &Path, name: &str, split: Option<&str>) -> Loaded {
    let hub = Hub::new(HubConfig::new(&srv.endpoint, cache)).unwrap();
    let local = data::resolve(&DatasetSpec::parse(name, split), &hub).unwrap();
    assert!(matches!(local.source, Source::Local(_)));
    data::load(&local, false).unwrap()
}

fn pairs(l: Loaded) -> Dataset {
    match l {
        Loaded::Preference(d) => d,
        Loaded::Instructions(_) => panic!("expected preference data"),
    }
}

/// The comparable content of a row.
fn key(p: &data::Pair) -> (String, String, String, String) {
    (
        format!("{:?}", p.prompt),
        p.chosen[0].clone(),
        p.rejected[0].clone(),
        serde_json::to_string(&p.metadata).unwrap(),
    )
}

#[test]
fn core_set_parquet_equals_the_jsonl_rows() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let d = pairs(load(&srv, cache.path(), "allenai/reward-bench", None));
    let jsonl = Dataset::load(&root().join("fixtures/data/llmbar.jsonl")).unwrap();
    assert_eq!(d.rows.len(), 40, "split `filtered` by default");
    assert_eq!(
        d.rows.iter().map(key).collect::<Vec<_>>(),
        jsonl.rows.iter().map(key).collect::<Vec<_>>()
    );
    assert!(d.rows[0]
        .place
        .contains("data/filtered-00000-of-00001.parquet row 1"));
    let raw = pairs(load(
        &srv,
        cache.path(),
        "allenai/reward-bench",
        Some("raw"),
    ));
    assert_eq!(raw.rows.len(), 5);
}

#[test]
fn pref_sets_follow_the_reference_loader() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let d = pairs(load(&srv, cache.path(), data::PREF_SETS, None));
    let mut order: Vec<&str> = Vec::new();
    for r in &d.rows {
        let s = r.subset().unwrap();
        if order.last() != Some(&s) {
            order.push(s);
        }
    }
    assert_eq!(
        order,
        [
            "anthropic_helpful",
            "summarize",
            "shp",
            "anthropic_hhh",
            "mtbench_gpt4"
        ],
        "README order, pku_better dropped"
    );
    assert_eq!(d.rows.len(), 6 + 4 + 5 + 6 + 4);
    let hhh: Vec<_> = d
        .rows
        .iter()
        .filter(|r| r.subset() == Some("anthropic_hhh"))
        .collect();
    assert_eq!(hhh[1].metadata["subsubset"], "helpful");
    let multi = d
        .rows
        .iter()
        .find(|r| matches!(&r.prompt, Prompt::Messages(m) if m.len() == 3))
        .expect("a multi-turn prompt");
    assert!(matches!(&multi.prompt, Prompt::Messages(m) if m[1].role == "assistant"));
    // Asked for explicitly, a pku split is read.
    let pku = pairs(load(
        &srv,
        cache.path(),
        data::PREF_SETS,
        Some("pku_better"),
    ));
    assert_eq!(pku.rows.len(), 3);
    assert!(pku.rows.iter().all(|r| r.subset() == Some("pku_better")));
}

#[test]
fn splits_from_file_names_and_unknown_splits() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let all = pairs(load(&srv, cache.path(), "acme/prefs-noreadme", None));
    let jsonl = Dataset::load(&root().join("fixtures/data/llmbar.jsonl")).unwrap();
    // train (rows 36..40) before test (rows 30..36), as `datasets` orders them.
    let want: Vec<_> = jsonl.rows[36..40]
        .iter()
        .chain(&jsonl.rows[30..36])
        .map(key)
        .collect();
    assert_eq!(all.rows.iter().map(key).collect::<Vec<_>>(), want);
    let test = pairs(load(
        &srv,
        cache.path(),
        "acme/prefs-noreadme",
        Some("test"),
    ));
    assert_eq!(test.rows.len(), 6);
    let hub = Hub::new(HubConfig::new(&srv.endpoint, cache.path())).unwrap();
    let e = data::resolve(
        &DatasetSpec::parse("acme/prefs-noreadme", Some("dev")),
        &hub,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("split `dev` not found") && e.contains("train, test"),
        "{e}"
    );
    let e = data::resolve(&DatasetSpec::parse("acme/missing", None), &hub)
        .unwrap_err()
        .to_string();
    assert!(e.contains("acme/missing") && e.contains("404"), "{e}");
}

#[test]
fn instruction_data_is_detected() {
    let srv = server();
    let cache = tempfile::tempdir().unwrap();
    let Loaded::Instructions(set) = load(&srv, cache.path(), "acme/instructions", None) else {
        panic!("expected instruction data");
    };
    assert_eq!(set.rows.len(), 6);
    assert_eq!(set.rows[0].messages.len(), 2);
    assert_eq!(set.rows[0].prompt, set.rows[0].messages[0].content);
    let e = Dataset::open(&DatasetSpec::parse(
        root()
            .join("fixtures/hub/datasets/acme/instructions")
            .to_str()
            .unwrap(),
        None,
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("instruction data"), "{e}");
}

#[test]
fn local_formats_give_identical_rows() {
    let jsonl = Dataset::load(&root().join("fixtures/data/llmbar.jsonl")).unwrap();
    let want: Vec<_> = jsonl.rows.iter().map(key).collect();
    let tmp = tempfile::tempdir().unwrap();
    // JSON array.
    let text = std::fs::read_to_string(root().join("fixtures/data/llmbar.jsonl")).unwrap();
    let values: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let arr = tmp.path().join("rows.json");
    std::fs::write(&arr, serde_json::to_string(&values).unwrap()).unwrap();
    // CSV (every column is text or integer here).
    let csv_path = tmp.path().join("rows.csv");
    let mut w = csv::Writer::from_path(&csv_path).unwrap();
    let cols: Vec<String> = values[0].as_object().unwrap().keys().cloned().collect();
    w.write_record(&cols).unwrap();
    for v in &values {
        w.write_record(cols.iter().map(|c| match &v[c] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }))
        .unwrap();
    }
    w.flush().unwrap();
    // Parquet file alone, and a folder.
    let pq = root()
        .join("fixtures/hub/datasets/allenai/reward-bench/data/filtered-00000-of-00001.parquet");
    for p in [arr, csv_path, pq] {
        let d = Dataset::load(&p).unwrap();
        assert_eq!(
            d.rows.iter().map(key).collect::<Vec<_>>(),
            want,
            "{}",
            p.display()
        );
    }
    let folder = DatasetSpec::parse(
        root()
            .join("fixtures/hub/datasets/allenai/reward-bench")
            .to_str()
            .unwrap(),
        Some("filtered"),
    );
    let d = Dataset::open(&folder).unwrap();
    assert_eq!(d.rows.iter().map(key).collect::<Vec<_>>(), want);
    assert_eq!(folder.split.as_deref(), Some("filtered"));
}

// ---- End to end, through the binary.

fn rewardbench(args: &[&str], srv: &HubServer, hf_home: &Path) -> Output {
    rewardbench_command(args)
        .env("HF_ENDPOINT", &srv.endpoint)
        .env("HF_HOME", hf_home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .expect("binary runs")
}

fn json(p: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

/// `rewardbench v2` with no --dataset reads allenai/reward-bench-2 (split test) from the hub,
/// parquet with list columns, and records the commit it used; the numbers equal a run on
/// the same rows from a local JSONL file.
#[test]
fn rb2_from_the_hub_records_its_revision() {
    let srv = server();
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = rewardbench(
        &[
            "v2",
            "--model",
            "acme/tiny-llama-rm",
            "--output_dir",
            out.path().to_str().unwrap(),
        ],
        &srv,
        home.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&out.path().join("acme/tiny-llama-rm.json"));
    assert_eq!(s["dataset"]["name"], "allenai/reward-bench-2");
    assert_eq!(s["dataset"]["split"], "test");
    assert_eq!(
        s["dataset"]["revision"],
        crate::util::hub_server::commit_of("datasets/allenai/reward-bench-2")
    );
    assert_eq!(s["dataset"]["prompts"], 35);
    assert!(s["Score"].as_f64().is_some(), "{s}");
    // The same rows from a local file: the same numbers.
    let pq = root()
        .join("fixtures/hub/datasets/allenai/reward-bench-2/data/test-00000-of-00001.parquet");
    let rows = Dataset::load(&pq).unwrap();
    let text = std::fs::read_to_string(root().join("fixtures/data/rb2.jsonl")).unwrap();
    let local: Vec<&str> = {
        let all: Vec<(&str, Value)> = text
            .lines()
            .map(|l| (l, serde_json::from_str(l).unwrap()))
            .collect();
        // make_rb2_hub_fixture.py's rows: 4 of each subset, then every Ties row.
        let subsets = [
            "Factuality",
            "Precise IF",
            "Math",
            "Safety",
            "Focus",
            "Ties",
        ];
        subsets
            .iter()
            .flat_map(|s| {
                let n = if *s == "Ties" { usize::MAX } else { 4 };
                all.iter().filter(move |(_, v)| v["subset"] == *s).take(n)
            })
            .map(|(l, _)| *l)
            .collect()
    };
    assert_eq!(rows.rows.len(), local.len());
    let file = out.path().join("local.jsonl");
    std::fs::write(&file, local.join("\n") + "\n").unwrap();
    let local_out = tempfile::tempdir().unwrap();
    let m = root().join("fixtures/models/tiny-llama-rm");
    let o = rewardbench(
        &[
            "v2",
            "--model",
            m.to_str().unwrap(),
            "--dataset",
            file.to_str().unwrap(),
            "--output_dir",
            local_out.path().to_str().unwrap(),
        ],
        &srv,
        home.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let l = json(&local_out.path().join("tiny-llama-rm.json"));
    for k in [
        "Factuality",
        "Precise IF",
        "Math",
        "Safety",
        "Focus",
        "Ties",
        "Score",
        "confidence_intervals",
    ] {
        assert_eq!(s[k], l[k], "{k}");
    }
    assert!(l["dataset"]["revision"].is_null());
}

#[test]
fn core_set_end_to_end_matches_the_local_run() {
    let srv = server();
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = rewardbench(
        &[
            "--model",
            "acme/tiny-llama-rm",
            "--output_dir",
            out.path().to_str().unwrap(),
        ],
        &srv,
        home.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(home
        .path()
        .join("hub/datasets--allenai--reward-bench/refs/main")
        .is_file());
    let hub_summary = json(&out.path().join("acme/tiny-llama-rm.json"));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("[section] Chat Hard") && table.contains("95% CI"),
        "{table}"
    );

    let local_out = tempfile::tempdir().unwrap();
    let o = rewardbench(
        &[
            "--model",
            root()
                .join("fixtures/models/tiny-llama-rm")
                .to_str()
                .unwrap(),
            "--dataset",
            root().join("fixtures/data/llmbar.jsonl").to_str().unwrap(),
            "--output_dir",
            local_out.path().to_str().unwrap(),
        ],
        &srv,
        home.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let local = json(&local_out.path().join("tiny-llama-rm.json"));
    for k in [
        "accuracy",
        "num_prompts",
        "extra_results",
        "section_scores",
        "confidence_intervals",
    ] {
        assert_eq!(hub_summary[k], local[k], "{k}");
    }
    assert_eq!(hub_summary["extra_results"].as_object().unwrap().len(), 5);
    assert_eq!(hub_summary["model"], "acme/tiny-llama-rm");
    assert_eq!(hub_summary["dataset"], "allenai/reward-bench");
    // Only Chat Hard is present: no leaderboard Score.
    assert!(hub_summary.get("leaderboard").is_none());
    let ci = &hub_summary["confidence_intervals"];
    assert_eq!(ci["resamples"], 1000);
    let (lo, hi) = (
        ci["sections"]["Chat Hard"][0].as_f64().unwrap(),
        ci["sections"]["Chat Hard"][1].as_f64().unwrap(),
    );
    let v = hub_summary["section_scores"]["Chat Hard"].as_f64().unwrap();
    assert!(lo <= v && v <= hi && lo < hi, "{lo} {v} {hi}");

    // Offline, from the cache alone.
    let off = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args([
            "--model",
            "acme/tiny-llama-rm",
            "--output_dir",
            off.path().to_str().unwrap(),
        ])
        .args(["--threads", "1", "--quiet", "--debug"])
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env("HF_HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_HUB_CACHE")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        json(&off.path().join("acme/tiny-llama-rm.json"))["num_prompts"],
        10
    );
}

#[test]
fn pref_sets_end_to_end() {
    let srv = server();
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = rewardbench(
        &[
            "--model",
            "acme/tiny-llama-rm",
            "--pref_sets",
            "--output_dir",
            out.path().to_str().unwrap(),
        ],
        &srv,
        home.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&out.path().join("acme/tiny-llama-rm.json"));
    let subsets: Vec<&String> = s["extra_results"].as_object().unwrap().keys().collect();
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
    assert_eq!(s["num_prompts"], 25);
    let acc = s["extra_results"].as_object().unwrap();
    let prior = ["anthropic_helpful", "anthropic_hhh", "shp", "summarize"]
        .iter()
        .map(|k| acc[*k].as_f64().unwrap())
        .sum::<f64>()
        / 4.0;
    assert!((s["leaderboard"]["Prior Sets"].as_f64().unwrap() - prior).abs() < 1e-12);
    assert!(s.get("section_scores").is_none());
}

#[test]
fn instruction_data_end_to_end() {
    let srv = server();
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = rewardbench(
        &[
            "--model",
            "acme/tiny-llama-rm",
            "--dataset",
            "acme/instructions",
            "--split",
            "test",
            "--save_all",
            "--output_dir",
            out.path().to_str().unwrap(),
        ],
        &srv,
        home.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> =
        std::fs::read_to_string(out.path().join("acme/tiny-llama-rm_outputs.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(lines.len(), 6);
    let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["prompt", "results", "text", "messages", "id", "sample_hash"]
    );
    assert!(lines.iter().all(|l| l["results"].is_f64()));
    assert!(
        !out.path().join("acme/tiny-llama-rm.json").exists(),
        "no accuracy summary"
    );
    assert!(out.path().join("acme/tiny-llama-rm_scores.csv").is_file());
    assert!(out.path().join("acme/tiny-llama-rm_all.jsonl").is_file());
}

// ---- Leaderboard.

#[test]
fn published_rm_r1_sections_are_reproduced() {
    let dir = root().join("fixtures/published-scores/rm-r1");
    let (entries, _) = rewardbench::leaderboard::collect(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(entries.len(), 2);
    for e in &entries {
        let name = e.files[0].parent().unwrap();
        // RM-R1's files: per-subset accuracies in each_small_section_score.json, the
        // published sections in main_score.json.
        let published = json(&name.join("main_score.json"));
        for (section, v) in e.sections() {
            assert_eq!(
                published[section].as_f64().unwrap(),
                v,
                "{} {section}",
                e.model
            );
        }
        let avg = published["avg_Result_each_section"].as_f64().unwrap();
        assert!((e.score().unwrap() - avg).abs() < 1e-15, "{}", e.model);
    }
    // Sorted by Score: the Qwen2.5 model (0.9137) before the distilled one (0.9085).
    assert!(entries[0].model.contains("qwen2.5"));
}

#[test]
fn leaderboard_cli_writes_sorted_csv_with_gaps() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    // A model with only two subsets (no Score) and one with all four sections.
    std::fs::write(
        a.join("partial.json"),
        r#"{"model": "x/partial", "model_type": "Seq. Classifier", "alpacaeval-easy": 1.0, "llmbar-natural": 0.5}"#,
    )
    .unwrap();
    std::fs::write(a.join("notes.json"), r#"{"Chat": 0.5}"#).unwrap();
    let board = tmp.path().join("board.csv");
    let o = Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .args(["leaderboard", a.to_str().unwrap()])
        .arg(root().join("fixtures/published-scores/rm-r1"))
        .args(["--output", board.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.starts_with("| # | model |") && md.lines().count() == 5,
        "{md}"
    );
    let mut r = csv::Reader::from_path(&board).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        &header[..5],
        [
            "model",
            "model_type",
            "Score",
            "Score 95% low",
            "Score 95% high"
        ]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[2][0], "x/partial", "no Score: last");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[2][col("Score")], "");
    assert_eq!(&rows[2][col("Chat")], "1");
    assert_eq!(&rows[2][col("Chat Hard")], "0.5");
    assert_eq!(&rows[2][col("hep-go")], "");
    let s0: f64 = rows[0][col("Score")].parse().unwrap();
    let s1: f64 = rows[1][col("Score")].parse().unwrap();
    assert!(s0 > s1);
    assert_eq!(&rows[0][col("model_type")], "Generative RM");
}
