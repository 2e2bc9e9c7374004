//! The reward-head flags (`--pooling`, `--score_output`, `--score_column`,
//! `--score_transform`, `--save_token_rewards`) and their [`HeadConfig`].

use anyhow::bail;
use clap::{ArgAction, ValueEnum};
use rewardbench::config::HeadConfig;
use rewardbench::scorer::pooling::Pooling;
use rewardbench::scorer::transform::{self, ScoreTransform};

use super::parse_bool;

/// `--pooling`: where a per-token export's score is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolingArg {
    /// The last token whose id is not the pad id (transformers >= 4.49).
    #[value(name = "last_non_pad", alias = "last-non-pad")]
    LastNonPad,
    /// The token before the first pad id, else the last (older transformers, Starling, INF-ORM, OLMo-2).
    #[value(name = "first_pad_minus_one", alias = "first-pad-minus-one")]
    FirstPadMinusOne,
    /// The last attended position (UltraRM, Beaver).
    #[value(name = "last_attended", alias = "last-attended")]
    LastAttended,
    /// attention_mask.sum - 1 (Skywork-VL).
    #[value(name = "mask_sum_minus_one", alias = "mask-sum-minus-one")]
    MaskSumMinusOne,
    /// GRM: the last column if any row's first column is masked (left padding), else mask.sum - 1.
    #[value(name = "grm")]
    Grm,
}

impl From<PoolingArg> for Pooling {
    fn from(p: PoolingArg) -> Self {
        match p {
            PoolingArg::LastNonPad => Self::LastNonPad,
            PoolingArg::FirstPadMinusOne => Self::FirstPadMinusOne,
            PoolingArg::LastAttended => Self::LastAttended,
            PoolingArg::MaskSumMinusOne => Self::MaskSumMinusOne,
            PoolingArg::Grm => Self::Grm,
        }
    }
}

/// `--score_transform`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransformArg {
    /// The output as it is.
    None,
    /// Minus every label (Beaver's cost models).
    Negate,
    /// The expectation over the labels as bins linspace(0, 1, K) (LDL-Reward).
    Expectation,
}

/// The reward-head flags of an evaluation.
#[derive(Debug, Clone, clap::Args)]
pub struct HeadArgs {
    /// Where a per-token export's score is read (default: the export's own; a per-token export: last_non_pad).
    #[arg(long, value_enum)]
    pub pooling: Option<PoolingArg>,
    /// The graph output that holds the score (default: `logits`, else a per-token export's `token_logits`).
    #[arg(long = "score_output", alias = "score-output")]
    pub score_output: Option<String>,
    /// Keep only label K of a multi-label output (0-based).
    #[arg(long = "score_column", alias = "score-column")]
    pub score_column: Option<usize>,
    /// Applied to the score after --score_column (default: none, or the model's registry entry's).
    #[arg(long = "score_transform", alias = "score-transform", value_enum)]
    pub score_transform: Option<TransformArg>,
    /// Also write {name}_token_rewards.jsonl: a per-token export's head at every position of every text.
    #[arg(long = "save_token_rewards", alias = "save-token-rewards", num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = parse_bool, action = ArgAction::Set)]
    pub save_token_rewards: bool,
}

/// Which of the head flags were given (they win over a model's registry entry).
pub fn given(a: &HeadArgs) -> rewardbench::registry::Given {
    rewardbench::registry::Given {
        pooling: a.pooling.is_some(),
        score_output: a.score_output.is_some(),
        score_column: a.score_column.is_some(),
        score_transform: a.score_transform.is_some(),
        truncation: false,
    }
}

/// The flags' [`HeadConfig`]; `dpo` and `shard` refuse what they cannot do.
pub fn resolve(a: &HeadArgs, dpo: bool, shard: bool) -> anyhow::Result<HeadConfig> {
    let head = HeadConfig {
        pooling: a.pooling.map(Pooling::from),
        output: a.score_output.clone(),
        column: a.score_column,
        transform: match a.score_transform {
            None | Some(TransformArg::None) => ScoreTransform::None,
            Some(TransformArg::Negate) => ScoreTransform::Negate,
            Some(TransformArg::Expectation) => ScoreTransform::Expectation,
        },
        save_token_rewards: a.save_token_rewards,
    };
    transform::validate(&head)?;
    if dpo && (head != HeadConfig::default()) {
        bail!("--pooling, --score_output, --score_column, --score_transform and --save_token_rewards are for reward-model exports; DPO rewards (--ref_model / --ref_free_type) are log-probability sums");
    }
    if shard && head.save_token_rewards {
        bail!("--shard with --save_token_rewards: token rewards are not kept in the shard stores; run it whole");
    }
    Ok(head)
}
