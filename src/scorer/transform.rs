//! From a reward model's output to a text's score: `--score_column`, `--score_transform`,
//! and the checks on which heads, pooling rules and benchmarks go together ([`HeadConfig`]
//! holds the settings).
//!
//! Order: the graph output (`--score_output`), pooled (`--pooling`, per-token exports), then
//! the column, then the transform. The score store keeps the pooled output (every label), so
//! a column or transform is applied after it, like `--score_dtype`.
//!
//! * `negate`: every label times -1 (Beaver's cost models: a lower cost is better).
//! * `expectation`: the labels are a distribution over `K >= 2` bins with values
//!   `linspace(0, 1, K)` (bin `i` is worth `i / (K - 1)`), and the score is
//!   `sum_i p_i * i / (K - 1)`, as LDL-Reward computes its `score` from
//!   `total_reward_distribution` (10 bins: 0, 1/9, ..., 1). The labels are used as given (no
//!   softmax): the output must already be the distribution.
//!
//! Several labels without a column or the expectation are compared as upstream compares them
//! in v1 (Python lists: lexicographically); RewardBench 2 ranks one number per completion, so
//! there a column or the expectation must be chosen ([`HeadError::BestOfNLabels`]).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::pooling::Pooling;
use crate::config::HeadConfig;

/// `--score_transform`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreTransform {
    /// The output as it is.
    #[default]
    None,
    /// Minus every label (Beaver's cost models).
    Negate,
    /// The expectation over bins `linspace(0, 1, K)` of a `K`-label distribution (LDL-Reward).
    Expectation,
}

impl ScoreTransform {
    /// The flag value.
    pub fn label(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Negate => "negate",
            Self::Expectation => "expectation",
        }
    }
}

/// Settings of the reward head that do not fit together or do not fit the model.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error(
        "--score_column {column} with --score_transform expectation: the expectation is taken over \
         all the labels (its bins); pass one of the two"
    )]
    ColumnAndExpectation { column: usize },
    #[error(
        "--score_column {column}: {} gives {labels} label(s) per text (columns 0 to {})",
        onnx.display(),
        labels.saturating_sub(1)
    )]
    ColumnOutOfRange {
        column: usize,
        labels: usize,
        onnx: PathBuf,
    },
    #[error(
        "--score_transform expectation needs at least two labels (the bins); {} gives {labels}",
        onnx.display()
    )]
    TooFewBins { labels: usize, onnx: PathBuf },
    #[error(
        "{flag}: {} pools inside the graph (its output `{output}` is one score per text{packed}); \
         export it with `export/export_rm.py --per_token` (output `token_logits`, the head at every \
         position) to choose the position",
        onnx.display(),
        packed = if *packed { ", read at the last non-pad token of each text" } else { "" }
    )]
    Pooled {
        flag: String,
        onnx: PathBuf,
        output: String,
        packed: bool,
    },
    #[error(
        "{} gives {labels} labels per text; RewardBench 2 ranks one score per completion (upstream \
         fails on such models, its issue #240): pass --score_column K (0 to {}) to rank by one label, \
         or --score_transform expectation to rank by the expectation over the labels as bins \
         linspace(0, 1, {labels})",
        onnx.display(),
        labels.saturating_sub(1)
    )]
    BestOfNLabels { labels: usize, onnx: PathBuf },
}

/// Fails on settings that contradict each other, whatever the model.
pub fn validate(head: &HeadConfig) -> Result<(), HeadError> {
    match (head.column, head.transform) {
        (Some(column), ScoreTransform::Expectation) => {
            Err(HeadError::ColumnAndExpectation { column })
        }
        _ => Ok(()),
    }
}

/// What an open reward-model session gives, for [`check_session`].
#[derive(Debug, Clone, Copy)]
pub struct Graph<'a> {
    pub onnx: &'a Path,
    /// The output the scores come from.
    pub output: &'a str,
    pub per_token: bool,
    pub packed: bool,
    /// Labels per text, when the graph states them.
    pub labels: Option<usize>,
}

