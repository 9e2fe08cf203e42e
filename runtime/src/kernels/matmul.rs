//! Row-major single-precision matrix products on the packed micro-kernel of
//! [`super::packed`], split across threads when large.

use super::aligned::AlignedFloats;
use super::packed::{Lhs, PackedB, RhsData, Start, matmul_packed_lhs, matmul_row_major_lhs};

/// `c = a · b` (or `c += a · b` with `accumulate`) for row-major `a` (m×k), `b` (k×n) and
/// `c` (m×n). `b` is packed block by block into a buffer of this thread's that is kept for the
/// next call, so after the first call of a size nothing is allocated (on one thread; a product
/// split across threads hands its shares to the helper threads as jobs, which allocates).
///
/// ```
/// let (a, b) = ([1.0, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, 1.0]);
/// let mut c = [0.0; 4];
/// seqmodel_runtime::kernels::matmul(2, 2, 2, &a, &b, &mut c, false);
/// assert_eq!(c, a);
/// ```
///
/// # Panics
/// If a slice is shorter than its matrix (a programming error inside the runtime).
pub fn matmul(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "matmul: slices too short");
    if m == 1 && k > 0 {
        // A batch-1 step: the SIMD vector-matrix kernel reads `b` once, as it is.
        super::simd::gemv(&a[..k], &b[..k * n], &mut c[..n], accumulate);
        return;
    }
    product(m, k, n, Lhs::RowMajor(a), RhsData::RowMajor(b), c, accumulate);
}

/// `c = a · bᵀ` (or `c += a · bᵀ`) for row-major `a` (m×k), `b_t` (n×k, the right factor's
/// transpose) and `c` (m×n): an input's gradient `dy · Wᵀ` from the weight `W` as stored,
/// without writing the transpose out (the kernel reads `b_t` in place while it packs its
/// panels). Split across threads like [`matmul`].
///
/// ```
/// let a = [1.0, 2.0]; // 1×2
/// let b_t = [1.0, 0.0, 3.0, 4.0, 0.0, 1.0]; // 3×2, so b is 2×3
/// let mut c = [0.0; 3];
/// seqmodel_runtime::kernels::matmul_transposed_b(1, 2, 3, &a, &b_t, &mut c, false);
/// assert_eq!(c, [1.0, 11.0, 2.0]);
/// ```
///
/// # Panics
/// If a slice is shorter than its matrix (a programming error inside the runtime).
pub fn matmul_transposed_b(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b_t: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    assert!(a.len() >= m * k && b_t.len() >= k * n && c.len() >= m * n, "matmul: slices too short");
    product(m, k, n, Lhs::RowMajor(a), RhsData::Transposed(b_t), c, accumulate);
}

/// `c = aᵀ · b` (or `c += aᵀ · b`) for row-major `a_t` (k×m, the left factor's transpose),
/// `b` (k×n) and `c` (m×n): a weight's gradient `xᵀ · dy` from the `x` and `dy` that the
/// passes stored, without writing the transpose out (the kernel reads `a_t` in place while it
/// packs its slivers). Split across threads like [`matmul`].
///
/// ```
/// let a_t = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3, so a is 3×2
/// let b = [1.0, 0.0, 0.0, 1.0]; // 2×2
/// let mut c = [0.0; 6];
/// seqmodel_runtime::kernels::matmul_transposed_a(3, 2, 2, &a_t, &b, &mut c, false);
/// assert_eq!(c, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// ```
///
/// # Panics
/// If a slice is shorter than its matrix (a programming error inside the runtime).
pub fn matmul_transposed_a(
    m: usize,
    k: usize,
    n: usize,
    a_t: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
) {
    assert!(a_t.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "matmul: slices too short");
    if m == 1 && k > 0 {
        // aᵀ is a column, which is the row a.
        super::simd::gemv(&a_t[..k], &b[..k * n], &mut c[..n], accumulate);
        return;
    }
    product(m, k, n, Lhs::Transposed { data: a_t, ld: m }, RhsData::RowMajor(b), c, accumulate);
}

/// The packed product of [`matmul`] and [`matmul_transposed_a`], on one thread or split.
fn product(m: usize, k: usize, n: usize, a: Lhs<'_>, b: RhsData<'_>, c: &mut [f32], accumulate: bool) {
    if threads_for(m, k, n) <= 1 {
        matmul_row_major_lhs(m, k, n, a, b, c, accumulate);
        return;
    }
    // Split across threads: `b` is packed once, here, and shared, rather than block by
    // block in every thread.
    thread_local! {
        static SHARED: std::cell::RefCell<PackedB> = std::cell::RefCell::new(PackedB::default());
    }
    SHARED.with_borrow_mut(|packed| {
        packed.pack_from(k, n, b);
        split_rows(m, k, n, a, c, &|r, a_rows, c_rows| {
            matmul_packed_lhs(r, a_rows, packed, c_rows, Start::accumulate(accumulate))
        });
    });
}

