//! Backpropagation through time of LSTM, GRU (both modes) and SimpleRNN on Keras's weight
//! layout, with masking (both behaviours), `go_backwards`, initial states and recurrent
//! dropout, from the tape that the forward pass recorded. Written as plain loops over the
//! gate math (matrix products through `kernels::matmul`) so that each line can be checked
//! against the equations; the gradient checks in the tests hold it to finite differences.

use seqmodel_ir::{Activation, CellKind};

// The forward pass's threshold and share size; the backward pass counts the multiply-adds
// of the recurrent products alone against it.
use super::forward::{MIN_ROWS_PER_THREAD, PARALLEL_MIN_MACS};
use super::{RnnTape, StepRows, split_recurrent, step_rows};
use crate::kernels::{FixedRhs, RhsData, activation, matmul_transposed_a, matmul_transposed_b};
use crate::pool;

/// The weights of one recurrent layer in Keras's layout.
pub struct RnnParams<'a> {
    /// `[D, G·U]`.
    pub kernel: &'a [f32],
    /// `[U, G·U]`.
    pub recurrent: &'a [f32],
    /// `[G·U]`, `[2, G·U]` for GRU with `reset_after`, or `None`.
    pub bias: Option<&'a [f32]>,
}

/// Gradients of one recurrent layer.
pub struct RnnGrads {
    /// `[B, T, D]`.
    pub dx: Vec<f32>,
    /// `[D, G·U]`.
    pub dkernel: Vec<f32>,
    /// `[U, G·U]`.
    pub drecurrent: Vec<f32>,
    /// Same shape as the bias.
    pub dbias: Vec<f32>,
    /// Gradients of the initial states (`h`, then `c` for LSTM; empty for other cells).
    pub dinitial: [Vec<f32>; 2],
}

fn add_masked(acc: &mut [f32], v: &[f32], mask: Option<&[f32]>) {
    for (i, (a, x)) in acc.iter_mut().zip(v).enumerate() {
        *a += x * mask.map_or(1.0, |m| m[i]);
    }
}

