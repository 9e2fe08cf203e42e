//! The layers with a forward pass of their own beyond a kernel call: each family owns its
//! weights in Keras's order, their packing at load, its forward pass into reusable buffers
//! (which training runs too, recording a tape) and its backward pass.

mod attention;
pub mod basic;
pub mod bidirectional;
mod conv;
pub mod merge;
mod noise;
mod norm;
mod ops;
mod pointwise;
pub mod recurrent;
mod reshape;
pub mod time;

use std::borrow::Cow;
use std::collections::HashMap;

use ndarray::{Array3, ArrayD, ArrayView3, IxDyn};
use seqmodel_ir::LayerOp;

use crate::error::Result;
use crate::exec::{Training, Value, ValueRef};
use crate::kernels::FixedRhs;
pub(crate) use conv::activation_grad;

/// A described layer's weights as prepared once at load: matrices packed for the product
/// kernel and plain vectors, each in the order the layer's `prepare` chose.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// Packed matrices.
    pub(crate) mats: Vec<FixedRhs>,
    /// Plain vectors (by default every weight as stored, in Keras's order).
    pub(crate) vecs: Vec<Vec<f32>>,
}

/// What the backward pass of a described layer gets: its inputs and outputs as the forward
/// pass left them, the gradient of every output (zeros where none flowed), its weights as
/// stored (in the order of [`seqmodel_ir::op_weight_specs`]) and its tape.
pub(crate) struct Backward<'a> {
    /// The layer's name, for errors.
    pub layer: &'a str,
    /// The inputs.
    pub xs: Vec<&'a Value>,
    /// The outputs.
    pub ys: &'a [Value],
    /// The gradient of each output.
    pub dys: Vec<Cow<'a, ArrayD<f32>>>,
    /// The weights as stored.
    pub weights: Vec<&'a [f32]>,
    /// What the forward pass recorded ([`crate::exec::NodeTape::Saved`]).
    pub tape: Option<&'a ArrayD<f32>>,
    /// Whether each input's gradient is used: `false` where no weight lies before the input
    /// (the model's input, or layers without weights on it), so a layer may skip computing it.
    pub dx_needed: Vec<bool>,
}

impl Backward<'_> {
    /// Input `i` as floats.
    pub fn x(&self, i: usize) -> Result<&ArrayD<f32>> {
        self.xs[i]
            .t
            .as_f32()
            .ok_or_else(|| crate::RuntimeError::Shape(format!("layer `{}` got integer data", self.layer)))
    }

    /// Whether the gradient of input `i` is used (see [`Backward::dx_needed`]).
    pub fn needs_dx(&self, i: usize) -> bool {
        self.dx_needed.get(i).copied().unwrap_or(true)
    }
}

/// What a described layer's backward pass returns.
#[derive(Debug, Default)]
pub(crate) struct Grads {
    /// The gradient of each input (`None`: no gradient flows there).
    pub dxs: Vec<Option<ArrayD<f32>>>,
    /// The gradient of each weight, in the order of `op_weight_specs` (`None` for weights
    /// the optimizer does not train).
    pub dws: Vec<Option<Vec<f32>>>,
    /// New values of non-trainable weights (index into `op_weight_specs`), applied with the
    /// optimizer's step (BatchNormalization's moving statistics).
    pub updates: Vec<(usize, Vec<f32>)>,
}

impl Grads {
    /// Empties the lists, keeping their room (a trainer reuses one for every layer); the
    /// arrays left go back to the pool.
    pub(crate) fn clear(&mut self) {
        self.dxs.drain(..).flatten().for_each(crate::pool::recycle_array);
        self.dws.drain(..).flatten().for_each(crate::pool::recycle);
        self.updates.drain(..).for_each(|(_, v)| crate::pool::recycle(v));
    }
}

/// The runtime side of a described layer (see [`seqmodel_ir::LayerAttrs`]): preparation,
/// forward pass (the one pass inference, generated code and training all run) and backward
/// pass.
pub(crate) trait Layer {
    /// Prepares the weights (`ws`, as stored, in `op_weight_specs` order) once at load; by
    /// default keeps them as plain vectors.
    fn prepare(&self, ws: &[&[f32]]) -> Params {
        Params { mats: Vec::new(), vecs: ws.iter().map(|w| w.to_vec()).collect() }
    }

