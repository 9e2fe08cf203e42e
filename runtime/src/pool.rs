//! Recycled `f32` buffers for the training passes.
//!
//! A training step allocates the same large arrays every time (the tape, the gradients of
//! every step). Fresh large allocations are mapped pages that fault on first touch and are
//! unmapped again when freed, which cost a quarter of a big-lstm training step. Taking them
//! from this per-thread pool, and giving them back when a step is done, maps them once.
//! Small buffers are pooled too, so that a warm training step allocates nothing at all.

use std::cell::RefCell;

/// At most this many buffers are kept per size class (capacities from `2^(k-1)` up to
/// `2^k`): a training step gives back what it had live at once, so the pool holds about one
/// step's peak, and a warm step takes every buffer from it (no allocation at all).
const MAX_PER_CLASS: usize = 64;

/// Size classes: one per bit of a capacity.
const CLASSES: usize = usize::BITS as usize + 1;

/// The free buffers of one element type, by size class.
type Free<T> = RefCell<[Vec<Vec<T>>; CLASSES]>;

thread_local! {
    static FREE_F32: Free<f32> = const { RefCell::new([const { Vec::new() }; CLASSES]) };
    static FREE_I32: Free<i32> = const { RefCell::new([const { Vec::new() }; CLASSES]) };
    static FREE_BOOL: Free<bool> = const { RefCell::new([const { Vec::new() }; CLASSES]) };
    static FREE_F64: Free<f64> = const { RefCell::new([const { Vec::new() }; CLASSES]) };
}

/// An element type with a pool of its own on each thread: floats, the integer ids and step
/// masks that a training step also copies, and the f64 statistics of the normalisations.
pub(crate) trait Pooled: Copy + 'static {
    /// Runs `f` on this thread's free buffers of the type.
    fn with_free<R>(f: impl FnOnce(&mut [Vec<Vec<Self>>; CLASSES]) -> R) -> R;
}

/// `impl Pooled` for each element type with its thread's free lists.
macro_rules! pooled {
    ($($t:ty => $free:ident),* $(,)?) => {$(
        impl Pooled for $t {
            fn with_free<R>(f: impl FnOnce(&mut [Vec<Vec<Self>>; CLASSES]) -> R) -> R {
                $free.with_borrow_mut(f)
            }
        }
    )*};
}

pooled!(f32 => FREE_F32, i32 => FREE_I32, f64 => FREE_F64, bool => FREE_BOOL);

/// The size class of a capacity (or of a request for `n` floats): its bit length.
fn class(capacity: usize) -> usize {
    (usize::BITS - capacity.leading_zeros()) as usize
}

