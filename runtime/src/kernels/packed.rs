//! The matrix-product micro-kernel: `C = A · B` with `B` packed once into column panels.
//!
//! `B` (k×n, row-major) is rewritten as panels of [`panel_width`] columns (two SIMD vectors),
//! each panel holding its k rows one after another and the last one zero-padded. The kernel
//! walks `A` in blocks of rows that stay in the L2 cache and `k` in blocks whose panel slice
//! stays in L1; each tile of up to [`MR`] rows × one panel keeps its `2·MR` accumulators in
//! registers and does `2·MR` fused multiply-adds per element of `k`, reading `A` in place
//! (one broadcast per row) and the panel in order. A weight matrix that is multiplied many
//! times (the recurrent kernel, once per time step) is packed once per sequence; everything
//! else is packed per product into a reused buffer, so no product allocates after warm-up.

use pulp::{Simd, WithSimd};

use super::aligned::AlignedFloats;
use seqmodel_kernels::{lanes, load, store};

/// Rows of `A` (and `C`) per register tile with 16 vector registers (AVX2): 12
/// accumulators, two vectors of the panel and a broadcast.
pub const MR: usize = 6;

/// Rows per register tile with 32 vector registers (AVX-512): 24 accumulators, used where
/// the product is at least 32 deep.
pub const MR_WIDE: usize = 12;

/// Rows of the tallest register tile on the instruction set `S`.
#[inline(always)]
fn tallest_tile<S: Simd>() -> usize {
    if lanes::<S>() >= 16 { MR_WIDE } else { MR }
}

/// Floats of a panel per block of `k` (32 KiB, an L1 cache): 512 elements of `k` with AVX2's
/// 16-column panels, 256 with AVX-512's 32.
const PANEL_BLOCK: usize = 8 * 1024;

/// Floats of `B` per block of columns (16 MiB, half the L3 cache). Measured: blocks sized
/// for L2 (256 KiB) made the 12,800 × 256 × 1024 input projection slower (about 55 against
/// 75 GFLOP/s: its rows of `A` then stream from memory once per column block) and did not
/// help the 512 × 128 × 10,000 output layer, so a block of `k` rows of B is streamed from L3
/// whole for each block of rows of `A`.
const B_BLOCK: usize = 4 * 1024 * 1024;

/// Rows of `A` per block (at most 96 KiB of `A` at 512 elements of `k`, in L2). A multiple of
/// [`MR`] and [`MR_WIDE`]. Measured on the benchmark configs' shapes: from 24 to 96 rows perform alike, 240
/// and more lose up to a third on products with 10⁴ rows.
const MC: usize = 48;

/// `B` (k×n) packed into column panels for [`matmul_packed`]. The buffer is kept between
/// [`PackedB::pack`] calls, so repacking a matrix of the same or a smaller size allocates
/// nothing.
///
/// ```
/// use seqmodel_runtime::kernels::{matmul_packed, PackedB, Start};
/// let b = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2×3
/// let mut packed = PackedB::default();
/// packed.pack(2, 3, &b);
/// let a = [1.0, 1.0, 0.0, 1.0]; // 2×2
/// let mut c = [0.0; 6];
/// matmul_packed(2, &a, &packed, &mut c, Start::Zero);
/// assert_eq!(c, [5.0, 7.0, 9.0, 4.0, 5.0, 6.0]);
/// matmul_packed(2, &a, &packed, &mut c, Start::Bias(&[0.5, 0.0, -1.0]));
/// assert_eq!(c, [5.5, 7.0, 8.0, 4.5, 5.0, 5.0]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PackedB {
    data: AlignedFloats,
    k: usize,
    n: usize,
    width: usize,
}

impl PackedB {
    /// Gives the buffer back to the training pool (a matrix packed for one step).
    pub(crate) fn recycle(self) {
        self.data.recycle();
    }

    /// Packs the row-major `k × n` matrix `b` (replacing what was packed before).
    ///
    /// # Panics
    /// If `b` is shorter than `k · n`.
    pub fn pack(&mut self, k: usize, n: usize, b: &[f32]) {
        pulp::Arch::new().dispatch(Pack { packed: self, k, n, b: RhsData::RowMajor(b) });
    }

    /// [`PackedB::pack`] of `B` given as [`RhsData`] (row-major or transposed).
    pub fn pack_from(&mut self, k: usize, n: usize, b: RhsData<'_>) {
        pulp::Arch::new().dispatch(Pack { packed: self, k, n, b });
    }

    /// [`PackedB::pack`] with panels for the instruction set `s` (for tests).
    pub fn pack_for<S: Simd>(&mut self, s: S, k: usize, n: usize, b: &[f32]) {
        s.vectorize(Pack { packed: self, k, n, b: RhsData::RowMajor(b) });
    }

    /// Rows of the packed matrix.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of the packed matrix.
    pub fn n(&self) -> usize {
        self.n
    }
}

struct Pack<'a> {
    packed: &'a mut PackedB,
    k: usize,
    n: usize,
    b: RhsData<'a>,
}

impl WithSimd for Pack<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Pack { packed, k, n, b } = self;
        assert!(b.holds(k, n), "PackedB::pack: too few elements for a {k}×{n} matrix");
        let width = 2 * lanes::<S>();
        // Every panel is written whole but the last one's padding columns, zeroed here.
        let panels = n.div_ceil(width);
        let data = packed.data.overwritten(panels * k * width);
        let pack = move |(c0, nc): (usize, usize), buf: &mut [f32]| match b {
            RhsData::RowMajor(b) => pack_block(s, b, n, (0, k), (c0, nc), buf),
            RhsData::Transposed(b_t) => pack_block_transposed(s, b_t, k, (0, k), (c0, nc), buf),
        };
        // A large matrix (the 512 × 10,000 output gradient of lm-gru, packed for the split
        // product of its weight gradient) is packed in runs of panels on every thread.
        let threads = if k * n >= PARALLEL_MIN_PACKED { crate::num_threads().min(panels) } else { 1 };
        if threads > 1 {
            let per = panels.div_ceil(threads);
            let jobs = data.chunks_mut((per * k * width).max(1)).enumerate().map(|(i, buf)| {
                let c0 = i * per * width;
                move || pack((c0, (n - c0).min(per * width)), buf)
            });
            crate::parallel::run_jobs(threads, jobs);
        } else {
            pack((0, n), data);
        }
        let ragged = n % width;
        if ragged > 0 {
            for row in data[n / width * k * width..].chunks_exact_mut(width) {
                row[ragged..].fill(0.0);
            }
        }
        (packed.k, packed.n, packed.width) = (k, n, width);
    }
}

