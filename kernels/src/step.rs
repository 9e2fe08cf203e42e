//! One time step of each layer, on buffers the caller owns: what the generated `no_std` code
//! of a stepped model calls (`seqmodel!("m.seq", weights = "m.safetensors", no_std)`). The
//! model's states and work buffers are fixed-size arrays inside its type and its weights are
//! `static` arrays in the layout [`pack_blocks`] writes, so a step needs no heap and no file.
//!
//! Each step is a composition of the kernels the interpreter runs for a batch of one row
//! ([`GemvBlocks`], [`LstmCell`], [`GruCell`], the element-wise maps), in the same order, so
//! its numbers are the interpreter's bit for bit. The functions are generic over
//! [`pulp::Simd`] and inline, so that a model's whole step compiles into one function with the
//! CPU's instruction set (the generated code dispatches once per step).

use pulp::{Simd, WithSimd};

use crate::{GemvBlocks, GruCell, LstmCell, MapInPlace, SoftmaxRows, Unary};

/// The column-block width of the weight matrices baked into generated code (see
/// [`pack_blocks`]): eight vectors of AVX-512, so that its products read each block front to
/// back; narrower instruction sets read the same layout correctly, two or four vectors'
/// blocks at a time.
pub const BAKED_WIDTH: usize = 128;

/// Writes the row-major `k × n` matrix `b` into `out` as column blocks of `width` columns
/// (the last one narrower), each block `k × width` row-major, one after another: the layout
/// that [`GemvBlocks`] reads. Returns `false`, writing nothing, when `b` or `out` is not
/// `k · n` long or `width` is 0.
///
/// ```
/// let b = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 × 3
/// let mut out = [0.0; 6];
/// assert!(seqmodel_kernels::step::pack_blocks(2, 3, &b, 2, &mut out));
/// assert_eq!(out, [1.0, 2.0, 4.0, 5.0, 3.0, 6.0]);
/// ```
pub fn pack_blocks(k: usize, n: usize, b: &[f32], width: usize, out: &mut [f32]) -> bool {
    if width == 0 || b.len() != k * n || out.len() != k * n {
        return false;
    }
    let mut at = out.iter_mut();
    for col in (0..n).step_by(width) {
        let w = width.min(n - col);
        for row in b.chunks_exact(n) {
            // The row's side first: `zip` stops on it without taking another output slot.
            for (v, o) in row[col..col + w].iter().zip(&mut at) {
                *o = *v;
            }
        }
    }
    true
}

/// A recurrent layer's weights: the kernel `[D, G·U]` and recurrent kernel `[U, G·U]` in
/// column blocks of `width` ([`pack_blocks`]; [`BAKED_WIDTH`] for baked weights, the
/// runtime's own width for weights loaded at run time), gate blocks in Keras's order (LSTM
/// i, f, c, o; GRU z, r, h).
#[derive(Debug, Clone, Copy)]
pub struct RecurrentWeights<'a> {
    /// The column-block width of both matrices.
    pub width: usize,
    /// The input kernel.
    pub kernel: &'a [f32],
    /// The recurrent kernel.
    pub recurrent: &'a [f32],
    /// The bias added to the input projection, `G·U` (`None` without bias).
    pub bias: Option<&'a [f32]>,
    /// GRU with `reset_after`: the recurrent bias, `G·U`, added to the recurrent projection.
    pub recurrent_bias: Option<&'a [f32]>,
}

impl RecurrentWeights<'_> {
    /// `xp = x · kernel + bias` and `rec = h · recurrent (+ recurrent bias)`, the recurrent
    /// product's column blocks taken last to first when `backwards`.
    #[inline(always)]
    fn project<S: Simd>(&self, s: S, x: &[f32], h: &[f32], xp: &mut [f32], rec: &mut [f32], backwards: bool) {
        let accumulate = match self.bias {
            Some(b) => {
                for (d, v) in xp.iter_mut().zip(b) {
                    *d = *v;
                }
                true
            }
            None => false,
        };
        let input =
            GemvBlocks { x, blocks: self.kernel, y: xp, width: self.width, accumulate, backwards: false };
        input.with_simd(s);
        let recurrent = GemvBlocks {
            x: h,
            blocks: self.recurrent,
            y: rec,
            width: self.width,
            accumulate: false,
            backwards,
        };
        recurrent.with_simd(s);
        if let Some(b) = self.recurrent_bias {
            for (d, v) in rec.iter_mut().zip(b) {
                *d += v;
            }
        }
    }
}

