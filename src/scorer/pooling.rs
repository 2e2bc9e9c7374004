//! Pooling rules: where a per-token export's score is read (`--pooling`).
//!
//! A per-token export (`export_rm.py --per_token`) gives the head at every position; which
//! position is the text's score differs between upstream reward models, and each rule here is
//! the index formula upstream writes, on a padded batch `ids`, `mask` of width `L`:
//!
//! | rule | formula | upstream |
//! |---|---|---|
//! | `last_non_pad` | `argmax(arange(L) * (ids != pad))` | transformers >= 4.49 |
//! | `first_pad_minus_one` | `(argmax(ids == pad) - 1) mod L` | transformers < 4.49, Starling, INF-ORM, OLMo-2 |
//! | `last_attended` | `argmax(cumsum(mask))` | UltraRM (Beaver's `mask.nonzero()[-1]` is the same index) |
//! | `mask_sum_minus_one` | `sum(mask) - 1` (mod L) | Skywork-VL |
//! | `grm` | `L - 1` for every row if any row has `mask[:, 0] == 0`, else `sum(mask) - 1` | GRM |
//!
//! `argmax` returns the first maximum, as torch does. [`Scope::Alone`] applies a rule to each
//! text by itself (a batch of one, as if unpadded); [`Scope::Call`] to the padded call as it
//! ran, rows and padding included (GRM's batch-wide test, and rules that land in padding).

use ndarray::ArrayView2;

/// Where a per-token export's score is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// The last token whose id is not the pad id (transformers >= 4.49; what a pooled export does).
    LastNonPad,
    /// The token before the first pad id, or the last one when there is none (older transformers).
    FirstPadMinusOne,
    /// The last position whose attention mask is 1.
    LastAttended,
    /// The number of attended positions minus one.
    MaskSumMinusOne,
    /// GRM: the last column when any row's first column is masked (left padding), else
    /// `mask_sum_minus_one`.
    Grm,
}

impl Pooling {
    /// Every rule, in the order the documentation lists them.
    pub const ALL: [Self; 5] = [
        Self::LastNonPad,
        Self::FirstPadMinusOne,
        Self::LastAttended,
        Self::MaskSumMinusOne,
        Self::Grm,
    ];

    /// The flag value.
    pub fn label(self) -> &'static str {
        match self {
            Self::LastNonPad => "last_non_pad",
            Self::FirstPadMinusOne => "first_pad_minus_one",
            Self::LastAttended => "last_attended",
            Self::MaskSumMinusOne => "mask_sum_minus_one",
            Self::Grm => "grm",
        }
    }

    /// The rule a flag value names (`-` and `_` alike).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.replace('-', "_");
        Self::ALL.into_iter().find(|r| r.label() == s)
    }

    /// The rule's position in every row of a padded call (`ids`, `mask`: `[rows, L]`), as
    /// upstream's formula gives it. A zero-width call has no position: every row gets 0.
    pub fn positions(self, ids: ArrayView2<i64>, mask: ArrayView2<i64>, pad: i64) -> Vec<usize> {
        let (rows, width) = ids.dim();
        if width == 0 {
            return vec![0; rows];
        }
        let wrap = |p: i64| p.rem_euclid(width as i64) as usize;
        let attended = |r: usize| mask.row(r).iter().filter(|&&m| m != 0).count() as i64;
        let left_padded = (0..rows).any(|r| mask[[r, 0]] == 0);
        (0..rows)
            .map(|r| {
                let ids = ids.row(r);
                let mask = mask.row(r);
                match self {
                    Self::LastNonPad => ids.iter().rposition(|&x| x != pad).unwrap_or(0),
                    Self::FirstPadMinusOne => {
                        let first = ids.iter().position(|&x| x == pad).unwrap_or(0);
                        wrap(first as i64 - 1)
                    }
                    Self::LastAttended => mask.iter().rposition(|&m| m != 0).unwrap_or(0),
                    Self::MaskSumMinusOne => wrap(attended(r) - 1),
                    Self::Grm if left_padded => width - 1,
                    Self::Grm => wrap(attended(r) - 1),
                }
            })
            .collect()
    }
}

/// Which rows a rule sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Each text by itself, as upstream scores it in a batch of one: the score never depends
    /// on the batch (sorted batching, which keys scores by text).
    Alone,
    /// The padded call as it ran (reference batching: RewardBench's own batches).
    Call,
}

/// Where a text sits in its row of a call: columns `offset..offset + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

/// One text's head output at each of its positions, and where its score was read (`None`: in
/// the call's padding, which a rule applied to RewardBench's left-padded batches can reach).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub values: Vec<Vec<f32>>,
    pub pooled_at: Option<usize>,
}

