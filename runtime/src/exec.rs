//! The execution of one operation on concrete arrays. The interpreter and the code that
//! `seqmodel!` and `seqc build` generate both call these functions, so they compute the
//! same numbers by construction.

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis, Dimension, Ix2, Ix3, IxDyn};
use seqmodel_ir::{DType, Dim, Op, RnnAttrs};

use crate::error::{Result, RuntimeError};
use crate::kernels::{FixedRhs, activation};
use crate::layers::bidirectional::{BidiTape, Bidirectional};
use crate::layers::dropped_input;
use crate::layers::recurrent::{self as rnn, Recording, RnnTape};
use crate::layers::{basic, merge, time};
use crate::{Tensor, TensorView, WeightStore};

/// A value flowing along an edge: a tensor and its optional step mask `[B, T]`.
#[derive(Debug, Clone)]
pub struct Value {
    /// The data, batch first.
    pub t: Tensor,
    /// Which steps are real (`true`) when a Masking or `mask_zero` Embedding is upstream.
    pub mask: Option<Array2<bool>>,
}

impl Value {
    /// A model input (no mask).
    pub fn input(t: Tensor) -> Self {
        Value { t, mask: None }
    }

    /// The data as floats (integer outputs, which only an input passed through can be, are
    /// converted).
    pub fn into_f32(self) -> ArrayD<f32> {
        match self.t {
            Tensor::F32(a) => a,
            Tensor::I32(a) => a.mapv(|v| v as f32),
        }
    }
}

/// The carried states of every node of a generated model (`None` = zeros).
pub type States = Vec<Option<Vec<Array2<f32>>>>;

/// One node's weights in the kernels' layout, prepared once at load time.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// Dense kernel `[D, U]` and bias.
    Dense {
        /// The kernel, packed for the matrix-product kernel.
        kernel: FixedRhs,
        /// Bias, if any.
        bias: Option<Vec<f32>>,
    },
    /// A recurrent layer (boxed: its packed matrices make it the largest variant by far).
    Rnn(Box<rnn::RnnWeights>),
    /// Forward and backward layers (boxed: two layers' weights make the largest variant).
    Bidirectional(Box<(rnn::RnnWeights, rnn::RnnWeights)>),
    /// The embedding table.
    Embedding(Array2<f32>),
    /// A described layer's weights.
    Layer(crate::layers::Params),
}

/// The weight stored under `key`, as a contiguous slice.
pub(crate) fn weight<'a>(w: &'a WeightStore, key: &str) -> Result<&'a [f32]> {
    w.get(key).and_then(|a| a.as_slice()).ok_or_else(|| RuntimeError::MissingWeight {
        key: key.into(),
        shape: vec![],
        layer: key.rsplit_once('/').map_or(key, |(l, _)| l).into(),
    })
}

/// Prepares the weights of an operation stored under `prefix` (`None` for ops without
/// weights): every weight of [`seqmodel_ir::op_weight_specs`] is looked up and its size
/// checked, then packed for the kernels once. `w` must hold standard-layout arrays.
pub fn prepare(op: &Op, w: &WeightStore, prefix: &str) -> Result<Option<Prepared>> {
    let specs = seqmodel_ir::op_weight_specs(op, prefix);
    // Packing copies the weights once more: say so before it aborts half-way.
    let values: usize =
        specs.iter().map(|s| s.shape.iter().product::<usize>()).fold(0, usize::saturating_add);
    crate::memory::ensure_allocatable(values.saturating_mul(4), || {
        format!("packing the weights of layer `{prefix}`")
    })?;
    let mut ws = Vec::with_capacity(specs.len());
    for spec in &specs {
        let v = weight(w, &spec.key)?;
        if v.len() != spec.shape.iter().product::<usize>() {
            return Err(RuntimeError::WeightShape {
                key: spec.key.clone(),
                expected: spec.shape.clone(),
                found: vec![v.len()],
                layer: prefix.into(),
            });
        }
        ws.push(v);
    }
    // The weights in Keras's order: kernel, bias / kernel, recurrent kernel, bias / table.
    let rnn = |a: &RnnAttrs, ws: &[&[f32]]| rnn::RnnWeights::pack(a, ws[0], ws[1], a.use_bias.then(|| ws[2]));
    Ok(Some(match op {
        Op::Dense { use_bias, units, input_dim, .. } => Prepared::Dense {
            kernel: FixedRhs::new(*input_dim, *units, ws[0]),
            bias: use_bias.then(|| ws[1].to_vec()),
        },
        Op::Rnn(a) | Op::RepeatRnn { rnn: a, .. } => Prepared::Rnn(Box::new(rnn(a, &ws))),
        Op::Bidirectional { forward, backward, .. } => {
            let (f, b) = ws.split_at(if forward.use_bias { 3 } else { 2 });
            Prepared::Bidirectional(Box::new((rnn(forward, f), rnn(backward, b))))
        }
        Op::Embedding { input_dim, output_dim, .. } => Prepared::Embedding(
            Array2::from_shape_vec((*input_dim, *output_dim), ws[0].to_vec()).expect("size checked above"),
        ),
        Op::Layer(l) => Prepared::Layer(crate::layers::layer_of(l).prepare(&ws)),
        _ => return Ok(None),
    }))
}

