//! Batching: which sequences run together, and padding them into matrices.

use ndarray::Array2;

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

/// Groups rows (each a list of sequences) of the given lengths into calls, longest first:
/// each call holds at most `batch_size` rows and at most `max_tokens` padded tokens (rows x
/// longest; a single longer row gets a call of its own; 0 means no token cap).
pub fn plan_sorted(
    rows: Vec<Vec<usize>>,
    lengths: &[usize],
    batch_size: usize,
    max_tokens: usize,
) -> Vec<Plan> {
    plan_units(
        rows,
        lengths,
        batch_size,
        max_tokens,
        Order::LongestFirst,
        |_| 1,
    )
}

/// The order units are planned in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Longest first (a batch that does not fit in memory fails at once); ties keep input order.
    LongestFirst,
    /// As given (the dataset's order).
    AsGiven,
}

/// Groups units (each a list of sequences that must share a call) of the given lengths into
/// right-padded calls in `order`: each call holds at most `batch_size` units and at most
/// `max_tokens` padded tokens (padded rows x longest; a single larger unit gets a call of its
/// own; 0 means no cap). `padded_rows(unit)` is the rows a unit takes: 1 for a packed row,
/// its sequence count when each sequence is a row of its own (DPO's chosen and rejected).
pub fn plan_units(
    units: Vec<Vec<usize>>,
    lengths: &[usize],
    batch_size: usize,
    max_tokens: usize,
    order: Order,
    padded_rows: impl Fn(&[usize]) -> usize,
) -> Vec<Plan> {
    let mut sequence: Vec<usize> = (0..units.len()).collect();
    if order == Order::LongestFirst {
        sequence.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    }
    let cap = if max_tokens == 0 {
        usize::MAX
    } else {
        max_tokens
    };
    let mut slots: Vec<Option<Vec<usize>>> = units.into_iter().map(Some).collect();
    let mut plans: Vec<Plan> = Vec::new();
    let mut current: Vec<Vec<usize>> = Vec::new();
    let (mut width, mut rows) = (0, 0);
    for i in sequence {
        let Some(unit) = slots[i].take() else {
            continue;
        };
        let n = padded_rows(&unit);
        let w = width.max(lengths[i].max(1));
        if !current.is_empty()
            && (current.len() >= batch_size.max(1) || (rows + n).saturating_mul(w) > cap)
        {
            plans.push(Plan {
                rows: std::mem::take(&mut current),
                side: Side::Right,
            });
            (width, rows) = (0, 0);
        }
        width = width.max(lengths[i].max(1));
        rows += n;
        current.push(unit);
    }
    if !current.is_empty() {
        plans.push(Plan {
            rows: current,
            side: Side::Right,
        });
    }
    plans
}

/// Most sequences packed into one row: rows grow quadratically in attention cost.
pub const MAX_ROW_TEXTS: usize = 4;

/// Packs sequences that belong to the same prompt into shared-prefix rows, in first-seen
/// order: `groups` lists each sequence with its prompt key (a sequence already listed is
/// skipped). A sequence joins its prompt's row only when that is cheaper than a row of its
/// own: it saves the shared prefix's tokens, but the longer row costs attention between all
/// its tokens. Cost of a row of `n` tokens: `token_cost * n + n * n`, where `token_cost` is one
/// token's work outside attention in units of one query-key pair of attention
/// ([`crate::model::ModelFiles::token_cost`]). No row grows past `max_len` tokens (the
/// model's positions: its rotary table is that long).
pub fn pack_by_prompt<'a>(
    seqs: &[Encoded],
    groups: impl IntoIterator<Item = (&'a str, usize)>,
    token_cost: f64,
    max_len: Option<usize>,
) -> Vec<Vec<usize>> {
    let cost = |n: usize| token_cost * n as f64 + (n * n) as f64;
    let mut seen = vec![false; seqs.len()];
    let mut open: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut rows: Vec<Vec<usize>> = Vec::new();
    for (key, i) in groups {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        let joins = |row: &Vec<usize>| {
            let mut with = row.clone();
            with.push(i);
            let len = row_len(seqs, &with);
            row.len() < MAX_ROW_TEXTS
                && max_len.is_none_or(|m| len <= m)
                && cost(len) < cost(row_len(seqs, row)) + cost(seqs[i].ids.len())
        };
        match open.get(key) {
            Some(&r) if joins(&rows[r]) => rows[r].push(i),
            _ => {
                open.insert(key, rows.len());
                rows.push(vec![i]);
            }
        }
    }
    rows
}