/// Backpropagation through time. `d_seq` is `[B, T, U]` (processing order), `d_last` and
/// `d_states` `[B, U]` each; any may be absent. Without `input_grad` (the layer's input
/// comes from nothing with weights), the input's gradient is not computed and `dx` is empty.
pub fn backward(
    tape: &RnnTape,
    p: &RnnParams<'_>,
    d_seq: Option<&[f32]>,
    d_last: Option<&[f32]>,
    d_states: &[Option<Vec<f32>>],
    input_grad: bool,
) -> RnnGrads {
    let a = &tape.a;
    let (b, t, d) = tape.dims;
    let u = a.units;
    let gu = a.cell.gates() * u;
    let reset_after = matches!(a.cell, CellKind::Gru { reset_after: true });
    let (r_zr, r_h) = match a.cell {
        CellKind::Gru { reset_after: false } => split_recurrent(p.recurrent, u),
        _ => (Vec::new(), Vec::new()),
    };
    // The transposed recurrent matrices, multiplied at every step, packed once (in
    // buffers from the training pool, given back at the end).
    let packed_transpose = |m: &[f32], rows: usize, cols: usize| {
        if b > 1 {
            // Every product has a row per batch row: packed from the matrix read transposed.
            return FixedRhs::packed_only(cols, rows, RhsData::Transposed(m));
        }
        let t = pool::transposed(m, rows, cols);
        let packed = FixedRhs::new(cols, rows, &t);
        pool::recycle(t);
        packed
    };
    let (rt, r_zr_t, r_h_t) = if r_zr.is_empty() {
        (packed_transpose(p.recurrent, u, gu), FixedRhs::default(), FixedRhs::default())
    } else {
        let zr_t = packed_transpose(&r_zr, u, 2 * u);
        (FixedRhs::default(), zr_t, packed_transpose(&r_h, u, u))
    };
    let initial = |i: usize| match d_states.get(i).and_then(Option::as_ref) {
        Some(d) => pool::copied(d),
        None => pool::zeros(b * u),
    };
    let mut dh = initial(0);
    let mut dc = initial(1);
    // Except for GRU without reset_after, the recurrent kernel's gradient is one product
    // over all steps at the end: h_prevᵀ (U × T·B) · drec (T·B × G·U).
    let batched = !matches!(a.cell, CellKind::Gru { reset_after: false });
    // LSTM and SimpleRNN: the gradient of the recurrent product is that of the input
    // projection (`dz`), so one array of every step's holds both.
    let direct = !matches!(a.cell, CellKind::Gru { .. });
    // `[T][B][G·U]`, processing order: every step writes its rows of both (all of them,
    // masked rows with zeros).
    let mut dxp = if direct { Vec::new() } else { pool::overwritten(b * t * gu) };
    // Weight gradients come from the pool, which the trainer gives them back to.
    let mut drec_all = pool::zeros(u * gu);
    let mut dr_h = pool::zeros(if a.cell == (CellKind::Gru { reset_after: false }) { u * u } else { 0 });
    let mut dbias_rec = pool::zeros(gu);
    let mut drec_steps = if batched { pool::overwritten(t * b * gu) } else { Vec::new() };
    let ctx = StepsBack { tape, rt: &rt, r_zr_t: &r_zr_t, r_h_t: &r_h_t, d_seq, d_last, direct };
    // Rows of the batch are independent through time, so large layers run their shares of
    // the batch on the helper threads, as the forward pass does; GRU without reset_after
    // sums a weight gradient at every step and stays on one thread.
    let threads = crate::num_threads().min(b / MIN_ROWS_PER_THREAD);
    let shares = if !batched || threads <= 1 || b * t * gu * u < PARALLEL_MIN_MACS { 1 } else { threads };
    let per = b.div_ceil(shares).max(1);
    // Each share's rows of every step of the per-step arrays (`[T][B][G·U]`).
    let mut rec_rows = step_rows(&mut drec_steps, t, b * gu, per * gu);
    let mut xp_rows = step_rows(&mut dxp, t, b * gu, per * gu);
    let mut outs = dh.chunks_mut((per * u).max(1)).zip(dc.chunks_mut((per * u).max(1))).enumerate().map(
        |(i, (dh_i, dc_i))| ShareOut {
            b0: i * per,
            dh: dh_i,
            dc: dc_i,
            rec_steps: rec_rows.next().unwrap_or_default(),
            xp_steps: xp_rows.next().unwrap_or_default(),
        },
    );
    if shares <= 1 {
        // One share, on this thread, with no list of shares.
        if let Some(out) = outs.next() {
            ctx.run(out, Some((&mut drec_all, &mut dr_h)));
        }
    } else {
        let outs: Vec<ShareOut<'_>> = outs.collect();
        let ctx = &ctx;
        crate::parallel::run_jobs(outs.len(), outs.into_iter().map(|out| move || ctx.run(out, None)));
    }
    if let CellKind::Gru { reset_after: false } = a.cell {
        for i in 0..u {
            for j in 0..u {
                drec_all[i * gu + 2 * u + j] += dr_h[i * u + j];
            }
        }
    }
    if batched {
        // h_prev (dropped) is stored T·B × U: the kernel reads it as the transpose it needs.
        match tape.rec_mask.as_deref() {
            Some(m) => {
                let mut hd_all = pool::overwritten(tape.h_prev.len());
                for ((d, h), k) in hd_all.iter_mut().zip(&tape.h_prev).zip(m.iter().cycle()) {
                    *d = h * k;
                }
                matmul_transposed_a(u, t * b, gu, &hd_all, &drec_steps, &mut drec_all, false);
                pool::recycle(hd_all);
            }
            None => matmul_transposed_a(u, t * b, gu, &tape.h_prev, &drec_steps, &mut drec_all, false),
        }
        if reset_after {
            for row in drec_steps.chunks(gu) {
                for (db, v) in dbias_rec.iter_mut().zip(row) {
                    *db += v;
                }
            }
        }
    }
    // The projection's gradient of every step, `[T][B][G·U]` as the tape's inputs are.
    let dxp = if direct { std::mem::take(&mut drec_steps) } else { dxp };
    let mut dkernel = pool::overwritten(d * gu);
    matmul_transposed_a(d, b * t, gu, &tape.x, &dxp, &mut dkernel, false);
    let mut dx = Vec::new();
    if input_grad {
        let mut dx_steps = pool::overwritten(b * t * d);
        matmul_transposed_b(b * t, gu, d, &dxp, p.kernel, &mut dx_steps, false);
        dx = pool::overwritten(b * t * d);
        for (s, block) in dx_steps.chunks_exact(b * d).enumerate().take(t) {
            let ti = if a.go_backwards { t - 1 - s } else { s };
            for (bi, row) in block.chunks_exact(d.max(1)).enumerate() {
                dx[(bi * t + ti) * d..][..d].copy_from_slice(row);
            }
        }
        pool::recycle(dx_steps);
    }
    let mut dbias = pool::zeros(if reset_after { 2 * gu } else { gu });
    if p.bias.is_some() {
        for row in dxp.chunks(gu) {
            for (db, v) in dbias.iter_mut().zip(row) {
                *db += v;
            }
        }
        if reset_after {
            dbias[gu..].copy_from_slice(&dbias_rec);
        }
    } else {
        dbias.clear();
    }
    for v in [dxp, drec_steps, dr_h, dbias_rec] {
        pool::recycle(v);
    }
    for packed in [rt, r_zr_t, r_h_t] {
        packed.recycle();
    }
    pool::recycle(r_zr);
    pool::recycle(r_h);
    if a.cell != CellKind::Lstm {
        pool::recycle(std::mem::take(&mut dc));
    }
    RnnGrads { dx, dkernel, drecurrent: drec_all, dbias, dinitial: [dh, dc] }
}

