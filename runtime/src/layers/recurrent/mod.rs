//! The recurrent layers (LSTM, GRU in both `reset_after` modes, SimpleRNN): their weights
//! in Keras's order, packed once at load; the one forward pass (`forward`), which
//! training runs too, recording an [`RnnTape`]; and backpropagation through time
//! (`backward`).

mod backward;
mod forward;

use seqmodel_ir::{CellKind, RnnAttrs};

pub use backward::{RnnGrads, RnnParams, backward};
pub(crate) use forward::sized;
pub use forward::{
    Recording, RnnOut, RnnOutput, RnnScratch, forward, forward_into, forward_projected,
    forward_repeated_into, forward_rows,
};

use crate::kernels::{FixedRhs, PackedB};
use crate::pool;

/// Weights of one recurrent layer, repacked once at load time by [`RnnWeights::pack`].
#[derive(Debug, Clone)]
pub struct RnnWeights {
    /// Input kernel `[D, G·U]`.
    kernel: FixedRhs,
    /// Recurrent kernel `[U, G·U]` (for GRU without `reset_after`: the z and r blocks only,
    /// `[U, 2U]`), multiplied at every step.
    recurrent: FixedRhs,
    /// GRU without `reset_after`: the candidate block of the recurrent kernel, `[U, U]`.
    recurrent_h: FixedRhs,
    /// Bias added to the input projection, `[G·U]` (zeros without bias).
    bias_in: Vec<f32>,
    /// GRU with `reset_after`: the recurrent bias, `[G·U]`.
    bias_rec: Option<Vec<f32>>,
    /// LSTM and SimpleRNN: the input kernel over the recurrent one, `[D + U, G·U]`, packed
    /// for a step that multiplies `[x_t, h]` by both in one product (see
    /// [`RnnWeights::stacked`]); `None` for the GRUs, whose recurrent part is not summed
    /// with the input's (boxed: it is the large variant of a node's prepared weights).
    stacked: Option<Box<PackedB>>,
}

/// `[kernel; recurrent]` packed into `out` (reusing its buffer) for the cells that sum the
/// two products; `None` for the others.
fn pack_stacked(a: &RnnAttrs, kernel: &[f32], recurrent: &[f32], out: &mut Option<Box<PackedB>>) {
    if !matches!(a.cell, CellKind::Lstm | CellKind::SimpleRnn) {
        *out = None;
        return;
    }
    let (d, u, gu) = (a.input_dim, a.units, a.cell.gates() * a.units);
    let mut both = pool::overwritten((d + u) * gu);
    both[..d * gu].copy_from_slice(&kernel[..d * gu]);
    both[d * gu..].copy_from_slice(&recurrent[..u * gu]);
    out.get_or_insert_default().pack(d + u, gu, &both);
    pool::recycle(both);
}

impl RnnWeights {
    /// [`RnnWeights::pack`] into `self`, reusing its buffers.
    pub fn repack(&mut self, a: &RnnAttrs, kernel: &[f32], recurrent: &[f32], bias: Option<&[f32]>) {
        self.repack_with(a, kernel, recurrent, bias, None);
    }

    /// [`RnnWeights::repack`]; for a training pass over a batch of `Some(rows)` (which
    /// records a tape, so never joins the two products), without the stacked kernels and,
    /// unless a single row, without the one-row column blocks: laying out what no product of
    /// the pass reads cost lm-gru's and big-lstm's training steps a copy and a packing of
    /// every recurrent kernel.
    pub(crate) fn repack_with(
        &mut self,
        a: &RnnAttrs,
        kernel: &[f32],
        recurrent: &[f32],
        bias: Option<&[f32]>,
        training_rows: Option<usize>,
    ) {
        let u = a.units;
        let gu = a.cell.gates() * u;
        let one_row = training_rows.is_none_or(|rows| rows == 1);
        self.kernel.refill_with(a.input_dim, gu, kernel, one_row);
        match a.cell {
            CellKind::Gru { reset_after: false } => {
                let (zr, h) = split_recurrent(recurrent, u);
                self.recurrent.refill_with(u, 2 * u, &zr, one_row);
                self.recurrent_h.refill_with(u, u, &h, one_row);
                pool::recycle(zr);
                pool::recycle(h);
            }
            _ => self.recurrent.refill_with(u, gu, recurrent, one_row),
        }
        if training_rows.is_some() {
            self.stacked = None;
        } else {
            pack_stacked(a, kernel, recurrent, &mut self.stacked);
        }
        self.bias_in.clear();
        match bias {
            Some(b) => self.bias_in.extend_from_slice(&b[..gu]),
            None => self.bias_in.resize(gu, 0.0),
        }
        if let (Some(dst), Some(b), CellKind::Gru { reset_after: true }) =
            (self.bias_rec.as_mut(), bias, a.cell)
        {
            dst.copy_from_slice(&b[gu..2 * gu]);
        }
    }

