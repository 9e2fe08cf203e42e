//! The timing protocol of `peers.py` (two warm-up calls, then at least 5 runs and 2 s, at
//! most 200 runs; median, min and max), so both sides are measured the same way.

use std::time::{Duration, Instant};

/// Wall-clock statistics of repeated calls, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Median.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// Number of timed runs.
    pub runs: usize,
}

/// How long and how often to time.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// At least this many timed runs.
    pub min_runs: usize,
    /// Keep running until this much time has passed (and `min_runs` are done).
    pub min_time: Duration,
    /// Never more runs than this.
    pub max_runs: usize,
}

impl Default for Budget {
    /// `peers.py`'s `timeit` defaults.
    fn default() -> Self {
        Budget { min_runs: 5, min_time: Duration::from_secs(2), max_runs: 200 }
    }
}

/// Times `f` under `budget`.
pub fn time_it(budget: Budget, mut f: impl FnMut()) -> Stats {
    f();
    f();
    let mut times = Vec::with_capacity(budget.max_runs);
    let start = Instant::now();
    while times.len() < budget.max_runs
        && (times.len() < budget.min_runs || start.elapsed() < budget.min_time)
    {
        let t0 = Instant::now();
        f();
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Stats {
        median_ms: times[times.len() / 2],
        min_ms: times[0],
        max_ms: times[times.len() - 1],
        runs: times.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_runs_and_orders_statistics() {
        let mut calls = 0;
        let s = time_it(Budget { min_runs: 3, min_time: Duration::ZERO, max_runs: 3 }, || calls += 1);
        assert_eq!(calls, 5); // two warm-ups
        assert_eq!(s.runs, 3);
        assert!(s.min_ms <= s.median_ms && s.median_ms <= s.max_ms);
    }
}