/// Matrices of at least this many floats (4 MiB) are packed on every thread.
const PARALLEL_MIN_PACKED: usize = 1 << 20;

/// Columns per panel on this CPU: two vectors of the widest instruction set available.
pub fn panel_width() -> usize {
    2 * seqmodel_kernels::dispatched_lanes()
}

/// What a product's result starts from.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// Zero: `c = a · b`.
    Zero,
    /// `c`'s current values: `c += a · b`.
    Current,
    /// A bias row (`n` values) on every row: `c = a · b + bias`, added as each register tile
    /// is stored, so `c` is written once instead of being filled with the bias first.
    Bias(&'a [f32]),
}

impl Start<'_> {
    /// [`Start::Current`] when `accumulate`, else [`Start::Zero`].
    pub fn accumulate(accumulate: bool) -> Self {
        if accumulate { Start::Current } else { Start::Zero }
    }
}

/// The left factor `A` (`m × k`) of a product, as it is stored. Backward passes multiply by
/// the transpose of what the forward pass stored (`xᵀ · dy` for a weight's gradient), and the
/// kernel rewrites `A` into slivers anyway, so it reads the transpose in place rather than
/// materialising it.
#[derive(Debug, Clone, Copy)]
pub enum Lhs<'a> {
    /// `A` row-major: `A[i][p] = a[i · k + p]`.
    RowMajor(&'a [f32]),
    /// `A` row-major with rows `ld` floats apart (`ld ≥ k`): `A[i][p] = data[i · ld + p]`,
    /// such as the inputs of one time step in a `[B, T, D]` batch (`ld = T · D`).
    Strided {
        /// `A`, from its element `(0, 0)`.
        data: &'a [f32],
        /// Floats from one row of `A` to the next.
        ld: usize,
    },
    /// The windows of a convolution read in place: rows in runs of `per`, row `j` of a run
    /// at `j · ld` (`ld` may be less than `k`: windows of stride `s` over `C` channels
    /// overlap, `ld = s · C`), each run `run_ld` floats after the last, such as the
    /// `[T_out, K·C]` windows of every sequence of a `[B, T, C]` batch. Row `i` of `A` is
    /// row `i + skip` of this layout.
    Windows {
        /// The runs, from the first row of the first.
        data: &'a [f32],
        /// Floats from one row of a run to the next.
        ld: usize,
        /// Rows per run.
        per: usize,
        /// Floats from one run to the next.
        run_ld: usize,
        /// Rows of the layout before row 0 of `A`.
        skip: usize,
    },
    /// Each row of `A` two rows side by side: row `i` of `first` (`d` floats, rows `ld1`
    /// apart) then row `i` of `second` (`k - d` floats, rows `ld2` apart), such as
    /// `[x_t, h]` of a recurrent step, read where the two are instead of copied together.
    Joined {
        /// The left part, from its first row.
        first: &'a [f32],
        /// Floats from one row of `first` to the next.
        ld1: usize,
        /// Columns from `first`.
        d: usize,
        /// The right part, from its first row.
        second: &'a [f32],
        /// Floats from one row of `second` to the next.
        ld2: usize,
    },
    /// `Aᵀ` row-major with rows `ld` floats apart (`ld ≥ m`): `A[i][p] = data[p · ld + i]`.
    Transposed {
        /// `Aᵀ`, from its element `(0, 0)`.
        data: &'a [f32],
        /// Floats from one row of `Aᵀ` (one element of `k`) to the next.
        ld: usize,
    },
}

impl<'a> Lhs<'a> {
    /// Whether the storage holds an `m × k` matrix.
    fn holds(&self, m: usize, k: usize) -> bool {
        match *self {
            Lhs::RowMajor(a) => a.len() >= m * k,
            Lhs::Strided { data, ld } => m == 0 || (ld >= k && data.len() >= (m - 1) * ld + k),
            Lhs::Windows { data, per, .. } => {
                m == 0
                    || (per > 0
                        && self.row_start(m - 1).is_some_and(|at| at.checked_add(k) <= Some(data.len())))
            }
            Lhs::Transposed { data, ld } => m == 0 || k == 0 || (ld >= m && data.len() >= (k - 1) * ld + m),
            Lhs::Joined { first, ld1, d, second, ld2 } => {
                m == 0
                    || (d <= k
                        && ld1 >= d
                        && ld2 >= k - d
                        && first.len() >= (m - 1) * ld1 + d
                        && second.len() >= (m - 1) * ld2 + (k - d))
            }
        }
    }

    /// Where row `i` of a row-wise layout starts (`None` for a transposed one, or past
    /// `usize`).
    fn row_start(&self, i: usize) -> Option<usize> {
        match *self {
            Lhs::RowMajor(_) | Lhs::Transposed { .. } | Lhs::Joined { .. } => None,
            Lhs::Strided { ld, .. } => i.checked_mul(ld),
            Lhs::Windows { ld, per, run_ld, skip, .. } => {
                let j = i.checked_add(skip)?;
                (j / per).checked_mul(run_ld)?.checked_add((j % per).checked_mul(ld)?)
            }
        }
    }

