//! The nodes of specialised generated code: each holds its own output and state buffers as
//! flat `f32` rows and calls its layer's forward pass on plain slices, with every size given
//! by the generated code (literals where the model fixes them). No `Op` is matched, no
//! `IxDyn` shape is built and nothing is checked per node: the generated code checks the
//! inputs once, at the API boundary, and sizes everything from them. The layer computations
//! are the ones the interpreter runs ([`crate::layers::recurrent::forward_rows`],
//! [`crate::layers::basic::dense_rows`], [`crate::kernels::activation::apply`]), so both give
//! the same numbers.

use ndarray::{ArrayView, ArrayView2, ArrayViewD, Dimension, IntoDimension};
use seqmodel_ir::{Activation, RnnAttrs};

use crate::error::{Result, RuntimeError};
use crate::exec::Prepared;
use crate::kernels::activation;
use crate::layers::basic;
use crate::layers::recurrent::{self as rnn, RnnOut};
use crate::memory::sized;

/// A recurrent layer's buffers: its output (the sequence, or the last step) and its states
/// (`h`, and `c` for LSTM; carried between calls when the layer is stateful). The
/// recurrence's work buffers ([`RnnScratch`], the input projection of every step among them)
/// are the model's, one set for all its recurrent layers as in the interpreter's workspace:
/// each layer's buffers would be as many more megabytes out of cache.
#[derive(Debug, Clone, Default)]
pub struct RnnNode {
    out: Vec<f32>,
    last: Vec<f32>,
    states: Vec<Vec<f32>>,
    /// A step's work buffers for the step kernels (see [`RnnNode::step_parts`]).
    work: Vec<f32>,
}

/// A recurrent layer's buffers for one step of one row with the step kernels
/// ([`crate::kernels::simd::step`]).
#[derive(Debug)]
pub struct RnnStepParts<'a> {
    /// The hidden state, `U`.
    pub h: &'a mut [f32],
    /// The cell state (LSTM), `U`; empty for a GRU.
    pub c: &'a mut [f32],
    /// The input projection, `G·U`.
    pub xp: &'a mut [f32],
    /// The recurrent projection, `G·U`.
    pub rec: &'a mut [f32],
    /// The new cell (LSTM) or hidden (GRU) state, `U`.
    pub new: &'a mut [f32],
}

/// A Dense layer's weights as the step kernels read them.
#[derive(Debug, Clone, Copy)]
pub struct DenseWeights<'a> {
    /// The kernel in column blocks of `width`.
    pub kernel: &'a [f32],
    /// The block width.
    pub width: usize,
    /// The bias.
    pub bias: Option<&'a [f32]>,
}

pub use crate::layers::recurrent::RnnScratch;

impl RnnNode {
    /// Runs the layer `a` (weights `prepared`) over `x`, `[b, t, D]` row-major, and returns
    /// its output: `[b, t, U]` with `return_sequences`, else `[b, U]`. A stateful layer
    /// starts from the states its last call ended with (zeros at first and after
    /// [`RnnNode::reset`]); a batch of another size than those states is an error.
    #[allow(clippy::too_many_arguments)] // the layer, its input and sizes, the shared buffers
    pub fn run(
        &mut self,
        layer: &str,
        a: &RnnAttrs,
        prepared: Option<&Prepared>,
        x: &[f32],
        (b, t): (usize, usize),
        scratch: &mut RnnScratch,
    ) -> Result<&[f32]> {
        self.run_on(layer, a, prepared, (b, t), scratch, |a, w, scratch, out| {
            rnn::forward_rows(a, w, x, (b, t), None, false, scratch, None, out)
        })
    }

