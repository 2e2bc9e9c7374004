//! Pairwise preference models: both answers go into one input and the model says which one
//! is better (RewardBench's "Custom Classifier" pipelines, spec §4.4). Four kinds:
//!
//! * `pairrm`, `better-pairrm` (PairRM-hf, Better-PairRM): a DeBERTa-v3 encoder with a
//!   pairwise head; `f(A, B)` is its logit for "candidate 1 beats candidate 2";
//!   upstream's verdict `f(chosen, rejected) - f(rejected, chosen) > 0`.
//! * `slic` (RLHFlow pair-preference-model-LLaMA3-8B): a causal LM's next-token logits of
//!   "A" and "B"; `f(A, B) = P("A")` over those two; upstream's verdict
//!   `mean(P_AB("A"), P_BA("B")) > 0.5`.
//! * `steamshp` (SteamSHP-flan-t5): T5's first decoded token; `f(A, B) = logit("A") -
//!   logit("B")`; upstream's verdict: the greedy first token decodes to "A" (chosen shown
//!   first) or not (chosen shown second), in one order that upstream draws with an unseeded
//!   `random.shuffle`. Here the order is fixed per row by its content hash (`sample_hash`):
//!   chosen second when the hash's last hex digit is odd.
//!
//! Every row is scored in both orders, so `scores_chosen = f(A = chosen, B = rejected)` and
//! `scores_rejected = f(A = rejected, B = chosen)`: the model's preference for the answer it
//! is shown first. The model inputs are built as upstream's pipelines build them
//! ([`inputs`]); the export (export/export_pairwise.py) holds the model up to one output per
//! row, and its `pairwise.json` names the kind.

pub mod inputs;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use super::rm::{seq_key, Evaluation, Prepared, RowResult, RuntimeInfo, Stats};
use super::{RowError, RowProblem, RowRef};
use crate::backend::pairwise::{Contract, PairOutputs, PairwiseSession};
use crate::backend::{self, BackendError};
use crate::batch::{self, Batching};
use crate::config::{HeadConfig, PairwiseKind, RunConfig};
use crate::data::{DataError, Dataset, Message, Prompt, Sample};
use crate::model::{ModelError, ModelFiles};
use crate::prompt::Rendered;
use crate::run::execute::{self as executor, ExecuteError, Interrupted};
use crate::run::parallel::parallel_map;
use crate::run::store::{CacheError, ScoreStore};
use crate::scoring::verdict::Outcome;
use crate::template::{JinjaOptions, JinjaTemplate, TemplateError};
use crate::tokenize::{
    self, EncodeOptions, Encoded, Encoder, TokenizeError, TokenizerConfig, TruncationSide,
};

pub use inputs::{Builder, Built, InputError};

/// The contract file export/export_pairwise.py writes beside model.onnx.
pub const CONTRACT_FILE: &str = "pairwise.json";
/// The contract version this evaluator reads.
pub const CONTRACT_VERSION: u64 = 1;

/// Errors of pairwise scoring, by stage.
#[derive(Debug, thiserror::Error)]
pub enum PairwiseError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Row(#[from] RowError),
    #[error("{at}: the {order} input: {source}")]
    Input {
        at: RowRef,
        order: &'static str,
        source: Box<InputError>,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    #[error("{}: {message}", path.display())]
    Contract { path: PathBuf, message: String },
    #[error("{kind}: {message}")]
    Unsupported { kind: &'static str, message: String },
    #[error(
        "{}: instruction data (a `messages` column, no chosen/rejected) has one answer per row; \
         a pairwise model ({kind}) compares two",
        path.display()
    )]
    Instructions { path: PathBuf, kind: &'static str },
    #[error(
        "{kind}: `{letter}` is {count} tokens with the tokenizer {} (ids {ids:?}); the pipeline reads the \
         logits of \"A\" and \"B\" as one token each (upstream asserts it)",
        tokenizer.display()
    )]
    Letter {
        kind: &'static str,
        letter: &'static str,
        count: usize,
        ids: Vec<u32>,
        tokenizer: PathBuf,
    },
    #[error(
        "slic: the tokenizer at {} has no chat template; SlicPairPM wraps its prompt as one user turn with the \
         model's own template (`apply_chat_template`), and --chat_template does not apply to it",
        .0.display()
    )]
    NoChatTemplate(PathBuf),
    #[error("{}: {problem} (PairRM reads its hidden states at the tokens {}, {}, {})", path.display(), inputs::SOURCE_PREFIX, inputs::CAND1_PREFIX, inputs::CAND2_PREFIX)]
    Prefixes { path: PathBuf, problem: String },
}