/// What the backward pass through the steps reads, shared by every share of the batch.
struct StepsBack<'a> {
    tape: &'a RnnTape,
    /// The transposed recurrent kernel (or, GRU without reset_after, its z and r blocks and
    /// its candidate block).
    rt: &'a FixedRhs,
    r_zr_t: &'a FixedRhs,
    r_h_t: &'a FixedRhs,
    d_seq: Option<&'a [f32]>,
    d_last: Option<&'a [f32]>,
    direct: bool,
}

/// One share of the batch: rows `b0 ..` (as many as `dh` holds), with the gradients of the
/// final states in `dh` and `dc` (replaced by those of the initial states) and its rows of
/// every step's gradients.
struct ShareOut<'a> {
    b0: usize,
    dh: &'a mut [f32],
    dc: &'a mut [f32],
    /// Per step: the gradient of the recurrent product (LSTM, SimpleRNN: of the gates).
    rec_steps: StepRows<'a, f32>,
    /// Per step (GRU): the gradient of the input projection.
    xp_steps: StepRows<'a, f32>,
}

impl StepsBack<'_> {
    /// The steps from last to first for the share's rows. `gru_plain` holds the recurrent
    /// kernel's gradient and its candidate block's, which GRU without reset_after sums at
    /// every step (that cell runs as one share).
    fn run(&self, out: ShareOut<'_>, mut gru_plain: Option<(&mut [f32], &mut [f32])>) {
        let StepsBack { tape, rt, r_zr_t, r_h_t, d_seq, d_last, direct } = *self;
        let ShareOut { b0, dh: dh_out, dc: dc_out, mut rec_steps, mut xp_steps } = out;
        let a = &tape.a;
        let (b, t, _) = tape.dims;
        let u = a.units;
        let gu = a.cell.gates() * u;
        let rows = dh_out.len() / u.max(1);
        let reset_after = matches!(a.cell, CellKind::Gru { reset_after: true });
        let actg = |x: f32, y: f32| activation::grad(a.activation, x, y);
        let ractg = |x: f32, y: f32| activation::grad(a.recurrent_activation, x, y);
        // Work buffers, from the training pool and given back at the end.
        let mut dh = pool::copied(dh_out);
        let mut dc = pool::copied(dc_out);
        let mut dout_carry = pool::zeros(rows * u);
        let mut dz = pool::zeros(rows * gu);
        let mut drec = pool::zeros(if direct { 0 } else { rows * gu });
        let mut dout_buf = pool::zeros(u);
        let mut pre = pool::zeros(rows * gu);
        let mut gates = pool::zeros(rows * gu);
        let mut c_act = pool::zeros(if a.cell == CellKind::Lstm { rows * u } else { 0 });
        // Per-step buffers, allocated once: the gradients of the previous states (swapped
        // with `dh`/`dc` after each step), of `r·h_prev` and of the dropped `h_prev`.
        let (mut dhp, mut dcp) = (pool::zeros(rows * u), pool::zeros(rows * u));
        let (mut d_rh, mut dhd) = (pool::zeros(rows * u), pool::zeros(rows * u));
        let rmask = tape.rec_mask.as_deref().map(|m| &m[b0 * u..][..rows * u]);
        // Recurrent dropout's dropped `h_prev`, and GRU without reset_after's own products.
        let mut dropped_h = pool::zeros(if rmask.is_some() { rows * u } else { 0 });
        let mut plain = GruPlain::new(if gru_plain.is_some() { (rows, u) } else { (0, 0) });
        for s in (0..t).rev() {
            // The fused LSTM cell recorded its gates; other cells are recomputed (`pre` is
            // read only by activations whose gradient needs their input, never by sigmoid
            // and tanh).
            let (pre, gates, c_act): (&[f32], &[f32], &[f32]) = match &tape.gates {
                Some((g, c)) => {
                    (&pre[..], &g[(s * b + b0) * gu..][..rows * gu], &c[(s * b + b0) * u..][..rows * u])
                }
                None => {
                    step_gates(tape, s, (b0, rows), &mut pre, &mut gates, &mut c_act);
                    (&pre[..], &gates[..], &c_act[..])
                }
            };
            let hp = &tape.h_prev[(s * b + b0) * u..][..rows * u];
            let hd: &[f32] = match rmask {
                Some(m) => {
                    for ((d, h), k) in dropped_h.iter_mut().zip(hp).zip(m) {
                        *d = h * k;
                    }
                    &dropped_h
                }
                None => hp,
            };
            dz.fill(0.0);
            drec.fill(0.0);
            dhp.fill(0.0);
            dcp.fill(0.0);
            d_rh.fill(0.0);
            for bi in 0..rows {
                // The row of the whole batch, for the tape and the incoming gradients.
                let row = b0 + bi;
                let dout = &mut dout_buf[..];
                dout.copy_from_slice(&dout_carry[bi * u..][..u]);
                let live = tape.live[s * b + row];
                // A masked step's sequence output is its previous output (repeated), or a
                // constant zero inside Bidirectional, whose gradient goes nowhere.
                if let Some(ds) = d_seq.filter(|_| live || !tape.zero_masked) {
                    for j in 0..u {
                        dout[j] += ds[(row * t + s) * u + j];
                    }
                }
                if let Some(dl) = d_last.filter(|_| s == t - 1) {
                    for j in 0..u {
                        dout[j] += dl[row * u + j];
                    }
                }
                if !live {
                    // A masked step copies the states and the previous output (the last
                    // output too): their gradients pass through unchanged.
                    dout_carry[bi * u..][..u].copy_from_slice(dout);
                    dhp[bi * u..][..u].copy_from_slice(&dh[bi * u..][..u]);
                    dcp[bi * u..][..u].copy_from_slice(&dc[bi * u..][..u]);
                    continue;
                }
                dout_carry[bi * u..][..u].fill(0.0);
                let z = &pre[bi * gu..][..gu];
                let g = &gates[bi * gu..][..gu];
                let dzr = &mut dz[bi * gu..][..gu];
                match a.cell {
                    CellKind::Lstm => {
                        let lstm = LstmRow {
                            u,
                            dh: &dh[bi * u..][..u],
                            dout,
                            dc: &dc[bi * u..][..u],
                            gates: g,
                            pre: z,
                            c_prev: &tape.c_prev[(s * b + row) * u..][..u],
                            c_new: &tape.c_new[(s * b + row) * u..][..u],
                            c_act: &c_act[bi * u..][..u],
                            dz: dzr,
                            dc_prev: &mut dcp[bi * u..][..u],
                        };
                        lstm.backward(a.activation, a.recurrent_activation);
                    }
                    CellKind::SimpleRnn => {
                        for j in 0..u {
                            let dht = dh[bi * u + j] + dout[j];
                            dzr[j] = dht * actg(z[j], g[j]);
                        }
                    }
                    CellKind::Gru { .. } => {
                        let trec = &tape.rec[(s * b + row) * gu..][..gu];
                        for j in 0..u {
                            let dht = dh[bi * u + j] + dout[j];
                            let (zg, rg, hh) = (g[j], g[u + j], g[2 * u + j]);
                            let hpj = hp[bi * u + j];
                            let dpre_h = dht * (1.0 - zg) * actg(z[2 * u + j], hh);
                            dzr[j] = dht * (hpj - hh) * ractg(z[j], zg);
                            dhp[bi * u + j] += dht * zg;
                            dzr[2 * u + j] = dpre_h;
                            if reset_after {
                                let rh = trec[2 * u + j];
                                dzr[u + j] = dpre_h * rh * ractg(z[u + j], rg);
                                drec[bi * gu + 2 * u + j] = dpre_h * rg;
                            } else {
                                // d(r·h_prev) comes from the candidate product below.
                                d_rh[bi * u + j] = dpre_h;
                            }
                        }
                        if reset_after {
                            drec[bi * gu..][..2 * u].copy_from_slice(&dzr[..2 * u]);
                        }
                    }
                }
            }
            match gru_plain.as_mut().filter(|_| a.cell == CellKind::Gru { reset_after: false }) {
                Some((drec_all, dr_h)) => {
                    let GruPlain { rh, d_rhp, dzr_rec, dr_zr } = &mut plain;
                    // cand = (r·h_prev) · R_h: gradients of R_h and of r·h_prev.
                    for (i, v) in rh.iter_mut().enumerate() {
                        *v = gates[(i / u) * gu + u + i % u] * hd[i];
                    }
                    // (r·h_prev)ᵀ · d_rh, reading r·h_prev as the transposed left factor.
                    matmul_transposed_a(u, rows, u, rh, &d_rh, dr_h, true);
                    d_rhp.fill(0.0);
                    r_h_t.product(rows, &d_rh, d_rhp);
                    for bi in 0..rows {
                        if !tape.live[s * b + b0 + bi] {
                            continue;
                        }
                        for j in 0..u {
                            let rg = gates[bi * gu + u + j];
                            let dr = d_rhp[bi * u + j] * hd[bi * u + j];
                            dz[bi * gu + u + j] = dr * ractg(pre[bi * gu + u + j], rg);
                            dhp[bi * u + j] += d_rhp[bi * u + j] * rg * rmask.map_or(1.0, |m| m[bi * u + j]);
                            drec[bi * gu + j] = dz[bi * gu + j];
                            drec[bi * gu + u + j] = dz[bi * gu + u + j];
                        }
                    }
                    // h_prev · R_zr
                    for (dst, src) in dzr_rec.chunks_exact_mut(2 * u).zip(drec.chunks(gu)) {
                        dst.copy_from_slice(&src[..2 * u]);
                    }
                    matmul_transposed_a(u, rows, 2 * u, hd, dzr_rec, dr_zr, false);
                    for i in 0..u {
                        for j in 0..2 * u {
                            drec_all[i * gu + j] += dr_zr[i * 2 * u + j];
                        }
                    }
                    r_zr_t.product(rows, dzr_rec, &mut dhd);
                    add_masked(&mut dhp, &dhd, rmask);
                }
                None => {
                    let drec = if direct { &dz } else { &drec };
                    if let Some(dst) = rec_steps.get_mut(s) {
                        dst.copy_from_slice(drec);
                    }
                    rt.product(rows, drec, &mut dhd);
                    add_masked(&mut dhp, &dhd, rmask);
                }
            }
            if let Some(dst) = xp_steps.get_mut(s) {
                dst.copy_from_slice(&dz);
            }
            std::mem::swap(&mut dh, &mut dhp);
            std::mem::swap(&mut dc, &mut dcp);
        }
        dh_out.copy_from_slice(&dh);
        dc_out.copy_from_slice(&dc);
        for v in [dh, dc, dout_carry, dz, drec, dout_buf, pre, gates, c_act, dhp, dcp, d_rh, dhd, dropped_h] {
            pool::recycle(v);
        }
        plain.recycle();
    }
}

