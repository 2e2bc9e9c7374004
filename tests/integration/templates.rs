//! Chat templates against Python's transformers: the huggingface.js cases in
//! fixtures/templates/, with the renderings transformers 4.51.3 produced
//! (fixtures/templates/make_expected.py).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rewardbench::data::{Pair, Prompt};
use rewardbench::template::{
    ChatTemplate, Conv, JinjaOptions, JinjaTemplate, Message, TemplateError,
};
use rewardbench::tokenize::{EncodeOptions, Encoder, TokenizerConfig};
use serde_json::{json, Value};

fn fixture(name: &str) -> Vec<Value> {
    let path = format!("{}/fixtures/templates/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn options(trim: bool) -> JinjaOptions {
    JinjaOptions {
        trim_blocks: trim,
        date: Some("2025-07-10".parse().unwrap()),
    }
}

/// Compares one case; returns a failure description.
fn check(name: &str, result: Result<String, String>, case: &Value) -> Option<String> {
    let expected = case["expected_transformers"].as_str();
    match (result, expected) {
        (Ok(out), Some(exp)) if out == exp => None,
        (Ok(out), Some(exp)) => Some(format!("{name}: got\n{out:?}\nexpected\n{exp:?}")),
        (Err(_), None) => None,
        (Ok(out), None) => Some(format!(
            "{name}: rendered {out:?}, but transformers fails: {}",
            case["transformers_error"]
        )),
        (Err(e), Some(exp)) => Some(format!("{name}: error {e}, expected {exp:?}")),
    }
}

#[test]
fn e2e_real_templates_match_transformers() {
    let cases = fixture("e2e_cases.json");
    assert_eq!(cases.len(), 53);
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["model"].as_str().unwrap();
        let result = JinjaTemplate::with_options(
            case["template"].as_str().unwrap(),
            BTreeMap::new(),
            name,
            "case",
            options(true),
        )
        .and_then(|t| {
            t.render_json(
                &case["messages"],
                case["add_generation_prompt"].as_bool().unwrap_or(false),
                case["extra_context"].as_object().unwrap(),
            )
        })
        .map_err(|e| e.to_string());
        failures.extend(check(name, result, case));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The four feature cases whose huggingface.js context held JavaScript functions get the same
/// functions here (make_expected.py defines them in Python for the transformers rendering).
fn with_functions(name: &str, ctx: &Value) -> BTreeMap<String, minijinja::Value> {
    use minijinja::value::{Rest, Value as V};
    let mut vars: BTreeMap<String, V> = ctx
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), V::from(minijinja::value::Serde(v.clone()))))
        .collect();
    let join = |sep: &'static str| V::from_function(move |args: Rest<String>| args.0.join(sep));
    match name {
        "NUMBERS" => {
            vars.insert("add".into(), V::from_function(|x: i64, y: i64| x + y));
        }
        "FUNCTIONS" => {
            vars.insert("func".into(), V::from_function(|args: Rest<V>| args.len()));
        }
        "OBJ_METHODS" => {
            let z = BTreeMap::from([("A".to_string(), join("_"))]);
            let obj = BTreeMap::from([("x".to_string(), join("")), ("z".to_string(), V::from(z))]);
            vars.insert("obj".into(), V::from(obj));
        }
        "IS_OPERATOR_4" => {
            vars.insert("func".into(), V::from_function(|| ()));
        }
        other => panic!("{other}: no functions defined for this case"),
    }
    vars
}

#[test]
fn jinja_feature_cases_match_transformers() {
    let cases = fixture("feature_cases.json");
    assert_eq!(cases.len(), 161);
    let mut failures = Vec::new();
    let mut with_js_functions = 0;
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let template = JinjaTemplate::with_options(
            case["template"].as_str().unwrap(),
            BTreeMap::new(),
            name,
            "case",
            options(false),
        );
        let result = if case["context_had_js_functions"].as_bool() == Some(true) {
            with_js_functions += 1;
            template.and_then(|t| t.render_values(with_functions(name, &case["context"])))
        } else {
            template.and_then(|t| t.render_context(case["context"].as_object().unwrap().clone()))
        }
        .map_err(|e| e.to_string());
        failures.extend(check(name, result, case));
    }
    assert_eq!(with_js_functions, 4);
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// A named_cases.json conversation: plain strings, roles by position as RewardBench assigns them.
fn named_case_messages(case: &Value) -> Vec<Message> {
    case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            Message::new(role, m.as_str().unwrap())
        })
        .collect()
}