impl From<ExecuteError<BackendError>> for PairwiseError {
    fn from(e: ExecuteError<BackendError>) -> Self {
        match e {
            ExecuteError::Call(e) => Self::Backend(e),
            ExecuteError::Store(e) => Self::Cache(e),
            ExecuteError::Interrupted(i) => Self::Interrupted(i),
        }
    }
}

/// The export's output for `kind` (export_pairwise.py `OUTPUT`).
pub fn contract(kind: PairwiseKind) -> Contract {
    let (output, rank) = match kind {
        PairwiseKind::PairRm | PairwiseKind::BetterPairRm => ("pair_logits", 1),
        PairwiseKind::SlicPairPm => ("next_token_logits", 2),
        PairwiseKind::SteamShp => ("first_token_logits", 2),
    };
    Contract {
        kind: kind.label(),
        output,
        rank,
    }
}

/// The kind an exported folder states in its `pairwise.json`, when it has one.
pub fn detect(dir: &Path) -> Result<Option<PairwiseKind>, PairwiseError> {
    let path = dir.join(CONTRACT_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let bad = |message: String| PairwiseError::Contract {
        path: path.clone(),
        message,
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    match v.get("rewardbench_pairwise").and_then(Value::as_u64) {
        Some(CONTRACT_VERSION) => {}
        Some(n) => {
            return Err(bad(format!(
                "contract version {n}; this evaluator reads version {CONTRACT_VERSION} (export again with this \
                 checkout's export/export_pairwise.py)"
            )))
        }
        None => return Err(bad("no `rewardbench_pairwise` version".into())),
    }
    let name = v.get("kind").and_then(Value::as_str).unwrap_or_default();
    let kind = PairwiseKind::parse(name).ok_or_else(|| {
        bad(format!(
            "unknown kind `{name}`; known: {}",
            PairwiseKind::ALL.map(PairwiseKind::label).join(", ")
        ))
    })?;
    let want = contract(kind).output;
    match v.get("output").and_then(Value::as_str) {
        Some(o) if o != want => Err(bad(format!(
            "kind {} reads the output `{want}`, but the file names `{o}`",
            kind.label()
        ))),
        _ => Ok(Some(kind)),
    }
}

/// A finished pairwise evaluation and what to tell the user about it.
pub struct Scored {
    pub ev: Evaluation,
    /// Notes (stderr), e.g. how many inputs the budgets cut.
    pub notes: Vec<String>,
}

/// What upstream's verdict needs beyond the two orders' outputs.
struct Verdicts {
    /// SlicPairPM / SteamSHP: the ids of "A" and "B".
    letters: Option<(usize, usize)>,
    /// SteamSHP: per row, whether the chosen answer is shown second in the verdict's order.
    chosen_second: Vec<bool>,
    /// SteamSHP: the tokenizer config's `clean_up_tokenization_spaces`, for decoding the
    /// greedy token.
    clean_up: bool,
}

/// The rows rendered and tokenized in both orders (`prepared.seq_of[row]` is the
/// chosen-first input, then the rejected-first one), and what the verdicts need.
pub struct PairsPrepared {
    pub kind: PairwiseKind,
    pub prepared: Prepared,
    /// Notes for stderr (budgets that cut inputs, flags that do not apply).
    pub notes: Vec<String>,
    verdicts: Verdicts,
    encoder: Encoder,
}

/// The prompt turns of a row, roles as given (run_rm.py's custom-dialogue rows).
fn prompt_turns(row: &Sample) -> Vec<Message> {
    match &row.prompt {
        Prompt::Text(p) => vec![Message::new("user", p)],
        Prompt::Messages(list) | Prompt::Conversation(list) => list.clone(),
    }
}

fn clean_up_flag(tokenizer_dir: &Path) -> bool {
    std::fs::read_to_string(tokenizer_dir.join("tokenizer_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| {
            v.get("clean_up_tokenization_spaces")
                .and_then(Value::as_bool)
        })
        .unwrap_or(false) // transformers 4.51's default
}

fn config_id(model: &ModelFiles, key: &str) -> Option<i64> {
    model.config.as_ref()?.get(key)?.as_i64()
}

fn letter(
    kind: PairwiseKind,
    encoder: &Encoder,
    letter: &'static str,
) -> Result<usize, PairwiseError> {
    let ids = encoder.encode_plain(letter, letter)?;
    match ids.as_slice() {
        [id] => Ok(*id as usize),
        _ => Err(PairwiseError::Letter {
            kind: kind.label(),
            letter,
            count: ids.len(),
            ids,
            tokenizer: encoder.path.clone(),
        }),
    }
}

/// Settings a run refuses before any work, for `kind`.
fn refuse(cfg: &RunConfig, kind: PairwiseKind, dataset: &Dataset) -> Result<(), PairwiseError> {
    let no = |message: String| PairwiseError::Unsupported {
        kind: kind.label(),
        message,
    };
    if cfg.output.shard.is_some() {
        return Err(no("--shard is not supported for pairwise models (`rewardbench merge` rebuilds sequence-classifier runs only); run it whole (its score store still lets an interrupted run resume)".into()));
    }
    if cfg.scoring.best_of_n || dataset.is_best_of_n() {
        return Err(no("RewardBench 2 / best-of-N rows are not scored by pairwise models: upstream's run_v2.py raises NotImplementedError for PairRM and SteamSHP, and SlicPairPM's pipeline needs two candidate lists it is never given; score v1 preference rows (one chosen, one rejected)".into()));
    }
    if cfg.head != HeadConfig::default() {
        return Err(no("--pooling, --score_output, --score_column, --score_transform and --save_token_rewards read a reward model's head; a pairwise export's output is fixed by its kind".into()));
    }
    Ok(())
}

/// Checks the settings, then renders and tokenizes `dataset` for `kind` in both orders (no
/// ONNX Runtime needed).
pub fn prepare(
    cfg: &RunConfig,
    kind: PairwiseKind,
    mut dataset: Dataset,
) -> Result<PairsPrepared, PairwiseError> {
    refuse(cfg, kind, &dataset)?;
    let started = Instant::now();
    let model = ModelFiles::for_run(cfg)?;
    let tokenizer_dir = cfg.model.tokenizer_dir();
    let tok_cfg = TokenizerConfig::load(&tokenizer_dir)?;
    let encoder = Encoder::load(&tokenizer_dir, &tok_cfg, EncodeOptions::default())?;
    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    if let Some(name) = &cfg.template.chat_template {
        notes.push(format!(
            "--chat_template {name} is ignored: {}'s pipeline builds its own input text (as in RewardBench)",
            kind.label()
        ));
    }
    if cfg.tokenize.force_truncation && kind != PairwiseKind::SteamShp {
        notes.push(format!(
            "--force_truncation / --max_length are ignored: {}'s token budgets are fixed by its pipeline",
            kind.label()
        ));
    }
    if cfg.batch.batching == Batching::Reference {
        notes.push("--batching reference does not apply to pairwise models: each input is scored alone (right padding does not change its output), in sorted batches".into());
    }
    let opts = JinjaOptions {
        date: cfg.template.date,
        ..JinjaOptions::default()
    };
    let label = cfg.model.dir.display().to_string();
    let template = match kind {
        PairwiseKind::BetterPairRm => Some(JinjaTemplate::with_options(
            inputs::BETTER_PAIRRM_TEMPLATE,
            BTreeMap::new(),
            &label,
            "BETTER_PAIRRM_TEMPLATE (rewardbench/models/betterpairrm.py)",
            JinjaOptions {
                trim_blocks: false,
                ..opts
            },
        )?),
        PairwiseKind::SlicPairPm => Some(JinjaTemplate::with_options(
            inputs::SLIC_CONTEXT_TEMPLATE,
            tok_cfg.special.clone(),
            &label,
            "SlicPairPM's context template (rewardbench/models/slicpairpm.py)",
            opts,
        )?),
        _ => None,
    };
    let chat = match (kind, &tok_cfg.chat_template) {
        (PairwiseKind::SlicPairPm, Some(src)) => Some(
            JinjaTemplate::with_options(
                src,
                tok_cfg.special.clone(),
                &label,
                &tok_cfg.chat_template_file,
                opts,
            )?
            .with_additional_special_tokens(&tok_cfg.additional_special_tokens),
        ),
        (PairwiseKind::SlicPairPm, None) => {
            return Err(PairwiseError::NoChatTemplate(tokenizer_dir))
        }
        _ => None,
    };
    let mut prefix_ids = [0i64; 3];
    if matches!(kind, PairwiseKind::PairRm | PairwiseKind::BetterPairRm) {
        let config = model.dir.join("config.json");
        for (slot, (key, token)) in prefix_ids.iter_mut().zip([
            ("source_prefix_id", inputs::SOURCE_PREFIX),
            ("cand1_prefix_id", inputs::CAND1_PREFIX),
            ("cand2_prefix_id", inputs::CAND2_PREFIX),
        ]) {
            let id = config_id(&model, key).ok_or_else(|| PairwiseError::Prefixes {
                path: config.clone(),
                problem: format!("no `{key}`"),
            })?;
            let tok = encoder.token_id(token).map(i64::from);
            if tok != Some(id) {
                return Err(PairwiseError::Prefixes {
                    path: config.clone(),
                    problem: format!(
                        "`{key}` is {id}, but the tokenizer {} has {token} as {}",
                        encoder.path.display(),
                        tok.map_or("no token".to_string(), |t| format!("id {t}"))
                    ),
                });
            }
            *slot = id;
        }
    }
    let letters = match kind {
        PairwiseKind::SlicPairPm | PairwiseKind::SteamShp => {
            Some((letter(kind, &encoder, "A")?, letter(kind, &encoder, "B")?))
        }
        _ => None,
    };
    let max_length = if cfg.tokenize.force_truncation {
        cfg.tokenize.max_length
    } else {
        inputs::SHP_MAX_LENGTH
    };
    let builder = Builder {
        kind,
        encoder: &encoder,
        side: tok_cfg.truncation_side.unwrap_or(TruncationSide::Right),
        clean_up: clean_up_flag(&tokenizer_dir),
        template: template.as_ref(),
        chat: chat.as_ref(),
        bos: tok_cfg.special.get("bos_token").map(String::as_str),
        prefix_ids,
        max_length,
    };

    if cfg.data.debug {
        dataset.rows.truncate(crate::config::DEBUG_ROWS);
    }
    warnings.extend(super::validate(&dataset)?);
    let path = dataset.path.clone();
    let workers = crate::available_cores();
    let built: Vec<(Built, Built)> = parallel_map(&dataset.rows, workers, |row| {
        let at = || RowRef::new(&path, &row.place);
        if matches!(row.prompt, Prompt::Conversation(_))
            || row.chosen.len() != 1
            || row.rejected.len() != 1
        {
            return Err(PairwiseError::Instructions {
                path: path.clone(),
                kind: kind.label(),
            });
        }
        let turns = prompt_turns(row);
        let (c, r) = (&row.chosen[0], &row.rejected[0]);
        let what = |order: &str| format!("{} {}: the {order} input", path.display(), row.place);
        let ab = builder
            .build(&turns, c, r, "chosen-first", &what("chosen-first"))
            .map_err(|source| PairwiseError::Input {
                at: at(),
                order: "chosen-first",
                source: Box::new(source),
            })?;
        let ba = builder
            .build(&turns, r, c, "rejected-first", &what("rejected-first"))
            .map_err(|source| PairwiseError::Input {
                at: at(),
                order: "rejected-first",
                source: Box::new(source),
            })?;
        for (b, side) in [(&ab, "chosen-first"), (&ba, "rejected-first")] {
            check(&b.ids, side, &model, kind, &encoder)
                .map_err(|p| RowError::new(&path, &row.place, p))?;
        }
        Ok::<_, PairwiseError>((ab, ba))
    })?;
    let truncated = built
        .iter()
        .flat_map(|(a, b)| [a, b])
        .filter(|b| b.truncated)
        .count();
    if truncated > 0 {
        notes.push(format!(
            "{truncated} of {} input(s) were cut to {}'s token budgets ({}), as its pipeline does",
            2 * built.len(),
            kind.label(),
            budgets(kind, max_length)
        ));
    }
    // Identical inputs are one sequence (identical answers tie exactly).
    let mut index: HashMap<Vec<i64>, usize> = HashMap::new();
    let mut seqs: Vec<Encoded> = Vec::new();
    let mut seq_of = Vec::with_capacity(built.len());
    let mut rendered = Vec::with_capacity(built.len());
    for (ab, ba) in built {
        let mut row = Vec::with_capacity(2);
        for b in [&ab, &ba] {
            let next = seqs.len();
            let i = *index.entry(b.ids.clone()).or_insert(next);
            if i == next {
                seqs.push(Encoded {
                    mask: vec![1; b.ids.len()],
                    ids: b.ids.clone(),
                    truncated: b.truncated,
                });
            }
            row.push(i);
        }
        seq_of.push(row);
        rendered.push(Rendered {
            prompt: ab.prompt,
            chosen: vec![ab.text],
            rejected: vec![ba.text],
        });
    }
    let chosen_second = dataset
        .rows
        .iter()
        .map(|r| {
            let h = r.content_hash();
            h.chars()
                .last()
                .and_then(|c| c.to_digit(16))
                .is_some_and(|d| d % 2 == 1)
        })
        .collect();
    let lengths = parallel_map(&dataset.rows, workers, |row| {
        tokenize::lengths::of_sample(row, Some(&encoder))
    })?;
    let pad_id = i64::from(encoder.pad_id);
    let verdicts = Verdicts {
        letters,
        chosen_second,
        clean_up: builder.clean_up,
    };
    let prepared = Prepared {
        model,
        tokenizer_dir,
        template_label: kind.label().to_string(),
        dataset,
        rendered,
        seqs,
        seq_of,
        pad_id,
        truncation: None,
        truncated: 0,
        warnings,
        lengths,
        prepare_seconds: started.elapsed().as_secs_f64(),
    };
    Ok(PairsPrepared {
        kind,
        prepared,
        verdicts,
        notes,
        encoder,
    })
}

/// The budgets of `kind`, for the truncation note.
fn budgets(kind: PairwiseKind, max_length: usize) -> String {
    match kind {
        PairwiseKind::PairRm => format!(
            "source {}, each candidate (2048 - source) / 2",
            inputs::PAIRRM_SOURCE_MAX
        ),
        PairwiseKind::BetterPairRm => format!(
            "source text {} from the left, candidate texts {} from the right",
            inputs::BETTER_SOURCE_MAX,
            inputs::BETTER_CANDIDATE_MAX
        ),
        PairwiseKind::SlicPairPm => "none".into(),
        PairwiseKind::SteamShp => format!("{max_length} tokens from the right"),
    }
}

/// An id outside the model's vocabulary is an error; so is a causal LM input longer than
/// its positions (PairRM's DeBERTa and T5 use relative positions).
fn check(
    ids: &[i64],
    side: &'static str,
    model: &ModelFiles,
    kind: PairwiseKind,
    encoder: &Encoder,
) -> Result<(), RowProblem> {
    if kind == PairwiseKind::SlicPairPm {
        if let Some(max) = model.max_positions().filter(|&m| ids.len() > m) {
            return Err(RowProblem::TooLong {
                side,
                len: ids.len(),
                max,
                model: model.dir.clone(),
                hint: "",
            });
        }
    }
    if let (Some(v), Some(&id)) = (model.vocab_size(), ids.iter().max()) {
        if id >= v as i64 {
            return Err(RowProblem::Vocab {
                id,
                vocab: v,
                model: model.dir.clone(),
                detail: format!(
                    ": the tokenizer ({}) does not belong to this model",
                    encoder.path.display()
                ),
            });
        }
    }
    Ok(())
}

/// What the store keeps of one sequence's output: PairRM's logit; SlicPairPM's "A" and "B"
/// logits; SteamSHP's "A" and "B" logits and the greedy token.
fn reduce(out: &PairOutputs, r: usize, letters: Option<(usize, usize)>) -> Vec<f64> {
    let row = out.row(r);
    match letters {
        None => vec![f64::from(row[0])],
        Some((a, b)) => {
            let at = |i: usize| row.get(i).copied().map_or(f64::NAN, f64::from);
            // torch.argmax: the first of equal maxima (NaN counts as the largest)
            let mut best = 0;
            for (i, &x) in row.iter().enumerate() {
                if x.is_nan() {
                    best = i;
                    break;
                }
                if x > row[best] {
                    best = i;
                }
            }
            vec![at(a), at(b), best as f64]
        }
    }
}

/// Scores `dataset` with the pairwise model `cfg.model` of `kind`; the result has the shape
/// of a reward-model evaluation, so the usual reports apply.
pub fn evaluate(
    cfg: &RunConfig,
    kind: PairwiseKind,
    dataset: Dataset,
) -> Result<Scored, PairwiseError> {
    run(prepare(cfg, kind, dataset)?, cfg)
}

/// Runs the prepared inputs on the export and scores the rows (`notes` are the ones of this
/// stage: a `--device auto` fallback).
pub fn run(p: PairsPrepared, cfg: &RunConfig) -> Result<Scored, PairwiseError> {
    let PairsPrepared {
        kind,
        prepared,
        verdicts,
        encoder,
        ..
    } = p;
    let mut notes = Vec::new();
    let started = Instant::now();
    let rt = backend::runtime(cfg.device.ort_lib.as_deref(), cfg.device.device.wants_gpu())?;
    let seqs = &prepared.seqs;
    let lengths: Vec<usize> = seqs.iter().map(|s| s.ids.len()).collect();
    let limits = super::call_limits(cfg, &[&prepared.model], true);
    let plan = |keep: &dyn Fn(usize) -> bool| {
        let rows: Vec<Vec<usize>> = (0..seqs.len())
            .filter(|&i| keep(i))
            .map(|i| vec![i])
            .collect();
        let lens: Vec<usize> = rows.iter().map(|r| lengths[r[0]]).collect();
        batch::plan_sorted(rows, &lens, limits)
    };
    let plans = plan(&|_| true);
    let shapes: Vec<(usize, usize)> = plans
        .iter()
        .map(|p| (p.rows.len(), p.width(seqs).max(1)))
        .collect();
    let opts = super::session_options(cfg, backend::profile_for(&shapes));
    let loading = crate::run::progress::loading(&prepared.model.onnx, cfg.output.quiet);
    let mut session = PairwiseSession::open(rt, &prepared.model.onnx, &opts, contract(kind))?;
    loading.done();
    if let Some(n) = session.note.take() {
        notes.push(n);
    }
    let device = backend::device_name(session.device);
    // The ids key each output; what else changes an output given its ids: the pad id.
    let settings = format!("pad {}", prepared.pad_id);
    let fp = super::fingerprint::pairwise(
        &prepared.model,
        &prepared.tokenizer_dir,
        kind.label(),
        &settings,
        &rt.version,
        device,
        cfg,
    )?;
    let keys: Vec<String> = seqs.iter().map(seq_key).collect();
    let mut store = match store_path(cfg, kind) {
        Some(p) => Some(ScoreStore::open_mode(
            &p,
            &fp,
            cfg.output.overwrite,
            cfg.output.dry_run,
        )?),
        None => None,
    };
    let mut outputs: Vec<Option<Vec<f64>>> = keys
        .iter()
        .map(|k| store.as_ref().and_then(|s| s.known.get(k).cloned()))
        .collect();
    let have = outputs.iter().filter(|o| o.is_some()).count();
    if let (Some(s), true, false) = (&store, have > 0, cfg.output.quiet || cfg.output.dry_run) {
        eprintln!(
            "resuming: {have} of {} inputs already scored in {}",
            seqs.len(),
            s.path().display()
        );
    }
    let todo: Vec<bool> = outputs.iter().map(Option::is_none).collect();
    let run_plans = plan(&|i| todo[i]);
    let call_keys: Vec<Vec<String>> = run_plans
        .iter()
        .map(|p| p.members().map(|i| keys[i].clone()).collect())
        .collect();
    let work = executor::Work {
        stored: have,
        unit: "inputs",
        device,
        quiet: cfg.output.quiet,
        dry_run: cfg.output.dry_run,
        ..executor::Work::new(
            run_plans
                .iter()
                .map(|p| crate::run::plan::CallWork::of(seqs, p, prepared.model.token_cost()))
                .collect(),
        )
    };
    let mut calls = store.as_mut().map(|s| executor::KeyedCalls {
        store: s,
        keys: call_keys,
    });
    let pad_id = prepared.pad_id;
    let letters = verdicts.letters;
    let executed = executor::execute(
        &work,
        calls.as_mut().map(|c| c as &mut dyn executor::CallStore),
        |k| batch::inputs(seqs, &run_plans[k], pad_id, false),
        |_, c| {
            let out = session.run(&c)?;
            Ok::<_, BackendError>((0..out.rows).map(|r| reduce(&out, r, letters)).collect())
        },
        &mut crate::run::observer::Stderr,
    )?;
    for (p, out) in run_plans.iter().zip(executed.outputs) {
        for (i, o) in p.members().zip(out) {
            outputs[i] = Some(o);
        }
    }
    let (pad_tokens, computed_tokens) = batch::padding(seqs, &plans);
    let runtime = RuntimeInfo {
        version: rt.version.clone(),
        library: rt.library.clone(),
        device,
    };
    let stats = Stats {
        model_calls: plans.len(),
        reused_calls: plans.len().saturating_sub(run_plans.len()),
        pad_tokens,
        computed_tokens,
        prepare_seconds: prepared.prepare_seconds,
        wait_seconds: executed.wait_seconds,
        ort_seconds: executed.call_seconds,
        total_seconds: prepared.prepare_seconds + started.elapsed().as_secs_f64(),
        pairwise: Some(summary(kind)),
        plan: Some(executed.plan),
        ..Stats::default()
    };
    // A dry run computed nothing: no rows to score.
    let rows = match cfg.output.dry_run {
        true => Vec::new(),
        false => score_rows(kind, &prepared, &outputs, &verdicts, &encoder)?,
    };
    Ok(Scored {
        ev: Evaluation {
            prepared,
            batching: Batching::Sorted,
            rows,
            onnxruntime_version: runtime.version,
            onnxruntime_library: runtime.library,
            device: runtime.device,
            stats,
            store_fingerprint: Some(fp),
        },
        notes,
    })
}

/// The score store: `{output_dir}/{name}.{kind}.store.jsonl`, when the run keeps one.
pub fn store_path(cfg: &RunConfig, kind: PairwiseKind) -> Option<PathBuf> {
    cfg.output.cache.then(|| {
        cfg.output.dir.join(format!(
            "{}.{}.store.jsonl",
            crate::model::run_model_name(cfg),
            kind.label()
        ))
    })
}

/// The summary's `pairwise` object: the kind and what the scores and the verdict are.
pub fn summary(kind: PairwiseKind) -> Value {
    let (scores, verdict) = match kind {
        PairwiseKind::PairRm | PairwiseKind::BetterPairRm => (
            "the model's logit f(A, B) that candidate 1 beats candidate 2: scores_chosen = f(chosen, rejected), scores_rejected = f(rejected, chosen)",
            "f(chosen, rejected) - f(rejected, chosen) > 0 (PairRMPipeline / BetterPairRMPipeline)",
        ),
        PairwiseKind::SlicPairPm => (
            "P(\"A\") over the next-token logits of \"A\" and \"B\" (softmax of the two): scores_chosen with the chosen answer as A, scores_rejected with the rejected one as A",
            "mean(P(\"A\") chosen as A, P(\"B\") chosen as B) > 0.5 (SlicPairPMPipeline)",
        ),
        PairwiseKind::SteamShp => (
            "logit(\"A\") - logit(\"B\") at the first decoded token: scores_chosen with the chosen answer as RESPONSE A, scores_rejected with the rejected one as RESPONSE A",
            "the greedy first token decodes to \"A\" (chosen shown first) or not (chosen shown second), in one order per row: chosen second when the last hex digit of the row's sample_hash is odd (upstream's SHPPipeline draws the order with an unseeded random.shuffle)",
        ),
    };
    json!({
        "kind": kind.label(),
        "scores": scores,
        "verdict": verdict,
    })
}

/// Each row's two scores and upstream's verdict.
fn score_rows(
    kind: PairwiseKind,
    prepared: &Prepared,
    outputs: &[Option<Vec<f64>>],
    v: &Verdicts,
    encoder: &Encoder,
) -> Result<Vec<RowResult>, PairwiseError> {
    let path = &prepared.dataset.path;
    let mut says_a: HashMap<i64, bool> = HashMap::new();
    let mut rows = Vec::with_capacity(prepared.seq_of.len());
    for (i, (row, texts)) in prepared
        .dataset
        .rows
        .iter()
        .zip(&prepared.seq_of)
        .enumerate()
    {
        let get = |k: usize, side: &'static str| -> Result<&Vec<f64>, PairwiseError> {
            let o = texts
                .get(k)
                .and_then(|&s| outputs.get(s))
                .and_then(Option::as_ref);
            let o = o.ok_or_else(|| PairwiseError::Unsupported {
                kind: kind.label(),
                message: format!(
                    "{} {}: no output for the {side} input",
                    path.display(),
                    row.place
                ),
            })?;
            let want = if v.letters.is_some() { 3 } else { 1 };
            if o.len() != want {
                return Err(PairwiseError::Unsupported {
                    kind: kind.label(),
                    message: format!(
                        "{} {}: the score store holds {} value(s) for the {side} input, not {want}; it is damaged (pass --overwrite to start afresh)",
                        path.display(),
                        row.place,
                        o.len()
                    ),
                });
            }
            if let Some(&value) = o.iter().find(|x| !x.is_finite()) {
                return Err(RowError::new(
                    path,
                    &row.place,
                    RowProblem::NonFinite {
                        side,
                        value: value as f32,
                    },
                )
                .into());
            }
            Ok(o)
        };
        let ab = get(0, "chosen-first")?;
        let ba = get(1, "rejected-first")?;
        let (sc, sr, correct) = match (kind, v.letters) {
            (PairwiseKind::PairRm | PairwiseKind::BetterPairRm, _) | (_, None) => {
                let (sc, sr) = (ab[0] as f32, ba[0] as f32);
                (sc, sr, sc - sr > 0.0)
            }
            (PairwiseKind::SlicPairPm, Some(_)) => {
                // upstream: float logits, numpy exp, softmax of the two, mean of both orders
                let p = |o: &[f64], k: usize| o[k].exp() / (o[0].exp() + o[1].exp());
                let p_chosen = (p(ab, 0) + p(ba, 1)) / 2.0;
                (p(ab, 0) as f32, p(ba, 0) as f32, p_chosen > 0.5)
            }
            (PairwiseKind::SteamShp, Some(_)) => {
                let margin = |o: &[f64]| o[0] as f32 - o[1] as f32;
                let second = v.chosen_second.get(i).copied().unwrap_or(false);
                let greedy = if second { ba[2] } else { ab[2] } as i64;
                let a = match says_a.get(&greedy) {
                    Some(&a) => a,
                    None => {
                        let text = encoder.decode(
                            &[greedy],
                            true,
                            v.clean_up,
                            "the greedy first token",
                        )?;
                        says_a.insert(greedy, text == "A");
                        text == "A"
                    }
                };
                (margin(ab), margin(ba), if second { !a } else { a })
            }
        };
        rows.push(RowResult {
            outcome: Outcome {
                chosen: vec![vec![sc]],
                rejected: vec![vec![sr]],
            },
            correct,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_label() {
        for k in PairwiseKind::ALL {
            assert_eq!(PairwiseKind::parse(k.label()), Some(k));
            assert_eq!(contract(k).kind, k.label());
        }
        assert_eq!(
            PairwiseKind::parse("Better_PairRM"),
            Some(PairwiseKind::BetterPairRm)
        );
        assert_eq!(PairwiseKind::parse("dpo"), None);
    }

    #[test]
    fn reduce_keeps_the_letters_and_the_first_greedy_token() {
        let out = PairOutputs {
            rows: 2,
            width: 4,
            data: vec![0.5, 2.0, -1.0, 2.0, 1.0, 0.0, 3.0, 0.25],
        };
        // torch.argmax: the first of equal maxima
        assert_eq!(reduce(&out, 0, Some((2, 0))), vec![-1.0, 0.5, 1.0]);
        assert_eq!(reduce(&out, 1, Some((2, 0))), vec![3.0, 1.0, 2.0]);
        let one = PairOutputs {
            rows: 1,
            width: 1,
            data: vec![-0.75],
        };
        assert_eq!(reduce(&one, 0, None), vec![-0.75]);
    }

    #[test]
    fn every_kind_says_what_its_scores_are() {
        for k in PairwiseKind::ALL {
            let s = summary(k);
            assert_eq!(s["kind"], k.label());
            assert!(s["scores"]
                .as_str()
                .is_some_and(|t| t.contains("scores_chosen")));
            assert!(s["verdict"].is_string());
        }
    }
}
