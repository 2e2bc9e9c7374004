//! The model registry (`models.toml`, `--model_config FILE`, a folder's `rewardbench.json`)
//! end to end: which settings a run gets and from where (the flags, then rewardbench.json,
//! then the registry, then the defaults), what the summary records, refused models, files
//! with unknown keys, and the special-token settings on real token ids.

use std::path::{Path, PathBuf};

use rewardbench::batch::Batching;
use rewardbench::config::RunConfig;
use rewardbench::eval;
use rewardbench::registry::{self, Bench, Given, Registry};
use serde_json::Value;

use crate::util::{rewardbench, root, stderr};

const TOL: f64 = 1e-4;

/// A copy of a model folder's files (not its subfolders) in `into`, with `edit` applied to
/// its config.json.
fn copy_model(from: &Path, into: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
    std::fs::create_dir_all(into).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, into.join(p.file_name().unwrap())).unwrap();
        }
    }
    let cfg = into.join("config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&cfg, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    into.to_path_buf()
}

fn run(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--output_dir",
        out.to_str().unwrap(),
    ];
    a.extend(extra);
    rewardbench(&a)
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o)
}

fn fails(o: std::process::Output) -> String {
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "should fail: {e}");
    assert!(!e.contains("panicked"), "{e}");
    e
}

fn summary(out: &Path, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join(format!("{name}.json"))).unwrap())
        .unwrap()
}

