//! Attention (dot, concat and additive scores) and MultiHeadAttention: forward and
//! backward. Scores and weighted sums are matrix products per batch row (and head); the
//! projections of MultiHeadAttention are one product over every step of the batch.

use ndarray::{Array2, ArrayD, IxDyn};
use seqmodel_ir::{AttentionAttrs, MhaAttrs, ScoreMode};

use super::conv::column_sums;
use super::{Backward, Grads, Layer, Params};
use crate::error::{Result, RuntimeError};
use crate::exec::{Training, Value, ValueRef, contiguous, f32_slot, set_mask};
use crate::kernels::{matmul, matmul_transposed_a, matmul_transposed_b};

/// What a masked score gets added (Keras's large negative number for float32).
const MASKED: f32 = -1e9;

/// A `[B, T, D]` input as a contiguous vector with its sizes.
struct Seq {
    data: Vec<f32>,
    t: usize,
    d: usize,
}

fn seq(layer: &str, what: &str, x: &ndarray::ArrayViewD<'_, f32>, b: usize) -> Result<Seq> {
    match x.shape() {
        &[xb, t, d] if xb == b => Ok(Seq { data: x.iter().copied().collect(), t, d }),
        s => Err(RuntimeError::Shape(format!(
            "layer `{layer}`: the {what} must be [batch {b}, steps, features], got {s:?}"
        ))),
    }
}

impl Seq {
    fn row(&self, b: usize) -> &[f32] {
        &self.data[b * self.t * self.d..][..self.t * self.d]
    }
}

/// Whether query step `i` may attend to value step `j` of batch row `b`.
fn allowed(mask: Option<&Array2<bool>>, causal: bool, b: usize, i: usize, j: usize) -> bool {
    mask.is_none_or(|m| m[[b, j]]) && (!causal || j <= i)
}

/// Softmax of each row of `s` (`width` columns) in place.
fn softmax_rows(s: &mut [f32], width: usize) {
    for row in s.chunks_mut(width.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

/// The gradient of the scores from the gradient of the softmax weights `w`.
fn softmax_backward(w: &[f32], dw: &[f32], width: usize) -> Vec<f32> {
    let mut ds = vec![0.0f32; w.len()];
    for ((w, dw), ds) in w.chunks(width).zip(dw.chunks(width)).zip(ds.chunks_mut(width)) {
        let dot: f32 = w.iter().zip(dw).map(|(a, b)| a * b).sum();
        for ((d, w), g) in ds.iter_mut().zip(w).zip(dw) {
            *d = w * (g - dot);
        }
    }
    ds
}

/// `a · bᵀ` for row-major `a` `[m, k]` and `b` `[n, k]`.
fn times_transposed(a: &[f32], b: &[f32], (m, k, n): (usize, usize, usize)) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    matmul_transposed_b(m, k, n, a, b, &mut c, false);
    c
}

/// `aᵀ · b` for row-major `a` `[k, m]` and `b` `[k, n]`.
fn transposed_times(a: &[f32], b: &[f32], (k, m, n): (usize, usize, usize)) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    matmul_transposed_a(m, k, n, a, b, &mut c, false);
    c
}

/// `a · b` for row-major `a` `[m, k]` and `b` `[k, n]`.
fn times(a: &[f32], b: &[f32], (m, k, n): (usize, usize, usize)) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    matmul(m, k, n, a, b, &mut c, false);
    c
}

fn no_dropout_in_training(layer: &str, dropout: f32, train: &Option<&mut Training>) -> Result<()> {
    if dropout > 0.0 && train.as_ref().is_some_and(|t| t.training) {
        return Err(RuntimeError::Unsupported(format!(
            "training attention `{layer}` with dropout on its weights"
        )));
    }
    Ok(())
}

/// The inputs of an attention layer: query, value, key (the value when not given).
struct Inputs {
    b: usize,
    q: Seq,
    v: Seq,
    k: Option<Seq>,
}

