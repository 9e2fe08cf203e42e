//! The operations Keras 3 records between layers (slicing on any axis, reductions, `Stack`,
//! comparisons and logic, `Cast`, `ExpandDims`) and a call's `mask=` (`SetMask`). As in
//! Keras, none of them passes a mask on (`SetMask` sets or removes one). Booleans are floats
//! 0 and 1; comparisons and logic have no gradient.

use ndarray::{ArrayD, ArrayViewD, Axis, Slice};
use seqmodel_ir::{
    CastAttrs, CompareAttrs, DType, ExpandDimsAttrs, LogicalAttrs, LogicalKind, ReduceAttrs, ReduceKind,
    SetMaskAttrs, SliceAttrs, StackAttrs,
};

use super::{Backward, Grads, Layer, Params};
use crate::error::{Result, RuntimeError};
use crate::exec::{Training, Value, ValueRef, f32_slot, set_mask};
use crate::tensor::TensorView;

/// Writes `ys` (any layout, read in row-major order) as the single unmasked output shaped
/// `shape`.
fn write_out(out: &mut Vec<Value>, shape: &[usize], ys: impl Iterator<Item = f32>) -> Result<()> {
    let y = f32_slot(out, 0, shape)?;
    y.as_slice_mut().expect("standard layout").iter_mut().zip(ys).for_each(|(d, v)| *d = v);
    out.truncate(1);
    set_mask(out, 0, None);
    Ok(())
}

/// The ndarray slice of `(first, count, step)` along one axis (count ≥ 1).
fn axis_slice((first, count, step): (usize, usize, i64)) -> Slice {
    let last = first as i64 + (count as i64 - 1) * step;
    let (lo, hi) = if step > 0 { (first as i64, last) } else { (last, first as i64) };
    Slice::new(lo as isize, Some(hi as isize + 1), step as isize)
}

/// What `a` selects of `shape` (batch first): the output shape (batch first) and each
/// axis's slice, or the error of an index out of range or an empty selection.
fn slice_plan(a: &SliceAttrs, layer: &str, shape: &[usize]) -> Result<(Vec<usize>, Vec<Slice>)> {
    let bad = |what: &str| {
        RuntimeError::Shape(format!("layer `{layer}`: the index {what} of an input shaped {shape:?}"))
    };
    if shape.len() != a.rank + 1 {
        return Err(bad("does not fit the rank"));
    }
    let (dims, walk) = a.plan(&shape[1..]).ok_or_else(|| bad("is out of range"))?;
    if walk.iter().any(|w| w.1 == 0) {
        return Err(bad("selects nothing"));
    }
    let out = std::iter::once(shape[0]).chain(dims).collect();
    let slices = std::iter::once(Slice::from(..)).chain(walk.into_iter().map(axis_slice)).collect();
    Ok((out, slices))
}

impl Layer for SliceAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let (shape, slices) = slice_plan(self, layer, x.shape())?;
        let v = x.slice_each_axis(|ax| slices[ax.axis.index()]);
        write_out(out, &shape, v.iter().copied())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let x = bw.x(0)?;
        let (_, slices) = slice_plan(self, bw.layer, x.shape())?;
        let mut dx = ArrayD::zeros(x.raw_dim());
        let mut view = dx.slice_each_axis_mut(|ax| slices[ax.axis.index()]);
        view.iter_mut().zip(bw.dys[0].iter()).for_each(|(d, g)| *d = *g);
        g.dxs.push(Some(dx));
        Ok(())
    }
}

/// `y` with the reduced axis back (size 1), to broadcast against the input.
fn with_axis<'a>(a: &ReduceAttrs, y: ArrayViewD<'a, f32>) -> ArrayViewD<'a, f32> {
    if a.keepdims { y } else { y.insert_axis(Axis(a.axis + 1)) }
}

impl Layer for ReduceAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let ax = Axis(self.axis + 1);
        if x.ndim() <= ax.index() || x.len_of(ax) == 0 {
            return Err(RuntimeError::Shape(format!(
                "layer `{layer}` reduces axis {} of an input shaped {:?}",
                ax.index(),
                x.shape()
            )));
        }
        let n = x.len_of(ax) as f32;
        let truth = |v: f32| v != 0.0;
        let y = match self.kind {
            ReduceKind::Sum => x.sum_axis(ax),
            ReduceKind::Mean => x.sum_axis(ax) / n,
            ReduceKind::Max => x.fold_axis(ax, f32::NEG_INFINITY, |a, v| a.max(*v)),
            ReduceKind::Min => x.fold_axis(ax, f32::INFINITY, |a, v| a.min(*v)),
            ReduceKind::Any => x.fold_axis(ax, 0.0, |a, v| if *a != 0.0 || truth(*v) { 1.0 } else { 0.0 }),
            ReduceKind::All => x.fold_axis(ax, 1.0, |a, v| if *a != 0.0 && truth(*v) { 1.0 } else { 0.0 }),
        };
        let y = if self.keepdims { y.insert_axis(ax) } else { y };
        write_out(out, y.shape(), y.iter().copied())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let x = bw.x(0)?;
        let ax = Axis(self.axis + 1);
        let n = x.len_of(ax) as f32;
        let dy = with_axis(self, bw.dys[0].view());
        let dx = match self.kind {
            ReduceKind::Any | ReduceKind::All => {
                return {
                    g.dxs.push(None);
                    Ok(())
                };
            }
            ReduceKind::Sum => dy.broadcast(x.raw_dim()).expect("reduced shape").to_owned(),
            ReduceKind::Mean => dy.broadcast(x.raw_dim()).expect("reduced shape").mapv(|g| g / n),
            // As TensorFlow: the gradient is shared equally by every element equal to the
            // extreme.
            ReduceKind::Max | ReduceKind::Min => {
                let y = with_axis(self, bw.ys[0].t.as_f32().expect("float output").view());
                let mut hit = ArrayD::zeros(x.raw_dim());
                ndarray::Zip::from(&mut hit)
                    .and(x)
                    .and_broadcast(&y)
                    .for_each(|h, x, y| *h = if x == y { 1.0 } else { 0.0 });
                let count = hit.sum_axis(ax).insert_axis(ax);
                ndarray::Zip::from(&mut hit)
                    .and_broadcast(&count)
                    .and_broadcast(&dy)
                    .for_each(|h, c, g| *h = *h / c * g);
                hit
            }
        };
        g.dxs.push(Some(dx));
        Ok(())
    }
}

