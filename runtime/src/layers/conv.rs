//! Conv1D (as one matrix product per channel group over the unfolded windows), the pooling
//! layers over time and the global poolings: forward into reusable buffers and backward.

use std::borrow::Cow;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use seqmodel_ir::{Activation, Conv1dAttrs, GlobalPoolAttrs, PoolAttrs, PoolKind};

use super::{Backward, Grads, Layer, Params};
use crate::error::{Result, RuntimeError};
use crate::exec::{NodeTape, Training, Value, ValueRef, contiguous, f32_slot, set_mask};
use crate::kernels::{FixedRhs, Lhs, Start, activation, matmul, matmul_transposed_a};
use crate::pool;

/// The input of a layer over time as `[B, T, C]` in standard layout.
/// `[B, T, C]`.
type Dims3 = (usize, usize, usize);

fn sequence<'a>(layer: &str, x: &'a ArrayViewD<'_, f32>) -> Result<(Cow<'a, [f32]>, Dims3)> {
    let &[b, t, c] = x.shape() else {
        return Err(RuntimeError::Shape(format!(
            "layer `{layer}` needs a sequence [batch, steps, channels], got {:?}",
            x.shape()
        )));
    };
    let data = match x.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(x.iter().copied().collect()),
    };
    Ok((data, (b, t, c)))
}

/// The output length, or an error saying the sequence is too short for the window.
fn out_len(layer: &str, window: Option<(usize, usize)>, t: usize, span: usize) -> Result<(usize, usize)> {
    window.ok_or_else(|| {
        RuntimeError::Shape(format!("layer `{layer}` needs at least {span} steps, the input has {t}"))
    })
}

/// Unfolds the windows of group `g`: row `(b, o)` holds taps `k = 0..K` of channels
/// `g*cg..(g+1)*cg` at step `o*s + k*d - left` (zeros outside the sequence).
fn unfold(a: &Conv1dAttrs, x: &[f32], (b, t, c): Dims3, g: usize, t_out: usize, left: usize) -> Vec<f32> {
    let cg = c / a.groups;
    let width = a.kernel_size * cg;
    // From the pool, given back by the caller; every tap is written (zeros where it falls in
    // the padding), so the buffer is not zeroed first (that pass was a fifth of the unfold).
    let mut cols = pool::overwritten(b * t_out * width);
    for bi in 0..b {
        for o in 0..t_out {
            let row = &mut cols[(bi * t_out + o) * width..][..width];
            for k in 0..a.kernel_size {
                let step = (o * a.strides + k * a.dilation_rate) as isize - left as isize;
                let dst = &mut row[k * cg..][..cg];
                if step < 0 || step as usize >= t {
                    dst.fill(0.0);
                } else {
                    dst.copy_from_slice(&x[(bi * t + step as usize) * c + g * cg..][..cg]);
                }
            }
        }
    }
    cols
}

/// `y = start + conv(x)` for one group of consecutive taps (`groups = 1`, `dilation_rate = 1`
/// or a single tap): each window of `K` steps is `K·C` consecutive floats of its sequence, so
/// the product reads the windows in place ([`Lhs::Windows`]) instead of an unfolded copy
/// five times the input's size (for conv-lstm's kernel of 5 the unfolding and its copies
/// were a twentieth of the predict at one thread, and ran on one thread at two). Padding
/// takes a copy of the input with the zeros around each sequence, a fifth of the unfolding.
fn windows_product(
    a: &Conv1dAttrs,
    kernel: &FixedRhs,
    x: &[f32],
    (b, t, c): Dims3,
    (t_out, left): (usize, usize),
    y: &mut [f32],
    start: Start<'_>,
) {
    if b == 0 || t_out == 0 {
        return;
    }
    let s = a.strides;
    // Steps of the padded sequence that the windows cover.
    let covered = (t_out - 1) * s + a.kernel_size;
    let mut product = |data: &[f32], steps: usize| {
        let windows = Lhs::Windows { data, ld: s * c, per: t_out, run_ld: steps * c, skip: 0 };
        kernel.product_windows(b * t_out, windows, y, start);
    };
    if left == 0 && covered <= t {
        return product(x, t);
    }
    let steps = (left + t).max(covered);
    let mut padded = pool::overwritten(b * steps * c);
    for (dst, src) in padded.chunks_exact_mut(steps * c).zip(x.chunks_exact(t * c)) {
        let (front, rest) = dst.split_at_mut(left * c);
        let (middle, back) = rest.split_at_mut(t * c);
        front.fill(0.0);
        middle.copy_from_slice(src);
        back.fill(0.0);
    }
    product(&padded, steps);
    pool::recycle(padded);
}

