//! Permute, Reshape and Flatten: the batch axis stays first, the values move.

use ndarray::{ArrayD, IxDyn};
use seqmodel_ir::{FlattenAttrs, PermuteAttrs, ReshapeAttrs, UpSamplingAttrs};

use super::{Backward, Grads, Layer, Params};
use crate::error::{Result, RuntimeError};
use crate::exec::{Training, Value, ValueRef, f32_slot, set_mask};

/// Writes `x`'s values in row-major order as the single, unmasked output of `shape`.
fn copy_as(x: &ndarray::ArrayViewD<'_, f32>, shape: &[usize], out: &mut Vec<Value>) -> Result<()> {
    let y = f32_slot(out, 0, shape)?;
    y.as_slice_mut().expect("standard layout").iter_mut().zip(x.iter()).for_each(|(d, v)| *d = *v);
    out.truncate(1);
    set_mask(out, 0, None);
    Ok(())
}

/// `x` (any layout) reshaped to `shape` in row-major order.
fn reshaped(x: &ArrayD<f32>, shape: &[usize]) -> ArrayD<f32> {
    x.as_standard_layout().to_owned().into_shape_with_order(IxDyn(shape)).expect("sizes agree")
}

/// The permutation of every axis, the batch included.
fn axes(a: &PermuteAttrs) -> Vec<usize> {
    std::iter::once(0).chain(a.perm[..a.rank].iter().map(|a| a + 1)).collect()
}
impl Layer for PermuteAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        if x.ndim() != self.rank + 1 {
            return Err(RuntimeError::Shape(format!(
                "layer `{layer}` permutes {} axes, the input is {:?}",
                self.rank,
                x.shape()
            )));
        }
        let p = x.permuted_axes(IxDyn(&axes(self)));
        f32_slot(out, 0, p.shape())?.assign(&p);
        out.truncate(1);
        set_mask(out, 0, None);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let axes = axes(self);
        let mut inverse = vec![0; axes.len()];
        for (i, a) in axes.iter().enumerate() {
            inverse[*a] = i;
        }
        let dx = bw.dys[0].view().permuted_axes(IxDyn(&inverse)).as_standard_layout().to_owned();
        g.dxs.push(Some(dx));
        Ok(())
    }
}

impl Layer for ReshapeAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let b = x.shape()[0];
        let size = x.len() / b.max(1);
        let target = self.shape_for(size).ok_or_else(|| {
            RuntimeError::Shape(format!(
                "layer `{layer}` cannot reshape {:?} to {:?}",
                &x.shape()[1..],
                &self.target[..self.rank]
            ))
        })?;
        let shape: Vec<usize> = std::iter::once(b).chain(target).collect();
        copy_as(&x, &shape, out)?;
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let dx = reshaped(&bw.dys[0], bw.xs[0].t.shape());
        g.dxs.push(Some(dx));
        Ok(())
    }
}

impl Layer for FlattenAttrs {
    fn forward(
        &self,
        _: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let b = x.shape()[0];
        copy_as(&x, &[b, x.len() / b.max(1)], out)?;
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let dx = reshaped(&bw.dys[0], bw.xs[0].t.shape());
        g.dxs.push(Some(dx));
        Ok(())
    }
}

impl Layer for UpSamplingAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let &[b, t, c] = x.shape() else {
            return Err(RuntimeError::Shape(format!(
                "layer `{layer}` needs [batch, steps, channels], got {:?}",
                x.shape()
            )));
        };
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let y = f32_slot(out, 0, &[b, t * self.size, c])?;
        let ys = y.as_slice_mut().expect("standard layout");
        for (r, step) in xs.chunks(c.max(1)).enumerate() {
            for k in 0..self.size {
                ys[(r * self.size + k) * c..][..c].copy_from_slice(step);
            }
        }
        out.truncate(1);
        set_mask(out, 0, None);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let shape = bw.xs[0].t.shape().to_vec();
        let c = shape[2];
        let dy = bw.dys[0].as_standard_layout();
        let mut dx = vec![0.0f32; shape.iter().product()];
        for (r, d) in dx.chunks_mut(c.max(1)).enumerate() {
            for k in 0..self.size {
                for (a, g) in
                    d.iter_mut().zip(&dy.as_slice().expect("standard layout")[(r * self.size + k) * c..][..c])
                {
                    *a += g;
                }
            }
        }
        g.dxs.push(Some(ArrayD::from_shape_vec(IxDyn(&shape), dx).expect("shape")));
        Ok(())
    }
}
