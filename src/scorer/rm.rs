//! The evaluation pipeline: data -> template -> tokenize -> batch -> backend -> scoring.

use std::path::PathBuf;
use std::time::Instant;

use crate::backend::{self, BackendError, RewardSession};
use crate::batch::{self, Batching};
use crate::config::RunConfig;
use crate::data::Prompt;
use crate::data::{DataError, Dataset};
use crate::model::{ModelError, ModelFiles};
use crate::prompt::Rendered;
use crate::run::execute::{self as executor, ExecuteError, Interrupted, Work};
use crate::run::observer::{Observer, Stderr};
use crate::run::parallel::parallel_map;
use crate::run::plan::{CallWork, RunPlan};
use crate::run::store::{Cache, CacheError, ScoreStore};
use crate::scorer::pooling::{self, Pooling, Scope, Span, TokenRow};
use crate::scorer::transform::{self, HeadError};
use crate::scorer::{
    cache_path, check_sequence, fingerprint, render_all, setup, validate, RowError, RowProblem,
    Setup, SetupError, Tokenization, Truncation,
};
use crate::scoring::verdict::{self, Outcome};
use crate::tokenize::lengths::SampleLengths;
use crate::tokenize::{self, Encoded, Encoder, TokenizeError};

/// Everything that can stop an evaluation, by stage.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
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
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("--shard: {0}")]
    Unshardable(String),
    #[error("merge: {missing} of {total} texts have no score in the shards' stores (a store is damaged or belongs to another run); run the shards again")]
    Unscored { missing: usize, total: usize },
    #[error(
        "the tokenizer {tokenizer} has {tokens} tokens but the model in {model} only {vocab}: they do not \
         belong together"
    )]
    VocabSizes {
        tokenizer: PathBuf,
        tokens: usize,
        model: PathBuf,
        vocab: usize,
    },
}

impl From<ExecuteError<BackendError>> for EvalError {
    fn from(e: ExecuteError<BackendError>) -> Self {
        match e {
            ExecuteError::Call(e) => Self::Backend(e),
            ExecuteError::Store(e) => Self::Cache(e),
            ExecuteError::Interrupted(i) => Self::Interrupted(i),
        }
    }
}

/// What `--force_truncation` offers for a text that is too long.
const TRUNCATION_HINT: &str =
    "; pass --force_truncation (with --max_length) to keep its last tokens";
/// What to do when a text is still too long after `rewardbench v2`'s truncation.
const CUT_HINT: &str =
    " even after truncation; pass a --max_length no larger than the model's positions";

/// A dataset rendered and tokenized, ready for the model.
pub struct Prepared {
    pub model: ModelFiles,
    pub tokenizer_dir: PathBuf,
    pub template_label: String,
    pub dataset: Dataset,
    pub rendered: Vec<Rendered>,
    /// Sequences to score; `seq_of[row]` lists a row's texts (chosen, then rejected) in it.
    pub seqs: Vec<Encoded>,
    pub seq_of: Vec<Vec<usize>>,
    pub pad_id: i64,
    /// Truncation in force, if any.
    pub truncation: Option<Truncation>,
    /// Texts of rows that truncation cut (a text repeated in rows counts each time).
    pub truncated: usize,
    pub warnings: Vec<String>,
    /// Each row's completion lengths (characters and the model's tokens).
    pub lengths: Vec<SampleLengths>,
    /// Seconds spent rendering and tokenizing.
    pub prepare_seconds: f64,
}

/// One scored row: its outcome and the verdict of the scoring rule.
#[derive(Debug, Clone)]
pub struct RowResult {
    pub outcome: Outcome,
    pub correct: bool,
}

impl RowResult {
    /// The first chosen completion's scores (a v1 pair has one; instruction data: the score).
    pub fn score_chosen(&self) -> &[f32] {
        self.outcome.chosen.first().map_or(&[], Vec::as_slice)
    }

    /// The first rejected completion's scores.
    pub fn score_rejected(&self) -> &[f32] {
        self.outcome.rejected.first().map_or(&[], Vec::as_slice)
    }
}

