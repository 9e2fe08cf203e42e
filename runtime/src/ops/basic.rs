//! Dense, Embedding, Masking and the merge layers.

use ndarray::{Array2, ArrayD, Axis, IxDyn};
use seqmodel_ir::{Activation, MergeKind};

use crate::error::{Result, RuntimeError};
use crate::kernels::{activation, matmul};

/// `Dense` over the last axis: `act(x · W + b)`.
pub fn dense(
    x: &ArrayD<f32>,
    kernel: &[f32],
    bias: Option<&[f32]>,
    units: usize,
    act: Activation,
) -> ArrayD<f32> {
    let d = *x.shape().last().unwrap_or(&1);
    let rows = x.len() / d.max(1);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let mut out = vec![0.0f32; rows * units];
    if let Some(b) = bias {
        for row in out.chunks_mut(units) {
            row.copy_from_slice(b);
        }
    }
    matmul(rows, d, units, xs, kernel, &mut out, bias.is_some());
    activation::apply(act, &mut out, units);
    let mut shape = x.shape().to_vec();
    if let Some(l) = shape.last_mut() {
        *l = units;
    }
    ArrayD::from_shape_vec(IxDyn(&shape), out).expect("dense output shape")
}

/// `Embedding`: gathers rows of `table` `[vocab, dim]`; ids out of range are an error.
pub fn embedding(ids: &ArrayD<i32>, table: &Array2<f32>) -> Result<ArrayD<f32>> {
    let (vocab, dim) = table.dim();
    let mut out = Vec::with_capacity(ids.len() * dim);
    for (flat, &id) in ids.iter().enumerate() {
        if id < 0 || id as usize >= vocab {
            let idx: Vec<usize> = unravel(flat, ids.shape());
            return Err(RuntimeError::InvalidData(format!(
                "token id {id} at index {idx:?} is outside the Embedding's vocabulary 0..{vocab}"
            )));
        }
        out.extend(table.row(id as usize).iter());
    }
    let mut shape = ids.shape().to_vec();
    shape.push(dim);
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out).expect("embedding output shape"))
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (i, &s) in shape.iter().enumerate().rev() {
        idx[i] = flat % s.max(1);
        flat /= s.max(1);
    }
    idx
}

/// `Masking`: the mask `[B, T]` of steps not entirely equal to `value`, and the input with
/// masked steps zeroed (as Keras does).
pub fn masking(x: &ArrayD<f32>, value: f32) -> (ArrayD<f32>, Array2<bool>) {
    let s = x.shape();
    let (b, t) = (s[0], s[1]);
    let mut mask = Array2::from_elem((b, t), false);
    let mut out = x.clone();
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
    (out, mask)
}

/// The merge layers over same-shaped inputs (Concatenate along `axis`, batch excluded).
pub fn merge(kind: MergeKind, xs: &[&ArrayD<f32>]) -> Result<ArrayD<f32>> {
    if let MergeKind::Concatenate { axis } = kind {
        let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
        return ndarray::concatenate(Axis(axis + 1), &views)
            .map_err(|e| RuntimeError::Shape(format!("Concatenate: {e}")));
    }
    for x in &xs[1..] {
        if x.shape() != xs[0].shape() {
            return Err(RuntimeError::Shape(format!(
                "{kind:?}: shapes {:?} and {:?} differ",
                xs[0].shape(),
                x.shape()
            )));
        }
    }
    let mut out = xs[0].clone();
    for x in &xs[1..] {
        match kind {
            MergeKind::Add | MergeKind::Average => out += *x,
            MergeKind::Subtract => out -= *x,
            MergeKind::Multiply => out *= *x,
            MergeKind::Maximum => out.zip_mut_with(x, |a, b| *a = a.max(*b)),
            MergeKind::Minimum => out.zip_mut_with(x, |a, b| *a = a.min(*b)),
            MergeKind::Concatenate { .. } => unreachable!(),
        }
    }
    if kind == MergeKind::Average {
        out /= xs.len() as f32;
    }
    Ok(out)
}
