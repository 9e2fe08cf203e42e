//! The one forward pass of LSTM, GRU (both `reset_after` modes) and SimpleRNN with Keras's
//! semantics: masking, `go_backwards`, initial states, recurrent dropout. The input
//! projection of all steps is one matrix product; each step does one `h · R` product and
//! the fused gate update. Inference, generated code and training all run it; training asks
//! it to record an [`RnnTape`] for the backward pass.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use seqmodel_ir::{Activation, CellKind, RnnAttrs};

use super::{RnnTape, RnnWeights, Shares, StepRows, step_rows};
use crate::kernels::{Lhs, PackedB, Start, THEN_ROWS, activation, matmul_prepacked_lhs, simd};
use crate::pool;

/// What a recurrent layer computed.
#[derive(Debug, Clone)]
pub struct RnnOutput {
    /// Every step's output `[B, T, U]` in processing order (only with `return_sequences`).
    pub sequence: Option<Array3<f32>>,
    /// The last step's output `[B, U]`.
    pub last: Array2<f32>,
    /// The final states (`h`, and `c` for LSTM), each `[B, U]`.
    pub states: Vec<Array2<f32>>,
}

/// Work buffers of the recurrence, kept between calls so that a warm run allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct RnnScratch {
    xp: Vec<f32>,
    /// One step's input projection, when it is computed step by step.
    step_xp: Vec<f32>,
    rec: Vec<f32>,
    rh: Vec<f32>,
    new_h: Vec<f32>,
    new_c: Vec<f32>,
    cand: Vec<f32>,
    /// The previous `h` through recurrent dropout's mask (training only).
    dropped_h: Vec<f32>,
    /// The work buffers of the helper threads that run shares of a batch.
    shares: Vec<RnnScratch>,
    /// The direction of the next batch-1 recurrent product (see
    /// [`crate::kernels::FixedRhs::product_turning`]): it turns at every step, across calls
    /// too, so that a model stepped one call at a time alternates as a sequence does.
    backwards: bool,
}

impl RnnScratch {
    /// The direction of this step's recurrent products, turned for the next step (for a
    /// step run by the step kernels, which turn as the recurrence does).
    #[inline]
    pub fn turn(&mut self) -> bool {
        let backwards = self.backwards;
        self.backwards = !backwards;
        backwards
    }
}

pub(crate) use crate::memory::sized;

/// [`sized`] for the largest buffer of a run, allocated fallibly (the input projection of
/// every step, `G` times the layer's output sequence).
fn try_sized(v: &mut Vec<f32>, n: usize) -> crate::Result<&mut [f32]> {
    if n > v.len() {
        v.try_reserve_exact(n - v.len()).map_err(|_| projection_oom(n))?;
    }
    Ok(sized(v, n))
}

/// What an out-of-memory error names when the projection of every step does not fit.
const PROJECTION: &str = "the input projection of every step";

fn projection_oom(n: usize) -> crate::RuntimeError {
    crate::RuntimeError::OutOfMemory { what: PROJECTION.into(), bytes: n.saturating_mul(4) }
}

/// Where a run of the recurrence writes.
#[derive(Debug)]
pub struct RnnOut<'a> {
    /// Every step's output `[B, T, U]`, in processing order (with `return_sequences`).
    pub sequence: Option<&'a mut [f32]>,
    /// The last output `[B, U]`.
    pub last: &'a mut [f32],
    /// The states (`h`, and `c` for LSTM), each `[B·U]`: the initial states on entry, the
    /// final ones on return.
    pub states: &'a mut [Vec<f32>],
}

/// Runs the layer over `x` `[B, T, D]`.
///
/// `mask` `[B, T]` (in input order) marks real steps: a masked step keeps the states and
/// repeats the previous output (`zero_masked = false`, Keras's default) or outputs zeros
/// (`zero_masked = true`, as inside `Bidirectional`). `initial` gives the starting states.
pub fn forward(
    a: &RnnAttrs,
    w: &RnnWeights,
    x: ArrayView3<'_, f32>,
    mask: Option<ArrayView2<'_, bool>>,
    initial: Option<Vec<Array2<f32>>>,
    zero_masked: bool,
) -> RnnOutput {
    let (b, t, _) = x.dim();
    let u = a.units;
    let mut states: Vec<Vec<f32>> = match initial {
        Some(s) => s.into_iter().map(|m| m.as_standard_layout().iter().copied().collect()).collect(),
        None => vec![vec![0.0; b * u]; a.cell.states()],
    };
    let mut sequence = a.return_sequences.then(|| Array3::<f32>::zeros((b, t, u)));
    let mut last = Array2::<f32>::zeros((b, u));
    let ran = forward_into(
        a,
        w,
        x,
        mask,
        zero_masked,
        &mut RnnScratch::default(),
        None,
        RnnOut {
            sequence: sequence.as_mut().map(|s| s.as_slice_mut().expect("fresh array")),
            last: last.as_slice_mut().expect("fresh array"),
            states: &mut states,
        },
    );
    ran.expect("memory for a test-sized run");
    let states = states.into_iter().map(|s| Array2::from_shape_vec((b, u), s).expect("b·u states")).collect();
    RnnOutput { sequence, last, states }
}

/// What a training pass adds to a run of the recurrence: recurrent dropout and a tape.
#[derive(Debug)]
pub struct Recording<'a> {
    /// Recurrent dropout's scaled keep mask `[B·U]`, applied to the previous `h` in the
    /// recurrent products only (as Keras does).
    pub rec_mask: Option<&'a [f32]>,
    /// Where every step is recorded for the backward pass (sized by [`RnnTape::new`]).
    pub tape: &'a mut RnnTape,
}

/// [`forward`] writing into `out`, with reusable work buffers; with `record`, the run also
/// fills a tape for the backward pass (`backward`) (and then stays on the calling thread).
#[allow(clippy::too_many_arguments)] // the layer's full context, passed explicitly
pub fn forward_into(
    a: &RnnAttrs,
    w: &RnnWeights,
    x: ArrayView3<'_, f32>,
    mask: Option<ArrayView2<'_, bool>>,
    zero_masked: bool,
    scratch: &mut RnnScratch,
    record: Option<Recording<'_>>,
    out: RnnOut<'_>,
) -> crate::Result<()> {
    let (b, t, _) = x.dim();
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    forward_rows(a, w, xs, (b, t), mask, zero_masked, scratch, record, out)
}

