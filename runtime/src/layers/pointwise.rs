//! The activation layers with parameters (LeakyReLU, ELU, ReLU, Softmax) and PReLU, whose
//! slopes are weights.

use ndarray::{ArrayD, Axis, IxDyn};
use seqmodel_ir::{Activation, ActivationLayer, MAX_RANK, ParamActivation, PreluAttrs, RescalingAttrs};

use super::{Backward, Grads, Layer, Params};
use crate::error::{Result, RuntimeError};
use crate::exec::{Training, Value, ValueRef, contiguous, f32_slot, set_mask};
use crate::kernels::activation;

/// The function at `x` and its derivative, as Keras computes it (ReLU as
/// `keras.activations.relu`: the part above the threshold clipped to `max_value`, minus
/// the slope times the part below).
fn value_and_slope(l: &ActivationLayer, x: f32) -> (f32, f32) {
    let a = l.alpha;
    match l.kind {
        ParamActivation::LeakyRelu => {
            if x > 0.0 {
                (x, 1.0)
            } else {
                (a * x, a)
            }
        }
        ParamActivation::Elu => {
            if x > 0.0 {
                (x, 1.0)
            } else {
                let e = x.exp();
                (a * (e - 1.0), a * e)
            }
        }
        ParamActivation::Relu => {
            let th = l.threshold;
            let above = if th != 0.0 { x > th } else { x > 0.0 };
            let pos = if above { x } else { 0.0 };
            let (pos, dpos) = match l.max_value {
                Some(m) if pos > m => (m, 0.0),
                _ if pos < 0.0 => (0.0, 0.0),
                _ => (pos, if above { 1.0 } else { 0.0 }),
            };
            let below = th - x > 0.0;
            (pos - a * if below { th - x } else { 0.0 }, dpos + if below { a } else { 0.0 })
        }
        ParamActivation::Softmax => unreachable!("softmax is applied per row"),
    }
}
impl Layer for ActivationLayer {
    fn forward(
        &self,
        _: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let y = f32_slot(out, 0, x.shape())?;
        y.assign(&x);
        let width = *x.shape().last().unwrap_or(&1);
        match (self.kind, self.axis) {
            (ParamActivation::Softmax, Some(axis)) => softmax_along(y, axis + 1),
            (ParamActivation::Softmax, None) => activation::apply(Activation::Softmax, contiguous(y), width),
            _ => contiguous(y).iter_mut().for_each(|v| *v = value_and_slope(self, *v).0),
        }
        out.truncate(1);
        set_mask(out, 0, ins[0].mask);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let dy = bw.dys[0].as_standard_layout();
        let dx = match self.kind {
            ParamActivation::Softmax if self.axis.is_some() => {
                let y = bw.ys[0].t.as_f32().expect("float output");
                let mut dx = dy.to_owned();
                softmax_backward_along(y, &mut dx, self.axis.unwrap_or(0) + 1);
                dx
            }
            ParamActivation::Softmax => {
                let y = bw.ys[0].t.as_f32().expect("float output").as_standard_layout();
                let width = *y.shape().last().unwrap_or(&1);
                let mut dx = ArrayD::zeros(y.raw_dim());
                activation::backward(
                    Activation::Softmax,
                    None,
                    y.as_slice().expect("standard layout"),
                    dy.as_slice().expect("standard layout"),
                    dx.as_slice_mut().expect("fresh"),
                    width,
                );
                dx
            }
            _ => {
                let x = bw.x(0)?.as_standard_layout();
                let mut dx = dy.to_owned();
                dx.zip_mut_with(&x, |d, x| *d *= value_and_slope(self, *x).1);
                dx
            }
        };
        g.dxs.push(Some(dx));
        Ok(())
    }
}

/// Softmax in place along `axis` of `y` (batch first), not the last: each lane's values
/// minus its largest, exponentiated, over their sum (as the row kernel computes it).
fn softmax_along(y: &mut ArrayD<f32>, axis: usize) {
    for mut lane in y.lanes_mut(Axis(axis)) {
        let max = lane.fold(f32::NEG_INFINITY, |m, v| m.max(*v));
        lane.mapv_inplace(|v| (v - max).exp());
        let sum: f32 = lane.sum();
        lane.mapv_inplace(|v| v / sum);
    }
}

/// The gradient of [`softmax_along`]: `dy` (in `d`, overwritten with `dx`) through the
/// softmax output `y`, `dx = y (dy - Σ dy y)` along `axis`.
fn softmax_backward_along(y: &ArrayD<f32>, d: &mut ArrayD<f32>, axis: usize) {
    for (mut g, y) in d.lanes_mut(Axis(axis)).into_iter().zip(y.lanes(Axis(axis))) {
        let dot: f32 = g.iter().zip(y.iter()).map(|(g, y)| g * y).sum();
        g.zip_mut_with(&y, |g, y| *g = y * (*g - dot));
    }
}

/// For each value of one item (row-major over the non-batch axes), the index of its slope.
fn slope_index(a: &PreluAttrs, shape: &[usize]) -> Vec<usize> {
    let a = &a.alpha_shape[..a.rank.min(MAX_RANK)];
    let n: usize = shape.iter().product();
    (0..n)
        .map(|mut flat| {
            let (mut idx, mut stride) = (0, 1);
            for (dim, adim) in shape.iter().zip(a).rev() {
                let i = flat % dim;
                flat /= dim;
                idx += if *adim == 1 { 0 } else { i } * stride;
                stride *= adim;
            }
            idx
        })
        .collect()
}

fn check(a: &PreluAttrs, layer: &str, shape: &[usize]) -> Result<()> {
    let a = &a.alpha_shape[..a.rank.min(MAX_RANK)];
    let ok = shape.len() == a.len() + 1 && shape[1..].iter().zip(a).all(|(s, a)| a == s || *a == 1);
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::Shape(format!("layer `{layer}` has slopes {a:?}, the input is {shape:?}")))
    }
}
impl Layer for PreluAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        params: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        check(self, layer, x.shape())?;
        let index = slope_index(self, &x.shape()[1..]);
        let alpha = &params.vecs[0];
        let y = f32_slot(out, 0, x.shape())?;
        let y = contiguous(y);
        for ((d, v), i) in y.iter_mut().zip(x.iter()).zip(index.iter().cycle()) {
            *d = v.max(0.0) + alpha[*i] * v.min(0.0);
        }
        out.truncate(1);
        set_mask(out, 0, ins[0].mask);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let x = bw.x(0)?;
        let index = slope_index(self, &x.shape()[1..]);
        let alpha = bw.weights[0];
        let dy = bw.dys[0].as_standard_layout();
        let mut da = vec![0.0f32; alpha.len()];
        let mut dx = Vec::with_capacity(x.len());
        for ((v, g), i) in x.iter().zip(dy.iter()).zip(index.iter().cycle()) {
            if *v > 0.0 {
                dx.push(*g);
            } else {
                dx.push(g * alpha[*i]);
                da[*i] += g * v;
            }
        }
        let dx = ArrayD::from_shape_vec(IxDyn(x.shape()), dx).expect("shape");
        g.dxs.push(Some(dx));
        g.dws.push(Some(da));
        Ok(())
    }
}

impl Layer for RescalingAttrs {
    fn forward(
        &self,
        _: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let y = f32_slot(out, 0, x.shape())?;
        y.zip_mut_with(&x, |d, v| *d = v * self.scale + self.offset);
        out.truncate(1);
        set_mask(out, 0, ins[0].mask);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        g.dxs.push(Some(bw.dys[0].mapv(|g| g * self.scale)));
        Ok(())
    }
}