/// The work buffers of a GRU without `reset_after` (`rows` rows, `u` units), whose candidate
/// product reads `r·h_prev` and whose recurrent kernel's gradient is summed at every step.
struct GruPlain {
    /// `r·h_prev` `[rows, u]`.
    rh: Vec<f32>,
    /// The gradient of `r·h_prev`.
    d_rhp: Vec<f32>,
    /// The z and r blocks of the step's recurrent gradient `[rows, 2u]`.
    dzr_rec: Vec<f32>,
    /// The step's gradient of the z and r blocks of the recurrent kernel `[u, 2u]`.
    dr_zr: Vec<f32>,
}

impl GruPlain {
    /// Buffers from the training pool (empty for `(0, 0)`).
    fn new((rows, u): (usize, usize)) -> Self {
        GruPlain {
            rh: pool::zeros(rows * u),
            d_rhp: pool::zeros(rows * u),
            dzr_rec: pool::zeros(rows * 2 * u),
            dr_zr: pool::zeros(u * 2 * u),
        }
    }

    /// Gives the buffers back to the pool.
    fn recycle(self) {
        for v in [self.rh, self.d_rhp, self.dzr_rec, self.dr_zr] {
            pool::recycle(v);
        }
    }
}

/// The pre-activations and activated gates of processing step `s` for the `rows` rows from
/// `b0`, and (LSTM) the activated new cell state, recomputed from the tape as the forward
/// pass computed them.
fn step_gates(
    tape: &RnnTape,
    s: usize,
    (b0, rows): (usize, usize),
    pre: &mut [f32],
    gates: &mut [f32],
    c_act: &mut [f32],
) {
    let a = &tape.a;
    let (b, t, _) = tape.dims;
    let u = a.units;
    let gu = a.cell.gates() * u;
    let ti = if a.go_backwards { t - 1 - s } else { s };
    let rec = &tape.rec[(s * b + b0) * gu..][..rows * gu];
    for bi in 0..rows {
        let xr = &tape.xp[((b0 + bi) * t + ti) * gu..][..gu];
        let r = &rec[bi * gu..][..gu];
        let p = &mut pre[bi * gu..][..gu];
        let g = &mut gates[bi * gu..][..gu];
        match a.cell {
            CellKind::Lstm | CellKind::SimpleRnn => {
                for j in 0..gu {
                    p[j] = xr[j] + r[j];
                }
                g.copy_from_slice(p);
                if a.cell == CellKind::Lstm {
                    activation::map(a.recurrent_activation, &mut g[..2 * u]);
                    activation::map(a.activation, &mut g[2 * u..3 * u]);
                    activation::map(a.recurrent_activation, &mut g[3 * u..]);
                } else {
                    activation::map(a.activation, g);
                }
            }
            CellKind::Gru { reset_after } => {
                for j in 0..2 * u {
                    p[j] = xr[j] + r[j];
                }
                g[..2 * u].copy_from_slice(&p[..2 * u]);
                activation::map(a.recurrent_activation, &mut g[..2 * u]);
                for j in 0..u {
                    // With reset_after the reset gate scales the recurrent candidate
                    // projection; without, `r` holds the product (r·h)·R_h already.
                    let inner = if reset_after { g[u + j] * r[2 * u + j] } else { r[2 * u + j] };
                    p[2 * u + j] = xr[2 * u + j] + inner;
                }
                g[2 * u..].copy_from_slice(&p[2 * u..]);
                activation::map(a.activation, &mut g[2 * u..]);
            }
        }
    }
    if a.cell == CellKind::Lstm {
        c_act.copy_from_slice(&tape.c_new[(s * b + b0) * u..][..rows * u]);
        activation::map(a.activation, c_act);
    }
}