/// RewardBench's batches: rows in dataset order, `batch_size` rows a chunk, and per chunk
/// one call for each text position (all chosen texts, then all rejected ones), left-padded.
pub fn plan_reference(seq_of: &[Vec<usize>], batch_size: usize) -> Vec<Plan> {
    seq_of
        .chunks(batch_size.max(1))
        .flat_map(|chunk| {
            let texts = chunk.iter().map(Vec::len).max().unwrap_or(0);
            (0..texts).map(move |k| {
                Plan::singles(chunk.iter().filter_map(|r| r.get(k).copied()), Side::Left)
            })
        })
        .collect()
}

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
    use super::*;

    fn enc(n: usize) -> Encoded {
        Encoded {
            ids: (1..=n as i64).collect(),
            mask: vec![1; n],
        }
    }

    fn enc_ids(ids: &[i64]) -> Encoded {
        Encoded {
            ids: ids.to_vec(),
            mask: vec![1; ids.len()],
        }
    }

    fn planned(lengths: &[usize], batch_size: usize, max_tokens: usize) -> Vec<Vec<usize>> {
        let rows = (0..lengths.len()).map(|i| vec![i]).collect();
        plan_sorted(rows, lengths, batch_size, max_tokens)
            .into_iter()
            .map(|p| p.members().collect())
            .collect()
    }

    #[test]
    fn sorted_plan_is_longest_first_and_complete() {
        assert_eq!(
            planned(&[3, 9, 1, 9, 5], 2, 0),
            vec![vec![1, 3], vec![4, 0], vec![2]]
        );
    }

    #[test]
    fn token_budget_caps_padded_tokens() {
        // Budget 10: [12] alone, [9] alone (9+9 > 10), then 5 and 3 (2 x 5 = 10), then 1.
        let lengths = [3, 9, 1, 12, 5];
        let plans = planned(&lengths, 8, 10);
        assert_eq!(plans, vec![vec![3], vec![1], vec![4, 0], vec![2]]);
        for p in &plans {
            let width = p.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(p.len() == 1 || p.len() * width <= 10);
        }
    }

    #[test]
    fn units_of_several_rows_count_each_row_against_the_cap() {
        // Pairs as units (2 padded rows each), DPO's rule: 2 x pairs x longest <= cap.
        let units = vec![vec![0, 1], vec![2, 3], vec![4, 5]];
        let lengths = [10, 6, 4];
        let plans = plan_units(units.clone(), &lengths, 8, 24, Order::AsGiven, |u| u.len());
        let members: Vec<Vec<usize>> = plans.iter().map(|p| p.members().collect()).collect();
        // [0,1] alone (2 x 2 x 10 = 40 > 24 with the next), then 2 x 2 x 6 = 24 fits
        assert_eq!(members, vec![vec![0, 1], vec![2, 3, 4, 5]]);
        let sorted = plan_units(units, &[4, 10, 6], 2, 0, Order::LongestFirst, |u| u.len());
        let members: Vec<Vec<usize>> = sorted.iter().map(|p| p.members().collect()).collect();
        assert_eq!(members, vec![vec![2, 3, 4, 5], vec![0, 1]]);
    }

    #[test]
    fn reference_plan_splits_chosen_and_rejected() {
        let plans = plan_reference(&[vec![0, 1], vec![2, 3], vec![4, 5]], 2);
        let members: Vec<Vec<usize>> = plans.iter().map(|p| p.members().collect()).collect();
        assert_eq!(members, vec![vec![0, 2], vec![1, 3], vec![4], vec![5]]);
        assert!(plans.iter().all(|p| p.side == Side::Left));
    }

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

    #[test]
    fn packing_by_prompt_groups_answers_of_one_prompt() {
        let seqs = vec![
            enc_ids(&[1, 2, 3]),
            enc_ids(&[1, 2, 4]),
            enc_ids(&[9, 9]),
            enc_ids(&[1, 2, 5]),
            enc_ids(&[7]),
        ];
        let texts = [("a", 0), ("a", 1), ("b", 2), ("b", 4), ("a", 3), ("a", 1)];
        // 4 shares no token with 2, so it stays alone; 1 is listed twice but packed once
        assert_eq!(
            pack_by_prompt(&seqs, texts, 100.0, None),
            vec![vec![0, 1, 3], vec![2], vec![4]]
        );
    }

    #[test]
    fn long_answers_to_a_short_prompt_stay_apart() {
        // prefix 2, answers 40 and 60: saves 2 tokens, adds 2*40*60 - 2*2 attention pairs
        let answer = |n: usize, base: i64| (0..n as i64).map(|j| base + j).collect::<Vec<_>>();
        let a = [vec![1, 2], answer(40, 100)].concat();
        let b = [vec![1, 2], answer(60, 1000)].concat();
        let seqs = vec![enc_ids(&a), enc_ids(&b)];
        let texts = [("p", 0), ("p", 1)];
        assert_eq!(
            pack_by_prompt(&seqs, texts, 1000.0, None),
            vec![vec![0], vec![1]]
        );
        assert_eq!(pack_by_prompt(&seqs, texts, 3000.0, None), vec![vec![0, 1]]);
        // the packed row (102 tokens) must fit the model's positions
        assert_eq!(
            pack_by_prompt(&seqs, texts, 3000.0, Some(101)),
            vec![vec![0], vec![1]]
        );
        assert_eq!(
            pack_by_prompt(&seqs, texts, 3000.0, Some(102)),
            vec![vec![0, 1]]
        );
    }
}
