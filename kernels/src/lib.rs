//! seqmodel's SIMD kernels on `pulp` (runtime dispatch: AVX-512, AVX2+FMA, NEON, scalar) over
//! plain slices: `exp`, `sigmoid`, `tanh`, softmax, the vector-matrix product of batch-1
//! steps and the fused LSTM and GRU gate updates. `#![no_std]` and allocation-free, so that
//! they run where there is no heap (`seqmodel-runtime` re-exports them as `kernels::simd`).
//! Every kernel is generic over [`pulp::Simd`], so the tests run it on each instruction set
//! the machine has (and on pulp's scalar fallback) against scalar f64 references.

#![no_std]
#[cfg(test)]
extern crate std;

pub use pulp;
use pulp::{Simd, WithSimd};

pub mod step;

// ln 2 split in two for an exact range reduction (Cephes's `expf`), then `expm1(r) = r + r²·P(r)`
// on [-ln2/2, ln2/2] with `P` of degree 4: a relative-error fit whose own error (3e-9) lies far
// below `f32`'s rounding, one multiply-add fewer than Cephes's degree 5 (see `exp_reduced`).
const LOG2E: f32 = core::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const EXP_P: [f32; 5] = [1.381_452e-3, 8.368_711e-3, 4.166_839e-2, 0.166_665_2, 0.499_999_94];
/// Adding 1.5·2^23 rounds a float to the nearest integer and leaves it in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2`: the integer `n` (in the low bits of the first
/// result, offset by [`ROUND_MAGIC`]'s) and `expm1(r) = r + r²·P(r)` (`EXP_P`),
/// which [`exp`] and [`tanh`] scale by `2ⁿ`. `x` must lie in [-87, 88].
#[inline(always)]
fn exp_reduced<S: Simd>(s: S, x: S::f32s) -> (S::i32s, S::f32s) {
    let magic = s.splat_f32s(ROUND_MAGIC);
    let shifted = s.mul_add_f32s(x, s.splat_f32s(LOG2E), magic);
    let n = s.sub_f32s(shifted, magic);
    let r = s.mul_add_f32s(n, s.splat_f32s(-LN2_HI), x);
    let r = s.mul_add_f32s(n, s.splat_f32s(-LN2_LO), r);
    let mut p = s.splat_f32s(EXP_P[0]);
    for c in &EXP_P[1..] {
        p = s.mul_add_f32s(p, r, s.splat_f32s(*c));
    }
    let r2 = s.mul_f32s(r, r);
    let n_int = s.sub_i32s(s.transmute_i32s_f32s(shifted), s.splat_i32s(ROUND_MAGIC.to_bits() as i32));
    (n_int, s.mul_add_f32s(p, r2, r))
}

/// `exp(x)` per lane, |relative error| < 2e-7 on [-87, 88]; inputs are clamped to that range.
#[inline(always)]
pub fn exp<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let x = s.min_f32s(s.max_f32s(x, s.splat_f32s(-87.0)), s.splat_f32s(88.0));
    let (n_int, expm1_r) = exp_reduced(s, x);
    let p = s.add_f32s(expm1_r, s.splat_f32s(1.0));
    // p · 2^n, n added to p's exponent bits, an integer addition where a multiplication by
    // 2^n took a slot of the multiply-add units the rest of the function is bound by. The
    // same number: p is in [0.7, 1.42] and n in [-126, 127] after the clamp, so the result
    // is normal and the scaling exact either way.
    let bits = s.add_i32s(s.transmute_i32s_f32s(p), s.mul_i32s(n_int, s.splat_i32s(1 << 23)));
    s.transmute_f32s_i32s(bits)
}

/// `1 / (1 + exp(-x))` per lane.
#[inline(always)]
pub fn sigmoid<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let one = s.splat_f32s(1.0);
    s.div_f32s(one, s.add_f32s(one, exp(s, s.neg_f32s(x))))
}

/// `tanh(x)` per lane, as `e / (e + 2)` with `e = expm1(2|x|)` and the sign of `x`: no
/// cancellation near 0 (`e` is computed as `2ⁿ·expm1(r) + (2ⁿ - 1)`, which is `expm1(r)`
/// itself for `n = 0`), so the error is a few units in the last place over the whole range,
/// with one exponential's work. Cephes's odd polynomial below 0.625 beside
/// `1 - 2/(exp(2|x|)+1)` above computed both for every lane, and was a fifth of an LSTM
/// cell's arithmetic. `|x|` is clamped to 10, where `tanh` is 1 in `f32` already.
#[inline(always)]
pub fn tanh<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let ax = s.abs_f32s(x);
    let y = s.min_f32s(s.splat_f32s(20.0), s.add_f32s(ax, ax));
    let (n_int, expm1_r) = exp_reduced(s, y);
    // 2^n for n in [0, 29], built from its exponent bits.
    let scale = s.transmute_f32s_i32s(
        s.add_i32s(s.mul_i32s(n_int, s.splat_i32s(1 << 23)), s.splat_i32s(1.0f32.to_bits() as i32)),
    );
    let e = s.mul_add_f32s(scale, expm1_r, s.sub_f32s(scale, s.splat_f32s(1.0)));
    let abs = s.div_f32s(e, s.add_f32s(e, s.splat_f32s(2.0)));
    // Copy the sign of x onto |tanh|.
    s.or_f32s(abs, s.and_f32s(x, s.splat_f32s(-0.0)))
}

/// `f32` lanes per vector of the instruction set `S`.
pub fn lanes<S: Simd>() -> usize {
    core::mem::size_of::<S::f32s>() / core::mem::size_of::<f32>()
}

/// Which element-wise function [`map_in_place`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unary {
    /// `exp`.
    Exp,
    /// `sigmoid`.
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `max(x, 0)`.
    Relu,
}

