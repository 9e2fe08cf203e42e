//! LayerNormalization (each vector of the last axis) and BatchNormalization (each feature
//! over the batch): forward and backward.

use ndarray::{ArrayD, IxDyn};
use seqmodel_ir::{BatchNormAttrs, LayerNormAttrs};

use super::{Backward, Grads, Layer, Params};
use crate::error::{Result, RuntimeError};
use crate::exec::{Training, Value, ValueRef, contiguous, f32_slot, set_mask};
use crate::pool;

/// The input as rows of `features` values, checked.
fn rows_of(layer: &str, x: &ndarray::ArrayViewD<'_, f32>, features: usize) -> Result<Vec<f32>> {
    if x.shape().last() != Some(&features) {
        return Err(RuntimeError::Shape(format!(
            "layer `{layer}` was built for {features} features, the input is {:?}",
            x.shape()
        )));
    }
    // In a pooled buffer (the caller gives it back).
    let x = x.as_standard_layout();
    Ok(pool::copied(x.as_slice().expect("standard layout")))
}

/// The indices of gamma and beta among the weights (present ones only, in Keras's order).
fn affine_indices(scale: bool, center: bool) -> (Option<usize>, Option<usize>) {
    (scale.then_some(0), center.then_some(scale as usize))
}

/// `x̂ · gamma + beta` for one row.
fn affine(xhat: &mut [f32], gamma: Option<&[f32]>, beta: Option<&[f32]>) {
    if let Some(g) = gamma {
        xhat.iter_mut().zip(g).for_each(|(v, g)| *v *= g);
    }
    if let Some(b) = beta {
        xhat.iter_mut().zip(b).for_each(|(v, b)| *v += b);
    }
}

/// Mean and (biased) variance of `v`, in f64.
fn moments(v: impl Iterator<Item = f32> + Clone) -> (f64, f64) {
    let n = v.clone().count().max(1) as f64;
    let mean = v.clone().map(f64::from).sum::<f64>() / n;
    let var = v.map(|x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

impl Layer for LayerNormAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        params: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let xs = rows_of(layer, &x, self.features)?;
        let (gi, bi) = affine_indices(self.scale, self.center);
        let (gamma, beta) = (gi.map(|i| &params.vecs[i][..]), bi.map(|i| &params.vecs[i][..]));
        let y = contiguous(f32_slot(out, 0, x.shape())?);
        for (src, dst) in xs.chunks(self.features).zip(y.chunks_mut(self.features)) {
            let (mean, var) = moments(src.iter().copied());
            let inv = 1.0 / (var + f64::from(self.epsilon)).sqrt();
            for (d, v) in dst.iter_mut().zip(src) {
                *d = ((f64::from(*v) - mean) * inv) as f32;
            }
            affine(dst, gamma, beta);
        }
        out.truncate(1);
        set_mask(out, 0, ins[0].mask);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let x = bw.x(0)?;
        let xs = rows_of(bw.layer, &x.view(), self.features)?;
        let dy: Vec<f32> = bw.dys[0].as_standard_layout().iter().copied().collect();
        let f = self.features;
        let (gi, _) = affine_indices(self.scale, self.center);
        let gamma = gi.map(|i| bw.weights[i]);
        let (mut dg, mut db) = (vec![0.0f32; f], vec![0.0f32; f]);
        let mut dx = vec![0.0f32; xs.len()];
        for ((src, g), d) in xs.chunks(f).zip(dy.chunks(f)).zip(dx.chunks_mut(f)) {
            let (mean, var) = moments(src.iter().copied());
            let inv = 1.0 / (var + f64::from(self.epsilon)).sqrt();
            let xhat: Vec<f64> = src.iter().map(|v| (f64::from(*v) - mean) * inv).collect();
            let dxhat: Vec<f64> = g
                .iter()
                .enumerate()
                .map(|(j, g)| f64::from(*g) * gamma.map_or(1.0, |w| f64::from(w[j])))
                .collect();
            let m1 = dxhat.iter().sum::<f64>() / f as f64;
            let m2 = dxhat.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / f as f64;
            for j in 0..f {
                d[j] = (inv * (dxhat[j] - m1 - xhat[j] * m2)) as f32;
                dg[j] += g[j] * xhat[j] as f32;
                db[j] += g[j];
            }
        }
        let mut dws = Vec::new();
        if self.scale {
            dws.push(Some(dg));
        }
        if self.center {
            dws.push(Some(db));
        }
        let dx = ArrayD::from_shape_vec(IxDyn(x.shape()), dx).expect("shape");
        g.dxs.push(Some(dx));
        g.dws.extend(dws);
        Ok(())
    }
}