    /// The rows from `i0` on, of a matrix with `k` columns.
    pub(crate) fn rows_from(self, i0: usize, k: usize) -> Self {
        match self {
            Lhs::RowMajor(a) => Lhs::RowMajor(&a[i0 * k..]),
            Lhs::Strided { data, ld } => Lhs::Strided { data: &data[i0 * ld..], ld },
            Lhs::Windows { data, ld, per, run_ld, skip } => {
                Lhs::Windows { data, ld, per, run_ld, skip: skip + i0 }
            }
            Lhs::Transposed { data, ld } => Lhs::Transposed { data: &data[i0..], ld },
            Lhs::Joined { first, ld1, d, second, ld2 } => {
                Lhs::Joined { first: &first[i0 * ld1..], ld1, d, second: &second[i0 * ld2..], ld2 }
            }
        }
    }
}

/// How a right factor `B` (k×n) that is packed per product is stored.
#[derive(Debug, Clone, Copy)]
pub enum RhsData<'a> {
    /// `B` row-major: `B[p][j] = b[p · n + j]`.
    RowMajor(&'a [f32]),
    /// `Bᵀ` row-major (`n × k`): `B[p][j] = b[j · k + p]`, such as a Dense kernel `[D, U]`
    /// as the right factor of its input's gradient `dy · Wᵀ`. The packing reads it in place,
    /// so the transpose is never written out.
    Transposed(&'a [f32]),
}

impl RhsData<'_> {
    /// Whether the storage holds a `k × n` matrix.
    fn holds(&self, k: usize, n: usize) -> bool {
        match self {
            RhsData::RowMajor(b) | RhsData::Transposed(b) => b.len() >= k * n,
        }
    }
}

/// `c = start + a · b` for row-major `a` (m×k) and `c` (m×n), where `b` (k×n) was packed by
/// [`PackedB::pack`]; single-threaded.
///
/// # Panics
/// If `a` or `c` is shorter than its matrix, or a bias shorter than a row.
pub fn matmul_packed(m: usize, a: &[f32], b: &PackedB, c: &mut [f32], start: Start<'_>) {
    matmul_packed_lhs(m, Lhs::RowMajor(a), b, c, start);
}

/// [`matmul_packed`] with `A` given as an [`Lhs`] (row-major or transposed).
///
/// # Panics
/// If `a` or `c` is shorter than its matrix, or a bias shorter than a row.
pub fn matmul_packed_lhs(m: usize, a: Lhs<'_>, b: &PackedB, c: &mut [f32], start: Start<'_>) {
    assert_eq!(b.width, panel_width(), "PackedB packed for another instruction set");
    pulp::Arch::new().dispatch(Product::new(m, a, Rhs::Packed(b), c, start));
}

/// [`matmul_packed`] on a given instruction set (for tests); `b` must have been packed with
/// panels of `2 · lanes` columns of that set, which [`PackedB::pack_for`] does.
pub fn matmul_packed_with<S: Simd>(s: S, m: usize, a: &[f32], b: &PackedB, c: &mut [f32], start: Start<'_>) {
    assert_eq!(b.width, 2 * lanes::<S>(), "PackedB packed for another instruction set");
    s.vectorize(Product::new(m, Lhs::RowMajor(a), Rhs::Packed(b), c, start));
}

/// `c = a · b` (or `c += a · b`) for row-major `a` (m×k), `b` (k×n) and `c` (m×n);
/// single-threaded. `b` is packed one block of `k` at a time (a slice that stays in cache)
/// into a buffer of this thread's that is kept for the next call.
///
/// # Panics
/// If a slice is shorter than its matrix.
pub fn matmul_row_major(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    matmul_row_major_lhs(m, k, n, Lhs::RowMajor(a), RhsData::RowMajor(b), c, accumulate);
}

/// [`matmul_row_major`] with `A` given as an [`Lhs`] (row-major or transposed) and `B` as
/// [`RhsData`] (row-major or transposed).
///
/// # Panics
/// If a slice is shorter than its matrix.
pub fn matmul_row_major_lhs(
    m: usize,
    k: usize,
    n: usize,
    a: Lhs<'_>,
    b: RhsData<'_>,
    c: &mut [f32],
    accumulate: bool,
) {
    thread_local! {
        static BLOCK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BLOCK.with_borrow_mut(|buf| {
        let rhs = Rhs::RowMajor { b, k, n, buf };
        pulp::Arch::new().dispatch(Product::new(m, a, rhs, c, Start::accumulate(accumulate)));
    });
}

/// [`matmul_row_major_lhs`] with a row-major `A` on a given instruction set (for tests).
#[allow(clippy::too_many_arguments)] // the product's operands and the instruction set
pub fn matmul_row_major_with<S: Simd>(
    s: S,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: RhsData<'_>,
    c: &mut [f32],
    accumulate: bool,
) {
    let mut buf = Vec::new();
    s.vectorize(Product::new(
        m,
        Lhs::RowMajor(a),
        Rhs::RowMajor { b, k, n, buf: &mut buf },
        c,
        Start::accumulate(accumulate),
    ));
}

/// Where the kernel finds `B`.
enum Rhs<'a> {
    /// Packed whole, ahead of time.
    Packed(&'a PackedB),
    /// Stored `k × n` (row-major or transposed), packed one block of `k` at a time into `buf`.
    RowMajor { b: RhsData<'a>, k: usize, n: usize, buf: &'a mut Vec<f32> },
}

impl Rhs<'_> {
    fn dims(&self) -> (usize, usize) {
        match self {
            Rhs::Packed(p) => (p.k, p.n),
            Rhs::RowMajor { k, n, .. } => (*k, *n),
        }
    }
}

struct Product<'a> {
    m: usize,
    a: Lhs<'a>,
    b: Rhs<'a>,
    c: &'a mut [f32],
    start: Start<'a>,
}

