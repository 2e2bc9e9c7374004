//! One evaluation, end to end: read the rows, score them with the scorer the configuration
//! names (reward model, DPO, instruction rows), write the reports.

use std::path::PathBuf;

use crate::config::{DpoMode, RunConfig, ScorerKind};
use crate::data::{self, DataError, Dataset, InstructionSet, Loaded};
use crate::report::{self, ReportError, RunInfo};
use crate::run::observer::Observer;
use crate::scorer::dpo::{self, DpoError};
use crate::scorer::pairwise::{self, PairwiseError};
use crate::scorer::rm::{self as eval, EvalError, Evaluation};
use crate::scoring;

/// Everything that can stop a run, by stage.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error(transparent)]
    Dpo(#[from] DpoError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("merge: {path} no longer holds the rows its shards scored (the file changed since); run the shards again")]
    DatasetChanged { path: PathBuf },
    #[error("{path}: {source}")]
    Scoring {
        path: PathBuf,
        source: crate::scoring::bon::CardError,
    },
    #[error(transparent)]
    Head(#[from] crate::scorer::transform::HeadError),
    #[error(transparent)]
    Pairwise(#[from] PairwiseError),
}

impl PipelineError {
    /// True when the run stopped because a Ctrl-C asked it to (its work is in the cache).
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self,
            Self::Eval(EvalError::Interrupted(_))
                | Self::Dpo(DpoError::Interrupted(_))
                | Self::Pairwise(PairwiseError::Interrupted(_))
        )
    }
}

/// What a finished run leaves.
#[derive(Debug, Clone)]
pub struct Finished {
    /// For stdout: the results table, or a line for instruction data.
    pub table: String,
    /// Files written, in order.
    pub written: Vec<PathBuf>,
    /// The summary JSON among them (none for instruction data).
    pub summary: Option<PathBuf>,
}

/// Runs `cfg`: the summary records `info` (the names as the user gave them).
pub fn run(
    cfg: &RunConfig,
    info: &RunInfo,
    obs: &mut dyn Observer,
) -> Result<Finished, PipelineError> {
    // Fail on an unwritable output folder, or one holding another run's results of this
    // model, before any compute (a dry run creates no folder, so it does not probe one).
    if !cfg.output.dry_run {
        report::check_writable(&cfg.output.dir)?;
    }
    check_replaces(cfg, info)?;
    if let ScorerKind::Dpo(mode) = &cfg.model.scorer {
        return run_dpo(cfg, info, mode, obs);
    }
    let mut done = match cfg.model.scorer {
        ScorerKind::Pairwise(kind) => run_pairwise(cfg, info, kind, obs)?,
        _ => match data::load(&cfg.data.spec, cfg.data.prioritize_scoring)? {
            Loaded::Instructions(set) => run_instructions(cfg, set, obs)?,
            Loaded::Preference(dataset) => run_pairs(cfg, info, dataset, obs)?,
        },
    };
    list_store(cfg, &mut done);
    Ok(done)
}

/// Adds the score store the run keeps (for the next run to resume from) to its written
/// files; a shard lists its own, a dry run writes none.
fn list_store(cfg: &RunConfig, done: &mut Finished) {
    if cfg.output.dry_run || cfg.output.shard.is_some() {
        return;
    }
    let stores = match cfg.model.scorer {
        ScorerKind::Pairwise(kind) => vec![pairwise::store_path(cfg, kind)],
        _ => vec![eval::store_path(cfg), crate::scorer::cache_path(cfg)],
    };
    for p in stores.into_iter().flatten() {
        if p.is_file() && !done.written.contains(&p) {
            done.written.push(p);
        }
    }
}

fn warn_ties(ev: &Evaluation, obs: &mut dyn Observer) {
    let ties = report::ties(ev);
    if ties > 0 && ev.stats.pairwise.is_some() {
        // A pairwise model's verdict is its pipeline's rule, not a comparison of the scores.
        obs.warn(&format!(
            "{ties} row(s) scored the same in both orders (scores_chosen == scores_rejected); their verdict is the pipeline's rule (the summary's pairwise.verdict)"
        ));
    } else if ties > 0 {
        obs.warn(&format!(
            "{ties} row(s) scored chosen == rejected; a tie counts as wrong (as in RewardBench)"
        ));
    }
}

