//! Dense, Embedding and Masking: forward passes into reusable buffers and backward passes.

use ndarray::{Array2, ArrayD, ArrayViewD, Axis};
use seqmodel_ir::Activation;

use crate::error::{Result, RuntimeError};
use crate::kernels::{FixedRhs, Start, activation, matmul_transposed_a, matmul_transposed_b};
use crate::pool;

/// `Dense` over the last axis, `act(x · W + b)`, writing into `out` (`rows × units`,
/// row-major), with the kernel packed at load time.
pub fn dense_into(
    x: ArrayViewD<'_, f32>,
    kernel: &FixedRhs,
    bias: Option<&[f32]>,
    units: usize,
    act: Activation,
    out: &mut [f32],
) {
    let d = *x.shape().last().unwrap_or(&1);
    let rows = x.len() / d.max(1);
    let x = x.as_standard_layout();
    // The bias is added as the product's tiles are stored: one pass over the output.
    dense_rows(x.as_slice().expect("standard layout"), rows, kernel, bias, units, act, out);
}

/// [`dense_into`] on `rows` row-major rows `xs` (what generated code calls on its own
/// buffers).
pub fn dense_rows(
    xs: &[f32],
    rows: usize,
    kernel: &FixedRhs,
    bias: Option<&[f32]>,
    units: usize,
    act: Activation,
    out: &mut [f32],
) {
    let start = bias.map_or(Start::Zero, Start::Bias);
    match act {
        Activation::Linear => kernel.product_from(rows, xs, out, start),
        act => kernel.product_then(rows, xs, out, start, &|block| activation::apply(act, block, units)),
    }
}

/// `Embedding`: gathers rows of `table` `[vocab, dim]` into `out` (`ids.len() × dim`); ids
/// out of range are an error.
pub fn embedding_into(ids: ArrayViewD<'_, i32>, table: &Array2<f32>, out: &mut [f32]) -> Result<()> {
    let (vocab, dim) = table.dim();
    for ((flat, &id), row) in ids.iter().enumerate().zip(out.chunks_mut(dim.max(1))) {
        if id < 0 || id as usize >= vocab {
            let idx: Vec<usize> = unravel(flat, ids.shape());
            return Err(RuntimeError::InvalidData(format!(
                "token id {id} at index {idx:?} is outside the Embedding's vocabulary 0..{vocab}"
            )));
        }
        for (o, v) in row.iter_mut().zip(table.row(id as usize)) {
            *o = *v;
        }
    }
    Ok(())
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (i, &s) in shape.iter().enumerate().rev() {
        idx[i] = flat % s.max(1);
        flat /= s.max(1);
    }
    idx
}

/// `Masking`: writes the mask `[B, T]` of steps not entirely equal to `value`, and the
/// input with masked steps zeroed (as Keras does) into `out` (shaped like `x`).
pub fn masking_into(x: ArrayViewD<'_, f32>, value: f32, out: &mut ArrayD<f32>, mask: &mut Array2<bool>) {
    out.assign(&x);
    let (b, t) = mask.dim();
    for bi in 0..b {
        for ti in 0..t {
            let step = x.index_axis(Axis(0), bi);
            let step = step.index_axis(Axis(0), ti);
            let live = step.iter().any(|v| *v != value);
            mask[[bi, ti]] = live;
            if !live {
                out.index_axis_mut(Axis(0), bi).index_axis_mut(Axis(0), ti).fill(0.0);
            }
        }
    }
}

/// Dense's backward pass for `rows` rows: from the input `x` `[rows, D]`, the kernel
/// `[D, U]` and the gradient before the activation `dpre` `[rows, U]`, the gradients of the
/// input, the kernel and (with `bias`) the bias.
pub(crate) fn dense_backward(
    x: &[f32],
    kernel: &[f32],
    dpre: &[f32],
    (d, u): (usize, usize),
    bias: bool,
) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let rows = x.len() / d.max(1);
    // Written whole by the product; pooled, as the trainer gives weight gradients back.
    let mut dk = pool::overwritten(d * u);
    matmul_transposed_a(d, rows, u, x, dpre, &mut dk, false);
    let db = bias.then(|| {
        let mut db = pool::zeros(u);
        for row in dpre.chunks(u) {
            for (b, v) in db.iter_mut().zip(row) {
                *b += v;
            }
        }
        db
    });
    // `dy · Wᵀ` reading the kernel as stored (its transpose was a copy per step: a 5 MB one
    // for lm-gru's output layer), into a buffer the product writes whole.
    let mut dx = pool::overwritten(rows * d);
    matmul_transposed_b(rows, u, d, dpre, kernel, &mut dx, false);
    (dx, dk, db)
}

/// Embedding's backward pass: the table's gradient `[vocab, dim]` from the output's `dy`
/// (row `r` for token `ids[r]`), the sum of each gathered slice's square, and with `abs` the
/// sum of each slice's absolute value (the sparse gradient's statistics, see
/// `optimizer::SparseSums`).
pub(crate) fn embedding_backward(
    ids: ArrayViewD<'_, i32>,
    dy: &[f32],
    (vocab, dim): (usize, usize),
    abs: bool,
) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    // Pooled: a fresh table-sized array faulted in its pages at every step.
    let mut dt = pool::zeros(vocab * dim);
    let mut sq = pool::zeros(vocab * dim);
    let mut abs_sum = abs.then(|| pool::zeros(vocab * dim));
    for (r, &id) in ids.iter().enumerate() {
        for j in 0..dim {
            let v = dy[r * dim + j];
            dt[id as usize * dim + j] += v;
            sq[id as usize * dim + j] += v * v;
            if let Some(a) = abs_sum.as_mut() {
                a[id as usize * dim + j] += v.abs();
            }
        }
    }
    (dt, sq, abs_sum)
}

/// Masking's backward pass: `dy` with the masked steps zeroed (their output was zeros).
pub(crate) fn masking_backward(mask: &Array2<bool>, mut dy: ArrayD<f32>) -> ArrayD<f32> {
    for ((b, t), live) in mask.indexed_iter() {
        if !live {
            dy.index_axis_mut(Axis(0), b).index_axis_mut(Axis(0), t).fill(0.0);
        }
    }
    dy
}