struct MapInPlace<'a> {
    f: Unary,
    data: &'a mut [f32],
}

impl WithSimd for MapInPlace<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> Self::Output {
        // One loop per function, each calling the kernel directly: passing the kernel as a
        // closure or fn item would compile it outside the target-feature context and turn
        // every intrinsic into a call.
        macro_rules! map_slice {
            ($f:expr) => {{
                let (head, tail) = S::as_mut_simd_f32s(self.data);
                for v in head {
                    *v = $f(s, *v);
                }
                if !tail.is_empty() {
                    let v = $f(s, s.partial_load_f32s(tail));
                    s.partial_store_f32s(tail, v);
                }
            }};
        }
        match self.f {
            Unary::Exp => map_slice!(exp),
            Unary::Sigmoid => map_slice!(sigmoid),
            Unary::Tanh => map_slice!(tanh),
            Unary::Relu => map_slice!(relu),
        }
    }
}

#[inline(always)]
fn relu<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    s.max_f32s(x, s.splat_f32s(0.0))
}

/// `y (+)= x · B` for a vector `x` `[k]` and a row-major `B` `[k, n]` (one row of a matrix
/// product: a batch-1 recurrent step). Columns go in blocks of eight vectors, each block
/// accumulated over all of `k` in registers, so `B` is read once, row segment by row segment.
/// With 32 registers (AVX-512) a block's rows go in three chunks, each summed in its own
/// registers and the three sums added in one fixed order, so that `backwards` can take the
/// chunks last to first with the same bits: a recurrence that turns at every step then
/// starts each step on the rows the last step read most recently, still in the L1 cache.
pub struct Gemv<'a> {
    /// `[k]`.
    pub x: &'a [f32],
    /// `[k, n]`, row-major.
    pub b: &'a [f32],
    /// `[n]`.
    pub y: &'a mut [f32],
    /// Add to `y` instead of overwriting it.
    pub accumulate: bool,
    /// Take the row chunks of each block last to first (the same numbers).
    pub backwards: bool,
}

/// `acc += x · B[p0 .. p0 + x.len(), c .. c + GEMV_BLOCK vectors]` (`B` row-major, `n` columns).
#[inline(always)]
fn gemv_rows<S: Simd>(
    s: S,
    x: &[f32],
    (b, n): (&[f32], usize),
    (p0, c): (usize, usize),
    acc: &mut [S::f32s; GEMV_BLOCK],
) {
    let l = lanes::<S>();
    for (i, xv) in x.iter().enumerate() {
        let at = (p0 + i) * n + c;
        let xv = s.splat_f32s(*xv);
        // Exactly GEMV_BLOCK whole vectors: no tail, no per-load checks.
        let (row, _) = S::as_simd_f32s(&b[at..at + GEMV_BLOCK * l]);
        for (a, v) in acc.iter_mut().zip(row) {
            *a = s.mul_add_f32s(xv, *v, *a);
        }
    }
}

/// `x · B` over columns `c ..` (one block of [`GEMV_BLOCK`] vectors) of [`Gemv`], its rows in
/// three chunks with 32 vector registers (taken last to first when `backwards`), else whole.
#[inline(always)]
fn gemv_block<S: Simd>(
    s: S,
    x: &[f32],
    b: (&[f32], usize),
    c: usize,
    backwards: bool,
) -> [S::f32s; GEMV_BLOCK] {
    let zero = s.splat_f32s(0.0);
    let mut a0 = [zero; GEMV_BLOCK];
    if lanes::<S>() < 16 {
        gemv_rows(s, x, b, (0, c), &mut a0);
        return a0;
    }
    let (mut a1, mut a2) = ([zero; GEMV_BLOCK], [zero; GEMV_BLOCK]);
    let k = x.len();
    let (third, two_thirds) = (k / 3, 2 * k / 3);
    let (x0, rest) = x.split_at(third);
    let (x1, x2) = rest.split_at(two_thirds - third);
    if backwards {
        gemv_rows(s, x2, b, (two_thirds, c), &mut a2);
        gemv_rows(s, x1, b, (third, c), &mut a1);
        gemv_rows(s, x0, b, (0, c), &mut a0);
    } else {
        gemv_rows(s, x0, b, (0, c), &mut a0);
        gemv_rows(s, x1, b, (third, c), &mut a1);
        gemv_rows(s, x2, b, (two_thirds, c), &mut a2);
    }
    for ((a0, a1), a2) in a0.iter_mut().zip(a1).zip(a2) {
        *a0 = s.add_f32s(s.add_f32s(*a0, a1), a2);
    }
    a0
}