/// [`forward_into`] on the row-major elements `xs` of `[b, t, D]`: the one body of every
/// run of the recurrence, which generated code also calls directly on its own buffers.
#[allow(clippy::too_many_arguments)] // the layer's full context, passed explicitly
pub fn forward_rows(
    a: &RnnAttrs,
    w: &RnnWeights,
    xs: &[f32],
    (b, t): (usize, usize),
    mask: Option<ArrayView2<'_, bool>>,
    zero_masked: bool,
    scratch: &mut RnnScratch,
    record: Option<Recording<'_>>,
    out: RnnOut<'_>,
) -> crate::Result<()> {
    let gu = a.cell.gates() * a.units;
    debug_assert_eq!(xs.len(), b * t * w.kernel.k());
    // A tape that keeps no projection can record a run that projects step by step.
    if projection_per_step(b, t, gu) && record.as_ref().is_none_or(|r| !r.tape.needs_products()) {
        let xp = Projection::PerStep(xs);
        match record {
            None => run_shares(a, w, xp, (b, t), mask, zero_masked, scratch, out),
            Some(record) => run_recorded(a, w, (xs, xp), (b, t), mask, zero_masked, scratch, record, out),
        }
        return Ok(());
    }
    // Input projection of every step at once: [B·T, D] · [D, G·U] + bias (written whole). A
    // training run hands it to the tape, so it takes a pooled buffer instead of the kept one.
    let mut xp = match record {
        Some(_) => pool::try_overwritten(Some(b * t * gu), &|| PROJECTION.into())?,
        None => std::mem::take(&mut scratch.xp),
    };
    let proj = try_sized(&mut xp, b * t * gu)?;
    w.kernel.product_from(b * t, xs, proj, Start::Bias(&w.bias_in));
    match record {
        None => {
            forward_projected(a, w, proj, (b, t), mask, zero_masked, scratch, out);
            scratch.xp = xp;
        }
        Some(Recording { rec_mask, tape }) => {
            let record = Recording { rec_mask, tape: &mut *tape };
            run_recorded(
                a,
                w,
                (xs, Projection::Whole(proj)),
                (b, t),
                mask,
                zero_masked,
                scratch,
                record,
                out,
            );
            if tape.needs_products() {
                tape.xp = xp;
            } else {
                pool::recycle(xp);
            }
        }
    }
    Ok(())
}

/// Whether a run of `b` rows and `t` steps with `gu` gate columns computes each step's
/// input projection just before the step (one `[b, D] · [D, G·U]` product per step, its
/// rows read in place from the inputs) rather than all steps' ahead in one product. The
/// projection of every step is `b · t · gu` floats that are written once and read back a
/// step at a time: past the L2 cache they come back from memory, and big-lstm's 52 MB
/// (256 × 50 × 1024) made its gate updates a fifth of its time. Per step, the projection
/// stays in L2 between the product and the gates; a batch of at least [`PER_STEP_MIN_ROWS`]
/// rows keeps the per-step product as efficient as the one over the sequence. From 1 MiB
/// (half the L2 cache of the hosts measured) per step pays already: conv-lstm's LSTM(64)
/// (3.2 MB) went from 2.50 to 2.42 ms at one thread and 1.65 to 1.61 at two, ae-seed's
/// LSTM(64) and LSTM(48) (1.6 and 1.2 MB) from 1.87 to 1.64 ms at two threads (the
/// per-step products run inside the batch shares), others unchanged (2026-12-06, 2 rounds).
fn projection_per_step(b: usize, t: usize, gu: usize) -> bool {
    // One step (serve-streams' 256 streams) is projected "per step" whatever its size: the
    // same product, but an LSTM's then joins the recurrent one (depth 8 + 64 in one product
    // where the projection alone, 8 deep, stored its tiles after every 8 multiply-adds).
    b >= PER_STEP_MIN_ROWS && (t == 1 || b * t * gu * 4 >= PER_STEP_MIN_BYTES)
}

/// See [`projection_per_step`].
const PER_STEP_MIN_ROWS: usize = 32;

/// See [`projection_per_step`].
const PER_STEP_MIN_BYTES: usize = 1 << 20;

