//! Scorers: what turns rendered rows into per-text rewards. A sequence classifier
//! ([`rm`]), DPO's implicit rewards ([`dpo`]) and pairwise preference models ([`pairwise`],
//! which build their own inputs) share the template and tokenizer setup, the
//! row checks and their error type here.

pub mod dpo;
mod fingerprint;
pub mod judge;
pub mod pairwise;
pub mod pooling;
pub mod rm;
pub mod transform;

use std::path::{Path, PathBuf};

use std::collections::HashMap;

use crate::config::{CutSide, RunConfig};
use crate::data::{Dataset, Prompt};
use crate::model::{ModelError, ModelFiles};
use crate::prompt::{self, Rendered};
use crate::run::parallel::parallel_map;
use crate::template::{ChatTemplate, JinjaOptions, JinjaTemplate, TemplateError};
use crate::tokenize::{EncodeOptions, Encoder, TokenizeError, TokenizerConfig, TruncationSide};

/// Where a row is: its file and its place in the file (`line 7`, `data/x.parquet row 2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRef {
    pub path: PathBuf,
    pub place: String,
}

impl RowRef {
    pub fn new(path: &Path, place: &str) -> Self {
        Self {
            path: path.to_path_buf(),
            place: place.to_string(),
        }
    }
}

impl std::fmt::Display for RowRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.place)
    }
}

/// What is wrong with one row.
#[derive(Debug, thiserror::Error)]
pub enum RowProblem {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("the {side} text is {len} tokens, more than the {max} positions of {model}{hint}", model = model.display())]
    TooLong {
        side: &'static str,
        len: usize,
        max: usize,
        model: PathBuf,
        /// What to do about it, when there is something (`; pass --force_truncation ...`).
        hint: &'static str,
    },
    #[error("token id {id} is outside the vocabulary of {model} ({vocab} tokens){detail}", model = model.display())]
    Vocab {
        id: i64,
        vocab: usize,
        model: PathBuf,
        detail: String,
    },
    #[error("it has the same id {id} as {other} in the same subset")]
    DuplicateId { id: String, other: String },
    #[error("the model gave a non-finite score ({value}) for the {side} text")]
    NonFinite { side: &'static str, value: f32 },
    #[error(
        "the rendered prompt has {prompt} tokens but prompt + {side} answer only {full} \
         (the reference raises `Prompt input ids and answer input ids should have the same length`)"
    )]
    Boundary {
        side: &'static str,
        prompt: usize,
        full: usize,
    },
}

/// A row that cannot be scored: the file, the row, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct RowError {
    pub at: RowRef,
    pub problem: RowProblem,
}

impl RowError {
    pub fn new(path: &Path, place: &str, problem: impl Into<RowProblem>) -> Self {
        Self {
            at: RowRef::new(path, place),
            problem: problem.into(),
        }
    }
}

/// Renders every sample with the row rules ([`prompt::render`]), on all cores.
pub fn render_all(template: &ChatTemplate, dataset: &Dataset) -> Result<Vec<Rendered>, RowError> {
    parallel_map(&dataset.rows, crate::available_cores(), |row| {
        prompt::render(template, row).map_err(|e| RowError::new(&dataset.path, &row.place, e))
    })
}

/// The checks every scorer runs on samples: ids unique within a subset (preference data;
/// rows without an id are not checked). Returns warnings for empty answers (scored as the
/// reference scores them).
pub fn validate(dataset: &Dataset) -> Result<Vec<String>, RowError> {
    let mut seen: HashMap<(Option<&str>, String), &str> = HashMap::new();
    let mut warnings = Vec::new();
    for row in &dataset.rows {
        let answers = row.chosen.iter().map(|t| ("chosen", t));
        for (side, text) in answers.chain(row.rejected.iter().map(|t| ("rejected", t))) {
            if text.trim().is_empty() {
                warnings.push(format!(
                    "{}: {}: the {side} answer is empty (scored as the reference does)",
                    dataset.path.display(),
                    row.place
                ));
            }
        }
        if matches!(row.prompt, Prompt::Conversation(_)) {
            continue;
        }
        let Some(id) = row.metadata.get("id").filter(|v| !v.is_null()) else {
            continue;
        };
        let id = id.as_str().map_or_else(|| id.to_string(), str::to_string);
        if let Some(other) = seen.insert((row.subset(), id.clone()), &row.place) {
            return Err(RowError::new(
                &dataset.path,
                &row.place,
                RowProblem::DuplicateId {
                    id,
                    other: other.to_string(),
                },
            ));
        }
    }
    Ok(warnings)
}

/// Session options for the configured device (`profile`: TensorRT's, from the planned shapes).
pub fn session_options(
    cfg: &RunConfig,
    profile: Option<crate::backend::ShapeProfile>,
) -> crate::backend::SessionOptions {
    crate::backend::SessionOptions {
        threads: cfg.device.threads,
        device: cfg.device.device,
        device_id: cfg.device.device_id,
        fp16: cfg.device.fp16,
        trt_cache: cfg.device.trt_cache.clone(),
        profile,
    }
}

/// Bytes an eager-attention graph holds per attention score of one head at its peak: about
/// eight float32 buffers of heads x rows x length squared. Measured on the tiny Llama fixture
/// (4 heads), rows of about 1670 tokens: each row past the first added 357 MB at 4 rows and
/// 303 MB at 8 (28-35 bytes per score).
const BYTES_PER_SCORE: usize = 32;