/// [`prepare`] into `slot` for a training pass over `batch` rows, reusing the buffers of what
/// it holds when it was prepared for the same operation (a trainer repacks every weight
/// after each step; allocating them afresh cost page faults on every step). What only
/// inference reads (the stacked recurrent kernels) or only one-row products read (the
/// column blocks, unless `batch` is 1) is not laid out again.
pub fn prepare_into(
    op: &Op,
    w: &WeightStore,
    prefix: &str,
    specs: &[seqmodel_ir::WeightSpec],
    slot: &mut Option<Prepared>,
    batch: usize,
) -> Result<()> {
    let Some(old) = slot.as_mut() else {
        *slot = prepare(op, w, prefix)?;
        return Ok(());
    };
    // At most a few weights per node (a Bidirectional's six): no list is allocated.
    let mut ws: [&[f32]; 8] = [&[]; 8];
    if specs.len() > ws.len() {
        *slot = prepare(op, w, prefix)?;
        return Ok(());
    }
    for (slot, s) in ws.iter_mut().zip(specs) {
        *slot = weight(w, &s.key)?;
    }
    let ws = &ws[..specs.len()];
    if specs.iter().zip(ws).any(|(s, v)| v.len() != s.shape.iter().product::<usize>()) {
        *slot = prepare(op, w, prefix)?;
        return Ok(());
    }
    fn bias<'w>(a: &RnnAttrs, ws: &[&'w [f32]]) -> Option<&'w [f32]> {
        a.use_bias.then(|| ws[2])
    }
    match (op, old) {
        (Op::Dense { input_dim, units, .. }, Prepared::Dense { kernel, bias: b }) => {
            kernel.refill_with(*input_dim, *units, ws[0], batch == 1);
            if let (Some(b), Some(v)) = (b.as_mut(), ws.get(1)) {
                b.copy_from_slice(v);
            }
        }
        (Op::Rnn(a) | Op::RepeatRnn { rnn: a, .. }, Prepared::Rnn(r)) => {
            r.repack_with(a, ws[0], ws[1], bias(a, ws), Some(batch))
        }
        (Op::Bidirectional { forward, backward, .. }, Prepared::Bidirectional(pair)) => {
            let (f, b) = ws.split_at(if forward.use_bias { 3 } else { 2 });
            pair.0.repack_with(forward, f[0], f[1], bias(forward, f), Some(batch));
            pair.1.repack_with(backward, b[0], b[1], bias(backward, b), Some(batch));
        }
        (Op::Embedding { .. }, Prepared::Embedding(table)) => {
            table.as_slice_mut().expect("standard layout").copy_from_slice(ws[0]);
        }
        (Op::Layer(l), Prepared::Layer(params)) => crate::layers::layer_of(l).prepare_into(ws, params),
        _ => *slot = prepare(op, w, prefix)?,
    }
    Ok(())
}

/// A borrowed value: what a node reads from its inputs.
#[derive(Debug, Clone)]
pub struct ValueRef<'a> {
    /// The data, batch first.
    pub t: TensorView<'a>,
    /// The step mask `[B, T]`, if any.
    pub mask: Option<ArrayView2<'a, bool>>,
}

impl<'a> ValueRef<'a> {
    /// A model input (no mask).
    pub fn input(t: TensorView<'a>) -> Self {
        ValueRef { t, mask: None }
    }

    /// The float data; integer data (only an input passed straight through) is an error.
    pub fn f32(&self) -> Result<ArrayViewD<'a, f32>> {
        match &self.t {
            TensorView::F32(a) => Ok(a.clone()),
            TensorView::I32(_) => {
                Err(RuntimeError::Shape("this output holds integer ids, not floats".into()))
            }
        }
    }

    /// An owned float copy (integer ids are converted).
    pub fn to_f32(&self) -> ArrayD<f32> {
        match &self.t {
            TensorView::F32(a) => a.to_owned(),
            TensorView::I32(a) => a.mapv(|v| v as f32),
        }
    }
}

impl Value {
    /// A borrowed view of this value.
    pub fn view(&self) -> ValueRef<'_> {
        ValueRef { t: self.t.view(), mask: self.mask.as_ref().map(|m| m.view()) }
    }
}

/// Buffers reused across runs: every node's outputs and the kernels' work buffers. After a
/// first run with given shapes, later runs with the same shapes allocate nothing.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    /// Each node's outputs, by node position.
    pub values: Vec<Vec<Value>>,
    /// Work buffers shared by the nodes (they run one after another).
    pub scratch: Scratch,
}

impl Workspace {
    /// A workspace for `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        Workspace { values: vec![Vec::new(); nodes], scratch: Scratch::default() }
    }
}

/// Work buffers of the recurrent layers.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    pub(crate) rnn: rnn::RnnScratch,
    pub(crate) states: Vec<Vec<f32>>,
    pub(crate) states_b: Vec<Vec<f32>>,
    pub(crate) last: Vec<f32>,
    pub(crate) last_b: Vec<f32>,
    pub(crate) seq: Vec<f32>,
    pub(crate) seq_b: Vec<f32>,
}

/// Dropout keep masks of one recurrent layer in a training pass (scaled by `1 / (1 - rate)`).
#[derive(Debug, Clone, Default)]
pub(crate) struct RnnDropout {
    /// On the input features, `[B·D]`, the same at every step.
    pub input: Option<Vec<f32>>,
    /// On the previous `h` in the recurrent products, `[B·U]`.
    pub recurrent: Option<Vec<f32>>,
}

/// What a training pass asks of one node besides its outputs.
#[derive(Debug, Default)]
pub(crate) struct Training {
    /// The recurrent layers' dropout masks (a Bidirectional's forward layer first).
    pub dropout: [RnnDropout; 2],
    /// Filled by the node: what its backward pass needs beyond its inputs and outputs.
    pub tape: Option<NodeTape>,
    /// Whether this is a training pass (noise on, batch statistics) rather than an
    /// evaluation through the trainer.
    pub training: bool,
    /// The state of the pass's random numbers (noise layers draw from it and advance it).
    pub seed: u64,
    /// Added to the loss by the node (ActivityRegularization's penalty).
    pub penalty: f32,
}

/// What a node's backward pass needs beyond its inputs and outputs.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per node in a trainer's map; a box allocated every step
pub(crate) enum NodeTape {
    /// A Dense layer's output before its fused activation.
    Dense(ArrayD<f32>),
    /// A recurrent layer, and its input dropout's keep mask.
    Rnn(RnnTape, Option<Vec<f32>>),
    /// Both layers of a Bidirectional.
    Bidirectional(Box<BidiTape>),
    /// An array a described layer saved for its backward pass.
    Saved(ArrayD<f32>),
}

