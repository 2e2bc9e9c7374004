//! Progress on stderr: a bar with rate and ETA on a terminal, plain periodic lines
//! otherwise, nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Seconds between plain log lines.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    done: u64,
    total: u64,
    unit: &'static str,
    start: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(total: u64, unit: &'static str, quiet: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}, {per_sec}]",
            ) {
                b.set_style(style);
            }
            b.set_message(unit);
            b
        });
        let now = Instant::now();
        Self {
            bar,
            plain: !quiet && !tty,
            done: 0,
            total,
            unit,
            start: now,
            last: now,
        }
    }

    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(b) = &self.bar {
            b.inc(n);
        } else if self.plain && self.last.elapsed() >= LOG_EVERY {
            self.last = Instant::now();
            self.log();
        }
    }

    fn log(&self) {
        let secs = self.start.elapsed().as_secs_f64();
        let rate = self.done as f64 / secs.max(1e-9);
        let eta = (self.total.saturating_sub(self.done)) as f64 / rate.max(1e-9);
        eprintln!(
            "scored {}/{} {} in {secs:.1}s ({rate:.1}/s, about {eta:.0}s left)",
            self.done, self.total, self.unit
        );
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        } else if self.plain {
            self.log();
        }
    }
}