/// Where a run of the recurrence finds each step's input projection.
#[derive(Debug, Clone, Copy)]
enum Projection<'a> {
    /// Computed ahead for every step: `[B·T, G·U]`, row `b·T + t`.
    Whole(&'a [f32]),
    /// Computed at each step from the inputs `[B, T, D]` (row-major).
    PerStep(&'a [f32]),
}

impl<'a> Projection<'a> {
    /// The part for batch rows `b0 .. b0 + rows` of `t` steps, rows `width` floats wide
    /// (`G·U` ahead, `D` per step).
    fn rows(self, b0: usize, rows: usize, t: usize, gu: usize, d: usize) -> Self {
        match self {
            Projection::Whole(xp) => Projection::Whole(&xp[b0 * t * gu..(b0 + rows) * t * gu]),
            Projection::PerStep(xs) => Projection::PerStep(&xs[b0 * t * d..(b0 + rows) * t * d]),
        }
    }
}

/// A recording run over the inputs `xs` with their projection `xp`: the batch's shares run
/// on the helper threads as an inference run's do (see [`run_shares`]), each writing its
/// rows of every step's records.
#[allow(clippy::too_many_arguments)] // the layer's full context, passed explicitly
fn run_recorded(
    a: &RnnAttrs,
    w: &RnnWeights,
    (xs, xp): (&[f32], Projection<'_>),
    (b, t): (usize, usize),
    mask: Option<ArrayView2<'_, bool>>,
    zero_masked: bool,
    scratch: &mut RnnScratch,
    Recording { rec_mask, tape }: Recording<'_>,
    out: RnnOut<'_>,
) {
    let record = Recording { rec_mask, tape: &mut *tape };
    run_shares_recording(a, w, xp, (b, t), mask, zero_masked, scratch, Some(record), out);
    tape.x = in_processing_order(xs, (b, t), a.go_backwards);
}

/// The rows of `xs` (`[B, T, D]`) in processing order, `[T][B][D]`.
fn in_processing_order(xs: &[f32], (b, t): (usize, usize), go_backwards: bool) -> Vec<f32> {
    let d = xs.len().checked_div(b * t).unwrap_or(0);
    let mut out = pool::overwritten(xs.len());
    for (s, block) in out.chunks_exact_mut(b * d).enumerate().take(t) {
        let ti = if go_backwards { t - 1 - s } else { s };
        for (bi, row) in block.chunks_exact_mut(d.max(1)).enumerate() {
            row.copy_from_slice(&xs[(bi * t + ti) * d..][..d]);
        }
    }
    out
}

/// The `h` and (LSTM) `c` states of `b·u` values each.
fn split_states(states: &mut [Vec<f32>], n: usize) -> (&mut [f32], &mut [f32]) {
    match states {
        [h, c, ..] => (&mut h[..n], &mut c[..n]),
        [h] => (&mut h[..n], &mut [][..]),
        [] => unreachable!("a recurrent layer has a state"),
    }
}

/// The layer applied to one vector `[B, D]` repeated `steps` times (`RepeatVector` → RNN):
/// the input projection is computed once per sequence instead of once per step.
pub fn forward_repeated_into(
    a: &RnnAttrs,
    w: &RnnWeights,
    x: ArrayView2<'_, f32>,
    steps: usize,
    scratch: &mut RnnScratch,
    out: RnnOut<'_>,
) -> crate::Result<()> {
    let (b, d) = x.dim();
    let gu = a.cell.gates() * a.units;
    let x = x.as_standard_layout();
    let mut xp = std::mem::take(&mut scratch.xp);
    let proj = try_sized(&mut xp, b * steps * gu)?;
    // The projection of each row goes to its first step, then is copied to the others.
    let (once, _) = proj.split_at_mut(b * gu);
    debug_assert_eq!(d, w.kernel.k());
    w.kernel.product_from(b, x.as_slice().expect("standard layout"), once, Start::Bias(&w.bias_in));
    // Spread from the back so that no row is overwritten before it is read.
    for bi in (0..b).rev() {
        proj.copy_within(bi * gu..bi * gu + gu, bi * steps * gu);
        for s in 1..steps {
            proj.copy_within(bi * steps * gu..bi * steps * gu + gu, (bi * steps + s) * gu);
        }
    }
    forward_projected(a, w, proj, (b, steps), None, false, scratch, out);
    scratch.xp = xp;
    Ok(())
}

/// The recurrence given the input projection `xp` `[B·T, G·U]` (row `b·T + t`).
///
/// Batch rows are independent, so a large enough layer runs on shares of the batch in
/// parallel (each share its whole sequence), on up to [`crate::num_threads`] threads.
#[allow(clippy::too_many_arguments)] // the recurrence's full context, passed explicitly
pub fn forward_projected(
    a: &RnnAttrs,
    w: &RnnWeights,
    xp: &[f32],
    (b, t): (usize, usize),
    mask: Option<ArrayView2<'_, bool>>,
    zero_masked: bool,
    scratch: &mut RnnScratch,
    out: RnnOut<'_>,
) {
    run_shares(a, w, Projection::Whole(xp), (b, t), mask, zero_masked, scratch, out)
}

/// [`forward_projected`] with the projection ahead or per step.
#[allow(clippy::too_many_arguments)] // the recurrence's full context, passed explicitly
fn run_shares(
    a: &RnnAttrs,
    w: &RnnWeights,
    xp: Projection<'_>,
    (b, t): (usize, usize),
    mask: Option<ArrayView2<'_, bool>>,
    zero_masked: bool,
    scratch: &mut RnnScratch,
    out: RnnOut<'_>,
) {
    run_shares_recording(a, w, xp, (b, t), mask, zero_masked, scratch, None, out)
}

/// [`run_shares`], recording every step on `record`'s tape if given.
#[allow(clippy::too_many_arguments)] // the recurrence's full context, passed explicitly
fn run_shares_recording(
    a: &RnnAttrs,
    w: &RnnWeights,
    xp: Projection<'_>,
    (b, t): (usize, usize),
    mask: Option<ArrayView2<'_, bool>>,
    zero_masked: bool,
    scratch: &mut RnnScratch,
    record: Option<Recording<'_>>,
    out: RnnOut<'_>,
) {
    let u = a.units;
    let gu = a.cell.gates() * u;
    let d = w.kernel.k();
    let RnnOut { sequence, last, states } = out;
    let (h, c) = split_states(states, b * u);
    let threads = crate::num_threads().min(b / MIN_ROWS_PER_THREAD);
    let threads = if layer_macs(b, t, gu, u, d) < PARALLEL_MIN_MACS { 1 } else { threads.max(1) };
    // Shares of `per` batch rows: every buffer is batch-major, so each share is one slice;
    // the tape is step-major, so each share has a slice of every step.
    let per = b.div_ceil(threads).max(1);
    let (rec_mask, mut tapes) = match record {
        Some(Recording { rec_mask, tape }) => (rec_mask, TapeRows::split(tape, (b, t), per)),
        None => (None, Shares::One(None)),
    };
    let mut step_of = |b0: usize, rows: usize| {
        let tape = tapes.next()?;
        Some(Step { rec_mask: rec_mask.map(|m| &m[b0 * u..(b0 + rows) * u]), tape })
    };
    if threads <= 1 {
        let rows = Rows { xp, b, mask, sequence, last, h, c };
        return recur(a, w, t, zero_masked, scratch, rows, step_of(0, b));
    }
    let shares = b.div_ceil(per);
    if scratch.shares.len() < shares - 1 {
        scratch.shares.resize_with(shares - 1, RnnScratch::default);
    }
    let lstm_c = !c.is_empty();
    let mut helper_scratch = std::mem::take(&mut scratch.shares);
    {
        let mut h_rest = h;
        let mut c_rest = c;
        let mut last_rest = last;
        let mut seq_rest = sequence;
        let mut helpers = helper_scratch.iter_mut();
        let mut own_scratch = Some(&mut *scratch);
        let jobs = (0..shares).map(|i| {
            let b0 = i * per;
            let rows_here = per.min(b - b0);
            let (h_i, h_next) = std::mem::take(&mut h_rest).split_at_mut(rows_here * u);
            h_rest = h_next;
            let (c_i, c_next) = if lstm_c {
                std::mem::take(&mut c_rest).split_at_mut(rows_here * u)
            } else {
                (&mut [][..], &mut [][..])
            };
            c_rest = c_next;
            let (last_i, last_next) = std::mem::take(&mut last_rest).split_at_mut(rows_here * u);
            last_rest = last_next;
            let seq_i = seq_rest.take().map(|sq| {
                let (mine, next) = sq.split_at_mut(rows_here * t * u);
                seq_rest = Some(next);
                mine
            });
            let rows = Rows {
                xp: xp.rows(b0, rows_here, t, gu, d),
                b: rows_here,
                mask: mask.map(|m| m.slice_move(ndarray::s![b0..b0 + rows_here, ..])),
                sequence: seq_i,
                last: last_i,
                h: h_i,
                c: c_i,
            };
            let step = step_of(b0, rows_here);
            // The calling thread takes the last share, with the layer's own work buffers.
            let work = if i + 1 < shares { helpers.next() } else { own_scratch.take() };
            let work = work.expect("one work buffer per share");
            move || recur(a, w, t, zero_masked, work, rows, step)
        });
        crate::parallel::run_jobs(threads, jobs);
    }
    scratch.shares = helper_scratch;
}

/// Each thread's share of a batch has at least this many rows.
pub(super) const MIN_ROWS_PER_THREAD: usize = 8;

/// The multiply-adds of a layer's run over `b` rows and `t` steps, `gu` gate columns over
/// `u` units and `d` inputs: its recurrent products and its input projections (saturating:
/// sizes too large to multiply are large enough to split).
fn layer_macs(b: usize, t: usize, gu: usize, u: usize, d: usize) -> usize {
    b.saturating_mul(t).saturating_mul(gu).saturating_mul(u.saturating_add(d))
}

/// Layers with at least this many multiply-adds ([`layer_macs`]) run their batch shares in
/// parallel. When each call started a scoped thread (60 µs to spawn and join), 256 streams
/// stepped one step per call (4.2 M multiply-adds in the recurrent products, serve-streams)
/// ran twice as slowly on two threads as on one at 2^22; with the kept helper threads,
/// splitting it at 2^21 still made it 1.35x slower (waking a sleeping helper on this VM costs
/// about what a call saves). At 2^22 serve-streams split and ran 1.25x slower on two threads
/// (30 -> 38 ms); at 2^23 it did not, and ae-seed's LSTM(48) layers (14.7 M) split too:
/// ae-seed predict at two threads 2.41 -> 1.88 ms, train 9.8 -> 8.9 (at 2^24 neither gained
/// from a second thread). Those counts were of the recurrent products alone, which left
/// ae-seed's LSTM(32) on 48 inputs (6.5 M; 16.4 M with its projections) on one thread while
/// the other waited; counting the projections too splits it (ae-seed predict at two threads
/// 1.862 -> 1.724 ms, medians of eight interleaved runs, 2026-12-07), and one step of 256
/// streams (4.7 M) still does not.
pub(super) const PARALLEL_MIN_MACS: usize = 1 << 23;

/// One share of a batch: `b` rows of every buffer.
struct Rows<'a> {
    xp: Projection<'a>,
    b: usize,
    mask: Option<ArrayView2<'a, bool>>,
    sequence: Option<&'a mut [f32]>,
    last: &'a mut [f32],
    h: &'a mut [f32],
    c: &'a mut [f32],
}

/// Recurrent dropout and the tape of a training run (see [`Recording`]), for one share of
/// the batch: its rows of the mask and of every step's records.
struct Step<'a> {
    rec_mask: Option<&'a [f32]>,
    tape: TapeRows<'a>,
}

