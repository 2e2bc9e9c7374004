//! Completion lengths, in characters and in the model's tokens: the input of the length
//! baselines.

use crate::data::Sample;

use super::{Encoder, TokenizeError};

/// A completion's length: characters (Unicode scalar values, as Python's `len`) and, when a
/// tokenizer is known, tokens (without special tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Length {
    pub chars: usize,
    pub tokens: Option<usize>,
}

impl Length {
    pub fn of_text(text: &str, tokens: Option<usize>) -> Self {
        Self {
            chars: text.chars().count(),
            tokens,
        }
    }
}

/// A sample's completion lengths, chosen (correct) first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleLengths {
    pub chosen: Vec<Length>,
    pub rejected: Vec<Length>,
}

/// A sample's completion lengths; tokens with `encoder` (no special tokens), when given.
pub fn of_sample(row: &Sample, encoder: Option<&Encoder>) -> Result<SampleLengths, TokenizeError> {
    let measure = |texts: &[String], side: &str| -> Result<Vec<Length>, TokenizeError> {
        texts
            .iter()
            .map(|t| {
                let tokens = match encoder {
                    Some(e) => Some(
                        e.encode_plain(t, &format!("{}: {side} completion", row.place))?
                            .len(),
                    ),
                    None => None,
                };
                Ok(Length::of_text(t, tokens))
            })
            .collect()
    };
    Ok(SampleLengths {
        chosen: measure(&row.chosen, "chosen")?,
        rejected: measure(&row.rejected, "rejected")?,
    })
}

/// A sample's completion lengths in characters only (no tokenizer: a judge's run).
pub fn chars_only(row: &Sample) -> SampleLengths {
    let measure = |texts: &[String]| texts.iter().map(|t| Length::of_text(t, None)).collect();
    SampleLengths {
        chosen: measure(&row.chosen),
        rejected: measure(&row.rejected),
    }
}