    /// `[kernel; recurrent]` packed, for a step that computes `[x_t, h] · [kernel; recurrent]`
    /// as one product (LSTM and SimpleRNN; `None` for the GRUs).
    pub(crate) fn stacked(&self) -> Option<&PackedB> {
        self.stacked.as_deref()
    }

    /// The weights as the step kernels read them for one row (`None` for a GRU without
    /// `reset_after` and SimpleRNN, which have none).
    #[inline]
    pub fn step_weights(&self, cell: CellKind) -> Option<crate::kernels::simd::step::RecurrentWeights<'_>> {
        if !matches!(cell, CellKind::Lstm | CellKind::Gru { reset_after: true }) {
            return None;
        }
        let ((kernel, width), (recurrent, recurrent_width)) = (self.kernel.blocks(), self.recurrent.blocks());
        (width == recurrent_width).then_some(crate::kernels::simd::step::RecurrentWeights {
            width,
            kernel,
            recurrent,
            bias: Some(&self.bias_in),
            recurrent_bias: self.bias_rec.as_deref(),
        })
    }

    /// Repacks Keras's `kernel`, `recurrent_kernel` and `bias` arrays.
    pub fn pack(a: &RnnAttrs, kernel: &[f32], recurrent: &[f32], bias: Option<&[f32]>) -> Self {
        let u = a.units;
        let gu = a.cell.gates() * u;
        let (bias_in, bias_rec) = match (a.cell, bias) {
            (_, None) => (vec![0.0; gu], None),
            (CellKind::Gru { reset_after: true }, Some(b)) => {
                (b[..gu].to_vec(), Some(b[gu..2 * gu].to_vec()))
            }
            (_, Some(b)) => (b[..gu].to_vec(), None),
        };
        let (recurrent, recurrent_h) = match a.cell {
            CellKind::Gru { reset_after: false } => split_recurrent(recurrent, u),
            _ => (recurrent.to_vec(), Vec::new()),
        };
        let columns = |m: &[f32]| m.len().checked_div(u).unwrap_or(0);
        let mut stacked = None;
        pack_stacked(a, kernel, &recurrent, &mut stacked);
        RnnWeights {
            stacked,
            kernel: FixedRhs::new(a.input_dim, gu, kernel),
            recurrent: FixedRhs::new(u, columns(&recurrent), &recurrent),
            recurrent_h: FixedRhs::new(u, columns(&recurrent_h), &recurrent_h),
            bias_in,
            bias_rec,
        }
    }
}

/// One share's rows of every step of a step-major array (`t` blocks of `block` elements,
/// each the rows of one step, as the tape and the per-step gradients are laid out):
/// `rows[s]` is the share's rows of step `s`.
#[derive(Debug)]
pub(crate) enum StepRows<'a, T> {
    /// The whole batch (a single share): step `s` is `data[s * block..][..block]`, and no
    /// list is built (a warm training step allocates nothing).
    Whole { data: &'a mut [T], block: usize },
    /// Part of the batch: one slice per step.
    Part(Vec<&'a mut [T]>),
}

impl<T> Default for StepRows<'_, T> {
    fn default() -> Self {
        StepRows::Part(Vec::new())
    }
}

impl<T> StepRows<'_, T> {
    /// The share's rows of step `s`, if the array has that step.
    pub(crate) fn get_mut(&mut self, s: usize) -> Option<&mut [T]> {
        match self {
            StepRows::Whole { data, block } => {
                let start = s.checked_mul(*block)?;
                data.get_mut(start..start.checked_add(*block)?)
            }
            StepRows::Part(rows) => rows.get_mut(s).map(|r| &mut **r),
        }
    }
}

impl<T> std::ops::Index<usize> for StepRows<'_, T> {
    type Output = [T];
    fn index(&self, s: usize) -> &[T] {
        match self {
            StepRows::Whole { data, block } => &data[s * block..][..*block],
            StepRows::Part(rows) => rows[s],
        }
    }
}