/// Throughput figures of a run.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub model_calls: usize,
    /// Calls whose scores came from the resume cache.
    pub reused_calls: usize,
    pub pad_tokens: usize,
    pub computed_tokens: usize,
    /// Tokens not computed because texts shared a prefix in a packed row.
    pub shared_tokens: usize,
    /// Rendering and tokenizing.
    pub prepare_seconds: f64,
    /// The session thread waiting for a padded batch.
    pub wait_seconds: f64,
    /// Inside ONNX Runtime.
    pub ort_seconds: f64,
    /// From the start of preparation to the last score.
    pub total_seconds: f64,
    /// The reward-head settings the scores were read with, when any was given (the
    /// summary's `reward_head`, [`transform::summary`]).
    pub reward_head: Option<serde_json::Value>,
    /// A pairwise model's kind and what its scores mean (the summary's `pairwise`,
    /// [`crate::scorer::pairwise::summary`]).
    pub pairwise: Option<serde_json::Value>,
    /// The work the run planned after the store lookup (with `--dry_run`, its measurement).
    pub plan: Option<RunPlan>,
}

/// A finished evaluation.
pub struct Evaluation {
    pub prepared: Prepared,
    pub batching: Batching,
    pub rows: Vec<RowResult>,
    pub onnxruntime_version: String,
    pub onnxruntime_library: PathBuf,
    /// The execution provider that ran the model.
    pub device: &'static str,
    pub stats: Stats,
    /// The score store's fingerprint, when scores were kept by text.
    pub store_fingerprint: Option<String>,
}

/// Reads, renders and tokenizes the dataset (no ONNX Runtime needed).
pub fn prepare(cfg: &RunConfig) -> Result<Prepared, EvalError> {
    let dataset = Dataset::open(&cfg.data.spec)?;
    prepare_dataset(cfg, dataset)
}

