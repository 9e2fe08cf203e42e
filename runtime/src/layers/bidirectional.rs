//! `Bidirectional`: a forward and a backward recurrent layer over the same sequence, their
//! outputs merged (`concat`, `sum`, `mul`, `ave`, or two outputs for `None`), with Keras's
//! semantics (masked steps output zeros in both layers; final states of both with
//! `return_state`; carried states when stateful). One forward pass for inference and
//! training (which records both layers' tapes) and its backward pass.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayView3, Axis, IxDyn};
use seqmodel_ir::{MergeMode, RnnAttrs};

use super::recurrent::{self, Recording, RnnOut, RnnTape, RnnWeights, sized};
use super::{GradMap, dropped_input, mask_input_grad};
use crate::WeightStore;
use crate::error::Result;
use crate::exec::{
    NodeTape, Scratch, Training, Value, contiguous, copy_state, f32_slot, save_states, set_mask, zero_states,
};

/// What the backward pass of a Bidirectional layer needs.
#[derive(Debug)]
pub struct BidiTape {
    /// The forward layer's tape.
    pub(crate) forward: RnnTape,
    /// The backward layer's tape.
    pub(crate) backward: RnnTape,
    /// Each layer's main output (sequence in processing order, or last step); kept for
    /// `mul` only, empty otherwise.
    pub(crate) outputs: (Vec<f32>, Vec<f32>),
    /// Each layer's input dropout keep mask `[B·D]`.
    pub(crate) input_keep: [Option<Vec<f32>>; 2],
}

/// The layer's attributes and packed weights.
#[derive(Debug, Clone, Copy)]
pub struct Bidirectional<'a> {
    /// The forward layer.
    pub forward: &'a RnnAttrs,
    /// The backward layer (`go_backwards` flipped).
    pub backward: &'a RnnAttrs,
    /// How the outputs are combined.
    pub merge: MergeMode,
}

