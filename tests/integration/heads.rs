//! Custom reward heads against PyTorch: the tiny ArmoRM- and GRM-style fixtures
//! (`export_rm.py --head armo|grm`, by `export/make_head_fixtures.py`) scored with the settings
//! their registry entries give (found by config.json's `_name_or_path`, no flags), against the
//! models' own forward passes in PyTorch (`head-reference.json`): each text alone (sorted
//! batching, batch sizes 1 and 8) and RewardBench's left-padded batches of 8 (reference
//! batching), within 1e-4, token ids and masks identical (no double-BOS mask: these pipelines
//! do not apply it), verdicts identical.

use std::path::{Path, PathBuf};

use rewardbench::batch::Batching;
use rewardbench::config::RunConfig;
use rewardbench::eval::{self, Evaluation};
use rewardbench::registry::{self, Bench, Given, Registry};
use rewardbench::scorer::pooling::Pooling;
use serde_json::Value;

use crate::util::{ints, rewardbench, root, stderr};

const TOL: f64 = 1e-4;

fn model(name: &str) -> PathBuf {
    root().join(format!("fixtures/models/tiny-{name}-rm"))
}

fn data() -> PathBuf {
    root().join("fixtures/data/heads.jsonl")
}

fn reference(m: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(m.join("head-reference.json")).unwrap()).unwrap()
}

/// `RunConfig::local` with the model's registry settings applied, as the CLI applies them.
fn config(m: &Path, batching: Batching, batch_size: usize) -> RunConfig {
    let mut c = RunConfig::local(m, data());
    c.batch.batching = batching;
    c.batch.batch_size = batch_size;
    c.device.threads = 1;
    let reg = Registry::built_in().unwrap();
    let mut p = registry::profile(&reg, &m.display().to_string(), m, Bench::V1)
        .unwrap()
        .expect("the fixture's config.json names a registry entry");
    p.apply(&mut c, Given::default(), Bench::V1).unwrap();
    c
}

/// Every row's scores against `key` of the reference (`score`: alone, `left8`: RewardBench's
/// batches), the token ids and mask, and the verdict where PyTorch's margin is clear.
fn check(ev: &Evaluation, refs: &Value, key: &str, what: &str) {
    let rows = refs["rows"].as_array().unwrap();
    assert_eq!(ev.rows.len(), rows.len(), "{what}: rows");
    for (i, (row, r)) in ev.rows.iter().zip(rows).enumerate() {
        for (k, side) in ["chosen", "rejected"].into_iter().enumerate() {
            let s = &ev.prepared.seqs[ev.prepared.seq_of[i][k]];
            assert_eq!(
                s.ids,
                ints(&r[side]["input_ids"]),
                "{what} row {i} {side} ids"
            );
            assert_eq!(
                s.mask,
                ints(&r[side]["attention_mask"]),
                "{what} row {i} {side} mask"
            );
        }
        let (c, j) = (
            r["chosen"][key].as_f64().unwrap(),
            r["rejected"][key].as_f64().unwrap(),
        );
        let (oc, oj) = (row.score_chosen(), row.score_rejected());
        assert_eq!((oc.len(), oj.len()), (1, 1), "{what} row {i}");
        assert!(
            (f64::from(oc[0]) - c).abs() <= TOL,
            "{what} row {i} chosen: {} vs PyTorch {c}",
            oc[0]
        );
        assert!(
            (f64::from(oj[0]) - j).abs() <= TOL,
            "{what} row {i} rejected: {} vs PyTorch {j}",
            oj[0]
        );
        if (c - j).abs() > TOL || (c == j && oc == oj) {
            assert_eq!(row.correct, c > j, "{what} row {i}: verdict");
        }
    }
}

#[test]
fn armo_and_grm_meet_pytorch_through_their_registry_entries() {
    for name in ["armo", "grm"] {
        let m = model(name);
        let refs = reference(&m);
        for bs in [1, 8] {
            let cfg = config(&m, Batching::Sorted, bs);
            let ev = eval::evaluate(&cfg).unwrap();
            check(
                &ev,
                &refs,
                "score",
                &format!("{name} alone, batch size {bs}"),
            );
        }
        let ev = eval::evaluate(&config(&m, Batching::Reference, 8)).unwrap();
        check(
            &ev,
            &refs,
            "left8",
            &format!("{name} RewardBench's batches"),
        );
    }
    // what the entries gave
    let armo = config(&model("armo"), Batching::Sorted, 8);
    assert_eq!(armo.head.pooling, Some(Pooling::FirstPadMinusOne));
    assert_eq!(armo.head.output.as_deref(), Some("score"));
    assert!(!armo.tokenize.double_bos_mask);
    let grm = config(&model("grm"), Batching::Sorted, 8);
    assert_eq!(grm.head.pooling, Some(Pooling::Grm));
    assert_eq!(grm.head.output, None);
}