impl<'a> Product<'a> {
    fn new(m: usize, a: Lhs<'a>, b: Rhs<'a>, c: &'a mut [f32], start: Start<'a>) -> Self {
        let (k, n) = b.dims();
        assert!(a.holds(m, k) && c.len() >= m * n, "matrix product: slices too short for {m}×{k}·{k}×{n}");
        if let Rhs::RowMajor { b, .. } = &b {
            assert!(b.holds(k, n), "matrix product: right factor too short for {k}×{n}");
        }
        if let Start::Bias(bias) = start {
            assert!(bias.len() >= n, "matrix product: bias of {} for {n} columns", bias.len());
        }
        Product { m, a, b, c: &mut c[..m * n], start }
    }
}

impl WithSimd for Product<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Product { m, a, mut b, c, start } = self;
        let (k, n) = b.dims();
        if k == 0 {
            match start {
                Start::Zero => c.fill(0.0),
                Start::Current => {}
                Start::Bias(bias) => {
                    c.chunks_exact_mut(n.max(1)).for_each(|row| row.copy_from_slice(&bias[..n]))
                }
            }
        }
        let width = 2 * lanes::<S>();
        if let (Rhs::Packed(packed), Some(rows)) = (&b, RowStarts::of(a, k))
            && (1..=lanes::<S>()).contains(&n)
            && k > 0
        {
            // One panel, row `p` of B at `p · width` whatever the blocks of `k`.
            return narrow_product(s, m, rows, &packed.data.as_slice()[..k * width], width, c, n, start);
        }
        let kc_block = PANEL_BLOCK / width;
        // This thread's buffer for blocks of A rewritten as slivers (taken, not borrowed
        // through a closure, so the kernel stays inside this function's instruction set).
        let mut a_block = A_BLOCK.take();
        // Tall tiles pay where the loop over `k` is long: with 8 elements of `k` (an input
        // projection of 8 features) they ran 10 % slower than 6-row tiles.
        let tall = if k >= 32 { tallest_tile::<S>() } else { MR };
        // Columns per block: a block of B (kc × nc) stays in L3 while every block of rows of
        // A passes over it.
        let nc_block = (B_BLOCK / kc_block / width).max(1) * width;
        for c0 in (0..n).step_by(nc_block) {
            let nc = nc_block.min(n - c0);
            for p0 in (0..k).step_by(kc_block) {
                let kc = kc_block.min(k - p0);
                // Panel j of this block (j counted from column c0) starts at
                // `j · stride + offset` of `panels`.
                let (panels, stride, offset) = match &mut b {
                    Rhs::Packed(p) => (p.data.as_slice(), p.k * width, (c0 / width * p.k + p0) * width),
                    Rhs::RowMajor { b, n, buf, .. } => {
                        let buf = grown(buf, nc.div_ceil(width) * kc * width);
                        match *b {
                            RhsData::RowMajor(b) => pack_block(s, b, *n, (p0, kc), (c0, nc), buf),
                            RhsData::Transposed(b_t) => {
                                pack_block_transposed(s, b_t, k, (p0, kc), (c0, nc), buf)
                            }
                        }
                        (&*buf, kc * width, 0)
                    }
                };
                // The first block of k starts from `start`, the others add to C.
                let start = if p0 == 0 { start } else { Start::Current };
                for i0 in (0..m).step_by(MC) {
                    let end = (i0 + MC).min(m);
                    let slivers = grown(&mut a_block, (end - i0) * kc);
                    pack_slivers(a, k, (i0, end), (p0, kc), tall, slivers);
                    for j in 0..nc.div_ceil(width) {
                        let panel = &panels[j * stride + offset..][..kc * width];
                        let col = c0 + j * width;
                        let cols = width.min(n - col);
                        let mut i = i0;
                        while i < end {
                            let sliver = &slivers[(i - i0) * kc..];
                            let t = Tile { sliver, kc, panel, c, ldc: n, row: i, col, cols, start };
                            i += match tile_rows(end - i, tall) {
                                MR_WIDE => tile12(s, t),
                                1 => tile1(s, t),
                                2 => tile2(s, t),
                                3 => tile3(s, t),
                                4 => tile4(s, t),
                                5 => tile5(s, t),
                                _ => tile6(s, t),
                            };
                        }
                    }
                }
            }
        }
        A_BLOCK.set(a_block);
    }
}

/// The first `n` floats of a work buffer whose values are overwritten before they are read,
/// grown (with zeros) if it is shorter but never shrunk: a thread's buffers serve products
/// of several sizes in turn (lm-gru's forward and backward products), and a buffer cut to
/// a small one's size was zeroed again each time it grew back (3 % of lm-gru's training
/// step).
fn grown(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

thread_local! {
    /// Each thread's buffer for slivers of A (kept between products: no allocation after
    /// the first).
    static A_BLOCK: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Rows of the register tile that starts with `left` rows of the block left, where the
/// tallest tile has `tall` rows ([`MR`] or [`MR_WIDE`]): `tall`, else [`MR`], else all that
/// are left. A 12-row tile (AVX-512's 32 registers hold its 24 accumulators) loads each
/// panel row of B once for 12 rows instead of 6; it landed with the tiles' constant-indexed
/// accumulators, and the two together took a 256 × 256 × 1024 prepacked product from 167 to
/// 227 GFLOP/s on an AVX-512 host (`gemm_layouts`), the tall tile's share not measured apart.
fn tile_rows(left: usize, tall: usize) -> usize {
    if left >= tall { tall } else { left.min(MR) }
}

/// The rows of a row-wise [`Lhs`] (row-major, strided or windows), each read where it is.
#[derive(Clone, Copy)]
struct RowStarts<'a> {
    lhs: Lhs<'a>,
    k: usize,
}

impl<'a> RowStarts<'a> {
    /// `lhs`'s rows of `k` floats, if they lie in one slice each.
    fn of(lhs: Lhs<'a>, k: usize) -> Option<Self> {
        matches!(lhs, Lhs::RowMajor(_) | Lhs::Strided { .. } | Lhs::Windows { .. })
            .then_some(RowStarts { lhs, k })
    }

    /// The slice every row lies in.
    #[inline(always)]
    fn data(&self) -> &'a [f32] {
        match self.lhs {
            Lhs::RowMajor(data) | Lhs::Strided { data, .. } | Lhs::Windows { data, .. } => data,
            Lhs::Joined { .. } | Lhs::Transposed { .. } => {
                unreachable!("RowStarts::of takes row-wise layouts")
            }
        }
    }

    /// Where row `i` starts in [`RowStarts::data`] (the product checked that the storage
    /// holds every row it reads).
    #[inline(always)]
    fn start(&self, i: usize) -> usize {
        match self.lhs {
            Lhs::Strided { ld, .. } => i * ld,
            Lhs::Windows { .. } => self.lhs.row_start(i).expect("checked when the product began"),
            _ => i * self.k,
        }
    }

    /// Row `i`.
    #[inline(always)]
    fn row(&self, i: usize) -> &'a [f32] {
        &self.data()[self.start(i)..][..self.k]
    }
}

