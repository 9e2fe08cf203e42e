//! The training pass over a program: the forward pass of every node (the same
//! `exec::node_into` that inference runs, recording tapes), then backward to every weight.

use std::collections::{HashMap, HashSet};

use ndarray::{Array2, ArrayD, ArrayViewD, IxDyn};
use seqmodel_ir::{NodeIndex, Op, Port, Program, WeightSpec};

use crate::error::{Result, RuntimeError};
use crate::exec::{self, NodeTape, RnnDropout, Scratch, Training, Value, ValueRef};
use crate::kernels::activation;
use crate::layers::bidirectional::{BidiTape, Bidirectional};
use crate::layers::{self, GradMap, basic, mask_input_grad, merge, recurrent, time};
use crate::{Tensor, WeightStore};

/// The carried states of stateful layers, by node.
pub(crate) type States = HashMap<NodeIndex, Option<Vec<Array2<f32>>>>;

/// One forward pass with everything the backward pass needs. A trainer keeps one and
/// refills it at every step: its maps and lists keep their room, its arrays go back to the
/// pool between steps.
#[derive(Default)]
pub(crate) struct Pass {
    pub vals: HashMap<NodeIndex, Vec<Value>>,
    tapes: HashMap<NodeIndex, NodeTape>,
    /// Dropout layers' scaled keep masks.
    keeps: HashMap<NodeIndex, ArrayD<f32>>,
    /// What the layers add to the loss (activity penalties).
    pub penalty: f32,
}

impl Pass {
    /// Gives the pass's arrays back to the training pool for the next step (the recurrent
    /// tapes give theirs back as they drop), keeping every map's and list's room.
    pub(crate) fn recycle(&mut self) {
        for values in self.vals.values_mut() {
            for v in values.drain(..) {
                match v.t {
                    Tensor::F32(a) => crate::pool::recycle_array(a),
                    Tensor::I32(a) => crate::pool::recycle_array(a),
                }
                if let Some(m) = v.mask {
                    crate::pool::recycle(m.into_raw_vec_and_offset().0);
                }
            }
        }
        for (_, tape) in self.tapes.drain() {
            match tape {
                NodeTape::Dense(a) | NodeTape::Saved(a) => crate::pool::recycle_array(a),
                // The recurrent tapes give their arrays back as they drop; their input
                // dropout masks go back here.
                NodeTape::Rnn(_, keep) => crate::pool::recycle(keep.unwrap_or_default()),
                NodeTape::Bidirectional(tape) => {
                    let BidiTape { outputs, input_keep, .. } = *tape;
                    crate::pool::recycle(outputs.0);
                    crate::pool::recycle(outputs.1);
                    input_keep.into_iter().flatten().for_each(crate::pool::recycle);
                }
            }
        }
        for (_, keep) in self.keeps.drain() {
            crate::pool::recycle_array(keep);
        }
        self.penalty = 0.0;
    }
}

/// The program's wiring, worked out once per trainer: a step reads it and builds none of it.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The nodes in an order that runs every node after its inputs.
    order: Vec<NodeIndex>,
    /// Each node's inputs.
    inputs: HashMap<NodeIndex, Vec<Port>>,
    /// Each node's weights (keys and shapes).
    specs: HashMap<NodeIndex, Vec<WeightSpec>>,
    /// The nodes whose output's gradient leads to a weight: the node or one before it has
    /// weights. A layer fed by none of them (the first recurrent layer on the model's input)
    /// skips its input's gradient, a product as large as its kernel's gradient.
    leads_to_weights: HashSet<NodeIndex>,
}

impl Plan {
    /// The plan of `p`.
    pub(crate) fn new(p: &Program) -> Self {
        let order = p.topo_order();
        let inputs: HashMap<_, _> = order.iter().map(|&n| (n, p.node_inputs(n))).collect();
        let specs: HashMap<_, _> =
            order.iter().map(|&n| (n, seqmodel_ir::node_weight_specs(&p.graph[n]))).collect();
        let mut leads_to_weights = HashSet::new();
        for &n in &order {
            let before = inputs[&n].iter().any(|q| leads_to_weights.contains(&q.node));
            if before || !specs[&n].is_empty() {
                leads_to_weights.insert(n);
            }
        }
        Plan { order, inputs, specs, leads_to_weights }
    }
}