/// ArmoRM's objectives (`rewards`, before the transform matrix) at the registry's position.
#[test]
fn armo_objectives_by_column() {
    let m = model("armo");
    let refs = reference(&m);
    let mut cfg = config(&m, Batching::Sorted, 8);
    cfg.head.output = Some("rewards".into());
    for k in [0usize, 3] {
        cfg.head.column = Some(k);
        let ev = eval::evaluate(&cfg).unwrap();
        for (i, (row, r)) in ev
            .rows
            .iter()
            .zip(refs["rows"].as_array().unwrap())
            .enumerate()
        {
            for (got, side) in [
                (row.score_chosen(), "chosen"),
                (row.score_rejected(), "rejected"),
            ] {
                let want = r[side]["rewards"][k].as_f64().unwrap();
                assert!(
                    (f64::from(got[0]) - want).abs() <= TOL,
                    "row {i} {side} objective {k}"
                );
            }
        }
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    let o = rewardbench(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    o
}

fn json_file(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The CLI with no flags: the summary records upstream's model_type and where each setting
/// came from; the bf16 note is said; token rewards hold PyTorch's head at every position.
#[test]
fn the_cli_records_the_entry_and_writes_token_rewards() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, entry, model_type) in [
        ("armo", "RLHFlow/ArmoRM-Llama3-8B-v0.1", "Custom Classifier"),
        ("grm", "Ray2333/GRM-llama3-8B-sftreg", "Seq. Classifier"),
    ] {
        let m = model(name);
        let out = tmp.path().join(name);
        let d = data();
        let o = cli(&[
            "--model",
            m.to_str().unwrap(),
            "--dataset",
            d.to_str().unwrap(),
            "--output_dir",
            out.to_str().unwrap(),
            "--save_token_rewards",
        ]);
        let err = stderr(&o);
        assert_eq!(
            err.contains("upstream runs this model in bfloat16"),
            name == "armo",
            "{err}"
        );
        let s = json_file(&out.join(format!("tiny-{name}-rm.json")));
        assert_eq!(s["model_type"], model_type, "{s}");
        let c = &s["model_config"];
        assert_eq!(c["entry"], entry);
        assert_eq!(c["matched_by"], "config.json _name_or_path");
        assert_eq!(c["registry"], "models.toml (built in)");
        assert!(c["folder_file"].is_null());
        assert_eq!(c["settings"]["pooling"]["source"], "registry");
        assert_eq!(c["settings"]["double_bos_mask"]["value"], false);
        assert_eq!(
            s["reward_head"]["pooling"],
            if name == "armo" {
                "first_pad_minus_one"
            } else {
                "grm"
            }
        );
        // token rewards: the head at every position (no position masked: no double-BOS mask)
        let refs = reference(&m);
        let lines: Vec<Value> =
            std::fs::read_to_string(out.join(format!("tiny-{name}-rm_token_rewards.jsonl")))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        assert_eq!(lines.len(), 2 * refs["rows"].as_array().unwrap().len());
        for line in &lines {
            let r = &refs["rows"][line["index"].as_u64().unwrap() as usize]
                [line["side"].as_str().unwrap()];
            assert_eq!(ints(&line["input_ids"]), ints(&r["input_ids"]));
            assert_eq!(line["pooled_at"], r["position"], "{line}");
            let want = r["token_scores"].as_array().unwrap();
            let got = line["rewards"].as_array().unwrap();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g.as_f64().unwrap() - w.as_f64().unwrap()).abs() <= TOL,
                    "{name}: {line}"
                );
            }
        }
    }
}

/// ArmoRM's gating needs its pattern (the end of the last user turn): upstream raises without
/// it, the export gives NaN, and the run stops naming the row.
#[test]
fn armo_without_its_gating_pattern_stops_at_the_row() {
    let tmp = tempfile::tempdir().unwrap();
    let src = model("armo");
    let m = tmp.path().join("armo");
    std::fs::create_dir_all(&m).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, m.join(p.file_name().unwrap())).unwrap();
    }
    // no chat template: fastchat's `raw` renders no assistant header
    let cfg = m.join("tokenizer_config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("chat_template");
    std::fs::write(&cfg, v.to_string()).unwrap();
    let d = data();
    let o = rewardbench(&[
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        d.to_str().unwrap(),
        "--output_dir",
        tmp.path().join("out").to_str().unwrap(),
        "--chat_template",
        "raw",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("heads.jsonl: line 1") && e.contains("non-finite score (NaN)"),
        "{e}"
    );
}