/// One step of an LSTM layer with Keras's default activations (tanh, sigmoid gates) for one
/// row: `h` and `c` are its states, read and replaced.
#[derive(Debug)]
pub struct LstmStep<'a> {
    /// The layer's weights.
    pub weights: RecurrentWeights<'a>,
    /// This step's input, `D`.
    pub x: &'a [f32],
    /// The hidden state, `U`.
    pub h: &'a mut [f32],
    /// The cell state, `U`.
    pub c: &'a mut [f32],
    /// Work buffers: the input projection `4U`, the recurrent projection `4U`, the new cell
    /// state `U`.
    pub work: (&'a mut [f32], &'a mut [f32], &'a mut [f32]),
    /// Take the recurrent product's column blocks last to first (flip it at every step: the
    /// blocks the last step read most recently are still in the L1 cache).
    pub backwards: bool,
}

impl LstmStep<'_> {
    /// Runs the step with the instruction set `s`.
    #[inline(always)]
    pub fn run<S: Simd>(self, s: S) {
        let LstmStep { weights, x, h, c, work: (xp, rec, c_new), backwards } = self;
        weights.project(s, x, h, xp, rec, backwards);
        LstmCell { xp, rec, c_prev: c, c_new, h_new: h }.with_simd(s);
        copy(c, c_new);
    }
}

/// One step of a GRU layer (`reset_after=True`, Keras's default activations) for one row:
/// `h` is its state, read and replaced.
#[derive(Debug)]
pub struct GruStep<'a> {
    /// The layer's weights (with the recurrent bias, when it has a bias).
    pub weights: RecurrentWeights<'a>,
    /// This step's input, `D`.
    pub x: &'a [f32],
    /// The hidden state, `U`.
    pub h: &'a mut [f32],
    /// Work buffers: the input projection `3U`, the recurrent projection `3U`, the new state
    /// `U`.
    pub work: (&'a mut [f32], &'a mut [f32], &'a mut [f32]),
    /// As [`LstmStep::backwards`].
    pub backwards: bool,
}

impl GruStep<'_> {
    /// Runs the step with the instruction set `s`.
    #[inline(always)]
    pub fn run<S: Simd>(self, s: S) {
        let GruStep { weights, x, h, work: (xp, rec, h_new), backwards } = self;
        weights.project(s, x, h, xp, rec, backwards);
        GruCell { xp, rec, h_prev: h, h_new }.with_simd(s);
        copy(h, h_new);
    }
}

/// Copies `src` into `dst`, as far as the shorter goes (no length check that could panic:
/// the step's buffers have their lengths by construction).
#[inline(always)]
pub fn copy(dst: &mut [f32], src: &[f32]) {
    for (d, v) in dst.iter_mut().zip(src) {
        *d = *v;
    }
}

/// An element-wise activation that a step applies with SIMD kernels (the ones that need no
/// `std` maths library).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pointwise {
    /// The identity.
    Linear,
    /// An element-wise function.
    Map(Unary),
    /// Softmax over the whole vector.
    Softmax,
}

impl Pointwise {
    /// Applies the activation to `y` in place.
    #[inline(always)]
    pub fn apply<S: Simd>(self, s: S, y: &mut [f32]) {
        match self {
            Pointwise::Linear => {}
            Pointwise::Map(f) => MapInPlace { f, data: y }.with_simd(s),
            Pointwise::Softmax => {
                let width = y.len();
                if width > 0 {
                    SoftmaxRows { data: y, width }.with_simd(s);
                }
            }
        }
    }
}

/// One row through a Dense layer: `y = act(x · kernel + bias)`, the kernel `[D, N]` in
/// column blocks of `width` (as in [`RecurrentWeights`]).
#[derive(Debug)]
pub struct DenseStep<'a> {
    /// The input, `D`.
    pub x: &'a [f32],
    /// The kernel.
    pub kernel: &'a [f32],
    /// Its column-block width.
    pub width: usize,
    /// The bias, `N`.
    pub bias: Option<&'a [f32]>,
    /// The output, `N`.
    pub y: &'a mut [f32],
    /// The activation.
    pub activation: Pointwise,
}

impl DenseStep<'_> {
    /// Runs the layer with the instruction set `s`.
    #[inline(always)]
    pub fn run<S: Simd>(self, s: S) {
        let DenseStep { x, kernel, width, bias, y, activation } = self;
        let accumulate = match bias {
            Some(b) => {
                for (d, v) in y.iter_mut().zip(b) {
                    *d = *v;
                }
                true
            }
            None => false,
        };
        GemvBlocks { x, blocks: kernel, y, width, accumulate, backwards: false }.with_simd(s);
        activation.apply(s, y);
    }
}

/// A model input that holds NaN or an infinity: the one way a generated step can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonFinite {
    /// The input's name in the model's source.
    pub input: &'static str,
    /// The first bad element.
    pub index: usize,
}

impl core::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "input `{}` has a non-finite value (NaN or infinity) at index {}", self.input, self.index)
    }
}

impl core::error::Error for NonFinite {}

