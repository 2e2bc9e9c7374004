//! Tokenization as the reference does it: the rendered text re-tokenized with special
//! tokens, the first of a doubled BOS masked out, EOS appended for Llama-family tokenizers
//! on the fastchat path, truncation (left) only when forced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::utils::truncation::{TruncationDirection, TruncationParams, TruncationStrategy};
use tokenizers::Tokenizer;

/// Errors of the tokenization stage.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    #[error("no tokenizer: {path} does not exist (a model folder needs tokenizer.json; or pass --tokenizer DIR)")]
    Missing { path: PathBuf },
    #[error("cannot load tokenizer {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("the tokenizer at {path} has neither a pad token nor an eos token, so batches cannot be padded")]
    NoPad { path: PathBuf },
    #[error("tokenizing {what}: {message}")]
    Encode { what: String, message: String },
}

/// Tokenizer classes whose `add_eos_token` the reference switches on when no chat template is used.
const LLAMA_FAMILY: &[&str] = &[
    "LlamaTokenizer",
    "LlamaTokenizerFast",
    "CodeLlamaTokenizer",
    "CodeLlamaTokenizerFast",
    "GemmaTokenizer",
    "GemmaTokenizerFast",
];

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

/// One tokenized text: ids and attention mask, unpadded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<i64>,
    pub mask: Vec<i64>,
}

/// Settings that change token ids.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodeOptions {
    /// Truncate from the left to this many tokens (`--force_truncation --max_length N`).
    pub truncate_to: Option<usize>,
    /// Append EOS (the reference's `add_eos_token` on Llama-family tokenizers without a template).
    pub append_eos: bool,
}

/// A loaded tokenizer with its special-token ids.
pub struct Encoder {
    tokenizer: Tokenizer,
    pub path: PathBuf,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    /// The pad id: the pad token, else EOS (as the reference sets it).
    pub pad_id: u32,
    /// Largest id the tokenizer can produce, plus one.
    pub vocab_size: usize,
}

impl Encoder {
    /// Loads `dir/tokenizer.json` and resolves special tokens from `cfg`.
    pub fn load(
        dir: &Path,
        cfg: &TokenizerConfig,
        opts: EncodeOptions,
    ) -> Result<Self, TokenizeError> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(TokenizeError::Missing { path });
        }
        let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| TokenizeError::Load {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let id_of = |name: &str| cfg.special.get(name).and_then(|t| tokenizer.token_to_id(t));
        let bos_id = id_of("bos_token");
        let eos_id = id_of("eos_token");
        let pad_id = id_of("pad_token")
            .or(eos_id)
            .ok_or_else(|| TokenizeError::NoPad { path: path.clone() })?;
        if opts.append_eos {
            let mut single = String::new();
            let mut specials = Vec::new();
            if cfg.add_bos_token.unwrap_or(true) {
                if let (Some(id), Some(tok)) = (bos_id, cfg.special.get("bos_token")) {
                    single.push_str(&format!("{tok} "));
                    specials.push((tok.clone(), id));
                }
            }
            single.push_str("$A");
            if let (Some(id), Some(tok)) = (eos_id, cfg.special.get("eos_token")) {
                single.push_str(&format!(" {tok}"));
                specials.push((tok.clone(), id));
            }
            let pp = TemplateProcessing::builder()
                .try_single(single.as_str())
                .and_then(|b| b.try_pair(format!("{single} $B:1").as_str()))
                .map_err(|e| TokenizeError::Load {
                    path: path.clone(),
                    message: e.to_string(),
                })?
                .special_tokens(specials)
                .build()
                .map_err(|e| TokenizeError::Load {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            tokenizer.with_post_processor(Some(pp));
        }
        let trunc = opts.truncate_to.map(|max_length| TruncationParams {
            direction: TruncationDirection::Left,
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        });
        // transformers resets a `padding` block of tokenizer.json; texts are padded per call.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(trunc)
            .map_err(|e| TokenizeError::Load {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let vocab_size = tokenizer.get_vocab_size(true);
        Ok(Self {
            tokenizer,
            path,
            bos_id,
            eos_id,
            pad_id,
            vocab_size,
        })
    }

    /// Whether the reference would append EOS for this tokenizer on the fastchat path.
    pub fn is_llama_family(cfg: &TokenizerConfig) -> bool {
        cfg.tokenizer_class
            .as_deref()
            .is_some_and(|c| LLAMA_FAMILY.contains(&c))
    }

    /// Token ids of `text` without special tokens (`add_special_tokens=False`; used by DPO).
    pub fn encode_plain(&self, text: &str, what: &str) -> Result<Vec<u32>, TokenizeError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizeError::Encode {
                what: what.to_string(),
                message: e.to_string(),
            })
    }

    /// Tokenizes `text` with special tokens and applies the double-BOS mask.
    pub fn encode(&self, text: &str, what: &str) -> Result<Encoded, TokenizeError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| TokenizeError::Encode {
                what: what.to_string(),
                message: e.to_string(),
            })?;
        let ids: Vec<i64> = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        let mut mask: Vec<i64> = enc
            .get_attention_mask()
            .iter()
            .map(|&m| i64::from(m))
            .collect();
        // RewardBench (PR #166): when the text starts with two BOS tokens, the first one
        // stays in the ids but is masked out. `start + 1` is clamped to the last index.
        if let (Some(bos), false) = (self.bos_id, ids.is_empty()) {
            let bos = i64::from(bos);
            let next = 1.min(ids.len() - 1);
            if ids[0] == bos && ids[next] == bos {
                mask[0] = 0;
            }
        }
        Ok(Encoded { ids, mask })
    }
}
