//! `--pairwise KIND`, or an export's `pairwise.json`: the model is a pairwise preference
//! model (PairRM, Better-PairRM, SlicPairPM, SteamSHP), scored by `scorer::pairwise`.

use anyhow::bail;
use clap::ValueEnum;
use rewardbench::config::{PairwiseKind, RunConfig, ScorerKind};
use rewardbench::run::observer::Observer;
use rewardbench::scorer::pairwise;

use super::EvalArgs;

/// `--pairwise`: what RewardBench's pipeline does with the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PairwiseArg {
    /// llm-blender/PairRM-hf (PairRMPipeline).
    Pairrm,
    /// mightbe/Better-PairRM (BetterPairRMPipeline).
    #[value(alias = "better_pairrm")]
    BetterPairrm,
    /// RLHFlow/pair-preference-model-LLaMA3-8B (SlicPairPMPipeline).
    #[value(alias = "slicpairpm")]
    Slic,
    /// stanfordnlp/SteamSHP-flan-t5-* (SHPPipeline).
    Steamshp,
}

impl From<PairwiseArg> for PairwiseKind {
    fn from(a: PairwiseArg) -> Self {
        match a {
            PairwiseArg::Pairrm => Self::PairRm,
            PairwiseArg::BetterPairrm => Self::BetterPairRm,
            PairwiseArg::Slic => Self::SlicPairPm,
            PairwiseArg::Steamshp => Self::SteamShp,
        }
    }
}

/// The run's scorer when the model is pairwise (`--pairwise`, else the export's
/// `pairwise.json`, else the model's registry entry, `registry`: its pipeline and where it
/// is), with the flags that cannot go with it refused; other runs unchanged.
pub fn apply(
    args: &EvalArgs,
    mut config: RunConfig,
    registry: Option<(PairwiseKind, String)>,
    obs: &mut dyn Observer,
) -> anyhow::Result<RunConfig> {
    let detected = pairwise::detect(&config.model.dir)?;
    let flag = args.pairwise.map(PairwiseKind::from);
    let kind = match (flag, detected, &registry) {
        (Some(k), Some(d), _) if k != d => {
            obs.note(&format!(
                "--pairwise {}: the export's {} says {}; scoring it as {}",
                k.label(),
                pairwise::CONTRACT_FILE,
                d.label(),
                k.label()
            ));
            k
        }
        (Some(k), _, _) | (None, Some(k), _) => k,
        (None, None, Some((k, _))) => *k,
        (None, None, None) => return Ok(config),
    };
    if let (None, Some((r, from))) = (flag, &registry) {
        if *r != kind {
            obs.note(&format!(
                "{from} names the pairwise pipeline {}; the export's {} says {}, which is used",
                r.label(),
                pairwise::CONTRACT_FILE,
                kind.label()
            ));
        }
    }
    if args.ref_model.is_some() || args.ref_free_type.is_some() {
        bail!(
            "{} is a pairwise model ({}): --ref_model / --ref_free_type (DPO) do not apply to it",
            config.model.dir.display(),
            kind.label()
        );
    }
    if args.shard.is_some() {
        bail!(
            "--shard is not supported for pairwise models ({}): `rewardbench merge` rebuilds sequence-classifier and DPO runs only; run it whole (its score store lets an interrupted run resume)",
            kind.label()
        );
    }
    config.model.scorer = ScorerKind::Pairwise(kind);
    Ok(config)
}

/// `rewardbench v2` refuses pairwise models: upstream has no RewardBench 2 scoring for them.
pub fn refuse_v2(config: &RunConfig) -> anyhow::Result<()> {
    if let ScorerKind::Pairwise(kind) = config.model.scorer {
        bail!(
            "rewardbench v2 does not score pairwise models ({}): upstream's run_v2.py raises NotImplementedError for PairRM and SteamSHP, and SlicPairPM's pipeline needs two candidate lists it is never given; score RewardBench v1 preference data (plain `rewardbench`)",
            kind.label()
        );
    }
    Ok(())
}
