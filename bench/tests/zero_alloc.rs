//! Heap allocations after a warm-up call, counted by a global allocator that wraps the system
//! one (on every thread; this file has one test so that nothing else runs while it counts).
//!
//! - `run` on every benchmark config allocates nothing on one thread (at more threads, a large
//!   product split across threads hands its shares to the helper threads as jobs, which
//!   allocates).
//! - The stateful `run_step` (the generation loop) and `step_one` (the same on plain arrays)
//!   allocate nothing, at 1 and 2 threads.
//! - `step_streams` over 256 streams (the serve-streams loop) allocates nothing on one thread.
//! - A warm training step (forward, backward, Adam) of every config that trains allocates
//!   nothing on one thread: the trainer keeps its pass, gradient maps and work buffers, and
//!   its arrays come from the training pool. So does one of a model with input, recurrent
//!   and layer dropout, GRU without `reset_after` and BatchNormalization.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use seqmodel::ndarray::{Array, Array2, Dimension, IntoDimension};
use seqmodel::train::{Loss, Optimizer, Trainer};
use seqmodel::{Tensor, WeightStore};
use seqmodel_bench::config::Config;
use seqmodel_bench::{cases, models};

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

fn filled<D: Dimension>(shape: impl IntoDimension<Dim = D>) -> Array<f32, D> {
    let shape = shape.into_dimension();
    let n = shape.size();
    Array::from_shape_vec(shape, (0..n).map(|i| ((i % 17) as f32 - 8.0) / 10.0).collect()).unwrap()
}

#[test]
fn warm_runs_and_steps_allocate_nothing() {
    seqmodel::set_num_threads(1);
    let mut report = Vec::new();

    // A warm-up run, then the counted one.
    macro_rules! warm_run {
        ($name:literal, $model:ty, $input:expr) => {{
            let mut m = <$model>::random(1);
            let x = $input;
            m.run(x.view()).unwrap();
            report.push((
                $name,
                allocations(|| {
                    let _ = m.run(x.view()).unwrap();
                }),
            ));
        }};
    }
    warm_run!("stream-lstm run", models::StreamLstm, filled((1, 100, 32)));
    warm_run!("ae-seed run", models::AeSeed, filled((32, 50, 8)));
    warm_run!(
        "lm-gru run",
        models::LmGru,
        Array2::from_shape_fn((16, 32), |(i, j)| ((i * 131 + j * 7) % 10_000) as i32)
    );
    warm_run!("big-lstm run", models::BigLstm, filled((256, 50, 256)));
    {
        // 200 steps of 256 streams through one shared model.
        let m = models::GenStateful::random(1);
        let mut streams = m.streams(256);
        let mut step = filled((256, 8));
        m.step_streams(&mut streams, step.view()).unwrap();
        let n = allocations(|| {
            for _ in 0..200 {
                let y = m.step_streams(&mut streams, step.view()).unwrap();
                step.assign(&y);
            }
        });
        report.push(("serve-streams step_streams", n));
    }
    for config in [Config::StreamLstm, Config::AeSeed, Config::LmGru, Config::BigLstm, Config::ConvLstm] {
        let (mut trainer, x, y) = cases::trainer(config);
        // The pool settles within a few steps (its buffers find their sizes' uses).
        for _ in 0..4 {
            trainer.train_on_batch(&x, &y).unwrap();
        }
        let mut loss = 0.0;
        let n = allocations(|| loss = trainer.train_on_batch(&x, &y).unwrap());
        assert!(loss.is_finite());
        report.push((config.name(), n));
    }
    {
        // The regularising layers and the other cells, trained: dropout on the inputs, the
        // recurrent states and between layers, GRU without reset_after, batch statistics.
        let src = "model M(x: [12, 6]) -> [12, 3] { x -> LSTM(16, return_sequences=true, dropout=0.2, \
                   recurrent_dropout=0.3) -> Dropout(0.25) -> GRU(8, return_sequences=true, reset_after=false) \
                   -> BatchNormalization() -> TimeDistributed(Dense(3)) }";
        let program = seqmodel_compiler::compile(src).unwrap().main().unwrap().clone();
        let weights = WeightStore::random(&program, 3, 0.3);
        let mut trainer =
            Trainer::new(program, weights, Loss::MeanSquaredError, Optimizer::adam(1e-3)).unwrap();
        let (x, y) = (
            vec![Tensor::F32(filled((8, 12, 6)).into_dyn())],
            vec![Tensor::F32(filled((8, 12, 3)).into_dyn())],
        );
        for _ in 0..4 {
            trainer.train_on_batch(&x, &y).unwrap();
        }
        report.push((
            "dropout, GRU(reset_after=false), BatchNormalization",
            allocations(|| {
                trainer.train_on_batch(&x, &y).unwrap();
            }),
        ));
    }
    let wrong: Vec<_> = report.iter().filter(|(_, allocs)| *allocs != 0).collect();
    assert!(wrong.is_empty(), "(case, allocations in a warm run): {wrong:?}");

    for threads in [1, 2] {
        seqmodel::set_num_threads(threads);

        let mut m = models::GenStateful::random(1);
        let mut step = filled((1, 8));
        m.run_step(step.view()).unwrap();
        let n = allocations(|| {
            for _ in 0..200 {
                let y = m.run_step(step.view()).unwrap();
                step.assign(&y);
            }
        });
        assert!(step.iter().all(|v| v.is_finite()));
        assert_eq!(n, 0, "allocations in 200 warm run_step calls at {threads} thread(s)");

        // The same loop on plain arrays.
        let mut x = [0.1f32; 8];
        m.step_one(&x).unwrap();
        let n = allocations(|| {
            for _ in 0..200 {
                x = *m.step_one(&x).unwrap();
            }
        });
        assert!(x.iter().all(|v| v.is_finite()));
        assert_eq!(n, 0, "allocations in 200 warm step_one calls at {threads} thread(s)");
    }
    seqmodel::set_num_threads(0);
}
