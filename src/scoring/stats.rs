//! Paired tests between two scorers on the same rows: the exact McNemar test, a paired
//! permutation test for any statistic, and Holm and Šidák corrections (as statsmodels
//! computes them).

use super::bootstrap::SplitMix64;

/// `ln C(n, k)` for every `k` in `0..=n`, built by the recurrence (relative error ~1e-13).
fn ln_binomials(n: u64) -> Vec<f64> {
    let mut out = Vec::with_capacity(n as usize + 1);
    let mut acc = 0.0f64;
    out.push(acc);
    for k in 1..=n {
        acc += ((n - k + 1) as f64).ln() - (k as f64).ln();
        out.push(acc);
    }
    out
}

/// `P(X <= k)` for `X ~ Binomial(n, 1/2)`, summed in log space.
pub fn binomial_half_cdf(k: u64, n: u64) -> f64 {
    if k >= n {
        return 1.0;
    }
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let terms: Vec<f64> = ln_binomials(n)[..=k as usize]
        .iter()
        .map(|l| l - ln_half_n)
        .collect();
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = terms.iter().map(|t| (t - top).exp()).sum();
    (top + sum.ln()).exp().min(1.0)
}

/// The exact (binomial) McNemar test on the discordant counts `b` (rows only A gets right)
/// and `c` (only B): two-sided, `min(1, 2 P(X <= min(b, c)))` for `X ~ Bin(b + c, 1/2)`,
/// as `statsmodels.stats.contingency_tables.mcnemar(exact=True)`. No discordant row: 1.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    if b + c == 0 {
        return 1.0;
    }
    (2.0 * binomial_half_cdf(b.min(c), b + c)).min(1.0)
}

/// Holm's step-down adjustment (`multipletests(method="holm")`): the i-th smallest p-value
/// times `m - i`, made monotone, capped at 1. Order of the input kept.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(p[i] * (m - rank) as f64);
        out[i] = running.min(1.0);
    }
    out
}

/// Šidák's adjustment (`multipletests(method="sidak")`): `1 - (1 - p)^m`, computed as
/// `-expm1(m log1p(-p))`.
pub fn sidak(p: &[f64]) -> Vec<f64> {
    let m = p.len() as f64;
    p.iter().map(|&x| -(m * (-x).ln_1p()).exp_m1()).collect()
}

/// A paired permutation test's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Permutation {
    /// The observed statistic of A minus that of B.
    pub difference: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// All sign patterns of the differing units were enumerated (else Monte Carlo).
    pub exact: bool,
    /// Random swaps drawn (0 when exact).
    pub resamples: usize,
}

/// Units that differ between A and B up to this many are enumerated exactly (2^16 patterns).
pub const EXACT_UNITS: usize = 16;
/// Monte Carlo swaps otherwise.
pub const PERMUTATION_RESAMPLES: usize = 10_000;
/// Seed of the Monte Carlo swaps.
pub const PERMUTATION_SEED: u64 = 20_240_229;

