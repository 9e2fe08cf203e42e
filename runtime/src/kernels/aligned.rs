//! A float buffer whose first element sits on a cache-line boundary.
//!
//! `Vec<f32>` is only 16-byte aligned by the system allocator, so a packed weight matrix
//! read in 32- or 64-byte vectors starts at a random offset within its first cache line:
//! with half of the allocations, half of the vector loads straddle two lines. For a matrix
//! streamed from L2 at every time step (a batch-1 recurrent product) that costs a measurable
//! share of the step, and which half a run gets changes with every allocation.

/// Bytes of a cache line (and of the widest vector, AVX-512).
const LINE: usize = 64;
const LINE_FLOATS: usize = LINE / std::mem::size_of::<f32>();

/// A `[f32]` of a chosen length starting on a 64-byte boundary, reused between fills.
#[derive(Debug, Default)]
pub struct AlignedFloats {
    /// `LINE_FLOATS - 1` floats longer than the buffer (or empty); the floats start at the
    /// first element on a line boundary. No offset is stored: it is found from the address
    /// (a cloned or moved `Vec` keeps its address only as long as its allocation).
    raw: Vec<f32>,
    /// The buffer's length: `raw` is never shortened, so a buffer that serves products of
    /// several sizes (the packed operand shared by split products) is not zero-filled again
    /// each time it grows back (a 20 MB memset per lm-gru training step).
    len: usize,
}

impl AlignedFloats {
    /// Makes the buffer `len` zeros long (reusing the allocation when it is large enough).
    pub fn zeroed(&mut self, len: usize) -> &mut [f32] {
        let floats = self.overwritten(len);
        floats.fill(0.0);
        floats
    }

    /// Makes the buffer `len` floats long without clearing what it held (reusing the
    /// allocation when it is large enough), for a caller that writes every float: zeroing a
    /// trainer's repacked weights first was a tenth of lm-gru's training step.
    pub fn overwritten(&mut self, len: usize) -> &mut [f32] {
        if self.raw.len() < len + LINE_FLOATS - 1 {
            if self.raw.capacity() == 0 {
                // A first fill: from the training pool, to which `recycle` gives it back.
                self.raw = crate::pool::overwritten(len + LINE_FLOATS - 1);
            } else {
                self.raw.resize(len + LINE_FLOATS - 1, 0.0);
            }
        }
        self.len = len;
        let start = self.start();
        &mut self.raw[start..start + len]
    }

    /// The floats.
    #[inline]
    pub fn as_slice(&self) -> &[f32] {
        if self.raw.is_empty() {
            // Never filled: the dangling address says nothing about alignment.
            return &[];
        }
        let start = self.start();
        &self.raw[start..start + self.len]
    }

    /// Floats before the first line boundary of the allocation.
    #[inline]
    fn start(&self) -> usize {
        let misalignment = (self.raw.as_ptr() as usize % LINE) / std::mem::size_of::<f32>();
        (LINE_FLOATS - misalignment) % LINE_FLOATS
    }

    /// Gives the allocation back to the training pool (a buffer packed for one step).
    pub(crate) fn recycle(self) {
        crate::pool::recycle(self.raw);
    }

    /// Floats reserved (for the tests that check a refill reuses the allocation).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.raw.capacity()
    }
}

impl Clone for AlignedFloats {
    /// A copy in a new allocation, aligned afresh (a cloned `Vec` lands wherever the
    /// allocator puts it).
    fn clone(&self) -> Self {
        let mut copy = AlignedFloats::default();
        copy.zeroed(self.as_slice().len()).copy_from_slice(self.as_slice());
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_never_filled_is_empty() {
        assert!(AlignedFloats::default().as_slice().is_empty());
        assert!(AlignedFloats::default().clone().as_slice().is_empty());
    }

    #[test]
    fn the_floats_start_on_a_line_and_keep_their_values_through_clone_and_refill() {
        for len in [0, 1, 7, 64, 1000] {
            let mut a = AlignedFloats::default();
            for (i, v) in a.zeroed(len).iter_mut().enumerate() {
                *v = i as f32;
            }
            let b = a.clone();
            for buf in [&a, &b] {
                assert_eq!(buf.as_slice().len(), len);
                assert_eq!(buf.as_slice().as_ptr() as usize % LINE, 0, "len {len}");
                assert!(buf.as_slice().iter().enumerate().all(|(i, v)| *v == i as f32));
            }
            assert!(a.zeroed(len / 2).iter().all(|v| *v == 0.0));
            assert_eq!(a.as_slice().len(), len / 2);
            assert_eq!(a.as_slice().as_ptr() as usize % LINE, 0);
            // Grown back, it keeps the first half's zeros and the second half's old values.
            let again = a.overwritten(len);
            assert!(again[..len / 2].iter().all(|v| *v == 0.0));
            assert!(again.iter().enumerate().skip(len / 2).all(|(i, v)| *v == i as f32));
        }
    }
}
