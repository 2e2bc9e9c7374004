//! `tokenizer_config.json` and `special_tokens_map.json`: the special tokens, the chat template
//! and the tokenizer class, with the defaults transformers' classes set.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::TokenizeError;

/// The special tokens transformers hands to a chat template (`special_tokens_map`).
const SPECIAL_TOKENS: &[&str] = &[
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

/// The chat-template-relevant parts of `tokenizer_config.json`.
#[derive(Debug, Default, Clone)]
pub struct TokenizerConfig {
    /// Special tokens by name (`bos_token`, `eos_token`, ...), as strings.
    pub special: BTreeMap<String, String>,
    /// `additional_special_tokens`, as strings.
    pub additional_special_tokens: Vec<String>,
    /// The Jinja chat template, if any (from `chat_template.jinja` or the config).
    pub chat_template: Option<String>,
    /// Where the template came from.
    pub chat_template_file: String,
    pub tokenizer_class: Option<String>,
    pub add_bos_token: Option<bool>,
    /// `truncation_side` (`left` or `right`); transformers' default is right.
    pub truncation_side: Option<TruncationSide>,
}

/// Which end of a text truncation cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncationSide {
    /// Keep the first tokens (transformers' default).
    Right,
    /// Keep the last tokens.
    Left,
}

impl TruncationSide {
    pub fn label(self) -> &'static str {
        match self {
            Self::Right => "right",
            Self::Left => "left",
        }
    }
}

/// A special token is a string or an added-token object `{"content": ...}`.
fn token_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Special tokens a tokenizer class sets when its files name none: the `__init__` defaults of
/// the fast classes `AutoTokenizer` loads (transformers 4.51).
fn class_defaults(class: &str) -> &'static [(&'static str, &'static str)] {
    const ENDOFTEXT: &str = "<|endoftext|>";
    match class.strip_suffix("Fast").unwrap_or(class) {
        "LlamaTokenizer" | "CodeLlamaTokenizer" => &[
            ("unk_token", "<unk>"),
            ("bos_token", "<s>"),
            ("eos_token", "</s>"),
        ],
        "GemmaTokenizer" => &[
            ("unk_token", "<unk>"),
            ("bos_token", "<bos>"),
            ("eos_token", "<eos>"),
            ("pad_token", "<pad>"),
        ],
        "GPT2Tokenizer" | "GPTNeoXTokenizer" => &[
            ("unk_token", ENDOFTEXT),
            ("bos_token", ENDOFTEXT),
            ("eos_token", ENDOFTEXT),
        ],
        "Qwen2Tokenizer" => &[
            ("unk_token", ENDOFTEXT),
            ("eos_token", ENDOFTEXT),
            ("pad_token", ENDOFTEXT),
        ],
        "BloomTokenizer" => &[
            ("unk_token", "<unk>"),
            ("bos_token", "<s>"),
            ("eos_token", "</s>"),
            ("pad_token", "<pad>"),
        ],
        "T5Tokenizer" => &[
            ("eos_token", "</s>"),
            ("unk_token", "<unk>"),
            ("pad_token", "<pad>"),
        ],
        "CohereTokenizer" => &[
            ("unk_token", "<UNK>"),
            ("bos_token", "<BOS_TOKEN>"),
            ("eos_token", "<|END_OF_TURN_TOKEN|>"),
        ],
        _ => &[],
    }
}

impl TokenizerConfig {
    /// Reads `tokenizer_config.json`, `special_tokens_map.json` and `chat_template.jinja` in `dir`.
    pub fn load(dir: &Path) -> Result<Self, TokenizeError> {
        Self::load_file(&dir.join("tokenizer_config.json"))
    }

    /// Reads the given tokenizer config, with `special_tokens_map.json` and `chat_template.jinja` beside it.
    pub fn load_file(config_file: &Path) -> Result<Self, TokenizeError> {
        let dir = config_file.parent().unwrap_or(Path::new("."));
        let config_name = config_file.file_name().map_or_else(
            || "tokenizer_config.json".to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut cfg = Self::default();
        let read_json = |name: &str| -> Result<Option<Value>, TokenizeError> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    serde_json::from_str(&text)
                        .map(Some)
                        .map_err(|e| TokenizeError::Config {
                            path,
                            message: format!("invalid JSON: {e}"),
                        })
                }
                Err(_) => Ok(None),
            }
        };
        let config = read_json(&config_name)?;
        let map = read_json("special_tokens_map.json")?;
        let class = config
            .as_ref()
            .and_then(|c| c.get("tokenizer_class"))
            .and_then(Value::as_str);
        for (name, token) in class.map(class_defaults).unwrap_or_default() {
            cfg.special.insert(name.to_string(), token.to_string());
        }
        // transformers 4.51: a config with `added_tokens_decoder` (what save_pretrained writes
        // today) is the only source; a legacy one is overridden by special_tokens_map.json.
        let modern = config
            .as_ref()
            .is_some_and(|c| c.get("added_tokens_decoder").is_some());
        let sources = if modern {
            [config.as_ref(), None]
        } else {
            [config.as_ref(), map.as_ref()]
        };
        for source in sources.into_iter().flatten() {
            if let Some(obj) = source.as_object() {
                for (k, v) in obj {
                    if k == "additional_special_tokens" {
                        if let Some(list) = v.as_array() {
                            cfg.additional_special_tokens =
                                list.iter().filter_map(token_str).collect();
                        }
                    } else if SPECIAL_TOKENS.contains(&k.as_str()) {
                        // null or "" unsets it (transformers hands templates only set ones).
                        match token_str(v) {
                            Some(s) if !s.is_empty() => {
                                cfg.special.insert(k.clone(), s);
                            }
                            Some(_) => {
                                cfg.special.remove(k);
                            }
                            None if v.is_null() => {
                                cfg.special.remove(k);
                            }
                            None => {}
                        }
                    }
                }
            }
        }
        let config_path = config_file.display().to_string();
        if let Some(obj) = config.as_ref().and_then(Value::as_object) {
            cfg.tokenizer_class = obj
                .get("tokenizer_class")
                .and_then(Value::as_str)
                .map(str::to_string);
            cfg.add_bos_token = obj.get("add_bos_token").and_then(Value::as_bool);
            cfg.truncation_side = match obj.get("truncation_side") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s == "right" => Some(TruncationSide::Right),
                Some(Value::String(s)) if s == "left" => Some(TruncationSide::Left),
                Some(other) => {
                    return Err(TokenizeError::Config {
                        path: config_file.to_path_buf(),
                        message: format!(
                            "truncation_side is {other}, expected \"left\" or \"right\""
                        ),
                    })
                }
            };
            match obj.get("chat_template") {
                Some(Value::String(s)) => cfg.chat_template = Some(s.clone()),
                Some(Value::Array(list)) => {
                    // A list of named templates: transformers uses the one named "default".
                    cfg.chat_template = list
                        .iter()
                        .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                        .and_then(|t| t.get("template"))
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    if cfg.chat_template.is_none() {
                        return Err(TokenizeError::Config {
                            path: config_file.to_path_buf(),
                            message: "chat_template is a list of named templates without one named `default`".into(),
                        });
                    }
                }
                _ => {}
            }
            cfg.chat_template_file = config_path;
        }
        let jinja = dir.join("chat_template.jinja");
        if let Ok(text) = std::fs::read_to_string(&jinja) {
            cfg.chat_template = Some(text);
            cfg.chat_template_file = jinja.display().to_string();
        }
        Ok(cfg)
    }
}
