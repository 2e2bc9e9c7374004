//! Planning: which rows go into which model call (sorted, in dataset order, RewardBench's
//! exact batches, shared-prefix rows).

use super::{row_len, Limits, Plan, Side};
use crate::tokenize::Encoded;

/// Groups rows (each a list of sequences) of the given lengths into calls, longest first,
/// each call within `limits` (a single larger row gets a call of its own).
pub fn plan_sorted(rows: Vec<Vec<usize>>, lengths: &[usize], limits: Limits) -> Vec<Plan> {
    plan_units(
        rows,
        lengths,
        limits,
        Order::LongestFirst,
        Fill::Greedy,
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

/// How calls are filled along the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// A call takes units until `batch_size` or the token cap is reached.
    Greedy,
    /// The order is cut into chunks of `batch_size` units first (RewardBench's batches), and a
    /// chunk is split further only by the token cap; a chunk's rest never joins the next one.
    Chunks,
}

/// Groups units (each a list of sequences that must share a call) of the given lengths into
/// right-padded calls in `order`, filled as `fill` says: each call holds at most
/// `limits.units` units, `limits.tokens` padded tokens (padded rows x longest) and
/// `limits.scores` attention scores per head (padded rows x longest squared); a single larger
/// unit gets a call of its own, and 0 means no limit. `padded_rows(unit)` is the rows a unit
/// takes: 1 for a packed row, its sequence count when each sequence is a row of its own
/// (DPO's chosen and rejected).
pub fn plan_units(
    units: Vec<Vec<usize>>,
    lengths: &[usize],
    limits: Limits,
    order: Order,
    fill: Fill,
    padded_rows: impl Fn(&[usize]) -> usize,
) -> Vec<Plan> {
    let mut sequence: Vec<usize> = (0..units.len()).collect();
    if order == Order::LongestFirst {
        sequence.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    }
    let cap = |limit: usize| if limit == 0 { usize::MAX } else { limit };
    let (batch_size, tokens, scores) = (limits.units, cap(limits.tokens), cap(limits.scores));
    let mut slots: Vec<Option<Vec<usize>>> = units.into_iter().map(Some).collect();
    let mut plans: Vec<Plan> = Vec::new();
    let mut current: Vec<Vec<usize>> = Vec::new();
    let (mut width, mut rows) = (0, 0);
    for (at, i) in sequence.into_iter().enumerate() {
        let Some(unit) = slots[i].take() else {
            continue;
        };
        let n = padded_rows(&unit);
        let w = width.max(lengths[i].max(1));
        let chunk_starts = fill == Fill::Chunks && at % batch_size.max(1) == 0;
        if !current.is_empty()
            && (chunk_starts
                || current.len() >= batch_size.max(1)
                || (rows + n).saturating_mul(w) > tokens
                || (rows + n).saturating_mul(w).saturating_mul(w) > scores)
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

#[cfg(test)]
mod tests {
    use super::super::test_util::enc_ids;
    use super::*;

    fn lim(units: usize, tokens: usize) -> Limits {
        Limits {
            units,
            tokens,
            scores: 0,
        }
    }

    fn planned(lengths: &[usize], batch_size: usize, max_tokens: usize) -> Vec<Vec<usize>> {
        let rows = (0..lengths.len()).map(|i| vec![i]).collect();
        plan_sorted(rows, lengths, lim(batch_size, max_tokens))
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
    fn score_cap_limits_rows_times_longest_squared() {
        // Lengths 10, 10, 10, 4, 4, 4, 4; tokens alone would allow 3 x 10 and 4 x 4. Scores
        // cap 250: 2 x 10^2 = 200 fits, 3 x 100 does not; 4 x 4^2 = 64 fits.
        let lengths = [10, 10, 10, 4, 4, 4, 4];
        let rows: Vec<Vec<usize>> = (0..lengths.len()).map(|i| vec![i]).collect();
        let limits = Limits {
            units: 8,
            tokens: 30,
            scores: 250,
        };
        let plans: Vec<Vec<usize>> = plan_sorted(rows.clone(), &lengths, limits)
            .iter()
            .map(|p| p.members().collect())
            .collect();
        assert_eq!(plans, vec![vec![0, 1], vec![2, 3], vec![4, 5, 6]]);
        for p in &plans {
            let w = p.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(p.len() * w * w <= 250 && p.len() * w <= 30);
        }
        // a single row past the cap still runs, alone
        let one = plan_sorted(
            rows,
            &lengths,
            Limits {
                scores: 50,
                ..limits
            },
        );
        assert_eq!(one[0].rows, vec![vec![0]]);
        assert_eq!(one.iter().map(Plan::len).sum::<usize>(), lengths.len());
    }

    #[test]
    fn units_of_several_rows_count_each_row_against_the_cap() {
        // Pairs as units (2 padded rows each), DPO's rule: 2 x pairs x longest <= cap.
        let units = vec![vec![0, 1], vec![2, 3], vec![4, 5]];
        let lengths = [10, 6, 4];
        let plans = plan_units(
            units.clone(),
            &lengths,
            lim(8, 24),
            Order::AsGiven,
            Fill::Greedy,
            |u| u.len(),
        );
        let members: Vec<Vec<usize>> = plans.iter().map(|p| p.members().collect()).collect();
        // [0,1] alone (2 x 2 x 10 = 40 > 24 with the next), then 2 x 2 x 6 = 24 fits
        assert_eq!(members, vec![vec![0, 1], vec![2, 3, 4, 5]]);
        let sorted = plan_units(
            units,
            &[4, 10, 6],
            lim(2, 0),
            Order::LongestFirst,
            Fill::Greedy,
            |u| u.len(),
        );
        let members: Vec<Vec<usize>> = sorted.iter().map(|p| p.members().collect()).collect();
        assert_eq!(members, vec![vec![2, 3, 4, 5], vec![0, 1]]);
    }

    #[test]
    fn chunks_keep_batch_boundaries() {
        // Lengths 10, 9, 5, 5 (sorted), batch 2, cap 19: greedy [0] [1,2] [3]; chunks
        // [0] [1] [2,3] (the first chunk [0,1] is split by the cap, its rest stays alone).
        let units: Vec<Vec<usize>> = (0..4).map(|i| vec![i]).collect();
        let lengths = [10, 9, 5, 5];
        let members = |fill| {
            plan_units(
                units.clone(),
                &lengths,
                lim(2, 19),
                Order::LongestFirst,
                fill,
                |_| 1,
            )
            .iter()
            .map(|p| p.members().collect::<Vec<_>>())
            .collect::<Vec<_>>()
        };
        assert_eq!(members(Fill::Greedy), vec![vec![0], vec![1, 2], vec![3]]);
        assert_eq!(members(Fill::Chunks), vec![vec![0], vec![1], vec![2, 3]]);
    }

    #[test]
    fn reference_plan_splits_chosen_and_rejected() {
        let plans = plan_reference(&[vec![0, 1], vec![2, 3], vec![4, 5]], 2);
        let members: Vec<Vec<usize>> = plans.iter().map(|p| p.members().collect()).collect();
        assert_eq!(members, vec![vec![0, 2], vec![1, 3], vec![4], vec![5]]);
        assert!(plans.iter().all(|p| p.side == Side::Left));
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