/// Rows of `A` that [`narrow_product`] runs at once: one accumulator each, enough of them
/// to hide the multiply-add's latency.
const NARROW_ROWS: usize = 8;

/// `C = start + A · B` for a `B` of `n` columns no wider than one vector, in the one packed
/// `panel` (row `p` of `B` at `p · width`), `A` read in place. The register tiles are two
/// vectors wide, so on a Dense layer of 8 outputs with AVX-512 three quarters of their
/// multiply-adds went to padding (gen-stateful's Dense(8) over 256 streams was 11 % of
/// serve-streams for 3 % of its FLOPs, A packed into slivers first): here each row has one
/// accumulator, [`NARROW_ROWS`] rows at a time. Each sum runs over `k` in order and adds
/// `start` last, as the register tiles' sums do.
#[allow(clippy::too_many_arguments)] // the operands and their sizes
#[inline(always)]
fn narrow_product<S: Simd>(
    s: S,
    m: usize,
    a: RowStarts<'_>,
    panel: &[f32],
    width: usize,
    c: &mut [f32],
    n: usize,
    start: Start<'_>,
) {
    let mut i = 0;
    while i + NARROW_ROWS <= m {
        narrow_rows::<S, NARROW_ROWS>(s, a, i, (panel, width), &mut c[i * n..][..NARROW_ROWS * n], start);
        i += NARROW_ROWS;
    }
    while i < m {
        narrow_rows::<S, 1>(s, a, i, (panel, width), &mut c[i * n..][..n], start);
        i += 1;
    }
}

/// Rows `i .. i + R` of [`narrow_product`], into `c` (`R` rows of `n`).
#[inline(always)]
fn narrow_rows<S: Simd, const R: usize>(
    s: S,
    a: RowStarts<'_>,
    i: usize,
    (panel, width): (&[f32], usize),
    c: &mut [f32],
    start: Start<'_>,
) {
    let (k, l) = (a.k, lanes::<S>());
    let rows: [&[f32]; R] = std::array::from_fn(|r| a.row(i + r));
    let mut acc = [s.splat_f32s(0.0); R];
    for p in 0..k {
        let b = load(s, &panel[p * width..][..l]);
        for r in 0..R {
            acc[r] = s.mul_add_f32s(s.splat_f32s(rows[r][p]), b, acc[r]);
        }
    }
    let n = c.len() / R;
    for (dst, acc) in c.chunks_exact_mut(n.max(1)).zip(acc) {
        let sum = match start {
            Start::Zero => acc,
            Start::Current => s.add_f32s(load(s, dst), acc),
            Start::Bias(bias) => s.add_f32s(load(s, &bias[..n]), acc),
        };
        store(s, dst, sum);
    }
}

/// Rewrites rows `i0 .. end`, elements `p0 .. p0 + kc` of the row-major `a` (`lda` columns)
/// as slivers: for each register tile of rows (as [`tile_rows`] groups them), its `kc`
/// columns one after another, each holding the tile's rows side by side. The tile then
/// reads A from one pointer in order, which leaves the registers to the accumulators.
/// `A` transposed is read the same way, each column of a sliver then being a contiguous run
/// of one row of `Aᵀ`.
fn pack_slivers(
    lhs: Lhs<'_>,
    k: usize,
    (i0, end): (usize, usize),
    (p0, kc): (usize, usize),
    tall: usize,
    out: &mut [f32],
) {
    let mut i = i0;
    while i < end {
        let rows = tile_rows(end - i, tall);
        let sliver = &mut out[(i - i0) * kc..][..rows * kc];
        match lhs {
            Lhs::RowMajor(_) | Lhs::Strided { .. } | Lhs::Windows { .. } => {
                let a = RowStarts { lhs, k };
                pack_rows(a.data(), |r| a.start(i + r) + p0, kc, rows, sliver);
            }
            Lhs::Joined { first, ld1, d, second, ld2 } => {
                // The block's columns from `first`, then those from `second`: each part a
                // run of whole columns of the sliver.
                let left = d.saturating_sub(p0).min(kc);
                let (head, tail) = sliver.split_at_mut(left * rows);
                if left > 0 {
                    pack_rows(first, |r| (i + r) * ld1 + p0, left, rows, head);
                }
                if left < kc {
                    let q0 = p0 + left - d;
                    pack_rows(second, |r| (i + r) * ld2 + q0, kc - left, rows, tail);
                }
            }
            Lhs::Transposed { data, ld } => {
                let at = (p0 * ld + i, ld, kc);
                match rows {
                    1 => pack_sliver_transposed::<1>(data, at, sliver),
                    2 => pack_sliver_transposed::<2>(data, at, sliver),
                    3 => pack_sliver_transposed::<3>(data, at, sliver),
                    4 => pack_sliver_transposed::<4>(data, at, sliver),
                    5 => pack_sliver_transposed::<5>(data, at, sliver),
                    MR => pack_sliver_transposed::<MR>(data, at, sliver),
                    _ => pack_sliver_transposed::<MR_WIDE>(data, at, sliver),
                }
            }
        }
        i += rows;
    }
}