    /// [`RnnNode::run`] on one vector per row, `x` `[b, D]`, repeated `steps` times
    /// (`RepeatVector` → RNN: the input projection is computed once per row).
    #[allow(clippy::too_many_arguments)] // the layer, its input and sizes, the shared buffers
    pub fn run_repeated(
        &mut self,
        layer: &str,
        a: &RnnAttrs,
        prepared: Option<&Prepared>,
        x: &[f32],
        (b, steps): (usize, usize),
        scratch: &mut RnnScratch,
    ) -> Result<&[f32]> {
        let d = a.input_dim;
        let x = ArrayView2::from_shape((b, d), &x[..b * d])
            .map_err(|e| RuntimeError::Shape(format!("layer `{layer}`: {b} rows of {d} features: {e}")))?;
        self.run_on(layer, a, prepared, (b, steps), scratch, |a, w, scratch, out| {
            rnn::forward_repeated_into(a, w, x, steps, scratch, out)
        })
    }

    /// Sizes the buffers and states for `b` rows of `t` steps and runs `forward` on them.
    fn run_on(
        &mut self,
        layer: &str,
        a: &RnnAttrs,
        prepared: Option<&Prepared>,
        (b, t): (usize, usize),
        scratch: &mut RnnScratch,
        forward: impl FnOnce(&RnnAttrs, &rnn::RnnWeights, &mut RnnScratch, RnnOut<'_>) -> Result<()>,
    ) -> Result<&[f32]> {
        let Some(Prepared::Rnn(w)) = prepared else {
            return Err(RuntimeError::Shape(format!("layer `{layer}` has no recurrent weights")));
        };
        let u = a.units;
        self.start_states(layer, a, b)?;
        // With the sequence as the output, the last step goes to a buffer of its own.
        let out = if a.return_sequences {
            let sequence = Some(sized(&mut self.out, b * t * u));
            RnnOut { sequence, last: sized(&mut self.last, b * u), states: &mut self.states }
        } else {
            RnnOut { sequence: None, last: sized(&mut self.out, b * u), states: &mut self.states }
        };
        forward(a, w, scratch, out).map_err(|e| e.in_layer(layer))?;
        Ok(&self.out)
    }

    /// The weights and buffers of one step of one row through this layer (`a`, weights
    /// `prepared`) with the step kernels, its states those its last call ended with (zeros at
    /// first, after a reset, and always for a layer that is not stateful), as [`RnnNode::run`]
    /// on a batch of one step would use them. An LSTM or GRU (`reset_after`) only.
    // Inline, with what it calls: the generated `step_one` of the user's crate then folds its
    // literal attributes and sizes into these checks (gen-stateful 0.167 → 0.163 ms per 200
    // steps, interleaved runs).
    #[inline]
    pub fn step_parts<'p>(
        &mut self,
        layer: &str,
        a: &RnnAttrs,
        prepared: Option<&'p Prepared>,
    ) -> Result<(crate::kernels::simd::step::RecurrentWeights<'p>, RnnStepParts<'_>)> {
        let weights = match prepared {
            Some(Prepared::Rnn(w)) => w.step_weights(a.cell),
            _ => None,
        };
        let weights = weights.ok_or_else(|| {
            RuntimeError::Shape(format!("layer `{layer}` has no step-kernel weights (an LSTM's or a GRU's)"))
        })?;
        let u = a.units;
        let gu = a.cell.gates() * u;
        // The same states as `run` keeps (`h`, and `c` for an LSTM).
        self.start_states(layer, a, 1)?;
        let (h, c) = match &mut self.states[..] {
            [h, c, ..] => (h, sized(c, u)),
            [h] => (h, &mut [][..]),
            [] => return Err(RuntimeError::Shape(format!("layer `{layer}` has no states"))),
        };
        let (xp, rest) = sized(&mut self.work, 2 * gu + u).split_at_mut(gu);
        let (rec, new) = rest.split_at_mut(gu);
        Ok((weights, RnnStepParts { h: sized(h, u), c, xp, rec, new }))
    }