/// An element type of node outputs: how its arrays sit in a [`Tensor`] and where a new
/// one's storage comes from.
trait Element: Clone + Default + Sized {
    fn wrap(a: ArrayD<Self>) -> Tensor;
    fn get(t: &mut Tensor) -> Option<&mut ArrayD<Self>>;
    /// `n` zeros, or the out-of-memory error that names `what`.
    fn zeros(n: Option<usize>, what: &dyn Fn() -> String) -> Result<Vec<Self>>;
    /// `n` elements for an output that its node writes whole: [`Element::zeros`] unless a
    /// type has a cheaper way.
    fn written_whole(n: Option<usize>, what: &dyn Fn() -> String) -> Result<Vec<Self>> {
        Self::zeros(n, what)
    }
}

impl Element for f32 {
    fn wrap(a: ArrayD<f32>) -> Tensor {
        Tensor::F32(a)
    }
    fn get(t: &mut Tensor) -> Option<&mut ArrayD<f32>> {
        match t {
            Tensor::F32(a) => Some(a),
            Tensor::I32(_) => None,
        }
    }
    /// From the training pool: a training pass makes every output anew.
    fn zeros(n: Option<usize>, what: &dyn Fn() -> String) -> Result<Vec<f32>> {
        crate::pool::try_filled(n, what)
    }
    /// From the training pool without zeroing: the node overwrites every element.
    fn written_whole(n: Option<usize>, what: &dyn Fn() -> String) -> Result<Vec<f32>> {
        crate::pool::try_overwritten(n, what)
    }
}

impl Element for i32 {
    fn wrap(a: ArrayD<i32>) -> Tensor {
        Tensor::I32(a)
    }
    fn get(t: &mut Tensor) -> Option<&mut ArrayD<i32>> {
        match t {
            Tensor::I32(a) => Some(a),
            Tensor::F32(_) => None,
        }
    }
    fn zeros(n: Option<usize>, what: &dyn Fn() -> String) -> Result<Vec<i32>> {
        crate::memory::try_filled(n, what)
    }
}

/// Output `port` of a node as an array of `T` shaped `shape`, reused when it already is one
/// (else replaced by zeros, allocated fallibly: an output too large for memory is
/// [`RuntimeError::OutOfMemory`], which [`node_into`] names the layer in).
fn slot<'o, T: Element>(out: &'o mut Vec<Value>, port: usize, shape: &[usize]) -> Result<&'o mut ArrayD<T>> {
    slot_made(out, port, shape, false)
}

/// [`slot`]; a new array's elements are zeros, or, where the node writes it `whole`,
/// whatever a pooled buffer held ([`Element::written_whole`]).
fn slot_made<'o, T: Element>(
    out: &'o mut Vec<Value>,
    port: usize,
    shape: &[usize],
    whole: bool,
) -> Result<&'o mut ArrayD<T>> {
    while out.len() <= port {
        out.push(Value { t: T::wrap(ArrayD::default(IxDyn(&[0]))), mask: None });
    }
    let v = &mut out[port].t;
    if T::get(v).is_none_or(|a| a.shape() != shape) {
        let what = || format!("an output of shape {shape:?}");
        let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let data = if whole { T::written_whole(n, &what)? } else { T::zeros(n, &what)? };
        *v = T::wrap(ArrayD::from_shape_vec(IxDyn(shape), data).expect("sized from the shape"));
    }
    Ok(T::get(v).expect("made above"))
}

/// The float output `port` of a node (see [`slot`]).
pub(crate) fn f32_slot<'o>(
    out: &'o mut Vec<Value>,
    port: usize,
    shape: &[usize],
) -> Result<&'o mut ArrayD<f32>> {
    slot(out, port, shape)
}

/// [`f32_slot`] for an output that the node writes whole before anything reads it: a new
/// array from the training pool keeps what its buffer held instead of being zeroed (a
/// training pass zeroed lm-gru's 20 MB Dense output at every step, on one thread, before the
/// product overwrote it).
pub(crate) fn f32_slot_written_whole<'o>(
    out: &'o mut Vec<Value>,
    port: usize,
    shape: &[usize],
) -> Result<&'o mut ArrayD<f32>> {
    slot_made(out, port, shape, true)
}

/// The integer output `port` of a node (see [`slot`]).
fn i32_slot<'o>(out: &'o mut Vec<Value>, port: usize, shape: &[usize]) -> Result<&'o mut ArrayD<i32>> {
    slot(out, port, shape)
}

/// Sets the mask of output `port` (copied into the existing buffer when the shapes agree).
pub(crate) fn set_mask(out: &mut [Value], port: usize, mask: Option<ArrayView2<'_, bool>>) {
    let dst = &mut out[port].mask;
    match (dst.as_mut(), mask) {
        (Some(d), Some(m)) if d.dim() == m.dim() => d.assign(&m),
        (_, m) => *dst = m.map(|m| m.to_owned()),
    }
}

/// A mutable mask buffer `[b, t]` on output `port`.
fn mask_slot(out: &mut [Value], port: usize, b: usize, t: usize) -> &mut Array2<bool> {
    let dst = &mut out[port].mask;
    if dst.as_ref().is_none_or(|m| m.dim() != (b, t)) {
        *dst = Some(Array2::from_elem((b, t), false));
    }
    dst.as_mut().expect("set above")
}

/// A shape made of `parts` joined (inline, without a heap allocation, up to 4 dimensions).
fn joined(parts: &[&[usize]]) -> IxDyn {
    let mut d = IxDyn::zeros(parts.iter().map(|p| p.len()).sum());
    let mut i = 0;
    for p in parts {
        for v in *p {
            d[i] = *v;
            i += 1;
        }
    }
    d
}

/// The elements of a slot (always standard layout).
pub(crate) fn contiguous(a: &mut ArrayD<f32>) -> &mut [f32] {
    a.as_slice_mut().expect("slots are in standard layout")
}

/// Sizes `k` state vectors of `n` values and zeroes them.
pub(crate) fn zero_states(dst: &mut Vec<Vec<f32>>, k: usize, n: usize) {
    state_count(dst, k, n);
    for d in dst.iter_mut() {
        rnn::sized(d, n).fill(0.0);
    }
}