/// Whether [`windows_product`] computes the convolution: one group, and taps that follow
/// each other.
fn windows_in_place(a: &Conv1dAttrs) -> bool {
    a.groups == 1 && a.in_channels > 0 && (a.dilation_rate == 1 || a.kernel_size == 1)
}

/// The kernel of group `g` as a `[K·cg, fg]` matrix (Keras stores `[K, cg, filters]`).
fn group_kernel(a: &Conv1dAttrs, kernel: &[f32], g: usize) -> Vec<f32> {
    let (cg, fg) = (a.in_channels / a.groups, a.filters / a.groups);
    // From the training pool: a trainer repacks the kernel at every step.
    let mut m = pool::overwritten(a.kernel_size * cg * fg);
    m.clear();
    for row in kernel.chunks(a.filters) {
        m.extend_from_slice(&row[g * fg..][..fg]);
    }
    m
}

impl Layer for Conv1dAttrs {
    fn prepare(&self, ws: &[&[f32]]) -> Params {
        let (cg, fg) = (self.in_channels / self.groups, self.filters / self.groups);
        let mats = (0..self.groups)
            .map(|g| FixedRhs::new(self.kernel_size * cg, fg, &group_kernel(self, ws[0], g)))
            .collect();
        Params { mats, vecs: ws.get(1).map(|b| vec![b.to_vec()]).unwrap_or_default() }
    }

