//! The model inputs RewardBench's pairwise pipelines build from one conversation pair
//! (rewardbench 0.1.4, `rewardbench/models/{pairrm,betterpairrm,slicpairpm,shp}.py`), in the
//! order "A" = `a`, "B" = `b`. Each builder returns the token ids the model reads and the
//! texts they came from (for the outputs file).

use crate::config::PairwiseKind;
use crate::data::Message;
use crate::template::JinjaTemplate;
use crate::tokenize::{Encoder, TokenizeError, TruncationSide};

/// PairRM's instruction, typo ("coversation") included, followed directly by the user turns.
pub const PAIRRM_INSTRUCTION: &str =
    "Finish the following coversation in each i-th turn by filling in <Response i> with your response.";
/// `tokenize_pair`'s prefixes (config.json's `source_prefix_id`, `cand1_prefix_id`,
/// `cand2_prefix_id` are their ids).
pub const SOURCE_PREFIX: &str = "<|source|>";
pub const CAND1_PREFIX: &str = "<|candidate1|>";
pub const CAND2_PREFIX: &str = "<|candidate2|>";
/// PairRM's budgets: the source, then each candidate `(2048 - source) / 2` tokens.
pub const PAIRRM_SOURCE_MAX: usize = 1224;
pub const PAIRRM_CANDIDATE_MAX: usize = 412;
/// Better-PairRM's: the source's text cut from the left to 2030 tokens, each candidate's to
/// 670 from the right; then the source and `(2030 + 2 * 670 - source) / 2` per candidate.
pub const BETTER_SOURCE_MAX: usize = 2030;
pub const BETTER_CANDIDATE_MAX: usize = 670;
/// SteamSHP's truncation: run_rm.py's `--max_length` default, passed to the pipeline.
pub const SHP_MAX_LENGTH: usize = 2048;

/// Better-PairRM's source template (betterpairrm.py `BETTER_PAIRRM_TEMPLATE`, its indentation
/// included), rendered by a default `jinja2.Environment()` (no trim/lstrip blocks).
pub const BETTER_PAIRRM_TEMPLATE: &str = "{% for message in messages -%}\n    {% if message['role'] == 'user' -%}\n    USER: {{ message['content']|trim -}}\n    {% if not loop.last -%}\n\n\n    {% endif %}\n    {% elif message['role'] == 'assistant' -%}\n    ASSISTANT: {{ message['content']|trim -}}\n    {% if not loop.last -%}\n\n\n    {% endif %}\n    {% elif message['role'] == 'user_context' -%}\n    USER: {{ message['content']|trim -}}\n    {% if not loop.last -%}\n\n\n    {% endif %}\n    {% elif message['role'] == 'system' -%}\n    SYSTEM MESSAGE: {{ message['content']|trim -}}\n    {% if not loop.last -%}\n\n\n    {% endif %}\n    {% endif %}\n    {% endfor -%}\n    {% if add_generation_prompt and messages[-1]['role'] != 'assistant' -%}\n    ASSISTANT: {% endif -%}";

/// SlicPairPM's context template (set on the Llama-3-Instruct tokenizer and rendered by
/// `apply_chat_template`, i.e. with transformers' trim/lstrip blocks).
pub const SLIC_CONTEXT_TEMPLATE: &str = "\n{% for message in messages %}{% if loop.index0 % 2 == 0 %}\n\n<turn> user\n {{ message['content'] }}{% else %}\n\n<turn> assistant\n {{ message['content'] }}{% endif %}{% endfor %}\n\n\n";

/// Why a pair cannot be built (placed at its row by the caller).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    #[error(
        "PairRM's pipeline needs alternating user / assistant turns (it asserts \"Each even turn must be USER\"), \
         but turn {turn} has role `{role}`"
    )]
    Roles { turn: usize, role: String },
    #[error(
        "PairRM's pipeline needs a prompt that ends with a user turn (an odd number of turns before the answer), \
         but it has {len}"
    )]
    Turns { len: usize },
    #[error("the prefix token {token} (id {id}) appears {count} times in the {order} input, not once (PairRM reads the hidden state at it)")]
    Prefix {
        token: &'static str,
        id: i64,
        count: usize,
        order: &'static str,
    },
}

/// One order's input: the ids, the text shown as the outputs' `prompt` (source, context or
/// post) and the whole text (the outputs' `text_chosen` / `text_rejected`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub ids: Vec<i64>,
    pub prompt: String,
    pub text: String,
    /// Tokens were cut by a budget.
    pub truncated: bool,
}

