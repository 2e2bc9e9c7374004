//! The evaluation pipeline: data -> template -> tokenize -> batch -> backend -> scoring.

use std::path::PathBuf;
use std::time::Instant;

use crate::backend::{self, BackendError, RewardSession, SessionOptions};
use crate::batch::{self, Batching};
use crate::data::{DataError, Dataset};
use crate::model::{ModelError, ModelFiles};
use crate::scoring;
use crate::template::{ChatTemplate, JinjaTemplate, RenderedPair, TemplateError};
use crate::tokenize::{EncodeOptions, Encoded, Encoder, TokenizeError, TokenizerConfig};

/// Everything that can stop an evaluation, by stage.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error(transparent)]
    Template(TemplateError),
    #[error("{path}: {place}: {source}")]
    RowTemplate {
        path: PathBuf,
        place: String,
        source: TemplateError,
    },
    #[error(
        "{path}: {place}: the {side} text is {len} tokens, more than the model's {max} positions; \
         pass --force_truncation (with --max_length) to keep its last tokens"
    )]
    TooLong {
        path: PathBuf,
        place: String,
        side: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "{path}: {place}: token id {id} is outside the model's vocabulary of {vocab}: the tokenizer \
         ({tokenizer}) does not belong to this model"
    )]
    Vocab {
        path: PathBuf,
        place: String,
        id: i64,
        vocab: usize,
        tokenizer: PathBuf,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{path}: {place}: the model gave a non-finite score ({value}) for the {side} text")]
    NonFinite {
        path: PathBuf,
        place: String,
        side: &'static str,
        value: f32,
    },
}

/// What to evaluate and how.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    pub model: PathBuf,
    pub tokenizer: Option<PathBuf>,
    pub dataset: PathBuf,
    pub chat_template: Option<String>,
    pub batch_size: usize,
    pub max_length: usize,
    pub force_truncation: bool,
    pub debug: bool,
    pub batching: Batching,
    pub threads: usize,
    pub ort_lib: Option<PathBuf>,
    pub quiet: bool,
}

/// A dataset rendered and tokenized, ready for the model.
pub struct Prepared {
    pub model: ModelFiles,
    pub tokenizer_dir: PathBuf,
    pub template_label: String,
    pub dataset: Dataset,
    pub rendered: Vec<RenderedPair>,
    /// Sequences to score; `seq_of[row] = [chosen, rejected]` indexes into it.
    pub seqs: Vec<Encoded>,
    pub seq_of: Vec<[usize; 2]>,
    pub pad_id: i64,
    pub warnings: Vec<String>,
}

/// One scored row.
#[derive(Debug, Clone)]
pub struct RowResult {
    pub score_chosen: Vec<f32>,
    pub score_rejected: Vec<f32>,
    pub correct: bool,
}

/// Throughput figures of a run.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub model_calls: usize,
    pub pad_tokens: usize,
    pub computed_tokens: usize,
    pub seconds: f64,
}

/// A finished evaluation.
pub struct Evaluation {
    pub prepared: Prepared,
    pub batching: Batching,
    pub rows: Vec<RowResult>,
    pub onnxruntime_version: String,
    pub onnxruntime_library: PathBuf,
    pub stats: Stats,
}