/// One row of one step of the LSTM cell's backward pass: the gradients of the four gates'
/// pre-activations and of the previous cell state, from those of the output and the states.
struct LstmRow<'a> {
    u: usize,
    /// The gradients of the step's `h` (from the next step) and output (from above).
    dh: &'a [f32],
    dout: &'a [f32],
    /// The gradient of the step's `c` (from the next step).
    dc: &'a [f32],
    /// The activated gates `i, f, g, o` (`4U`) and their pre-activations.
    gates: &'a [f32],
    pre: &'a [f32],
    c_prev: &'a [f32],
    c_new: &'a [f32],
    /// The activation of `c_new`.
    c_act: &'a [f32],
    dz: &'a mut [f32],
    dc_prev: &'a mut [f32],
}

impl LstmRow<'_> {
    /// Runs the row with the layer's activations. Keras's default pair (tanh, sigmoid) takes
    /// the derivatives from the outputs alone, so the loop has no branch and vectorises (in
    /// the widest instruction set, through `pulp`'s dispatch); other activations go through
    /// [`activation::grad`] element by element.
    fn backward(self, act: Activation, recurrent: Activation) {
        if (act, recurrent) == (Activation::Tanh, Activation::Sigmoid) {
            pulp::Arch::new().dispatch(LstmRowKernel {
                row: self,
                actg: |_: f32, y: f32| 1.0 - y * y,
                ractg: |_: f32, y: f32| y * (1.0 - y),
            });
        } else {
            self.run(
                |x: f32, y: f32| activation::grad(act, x, y),
                |x: f32, y: f32| activation::grad(recurrent, x, y),
            );
        }
    }

    /// The gate derivatives with `actg` and `ractg` the derivatives of the activation and the
    /// recurrent activation at (input, output).
    #[inline(always)]
    fn run(self, actg: impl Fn(f32, f32) -> f32, ractg: impl Fn(f32, f32) -> f32) {
        let u = self.u;
        let (dh, dout, dc) = (&self.dh[..u], &self.dout[..u], &self.dc[..u]);
        let (cp, cn, tc) = (&self.c_prev[..u], &self.c_new[..u], &self.c_act[..u]);
        let [gi, gf, gg, go] = gate_blocks(self.gates, u);
        let [zi, zf, zg, zo] = gate_blocks(self.pre, u);
        let (dzi, rest) = self.dz[..4 * u].split_at_mut(u);
        let (dzf, rest) = rest.split_at_mut(u);
        let (dzg, dzo) = rest.split_at_mut(u);
        let dcp = &mut self.dc_prev[..u];
        for j in 0..u {
            let dht = dh[j] + dout[j];
            let (i, f, g, o) = (gi[j], gf[j], gg[j], go[j]);
            let dct = dc[j] + dht * o * actg(cn[j], tc[j]);
            dzi[j] = dct * g * ractg(zi[j], i);
            dzf[j] = dct * cp[j] * ractg(zf[j], f);
            dzg[j] = dct * i * actg(zg[j], g);
            dzo[j] = dht * tc[j] * ractg(zo[j], o);
            dcp[j] = dct * f;
        }
    }
}

