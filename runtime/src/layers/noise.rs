//! GaussianNoise, GaussianDropout, SpatialDropout1D, AlphaDropout and
//! ActivityRegularization: identities at inference; in training seeded noise (from our
//! generator, not Keras's) or, for ActivityRegularization, a penalty on the loss.

use ndarray::{ArrayD, IxDyn};
use seqmodel_ir::{NoiseAttrs, NoiseKind};

use super::{Backward, Grads, Layer, Params, normal, uniform};
use crate::error::{Result, RuntimeError};
use crate::exec::{NodeTape, Training, Value, ValueRef, f32_slot, set_mask};

/// SELU's constants, which AlphaDropout keeps the mean and variance of.
const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_SCALE: f32 = 1.050_701;

/// The multiplier and offset of each value in a training pass: `y = x * m + o`.
fn draw(a: &NoiseAttrs, layer: &str, shape: &[usize], seed: &mut u64) -> Result<(Vec<f32>, Vec<f32>)> {
    let n: usize = shape.iter().product();
    let rate = a.rate;
    Ok(match a.kind {
        NoiseKind::GaussianNoise => (vec![1.0; n], (0..n).map(|_| rate * normal(seed)).collect()),
        NoiseKind::GaussianDropout => {
            let sd = (rate / (1.0 - rate)).sqrt();
            ((0..n).map(|_| 1.0 + sd * normal(seed)).collect(), vec![0.0; n])
        }
        NoiseKind::SpatialDropout1D => {
            let &[b, t, c] = shape else {
                return Err(RuntimeError::Shape(format!(
                    "SpatialDropout1D `{layer}` needs a sequence [batch, steps, channels], got {shape:?}"
                )));
            };
            let keep: Vec<f32> =
                (0..b * c).map(|_| if uniform(seed) < rate { 0.0 } else { 1.0 / (1.0 - rate) }).collect();
            let m = (0..n).map(|i| keep[(i / (t * c)) * c + i % c]).collect();
            (m, vec![0.0; n])
        }
        NoiseKind::AlphaDropout => {
            let alpha_p = -SELU_ALPHA * SELU_SCALE;
            let a = ((1.0 - rate) * (1.0 + rate * alpha_p * alpha_p)).powf(-0.5);
            let b = -a * alpha_p * rate;
            let keep: Vec<bool> = (0..n).map(|_| uniform(seed) >= rate).collect();
            let m = keep.iter().map(|k| if *k { a } else { 0.0 }).collect();
            let o = keep.iter().map(|k| if *k { b } else { a * alpha_p + b }).collect();
            (m, o)
        }
        NoiseKind::ActivityRegularization => (vec![1.0; n], vec![0.0; n]),
    })
}
impl Layer for NoiseAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        train: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let y = f32_slot(out, 0, x.shape())?;
        y.assign(&x);
        if let Some(tr) = train {
            if self.kind == NoiseKind::ActivityRegularization {
                // Keras 3 divides an activity penalty by the batch size (`Layer.__call__`).
                let batch = x.shape().first().map_or(1, |&b| b.max(1)) as f32;
                tr.penalty += x.iter().map(|v| self.rate * v.abs() + self.l2 * v * v).sum::<f32>() / batch;
            } else if tr.training && self.rate > 0.0 {
                let (m, o) = draw(self, layer, x.shape(), &mut tr.seed)?;
                for ((d, m), o) in y.iter_mut().zip(&m).zip(&o) {
                    *d = *d * m + o;
                }
                tr.tape = Some(NodeTape::Saved(ArrayD::from_shape_vec(IxDyn(x.shape()), m).expect("shape")));
            }
        }
        out.truncate(1);
        set_mask(out, 0, ins[0].mask);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let mut dx = bw.dys[0].clone().into_owned();
        if let Some(m) = bw.tape {
            dx *= m;
        }
        if self.kind == NoiseKind::ActivityRegularization {
            let x = bw.x(0)?;
            let batch = x.shape().first().map_or(1, |&b| b.max(1)) as f32;
            dx.zip_mut_with(x, |d, x| {
                *d += (self.rate * x.signum() * f32::from(*x != 0.0) + 2.0 * self.l2 * x) / batch
            });
        }
        g.dxs.push(Some(dx));
        Ok(())
    }
}