    fn prepare_into(&self, ws: &[&[f32]], params: &mut Params) {
        if params.mats.len() != self.groups || params.vecs.len() != ws.len() - 1 {
            *params = self.prepare(ws);
            return;
        }
        let (cg, fg) = (self.in_channels / self.groups, self.filters / self.groups);
        for (g, m) in params.mats.iter_mut().enumerate() {
            let kernel = group_kernel(self, ws[0], g);
            m.refill(self.kernel_size * cg, fg, &kernel);
            pool::recycle(kernel);
        }
        if let (Some(v), Some(b)) = (params.vecs.first_mut(), ws.get(1)) {
            v.copy_from_slice(b);
        }
    }

    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        params: &Params,
        out: &mut Vec<Value>,
        train: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let (xs, dims @ (b, t, c)) = sequence(layer, &x)?;
        if c != self.in_channels {
            return Err(RuntimeError::Shape(format!(
                "layer `{layer}` was built for {} channels, the input has {c}",
                self.in_channels
            )));
        }
        let (t_out, left) = out_len(layer, self.window(t), t, self.span())?;
        let fg = self.filters / self.groups;
        let y = contiguous(f32_slot(out, 0, &[b, t_out, self.filters])?);
        let bias = params.vecs.first();
        if windows_in_place(self) {
            let start = bias.map_or(Start::Zero, |v| Start::Bias(v));
            windows_product(self, &params.mats[0], &xs, dims, (t_out, left), y, start);
        } else {
            for (g, kernel) in params.mats.iter().enumerate() {
                let cols = unfold(self, &xs, dims, g, t_out, left);
                if self.groups == 1 {
                    kernel.product_from(b * t_out, &cols, y, bias.map_or(Start::Zero, |v| Start::Bias(v)));
                    pool::recycle(cols);
                    continue;
                }
                let mut part = pool::overwritten(b * t_out * fg);
                let start = bias.map_or(Start::Zero, |v| Start::Bias(&v[g * fg..][..fg]));
                kernel.product_from(b * t_out, &cols, &mut part, start);
                for (dst, src) in y.chunks_mut(self.filters).zip(part.chunks(fg)) {
                    dst[g * fg..][..fg].copy_from_slice(src);
                }
                pool::recycle(part);
                pool::recycle(cols);
            }
        }
        // Training keeps the output before the activation when its gradient needs it.
        if let Some(tr) = train
            && self.activation != Activation::Linear
            && activation::grad_needs_input(self.activation)
        {
            let pre =
                ArrayD::from_shape_vec(IxDyn(&[b, t_out, self.filters]), pool::copied(y)).expect("shape");
            tr.tape = Some(NodeTape::Saved(pre));
        }
        activation::apply(self.activation, y, self.filters);
        out.truncate(1);
        set_mask(out, 0, None);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let x = bw.x(0)?.view();
        let (xs, dims @ (b, t, c)) = sequence(bw.layer, &x)?;
        let (t_out, left) = out_len(bw.layer, self.window(t), t, self.span())?;
        let y = bw.ys[0].t.as_f32().expect("float output");
        let dpre = activation_grad(self.activation, bw.tape, y, &bw.dys[0]);
        let (cg, fg, f) = (c / self.groups, self.filters / self.groups, self.filters);
        let (rows, width) = (b * t_out, self.kernel_size * cg);
        let mut dk = pool::zeros(self.kernel_size * cg * f);
        // On the model's input (nothing with weights before it) the input's gradient, a
        // product as large as the kernel's and a fold, is not computed.
        let input_grad = bw.needs_dx(0);
        let mut dx = if input_grad { pool::zeros(b * t * c) } else { Vec::new() };
        for group in 0..self.groups {
            let dg: Cow<'_, [f32]> = if self.groups == 1 {
                Cow::Borrowed(&dpre)
            } else {
                dpre.chunks(f).flat_map(|r| r[group * fg..][..fg].iter().copied()).collect::<Vec<_>>().into()
            };
            let cols = unfold(self, &xs, dims, group, t_out, left);
            let mut dkg = pool::zeros(width * fg);
            matmul_transposed_a(width, rows, fg, &cols, &dg, &mut dkg, false);
            pool::recycle(cols);
            for (dst, src) in dk.chunks_mut(f).zip(dkg.chunks(fg)) {
                dst[group * fg..][..fg].copy_from_slice(src);
            }
            pool::recycle(dkg);
            if !input_grad {
                continue;
            }
            let kernel = group_kernel(self, bw.weights[0], group);
            let kg_t = pool::transposed(&kernel, width, fg);
            pool::recycle(kernel);
            let mut dcols = pool::overwritten(rows * width);
            matmul(rows, fg, width, &dg, &kg_t, &mut dcols, false);
            pool::recycle(kg_t);
            // Fold the windows back: each tap's gradient goes to the step it read.
            for bi in 0..b {
                for o in 0..t_out {
                    let row = &dcols[(bi * t_out + o) * width..][..width];
                    for k in 0..self.kernel_size {
                        let step = (o * self.strides + k * self.dilation_rate) as isize - left as isize;
                        if step < 0 || step as usize >= t {
                            continue;
                        }
                        let dst = &mut dx[(bi * t + step as usize) * c + group * cg..][..cg];
                        for (d, v) in dst.iter_mut().zip(&row[k * cg..][..cg]) {
                            *d += v;
                        }
                    }
                }
            }
            pool::recycle(dcols);
        }
        g.dws.push(Some(dk));
        if self.use_bias {
            g.dws.push(Some(column_sums(&dpre, f)));
        }
        pool::recycle(dpre);
        let dx = input_grad.then(|| ArrayD::from_shape_vec(IxDyn(&[b, t, c]), dx).expect("shape"));
        g.dxs.push(dx);
        Ok(())
    }
}

