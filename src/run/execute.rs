//! Runs planned model calls: calls finished in the resume store are reused, the others are
//! built on a producer thread into a bounded channel and run on this thread (which owns the
//! ONNX Runtime sessions), each recorded in the store as it finishes; a cancel request stops
//! the run after the call in flight. It prints the plan first; with `--dry_run` it only
//! measures a few calls (nothing recorded) to estimate the run's time.

use std::path::PathBuf;
use std::time::Instant;

use super::observer::Observer;
use super::plan::{self, CallWork, Measured, RunPlan};
use super::progress::Progress;
use super::store::{Cache, CacheError, ScoreStore};

/// Why planned calls did not all run.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Call(E),
    #[error(transparent)]
    Store(#[from] CacheError),
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
}

/// A run stopped by a cancel request; its finished calls are in the store.
#[derive(Debug, thiserror::Error)]
#[error("interrupted after {done} of {total} model calls; {}", kept(cache.as_deref()))]
pub struct Interrupted {
    pub done: usize,
    pub total: usize,
    /// The resume store, when the run keeps one.
    pub cache: Option<String>,
}

fn kept(cache: Option<&str>) -> String {
    match cache {
        Some(c) => format!("finished work is kept in {c}: run the same command again to resume"),
        None => "this run keeps no resume cache, so running it again starts afresh".into(),
    }
}

/// What running the calls gave.
#[derive(Debug, Clone, Default)]
pub struct Executed {
    /// Per call, one output vector per sequence of the call (in the call's member order).
    pub outputs: Vec<Vec<Vec<f64>>>,
    /// Calls taken from the store.
    pub reused: usize,
    /// This thread waiting for the producer.
    pub wait_seconds: f64,
    /// Inside the model calls.
    pub call_seconds: f64,
    /// The work this run planned (with `--dry_run`, its measurement too).
    pub plan: RunPlan,
}

/// The planned calls and how to report on them.
#[derive(Debug, Clone)]
pub struct Work {
    /// Per call, its texts and tokens.
    pub calls: Vec<CallWork>,
    /// Texts the score store answered before the calls were planned.
    pub stored: usize,
    /// Models each call runs (2 for DPO with a reference model).
    pub models: usize,
    /// What the progress line counts.
    pub unit: &'static str,
    /// The execution provider that runs the calls.
    pub device: &'static str,
    pub quiet: bool,
    /// Measure a few calls and stop: nothing recorded, no outputs.
    pub dry_run: bool,
}

impl Work {
    /// Work over `calls` with defaults to fill in: one model, texts, CPU, not quiet.
    pub fn new(calls: Vec<CallWork>) -> Self {
        Self {
            calls,
            stored: 0,
            models: 1,
            unit: "texts",
            device: "cpu",
            quiet: false,
            dry_run: false,
        }
    }
}

/// Calls `--dry_run` measures at most, spread over the lengths.
const SAMPLE_CALLS: usize = 5;
/// `--dry_run` starts no further measured call after this many seconds.
const SAMPLE_SECONDS: f64 = 3.0;

/// Where finished calls are kept: the call-keyed [`Cache`], or a [`ScoreStore`] with the
/// keys of each call's texts (its calls were planned for texts not yet stored).
pub trait CallStore {
    /// A finished call's outputs, when kept.
    fn done(&self, call: usize) -> Option<&Vec<Vec<f64>>>;
    fn record(&mut self, call: usize, outputs: &[Vec<f64>]) -> Result<(), CacheError>;
    fn path(&self) -> &std::path::Path;
    fn dropped_partial_line(&self) -> bool;
}

impl CallStore for Cache {
    fn done(&self, call: usize) -> Option<&Vec<Vec<f64>>> {
        self.done.get(&call)
    }
    fn record(&mut self, call: usize, outputs: &[Vec<f64>]) -> Result<(), CacheError> {
        Cache::record(self, call, outputs)
    }
    fn path(&self) -> &std::path::Path {
        Cache::path(self)
    }
    fn dropped_partial_line(&self) -> bool {
        self.dropped_partial_line
    }
}

/// A [`ScoreStore`] seen as a call store: call `k` holds the texts `keys[k]`.
pub struct KeyedCalls<'a> {
    pub store: &'a mut ScoreStore,
    pub keys: Vec<Vec<String>>,
}

impl CallStore for KeyedCalls<'_> {
    fn done(&self, _call: usize) -> Option<&Vec<Vec<f64>>> {
        None // the calls were planned for texts the store lacks
    }
    fn record(&mut self, call: usize, outputs: &[Vec<f64>]) -> Result<(), CacheError> {
        let keys = self.keys.get(call).map_or(&[][..], Vec::as_slice);
        self.store.record(keys, outputs)
    }
    fn path(&self) -> &std::path::Path {
        self.store.path()
    }
    fn dropped_partial_line(&self) -> bool {
        self.store.dropped_partial_line
    }
}

