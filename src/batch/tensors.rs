//! Padded tensors of a planned call: ids and mask, and the packed contract's extra inputs.

use ndarray::Array2;

use super::{common_prefix, row_len, Plan, Side};
use crate::tokenize::Encoded;

/// A padded model call.
#[derive(Debug, Clone, PartialEq)]
pub struct Padded {
    /// `[rows, width]` token ids and attention mask.
    pub ids: Array2<i64>,
    pub mask: Array2<i64>,
    /// The packed model's extra inputs, when the call is for one.
    pub packing: Option<Packing>,
}

/// Inputs of the packed contract (export/packing.py documents it).
#[derive(Debug, Clone, PartialEq)]
pub struct Packing {
    /// `[rows, width]`: each token's position within its own sequence (plus the row's left
    /// padding, as transformers numbers left-padded rows).
    pub positions: Array2<i64>,
    /// `[rows, width]`: 0 for the shared prefix, k for the k-th sequence's own tokens.
    pub segments: Array2<i64>,
    /// `[rows, texts]`: where each sequence's score is read.
    pub pool: Array2<i64>,
    /// Sequences in each row (the rest of `pool`'s row is filler).
    pub texts: Vec<usize>,
}

/// The model inputs of a planned call, padded to its longest row on `plan.side`. `packed`
/// (the packed contract): each row is its sequences' shared prefix, then each sequence's
/// remaining tokens, with positions, segments and pooling indices. Otherwise one sequence
/// per row, ids and mask only (the plain contract).
pub fn inputs(seqs: &[Encoded], plan: &Plan, pad_id: i64, packed: bool) -> Padded {
    let singles;
    let rows = if packed {
        &plan.rows
    } else {
        singles = Plan::singles(plan.members(), plan.side).rows;
        &singles
    };
    let width = rows.iter().map(|r| row_len(seqs, r)).max().unwrap_or(0);
    let texts: Vec<usize> = rows.iter().map(Vec::len).collect();
    let k = texts.iter().copied().max().unwrap_or(1).max(1);
    let n = rows.len();
    let mut ids = Array2::from_elem((n, width), pad_id);
    let mut mask = Array2::zeros((n, width));
    let mut positions = Array2::from_shape_fn((n, width), |(_, c)| c as i64);
    let mut segments = Array2::zeros((n, width));
    let mut pool = Array2::zeros((n, k));
    for (r, row) in rows.iter().enumerate() {
        let p = common_prefix(seqs, row);
        let offset = match plan.side {
            Side::Left => width - row_len(seqs, row),
            Side::Right => 0,
        };
        let mut col = offset;
        let mut put = |col: usize, s: &Encoded, j: usize, seg: usize| {
            ids[[r, col]] = s.ids[j];
            mask[[r, col]] = s.mask[j];
            positions[[r, col]] = (offset + j) as i64;
            segments[[r, col]] = seg as i64;
        };
        if let Some(&first) = row.first() {
            for j in 0..p {
                put(col, &seqs[first], j, 0);
                col += 1;
            }
        }
        for (t, &i) in row.iter().enumerate() {
            let s = &seqs[i];
            let start = col;
            for j in p..s.ids.len() {
                put(col, s, j, t + 1);
                col += 1;
            }
            // transformers pools column 0 of the padded row when no token qualifies
            pool[[r, t]] = match s.ids.iter().rposition(|&x| x != pad_id) {
                None => 0,
                Some(last) if last < p => (offset + last) as i64,
                Some(last) => (start + last - p) as i64,
            };
        }
    }
    Padded {
        ids,
        mask,
        packing: packed.then_some(Packing {
            positions,
            segments,
            pool,
            texts,
        }),
    }
}

/// Padding statistics of a plan: (pad tokens, computed tokens).
pub fn padding(seqs: &[Encoded], plans: &[Plan]) -> (usize, usize) {
    let mut pads = 0;
    let mut total = 0;
    for p in plans {
        let width = p.width(seqs);
        total += width * p.rows.len();
        pads += p
            .rows
            .iter()
            .map(|r| width - row_len(seqs, r))
            .sum::<usize>();
    }
    (pads, total)
}