    /// The states a call over `b` rows starts from: those the last call ended with when the
    /// layer is stateful (an error for another batch), else zeros.
    #[inline]
    fn start_states(&mut self, layer: &str, a: &RnnAttrs, b: usize) -> Result<()> {
        let u = a.units;
        let carried = a.stateful && self.states.first().is_some_and(|h| !h.is_empty());
        if carried && self.states[0].len() != b * u {
            return Err(RuntimeError::Shape(format!(
                "stateful layer `{layer}` carries states of batch {}; this input has batch {b} \
                 (reset the states to change the batch)",
                self.states[0].len() / u.max(1)
            )));
        }
        if !carried {
            self.states.resize_with(a.cell.states(), Vec::new);
            for s in &mut self.states {
                sized(s, b * u).fill(0.0);
            }
        }
        Ok(())
    }

    /// The hidden state after the last step (the output of [`RnnNode::step_parts`]'s step).
    pub fn step_output(&self) -> &[f32] {
        self.states.first().map_or(&[], |h| &h[..])
    }

    /// Forgets the carried states (Keras's `reset_states`).
    pub fn reset(&mut self) {
        for s in &mut self.states {
            s.clear();
        }
    }
}

/// A Dense layer's output buffer.
#[derive(Debug, Clone, Default)]
pub struct DenseNode {
    out: Vec<f32>,
}

impl DenseNode {
    /// `act(x · W + b)` over `rows` rows of `x` (weights `prepared`); returns the
    /// `rows × units` output.
    pub fn run(
        &mut self,
        layer: &str,
        (units, act): (usize, Activation),
        prepared: Option<&Prepared>,
        x: &[f32],
        rows: usize,
    ) -> Result<&[f32]> {
        let Some(Prepared::Dense { kernel, bias }) = prepared else {
            return Err(RuntimeError::Shape(format!("layer `{layer}` has no Dense weights")));
        };
        let out = sized(&mut self.out, rows * units);
        basic::dense_rows(x, rows, kernel, bias.as_deref(), units, act, out);
        Ok(&self.out)
    }

    /// The weights (`prepared`) and the output buffer of one row through this layer with the
    /// step kernels.
    #[inline]
    pub fn step_parts<'p>(
        &mut self,
        layer: &str,
        units: usize,
        prepared: Option<&'p Prepared>,
    ) -> Result<(DenseWeights<'p>, &mut [f32])> {
        let Some(Prepared::Dense { kernel, bias }) = prepared else {
            return Err(RuntimeError::Shape(format!("layer `{layer}` has no Dense weights")));
        };
        let (kernel, width) = kernel.blocks();
        Ok((DenseWeights { kernel, width, bias: bias.as_deref() }, sized(&mut self.out, units)))
    }

    /// The output of the last step.
    #[inline]
    pub fn step_output(&self) -> &[f32] {
        &self.out
    }
}

/// An activation layer's (or an inference-time identity's) output buffer.
#[derive(Debug, Clone, Default)]
pub struct MapNode {
    out: Vec<f32>,
}

impl MapNode {
    /// `act` over the `len` values of `x`, rows of `width` (softmax normalises each row).
    pub fn run(&mut self, act: Activation, x: &[f32], len: usize, width: usize) -> &[f32] {
        let out = sized(&mut self.out, len);
        out.copy_from_slice(&x[..len]);
        activation::apply(act, out, width);
        &self.out
    }

    /// The output buffer of one step through this layer with the step kernels (`len` values).
    pub fn step_buffer(&mut self, len: usize) -> &mut [f32] {
        sized(&mut self.out, len)
    }

    /// The output of the last step.
    pub fn step_output(&self) -> &[f32] {
        &self.out
    }
}

/// A model input as row-major elements: borrowed when the view already is contiguous and in
/// standard order, else copied into `buffer`.
pub fn input_rows<'a>(x: &'a ArrayViewD<'_, f32>, buffer: &'a mut Vec<f32>) -> &'a [f32] {
    match x.as_slice() {
        Some(xs) => xs,
        None => {
            let dst = sized(buffer, x.len());
            for (d, v) in dst.iter_mut().zip(x.iter()) {
                *d = *v;
            }
            dst
        }
    }
}