/// What a trainer keeps between steps so that a warm step allocates nothing: the plan, the
/// last pass, the work buffers and the gradient maps. Cloning gives a fresh, empty one.
pub(crate) struct Workspace {
    pub plan: Plan,
    pub pass: Pass,
    scratch: Scratch,
    /// The gradients of node outputs not yet propagated (empty between steps).
    grads: HashMap<(NodeIndex, usize), ArrayD<f32>>,
    /// The weight gradients of the last backward pass.
    pub weight_grads: WeightGrads,
    /// Room for a node's inputs (empty between uses; see [`crate::pool::reused`]).
    ins: Vec<ValueRef<'static>>,
    /// Room for a node's output gradients.
    douts: Vec<Option<ArrayD<f32>>>,
    /// Room for the input check's lists.
    pub check: crate::interpreter::CheckRoom,
    /// Room for a described layer's backward lists.
    layer_room: LayerRoom,
}

/// The lists a described layer's backward pass reads and fills, kept between nodes and
/// steps (empty between uses).
#[derive(Default)]
struct LayerRoom {
    xs: Vec<&'static Value>,
    dys: Vec<std::borrow::Cow<'static, ArrayD<f32>>>,
    weights: Vec<&'static [f32]>,
    dx_needed: Vec<bool>,
    grads: layers::Grads,
}

impl Workspace {
    /// An empty workspace for the program that `plan` was made from.
    pub(crate) fn new(plan: Plan) -> Self {
        Workspace {
            plan,
            pass: Pass::default(),
            scratch: Scratch::default(),
            grads: HashMap::new(),
            weight_grads: WeightGrads::default(),
            ins: Vec::new(),
            douts: Vec::new(),
            check: Default::default(),
            layer_room: LayerRoom::default(),
        }
    }
}

impl Clone for Workspace {
    fn clone(&self) -> Self {
        Workspace::new(self.plan.clone())
    }
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace").field("plan", &self.plan).finish_non_exhaustive()
    }
}