/// Runs calls `0..work.calls.len()` (call `k` has `work.calls[k].texts` sequences):
/// `build(k)` on the producer thread, `call(k, built)` here.
pub fn execute<B: Send, E: std::error::Error + 'static>(
    work: &Work,
    mut store: Option<&mut dyn CallStore>,
    build: impl Fn(usize) -> B + Sync,
    mut call: impl FnMut(usize, B) -> Result<Vec<Vec<f64>>, E>,
    obs: &mut dyn Observer,
) -> Result<Executed, ExecuteError<E>> {
    let sizes: Vec<usize> = work.calls.iter().map(|c| c.texts).collect();
    let quiet = work.quiet;
    let mut outputs: Vec<Option<Vec<Vec<f64>>>> = vec![None; sizes.len()];
    if let Some(c) = store.as_deref() {
        if c.dropped_partial_line() && !quiet {
            obs.note(&format!(
                "dropped a half-written last line of {}",
                c.path().display()
            ));
        }
        for (k, &n) in sizes.iter().enumerate() {
            match c.done(k) {
                Some(cached) if cached.len() == n => outputs[k] = Some(cached.clone()),
                Some(_) => {
                    return Err(CacheError::Corrupt {
                        path: c.path().to_path_buf(),
                        line: k + 2,
                        problem: "its row count does not match the planned call".into(),
                    }
                    .into())
                }
                None => {}
            }
        }
    }
    let todo: Vec<usize> = (0..sizes.len()).filter(|&k| outputs[k].is_none()).collect();
    let reused = sizes.len() - todo.len();
    let todo_work: Vec<CallWork> = todo.iter().map(|&k| work.calls[k]).collect();
    let reused_texts =
        sizes.iter().sum::<usize>() - todo_work.iter().map(|c| c.texts).sum::<usize>();
    let mut planned = RunPlan::of(
        &todo_work,
        work.stored + reused_texts,
        work.models,
        work.unit,
    );
    planned.device = work.device;
    if work.dry_run {
        planned.measured = measure(&todo, &work.calls, &build, &mut call)?;
        return Ok(Executed {
            outputs: outputs.into_iter().map(Option::unwrap_or_default).collect(),
            reused,
            plan: planned,
            ..Executed::default()
        });
    }
    if !quiet {
        eprintln!("{}", planned.line());
    }
    if reused > 0 && !quiet {
        // On stderr as a progress line, not a notice: it says where the run starts.
        eprintln!(
            "resuming: {reused} of {} model calls reused from the cache",
            sizes.len()
        );
    }
    let cache_name: Option<PathBuf> = store.as_deref().map(|c| c.path().to_path_buf());
    let mut progress = Progress::new(planned.texts as u64, planned.cost, work.unit, quiet);
    let (mut wait, mut in_calls) = (0.0f64, 0.0f64);
    std::thread::scope(|s| -> Result<(), ExecuteError<E>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let (todo, build) = (&todo, &build);
        s.spawn(move || {
            for &k in todo {
                if tx.send(build(k)).is_err() {
                    break; // this thread stopped
                }
            }
        });
        for (n, &k) in todo.iter().enumerate() {
            if super::cancel::requested() {
                return Err(Interrupted {
                    done: reused + n,
                    total: sizes.len(),
                    cache: cache_name.as_ref().map(|p| p.display().to_string()),
                }
                .into());
            }
            let t = Instant::now();
            let Ok(built) = rx.recv() else { break };
            wait += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let out = call(k, built).map_err(ExecuteError::Call)?;
            in_calls += t.elapsed().as_secs_f64();
            if let Some(c) = store.as_deref_mut() {
                c.record(k, &out)?;
            }
            outputs[k] = Some(out);
            let done = &work.calls[k];
            if let Some(total) = progress.inc(done.texts as u64, done.padded as u64, done.cost) {
                if let Some(note) = plan::long_run_note(total, work.device) {
                    obs.note(&note);
                }
            }
        }
        Ok(())
    })?;
    progress.finish();
    Ok(Executed {
        outputs: outputs.into_iter().map(Option::unwrap_or_default).collect(),
        reused,
        wait_seconds: wait,
        call_seconds: in_calls,
        plan: planned,
    })
}

/// `--dry_run`'s measurement: up to [`SAMPLE_CALLS`] of the calls to run, spread over their
/// lengths, for at most about [`SAMPLE_SECONDS`]; their outputs are dropped.
fn measure<B, E: std::error::Error + 'static>(
    todo: &[usize],
    calls: &[CallWork],
    build: &impl Fn(usize) -> B,
    call: &mut impl FnMut(usize, B) -> Result<Vec<Vec<f64>>, E>,
) -> Result<Option<Measured>, ExecuteError<E>> {
    let mut m = Measured::default();
    for k in plan::spread(todo, SAMPLE_CALLS) {
        if m.seconds >= SAMPLE_SECONDS {
            break;
        }
        let built = build(k);
        let t = Instant::now();
        call(k, built).map_err(ExecuteError::Call)?;
        m.seconds += t.elapsed().as_secs_f64();
        m.calls += 1;
        m.padded += calls[k].padded;
        m.cost += calls[k].cost;
    }
    Ok((m.calls > 0).then_some(m))
}
