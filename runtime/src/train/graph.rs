//! The training pass over a program: forward with a tape, then backward to every weight.

use std::collections::HashMap;

use ndarray::{Array2, ArrayD, ArrayViewD, Axis, IxDyn};
use seqmodel_ir::{MergeKind, MergeMode, NodeIndex, Op, Program, RnnAttrs};

use super::pool;
use super::rnn::{self, RnnParams, RnnTape};
use crate::error::{Result, RuntimeError};
use crate::kernels::{activation, matmul};
use crate::ops::{basic, time};
use crate::{Tensor, WeightStore};

/// A value on an edge: tensor and optional step mask.
#[derive(Debug, Clone)]
pub(crate) struct Val {
    pub t: Tensor,
    pub mask: Option<Array2<bool>>,
}

enum Cache {
    None,
    /// The input, and the pre-activation when the activation's gradient needs it (the
    /// output is read from the pass's values).
    Dense {
        x: ArrayD<f32>,
        pre: Option<ArrayD<f32>>,
    },
    /// The input when the activation's gradient needs it.
    Act {
        pre: Option<ArrayD<f32>>,
    },
    Dropout {
        keep: ArrayD<f32>,
    },
    Rnn {
        tape: Box<RnnTape>,
        dims: (usize, usize, usize),
        in_mask: Option<Vec<f32>>,
    },
    Bidi {
        f: Box<RnnTape>,
        b: Box<RnnTape>,
        dims: (usize, usize, usize),
    },
    Embedding {
        ids: ArrayD<i32>,
    },
    Masking {
        mask: Array2<bool>,
    },
}

/// One forward pass with everything the backward pass needs.
pub(crate) struct Pass {
    pub vals: HashMap<NodeIndex, Vec<Val>>,
    caches: HashMap<NodeIndex, Cache>,
}

fn w<'a>(store: &'a WeightStore, key: &str) -> Result<&'a [f32]> {
    store.get(key).and_then(|a| a.as_slice()).ok_or_else(|| RuntimeError::MissingWeight {
        key: key.into(),
        shape: vec![],
        layer: key.into(),
    })
}

fn params<'a>(store: &'a WeightStore, prefix: &str, a: &RnnAttrs) -> Result<RnnParams<'a>> {
    Ok(RnnParams {
        kernel: w(store, &format!("{prefix}/kernel"))?,
        recurrent: w(store, &format!("{prefix}/recurrent_kernel"))?,
        bias: if a.use_bias { Some(w(store, &format!("{prefix}/bias"))?) } else { None },
    })
}

fn f32_of(v: &Val, layer: &str) -> Result<ArrayD<f32>> {
    v.t.as_f32()
        .map(|a| a.as_standard_layout().to_owned())
        .ok_or_else(|| RuntimeError::Shape(format!("layer `{layer}` got integer data")))
}

/// Inverted-dropout keep mask: 0 with probability `rate`, else `1 / (1 - rate)`.
fn keep_mask(n: usize, rate: f32, seed: &mut u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            let r = (*seed >> 40) as f32 / (1u64 << 24) as f32;
            if r < rate { 0.0 } else { 1.0 / (1.0 - rate) }
        })
        .collect()
}

fn unsupported(what: &str) -> RuntimeError {
    RuntimeError::Shape(format!("training through {what} is not supported yet"))
}

fn apply_act(a: seqmodel_ir::Activation, pre: ArrayViewD<'_, f32>) -> ArrayD<f32> {
    let mut y = pre.as_standard_layout().to_owned();
    let width = *y.shape().last().unwrap_or(&1);
    activation::apply(a, y.as_slice_mut().expect("standard layout"), width);
    y
}

/// Whether the gradient of `a` needs its input (softmax's and log-softmax's need only the
/// output).
fn grad_needs_input(a: seqmodel_ir::Activation) -> bool {
    !matches!(a, seqmodel_ir::Activation::Softmax | seqmodel_ir::Activation::LogSoftmax)
}