/// A sliver of `rows` rows (a tile's height) of `kc` floats each, row `r` at `a[start(r)..]`.
#[inline(always)]
fn pack_rows(a: &[f32], start: impl Fn(usize) -> usize, kc: usize, rows: usize, sliver: &mut [f32]) {
    match rows {
        1 => sliver[..kc].copy_from_slice(&a[start(0)..][..kc]),
        2 => pack_sliver::<2>(a, start, kc, sliver),
        3 => pack_sliver::<3>(a, start, kc, sliver),
        4 => pack_sliver::<4>(a, start, kc, sliver),
        5 => pack_sliver::<5>(a, start, kc, sliver),
        MR => pack_sliver::<MR>(a, start, kc, sliver),
        _ => pack_sliver::<MR_WIDE>(a, start, kc, sliver),
    }
}

/// One sliver of `R` rows of `A` from `Aᵀ`: `kc` runs of `R` floats, `ld` apart from
/// `start`, one after another.
#[inline(always)]
fn pack_sliver_transposed<const R: usize>(
    at: &[f32],
    (start, ld, kc): (usize, usize, usize),
    sliver: &mut [f32],
) {
    let (columns, _) = sliver.as_chunks_mut::<R>();
    for (p, column) in columns.iter_mut().enumerate().take(kc) {
        let run: &[f32; R] = at[start + p * ld..][..R].try_into().expect("a run of R floats");
        *column = *run;
    }
}

/// One sliver of `R` rows: the `kc` elements of row `r` from `start(r)`, written column
/// after column (a transpose of `R × kc`; with `R` a constant the loop has no strided
/// iterator and no bounds check inside, which made the packing a tenth of a small recurrent
/// product).
#[inline(always)]
fn pack_sliver<const R: usize>(a: &[f32], start: impl Fn(usize) -> usize, kc: usize, sliver: &mut [f32]) {
    let rows: [&[f32]; R] = std::array::from_fn(|r| &a[start(r)..][..kc]);
    let (columns, _) = sliver.as_chunks_mut::<R>();
    for (p, column) in columns.iter_mut().enumerate().take(kc) {
        for r in 0..R {
            column[r] = rows[r][p];
        }
    }
}

/// Packs rows `p0 .. p0 + kc` and columns `c0 .. c0 + nc` of the row-major `b` (`n`
/// columns) into `buf` (at least that long) as panels of two vectors' width, `kc · width` floats each. The padding
/// columns of a last, partial panel keep whatever they held: the kernel computes them but
/// never stores them.
#[inline(always)]
fn pack_block<S: Simd>(
    _: S,
    b: &[f32],
    n: usize,
    (p0, kc): (usize, usize),
    (c0, nc): (usize, usize),
    buf: &mut [f32],
) {
    let width = 2 * lanes::<S>();
    // Row by row of B, each read front to back (a walk down one panel's columns at a time
    // touched a new page at every row of a wide matrix), its slices going to the panels.
    let (whole, ragged) = (nc / width, nc % width);
    for p in 0..kc {
        let src = &b[(p0 + p) * n + c0..][..nc];
        let (chunks, _) = src.as_chunks::<32>();
        if width == 32 {
            for (j, chunk) in chunks.iter().enumerate().take(whole) {
                // Two whole vectors: register moves, not a call to memcpy.
                let dst: &mut [f32; 32] =
                    (&mut buf[(j * kc + p) * 32..][..32]).try_into().expect("32 floats");
                *dst = *chunk;
            }
        } else {
            for j in 0..whole {
                buf[(j * kc + p) * width..][..width].copy_from_slice(&src[j * width..][..width]);
            }
        }
        if ragged > 0 {
            buf[(whole * kc + p) * width..][..ragged].copy_from_slice(&src[whole * width..]);
        }
    }
}

/// [`pack_block`] from `Bᵀ` (`n × k` row-major, `k` floats a row): each column of a panel is
/// a run of one row of `Bᵀ`, read front to back and written down the panel.
#[inline(always)]
fn pack_block_transposed<S: Simd>(
    _: S,
    b_t: &[f32],
    k: usize,
    (p0, kc): (usize, usize),
    (c0, nc): (usize, usize),
    buf: &mut [f32],
) {
    let width = 2 * lanes::<S>();
    if kc == 0 {
        return;
    }
    for (j, panel) in buf.chunks_exact_mut(kc * width).take(nc.div_ceil(width)).enumerate() {
        let cols = width.min(nc - j * width);
        // Blocks of 8 elements of `k` from each of the panel's rows of `Bᵀ`: the reads stay
        // on one cache line per row and the writes fill 8 rows of the panel.
        for q0 in (0..kc).step_by(8) {
            let q = 8.min(kc - q0);
            for c in 0..cols {
                let src = &b_t[(c0 + j * width + c) * k + p0 + q0..][..q];
                for (row, v) in panel[q0 * width..].chunks_exact_mut(width).zip(src) {
                    row[c] = *v;
                }
            }
        }
    }
}

/// One register tile's operands: rows `row .. row + R` of `A` and `C`, columns
/// `col .. col + cols` of `C`, elements `p0 .. p0 + kc` of `k`.
struct Tile<'a, 'c> {
    /// The tile's sliver of A (see [`pack_slivers`]): `kc` columns of its rows.
    sliver: &'a [f32],
    kc: usize,
    panel: &'a [f32],
    c: &'c mut [f32],
    ldc: usize,
    row: usize,
    col: usize,
    cols: usize,
    start: Start<'a>,
}

