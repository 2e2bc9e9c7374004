//! Run configuration: every setting of an evaluation, typed by stage; `Default` is the one
//! place defaults live (the CLI takes its defaults from it).

use std::path::PathBuf;

use crate::backend::Device;
use crate::batch::Batching;
use crate::data::{DatasetSpec, Source};
use crate::scorer::pooling::Pooling;
use crate::scorer::transform::ScoreTransform;
use crate::scoring::ScoreDtype;
use crate::template::Date;

/// Reference-free reduction of the policy's per-token log-probs (`--ref_free_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefFree {
    /// Sum over the response tokens.
    Sum,
    /// Sum divided by the number of response tokens.
    Avg,
    /// Minus the L2 norm of the per-token log-probs.
    Norm,
}

impl RefFree {
    /// The flag value, as RewardBench spells it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Norm => "norm",
        }
    }
}

/// How DPO rewards are computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpoMode {
    /// policy sum - reference sum, the reference model in this folder.
    Reference(PathBuf),
    /// The policy alone.
    RefFree(RefFree),
}

/// A pairwise preference model: both answers go into one input and the model says which is
/// better (RewardBench's "Custom Classifier" pipelines; `scorer::pairwise` scores them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairwiseKind {
    /// llm-blender/PairRM-hf: DeBERTa-v3 with a pairwise head (`PairRMPipeline`).
    PairRm,
    /// mightbe/Better-PairRM: the same model, its own source template and budgets
    /// (`BetterPairRMPipeline`).
    BetterPairRm,
    /// RLHFlow/pair-preference-model-LLaMA3-8B: a causal LM's next-token "A" / "B" logits,
    /// both orders averaged (`SlicPairPMPipeline`).
    SlicPairPm,
    /// stanfordnlp/SteamSHP-flan-t5-*: T5's first decoded token, "A" or "B" (`SHPPipeline`).
    SteamShp,
}

impl PairwiseKind {
    /// Every kind, in the order the flag lists them.
    pub const ALL: [Self; 4] = [
        Self::PairRm,
        Self::BetterPairRm,
        Self::SlicPairPm,
        Self::SteamShp,
    ];

    /// The name in `--pairwise`, `pairwise.json` and the summary.
    pub fn label(self) -> &'static str {
        match self {
            Self::PairRm => "pairrm",
            Self::BetterPairRm => "better-pairrm",
            Self::SlicPairPm => "slic",
            Self::SteamShp => "steamshp",
        }
    }

    /// The kind named `name` (`better_pairrm` too).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL.into_iter().find(|k| k.label() == name)
    }

    /// The upstream models RewardBench scores this way.
    pub fn upstream_models(self) -> &'static [&'static str] {
        match self {
            Self::PairRm => &["llm-blender/PairRM-hf"],
            Self::BetterPairRm => &["mightbe/Better-PairRM"],
            Self::SlicPairPm => &["RLHFlow/pair-preference-model-LLaMA3-8B"],
            Self::SteamShp => &[
                "stanfordnlp/SteamSHP-flan-t5-xl",
                "stanfordnlp/SteamSHP-flan-t5-large",
            ],
        }
    }
}

/// How a model's rewards are computed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ScorerKind {
    /// A sequence classifier: the reward is its logit(s).
    #[default]
    Classifier,
    /// DPO implicit rewards of a causal LM (the policy).
    Dpo(DpoMode),
    /// A pairwise preference model (`--pairwise KIND`, or the export's `pairwise.json`).
    Pairwise(PairwiseKind),
}

/// The model and its tokenizer.
#[derive(Debug, Clone, Default)]
pub struct ModelConfig {
    /// Folder with model.onnx (resolved: a hub id is already a snapshot folder).
    pub dir: PathBuf,
    /// Tokenizer folder; `None`: the model folder.
    pub tokenizer: Option<PathBuf>,
    pub scorer: ScorerKind,
}

impl ModelConfig {
    /// The folder the tokenizer files are read from.
    pub fn tokenizer_dir(&self) -> PathBuf {
        self.tokenizer.clone().unwrap_or_else(|| self.dir.clone())
    }
}