/// The limits of one model call: `--batch_size`, `--max_batch_tokens` and, for graphs with
/// eager attention (`eager`: every export but the packed one), `--max_attention_mb` over the
/// most attention heads of `models` (no score cap when no `config.json` names them).
pub fn call_limits(cfg: &RunConfig, models: &[&ModelFiles], eager: bool) -> crate::batch::Limits {
    let heads = models.iter().filter_map(|m| m.attention_heads()).max();
    let scores = match (eager, heads, cfg.batch.max_attention_mb) {
        (true, Some(h), mb) if mb > 0 => {
            (mb.saturating_mul(1 << 20) / h.saturating_mul(BYTES_PER_SCORE)).max(1)
        }
        _ => 0,
    };
    crate::batch::Limits {
        units: cfg.batch.batch_size,
        tokens: cfg.batch.max_batch_tokens,
        scores,
    }
}

/// Errors setting up the template and tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// Fails when a sequence is longer than `model`'s positions or holds an id outside its
/// vocabulary. `hint` follows the length message; `detail` the vocabulary one.
pub fn check_sequence(
    ids: &[i64],
    side: &'static str,
    model: &ModelFiles,
    hint: &'static str,
    detail: impl FnOnce() -> String,
) -> Result<(), RowProblem> {
    if let Some(max) = model.max_positions().filter(|&max| ids.len() > max) {
        return Err(RowProblem::TooLong {
            side,
            len: ids.len(),
            max,
            model: model.dir.clone(),
            hint,
        });
    }
    if let (Some(v), Some(&id)) = (model.vocab_size(), ids.iter().max()) {
        if id >= v as i64 {
            return Err(RowProblem::Vocab {
                id,
                vocab: v,
                model: model.dir.clone(),
                detail: detail(),
            });
        }
    }
    Ok(())
}

/// The model's files, its chat template and tokenizer, as both scoring paths need them.
pub struct Setup {
    pub model: ModelFiles,
    pub tokenizer_dir: PathBuf,
    pub template: ChatTemplate,
    pub encoder: Encoder,
    /// How texts are truncated, if they are.
    pub truncation: Option<Truncation>,
    pub warnings: Vec<String>,
}

/// Truncation in force: texts cut to `max_length` tokens (special tokens included) on `side`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    pub max_length: usize,
    pub side: TruncationSide,
    /// run_v2's rule (`rewardbench v2`), not v1's `--force_truncation`.
    pub cut: bool,
}

/// Tokenization rule of a scoring path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokenization {
    /// The reward model's: special tokens, optional truncation, EOS on the fastchat path.
    Classifier,
    /// DPO's: plain encodes, BOS and EOS added by the row rule.
    Dpo,
}

pub fn setup(cfg: &RunConfig, rule: Tokenization) -> Result<Setup, SetupError> {
    let model = ModelFiles::for_run(cfg)?;
    let tokenizer_dir = cfg.model.tokenizer_dir();
    let tok_cfg = TokenizerConfig::load(&tokenizer_dir)?;
    let jinja = match &tok_cfg.chat_template {
        Some(src) => Some(
            JinjaTemplate::with_options(
                src,
                tok_cfg.special.clone(),
                &cfg.model.dir.display().to_string(),
                &tok_cfg.chat_template_file,
                JinjaOptions {
                    date: cfg.template.date,
                    ..JinjaOptions::default()
                },
            )?
            .with_additional_special_tokens(&tok_cfg.additional_special_tokens),
        ),
        None => None,
    };
    let template =
        ChatTemplate::select(jinja, cfg.template.chat_template.as_deref(), &tokenizer_dir)?;
    let mut warnings = Vec::new();
    if tok_cfg.chat_template.is_some() {
        if let Some(name) = &cfg.template.chat_template {
            warnings.push(format!(
                "--chat_template {name} is ignored: the tokenizer has its own chat template, which wins (as in RewardBench)"
            ));
        }
    }
    let truncation = match (rule, cfg.tokenize.cut) {
        (Tokenization::Dpo, _) => None,
        (Tokenization::Classifier, Some(cut)) => Some(Truncation {
            max_length: cfg.tokenize.max_length,
            side: match cut {
                CutSide::Tokenizer => tok_cfg.truncation_side.unwrap_or(TruncationSide::Right),
                CutSide::Left => TruncationSide::Left,
                CutSide::Right => TruncationSide::Right,
            },
            cut: true,
        }),
        (Tokenization::Classifier, None) => cfg.tokenize.force_truncation.then_some(Truncation {
            max_length: cfg.tokenize.max_length,
            side: TruncationSide::Left,
            cut: false,
        }),
    };
    let opts = match rule {
        Tokenization::Classifier => EncodeOptions {
            truncate_to: truncation.map(|t| (t.max_length, t.side)),
            append_eos: template.is_named() && Encoder::is_llama_family(&tok_cfg),
            add_special_tokens: cfg.tokenize.add_special_tokens,
            double_bos_mask: cfg.tokenize.double_bos_mask,
            attention_mask: cfg.tokenize.attention_mask,
            append_token: cfg.tokenize.append_token,
        },
        Tokenization::Dpo => EncodeOptions::default(),
    };
    let encoder = Encoder::load(&tokenizer_dir, &tok_cfg, opts)?;
    Ok(Setup {
        model,
        tokenizer_dir,
        template,
        encoder,
        truncation,
        warnings,
    })
}

/// The run's resume cache, when it keeps one: `{output}/{name}.cache.jsonl`
/// (`{name}.v2.cache.jsonl` for `rewardbench v2`, so a v1 and a v2 run can share a folder).
pub fn cache_path(cfg: &RunConfig) -> Option<PathBuf> {
    let kind = if cfg.scoring.best_of_n { ".v2" } else { "" };
    cfg.output.cache.then(|| {
        cfg.output.dir.join(format!(
            "{}{kind}.cache.jsonl",
            crate::model::run_model_name(cfg)
        ))
    })
}
