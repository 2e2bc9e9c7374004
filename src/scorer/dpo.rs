//! DPO implicit rewards, as RewardBench's `DPOInference` (rewardbench/dpo.py, from TRL) computes
//! them: the log-probability of the response under the policy minus under the reference model,
//! or, without a reference, the policy's log-probability reduced by `sum`, `avg` or `norm`.
//!
//! Per row: response = rendered text with every occurrence of the rendered prompt removed;
//! prompt + response tokenized together without special tokens (the last prompt token goes to
//! the response when it merges with it); BOS forced before the prompt, EOS after the response;
//! truncation to 2048 tokens (prompt keeps its last 128, then responses their first 1920);
//! log-probs of each response token (including template text and the EOS) summed. Chosen and
//! rejected of a batch run as one right-padded call (pad = EOS) per model.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;
use serde_json::Value;

use super::rm::{Evaluation, Prepared, RowResult, Stats};
use super::{check_sequence, fingerprint, RowError, RowProblem, SetupError};
use crate::backend::lm::{CacheHints, LmError, LmSession};
use crate::backend::{self, BackendError};
use crate::batch;
use crate::batch::Batching;
use crate::config::RunConfig;
use crate::data::{DataError, Dataset};
use crate::model::{ModelError, ModelFiles};
use crate::prompt::Rendered;
use crate::run::execute::{self as executor, ExecuteError, Interrupted};
use crate::run::parallel::parallel_map;
use crate::run::store::{Cache, CacheError};
use crate::scoring::verdict::{self, Outcome};
use crate::tokenize::dpo::{DpoPair, DpoTokenizeError};
pub use crate::tokenize::dpo::{MAX_LENGTH, MAX_PROMPT_LENGTH};
use crate::tokenize::{self, Encoded, Encoder, TokenizeError};

pub use crate::config::{DpoMode, RefFree};

