//! Permute, Reshape and Flatten: the batch axis stays first, the values move.

use ndarray::{ArrayD, IxDyn};
use seqmodel_ir::{FlattenAttrs, PermuteAttrs, ReshapeAttrs};

use super::{Backward, Grads, Layer, Params};
use crate::error::{Result, RuntimeError};
use crate::exec::{Training, Value, ValueRef, f32_slot, set_mask};

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
        f32_slot(out, 0, p.shape()).assign(&p);
        out.truncate(1);
        set_mask(out, 0, None);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>) -> Result<Grads> {
        let axes = axes(self);
        let mut inverse = vec![0; axes.len()];
        for (i, a) in axes.iter().enumerate() {
            inverse[*a] = i;
        }
        let dx = bw.dys[0].view().permuted_axes(IxDyn(&inverse)).as_standard_layout().to_owned();
        Ok(Grads { dxs: vec![Some(dx)], ..Grads::default() })
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
        let y = f32_slot(out, 0, &shape);
        y.as_slice_mut().expect("standard layout").iter_mut().zip(x.iter()).for_each(|(d, v)| *d = *v);
        out.truncate(1);
        set_mask(out, 0, None);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>) -> Result<Grads> {
        let dx = reshaped(&bw.dys[0], bw.xs[0].t.shape());
        Ok(Grads { dxs: vec![Some(dx)], ..Grads::default() })
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
        let y = f32_slot(out, 0, &[b, x.len() / b.max(1)]);
        y.as_slice_mut().expect("standard layout").iter_mut().zip(x.iter()).for_each(|(d, v)| *d = *v);
        out.truncate(1);
        set_mask(out, 0, None);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>) -> Result<Grads> {
        let dx = reshaped(&bw.dys[0], bw.xs[0].t.shape());
        Ok(Grads { dxs: vec![Some(dx)], ..Grads::default() })
    }
}