impl Inputs {
    fn read(layer: &str, xs: &[ndarray::ArrayViewD<'_, f32>]) -> Result<Self> {
        let b = xs[0].shape()[0];
        let q = seq(layer, "query", &xs[0], b)?;
        let v = seq(layer, "value", xs.get(1).unwrap_or(&xs[0]), b)?;
        let k = xs.get(2).map(|k| seq(layer, "key", k, b)).transpose()?;
        if let Some(k) = &k
            && k.t != v.t
        {
            return Err(RuntimeError::Shape(format!(
                "layer `{layer}`: the key has {} steps, the value {}",
                k.t, v.t
            )));
        }
        Ok(Inputs { b, q, v, k })
    }

    fn key(&self) -> &Seq {
        self.k.as_ref().unwrap_or(&self.v)
    }

    /// The gradients of the inputs from those of the query, the value and the key (the
    /// value's own when no key was given).
    fn input_grads(&self, dq: Vec<f32>, mut dv: Vec<f32>, dk: Vec<f32>) -> Vec<Option<ArrayD<f32>>> {
        let shaped = |data: Vec<f32>, s: &Seq| {
            ArrayD::from_shape_vec(IxDyn(&[self.b, s.t, s.d]), data).expect("shape")
        };
        let mut dxs = vec![Some(shaped(dq, &self.q))];
        match &self.k {
            Some(ks) => {
                dxs.push(Some(shaped(dv, &self.v)));
                dxs.push(Some(shaped(dk, ks)));
            }
            None => {
                dv.iter_mut().zip(&dk).for_each(|(a, g)| *a += g);
                dxs.push(Some(shaped(dv, &self.v)));
            }
        }
        dxs
    }
}

/// One batch row of Attention: the raw scores before the scale (for Dot) and the weights.
struct Scored {
    weights: Vec<f32>,
}

fn params<'p>(a: &AttentionAttrs, p: &'p [&'p [f32]]) -> (Option<&'p [f32]>, Option<f32>) {
    let scale = a.use_scale.then(|| p[0]);
    let concat = (a.score_mode == ScoreMode::Concat).then(|| p[a.use_scale as usize][0]);
    (scale, concat)
}

/// The scores of batch row `b`, `[Tq, Tv]`, masked.
fn scores(a: &AttentionAttrs, x: &Inputs, b: usize, p: &[&[f32]], mask: Option<&Array2<bool>>) -> Vec<f32> {
    let (q, k) = (x.q.row(b), x.key().row(b));
    let (tq, tv, d) = (x.q.t, x.v.t, x.q.d);
    let (scale, concat) = params(a, p);
    let mut s = match a.score_mode {
        ScoreMode::Dot => {
            let mut s = times_transposed(q, k, (tq, d, tv));
            if let Some(a) = scale {
                s.iter_mut().for_each(|v| *v *= a[0]);
            }
            s
        }
        ScoreMode::Concat | ScoreMode::Additive => {
            let mut s = vec![0.0f32; tq * tv];
            for i in 0..tq {
                for j in 0..tv {
                    let (qi, kj) = (&q[i * d..][..d], &k[j * d..][..d]);
                    s[i * tv + j] = match a.score_mode {
                        ScoreMode::Concat => {
                            let a = scale.map_or(1.0, |a| a[0]);
                            concat.unwrap_or(1.0)
                                * qi.iter().zip(kj).map(|(x, y)| (a * (x + y)).tanh()).sum::<f32>()
                        }
                        _ => (0..d).map(|c| scale.map_or(1.0, |a| a[c]) * (qi[c] + kj[c]).tanh()).sum(),
                    };
                }
            }
            s
        }
    };
    for i in 0..tq {
        for j in 0..tv {
            if !allowed(mask, a.use_causal_mask, b, i, j) {
                s[i * tv + j] += MASKED;
            }
        }
    }
    s
}

/// Zeros the rows `[dv]` of `y` (`[B, Tq, dv]`) at the query steps `mask` says are padding.
fn zero_masked_queries(y: &mut [f32], mask: Option<ndarray::ArrayView2<'_, bool>>, (tq, dv): (usize, usize)) {
    let Some(mask) = mask else { return };
    for ((b, i), live) in mask.indexed_iter() {
        if !*live {
            y[(b * tq + i) * dv..][..dv].fill(0.0);
        }
    }
}

fn score(a: &AttentionAttrs, x: &Inputs, b: usize, p: &[&[f32]], mask: Option<&Array2<bool>>) -> Scored {
    let mut weights = scores(a, x, b, p, mask);
    softmax_rows(&mut weights, x.v.t);
    Scored { weights }
}
impl Layer for AttentionAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        params: &Params,
        out: &mut Vec<Value>,
        train: Option<&mut Training>,
    ) -> Result<()> {
        no_dropout_in_training(layer, self.dropout, &train)?;
        let xs = ins.iter().map(|i| i.f32()).collect::<Result<Vec<_>>>()?;
        let x = Inputs::read(layer, &xs)?;
        let p: Vec<&[f32]> = params.vecs.iter().map(Vec::as_slice).collect();
        let mask = ins.get(1).and_then(|v| v.mask).map(|m| m.to_owned());
        let (tq, tv, dv) = (x.q.t, x.v.t, x.v.d);
        let mut all_weights = Vec::with_capacity(if self.return_scores { x.b * tq * tv } else { 0 });
        let y = contiguous(f32_slot(out, 0, &[x.b, tq, dv])?);
        for b in 0..x.b {
            let s = score(self, &x, b, &p, mask.as_ref());
            y[b * tq * dv..][..tq * dv].copy_from_slice(&times(&s.weights, x.v.row(b), (tq, tv, dv)));
            if self.return_scores {
                all_weights.extend_from_slice(&s.weights);
            }
        }
        // As Keras: the output at a masked query step is zeros.
        zero_masked_queries(y, ins[0].mask, (tq, dv));
        let outputs = 1 + self.return_scores as usize;
        if self.return_scores {
            // The weights as Keras returns them: after masking and the softmax, unmasked.
            contiguous(f32_slot(out, 1, &[x.b, tq, tv])?).copy_from_slice(&all_weights);
            set_mask(out, 1, None);
        }
        out.truncate(outputs);
        set_mask(out, 0, ins[0].mask);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let xs: Vec<_> = (0..bw.xs.len()).map(|i| bw.x(i).map(|a| a.view())).collect::<Result<_>>()?;
        let x = Inputs::read(bw.layer, &xs)?;
        let mask = bw.xs.get(1).and_then(|v| v.mask.as_ref());
        let (tq, tv, d, dv) = (x.q.t, x.v.t, x.q.d, x.v.d);
        let p = &bw.weights;
        let (scale, concat) = params(self, p);
        let mut dy: Vec<f32> = bw.dys[0].iter().copied().collect();
        // A masked query step's output is zeros whatever the scores: no gradient flows there.
        zero_masked_queries(&mut dy, bw.xs[0].mask.as_ref().map(|m| m.view()), (tq, dv));
        let (mut dq, mut dk, mut dvv) =
            (vec![0.0f32; x.q.data.len()], vec![0.0f32; x.key().data.len()], vec![0.0f32; x.v.data.len()]);
        let mut dscale = vec![0.0f32; scale.map_or(0, <[f32]>::len)];
        let mut dconcat = 0.0f32;
        for b in 0..x.b {
            let w = score(self, &x, b, p, mask).weights;
            let (q, k, v) = (x.q.row(b), x.key().row(b), x.v.row(b));
            let dyb = &dy[b * tq * dv..][..tq * dv];
            let mut dw = times_transposed(dyb, v, (tq, dv, tv));
            if let Some(d_scores) = bw.dys.get(1) {
                // The weights are also an output: their own gradient adds to the one through
                // the weighted sum.
                let d_scores = d_scores.as_standard_layout();
                let d_scores = d_scores.as_slice().expect("standard layout");
                dw.iter_mut().zip(&d_scores[b * tq * tv..][..tq * tv]).for_each(|(a, g)| *a += g);
            }
            let dvb = transposed_times(&w, dyb, (tq, tv, dv));
            dvv[b * tv * dv..][..tv * dv].iter_mut().zip(&dvb).for_each(|(a, g)| *a += g);
            let ds = softmax_backward(&w, &dw, tv);
            let (dqb, dkb) = (&mut dq[b * tq * d..][..tq * d], &mut dk[b * tv * d..][..tv * d]);
            match self.score_mode {
                ScoreMode::Dot => {
                    let a = scale.map_or(1.0, |s| s[0]);
                    let gq = times(&ds, k, (tq, tv, d));
                    let gk = transposed_times(&ds, q, (tq, tv, d));
                    dqb.iter_mut().zip(&gq).for_each(|(o, g)| *o += a * g);
                    dkb.iter_mut().zip(&gk).for_each(|(o, g)| *o += a * g);
                    if !dscale.is_empty() {
                        let raw = times_transposed(q, k, (tq, d, tv));
                        dscale[0] += ds.iter().zip(&raw).map(|(g, r)| g * r).sum::<f32>();
                    }
                }
                ScoreMode::Concat | ScoreMode::Additive => {
                    for i in 0..tq {
                        for j in 0..tv {
                            let g = ds[i * tv + j];
                            for c in 0..d {
                                let sum = q[i * d + c] + k[j * d + c];
                                let (du, dsum) = if self.score_mode == ScoreMode::Concat {
                                    let (a, cw) = (scale.map_or(1.0, |s| s[0]), concat.unwrap_or(1.0));
                                    let t = (a * sum).tanh();
                                    dconcat += g * t;
                                    let du = g * cw * (1.0 - t * t);
                                    if !dscale.is_empty() {
                                        dscale[0] += du * sum;
                                    }
                                    (du, du * a)
                                } else {
                                    let t = sum.tanh();
                                    let sc = scale.map_or(1.0, |s| s[c]);
                                    if !dscale.is_empty() {
                                        dscale[c] += g * t;
                                    }
                                    let du = g * sc * (1.0 - t * t);
                                    (du, du)
                                };
                                let _ = du;
                                dqb[i * d + c] += dsum;
                                dkb[j * d + c] += dsum;
                            }
                        }
                    }
                }
            }
        }
        let dxs = x.input_grads(dq, dvv, dk);
        let mut dws = Vec::new();
        if self.use_scale {
            dws.push(Some(dscale));
        }
        if self.score_mode == ScoreMode::Concat {
            dws.push(Some(vec![dconcat]));
        }
        g.dxs.extend(dxs);
        g.dws.extend(dws);
        Ok(())
    }
}