/// `c = start + a · b` with `b` already packed: for a matrix multiplied many times, such as
/// a recurrent kernel at every time step; split across threads like [`matmul`].
///
/// # Panics
/// If `a` or `c` is shorter than its matrix.
pub fn matmul_prepacked(m: usize, a: &[f32], b: &PackedB, c: &mut [f32], start: Start<'_>) {
    assert!(a.len() >= m * b.k(), "matmul: slices too short");
    matmul_prepacked_lhs(m, Lhs::RowMajor(a), b, c, start);
}

/// [`matmul_prepacked`] with `A` in any [`Lhs`] layout (`[x_t, h]` read in place).
///
/// # Panics
/// If `a` does not hold an `m × k` matrix or `c` is shorter than its.
pub fn matmul_prepacked_lhs(m: usize, a: Lhs<'_>, b: &PackedB, c: &mut [f32], start: Start<'_>) {
    let (k, n) = (b.k(), b.n());
    split_rows(m, k, n, a, c, &|r, a_rows, c_rows| matmul_packed_lhs(r, a_rows, b, c_rows, start));
}

/// The product of some rows: `(rows, a_rows, c_rows)`.
type RowsProduct<'a> = dyn Fn(usize, Lhs<'_>, &mut [f32]) + Sync + 'a;

/// Runs `product(rows, a_rows, c_rows)` on the whole `m × k` by `k × n` product, or, when it
/// is large, on shares of its rows across the kept helper threads (the calling thread taking
/// the last share; see `crate::parallel`).
fn split_rows(m: usize, k: usize, n: usize, a: Lhs<'_>, c: &mut [f32], product: &RowsProduct<'_>) {
    assert!(c.len() >= m * n, "matmul: slices too short");
    let threads = threads_for(m, k, n);
    if threads <= 1 {
        product(m, a, c);
        return;
    }
    let per = m.div_ceil(threads);
    let jobs = c[..m * n].chunks_mut(per * n).enumerate().map(|(share, c_rows)| {
        let (r, a_rows) = (c_rows.len() / n, a.rows_from(share * per, k));
        move || product(r, a_rows, c_rows)
    });
    crate::parallel::run_jobs(threads, jobs);
}

/// A right-hand factor multiplied many times, such as a recurrent kernel at every time step,
/// laid out once for both kernels: in column blocks of the vector–matrix kernel's width, each
/// stored whole (so a batch-1 product reads the matrix once, front to back), and packed for
/// the matrix-product kernel.
///
/// ```
/// use seqmodel_runtime::kernels::FixedRhs;
/// let r = FixedRhs::new(2, 2, &[0.0, 1.0, 1.0, 0.0]); // swaps two columns
/// let mut out = [0.0; 4];
/// r.product(2, &[1.0, 2.0, 3.0, 4.0], &mut out);
/// assert_eq!(out, [2.0, 1.0, 4.0, 3.0]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FixedRhs {
    /// Column blocks of `gemv_width` columns (the last one narrower), each `k × width`
    /// row-major, one after another.
    blocks: AlignedFloats,
    gemv_width: usize,
    packed: PackedB,
}

impl FixedRhs {
    /// The row-major `k × n` matrix `b`, copied and packed.
    ///
    /// # Panics
    /// If `b` is shorter than `k · n`.
    pub fn new(k: usize, n: usize, b: &[f32]) -> Self {
        let mut m = FixedRhs::default();
        m.refill(k, n, b);
        m
    }

    /// Replaces the matrix with the row-major `k × n` matrix `b`, reusing the buffers (a
    /// trainer repacks every weight after each step without allocating).
    ///
    /// # Panics
    /// If `b` is shorter than `k · n`.
    pub fn refill(&mut self, k: usize, n: usize, b: &[f32]) {
        self.refill_with(k, n, b, true);
    }