/// Which rows are read.
#[derive(Debug, Clone)]
pub struct DataConfig {
    pub spec: DatasetSpec,
    /// Only the first [`DEBUG_ROWS`] rows.
    pub debug: bool,
    /// Rows with `messages` are instruction data even when they have chosen/rejected.
    pub prioritize_scoring: bool,
}

/// Rows kept by `--debug`.
pub const DEBUG_ROWS: usize = 10;

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            spec: DatasetSpec {
                source: Source::Hub {
                    repo: crate::data::CORE_SET.to_string(),
                    revision: None,
                },
                split: None,
                pref_sets: false,
            },
            debug: false,
            prioritize_scoring: false,
        }
    }
}

/// How rows become text.
#[derive(Debug, Clone, Default)]
pub struct TemplateConfig {
    /// fastchat template name, used when the tokenizer has no chat template.
    pub chat_template: Option<String>,
    /// Date that `strftime_now` reports (`None`: today).
    pub date: Option<Date>,
}

/// run_v2's truncation: which end of a text longer than `max_length` is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutSide {
    /// The tokenizer's `truncation_side` (right unless its config says left), as run_v2.
    Tokenizer,
    Left,
    Right,
}

/// How text becomes tokens.
#[derive(Debug, Clone)]
pub struct TokenizeConfig {
    /// Token limit: applied with `force_truncation` (v1) or `cut` (v2).
    pub max_length: usize,
    /// v1's `--force_truncation`: keep the last `max_length` tokens.
    pub force_truncation: bool,
    /// `rewardbench v2`: every text cut at `max_length` on this side, never an error.
    pub cut: Option<CutSide>,
    /// Tokenize with the tokenizer's special tokens (`add_special_tokens`); `false` for
    /// models whose upstream pipeline encodes without them (InternLM2, WorldPM).
    pub add_special_tokens: bool,
    /// RewardBench's double-BOS fix (PR #166): the first of two leading BOS tokens is masked
    /// out; `false` for the special pipelines that do not apply it (UltraRM, Beaver, GRM,
    /// ArmoRM, Skywork-VL, ...).
    pub double_bos_mask: bool,
    /// `false`: the model is given no attention mask upstream (WorldPM), so every token of a
    /// text is attended (a leading double BOS included).
    pub attention_mask: bool,
    /// A token id appended to every text that does not already end with it (InternLM2's
    /// reward token), after any truncation.
    pub append_token: Option<u32>,
}

/// `rewardbench v2`'s `--max_length` (run_v2's default).
pub const V2_MAX_LENGTH: usize = 2048;

impl Default for TokenizeConfig {
    fn default() -> Self {
        Self {
            max_length: 512,
            force_truncation: false,
            cut: None,
            add_special_tokens: true,
            double_bos_mask: true,
            attention_mask: true,
            append_token: None,
        }
    }
}

/// How scores become verdicts.
#[derive(Debug, Clone, Default)]
pub struct ScoringConfig {
    /// Each score rounded to this format before any comparison (`--score_dtype`).
    pub score_dtype: ScoreDtype,
    /// RewardBench 2's rules for every row (`rewardbench v2`); otherwise only for datasets
    /// whose rows list their completions.
    pub best_of_n: bool,
}

/// How a reward model's output becomes a text's score (`scorer::transform` applies it): which
/// graph output, where a per-token export is pooled, then a column or a transform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadConfig {
    /// `--pooling`: where a per-token export's score is read; `None`: the export's own (a
    /// pooled graph pools inside; a per-token export at the last non-pad token).
    pub pooling: Option<Pooling>,
    /// `--score_output`: the graph output holding the score; `None`: `logits`, else
    /// `token_logits`.
    pub output: Option<String>,
    /// `--score_column`: keep only this label of a multi-label output.
    pub column: Option<usize>,
    /// `--score_transform`: applied to the (column of the) output.
    pub transform: ScoreTransform,
    /// `--save_token_rewards`: write the head at every position of a per-token export.
    pub save_token_rewards: bool,
}