/// Makes `dst` exactly `k` state buffers: the recurrence takes a second one as the cell
/// state whenever it is there (a GRU after an LSTM needs one where the LSTM had two). A spare
/// goes back to the pool and a missing one (of `n` zeros) comes from it, so that alternating
/// cells allocate nothing.
fn state_count(dst: &mut Vec<Vec<f32>>, k: usize, n: usize) {
    while dst.len() > k {
        crate::pool::recycle(dst.pop().expect("longer than k"));
    }
    while dst.len() < k {
        dst.push(crate::pool::zeros(n));
    }
}

/// Copies one given state into `dst` (sized by [`zero_states`]).
pub(crate) fn copy_state(dst: &mut [f32], m: ArrayView2<'_, f32>) -> Result<()> {
    if m.len() != dst.len() {
        return Err(RuntimeError::Shape(format!(
            "an initial state has shape {:?}; the layer needs {} values",
            m.shape(),
            dst.len()
        )));
    }
    match m.as_slice() {
        Some(src) => dst.copy_from_slice(src),
        None => {
            for (o, v) in dst.iter_mut().zip(m.iter()) {
                *o = *v;
            }
        }
    }
    Ok(())
}

/// Saves the final states of a stateful layer.
pub(crate) fn save_states(state: &mut Option<Vec<Array2<f32>>>, states: &[Vec<f32>], b: usize, u: usize) {
    let fits = state.as_ref().is_some_and(|s| s.len() == states.len() && s.iter().all(|m| m.dim() == (b, u)));
    if !fits {
        *state = Some(vec![Array2::zeros((b, u)); states.len()]);
    }
    for (m, v) in state.as_mut().expect("set above").iter_mut().zip(states) {
        m.as_slice_mut().expect("standard layout").copy_from_slice(&v[..b * u]);
    }
}

/// The workspace's state buffers while a stateful layer's carried states stand in for them
/// (see [`lend_states`]); a recurrent cell has at most two states.
pub(crate) type ParkedStates = [Vec<f32>; 2];

/// Swaps the `k` carried states of a stateful layer, if they are `[b, u]` each, into the
/// workspace's state buffers, whose own buffers it returns to be put back by
/// [`take_back_states`]; `None` (nothing moved) when they do not fit. No element is copied.
pub(crate) fn lend_states(
    state: &mut Option<Vec<Array2<f32>>>,
    states: &mut Vec<Vec<f32>>,
    k: usize,
    (b, u): (usize, usize),
) -> Option<ParkedStates> {
    let carried = state.as_mut()?;
    let fits =
        carried.len() == k && k <= 2 && carried.iter().all(|m| m.dim() == (b, u) && m.is_standard_layout());
    if !fits {
        return None;
    }
    // Exactly `k` buffers, as `zero_states` leaves them (a GRU's run after an LSTM's sliced
    // the LSTM's leftover buffer to its own size, past its end).
    state_count(states, k, b * u);
    let mut parked = ParkedStates::default();
    for ((m, d), p) in carried.iter_mut().zip(states.iter_mut()).zip(&mut parked) {
        let (v, _) = std::mem::replace(m, Array2::zeros((0, 0))).into_raw_vec_and_offset();
        *p = std::mem::replace(d, v);
    }
    Some(parked)
}

/// Puts the states a layer ran on back as its carried states and the workspace's buffers
/// back in place (the inverse of [`lend_states`]).
pub(crate) fn take_back_states(
    state: &mut Option<Vec<Array2<f32>>>,
    states: &mut [Vec<f32>],
    parked: ParkedStates,
    (b, u): (usize, usize),
) {
    let Some(carried) = state.as_mut() else { return };
    for ((m, d), p) in carried.iter_mut().zip(states.iter_mut()).zip(parked) {
        let mut v = std::mem::replace(d, p);
        v.truncate(b * u);
        *m = Array2::from_shape_vec((b, u), v).expect("the recurrence keeps b · u values per state");
    }
}