impl<T> std::ops::IndexMut<usize> for StepRows<'_, T> {
    fn index_mut(&mut self, s: usize) -> &mut [T] {
        self.get_mut(s).expect("a step of the array")
    }
}

/// Splits `steps` (`t` blocks of `block` elements) into the batch shares' rows: share `i`
/// gets `t` slices of `share` elements (fewer in the last share), in step order. Empty when
/// `steps` is. A single share (`share >= block`) takes the array whole, without a list.
pub(crate) fn step_rows<T>(steps: &mut [T], t: usize, block: usize, share: usize) -> Shares<StepRows<'_, T>> {
    if block == 0 || share == 0 || steps.is_empty() {
        return Shares::Many(Vec::new().into_iter());
    }
    if share >= block {
        let len = (t * block).min(steps.len());
        return Shares::One(Some(StepRows::Whole { data: &mut steps[..len], block }));
    }
    let mut out: Vec<Vec<&mut [T]>> = Vec::new();
    for step in steps.chunks_mut(block).take(t) {
        for (i, rows) in step.chunks_mut(share).enumerate() {
            if out.len() <= i {
                out.push(Vec::with_capacity(t));
            }
            out[i].push(rows);
        }
    }
    Shares::Many(out.into_iter().map(StepRows::Part).collect::<Vec<_>>().into_iter())
}

/// The shares of a batch, one after another: a single one needs no list.
pub(crate) enum Shares<T> {
    /// One share (or none left).
    One(Option<T>),
    /// Several.
    Many(std::vec::IntoIter<T>),
}

impl<T> Iterator for Shares<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        match self {
            Shares::One(one) => one.take(),
            Shares::Many(many) => many.next(),
        }
    }
}

/// A GRU recurrent kernel `[U, 3U]` split into its z and r blocks `[U, 2U]` and its
/// candidate block `[U, U]` (without `reset_after`, `r` multiplies `h` before the candidate
/// block does).
pub(crate) fn split_recurrent(r: &[f32], u: usize) -> (Vec<f32>, Vec<f32>) {
    // From the training pool (a trainer splits the kernel at every step).
    let (mut zr, mut h) = (pool::with_room(u * 2 * u), pool::with_room(u * u));
    for row in r.chunks(3 * u) {
        zr.extend_from_slice(&row[..2 * u]);
        h.extend_from_slice(&row[2 * u..]);
    }
    (zr, h)
}

/// What the forward pass of a training step keeps for the backward pass, recorded by
/// [`forward_into`] through a [`Recording`]. Per processing step `s` (rows of the batch
/// within): the states before the step, the recurrent projection, which rows were real and
/// (LSTM) the cell state after the step; once: the input and its projection. The backward
/// pass recomputes the gate activations from these.
#[derive(Debug)]
pub struct RnnTape {
    pub(crate) a: RnnAttrs,
    /// Batch, steps, input features.
    pub(crate) dims: (usize, usize, usize),
    /// Masked steps output zeros (inside Bidirectional) instead of repeating the last output.
    pub(crate) zero_masked: bool,
    /// The input (after input dropout) in processing order, `[T][B][D]`: step `s`'s rows
    /// side by side, as the gradients of the steps are, so that the kernel's gradient is one
    /// product over all of them.
    pub(crate) x: Vec<f32>,
    /// Its projection with the input bias, `[B·T, G·U]` (row `b·T + t`, input order).
    pub(crate) xp: Vec<f32>,
    /// `[T][B][G·U]`: the recurrent product of the step (GRU `reset_after`: with the
    /// recurrent bias; GRU without: the z and r blocks, then the candidate's product
    /// `(r·h)·R_h`).
    pub(crate) rec: Vec<f32>,
    /// `[T][B][U]` the `h` before each step.
    pub(crate) h_prev: Vec<f32>,
    /// `[T][B][U]` the `c` before each step (LSTM).
    pub(crate) c_prev: Vec<f32>,
    /// `[T][B][U]` the `c` after each step (LSTM).
    pub(crate) c_new: Vec<f32>,
    /// `[T][B]` whether the row's step was real.
    pub(crate) live: Vec<bool>,
    /// Recurrent dropout's keep mask `[B·U]`.
    pub(crate) rec_mask: Option<Vec<f32>>,
    /// LSTM with Keras's default activations: `[T][B][4U]` the activated gates and
    /// `[T][B][U]` `tanh(c_new)`, written by the fused cell as it runs (else recomputed by
    /// the backward pass from the rest of the tape).
    pub(crate) gates: Option<(Vec<f32>, Vec<f32>)>,
}

