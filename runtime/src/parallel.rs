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

/// Runs `f` with a scope whose spawned work goes to the `threads - 1` helper threads of
/// that count while `f` runs on this thread (which takes its own share, as the caller of a
/// split product does); returns when all of it has finished.
///
/// # Panics
/// If the helper threads cannot be started (the operating system refused a thread), or if
/// spawned work panicked.
pub(crate) fn in_scope<'s, R>(threads: usize, f: impl FnOnce(&rayon::Scope<'s>) -> R) -> R {
    helpers(threads).in_place_scope(f)
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