/// Stores row `r` of a register tile (its two accumulators) into `C`, from `t.start`.
#[inline(always)]
fn store_row<S: Simd>(s: S, t: &mut Tile<'_, '_>, r: usize, acc: [S::f32s; 2]) {
    let l = lanes::<S>();
    let start = (t.row + r) * t.ldc + t.col;
    let out = &mut t.c[start..start + t.cols];
    for (v, acc) in acc.into_iter().enumerate() {
        let lo = v * l;
        if lo >= t.cols {
            break;
        }
        let dst = &mut out[lo..t.cols.min(lo + l)];
        let sum = match t.start {
            Start::Zero => acc,
            Start::Current => s.add_f32s(load(s, dst), acc),
            Start::Bias(bias) => s.add_f32s(load(s, &bias[t.col + lo..t.col + lo + dst.len()]), acc),
        };
        store(s, dst, sum);
    }
}

/// The register tiles, one function per row count: `R` rows × one panel, returning `R`.
/// Each names its rows as literals, so that every accumulator is indexed by a constant
/// and stays in a register (a loop over rows left the compiler storing the accumulators
/// to the stack at every element of `k` once it had more than a few).
macro_rules! tiles {
    ($($name:ident => [$($r:literal),+];)+) => {$(
        #[inline(always)]
        fn $name<S: Simd>(s: S, mut t: Tile<'_, '_>) -> usize {
            const R: usize = [$($r),+].len();
            let l = lanes::<S>();
            let (columns, _) = t.sliver[..t.kc * R].as_chunks::<R>();
            let (panel, _) = S::as_simd_f32s(&t.panel[..t.kc * 2 * l]);
            let zero = s.splat_f32s(0.0);
            let mut acc = [[zero; 2]; R];
            for (b, column) in panel.chunks_exact(2).zip(columns) {
                let (b0, b1) = (b[0], b[1]);
                $(
                    let x = s.splat_f32s(column[$r]);
                    acc[$r][0] = s.mul_add_f32s(x, b0, acc[$r][0]);
                    acc[$r][1] = s.mul_add_f32s(x, b1, acc[$r][1]);
                )+
            }
            $( store_row(s, &mut t, $r, acc[$r]); )+
            R
        }
    )+};
}