impl WithSimd for Gemv<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> Self::Output {
        const BLOCK: usize = GEMV_BLOCK;
        let Gemv { x, b, y, accumulate, backwards } = self;
        let n = y.len();
        let l = lanes::<S>();
        let zero = s.splat_f32s(0.0);
        let mut c = 0;
        // Full blocks of BLOCK vectors.
        while c + BLOCK * l <= n {
            let sums = gemv_block(s, x, (b, n), c, backwards);
            for (j, sum) in sums.into_iter().enumerate() {
                let dst = &mut y[c + j * l..c + (j + 1) * l];
                let v = if accumulate { s.add_f32s(load(s, dst), sum) } else { sum };
                store(s, dst, v);
            }
            c += BLOCK * l;
        }
        // The rest, one vector (or a partial one) at a time, its rows in fours into four
        // sums added at the end: one sum was a chain of `k` dependent multiply-adds (the
        // Dense(8) after gen-stateful's LSTM(64): 64 of them, about a tenth of its step).
        while c < n {
            let end = c + (n - c).min(l);
            // A partial vector is read as a whole one where the matrix goes on past it: each
            // lane's sum is its own, so the lanes past `end` are computed and dropped, and only
            // the last rows need a (slow) partial load. `whole` rows are read whole.
            let whole = b.len().checked_sub(c + l).map_or(0, |room| (room / n + 1).min(x.len()));
            let (quads, _) = x.get(..whole).unwrap_or_default().as_chunks::<4>();
            let mut acc = [zero; 4];
            for (q, xs) in quads.iter().enumerate() {
                for (j, (a, xv)) in acc.iter_mut().zip(xs).enumerate() {
                    let at = (4 * q + j) * n + c;
                    if let Some(row) = b.get(at..at + l) {
                        *a = s.mul_add_f32s(s.splat_f32s(*xv), load(s, row), *a);
                    }
                }
            }
            for (p, xv) in x.iter().enumerate().skip(4 * quads.len()) {
                let at = p * n + c;
                let v = match b.get(at..at + l) {
                    Some(row) => load(s, row),
                    None => load(s, b.get(at..at + (end - c)).unwrap_or_default()),
                };
                acc[0] = s.mul_add_f32s(s.splat_f32s(*xv), v, acc[0]);
            }
            let sum = s.add_f32s(s.add_f32s(acc[0], acc[1]), s.add_f32s(acc[2], acc[3]));
            let a = if accumulate { s.add_f32s(load(s, &y[c..end]), sum) } else { sum };
            store(s, &mut y[c..end], a);
            c = end;
        }
    }
}

/// [`Gemv`] over a matrix stored in column blocks of [`gemv_width`] columns (the last one
/// narrower), each block `k × width` row-major, one after another; one dispatch for all.
pub struct GemvBlocks<'a> {
    /// `[k]`.
    pub x: &'a [f32],
    /// The blocks.
    pub blocks: &'a [f32],
    /// `[n]`.
    pub y: &'a mut [f32],
    /// The block width the matrix was stored with.
    pub width: usize,
    /// Add to `y` instead of overwriting it.
    pub accumulate: bool,
    /// Take the blocks, and each block's row chunks ([`Gemv`]), last to first (each output's
    /// sum is the same either way).
    pub backwards: bool,
}

impl WithSimd for GemvBlocks<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> Self::Output {
        let GemvBlocks { x, blocks, y, width, accumulate, backwards } = self;
        let (k, n, width) = (x.len(), y.len(), width.max(1));
        let count = n.div_ceil(width);
        // Plain loops, no closures: a closure would not inherit this function's target
        // features, and the kernel inlined into it would run without them.
        for step in 0..count {
            let i = if backwards { count - 1 - step } else { step };
            // Every block but the last is `width` columns wide: block `i` starts at `i·k·width`.
            let y = &mut y[i * width..((i + 1) * width).min(n)];
            let b = &blocks[i * k * width..][..k * y.len()];
            Gemv { x, b, y, accumulate, backwards }.with_simd(s);
        }
    }
}

/// Columns that [`Gemv`] takes at once on this CPU (its block of vectors): a matrix stored in
/// column blocks of this width is read front to back.
pub fn gemv_width() -> usize {
    GEMV_BLOCK * dispatched_lanes()
}

/// `f32` lanes per vector of the instruction set that run-time dispatch picks on this CPU.
pub fn dispatched_lanes() -> usize {
    struct Lanes;
    impl WithSimd for Lanes {
        type Output = usize;
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) -> usize {
            lanes::<S>()
        }
    }
    pulp::Arch::new().dispatch(Lanes)
}

/// Vectors per block of [`Gemv`].
const GEMV_BLOCK: usize = 8;

/// [`Gemv`] on the best instruction set of this CPU.
pub fn gemv(x: &[f32], b: &[f32], y: &mut [f32], accumulate: bool) {
    pulp::Arch::new().dispatch(Gemv { x, b, y, accumulate, backwards: false });
}

struct SoftmaxRows<'a> {
    data: &'a mut [f32],
    width: usize,
}

impl WithSimd for SoftmaxRows<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> Self::Output {
        for row in self.data.chunks_mut(self.width) {
            let (head, tail) = S::as_mut_simd_f32s(row);
            let mut m = s.splat_f32s(f32::NEG_INFINITY);
            for v in head.iter() {
                m = s.max_f32s(m, *v);
            }
            let mut max = s.reduce_max_f32s(m);
            for v in tail.iter() {
                max = max.max(*v);
            }
            let shift = s.splat_f32s(max);
            // Two vectors at a time, a sum each: two independent exponentials in flight (one
            // at a time, with one running sum, 512 rows of 10,000 took 7.0 ms; two, 3.3 ms).
            let (mut sum, mut sum2) = (s.splat_f32s(0.0), s.splat_f32s(0.0));
            let mut pairs = head.chunks_exact_mut(2);
            for pair in &mut pairs {
                let (a, b) = (exp(s, s.sub_f32s(pair[0], shift)), exp(s, s.sub_f32s(pair[1], shift)));
                pair[0] = a;
                pair[1] = b;
                sum = s.add_f32s(sum, a);
                sum2 = s.add_f32s(sum2, b);
            }
            for v in pairs.into_remainder() {
                *v = exp(s, s.sub_f32s(*v, shift));
                sum = s.add_f32s(sum, *v);
            }
            let mut total = s.reduce_sum_f32s(s.add_f32s(sum, sum2));
            if !tail.is_empty() {
                let e = exp(s, s.sub_f32s(s.partial_load_f32s(tail), shift));
                s.partial_store_f32s(tail, e);
                total += tail.iter().sum::<f32>();
            }
            let scale = s.splat_f32s(1.0 / total);
            for v in head.iter_mut() {
                *v = s.mul_f32s(*v, scale);
            }
            for v in tail.iter_mut() {
                *v /= total;
            }
        }
    }
}