/// A paired permutation test of `stat(A) - stat(B)`: under the null hypothesis A's and B's
/// results on a unit (a row, or a Ties prompt) are exchangeable, so each unit's pair is
/// swapped with probability 1/2 and the statistic recomputed. The p-value is the share of
/// swaps at least as extreme as observed, `|d*| >= |d|` (a 1e-12 slack for rounding):
/// exact over every pattern when at most [`EXACT_UNITS`] units differ, else from `resamples`
/// random patterns as `(1 + hits) / (1 + resamples)`. `a` and `b` are the same units in the
/// same order; `same(x, y)` says a unit's pair is equal (swapping it changes nothing).
pub fn paired_permutation<U>(
    a: &[U],
    b: &[U],
    stat: impl Fn(&[&U]) -> f64,
    same: impl Fn(&U, &U) -> bool,
    resamples: usize,
    seed: u64,
) -> Permutation {
    let all_a: Vec<&U> = a.iter().collect();
    let all_b: Vec<&U> = b.iter().collect();
    let difference = stat(&all_a) - stat(&all_b);
    let differing: Vec<usize> = (0..a.len().min(b.len()))
        .filter(|&i| !same(&a[i], &b[i]))
        .collect();
    let threshold = difference.abs() - 1e-12;
    let mut left = all_a.clone();
    let mut right = all_b.clone();
    let mut swapped = |pattern: &dyn Fn(usize) -> bool| {
        for (j, &i) in differing.iter().enumerate() {
            let (x, y) = if pattern(j) {
                (&b[i], &a[i])
            } else {
                (&a[i], &b[i])
            };
            left[i] = x;
            right[i] = y;
        }
        stat(&left) - stat(&right)
    };
    if differing.len() <= EXACT_UNITS {
        let patterns = 1u64 << differing.len();
        let hits = (0..patterns)
            .filter(|&bits| swapped(&|j| bits >> j & 1 == 1).abs() >= threshold)
            .count();
        return Permutation {
            difference,
            p_value: hits as f64 / patterns as f64,
            exact: true,
            resamples: 0,
        };
    }
    let mut rng = SplitMix64(seed);
    let mut hits = 0usize;
    for _ in 0..resamples {
        let flips: Vec<bool> = differing.iter().map(|_| rng.next() >> 63 == 1).collect();
        if swapped(&|j| flips[j]).abs() >= threshold {
            hits += 1;
        }
    }
    Permutation {
        difference,
        p_value: (1 + hits) as f64 / (1 + resamples) as f64,
        exact: false,
        resamples,
    }
}

/// The mean of a slice (0 when empty).
pub fn mean(xs: &[&f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().copied().sum::<f64>() / xs.len() as f64
    }
}

/// A paired test of one scorer's per-row results against another's (or a baseline's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedTest {
    pub p_value: f64,
    /// `"exact McNemar"` (0/1 results) or `"paired permutation"` (1/k credit).
    pub method: &'static str,
    /// Rows only the first gets (more credit on), and rows only the second.
    pub a_only: usize,
    pub b_only: usize,
}

