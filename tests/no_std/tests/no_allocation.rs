//! The `no_std` model allocates nothing: not to start, not to step.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the allocations of the thread that asks.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged (the default
// `alloc_zeroed` and `realloc` come through `alloc`, so they are counted too); counting touches
// only a thread-local `Cell` that needs no allocation.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn starting_and_stepping_allocate_nothing() {
    let mut out = [[0.0f32; 8]; 200];
    let before = ALLOCATIONS.with(Cell::get);
    let mut model = seqmodel_no_std::GenStateful::new();
    seqmodel_no_std::generate(&mut model, [0.1; 8], &mut out).unwrap();
    model.reset_states();
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(after - before, 0, "allocations while starting and stepping");
    assert!(out[199].iter().all(|v| v.is_finite()));
}