/// Fails, before any compute, when the settings do not fit the graph: a pooling rule (other
/// than the one a pooled graph applies) or token rewards without a per-token output, a column
/// beyond the labels, an expectation over one label, several labels for RewardBench 2.
pub fn check_session(head: &HeadConfig, g: Graph, best_of_n: bool) -> Result<(), HeadError> {
    validate(head)?;
    let pooled = |flag: String| HeadError::Pooled {
        flag,
        onnx: g.onnx.to_path_buf(),
        output: g.output.to_string(),
        packed: g.packed,
    };
    if !g.per_token {
        match head.pooling {
            Some(rule) if rule != Pooling::LastNonPad => {
                return Err(pooled(format!("--pooling {}", rule.label())))
            }
            _ if head.save_token_rewards => return Err(pooled("--save_token_rewards".to_string())),
            _ => {}
        }
    }
    let Some(labels) = g.labels else {
        return Ok(()); // a dynamic label count: checked on the scores
    };
    check_labels(head, labels, g.onnx)?;
    if best_of_n {
        check_best_of_n(labels_after(head, labels), g.onnx)?;
    }
    Ok(())
}

/// A column within the labels, bins for an expectation.
fn check_labels(head: &HeadConfig, labels: usize, onnx: &Path) -> Result<(), HeadError> {
    if let Some(column) = head.column.filter(|&c| c >= labels) {
        return Err(HeadError::ColumnOutOfRange {
            column,
            labels,
            onnx: onnx.to_path_buf(),
        });
    }
    if head.transform == ScoreTransform::Expectation && labels < 2 {
        return Err(HeadError::TooFewBins {
            labels,
            onnx: onnx.to_path_buf(),
        });
    }
    Ok(())
}

/// RewardBench 2's rules rank one number per completion.
pub fn check_best_of_n(labels: usize, onnx: &Path) -> Result<(), HeadError> {
    if labels > 1 {
        return Err(HeadError::BestOfNLabels {
            labels,
            onnx: onnx.to_path_buf(),
        });
    }
    Ok(())
}

/// Labels per text after the column or the expectation.
pub fn labels_after(head: &HeadConfig, labels: usize) -> usize {
    if head.column.is_some() || head.transform == ScoreTransform::Expectation {
        1
    } else {
        labels
    }
}

/// A text's score from the model's (pooled) output: the column, then the transform.
pub fn apply(head: &HeadConfig, raw: &[f32], onnx: &Path) -> Result<Vec<f32>, HeadError> {
    validate(head)?;
    check_labels(head, raw.len(), onnx)?;
    let picked = match head.column {
        Some(c) => &raw[c..=c],
        None => raw,
    };
    Ok(match head.transform {
        ScoreTransform::None => picked.to_vec(),
        ScoreTransform::Negate => picked.iter().map(|x| -x).collect(),
        ScoreTransform::Expectation => {
            let last = (picked.len() - 1) as f64;
            let e: f64 = picked
                .iter()
                .enumerate()
                .map(|(i, &p)| f64::from(p) * (i as f64 / last))
                .sum();
            vec![e as f32]
        }
    })
}

/// True when the settings change nothing: the graph's `logits` (or `token_logits` at the last
/// non-pad token), every label as it is.
pub fn is_default(head: &HeadConfig) -> bool {
    matches!(head.pooling, None | Some(Pooling::LastNonPad))
        && head.output.is_none()
        && head.column.is_none()
        && head.transform == ScoreTransform::None
}

/// What changes the stored (pooled, every label) scores beyond the model files: a pooling
/// rule other than the default, another output. `None` for the defaults, so existing stores
/// and fingerprints stay as they were.
pub fn store_key(head: &HeadConfig) -> Option<String> {
    let rule = head.pooling.filter(|&r| r != Pooling::LastNonPad);
    if rule.is_none() && head.output.is_none() {
        return None;
    }
    Some(format!(
        "pooling={}|output={}",
        rule.map_or("", Pooling::label),
        head.output.as_deref().unwrap_or("")
    ))
}

