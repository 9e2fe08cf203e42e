//! Generated code for the seed examples and the Keras conformance models, built by
//! `build.rs` through the build API. Tests compare it with the interpreter and with Keras.

use seqmodel::ndarray::{Array, ArrayD, Dimension};
use seqmodel::{RuntimeError, Tensor, WeightStore};

/// A conformance input as a float array of the generated API's rank `D`.
fn f32s<D: Dimension>(t: &Tensor) -> Result<Array<f32, D>, RuntimeError> {
    let a = match t {
        Tensor::F32(a) => a.clone(),
        Tensor::I32(a) => a.mapv(|v| v as f32),
    };
    of_rank(a)
}

/// A conformance input as an integer array of the generated API's rank `D`.
fn i32s<D: Dimension>(t: &Tensor) -> Result<Array<i32, D>, RuntimeError> {
    let a = match t {
        Tensor::I32(a) => a.clone(),
        Tensor::F32(a) => a.mapv(|v| v as i32),
    };
    of_rank(a)
}

fn of_rank<T, D: Dimension>(a: ArrayD<T>) -> Result<Array<T, D>, RuntimeError> {
    let shape = a.shape().to_vec();
    a.into_dimensionality()
        .map_err(|e| RuntimeError::Shape(format!("a conformance input of shape {shape:?}: {e}")))
}

include!(concat!(env!("OUT_DIR"), "/registry.rs"));

/// The README's snippets, run as doc tests of a crate that uses seqmodel as a user would
/// (with the `keras` feature, beside `models/`).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