/// The gradient before a fused activation, from the pre-activation saved on the tape (when
/// the activation's gradient needs it) or from the output.
pub(crate) fn activation_grad(
    a: Activation,
    pre: Option<&ArrayD<f32>>,
    y: &ArrayD<f32>,
    dy: &ArrayD<f32>,
) -> Vec<f32> {
    let dy = dy.as_standard_layout();
    let dys = dy.as_slice().expect("standard layout");
    if a == Activation::Linear {
        return pool::copied(dys);
    }
    let y = y.as_standard_layout();
    let pre = pre.map(|p| p.as_standard_layout());
    // `backward` starts by copying `dy` into all of it.
    let mut d = pool::overwritten(dys.len());
    let width = *y.shape().last().unwrap_or(&1);
    activation::backward(
        a,
        pre.as_ref().map(|p| p.as_slice().expect("standard layout")),
        y.as_slice().expect("standard layout"),
        dys,
        &mut d,
        width,
    );
    d
}

/// The sum of the rows of `m` (`width` columns).
pub(crate) fn column_sums(m: &[f32], width: usize) -> Vec<f32> {
    let mut s = pool::zeros(width);
    for row in m.chunks(width) {
        for (a, v) in s.iter_mut().zip(row) {
            *a += v;
        }
    }
    s
}

/// The input steps window `o` of a pooling layer covers (inside the sequence).
fn pool_window(a: &PoolAttrs, o: usize, left: usize, t: usize) -> std::ops::Range<usize> {
    let start = (o * a.strides) as isize - left as isize;
    let end = (start + a.pool_size as isize).min(t as isize);
    start.max(0) as usize..end.max(0) as usize
}

impl Layer for PoolAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let (xs, (b, t, c)) = sequence(layer, &x)?;
        let (t_out, left) = out_len(layer, self.window(t), t, self.pool_size)?;
        let y = contiguous(f32_slot(out, 0, &[b, t_out, c])?);
        for bi in 0..b {
            for o in 0..t_out {
                let w = pool_window(self, o, left, t);
                let n = w.len().max(1) as f32;
                let dst = &mut y[(bi * t_out + o) * c..][..c];
                dst.fill(if self.kind == PoolKind::Max { f32::NEG_INFINITY } else { 0.0 });
                // One loop per kind, so that each has no branch inside and vectorises.
                for step in w {
                    let src = &xs[(bi * t + step) * c..][..c];
                    match self.kind {
                        PoolKind::Max => dst.iter_mut().zip(src).for_each(|(d, v)| *d = d.max(*v)),
                        PoolKind::Average => dst.iter_mut().zip(src).for_each(|(d, v)| *d += v),
                    }
                }
                if self.kind == PoolKind::Average {
                    dst.iter_mut().for_each(|d| *d /= n);
                }
            }
        }
        out.truncate(1);
        set_mask(out, 0, None);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let x = bw.x(0)?.view();
        let (xs, (b, t, c)) = sequence(bw.layer, &x)?;
        let (t_out, left) = out_len(bw.layer, self.window(t), t, self.pool_size)?;
        let y = bw.ys[0].t.as_f32().expect("float output").as_standard_layout();
        let dy = bw.dys[0].as_standard_layout();
        let (ys, dys) = (y.as_slice().expect("standard"), dy.as_slice().expect("standard"));
        let mut dx = pool::zeros(b * t * c);
        // 1 for the channels whose gradient an earlier step of the window took (max pooling).
        let mut taken = pool::zeros(c);
        for bi in 0..b {
            for o in 0..t_out {
                let w = pool_window(self, o, left, t);
                let n = w.len().max(1) as f32;
                let at = (bi * t_out + o) * c;
                let (y_row, dy_row) = (&ys[at..][..c], &dys[at..][..c]);
                taken.fill(0.0);
                // One pass per step of the window over whole rows of channels (a search
                // per channel through the window, with an index computed per element, was
                // 7 % of a conv-lstm training step).
                for step in w {
                    let from = (bi * t + step) * c;
                    let (x_row, dx_row) = (&xs[from..][..c], &mut dx[from..][..c]);
                    match self.kind {
                        // The gradient goes to the first step that holds the maximum.
                        PoolKind::Max => {
                            for ((((d, x), y), g), done) in
                                dx_row.iter_mut().zip(x_row).zip(y_row).zip(dy_row).zip(taken.iter_mut())
                            {
                                // Bit masks, not a branch: which step holds the maximum
                                // is a coin toss that mispredicted at half the elements
                                // (a tenth of conv-lstm's training step); this vectorises.
                                let hit = (u32::from(x == y) & u32::from(*done == 0.0)).wrapping_neg();
                                *d += f32::from_bits(g.to_bits() & hit);
                                *done = f32::from_bits(done.to_bits() | (1.0f32.to_bits() & hit));
                            }
                        }
                        PoolKind::Average => {
                            for (d, g) in dx_row.iter_mut().zip(dy_row) {
                                *d += g / n;
                            }
                        }
                    }
                }
            }
        }
        pool::recycle(taken);
        let dx = ArrayD::from_shape_vec(IxDyn(&[b, t, c]), dx).expect("shape");
        g.dxs.push(Some(dx));
        Ok(())
    }
}