/// Softmax of each `width`-long row of `data`, in place (max-shifted, as Keras computes it).
pub fn softmax_rows(data: &mut [f32], width: usize) {
    if width > 0 {
        pulp::Arch::new().dispatch(SoftmaxRows { data, width });
    }
}

/// [`softmax_rows`] with a given instruction set (for tests).
pub fn softmax_rows_with<S: Simd>(s: S, data: &mut [f32], width: usize) {
    if width > 0 {
        s.vectorize(SoftmaxRows { data, width });
    }
}

/// Loads `v` (at most one vector long) into a vector, zero-filled past its end.
#[inline(always)]
pub fn load<S: Simd>(s: S, v: &[f32]) -> S::f32s {
    match S::as_simd_f32s(v) {
        ([x], []) => *x,
        _ => s.partial_load_f32s(v),
    }
}

/// Stores the first `v.len()` lanes of `x` into `v` (at most one vector long).
#[inline(always)]
pub fn store<S: Simd>(s: S, v: &mut [f32], x: S::f32s) {
    match S::as_mut_simd_f32s(v) {
        ([y], []) => *y = x,
        _ => s.partial_store_f32s(v, x),
    }
}

/// Applies `f` to every element, on the best instruction set of this CPU.
pub fn map_in_place(f: Unary, data: &mut [f32]) {
    pulp::Arch::new().dispatch(MapInPlace { f, data });
}

/// Applies `f` with a given instruction set (for tests and forced paths).
pub fn map_in_place_with<S: Simd>(s: S, f: Unary, data: &mut [f32]) {
    s.vectorize(MapInPlace { f, data });
}

/// One LSTM step for one row with Keras's default activations (sigmoid gates, tanh):
/// `z = xp + rec` in blocks i, f, c, o of width `u`; writes `c_new` and `h_new`.
pub struct LstmCell<'a> {
    /// Input projection of this step (with bias), `4u`.
    pub xp: &'a [f32],
    /// Recurrent projection `h · R`, `4u`.
    pub rec: &'a [f32],
    /// Previous cell state, `u`.
    pub c_prev: &'a [f32],
    /// New cell state, `u`.
    pub c_new: &'a mut [f32],
    /// New hidden state, `u`.
    pub h_new: &'a mut [f32],
}

impl WithSimd for LstmCell<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> Self::Output {
        lstm_row::<S, false>(s, self.xp, self.rec, self.c_prev, self.c_new, self.h_new, None);
        lstm_hidden(s, self.h_new, self.c_new);
    }
}

/// Where a training step's LSTM cell also writes its activated gates `[4u]` (i, f, c, o)
/// and `tanh(c_new)` `[u]`, which the backward pass reads instead of recomputing them.
pub type LstmRecord<'a> = Option<(&'a mut [f32], &'a mut [f32])>;

/// The whole vectors of gate block `g` (of width `u`) of `v`: its first `whole` floats.
#[inline(always)]
fn gate<S: Simd>(v: &[f32], g: usize, u: usize, whole: usize) -> &[S::f32s] {
    S::as_simd_f32s(&v[g * u..g * u + whole]).0
}

/// The sum of `x` and `r` over the units `j..u` (fewer than a vector) of gate block `g`.
/// A function, not a closure: a closure may stay a call, compiled without the instruction
/// set and with the bounds checks that inlining into a fixed-size step removes.
#[inline(always)]
fn partial_gate_sum<S: Simd>(s: S, x: &[f32], r: &[f32], g: usize, u: usize, j: usize) -> S::f32s {
    s.add_f32s(load(s, &x[g * u + j..g * u + u]), load(s, &r[g * u + j..g * u + u]))
}

/// The LSTM cell's gates on one vector of units: from the pre-activations `z` of gates i, f,
/// c, o and the previous cell state, the activated gates and the new cell state. The new
/// hidden state `o · tanh(c)` comes after (see [`lstm_row`]). (Dividing once for each
/// sigmoid-times-`tanh` product, three divisions where there are five, measured no faster.)
#[inline(always)]
fn lstm_vec<S: Simd>(s: S, z: [S::f32s; 4], c_prev: S::f32s) -> ([S::f32s; 4], S::f32s) {
    let (i, f, g, o) = (sigmoid(s, z[0]), sigmoid(s, z[1]), tanh(s, z[2]), sigmoid(s, z[3]));
    ([i, f, g, o], s.mul_add_f32s(f, c_prev, s.mul_f32s(i, g)))
}

/// `h = h · tanh(c)` over whole rows of states, where [`lstm_row`] without `RECORD` left the
/// output gate in `h`: the second pass of the LSTM cell.
#[inline(always)]
fn lstm_hidden<S: Simd>(s: S, h: &mut [f32], c: &[f32]) {
    let (hv, h_tail) = S::as_mut_simd_f32s(h);
    let (cv, c_tail) = S::as_simd_f32s(c);
    for (h, c) in hv.iter_mut().zip(cv) {
        *h = s.mul_f32s(*h, tanh(s, *c));
    }
    if !h_tail.is_empty() {
        let v = s.mul_f32s(load(s, h_tail), tanh(s, load(s, c_tail)));
        store(s, h_tail, v);
    }
}