/// Gradient through an activation given the pre-activation (when [`grad_needs_input`]),
/// the output and `dy`.
fn act_backward(
    a: seqmodel_ir::Activation,
    pre: Option<&ArrayD<f32>>,
    y: &ArrayD<f32>,
    dy: &ArrayD<f32>,
) -> ArrayD<f32> {
    let width = *y.shape().last().unwrap_or(&1);
    match a {
        seqmodel_ir::Activation::Softmax => {
            let mut dx = dy.as_standard_layout().to_owned();
            let ys = y.as_slice().expect("standard layout");
            for (r, row) in dx.as_slice_mut().expect("standard layout").chunks_mut(width).enumerate() {
                let yr = &ys[r * width..][..width];
                let dot: f32 = row.iter().zip(yr).map(|(d, y)| d * y).sum();
                for (d, y) in row.iter_mut().zip(yr) {
                    *d = y * (*d - dot);
                }
            }
            dx
        }
        seqmodel_ir::Activation::LogSoftmax => {
            let mut dx = dy.as_standard_layout().to_owned();
            let ys = y.as_slice().expect("standard layout");
            for (r, row) in dx.as_slice_mut().expect("standard layout").chunks_mut(width).enumerate() {
                let yr = &ys[r * width..][..width];
                let sum: f32 = row.iter().sum();
                for (d, y) in row.iter_mut().zip(yr) {
                    *d -= y.exp() * sum;
                }
            }
            dx
        }
        _ => {
            let mut dx = dy.as_standard_layout().to_owned();
            let pre = pre.expect("kept when the gradient needs it");
            ndarray::Zip::from(&mut dx).and(pre).and(y).for_each(|d, p, y| *d *= activation::grad(a, *p, *y));
            dx
        }
    }
}