/// Whether step `s` of row `b` counts: the average skips masked steps, the maximum (as
/// Keras's) takes every step.
fn counts(a: &GlobalPoolAttrs, mask: Option<&ndarray::Array2<bool>>, b: usize, s: usize) -> bool {
    a.kind == PoolKind::Max || mask.is_none_or(|m| m[[b, s]])
}

fn out_shape(a: &GlobalPoolAttrs, b: usize, c: usize) -> Vec<usize> {
    if a.keepdims { vec![b, 1, c] } else { vec![b, c] }
}
impl Layer for GlobalPoolAttrs {
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        _: &Params,
        out: &mut Vec<Value>,
        _: Option<&mut Training>,
    ) -> Result<()> {
        let x = ins[0].f32()?;
        let (xs, (b, t, c)) = sequence(layer, &x)?;
        let mask = ins[0].mask.map(|m| m.to_owned());
        let y = contiguous(f32_slot(out, 0, &out_shape(self, b, c))?);
        for bi in 0..b {
            let dst = &mut y[bi * c..][..c];
            let steps: Vec<usize> = (0..t).filter(|s| counts(self, mask.as_ref(), bi, *s)).collect();
            match self.kind {
                PoolKind::Max => {
                    dst.fill(f32::NEG_INFINITY);
                    for s in &steps {
                        for (d, v) in dst.iter_mut().zip(&xs[(bi * t + s) * c..][..c]) {
                            *d = d.max(*v);
                        }
                    }
                    if steps.is_empty() {
                        dst.fill(0.0);
                    }
                }
                PoolKind::Average => {
                    dst.fill(0.0);
                    for s in &steps {
                        for (d, v) in dst.iter_mut().zip(&xs[(bi * t + s) * c..][..c]) {
                            *d += v;
                        }
                    }
                    let n = steps.len().max(1) as f32;
                    dst.iter_mut().for_each(|d| *d /= n);
                }
            }
        }
        out.truncate(1);
        set_mask(out, 0, None);
        Ok(())
    }

    fn backward(&self, bw: &Backward<'_>, g: &mut Grads) -> Result<()> {
        let x = bw.x(0)?.view();
        let (xs, (b, t, c)) = sequence(bw.layer, &x)?;
        let mask = bw.xs[0].mask.as_ref();
        let y = bw.ys[0].t.as_f32().expect("float output").as_standard_layout();
        let dy = bw.dys[0].as_standard_layout();
        let (ys, dys) = (y.as_slice().expect("standard"), dy.as_slice().expect("standard"));
        let mut dx = pool::zeros(b * t * c);
        for bi in 0..b {
            let steps: Vec<usize> = (0..t).filter(|s| counts(self, mask, bi, *s)).collect();
            for j in 0..c {
                let g = dys[bi * c + j];
                match self.kind {
                    PoolKind::Max => {
                        if let Some(s) = steps.iter().find(|s| xs[(bi * t + **s) * c + j] == ys[bi * c + j]) {
                            dx[(bi * t + s) * c + j] += g;
                        }
                    }
                    PoolKind::Average => {
                        let n = steps.len().max(1) as f32;
                        for s in &steps {
                            dx[(bi * t + s) * c + j] += g / n;
                        }
                    }
                }
            }
        }
        let dx = ArrayD::from_shape_vec(IxDyn(&[b, t, c]), dx).expect("shape");
        g.dxs.push(Some(dx));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorView;
    use seqmodel_ir::Padding;

    /// Keras's convolution as written (`y[b, o, f] = bias[f] + Σ_k Σ_i x[b, o·s + k·d − left,
    /// g·cg + i] · kernel[k, i, f]`, zeros outside the sequence), in f64.
    fn naive(a: &Conv1dAttrs, x: &[f32], (b, t, c): Dims3, kernel: &[f32], bias: &[f32]) -> Option<Vec<f64>> {
        let (t_out, left) = a.window(t)?;
        let (cg, fg) = (c / a.groups, a.filters / a.groups);
        let mut y = Vec::with_capacity(b * t_out * a.filters);
        for bi in 0..b {
            for o in 0..t_out {
                for f in 0..a.filters {
                    let g = f / fg;
                    let mut sum = bias[f] as f64;
                    for k in 0..a.kernel_size {
                        let step = (o * a.strides + k * a.dilation_rate) as isize - left as isize;
                        if step < 0 || step as usize >= t {
                            continue;
                        }
                        for i in 0..cg {
                            let xv = x[(bi * t + step as usize) * c + g * cg + i] as f64;
                            sum += xv * kernel[(k * cg + i) * a.filters + f] as f64;
                        }
                    }
                    y.push(sum);
                }
            }
        }
        Some(y)
    }

    /// Every padding, stride, dilation and group count, on sequences shorter and longer than
    /// the kernel, read in place or unfolded, gives the convolution as Keras defines it.
    #[test]
    fn the_convolution_equals_the_naive_sum_over_taps() {
        let value = |i: usize| ((i * 37 % 101) as f32 / 50.0) - 1.0;
        let mut cases = 0;
        for padding in [Padding::Valid, Padding::Same, Padding::Causal] {
            for (kernel_size, strides, dilation_rate, groups) in [
                (1, 1, 1, 1),
                (3, 1, 1, 1),
                (4, 2, 1, 1),
                (2, 3, 1, 1),
                (3, 1, 2, 1),
                (1, 2, 3, 1),
                (3, 1, 1, 2),
                (2, 2, 2, 2),
            ] {
                for (b, t) in [(1, 1), (3, 3), (2, 7), (3, 12)] {
                    let (c, filters) = (4, 6);
                    let a = Conv1dAttrs {
                        filters,
                        kernel_size,
                        in_channels: c,
                        strides,
                        dilation_rate,
                        groups,
                        padding,
                        activation: Activation::Linear,
                        use_bias: true,
                    };
                    let kernel: Vec<f32> =
                        (0..kernel_size * c / groups * filters).map(|i| value(i + 7)).collect();
                    let bias: Vec<f32> = (0..filters).map(|i| value(i + 3)).collect();
                    let x: Vec<f32> = (0..b * t * c).map(value).collect();
                    let params = a.prepare(&[&kernel, &bias]);
                    let xv = ndarray::ArrayViewD::from_shape(IxDyn(&[b, t, c]), &x).expect("shape");
                    let mut out = Vec::new();
                    let got =
                        a.forward("conv", &[ValueRef::input(TensorView::F32(xv))], &params, &mut out, None);
                    let Some(want) = naive(&a, &x, (b, t, c), &kernel, &bias) else {
                        assert!(got.is_err(), "{a:?} on {t} steps has no window and must be an error");
                        continue;
                    };
                    got.expect("a window fits");
                    let y = out[0].t.as_f32().expect("floats");
                    assert_eq!(y.len(), want.len(), "{a:?} on {b}×{t}");
                    for (i, (g, w)) in y.iter().zip(&want).enumerate() {
                        assert!(
                            (*g as f64 - w).abs() < 1e-5,
                            "{a:?} on {b}×{t}: element {i} is {g}, not {w}"
                        );
                    }
                    cases += 1;
                }
            }
        }
        assert!(cases > 80, "only {cases} cases had a window");
    }
}