/// Inverted-dropout keep mask: 0 with probability `rate`, else `1 / (1 - rate)`.
fn keep_mask(n: usize, rate: f32, seed: &mut u64) -> Vec<f32> {
    let mut keep = crate::pool::overwritten(n);
    keep.iter_mut().for_each(|k| *k = if layers::uniform(seed) < rate { 0.0 } else { 1.0 / (1.0 - rate) });
    keep
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

/// Runs the forward pass into `ws.pass` (emptied by [`Pass::recycle`] since its last use).
/// `states` holds stateful layers' carried states (no gradient flows into them); `seed`
/// drives Dropout.
#[allow(clippy::too_many_arguments)] // the pass's whole context, passed explicitly
pub(crate) fn forward(
    p: &Program,
    ws: &mut Workspace,
    store: &WeightStore,
    inputs: &[Tensor],
    bindings: &[Option<usize>],
    states: &mut States,
    seed: &mut u64,
    training: bool,
    prepared_cache: &mut HashMap<NodeIndex, Option<exec::Prepared>>,
) -> Result<()> {
    let Workspace { plan, pass, scratch, ins: ins_room, .. } = ws;
    let Pass { vals, tapes, keeps, penalty } = pass;
    for &n in &plan.order {
        let node = &p.graph[n];
        let sources = &plan.inputs[&n];
        // The last step's list for this node's outputs (emptied by `Pass::recycle`).
        let mut out = vals.remove(&n).unwrap_or_default();
        // Borrowed, not cloned: a clone copied every tensor once per consumer.
        let mut ins: Vec<ValueRef<'_>> = crate::pool::reused(std::mem::take(ins_room));
        ins.extend(sources.iter().map(|q| vals[&q.node][q.port].view()));
        match &node.op {
            // The pass owns its values: an input is copied into a pooled buffer (the pass
            // gives it back), where a clone faulted in fresh pages at every step (big-lstm's
            // 13 MB batch: 8 % of its step).
            Op::Input { index } => out.push(Value::input(match &inputs[*index] {
                Tensor::F32(a) => Tensor::F32(crate::pool::copied_array(&a.view())),
                Tensor::I32(a) => Tensor::I32(crate::pool::copied_array(&a.view())),
            })),
            Op::Dropout { rate } => {
                let x = ins[0].f32()?;
                let rate = if training { *rate } else { 0.0 };
                let keep =
                    ArrayD::from_shape_vec(x.raw_dim(), keep_mask(x.len(), rate, seed)).expect("shape");
                let mut y = crate::pool::copied_array(&x);
                y *= &keep;
                let mask = ins[0].mask.map(|m| crate::pool::copied_array(&m));
                out.push(Value { t: Tensor::F32(y), mask });
                keeps.insert(n, keep);
            }
            op => {
                let prepared = prepared_cache.entry(n).or_default();
                if let Some(prefix) = &node.weights {
                    let batch = ins.first().and_then(|x| x.t.shape().first().copied()).unwrap_or(1);
                    exec::prepare_into(op, store, prefix, &plan.specs[&n], prepared, batch)?;
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
                    scratch,
                    &mut out,
                    Some(&mut train),
                )?;
                *seed = train.seed.max(1);
                *penalty += train.penalty;
                if let Some(tape) = train.tape {
                    tapes.insert(n, tape);
                }
            }
        }
        *ins_room = crate::pool::reused(ins);
        vals.insert(n, out);
    }
    Ok(())
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

/// Weight gradients of one step; `squares` and `abs` hold, for sparse (Embedding)
/// gradients, the sums over the gathered slices (see [`super::SparseSums`]).
#[derive(Debug, Default)]
pub(crate) struct WeightGrads {
    pub grads: GradMap,
    pub squares: GradMap,
    pub abs: GradMap,
    /// New values of non-trainable weights, set with the optimizer's step.
    pub updates: GradMap,
}

impl WeightGrads {
    /// Empties every map for the next step (the arrays go back to the pool).
    fn clear(&mut self) {
        self.grads.clear();
        self.squares.clear();
        self.abs.clear();
        self.updates.clear();
    }
}

/// Backpropagates `output_grads` (one per program output) through `ws.pass` into
/// `ws.weight_grads` (with `abs_sums`, the sparse gradients' sums of absolute values too,
/// for Adamax).
pub(crate) fn backward(
    p: &Program,
    ws: &mut Workspace,
    store: &WeightStore,
    output_grads: impl IntoIterator<Item = ArrayD<f32>>,
    abs_sums: bool,
) -> Result<()> {
    let Workspace { plan, pass, grads, weight_grads, douts, layer_room, .. } = ws;
    weight_grads.clear();
    grads.drain().for_each(|(_, g)| crate::pool::recycle_array(g));
    let WeightGrads { grads: wg, squares, abs: abs_map, updates } = weight_grads;
    for (o, g) in p.outputs.iter().zip(output_grads) {
        add_grad(grads, (o.node, o.port), g);
    }
    let leads_to_weights = &plan.leads_to_weights;
    for &n in plan.order.iter().rev() {
        let node = &p.graph[n];
        let n_out = p.types[&n].len();
        // The last node's output gradients go back to the pool.
        douts.drain(..).flatten().for_each(crate::pool::recycle_array);
        douts.extend((0..n_out).map(|i| grads.remove(&(n, i))));
        if douts.iter().all(Option::is_none) {
            continue;
        }
        let douts = &*douts;
        let ins = &plan.inputs[&n];
        let specs = &plan.specs[&n];
        let in_val = |i: usize| &pass.vals[&ins[i].node][ins[i].port];
        let out_shape = |i: usize| IxDyn(pass.vals[&n][i].t.shape());
        let dout = |i: usize| douts[i].clone().unwrap_or_else(|| ArrayD::zeros(out_shape(i)));
        // Output `i`'s gradient, borrowed when there is one.
        let dout_ref = |i: usize| match &douts[i] {
            Some(d) => std::borrow::Cow::Borrowed(d),
            None => std::borrow::Cow::Owned(ArrayD::zeros(out_shape(i))),
        };
        let out_f32 = |i: usize| pass.vals[&n][i].t.as_f32().expect("float output");
        let in_f32 = |i: usize| {
            in_val(i)
                .t
                .as_f32()
                .ok_or_else(|| RuntimeError::Shape(format!("layer `{}` got integer data", node.layer)))
        };
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
                let kernel = exec::weight(store, &specs[0].key)?;
                let (x_s, d_s) = (x.as_slice().expect("standard"), dpre_std.as_slice().expect("standard"));
                let (dx, dk, db) = basic::dense_backward(x_s, kernel, d_s, (*input_dim, *units), *use_bias);
                drop(dpre_std);
                if let std::borrow::Cow::Owned(d) = dpre {
                    crate::pool::recycle_array(d);
                }
                for (spec, g) in specs.iter().zip(std::iter::once(dk).chain(db)) {
                    wg.add(&spec.key, &spec.shape, g);
                }
                add_grad(
                    grads,
                    (ins[0].node, ins[0].port),
                    ArrayD::from_shape_vec(x.raw_dim(), dx).expect("shape"),
                );
            }
            (Op::Activation(a), _) => {
                // The input only where the gradient reads it (not for softmax).
                let x = activation::grad_needs_input(*a).then(|| in_f32(0)).transpose()?;
                let dx = act_backward(*a, x, out_f32(0), &dout_ref(0));
                add_grad(grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::Dropout { .. }, _) => {
                let mut dx = crate::pool::copied_array(&dout_ref(0).view());
                dx *= &pass.keeps[&n];
                add_grad(grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::Masking { .. }, _) => {
                let mask = pass.vals[&n][0].mask.as_ref().expect("Masking sets a mask");
                add_grad(grads, (ins[0].node, ins[0].port), basic::masking_backward(mask, dout(0)));
            }
            (Op::Embedding { input_dim, output_dim, .. }, _) => {
                let Tensor::I32(ids) = &in_val(0).t else {
                    return Err(RuntimeError::Shape(format!("Embedding `{}` needs integer ids", node.layer)));
                };
                let d = dout_ref(0);
                let d = d.as_standard_layout();
                let (dt, sq, abs) = basic::embedding_backward(
                    ids.view(),
                    d.as_slice().expect("standard"),
                    (*input_dim, *output_dim),
                    abs_sums,
                );
                let [spec] = &specs[..] else { unreachable!("an embedding has one table") };
                wg.add(&spec.key, &spec.shape, dt);
                squares.add(&spec.key, &spec.shape, sq);
                if let Some(abs) = abs {
                    abs_map.add(&spec.key, &spec.shape, abs);
                }
            }
            (Op::Rnn(a), Some(NodeTape::Rnn(tape, in_keep))) => {
                let d_states: Vec<Option<Vec<f32>>> =
                    (1..n_out).map(|i| douts[i].as_ref().map(|g| g.iter().copied().collect())).collect();
                let input_grad = leads_to_weights.contains(&ins[0].node);
                let (main, states) = (douts[0].as_ref(), &d_states);
                let g = recurrent::backward_to(tape, a, store, specs, main, states, input_grad, wg)?;
                let dims @ (b, t, d) = tape.dims;
                let mut dx = g.dx;
                if let Some(m) = in_keep {
                    mask_input_grad(&mut dx, m, dims);
                }
                if input_grad {
                    add_grad(
                        grads,
                        (ins[0].node, ins[0].port),
                        ArrayD::from_shape_vec(IxDyn(&[b, t, d]), dx).expect("shape"),
                    );
                } else {
                    crate::pool::recycle(dx);
                }
                for (i, s) in g.dinitial.into_iter().enumerate() {
                    match ins.get(i + 1) {
                        Some(q) if !s.is_empty() => add_grad(
                            grads,
                            (q.node, q.port),
                            ArrayD::from_shape_vec(IxDyn(&[b, a.units]), s).expect("shape"),
                        ),
                        _ => crate::pool::recycle(s),
                    }
                }
            }
            (Op::Bidirectional { forward, backward, merge }, Some(NodeTape::Bidirectional(tape))) => {
                let layer = Bidirectional { forward, backward, merge: *merge };
                let dx = layer.backward(tape, douts, store, specs, wg)?;
                add_grad(grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::RepeatVector, _) => {
                add_grad(grads, (ins[0].node, ins[0].port), time::repeat_backward(&dout_ref(0)));
            }
            (Op::TimeSlice { start, end }, _) => {
                let dx = time::slice_backward(in_val(0).t.shape(), *start, *end, &dout_ref(0));
                add_grad(grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::TimeStep { index }, _) => {
                let dx = time::step_backward(in_val(0).t.shape(), *index, &dout_ref(0));
                add_grad(grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::ZeroPad { left, .. }, _) => {
                let dx = time::pad_backward(in_val(0).t.shape()[1], *left, &dout_ref(0));
                add_grad(grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::Merge(kind), _) => {
                let xs: Vec<ArrayViewD<'_, f32>> =
                    (0..ins.len()).map(|i| in_f32(i).map(|a| a.view())).collect::<Result<_>>()?;
                for (q, g) in ins.iter().zip(merge::backward(*kind, &xs, out_f32(0).view(), &dout_ref(0))) {
                    add_grad(grads, (q.node, q.port), g);
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
                add_grad(grads, (ins[0].node, ins[0].port), g);
            }
            (Op::FoldTime | Op::UnfoldTime, _) => {}
            (Op::Layer(l), _) => {
                let saved = match tape {
                    Some(NodeTape::Saved(a)) => Some(a),
                    _ => None,
                };
                // The lists live in the workspace between nodes (no allocation when warm).
                let mut weights: Vec<&[f32]> = crate::pool::reused(std::mem::take(&mut layer_room.weights));
                for s in specs {
                    weights.push(exec::weight(store, &s.key)?);
                }
                let mut xs: Vec<&Value> = crate::pool::reused(std::mem::take(&mut layer_room.xs));
                xs.extend((0..ins.len()).map(in_val));
                let mut dys: Vec<std::borrow::Cow<'_, ArrayD<f32>>> =
                    crate::pool::reused(std::mem::take(&mut layer_room.dys));
                dys.extend((0..n_out).map(dout_ref));
                let mut dx_needed = std::mem::take(&mut layer_room.dx_needed);
                dx_needed.clear();
                dx_needed.extend(ins.iter().map(|q| leads_to_weights.contains(&q.node)));
                let bw = layers::Backward {
                    layer: &node.layer,
                    xs,
                    ys: &pass.vals[&n],
                    dys,
                    weights,
                    tape: saved,
                    dx_needed,
                };
                let g = &mut layer_room.grads;
                let done = layers::layer_of(l).backward(&bw, g);
                let layers::Backward { xs, dys, weights, dx_needed, .. } = bw;
                layer_room.xs = crate::pool::reused(xs);
                let mut dys = dys;
                for d in dys.drain(..) {
                    if let std::borrow::Cow::Owned(d) = d {
                        crate::pool::recycle_array(d);
                    }
                }
                layer_room.dys = crate::pool::reused(dys);
                layer_room.weights = crate::pool::reused(weights);
                layer_room.dx_needed = dx_needed;
                if let Err(e) = done {
                    g.clear();
                    return Err(e);
                }
                for (q, dx) in ins.iter().zip(g.dxs.drain(..)) {
                    if let Some(dx) = dx {
                        add_grad(grads, (q.node, q.port), dx);
                    }
                }
                for (spec, dw) in specs.iter().zip(g.dws.drain(..)) {
                    if let Some(dw) = dw {
                        wg.add(&spec.key, &spec.shape, dw);
                    }
                }
                for (i, v) in g.updates.drain(..) {
                    let spec = &specs[i];
                    updates.set(&spec.key, &spec.shape, v);
                }
                // Whatever a layer gave beyond its inputs and weights goes back to the pool.
                g.clear();
            }
            // The training passes never fuse RepeatVector into an RNN, and every recurrent
            // node records its tape: these arms are reached only by a program built
            // otherwise.
            (Op::RepeatRnn { .. }, _) => return Err(unsupported("a fused RepeatVector→RNN")),
            (Op::Rnn(_) | Op::Bidirectional { .. }, _) => {
                return Err(unsupported("a recurrent layer run without a tape"));
            }
        }
    }
    douts.drain(..).flatten().for_each(crate::pool::recycle_array);
    Ok(())
}