impl Bidirectional<'_> {
    /// Runs both layers over `x` `[B, T, D]` into `out`: the merged output (two for `None`),
    /// then with `return_state` the forward layer's states and the backward layer's.
    #[allow(clippy::too_many_arguments)] // one node's context, as in `exec::node_into`
    pub(crate) fn forward_into(
        &self,
        weights: &(RnnWeights, RnnWeights),
        x: ArrayView3<'_, f32>,
        mask: Option<ArrayView2<'_, bool>>,
        state: &mut Option<Vec<Array2<f32>>>,
        scratch: &mut Scratch,
        out: &mut Vec<Value>,
        mut train: Option<&mut Training>,
    ) -> Result<()> {
        let (fa, ba) = (self.forward, self.backward);
        let (b, t, d) = x.dim();
        let u = fa.units;
        let k = fa.cell.states();
        let (fw, bw) = weights;
        zero_states(&mut scratch.states, k, b * u);
        zero_states(&mut scratch.states_b, k, b * u);
        if fa.stateful
            && let Some(s) = state.as_ref()
        {
            for (dst, m) in scratch.states.iter_mut().chain(scratch.states_b.iter_mut()).zip(s) {
                copy_state(dst, m.view())?;
            }
        }
        let zero = mask.is_some();
        let rs = fa.return_sequences;
        let seq_len = if rs { b * t * u } else { 0 };
        let Scratch { rnn: sc, states, states_b, last, last_b, seq, seq_b, .. } = scratch;
        let (seq_f, seq_r) = (sized(seq, seq_len), sized(seq_b, seq_len));
        let (last_f, last_r) = (sized(last, b * u), sized(last_b, b * u));
        // A training pass records both layers, each behind its own dropout masks.
        let mut tapes = None;
        let mut input_keep = [None, None];
        if let Some(tr) = train.as_deref_mut() {
            let [df, db] = std::mem::take(&mut tr.dropout);
            tapes = Some([
                RnnTape::new(fa, (b, t, d), zero, df.recurrent),
                RnnTape::new(ba, (b, t, d), zero, db.recurrent),
            ]);
            input_keep = [df.input, db.input];
        }
        for (dir, (attrs, w, st, seq_o, last_o)) in [
            (fa, fw, &mut *states, &mut *seq_f, &mut *last_f),
            (ba, bw, &mut *states_b, &mut *seq_r, &mut *last_r),
        ]
        .into_iter()
        .enumerate()
        {
            let xd = input_keep[dir].as_deref().map(|m| dropped_input(x, m));
            let xv = xd.as_ref().map_or(x, |a| a.view());
            let rec_mask = tapes.as_mut().and_then(|tp| tp[dir].rec_mask.take());
            let rec =
                tapes.as_mut().map(|tp| Recording { rec_mask: rec_mask.as_deref(), tape: &mut tp[dir] });
            recurrent::forward_into(
                attrs,
                w,
                xv,
                mask,
                zero,
                sc,
                rec,
                RnnOut { sequence: rs.then_some(&mut *seq_o), last: last_o, states: st },
            )?;
            if let Some(tp) = tapes.as_mut() {
                tp[dir].rec_mask = rec_mask;
            }
            if let Some(xd) = xd {
                crate::pool::recycle(xd.into_raw_vec_and_offset().0);
            }
        }
        if fa.stateful {
            let all: Vec<Vec<f32>> = states.iter().chain(states_b.iter()).cloned().collect();
            save_states(state, &all, b, u);
        }
        // The backward layer's sequence comes out in processing order: flip it back.
        let (f_main, b_main, shape): (&[f32], &[f32], Vec<usize>) =
            if rs { (seq_f, seq_r, vec![b, t, u]) } else { (last_f, last_r, vec![b, u]) };
        let at_b = |bi: usize, ti: usize, j: usize| {
            if rs { b_main[(bi * t + (t - 1 - ti)) * u + j] } else { b_main[bi * u + j] }
        };
        let steps = if rs { t } else { 1 };
        let main_ports = if self.merge == MergeMode::None { 2 } else { 1 };
        match self.merge {
            MergeMode::None => {
                let y = contiguous(f32_slot(out, 0, &shape)?);
                y.copy_from_slice(f_main);
                let y = contiguous(f32_slot(out, 1, &shape)?);
                for bi in 0..b {
                    for ti in 0..steps {
                        for j in 0..u {
                            y[(bi * steps + ti) * u + j] = at_b(bi, ti, j);
                        }
                    }
                }
            }
            m => {
                let width = if m == MergeMode::Concat { 2 * u } else { u };
                let mut mshape = shape.clone();
                *mshape.last_mut().expect("rank ≥ 2") = width;
                let y = contiguous(f32_slot(out, 0, &mshape)?);
                for bi in 0..b {
                    for ti in 0..steps {
                        let row = &mut y[(bi * steps + ti) * width..][..width];
                        let f = &f_main[(bi * steps + ti) * u..][..u];
                        for j in 0..u {
                            let bv = at_b(bi, ti, j);
                            match m {
                                MergeMode::Concat => {
                                    row[j] = f[j];
                                    row[u + j] = bv;
                                }
                                MergeMode::Sum => row[j] = f[j] + bv,
                                MergeMode::Mul => row[j] = f[j] * bv,
                                MergeMode::Ave => row[j] = (f[j] + bv) * 0.5,
                                MergeMode::None => unreachable!("handled above"),
                            }
                        }
                    }
                }
            }
        }
        let mut ports = main_ports;
        if fa.return_state {
            for s in states.iter().chain(states_b.iter()) {
                contiguous(f32_slot(out, ports, &[b, u])?).copy_from_slice(&s[..b * u]);
                ports += 1;
            }
        }
        out.truncate(ports);
        let out_mask = if rs { mask } else { None };
        for p in 0..ports {
            set_mask(out, p, if p < main_ports { out_mask } else { None });
        }
        if let (Some(tr), Some([tf, tb])) = (train, tapes) {
            tr.tape = Some(NodeTape::Bidirectional(Box::new(BidiTape {
                forward: tf,
                backward: tb,
                // Only `mul`'s gradient reads the layers' own outputs.
                outputs: if self.merge == MergeMode::Mul {
                    (f_main.to_vec(), b_main.to_vec())
                } else {
                    (Vec::new(), Vec::new())
                },
                input_keep,
            })));
        }
        Ok(())
    }

    /// The backward pass: the gradients of the outputs (`None` = zero) in, the weight
    /// gradients added to `wg` for `specs` (the forward layer's weights, then the backward
    /// layer's: `prefix/forward/…`, `prefix/backward/…`), the input's gradient `[B, T, D]`
    /// out.
    pub(crate) fn backward(
        &self,
        tape: &BidiTape,
        douts: &[Option<ArrayD<f32>>],
        store: &WeightStore,
        specs: &[seqmodel_ir::WeightSpec],
        wg: &mut GradMap,
    ) -> Result<ArrayD<f32>> {
        let (fa, ba) = (self.forward, self.backward);
        let u = fa.units;
        let k = fa.cell.states();
        let (b, t, d) = tape.forward.dims;
        let rs = fa.return_sequences;
        let main_shape = if rs { vec![b, t, u] } else { vec![b, u] };
        let grad = |i: usize, shape: &[usize]| -> ArrayD<f32> {
            match douts.get(i).and_then(Option::as_ref) {
                Some(g) => g.as_standard_layout().to_owned(),
                None => ArrayD::zeros(IxDyn(shape)),
            }
        };
        // A layer's main output as an array; `flip` puts the backward one in input order.
        let as_array = |v: &[f32], flip: bool| {
            let mut a = ArrayD::from_shape_vec(IxDyn(&main_shape), v.to_vec()).expect("output shape");
            if flip && rs {
                a.invert_axis(Axis(1));
            }
            a
        };
        let (df, mut db) = match self.merge {
            MergeMode::None => (grad(0, &main_shape), grad(1, &main_shape)),
            MergeMode::Concat => {
                let mut wide = main_shape.clone();
                *wide.last_mut().expect("rank ≥ 2") = 2 * u;
                let g = grad(0, &wide);
                let last = g.ndim() - 1;
                (
                    g.slice_axis(Axis(last), (0..u).into()).to_owned(),
                    g.slice_axis(Axis(last), (u..2 * u).into()).to_owned(),
                )
            }
            MergeMode::Sum => (grad(0, &main_shape), grad(0, &main_shape)),
            MergeMode::Ave => (grad(0, &main_shape) * 0.5, grad(0, &main_shape) * 0.5),
            MergeMode::Mul => {
                let g = grad(0, &main_shape);
                let (fo, bo) = (as_array(&tape.outputs.0, false), as_array(&tape.outputs.1, true));
                (&g * &bo, &g * &fo)
            }
        };
        if rs {
            // Back to the backward layer's processing order.
            db.invert_axis(Axis(1));
        }
        let main_ports = if self.merge == MergeMode::None { 2 } else { 1 };
        let state_grads = |first: usize| -> Vec<Option<Vec<f32>>> {
            (first..first + k)
                .map(|i| douts.get(i).and_then(Option::as_ref).map(|g| g.iter().copied().collect()))
                .collect()
        };
        let (sf, sb) = if fa.return_state {
            (state_grads(main_ports), state_grads(main_ports + k))
        } else {
            (Vec::new(), Vec::new())
        };
        let mut dx = vec![0.0f32; b * t * d];
        let (f_specs, b_specs) = specs.split_at(if fa.use_bias { 3 } else { 2 }.min(specs.len()));
        for (tp, attrs, dmain, ds, keep, specs) in [
            (&tape.forward, fa, &df, &sf, &tape.input_keep[0], f_specs),
            (&tape.backward, ba, &db, &sb, &tape.input_keep[1], b_specs),
        ] {
            let g = recurrent::backward_to(tp, attrs, store, specs, Some(dmain), ds, true, wg)?;
            let mut gx = g.dx;
            if let Some(m) = keep {
                mask_input_grad(&mut gx, m, (b, t, d));
            }
            for (o, v) in dx.iter_mut().zip(&gx) {
                *o += v;
            }
        }
        Ok(ArrayD::from_shape_vec(IxDyn(&[b, t, d]), dx).expect("input shape"))
    }
}