/// The summary's `reward_head` object; `None` when every setting is the default (summaries
/// of default heads keep their bytes). `pooling` is null when no rule was given: the
/// export's own (a pooled graph's, or a per-token export's last non-pad token).
pub fn summary(head: &HeadConfig) -> Option<Value> {
    let given = head.pooling.is_some()
        || head.output.is_some()
        || head.column.is_some()
        || head.transform != ScoreTransform::None;
    given.then(|| {
        json!({
            "pooling": head.pooling.map(Pooling::label),
            "score_output": head.output,
            "score_column": head.column,
            "score_transform": head.transform.label(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(column: Option<usize>, transform: ScoreTransform) -> HeadConfig {
        HeadConfig {
            column,
            transform,
            ..HeadConfig::default()
        }
    }

    #[test]
    fn columns_and_transforms() {
        let m = Path::new("m.onnx");
        let raw = [0.5f32, -2.0, 1.25];
        assert_eq!(apply(&HeadConfig::default(), &raw, m).unwrap(), raw);
        assert_eq!(
            apply(&head(Some(1), ScoreTransform::None), &raw, m).unwrap(),
            [-2.0]
        );
        assert_eq!(
            apply(&head(Some(2), ScoreTransform::Negate), &raw, m).unwrap(),
            [-1.25]
        );
        assert_eq!(
            apply(&head(None, ScoreTransform::Negate), &raw, m).unwrap(),
            [-0.5, 2.0, -1.25]
        );
        // bins 0, 0.5, 1
        let dist = [0.25f32, 0.25, 0.5];
        assert_eq!(
            apply(&head(None, ScoreTransform::Expectation), &dist, m).unwrap(),
            [0.625]
        );
        // LDL's ten bins: linspace(0, 1, 10); all mass on bin 9 is 1, uniform is 0.5
        let mut ten = [0.0f32; 10];
        ten[9] = 1.0;
        assert_eq!(
            apply(&head(None, ScoreTransform::Expectation), &ten, m).unwrap(),
            [1.0]
        );
        let uniform = [0.1f32; 10];
        let e = apply(&head(None, ScoreTransform::Expectation), &uniform, m).unwrap()[0];
        assert!((e - 0.5).abs() < 1e-6, "{e}");
        let err = apply(&head(Some(3), ScoreTransform::None), &raw, m).unwrap_err();
        assert!(err.to_string().contains("columns 0 to 2"), "{err}");
        let err = apply(&head(None, ScoreTransform::Expectation), &[1.0], m).unwrap_err();
        assert!(err.to_string().contains("at least two labels"), "{err}");
        assert!(validate(&head(Some(0), ScoreTransform::Expectation)).is_err());
    }

    #[test]
    fn sessions_and_benchmarks() {
        let g = |per_token, labels| Graph {
            onnx: Path::new("m.onnx"),
            output: "logits",
            per_token,
            packed: false,
            labels,
        };
        let grm = HeadConfig {
            pooling: Some(Pooling::Grm),
            ..HeadConfig::default()
        };
        let err = check_session(&grm, g(false, Some(1)), false).unwrap_err();
        assert!(err.to_string().contains("--per_token"), "{err}");
        assert!(check_session(&grm, g(true, Some(1)), false).is_ok());
        let explicit_default = HeadConfig {
            pooling: Some(Pooling::LastNonPad),
            ..HeadConfig::default()
        };
        assert!(check_session(&explicit_default, g(false, Some(1)), false).is_ok());
        let tokens = HeadConfig {
            save_token_rewards: true,
            ..HeadConfig::default()
        };
        assert!(check_session(&tokens, g(false, Some(1)), false).is_err());
        // several labels: fine for v1 (lexicographic), refused for RewardBench 2 unless reduced
        let d = HeadConfig::default();
        assert!(check_session(&d, g(true, Some(3)), false).is_ok());
        let err = check_session(&d, g(true, Some(3)), true).unwrap_err();
        assert!(err.to_string().contains("#240"), "{err}");
        assert!(
            check_session(&head(Some(2), ScoreTransform::None), g(true, Some(3)), true).is_ok()
        );
        assert!(check_session(
            &head(None, ScoreTransform::Expectation),
            g(true, Some(3)),
            true
        )
        .is_ok());
        assert!(
            check_session(&head(Some(3), ScoreTransform::None), g(true, Some(3)), true).is_err()
        );
        // unknown labels: checked later, on the scores
        assert!(check_session(&d, g(true, None), true).is_ok());
    }

    #[test]
    fn records_only_for_settings_that_were_given() {
        assert!(summary(&HeadConfig::default()).is_none());
        assert!(store_key(&HeadConfig::default()).is_none());
        assert!(is_default(&HeadConfig::default()));
        let explicit_default = HeadConfig {
            pooling: Some(Pooling::LastNonPad),
            ..HeadConfig::default()
        };
        // the same scores as the default: no store key, but the summary says what was asked
        assert!(store_key(&explicit_default).is_none());
        assert!(is_default(&explicit_default));
        assert_eq!(
            summary(&explicit_default).unwrap()["pooling"],
            "last_non_pad"
        );
        let grm = HeadConfig {
            pooling: Some(Pooling::Grm),
            ..HeadConfig::default()
        };
        assert_eq!(store_key(&grm).unwrap(), "pooling=grm|output=");
        // transforms are applied after the store
        assert!(store_key(&head(Some(1), ScoreTransform::Negate)).is_none());
        let s = summary(&head(Some(1), ScoreTransform::Negate)).unwrap();
        assert_eq!(
            s,
            json!({"pooling": null, "score_output": null, "score_column": 1, "score_transform": "negate"})
        );
    }
}