/// The projections and per-head attention of one MultiHeadAttention pass.
struct MhaPass {
    /// Projected query, key and value, `[B·T, H·K]`, `[B·Tv, H·K]`, `[B·Tv, H·V]`.
    qp: Vec<f32>,
    kp: Vec<f32>,
    vp: Vec<f32>,
    /// Attention weights per (batch row, head), `[Tq, Tv]` each.
    weights: Vec<Vec<f32>>,
    /// The heads' outputs side by side, `[B·Tq, H·V]`.
    heads: Vec<f32>,
}

/// The weights in op_weight_specs order: (kernel, bias) of query, key, value, output.
fn split<'p>(a: &MhaAttrs, p: &'p [&'p [f32]]) -> [(&'p [f32], Option<&'p [f32]>); 4] {
    let step = if a.use_bias { 2 } else { 1 };
    std::array::from_fn(|i| (p[i * step], a.use_bias.then(|| p[i * step + 1])))
}

fn project(x: &Seq, b: usize, (kernel, bias): (&[f32], Option<&[f32]>), width: usize) -> Vec<f32> {
    let rows = b * x.t;
    let mut y = times(&x.data, kernel, (rows, x.d, width));
    if let Some(bias) = bias {
        for row in y.chunks_mut(width) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        }
    }
    y
}

