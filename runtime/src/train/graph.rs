//! The training pass over a program: the forward pass of every node (the same
//! `exec::node_into` that inference runs, recording tapes), then backward to every weight.

use std::collections::HashMap;

use ndarray::{Array2, ArrayD, ArrayViewD, IxDyn};
use seqmodel_ir::{NodeIndex, Op, Program};

use crate::error::{Result, RuntimeError};
use crate::exec::{self, NodeTape, RnnDropout, Scratch, Training, Value, ValueRef};
use crate::kernels::activation;
use crate::layers::bidirectional::Bidirectional;
use crate::layers::{self, add_weight, basic, mask_input_grad, merge, recurrent, time};
use crate::{Tensor, WeightStore};

/// The carried states of stateful layers, by node.
pub(crate) type States = HashMap<NodeIndex, Option<Vec<Array2<f32>>>>;

/// One forward pass with everything the backward pass needs.
pub(crate) struct Pass {
    pub vals: HashMap<NodeIndex, Vec<Value>>,
    tapes: HashMap<NodeIndex, NodeTape>,
    /// Dropout layers' scaled keep masks.
    keeps: HashMap<NodeIndex, ArrayD<f32>>,
    /// What the layers add to the loss (activity penalties).
    pub penalty: f32,
}

impl Pass {
    /// Gives the pass's float arrays back to the training pool for the next step (the
    /// recurrent tapes give theirs back as they drop).
    pub(crate) fn recycle(self) {
        let values = self.vals.into_values().flatten().filter_map(|v| match v.t {
            Tensor::F32(a) => Some(a),
            Tensor::I32(_) => None,
        });
        let tapes = self.tapes.into_values().filter_map(|t| match t {
            NodeTape::Dense(a) | NodeTape::Saved(a) => Some(a),
            NodeTape::Rnn(..) | NodeTape::Bidirectional(_) => None,
        });
        values.chain(tapes).chain(self.keeps.into_values()).for_each(crate::pool::recycle_array);
    }
}

/// Inverted-dropout keep mask: 0 with probability `rate`, else `1 / (1 - rate)`.
fn keep_mask(n: usize, rate: f32, seed: &mut u64) -> Vec<f32> {
    (0..n).map(|_| if layers::uniform(seed) < rate { 0.0 } else { 1.0 / (1.0 - rate) }).collect()
}

fn unsupported(what: &str) -> RuntimeError {
    RuntimeError::Unsupported(format!("training through {what}"))
}

/// The dropout masks of one recurrent layer with `attrs`, drawn once per batch (the same
/// for every step, as Keras does; from our seeded generator, not Keras's).
fn rnn_dropout(a: &seqmodel_ir::RnnAttrs, x_shape: &[usize], seed: &mut u64) -> RnnDropout {
    let (b, d) = (x_shape[0], x_shape.get(2).copied().unwrap_or(0));
    RnnDropout {
        input: (a.dropout > 0.0).then(|| keep_mask(b * d, a.dropout, seed)),
        recurrent: (a.recurrent_dropout > 0.0).then(|| keep_mask(b * a.units, a.recurrent_dropout, seed)),
    }
}