/// One row of the LSTM step; with `RECORD` (a constant, so inference compiles without it)
/// the row is complete and its activated gates and `tanh(c_new)` also go to `record`. Without it, the row
/// gets its new cell state and, in `h_new`, its output gate: [`lstm_hidden`] then makes that
/// `o · tanh(c_new)` over all the rows of a call. Ending each vector's work with `tanh(c_new)`
/// left the loop bound by that chain's latency (`perf` had its samples on the last division
/// and what waited on it); two passes of independent vectors took the cell over 256 units
/// from 1.61 to 1.46 ns per unit (`bench/examples/cell_speed.rs`), bit for bit the same.
#[inline(always)]
fn lstm_row<S: Simd, const RECORD: bool>(
    s: S,
    xp: &[f32],
    rec: &[f32],
    c_prev: &[f32],
    c_new: &mut [f32],
    h_new: &mut [f32],
    mut record: LstmRecord<'_>,
) {
    let u = c_prev.len();
    let l = lanes::<S>();
    // Whole vectors first, read as vectors: loads that may be partial cost a length check
    // and a jump each, a third of the loop's instructions with AVX2 (and 13 % of its time).
    let whole = u - u % l;
    // Written out rather than `[0, 1, 2, 3].map(..)`, which may stay a call (`try_map`),
    // and looped to the shortest length, so that no index below can be out of bounds: the
    // no_std build's step must have no panic path (tests/no_std/no_panic.sh).
    let x = [
        gate::<S>(xp, 0, u, whole),
        gate::<S>(xp, 1, u, whole),
        gate::<S>(xp, 2, u, whole),
        gate::<S>(xp, 3, u, whole),
    ];
    let r = [
        gate::<S>(rec, 0, u, whole),
        gate::<S>(rec, 1, u, whole),
        gate::<S>(rec, 2, u, whole),
        gate::<S>(rec, 3, u, whole),
    ];
    let cp = S::as_simd_f32s(&c_prev[..whole]).0;
    let cn = S::as_mut_simd_f32s(&mut c_new[..whole]).0;
    let hn = S::as_mut_simd_f32s(&mut h_new[..whole]).0;
    let n = [x[0], x[1], x[2], x[3], r[0], r[1], r[2], r[3], cp]
        .iter()
        .fold(cn.len().min(hn.len()), |n, v| n.min(v.len()));
    for v in 0..n {
        let z = [
            s.add_f32s(x[0][v], r[0][v]),
            s.add_f32s(x[1][v], r[1][v]),
            s.add_f32s(x[2][v], r[2][v]),
            s.add_f32s(x[3][v], r[3][v]),
        ];
        let (gates, c) = lstm_vec(s, z, cp[v]);
        cn[v] = c;
        if RECORD {
            let tc = tanh(s, c);
            hn[v] = s.mul_f32s(gates[3], tc);
            if let Some((rec_gates, c_act)) = record.as_mut() {
                let j = v * l;
                for (k, a) in gates.into_iter().enumerate() {
                    store(s, &mut rec_gates[k * u + j..k * u + j + l], a);
                }
                store(s, &mut c_act[j..j + l], tc);
            }
        } else {
            hn[v] = gates[3];
        }
    }
    // The last units, fewer than a vector.
    let (j, end) = (whole, u);
    if j < end {
        let z = [
            partial_gate_sum(s, xp, rec, 0, u, j),
            partial_gate_sum(s, xp, rec, 1, u, j),
            partial_gate_sum(s, xp, rec, 2, u, j),
            partial_gate_sum(s, xp, rec, 3, u, j),
        ];
        let (gates, c) = lstm_vec(s, z, load(s, &c_prev[j..end]));
        store(s, &mut c_new[j..end], c);
        if RECORD {
            let tc = tanh(s, c);
            store(s, &mut h_new[j..end], s.mul_f32s(gates[3], tc));
            if let Some((rec_gates, c_act)) = record.as_mut() {
                for (k, a) in gates.into_iter().enumerate() {
                    store(s, &mut rec_gates[k * u + j..k * u + end], a);
                }
                store(s, &mut c_act[j..end], tc);
            }
        } else {
            store(s, &mut h_new[j..end], gates[3]);
        }
    }
}

/// [`LstmCell`] for every row of a batch in one dispatch: row `r` reads
/// `xp[r·xp_stride..][..4u]`, `rec[r·4u..][..4u]`, `c_prev[r·u..][..u]` and writes `c_new`
/// and `h_new` at `r·u`.
pub struct LstmRows<'a> {
    /// Units `u`.
    pub units: usize,
    /// Input projections; row `r` starts at `r · xp_stride`.
    pub xp: &'a [f32],
    /// Distance between rows of `xp`.
    pub xp_stride: usize,
    /// Recurrent projections `[B, 4u]`.
    pub rec: &'a [f32],
    /// Previous cell states `[B, u]`.
    pub c_prev: &'a [f32],
    /// New cell states `[B, u]`.
    pub c_new: &'a mut [f32],
    /// New hidden states `[B, u]`.
    pub h_new: &'a mut [f32],
    /// In training: the activated gates `[B, 4u]` and `tanh(c_new)` `[B, u]`, written too.
    pub record: LstmRecord<'a>,
}

impl WithSimd for LstmRows<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(mut self, s: S) -> Self::Output {
        let u = self.units;
        let rows = self.c_prev.len() / u.max(1);
        for r in 0..rows {
            let (xp, rec) = (&self.xp[r * self.xp_stride..][..4 * u], &self.rec[r * 4 * u..][..4 * u]);
            let (c_prev, c_new, h_new) =
                (&self.c_prev[r * u..][..u], &mut self.c_new[r * u..][..u], &mut self.h_new[r * u..][..u]);
            match self.record.as_mut() {
                None => lstm_row::<S, false>(s, xp, rec, c_prev, c_new, h_new, None),
                Some((g, c)) => {
                    let record = Some((&mut g[r * 4 * u..][..4 * u], &mut c[r * u..][..u]));
                    lstm_row::<S, true>(s, xp, rec, c_prev, c_new, h_new, record)
                }
            }
        }
        if self.record.is_none() {
            lstm_hidden(s, &mut self.h_new[..rows * u], &self.c_new[..rows * u]);
        }
    }
}