fn run(
    a: &MhaAttrs,
    x: &Inputs,
    p: &[&[f32]],
    qmask: Option<&Array2<bool>>,
    vmask: Option<&Array2<bool>>,
) -> MhaPass {
    let (h, kd, vd) = (a.num_heads, a.key_dim, a.value_dim);
    let [wq, wk, wv, _] = split(a, p);
    let (qp, kp, vp) =
        (project(&x.q, x.b, wq, h * kd), project(x.key(), x.b, wk, h * kd), project(&x.v, x.b, wv, h * vd));
    let (tq, tv) = (x.q.t, x.v.t);
    let inv = 1.0 / (kd as f32).sqrt();
    let mut weights = Vec::with_capacity(x.b * h);
    let mut heads = vec![0.0f32; x.b * tq * h * vd];
    for b in 0..x.b {
        for hh in 0..h {
            let qh = head(&qp[b * tq * h * kd..], tq, h * kd, hh, kd);
            let kh = head(&kp[b * tv * h * kd..], tv, h * kd, hh, kd);
            let vh = head(&vp[b * tv * h * vd..], tv, h * vd, hh, vd);
            let mut s = times_transposed(&qh, &kh, (tq, kd, tv));
            for i in 0..tq {
                let q_live = qmask.is_none_or(|m| m[[b, i]]);
                for j in 0..tv {
                    s[i * tv + j] *= inv;
                    if !(q_live && allowed(vmask, a.use_causal_mask, b, i, j)) {
                        s[i * tv + j] += MASKED;
                    }
                }
            }
            softmax_rows(&mut s, tv);
            if a.return_scores {
                // Keras computes the weights it returns with its Softmax layer, which zeros
                // the masked ones: a query step with no key left (masked, or before every
                // real key) gets zero weights where the fused path without the weights
                // spreads them evenly.
                for i in 0..tq {
                    let q_live = qmask.is_none_or(|m| m[[b, i]]);
                    for j in 0..tv {
                        if !(q_live && allowed(vmask, a.use_causal_mask, b, i, j)) {
                            s[i * tv + j] = 0.0;
                        }
                    }
                }
            }
            let o = times(&s, &vh, (tq, tv, vd));
            put_head(&mut heads[b * tq * h * vd..], &o, tq, h * vd, hh, vd);
            weights.push(s);
        }
    }
    MhaPass { qp, kp, vp, weights, heads }
}
/// Columns `h·w .. (h+1)·w` of the first `t` rows of `m` (`width` columns).
fn head(m: &[f32], t: usize, width: usize, h: usize, w: usize) -> Vec<f32> {
    (0..t).flat_map(|r| m[r * width + h * w..][..w].iter().copied()).collect()
}