    /// Refills `params`, which [`Layer::prepare`] made for this layer, from new values of its
    /// weights in place (a trainer does this after every step; preparing afresh allocated).
    /// The default suits layers whose parameters are their weights as stored.
    fn prepare_into(&self, ws: &[&[f32]], params: &mut Params) {
        let same = params.mats.is_empty()
            && params.vecs.len() == ws.len()
            && params.vecs.iter().zip(ws).all(|(v, w)| v.len() == w.len());
        if same {
            params.vecs.iter_mut().zip(ws).for_each(|(v, w)| v.copy_from_slice(w));
        } else {
            *params = self.prepare(ws);
        }
    }

    /// Computes the outputs into `out` (reusing its buffers). With `train`, the pass is a
    /// training pass: the layer may draw noise from `train.seed` and record a tape.
    fn forward(
        &self,
        layer: &str,
        ins: &[ValueRef<'_>],
        params: &Params,
        out: &mut Vec<Value>,
        train: Option<&mut Training>,
    ) -> Result<()>;

    /// The gradients of the inputs and weights.
    fn backward(&self, b: &Backward<'_>, g: &mut Grads) -> Result<()>;
}

macro_rules! dispatch {
    ($($variant:ident($attrs:ty)),* $(,)?) => {
        /// The runtime layer of a described op (generated from the IR's list, so a layer
        /// without a runtime module does not compile).
        pub(crate) fn layer_of(op: &LayerOp) -> &dyn Layer {
            match op {
                $(LayerOp::$variant(a) => a,)*
            }
        }
    };
}
seqmodel_ir::for_each_layer_op!(dispatch);

/// A seeded uniform number in `[0, 1)` (xorshift, as the dropout masks).
pub(crate) fn uniform(seed: &mut u64) -> f32 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 40) as f32 / (1u64 << 24) as f32
}

/// A seeded standard normal number (Box-Muller).
pub(crate) fn normal(seed: &mut u64) -> f32 {
    let u1 = uniform(seed).max(1e-7);
    let u2 = uniform(seed);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Weight gradients by weight key (`Model/layer/kernel`), summed over every use of a key.
/// A trainer keeps one between steps: [`GradMap::clear`] gives the arrays back to the pool
/// and keeps the keys, which the next step's entries reuse (no key is allocated twice).
#[derive(Debug, Default)]
pub(crate) struct GradMap {
    /// The gradients.
    pub map: HashMap<String, ArrayD<f32>>,
    /// Keys of cleared entries.
    spare_keys: Vec<String>,
}

impl GradMap {
    /// Adds the gradient `g` (row-major, `shape`) of weight `key`.
    pub(crate) fn add(&mut self, key: &str, shape: &[usize], g: Vec<f32>) {
        let g = ArrayD::from_shape_vec(IxDyn(shape), g).expect("weight gradient shape");
        match self.map.get_mut(key) {
            Some(acc) => {
                *acc += &g;
                crate::pool::recycle_array(g);
            }
            None => {
                let key = match self.spare_keys.iter().position(|k| k == key) {
                    Some(i) => self.spare_keys.swap_remove(i),
                    None => key.to_owned(),
                };
                self.map.insert(key, g);
            }
        }
    }

    /// Sets the value `v` (row-major, `shape`) of weight `key`, replacing one set before.
    pub(crate) fn set(&mut self, key: &str, shape: &[usize], v: Vec<f32>) {
        if let Some(old) = self.map.remove(key) {
            crate::pool::recycle_array(old);
        }
        self.add(key, shape, v);
    }

    /// Empties the map: the arrays go back to the pool, the keys are kept for reuse.
    pub(crate) fn clear(&mut self) {
        for (key, g) in self.map.drain() {
            self.spare_keys.push(key);
            crate::pool::recycle_array(g);
        }
    }
}

/// `x` `[B, T, D]` with input dropout's keep mask `[B·D]` applied (the same for every step,
/// as Keras draws it once per batch).
pub(crate) fn dropped_input(x: ArrayView3<'_, f32>, keep: &[f32]) -> Array3<f32> {
    let (_, _, d) = x.dim();
    // In a pooled buffer (the caller gives it back).
    let mut y = crate::pool::copied_array(&x);
    for ((bi, _, j), v) in y.indexed_iter_mut() {
        *v *= keep[bi * d + j];
    }
    y
}

/// The input gradient `[B·T, D]` through input dropout's keep mask.
pub(crate) fn mask_input_grad(dx: &mut [f32], keep: &[f32], (_, t, d): (usize, usize, usize)) {
    for (r, row) in dx.chunks_mut(d).enumerate() {
        let bi = r / t;
        for (v, k) in row.iter_mut().zip(&keep[bi * d..][..d]) {
            *v *= k;
        }
    }
}
