//! How many threads the kernels may use. Large matrix products split their rows across
//! scoped threads; small ones, where the hand-off costs more than it saves, stay on
//! the calling thread, so more threads never make a model slower.

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