/// An empty buffer with room for `n` elements: the smallest pooled one that fits, or a new
/// one (for a maker that pushes its contents).
pub(crate) fn with_room<T: Pooled>(n: usize) -> Vec<T> {
    pooled(n).unwrap_or_else(|| Vec::with_capacity(n))
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

/// [`try_filled`] for a buffer that its maker writes whole before anything reads it: a
/// pooled one keeps whatever it held (see [`overwritten`]); a new one is zeroed.
pub(crate) fn try_overwritten(n: Option<usize>, what: &dyn Fn() -> String) -> crate::Result<Vec<f32>> {
    match n.and_then(pooled_keeping) {
        Some(v) => Ok(v),
        None => crate::memory::try_filled(n, what),
    }
}

/// Gives an array's buffer back (see [`recycle`]).
pub(crate) fn recycle_array<T: Pooled>(a: ndarray::ArrayD<T>) {
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
fn pooled<T: Pooled>(n: usize) -> Option<Vec<T>> {
    take_pooled(n).map(|mut v| {
        v.clear();
        v
    })
}

/// The smallest pooled buffer with room for `n` floats, as it was given back.
fn take_pooled<T: Pooled>(n: usize) -> Option<Vec<T>> {
    if n == 0 {
        return None;
    }
    T::with_free(|free| {
        // From `n`'s own class, else from the next one (every buffer there fits), the one
        // whose length is nearest `n`, then the smallest. A buffer kept with its contents
        // ([`overwritten`]) is padded with zeros up to `n`: a large buffer cut to a small
        // array's length is padded again when a large array takes it back, and with every
        // larger class open to small arrays, lm-gru's training step zeroed about 23 MB that
        // way at every step (its 1.28 M-float gradients in 5.12 M-float buffers). A class
        // with nothing free allocates in the first steps, then has its own buffers.
        let first = class(n);
        for bucket in free.iter_mut().skip(first).take(2) {
            let best = bucket
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= n)
                .min_by_key(|(_, v)| (v.len().abs_diff(n), v.capacity()))
                .map(|(i, _)| i);
            if let Some(i) = best {
                return Some(bucket.swap_remove(i));
            }
        }
        None
    })
}

/// `n` zeros.
pub(crate) fn zeros(n: usize) -> Vec<f32> {
    let mut v = with_room(n);
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

/// `n` copies of `value` (integer ids, step masks).
pub(crate) fn filled<T: Pooled>(n: usize, value: T) -> Vec<T> {
    let mut v = with_room(n);
    v.resize(n, value);
    v
}

/// A copy of `src`.
pub(crate) fn copied<T: Pooled>(src: &[T]) -> Vec<T> {
    let mut v = with_room(src.len());
    v.extend_from_slice(src);
    v
}

/// A copy of `a` in standard layout, in a pooled buffer.
pub(crate) fn copied_array<T: Pooled, D: ndarray::Dimension>(
    a: &ndarray::ArrayView<'_, T, D>,
) -> ndarray::Array<T, D> {
    let a = a.as_standard_layout();
    let data = copied(a.as_slice().expect("standard layout"));
    ndarray::Array::from_shape_vec(a.raw_dim(), data).expect("same length")
}

/// The row-major `rows × cols` matrix `m`, transposed.
pub(crate) fn transposed(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = overwritten(rows * cols);
    crate::kernels::transpose_into(m, rows, cols, &mut t);
    t
}

/// Gives `v` back for a later [`zeros`] or [`copied`] (when its size class is full, the
/// class's smallest buffer is dropped).
pub(crate) fn recycle<T: Pooled>(v: Vec<T>) {
    if v.capacity() == 0 {
        return;
    }
    T::with_free(|free| {
        let bucket = &mut free[class(v.capacity())];
        bucket.push(v);
        if bucket.len() > MAX_PER_CLASS {
            let smallest = bucket.iter().enumerate().min_by_key(|(_, v)| v.capacity()).map(|(i, _)| i);
            if let Some(i) = smallest {
                bucket.swap_remove(i);
            }
        }
    });
}

/// `v` emptied, with its room, as a vector of another element type of the same layout
/// (in practice: the same type borrowing for another lifetime). std collects a mapped
/// `into_iter` in place when the layouts match, so the allocation carries over and a list
/// rebuilt at every step is allocated once (`bench/tests/zero_alloc.rs` checks that a warm
/// training step allocates nothing).
pub(crate) fn reused<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().map(|_| unreachable!("emptied above")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_comes_back_zeroed_without_a_new_allocation() {
        let mut v = zeros(1 << 15);
        v.fill(7.0);
        let ptr = v.as_ptr();
        recycle(v);
        let w = zeros((1 << 14) + 5);
        assert_eq!(w.as_ptr(), ptr, "the pooled buffer is reused");
        assert_eq!(w.len(), (1 << 14) + 5);
        assert!(w.iter().all(|x| *x == 0.0));
        let c = copied(&[1.0, 2.0]);
        assert_eq!(c, [1.0, 2.0]);
    }

    #[test]
    fn a_kept_buffer_goes_to_the_nearest_length_and_never_to_a_far_smaller_array() {
        let (mut short, long) = (overwritten(4000), overwritten(4000));
        short.truncate(3000);
        let (p_short, p_long) = (short.as_ptr(), long.as_ptr());
        recycle(short);
        recycle(long);
        // Both fit 3900 floats; the one that held 4000 is cut, not padded with zeros.
        let a = overwritten(3900);
        assert_eq!(a.as_ptr(), p_long);
        let b = overwritten(3000);
        assert_eq!(b.as_ptr(), p_short);
        // A buffer of 2^20 floats is not cut for 1,000: a later array of its size would have
        // to zero it again.
        let big = overwritten(1 << 20);
        let p_big = big.as_ptr();
        recycle(big);
        let small = overwritten(1000);
        assert_ne!(small.as_ptr(), p_big);
        let again = overwritten(1 << 20);
        assert_eq!(again.as_ptr(), p_big);
    }

    #[test]
    fn transposed_matches_the_definition() {
        let m = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
        assert_eq!(transposed(&m, 2, 3), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