fn source(s: &Value, key: &str) -> String {
    s["model_config"]["settings"][key]["source"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

fn heads_data() -> PathBuf {
    root().join("fixtures/data/heads.jsonl")
}

/// `rewardbench v2` refuses the registry's pairwise models with the reason, before anything is
/// downloaded or read (upstream's run_v2 has no scoring for them).
#[test]
fn v2_refuses_pairwise_models_before_any_download() {
    let tmp = tempfile::tempdir().unwrap();
    let data = heads_data();
    for id in [
        "llm-blender/PairRM-hf",
        "stanfordnlp/SteamSHP-flan-t5-xl",
        "RLHFlow/pair-preference-model-LLaMA3-8B",
    ] {
        let a = ["v2", "--model", id, "--dataset", data.to_str().unwrap()];
        let o = crate::util::rewardbench_command(&a)
            .env("HF_ENDPOINT", "http://127.0.0.1:9")
            .env("HF_HOME", tmp.path())
            .output()
            .unwrap();
        let e = fails(o);
        assert!(
            e.contains(&format!("{id}: not supported yet: a pairwise model")),
            "{e}"
        );
        assert!(e.contains("models.toml") && e.contains("run_v2"), "{e}");
        assert!(!e.contains("hub"), "{e}");
    }
}

/// A pairwise export without its pairwise.json is scored by its registry entry's pipeline
/// (found by config.json's `_name_or_path`): the same numbers as with the contract file, and
/// the summary says where the pipeline came from.
#[test]
fn pairwise_models_are_routed_by_their_registry_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = root().join("fixtures/models/tiny-pairrm");
    let data = root().join("fixtures/data/pairwise.jsonl");
    let model = copy_model(&fixture, &tmp.path().join("tiny-pairrm"), |v| {
        v["_name_or_path"] = "llm-blender/PairRM-hf".into();
    });
    std::fs::remove_file(model.join("pairwise.json")).unwrap();
    let (with, without) = (tmp.path().join("with"), tmp.path().join("without"));
    ok(run(&fixture, &data, &with, &[]));
    let e = ok(run(&model, &data, &without, &[]));
    assert!(!e.contains("--pairwise"), "{e}");
    let a = summary(&with, "tiny-pairrm");
    let b = summary(&without, "tiny-pairrm");
    assert_eq!(b["pairwise"]["kind"], "pairrm");
    assert_eq!(b["model_type"], "Custom Classifier");
    assert_eq!(b["model_config"]["entry"], "llm-blender/PairRM-hf");
    assert_eq!(source(&b, "pairwise"), "registry");
    for key in ["accuracy", "extra_results", "num_prompts"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    let rows = |dir: &Path| std::fs::read_to_string(dir.join("tiny-pairrm_outputs.jsonl")).unwrap();
    assert_eq!(rows(&with), rows(&without));
    // --pairwise wins over the entry, as every flag does
    let e = ok(run(
        &model,
        &data,
        &tmp.path().join("flag"),
        &["--pairwise", "better-pairrm"],
    ));
    assert!(!e.contains("error"), "{e}");
    let c = summary(&tmp.path().join("flag"), "tiny-pairrm");
    assert_eq!(c["pairwise"]["kind"], "better-pairrm");
}

/// flags > rewardbench.json > registry > defaults, setting by setting, as the summary says.
#[test]
fn precedence_flags_folder_file_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let m = copy_model(
        &root().join("fixtures/models/tiny-grm-rm"),
        &tmp.path().join("grm"),
        |_| {},
    );
    let data = heads_data();
    let refs: Value =
        serde_json::from_str(&std::fs::read_to_string(m.join("head-reference.json")).unwrap())
            .unwrap();
    // the registry alone
    let out = tmp.path().join("o1");
    ok(run(&m, &data, &out, &[]));
    let s = summary(&out, "grm");
    assert_eq!(source(&s, "pooling"), "registry");
    assert_eq!(s["reward_head"]["pooling"], "grm");
    // the folder's file over it (its pooling, its model_type; the registry's other settings)
    std::fs::write(
        m.join("rewardbench.json"),
        r#"{"pooling": "last_attended", "model_type": "Folder Classifier", "score_transform": "negate"}"#,
    )
    .unwrap();
    let out = tmp.path().join("o2");
    ok(run(&m, &data, &out, &[]));
    let s = summary(&out, "grm");
    assert_eq!(s["model_type"], "Folder Classifier");
    assert_eq!(source(&s, "pooling"), "rewardbench.json");
    assert_eq!(source(&s, "model_type"), "rewardbench.json");
    assert_eq!(source(&s, "double_bos_mask"), "registry");
    assert_eq!(s["model_config"]["entry"], "Ray2333/GRM-llama3-8B-sftreg");
    assert!(s["model_config"]["folder_file"]
        .as_str()
        .unwrap()
        .ends_with("rewardbench.json"));
    assert_eq!(s["reward_head"]["pooling"], "last_attended");
    assert_eq!(s["reward_head"]["score_transform"], "negate");
    // last_attended reads the same (last) token as GRM's rule for a text alone; negated
    let outputs: Vec<Value> = std::fs::read_to_string(out.join("grm_outputs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (o, r) in outputs.iter().zip(refs["rows"].as_array().unwrap()) {
        let want = -r["chosen"]["score"].as_f64().unwrap();
        assert!(
            (o["scores_chosen"].as_f64().unwrap() - want).abs() <= TOL,
            "{o}"
        );
    }
    // a flag over both
    let out = tmp.path().join("o3");
    ok(run(
        &m,
        &data,
        &out,
        &["--pooling", "grm", "--score_transform", "none"],
    ));
    let s = summary(&out, "grm");
    assert_eq!(source(&s, "pooling"), "flag");
    assert_eq!(source(&s, "score_transform"), "flag");
    assert_eq!(s["reward_head"]["pooling"], "grm");
    assert_eq!(s["reward_head"]["score_transform"], "none");
    // a --model_config entry replaces the built-in one, whole (no pooling now: the per-token
    // export's default; the folder's file still applies over it)
    std::fs::remove_file(m.join("rewardbench.json")).unwrap();
    let file = tmp.path().join("mine.toml");
    std::fs::write(
        &file,
        "[models.\"Ray2333/GRM-llama3-8B-sftreg\"]\nmodel_type = \"Mine\"\nupstream = \"me\"\nexport = \"--head grm\"\n",
    )
    .unwrap();
    let out = tmp.path().join("o4");
    ok(run(
        &m,
        &data,
        &out,
        &["--model_config", file.to_str().unwrap()],
    ));
    let s = summary(&out, "grm");
    assert_eq!(s["model_type"], "Mine");
    assert_eq!(s["model_config"]["registry"], file.display().to_string());
    assert!(s.get("reward_head").is_none(), "{s}");
    assert_eq!(source(&s, "pooling"), "none");
}

/// A folder's rewardbench.json picks the rule of a model the registry does not know.
#[test]
fn a_folder_file_picks_its_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let src = root().join("fixtures/models/tiny-llama-rm/per-token");
    let m = copy_model(&src, &tmp.path().join("mine"), |_| {});
    std::fs::write(
        m.join("rewardbench.json"),
        r#"{"pooling": "first_pad_minus_one", "score_transform": "negate"}"#,
    )
    .unwrap();
    let data = root().join("fixtures/data/pooling.jsonl");
    let out = tmp.path().join("out");
    ok(run(&m, &data, &out, &[]));
    let s = summary(&out, "mine");
    assert_eq!(s["model_type"], "Seq. Classifier");
    assert!(s["model_config"]["entry"].is_null(), "{s}");
    assert_eq!(source(&s, "pooling"), "rewardbench.json");
    let refs: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("pooling-reference.json")).unwrap())
            .unwrap();
    let outputs: Vec<Value> = std::fs::read_to_string(out.join("mine_outputs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (o, r) in outputs.iter().zip(refs["pooling"].as_array().unwrap()) {
        for side in ["chosen", "rejected"] {
            let want = -r[side]["alone"]["first_pad_minus_one"]["score"][0]
                .as_f64()
                .unwrap();
            let got = o[format!("scores_{side}")].as_f64().unwrap();
            assert!((got - want).abs() <= TOL, "{side}: {got} vs {want}");
        }
    }
    // a typo in it: the file and the key, nothing computed
    std::fs::write(m.join("rewardbench.json"), r#"{"poling": "grm"}"#).unwrap();
    let out2 = tmp.path().join("out2");
    let e = fails(run(&m, &data, &out2, &[]));
    assert!(
        e.contains("rewardbench.json") && e.contains("unknown key `poling`"),
        "{e}"
    );
    assert!(!out2.join("mine.json").exists());
    // a bad value: the file and the key
    std::fs::write(m.join("rewardbench.json"), r#"{"pooling": "middle"}"#).unwrap();
    let e = fails(run(&m, &data, &out2, &[]));
    assert!(
        e.contains("rewardbench.json") && e.contains("pooling: `middle`"),
        "{e}"
    );
}

/// `--model_config`: unknown keys and bad values name the file, the entry and the key, before
/// any compute.
#[test]
fn a_bad_model_config_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = heads_data();
    let m = root().join("fixtures/models/tiny-grm-rm");
    let out = tmp.path().join("out");
    for (text, want) in [
        (
            "[models.\"a/b\"]\nmodel_type = \"x\"\nscore_colum = 1\n",
            "unknown key `score_colum`",
        ),
        (
            "[models.\"a/b\"]\nscore_transform = \"log\"\n",
            "[models.\"a/b\"]: score_transform: `log`",
        ),
        (
            "[model.\"a/b\"]\npooling = \"grm\"\n",
            "line 1: unknown table `model`",
        ),
    ] {
        let f = tmp.path().join("bad.toml");
        std::fs::write(&f, text).unwrap();
        let e = fails(run(
            &m,
            &data,
            &out,
            &["--model_config", f.to_str().unwrap()],
        ));
        assert!(
            e.contains(&f.display().to_string()) && e.contains(want),
            "{e}"
        );
    }
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

/// A registry rule that needs a per-token export, on a pooled one: refused, naming the entry
/// and how to override it.
#[test]
fn a_registry_rule_that_does_not_fit_the_export_names_its_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let m = copy_model(
        &root().join("fixtures/models/tiny-llama-rm"),
        &tmp.path().join("m"),
        |v| {
            v["_name_or_path"] = "Ray2333/GRM-llama3-8B-sftreg".into();
        },
    );
    let e = fails(run(&m, &heads_data(), &tmp.path().join("out"), &[]));
    assert!(e.contains("pools inside the graph"), "{e}");
    assert!(
        e.contains("registry entry `Ray2333/GRM-llama3-8B-sftreg`") && e.contains("override"),
        "{e}"
    );
    // the flag overrides the entry: the export's own pooling
    ok(run(
        &m,
        &heads_data(),
        &tmp.path().join("out"),
        &["--pooling", "last_non_pad"],
    ));
}

/// The special-token settings on real token ids: no special tokens and a reward token
/// (InternLM2), no attention mask (WorldPM).
#[test]
fn special_token_settings_change_the_ids_as_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let src = root().join("fixtures/models/tiny-llama-rm");
    let data = heads_data();
    let evaluate = |m: &Path, batching: Batching| {
        let mut c = RunConfig::local(m, &data);
        c.device.threads = 1;
        c.batch.batching = batching;
        let reg = Registry::built_in().unwrap();
        if let Some(mut p) = registry::profile(&reg, &m.display().to_string(), m, Bench::V1)? {
            p.apply(&mut c, Given::default(), Bench::V1)?;
        }
        Ok::<_, Box<dyn std::error::Error>>(eval::evaluate(&c)?)
    };
    let plain = evaluate(&src, Batching::Sorted).unwrap();
    // InternLM2-style: no special tokens, the reward token appended
    let m = copy_model(&src, &tmp.path().join("internlm"), |v| {
        v["reward_token_id"] = 5.into();
    });
    std::fs::write(
        m.join("rewardbench.json"),
        r#"{"add_special_tokens": false, "append_reward_token": true, "truncation": false}"#,
    )
    .unwrap();
    let ev = evaluate(&m, Batching::Sorted).unwrap();
    for (a, b) in ev.prepared.seqs.iter().zip(&plain.prepared.seqs) {
        // the tokenizer's BOS is not added (the template's stays), 5 is appended
        let mut want = b.ids[1..].to_vec();
        want.push(5);
        assert_eq!(a.ids, want);
        assert!(a.mask.iter().all(|&x| x == 1));
    }
    // WorldPM-style: no attention mask, so the doubled BOS is attended
    std::fs::write(m.join("rewardbench.json"), r#"{"attention_mask": false}"#).unwrap();
    let ev = evaluate(&m, Batching::Sorted).unwrap();
    for (a, b) in ev.prepared.seqs.iter().zip(&plain.prepared.seqs) {
        assert_eq!(a.ids, b.ids);
        assert_eq!(b.mask[0], 0, "the fixture's texts start with a double BOS");
        assert!(a.mask.iter().all(|&x| x == 1));
    }
    // ... which RewardBench's padded batches would attend too: not reproduced, refused
    let e = match evaluate(&m, Batching::Reference) {
        Ok(_) => panic!("reference batching without an attention mask should be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("not supported yet") && e.contains("--batching sorted"),
        "{e}"
    );
}

/// `rewardbench v2` writes the entry's model_type (run_v2's key) and where it came from.
#[test]
fn v2_summaries_record_the_model_type() {
    let tmp = tempfile::tempdir().unwrap();
    let data = root().join("fixtures/data/pooling_rb2.jsonl");
    let m = root().join("fixtures/models/tiny-armo-rm");
    let out = tmp.path().join("out");
    let o = rewardbench(&[
        "v2",
        "--model",
        m.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--output_dir",
        out.to_str().unwrap(),
    ]);
    ok(o);
    let s = summary(&out, "tiny-armo-rm");
    assert_eq!(s["model_type"], "Custom Classifier");
    assert_eq!(s["model_config"]["entry"], "RLHFlow/ArmoRM-Llama3-8B-v0.1");
    // a model without an entry keeps the default
    let out = tmp.path().join("plain");
    ok(rewardbench(&[
        "v2",
        "--model",
        root()
            .join("fixtures/models/tiny-llama-rm")
            .to_str()
            .unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--output_dir",
        out.to_str().unwrap(),
    ]));
    let s = summary(&out, "tiny-llama-rm");
    assert_eq!(s["model_type"], "Seq. Classifier");
    assert!(s.get("model_config").is_none());
}