    /// [`FixedRhs::refill`], laying out the column blocks of one-row products only with
    /// `one_row` (a trainer repacks its weights at every step, for the batch it trains on:
    /// the blocks of lm-gru's 128 × 10,000 output kernel were laid out for no product).
    pub(crate) fn refill_with(&mut self, k: usize, n: usize, b: &[f32], one_row: bool) {
        self.packed.pack(k, n, b);
        self.gemv_width = super::simd::gemv_width();
        if !one_row {
            self.blocks.overwritten(0);
            return;
        }
        let blocks = self.blocks.overwritten(k * n); // written whole
        // The layout baked weights have too (one definition of it, in the kernels crate).
        let packed = super::simd::step::pack_blocks(k, n, &b[..k * n], self.gemv_width, blocks);
        assert!(packed, "the block width is positive and the lengths are k · n");
    }

    /// The `k × n` matrix `b` packed for products of two rows or more only: without the
    /// column blocks of one-row products (which then run as a packed product too). `b` may be
    /// given transposed ([`RhsData::Transposed`]), read in place: a recurrent layer's
    /// backward pass multiplies by its recurrent kernel's transpose at every step of a batch,
    /// and transposing it first, then laying out blocks no product read, was 2.5 % of
    /// lm-gru's training step at two threads.
    pub(crate) fn packed_only(k: usize, n: usize, b: super::RhsData<'_>) -> Self {
        let mut m = FixedRhs::default();
        m.packed.pack_from(k, n, b);
        m
    }

    /// Gives the buffers back to the training pool (a matrix packed for one step).
    pub(crate) fn recycle(self) {
        self.blocks.recycle();
        self.packed.recycle();
    }

    /// `c = a · self` for the `m` rows of `a` (`m × k`); `c` is `m × n`.
    ///
    /// # Panics
    /// If `a` or `c` is shorter than its matrix.
    pub fn product(&self, m: usize, a: &[f32], c: &mut [f32]) {
        self.product_from(m, a, c, Start::Zero);
    }

    /// `c = start + a · self`.
    ///
    /// # Panics
    /// If `a` or `c` is shorter than its matrix, or a bias shorter than a row.
    pub fn product_from(&self, m: usize, a: &[f32], c: &mut [f32], start: Start<'_>) {
        self.product_in_order(m, a, c, start, false);
    }

    /// [`FixedRhs::product_from`], then `then` on the rows of `c` in blocks of
    /// [`ACTIVATION_ROWS`], each block right after its product, while it is still in cache: an
    /// activation over a large output (lm-gru's softmax over 10,000 classes, 20 MB) no longer
    /// reads it back from memory, and on several threads each share applies it to its own
    /// rows. `then` gets whole rows.
    ///
    /// ```
    /// use seqmodel_runtime::kernels::{FixedRhs, Start};
    /// let r = FixedRhs::new(1, 2, &[1.0, -1.0]);
    /// let mut out = [0.0; 4];
    /// r.product_then(2, &[3.0, -2.0], &mut out, Start::Zero, &|rows| rows.iter_mut().for_each(|v| *v = v.max(0.0)));
    /// assert_eq!(out, [3.0, 0.0, 0.0, 2.0]);
    /// ```
    ///
    /// # Panics
    /// If `a` or `c` is shorter than its matrix, or a bias shorter than a row.
    pub fn product_then(
        &self,
        m: usize,
        a: &[f32],
        c: &mut [f32],
        start: Start<'_>,
        then: &(dyn Fn(&mut [f32]) + Sync),
    ) {
        let (k, n) = (self.packed.k(), self.packed.n());
        if m <= ACTIVATION_ROWS {
            self.product_from(m, a, c, start);
            then(&mut c[..m * n]);
            return;
        }
        assert!(a.len() >= m * k, "matmul: slices too short");
        split_rows(m, k, n, Lhs::RowMajor(a), c, &|r, a_rows, c_rows| {
            for (i, block) in c_rows[..r * n].chunks_mut(ACTIVATION_ROWS * n).enumerate() {
                let rows = block.len() / n;
                matmul_packed_lhs(rows, a_rows.rows_from(i * ACTIVATION_ROWS, k), &self.packed, block, start);
                then(block);
            }
        });
    }

    /// [`FixedRhs::product_from`] with the rows of `a` `ld` floats apart (`ld ≥ k`), such as
    /// the inputs of one time step in a `[B, T, D]` batch, read in place.
    ///
    /// # Panics
    /// If `a` or `c` is shorter than its matrix, or a bias shorter than a row.
    pub fn product_strided(&self, m: usize, a: &[f32], ld: usize, c: &mut [f32], start: Start<'_>) {
        let (k, n) = (self.packed.k(), self.packed.n());
        if m <= 1 || ld == k {
            return self.product_from(m, a, c, start);
        }
        split_rows(m, k, n, Lhs::Strided { data: a, ld }, c, &|r, a_rows, c_rows| {
            matmul_packed_lhs(r, a_rows, &self.packed, c_rows, start)
        });
    }