/// One share's rows of every step of an [`RnnTape`] (see `step_rows`): `h_prev[s]` is the
/// share's rows of step `s`'s previous `h`, and so on; an array the tape does not keep is
/// empty.
struct TapeRows<'a> {
    h_prev: StepRows<'a, f32>,
    c_prev: StepRows<'a, f32>,
    c_new: StepRows<'a, f32>,
    rec: StepRows<'a, f32>,
    gates: StepRows<'a, f32>,
    c_act: StepRows<'a, f32>,
    live: StepRows<'a, bool>,
}

impl<'a> TapeRows<'a> {
    /// The tape's rows for shares of `per` rows each (of a batch of `b`, `t` steps).
    fn split(tape: &'a mut RnnTape, (b, t): (usize, usize), per: usize) -> Shares<TapeRows<'a>> {
        let u = tape.a.units;
        let gu = tape.a.cell.gates() * u;
        let shares = b.div_ceil(per.max(1));
        let (gates, c_act) = match tape.gates.as_mut() {
            Some((g, c)) => (step_rows(g, t, b * gu, per * gu), step_rows(c, t, b * u, per * u)),
            None => (Shares::One(None), Shares::One(None)),
        };
        let mut h_prev = step_rows(&mut tape.h_prev, t, b * u, per * u);
        let mut c_prev = step_rows(&mut tape.c_prev, t, b * u, per * u);
        let mut c_new = step_rows(&mut tape.c_new, t, b * u, per * u);
        let mut rec = step_rows(&mut tape.rec, t, b * gu, per * gu);
        let (mut gates, mut c_act) = (gates, c_act);
        let mut live = step_rows(&mut tape.live, t, b, per);
        let mut share = move || TapeRows {
            h_prev: h_prev.next().unwrap_or_default(),
            c_prev: c_prev.next().unwrap_or_default(),
            c_new: c_new.next().unwrap_or_default(),
            rec: rec.next().unwrap_or_default(),
            gates: gates.next().unwrap_or_default(),
            c_act: c_act.next().unwrap_or_default(),
            live: live.next().unwrap_or_default(),
        };
        if shares <= 1 {
            Shares::One(Some(share()))
        } else {
            Shares::Many((0..shares).map(|_| share()).collect::<Vec<_>>().into_iter())
        }
    }
}

/// The recurrence over all `t` steps of one share of the batch; with `step`, each step's
/// previous states, recurrent projection and committed rows go on its tape.
fn recur(
    a: &RnnAttrs,
    w: &RnnWeights,
    t: usize,
    zero_masked: bool,
    scratch: &mut RnnScratch,
    rows: Rows<'_>,
    mut step_tape: Option<Step<'_>>,
) {
    let u = a.units;
    let gu = a.cell.gates() * u;
    let Rows { xp, b, mask, mut sequence, last: out_prev, h: state_h, c: state_c } = rows;
    // The last output per row: zeros until a row's first unmasked step; without a mask the
    // final `h`, copied once after the loop.
    if mask.is_some() || t == 0 {
        out_prev.fill(0.0);
    }
    let rec = sized(&mut scratch.rec, b * gu);
    let d = w.kernel.k();
    // A step projected in place multiplies `[x_t, h]` by `[kernel; recurrent]` in one product
    // of depth `D + U` where the cell sums the two (an inference run: the tape keeps the
    // products apart). At conv-lstm's depths of 64 and 64 the two products stored their
    // tiles twice as often for the same work.
    let stacked = w.stacked().filter(|_| matches!(xp, Projection::PerStep(_)) && step_tape.is_none());
    let join = stacked.is_some();
    let step_xp =
        sized(&mut scratch.step_xp, if matches!(xp, Projection::PerStep(_)) && !join { b * gu } else { 0 });
    let rh = sized(&mut scratch.rh, b * u);
    let new_h = sized(&mut scratch.new_h, b * u);
    let new_c = sized(&mut scratch.new_c, b * u);
    let cand = sized(&mut scratch.cand, b * u);
    let dropped_h = sized(
        &mut scratch.dropped_h,
        if step_tape.as_ref().is_some_and(|s| s.rec_mask.is_some()) { b * u } else { 0 },
    );
    // Keras's default activations run through the fused SIMD cells; others use scalar code.
    let fused = a.activation == Activation::Tanh && a.recurrent_activation == Activation::Sigmoid;
    // A joined step of the fused LSTM runs its product and its cell a block of rows at a
    // time (see `lstm_joined_in_blocks`); a product that splits across threads, as one block.
    let lstm_block = (join && fused && a.cell == CellKind::Lstm)
        .then(|| if crate::kernels::splits_rows(b, d + u, gu) { b } else { THEN_ROWS });
    let arch = pulp::Arch::new();
    let act = |v: f32| activation::scalar(a.activation, v);
    let ract = |v: f32| activation::scalar(a.recurrent_activation, v);

    for step in 0..t {
        let ti = if a.go_backwards { t - 1 - step } else { step };
        if let Some(Step { tape, .. }) = step_tape.as_mut() {
            tape.h_prev[step].copy_from_slice(state_h);
            if a.cell == CellKind::Lstm {
                tape.c_prev[step].copy_from_slice(state_c);
            }
        }
        // The fused LSTM cell reads no `h`, so without a mask (every row commits) it writes
        // the new `h` straight into the state.
        let h_in_place = mask.is_none() && fused && a.cell == CellKind::Lstm;
        if let Some(stacked) = stacked
            && let Some(block) = lstm_block
            && let Projection::PerStep(xs) = xp
        {
            let rows = JoinedRows { x: &xs[ti * d..], ld: t * d, d, bias: &w.bias_in, block };
            let h_new = if h_in_place { None } else { Some(&mut new_h[..]) };
            lstm_joined_in_blocks(arch, stacked, rows, state_h, state_c, new_c, h_new, rec);
        } else {
            // The recurrent products read `h` through recurrent dropout's mask, if any.
            let hd: &[f32] = match step_tape.as_ref().and_then(|s| s.rec_mask) {
                Some(m) => {
                    for ((d, h), k) in dropped_h.iter_mut().zip(&state_h[..]).zip(m) {
                        *d = h * k;
                    }
                    &*dropped_h
                }
                None => &state_h[..],
            };
            // This step's input projection: row `bi` at `xp_now[bi * xp_stride..]`.
            let backwards = scratch.backwards;
            scratch.backwards = !backwards;
            let (xp_now, xp_stride): (&[f32], usize) = match xp {
                Projection::Whole(all) => (&all[ti * gu..], t * gu),
                Projection::PerStep(xs) if let Some(stacked) = stacked => {
                    // `[x_t, h]` read where the two are (a copy of both was a tenth of the step
                    // of serve-streams); both products in `rec`; the cell adds the bias, read as
                    // a projection whose rows are all the same row.
                    let rows = Lhs::Joined { first: &xs[ti * d..], ld1: t * d, d, second: hd, ld2: u };
                    matmul_prepacked_lhs(b, rows, stacked, rec, Start::Zero);
                    (&w.bias_in[..], 0)
                }
                Projection::PerStep(xs) => {
                    w.kernel.product_strided(b, &xs[ti * d..], t * d, step_xp, Start::Bias(&w.bias_in));
                    (&*step_xp, gu)
                }
            };
            match a.cell {
                _ if join => {}
                CellKind::Gru { reset_after: false } => {
                    w.recurrent.product_turning(b, hd, &mut rec[..b * 2 * u], backwards)
                }
                _ => w.recurrent.product_turning(b, hd, rec, backwards),
            }
            let h = &state_h[..];
            match a.cell {
                CellKind::Lstm if fused => {
                    let record = step_tape.as_mut().and_then(|st| {
                        let TapeRows { gates, c_act, .. } = &mut st.tape;
                        Some((gates.get_mut(step)?, c_act.get_mut(step)?))
                    });
                    arch.dispatch(simd::LstmRows {
                        units: u,
                        xp: xp_now,
                        xp_stride,
                        rec,
                        c_prev: state_c,
                        c_new: &mut new_c[..],
                        h_new: if h_in_place { &mut state_h[..] } else { &mut new_h[..] },
                        record,
                    })
                }
                CellKind::Gru { reset_after: true } if fused => {
                    if let Some(br) = w.bias_rec.as_deref() {
                        for r in rec.chunks_mut(gu) {
                            for (rv, bv) in r.iter_mut().zip(br) {
                                *rv += bv;
                            }
                        }
                    }
                    arch.dispatch(simd::GruRows {
                        units: u,
                        xp: xp_now,
                        xp_stride,
                        rec,
                        h_prev: h,
                        h_new: &mut new_h[..],
                    });
                }
                CellKind::Lstm => {
                    let c = &state_c[..];
                    for bi in 0..b {
                        let z = &xp_now[bi * xp_stride..][..gu];
                        let r = &rec[bi * gu..][..gu];
                        for j in 0..u {
                            let i_g = ract(z[j] + r[j]);
                            let f_g = ract(z[u + j] + r[u + j]);
                            let c_g = act(z[2 * u + j] + r[2 * u + j]);
                            let o_g = ract(z[3 * u + j] + r[3 * u + j]);
                            let c_new = f_g * c[bi * u + j] + i_g * c_g;
                            new_c[bi * u + j] = c_new;
                            new_h[bi * u + j] = o_g * act(c_new);
                        }
                    }
                }
                CellKind::Gru { reset_after: true } => {
                    let br = w.bias_rec.as_deref();
                    for bi in 0..b {
                        let z = &xp_now[bi * xp_stride..][..gu];
                        let r = &mut rec[bi * gu..][..gu];
                        if let Some(br) = br {
                            for (rv, bv) in r.iter_mut().zip(br) {
                                *rv += bv;
                            }
                        }
                        for j in 0..u {
                            let zg = ract(z[j] + r[j]);
                            let rg = ract(z[u + j] + r[u + j]);
                            let hh = act(z[2 * u + j] + rg * r[2 * u + j]);
                            let hp = h[bi * u + j];
                            new_h[bi * u + j] = zg * hp + (1.0 - zg) * hh;
                        }
                    }
                }
                CellKind::Gru { reset_after: false } => {
                    // r * h first, then its product with the candidate kernel.
                    let zg_all = &mut *new_c;
                    for bi in 0..b {
                        let z = &xp_now[bi * xp_stride..][..gu];
                        let r = &rec[bi * 2 * u..][..2 * u];
                        for j in 0..u {
                            zg_all[bi * u + j] = ract(z[j] + r[j]);
                            let rg = ract(z[u + j] + r[u + j]);
                            rh[bi * u + j] = rg * hd[bi * u + j];
                        }
                    }
                    w.recurrent_h.product(b, rh, cand);
                    for bi in 0..b {
                        let z = &xp_now[bi * xp_stride..][..gu];
                        for j in 0..u {
                            let hh = act(z[2 * u + j] + cand[bi * u + j]);
                            let zg = zg_all[bi * u + j];
                            new_h[bi * u + j] = zg * h[bi * u + j] + (1.0 - zg) * hh;
                        }
                    }
                }
                CellKind::SimpleRnn => {
                    for bi in 0..b {
                        let z = &xp_now[bi * xp_stride..][..gu];
                        let r = &rec[bi * gu..][..gu];
                        for j in 0..u {
                            new_h[bi * u + j] = act(z[j] + r[j]);
                        }
                    }
                }
            }
            if let Some(dst) = step_tape.as_mut().and_then(|st| st.tape.rec.get_mut(step)) {
                match a.cell {
                    CellKind::Gru { reset_after: false } => {
                        for bi in 0..b {
                            dst[bi * gu..][..2 * u].copy_from_slice(&rec[bi * 2 * u..][..2 * u]);
                            dst[bi * gu + 2 * u..][..u].copy_from_slice(&cand[bi * u..][..u]);
                        }
                    }
                    _ => dst.copy_from_slice(rec),
                }
            }
        }
        // Commit the step: whole blocks without a mask, else row by row.
        let lstm = a.cell == CellKind::Lstm;
        if mask.is_none() {
            // The last output is the final `h`, copied once after the loop.
            if !h_in_place {
                state_h.copy_from_slice(new_h);
            }
            if lstm {
                state_c.copy_from_slice(new_c);
            }
            if let Some(seq) = sequence.as_deref_mut() {
                for bi in 0..b {
                    seq[(bi * t + step) * u..][..u].copy_from_slice(&state_h[bi * u..][..u]);
                }
            }
        } else {
            for bi in 0..b {
                let live = mask.is_none_or(|m| m[[bi, ti]]);
                let row = bi * u..bi * u + u;
                if live {
                    state_h[row.clone()].copy_from_slice(&new_h[row.clone()]);
                    out_prev[row.clone()].copy_from_slice(&new_h[row.clone()]);
                    if lstm {
                        state_c[row.clone()].copy_from_slice(&new_c[row.clone()]);
                    }
                }
                if let Some(seq) = sequence.as_deref_mut() {
                    let dst = &mut seq[(bi * t + step) * u..][..u];
                    if live || !zero_masked {
                        dst.copy_from_slice(&out_prev[row]);
                    } else {
                        dst.fill(0.0);
                    }
                }
            }
        }
        if let Some(Step { tape, .. }) = step_tape.as_mut() {
            for bi in 0..b {
                tape.live[step][bi] = mask.is_none_or(|m| m[[bi, ti]]);
            }
            if lstm {
                tape.c_new[step].copy_from_slice(state_c);
            }
        }
    }
    if mask.is_none() && t > 0 {
        out_prev.copy_from_slice(state_h);
    }
}

/// One step's inputs for [`lstm_joined_in_blocks`]: row `i` of `x_t` at `x[i · ld..][..d]`,
/// the bias every row adds, and the rows per block.
struct JoinedRows<'a> {
    x: &'a [f32],
    ld: usize,
    d: usize,
    bias: &'a [f32],
    block: usize,
}