/// Tokens a plan does not compute because rows share prefixes.
pub fn shared_tokens(seqs: &[Encoded], plans: &[Plan]) -> usize {
    plans
        .iter()
        .flat_map(|p| &p.rows)
        .map(|r| r.iter().map(|&i| seqs[i].ids.len()).sum::<usize>() - row_len(seqs, r))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{enc, enc_ids};
    use super::*;

    #[test]
    fn padding_sides() {
        let seqs = vec![enc(1), enc(3)];
        let p = inputs(&seqs, &Plan::singles([0, 1], Side::Left), 0, false);
        assert_eq!(p.ids.row(0).to_vec(), vec![0, 0, 1]);
        assert_eq!(p.mask.row(0).to_vec(), vec![0, 0, 1]);
        let right = Plan::singles([0, 1], Side::Right);
        let p = inputs(&seqs, &right, 9, false);
        assert!(p.packing.is_none());
        assert_eq!(p.ids.row(0).to_vec(), vec![1, 9, 9]);
        assert_eq!(p.mask.row(0).to_vec(), vec![1, 0, 0]);
        assert_eq!(p.ids.row(1).to_vec(), vec![1, 2, 3]);
        assert_eq!(padding(&seqs, &[right]), (2, 6));
    }

    #[test]
    fn packed_rows_share_their_prefix() {
        // 0 and 1 share [5, 6, 7]; 2 is a prefix of 0; 3 is alone and ends in pad ids (0).
        let seqs = vec![
            enc_ids(&[5, 6, 7, 8, 9]),
            enc_ids(&[5, 6, 7, 4]),
            enc_ids(&[5, 6]),
            enc_ids(&[3, 0, 0]),
        ];
        assert_eq!(common_prefix(&seqs, &[0, 1]), 3);
        assert_eq!(common_prefix(&seqs, &[0, 1, 2]), 2);
        assert_eq!(row_len(&seqs, &[0, 1, 2]), 2 + 3 + 2);
        let plan = Plan {
            rows: vec![vec![0, 1, 2], vec![3]],
            side: Side::Right,
        };
        let p = inputs(&seqs, &plan, 0, true);
        let k = p.packing.unwrap();
        assert_eq!(p.ids.row(0).to_vec(), vec![5, 6, 7, 8, 9, 7, 4]);
        assert_eq!(k.segments.row(0).to_vec(), vec![0, 0, 1, 1, 1, 2, 2]);
        assert_eq!(k.positions.row(0).to_vec(), vec![0, 1, 2, 3, 4, 2, 3]);
        // text 2 ([5, 6]) has no tokens of its own: its score is read at the prefix's end
        assert_eq!(k.pool.row(0).to_vec(), vec![4, 6, 1]);
        assert_eq!(p.ids.row(1).to_vec(), vec![3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(p.mask.row(1).to_vec(), vec![1, 1, 1, 0, 0, 0, 0]);
        // pooled before the trailing pad ids; k padded with 0
        assert_eq!(k.pool.row(1).to_vec(), vec![0, 0, 0]);
        assert_eq!(k.texts, vec![3, 1]);
        assert_eq!(padding(&seqs, std::slice::from_ref(&plan)), (4, 14));
        assert_eq!(shared_tokens(&seqs, &[plan]), 11 - 7);
    }

    #[test]
    fn left_packed_positions_count_the_padding() {
        let seqs = vec![enc(2), enc(4)];
        let p = inputs(&seqs, &Plan::singles([0, 1], Side::Left), 0, true);
        let k = p.packing.unwrap();
        assert_eq!(p.ids.row(0).to_vec(), vec![0, 0, 1, 2]);
        assert_eq!(k.positions.row(0).to_vec(), vec![0, 1, 2, 3]);
        assert_eq!(k.pool.column(0).to_vec(), vec![3, 3]);
    }
}