/// The first `N` values of a node's output as an array (the output of `step_one`).
pub fn array<const N: usize>(data: &[f32]) -> Result<&[f32; N]> {
    data.get(..N)
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| RuntimeError::Shape(format!("a step's output has {} values, not {N}", data.len())))
}

/// The first `shape`'s product of `data` as an array view of `shape` (an output of a node),
/// rank-typed when `shape` is an array (`[batch, t, 8]` gives an `ArrayView3`).
pub fn output_view<'a, D: Dimension>(
    data: &'a [f32],
    shape: impl IntoDimension<Dim = D>,
) -> Result<ArrayView<'a, f32, D>> {
    let shape = shape.into_dimension();
    let n = shape.size();
    ArrayView::from_shape(shape.clone(), &data[..n.min(data.len())])
        .map_err(|e| RuntimeError::Shape(format!("an output of shape {:?}: {e}", shape.slice())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::recurrent::RnnWeights;
    use ndarray::Array3;
    use seqmodel_ir::CellKind;

    fn lstm(stateful: bool) -> RnnAttrs {
        RnnAttrs {
            cell: CellKind::Lstm,
            units: 3,
            input_dim: 2,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            use_bias: true,
            return_sequences: true,
            return_state: false,
            go_backwards: false,
            stateful,
            unroll: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
        }
    }

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| (((i * 37 + seed * 101) % 17) as f32 / 17.0 - 0.5) * 0.8).collect()
    }

    /// A stateful node carries its states from call to call (two calls of 2 steps equal one
    /// of 4), refuses another batch size until reset, and starts from zeros after a reset.
    #[test]
    fn stateful_nodes_carry_states_until_reset() {
        let a = lstm(true);
        let w = Prepared::Rnn(Box::new(RnnWeights::pack(
            &a,
            &values(2 * 12, 1),
            &values(3 * 12, 2),
            Some(&values(12, 3)),
        )));
        let x = values(2 * 4 * 2, 4);
        let whole = rnn::forward(
            &a,
            match &w {
                Prepared::Rnn(w) => w,
                _ => unreachable!(),
            },
            Array3::from_shape_vec((2, 4, 2), x.clone()).unwrap().view(),
            None,
            None,
            false,
        );
        let whole = whole.sequence.unwrap();
        let (mut node, mut scratch) = (RnnNode::default(), RnnScratch::default());
        let halves: Vec<Vec<f32>> = (0..2)
            .map(|h| {
                let part: Vec<f32> = (0..2).flat_map(|b| x[(b * 4 + 2 * h) * 2..][..4].to_vec()).collect();
                node.run("lstm", &a, Some(&w), &part, (2, 2), &mut scratch).unwrap().to_vec()
            })
            .collect();
        for b in 0..2 {
            for h in 0..2 {
                for s in 0..2 {
                    for j in 0..3 {
                        let got = halves[h][(b * 2 + s) * 3 + j];
                        let want = whole[[b, 2 * h + s, j]];
                        assert!(
                            (got - want).abs() <= 1e-6,
                            "row {b} step {} unit {j}: {got} vs {want}",
                            2 * h + s
                        );
                    }
                }
            }
        }
        let err = node.run("lstm", &a, Some(&w), &values(3 * 2, 5), (3, 1), &mut scratch).unwrap_err();
        assert!(err.to_string().contains("carries states of batch 2"), "{err}");
        node.reset();
        let first = node.run("lstm", &a, Some(&w), &x[..4], (1, 2), &mut scratch).unwrap().to_vec();
        node.reset();
        assert_eq!(node.run("lstm", &a, Some(&w), &x[..4], (1, 2), &mut scratch).unwrap(), &first[..]);
        // Weights of another kind are an error naming the layer, not a panic.
        let err = node.run("lstm", &a, None, &x[..4], (1, 2), &mut scratch).unwrap_err();
        assert!(err.to_string().contains("`lstm`"), "{err}");
    }
}