    /// [`FixedRhs::product_from`] on `m` windows read in place ([`Lhs::Windows`]): the
    /// unfolded inputs of a convolution without the unfolding.
    ///
    /// ```
    /// use seqmodel_runtime::kernels::{FixedRhs, Lhs, Start};
    /// // Windows of 2 steps × 1 channel over the sequences [1, 2, 3] and [4, 5, 6]:
    /// // per sequence 2 windows, 1 float apart, the sequences 3 floats apart.
    /// let sum_of_taps = FixedRhs::new(2, 1, &[1.0, 1.0]);
    /// let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    /// let windows = Lhs::Windows { data: &x, ld: 1, per: 2, run_ld: 3, skip: 0 };
    /// let mut y = [0.0; 4];
    /// sum_of_taps.product_windows(4, windows, &mut y, Start::Zero);
    /// assert_eq!(y, [3.0, 5.0, 9.0, 11.0]);
    /// ```
    ///
    /// # Panics
    /// If `a` or `c` is shorter than its matrix, or a bias shorter than a row.
    pub fn product_windows(&self, m: usize, a: Lhs<'_>, c: &mut [f32], start: Start<'_>) {
        let (k, n) = (self.packed.k(), self.packed.n());
        split_rows(m, k, n, a, c, &|r, a_rows, c_rows| {
            matmul_packed_lhs(r, a_rows, &self.packed, c_rows, start)
        });
    }

    /// [`FixedRhs::product`] of one row with the column blocks (and, with AVX-512, the row
    /// chunks of each block) read last to first when `backwards` (the same numbers). A
    /// recurrence that alternates the direction at every step starts each step on the rows
    /// the last one read most recently, which are still in the L1 cache (gen-stateful's 64 KiB
    /// recurrent kernel on a 32 or 48 KiB L1). Larger batches take the packed path as
    /// [`FixedRhs::product`] does.
    ///
    /// # Panics
    /// If `a` or `c` is shorter than its matrix.
    pub fn product_turning(&self, m: usize, a: &[f32], c: &mut [f32], backwards: bool) {
        self.product_in_order(m, a, c, Start::Zero, backwards);
    }

    fn product_in_order(&self, m: usize, a: &[f32], c: &mut [f32], start: Start<'_>, backwards: bool) {
        let (k, n) = (self.packed.k(), self.packed.n());
        if m == 1 && self.blocks.as_slice().len() >= k * n {
            let accumulate = match start {
                Start::Zero => false,
                Start::Current => true,
                Start::Bias(bias) => {
                    c[..n].copy_from_slice(&bias[..n]);
                    true
                }
            };
            let (x, y, width) = (&a[..k], &mut c[..n], self.gemv_width);
            pulp::Arch::new().dispatch(super::simd::GemvBlocks {
                x,
                blocks: self.blocks.as_slice(),
                y,
                width,
                accumulate,
                backwards,
            });
        } else {
            matmul_prepacked(m, a, &self.packed, c, start);
        }
    }

    /// The matrix in column blocks ([`super::simd::step::pack_blocks`]) and their width: what
    /// the step kernels read for one row.
    #[inline]
    pub fn blocks(&self) -> (&[f32], usize) {
        (self.blocks.as_slice(), self.gemv_width)
    }

    /// Rows of the matrix.
    pub fn k(&self) -> usize {
        self.packed.k()
    }

    /// Columns of the matrix.
    pub fn n(&self) -> usize {
        self.packed.n()
    }
}

/// How many threads an `m × k` by `k × n` product is split across.
fn threads_for(m: usize, k: usize, n: usize) -> usize {
    if m * n * k < PARALLEL_MIN_MACS { 1 } else { crate::num_threads().min(m / MIN_ROWS_PER_THREAD).max(1) }
}

/// Whether an `m × k` by `k × n` product splits its rows across threads.
pub(crate) fn splits_rows(m: usize, k: usize, n: usize) -> bool {
    threads_for(m, k, n) > 1
}

/// Rows per block of a joined recurrent step's product and cell: the packed kernel's own row
/// block, so the right factor is read as often as in one product.
pub const THEN_ROWS: usize = 48;

