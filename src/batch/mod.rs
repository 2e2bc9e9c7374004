//! Batching: which sequences run together ([`plan`]) and padding them into matrices
//! ([`tensors`]).

use crate::tokenize::Encoded;

/// How sequences are grouped into model calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// Unique texts sorted by length (longest first), right-padded. Scores do not depend on
    /// the batch: padding sits after the text, where a causal model never looks.
    Sorted,
    /// RewardBench's own batches: dataset order, `batch_size` rows per call, chosen and
    /// rejected texts in separate calls, left padding. Reproduces the reference's arithmetic,
    /// including its batch dependence for absolute-position models (reward-bench issue #137).
    Reference,
}

impl Batching {
    /// Name recorded in the summary.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sorted => "sorted",
            Self::Reference => "reference",
        }
    }
}

/// Which side of a row the padding goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

/// Size limits of one model call; 0 in a field means no limit there. A single unit larger
/// than a limit still gets a call of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Units per call (`--batch_size`: rows, or DPO's pairs).
    pub units: usize,
    /// Padded tokens per call: padded rows x longest row (`--max_batch_tokens`).
    pub tokens: usize,
    /// Attention scores per head and call: padded rows x longest row squared. An
    /// eager-attention graph holds several buffers of heads x that many floats at once, so
    /// this caps its memory ([`crate::scorer::call_limits`]); packed exports never hold them.
    pub scores: usize,
}

/// A planned model call. Each row of the call holds one sequence or, for a packed model
/// (`--attention gqa` exports), several sequences that share their leading tokens: the shared
/// prefix is computed once and each sequence's remaining tokens follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub rows: Vec<Vec<usize>>,
    pub side: Side,
}

impl Plan {
    /// A call with one sequence per row.
    pub fn singles(members: impl IntoIterator<Item = usize>, side: Side) -> Self {
        Self {
            rows: members.into_iter().map(|i| vec![i]).collect(),
            side,
        }
    }

    /// The call's sequences, row by row.
    pub fn members(&self) -> impl Iterator<Item = usize> + '_ {
        self.rows.iter().flatten().copied()
    }

    /// Number of sequences in the call.
    pub fn len(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width of the call: its longest row.
    pub fn width(&self, seqs: &[Encoded]) -> usize {
        self.rows
            .iter()
            .map(|r| row_len(seqs, r))
            .max()
            .unwrap_or(0)
    }
}

/// Leading tokens (id and mask) that all of `row`'s sequences share.
pub fn common_prefix(seqs: &[Encoded], row: &[usize]) -> usize {
    let Some((&first, rest)) = row.split_first() else {
        return 0;
    };
    let a = &seqs[first];
    rest.iter().fold(a.ids.len(), |n, &i| {
        let b = &seqs[i];
        (0..n.min(b.ids.len()))
            .find(|&j| a.ids[j] != b.ids[j] || a.mask[j] != b.mask[j])
            .unwrap_or(n.min(b.ids.len()))
    })
}

/// Tokens of a row: the shared prefix once, then each sequence's remaining tokens.
pub fn row_len(seqs: &[Encoded], row: &[usize]) -> usize {
    let p = common_prefix(seqs, row);
    p + row.iter().map(|&i| seqs[i].ids.len() - p).sum::<usize>()
}

mod plan;
mod tensors;

pub use plan::{
    pack_by_prompt, plan_reference, plan_sorted, plan_units, Fill, Order, MAX_ROW_TEXTS,
};
pub use tensors::{inputs, padding, shared_tokens, Packing, Padded};

#[cfg(test)]
mod test_util {
    use crate::tokenize::Encoded;

    pub fn enc(n: usize) -> Encoded {
        Encoded {
            ids: (1..=n as i64).collect(),
            mask: vec![1; n],
            truncated: false,
        }
    }

    pub fn enc_ids(ids: &[i64]) -> Encoded {
        Encoded {
            ids: ids.to_vec(),
            mask: vec![1; ids.len()],
            truncated: false,
        }
    }
}
