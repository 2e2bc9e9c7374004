//! DPO's tokenization rule (TRL's `tokenize_row`): prompt and answer tokenized together
//! without special tokens, the boundary token moved to the answer when it merges, BOS and EOS
//! added, and the reference's truncation to 2048 tokens.

use super::{Encoder, TokenizeError};

/// `max_length` of the reference's DPO tokenization.
pub const MAX_LENGTH: usize = 2048;
/// `max_prompt_length`: prompt tokens kept (the last ones) when a pair is too long.
pub const MAX_PROMPT_LENGTH: usize = 128;

/// Why a row cannot be tokenized the DPO way.
#[derive(Debug, thiserror::Error)]
pub enum DpoTokenizeError {
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    /// prompt + answer tokenize shorter than the prompt alone.
    #[error("the rendered prompt has {prompt} tokens but prompt + {side} answer only {full}")]
    Boundary {
        side: &'static str,
        prompt: usize,
        full: usize,
    },
}

/// The model input of one row: a sequence per completion (chosen ones first) and where
/// their responses start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DpoPair {
    /// Token ids per completion: prompt (with BOS) then response (with EOS).
    pub ids: Vec<Vec<i64>>,
    /// Prompt tokens at the start of each sequence (their labels are masked).
    pub prompt_len: Vec<usize>,
    /// Whether the last prompt token merged into the response (TRL's boundary rule applied).
    pub merged: Vec<bool>,
    /// How many of the sequences are chosen completions.
    pub chosen: usize,
}

impl DpoPair {
    /// `chosen` or `rejected`, for sequence `k`.
    pub fn side(&self, k: usize) -> &'static str {
        if k < self.chosen {
            "chosen"
        } else {
            "rejected"
        }
    }
}

/// Prompt ids, answer ids, and whether the last prompt token merged into the answer.
type Split = (Vec<i64>, Vec<i64>, bool);

/// Prompt and answer parts of `prompt + answer`, split as TRL's `build_tokenized_answer` does.
fn split_answer(
    enc: &Encoder,
    prompt_ids: &[u32],
    prompt: &str,
    answer: &str,
    what: &str,
) -> Result<Result<Split, usize>, TokenizeError> {
    let full = enc.encode_plain(&format!("{prompt}{answer}"), what)?;
    if full.len() < prompt_ids.len() {
        return Ok(Err(full.len()));
    }
    let mut start = prompt_ids.len();
    let merged = full[..start] != *prompt_ids;
    if merged {
        start -= 1;
    }
    let ids: Vec<i64> = full.iter().map(|&i| i64::from(i)).collect();
    Ok(Ok((ids[..start].to_vec(), ids[start..].to_vec(), merged)))
}

/// TRL's `tokenize_row` (RewardBench's `DPOInference`) for one rendered row: every
/// completion (chosen, then rejected) with the prompt; truncation looks at the longest
/// answer, as TRL does for two. `what` names the row in messages.
pub fn tokenize_row(
    enc: &Encoder,
    bos: i64,
    eos: i64,
    prompt: &str,
    chosen: &[String],
    rejected: &[String],
    what: &str,
) -> Result<DpoPair, DpoTokenizeError> {
    let prompt_text = prompt;
    let prompt_ids = enc.encode_plain(prompt_text, &format!("{what}: prompt"))?;
    let mut parts = Vec::with_capacity(chosen.len() + rejected.len());
    let sides = chosen.iter().map(|t| ("chosen", t));
    for (side, text) in sides.chain(rejected.iter().map(|t| ("rejected", t))) {
        let response = text.replace(prompt_text, "");
        let (p, mut a, merged) = split_answer(
            enc,
            &prompt_ids,
            prompt_text,
            &response,
            &format!("{what}: {side} text"),
        )?
        .map_err(|full| DpoTokenizeError::Boundary {
            side,
            prompt: prompt_ids.len(),
            full,
        })?;
        let mut prompt = Vec::with_capacity(p.len() + 1);
        prompt.push(bos);
        prompt.extend(p);
        a.push(eos);
        parts.push((prompt, a, merged));
    }
    let longer = parts.iter().map(|p| p.1.len()).max().unwrap_or(0);
    for (prompt, answer, _) in &mut parts {
        if prompt.len() + longer > MAX_LENGTH {
            let cut = prompt.len().saturating_sub(MAX_PROMPT_LENGTH);
            prompt.drain(..cut);
        }
        // the check uses the longer answer's length, as the reference does
        if prompt.len() + longer > MAX_LENGTH {
            answer.truncate(MAX_LENGTH - MAX_PROMPT_LENGTH);
        }
    }
    let mut out = DpoPair {
        chosen: chosen.len(),
        ..DpoPair::default()
    };
    for (mut p, a, m) in parts {
        out.prompt_len.push(p.len());
        p.extend(a);
        out.ids.push(p);
        out.merged.push(m);
    }
    Ok(out)
}