/// One GRU (`reset_after=True`) step for one row with default activations:
/// `z = σ(xz + rz)`, `r = σ(xr + rr)`, `hh = tanh(xh + r·rh)`, `h = z·h_prev + (1-z)·hh`,
/// where `rec` already holds the recurrent bias.
pub struct GruCell<'a> {
    /// Input projection of this step (with input bias), `3u`.
    pub xp: &'a [f32],
    /// Recurrent projection with recurrent bias, `3u`.
    pub rec: &'a [f32],
    /// Previous hidden state, `u`.
    pub h_prev: &'a [f32],
    /// New hidden state, `u`.
    pub h_new: &'a mut [f32],
}

impl WithSimd for GruCell<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> Self::Output {
        gru_row(s, self.xp, self.rec, self.h_prev, self.h_new);
    }
}

#[inline(always)]
fn gru_row<S: Simd>(s: S, xp: &[f32], rec: &[f32], h_prev: &[f32], h_new: &mut [f32]) {
    let u = h_prev.len();
    let l = lanes::<S>();
    // Whole vectors first, as in `lstm_row`.
    let whole = u - u % l;
    let x = [gate::<S>(xp, 0, u, whole), gate::<S>(xp, 1, u, whole), gate::<S>(xp, 2, u, whole)];
    let r = [gate::<S>(rec, 0, u, whole), gate::<S>(rec, 1, u, whole), gate::<S>(rec, 2, u, whole)];
    let hp = S::as_simd_f32s(&h_prev[..whole]).0;
    let hn = S::as_mut_simd_f32s(&mut h_new[..whole]).0;
    let n = [x[0], x[1], x[2], r[0], r[1], r[2], hp].iter().fold(hn.len(), |n, v| n.min(v.len()));
    for v in 0..n {
        hn[v] = gru_vec(s, [x[0][v], x[1][v], x[2][v]], [r[0][v], r[1][v], r[2][v]], hp[v]);
    }
    let (j, end) = (whole, u);
    if j < end {
        let (x0, x1, x2) = (&xp[j..end], &xp[u + j..u + end], &xp[2 * u + j..2 * u + end]);
        let (r0, r1, r2) = (&rec[j..end], &rec[u + j..u + end], &rec[2 * u + j..2 * u + end]);
        let x = [load(s, x0), load(s, x1), load(s, x2)];
        let r = [load(s, r0), load(s, r1), load(s, r2)];
        store(s, &mut h_new[j..end], gru_vec(s, x, r, load(s, &h_prev[j..end])));
    }
}

/// The GRU cell (`reset_after`) on one vector of units: from the input and recurrent
/// projections of gates z, r, h and the previous hidden state, the new hidden state.
#[inline(always)]
fn gru_vec<S: Simd>(s: S, x: [S::f32s; 3], r: [S::f32s; 3], hp: S::f32s) -> S::f32s {
    let z = sigmoid(s, s.add_f32s(x[0], r[0]));
    let reset = sigmoid(s, s.add_f32s(x[1], r[1]));
    let hh = tanh(s, s.mul_add_f32s(reset, r[2], x[2]));
    // z·hp + (1-z)·hh = hh + z·(hp - hh)
    s.mul_add_f32s(z, s.sub_f32s(hp, hh), hh)
}

/// [`GruCell`] for every row of a batch in one dispatch (layout as in [`LstmRows`], with
/// `3u` gate columns; `rec` already holds the recurrent bias).
pub struct GruRows<'a> {
    /// Units `u`.
    pub units: usize,
    /// Input projections; row `r` starts at `r · xp_stride`.
    pub xp: &'a [f32],
    /// Distance between rows of `xp`.
    pub xp_stride: usize,
    /// Recurrent projections with recurrent bias `[B, 3u]`.
    pub rec: &'a [f32],
    /// Previous hidden states `[B, u]`.
    pub h_prev: &'a [f32],
    /// New hidden states `[B, u]`.
    pub h_new: &'a mut [f32],
}