/// Errors of DPO evaluation, by stage.
#[derive(Debug, thiserror::Error)]
pub enum DpoError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error(transparent)]
    Row(#[from] RowError),
    #[error("--ref_model {0} is the policy model itself; the reference must be a different model")]
    SameModel(PathBuf),
    #[error(
        "the policy tokenizer ({policy}) and the reference model's tokenizer ({reference}) differ: \
         {detail}. DPO rewards compare log-probs of the same token ids, so both models must share one vocabulary"
    )]
    TokenizerMismatch {
        policy: PathBuf,
        reference: PathBuf,
        detail: String,
    },
    #[error("the tokenizer at {0} has no eos token, which DPO scoring appends to every answer")]
    NoEos(PathBuf),
    #[error(transparent)]
    Lm(#[from] LmError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

impl From<ExecuteError<DpoError>> for DpoError {
    fn from(e: ExecuteError<DpoError>) -> Self {
        match e {
            ExecuteError::Call(e) => e,
            ExecuteError::Store(e) => Self::Cache(e),
            ExecuteError::Interrupted(i) => Self::Interrupted(i),
        }
    }
}

/// The reference's `tokenize_row` for one rendered row ([`crate::tokenize::dpo`]), its
/// errors placed at the row.
pub fn tokenize_row(
    enc: &Encoder,
    bos: i64,
    eos: i64,
    r: &Rendered,
    path: &Path,
    place: &str,
) -> Result<DpoPair, DpoError> {
    let what = format!("{} {place}", path.display());
    tokenize::dpo::tokenize_row(enc, bos, eos, &r.prompt, &r.chosen, &r.rejected, &what).map_err(
        |e| match e {
            DpoTokenizeError::Tokenize(e) => DpoError::Tokenize(e),
            DpoTokenizeError::Boundary { side, prompt, full } => {
                RowError::new(path, place, RowProblem::Boundary { side, prompt, full }).into()
            }
        },
    )
}

/// Sum, count and sum of squares of the response tokens' log-probs (`lp` shifted by one).
fn reduce(lp: ndarray::ArrayView1<f32>, len: usize, prompt_len: usize) -> (f64, f64, f64) {
    let (mut sum, mut sq) = (0.0f64, 0.0f64);
    let first = prompt_len.max(1);
    for j in first..len {
        let v = f64::from(lp[j - 1]);
        sum += v;
        sq += v * v;
    }
    (sum, len.saturating_sub(first) as f64, sq)
}

/// The reward of one sequence from its policy (and reference) reductions.
fn reward(mode: &DpoMode, policy: (f64, f64, f64), reference: Option<(f64, f64, f64)>) -> f32 {
    match mode {
        // RewardBench subtracts float32 sums.
        DpoMode::Reference(_) => policy.0 as f32 - reference.map_or(0.0, |r| r.0 as f32),
        DpoMode::RefFree(RefFree::Sum) => policy.0 as f32,
        DpoMode::RefFree(RefFree::Avg) => (policy.0 / policy.1) as f32,
        DpoMode::RefFree(RefFree::Norm) => -(policy.2.sqrt()) as f32,
    }
}

fn config_i64(cfg: Option<&Value>, keys: &[&str]) -> Option<i64> {
    let c = cfg?;
    keys.iter().find_map(|k| c.get(*k).and_then(Value::as_i64))
}

/// Key/value sizes for empty past inputs, from `config.json`.
fn cache_hints(m: &ModelFiles) -> CacheHints {
    let c = m.config.as_ref();
    let heads = config_i64(c, &["num_attention_heads", "n_head"]);
    let hidden = config_i64(c, &["hidden_size", "n_embd"]);
    CacheHints {
        kv_heads: config_i64(c, &["num_key_value_heads"]).or(heads),
        head_dim: config_i64(c, &["head_dim"]).or_else(|| match (hidden, heads) {
            (Some(h), Some(n)) if n > 0 => Some(h / n),
            _ => None,
        }),
    }
}

/// Fails when the two tokenizer files have different vocabularies (or the configs different sizes).
fn check_same_vocab(
    policy_tok: &Path,
    ref_dir: &Path,
    policy: &ModelFiles,
    reference: &ModelFiles,
) -> Result<(), DpoError> {
    let ref_tok = ref_dir.join("tokenizer.json");
    let mismatch = |detail: String| DpoError::TokenizerMismatch {
        policy: policy_tok.to_path_buf(),
        reference: ref_tok.clone(),
        detail,
    };
    if let (Some(a), Some(b)) = (policy.vocab_size(), reference.vocab_size()) {
        if a != b {
            return Err(mismatch(format!(
                "config.json vocab_size is {a} for the policy and {b} for the reference"
            )));
        }
    }
    if !ref_tok.is_file() {
        return Ok(()); // the reference scores the policy tokenizer's ids, as RewardBench does
    }
    let load = |p: &Path| {
        tokenizers::Tokenizer::from_file(p).map_err(|e| TokenizeError::Load {
            path: p.to_path_buf(),
            message: e.to_string(),
        })
    };
    let a = load(policy_tok)?.get_vocab(true);
    let b = load(&ref_tok)?.get_vocab(true);
    if a != b {
        let mut diff: Vec<String> = a
            .iter()
            .filter(|(t, id)| b.get(*t) != Some(id))
            .take(3)
            .map(|(t, id)| match b.get(t) {
                Some(other) => format!("`{t}` is {id} vs {other}"),
                None => format!("`{t}` ({id}) is missing from the reference"),
            })
            .collect();
        if diff.is_empty() {
            diff.push("the reference has tokens the policy lacks".into());
        }
        return Err(mismatch(format!(
            "{} vs {} tokens; e.g. {}",
            a.len(),
            b.len(),
            diff.join(", ")
        )));
    }
    Ok(())
}

/// The planned call's sequences, one right-padded row each (pad = EOS), at least 2 wide.
fn pad_rows(seqs: &[&Vec<i64>], plan: &batch::Plan, pad: i64) -> (Array2<i64>, Array2<i64>) {
    let rows: Vec<&Vec<i64>> = plan.members().map(|i| seqs[i]).collect();
    let cols = rows.iter().map(|s| s.len()).max().unwrap_or(2).max(2);
    let mut ids = Array2::from_elem((rows.len(), cols), pad);
    let mut mask = Array2::zeros((rows.len(), cols));
    for (r, s) in rows.iter().enumerate() {
        for (t, &id) in s.iter().enumerate() {
            ids[[r, t]] = id;
            mask[[r, t]] = 1;
        }
    }
    (ids, mask)
}

/// Fails when a sequence is longer than a model's positions or holds an id outside its vocabulary.
fn check_pair(
    pair: &DpoPair,
    models: &[&ModelFiles],
    path: &Path,
    place: &str,
) -> Result<(), DpoError> {
    for (k, ids) in pair.ids.iter().enumerate() {
        for m in models {
            check_sequence(ids, pair.side(k), m, "", String::new)
                .map_err(|p| RowError::new(path, place, p))?;
        }
    }
    Ok(())
}

/// Scores `cfg.dataset` with the policy `cfg.model` in `mode`; the result has the shape of a
/// reward-model evaluation (scores = rewards), so the usual reports apply.
pub fn evaluate(cfg: &RunConfig, mode: &DpoMode) -> Result<Evaluation, DpoError> {
    let dataset = Dataset::open(&cfg.data.spec)?;
    evaluate_dataset(cfg, mode, dataset)
}

/// [`evaluate`] on loaded samples.
pub fn evaluate_dataset(
    cfg: &RunConfig,
    mode: &DpoMode,
    mut dataset: Dataset,
) -> Result<Evaluation, DpoError> {
    let started = Instant::now();
    let policy = ModelFiles::locate(&cfg.model.dir)?;
    let reference = match mode {
        DpoMode::Reference(dir) => {
            let r = ModelFiles::locate(dir)?;
            let same = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            if same(&r.dir) == same(&policy.dir) {
                return Err(DpoError::SameModel(dir.clone()));
            }
            Some(r)
        }
        DpoMode::RefFree(_) => None,
    };
    let tokenizer_dir = cfg.model.tokenizer_dir();
    if let (Some(r), DpoMode::Reference(dir)) = (&reference, mode) {
        check_same_vocab(&tokenizer_dir.join("tokenizer.json"), dir, &policy, r)?;
    }
    let super::Setup {
        template,
        encoder,
        mut warnings,
        ..
    } = super::setup(cfg, super::Tokenization::Dpo)?;
    let eos = i64::from(
        encoder
            .eos_id
            .ok_or_else(|| DpoError::NoEos(encoder.path.clone()))?,
    );
    let bos = encoder.bos_id.map_or(eos, i64::from); // no BOS: the reference uses EOS

    if cfg.data.debug {
        dataset.rows.truncate(crate::config::DEBUG_ROWS);
    }
    let path = dataset.path.clone();
    let models: Vec<&ModelFiles> = std::iter::once(&policy).chain(reference.as_ref()).collect();
    let workers = crate::available_cores();
    // The shared row rules, then DPO's tokenization rule (TRL's tokenize_row) per row.
    warnings.extend(super::validate(&dataset)?);
    let rendered = super::render_all(&template, &dataset)?;
    let items: Vec<(&Rendered, &str)> = rendered
        .iter()
        .zip(&dataset.rows)
        .map(|(r, row)| (r, row.place.as_str()))
        .collect();
    let pairs: Vec<DpoPair> = parallel_map(&items, workers, |&(r, place)| {
        let pair = tokenize_row(&encoder, bos, eos, r, &path, place)?;
        check_pair(&pair, &models, &path, place)?;
        Ok::<_, DpoError>(pair)
    })?;
    let lengths = parallel_map(&dataset.rows, workers, |row| {
        tokenize::lengths::of_sample(row, Some(&encoder))
    })?;
    let prepare_seconds = started.elapsed().as_secs_f64();

    // Model calls: a row's completions run in the same call, each its own row; right
    // padding (pad = EOS) makes the grouping invisible in the rewards.
    let seqs: Vec<&Vec<i64>> = pairs.iter().flat_map(|p| p.ids.iter()).collect();
    let prompt_lens: Vec<usize> = pairs
        .iter()
        .flat_map(|p| p.prompt_len.iter().copied())
        .collect();
    let mut units: Vec<Vec<usize>> = Vec::with_capacity(pairs.len());
    let mut next = 0;
    for p in &pairs {
        units.push((next..next + p.ids.len()).collect());
        next += p.ids.len();
    }
    let seq_of = units.clone();
    let longest: Vec<usize> = pairs
        .iter()
        .map(|p| p.ids.iter().map(Vec::len).max().unwrap_or(0))
        .collect();
    let order = match cfg.batch.batching {
        Batching::Sorted => batch::Order::LongestFirst,
        Batching::Reference => batch::Order::AsGiven,
    };
    let plans = batch::plan_units(
        units,
        &longest,
        cfg.batch.batch_size,
        cfg.batch.max_batch_tokens,
        order,
        // RewardBench's batches of `batch_size` pairs, each split further by the token cap.
        batch::Fill::Chunks,
        |u| u.len(),
    );

    let rt = backend::runtime(cfg.device.ort_lib.as_deref(), cfg.device.device.wants_gpu())?;
    let opts = super::session_options(cfg, None);
    let mut policy_s = LmSession::open(rt, &policy.onnx, &opts, cache_hints(&policy))?;
    let mut ref_s = match &reference {
        Some(r) => Some(LmSession::open(rt, &r.onnx, &opts, cache_hints(r))?),
        None => None,
    };
    if let Some(note) = &policy_s.note {
        warnings.push(note.clone());
    }

    let t_run = Instant::now();
    let cache_file = super::cache_path(cfg, &policy);
    let mut cache = match &cache_file {
        Some(p) => Some(Cache::open(
            p,
            &fingerprint::dpo(
                &policy,
                reference.as_ref(),
                &encoder,
                mode,
                &seqs,
                &pairs,
                &plans,
                cfg,
                &rt.version,
            )?,
            cfg.output.overwrite,
        )?),
        None => None,
    };
    // Padded as pad_rows pads: every sequence a row, at least 2 wide.
    let (mut pad_tokens, mut computed_tokens) = (0, 0);
    for p in &plans {
        let width = p.members().map(|i| seqs[i].len()).max().unwrap_or(2).max(2);
        computed_tokens += width * p.len();
        pad_tokens += p.members().map(|i| width - seqs[i].len()).sum::<usize>();
    }
    let sizes: Vec<usize> = plans.iter().map(batch::Plan::len).collect();
    let has_ref = ref_s.is_some();
    let executed = executor::execute(
        &sizes,
        cache.as_mut().map(|c| c as &mut dyn executor::CallStore),
        |k| pad_rows(&seqs, &plans[k], eos),
        |k, (ids, mask)| {
            // Per sequence: the policy's (sum, count, sum of squares), then the reference's.
            let mut out: Vec<Vec<f64>> = vec![Vec::with_capacity(6); sizes[k]];
            let sessions = std::iter::once(&mut policy_s).chain(ref_s.as_mut());
            for s in sessions {
                let lp = s.token_logprobs(&ids, &mask)?;
                for (row, i) in plans[k].members().enumerate() {
                    let (sum, n, sq) = reduce(lp.row(row), seqs[i].len(), prompt_lens[i]);
                    out[row].extend([sum, n, sq]);
                }
            }
            Ok::<_, DpoError>(out)
        },
        "texts",
        cfg.output.quiet,
        &mut crate::run::observer::Stderr,
    )?;
    let mut reduced: Vec<Vec<f64>> = vec![Vec::new(); seqs.len()];
    for (p, out) in plans.iter().zip(executed.outputs) {
        for (i, r) in p.members().zip(out) {
            reduced[i] = r;
        }
    }

    let mut rows = Vec::with_capacity(pairs.len());
    for ((row, texts), pair) in dataset.rows.iter().zip(&seq_of).zip(&pairs) {
        let score = |s: usize| -> Result<f32, DpoError> {
            let r = &reduced[s];
            let triple = |at: usize| -> Result<(f64, f64, f64), DpoError> {
                match r.get(at..at + 3) {
                    Some(&[a, b, c]) => Ok((a, b, c)),
                    _ => Err(DpoError::Cache(CacheError::Corrupt {
                        path: cache_file.clone().unwrap_or_default(),
                        line: 0,
                        problem: "a DPO record has too few values".into(),
                    })),
                }
            };
            let reference = if has_ref { Some(triple(3)?) } else { None };
            Ok(reward(mode, triple(0)?, reference))
        };
        let mut outcome = Outcome::default();
        for (k, &s) in texts.iter().enumerate() {
            let v = score(s)?;
            if !v.is_finite() {
                return Err(RowError::new(
                    &path,
                    &row.place,
                    RowProblem::NonFinite {
                        side: pair.side(k),
                        value: v,
                    },
                )
                .into());
            }
            match k < pair.chosen {
                true => outcome.chosen.push(vec![v]),
                false => outcome.rejected.push(vec![v]),
            }
        }
        rows.push(RowResult {
            correct: verdict::pairwise(&outcome),
            outcome,
        });
    }
    let seqs: Vec<Encoded> = seqs
        .iter()
        .map(|ids| Encoded {
            ids: (*ids).clone(),
            mask: vec![1; ids.len()],
            truncated: false,
        })
        .collect();
    let model_count = models.len();
    Ok(Evaluation {
        prepared: Prepared {
            model: policy,
            tokenizer_dir,
            template_label: template.label().to_string(),
            dataset,
            rendered,
            seqs,
            seq_of,
            pad_id: eos,
            truncation: None,
            truncated: 0,
            warnings,
            lengths,
            prepare_seconds,
        },
        batching: cfg.batch.batching,
        rows,
        onnxruntime_version: rt.version.clone(),
        onnxruntime_library: rt.library.clone(),
        device: backend::device_name(policy_s.device),
        stats: Stats {
            model_calls: plans.len() * model_count,
            reused_calls: executed.reused * model_count,
            pad_tokens,
            computed_tokens,
            prepare_seconds,
            wait_seconds: executed.wait_seconds,
            ort_seconds: executed.call_seconds,
            total_seconds: prepare_seconds + t_run.elapsed().as_secs_f64(),
            ..Stats::default()
        },
        store_fingerprint: None,
    })
}