/// Runs one operation on its inputs, writing its outputs into `out` (whose buffers are
/// reused when the shapes are unchanged). `prepared` holds the node's weights, `state` the
/// carried states of a stateful layer, `out_time` the resolved first dimension of the output
/// type (the count of RepeatVector, the length of a time slice).
#[allow(clippy::too_many_arguments)] // the full context of one node, passed explicitly
pub fn node_into(
    op: &Op,
    layer: &str,
    prepared: Option<&Prepared>,
    ins: &[ValueRef<'_>],
    state: &mut Option<Vec<Array2<f32>>>,
    out_time: Option<usize>,
    scratch: &mut Scratch,
    out: &mut Vec<Value>,
) -> Result<()> {
    node_into_training(op, layer, prepared, ins, state, out_time, scratch, out, None)
}

/// [`node_into`] for a training pass: with `train`, the node also records what its
/// backward pass needs (and applies the recurrent layers' dropout masks).
#[allow(clippy::too_many_arguments)] // the full context of one node, passed explicitly
pub(crate) fn node_into_training(
    op: &Op,
    layer: &str,
    prepared: Option<&Prepared>,
    ins: &[ValueRef<'_>],
    state: &mut Option<Vec<Array2<f32>>>,
    out_time: Option<usize>,
    scratch: &mut Scratch,
    out: &mut Vec<Value>,
    train: Option<&mut Training>,
) -> Result<()> {
    run_node(op, layer, prepared, ins, state, out_time, scratch, out, train).map_err(|e| e.in_layer(layer))
}

/// [`node_into_training`] without the layer's name on running out of memory.
#[allow(clippy::too_many_arguments)] // the full context of one node, passed explicitly
fn run_node(
    op: &Op,
    layer: &str,
    prepared: Option<&Prepared>,
    ins: &[ValueRef<'_>],
    state: &mut Option<Vec<Array2<f32>>>,
    out_time: Option<usize>,
    scratch: &mut Scratch,
    out: &mut Vec<Value>,
    mut train: Option<&mut Training>,
) -> Result<()> {
    let f32_in = |i: usize| -> Result<ArrayViewD<'_, f32>> {
        match &ins[i].t {
            TensorView::F32(a) => Ok(a.clone()),
            TensorView::I32(_) => Err(RuntimeError::Shape(format!("layer `{layer}` got integer data"))),
        }
    };
    let with_last = |shape: &[usize], last: usize| {
        let mut s = joined(&[shape]);
        if let Some(l) = s.slice_mut().last_mut() {
            *l = last;
        }
        s
    };
    match op {
        Op::Input { .. } => return Err(RuntimeError::Shape("model inputs are fed by the caller".into())),
        Op::Dense { units, activation, .. } => {
            let Some(Prepared::Dense { kernel, bias }) = prepared else { unreachable!("prepared at load") };
            let x = f32_in(0)?;
            let y = f32_slot_written_whole(out, 0, with_last(x.shape(), *units).slice())?;
            match train.as_deref_mut() {
                // Training keeps the output before the activation when its gradient needs it.
                Some(tr)
                    if *activation != seqmodel_ir::Activation::Linear
                        && activation::grad_needs_input(*activation) =>
                {
                    basic::dense_into(
                        x,
                        kernel,
                        bias.as_deref(),
                        *units,
                        seqmodel_ir::Activation::Linear,
                        contiguous(y),
                    );
                    tr.tape = Some(NodeTape::Dense(y.clone()));
                    activation::apply(*activation, contiguous(y), *units);
                }
                _ => basic::dense_into(x, kernel, bias.as_deref(), *units, *activation, contiguous(y)),
            }
            out.truncate(1);
            set_mask(out, 0, ins[0].mask);
        }
        Op::Activation(_) | Op::Dropout { .. } => {
            let x = f32_in(0)?;
            let y = f32_slot_written_whole(out, 0, x.shape())?;
            y.assign(&x);
            if let Op::Activation(a) = op {
                let width = *x.shape().last().unwrap_or(&1);
                activation::apply(*a, contiguous(y), width);
            }
            out.truncate(1);
            set_mask(out, 0, ins[0].mask);
        }
        Op::Masking { mask_value } => {
            let x = f32_in(0)?;
            let (b, t) = (x.shape()[0], x.shape()[1]);
            f32_slot(out, 0, x.shape())?;
            out.truncate(1);
            mask_slot(out, 0, b, t);
            let Value { t: Tensor::F32(y), mask: Some(m) } = &mut out[0] else { unreachable!("set above") };
            basic::masking_into(x, *mask_value, y, m);
        }
        Op::Embedding { mask_zero, .. } => {
            let TensorView::I32(ids) = &ins[0].t else {
                return Err(RuntimeError::Shape(format!("Embedding `{layer}` needs integer ids")));
            };
            let Some(Prepared::Embedding(table)) = prepared else { unreachable!("prepared at load") };
            let shape = joined(&[ids.shape(), &[table.ncols()]]);
            basic::embedding_into(ids.view(), table, contiguous(f32_slot(out, 0, shape.slice())?))?;
            out.truncate(1);
            if *mask_zero && ids.ndim() == 2 {
                let m = mask_slot(out, 0, ids.shape()[0], ids.shape()[1]);
                for (d, v) in m.iter_mut().zip(ids.iter()) {
                    *d = *v != 0;
                }
            } else {
                out[0].mask = None;
            }
        }
        Op::Rnn(a) => {
            let x = f32_in(0)?.into_dimensionality::<Ix3>().map_err(|_| {
                RuntimeError::Shape(format!("layer `{layer}` expects a [batch, T, features] sequence"))
            })?;
            let (b, t, _) = x.dim();
            let u = a.units;
            let k = a.cell.states();
            // Carried states that fit this batch are run on in place: their buffers and the
            // workspace's trade places for the run (copying them in, after zeroing, and back
            // out was a tenth of serve-streams' step).
            let mut parked = (a.stateful && ins.len() == 1 && train.is_none())
                .then(|| lend_states(state, &mut scratch.states, k, (b, u)))
                .flatten();
            let lent = parked.is_some();
            if !lent {
                zero_states(&mut scratch.states, k, b * u);
            }
            if ins.len() > 1 {
                for (d, v) in scratch.states.iter_mut().zip(&ins[1..]) {
                    let m = v.f32()?.into_dimensionality::<Ix2>().map_err(|_| {
                        RuntimeError::Shape(format!("layer `{layer}`: states are [batch, units]"))
                    })?;
                    copy_state(d, m)?;
                }
            } else if a.stateful
                && !lent
                && let Some(s) = state.as_ref()
            {
                for (d, m) in scratch.states.iter_mut().zip(s) {
                    copy_state(d, m.view())?;
                }
            }
            let Some(Prepared::Rnn(w)) = prepared else { unreachable!("prepared at load") };
            let mask = ins[0].mask;
            match train {
                None => {
                    let ran = run_rnn(a, out, b, t, scratch, |sc, o| {
                        rnn::forward_into(a, w, x.view(), mask, false, &mut sc.rnn, None, o)
                    });
                    // Back where they belong before any error goes up.
                    if let Some(parked) = parked.take() {
                        take_back_states(state, &mut scratch.states, parked, (b, u));
                    }
                    ran?
                }
                Some(tr) => {
                    let RnnDropout { input, recurrent } = std::mem::take(&mut tr.dropout[0]);
                    let xd = input.as_deref().map(|m| dropped_input(x.view(), m));
                    let xv = xd.as_ref().map_or(x.view(), |a| a.view());
                    let mut tape = RnnTape::new(a, xv.dim(), false, None);
                    run_rnn(a, out, b, t, scratch, |sc, o| {
                        let rec = Recording { rec_mask: recurrent.as_deref(), tape: &mut tape };
                        rnn::forward_into(a, w, xv, mask, false, &mut sc.rnn, Some(rec), o)
                    })?;
                    tape.rec_mask = recurrent;
                    tr.tape = Some(NodeTape::Rnn(tape, input));
                    // The tape keeps its own copy of the dropped input.
                    if let Some(xd) = xd {
                        crate::pool::recycle(xd.into_raw_vec_and_offset().0);
                    }
                }
            }
            if a.stateful && !lent {
                save_states(state, &scratch.states, b, u);
            }
            set_mask(out, 0, if a.return_sequences { mask } else { None });
        }
        Op::RepeatRnn { rnn: a, .. } => {
            let x = f32_in(0)?
                .into_dimensionality::<Ix2>()
                .map_err(|_| RuntimeError::Shape(format!("layer `{layer}` expects vectors")))?;
            let steps = out_time.ok_or_else(|| {
                RuntimeError::Shape(format!(
                    "layer `{layer}`: the number of steps is not determined by the inputs"
                ))
            })?;
            let b = x.nrows();
            let k = a.cell.states();
            zero_states(&mut scratch.states, k, b * a.units);
            if a.stateful
                && let Some(s) = state.as_ref()
            {
                for (d, m) in scratch.states.iter_mut().zip(s) {
                    copy_state(d, m.view())?;
                }
            }
            let Some(Prepared::Rnn(w)) = prepared else { unreachable!("prepared at load") };
            run_rnn(a, out, b, steps, scratch, |sc, o| {
                rnn::forward_repeated_into(a, w, x.view(), steps, &mut sc.rnn, o)
            })?;
            if a.stateful {
                save_states(state, &scratch.states, b, a.units);
            }
            set_mask(out, 0, None);
        }
        Op::Bidirectional { forward, backward, merge } => {
            let x = f32_in(0)?.into_dimensionality::<Ix3>().map_err(|_| {
                RuntimeError::Shape(format!("layer `{layer}` expects a [batch, T, features] sequence"))
            })?;
            let Some(Prepared::Bidirectional(pair)) = prepared else { unreachable!("prepared at load") };
            Bidirectional { forward, backward, merge: *merge }.forward_into(
                pair,
                x,
                ins[0].mask,
                state,
                scratch,
                out,
                train,
            )?;
        }
        Op::RepeatVector => {
            let count = out_time.ok_or_else(|| {
                RuntimeError::Shape(format!(
                    "RepeatVector `{layer}`: its count is not determined by the inputs; pass it as a dimension"
                ))
            })?;
            let x = f32_in(0)?;
            let (b, f) = (x.shape()[0], x.shape()[1]);
            let y = f32_slot(out, 0, &[b, count, f])?;
            y.assign(
                &x.insert_axis(Axis(1))
                    .broadcast(IxDyn(&[b, count, f]))
                    .expect("broadcast over the new axis"),
            );
            out.truncate(1);
            set_mask(out, 0, None);
        }
        Op::TimeSlice { start, end } => {
            let v = time::slice(f32_in(0)?, *start, *end, out_time)?;
            f32_slot(out, 0, v.shape())?.assign(&v);
            out.truncate(1);
            set_mask(out, 0, None);
        }
        Op::TimeStep { index } => {
            let v = time::step(f32_in(0)?, *index)?;
            f32_slot(out, 0, v.shape())?.assign(&v);
            out.truncate(1);
            set_mask(out, 0, None);
        }
        Op::ZeroPad { left, right } => {
            let x = f32_in(0)?;
            let mut shape = joined(&[x.shape()]);
            shape[1] += left + right;
            let y = f32_slot(out, 0, shape.slice())?;
            time::pad_into(x, *left, y);
            out.truncate(1);
            set_mask(out, 0, None);
        }
        Op::Merge(kind) => {
            let xs: Vec<ArrayViewD<'_, f32>> = (0..ins.len()).map(&f32_in).collect::<Result<_>>()?;
            let shape = merge::merge_shape(*kind, &xs)?;
            merge::merge_into(*kind, &xs, f32_slot(out, 0, &shape)?);
            out.truncate(1);
            let masks: Vec<ArrayView2<'_, bool>> = ins.iter().filter_map(|v| v.mask).collect();
            if !masks.is_empty() && masks.iter().all(|m| m.dim() == masks[0].dim()) {
                let (b, t) = masks[0].dim();
                let m = mask_slot(out, 0, b, t);
                m.fill(true);
                for o in &masks {
                    m.zip_mut_with(o, |a, b| *a = *a && *b);
                }
            } else {
                out[0].mask = None;
            }
        }
        Op::FoldTime => {
            let fold = |shape: &[usize]| joined(&[&[shape[0] * shape[1]], &shape[2..]]);
            match &ins[0].t {
                TensorView::F32(a) => {
                    let y = f32_slot(out, 0, fold(a.shape()).slice())?;
                    copy_flat(a.iter().copied(), y.as_slice_mut().expect("standard layout"), a.as_slice());
                }
                TensorView::I32(a) => {
                    let y = i32_slot(out, 0, fold(a.shape()).slice())?;
                    copy_flat(a.iter().copied(), y.as_slice_mut().expect("standard layout"), a.as_slice());
                }
            }
            out.truncate(1);
            set_mask(out, 0, None);
        }
        Op::Layer(l) => {
            let empty = crate::layers::Params::default();
            let params = match prepared {
                Some(Prepared::Layer(p)) => p,
                _ => &empty,
            };
            crate::layers::layer_of(l).forward(layer, ins, params, out, train)?;
        }
        Op::UnfoldTime => {
            let outer = ins[1].t.shape();
            let (b, t) = (outer[0], outer[1]);
            let inner = f32_in(0)?;
            let s = joined(&[&[b, t], &inner.shape()[1..]]);
            let y = f32_slot(out, 0, s.slice())?;
            copy_flat(inner.iter().copied(), y.as_slice_mut().expect("standard layout"), inner.as_slice());
            out.truncate(1);
            set_mask(out, 0, ins[1].mask);
        }
    }
    Ok(())
}

/// Copies a model input into `out` as a float value (a model that returns an input unchanged
/// returns this copy).
pub fn copy_input(input: &TensorView<'_>, out: &mut Vec<Value>) -> Result<()> {
    let y = f32_slot(out, 0, input.shape())?;
    match input {
        TensorView::F32(a) => y.assign(a),
        TensorView::I32(a) => y.zip_mut_with(a, |d, v| *d = *v as f32),
    }
    Ok(())
}

/// Copies row-major elements (a plain `memcpy` when the source is contiguous).
fn copy_flat<T: Copy>(iter: impl Iterator<Item = T>, dst: &mut [T], contiguous: Option<&[T]>) {
    match contiguous {
        Some(src) => dst.copy_from_slice(src),
        None => {
            for (d, v) in dst.iter_mut().zip(iter) {
                *d = v;
            }
        }
    }
}

/// Sets up the output slots of a recurrent layer (the main output, then the states with
/// `return_state`), runs it through `f` with `scratch.states` as the states, and copies the
/// final states out.
fn run_rnn(
    a: &RnnAttrs,
    out: &mut Vec<Value>,
    b: usize,
    t: usize,
    scratch: &mut Scratch,
    f: impl FnOnce(&mut Scratch, rnn::RnnOut<'_>) -> Result<()>,
) -> Result<()> {
    let u = a.units;
    let k = a.cell.states();
    if a.return_sequences {
        f32_slot(out, 0, &[b, t, u])?;
    } else {
        f32_slot(out, 0, &[b, u])?;
    }
    let ports = if a.return_state { 1 + k } else { 1 };
    for p in 1..ports {
        f32_slot(out, p, &[b, u])?;
    }
    out.truncate(ports);
    let mut states = std::mem::take(&mut scratch.states);
    let mut last = std::mem::take(&mut scratch.last);
    let ran = {
        let Tensor::F32(main) = &mut out[0].t else { unreachable!("float slot") };
        let main = contiguous(main);
        let o = if a.return_sequences {
            rnn::RnnOut { sequence: Some(main), last: rnn::sized(&mut last, b * u), states: &mut states }
        } else {
            rnn::RnnOut { sequence: None, last: main, states: &mut states }
        };
        f(scratch, o)
    };
    if ran.is_ok() {
        for (p, s) in (1..ports).zip(&states) {
            let Tensor::F32(y) = &mut out[p].t else { unreachable!("float slot") };
            contiguous(y).copy_from_slice(&s[..b * u]);
        }
    }
    scratch.states = states;
    scratch.last = last;
    ran
}

/// Runs one operation on owned inputs and returns fresh outputs (a convenience over
/// [`node_into`] for callers that do not keep a [`Workspace`]).
#[allow(clippy::too_many_arguments)] // the full context of one node, passed explicitly
pub fn node(
    op: &Op,
    layer: &str,
    prepared: Option<&Prepared>,
    ins: Vec<Value>,
    state: &mut Option<Vec<Array2<f32>>>,
    out_time: Option<usize>,
) -> Result<Vec<Value>> {
    let views: Vec<ValueRef<'_>> = ins.iter().map(Value::view).collect();
    let mut out = Vec::new();
    node_into(op, layer, prepared, &views, state, out_time, &mut Scratch::default(), &mut out)?;
    Ok(out)
}

/// One declared model input.
#[derive(Debug, Clone, Copy)]
pub struct InputSig<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its element type.
    pub dtype: DType,
    /// Its dimensions (batch excluded).
    pub dims: &'a [Dim],
}

/// What a model's inputs must look like.
#[derive(Debug, Clone, Copy)]
pub struct Signature<'a> {
    /// The model's name.
    pub model: &'a str,
    /// The inputs in order.
    pub inputs: &'a [InputSig<'a>],
    /// Names of the dimension symbols.
    pub symbols: &'a [&'a str],
    /// Fixed batch size, if declared.
    pub batch: Option<usize>,
}

