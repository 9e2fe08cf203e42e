//! What [`Trainer::fit`](super::Trainer::fit) reports as it goes: the [`Callback`] hooks
//! (Keras's callbacks) and [`Progress`], Keras's display (`verbose` 0, 1 or 2).
//!
//! The display is written here on `std` (about 80 lines) rather than with indicatif: the
//! runtime is linked into every user's binary, and indicatif would add its dependency tree
//! (console, unicode-width, portable-atomic, …) to all of them for one line of text.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Said before training when the runtime was compiled at `opt-level = 0` (a debug build
/// of the user's crate without an optimised-dependencies profile).
pub const UNOPTIMIZED: &str = "note: seqmodel's runtime was compiled without optimisations, so training runs about 50x slower \
than in a release build; to keep your debug builds, add to your Cargo.toml:\n    [profile.dev.package.\"*\"]\n    opt-level = 3";

/// What one epoch gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochLogs {
    /// Mean training loss of the epoch's steps.
    pub loss: f32,
    /// Validation loss after the epoch, when there is validation data.
    pub val_loss: Option<f32>,
    /// Steps (batches) in the epoch.
    pub steps: usize,
    /// Wall time of the epoch, validation included.
    pub elapsed: Duration,
}

/// Hooks called by `fit` (Keras's `Callback`); every method does nothing by default.
///
/// A closure `FnMut(epoch, step, steps, loss)` is a callback called after every step.
pub trait Callback {
    /// Before epoch `epoch` (from 0) of `epochs`, which has `steps` steps.
    fn on_epoch_begin(&mut self, epoch: usize, epochs: usize, steps: usize) {
        let _ = (epoch, epochs, steps);
    }
    /// After step `step` (from 0) of `steps`, with that batch's loss.
    fn on_batch_end(&mut self, epoch: usize, step: usize, steps: usize, loss: f32) {
        let _ = (epoch, step, steps, loss);
    }
    /// After epoch `epoch` and its validation.
    fn on_epoch_end(&mut self, epoch: usize, logs: &EpochLogs) {
        let _ = (epoch, logs);
    }
}

impl<F: FnMut(usize, usize, usize, f32)> Callback for F {
    fn on_batch_end(&mut self, epoch: usize, step: usize, steps: usize, loss: f32) {
        self(epoch, step, steps, loss)
    }
}

/// Keras's progress display on standard error: with `verbose` 1, a bar redrawn in place on
/// a terminal (elsewhere only each epoch's final line); with 2, one line per epoch; with 0,
/// nothing.
///
/// ```text
/// Epoch 3/10
/// 32/32 [==============================] - 0s 2ms/step - loss: 0.0412 - val_loss: 0.0518
/// ```
#[derive(Debug)]
pub struct Progress {
    verbose: u8,
    terminal: bool,
    started: Instant,
    drawn: Option<Instant>,
    sum: f32,
}

impl Progress {
    /// A display at Keras's `verbose` level.
    pub fn new(verbose: u8) -> Self {
        Progress {
            verbose,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            drawn: None,
            sum: 0.0,
        }
    }

    fn bar(step: usize, steps: usize) -> String {
        const WIDTH: usize = 30;
        let done = (step * WIDTH).checked_div(steps).unwrap_or(WIDTH);
        let head = if done < WIDTH { ">" } else { "" };
        let pad = steps.to_string().len();
        format!("{step:>pad$}/{steps} [{}{head}{}]", "=".repeat(done), ".".repeat(WIDTH - done - head.len()))
    }
}

/// `1s 31ms/step`-style timing.
fn timing(elapsed: Duration, steps: usize) -> (String, String) {
    let per = elapsed.as_secs_f64() / steps.max(1) as f64;
    let per = if per >= 1.0 { format!("{per:.0}s/step") } else { format!("{:.0}ms/step", per * 1e3) };
    (format!("{}s", elapsed.as_secs()), per)
}

impl Callback for Progress {
    fn on_epoch_begin(&mut self, epoch: usize, epochs: usize, _steps: usize) {
        self.started = Instant::now();
        self.drawn = None;
        self.sum = 0.0;
        if self.verbose > 0 && epoch == 0 && cfg!(seqmodel_unoptimized) {
            eprintln!("{UNOPTIMIZED}");
        }
        if self.verbose > 0 {
            eprintln!("Epoch {}/{epochs}", epoch + 1);
        }
    }

    fn on_batch_end(&mut self, _epoch: usize, step: usize, steps: usize, loss: f32) {
        self.sum += loss;
        // Redrawn at most 20 times a second, so a display never slows training down.
        let due = self.drawn.is_none_or(|t| t.elapsed() >= Duration::from_millis(50));
        if self.verbose == 1 && self.terminal && due && step + 1 < steps {
            self.drawn = Some(Instant::now());
            let mean = self.sum / (step + 1) as f32;
            let eta = self.started.elapsed().as_secs_f64() / (step + 1) as f64 * (steps - step - 1) as f64;
            eprint!("\r{} - ETA: {eta:.0}s - loss: {mean:.4}\x1b[K", Self::bar(step + 1, steps));
        }
    }

    fn on_epoch_end(&mut self, _epoch: usize, logs: &EpochLogs) {
        let (total, per) = timing(logs.elapsed, logs.steps);
        let mut line = match self.verbose {
            0 => return,
            1 => format!("{} - {total} {per}", Self::bar(logs.steps, logs.steps)),
            _ => format!("{}/{} - {total} - {per}", logs.steps, logs.steps),
        };
        line.push_str(&format!(" - loss: {:.4}", logs.loss));
        if let Some(v) = logs.val_loss {
            line.push_str(&format!(" - val_loss: {v:.4}"));
        }
        if self.verbose == 1 && self.terminal {
            eprintln!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_steps() {
        assert_eq!(Progress::bar(0, 4), "0/4 [>.............................]");
        assert_eq!(Progress::bar(2, 4), "2/4 [===============>..............]");
        assert_eq!(Progress::bar(4, 4), "4/4 [==============================]");
        assert_eq!(Progress::bar(3, 12), " 3/12 [=======>......................]");
    }

    #[test]
    fn timing_reads_like_keras() {
        assert_eq!(timing(Duration::from_millis(1500), 50), ("1s".into(), "30ms/step".into()));
        assert_eq!(timing(Duration::from_secs(6), 3), ("6s".into(), "2s/step".into()));
    }
}