/// Runs the forward pass. `states` holds stateful layers' carried states (no gradient flows
/// into them); `seed` drives Dropout.
pub(crate) fn forward(
    p: &Program,
    store: &WeightStore,
    inputs: &[Tensor],
    bindings: &[Option<usize>],
    states: &mut HashMap<NodeIndex, Vec<Vec<f32>>>,
    seed: &mut u64,
    training: bool,
) -> Result<Pass> {
    let mut vals: HashMap<NodeIndex, Vec<Val>> = HashMap::new();
    let mut caches = HashMap::new();
    for n in p.topo_order() {
        let node = &p.graph[n];
        // Borrowed, not cloned: a clone copied every tensor once per consumer.
        let ins: Vec<&Val> = p.node_inputs(n).iter().map(|q| &vals[&q.node][q.port]).collect();
        let plain = |t: ArrayD<f32>, mask: Option<Array2<bool>>| vec![Val { t: Tensor::F32(t), mask }];
        let (out, cache) = match &node.op {
            Op::Input { index } => (vec![Val { t: inputs[*index].clone(), mask: None }], Cache::None),
            Op::Dense { units, activation: act, use_bias, .. } => {
                let x = f32_of(ins[0], &node.layer)?;
                let prefix = node.weights.as_deref().unwrap_or_default();
                let bias = if *use_bias { Some(w(store, &format!("{prefix}/bias"))?) } else { None };
                let pre = basic::dense(
                    &x,
                    w(store, &format!("{prefix}/kernel"))?,
                    bias,
                    *units,
                    seqmodel_ir::Activation::Linear,
                );
                // A linear Dense's output is its pre-activation; otherwise the pre-activation
                // is kept only if the activation's gradient needs it.
                let (y, pre) = match act {
                    seqmodel_ir::Activation::Linear => (pre, None),
                    a => (apply_act(*a, pre.view()), grad_needs_input(*a).then_some(pre)),
                };
                (plain(y, ins[0].mask.clone()), Cache::Dense { x, pre })
            }
            Op::Activation(a) => {
                let x = ins[0]
                    .t
                    .as_f32()
                    .ok_or_else(|| RuntimeError::Shape(format!("layer `{}` got integer data", node.layer)))?;
                let y = apply_act(*a, x.view());
                let pre = grad_needs_input(*a).then(|| x.as_standard_layout().to_owned());
                (plain(y, ins[0].mask.clone()), Cache::Act { pre })
            }
            Op::Dropout { rate } => {
                let x = f32_of(ins[0], &node.layer)?;
                let rate = if training { *rate } else { 0.0 };
                let keep =
                    ArrayD::from_shape_vec(x.raw_dim(), keep_mask(x.len(), rate, seed)).expect("shape");
                (plain(&x * &keep, ins[0].mask.clone()), Cache::Dropout { keep })
            }
            Op::Masking { mask_value } => {
                let (x, mask) = basic::masking(&f32_of(ins[0], &node.layer)?, *mask_value);
                (plain(x, Some(mask.clone())), Cache::Masking { mask })
            }
            Op::Embedding { mask_zero, .. } => {
                let Tensor::I32(ids) = &ins[0].t else {
                    return Err(RuntimeError::Shape("Embedding needs ids".into()));
                };
                let prefix = node.weights.as_deref().unwrap_or_default();
                let table = store
                    .get(&format!("{prefix}/embeddings"))
                    .ok_or_else(|| unsupported("a missing embedding"))?;
                let table2 = table
                    .clone()
                    .into_dimensionality::<ndarray::Ix2>()
                    .map_err(|e| RuntimeError::Shape(e.to_string()))?;
                let y = basic::embedding(ids, &table2)?;
                let mask = (*mask_zero && ids.ndim() == 2)
                    .then(|| ids.map(|&v| v != 0).into_dimensionality::<ndarray::Ix2>().expect("rank 2"));
                (plain(y, mask), Cache::Embedding { ids: ids.clone() })
            }
            Op::Rnn(a) => {
                // Dropout masks are drawn once per batch (the same for every step), as Keras
                // does; they come from our seeded generator, not Keras's.
                let mut x = f32_of(ins[0], &node.layer)?;
                let in_mask = (training && a.dropout > 0.0).then(|| {
                    let (b, d) = (x.shape()[0], x.shape()[2]);
                    keep_mask(b * d, a.dropout, seed)
                });
                if let Some(m) = &in_mask {
                    let (b, t, d) = (x.shape()[0], x.shape()[1], x.shape()[2]);
                    let xs = x.as_slice_mut().expect("standard");
                    for bi in 0..b {
                        for ti in 0..t {
                            for j in 0..d {
                                xs[(bi * t + ti) * d + j] *= m[bi * d + j];
                            }
                        }
                    }
                }
                let rec_mask = (training && a.recurrent_dropout > 0.0)
                    .then(|| keep_mask(x.shape()[0] * a.units, a.recurrent_dropout, seed));
                let dims = (x.shape()[0], x.shape()[1], x.shape()[2]);
                let prefix = node.weights.as_deref().unwrap_or_default();
                let prm = params(store, prefix, a)?;
                let initial = if ins.len() > 1 {
                    Some(
                        ins[1..]
                            .iter()
                            .map(|v| f32_of(v, &node.layer).map(|a| a.into_raw_vec_and_offset().0))
                            .collect::<Result<Vec<_>>>()?,
                    )
                } else if a.stateful {
                    states.get(&n).cloned()
                } else {
                    None
                };
                let mask: Option<Vec<bool>> = ins[0].mask.as_ref().map(|m| m.iter().copied().collect());
                let xs = x.as_slice().expect("standard");
                let (fw, tape) = rnn::forward(a, &prm, xs, dims, mask.as_deref(), initial, rec_mask);
                if a.stateful {
                    states.insert(n, fw.states.clone());
                }
                let (b, t, _) = dims;
                let u = a.units;
                let main = match fw.sequence {
                    Some(seq) => Val {
                        t: Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[b, t, u]), seq).expect("shape")),
                        mask: ins[0].mask.clone(),
                    },
                    None => Val {
                        t: Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[b, u]), fw.last).expect("shape")),
                        mask: None,
                    },
                };
                let mut out = vec![main];
                if a.return_state {
                    out.extend(fw.states.into_iter().map(|s| Val {
                        t: Tensor::F32(ArrayD::from_shape_vec(IxDyn(&[b, u]), s).expect("shape")),
                        mask: None,
                    }));
                }
                (out, Cache::Rnn { tape: Box::new(tape), dims, in_mask })
            }
            Op::Bidirectional { forward: fa, backward: ba, merge } => {
                if ins[0].mask.is_some() || fa.stateful || fa.return_state {
                    return Err(unsupported("a masked, stateful or state-returning Bidirectional"));
                }
                let x = f32_of(ins[0], &node.layer)?;
                let dims = (x.shape()[0], x.shape()[1], x.shape()[2]);
                let prefix = node.weights.as_deref().unwrap_or_default();
                let xs = x.as_slice().expect("standard");
                if training && (fa.dropout > 0.0 || fa.recurrent_dropout > 0.0) {
                    return Err(unsupported("RNN dropout inside Bidirectional"));
                }
                let fp = params(store, &format!("{prefix}/forward"), fa)?;
                let bp = params(store, &format!("{prefix}/backward"), ba)?;
                let (fo, ft) = rnn::forward(fa, &fp, xs, dims, None, None, None);
                let (bo, bt) = rnn::forward(ba, &bp, xs, dims, None, None, None);
                let (b, t, _) = dims;
                let u = fa.units;
                let (fm, bm) = match (fo.sequence, bo.sequence) {
                    (Some(f), Some(bs)) => {
                        let f = ArrayD::from_shape_vec(IxDyn(&[b, t, u]), f).expect("shape");
                        let mut bs = ArrayD::from_shape_vec(IxDyn(&[b, t, u]), bs).expect("shape");
                        bs.invert_axis(Axis(1));
                        (f, bs)
                    }
                    _ => (
                        ArrayD::from_shape_vec(IxDyn(&[b, u]), fo.last).expect("shape"),
                        ArrayD::from_shape_vec(IxDyn(&[b, u]), bo.last).expect("shape"),
                    ),
                };
                let out = match merge {
                    MergeMode::Concat => plain(
                        ndarray::concatenate(Axis(fm.ndim() - 1), &[fm.view(), bm.view()]).expect("same"),
                        None,
                    ),
                    MergeMode::Sum => plain(&fm + &bm, None),
                    MergeMode::Mul => plain(&fm * &bm, None),
                    MergeMode::Ave => plain((&fm + &bm) * 0.5, None),
                    MergeMode::None => {
                        vec![Val { t: Tensor::F32(fm), mask: None }, Val { t: Tensor::F32(bm), mask: None }]
                    }
                };
                (out, Cache::Bidi { f: Box::new(ft), b: Box::new(bt), dims })
            }
            Op::RepeatRnn { .. } => {
                return Err(unsupported("a fused RepeatVector→RNN (train the program before optimisation)"));
            }
            Op::RepeatVector => {
                let count = p.types[&n][0].dims[0]
                    .resolve(bindings)
                    .ok_or_else(|| unsupported("an unbound RepeatVector count"))?;
                (plain(time::repeat(&f32_of(ins[0], &node.layer)?, count), None), Cache::None)
            }
            Op::TimeSlice { start, end } => {
                let expected = p.types[&n][0].dims[0].resolve(bindings);
                (
                    plain(
                        time::slice(f32_of(ins[0], &node.layer)?.view(), *start, *end, expected)?.to_owned(),
                        None,
                    ),
                    Cache::None,
                )
            }
            Op::TimeStep { index } => (
                plain(time::step(f32_of(ins[0], &node.layer)?.view(), *index)?.to_owned(), None),
                Cache::None,
            ),
            Op::ZeroPad { left, right } => {
                (plain(time::pad(&f32_of(ins[0], &node.layer)?, *left, *right), None), Cache::None)
            }
            Op::Merge(kind) => {
                let xs: Vec<ArrayD<f32>> =
                    ins.iter().map(|v| f32_of(v, &node.layer)).collect::<Result<_>>()?;
                let refs: Vec<&ArrayD<f32>> = xs.iter().collect();
                (plain(basic::merge(*kind, &refs)?, None), Cache::None)
            }
            Op::FoldTime => {
                let s = ins[0].t.shape().to_vec();
                let mut f = vec![s[0] * s[1]];
                f.extend_from_slice(&s[2..]);
                let t = match &ins[0].t {
                    Tensor::F32(a) => Tensor::F32(
                        a.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&f)).expect("fold"),
                    ),
                    Tensor::I32(a) => Tensor::I32(
                        a.as_standard_layout().to_owned().into_shape_with_order(IxDyn(&f)).expect("fold"),
                    ),
                };
                (vec![Val { t, mask: None }], Cache::None)
            }
            Op::UnfoldTime => {
                let outer = ins[1].t.shape();
                let inner = f32_of(ins[0], &node.layer)?;
                let mut s = vec![outer[0], outer[1]];
                s.extend_from_slice(&inner.shape()[1..]);
                (
                    plain(inner.into_shape_with_order(IxDyn(&s)).expect("unfold"), ins[1].mask.clone()),
                    Cache::None,
                )
            }
        };
        vals.insert(n, out);
        caches.insert(n, cache);
    }
    Ok(Pass { vals, caches })
}