/// Writes the pair reports (and `--save_all`) and the table.
fn finish_pairs(
    cfg: &RunConfig,
    info: &RunInfo,
    ev: &Evaluation,
    obs: &mut dyn Observer,
) -> Result<Finished, PipelineError> {
    warn_ties(ev, obs);
    let name = ev.prepared.model.name();
    let w = report::write(ev, info, &cfg.output.dir, &name)?;
    let summary = Some(w.summary.clone());
    let mut written = vec![w.summary, w.outputs, w.csv, w.run];
    if cfg.output.save_all {
        written.push(report::write_all_scores(
            ev,
            &cfg.output.dir,
            &name,
            report::AllScores::Pairs,
        )?);
    }
    token_rewards(cfg, &name, &mut written);
    Ok(Finished {
        table: report::table(ev, info),
        written,
        summary,
    })
}

fn run_pairs(
    cfg: &RunConfig,
    info: &RunInfo,
    dataset: Dataset,
    obs: &mut dyn Observer,
) -> Result<Finished, PipelineError> {
    score_pairs(cfg, info, dataset, None, obs)
}

/// Scores already computed by a run's shards (their stores' union) and where they ran.
pub struct Merged<'a> {
    pub known: &'a std::collections::HashMap<String, Vec<f64>>,
    pub runtime: eval::RuntimeInfo,
    /// The shards' dataset digest: the rows read now must be the same.
    pub dataset: &'a str,
}

/// Refuses to replace another run's results (`{output}/{model}.json` of another dataset,
/// reference or debug setting).
fn check_replaces(cfg: &RunConfig, info: &RunInfo) -> Result<(), PipelineError> {
    let name = crate::model::run_model_name(cfg);
    let summary = cfg.output.dir.join(format!("{name}.json"));
    report::check_replaces(&summary, &info.identity(), cfg.output.overwrite)?;
    Ok(())
}

/// Writes a sharded run's results from its shards' scores (nothing is computed), as the
/// single run would have written them.
pub fn merge(
    cfg: &RunConfig,
    info: &RunInfo,
    merged: Merged,
    obs: &mut dyn Observer,
) -> Result<Finished, PipelineError> {
    report::check_writable(&cfg.output.dir)?;
    check_replaces(cfg, info)?;
    if let ScorerKind::Dpo(mode) = &cfg.model.scorer {
        let known = dpo::Known {
            reductions: merged.known,
            runtime: merged.runtime,
            dataset: merged.dataset,
        };
        let ev = dpo::evaluate_dataset(cfg, mode, Dataset::open(&cfg.data.spec)?, Some(known))?;
        return finish_pairs(cfg, info, &ev, obs);
    }
    match data::load(&cfg.data.spec, cfg.data.prioritize_scoring)? {
        Loaded::Preference(dataset) => score_pairs(cfg, info, dataset, Some(merged), obs),
        Loaded::Instructions(set) => Err(DataError::Instructions { path: set.path }.into()),
    }
}

fn score_pairs(
    cfg: &RunConfig,
    info: &RunInfo,
    dataset: Dataset,
    merged: Option<Merged>,
    obs: &mut dyn Observer,
) -> Result<Finished, PipelineError> {
    // `data::load` checked the rows of a best-of-N file; `v2` on one-string rows checks here.
    let listed = dataset.is_best_of_n();
    let best_of_n = cfg.scoring.best_of_n || listed;
    if best_of_n && !listed {
        data::bon::check(&dataset.path, &dataset.rows)?;
    }
    let prepared = eval::prepare_dataset(cfg, dataset)?;
    for w in &prepared.warnings {
        obs.warn(w);
    }
    if let Some(t) = prepared
        .truncation
        .filter(|t| t.cut && prepared.truncated > 0)
    {
        obs.note(&format!(
            "{} text(s) longer than {} tokens were truncated ({} side), as run_v2 does",
            prepared.truncated,
            t.max_length,
            t.side.label()
        ));
    }
    let ev = match merged {
        Some(m) => {
            if eval::dataset_digest(&prepared) != m.dataset {
                return Err(PipelineError::DatasetChanged {
                    path: prepared.dataset.path.clone(),
                });
            }
            eval::from_scores(prepared, cfg, m.known, m.runtime)?
        }
        None => eval::run(prepared, cfg)?,
    };
    if cfg.output.dry_run {
        return Ok(dry_run(&ev));
    }
    if let Some(shard) = cfg.output.shard {
        return finish_shard(cfg, info, &ev, shard);
    }
    if best_of_n {
        return finish_best_of_n(cfg, info, &ev, obs);
    }
    finish_pairs(cfg, info, &ev, obs)
}