/// `Err` naming the first element of `x` (the input `input`) that is NaN or infinite.
///
/// ```
/// use seqmodel_kernels::step::{check_finite, NonFinite};
/// assert_eq!(check_finite("x", &[1.0, 2.0]), Ok(()));
/// assert_eq!(check_finite("x", &[1.0, f32::NAN]), Err(NonFinite { input: "x", index: 1 }));
/// ```
#[inline]
pub fn check_finite(input: &'static str, x: &[f32]) -> Result<(), NonFinite> {
    match x.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(NonFinite { input, index }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n as u64).map(|i| ((i * 37 + seed * 101) % 23) as f32 / 23.0 - 0.5).collect()
    }

    /// `b` in column blocks of `width` (the runtime packs at its dispatch's width, which is
    /// narrower than [`BAKED_WIDTH`] without AVX-512).
    fn packed(k: usize, n: usize, b: &[f32], width: usize) -> Vec<f32> {
        let mut out = std::vec![0.0; k * n];
        assert!(pack_blocks(k, n, b, width, &mut out));
        out
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Keras's LSTM step in f64 from row-major weights.
    fn lstm_reference(
        x: &[f32],
        k: &[f32],
        r: &[f32],
        b: &[f32],
        h: &[f32],
        c: &[f32],
    ) -> (Vec<f64>, Vec<f64>) {
        let (d, u) = (x.len(), h.len());
        let z: Vec<f64> = (0..4 * u)
            .map(|j| {
                let xs: f64 = (0..d).map(|p| x[p] as f64 * k[p * 4 * u + j] as f64).sum();
                let hs: f64 = (0..u).map(|p| h[p] as f64 * r[p * 4 * u + j] as f64).sum();
                b[j] as f64 + xs + hs
            })
            .collect();
        let c_new: Vec<f64> =
            (0..u).map(|j| sigmoid(z[u + j]) * c[j] as f64 + sigmoid(z[j]) * z[2 * u + j].tanh()).collect();
        let h_new = (0..u).map(|j| sigmoid(z[3 * u + j]) * c_new[j].tanh()).collect();
        (h_new, c_new)
    }

    /// Keras's GRU (`reset_after`) step in f64.
    fn gru_reference(x: &[f32], k: &[f32], r: &[f32], b: &[f32], h: &[f32]) -> Vec<f64> {
        let (d, u) = (x.len(), h.len());
        let dot = |m: &[f32], v: &[f32], n: usize, j: usize| -> f64 {
            (0..n).map(|p| v[p] as f64 * m[p * 3 * u + j] as f64).sum()
        };
        (0..u)
            .map(|j| {
                let xz = dot(k, x, d, j) + b[j] as f64;
                let xr = dot(k, x, d, u + j) + b[u + j] as f64;
                let xh = dot(k, x, d, 2 * u + j) + b[2 * u + j] as f64;
                let rz = dot(r, h, u, j) + b[3 * u + j] as f64;
                let rr = dot(r, h, u, u + j) + b[4 * u + j] as f64;
                let rh = dot(r, h, u, 2 * u + j) + b[5 * u + j] as f64;
                let (z, rg) = (sigmoid(xz + rz), sigmoid(xr + rr));
                let hh = (xh + rg * rh).tanh();
                z * h[j] as f64 + (1.0 - z) * hh
            })
            .collect()
    }

    struct Lstm<'a> {
        step: LstmStep<'a>,
    }
    impl WithSimd for Lstm<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            self.step.run(s)
        }
    }

    fn lstm_on<S: Simd>(
        s: S,
        u: usize,
        d: usize,
        seed: u64,
        backwards: bool,
        width: usize,
    ) -> (Vec<f32>, Vec<f32>, Vec<f64>, Vec<f64>) {
        let (k, r, b) = (values(d * 4 * u, seed), values(u * 4 * u, seed + 1), values(4 * u, seed + 2));
        let (x, mut h, mut c) = (values(d, seed + 3), values(u, seed + 4), values(u, seed + 5));
        let (want_h, want_c) = lstm_reference(&x, &k, &r, &b, &h, &c);
        let (pk, pr) = (packed(d, 4 * u, &k, width), packed(u, 4 * u, &r, width));
        let (mut xp, mut rec, mut c_new) = (std::vec![0.0; 4 * u], std::vec![0.0; 4 * u], std::vec![0.0; u]);
        let weights =
            RecurrentWeights { width, kernel: &pk, recurrent: &pr, bias: Some(&b), recurrent_bias: None };
        s.vectorize(Lstm {
            step: LstmStep {
                weights,
                x: &x,
                h: &mut h,
                c: &mut c,
                work: (&mut xp, &mut rec, &mut c_new),
                backwards,
            },
        });
        (h, c, want_h, want_c)
    }

    fn close(got: &[f32], want: &[f64], what: &str) {
        for (j, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((*g as f64 - w).abs() <= 2e-6, "{what}[{j}]: {g} vs {w}");
        }
    }

    /// Block widths the weights may be packed with: baked ones, and the runtime's on AVX-512
    /// (the same), AVX2 and NEON.
    fn widths() -> impl Strategy<Value = usize> {
        prop::sample::select(&[BAKED_WIDTH, 64, 32][..])
    }

    proptest! {
        /// The LSTM and GRU steps on packed weights equal Keras's step in f64, on every
        /// instruction set, block width and in both product orders (the orders equal each
        /// other exactly).
        #[test]
        fn steps_match_the_f64_reference(u in 1usize..70, d in 1usize..20, seed in 0u64..1000, width in widths()) {
            let mut results = Vec::new();
            let mut run = |isa: &str, h: Vec<f32>, c: Vec<f32>, wh: Vec<f64>, wc: Vec<f64>| {
                close(&h, &wh, &std::format!("{isa} h"));
                close(&c, &wc, &std::format!("{isa} c"));
                results.push((h, c));
            };
            for backwards in [false, true] {
                let (h, c, wh, wc) = lstm_on(pulp::Scalar::new(), u, d, seed, backwards, width);
                run("scalar", h, c, wh, wc);
                #[cfg(target_arch = "x86_64")]
                {
                    if let Some(v3) = pulp::x86::V3::try_new() {
                        let (h, c, wh, wc) = lstm_on(v3, u, d, seed, backwards, width);
                        run("avx2", h, c, wh, wc);
                    }
                    if let Some(v4) = pulp::x86::V4::try_new() {
                        let (h, c, wh, wc) = lstm_on(v4, u, d, seed, backwards, width);
                        run("avx512", h, c, wh, wc);
                    }
                }
            }
            // Per instruction set, both orders give the same bits.
            let half = results.len() / 2;
            for i in 0..half {
                prop_assert_eq!(&results[i], &results[half + i]);
            }

            // GRU.
            let (k, r, b) = (values(d * 3 * u, seed), values(u * 3 * u, seed + 1), values(6 * u, seed + 2));
            let (x, mut h) = (values(d, seed + 3), values(u, seed + 4));
            let want = gru_reference(&x, &k, &r, &b, &h);
            let (pk, pr) = (packed(d, 3 * u, &k, width), packed(u, 3 * u, &r, width));
            let (mut xp, mut rec, mut h_new) = (std::vec![0.0; 3 * u], std::vec![0.0; 3 * u], std::vec![0.0; u]);
            let weights =
                RecurrentWeights {
                width,
                kernel: &pk,
                recurrent: &pr,
                bias: Some(&b[..3 * u]),
                recurrent_bias: Some(&b[3 * u..]),
            };
            GruStep { weights, x: &x, h: &mut h, work: (&mut xp, &mut rec, &mut h_new), backwards: true }
                .run(pulp::Scalar::new());
            close(&h, &want, "gru h");
        }

        /// A Dense row on packed weights equals the naive product, with each activation.
        #[test]
        fn dense_matches_the_naive_product(d in 1usize..80, n in 1usize..300, seed in 0u64..1000, width in widths()) {
            let (k, b, x) = (values(d * n, seed), values(n, seed + 1), values(d, seed + 2));
            let pk = packed(d, n, &k, width);
            let z: Vec<f64> = (0..n)
                .map(|j| b[j] as f64 + (0..d).map(|p| x[p] as f64 * k[p * n + j] as f64).sum::<f64>())
                .collect();
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = z.iter().map(|v| (v - max).exp()).sum();
            for act in [Pointwise::Linear, Pointwise::Map(Unary::Tanh), Pointwise::Softmax] {
                let mut y = std::vec![0.0; n];
                DenseStep { x: &x, kernel: &pk, width, bias: Some(&b), y: &mut y, activation: act }.run(pulp::Scalar::new());
                let want: Vec<f64> = match act {
                    Pointwise::Linear => z.clone(),
                    Pointwise::Map(_) => z.iter().map(|v| v.tanh()).collect(),
                    Pointwise::Softmax => z.iter().map(|v| (v - max).exp() / total).collect(),
                };
                for (j, (g, w)) in y.iter().zip(&want).enumerate() {
                    prop_assert!((*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()), "{act:?} [{j}]: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn pack_blocks_refuses_wrong_lengths() {
        let mut out = [0.0; 4];
        assert!(!pack_blocks(2, 3, &[0.0; 6], 2, &mut out));
        assert!(!pack_blocks(2, 2, &[0.0; 4], 0, &mut out));
        assert!(!pack_blocks(2, 2, &[0.0; 3], 2, &mut out));
    }
}
