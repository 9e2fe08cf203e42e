//! How many threads the kernels may use. Large matrix products split their rows across
//! threads; small ones, where the hand-off costs more than it saves, stay on the calling
//! thread, so more threads never make a model slower. The helper threads are started once
//! per thread count and kept (a `rayon` pool): a scoped thread started per product cost
//! about 60 µs, and its fresh stack and packing buffers faulted in their pages every time
//! (a sixth of a big-lstm training step at two threads).

use std::sync::atomic::{AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the number of threads the kernels may use (`0` = every core, the default).
///
/// ```
/// seqmodel_runtime::set_num_threads(1);
/// assert_eq!(seqmodel_runtime::num_threads(), 1);
/// seqmodel_runtime::set_num_threads(0);
/// assert!(seqmodel_runtime::num_threads() >= 1);
/// ```
pub fn set_num_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// The number of threads the kernels may use (1 inside work that already runs on its own
/// share of the threads, see `on_one_thread`).
pub fn num_threads() -> usize {
    if ON_ONE_THREAD.get() {
        return 1;
    }
    match THREADS.load(Ordering::Relaxed) {
        0 => machine_threads(),
        n => n,
    }
}

/// The machine's parallelism, asked once per process: `available_parallelism` reads the
/// cgroup files on every call, about 50 µs, which a model left at the default thread count
/// paid on every node of every call (a batch-1 generation step took 25 times longer).
fn machine_threads() -> usize {
    static MACHINE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MACHINE.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

thread_local! {
    static ON_ONE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with [`num_threads`] at 1 on this thread: for one share of work that is already
/// split across threads, so that its products do not split again and oversubscribe the cores.
pub(crate) fn on_one_thread<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the previous setting even if `f` unwinds.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ON_ONE_THREAD.set(self.0);
        }
    }
    let _restore = Restore(ON_ONE_THREAD.replace(true));
    f()
}

/// Runs every job of `jobs` as one share of work that is split across threads (each with
/// [`num_threads`] at 1): the last on this thread, the others on the `threads - 1` helper
/// threads; returns when all have finished.
///
/// The calling thread waits for the helpers spinning (for up to a millisecond, then
/// blocking): blocking on the scope's latch and being woken cost it 40-60 µs on this VM,
/// which made 256 streams stepped as two shares only 1.2-1.4x faster than as one batch (spinning:
/// 1.6-1.8x).
///
/// # Panics
/// If the helper threads cannot be started (the operating system refused a thread), or if
/// a job panicked.
pub(crate) fn run_jobs<F: FnOnce() + Send>(threads: usize, jobs: impl IntoIterator<Item = F>) {
    use std::sync::atomic::AtomicUsize;
    /// Counts a spawned job as finished even if it unwinds.
    struct Finished<'a>(&'a AtomicUsize);
    impl Drop for Finished<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Release);
        }
    }
    let finished = AtomicUsize::new(0);
    helpers(threads).in_place_scope(|scope| {
        let finished = &finished;
        let mut jobs = jobs.into_iter().peekable();
        let mut spawned = 0;
        while let Some(job) = jobs.next() {
            if jobs.peek().is_some() {
                spawned += 1;
                scope.spawn(move |_| {
                    let _finished = Finished(finished);
                    on_one_thread(job);
                });
            } else {
                on_one_thread(job);
            }
        }
        let start = std::time::Instant::now();
        let mut spins = 0u32;
        while finished.load(Ordering::Acquire) < spawned {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) && start.elapsed() > std::time::Duration::from_millis(1) {
                break; // the scope's end blocks until the rest have finished
            }
        }
    });
}

/// The pool of `threads - 1` helper threads (at least one), started on first use.
fn helpers(threads: usize) -> std::sync::Arc<rayon::ThreadPool> {
    type Pools = std::sync::Mutex<Vec<(usize, std::sync::Arc<rayon::ThreadPool>)>>;
    static POOLS: std::sync::OnceLock<Pools> = std::sync::OnceLock::new();
    let helpers = threads.saturating_sub(1).max(1);
    let mut pools = POOLS.get_or_init(Pools::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, pool)) = pools.iter().find(|(n, _)| *n == helpers) {
        return pool.clone();
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(helpers)
        .thread_name(|i| format!("seqmodel-helper-{i}"))
        .build()
        .expect("the kernels' helper threads start");
    let pool = std::sync::Arc::new(pool);
    pools.push((helpers, pool.clone()));
    pool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_runs_once_on_one_thread_each() {
        for threads in [1, 2, 3] {
            let mut out = [0usize; 7];
            let jobs = out.iter_mut().enumerate().map(|(i, slot)| move || *slot = (i + 1) * num_threads());
            run_jobs(threads, jobs);
            // Each job ran, inside a share (one thread for its own products).
            assert_eq!(out, [1, 2, 3, 4, 5, 6, 7], "at {threads} threads");
        }
    }

    #[test]
    fn a_panicking_helper_job_is_the_callers_panic_not_a_hang() {
        let caught = std::panic::catch_unwind(|| {
            let jobs = (0..2).map(|i| move || assert!(i != 0, "job {i} fails"));
            run_jobs(2, jobs);
        });
        assert!(caught.is_err());
    }
}