/// One inference step of a fused LSTM over all rows of `h` (`[B, U]`), with `[x_t, h]`
/// multiplied by `[kernel; recurrent]` (`stacked`) and the cell applied a block of rows
/// ([`THEN_ROWS`] on one thread) at a time, each block right after its product: the block's gate sums
/// (48 × 4U floats, 192 KiB for big-lstm) are read back from the L2 cache where the whole
/// step's (1 MiB) came back from the L3 cache or memory. Rows are independent, so the
/// block's new `h`, written in place when `h_new` is `None`, is read by no other block's
/// product. `c_new` gets the new cell states; `rec` is the blocks' work buffer.
#[allow(clippy::too_many_arguments)]
fn lstm_joined_in_blocks(
    arch: pulp::Arch,
    stacked: &PackedB,
    rows: JoinedRows<'_>,
    h: &mut [f32],
    c_prev: &[f32],
    c_new: &mut [f32],
    mut h_new: Option<&mut [f32]>,
    rec: &mut [f32],
) {
    let JoinedRows { x, ld, d, bias, block: per } = rows;
    let (k, gu) = (stacked.k(), stacked.n());
    let u = k - d;
    let b = h.len() / u.max(1);
    for r0 in (0..b).step_by(per.max(1)) {
        let r = per.min(b - r0);
        let block = r0 * u..(r0 + r) * u;
        let lhs = Lhs::Joined { first: &x[r0 * ld..], ld1: ld, d, second: &h[block.clone()], ld2: u };
        matmul_prepacked_lhs(r, lhs, stacked, &mut rec[..r * gu], Start::Zero);
        let h_new = match h_new.as_deref_mut() {
            Some(h_new) => &mut h_new[block.clone()],
            None => &mut h[block.clone()],
        };
        arch.dispatch(simd::LstmRows {
            units: u,
            xp: bias,
            xp_stride: 0,
            rec: &rec[..r * gu],
            c_prev: &c_prev[block.clone()],
            c_new: &mut c_new[block],
            h_new,
            record: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3};
    use seqmodel_ir::CellKind;

    fn attrs(cell: CellKind, units: usize, input_dim: usize, go_backwards: bool) -> RnnAttrs {
        RnnAttrs {
            cell,
            units,
            input_dim,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            use_bias: true,
            return_sequences: true,
            return_state: false,
            go_backwards,
            stateful: false,
            unroll: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
        }
    }

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0 - 0.5) * 0.4).collect()
    }

    /// The input projection computed step by step (as large layers run it) gives what the
    /// projection of every step ahead gives, for every cell, with and without a mask, on
    /// one and two threads.
    #[test]
    fn the_projection_per_step_equals_the_projection_ahead() {
        // A sequence, and the single step a server's streams take (an LSTM's joins its two
        // products into one).
        for t in [40, 1] {
            projection_per_step_equals_projection_ahead(t);
        }
        assert!(projection_per_step(256, 50, 1024), "big-lstm projects step by step");
        assert!(!projection_per_step(1, 100, 512), "stream-lstm projects ahead");
        assert!(projection_per_step(256, 1, 256), "serve-streams' step joins its products");
    }

    fn projection_per_step_equals_projection_ahead(t: usize) {
        // Two whole blocks and part of one for a joined LSTM step (`lstm_joined_in_blocks`).
        let (b, d, u) = (2 * THEN_ROWS + 5, 40, 64);
        assert!(b >= PER_STEP_MIN_ROWS);
        for cell in [
            CellKind::Lstm,
            CellKind::Gru { reset_after: true },
            CellKind::Gru { reset_after: false },
            CellKind::SimpleRnn,
        ] {
            let a = attrs(cell, u, d, true);
            let gu = cell.gates() * u;
            // Large enough that two threads run shares of the batch (but SimpleRNN's).
            assert!(t == 1 || cell == CellKind::SimpleRnn || layer_macs(b, t, gu, u, d) >= PARALLEL_MIN_MACS);
            let bias = values(if cell == (CellKind::Gru { reset_after: true }) { 2 * gu } else { gu }, 3);
            let w = RnnWeights::pack(&a, &values(d * gu, 1), &values(u * gu, 2), Some(&bias));
            let xs = values(b * t * d, 4);
            let mask = Array2::from_shape_fn((b, t), |(i, j)| (i + 2 * j) % 5 != 0);
            for mask in [Some(mask.view()), None] {
                for threads in [1, 2] {
                    crate::set_num_threads(threads);
                    let run = |per_step: bool| {
                        let mut states = vec![values(b * u, 6); cell.states()];
                        let mut sequence = vec![0.0; b * t * u];
                        let mut last = vec![0.0; b * u];
                        let out =
                            RnnOut { sequence: Some(&mut sequence), last: &mut last, states: &mut states };
                        let mut scratch = RnnScratch::default();
                        if per_step {
                            run_shares(
                                &a,
                                &w,
                                Projection::PerStep(&xs),
                                (b, t),
                                mask,
                                false,
                                &mut scratch,
                                out,
                            );
                        } else {
                            let mut xp = vec![0.0; b * t * gu];
                            w.kernel.product_from(b * t, &xs, &mut xp, Start::Bias(&w.bias_in));
                            forward_projected(&a, &w, &xp, (b, t), mask, false, &mut scratch, out);
                        }
                        (sequence, last, states)
                    };
                    let (ahead, per_step) = (run(false), run(true));
                    crate::set_num_threads(0);
                    for (x, y) in ahead.0.iter().chain(&ahead.1).zip(per_step.0.iter().chain(&per_step.1)) {
                        assert!((x - y).abs() <= 1e-6, "{cell:?}, {threads} threads: {x} vs {y}");
                    }
                    assert!(ahead.1.iter().any(|v| *v != 0.0));
                    assert_eq!(ahead.2.len(), per_step.2.len());
                }
            }
        }
    }

    /// A training run that projects step by step records the tape that one projecting ahead
    /// records (the fused LSTM's, which keeps no projection), and gives the same outputs.
    #[test]
    fn a_recording_projected_per_step_equals_one_projected_ahead() {
        let (b, t, d, u) = (PER_STEP_MIN_ROWS + 3, 9, 20, 16);
        let a = attrs(CellKind::Lstm, u, d, false);
        let gu = 4 * u;
        let w = RnnWeights::pack(&a, &values(d * gu, 1), &values(u * gu, 2), Some(&values(gu, 3)));
        let xs = values(b * t * d, 4);
        let mask = Array2::from_shape_fn((b, t), |(i, j)| (i + j) % 4 != 1);
        let run = |per_step: bool| {
            let mut tape = RnnTape::new(&a, (b, t, d), false, None);
            assert!(!tape.needs_products());
            let mut states = vec![values(b * u, 6); 2];
            let mut sequence = vec![0.0; b * t * u];
            let mut last = vec![0.0; b * u];
            let out = RnnOut { sequence: Some(&mut sequence), last: &mut last, states: &mut states };
            let record = Recording { rec_mask: None, tape: &mut tape };
            let mut xp = vec![0.0; b * t * gu];
            w.kernel.product_from(b * t, &xs, &mut xp, Start::Bias(&w.bias_in));
            let proj = if per_step { Projection::PerStep(&xs) } else { Projection::Whole(&xp) };
            let mut scratch = RnnScratch::default();
            run_recorded(&a, &w, (&xs, proj), (b, t), Some(mask.view()), false, &mut scratch, record, out);
            let (gates, c_act) = tape.gates.clone().expect("the fused cell records its gates");
            (sequence, last, tape.h_prev.clone(), tape.c_new.clone(), gates, c_act, tape.x.clone())
        };
        let (ahead, per_step) = (run(false), run(true));
        let close =
            |x: &[f32], y: &[f32]| x.len() == y.len() && x.iter().zip(y).all(|(x, y)| (x - y).abs() <= 1e-6);
        assert!(close(&ahead.0, &per_step.0) && close(&ahead.1, &per_step.1), "outputs");
        assert!(close(&ahead.2, &per_step.2) && close(&ahead.3, &per_step.3), "states on the tape");
        assert!(close(&ahead.4, &per_step.4) && close(&ahead.5, &per_step.5), "gates on the tape");
        assert_eq!(ahead.6, per_step.6);
        // The tape's inputs in processing order: step 1's row 2 is input row (2, 1).
        assert_eq!(ahead.6[(b + 2) * d..][..d], xs[(2 * t + 1) * d..][..d]);
    }

    /// Batch shares run on two threads give exactly what one thread gives (each row's
    /// arithmetic is the same), with masks, both masking modes, backwards, and every cell.
    #[test]
    fn batch_shares_on_two_threads_equal_one_thread() {
        let (b, t, d, u) = (19, 80, 12, 64);
        for cell in
            [CellKind::Lstm, CellKind::Gru { reset_after: true }, CellKind::Gru { reset_after: false }]
        {
            for (go_backwards, zero_masked) in [(false, false), (true, true)] {
                let a = attrs(cell, u, d, go_backwards);
                let gu = cell.gates() * u;
                assert!(layer_macs(b, t, gu, u, d) >= PARALLEL_MIN_MACS, "large enough to split");
                let bias = values(if cell == (CellKind::Gru { reset_after: true }) { 2 * gu } else { gu }, 3);
                let w = RnnWeights::pack(&a, &values(d * gu, 1), &values(u * gu, 2), Some(&bias));
                let x = Array3::from_shape_vec((b, t, d), values(b * t * d, 4)).unwrap();
                let mask = Array2::from_shape_fn((b, t), |(i, j)| (i * 3 + j) % 7 != 0);
                let initial: Vec<Array2<f32>> = (0..cell.states())
                    .map(|k| Array2::from_shape_vec((b, u), values(b * u, 5 + k)).unwrap())
                    .collect();
                for mask in [Some(mask.view()), None] {
                    let run = |threads: usize| {
                        crate::set_num_threads(threads);
                        let out = forward(&a, &w, x.view(), mask, Some(initial.clone()), zero_masked);
                        crate::set_num_threads(0);
                        out
                    };
                    let (one, two) = (run(1), run(2));
                    assert_eq!(one.sequence, two.sequence, "{cell:?}");
                    assert_eq!(one.last, two.last, "{cell:?}");
                    assert_eq!(one.states, two.states, "{cell:?}");
                    assert!(one.last.iter().any(|v| *v != 0.0));
                    // Without a mask, the last output is the last step of the sequence.
                    if mask.is_none() {
                        let seq = one.sequence.as_ref().expect("return_sequences");
                        assert_eq!(seq.index_axis(ndarray::Axis(1), t - 1), one.last);
                    }
                }
            }
        }
    }

    /// A training run's batch shares on two threads record the tape that one thread records
    /// and give the same outputs, for every cell (the LSTM with and without its fused gates),
    /// with a mask and recurrent dropout.
    #[test]
    fn a_recording_on_two_threads_equals_one_on_one_thread() {
        let (b, t, d) = (19, 80, 12);
        for (cell, u, activation) in [
            (CellKind::Lstm, 64, Activation::Tanh),
            (CellKind::Lstm, 64, Activation::Relu),
            (CellKind::Gru { reset_after: true }, 64, Activation::Tanh),
            (CellKind::Gru { reset_after: false }, 64, Activation::Tanh),
            (CellKind::SimpleRnn, 128, Activation::Tanh),
        ] {
            let a = RnnAttrs { activation, ..attrs(cell, u, d, true) };
            let gu = cell.gates() * u;
            assert!(layer_macs(b, t, gu, u, d) >= PARALLEL_MIN_MACS, "{cell:?}: large enough to split");
            let bias = values(if cell == (CellKind::Gru { reset_after: true }) { 2 * gu } else { gu }, 3);
            let w = RnnWeights::pack(&a, &values(d * gu, 1), &values(u * gu, 2), Some(&bias));
            let xs = values(b * t * d, 4);
            let mask = Array2::from_shape_fn((b, t), |(i, j)| (i * 3 + j) % 7 != 0);
            // Each row's mask differs (a share given another row's would record another run).
            let keep: Vec<f32> =
                values(b * u, 9).iter().map(|v| if *v < -0.1 { 0.0 } else { 1.25 }).collect();
            let run = |threads: usize| {
                crate::set_num_threads(threads);
                let mut tape = RnnTape::new(&a, (b, t, d), false, None);
                let mut states = vec![values(b * u, 6); cell.states()];
                let mut sequence = vec![0.0; b * t * u];
                let mut last = vec![0.0; b * u];
                let out = RnnOut { sequence: Some(&mut sequence), last: &mut last, states: &mut states };
                let record = Recording { rec_mask: Some(&keep), tape: &mut tape };
                let mut scratch = RnnScratch::default();
                forward_rows(&a, &w, &xs, (b, t), Some(mask.view()), false, &mut scratch, Some(record), out)
                    .expect("runs");
                crate::set_num_threads(0);
                let gates = tape.gates.clone().unwrap_or_default();
                let arrays =
                    [&tape.h_prev, &tape.c_prev, &tape.c_new, &tape.rec, &gates.0, &gates.1, &tape.x]
                        .map(|v| v.to_vec());
                (sequence, last, states, arrays, tape.live.clone())
            };
            let (one, two) = (run(1), run(2));
            assert_eq!(one.0, two.0, "{cell:?} {activation:?}: sequence");
            assert_eq!(one.1, two.1, "{cell:?} {activation:?}: last");
            assert_eq!(one.2, two.2, "{cell:?} {activation:?}: states");
            assert_eq!(one.3, two.3, "{cell:?} {activation:?}: tape");
            assert_eq!(one.4, two.4, "{cell:?} {activation:?}: live rows");
            assert!(one.1.iter().any(|v| *v != 0.0));
            assert!(one.4.iter().any(|l| !l) && one.3[0].iter().any(|v| *v != 0.0));
        }
    }
}