fn add_grad(grads: &mut HashMap<(NodeIndex, usize), ArrayD<f32>>, key: (NodeIndex, usize), g: ArrayD<f32>) {
    match grads.get_mut(&key) {
        Some(acc) => *acc += &g,
        None => {
            grads.insert(key, g);
        }
    }
}

fn add_weight(wg: &mut HashMap<String, ArrayD<f32>>, key: String, shape: &[usize], g: Vec<f32>) {
    let g = ArrayD::from_shape_vec(IxDyn(shape), g).expect("weight gradient shape");
    match wg.get_mut(&key) {
        Some(acc) => *acc += &g,
        None => {
            wg.insert(key, g);
        }
    }
}

#[allow(clippy::too_many_arguments)] // the tape, its weights and where the gradients go
fn rnn_backward(
    tape: &RnnTape,
    prm: &RnnParams<'_>,
    a: &RnnAttrs,
    dims: (usize, usize, usize),
    d_main: Option<&ArrayD<f32>>,
    d_states: &[Option<Vec<f32>>],
    prefix: &str,
    wg: &mut HashMap<String, ArrayD<f32>>,
) -> rnn::RnnGrads {
    let main = d_main.map(|g| g.as_standard_layout().to_owned().into_raw_vec_and_offset().0);
    let (d_seq, d_last) = if a.return_sequences { (main.as_deref(), None) } else { (None, main.as_deref()) };
    let g = rnn::backward(tape, prm, d_seq, d_last, d_states);
    let gu = a.cell.gates() * a.units;
    add_weight(wg, format!("{prefix}/kernel"), &[dims.2, gu], g.dkernel.clone());
    add_weight(wg, format!("{prefix}/recurrent_kernel"), &[a.units, gu], g.drecurrent.clone());
    if a.use_bias {
        let shape = if g.dbias.len() == 2 * gu { vec![2, gu] } else { vec![gu] };
        add_weight(wg, format!("{prefix}/bias"), &shape, g.dbias.clone());
    }
    g
}