impl Layer for StackAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let xs: Vec<ArrayViewD<'_, f32>> = ins.iter().map(|v| v.f32()).collect::<Result<_>>()?;
        let y = ndarray::stack(Axis(self.axis + 1), &xs).map_err(|e| {
            RuntimeError::Shape(format!("layer `{layer}` stacks tensors of different shapes: {e}"))
        })?;
        write_out(out, y.shape(), y.iter().copied())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let dy = &bw.dys[0];
        g.dxs.extend((0..bw.xs.len()).map(|i| Some(dy.index_axis(Axis(self.axis + 1), i).to_owned())));
        Ok(())
    }
}

/// A value read as a truth (booleans are 0 and 1; any non-zero number is true).
fn truth(v: f32) -> bool {
    v != 0.0
}

fn flag(b: bool) -> f32 {
    if b { 1.0 } else { 0.0 }
}

/// Input `i`'s values as floats in row-major order (integer ids converted).
fn values<'a>(v: &'a ValueRef<'_>) -> Box<dyn Iterator<Item = f32> + 'a> {
    match &v.t {
        TensorView::F32(a) => Box::new(a.iter().copied()),
        TensorView::I32(a) => Box::new(a.iter().map(|i| *i as f32)),
    }
}

/// Every input's shape equal to the first's, or an error.
fn same_shapes(layer: &str, ins: &[ValueRef<'_>]) -> Result<Vec<usize>> {
    let first = ins[0].t.shape().to_vec();
    match ins.iter().find(|v| v.t.shape() != first) {
        Some(v) => Err(RuntimeError::Shape(format!(
            "layer `{layer}`: inputs shaped {first:?} and {:?}",
            v.t.shape()
        ))),
        None => Ok(first),
    }
}

/// No gradient to any input.
fn no_grads(bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
    g.dxs.extend(std::iter::repeat_n(None, bw.xs.len()));
    Ok(())
}

impl Layer for CompareAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let shape = same_shapes(layer, ins)?;
        match (self.value, ins) {
            (Some(c), [x]) => write_out(out, &shape, values(x).map(|v| flag(self.kind.holds(v, c)))),
            (None, [a, b]) => {
                write_out(out, &shape, values(a).zip(values(b)).map(|(a, b)| flag(self.kind.holds(a, b))))
            }
            _ => Err(RuntimeError::Shape(format!("layer `{layer}` got {} inputs", ins.len()))),
        }
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        no_grads(bw, g)
    }
}

impl Layer for LogicalAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let shape = same_shapes(layer, ins)?;
        match (self.kind, ins) {
            (LogicalKind::Not, [x]) => write_out(out, &shape, values(x).map(|v| flag(!truth(v)))),
            (kind, [a, b]) => {
                let op = |a: bool, b: bool| match kind {
                    LogicalKind::And => a && b,
                    LogicalKind::Or => a || b,
                    _ => a != b,
                };
                write_out(out, &shape, values(a).zip(values(b)).map(|(a, b)| flag(op(truth(a), truth(b)))))
            }
            _ => Err(RuntimeError::Shape(format!("layer `{layer}` got {} inputs", ins.len()))),
        }
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        no_grads(bw, g)
    }
}

impl Layer for CastAttrs {
    fn forward(
        &self,
        _: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let shape = ins[0].t.shape().to_vec();
        match self.to {
            DType::Bool => write_out(out, &shape, values(&ins[0]).map(|v| flag(truth(v)))),
            _ => write_out(out, &shape, values(&ins[0])),
        }
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        match (self.from, self.to) {
            (DType::F32, DType::F32) => {
                g.dxs.push(Some(bw.dys[0].clone().into_owned()));
                Ok(())
            }
            _ => no_grads(bw, g),
        }
    }
}

impl Layer for ExpandDimsAttrs {
    fn forward(
        &self,
        _: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let y = x.view().insert_axis(Axis(self.axis + 1));
        write_out(out, y.shape(), x.iter().copied())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let dx = bw.dys[0].index_axis(Axis(self.axis + 1), 0).to_owned();
        g.dxs.push(Some(dx));
        Ok(())
    }
}

impl Layer for SetMaskAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let y = f32_slot(out, 0, x.shape())?;
        y.assign(&x);
        out.truncate(1);
        if !self.given {
            set_mask(out, 0, None);
            return Ok(());
        }
        let m = ins[1].f32()?;
        let (b, t) = (x.shape()[0], x.shape().get(1).copied().unwrap_or(0));
        if m.shape() != [b, t] {
            return Err(RuntimeError::Shape(format!(
                "layer `{layer}`: the mask is shaped {:?}, the input {:?} needs [{b}, {t}]",
                m.shape(),
                x.shape()
            )));
        }
        let mask = m.mapv(truth).into_dimensionality::<ndarray::Ix2>().expect("two axes");
        set_mask(out, 0, Some(mask.view()));
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let mut dxs = vec![Some(bw.dys[0].clone().into_owned())];
        dxs.resize(bw.xs.len(), None);
        g.dxs.extend(dxs);
        Ok(())
    }
}