/// Paired test of `a` against `b` (same rows, each 0..=1): exact McNemar when every value is
/// 0 or 1, else a paired permutation test of the mean.
pub fn paired_test(a: &[f64], b: &[f64]) -> PairedTest {
    let a_only = a.iter().zip(b).filter(|(x, y)| x > y).count();
    let b_only = a.iter().zip(b).filter(|(x, y)| x < y).count();
    let binary = a.iter().chain(b).all(|&x| x == 0.0 || x == 1.0);
    if binary {
        PairedTest {
            p_value: mcnemar_exact(a_only as u64, b_only as u64),
            method: "exact McNemar",
            a_only,
            b_only,
        }
    } else {
        let t = paired_permutation(
            a,
            b,
            mean,
            |x, y| x == y,
            PERMUTATION_RESAMPLES,
            PERMUTATION_SEED,
        );
        PairedTest {
            p_value: t.p_value,
            method: "paired permutation",
            a_only,
            b_only,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tail_by_hand() {
        // P(X <= 1), n = 4: (1 + 4) / 16.
        assert!((binomial_half_cdf(1, 4) - 5.0 / 16.0).abs() < 1e-15);
        assert_eq!(binomial_half_cdf(4, 4), 1.0);
        // 2 * P(X <= 0), n = 10 = 2 / 1024.
        assert!((mcnemar_exact(0, 10) - 2.0 / 1024.0).abs() < 1e-15);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        assert_eq!(mcnemar_exact(3, 7), mcnemar_exact(7, 3));
        // Large n: 2 * 2^-1000, near the smallest normal f64.
        let p = mcnemar_exact(0, 1000);
        assert!((p / 2f64.powi(-999) - 1.0).abs() < 1e-9, "{p}");
    }

    /// fixtures/stats/reference.json: SciPy's binomtest, statsmodels' exact McNemar and
    /// multipletests (export/stats_reference.py), matched at 1e-9 (and 1e-9 relative).
    #[test]
    fn matches_scipy_and_statsmodels() {
        let r: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/stats/reference.json")).unwrap();
        let close = |got: f64, want: f64, what: &str| {
            assert!(
                (got - want).abs() <= 1e-9
                    && (got - want).abs() <= 1e-9 * want.abs().max(1e-300) + 1e-300,
                "{what}: {got} vs {want}"
            );
        };
        let cases = r["mcnemar"].as_array().unwrap();
        assert!(cases.len() > 30);
        for c in cases {
            let (b, cc) = (c["b"].as_u64().unwrap(), c["c"].as_u64().unwrap());
            let p = mcnemar_exact(b, cc);
            close(
                p,
                c["statsmodels_mcnemar_exact"].as_f64().unwrap(),
                &format!("mcnemar({b}, {cc})"),
            );
            close(
                p,
                c["scipy_binomtest"].as_f64().unwrap(),
                &format!("binomtest({b}, {cc})"),
            );
        }
        for f in r["corrections"].as_array().unwrap() {
            let p: Vec<f64> = f["p"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            for (got, want) in holm(&p).iter().zip(f["holm"].as_array().unwrap()) {
                close(*got, want.as_f64().unwrap(), "holm");
            }
            for (got, want) in sidak(&p).iter().zip(f["sidak"].as_array().unwrap()) {
                close(*got, want.as_f64().unwrap(), "sidak");
            }
        }
    }

    #[test]
    fn corrections_by_hand() {
        let h = holm(&[0.01, 0.04, 0.03]);
        // Sorted 0.01, 0.03, 0.04 -> 0.03, 0.06, 0.06 (monotone).
        assert!((h[0] - 0.03).abs() < 1e-15);
        assert!((h[2] - 0.06).abs() < 1e-15);
        assert!((h[1] - 0.06).abs() < 1e-15);
        assert_eq!(holm(&[0.6, 0.9]), vec![1.0, 1.0]);
        let s = sidak(&[0.05, 0.0, 1.0]);
        assert!((s[0] - (1.0 - 0.95f64.powi(3))).abs() < 1e-15);
        assert_eq!(s[1], 0.0);
        assert_eq!(s[2], 1.0);
    }

    #[test]
    fn permutation_matches_sign_flip_count() {
        // Four differing rows, all in A's favour: only the two all-same patterns reach |d|.
        let a = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0];
        let b = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        let t = paired_permutation(&a, &b, mean, |x, y| x == y, 100, 1);
        assert!(t.exact);
        assert!((t.difference - 4.0 / 6.0).abs() < 1e-15);
        assert!((t.p_value - 2.0 / 16.0).abs() < 1e-15);
        // Exact sign flips on 0/1 rows are McNemar's exact test.
        assert!((t.p_value - mcnemar_exact(4, 0)).abs() < 1e-15);
        // Identical results: p = 1.
        let t = paired_permutation(&a, &a, mean, |x, y| x == y, 100, 1);
        assert_eq!((t.difference, t.p_value), (0.0, 1.0));
    }

    #[test]
    fn monte_carlo_is_seeded_and_close_to_exact() {
        // 30 rows only A gets right, 10 only B: McNemar's p is the sign-flip p.
        let mut a = vec![1.0; 30];
        a.extend(vec![0.0; 10]);
        let mut b = vec![0.0; 30];
        b.extend(vec![1.0; 10]);
        let t = paired_permutation(&a, &b, mean, |x, y| x == y, 20_000, 7);
        let u = paired_permutation(&a, &b, mean, |x, y| x == y, 20_000, 7);
        assert_eq!(t, u);
        assert!(!t.exact);
        let exact = mcnemar_exact(30, 10);
        assert!(
            (t.p_value - exact).abs() < 0.003,
            "{} vs {exact}",
            t.p_value
        );
    }
}
