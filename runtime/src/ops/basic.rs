//! Dense, Embedding, Masking and the merge layers.

use ndarray::{Array2, ArrayD, ArrayViewD, Axis, Slice};
use seqmodel_ir::{Activation, MergeKind};

use crate::error::{Result, RuntimeError};
use crate::kernels::{FixedRhs, Start, activation};

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
    dense_with(x, units, act, out, |rows, xs, out| {
        // The bias is added as the product's tiles are stored: one pass over the output.
        let start = bias.map_or(Start::Zero, Start::Bias);
        kernel.product_from(rows, xs, out, start)
    });
}

/// A Dense layer around `product(rows, x, out)`, which writes `x · kernel + bias` to `out`.
fn dense_with(
    x: ArrayViewD<'_, f32>,
    units: usize,
    act: Activation,
    out: &mut [f32],
    product: impl FnOnce(usize, &[f32], &mut [f32]),
) {
    let d = *x.shape().last().unwrap_or(&1);
    let rows = x.len() / d.max(1);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    product(rows, xs, out);
    activation::apply(act, out, units);
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

/// The output shape of a merge, or an error if the inputs do not fit together.
pub fn merge_shape(kind: MergeKind, xs: &[ArrayViewD<'_, f32>]) -> Result<Vec<usize>> {
    let first = xs[0].shape();
    if let MergeKind::Concatenate { axis } = kind {
        let axis = axis + 1;
        let mut shape = first.to_vec();
        shape[axis] = 0;
        for x in xs {
            let ok = x.ndim() == first.len()
                && x.shape().iter().zip(first).enumerate().all(|(i, (a, b))| i == axis || a == b);
            if !ok {
                return Err(RuntimeError::Shape(format!(
                    "Concatenate: shapes {first:?} and {:?} do not fit together along axis {}",
                    x.shape(),
                    axis - 1
                )));
            }
            shape[axis] += x.shape()[axis];
        }
        return Ok(shape);
    }
    for x in &xs[1..] {
        if x.shape() != first {
            return Err(RuntimeError::Shape(format!(
                "{kind:?}: shapes {first:?} and {:?} differ",
                x.shape()
            )));
        }
    }
    Ok(first.to_vec())
}

/// The merge written into `out`, shaped by [`merge_shape`].
pub fn merge_into(kind: MergeKind, xs: &[ArrayViewD<'_, f32>], out: &mut ArrayD<f32>) {
    if let MergeKind::Concatenate { axis } = kind {
        let mut at = 0;
        for x in xs {
            let n = x.shape()[axis + 1];
            out.slice_axis_mut(Axis(axis + 1), Slice::from(at..at + n)).assign(x);
            at += n;
        }
        return;
    }
    out.assign(&xs[0]);
    for x in &xs[1..] {
        match kind {
            MergeKind::Add | MergeKind::Average => *out += x,
            MergeKind::Subtract => *out -= x,
            MergeKind::Multiply => *out *= x,
            MergeKind::Maximum => out.zip_mut_with(x, |a, b| *a = a.max(*b)),
            MergeKind::Minimum => out.zip_mut_with(x, |a, b| *a = a.min(*b)),
            MergeKind::Concatenate { .. } => unreachable!("handled above"),
        }
    }
    if kind == MergeKind::Average {
        *out /= xs.len() as f32;
    }
}