/// What the builders need, fixed for a run.
pub struct Builder<'a> {
    pub kind: PairwiseKind,
    pub encoder: &'a Encoder,
    /// The tokenizer's own `truncation_side` (PairRM, SteamSHP): right unless it says left.
    pub side: TruncationSide,
    /// `clean_up_tokenization_spaces` of the tokenizer config (Better-PairRM decodes).
    pub clean_up: bool,
    /// Better-PairRM's source template, or SlicPairPM's context template.
    pub template: Option<&'a JinjaTemplate>,
    /// SlicPairPM: the model's own chat template and its BOS string.
    pub chat: Option<&'a JinjaTemplate>,
    pub bos: Option<&'a str>,
    /// PairRM: the prefix ids, in the order source, candidate 1, candidate 2.
    pub prefix_ids: [i64; 3],
    /// SteamSHP's truncation.
    pub max_length: usize,
}

impl Builder<'_> {
    /// The input with `a` shown first, after the `prompt` turns.
    pub fn build(
        &self,
        prompt: &[Message],
        a: &str,
        b: &str,
        order: &'static str,
        what: &str,
    ) -> Result<Built, InputError> {
        match self.kind {
            PairwiseKind::PairRm => self.pairrm(prompt, a, b, order, what),
            PairwiseKind::BetterPairRm => self.better_pairrm(prompt, a, b, order, what),
            PairwiseKind::SlicPairPm => self.slic(prompt, a, b, what),
            PairwiseKind::SteamShp => self.steamshp(prompt, a, b, what),
        }
    }

    fn encode(
        &self,
        text: &str,
        max: usize,
        side: TruncationSide,
        what: &str,
    ) -> Result<Vec<i64>, TokenizeError> {
        self.encoder.encode_truncated(text, max, side, true, what)
    }

    /// Each prefix id exactly once, as upstream's `torch.where` pairing needs.
    fn check_prefixes(&self, ids: &[i64], order: &'static str) -> Result<(), InputError> {
        for (token, &id) in [SOURCE_PREFIX, CAND1_PREFIX, CAND2_PREFIX]
            .into_iter()
            .zip(&self.prefix_ids)
        {
            let count = ids.iter().filter(|&&x| x == id).count();
            if count != 1 {
                return Err(InputError::Prefix {
                    token,
                    id,
                    count,
                    order,
                });
            }
        }
        Ok(())
    }

    /// pairrm.py `tokenize_conv_pair` + `tokenize_pair`.
    fn pairrm(
        &self,
        prompt: &[Message],
        a: &str,
        b: &str,
        order: &'static str,
        what: &str,
    ) -> Result<Built, InputError> {
        for (i, m) in prompt.iter().enumerate() {
            let want = if i % 2 == 0 { "user" } else { "assistant" };
            if m.role != want {
                return Err(InputError::Roles {
                    turn: i,
                    role: m.role.clone(),
                });
            }
        }
        if prompt.len() % 2 == 0 {
            return Err(InputError::Turns { len: prompt.len() });
        }
        let users: Vec<String> = prompt
            .iter()
            .step_by(2)
            .enumerate()
            .map(|(k, m)| format!("USER: {}\nAssistant: <Response {}>", m.content, k + 1))
            .collect();
        let source = format!("{PAIRRM_INSTRUCTION}{}", users.join("\n"));
        let candidate = |answer: &str| {
            let mut turns: Vec<String> = prompt
                .iter()
                .skip(1)
                .step_by(2)
                .map(|m| m.content.clone())
                .collect();
            turns.push(answer.to_string());
            turns
                .iter()
                .enumerate()
                .map(|(k, c)| format!("<Response {}>: {c}", k + 1))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (c1, c2) = (candidate(a), candidate(b));
        let max_length = PAIRRM_SOURCE_MAX + 2 * PAIRRM_CANDIDATE_MAX;
        let src_text = format!("{SOURCE_PREFIX}{source}");
        let src = self.encode(&src_text, PAIRRM_SOURCE_MAX, self.side, what)?;
        let cmax = max_length.saturating_sub(src.len()) / 2;
        let c1_text = format!("{CAND1_PREFIX}{c1}");
        let c2_text = format!("{CAND2_PREFIX}{c2}");
        let ids1 = self.encode(&c1_text, cmax, self.side, what)?;
        let ids2 = self.encode(&c2_text, cmax, self.side, what)?;
        let truncated = src.len() >= PAIRRM_SOURCE_MAX || ids1.len() >= cmax || ids2.len() >= cmax;
        let truncated = truncated
            && self.cut(
                &[
                    (&src_text, src.len()),
                    (&c1_text, ids1.len()),
                    (&c2_text, ids2.len()),
                ],
                what,
            )?;
        let ids: Vec<i64> = src.into_iter().chain(ids1).chain(ids2).collect();
        self.check_prefixes(&ids, order)?;
        Ok(Built {
            ids,
            prompt: source,
            text: format!("{src_text}{c1_text}{c2_text}"),
            truncated,
        })
    }

    /// Whether any of these texts has more tokens than it was given (only asked when a
    /// budget was reached).
    fn cut(&self, parts: &[(&str, usize)], what: &str) -> Result<bool, TokenizeError> {
        for (text, got) in parts {
            let full = self.encode(text, usize::MAX, self.side, what)?.len();
            if full > *got {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// betterpairrm.py `truncate_texts`: encode without special tokens, cut on `side`,
    /// decode without special tokens.
    fn truncate_text(
        &self,
        text: &str,
        max: usize,
        side: TruncationSide,
        what: &str,
    ) -> Result<(String, bool), TokenizeError> {
        let full = self
            .encoder
            .encode_truncated(text, usize::MAX, side, false, what)?;
        let ids = self
            .encoder
            .encode_truncated(text, max, side, false, what)?;
        let cut = full.len() > ids.len();
        Ok((self.encoder.decode(&ids, true, self.clean_up, what)?, cut))
    }

    /// betterpairrm.py `tokenize_conv_pair` + `tokenize_pair`.
    fn better_pairrm(
        &self,
        prompt: &[Message],
        a: &str,
        b: &str,
        order: &'static str,
        what: &str,
    ) -> Result<Built, InputError> {
        let rendered = match self.template {
            Some(t) => t.render(prompt, true)?,
            None => String::new(),
        };
        let (source, cut_s) =
            self.truncate_text(&rendered, BETTER_SOURCE_MAX, TruncationSide::Left, what)?;
        let (a, cut_a) =
            self.truncate_text(a, BETTER_CANDIDATE_MAX, TruncationSide::Right, what)?;
        let (b, cut_b) =
            self.truncate_text(b, BETTER_CANDIDATE_MAX, TruncationSide::Right, what)?;
        let prefix = self.encode(SOURCE_PREFIX, usize::MAX, TruncationSide::Right, what)?;
        let src_budget = BETTER_SOURCE_MAX.saturating_sub(prefix.len());
        let body = self.encode(&source, src_budget, TruncationSide::Left, what)?;
        let mut truncated = cut_s || cut_a || cut_b;
        if body.len() >= src_budget {
            truncated |= self
                .encode(&source, usize::MAX, TruncationSide::Left, what)?
                .len()
                > body.len();
        }
        let src: Vec<i64> = prefix.into_iter().chain(body).collect();
        let max_length = BETTER_SOURCE_MAX + 2 * BETTER_CANDIDATE_MAX;
        let cmax = max_length.saturating_sub(src.len()) / 2;
        let c1_text = format!("{CAND1_PREFIX}{a}");
        let c2_text = format!("{CAND2_PREFIX}{b}");
        let ids1 = self.encode(&c1_text, cmax, TruncationSide::Right, what)?;
        let ids2 = self.encode(&c2_text, cmax, TruncationSide::Right, what)?;
        if ids1.len() >= cmax || ids2.len() >= cmax {
            let parts = [
                (c1_text.as_str(), ids1.len()),
                (c2_text.as_str(), ids2.len()),
            ];
            truncated |= parts.iter().any(|(t, n)| {
                self.encoder
                    .encode_truncated(t, usize::MAX, TruncationSide::Right, true, what)
                    .is_ok_and(|full| full.len() > *n)
            });
        }
        let ids: Vec<i64> = src.into_iter().chain(ids1).chain(ids2).collect();
        self.check_prefixes(&ids, order)?;
        Ok(Built {
            ids,
            text: format!("{SOURCE_PREFIX}{source}{c1_text}{c2_text}"),
            prompt: source,
            truncated,
        })
    }

    /// slicpairpm.py `SlicPairPMPipeline.__call__` for one order.
    fn slic(&self, prompt: &[Message], a: &str, b: &str, what: &str) -> Result<Built, InputError> {
        let context = match self.template {
            Some(t) => t.render(prompt, false)?,
            None => String::new(),
        };
        let text = format!("[CONTEXT] {context} [RESPONSE A] {a} [RESPONSE B] {b} \n");
        let wrapped = match self.chat {
            Some(t) => t.render(&[Message::new("user", &text)], false)?,
            None => text,
        };
        let wrapped = match self.bos {
            Some(bos) if !bos.is_empty() => wrapped.replace(bos, ""),
            _ => wrapped,
        };
        let ids = self
            .encoder
            .encode_plain(&wrapped, what)?
            .into_iter()
            .map(i64::from)
            .collect();
        Ok(Built {
            ids,
            prompt: context,
            text: wrapped,
            truncated: false,
        })
    }

    /// shp.py `SHPPipeline._format_input` (the order given, not shuffled) and its
    /// `tokenizer(..., truncation=True, max_length=...)`.
    fn steamshp(
        &self,
        prompt: &[Message],
        a: &str,
        b: &str,
        what: &str,
    ) -> Result<Built, InputError> {
        let post = prompt
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let text = format!(
            "POST: {post}\n\n RESPONSE A: {a}\n\n RESPONSE B: {b}\n\n Which response is better? RESPONSE"
        );
        let ids = self.encode(&text, self.max_length, self.side, what)?;
        let truncated = ids.len() >= self.max_length && self.cut(&[(&text, ids.len())], what)?;
        Ok(Built {
            ids,
            prompt: post,
            text,
            truncated,
        })
    }
}