fn show(sig: &Signature<'_>, i: &InputSig<'_>) -> String {
    let mut parts = vec![sig.batch.map_or("None".to_string(), |b| b.to_string())];
    for d in i.dims {
        parts.push(match *d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Sym { id, offset } => {
                let n = sig.symbols.get(id).copied().unwrap_or("?");
                match offset {
                    0 => n.to_string(),
                    o if o > 0 => format!("{n}+{o}"),
                    o => format!("{n}-{}", -o),
                }
            }
        });
    }
    format!("({}) {}", parts.join(", "), i.dtype)
}

/// An output's dynamic view as the rank-typed view the generated API returns.
///
/// # Errors
/// If the view's rank is not `D`'s (the checker inferred another; a bug, reported as such).
pub fn typed<D: Dimension>(v: ArrayViewD<'_, f32>) -> Result<ndarray::ArrayView<'_, f32, D>> {
    if D::NDIM.is_some_and(|n| n != v.ndim()) {
        return Err(RuntimeError::Shape(format!(
            "an output of shape {:?} is not of the inferred rank {}",
            v.shape(),
            D::NDIM.unwrap_or_default()
        )));
    }
    v.into_dimensionality::<D>().map_err(|e| RuntimeError::Shape(format!("an output's rank: {e}")))
}

/// Writes output `index` of `model` into the caller's array `out` (for `predict_into`).
///
/// # Errors
/// [`RuntimeError::OutputShape`] when `out`'s shape is not the output's.
pub fn write_output<D: Dimension>(
    model: &str,
    index: usize,
    y: ndarray::ArrayView<'_, f32, D>,
    mut out: ndarray::ArrayViewMut<'_, f32, D>,
) -> Result<()> {
    if y.shape() != out.shape() {
        return Err(RuntimeError::OutputShape {
            model: model.into(),
            index,
            expected: y.shape().to_vec(),
            found: out.shape().to_vec(),
        });
    }
    out.assign(&y);
    Ok(())
}

/// One stream's step `[1, N]` as a view of a plain array (for `step_one`).
pub fn row_view<const N: usize>(x: &[f32; N]) -> ArrayView2<'_, f32> {
    ndarray::ArrayView1::from(&x[..]).insert_axis(Axis(0))
}