impl RnnTape {
    /// A tape sized for `dims = (batch, steps, features)`.
    pub fn new(
        a: &RnnAttrs,
        dims: (usize, usize, usize),
        zero_masked: bool,
        rec_mask: Option<Vec<f32>>,
    ) -> Self {
        let (b, t, _) = dims;
        let u = a.units;
        let gu = a.cell.gates() * u;
        let lstm = a.cell == CellKind::Lstm;
        let fused_lstm = lstm
            && a.activation == seqmodel_ir::Activation::Tanh
            && a.recurrent_activation == seqmodel_ir::Activation::Sigmoid;
        RnnTape {
            a: *a,
            dims,
            zero_masked,
            x: Vec::new(),
            xp: Vec::new(),
            // Every step writes its whole block of each (see `forward::recur`). The fused
            // LSTM cell records its activated gates, from which the backward pass works, so
            // it needs neither the recurrent products nor the input projection.
            rec: if fused_lstm { Vec::new() } else { pool::overwritten(t * b * gu) },
            h_prev: pool::overwritten(t * b * u),
            c_prev: if lstm { pool::overwritten(t * b * u) } else { Vec::new() },
            c_new: if lstm { pool::overwritten(t * b * u) } else { Vec::new() },
            live: pool::filled(t * b, true),
            rec_mask,
            gates: fused_lstm.then(|| (pool::overwritten(t * b * gu), pool::overwritten(t * b * u))),
        }
    }

    /// Whether the backward pass reads the recurrent products and the input projection
    /// (it does unless the cell recorded its activated gates).
    pub(crate) fn needs_products(&self) -> bool {
        self.gates.is_none()
    }
}

impl Drop for RnnTape {
    /// Gives the tape's arrays back to the training pool for the next step.
    fn drop(&mut self) {
        for v in
            [&mut self.x, &mut self.xp, &mut self.rec, &mut self.h_prev, &mut self.c_prev, &mut self.c_new]
        {
            pool::recycle(std::mem::take(v));
        }
        if let Some((gates, c_act)) = self.gates.take() {
            pool::recycle(gates);
            pool::recycle(c_act);
        }
        pool::recycle(std::mem::take(&mut self.live));
        if let Some(mask) = self.rec_mask.take() {
            pool::recycle(mask);
        }
    }
}

/// [`backward`] for the layer whose weights are `specs` (Keras's order: kernel, recurrent
/// kernel, bias): reads them from `store` and adds their gradients to `wg`. `d_main` is the
/// gradient of the main output (sequence in processing order, or last step), `d_states`
/// those of the returned final states; the input's gradient is computed only with
/// `input_grad`.
#[allow(clippy::too_many_arguments)] // the layer's full context, passed explicitly
pub(crate) fn backward_to(
    tape: &RnnTape,
    a: &RnnAttrs,
    store: &crate::WeightStore,
    specs: &[seqmodel_ir::WeightSpec],
    d_main: Option<&ndarray::ArrayD<f32>>,
    d_states: &[Option<Vec<f32>>],
    input_grad: bool,
    wg: &mut super::GradMap,
) -> crate::Result<RnnGrads> {
    let w = |i: usize| match specs.get(i) {
        Some(s) => crate::exec::weight(store, &s.key),
        None => Err(crate::RuntimeError::Shape(format!("recurrent layer weight {i} is missing"))),
    };
    let prm =
        RnnParams { kernel: w(0)?, recurrent: w(1)?, bias: if a.use_bias { Some(w(2)?) } else { None } };
    let main = d_main.map(|g| g.as_standard_layout());
    let main = main.as_ref().map(|g| g.as_slice().expect("standard layout"));
    let (d_seq, d_last) = if a.return_sequences { (main, None) } else { (None, main) };
    let mut g = backward(tape, &prm, d_seq, d_last, d_states, input_grad);
    let grads =
        [std::mem::take(&mut g.dkernel), std::mem::take(&mut g.drecurrent), std::mem::take(&mut g.dbias)];
    for (spec, grad) in specs.iter().zip(grads) {
        wg.add(&spec.key, &spec.shape, grad);
    }
    Ok(g)
}
