//! The merge layers (`Concatenate`, `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`,
//! `Minimum`) over tensors of one shape: their forward pass into a reusable buffer and their
//! backward pass.

use ndarray::{ArrayD, ArrayViewD, Axis, Slice};
use seqmodel_ir::MergeKind;

use crate::error::{Result, RuntimeError};

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

/// The gradient of each input from the output's gradient `dy`, the inputs `xs` and the
/// output `y` (Maximum and Minimum pass it to the inputs that were the extreme).
pub fn backward(
    kind: MergeKind,
    xs: &[ArrayViewD<'_, f32>],
    y: ArrayViewD<'_, f32>,
    dy: &ArrayD<f32>,
) -> Vec<ArrayD<f32>> {
    let k = xs.len() as f32;
    (0..xs.len())
        .map(|i| match kind {
            MergeKind::Add => dy.clone(),
            MergeKind::Average => dy / k,
            MergeKind::Subtract if i == 0 => dy.clone(),
            MergeKind::Subtract => -dy,
            MergeKind::Multiply => {
                let mut g = dy.clone();
                for (j, x) in xs.iter().enumerate() {
                    if j != i {
                        g *= x;
                    }
                }
                g
            }
            MergeKind::Maximum | MergeKind::Minimum => {
                let mut g = dy.clone();
                ndarray::Zip::from(&mut g).and(&xs[i]).and(&y).for_each(|g, x, y| {
                    if x != y {
                        *g = 0.0
                    }
                });
                g
            }
            MergeKind::Concatenate { axis } => {
                let offset: usize = xs[..i].iter().map(|x| x.shape()[axis + 1]).sum();
                let w = xs[i].shape()[axis + 1];
                dy.slice_axis(Axis(axis + 1), (offset..offset + w).into()).to_owned()
            }
        })
        .collect()
}