/// A step's output `[1, N]` as a plain array (for `step_one`).
///
/// # Errors
/// If the view does not hold exactly `N` contiguous floats.
pub fn as_array<const N: usize, D: Dimension>(v: ndarray::ArrayView<'_, f32, D>) -> Result<&[f32; N]> {
    match v.to_slice().and_then(|s| s.try_into().ok()) {
        Some(a) => Ok(a),
        None => Err(RuntimeError::Shape(format!(
            "a step's output of shape {:?} is not {N} contiguous floats",
            v.shape()
        ))),
    }
}

/// The error of a model input `name` whose value at flat index `pos` is NaN or infinite.
fn non_finite_input(name: &str, pos: usize) -> RuntimeError {
    RuntimeError::InvalidData(format!(
        "input `{name}` has a non-finite value (NaN or infinity) at flat index {pos}"
    ))
}

/// Checks that the values of input `name` are finite (what [`bind_inputs`] checks of every
/// float input; a plain-array step checks only this, its sizes being in its types).
///
/// # Errors
/// [`RuntimeError::InvalidData`] naming the input and the first bad value's index.
#[inline]
pub fn check_finite(name: &str, xs: &[f32]) -> Result<()> {
    match first_non_finite(xs) {
        Some(pos) => Err(non_finite_input(name, pos)),
        None => Ok(()),
    }
}

