//! Fallible allocation for the large buffers of a model (weights, their packed forms, the
//! optimizer's state), so that a model too large for the machine is an error naming what
//! needed the memory, not an abort.

use crate::error::{Result, RuntimeError};

/// A zeroed vector of `n` floats, or [`RuntimeError::OutOfMemory`] naming `what`.
pub fn try_zeroed(n: usize, what: impl FnOnce() -> String) -> Result<Vec<f32>> {
    try_filled(Some(n), what)
}

/// A vector of `n` default values (zeros), or [`RuntimeError::OutOfMemory`] naming `what`;
/// `None` (a size that overflowed) is out of memory too.
pub fn try_filled<T: Clone + Default>(n: Option<usize>, what: impl FnOnce() -> String) -> Result<Vec<T>> {
    let size = std::mem::size_of::<T>();
    let oom = |what: String| RuntimeError::OutOfMemory {
        what,
        bytes: n.map_or(usize::MAX, |n| n.saturating_mul(size)),
    };
    let Some(n) = n else { return Err(oom(what())) };
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| oom(what()))?;
    v.resize(n, T::default());
    Ok(v)
}

/// Resizes `v` to `n` elements (allocating only when it grows past its capacity).
#[inline]
pub(crate) fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}

/// Checks that `bytes` can be allocated now (reserved and released at once), before work
/// that allocates about that much in several pieces would abort half-way.
pub fn ensure_allocatable(bytes: usize, what: impl FnOnce() -> String) -> Result<()> {
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(bytes).map_err(|_| RuntimeError::OutOfMemory { what: what(), bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_size_is_an_error_naming_what_needed_it() {
        let e = try_zeroed(usize::MAX / 8, || "the weights of layer `lstm`".into()).unwrap_err().to_string();
        assert!(
            e.starts_with("the weights of layer `lstm` needs ") && e.contains("cannot be allocated"),
            "{e}"
        );
        assert!(ensure_allocatable(usize::MAX / 2, || "x".into()).is_err());
        assert_eq!(try_zeroed(3, || unreachable!()).unwrap(), vec![0.0; 3]);
    }
}