#[test]
fn named_templates_match_fastchat() {
    // fastchat 0.2.36's get_prompt() with RewardBench's registrations (make_expected.py).
    let cases = fixture("named_cases.json");
    assert_eq!(cases.len(), 84);
    let mut failures = Vec::new();
    for case in &cases {
        let name = case["template"].as_str().unwrap();
        let messages = named_case_messages(case);
        let out = Conv::by_name(name).unwrap().render(&messages);
        if out != case["expected"].as_str().unwrap() {
            failures.push(format!(
                "{name} {messages:?}: got {out:?}, expected {}",
                case["expected"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn python_behaviours_match_transformers() {
    let cases = fixture("python_cases.json");
    let mut failures = Vec::new();
    for case in &cases {
        let template = case["template"].as_str().unwrap();
        let result = JinjaTemplate::with_options(
            template,
            BTreeMap::new(),
            "python-case",
            "case",
            options(true),
        )
        .and_then(|t| t.render_context(case["context"].as_object().unwrap().clone()))
        .map_err(|e| e.to_string());
        failures.extend(check(template, result, case));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A template from a tokenizer folder, as the evaluation builds it.
fn folder_template(dir: &Path) -> JinjaTemplate {
    let cfg = TokenizerConfig::load(dir).unwrap();
    JinjaTemplate::new(
        cfg.chat_template.as_deref().unwrap(),
        cfg.special.clone(),
        "my/model",
        &cfg.chat_template_file,
    )
    .unwrap()
    .with_additional_special_tokens(&cfg.additional_special_tokens)
}

const TPL: &str = "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}{{ additional_special_tokens | default([]) | length }}";

#[test]
fn special_tokens_as_added_token_objects() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = json!({
        "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false},
        "eos_token": {"content": "</s>", "special": true},
        "pad_token": null,
        "unk_token": "<unk>",
        "image_token": "<image>",
        "additional_special_tokens": ["<a>", {"content": "<b>"}],
        "chat_template": TPL,
    });
    write(dir.path(), "tokenizer_config.json", &cfg.to_string());
    let loaded = TokenizerConfig::load(dir.path()).unwrap();
    assert_eq!(
        loaded.special.get("bos_token").map(String::as_str),
        Some("<s>")
    );
    assert_eq!(
        loaded.special.get("eos_token").map(String::as_str),
        Some("</s>")
    );
    assert!(!loaded.special.contains_key("pad_token"));
    // transformers passes only the standard special tokens (special_tokens_map).
    assert!(!loaded.special.contains_key("image_token"));
    assert_eq!(loaded.additional_special_tokens, ["<a>", "<b>"]);
    let out = folder_template(dir.path())
        .render(&[Message::new("user", "hi")], false)
        .unwrap();
    assert_eq!(out, "<s><user>hi</s>2");
}

/// Which file wins, as transformers 4.51.3's AutoTokenizer decides (expected maps printed by
/// it on the same files): a config with `added_tokens_decoder` ignores special_tokens_map.json;
/// for a legacy config the map overrides it, `null` included.
#[test]
fn special_tokens_map_precedence_as_transformers() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/models/tiny-llama-rm");
    let base: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture.join("tokenizer_config.json")).unwrap(),
    )
    .unwrap();
    let with = |drop: &[&str], set: Value| {
        let mut c = base.as_object().unwrap().clone();
        for k in drop {
            c.remove(*k);
        }
        c.extend(set.as_object().unwrap().clone());
        Value::Object(c)
    };
    let legacy = ["added_tokens_decoder"];
    let cases = [
        (
            with(&["eos_token"], json!({})),
            json!({"eos_token": "</s>"}),
            json!({"bos_token": "<s>", "pad_token": "<pad>"}),
        ),
        (
            with(&legacy, json!({"eos_token": "</s>"})),
            json!({"eos_token": "<pad>"}),
            json!({"bos_token": "<s>", "eos_token": "<pad>", "pad_token": "<pad>"}),
        ),
        (
            with(&legacy, json!({"pad_token": null})),
            json!({"pad_token": "<pad>"}),
            json!({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}),
        ),
        (
            with(&legacy, json!({"pad_token": "<pad>"})),
            json!({"pad_token": null}),
            json!({"bos_token": "<s>", "eos_token": "</s>"}),
        ),
    ];
    for (i, (config, map, expected)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "tokenizer_config.json", &config.to_string());
        write(dir.path(), "special_tokens_map.json", &map.to_string());
        let loaded = TokenizerConfig::load(dir.path()).unwrap();
        let got: BTreeMap<&str, &str> = loaded
            .special
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let want: BTreeMap<&str, &str> = expected
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        assert_eq!(got, want, "case {i}");
    }
}

/// transformers hands a template only the special tokens that are set (an empty string is
/// not), and fills in the tokenizer class's defaults when the files name none. Expected
/// outputs from transformers 4.51.3's AutoTokenizer on the same files.
#[test]
fn special_tokens_unset_when_empty_and_class_defaults() {
    // Renders [user: hi] with the template of a folder holding only this tokenizer_config.json.
    let render = |cfg: Value| {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "tokenizer_config.json", &cfg.to_string());
        folder_template(dir.path())
            .render(&[Message::new("user", "hi")], false)
            .unwrap()
    };
    let out = render(json!({
        "bos_token": null, "eos_token": "</s>", "pad_token": "",
        "unk_token": {"content": "<unk>", "lstrip": false}, "additional_special_tokens": [],
        "chat_template": "{{ bos_token is defined }}|{{ pad_token is defined }}|{{ unk_token }}|{{ additional_special_tokens is defined }}|{{ eos_token }}",
    }));
    assert_eq!(out, "False|False|<unk>|False|</s>");
    let out = render(json!({
        "eos_token": "</s>", "tokenizer_class": "LlamaTokenizerFast",
        "chat_template": "[{{ bos_token }}][{{ unk_token }}][{{ pad_token is defined }}]",
    }));
    assert_eq!(out, "[<s>][<unk>][False]");
}

#[test]
fn chat_template_list_and_jinja_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = json!({
        "eos_token": "</s>",
        "chat_template": [
            {"name": "tool_use", "template": "TOOLS"},
            {"name": "default", "template": "DEFAULT{{ messages[0].content }}"},
        ],
    });
    write(dir.path(), "tokenizer_config.json", &cfg.to_string());
    let msgs = [Message::new("user", "x")];
    assert_eq!(
        folder_template(dir.path()).render(&msgs, false).unwrap(),
        "DEFAULTx"
    );

    // chat_template.jinja beside the config wins over the config's template.
    write(
        dir.path(),
        "chat_template.jinja",
        "FILE{{ messages[0].content }}{{ eos_token }}\n",
    );
    let cfg = TokenizerConfig::load(dir.path()).unwrap();
    assert!(cfg.chat_template_file.ends_with("chat_template.jinja"));
    // (jinja2 drops one trailing newline of the source: keep_trailing_newline is off.)
    assert_eq!(
        folder_template(dir.path()).render(&msgs, false).unwrap(),
        "FILEx</s>"
    );

    // A list without a `default` entry is an error naming the file.
    let other = tempfile::tempdir().unwrap();
    let cfg = json!({"chat_template": [{"name": "rag", "template": "R"}]});
    write(other.path(), "tokenizer_config.json", &cfg.to_string());
    let e = TokenizerConfig::load(other.path()).unwrap_err().to_string();
    assert!(
        e.contains("tokenizer_config.json") && e.contains("default"),
        "{e}"
    );
}

#[test]
fn raise_exception_names_the_model() {
    let t = JinjaTemplate::new(
        "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}",
        BTreeMap::new(),
        "org/some-rm",
        "tokenizer_config.json",
    )
    .unwrap();
    let e = t
        .render(&[Message::new("assistant", "x")], false)
        .unwrap_err();
    assert!(matches!(e, TemplateError::Render { .. }));
    let e = e.to_string();
    assert!(
        e.contains("org/some-rm") && e.contains("Conversation roles must alternate"),
        "{e}"
    );
}

#[test]
fn runaway_templates_stop_with_an_error() {
    let cases = [
        // Endless work: a nested loop of 10^10 steps.
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        // Exploding output.
        "{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}",
        // Recursion.
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    ];
    for src in cases {
        let t = JinjaTemplate::new(src, BTreeMap::new(), "bad/model", "t").unwrap();
        let start = Instant::now();
        let e = t.render(&[], false).unwrap_err().to_string();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{src}: took {:?}",
            start.elapsed()
        );
        assert!(e.contains("bad/model"), "{src}: {e}");
    }
}