/// The index of the first NaN or infinity in `xs`. Blocks of values are tested without a
/// branch per value (which the compiler vectorises: the test of big-lstm's 3.3 M inputs,
/// one value at a time, was 2.6 % of its prediction), and only a block that holds one is
/// searched.
fn first_non_finite(xs: &[f32]) -> Option<usize> {
    const BLOCK: usize = 256;
    xs.chunks(BLOCK).enumerate().find_map(|(i, block)| {
        let any = block.iter().fold(false, |any, v| any | !v.is_finite());
        any.then(|| i * BLOCK + block.iter().position(|v| !v.is_finite()).unwrap_or(0))
    })
}

/// Checks inputs against a signature (count, dtype, rank, fixed dims, consistent symbols,
/// batch, finite values), binds the symbols, and returns the batch size.
pub fn bind_inputs(
    sig: &Signature<'_>,
    inputs: &[TensorView<'_>],
    bindings: &mut [Option<usize>],
) -> Result<usize> {
    if inputs.len() != sig.inputs.len() {
        return Err(RuntimeError::InputCount {
            model: sig.model.into(),
            expected: sig.inputs.len(),
            found: inputs.len(),
        });
    }
    let mut batch = sig.batch;
    for (spec, x) in sig.inputs.iter().zip(inputs) {
        let expected = || show(sig, spec);
        let found = || format!("{:?} {}", x.shape(), x.dtype_name());
        let err = |expected: String| RuntimeError::InputShape {
            model: sig.model.into(),
            input: spec.name.into(),
            expected,
            found: found(),
        };
        let dtype_ok =
            matches!((spec.dtype, x), (DType::F32, TensorView::F32(_)) | (DType::I32, TensorView::I32(_)));
        if !dtype_ok || x.shape().len() != spec.dims.len() + 1 {
            return Err(err(expected()));
        }
        let b = x.shape()[0];
        match batch {
            Some(want) if want != b => {
                let why = if sig.batch.is_some() { ", fixed by the model" } else { ", as the other inputs" };
                return Err(err(format!("{} (batch size {want}{why})", expected())));
            }
            _ => batch = Some(b),
        }
        for (d, &got) in spec.dims.iter().zip(&x.shape()[1..]) {
            match *d {
                Dim::Fixed(n) if n != got => return Err(err(expected())),
                Dim::Fixed(_) => {}
                Dim::Sym { id, offset } => {
                    let v = got as i64 - offset;
                    if v < 0 {
                        return Err(err(expected()));
                    }
                    match bindings[id] {
                        Some(prev) if prev as i64 != v => {
                            let name = sig.symbols.get(id).copied().unwrap_or("?");
                            return Err(err(format!(
                                "{} with {name} = {prev} as in an earlier input",
                                expected()
                            )));
                        }
                        _ => bindings[id] = Some(v as usize),
                    }
                }
            }
        }
        let non_finite = match x {
            TensorView::F32(a) => match a.as_slice() {
                Some(xs) => first_non_finite(xs),
                None => a.iter().position(|v| !v.is_finite()),
            },
            TensorView::I32(_) => None,
        };
        if let Some(pos) = non_finite {
            return Err(non_finite_input(spec.name, pos));
        }
    }
    match batch {
        Some(0) => Err(RuntimeError::InvalidData(format!(
            "model `{}`: the batch has no rows (every input has 0 rows)",
            sig.model
        ))),
        Some(b) => Ok(b),
        None => Err(RuntimeError::Shape("the model has no inputs to take a batch size from".into())),
    }
}

/// The run-time size of a dimension given the bound symbols.
pub fn resolve(d: Dim, bindings: &[Option<usize>]) -> Option<usize> {
    d.resolve(bindings)
}

/// The size `exec::node` needs besides the inputs: a fused RepeatVector→RNN's step count,
/// otherwise the first dimension of the node's output type.
pub fn out_time(op: &Op, first_output_dim: Option<Dim>, bindings: &[Option<usize>]) -> Option<usize> {
    match op {
        Op::RepeatRnn { steps, .. } => steps.resolve(bindings),
        _ => first_output_dim.and_then(|d| d.resolve(bindings)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block-wise search finds what a search value by value finds, wherever the bad
    /// value is (first or last of a block, in a short last block, or nowhere).
    #[test]
    fn the_first_non_finite_value_is_found_where_it_is() {
        for n in [0, 1, 255, 256, 257, 1000] {
            for bad in [0, 1, 254, 255, 256, 511, 999] {
                for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut xs: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
                    if bad < n {
                        xs[bad] = v;
                        xs[n - 1] = f32::NAN;
                    }
                    assert_eq!(first_non_finite(&xs), xs.iter().position(|x| !x.is_finite()), "{n} {bad}");
                }
            }
        }
    }

    /// An output whose size overflows, or exceeds what any allocation may hold, is an error
    /// (these sizes never reach the allocator, so the test cannot exhaust the machine).
    #[test]
    fn an_output_larger_than_memory_is_an_error_not_an_abort() {
        let mut out = Vec::new();
        for shape in [vec![1usize << 40, 1 << 40], vec![1 << 61]] {
            match f32_slot(&mut out, 0, &shape) {
                Err(RuntimeError::OutOfMemory { what, bytes }) => {
                    assert_eq!(what, format!("an output of shape {shape:?}"));
                    assert!(bytes >= 1 << 63, "{bytes}");
                }
                other => panic!("{shape:?}: {other:?}"),
            }
        }
        assert_eq!(f32_slot(&mut out, 0, &[2, 3]).unwrap().shape(), &[2, 3]);
    }
}
