//! Recycled `f32` buffers for the training passes.
//!
//! A training step allocates the same large arrays every time (the tape, the gradients of
//! every step). Fresh large allocations are mapped pages that fault on first touch and are
//! unmapped again when freed, which cost a quarter of a big-lstm training step. Taking them
//! from this per-thread pool, and giving them back when a step is done, maps them once.

use std::cell::RefCell;

/// Buffers below this many floats (64 KiB) come from the allocator, whose free lists serve
/// them well.
const MIN_POOLED: usize = 1 << 14;

/// At most this many buffers are kept.
const MAX_POOLED: usize = 48;

thread_local! {
    static FREE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for `n` floats: the smallest pooled one that fits, or a new one.
fn take(n: usize) -> Vec<f32> {
    pooled(n).unwrap_or_else(|| Vec::with_capacity(n))
}

/// [`overwritten`], or an error if no pooled buffer fits and the allocator has no room.
pub(crate) fn try_overwritten(n: usize) -> Result<Vec<f32>, std::collections::TryReserveError> {
    match pooled_keeping(n) {
        Some(v) => Ok(v),
        None => {
            let mut v = Vec::new();
            v.try_reserve_exact(n)?;
            v.resize(n, 0.0);
            Ok(v)
        }
    }
}

/// [`crate::memory::try_filled`] from the pool: `n` zeros, or the error that names `what`.
pub(crate) fn try_filled(n: Option<usize>, what: &dyn Fn() -> String) -> crate::Result<Vec<f32>> {
    match n.and_then(|n| Some((n, pooled(n)?))) {
        Some((n, mut v)) => {
            v.resize(n, 0.0);
            Ok(v)
        }
        None => crate::memory::try_filled(n, what),
    }
}

/// Gives an array's buffer back (see [`recycle`]).
pub(crate) fn recycle_array(a: ndarray::ArrayD<f32>) {
    recycle(a.into_raw_vec_and_offset().0);
}

/// The smallest pooled buffer with room for `n` floats, with its old contents cut or padded
/// with zeros to `n`.
fn pooled_keeping(n: usize) -> Option<Vec<f32>> {
    let mut v = take_pooled(n)?;
    v.resize(n, 0.0);
    Some(v)
}

/// The smallest pooled buffer with room for `n` floats, emptied.
fn pooled(n: usize) -> Option<Vec<f32>> {
    take_pooled(n).map(|mut v| {
        v.clear();
        v
    })
}

/// The smallest pooled buffer with room for `n` floats, as it was given back.
fn take_pooled(n: usize) -> Option<Vec<f32>> {
    if n < MIN_POOLED {
        return None;
    }
    FREE.with_borrow_mut(|free| {
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= n)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        best.map(|i| free.swap_remove(i))
    })
}

/// `n` zeros.
pub(crate) fn zeros(n: usize) -> Vec<f32> {
    let mut v = take(n);
    v.resize(n, 0.0);
    v
}

/// `n` floats for an array that its maker writes whole before anything reads it (the
/// recurrent tape, the gradients of every step): a pooled buffer keeps whatever it held, so
/// the zeroing pass of [`zeros`] (a tenth of a small LSTM stack's training step) is skipped;
/// a new one is zeroed.
pub(crate) fn overwritten(n: usize) -> Vec<f32> {
    match pooled_keeping(n) {
        Some(v) => v,
        None => zeros(n),
    }
}

/// A copy of `src`.
pub(crate) fn copied(src: &[f32]) -> Vec<f32> {
    let mut v = take(src.len());
    v.extend_from_slice(src);
    v
}

/// The row-major `rows × cols` matrix `m`, transposed.
pub(crate) fn transposed(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = overwritten(rows * cols);
    crate::kernels::transpose_into(m, rows, cols, &mut t);
    t
}

/// Gives `v` back for a later [`zeros`] or [`copied`] (large buffers only; when the pool is
/// full, the smallest buffer is dropped).
pub(crate) fn recycle(v: Vec<f32>) {
    if v.capacity() < MIN_POOLED {
        return;
    }
    FREE.with_borrow_mut(|free| {
        free.push(v);
        if free.len() > MAX_POOLED {
            let smallest = free.iter().enumerate().min_by_key(|(_, v)| v.capacity()).map(|(i, _)| i);
            if let Some(i) = smallest {
                free.swap_remove(i);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_comes_back_zeroed_without_a_new_allocation() {
        let mut v = zeros(MIN_POOLED * 2);
        v.fill(7.0);
        let ptr = v.as_ptr();
        recycle(v);
        let w = zeros(MIN_POOLED + 5);
        assert_eq!(w.as_ptr(), ptr, "the pooled buffer is reused");
        assert_eq!(w.len(), MIN_POOLED + 5);
        assert!(w.iter().all(|x| *x == 0.0));
        let c = copied(&[1.0, 2.0]);
        assert_eq!(c, [1.0, 2.0]);
    }

    #[test]
    fn transposed_matches_the_definition() {
        let m = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
        assert_eq!(transposed(&m, 2, 3), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
