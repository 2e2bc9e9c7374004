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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;
use serde_json::Value;

use super::rm::{Evaluation, Prepared, RowResult, RuntimeInfo, Stats};
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
use crate::run::store::{Cache, CacheError, ScoreStore};
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
    #[error("merge: {missing} of {total} texts have no reductions in the shards' stores (a store is damaged or belongs to another run); run the shards again")]
    Unscored { missing: usize, total: usize },
    #[error("merge: {} no longer holds the rows its shards scored (the file changed since); run the shards again", .0.display())]
    DatasetChanged(PathBuf),
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
    evaluate_dataset(cfg, mode, dataset, None)
}

/// The per-sequence reductions a sharded run's shards stored (their stores' union) and
/// where they ran: `merge` scores the rows from them without a model call.
pub struct Known<'a> {
    pub reductions: &'a HashMap<String, Vec<f64>>,
    pub runtime: RuntimeInfo,
    /// The shards' dataset digest: the rows read now must be the same.
    pub dataset: &'a str,
}

/// The key of a DPO sequence in the score store: its token ids and where its response starts.
pub fn seq_key(ids: &[i64], prompt_len: usize) -> String {
    let bytes: Vec<u8> = ids
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .chain((prompt_len as u64).to_le_bytes())
        .collect();
    crate::digest::Digest::default().field("dpo", &bytes).hex()
}

/// The calls for `units` (each a row's sequence indices), longest first under sorted
/// batching, in chunks of `--batch_size` rows each split further by the token and attention
/// caps of `limits`.
fn plan_calls(
    units: Vec<Vec<usize>>,
    seqs: &[Encoded],
    cfg: &RunConfig,
    limits: batch::Limits,
) -> Vec<batch::Plan> {
    let longest: Vec<usize> = units
        .iter()
        .map(|u| u.iter().map(|&i| seqs[i].ids.len()).max().unwrap_or(0))
        .collect();
    let order = match cfg.batch.batching {
        Batching::Sorted => batch::Order::LongestFirst,
        Batching::Reference => batch::Order::AsGiven,
    };
    batch::plan_units(
        units,
        &longest,
        limits,
        order,
        // RewardBench's batches of `batch_size` pairs, each split further by the token cap.
        batch::Fill::Chunks,
        |u| u.len(),
    )
}