/// A shard's end: its manifest (the store is already complete), written last.
fn finish_shard(
    cfg: &RunConfig,
    info: &RunInfo,
    ev: &Evaluation,
    shard: crate::shard::Shard,
) -> Result<Finished, PipelineError> {
    let name = eval::run_name(cfg);
    let (needed, mine) = eval::shard_sequences(&ev.prepared, shard);
    let rows = mine.iter().filter(|m| **m).count();
    let store = eval::store_path(cfg).unwrap_or_default();
    // The shard's rows as the single run's outputs list them (a partial view; merge writes
    // the run's files).
    let outputs = crate::shard::shard_file(&cfg.output.dir, &name, shard, "_outputs.jsonl");
    report::write_file(
        &outputs,
        report::outputs_jsonl_of(ev, Some(&mine)).as_bytes(),
    )?;
    let m = crate::shard::Manifest {
        fingerprint: ev.store_fingerprint.clone().unwrap_or_default(),
        dataset: eval::dataset_digest(&ev.prepared),
        samples: rows,
        texts: needed.iter().filter(|n| **n).count(),
        execution_provider: ev.device.to_string(),
        onnxruntime_version: ev.onnxruntime_version.clone(),
        onnxruntime_library: ev.onnxruntime_library.display().to_string(),
        ..crate::shard::Manifest::new(
            &name,
            shard,
            &store,
            crate::shard::without_shard(&info.argv),
        )
    };
    let (manifest_path, text) = m.file(&cfg.output.dir);
    report::write_file(&manifest_path, text.as_bytes())?;
    Ok(Finished {
        table: format!(
            "{name}: {} done: {rows} of {} rows, {} texts scored (store {}); once all {} shards are done: rewardbench merge {}\n",
            shard.label(),
            ev.rows.len(),
            m.texts,
            store.display(),
            shard.count,
            cfg.output.dir.display()
        ),
        written: vec![store, outputs, manifest_path],
        summary: None,
    })
}

/// RewardBench 2's scoring and reports.
fn finish_best_of_n(
    cfg: &RunConfig,
    info: &RunInfo,
    ev: &Evaluation,
    _obs: &mut dyn Observer,
) -> Result<Finished, PipelineError> {
    let labels = ev
        .rows
        .iter()
        .flat_map(|r| r.outcome.chosen.iter().chain(&r.outcome.rejected))
        .map(Vec::len)
        .max()
        .unwrap_or(1);
    // One number per completion: --score_column or --score_transform expectation (checked
    // before any compute when the graph states its labels).
    crate::scorer::transform::check_best_of_n(labels, &ev.prepared.model.onnx)?;
    let card =
        scoring::bon::card(&report::bon::bon_rows(ev)).map_err(|e| PipelineError::Scoring {
            path: ev.prepared.dataset.path.clone(),
            source: e,
        })?;
    let name = ev.prepared.model.name();
    let w = report::bon::write(ev, &card, info, cfg, &cfg.output.dir, &name)?;
    let mut written = w.all();
    token_rewards(cfg, &name, &mut written);
    Ok(Finished {
        table: report::bon::table(ev, &card, info),
        written,
        summary: Some(w.summary),
    })
}