/// Renders and tokenizes the dataset (no ONNX Runtime needed).
pub fn prepare(cfg: &EvalConfig) -> Result<Prepared, EvalError> {
    let model = ModelFiles::locate(&cfg.model)?;
    let tokenizer_dir = cfg.tokenizer.clone().unwrap_or_else(|| cfg.model.clone());
    let tok_cfg = TokenizerConfig::load(&tokenizer_dir)?;
    let jinja = match &tok_cfg.chat_template {
        Some(src) => Some(
            JinjaTemplate::new(
                src,
                tok_cfg.special.clone(),
                &cfg.model.display().to_string(),
                &tok_cfg.chat_template_file,
            )
            .map_err(EvalError::Template)?,
        ),
        None => None,
    };
    let template = ChatTemplate::select(jinja, cfg.chat_template.as_deref(), &tokenizer_dir)
        .map_err(EvalError::Template)?;
    let mut warnings = Vec::new();
    if tok_cfg.chat_template.is_some() {
        if let Some(name) = &cfg.chat_template {
            warnings.push(format!(
                "--chat_template {name} is ignored: the tokenizer has its own chat template, which wins (as in RewardBench)"
            ));
        }
    }
    let opts = EncodeOptions {
        truncate_to: cfg.force_truncation.then_some(cfg.max_length),
        append_eos: template.is_named() && Encoder::is_llama_family(&tok_cfg),
    };
    let encoder = Encoder::load(&tokenizer_dir, &tok_cfg, opts)?;

    let mut dataset = Dataset::load(&cfg.dataset)?;
    if cfg.debug {
        dataset.rows.truncate(10);
    }
    let path = dataset.path.clone();
    let mut rendered = Vec::with_capacity(dataset.rows.len());
    for row in &dataset.rows {
        let r = template
            .render_pair(row)
            .map_err(|source| EvalError::RowTemplate {
                path: path.clone(),
                place: row.place.clone(),
                source,
            })?;
        for (side, text) in [("chosen", &row.chosen), ("rejected", &row.rejected)] {
            if text.trim().is_empty() {
                warnings.push(format!(
                    "{}: {}: the {side} answer is empty (scored as the reference does)",
                    path.display(),
                    row.place
                ));
            }
        }
        rendered.push(r);
    }

    // Sequences: in sorted mode identical texts are scored once (so identical answers tie
    // exactly); in reference mode every text is its own sequence, as in RewardBench.
    let mut seqs: Vec<Encoded> = Vec::new();
    let mut seq_of = Vec::with_capacity(rendered.len());
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let max_pos = model.max_positions();
    let vocab = model.vocab_size();
    for (row, r) in dataset.rows.iter().zip(&rendered) {
        let mut pair = [0usize; 2];
        for (k, (side, text)) in [("chosen", &r.text_chosen), ("rejected", &r.text_rejected)]
            .into_iter()
            .enumerate()
        {
            if cfg.batching == Batching::Sorted {
                if let Some(&i) = index.get(text.as_str()) {
                    pair[k] = i;
                    continue;
                }
            }
            let enc = encoder.encode(
                text,
                &format!("{} {}: {side} text", path.display(), row.place),
            )?;
            if let Some(max) = max_pos {
                if enc.ids.len() > max {
                    return Err(EvalError::TooLong {
                        path: path.clone(),
                        place: row.place.clone(),
                        side,
                        len: enc.ids.len(),
                        max,
                    });
                }
            }
            if let (Some(v), Some(&id)) = (vocab, enc.ids.iter().max()) {
                if id >= v as i64 {
                    return Err(EvalError::Vocab {
                        path: path.clone(),
                        place: row.place.clone(),
                        id,
                        vocab: v,
                        tokenizer: encoder.path.clone(),
                    });
                }
            }
            pair[k] = seqs.len();
            if cfg.batching == Batching::Sorted {
                index.insert(text.as_str(), seqs.len());
            }
            seqs.push(enc);
        }
        seq_of.push(pair);
    }

    // The export's pooling finds the last token whose id is not config.pad_token_id, so pad with that id.
    let pad_id = match model.pad_token_id() {
        Some(p) => {
            if p != i64::from(encoder.pad_id) {
                warnings.push(format!(
                    "config.json pad_token_id {p} differs from the tokenizer's pad id {}; padding with {p}, the id the exported pooling expects",
                    encoder.pad_id
                ));
            }
            p
        }
        None => i64::from(encoder.pad_id),
    };
    Ok(Prepared {
        tokenizer_dir,
        template_label: template.label().to_string(),
        model,
        dataset,
        rendered,
        seqs,
        seq_of,
        pad_id,
        warnings,
    })
}

/// Scores prepared sequences with the model.
pub fn run(prepared: Prepared, cfg: &EvalConfig) -> Result<Evaluation, EvalError> {
    let rt = backend::runtime(cfg.ort_lib.as_deref())?;
    let mut session = RewardSession::open(
        rt,
        &prepared.model.onnx,
        SessionOptions {
            threads: cfg.threads,
        },
    )?;
    let plans = match cfg.batching {
        Batching::Sorted => {
            let lengths: Vec<usize> = prepared.seqs.iter().map(|s| s.ids.len()).collect();
            batch::plan_sorted(&lengths, cfg.batch_size)
        }
        Batching::Reference => batch::plan_reference(prepared.seq_of.len(), cfg.batch_size),
    };
    let (pad_tokens, computed_tokens) = batch::padding(&prepared.seqs, &plans);
    let start = Instant::now();
    let mut scores: Vec<Vec<f32>> = vec![Vec::new(); prepared.seqs.len()];
    let mut last_log = Instant::now();
    for (n, plan) in plans.iter().enumerate() {
        let (ids, mask) = batch::pad(&prepared.seqs, plan, prepared.pad_id);
        let out = session.score(&ids, &mask)?;
        for (&i, s) in plan.members.iter().zip(out) {
            scores[i] = s;
        }
        if !cfg.quiet && (last_log.elapsed().as_secs() >= 10 || n + 1 == plans.len()) {
            eprintln!(
                "scored {}/{} batches ({:.1}s)",
                n + 1,
                plans.len(),
                start.elapsed().as_secs_f64()
            );
            last_log = Instant::now();
        }
    }
    let seconds = start.elapsed().as_secs_f64();

    let path = &prepared.dataset.path;
    let mut rows = Vec::with_capacity(prepared.seq_of.len());
    for (row, [c, r]) in prepared.dataset.rows.iter().zip(&prepared.seq_of) {
        for (side, s) in [("chosen", &scores[*c]), ("rejected", &scores[*r])] {
            if let Some(&value) = s.iter().find(|v| !v.is_finite()) {
                return Err(EvalError::NonFinite {
                    path: path.clone(),
                    place: row.place.clone(),
                    side,
                    value,
                });
            }
        }
        rows.push(RowResult {
            correct: scoring::prefers(&scores[*c], &scores[*r]),
            score_chosen: scores[*c].clone(),
            score_rejected: scores[*r].clone(),
        });
    }
    Ok(Evaluation {
        prepared,
        batching: cfg.batching,
        rows,
        onnxruntime_version: rt.version.clone(),
        onnxruntime_library: rt.library.clone(),
        stats: Stats {
            model_calls: plans.len(),
            pad_tokens,
            computed_tokens,
            seconds,
        },
    })
}

/// Prepares and runs in one go.
pub fn evaluate(cfg: &EvalConfig) -> Result<Evaluation, EvalError> {
    let prepared = prepare(cfg)?;
    run(prepared, cfg)
}