#[test]
fn tokenizer_template_wins_over_named() {
    let jinja =
        JinjaTemplate::new("J{{ messages[0].content }}", BTreeMap::new(), "m", "t").unwrap();
    let t = ChatTemplate::select(Some(jinja), Some("tulu"), Path::new("tok")).unwrap();
    assert_eq!(t.label(), "tokenizer");
    assert_eq!(t.render(&[Message::new("user", "x")]).unwrap(), "Jx");
    let t = ChatTemplate::select(None, Some("tulu"), Path::new("tok")).unwrap();
    assert_eq!(t.label(), "tulu");
    let e = ChatTemplate::select(None, None, Path::new("tok"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("tok") && e.contains("--chat_template"), "{e}");
    let e = ChatTemplate::select(None, Some("alpaca"), Path::new("tok"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("alpaca") && e.contains("tulu"), "{e}");
}

/// `chatml` (absent from fastchat 0.2.36) renders as the standard ChatML Jinja template does
/// in transformers, on the named-template conversations whose messages are not empty.
#[test]
fn chatml_matches_the_standard_chatml_jinja_template() {
    const CHATML_JINJA: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
    let jinja = JinjaTemplate::new(CHATML_JINJA, BTreeMap::new(), "chatml", "t").unwrap();
    let chatml = Conv::by_name("chatml").unwrap();
    let mut checked = 0;
    for case in fixture("named_cases.json") {
        let messages = named_case_messages(&case);
        if messages.iter().any(|m| m.content.is_empty()) {
            continue; // an empty message is fastchat's bare generation slot
        }
        assert_eq!(
            chatml.render(&messages),
            jinja.render(&messages, false).unwrap()
        );
        checked += 1;
    }
    assert!(checked >= 10, "{checked}");
}

fn pair(prompt: Prompt, chosen: &str, rejected: &str) -> Pair {
    Pair {
        prompt,
        chosen: vec![chosen.into()],
        rejected: vec![rejected.into()],
        metadata: Default::default(),
        place: "line 1".into(),
    }
}

fn turns(texts: &[&str]) -> Prompt {
    Prompt::Messages(texts.iter().map(|t| Message::new("ignored", t)).collect())
}

#[test]
fn preference_rows_render_as_the_reference() {
    let tulu = ChatTemplate::select(None, Some("tulu"), Path::new("-")).unwrap();
    // Roles by position, stored roles ignored.
    let r = tulu
        .render_pair(&pair(turns(&["P1", "A1", "P2"]), "C", "R"))
        .unwrap();
    assert_eq!(r.prompt, "<|user|>\nP1\n<|assistant|>\nA1\n<|user|>\nP2\n");
    assert_eq!(r.chosen[0], format!("{}<|assistant|>\nC\n", r.prompt));
    // An empty answer is fastchat's generation slot: the bare role header.
    let r = tulu
        .render_pair(&pair(Prompt::Text("P".into()), "", "R"))
        .unwrap();
    assert_eq!(r.chosen[0], "<|user|>\nP\n<|assistant|>\n");
    // A prompt ending on an assistant turn is rejected.
    let e = tulu
        .render_pair(&pair(turns(&["P1", "A1"]), "C", "R"))
        .unwrap_err();
    assert!(
        matches!(e, TemplateError::PromptNotUserLast { len: 2 }),
        "{e}"
    );
    assert!(e.to_string().contains("must end with a user turn"));
    let e = tulu.render_pair(&pair(turns(&[]), "C", "R")).unwrap_err();
    assert!(matches!(e, TemplateError::EmptyPrompt), "{e}");
}

fn render_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rewardbench"))
        .arg("render")
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("binary runs")
}

#[test]
fn render_cli_prints_exactly_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let msgs = write(
        dir.path(),
        "m.json",
        r#"[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo", "extra": 1}]"#,
    );
    let cfg = json!({
        "eos_token": {"content": "</s>"},
        "chat_template": "{% for m in messages %}{{ m.role }}:{{ m.content }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}{{ strftime_now('%d %b %Y') }}",
    });
    let cfg = write(dir.path(), "tokenizer_config.json", &cfg.to_string());
    let base = [
        "--messages",
        msgs.to_str().unwrap(),
        "--tokenizer_config",
        cfg.to_str().unwrap(),
        "--date",
        "2025-07-10",
    ];
    let o = render_cli(&base);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "user:Hi</s>\nassistant:Yo</s>\n10 Jul 2025"
    );
    let o = render_cli(&[&base[..], &["--add_generation_prompt"]].concat());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        "user:Hi</s>\nassistant:Yo</s>\nassistant:10 Jul 2025"
    );

    let o = render_cli(&[
        "--messages",
        msgs.to_str().unwrap(),
        "--chat_template",
        "vicuna_v1.1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8(o.stdout)
        .unwrap()
        .ends_with("questions. USER: Hi ASSISTANT: Yo</s>"));

    // Bad input fails with a message naming the problem.
    let bad = write(dir.path(), "bad.json", r#"[{"role": "user"}]"#);
    let o = render_cli(&[
        "--messages",
        bad.to_str().unwrap(),
        "--chat_template",
        "tulu",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("`content` is missing"));
    let o = render_cli(&[
        "--messages",
        msgs.to_str().unwrap(),
        "--chat_template",
        "tulu",
        "--date",
        "2025-13-01",
    ]);
    assert!(!o.status.success());
}

fn qwen3_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/tokenizers/qwen3");
    if dir.join("tokenizer.json").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: the Qwen3 tokenizer is not at {} (../shared is absent)",
            dir.display()
        );
        None
    }
}

#[test]
fn qwen3_template_and_tokens_match_transformers() {
    let Some(dir) = qwen3_dir() else { return };
    let cfg = TokenizerConfig::load(&dir).unwrap();
    // Qwen3 has no BOS: nothing is prepended and no double-BOS mask applies.
    assert!(!cfg.special.contains_key("bos_token"));
    let template = folder_template(&dir);
    let encoder = Encoder::load(&dir, &cfg, EncodeOptions::default()).unwrap();
    assert_eq!(encoder.bos_id, None);
    let cases = fixture("qwen3_token_ids.json");
    assert_eq!(cases.len(), 6);
    for case in &cases {
        let text = template
            .render_json(
                &case["messages"],
                case["add_generation_prompt"].as_bool().unwrap(),
                &serde_json::Map::new(),
            )
            .unwrap();
        assert_eq!(text, case["text"].as_str().unwrap());
        let enc = encoder.encode(&text, "case").unwrap();
        let expected: Vec<i64> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(enc.ids, expected, "{text:?}");
        assert!(enc.mask.iter().all(|&m| m == 1));
    }
}
