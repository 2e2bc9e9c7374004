//! Progress on stderr: a bar on a terminal, plain periodic lines otherwise, nothing with
//! `--quiet`. Progress and its ETA count work (padded tokens, weighted by length as
//! attention grows: [`crate::run::plan::CallWork::cost`]), not texts, so the ETA holds when
//! the longest batches go first; texts are shown alongside.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Seconds between plain log lines.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// The whole-run estimate is printed once this share of the work is done ...
const ESTIMATE_SHARE: f64 = 0.05;
/// ... or this much time has passed, whichever comes first.
const ESTIMATE_AFTER: Duration = Duration::from_secs(20);
/// Runs estimated shorter than this get no estimate line.
const ESTIMATE_MIN_SECONDS: f64 = 10.0;

/// Seconds left at the rate so far: `elapsed * (total - done) / done` (None before any work).
pub fn eta(done: u64, total: u64, elapsed: f64) -> Option<f64> {
    (done > 0).then(|| elapsed * total.saturating_sub(done) as f64 / done as f64)
}

/// A duration for people: `42 s`, `3 min 10 s`, `2 h 05 min`.
pub fn human(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 10.0 {
        return format!("{s:.1} s");
    }
    let whole = s.round() as u64;
    match whole {
        0..=59 => format!("{whole} s"),
        60..=3599 => format!("{} min {:02} s", whole / 60, whole % 60),
        _ => format!("{} h {:02} min", whole / 3600, whole % 3600 / 60),
    }
}

pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    texts: u64,
    texts_total: u64,
    tokens: u64,
    work: u64,
    work_total: u64,
    unit: &'static str,
    start: Instant,
    last: Instant,
    estimated: bool,
}

impl Progress {
    /// Progress over `texts_total` texts of `work_total` units of work.
    pub fn new(texts_total: u64, work_total: u64, unit: &'static str, quiet: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let b = ProgressBar::with_draw_target(Some(work_total), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {msg} [{elapsed_precise}<{eta_precise}]")
            {
                b.set_style(style);
            }
            b.set_message(format!("0/{texts_total} {unit}"));
            b
        });
        let now = Instant::now();
        Self {
            bar,
            plain: !quiet && !tty,
            texts: 0,
            texts_total,
            tokens: 0,
            work: 0,
            work_total,
            unit,
            start: now,
            last: now,
            estimated: false,
        }
    }

    /// Records a finished call of `texts` texts, `tokens` padded tokens and `work` units.
    /// Returns the whole run's estimated seconds the one time it is printed.
    pub fn inc(&mut self, texts: u64, tokens: u64, work: u64) -> Option<f64> {
        self.texts += texts;
        self.tokens += tokens;
        self.work += work;
        let estimate = self.estimate();
        if let Some(b) = &self.bar {
            b.set_message(format!("{}/{} {}", self.texts, self.texts_total, self.unit));
            b.inc(work);
        } else if self.plain && self.last.elapsed() >= LOG_EVERY {
            self.last = Instant::now();
            self.log();
        }
        estimate
    }

    /// The whole-run estimate line, once: after [`ESTIMATE_SHARE`] of the tokens or
    /// [`ESTIMATE_AFTER`], whichever first, when work is left and the run is not short.
    fn estimate(&mut self) -> Option<f64> {
        if self.estimated || !(self.plain || self.bar.is_some()) {
            return None;
        }
        let secs = self.start.elapsed().as_secs_f64();
        let share = self.work as f64 / self.work_total.max(1) as f64;
        if share < ESTIMATE_SHARE && self.start.elapsed() < ESTIMATE_AFTER {
            return None;
        }
        self.estimated = true;
        let left = eta(self.work, self.work_total, secs)?;
        if left <= 0.0 || secs + left < ESTIMATE_MIN_SECONDS {
            return None;
        }
        let line = format!(
            "estimate: about {} for the whole run ({} left), from the {:.0}% of the work done",
            human(secs + left),
            human(left),
            share * 100.0
        );
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
        Some(secs + left)
    }

    fn log(&self) {
        let secs = self.start.elapsed().as_secs_f64();
        let left = eta(self.work, self.work_total, secs)
            .map_or_else(|| "?".into(), |s| format!("{s:.0}s"));
        eprintln!(
            "scored {}/{} {} ({:.0}% of the work) in {secs:.1}s, about {left} left",
            self.texts,
            self.texts_total,
            self.unit,
            100.0 * self.work as f64 / self.work_total.max(1) as f64
        );
    }

    /// Clears the bar and prints the final line (a terminal too).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if self.plain || self.bar.is_some() {
            eprintln!(
                "scored {} {} ({} tokens with padding) in {:.1}s",
                self.texts,
                self.unit,
                self.tokens,
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

/// A model being loaded: a line when it starts, another with the time when it is loaded.
pub struct Loading {
    start: Instant,
    name: String,
    quiet: bool,
}

/// Says on stderr that `onnx` is being loaded (not with `quiet`).
pub fn loading(onnx: &Path, quiet: bool) -> Loading {
    if !quiet {
        let size = std::fs::metadata(onnx).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(onnx.with_extension("onnx_data")).map_or(0, |m| m.len());
        eprintln!(
            "loading the model {} ({:.1} MB)",
            onnx.display(),
            size as f64 / 1e6
        );
    }
    Loading {
        start: Instant::now(),
        name: onnx
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        quiet,
    }
}

impl Loading {
    /// The model is loaded (and warmed up).
    pub fn done(self) {
        if !self.quiet {
            eprintln!(
                "loaded {} in {:.1}s",
                self.name,
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_counts_work_not_texts() {
        // Longest batches first: a quarter of the work done in 30 s leaves 90 s, however
        // few texts it held.
        assert_eq!(eta(250, 1000, 30.0), Some(90.0));
        assert_eq!(eta(1000, 1000, 12.0), Some(0.0));
        assert_eq!(eta(0, 1000, 5.0), None);
        assert_eq!(eta(1200, 1000, 5.0), Some(0.0));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human(3.3), "3.3 s");
        assert_eq!(human(42.4), "42 s");
        assert_eq!(human(190.0), "3 min 10 s");
        assert_eq!(human(7500.0), "2 h 05 min");
    }
}