/// Rows per block of [`FixedRhs::product_then`]: one register tile with AVX-512 (two with
/// AVX2), so that the block's output is still in the L2 cache when the activation reads it
/// back (lm-gru's softmax: 12 × 10,000 floats, 480 KB; at 48 rows, 1.9 MB, it came back from
/// L3 or memory). The right factor (5 MB packed) is then read from L3 once per 12 rows
/// instead of 48, which costs less: lm-gru predict at one thread, medians of five
/// interleaved runs, 29.85 ms at 48 rows, 28.64 at 16, 27.32 at 12 (2026-12-07, Zen 4).
pub const ACTIVATION_ROWS: usize = 12;

/// Each thread gets at least this many rows.
const MIN_ROWS_PER_THREAD: usize = 32;

/// Products with at least this many multiply-adds are split across threads. 2^25 while each
/// split started its threads; with the kept helpers, 2^23 made conv-lstm predict 1.13x faster
/// at two threads (its 32 × 196 × 80 × 64 convolution now splits) and left the other configs
/// within noise.
const PARALLEL_MIN_MACS: usize = 1 << 23;

/// The naive triple loop, the reference the optimised path is tested against.
pub fn matmul_reference(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for p in 0..k {
                s += a[i * k + p] as f64 * b[p * n + j] as f64;
            }
            let prev = if accumulate { c[i * n + j] as f64 } else { 0.0 };
            c[i * n + j] = (prev + s) as f32;
        }
    }
}

