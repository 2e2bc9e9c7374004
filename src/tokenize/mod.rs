//! Tokenization as the reference does it: the rendered text re-tokenized with special
//! tokens, the first of a doubled BOS masked out, EOS appended for Llama-family tokenizers
//! on the fastchat path, truncation only when asked for (v1: left, forced; v2: run_v2's side).

use std::path::{Path, PathBuf};

use tokenizers::processors::template::TemplateProcessing;
use tokenizers::utils::truncation::{TruncationDirection, TruncationParams, TruncationStrategy};
use tokenizers::Tokenizer;

pub mod dpo;
pub mod lengths;
mod tokenizer_config;

pub use tokenizer_config::{TokenizerConfig, TruncationSide};

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

/// One tokenized text: ids and attention mask, unpadded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<i64>,
    pub mask: Vec<i64>,
    /// Tokens were cut off by truncation.
    pub truncated: bool,
}

/// Settings that change token ids.
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    /// Truncate to this many tokens (special tokens included) on this side: the left for
    /// `--force_truncation --max_length N`, run_v2's side for `rewardbench v2`.
    pub truncate_to: Option<(usize, TruncationSide)>,
    /// Append EOS (the reference's `add_eos_token` on Llama-family tokenizers without a template).
    pub append_eos: bool,
    /// Encode with special tokens (`add_special_tokens=True`, the default).
    pub add_special_tokens: bool,
    /// Mask the first of two leading BOS tokens (RewardBench PR #166; the default).
    pub double_bos_mask: bool,
    /// `false`: every token of a text is attended (a model given no attention mask).
    pub attention_mask: bool,
    /// Appended to a text that does not already end with it, after truncation (InternLM2's
    /// reward token).
    pub append_token: Option<u32>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            truncate_to: None,
            append_eos: false,
            add_special_tokens: true,
            double_bos_mask: true,
            attention_mask: true,
            append_token: None,
        }
    }
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
    opts: EncodeOptions,
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
        let trunc = opts.truncate_to.map(|(max_length, side)| TruncationParams {
            direction: match side {
                TruncationSide::Left => TruncationDirection::Left,
                TruncationSide::Right => TruncationDirection::Right,
            },
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
            opts,
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

    /// `tokenizer.encode(text, max_length=M, truncation=True, add_special_tokens=S)` as
    /// transformers' fast tokenizers compute it: the text's tokens cut to `M` minus the special
    /// tokens the post-processor adds (from `side`), then those added. No double-BOS mask.
    pub fn encode_truncated(
        &self,
        text: &str,
        max_length: usize,
        side: TruncationSide,
        add_special_tokens: bool,
        what: &str,
    ) -> Result<Vec<i64>, TokenizeError> {
        use tokenizers::PostProcessor;
        let err = |e: tokenizers::Error| TokenizeError::Encode {
            what: what.to_string(),
            message: e.to_string(),
        };
        let mut enc = self.tokenizer.encode(text, false).map_err(err)?;
        let added = match (add_special_tokens, self.tokenizer.get_post_processor()) {
            (true, Some(p)) => p.added_tokens(false),
            _ => 0,
        };
        let keep = max_length.saturating_sub(added);
        if enc.len() > keep {
            let direction = match side {
                TruncationSide::Left => TruncationDirection::Left,
                TruncationSide::Right => TruncationDirection::Right,
            };
            enc.truncate(keep, 0, direction);
        }
        let enc = self
            .tokenizer
            .post_process(enc, None, add_special_tokens)
            .map_err(err)?;
        Ok(enc.get_ids().iter().map(|&i| i64::from(i)).collect())
    }

    /// `tokenizer.decode(ids, skip_special_tokens=...)`, then transformers'
    /// `clean_up_tokenization` when `clean_up` (the tokenizer config's
    /// `clean_up_tokenization_spaces`).
    pub fn decode(
        &self,
        ids: &[i64],
        skip_special_tokens: bool,
        clean_up: bool,
        what: &str,
    ) -> Result<String, TokenizeError> {
        let ids: Vec<u32> = ids
            .iter()
            .map(|&i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        let text = self
            .tokenizer
            .decode(&ids, skip_special_tokens)
            .map_err(|e| TokenizeError::Encode {
                what: what.to_string(),
                message: e.to_string(),
            })?;
        Ok(if clean_up {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// The id of `token` in the vocabulary (added tokens included).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// Tokenizes `text` with special tokens and applies the double-BOS mask (as the
    /// options at load say: without special tokens, without the mask, attending every token,
    /// a token appended).
    pub fn encode(&self, text: &str, what: &str) -> Result<Encoded, TokenizeError> {
        let enc = self
            .tokenizer
            .encode(text, self.opts.add_special_tokens)
            .map_err(|e| TokenizeError::Encode {
                what: what.to_string(),
                message: e.to_string(),
            })?;
        let truncated = !enc.get_overflowing().is_empty();
        let mut ids: Vec<i64> = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        let mut mask: Vec<i64> = enc
            .get_attention_mask()
            .iter()
            .map(|&m| i64::from(m))
            .collect();
        // RewardBench (PR #166): when the text starts with two BOS tokens, the first one
        // stays in the ids but is masked out. `start + 1` is clamped to the last index.
        let double_bos = self.opts.double_bos_mask && self.opts.attention_mask;
        if let (Some(bos), false, true) = (self.bos_id, ids.is_empty(), double_bos) {
            let bos = i64::from(bos);
            let next = 1.min(ids.len() - 1);
            if ids[0] == bos && ids[next] == bos {
                mask[0] = 0;
            }
        }
        if !self.opts.attention_mask {
            mask.iter_mut().for_each(|m| *m = 1);
        }
        if let Some(t) = self.opts.append_token.map(i64::from) {
            if ids.last() != Some(&t) {
                ids.push(t);
                mask.push(1);
            }
        }
        Ok(Encoded {
            ids,
            mask,
            truncated,
        })
    }
}

/// transformers' `PreTrainedTokenizerBase.clean_up_tokenization`: spaces before punctuation
/// and English contractions removed, in its order.
pub fn clean_up_tokenization(text: &str) -> String {
    [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ]
    .iter()
    .fold(text.to_string(), |t, (from, to)| t.replace(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_up_follows_transformers() {
        // what transformers 4.51's PreTrainedTokenizerBase.clean_up_tokenization returns
        assert_eq!(
            clean_up_tokenization("Don 't , it 's fine . Really ! I ' m they 're we 've can n't"),
            "Don 't, it's fine. Really! I'm they're we've cann't"
        );
    }
}