/// Runs the forward pass. `states` holds stateful layers' carried states (no gradient flows
/// into them); `seed` drives Dropout.
#[allow(clippy::too_many_arguments)] // the pass's whole context, passed explicitly
pub(crate) fn forward(
    p: &Program,
    store: &WeightStore,
    inputs: &[Tensor],
    bindings: &[Option<usize>],
    states: &mut States,
    seed: &mut u64,
    training: bool,
    prepared_cache: &mut HashMap<NodeIndex, Option<exec::Prepared>>,
) -> Result<Pass> {
    let mut vals: HashMap<NodeIndex, Vec<Value>> = HashMap::new();
    let mut tapes = HashMap::new();
    let mut keeps = HashMap::new();
    let mut scratch = Scratch::default();
    let mut penalty = 0.0;
    for n in p.topo_order() {
        let node = &p.graph[n];
        let sources = p.node_inputs(n);
        // Borrowed, not cloned: a clone copied every tensor once per consumer.
        let ins: Vec<ValueRef<'_>> = sources.iter().map(|q| vals[&q.node][q.port].view()).collect();
        let mut out = Vec::new();
        match &node.op {
            // The pass owns its values: a float input is copied into a pooled buffer (the
            // pass gives it back), where a clone faulted in fresh pages at every step
            // (big-lstm's 13 MB batch: 8 % of its step).
            Op::Input { index } => out.push(Value::input(match &inputs[*index] {
                Tensor::F32(a) => {
                    let a = a.as_standard_layout();
                    let data = crate::pool::copied(a.as_slice().expect("standard layout"));
                    Tensor::F32(ArrayD::from_shape_vec(a.raw_dim(), data).expect("same length"))
                }
                other => other.clone(),
            })),
            Op::Dropout { rate } => {
                let x = ins[0].f32()?;
                let rate = if training { *rate } else { 0.0 };
                let keep =
                    ArrayD::from_shape_vec(x.raw_dim(), keep_mask(x.len(), rate, seed)).expect("shape");
                out.push(Value { t: Tensor::F32(&x * &keep), mask: ins[0].mask.map(|m| m.to_owned()) });
                keeps.insert(n, keep);
            }
            op => {
                let prepared = prepared_cache.entry(n).or_default();
                if let Some(prefix) = &node.weights {
                    exec::prepare_into(op, store, prefix, prepared)?;
                }
                let mut train = Training { training, seed: *seed, ..Training::default() };
                if training {
                    let shape = ins[0].t.shape();
                    match op {
                        Op::Rnn(a) => train.dropout[0] = rnn_dropout(a, shape, seed),
                        Op::Bidirectional { forward: fa, backward: ba, .. } => {
                            train.dropout = [rnn_dropout(fa, shape, seed), rnn_dropout(ba, shape, seed)];
                        }
                        _ => {}
                    }
                }
                let first_dim = p.types[&n].first().and_then(|t| t.dims.first()).copied();
                exec::node_into_training(
                    op,
                    &node.layer,
                    prepared.as_ref(),
                    &ins,
                    states.entry(n).or_default(),
                    exec::out_time(op, first_dim, bindings),
                    &mut scratch,
                    &mut out,
                    Some(&mut train),
                )?;
                *seed = train.seed.max(1);
                penalty += train.penalty;
                if let Some(tape) = train.tape {
                    tapes.insert(n, tape);
                }
            }
        }
        drop(ins);
        vals.insert(n, out);
    }
    Ok(Pass { vals, tapes, keeps, penalty })
}

fn add_grad(grads: &mut HashMap<(NodeIndex, usize), ArrayD<f32>>, key: (NodeIndex, usize), g: ArrayD<f32>) {
    match grads.get_mut(&key) {
        Some(acc) => *acc += &g,
        None => {
            grads.insert(key, g);
        }
    }
}

/// The gradient through an activation given its input (when its gradient needs it), its
/// output `y` and `dy` ([`layers::activation_grad`] shaped like `y`).
fn act_backward(
    a: seqmodel_ir::Activation,
    x: Option<&ArrayD<f32>>,
    y: &ArrayD<f32>,
    dy: &ArrayD<f32>,
) -> ArrayD<f32> {
    let dx = layers::activation_grad(a, x, y, dy);
    ArrayD::from_shape_vec(y.raw_dim(), dx).expect("sized from y")
}

/// Weight gradients of one step; `sparse` holds, for sparse (Embedding) gradients, the sums
/// over the gathered slices (see [`super::SparseSums`]).
pub(crate) struct WeightGrads {
    pub grads: HashMap<String, ArrayD<f32>>,
    pub sparse: super::SparseSums,
    /// New values of non-trainable weights, set with the optimizer's step.
    pub updates: Vec<(String, ArrayD<f32>)>,
}