/// The indices of gamma, beta, the moving mean and the moving variance among the weights.
fn indices(a: &BatchNormAttrs) -> (Option<usize>, Option<usize>, usize, usize) {
    let (g, b) = affine_indices(a.scale, a.center);
    let mm = a.scale as usize + a.center as usize;
    (g, b, mm, mm + 1)
}

/// Which rows of `xs` (`[rows, features]`, the input's leading axes flattened) the batch
/// statistics count: every row without a mask; with a mask `[B, T]` (an input `[B, T, F]`),
/// the real steps only, as Keras's `_moments` weighs them.
fn row_weights(
    layer: &str,
    mask: Option<ndarray::ArrayView2<'_, bool>>,
    rows: usize,
) -> Result<Option<Vec<f64>>> {
    let Some(mask) = mask else { return Ok(None) };
    if mask.len() != rows {
        return Err(RuntimeError::Shape(format!(
            "layer `{layer}`: a mask of {:?} does not cover the input's {rows} rows of features",
            mask.shape()
        )));
    }
    let mut w = pool::filled(rows, 0.0f64);
    for (w, &real) in w.iter_mut().zip(mask.iter()) {
        *w = if real { 1.0 } else { 0.0 };
    }
    Ok(Some(w))
}

/// Per-feature batch statistics: the mean, the biased variance, and the count they divide
/// by: the number of rows, or with row weights (a mask) their sum plus Keras's
/// `backend.epsilon()` (1e-7; a batch whose every step is masked gives mean and variance 0).
fn batch_moments(a: &BatchNormAttrs, xs: &[f32], w: Option<&[f64]>) -> Moments {
    let f = a.features.max(1);
    let rows = xs.len() / f;
    let count = batch_count(rows, w);
    let weight = |r: usize| w.map_or(1.0, |w| w[r]);
    let (mut means, mut vars) = (pool::filled(f, 0.0f64), pool::filled(f, 0.0f64));
    for j in 0..f {
        let mean = (0..rows).map(|r| weight(r) * f64::from(xs[r * f + j])).sum::<f64>() / count;
        let var =
            (0..rows).map(|r| weight(r) * (f64::from(xs[r * f + j]) - mean).powi(2)).sum::<f64>() / count;
        (means[j], vars[j]) = (mean, var);
    }
    Moments { means, vars }
}

/// Per-feature means and variances, in buffers from the training pool.
struct Moments {
    means: Vec<f64>,
    vars: Vec<f64>,
}

impl Moments {
    /// Feature `j`'s mean and variance.
    fn of(&self, j: usize) -> (f64, f64) {
        (self.means[j], self.vars[j])
    }

    /// Gives the buffers back to the pool.
    fn recycle(self) {
        pool::recycle(self.means);
        pool::recycle(self.vars);
    }
}

/// The count [`batch_moments`] divides by.
fn batch_count(rows: usize, w: Option<&[f64]>) -> f64 {
    match w {
        None => rows.max(1) as f64,
        Some(w) => w.iter().sum::<f64>() + 1e-7,
    }
}