/// The column of each row's score in a call of one text per row.
pub fn pool(
    rule: Pooling,
    scope: Scope,
    ids: ArrayView2<i64>,
    mask: ArrayView2<i64>,
    pad: i64,
    spans: &[Span],
) -> Vec<usize> {
    match scope {
        Scope::Call => rule.positions(ids, mask, pad),
        Scope::Alone => spans
            .iter()
            .enumerate()
            .map(|(r, s)| {
                let cols = s.offset..s.offset + s.len;
                let ids = ids.slice(ndarray::s![r..r + 1, cols.clone()]);
                let mask = mask.slice(ndarray::s![r..r + 1, cols]);
                s.offset + rule.positions(ids, mask, pad)[0]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    fn at(rule: Pooling, ids: &Array2<i64>, mask: &Array2<i64>, pad: i64) -> Vec<usize> {
        rule.positions(ids.view(), mask.view(), pad)
    }

    #[test]
    fn labels_round_trip() {
        for r in Pooling::ALL {
            assert_eq!(Pooling::parse(r.label()), Some(r));
        }
        assert_eq!(
            Pooling::parse("first-pad-minus-one"),
            Some(Pooling::FirstPadMinusOne)
        );
        assert_eq!(Pooling::parse("last"), None);
    }

    /// Right padding (pad 0), a masked double BOS (9) in row 1, a pad id inside row 0's text.
    #[test]
    fn the_upstream_formulas_on_a_right_padded_call() {
        let ids = array![[5, 0, 6, 7, 0, 0], [9, 9, 4, 0, 0, 0]];
        let mask = array![[1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 0, 0]];
        assert_eq!(at(Pooling::LastNonPad, &ids, &mask, 0), [3, 2]);
        assert_eq!(at(Pooling::FirstPadMinusOne, &ids, &mask, 0), [0, 2]);
        assert_eq!(at(Pooling::LastAttended, &ids, &mask, 0), [3, 2]);
        assert_eq!(at(Pooling::MaskSumMinusOne, &ids, &mask, 0), [3, 1]);
        // row 1's masked first column reads as left padding: the last column for every row
        assert_eq!(at(Pooling::Grm, &ids, &mask, 0), [5, 5]);
        let unmasked = array![[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]];
        assert_eq!(at(Pooling::Grm, &ids, &unmasked, 0), [3, 2]);
    }

    #[test]
    fn left_padding_and_the_edges() {
        // left-padded: the row's first column is padding, so first_pad - 1 wraps to L - 1
        let ids = array![[0, 0, 5, 6], [7, 0, 8, 9]];
        let mask = array![[0, 0, 1, 1], [1, 1, 1, 1]];
        assert_eq!(at(Pooling::FirstPadMinusOne, &ids, &mask, 0), [3, 0]);
        assert_eq!(at(Pooling::MaskSumMinusOne, &ids, &mask, 0), [1, 3]);
        assert_eq!(at(Pooling::Grm, &ids, &mask, 0), [3, 3]);
        assert_eq!(at(Pooling::LastAttended, &ids, &mask, 0), [3, 3]);
        // no pad id at all: first_pad - 1 is the last column; all pad ids: last_non_pad is 0
        let ids = array![[0, 0, 0], [4, 5, 6]];
        let mask = array![[1, 1, 1], [1, 1, 1]];
        assert_eq!(at(Pooling::LastNonPad, &ids, &mask, 0), [0, 2]);
        assert_eq!(at(Pooling::FirstPadMinusOne, &ids, &mask, 0), [2, 2]);
        // nothing attended: the sum rule wraps to L - 1, cumsum's argmax is 0
        let none = array![[0, 0, 0], [0, 0, 0]];
        assert_eq!(at(Pooling::MaskSumMinusOne, &ids, &none, 0), [2, 2]);
        assert_eq!(at(Pooling::LastAttended, &ids, &none, 0), [0, 0]);
        let empty = Array2::<i64>::zeros((2, 0));
        assert_eq!(at(Pooling::Grm, &empty, &empty, 0), [0, 0]);
    }

    #[test]
    fn alone_reads_each_text_by_itself() {
        // a right-padded call: row 1's masked first column makes the call-wide GRM read the
        // padding of row 0; alone, each text reads its own last token
        let ids = array![[5, 6, 7, 0], [9, 9, 4, 0]];
        let mask = array![[1, 1, 1, 0], [0, 1, 1, 0]];
        let spans = [Span { offset: 0, len: 3 }, Span { offset: 0, len: 3 }];
        let grm = |scope| pool(Pooling::Grm, scope, ids.view(), mask.view(), 0, &spans);
        assert_eq!(grm(Scope::Call), [3, 3]);
        assert_eq!(grm(Scope::Alone), [2, 2]);
        // left padding: offsets are added back
        let ids = array![[0, 0, 5, 0], [9, 9, 4, 8]];
        let mask = array![[0, 0, 1, 1], [0, 1, 1, 1]];
        let spans = [Span { offset: 2, len: 2 }, Span { offset: 0, len: 4 }];
        let first_pad = |scope| {
            pool(
                Pooling::FirstPadMinusOne,
                scope,
                ids.view(),
                mask.view(),
                0,
                &spans,
            )
        };
        assert_eq!(first_pad(Scope::Alone), [2, 3]);
        assert_eq!(first_pad(Scope::Call), [3, 3]);
    }
}
