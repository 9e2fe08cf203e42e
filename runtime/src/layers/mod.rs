//! The layers with a forward pass of their own beyond a kernel call: each family owns its
//! weights in Keras's order, their packing at load, its forward pass into reusable buffers
//! (which training runs too, recording a tape) and its backward pass.

pub mod basic;
pub mod bidirectional;
pub mod merge;
pub mod recurrent;
pub mod time;

use std::collections::HashMap;

use ndarray::{Array3, ArrayD, ArrayView3, IxDyn};

/// Weight gradients by weight key (`Model/layer/kernel`), summed over every use of a key.
pub(crate) type WeightGrads = HashMap<String, ArrayD<f32>>;

/// Adds the gradient `g` (row-major, `shape`) of weight `key`.
pub(crate) fn add_weight(wg: &mut WeightGrads, key: String, shape: &[usize], g: Vec<f32>) {
    let g = ArrayD::from_shape_vec(IxDyn(shape), g).expect("weight gradient shape");
    match wg.get_mut(&key) {
        Some(acc) => *acc += &g,
        None => {
            wg.insert(key, g);
        }
    }
}

/// `x` `[B, T, D]` with input dropout's keep mask `[B·D]` applied (the same for every step,
/// as Keras draws it once per batch).
pub(crate) fn dropped_input(x: ArrayView3<'_, f32>, keep: &[f32]) -> Array3<f32> {
    let (_, _, d) = x.dim();
    let mut y = x.to_owned();
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