/// Weight gradients of one step; `squares` holds, for sparse (Embedding) gradients, the sum
/// of each gathered slice's square (see [`super::Optimizer::apply_sparse_aware`]).
pub(crate) struct WeightGrads {
    pub grads: HashMap<String, ArrayD<f32>>,
    pub squares: HashMap<String, ArrayD<f32>>,
}

/// Backpropagates `output_grads` (one per program output) and returns the weight gradients.
pub(crate) fn backward(
    p: &Program,
    store: &WeightStore,
    pass: &Pass,
    output_grads: Vec<ArrayD<f32>>,
) -> Result<WeightGrads> {
    let mut squares: HashMap<String, ArrayD<f32>> = HashMap::new();
    let mut grads: HashMap<(NodeIndex, usize), ArrayD<f32>> = HashMap::new();
    for (o, g) in p.outputs.iter().zip(output_grads) {
        add_grad(&mut grads, (o.node, o.port), g);
    }
    let mut wg: HashMap<String, ArrayD<f32>> = HashMap::new();
    for n in p.topo_order().into_iter().rev() {
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
        let prefix = node.weights.clone().unwrap_or_default();
        let cache = &pass.caches[&n];
        match (&node.op, cache) {
            (Op::Input { .. }, _) => {}
            (Op::Dense { units, input_dim, activation: act, use_bias }, Cache::Dense { x, pre }) => {
                let dpre = match act {
                    seqmodel_ir::Activation::Linear => dout_ref(0),
                    a => std::borrow::Cow::Owned(act_backward(*a, pre.as_ref(), out_f32(0), &dout_ref(0))),
                };
                let dpre = dpre.as_standard_layout();
                let rows = x.len() / input_dim;
                let xs = x.as_slice().expect("standard");
                let ds = dpre.as_slice().expect("standard");
                let mut dk = vec![0.0f32; input_dim * units];
                matmul(*input_dim, rows, *units, &pool::transposed(xs, rows, *input_dim), ds, &mut dk, false);
                add_weight(&mut wg, format!("{prefix}/kernel"), &[*input_dim, *units], dk);
                if *use_bias {
                    let mut db = vec![0.0f32; *units];
                    for row in ds.chunks(*units) {
                        for (b, v) in db.iter_mut().zip(row) {
                            *b += v;
                        }
                    }
                    add_weight(&mut wg, format!("{prefix}/bias"), &[*units], db);
                }
                let k = w(store, &format!("{prefix}/kernel"))?;
                let mut dx = vec![0.0f32; rows * input_dim];
                matmul(
                    rows,
                    *units,
                    *input_dim,
                    ds,
                    &pool::transposed(k, *input_dim, *units),
                    &mut dx,
                    false,
                );
                add_grad(
                    &mut grads,
                    (ins[0].node, ins[0].port),
                    ArrayD::from_shape_vec(x.raw_dim(), dx).expect("shape"),
                );
            }
            (Op::Activation(a), Cache::Act { pre }) => {
                let dx = act_backward(*a, pre.as_ref(), out_f32(0), &dout_ref(0));
                add_grad(&mut grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::Dropout { .. }, Cache::Dropout { keep }) => {
                add_grad(&mut grads, (ins[0].node, ins[0].port), dout(0) * keep);
            }
            (Op::Masking { .. }, Cache::Masking { mask }) => {
                let mut d = dout(0);
                for ((b, t), live) in mask.indexed_iter() {
                    if !live {
                        d.index_axis_mut(Axis(0), b).index_axis_mut(Axis(0), t).fill(0.0);
                    }
                }
                add_grad(&mut grads, (ins[0].node, ins[0].port), d);
            }
            (Op::Embedding { input_dim, output_dim, .. }, Cache::Embedding { ids }) => {
                let d = dout(0).as_standard_layout().to_owned();
                let ds = d.as_slice().expect("standard");
                let mut dt = vec![0.0f32; input_dim * output_dim];
                let mut sq = vec![0.0f32; input_dim * output_dim];
                for (r, &id) in ids.iter().enumerate() {
                    for j in 0..*output_dim {
                        let v = ds[r * output_dim + j];
                        dt[id as usize * output_dim + j] += v;
                        sq[id as usize * output_dim + j] += v * v;
                    }
                }
                add_weight(&mut wg, format!("{prefix}/embeddings"), &[*input_dim, *output_dim], dt);
                add_weight(&mut squares, format!("{prefix}/embeddings"), &[*input_dim, *output_dim], sq);
            }
            (Op::Rnn(a), Cache::Rnn { tape, dims, in_mask }) => {
                let prm = params(store, &prefix, a)?;
                let d_states: Vec<Option<Vec<f32>>> = (1..n_out)
                    .map(|i| {
                        douts[i]
                            .as_ref()
                            .map(|g| g.as_standard_layout().to_owned().into_raw_vec_and_offset().0)
                    })
                    .collect();
                let g = rnn_backward(tape, &prm, a, *dims, douts[0].as_ref(), &d_states, &prefix, &mut wg);
                let (b, t, d) = *dims;
                let mut dx = g.dx;
                if let Some(m) = in_mask {
                    for (r, row) in dx.chunks_mut(d).enumerate() {
                        let bi = r / t;
                        for (v, k) in row.iter_mut().zip(&m[bi * d..][..d]) {
                            *v *= k;
                        }
                    }
                }
                add_grad(
                    &mut grads,
                    (ins[0].node, ins[0].port),
                    ArrayD::from_shape_vec(IxDyn(&[b, t, d]), dx).expect("shape"),
                );
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
            (Op::Bidirectional { forward: fa, backward: ba, merge }, Cache::Bidi { f, b: bt, dims }) => {
                let u = fa.units;
                let (df, mut db) = match merge {
                    MergeMode::None => (dout(0), dout(1)),
                    MergeMode::Concat => {
                        let d = dout(0);
                        let last = d.ndim() - 1;
                        (
                            d.slice_axis(Axis(last), (0..u).into()).to_owned(),
                            d.slice_axis(Axis(last), (u..2 * u).into()).to_owned(),
                        )
                    }
                    MergeMode::Sum => (dout(0), dout(0)),
                    MergeMode::Ave => (dout(0) * 0.5, dout(0) * 0.5),
                    MergeMode::Mul => {
                        let outs = &pass.vals[&n][0];
                        let _ = outs;
                        return Err(unsupported("Bidirectional with merge_mode=\"mul\""));
                    }
                };
                if fa.return_sequences {
                    db.invert_axis(Axis(1));
                }
                let gf = rnn_backward(
                    f,
                    &params(store, &format!("{prefix}/forward"), fa)?,
                    fa,
                    *dims,
                    Some(&df),
                    &[],
                    &format!("{prefix}/forward"),
                    &mut wg,
                );
                let gb = rnn_backward(
                    bt,
                    &params(store, &format!("{prefix}/backward"), ba)?,
                    ba,
                    *dims,
                    Some(&db),
                    &[],
                    &format!("{prefix}/backward"),
                    &mut wg,
                );
                let (b, t, d) = *dims;
                let dx: Vec<f32> = gf.dx.iter().zip(&gb.dx).map(|(a, b)| a + b).collect();
                add_grad(
                    &mut grads,
                    (ins[0].node, ins[0].port),
                    ArrayD::from_shape_vec(IxDyn(&[b, t, d]), dx).expect("shape"),
                );
            }
            (Op::RepeatVector, _) => {
                add_grad(&mut grads, (ins[0].node, ins[0].port), dout(0).sum_axis(Axis(1)));
            }
            (Op::TimeSlice { start, end }, _) => {
                let x_shape = in_val(0).t.shape().to_vec();
                let t = x_shape[1] as i64;
                let norm = |i: i64| if i < 0 { (t + i).max(0) } else { i.min(t) };
                let (s, e) = (norm(*start) as usize, end.map_or(t, norm) as usize);
                let mut dx = ArrayD::zeros(IxDyn(&x_shape));
                dx.slice_axis_mut(Axis(1), (s..e).into()).assign(&dout(0));
                add_grad(&mut grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::TimeStep { index }, _) => {
                let x_shape = in_val(0).t.shape().to_vec();
                let t = x_shape[1] as i64;
                let i = if *index < 0 { t + index } else { *index } as usize;
                let mut dx = ArrayD::zeros(IxDyn(&x_shape));
                dx.index_axis_mut(Axis(1), i).assign(&dout(0));
                add_grad(&mut grads, (ins[0].node, ins[0].port), dx);
            }
            (Op::ZeroPad { left, .. }, _) => {
                let t = in_val(0).t.shape()[1];
                add_grad(
                    &mut grads,
                    (ins[0].node, ins[0].port),
                    dout(0).slice_axis(Axis(1), (*left..left + t).into()).to_owned(),
                );
            }
            (Op::Merge(kind), _) => {
                let d = dout(0);
                let xs: Vec<ArrayD<f32>> =
                    (0..ins.len()).map(|i| f32_of(in_val(i), &node.layer)).collect::<Result<_>>()?;
                let k = ins.len() as f32;
                for (i, q) in ins.iter().enumerate() {
                    let g = match kind {
                        MergeKind::Add => d.clone(),
                        MergeKind::Average => &d / k,
                        MergeKind::Subtract => {
                            if i == 0 {
                                d.clone()
                            } else {
                                -&d
                            }
                        }
                        MergeKind::Multiply => {
                            let mut g = d.clone();
                            for (j, x) in xs.iter().enumerate() {
                                if j != i {
                                    g *= x;
                                }
                            }
                            g
                        }
                        MergeKind::Maximum | MergeKind::Minimum => {
                            let y = f32_of(&pass.vals[&n][0], &node.layer)?;
                            let mut g = d.clone();
                            ndarray::Zip::from(&mut g).and(&xs[i]).and(&y).for_each(|g, x, y| {
                                if x != y {
                                    *g = 0.0
                                }
                            });
                            g
                        }
                        MergeKind::Concatenate { axis } => {
                            let offset: usize = xs[..i].iter().map(|x| x.shape()[axis + 1]).sum();
                            let w = xs[i].shape()[axis + 1];
                            d.slice_axis(Axis(axis + 1), (offset..offset + w).into()).to_owned()
                        }
                    };
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
            (op, _) => return Err(unsupported(op.kind_name())),
        }
    }
    Ok(WeightGrads { grads: wg, squares })
}