impl Layer for BatchNormAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        params: &Params,
        out: &mut Vec<Value>,
        train: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let xs = rows_of(layer, &x, self.features)?;
        let (gi, bi, mi, vi) = indices(self);
        let training = train.is_some_and(|t| t.training);
        let stats = if training {
            let w = row_weights(layer, ins[0].mask, xs.len() / self.features.max(1))?;
            let stats = batch_moments(self, &xs, w.as_deref());
            pool::recycle(w.unwrap_or_default());
            stats
        } else {
            let (mut means, mut vars) = (pool::filled(0, 0.0f64), pool::filled(0, 0.0f64));
            means.extend(params.vecs[mi].iter().map(|m| f64::from(*m)));
            vars.extend(params.vecs[vi].iter().map(|v| f64::from(*v)));
            Moments { means, vars }
        };
        let (gamma, beta) = (gi.map(|i| &params.vecs[i][..]), bi.map(|i| &params.vecs[i][..]));
        let y = contiguous(f32_slot(out, 0, x.shape())?);
        for (src, dst) in xs.chunks(self.features).zip(y.chunks_mut(self.features)) {
            for ((d, v), (mean, var)) in dst.iter_mut().zip(src).zip(stats.means.iter().zip(&stats.vars)) {
                *d = ((f64::from(*v) - mean) / (var + f64::from(self.epsilon)).sqrt()) as f32;
            }
            affine(dst, gamma, beta);
        }
        stats.recycle();
        pool::recycle(xs);
        out.truncate(1);
        set_mask(out, 0, ins[0].mask);
        Ok(())
    }

    /// The backward pass of a training pass (batch statistics), with the moving statistics'
    /// updates.
    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let x = bw.x(0)?;
        let xs = rows_of(bw.layer, &x.view(), self.features)?;
        let f = self.features;
        let rows = xs.len() / f.max(1);
        let (gi, _, mi, vi) = indices(self);
        let w_owned = row_weights(bw.layer, bw.xs[0].mask.as_ref().map(|m| m.view()), rows)?;
        let w = w_owned.as_deref();
        let stats = batch_moments(self, &xs, w);
        let count = batch_count(rows, w);
        let weight = |r: usize| w.map_or(1.0, |w| w[r]);
        let dy = bw.dys[0].as_standard_layout();
        let dy = dy.as_slice().expect("standard layout");
        let (mut dg, mut db) = (pool::zeros(f), pool::zeros(f));
        let mut dx = pool::zeros(xs.len());
        for j in 0..f {
            let (mean, var) = stats.of(j);
            let inv = 1.0 / (var + f64::from(self.epsilon)).sqrt();
            let gamma = gi.map_or(1.0, |i| f64::from(bw.weights[i][j]));
            // y = gamma · (x - mean) · inv + beta at every row (masked ones too), where mean
            // and var are weighted sums over the counted rows divided by `count`:
            // d/dvar = -inv³/2 · Σ dx̂·(x - mean), d/dmean = -inv · Σ dx̂ - 2 d/dvar ·
            // Σ w·(x - mean) / count (zero up to rounding without a mask), and each counted
            // row gets w · (d/dmean + 2 d/dvar · (x - mean)) / count beside dx̂ · inv.
            let (mut sum_dxhat, mut sum_dxhat_centred, mut sum_w_centred) = (0.0f64, 0.0f64, 0.0f64);
            for r in 0..rows {
                let (centred, g) = (f64::from(xs[r * f + j]) - mean, f64::from(dy[r * f + j]));
                sum_dxhat += g * gamma;
                sum_dxhat_centred += g * gamma * centred;
                sum_w_centred += weight(r) * centred;
                dg[j] += (g * centred * inv) as f32;
                db[j] += g as f32;
            }
            let d_var = -0.5 * inv * inv * inv * sum_dxhat_centred;
            let d_mean = -inv * sum_dxhat - 2.0 * d_var * sum_w_centred / count;
            for r in 0..rows {
                let centred = f64::from(xs[r * f + j]) - mean;
                let direct = f64::from(dy[r * f + j]) * gamma * inv;
                dx[r * f + j] = (direct + weight(r) * (d_mean + 2.0 * d_var * centred) / count) as f32;
            }
        }
        if self.scale {
            g.dws.push(Some(dg));
        } else {
            pool::recycle(dg);
        }
        if self.center {
            g.dws.push(Some(db));
        } else {
            pool::recycle(db);
        }
        g.dws.extend([None, None]);
        let m = f64::from(self.momentum);
        let moved = |i: usize, stat: &[f64]| -> Vec<f32> {
            let mut v = pool::overwritten(bw.weights[i].len());
            for ((v, old), s) in v.iter_mut().zip(bw.weights[i]).zip(stat) {
                *v = (f64::from(*old) * m + s * (1.0 - m)) as f32;
            }
            v
        };
        g.updates.push((mi, moved(mi, &stats.means)));
        g.updates.push((vi, moved(vi, &stats.vars)));
        stats.recycle();
        pool::recycle(xs);
        if let Some(w) = w_owned {
            pool::recycle(w);
        }
        let dx = ArrayD::from_shape_vec(IxDyn(x.shape()), dx).expect("shape");
        g.dxs.push(Some(dx));
        Ok(())
    }
}
