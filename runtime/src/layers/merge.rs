//! The merge layers (`Concatenate`, `Add`, `Subtract`, `Divide`, `Multiply`, `Average`,
//! `Maximum`, `Minimum`; the element-wise ones broadcasting sizes of 1): their forward pass
//! into a reusable buffer and their backward pass.

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
    // Broadcast: along each axis every size is the output's or 1.
    let mut shape = first.to_vec();
    for x in &xs[1..] {
        let fits = x.ndim() == shape.len()
            && x.shape().iter().zip(&mut shape).all(|(a, s)| {
                if *s == 1 {
                    *s = *a;
                }
                *a == *s || *a == 1
            });
        if !fits {
            return Err(RuntimeError::Shape(format!(
                "{kind:?}: shapes {first:?} and {:?} do not broadcast",
                x.shape()
            )));
        }
    }
    Ok(shape)
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
            MergeKind::Divide => *out /= x,
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
/// output `y` (Maximum and Minimum pass it to the inputs that were the extreme); an input
/// that was broadcast gets the sum over the axes it was repeated along.
pub fn backward(
    kind: MergeKind,
    xs: &[ArrayViewD<'_, f32>],
    y: ArrayViewD<'_, f32>,
    dy: &ArrayD<f32>,
) -> Vec<ArrayD<f32>> {
    let k = xs.len() as f32;
    (0..xs.len())
        .map(|i| {
            let g = match kind {
                MergeKind::Add => dy.clone(),
                MergeKind::Average => dy / k,
                MergeKind::Subtract if i == 0 => dy.clone(),
                MergeKind::Subtract => -dy,
                MergeKind::Divide if i == 0 => dy / &xs[1],
                MergeKind::Divide => {
                    let mut g = dy.clone();
                    ndarray::Zip::from(&mut g).and_broadcast(&xs[0]).and_broadcast(&xs[1]).for_each(
                        |g, a, b| {
                            *g = -*g * a / (b * b);
                        },
                    );
                    g
                }
                MergeKind::Multiply => {
                    let mut g = dy.clone();
                    for (j, x) in xs.iter().enumerate() {
                        if j != i {
                            g *= x;
                        }
                    }
                    g
                }
                // As Keras's `maximum(maximum(a, b), c)` on TensorFlow: each element's
                // gradient goes to the first input holding the extreme.
                MergeKind::Maximum | MergeKind::Minimum => {
                    let mut g = dy.clone();
                    ndarray::Zip::from(&mut g).and_broadcast(&xs[i]).and(&y).for_each(|g, x, y| {
                        if x != y {
                            *g = 0.0
                        }
                    });
                    for earlier in &xs[..i] {
                        ndarray::Zip::from(&mut g).and_broadcast(earlier).and(&y).for_each(|g, x, y| {
                            if x == y {
                                *g = 0.0
                            }
                        });
                    }
                    g
                }
                MergeKind::Concatenate { axis } => {
                    let offset: usize = xs[..i].iter().map(|x| x.shape()[axis + 1]).sum();
                    let w = xs[i].shape()[axis + 1];
                    return dy.slice_axis(Axis(axis + 1), (offset..offset + w).into()).to_owned();
                }
            };
            summed_to(g, xs[i].shape())
        })
        .collect()
}

/// `g` summed over the axes where `shape` has 1 and `g` does not (the axes an input was
/// broadcast along), shaped `shape`.
fn summed_to(mut g: ArrayD<f32>, shape: &[usize]) -> ArrayD<f32> {
    for (axis, (&n, &m)) in shape.iter().zip(g.shape().to_vec().iter()).enumerate() {
        if n == 1 && m != 1 {
            g = g.sum_axis(Axis(axis)).insert_axis(Axis(axis));
        }
    }
    g
}