/// Renders and tokenizes a loaded dataset.
pub fn prepare_dataset(cfg: &RunConfig, mut dataset: Dataset) -> Result<Prepared, EvalError> {
    let started = Instant::now();
    let Setup {
        model,
        tokenizer_dir,
        template,
        encoder,
        truncation,
        mut warnings,
    } = setup(cfg, Tokenization::Classifier)?;
    // Still too long with truncation on (v2's, or --force_truncation): the limit is the issue.
    let hint = match truncation {
        Some(_) => CUT_HINT,
        None => TRUNCATION_HINT,
    };

    if cfg.data.debug {
        dataset.rows.truncate(crate::config::DEBUG_ROWS);
    }
    let path = dataset.path.clone();
    let instructions = dataset
        .rows
        .iter()
        .all(|r| matches!(r.prompt, Prompt::Conversation(_)));
    warnings.extend(validate(&dataset)?);
    check_vocab_sizes(&model, &encoder)?;
    let workers = crate::available_cores();
    let rendered = render_all(&template, &dataset)?;

    // Sequences: in sorted mode identical texts are scored once (so identical answers tie
    // exactly); in reference mode every text is its own sequence, as in RewardBench.
    let dedupe = cfg.batch.batching == Batching::Sorted || instructions;
    let mut texts: Vec<(&str, usize, &'static str)> = Vec::new(); // (text, row, side)
    let mut seq_of = Vec::with_capacity(rendered.len());
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, r) in rendered.iter().enumerate() {
        let side = |k: usize| match (instructions, k < r.chosen.len()) {
            (true, _) => "instruction",
            (false, true) => "chosen",
            (false, false) => "rejected",
        };
        let mut row = Vec::with_capacity(r.chosen.len() + r.rejected.len());
        for (k, text) in r.texts().enumerate() {
            if dedupe {
                if let Some(&j) = index.get(text.as_str()) {
                    row.push(j);
                    continue;
                }
                index.insert(text.as_str(), texts.len());
            }
            row.push(texts.len());
            texts.push((text.as_str(), i, side(k)));
        }
        seq_of.push(row);
    }
    let seqs: Vec<Encoded> = parallel_map(&texts, workers, |&(text, i, side)| {
        let place = &dataset.rows[i].place;
        let enc = encoder.encode(text, &format!("{} {place}: {side} text", path.display()))?;
        check_sequence(&enc.ids, side, &model, hint, || {
            format!(
                ": the tokenizer ({}) does not belong to this model",
                encoder.path.display()
            )
        })
        .map_err(|p| RowError::new(&path, place, p))?;
        Ok::<_, EvalError>(enc)
    })?;
    // Texts that truncation makes identical are one sequence too, so they tie exactly.
    let (seqs, seq_of) = if dedupe && truncation.is_some() {
        merge_identical(seqs, seq_of)
    } else {
        (seqs, seq_of)
    };

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
    let truncated = seq_of
        .iter()
        .flatten()
        .filter(|&&s| seqs[s].truncated)
        .count();
    let lengths = parallel_map(&dataset.rows, workers, |row| {
        tokenize::lengths::of_sample(row, Some(&encoder))
    })?;
    Ok(Prepared {
        lengths,
        truncation,
        truncated,
        tokenizer_dir,
        template_label: template.label().to_string(),
        model,
        dataset,
        rendered,
        seqs,
        seq_of,
        pad_id,
        warnings,
        prepare_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Sequences with the same ids and mask become one; `seq_of` is remapped (first one kept).
fn merge_identical(seqs: Vec<Encoded>, seq_of: Vec<Vec<usize>>) -> (Vec<Encoded>, Vec<Vec<usize>>) {
    let mut index: std::collections::HashMap<(&[i64], &[i64]), usize> =
        std::collections::HashMap::new();
    let mut remap = Vec::with_capacity(seqs.len());
    let mut keep = Vec::with_capacity(seqs.len());
    for (i, s) in seqs.iter().enumerate() {
        let next = index.len();
        let j = *index.entry((&s.ids, &s.mask)).or_insert(next);
        if j == next {
            keep.push(i);
        }
        remap.push(j);
    }
    let seq_of = seq_of
        .into_iter()
        .map(|row| row.into_iter().map(|s| remap[s]).collect())
        .collect();
    let mut seqs: Vec<Option<Encoded>> = seqs.into_iter().map(Some).collect();
    let merged = keep.into_iter().filter_map(|i| seqs[i].take()).collect();
    (merged, seq_of)
}

/// The tokenizer must not produce ids the model has no embedding for.
fn check_vocab_sizes(model: &ModelFiles, encoder: &Encoder) -> Result<(), EvalError> {
    match model.vocab_size() {
        Some(v) if encoder.vocab_size > v => Err(EvalError::VocabSizes {
            tokenizer: encoder.path.clone(),
            tokens: encoder.vocab_size,
            model: model.dir.clone(),
            vocab: v,
        }),
        _ => Ok(()),
    }
}

/// The planned model calls for `prepared`. With `packed` (a packed model, sorted batching),
/// the texts of one prompt share a row and their common prefix is computed once.
pub fn plan(prepared: &Prepared, cfg: &RunConfig, packed: bool) -> Vec<batch::Plan> {
    match cfg.batch.batching {
        Batching::Sorted => {
            let seqs = &prepared.seqs;
            let rows: Vec<Vec<usize>> = if packed {
                let texts = prepared.seq_of.iter().enumerate().flat_map(|(i, row)| {
                    let key = prepared.rendered[i].prompt.as_str();
                    row.iter().map(move |&s| (key, s))
                });
                batch::pack_by_prompt(
                    seqs,
                    texts,
                    prepared.model.token_cost(),
                    prepared.model.max_positions(),
                )
            } else {
                (0..seqs.len()).map(|i| vec![i]).collect()
            };
            let lengths: Vec<usize> = rows.iter().map(|r| batch::row_len(seqs, r)).collect();
            let limits = super::call_limits(cfg, &[&prepared.model], !packed);
            batch::plan_sorted(rows, &lengths, limits)
        }
        Batching::Reference => batch::plan_reference(&prepared.seq_of, cfg.batch.batch_size),
    }
}

/// Scores prepared sequences with the model: a producer thread pads the planned batches
/// into a bounded channel; this thread owns the ONNX Runtime session.
pub fn run(prepared: Prepared, cfg: &RunConfig) -> Result<Evaluation, EvalError> {
    let started = Instant::now();
    let rt = backend::runtime(cfg.device.ort_lib.as_deref(), cfg.device.device.wants_gpu())?;
    let plain = plan(&prepared, cfg, false);
    let session = open(rt, &prepared, cfg, &plain)?;
    let caps = session.caps();
    let plans = if caps.packed && cfg.batch.share_prefixes && cfg.batch.batching == Batching::Sorted
    {
        plan(&prepared, cfg, true)
    } else {
        plain
    };
    check_rows(caps, &plans, &prepared.model.onnx)?;
    execute(prepared, cfg, plans, rt, session, started)
}

/// [`run`] with given model calls (each sequence must appear in exactly one plan).
pub fn run_planned(
    prepared: Prepared,
    cfg: &RunConfig,
    plans: Vec<batch::Plan>,
) -> Result<Evaluation, EvalError> {
    let started = Instant::now();
    let rt = backend::runtime(cfg.device.ort_lib.as_deref(), cfg.device.device.wants_gpu())?;
    let session = open(rt, &prepared, cfg, &plans)?;
    check_rows(session.caps(), &plans, &prepared.model.onnx)?;
    execute(prepared, cfg, plans, rt, session, started)
}

/// Opens the model's session; TensorRT gets an optimization profile from the planned shapes
/// and builds its engine on the largest call before the clock matters.
fn open(
    rt: &backend::Runtime,
    prepared: &Prepared,
    cfg: &RunConfig,
    plans: &[batch::Plan],
) -> Result<RewardSession, EvalError> {
    let shapes: Vec<(usize, usize)> = plans
        .iter()
        .map(|p| (p.rows.len(), p.width(&prepared.seqs).max(1)))
        .collect();
    let opts = super::session_options(cfg, backend::profile_for(&shapes));
    let loading = crate::run::progress::loading(&prepared.model.onnx, cfg.output.quiet);
    let mut session =
        RewardSession::open_output(rt, &prepared.model.onnx, &opts, cfg.head.output.as_deref())?;
    if let Some(note) = &session.note {
        Stderr.note(note);
    }
    let graph = transform::Graph {
        onnx: &prepared.model.onnx,
        output: &session.output,
        per_token: session.per_token,
        packed: session.packed,
        labels: session.num_labels,
    };
    let best_of_n = cfg.scoring.best_of_n || prepared.dataset.is_best_of_n();
    transform::check_session(&cfg.head, graph, best_of_n)?;
    let caps = session.caps();
    session.warm_up(|| {
        plans
            .first()
            .map(|p| batch::inputs(&prepared.seqs, p, prepared.pad_id, caps.packed))
    })?;
    loading.done();
    Ok(session)
}

/// Fails when a planned call holds more rows than the session takes.
fn check_rows(
    caps: backend::Caps,
    plans: &[batch::Plan],
    onnx: &std::path::Path,
) -> Result<(), EvalError> {
    let most = plans
        .iter()
        .map(|p| if caps.packed { p.rows.len() } else { p.len() })
        .max()
        .unwrap_or(0);
    match caps.max_rows {
        Some(max) if most > max => Err(BackendError::Batch {
            rows: most,
            cols: 0,
            problem: format!(
                "{} takes at most {max} rows per call; pass --batch_size {max} or less",
                onnx.display()
            ),
        }
        .into()),
        _ => Ok(()),
    }
}

/// The key of a sequence in the score store: a digest of its token ids and mask.
pub fn seq_key(e: &Encoded) -> String {
    let bytes: Vec<u8> = e
        .ids
        .iter()
        .chain(&e.mask)
        .flat_map(|x| x.to_le_bytes())
        .collect();
    crate::digest::Digest::default().field("seq", &bytes).hex()
}

/// Each row's stable key for sharding (subset, id, content hash) and its tokens.
pub fn sample_keys(prepared: &Prepared) -> (Vec<String>, Vec<usize>) {
    let keys = prepared
        .dataset
        .rows
        .iter()
        .map(crate::shard::sample_key)
        .collect();
    let weights = prepared
        .seq_of
        .iter()
        .map(|row| row.iter().map(|&s| prepared.seqs[s].ids.len()).sum())
        .collect();
    (keys, weights)
}

/// A digest of every row's key, in order: shards of one run share it.
pub fn dataset_digest(prepared: &Prepared) -> String {
    crate::shard::dataset_digest(&sample_keys(prepared).0)
}

/// Which sequences `shard` scores (those of its rows), and which rows are its.
pub fn shard_sequences(prepared: &Prepared, shard: crate::shard::Shard) -> (Vec<bool>, Vec<bool>) {
    let (keys, weights) = sample_keys(prepared);
    let of = crate::shard::assign(&keys, &weights, shard.count);
    let mut needed = vec![false; prepared.seqs.len()];
    let rows: Vec<bool> = of.iter().map(|s| *s == shard.index).collect();
    for (row, mine) in prepared.seq_of.iter().zip(&rows) {
        if *mine {
            for &i in row {
                needed[i] = true;
            }
        }
    }
    (needed, rows)
}

/// Whether scores are kept by text (sorted batching, texts in rows of their own): then a
/// text's score does not depend on its batch, and runs can resume across batch sizes and
/// be sharded.
fn keyed(cfg: &RunConfig, packed: bool) -> bool {
    cfg.batch.batching == Batching::Sorted && !(packed && cfg.batch.share_prefixes)
}

/// The score store of a keyed run: the shard's, or `{output}/{name}.store.jsonl` (`.v2` for
/// `rewardbench v2`) when the run keeps one.
pub fn store_path(cfg: &RunConfig) -> Option<PathBuf> {
    let name = run_name(cfg);
    match cfg.output.shard {
        Some(sh) => Some(crate::shard::shard_file(
            &cfg.output.dir,
            &name,
            sh,
            ".store.jsonl",
        )),
        None => cfg
            .output
            .cache
            .then(|| cfg.output.dir.join(format!("{name}.store.jsonl"))),
    }
}

/// The run's name: the model's, `.v2` for `rewardbench v2`, `.dpo` for DPO rewards.
pub fn run_name(cfg: &RunConfig) -> String {
    let kind = if cfg.scoring.best_of_n {
        ".v2"
    } else if matches!(cfg.model.scorer, crate::config::ScorerKind::Dpo(_)) {
        ".dpo"
    } else {
        ""
    };
    format!("{}{kind}", crate::model::run_model_name(cfg))
}

/// The rows of `plans` whose sequences `keep` selects, batched again as sorted batching does
/// (`packed`: the session's graph is the packed export).
fn replan(
    prepared: &Prepared,
    cfg: &RunConfig,
    plans: &[batch::Plan],
    packed: bool,
    keep: &dyn Fn(usize) -> bool,
) -> Vec<batch::Plan> {
    let rows: Vec<Vec<usize>> = plans
        .iter()
        .flat_map(|p| p.rows.iter())
        .filter(|r| r.iter().all(|&i| keep(i)))
        .cloned()
        .collect();
    let lengths: Vec<usize> = rows
        .iter()
        .map(|r| batch::row_len(&prepared.seqs, r))
        .collect();
    let limits = super::call_limits(cfg, &[&prepared.model], !packed);
    batch::plan_sorted(rows, &lengths, limits)
}

/// Where a run's scores came from, for the summary.
#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    pub version: String,
    pub library: PathBuf,
    pub device: &'static str,
}

/// Runs the planned calls on an open session and scores the rows.
fn execute(
    prepared: Prepared,
    cfg: &RunConfig,
    plans: Vec<batch::Plan>,
    rt: &backend::Runtime,
    mut session: RewardSession,
    started: Instant,
) -> Result<Evaluation, EvalError> {
    let (pad_tokens, computed_tokens) = batch::padding(&prepared.seqs, &plans);
    let shared_tokens = batch::shared_tokens(&prepared.seqs, &plans);
    let packed = session.caps().packed;
    let keyed = keyed(cfg, packed);
    if let (Some(_), false) = (cfg.output.shard, keyed) {
        return Err(EvalError::Unshardable(
            "a packed export with --share_prefixes true scores a text with its prompt's other texts; pass --share_prefixes false to shard it".into(),
        ));
    }
    if cfg.output.shard.is_some() && cfg.head.save_token_rewards {
        return Err(EvalError::Unshardable(
            "--save_token_rewards keeps no score store, which a shard needs; run it whole".into(),
        ));
    }
    let seqs = &prepared.seqs;
    let pad_id = prepared.pad_id;
    // A per-token export is pooled here: each text alone with sorted batching (its score
    // does not depend on its batch), the call as it ran with RewardBench's batches.
    let per_token = session.caps().per_token.then(|| PerToken {
        rule: cfg.head.pooling.unwrap_or(Pooling::LastNonPad),
        scope: match cfg.batch.batching {
            Batching::Sorted => Scope::Alone,
            Batching::Reference => Scope::Call,
        },
        pad: pad_id,
    });
    // --save_token_rewards: every text's head output at every position, so every text is
    // computed (no resume store: it keeps pooled scores only).
    let save_tokens = per_token.is_some() && cfg.head.save_token_rewards;
    let mut tokens: Vec<Option<TokenRow>> = vec![None; if save_tokens { seqs.len() } else { 0 }];
    let mut call = |session: &mut RewardSession,
                    plan: &batch::Plan,
                    c: &batch::Padded|
     -> Result<Vec<Vec<f64>>, BackendError> {
        if let Some(p) = &per_token {
            let keep = save_tokens.then_some(&mut tokens);
            return score_per_token(session, seqs, plan, c, p, keep);
        }
        let out = session.score(c)?;
        Ok(out
            .into_iter()
            .map(|s| s.into_iter().map(f64::from).collect())
            .collect())
    };
    let mut outputs: Vec<Option<Vec<f64>>> = vec![None; seqs.len()];
    let planned;
    let (reused_calls, wait, ort_time, fingerprint) = if keyed {
        let keys: Vec<String> = seqs.iter().map(seq_key).collect();
        let needed = match cfg.output.shard {
            Some(sh) => shard_sequences(&prepared, sh).0,
            None => vec![true; seqs.len()],
        };
        let fp = fingerprint::content(
            &prepared,
            cfg,
            &rt.version,
            backend::device_name(session.device),
        )?;
        let mut store = match store_path(cfg) {
            Some(p) if !save_tokens => Some(ScoreStore::open_mode(
                &p,
                &fp,
                cfg.output.overwrite,
                cfg.output.dry_run,
            )?),
            _ => None,
        };
        let known = |i: usize| store.as_ref().and_then(|s| s.known.get(&keys[i]).cloned());
        for (i, o) in outputs.iter_mut().enumerate() {
            if needed[i] {
                *o = known(i);
            }
        }
        let have = outputs.iter().filter(|o| o.is_some()).count();
        let todo: Vec<bool> = (0..seqs.len())
            .map(|i| needed[i] && outputs[i].is_none())
            .collect();
        let run_plans = replan(&prepared, cfg, &plans, session.caps().packed, &|i| todo[i]);
        if let (Some(s), true, false) = (&store, have > 0, cfg.output.quiet || cfg.output.dry_run) {
            eprintln!(
                "resuming: {have} of {} texts already scored in {}",
                needed.iter().filter(|n| **n).count(),
                s.path().display()
            );
        }
        let call_keys: Vec<Vec<String>> = run_plans
            .iter()
            .map(|p| p.members().map(|i| keys[i].clone()).collect())
            .collect();
        let work = Work {
            stored: have,
            ..work_of(cfg, &prepared, &run_plans, session.device)
        };
        let mut calls = store.as_mut().map(|s| executor::KeyedCalls {
            store: s,
            keys: call_keys,
        });
        let executed = executor::execute(
            &work,
            calls.as_mut().map(|c| c as &mut dyn executor::CallStore),
            |k| batch::inputs(seqs, &run_plans[k], pad_id, packed),
            |k, c| call(&mut session, &run_plans[k], &c),
            &mut crate::run::observer::Stderr,
        )?;
        planned = executed.plan;
        for (p, out) in run_plans.iter().zip(executed.outputs) {
            for (i, sc) in p.members().zip(out) {
                outputs[i] = Some(sc);
            }
        }
        (
            plans.len().saturating_sub(run_plans.len()),
            executed.wait_seconds,
            executed.call_seconds,
            Some(fp),
        )
    } else {
        let cache_file = cache_path(cfg).filter(|_| !save_tokens);
        let mut cache = match &cache_file {
            Some(path) => Some(Cache::open_mode(
                path,
                &fingerprint::classifier(&prepared, &plans, cfg, &rt.version)?,
                cfg.output.overwrite,
                cfg.output.dry_run,
            )?),
            None => None,
        };
        let executed = executor::execute(
            &work_of(cfg, &prepared, &plans, session.device),
            cache.as_mut().map(|c| c as &mut dyn executor::CallStore),
            |k| batch::inputs(seqs, &plans[k], pad_id, packed),
            |k, c| call(&mut session, &plans[k], &c),
            &mut crate::run::observer::Stderr,
        )?;
        planned = executed.plan;
        for (p, out) in plans.iter().zip(executed.outputs) {
            for (i, sc) in p.members().zip(out) {
                outputs[i] = Some(sc);
            }
        }
        (
            executed.reused,
            executed.wait_seconds,
            executed.call_seconds,
            None,
        )
    };
    let runtime = RuntimeInfo {
        version: rt.version.clone(),
        library: rt.library.clone(),
        device: backend::device_name(session.device),
    };
    let stats = Stats {
        model_calls: plans.len(),
        reused_calls,
        pad_tokens,
        computed_tokens,
        shared_tokens,
        prepare_seconds: prepared.prepare_seconds,
        wait_seconds: wait,
        ort_seconds: ort_time,
        total_seconds: prepared.prepare_seconds + started.elapsed().as_secs_f64(),
        reward_head: None,
        pairwise: None,
        plan: Some(planned),
    };
    let mut ev = assemble(prepared, cfg, outputs, runtime, stats)?;
    ev.store_fingerprint = fingerprint;
    if save_tokens && !cfg.output.dry_run {
        let onnx = &ev.prepared.model.onnx;
        for t in tokens.iter_mut().flatten() {
            for v in &mut t.values {
                *v = transform::apply(&cfg.head, v, onnx)?;
            }
        }
        crate::report::tokens::write(&ev, &tokens, &cfg.output.dir)?;
    }
    Ok(ev)
}

/// The executor's view of `plans` on `device`, as `cfg` reports progress.
fn work_of(
    cfg: &RunConfig,
    prepared: &Prepared,
    plans: &[batch::Plan],
    device: backend::Device,
) -> Work {
    let (seqs, token_cost) = (&prepared.seqs, prepared.model.token_cost());
    Work {
        device: backend::device_name(device),
        quiet: cfg.output.quiet,
        dry_run: cfg.output.dry_run,
        ..Work::new(
            plans
                .iter()
                .map(|p| CallWork::of(seqs, p, token_cost))
                .collect(),
        )
    }
}

/// How a per-token export is pooled in this run.
struct PerToken {
    rule: Pooling,
    scope: Scope,
    pad: i64,
}

/// One plain call on a per-token export: each text's score at its rule's position (every
/// label), and with `keep` its head output at every position of the text.
fn score_per_token(
    session: &mut RewardSession,
    seqs: &[Encoded],
    plan: &batch::Plan,
    call: &batch::Padded,
    p: &PerToken,
    keep: Option<&mut Vec<Option<TokenRow>>>,
) -> Result<Vec<Vec<f64>>, BackendError> {
    let t = session.score_tokens(call)?;
    let members: Vec<usize> = plan.members().collect();
    if members.len() != t.rows || t.width == 0 {
        return Err(BackendError::Batch {
            rows: t.rows,
            cols: t.width,
            problem: format!("{} texts in the call, nothing to pool", members.len()),
        });
    }
    let spans: Vec<Span> = members
        .iter()
        .map(|&i| {
            let len = seqs[i].ids.len();
            let offset = match plan.side {
                batch::Side::Left => t.width.saturating_sub(len),
                batch::Side::Right => 0,
            };
            Span { offset, len }
        })
        .collect();
    let at = pooling::pool(
        p.rule,
        p.scope,
        call.ids.view(),
        call.mask.view(),
        p.pad,
        &spans,
    );
    let mut keep = keep;
    let mut out = Vec::with_capacity(members.len());
    for (r, ((&i, s), &col)) in members.iter().zip(&spans).zip(&at).enumerate() {
        let col = col.min(t.width - 1); // an empty text alone has no column of its own
        out.push(t.at(r, col).iter().map(|&x| f64::from(x)).collect());
        if let Some(keep) = keep.as_deref_mut() {
            keep[i] = Some(TokenRow {
                values: (s.offset..s.offset + s.len)
                    .map(|j| t.at(r, j).to_vec())
                    .collect(),
                pooled_at: col.checked_sub(s.offset).filter(|&q| q < s.len),
            });
        }
    }
    Ok(out)
}

/// The evaluation of a run whose every score is in `known` (a merge of its shards' stores):
/// nothing is computed; the plan a single run would make gives the call and padding counts.
pub fn from_scores(
    prepared: Prepared,
    cfg: &RunConfig,
    known: &std::collections::HashMap<String, Vec<f64>>,
    runtime: RuntimeInfo,
) -> Result<Evaluation, EvalError> {
    let plans = plan(&prepared, cfg, false);
    let (pad_tokens, computed_tokens) = batch::padding(&prepared.seqs, &plans);
    let outputs: Vec<Option<Vec<f64>>> = prepared
        .seqs
        .iter()
        .map(|s| known.get(&seq_key(s)).cloned())
        .collect();
    let missing = outputs.iter().filter(|o| o.is_none()).count();
    if missing > 0 {
        return Err(EvalError::Unscored {
            missing,
            total: outputs.len(),
        });
    }
    let stats = Stats {
        model_calls: plans.len(),
        pad_tokens,
        computed_tokens,
        prepare_seconds: prepared.prepare_seconds,
        total_seconds: prepared.prepare_seconds,
        ..Stats::default()
    };
    assemble(prepared, cfg, outputs, runtime, stats)
}

/// Scores per sequence (`None`: not scored by this shard) to rows and the evaluation.
fn assemble(
    prepared: Prepared,
    cfg: &RunConfig,
    outputs: Vec<Option<Vec<f64>>>,
    runtime: RuntimeInfo,
    mut stats: Stats,
) -> Result<Evaluation, EvalError> {
    // Scores are f32 from the model, and f32 -> f64 -> f32 is exact; `--score_column`,
    // `--score_transform` and `--score_dtype` apply after the store, which keeps the
    // model's own.
    let dtype = cfg.scoring.score_dtype;
    let onnx = &prepared.model.onnx;
    let scores: Vec<Option<Vec<f32>>> = outputs
        .into_iter()
        .map(|o| {
            o.map(|sc| {
                let raw: Vec<f32> = sc.into_iter().map(|x| x as f32).collect();
                transform::apply(&cfg.head, &raw, onnx)
                    .map(|v| v.into_iter().map(|x| dtype.round(x)).collect())
            })
            .transpose()
        })
        .collect::<Result<_, _>>()?;
    stats.reward_head = transform::summary(&cfg.head);
    let path = &prepared.dataset.path;
    let mut rows = Vec::with_capacity(prepared.seq_of.len());
    for ((row, texts), rendered) in prepared
        .dataset
        .rows
        .iter()
        .zip(&prepared.seq_of)
        .zip(&prepared.rendered)
    {
        if texts.iter().any(|&s| scores[s].is_none()) {
            // Another shard's row.
            rows.push(RowResult {
                outcome: Outcome::default(),
                correct: false,
            });
            continue;
        }
        let score = |s: usize| scores[s].clone().unwrap_or_default();
        let n_chosen = rendered.chosen.len();
        for (k, &s) in texts.iter().enumerate() {
            let side = if k < n_chosen { "chosen" } else { "rejected" };
            if let Some(&value) = score(s).iter().find(|v| !v.is_finite()) {
                return Err(
                    RowError::new(path, &row.place, RowProblem::NonFinite { side, value }).into(),
                );
            }
        }
        let (c, r) = texts.split_at(n_chosen.min(texts.len()));
        let outcome = Outcome {
            chosen: c.iter().map(|&s| score(s)).collect(),
            rejected: r.iter().map(|&s| score(s)).collect(),
        };
        rows.push(RowResult {
            correct: verdict::pairwise(&outcome),
            outcome,
        });
    }
    Ok(Evaluation {
        prepared,
        batching: cfg.batch.batching,
        rows,
        onnxruntime_version: runtime.version,
        onnxruntime_library: runtime.library,
        device: runtime.device,
        stats,
        store_fingerprint: None,
    })
}

/// Prepares and runs in one go.
pub fn evaluate(cfg: &RunConfig) -> Result<Evaluation, EvalError> {
    let prepared = prepare(cfg)?;
    run(prepared, cfg)
}

/// Scores instruction data (`messages`, no `chosen`/`rejected`; reference §2.3) through the
/// same preparation as pairs: each conversation is a sample rendered whole and scored once;
/// its score and text are the sample's one "chosen" entry (`correct` is meaningless).
pub fn score_instructions(
    cfg: &RunConfig,
    set: crate::data::InstructionSet,
) -> Result<Evaluation, EvalError> {
    let dataset = Dataset {
        path: set.path,
        rows: set
            .rows
            .into_iter()
            .map(crate::data::InstructionRow::into_sample)
            .collect(),
    };
    // One text per row, so reference batching (chosen and rejected apart) does not apply:
    // sorted batching. The resume cache is named by the model alone, so instruction runs
    // keep none (a pair run of the same model would find it and refuse it).
    let mut sorted = cfg.clone();
    sorted.batch.batching = Batching::Sorted;
    sorted.output.cache = false;
    let prepared = prepare_dataset(&sorted, dataset)?;
    run(prepared, &sorted)
}