tiles! {
    tile1 => [0];
    tile2 => [0, 1];
    tile3 => [0, 1, 2];
    tile4 => [0, 1, 2, 3];
    tile5 => [0, 1, 2, 3, 4];
    tile6 => [0, 1, 2, 3, 4, 5];
    tile12 => [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::matmul_reference;
    use proptest::prelude::*;

    /// Runs the packed product on every instruction set of this machine (and pulp's scalar
    /// fallback), returning each result by name.
    fn on_every_isa(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        b: &[f32],
        c0: &[f32],
        acc: bool,
    ) -> Vec<(&'static str, Vec<f32>)> {
        let mut runs = Vec::new();
        let mut packed = PackedB::default();
        let mut a_t = vec![f32::NAN; k * (m + 3)];
        // A with rows 5 floats longer than k (NaN between them, which must never be read).
        let mut a_wide = vec![f32::NAN; m * (k + 5)];
        // A as windows: runs of 4 rows `k + 2` apart, runs `4 (k + 2) + 7` apart, from the
        // layout's second row (the gaps hold NaN, which would show in any result read).
        let windows = |data| Lhs::Windows { data, ld: k + 2, per: 4, run_ld: 4 * (k + 2) + 7, skip: 1 };
        let mut a_windows = vec![f32::NAN; (m / 4 + 2) * (4 * (k + 2) + 7)];
        // A as two row-major parts side by side, the first `d` columns and the rest, each
        // with rows 3 floats longer than its part (NaN between them).
        let d = k * 2 / 3;
        let (ld1, ld2) = (d + 3, k - d + 3);
        let (mut a_first, mut a_second) = (vec![f32::NAN; m * ld1], vec![f32::NAN; m * ld2]);
        for i in 0..m {
            a_first[i * ld1..][..d].copy_from_slice(&a[i * k..][..d]);
            a_second[i * ld2..][..k - d].copy_from_slice(&a[i * k + d..][..k - d]);
        }
        // B transposed (n × k), written from its definition.
        let b_t: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        for i in 0..m {
            let at = (i + 1) / 4 * (4 * (k + 2) + 7) + (i + 1) % 4 * (k + 2);
            for p in 0..k {
                a_t[p * (m + 3) + i] = a[i * k + p];
                a_wide[i * (k + 5) + p] = a[i * k + p];
                a_windows[at + p] = a[i * k + p];
            }
        }
        macro_rules! run {
            ($name:literal, $simd:expr) => {{
                let s = $simd;
                packed.pack_for(s, k, n, b);
                let mut c = c0.to_vec();
                matmul_packed_with(s, m, a, &packed, &mut c, Start::accumulate(acc));
                runs.push(($name, c));
                let mut c = c0.to_vec();
                matmul_row_major_with(s, m, k, n, a, RhsData::RowMajor(b), &mut c, acc);
                runs.push((concat!($name, " row-major"), c));
                // B read through its transpose, packed per block and whole.
                let mut c = c0.to_vec();
                matmul_row_major_with(s, m, k, n, a, RhsData::Transposed(&b_t), &mut c, acc);
                runs.push((concat!($name, " B transposed"), c));
                let mut whole = PackedB::default();
                Simd::vectorize(s, Pack { packed: &mut whole, k, n, b: RhsData::Transposed(&b_t) });
                let mut c = c0.to_vec();
                matmul_packed_with(s, m, a, &whole, &mut c, Start::accumulate(acc));
                runs.push((concat!($name, " B transposed, packed whole"), c));
                // A read through its transpose, stored with a wider stride than its rows.
                let mut c = c0.to_vec();
                let a_t = Lhs::Transposed { data: &a_t, ld: m + 3 };
                Simd::vectorize(
                    s,
                    Product::new(m, a_t, Rhs::Packed(&packed), &mut c, Start::accumulate(acc)),
                );
                runs.push((concat!($name, " transposed"), c));
                let mut c = c0.to_vec();
                let a_rows = Lhs::Strided { data: &a_wide, ld: k + 5 };
                Simd::vectorize(
                    s,
                    Product::new(m, a_rows, Rhs::Packed(&packed), &mut c, Start::accumulate(acc)),
                );
                runs.push((concat!($name, " strided"), c));
                let mut c = c0.to_vec();
                Simd::vectorize(
                    s,
                    Product::new(
                        m,
                        windows(&a_windows),
                        Rhs::Packed(&packed),
                        &mut c,
                        Start::accumulate(acc),
                    ),
                );
                runs.push((concat!($name, " windows"), c));
                let mut c = c0.to_vec();
                let joined = Lhs::Joined { first: &a_first, ld1, d, second: &a_second, ld2 };
                Simd::vectorize(
                    s,
                    Product::new(m, joined, Rhs::Packed(&packed), &mut c, Start::accumulate(acc)),
                );
                runs.push((concat!($name, " joined"), c));
            }};
        }
        run!("scalar", pulp::Scalar::new());
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(v3) = pulp::x86::V3::try_new() {
                run!("avx2", v3);
            }
            if let Some(v4) = pulp::x86::V4::try_new() {
                run!("avx512", v4);
            }
        }
        packed.pack(k, n, b);
        let mut c = c0.to_vec();
        matmul_packed(m, a, &packed, &mut c, Start::accumulate(acc));
        runs.push(("dispatch", c));
        let mut c = c0.to_vec();
        matmul_row_major(m, k, n, a, b, &mut c, acc);
        runs.push(("dispatch row-major", c));
        runs
    }

    #[test]
    fn blocks_of_rows_and_depth_and_ragged_panels_match_the_naive_loop() {
        // More rows than one block, deeper than one block of k, a partial last panel; then
        // more columns than one block of B on every instruction set; then B narrower than a
        // vector (one column, five), deeper than a block of k (`narrow_product`).
        let deep = PANEL_BLOCK / panel_width() + 3;
        for (m, k, n) in [
            (MC + MR_WIDE + MR + 1, deep, 37),
            (MR + 1, 3, 16_384 + 37),
            (2 * NARROW_ROWS + 3, deep, 5),
            (NARROW_ROWS + 1, deep, 1),
        ] {
            check_blocks(m, k, n);
        }
    }

    fn check_blocks(m: usize, k: usize, n: usize) {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 / 11.0 - 0.5).collect();
        let c0: Vec<f32> = (0..m * n).map(|i| ((i * 3) % 7) as f32 / 7.0).collect();
        for acc in [false, true] {
            let mut want = c0.clone();
            matmul_reference(m, k, n, &a, &b, &mut want, acc);
            for (isa, got) in on_every_isa(m, k, n, &a, &b, &c0, acc) {
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-4, "{isa}, accumulate {acc}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn a_large_matrix_packed_on_two_threads_multiplies_as_the_naive_loop() {
        // Over `PARALLEL_MIN_PACKED` floats and a ragged last panel, from row-major and
        // transposed data.
        let (m, k, n) = (3, 64, 16_411);
        assert!(k * n >= PARALLEL_MIN_PACKED);
        let (a, b, c0) = super::super::matmul::random_operands(m, k, n, 11);
        let b_t: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut want = c0.clone();
        matmul_reference(m, k, n, &a, &b, &mut want, true);
        crate::set_num_threads(2);
        for data in [RhsData::RowMajor(&b), RhsData::Transposed(&b_t)] {
            let mut packed = PackedB::default();
            packed.pack_from(k, n, data);
            let mut got = c0.clone();
            matmul_packed(m, &a, &packed, &mut got, Start::accumulate(true));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * (1.0 + k as f32), "{g} vs {w}");
            }
        }
        crate::set_num_threads(0);
    }

    #[test]
    fn repacking_a_smaller_matrix_reuses_the_buffer() {
        let mut packed = PackedB::default();
        packed.pack(8, 40, &[f32::NAN; 320]);
        let capacity = packed.data.capacity();
        packed.pack(3, 5, &[2.0; 15]);
        assert_eq!(packed.data.capacity(), capacity);
        // Nothing of the old matrix is left: the padding columns of the panel are zeros.
        let data = packed.data.as_slice();
        assert_eq!(data.len(), 3 * panel_width());
        for row in data.chunks(panel_width()) {
            assert_eq!(row[..5], [2.0; 5]);
            assert!(row[5..].iter().all(|v| *v == 0.0), "{row:?}");
        }
        let mut c = [0.0; 5];
        matmul_packed(1, &[1.0, 1.0, 1.0], &packed, &mut c, Start::Zero);
        assert_eq!(c, [6.0; 5]);
    }

    proptest! {
        #[test]
        fn packed_products_match_the_naive_loop_on_every_isa(
            m in 0usize..30, k in 0usize..48, n in 0usize..70, acc: bool, seed in 0u64..1000,
        ) {
            let (a, b, c0) = super::super::matmul::random_operands(m, k, n, seed);
            let mut want = c0.clone();
            matmul_reference(m, k, n, &a, &b, &mut want, acc);
            for (isa, got) in on_every_isa(m, k, n, &a, &b, &c0, acc) {
                for (g, w) in got.iter().zip(&want) {
                    prop_assert!((g - w).abs() <= 1e-5 * (1.0 + k as f32), "{isa}: {g} vs {w}");
                }
            }
            // A bias row: the same as accumulating onto rows filled with it.
            let bias: Vec<f32> = (0..n).map(|j| c0.get(j).copied().unwrap_or(0.25) - 0.125).collect();
            let mut want: Vec<f32> = (0..m * n).map(|i| bias[i % n.max(1)]).collect();
            matmul_reference(m, k, n, &a, &b, &mut want, true);
            let mut packed = PackedB::default();
            packed.pack(k, n, &b);
            let mut got = c0.clone();
            matmul_packed(m, &a, &packed, &mut got, Start::Bias(&bias));
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((g - w).abs() <= 1e-5 * (1.0 + k as f32), "bias: {g} vs {w}");
            }
        }
    }
}
