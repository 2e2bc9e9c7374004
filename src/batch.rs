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

/// A planned model call: the indices of its sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub members: Vec<usize>,
    pub side: Side,
}

/// Groups sequences of the given lengths into calls, longest first: each call holds at
/// most `batch_size` sequences and at most `max_tokens` padded tokens (rows x longest; a
/// single longer sequence gets a call of its own; 0 means no token cap).
pub fn plan_sorted(lengths: &[usize], batch_size: usize, max_tokens: usize) -> Vec<Plan> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    // Longest first: a batch that does not fit in memory fails at once. Ties keep input order.
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    let cap = if max_tokens == 0 {
        usize::MAX
    } else {
        max_tokens
    };
    let mut plans: Vec<Plan> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted descending, so the first member sets the batch width.
        let width = current.first().map_or(lengths[i], |&f| lengths[f]).max(1);
        if !current.is_empty()
            && (current.len() >= batch_size.max(1) || (current.len() + 1) * width > cap)
        {
            plans.push(Plan {
                members: std::mem::take(&mut current),
                side: Side::Right,
            });
        }
        current.push(i);
    }
    if !current.is_empty() {
        plans.push(Plan {
            members: current,
            side: Side::Right,
        });
    }
    plans
}

/// RewardBench's batches over `rows` rows whose chosen sequence is `2 * row` and rejected `2 * row + 1`.
pub fn plan_reference(rows: usize, batch_size: usize) -> Vec<Plan> {
    let rows: Vec<usize> = (0..rows).collect();
    rows.chunks(batch_size.max(1))
        .flat_map(|chunk| {
            [0, 1].map(|side| Plan {
                members: chunk.iter().map(|r| 2 * r + side).collect(),
                side: Side::Left,
            })
        })
        .collect()
}

/// Pads the planned sequences into `[rows, longest]` id and mask matrices.
pub fn pad(seqs: &[Encoded], plan: &Plan, pad_id: i64) -> (Array2<i64>, Array2<i64>) {
    let width = plan
        .members
        .iter()
        .map(|&i| seqs[i].ids.len())
        .max()
        .unwrap_or(0);
    let mut ids = Array2::from_elem((plan.members.len(), width), pad_id);
    let mut mask = Array2::zeros((plan.members.len(), width));
    for (r, &i) in plan.members.iter().enumerate() {
        let s = &seqs[i];
        let offset = match plan.side {
            Side::Left => width - s.ids.len(),
            Side::Right => 0,
        };
        for (j, (&id, &m)) in s.ids.iter().zip(&s.mask).enumerate() {
            ids[[r, offset + j]] = id;
            mask[[r, offset + j]] = m;
        }
    }
    (ids, mask)
}

/// Padding statistics of a plan: (pad tokens, computed tokens).
pub fn padding(seqs: &[Encoded], plans: &[Plan]) -> (usize, usize) {
    let mut pads = 0;
    let mut total = 0;
    for p in plans {
        let width = p
            .members
            .iter()
            .map(|&i| seqs[i].ids.len())
            .max()
            .unwrap_or(0);
        total += width * p.members.len();
        pads += p
            .members
            .iter()
            .map(|&i| width - seqs[i].ids.len())
            .sum::<usize>();
    }
    (pads, total)
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

    #[test]
    fn sorted_plan_is_longest_first_and_complete() {
        let plans = plan_sorted(&[3, 9, 1, 9, 5], 2, 0);
        let members: Vec<Vec<usize>> = plans.iter().map(|p| p.members.clone()).collect();
        assert_eq!(members, vec![vec![1, 3], vec![4, 0], vec![2]]);
    }

    #[test]
    fn token_budget_caps_padded_tokens() {
        // Budget 10: [9] alone (9+9 > 10), then 5 and 3 (2 x 5 = 10), then 1.
        let plans = plan_sorted(&[3, 9, 1, 12, 5], 8, 10);
        let members: Vec<Vec<usize>> = plans.iter().map(|p| p.members.clone()).collect();
        assert_eq!(members, vec![vec![3], vec![1], vec![4, 0], vec![2]]);
        for p in &plans {
            let width = p
                .members
                .iter()
                .map(|&i| [3, 9, 1, 12, 5][i])
                .max()
                .unwrap();
            assert!(p.members.len() == 1 || p.members.len() * width <= 10);
        }
    }

    #[test]
    fn reference_plan_splits_chosen_and_rejected() {
        let plans = plan_reference(3, 2);
        let members: Vec<Vec<usize>> = plans.iter().map(|p| p.members.clone()).collect();
        assert_eq!(members, vec![vec![0, 2], vec![1, 3], vec![4], vec![5]]);
        assert!(plans.iter().all(|p| p.side == Side::Left));
    }

    #[test]
    fn padding_sides() {
        let seqs = vec![enc(1), enc(3)];
        let (ids, mask) = pad(
            &seqs,
            &Plan {
                members: vec![0, 1],
                side: Side::Left,
            },
            0,
        );
        assert_eq!(ids.row(0).to_vec(), vec![0, 0, 1]);
        assert_eq!(mask.row(0).to_vec(), vec![0, 0, 1]);
        let (ids, mask) = pad(
            &seqs,
            &Plan {
                members: vec![0, 1],
                side: Side::Right,
            },
            9,
        );
        assert_eq!(ids.row(0).to_vec(), vec![1, 9, 9]);
        assert_eq!(mask.row(0).to_vec(), vec![1, 0, 0]);
        assert_eq!(ids.row(1).to_vec(), vec![1, 2, 3]);
        assert_eq!(
            padding(
                &seqs,
                &[Plan {
                    members: vec![0, 1],
                    side: Side::Right
                }]
            ),
            (2, 6)
        );
    }
}