/// Default cap on padded tokens per call on CPU. Measured on 2 Zen 3 cores, 40 LLMBar pairs,
/// batch size 8: an eager-attention graph (the tiny Llama fixture) peaks at 2.1 GB with 16384
/// (attention scores grow with rows x heads x length^2), 1.3 GB with 8192, 0.58 GB with 4096,
/// and 4096 is no slower (5.9 s vs 8.6 s there; 23 s vs 21 s, within noise, for a 30M Llama
/// with the packed export, whose memory stays near 0.45 GB).
pub const MAX_BATCH_TOKENS_CPU: usize = 4_096;
/// Default cap on a GPU (`--device cuda` / `tensorrt`): larger calls keep it busy.
pub const MAX_BATCH_TOKENS_GPU: usize = 16_384;

/// Default memory for an eager-attention graph's score buffers per call on CPU, in MiB
/// (`--max_attention_mb`): with the model's heads from `config.json` it caps rows x longest
/// row squared per call ([`crate::scorer::call_limits`]). The tiny Llama fixture (4 heads)
/// under the token cap stays below it; a 32-head model gets 1 row of 1024 tokens, 4 of 512.
/// Measured on the fixture with 1670-token rows, batch 8, no token cap: 2.65 GB peak and
/// 19.3 s without this cap, 0.53 GB and 12.7 s with 256 MiB (smaller calls are no slower).
pub const MAX_ATTENTION_MB_CPU: usize = 1_024;
/// The same on a GPU (`--device cuda` / `tensorrt`).
pub const MAX_ATTENTION_MB_GPU: usize = 4_096;

/// How texts are grouped into model calls.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    pub batching: Batching,
    /// Rows per model call.
    pub batch_size: usize,
    /// Cap on padded tokens per call (rows x longest row); 0: no cap.
    pub max_batch_tokens: usize,
    /// Cap on an eager-attention graph's score buffers per call, in MiB; 0: no cap.
    pub max_attention_mb: usize,
    /// Packed exports: texts of one prompt share a row.
    pub share_prefixes: bool,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            batching: Batching::Sorted,
            batch_size: 8,
            max_batch_tokens: MAX_BATCH_TOKENS_CPU,
            max_attention_mb: MAX_ATTENTION_MB_CPU,
            share_prefixes: true,
        }
    }
}

/// Where the model runs.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub device: Device,
    pub device_id: i32,
    /// TensorRT fp16 engines.
    pub fp16: bool,
    /// TensorRT engine and timing cache folder.
    pub trt_cache: Option<PathBuf>,
    /// ONNX Runtime intra-op threads; 0: the available cores.
    pub threads: usize,
    /// Path of libonnxruntime.so; `None`: the documented lookup.
    pub ort_lib: Option<PathBuf>,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            device_id: 0,
            fp16: false,
            trt_cache: None,
            threads: 0,
            ort_lib: None,
        }
    }
}

/// Where results go and how the run treats earlier work.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    pub dir: PathBuf,
    /// Keep a resume cache in the output folder.
    pub cache: bool,
    /// Discard an existing resume cache.
    pub overwrite: bool,
    /// Also write `{name}_all.jsonl`.
    pub save_all: bool,
    /// No progress lines.
    pub quiet: bool,
    /// Score only this shard of the rows (`--shard i/n`).
    pub shard: Option<crate::shard::Shard>,
    /// The result files' name when not the model's (another model with the same folder name
    /// already has results in `dir`).
    pub name: Option<String>,
    /// `--dry_run`: plan and measure a few calls; write nothing.
    pub dry_run: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("results/"),
            cache: true,
            overwrite: false,
            save_all: false,
            quiet: false,
            shard: None,
            name: None,
            dry_run: false,
        }
    }
}

/// Everything an evaluation needs, by stage.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub template: TemplateConfig,
    pub tokenize: TokenizeConfig,
    pub scoring: ScoringConfig,
    /// How the model's output becomes a score.
    pub head: HeadConfig,
    pub batch: BatchConfig,
    pub device: DeviceConfig,
    pub output: OutputConfig,
}

impl RunConfig {
    /// The defaults for `model` on a local dataset file or folder (quiet, no resume cache):
    /// the form tests and library users start from.
    pub fn local(model: impl Into<PathBuf>, data: impl Into<PathBuf>) -> Self {
        let mut c = Self::default();
        c.model.dir = model.into();
        c.data.spec = DatasetSpec {
            source: Source::Local(data.into()),
            split: None,
            pref_sets: false,
        };
        c.output.cache = false;
        c.output.quiet = true;
        c
    }
}
