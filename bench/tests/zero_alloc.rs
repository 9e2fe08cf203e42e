//! Heap allocations after a warm-up call, counted by a global allocator that wraps the system
//! one (on every thread; this file has one test so that nothing else runs while it counts).
//!
//! - The stateful `run_step` (the generation loop) allocates nothing, at 1 and 2 threads.
//! - `run` allocates nothing of seqmodel's own: the only allocations left are the one small
//!   bookkeeping `Vec` that `gemm` 0.19 makes in every call (`gemm-common` `gemm.rs`:
//!   `vec![false; mc / MR]`), so the count must equal the number of gemm calls the runtime
//!   made (`seqmodel::kernels::gemm_calls`). Any allocation of ours breaks the equality.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use seqmodel::ndarray::{ArrayD, IxDyn};
use seqmodel_bench::models;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged; the counter is atomic.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations made while `f` runs.
fn allocations(mut f: impl FnMut()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// Heap allocations and gemm calls made while `f` runs.
fn allocations_and_gemm_calls(f: impl FnMut()) -> (usize, usize) {
    let calls = seqmodel::kernels::gemm_calls();
    let n = allocations(f);
    (n, seqmodel::kernels::gemm_calls() - calls)
}

fn filled(shape: &[usize]) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|i| ((i % 17) as f32 - 8.0) / 10.0).collect()).unwrap()
}

#[test]
fn warm_runs_allocate_only_in_gemm_and_steps_not_at_all() {
    seqmodel::set_num_threads(1);
    let mut report = Vec::new();

    // A warm-up run, then the counted one.
    macro_rules! warm_run {
        ($name:literal, $model:ty, $input:expr) => {{
            let mut m = <$model>::random(1);
            let x = $input;
            m.run(x.view()).unwrap();
            report.push(($name, allocations_and_gemm_calls(|| drop(m.run(x.view()).unwrap()))));
        }};
    }
    warm_run!("stream-lstm run", models::StreamLstm, filled(&[1, 100, 32]));
    warm_run!("ae-seed run", models::AeSeed, filled(&[32, 50, 8]));
    warm_run!(
        "lm-gru run",
        models::LmGru,
        ArrayD::from_shape_fn(IxDyn(&[16, 32]), |i| ((i[0] * 131 + i[1] * 7) % 10_000) as i32)
    );
    warm_run!("big-lstm run", models::BigLstm, filled(&[256, 50, 256]));
    let wrong: Vec<_> = report.iter().filter(|(_, (allocs, calls))| allocs != calls).collect();
    assert!(wrong.is_empty(), "(case, (allocations, gemm calls)): {wrong:?}");
    // Batch-1 recurrent steps use the allocation-free vector-matrix kernel: stream-lstm's
    // 100 steps add no gemm call to its one input projection.
    assert_eq!(report[0].1, (1, 1), "stream-lstm");

    for threads in [1, 2] {
        seqmodel::set_num_threads(threads);

        let mut m = models::GenStateful::random(1);
        let mut step = filled(&[1, 8]);
        m.run_step(step.view()).unwrap();
        let n = allocations(|| {
            for _ in 0..200 {
                let y = m.run_step(step.view()).unwrap();
                step.assign(&y);
            }
        });
        assert!(step.iter().all(|v| v.is_finite()));
        assert_eq!(n, 0, "allocations in 200 warm run_step calls at {threads} thread(s)");
    }
    seqmodel::set_num_threads(0);
}