/// [`evaluate`] on loaded samples; with `known` (a merge), from stored reductions alone.
pub fn evaluate_dataset(
    cfg: &RunConfig,
    mode: &DpoMode,
    mut dataset: Dataset,
    known: Option<Known>,
) -> Result<Evaluation, DpoError> {
    let started = Instant::now();
    let policy = ModelFiles::for_run(cfg)?;
    let reference = match mode {
        DpoMode::Reference(dir) => {
            let r = ModelFiles::locate(dir, cfg.device.device)?;
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
    let model_count = models.len();
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
    let prompt_lens: Vec<usize> = pairs
        .iter()
        .flat_map(|p| p.prompt_len.iter().copied())
        .collect();
    let chosen: Vec<usize> = pairs.iter().map(|p| p.chosen).collect();
    let mut seq_of: Vec<Vec<usize>> = Vec::with_capacity(pairs.len());
    let mut seqs: Vec<Encoded> = Vec::new();
    for p in pairs {
        seq_of.push((seqs.len()..seqs.len() + p.ids.len()).collect());
        seqs.extend(p.ids.into_iter().map(|ids| Encoded {
            mask: vec![1; ids.len()],
            ids,
            truncated: false,
        }));
    }
    let prepared = Prepared {
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
    };
    let seqs = &prepared.seqs;
    let keys: Vec<String> = seqs
        .iter()
        .zip(&prompt_lens)
        .map(|(s, &p)| seq_key(&s.ids, p))
        .collect();
    // Causal-LM exports all run eager attention.
    let limits = {
        let mut models = vec![&prepared.model];
        models.extend(reference.as_ref());
        super::call_limits(cfg, &models, true)
    };
    let plans = plan_calls(prepared.seq_of.clone(), seqs, cfg, limits);
    // Padded as pad_rows pads: every sequence a row, at least 2 wide.
    let (mut pad_tokens, mut computed_tokens) = (0, 0);
    for p in &plans {
        let width = p
            .members()
            .map(|i| seqs[i].ids.len())
            .max()
            .unwrap_or(2)
            .max(2);
        computed_tokens += width * p.len();
        pad_tokens += p
            .members()
            .map(|i| width - seqs[i].ids.len())
            .sum::<usize>();
    }
    let stats = Stats {
        model_calls: plans.len() * model_count,
        pad_tokens,
        computed_tokens,
        prepare_seconds,
        total_seconds: prepare_seconds,
        ..Stats::default()
    };

    // A merge: every reduction is stored; nothing runs.
    if let Some(k) = known {
        if super::rm::dataset_digest(&prepared) != k.dataset {
            return Err(DpoError::DatasetChanged(path));
        }
        let reduced: Vec<Option<Vec<f64>>> = keys
            .iter()
            .map(|key| k.reductions.get(key).cloned())
            .collect();
        let missing = reduced.iter().filter(|r| r.is_none()).count();
        if missing > 0 {
            return Err(DpoError::Unscored {
                missing,
                total: reduced.len(),
            });
        }
        let rows = score_rows(&prepared, &reduced, &chosen, mode, &path)?;
        return Ok(Evaluation {
            prepared,
            batching: cfg.batch.batching,
            rows,
            onnxruntime_version: k.runtime.version,
            onnxruntime_library: k.runtime.library,
            device: k.runtime.device,
            stats,
            store_fingerprint: None,
        });
    }

    let rt = backend::runtime(cfg.device.ort_lib.as_deref(), cfg.device.device.wants_gpu())?;
    let opts = super::session_options(cfg, None);
    let loading = crate::run::progress::loading(&prepared.model.onnx, cfg.output.quiet);
    let mut policy_s = LmSession::open(
        rt,
        &prepared.model.onnx,
        &opts,
        cache_hints(&prepared.model),
    )?;
    loading.done();
    let mut ref_s = match &reference {
        Some(r) => {
            let loading = crate::run::progress::loading(&r.onnx, cfg.output.quiet);
            let s = LmSession::open(rt, &r.onnx, &opts, cache_hints(r))?;
            loading.done();
            Some(s)
        }
        None => None,
    };
    let device = backend::device_name(policy_s.device);
    let mut prepared = prepared;
    if let Some(note) = &policy_s.note {
        prepared.warnings.push(note.clone());
    }
    let seqs = &prepared.seqs;

    let t_run = Instant::now();
    // Sorted batching keeps reductions by sequence (a score store: resumable across batch
    // sizes, shardable); reference batching by call, as its batches define it.
    let keyed = cfg.batch.batching == Batching::Sorted;
    let needed = match cfg.output.shard {
        Some(sh) => super::rm::shard_sequences(&prepared, sh).0,
        None => vec![true; seqs.len()],
    };
    let mut reduced: Vec<Option<Vec<f64>>> = vec![None; seqs.len()];
    let mut store_fingerprint = None;
    let mut store = None;
    let mut cache = None;
    let run_plans = if keyed {
        let fp = fingerprint::dpo_content(
            &prepared.model,
            reference.as_ref(),
            &encoder,
            cfg,
            &rt.version,
            device,
        )?;
        if let Some(p) = super::rm::store_path(cfg) {
            let s = ScoreStore::open_mode(&p, &fp, cfg.output.overwrite, cfg.output.dry_run)?;
            for (i, r) in reduced.iter_mut().enumerate() {
                if needed[i] {
                    *r = s.known.get(&keys[i]).cloned();
                }
            }
            let have = reduced.iter().filter(|r| r.is_some()).count();
            if have > 0 && !cfg.output.quiet && !cfg.output.dry_run {
                eprintln!(
                    "resuming: {have} of {} texts already scored in {}",
                    needed.iter().filter(|n| **n).count(),
                    s.path().display()
                );
            }
            store = Some(s);
        }
        store_fingerprint = Some(fp);
        let todo: Vec<Vec<usize>> = prepared
            .seq_of
            .iter()
            .filter(|row| row.iter().all(|&i| needed[i] && reduced[i].is_none()))
            .cloned()
            .collect();
        plan_calls(todo, seqs, cfg, limits)
    } else {
        if let Some(p) = super::cache_path(cfg) {
            let all: Vec<&Vec<i64>> = seqs.iter().map(|s| &s.ids).collect();
            let per_row: Vec<Vec<usize>> = prepared
                .seq_of
                .iter()
                .map(|row| row.iter().map(|&i| prompt_lens[i]).collect())
                .collect();
            cache = Some(Cache::open_mode(
                &p,
                &fingerprint::dpo(
                    &prepared.model,
                    reference.as_ref(),
                    &encoder,
                    mode,
                    &all,
                    &per_row,
                    &plans,
                    cfg,
                    &rt.version,
                )?,
                cfg.output.overwrite,
                cfg.output.dry_run,
            )?);
        }
        plans.clone()
    };
    let ids: Vec<&Vec<i64>> = seqs.iter().map(|s| &s.ids).collect();
    let sizes: Vec<usize> = run_plans.iter().map(batch::Plan::len).collect();
    let work = executor::Work {
        stored: reduced.iter().filter(|r| r.is_some()).count(),
        models: model_count,
        device,
        quiet: cfg.output.quiet,
        dry_run: cfg.output.dry_run,
        ..executor::Work::new(
            run_plans
                .iter()
                .map(|p| call_work(seqs, p, prepared.model.token_cost()))
                .collect(),
        )
    };
    let call_keys: Vec<Vec<String>> = run_plans
        .iter()
        .map(|p| p.members().map(|i| keys[i].clone()).collect())
        .collect();
    let mut calls = store.as_mut().map(|s| executor::KeyedCalls {
        store: s,
        keys: call_keys,
    });
    let call_store: Option<&mut dyn executor::CallStore> = match (&mut calls, &mut cache) {
        (Some(c), _) => Some(c),
        (None, Some(c)) => Some(c),
        (None, None) => None,
    };
    let executed = executor::execute(
        &work,
        call_store,
        |k| pad_rows(&ids, &run_plans[k], eos),
        |k, (ids, mask)| {
            // Per sequence: the policy's (sum, count, sum of squares), then the reference's.
            let mut out: Vec<Vec<f64>> = vec![Vec::with_capacity(6); sizes[k]];
            let sessions = std::iter::once(&mut policy_s).chain(ref_s.as_mut());
            for s in sessions {
                let lp = s.token_logprobs(&ids, &mask)?;
                for (row, i) in run_plans[k].members().enumerate() {
                    let (sum, n, sq) = reduce(lp.row(row), seqs[i].ids.len(), prompt_lens[i]);
                    out[row].extend([sum, n, sq]);
                }
            }
            Ok::<_, DpoError>(out)
        },
        &mut crate::run::observer::Stderr,
    )?;
    for (p, out) in run_plans.iter().zip(executed.outputs) {
        for (i, r) in p.members().zip(out) {
            reduced[i] = Some(r);
        }
    }
    let reused = if keyed {
        plans.len().saturating_sub(run_plans.len())
    } else {
        executed.reused
    };
    let rows = score_rows(&prepared, &reduced, &chosen, mode, &path)?;
    Ok(Evaluation {
        prepared,
        batching: cfg.batch.batching,
        rows,
        onnxruntime_version: rt.version.clone(),
        onnxruntime_library: rt.library.clone(),
        device,
        stats: Stats {
            reused_calls: reused * model_count,
            wait_seconds: executed.wait_seconds,
            ort_seconds: executed.call_seconds,
            total_seconds: prepare_seconds + t_run.elapsed().as_secs_f64(),
            plan: Some(executed.plan),
            ..stats
        },
        store_fingerprint,
    })
}

/// A DPO call's work, padded as [`pad_rows`] pads: every sequence a row, at least 2 wide.
fn call_work(seqs: &[Encoded], plan: &batch::Plan, token_cost: f64) -> crate::run::plan::CallWork {
    let lens: Vec<usize> = plan.members().map(|i| seqs[i].ids.len()).collect();
    let width = lens.iter().copied().max().unwrap_or(2).max(2);
    crate::run::plan::CallWork {
        texts: lens.len(),
        tokens: lens.iter().sum(),
        padded: width * lens.len(),
        shared: 0,
        cost: crate::run::plan::cost(lens.len(), width, token_cost),
    }
}

/// Each row's rewards from its sequences' reductions; a row with a sequence not reduced
/// (another shard's) is left empty.
fn score_rows(
    prepared: &Prepared,
    reduced: &[Option<Vec<f64>>],
    chosen: &[usize],
    mode: &DpoMode,
    path: &Path,
) -> Result<Vec<RowResult>, DpoError> {
    let has_ref = matches!(mode, DpoMode::Reference(_));
    let mut rows = Vec::with_capacity(prepared.seq_of.len());
    for ((row, texts), &n_chosen) in prepared
        .dataset
        .rows
        .iter()
        .zip(&prepared.seq_of)
        .zip(chosen)
    {
        if texts.iter().any(|&s| reduced[s].is_none()) {
            rows.push(RowResult {
                outcome: Outcome::default(),
                correct: false,
            });
            continue;
        }
        let mut outcome = Outcome::default();
        for (k, &s) in texts.iter().enumerate() {
            let r = reduced[s].as_deref().unwrap_or_default();
            let triple = |at: usize| -> Result<(f64, f64, f64), DpoError> {
                match r.get(at..at + 3) {
                    Some(&[a, b, c]) => Ok((a, b, c)),
                    _ => Err(DpoError::Cache(CacheError::Corrupt {
                        path: path.to_path_buf(),
                        line: 0,
                        problem: "a DPO record has too few values".into(),
                    })),
                }
            };
            let reference = if has_ref { Some(triple(3)?) } else { None };
            let v = reward(mode, triple(0)?, reference);
            if !v.is_finite() {
                return Err(RowError::new(
                    path,
                    &row.place,
                    RowProblem::NonFinite {
                        side: if k < n_chosen { "chosen" } else { "rejected" },
                        value: v,
                    },
                )
                .into());
            }
            match k < n_chosen {
                true => outcome.chosen.push(vec![v]),
                false => outcome.rejected.push(vec![v]),
            }
        }
        rows.push(RowResult {
            correct: verdict::pairwise(&outcome),
            outcome,
        });
    }
    Ok(rows)
}