/// Backpropagates `output_grads` (one per program output) and returns the weight gradients
/// (with `abs_sums`, the sparse gradients' sums of absolute values too, for Adamax).
pub(crate) fn backward(
    p: &Program,
    store: &WeightStore,
    pass: &Pass,
    output_grads: Vec<ArrayD<f32>>,
    abs_sums: bool,
) -> Result<WeightGrads> {
    let mut sparse = super::SparseSums::default();
    let mut grads: HashMap<(NodeIndex, usize), ArrayD<f32>> = HashMap::new();
    for (o, g) in p.outputs.iter().zip(output_grads) {
        add_grad(&mut grads, (o.node, o.port), g);
    }
    let mut wg: HashMap<String, ArrayD<f32>> = HashMap::new();
    let mut updates = Vec::new();
    let order = p.topo_order();
    // The nodes whose output's gradient leads to a weight: the node or one before it has
    // weights. A layer fed by none of them (the first recurrent layer on the model's input)
    // skips its input's gradient, a product as large as its kernel's gradient.
    let mut leads_to_weights = std::collections::HashSet::new();
    for &n in &order {
        let before = p.node_inputs(n).iter().any(|q| leads_to_weights.contains(&q.node));
        if before || !seqmodel_ir::node_weight_specs(&p.graph[n]).is_empty() {
            leads_to_weights.insert(n);
        }
    }
    for n in order.into_iter().rev() {
        let node = &p.graph[n];
        let n_out = p.types[&n].len();
        let douts: Vec<Option<ArrayD<f32>>> = (0..n_out).map(|i| grads.remove(&(n, i))).collect();
        if douts.iter().all(Option::is_none) {
            continue;
        }
        let ins = p.node_inputs(n);
        let in_val = |i: usize| &pass.vals[&ins[i].node][ins[i].port];
        let out_shape = |i: usize| pass.vals[&n][i].t.shape().to_vec();
        let dout = |i: usize| douts[i].clone().unwrap_or_else(|| ArrayD::zeros(IxDyn(&out_shape(i))));
        // Output `i`'s gradient, borrowed when there is one.
        let dout_ref = |i: usize| match &douts[i] {
            Some(d) => std::borrow::Cow::Borrowed(d),
            None => std::borrow::Cow::Owned(ArrayD::zeros(IxDyn(&out_shape(i)))),
        };
        let out_f32 = |i: usize| pass.vals[&n][i].t.as_f32().expect("float output");
        let in_f32 = |i: usize| {
            in_val(i)
                .t
                .as_f32()
                .ok_or_else(|| RuntimeError::Shape(format!("layer `{}` got integer data", node.layer)))
        };
        let prefix = node.weights.clone().unwrap_or_default();
        let tape = pass.tapes.get(&n);
        match (&node.op, tape) {
            (Op::Input { .. }, _) => {}
            (Op::Dense { units, input_dim, activation: act, use_bias }, _) => {
                let x = in_f32(0)?.as_standard_layout();
                let pre = match tape {
                    Some(NodeTape::Dense(pre)) => Some(pre),
                    _ => None,
                };
                let dpre = match act {
                    seqmodel_ir::Activation::Linear => dout_ref(0),
                    a => std::borrow::Cow::Owned(act_backward(*a, pre, out_f32(0), &dout_ref(0))),
                };
                let dpre_std = dpre.as_standard_layout();
                let specs = seqmodel_ir::op_weight_specs(&node.op, &prefix);
                let kernel = exec::weight(store, &specs[0].key)?;
                let (x_s, d_s) = (x.as_slice().expect("standard"), dpre_std.as_slice().expect("standard"));
                let (dx, dk, db) = basic::dense_backward(x_s, kernel, d_s, (*input_dim, *units), *use_bias);
                drop(dpre_std);
                if let std::borrow::Cow::Owned(d) = dpre {
                    crate::pool::recycle_array(d);
                }
                let mut specs = specs.into_iter();
                for g in std::iter::once(dk).chain(db) {
                    let spec = specs.next().expect("a weight per gradient");
                    add_weight(&mut wg, spec.key, &spec.shape, g);
                }
                add_grad(
                    &mut grads,
                    (ins[0].node, ins[0].port),
                    ArrayD::from_shape_vec(x.raw_dim(), dx).expect("shape"),
                );
            }
            (Op::Activation(a), _) => {
                // The input only where the gradient reads it (not for softmax).
                let x = activation::grad_needs_input(*a).then(|| in_f32(0)).transpose()?;
                let dx = act_backward(*a, x, out_f32(0), &dout_ref(0));
                add_grad(&mut grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::Dropout { .. }, _) => {
                add_grad(&mut grads, (ins[0].node, ins[0].port), dout(0) * &pass.keeps[&n]);
            }
            (Op::Masking { .. }, _) => {
                let mask = pass.vals[&n][0].mask.as_ref().expect("Masking sets a mask");
                add_grad(&mut grads, (ins[0].node, ins[0].port), basic::masking_backward(mask, dout(0)));
            }
            (Op::Embedding { input_dim, output_dim, .. }, _) => {
                let Tensor::I32(ids) = &in_val(0).t else {
                    return Err(RuntimeError::Shape(format!("Embedding `{}` needs integer ids", node.layer)));
                };
                let d = dout(0).as_standard_layout().to_owned();
                let (dt, sq, abs) = basic::embedding_backward(
                    ids.view(),
                    d.as_slice().expect("standard"),
                    (*input_dim, *output_dim),
                    abs_sums,
                );
                let [spec] = &seqmodel_ir::op_weight_specs(&node.op, &prefix)[..] else {
                    unreachable!("an embedding has one table")
                };
                add_weight(&mut wg, spec.key.clone(), &spec.shape, dt);
                add_weight(&mut sparse.squares, spec.key.clone(), &spec.shape, sq);
                if let Some(abs) = abs {
                    add_weight(&mut sparse.abs, spec.key.clone(), &spec.shape, abs);
                }
            }
            (Op::Rnn(a), Some(NodeTape::Rnn(tape, in_keep))) => {
                let d_states: Vec<Option<Vec<f32>>> =
                    (1..n_out).map(|i| douts[i].as_ref().map(|g| g.iter().copied().collect())).collect();
                let input_grad = leads_to_weights.contains(&ins[0].node);
                let (main, states) = (douts[0].as_ref(), &d_states);
                let g = recurrent::backward_to(tape, a, store, &prefix, main, states, input_grad, &mut wg)?;
                let dims @ (b, t, d) = tape.dims;
                let mut dx = g.dx;
                if let Some(m) = in_keep {
                    mask_input_grad(&mut dx, m, dims);
                }
                if input_grad {
                    add_grad(
                        &mut grads,
                        (ins[0].node, ins[0].port),
                        ArrayD::from_shape_vec(IxDyn(&[b, t, d]), dx).expect("shape"),
                    );
                }
                for (i, s) in g.dinitial.into_iter().enumerate() {
                    if let Some(q) = ins.get(i + 1) {
                        add_grad(
                            &mut grads,
                            (q.node, q.port),
                            ArrayD::from_shape_vec(IxDyn(&[b, a.units]), s).expect("shape"),
                        );
                    }
                }
            }
            (Op::Bidirectional { forward, backward, merge }, Some(NodeTape::Bidirectional(tape))) => {
                let layer = Bidirectional { forward, backward, merge: *merge };
                let dx = layer.backward(tape, &douts, store, &prefix, &mut wg)?;
                add_grad(&mut grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::RepeatVector, _) => {
                add_grad(&mut grads, (ins[0].node, ins[0].port), time::repeat_backward(&dout(0)));
            }
            (Op::TimeSlice { start, end }, _) => {
                let dx = time::slice_backward(in_val(0).t.shape(), *start, *end, &dout(0));
                add_grad(&mut grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::TimeStep { index }, _) => {
                let dx = time::step_backward(in_val(0).t.shape(), *index, &dout(0));
                add_grad(&mut grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::ZeroPad { left, .. }, _) => {
                let dx = time::pad_backward(in_val(0).t.shape()[1], *left, &dout(0));
                add_grad(&mut grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::Merge(kind), _) => {
                let xs: Vec<ArrayViewD<'_, f32>> =
                    (0..ins.len()).map(|i| in_f32(i).map(|a| a.view())).collect::<Result<_>>()?;
                for (q, g) in ins.iter().zip(merge::backward(*kind, &xs, out_f32(0).view(), &dout(0))) {
                    add_grad(&mut grads, (q.node, q.port), g);
                }
            }
            // Folding and unfolding time only reshape: the gradient takes the input's shape
            // (integer inputs, as token ids into a TimeDistributed Embedding, take none).
            (Op::FoldTime | Op::UnfoldTime, _) if in_val(0).t.as_f32().is_some() => {
                let shape = in_val(0).t.shape().to_vec();
                let g = dout(0)
                    .as_standard_layout()
                    .to_owned()
                    .into_shape_with_order(IxDyn(&shape))
                    .expect("reshape");
                add_grad(&mut grads, (ins[0].node, ins[0].port), g);
            }
            (Op::FoldTime | Op::UnfoldTime, _) => {}
            (Op::Layer(l), _) => {
                let specs = seqmodel_ir::op_weight_specs(&node.op, &prefix);
                let weights =
                    specs.iter().map(|s| exec::weight(store, &s.key)).collect::<Result<Vec<_>>>()?;
                let saved = match tape {
                    Some(NodeTape::Saved(a)) => Some(a),
                    _ => None,
                };
                let bw = layers::Backward {
                    layer: &node.layer,
                    xs: (0..ins.len()).map(in_val).collect(),
                    ys: &pass.vals[&n],
                    dys: (0..n_out).map(dout_ref).collect(),
                    weights,
                    tape: saved,
                    dx_needed: ins.iter().map(|q| leads_to_weights.contains(&q.node)).collect(),
                };
                let g = layers::layer_of(l).backward(&bw)?;
                for (q, dx) in ins.iter().zip(g.dxs) {
                    if let Some(dx) = dx {
                        add_grad(&mut grads, (q.node, q.port), dx);
                    }
                }
                for (spec, dw) in specs.iter().zip(g.dws) {
                    if let Some(dw) = dw {
                        add_weight(&mut wg, spec.key.clone(), &spec.shape, dw);
                    }
                }
                for (i, v) in g.updates {
                    let spec = &specs[i];
                    updates.push((
                        spec.key.clone(),
                        ArrayD::from_shape_vec(IxDyn(&spec.shape), v).expect("shape"),
                    ));
                }
            }
            // The training passes never fuse RepeatVector into an RNN, and every recurrent
            // node records its tape: these arms are reached only by a program built
            // otherwise.
            (Op::RepeatRnn { .. }, _) => return Err(unsupported("a fused RepeatVector→RNN")),
            (Op::Rnn(_) | Op::Bidirectional { .. }, _) => {
                return Err(unsupported("a recurrent layer run without a tape"));
            }
        }
        douts.into_iter().flatten().for_each(crate::pool::recycle_array);
    }
    Ok(WeightGrads { grads: wg, sparse, updates })
}