/// [`LstmRow::run`] inside an instruction set's dispatch.
struct LstmRowKernel<'a, A, R> {
    row: LstmRow<'a>,
    actg: A,
    ractg: R,
}

impl<A: Fn(f32, f32) -> f32, R: Fn(f32, f32) -> f32> pulp::WithSimd for LstmRowKernel<'_, A, R> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.row.run(self.actg, self.ractg);
    }
}

/// The four gate blocks of `U` values each at the start of `m`.
fn gate_blocks(m: &[f32], u: usize) -> [&[f32]; 4] {
    std::array::from_fn(|k| &m[k * u..][..u])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The vectorised row of Keras's default activations equals the element-by-element
        /// one through `activation::grad` (which is held to finite differences).
        #[test]
        fn the_vectorised_lstm_row_equals_the_general_one(
            u in 1usize..70,
            values in proptest::collection::vec(-2.0f32..2.0, 11 * 70),
        ) {
            let v = |k: usize, n: usize| values[k * 70..][..n].to_vec();
            let pre: Vec<f32> = (0..4).flat_map(|k| v(k, u)).collect();
            let mut gates = pre.clone();
            activation::map(Activation::Sigmoid, &mut gates[..2 * u]);
            activation::map(Activation::Tanh, &mut gates[2 * u..3 * u]);
            activation::map(Activation::Sigmoid, &mut gates[3 * u..]);
            let (c_prev, c_new) = (v(4, u), v(5, u));
            let mut c_act = c_new.clone();
            activation::map(Activation::Tanh, &mut c_act);
            let (dh, dout, dc) = (v(6, u), v(7, u), v(8, u));
            let run = |fast: bool| {
                let (mut dz, mut dc_prev) = (vec![f32::NAN; 4 * u], vec![f32::NAN; u]);
                let row = LstmRow {
                    u, dh: &dh, dout: &dout, dc: &dc, gates: &gates, pre: &pre, c_prev: &c_prev,
                    c_new: &c_new, c_act: &c_act, dz: &mut dz, dc_prev: &mut dc_prev,
                };
                if fast {
                    row.backward(Activation::Tanh, Activation::Sigmoid);
                } else {
                    let g = |a: Activation| move |x: f32, y: f32| activation::grad(a, x, y);
                    row.run(g(Activation::Tanh), g(Activation::Sigmoid));
                }
                (dz, dc_prev)
            };
            let (fast, general) = (run(true), run(false));
            for (x, y) in fast.0.iter().chain(&fast.1).zip(general.0.iter().chain(&general.1)) {
                prop_assert!((x - y).abs() <= 1e-6, "{x} vs {y}");
            }
        }
    }

    /// The backward pass of batch shares on two threads gives exactly what one thread gives
    /// (each row's arithmetic is the same and the weight gradients are one product over all
    /// rows either way), for every cell, with a mask, recurrent dropout and non-default
    /// activations (whose gates are recomputed per share).
    #[test]
    fn batch_shares_on_two_threads_equal_one_thread() {
        use crate::layers::recurrent::{Recording, RnnOut, RnnScratch, RnnWeights, forward_into};
        use ndarray::{Array2, Array3};
        let (b, t, d) = (19, 80, 12);
        let values = |n: usize, seed: usize| -> Vec<f32> {
            (0..n).map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5) * 0.4).collect()
        };
        let cells = [
            (CellKind::Lstm, Activation::Tanh),
            (CellKind::Lstm, Activation::Relu),
            (CellKind::Gru { reset_after: true }, Activation::Tanh),
            (CellKind::SimpleRnn, Activation::Tanh),
        ];
        for (cell, activation) in cells {
            let u = if cell == CellKind::SimpleRnn { 128 } else { 64 };
            let a = seqmodel_ir::RnnAttrs {
                cell,
                units: u,
                input_dim: d,
                activation,
                recurrent_activation: Activation::Sigmoid,
                use_bias: true,
                return_sequences: true,
                return_state: false,
                go_backwards: true,
                stateful: false,
                unroll: false,
                dropout: 0.0,
                recurrent_dropout: 0.0,
            };
            let gu = cell.gates() * u;
            assert!(b * t * gu * u >= PARALLEL_MIN_MACS, "{cell:?}: large enough to split");
            let bias_len = if cell == (CellKind::Gru { reset_after: true }) { 2 * gu } else { gu };
            let (kernel, recurrent, bias) = (values(d * gu, 1), values(u * gu, 2), values(bias_len, 3));
            let w = RnnWeights::pack(&a, &kernel, &recurrent, Some(&bias));
            let x = Array3::from_shape_vec((b, t, d), values(b * t * d, 4)).unwrap();
            let mask = Array2::from_shape_fn((b, t), |(i, j)| (i * 3 + j) % 7 != 0);
            let rec_mask: Vec<f32> = (0..b * u).map(|i| if i % 5 == 0 { 0.0 } else { 1.25 }).collect();
            let mut tape = RnnTape::new(&a, (b, t, d), false, Some(rec_mask.clone()));
            let mut states = vec![values(b * u, 6); cell.states()];
            let (mut sequence, mut last) = (vec![0.0; b * t * u], vec![0.0; b * u]);
            let out = RnnOut { sequence: Some(&mut sequence), last: &mut last, states: &mut states };
            let record = Recording { rec_mask: Some(&rec_mask), tape: &mut tape };
            let mut scratch = RnnScratch::default();
            forward_into(&a, &w, x.view(), Some(mask.view()), false, &mut scratch, Some(record), out)
                .unwrap();
            let params = RnnParams { kernel: &kernel, recurrent: &recurrent, bias: Some(&bias) };
            let (d_seq, d_last) = (values(b * t * u, 7), values(b * u, 8));
            let d_states: Vec<Option<Vec<f32>>> =
                (0..cell.states()).map(|k| Some(values(b * u, 9 + k))).collect();
            let run = |threads: usize| {
                crate::set_num_threads(threads);
                let g = backward(&tape, &params, Some(&d_seq), Some(&d_last), &d_states, true);
                crate::set_num_threads(0);
                g
            };
            let (one, two) = (run(1), run(2));
            let same = |x: &[f32], y: &[f32], what: &str| {
                assert_eq!(x.len(), y.len(), "{cell:?} {what}");
                assert!(x.iter().any(|v| *v != 0.0), "{cell:?} {what}: all zero");
                for (x, y) in x.iter().zip(y) {
                    assert!((x - y).abs() <= 1e-6, "{cell:?} {what}: {x} vs {y}");
                }
            };
            same(&one.dx, &two.dx, "dx");
            same(&one.dkernel, &two.dkernel, "kernel");
            same(&one.drecurrent, &two.drecurrent, "recurrent kernel");
            same(&one.dbias, &two.dbias, "bias");
            assert_eq!(one.dinitial[1].is_empty(), cell != CellKind::Lstm, "only LSTM has a c");
            for (x, y) in one.dinitial.iter().zip(&two.dinitial).filter(|(x, _)| !x.is_empty()) {
                same(x, y, "initial states");
            }
        }
    }
}