/// Operands of an `m × k` by `k × n` product and a starting `c`, uniform in [-0.5, 0.5),
/// from a seeded generator (for the kernels' property tests).
#[cfg(test)]
pub(crate) fn random_operands(m: usize, k: usize, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    };
    let a = (0..m * k).map(|_| next()).collect();
    let b = (0..k * n).map(|_| next()).collect();
    let c = (0..m * n).map(|_| next()).collect();
    (a, b, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn products_then_a_row_map_match_the_naive_loop_then_the_map() {
        // Blocks of ACTIVATION_ROWS rows and a ragged last one, on one thread and split across
        // three (over 2^23 multiply-adds); the map sees whole rows (it records their lengths).
        let (m, k, n) = (12 * ACTIVATION_ROWS + 5, 96, 640);
        let (a, b, _) = random_operands(m, k, n, 5);
        let bias: Vec<f32> = (0..n).map(|j| j as f32 / n as f32).collect();
        let mut want = vec![0.0f32; m * n];
        for row in want.chunks_mut(n) {
            row.copy_from_slice(&bias);
        }
        matmul_reference(m, k, n, &a, &b, &mut want, true);
        want.iter_mut().for_each(|v| *v = v.tanh());
        let fixed = FixedRhs::new(k, n, &b);
        for threads in [1, 3] {
            crate::set_num_threads(threads);
            let mut got = vec![f32::NAN; m * n];
            let blocks = std::sync::Mutex::new(Vec::new());
            fixed.product_then(m, &a, &mut got, Start::Bias(&bias), &|rows| {
                blocks.lock().unwrap().push(rows.len());
                rows.iter_mut().for_each(|v| *v = v.tanh());
            });
            let blocks = blocks.into_inner().unwrap();
            assert!(blocks.iter().all(|len| len % n == 0 && *len <= ACTIVATION_ROWS * n), "{blocks:?}");
            assert_eq!(blocks.iter().sum::<usize>(), m * n);
            for (x, y) in got.iter().zip(&want) {
                assert!((x - y).abs() <= 1e-5, "{threads} threads: {x} vs {y}");
            }
        }
        crate::set_num_threads(0);
    }

    #[test]
    fn a_matrix_packed_only_from_its_transpose_multiplies_as_the_naive_loop() {
        // B (k × n) given as Bᵀ (n × k); one row (no gemv blocks: the packed product) and many.
        let (k, n) = (37, 45);
        let (_, b_t, _) = random_operands(1, n, k, 9);
        let b: Vec<f32> = (0..k * n).map(|i| b_t[(i % n) * k + i / n]).collect();
        let fixed = FixedRhs::packed_only(k, n, RhsData::Transposed(&b_t));
        for m in [1, 7] {
            let (a, _, _) = random_operands(m, k, 1, 10 + m as u64);
            let mut want = vec![0.0f32; m * n];
            matmul_reference(m, k, n, &a, &b, &mut want, false);
            let mut got = vec![f32::NAN; m * n];
            fixed.product(m, &a, &mut got);
            for (x, y) in got.iter().zip(&want) {
                assert!((x - y).abs() <= 1e-5, "{m} rows: {x} vs {y}");
            }
        }
    }

    #[test]
    fn threaded_products_match_the_naive_loop() {
        // Large enough to split across threads (over 2^25 multiply-adds), with uneven shares.
        let (m, k, n) = (513, 256, 256);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 / 11.0 - 0.5).collect();
        let mut want = vec![0.25f32; m * n];
        matmul_reference(m, k, n, &a, &b, &mut want, true);
        for threads in [1, 2, 3] {
            crate::set_num_threads(threads);
            let mut got = vec![0.25f32; m * n];
            matmul(m, k, n, &a, &b, &mut got, true);
            for (x, y) in got.iter().zip(&want) {
                assert!((x - y).abs() <= 1e-3, "{threads} threads: {x} vs {y}");
            }
            let a_t = crate::kernels::transpose(&a, m, k);
            let mut got = vec![0.25f32; m * n];
            matmul_transposed_a(m, k, n, &a_t, &b, &mut got, true);
            for (x, y) in got.iter().zip(&want) {
                assert!((x - y).abs() <= 1e-3, "{threads} threads, a transposed: {x} vs {y}");
            }
            let b_t = crate::kernels::transpose(&b, k, n);
            let mut got = vec![0.25f32; m * n];
            matmul_transposed_b(m, k, n, &a, &b_t, &mut got, true);
            for (x, y) in got.iter().zip(&want) {
                assert!((x - y).abs() <= 1e-3, "{threads} threads, b transposed: {x} vs {y}");
            }
        }
        crate::set_num_threads(0);
    }

    proptest! {
        #[test]
        fn fixed_factors_match_the_naive_loop(
            m in 1usize..4, k in 0usize..40, n in 1usize..300, acc: bool, seed in 0u64..1000,
        ) {
            // Widths across several vector-matrix blocks (64 columns with AVX2), batch 1 and more.
            let (a, b, c0) = random_operands(m, k, n, seed);
            let fixed = FixedRhs::new(k, n, &b);
            let mut got = c0.clone();
            fixed.product_from(m, &a, &mut got, Start::accumulate(acc));
            let mut want = c0.clone();
            matmul_reference(m, k, n, &a, &b, &mut want, acc);
            for (x, y) in got.iter().zip(&want) {
                prop_assert!((x - y).abs() <= 1e-5 * (1.0 + k as f32), "{x} vs {y}");
            }
            // Turning: the blocks in either order give the same numbers as the naive loop,
            // and bit for bit the same as each other.
            let mut want = vec![0.0; m * n];
            matmul_reference(m, k, n, &a, &b, &mut want, false);
            let mut ahead = vec![f32::NAN; m * n];
            let mut back = vec![f32::NAN; m * n];
            fixed.product_turning(m, &a, &mut ahead, false);
            fixed.product_turning(m, &a, &mut back, true);
            prop_assert_eq!(&ahead, &back);
            for (x, y) in back.iter().zip(&want) {
                prop_assert!((x - y).abs() <= 1e-5 * (1.0 + k as f32), "{x} vs {y}");
            }
        }

        #[test]
        fn products_match_the_naive_loop(
            m in 1usize..20, k in 0usize..40, n in 1usize..40, acc: bool, seed in 0u64..1000,
        ) {
            let (a, b, c0) = random_operands(m, k, n, seed);
            let mut c1 = c0.clone();
            let mut c2 = c0.clone();
            matmul(m, k, n, &a, &b, &mut c1, acc);
            matmul_reference(m, k, n, &a, &b, &mut c2, acc);
            for (x, y) in c1.iter().zip(&c2) {
                prop_assert!((x - y).abs() <= 1e-5 * (1.0 + k as f32), "{x} vs {y}");
            }
            let mut c3 = c0.clone();
            matmul_transposed_a(m, k, n, &crate::kernels::transpose(&a, m, k), &b, &mut c3, acc);
            for (x, y) in c3.iter().zip(&c2) {
                prop_assert!((x - y).abs() <= 1e-5 * (1.0 + k as f32), "a transposed: {x} vs {y}");
            }
            let mut c4 = c0.clone();
            matmul_transposed_b(m, k, n, &a, &crate::kernels::transpose(&b, k, n), &mut c4, acc);
            for (x, y) in c4.iter().zip(&c2) {
                prop_assert!((x - y).abs() <= 1e-5 * (1.0 + k as f32), "b transposed: {x} vs {y}");
            }
        }
    }
}