/// Adds `part` (`[t, w]`) into columns `h·w ..` of `m`.
fn put_head(m: &mut [f32], part: &[f32], t: usize, width: usize, h: usize, w: usize) {
    for r in 0..t {
        m[r * width + h * w..][..w].iter_mut().zip(&part[r * w..][..w]).for_each(|(a, v)| *a += v);
    }
}

impl Layer for MhaAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        params: &Params,
        out: &mut Vec<Value>,
        train: Option<&mut Training>,
    ) -> Result<()> {
        no_dropout_in_training(layer, self.dropout, &train)?;
        let xs = ins.iter().map(|i| i.f32()).collect::<Result<Vec<_>>>()?;
        let x = Inputs::read(layer, &xs)?;
        let p: Vec<&[f32]> = params.vecs.iter().map(Vec::as_slice).collect();
        let (qmask, vmask) =
            (ins[0].mask.map(|m| m.to_owned()), ins.get(1).and_then(|v| v.mask).map(|m| m.to_owned()));
        let pass = run(self, &x, &p, qmask.as_ref(), vmask.as_ref());
        let [.., wo] = split(self, &p);
        let hv = self.num_heads * self.value_dim;
        let heads = Seq { data: pass.heads, t: x.q.t, d: hv };
        let o = project(&heads, x.b, wo, self.output_dim);
        contiguous(f32_slot(out, 0, &[x.b, x.q.t, self.output_dim])?).copy_from_slice(&o);
        if self.return_scores {
            // `[B, heads, Tq, Tv]`: the weights are kept per (batch row, head) in that order.
            let scores = contiguous(f32_slot(out, 1, &[x.b, self.num_heads, x.q.t, x.v.t])?);
            for (dst, w) in scores.chunks_mut((x.q.t * x.v.t).max(1)).zip(&pass.weights) {
                dst.copy_from_slice(w);
            }
            set_mask(out, 1, None);
        }
        out.truncate(1 + self.return_scores as usize);
        set_mask(out, 0, ins[0].mask);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let xs: Vec<_> = (0..bw.xs.len()).map(|i| bw.x(i).map(|a| a.view())).collect::<Result<_>>()?;
        let x = Inputs::read(bw.layer, &xs)?;
        let (qmask, vmask) = (bw.xs[0].mask.as_ref(), bw.xs.get(1).and_then(|v| v.mask.as_ref()));
        let pass = run(self, &x, &bw.weights, qmask, vmask);
        let [wq, wk, wv, wo] = split(self, &bw.weights);
        let (h, kd, vd, od) = (self.num_heads, self.key_dim, self.value_dim, self.output_dim);
        let (tq, tv, b) = (x.q.t, x.v.t, x.b);
        let dy: Vec<f32> = bw.dys[0].iter().copied().collect();
        // With `return_scores`, the gradient of the weights output `[B, heads, Tq, Tv]`.
        let d_scores: Option<Vec<f32>> = bw.dys.get(1).map(|d| d.iter().copied().collect());
        let dwo = transposed_times(&pass.heads, &dy, (b * tq, h * vd, od));
        let dheads = times_transposed(&dy, wo.0, (b * tq, od, h * vd));
        let inv = 1.0 / (kd as f32).sqrt();
        let (mut dqp, mut dkp, mut dvp) =
            (vec![0.0f32; pass.qp.len()], vec![0.0f32; pass.kp.len()], vec![0.0f32; pass.vp.len()]);
        for bi in 0..b {
            for hh in 0..h {
                let w = &pass.weights[bi * h + hh];
                let qh = head(&pass.qp[bi * tq * h * kd..], tq, h * kd, hh, kd);
                let kh = head(&pass.kp[bi * tv * h * kd..], tv, h * kd, hh, kd);
                let vh = head(&pass.vp[bi * tv * h * vd..], tv, h * vd, hh, vd);
                let doh = head(&dheads[bi * tq * h * vd..], tq, h * vd, hh, vd);
                let mut dw = times_transposed(&doh, &vh, (tq, vd, tv));
                if let Some(d_scores) = &d_scores {
                    let at = (bi * h + hh) * tq * tv;
                    dw.iter_mut().zip(&d_scores[at..][..tq * tv]).for_each(|(a, g)| *a += g);
                }
                let dvh = transposed_times(w, &doh, (tq, tv, vd));
                let mut ds = softmax_backward(w, &dw, tv);
                ds.iter_mut().for_each(|v| *v *= inv);
                let dqh = times(&ds, &kh, (tq, tv, kd));
                let dkh = transposed_times(&ds, &qh, (tq, tv, kd));
                put_head(&mut dqp[bi * tq * h * kd..], &dqh, tq, h * kd, hh, kd);
                put_head(&mut dkp[bi * tv * h * kd..], &dkh, tv, h * kd, hh, kd);
                put_head(&mut dvp[bi * tv * h * vd..], &dvh, tv, h * vd, hh, vd);
            }
        }
        // Through each input projection: kernel, bias and input gradients.
        let through = |x: &Seq, d: &[f32], (kernel, _): (&[f32], Option<&[f32]>), width: usize| {
            let dk = transposed_times(&x.data, d, (b * x.t, x.d, width));
            let db = column_sums(d, width);
            let dx = times_transposed(d, kernel, (b * x.t, width, x.d));
            (dk, db, dx)
        };
        let (dwq, dbq, dq) = through(&x.q, &dqp, wq, h * kd);
        let (dwk, dbk, dk) = through(x.key(), &dkp, wk, h * kd);
        let (dwv, dbv, dv) = through(&x.v, &dvp, wv, h * vd);
        let mut dws = Vec::new();
        for (k, bias) in [(dwq, dbq), (dwk, dbk), (dwv, dbv), (dwo, column_sums(&dy, od))] {
            dws.push(Some(k));
            if self.use_bias {
                dws.push(Some(bias));
            }
        }
        let dxs = x.input_grads(dq, dv, dk);
        g.dxs.extend(dxs);
        g.dws.extend(dws);
        Ok(())
    }
}