impl WithSimd for GruRows<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> Self::Output {
        let u = self.units;
        for r in 0..self.h_prev.len() / u.max(1) {
            gru_row(
                s,
                &self.xp[r * self.xp_stride..][..3 * u],
                &self.rec[r * 3 * u..][..3 * u],
                &self.h_prev[r * u..][..u],
                &mut self.h_new[r * u..][..u],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// Runs `f` on every instruction set this machine has, plus pulp's scalar fallback.
    fn on_every_isa(mut f: impl FnMut(&str, &mut dyn FnMut(Unary, &mut [f32]))) {
        f("scalar", &mut |u, d| map_in_place_with(pulp::Scalar::new(), u, d));
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(v3) = pulp::x86::V3::try_new() {
                f("avx2", &mut |u, d| map_in_place_with(v3, u, d));
            }
            if let Some(v4) = pulp::x86::V4::try_new() {
                f("avx512", &mut |u, d| map_in_place_with(v4, u, d));
            }
        }
        f("dispatch", &mut |u, d| map_in_place(u, d));
    }

    fn reference(u: Unary, x: f32) -> f64 {
        let x = x as f64;
        match u {
            Unary::Exp => x.exp(),
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Tanh => x.tanh(),
            Unary::Relu => x.max(0.0),
        }
    }

    /// Every 2¹⁰-th `f32` of the exponential's range (and all of the 2¹⁴ nearest 0 on either
    /// side): the polynomial's error must stay below `f32`'s rounding, whatever the random
    /// cases above happen to draw. 1.2e-7 is two units of the last place of a mantissa near 1.
    #[test]
    fn exp_and_tanh_are_accurate_over_a_sweep_of_their_range() {
        let sweep: Vec<f32> = (0..=u32::MAX >> 10)
            .map(|i| f32::from_bits(i << 10))
            .chain((0..1 << 14).map(f32::from_bits))
            .filter(|x| x.abs() <= 87.0)
            .flat_map(|x| [x, -x])
            .collect();
        on_every_isa(|isa, run| {
            let mut e = sweep.clone();
            run(Unary::Exp, &mut e);
            let mut t = sweep.clone();
            run(Unary::Tanh, &mut t);
            for ((x, e), t) in sweep.iter().zip(&e).zip(&t) {
                let want = (*x as f64).exp();
                if want > f32::MIN_POSITIVE as f64 {
                    assert!((*e as f64 / want - 1.0).abs() < 1.2e-7, "{isa} exp({x}) = {e}, want {want}");
                }
                let want = (*x as f64).tanh();
                assert!(
                    (*t as f64 - want).abs() <= 3.0 * f32::EPSILON as f64 * want.abs(),
                    "{isa} tanh({x}) = {t}, want {want}"
                );
            }
        });
    }

    proptest! {
        #[test]
        fn kernels_match_the_f64_reference(xs in proptest::collection::vec(-30.0f32..30.0, 0..70)) {
            on_every_isa(|isa, run| {
                for u in [Unary::Exp, Unary::Sigmoid, Unary::Tanh, Unary::Relu] {
                    let mut d = xs.clone();
                    run(u, &mut d);
                    for (x, y) in xs.iter().zip(&d) {
                        let want = reference(u, *x);
                        let tol = if u == Unary::Exp { 3e-7 * want.abs() } else { 3e-7 };
                        assert!((*y as f64 - want).abs() <= tol, "{isa} {u:?}({x}) = {y}, want {want}");
                    }
                }
            });
        }

        #[test]
        fn tanh_is_accurate_relative_to_its_value(x in prop_oneof![-12.0f32..12.0, -1e-3f32..1e-3, -1e-30f32..1e-30]) {
            // Relative, not only absolute: no cancellation near 0 (tanh x ≈ x).
            on_every_isa(|isa, run| {
                let mut d = [x; 9];
                run(Unary::Tanh, &mut d);
                let want = (x as f64).tanh();
                assert!((d[0] as f64 - want).abs() <= 3.0 * f32::EPSILON as f64 * want.abs(), "{isa} tanh({x}) = {}, want {want}", d[0]);
            });
        }

        #[test]
        fn gemv_matches_the_naive_product(k in 0usize..70, n in 1usize..150, acc: bool, seed in 0u64..1000) {
            let mut st = seed.wrapping_add(7);
            let mut next = || { st ^= st << 13; st ^= st >> 7; st ^= st << 17; (st >> 40) as f32 / (1u64 << 24) as f32 - 0.5 };
            let x: Vec<f32> = (0..k).map(|_| next()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let y0: Vec<f32> = (0..n).map(|_| next()).collect();
            let mut want = y0.clone();
            for (j, w) in want.iter_mut().enumerate() {
                let sum: f64 = (0..k).map(|p| x[p] as f64 * b[p * n + j] as f64).sum();
                *w = ((if acc { *w as f64 } else { 0.0 }) + sum) as f32;
            }
            let mut runs: Vec<(&str, Vec<f32>)> = Vec::new();
            // Each instruction set in both orders of the row chunks, which must agree exactly.
            let mut both = |isa: &'static str, go: &dyn Fn(Gemv<'_>)| -> Result<(), TestCaseError> {
                let (mut fwd, mut bwd) = (y0.clone(), y0.clone());
                go(Gemv { x: &x, b: &b, y: &mut fwd, accumulate: acc, backwards: false });
                go(Gemv { x: &x, b: &b, y: &mut bwd, accumulate: acc, backwards: true });
                prop_assert_eq!(&fwd, &bwd, "{}: the orders differ", isa);
                runs.push((isa, fwd));
                Ok(())
            };
            both("scalar", &|g| pulp::Scalar::new().vectorize(g))?;
            #[cfg(target_arch = "x86_64")]
            {
                if let Some(v3) = pulp::x86::V3::try_new() {
                    both("avx2", &|g| Simd::vectorize(v3, g))?;
                }
                if let Some(v4) = pulp::x86::V4::try_new() {
                    both("avx512", &|g| Simd::vectorize(v4, g))?;
                }
            }
            let mut y = y0.clone();
            gemv(&x, &b, &mut y, acc);
            runs.push(("dispatch", y));
            for (isa, got) in runs {
                for (g, w) in got.iter().zip(&want) {
                    prop_assert!((g - w).abs() <= 1e-5 * (1.0 + k as f32), "{isa}: {g} vs {w}");
                }
            }
        }

        #[test]
        fn softmax_matches_the_f64_reference(xs in proptest::collection::vec(-30.0f32..30.0, 1..90), width in 1usize..40) {
            let width = width.min(xs.len());
            let rows = xs.len() / width;
            let xs = &xs[..rows * width];
            let mut runs: Vec<(&str, Vec<f32>)> = Vec::new();
            let mut d = xs.to_vec();
            softmax_rows_with(pulp::Scalar::new(), &mut d, width);
            runs.push(("scalar", d));
            #[cfg(target_arch = "x86_64")]
            {
                if let Some(v3) = pulp::x86::V3::try_new() {
                    let mut d = xs.to_vec();
                    softmax_rows_with(v3, &mut d, width);
                    runs.push(("avx2", d));
                }
                if let Some(v4) = pulp::x86::V4::try_new() {
                    let mut d = xs.to_vec();
                    softmax_rows_with(v4, &mut d, width);
                    runs.push(("avx512", d));
                }
            }
            let mut d = xs.to_vec();
            softmax_rows(&mut d, width);
            runs.push(("dispatch", d));
            for (isa, got) in runs {
                for (row, out) in xs.chunks(width).zip(got.chunks(width)) {
                    let max = row.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v as f64));
                    let sum: f64 = row.iter().map(|v| (*v as f64 - max).exp()).sum();
                    for (x, y) in row.iter().zip(out) {
                        let want = (*x as f64 - max).exp() / sum;
                        prop_assert!((*y as f64 - want).abs() <= 1e-6, "{isa}: {y} vs {want}");
                    }
                }
            }
        }

