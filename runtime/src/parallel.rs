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

/// The number of threads the kernels may use.
pub fn num_threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}