/// DPO (implicit reward) evaluation: `--ref_model`, or `--ref_free_type` alone.
fn run_dpo(
    cfg: &RunConfig,
    info: &RunInfo,
    mode: &DpoMode,
    obs: &mut dyn Observer,
) -> Result<Finished, PipelineError> {
    let ev = dpo::evaluate(cfg, mode)?;
    for w in &ev.prepared.warnings {
        obs.warn(w);
    }
    if cfg.output.dry_run {
        return Ok(dry_run(&ev));
    }
    if let Some(shard) = cfg.output.shard {
        return finish_shard(cfg, info, &ev, shard);
    }
    let done = finish_pairs(cfg, info, &ev, obs)?;
    // The results are written: the resume store has done its job. DPO runs with another
    // reference into this folder would otherwise find it and refuse it.
    let stores = [crate::scorer::cache_path(cfg), eval::store_path(cfg)];
    for f in stores.into_iter().flatten() {
        let _ = std::fs::remove_file(f);
    }
    Ok(done)
}

/// A pairwise preference model (PairRM, SlicPairPM, SteamSHP): both orders of every pair,
/// upstream's verdict, the usual reports.
fn run_pairwise(
    cfg: &RunConfig,
    info: &RunInfo,
    kind: crate::config::PairwiseKind,
    obs: &mut dyn Observer,
) -> Result<Finished, PipelineError> {
    let dataset = match data::load(&cfg.data.spec, cfg.data.prioritize_scoring)? {
        Loaded::Preference(dataset) => dataset,
        Loaded::Instructions(set) => {
            return Err(PairwiseError::Instructions {
                path: set.path,
                kind: kind.label(),
            }
            .into())
        }
    };
    let prepared = pairwise::prepare(cfg, kind, dataset)?;
    for w in &prepared.prepared.warnings {
        obs.warn(w);
    }
    for n in &prepared.notes {
        obs.note(n);
    }
    let scored = pairwise::run(prepared, cfg)?;
    for n in &scored.notes {
        obs.note(n);
    }
    if cfg.output.dry_run {
        return Ok(dry_run(&scored.ev));
    }
    finish_pairs(cfg, info, &scored.ev, obs)
}

/// Instruction data (`messages`, no pairs): every row scored, scores written, no accuracy.
fn run_instructions(
    cfg: &RunConfig,
    set: InstructionSet,
    obs: &mut dyn Observer,
) -> Result<Finished, PipelineError> {
    let rows = set.rows.len();
    let ev = eval::score_instructions(cfg, set)?;
    for w in &ev.prepared.warnings {
        obs.warn(w);
    }
    if cfg.output.dry_run {
        return Ok(dry_run(&ev));
    }
    let name = ev.prepared.model.name();
    let (outputs, csv) = report::write_instructions(&ev, &cfg.output.dir, &name)?;
    let mut written = vec![outputs, csv];
    if cfg.output.save_all {
        written.push(report::write_all_scores(
            &ev,
            &cfg.output.dir,
            &name,
            report::AllScores::Single,
        )?);
    }
    token_rewards(cfg, &name, &mut written);
    Ok(Finished {
        table: format!(
            "instruction data: scored {} of {rows} rows (no accuracy: rows have no chosen/rejected)\n",
            ev.rows.len()
        ),
        written,
        summary: None,
    })
}

/// `--dry_run`'s end: the plan and the estimate for stdout, no file written.
fn dry_run(ev: &Evaluation) -> Finished {
    let plan = ev.stats.plan.clone().unwrap_or_default();
    let mut table = plan.line() + "\n";
    match plan.estimate_line() {
        Some(line) => table += &(line + "\n"),
        None if plan.texts == 0 => table += "estimate: nothing left to compute\n",
        None => {}
    }
    if let Some(note) = plan
        .estimate()
        .and_then(|s| crate::run::plan::long_run_note(s, plan.device))
    {
        table += &format!("note: {note}\n");
    }
    table += "dry run: nothing scored, no file written\n";
    Finished {
        table,
        written: Vec::new(),
        summary: None,
    }
}

/// `--save_token_rewards`: the per-token file the scorer wrote, when it wrote one.
fn token_rewards(cfg: &RunConfig, name: &str, written: &mut Vec<PathBuf>) {
    let path = report::tokens::path(&cfg.output.dir, name);
    if cfg.head.save_token_rewards && path.is_file() {
        written.push(path);
    }
}