        #[test]
        fn fused_cells_match_the_scalar_cells(seed in 0u64..10_000, u in 1usize..40) {
            let mut st = seed.wrapping_add(1);
            let mut next = || { st ^= st << 13; st ^= st >> 7; st ^= st << 17; ((st >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 6.0 };
            let xp: Vec<f32> = (0..4 * u).map(|_| next()).collect();
            let rec: Vec<f32> = (0..4 * u).map(|_| next()).collect();
            let prev: Vec<f32> = (0..u).map(|_| next()).collect();
            let sig = |v: f32| 1.0 / (1.0 + (-v as f64).exp());
            let th = |v: f64| v.tanh();
            let check = |isa: &str, got_c: &[f32], got_h: &[f32], gru_h: &[f32]| {
                for j in 0..u {
                    let g = |b: usize| xp[b * u + j] + rec[b * u + j];
                    let c = sig(g(1)) * prev[j] as f64 + sig(g(0)) * th(g(2) as f64);
                    let h = sig(g(3)) * th(c);
                    assert!((got_c[j] as f64 - c).abs() < 1e-6, "{isa} lstm c");
                    assert!((got_h[j] as f64 - h).abs() < 1e-6, "{isa} lstm h");
                    let z = sig(g(0));
                    let r = sig(g(1));
                    let hh = th(xp[2 * u + j] as f64 + r * rec[2 * u + j] as f64);
                    let hg = z * prev[j] as f64 + (1.0 - z) * hh;
                    assert!((gru_h[j] as f64 - hg).abs() < 1e-6, "{isa} gru h");
                }
            };
            let run = |isa: &str, f: &dyn Fn(LstmCell<'_>, GruCell<'_>)| {
                let (mut c, mut h, mut gh) = (vec![0.0; u], vec![0.0; u], vec![0.0; u]);
                f(LstmCell { xp: &xp, rec: &rec, c_prev: &prev, c_new: &mut c, h_new: &mut h },
                  GruCell { xp: &xp[..3 * u], rec: &rec[..3 * u], h_prev: &prev, h_new: &mut gh });
                check(isa, &c, &h, &gh);
            };
            run("scalar", &|a, b| { Simd::vectorize(pulp::Scalar::new(), a); Simd::vectorize(pulp::Scalar::new(), b); });
            #[cfg(target_arch = "x86_64")]
            {
                if let Some(v3) = pulp::x86::V3::try_new() { run("avx2", &|a, b| { Simd::vectorize(v3, a); Simd::vectorize(v3, b); }); }
                if let Some(v4) = pulp::x86::V4::try_new() { run("avx512", &|a, b| { Simd::vectorize(v4, a); Simd::vectorize(v4, b); }); }
            }
        }
    }

    /// The gates the fused LSTM cell records for the backward pass are the f64 sigmoid and
    /// tanh of its pre-activations, and recording changes neither `h` nor `c`.
    #[test]
    fn recorded_lstm_gates_match_f64_references() {
        let (b, u) = (3, 37); // whole vectors and a partial one on every instruction set
        let mut st = 0x9E37_79B9u64;
        let mut next = || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            ((st >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 6.0
        };
        let xp: Vec<f32> = (0..b * 4 * u).map(|_| next()).collect();
        let rec: Vec<f32> = (0..b * 4 * u).map(|_| next()).collect();
        let prev: Vec<f32> = (0..b * u).map(|_| next()).collect();
        let run = |isa: &str, go: &dyn Fn(LstmRows<'_>)| {
            let (mut c0, mut h0, mut c1, mut h1) =
                (vec![0.0; b * u], vec![0.0; b * u], vec![0.0; b * u], vec![0.0; b * u]);
            let (mut gates, mut tc) = (vec![0.0; b * 4 * u], vec![0.0; b * u]);
            go(LstmRows {
                units: u,
                xp: &xp,
                xp_stride: 4 * u,
                rec: &rec,
                c_prev: &prev,
                c_new: &mut c0,
                h_new: &mut h0,
                record: None,
            });
            go(LstmRows {
                units: u,
                xp: &xp,
                xp_stride: 4 * u,
                rec: &rec,
                c_prev: &prev,
                c_new: &mut c1,
                h_new: &mut h1,
                record: Some((&mut gates, &mut tc)),
            });
            assert_eq!((&c0, &h0), (&c1, &h1), "{isa}: recording changed the step");
            let sig = |v: f32| 1.0 / (1.0 + (-(v as f64)).exp());
            for r in 0..b {
                for k in 0..4 {
                    for j in 0..u {
                        let z = xp[r * 4 * u + k * u + j] + rec[r * 4 * u + k * u + j];
                        let want = if k == 2 { (z as f64).tanh() } else { sig(z) };
                        assert!((gates[r * 4 * u + k * u + j] as f64 - want).abs() < 1e-6, "{isa} gate {k}");
                    }
                }
                for j in 0..u {
                    assert!(
                        (tc[r * u + j] as f64 - (c1[r * u + j] as f64).tanh()).abs() < 1e-6,
                        "{isa} tanh(c)"
                    );
                }
            }
        };
        run("scalar", &|k| Simd::vectorize(pulp::Scalar::new(), k));
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(v3) = pulp::x86::V3::try_new() {
                run("avx2", &|k| Simd::vectorize(v3, k));
            }
            if let Some(v4) = pulp::x86::V4::try_new() {
                run("avx512", &|k| Simd::vectorize(v4, k));
            }
        }
    }
}
